"""Shape functions: reshapes, transposes, flips, rolls, tiles, pads, joins, splits and diagonals.

All are index maps. Each is composed of the lazy primitives ``reshape``, ``transpose``,
``getitem`` (basic slices, steps included), ``concatenate`` (with constant blocks: an embedding),
``stack`` and ``broadcast_to``, so its partials are free (0-multiplication) selections,
embeddings and reshapes, never dense products. ``tril``/``triu`` are masks: one ``where`` with a
constant mask, an elementwise (``diag``) partial.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..constructors import as_arrays, original, routed, swap_during_traces, traced_constructor
from ..trace import (
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _axes_of,
    _axis,
    _check_dtype,
    _copy,
    _int,
    _refuse,
    _tape_of,
    call_site,
    implements,
    lone_axis,
)
from . import FREE, case
from .gathers import _gather

# -- helpers ------------------------------------------------------------------------------------


def _traced(x) -> bool:
    return isinstance(x, Tracer)


def _record(op: str, args: list, params: dict | None = None):
    return _tape_of(*args).record(op, list(args), params)


def _axis_list(axis, ndim: int, what: str, name: str = "axis") -> list[int]:
    """``axis`` (an int or a sequence) as non-negative ints in the given order; repeats refused."""
    axes = _axis(axis, name)
    axes = axes if isinstance(axes, list) else [axes]
    out = []
    for k in axes:
        if not -ndim <= k < ndim:
            raise TraceError(f"{what} at {call_site()}: {name} {k} is out of range for {ndim} dimension(s)")
        if k % ndim in out:
            raise TraceError(f"{what} at {call_site()}: {name} {axis!r} repeats an axis")
        out.append(k % ndim)
    return out


def _need_ndim(x, lo: int, what: str) -> None:
    if np.ndim(x) < lo:
        raise TraceError(f"{what} at {call_site()} needs an array with at least {lo} dimension(s), "
                         f"got shape {np.shape(x)}")


def _slice_along(x, axis: int, start, stop, step=None):
    """``x[..., start:stop:step, ...]`` on one axis: a lazy selection."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def _concat(parts: list, axis: int):
    """Concatenate traced and constant blocks (a constant block makes the partial an embedding)."""
    if len(parts) == 1:
        return parts[0]
    if not any(_traced(p) for p in parts):  # e.g. a constant row of a numpy.block
        return np.concatenate(parts, axis=axis)
    return _record("concatenate", parts, {"axis": axis})


def _reshape(x, shape):
    shape = [int(n) for n in shape]
    if not _traced(x):
        return np.reshape(x, shape)
    return x if list(x.shape) == shape else x.reshape(shape)


def _broadcast(x, shape):
    shape = [int(n) for n in shape]
    if not _traced(x):
        return np.broadcast_to(x, shape)
    return x if list(x.shape) == shape else _record("broadcast_to", [x], {"shape": shape})


def _const_ints(v, what: str, name: str) -> np.ndarray:
    """A constant integer array argument (``repeats``, ``pad_width``)."""
    if _traced(v):
        raise UnsupportedOperationError(f"{what} with a traced {name} at {call_site()}: {name} must be constant")
    a = np.asarray(v)
    if a.dtype.kind not in "iu" and a.size:
        raise TypeError(f"{what} at {call_site()}: {name} must be integers, got {v!r}")
    return a.astype(int)


# -- axes: expand_dims, squeeze, swapaxes, moveaxis, rollaxis, matrix_transpose -----------------


@implements(np.expand_dims)
def _expand_dims(a, axis):
    axes = _axis(axis, "axis")
    n = a.ndim + (len(axes) if isinstance(axes, list) else 1)
    new = set(_axis_list(axis, n, "numpy.expand_dims"))
    dims = iter(a.shape)
    return a.reshape([1 if k in new else next(dims) for k in range(n)])


@implements(np.swapaxes, method="swapaxes")
def _swapaxes(a, axis1, axis2):
    [i] = _axis_list(axis1, a.ndim, "numpy.swapaxes", "axis1")
    [j] = _axis_list(axis2, a.ndim, "numpy.swapaxes", "axis2")
    perm = list(range(a.ndim))
    perm[i], perm[j] = j, i
    return a if i == j else a.transpose(perm)


@implements(np.rollaxis)
def _rollaxis(a, axis, start=0):
    n = a.ndim
    [k] = _axis_list(axis, n, "numpy.rollaxis")
    s = _int(start, "start")
    if not -n <= s <= n:
        raise TraceError(f"numpy.rollaxis at {call_site()}: start {s} is out of range for {n} dimension(s)")
    s += n if s < 0 else 0  # NumPy counts a negative start from n, not n + 1
    if k < s:
        s -= 1
    if k == s:
        return a
    order = [d for d in range(n) if d != k]
    order.insert(s, k)
    return a.transpose(order)


if hasattr(np, "matrix_transpose"):
    @implements(np.matrix_transpose)
    def _matrix_transpose(x, /):
        _need_ndim(x, 2, "numpy.matrix_transpose")
        return _swapaxes(x, -1, -2)


# -- flips and rotations ------------------------------------------------------------------------


@implements(np.flip)
def _flip(m, axis=None):
    axes = _axes_of(axis, m.ndim, "numpy.flip")
    if not axes:
        return m
    index = [slice(None)] * m.ndim
    for k in axes:
        index[k] = slice(None, None, -1)
    return m[tuple(index)]


@implements(np.fliplr)
def _fliplr(m):
    _need_ndim(m, 2, "numpy.fliplr")
    return _flip(m, 1)


@implements(np.flipud)
def _flipud(m):
    _need_ndim(m, 1, "numpy.flipud")
    return _flip(m, 0)


@implements(np.rot90)
def _rot90(m, k=1, axes=(0, 1)):
    if not isinstance(axes, (tuple, list)) or len(axes) != 2:
        raise TraceError(f"numpy.rot90 at {call_site()}: axes must name exactly 2 axes, got {axes!r}")
    _need_ndim(m, 2, "numpy.rot90")
    a0, a1 = _axis_list(axes, m.ndim, "numpy.rot90", "axes")
    k = _int(k, "k") % 4
    if k == 0:
        return m
    if k == 2:
        return _flip(m, [a0, a1])
    swap = list(range(m.ndim))
    swap[a0], swap[a1] = a1, a0
    # as NumPy: a quarter turn is a flip of one axis and a swap of the two
    return _flip(m, a1).transpose(swap) if k == 1 else _flip(m.transpose(swap), a1)


