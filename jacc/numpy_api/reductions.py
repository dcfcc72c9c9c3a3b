"""Reductions and scans: sums, means, extremes, moments, products, cumulative sums and products.

``cumsum`` and ``cumprod`` are primitives whose partial along the scanned axis is one n×n
triangle per position of the other axes, which stay ``I ⊗`` pairs (cumsum: the same constant
triangle of ones everywhere; cumprod: the exact products of the other entries, so zeros need no
division). A scan longer than ``DENSE_SCAN_MAX`` keeps NumPy's value but records its derivative
as a prefix network of selections and adds (cumsum: no multiplications) or multiplies (cumprod:
2n per level), O(n log n) in all, since its triangle would be n² values. The NaN-ignoring
reductions fix the NaN mask at each call's trace (a comparison, so the trace is value-dependent);
``average``, ``ptp`` and ``logsumexp`` are compositions.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import graph as G
from .. import lazy
from ..ops import Ctx, Op, ShapeError, register
from ..structure import Jac
from ..trace import (
    TraceError,
    Tracer,
    _axes_of,
    _call,
    _check_dtype,
    _int,
    _refuse,
    _scatter,
    _tape_of,
    _ufunc_name,
    _unsupported,
    call_site,
    implements,
    implements_ufunc_method,
    lone_axis,
)
from . import FREE, case

# -- cumsum / cumprod primitives --------------------------------------------------------------------


def _scan_axis(shapes, params) -> int:
    s = shapes[0]
    k = params["axis"]
    if not -len(s) <= k < len(s):
        raise ShapeError(f"axis {k} is out of range for an array with {len(s)} dimensions")
    return k % len(s)


def _scan_shape(shapes, params):
    _scan_axis(shapes, params)
    return tuple(shapes[0])


def _scan_jac(ctx: Ctx, batched: bool, values) -> Jac:
    """∂y/∂x of a scan along one axis k: the other axes paired (``I ⊗``); the values vary along
    (y_k, x_k), and along the other axes too when ``batched``."""
    s = ctx.shapes[0]
    k, m = _scan_axis(ctx.shapes, ctx.params), len(s)
    pair = [-1 if t == k else t for t in range(m)]
    vl = list(range(m)) + [m + k] if batched else [k, m + k]
    vshape = tuple(s) + (s[k],) if batched else (s[k], s[k])
    return Jac(s, s, pair, vl, ctx.val(values, vshape))


def _cumsum_partial(i: int, ctx: Ctx) -> Jac:
    n = ctx.shapes[0][_scan_axis(ctx.shapes, ctx.params)]
    return _scan_jac(ctx, False, lambda: np.tril(np.ones((n, n))))  # y_j = Σ_{i ≤ j} x_i


def _cumprod_values(x: np.ndarray, k: int) -> np.ndarray:
    """∂y_j/∂x_i = Π_{l ≤ j, l ≠ i} x_l for i ≤ j (else 0), as an array of shape x.shape + (n,):
    the cumulative product of x with x_i replaced by 1, so a zero entry needs no division."""
    x = np.moveaxis(x, k, -1)
    n = x.shape[-1]
    rows = np.where(np.eye(n, dtype=bool), 1.0, x[..., None, :])  # [..., i, l]: x_l, 1 where l = i
    d = np.where(np.tri(n, dtype=bool).T, np.cumprod(rows, axis=-1), 0.0)  # [..., i, j], j ≥ i
    return np.moveaxis(np.swapaxes(d, -1, -2), -2, k)  # y's axes, then i


def _cumprod_partial(i: int, ctx: Ctx) -> Jac:
    k = _scan_axis(ctx.shapes, ctx.params)
    return _scan_jac(ctx, True, lambda: _cumprod_values(lazy.asarray(ctx.args[0], float), k))


for _name, _fn, _partial in (("cumsum", np.cumsum, _cumsum_partial), ("cumprod", np.cumprod, _cumprod_partial)):
    register(Op(_name, lambda a, p, fn=_fn: fn(a[0], axis=p["axis"]), _scan_shape, _partial, 1,
                f"{_name} along one axis (other axes stay diagonal)", params=("axis",)))
    G.PARAMS[_name] = {"axis": (G.AXIS, True)}
    G.AXIS_PARAMS[_name] = ("axis", 0)


for _name, _fn in (("cumsum", np.cumsum), ("cumprod", np.cumprod)):
    register(Op(f"{_name}_value", lambda a, p, fn=_fn: fn(a[0], axis=p["axis"]), _scan_shape, lambda i, ctx: None, 1,
                f"{_name}'s value alone (no edge): the long-scan form pairs it with a prefix network",
                frozenset({0}), params=("axis",)))
    G.PARAMS[f"{_name}_value"] = {"axis": (G.AXIS, True)}
    G.AXIS_PARAMS[f"{_name}_value"] = ("axis", 0)

#: Scans longer than this record their derivative as a prefix network (see _long_scan). Up to it
#: the triangle (at most 65,536 values, 0.5 MB) costs less than planning the network does: over
#: 200 numbers, the first call of ``np.cumsum(np.exp(x))`` took 0.93 s with the network (its term
#: sums are slow to price) and takes 0.02 s with the triangle, later calls 34 µs either way.
DENSE_SCAN_MAX = 256


def _long_scan(a, k: int, op: str):
    """cumsum or cumprod along axis ``k`` of length n > DENSE_SCAN_MAX. Its partial would be a
    dense n×n triangle (n² values, n² multiplications per adjoint row), so the derivative is
    recorded as a Hillis–Steele prefix network instead: ⌈log₂ n⌉ levels s ← s ∘ (s shifted by
    2ʲ, padded with 0 or 1), each a selection, an embedding and an add (no multiplications) or a
    multiply (2n). The value stays NumPy's (``cumsum_value``/``cumprod_value``, rounding included);
    ``value_from`` joins the two."""
    tape = _tape_of(a)
    n, nd = a.shape[k], a.ndim
    value = tape.record(f"{op}_value", [a], {"axis": k})
    s, shift, fill = a, 1, 0.0 if op == "cumsum" else 1.0
    while shift < n:
        head = [slice(None)] * nd
        head[k] = slice(0, n - shift)
        moved = np.pad(s[tuple(head)], [(shift, 0) if t == k else (0, 0) for t in range(nd)], constant_values=fill)
        s = s + moved if op == "cumsum" else s * moved
        shift *= 2
    return tape.record("value_from", [value, s])


def _scan(op: str):
    what = f"numpy.{op}"

    def scan(a, axis=None, dtype=None, out=None):
        _refuse(what, out=out)
        _check_dtype(what, a, dtype)
        if axis is None or lone_axis(a, axis):  # NumPy scans the flattened array (a 0-d one as one element)
            a, axis = np.reshape(a, -1), 0
        [k] = _axes_of(_int(axis, "axis"), a.ndim, what)
        if a.shape[k] > DENSE_SCAN_MAX:
            return _long_scan(a, k, op)
        return _tape_of(a).record(op, [a], {"axis": k})
    scan.__name__ = op
    return scan


implements(np.cumsum, method="cumsum")(_scan("cumsum"))
implements(np.cumprod, method="cumprod")(_scan("cumprod"))


def _cumulative(op: str, start: float):
    """NumPy 2's cumulative_sum / cumulative_prod: ``axis`` needed beyond 1-D; ``include_initial``
    puts the identity element first (a constant joined by concatenate)."""
    what = f"numpy.cumulative_{op[3:]}"

    def scan(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        _refuse(what, out=out)
        if axis is None:
            if x.ndim != 1:
                raise TraceError(f"{what} at {call_site()}: axis= is needed for an array of {x.ndim} dimensions")
            axis = 0
        y = _scan(op)(x, axis=axis, dtype=dtype)
        if include_initial:
            [k] = _axes_of(_int(axis, "axis"), x.ndim, what)
            first = np.full(tuple(1 if t == k else n for t, n in enumerate(x.shape)), start)
            y = np.concatenate([first, y], axis=k)
        return y
    scan.__name__ = f"cumulative_{op[3:]}"
    return scan


if hasattr(np, "cumulative_sum"):
    implements(np.cumulative_sum)(_cumulative("cumsum", 0.0))
    implements(np.cumulative_prod)(_cumulative("cumprod", 1.0))


# -- compositions -----------------------------------------------------------------------------------


def _traced(x) -> bool:
    return isinstance(x, Tracer)


def _value(x) -> np.ndarray:
    return np.asarray(x.value if isinstance(x, Tracer) else x)


def _axis_tuple(axis, ndim: int, what: str) -> tuple[int, ...]:
    return tuple(_axes_of(axis, ndim, what))


@implements(np.average)
def _average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """Σ w·a / Σ w over ``axis`` (the plain mean without weights); weights may be traced."""
    if returned:
        raise _unsupported("numpy.average with returned=True (compute np.sum(weights) alongside)")
    if weights is None:
        return np.mean(a, axis=axis, keepdims=keepdims)
    shape = np.shape(a)
    axes = _axis_tuple(axis, len(shape), "numpy.average")
    w = weights
    if np.shape(w) != shape:  # NumPy: weights lie along the reduced axes
        if axis is None or np.shape(w) != tuple(shape[k] for k in axes):
            raise TraceError(f"numpy.average at {call_site()}: weights of shape {np.shape(w)} do not fit "
                               f"an array of shape {shape} reduced over axis={axis!r}")
        w = np.reshape(w, tuple(n if k in axes else 1 for k, n in enumerate(shape)))
    total = np.sum(np.broadcast_to(w, shape), axis=axes, keepdims=keepdims)
    if np.any(_value(total) == 0):
        raise ZeroDivisionError(f"numpy.average at {call_site()}: weights sum to zero, can't be normalized")
    if _traced(total):  # (a later call that skips f meets the zero as an inf block: f runs and raises)
        total.tape.note_domain("numpy.average's weights")
    return np.sum(np.multiply(a, w), axis=axes, keepdims=keepdims) / total


def _nan_mask(a) -> np.ndarray:
    """Where ``a`` is NaN at this trace, as a constant (the trace is marked value-dependent)."""
    mask = np.isnan(_value(a))
    if _traced(a):
        a.tape.note_value_dependence("isnan of the array a NaN-aware reduction reads")
    return mask


def _nan_filled(a, fill: float):
    """``a`` with ``fill`` where it is NaN, and that mask. The entries kept are written into an
    array of ``fill`` (a selection, so the NaN entries' partials are structurally 0): ``where``'s
    partial stores its 0 there, which times a NaN partial before it is NaN (``nanmean(D * b)``
    w.r.t. ``b`` with NaN in the data ``D``: hunt BE)."""
    mask = _nan_mask(a)
    if not mask.any():
        return a, mask
    if not _traced(a):
        return np.where(mask, fill, a), mask
    keep = ~mask
    filled = np.full_like(a, fill)
    filled[keep] = a[keep]
    a.tape.cut_nan = True  # (reverse mode scatters the selection's cotangent: a stored 0 meets the NaN)
    return filled, mask


def _nan_reduction(name: str, fill: float, reduce):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        _refuse(f"numpy.{name}", out=out)
        _check_dtype(f"numpy.{name}", a, dtype)
        filled, mask = _nan_filled(a, fill)
        return reduce(filled, mask, axis, keepdims, kw)
    handler.__name__ = name
    return handler


def _given(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if v is not _NOT_GIVEN}


_NOT_GIVEN = object()


def _nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NOT_GIVEN, where=_NOT_GIVEN):
    return _nan_reduction("nansum", 0.0, lambda x, m, ax, kd, kw: np.sum(x, axis=ax, keepdims=kd, **_given(kw)))(
        a, axis, dtype, out, keepdims, initial=initial, where=where)


def _nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NOT_GIVEN, where=_NOT_GIVEN):
    return _nan_reduction("nanprod", 1.0, lambda x, m, ax, kd, kw: np.prod(x, axis=ax, keepdims=kd, **_given(kw)))(
        a, axis, dtype, out, keepdims, initial=initial, where=where)


def _nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NOT_GIVEN):
    def mean(x, mask, ax, kd, kw):
        if kw["where"] is not _NOT_GIVEN:
            raise _unsupported("numpy.nanmean with where=")
        count = np.sum(~mask, axis=_tuple(ax), keepdims=kd)
        return np.sum(x, axis=ax, keepdims=kd) / np.asarray(count, float)  # all-NaN slices: NaN, as NumPy
    return _nan_reduction("nanmean", 0.0, mean)(a, axis, dtype, out, keepdims, where=where)


def _tuple(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _nan_extreme(name: str, fill: float, reduce):
    def handler(a, axis=None, out=None, keepdims=False, initial=_NOT_GIVEN, where=_NOT_GIVEN):
        _refuse(f"numpy.{name}", out=out)
        filled, mask = _nan_filled(a, fill)
        r = reduce(filled, axis=axis, keepdims=keepdims, **_given({"initial": initial, "where": where}))
        empty = np.all(mask, axis=_tuple(axis), keepdims=keepdims)  # all-NaN slices stay NaN, as NumPy
        return np.where(empty, np.nan, r) if np.any(empty) and initial is _NOT_GIVEN else r
    handler.__name__ = name
    return handler


def _nan_moment(name: str, root: bool):
    def handler(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NOT_GIVEN,
                mean=_NOT_GIVEN, correction=_NOT_GIVEN):
        """NumPy's nanvar/nanstd: the mean of the non-NaN entries, their squared deviations summed
        and divided by count − ddof (NaN where that is not positive, as NumPy)."""
        _refuse(f"numpy.{name}", out=out, **_given({"where": where, "mean": mean}))
        _check_dtype(f"numpy.{name}", a, dtype)
        if correction is not _NOT_GIVEN:
            ddof = correction
        filled, mask = _nan_filled(a, 0.0)
        ax = _tuple(axis)
        count = np.sum(~mask, axis=ax, keepdims=True).astype(float)
        dev = filled - np.sum(filled, axis=ax, keepdims=True) / count
        if mask.any():
            dev = np.where(mask, 0.0, dev)
        kept = np.sum(~mask, axis=ax, keepdims=keepdims)
        dof = kept - ddof
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.sum(dev * dev, axis=ax, keepdims=keepdims) / np.asarray(np.maximum(dof, 0), float)
        if np.any(dof <= 0):
            var = np.where(dof <= 0, np.nan, var)
        one = (kept == 1) & (ddof == 0)  # one value: 0 whatever it is, where √'s slope would be ∞·0 = NaN
        if not root:
            return var
        return np.where(one, var, np.sqrt(np.where(one, 1.0, var))) if np.any(one) else np.sqrt(var)
    handler.__name__ = name
    return handler


def _ufunc_reduce(name: str, reduction):
    def reduce(array, axis=0, dtype=None, out=None, keepdims=False, initial=_NOT_GIVEN, where=_NOT_GIVEN):
        """``numpy.<ufunc>.reduce``: the matching reduction (its default axis is 0, not None)."""
        _refuse(f"numpy.{name}.reduce", out=out)
        given = _given({"initial": initial, "where": where})
        if dtype is not None:  # (max and min take none)
            given["dtype"] = dtype
        return reduction(array, axis=axis, keepdims=keepdims, **given)
    reduce.__name__ = f"{name}.reduce"
    return reduce


def _ufunc_accumulate(name: str, scan):
    def accumulate(array, axis=0, dtype=None, out=None):
        """``numpy.<ufunc>.accumulate``: the matching scan."""
        _refuse(f"numpy.{name}.accumulate", out=out)
        return scan(array, axis=axis, dtype=dtype)
    accumulate.__name__ = f"{name}.accumulate"
    return accumulate


def _segment_sums(array, idx: np.ndarray, ax: int, n: int):
    """``np.add.reduceat`` at increasing ``idx`` (no empty slice) as one scatter-add, NumPy's
    bincount with weights: each slice summed in order, as reduceat sums it, and a partial that is a
    free embedding, where a selection and a sum per slice made a graph the size of ``idx``."""
    a = np.moveaxis(array, ax, -1)[..., int(idx[0]):]
    lead, m = np.shape(a)[:-1], idx.size
    segment = np.searchsorted(idx, np.arange(int(idx[0]), n), side="right") - 1  # per position: its slice
    at = np.arange(math.prod(lead))[:, None] * m + segment
    sums = _scatter(np.reshape(a, -1), at.reshape(-1), at.shape[0] * m)
    return np.moveaxis(np.reshape(sums, lead + (m,)), -1, ax)


def _ufunc_reduceat(name: str, reduction):
    def reduceat(array, indices, axis=0, dtype=None, out=None):
        """``numpy.<ufunc>.reduceat``: the reduction of each slice ``indices[i]:indices[i + 1]``
        (just ``array[indices[i]]`` where that slice is empty), joined along ``axis``; slices of one
        length k that cover the axis (``indices = range(0, n, k)``) as one reduction of the axis
        reshaped to (n / k, k), and sums over increasing indices as one scatter-add
        (:func:`_segment_sums`). (A graph of a selection and a sum per slice, 100 of them for block
        sums over 1,000 numbers, planned for 0.8 s and its plan ran 58× slower than reverse mode.)"""
        _refuse(f"numpy.{name}.reduceat", out=out)
        _check_dtype(f"numpy.{name}.reduceat", array, dtype)
        ax = _int(axis, "axis")
        n = np.shape(array)[ax]
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or np.any((idx < 0) | (idx >= n)):
            raise IndexError(f"numpy.{name}.reduceat at {call_site()}: indices must be constant integers in "
                             f"[0, {n}), got {indices!r}")
        k = int(idx[1] - idx[0]) if idx.size > 1 else n
        if k > 0 and n % k == 0 and np.array_equal(idx, np.arange(0, n, k)):
            a = np.moveaxis(array, ax, -1)
            blocks = np.reshape(a, np.shape(a)[:-1] + (n // k, k))
            return np.moveaxis(reduction(blocks, axis=-1), -1, ax)
        if name == "add" and isinstance(array, Tracer) and np.all(np.diff(idx) > 0):
            return _segment_sums(array, idx, ax, n)
        ends = list(idx[1:]) + [n]
        parts = []
        for i, j in zip(idx.tolist(), ends):
            j = int(j)
            sl = (slice(None),) * (ax % np.ndim(array)) + (slice(i, j if j > i else i + 1),)
            parts.append(reduction(array[sl], axis=ax, keepdims=True))
        return np.concatenate(parts, axis=ax)
    reduceat.__name__ = f"{name}.reduceat"
    return reduceat


for _u, _r in (("add", np.sum), ("multiply", np.prod), ("maximum", np.max), ("minimum", np.min)):
    implements_ufunc_method(_u, "reduce")(_ufunc_reduce(_u, _r))
    implements_ufunc_method(_u, "reduceat")(_ufunc_reduceat(_u, _r))
for _u, _r in (("add", np.cumsum), ("multiply", np.cumprod)):
    implements_ufunc_method(_u, "accumulate")(_ufunc_accumulate(_u, _r))


@implements_ufunc_method("logaddexp", "reduce")
def _logaddexp_reduce(array, axis=0, dtype=None, out=None, keepdims=False):
    """``numpy.logaddexp.reduce``: log Σ exp, as :func:`_logsumexp` computes it (no dtype but the trace's)."""
    _refuse("numpy.logaddexp.reduce", out=out)
    _check_dtype("numpy.logaddexp.reduce", array, dtype)
    return _logsumexp(array, axis=axis, keepdims=keepdims)


#: the most steps :func:`_fold_reduce` and :func:`_fold_accumulate` record one by one (a longer
#: axis: a refusal naming it)
FOLD_MAX = 512
_NO_INITIAL = np._NoValue


def _folded(ufunc: np.ufunc, method: str, array, axis, dtype, out, keepdims, initial, where) -> tuple:
    """The checks the folds share: ``array`` traced as floats, NumPy's own errors and result (on the
    values) for these arguments, and the refusals of what a fold does not record."""
    what = f"{_ufunc_name(ufunc)}.{method}"
    _refuse(what, out=out)
    if where is not True:
        raise _unsupported(f"{what} with where=")
    _check_dtype(what, array, dtype)
    if isinstance(initial, Tracer):
        raise _unsupported(f"{what} with a traced initial=")
    kw = {"axis": axis} if method == "accumulate" else {"axis": axis, "keepdims": keepdims, "initial": initial}
    plain = getattr(ufunc, method)(np.asarray(array.value if isinstance(array, Tracer) else array), **kw)
    return what, plain


@implements_ufunc_method("*", "reduce")
def _fold_reduce(ufunc, array, axis=0, dtype=None, out=None, keepdims=False, initial=_NO_INITIAL, where=True):
    """``ufunc.reduce`` of a binary ufunc with no rule of its own (fmax, fmin, hypot, subtract,
    divide, …): NumPy's left fold, one recorded ufunc call per step (several axes: taken in C order,
    which NumPy allows for reorderable ufuncs only, and raises for the others as here)."""
    what, plain = _folded(ufunc, "reduce", array, axis, dtype, out, keepdims, initial, where)
    shape = np.shape(array)
    axes = _axes_of(axis, len(shape), what) if shape else []  # (a 0-d array: its one entry, for any axis NumPy takes)
    rest = [k for k in range(len(shape)) if k not in axes]
    flat = np.reshape(np.transpose(array, axes + rest), (-1,) + tuple(shape[k] for k in rest))
    n = np.shape(flat)[0]
    if n > FOLD_MAX:
        raise _unsupported(f"{what} of {n:,} entries along its axes (jacc records a fold of at most "
                           f"jacc.numpy_api.reductions.FOLD_MAX = {FOLD_MAX} steps)")
    if n == 0:
        return plain  # (the identity or initial: a constant)
    r = flat[0] if initial is _NO_INITIAL else ufunc(initial, flat[0])
    for i in range(1, n):
        r = ufunc(r, flat[i])
    return np.reshape(r, np.shape(plain))


@implements_ufunc_method("*", "accumulate")
def _fold_accumulate(ufunc, array, axis=0, dtype=None, out=None):
    """``ufunc.accumulate`` of a binary ufunc with no rule of its own: the left fold's running
    results along ``axis``, stacked."""
    what, plain = _folded(ufunc, "accumulate", array, axis, dtype, out, False, _NO_INITIAL, True)
    k = 0 if axis is None else _int(axis, "axis") % max(np.ndim(array), 1)  # (None: a 1-d array's, as NumPy's)
    n = np.shape(array)[k]
    if n == 0:
        return plain  # (empty, as NumPy's)
    if n > FOLD_MAX:
        raise _unsupported(f"{what} of {n:,} entries along axis {k} (jacc records a fold of at most "
                           f"jacc.numpy_api.reductions.FOLD_MAX = {FOLD_MAX} steps)")
    steps = [np.take(array, 0, axis=k)]
    for i in range(1, n):
        steps.append(ufunc(steps[-1], np.take(array, i, axis=k)))
    return np.stack(steps, axis=k)


@implements(np.apply_over_axes)
def _apply_over_axes(func, a, axes):
    """``func(a, axis)`` for each axis in turn, a dropped axis put back, as NumPy applies it."""
    val, n = a, np.ndim(a)
    for axis in np.atleast_1d(np.asarray(axes)).tolist():
        axis = _int(axis, "axes")
        axis = axis + n if axis < 0 else axis
        res = func(val, axis)
        if np.ndim(res) != np.ndim(val):
            res = np.expand_dims(res, axis)
            if np.ndim(res) != np.ndim(val):
                raise ValueError("function is not returning an array of the correct shape")
        val = res
    return val


implements(np.nanvar)(_nan_moment("nanvar", False))
implements(np.nanstd)(_nan_moment("nanstd", True))
implements(np.nansum)(_nansum)
implements(np.nanprod)(_nanprod)
implements(np.nanmean)(_nanmean)
implements(np.nanmax)(_nan_extreme("nanmax", -np.inf, np.max))
implements(np.nanmin)(_nan_extreme("nanmin", np.inf, np.min))


def _nan_scan(name: str, fill: float, scan):
    def handler(a, axis=None, dtype=None, out=None):
        _refuse(f"numpy.{name}", out=out)
        return scan(_nan_filled(a, fill)[0], axis=axis, dtype=dtype)
    handler.__name__ = name
    return handler


implements(np.nancumsum)(_nan_scan("nancumsum", 0.0, np.cumsum))
implements(np.nancumprod)(_nan_scan("nancumprod", 1.0, np.cumprod))


@implements(np.ptp)
def _ptp(a, axis=None, out=None, keepdims=False):
    _refuse("numpy.ptp", out=out)
    return np.max(a, axis=axis, keepdims=keepdims) - np.min(a, axis=axis, keepdims=keepdims)


def _logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log Σ b·exp(a) = m + log Σ b·exp(a − m), with the shift m = max(a) taken as a constant
    (any constant gives the same function; this one avoids overflow), as JAX does. The shift is
    recorded as a held value, so a compiled plan shifts by the max of each call's ``a``. With
    ``return_sign``: log |Σ b·exp(a)| and the sum's sign (piecewise constant: no derivative)."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(b)) if b is not None else np.shape(a)
    if np.shape(a) != shape:
        a = np.broadcast_to(a, shape)
    axes = _axis_tuple(axis, len(shape), "scipy.special.logsumexp")
    if _traced(a) and a.size:  # the shift recorded (held: no derivative), so it is a's at every call
        top = a.tape.record("hold", [np.max(a, axis=axes, keepdims=True)])
        m = np.where(np.abs(top) < np.inf, top, 0.0)  # (a recorded mask: 0 where the max is not finite)
    else:
        m = np.max(_value(a), axis=axes, keepdims=True) if _value(a).size else np.zeros([1] * len(shape))
        m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(a - m)
    s = np.sum(e if b is None else np.multiply(b, e), axis=axes, keepdims=True)
    r = np.log(np.abs(s) if return_sign else s) + m

    def kept(v):
        return v if keepdims else np.reshape(v, tuple(n for k, n in enumerate(np.shape(v)) if k not in axes))
    return (kept(r), kept(np.sign(s))) if return_sign else kept(r)


def _install_scipy() -> None:
    """Route scipy.special.logsumexp to :func:`_logsumexp` for traced arguments. SciPy's own
    function is plain Python (no NumPy dispatch protocol reaches it), so the module attribute
    becomes a thin wrapper that calls the original for everything else; code that bound the
    name before jacc was imported keeps the original."""
    try:
        import scipy.special as special
    except ImportError:
        return
    original = getattr(special.logsumexp, "__wrapped__", special.logsumexp)
    implements(original)(_logsumexp)

    @functools.wraps(original)
    def logsumexp(*args, **kwargs):
        if any(_traced(x) for x in (*args, *kwargs.values())):
            return _call(_logsumexp, "scipy.special.logsumexp", args, kwargs)
        return original(*args, **kwargs)

    special.logsumexp = logsumexp


_install_scipy()


# -- examples ---------------------------------------------------------------------------------------


def _x(r, shape=(3, 4)):
    return r.uniform(0.5, 1.5, size=shape)


def _distinct(r, shape=(3, 4)):
    """Entries at least 0.1 apart (max/min without ties, so finite differences are valid)."""
    n = int(np.prod(shape))
    return (r.permutation(n) * 0.1 + 0.5).reshape(shape)


def _with_zeros(r, shape=(3, 4)):
    x = _x(r, shape)
    x[0, 1] = 0.0  # a single zero in row 0
    x[1, 0] = x[1, 2] = 0.0  # two zeros in row 1
    return x


for _n in ["sum", "mean", "var", "std", "prod", "cumsum", "cumprod"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_x(r),))
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x), lambda r: (_x(r),), variant="all axes")
for _n in ["max", "min", "amax", "amin"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_distinct(r),))
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x), lambda r: (_distinct(r),), variant="all axes")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=(0, 2), keepdims=True),
         lambda r: (_distinct(r, (2, 3, 4)),), variant="axis tuple, keepdims")

