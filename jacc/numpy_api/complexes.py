"""Complex values inside a trace, as pairs of real ones: ``np.fft``, ``1j * x``, ``np.exp(1j * t)``,
``np.sqrt``, ``np.abs``, ``np.angle``, ``.real``/``.imag``, ``np.sort_complex`` and complex arithmetic, for
functions whose result is real.

jacc's graphs hold real arrays. A complex intermediate is a :class:`Complex`: its real and
imaginary parts, each a traced array, a constant, or structurally zero (``None``), so
``np.abs(np.fft.rfft(x)) ** 2`` is recorded as real products, sums and ``hypot``. Complex
arithmetic expands into real ops ((a + ib)(c + id) = (ac − bd) + i(ad + bc); division by
|w|²). Every FFT of NumPy's ``np.fft`` (``fft``, ``ifft``, ``rfft``, ``irfft``, ``hfft``,
``ihfft`` and the 2-d and n-d forms) is a real-linear map of the input's parts: its matrices
are NumPy's own transform of the identity (and of i times it), so ``n``, ``norm`` and ``axis``
mean what they mean to NumPy and the values are NumPy's, bit for bit at a traced call
(:func:`jacc.numpy_api.implicit.anchored`); the map costs n² per transformed line of length n.

A complex value stays complex when its imaginary part is (structurally) zero, as its NumPy dtype
does: ``x + 0j`` is complex, so ``np.sqrt(x + 0j)`` of a negative x is imaginary, NumPy's principal
branch (:func:`_sqrt`), not a real square root's NaN. A function's result must be real: a complex
one is refused, naming ``np.real``, ``np.imag`` and ``np.abs``. What is not listed here
(``np.arccos`` and other functions of a complex value, comparisons, ``np.linalg`` of complex
matrices) is refused by name.

>>> import numpy as np, jacc
>>> power = lambda x: np.abs(np.fft.rfft(x)) ** 2
>>> J = jacc.jacobian(power)(np.array([1.0, 2.0, 0.5, -1.0]))
>>> J.shape
(3, 4)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ..trace import COMPLEX_OPS, Tracer, UnsupportedOperationError, call_site, implements, implements_ufunc
from . import case, implicit


class ComplexConversion(UnsupportedOperationError):
    """A traced complex value asked for as a plain array (record takes it as an operand instead)."""

    complex_operand = True


def _is_zero(x: Any) -> bool:
    return x is None or (not isinstance(x, Tracer) and not np.any(x))


class Complex:
    """A complex array during a trace: ``re + i·im``, each part a traced array, a real constant
    or ``None`` (exactly zero); ``shape`` is the whole array's."""

    __array_priority__ = 2000
    __slots__ = ("re", "im", "shape")

    def __init__(self, re: Any, im: Any, shape: tuple):
        self.re, self.im, self.shape = re, im, tuple(shape)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))
    dtype = property(lambda self: np.dtype(complex))
    real = property(lambda self: _part(self.re, self.shape))
    imag = property(lambda self: _part(self.im, self.shape))
    T = property(lambda self: self.transpose())

    @property
    def value(self) -> np.ndarray:
        """The value at the traced point."""
        return np.broadcast_to(_part_value(self.re) + 1j * _part_value(self.im), self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Complex(shape={self.shape})"

    def __array__(self, dtype=None, copy=None):
        raise ComplexConversion(
            f"a traced complex array was converted to a plain NumPy array at {call_site()}; keep it in NumPy "
            "functions (np.real, np.imag, np.abs, np.fft …)")

    def __bool__(self):
        raise ComplexConversion(f"the truth value of a traced complex array was asked for at {call_site()}")

    def __complex__(self):  # (also what NumPy asks for writing it into a plain complex array: b[1] = z)
        raise ComplexConversion(
            f"a traced complex value was converted to a plain complex number at {call_site()} (complex(z), or a "
            "write into an array of constants b[i] = z), which would make it a constant; build the array from "
            "traced values (np.stack, np.array([...]), np.where) instead of writing them into one")

    __float__ = __int__ = __complex__

    # -- arithmetic ---------------------------------------------------------------------------
    __add__ = lambda s, o: combine("add", [s, o])  # noqa: E731
    __radd__ = lambda s, o: combine("add", [o, s])  # noqa: E731
    __sub__ = lambda s, o: combine("sub", [s, o])  # noqa: E731
    __rsub__ = lambda s, o: combine("sub", [o, s])  # noqa: E731
    __mul__ = lambda s, o: combine("mul", [s, o])  # noqa: E731
    __rmul__ = lambda s, o: combine("mul", [o, s])  # noqa: E731
    __truediv__ = lambda s, o: combine("div", [s, o])  # noqa: E731
    __rtruediv__ = lambda s, o: combine("div", [o, s])  # noqa: E731
    __matmul__ = lambda s, o: combine("matmul", [s, o])  # noqa: E731
    __rmatmul__ = lambda s, o: combine("matmul", [o, s])  # noqa: E731
    __pow__ = lambda s, o: combine("pow", [s, o])  # noqa: E731

    def __neg__(self):
        return Complex(_neg(self.re), _neg(self.im), self.shape)

    def __pos__(self):
        return self

    def __abs__(self):
        return _abs(self)

    def conj(self):
        return Complex(self.re, _neg(self.im), self.shape)

    conjugate = conj

    # -- shape --------------------------------------------------------------------------------
    def _each(self, fn: Callable) -> Complex:
        """``fn`` applied to both parts (a zero part stays zero); the shape is the result's."""
        template = fn(np.zeros(self.shape))
        return Complex(None if self.re is None else fn(_full(self.re, self.shape)),
                       None if self.im is None else fn(_full(self.im, self.shape)), np.shape(template))

    def __getitem__(self, index):
        return self._each(lambda p: p[index])

    def reshape(self, *shape, order="C"):
        return self._each(lambda p: np.reshape(p, shape[0] if len(shape) == 1 else shape, order=order))

    def transpose(self, *axes):
        return self._each(lambda p: np.transpose(p, axes or None))

    def ravel(self):
        return self.reshape(-1)

    def copy(self):
        return self._each(np.copy)

    def flatten(self):
        return self._each(lambda p: np.reshape(p, -1).copy())

    def squeeze(self, axis=None):
        return self._each(lambda p: np.squeeze(p, axis))

    def swapaxes(self, a: int, b: int):
        return self._each(lambda p: np.swapaxes(p, a, b))

    def astype(self, dtype, *args, **kwargs):
        if np.dtype(dtype).kind == "c" and not args and not kwargs:
            return self.copy()
        raise UnsupportedOperationError(f".astype({np.dtype(dtype)}) of a traced complex array at {call_site()}: "
                                        "take np.real(z), np.imag(z) or np.abs(z) for real values")

    def __getattr__(self, name: str):
        if name.startswith("_") or not hasattr(np.ndarray, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise UnsupportedOperationError(
            f".{name} of a traced complex array at {call_site()} is not supported; supported: + - * / @, integer "
            "powers, np.real, np.imag, np.abs, np.angle, np.conj, np.exp, np.sqrt, np.fft, sums, indexing, reshapes, "
            ".copy(), .T, .transpose(), .ravel(), .flatten(), .squeeze(), .swapaxes()")

    def __setitem__(self, index, value):
        raise UnsupportedOperationError(
            f"a write into a traced complex array at {call_site()} (z[i] = ...) is not supported; build the changed "
            "array instead, e.g. z * mask with a 0/1 mask (a low-pass filter: Z * (np.arange(len(Z)) < k))")

    def sum(self, axis=None, keepdims=False):
        return self._each(lambda p: np.sum(p, axis=axis, keepdims=keepdims))

    def mean(self, axis=None, keepdims=False):
        return self._each(lambda p: np.mean(p, axis=axis, keepdims=keepdims))

    # -- NumPy protocols ------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        rule = _UFUNCS.get(ufunc.__name__)
        if method != "__call__" or kwargs or rule is None:
            raise UnsupportedOperationError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} of a traced complex array at "
                f"{call_site()} is not supported; supported: {', '.join(sorted(_UFUNCS))}, np.fft, np.real, "
                "np.imag, np.angle, sums, indexing and reshapes")
        return rule(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise UnsupportedOperationError(
                f"{getattr(func, '__module__', 'numpy')}.{func.__name__} of a traced complex array at {call_site()} is "
                f"not supported; supported: {', '.join(sorted(f.__name__ for f in _FUNCTIONS))} and the ufuncs "
                f"{', '.join(sorted(_UFUNCS))}")
        return handler(*args, **kwargs)


def _full(part: Any, shape: tuple) -> Any:
    return part if np.shape(part) == shape else part + np.zeros(shape)


def _part(part: Any, shape: tuple) -> Any:
    return np.zeros(shape) if part is None else _full(part, shape)


def _part_value(part: Any) -> Any:
    return 0.0 if part is None else part.value if isinstance(part, Tracer) else part


def _lift(x: Any) -> tuple[Any, Any, tuple]:
    """(re, im, shape) of a complex, traced or constant operand (``None``: a part that is zero)."""
    if isinstance(x, Complex):
        return x.re, x.im, x.shape
    if isinstance(x, Tracer):
        return x, None, x.shape
    a = np.asarray(x)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"unsupported operand {type(x).__name__} for a traced complex value at {call_site()}")
    re, im = np.real(a).astype(float), np.imag(a).astype(float)
    return (None if not np.any(re) else re), (None if not np.any(im) else im), a.shape