# -- roll, tile, repeat -------------------------------------------------------------------------


@implements(np.roll)
def _roll(a, shift, axis=None):
    if _traced(shift):
        raise UnsupportedOperationError(f"numpy.roll with a traced shift at {call_site()}: shift must be constant")
    if axis is None:
        return _reshape(_roll(a.reshape(-1), shift, 0), a.shape)
    shifts = [_int(s, "shift") for s in np.atleast_1d(np.asarray(shift, dtype=object)).tolist()]
    axes = [_int(k, "axis") for k in np.atleast_1d(np.asarray(axis, dtype=object)).tolist()]
    if len(shifts) != len(axes) and 1 not in (len(shifts), len(axes)):
        raise TraceError(f"numpy.roll at {call_site()}: shift {shift!r} and axis {axis!r} have different lengths")
    n = max(len(shifts), len(axes))  # one of them may be a single value, broadcast as NumPy does
    total = dict.fromkeys(range(a.ndim), 0)
    for s, k in zip(shifts * (n // len(shifts)), axes * (n // len(axes))):
        [k] = _axis_list(k, a.ndim, "numpy.roll")
        total[k] += s  # shifts of one axis add up
    x = a
    for k, s in total.items():
        n = a.shape[k]
        s = s % n if n else 0
        if s:  # a permutation along axis k: one gather (two joined slices would cost a dense partial)
            x = x[(slice(None),) * k + ((np.arange(n) - s) % n,)]
    return x


@implements(np.tile)
def _tile(A, reps):
    reps = [_int(r, "reps") for r in np.atleast_1d(np.asarray(reps, dtype=object)).tolist()]
    if any(r < 0 for r in reps):
        raise TraceError(f"numpy.tile at {call_site()}: reps {reps} has a negative entry")
    d = max(len(reps), A.ndim)
    reps = [1] * (d - len(reps)) + reps
    shape = [1] * (d - A.ndim) + list(A.shape)
    if all(r == 1 for r in reps):
        return _reshape(A, shape)
    if 0 in reps:  # an empty result: slice it out of the tiling with those reps 1
        x = _tile(A, [max(r, 1) for r in reps])
        return x[tuple(slice(0, 0) if r == 0 else slice(None) for r in reps)]
    # a new axis of each rep count before each axis, broadcast along it, then merged: free maps
    x = _reshape(A, [n for s in shape for n in (1, s)])
    x = _broadcast(x, [n for r, s in zip(reps, shape) for n in (r, s)])
    return _reshape(x, [r * s for r, s in zip(reps, shape)])


def _repeat_each(x, axis: int, count: int):
    """Each entry along ``axis`` repeated ``count`` times (reshape, broadcast, reshape)."""
    if count == 1:
        return x
    s = list(x.shape)
    x = _broadcast(_reshape(x, s[:axis + 1] + [1] + s[axis + 1:]), s[:axis + 1] + [count] + s[axis + 1:])
    return _reshape(x, s[:axis] + [s[axis] * count] + s[axis + 1:])


@implements(np.repeat, method="repeat")
def _repeat(a, repeats, axis=None):
    if axis is None or lone_axis(a, axis):  # (a 0-d array repeats as one element, as NumPy does)
        a, axis = np.reshape(a, -1), 0
    [ax] = _axis_list(axis, a.ndim, "numpy.repeat")
    n = a.shape[ax]
    counts = _const_ints(repeats, "numpy.repeat", "repeats")
    if counts.ndim > 1 or counts.size not in (1, n):
        raise TraceError(f"numpy.repeat at {call_site()}: repeats of shape {counts.shape} does not fit "
                         f"an axis of length {n}")
    if np.any(counts < 0):
        raise TraceError(f"numpy.repeat at {call_site()}: repeats {repeats!r} has a negative entry")
    counts = np.broadcast_to(counts.reshape(-1), (n,)).tolist()
    # runs of equal counts share one broadcast: per-element counts cost one slice per run
    runs, lo = [], 0
    for i in range(1, n + 1):
        if i == n or counts[i] != counts[lo]:
            runs.append((lo, i, counts[lo]))
            lo = i
    parts = [_repeat_each(a if (lo, hi) == (0, n) else _slice_along(a, ax, lo, hi), ax, c)
             for lo, hi, c in runs if c]
    return _concat(parts, ax) if parts else _slice_along(a, ax, 0, 0)


# -- pad ----------------------------------------------------------------------------------------


def _pairs(v, ndim: int, what: str, name: str, cast) -> np.ndarray:
    """NumPy's (before, after) per axis from a scalar, a pair or one pair per axis."""
    a = np.asarray(v)
    try:
        return cast(np.broadcast_to(a, (ndim, 2)) if a.ndim < 2 or a.shape != (ndim, 2) else a)
    except ValueError:
        raise TraceError(f"{what} at {call_site()}: {name} of shape {a.shape} does not fit {ndim} "
                         "axes (use a scalar, a (before, after) pair or one pair per axis)") from None


_COPYING_PADS = ("edge", "reflect", "symmetric", "wrap")  # every padded entry copies one of the array's


def _pad_by_copies(array, pad_width, mode: str, kwargs: dict):
    """``edge``/``reflect``/``symmetric``/``wrap``: NumPy pads the array's flat positions, and the
    result gathers by them (a free selection; a repeated entry's adjoint adds up)."""
    allowed = {"reflect_type"} if mode in ("reflect", "symmetric") else set()
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise UnsupportedOperationError(
            f"numpy.pad with {unknown[0]}= at {call_site()}: mode={mode!r} does not take it")
    if kwargs.get("reflect_type", "even") != "even":
        raise UnsupportedOperationError(
            f"numpy.pad with reflect_type={kwargs['reflect_type']!r} at {call_site()} is not supported by jacc's "
            "tracer; only reflect_type='even' (the default) is")
    if not _traced(array):
        return np.pad(array, pad_width, mode, **kwargs)
    positions = np.pad(np.arange(array.size, dtype=float).reshape(array.shape),
                       _const_ints(pad_width, "numpy.pad", "pad_width"), mode)
    return _gather(array, positions)


def _pad_widths(pad_width, nd: int) -> np.ndarray:
    """``pad_width`` as NumPy reads it: one non-negative (before, after) pair per axis."""
    widths = _pairs(_const_ints(pad_width, "numpy.pad", "pad_width"), nd, "numpy.pad", "pad_width",
                    lambda w: w.astype(int))
    if np.any(widths < 0):
        raise TraceError(f"numpy.pad at {call_site()}: pad_width {pad_width!r} has a negative entry")
    return widths


_STAT_PADS = {"maximum": np.max, "minimum": np.min, "mean": np.mean, "median": np.median}


def _pad_by_formula(array, pad_width, mode: str, kwargs: dict):
    """``maximum``/``minimum``/``mean``/``median`` (over ``stat_length`` entries at each end) and
    ``linear_ramp`` (from ``end_values`` to the edge): axis by axis, as NumPy pads, each block a
    traced reduction or ramp of the array padded so far (so corners come out as NumPy's)."""
    name = "stat_length" if mode in _STAT_PADS else "end_values"
    unknown = sorted(set(kwargs) - {name})
    if unknown:
        raise UnsupportedOperationError(
            f"numpy.pad with {unknown[0]}= at {call_site()}: mode={mode!r} takes only {name}=")
    given = kwargs.get(name)
    if mode in _STAT_PADS and _traced(given):
        raise UnsupportedOperationError(f"numpy.pad with a traced {name} at {call_site()}: {name} must be constant")
    if not (_traced(array) or _traced(given)):
        return np.pad(array, pad_width, mode, **kwargs)
    array = _float_padded(array, name)
    nd = array.ndim
    widths = _pad_widths(pad_width, nd)
    if mode in _STAT_PADS:
        lengths = None if given is None else _pairs(_const_ints(given, "numpy.pad", name), nd, "numpy.pad", name,
                                                     lambda v: v.astype(int))
        if lengths is not None and np.any(lengths < 1 if mode in ("maximum", "minimum") else lengths < 0):
            raise TraceError(f"numpy.pad at {call_site()}: stat_length {given!r} leaves no entry to take the "
                             f"{mode} of")
    else:
        ends = _fills(0.0 if given is None else given, nd, name)
    x = array
    for k in range(nd):
        (b, e), n = widths[k].tolist(), x.shape[k]
        if b == e == 0:
            continue
        if n == 0:
            raise TraceError(f"numpy.pad at {call_site()}: mode={mode!r} cannot pad the empty axis {k}")

        def part(lo: int, hi: int):
            return x[(slice(None),) * k + (slice(lo, hi),)]

        def block(width: int, side: int):
            shape = x.shape[:k] + (width,) + x.shape[k + 1:]
            if mode in _STAT_PADS:
                m = n if lengths is None else min(int(lengths[k][side]), n)
                ends_at = part(0, m) if side == 0 else part(n - m, n)
                return np.broadcast_to(_STAT_PADS[mode](ends_at, axis=k, keepdims=True), shape)
            edge, end = (part(0, 1) if side == 0 else part(n - 1, n)), ends[k, side]
            steps = np.arange(float(width))  # as NumPy's linspace(end, edge, width, endpoint=False)
            t = (steps if side == 0 else steps[::-1]).reshape([width if a == k else 1 for a in range(nd)])
            return (edge - end) / width * t + end

        x = _concat(([block(b, 0)] if b else []) + [x] + ([block(e, 1)] if e else []), k)
    return x


@implements(np.pad)
def _pad(array, pad_width, mode="constant", **kwargs):
    out = _padded(array, pad_width, mode, **kwargs)
    return _copy(out) if out is array else out  # (NumPy's pad always returns a new array)


def _pad_traced_fill(_original, *args, **kwargs):
    args, kwargs = as_arrays(np.pad, args, kwargs)
    return _pad(*args, **kwargs)


# NumPy dispatches np.pad on its array alone: traced fill values around a constant array come here
swap_during_traces("numpy", {"pad": routed(_pad_traced_fill)})


def _padded(array, pad_width, mode="constant", **kwargs):
    if isinstance(pad_width, dict):  # (NumPy ≥ 2.3: {axis: width or (before, after)}, other axes unpadded)
        pairs = [(0, 0)] * np.ndim(array)
        for axis, width in pad_width.items():  # (negative axes count from the end; out of range: IndexError)
            pairs[int(axis)] = tuple(np.broadcast_to(width, 2).tolist())
        pad_width = pairs
    if isinstance(mode, str) and mode in _COPYING_PADS:
        return _pad_by_copies(array, pad_width, mode, kwargs)
    if isinstance(mode, str) and (mode in _STAT_PADS or mode == "linear_ramp"):
        return _pad_by_formula(array, pad_width, mode, kwargs)
    if not (isinstance(mode, str) and mode == "constant"):
        raise UnsupportedOperationError(
            f"numpy.pad with mode={original(mode)!r} at {call_site()} is not supported by jacc's tracer; "
            "the modes "
            f"'constant' (with constant_values=), {', '.join(map(repr, _COPYING_PADS + tuple(_STAT_PADS)))} "
            "and 'linear_ramp' are")
    unknown = sorted(set(kwargs) - {"constant_values"})
    if unknown:
        raise UnsupportedOperationError(
            f"numpy.pad with {unknown[0]}= at {call_site()}: mode='constant' takes only constant_values=")
    values = kwargs.get("constant_values", 0)
    if not (_traced(array) or _traced(values)):
        return np.pad(array, pad_width, mode, **kwargs)
    x = _float_padded(array, "constant_values")
    nd = x.ndim
    widths = _pad_widths(pad_width, nd)
    fill = _fills(values, nd, "constant_values")
    # axis by axis, as NumPy: later axes' constants fill the corners
    for k in range(nd):
        (b, e), shape = widths[k].tolist(), list(x.shape)
        before = [np.broadcast_to(fill[k, 0], shape[:k] + [b] + shape[k + 1:])] if b else []
        after = [np.broadcast_to(fill[k, 1], shape[:k] + [e] + shape[k + 1:])] if e else []
        x = _concat(before + [x] + after, k)
    return x


def _float_padded(array, name: str):
    """The array that ``np.pad`` pads, refused where NumPy would round traced fill values into it."""
    if _traced(array):
        return array
    a = np.asarray(array)
    if a.dtype.kind != "f":
        raise TraceError(f"numpy.pad at {call_site()}: a traced {name} padding an array of dtype {a.dtype}: "
                         "NumPy would round the traced values to that dtype; pad a float array "
                         "(array.astype(float))")
    return a


def _fills(values, nd: int, name: str):
    """``constant_values``/``end_values`` as one (before, after) pair per axis: an (nd, 2) array,
    traced where the values are (``np.asarray`` makes a list holding traced values one array)."""
    return _pairs(np.asarray(values, dtype=float), nd, "numpy.pad", name, lambda v: v)


# -- joins --------------------------------------------------------------------------------------


def _atleast(x, n: int):
    """``x`` with at least ``n`` axes, placed as NumPy's atleast_1d/2d/3d place them."""
    s = list(np.shape(x))
    if len(s) >= n:
        return x
    if n == 3 and len(s) == 2:
        return _reshape(x, s + [1])
    if n == 3:
        return _reshape(x, [1] + (s or [1]) + [1])
    return _reshape(x, [1] * (n - len(s)) + s)


def _atleast_nd(n: int):
    def atleast(*arys):
        out = tuple(_atleast(a, n) for a in arys)
        return out[0] if len(out) == 1 else out
    atleast.__name__ = f"atleast_{n}d"
    return atleast


for _n, _f in ((1, np.atleast_1d), (2, np.atleast_2d), (3, np.atleast_3d)):
    implements(_f)(_atleast_nd(_n))


def _join(what: str, tup, axis_of, ndmin: int, dtype=None, casting="same_kind"):
    _refuse(what, casting=None if casting == "same_kind" else casting)
    arrays = [_atleast(a, ndmin) for a in tup]
    if not arrays:
        raise TraceError(f"{what} at {call_site()} needs at least one array")
    _check_dtype(what, arrays, dtype)
    return _record("concatenate", arrays, {"axis": axis_of(arrays)})


@implements(np.vstack)
def _vstack(tup, *, dtype=None, casting="same_kind"):
    return _join("numpy.vstack", tup, lambda arrays: 0, 2, dtype, casting)


@implements(np.hstack)
def _hstack(tup, *, dtype=None, casting="same_kind"):
    return _join("numpy.hstack", tup, lambda arrays: 0 if np.ndim(arrays[0]) == 1 else 1, 1, dtype, casting)


@implements(np.dstack)
def _dstack(tup):
    return _join("numpy.dstack", tup, lambda arrays: 2, 3)


@implements(np.column_stack)
def _column_stack(tup):
    cols = [_reshape(a, [-1 if np.ndim(a) else 1, 1]) if np.ndim(a) < 2 else a for a in tup]
    return _join("numpy.column_stack", cols, lambda arrays: 1, 2)


if hasattr(np, "row_stack"):
    # NumPy's row_stack is not dispatched: it warns and calls vstack. Listed here so the
    # coverage tables name it.
    implements(np.row_stack)(_vstack)


@implements(np.append)
def _append(arr, values, axis=None):
    if axis is None:
        parts = [_reshape(arr, [-1]), _reshape(values, [-1])]
        return _record("concatenate", parts, {"axis": 0})
    return _record("concatenate", [arr, values], {"axis": _int(axis, "axis")})


# np.r_[...] and np.c_[...] make each piece with the ``array`` their module imported (np.array's
# traced stand-in, then): pieces and lists holding traced values join by np.concatenate
swap_during_traces(type(np.r_).__module__, {"array": lambda _original: traced_constructor("array")})


if hasattr(np, "unstack"):
    @implements(np.unstack)
    def _unstack(x, /, *, axis=0):
        [k] = _axis_list(axis, x.ndim, "numpy.unstack")
        index = [slice(None)] * x.ndim
        return tuple(x[tuple(index[:k] + [i] + index[k + 1:])] for i in range(x.shape[k]))


def _block_depth(x, what: str) -> tuple[int, int]:
    """(list depth, largest leaf ndim) of a ``numpy.block`` argument, checked as NumPy checks it."""
    if not isinstance(x, list):
        return 0, np.ndim(x)
    if not x:
        raise TraceError(f"{what} at {call_site()}: a list is empty")
    found = [_block_depth(y, what) for y in x]
    if len({d for d, _ in found}) != 1:
        raise TraceError(f"{what} at {call_site()}: list depths are mismatched")
    return found[0][0] + 1, max(n for _, n in found)


@implements(np.block)
def _block(arrays):
    depth, most = _block_depth(arrays, "numpy.block")
    nd = max(depth, most)

    def build(x, level: int):
        if not isinstance(x, list):  # a leaf gains leading axes up to nd
            return _reshape(x, [1] * (nd - np.ndim(x)) + list(np.shape(x)))
        # the innermost lists join along the last axis, each outer level one axis further left
        return _concat([build(y, level + 1) for y in x], nd - depth + level)

    return build(arrays, 0)


@implements(np.resize)
def _resize(a, new_shape):
    shape = [_int(n, "new_shape") for n in np.atleast_1d(np.asarray(new_shape, dtype=object)).tolist()]
    if any(n < 0 for n in shape):
        raise TraceError(f"numpy.resize at {call_site()}: new_shape {new_shape!r} has a negative size")
    total, n = int(np.prod(shape)), a.size
    if n == 0 or total == 0:  # NumPy fills with zeros: a constant
        return np.zeros(shape)
    flat = a.reshape(-1)
    # the entries repeated cyclically: a tiled copy cut to size (free maps)
    flat = _tile(flat, -(-total // n)) if total > n else flat
    return _reshape(flat if total == flat.shape[0] else flat[:total], shape)


@implements(np.delete)
def _delete(arr, obj, axis=None):
    if axis is None:
        arr, axis = arr.reshape(-1), 0
    [k] = _axis_list(axis, arr.ndim, "numpy.delete")
    if _traced(obj):
        raise UnsupportedOperationError(f"numpy.delete with a traced obj at {call_site()}: obj must be constant")
    n = arr.shape[k]
    keep = np.ones(n, bool)
    o = obj if isinstance(obj, slice) else np.asarray(obj)
    if not isinstance(o, slice) and o.dtype.kind not in "biu" and o.size:
        raise TypeError(f"numpy.delete at {call_site()}: obj must be integers, a slice or a boolean mask, "
                        f"got {obj!r}")
    try:
        keep[o if isinstance(o, slice) or o.dtype == bool else o.astype(int)] = False
    except IndexError as e:
        raise TraceError(f"numpy.delete at {call_site()}: obj {obj!r} does not fit an axis of length {n} "
                         f"({e})") from None
    # the kept entries as runs of contiguous slices, joined: selections and embeddings only
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(int), [0]])))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist()))
    if runs == [(0, n)]:
        return arr
    parts = [_slice_along(arr, k, lo, hi) for lo, hi in runs]
    return _concat(parts, k) if parts else _slice_along(arr, k, 0, 0)


