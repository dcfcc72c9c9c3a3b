"""Elementwise functions of large float64 arrays through glibc's vector math library.

NumPy evaluates ``tanh``, ``exp``, ``sin`` … of float64 one element at a time on CPUs without
AVX-512 (``np.tanh`` of 32,768 numbers: 440 µs on the benchmark machine, an AMD EPYC with AVX2),
where XLA, and glibc's ``libmvec`` (glibc 2.35 or later), evaluate four at once. A compiled
program (:mod:`jacc.program`, backend ``numpy``) calls these functions through :func:`faster`,
which gives a kernel of ``libmvec`` in place of the NumPy ufunc where one is found and is faster
(``np.tanh`` above: 78 µs, see :data:`BODIES`). On the full-size MLP of the suite, two ``tanh`` layers were 880 µs of
a 1.6 ms gradient.

The kernels are one C library built once per machine with the system C compiler (as
``backend="c"`` builds, :mod:`jacc.ccode`: kept in ``$JACC_CACHE``): a loop per function marked
``omp simd``, with the function declared as having SIMD variants, so the compiler calls glibc's
two- or four-lane versions; a copy for AVX2 and a baseline one, chosen when the library loads.

They are not NumPy's functions: ``libmvec`` promises at most 4 units in the last place (ulps) of
error where NumPy's own loops give 1 or less, so a program's values may differ from NumPy's by a
few ulps (relative 1e-15). Each function is checked once per process against NumPy on numbers
across its domain and at its special values (NaN, ±inf, ±0, the domain's ends) — within 8 ulps,
NaN where NumPy gives NaN, the same infinities and signed zeros — and timed against NumPy; one
that fails either check is not used. No floating-point warnings are raised (a non-finite result
of a program reruns ``f`` in NumPy, see :mod:`jacc.api`). Off: ``JACC_NO_C=1`` (as for all
C), and without a C compiler, outside Linux on x86-64, or where the build fails.

>>> import numpy as np
>>> from jacc import vecmath
>>> f = vecmath.faster(np.tanh, 10_000)
>>> x = np.linspace(-3, 3, 10_000)
>>> bool(np.allclose(f(x), np.tanh(x), rtol=1e-15, atol=0))
True
"""

from __future__ import annotations

import ctypes
import platform
import time
from typing import Any, Callable

import numpy as np

from . import ccode, locks
from .compile import CompileError

#: NumPy ufunc -> (C name, arity, the interval its check samples)
FUNCTIONS: dict[np.ufunc, tuple[str, int, tuple[float, float]]] = {
    np.exp: ("exp", 1, (-700.0, 700.0)), np.exp2: ("exp2", 1, (-1000.0, 1000.0)),
    np.expm1: ("expm1", 1, (-40.0, 700.0)), np.log: ("log", 1, (1e-300, 1e300)),
    np.log2: ("log2", 1, (1e-300, 1e300)), np.log10: ("log10", 1, (1e-300, 1e300)),
    np.log1p: ("log1p", 1, (-1.0, 1e10)), np.sin: ("sin", 1, (-1e4, 1e4)), np.cos: ("cos", 1, (-1e4, 1e4)),
    np.tan: ("tan", 1, (-1e4, 1e4)), np.arcsin: ("asin", 1, (-1.0, 1.0)), np.arccos: ("acos", 1, (-1.0, 1.0)),
    np.arctan: ("atan", 1, (-1e6, 1e6)), np.sinh: ("sinh", 1, (-700.0, 700.0)),
    np.cosh: ("cosh", 1, (-700.0, 700.0)), np.tanh: ("tanh", 1, (-30.0, 30.0)),
    np.arcsinh: ("asinh", 1, (-1e10, 1e10)), np.arccosh: ("acosh", 1, (1.0, 1e10)),
    np.arctanh: ("atanh", 1, (-1.0, 1.0)), np.cbrt: ("cbrt", 1, (-1e10, 1e10)),
    np.arctan2: ("atan2", 2, (-1e3, 1e3)), np.hypot: ("hypot", 2, (-1e150, 1e150)),
}

