"""Numerical helpers written in terms of recorded ops: differences (``diff``, ``ediff1d``,
``gradient``), integration (``trapezoid``), polynomials (``polyval``, ``vander``, ``polyfit``),
interpolation (``interp``), phase unwrapping (``unwrap``), ``nan_to_num``, grids (``linspace``,
``meshgrid``), covariance (``cov``, ``corrcoef``), 1-d convolution (``convolve``, ``correlate``) and
the ``*_like`` constructors.

Each follows NumPy's own formula step by step (same operations, same order), so values match
NumPy's bit for bit, except ``convolve`` and ``correlate``, whose sums run in another order
(equal to rounding); the partials come from the ops they are made of, which keeps them
structured: a difference is two selections and a subtraction (no multiplication at all), a short
convolution a sum of scaled shifts (a few values per row), a long one a gather of sliding windows
and one product with the kernel.
"""

from __future__ import annotations

import builtins
import functools
import operator
import warnings
from typing import Callable

import numpy as np

from .. import graph as G
from .. import lazy
from .. import structure as S
from ..constructors import replacement, routed, swap_during_traces
from ..lanes import Lanes
from ..masks import Mask
from ..ops import Op, ShapeError, _ew, register
from ..trace import (
    _NOT,
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _axes_of,
    _check_dtype,
    _int,
    _refuse,
    _take,
    _tape_of,
    call_site,
    implements,
    note_raising,
)
from . import FREE, case
from .gathers import _along, _mask, _one_axis, _value
from .orders import BLOCK_MAX
from .writes import _target

# -- constructors -------------------------------------------------------------------------------


def _constant_like(what: str, a, value, dtype, shape):
    """``value`` in ``a``'s shape (or ``shape``). Its values do not depend on ``a``'s; where ``a`` is
    traced, and not 0-d, the result is a traced array too (a ``broadcast_to`` of the value, no
    edge from ``a``), so code that fills it in (``out = np.zeros_like(x); out[0] = ...``) traces.
    A boolean or integer ``dtype`` gives a constant array of it (a mask to fill in: SciPy's
    ``zeros_like(x, dtype=bool)``), which holds no derivative."""
    shape = np.shape(a) if shape is None else tuple(np.atleast_1d(np.asarray(shape, dtype=np.intp)).tolist())
    if dtype is not None and np.dtype(dtype).kind in "biu" and not isinstance(value, Tracer):
        return np.full(shape, value, dtype=dtype)
    _check_dtype(what, a, dtype)
    traced = isinstance(value, Tracer)
    if not traced:
        value = np.float64(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)
    if isinstance(a, Tracer) and shape != () or traced:
        try:
            np.broadcast_shapes(np.shape(value), shape)
        except ValueError:
            raise ValueError(f"{what} at {call_site()}: the fill value of shape {np.shape(value)} does not broadcast "
                             f"to {shape}") from None
        return _tape_of(a if isinstance(a, Tracer) else value).record("broadcast_to", [value], {"shape": list(shape)})
    return np.full(shape, value, dtype=float)


def _like(what: str, fill: float):
    def like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
        _refuse(what, device=device)
        return _constant_like(what, a, fill, dtype, shape)
    like.__name__ = what.rsplit(".", 1)[-1]
    return like


for _fn, _fill in ((np.zeros_like, 0.0), (np.ones_like, 1.0), (np.empty_like, 0.0)):
    implements(_fn)(_like(f"numpy.{_fn.__name__}", _fill))


@implements(np.full_like)
def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    _refuse("numpy.full_like", device=device)
    return _constant_like("numpy.full_like", a, fill_value, dtype, shape)


# -- differences --------------------------------------------------------------------------------


def _edge(value, a, k: int):
    """A prepend/append value as a slab of ``a`` along axis ``k`` (a scalar is broadcast)."""
    if np.ndim(value) == 0:
        shape = list(np.shape(a))
        shape[k] = 1
        return np.broadcast_to(value, shape)
    return value


@implements(np.diff)
def _diff(a, n=1, axis=-1, prepend=_NOT, append=_NOT):
    n = _int(n, "n")
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    if n == 0:
        return a
    nd = np.ndim(a)
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    k = _one_axis(a, axis, "numpy.diff")
    parts = [a]
    if prepend is not _NOT:
        parts.insert(0, _edge(prepend, a, k))
    if append is not _NOT:
        parts.append(_edge(append, a, k))
    if len(parts) > 1:
        a = np.concatenate(parts, axis=k)
    for _ in range(n):
        a = a[_along(k, nd, slice(1, None))] - a[_along(k, nd, slice(None, -1))]
    return a


@implements(np.ediff1d)
def _ediff1d(ary, to_end=None, to_begin=None):
    d = np.diff(np.reshape(ary, -1))
    if to_begin is None and to_end is None:
        return d
    parts = [np.reshape(p, -1) for p in (to_begin, to_end) if p is not None]
    return np.concatenate(parts[:1] + [d] + parts[1:] if to_begin is not None else [d] + parts)


