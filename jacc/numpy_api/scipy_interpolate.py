"""``scipy.interpolate``'s interpolants of traced data: splines, piecewise polynomials and grid
interpolators are affine in the values they interpolate, so their derivative in the data is a
constant matrix that SciPy itself computes.

While ``f`` runs on traced arguments ``CubicSpline``, ``make_interp_spline``, ``BSpline``,
``interp1d``, ``RegularGridInterpolator``, ``interpn`` and, for scattered points, ``griddata``
(linear, nearest), ``LinearNDInterpolator``, ``NearestNDInterpolator`` and ``RBFInterpolator``, and
FITPACK's ``splrep`` (s=0 or knots given) and ``splev`` are replaced on the ``scipy.interpolate``
module (see :func:`jacc.constructors.swap_during_traces`). Given traced data y, the replacement
builds SciPy's interpolant of the data's values y₀ and, once per evaluation, SciPy's interpolant of
the identity matrix (one column per data point) minus that of zeros: the matrix M with S(xq; y) =
S(xq; y₀) + M·(y − y₀), exactly, since S is affine in y (boundary conditions and fill values are its
constant part). An evaluation at traced points xq adds the interpolant's slope there, S′(xq₀)·(xq −
xq₀) (splines and piecewise polynomials; their ``derivative``, ``antiderivative`` and ``integrate``
work the same way, traced limits included). The recorded changes are zero at the traced point, so
values are SciPy's, bit for bit. Which piece holds xq₀ is read at the traced point, so such a trace
is value-dependent. An interpolant of constant data is a fixed piecewise polynomial instead:
evaluated at traced points it is the ``ppoly`` op (SciPy's PPoly coefficients; a BSpline converted,
its values equal to rounding), whose program finds each point's piece at every call, so the trace
holds at every point.

Knots (``x``, ``t``, grid points, scattered points) must be constants. Interpolants that are not
affine in y (``PchipInterpolator``, ``Akima1DInterpolator``, smoothing splines) or only to a
tolerance (``CloughTocher2DInterpolator`` and 2-d ``griddata(method="cubic")``, whose gradients
are estimated iteratively) are refused by name, as are attributes of a traced interpolant other
than those above (its coefficients ``.c``) and scattered-data interpolants at traced points, but
for an ``RBFInterpolator`` of constant data (:func:`_rbf_at`).

>>> import numpy as np, scipy.interpolate, jacc
>>> knots = np.linspace(0.0, 1.0, 6)
>>> def at_half(y):  # a natural cubic spline through (knots, y), evaluated at 0.5
...     return scipy.interpolate.CubicSpline(knots, y, bc_type="natural")(0.5)
>>> J = jacc.jacobian(at_half)(np.sin(knots))
>>> basis = scipy.interpolate.CubicSpline(knots, np.eye(6), bc_type="natural")(0.5)
>>> bool(np.allclose(J, basis, rtol=1e-14, atol=1e-15))
True
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from .. import graph as G
from .. import lazy
from .. import structure as S
from ..constructors import _holds_tracer, replacement, swap_during_traces, swap_method_during_traces
from ..ops import Op, ShapeError, register
from ..trace import Tracer, UnsupportedOperationError, call_site, values_only
from . import case
from .numerics import piece
from .scipy_optimize import _plain


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.interpolate.{what} at {call_site()}: {why}")


def _constant(what: str, **named: Any) -> None:
    for name, value in named.items():
        if _holds_tracer(value):
            _refuse(what, f"{name} must be constant (only the interpolated values may be traced: the interpolant is "
                    f"affine in them, not in {name})")


class _Traced:
    """SciPy's interpolant of traced data ``y`` (``make(values, axis)`` builds it; ``axis`` of
    ``y`` is the one interpolated along, ``points`` the number of its leading axes that index
    the data points: 1, or a grid's dimension)."""

    #: SciPy interpolates non-finite data (NaN where it is read) rather than refusing it
    takes_nan = False

    def __init__(self, what: str, make: Callable, y: Any, axis: int = 0, points: int = 1,
                 linear: Callable | None = None, periodic: bool = False):
        self._what, self._make, self._points = what, make, points
        self._axis = axis % np.ndim(y) if points == 1 else 0
        self._change = None
        if not isinstance(y, Tracer):  # constant data: SciPy's interpolant, for traced points
            self._plain = make(np.asarray(y, dtype=float), self._axis)
            return
        moved = np.moveaxis(y, self._axis, 0) if points == 1 else y
        n = int(np.prod(np.shape(moved)[:points]))
        flat = np.reshape(moved, (n,) + np.shape(moved)[points:])
        # zero at the traced point; NaN in its derivative where SciPy would refuse the data (not
        # finite; a periodic curve's ends apart), so a later call that skips f runs it, and SciPy raises
        finite = np.isfinite(flat.value)
        if self.takes_nan and not finite.all():
            # SciPy's NaN only where it reads such a point: no change from those entries (their NaN
            # times M's zeros was NaN everywhere), at this point only (a later call traces again)
            flat.tape.note_value_dependence(f"scipy.interpolate.{what}'s non-finite data at the traced point")
            self._change = np.where(finite, flat, 0.0) - np.where(finite, flat.value, 0.0)
        else:
            ok = np.isfinite(flat)
            if periodic:  # (SciPy's test: np.allclose(y[0], y[-1], rtol=1e-15, atol=1e-15))
                ok = ok & (np.abs(flat[0] - flat[-1]) <= 1e-15 + 1e-15 * np.abs(flat[-1]))
            flat.tape.note_domain(f"scipy.interpolate.{what}'s data")
            self._change = (flat - flat.value) * np.where(ok, 1.0, np.nan)
        self._plain = make(np.array(y.value), self._axis)  # (writable: SciPy's RGI takes another path otherwise)
        unit = np.eye(n).reshape(np.shape(moved)[:points] + (n,))
        linear = linear or make  # the same interpolant with homogeneous boundary values (its linear part)
        self._basis, self._zero = linear(unit, 0), linear(np.zeros_like(unit), 0)

    def _spread(self, m: np.ndarray, lead: int) -> Any:
        """M·(y − y₀) for M of shape Q + (n,) (Q: ``lead`` axes of evaluation points), in SciPy's
        layout of the result (the points' axes where the data's interpolated axis was)."""
        out = np.tensordot(m, self._change, axes=([m.ndim - 1], [0]))
        if self._points == 1 and self._axis:
            out = np.moveaxis(out, list(range(lead)), list(range(self._axis, self._axis + lead)))
        return out

    def _slope(self, slope: np.ndarray, xq: Any, xq0: np.ndarray) -> Any:
        """S′(xq₀)·(xq − xq₀), the change in the evaluation points, broadcast over the data's axes."""
        shape = (1,) * self._axis + xq0.shape + (1,) * (slope.ndim - self._axis - xq0.ndim)
        return slope * np.reshape(xq - xq0, shape)

    def __call__(self, x, nu: int = 0, extrapolate: Any = None, method: str | None = None) -> Any:
        if method is not None:  # (RegularGridInterpolator's, for this call)
            if self._what not in ("RegularGridInterpolator", "interpn"):
                _refuse(self._what, "its call takes no method=")
            _exact(self._what, method)
        if _holds_tracer(x) and self._change is None:
            pieces = _pieces(self._plain, nu, extrapolate)
            if pieces is not None:  # a fixed curve: its piece found at each call by the program
                x = np.asarray(x)
                return x.tape.record("ppoly", [x, *pieces[:2]], {"extrapolate": pieces[2]})
        kwargs = {} if extrapolate is None else {"extrapolate": extrapolate}  # (interp1d takes neither)
        if nu:
            kwargs["nu"] = nu
        if method is not None:
            kwargs["method"] = method
        with values_only():
            x0 = np.asarray(_plain(x), dtype=float)
            value = self._plain(x0, **kwargs)
            m = None if self._change is None else self._basis(x0, **kwargs) - self._zero(x0, **kwargs)
        out = value if m is None else value + self._spread(m, x0.ndim)
        if _holds_tracer(x):
            if not hasattr(self._plain, "derivative"):
                _refuse(self._what, "evaluation at traced points needs the interpolant's slope, which this one has "
                        "not; use CubicSpline or make_interp_spline (or np.interp for linear interpolation)")
            x = np.asarray(x)
            x.tape.note_value_dependence(f"scipy.interpolate.{self._what}'s piece at the traced point")
            slope = self._plain.derivative(nu + 1)(x0)
            out = out + self._slope(slope, x, x0)
        return out

    def _derived(self, how: str, nu: int) -> _Traced:
        made = self._make
        new = object.__new__(_Traced)
        new.__dict__.update(self.__dict__)
        new._make = lambda v, axis: getattr(made(v, axis), how)(nu)
        new._plain = getattr(self._plain, how)(nu)
        if self._change is not None:
            new._basis, new._zero = getattr(self._basis, how)(nu), getattr(self._zero, how)(nu)
        return new

    def derivative(self, nu: int = 1) -> _Traced:
        return self._derived("derivative", nu)

    def antiderivative(self, nu: int = 1) -> _Traced:
        return self._derived("antiderivative", nu)

    def integrate(self, a, b, extrapolate: Any = None) -> Any:
        with values_only():
            a0, b0 = float(_plain(a)), float(_plain(b))
            value = self._plain.integrate(a0, b0, extrapolate=extrapolate)
            if self._change is not None:
                ends = (a0, b0)
                m = self._basis.integrate(*ends, extrapolate=extrapolate) - self._zero.integrate(*ends,
                                                                                                 extrapolate=extrapolate)
        out = value if self._change is None else value + self._spread(m, 0)
        for limit, at, sign in ((b, b0, 1.0), (a, a0, -1.0)):
            if _holds_tracer(limit):  # the integral's slope in a limit is read at the traced point
                limit = np.asarray(limit)
                limit.tape.note_value_dependence(f"scipy.interpolate.{self._what}.integrate's traced limit")
                out = out + sign * self._plain(at) * (limit - at)
        return out

    @property
    def x(self) -> Any:
        return self._plain.x

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._change is None:  # constant data: SciPy's own attributes
            return getattr(self._plain, name)
        _refuse(self._what, f"the attribute .{name} of an interpolant of traced values is not recorded; "
                "evaluate it (call, derivative, antiderivative, integrate) instead")


