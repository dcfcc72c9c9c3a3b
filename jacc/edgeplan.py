"""Plans made of edge or face eliminations: ``jacc.plan(graph, strategy, elimination="edge")``.

Vertex elimination (:class:`jacc.plan.Plan`) removes a vertex with all its edges at once; edge and
face elimination (:mod:`jacc.edges`, :mod:`jacc.faces`, after Naumann) remove one edge or one
pair of consecutive edges at a time and can need fewer multiplications. An :class:`EdgePlan`
holds such a sequence of *moves* with its priced steps, prints a report like a vertex plan,
executes at new input values and draws itself (:func:`jacc.render`).

Strategies: each kind has its own registry (``jacc.edges.EDGE_STRATEGIES``,
``jacc.faces.FACE_STRATEGIES``: ``forward``, ``reverse``, ``greedy``, ``optimal``); ``auto``
runs ``optimal`` where the exact search is within its size limit, else the cheaper of ``greedy``
and vertex ``auto``'s order written as moves. Any
vertex strategy (``markowitz``, ``anneal``, …) or an explicit vertex order is accepted too: its
order is written as edge (or face) moves, at exactly the vertex plan's cost. Only the ``mults``
objective applies.

>>> from jacc import examples
>>> from jacc.plan import plan
>>> lion = examples.lion()
>>> plan(lion, "optimal").mults, plan(lion, "optimal", elimination="edge").mults
(12, 11)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import budget
from .costmodel import CostModel
from .edges import (
    EDGE_STRATEGIES,
    EdgeSearchSizeError,
    EdgeStep,
    Move,
    accumulate_edges,
    price_edges,
    priced_vertex_moves,
    run_edge_strategy,
    vertex_moves,
)
from .eliminate import Problem
from .faces import FACE_STRATEGIES, accumulate_faces, price_faces, priced_faces, run_face_strategy
from .graph import Graph
from .plan import Costs

ELIMINATIONS = ("vertex", "edge", "face")


@dataclass(frozen=True)
class _Kind:
    """What differs between edge and face elimination."""

    strategies: Mapping[str, Callable]
    run: Callable
    price: Callable
    accumulate: Callable
    #: a vertex order as moves, with their steps and multiplications (priced in the same pass)
    from_vertex_order: Callable[[Problem, Sequence[str]], tuple[list, list[EdgeStep], int]]


_KINDS = {
    "edge": _Kind(EDGE_STRATEGIES, run_edge_strategy, price_edges, accumulate_edges, priced_vertex_moves),
    "face": _Kind(FACE_STRATEGIES, run_face_strategy, price_faces, accumulate_faces,
                  lambda p, order: priced_faces(p, vertex_moves(p, order))),
}


@dataclass
class EdgePlan(Costs):
    """An edge- or face-elimination plan: plain data plus :meth:`execute` and a report."""

    elimination: str
    strategy: str
    moves: list[Move]
    steps: list[EdgeStep]
    mults: int
    graph: Graph
    wrt: list[str]
    of: list[str]
    cost_model: CostModel = field(default_factory=CostModel)
    planning_seconds: float = 0.0
    optimal: bool | None = None
    info: dict = field(default_factory=dict)

    def execute(self, *args, **named) -> dict[tuple[str, str], np.ndarray]:
        """The Jacobian blocks ``{(output, input): array}`` at new input values (positional in
        ``graph.inputs`` order, or by name), as :meth:`jacc.Plan.execute`."""
        from .plan import values_at

        with np.errstate(all="ignore"):  # (silent on overflow, as Plan.execute: the blocks hold the inf/NaN)
            return _KINDS[self.elimination].accumulate(self.problem, values_at(self.graph, args, named),
                                                       self.moves).blocks

    def compile(self, backend: str = "auto"):
        raise NotImplementedError(
            f"compile: {self.elimination}-elimination plans run on the executor (plan.execute); "
            "vertex plans (elimination='vertex') compile to programs")

    def describe_step(self, s: EdgeStep) -> str:
        arrow = "→".join(map(str, s.edge))
        return f"{s.kind} {arrow}"

    def __str__(self) -> str:
        g = self.graph
        lines = [
            f"  Graph: {g.name} ({len(self.wrt)} input(s) → {len(self.of)} output(s), "
            f"{len(self.problem.eliminable)} eliminable vertices)",
            f"  Strategy: {self.strategy}   elimination: {self.elimination}   objective: mults",
            "  Cost convention: mults = scalar multiplications (FMAs); FLOPs = 2·mults",
            f"  Naive forward cost:  {self.forward_mults:>17,} mults (vertex elimination)",
            f"  Naive reverse cost:  {self.reverse_mults:>17,} mults (vertex elimination)",
            f"  This plan's cost:    {self.mults:>17,} mults ({self.flops:,} FLOPs)",
            f"  Speedup over best of forward/reverse: {self.speedup:.3g}×",
            f"  Planning time: {self.planning_seconds:.3g} s"
            + ("" if self.optimal is None else f"; proven optimal: {'yes' if self.optimal else 'no'}"),
        ]
        lines += [f"  {k}: {v}" for k, v in self.info.items() if k != "mults"]
        rule = "-" * 78
        lines += [rule, f"{'step':>5}  {'move':<34} {'mults':>10} {'fill-in':>8} {'added to':>9}", rule]
        for n, s in enumerate(self.steps, 1):
            lines.append(f"{n:>5}  {self.describe_step(s):<34} {s.mults:>10,} {len(s.fill_in):>8} "
                         f"{len(s.absorbed):>9}")
        return "\n".join(lines)


def plan_edges(graph: Graph, strategy: Any, elimination: str, wrt: Sequence[str] | None,
               of: Sequence[str] | None, cost_model: CostModel, options: dict) -> EdgePlan:
    """The :class:`EdgePlan` that ``jacc.plan(..., elimination=...)`` returns (see the module)."""
    if elimination not in _KINDS:
        raise ValueError(f"elimination must be one of {ELIMINATIONS}, not {elimination!r}")
    if cost_model.weights != (1.0, 0.0) or cost_model.memory_limit is not None:
        raise ValueError(f"elimination={elimination!r} supports the 'mults' objective without a memory "
                         "limit only; use elimination='vertex' for memory objectives and limits")
    kind = _KINDS[elimination]
    t0 = time.perf_counter()
    limit = options.get("time_limit")
    with budget.within(limit if isinstance(limit, (int, float)) and not isinstance(limit, bool)
                       and limit > 0 else budget.INF):
        problem = Problem.from_graph(graph, wrt, of)
        try:
            moves, name, info, optimal, priced = _choose(problem, strategy, elimination, kind, cost_model, options)
        except budget.TimeUp:  # (a face heuristic: no sequence to return before it finishes)
            raise TimeoutError(
                f"{elimination} elimination's {strategy!r} did not finish within time_limit={limit} s on this "
                f"graph ({len(problem.eliminable):,} eliminable vertices): pass a vertex strategy (its order is "
                "rewritten as moves), elimination='edge' or 'vertex', or a larger time_limit") from None
    if priced is None:
        with budget.lifted():
            priced = kind.price(problem, moves)
    steps, mults = priced
    p = EdgePlan(elimination, name, list(moves), steps, mults, graph, problem.wrt, problem.of, cost_model,
                 time.perf_counter() - t0, optimal, info)
    p.__dict__["_problem"] = problem
    return p


#: the share of the time left that ``auto`` gives vertex auto on graphs too large for the exact
#: edge or face search (the greedy moves get the rest)
VERTEX_SHARE = 0.85


def _choose(problem: Problem, strategy: Any, elimination: str, kind: _Kind, cm: CostModel,
            options: dict) -> tuple[list, str, dict, bool | None, tuple | None]:
    """(moves, name, info, optimal, (steps, mults) where already priced)."""
    from .plan import _PROOFS, Plan
    from .strategies import run_strategy

    if isinstance(strategy, EdgePlan):
        if strategy.elimination != elimination:
            raise ValueError(f"a {strategy.elimination}-elimination plan cannot be used with "
                             f"elimination={elimination!r}")
        if (strategy.graph is problem.graph and list(strategy.wrt) == list(problem.wrt)
                and list(strategy.of) == list(problem.of)):
            return list(strategy.moves), strategy.strategy, dict(strategy.info), strategy.optimal, None
        # its proof and bound were for another graph: the moves stand (where they apply), unproven
        info = {k: v for k, v in strategy.info.items() if k not in _PROOFS}
        info["reused"] = (f"the moves of a {strategy.strategy} plan made for another graph; its optimality "
                          "and bounds are not carried over")
        return list(strategy.moves), strategy.strategy, info, False, None
    if isinstance(strategy, str) and strategy.lower() == "auto":
        exact = {k: v for k, v in options.items() if k != "seed"}  # (seed: for vertex auto's anneal)
        try:  # the exact search starts from the vertex heuristics' orders: never worse than them
            r = kind.run("optimal", problem, cm, **exact)
            return list(r.order), "auto→optimal", dict(r.info), r.optimal, r.priced
        except EdgeSearchSizeError:
            pass
        except TypeError as e:  # (an option auto's exact search does not take: named as auto's)
            raise TypeError(f"{elimination} strategy 'auto' gives its options to its exact search, 'optimal': {e}") \
                from None
        # too large to search: the cheaper of vertex auto's order as moves and the greedy moves.
        # Vertex auto runs first, with most of the time left: its order is the floor (min of
        # forward, reverse and Markowitz when time allows), and greedy moves, which rarely beat it,
        # had left it too little time to reach Markowitz (hunts CB, CC: 860 and 1,230 where
        # Markowitz takes 632 and 885); greedy is dropped when it does not finish
        share = max(budget.left(), 0.0) * VERTEX_SHARE
        vertex_options = dict(options)
        if share < budget.INF:  # (its time_limit too: its own shares of the time are of that)
            vertex_options["time_limit"] = max(share, 1e-6)
        with budget.within(share):
            order = run_strategy("auto", problem, cm, **vertex_options)[0]
        try:  # (stopped by the deadline, not completed; face greedy stops so anyway)
            r = kind.run("greedy", problem, cm, **({"complete": False} if elimination == "edge" else {}))
        except budget.TimeUp:
            r = None
        with budget.lifted():  # (an order is rewritten as moves whatever the deadline, as it is priced)
            moves, steps, mults = kind.from_vertex_order(problem, order)
            if r is None or mults < r.info["mults"]:
                info = {} if r is not None else {"stopped early": "time limit reached before the greedy moves "
                                                                  "finished; vertex auto's order as moves"}
                return moves, "auto→vertex auto (as moves)", info, None, (steps, mults)
        return list(r.order), "auto→greedy", dict(r.info), r.optimal, r.priced
    if isinstance(strategy, str) and strategy.lower() in kind.strategies:
        r = kind.run(strategy, problem, cm, **options)
        return list(r.order), r.name or strategy.lower(), dict(r.info), r.optimal, r.priced
    if isinstance(strategy, (list, tuple)) and strategy and all(isinstance(m, (list, tuple)) and len(m) == 2
                                                                and isinstance(m[1], (list, tuple))
                                                                for m in strategy):
        return [(k, tuple(e)) for k, e in strategy], "explicit", {}, None, None
    # a vertex strategy, vertex order or vertex Plan: its order as moves, at the same cost
    if isinstance(strategy, Plan):
        order, name = strategy.order, strategy.strategy
    else:
        order, name, _, _ = run_strategy(strategy, problem, cm, **options)
    with budget.lifted():
        moves, steps, mults = kind.from_vertex_order(problem, order)
    return moves, f"{name} (vertex order as {elimination} moves)", {}, None, (steps, mults)