_X3 = (2, 3, 4)
for _n in ["sum", "mean"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=(0, -1), keepdims=True),
         lambda r: (_x(r, _X3),), variant="axis tuple, keepdims")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=1, where=np.array([[True], [False], [True]])),
         lambda r: (_x(r, _X3),), variant="where=")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-2, keepdims=True,
                                                                   where=np.arange(12).reshape(3, 4) % 5 != 0),
         lambda r: (_x(r, _X3),), variant="where=, keepdims")
for _n in ["max", "min"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=1, where=np.array([[True], [False], [True]]),
                                                                   initial=0.5),
         lambda r: (_distinct(r, _X3),), variant="where=, initial")
for _n in ["var", "std"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1, ddof=1,
                                                                   where=np.arange(12).reshape(3, 4) % 5 != 0),
         lambda r: (_x(r, _X3),), variant="where=, ddof")
case("numpy.add.reduce", lambda xp: lambda x: xp.add.reduce(x), lambda r: (_x(r),), note="axis 0 by default, as NumPy")
case("numpy.add.reduce", lambda xp: lambda x: xp.add.reduce(x, axis=(0, 1), keepdims=True), lambda r: (_x(r),),
     variant="axis tuple, keepdims")
case("numpy.logaddexp.reduce", lambda xp: lambda x: xp.logaddexp.reduce(x, axis=1) if xp is np else
     __import__("jax").scipy.special.logsumexp(x, axis=1), lambda r: (_x(r),))