# -- ppoly: a fixed piecewise polynomial at traced points ---------------------------------------
# An interpolant of constant data is a fixed function of the evaluation points; which piece holds
# a point depends on its value, so the op's program finds it at each call (a searchsorted) and
# the trace holds at every point.


#: the highest degree of FITPACK's splev, which PPoly.from_spline calls (a degree-9 spline crashed
#: the process: scipy.stats.irwinhall with n ≥ 9 is one); above it the pieces come from BSpline itself
FITPACK_MAX_DEGREE = 5


def _taylor_pieces(bspline: type, f: Any) -> np.ndarray:
    """PPoly coefficients of the B-spline ``f`` on every knot interval, as ``from_spline`` makes
    them (the m-th derivative at each interval's left knot over m!), from SciPy's own B-spline
    evaluation rather than FITPACK's."""
    whole = bspline(f.t, f.c, f.k, extrapolate=True)
    left = np.asarray(f.t, dtype=float)[:-1]
    return np.stack([whole(left, nu=m) / math.factorial(m) for m in range(f.k, -1, -1)])


def _pieces(plain: Any, nu: int, extrapolate: Any) -> tuple | None:
    """``(breaks, coefficients, extrapolate)`` of SciPy's PPoly along axis 0 that equals
    ``plain`` (its ``nu``-th derivative), or None where there is none (another axis, periodic
    extrapolation, complex values, decreasing breaks, an interpolant without pieces such as interp1d)."""
    import scipy.interpolate as si
    from scipy.interpolate._bsplines import BSpline  # (the class: si.BSpline is swapped while f runs)

    f = plain.derivative(nu) if nu and hasattr(plain, "derivative") else plain
    if nu and f is plain:
        return None
    ext = getattr(f, "extrapolate", None) if extrapolate is None else extrapolate
    if not isinstance(f, (si.PPoly, BSpline)) or getattr(f, "axis", 0) != 0 or ext not in (True, False):
        return None
    if isinstance(f, BSpline) and f.k > FITPACK_MAX_DEGREE:
        f = si.PPoly.construct_fast(_taylor_pieces(BSpline, f), np.asarray(f.t, dtype=float), ext)
    elif isinstance(f, BSpline):  # (SciPy converts one column at a time)
        c = np.asarray(f.c)
        cols = [si.PPoly.from_spline(BSpline(f.t, col, f.k)) for col in c.reshape(c.shape[0], -1).T]
        if not cols:
            return None
        coef = np.stack([q.c for q in cols], axis=-1).reshape(cols[0].c.shape + c.shape[1:])
        f = si.PPoly.construct_fast(coef, cols[0].x, ext)
    breaks = np.asarray(f.x, dtype=float)
    if np.iscomplexobj(f.c) or breaks.size < 2 or not breaks[0] < breaks[-1]:  # (SciPy allows decreasing breaks)
        return None
    return breaks, np.asarray(f.c, dtype=float), bool(ext)