@implements(np.gradient)
def _gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy's second-order central differences inside and one-sided ones of order
    ``edge_order`` at the ends, for scalar spacings or constant coordinate arrays."""
    nd = np.ndim(f)
    axes = _axes_of(axis, nd, "numpy.gradient") if axis is None else [
        _one_axis(f, k, "numpy.gradient") for k in np.atleast_1d(axis).tolist()]
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError("invalid number of arguments")
    edge_order = _int(edge_order, "edge_order")
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    if not axes:
        raise ValueError("Shape of array too small to calculate a numerical gradient, "
                         "at least (edge_order + 1) elements are required.")
    out = [_gradient_along(f, k, h, edge_order) for k, h in zip(axes, spacing)]
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f, k: int, h, order: int):
    nd, n = np.ndim(f), np.shape(f)[k]
    if n < order + 1:
        raise ValueError("Shape of array too small to calculate a numerical gradient, "
                         "at least (edge_order + 1) elements are required.")
    if isinstance(h, Tracer):
        raise TraceError(f"numpy.gradient at {call_site()}: the spacing is traced; pass it as a constant")
    at = lambda i: f[_along(k, nd, i)]  # noqa: E731
    shape = [1] * nd
    shape[k] = -1
    if np.ndim(h) == 0:  # uniform spacing h
        h = float(h)
        inner = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
        if order == 1:
            first, last = (at(slice(1, 2)) - at(slice(0, 1))) / h, (at(slice(-1, None)) - at(slice(-2, -1))) / h
        else:
            first = -1.5 / h * at(slice(0, 1)) + 2.0 / h * at(slice(1, 2)) - 0.5 / h * at(slice(2, 3))
            last = 0.5 / h * at(slice(-3, -2)) - 2.0 / h * at(slice(-2, -1)) + 1.5 / h * at(slice(-1, None))
        return np.concatenate([first, inner, last], axis=k)
    x = np.asarray(h, dtype=float)
    if x.ndim != 1 or len(x) != n:
        raise ValueError("distances must be either scalars or match the length of the corresponding dimension")
    dx = np.diff(x)
    if np.all(dx == dx[0]):  # evenly spaced coordinates: NumPy uses the uniform formulas
        return _gradient_along(f, k, float(dx[0]), order)
    d1, d2 = dx[:-1], dx[1:]
    a = (-d2 / (d1 * (d1 + d2))).reshape(shape)
    b = ((d2 - d1) / (d1 * d2)).reshape(shape)
    c = (d1 / (d2 * (d1 + d2))).reshape(shape)
    inner = a * at(slice(None, -2)) + b * at(slice(1, -1)) + c * at(slice(2, None))
    if order == 1:
        first = (at(slice(1, 2)) - at(slice(0, 1))) / dx[0]
        last = (at(slice(-1, None)) - at(slice(-2, -1))) / dx[-1]
    else:
        e1, e2 = dx[0], dx[1]
        first = (-(2.0 * e1 + e2) / (e1 * (e1 + e2)) * at(slice(0, 1)) + (e1 + e2) / (e1 * e2) * at(slice(1, 2))
                 - e1 / (e2 * (e1 + e2)) * at(slice(2, 3)))
        e1, e2 = dx[-2], dx[-1]
        last = (e2 / (e1 * (e1 + e2)) * at(slice(-3, -2)) - (e2 + e1) / (e1 * e2) * at(slice(-2, -1))
                + (2.0 * e2 + e1) / (e2 * (e1 + e2)) * at(slice(-1, None)))
    return np.concatenate([first, inner, last], axis=k)


# -- integration, polynomials, grids --------------------------------------------------------------


def _trapezoid(y, x=None, dx=1.0, axis=-1):
    nd = np.ndim(y)
    k = _one_axis(y, axis, "numpy.trapezoid")
    if x is None:
        d = dx
    else:
        d = np.diff(x)
        if np.ndim(x) == 1:
            shape = [1] * nd
            shape[k] = -1
            d = np.reshape(d, shape)
        else:
            d = np.diff(x, axis=k)
    return np.sum(d * (y[_along(k, nd, slice(1, None))] + y[_along(k, nd, slice(None, -1))]) / 2.0, axis=k)


if hasattr(np, "trapezoid"):
    implements(np.trapezoid)(_trapezoid)
if hasattr(np, "trapz"):
    implements(np.trapz)(_trapezoid)


def _coefficients(p):
    """A polynomial's coefficients, highest power first: a ``np.poly1d``'s ``coeffs`` (its ``p[i]``
    is the coefficient of xⁱ, the other way round), else ``p``."""
    return p.coeffs if isinstance(p, np.poly1d) else p


def _as_given(result, *given):
    """``result`` as a ``np.poly1d`` where one of the polynomials given was one (as NumPy's)."""
    return np.poly1d(result) if any(isinstance(g, np.poly1d) for g in given) else result


@implements(np.polyval)
def _polyval(p, x):
    if isinstance(x, np.poly1d):
        raise UnsupportedOperationError(f"numpy.polyval of a np.poly1d point at {call_site()} (a composition of "
                                        "polynomials): compose the coefficients (np.polymul, np.polyadd) instead")
    p = _coefficients(p)
    if np.ndim(p) != 1:
        raise TraceError(f"numpy.polyval at {call_site()}: the coefficients must be a 1-d array")
    y = np.zeros(np.shape(x))  # NumPy's Horner loop, from zeros (so 0·inf gives nan, as there)
    for i in range(np.shape(p)[0]):
        y = y * x + p[i]
    return y


@implements(np.vander)
def _vander(x, N=None, increasing=False):
    if np.ndim(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = np.shape(x)[0] if N is None else _int(N, "N")
    cols = [np.ones(np.shape(x))] if n else []
    for _ in range(1, n):  # NumPy's running product: x⁰, x¹ = 1·x, x² = x¹·x, … (bit for bit)
        cols.append(cols[-1] * x)
    if not n:
        return np.zeros((np.shape(x)[0], 0))
    return np.stack(cols if increasing else cols[::-1], axis=1)


def _order(m, what: str) -> int:
    m = _int(m, "m")
    if m < 0:
        raise ValueError(f"Order of {what} must be positive (see {'polyint' if what == 'derivative' else 'polyder'})")
    return m


@implements(np.polyder)
def _polyder(p, m=1):
    """Coefficients times their powers, ``m`` times (NumPy's products, bit for bit)."""
    given, p = p, _coefficients(p)
    for _ in range(_order(m, "derivative")):
        n = np.shape(p)[0] - 1
        p = p[:-1] * np.arange(n, 0, -1, dtype=float)
    return _as_given(p, given)


@implements(np.polyint)
def _polyint(p, m=1, k=None):
    """Coefficients divided by their new powers, each integration constant appended, ``m`` times."""
    given, p = p, _coefficients(p)
    m = _order(m, "integral")
    k = np.zeros(m) if k is None else np.atleast_1d(k)
    if np.shape(k)[0] == 1 and m > 1:
        k = k[0] * np.ones(m)
    if np.shape(k)[0] < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    for i in range(m):
        p = np.concatenate([p / np.arange(np.shape(p)[0], 0, -1, dtype=float), np.reshape(k[i], (1,))])
    return _as_given(p, given)


def _aligned(a1, a2):
    """Both coefficient vectors padded with leading zeros to a common length, as NumPy's polyadd."""
    a1, a2 = np.atleast_1d(a1), np.atleast_1d(a2)
    diff = np.shape(a2)[0] - np.shape(a1)[0]
    if diff > 0:
        a1 = np.concatenate([np.zeros(diff), a1])
    elif diff < 0:
        a2 = np.concatenate([np.zeros(-diff), a2])
    return a1, a2


def _combined(fn: Callable) -> Callable:
    """``fn`` of two coefficient vectors, for polynomials as NumPy takes them (``np.poly1d`` too)."""
    return lambda a1, a2: _as_given(fn(_coefficients(a1), _coefficients(a2)), a1, a2)


_polyadd = implements(np.polyadd)(_combined(lambda a1, a2: operator.add(*_aligned(a1, a2))))
_polysub = implements(np.polysub)(_combined(lambda a1, a2: operator.sub(*_aligned(a1, a2))))
_polymul = implements(np.polymul)(_combined(np.convolve))


@implements(np.poly)
def _poly(seq_of_zeros):
    """The monic polynomial with the given roots: NumPy's convolution with ``[1, −z]`` per root,
    written as the shifted sum it is (bit for bit NumPy's). (A square matrix's characteristic
    polynomial goes through its complex eigenvalues in NumPy: refused.)"""
    if np.ndim(seq_of_zeros) != 1:
        raise UnsupportedOperationError(
            f"numpy.poly of a {np.ndim(seq_of_zeros)}-d array at {call_site()}: only a vector of roots is supported "
            "(a square matrix's characteristic polynomial needs its eigenvalues, which may be complex)")
    n = np.shape(seq_of_zeros)[0]
    if n == 0:
        return 1.0
    a = np.ones(1)
    for k in range(n):
        a = np.concatenate([a, np.zeros(1)]) + np.concatenate([np.zeros(1), a]) * -seq_of_zeros[k]
    return a


@implements(np.roots)
def _roots(p):
    """NumPy's roots at the traced point, as roots of the traced polynomial (implicit
    differentiation, jacc.numpy_api.implicit: dr = −(Σ dp_k r^(n−k)) / p′(r)). Real roots only: a
    complex root, or a multiple one (no derivative), is refused."""
    from .implicit import root

    if np.ndim(p) != 1:
        raise ValueError(f"Input must be a rank-1 array, got shape {np.shape(p)} (numpy.roots at {call_site()})")
    found = np.roots(_value(p, "numpy.roots (its roots)"))
    if np.iscomplexobj(found):
        if np.any(found.imag != 0):
            raise UnsupportedOperationError(
                f"numpy.roots at {call_site()}: the polynomial has complex roots ({found[found.imag != 0][0]:.6g} …), "
                "which a trace does not hold; its real roots can be found with a real solver (scipy.optimize.brentq)")
        found = found.real
    return root(lambda z: np.polyval(p, z), found, "numpy.roots", "a multiple root")


@implements(np.polydiv)
def _polydiv(u, v):
    """Quotient and remainder by NumPy's long division, coefficient by coefficient; the
    remainder's leading near-zeros are dropped as NumPy drops them (read at the traced point)."""
    given = (u, v)
    u, v = np.atleast_1d(_coefficients(u)), np.atleast_1d(_coefficients(v))
    if np.ndim(u) != 1 or np.ndim(v) != 1:
        raise ValueError("Polynomial must be 1d only.")
    m, n = np.shape(u)[0] - 1, np.shape(v)[0] - 1
    scale = 1.0 / v[0]
    r = [u[i] for i in range(m + 1)]
    q = []
    for k in range(m - n + 1):
        d = scale * r[k]
        q.append(d)
        for j in range(n + 1):
            r[k + j] = r[k + j] - d * v[j]
    while len(r) > 1 and np.allclose(_value(r[0], "numpy.polydiv (its remainder's degree)"), 0, rtol=1e-14):
        r = r[1:]
    return _as_given(np.stack(q) if q else np.zeros(1), *given), _as_given(np.stack(r), *given)


def _traced_poly(a) -> bool:
    """A ``np.poly1d`` of traced coefficients: NumPy's dispatch does not look inside it, so NumPy's
    own function would take its plain array (refused) without these replacements."""
    return isinstance(a, np.poly1d) and isinstance(a.coeffs, Tracer)


swap_during_traces("numpy", {name: routed(lambda _original, *args, fn=fn, **kwargs: fn(*args, **kwargs),
                                          traced=_traced_poly)
                             for name, fn in (("polyval", _polyval), ("polyder", _polyder), ("polyint", _polyint),
                                              ("polyadd", _polyadd), ("polysub", _polysub), ("polymul", _polymul),
                                              ("polydiv", _polydiv))})


@implements(np.geomspace)
def _geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """``logspace`` between the logarithms, its ends set to ``start`` and ``stop`` exactly, as NumPy
    computes it (the sign of ``start`` is factored out and back in)."""
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TraceError(f"numpy.geomspace at {call_site()}: dtype={dtype!r} (traced values stay float64)")
    if np.any(_value(start, "numpy.geomspace") == 0) or np.any(_value(stop, "numpy.geomspace") == 0):
        raise ValueError("Geometric sequence cannot include zero")
    num = _int(num, "num")
    sign = np.sign(start)
    start, stop = start / sign, stop / sign
    y = np.logspace(np.log10(start), np.log10(stop), num=num, endpoint=endpoint, base=10.0)
    if num > 0:
        shape = (1,) + np.shape(y)[1:]
        ends = [np.broadcast_to(start, shape), y[1:]]
        if num > 1 and endpoint:
            ends = [ends[0], y[1:-1], np.broadcast_to(stop, shape)]
        y = np.concatenate(ends)
    y = y * sign
    return y if axis == 0 else np.moveaxis(y, 0, _int(axis, "axis"))


def _series(original: Callable, x, c, tensor: bool = True):
    """polyval, chebval, … (``original``) at ``x``. NumPy gives every column of a 2-d ``c`` its value
    at every ``x`` (``tensor=True``) only when ``isinstance(x, np.ndarray)``, which a traced array
    is not, so the reshape it would make is made here, for a traced ``x`` and a constant one alike
    (``c`` traced: NumPy's reshape of a traced ``c`` is ours; without it, a (3, 2) ``c`` at two
    points silently paired columns with points)."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if tensor and isinstance(x, (np.ndarray, Tracer)):
        c = np.reshape(c, (np.shape(c) or (1,)) + (1,) * x.ndim)
    return original(x, c, tensor=False)


_POLYVAL = np.polynomial.polynomial.polyval  # NumPy's own, for the two-dimensional evaluations below
for _module, _name in (("polynomial", "polyval"), ("chebyshev", "chebval"), ("legendre", "legval"),
                       ("hermite", "hermval"), ("hermite_e", "hermeval"), ("laguerre", "lagval")):
    # eager: code that names the function is traced with the replacement from the first call (a
    # call that needs no other replacement would otherwise reach NumPy's code)
    swap_during_traces(f"numpy.polynomial.{_module}",
                       {_name: replacement(lambda o, b: _series(o, b.arguments["x"], b.arguments["c"],
                                                                b.arguments["tensor"]))}, eager=True)


#: each basis's pseudo-Vandermonde recurrence as NumPy's own code writes it (the same operations, so
#: the same rounding): the first column after the ones, and column i from the two before it
_VANDER = {
    ("polynomial", "polyvander"): (lambda x: x, lambda x, a, b, i: a * x),
    ("chebyshev", "chebvander"): (lambda x: x, lambda x, a, b, i: a * (2 * x) - b),
    ("legendre", "legvander"): (lambda x: x, lambda x, a, b, i: (a * x * (2 * i - 1) - b * (i - 1)) / i),
    ("hermite", "hermvander"): (lambda x: x * 2, lambda x, a, b, i: a * (x * 2) - b * (2 * (i - 1))),
    ("hermite_e", "hermevander"): (lambda x: x, lambda x, a, b, i: a * x - b * (i - 1)),
    ("laguerre", "lagvander"): (lambda x: 1 - x, lambda x, a, b, i: (a * (2 * i - 1 - x) - b * (i - 1)) / i),
}


def _vander(first: Callable, step: Callable) -> Callable:
    """``x``'s pseudo-Vandermonde matrix of degree ``deg`` (``x.shape + (deg + 1,)``) by ``first``
    and ``step`` (see :data:`_VANDER`): NumPy's code writes its columns into an ``np.empty``
    array, which cannot hold traced values; here they are stacked."""
    def vander(_original, x, deg):
        deg = _int(deg, "deg")
        if deg < 0:
            raise ValueError("deg must be non-negative")
        x = (np.stack(x) if isinstance(x, (list, tuple)) else x) + 0.0
        x = np.reshape(x, (1,)) if np.ndim(x) == 0 else x
        cols = [x * 0 + 1]
        if deg > 0:
            cols.append(first(x))
        for i in range(2, deg + 1):
            cols.append(step(x, cols[-1], cols[-2], i))
        return np.stack(cols, axis=-1)
    return vander


for (_module, _name), (_first, _step) in _VANDER.items():
    # (eager, as the evaluations: the 2-d and 3-d variants call these through the module)
    swap_during_traces(f"numpy.polynomial.{_module}", {_name: routed(_vander(_first, _step))}, eager=True)


@implements(np.polynomial.polynomial.polyval2d)
def _polyval2d(x, y, c):
    """Σ c_ij xⁱ yʲ at the points (x, y) (NumPy's shapes: x and y broadcast together)."""
    x, y = np.broadcast_arrays(x, y)
    return _series(_POLYVAL, y, _series(_POLYVAL, x, c), tensor=False)


@implements(np.polynomial.polynomial.polygrid2d)
def _polygrid2d(x, y, c):
    """Σ c_ij xⁱ yʲ on the grid x × y."""
    return _series(_POLYVAL, y, _series(_POLYVAL, x, c))


@implements(np.polyfit)
def _polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """The least-squares fit as NumPy computes it: the Vandermonde matrix, its columns scaled to
    unit norm, ``lstsq`` (a full-rank fit assumed, as ``lstsq``), the scale divided back out."""
    _refuse("numpy.polyfit", **({"full": True} if full else {}), **({"cov": cov} if cov else {}))
    deg = _int(deg, "deg")
    if deg < 0:
        raise ValueError("expected deg >= 0")
    if np.ndim(x) != 1 or np.ndim(y) not in (1, 2) or np.shape(x)[0] != np.shape(y)[0]:
        raise TypeError("expected 1-d x and 1-d or 2-d y with as many rows as x")
    lhs, rhs = np.vander(x, deg + 1), y
    if w is not None:
        if np.ndim(w) != 1 or np.shape(w)[0] != np.shape(x)[0]:
            raise TypeError("expected a 1-d w as long as x")
        lhs = lhs * w[:, None]
        rhs = rhs * (w if np.ndim(y) == 1 else w[:, None])
    if rcond is None:
        rcond = np.shape(x)[0] * np.finfo(float).eps
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    c = np.linalg.lstsq(lhs / scale, rhs, rcond=rcond)[0]
    return c / scale if np.ndim(y) == 1 else c / scale[:, None]


# -- interp: a recorded op where the knots are constants ---------------------------------------
# Which segment holds each x depends on x's values: the op's partials find it at each call (a
# searchsorted in the program), so the trace holds at every point.


def piece(x, breaks, xp=np):
    """The index j of the piece [breaks[j], breaks[j + 1]) that holds each x: at a break, the piece
    to its right; the first and last pieces extend past the ends (``interp``, ``ppoly``)."""
    return xp.clip(xp.searchsorted(breaks, x, side="right") - 1, 0, breaks.shape[0] - 2)


def _interp_place(x, knots, xp=np):
    """Each x's segment j (clipped to the first and last) and its position j + t in knot units."""
    knots = xp.asarray(knots)
    j = piece(x, knots, xp)
    k0 = xp.take(knots, j)
    return j, j + (x - k0) / (xp.take(knots, j + 1) - k0)


def _interp_slope(x, knots, fp, xp=np):
    """∂interp/∂x: the slope of x's segment (at a knot, the segment to its right; the last knot,
    the last segment's, as JAX's), 0 outside the knots."""
    knots, fp = xp.asarray(knots), xp.asarray(fp)
    j, _ = _interp_place(x, knots, xp)
    slope = (fp[1:] - fp[:-1]) / (knots[1:] - knots[:-1])
    return xp.where((x < knots[0]) | (x > knots[-1]), 0.0, xp.take(slope, j))


def _interp_weights(x, knots, left: bool, right: bool, xp=np):
    """∂interp/∂fp as x.shape + (n,): 1 − t and t on the knots around each x; outside them 1 on
    the end knot where ``left``/``right`` (fp's end values extend), else 0 (a constant)."""
    knots = xp.asarray(knots)
    n = knots.shape[0]
    _, pos = _interp_place(x, knots, xp)
    pos = xp.where(x < knots[0], 0.0, xp.where(x > knots[-1], n - 1.0, pos))
    hat = 1.0 - xp.abs(xp.arange(n) - pos[..., None])
    keep = xp.where(((x < knots[0]) & (not left)) | ((x > knots[-1]) & (not right)), 0.0, 1.0)[..., None]
    return xp.where(hat > 0.0, hat, 0.0) * keep


interp_slope, interp_weights = lazy.portable(_interp_slope), lazy.portable(_interp_weights)


def _interp_value(a: list, p: dict):
    if not np.all(np.diff(a[1]) > 0):  # (a constant: checked once when a program is recorded)
        raise ShapeError(f"interp's knots must increase strictly, got {np.asarray(a[1]).tolist()}")
    return lazy.asarray(np.interp(a[0], a[1], a[2], left=p.get("left"), right=p.get("right")))


def _interp_shape(shapes, params):
    k, f = tuple(shapes[1]), tuple(shapes[2])
    if len(k) != 1 or k != f or k[0] < 2:
        raise ShapeError(f"interp needs knots and values of one equal length ≥ 2, got shapes {k} and {f}")
    return tuple(shapes[0])


def _interp_partial(i: int, ctx):
    if i == 0:
        return _ew(ctx, 0, "out", lambda: interp_slope(ctx.args[0], ctx.args[1], ctx.args[2]))
    s, n = ctx.out_shape, ctx.shapes[2][0]
    return S.Jac(s, (n,), [-1], list(range(len(s) + 1)),
                 ctx.val(lambda: interp_weights(ctx.args[0], ctx.args[1], ctx.params.get("left") is None,
                                                ctx.params.get("right") is None), tuple(s) + (n,)))


register(Op("interp", _interp_value, _interp_shape, _interp_partial, 3,
            "numpy.interp(x, knots, fp, left, right) with constant increasing knots; the segments are "
            "found at each call", frozenset({1}), ("left", "right"), frozenset({1})))
G.PARAMS["interp"] = {"left": (G.optional(G.NUMBER), False), "right": (G.optional(G.NUMBER), False)}


@implements(np.interp)
def _interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation. With constant knots ``xp`` the ``interp`` op, its segments
    found at each call (``fp`` traced: a dense block of interpolation weights, up to
    :data:`jacc.numpy_api.orders.BLOCK_MAX` entries); otherwise NumPy's formula
    slope·(x − xpⱼ) + fpⱼ on the segment j that holds x, read at the traced point (the trace is
    value-dependent). At a knot the slope is the segment to its right's (the last knot: the last
    segment's), as JAX's. With ``period``, NumPy's reduction: x and the knots taken modulo the
    period, the knots sorted and extended by one on either side (``left`` and ``right`` ignored)."""
    xp, fp = (a if isinstance(a, Tracer) else np.asarray(a, dtype=float) for a in (xp, fp))  # (lists too)
    if np.ndim(xp) != 1 or np.ndim(fp) != 1 or np.shape(xp)[0] != np.shape(fp)[0]:
        raise ValueError("fp and xp are not of the same length" if np.ndim(xp) == np.ndim(fp) == 1
                         else "xp and fp must be 1-d sequences")
    if period is not None:
        if np.any(_value(period, "numpy.interp's period") == 0):
            raise ValueError("period must be a non-zero value")
        period = abs(period)
        x = (x if isinstance(x, Tracer) else np.asarray(x, dtype=float)) % period
        xp = xp % period
        order = np.argsort(xp)
        xp, fp = xp[order], fp[order]
        xp, fp = np.concatenate((xp[-1:] - period, xp, xp[:1] + period)), np.concatenate((fp[-1:], fp, fp[:1]))
        return _interp(x, xp, fp)
    if (isinstance(x, Tracer) and not isinstance(xp, Tracer) and not any(isinstance(b, Tracer) for b in (left, right))
            and xp.size >= 2 and np.all(np.diff(xp) > 0)
            and (not isinstance(fp, Tracer) or np.size(x) * xp.size <= BLOCK_MAX)):
        bounds = {k: None if b is None else float(b) for k, b in (("left", left), ("right", right))}
        return _tape_of(x).record("interp", [x, xp, fp], bounds)
    xv, kv = np.asarray(_value(x, "numpy.interp (its segments)"), float), _value(xp, "numpy.interp (its segments)")
    n = np.shape(xp)[0]
    if n == 0:
        raise ValueError("array of sample points is empty")
    lo = fp[0] if left is None else left
    hi = fp[-1] if right is None else right
    if n == 1:
        inner = np.broadcast_to(fp[0], np.shape(x)) + 0.0 * x
    else:
        j = np.clip(np.searchsorted(kv, xv, side="right") - 1, 0, n - 2)
        x0, f0 = xp[j], fp[j]
        # a segment of no width (a repeated end knot, reached by clipping j): its right value, as
        # NumPy's at x = xp[-1], and no 1/0 in a derivative np.where leaves out (0·inf is NaN)
        flat = np.diff(np.asarray(kv))[j] == 0
        width = np.where(flat, 1.0, xp[j + 1] - x0)
        inner = np.where(flat, fp[j + 1], (fp[j + 1] - f0) / width * (x - x0) + f0)
    return np.where(xv < kv[0], lo, np.where(xv > kv[-1], hi, inner))


# NumPy dispatches np.interp on x, xp and fp alone: a traced period (or left, right) comes here
swap_during_traces("numpy", {"interp": routed(lambda _original, *args, **kwargs: _interp(*args, **kwargs))})


@implements(np.unwrap)
def _unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    """NumPy's value (a constant correction read at the traced point, so the trace is
    value-dependent) with the derivative of p itself: the corrections are whole periods."""
    k = _one_axis(p, axis, "numpy.unwrap")
    value = np.unwrap(_value(p, "numpy.unwrap (its corrections)"), discont=discont, axis=k, period=period)
    if not isinstance(p, Tracer):
        return value
    return _tape_of(p).record("value_from", [np.asarray(value, float), p])


@implements(np.nan_to_num)
def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """x where finite (derivative 1), the replacements elsewhere (derivative 0), chosen by recorded
    masks (:mod:`jacc.masks`), so the trace holds at every point."""
    for name, v in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if isinstance(v, Tracer):
            raise TraceError(f"numpy.nan_to_num at {call_site()}: {name}= is traced; pass a constant")
    big = np.finfo(float).max
    fill = np.where(np.isnan(x), nan, np.where(x > 0, big if posinf is None else posinf,
                                                -big if neginf is None else neginf))
    out = np.where(np.isfinite(x), x, fill)
    if copy:
        return out
    # NumPy changes x itself and returns it: every name for x sees the change
    x = _target(x, "numpy.nan_to_num(copy=False)", "x = np.nan_to_num(x)")
    return _take(x, out)


@implements(np.piecewise)
def _piecewise(x, condlist, funclist, *args, **kw):
    """NumPy's piecewise; later conditions win, an extra function covers the rest. Traced masks of
    ``x``'s shape (:mod:`jacc.masks`): :func:`_written_piecewise`, the trace holds at every point.
    Other conditions are read at the traced point, and each function (or constant) is evaluated on
    the elements its condition selects and placed back by a scatter (so a function is never
    evaluated outside its piece, where a log or a root could make NaNs)."""
    shape = np.shape(x)
    if not isinstance(condlist, (list, tuple)):  # one array: one condition, or (NumPy) its rows each one
        cshape = tuple(getattr(condlist, "shape", np.shape(condlist)))
        if shape and not isinstance(condlist, Tracer) and len(cshape) >= 2:
            if cshape[1:] != shape:  # (NumPy indexes x with each row: rows of x's leading axes)
                raise UnsupportedOperationError(
                    f"numpy.piecewise at {call_site()}: one condition array of shape {cshape} for x of shape {shape}: "
                    "NumPy reads its rows as the conditions and selects rows of x with each; pass a list of "
                    "conditions of x's shape ([c] for one), or stacked conditions of x's shape")
            condlist = [condlist[i] for i in range(cshape[0])]
        else:
            condlist = [condlist]
    elif shape and condlist and not isinstance(condlist[0], (list, tuple, np.ndarray, Mask, Tracer)):
        condlist = [condlist]  # (NumPy: a list of booleans is one condition)
    if (isinstance(x, Tracer) and shape and condlist and len(funclist) in (len(condlist), len(condlist) + 1)
            and all(type(c) is Mask and c.shape == shape for c in condlist)):
        return _written_piecewise(x, list(condlist), funclist, args, kw)
    masks = [np.broadcast_to(_mask(c, "numpy.piecewise"), shape) for c in condlist]
    if len(funclist) == len(masks) + 1:
        masks.append(~np.any(masks, axis=0) if masks else np.ones(shape, bool))
    elif len(funclist) != len(masks):
        raise ValueError(f"with {len(masks)} condition(s), either {len(masks)} or {len(masks) + 1} functions are "
                         f"expected, got {len(funclist)}")
    out = np.zeros(shape)
    flat = np.reshape(x, (-1,))
    for mask, fn in zip(masks, funclist):
        where = np.flatnonzero(mask)
        if not where.size:
            continue
        piece = fn(flat[where], *args, **kw) if callable(fn) else np.broadcast_to(np.asarray(fn, float), where.shape)
        piece = np.broadcast_to(piece, where.shape) if np.ndim(piece) == 0 else piece
        if isinstance(piece, Tracer):
            placed = np.reshape(np.bincount(where, weights=piece, minlength=int(np.prod(shape))), shape)
        else:
            placed = np.zeros(int(np.prod(shape)))
            placed[where] = piece
            placed = placed.reshape(shape)
        out = np.where(mask, placed, out)
    return out


def _written_piecewise(x: Tracer, conds: list, funclist, args: tuple, kw: dict):
    """np.piecewise of masks of ``x``'s shape as NumPy computes it, ``y[c] = f(x[c])`` in order,
    each selection kept at full shape (:mod:`jacc.lanes`)."""
    if len(funclist) == len(conds) + 1:  # (the rest: where no condition holds)
        conds.append(~functools.reduce(operator.or_, conds))
    out = np.zeros_like(x)
    for cond, fn in zip(conds, funclist):
        if not callable(fn):
            out[cond] = fn
            continue
        piece = x[cond]
        if type(piece) is not Lanes:
            if np.size(piece):  # (NumPy calls no function on an empty piece)
                out[cond] = fn(piece, *args, **kw)
            continue
        try:
            out[cond] = fn(piece, *args, **kw)
        except Exception:
            # a function that read its piece (or a value made of it) and failed on it empty: NumPy
            # would not have called it. Whether it is empty is read at the traced point
            if cond.concrete().any():
                raise
    return out


# (NumPy's dispatcher iterates a condition list given as one array: a mask's entries, read; f naming
# np.piecewise is traced with it replaced from its first trace)
def _piecewise_of_traced(original: Callable) -> Callable:
    def piecewise(x, *args, **kwargs):  # (a traced x only: NumPy's own keeps an integer x's dtype)
        return (_piecewise if isinstance(x, Tracer) else original)(x, *args, **kwargs)
    return piecewise


swap_during_traces("numpy", {"piecewise": _piecewise_of_traced}, eager=True)


# (f's own np.errstate(divide="raise") or np.seterr: an op may raise FloatingPointError at other
# values, which f may catch to go another way; the trace is marked as math's domains are)
def _errstate_noting(original: type) -> type:
    class errstate(original):
        def __init__(self, **kwargs):
            note_raising(kwargs)
            super().__init__(**kwargs)
    errstate.__qualname__ = errstate.__name__ = original.__name__
    return errstate


def _seterr_noting(original: Callable) -> Callable:
    def seterr(*args, **kwargs):
        note_raising({**dict(zip(("all", "divide", "over", "under", "invalid"), args)), **kwargs})
        return original(*args, **kwargs)
    return seterr


swap_during_traces("numpy", {"errstate": _errstate_noting, "seterr": _seterr_noting}, eager=True)


def type_of(result) -> np.dtype:
    """The dtype NumPy gives a Python function's result (a traced value's own, read without a copy)."""
    return result.dtype if isinstance(result, Tracer) else np.asarray(result).dtype


def stack_as(results: list, dtype) -> object:
    """The results of a Python function called per element or slice, stacked as one array of
    ``dtype`` — the type NumPy's loop writes them as (``np.vectorize``'s ``otypes``, else its first
    result's): where that is an integer or bool each entry is cast, a step of slope 0, as NumPy
    truncates a function whose first call returned ``0`` rather than ``0.0``."""
    stacked = np.stack([r if isinstance(r, Tracer) else np.asarray(r) for r in results])
    return stacked if np.result_type(stacked) == dtype else stacked.astype(dtype)


@implements(np.apply_along_axis)
def _apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """``func1d`` called on every 1-d slice along ``axis`` (traced slices) and the results stacked
    where the axis was, as NumPy does."""
    k = _one_axis(arr, axis, "numpy.apply_along_axis")
    moved = np.moveaxis(arr, k, -1)
    outer = np.shape(moved)[:-1]
    if not outer:
        return func1d(moved, *args, **kwargs)
    results = [func1d(moved[i], *args, **kwargs) for i in np.ndindex(*outer)]
    stacked = np.reshape(stack_as(results, type_of(results[0])), outer + np.shape(results[0]))
    inner = np.ndim(results[0])
    # the result's own axes go where the sliced axis was
    return np.moveaxis(stacked, list(range(len(outer), len(outer) + inner)), list(range(k, k + inner)))


@implements(np.linspace)
def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    _refuse("numpy.linspace", device=device)
    num = _int(num, "num")
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TraceError(f"numpy.linspace at {call_site()}: dtype={dtype!r} (traced values stay float64)")
    div = (num - 1) if endpoint else num
    delta = stop - start
    t = np.arange(0, num, dtype=float).reshape((-1,) + (1,) * np.ndim(delta))
    if div > 0:
        step = delta / div
        y = t * step + start
    else:
        step = np.nan * delta
        y = t * delta + start
    if endpoint and num > 1:  # NumPy sets the last sample to stop exactly
        y = np.concatenate([y[:-1], np.reshape(np.broadcast_to(stop, np.shape(delta)), (1,) + np.shape(delta))])
    if axis != 0:
        y = np.moveaxis(y, 0, _int(axis, "axis"))
    return (y, step) if retstep else y


@implements(np.logspace)
def _logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """``base ** linspace(start, stop)``, as NumPy computes it."""
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TraceError(f"numpy.logspace at {call_site()}: dtype={dtype!r} (traced values stay float64)")
    nd = max(np.ndim(start), np.ndim(stop), np.ndim(base))
    y = np.linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    b = base if np.ndim(base) == nd else np.reshape(base, (1,) * (nd - np.ndim(base)) + np.shape(base))
    return np.power(np.expand_dims(b, _int(axis, "axis")), y)


# -- histogram ----------------------------------------------------------------------------------


def _constant_bins(what: str, bins, range) -> None:
    for name, v in (("bins", bins), ("range", range)):
        if isinstance(v, Tracer) or (isinstance(v, (tuple, list)) and any(isinstance(x, Tracer) for x in v)):
            raise TraceError(f"{what} at {call_site()}: {name} is traced; pass constants")


def _data_edges(a, av: np.ndarray, edges: np.ndarray, from_data: bool):
    """NumPy's edges, or where it found equal-width ones from the data (``from_data``: a bin count
    and no range) ``linspace(min a, max a)``, which carries their derivative."""
    if not (from_data and isinstance(a, Tracer) and av.size):
        return edges
    lo, hi = np.min(a), np.max(a)
    if edges[0] != av.min():  # all values equal: NumPy widens the range by ½ each side
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, edges.size)


def _bin_of(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's bin (the last edge inside the last bin) and whether it falls in one."""
    n = edges.size - 1
    keep = (values >= edges[0]) & (values <= edges[-1])
    return np.minimum(np.searchsorted(edges, values, side="right") - 1, n - 1), keep


