"""Vertex elimination on a linearised graph, symbolic and numeric through one code path.

Eliminating vertex ``j`` replaces every path ``i → j → k`` by the edge ``i → k`` carrying
``J_kj · J_ji`` (added to an existing edge). Working on symbolic Jacobians this prices an order;
on numeric ones it accumulates the Jacobian and counts the multiplications it performs.

>>> import numpy as np
>>> from jacc.trace import trace
>>> g = trace(lambda x: np.sin(np.exp(x)), np.ones(4))
>>> prob = Problem.from_graph(g)
>>> e = Eliminator(prob.symbolic_edges())
>>> [e.eliminate(v).mults for v in prob.eliminable]
[4]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from . import budget
from . import structure as S
from .graph import Graph, GraphError
from .structure import Jac

Key = Hashable


class OrderError(ValueError):
    """An explicit elimination order that is not a permutation of the eliminable vertices."""


@dataclass
class Step:
    """One elimination: the vertex, its multiplication count, the fill-in edges it created."""

    vertex: str
    mults: int
    fill_in: list[tuple[Key, Key]] = field(default_factory=list)
    produced_bytes: int = 0
    live_bytes: int = 0
    largest_edge: tuple[Key, Key] | None = None
    largest_bytes: int = 0
    peak_bytes: int = 0


def sink(name: str) -> str:
    """Key of the sink that stands for output ``name`` when the vertex itself is eliminated.

    ``@`` cannot occur in vertex names, so a sink never collides with a vertex.
    """
    return f"{name}@out"


class Problem:
    """What to accumulate: the pruned graph, the eliminable vertices and where outputs end up.

    Only vertices on a path from a ``wrt`` input to an ``of`` output are kept. An output that
    feeds other vertices (or is an input) gets a separate sink joined by an identity edge, so it
    can be eliminated like an intermediate.
    """

    def __init__(self, graph: Graph, wrt: Sequence[str], of: Sequence[str]):
        self.graph, self.wrt, self.of = graph, list(wrt), list(of)
        succ, pred = graph.nx._succ, graph.nx._pred  # (NetworkX's own dicts: its views cost µs per vertex)
        # a path through a vertex of size 0 (a selection that picks nothing) carries nothing: its
        # entries are structural zeros, not a product with an empty Jacobian (0·∞ = NaN on some routes)
        empty = {v for v, d in graph.nx._node.items() if 0 in d["shape"]} - set(self.wrt) - set(self.of)
        if empty:
            keep = _reach(lambda v: [w for w in succ[v] if w not in empty], self.wrt) \
                & _reach(lambda v: [w for w in pred[v] if w not in empty], self.of)
        else:
            keep = _reach(succ.__getitem__, self.wrt) & _reach(pred.__getitem__, self.of)
        order = [v for v in graph.topological_order() if v in keep]
        self.edges = [(u, v) for u in order for v in succ[u] if v in keep]
        self.out_key: dict[str, Key] = {}
        self.extra: list[tuple[Key, Key]] = []
        has_succ = {u for u, _ in self.edges}
        for y in self.of:
            if y in keep and (y in has_succ or y in self.wrt):
                self.out_key[y] = sink(y)
                self.extra.append((y, sink(y)))
            else:
                self.out_key[y] = y
        ends = set(self.out_key.values()) | set(self.wrt)
        self.eliminable: list[str] = [v for v in order if v not in ends]

    @classmethod
    def from_graph(cls, graph: Graph, wrt: Sequence[str] | None = None,
                   of: Sequence[str] | None = None) -> "Problem":
        wrt = list(graph.inputs if wrt is None else wrt)
        of = list(graph.outputs if of is None else of)
        inputs = set(graph.inputs)
        for x in wrt:
            if x not in inputs:
                raise GraphError(f"wrt: {x!r} is not an input of graph {graph.name!r}; inputs are {graph.inputs}")
        for y in of:
            if y not in graph.nx:
                raise GraphError(f"of: {y!r} is not a vertex of graph {graph.name!r}")
        return cls(graph, wrt, of)

    def symbolic_edges(self) -> dict[tuple[Key, Key], Jac]:
        """The partial Jacobians' structures (built once per problem; treat as read-only)."""
        if not hasattr(self, "_symbolic"):
            e = self.graph.partials(self.edges)
            for y, s in self.extra:
                e[y, s] = S.identity(self.graph.shape(y))
            self._symbolic = e
        return self._symbolic

    @property
    def scalar(self) -> bool:
        """True when every vertex on the problem is a scalar (the fast algebra applies)."""
        if not hasattr(self, "_scalar"):
            scalars = self.graph.scalar_vertices()
            self._scalar = all(u in scalars and v in scalars for u, v in self.edges)
        return self._scalar

    def totals_cache(self) -> dict:
        """order tuple → (mults, peak bytes) of the orders priced so far (see :func:`totals`)."""
        if not hasattr(self, "_totals"):
            self._totals: dict = {}
        return self._totals

    def priced(self, order: Sequence[str]) -> bool:
        """Whether ``order`` is the order priced last (:func:`price` and :func:`remember` keep its
        steps): a plan built from it, or a strategy falling back on it, prices nothing again."""
        kept = self.__dict__.get("_priced")
        return kept is not None and kept[0] == tuple(order)

    def eliminator(self) -> "Eliminator":
        """A fresh symbolic elimination state (the scalar algebra when it applies): a fork of
        one built per problem, so pricing many orders does not rebuild it."""
        if not hasattr(self, "_start"):
            algebra, of = self.pricing_algebra()
            edges = self.symbolic_edges()
            self._start = Eliminator({k: of(j) for k, j in edges.items()} if algebra is SCALAR else edges, algebra)
        return self._start.fork()

    def pricing_algebra(self) -> tuple["StructuredAlgebra | ScalarAlgebra", Callable]:
        """``(algebra, of)``: how this problem's orders are priced — ``SCALAR`` on graphs of
        scalars, else ``PRICING`` — and what makes a symbolic partial that algebra's edge."""
        return (SCALAR, SCALAR.of) if self.scalar else (PRICING, _same)

    def components(self) -> list[list[str]]:
        """The eliminable vertices split into independent groups: connected through eliminable
        vertices only. Eliminating a vertex changes edges among its neighbours alone, so the cost
        of eliminating one group never depends on another's: the optimum is the sum of the groups'
        optima, and any interleaving of the groups' orders costs the same (a batch of independent
        Black–Scholes options at scalar level is one group per option)."""
        inner = set(self.eliminable)
        adj: dict = {v: set() for v in self.eliminable}
        for chunk in budget.chunks(self.edges):  # (the planning deadline holds: TimeUp past it)
            for u, v in chunk:
                if u in inner and v in inner:
                    adj[u].add(v)
                    adj[v].add(u)
        index: dict = {}
        groups: list = []
        for chunk in budget.chunks(self.eliminable):
            for v in chunk:  # topological order, kept inside each group
                if v not in index:
                    for w in _reach(adj.__getitem__, [v]):
                        index[w] = len(groups)
                    groups.append([])
                groups[index[v]].append(v)
        return groups

    def restrict(self, group: Sequence[str]) -> "Problem":
        """The problem of eliminating ``group`` only (one of :meth:`components`): its vertices'
        edges, the rest of the graph as fixed end points."""
        return self.restrict_all([group])[0]

    def restrict_all(self, groups: Sequence[Sequence[str]]) -> list["Problem"]:
        """:meth:`restrict` for disjoint ``groups``, in one pass over the edges (a thousand
        independent options at scalar level: not a thousand passes over the whole graph)."""
        where = {v: n for n, group in enumerate(groups) for v in group}
        subs = []
        naive = self.__dict__.get("_naive")
        for chunk in budget.chunks(groups, 1024):  # (the planning deadline holds: TimeUp past it)
            for group in chunk:
                sub = Problem.__new__(Problem)
                sub.graph, sub.wrt, sub.of, sub.out_key = self.graph, self.wrt, self.of, self.out_key
                sub.edges, sub.extra, sub.eliminable = [], [], list(group)
                if naive is not None:
                    sub._naive = naive
                subs.append(sub)
        for chunk in budget.chunks(self.edges):
            for u, v in chunk:
                a, b = where.get(u), where.get(v)
                if a is not None:
                    subs[a].edges.append((u, v))
                if b is not None and b != a:
                    subs[b].edges.append((u, v))
        for y, s in self.extra:
            if y in where:
                subs[where[y]].extra.append((y, s))
        return subs

    def numeric_edges(self, values: Mapping[str, np.ndarray], dtype=np.float64) -> dict:
        e = self.graph.linearise(values, self.edges, dtype)
        for y, s in self.extra:
            e[y, s] = S.identity(self.graph.shape(y))
        return e

    def check_order(self, order: Iterable[str]) -> list[str]:
        """Validate an explicit order: every eliminable vertex exactly once, nothing else."""
        order = list(order)
        want = set(self.eliminable)
        seen: set = set()
        dup = sorted({v for v in order if v in seen or seen.add(v)})
        missing = [v for v in self.eliminable if v not in seen]
        extra = [v for v in order if v not in want]
        if dup or missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"not eliminable {extra} (inputs, sinks or off-path vertices)")
            if dup:
                parts.append(f"repeated {dup}")
            raise OrderError("elimination order must list every eliminable vertex once: "
                             + "; ".join(parts) + f". Eliminable: {self.eliminable}")
        return order


