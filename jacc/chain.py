"""Optimal bracketing of matrix (Jacobian) chain products.

A chain ``A0 @ A1 @ ... @ A{n-1}`` with ``A_i`` of shape ``(dims[i], dims[i+1])``
(the ``numpy.linalg.multi_dot`` convention) can be evaluated in many orders
whose costs differ by orders of magnitude.  This module finds the cheapest
order with the classic O(n^3) dynamic programme (Cormen et al., *Introduction
to Algorithms*, 3rd ed., section 15.2), written from scratch here:

    m[i, j] = min_{i <= k < j}  m[i, k] + m[k+1, j] + d[i] * d[k+1] * d[j+1]

:func:`matrix_chain_order` vectorises the recurrence over the start index *i*
(one NumPy pass per chain length), so n = 1000 links take well under a second.
:func:`chain_order_costfn` solves the same recurrence for caller-supplied
costs; jacc uses it when Jacobians are structured (e.g. diagonal links make
some products nearly free), where the dense ``d*d*d`` formula is wrong.

Pure NumPy; no other jacc imports.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Bracket",
    "ChainResult",
    "bracket_cost",
    "bracket_to_str",
    "brute_force_chain",
    "chain_order_costfn",
    "dense_cost_fn",
    "linear_chain_order",
    "matrix_chain_order",
    "multi_dot_cost",
    "multi_dot_order",
    "numpy_chain_order_fn",
    "split_to_bracket",
]

#: A bracketing tree: a leaf is a matrix index, a node is ``(left, right)``.
Bracket = Union[int, Tuple["Bracket", "Bracket"]]

#: int64 DP is used while every candidate cost is provably below this bound.
_INT64_SAFE = 2**62

#: Largest chain :func:`brute_force_chain` accepts (Catalan(11) = 58786 trees).
_BRUTE_MAX_N = 12


@dataclass(frozen=True, eq=False)
class ChainResult:
    """Optimal chain order.

    ``cost``: minimal number of scalar multiplications (exact Python int).
    ``bracketing``: nested-tuple tree, see :data:`Bracket`.
    ``split``: read-only ``(n, n)`` intp table; for ``i < j`` the optimal
    product of matrices ``i..j`` is ``(i..split[i, j]) @ (split[i, j]+1..j)``
    (same meaning as numpy's ``_multi_dot_matrix_chain_order`` table);
    entries with ``i >= j`` are -1.

    >>> print(matrix_chain_order([10, 30, 5, 60]))
    ((A0 A1) A2)
    """

    cost: int
    bracketing: Bracket
    split: np.ndarray

    @property
    def n(self) -> int:
        """Number of matrices in the chain."""
        return int(self.split.shape[0])

    def __str__(self) -> str:
        return bracket_to_str(self.bracketing)


# ----------------------------------------------------------------- helpers


def _check_dims(dims: Sequence[int]) -> list[int]:
    """Validate ``dims`` and return them as a list of Python ints."""
    try:
        items = list(dims)
    except TypeError:
        raise ValueError(f"dims must be a sequence of ints, got {dims!r}") from None
    if len(items) < 2:
        raise ValueError(
            f"dims must have at least 2 entries (one matrix), got {len(items)}"
        )
    if all(type(x) is int and x > 0 for x in items):  # the common case, without the ABC checks
        return items
    out: list[int] = []
    for idx, x in enumerate(items):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
            raise ValueError(f"dims[{idx}] = {x!r} is not an integer")
        if x <= 0:
            raise ValueError(f"dims[{idx}] = {x!r} must be positive")
        out.append(int(x))
    return out


def _check_n(n: int) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def split_to_bracket(split: np.ndarray, i: int = 0, j: Optional[int] = None) -> Bracket:
    """Tree for matrices ``i..j`` from a split table (iterative, any depth).

    >>> s = np.array([[-1, 0, 1], [-1, -1, 1], [-1, -1, -1]])
    >>> split_to_bracket(s)
    ((0, 1), 2)
    """
    if j is None:
        j = len(split) - 1
    out: list[Bracket] = []
    stack: list[Tuple[int, int, bool]] = [(i, j, False)]
    while stack:
        lo, hi, combine = stack.pop()
        if combine:
            right = out.pop()
            left = out.pop()
            out.append((left, right))
        elif lo == hi:
            out.append(lo)
        else:
            k = int(split[lo, hi])
            if not lo <= k < hi:
                raise ValueError(f"split[{lo}, {hi}] = {k} is outside [{lo}, {hi})")
            stack.append((lo, hi, True))
            stack.append((k + 1, hi, False))
            stack.append((lo, k, False))
    return out[0]


def bracket_to_str(tree: Bracket, names: Optional[Sequence[str]] = None) -> str:
    """Render a bracketing, e.g. ``((A0 A1) A2)``; ``names[i]`` replaces ``Ai``.

    >>> bracket_to_str(((0, 1), 2))
    '((A0 A1) A2)'
    >>> bracket_to_str((0, (1, 2)), names="JKL")
    '(J (K L))'
    """
    parts: list[str] = []
    stack: list[object] = [tree]  # str items are literal tokens
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError(f"bracket node must be a 2-tuple, got {x!r}")
            stack.extend((")", x[1], " ", x[0], "("))
        else:
            parts.append(f"A{x}" if names is None else str(names[int(x)]))  # type: ignore[call-overload]
    return "".join(parts)


def bracket_cost(tree: Bracket, dims: Sequence[int]) -> int:
    """Exact scalar-multiplication count of evaluating ``tree`` (iterative).

    Raises ValueError if the tree's leaves are not ``0..n-1`` in order.

    >>> bracket_cost((0, (1, 2)), [10, 30, 5, 60])
    27000
    """
    d = _check_dims(dims)
    n = len(d) - 1
    # Post-order walk; each finished subtree leaves (first, last, cost).
    done: list[Tuple[int, int, int]] = []
    stack: list[Tuple[Bracket, bool]] = [(tree, False)]
    while stack:
        node, combine = stack.pop()
        if isinstance(node, tuple):
            if len(node) != 2:
                raise ValueError(f"bracket node must be a 2-tuple, got {node!r}")
            if not combine:
                stack.append((node, True))
                stack.append((node[1], False))
                stack.append((node[0], False))
                continue
            r0, r1, rc = done.pop()
            l0, l1, lc = done.pop()
            if l1 + 1 != r0:
                raise ValueError(f"non-adjacent factors {l0}..{l1} and {r0}..{r1}")
            done.append((l0, r1, lc + rc + d[l0] * d[r0] * d[r1 + 1]))
        else:
            if isinstance(node, (bool, np.bool_)) or not isinstance(node, numbers.Integral):
                raise ValueError(f"bracket leaf {node!r} is not an int")
            if not 0 <= node < n:
                raise ValueError(f"bracket leaf {node} out of range for {n} matrices")
            done.append((int(node), int(node), 0))
    first, last, cost = done[0]
    if (first, last) != (0, n - 1):
        raise ValueError(f"bracketing covers matrices {first}..{last}, expected 0..{n - 1}")
    return cost


def _result(cost: int, split: np.ndarray) -> ChainResult:
    split.setflags(write=False)
    return ChainResult(cost=cost, bracketing=split_to_bracket(split), split=split)


# -------------------------------------------------------------- dense DP


def matrix_chain_order(dims: Sequence[int], check: Optional[Callable[[], None]] = None) -> ChainResult:
    """Optimal bracketing of a dense matrix chain (vectorised O(n^3) DP).

    For each chain length ``L = j - i`` all ``n - L`` intervals and their
    ``L`` splits form one 2-D array.  Costs are kept twice, indexed
    ``[length, start]`` and ``[length, end]``, so the left and right sub-costs
    of every candidate are plain (one reversed) slices, and the argmin
    (first occurrence, i.e. lowest split on ties) runs along the split axis.

    Arithmetic is exact: int64 while ``(n-1) * max(dims)**3 < 2**62`` (no
    candidate can exceed that bound), otherwise NumPy object arrays of Python
    ints (exact but roughly 10-50x slower).  It takes O(n^3) time and about
    ``40 * n**2`` bytes; ``check`` (if given) is called once per chain length
    and may raise to abandon the search (jacc's planning deadline does).

    >>> r = matrix_chain_order([10, 30, 5, 60])
    >>> r.cost, r.bracketing
    (4500, ((0, 1), 2))
    """
    d = _check_dims(dims)
    n = len(d) - 1
    split = np.full((n, n), -1, dtype=np.intp)
    if n == 1:
        return _result(0, split)
    dtype = np.int64 if (n - 1) * max(d) ** 3 < _INT64_SAFE else object
    dv = np.array(d, dtype=dtype)
    by_start = np.zeros((n, n), dtype=dtype)  # [L, i]: cost of i..i+L
    by_end = np.zeros((n, n), dtype=dtype)  # [L, j]: cost of j-L..j
    best_a = np.zeros((n, n), dtype=np.intp)  # [L, i]: left length - 1
    size = (n // 2) * (n - n // 2)  # max over L of L * (n - L)
    buf_t = np.empty(size, dtype=dtype)
    buf_u = np.empty(size, dtype=dtype)
    for L in range(1, n):
        if check is not None:
            check()
        w = n - L  # number of intervals of this length
        t = buf_t[: L * w].reshape(L, w)  # t[a, i]: split after i + a
        u = buf_u[: L * w].reshape(L, w)
        # left = cost(i..i+a), right = cost(i+a+1..i+L) = by_end[L-1-a, i+L]
        np.add(by_start[:L, :w], by_end[L - 1 :: -1, L:], out=t)
        # d[i] * d[i+a+1] * d[i+L+1]; window view gives d[1 + a + i]
        np.multiply(sliding_window_view(dv[1:], w)[:L], dv[:w] * dv[L + 1 :], out=u)
        t += u
        a = t.T.argmin(axis=1)
        best = t[a, np.arange(w)]
        by_start[L, :w] = best
        by_end[L, L:] = best
        best_a[L, :w] = a
    i, j = np.triu_indices(n, 1)
    split[i, j] = i + best_a[j - i, i]
    return _result(int(by_start[n - 1, 0]), split)


# ----------------------------------------------------- structured costs


def dense_cost_fn(dims: Sequence[int]) -> Callable[[int, int, int], int]:
    """The dense cost ``d[i] * d[k+1] * d[j+1]`` as a :func:`chain_order_costfn` callback."""
    d = _check_dims(dims)
    return lambda i, k, j: d[i] * d[k + 1] * d[j + 1]


def chain_order_costfn(n: int, cost_fn: Callable[[int, int, int], int],
                       check: Optional[Callable[[], None]] = None) -> ChainResult:
    """Optimal bracketing for caller-supplied product costs (pure Python O(n^3)).

    ``cost_fn(i, k, j)`` is the cost of multiplying the product of matrices
    ``i..k`` by the product of ``k+1..j``.  jacc uses this when Jacobians are
    structured (diagonal, sparse, identity ... links make some products far
    cheaper than ``d*d*d``); the costs come from the caller.  Intended for
    n up to about 60 (n^3 / 6 callback calls).  Ties go to the lowest ``k``.
    Costs should be non-negative ints; floats also work (``cost`` is then float).
    ``check`` (if given) is called once per chain length and may raise to stop.

    >>> chain_order_costfn(3, dense_cost_fn([10, 30, 5, 60])).cost
    4500
    """
    n = _check_n(n)
    split = np.full((n, n), -1, dtype=np.intp)
    m = [[0] * n for _ in range(n)]
    for L in range(1, n):
        if check is not None:
            check()
        for i in range(n - L):
            j = i + L
            best_k, best = i, m[i][i] + m[i + 1][j] + cost_fn(i, i, j)
            for k in range(i + 1, j):
                c = m[i][k] + m[k + 1][j] + cost_fn(i, k, j)
                if c < best:
                    best_k, best = k, c
            m[i][j] = best
            split[i, j] = best_k
    return _result(m[0][n - 1], split)


# ------------------------------------------------ linear-time fallback


def _greedy_tree(d: list[int]) -> Tuple[Bracket, int]:
    """Repeatedly multiply the adjacent pair that is cheapest now (O(n log n), lazy heap);
    returns the tree and its cost."""
    import heapq

    n = len(d) - 1
    tree: dict[int, Bracket] = {i: i for i in range(n)}  # segments, keyed by their first matrix
    last = list(range(n))  # first matrix of a segment -> its last matrix
    nxt = {i: i + 1 for i in range(n - 1)}
    prv = {i + 1: i for i in range(n - 1)}

    def cost(i: int, k: int) -> int:
        return d[i] * d[k] * d[last[k] + 1]

    heap = [(cost(i, i + 1), i, i + 1) for i in range(n - 1)]
    heapq.heapify(heap)
    total = 0
    while heap:
        c, i, k = heapq.heappop(heap)
        if i not in tree or nxt.get(i) != k or cost(i, k) != c:
            continue  # stale: a neighbour was merged since
        total += c
        tree[i] = (tree[i], tree.pop(k))
        last[i] = last[k]
        after = nxt.pop(k, None)
        prv.pop(k, None)
        if after is None:
            nxt.pop(i)
        else:
            nxt[i], prv[after] = after, i
            heapq.heappush(heap, (cost(i, after), i, after))
        before = prv.get(i)
        if before is not None:
            heapq.heappush(heap, (cost(before, i), before, i))
    return tree[0], total


def _left_deep(n: int) -> Bracket:
    tree: Bracket = 0
    for i in range(1, n):
        tree = (tree, i)
    return tree


def _right_deep(n: int) -> Bracket:
    tree: Bracket = n - 1
    for i in range(n - 2, -1, -1):
        tree = (i, tree)
    return tree


def linear_chain_order(dims: Sequence[int]) -> Tuple[ChainResult, str]:
    """A good bracketing in O(n log n) time and O(n) memory, for chains too long for the DP:
    the cheapest of left-to-right, right-to-left and greedy (cheapest adjacent product first).
    Returns the result (``split`` is empty: no table is built) and the winner's name.

    >>> r, how = linear_chain_order([10, 30, 5, 60])
    >>> r.cost, how
    (4500, 'left-to-right')
    """
    d = _check_dims(dims)
    n = len(d) - 1
    if n == 1:
        return ChainResult(0, 0, np.empty((0, 0), dtype=np.intp)), "single matrix"
    greedy, greedy_cost = _greedy_tree(d)
    costs = {"left-to-right": sum(d[0] * d[k] * d[k + 1] for k in range(1, n)),
             "right-to-left": sum(d[i] * d[i + 1] * d[n] for i in range(n - 1)),
             "greedy": greedy_cost}
    best = min(costs, key=lambda k: costs[k])  # dict order breaks ties
    tree = {"left-to-right": _left_deep, "right-to-left": _right_deep}.get(best, lambda n: greedy)(n)
    return ChainResult(costs[best], tree, np.empty((0, 0), dtype=np.intp)), best


# ------------------------------------------------------ reference checks


def _all_bracketings(lo: int, hi: int) -> Iterator[Bracket]:
    if lo == hi:
        yield lo
        return
    for k in range(lo, hi):
        for left in _all_bracketings(lo, k):
            for right in _all_bracketings(k + 1, hi):
                yield (left, right)


def brute_force_chain(dims: Sequence[int]) -> int:
    """Minimal cost by enumerating every bracketing (for tests; n <= 12).

    >>> brute_force_chain([10, 30, 5, 60])
    4500
    """
    d = _check_dims(dims)
    n = len(d) - 1
    if n > _BRUTE_MAX_N:
        raise ValueError(f"brute_force_chain is limited to n <= {_BRUTE_MAX_N}, got n = {n}")
    return min(bracket_cost(t, d) for t in _all_bracketings(0, n - 1))


def numpy_chain_order_fn() -> Optional[Callable[..., np.ndarray]]:
    """numpy's private ``_multi_dot_matrix_chain_order`` or None if absent.

    Looked up in ``numpy.linalg._linalg`` (numpy >= 2) then
    ``numpy.linalg.linalg`` (older numpy).  It takes a list of arrays (only
    their shapes are used) and returns the split table ``s[i, j] = k``.
    """
    import importlib

    for mod_name in ("numpy.linalg._linalg", "numpy.linalg.linalg"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                mod = importlib.import_module(mod_name)
                fn = getattr(mod, "_multi_dot_matrix_chain_order", None)
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


def multi_dot_order(dims: Sequence[int]) -> Bracket:
    """The bracketing ``numpy.linalg.multi_dot`` would use for ``dims``.

    Calls numpy's private order routine on zero-memory stub arrays of the right
    shapes.  If that routine is unavailable (future numpy), falls back to
    :func:`matrix_chain_order`, which optimises the same recurrence.  For
    n == 3 multi_dot itself uses a direct two-way cost comparison; the chosen
    cost is the same optimum.
    """
    d = _check_dims(dims)
    n = len(d) - 1
    if n == 1:
        return 0
    fn = numpy_chain_order_fn()
    if fn is None:
        return matrix_chain_order(d).bracketing
    stubs = [np.broadcast_to(np.int8(0), (d[i], d[i + 1])) for i in range(n)]
    return split_to_bracket(np.asarray(fn(stubs)))


def multi_dot_cost(dims: Sequence[int]) -> int:
    """Exact cost of the order ``numpy.linalg.multi_dot`` picks (see :func:`multi_dot_order`).

    >>> multi_dot_cost([10, 30, 5, 60])
    4500
    """
    return bracket_cost(multi_dot_order(dims), dims)
