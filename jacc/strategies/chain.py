"""``chain``: matrix-chain dynamic programming on chains of Jacobians.

On a chain x → v1 → … → vk → y every vertex-elimination order is a bracketing of the product
∂y/∂vk ··· ∂v1/∂x and vice versa, so the matrix-chain DP is exact. Dense chains use the
vectorised DP of :mod:`jacc.chain`; chains with structured links (diagonal, batched …) price
each sub-product with the structured algebra (O(n³) symbolic products, up to
``structured_limit`` links). On a general graph the DP orders every maximal chain segment (runs
of vertices with one predecessor and one successor), and Markowitz orders the rest.
"""

from __future__ import annotations

import math

from .. import structure as S
from ..chain import bracket_to_str, chain_order_costfn, matrix_chain_order
from ..costmodel import CostModel
from ..eliminate import Problem
from . import Result, register
from .greedy import _markowitz_score, run_greedy


def segments(problem: Problem) -> list[list]:
    """Maximal paths ``[a, v1, …, vk, b]`` whose interior vertices are eliminable with exactly
    one predecessor and one successor."""
    pred: dict = {}
    succ: dict = {}
    for u, v in list(problem.edges) + list(problem.extra):
        succ.setdefault(u, []).append(v)
        pred.setdefault(v, []).append(u)
    elim = set(problem.eliminable)
    link = {v for v in elim if len(pred.get(v, ())) == 1 and len(succ.get(v, ())) == 1}
    out, seen = [], set()
    for v in problem.eliminable:
        if v not in link or v in seen:
            continue
        start = v
        while pred[start][0] in link and pred[start][0] not in seen:
            start = pred[start][0]
            if start == v:
                break
        path = [pred[start][0], start]
        seen.add(start)
        w = start
        while succ[w][0] in link and succ[w][0] not in seen:
            w = succ[w][0]
            path.append(w)
            seen.add(w)
        path.append(succ[w][0])
        out.append(path)
    return out


def order_segment(problem: Problem, path: list, structured_limit: int = 80) -> tuple[list[str], dict]:
    """Optimal elimination order of the interior of one chain segment."""
    edges = problem.symbolic_edges()
    w = path[::-1]  # w0 = end, …, w_n = start
    mats = [edges[w[t + 1], w[t]] for t in range(len(w) - 1)]
    n = len(mats)
    all_dense = all(m.vlabels is not None and not any(p >= 0 for p in m.pair)
                    and len(m.vlabels) == len(m.out_shape) + len(m.in_shape) for m in mats)
    if all_dense or n > structured_limit:
        dims = [m.dense_size // max(1, math.prod(m.in_shape)) for m in mats] + [math.prod(mats[-1].in_shape)]
        res = matrix_chain_order(dims)
        note = "dense DP" if all_dense else f"dense-size DP (structured chain longer than {structured_limit})"
    else:
        prods: dict = {(t, t): mats[t] for t in range(n)}

        def prod(i: int, j: int):
            if (i, j) not in prods:
                prods[i, j] = S.product(prod(i, j - 1), mats[j])[0]
            return prods[i, j]

        for length in range(2, n + 1):  # fill bottom-up: no deep recursion
            for i in range(n - length + 1):
                prod(i, i + length - 1)
        res = chain_order_costfn(n, lambda i, k, j: S.product(prods[i, k], prods[k + 1, j])[1])
        note = "structured DP"
    return _tree_order(res.bracketing, w), {"cost": res.cost, "method": note,
                                            "bracketing": bracket_to_str(res.bracketing, _names(w))}


def _names(w: list) -> list[str]:
    return [f"∂{w[t]}/∂{w[t + 1]}" for t in range(len(w) - 1)]


def _tree_order(tree, w: list) -> list[str]:
    """Post-order of the bracketing: node (L, R) eliminates the vertex between L and R."""
    order: list[str] = []
    stack: list = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, int):
            continue
        if expanded:
            last = node[0]
            while not isinstance(last, int):
                last = last[1]
            order.append(w[last + 1])
        else:
            stack += [(node, True), (node[1], False), (node[0], False)]
    return order


@register("chain")
def chain(problem: Problem, cost_model: CostModel, *, structured_limit: int = 80) -> Result:
    """Matrix-chain DP: exact on chains; on other graphs, per chain segment plus Markowitz."""
    if not isinstance(structured_limit, int) or structured_limit < 1:
        raise ValueError(f"structured_limit must be a positive int, not {structured_limit!r}")
    segs = segments(problem)
    order: list[str] = []
    info: dict = {}
    whole = (len(segs) == 1 and len(segs[0]) - 2 == len(problem.eliminable)
             and segs[0][0] in problem.wrt and len(problem.wrt) == 1 and len(problem.of) == 1)
    for path in segs:
        part, notes = order_segment(problem, path, structured_limit)
        order += part
        if whole:
            info = {"bracketing": notes["bracketing"], "method": notes["method"]}
    rest = [v for v in problem.eliminable if v not in set(order)]
    if rest:
        e = problem.eliminator()
        for v in order:
            e.eliminate(v)
        order += run_greedy(e, rest, cost_model, _markowitz_score(cost_model))
        info["chain segments"] = f"{len(segs)} segment(s) by DP, {len(rest)} other vertices by Markowitz"
    exact = whole and cost_model.weights == (1.0, 0.0) and cost_model.memory_limit is None
    return Result(order, info, True if exact else None)
