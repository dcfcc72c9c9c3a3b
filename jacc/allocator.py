"""Keep large NumPy temporaries in the heap between Jacobian calls (glibc on Linux).

A Jacobian call allocates the same arrays on every call: the trace's values, then the program's
intermediates. glibc serves arrays above its mmap threshold (128 KiB at start, raised to the
largest freed mapping later) by ``mmap`` and returns heap memory above its trim threshold to the
system at each ``free``. Either way the next call touches fresh pages, and each page costs a fault:
``jacobian`` of the suite's least-squares loss (N = 120) took 192 faults and 660 µs per call in a
fresh process, 300 µs without them. Which calls pay depends on what the process freed before, so
timings also differed between a one-function script and a benchmark of many.

:func:`tune` fixes both thresholds at the values glibc's own rule reaches after a process has
freed a 32 MiB array: mmap above 32 MiB, trim above 64 MiB. The price is that up to 64 MiB of
freed memory stays with the process. ``jacobian`` calls it once; set the environment variable
``JACC_MALLOC=system`` to leave glibc's settings alone. Elsewhere (macOS, Windows, musl) it does
nothing.

>>> isinstance(tune(), bool)
True
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers in glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 64 << 20  # twice the mmap threshold, as glibc's dynamic rule sets it

_state: list[bool | None] = [None]  # None: not tried yet; then whether the thresholds were set


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def tune() -> bool:
    """Set glibc's mmap and trim thresholds once per process; whether they are (now) set.

    False where the C library is not glibc, ``mallopt`` refused, or ``JACC_MALLOC=system``.
    """
    if _state[0] is None:
        _state[0] = False
        if os.environ.get("JACC_MALLOC", "").strip().lower() != "system" and _glibc():
            import ctypes

            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _state[0] = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) \
                and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _state[0]


def tuned() -> bool:
    """Whether :func:`tune` has set the thresholds in this process (for reports)."""
    return bool(_state[0])