case("numpy.multiply.reduce", lambda xp: lambda x: xp.multiply.reduce(x, axis=-1), lambda r: (_x(r),))
_FOLD_NOTE = "a binary ufunc's reduce or accumulate with no rule of its own: NumPy's left fold, one step at a time"
case("numpy.ufunc.reduce", lambda xp: lambda x: np.hypot.reduce(x, axis=1) if xp is np else
     xp.sqrt(xp.sum(x ** 2, axis=1)), lambda r: (_x(r),), variant="hypot", note=_FOLD_NOTE)
case("numpy.ufunc.reduce", lambda xp: lambda x: np.fmax.reduce(x, axis=(0, 1), initial=-0.5) if xp is np else
     xp.maximum(xp.max(x, axis=(0, 1)), -0.5), lambda r: (_x(r, (3, 4, 2)),), variant="fmax, two axes, initial")
case("numpy.ufunc.accumulate", lambda xp: lambda x: np.subtract.accumulate(x, axis=0) if xp is np else
     2 * x[0] - xp.cumsum(x, axis=0), lambda r: (_x(r),), variant="subtract", note=_FOLD_NOTE)
for _u in ("add", "maximum"):
    case(f"numpy.{_u}.reduceat", lambda xp, u=_u: lambda x: getattr(xp, u).reduceat(x, np.array([0, 2, 1, 3]), axis=1),
         lambda r: (_x(r),), note="each slice's reduction; an empty slice is its first index's entry")
    case(f"numpy.{_u}.reduceat", lambda xp, u=_u: lambda x: getattr(xp, u).reduceat(x, np.arange(0, 6, 2), axis=1),
         lambda r: (_x(r, (3, 6)),), variant="equal slices", note="slices of one length covering the axis: "
         "one reduction of the axis reshaped")
