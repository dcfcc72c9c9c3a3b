"""``scipy.stats`` distributions of traced arrays: ``pdf``, ``logpdf``, ``cdf``, ``logcdf``, ``sf``,
``logsf`` and the quantiles ``ppf``/``isf`` of the continuous ones (``norm``, ``t``, ``gamma``,
``beta``, ``f``, ``expon`` …) and ``pmf``, ``logpmf``, ``cdf``, ``sf``, ``logcdf``, ``logsf``,
``ppf`` and ``isf`` of the discrete ones (``poisson``, ``binom``, ``nbinom`` …), frozen ones
included (``scipy.stats.norm(mu, sigma).logpdf(x)``), with the points, ``loc``, ``scale`` and the
shape parameters differentiable (a discrete distribution's points are constants in effect: its mass
is piecewise constant in them). The
incomplete gamma and beta functions behind the distribution functions of ``gamma``, ``chi2``, ``t``,
``beta``, ``f`` and ``nbinom`` are differentiated in their shape parameters too (see :mod:`jacc.ops`).

SciPy's public methods write their results into a plain output array (``np.place``), which a trace
cannot follow. While ``f`` runs on traced arguments they are replaced (see
:func:`jacc.constructors.swap_method_during_traces`; jacc never imports SciPy itself) by versions
that do what SciPy does with traced values: standardise ``z = (x − loc)/scale``, check the
parameters and the support (as traced masks where both are SciPy's defaults, see :func:`_masked`;
else at the traced point, so the trace is value-dependent, as a comparison makes it), evaluate the
distribution's own formula (its ``_logpdf``, ``_cdf`` …, NumPy and ``scipy.special`` code) on the
points inside, and give SciPy's constants elsewhere: the density 0
(log −inf) outside the support, the distribution function 0 or 1 beyond its ends, NaN for invalid
parameters. A distribution whose formula is not such code (one that integrates its density
numerically) is refused by the tracer where it leaves NumPy.

>>> import numpy as np, jacc, scipy.stats
>>> jf = jacc.jacobian(lambda mu: scipy.stats.norm.logpdf(2.0, loc=mu, scale=2.0))
>>> float(jf(np.array(1.0)))  # (x − μ)/σ²
0.25
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, routed, swap_during_traces, swap_method_during_traces, traced_constructor
from ..masks import Mask
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case, implicit
from .gathers import _value
from .linalg import spd, triangular_solve

_INF = np.inf

# method -> (the distribution's formula, scaled: divide by scale / subtract log scale, value
# below the support, value above it, whether the support's ends count as inside)
_METHODS = {
    "pdf": ("_pdf", lambda v, s: v / s, 0.0, 0.0, True),
    "logpdf": ("_logpdf", lambda v, s: v - np.log(s), -_INF, -_INF, True),
    "cdf": ("_cdf", None, 0.0, 1.0, False),
    "logcdf": ("_logcdf", None, -_INF, 0.0, False),
    "sf": ("_sf", None, 1.0, 0.0, False),
    "logsf": ("_logsf", None, 0.0, -_INF, False),
}
# the discrete distributions' mass functions (no scale; the points inside are the integers of the
# support) and distribution functions (of floor(x − loc); "left": the support's lower end inside)
_DISCRETE = {"pmf": ("_pmf", None, 0.0, 0.0, True), "logpmf": ("_logpmf", None, -_INF, -_INF, True),
             "cdf": ("_cdf", None, 0.0, 1.0, "left"), "sf": ("_sf", None, 1.0, 0.0, "left"),
             "logcdf": ("_logcdf", None, -_INF, 0.0, "left"), "logsf": ("_logsf", None, 0.0, -_INF, "left")}


def _concrete(x: Any, what: str) -> np.ndarray:
    return _value(x, what) if isinstance(x, Tracer) else np.asarray(x, dtype=float)


def _merge(mask: np.ndarray, inside: Any, outside: Any) -> Any:
    """An array shaped like ``mask``: ``inside`` (a value per true entry, in order; where all are
    true, a value that broadcasts to ``mask``'s shape) where ``mask`` holds, ``outside`` elsewhere."""
    shape = mask.shape
    if mask.all():
        if np.shape(inside) == (mask.size,) != shape:  # (the raveled entries, as _on gave them)
            return np.reshape(inside, shape)
        return np.broadcast_to(inside, shape) if np.shape(inside) != shape else inside
    positions = np.flatnonzero(mask)
    spread = np.broadcast_to(inside, positions.shape) if np.shape(inside) != positions.shape else inside
    # (np.bincount of traced weights is recorded as a free scatter: jacc.numpy_api.gathers)
    placed = np.bincount(positions, weights=spread, minlength=mask.size).reshape(shape)
    return np.where(mask, placed, outside)


def _on(mask: np.ndarray, values: Any) -> list:
    """``values`` broadcast to ``mask``'s shape and restricted to its true entries, one flat array
    each: what SciPy's formulas see (its ``argsreduce`` broadcasts and ravels where every entry is
    true; a formula such as ``norminvgauss._sf`` zips its arguments, so a shape parameter left a
    scalar gave every point the first one's value)."""
    if mask.all():
        return [v if np.shape(v) == (mask.size,) else np.reshape(np.broadcast_to(v, mask.shape), (-1,))
                for v in values]
    return [np.broadcast_to(v, mask.shape)[mask] for v in values]


def _apply_where(original: Callable) -> Callable:
    """SciPy's ``apply_where(cond, args, f1, f2, fill_value=)``, which its distributions' formulas
    use: ``f1`` on the entries where ``cond`` holds, ``f2`` (or ``fill_value``) elsewhere, each
    seeing only its own entries; inside a distribution's method at full shape where it can be
    (:func:`_full_shape_where`), else ``cond`` read at the traced point."""
    def apply_where(cond, args, f1, f2=None, /, *, fill_value=None, xp=None):
        many = isinstance(args, tuple)
        if not (_holds_tracer(list(args) if many else args) or isinstance(cond, Tracer)
                or isinstance(fill_value, Tracer)):
            return original(cond, args, f1, f2, fill_value=fill_value, xp=xp)
        args = args if many else (args,)
        if type(cond) is Mask and _FORMULA.depth:
            found = _full_shape_where(cond, args, f1, f2, fill_value)
            if found is not None:
                return found
        mask = _concrete(cond, "scipy's apply_where") != 0
        mask = np.broadcast_to(mask, np.broadcast_shapes(mask.shape, *[np.shape(a) for a in args]))
        first = f1(*_on(mask, args)) if mask.any() else np.zeros(0)
        if f2 is None:
            second = fill_value
        else:
            other = ~mask
            second = _merge(other, f2(*_on(other, args)), 0.0) if other.any() else 0.0
        return _merge(mask, first, second)
    return apply_where


class _Formula(threading.local):
    """How deep this thread is in distributions' methods: their formulas' ``apply_where`` (elementwise
    branches, as a rule) are tried at full shape; other SciPy code's (``spherical_jn``'s reflection)
    as before."""

    depth = 0


_FORMULA = _Formula()


def _full_shape_where(cond: Mask, args: tuple, f1: Callable, f2: Callable | None, fill_value: Any) -> Any:
    """``apply_where`` without reading ``cond`` (so calls may skip ``f``: ``t``'s ν = ∞ branch kept a
    Student-t likelihood of traced ν running ``f``, 1 ms a call against 26 µs for JAX): ``f1`` and
    ``f2`` on every entry through :mod:`jacc.lanes` (where a branch is not taken, its arguments hold
    one of its own rows), then ``where``. None where an argument does not fit the mask's shape or a
    branch is not elementwise (the lanes were gathered: the caller reads ``cond``)."""
    from ..lanes import Lanes, select

    shape = cond.shape
    if any(type(a) is Lanes for a in args):  # (a branch of another apply_where: read as before)
        return None
    try:
        full = [a if not isinstance(a, Tracer) and np.asarray(a).dtype.kind not in "fc" else
                np.broadcast_to(a, shape) if np.shape(a) != shape else a for a in args]
    except ValueError:
        return None

    def branch(mask: Mask, f: Callable):
        # (a constant that is not a float, an integer order, passes as it is: a number, or the end)
        selected = [select(a, mask) if isinstance(a, Tracer) or np.asarray(a).dtype.kind in "fc" else
                    a if not np.ndim(a) else None for a in full]
        if any(s is None for s in selected):
            return None
        r = f(*selected)
        return r if type(r) is Lanes and r._gathered is None and r.full.shape == shape else None

    first = branch(cond, f1)
    if first is None:
        return None
    if f2 is None:
        return np.where(first.wide, first.full, fill_value)
    second = branch(~cond, f2)
    return None if second is None else np.where(first.wide, first.full, second.full)


def _lazyselect(original: Callable) -> Callable:
    """SciPy's ``_lazyselect(condlist, choicelist, arrays, default)``, which some distributions'
    formulas use (``triang``'s, ``kappa4``'s): each function on the entries its condition picks,
    a later condition's over an earlier one's, ``default`` elsewhere; conditions read at the
    traced point."""
    def lazyselect(condlist, choicelist, arrays, default=0):
        if not (_holds_tracer(list(arrays)) or _holds_tracer(list(condlist))):
            return original(condlist, choicelist, arrays, default)
        arrays = np.broadcast_arrays(*arrays)
        shape = np.shape(arrays[0])
        out: Any = np.full(shape, float(default))
        for func, cond in zip(choicelist, condlist):
            mask = np.broadcast_to(_concrete(cond, "scipy's _lazyselect") != 0, shape)
            if mask.any():
                out = _merge(mask, func(*_on(mask, arrays)), out)
        return out
    return lazyselect


def _distribution_method(name: str, body: Callable) -> Callable[[Callable], Callable]:
    """The replacement of a distribution's method ``name``: SciPy's own unless an argument is
    traced, else ``body(self, what, x, shapes, loc, scale, params)`` with SciPy's parameters
    parsed (``params()``: the shape parameters' values, read at the traced point)."""
    def make(original: Callable) -> Callable:
        def method(self, x, *args, **kwds):
            if not (_holds_tracer(x) or _holds_tracer(args) or _holds_tracer(list(kwds.values()))):
                return original(self, x, *args, **kwds)
            shapes, loc, scale = self._parse_args(*args, **kwds)
            what = f"scipy.stats.{self.name}.{name}"
            x = x if isinstance(x, Tracer) else np.asarray(x, dtype=float)
            _FORMULA.depth += 1
            try:
                return body(self, what, x, shapes, loc, scale, lambda: [_concrete(a, what) for a in shapes])
            except TypeError as e:
                if "Tracer" not in str(e):
                    raise
                raise UnsupportedOperationError(  # (compiled code typed for NumPy arrays)
                    f"{what} at {call_site()}: the distribution's formula is compiled code that takes plain "
                    "NumPy arrays, which a trace cannot follow") from None
            finally:
                _FORMULA.depth -= 1
        method.__name__ = name
        return method
    return make


def _density(name: str, discrete: bool) -> Callable:
    """``pdf``, ``cdf`` … (:data:`_METHODS`) and the discrete ``pmf``, ``cdf`` … (:data:`_DISCRETE`)."""
    formula, scaled, below, above, closed = _DISCRETE[name] if discrete else _METHODS[name]

    def body(self, what, x, shapes, loc, scale, params):
        found = (_masked_discrete(self, formula, below, above, closed, x, shapes, loc) if discrete else
                 _masked(self, formula, scaled, below, above, closed, x, shapes, loc, scale))
        if found is not None:
            return found
        params = params()
        z = x - loc if discrete else (x - loc) / scale
        if closed == "left":
            z = np.floor(z)
        zv, sv = _concrete(z, what), _concrete(scale, what)
        if discrete:  # a mass is piecewise constant in the points and loc: the formula's slope in
            z = zv  # them (a pmf's continuous extension, poisson's xˣ/Γ(x+1)) is not the mass's
        lo, hi = self._get_support(*params)
        valid = np.asarray(self._argcheck(*params), dtype=bool) & (sv > 0) & ~np.isnan(zv)
        if closed == "left":
            inside = valid & (lo <= zv) & (zv < hi)
        else:
            inside = valid & ((lo <= zv) & (zv <= hi) if closed else (lo < zv) & (zv < hi))
        if discrete and closed is True:
            inside = inside & (np.floor(zv) == zv)
        const = np.broadcast_to(np.where(valid, np.where(zv >= hi, above, below), np.nan), inside.shape)
        if not inside.any():
            return const.copy()
        # SciPy's formula sees the points inside only (outside it may not be defined)
        *parts, s = _on(inside, (z, *shapes, scale))
        found = getattr(self, formula)(*parts)
        return _merge(inside, found if scaled is None else scaled(found, s), const)
    return _distribution_method(name, body)


def _owner(obj: Any, name: str) -> str:
    """The name of the class in ``obj``'s hierarchy that defines attribute ``name``."""
    return next((c.__name__ for c in type(obj).__mro__ if name in vars(c)), "")


def _inner_point(lo: float, hi: float) -> float:
    """A point well inside the support [lo, hi]: the formula's argument where a point is outside."""
    if np.isfinite(lo) and np.isfinite(hi):
        return (lo + hi) / 2
    return lo + 1.0 if np.isfinite(lo) else hi - 1.0 if np.isfinite(hi) else 0.0


def _positive(shapes) -> Any:
    """SciPy's default parameter check, every shape parameter positive, on traced values a mask."""
    check = True
    for a in shapes:
        check = check & (a > 0)
    return check


def _masked(self, formula, scaled, below, above, closed, x, shapes, loc, scale) -> Any:
    """A continuous distribution's function as traced masks, not read at the traced point (so calls
    may skip ``f``, and later points may leave the support): the formula on every point, a point
    outside the support or with invalid parameters replaced by one inside (so no NaN of the branch
    not taken meets the mask's zero), then SciPy's constants where the mask is false. ``None``
    where the support or the parameters' check is the distribution's own (either may read the
    parameters' values: they are then read at the traced point)."""
    if _owner(self, "_get_support") != "rv_generic" or (
            shapes and _owner(self, "_argcheck") != "rv_generic"):
        return None
    lo, hi = float(self.a), float(self.b)
    check = _positive(shapes)

    z = (x - loc) / scale
    valid = check & (scale > 0) & (z == z)  # (traced comparisons: masks)
    inside = valid & ((lo <= z) & (z <= hi) if closed else (lo < z) & (z < hi))
    const = np.where(valid, np.where(z >= hi, above, below), np.nan)
    shape = np.broadcast_shapes(np.shape(z), np.shape(const), *[np.shape(a) for a in shapes])
    inner = [np.where(inside, z, _inner_point(lo, hi))]
    inner += [np.where(valid, a, 1.0) if isinstance(a, Tracer) else a for a in shapes]  # (1 passes the check)
    # (SciPy's formulas see raveled points, as its argsreduce gives them: some zip their arguments)
    flat = [np.reshape(np.broadcast_to(v, shape), (-1,)) for v in inner]
    found = np.reshape(getattr(self, formula)(*flat), shape)
    if scaled is not None:
        found = scaled(found, np.where(valid, scale, 1.0) if isinstance(scale, Tracer) else scale)
    return np.where(inside, found, const)


def _masked_discrete(self, formula, below, above, closed, x, shapes, loc) -> Any:
    """A discrete distribution's mass or distribution function of traced shape parameters at
    constant points (``poisson.logpmf(k, mu)``: a GLM's likelihood) as traced masks, not read at
    the traced point (every call ran ``f``: 344 µs against 55 µs now for a Poisson GLM of 200
    counts): the parameters' check is the distribution's own, run on the traced parameters, the
    support constant ends; the formula runs on every point through :mod:`jacc.lanes` (a point
    outside the support takes the support's lower end, parameters that fail the check a row that
    passes it), SciPy's constants elsewhere. None where the check reads the parameters' values,
    the support moves with them or a step of the formula is not elementwise: the caller reads
    them at the traced point."""
    from ..lanes import Lanes, select

    if (isinstance(x, Tracer) or isinstance(loc, Tracer) or not any(isinstance(a, Tracer) for a in shapes)
            or not _own_formula(self, formula)):
        return None
    tape = next(a.tape for a in shapes if isinstance(a, Tracer))
    z = np.asarray(x, dtype=float) - np.asarray(loc, dtype=float)
    if closed == "left":
        z = np.floor(z)
    read = len(tape.value_dependent)
    try:
        lo, hi = self._get_support(*shapes)
        # (SciPy's default check converts its arguments: its test, traced)
        check = _positive(shapes) if _owner(self, "_argcheck") == "rv_generic" else self._argcheck(*shapes)
        valid = check & ~np.isnan(z)
    except (TypeError, ValueError, UnsupportedOperationError) as e:
        getattr(e, "undo", lambda: None)()  # (a conversion refused and caught here is no refusal of f's)
        return None
    if len(tape.value_dependent) != read or type(valid) is not Mask or any(
            isinstance(e, (Tracer, Mask)) or not np.all(np.isfinite(e) | (e == np.inf)) for e in (lo, hi)):
        return None
    if not np.all(valid.value) and any(not isinstance(a, Tracer) and np.ndim(a) for a in shapes):
        return None  # (a constant array of parameters that fail the check: the formula there is no row to fill)
    on = (lo <= z) & ((z < hi) if closed == "left" else (z <= hi))  # (constants: the support's ends are)
    if closed is True:
        on = on & (np.floor(z) == z)
    shape = np.broadcast_shapes(np.shape(z), *[np.shape(a) for a in shapes])
    inside = valid & on
    if type(inside) is not Mask or inside.shape != shape:
        return None
    const = np.where(valid, np.where(z >= hi, above, below), np.nan)
    wide = inside  # (a mask of the points themselves: no row axes)
    points = Lanes(inside, wide, np.broadcast_to(np.where(on, z, lo), shape).astype(float))
    params = []
    for a in shapes:
        if isinstance(a, Tracer):
            a = select(np.broadcast_to(a, shape) if a.shape != shape else a, inside)
        elif np.ndim(a):
            a = Lanes(inside, wide, np.broadcast_to(np.asarray(a, dtype=float), shape))
        if a is None:
            return None
        params.append(a)
    found = getattr(self, formula)(points, *params)
    if type(found) is not Lanes or found._gathered is not None or not isinstance(found.full, Tracer):
        return None
    return np.where(wide, found.full, const)


#: a discrete distribution's generic methods and what each computes from (``rv_discrete``'s own
#: ``_cdf`` sums the mass through ``np.vectorize``, which cannot run on a whole traced array)
_DISCRETE_GENERIC = {"_logpmf": "_pmf", "_pmf": "_cdf", "_logcdf": "_cdf", "_sf": "_cdf", "_logsf": "_sf"}


def _own_formula(self, formula: str) -> bool:
    """Whether ``formula`` is, or computes from, a formula of the distribution's own (hunt BK:
    dlaplace's and betabinom's cdf reached SciPy's generic, vectorized ``_cdf``)."""
    while _owner(self, formula) in ("rv_discrete", "rv_generic"):
        formula = _DISCRETE_GENERIC.get(formula)
        if formula is None:
            return False
    return True


def _quantile(name: str) -> Callable:
    """``ppf``/``isf``: the distribution's ``_ppf``/``_isf`` times scale plus loc for 0 < q < 1,
    the support's ends at q = 0 and 1 (ppf: 0 the lower; isf: 0 the upper), NaN elsewhere."""
    formula = f"_{name}"

    def body(self, what, q, shapes, loc, scale, params):
        params = params()
        qv, sv, lv = _concrete(q, what), _concrete(scale, what), _concrete(loc, what)
        lo, hi = self._get_support(*params)
        valid = np.asarray(self._argcheck(*params), dtype=bool) & (sv > 0) & (lv == lv)
        shape = np.broadcast_shapes(np.shape(valid), np.shape(qv), np.shape(lo), np.shape(hi))
        inside = np.broadcast_to(valid & (0 < qv) & (qv < 1), shape)
        first, last = (lo, hi) if name == "ppf" else (hi, lo)
        end = np.broadcast_to(np.where(qv == 0, first, last), shape)
        at_end = np.broadcast_to(valid & ((qv == 0) | (qv == 1)), shape)
        finite = at_end & np.isfinite(end)  # a ±inf end has no derivative to carry
        const = np.where(at_end & ~finite, end, np.nan)
        if finite.any():
            e, s_, l_ = _on(finite, (end, scale, loc))
            const = _merge(finite, e * s_ + l_, const)
        if not inside.any():
            return const if isinstance(const, Tracer) else np.array(const)
        *parts, s_, l_ = _on(inside, (q, *shapes, scale, loc))
        return _merge(inside, getattr(self, formula)(*parts) * s_ + l_, const)
    return _distribution_method(name, body)


def _discrete_quantile(name: str) -> Callable[[Callable], Callable]:
    """A discrete distribution's ``ppf``/``isf``: integers, piecewise constant in q and the shape
    parameters (derivative zero), read at the traced point, plus ``loc``."""
    def make(original: Callable) -> Callable:
        def method(self, q, *args, **kwds):
            if not (_holds_tracer(q) or _holds_tracer(args) or _holds_tracer(list(kwds.values()))):
                return original(self, q, *args, **kwds)
            what = f"scipy.stats.{self.name}.{name}"
            shapes, loc, _ = self._parse_args(*args, **kwds)
            plain = [_concrete(a, what) for a in (q, *shapes)]
            found = original(self, *plain, loc=0.0)
            if not isinstance(loc, Tracer):
                return found + _concrete(loc, what)
            return found + np.where(np.isfinite(found), loc, 0.0)  # (±inf and NaN stay: no derivative)
        method.__name__ = name
        return method
    return make


swap_during_traces("scipy._lib.array_api_extra", {"apply_where": _apply_where})
# SciPy's NumPy namespace clips by writing into np.empty (out[()] = x): NumPy's own clip traces
swap_during_traces("scipy._lib.array_api_compat.numpy",
                   {"clip": routed(lambda _original, x, /, min=None, max=None, **kw: np.clip(x, min, max, **kw))})
swap_during_traces("scipy.stats._continuous_distns", {"_lazyselect": _lazyselect})
# eager: SciPy's own method, run by a first trace without them, met a traced value deep inside and
# left code the watch of that call saw run (its argsreduce unreached), so calls never skipped f
_INFRA = "scipy.stats._distn_infrastructure:"
for _name in ("ppf", "isf"):
    swap_method_during_traces(_INFRA + "rv_discrete", _name, _discrete_quantile(_name), eager=True)
    swap_method_during_traces(_INFRA + "rv_continuous", _name, _quantile(_name), eager=True)
for _name in _METHODS:
    swap_method_during_traces(_INFRA + "rv_continuous", _name, _density(_name, False), eager=True)
for _name in _DISCRETE:
    swap_method_during_traces(_INFRA + "rv_discrete", _name, _density(_name, True), eager=True)


def _parameters(self, what: str, shapes, loc, scale):
    """``(valid, [*shapes, scale, loc], shape)``: the parameters a formula runs on, flat, and SciPy's
    check of them. Where the check is SciPy's default (every shape parameter positive) and every
    entry passes it at the traced point, ``valid`` is a traced mask of the full ``shape`` and every
    entry is passed, one that fails replaced by one that passes (1, 1, 0: no NaN of a branch not
    taken meets the mask's zero), so later calls skip ``f`` and may meet invalid parameters; else
    ``valid`` is read at the traced point and the arguments are the entries that pass it (``shape``
    None)."""
    # (lists as arrays, as SciPy's asarray makes them: one of traced values is an array of them)
    def array(a):
        return a if isinstance(a, Tracer) else np.asarray(a)
    shapes, loc, scale = [array(a) for a in shapes], array(loc), array(scale)
    full = np.broadcast_shapes(*[np.shape(a) for a in (*shapes, loc, scale)])
    if _owner(self, "_argcheck") == "rv_generic":
        valid = _positive(shapes) & (scale > 0) & (loc == loc)  # (traced comparisons: masks)
        if type(valid) is Mask and np.all(valid.value):
            fills = (*[1.0] * len(shapes), 1.0, 0.0)
            args = [np.reshape(np.broadcast_to(np.where(valid, a, fill) if isinstance(a, Tracer) else a, full), (-1,))
                    for a, fill in zip((*shapes, scale, loc), fills)]
            return valid, args, full
    loc_v, scale_v = np.asarray(_concrete(loc, what)), np.asarray(_concrete(scale, what))
    cond = np.asarray(self._argcheck(*[_concrete(a, what) for a in shapes]), dtype=bool) & (scale_v > 0) & (
        loc_v == loc_v)
    cond = np.broadcast_to(cond, np.broadcast_shapes(cond.shape, full))
    return cond, (_on(cond, (*shapes, scale, loc)) if cond.any() else None), None


def _placed(valid, value, shape, bad: float):
    """A formula's ``value`` on the arguments of :func:`_parameters`, ``bad`` where ``valid`` fails."""
    if shape is None:
        return _merge(valid, value, bad)
    return np.where(valid, np.reshape(np.broadcast_to(value, (math.prod(shape),)), shape), bad)


def _stats_method(original: Callable) -> Callable:
    """``stats`` — and through it ``mean``, ``var`` and ``std``, frozen or not — of traced
    parameters, by SciPy's steps as NumPy code: the distribution's ``_stats`` formula, its ``_munp``
    moments where that gives None (a numerical integral there is refused where it leaves NumPy),
    scaled and shifted; SciPy's NaN where its parameters' check fails (:func:`_parameters`)."""
    def stats(self, *args, **kwds):
        if not (_holds_tracer(args) or _holds_tracer(list(kwds.values()))):
            return original(self, *args, **kwds)
        shapes, loc, scale, moments = self._parse_args_stats(*args, **kwds)
        what = f"scipy.stats.{self.name}.stats"
        valid, flat, shape = _parameters(self, what, shapes, loc, scale)
        if flat is None:
            return original(self, *[_concrete(a, what) for a in shapes], loc=_concrete(loc, what),
                            scale=_concrete(scale, what), moments=moments)  # (NaN everywhere: a constant)
        *good, s, m = flat
        found = list(self._stats(*good, moments=moments) if self._stats_has_moments else self._stats(*good))

        def moment(k: int):  # the central moments SciPy's formula left out, from the raw ones
            if found[k] is None:
                mu = found[0] if found[0] is not None else self._munp(1, *good)
                mu2 = found[1] if found[1] is not None else self._munp(2, *good) - mu * mu
                if k == 0:
                    found[0] = mu
                elif k == 1:
                    found[1] = np.where(~np.isinf(mu), mu2, np.inf)
                elif k == 2:
                    found[2] = ((-mu * mu - 3 * mu2) * mu + self._munp(3, *good)) / np.power(mu2, 1.5)
                else:
                    mu3 = (found[2] * np.power(mu2, 1.5) if found[2] is not None else
                           (-mu * mu - 3 * mu2) * mu + self._munp(3, *good))
                    mu4 = ((-mu ** 2 - 6 * mu2) * mu - 4 * mu3) * mu + self._munp(4, *good)
                    found[3] = mu4 / mu2 ** 2.0 - 3.0
            return found[k]
        scaled = {"m": lambda: moment(0) * s + m, "v": lambda: moment(1) * s * s, "s": lambda: moment(2),
                  "k": lambda: moment(3)}
        with np.errstate(invalid="ignore"):  # (SciPy's order, each once, other letters ignored)
            out = [_placed(valid, scaled[k](), shape, self.badvalue) for k in "mvsk" if k in moments]
        return out[0] if len(out) == 1 else tuple(out)
    return stats


def _entropy_method(original: Callable) -> Callable:
    """``entropy`` of traced parameters: the distribution's own ``_entropy`` formula (SciPy's
    ``vecentropy`` runs it on each valid parameter) plus log(scale); NaN where the check fails."""
    def entropy(self, *args, **kwds):
        if not (_holds_tracer(args) or _holds_tracer(list(kwds.values()))):
            return original(self, *args, **kwds)
        shapes, loc, scale = self._parse_args(*args, **kwds)
        what = f"scipy.stats.{self.name}.entropy"
        if _owner(self, "_entropy") in ("rv_continuous", "rv_discrete", "rv_generic"):
            how = "sums its mass function" if _owner(self, "_entropy") == "rv_discrete" else "integrates its density"
            raise UnsupportedOperationError(
                f"{what} at {call_site()}: the distribution has no entropy formula of its own (SciPy {how} "
                "numerically), which a trace cannot follow")
        valid, flat, shape = _parameters(self, what, shapes, loc, scale)
        if flat is None:
            return original(self, *[_concrete(a, what) for a in shapes], loc=_concrete(loc, what),
                            scale=_concrete(scale, what))
        *good, s, _ = flat
        return _placed(valid, _entropies(self, good) + np.log(s), shape, self.badvalue)
    return entropy


def _entropies(self, good: list) -> Any:
    """The distribution's ``_entropy`` at each entry of the flat parameters ``good``: on them
    whole, or (a formula written for one value, ``if df == np.inf``: SciPy's ``vecentropy`` runs it
    entry by entry) one entry at a time."""
    n = int(np.size(good[0])) if good else 1
    if n > 1:
        try:
            return self._entropy(*good)
        except (ValueError, TypeError) as e:
            if isinstance(e, UnsupportedOperationError):
                raise
            getattr(e, "undo", lambda: None)()
    return np.stack([np.reshape(self._entropy(*[np.reshape(g, (-1,))[i] for g in good]), ()) for i in range(n)])


#: the methods that go through ``stats`` and ``entropy`` (``median`` and ``interval`` through ``ppf``)
_MOMENTS = ("stats", "mean", "var", "std", "entropy")
swap_method_during_traces(_INFRA + "rv_generic", "stats", _stats_method)
swap_method_during_traces(_INFRA + "rv_generic", "entropy", _entropy_method)


def supported() -> list[str]:
    """The ``scipy.stats`` methods a trace records (of every distribution whose formula is NumPy
    code)."""
    return ([f"scipy.stats.rv_continuous.{n}" for n in (*_METHODS, "ppf", "isf", *_MOMENTS)]
            + [f"scipy.stats.rv_discrete.{n}" for n in (*_DISCRETE, "ppf", "isf", *_MOMENTS)]
            + ["scipy.stats.multivariate_normal.logpdf", "scipy.stats.multivariate_normal.pdf"]
            + [f"scipy.stats.{d}.{m}" for d in ("wishart", "invwishart") for m in ("logpdf", "pdf")]
            + ["scipy.stats.pearsonr", "scipy.stats.wasserstein_distance", "scipy.stats.energy_distance",
               "scipy.stats.binned_statistic", "scipy.stats.binned_statistic_2d",
               "scipy.stats.binned_statistic_dd"]
            + [f"scipy.stats.gaussian_kde.{m}" for m in ("evaluate", "pdf", "logpdf")])


# -- examples (JAX's jax.scipy.stats is the reference) ------------------------------------------


def _stats(xp):
    if xp is np:
        import scipy.stats as stats
    else:
        import jax.scipy.stats as stats
    return stats


def _pos(r, shape=(3, 4)):
    return r.uniform(0.5, 2.0, size=shape)


case("scipy.stats.norm.logpdf", lambda xp: lambda x, mu, sigma: _stats(xp).norm.logpdf(x, mu, sigma),
     lambda r: (r.normal(size=(3, 4)), r.normal(size=4), _pos(r, (3, 1))), argnums=(0, 1, 2))
case("scipy.stats.norm.cdf", lambda xp: lambda x: _stats(xp).norm.cdf(x, loc=0.5, scale=2.0),
     lambda r: (r.normal(size=(3, 4)),))
case("scipy.stats.norm.logcdf", lambda xp: lambda x: _stats(xp).norm.logcdf(x), lambda r: (r.normal(size=5),))
case("scipy.stats.norm.sf", lambda xp: lambda x: _stats(xp).norm.sf(x), lambda r: (r.normal(size=5),))
case("scipy.stats.t.logpdf", lambda xp: lambda x, loc: _stats(xp).t.logpdf(x, 3.0, loc, 1.5),
     lambda r: (r.normal(size=(3, 4)), r.normal(size=4)), argnums=(0, 1))
case("scipy.stats.gamma.logpdf", lambda xp: lambda x, a, scale: _stats(xp).gamma.logpdf(x, a, scale=scale),
     lambda r: (_pos(r), _pos(r, (4,)) + 1.0, _pos(r, (3, 1))), argnums=(0, 1, 2))
case("scipy.stats.expon.pdf", lambda xp: lambda x: _stats(xp).expon.pdf(x, loc=0.0, scale=2.0),
     lambda r: (np.array([-1.0, 0.5, 2.0]),), note="0 below the support, with a zero derivative, as SciPy")
case("scipy.stats.laplace.logpdf", lambda xp: lambda x, b: _stats(xp).laplace.logpdf(x, scale=b),
     lambda r: (r.normal(size=5) + 0.1, _pos(r, (5,))), argnums=(0, 1))
case("scipy.stats.logistic.cdf", lambda xp: lambda x: _stats(xp).logistic.cdf(x), lambda r: (r.normal(size=5),))
case("scipy.stats.cauchy.logpdf", lambda xp: lambda x, s: _stats(xp).cauchy.logpdf(x, 0.3, s),
     lambda r: (r.normal(size=5), _pos(r, (5,))), argnums=(0, 1))
case("scipy.stats.binom.pmf", lambda xp: lambda p: _stats(xp).binom.pmf(np.array([0.0, 2.0, 5.0]), 6, p),
     lambda r: (r.uniform(0.1, 0.9, size=3),), jax=False, note="as SciPy's logpmf, exponentiated; in p")
case("scipy.stats.nbinom.pmf", lambda xp: lambda p, n: _stats(xp).nbinom.pmf(np.array([0.0, 2.0, 5.0]), n, p),
     lambda r: (r.uniform(0.1, 0.9, size=3), r.uniform(1.0, 4.0, size=3)), argnums=(0, 1), jax=False,
     note="in p and a real n")
case("scipy.stats.norm.ppf", lambda xp: lambda q, mu, sigma: _stats(xp).norm.ppf(q, mu, sigma),
     lambda r: (r.uniform(0.05, 0.95, size=(3, 4)), r.normal(size=4), _pos(r, (3, 1))), argnums=(0, 1, 2),
     note="inverse-CDF sampling, differentiated in the parameters")
_OWN = "SciPy's own array-API code runs on traced arrays (JAX has no twin)"
case("scipy.stats.zscore", lambda xp: lambda x: _stats(xp).zscore(x, axis=1), lambda r: (r.normal(size=(3, 4)),),
     jax=False, note=_OWN)
case("scipy.stats.entropy", lambda xp: lambda p, q: _stats(xp).entropy(p, q, axis=0),
     lambda r: (_pos(r), _pos(r)), argnums=(0, 1), jax=False, note=_OWN)
case("scipy.stats.skew", lambda xp: lambda x: _stats(xp).skew(x, axis=0), lambda r: (r.normal(size=(5, 3)),),
     jax=False, note=_OWN)
case("scipy.stats.tmean", lambda xp: lambda x: _stats(xp).tmean(x, (-1.0, 1.0)),
     lambda r: (r.normal(size=8),), jax=False, note=_OWN + "; the limits select entries at the traced point")
for _n in ("tvar", "tstd", "tsem"):
    case(f"scipy.stats.{_n}", lambda xp, n=_n: lambda x: getattr(_stats(xp), n)(x, (-3.0, 3.0)),
         lambda r: (r.uniform(-2.0, 2.0, size=8),), jax=False,
         note=_OWN + "; an entry outside the limits is refused by name (SciPy writes NaN there and masks it, "
                     "and the mask's 0 times the NaN slope is NaN)")
case("scipy.stats.boxcox_llf", lambda xp: lambda x: xp.stack([_stats(xp).boxcox_llf(lmb, x) for lmb in (0.0, 0.5)]),
     lambda r: (_pos(r, (6,)) + 0.3,), jax=False, note=_OWN + " (logsumexp with return_sign)")
case("scipy.stats.wasserstein_distance", lambda xp: lambda u, v: _stats(xp).wasserstein_distance(u, v),
     lambda r: (r.normal(size=5), r.normal(size=4) + 0.3), argnums=(0, 1), jax=False,
     note=_OWN + " (one sample constant too: SciPy's steps, np.searchsorted for its plain array's method); "
                 "the order of the values read at the traced point, and a value u and v share is a tie whose "
                 "Jacobian is off (no warning)")


def _mvn(name: str) -> Callable[[Callable], Callable]:
    """``multivariate_normal.logpdf``/``pdf`` of traced arguments through the Cholesky factor of
    ``cov``, as ``jax.scipy.stats`` computes it. SciPy's own goes through ``eigh``, whose
    eigenvector derivatives divide by differences of eigenvalues: a smooth kernel plus noise (a
    Gaussian process's likelihood, n = 20) has eigenvalues equal to rounding, and its gradient came
    out wrong by up to 14 (with a TieWarning), though the density does not depend on the
    eigenvectors. ``allow_singular=True`` and a ``scipy.stats.Covariance`` object (its own
    factorisation: a diagonal, a Cholesky factor) keep SciPy's code."""
    def make(original: Callable) -> Callable:
        def method(self, x, mean=None, cov=1, allow_singular=False):
            if allow_singular or _covariance_object(cov) or not (
                    _holds_tracer(x) or _holds_tracer(mean) or _holds_tracer(cov)):
                return original(self, x, mean, cov, allow_singular)
            if mean is not None:
                dim = int(np.size(mean))
            else:
                dim = int(np.shape(cov)[0]) if np.ndim(cov) else 1
            mean = np.zeros(dim) if mean is None else np.reshape(mean, (dim,))
            cov = cov * np.eye(dim) if np.ndim(cov) == 0 else np.diag(cov) if np.ndim(cov) == 1 else cov
            x = np.asarray(x, dtype=float) if not isinstance(x, Tracer) else x
            if np.ndim(x) == 0:  # (SciPy's _process_quantiles: points along the last axis)
                x = np.reshape(x, (1,))
            if np.ndim(x) == 1:
                x = np.reshape(x, (-1, 1) if dim == 1 else (1, dim))
            L = np.linalg.cholesky(cov)
            z = np.linalg.solve(L, np.reshape(x - mean, (-1, dim)).T)  # (dim, points)
            out = -0.5 * (dim * np.log(2 * np.pi) + 2 * np.sum(np.log(np.diagonal(L))) + np.sum(z * z, axis=0))
            out = np.reshape(out, np.shape(x)[:-1])
            if name == "pdf":
                out = np.exp(out)
            return np.squeeze(out) if np.ndim(np.squeeze(out)) else np.reshape(out, ())
        method.__name__ = name
        return method
    return make


def _covariance_object(cov: Any) -> bool:
    """Whether ``cov`` is a ``scipy.stats.Covariance`` (of SciPy's classes or a subclass)."""
    covariance = sys.modules.get("scipy.stats._covariance")
    return covariance is not None and isinstance(cov, covariance.Covariance)


for _name in ("logpdf", "pdf"):
    swap_method_during_traces("scipy.stats._multivariate:multivariate_normal_gen", _name, _mvn(_name))


# -- Wishart and inverse Wishart -----------------------------------------------------------------
# SciPy's methods (generic and frozen alike) call four private ones: the parameters and points
# reshaped, the Cholesky factor with its log-determinant, and the density's formula, which writes into
# np.empty arrays point by point. Each is replaced, where it meets a traced value, by NumPy code a
# trace records; SciPy's own checks run on placeholders of the same shapes, so its errors are its own.

_LOG_2 = float(np.log(2.0))


def _wishart_parameters(original: Callable) -> Callable:
    def method(self, df, scale):
        traced_df, traced_scale = _holds_tracer(df), _holds_tracer(scale)
        if not (traced_df or traced_scale):
            return original(self, df, scale)
        dim, kept_df, kept_scale = original(self, None if traced_df else df,
                                            np.zeros(np.shape(scale)) if traced_scale else scale)
        if traced_scale:
            kept_scale = (np.reshape(scale, (1, 1)) if np.ndim(scale) == 0 else
                          np.diag(scale) if np.ndim(scale) == 1 else scale)
        if traced_df:
            if np.ndim(df) != 0:
                raise ValueError("Degrees of freedom must be a scalar.")
            if _concrete(df, "the degrees of freedom") <= dim - 1:  # (read at the traced point, as SciPy)
                raise ValueError("Degrees of freedom must be greater than the dimension of scale matrix minus 1.")
            kept_df = df
        return dim, kept_df, kept_scale
    return method


def _wishart_quantiles(original: Callable) -> Callable:
    def method(self, x, dim):
        if not _holds_tracer(x):
            return original(self, x, dim)
        original(self, np.zeros(np.shape(x)), dim)  # (SciPy's errors for a wrong shape)
        if np.ndim(x) == 0:
            return x * np.eye(dim)[:, :, np.newaxis]
        if np.ndim(x) == 1:
            return np.reshape(x, (1, 1, -1)) if dim == 1 else np.diag(x)[:, :, np.newaxis]
        return x[:, :, np.newaxis] if np.ndim(x) == 2 else x
    return method


def _wishart_cholesky(original: Callable) -> Callable:
    def method(self, scale):
        if not _holds_tracer(scale):
            return original(self, scale)
        C = np.linalg.cholesky(scale)  # (the lower triangle, as scipy.linalg.cholesky(lower=True) reads)
        return C, 2 * np.sum(np.log(np.diagonal(C)))
    return method


def _wishart_density(inverse: bool) -> Callable[[Callable], Callable]:
    """The Wishart's log-density ``½(ν − p − 1)·log|X| − ½·tr(S⁻¹X) − ½νp·log 2 − ½ν·log|S| − log Γ_p(ν/2)``,
    or the inverse Wishart's ``½ν·log|S| − ½·tr(S X⁻¹) − ½νp·log 2 − ½(ν + p + 1)·log|X| − log Γ_p(ν/2)``,
    at each point along the last axis of ``x`` (``C``: the Cholesky factor of S)."""
    def make(original: Callable) -> Callable:
        def method(self, x, dim, df, *rest):
            log_det_scale, C = rest[-2:]  # (the Wishart's also passes the scale itself)
            if not any(map(_holds_tracer, (x, df, log_det_scale, C))):
                return original(self, x, dim, df, *rest)
            from scipy.special import multigammaln

            terms = []
            for i in range(np.shape(x)[-1]):
                xi = x[:, :, i]
                if inverse and dim == 1:
                    log_det_x, trace = np.log(xi[0, 0]), C[0, 0] ** 2 / xi[0, 0]
                else:
                    Cx, log_det_x = self._cholesky_logdet(xi)
                    if inverse:  # tr(S X⁻¹) = ‖Cx⁻¹ C‖²
                        A = np.linalg.solve(Cx, C)
                        trace = np.sum(A * A)
                    else:  # tr(S⁻¹ X) through S = C Cᵀ
                        trace = np.trace(np.linalg.solve(np.transpose(C), np.linalg.solve(C, xi)))
                terms.append((0.5 * df * log_det_scale - 0.5 * trace - 0.5 * (df + dim + 1) * log_det_x) if inverse
                             else (0.5 * (df - dim - 1) * log_det_x - 0.5 * trace))
            const = 0.5 * df * dim * _LOG_2 + multigammaln(0.5 * df, dim)
            return np.stack(terms) - (const if inverse else const + 0.5 * df * log_det_scale)
        return method
    return make


_MULTIVARIATE = "scipy.stats._multivariate:"
swap_method_during_traces(_MULTIVARIATE + "wishart_gen", "_process_parameters", _wishart_parameters)
swap_method_during_traces(_MULTIVARIATE + "wishart_gen", "_process_quantiles", _wishart_quantiles)
swap_method_during_traces(_MULTIVARIATE + "wishart_gen", "_cholesky_logdet", _wishart_cholesky)
swap_method_during_traces(_MULTIVARIATE + "wishart_gen", "_logpdf", _wishart_density(False))
swap_method_during_traces(_MULTIVARIATE + "invwishart_gen", "_logpdf", _wishart_density(True))


# -- gaussian_kde: its data, weights and points traced ----------------------------------------


def _kde_log_terms(kde, points) -> tuple:
    """log(wᵢ·K(xⱼ − dᵢ)) for each data point dᵢ (rows) and point xⱼ (columns) of a KDE, K the
    Gaussian of covariance LLᵀ (L its ``cho_cov``), both whitened by L as SciPy's kernel does; and
    the points as SciPy reads them (d × m, a row of d values read as one point)."""
    points = np.atleast_2d(np.asarray(points, dtype=float))
    d, m = np.shape(points)
    if d != kde.d:
        if d != 1 or m != kde.d:
            raise ValueError(f"points have dimension {d}, dataset has dimension {kde.d}")
        points = np.reshape(points, (kde.d, 1))
    import scipy.linalg  # (imported: this is SciPy's method)

    lower = kde.cho_cov
    z, c = (triangular_solve(lower, b, lower=True) if _holds_tracer([lower, b])
            else scipy.linalg.solve_triangular(lower, b, lower=True) for b in (points, kde.dataset))
    squares = np.sum((c[:, :, None] - z[:, None, :]) ** 2, axis=0)
    log_norm = -0.5 * kde.d * math.log(2 * math.pi) - np.sum(np.log(np.diagonal(lower)))
    return np.log(kde.weights)[:, None] - 0.5 * squares + log_norm, points


def _traced_kde(kde, *args) -> bool:
    """Whether ``kde`` holds traced values (its data, weights or bandwidth), or ``args`` do."""
    return _holds_tracer(list(args)) or any(isinstance(v, Tracer) for v in vars(kde).values())


def _plain_kde(kde):
    """A copy of ``kde`` holding the values of its traced attributes (for SciPy's own value)."""
    plain = object.__new__(type(kde))
    plain.__dict__.update({k: v.value if isinstance(v, Tracer) else v for k, v in vars(kde).items()})
    return plain


def _kde_method(log: bool) -> Callable[[Callable], Callable]:
    """``gaussian_kde.evaluate`` (``pdf``, calling it) or ``logpdf`` where the KDE's data or weights
    (so its bandwidth) or the points are traced: the sum of Gaussians, or its log-sum-exp, written
    as NumPy code, with SciPy's compiled kernel's value."""
    def make(original: Callable) -> Callable:
        def method(self, points):
            if not _traced_kde(self, points):
                return original(self, points)
            from scipy.special import logsumexp  # (imported: this is SciPy's method)

            terms, points = _kde_log_terms(self, points)
            traced = logsumexp(terms, axis=0) if log else np.sum(np.exp(terms), axis=0)
            value = original(_plain_kde(self), points.value if isinstance(points, Tracer) else points)
            return implicit.anchored(value, traced)
        method.__name__ = "logpdf" if log else "evaluate"
        return method
    return make


# -- distances between empirical distributions ------------------------------------------------


def _cdf_distance(original, p, u_values, v_values, u_weights=None, v_weights=None):
    """SciPy's ``_cdf_distance`` (wasserstein_distance, energy_distance) step by step, its
    ``sorted.searchsorted(values)`` written ``np.searchsorted``: a plain array's method converts the
    traced values it is given. The CDFs' steps are read at the traced point; the gaps between the
    sorted values carry the derivative."""
    validate = sys.modules["scipy.stats._stats_py"]._validate_distribution
    u_values, u_weights = validate(u_values, u_weights)
    v_values, v_weights = validate(v_values, v_weights)
    all_values = np.sort(np.concatenate((u_values, v_values)), kind="mergesort")
    deltas = np.diff(all_values)

    def cdf(values, weights):
        order = np.argsort(values)
        at = np.searchsorted(values[order], all_values[:-1], "right")
        if weights is None:
            return at / np.size(values)
        cumulative = np.concatenate(([0.0], np.cumsum(weights[order])))
        return cumulative[at] / cumulative[-1]

    gap = np.abs(cdf(u_values, u_weights) - cdf(v_values, v_weights))
    dot = sys.modules["scipy._lib._util"].np_vecdot  # (SciPy's choice of product, so its rounding)
    if p == 1:
        return dot(gap, deltas)
    if p == 2:
        return np.sqrt(dot(np.square(gap), deltas))
    return np.power(dot(np.power(gap, p), deltas), 1 / p)


swap_during_traces("scipy.stats._stats_py", {"_cdf_distance": routed(_cdf_distance)})


# -- binned statistics: SciPy's own code, served buffers (jacc.trace.SERVED_LIBRARIES) --------


def _binned_sample(original, sample, *args, **kwargs):
    """``binned_statistic_dd`` with traced sample coordinates given as a sequence of arrays (as
    ``binned_statistic`` passes ``[x]``): made the (D, N) array SciPy makes of it, before its
    ``np.isfinite(sample)`` converts the list. Its bins are read at the traced point; its edges (of
    ``range=None``) follow the traced extremes."""
    if isinstance(sample, (list, tuple)):
        sample = np.transpose(np.atleast_2d(np.asarray(sample)))
    return original(sample, *args, **kwargs)


swap_during_traces("scipy.stats._binned_statistic", {"binned_statistic_dd": routed(_binned_sample)})


_KDE = "scipy.stats._kde:gaussian_kde"
swap_during_traces("scipy.stats._kde", {"asarray": lambda _original: traced_constructor("asarray")})
for _name, _log in (("evaluate", False), ("__call__", False), ("logpdf", True)):
    swap_method_during_traces(_KDE, _name, _kde_method(_log))


def _kde_box(original: Callable) -> Callable:
    """``integrate_box`` of a KDE of traced data or bounds: SciPy's compiled multivariate normal
    CDF, refused by name (integrate_box_1d, integrate_gaussian and integrate_kde are NumPy code)."""
    def integrate_box(self, low_bounds, high_bounds, *args, **kwargs):
        if _traced_kde(self, low_bounds, high_bounds):
            raise UnsupportedOperationError(
                f"scipy.stats.gaussian_kde.integrate_box at {call_site()} with traced data or bounds: SciPy "
                "integrates each Gaussian by its compiled multivariate normal CDF, which a trace does not follow; "
                "integrate_box_1d (1-d data) and integrate_gaussian are traced")
        return original(self, low_bounds, high_bounds, *args, **kwargs)
    return integrate_box


swap_method_during_traces(_KDE, "integrate_box", _kde_box)


case("scipy.stats.pearsonr", lambda xp: lambda x, y: _stats(np).pearsonr(x, y).statistic,
     lambda r: (r.normal(size=8), r.normal(size=8)), argnums=(0, 1), jax=False,
     note="SciPy's own code (its array namespace's clip made NumPy's); statistic and pvalue")
case("scipy.stats.binned_statistic", lambda xp: lambda v: _stats(np).binned_statistic(
     np.array([0.1, 0.5, 0.2, 0.9, 0.7, 0.35, 0.6, 0.05]), v, "mean", bins=3).statistic,
     lambda r: (r.normal(size=8),), jax=False,
     note="SciPy's own code, which fills np.empty (served a buffer): every statistic, callables too; "
          "binned_statistic_2d and _dd alike; traced sample coordinates move only the edges")
case("scipy.stats.gaussian_kde", lambda xp: lambda d, p: _stats(xp).gaussian_kde(d)(p),
     lambda r: (r.normal(size=(2, 8)), r.normal(size=(2, 3))), argnums=(0, 1),
     note="evaluate, pdf and logpdf of traced data, weights or points: the sum of Gaussians as NumPy code "
          "(the bandwidth from the traced covariance), with SciPy's value")
case("scipy.stats.gaussian_kde", lambda xp: lambda d, w: _stats(xp).gaussian_kde(d, weights=w * w).logpdf(d[:3]),
     lambda r: (r.normal(size=(8,)), _pos(r, (8,)) + 0.5), argnums=(0, 1), variant="weights, logpdf")
_WISHART = "SciPy's methods with its checks, the formula as NumPy code (JAX has no Wishart)"
case("scipy.stats.wishart.logpdf", lambda xp: lambda X, S: _stats(xp).wishart.logpdf(X, df=5.0, scale=S),
     lambda r: (spd(r, 3), spd(r, 3)), argnums=(0, 1), jax=False, note=_WISHART)
case("scipy.stats.invwishart.logpdf", lambda xp: lambda X, S: _stats(xp).invwishart(df=6.0, scale=S).logpdf(X),
     lambda r: (np.stack([spd(r, 3), spd(r, 3)], axis=-1), spd(r, 3)), argnums=(0, 1), jax=False,
     note=_WISHART + "; frozen, two points along the last axis")
case("scipy.stats.gamma.mean", lambda xp: lambda a, s: _stats(xp).gamma(a, scale=s).mean()
     + _stats(xp).gamma.var(a, scale=s), lambda r: (_pos(r, (3,)) + 1.0, _pos(r, (3,))), argnums=(0, 1), jax=False,
     note="stats, mean, var, std and entropy, frozen or not: the distribution's _stats (or _munp) and _entropy "
     "formulas, scaled; NaN with a zero derivative where the parameters fail SciPy's check (JAX has none)")
case("scipy.stats.beta.entropy", lambda xp: lambda a: _stats(xp).beta(a, 2.0).entropy(),
     lambda r: (_pos(r, (3,)) + 0.5,), jax=False,
     note="the distribution's own entropy formula; one that integrates numerically is refused")
