"""Edge elimination (Naumann): front and back elimination of single edges.

Vertex elimination removes an intermediate vertex with all its edges at once; Naumann showed
that eliminating *edges* one at a time can need fewer multiplications (U. Naumann, "Optimal
accumulation of Jacobian matrices by elimination methods on the dual computational graph",
Math. Program. Ser. A 99 (2004) 399–421; also "Elimination techniques for cheap Jacobians",
in Automatic Differentiation of Algorithms, Springer 2002). The rules, with c_vu the partial
Jacobian on edge (u, v):

* **front** elimination of (i, j), j intermediate: for every successor k of j,
  c_ki += c_kj · c_ji (a fill-in edge when (i, k) did not exist); delete (i, j); if j has no
  predecessor left, delete j and its out-edges (no path runs through it any more);
* **back** elimination of (j, k), j intermediate: for every predecessor i of j,
  c_ki += c_kj · c_ji; delete (j, k); if j has no successor left, delete j and its in-edges.

Eliminating vertex j is front-eliminating all its in-edges (or back-eliminating all its
out-edges) with the same count, so every vertex order is an edge sequence. Elimination is done
when no intermediate vertex is left: the graph is bipartite, inputs → outputs (sinks), and the
edge (x, y) holds the block ∂y/∂x. Every step shortens each input–output path through the edge by
one, so every sequence ends.

A product costs what the problem's algebra says (``algebra.product``): on scalar graphs the
class algebra of :mod:`jacc.eliminate` (odd = a value, even = an exact ±1, free), on array graphs
the structured Jacobians of :mod:`jacc.structure`; sums are free. The same :class:`EdgeState`
runs symbolically (to price) and on numbers (to accumulate), so counted = priced.

>>> from jacc import examples
>>> from jacc.eliminate import Problem
>>> prob = Problem.from_graph(examples.lion())
>>> s = EdgeState.of(prob)
>>> [s.front(*e).mults for e in [("t1", "t2"), ("x1", "t1"), ("x2", "t1")]]
[4, 4, 4]
>>> s.done(), s.mults
(True, 12)
>>> optimal(prob, None).info["mults"]
11
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from . import budget
from .costmodel import peak_resident_bytes
from .eliminate import SCALAR, STRUCTURED, Problem
from .progress import SearchLine
from .strategies import Result, no_options, positive, positive_int

Key = Hashable
Edge = tuple[Key, Key]
#: One elimination to perform: ("front", (i, j)), ("back", (j, k)) — or ("face", (u, v)) on the
#: dual graph, see :mod:`jacc.faces`.
Move = tuple[str, tuple]

KINDS = ("front", "back")


class EdgeEliminationError(ValueError):
    """A move that cannot be made on the current graph (no such edge, or not eliminable)."""


class EdgeSearchSizeError(ValueError):
    """The problem is too large for the exact edge-elimination search."""


@dataclass
class EdgeStep:
    """One edge (or face) elimination: what it cost and which edges it created or added to.

    ``edge`` is (i, j) for a front or back step and (i, j, k) for a face (whose dual vertices
    are ``ids``); ``removed`` names the vertex the step left without predecessors or successors
    (deleted with its edges)."""

    kind: str
    edge: tuple
    mults: int
    fill_in: list[tuple] = field(default_factory=list)
    absorbed: list[tuple] = field(default_factory=list)
    removed: Key | None = None
    ids: tuple[int, int] | None = None  # a face's dual vertices (see jacc.faces)

    @property
    def move(self) -> Move:
        """The move that replays this step: ``(kind, edge)``, or ``("face", ids)``."""
        return self.kind, (self.ids if self.kind == "face" else self.edge)


class EdgeState:
    """Mutable edge-elimination state over a dict of edge Jacobians (symbolic or numeric).

    ``inner`` is the set of intermediate vertices still present; only edges touching one of them
    can be eliminated (front: its target is intermediate; back: its source is)."""

    def __init__(self, edges: Mapping[Edge, Any], algebra, inner: Iterable[Key]):
        self.algebra = algebra
        self.pred: dict[Key, dict[Key, Any]] = {}
        self.succ: dict[Key, dict[Key, Any]] = {}
        for (u, v), c in edges.items():
            self.succ.setdefault(u, {})[v] = c
            self.pred.setdefault(v, {})[u] = c
            self.succ.setdefault(v, {})
            self.pred.setdefault(u, {})
        self.inner: set[Key] = {v for v in inner if v in self.succ}
        self.mults = 0

    @classmethod
    def of(cls, problem: Problem) -> "EdgeState":
        """The symbolic state of ``problem`` (the scalar class algebra on all-scalar graphs)."""
        e = problem.eliminator()
        edges = {(u, v): c for u, out in e.succ.items() for v, c in out.items()}
        return cls(edges, e.algebra, problem.eliminable)

    @classmethod
    def numeric(cls, problem: Problem, values: Mapping[str, np.ndarray], dtype=np.float64) -> "EdgeState":
        """The state holding the partial Jacobians at ``values`` (``graph.evaluate(inputs)``)."""
        return cls(problem.numeric_edges(values, dtype), STRUCTURED, problem.eliminable)

    def fork(self) -> "EdgeState":
        """An independent copy (edge values are shared: they are never mutated)."""
        s = EdgeState.__new__(EdgeState)
        s.algebra, s.mults, s.inner = self.algebra, self.mults, set(self.inner)
        s.pred = {k: dict(v) for k, v in self.pred.items()}
        s.succ = {k: dict(v) for k, v in self.succ.items()}
        return s

    # -- queries ----------------------------------------------------------------------------------
    def done(self) -> bool:
        """True when no intermediate vertex is left (the graph is bipartite)."""
        return not self.inner

    def edge(self, u: Key, v: Key) -> Any:
        return self.succ.get(u, {}).get(v)

    def edges(self) -> dict[Edge, Any]:
        return {(u, v): c for u, out in self.succ.items() for v, c in out.items()}

    def options(self) -> list[Move]:
        """Every move possible now, in a deterministic order (edge order, front before back)."""
        moves = []
        for u, out in self.succ.items():
            for v in out:
                if v in self.inner:
                    moves.append(("front", (u, v)))
                if u in self.inner:
                    moves.append(("back", (u, v)))
        return moves

    def cost(self, kind: str, edge: Edge) -> int:
        """Multiplications that ``kind``-eliminating ``edge`` now would take (no mutation)."""
        self._check(kind, edge)
        alg = self.algebra
        u, v = edge
        c = self.succ[u][v]
        if kind == "front":
            return sum(alg.product(a, c)[1] for a in self.succ[v].values())
        return sum(alg.product(c, b)[1] for b in self.pred[u].values())

    def fill(self, kind: str, edge: Edge) -> int:
        """Number of new edges that the move would create (no mutation)."""
        u, v = edge
        if kind == "front":
            return sum(k not in self.succ[u] for k in self.succ[v])
        return sum(v not in self.succ[i] for i in self.pred[u])

    def key(self) -> frozenset:
        """A hashable description of the state that fixes every future cost: each edge with its
        value class (scalar algebra) or its structure (structured algebra, values ignored)."""
        return frozenset((u, v, _shape_key(c)) for u, out in self.succ.items() for v, c in out.items())

    # -- moves ------------------------------------------------------------------------------------
    def apply(self, kind: str, edge: Sequence[Key]) -> EdgeStep:
        """Make one move; ``kind`` is ``"front"`` or ``"back"``."""
        fn = _MOVES.get(kind)
        if fn is None:
            raise EdgeEliminationError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return fn(self, *edge)

    def front(self, i: Key, j: Key) -> EdgeStep:
        """Front-eliminate (i, j): fold it into i's edges to every successor of j."""
        self._check("front", (i, j))
        b = self.succ[i][j]
        step = EdgeStep("front", (i, j), 0)
        for k, a in list(self.succ[j].items()):
            self._add(i, k, a, b, step)
        self._drop(i, j)
        if not self.pred[j]:
            step.removed = self._remove(j)
        self.mults += step.mults
        return step

    def back(self, j: Key, k: Key) -> EdgeStep:
        """Back-eliminate (j, k): fold it into the edges from every predecessor of j to k."""
        self._check("back", (j, k))
        a = self.succ[j][k]
        step = EdgeStep("back", (j, k), 0)
        for i, b in list(self.pred[j].items()):
            self._add(i, k, a, b, step)
        self._drop(j, k)
        if not self.succ[j]:
            step.removed = self._remove(j)
        self.mults += step.mults
        return step

    def vertex(self, j: Key, side: str = "front") -> list[EdgeStep]:
        """Eliminate vertex ``j`` as edge steps: all in-edges front, or all out-edges back."""
        if j not in self.inner:
            raise EdgeEliminationError(f"vertex {j!r} is not an intermediate vertex still in the graph")
        if side == "front":
            return [self.front(i, j) for i in list(self.pred[j])]
        return [self.back(j, k) for k in list(self.succ[j])]

    # -- internals --------------------------------------------------------------------------------
    def _check(self, kind: str, edge: Edge) -> None:
        u, v = edge
        if v not in self.succ.get(u, {}):
            raise EdgeEliminationError(f"{kind} elimination: there is no edge {u!r} → {v!r} now")
        end = v if kind == "front" else u
        if end not in self.inner:
            side = "target" if kind == "front" else "source"
            raise EdgeEliminationError(
                f"{kind} elimination of {u!r} → {v!r}: its {side} {end!r} is not an intermediate vertex "
                f"(front-eliminate edges into intermediates, back-eliminate edges out of them)")

    def _add(self, i: Key, k: Key, a: Any, b: Any, step: EdgeStep) -> None:
        """c_ki += a · b (a = c_kj, b = c_ji), counting the product."""
        alg = self.algebra
        c, n = alg.product(a, b)
        step.mults += n
        old = self.succ[i].get(k)
        if old is None:
            step.fill_in.append((i, k))
        else:
            step.absorbed.append((i, k))
            c = alg.add(old, c)
        self.succ[i][k] = c
        self.pred[k][i] = c

    def _drop(self, u: Key, v: Key) -> None:
        del self.succ[u][v]
        del self.pred[v][u]

    def _remove(self, j: Key) -> Key:
        for i in self.pred.pop(j):
            del self.succ[i][j]
        for k in self.succ.pop(j):
            del self.pred[k][j]
        self.inner.discard(j)
        return j


