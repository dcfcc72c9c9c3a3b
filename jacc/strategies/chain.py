"""``chain``: matrix-chain dynamic programming on chains of Jacobians.

On a chain x → v1 → … → vk → y every vertex-elimination order is a bracketing of the product
∂y/∂vk ··· ∂v1/∂x and vice versa, so the matrix-chain DP is exact. Dense chains use the
vectorised DP of :mod:`jacc.chain`; chains with structured links (diagonal, batched …) price
each sub-product with the structured algebra (O(n³) symbolic products, up to
``structured_limit`` links). On a general graph the DP orders every maximal chain segment (runs
of vertices with one predecessor and one successor), and Markowitz orders the rest.

The DP costs O(n³) time and O(n²) memory, so it runs only when an a-priori estimate fits the
budget: ``DP_SECONDS_PER_CUBE·n³`` (dense, vectorised) or ``STRUCTURED_SECONDS_PER_CUBE·n³``
(structured, pure Python) must fit the time left, and ``DP_BYTES_PER_SQUARE·n²`` must fit
``dp_memory`` (default ``DP_MEMORY``, at most a quarter of the memory available now). A
segment over budget is ordered in O(n log n) by :func:`jacc.chain.linear_chain_order` (the
cheapest of left-to-right, right-to-left and greedy by dense sizes), and the plan info says so
and why. (A 10⁵-link chain would need 74.5 GiB and hours for the DP.)
"""

from __future__ import annotations

import math

from .. import budget
from .. import structure as S
from ..chain import bracket_to_str, chain_order_costfn, linear_chain_order, matrix_chain_order
from ..costmodel import CostModel, available_memory
from ..eliminate import Problem, remember
from . import Result, naive_rest, positive, register
from .greedy import _markowitz_score, run_greedy

TAIL_SHARE = 0.3  # of the time left for Markowitz: pricing what it has not ordered by its deadline


def segments(problem: Problem) -> list[list]:
    """Maximal paths ``[a, v1, …, vk, b]`` whose interior vertices are eliminable with exactly
    one predecessor and one successor (computed once per problem: ``auto`` asks too)."""
    if "_segments" not in problem.__dict__:
        problem._segments = _segments(problem)
    return problem._segments


def _segments(problem: Problem) -> list[list]:
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


# A-priori cost of the DP, calibrated on a shared 2-core machine with a 2× margin (the dense DP
# measured ≈1 ns per n³; the structured one ≈3 µs per symbolic product, n³/6 of them).
DP_SECONDS_PER_CUBE = 2e-9
STRUCTURED_SECONDS_PER_CUBE = 1e-6
DP_BYTES_PER_SQUARE = 40  # four n×n int64 tables (costs by start and end, splits, argmins) + buffers
DP_MEMORY = 1 << 30
BRACKETING_MAX = 200  # links: longer chains get no bracketing string in the plan info


def dp_budget(n: int, structured: bool, dp_memory: int | None = None) -> str | None:
    """``None`` when the chain DP over ``n`` links fits the time left and the memory budget,
    else why not (for the plan info)."""
    secs = (STRUCTURED_SECONDS_PER_CUBE if structured else DP_SECONDS_PER_CUBE) * n ** 3
    need = DP_BYTES_PER_SQUARE * n * n
    cap = dp_memory if dp_memory is not None else default_dp_memory()
    if secs > budget.left():
        return f"the DP over {n:,} links would take ~{secs:,.3g} s, more than the {budget.left():.3g} s left"
    if need > cap:
        return f"the DP over {n:,} links would need ~{need / 2**30:,.3g} GiB, over its {cap / 2**30:.3g} GiB budget"
    return None