def _ppoly_value(x, breaks, c, extrapolate: bool, xp=np):
    """The piecewise polynomial at ``x``: SciPy's own evaluation with NumPy (bit for bit), Horner's
    rule on the piece found by a searchsorted elsewhere; NaN outside the breaks unless
    ``extrapolate``."""
    if xp is np:
        try:
            import scipy.interpolate as si
        except ImportError:  # (a graph file read without SciPy)
            pass
        else:  # (SciPy evaluates float64 only: a float32 trace's values are cast there and back)
            x, c, breaks = np.asarray(x), np.asarray(c), np.asarray(breaks)
            dt = np.result_type(x.dtype, c.dtype, np.float32)
            y = si.PPoly.construct_fast(c.astype(np.float64, copy=False), breaks.astype(np.float64, copy=False),
                                        extrapolate)(x.astype(np.float64, copy=False))
            return y if y.dtype == dt else y.astype(dt)
    breaks, c = xp.asarray(breaks), xp.asarray(c)
    j = piece(x, breaks, xp)
    dx = xp.reshape(x - breaks[j], tuple(x.shape) + (1,) * (c.ndim - 2))
    y = c[0][j]
    for k in range(1, c.shape[0]):
        y = y * dx + c[k][j]
    if extrapolate:
        return y
    return xp.where(xp.reshape((x < breaks[0]) | (x > breaks[-1]), dx.shape), float("nan"), y)


ppoly_value = lazy.portable(_ppoly_value)


def _slopes(c: np.ndarray) -> np.ndarray:
    """The derivative's coefficients (highest power first, as SciPy's PPoly keeps them)."""
    powers = np.arange(c.shape[0] - 1, 0, -1, dtype=float).reshape((-1,) + (1,) * (c.ndim - 1))
    return c[:-1] * powers


def _ppoly_shape(shapes, params):
    b, c = tuple(shapes[1]), tuple(shapes[2])
    if len(b) != 1 or b[0] < 2 or len(c) < 2 or c[1] != b[0] - 1:
        raise ShapeError(f"ppoly needs breaks of length m + 1 ≥ 2 and coefficients of shape (k + 1, m, ...), "
                         f"got {b} and {c}")
    return tuple(shapes[0]) + c[2:]