# -- splits -------------------------------------------------------------------------------------


def _split(ary, indices_or_sections, axis, what: str, equal: bool) -> list:
    [k] = _axis_list(axis, ary.ndim, what)
    n = ary.shape[k]
    if _traced(indices_or_sections):
        raise UnsupportedOperationError(f"{what} with traced split points at {call_site()}")
    if np.ndim(indices_or_sections) == 0:
        sections = _int(indices_or_sections, "sections")
        if sections <= 0:
            raise TraceError(f"{what} at {call_site()}: the number of sections must be larger than 0")
        if equal and n % sections:
            raise TraceError(f"{what} at {call_site()}: an axis of length {n} does not split into "
                             f"{sections} equal sections (numpy.array_split allows unequal ones)")
        q, r = divmod(n, sections)
        sizes = [q + 1] * r + [q] * (sections - r)  # NumPy: the first n % sections get one more
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    else:
        bounds = [0] + [_int(i, "a split index") for i in indices_or_sections] + [n]
    return [_slice_along(ary, k, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


@implements(np.split)
def _np_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, "numpy.split", True)


@implements(np.array_split)
def _array_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, "numpy.array_split", False)


def _split_on(name: str, ndmin: int, axis_of):
    def split(ary, indices_or_sections):
        _need_ndim(ary, ndmin, f"numpy.{name}")
        return _split(ary, indices_or_sections, axis_of(ary.ndim), f"numpy.{name}", True)
    split.__name__ = name
    return split


