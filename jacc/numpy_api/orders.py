"""Sorting and order statistics as recorded ops: ``np.sort``, ``np.median``, ``np.percentile``,
``np.quantile`` and their ``nan*`` forms, running extremes (``np.maximum.accumulate``), and indexing
by ``np.argsort``, ``np.argmax``, ``np.argmin``.

Which element lands where depends on the values, so these used to read the traced point: the
permutation became a constant of a free gather and the trace was marked value-dependent, so every
call ran ``f`` again. Here they are ops whose partials the plan's program computes at each call
from an argsort, like a mask's (:mod:`jacc.masks`): the trace holds at every point and calls skip
``f``. The partial is a dense block along the sorted axis (the other axes stay diagonal):

* ``sort`` along an axis of n elements: n × n per row, a one-hot row per output (which input it
  reads). Up to :data:`BLOCK_MAX` entries in all; a longer sort is read at the traced point as
  before, where its free gather costs less than products with such a block.
* ``quantile`` (any of NumPy's ``method=``): m × n per row for m quantiles, at most two non-zero
  weights in each row (the order statistic a method picks, or 1 − t and t at the two it
  interpolates), so a median costs what a max does.
* ``running_extreme`` (``np.maximum.accumulate``, ``np.minimum.accumulate``): n × n per row, a
  one-hot row per output (the element that set its record); past :data:`BLOCK_MAX` a free gather
  read at the traced point.

``np.argsort`` gives an :class:`Order` (so do ``np.argmax``/``np.argmin`` of a 1-d array);
indexing an array with it records ``take_order``, the same one-hot block found from the keys'
order (``y[np.argsort(x)]``, a top-k after ``[::-1][:k]``), or ``take_extreme`` (``y[np.argmax(x)]``:
one one-hot row).

Ties: ``np.argsort`` of keys that tie at the traced point, unless asked to be stable, reads
NumPy's own integers there (its default sort need not be stable); elsewhere, and in ``np.sort``,
``np.argmax`` and the quantiles, the element a stable sort puts first takes the derivative.

>>> import numpy as np, jacc
>>> x = np.array([3.0, 1.0, 2.0, 5.0])
>>> g = jacc.trace(np.median, x)
>>> g.meta.get("value_dependent") is None
True
>>> jacc.jacobian(np.median)(np.array([0.0, 4.0, 1.0, 9.0]))  # (1 + 4) / 2: half to each
array([0. , 0.5, 0.5, 0. ])
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import graph as G
from .. import lazy
from ..ops import Op, ShapeError, register
from ..structure import Jac
from ..trace import (
    _NOT,
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _axes_of,
    _ReadOnUse,
    _refuse,
    _tape_of,
    call_site,
    implements,
    implements_ufunc_method,
)
from . import FREE, case
from .gathers import _flat_along, _gather, _one_axis, _order, _sorted_here, _traced, _value, _x

#: The most entries a dense partial found at each call may hold (a sort's rows × n × n; interp's
#: points × knots w.r.t. traced values, :mod:`jacc.numpy_api.numerics`); past it the op is read
#: at the traced point (the trace is then value-dependent) as a free gather. A product with the
#: block costs n per entry, the gather nothing: past this size tracing ``f`` again costs less.
BLOCK_MAX = 65_536


# -- the ranks, on any array namespace (NumPy, jax.numpy, torch) ---------------------------------


def _argsort(x, axis: int, xp):
    """A stable argsort (NaNs last) in ``xp``'s spelling."""
    if xp is np:
        return _order(x, axis)
    if getattr(xp, "__name__", "") == "torch":
        return xp.argsort(x, dim=axis, stable=True)
    return xp.argsort(x, axis=axis, stable=True)


def _one_hot(positions, n: int, xp):
    """positions.shape + (n,): 1 at each position, 0 elsewhere (a one-hot row per entry)."""
    return xp.where(positions[..., None] == xp.arange(n), 1.0, 0.0)


def _sort_block(x, axis: int, xp=np):
    """∂sort(x)/∂x as x.shape + (n,): entry [..., i (on axis), ..., j] is 1 where the i-th sorted
    element is x's j-th along ``axis``."""
    return _one_hot(_argsort(x, axis, xp), x.shape[axis], xp)


#: NumPy's quantile methods as Hyndman and Fan's (α, β): the continuous ones interpolate at
#: the virtual index n·q + α + q·(1 − α − β) − 1 (NumPy's ``_compute_virtual_index``); "linear"
#: is (1, 1), written (n − 1)·q as NumPy writes it.
_CONTINUOUS = {"linear": (1.0, 1.0), "interpolated_inverted_cdf": (0.0, 1.0), "hazen": (0.5, 0.5),
               "weibull": (0.0, 0.0), "median_unbiased": (1 / 3.0, 1 / 3.0), "normal_unbiased": (3 / 8.0, 3 / 8.0)}
