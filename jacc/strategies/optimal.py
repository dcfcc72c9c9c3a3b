"""``optimal``: the exact minimum over vertex-elimination orders, or a proven bound on it.

The graph after eliminating a *set* S does not depend on the order inside S: edge (i, k) exists
iff a path i → k runs through S only, and it carries the sum over those paths. So a search over
sets is exact. The edge Jacobians of G_S are memoised by (i, k, S ∩ between(i, k)), and the cost
of eliminating v from G_S by (v, S ∩ (ancestors ∪ descendants of v)), so states share work.

* objective ``mults``: A* over sets (:func:`astar`), f = g + h with the admissible lower bounds
  of :mod:`jacc.strategies.bounds` on graphs of scalars (h = 0, i.e. Dijkstra, on array
  graphs), pruned by the best heuristic order (forward, reverse, Markowitz, min-fill, relative
  Markowitz): a popped set whose f reaches that order's cost proves the order optimal. Anytime:
  stopped by ``time_limit`` or ``max_states``, it returns the best order known (a heuristic, or
  a greedy completion of the deepest set reached) and ``info["lower bound"]`` = the smallest f
  still open, a proven bound on every order, with ``info["gap"]`` saying how far apart they are;
* objective ``memory`` or a weighted combination: a level-by-level search keeping the Pareto
  front of (mults, peak bytes) per set, pruned by the same bound;
* a memory limit removes every set whose live Jacobians exceed it (live bytes depend on the
  set only, so this stays exact).

:func:`lower_bound` runs the search only for its bound, for reports next to any order.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

from .. import budget
from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Problem, step_memory, totals
from ..progress import SearchLine
from . import HEURISTICS, Result, best_of, naive_first, naive_rest, positive, register
from .bounds import UnitComponents, cuts_of, is_scalar

MAX_STATES = 1_000_000  # sets stored before the search stops (about 0.5 GB measured on robotarm, 110 vertices)


class SearchSizeError(ValueError):
    """The problem is larger than an explicit ``max_vertices``."""


class _Sets:
    """Memoised edge Jacobians and step costs of G_S for sets S of eliminated vertices."""

    def __init__(self, edges: dict, verts: list, algebra, bounds: bool = True):
        self.alg = algebra
        self.orig = dict(edges)
        self.verts = list(verts)
        self.bit = {v: 1 << n for n, v in enumerate(self.verts)}
        succ: dict = {}
        pred: dict = {}
        for u, v in self.orig:
            succ.setdefault(u, []).append(v)
            pred.setdefault(v, []).append(u)
        keys = set(succ) | set(pred)
        self.anc: dict = {}
        self.desc: dict = {}
        topo = _topo(keys, pred, succ)
        # ancestors and descendants take O(vertices²) on deep graphs (27,000 scalars of an MLP:
        # 20 s): watch the clock (raises budget.TimeUp)
        tick = budget.Ticker(1)
        anc_all: dict = {}
        for v in topo:
            tick()
            a = set()
            for u in pred.get(v, ()):
                a |= anc_all[u] | {u}
            anc_all[v] = a
        desc_all: dict = {}
        for v in reversed(topo):
            tick()
            d = set()
            for w in succ.get(v, ()):
                d |= desc_all[w] | {w}
            desc_all[v] = d
        pos = {v: n for n, v in enumerate(topo)}  # (topo.index is a scan: quadratic on 5,000 vertices)
        bit = self.bit.get
        self.anc_list, self.desc_list, self.anc, self.desc = {}, {}, {}, {}
        for v in keys:
            tick()
            self.anc_list[v] = sorted(anc_all[v], key=pos.__getitem__)
            self.desc_list[v] = sorted(desc_all[v], key=pos.__getitem__)
            self.anc[v] = sum(bit(u, 0) for u in anc_all[v])
            self.desc[v] = sum(bit(u, 0) for u in desc_all[v])
        self.memo: dict = {}
        self.cost_memo: dict = {v: {} for v in self.verts}
        self.rel = {v: self.anc[v] | self.desc[v] for v in self.verts}
        self.prod_memo: dict = {}
        # lower bounds (bounds.py); ``bounds=False`` (window polishing) skips their set-up cost
        self.scalar = bounds and is_scalar(algebra)
        self.cuts = cuts_of(self.orig, self.verts, algebra) if self.scalar else {v: (0, 0) for v in self.verts}
        self.floor = {v: a * b for v, (a, b) in self.cuts.items()}
        self.units = UnitComponents(self.orig, self.verts, algebra, cuts=self.cuts) if self.scalar else None
        self.comp_of = {v: n for n, (vs, _) in enumerate(self.units.comps) for v in vs} if self.units else {}
        self.step_memo: dict = {v: {} for v in self.verts}
        self.mem_memo: dict = {v: {} for v in self.verts}

    def edge(self, i, k, S: int):
        rel = S & self.desc[i] & self.anc[k]
        key = (i, k, rel)
        hit = self.memo.get(key, self)
        if hit is not self:
            return hit
        if rel == 0:
            r = self.orig.get((i, k))
        else:
            low = rel & -rel
            u = self.verts[low.bit_length() - 1]
            rest = rel ^ low
            r = self.edge(i, k, rest)
            a, b = self.edge(u, k, rest), self.edge(i, u, rest)
            if a is not None and b is not None:
                c = self.alg.product(a, b)[0]
                r = c if r is None else self.alg.add(r, c)
        self.memo[key] = r
        return r

    def _prod_cost(self, a, b) -> int:
        key = (id(a), id(b))
        c = self.prod_memo.get(key)
        if c is None:
            c = self.alg.product(a, b)[1]
            self.prod_memo[key] = c
        return c

    def neighbours(self, v, S: int):
        preds = [(i, j) for i in self.anc_list[v] if not (S & self.bit.get(i, 0))
                 and (j := self.edge(i, v, S)) is not None]
        succs = [(k, j) for k in self.desc_list[v] if not (S & self.bit.get(k, 0))
                 and (j := self.edge(v, k, S)) is not None]
        return preds, succs

    def cost(self, v, S: int) -> int:
        key = S & self.rel[v]
        c = self.cost_memo[v].get(key)
        return c if c is not None else self._cost_of(v, key, *self.neighbours(v, S))

    def _cost_of(self, v, key: int, preds, succs) -> int:
        """The cost of eliminating v, from its neighbours in G_S (``key`` = S ∩ rel[v]), memoised."""
        memo = self.cost_memo[v]
        c = memo.get(key)
        if c is None:
            c = memo[key] = sum(self._prod_cost(a, b) for _, a in succs for _, b in preds)
        return c

    def step(self, v, S: int) -> tuple[int, int]:
        """(cost of eliminating v from G_S, a lower bound on its cost from any later set).

        The bound strengthens :func:`bounds.floors_of` with G_S: a value edge from an input
        (or to a sink) never goes away, since inputs and sinks are never eliminated and a value
        stays a value, so v keeps at least that many value predecessors (successors)."""
        memo = self.step_memo[v]
        key = S & self.rel[v]
        hit = memo.get(key)
        if hit is None:
            preds, succs = self.neighbours(v, S)
            c = self._cost_of(v, key, preds, succs)
            lb = self.floor[v]
            if self.scalar:
                bit = self.bit
                k_in = sum(1 for i, a in preds if a & 1 and i not in bit)
                k_out = sum(1 for k, b in succs if b & 1 and k not in bit)
                cut_in, cut_out = self.cuts[v]
                lb = max(cut_in, k_in) * max(cut_out, k_out)
            hit = memo[key] = (c, lb)
        return hit

    def h(self, S: int, steps) -> float:
        """The admissible bound on the cost still to pay from G_S, given ``steps`` = (v, bit,
        (cost, floor)) for every v outside S: the floors, except that each unit-edge component
        (:class:`bounds.UnitComponents`) counts at least its orientation bound."""
        if not self.comp_of:
            return float(sum(lb for _, _, (_, lb) in steps))
        free, per = 0, {}
        for v, _, (_, lb) in steps:
            n = self.comp_of.get(v)
            if n is None:
                free += lb
            else:
                per[n] = per.get(n, 0) + lb
        done = _Done(self.bit, S)
        return float(free + sum(max(t, self.units.component(n, done)) for n, t in per.items()))

    @classmethod
    def of(cls, problem: Problem) -> "_Sets":
        e = problem.eliminator()
        return cls({(u, v): j for u, row in e.succ.items() for v, j in row.items()}, problem.eliminable,
                   e.algebra)

    def memory(self, v, S: int) -> tuple[int, int]:
        """(change of live bytes, most bytes held on top of G_S's during the step) when v is
        eliminated from G_S (:func:`jacc.eliminate.step_memory`)."""
        nb = self.alg.nbytes
        key = S & self.rel[v]
        hit = self.mem_memo[v].get(key)
        if hit is None:  # v's own edges and products depend on its ancestors and descendants only
            preds, succs = self.neighbours(v, S)
            self._cost_of(v, key, preds, succs)  # (the same neighbours price the step)
            own = sum(nb(j) for _, j in preds) + sum(nb(j) for _, j in succs)
            hit = self.mem_memo[v][key] = (own, [(i, k, self.desc[i] & self.anc[k], self._product_bytes(a, b))
                                                 for i, b in preds for k, a in succs])
        own, pairs = hit
        S2 = S | self.bit[v]
        memo, edge, pieces = self.memo, self.edge, []
        for i, k, between, made in pairs:  # (edge(i, k, S) inlined: this runs per step of a search)
            old = memo.get((i, k, S & between), memo)
            if old is memo:
                old = edge(i, k, S)
            if old is None:
                pieces.append((made, None, 0))
            else:
                new = memo.get((i, k, S2 & between), memo)
                pieces.append((made, nb(old), nb(edge(i, k, S2) if new is memo else new)))
        return step_memory(pieces, own)

    def _product_bytes(self, a, b) -> int:
        key = (id(a), id(b), "bytes")
        c = self.prod_memo.get(key)
        if c is None:
            c = self.prod_memo[key] = self.alg.nbytes(self.alg.product(a, b)[0])
        return c


class _Done:
    """``v in done``: v is in the set S (a bit mask)."""

    __slots__ = ("bit", "S")

    def __init__(self, bit: dict, S: int):
        self.bit, self.S = bit, S

    def __contains__(self, v) -> bool:
        return bool(self.S & self.bit.get(v, 0))


def _topo(keys, pred, succ) -> list:
    indeg = {v: len(pred.get(v, ())) for v in keys}
    ready = sorted((v for v in keys if indeg[v] == 0), key=str)
    out = []
    while ready:
        v = ready.pop()
        out.append(v)
        for w in succ.get(v, ()):
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    return out


def _heuristic_bound(problem: Problem, cm: CostModel, share: float = 0.5):
    """(score, order, name, peak) of the best heuristic order that fits, or ``None`` when none
    fits the memory limit. Each heuristic may use ``share`` of the time left; raises
    ``budget.TimeUp`` when none was priced and some were stopped by their time share (a
    heuristic's share can end before the deadline does, so ``budget.expired()`` cannot tell)."""
    first = naive_first(problem)
    names = first + tuple(h for h in HEURISTICS if h not in first)
    stopped: list = []
    best = best_of(problem, cm, [(name, {}) for name in names], share=share, timed_out=stopped)
    if best is None and stopped:
        raise budget.TimeUp
    return (best[0], best[1], best[2], best[5]) if best else None


def _fallback(problem: Problem, who: str, info: dict, unpriced: list | None = None) -> Result:
    """What a search returns when its time limit passed before any order was priced: the first
    order found but not priced in time, else forward or reverse, whichever is likely cheaper
    (:func:`naive_first`)."""
    if unpriced:
        name, order = unpriced[0]
    else:
        order, name = naive_rest(problem, [])
    info["stopped early"] = (f"{who}: time limit reached before any order could be priced; returning "
                             f"{name}'s order unchecked (raise time_limit to compare it with others)")
    return Result(list(order), info, False)


@register("optimal")
def optimal(problem: Problem, cost_model: CostModel, *, time_limit: float = 10.0,
            max_states: int = MAX_STATES, max_vertices: int | None = None, progress: bool | None = None) -> Result:
    """Exact A* search over sets of eliminated vertices (see the module docstring). ``progress``:
    a status line on stderr while it runs (time, sets explored, best order's cost, proven lower
    bound); ``None`` follows :func:`jacc.progress.shown`."""
    positive("time_limit", time_limit)
    _count("max_states", max_states)
    if max_vertices is not None:
        _count("max_vertices", max_vertices)
        n = len(problem.eliminable)
        if n > max_vertices:
            raise SearchSizeError(
                f"optimal: the problem has {n} eliminable vertices, above the size limit max_vertices="
                f"{max_vertices} (the exact search visits up to 2^n sets); use 'anneal' or 'auto', or pass "
                "a larger max_vertices")
    with budget.within(time_limit):
        return _optimal(problem, cost_model, time_limit, max_states, progress)


def _count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, not {value!r}")


def lower_bound(problem: Problem, cost_model: CostModel | None = None, time_limit: float = 10.0,
                max_states: int = MAX_STATES) -> tuple[int, list[str] | None]:
    """(proven lower bound on the multiplications of every order, an order proven optimal or
    ``None``) from the A* search of :func:`optimal` run for ``time_limit`` seconds. A memory
    objective is replaced by ``mults`` (the memory limit, if any, stays: the bound is then on the
    orders that fit it).

    >>> from jacc import examples
    >>> lower_bound(Problem.from_graph(examples.lion()))[0]
    12
    """
    from . import run_strategy

    cm = cost_model or CostModel()
    if cm.weights[1] != 0:  # the bound is on multiplications: search for them, same memory limit
        cm = dataclasses.replace(cm, objective="mults")
    positive("time_limit", time_limit)
    # through run_strategy, so independent groups of vertices are searched one by one
    order, _, info, optimal = run_strategy("optimal", problem, cm, time_limit=time_limit, max_states=max_states)
    return info.get("lower bound", 0), (order if optimal else None)


def run_optimal(problem: Problem, cost_model: CostModel, time_limit: float = 10.0,
                max_states: int = MAX_STATES) -> Result:
    """:func:`optimal` without the option checks (for :func:`lower_bound` and other strategies)."""
    positive("time_limit", time_limit)
    with budget.within(time_limit):
        return _optimal(problem, cost_model, time_limit, max_states)


def _optimal(problem: Problem, cost_model: CostModel, time_limit: float, max_states: int,
             progress: bool | None = None) -> Result:
    with SearchLine("optimal", progress, time_limit, "sets") as report:
        return _optimal_search(problem, cost_model, time_limit, max_states, report)


def _optimal_search(problem: Problem, cost_model: CostModel, time_limit: float, max_states: int,
                    report: Callable | None) -> Result:
    try:
        bound = _heuristic_bound(problem, cost_model)
    except budget.TimeUp:
        bound = None
    try:
        sets = _Sets.of(problem)
    except budget.TimeUp:  # the search's set-up alone outlasted the limit: the known order
        return _no_proof(problem, cost_model, bound, {"sets explored": 0},
                         f"time limit {time_limit:g} s (while setting up the search)")
    live0 = sum(sets.alg.nbytes(j) for j in sets.orig.values())
    if not cost_model.fits(live0):
        raise MemoryLimitError(f"the graph's own partial Jacobians take {live0:,} bytes, over the "
                               f"memory limit {cost_model.memory_limit:,}")
    a, b = cost_model.weights
    if b == 0:
        return _mults_search(problem, sets, cost_model, bound, live0, time_limit, max_states, report)
    found, explored, stopped = _pareto(sets, cost_model, bound, live0, budget.deadline(), report)
    info = {"sets explored": explored}
    if found is not None:
        return Result(found, info, True)
    return _no_proof(problem, cost_model, bound, info, f"time limit {time_limit:g} s" if stopped else None)


def _no_proof(problem, cost_model, bound, info, stopped: str | None) -> Result:
    """The known order when the search found none cheaper: proven unless it ``stopped`` early
    (``stopped`` names the limit that stopped it)."""
    if bound is None and (stopped or budget.expired()):
        return _fallback(problem, "optimal", info)
    if bound is None:
        raise MemoryLimitError(f"no elimination order fits the memory limit of {cost_model.memory_limit:,} bytes"
                               + (" (search stopped at the time limit)" if stopped else ""))
    if stopped:
        info["stopped early"] = f"{stopped} reached; best known order is {bound[2]}'s (not proven optimal)"
        return Result(bound[1], info, False)
    info["bound"] = f"{bound[2]} is optimal (no cheaper set of eliminations exists)"
    return Result(bound[1], info, True)


def _mults_search(problem, sets, cm, bound, live0, time_limit, max_states, report=None) -> Result:
    """A* for the mults objective: the answer plus its proven lower bound and gap in ``info``."""
    a = cm.weights[0]
    bound_m = (bound[0] / a, *bound[1:]) if bound else None  # the search counts multiplications
    # First the multiplications alone: labels (mults, peak) make far more labels per set to
    # expand, and the proof of the optimum needs none of them; then, with the time left, the
    # orders of that optimum for a smaller peak (on graphs of scalars peaks differ by a few bytes:
    # not searched).
    deadline, t0 = budget.deadline(), time.perf_counter()
    r = astar(sets, cm, bound_m, live0, deadline, max_states=max_states, peaks=False, report=report)
    info: dict = {"sets explored": r.explored}
    stopped = {None: None, "time": f"time limit {time_limit:g} s", "states": f"max_states={max_states}"}[r.stopped]
    if r.stopped is None and not is_scalar(sets.alg) and (r.found is not None or bound_m is not None):
        # (the ties may take as long as the proof took, within the deadline)
        ties_deadline = min(deadline, 2 * time.perf_counter() - t0 + 0.05)
        r = _fewer_bytes(problem, sets, cm, r, bound_m, live0, ties_deadline, max_states, info)
    if r.found is not None:
        res = Result(r.found, info, True)
        cost = r.lower
    elif r.best is not None:
        info["stopped early"] = f"{stopped} reached; best known order: a greedy completion of the search's deepest set"
        res, cost = Result(r.best[1], info, False), r.best[0]
    else:
        res = _no_proof(problem, cm, bound_m, info, stopped)
        cost = bound_m[0] if bound_m else None
    lower = int(math.ceil(r.lower - 1e-9)) if r.lower != float("inf") else None
    if not problem.scalar and cost is not None and res.order:
        res, cost, lower = _checked_by_pricing(problem, res, cost, lower, bound_m, info, cm)
    if not res.optimal and cost is not None and lower is not None and cost <= lower:
        res.optimal = True  # stopped, but the order already meets the proven bound
        info["bound"] = f"{info.pop('stopped early').split(';')[0]}, but the order meets the proven lower bound"
    if res.optimal:
        lower = cost = int(cost)
    info["lower bound"], info["root bound"] = lower, int(r.root)
    info["gap"] = _gap(cost, lower, int(r.root))
    return res


def _fewer_bytes(problem, sets, cm, r: "Search", bound, live0, deadline, max_states, info: dict) -> "Search":
    """After the search ``r`` proved the optimum (its order, or the bound's), the order of that
    many mults with the smallest peak, searched until ``deadline``: ``r`` with that order found,
    or ``r`` unchanged with a note when the time ran out first."""
    order = list(r.found) if r.found is not None else list(bound[1])
    with budget.lifted():  # (the proof stands whatever the clock says: its order is priced past a deadline)
        mults, peak = totals(problem, order)
    if mults != round(r.lower if r.found is not None else bound[0]):  # the set model and pricing differ:
        return r  # (the caller's pricing check says so)
    ties = astar(sets, cm, (mults, order, "optimal", peak), live0, deadline, max_states=max_states,
                 complete=False)
    info["sets explored"] += ties.explored
    if ties.found is not None:
        r.found, r.lower = ties.found, mults
    elif ties.stopped is not None:
        info["ties"] = (f"orders of {mults:,} mults with a smaller peak than {peak:,} bytes not all searched "
                        + ("(that search may take as long as the proof took, within the time limit)"
                           if ties.stopped == "time" else f"(max_states={max_states})"))
    return r


def _checked_by_pricing(problem, res: Result, cost, lower, bound, info: dict, cm: CostModel):
    """The search's answer priced by eliminating in its order. On graphs of arrays the search's
    set model can price a step below what the elimination pays, or hold fewer bytes live than it
    does (a fill edge's structure — a sum of maps or one block — can depend on the order of
    earlier eliminations, not only on their set): then neither the proof nor the bound is claimed,
    and the cheaper of the answer (where it fits the memory limit) and the heuristic order, as
    priced, is returned. (Scalar graphs: every step's cost depends on the set alone, and the proof
    stands.)"""
    from ..eliminate import price

    with budget.lifted():  # the plan prices its order anyway; this is that pricing
        _, paid, peak = price(problem, list(res.order))
    fits = cm.fits(peak)
    if paid == int(cost) and fits:
        return res, cost, lower
    info["exact search"] = (f"its set model prices this order at {int(cost):,} mults but eliminating in it "
                            f"costs {paid:,}" if paid != int(cost) else
                            f"its set model keeps this order within the memory limit of {cm.memory_limit:,} "
                            f"bytes but eliminating in it holds {peak:,}") + (
        ": on these structured partials a step's cost depends on the order of earlier steps, so the search's "
        "proof and bound do not hold")
    order, cost = (list(res.order), paid) if fits else (None, None)
    if bound is not None and (cost is None or bound[0] < cost):
        order, cost = list(bound[1]), bound[0]
        info["exact search"] += f"; {bound[2]}'s order is {'cheaper' if fits else 'within it'} ({int(cost):,}) " \
                                "and is returned"
    info.pop("bound", None)
    if len(problem.eliminable) <= EXHAUSTIVE_MAX:  # few orders: price every one (a proof, by exhaustion)
        try:
            best = _every_order(problem, cm)
        except budget.TimeUp:
            best = ()
        if best is None:
            raise MemoryLimitError(f"no elimination order fits the memory limit of {cm.memory_limit:,} bytes "
                                   "(every order priced)")
        if best:
            info["exact search"] += f"; every order priced: {best[0]:,} is optimal"
            return Result(best[1], info, True), best[0], best[0]
    if order is None:  # (no order known to fit: the plan says so when it prices this one)
        order, cost = list(res.order), paid
    return Result(order, info, False), cost, None


EXHAUSTIVE_MAX = 7  # 5,040 orders


def _every_order(problem, cm: CostModel) -> tuple[int, list[str]] | None:
    """(mults, order) of the cheapest order that fits ``cm``'s memory limit (the smaller peak among
    equal mults), every order priced by elimination (under the deadline); None when none fits."""
    import itertools

    from ..eliminate import price

    best = None
    for order in itertools.permutations(problem.eliminable):
        budget.check()
        _, mults, peak = price(problem, list(order))
        if cm.fits(peak) and (best is None or (mults, peak) < best[:2]):
            best = (mults, peak, list(order))
    return None if best is None else (best[0], best[2])


def _gap(cost, lower, root) -> str:
    """A readable account of how far the answer can be from the optimum."""
    if cost is None:
        return f"unknown (no order priced); root bound {root:,}"
    if lower is None:
        return f"unknown: the order costs {int(cost):,}, with no proven lower bound; root bound {root:,}"
    cost = int(cost)
    if cost <= lower:
        return f"0 (proven optimal: {cost:,} mults; root bound {root:,})"
    pct = 100 * (cost - lower) / cost
    return (f"{cost - lower:,} mults ({pct:.1f} %): order costs {cost:,}, proven lower bound {lower:,}; "
            f"root bound {root:,}")


def _path(parent: dict, S: int) -> list[str]:
    order = []
    while S in parent:
        S, v = parent[S]
        order.append(v)
    return order[::-1]


@dataclass
class Search:
    """What the A* search over sets found (see :func:`astar`).

    ``found``: an order proven optimal, or ``None`` (then the bound's order, or ``best``, is the
    best known); ``lower``: a proven lower bound on the mults of every order (that fits the
    memory limit); ``root``: the bound h(∅) alone; ``stopped``: why it ended early (``"time"``,
    ``"states"``) or ``None``; ``best``: (mults, order) of a greedy completion that beat the
    upper bound it started with, else ``None``."""

    found: list | None
    explored: int
    stopped: str | None
    lower: float
    root: float
    best: tuple | None = None


def _dijkstra(sets: _Sets, cm: CostModel, bound, live0, deadline, peaks: bool = True):
    """(order or None, sets explored, stopped?) of :func:`astar` without the lower bound."""
    r = astar(sets, cm, bound, live0, deadline, peaks=peaks, complete=False)
    return r.found, r.explored, r.stopped is not None


def astar(sets: _Sets, cm: CostModel, bound, live0, deadline, *, peaks: bool = True,
          max_states: float = float("inf"), complete: bool = True, report: Callable | None = None) -> Search:
    """Cheapest order by (mults, peak bytes), lexicographically, by A* over sets.

    f(S) = g(S) + h(S) with h(S) = Σ_{v ∉ S} (lower bound on v's cost from G_S) (see
    :meth:`_Sets.step`); a child first gets its parent's floors (admissible too) and its own h
    when it is popped (it is pushed back if that raises f), and f never drops below the
    parent's (pathmax: a child's orders are some of its parent's). h is admissible but need not
    be consistent, so a set reached again more cheaply is reopened. Among orders of equal cost the
    one with the smaller peak wins (labels ``(g, peak)`` extend monotonically). ``bound`` =
    (score, order, name, peak) of a known order prunes every label not lexicographically below
    it; ``peaks=False`` skips the memory bookkeeping. Stops at ``deadline`` or past ``max_states``
    stored sets; the smallest f still open (at most the upper bound) is then a proven lower
    bound. ``complete`` runs greedy (Markowitz on G_S) completions of the deepest set reached
    now and then, which can lower the upper bound. ``report(explored, best, lower)`` is called
    every 256 sets expanded."""
    full = (1 << len(sets.verts)) - 1
    inf = float("inf")
    ub = (bound[0], bound[3] if peaks else -inf) if bound else (inf, inf)
    track = peaks or cm.memory_limit is not None
    firsts = []
    for n, v in enumerate(sets.verts):  # every first step is priced before the search: watch the clock
        if n % 8 == 0 and time.perf_counter() > deadline:
            return Search(None, 0, "time", 0.0, 0.0)
        firsts.append((v, sets.bit[v], sets.step(v, 0)))
    root = sets.h(0, firsts)
    if peaks and bound and root >= ub[0] and sets.verts:  # as cheap as the known order: is its
        # peak as low as any order's can be (the fullest first step, at least)?
        if live0 + min(sets.memory(v, 0)[1] for v in sets.verts) >= ub[1]:
            return Search(None, 0, None, ub[0], root)
    best = {0: (0, live0 if peaks else 0)}
    hval = {0: root}
    live = {0: live0}
    parent: dict = {}
    heap = [(root, best[0][1], 0, 0)]  # (f, peak, -g: deeper first on ties, S)
    out = Search(None, 0, None, min(root, ub[0]), root)
    pairs = [(v, sets.bit[v], sets.step_memo[v], sets.rel[v]) for v in sets.verts]
    push, pop, get = heapq.heappush, heapq.heappop, best.get
    none = (inf, inf)
    deep = (-1, 0.0, 0)  # (depth, -f, S) of the deepest set expanded
    comp_of = sets.comp_of
    next_greedy = 4096 if complete else inf
    while heap:
        f, p, ng, S = pop(heap)
        g = -ng
        if (g, p) > best[S]:
            continue
        out.lower = max(out.lower, min(f, ub[0]))
        if (f, p) >= ub:
            out.lower = ub[0]
            return out  # the known order is optimal
        if S == full:
            out.found, out.lower = _path(parent, S), g
            return out
        out.explored += 1
        if report is not None and not out.explored & 255:
            report(out.explored, ub[0], out.lower)
        if time.perf_counter() > deadline:  # an expansion prices every vertex: check each time
            out.stopped = "time"
            break
        if len(best) > max_states:
            out.stopped = "states"
            break
        steps = [(v, bit, hit if (hit := memo.get(S & rel)) is not None else sets.step(v, S))
                 for v, bit, memo, rel in pairs if not S & bit]
        h = hval.get(S)
        if h is None:
            h = hval[S] = sets.h(S, steps)
            if g + h > f:  # its own floors say more than its parent's: wait its turn
                push(heap, (g + h, p, ng, S))
                continue
        f = max(f, g + h)
        depth = len(sets.verts) - len(steps)
        if (depth, -f) > deep[:2]:
            deep = (depth, -f, S)
        if out.explored >= next_greedy:
            next_greedy *= 2
            ub = _complete(sets, parent, deep[2], ub, out, deadline)
        for v, bit, (c, lb) in steps:
            g2 = g + c
            # a child keeps its parent's bound less v's part (all of c where v's component
            # bound may have counted more than v's floor); its own h comes when it is popped
            f2 = max(f, g2 + h - (c if v in comp_of else lb))
            if f2 > ub[0]:
                continue
            S2 = S | bit
            if g2 > get(S2, none)[0]:  # a cheaper label is there already, whatever the peaks
                continue
            if track:
                delta, top = sets.memory(v, S)
                live.setdefault(S2, live[S] + delta)
                if not cm.fits(live[S] + top):
                    continue
            pk = max(p, live[S] + top) if peaks else 0
            lab = (g2, pk)
            if (f2, pk) >= ub or lab >= get(S2, none):
                continue
            best[S2] = lab
            parent[S2] = (S, v)
            push(heap, (f2, pk, -g2, S2))
    else:
        out.lower = ub[0]  # every set was pruned by the known order: it is optimal
        return out
    if heap:
        out.lower = max(out.lower, min(heap[0][0], ub[0]))
    if complete and deep[0] >= 0:
        _complete(sets, parent, deep[2], ub, out, inf if out.stopped == "states" else deadline + _GRACE)
    return out


_GRACE = 0.05  # seconds a last greedy completion may run past the search deadline


def _complete(sets: _Sets, parent: dict, S: int, ub: tuple, out: Search, deadline: float) -> tuple:
    """Complete set S greedily (cheapest elimination next); when that beats ``ub``, record it in
    ``out.best`` and return the lowered bound (its peak unknown: ties no longer prune)."""
    order = _path(parent, S)
    g = sum(sets.cost(v, T) for v, T in _prefix_sets(sets, order))
    rest = [v for v in sets.verts if not S & sets.bit[v]]
    clock = time.perf_counter
    while rest:
        best = None
        for n, v in enumerate(rest):  # one step prices every vertex left: watch the clock inside
            if n % 16 == 0 and clock() > deadline:
                return ub
            c = sets.cost(v, S)
            if best is None or c < best[0]:
                best = (c, v)
        c, v = best
        g += c
        if g >= ub[0]:
            return ub
        S |= sets.bit[v]
        order.append(v)
        rest.remove(v)
    if g >= ub[0]:
        return ub
    out.best = (g, order)
    return (g, float("inf"))


def _prefix_sets(sets: _Sets, order: list):
    S = 0
    for v in order:
        yield v, S
        S |= sets.bit[v]


def _pareto(sets: _Sets, cm: CostModel, bound, live0, deadline, report: Callable | None = None):
    a, b = cm.weights
    full = (1 << len(sets.verts)) - 1
    ub = bound[0] if bound else float("inf")
    level = {0: [(0, live0, None, None)]}  # S -> labels (mults, peak, parent (S, idx), vertex)
    history = []
    live = {0: live0}
    explored = 0
    looked = 0
    for _ in range(len(sets.verts)):
        nxt: dict = {}
        for S, labels in level.items():
            explored += 1
            if report is not None and not explored & 255:
                report(explored, ub, None)
            for v in sets.verts:
                bit = sets.bit[v]
                if S & bit:
                    continue
                looked += 1  # a step costs up to milliseconds on large graphs: look at the clock often
                if looked % 16 == 0 and time.perf_counter() > deadline:
                    return None, explored, True
                S2 = S | bit
                delta, top = sets.memory(v, S)
                c = sets.cost(v, S)
                live.setdefault(S2, live[S] + delta)
                l2 = live[S] + top
                if not cm.fits(l2):
                    continue
                for idx, (m, p, _, _) in enumerate(labels):
                    m2, p2 = m + c, max(p, l2)
                    if a * m2 + b * p2 >= ub:
                        continue
                    _insert(nxt.setdefault(S2, []), (m2, p2, (S, idx), v), a == 0)
        history.append(level)
        level = {S: labs for S, labs in nxt.items() if labs}
        if not level:
            return None, explored, False
    labels = level.get(full)
    if not labels:
        return None, explored, False
    idx = min(range(len(labels)), key=lambda t: (a * labels[t][0] + b * labels[t][1], labels[t][:2]))
    order = []
    S, lab = full, labels[idx]
    for lvl in reversed(history):
        order.append(lab[3])
        S, pidx = lab[2]
        lab = lvl[S][pidx]
    return order[::-1], explored, False


def _insert(front: list, label: tuple, peak_only: bool) -> None:
    m, p = label[0], label[1]
    for q in front:
        if q[1] <= p and (peak_only or q[0] <= m):
            return
    front[:] = [q for q in front if not (p <= q[1] and (peak_only or m <= q[0]))]
    front.append(label)


def _window_sets(e, win: list[str]) -> _Sets:
    """Exact-search state for eliminating ``win`` from the current graph of ``e``: only the
    window and its neighbours matter (paths through the window only touch those)."""
    near = set(win)
    for v in win:
        near |= set(e.pred.get(v, ())) | set(e.succ.get(v, ()))
    edges = {(u, v): j for u in near for v, j in e.succ.get(u, {}).items() if v in near}
    return _Sets(edges, win, e.algebra, bounds=False)


def polish(problem: Problem, order: list[str], cost_model: CostModel, *, window: int = 12,
           deadline: float | None = None, stats: dict | None = None) -> tuple[list[str], int]:
    """Re-order every window of ``window`` consecutive eliminations exactly.

    Eliminating the same *set* leaves the same graph, so an exact search inside a window (from
    the graph left by the prefix) changes only the window's own cost: the result is never
    worse, and repeated half-overlapping passes run until nothing improves or ``deadline``. (On
    graphs of arrays, where a product's structure can depend on its bracketing, the polished
    order is priced and kept only if it is cheaper.)
    A window already searched with the same vertices after the same set is not searched again,
    so passes after the first cost only around the changes. Without a memory limit; returns
    (order, mults saved); ``stats``, when given, receives ``windows`` (searches run) and
    ``converged`` (False when the deadline cut it, so the result depends on the machine's
    speed). A peak is not a sum over windows, so under an objective that weighs memory the
    polished order is kept only if it scores better.
    """
    stats = {} if stats is None else stats
    stats.update(windows=0, converged=True)
    if cost_model.memory_limit is not None or len(order) < 2:
        return list(order), 0
    if cost_model.weights != (1.0, 0.0):
        new, saved = polish(problem, order, CostModel(), window=window, deadline=deadline, stats=stats)
        if saved and _scores_less(problem, new, order, cost_model.score, stats):
            return new, saved
        return list(order), 0
    given, order = list(order), list(order)
    deadline = min(budget.deadline(), float("inf") if deadline is None else deadline)
    # a set's fingerprint: the sum of random 64-bit tags, fixed per vertex name (not hash(),
    # which differs between processes), so equal fingerprints mean equal sets in practice
    rng = random.Random(0)
    tags = {v: rng.getrandbits(64) for v in sorted(order)}
    searched: set = set()
    saved, improved = 0, True
    step = max(1, window // 2)
    while improved:
        if time.perf_counter() > deadline:
            stats["converged"] = False
            break
        improved = False
        e = problem.eliminator()
        prefix = 0
        for start in range(0, max(1, len(order) - window + step), step):
            win = order[start:start + window]
            key = (tuple(win), prefix)
            if key not in searched:
                if time.perf_counter() > deadline:
                    stats["converged"] = False
                    break
                stats["windows"] += 1
                found = _search_window(e, win, deadline)
                if found is None:
                    stats["converged"] = False
                    break
                if found[1] < found[2]:
                    order[start:start + window] = found[0]
                    saved += found[2] - found[1]
                    improved = True
                else:
                    searched.add(key)
            for v in order[start:start + step]:
                e.eliminate(v)
                prefix = (prefix + tags[v]) & 0xFFFFFFFFFFFFFFFF
        if not stats["converged"]:
            break
    if saved and not problem.scalar:
        # On graphs of arrays a set's graph can depend on the order after all: a product's
        # structure can depend on its bracketing (``(B·S)·T`` a gather where ``B·(S·T)`` is a
        # block), so the windows' set-based costs are estimates there (the robot arm's forward
        # order: 512 saved by the windows' count, 128 lost when priced). Keep the polished order
        # only if pricing says it is cheaper, with the true saving.
        if not _scores_less(problem, order, given, lambda mults, peak: mults, stats):
            return given, 0
        saved = totals(problem, given)[0] - totals(problem, order)[0]
    return order, saved


def _scores_less(problem: Problem, new: list[str], old: list[str], score: Callable, stats: dict) -> bool:
    """Whether ``new`` priced scores less than ``old`` (``score(mults, peak)``); False when the
    time runs out first (``stats["converged"]`` then says the polish was cut)."""
    try:
        return score(*totals(problem, new)) < score(*totals(problem, old))
    except budget.TimeUp:  # no time left to compare: keep the order we had
        stats["converged"] = False
        return False


def _search_window(e, win: list[str], deadline: float) -> tuple | None:
    """(best order, its cost, the current cost) of ``win`` from the graph of ``e``; None when
    the deadline cut the search."""
    try:
        sets = _window_sets(e, win)
    except budget.TimeUp:
        return None
    current = sum(sets.cost(v, S) for v, S in _prefix_sets(sets, win))
    if not current:
        return win, 0, 0
    found, _, stopped = _dijkstra(sets, CostModel(), (current, win, "current", None), 0, deadline, peaks=False)
    if found is None:
        return None if stopped else (win, current, current)
    return found, sum(sets.cost(v, S) for v, S in _prefix_sets(sets, found)), current


@register("window")
def window(problem: Problem, cost_model: CostModel, *, time_limit: float = 5.0, size: int = 12) -> Result:
    """The best heuristic order, then :func:`polish` with windows of ``size`` for ``time_limit`` s."""
    positive("time_limit", time_limit)
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= 20:
        raise ValueError(f"size must be an int from 2 to 20, not {size!r}")
    with budget.within(time_limit):
        try:
            bound = _heuristic_bound(problem, cost_model)
        except budget.TimeUp:
            return _fallback(problem, "window", {})
        if bound is None:
            raise MemoryLimitError("window: no heuristic order fits the memory limit; raise memory_limit")
        stats: dict = {}
        order, saved = polish(problem, bound[1], cost_model, window=size, stats=stats)
    info = {"start": f"{bound[2]} ({bound[0]:,.0f})", "window polish saved": saved, "windows": stats["windows"]}
    if not stats["converged"]:
        info["stopped early"] = "time limit reached before the windows stopped improving"
    return Result(order, info)
