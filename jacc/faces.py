"""Face elimination on the dual (line) graph (Naumann 2004).

U. Naumann, "Optimal accumulation of Jacobian matrices by elimination methods on the dual
computational graph", Math. Program. Ser. A 99 (2004) 399–421. The **dual graph** of G has one
vertex per edge (i, j) of G carrying c_ji, one source per input x and one sink per output y; its
edges, the **faces**, join consecutive edges (i, j) → (j, k), each source x to every (x, j) and
every (j, y) to the sink y. Eliminating the face u → v with u = (i, j), v = (j, k), both edges of
G (not a source or a sink):

1. the product c_v · c_u (one ``algebra.product``) goes to a dual vertex w with predecessors
   P(u) and successors S(v): *absorbed* (added) into an existing vertex with exactly those
   predecessor and successor sets, else a new vertex (i, k) (fill-in);
2. the face u → v is removed;
3. a vertex left without successors (u) or predecessors (v) is removed with its faces;
   otherwise, if another vertex now has exactly the same predecessors and successors as u
   (or v), the two are merged by adding their values (free). This is the rule of Naumann's
   definition and of the ``angel`` tool's ``face_elimination`` (Albrecht, Gottschling, Naumann).

It is done when no face joins two edge vertices: every dual vertex left runs from one source x
to one sink y and holds ∂y/∂x. Front-eliminating edge (i, j) of G is eliminating all the faces
out of (i, j) (back: all the faces into it), so edge and vertex sequences are face sequences;
face elimination can be cheaper still, because one edge's contributions can stay split.

>>> from jacc import examples
>>> from jacc.eliminate import Problem
>>> s = FaceState.of(Problem.from_graph(examples.lion()))
>>> len(s.options())
8
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Hashable, Iterable, Mapping

import numpy as np

from . import budget
from .edges import (
    MAX_SEARCH_BYTES,
    EdgeAccumulation,
    EdgeEliminationError,
    EdgeSearchSizeError,
    EdgeState,
    EdgeStep,
    Move,
    _shape_key,
    assemble,
    check_states,
    limited_options,
    priced_result,
    registrar,
    replay,
    reported,
    result,
    run_edge_strategy,
    search,
    vertex_moves,
    vertex_orders,
)
from .edges import optimal as edge_optimal
from .eliminate import SCALAR, STRUCTURED, Problem
from .strategies import Result, no_options

Key = Hashable


class FaceState:
    """Mutable face-elimination state on the dual graph (symbolic or numeric edge values).

    Dual vertices are ints: the edges of G first (in the problem's edge order), then one source
    per input and one sink per output, then each new vertex in order of creation, so a sequence
    of faces ``(u, v)`` replays to the same ids.

    ``keyed=True`` (the exact search) also keeps, per vertex, the set of G-paths its value sums,
    which :meth:`key` needs; those sets grow with the number of paths in G (3.6 GB while a
    Markowitz order on 469 vertices of 3-vectors was rewritten as faces), so nothing else keeps them."""

    def __init__(self, edges: Mapping[tuple[Key, Key], Any], algebra, inputs: Iterable[Key],
                 sinks: Iterable[Key], keyed: bool = False):
        self.algebra, self.mults = algebra, 0
        self.val: dict[int, Any] = {}
        self.label: dict[int, tuple] = {}
        self.paths: dict[int, frozenset] | None = {} if keyed else None
        ids: dict[tuple, int] = {}
        for n, ((u, v), c) in enumerate(edges.items()):
            ids[u, v] = n
            self.val[n], self.label[n] = c, (u, v)
            if keyed:
                self.paths[n] = frozenset({(u, v)})
        # neighbour sets are frozensets replaced on change, so a fork copies two flat dicts
        self.pred: dict[int, frozenset[int]] = {n: frozenset() for n in self.val}
        self.succ: dict[int, frozenset[int]] = {n: frozenset() for n in self.val}
        nxt = itertools.count(len(ids))
        self.source = {next(nxt): x for x in inputs}
        self.sink = {next(nxt): y for y in sinks}
        for d in (*self.source, *self.sink):
            self.pred[d], self.succ[d] = frozenset(), frozenset()
        self.ends = {**{d: ("src", x) for d, x in self.source.items()},
                     **{d: ("snk", y) for d, y in self.sink.items()}}
        src = {x: d for d, x in self.source.items()}
        snk = {y: d for d, y in self.sink.items()}
        leaving: dict = {}  # vertex of G -> the edges out of it (a scan of every pair took O(E²))
        for (u, _), b in ids.items():
            leaving.setdefault(u, []).append(b)
        for (u, v), a in ids.items():
            if u in src:
                self._link(src[u], a)
            if v in snk:
                self._link(a, snk[v])
            for b in leaving.get(v, ()):
                self._link(a, b)
        self.next_id = next(nxt)
        self._by_label: dict | None = None  # label -> dual vertices (built by find, when needed)

    @classmethod
    def of(cls, problem: Problem, keyed: bool = False) -> "FaceState":
        """The symbolic dual graph of ``problem`` (the scalar class algebra on scalar graphs)."""
        s = EdgeState.of(problem)
        edges = s.edges()  # in the problem's edge order, as numeric() has them: ids must agree
        ordered = {e: edges[e] for e in [*problem.edges, *problem.extra]}
        return cls(ordered, s.algebra, problem.wrt, problem.out_key.values(), keyed)

    @classmethod
    def numeric(cls, problem: Problem, values: Mapping[str, np.ndarray], dtype=np.float64) -> "FaceState":
        return cls(problem.numeric_edges(values, dtype), STRUCTURED, problem.wrt, problem.out_key.values())

    def fork(self) -> "FaceState":
        s = FaceState.__new__(FaceState)
        s.algebra, s.mults, s.next_id = self.algebra, self.mults, self.next_id
        s.val, s.label = dict(self.val), dict(self.label)
        s.paths = None if self.paths is None else dict(self.paths)
        s.source, s.sink, s.ends = self.source, self.sink, self.ends  # never change
        s.pred, s.succ = dict(self.pred), dict(self.succ)
        s._by_label = None  # (built again by find, when needed: the searches' forks never call it)
        return s

    # -- queries ----------------------------------------------------------------------------------
    def options(self) -> list[Move]:
        """Every face between two edge vertices, in id order."""
        return [("face", (u, v)) for u in sorted(self.val) for v in sorted(self.succ[u]) if v in self.val]

    def done(self) -> bool:
        return not any(v in self.val for u in self.val for v in self.succ[u])

    def cost(self, u: int, v: int) -> int:
        self._check(u, v)
        return self.algebra.product(self.val[v], self.val[u])[1]

    def key(self) -> frozenset:
        """Canonical state: each vertex as the set of G-paths its value sums (with its class or
        structure) and each face as a pair of those; independent of the ids (a ``keyed`` state's)."""
        if self.paths is None:
            raise EdgeEliminationError("FaceState.key() needs a state made with keyed=True")
        name = {**self.ends, **self.paths}
        verts = frozenset((self.paths[d], _shape_key(c)) for d, c in self.val.items())
        faces = frozenset((name[u], name[v]) for u in self.val for v in self.succ[u])
        return frozenset((verts, faces))

    def edge(self, x: Key, y: Key) -> Any:
        """The block ∂y/∂x once done: the sum of the vertices from source x to sink y."""
        out = None
        for d, c in self.val.items():
            if {self.source.get(p) for p in self.pred[d]} == {x} and {self.sink.get(q) for q in self.succ[d]} == {y}:
                out = c if out is None else self.algebra.add(out, c)
        return out

    def find(self, i: Key, j: Key) -> int:
        """The one dual vertex labelled (i, j) (an error when there are none or several)."""
        if self._by_label is None:
            self._by_label = {}
            for d, lab in self.label.items():
                self._by_label.setdefault(lab, []).append(d)
        hits = [d for d in self._by_label.get((i, j), ()) if d in self.val]
        if len(hits) != 1:
            raise EdgeEliminationError(f"{len(hits)} dual vertices stand for the edge {i!r} → {j!r}; "
                                       "name the face by its dual vertex ids instead")
        return hits[0]

    # -- moves ------------------------------------------------------------------------------------
    def apply(self, kind: str, ids: tuple) -> EdgeStep:
        if kind != "face":
            raise EdgeEliminationError(f"a face state makes 'face' moves, not {kind!r}")
        return self.face(*ids)

    def face(self, u: int, v: int) -> EdgeStep:
        """Eliminate the face u → v (see the module docstring)."""
        self._check(u, v)
        alg = self.algebra
        (i, j), (_, k) = self.label[u], self.label[v]
        c, n = alg.product(self.val[v], self.val[u])
        step = EdgeStep("face", (i, j, k), n)
        step.ids = (u, v)
        P, S = set(self.pred[u]), set(self.succ[v])
        kept = self.paths
        paths = None if kept is None else frozenset(p + q[1:] for p in kept[u] for q in kept[v])
        w = self._twin(P, S, exclude=())
        if w is not None:
            self.val[w] = alg.add(self.val[w], c)
            if kept is not None:
                kept[w] = kept[w] | paths
            step.absorbed.append((i, k))
        else:
            w = self.next_id
            self.next_id += 1
            self.val[w], self.label[w] = c, (i, k)
            if kept is not None:
                kept[w] = paths
            if self._by_label is not None:
                self._by_label.setdefault((i, k), []).append(w)
            self.pred[w], self.succ[w] = frozenset(), frozenset()
            for p in P:
                self._link(p, w)
            for q in S:
                self._link(w, q)
            step.fill_in.append((i, k))
        self._unlink(u, v)
        self._tidy(u, step)
        self._tidy(v, step)
        self.mults += n
        return step

    # -- internals --------------------------------------------------------------------------------
    def _check(self, u: int, v: int) -> None:
        if u not in self.val or v not in self.val or v not in self.succ[u]:
            raise EdgeEliminationError(
                f"face {u} → {v}: not a face between two edge vertices now; see options()")

    def _link(self, a: int, b: int) -> None:
        self.succ[a] = self.succ[a] | {b}
        self.pred[b] = self.pred[b] | {a}

    def _unlink(self, a: int, b: int) -> None:
        self.succ[a] = self.succ[a] - {b}
        self.pred[b] = self.pred[b] - {a}

    def _twin(self, P: set, S: set, exclude) -> int | None:
        """An edge vertex with exactly predecessors P and successors S (not in ``exclude``)."""
        some = next(iter(P), None)
        if some is None:
            return None
        val, pred, succ = self.val, self.pred, self.succ
        near = succ[some]
        if len(near) > 32:  # a twin follows every p in P and precedes every q in S: scan the fewest of
            # those a few looks find (one dual vertex may have thousands of successors, and P and S
            # thousands of members: either scan made a face rewrite quadratic on a large graph)
            near = min(itertools.chain([near], (succ[p] for p in itertools.islice(P, 8)),
                                       (pred[q] for q in itertools.islice(S, 8))), key=len)
        # the smallest id, so a sequence replays to the same ids (without sorting every time)
        return min((d for d in near if d in val and d not in exclude and pred[d] == P and succ[d] == S),
                   default=None)

    def _tidy(self, d: int, step: EdgeStep) -> None:
        """Remove ``d`` when it lost all successors or predecessors (and anything that then
        loses its own); else merge it with a vertex of the same neighbours."""
        if d not in self.val:
            return
        if not self.succ[d] or not self.pred[d]:
            self._drop(d)
            return
        twin = self._twin(self.pred[d], self.succ[d], exclude=(d,))
        if twin is not None:
            self.val[d] = self.algebra.add(self.val[d], self.val[twin])
            if self.paths is not None:
                self.paths[d] = self.paths[d] | self.paths[twin]
            step.absorbed.append(self.label[d])
            self._drop(twin)

    def _drop(self, d: int) -> None:
        preds, succs = self.pred.pop(d), self.succ.pop(d)
        del self.val[d]
        for p in preds:
            self.succ[p] = self.succ[p] - {d}
        for q in succs:
            self.pred[q] = self.pred[q] - {d}
        for p in preds:  # a vertex whose only successor was d is dead too
            if p in self.val and not self.succ[p]:
                self._drop(p)
        for q in succs:
            if q in self.val and not self.pred[q]:
                self._drop(q)


# -- edge moves on the dual graph ----------------------------------------------------------------


def edge_moves_as_faces(problem: Problem, moves: Iterable[Move]) -> list[Move]:
    """Front/back edge moves (and faces) rewritten as face moves: front (i, j) is every face out
    of the dual vertex (i, j), back (j, k) every face into it."""
    return _as_faces(problem, moves)[0]


def priced_faces(problem: Problem, moves: Iterable[Move]) -> tuple[list[Move], list[EdgeStep], int]:
    """:func:`edge_moves_as_faces` of a sequence that finishes the job, with what
    :func:`price_faces` would give for the faces (the same pass)."""
    out, steps, s = _as_faces(problem, moves)
    _check_done(s)
    return out, steps, s.mults


def _as_faces(problem: Problem, moves: Iterable[Move]) -> tuple[list[Move], list[EdgeStep], "FaceState"]:
    s = FaceState.of(problem)
    out: list[Move] = []
    steps: list[EdgeStep] = []
    tick = budget.Ticker(64)
    for kind, e in moves:
        tick()
        if kind == "face":
            faces = [e]
        else:
            d = s.find(*e)
            faces = [(d, v) for v in sorted(s.succ[d]) if v in s.val] if kind == "front" else \
                [(u, d) for u in sorted(s.pred[d]) if u in s.val]
        for f in faces:
            if f[0] in s.val and f[1] in s.succ.get(f[0], ()):
                steps.append(s.face(*f))
                out.append(("face", f))
    return out, steps, s


def price_faces(problem: Problem, moves: Iterable[Move]) -> tuple[list[EdgeStep], int]:
    """Symbolic steps and total multiplications of a face sequence; it must finish the job."""
    s = FaceState.of(problem)
    steps = replay(s, moves, _check_done)
    return steps, s.mults


def _check_done(s: FaceState) -> None:
    if not s.done():
        raise EdgeEliminationError(f"the face sequence leaves {len(s.options())} faces between edge vertices: "
                                   "add steps that eliminate them (see FaceState.options())")


def accumulate_faces(problem: Problem, values: Mapping[str, np.ndarray], moves: Iterable[Move],
                     dtype=np.float64) -> EdgeAccumulation:
    """Run a face sequence on the graph linearised at ``values``; dense blocks as
    :func:`jacc.eliminate.accumulate` gives them."""
    s = FaceState.numeric(problem, values, dtype)
    steps = replay(s, moves, _check_done)
    return EdgeAccumulation(assemble(problem, s.edge, dtype), steps, s.mults)


# -- strategies ------------------------------------------------------------------------------------

FACE_STRATEGIES: dict[str, Callable[..., Result]] = {}
_register = registrar(FACE_STRATEGIES)


def _result(problem: Problem, name: str, moves: list[Move], optimal: bool | None = None, **info) -> Result:
    return result(price_faces, problem, name, moves, optimal, **info)


def _no_options(name: str, options: dict) -> None:
    no_options(name, options, "face")


@_register("forward")
def forward(problem: Problem, cost_model=None, **options) -> Result:
    """The forward vertex order as faces."""
    limited_options("forward", options, "face")
    return priced_result("forward", *priced_faces(problem, vertex_moves(problem, problem.eliminable)))


@_register("reverse")
def reverse(problem: Problem, cost_model=None, **options) -> Result:
    """The reverse vertex order as faces."""
    limited_options("reverse", options, "face")
    return priced_result("reverse", *priced_faces(problem, vertex_moves(problem, problem.eliminable[::-1], "back")))


@_register("greedy")
def greedy(problem: Problem, cost_model=None, **options) -> Result:
    """Cheapest next face (ties: the first option); the deadline raises ``budget.TimeUp`` (there is
    no sequence to complete a face sequence with)."""
    limited_options("greedy", options, "face")
    s = FaceState.of(problem)
    moves: list[Move] = []
    steps: list[EdgeStep] = []
    tick = budget.Ticker(16)
    while not s.done():
        tick()
        move = min(s.options(), key=lambda m: s.cost(*m[1]))
        steps.append(s.apply(*move))
        moves.append(move)
    _check_done(s)
    return priced_result("greedy", moves, steps, s.mults)


#: Largest number of faces between edge vertices the exact search accepts.
MAX_SEARCH_FACES = 24


@_register("optimal")
def optimal(problem: Problem, cost_model=None, *, time_limit: float = 10.0,
            max_faces: int = MAX_SEARCH_FACES, max_states: int | None = None,
            max_search_bytes: int = MAX_SEARCH_BYTES, progress: bool | None = None, **options) -> Result:
    """Exact minimum over face-elimination sequences (Dijkstra over canonical dual graphs),
    pruned by the best of the face heuristics and the optimal (or greedy) edge sequence; stopped
    by ``time_limit``, ``max_states`` stored states or ``max_search_bytes`` of peak-memory growth
    (as for edges), the best sequence with its proven bound."""
    no_options("optimal", options, "face",
               takes=("time_limit", "max_faces", "max_states", "max_search_bytes", "progress"))
    check_states(max_states, max_search_bytes)
    n = len(FaceState.of(problem).options())
    if n > max_faces:
        raise EdgeSearchSizeError(
            f"optimal face elimination: {n} faces is above max_faces={max_faces}; "
            "use 'greedy' or raise max_faces (the search grows exponentially)")
    return reported("face", progress, time_limit, lambda report: _search(problem, max_states, max_search_bytes, report))


def _incumbent(problem: Problem) -> tuple[int, list[Move]]:
    with budget.lifted():  # the search needs one whatever the deadline (it then stops at once)
        cands = [fn(problem).order for fn in (forward, reverse)]
    try:
        cands.append(greedy(problem).order)
        cands += [edge_moves_as_faces(problem, vertex_moves(problem, order)) for order in vertex_orders(problem)]
        with budget.within(budget.left() / 2):
            cands.append(edge_moves_as_faces(problem, edge_optimal(problem, progress=False).order))
    except (budget.TimeUp, EdgeSearchSizeError):
        with budget.lifted():  # (at most max_faces faces: cheap)
            cands.append(edge_moves_as_faces(problem, run_edge_strategy("greedy", problem).order))
    with budget.lifted():
        return min((price_faces(problem, m)[1], n, m) for n, m in enumerate(cands))[::2]


def lower_bound(s: FaceState) -> int:
    """An admissible bound on the multiplications still needed (scalar algebra; else 0): the
    number of G-vertices j with a face between two value vertices through j.

    Such a face only leaves by being eliminated (one product with middle vertex j), by merging
    with a twin face (which stays), or when an end vertex is removed for want of predecessors
    (successors): the product that emptied it created a value vertex with the same successors
    (predecessors), so a value–value face through j remains. Values never turn back into ±1."""
    if s.algebra is not SCALAR:
        return 0
    val, lab = s.val, s.label
    return len({lab[u][1] for u in val if val[u] & 1 for v in s.succ[u] if v in val and val[v] & 1})


def _search(problem: Problem, max_states: int | None = None, max_search_bytes: int = MAX_SEARCH_BYTES,
            report: Callable | None = None) -> Result:
    bound, moves = _incumbent(problem)
    return search(FaceState.of(problem, keyed=True), bound, moves, lower_bound, lambda s, move: s.cost(*move[1]),
                  lambda moves, optimal, **info: _result(problem, "optimal", moves, optimal, **info),
                  max_states, max_search_bytes, report)


def run_face_strategy(name: str, problem: Problem, cost_model=None, **options) -> Result:
    """Look up ``name`` in :data:`FACE_STRATEGIES` and run it."""
    fn = FACE_STRATEGIES.get(name.lower())
    if fn is None:
        raise ValueError(f"unknown face strategy {name!r}; valid: {', '.join(sorted(FACE_STRATEGIES))}")
    return fn(problem, cost_model, **options)