def _add(a, b):
    return b if _is_zero(a) else a if _is_zero(b) else a + b


def _sub(a, b):
    return a if _is_zero(b) else _neg(b) if _is_zero(a) else a - b


def _neg(a):
    return None if a is None else -a


def _mul(a, b):
    return None if _is_zero(a) or _is_zero(b) else a * b


def _matmul(a, b):
    return None if _is_zero(a) or _is_zero(b) else a @ b


def _make(re: Any, im: Any, shape: tuple) -> Complex:
    """A complex result. It stays complex where its imaginary part is structurally zero, as NumPy's
    dtype does: ``np.sqrt(x + 0j)`` of a negative x is imaginary, not NaN."""
    return Complex(re, im, shape)


def _product(a, b, c, d, times: Callable) -> tuple:
    """(a + ib)·(c + id) with ``times`` the real product."""
    ac, bd, ad, bc = times(a, c), times(b, d), times(a, d), times(b, c)
    return _sub(ac, bd), _add(ad, bc)


def combine(op: str, args: list, params: dict | None = None) -> Any:
    """A binary op (``add``, ``sub``, ``mul``, ``div``, ``matmul``, ``pow`` with a small integer
    power) with a complex operand, expanded into real ops on the parts."""
    if op not in ("add", "sub", "mul", "div", "matmul", "pow"):
        raise UnsupportedOperationError(
            f"{op} of a traced array and a complex value at {call_site()} is not supported; complex values take "
            "+ - * / @, integer powers, np.exp, np.sqrt, np.abs, np.angle, np.real, np.imag and np.fft")
    (a, b, s1), (c, d, s2) = _lift(args[0]), _lift(args[1])
    if op == "pow":
        k = args[1]
        if not (np.ndim(k) == 0 and not isinstance(k, (Tracer, Complex)) and float(np.real(k)) == int(np.real(k))
                and np.imag(k) == 0 and 0 <= int(np.real(k)) <= 64):
            raise UnsupportedOperationError(f"a power of a traced complex array at {call_site()}: only constant "
                                            "integer powers 0 to 64 are supported")
        out: Any = _make(np.ones(s1), None, s1)  # (complex, as NumPy's result is, also of a real base)
        for _ in range(int(np.real(k))):
            out = out * args[0]
        return out
    if op == "matmul":  # (parts broadcast to their operand's shape: x + 1j·v keeps v as it is)
        a, b = (None if p is None else _full(p, s1) for p in (a, b))
        c, d = (None if p is None else _full(p, s2) for p in (c, d))
        re, im = _product(a, b, c, d, _matmul)
        shape = np.shape(np.zeros(s1) @ np.zeros(s2))
        return _make(re, im, shape)
    shape = np.broadcast_shapes(s1, s2)
    if op == "add":
        return _make(_add(a, c), _add(b, d), shape)
    if op == "sub":
        return _make(_sub(a, c), _sub(b, d), shape)
    if op == "mul":
        re, im = _product(a, b, c, d, _mul)
        return _make(re, im, shape)
    if _is_zero(d):  # division by a real value
        return _make(None if _is_zero(a) else a / c, None if _is_zero(b) else b / c, shape)
    # (a + ib)/(c + id) = (a + ib)(c' − id')/((c'² + d'²)·s) with c' = c/s, d' = d/s and s = max(|c|, |d|):
    # c² + d² itself overflowed beyond 1e154 and underflowed below 1e-154, where NumPy's division
    # (and JAX's) scale as this does; the quotient does not depend on s, so neither does its derivative
    scale = np.abs(d) if _is_zero(c) else np.maximum(np.abs(c), np.abs(d))
    c, d = (None if _is_zero(c) else c / scale), d / scale
    norm = _add(_mul(c, c), _mul(d, d)) * scale
    re, im = _product(a, b, c, _neg(d), _mul)
    return _make(None if re is None else re / norm, None if im is None else im / norm, shape)


