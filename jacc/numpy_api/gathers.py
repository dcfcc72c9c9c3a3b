"""Indexing, masks and value-dependent selections: fancy indexing, take, where, select, argsort
and friends. All are gathers, recorded as ``getitem`` with constant index arrays or as
the ``gather`` primitive with constant flat positions; either partial is a free lazy selection
(forward: the neighbour's rows are read at the index; reverse: its columns are added back, so a
repeated index sums), never a one-hot product; only an index that is integer data (labels that
change from call to call) is read through a one-hot mask (:func:`gather_by_mask`).

A value-dependent one (``argmax``, ``argsort``, ``partition``, ``where`` with a traced condition)
reads the traced value, fixes its permutation or mask as a constant of the recorded op, and marks
the trace value-dependent: every call traces again, and a new permutation builds a new graph.
Sorting and quantiles are recorded ops instead, their permutations found at each call
(:mod:`jacc.numpy_api.orders`)."""

from __future__ import annotations

import math

import numpy as np

from .. import graph as G
from .. import lazy
from .. import structure as S
from ..constructors import replacement, routed, swap_during_traces
from ..indexing import as_index_array
from ..ops import Op, ShapeError, _ew, register
from ..trace import (
    DATA_GATHER,
    IndexOutOfBounds,
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _axes_of,
    _holds_int_data,
    _int,
    _int_type,
    _refuse,
    _scatter,
    _tape_of,
    array_result,
    call_site,
    implements,
    increasing,
    note_hidden_nonfinite,
    warn_tie,
)
from . import FREE, case

# -- the gather primitive -----------------------------------------------------------------------
# gather(x, positions) = x.ravel()[positions] with the positions a constant *argument*, not a
# parameter: a trace that only changes them (sort at a new point) keeps its structure, so the
# cached plan is reused with the new graph. Its partial is a free lazy selection.


def _positions(idx, size: int, what: str = "gather", distinct: bool = False) -> np.ndarray:
    pos = np.asarray(idx)
    ints = pos.astype(np.intp)
    if not np.array_equal(ints, pos) or (ints.size and (ints.min() < 0 or ints.max() >= size)):
        where = "flat positions into the operand" if what == "gather" else "positions in the result"
        raise ShapeError(f"{what} positions must be integers in [0, {size}) ({where})")
    if distinct and not increasing(ints) and np.unique(ints).size != ints.size:
        raise ShapeError(f"{what} positions must be distinct (each element written once); scatter_add sums "
                         "repeated positions")
    return ints


def _gather_partial(i: int, ctx) -> S.Jac | None:
    if i == 1:
        return None
    s = ctx.shapes[0]
    flat = _positions(ctx.args[1], int(np.prod(s))) if ctx.numeric else None
    return S.take_selection(ctx.out_shape, s, [-1] * len(s), flat)


register(Op("gather", lambda a, p: lazy.asarray(a[0]).reshape(-1)[_positions(a[1], np.size(a[0]))],
            lambda s, p: tuple(s[1]), _gather_partial, 2,
            "x.ravel()[positions] for constant integer positions (a free lazy selection)", frozenset({1})))


def _scatter_value(a: list, p: dict):
    """The length-``size`` vector whose entry k sums the values at positions k (NumPy's
    ``bincount`` with weights, bit for bit): ``put_rows``, which the jax and torch backends run
    as their own scatter-add."""
    size = p["size"]
    flat = _positions(a[1], size, "scatter_add").reshape(-1)
    return S.put_rows(lazy.asarray(a[0]).reshape(-1), size, flat, add=True)


def _scatter_partial(i: int, ctx) -> S.Jac | None:
    if i == 1:
        return None
    s, size = ctx.shapes[0], ctx.params["size"]
    flat = _positions(ctx.args[1], size, "scatter_add") if ctx.numeric else None
    return S.transpose(S.take_selection(s, (size,), [-1], flat))  # the gather's adjoint


def _scatter_shape(s, p):
    if tuple(s[0]) != tuple(s[1]):
        raise ShapeError(f"scatter_add needs positions shaped like the values, got {tuple(s[1])} for {tuple(s[0])}")
    return (p["size"],)


register(Op("scatter_add", _scatter_value, _scatter_shape,
            _scatter_partial, 2, "y[k] = Σ w[i] over positions[i] = k, y of length size (bincount with weights; "
            "the gather's adjoint: a free lazy embedding)", frozenset({1}), ("size",)))
G.PARAMS["scatter_add"] = {"size": (G._int(0, G.MAX_ELEMENTS, "the length of the result"), True)}


# -- put: an assignment x[index] = v as one op ---------------------------------------------------
# put(x, v, positions) is x with its flat positions (constant, distinct) taking v's values: what
# NumPy's x[index] = v does. v's partial is a placement (each value lands on an element of its
# own), free and composable with selections, and x's is the mask of what stays; recorded as a
# scatter into zeros and a where, the written entries' partial was the mask as a diagonal of
# values, costing a multiplication per entry in every product.


def _put_flat(pos, shape, vshape) -> np.ndarray:
    size = int(np.prod(shape))
    flat = _positions(pos, size, "put", distinct=True)
    if flat.shape != tuple(vshape):
        raise ShapeError(f"put needs positions shaped like the values, got {flat.shape} for {tuple(vshape)}")
    return flat


def _kept(flat: np.ndarray, shape) -> np.ndarray:
    """True where ``put`` leaves x's element."""
    keep = np.ones(int(np.prod(shape)), dtype=bool)
    keep[flat.reshape(-1)] = False
    return keep.reshape(shape)


def _put_value(a: list, p: dict):
    x, v = lazy.asarray(a[0]), lazy.asarray(a[1])
    flat = _put_flat(a[2], x.shape, v.shape)
    placed = S.put_rows(v.reshape(-1), int(np.prod(x.shape)), flat.reshape(-1)).reshape(x.shape)
    return np.where(_kept(flat, x.shape), x, placed)  # (writes, no arithmetic: NumPy's bits)


def _put_partial(i: int, ctx) -> S.Jac | None:
    if i == 2:
        return None
    shape, vshape = ctx.out_shape, ctx.shapes[1]
    flat = _put_flat(ctx.args[2], shape, vshape) if ctx.numeric else None
    if i == 0:  # what stays of x: its mask as a diagonal (x is a constant buffer, mostly: no edge)
        return _ew(ctx, 0, "out", lambda: _kept(flat, shape))
    return S.transpose(S.take_selection(vshape, shape, [-1] * len(shape), flat, distinct=True))


def _put_shape(s, p):
    if tuple(s[1]) != tuple(s[2]):
        raise ShapeError(f"put needs positions shaped like the values, got {tuple(s[2])} for {tuple(s[1])}")
    return tuple(s[0])