implements(np.hsplit)(_split_on("hsplit", 1, lambda nd: 1 if nd > 1 else 0))
implements(np.vsplit)(_split_on("vsplit", 2, lambda nd: 0))
implements(np.dsplit)(_split_on("dsplit", 3, lambda nd: 2))


@implements(np.broadcast_arrays)
def _broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    return tuple(_broadcast(a, shape) for a in args)


# -- diagonals ----------------------------------------------------------------------------------


_PRODUCTS = ("matmul", "matmul_hold_a", "matmul_hold_b")


def _factors(a) -> list | None:
    """[P, Q] when the matrix ``a`` was just made as P @ Q (a Gram product included), else None;
    of a product that is not square, the rows of P and columns of Q its diagonal reads."""
    if not _traced(a) or a.ndim != 2:
        return None
    step = a.tape.recent(a.name)
    if step is not None and step[1] == "gram_join":  # its value is the held product's
        step = a.tape.recent(step[2][0])
    if step is None or step[1] not in _PRODUCTS:
        return None
    p, q = (a.tape.operand(x) for x in step[2])
    if np.ndim(p) != 2 or np.ndim(q) != 2:  # (x @ C3 of a vector and a stack: a 2-d product of others)
        return None
    d = min(p.shape[0], q.shape[1])  # a wide or tall product's diagonal: its first d rows and columns
    return [p if p.shape[0] == d else p[:d], q if q.shape[1] == d else q[:, :d]]