def _same(j: Jac) -> Jac:
    return j


def _reach(step, sources) -> set:
    seen = set(sources)
    stack = list(sources)
    while stack:
        for w in step(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


class StructuredAlgebra:
    """Edges are :class:`Jac` objects (symbolic or numeric)."""

    product = staticmethod(S.product)
    add = staticmethod(S.add)

    @staticmethod
    def nbytes(j: Jac) -> int:
        return j.nbytes

    @staticmethod
    def symbolic(j: Jac) -> Jac:
        return j if j.unit or j.symbolic else j.strip()


class ScalarAlgebra:
    """Fast symbolic algebra for graphs of scalars: an edge is 0 (exactly 1), 2 (exactly −1) or
    1 (a value); odd means a value.

    Agrees with :class:`StructuredAlgebra` on scalar Jacobians: ±1·x is free, a product of two
    values is one multiplication, and any sum is a value.
    """

    @staticmethod
    def product(a: int, b: int) -> tuple[int, int]:
        if a & 1 or b & 1:
            return 1, a & b & 1
        return a ^ b, 0  # the signs multiply

    @staticmethod
    def add(a: int, b: int) -> int:
        return 1

    @staticmethod
    def nbytes(a: int) -> int:
        return 8 * (a & 1)

    @staticmethod
    def symbolic(a: int) -> int:
        return a

    @staticmethod
    def of(j: Jac) -> int:
        return (2 if j.neg else 0) if j.unit else 1


class PricingAlgebra(StructuredAlgebra):
    """Symbolic edges only: products and sums run under :func:`structure.pricing`, so 0/1 maps
    (identities, reshapes, selections) are never materialised just to be priced."""

    @staticmethod
    def product(a: Jac, b: Jac) -> tuple[Jac, int]:
        with S.pricing():
            return S.product(a, b)

    @staticmethod
    def add(a: Jac, b: Jac) -> Jac:
        with S.pricing():
            return S.add(a, b)


STRUCTURED = StructuredAlgebra()
PRICING = PricingAlgebra()
SCALAR = ScalarAlgebra()
_ODD = (1).__and__  # a scalar edge's value bit (see ScalarAlgebra)


@dataclass
class Preview:
    """What eliminating a vertex now would do, without doing it (``peak``: the live bytes at
    the step's fullest moment, see :func:`step_memory`)."""

    mults: int
    fill: int
    live_after: int
    peak: int = 0


def step_memory(pieces: Iterable[tuple[int, int | None, int]], eliminated: int) -> tuple[int, int]:
    """(change of live bytes, the most bytes held on top of those before) of one elimination.

    ``pieces``: per product, its bytes, the bytes of the edge it is added to (``None``: it becomes
    a new edge) and the bytes of that sum; ``eliminated``: the bytes of the eliminated vertex's own
    edges. The step holds its own edges until it ends and makes its products one at a time; a sum
    is written into its product when that is as large (the compiled program's
    :func:`jacc.program.into`), else it is a third array beside the two terms. The second figure
    is the most any order of the products can hold — each product made after every other one that
    grows the graph — so both figures depend only on the graph before the step (the exact
    searches use them on sets) and bound what the program holds whatever order it makes them in.
    Counted in the order the graph listed them, the same step held 8 bytes more after one history
    than after another, and ``optimal(objective="memory")`` called a 48-byte order optimal beside a
    40-byte one.

    >>> step_memory([(800, None, 800), (800, 800, 800)], 96)
    (704, 1600)
    """
    grows = cur = extra = 0  # extra: the most a product holds beyond its own share of the growth
    for made, old, total in pieces:
        change = made if old is None else total - old
        cur += change
        grows += max(change, 0)
        extra = max(extra, made + (total if old is not None and total > made else 0) - max(change, 0))
    return cur - eliminated, grows + extra


#: products and sums an :class:`Eliminator` family remembers before it starts again, of partials
#: of at most :data:`MEMO_SIZE` entries each (their index arrays then take at most a few KB)
MEMO_ENTRIES = 50_000
MEMO_SIZE = 256


def _small(j: Jac) -> bool:
    return math.prod(j.out_shape) * math.prod(j.in_shape) <= MEMO_SIZE


class Eliminator:
    """Mutable elimination state over a dict of edge Jacobians (symbolic or numeric)."""

    def __init__(self, edges: Mapping[tuple[Key, Key], Jac], algebra=STRUCTURED):
        self.algebra = algebra
        self.pred: dict[Key, dict[Key, Jac]] = {}
        self.succ: dict[Key, dict[Key, Jac]] = {}
        self.live_bytes = 0
        for (u, v), j in edges.items():
            self.succ.setdefault(u, {})[v] = j
            self.pred.setdefault(v, {})[u] = j
            self.succ.setdefault(v, {})
            self.pred.setdefault(u, {})
            self.live_bytes += algebra.nbytes(j)
        self.peak_bytes = self.live_bytes
        self.mults = 0
        self.log: list[Step] | None = None  # a list here receives every step eliminated
        # symbolic products and sums already priced, by the identity of their (never mutated)
        # operands, shared by forks: a greedy strategy previews each neighbour of every vertex it
        # eliminates again, mostly over the same edges (Markowitz on an RK4 loop of three steps:
        # 9.2 s, pricing products of sums of lazy maps, each distributed over their terms)
        self.memo: dict | None = {} if algebra is PRICING else None

    def fork(self) -> "Eliminator":
        """An independent copy of this state (edge values are shared: they are never mutated)."""
        e = Eliminator.__new__(Eliminator)
        e.algebra = self.algebra
        e.pred = {k: dict(v) for k, v in self.pred.items()}
        e.succ = {k: dict(v) for k, v in self.succ.items()}
        e.live_bytes, e.peak_bytes, e.mults = self.live_bytes, self.peak_bytes, self.mults
        e.log, e.memo = None, self.memo
        return e

    def _priced(self, op: Callable, a: Jac, b: Jac) -> Any:
        """``op(a, b)`` (the algebra's product or add), remembered in :attr:`memo` where it has one."""
        memo = self.memo
        if memo is None or not (_small(a) and _small(b)):  # (large maps hold large index arrays)
            return op(a, b)
        key = (op, id(a), id(b))
        hit = memo.get(key)
        if hit is not None and hit[0] is a and hit[1] is b:
            return hit[2]
        found = op(a, b)
        if len(memo) >= MEMO_ENTRIES:
            memo.clear()
        memo[key] = (a, b, found)  # (holding the operands keeps their ids from being reused)
        return found

    def preview(self, j: Key) -> Preview:
        """Multiplications, fill-in, live bytes after and the step's peak if ``j`` were
        eliminated now (no mutation)."""
        alg = self.algebra
        preds, succs = self.pred.get(j, {}), self.succ.get(j, {})
        mults = fill = 0
        pieces = []
        for i, b in preds.items():
            bs = alg.symbolic(b)
            out_i = self.succ[i]
            for k, a in succs.items():
                c, n = self._priced(alg.product, alg.symbolic(a), bs)
                mults += n
                old = out_i.get(k)
                if old is None:
                    fill += 1
                    pieces.append((alg.nbytes(c), None, 0))
                else:
                    total = self._priced(alg.add, alg.symbolic(old), c)
                    pieces.append((alg.nbytes(c), alg.nbytes(old), alg.nbytes(total)))
        delta, top = step_memory(pieces, self._own_bytes(preds, succs))
        return Preview(mults, fill, self.live_bytes + delta, self.live_bytes + top)

    def _own_bytes(self, preds: Mapping, succs: Mapping) -> int:
        nb = self.algebra.nbytes
        return sum(nb(b) for b in preds.values()) + sum(nb(a) for a in succs.values())

    def cost(self, j: Key) -> int:
        """Multiplications that eliminating ``j`` now would take (symbolic, no mutation)."""
        if self.algebra is SCALAR:  # value·value pairs only: O(degree), not O(degree²)
            return sum(self.pred.get(j, {}).values()) * sum(self.succ.get(j, {}).values())
        return self.preview(j).mults

    def eliminate(self, j: Key) -> Step:
        if self.algebra is SCALAR:
            return self._eliminate_scalar(j)
        alg = self.algebra
        preds, succs = self.pred.pop(j, {}), self.succ.pop(j, {})
        step = Step(str(j), 0)
        own = self._own_bytes(preds, succs)
        for i in preds:
            del self.succ[i][j]
        for k in succs:
            del self.pred[k][j]
        pieces = []
        for i, b in preds.items():
            out_i = self.succ[i]
            for k, a in succs.items():
                c, n = self._priced(alg.product, a, b)
                step.mults += n
                made = alg.nbytes(c)
                old = out_i.get(k)
                if old is None:
                    step.fill_in.append((i, k))
                    nb = made
                    pieces.append((made, None, 0))
                else:
                    c = self._priced(alg.add, old, c)
                    nb = alg.nbytes(c)
                    pieces.append((made, alg.nbytes(old), nb))
                out_i[k] = c
                self.pred[k][i] = c
                step.produced_bytes += nb
                if nb > step.largest_bytes or step.largest_edge is None:
                    step.largest_edge, step.largest_bytes = (i, k), nb
        delta, top = step_memory(pieces, own)
        step.peak_bytes = self.live_bytes + top
        self.live_bytes += delta
        self.mults += step.mults
        self.peak_bytes = max(self.peak_bytes, step.peak_bytes)
        step.live_bytes = self.live_bytes
        if self.log is not None:
            self.log.append(step)
        return step

    def _eliminate_scalar(self, j: Key) -> Step:
        """:meth:`eliminate` with :class:`ScalarAlgebra`'s rules and :func:`step_memory` written
        out: pricing a scalar graph of 10⁵ vertices spends its time here."""
        preds, succs = self.pred.pop(j, {}), self.succ.pop(j, {})
        step = Step(str(j), 0)
        own = 8 * (sum(map(_ODD, preds.values())) + sum(map(_ODD, succs.values())))
        for i in preds:
            del self.succ[i][j]
        pred = self.pred
        for k in succs:
            del pred[k][j]
        fill = step.fill_in
        cur = mults = produced = largest = 0
        kept = False  # a sum into an edge that held a value (step_memory: 8 bytes above the step's end at worst)
        largest_edge = None
        for i, b in preds.items():
            out_i = self.succ[i]
            for k, a in succs.items():
                if a & 1 or b & 1:  # ScalarAlgebra.product
                    c = 1
                    mults += a & b & 1
                else:
                    c = a ^ b
                made = 8 * (c & 1)
                old = out_i.get(k)
                if old is None:
                    fill.append((i, k))
                    nb = made
                    cur += made
                else:  # any sum is a value, written into its product when that is a value too
                    c, nb = 1, 8  # (the product, 0 or 8 bytes, and the sum, 8, held at once)
                    kept = kept or bool(old & 1)
                    cur += 8 - 8 * (old & 1)
                out_i[k] = c
                pred[k][i] = c
                produced += nb
                if nb > largest or largest_edge is None:
                    largest_edge, largest = (i, k), nb
        step.mults, step.produced_bytes, step.largest_edge, step.largest_bytes = mults, produced, largest_edge, largest
        top = cur + 8 if kept else cur  # (step_memory's worst order, written out)
        step.peak_bytes = self.live_bytes + top
        self.live_bytes += cur - own
        self.mults += mults
        self.peak_bytes = max(self.peak_bytes, step.peak_bytes)
        step.live_bytes = self.live_bytes
        if self.log is not None:
            self.log.append(step)
        return step

    def edge(self, u: Key, v: Key) -> Jac | None:
        return self.succ.get(u, {}).get(v)


def forward_order(problem: Problem) -> list[str]:
    return list(problem.eliminable)


def reverse_order(problem: Problem) -> list[str]:
    return list(reversed(problem.eliminable))


@dataclass
class Accumulation:
    """The result of eliminating an order numerically."""

    blocks: dict[tuple[str, str], np.ndarray]  # (output, input) -> dense Jacobian
    steps: list[Step]
    mults: int
    peak_bytes: int
    values: dict[str, np.ndarray]


def accumulate(problem: Problem, values: Mapping[str, np.ndarray], order: Sequence[str],
               dtype=np.float64, sparse: bool = False) -> Accumulation:
    """Eliminate ``order`` on the graph linearised at ``values``; assemble dense blocks.

    ``sparse=True`` assembles each block as a ``scipy.sparse.csr_array`` of shape
    ``(prod(shape(y)), prod(shape(x)))`` built from the final edge's structure
    (:func:`jacc.sparse.to_sparse`), never as a dense array."""
    e = Eliminator(problem.numeric_edges(values, dtype))
    steps = [e.eliminate(v) for v in order]
    g = problem.graph
    blocks = {}
    if sparse:
        from .sparse import to_sparse
    for y in problem.of:
        for x in problem.wrt:
            j = e.edge(x, problem.out_key[y])
            if sparse:
                blocks[y, x] = to_sparse(j, g.shape(y), g.shape(x), dtype)
                continue
            shape = g.shape(y) + g.shape(x)
            blocks[y, x] = (np.zeros(shape, dtype) if j is None
                            else j.to_dense().astype(dtype, copy=False).reshape(shape))
    return Accumulation(blocks, steps, e.mults, e.peak_bytes, dict(values))


def price(problem: Problem, order: Sequence[str]) -> tuple[list[Step], int, int]:
    """Symbolic steps, total multiplications and peak bytes of eliminating ``order``.

    Honours the current planning deadline (:mod:`jacc.budget`): raises ``TimeUp`` past it. The
    last order priced is remembered on the problem, so the plan built from a strategy's choice
    is not priced twice."""
    key = tuple(order)
    kept = problem.__dict__.get("_priced")
    if kept is not None and kept[0] == key:
        return list(kept[1]), kept[2], kept[3]
    steps: list[Step] = []
    e = _priced_into(problem, order, steps)
    remember(problem, key, steps, e)
    return list(steps), e.mults, e.peak_bytes


def _priced_into(problem: Problem, order: Sequence[str], steps: list[Step]) -> Eliminator:
    """Eliminate ``order`` on a fresh symbolic state, appending each step to ``steps`` (so a
    caller cut short by the deadline, ``TimeUp``, knows how far it got); the final state."""
    e = problem.eliminator()
    tick = budget.Ticker(32)
    for v in order:
        tick()
        steps.append(e.eliminate(v))
    return e


def pricing_seconds(problem: Problem, within: float) -> float:
    """About how long pricing one whole order of ``problem`` takes: the likely cheaper of forward
    and reverse order is priced for at most ``within`` seconds — measured, and remembered like
    :func:`price`'s, when it finishes; else extrapolated from the share it finished."""
    from .strategies import naive_first

    order = forward_order(problem) if naive_first(problem)[0] == "forward" else reverse_order(problem)
    if not order:
        return 0.0
    problem.eliminator()  # (the set-up shared by every pricing, built once: not part of the rate)
    steps: list[Step] = []
    t0 = time.perf_counter()
    try:
        with budget.within(within):
            e = _priced_into(problem, order, steps)
    except budget.TimeUp:
        return (time.perf_counter() - t0) * len(order) / max(len(steps), 1)
    took = time.perf_counter() - t0
    remember(problem, order, steps, e)
    return took


def remember(problem: Problem, order: Sequence[str], steps: list[Step], e: Eliminator) -> None:
    """Keep ``steps`` (the whole ``order`` eliminated by ``e``) as the problem's last priced order,
    so the plan built from it (:func:`price`) and :func:`totals` do not price it again."""
    key = tuple(order)
    problem.totals_cache()[key] = (e.mults, e.peak_bytes)
    problem._priced = (key, steps, e.mults, e.peak_bytes)


def totals(problem: Problem, order: Sequence[str]) -> tuple[int, int]:
    """(mults, peak bytes) of ``order``, memoised on the problem so that strategies, ``auto`` and
    the plan report never price the same order twice. Honours the planning deadline."""
    key = tuple(order)
    hit = problem.totals_cache().get(key)
    if hit is None:
        e = problem.eliminator()
        tick = budget.Ticker(32)
        for v in key:
            tick()
            e.eliminate(v)
        hit = problem.totals_cache()[key] = (e.mults, e.peak_bytes)
    return hit