register(Op("put", _put_value, _put_shape, _put_partial, 3,
            "x with its flat positions (distinct) taking v's values: x[index] = v (v's partial: a free "
            "placement)", frozenset({2})))


def _gather(x, positions: np.ndarray):
    """Record ``x.ravel()[positions]`` (positions: a constant int array of the result's shape)."""
    return _tape_of(x).record("gather", [x, np.asarray(positions, dtype=float)])


def _flat_along(shape, k: int, idx: np.ndarray) -> np.ndarray:
    """Flat positions of take_along_axis(x, idx, k) for x of ``shape``."""
    idx = np.where(idx < 0, idx + shape[k], idx)
    if idx.size and (idx.min() < 0 or idx.max() >= shape[k]):
        raise IndexOutOfBounds(f"index out of bounds for axis {k} with size {shape[k]} (at {call_site()})")
    try:
        grid = np.broadcast_arrays(*_grid(shape, k, idx))
    except ValueError:  # (NumPy's error for index arrays that do not broadcast)
        raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together (at {call_site()})") \
            from None
    return np.ravel_multi_index(grid, shape)


# -- helpers ------------------------------------------------------------------------------------


def _traced(x) -> bool:
    return isinstance(x, Tracer)


def _value(x, what: str) -> np.ndarray:
    """The current value of a traced ``x`` (marking the trace value-dependent), else ``x``."""
    if isinstance(x, Tracer):
        x.tape.note_value_dependence(what)
        if x.name in x.tape.ints:  # (labels passed as data are traced as floats: NumPy indexes with integers)
            return x.value.astype(_int_type(x.tape, x.name))
        return x.value
    return np.asarray(x)


def _mask(cond, what: str) -> np.ndarray:
    """A condition as a constant boolean mask; a traced one is read at the traced point."""
    return _value(cond, f"{what} with a traced condition") != 0


def _indices(indices, what: str) -> np.ndarray:
    """Constant integer indices (traced or non-integer ones are refused, naming the call site)."""
    if _traced(indices):
        raise UnsupportedOperationError(
            f"{what} with traced indices at {call_site()}: indices must be constant integers "
            "(np.argsort / np.argmax of a traced value give such constants)")
    idx = as_index_array(indices)
    if idx.dtype.kind not in "iu":
        raise UnsupportedOperationError(f"{what} at {call_site()}: indices must be integers, got dtype {idx.dtype}")
    return idx


def _moded(idx: np.ndarray, n: int, mode, what: str) -> np.ndarray:
    """Constant indices into n entries as NumPy's ``mode=`` reads them: 'raise' as they are
    (negative ones count from the end), 'wrap' modulo n, 'clip' into [0, n − 1] (negative ones to 0)."""
    if mode in ("raise", None):
        return idx
    if mode not in ("wrap", "clip"):
        raise ValueError(f"{what}: mode must be one of 'raise', 'wrap' or 'clip', got {mode!r}")
    if n == 0 and idx.size:
        raise IndexError(f"{what}: cannot do a non-empty take from an empty axes.")
    return idx % max(n, 1) if mode == "wrap" else np.clip(idx, 0, max(n - 1, 0))


def _one_axis(a, axis, what: str) -> int:
    [k] = _axes_of(_int(axis, "axis"), np.ndim(a), what)
    return k


def _along(k: int, ndim: int, idx) -> tuple:
    """The index that applies ``idx`` to axis ``k`` and keeps the other axes."""
    return (slice(None),) * k + (idx,) + (slice(None),) * (ndim - k - 1)


def _grid(shape, k: int, idx: np.ndarray) -> tuple:
    """take_along_axis's index: ``idx`` on axis ``k``, broadcast positions on the others."""
    return tuple(idx if t == k else np.arange(n).reshape([n if s == t else 1 for s in range(len(shape))])
                 for t, n in enumerate(shape))


# -- gathers whose positions are integer data -----------------------------------------------------

#: entries of the masked product (the result's size times the indexed axis's length) up to which a
#: gather with an integer data index is recorded as one; above, the index stays a constant (the
#: structure is planned anew for each new index, as a gather of constant positions: an embedding
#: of 16 × 8 tokens into a 2,000 × 8 table, 2²¹ entries, took 0.76 ms a call as a mask product,
#: 1.88 ms planned anew)
MASK_GATHER_MAX = 1 << 22


def gather_by_mask(x: Tracer, index):
    """``x[index]`` where one index entry ``t`` is a traced integer data array (class labels,
    token ids: :class:`jacc.api._DataArgs`) on an axis of length K: ``x`` indexed with
    ``arange(K)`` in ``t``'s place (constant positions), contracted with the one-hot mask
    ``t[..., None] == arange(K)`` (negative labels counted from the end) over that axis.
    The structure then holds for every value of ``t``, so one plan serves every batch of labels (a
    gather of ``t``'s values as constants was a new structure, planned anew, at each batch).

    ``t`` is computed from integer data alone (``y``, ``y - 1``, ``np.where(y != -100, y, 0)``): the
    steps that compute it are recorded on the tape with its bounds (:attr:`Tape.index_bounds`), a
    call that skips ``f`` runs them on its data, and one whose labels leave the bounds runs ``f``,
    which raises NumPy's ``IndexError``. An index out of bounds here raises it too."""
    tape = x.tape
    if x.name in tape.ints or x.name in tape.bits:  # (a product would make floats of integers or a mask)
        raise UnsupportedOperationError(f"indexing integer data or a mask with integer data at {call_site()} "
                                        "(perm[y]: the data stays a constant)")
    grid = _LabelGrid(tape, x.shape, index, "indexing")
    order, at, batch, mask = grid.order, grid.at, grid.batch, grid.mask
    # every entry of x in its order (x[np.arange(n), y], E[idx]) is x itself, reshaped: no gather,
    # and no scatter of its adjoint
    if grid.in_order:
        picked = x if order.shape == x.shape else x.reshape(order.shape)
    else:
        picked = x[grid.wide]
    # one product over the axis: a matrix product for an embedding (a batch × K mask times the
    # K × d table), where the mask broadcast over the table's rows and summed took 3 passes over
    # batch × K × d entries
    letters = _LETTERS
    dims = range(at, at + len(batch))
    outer = [letters[d] for d in range(picked.ndim) if d != at + len(batch)]
    # (the batch axes picked has as 1, where x is read alike for every label, are the mask's alone)
    own = [d for d in range(picked.ndim) if not (d in dims and picked.shape[d] == 1 and batch[d - at] != 1)]
    squeezed = picked.reshape([picked.shape[d] for d in own]) if len(own) < picked.ndim else picked
    spec = (f"{''.join(letters[d] for d in own)},{''.join(letters[d] for d in dims)}{letters[at + len(batch)]}"
            f"->{''.join(outer)}")
    return np.einsum(spec, squeezed, mask)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def scatter_by_mask(shape: tuple, index, values, what: str, lowest: int | None = None):
    """The sums that ``np.add.at(a, index, values)`` adds to an ``a`` of ``shape``, where one
    index entry is traced integer data (:func:`gather_by_mask`'s transpose): ``values``, spread
    over the one-hot mask's K values of that entry, summed into the constant positions each
    (entry, value) would write. Repeated labels sum, as ``at`` promises; the structure holds for
    every value of the labels (a segment sum, a class-wise total, a graph's messages summed per
    node), and their bounds are checked as the gather's (``lowest``: the least label allowed,
    else −n, counted from the end)."""
    t = next(i for i in (index if type(index) is tuple else (index,)) if isinstance(i, Tracer))
    grid = _LabelGrid(t.tape, shape, index, what, lowest)
    order, at, batch, mask = grid.order, grid.at, grid.batch, grid.mask
    k = at + len(batch)  # (order's axis of the K values)
    if grid.in_order:
        # the labels index one axis alone (np.add.at(agg, dst, msg)): one product keeping the values'
        # axis and summing the labels' (a program runs it as a scatter-add: jacc.onehot)
        given = order.shape[:at] + batch + order.shape[k + 1:]
        spread = np.broadcast_to(values, given) if np.shape(values) != given else values
        head, tail = _LETTERS[:at], _LETTERS[at:at + len(order.shape) - k - 1]
        labels, K = _LETTERS[len(head) + len(tail):][:len(batch)], _LETTERS[-1]
        return np.einsum(f"{head}{labels}{tail},{labels}{K}->{head}{K}{tail}", spread, mask).reshape(-1)
    # (order's batch axes are 1 where every label reads alike: a label array indexes an axis alone)
    order = np.broadcast_to(order, order.shape[:at] + batch + order.shape[k:])
    given = order.shape[:k] + order.shape[k + 1:]  # (a[index].shape, which values broadcast to)
    spread = np.broadcast_to(values, given) if np.shape(values) != given else values
    spread = np.reshape(spread, given[:k] + (1,) + given[k:])
    weights = spread * np.reshape(mask, mask.shape + (1,) * (order.ndim - k - 1))
    if np.shape(weights) != order.shape:  # (constant values read alike at every label)
        weights = np.broadcast_to(weights, order.shape)
    return np.bincount(order.reshape(-1), weights=np.reshape(weights, -1), minlength=math.prod(shape))


