"""NumPy's in-place writers on traced arrays: ``np.fill_diagonal``, ``np.put``, ``np.place``,
``np.putmask``, ``np.copyto``, ``np.put_along_axis``, ``np.add.at``/``np.subtract.at``,
``np.multiply.at``/``np.maximum.at``/``np.minimum.at`` and the
methods ``x.fill``, ``x.put``, ``x.sort`` and ``x.partition``.

Each is item assignment (see ``Tracer.__setitem__``): NumPy's own function runs on an integer array
of "which value goes here" marks, which tells where each element of the value lands, repeats and
cyclic reuse included, so NumPy's rules hold without being restated. The traced array then takes
the new value, so every name for it sees the change, as in NumPy; where NumPy would change another
traced array too (a view) the write is refused, as for ``x[i] = v``; views of the changed array
still in use show the change (see ``Tape.follow_views``).

A plain NumPy array cannot hold a traced value: writing one into it is refused with the way to
build the result instead.

>>> import jacc
>>> def f(x):
...     a = np.outer(x, x)
...     np.fill_diagonal(a, 1.0)
...     return a
>>> jacc.jacobian(f)(np.array([2.0, 3.0]))[0, 1]  # ∂a[0, 1]/∂x = (x[1], x[0]); a[0, 0] is 1
array([3., 2.])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..buffers import Buffer
from ..constructors import VIEWS
from ..trace import (
    PLAIN_WRITE_FIX,
    Tracer,
    UnsupportedOperationError,
    _no_overlap,
    _PlainWrite,
    _set_items,
    _take,
    _writable,
    call_site,
    implements,
    implements_ufunc_method,
)
from . import FREE, case
from .gathers import _data_index, _value, scatter_by_mask


def _target(dst: Any, what: str, instead: str) -> Tracer:
    """``dst`` if it is a traced array NumPy's write would change alone, or a buffer (which
    becomes one as the write takes it, see jacc.buffers), else a clear refusal."""
    if isinstance(dst, Buffer):
        dst.release()
        return dst
    if not isinstance(dst, Tracer):
        raise _PlainWrite(f"{what} at {call_site()} writes traced values into a plain NumPy array: {PLAIN_WRITE_FIX}; "
                          f"the result can also be built as {instead}")
    _writable(dst, what, "write into the array it views, or into a copy (v = v.copy())",
              f"write into a copy (y = x.copy()), or build the result: {instead}")
    return dst


def _write(what: str, instead: str, dst: Any, values: Any, place: Callable[[np.ndarray, np.ndarray], Any]) -> None:
    """``dst`` changed as ``place(dst, values)`` changes it: ``place`` runs on an array of marks
    (-1: kept) with the values' element numbers, and the marked elements take those values."""
    dst = _target(dst, what, instead)
    traced = isinstance(values, Tracer)
    vals = values if traced else np.asarray(values, dtype=float)
    marks = np.full(np.shape(dst), -1, dtype=np.intp)
    place(marks, np.arange(np.size(vals), dtype=np.intp).reshape(np.shape(vals)))
    mask = marks >= 0
    if not mask.any():
        return
    picked = np.reshape(vals, -1)[marks[mask]]
    if type(dst) in VIEWS:  # a view of a buffer (b[::-1]): the buffer's entries take the change
        dst[...] = _set_items(dst.current(), mask, picked)
        return
    _take(dst, _set_items(dst, mask, picked))


def _const(x: Any, what: str) -> Any:
    """An index, mask or condition argument as a constant (a traced one is read at this point)."""
    return _value(x, what) if isinstance(x, Tracer) else x


@implements(np.fill_diagonal)
def _fill_diagonal(a, val, wrap=False):
    what = "numpy.fill_diagonal"
    _write(what, "np.where(np.eye(*a.shape, dtype=bool), val, a)", a, val,
           lambda m, ids: np.fill_diagonal(m, ids, wrap=wrap))


@implements(np.put, method="put")
def _put(a, ind, v, mode="raise"):
    what = "numpy.put"
    ind = _const(ind, f"{what}'s indices")
    _write(what, "np.where(mask, values, a)", a, v, lambda m, ids: np.put(m, ind, ids, mode=mode))


@implements(np.place)
def _place(arr, mask, vals):
    what = "numpy.place"
    mask = _const(mask, f"{what}'s mask")
    if isinstance(arr, Tracer):
        _no_overlap(arr, np.asarray(mask, dtype=bool), vals, what)
    _write(what, "np.where(mask, values, arr)", arr, vals, lambda m, ids: np.place(m, mask, ids))


@implements(np.putmask)
def _putmask(a, mask, values):
    what = "numpy.putmask"
    mask = _const(mask, f"{what}'s mask")
    _write(what, "np.where(mask, values, a)", a, values, lambda m, ids: np.putmask(m, mask, ids))


@implements(np.copyto)
def _copyto(dst, src, casting="same_kind", where=True):
    what = "numpy.copyto"
    where = _const(where, f"{what}'s where")
    _write(what, "np.where(where, src, dst)", dst, src, lambda m, ids: np.copyto(m, ids, where=where))