def default_dp_memory() -> int:
    """The DP's memory budget when none is given: ``DP_MEMORY``, at most a quarter of what the
    machine has available now."""
    avail = available_memory()
    return min(DP_MEMORY, avail // 4 if avail else DP_MEMORY)


def order_segment(problem: Problem, path: list, structured_limit: int = 80, edges: dict | None = None,
                  dp_memory: int | None = None) -> tuple[list[str], dict]:
    """Elimination order of the interior of one chain segment and notes: optimal by the DP when
    it fits the budget (see :func:`dp_budget`), else by :func:`jacc.chain.linear_chain_order`."""
    edges = problem.symbolic_edges() if edges is None else edges
    w = path[::-1]  # w0 = end, …, w_n = start
    mats = [edges[w[t + 1], w[t]] for t in range(len(w) - 1)]
    n = len(mats)
    all_dense = all(m.vlabels is not None and not any(p >= 0 for p in m.pair)
                    and len(m.vlabels) == len(m.out_shape) + len(m.in_shape) for m in mats)
    structured = not all_dense and n <= structured_limit
    note = "dense DP" if all_dense else f"dense-size DP (structured chain longer than {structured_limit})"
    if structured and dp_budget(n, True, dp_memory) is not None:
        structured = False  # the vectorised dense-size DP may still fit
        note = "dense-size DP (the structured DP would not fit the time left)"
    why = dp_budget(n, False, dp_memory)
    dims = [m.dense_size // max(1, math.prod(m.in_shape)) for m in mats] + [math.prod(mats[-1].in_shape)]
    dims = [max(d, 1) for d in dims]  # (an empty array: every order costs nothing; the DP takes sizes ≥ 1)
    if why is not None:
        res, how = linear_chain_order(dims)
        note = f"linear: {how} by dense sizes, the cheapest of left-to-right, right-to-left and greedy ({why})"
    elif not structured:
        res = matrix_chain_order(dims, check=budget.check)
    else:
        prods: dict = {(t, t): mats[t] for t in range(n)}
        tick = budget.Ticker(64)

        def prod(i: int, j: int):
            tick()
            if (i, j) not in prods:
                prods[i, j] = S.product(prod(i, j - 1), mats[j])[0]
            return prods[i, j]

        with S.pricing():
            for length in range(2, n + 1):  # fill bottom-up: no deep recursion
                for i in range(n - length + 1):
                    prod(i, i + length - 1)
            res = chain_order_costfn(n, lambda i, k, j: S.product(prods[i, k], prods[k + 1, j])[1],
                                     check=budget.check)
        note = "structured DP"
    # the DP's prices are exact for dense links and labelled structured ones (diagonal, batched,
    # Kronecker), whose products' structure does not depend on the bracketing; a lazy map (a
    # selection, reshape or embedding), a sum or a factored link may give a sub-product another
    # structure under another bracketing, so the DP's answer is a good order, not a proven one;
    # nor is the dense-size DP's for structured links
    exact = note in ("dense DP", "structured DP") and all(_plain(m) for m in mats)
    notes = {"cost": res.cost, "method": note, "exact": exact}
    if n <= BRACKETING_MAX:  # a longer one would swamp the report (and cost O(n) to write out)
        notes["bracketing"] = bracket_to_str(res.bracketing, _names(w))
    return _tree_order(res.bracketing, w), notes


def _plain(j) -> bool:
    """A link held as values over labels (dense, diagonal, batched, Kronecker): no lazy map, sum or
    factors."""
    return not (j.reshape or j.select is not None or j.embed is not None or j.terms is not None
                or j.factors is not None)


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
def chain(problem: Problem, cost_model: CostModel, *, structured_limit: int = 80, time_limit: float = 10.0,
          dp_memory: int | None = None) -> Result:
    """Matrix-chain DP: exact on chains; on other graphs, per chain segment plus Markowitz.
    Segments whose DP does not fit ``time_limit`` or ``dp_memory`` bytes are ordered in linear
    time (:func:`jacc.chain.linear_chain_order`)."""
    if isinstance(structured_limit, bool) or not isinstance(structured_limit, int) or structured_limit < 1:
        raise ValueError(f"structured_limit must be a positive int, not {structured_limit!r}")
    positive("time_limit", time_limit)
    if dp_memory is not None and (isinstance(dp_memory, bool) or not isinstance(dp_memory, int) or dp_memory < 1):
        raise ValueError(f"dp_memory must be a positive number of bytes or None, not {dp_memory!r}")
    with budget.within(time_limit):
        return _chain(problem, cost_model, structured_limit, dp_memory)


def _chain(problem: Problem, cost_model: CostModel, structured_limit: int, dp_memory: int | None) -> Result:
    segs = segments(problem)
    order: list[str] = []
    info: dict = {}
    whole = (len(segs) == 1 and len(segs[0]) - 2 == len(problem.eliminable)
             and segs[0][0] in problem.wrt and len(problem.wrt) == 1 and len(problem.of) == 1)
    edges = problem.symbolic_edges() if segs else {}
    if dp_memory is None and segs:  # read once: a scalar graph can have 10⁴ segments
        dp_memory = default_dp_memory()
    exact = whole
    linear = 0
    for done_segs, path in enumerate(segs):
        if budget.expired() and not whole:  # the rest go to the greedy below, which orders what its time allows
            info["segments left"] = f"time limit reached after {done_segs:,} of {len(segs):,} chain segments"
            break
        try:
            part, notes = order_segment(problem, path, structured_limit, edges, dp_memory)
        except budget.TimeUp:  # the estimate was too hopeful: order this segment in linear time
            part, notes = order_segment(problem, path, structured_limit, edges, dp_memory=0)
            notes["method"] = notes["method"].split(" (")[0] + " (the DP ran past the time limit)"
        if notes["method"].startswith("linear"):
            linear += 1
        exact = exact and notes.pop("exact")
        order += part
        if whole:
            info = {k: v for k, v in notes.items() if k != "cost"}
    done = set(order)
    rest = [v for v in problem.eliminable if v not in done]
    if rest:
        e = problem.eliminator()
        e.log = steps = []  # the order is priced as it is made: the plan need not price it again
        for v in order:
            e.eliminate(v)
        if not cost_model.fits(e.live_bytes):  # the DP orders ignore memory: the greedy orders it all
            info["chain segments"] = (f"the segments' DP orders hold {e.live_bytes:,} bytes, over the memory "
                                      f"limit of {cost_model.memory_limit:,}: every vertex by Markowitz")
            order, rest, segs = [], list(problem.eliminable), []
            e = problem.eliminator()
            e.log = steps = []
        picked: list[str] = []
        try:  # what the greedy leaves at its deadline is priced after it: keep a share of the time for it
            with budget.within(budget.left() * (1 - TAIL_SHARE)):
                order += run_greedy(e, rest, cost_model, _markowitz_score(cost_model), order=picked)
        except budget.TimeUp:  # keep the segments' orders and Markowitz's picks; the rest in the likely
            # cheaper naive mode (on a random graph of 30 inputs and 600 outputs, forward instead of
            # reverse prices in 0.7 s instead of 1.3 s and saves half of the multiplications)
            left, mode = naive_rest(problem, order + picked)
            order += picked + left
            info["stopped early"] = f"time limit reached: {len(left)} vertices left in {mode} order"
            if not problem.priced(order):  # (else nothing was ordered in time: the naive order, priced)
                with budget.lifted():  # only the rest is left to price, as the plan would anyway
                    for v in left:
                        e.eliminate(v)
                remember(problem, order, steps, e)
        else:
            remember(problem, order, steps, e)
    if not whole and segs:
        info["chain segments"] = (f"{len(segs)} segment(s) by DP, {len(rest)} other vertices by Markowitz"
                                  + (f" ({linear} segment(s) over the DP budget ordered in linear time)"
                                     if linear else ""))
    exact = exact and cost_model.weights == (1.0, 0.0) and cost_model.memory_limit is None
    return Result(order, info, True if exact else None)