def _ppoly_partial(i: int, ctx) -> Any:
    c = ctx.args[2]
    if ctx.shapes[2][0] < 2:  # piecewise constant: slope 0
        return None
    out, s = ctx.out_shape, ctx.shapes[0]
    ext = bool(ctx.params.get("extrapolate", True))
    return S.Jac(out, s, list(range(len(s))), list(range(len(out))),
                 ctx.val(lambda: ppoly_value(ctx.args[0], ctx.args[1], _slopes(np.asarray(c)), ext), out))


def _ppoly_eval(a: list, p: dict):
    if not (np.all(np.diff(a[1]) >= 0) and a[1][0] < a[1][-1]):  # (constants: checked once per program)
        raise ShapeError(f"ppoly's breaks must not decrease and must span an interval, got {np.asarray(a[1]).tolist()}")
    return lazy.asarray(ppoly_value(a[0], a[1], a[2], bool(p.get("extrapolate", True))))


register(Op("ppoly", _ppoly_eval,
            _ppoly_shape, _ppoly_partial, 3,
            "a piecewise polynomial (SciPy's PPoly: breaks, coefficients of shape (k + 1, m, ...)) at x; the "
            "pieces are found at each call", frozenset({1, 2}), ("extrapolate",), frozenset({1, 2})))
G.PARAMS["ppoly"] = {"extrapolate": (G.BOOL, False)}


def _homogeneous(bc: Any, shape: tuple) -> Any:
    """Boundary conditions with their values zero, of the data's trailing ``shape``: (order, value)
    pairs, as CubicSpline's and make_interp_spline's bc_type hold them."""
    if isinstance(bc, tuple) and len(bc) == 2 and isinstance(bc[0], (int, np.integer)) and not isinstance(bc[1], str):
        return (bc[0], np.zeros(shape))
    if isinstance(bc, (tuple, list)):
        return type(bc)(_homogeneous(b, shape) for b in bc)
    return bc


def _curve(what: str, data: str, default_axis: int) -> Callable:
    """CubicSpline, make_interp_spline, BSpline and interp1d: data ``data`` along ``axis``."""
    def build(original, p):
        _constant(what, **{k: v for k, v in p.items() if k != data})
        y = p.pop(data)
        y = np.asarray(y) if _holds_tracer(y) else y  # (a list of traced values: stacked, by jacc's np.asarray)
        axis = p.pop("axis", default_axis)
        bc = p.pop("bc_type", None)
        extra = {"bc_type": bc} if "bc_type" in inspect.signature(original).parameters else {}
        linear = None
        if isinstance(bc, str) and bc == "periodic":  # data with equal ends: their change split evenly
            def linear(v, ax):
                v = np.moveaxis(np.array(v, dtype=float), ax, 0)
                v[0] = v[-1] = (v[0] + v[-1]) / 2  # (SciPy refuses unit vectors: their ends differ)
                return original(**{data: np.moveaxis(v, 0, ax), "axis": ax, "bc_type": bc}, **p)
        elif bc is not None:  # its values (clamped slopes) are the interpolant's constant part
            def linear(v, ax):
                trailing = np.shape(v)[:ax] + np.shape(v)[ax + 1:]
                return original(**{data: v, "axis": ax, "bc_type": _homogeneous(bc, trailing)}, **p)
        return _Traced(what, lambda v, ax: original(**{data: v, "axis": ax}, **extra, **p), y, axis, linear=linear,
                       periodic=isinstance(bc, str) and bc == "periodic")
    return build


_EXACT_METHODS = ("linear", "nearest", "slinear")


def _exact(what: str, method: str) -> None:
    if method not in _EXACT_METHODS:
        _refuse(what, f"method={method!r} solves for its spline iteratively, to a tolerance, so its derivative "
                "in the values is not recorded; use method='linear', 'nearest' or 'slinear', or make_interp_spline "
                "along each axis")


def _grid(original, p):
    _constant("RegularGridInterpolator", points=p["points"])
    _exact("RegularGridInterpolator", p["method"])
    values = np.asarray(p.pop("values"))
    dims = len(p["points"])
    return _Traced("RegularGridInterpolator", lambda v, _: original(values=v, **p), values, points=dims)


def _interpn(original, p):
    points, values, xi = p.pop("points"), p.pop("values"), p.pop("xi")
    _constant("interpn", points=points, xi=xi)
    _exact("interpn", p["method"])
    import scipy.interpolate

    grid = _Traced("interpn", lambda v, _: scipy.interpolate.RegularGridInterpolator(
        points, v, method=p["method"], bounds_error=p["bounds_error"], fill_value=p["fill_value"]),
        values, points=len(points))
    return grid(xi)


class _TracedScattered(_Traced):
    """A scattered-data interpolant of traced values, called as SciPy's is (the points as one
    array, a tuple of coordinate arrays or several arrays, SciPy's keyword options), at constant
    points: the tuple form was stacked the wrong way round and read as other points."""

    takes_nan = True

    def __call__(self, *args, **kwargs) -> Any:
        if _holds_tracer((args, kwargs)):
            _refuse(self._what, "evaluation at traced points needs the interpolant's slope, which this one has not; "
                    "evaluate it at constant points (its values may be traced)")
        value = self._plain(*args, **kwargs)
        if self._change is None:
            return value
        m = np.asarray(self._basis(*args, **kwargs)) - np.asarray(self._zero(*args, **kwargs))
        return value + self._spread(m, m.ndim - 1)


