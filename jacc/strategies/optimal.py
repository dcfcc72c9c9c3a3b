"""``optimal``: the exact minimum over vertex-elimination orders.

The graph after eliminating a *set* S does not depend on the order inside S: edge (i, k) exists
iff a path i → k runs through S only, and it carries the sum over those paths. So a search over
sets is exact. The edge Jacobians of G_S are memoised by (i, k, S ∩ between(i, k)), and the cost
of eliminating v from G_S by (v, S ∩ (ancestors ∪ descendants of v)), so states share work.

* objective ``mults``: Dijkstra over sets (costs are non-negative), pruned by the best heuristic
  order (forward, reverse, Markowitz, min-fill, relative Markowitz): a popped set costing at
  least that bound proves the heuristic optimal;
* objective ``memory`` or a weighted combination: a level-by-level search keeping the Pareto
  front of (mults, peak bytes) per set, pruned by the same bound;
* a memory limit removes every set whose live Jacobians exceed it (live bytes depend on the
  set only, so this stays exact).

``time_limit`` (seconds) stops the search early with the best order known and says so;
``max_vertices`` refuses problems whose 2^n sets are out of reach.
"""

from __future__ import annotations

import heapq
import time

from .. import budget
from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Problem
from . import HEURISTICS, Result, best_of, naive_first, positive, register


class SearchSizeError(ValueError):
    """The problem is too large for the exact search."""


class _Sets:
    """Memoised edge Jacobians and step costs of G_S for sets S of eliminated vertices."""

    def __init__(self, edges: dict, verts: list, algebra):
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
        anc_all: dict = {}
        for v in topo:
            a = set()
            for u in pred.get(v, ()):
                a |= anc_all[u] | {u}
            anc_all[v] = a
        desc_all: dict = {}
        for v in reversed(topo):
            d = set()
            for w in succ.get(v, ()):
                d |= desc_all[w] | {w}
            desc_all[v] = d
        self.anc_list = {v: sorted(anc_all[v], key=topo.index) for v in keys}
        self.desc_list = {v: sorted(desc_all[v], key=topo.index) for v in keys}
        self.anc = {v: sum(self.bit.get(u, 0) for u in anc_all[v]) for v in keys}
        self.desc = {v: sum(self.bit.get(u, 0) for u in desc_all[v]) for v in keys}
        self.memo: dict = {}
        self.cost_memo: dict = {v: {} for v in self.verts}
        self.rel = {v: self.anc[v] | self.desc[v] for v in self.verts}
        self.prod_memo: dict = {}

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
        memo = self.cost_memo[v]
        key = S & self.rel[v]
        c = memo.get(key)
        if c is None:
            preds, succs = self.neighbours(v, S)
            c = sum(self._prod_cost(a, b) for _, a in succs for _, b in preds)
            memo[key] = c
        return c

    @classmethod
    def of(cls, problem: Problem) -> "_Sets":
        e = problem.eliminator()
        return cls({(u, v): j for u, row in e.succ.items() for v, j in row.items()}, problem.eliminable,
                   e.algebra)

    def live_delta(self, v, S: int) -> int:
        """Change of live bytes when v is eliminated from G_S."""
        nb = self.alg.nbytes
        preds, succs = self.neighbours(v, S)
        S2 = S | self.bit[v]
        d = -sum(nb(j) for _, j in preds) - sum(nb(j) for _, j in succs)
        for i, _ in preds:
            for k, _ in succs:
                old, new = self.edge(i, k, S), self.edge(i, k, S2)
                d += (nb(new) if new is not None else 0) - (nb(old) if old is not None else 0)
        return d


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
    mode = naive_first(problem)[0]
    name, order = unpriced[0] if unpriced else (mode, problem.eliminable[::-1] if mode == "reverse"
                                                else list(problem.eliminable))
    info["stopped early"] = (f"{who}: time limit reached before any order could be priced; returning "
                             f"{name}'s order unchecked (raise time_limit to compare it with others)")
    return Result(list(order), info, False)


@register("optimal")
def optimal(problem: Problem, cost_model: CostModel, *, time_limit: float = 10.0,
            max_vertices: int = 30) -> Result:
    """Exact search over sets of eliminated vertices (see the module docstring)."""
    positive("time_limit", time_limit)
    if isinstance(max_vertices, bool) or not isinstance(max_vertices, int) or max_vertices < 0:
        raise ValueError(f"max_vertices must be a non-negative int, not {max_vertices!r}")
    n = len(problem.eliminable)
    if n > max_vertices:
        raise SearchSizeError(
            f"optimal: the problem has {n} eliminable vertices, above the size limit max_vertices="
            f"{max_vertices} (the exact search visits up to 2^n sets); use 'anneal' or 'auto', or pass "
            "a larger max_vertices")
    with budget.within(time_limit):
        return _optimal(problem, cost_model, time_limit)


def _optimal(problem: Problem, cost_model: CostModel, time_limit: float) -> Result:
    try:
        bound = _heuristic_bound(problem, cost_model)
    except budget.TimeUp:
        bound = None
    sets = _Sets.of(problem)
    live0 = sum(sets.alg.nbytes(j) for j in sets.orig.values())
    if not cost_model.fits(live0):
        raise MemoryLimitError(f"the graph's own partial Jacobians take {live0:,} bytes, over the "
                               f"memory limit {cost_model.memory_limit:,}")
    a, b = cost_model.weights
    search = _dijkstra if b == 0 else _pareto
    found, explored, stopped = search(sets, cost_model, bound, live0, budget.deadline())
    info = {"sets explored": explored}
    if found is not None:
        return Result(found, info, True)
    if bound is None and (stopped or budget.expired()):
        return _fallback(problem, "optimal", info)
    if bound is None:
        raise MemoryLimitError(f"no elimination order fits the memory limit of {cost_model.memory_limit:,} bytes"
                               + (" (search stopped at the time limit)" if stopped else ""))
    if stopped:
        info["stopped early"] = (f"time limit {time_limit:g} s reached; best known order is "
                                 f"{bound[2]}'s (not proven optimal)")
        return Result(bound[1], info, False)
    info["bound"] = f"{bound[2]} is optimal (no cheaper set of eliminations exists)"
    return Result(bound[1], info, True)