case("numpy.add.reduceat", lambda xp: lambda x: xp.add.reduceat(x, np.array([1, 2, 5]), axis=0),
     lambda r: (_x(r, (7, 2)),), variant="increasing indices", note="increasing indices: one scatter-add "
     "(bincount with weights)")
case("numpy.maximum.reduce", lambda xp: lambda x: xp.maximum.reduce(x, axis=None), lambda r: (_distinct(r),))
case("numpy.minimum.reduce", lambda xp: lambda x: xp.minimum.reduce(x), lambda r: (_distinct(r),))
case("numpy.apply_over_axes", lambda xp: lambda x: xp.apply_over_axes(xp.sum, xp.sin(x), [0, -1]),
     lambda r: (_x(r, (2, 3, 4)),))
case("numpy.add.accumulate", lambda xp: lambda x: xp.add.accumulate(x, axis=1), lambda r: (_x(r),))
case("numpy.multiply.accumulate", lambda xp: lambda x: xp.multiply.accumulate(x), lambda r: (_x(r),))
for _n in ["nanvar", "nanstd"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x + np.array([0.0, np.nan, 0.0, 0.0]), axis=-1),
         lambda r: (_x(r),))
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x + np.array([[0.0], [np.nan], [0.0]]), ddof=1),
         lambda r: (_x(r),), variant="all axes, ddof=1")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=0, keepdims=True), lambda r: (_x(r),),
         variant="no NaN, keepdims")