class _LabelGrid:
    """What indexing an array of ``shape`` with ``index`` reads, where one entry ``t`` of the
    index is traced integer data on an axis of length n: ``wide``, the index with ``arange(n)``
    in ``t``'s place (and the other index arrays broadcast against ``t``); ``order``, the flat
    positions that ``wide`` reads, and ``in_order`` where they are every entry in order (the labels
    index one axis alone, ``E[idx]``: the array itself, reshaped); ``at``, the axis of ``order``
    where ``t``'s batch axes start (NumPy's placement of advanced indices), followed by the n
    values' axis; ``batch``, the broadcast shape of the index arrays; ``mask``, the recorded
    one-hot mask ``t[..., None] == arange(n)`` (batch + (n,)), negative labels counted from the
    end, with ``t``'s bounds noted on the tape (:attr:`Tape.index_bounds`): ``lowest`` <= t < n,
    ``lowest`` −n unless given."""

    def __init__(self, tape, shape: tuple, index, what: str, lowest: int | None = None):
        if np.dtype(tape.dtype) != np.float64:  # (labels are traced as float64: the mask would widen x)
            raise UnsupportedOperationError(f"{what} at {call_site()} with integer data under dtype="
                                            f"{np.dtype(tape.dtype).name} (the data stays a constant)")
        ndim = len(shape)
        items = list(index) if type(index) is tuple else [index]
        traced = [k for k, i in enumerate(items) if isinstance(i, Tracer)]
        if len(traced) != 1 or any(isinstance(i, (bool, np.bool_)) or (
                isinstance(i, (list, np.ndarray)) and as_index_array(i).dtype == bool) for i in items):
            raise UnsupportedOperationError(f"{what} at {call_site()} with integer data takes one data index array, "
                                            "other indices constant integers or slices (the data stays a constant)")
        ellipses = [k for k, i in enumerate(items) if i is Ellipsis]  # (by identity: == of a traced index is its mask)
        if len(ellipses) == 1:
            used = sum(i is not None for i in items) - 1
            items[ellipses[0]:ellipses[0] + 1] = [slice(None)] * max(ndim - used, 0)
            traced = [k for k, i in enumerate(items) if isinstance(i, Tracer)]
        j = traced[0]
        t = items[j]
        axis = sum(i is not None for i in items[:j])
        if axis >= ndim:
            raise IndexError(f"too many indices for array: array is {ndim}-dimensional (at {call_site()})")
        n = shape[axis]
        lowest = -n if lowest is None else lowest
        values = np.asarray(t.value)
        if values.size and (values.min() < lowest or values.max() >= n):
            bad = values[(values < lowest) | (values >= n)].flat[0]
            raise IndexOutOfBounds(f"index {int(bad)} is out of bounds for axis {axis} with size {n}")
        if t.name not in tape.ints:
            raise UnsupportedOperationError(
                f"{what} at {call_site()} with labels computed from data by an op whose result the trace does not "
                "keep integer (the data stays a constant)")
        steps = _label_steps(t)
        others = {k: as_index_array(i) for k, i in enumerate(items) if k != j and not (
            i is None or isinstance(i, slice))}
        try:
            batch = np.broadcast_shapes(t.shape, *(a.shape for a in others.values()))
        except ValueError:  # (NumPy's error for index arrays that do not broadcast)
            raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together with shapes "
                             f"{' '.join(str(s) for s in [t.shape, *(a.shape for a in others.values())])} "
                             f"(at {call_site()})") from None
        kept = _indexed(items)
        entries = math.prod(batch) * n * math.prod(shape[a] for a in range(ndim) if a not in kept)
        if entries > MASK_GATHER_MAX:
            raise UnsupportedOperationError(
                f"{what} at {call_site()} with integer data: its masked product would hold more than "
                f"{MASK_GATHER_MAX:,} entries (the data stays a constant)")
        wide = list(items)
        wide[j] = np.arange(n).reshape((1,) * len(batch) + (n,))
        for k, a in others.items():
            wide[k] = np.broadcast_to(a, batch)[..., None]
        self.wide, self.batch = tuple(wide), batch
        # (constant positions: each entry of the batch, for every value of t)
        self.order = np.arange(math.prod(shape)).reshape(shape)[self.wide]
        self.in_order = self.order.size == math.prod(shape) and np.array_equal(
            self.order.reshape(-1), np.arange(self.order.size))
        advanced = [k for k, i in enumerate(wide) if isinstance(i, np.ndarray)]
        if advanced == list(range(advanced[0], advanced[-1] + 1)):  # NumPy's rule: adjacent ones stay in place
            self.at = sum(1 for i in wide[:advanced[0]] if i is None or isinstance(i, slice))
        else:
            self.at = 0
        tape.exact_steps = True  # (labels of any integer width: NumPy's indexing wraps negative ones alike)
        try:
            wrapped = t + (t < 0).vertex() * n
            mask = (wrapped[..., None] == np.arange(n)).vertex()
        finally:
            tape.exact_steps = False
        if mask.shape == batch + (n,):
            self.mask = mask
            tape.one_hots[mask.name] = (wrapped.name, n)  # (a program may gather instead: jacc.onehot)
        else:
            self.mask = np.broadcast_to(mask, batch + (n,))
        tape.index_bounds.append((steps, t.name, lowest, n))