def _path(parent: dict, S: int) -> list[str]:
    order = []
    while S in parent:
        S, v = parent[S]
        order.append(v)
    return order[::-1]


def _dijkstra(sets: _Sets, cm: CostModel, bound, live0, deadline, peaks: bool = True):
    """Cheapest order by (mults, peak bytes), lexicographically: among orders of equal cost the
    one with the smaller peak wins (labels ``(g, peak)`` extend monotonically, so Dijkstra stays
    exact). ``bound`` = (score, order, name, peak) of a known order prunes every label that is not
    lexicographically below it; ``peaks=False`` skips the memory bookkeeping."""
    full = (1 << len(sets.verts)) - 1
    inf = float("inf")
    ub = (bound[0], bound[3] if peaks else -inf) if bound else (inf, inf)
    track = peaks or cm.memory_limit is not None
    best = {0: (0, live0 if peaks else 0)}
    live = {0: live0}
    parent: dict = {}
    heap = [(0, best[0][1], 0)]
    explored = 0
    pairs = [(v, sets.bit[v], sets.cost_memo[v], sets.rel[v]) for v in sets.verts]
    push, pop, get = heapq.heappush, heapq.heappop, best.get
    none = (inf, inf)
    while heap:
        g, p, S = pop(heap)
        if (g, p) > best[S]:
            continue
        if (g, p) >= ub:
            return None, explored, False  # the heuristic bound is optimal
        if S == full:
            return _path(parent, S), explored, False
        explored += 1
        if explored % 512 == 0 and time.perf_counter() > deadline:
            return None, explored, True
        for v, bit, memo, rel in pairs:
            if S & bit:
                continue
            c = memo.get(S & rel)
            g2 = g + (c if c is not None else sets.cost(v, S))
            if g2 > ub[0]:
                continue
            S2 = S | bit
            if track:
                if S2 not in live:
                    live[S2] = live[S] + sets.live_delta(v, S)
                if not cm.fits(live[S2]):
                    continue
            lab = (g2, max(p, live[S2]) if peaks else 0)
            if lab >= ub or lab >= get(S2, none):
                continue
            best[S2] = lab
            parent[S2] = (S, v)
            push(heap, (lab[0], lab[1], S2))
    return None, explored, False


def _pareto(sets: _Sets, cm: CostModel, bound, live0, deadline):
    a, b = cm.weights
    full = (1 << len(sets.verts)) - 1
    ub = bound[0] if bound else float("inf")
    level = {0: [(0, live0, None, None)]}  # S -> labels (mults, peak, parent (S, idx), vertex)
    history = []
    live = {0: live0}
    explored = 0
    for _ in range(len(sets.verts)):
        nxt: dict = {}
        for S, labels in level.items():
            explored += 1
            if explored % 256 == 0 and time.perf_counter() > deadline:
                return None, explored, True
            for v in sets.verts:
                bit = sets.bit[v]
                if S & bit:
                    continue
                c = sets.cost(v, S)
                S2 = S | bit
                if S2 not in live:
                    live[S2] = live[S] + sets.live_delta(v, S)
                l2 = live[S2]
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
    return _Sets(edges, win, e.algebra)


def polish(problem: Problem, order: list[str], cost_model: CostModel, *, window: int = 12,
           deadline: float | None = None) -> tuple[list[str], int]:
    """Re-order every window of ``window`` consecutive eliminations exactly.

    Eliminating the same *set* leaves the same graph, so an exact search inside a window (from
    the graph left by the prefix) changes only the window's own cost: the result is never
    worse, and repeated half-overlapping passes run until nothing improves or ``deadline``.
    Applies to the ``mults`` objective without a memory limit; returns (order, mults saved).
    """
    if cost_model.weights != (1.0, 0.0) or cost_model.memory_limit is not None or len(order) < 2:
        return list(order), 0
    order = list(order)
    deadline = min(budget.deadline(), float("inf") if deadline is None else deadline)
    saved, improved = 0, True
    step = max(1, window // 2)
    while improved and time.perf_counter() < deadline:
        improved = False
        e = problem.eliminator()
        for start in range(0, max(1, len(order) - window + step), step):
            win = order[start:start + window]
            sets = _window_sets(e, win)
            current, S = 0, 0
            for v in win:
                current += sets.cost(v, S)
                S |= sets.bit[v]
            if current:
                found, _, _ = _dijkstra(sets, CostModel(), (current, win, "current", None), 0, deadline,
                                        peaks=False)
                if found is not None:
                    new, S = 0, 0
                    for v in found:
                        new += sets.cost(v, S)
                        S |= sets.bit[v]
                    if new < current:
                        order[start:start + window] = found
                        saved += current - new
                        improved = True
            for v in order[start:start + step]:
                e.eliminate(v)
            if time.perf_counter() > deadline:
                break
    return order, saved


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
        order, saved = polish(problem, bound[1], cost_model, window=size)
    return Result(order, {"start": f"{bound[2]} ({bound[0]:,.0f})", "window polish saved": saved})