METHODS = tuple(_CONTINUOUS) + ("lower", "higher", "nearest", "midpoint", "inverted_cdf", "averaged_inverted_cdf",
                                "closest_observation")


def _position(n, q, method: str, xp=np):
    """Where ``method`` reads the q-quantile of n sorted values, in ranks: an integer picks one
    order statistic, a fraction interpolates the two around it (weights 1 − t and t), clipped to
    the first and last as NumPy clips. ``n`` may be an array (NaN-skipping counts per row)."""
    fl, ce = xp.floor, xp.ceil
    if method == "linear":
        v = (n - 1.0) * q
    elif method in _CONTINUOUS:
        a, b = _CONTINUOUS[method]
        v = n * q + (a + q * (1.0 - a - b)) - 1.0
    elif method in ("lower", "higher", "nearest", "midpoint"):
        u = (n - 1.0) * q
        v = {"lower": fl, "higher": ce, "nearest": xp.round}[method](u) if method != "midpoint" else \
            0.5 * (fl(u) + ce(u))
    elif method == "averaged_inverted_cdf":  # an integer index averages it with the next, else the next
        u = n * q - 1.0
        v = xp.where(u == fl(u), u + 0.5, fl(u) + 1.0)
    else:  # inverted_cdf, closest_observation: one order statistic
        u = n * q - (1.0 if method == "inverted_cdf" else 1.5)
        stay = (u == fl(u)) & ((fl(u) % 2 == 1) if method == "closest_observation" else True)
        v = xp.where(stay, fl(u), fl(u) + 1.0)
    top = n - 1.0
    return xp.where(v < 0.0, 0.0, xp.where(v > top, top, v))


def _quantile_block(x, q, skip_nan: bool, method: str = "linear", xp=np):
    """∂quantile(x, q)/∂x along x's last axis as x.shape[:-1] + (m, n): the method's weights on
    the order statistics around its position (:func:`_position`), as the hat function
    max(0, 1 − |rank − position|) of each element's rank."""
    ranks = _argsort(_argsort(x, -1, xp), -1, xp)
    if skip_nan:
        count = xp.sum(xp.where(xp.isnan(x), 0.0, 1.0), -1)[..., None]
        pos = _position(xp.where(count > 1.0, count, 1.0), xp.asarray(q), method, xp)
    else:
        pos = xp.asarray(_position(float(x.shape[-1]), np.asarray(q, dtype=float), method))
    hat = 1.0 - xp.abs(ranks[..., None, :] - pos[..., None])
    return xp.where(hat > 0.0, hat, 0.0)


sort_block = lazy.portable(_sort_block)
quantile_block = lazy.portable(_quantile_block)


# -- the ops -------------------------------------------------------------------------------------


def _sort_shape(shapes, params):
    s = tuple(shapes[0])
    if not s:
        raise ShapeError("sort needs an array of at least one dimension")
    if not -len(s) <= params["axis"] < len(s):
        raise ShapeError(f"sort's axis {params['axis']} is out of range for shape {s}")
    return s


def _along_axis(ctx, block) -> Jac:
    """∂y/∂x of an op that picks, for every y along its axis, one x along the same axis (the
    other axes paired): ``block(x, k)`` is the one-hot block of shape x.shape + (n,)."""
    s = ctx.shapes[0]
    k, m = ctx.params["axis"] % len(s), len(s)
    pair = [-1 if t == k else t for t in range(m)]
    return Jac(s, s, pair, list(range(m)) + [m + k],
               ctx.val(lambda: block(lazy.asarray(ctx.args[0], float), k), tuple(s) + (s[k],)))


def _sort_partial(i: int, ctx) -> Jac:
    return _along_axis(ctx, sort_block)


register(Op("sort", lambda a, p: np.sort(a[0], axis=p["axis"]), _sort_shape, _sort_partial, 1,
            "x sorted along one axis (NaNs last); its partial is the permutation, found at each call",
            params=("axis",)))
G.PARAMS["sort"] = {"axis": (G.AXIS, True)}


def _cummax(s, xp):
    """The running maximum along the last axis (NaN propagates), in ``xp``'s spelling."""
    if xp is np:
        return np.maximum.accumulate(s, axis=-1)
    if getattr(xp, "__name__", "") == "torch":
        return xp.cummax(s, dim=-1).values
    import jax

    return jax.lax.cummax(s, axis=s.ndim - 1)