def _scattered(what: str, data: str) -> Callable:
    """The interpolants of scattered data (LinearNDInterpolator, NearestNDInterpolator,
    RBFInterpolator): data ``data``, one row per point; affine in it, the points constant."""
    def build(original, p):
        _constant(what, **{k: v for k, v in p.items() if k != data})
        y = p.pop(data)
        return _TracedScattered(what, lambda v, _: original(**{data: v}, **p), np.asarray(y) if _holds_tracer(y) else y)
    return build


def _griddata(original, p):
    """``griddata``: the interpolant of the data at the points xi (constant), as SciPy's own."""
    values, xi = p.pop("values"), p.pop("xi")
    _constant("griddata", points=p["points"], xi=xi)
    if p["method"] not in ("linear", "nearest"):  # (griddata's 1-d cubic is interp1d's spline: exact too)
        if np.shape(p["points"])[1:] not in ((), (1,)):
            _refuse("griddata", f"method={p['method']!r} estimates the gradients by an iteration to a tolerance, so "
                    "its derivative in the values is not recorded; use method='linear' or 'nearest', or "
                    "RBFInterpolator")
    return _TracedScattered("griddata", lambda v, _: lambda x: original(values=v, xi=x, **p),
                            np.asarray(values) if _holds_tracer(values) else values)(xi)


def _at_scipys(value: Any, traced: Any) -> Any:
    """SciPy's ``value`` with the derivative of ``traced``, jacc's form of the same function: their
    difference ``traced - traced.value`` is zero at the traced point, so the values are SciPy's bit
    for bit (a later call of the program adds the change)."""
    return value + (traced - traced.value)


def _splrep(original, p):
    """FITPACK's ``splrep`` of traced values y: its coefficients are linear in y where its knots are
    fixed (an interpolating spline, s=0, or knots t given), so they are SciPy's for y₀ plus the
    coefficients of the unit vectors (one FITPACK fit each) times the change."""
    y = p.pop("y")
    _constant("splrep", **p)
    if p["task"] != 0 or p["per"] or p["full_output"]:
        _refuse("splrep", "task=, per= and full_output= are not recorded; call it with their defaults")
    smoothing = p["s"] if p["s"] is not None else (0.0 if p["w"] is None else 1.0)
    if smoothing != 0 and p["t"] is None:
        _refuse("splrep", "a smoothing spline (s > 0, or weights with no s) places its knots by the values, so it is "
                "not affine in them; pass s=0 (interpolation) or the knots t, or use make_interp_spline")
    y = np.asarray(y)
    with values_only():
        t, c0, k = original(y=np.asarray(_plain(y), dtype=float), **p)
        basis = np.stack([original(y=e, **p)[1] for e in np.eye(np.size(y))], axis=1)
    return t, c0 + basis @ (y - y.value), k


def _splev(original, p):
    """FITPACK's ``splev(x, (t, c, k), der, ext)`` with traced points or coefficients: SciPy's
    value plus the change of the same B-spline (jacc's BSpline: affine in c, the slope at x);
    ext 1 (zero outside the base interval) as a mask, 3 (its end values; a derivative extrapolates,
    as FITPACK's does) as a clip."""
    x, tck, der, ext = p["x"], p["tck"], p["der"], p["ext"]
    if isinstance(tck, (_sint().BSpline, _Traced)):
        _refuse("splev", "a BSpline object is evaluated by its own call: spline(x, nu=der)")
    t, c, k = tck
    _constant("splev", t=t, k=k, der=der, ext=ext)
    with values_only():
        value = np.asarray(original(_plain(x), (t, _plain(c), k), der, ext))  # (SciPy's checks and errors)
    spline = _sint().BSpline(t, c, k)
    if der:
        spline = spline.derivative(der)
    a, b = t[k], t[len(t) - k - 1]
    at = np.clip(x, a, b) if ext == 3 and not der else x  # (FITPACK's derivatives extrapolate under ext=3)
    traced = np.asarray(spline(at))
    if ext == 1:
        traced = np.where((x >= a) & (x <= b), traced, 0.0)
    return _at_scipys(value, traced)


def _not_affine(what: str, why: str = "its slopes depend on the values nonlinearly (they are limited or weighted "
                                     "by them)") -> Callable:
    def build(original, p):
        _refuse(what, f"{why}, so it is not recorded; CubicSpline and make_interp_spline are, exactly"
                + (", and LinearNDInterpolator and RBFInterpolator for scattered points" if "ND" in what
                   or "2D" in what else ""))
    return build


_BUILDERS = {
    "CubicSpline": _curve("CubicSpline", "y", 0),
    "make_interp_spline": _curve("make_interp_spline", "y", 0),
    "BSpline": _curve("BSpline", "c", 0),
    "interp1d": _curve("interp1d", "y", -1),
    "RegularGridInterpolator": _grid,
    "interpn": _interpn,
    "PchipInterpolator": _not_affine("PchipInterpolator"),
    "Akima1DInterpolator": _not_affine("Akima1DInterpolator"),
    "UnivariateSpline": _not_affine("UnivariateSpline"),
    "LinearNDInterpolator": _scattered("LinearNDInterpolator", "values"),
    "NearestNDInterpolator": _scattered("NearestNDInterpolator", "y"),
    "RBFInterpolator": _scattered("RBFInterpolator", "d"),
    "griddata": _griddata,
    "splrep": _splrep,
    "splev": _splev,
    "CloughTocher2DInterpolator": _not_affine("CloughTocher2DInterpolator", "its gradients are estimated by an "
                                              "iteration to a tolerance (tol=)"),
}