_MOVES: dict[str, Callable[..., EdgeStep]] = {"front": EdgeState.front, "back": EdgeState.back}


def _shape_key(j) -> Hashable:
    """What prices products with ``j``: its class (scalar algebra) or its structure, not its numbers."""
    if isinstance(j, int):
        return j
    return (j.out_shape, j.in_shape, j.pair, j.vlabels, j.reshape, repr(j.select), repr(j.embed),
            j.factors, j.neg, None if j.terms is None else tuple(map(_shape_key, j.terms)))


# -- pricing and executing -------------------------------------------------------------------------


def price_edges(problem: Problem, moves: Iterable[Move]) -> tuple[list[EdgeStep], int]:
    """Symbolic steps and total multiplications of a move sequence; it must finish the job.

    >>> from jacc import examples
    >>> prob = Problem.from_graph(examples.lion())
    >>> price_edges(prob, vertex_moves(prob, ["t1", "t2"]))[1]
    12
    """
    s = EdgeState.of(problem)
    steps = replay(s, moves, _check_done)
    return steps, s.mults


def replay(s, moves: Iterable[Move], check_done: Callable) -> list[EdgeStep]:
    """Apply ``moves`` to the state ``s`` (edge or face), checking the deadline; the steps.
    ``check_done(s)`` raises when the sequence leaves work undone."""
    tick = budget.Ticker(64)
    steps = []
    for kind, what in moves:
        tick()
        steps.append(s.apply(kind, what))
    check_done(s)
    return steps


