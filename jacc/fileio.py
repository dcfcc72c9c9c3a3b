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
import uuid
from typing import Any, Callable

import numpy as np


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[str], None]) -> str:
    """Write ``data`` (bytes, text, or a function that writes a given file name) to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if callable(data):
            open(tmp, "xb").close()  # reserve the name with normal permissions
            data(tmp)
        else:
            with open(tmp, "xb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def json_default(x: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as plain JSON."""
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