for _n in ["var", "std"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=0, ddof=1), lambda r: (_x(r),),
         variant="ddof=1")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=(0, 2), keepdims=True),
         lambda r: (_x(r, _X3),), variant="axis tuple, keepdims")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1, ddof=2, keepdims=True),
         lambda r: (_x(r, _X3),), variant="ddof=2, keepdims")
case("numpy.prod", lambda xp: lambda x: xp.prod(x, axis=-1), lambda r: (_with_zeros(r),), variant="zeros")
case("numpy.prod", lambda xp: lambda x: xp.prod(x, axis=(0, 2), keepdims=True), lambda r: (_x(r, _X3),),
     variant="axis tuple, keepdims")
for _n in ["cumsum", "cumprod"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=0), lambda r: (_x(r, _X3),),
         variant="3-D, axis 0")
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(x, n)(axis=1), lambda r: (_x(r, _X3),),
         variant="method, middle axis")
case("numpy.cumsum", lambda xp: lambda x: xp.cumsum(x, axis=-1), lambda r: (_x(r, (5, 6)),),
     structures={"I ⊗ dense"}, variant="batched triangle")
case("numpy.cumsum", lambda xp: lambda x: xp.cumsum(x, axis=-1), lambda r: (_x(r, (2, DENSE_SCAN_MAX + 6)),),
     structures=FREE, variant="long scan: prefix network")
