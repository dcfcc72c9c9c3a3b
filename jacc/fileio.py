"""Atomic file writes: a temporary file in the same folder, renamed into place.

A failed write (an exception in ``write``) leaves no partial file and no temporary file, and an
existing file at ``path`` untouched.

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     p = write_atomic(os.path.join(d, "a.txt"), "hello\\n")
...     open(p).read()
'hello\\n'
"""

from __future__ import annotations

import json
import math
import os
import stat
import uuid
from typing import Any, Callable

import numpy as np


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[str], None]) -> str:
    """Write ``data`` (bytes, text, or a function that writes a given file name) to ``path``.

    An existing file keeps its permission bits, and a symbolic link is written through: its target
    is replaced, the link stays. Returns ``path``."""
    path = os.fspath(path)
    target = os.path.realpath(path)  # follows links (a dangling one: the file it names is created)
    folder = os.path.dirname(target)
    tmp = os.path.join(folder, f".{os.path.basename(target)[:64]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        if callable(data):
            open(tmp, "xb").close()  # reserve the name with normal permissions
            data(tmp)
        else:
            with open(tmp, "xb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except OSError as e:  # name the file the user asked for, not the temporary one
        if e.errno is None:
            raise
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _keep_mode(target: str, tmp: str) -> None:
    """Give ``tmp`` the permission bits of the file it replaces (a new file keeps the umask's)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def plain_json(x: Any, other: Callable[[Any], Any] | None = None) -> Any:
    """``x`` as standard JSON holds it: NumPy scalars and arrays as numbers and lists, tuples as
    lists, and the non-finite floats as the strings "nan", "inf" and "-inf" (as graph files hold
    them; JSON has no such numbers). Any other object goes through ``other`` (left as it is by
    default, so ``json.dumps`` names it).

    >>> plain_json({"J": np.array([1.0, np.inf]), "n": np.int64(3)})
    {'J': [1.0, 'inf'], 'n': 3}
    """
    if isinstance(x, float):
        return x if math.isfinite(x) else "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"
    if isinstance(x, (np.ndarray, np.generic)):
        return plain_json(x.tolist() if isinstance(x, np.ndarray) else x.item(), other)
    if isinstance(x, (list, tuple)):
        return [plain_json(v, other) for v in x]
    if isinstance(x, dict):
        return {k: plain_json(v, other) for k, v in x.items()}
    if x is None or isinstance(x, (str, int)) or other is None:
        return x
    return other(x)


def dumps_json(x: Any, **kw: Any) -> str:
    """Standard JSON text of ``x`` (:func:`plain_json`; other objects as their ``str``)."""
    return json.dumps(plain_json(x, str), allow_nan=False, **kw)