@implements(np.histogram)
def _histogram(a, bins=10, range=None, density=None, weights=None):
    """NumPy's bins and counts at the traced point (value-dependent). Counts are constants; with
    traced ``weights`` they are sums per bin (a scatter-add). Equal-width edges found from the
    data (``range`` not given) are ``linspace(min a, max a)`` and carry its derivative, which
    ``density=True`` passes on through the bin widths. (Weighted counts are summed per bin;
    with explicit edges NumPy differences cumulative sums instead, which may differ in the last bit.)"""
    _constant_bins("numpy.histogram", bins, range)
    av = _value(a, "numpy.histogram (its bins)")
    traced_w = isinstance(weights, Tracer)
    wv = weights.value if traced_w else weights
    counts, edges = np.histogram(av, bins, range, weights=wv)  # NumPy's checks, edges and counts
    n = edges.size - 1
    edges = _data_edges(a, av, edges, range is None and np.ndim(bins) == 0)
    if traced_w:
        flat, w = av.reshape(-1), np.reshape(weights, (-1,))
        idx, keep = _bin_of(flat, np.asarray(edges.value if isinstance(edges, Tracer) else edges))
        counts = np.bincount(idx[keep], weights=w[keep], minlength=n)
    if density:
        counts = counts / np.diff(edges) / np.sum(counts)
    return counts, edges