case("numpy.cumprod", lambda xp: lambda x: xp.cumprod(x, axis=0), lambda r: (1 + _x(r, (DENSE_SCAN_MAX + 6, 2)) / 10,),
     variant="long scan: prefix network")
case("numpy.cumprod", lambda xp: lambda x: xp.cumprod(x, axis=-1), lambda r: (_with_zeros(r),), variant="zeros")
if hasattr(np, "cumulative_sum"):
    for _n in ["cumulative_sum", "cumulative_prod"]:
        case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_x(r),))
        case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=0, include_initial=True),
             lambda r: (_x(r),), variant="include_initial")

case("numpy.average", lambda xp: lambda x: xp.average(x, axis=1), lambda r: (_x(r, _X3),))
case("numpy.average", lambda xp: lambda x: xp.average(x, axis=-1, weights=np.array([1.0, 2.0, 0.5, 3.0])),
     lambda r: (_x(r, _X3),), variant="1-D weights")
case("numpy.average", lambda xp: lambda x, w: xp.average(x, weights=w), lambda r: (_x(r), _x(r)), argnums=(0, 1),
     variant="traced weights, all axes")
case("numpy.average", lambda xp: lambda x, w: xp.average(x, axis=(0, 2), weights=w, keepdims=True),
     lambda r: (_x(r, _X3), _x(r, (2, 4))), argnums=(0, 1), variant="axis tuple, keepdims")