def _record_positions(x, k: int, kind: str, xp=np):
    """Along axis ``k``, the position of the element that set each running maximum (or minimum):
    the first of equal ones, a NaN from where it appears on (NumPy's accumulate keeps it)."""
    s = xp.moveaxis(x if kind == "maximum" else -x, k, -1)
    running = _cummax(s, xp)
    start = xp.full(s.shape[:-1] + (1,), -np.inf, dtype=s.dtype)
    before = xp.concatenate([start, running[..., :-1]], -1)
    record = (s > before) | (xp.isnan(s) & ~xp.isnan(before))
    steps = xp.arange(s.shape[-1])
    return xp.moveaxis(_cummax(xp.where(record, steps, 0 * steps), xp), -1, k)


def _running_value(x, k: int, kind: str, xp=np):
    """``np.maximum.accumulate(x, axis=k)`` (or minimum's) in ``xp``'s spelling."""
    if xp is np:
        return getattr(np, kind).accumulate(x, axis=k)
    s = xp.moveaxis(x if kind == "maximum" else -x, k, -1)
    run = xp.moveaxis(_cummax(s, xp), -1, k)
    return run if kind == "maximum" else -run


def _record_block(x, k: int, kind: str, xp=np):
    """∂running extreme/∂x as x.shape + (n,): 1 at the element that set each record."""
    return _one_hot(_record_positions(x, k, kind, xp), x.shape[k], xp)


running_value, record_block = lazy.portable(_running_value), lazy.portable(_record_block)


def _running_shape(shapes, params):
    s = _sort_shape(shapes, params)
    if params.get("kind") not in ("maximum", "minimum"):
        raise ShapeError(f"running_extreme's kind must be 'maximum' or 'minimum', got {params.get('kind')!r}")
    return s


register(Op("running_extreme",
            lambda a, p: lazy.asarray(running_value(a[0], p["axis"] % np.ndim(a[0]), p["kind"])), _running_shape,
            lambda i, ctx: _along_axis(ctx, lambda x, k: record_block(x, k, ctx.params["kind"])), 1,
            "np.maximum.accumulate (kind 'maximum') or np.minimum.accumulate along one axis; its partial picks "
            "the element that set each record, found at each call", params=("axis", "kind")))
_EXTREME_KIND = G._leaf("'maximum' or 'minimum'", "str", lambda v: v in ("maximum", "minimum"))
G.PARAMS["running_extreme"] = {"axis": (G.AXIS, True), "kind": (_EXTREME_KIND, True)}


def _q(params) -> np.ndarray:
    return np.asarray(params["q"], dtype=float).reshape(-1)


def _quantile_shape(shapes, params):
    s, q = tuple(shapes[0]), _q(params)
    if not s or s[-1] == 0:
        raise ShapeError(f"quantile needs a last axis with at least one element, got shape {s}")
    if not np.all((q >= 0) & (q <= 1)):
        raise ShapeError(f"quantile's q must lie in [0, 1], got {q.tolist()}")
    return s[:-1] + (q.size,)


def _quantile_value(a: list, p: dict):
    fn = np.nanquantile if p.get("skip_nan") else np.quantile
    return np.moveaxis(fn(a[0], _q(p), axis=-1, method=p.get("method", "linear")), 0, -1)


def _quantile_partial(i: int, ctx) -> Jac:
    s, q = ctx.shapes[0], _q(ctx.params)
    b = len(s) - 1
    vshape = tuple(s[:-1]) + (q.size, s[-1])
    method = ctx.params.get("method", "linear")
    return Jac(ctx.out_shape, s, list(range(b)) + [-1], list(range(b + 1)) + [2 * b + 1],
               ctx.val(lambda: quantile_block(lazy.asarray(ctx.args[0], float), q, bool(ctx.params.get("skip_nan")),
                                              method), vshape))


register(Op("quantile", _quantile_value, _quantile_shape, _quantile_partial, 1,
            "the q-quantiles along the last axis (NumPy's method=, 'linear' by default; skip_nan: nanquantile's), "
            "a new last axis of len(q); its partial weights one or two order statistics per quantile, found at "
            "each call", params=("q", "skip_nan", "method")))
G.PARAMS["quantile"] = {"q": (G.NUMBERS, True), "skip_nan": (G.BOOL, False),
                        "method": (G._leaf("one of NumPy's quantile methods", "str", lambda v: v in METHODS), False)}


def _take_order_value(a: list, p: dict):
    y, k = a[0], p["axis"]
    perm = _argsort(a[1], k, np)
    return np.take_along_axis(y, np.reshape(perm, np.shape(perm) + (1,) * (np.ndim(y) - np.ndim(perm))), axis=k)


def _take_order_shape(shapes, params):
    y, x, k = tuple(shapes[0]), tuple(shapes[1]), params["axis"]
    if not x or not 0 <= k < len(x) or y[:len(x)] != x:
        raise ShapeError(f"take_order needs keys (shape {x}) that lead the array's shape {y} and an axis of the "
                         f"keys, got axis {k}")
    return y