def _abs(z: Any) -> Any:
    re, im, shape = _lift(z)
    if im is None:
        return np.abs(_part(re, shape))
    return np.hypot(_part(re, shape), im)


def _angle(z: Any, deg: bool = False) -> Any:
    re, im, shape = _lift(z)
    out = np.arctan2(_part(im, shape), _part(re, shape))
    return out * (180.0 / np.pi) if deg else out


def _exp(z: Any) -> Any:
    re, im, shape = _lift(z)
    scale = np.exp(_part(re, shape))
    return _make(scale * np.cos(im), scale * np.sin(im), shape) if im is not None else _make(scale, None, shape)


def _sqrt(z: Any) -> Any:
    """The principal square root, NumPy's branch: with t = √((|z| + |re|)/2), re ≥ 0 gives
    t + i·im/(2t) and re < 0 gives |im|/(2t) ± i·t (the sign of im's, −0 included), so neither
    branch divides by a vanishing value away from z = 0 (the textbook √((|z| ± re)/2) has an
    infinite derivative on the real axis). A structurally zero imaginary part (``x + 0j``) counts
    as +0: √|x| lies on the real or the imaginary axis by the sign of x. Which branch a value
    takes is read from it, as a comparison is."""
    re, im, shape = _lift(z)
    a = _part(re, shape)
    if im is None:
        root = np.sqrt(np.abs(a))
        return _make(np.where(a >= 0, root, 0.0), np.where(a < 0, root, 0.0), shape)
    b = _part(im, shape)
    t = np.sqrt((np.hypot(a, b) + np.abs(a)) / 2)
    right = a >= 0
    negative = np.signbit(b)  # (of a traced b: read from its value, -0.0 included; the trace depends on it)
    return _make(np.where(right, t, np.abs(b) / (2 * t)),
                 np.where(right, b / (2 * t), np.where(negative, -t, t)), shape)


