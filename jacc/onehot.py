"""One-hot products run as gathers and scatters.

Labels passed as data are read through a one-hot mask ``y[..., None] == arange(K)``
(:func:`jacc.numpy_api.gathers.gather_by_mask`): one structure then serves every batch of
labels, and the plan prices the mask's products as dense ones. A program that computes the
vertex values itself need not build the mask (:func:`one_hot_products`): a product summing over
the mask's K axis is a gather of the other operand's entries at the labels, and one keeping K
and summing over the labels' axes is a scatter-add into the places the labels name
(:class:`OneHotProduct`). An embedding of 128 tokens into a 2,000-row table then reads 128 rows
where the mask's product read all 2,000 for each token. The plan's multiplication count stays
the dense products' count, an upper bound of what the program does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from .lazy import Ref, Statement


def _torch(xp) -> bool:
    return getattr(xp, "__name__", "") == "torch"


def _take(a, positions, axis: int, xp):
    if _torch(xp):
        rows = xp.index_select(a, axis, positions.reshape(-1))
        return rows.reshape(tuple(a.shape[:axis]) + tuple(positions.shape) + tuple(a.shape[axis + 1:]))
    return xp.take(a, positions, axis=axis)


def _take_along(a, positions, axis: int, xp):
    """``a``'s entries at ``positions`` along ``axis`` (broadcast on the other axes)."""
    if _torch(xp):
        return xp.take_along_dim(a, positions, dim=axis)
    if xp is not np:  # (jax.numpy broadcasts the positions itself)
        return xp.take_along_axis(a, positions, axis=axis)
    shape = tuple(max(p, s) if i != axis else 1 for i, (p, s) in enumerate(zip(positions.shape, a.shape)))
    return np.take_along_axis(a, np.broadcast_to(positions, shape), axis=axis)


def _transpose(x, axes: list, xp):
    return x.permute(*axes) if _torch(xp) and axes else x.transpose(axes) if axes else x


def _bincount(positions, weights, length: int, xp):
    if xp is np or _torch(xp):
        return xp.bincount(positions, weights=weights, minlength=length)
    return xp.bincount(positions, weights=weights, length=length)  # (jax.numpy: a static length)


class OneHotProduct:
    """``einsum(subs, …)`` of two operands where operand ``k`` is the one-hot mask
    ``labels[..., None] == arange(n)`` (its last axis the n values), called as ``(labels, other)``
    without the mask: a gather or a scatter-add (:func:`_form`), its subscripts read once here.
    ``portable``: it runs in any array namespace passed as ``xp`` (NumPy, jax.numpy, torch).

    >>> a = np.arange(12.0).reshape(4, 3)
    >>> y = np.array([2.0, 0.0, 2.0])
    >>> mask = (y[:, None] == np.arange(4)) * 1.0
    >>> bool(np.array_equal(OneHotProduct("bk,kd->bd", 0, 4)(y, a), mask @ a))  # rows gathered
    True
    >>> g = np.arange(6.0).reshape(3, 2)
    >>> bool(np.array_equal(OneHotProduct("bd,bk->kd", 1, 4)(y, g), mask.T @ g))  # rows summed into place
    True
    """

    def __init__(self, subs: str, k: int, n: int):
        form, ta, out, K, batch = _form(subs, k)
        if form is None:
            raise ValueError(f"einsum {subs!r} with a one-hot operand {k} is neither a gather nor a scatter")
        self.form, self.n, self.portable, self.__name__ = form, n, self, f"one_hot_{form}"
        if form == "gather":  # the entries the labels name: their axes in K's place, then as the result wants
            self.at = ta.index(K)
            self.gathered = (ta[:self.at] + batch + ta[self.at + 1:], out)
            return
        if form == "pick":  # the labels on the other operand's axes (1 on K and the rest), taken along K
            self.at = ta.index(K)
            self.layout = _layout(batch, ta)
            self.gathered = (ta.replace(K, ""), out)
            return
        rest = out.replace(K, "")
        extra = "".join(c for c in batch if c not in rest)  # (the labels' axes summed over)
        kept = rest + extra
        self.summed = (ta, kept)
        self.layout = _layout(batch, kept)
        self.rest, self.extra = len(rest), len(extra)
        self.result = [(rest + K).index(c) for c in out]

    def __call__(self, labels, a, xp=np):
        positions = labels.long() if _torch(xp) else labels.astype(np.intp if xp is np else xp.int64)
        if self.form == "gather":
            return _arranged(_take(a, positions, self.at, xp), *self.gathered, xp)
        if self.form == "pick":
            picked = _take_along(a, _placed(positions, self.layout, xp), self.at, xp)
            return _arranged(picked.reshape(tuple(picked.shape[:self.at]) + tuple(picked.shape[self.at + 1:])),
                             *self.gathered, xp)
        summed = _arranged(a, *self.summed, xp)
        placed = _placed(positions, self.layout, xp)
        head = tuple(summed.shape[:self.rest])
        rows, n = math.prod(head), self.n
        first = (xp.arange(rows, device=positions.device) if _torch(xp) else xp.arange(rows))  # (torch: CUDA too)
        first = first.reshape(head + (1,) * self.extra) * n
        grid = _bincount((first + placed).reshape(-1), summed.reshape(-1), rows * n, xp).reshape(head + (n,))
        return _transpose(grid, self.result, xp)