def _take_order_partial(i: int, ctx) -> Jac | None:
    if i == 1:  # the order is constant between ties: no derivative in the keys
        return None
    y, x, k = ctx.shapes[0], ctx.shapes[1], ctx.params["axis"]
    m = len(y)
    pair = [-1 if t == k else t for t in range(m)]
    return Jac(y, y, pair, list(range(len(x))) + [m + k],
               ctx.val(lambda: sort_block(lazy.asarray(ctx.args[1], float), k), tuple(x) + (x[k],)))


register(Op("take_order", _take_order_value, _take_order_shape, _take_order_partial, 2,
            "y's entries along an axis in the order that sorts the keys x (np.take_along_axis(y, np.argsort(x, "
            "axis), axis)); x's shape leads y's; the order is found at each call", frozenset({1}), ("axis",)))
G.PARAMS["take_order"] = {"axis": (G._int(0, G.MAX_DIMS, "an axis of the keys"), True)}


def _pick(x, kind: str, xp=np):
    """The position of x's first largest (``argmax``) or smallest (``argmin``) entry; a NaN counts
    as the extreme, as NumPy's."""
    return getattr(xp, kind)(x)


def _take_extreme_value(y, x, kind: str, xp=np):
    return y[_pick(x, kind, xp)]


def _extreme_row(x, kind: str, xp=np):
    """∂y[argmax(x)]/∂y over y's first axis: 1 at the extreme's position, found at each call."""
    return _one_hot(_pick(x, kind, xp), x.shape[0], xp)


take_extreme_value, extreme_row = lazy.portable(_take_extreme_value), lazy.portable(_extreme_row)


def _take_extreme_shape(shapes, params):
    y, x = tuple(shapes[0]), tuple(shapes[1])
    if len(x) != 1 or not x[0] or not y or y[0] != x[0] or params.get("kind") not in ("argmax", "argmin"):
        raise ShapeError(f"take_extreme needs 1-d keys of y's first length and kind 'argmax' or 'argmin', got keys "
                         f"{x}, y {y}, kind {params.get('kind')!r}")
    return y[1:]


def _take_extreme_partial(i: int, ctx) -> Jac | None:
    if i == 1:
        return None
    y, n = ctx.shapes[0], ctx.shapes[1][0]
    m = len(y) - 1
    return Jac(y[1:], y, [-1] + list(range(m)), [m],
               ctx.val(lambda: extreme_row(lazy.asarray(ctx.args[1], float), ctx.params["kind"]), (n,)))


register(Op("take_extreme", lambda a, p: lazy.asarray(take_extreme_value(a[0], a[1], p["kind"])), _take_extreme_shape,
            _take_extreme_partial, 2, "y[np.argmax(x)] (kind 'argmax') or y[np.argmin(x)] for 1-d keys x of y's "
            "first length; the position is found at each call", frozenset({1}), ("kind",)))
G.PARAMS["take_extreme"] = {"kind": (G._leaf("'argmax' or 'argmin'", "str", lambda v: v in ("argmax", "argmin")),
                                     True)}