@implements(np.diagonal, method="diagonal")
def _diagonal(a, offset=0, axis1=0, axis2=1):
    _need_ndim(a, 2, "numpy.diagonal")
    i, j = _axis_list([axis1, axis2], a.ndim, "numpy.diagonal", "axis1/axis2")
    off = _int(offset, "offset")
    pq = _factors(a) if off == 0 else None
    if pq is not None:  # diag(P·Q)ᵢ = Σⱼ Pᵢⱼ Qⱼᵢ: n² products, where P·Q's partial takes n³ (see _trace)
        return np.einsum("ij,ji->i", *pq)
    rest = [k for k in range(a.ndim) if k not in (i, j)]
    x = a.transpose(rest + [i, j]) if rest + [i, j] != list(range(a.ndim)) else a
    r, c = a.shape[i], a.shape[j]
    r0, c0 = max(-off, 0), max(off, 0)
    n = max(min(r - r0, c - c0), 0)
    # the diagonal of the trailing (r, c) block is the stepped slice start::c+1 of its flattening
    flat = _reshape(x, list(x.shape[:-2]) + [r * c])
    start = r0 * c + c0 if n else 0
    return _slice_along(flat, flat.ndim - 1, start, start + (n - 1) * (c + 1) + 1 if n else 0, c + 1)


@implements(np.trace, method="trace")
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _refuse("numpy.trace", out=out)
    _check_dtype("numpy.trace", a, dtype)
    pq = _factors(a) if _int(offset, "offset") == 0 else None
    if pq is not None:
        # tr(P·Q) = Σ Pᵢⱼ Qⱼᵢ, whose partials are Qᵀ and Pᵀ. Summed from P·Q's diagonal, the
        # adjoint is an identity matrix multiplied through P·Q's partial: n³, not n².
        return np.einsum("ij,ji->", *pq)
    d = _diagonal(a, offset, axis1, axis2)
    return _record("sum", [d], {"axis": d.ndim - 1, "keepdims": False})


if hasattr(np.linalg, "diagonal"):  # the Array API's forms: the last two axes
    @implements(np.linalg.diagonal)
    def _linalg_diagonal(x, /, *, offset=0):
        _need_ndim(x, 2, "numpy.linalg.diagonal")
        return _diagonal(x, offset, -2, -1)

    @implements(np.linalg.trace)
    def _linalg_trace(x, /, *, offset=0, dtype=None):
        _need_ndim(x, 2, "numpy.linalg.trace")
        return _trace(x, offset, -2, -1, dtype)

    @implements(np.linalg.matrix_transpose)
    def _linalg_matrix_transpose(x, /):
        _need_ndim(x, 2, "numpy.linalg.matrix_transpose")
        return _swapaxes(x, -1, -2)