_TWO_OVER_ROOT_PI = 2.0 / np.sqrt(np.pi)
#: scipy.special's holomorphic functions of a complex argument: name -> w'(z) from z and w(z)
_HOLOMORPHIC: dict[str, Callable] = {
    "wofz": lambda z, w: -2.0 * z * w + 1j * _TWO_OVER_ROOT_PI,
    "erf": lambda z, w: _TWO_OVER_ROOT_PI * np.exp(-z * z),
    "erfc": lambda z, w: -_TWO_OVER_ROOT_PI * np.exp(-z * z),
    "erfi": lambda z, w: _TWO_OVER_ROOT_PI * np.exp(z * z),
    "erfcx": lambda z, w: 2.0 * z * w - _TWO_OVER_ROOT_PI,
    "dawsn": lambda z, w: 1.0 - 2.0 * z * w,
}


def _holomorphic(name: str) -> Callable:
    """``scipy.special.<name>`` of a complex traced value: SciPy's value w₀ at the traced point plus
    w'(z₀)·(z − z₀), the complex derivative (Cauchy–Riemann: one complex product of the parts).
    Read at the traced point, so the trace is value-dependent; the value is SciPy's bit for bit."""
    def rule(z):
        import scipy.special as sp  # (imported: SciPy's ufunc was called)

        re, im, shape = _lift(z)
        next(p for p in (re, im) if isinstance(p, Tracer)).tape.note_value_dependence(
            f"scipy.special.{name}'s complex derivative at the traced point")
        z0 = np.broadcast_to(_part_value(re) + 1j * _part_value(im), shape)
        w0 = getattr(sp, name)(z0)
        with np.errstate(all="ignore"):
            slope = _HOLOMORPHIC[name](z0, w0)
        bad = np.isfinite(z0) & ~(np.isfinite(w0) & np.isfinite(slope))
        if bad.any():  # (w₀ + w′·(z − z₀) would be inf·0 = NaN there, not SciPy's ±inf)
            raise UnsupportedOperationError(
                f"scipy.special.{name} at {call_site()} overflows at {z0[bad].flat[0]:.6g}: its value there is not "
                "finite, and has no derivative; scale the argument, or use a form that stays finite (wofz for "
                "erfc of a large argument, erfcx for exp(z²)·erfc(z))")
        change = combine("mul", [Complex(slope.real, slope.imag, shape), combine("sub", [z, z0])])
        return Complex(_add(change.re, w0.real) if change.re is not None else w0.real,
                       _add(change.im, w0.imag) if change.im is not None else w0.imag, shape)
    return rule