#: loop bodies other than a call of the C function of that name: ``tanh`` as expm1(2|x|)/(expm1(2|x|) + 2)
#: with the sign of x (78 µs on 32,768 numbers where libmvec's own tanh takes 121 and NumPy's 440;
#: within 4 ulps, and exactly ±1 from |x| = 19.1 as NumPy's; 20 bounds expm1 below overflow, and a
#: NaN passes the comparison through)
BODIES = {"tanh": ("double m = __builtin_fabs(a[i]); m = m > 20.0 ? 20.0 : m; double t = expm1(2.0 * m); "
                   "y[i] = __builtin_copysign(t / (t + 2.0), a[i]);")}

#: elements below which a kernel is not worth its call (ctypes and checks: about 2 µs)
MIN_SIZE = 512
#: ulps a kernel may differ from NumPy by (libmvec documents at most 4)
ULPS = 8

_F8 = np.dtype(np.float64)
_lock = locks.lock()
_state: dict[str, Any] = {}  # "lib": the library or None; "kernels": ufunc -> C function or None


def _source() -> str:
    lines = ["/* jacc.vecmath: elementwise loops that glibc's libmvec vectorises */"]
    for name, arity, _ in FUNCTIONS.values():
        params = ", ".join(["double"] * arity)
        lines.append(f'__attribute__((simd("notinbranch"), const, nothrow)) double {name}({params});')
    for name, arity, _ in FUNCTIONS.values():
        ins = ["a", "b"][:arity]
        lines += ['__attribute__((target_clones("avx2", "default")))',
                  f"void jacc_{name}({''.join(f'const double *{v}, ' for v in ins)}double *y, long n)",
                  "{", "    #pragma omp simd",
                  "    for (long i = 0; i < n; i++) {",
                  "        " + BODIES.get(name, f"y[i] = {name}({', '.join(f'{v}[i]' for v in ins)});"), "    }", "}"]
    return "\n".join(lines) + "\n"


def _library() -> ctypes.CDLL | None:
    if "lib" not in _state:
        lib = None
        if (ccode.auto_c() and platform.system() == "Linux"
                and platform.machine().lower() in ("x86_64", "amd64")):
            try:
                lib = ccode.library(_source(), extra=("-fopenmp-simd", "-fno-trapping-math", "-Wl,-z,defs", "-lmvec"))
            except (CompileError, OSError):
                lib = None
        _state["lib"], _state["kernels"] = lib, {}
    return _state["lib"]


def _samples(lo: float, hi: float, arity: int) -> list[np.ndarray]:
    """Numbers across [lo, hi] (uniform and, for wide intervals, spread over the exponents) and the
    special values, once per argument (shifted against each other for two)."""
    rng = np.random.default_rng(0)
    parts = [rng.uniform(lo, hi, 2048), np.linspace(lo, hi, 257)]
    if hi / max(abs(lo), 1e-300) > 1e3 or lo < 0 < hi:
        mag = 10.0 ** rng.uniform(-300, np.log10(max(abs(lo), hi)), 2048)
        parts.append(np.clip(mag * (rng.choice([-1.0, 1.0], 2048) if lo < 0 else 1.0), lo, hi))
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)]
    x = np.concatenate(parts + [np.array(special)])
    return [x] if arity == 1 else [x, np.roll(x, 5)]


def _agrees(y: np.ndarray, ref: np.ndarray) -> bool:
    nan = np.isnan(ref)
    if not np.array_equal(nan, np.isnan(y)):
        return False
    y, ref = y[~nan], ref[~nan]
    exact = ~np.isfinite(ref) | (ref == 0)
    if not np.array_equal(y[exact], ref[exact]) or np.any(np.signbit(y[exact]) != np.signbit(ref[exact])):
        return False
    return bool(np.all(np.abs(y[~exact] - ref[~exact]) <= ULPS * np.spacing(np.abs(ref[~exact]))))


