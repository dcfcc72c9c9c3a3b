"""Keep large NumPy temporaries in the heap between Jacobian calls (glibc on Linux).

A Jacobian call allocates the same arrays on every call: the trace's values, then the program's
intermediates. glibc serves arrays above its mmap threshold (128 KiB at start, raised to the
largest freed mapping later) by ``mmap`` and returns heap memory above its trim threshold to the
system at each ``free``. Either way the next call touches fresh pages, and each page costs a fault:
``jacobian`` of the suite's least-squares loss (N = 120) took 192 faults and 660 µs per call in a
fresh process, 300 µs without them. Which calls pay depends on what the process freed before, so
timings also differed between a one-function script and a benchmark of many.

:func:`tune` serves every allocation from the heap (glibc cannot raise its mmap threshold above
32 MiB, and dense Jacobians of batched problems are larger: RoeFlux over 1,000 interfaces returns
two 72 MB blocks) and lets the heap keep up to 512 MiB of freed memory at its top. RoeFlux then
took 2.4 ms per call instead of 8.0 ms (766 faults per call), Black–Scholes over 1,000 options
3.0 ms instead of 11.3 ms, A·X·B at N = 50 3.4 ms instead of 5.7 ms. The price: up to 512 MiB of
freed memory stays with the process, and a large array freed below smaller live ones is not
returned to the system until they are freed too (``mmap`` would have returned it at once).
``jacobian`` calls it once; set the environment variable ``JACC_MALLOC=system`` to leave glibc's
settings alone. Elsewhere (macOS, Windows, musl) it does nothing.

>>> isinstance(tune(), bool)
True
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameter numbers in glibc's malloc.h
MMAP_MAX = 0  # no allocation by mmap: every array comes from the heap, whatever its size
TRIM_THRESHOLD = 512 << 20  # freed memory at the heap's top kept for the next call (the suite needs 256 MiB)

_state: list[bool | None] = [None]  # None: not tried yet; then whether the thresholds were set


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def tune() -> bool:
    """Set glibc's mmap limit and trim threshold once per process; whether they are (now) set.

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
            _state[0] = bool(mallopt(_M_MMAP_MAX, MMAP_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _state[0]


def tuned() -> bool:
    """Whether :func:`tune` has set the thresholds in this process (for reports)."""
    return bool(_state[0])
