"""Greedy vertex-elimination heuristics: Markowitz, relative Markowitz, min-fill.

One engine, three scores. Scores live in a priority queue; after each elimination only the
neighbours of the eliminated vertex are re-scored (their incident edges are the only ones that
changed), and a popped vertex is re-scored once more before it is taken (lazy update), so each
step costs time proportional to the degrees involved, not to the graph size. Ties go to the
vertex that comes first in topological order, so results are deterministic.

Scores (lower is eliminated first):

* ``markowitz`` — the structured cost of eliminating the vertex now, i.e. the exact number of
  multiplications (with a memory objective: the cost model's score of mults and live bytes);
* ``relative-markowitz`` — that cost minus (#inputs reaching it)·(#outputs it reaches), counted
  in scalars, after angel's "lowest relative Markowitz" (Naumann & Gottschling);
* ``min-fill`` — the number of new edges the elimination creates, then its cost.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from typing import Callable

from .. import budget
from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Eliminator, Preview, Problem
from . import Result, naive_rest, positive, register

Score = Callable[[str, Preview], tuple]


def greedy_order(problem: Problem, cost_model: CostModel, make_score: Callable[[], Score], needs_fill: bool = False,
                 time_limit: float | None = None) -> list[str] | Result:
    """Eliminate by lowest score (``make_score()`` sets it up, inside the time limit) until nothing
    is left; honours the memory limit. With a ``time_limit`` (seconds) the picks made when it
    passes are kept and the other vertices follow in the likely cheaper naive mode, unsearched
    (``info["stopped early"]`` says how many)."""
    def run(picked: list[str] | None = None) -> list[str]:
        return run_greedy(problem.eliminator(), problem.eliminable, cost_model, make_score(), needs_fill, picked)

    if time_limit is None:
        return run()
    positive("time_limit", time_limit)
    picked: list[str] = []
    try:
        with budget.within(time_limit):
            return run(picked)
    except budget.TimeUp:
        left, mode = naive_rest(problem, picked)
        return Result(picked + left, {"stopped early": f"time limit reached after {len(picked):,} of "
                                                       f"{len(problem.eliminable):,} steps; the other {len(left):,} "
                                                       f"vertices in {mode} order, unsearched"})


class _CostOnly:
    """A preview that only knows the multiplication count (cheap for scalar graphs)."""

    __slots__ = ("mults",)
    fill = live_after = peak = 0

    def __init__(self, mults: int):
        self.mults = mults


def run_greedy(e: Eliminator, vertices: list[str], cost_model: CostModel, score: Score,
               needs_fill: bool = False, order: list[str] | None = None) -> list[str]:
    """Greedy elimination of ``vertices``. Scores see a full preview only when they need one
    (``needs_fill``, a memory term or a memory limit); otherwise just the cost, which is O(degree)
    on scalar graphs. Honours the planning deadline (raises ``budget.TimeUp`` past it); ``order``,
    when given, receives the picks as they are made (what was chosen before a deadline)."""
    if not cost_model.fits(e.live_bytes):
        raise MemoryLimitError(f"the graph's partial Jacobians already take {e.live_bytes:,} bytes, over the "
                               f"memory limit of {cost_model.memory_limit:,} bytes; raise memory_limit")
    rank = {v: n for n, v in enumerate(vertices)}
    current: dict[str, tuple] = {}
    heap: list = []
    if not needs_fill and cost_model.weights[1] == 0 and cost_model.memory_limit is None:
        look = lambda v: _CostOnly(e.cost(v))  # noqa: E731
    else:
        look = e.preview

    # a full preview prices a product (milliseconds on sums of many maps): look at the clock each time
    tick = budget.Ticker(1 if look == e.preview else 16)

    def push(v: str) -> None:
        tick()
        s = score(v, look(v))
        current[v] = s
        heapq.heappush(heap, (s, rank[v], v))

    for v in vertices:
        push(v)
    order = [] if order is None else order
    deferred: list[str] = []
    done: set[str] = set()
    while heap:
        tick()
        s, _, v = heapq.heappop(heap)
        if v in done or current.get(v) != s:
            continue
        pv = look(v)
        s2 = score(v, pv)
        if s2 != s:  # stale: an edge between two of its neighbours changed
            current[v] = s2
            heapq.heappush(heap, (s2, rank[v], v))
            continue
        if not cost_model.fits(pv.peak):
            deferred.append(v)
            current.pop(v)
            continue
        touched = set(e.pred.get(v, ())) | set(e.succ.get(v, ()))
        e.eliminate(v)
        done.add(v)
        order.append(v)
        for w in list(deferred):
            push(w)
        deferred.clear()
        for w in touched:
            if w in rank and w not in done:
                push(w)
    if deferred:
        need = min(e.preview(v).peak for v in deferred)
        raise MemoryLimitError(
            f"no vertex can be eliminated next within the memory limit of {cost_model.memory_limit:,} bytes "
            f"after {len(order)} steps (the cheapest next step needs {need:,} bytes); raise memory_limit")
    return order


def _markowitz_score(cost_model: CostModel) -> Score:
    return lambda v, p: (cost_model.score(p.mults, p.live_after),)


@register("markowitz")
def markowitz(problem: Problem, cost_model: CostModel, *, objective=None,
              time_limit: float | None = None) -> list[str] | Result:
    """Next eliminate the vertex whose elimination is cheapest now (structured cost).

    ``objective`` scores the steps by another objective than the plan's (the memory limit stays
    the plan's). ``"time"`` adds one per value held after the step: on graphs of arrays many steps
    cost no multiplications (selections, sums, transposes) but differ in what they leave to store,
    and the traced robot arm's order drops from 8,768 to 5,184 multiplications. ``time_limit``:
    see :func:`greedy_order` (as for ``min-fill`` and ``relative-markowitz``)."""
    if objective is not None:
        cost_model = dataclasses.replace(cost_model, objective=objective)
    return greedy_order(problem, cost_model, lambda: _markowitz_score(cost_model), time_limit=time_limit)


def extra_starts(problem: Problem, cost_model: CostModel) -> list[tuple[str, dict]]:
    """Heuristic orders ``auto`` also prices: on graphs of arrays, Markowitz scored by ``"time"``
    unless the plan's objective is that. (As a start for ``anneal`` it helps some problems and
    hurts others, so the searches keep their own starts.)"""
    if problem.scalar or cost_model.objective == "time":
        return []
    return [("markowitz", {"objective": "time"})]


@register("min-fill")
def min_fill(problem: Problem, cost_model: CostModel, *, time_limit: float | None = None) -> list[str] | Result:
    """Next eliminate the vertex that creates the fewest new edges (then the cheapest)."""
    return greedy_order(problem, cost_model, lambda: lambda v, p: (p.fill, cost_model.score(p.mults, p.live_after)),
                        needs_fill=True, time_limit=time_limit)


@register("relative-markowitz")
def relative_markowitz(problem: Problem, cost_model: CostModel, *,
                       time_limit: float | None = None) -> list[str] | Result:
    """Markowitz cost relative to the (inputs reaching × outputs reached) of the vertex."""
    def make_score() -> Score:  # (the reach sizes take a pass over the graph: inside the time limit)
        indep, dep = reach_sizes(problem)
        return lambda v, p: (cost_model.score(p.mults, p.live_after) - indep[v] * dep[v],)
    return greedy_order(problem, cost_model, make_score, time_limit=time_limit)


def reach_sizes(problem: Problem) -> tuple[dict[str, int], dict[str, int]]:
    """Scalar sizes of the inputs reaching each vertex and of the outputs it reaches."""
    g = problem.graph
    succ: dict = {}
    pred: dict = {}
    for u, v in problem.edges:
        succ.setdefault(u, []).append(v)
        pred.setdefault(v, []).append(u)
    rank = g._order  # insertion order, topological as traced graphs are built: no whole-graph pass per group
    order = sorted(set(pred) | set(succ), key=rank.__getitem__)
    if not all(rank[u] < rank[v] for u, v in problem.edges):
        order = [v for v in g.topological_order() if v in pred or v in succ]
    inbits = {x: 1 << n for n, x in enumerate(problem.wrt)}
    insize = [g.nx.nodes[x]["shape"] for x in problem.wrt]
    outs = [y for y in problem.of]
    outbits = {y: 1 << n for n, y in enumerate(outs)}
    reach_in: dict = {}
    for v in order:
        b = inbits.get(v, 0)
        for u in pred.get(v, ()):
            b |= reach_in[u]
        reach_in[v] = b
    reach_out: dict = {}
    for v in reversed(order):
        b = outbits.get(v, 0)
        for w in succ.get(v, ()):
            b |= reach_out[w]
        reach_out[v] = b

    tick = budget.Ticker(64)

    def weigh(bits: int, sizes: list[int]) -> int:
        tick()
        total = 0
        while bits:  # one round per set bit, lowest first (not one per bit position)
            low = bits & -bits
            total += sizes[low.bit_length() - 1]
            bits ^= low
        return total

    insizes = [math.prod(s) for s in insize]
    outsizes = [math.prod(g.shape(y)) for y in outs]
    indep = {v: weigh(reach_in.get(v, 0), insizes) for v in problem.eliminable}
    dep = {v: weigh(reach_out.get(v, 0), outsizes) for v in problem.eliminable}
    return indep, dep


