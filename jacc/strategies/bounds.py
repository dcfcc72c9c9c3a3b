"""Admissible lower bounds on the multiplications that vertex elimination must still pay.

Graphs of scalars only (the ``SCALAR`` algebra: an edge class ``c`` with ``c & 1`` is a value,
any other class is a free unit ±1). Eliminating ``v`` from the graph G_T left by a set T costs
``|P| · |K|``, where P are the predecessors of ``v`` in G_T joined to it by a *value* edge and
K the successors reached by one: a product costs one multiplication iff both factors are values.

**Claim (per-vertex floor).** Let ``κ_in(v)`` be the largest number of vertex-disjoint paths
from the inputs that end in a value edge ``u → v`` of the original graph (``v`` itself excluded;
inputs and ``u`` count as path vertices), and ``κ_out(v)`` likewise from a value edge ``v → w``
to the sinks. Then for *every* set T not containing ``v``, ``|P| ≥ κ_in(v)`` and
``|K| ≥ κ_out(v)``, so eliminating ``v`` costs at least ``floor(v) = κ_in(v) · κ_out(v)``.

*Proof.* Take a path ``x = p0 → … → pm = u → v`` from an input with ``u → v`` a value edge, and
let ``pj`` be its last vertex outside T (``p0`` qualifies: inputs are never eliminated). The rest
of the path runs through T only, so G_T has the edge ``pj → v`` and that path's product is one
of the terms summed on it. The product has the value factor ``u → v``, so it is a value, and a
sum with a value term is a value: ``pj ∈ P``. Hence P meets every such path, i.e. P is a vertex
cut of them, and by Menger's theorem ``|P| ≥ κ_in(v)``. The successor side is symmetric. ∎

Units matter: a path that ends in a unit edge gives no such guarantee (``x → u → v`` with both
edges ±1 stays a free unit edge when ``u`` goes first), which is why only value last edges count.

Every vertex outside S is eliminated exactly once after S, so ``h(S) = Σ_{v ∉ S} floor(v)`` is an
admissible bound on the remaining cost, and a *consistent* one (each step costs at least the
floor it removes from h). :class:`UnitComponents` sharpens it where unit edges join
intermediates (the order between their ends decides which paths count).

A bound from the final Jacobian ("every entry needing a path of two value edges needs a
multiplication") is *not* additive over entries: one product ``u → w`` feeds every output that
``w`` reaches by unit edges, so it is not used here.

>>> from jacc import examples
>>> from jacc.eliminate import Problem
>>> sorted(vertex_floors(Problem.from_graph(examples.lion())).items())  # lion's optimum: 12
[('t1', 4), ('t2', 4)]
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping

from .. import budget
from ..eliminate import Problem, ScalarAlgebra

Key = Hashable


def is_scalar(algebra) -> bool:
    """True for the scalar algebra, the only one the floors are proven for."""
    return isinstance(algebra, ScalarAlgebra)


def vertex_floors(problem: Problem) -> dict[str, int]:
    """``{v: κ_in(v) · κ_out(v)}`` for every eliminable vertex (all 0 on array graphs)."""
    e = problem.eliminator()
    edges = {(u, v): j for u, row in e.succ.items() for v, j in row.items()}
    return floors_of(edges, problem.eliminable, e.algebra)


def floors_of(edges: Mapping[tuple[Key, Key], object], verts: Iterable[Key], algebra) -> dict:
    """:func:`vertex_floors` for an explicit edge dict (vertex pairs → edge classes)."""
    return {v: a * b for v, (a, b) in cuts_of(edges, verts, algebra).items()}


def cuts_of(edges: Mapping[tuple[Key, Key], object], verts: Iterable[Key], algebra) -> dict:
    """``{v: (κ_in(v), κ_out(v))}`` (see the module docstring); (0, 0) on array graphs."""
    verts = list(verts)
    if not is_scalar(algebra):
        return {v: (0, 0) for v in verts}  # no proven floor for structured Jacobians: plain Dijkstra
    succ: dict = {}
    pred: dict = {}
    for (u, v), c in edges.items():
        succ.setdefault(u, []).append((v, c))
        pred.setdefault(v, []).append((u, c))
    nodes = set(succ) | set(pred)
    sources = [u for u in nodes if u not in pred]
    sinks = [u for u in nodes if u not in succ]
    out = {}
    for v in verts:
        if budget.expired():  # out of time: 0 is a floor too
            out[v] = (0, 0)
            continue
        into = [u for u, c in pred.get(v, ()) if c & 1]
        outof = [w for w, c in succ.get(v, ()) if c & 1]
        k_in = _disjoint_paths(succ, sources, set(into), v) if into else 0
        k_out = _disjoint_paths(pred, sinks, set(outof), v) if outof else 0
        out[v] = (k_in, k_out)
    return out


def _disjoint_paths(step: dict, starts: list, ends: set, avoid, free: frozenset = frozenset()) -> int:
    """Most vertex-disjoint paths from ``starts`` to ``ends`` along ``step`` (adjacency lists of
    (neighbour, class)), never through ``avoid``: Edmonds–Karp on the split graph, where vertex
    ``x`` becomes ``(x, 0) → (x, 1)`` of capacity 1 (Menger: the flow equals the smallest vertex
    cut). A path may be one vertex that is both a start and an end. Vertices in ``free`` cannot
    be cut (they are known to be eliminated already, so they are nobody's predecessor)."""
    big = len(ends) + 1  # "infinite": the flow never exceeds the number of ends
    res: dict = {}

    def arc(a, b, cap):
        res.setdefault(a, {})[b] = res.get(a, {}).get(b, 0) + cap
        res.setdefault(b, {}).setdefault(a, 0)

    seen, todo = set(), [s for s in starts if s != avoid]
    for s in todo:
        arc("source", (s, 0), big)
    seen.update(todo)
    while todo:  # only the part reachable from the starts matters
        x = todo.pop()
        arc((x, 0), (x, 1), big if x in free else 1)
        if x in ends:
            arc((x, 1), "target", big)
        for w, _ in step.get(x, ()):
            if w != avoid:
                arc((x, 1), (w, 0), big)
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
    flow = 0
    while (back := _bfs(res)) is not None:
        node = "target"
        while node != "source":  # every arc on a shortest path has capacity >= 1: push 1
            prev = back[node]
            res[prev][node] -= 1
            res[node][prev] += 1
            node = prev
        flow += 1
    return flow


def _bfs(res: dict):
    """Parent links of a shortest source → target path with spare capacity, or ``None``."""
    back = {"source": None}
    frontier = ["source"]
    while frontier:
        nxt = []
        for a in frontier:
            for b, cap in res.get(a, {}).items():
                if cap > 0 and b not in back:
                    back[b] = a
                    if b == "target":
                        return back
                    nxt.append(b)
        frontier = nxt
    return None


class UnitComponents:
    """A sharper bound from the order between vertices joined by unit edges.

    If a unit edge ``u → v`` joins two intermediates and ``u`` is eliminated first, every path
    ``… → i → u → v`` with a value edge ``i → u`` reaches v through the eliminated u, so (by the
    argument of the module docstring) it must meet v's value predecessors: v's in-cut may end at
    such ``i`` too, and ``u`` itself cannot be cut. If ``v`` goes first, ``u`` gains, symmetrically,
    the out-paths ``v → k`` with ``v → k`` a value. Every order orients every unit edge one way,
    so the minimum over all orientations (cycles allowed: a relaxation) of the sum of the
    per-vertex products is a lower bound. Vertices joined by unit edges form small components
    on traced programs (sums and differences), so the minimum is found by enumerating the
    orientations of each component's edges (at most ``max_edges`` of them; a larger component
    falls back to the plain floors, which are the orientation-free case).

    Two paths through eliminated vertices also make a value (a sum): a vertex with edges into
    both v and an eliminated unit predecessor of v is counted too (:func:`_forks`).

    ``bound(done)`` gives the bound for the vertices not in ``done`` (a set of eliminated
    vertices; their edges are oriented already) as ``(sum over components, vertices covered)``.
    """

    def __init__(self, edges: Mapping, verts: Iterable, algebra, max_edges: int = 16, cuts: Mapping | None = None):
        verts = list(verts)
        self.scalar = is_scalar(algebra)
        elim = set(verts)
        self.succ: dict = {}
        self.pred: dict = {}
        for (u, v), c in edges.items():
            self.succ.setdefault(u, []).append((v, c))
            self.pred.setdefault(v, []).append((u, c))
        nodes = set(self.succ) | set(self.pred)
        self.sources = [u for u in nodes if u not in self.pred]
        self.sinks = [u for u in nodes if u not in self.succ]
        unit = [(u, v) for (u, v), c in edges.items() if not c & 1 and u in elim and v in elim] if self.scalar else []
        self.comps = [c for c in _components(unit) if len(c[1]) <= max_edges]
        self.covered = {v for vs, _ in self.comps for v in vs}
        # ``cuts`` (from :func:`cuts_of`) are the cuts with nothing eliminated before: known already
        self._kin: dict = {(v, frozenset()): c[0] for v, c in (cuts or {}).items()}
        self._kout: dict = {(v, frozenset()): c[1] for v, c in (cuts or {}).items()}
        self._memo: list = [{} for _ in self.comps]

    def k_in(self, v, before: frozenset) -> int:
        """v's in-cut when the unit predecessors ``before`` are eliminated before it."""
        key = (v, before)
        if key not in self._kin:
            ends = {u for u, c in self.pred.get(v, ()) if c & 1}
            for u in before:
                ends |= {i for i, c in self.pred.get(u, ()) if c & 1}
            ends |= _forks(self.pred, v, before)
            self._kin[key] = _disjoint_paths(self.succ, self.sources, ends, v, before) if ends else 0
        return self._kin[key]

    def k_out(self, v, before: frozenset) -> int:
        """v's out-cut when the unit successors ``before`` are eliminated before it."""
        key = (v, before)
        if key not in self._kout:
            ends = {w for w, c in self.succ.get(v, ()) if c & 1}
            for w in before:
                ends |= {k for k, c in self.succ.get(w, ()) if c & 1}
            ends |= _forks(self.succ, v, before)
            self._kout[key] = _disjoint_paths(self.pred, self.sinks, ends, v, before) if ends else 0
        return self._kout[key]

    def bound(self, done) -> int:
        """Σ over components of the least cost of their vertices not in ``done``."""
        return sum(self.component(n, done) for n in range(len(self.comps)))

    def component(self, n: int, done) -> int:
        verts, unit = self.comps[n]
        gone = frozenset(v for v in verts if v in done)
        memo = self._memo[n]
        if gone not in memo:
            memo[gone] = self._least(verts, unit, gone)
        return memo[gone]

    def _least(self, verts, unit, gone) -> int:
        open_ = [(u, v) for u, v in unit if u not in gone and v not in gone]
        left = [v for v in verts if v not in gone]
        up: dict = {}
        down: dict = {}
        for u, w in unit:
            up.setdefault(w, []).append(u)
            down.setdefault(u, []).append(w)
        best = None
        for bits in range(1 << len(open_)):
            # out of time: the orientation-free floors. (Checked at every orientation: one can
            # take milliseconds of max-flows, and np.cov's 12×12 scalar graph spent 11 s in 1,024.)
            if budget.expired():
                return sum(self.k_in(v, frozenset()) * self.k_out(v, frozenset()) for v in left)
            first = {}  # (u, v) -> the endpoint eliminated first
            for n, (u, v) in enumerate(open_):
                first[u, v] = u if bits >> n & 1 else v
            total = 0
            for v in left:
                b_in = _earlier(v, up, gone, first, 0)
                b_out = _earlier(v, down, gone, first, 1)
                total += self.k_in(v, b_in) * self.k_out(v, b_out)
                if best is not None and total >= best:
                    break
            if best is None or total < best:
                best = total
        return best or 0


def _earlier(v, step: dict, gone, first: dict, side: int) -> frozenset:
    """The vertices joined to v by a chain of unit edges (``step``: ``up`` = towards the inputs,
    side 0; ``down`` = towards the outputs, side 1) each of which is eliminated before the next
    vertex towards v: all of them are eliminated before v (orientations are transitive)."""
    seen: set = set()
    todo = [v]
    while todo:
        b = todo.pop()
        for a in step.get(b, ()):
            edge = (a, b) if side == 0 else (b, a)
            if a not in seen and a != v and (a in gone or first.get(edge) == a):
                seen.add(a)
                todo.append(a)
    return frozenset(seen)


def _forks(pred: dict, v, before: frozenset) -> set:
    """Vertices with two edges into {v} ∪ ``before`` (along ``pred``; the successor side passes
    ``succ``): they reach v by two paths through eliminated vertices, and a sum of two terms is a
    value, so the first of them (or of their own predecessors) left standing is a value
    predecessor of v, unit edges or not."""
    if not before:
        return set()
    seen: set = set()
    twice: set = set()
    for u in (v, *before):
        for i, _ in pred.get(u, ()):
            (twice if i in seen else seen).add(i)
    return twice - {v} - before


def _components(edges: list) -> list:
    """Connected components of an edge list as (vertices, edges)."""
    root: dict = {}

    def find(x):
        while root.setdefault(x, x) != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for u, v in edges:
        root[find(u)] = find(v)
    groups: dict = {}
    for u, v in edges:
        verts, es = groups.setdefault(find(u), (set(), []))
        verts |= {u, v}
        es.append((u, v))
    return [(sorted(vs, key=str), es) for vs, es in groups.values()]