_UFUNCS: dict[str, Callable] = {
    **{name: _holomorphic(name) for name in _HOLOMORPHIC},
    "add": lambda x, y: combine("add", [x, y]), "subtract": lambda x, y: combine("sub", [x, y]),
    "multiply": lambda x, y: combine("mul", [x, y]), "true_divide": lambda x, y: combine("div", [x, y]),
    "divide": lambda x, y: combine("div", [x, y]), "matmul": lambda x, y: combine("matmul", [x, y]),
    "power": lambda x, y: combine("pow", [x, y]), "negative": lambda z: -z, "positive": lambda z: z,
    "conjugate": lambda z: z.conj() if isinstance(z, Complex) else z, "absolute": _abs, "exp": _exp,
    "square": lambda z: combine("mul", [z, z]), "sqrt": _sqrt,
}


# -- FFTs: real-linear maps of the parts ---------------------------------------------------------

def _basis_map(fn: Callable, size: int, scale: complex, n: int | None, norm: str | None) -> np.ndarray:
    """``fn`` of ``scale`` times the identity's rows: the map's matrix (the small ones kept: traces
    repeat; a large one, megabytes, is made again rather than held)."""
    if size * (n or size) <= 1 << 16:
        return _kept_map(fn, size, scale, n, norm)
    return np.asarray(fn(scale * np.eye(size), n=n, axis=-1, norm=norm))


@functools.lru_cache(maxsize=64)
def _kept_map(fn: Callable, size: int, scale: complex, n: int | None, norm: str | None) -> np.ndarray:
    m = np.asarray(fn(scale * np.eye(size), n=n, axis=-1, norm=norm))
    m.setflags(write=False)
    return m


def _linear(fn: Callable, z: Any, axis: int, **kw) -> Any:
    """``fn(z, axis=axis, **kw)`` (a one-dimensional NumPy FFT) of a traced or complex ``z``, as
    out = re·A + im·B (real and imaginary parts alike), A and B ``fn`` of the identity and of i
    times it, along ``axis``."""
    re, im, shape = _lift(z)
    if not shape:
        raise ValueError(f"an FFT needs at least one axis (numpy.fft at {call_site()})")
    ax = axis % len(shape)
    size = shape[ax]
    maps = [(part, _basis_map(fn, size, scale, kw.get("n"), kw.get("norm")))
            for part, scale in ((re, 1.0), (im, 1j)) if part is not None]
    out_re = out_im = None
    for part, m in maps:
        moved = np.moveaxis(_full(part, shape), ax, -1)
        if np.any(m.real):
            out_re = _add(out_re, moved @ np.ascontiguousarray(m.real))
        if np.iscomplexobj(m) and np.any(m.imag):
            out_im = _add(out_im, moved @ np.ascontiguousarray(m.imag))
    width = maps[0][1].shape[-1] if maps else size
    out_shape = shape[:ax] + (width,) + shape[ax + 1:]

    def back(p):
        return None if p is None else np.moveaxis(p, -1, ax)
    return _make(back(out_re), back(out_im), out_shape) if maps else np.zeros(out_shape)