class Order(_ReadOnUse):
    """``np.argsort`` of a traced array (or ``np.argmax``/``np.argmin`` of a 1-d one): NumPy's
    integers at the traced point that also remember whose order they are. Used to index an array
    whose leading axes are the keys' (``y[o]`` and ``np.take(y, o)`` for 1-d keys,
    ``np.take_along_axis(y, o, axis)``), after basic slices of a 1-d order (``o[::-1][:k]``), it
    records ``take_order`` (or ``take_extreme``), whose program finds the order at each call; any
    other use reads the integers at the traced point (the trace becomes value-dependent).

    >>> import numpy as np, jacc
    >>> g = jacc.trace(lambda x: x[np.argsort(x)[::-1][:2]] * 2.0, np.array([0.5, 3.0, 1.0]))
    >>> g.meta.get("value_dependent") is None, g.evaluate({"x": np.array([4.0, 1.0, 2.0])})[g.outputs[0]]
    (True, array([8., 4.]))
    """

    __slots__ = ("keys", "axis", "value", "tail", "kind")
    __hash__ = None

    def __init__(self, keys: Tracer, axis: int, value: np.ndarray, tail: tuple = (), kind: str = "argsort"):
        # (the keys as they are now: an in-place change of them after np.argsort leaves NumPy's order as it was)
        keys = Tracer(keys.tape, keys.name, keys.value)
        self.keys, self.axis, self.value, self.tail, self.kind = keys, axis, value, tail, kind

    def __repr__(self) -> str:
        return f"Order({self.kind}, {self.value!r})"

    def __str__(self) -> str:
        return str(self.value)

    def take_from(self, y, axis: int | None = None, along: bool = False):
        """``y`` in this order along the keys' axis (``axis``, where given, must be it), or None
        where ``y`` does not fit: then the caller reads the integers. ``along``: as
        ``np.take_along_axis``; otherwise as ``y[o]`` and ``np.take``, whose integer indices pick
        along one axis of y, which is the keys' order only for 1-d keys."""
        x = self.keys
        if not isinstance(y, Tracer) or (x.ndim != 1 and not along):
            return None
        k = self.axis if axis is None else axis % max(y.ndim, 1)  # (an axis of y, as NumPy reads it)
        if self.kind != "argsort":  # y[np.argmax(x)]: 1-d keys along y's first axis
            if k != 0 or y.ndim < 1 or y.shape[0] != x.shape[0] or y.dtype.kind != "f":
                return None
            return _tape_of(y).record("take_extreme", [y, x], {"kind": self.kind})
        if (k != self.axis or tuple(y.shape[:x.ndim]) != tuple(x.shape)
                or x.size * x.shape[k] > BLOCK_MAX or y.dtype.kind != "f"):
            return None
        r = _tape_of(y).record("take_order", [y, x], {"axis": k})
        for index in self.tail:
            r = r[index]
        return r

    def concrete(self) -> np.ndarray:
        self.keys.tape.note_value_dependence(f"numpy.{self.kind} (its integers read)")
        return self.value.copy()

    def __getitem__(self, index):
        if self.kind == "argsort" and self.keys.ndim == 1 and isinstance(index, slice):
            return Order(self.keys, self.axis, self.value[index], self.tail + (index,))
        return self.concrete()[index]

    def __index__(self) -> int:
        return operator.index(self.concrete())

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        return getattr(ufunc, method)(*_concrete(args), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return func(*_concrete(args), **kwargs)


def _concrete(args):
    return [a.concrete() if type(a) is Order else _concrete(a) if isinstance(a, (list, tuple)) else a for a in args]


def _reads(fn, flip: bool = False):
    """An operator of an Order: NumPy's on its integers at the traced point."""
    return lambda self, *other: fn(*other, self.concrete()) if flip else fn(self.concrete(), *other)


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and_", "or_", "xor", "lshift",
              "rshift"):
    setattr(Order, f"__{_name.rstrip('_')}__", _reads(getattr(operator, _name)))
    setattr(Order, f"__r{_name.rstrip('_')}__", _reads(getattr(operator, _name), True))
for _name in ("eq", "ne", "lt", "le", "gt", "ge", "neg", "pos", "abs", "invert"):
    setattr(Order, f"__{_name}__", _reads(getattr(operator, _name)))
Order.__divmod__, Order.__rdivmod__ = _reads(divmod), _reads(divmod, True)
Order.__round__ = _reads(round)


# -- NumPy's functions ---------------------------------------------------------------------------


@implements(np.sort)
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    # kind/stable only choose NumPy's algorithm: sorted values are the same (ties: stable order)
    _refuse("numpy.sort", order=order)
    if axis is None:
        a, axis = a.reshape(-1), 0
    k = _one_axis(a, axis, "numpy.sort")
    if a.size * a.shape[k] <= BLOCK_MAX:
        return _tape_of(a).record("sort", [a], {"axis": k})
    return _sorted_here(a, k, "numpy.sort (its permutation, for a sort too long to record)")


@implements(np.sort_complex)
def _sort_complex(a):
    """NumPy's: sorted along the last axis — complex values by real part, then imaginary part (a
    gather by the traced point's permutation) — and returned complex, as NumPy types it."""
    if np.ndim(a) == 0:
        raise np.exceptions.AxisError(-1, 0)  # (NumPy's error for a 0-d array)
    if np.dtype(a.dtype).kind == "c":
        return _sorted_here(a, np.ndim(a) - 1, "numpy.sort_complex (its order)")
    char = np.dtype(a.dtype).char
    return _sort(a).astype("F" if char in "bhBH" else "G" if char == "g" else "D")


def _running_extreme(kind: str):
    what = f"numpy.{kind}.accumulate"

    def accumulate(array, axis=0, dtype=None, out=None):
        """The running extreme: an op whose partial picks the element that set each record (the
        first of equal ones; a NaN from where it appears), found at each call; a scan too long
        for its dense block is read at the traced point."""
        _refuse(what, out=out)
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise UnsupportedOperationError(f"{what} with dtype={dtype!r}: only float results are differentiable")
        k = _one_axis(array, axis, what)
        if np.ndim(array) == 0:
            raise TraceError(f"{what} needs an array of at least one dimension (at {call_site()})")
        if isinstance(array, Tracer) and array.size * array.shape[k] <= BLOCK_MAX:
            return _tape_of(array).record("running_extreme", [array], {"axis": k, "kind": kind})
        x = np.asarray(_value(array, f"{what} (where each record is set)"), dtype=float)
        return _gather(array, _flat_along(x.shape, k, _record_positions(x, k, kind)))
    accumulate.__name__ = f"{kind}.accumulate"
    return accumulate