@implements(np.histogramdd)
def _histogramdd(sample, bins=10, range=None, density=None, weights=None):
    """:func:`_histogram` in D dimensions: per dimension NumPy's edges (from the data where it
    finds them so), the counts constants or, for traced ``weights``, sums per cell."""
    _constant_bins("numpy.histogramdd", bins, range)
    if isinstance(sample, (list, tuple)):
        columns = list(sample)
    else:
        if np.ndim(sample) != 2:
            raise ValueError(f"sample must be an (N, D) array or a sequence of D arrays, got shape "
                             f"{np.shape(sample)} (numpy.histogramdd at {call_site()})")
        columns = [sample[:, d] for d in builtins.range(np.shape(sample)[1])]
    values = [np.asarray(_value(c, "numpy.histogramdd (its bins)"), dtype=float).reshape(-1) for c in columns]
    traced_w = isinstance(weights, Tracer)
    counts, edges = np.histogramdd(np.stack(values, axis=1) if values else np.zeros((0, 0)), bins, range,
                                   weights=weights.value if traced_w else weights)
    d = len(values)
    per_bins = list(bins) if hasattr(bins, "__len__") and not isinstance(bins, str) else [bins] * d  # (as NumPy)
    per_range = list(range) if range is not None else [None] * d
    edges = [_data_edges(c, v, e, r is None and np.ndim(b) == 0)
             for c, v, e, r, b in zip(columns, values, edges, per_range, per_bins)]
    if traced_w:
        shape = counts.shape
        found = [_bin_of(v, np.asarray(e.value if isinstance(e, Tracer) else e)) for v, e in zip(values, edges)]
        keep = np.logical_and.reduce([k for _, k in found])
        cell = np.ravel_multi_index(tuple(np.where(keep, i, 0) for i, _ in found), shape)
        counts = np.reshape(np.bincount(cell[keep], weights=np.reshape(weights, (-1,))[keep],
                                        minlength=int(np.prod(shape))), shape)
    if density:
        volume = None
        for k, e in enumerate(edges):
            width = np.reshape(np.diff(e), [-1 if j == k else 1 for j in builtins.range(d)])
            volume = width if volume is None else volume * width
        counts = counts / volume / np.sum(counts)
    return counts, edges