def _check_done(s: EdgeState) -> None:
    if not s.done():
        raise EdgeEliminationError(
            f"the sequence leaves intermediate vertices {sorted(map(str, s.inner))}: "
            "add steps that eliminate their remaining edges")


@dataclass
class EdgeAccumulation:
    """The result of running a move sequence on numbers."""

    blocks: dict[tuple[str, str], np.ndarray]  # (output, input) -> dense Jacobian
    steps: list[EdgeStep]
    mults: int


def accumulate_edges(problem: Problem, values: Mapping[str, np.ndarray], moves: Iterable[Move],
                     dtype=np.float64) -> EdgeAccumulation:
    """Run ``moves`` on the graph linearised at ``values`` and assemble the dense blocks, as
    :func:`jacc.eliminate.accumulate` does for vertex orders."""
    s = EdgeState.numeric(problem, values, dtype)
    steps = replay(s, moves, _check_done)
    return EdgeAccumulation(assemble(problem, s.edge, dtype), steps, s.mults)


def assemble(problem: Problem, edge: Callable[[Key, Key], Any], dtype=np.float64) -> dict:
    """Dense ``{(output, input): block}`` from the final bipartite edges (``edge(x, sink)``)."""
    g = problem.graph
    blocks = {}
    for y in problem.of:
        for x in problem.wrt:
            j = edge(x, problem.out_key[y])
            shape = g.shape(y) + g.shape(x)
            blocks[y, x] = (np.zeros(shape, dtype) if j is None
                            else j.to_dense().astype(dtype, copy=False).reshape(shape))
    return blocks