def _anchored(found: np.ndarray, traced: Any) -> Any:
    """``traced`` (real or :class:`Complex`) with NumPy's values ``found``."""
    if isinstance(traced, Complex) and not np.iscomplexobj(found):  # a real transform (irfft, hfft)
        return implicit.anchored(found, _part(traced.re, traced.shape))
    if not isinstance(traced, Complex):
        if np.iscomplexobj(found):  # a complex result whose imaginary part is zero: complex still
            return Complex(implicit.anchored(found.real, traced), None, np.shape(found))
        return implicit.anchored(found, traced)
    with np.errstate(all="ignore"):  # (the parts' rounding is relative to the values' moduli)
        scale = float(np.max(np.abs(found), initial=0.0, where=np.isfinite(found)))
    re = None if traced.re is None else implicit.anchored(found.real, traced.re, scale)
    im = None if traced.im is None else implicit.anchored(found.imag, traced.im, scale)
    return Complex(re, im, traced.shape)


def _plain(z: Any) -> Any:
    return z.value if isinstance(z, (Complex, Tracer)) else z


def _one_d(fn: Callable) -> Callable:
    def transform(a, n=None, axis=-1, norm=None, out=None):
        if out is not None:
            raise UnsupportedOperationError(f"numpy.fft.{fn.__name__}(..., out=) at {call_site()}: use its result")
        found = fn(_plain(a), n=n, axis=axis, norm=norm)
        return _anchored(found, _linear(fn, a, axis, n=n, norm=norm))
    transform.__name__ = fn.__name__
    return transform


def _axes_and_sizes(a: Any, s: Any, axes: Any, default: tuple | None) -> tuple[list, list]:
    ndim = len(_lift(a)[2])
    if axes is None:
        axes = default if default is not None else (range(-len(s), 0) if s is not None else range(ndim))
    axes = [int(ax) % ndim for ax in axes]
    sizes = list(s) if s is not None else [None] * len(axes)
    if len(sizes) != len(axes):
        raise ValueError(f"shape and axes have different lengths (numpy.fft at {call_site()})")
    return axes, sizes


def _n_d(fn: Callable, one: Callable, last: Callable | None = None, default: tuple | None = None,
         backwards: bool = False) -> Callable:
    """An n-d FFT as one-d ones along each axis (``last`` along the last axis: rfftn first,
    irfftn after the others)."""
    def transform(a, s=None, axes=None, norm=None, out=None):
        if out is not None:
            raise UnsupportedOperationError(f"numpy.fft.{fn.__name__}(..., out=) at {call_site()}: use its result")
        found = fn(_plain(a), s=s, axes=axes, norm=norm)
        axes_, sizes = _axes_and_sizes(a, s, axes, default)
        steps = list(zip(axes_, sizes))
        order = ([(last, *steps[-1])] if last else []) + [(one, ax, n) for ax, n in steps[: -1 if last else None]]
        if backwards:
            order = order[::-1]
        z = a
        for f1, ax, n in order:
            z = _linear(f1, z, ax, n=n, norm=norm)
        return _anchored(found, z)
    transform.__name__ = fn.__name__
    return transform