implements_ufunc_method("maximum", "accumulate")(_running_extreme("maximum"))
implements_ufunc_method("minimum", "accumulate")(_running_extreme("minimum"))


@implements(np.argsort, method="argsort")
def _argsort_traced(a, axis=-1, kind=None, order=None, *, stable=None):
    """An :class:`Order` of a traced float array (its integers read only where they are used as such)."""
    _refuse("numpy.argsort", order=order)
    if axis is None:
        a, axis = a.reshape(-1), 0
    k = _one_axis(a, axis, "numpy.argsort")
    if isinstance(a, Tracer) and a.dtype.kind == "f" and (stable or kind in ("stable", "mergesort")
                                                          or not _ties(a.value, k)):
        return Order(a, k, _order(a.value, k))
    # (tied keys: NumPy's default sort may order them otherwise than the stable order an Order finds
    # at each call; its own integers, read at the traced point)
    return np.argsort(_value(a, "numpy.argsort"), axis=k, kind=kind, **({} if stable is None else {"stable": stable}))


def _ties(x: np.ndarray, axis: int) -> bool:
    """Whether keys ``x`` hold equal entries along ``axis`` (NaNs count as equal)."""
    s = np.sort(x, axis=axis)
    return bool(np.any(np.diff(s, axis=axis) == 0) or np.any(np.sum(np.isnan(x), axis=axis) > 1))


def _extreme(kind: str):
    def pick(a, axis=None, out=None, *, keepdims=_NOT):
        """An :class:`Order` for 1-d traced float keys (``y[np.argmax(x)]`` is then recorded), else
        NumPy's integers read at the traced point (value-dependent)."""
        _refuse(f"numpy.{kind}", out=out)
        if (isinstance(a, Tracer) and a.ndim == 1 and a.size and a.dtype.kind == "f" and axis in (None, 0, -1)
                and keepdims is _NOT):
            return Order(a, 0, getattr(np, kind)(a.value), kind=kind)
        kw = {} if keepdims is _NOT else {"keepdims": keepdims}
        return getattr(np, kind)(_value(a, f"numpy.{kind}"), axis=axis, **kw)
    pick.__name__ = kind
    return pick


implements(np.argmax, method="argmax")(_extreme("argmax"))
implements(np.argmin, method="argmin")(_extreme("argmin"))


def _quantile(a, q, axis, keepdims, what: str, skip_nan: bool = False, method: str = "linear"):
    """The order statistics ``method`` reads (:func:`_position`; NumPy's default 'linear'
    interpolates at q·(n − 1)), over the reduced axes moved last and flattened. ``skip_nan`` (the
    nan* functions): n counts the non-NaN values of each row (NaNs sort last); a row of NaNs gives NaN."""
    if _traced(q):
        raise UnsupportedOperationError(f"{what} with traced quantiles q at {call_site()}: q must be constant")
    q = np.asarray(q, dtype=float)
    if q.size and not (np.all(q >= 0) and np.all(q <= 1)):
        raise ValueError(f"{what}: quantiles must be in the range [0, 1]" if "quantile" in what
                         else f"{what}: percentiles must be in the range [0, 100]")
    axes = _axes_of(axis, a.ndim, what)
    rest = [k for k in range(a.ndim) if k not in axes]
    x = _reshaped(_transposed(a, rest + axes), [a.shape[k] for k in rest] + [-1])
    if x.shape[-1] == 0:
        raise TraceError(f"{what} at {call_site()}: the reduced axes are empty")
    params = {"q": tuple(q.reshape(-1).tolist()), "skip_nan": skip_nan}
    if method != "linear":  # (graph files keep their default)
        params["method"] = method
    r = _tape_of(x).record("quantile", [x], params)
    kept = [a.shape[k] for k in rest] if not keepdims else [1 if k in axes else a.shape[k] for k in range(a.ndim)]
    r = _reshaped(r, [a.shape[k] for k in rest] + list(q.shape))
    r = _transposed(r, list(range(len(rest), r.ndim)) + list(range(len(rest))))
    return _reshaped(r, list(q.shape) + kept)


def _transposed(x, axes: list[int]):
    return x if axes == sorted(axes) else x.transpose(axes)


def _reshaped(x, shape: list[int]):
    """``x.reshape(shape)``, recording nothing when the shape does not change."""
    n = math.prod(d for d in shape if d != -1)
    full = tuple(x.size // max(n, 1) if d == -1 else d for d in shape)
    return x if full == x.shape else x.reshape(full)


def _checked(what: str, out, overwrite_input, method, weights) -> str:
    """``method``, one of :data:`METHODS` (NumPy's names; weights= is refused)."""
    # overwrite_input only lets NumPy reuse the buffer: traced values are never modified
    _refuse(what, out=out, weights=weights)
    if method not in METHODS:
        raise ValueError(f"{what}: method {method!r} is not one of NumPy's quantile methods: {', '.join(METHODS)}")
    return method


@implements(np.quantile)
def _np_quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
                 weights=None):
    method = _checked("numpy.quantile", out, overwrite_input, method, weights)
    return _quantile(a, q, axis, keepdims, "numpy.quantile", method=method)