# -- strategies ------------------------------------------------------------------------------------


def vertex_moves(problem: Problem, order: Sequence[str], side: str = "front") -> list[Move]:
    """A vertex order written as edge moves (same cost as vertex elimination): each vertex's
    in-edges front-eliminated (``side="front"``) or its out-edges back-eliminated."""
    return priced_vertex_moves(problem, order, side)[0]


def priced_vertex_moves(problem: Problem, order: Sequence[str], side: str = "front"
                        ) -> tuple[list[Move], list[EdgeStep], int]:
    """:func:`vertex_moves` with what :func:`price_edges` would give for them (the same pass)."""
    order = problem.check_order(order)
    s = EdgeState.of(problem)
    steps: list[EdgeStep] = []
    tick = budget.Ticker(16)  # (a face strategy's rewriting stops at its deadline; a plan's is lifted)
    for v in order:
        tick()
        steps += s.vertex(v, side)
    _check_done(s)
    return [st.move for st in steps], steps, s.mults


EDGE_STRATEGIES: dict[str, Callable[..., Result]] = {}


def registrar(table: dict) -> Callable[[str], Callable]:
    """A decorator factory registering strategies in ``table`` (edges and faces have one each)."""
    def register(name: str):
        def deco(fn):
            table[name] = fn
            return fn
        return deco
    return register


register = registrar(EDGE_STRATEGIES)


def result(price: Callable, problem: Problem, name: str, moves: list[Move], optimal: bool | None = None,
           **info) -> Result:
    """A strategy's :class:`Result`: the moves with their priced multiplications in ``info``,
    priced by replaying them (``price``: :func:`price_edges` or ``price_faces``)."""
    with budget.lifted():
        steps, mults = price(problem, moves)
    return priced_result(name, moves, steps, mults, optimal, **info)


def priced_result(name: str, moves: list[Move], steps: list[EdgeStep], mults: int, optimal: bool | None = None,
                  **info) -> Result:
    """A strategy's :class:`Result` of moves already made on a state (``steps``: what they
    returned, ``mults`` their total): ``jacc.plan`` need not replay them to price them."""
    return Result(moves, {"mults": mults, **info}, optimal, name, (steps, mults))


def _result(problem: Problem, name: str, moves: list[Move], optimal: bool | None = None, **info) -> Result:
    return result(price_edges, problem, name, moves, optimal, **info)


