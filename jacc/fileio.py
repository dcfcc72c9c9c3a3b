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


def json_default(x: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as plain JSON."""
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