def _label_steps(t: Tracer) -> tuple:
    """The recorded steps that compute labels ``t`` from integer data arguments alone, in order:
    a call that skips ``f`` runs them on its data to check the labels' bounds (``api._Labels.within``)."""
    tape = t.tape
    producers = {s[0]: s for s in tape.steps}
    found: dict[str, tuple] = {}

    def visit(name: str) -> None:
        if name in found or name in tape.input_names:
            if name in tape.input_names and name not in tape.ints and name not in tape.bits:  # (bits: a mask)
                raise UnsupportedOperationError(f"indexing at {call_site()} with labels computed from a data "
                                                "argument that is not integer (the data stays a constant)")
            return
        step = producers[name]
        for a in step[2]:
            if isinstance(a, str):
                visit(a)
        found[name] = step
    visit(t.name)
    return tuple(found.values())


def _data_index(indices) -> bool:
    """Whether ``indices`` is traced from data alone (gathered through a mask, or refused there
    naming why), as ``x[indices]`` would read it."""
    return isinstance(indices, Tracer) and _holds_int_data(indices.tape, indices)


def _indexed(items: list) -> set:
    """The axes of the indexed array that ``items`` (no Ellipsis) index with an int or an array."""
    found, a = set(), 0
    for i in items:
        if i is None:
            continue
        if not isinstance(i, slice):
            found.add(a)
        a += 1
    return found


# -- gathers with constant indices -------------------------------------------------------------


def _in_order(a, indices, axis, along: bool = False):
    """``a`` taken in the order of an argsort of traced keys (jacc.numpy_api.orders.Order), found
    at each call; None where ``indices`` is not such an order or ``a`` does not fit it."""
    take = getattr(indices, "take_from", None)
    return None if take is None or axis is None else take(a, axis, along)


@implements(np.take, method="take")
def _take(a, indices, axis=None, out=None, mode="raise"):
    _refuse("numpy.take", out=out)
    taken = _in_order(a, indices, 0 if axis is None and np.ndim(a) == 1 else axis)  # (in range: any mode)
    if taken is not None:
        return taken
    if _data_index(indices) and mode in ("raise", None):
        return a.reshape(-1)[indices] if axis is None else a[_along(_one_axis(a, axis, "numpy.take"), a.ndim, indices)]
    idx = _indices(indices, "numpy.take")
    if axis is None:
        return a.reshape(-1)[_moded(idx, a.size, mode, "numpy.take")]
    k = _one_axis(a, axis, "numpy.take")
    return a[_along(k, a.ndim, _moded(idx, a.shape[k], mode, "numpy.take"))]


@implements(np.take_along_axis)
def _take_along_axis(arr, indices, axis=-1):
    taken = _in_order(arr, indices, axis, along=True)
    if taken is not None:
        return taken
    if _data_index(indices) and axis is not None and np.ndim(indices) == np.ndim(arr):
        k = _one_axis(arr, axis, "numpy.take_along_axis")  # (the grid of positions, as NumPy's)
        return arr[tuple(indices if s == k else np.arange(n).reshape([-1 if s == t else 1 for t in range(arr.ndim)])
                         for s, n in enumerate(arr.shape))]
    idx = _indices(indices, "numpy.take_along_axis")
    if axis is None:
        if idx.ndim != 1:
            raise TraceError(f"numpy.take_along_axis at {call_site()}: axis=None needs 1-d indices")
        arr, axis = arr.reshape(-1), 0
    if idx.ndim != arr.ndim:
        raise TraceError(f"numpy.take_along_axis at {call_site()}: indices have {idx.ndim} dimension(s), "
                         f"the array {arr.ndim}")
    return _gather(arr, _flat_along(arr.shape, _one_axis(arr, axis, "numpy.take_along_axis"), idx))


def _padded_mask(cond: np.ndarray, n: int, what: str) -> np.ndarray:
    """A 1-d condition as a mask of length ``n`` (NumPy allows a shorter one: the rest is False)."""
    cond = cond.ravel()
    if cond.size > n and cond[n:].any():
        raise TraceError(f"{what} at {call_site()}: the condition selects beyond the axis of size {n}")
    out = np.zeros(n, bool)
    out[:min(n, cond.size)] = cond[:n]
    return out


@implements(method="compress")
def _compress_method(a, condition, axis=None, out=None):
    """``a.compress(condition, axis)``: the array first, unlike ``np.compress`` (registered with the
    function's order, the method read the array as the condition: a wrong value and a zero Jacobian)."""
    return _compress(condition, a, axis, out)


@implements(np.compress)
def _compress(condition, a, axis=None, out=None):
    _refuse("numpy.compress", out=out)
    if not _traced(a):  # a traced condition on a constant array
        return np.compress(_mask(condition, "numpy.compress"), a, axis=axis)
    cond = _mask(condition, "numpy.compress")
    if cond.ndim != 1:
        raise TraceError(f"numpy.compress at {call_site()}: the condition must be 1-d")
    if axis is None:
        a, axis = a.reshape(-1), 0
    k = _one_axis(a, axis, "numpy.compress")
    return a[_along(k, a.ndim, _padded_mask(cond, a.shape[k], "numpy.compress"))]


@implements(np.extract)
def _extract(condition, arr):
    cond = _mask(condition, "numpy.extract")
    if not _traced(arr):
        return np.extract(cond, arr)
    if cond.size != arr.size:
        raise TraceError(f"numpy.extract at {call_site()}: condition of size {cond.size} for an array of "
                         f"size {arr.size}")
    return arr.reshape(-1)[cond.ravel()]


@implements(np.where)
def _where(condition, x=None, y=None, /):
    if x is None and y is None:
        return np.nonzero(_mask(condition, "numpy.where"))
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    mask = _mask(condition, "numpy.where")
    if not (_traced(x) or _traced(y)):
        return np.where(mask, x, y)
    note_hidden_nonfinite(mask, x, y)
    return array_result(_tape_of(x, y).record("where", [mask, x, y]), x, y)