def _no_options(name: str, options: dict) -> None:
    no_options(name, options, "edge")


def limited_options(name: str, options: dict, kind: str) -> None:
    """Reject every option but ``time_limit`` (every strategy takes one: the heuristics run under
    :func:`jacc.edgeplan.plan_edges`'s deadline)."""
    options = dict(options)
    if "time_limit" in options:
        positive("time_limit", options.pop("time_limit"))
    no_options(name, options, kind, takes=("time_limit",))


@register("forward")
def forward(problem: Problem, cost_model=None, **options) -> Result:
    """Forward vertex order, every vertex's in-edges front-eliminated."""
    limited_options("forward", options, "edge")
    with budget.lifted():  # (a vertex order: written as moves whatever the deadline)
        return priced_result("forward", *priced_vertex_moves(problem, problem.eliminable, "front"))


@register("reverse")
def reverse(problem: Problem, cost_model=None, **options) -> Result:
    """Reverse vertex order, every vertex's out-edges back-eliminated."""
    limited_options("reverse", options, "edge")
    with budget.lifted():
        return priced_result("reverse", *priced_vertex_moves(problem, problem.eliminable[::-1], "back"))


def _greedy_key(s: EdgeState, n: int, move: Move) -> tuple:
    """Cheapest step first; then fewest new edges; then the earlier option (deterministic)."""
    return s.cost(*move), s.fill(*move), n


def greedy_moves(s: EdgeState, moves: list[Move] | None = None, steps: list[EdgeStep] | None = None
                 ) -> list[Move]:
    """Repeatedly make the cheapest move on ``s`` (mutated) until it is done; ``moves`` collects
    them (what was made before a deadline stopped it), ``steps`` what they cost."""
    moves = [] if moves is None else moves
    steps = [] if steps is None else steps
    tick = budget.Ticker(16)
    while not s.done():
        tick()
        opts = s.options()
        move = min(((n, m) for n, m in enumerate(opts)), key=lambda nm: _greedy_key(s, *nm))[1]
        steps.append(s.apply(*move))
        moves.append(move)
    return moves


@register("greedy")
def greedy(problem: Problem, cost_model=None, *, complete: bool = True, **options) -> Result:
    """Cheapest next edge step (ties: fewest fill-in edges, then the first option); past the
    deadline (``time_limit``), the vertices left are front-eliminated in the forward order
    (``complete=False``: the deadline raises ``budget.TimeUp`` instead, as for ``auto``, which has
    vertex ``auto``'s order to fall back on)."""
    limited_options("greedy", options, "edge")
    s, info, done, steps = EdgeState.of(problem), {}, [], []
    try:
        moves = greedy_moves(s, done, steps)
    except budget.TimeUp:
        if not complete:
            raise
        with budget.lifted():
            for v in problem.eliminable:
                if v in s.inner:
                    steps += s.vertex(v, "front")
        moves = [st.move for st in steps]
        info["stopped early"] = (f"time limit reached after {len(done):,} greedy moves; the vertices left were "
                                 "front-eliminated in the forward order")
    _check_done(s)
    return priced_result("greedy", moves, steps, s.mults, **info)


#: Largest number of edges (touching an intermediate vertex) the exact search accepts.
MAX_SEARCH_EDGES = 40
#: Growth of the process's peak memory at which the exact edge and face searches stop (each stored
#: state copies the remaining edges: about 20 KB per state on 75 edges).
MAX_SEARCH_BYTES = 1 << 30