case("numpy.ptp", lambda xp: lambda x: xp.ptp(x, axis=-1), lambda r: (_distinct(r),))
case("numpy.ptp", lambda xp: xp.ptp, lambda r: (_distinct(r),), variant="all axes")
case("numpy.ptp", lambda xp: lambda x: xp.ptp(x, axis=0, keepdims=True), lambda r: (_distinct(r, _X3),),
     variant="keepdims")

_NAN_NOTE = ("the NaN mask is fixed at each call's trace (value-dependent); NaN entries are cut off (a selection): "
             "derivative 0, also where a partial before them is NaN (NaN data in nanmean(D * b))")
for _n in ["nansum", "nanmean", "nanprod"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_x(r),), note=_NAN_NOTE)
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=(0, 1), keepdims=True),
         lambda r: (_x(r, _X3),), variant="axis tuple, keepdims")
for _n in ["nanmax", "nanmin"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_distinct(r),),
         note=_NAN_NOTE)
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x), lambda r: (_distinct(r),), variant="all axes")
for _n in ["nancumsum", "nancumprod"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=1), lambda r: (_x(r),), note=_NAN_NOTE)


def _lse(xp):
    if xp is np:
        import scipy.special
        return scipy.special.logsumexp
    import jax.scipy.special
    return jax.scipy.special.logsumexp