@implements(np.histogram2d)
def _histogram2d(x, y, bins=10, range=None, density=None, weights=None):
    if hasattr(bins, "__len__") and len(bins) not in (1, 2):
        bins = [np.asarray(bins), np.asarray(bins)]  # one array of edges for both (NumPy's reading)
    counts, (xedges, yedges) = _histogramdd([x, y], bins, range, density, weights)
    return counts, xedges, yedges


@implements(np.histogram_bin_edges)
def _histogram_bin_edges(a, bins=10, range=None, weights=None):
    return _histogram(a, bins, range, weights=weights)[1]


@implements(np.meshgrid)
def _meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    out = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = -1
        out.append(np.reshape(x, shape))
    if indexing == "xy" and nd > 1:
        out = [np.swapaxes(o, 0, 1) for o in out]
    if not sparse:
        full = np.broadcast_shapes(*[np.shape(o) for o in out])
        out = [np.broadcast_to(o, full) for o in out]
    return tuple(out)


# -- covariance ------------------------------------------------------------------------------------


def _cov_weights(what: str, given, n: int) -> np.ndarray | None:
    """``fweights`` or ``aweights`` of ``np.cov`` as a float array of n, with NumPy's checks; traced
    aweights (reliabilities, a weighted KDE's) are differentiable, traced fweights (counts) refused."""
    if given is None:
        return None
    traced = isinstance(given, Tracer)
    if traced and what == "fweights":
        raise TraceError(f"numpy.cov at {call_site()}: the fweights (integer counts) are traced; pass them as "
                         "constants, or traced weights as aweights")
    w = given if traced else np.asarray(given, dtype=np.float64)
    value = given.value if traced else w
    if what == "fweights" and not np.all(w == np.around(w)):
        raise TypeError("fweights must be integer")
    if np.ndim(w) > 1:
        raise RuntimeError(f"cannot handle multidimensional {what}")
    if np.shape(w)[0] != n:
        raise RuntimeError(f"incompatible numbers of samples and {what}")
    if np.any(value < 0):
        raise ValueError(f"{what} cannot be negative")
    if traced:  # a later call's negative weight: NaN, so f runs and raises
        given.tape.note_domain("numpy.cov's aweights")
        return given * np.where(given < 0, np.nan, 1.0)
    return w