def _kernel(ufunc: np.ufunc) -> Any:
    """The checked C function for ``ufunc``, or None (no library, a failed check, not faster)."""
    kernels = _state["kernels"]
    if ufunc not in kernels:
        name, arity, (lo, hi) = FUNCTIONS[ufunc]
        fn = getattr(_state["lib"], f"jacc_{name}")
        fn.restype, fn.argtypes = None, [ctypes.c_void_p] * (arity + 1) + [ctypes.c_long]
        xs = _samples(lo, hi, arity)
        y = np.empty_like(xs[0])
        with np.errstate(all="ignore"):
            fn(*(x.ctypes.data for x in xs), y.ctypes.data, y.size)
            ok = _agrees(y, ufunc(*xs))
            kernels[ufunc] = fn if ok and _faster(ufunc, fn, arity, lo, hi) else None
    return kernels[ufunc]


def _faster(ufunc: np.ufunc, fn: Any, arity: int, lo: float, hi: float) -> bool:
    """Whether ``fn`` takes under 80 % of NumPy's time on 8,192 numbers of moderate size in the domain."""
    xs = [np.linspace(max(lo, -3.0), min(hi, 3.0), 8192)] * arity
    y = np.empty_like(xs[0])
    ptrs = [x.ctypes.data for x in xs] + [y.ctypes.data, y.size]

    def best(call: Callable) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        return min(times)

    return best(lambda: fn(*ptrs)) < 0.8 * best(lambda: ufunc(*xs, out=y))


def _fits(x: Any) -> bool:
    return type(x) is np.ndarray and x.dtype == _F8 and x.flags.c_contiguous


def _wrap(fn: Callable, ufunc: np.ufunc, kernel: Any, into: int | None) -> Callable:
    """``fn(*args)`` by ``kernel`` where every operand is a C-ordered float64 array of one shape
    (written into ``args[into]`` where that is given), else by ``fn``."""
    arity = FUNCTIONS[ufunc][1]

    def call(*args):
        x = args[0]
        if (len(args) == arity and all(_fits(a) and a.shape == x.shape for a in args) and x.size >= MIN_SIZE
                and (into is None or args[into].flags.writeable)):
            y = args[into] if into is not None else np.empty_like(x)
            kernel(*(a.ctypes.data for a in args), y.ctypes.data, x.size)
            return y
        return fn(*args)

    call.__name__ = f"{ufunc.__name__}_libmvec" + ("" if into is None else "_into")
    call.ufunc, call.into = ufunc, into
    return call


def faster(fn: Callable, size: int) -> Callable:
    """``fn`` — a NumPy ufunc, or one written into an operand (:func:`jacc.program.into`) — as
    a checked ``libmvec`` kernel where there is one and the result has at least :data:`MIN_SIZE`
    elements; otherwise ``fn`` itself."""
    ufunc, into = (fn, None) if isinstance(fn, np.ufunc) else (getattr(fn, "ufunc", None), getattr(fn, "into", None))
    if size < MIN_SIZE or ufunc not in FUNCTIONS or not (into is None) == isinstance(fn, np.ufunc):
        return fn
    with _lock:
        kernel = None if _library() is None else _kernel(ufunc)
    return fn if kernel is None else _wrap(fn, ufunc, kernel, into)


def active() -> dict[str, bool]:
    """Which functions run as kernels in this process (checking each: the first call builds the
    library where it is not built yet); empty where there is no library.

    >>> sorted(active())[:3]  # doctest: +SKIP
    ['arccos', 'arccosh', 'arcsin']
    """
    with _lock:
        if _library() is None:
            return {}
        return {u.__name__: _kernel(u) is not None for u in FUNCTIONS}


def summary() -> str:
    """One line for reports: which functions run as kernels.

    >>> summary()  # doctest: +SKIP
    'libmvec kernels for 22 of 22 functions'
    """
    found = active()
    if not found:
        return "none (NumPy's loops: no C compiler, JACC_NO_C, not Linux x86-64, or no libmvec)"
    off = [k for k, v in found.items() if not v]
    return (f"libmvec kernels for {len(found) - len(off)} of {len(found)} functions"
            + (f" (NumPy's loops for {', '.join(off)})" if off else ""))


def _reset() -> None:
    """Forget the library and the checks (tests that change the environment)."""
    with _lock:
        _state.clear()