@implements(np.percentile)
def _np_percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
                   weights=None):
    method = _checked("numpy.percentile", out, overwrite_input, method, weights)
    return _quantile(a, _fraction(q, "numpy.percentile"), axis, keepdims, "numpy.percentile", method=method)


def _fraction(q, what: str) -> np.ndarray:
    """A constant percentage as the fraction quantile() takes."""
    if _traced(q):
        raise UnsupportedOperationError(f"{what} with traced q at {call_site()}: q must be constant")
    return np.asarray(q, dtype=float) / 100.0


@implements(np.median)
def _median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    _refuse("numpy.median", out=out)
    return _middle(a, axis, keepdims, "numpy.median", False)


def _middle(a, axis, keepdims, what: str, skip_nan: bool):
    """NumPy's median: the middle entry, or the mean of the middle two, taken as they are (the
    linear quantile reads the upper neighbour with weight 0: NaN where that is inf, from exp's
    overflow)."""
    n = int(np.prod([np.shape(a)[k] for k in _axes_of(axis, np.ndim(a), what)]))
    lower = _quantile(a, 0.5, axis, keepdims, what, skip_nan=skip_nan, method="lower")
    if n % 2 and not skip_nan:
        return lower
    return (lower + _quantile(a, 0.5, axis, keepdims, what, skip_nan=skip_nan, method="higher")) * 0.5


def _flag(keepdims) -> bool:
    return keepdims is not _NOT and bool(keepdims)


@implements(np.nanquantile)
def _nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=_NOT, *,
                 weights=None):
    method = _checked("numpy.nanquantile", out, overwrite_input, method, weights)
    return _quantile(a, q, axis, _flag(keepdims), "numpy.nanquantile", skip_nan=True, method=method)


@implements(np.nanpercentile)
def _nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=_NOT, *,
                   weights=None):
    method = _checked("numpy.nanpercentile", out, overwrite_input, method, weights)
    return _quantile(a, _fraction(q, "numpy.nanpercentile"), axis, _flag(keepdims), "numpy.nanpercentile",
                     skip_nan=True, method=method)


@implements(np.nanmedian)
def _nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=_NOT):
    _refuse("numpy.nanmedian", out=out)
    return _middle(a, axis, _flag(keepdims), "numpy.nanmedian", True)


# -- examples -----------------------------------------------------------------------------------

_ORDERED = "the permutation found at each call (an argsort in the program): the trace holds at every point"
_DENSE = FREE | {"dense", "diag ⊗ dense"}
_MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

case("numpy.sort", lambda xp: xp.sort, lambda r: (_x(r),), structures=_DENSE, note=_ORDERED)
case("numpy.sort_complex", lambda xp: lambda x: xp.real(xp.sort_complex(x)) * xp.imag(xp.sort_complex(x * (1 + 2j))),
     lambda r: (_x(r),), note="real arguments sorted and made complex; complex ones gathered by the traced point's "
     "order (real part, then imaginary part)")
case("numpy.sort", lambda xp: lambda x: xp.sort(x, axis=0), lambda r: (_x(r),), structures=_DENSE, variant="axis=0")
case("numpy.sort", lambda xp: lambda x: xp.sort(x, axis=None), lambda r: (_x(r),), structures=_DENSE,
     variant="axis=None")
case("numpy.sort", lambda xp: lambda x: xp.sort(x)[::-1][:40] @ np.linspace(1.0, 2.0, 40), lambda r: (_x(r, (300,)),),
     structures=FREE | {"dense"}, variant="longer than BLOCK_MAX",
     note="a sort too long for a dense block is read at the traced point (value-dependent)")
case("numpy.median", lambda xp: xp.median, lambda r: (_x(r, (5,)),), structures=_DENSE,
     note="linear interpolation between order statistics: two weights per quantile, found at each call")
case("numpy.median", lambda xp: lambda x: xp.median(x, axis=-1), lambda r: (_x(r),), variant="even count")
case("numpy.median", lambda xp: lambda x: xp.median(x, axis=(0, 2), keepdims=True), lambda r: (_x(r, (2, 3, 3)),),
     variant="two axes, keepdims")
case("numpy.quantile", lambda xp: lambda x: xp.quantile(x, 0.3), lambda r: (_x(r),),
     note="method='linear' (the default): the two order statistics around q·(n − 1)")
