"""Structured Jacobians as SciPy sparse matrices, built from the structure alone.

A :class:`~jacc.structure.Jac` stores one value per combination of its labels (output axes and
unpaired input axes); a diagonal pair shares one label, so its off-diagonal entries are
structural zeros. :func:`to_sparse` lays those combinations out in C order — output axes
first, then the unpaired input axes — which enumerates the rows in order and the columns of
each row in increasing order, so the CSR arrays come out directly (no sort, no dense tensor).
Lazy selections, reshapes and embeddings are 0/1 matrices with one entry per row (or column)
and are built from the positions the map reads.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

try:
    import scipy.sparse as sp
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("sparse Jacobians need SciPy: pip install 'jacc[sparse]'") from None

from . import structure as S
from .structure import Jac

_INT32_MAX = np.iinfo(np.int32).max


def _index_dtype(*bounds: int) -> type:
    """int32 when every index (and the entry count) fits, else int64."""
    return np.int32 if max(bounds, default=0) <= _INT32_MAX else np.int64


def to_sparse(j: Jac | None, out_shape: Sequence[int], in_shape: Sequence[int],
              dtype=np.float64) -> sp.csr_array:
    """``j`` as a ``(prod(out_shape), prod(in_shape))`` CSR matrix (rows and columns in C order).

    Equal to ``j.to_dense().reshape(rows, cols)``; ``None`` gives the all-zero matrix. Every
    entry the structure stores is present even when its value is 0; the off-diagonal entries
    of a diagonal pair are absent. Memory is proportional to the number of stored entries.

    >>> import numpy as np
    >>> from jacc import structure as S
    >>> a = to_sparse(S.diagonal((3,), np.array([1., 0., 3.])), (3,), (3,))
    >>> a.nnz, a.toarray().tolist()
    (3, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    """
    out_shape, in_shape = tuple(int(s) for s in out_shape), tuple(int(s) for s in in_shape)
    rows, cols = math.prod(out_shape), math.prod(in_shape)
    if j is None:
        return sp.csr_array((rows, cols), dtype=dtype)
    if j.out_shape != out_shape or j.in_shape != in_shape:
        raise S.StructureError(f"Jacobian {j.out_shape}←{j.in_shape} does not have shape "
                               f"{out_shape}←{in_shape}")
    if j.terms is not None:  # a sum of lazy maps: their entries together, nnz ∝ the terms; duplicates are
        # summed and zeros kept, so the stored entries do not depend on the values (scipy's + drops a sum
        # of 0, and a layout set up at one call then mismatched another's: hunt CK)
        parts = [to_sparse(t, out_shape, in_shape, dtype).tocoo() for t in j.terms]
        entries = (np.concatenate([p.data for p in parts]),
                   (np.concatenate([p.row for p in parts]), np.concatenate([p.col for p in parts])))
        return sp.coo_array(entries, shape=(rows, cols)).tocsr()
    data = None
    if S._valued(j):  # a 0/1 map carrying one value per row (gather) or column (embedding)
        if j.symbolic:
            raise S.StructureError("cannot convert a symbolic Jacobian to a sparse matrix")
        data = np.asarray(S._full(S._split(j)[0]), dtype=dtype).reshape(-1)
        j = S._bare(j)
    if j.reshape or j.select is not None:
        return _lazy_select(j, rows, cols, dtype, data)
    if j.embed is not None:  # the transpose of a selection: build that one column-wise
        s = S._as_selection(j)
        t = _lazy_select(s, cols, rows, dtype, data)
        return sp.csc_array((t.data, t.indices, t.indptr), shape=(rows, cols)).tocsr()
    if j.symbolic:
        raise S.StructureError("cannot convert a symbolic Jacobian to a sparse matrix")
    return _labelled(j, rows, cols, dtype)


def stored_entries(j: Jac | None) -> int:
    """The entries :func:`to_sparse` stores for ``j``, from its structure alone (a symbolic Jac
    too): one per row of a selection or reshape, one per column of an embedding, one per
    combination of labels otherwise; a sum's terms each add theirs (their CSR matrices are held
    together while they are summed).

    >>> import numpy as np
    >>> from jacc import structure as S
    >>> stored_entries(S.diagonal((3,), np.array([1., 0., 3.]))), stored_entries(S.identity((4,)))
    (3, 4)
    """
    if j is None:
        return 0
    if j.terms is not None:
        return sum(stored_entries(t) for t in j.terms)
    if j.reshape or j.select is not None:
        return math.prod(j.out_shape)
    if j.embed is not None:
        return math.prod(j.in_shape)
    return math.prod(j.out_shape) * math.prod(j.in_shape[k] for k, p in enumerate(j.pair) if p < 0)


def _lazy_select(j: Jac, rows: int, cols: int, dtype, data=None) -> sp.csr_array:
    """A selection or reshape: row ``r`` holds a single 1 (or ``data[r]``) at the input
    position it reads."""
    idx = _index_dtype(cols, rows)
    indices = np.arange(rows, dtype=idx) if j.reshape else _read_positions(j, idx).reshape(-1)
    indptr = np.arange(rows + 1, dtype=idx)
    data = np.ones(rows, dtype=dtype) if data is None else np.array(data, dtype=dtype)
    if isinstance(j.select, S.Take) and j.select.holes:  # a row that reads nothing is empty
        read = indices >= 0
        indices, data = indices[read], data[read]
        indptr[1:] = np.cumsum(read)
    return _csr(data, indices, indptr, rows, cols)


def _read_positions(j: Jac, idx) -> np.ndarray:
    """For each output element of the selection ``j``, the flat input position it reads (shape
    ``j.out_shape``; −1 for a hole), summed from per-axis contributions by broadcasting: memory
    ∝ outputs."""
    strides = [math.prod(j.in_shape[k + 1:]) for k in range(len(j.in_shape))]
    pos = np.zeros(j.out_shape, dtype=idx)

    def along(axis: int, values) -> np.ndarray:
        shape = [1] * len(j.out_shape)
        shape[axis] = -1
        return np.asarray(values, dtype=idx).reshape(shape)

    t = j.select
    if isinstance(t, S.Take):
        if t.flat is None:
            raise S.StructureError("cannot convert a symbolic gather to a sparse matrix")
        for k, p in enumerate(j.pair):  # axes passed through: output axis p reads input axis k
            if p >= 0 and j.in_shape[k] > 1:
                pos += along(p, np.arange(j.in_shape[k], dtype=idx) * idx(strides[k]))
        if t.in_axes:
            coords = np.unravel_index(np.maximum(t.flat, 0), [j.in_shape[k] for k in t.in_axes])
            read = sum(c.astype(idx, copy=False) * idx(strides[k]) for c, k in zip(coords, t.in_axes))
        else:
            read = np.zeros(t.flat.shape, dtype=idx)
        order = np.argsort(t.out_axes, kind="stable")
        read = np.transpose(read, order)
        placed = [j.out_shape[a] if a in t.out_axes else 1 for a in range(len(j.out_shape))]
        pos += read.reshape(placed)
        if t.holes:
            pos[np.broadcast_to(np.transpose(t.flat, order).reshape(placed) < 0, pos.shape)] = -1
        return pos
    for kind, k, axis, where in S._walk(t, j.in_shape):
        if kind == "int":
            pos += idx(where * strides[k])
        elif kind in ("slice", "full"):
            pos += along(axis, np.arange(where.start, where.stop, where.step, dtype=idx) * idx(strides[k])
                         if len(where) else np.zeros(0, dtype=idx))
    return pos


def _labelled(j: Jac, rows: int, cols: int, dtype) -> sp.csr_array:
    """A labelled Jacobian: one entry per combination of its labels (output axes, then the
    unpaired input axes), enumerated in C order so that CSR comes out sorted."""
    m = j.m
    free = [k for k, p in enumerate(j.pair) if p < 0]
    grid = j.out_shape + tuple(j.in_shape[k] for k in free)
    per_row = math.prod(j.in_shape[k] for k in free)
    nnz = rows * per_row
    idx = _index_dtype(cols, nnz)
    # column of each entry: input axis k contributes coord_k · stride_k, where a paired axis
    # takes the coordinate of its output axis and a free one its own grid axis
    axis_of = {k: (p if p >= 0 else m + free.index(k)) for k, p in enumerate(j.pair)}
    stride = 1
    indices = np.zeros(grid, dtype=idx)
    for k in reversed(range(len(j.in_shape))):
        n = j.in_shape[k]
        if n > 1:
            shape = [1] * len(grid)
            shape[axis_of[k]] = n
            indices += (np.arange(n, dtype=idx) * idx(stride)).reshape(shape)
        stride *= n
    labels = list(range(m)) + [m + k for k in free]
    if j.vlabels is None:  # a 0/1 map, or an exact −1 one
        data = np.full(nnz, -1.0 if j.neg else 1.0, dtype=dtype)
    else:
        vals = np.asarray(S._align(j, labels)).astype(dtype, copy=False)
        data = np.broadcast_to(vals, grid).reshape(-1)  # a copy unless vals is complete
        if not data.flags.writeable:  # a read-only view of j.values: the matrix owns its data
            data = data.copy()
    indptr = np.arange(0, nnz + 1, max(per_row, 1), dtype=idx) if per_row else np.zeros(rows + 1, idx)
    return _csr(data, indices.reshape(-1), indptr, rows, cols)


def _csr(data, indices, indptr, rows: int, cols: int) -> sp.csr_array:
    a = sp.csr_array((data, indices, indptr), shape=(rows, cols), copy=False)
    a.has_sorted_indices = True
    a.has_canonical_format = True
    return a
