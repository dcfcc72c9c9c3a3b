"""The result shape of NumPy indexing, computed from sizes alone.

Shape rules must never allocate the operand: a graph may declare a 10⁶ × 10⁶ input that is only
planned, never evaluated. :func:`index_shape` follows NumPy's rules (basic slicing, new axes,
integer and boolean index arrays, and where the broadcast advanced axes go) with integer
arithmetic; it only looks at the index arrays, which the graph already holds.

>>> index_shape((10**6, 10**6), [["int", 3], ["slice", None, None, 2]])
(500000,)
>>> index_shape((2, 3, 4, 5), [["array", [0]], ["new"], ["array", [0]]])
(1, 1, 4, 5)
"""

from __future__ import annotations

import numpy as np

Shape = tuple[int, ...]


class IndexShapeError(ValueError):
    """An index that does not fit the shape (NumPy would raise IndexError or ValueError)."""


def as_index_array(raw) -> np.ndarray:
    """A stored index array (a nested list in a graph's params) as NumPy's: an empty list is an
    empty integer index, as NumPy takes ``x[[]]`` (the list has lost the dtype of an empty
    ``np.nonzero(x > 5)[0]``).

    >>> as_index_array([]).dtype == np.intp, as_index_array([[True, False]]).dtype
    (True, dtype('bool'))
    """
    arr = np.asarray(raw)
    return arr.astype(np.intp) if arr.size == 0 and arr.dtype.kind == "f" else arr


def _index_array(raw) -> np.ndarray:
    arr = as_index_array(raw)
    if arr.dtype.kind not in "biu" or (arr.dtype.kind == "b" and arr.ndim == 0):
        raise IndexShapeError(f"an index array must hold integers or booleans, got values of type {arr.dtype}")
    return arr


def _consumed(item: list) -> int:
    """How many operand axes one index item uses."""
    if item[0] == "new":
        return 0
    if item[0] == "array":
        arr = _index_array(item[1])
        return arr.ndim if arr.dtype == bool else 1
    return 1


def _check_bounds(values: np.ndarray, n: int, axis: int) -> None:
    if values.size and (values.max() >= n or values.min() < -n):
        bad = values.max() if values.max() >= n else values.min()
        raise IndexShapeError(f"index {bad} is out of bounds for axis {axis} with size {n}")


def index_shape(shape: Shape, index: list) -> Shape:
    """``np.empty(shape)[index].shape`` for a jacc index list, without allocating anything of the
    operand's size; raises :class:`IndexShapeError` where NumPy would raise."""
    used = sum(_consumed(item) for item in index)
    if used > len(shape):
        raise IndexShapeError(f"too many indices: the index uses {used} axes, the operand has {len(shape)}")
    items = list(index) + [["slice", None, None, None]] * (len(shape) - used)
    has_array = any(item[0] == "array" for item in items)
    parts: list = []  # per item: a tuple of result sizes, or "adv" for an advanced index
    adv_shapes: list[Shape] = []
    pending: list = []  # index arrays to bounds-check once the broadcast shape is known
    axis = 0
    for item in items:
        kind = item[0]
        if kind == "new":
            parts.append((1,))
            continue
        if kind == "slice":
            if item[3] == 0:
                raise IndexShapeError("slice step cannot be zero")
            parts.append((len(range(*slice(item[1], item[2], item[3]).indices(shape[axis]))),))
            axis += 1
            continue
        if kind == "int":
            _check_bounds(np.asarray(item[1]), shape[axis], axis)
            axis += 1
            parts.append("adv" if has_array else ())
            if has_array:
                adv_shapes.append(())
            continue
        arr = _index_array(item[1])
        if arr.dtype == bool:
            dims = shape[axis:axis + arr.ndim]
            if arr.shape != dims:
                raise IndexShapeError(f"boolean index of shape {arr.shape} does not match axes {axis}… of "
                                      f"size {dims}")
            adv_shapes.append((int(np.count_nonzero(arr)),))
            axis += arr.ndim
        else:
            pending.append((arr, shape[axis], axis))
            adv_shapes.append(arr.shape)
            axis += 1
        parts.append("adv")
    if not adv_shapes:
        return tuple(n for p in parts for n in p)
    try:
        batch = tuple(int(n) for n in np.broadcast_shapes(*adv_shapes))
    except ValueError:
        raise IndexShapeError("shape mismatch: index arrays of shapes "
                              f"{', '.join(map(str, adv_shapes))} cannot be broadcast together") from None
    if 0 not in batch:  # NumPy checks index arrays only when they select something
        for arr, n, ax in pending:
            _check_bounds(arr, n, ax)
    where = [k for k, p in enumerate(parts) if p == "adv"]
    together = where == list(range(where[0], where[-1] + 1))
    basic = [p for p in parts if p != "adv"]
    if not together:  # NumPy puts the broadcast axes first when advanced indices are apart
        return batch + tuple(n for p in basic for n in p)
    return (tuple(n for p in parts[:where[0]] for n in p) + batch
            + tuple(n for p in parts[where[-1] + 1:] for n in p))