@implements(np.select)
def _select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):  # the first true condition wins
        out = np.where(_mask(cond, "numpy.select"), choice, out)
    shape = np.broadcast_shapes(*[np.shape(c) for c in list(condlist) + list(choicelist)], np.shape(default))
    return out if np.shape(out) == shape else np.broadcast_to(out, shape)


@implements(np.choose, method="choose")
def _choose(a, choices, out=None, mode="raise"):
    _refuse("numpy.choose", out=out)
    idx = _indices(a, "numpy.choose")
    if _traced(choices):  # one array whose first axis lists the choices
        choices = [choices[i] for i in range(choices.shape[0])]
    choices = list(choices)
    idx = _moded(idx, len(choices), mode, "numpy.choose")
    if idx.size and (idx.min() < 0 or idx.max() >= len(choices)):
        raise TraceError(f"numpy.choose at {call_site()}: an index is out of range for {len(choices)} choices")
    shape = np.broadcast_shapes(idx.shape, *[np.shape(c) for c in choices])
    stacked = np.stack([np.broadcast_to(c, shape) for c in choices])
    grid = np.indices(shape, sparse=True) if shape else ()
    return stacked[(np.broadcast_to(idx, shape),) + tuple(grid)]


# -- value-dependent: orders, positions and quantiles ----------------------------------------


def _order(x: np.ndarray, axis: int) -> np.ndarray:
    return np.argsort(x, axis=axis, kind="stable")


def _sorted_here(a, k: int, what: str):
    """``a`` sorted along axis ``k`` as a free gather by the traced point's permutation (the trace
    becomes value-dependent): where the order is read anyway, or a sort too long to record."""
    return _gather(a, _flat_along(a.shape, k, _order(_value(a, what), k)))


@implements(np.partition)  # (not the method: ndarray.partition works in place, see numpy_api.writes)
def _partition(a, kth, axis=-1, kind="introselect", order=None):
    """The elements rearranged so that each kth one sits where a sort puts it: a gather by
    ``argpartition``'s permutation, read at the traced point (NumPy leaves the order on either
    side of a kth element unspecified; this is argpartition's)."""
    _refuse("numpy.partition", order=order)
    if axis is None:
        a, axis = a.reshape(-1), 0
    k = _one_axis(a, axis, "numpy.partition")
    perm = np.argpartition(_value(a, "numpy.partition (its permutation)"), kth, axis=k, kind=kind)
    return _gather(a, _flat_along(a.shape, k, perm))


@implements(np.argpartition, method="argpartition")
def _argpartition(a, kth, axis=-1, kind="introselect", order=None):
    return np.argpartition(_value(a, "numpy.argpartition"), kth, axis=axis, kind=kind, order=order)


@implements(np.insert)
def _insert(arr, obj, values, axis=None):
    """NumPy's insert run on position codes (arr's flat positions, and −1, −2, … for the
    values as NumPy broadcasts them), then one gather from arr and values side by side: every
    entry of the result is a copy, so its partial is a free selection."""
    if _traced(obj):
        raise TraceError(f"numpy.insert at {call_site()}: the insertion positions are traced; pass constants")
    codes = np.arange(np.size(arr), dtype=float).reshape(np.shape(arr))
    value_codes = -1.0 - np.arange(np.size(values), dtype=float).reshape(np.shape(values))
    out = np.insert(codes, obj, value_codes, axis=axis)
    positions = np.where(out >= 0, out, np.size(arr) - 1.0 - out)
    both = np.concatenate([np.reshape(arr, (-1,)), np.reshape(np.asarray(values, float) if not _traced(values)
                                                              else values, (-1,))])
    return _gather(both, positions)


@implements(np.lexsort)
def _lexsort(keys, axis=-1):
    if isinstance(keys, (tuple, list)):
        keys = [_value(k, "numpy.lexsort") for k in keys]
    return np.lexsort(_value(keys, "numpy.lexsort"), axis=axis)


@implements(np.unique)
def _unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True,
            sorted=True):
    """The distinct values (rows along ``axis``) as a gather of their first occurrences, which
    NumPy's ``return_index`` gives at the traced point (value-dependent); the indices, inverse
    and counts it returns are constants."""
    kw = {} if sorted is True else {"sorted": sorted}  # (NumPy ≥ 2.3 only)
    found = np.unique(_value(ar, "numpy.unique"), True, return_inverse, return_counts, axis, equal_nan=equal_nan, **kw)
    first = found[1]
    if axis is None:
        values = _gather(ar, first)
    else:
        values = np.take(ar, first, axis=axis)
    extra = [first] if return_index else []
    extra += list(found[2:])
    return tuple([values] + extra) if extra else values


def _both(ar1, ar2):
    """Both arrays' values in one vector, ``ar1``'s first (as NumPy's set functions join them)."""
    return np.concatenate([np.reshape(ar1, (-1,)), np.reshape(ar2, (-1,))])


@implements(np.union1d)
def _union1d(ar1, ar2):
    """The distinct values of both, sorted (NumPy's own definition): a value in both reads ``ar1``'s."""
    return np.unique(_both(ar1, ar2))


@implements(np.setdiff1d)
def _setdiff1d(ar1, ar2, assume_unique=False):
    """The distinct values of ``ar1`` not in ``ar2``, sorted: a gather from ``ar1`` (value-dependent)."""
    a = np.reshape(ar1, (-1,)) if assume_unique else np.unique(ar1)
    return a[~np.isin(_value(a, "numpy.setdiff1d"), _value(ar2, "numpy.setdiff1d"))]


@implements(np.intersect1d)
def _intersect1d(ar1, ar2, assume_unique=False, return_indices=False):
    """The sorted values in both, read from ``ar1`` (where they are equal, either would do; JAX's
    choice may differ); with ``return_indices``, NumPy's indices (constants)."""
    v1, v2 = _value(ar1, "numpy.intersect1d"), _value(ar2, "numpy.intersect1d")
    common, i1, i2 = np.intersect1d(v1, v2, assume_unique=assume_unique, return_indices=True)
    values = _gather(ar1, i1) if isinstance(ar1, Tracer) else common
    return (values, i1, i2) if return_indices else values


@implements(np.setxor1d)
def _setxor1d(ar1, ar2, assume_unique=False):
    """The sorted values in exactly one of the two, as NumPy finds them: a gather from both."""
    if not assume_unique:
        ar1, ar2 = np.unique(ar1), np.unique(ar2)
    both = _both(ar1, ar2)
    both = _sorted_here(both, 0, "numpy.setxor1d") if _traced(both) else np.sort(both)
    v = _value(both, "numpy.setxor1d")
    flag = np.concatenate([[True], v[1:] != v[:-1], [True]])
    return both[flag[1:] & flag[:-1]]