def _diag_matrix(v, k: int):
    """The matrix with ``v`` on diagonal ``k``, by free maps: each entry of ``v`` followed by a row
    of zeros, flattened, shifted by a constant block and cut to m·m entries lands every v[i] on
    the diagonal (flat index offset + i·(m + 1))."""
    n = v.shape[0]
    m = n + abs(k)
    rows = _concat([_reshape(v, [n, 1]), np.zeros((n, m))], 1)
    flat = _reshape(rows, [n * (m + 1)])
    offset = k if k >= 0 else -k * m
    parts = ([np.zeros(offset)] if offset else []) + [flat]
    have = offset + n * (m + 1)
    if have < m * m:
        parts.append(np.zeros(m * m - have))
    flat = _concat(parts, 0)
    if have > m * m:
        flat = flat[: m * m]
    return _reshape(flat, [m, m])


@implements(np.diag)
def _diag(v, k=0):
    """A new matrix from a 1-d ``v``; of a 2-d one, the diagonal as NumPy's view (np.diag is among
    jacc.trace's view functions, so a later change of ``v`` shows in it)."""
    k = _int(k, "k")
    if v.ndim == 1:
        out = _diag_matrix(v, k)
        if isinstance(out, Tracer):
            out.tape.own(out.name)
        return out
    if v.ndim == 2:
        return _diagonal(v, k)
    raise TraceError(f"numpy.diag at {call_site()} takes a 1-d or 2-d array, got shape {v.shape}")


@implements(np.diagflat)
def _diagflat(v, k=0):
    return _diag_matrix(v.reshape(-1), _int(k, "k"))


def _triangle(what: str, lower: bool):
    def tri(m, k=0):
        if m.ndim == 0:
            raise TraceError(f"{what} at {call_site()} needs an array with at least 1 dimension")
        k = _int(k, "k")
        rows, cols = m.shape[-2:] if m.ndim > 1 else m.shape * 2
        keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
        # NumPy's own rule (where, not a product): inf and nan outside the triangle become 0
        return _record("where", [keep, m, np.zeros(())])
    tri.__name__ = what.rsplit(".", 1)[-1]
    return tri


implements(np.tril)(_triangle("numpy.tril", True))
implements(np.triu)(_triangle("numpy.triu", False))


# -- examples -----------------------------------------------------------------------------------


def _x(r, shape=(2, 3, 4)):
    return r.normal(size=shape)


def _free(name, fn, make, **kw):
    case(name, fn, make, structures=FREE, **kw)


def _joined(xp, parts):
    """A list of results as one vector (the coverage test differentiates one output)."""
    return xp.concatenate([xp.reshape(p, (-1,)) for p in parts])


_free("numpy.reshape", lambda xp: lambda x: xp.reshape(x, (4, 6)), lambda r: (_x(r),))
_free("numpy.reshape", lambda xp: lambda x: xp.reshape(x, (-1, 2)), lambda r: (_x(r),), variant="-1")
_free("numpy.ravel", lambda xp: xp.ravel, lambda r: (_x(r),))
_free("numpy.transpose", lambda xp: lambda x: xp.transpose(x, (2, 0, 1)), lambda r: (_x(r),))
_free("numpy.transpose", lambda xp: xp.transpose, lambda r: (_x(r),), variant="reversed")
_free("numpy.moveaxis", lambda xp: lambda x: xp.moveaxis(x, -1, 0), lambda r: (_x(r),))
_free("numpy.moveaxis", lambda xp: lambda x: xp.moveaxis(x, (0, -1), (-1, 1)), lambda r: (_x(r, (2, 3, 4, 5)),),
      variant="several axes")
_free("numpy.rollaxis", lambda xp: lambda x: xp.rollaxis(x, -1, 1), lambda r: (_x(r, (2, 3, 4, 5)),))
_free("numpy.rollaxis", lambda xp: lambda x: xp.rollaxis(x, 0, 3), lambda r: (_x(r),), variant="start=3")
_free("numpy.swapaxes", lambda xp: lambda x: xp.swapaxes(x, 0, -1), lambda r: (_x(r),))
_free("ndarray.swapaxes", lambda xp: lambda x: x.swapaxes(-2, -1), lambda r: (_x(r),))
if hasattr(np, "matrix_transpose"):
    _free("numpy.matrix_transpose", lambda xp: xp.matrix_transpose, lambda r: (_x(r),))
_free("numpy.expand_dims", lambda xp: lambda x: xp.expand_dims(x, 1), lambda r: (_x(r, (3, 4)),))
_free("numpy.expand_dims", lambda xp: lambda x: xp.expand_dims(x, (0, -1)), lambda r: (_x(r, (3, 4)),),
      variant="tuple, negative")
_free("numpy.squeeze", lambda xp: lambda x: xp.squeeze(x, axis=1), lambda r: (_x(r, (3, 1, 2)),))
_free("numpy.squeeze", lambda xp: xp.squeeze, lambda r: (_x(r, (1, 3, 1, 2)),), variant="all")
_free("numpy.squeeze", lambda xp: lambda x: xp.squeeze(x, axis=(0, -1)), lambda r: (_x(r, (1, 3, 1)),),
      variant="tuple, negative")
_free("ndarray.squeeze", lambda xp: lambda x: x.squeeze(-2), lambda r: (_x(r, (3, 1, 2)),))
_free("numpy.broadcast_to", lambda xp: lambda x: xp.broadcast_to(x, (5, 3, 4)), lambda r: (_x(r, (3, 1)),))
_free("numpy.concatenate", lambda xp: lambda a, b: xp.concatenate([a, b], axis=-1),
      lambda r: (_x(r, (2, 3)), _x(r, (2, 4))), argnums=(0, 1))
_free("numpy.stack", lambda xp: lambda a, b: xp.stack([a, b], axis=1), lambda r: (_x(r, (2, 3)), _x(r, (2, 3))),
      argnums=(0, 1))
_free("numpy.stack", lambda xp: lambda a, b: xp.stack((a, b), axis=-1), lambda r: (_x(r, (2, 3)), _x(r, (2, 3))),
      argnums=(0, 1), variant="axis=-1")
_free("numpy.copy", lambda xp: xp.copy, lambda r: (_x(r),))
_free("numpy.real", lambda xp: xp.real, lambda r: (_x(r),))
_free("ndarray.flatten", lambda xp: lambda x: x.flatten(), lambda r: (_x(r),))