_SLOPED = ("CubicSpline", "make_interp_spline", "BSpline", "interp1d")  # may be evaluated at traced points
swap_during_traces("scipy.interpolate", {n: replacement(lambda o, bound, b=b: b(o, dict(bound.arguments)), n in _SLOPED)
                                         for n, b in _BUILDERS.items()}, eager=True)


def _made_before(kind: str) -> Callable[[Callable], Callable]:
    """``__call__`` of a SciPy piecewise polynomial (PPoly, CubicSpline, …) or B-spline made
    before ``f`` ran (a module-level interpolant of constant data): at traced points the same
    ``ppoly`` op as one made inside ``f``; refused by name where it has none (it had raised
    SciPy's "a bytes-like object is required, not 'Tracer'")."""
    def make(original: Callable) -> Callable:
        def call(self, x, nu=0, extrapolate=None):
            if not _holds_tracer(x):
                return original(self, x, nu, extrapolate)
            pieces = _pieces(self, nu, extrapolate)
            if pieces is None:
                _refuse(type(self).__name__, "evaluation at traced points is recorded for interpolants along "
                        "axis 0 with increasing breaks and extrapolate True or False (not periodic); make one such, "
                        "or build it inside f")
            x = np.asarray(x)
            return x.tape.record("ppoly", [x, *pieces[:2]], {"extrapolate": pieces[2]})
        call.__name__, call.__wrapped__ = f"{kind}.__call__", original
        return call
    return make


def _integrate_made_before(original: Callable) -> Callable:
    """``integrate(a, b)`` of such an interpolant with traced limits: its antiderivative at b
    less at a, each the ``ppoly`` op (extrapolating as SciPy does by default; else refused)."""
    def integrate(self, a, b, extrapolate=None):
        if not (_holds_tracer(a) or _holds_tracer(b)):
            return original(self, a, b, extrapolate)
        ext = getattr(self, "extrapolate", True) if extrapolate is None else extrapolate
        if ext is not True:
            _refuse(f"{type(self).__name__}.integrate", f"traced limits are recorded with extrapolate=True only, "
                    f"not {ext!r}")
        whole = self.antiderivative()
        return whole(b) - whole(a)
    integrate.__wrapped__ = original
    return integrate


#: SciPy's RBF kernels as functions of the squared scaled distance r² (φ(r) for r = ε·‖x − y‖): the
#: square root of r² and the logarithm are taken where r² > 0 only, so a point at a centre has the
#: kernel's slope there (0; a cone's, the linear kernel's, by the convention of |x| at 0) where the
#: distance's own derivative at 0 gave NaN
_RBF_KERNELS = {
    "linear": lambda r2, pos, safe: np.where(pos, -np.sqrt(safe), 0.0),
    "thin_plate_spline": lambda r2, pos, safe: np.where(pos, 0.5 * r2 * np.log(safe), 0.0),
    "cubic": lambda r2, pos, safe: r2 ** 1.5,
    "quintic": lambda r2, pos, safe: -r2 ** 2.5,
    "multiquadric": lambda r2, pos, safe: -np.sqrt(r2 + 1.0),
    "inverse_multiquadric": lambda r2, pos, safe: 1.0 / np.sqrt(r2 + 1.0),
    "inverse_quadratic": lambda r2, pos, safe: 1.0 / (r2 + 1.0),
    "gaussian": lambda r2, pos, safe: np.exp(-r2),
}


def _rbf_terms(x: Any, y: np.ndarray, kernel: str, epsilon: float, powers: np.ndarray, shift: np.ndarray,
               scale: np.ndarray, coeffs: np.ndarray) -> Any:
    """SciPy's RBF evaluation at ``x`` (traced): kernels of the scaled distances to the centres ``y``
    and the monomials of the shifted, scaled points, times the coefficients."""
    d = x[:, None, :] * epsilon - y[None, :, :] * epsilon
    r2 = np.sum(d * d, axis=-1)
    pos = r2 > 0  # (traced: a later call at a centre takes the other branch)
    safe = np.where(pos, r2, 1.0)
    xhat = (x - shift) / scale
    monomials = []
    for row in np.asarray(powers).tolist():  # (products of whole powers: no x⁰ whose slope at 0 is 0·∞)
        term = xhat[:, 0] * 0.0 + 1.0
        for k, p in enumerate(row):
            if p:
                term = term * xhat[:, k] ** int(p)
        monomials.append(term)
    parts = [_RBF_KERNELS[kernel](r2, pos, safe)] + ([np.stack(monomials, axis=-1)] if monomials else [])
    return np.concatenate(parts, axis=-1) @ coeffs