_RESULTS = {name: type(getattr(np, name)(np.zeros(1))) for name in ("unique_all", "unique_counts", "unique_inverse")}


@implements(np.unique_values)
def _unique_values(x):
    """NumPy's distinct values in NumPy's order, each gathered from its first occurrence."""
    v = _value(x, "numpy.unique_values")
    want = np.unique_values(v)
    found, first = np.unique(v, return_index=True, equal_nan=False)
    if not np.array_equal(want, found, equal_nan=True):  # (an unsorted order: find each value)
        first = first[np.searchsorted(found, want)]
    return _gather(x, first)


def _unique_result(name: str, flags: dict):
    def handler(x):
        return _RESULTS[name](*np.unique(x, **flags, equal_nan=False))
    handler.__name__ = name
    return implements(getattr(np, name))(handler)


_unique_result("unique_counts", {"return_counts": True})
_unique_result("unique_inverse", {"return_inverse": True})
_unique_result("unique_all", {"return_index": True, "return_inverse": True, "return_counts": True})


@implements(np.trim_zeros)
def _trim_zeros(filt, trim="fb", axis=None):
    """A slice without the leading and/or trailing zeros, found at the traced point, as NumPy's."""
    if not isinstance(trim, str) or trim.lower() not in ("fb", "bf", "f", "b"):
        raise ValueError(f"unexpected character(s) in `trim`: {trim!r}")
    trim = trim.lower()
    nd = np.ndim(filt)
    axes = range(nd) if axis is None else _axes_of(axis, nd, "numpy.trim_zeros")
    if not axes:
        return filt
    nonzero = np.argwhere(_value(filt, "numpy.trim_zeros"))
    if nonzero.size == 0:
        start = stop = [0] * nd
    else:
        start = nonzero.min(axis=0) if "f" in trim else [None] * nd
        stop = nonzero.max(axis=0) + 1 if "b" in trim else [None] * nd
    kept = filt[tuple(slice(start[k], stop[k]) if k in axes else slice(None) for k in range(nd))]
    if np.size(kept) < np.size(filt) and isinstance(filt, Tracer):
        warn_tie("numpy.trim_zeros dropped entries of a traced array that are exactly 0")
    return kept


def _positions_like(x) -> np.ndarray:
    """Each element's flat position in ``x`` (C order), as integers of ``x``'s item size, so that
    byte strides meant for ``x`` step through them element for element."""
    size = np.dtype(getattr(x, "dtype", np.float64)).itemsize
    return np.arange(np.size(x), dtype=np.dtype(f"i{size}")).reshape(np.shape(x))


@implements(np.lib.stride_tricks.sliding_window_view)
def _sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    """The windows as a gather of the positions NumPy's own windows take from ``x``'s positions:
    read-only, as NumPy's (``writeable=True`` is refused: writes through it would change ``x``)."""
    if writeable:
        raise UnsupportedOperationError(
            f"numpy.lib.stride_tricks.sliding_window_view(..., writeable=True) at {call_site()}: writes through "
            "the windows would change x, which a trace cannot follow; take the read-only windows")
    pos = np.lib.stride_tricks.sliding_window_view(_positions_like(x), window_shape, axis)
    windows = _gather(x, pos)
    windows.tape.lend(x.name, windows, "sliding_window_view")
    return windows


def _as_strided(original, bound):
    """``as_strided`` of a traced array: the positions NumPy's strides take in ``x`` (laid out in
    C order, as ``x.strides`` reports), gathered; a read outside ``x`` is refused."""
    x, shape, strides = bound.arguments["x"], bound.arguments["shape"], bound.arguments["strides"]
    if not isinstance(x, Tracer):
        return original(**bound.arguments)
    pos = original(_positions_like(x), shape, strides)
    if pos.size and (pos.min() < 0 or pos.max() >= x.size):
        raise TraceError(f"numpy.lib.stride_tricks.as_strided at {call_site()} reads outside x (shape {x.shape}, "
                         f"strides {x.strides}): the shape and strides must stay within it")
    windows = _gather(x, np.array(pos))
    x.tape.lend(x.name, windows, "as_strided")
    return windows


def _nditer(original, *args, **kwargs):
    raise UnsupportedOperationError(
        f"numpy.nditer over a traced array at {call_site()} is not supported by jacc's tracer (NumPy's iterator "
        "hands out plain memory); iterate with `for v in x.ravel():`, `for i in np.ndindex(x.shape): x[i]`, "
        "or write the loop's work as array operations")


# eager: NumPy's as_strided reads x.__array_interface__, and nditer asks for writable memory, which
# no conversion of a traced array serves (their own errors named neither)
swap_during_traces("numpy.lib.stride_tricks", {"as_strided": replacement(_as_strided)}, eager=True)
swap_during_traces("numpy", {"nditer": routed(_nditer)}, eager=True)


implements(np.nonzero, method="nonzero")(lambda a: np.nonzero(_value(a, "numpy.nonzero")))
implements(np.flatnonzero)(lambda a: np.flatnonzero(_value(a, "numpy.flatnonzero")))
implements(np.argwhere)(lambda a: np.argwhere(_value(a, "numpy.argwhere")))
implements(np.count_nonzero)(
    lambda a, axis=None, *, keepdims=False: np.count_nonzero(_value(a, "numpy.count_nonzero"), axis=axis,
                                                              keepdims=keepdims))


@implements(np.searchsorted, method="searchsorted")
def _searchsorted(a, v, side="left", sorter=None):
    """Insertion positions: integers read from the values (the trace becomes value-dependent)."""
    return np.searchsorted(_value(a, "numpy.searchsorted"), _value(v, "numpy.searchsorted"), side=side,
                           sorter=None if sorter is None else _indices(sorter, "numpy.searchsorted"))


@implements(np.bincount)
def _bincount(x, /, weights=None, minlength=0):
    """Counts (constants) or, with traced ``weights``, their sums per bin: a scatter-add, the
    gather's adjoint (no multiplications). The bins ``x`` must be constant integers."""
    if _data_index(x):  # labels passed as data
        if x.ndim == 1 and (weights is None or np.shape(weights) == x.shape) and _within(x, minlength):
            sums = scatter_by_mask((int(minlength),), x, 1.0 if weights is None else weights, "numpy.bincount",
                                   lowest=0)
            if weights is None:  # (counts, integers as NumPy's, at most one per label)
                x.tape.ints[sums.name] = float(max(x.size, 1))
            return sums
        # (counts alone, or labels beyond minlength: the result's length is the labels' largest value)
        x = _value(x, "numpy.bincount's bins, labels passed as data (they stay data with a minlength above "
                      "every label)")
    elif _traced(x):
        raise TraceError(f"numpy.bincount at {call_site()}: the bins are traced values; pass constant "
                         "non-negative integers (the weights may be traced)")
    idx = np.asarray(x)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu") or (idx.size and idx.min() < 0):
        return np.bincount(idx, minlength=minlength)  # NumPy's own error for bad bins
    size = max(int(idx.max()) + 1 if idx.size else 0, _int(minlength, "minlength"))
    if not _traced(weights):
        return np.bincount(idx, weights=weights, minlength=minlength)
    if np.shape(weights) != idx.shape:
        raise ValueError("The weights and list don't have the same length.")
    return _scatter(weights, idx, size)