_free("numpy.flip", lambda xp: xp.flip, lambda r: (_x(r),))
_free("numpy.flip", lambda xp: lambda x: xp.flip(x, -1), lambda r: (_x(r),), variant="axis=-1")
_free("numpy.flip", lambda xp: lambda x: xp.flip(x, axis=(0, 2)), lambda r: (_x(r),), variant="tuple")
_free("numpy.fliplr", lambda xp: xp.fliplr, lambda r: (_x(r),))
_free("numpy.flipud", lambda xp: xp.flipud, lambda r: (_x(r, (5,)),))
_free("numpy.rot90", lambda xp: xp.rot90, lambda r: (_x(r, (3, 4)),))
for _k in (2, 3, -1):
    _free("numpy.rot90", lambda xp, k=_k: lambda x: xp.rot90(x, k, axes=(-1, 0)), lambda r: (_x(r),),
          variant=f"k={_k}, axes=(-1, 0)")

_free("numpy.roll", lambda xp: lambda x: xp.roll(x, 2), lambda r: (_x(r),))
_free("numpy.roll", lambda xp: lambda x: xp.roll(x, -1, axis=-1), lambda r: (_x(r),), variant="negative")
_free("numpy.roll", lambda xp: lambda x: xp.roll(x, (1, 5), axis=(0, 2)), lambda r: (_x(r),), variant="tuple")
_free("numpy.roll", lambda xp: lambda x: xp.roll(x, (1, 2), axis=(1, 1)), lambda r: (_x(r),),
      variant="same axis twice")
_free("numpy.tile", lambda xp: lambda x: xp.tile(x, 3), lambda r: (_x(r, (2, 3)),))
_free("numpy.tile", lambda xp: lambda x: xp.tile(x, (2, 1, 2)), lambda r: (_x(r, (2, 3)),), variant="more reps")
_free("numpy.tile", lambda xp: lambda x: xp.tile(x, (2, 3)), lambda r: (_x(r),), variant="fewer reps")
_free("numpy.repeat", lambda xp: lambda x: xp.repeat(x, 2), lambda r: (_x(r, (2, 3)),))
_free("numpy.repeat", lambda xp: lambda x: xp.repeat(x, 3, axis=-1), lambda r: (_x(r, (2, 3)),), variant="axis")
_free("numpy.repeat", lambda xp: lambda x: xp.repeat(x, np.array([2, 2, 0, 1, 3]), axis=0),
      lambda r: (_x(r, (5, 2)),), variant="per element")
_free("ndarray.repeat", lambda xp: lambda x: x.repeat(np.array([1, 0, 2]), axis=-2), lambda r: (_x(r, (2, 3, 2)),))

_free("numpy.pad", lambda xp: lambda x: xp.pad(x, 2), lambda r: (_x(r, (3, 4)),))
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, ((1, 0), (0, 2), (2, 1)), constant_values=1.5),
      lambda r: (_x(r),), variant="per axis")
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, (1, 2), "constant", constant_values=((1, 2), (3, 4))),
      lambda r: (_x(r, (3, 4)),), variant="per-axis values")
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, ((2, 1), (0, 3)), "edge"), lambda r: (_x(r, (3, 4)),),
      variant="edge", note="edge, reflect, symmetric, wrap: a gather by NumPy's own padding of the positions")
case("numpy.pad", lambda xp: lambda x: xp.pad(x, ((2, 1), (1, 3)), "mean", stat_length=2), lambda r: (_x(r, (3, 4)),),
     variant="mean", note="maximum, minimum, mean, median, linear_ramp: axis by axis, each block a traced "
     "reduction or ramp of the array padded so far")
case("numpy.pad", lambda xp: lambda x: xp.pad(x, (2, 3), "linear_ramp", end_values=(1.0, -2.0)),
     lambda r: (_x(r, (4,)),), variant="linear_ramp")
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, 5, "reflect"), lambda r: (_x(r, (3,)),),
      variant="reflect, wider than the array")
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, (1, 2), mode="symmetric"), lambda r: (_x(r, (2, 3)),),
      variant="symmetric")
_free("numpy.pad", lambda xp: lambda x: xp.pad(x, ((0, 0), (3, 2)), "wrap"), lambda r: (_x(r, (2, 3)),),
      variant="wrap")

_free("numpy.vstack", lambda xp: lambda a, b: xp.vstack([a, b]), lambda r: (_x(r, (4,)), _x(r, (2, 4))),
      argnums=(0, 1))
_free("numpy.hstack", lambda xp: lambda a, b: xp.hstack((a, b)), lambda r: (_x(r, (2, 3)), _x(r, (2, 1))),
      argnums=(0, 1))
_free("numpy.hstack", lambda xp: lambda a, b: xp.hstack([a, b]), lambda r: (_x(r, (3,)), _x(r, (2,))),
      argnums=(0, 1), variant="vectors")
_free("numpy.dstack", lambda xp: lambda a, b: xp.dstack([a, b]), lambda r: (_x(r, (2, 3)), _x(r, (2, 3, 2))),
      argnums=(0, 1))
_free("numpy.column_stack", lambda xp: lambda a, b: xp.column_stack([a, b]), lambda r: (_x(r, (3,)), _x(r, (3, 2))),
      argnums=(0, 1))
if hasattr(np, "row_stack"):
    def _row_stack(xp):
        def f(a, b):
            with warnings.catch_warnings():  # NumPy ≥ 2.0 deprecates the alias
                warnings.simplefilter("ignore", DeprecationWarning)
                return xp.row_stack([a, b])
        return f

    _free("numpy.row_stack", _row_stack, lambda r: (_x(r, (3,)), _x(r, (2, 3))), argnums=(0, 1), jax=False,
          note="deprecated alias of vstack (not in jax.numpy)")
_free("numpy.append", lambda xp: lambda a, b: xp.append(a, b), lambda r: (_x(r, (2, 3)), _x(r, (4,))),
      argnums=(0, 1))
_free("numpy.append", lambda xp: lambda a, b: xp.append(a, b, axis=-1), lambda r: (_x(r, (2, 3)), _x(r, (2, 2))),
      argnums=(0, 1), variant="axis")