def _rbf_at(original: Callable, rbf: Any, xi: Any) -> Any:
    """``rbf(xi)`` (an RBFInterpolator of constant data) at traced points: SciPy's value plus the
    change of :func:`_rbf_terms`, whose derivative is the kernels' and monomials' slope; with
    ``neighbors``, each point's neighbourhood is read at the traced point (the trace is
    value-dependent), its coefficients solved by SciPy. None where this SciPy's interpolant has
    not the parts read here (its kernel, or SciPy older than 1.15 with neighbours)."""
    if rbf.kernel not in _RBF_KERNELS:
        return None
    x = np.asarray(xi)
    with values_only():
        x0 = np.asarray(_plain(x), dtype=float)
        value = original(rbf, x0)  # (SciPy's checks of xi's shape, and its values)
    if rbf.neighbors is None:
        groups = [(np.arange(len(x0)), rbf.y, rbf._shift, rbf._scale, rbf._coeffs)]
    else:
        try:
            from scipy.interpolate._rbfinterp import _get_backend
        except ImportError:
            return None
        x.tape.note_value_dependence("scipy.interpolate.RBFInterpolator's neighbourhoods at the traced point")
        idx = np.sort(np.reshape(rbf._tree.query(x0, rbf.neighbors)[1], (len(x0), -1)), axis=1)
        hoods, which = np.unique(idx, return_inverse=True, axis=0)
        solve = _get_backend(np)._build_and_solve_system
        groups = [(np.flatnonzero(np.reshape(which, -1) == j), rbf.y[h],
                   *solve(rbf.y[h], rbf.d[h], rbf.smoothing[h], rbf.kernel, rbf.epsilon, rbf.powers, np))
                  for j, h in enumerate(hoods)]
    parts = [_rbf_terms(x[rows], y, rbf.kernel, rbf.epsilon, rbf.powers, shift, scale, coeffs)
             for rows, y, shift, scale, coeffs in groups]
    order = np.argsort(np.concatenate([rows for rows, *_ in groups]), kind="stable")
    return _at_scipys(value, np.reshape(np.concatenate(parts)[order], np.shape(value)))


def _points_made_before(original: Callable) -> Callable:
    """``__call__`` of RegularGridInterpolator and the scattered-data interpolants at traced points:
    refused by name (SciPy's own failed: a TypeError from its compiled code), but for an
    RBFInterpolator of real data (:func:`_rbf_at`)."""
    def call(self, xi, *args, **kwargs):
        if _holds_tracer(xi):
            real_rbf = isinstance(self, _sint().RBFInterpolator) and np.dtype(self.d_dtype).kind == "f"
            if real_rbf and not (args or kwargs):
                try:
                    found = _rbf_at(original, self, xi)
                except AttributeError:  # (a SciPy whose interpolant keeps its parts under other names: refused)
                    found = None
                if found is not None:
                    return found
            values = "" if isinstance(self, _sint().CloughTocher2DInterpolator) else (
                " (its values may be traced: build the interpolator inside f from them)")
            _refuse(type(self).__name__, f"its points xi must be constant{values}")
        return original(self, *((xi,) + args), **kwargs)
    call.__wrapped__ = original
    return call


def _from_spline(original: classmethod) -> classmethod:
    """``PPoly.from_spline`` of a spline made inside ``f``: SciPy's own of constant data; refused
    by name for traced data (SciPy could not unpack the spline jacc gives f)."""
    def from_spline(cls, tck, extrapolate=None):
        if isinstance(tck, _Traced):
            if tck._change is not None:
                _refuse("PPoly.from_spline", "a spline of traced data has no recorded PPoly form; evaluate the "
                        "spline itself (call, derivative, antiderivative, integrate)")
            tck = tck._plain
        return original.__func__(cls, tck, extrapolate)
    return classmethod(from_spline)


swap_method_during_traces("scipy.interpolate._interpolate:_PPolyBase", "__call__", _made_before("PPoly"))
swap_method_during_traces("scipy.interpolate._bsplines:BSpline", "__call__", _made_before("BSpline"))
swap_method_during_traces("scipy.interpolate._interpolate:PPoly", "from_spline", _from_spline)
swap_method_during_traces("scipy.interpolate._interpolate:PPoly", "integrate", _integrate_made_before)
swap_method_during_traces("scipy.interpolate._bsplines:BSpline", "integrate", _integrate_made_before)
for _cls in ("_rgi:RegularGridInterpolator", "_interpnd:NDInterpolatorBase", "_ndgriddata:NearestNDInterpolator",
             "_rbfinterp:RBFInterpolator"):
    swap_method_during_traces(f"scipy.interpolate.{_cls}", "__call__", _points_made_before)

_AFFINE = ("CubicSpline", "make_interp_spline", "BSpline", "interp1d", "RegularGridInterpolator", "interpn",
           "LinearNDInterpolator", "NearestNDInterpolator", "RBFInterpolator", "griddata", "splrep", "splev")


def supported() -> list[str]:
    """The ``scipy.interpolate`` functions a trace records."""
    return [f"scipy.interpolate.{n}" for n in _AFFINE]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _sint():
    import scipy.interpolate as sint
    return sint


_K = np.linspace(0.0, 2.0, 6)
case("scipy.interpolate.CubicSpline", lambda xp: lambda y, q: _sint().CubicSpline(_K, y)(q),
     lambda r: (r.normal(size=6), r.uniform(0.1, 1.9, size=3)), argnums=(0, 1), jax=False,
     note="SciPy's spline of the values plus M·(y − y₀), M from SciPy's spline of the identity; traced points "
          "add the slope")