def _cov_scale(fact):
    """1/fact, NumPy's: degrees of freedom ≤ 0 warn and divide by 0 (inf, NaN), not by the negative
    count (a finite covariance of the wrong sign, hunt CD); traced (weights): by a traced mask."""
    if (fact.value if isinstance(fact, Tracer) else fact) <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=4)
    with np.errstate(divide="ignore"):
        return 1.0 / np.where(fact > 0, fact, 0.0) if isinstance(fact, Tracer) else np.true_divide(1.0, max(fact, 0))


@implements(np.cov)
def _cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    if np.ndim(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    X = np.reshape(m, (1, -1)) if np.ndim(m) < 2 else m
    if not rowvar and np.shape(X)[0] != 1:
        X = X.T
    if y is not None:
        Y = np.reshape(y, (1, -1)) if np.ndim(y) < 2 else y
        if not rowvar and np.shape(Y)[0] != 1:
            Y = Y.T
        X = np.concatenate([X, Y], axis=0)
    _check_dtype("numpy.cov", X, dtype)
    ddof = (0 if bias else 1) if ddof is None else _int(ddof, "ddof")
    n = np.shape(X)[1]
    f, a = _cov_weights("fweights", fweights, n), _cov_weights("aweights", aweights, n)
    if f is None and a is None:
        X = X - np.mean(X, axis=1)[:, None]
        return np.squeeze((X @ X.T) * _cov_scale(n - ddof))  # a Gram product: its adjoint is one matrix product
    w = f if a is None else a if f is None else f * a  # (NumPy's weights: frequencies times reliabilities)
    total = w.sum()
    if (total.value if isinstance(total, Tracer) else total) == 0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")  # (NumPy's; a later call: NaN, f runs)
    # (the degrees of freedom as NumPy counts them with weights)
    fact = total if ddof == 0 else total - ddof if a is None else total - ddof * (w * a).sum() / total
    X = X - (X @ w)[:, None] * (1.0 / total)
    return np.squeeze(((X * w) @ X.T) * _cov_scale(fact))


@implements(np.corrcoef)
def _corrcoef(x, y=None, rowvar=True, *, dtype=None):
    c = np.cov(x, y, rowvar, dtype=dtype)
    if np.ndim(c) == 0:
        return c / c
    d = np.sqrt(np.diagonal(c))
    c = c / d[:, None]
    c = c / d[None, :]
    return np.clip(c, -1.0, 1.0)


# -- 1-d convolution ----------------------------------------------------------------------------------


def _windows(what: str, a, v, mode: str, convolve: bool):
    """NumPy's ``convolve(a, v, mode)`` or ``correlate(a, v, mode)``: the sum of the zero-padded
    longer array's shifts, each scaled by one entry of the shorter one (up to ``FEW_TAPS``
    entries), else a gather of its sliding windows and one product with the shorter array."""
    if np.ndim(a) != 1 or np.ndim(v) != 1:
        raise TraceError(f"{what} at {call_site()} takes two 1-d arrays, got shapes {np.shape(a)} and {np.shape(v)}")
    if np.shape(a)[0] == 0:
        raise ValueError("a cannot be empty")
    if np.shape(v)[0] == 0:
        raise ValueError("v cannot be empty")
    if np.shape(v)[0] > np.shape(a)[0]:  # NumPy swaps; a correlation then comes out reversed
        if not convolve:
            return _windows(what, v, a, mode, False)[::-1]
        a, v = v, a
    n, m = np.shape(a)[0], np.shape(v)[0]
    if mode == "full":
        start, count = 0, n + m - 1
    elif mode == "same":
        start, count = (m - 1) // 2, n
    elif mode == "valid":
        start, count = m - 1, n - m + 1
    else:
        raise ValueError(f"mode must be one of 'full', 'same' or 'valid', got {mode!r}")
    zeros = np.zeros(m - 1)
    padded = np.concatenate([zeros, a, zeros]) if m > 1 else a
    w = v[::-1] if convolve else v
    if m <= FEW_TAPS:  # a short filter: one scaled shifted slice per tap, whose partial stays a stencil
        total = padded[start:start + count] * w[0]
        for k in range(1, m):
            total = total + padded[start + k:start + k + count] * w[k]
        return total
    index = np.arange(start, start + count)[:, None] + np.arange(m)[None, :]
    return padded[index] @ w


FEW_TAPS = 8  # up to this many taps a convolution is a sum of shifts (its partial: a few values per row)


@implements(np.convolve)
def _convolve(a, v, mode="full"):
    return _windows("numpy.convolve", a, v, mode, True)


@implements(np.correlate)
def _correlate(a, v, mode="valid"):
    return _windows("numpy.correlate", a, v, mode, False)


# -- examples -------------------------------------------------------------------------------------


def _x(r, shape=(3, 4)):
    return r.normal(size=shape)


_DIFFERENCE = FREE | {"−identity"}  # selections and a subtraction: no multiplication
_NO_EDGE_ORDER = "edge_order=2: checked against finite differences only (jax.numpy.gradient has no edge_order)"


case("numpy.diff", lambda xp: lambda x: xp.diff(x), lambda r: (_x(r),), structures=_DIFFERENCE)
case("numpy.diff", lambda xp: lambda x: xp.diff(x, n=2, axis=0), lambda r: (_x(r, (4, 3)),), structures=_DIFFERENCE,
     variant="n=2, axis 0")
case("numpy.diff", lambda xp: lambda x: xp.diff(x, prepend=0.5, append=x[:, :1]), lambda r: (_x(r),),
     variant="prepend, append")
case("numpy.ediff1d", lambda xp: lambda x: xp.ediff1d(x, to_begin=x[0], to_end=np.array([1.0, 2.0])),
     lambda r: (_x(r, (5,)),))
case("numpy.gradient", lambda xp: lambda x: xp.gradient(x, 0.5), lambda r: (_x(r, (6,)),))
case("numpy.gradient", lambda xp: lambda x: xp.stack(xp.gradient(x, 0.5, 2.0, edge_order=2)),
     lambda r: (_x(r, (4, 5)),), variant="2-d, edge order 2", jax=False, note=_NO_EDGE_ORDER)
case("numpy.gradient", lambda xp: lambda x: xp.gradient(x, np.array([0.0, 0.3, 1.0, 1.2, 2.0, 3.5])),
     lambda r: (_x(r, (6,)),), variant="coordinates")
case("numpy.gradient", lambda xp: lambda x: xp.gradient(x, np.array([0.0, 0.3, 1.0, 1.2, 2.0]), axis=1, edge_order=2),
     lambda r: (_x(r, (3, 5)),), variant="coordinates, edge order 2", jax=False, note=_NO_EDGE_ORDER)
case("numpy.trapezoid", lambda xp: lambda y: xp.trapezoid(y, dx=0.5), lambda r: (_x(r),))
case("numpy.trapezoid", lambda xp: lambda y, x: xp.trapezoid(y, x, axis=0),
     lambda r: (_x(r, (5, 2)), np.cumsum(r.uniform(0.1, 1.0, 5))), argnums=(0, 1), variant="coordinates")
case("numpy.polyval", lambda xp: lambda p, x: xp.polyval(p, x), lambda r: (_x(r, (4,)), _x(r, (3,))), argnums=(0, 1))
case("numpy.vander", lambda xp: lambda x: xp.vander(x), lambda r: (_x(r, (4,)),))
case("numpy.vander", lambda xp: lambda x: xp.vander(x, 3, increasing=True), lambda r: (_x(r, (5,)),),
     variant="N, increasing")
case("numpy.polyfit", lambda xp: lambda x, y: xp.polyfit(x, y, 2),
     lambda r: (np.linspace(0.0, 2.0, 6) + 0.1 * _x(r, (6,)), _x(r, (6,))), argnums=(0, 1),
     note="full rank assumed, as lstsq; full= and cov= are not supported")
case("numpy.polyfit", lambda xp: lambda y, w: xp.polyfit(np.arange(5.0), y, 1, w=w),
     lambda r: (_x(r, (5, 2)), r.uniform(0.5, 1.5, 5)), argnums=(0, 1), variant="2-d y, weights")
_NP_POLY = "numpy.polynomial has no JAX twin"
case("numpy.polynomial.polynomial.polyder", lambda xp: lambda c: np.polynomial.polynomial.polyder(c, 2, scl=0.5),
     lambda r: (_x(r, (5,)),), jax=False, note=_NP_POLY)
case("numpy.polynomial.polynomial.polyint", lambda xp: lambda c: np.polynomial.polynomial.polyint(c, k=1.5, lbnd=0.2),
     lambda r: (_x(r, (4,)),), jax=False, note=_NP_POLY)
case("numpy.polynomial.Chebyshev.deriv", lambda xp: lambda c: np.polynomial.Chebyshev(c).deriv().coef,
     lambda r: (_x(r, (5,)),), jax=False, note=_NP_POLY + "; the other bases' classes and functions trace the same way")
case("numpy.polynomial.polynomial.polyval", lambda xp: lambda x, c: np.polynomial.polynomial.polyval(x, c),
     lambda r: (_x(r, (2,)), _x(r, (3, 2))), argnums=(0, 1), jax=False, variant="2-d c at traced x (tensor=True)",
     note=_NP_POLY + "; every column at every point, as NumPy gives for an ndarray x")
case("numpy.polynomial.chebyshev.chebval", lambda xp: lambda x, c: np.polynomial.chebyshev.chebval(x, c),
     lambda r: (_x(r, (3,)), _x(r, (4,))), argnums=(0, 1), jax=False, note=_NP_POLY)
case("numpy.polynomial.chebyshev.chebval",
     lambda xp: lambda c: np.polynomial.chebyshev.chebval(np.linspace(-1.0, 1.0, 5), c),
     lambda r: (_x(r, (3, 2)),), jax=False, variant="2-d c at constant points",
     note=_NP_POLY + "; every column at every point (5 points, 2 columns: (2, 5))")
case("numpy.polynomial.polynomial.polyval2d", lambda xp: lambda x, c: np.polynomial.polynomial.polyval2d(x, 2.0 * x, c),
     lambda r: (_x(r, (3,)), _x(r, (3, 2))), argnums=(0, 1), jax=False, note=_NP_POLY)
case("numpy.polynomial.polynomial.polygrid2d", lambda xp: lambda x, c: np.polynomial.polynomial.polygrid2d(x, x[:2], c),
     lambda r: (_x(r, (3,)), _x(r, (2, 2))), argnums=(0, 1), jax=False, note=_NP_POLY)
for (_module, _name), _deg in zip(_VANDER, (3, 4, 4, 3, 3, 3)):
    case(f"numpy.polynomial.{_module}.{_name}",
         lambda xp, m=_module, n=_name, d=_deg: lambda x: getattr(getattr(np.polynomial, m), n)(x, d),
         lambda r: (_x(r, (4,)),), jax=False,
         note=_NP_POLY + "; NumPy's recurrence, its columns stacked (NumPy writes them into np.empty)")
case("numpy.polynomial.polynomial.polyvander2d",
     lambda xp: lambda x, y: np.polynomial.polynomial.polyvander2d(x, y, [2, 1]),
     lambda r: (_x(r, (3,)), _x(r, (3,))), argnums=(0, 1), jax=False, note=_NP_POLY + "; the 3-d ones alike")
case("numpy.polynomial.chebyshev.chebfit", lambda xp: lambda x, y: np.polynomial.chebyshev.chebfit(x, y, 2),
     lambda r: (np.linspace(-1.0, 1.0, 6) + 0.05 * _x(r, (6,)), _x(r, (6,))), argnums=(0, 1), jax=False,
     note=_NP_POLY + "; points traced too (through chebvander); full rank assumed, as lstsq")
_KNOTS = np.array([-1.5, -0.2, 0.3, 1.0, 2.2])
case("numpy.interp", lambda xp: lambda x, fp: xp.interp(x, _KNOTS, fp),
     lambda r: (np.array([-2.0, -0.9, 0.05, 0.6, 1.7, 2.5]), _x(r, (5,))), argnums=(0, 1),
     note="constant knots: the interp op, its segments found at each call; at a knot, the slope to its right (JAX's)")
case("numpy.interp", lambda xp: lambda x: xp.interp(x, _KNOTS, np.array([0.5, -1.0, 2.0, 0.0, 1.0]), right=-3.0),
     lambda r: (np.array([[-2.0, -0.9, 0.05], [0.6, 1.7, 2.5]]),), structures=frozenset({"diag"}), variant="a table")
case("numpy.interp", lambda xp: lambda x, xk: xp.interp(x, xk, np.array([0.5, -1.0, 2.0, 0.0]), left=3.0, right=-3.0),
     lambda r: (np.array([[-2.0, -0.4], [0.45, 1.3], [1.9, 2.5]]), np.array([-1.0, -0.1, 0.8, 1.6])),
     argnums=(0, 1), variant="traced knots, left/right, 2-d x", note="traced knots: the segments are read at the "
     "traced point (value-dependent)")
case("numpy.interp", lambda xp: lambda x, fp: xp.interp(x, np.array([350.0, 10.0, 50.0, 190.0, 260.0]), fp, period=360),
     lambda r: (np.array([-45.0, 5.0, 100.0, 300.0, 355.0, 725.0]), _x(r, (5,))), argnums=(0, 1), variant="period",
     note="NumPy's reduction: x and the knots modulo the period, the knots sorted and extended by one on either side")
case("numpy.unwrap", lambda xp: xp.unwrap, lambda r: (np.cumsum(r.uniform(1.0, 2.5, 7)) % (2 * np.pi) - np.pi,),
     note="the whole-period corrections are read at the traced point")
case("numpy.unwrap", lambda xp: lambda p: xp.unwrap(p, axis=0, period=4.0),
     lambda r: (np.cumsum(r.uniform(0.5, 1.8, (6, 2)), 0) % 4.0,),
     variant="axis 0, period")
case("numpy.nan_to_num", lambda xp: lambda x: xp.nan_to_num(2.0 * x + np.array([0.0, np.inf, -np.inf, np.nan, 0.0]),
                                                             posinf=7.0),
     lambda r: (r.uniform(0.5, 1.5, 5),), note="where x is finite: recorded masks, computed at each call")
case("numpy.nan_to_num", lambda xp: lambda x: xp.nan_to_num(x), lambda r: (r.uniform(0.5, 1.5, 4),),
     variant="all finite")
case("numpy.piecewise", lambda xp: lambda x: xp.piecewise(x, [x < 0, x >= 0], [lambda t: -t, lambda t: t ** 2]),
     lambda r: (_x(r),), note="conditions of x's shape: y[c] = f(x[c]) kept at full shape (jacc.lanes), the trace "
     "holds at every point; other traced conditions are read at the traced point")
case("numpy.piecewise", lambda xp: lambda x: xp.piecewise(x, [x < 0.2, x > 1.0], [0.5, xp.log, lambda t: t]),
     lambda r: (np.array([[-0.4, 0.1, 0.6], [1.5, 0.9, 2.0]]),), variant="a constant, an otherwise function")
case("numpy.apply_along_axis", lambda xp: lambda x: xp.apply_along_axis(lambda v: xp.sum(v ** 2), 1, x),
     lambda r: (_x(r),))
case("numpy.apply_along_axis", lambda xp: lambda x: xp.apply_along_axis(lambda v: xp.stack([v[0] * v[1], v[2]]), 0, x),
     lambda r: (_x(r, (3, 2, 2)),), variant="a vector per slice, axis 0")
case("numpy.linspace", lambda xp: lambda a, b: xp.linspace(a, b, 5), lambda r: (_x(r, (2,)), _x(r, (2,))),
     argnums=(0, 1))
case("numpy.linspace", lambda xp: lambda a: xp.linspace(a[0], a[1], 4, endpoint=False), lambda r: (_x(r, (2,)),),
     variant="endpoint=False")
case("numpy.polyder", lambda xp: lambda p: xp.polyder(p, 2), lambda r: (_x(r, (5,)),))
case("numpy.polyint", lambda xp: lambda p, k: xp.polyint(p, 2, k), lambda r: (_x(r, (4,)), _x(r, (2,))),
     argnums=(0, 1))
case("numpy.polyadd", lambda xp: lambda a, b: xp.polyadd(a, b) * xp.polysub(b, a), lambda r: (_x(r, (2,)), _x(r, (4,))),
     argnums=(0, 1))
case("numpy.polymul", lambda xp: lambda a, b: xp.polymul(a, b), lambda r: (_x(r, (3,)), _x(r, (2,))), argnums=(0, 1))
case("numpy.poly", lambda xp: lambda z: xp.poly(z), lambda r: (_x(r, (4,)),))
case("numpy.roots", lambda xp: lambda p: xp.roots(p),
     lambda r: (np.array([1.0, -0.5, -2.25, 1.125]) + 0.01 * _x(r, (4,)),), jax=False,
     note="real roots, as roots of the traced polynomial (implicit differentiation); complex or multiple roots "
          "refused (JAX's are complex)")
case("numpy.polydiv", lambda xp: lambda u, v: xp.polydiv(u, v)[0], lambda r: (_x(r, (5,)), 2.0 + _x(r, (3,))),
     argnums=(0, 1), note="NumPy's long division; the remainder's leading near-zeros are dropped at the traced point")
case("numpy.polydiv", lambda xp: lambda u, v: xp.polydiv(u, v)[1], lambda r: (_x(r, (5,)), 2.0 + _x(r, (3,))),
     argnums=(0, 1), variant="remainder", jax=False, note="jax.numpy.polydiv keeps the remainder's leading zeros")
case("numpy.geomspace", lambda xp: lambda a, b: xp.geomspace(a, b, 5),
     lambda r: (1.0 + _x(r, (2,)) ** 2, 3.0 + _x(r, (2,)) ** 2), argnums=(0, 1))
case("numpy.geomspace", lambda xp: lambda a: xp.geomspace(-a, -2.0 * a, 4, endpoint=False, axis=1),
     lambda r: (1.0 + _x(r, (3,)) ** 2,), variant="negative, endpoint=False, axis=1")
case("numpy.logspace", lambda xp: lambda a: xp.logspace(a[0], a[1], 5), lambda r: (_x(r, (2,)),))
case("numpy.logspace", lambda xp: lambda a, b: xp.logspace(a, 2.0, 4, base=b, axis=1, endpoint=False),
     lambda r: (_x(r, (2,)), 1.5 + np.abs(_x(r, (2,)))), argnums=(0, 1), variant="traced base, axis", jax=False,
     note="jax.numpy.logspace cannot broadcast a base array along axis=1")
case("numpy.histogram", lambda xp: lambda x, w: xp.histogram(x, bins=4, weights=w)[0],
     lambda r: (_x(r, (9,)), _x(r, (9,))), argnums=(1,), structures=FREE,
     note="bins read at the traced point; weighted counts are a scatter-add")
case("numpy.histogram", lambda xp: lambda x: xp.histogram(x, bins=3)[1], lambda r: (_x(r, (7,)),),
     variant="edges from the data's range")
case("numpy.histogram", lambda xp: lambda x: xp.histogram(x, bins=3, density=True)[0], lambda r: (_x(r, (7,)),),
     variant="density")
case("numpy.histogram", lambda xp: lambda w: xp.histogram(np.array([0.1, 0.5, 0.5, 2.0, 0.9, -1.0]),
                                                            bins=np.array([0.0, 0.5, 1.0]), weights=w, density=True)[0],
     lambda r: (np.abs(_x(r, (6,))) + 0.1,), variant="constant edges, weights, density")
case("numpy.histogram2d", lambda xp: lambda x, w: xp.histogram2d(x, x ** 2, bins=3, weights=w, density=True)[0],
     lambda r: (_x(r, (12,)), np.abs(_x(r, (12,))) + 0.1), argnums=(0, 1),
     note="cells read at the traced point; weighted counts a scatter-add; edges from the data carry their derivative")
case("numpy.histogramdd", lambda xp: lambda s, w: xp.histogramdd(s, bins=(2, 3), weights=w)[0],
     lambda r: (_x(r, (10, 2)), _x(r, (10,))), argnums=(1,), structures=FREE)
case("numpy.histogramdd", lambda xp: lambda x, w: xp.histogramdd((x, x ** 2), bins=2, weights=w)[0] + xp.sum(x),
     lambda r: (_x(r, (5,)), _x(r, (5,))), argnums=(0, 1), jax=False,
     variant="a tuple of D coordinate arrays (not stacked into a (D, N) sample)",
     note="JAX's histogramdd takes the stacked sample only")
case("numpy.meshgrid", lambda xp: lambda x, y: xp.stack(xp.meshgrid(x, y)), lambda r: (_x(r, (3,)), _x(r, (2,))),
     argnums=(0, 1), structures=FREE)
case("numpy.meshgrid", lambda xp: lambda x, y: xp.stack(xp.meshgrid(x, y, indexing="ij")),
     lambda r: (_x(r, (3,)), _x(r, (2,))), argnums=(0, 1), structures=FREE, variant="ij")
case("numpy.cov", lambda xp: lambda x: xp.cov(x), lambda r: (_x(r, (3, 6)),))
case("numpy.cov", lambda xp: lambda x, y: xp.cov(x, y, rowvar=False, bias=True),
     lambda r: (_x(r, (6, 2)), _x(r, (6, 2))), argnums=(0, 1), variant="y, rowvar=False, bias")
case("numpy.cov", lambda xp: lambda x: xp.cov(x, fweights=np.array([1, 2, 0, 3, 1, 1]),
                                                aweights=np.array([0.5, 1.0, 2.0, 0.25, 1.0, 3.0])),
     lambda r: (_x(r, (3, 6)),), variant="fweights and aweights (constants)")
case("numpy.cov", lambda xp: lambda x: xp.cov(x, aweights=np.array([0.5, 1.0, 2.0, 0.25, 1.0, 3.0]), ddof=0),
     lambda r: (_x(r, (3, 6)),), variant="aweights, ddof=0")
case("numpy.cov", lambda xp: lambda x, w: xp.cov(x, aweights=w * w), lambda r: (_x(r, (3, 6)), _x(r, (6,))),
     argnums=(0, 1), variant="traced aweights", note="a later call's negative weight gives NaN, so f runs and raises")
case("numpy.corrcoef", lambda xp: lambda x: xp.corrcoef(x), lambda r: (_x(r, (3, 6)),))
case("numpy.convolve", lambda xp: lambda a, v: xp.convolve(a, v), lambda r: (_x(r, (6,)), _x(r, (3,))), argnums=(0, 1))
case("numpy.convolve", lambda xp: lambda a, v: xp.convolve(a, v, "same"), lambda r: (_x(r, (4,)), _x(r, (6,))),
     argnums=(0, 1), variant="same, longer kernel")
case("numpy.correlate", lambda xp: lambda a, v: xp.correlate(a, v), lambda r: (_x(r, (7,)), _x(r, (4,))),
     argnums=(0, 1))
case("numpy.correlate", lambda xp: lambda a, v: xp.correlate(a, v, "same"), lambda r: (_x(r, (14,)), _x(r, (10,))),
     argnums=(0, 1), variant="same, more taps than FEW_TAPS")
case("numpy.correlate", lambda xp: lambda a, v: xp.correlate(a, v, "full"), lambda r: (_x(r, (3,)), _x(r, (5,))),
     argnums=(0, 1), variant="full, longer kernel")
case("numpy.zeros_like", lambda xp: lambda x: x + xp.zeros_like(x) + xp.full_like(x, 2.0) * xp.ones_like(x),
     lambda r: (_x(r),))
case("numpy.zeros_like",
     lambda xp: lambda x: xp.where(xp.ones_like(x, dtype=bool), x, 0.0) * (1 + xp.zeros_like(x, dtype=int)),
     lambda r: (_x(r),), variant="a boolean or integer dtype",
     note="a constant array of that dtype (a mask to fill in)")