@register("optimal")
def optimal(problem: Problem, cost_model=None, *, time_limit: float = 10.0,
            max_edges: int = MAX_SEARCH_EDGES, max_states: int | None = None,
            max_search_bytes: int = MAX_SEARCH_BYTES, progress: bool | None = None, **options) -> Result:
    """Exact minimum over edge-elimination sequences: Dijkstra over states (remaining edges with
    their value classes or structures), pruned by the best of forward, reverse and greedy.

    States are memoised by :meth:`EdgeState.key`; the first finished state popped is optimal.
    Past ``time_limit``, once ``max_states`` states are stored, or once the process's peak memory
    has grown by ``max_search_bytes`` (1 GiB; each state copies the graph's remaining edges), it
    returns the best sequence known with ``optimal=False`` and the proven lower bound (the cost of
    the cheapest unfinished state) in ``info``."""
    no_options("optimal", options, "edge",
               takes=("time_limit", "max_edges", "max_states", "max_search_bytes", "progress"))
    check_states(max_states, max_search_bytes)
    inner = set(problem.eliminable)  # (a list: 14 s of membership tests on a 26,719-vertex graph)
    n = sum(1 for u, out in EdgeState.of(problem).succ.items() for v in out if u in inner or v in inner)
    if n > max_edges:
        raise EdgeSearchSizeError(
            f"optimal edge elimination: {n} eliminable edges is above max_edges={max_edges}; "
            "use 'greedy' or raise max_edges (the search grows exponentially)")
    return reported("edge", progress, time_limit, lambda report: _search(problem, max_states, max_search_bytes, report))


def reported(kind: str, progress: bool | None, time_limit: float, run: Callable[[Callable | None], Result]) -> Result:
    """``run(report)`` within ``time_limit`` (checked), with the ``kind`` search's progress line as
    ``report`` when it is on (see :mod:`jacc.progress`), else None."""
    positive("time_limit", time_limit)
    with SearchLine(f"optimal ({kind} elimination)", progress, time_limit) as report, budget.within(time_limit):
        return run(report)


def check_states(max_states: Any, max_search_bytes: Any) -> None:
    """Check the exact searches' ``max_states`` (None: no count) and ``max_search_bytes``."""
    if max_states is not None:
        positive_int("max_states", max_states)
    positive_int("max_search_bytes", max_search_bytes)


def lower_bound(s: EdgeState) -> int:
    """An admissible bound on the multiplications still needed from ``s`` (scalar algebra): the
    number of intermediates j with a value in-edge and a value out-edge.

    Such a j keeps one of each until a product with middle vertex j: a value edge at j leaves only
    by a product through j, or (its other end losing its last edge) by a product through that end
    that leaves a value edge at j in its place (values never turn back into ±1: sums are values);
    and j goes only once one side is empty. Every product has one middle vertex, so the count is a
    bound. (Σ_j in·out, one product per pair, was not: ±1 · value products merge into existing
    value edges for free, so pairs vanish without a product; it claimed 3 optimal where 2 exist.)
    Structured graphs get 0 (no such monotonicity is proven for structures)."""
    if s.algebra is not SCALAR:
        return 0
    return sum(1 for j in s.inner if any(c & 1 for c in s.pred[j].values()) and any(c & 1 for c in s.succ[j].values()))


def vertex_orders(problem: Problem) -> list[list[str]]:
    """The vertex orders an exact edge or face search starts from (each is a sequence of edge
    and of face moves at its own cost): the vertex heuristics', then vertex ``optimal``'s within a
    quarter of the time left. Without the latter an edge search cut short by its limit returned
    5 multiplications on a graph whose optimal vertex order costs 4. Kept on the problem: a face
    search asks for them, then the edge search it starts from asks again."""
    from .strategies import HEURISTICS, run_strategy

    kept = problem.__dict__.get("_vertex_orders")
    if kept is not None:
        return kept
    orders = [run_strategy(n, problem)[0] for n in HEURISTICS]
    try:
        with budget.within(budget.left() / 4):
            orders.append(run_strategy("optimal", problem)[0])
    except budget.TimeUp:
        return orders
    problem._vertex_orders = orders
    return orders