@implements(np.put_along_axis)
def _put_along_axis(arr, indices, values, axis):
    what = "numpy.put_along_axis"
    indices = _const(indices, f"{what}'s indices")
    _write(what, "np.where(mask, values, arr)", arr, values,
           lambda m, ids: np.put_along_axis(m, indices, ids, axis))


def _fill(a, value):
    """``a.fill(value)``: every element takes ``value`` (a scalar, possibly traced)."""
    if isinstance(a, Tracer) and a.tape.is_scalar(a):
        return  # a NumPy scalar (x[0], a sum) is immutable: its fill changes nothing, as NumPy's
    if np.ndim(value) != 0:
        raise ValueError(f"x.fill() at {call_site()} takes a scalar, not an array of shape {np.shape(value)}")
    _write("x.fill()", "np.full_like(x, value)", a, value, lambda m, ids: m.fill(0))


def _rearranged(name: str, new: Callable) -> Callable:
    """The in-place method ``x.name(...)``: ``x`` takes NumPy's function's result."""
    def method(a, *args, **kwargs):
        r = new(a, *args, **kwargs)
        _take(_target(a, f"x.{name}()", f"np.{name}(x, ...)"), _set_items(a, ..., r))
    method.__name__ = name
    return method


def _scattered(ufunc: np.ufunc, combine: Callable) -> Callable:
    """``ufunc.at(a, indices, b)`` for an additive ``ufunc``: ``a`` combined with the sums of
    ``b`` per position (repeated positions accumulate, as ``at`` promises)."""
    what = f"numpy.{ufunc.__name__}.at"

    def at(a, indices, b=None):
        if b is None:
            raise UnsupportedOperationError(f"{what} at {call_site()} needs the values b")
        a = _target(a, what, f"for a 1-d a: a {'+' if ufunc is np.add else '-'} "
                             "np.bincount(indices, weights=b, minlength=len(a))")
        shape, size = np.shape(a), int(np.size(a))
        if any(map(_data_index, indices if type(indices) is tuple else (indices,))):  # labels passed as data
            sums = scatter_by_mask(shape, indices, b, what)
        else:
            positions = np.arange(size, dtype=np.intp).reshape(shape)[_const(indices, f"{what}'s indices")]
            spread = np.broadcast_to(b, positions.shape) if np.shape(b) != positions.shape else b
            # (np.bincount of traced weights is recorded as a scatter: jacc.numpy_api.gathers)
            sums = np.bincount(positions.reshape(-1), weights=np.reshape(spread, -1), minlength=size)
        _take(a, combine(a, np.reshape(sums, shape)))
    return at


implements_ufunc_method("add", "at")(_scattered(np.add, lambda a, s: a + s))
implements_ufunc_method("subtract", "at")(_scattered(np.subtract, lambda a, s: a - s))


def _grouped(ufunc: np.ufunc, fill: float) -> Callable:
    """``ufunc.at(a, indices, b)`` for ``multiply``, ``maximum`` and ``minimum``: round r applies
    ``ufunc(a, ·)`` with the r-th value given to each position (in the order of the indices, as
    NumPy applies them, so a product rounds as NumPy's does), ``fill`` (the ufunc's identity)
    where a position has fewer; as many rounds as a position is repeated."""
    what = f"numpy.{ufunc.__name__}.at"

    def at(a, indices, b=None):
        if b is None:
            raise UnsupportedOperationError(f"{what} at {call_site()} needs the values b")
        a = _target(a, what, f"np.{ufunc.__name__}(a, v) with v holding each position's combined values")
        shape, size = np.shape(a), int(np.size(a))
        flat = np.arange(size, dtype=np.intp).reshape(shape)[_const(indices, f"{what}'s indices")]
        spread = np.broadcast_to(b, flat.shape) if np.shape(b) != flat.shape else b
        flat = flat.reshape(-1)
        if not flat.size:
            return
        order = np.argsort(flat, kind="stable")
        hit, start, count = np.unique(flat[order], return_index=True, return_counts=True)
        values = np.concatenate([np.reshape(spread, -1), np.full(1, fill)])  # (the fill at flat.size)
        new = a
        for r in range(int(count.max())):
            slot = np.full(size, flat.size)  # which value each position takes in this round
            more = count > r
            slot[hit[more]] = order[start[more] + r]
            new = ufunc(new, np.reshape(values[slot], shape))
        _take(a, new)
    return at


implements_ufunc_method("multiply", "at")(_grouped(np.multiply, 1.0))
implements_ufunc_method("maximum", "at")(_grouped(np.maximum, -np.inf))
implements_ufunc_method("minimum", "at")(_grouped(np.minimum, np.inf))

implements(method="fill")(_fill)
implements(method="sort")(_rearranged("sort", lambda a, axis=-1, kind=None: np.sort(a, axis, kind)))
implements(method="partition")(_rearranged("partition", lambda a, kth, axis=-1, kind="introselect":
                                            np.partition(a, kth, axis, kind)))


# -- examples -----------------------------------------------------------------------------------