def _within(labels: Tracer, minlength) -> bool:
    """Whether traced integer ``labels`` lie in [0, minlength) (a bincount of ``minlength`` bins)."""
    n = _int(minlength, "minlength")
    v = labels.value
    return n > 0 and (not v.size or (v.min() >= 0 and v.max() < n))


@implements(np.digitize)
def _digitize(x, bins, right=False):
    return np.digitize(_value(x, "numpy.digitize"), _value(bins, "numpy.digitize"), right=right)


# -- examples -----------------------------------------------------------------------------------


def _x(r, shape=(3, 4)):
    return r.normal(size=shape)


case("numpy.partition", lambda xp: lambda x: xp.partition(x, 2, axis=-1), lambda r: (_x(r),), structures=FREE,
     note="argpartition's permutation, read at the traced point", jax=False)
case("numpy.partition", lambda xp: lambda x: xp.partition(x, (0, 3), axis=None), lambda r: (_x(r),), structures=FREE,
     variant="several kth, flattened", jax=False)
case("numpy.insert", lambda xp: lambda x, v: xp.insert(x, 1, v), lambda r: (_x(r, (4,)), _x(r, ())), argnums=(0, 1),
     structures=FREE)
case("numpy.insert", lambda xp: lambda x, v: xp.insert(x, np.array([0, 2, 2]), v, axis=1),
     lambda r: (_x(r), _x(r, (3, 1))),
     argnums=(0, 1), structures=FREE, variant="several positions, broadcast values, axis")
case("numpy.insert", lambda xp: lambda x: xp.insert(x, slice(0, 2), 7.0, axis=0), lambda r: (_x(r),),
     structures=FREE, variant="a slice, a constant value")
case("numpy.bincount", lambda xp: lambda w: xp.bincount(np.array([0, 3, 1, 3, 3, 0]), weights=w, minlength=6),
     lambda r: (_x(r, (6,)),), structures=FREE,
     note="constant bins, traced weights: a scatter-add (no multiplications); bins passed as data with "
          "minlength above them: a one-hot mask's product (docs/execution.md)")
case("numpy.unique", lambda xp: lambda x: xp.unique(xp.concatenate([x, x[:2]])), lambda r: (_x(r, (5,)),),
     structures=FREE, note="a gather of the first occurrences, read at the traced point", jax=False)
case("numpy.unique", lambda xp: lambda x: xp.unique(xp.concatenate([x, x[:1]]), axis=0, return_counts=True)[0],
     lambda r: (_x(r, (4, 2)),), variant="rows, return_counts", structures=FREE, jax=False)
case("numpy.union1d", lambda xp: lambda a, b: xp.union1d(a, b), lambda r: (_x(r, (4,)), _x(r, (3,))), argnums=(0, 1),
     structures=FREE, note="NumPy's unique of both: a value in both reads the first argument's", jax=False)
case("numpy.setdiff1d", lambda xp: lambda a: xp.setdiff1d(a, a[:2]), lambda r: (_x(r, (5,)),), structures=FREE,
     note="a gather from the first argument, read at the traced point", jax=False)
case("numpy.intersect1d", lambda xp: lambda a, b: xp.intersect1d(a, xp.concatenate([b, a[1:3]])),
     lambda r: (_x(r, (5,)), _x(r, (2,))), argnums=(0, 1), structures=FREE,
     note="the common values read from the first argument", jax=False)
_JAX_UNIQUE = "JAX's unique functions give a zero derivative; the values here are a gather of the input"
case("numpy.setxor1d", lambda xp: lambda a, b: xp.setxor1d(a, xp.concatenate([b, a[:2]])),
     lambda r: (_x(r, (5,)), _x(r, (3,))), argnums=(0, 1), structures=FREE, jax=False, note=_JAX_UNIQUE)
case("numpy.unique_values", lambda xp: lambda x: xp.unique_values(xp.concatenate([x, x[:2]])), lambda r: (_x(r, (5,)),),
     structures=FREE, jax=False, note=_JAX_UNIQUE)
case("numpy.unique_counts", lambda xp: lambda x: xp.unique_counts(xp.concatenate([x, x[:2]])).values,
     lambda r: (_x(r, (5,)),), structures=FREE, jax=False,
     note="values a gather; counts, indices and inverse constants; " + _JAX_UNIQUE)
case("numpy.unique_all", lambda xp: lambda x: xp.unique_all(x[::-1]).values * 2.0, lambda r: (_x(r, (2, 3)),),
     jax=False, note=_JAX_UNIQUE)
case("numpy.unique_inverse", lambda xp: lambda x: xp.unique_inverse(x).values, lambda r: (_x(r, (4,)),),
     structures=FREE, jax=False, note=_JAX_UNIQUE)
case("numpy.trim_zeros", lambda xp: lambda x: xp.trim_zeros(xp.concatenate([xp.zeros(2), x, xp.zeros(1)]), "b"),
     lambda r: (_x(r, (4,)),), structures=FREE, jax=False, note="a slice found at the traced point")
case("numpy.lib.stride_tricks.sliding_window_view",
     lambda xp: lambda x: np.lib.stride_tricks.sliding_window_view(x, (2, 3)).sum(axis=(-1, -2)),
     lambda r: (_x(r, (3, 5)),), structures=FREE, jax=False,
     note="read-only windows, gathered (writeable=True is refused); JAX has none")
case("numpy.lib.stride_tricks.as_strided",
     lambda xp: lambda x: np.lib.stride_tricks.as_strided(x, shape=(3, 3), strides=(x.strides[0],) * 2) ** 2,
     lambda r: (_x(r, (5,)),), jax=False,
     note="the positions its strides take in x, laid out in C order (x.strides), gathered; writes through "
          "it are refused, reads outside x too; JAX has none")
case("numpy.lexsort", lambda xp: lambda x: x[xp.lexsort((x, xp.round(x)))], lambda r: (_x(r, (6,)),),
     structures=FREE, note="the order read at the traced point", jax=False)
case("numpy.lexsort", lambda xp: lambda x: x[xp.lexsort([x])] * xp.array([x[0], 1.0, 1.0, 1.0, 1.0, 1.0]),
     lambda r: (_x(r, (6,)),), jax=False,
     variant="keys in a list, beside np.array of traced values (NumPy's constructors replaced)")