def incumbent(problem: Problem) -> tuple[int, list[Move]]:
    """The cheapest of the edge heuristics and the vertex orders of :func:`vertex_orders` as edge moves."""
    with budget.lifted():  # the search needs one whatever the deadline (it then stops at once)
        cands = [fn(problem).order for fn in (forward, reverse)]
    try:
        cands.append(greedy(problem).order)
        cands += [vertex_moves(problem, order) for order in vertex_orders(problem)]
    except budget.TimeUp:  # the deadline passed: the candidates found so far
        pass
    with budget.lifted():
        priced = [(price_edges(problem, m)[1], n, m) for n, m in enumerate(cands)]
    mults, _, moves = min(priced)
    return mults, moves


def _search(problem: Problem, max_states: int | None = None, max_search_bytes: int = MAX_SEARCH_BYTES,
            report: Callable | None = None) -> Result:
    bound, moves = incumbent(problem)
    return search(EdgeState.of(problem), bound, moves, lower_bound, lambda s, move: s.cost(*move),
                  lambda moves, optimal, **info: _result(problem, "optimal", moves, optimal, **info),
                  max_states, max_search_bytes, report)


def search(start, bound: int, moves: list[Move], h: Callable, step_cost: Callable, finish: Callable,
           max_states: int | None = None, max_search_bytes: int = MAX_SEARCH_BYTES,
           report: Callable | None = None) -> Result:
    """A* over elimination states (edge or face) from ``start``: f = mults + ``h`` (admissible),
    deeper states first among equal f, states memoised by ``key()``, pruned by the incumbent
    ``moves`` of cost ``bound``; the first finished state popped is optimal. ``finish(moves,
    optimal, **info)`` makes the Result; stopped by the deadline, ``max_states`` stored states or
    ``max_search_bytes`` of peak-memory growth, it is the incumbent with the proven lower bound
    (the least f popped). ``report(states, best, lower)`` is called every 256 states expanded."""
    base = peak_resident_bytes()
    next_check = 1024
    stopped = None
    seen = {start.key(): 0}
    tie = itertools.count()
    heap = [(h(start), 0, next(tie), start, start.key(), ())]
    tick = budget.Ticker(8)  # per child: one expansion can fork hundreds of states
    lower, states = 0, 0
    try:
        while heap:
            f, ng, _, s, key, path = heapq.heappop(heap)
            if -ng > seen.get(key, -ng):
                continue  # a cheaper way to this state was found later
            lower, states = max(lower, f), states + 1
            if report is not None and not states & 255:
                report(states, bound, lower)
            if f >= bound:
                break  # nothing left can beat the incumbent: it is optimal
            if s.done():
                bound, moves = -ng, _unroll(path)
                break
            for move in s.options():
                tick()
                if s.mults + step_cost(s, move) >= bound:
                    continue  # cannot beat the incumbent, whatever follows
                t = s.fork()
                t.apply(*move)
                k = t.key()
                if t.mults < seen.get(k, bound) and (ft := t.mults + h(t)) < bound:
                    seen[k] = t.mults
                    heapq.heappush(heap, (ft, -t.mults, next(tie), t, k, (path, move)))
            if max_states is not None and len(seen) > max_states:
                stopped = f"max_states={max_states} (stored states)"
                break
            if base is not None and len(seen) >= next_check:
                next_check = len(seen) + 1024
                if peak_resident_bytes() - base > max_search_bytes:
                    stopped = f"memory: peak grew by more than max_search_bytes={max_search_bytes:,}"
                    break
    except budget.TimeUp:
        stopped = "time limit"
    if stopped:
        return finish(moves, False, **{"lower bound": lower}, states=states, stopped=stopped)
    return finish(list(moves), True, **{"lower bound": bound}, states=states)


def _unroll(path: tuple) -> list[Move]:
    out: list[Move] = []
    while path:
        path, move = path
        out.append(move)
    return out[::-1]


def run_edge_strategy(name: str, problem: Problem, cost_model=None, **options) -> Result:
    """Look up ``name`` in :data:`EDGE_STRATEGIES` and run it."""
    fn = EDGE_STRATEGIES.get(name.lower())
    if fn is None:
        raise ValueError(f"unknown edge strategy {name!r}; valid: {', '.join(sorted(EDGE_STRATEGIES))}")
    return fn(problem, cost_model, **options)