case("scipy.interpolate.CubicSpline", lambda xp: lambda q: _sint().CubicSpline(_K, np.sin(_K))(q) * q,
     lambda r: (r.uniform(-0.2, 2.2, size=(2, 3)),), jax=False, variant="constant values, traced points",
     structures=frozenset({"diag"}), note="a fixed curve: the ppoly op, each point's piece found at each call")
case("scipy.interpolate.make_interp_spline",
     lambda xp: lambda q: _sint().make_interp_spline(_K, np.stack([_K ** 2, np.cos(_K)], 1), k=2)(q).sum(axis=1),
     lambda r: (r.uniform(0.0, 2.0, size=4),), jax=False, variant="constant values, 2 columns, traced points")
case("scipy.interpolate.CubicSpline",
     lambda xp: lambda y: _sint().CubicSpline(_K, y, bc_type="clamped").integrate(0.3, 1.7),
     lambda r: (r.normal(size=(6, 2)),), jax=False, variant="integrate, clamped, 2 columns")
case("scipy.interpolate.make_interp_spline", lambda xp: lambda y: _sint().make_interp_spline(_K, y, k=3).derivative()(
     np.array([0.5, 1.5])), lambda r: (r.normal(size=6),), jax=False)
case("scipy.interpolate.interp1d", lambda xp: lambda y: _sint().interp1d(_K, y, kind="quadratic")(np.array([0.5, 1.1])),
     lambda r: (r.normal(size=(2, 6)),), jax=False, note="axis=-1 (its default); evaluation points constant")
case("scipy.interpolate.RegularGridInterpolator",
     lambda xp: lambda v: _sint().RegularGridInterpolator((_K, _K[:4]), v)(np.array([[0.5, 0.3], [1.5, 1.1]])),
     lambda r: (r.normal(size=(6, 4)),), jax=False, note="traced grid values; constant query points")
_SCATTERED = np.array([[0.1, 0.2], [0.9, 0.1], [0.5, 0.9], [0.2, 0.7], [0.8, 0.8], [0.45, 0.4], [0.3, 0.35]])
_QUERY = np.array([[0.4, 0.5], [0.6, 0.3], [0.5, 0.6]])
_OUTSIDE = np.vstack([_QUERY, [[2.0, 2.0]]])  # (a point outside the hull: the fill value)
case("scipy.interpolate.griddata", lambda xp: lambda v: _sint().griddata(_SCATTERED, v, _QUERY),
     lambda r: (r.normal(size=7),), jax=False,
     note="method 'linear' or 'nearest' (2-d 'cubic' estimates its gradients iteratively: refused); points and xi "
          "constant")
case("scipy.interpolate.LinearNDInterpolator",
     lambda xp: lambda v: _sint().LinearNDInterpolator(_SCATTERED, v, fill_value=0.0)(_OUTSIDE),
     lambda r: (r.normal(size=(7, 2)),), jax=False, note="traced values, 2 columns; the query points constant")
case("scipy.interpolate.NearestNDInterpolator",
     lambda xp: lambda v: _sint().NearestNDInterpolator(_SCATTERED, v)(_QUERY),
     lambda r: (r.normal(size=7),), jax=False)
case("scipy.interpolate.RBFInterpolator",
     lambda xp: lambda v: _sint().RBFInterpolator(_SCATTERED, v, smoothing=0.01, degree=1)(_QUERY),
     lambda r: (r.normal(size=7),), jax=False, note="SciPy's interpolant of the values plus M·(y − y₀), M from "
     "SciPy's interpolant of the identity; its query points constant")
case("scipy.interpolate.RBFInterpolator",
     lambda xp: lambda q: _sint().RBFInterpolator(_SCATTERED, np.cos(3.0 * _SCATTERED[:, 0]), degree=2)(q),
     lambda r: (_QUERY + 0.05 * r.normal(size=(3, 2)),), jax=False, variant="constant data, traced points",
     note="SciPy's value plus the change of its kernels of the squared distances and its monomials (all eight "
          "kernels; at a centre the kernel's slope there); with neighbors=, each point's neighbourhood is read at "
          "the traced point")
_FIT_X = np.linspace(0.0, 2.0, 7)
case("scipy.interpolate.splrep",
     lambda xp: lambda y: _sint().splev(np.array([0.3, 1.1, 1.8]), _sint().splrep(_FIT_X, y)),
     lambda r: (r.normal(size=7),), jax=False,
     note="s=0 (interpolation) or knots t given: coefficients linear in y, SciPy's for y₀ plus those of the unit "
          "vectors times the change; a smoothing spline (s > 0) is refused")
case("scipy.interpolate.splev",
     lambda xp: lambda q: _sint().splev(q, _sint().splrep(_FIT_X, np.sin(_FIT_X)), der=1, ext=3),
     lambda r: (r.uniform(-0.3, 2.3, size=4),), jax=False,
     note="the B-spline (t, c, k) at x, SciPy's value plus its change; ext 0, 1 (zero outside) and 3 (end values), "
          "and 2 raising SciPy's error")