def _layout(batch: str, letters: str) -> tuple[list, list]:
    """How to lay labels with axes ``batch`` on an array with axes ``letters`` (every label axis
    among them): the order of the labels' axes as ``letters`` has them, and per letter the labels'
    axis it takes, or None (size 1)."""
    return (sorted(range(len(batch)), key=lambda i: letters.index(batch[i])),
            [batch.index(c) if c in batch else None for c in letters])


def _placed(positions, layout: tuple[list, list], xp):
    """``positions`` laid out by :func:`_layout`: its axes moved into place, 1 on the other axes."""
    moved, sizes = layout
    return _transpose(positions, moved, xp).reshape(tuple(1 if i is None else positions.shape[i] for i in sizes))


def _arranged(x, have: str, want: str, xp):
    """``einsum(f"{have}->{want}", x)``, as a transpose (a view) where that is all it is."""
    if have == want:
        return x
    if len(set(have)) == len(have) and sorted(have) == sorted(want):
        return _transpose(x, [have.index(c) for c in want], xp)
    return xp.einsum(f"{have}->{want}", x)


def _form(subs: str, k: int) -> tuple:
    """How ``einsum(subs, …)`` with a one-hot operand ``k`` (its last axis the values) runs:
    ``"gather"`` where it sums over the values' axis, which the other operand has once, and
    has no label axis (rows taken at the labels); ``"pick"`` where the other operand has every
    label axis too (one entry per label along the values' axis, ``z[np.arange(n), y]``: a gather
    there read every row at every label, n² entries);
    ``"scatter"`` where the result keeps that axis and the other operand has every label axis;
    else None (the mask's product itself: a scalar times the mask, a label axis only the mask
    has); with the other operand's subscripts, the result's, the values' axis and the labels'."""
    lhs, arrow, out = subs.partition("->")
    terms = lhs.split(",")
    if not arrow or len(terms) != 2 or "..." in subs or len(set(terms[k])) != len(terms[k]):
        return None, "", out, "", ""
    tm, ta = terms[k], terms[1 - k]
    K, batch = tm[-1], tm[:-1]
    if ta.count(K) == 1 and K not in out and not set(batch) & set(ta):
        return "gather", ta, out, K, batch
    if ta.count(K) == 1 and K not in out and set(batch) <= set(ta) and len(set(ta)) == len(ta):
        return "pick", ta, out, K, batch
    if K in out and K not in ta and all(c in ta for c in batch):
        return "scatter", ta, out, K, batch
    return None, ta, out, K, batch


def one_hot_products(statements: list[Statement], masks: dict[int, tuple[int, int]], alias: dict[int, int],
                     parts: Callable[[tuple], tuple[str, list]]) -> list[Statement]:
    """``statements`` with every two-operand einsum that reads a one-hot mask, or a transpose
    of one, written as a :class:`OneHotProduct` of the labels (``masks``: the mask's statement id →
    its labels' statement id and its number of values n; ``alias``: ids of statements that
    merely rename another's value, see ``jacc.program._aliases``; ``parts``: an einsum's
    subscripts and operands from its arguments). A mask read by nothing else is then no longer
    computed."""
    if not masks:
        return statements
    views: dict[int, tuple[int, str, str]] = {}  # a mask's transpose: its id -> (mask id, mask's term, its own)
    out = []
    for s in statements:
        if s.fn is np.einsum and s.method is None and s.item is None and set(s.kwargs) <= {"optimize"}:
            subs, ops = parts(s.args)
            ids = [alias.get(o.id, o.id) if isinstance(o, Ref) else None for o in ops]
            lhs, _, rhs = subs.partition("->")
            if len(ops) == 1 and ids[0] in masks and sorted(lhs) == sorted(rhs) and len(set(lhs)) == len(lhs):
                views[s.id] = (ids[0], lhs, rhs)
            hit = [i for i, m in enumerate(ids) if m in masks or m in views]
            if len(ops) == 2 and len(hit) == 1 and "->" in subs:
                k = hit[0]
                terms = lhs.split(",")
                if ids[k] in views:  # (the mask's own axes, in its order)
                    ids[k], mine, theirs = views[ids[k]]
                    terms[k] = "".join(terms[k][theirs.index(c)] for c in mine)
                subs = f"{','.join(terms)}->{rhs}"
                if _form(subs, k)[0] is not None:
                    labels, n = masks[ids[k]]
                    s = dataclasses.replace(s, fn=OneHotProduct(subs, k, n), args=(Ref(labels), ops[1 - k]), kwargs={})
        out.append(s)
    return out