_FFT = np.fft
_ONE_D = {f: _one_d(f) for f in (_FFT.fft, _FFT.ifft, _FFT.rfft, _FFT.irfft, _FFT.hfft, _FFT.ihfft)}
_N_D = {
    _FFT.fftn: _n_d(_FFT.fftn, _FFT.fft), _FFT.ifftn: _n_d(_FFT.ifftn, _FFT.ifft),
    _FFT.fft2: _n_d(_FFT.fft2, _FFT.fft, default=(-2, -1)), _FFT.ifft2: _n_d(_FFT.ifft2, _FFT.ifft, default=(-2, -1)),
    _FFT.rfftn: _n_d(_FFT.rfftn, _FFT.fft, _FFT.rfft), _FFT.rfft2: _n_d(_FFT.rfft2, _FFT.fft, _FFT.rfft, (-2, -1)),
    _FFT.irfftn: _n_d(_FFT.irfftn, _FFT.ifft, _FFT.irfft, backwards=True),
    _FFT.irfft2: _n_d(_FFT.irfft2, _FFT.ifft, _FFT.irfft, (-2, -1), backwards=True),
}


def _shifted(fn: Callable) -> Callable:
    def shift(x, axes=None):
        if isinstance(x, Complex):
            return x._each(lambda p: fn(p, axes))
        return fn(x, axes)  # (a real traced array: NumPy's own code, np.roll)
    return shift


def _plain_reduction(what: str, dtype, out, rest: dict) -> None:
    """Refuse what a complex sum or mean does not take (it ignored them: ``where=`` summed every entry)."""
    given = [k for k, v in (("dtype", dtype), ("out", out), *rest.items()) if v is not None]
    if given:
        raise UnsupportedOperationError(
            f"{what} of a traced complex value at {call_site()} with {', '.join(f'{k}=' for k in given)}: not "
            "supported; multiply by a mask (z * mask) to leave entries out, add an initial value after")


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _plain_reduction("numpy.sum", dtype, out, rest)
    return a.sum(axis, keepdims)


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _plain_reduction("numpy.mean", dtype, out, rest)
    return a.mean(axis, keepdims)


def _sort_complex(z: Complex) -> Complex:
    """NumPy's order of complex values (real part, then imaginary part) along the last axis, read at
    the traced point; both parts gathered by it."""
    from .gathers import _value

    if z.ndim == 0:
        raise np.exceptions.AxisError(-1, 0)  # (NumPy's error for a 0-d array)

    def value(p):
        return np.zeros(z.shape) if p is None else _full(
            _value(p, "numpy.sort_complex (its order)") if isinstance(p, Tracer) else np.asarray(p), z.shape)
    order = np.argsort(value(z.re) + 1j * value(z.im), axis=-1, kind="stable")
    return z._each(lambda p: np.take_along_axis(p, order, axis=-1))


def _real_if_close(a, tol=100):
    """NumPy's test at the traced point: the real part where every imaginary part is below ``tol``
    machine epsilons (``tol`` itself where it is at most 1), else the complex value; a structurally
    zero imaginary part (``x + 0j``) always is. A traced one is read (the trace is value-dependent)."""
    z = a if isinstance(a, Complex) else None
    if z is None or z.im is None:
        return a.real
    from .gathers import _value

    im = _value(z.im, "numpy.real_if_close (its test)") if isinstance(z.im, Tracer) else np.asarray(z.im)
    bound = tol * np.finfo(float).eps if tol > 1 else tol
    return z.real if bool(np.all(np.abs(im) < bound)) else z


_FUNCTIONS: dict[Callable, Callable] = {
    np.real_if_close: _real_if_close,
    **_ONE_D, **_N_D,
    np.real: lambda z: z.real, np.imag: lambda z: z.imag, np.angle: _angle, np.conj: lambda z: z.conj(),
    np.sort_complex: _sort_complex,
    np.sum: _sum, np.mean: _mean, np.reshape: lambda a, shape, order="C", **_: a.reshape(shape, order=order),
    np.transpose: lambda a, axes=None: a.transpose(*(axes or ())), np.ravel: lambda a, order="C": a.ravel(),
    _FFT.fftshift: _shifted(_FFT.fftshift), _FFT.ifftshift: _shifted(_FFT.ifftshift),
}
COMPLEX_OPS[0] = combine
implements_ufunc("wofz")(lambda tape, x: _UFUNCS["wofz"](x))  # (of a real value too: its result is complex)
for _f, _h in {**_ONE_D, **_N_D}.items():
    implements(_f)(_h)