case("numpy.quantile", lambda xp: lambda x: xp.quantile(x, np.array([0.1, 0.5, 1.0]), axis=0, keepdims=True),
     lambda r: (_x(r),), variant="array q, keepdims")
case("numpy.percentile", lambda xp: lambda x: xp.percentile(x, np.array([10.0, 50.0, 90.0]), axis=1, method="nearest"),
     lambda r: (_x(r),), variant="method='nearest'",
     note="every method of NumPy's: the order statistics it reads (one, or two with their weights), found at each call")
case("numpy.quantile", lambda xp: lambda x: xp.quantile(x, 0.35, axis=0, method="midpoint"), lambda r: (_x(r),),
     variant="method='midpoint'")
case("numpy.quantile", lambda xp: lambda x: xp.quantile(x, np.array([0.2, 0.8]), method="median_unbiased"),
     lambda r: (_x(r),), variant="method='median_unbiased'", jax=False, note="JAX has five of NumPy's methods")
case("numpy.nanquantile", lambda xp: lambda x: xp.nanquantile(xp.where(_MASK, x, xp.nan), np.array([0.3, 0.9]), axis=1,
                                                             method="inverted_cdf"), lambda r: (_x(r),),
     variant="method='inverted_cdf'", jax=False)
case("numpy.nanmedian", lambda xp: lambda x: xp.nanmedian(xp.where(_MASK, x, xp.nan), axis=1), lambda r: (_x(r),),
     note="n counts each row's non-NaN values, found at each call (one trace serves every point); a NaN entry's "
          "weight 0 times a NaN partial before it (NaN data in nanmedian(D * b)) is NaN, as in JAX")
case("numpy.nanquantile", lambda xp: lambda x: xp.nanquantile(xp.where(_MASK, x, xp.nan), np.array([0.2, 0.7]), axis=0,
                                                             keepdims=True), lambda r: (_x(r),))
case("numpy.nanpercentile", lambda xp: lambda x: xp.nanpercentile(xp.where(_MASK, xp.nan, x), 40.0),
     lambda r: (_x(r),))
case("numpy.percentile", lambda xp: lambda x: xp.percentile(x, np.array([25.0, 90.0]), axis=1),
     lambda r: (_x(r),))
case("numpy.argsort", lambda xp: lambda x: x[xp.argsort(x)[::-1]], lambda r: (_x(r, (6,)),), structures=_DENSE,
     note="an Order: indexing with it records take_order, the order found at each call; its integers read as "
     "numbers make the trace value-dependent")
case("numpy.argsort", lambda xp: lambda x: xp.take_along_axis(x, xp.argsort(x, axis=0), axis=0),
     lambda r: (_x(r),), structures=_DENSE, variant="take_along_axis")
case("numpy.argsort", lambda xp: lambda x: xp.sin(x)[xp.argsort(x ** 2)[:3]] * x[:3], lambda r: (_x(r, (6,)),),
     variant="another array's order, sliced")
case("numpy.argsort", lambda xp: lambda x: x * xp.argsort(x)[0], lambda r: (_x(r, (5,)),),
     structures=FREE | {"scaled identity"}, variant="integers read")
case("numpy.argmax", lambda xp: lambda x: x[xp.argmax(x)] * x, lambda r: (_x(r, (5,)),),
     structures=_DENSE | {"diag", "scaled identity"},
     note="1-d keys: an Order; y[np.argmax(x)] records take_extreme, the position found at each call (other uses "
     "read it at the traced point)")
case("numpy.argmin", lambda xp: lambda x: xp.stack([x, x ** 2], 1)[xp.argmin(xp.cos(x))], lambda r: (_x(r, (5,)),),
     variant="rows of another array")
case("numpy.argmax", lambda xp: lambda x: xp.take_along_axis(x, xp.argmax(x, axis=1, keepdims=True), axis=1),
     lambda r: (_x(r),), structures=FREE, variant="keepdims")
case("numpy.argmin", lambda xp: lambda x: xp.take(x, xp.argmin(x, axis=0), axis=1), lambda r: (_x(r, (4, 4)),),
     structures=FREE)
case("numpy.maximum.accumulate", lambda xp: lambda x: xp.maximum.accumulate(x, axis=1), lambda r: (_x(r, (3, 6)),),
     structures=_DENSE, note="the element that set each running record, found at each call")
case("numpy.minimum.accumulate", lambda xp: lambda x: xp.minimum.accumulate(x), lambda r: (_x(r, (6, 2)),),
     structures=_DENSE)
case("numpy.maximum.accumulate", lambda xp: lambda x: x - xp.maximum.accumulate(x), lambda r: (_x(r, (300,)),),
     structures=FREE | {"−identity"}, variant="longer than BLOCK_MAX",
     note="a scan too long for a dense block is read at the traced point (value-dependent)")