def _x(r, shape=(3, 4)):
    return r.normal(size=shape)


def _copy_then(write: Callable, xp) -> Callable:
    """A function that writes into a fresh copy of its first argument with ``write(y, *rest)``
    (JAX has no in-place writes: its version is built with ``.at[]``, given as ``write``'s xp form)."""
    def f(x, *rest):
        y = x.copy()
        write(y, *rest)
        return y
    return f


# an assignment is where(mask, new, old): 0/1 diagonal partials; subtract.at negates
_WRITE = FREE | {"diag", "scaled identity", "−identity"}
_DIAG = np.eye(3, 4, dtype=bool)
case("numpy.fill_diagonal", lambda xp: (lambda x, v: xp.where(_DIAG, v[:, None], x)) if xp is not np else
     _copy_then(lambda y, v: np.fill_diagonal(y, v), np), lambda r: (_x(r), r.normal(size=3)), argnums=(0, 1),
     structures=_WRITE, note="the diagonal's values from the second argument")
case("numpy.put", lambda xp: (lambda x, v: x.reshape(-1).at[np.array([1, 5, 1])].set(v[np.array([0, 1, 2])])
                              .reshape(3, 4)) if xp is not np else
     _copy_then(lambda y, v: np.put(y, [1, 5, 1], v), np), lambda r: (_x(r), r.normal(size=3)), argnums=(0, 1),
     structures=_WRITE, note="a repeated index takes the last value", jax=False)
case("numpy.place", lambda xp: _copy_then(lambda y, v: np.place(y, y > 0, v), np),
     lambda r: (_x(r), r.normal(size=2)), argnums=(0, 1), structures=_WRITE,
     note="the values reused cyclically, the mask read at the traced point", jax=False)
case("numpy.putmask", lambda xp: _copy_then(lambda y, v: np.putmask(y, y < 0, v), np),
     lambda r: (_x(r), r.normal(size=3)), argnums=(0, 1), structures=_WRITE, jax=False)
case("numpy.copyto", lambda xp: _copy_then(lambda y, v: np.copyto(y, v, where=np.arange(4) % 2 == 0), np),
     lambda r: (_x(r), r.normal(size=4)), argnums=(0, 1), structures=_WRITE, jax=False)
case("numpy.put_along_axis", lambda xp: _copy_then(
    lambda y, v: np.put_along_axis(y, np.array([[0], [3], [1]]), v, axis=1), np),
     lambda r: (_x(r), r.normal(size=(3, 1))), argnums=(0, 1), structures=_WRITE, jax=False)
case("numpy.add.at", lambda xp: (lambda x, v: x.at[np.array([0, 2, 0])].add(v)) if xp is not np else
     _copy_then(lambda y, v: np.add.at(y, [0, 2, 0], v), np), lambda r: (_x(r), r.normal(size=(3, 4))),
     argnums=(0, 1), structures=_WRITE, note="repeated rows accumulate; indices passed as data: a one-hot "
                                             "mask's product (docs/execution.md)")
case("numpy.multiply.at", lambda xp: (lambda x, v: x.at[np.array([0, 2, 0])].multiply(v)) if xp is not np else
     _copy_then(lambda y, v: np.multiply.at(y, [0, 2, 0], v), np), lambda r: (_x(r), r.normal(size=(3, 4))),
     argnums=(0, 1), jax=False,
     note="one round per repeat of an index, in NumPy's order (values bit for bit NumPy's); JAX's scatter_mul has "
          "no gradient with repeated indices")
case("numpy.maximum.at", lambda xp: (lambda x, v: x.at[np.array([1, 1, 2])].max(v)) if xp is not np else
     _copy_then(lambda y, v: np.maximum.at(y, [1, 1, 2], v), np), lambda r: (_x(r), r.normal(size=(3, 4))),
     argnums=(0, 1))
case("numpy.minimum.at", lambda xp: (lambda x, v: x.at[np.array([4, 0, 4])].min(v)) if xp is not np else
     _copy_then(lambda y, v: np.minimum.at(y, np.array([4, 0, 4]), v), np),
     lambda r: (r.normal(size=5), r.normal(size=3)), argnums=(0, 1))
case("numpy.subtract.at", lambda xp: (lambda x, v: x.at[np.array([1, 1])].add(-v)) if xp is not np else
     _copy_then(lambda y, v: np.subtract.at(y, [1, 1], v), np), lambda r: (r.normal(size=5), r.normal(size=2)),
     argnums=(0, 1), structures=_WRITE)
case("ndarray.fill", lambda xp: _copy_then(lambda y, v: y.fill(v), np), lambda r: (_x(r), r.normal()),
     argnums=(0, 1), structures=_WRITE, jax=False)
case("ndarray.sort", lambda xp: _copy_then(lambda y: y.sort(axis=0), np), lambda r: (_x(r),),
     structures=_WRITE | {"diag ⊗ dense"}, note="numpy.sort's op, its permutation found at each call", jax=False)
case("ndarray.partition", lambda xp: _copy_then(lambda y: y.partition(1), np), lambda r: (_x(r),),
     structures=_WRITE, jax=False)