case("numpy.bincount", lambda xp: lambda w: xp.bincount(np.array([2, 0, 2]), weights=w ** 2),
     lambda r: (_x(r, (3,)),), variant="squared weights")
_SAME = FREE | {"diag"}
_IDX = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])
_MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

case("ndarray.__getitem__", lambda xp: lambda x: x[1:, ::2], lambda r: (_x(r),), structures=FREE)
case("ndarray.__getitem__", lambda xp: lambda x: x[np.array([2, 0, 2])], lambda r: (_x(r),), structures=FREE,
     variant="repeated rows", note="integer arrays and masks: a lazy gather, never a one-hot product")
case("ndarray.__getitem__", lambda xp: lambda x: x[1:, np.array([3, 0, 3])], lambda r: (_x(r),), structures=FREE,
     variant="slice and index array")
case("ndarray.__getitem__", lambda xp: lambda x: x[np.array([0, 2]), :, np.array([-1, 3])],
     lambda r: (_x(r, (3, 4, 5)),), structures=FREE, variant="index arrays apart")
case("ndarray.__getitem__", lambda xp: lambda x: x[:, np.array([[0, 1], [2, 2]]), 1:4],
     lambda r: (_x(r, (2, 3, 5)),), structures=FREE, variant="2-d index array")
case("ndarray.__getitem__", lambda xp: lambda x: x[_MASK], lambda r: (_x(r),), structures=FREE,
     variant="boolean mask")
case("ndarray.__getitem__", lambda xp: lambda x: xp.tanh(x)[None, np.array([1, 1]), 2:] * x[0, 0], lambda r: (_x(r),),
     variant="repeated index after tanh")

case("numpy.take", lambda xp: lambda x: xp.take(x, np.array([5, 0, 5, 11])), lambda r: (_x(r),), structures=FREE)
case("numpy.take", lambda xp: lambda x: xp.take(x, _IDX, axis=-1), lambda r: (_x(r),), structures=FREE,
     variant="axis=-1, 2-d indices")
case("numpy.take", lambda xp: lambda x: x.take(np.array([1, 1]), axis=0), lambda r: (_x(r, (2, 3, 2)),),
     structures=FREE, variant="method")
case("numpy.take", lambda xp: lambda x: xp.take(x, np.array([-9, 0, 7, 26]), mode="wrap"), lambda r: (_x(r),),
     structures=FREE, variant="mode='wrap'", note="mode='wrap' and 'clip' move constant indices as NumPy does")
case("numpy.take", lambda xp: lambda x: xp.take(x, np.array([[-2, 1], [3, 9]]), axis=1, mode="clip"),
     lambda r: (_x(r),), structures=FREE, variant="mode='clip'")
case("numpy.take_along_axis", lambda xp: lambda x: xp.take_along_axis(x, _IDX, axis=0), lambda r: (_x(r),),
     structures=FREE)
case("numpy.take_along_axis", lambda xp: lambda x: xp.take_along_axis(x, _IDX.T[:, :1], axis=-1),
     lambda r: (_x(r, (4, 3)),), structures=FREE, variant="broadcast indices")
case("numpy.compress", lambda xp: lambda x: xp.compress(np.array([True, False, True]), x, axis=0),
     lambda r: (_x(r),), structures=FREE)
case("numpy.compress", lambda xp: lambda x: xp.compress(np.array([False, True]), x, axis=1),
     lambda r: (_x(r),), structures=FREE, variant="short condition")
case("numpy.compress", lambda xp: lambda x: xp.compress(np.array([1, 0, 0, 1, 1]), x), lambda r: (_x(r),),
     structures=FREE, variant="axis=None")
case("numpy.extract", lambda xp: lambda x: xp.extract(_MASK, x), lambda r: (_x(r),), structures=FREE)

case("numpy.where", lambda xp: lambda a, b: xp.where(np.array([True, False, True, False]), a, b),
     lambda r: (_x(r), _x(r)), argnums=(0, 1))
case("numpy.where", lambda xp: lambda x: xp.where(x > 0, x, 0.1 * x), lambda r: (_x(r),),
     variant="leaky relu")
case("numpy.where", lambda xp: lambda x, y: xp.where(x - y, xp.sin(x), y), lambda r: (_x(r), _x(r)),
     argnums=(0, 1), variant="traced condition",
     note="a traced condition is read at the traced point (nonzero), like a comparison")
case("numpy.select", lambda xp: lambda x, y: xp.select([_MASK, ~_MASK[0]], [x, y[0]], 0.5),
     lambda r: (_x(r), _x(r)), argnums=(0, 1), note="constant conditions (a traced one is read at the point)")
case("numpy.select", lambda xp: lambda x, d: xp.select([x > 0.5, x < -0.5], [x, 2 * x], d),
     lambda r: (_x(r), _x(r, (4,))), argnums=(0, 1), variant="traced default")
case("numpy.choose", lambda xp: lambda a, b, c: xp.choose(_IDX, [a, b, c]),
     lambda r: (_x(r, (2, 4)), _x(r, (4,)), _x(r, (2, 1))), argnums=(0, 1, 2), structures=FREE)
case("numpy.choose", lambda xp: lambda a, b: xp.choose(np.array([[0, 4, -1, 2], [1, -3, 0, 5]]), [a, b], mode="wrap"),
     lambda r: (_x(r, (2, 4)), _x(r, (4,))), argnums=(0, 1), structures=FREE, variant="mode='wrap'")
case("numpy.clip", lambda xp: lambda x: xp.clip(x, -0.5, 0.5), lambda r: (_x(r),))
case("numpy.clip", lambda xp: lambda x: xp.clip(x, np.array([-1.0, -0.5, 0.0, 0.5]), None), lambda r: (_x(r),),
     variant="array bound", note="at a bound the derivative is 1 (docs/conventions.md)")

case("numpy.nonzero", lambda xp: lambda x: x[xp.nonzero(x > 0)], lambda r: (_x(r),), structures=FREE,
     jax=False, note="JAX needs a static size= for nonzero")
case("numpy.searchsorted", lambda xp: lambda x: x[xp.searchsorted(xp.sort(x), np.array([-0.5, 0.5]))],
     lambda r: (_x(r, (6,)),), note="integer positions read from the values (value-dependent)")
case("ndarray.searchsorted", lambda xp: lambda x: x[xp.sort(x).searchsorted(np.array([-0.5, 0.5]))],
     lambda r: (_x(r, (6,)),), note="as numpy.searchsorted")
case("numpy.digitize", lambda xp: lambda x: xp.take(x, xp.digitize(np.array([-0.5, 0.5]), xp.sort(x))),
     lambda r: (_x(r, (6,)),))

DATA_GATHER[0] = gather_by_mask