try:
    import scipy.special  # noqa: F401
except ImportError:  # the cases need SciPy; the handler is installed only with it
    pass
else:
    case("scipy.special.logsumexp", lambda xp: _lse(xp), lambda r: (_x(r),))
    case("scipy.special.logsumexp", lambda xp: lambda x: _lse(xp)(x, axis=-1), lambda r: (_x(r, _X3) * 40,),
         variant="axis, large values")
    case("scipy.special.logsumexp", lambda xp: lambda x: _lse(xp)(x, axis=(0, 2), keepdims=True),
         lambda r: (_x(r, _X3),), variant="axis tuple, keepdims")
    case("scipy.special.logsumexp", lambda xp: lambda x, b: _lse(xp)(x, axis=0, b=b), lambda r: (_x(r), _x(r)),
         argnums=(0, 1), variant="traced b")
    case("scipy.special.logsumexp", lambda xp: lambda x: _lse(xp)(x, axis=1, b=np.array([1.0, 0.5, 2.0, 0.0])),
         lambda r: (_x(r),), variant="constant b with a zero")
    case("scipy.special.logsumexp",
         lambda xp: lambda x: xp.stack(_lse(xp)(x, axis=1, b=np.array([1.0, -2.5, 2.0, 0.5]), return_sign=True)),
         lambda r: (_x(r),), variant="return_sign, b of both signs",
         note="log |Σ b·exp(a)| and the sum's sign (no derivative)")