_free("numpy.block", lambda xp: lambda a, b: xp.block([[a, b], [b, a]]), lambda r: (_x(r, (2, 2)), _x(r, (2, 2))),
      argnums=(0, 1))
_free("numpy.block", lambda xp: lambda a, b: xp.block([[a], [xp.ones((1, 3)) * 2.0], [b]]),
      lambda r: (_x(r, (3,)), _x(r, (2, 3))), argnums=(0, 1), variant="promoted leaves, constants")
_free("numpy.resize", lambda xp: lambda x: xp.resize(x, (3, 5)), lambda r: (_x(r, (2, 3)),))
_free("numpy.resize", lambda xp: lambda x: xp.resize(x, 4), lambda r: (_x(r, (2, 3)),), variant="shrink")
_free("numpy.delete", lambda xp: lambda x: xp.delete(x, np.array([0, 2, 3]), axis=-1), lambda r: (_x(r, (2, 5)),))
_free("numpy.delete", lambda xp: lambda x: xp.delete(x, 4), lambda r: (_x(r, (2, 5)),), variant="flat, int")
_free("numpy.delete", lambda xp: lambda x: xp.delete(x, slice(1, None, 2), axis=0), lambda r: (_x(r, (5, 2)),),
      variant="slice")
if hasattr(np, "unstack"):
    _free("numpy.unstack", lambda xp: lambda x: _joined(xp, xp.unstack(x, axis=-1)), lambda r: (_x(r),))

_free("numpy.split", lambda xp: lambda x: _joined(xp, xp.split(x, 2, axis=-1)[::-1]), lambda r: (_x(r),))
_free("numpy.split", lambda xp: lambda x: _joined(xp, xp.split(x, [1, 3])[::-1]), lambda r: (_x(r, (4, 3)),),
      variant="indices")
_free("numpy.split", lambda xp: lambda x: _joined(xp, xp.split(x, [-3, 2, 6], axis=-1)[::-1]),
      lambda r: (_x(r, (2, 4)),), variant="negative and past-the-end indices", jax=False,
      note="split points are slice bounds, negative ones included, as in NumPy (JAX refuses them)")
_free("numpy.array_split", lambda xp: lambda x: _joined(xp, xp.array_split(x, 3, axis=1)[::-1]),
      lambda r: (_x(r, (2, 7)),))
_free("numpy.array_split", lambda xp: lambda x: _joined(xp, xp.array_split(x, [2, 3])[1:]),
      lambda r: (_x(r, (5,)),), variant="indices")
_free("numpy.hsplit", lambda xp: lambda x: _joined(xp, xp.hsplit(x, 3)[1:]), lambda r: (_x(r),))
_free("numpy.vsplit", lambda xp: lambda x: _joined(xp, xp.vsplit(x, [1])[::-1]), lambda r: (_x(r),))
_free("numpy.dsplit", lambda xp: lambda x: _joined(xp, xp.dsplit(x, 2)[::-1]), lambda r: (_x(r),))

_free("numpy.atleast_1d", lambda xp: xp.atleast_1d, lambda r: (r.normal(),))
_free("numpy.atleast_2d", lambda xp: xp.atleast_2d, lambda r: (_x(r, (3,)),))
_free("numpy.atleast_3d", lambda xp: xp.atleast_3d, lambda r: (_x(r, (3,)),))
_free("numpy.atleast_3d", lambda xp: lambda a, b: _joined(xp, xp.atleast_3d(a, b)),
      lambda r: (_x(r, (2, 3)), r.normal()), argnums=(0, 1), variant="several")
_free("numpy.broadcast_arrays", lambda xp: lambda a, b: _joined(xp, xp.broadcast_arrays(a, b)),
      lambda r: (_x(r, (3, 1)), _x(r, (2, 1, 4))), argnums=(0, 1))

_free("numpy.diag", lambda xp: xp.diag, lambda r: (_x(r, (4,)),))
for _k in (2, -1):
    _free("numpy.diag", lambda xp, k=_k: lambda v: xp.diag(v, k), lambda r: (_x(r, (3,)),), variant=f"vector, k={_k}")
    _free("numpy.diag", lambda xp, k=_k: lambda v: xp.diag(v, k=k), lambda r: (_x(r, (3, 4)),),
          variant=f"matrix, k={_k}")
_free("numpy.diagflat", lambda xp: lambda v: xp.diagflat(v, -1), lambda r: (_x(r, (2, 2)),))
_free("numpy.diagonal", lambda xp: xp.diagonal, lambda r: (_x(r, (4, 3)),))
_free("numpy.diagonal", lambda xp: lambda x: xp.diagonal(x, 1, axis1=-1, axis2=0), lambda r: (_x(r),),
      variant="offset, axes")
_free("numpy.diagonal", lambda xp: lambda x: xp.diagonal(x, offset=-1, axis1=1, axis2=2), lambda r: (_x(r),),
      variant="negative offset")
_free("ndarray.diagonal", lambda xp: lambda x: x.diagonal(1), lambda r: (_x(r, (3, 3)),))
_free("numpy.trace", lambda xp: xp.trace, lambda r: (_x(r, (3, 3)),))
_free("numpy.trace", lambda xp: lambda x: xp.trace(x, -1, 2, 0), lambda r: (_x(r),), variant="offset, axes")
_free("ndarray.trace", lambda xp: lambda x: x.trace(offset=1), lambda r: (_x(r, (3, 4)),))
if hasattr(np.linalg, "diagonal"):
    _free("numpy.linalg.diagonal", lambda xp: lambda x: xp.linalg.diagonal(x, offset=1), lambda r: (_x(r),))
    _free("numpy.linalg.trace", lambda xp: xp.linalg.trace, lambda r: (_x(r, (2, 3, 3)),))
    _free("numpy.linalg.trace", lambda xp: lambda x: xp.linalg.trace(x, offset=-1), lambda r: (_x(r, (4, 3)),),
          variant="offset")
    _free("numpy.linalg.matrix_transpose", lambda xp: xp.linalg.matrix_transpose, lambda r: (_x(r),))
for _n in ("tril", "triu"):
    case(f"numpy.{_n}", lambda xp, n=_n: getattr(xp, n), lambda r: (_x(r, (4, 3)),), structures={"diag"})
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, k=-1), lambda r: (_x(r),),
         structures={"diag"}, variant="batched, k=-1")