implements(_FFT.fftshift)(lambda x, axes=None: np.roll(x, [np.shape(x)[a] // 2 for a in _shift_axes(x, axes)],
                                                        _shift_axes(x, axes)))
implements(_FFT.ifftshift)(lambda x, axes=None: np.roll(x, [-(np.shape(x)[a] // 2) for a in _shift_axes(x, axes)],
                                                         _shift_axes(x, axes)))


def _shift_axes(x, axes) -> list[int]:
    if axes is None:
        return list(range(np.ndim(x)))
    return [int(a) for a in (axes if np.ndim(axes) else [axes])]


def supported() -> list[str]:
    """The NumPy functions recorded on complex values."""
    return sorted(f"numpy.fft.{f.__name__}" for f in (*_ONE_D, *_N_D))


# -- examples (JAX is the reference: its complex numbers are native) ----------------------------

def _x(r, shape=(6,)):
    return r.normal(size=shape)


case("scipy.special.wofz", lambda xp: lambda x, g: __import__("scipy.special").special.wofz((x + 1j * g) / 1.5).real,
     lambda r: (_x(r, (6,)), np.abs(_x(r, (6,))) + 0.2), argnums=(0, 1), jax=False,
     note="a Voigt profile; complex arguments (real ones too): SciPy's value and its complex derivative "
          "−2z·w(z) + 2i/√π, read at the traced point; erf, erfc, erfi, erfcx and dawsn of complex arguments alike")
case("numpy.real_if_close", lambda xp: lambda x: xp.real_if_close(xp.fft.ifft(xp.fft.fft(x))) * x,
     lambda r: (_x(r, (6,)),), jax=False, note="NumPy's test read at the traced point; x + 0j is always close")
case("numpy.fft.rfft", lambda xp: lambda x: xp.abs(xp.fft.rfft(x)) ** 2, lambda r: (_x(r, (8,)),),
     note="a power spectrum: the transform a real-linear map (NumPy's own of the identity), |z| a hypot")
case("numpy.fft.irfft", lambda xp: lambda x, h: xp.fft.irfft(xp.fft.rfft(x) * h, 8),
     lambda r: (_x(r, (8,)), _x(r, (5,))), argnums=(0, 1), variant="filtering", note="a filter in frequency")
case("numpy.fft.fft", lambda xp: lambda x: xp.angle(xp.fft.fft(x * (1.0 + 0.5j)))[1:], lambda r: (_x(r, (5,)),))
case("numpy.fft.ifft", lambda xp: lambda x: xp.real(xp.fft.ifft(xp.exp(1j * x) * xp.arange(1.0, 6.0))),
     lambda r: (_x(r, (5,)),), note="np.exp(1j * t): cos t + i sin t")
case("numpy.fft.fft2", lambda xp: lambda x: xp.imag(xp.fft.fft2(x, norm="ortho")), lambda r: (_x(r, (3, 4)),))
case("numpy.fft.rfftn", lambda xp: lambda x: xp.abs(xp.fft.rfftn(x, axes=(0, 2))).sum(axis=1),
     lambda r: (_x(r, (3, 2, 4)),))
case("numpy.fft.irfft2", lambda xp: lambda x: xp.fft.irfft2(xp.fft.rfft2(x) / (1.0 + 1j)), lambda r: (_x(r, (4, 4)),))
case("numpy.fft.hfft", lambda xp: lambda x: xp.fft.hfft(x * (2.0 - 1j), 6), lambda r: (_x(r, (4,)),), jax=False)
case("numpy.fft.fft", lambda xp: lambda x: xp.abs(xp.sqrt(xp.fft.fft(x) * (1.0 - 0.5j))), lambda r: (_x(r, (6,)),),
     variant="sqrt", note="np.sqrt of a complex value: NumPy's principal branch, finite derivative on the real axis")
case("numpy.fft.fftshift", lambda xp: lambda x: xp.fft.fftshift(xp.fft.fft(x)).real, lambda r: (_x(r, (5,)),))
