"""A plan lowered to one generated function: no ``Jac`` objects, no bookkeeping at run time.

:func:`lower` runs the plan's partial rules and eliminations once on :class:`~jacc.lazy.Lazy`
stand-ins for the vertex values (and the graph's constants), so the label and pairing work is
done there, once, and what remains is the list of NumPy calls that touch values: local partials,
every structured product as an einsum, gathers and scatters with their index arrays fixed, and
the assembly of the result blocks. Identical calls are recorded once. :func:`emit` prints that
list as Python source for a backend — ``numpy`` (plain NumPy calls; einsum contraction paths
fixed at lowering time), ``jax`` (the same calls on ``jax.numpy`` under ``jax.jit``) or ``torch``
(the same calls on PyTorch, :mod:`jacc.torch_backend`) — and compiles it. The program performs
exactly the plan's multiplications: lowering runs the elimination whose count the plan reports.

>>> import numpy as np
>>> from jacc import plan, trace
>>> g = trace(lambda x: np.sin(x) * x, np.ones(3))
>>> p = plan(g, "forward")
>>> prog = lower(p, g.evaluate({"x": np.ones(3)}))
>>> J = prog.run(g.evaluate({"x": np.zeros(3)}), g)[g.outputs[0], "x"]
>>> J.tolist()
[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
>>> prog.mults == p.mults
True
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import string
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from . import factorise, lazy, vecmath
from . import structure as S
from .eliminate import Eliminator
from .graph import Const, Graph
from .lazy import Lazy, LowerError, Recorder, Ref, Statement
from .onehot import one_hot_products
from .ops import OPS

if TYPE_CHECKING:
    from .plan import Plan

BACKENDS = ("numpy", "jax", "torch")


class BackendError(RuntimeError):
    """A backend that is not installed or cannot run this program."""


class TooLongForXLA(BackendError):
    """A program longer than :data:`JAX_MAX_STATEMENTS`: ``jacobian`` runs its NumPy twin instead."""


#: the longest array program ``backend="jax"`` hands to ``jax.jit``: XLA's compile time of long
#: straight-line programs grows faster than their length (an adaptive integrator's unrolled steps:
#: 1,188 statements compiled in 19 s, 1,855 in 54 s, 2,951 in over 200 s), and a program this
#: long runs its NumPy twin only about twice as slowly (a 200-step loop: 50 ms a call against 24 ms)
JAX_MAX_STATEMENTS = 1000


@dataclass
class Recorded:
    """A plan's value computation as statements (backend-independent)."""

    statements: list[Statement]
    inputs: list[int]  # statement ids of the leaves, in the order the program takes them
    vertices: list[str]  # the vertex whose value each leading leaf is
    consts: list[tuple[str, int]]  # (vertex, argument position) of each constant leaf (after vertices)
    outputs: list[tuple[str, str]]
    results: list[Any]  # per output: a Ref, or a constant array (copied on every call)
    mults: int
    shapes: dict[int, tuple] = field(repr=False, default_factory=dict)  # per statement id
    baked: bool = False  # constants are literals: valid for this graph only
    expected: list = field(repr=False, default_factory=list)  # the blocks at the lowering point
    structures: list | None = None  # sparse results: (final edge structure, out shape, in shape)
    primal: bool = False
    pinned: dict = field(repr=False, default_factory=dict)  # (vertex, position) -> a constant read as a value
    #: one-hot masks the program computes: mask statement id -> (its labels' statement id, n) (jacc.onehot)
    one_hot: dict = field(repr=False, default_factory=dict)


@dataclass
class Program:
    """A compiled plan: ``run(values, graph)`` → ``{(output, input): dense block}``.

    ``source`` is the generated code; ``mults`` the multiplications it performs (= the plan's);
    ``baked`` means the graph's constants were compiled in (the program then serves only the
    graph it was lowered from)."""

    backend: str
    source: str
    fn: Callable
    vertices: list[str]
    consts: list[tuple[str, int]]
    outputs: list[tuple[str, str]]
    mults: int
    statements: int
    baked: bool
    structures: list | None = None  # set for sparse results (see ``record``)
    primal: bool = False  # computes the vertex values itself: ``vertices`` are the graph's inputs
    written: int = 0  # entries its statements write per call (views such as reshapes not counted)
    #: (vertex, argument position) -> value of each graph constant a rule read as a value (positions
    #: a scatter writes at): compiled in, so the program serves a graph only where they are the same
    pinned: dict = field(default_factory=dict, repr=False)

    device_consts: Any = field(default=None, repr=False, compare=False)  # (graph, constants on JAX's device)
    host_consts: Any = field(default=None, repr=False, compare=False)  # (graph, its constants the program reads)
    #: JAX: the jitted program returning its blocks as ``jax.Array`` values where they were computed (the
    #: result assembled by XLA, no host copies): what :meth:`run` calls with ``device=True``
    device: Callable | None = field(default=None, repr=False, compare=False)
    device_checked: Callable | None = field(default=None, repr=False, compare=False)  # see run_on_device
    device_verified: bool = field(default=False, repr=False, compare=False)
    #: products with an inverse written as solves (:func:`_inverses_as_solves`): at an ill-conditioned
    #: lowering point they differ from the executor's products by about cond·ε, and are emitted again without
    solves: bool = field(default=False, repr=False, compare=False)
    #: (arguments, blocks) of :func:`check`'s run, kept by ``lower(keep=True)`` for the first
    #: :meth:`run` (``first=True``) on the very same argument objects; any run drops it
    checked: Any = field(default=None, repr=False, compare=False)

    def serves(self, graph: Graph) -> bool:
        """Whether this program computes ``graph``'s Jacobian: not baked, and every pinned
        constant bit for bit the same in ``graph`` (a graph of the same structure, as a rebuilt
        cache entry's)."""
        from .guards import same

        if self.baked:
            return False
        nodes = graph.nx.nodes
        for (v, i), value in self.pinned.items():
            args = nodes[v]["args"] if v in nodes else ()
            if i >= len(args) or isinstance(args[i], str) or not same(args[i].value, value):
                return False
        return True

    def inputs(self, values: Mapping[str, Any], graph: Graph) -> list:
        """The program's arguments: vertex values, then the graph's constants it reads."""
        nodes = graph.nx.nodes
        vals = [values[v] for v in self.vertices]
        if self.backend == "jax" and self.consts:
            # NumPy arguments cross to JAX's device at every call (microseconds each); a graph's
            # constants cross once (a new graph, e.g. other constants, crosses again)
            kept = self.device_consts
            if kept is None or kept[0] is not graph:
                import jax

                kept = self.device_consts = (graph, [jax.device_put(nodes[v]["args"][i].value)
                                                     for v, i in self.consts])
            return vals + kept[1]
        if not self.consts:
            return vals
        kept = self.host_consts  # (looked up once per graph: a graph's constants never change)
        if kept is None or kept[0] is not graph:
            kept = self.host_consts = (graph, [nodes[v]["args"][i].value for v, i in self.consts])
        return vals + kept[1]

    def run(self, values: Mapping[str, Any], graph: Graph, device: bool = False,
            first: bool = False) -> dict[tuple[str, str], Any]:
        """``{(output, input): block}`` at the vertex ``values`` (the blocks are the caller's).
        ``device=True`` (JAX programs with dense results): the blocks stay ``jax.Array`` values on
        JAX's device, and ``values`` may be ``jax.Array`` values there too: no copy to or from the host.
        ``first``: the call right after ``lower(keep=True)`` in the same call of ``jacobian``, which
        takes the lowering check's blocks where its arguments are the very same objects (the
        first call of RoeFlux ran its program a third time, 300 ms of writing fresh pages)."""
        kept, self.checked = self.checked, None
        if device and self.device is not None:
            return self.run_on_device(values, graph)[0]
        V = self.inputs(values, graph)
        if first and kept is not None and len(kept[0]) == len(V) and all(map(operator.is_, kept[0], V)):
            out = kept[1]
        else:
            # silent as every other route (C, floats, JAX): an overflow shows in the blocks only
            with factorise.sharing(), np.errstate(all="ignore"):
                out = self.fn(V)
        if self.structures is None:
            return self._dense(out, V)
        from .sparse import to_sparse

        blocks = {}
        for k, v, structure in zip(self.outputs, out, self.structures):
            if structure is None:  # an output's value (outputs=True): dense, the caller's own
                blocks[k] = owned(v, self._given(V))
                continue
            j, so, si = structure
            if j is not None and j.terms is not None:  # one array: the terms' values, concatenated
                sizes = [math.prod(S._middle(t)) for t in j.terms]
                j = S.with_term_values(j, np.split(np.asarray(v), np.cumsum(sizes)[:-1]))
            elif j is not None and j.vlabels is not None:
                j = S.Jac(j.out_shape, j.in_shape, j.pair, j.vlabels, v, j.reshape, j.select, j.embed)
            blocks[k] = to_sparse(j, so, si, v.dtype)
        return blocks

    def _dense(self, out: Sequence, V: list) -> dict[tuple[str, str], Any]:
        """The program's dense blocks ``out`` as the caller's own (copies of what it may not write)."""
        given = self._given(V)
        return {k: owned(b, given) for k, b in zip(self.outputs, out)}

    def _given(self, V: list) -> Sequence[np.ndarray]:
        """The caller's arrays among the arguments ``V``, which a block must not be (a view of)."""
        return [v for v in V[:len(self.vertices)] if type(v) is np.ndarray and v.size] if self.primal else ()

    def start(self, values: Mapping[str, Any], graph: Graph) -> Callable[[], dict] | None:
        """:meth:`run` in two steps, for a JAX program with dense results: its jitted call is
        dispatched now, and XLA computes on its own threads while the caller goes on (checking what
        ``f`` reads, say); the function returned waits for the blocks and returns :meth:`run`'s
        result. None for a program that runs at once (NumPy, torch, sparse results)."""
        begin = getattr(self.fn, "start", None)
        if begin is None or self.structures is not None:
            return None
        self.checked = None
        V = self.inputs(values, graph)
        pending = begin(V)

        def collect() -> dict[tuple[str, str], Any]:
            with np.errstate(all="ignore"):  # (a host tail's NumPy writes, silent as in run)
                return self._dense(pending(), V)
        return collect

    def run_on_device(self, values: Mapping[str, Any], graph: Graph, check: bool = False,
                      domain: bool = False) -> tuple[dict, bool, bool]:
        """:meth:`run` with ``device=True`` (needs :attr:`device`); whether every vertex value
        passed in is finite (when ``check``, else True) and whether every block is (when
        ``domain``, else True). Both are reduced in the same jitted call, its two flags read in one
        transfer: JAX's eager ``isfinite(b).all()`` on the blocks took 120–600 µs a call on gp_nll
        and gp_kernel. Where only the arguments are checked and they live in host memory
        (:func:`_on_host`), NumPy checks them in place: no round trip to XLA."""
        V = self.inputs(values, graph)
        if not self.device_verified:  # its first call: against the host program, checked at lowering
            out, ok = self._verified_on_device(V, check)
            return out, ok, not domain or finite_blocks(out)
        if not (check or domain):
            return dict(zip(self.outputs, self.device(V))), True, True
        n = len(self.vertices)
        if not domain and all(map(_on_host, V[:n])):
            if not all(np.isfinite(np.asarray(x)).all() for x in V[:n]):
                return {}, False, True  # (refused: not run, as a host step such as an SVD may fail on NaN)
            return dict(zip(self.outputs, self.device(V))), True, True
        if self.device_checked is None:
            import jax

            self.device_checked = jax.jit(_with_flags(self.device, n))
        out, flags = self.device_checked(V)
        ok, fine = np.asarray(flags).tolist()
        return dict(zip(self.outputs, out)), ok or not check, fine or not domain

    def _verified_on_device(self, V: list, check: bool) -> tuple[dict, bool]:
        """The device variant's first call, compared block by block with the host program (which
        :func:`check` compared with the executor at lowering): the two differ in who assembles
        dense blocks. A disagreement is a bug: the host program's blocks are returned (as
        ``jax.Array`` values) from then on, with a warning."""
        jnp = _jax_namespace()
        ok = bool(_all_finite(jnp, V[:len(self.vertices)])) if check else True
        with np.errstate(all="ignore"):
            host = self.fn(V)
        out = self.device(V)
        bad = next((k for k, a, b in zip(self.outputs, out, host) if _disagreement(np.asarray(a), b)), None)
        if bad is not None:
            warnings.warn(f"jacc: the JAX program's device variant disagrees with its host program on "
                          f"block {bad}; the host program runs instead (please report this)", RuntimeWarning,
                          stacklevel=4)
            fn = self.fn
            self.device = lambda V: tuple(jnp.asarray(b) for b in fn(V))
            self.device_checked = _with_flags(self.device, len(self.vertices))  # (not jitted)
            out = self.device(V)
        self.device_verified = True
        return dict(zip(self.outputs, out)), ok

    def __str__(self) -> str:
        return self.source


#: ops whose NumPy form raises ``LinAlgError`` at a singular matrix (their derivative's, for
#: ``logabsdet``), where XLA gives inf or NaN
RAISE_WHEN_SINGULAR = frozenset({"inv", "solve", "logabsdet", "cholesky", "solve_triangular_value",
                                 "inv_lower_value"})


def singular_ops(graph: Graph) -> bool:
    """Whether ``graph`` has an op of :data:`RAISE_WHEN_SINGULAR`."""
    return any(graph.op(v) in RAISE_WHEN_SINGULAR for v in graph.nx)


def raise_as_numpy(backend: str, graph: Graph, found: Any, executor: Callable[[], Any]) -> None:
    """A JAX program's blocks ``found`` where NumPy would have raised: XLA's inverse of a singular
    matrix is inf, so where ``graph`` has such ops and a block is not finite, ``executor()`` (the
    interpreted plan on the same values) runs and raises ``LinAlgError`` as NumPy does."""
    if backend == "jax" and singular_ops(graph) and not finite_blocks(found):
        with np.errstate(all="ignore"):
            executor()


def finite_blocks(found: Any) -> bool:
    """Whether every block a compiled route returned (floats, arrays, sparse or ``jax.Array``
    blocks, in a dict or a sequence) is finite."""
    for b in (found.values() if isinstance(found, dict) else found):
        if type(b) is float:
            if not math.isfinite(b):
                return False
        elif hasattr(b, "block_until_ready"):  # a jax.Array: reduced on its device, not copied to the host
            if not bool(_jax_namespace().isfinite(b).all()):
                return False
        elif not finite_array(np.asarray(b.data if hasattr(b, "tocsr") else b)):
            return False
    return True


def finite_array(x: np.ndarray) -> bool:
    """A finite sum means finite terms (one pass, no array of booleans); an overflowing one checks each."""
    with np.errstate(over="ignore", invalid="ignore"):  # (an overflowing sum is the answer's, not the user's)
        return math.isfinite(np.add.reduce(x, None)) or bool(np.isfinite(x).all())


def owned(a: Any, inputs: Sequence[np.ndarray] = ()) -> Any:
    """``a``, or a copy when it is (a view of) memory the caller may not write: a broadcast, a
    graph constant, a traced input's private copy, or one of the ``inputs`` a program was given
    (the caller's arrays: ``x @ D`` w.r.t. ``x`` is ``D.T``, which changes when the caller
    refills ``D``)."""
    if isinstance(a, np.generic):  # a program's scalar: the caller gets a 0-d array, as before
        return np.asarray(a)
    b = a
    while isinstance(b, np.ndarray):
        if not b.flags.writeable:
            return np.array(a)
        b = b.base
    for x in inputs:
        if np.may_share_memory(a, x):
            return np.array(a)
    return a


# -- lowering -----------------------------------------------------------------------------------


class _Leaves(Mapping):
    """Vertex values as recorder leaves, created on first use (so the program reads only what
    its partial rules need)."""

    def __init__(self, rec: Recorder, values: Mapping, dtype):
        self.rec, self.values, self.dtype = rec, values, dtype
        self.made: dict[str, Lazy] = {}

    def __getitem__(self, name: str) -> Lazy:
        if name not in self.made:
            self.made[name] = self.rec.leaf(np.asarray(self.values[name], dtype=self.dtype))
        return self.made[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


class _Primal(Mapping):
    """Vertex values computed inside the program from the graph's inputs (every input is a
    leaf, in ``graph.inputs`` order), so the program needs no traced values at all."""

    def __init__(self, rec: Recorder, graph: Graph, values: Mapping, dtype, consts: Callable | None):
        self.rec, self.graph, self.dtype, self.consts = rec, graph, dtype, consts
        self.values = values
        self.made: dict[str, Any] = {x: rec.leaf(np.asarray(values[x], dtype=dtype)) for x in graph.inputs}

    def _shared(self, v: str, made: Any) -> Any:
        """``made`` holding the traced value of ``v`` where there is one of its shape and dtype:
        the recording then keeps no second copy of the primal (RoeFlux over 10⁶ interfaces held
        0.8 GB more at its first call). The program still computes its own, which the lowering
        check compares through the blocks."""
        known = self.values.get(v) if isinstance(made, Lazy) else None
        if type(known) is np.ndarray and known.shape == np.shape(made.value) and known.dtype == made.value.dtype:
            made.value = known
        return made

    def __getitem__(self, name: str):
        if name in self.made:
            return self.made[name]
        nodes = self.graph.nx.nodes
        stack = [name]
        while stack:  # evaluate the missing ancestors first, without recursion (long chains)
            v = stack[-1]
            todo = [a for a in nodes[v]["args"] if isinstance(a, str) and a not in self.made]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if v in self.made:
                continue
            d = nodes[v]
            args = [self[a] if isinstance(a, str) else
                    (a.value if self.consts is None else self.consts(v, i, a.value))
                    for i, a in enumerate(d["args"])]
            self.made[v] = self._shared(v, lazy.asarray(OPS[d["op"]].evaluate(args, d["params"]), dtype=self.dtype))
        return self.made[name]

    def __iter__(self):
        return iter(self.graph.nx.nodes)

    def __len__(self) -> int:
        return self.graph.nx.number_of_nodes()


def record(plan: "Plan", values: Mapping[str, np.ndarray], dtype=np.float64, bake: bool = False,
           sparse: bool = False, primal: bool = False, with_outputs: bool = False) -> Recorded:
    """Run ``plan`` once on stand-ins for ``values`` and keep the NumPy calls that touch them.

    Constants become program inputs too unless ``bake`` (then they are literals). With
    ``sparse`` the results are the final edges' value arrays (their structures are kept), not
    dense blocks. Raises :class:`~jacc.lazy.LowerError` where a rule inspects a value (the plan
    then runs interpreted). With ``primal`` the program computes the vertex values itself from
    the graph's inputs (``values`` then needs the inputs only), and with ``with_outputs`` too it also
    returns the value of each output ``y`` of the plan, under the key ``(y, None)`` after the
    blocks (:func:`jacc.value_and_jacobian`).
    """
    problem, g = plan.problem, plan.graph
    rec = Recorder()
    const_leaves: dict[tuple[str, int], Lazy] = {}

    pinned: dict[tuple[str, int], Any] = {}

    def consts(v: str, i: int, value):
        if (v, i) not in const_leaves:
            const_leaves[v, i] = rec.leaf(value, pin=lambda: pinned.setdefault((v, i), value))
        return const_leaves[v, i]

    leaves: Any = (_Primal(rec, g, values, dtype, None if bake else consts) if primal
                   else _Leaves(rec, values, dtype))

    with np.errstate(all="ignore"):
        edges = g.linearise(leaves, problem.edges, dtype, consts=None if bake else consts)
        for y, s in problem.extra:
            edges[y, s] = S.identity(g.shape(y))
        e = Eliminator(edges)
        for v in plan.order:
            e.eliminate(v)
        results, outputs, expected, structures = [], [], [], []
        for y in problem.of:
            for x in problem.wrt:
                j = e.edge(x, problem.out_key[y])
                shape = g.shape(y) + g.shape(x)
                if sparse and j is not None and j.terms is not None:
                    block = np.concatenate([np.reshape(v, (-1,)) for v in S.term_values(j)])
                    structures.append((j.strip(), g.shape(y), g.shape(x)))
                elif sparse:  # the values alone: the structure is the same on every call
                    block = np.zeros((), dtype) if j is None or j.values is None else j.values
                    structures.append((None if j is None else j.strip(), g.shape(y), g.shape(x)))
                if sparse:  # (a float64 coefficient of a float32 program's sum would make it float64)
                    block = block.astype(dtype, copy=False)
                else:
                    block = (np.zeros(shape, dtype) if j is None
                             else j.to_dense().astype(dtype, copy=False).reshape(shape))
                outputs.append((y, x))
                results.append(Ref(block.id) if isinstance(block, Lazy) else np.asarray(block))
                expected.append(block.value if isinstance(block, Lazy) else np.asarray(block))
        for y in problem.of if with_outputs and primal else ():  # (the primal's own values: nothing multiplied)
            value = leaves[y]
            outputs.append((y, None))
            results.append(Ref(value.id) if isinstance(value, Lazy) else np.asarray(value, dtype))
            expected.append(value.value if isinstance(value, Lazy) else np.asarray(value, dtype))
            if sparse:
                structures.append(None)
    vertices = list(g.inputs) if primal else list(leaves.made)
    vertex_ids = [leaves.made[v].id for v in vertices]
    const_ids = [leaf.id for leaf in const_leaves.values()]
    made = leaves.made if primal else {}
    one_hot = {made[m].id: (made[t].id, n) for m, (t, n) in g.meta.get("one_hot", {}).items()
               if isinstance(made.get(m), Lazy) and isinstance(made.get(t), Lazy)}
    return Recorded(rec.statements, vertex_ids + const_ids, vertices, list(const_leaves),
                    outputs, results, e.mults, rec.shapes, bake, expected,
                    structures if sparse else None, primal, pinned, one_hot)


def lower(plan: "Plan", values: Mapping[str, np.ndarray], dtype=np.float64, backend: str = "numpy",
          sparse: bool = False, primal: bool = False, keep: bool = False, outputs: bool = False) -> Program:
    """``plan`` as a compiled :class:`Program` for ``backend``, lowered at the point ``values``
    (any point: only shapes and structure matter, unless a rule needs a constant's value, in
    which case the graph's constants are compiled in and ``Program.baked`` is true). With
    ``sparse``, ``run`` returns ``scipy.sparse`` CSR blocks (see :func:`jacc.sparse.to_sparse`).
    With ``primal``, the program also evaluates the graph: ``run`` needs the inputs only, and with
    ``outputs`` it returns the outputs' values too (keys ``(y, None)``, see :func:`record`). With
    ``keep``, the check's blocks at ``values`` stay for ``run(…, first=True)``."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    _backend(backend)  # a missing library is one clear line before any work
    try:
        r = record(plan, values, dtype, sparse=sparse, primal=primal, with_outputs=outputs)
    except LowerError:
        r = record(plan, values, dtype, bake=True, sparse=sparse, primal=primal, with_outputs=outputs)
    if r.mults != plan.mults:
        raise LowerError(f"lowered program counts {r.mults} multiplications, the plan {plan.mults}")
    prog = emit(r, backend)
    if backend == "jax" and prog.statements > JAX_MAX_STATEMENTS:
        raise TooLongForXLA(f"{prog.statements:,} statements: more than jax.jit compiles quickly "
                            f"({JAX_MAX_STATEMENTS:,}, jacc.program.JAX_MAX_STATEMENTS); the NumPy program runs")
    if backend == "jax" and prog.device is None and r.structures is None:  # its host assembles blocks
        prog.device = emit(r, backend, host_tail=False).device
    try:
        try:
            checked = check(prog, r, values, plan.graph)
        except LowerError:
            prog, checked = _checked_at_conditioning(prog, r, values, plan.graph)
    except (LowerError, BackendError):
        raise
    except Exception as e:  # jax/torch: a call the backend maps but cannot run on these arguments
        if backend == "numpy":
            raise  # the NumPy program runs the executor's own calls: a failure here is a bug to see
        raise BackendError(f"the {backend} program fails at the lowering point: {type(e).__name__}: {e}") from None
    if keep:
        prog.checked = checked
    return prog


_CHECKED = 1 << 16  # entries per block compared by ``check``

#: Above this condition number of a matrix a factorising op reads at the lowering point, ``check``
#: takes no slack: rounding may then move a Jacobian entry by a percent
SLACK_COND_MAX = 1e12


def _slack(graph: Graph, values: Mapping) -> float:
    """How far :func:`check` may widen its tolerance at this point: a correct program and the
    executor differ by about cond·ε where a factorising op reads an ill-conditioned matrix (a GP
    kernel of condition 10⁸ made every later call run the executor); 1 where none does, or where
    one is beyond :data:`SLACK_COND_MAX`."""
    worst = 1.0
    for v in graph.nx:
        op = OPS.get(graph.op(v))
        args = graph.nx.nodes[v].get("args") or ()
        if op is None or not op.factorises or not args or isinstance(args[0], Const):
            continue
        a = np.asarray(values.get(args[0], np.empty(0)))
        if a.ndim >= 2 and a.shape[-1] == a.shape[-2] and a.size and a.dtype.kind == "f":
            with np.errstate(all="ignore"):
                worst = max(worst, float(np.max(np.linalg.cond(a))))
    return 1.0 if not worst <= SLACK_COND_MAX else max(1.0, worst * 2e-5)


def _checked_at_conditioning(prog: Program, r: Recorded, values: Mapping, graph: Graph) -> tuple:
    """After ``prog`` failed :func:`check`: the program, and the check's result, that passes with
    the slack of :func:`_slack` (``prog`` itself, or the same emitted with products of an inverse
    kept as products, the executor's own calls); raises the first failure where none does."""
    slack = _slack(graph, values)
    tries = [(prog, slack)] if slack > 1 else []
    if prog.solves:
        plain = emit(r, prog.backend, solves=False)
        tries += [(plain, 1.0)] + ([(plain, slack)] if slack > 1 else [])
    for candidate, s in tries:
        try:
            return candidate, check(candidate, r, values, graph, s)
        except LowerError:
            continue
    return prog, check(prog, r, values, graph)  # (raises its first failure again)


def check(prog: Program, r: Recorded, values: Mapping, graph: Graph, slack: float = 1.0) -> tuple[list, Any]:
    """Run the emitted program at the lowering point and compare with the recorded blocks (the
    same NumPy calls made by the executor's algebra), within ``slack`` times the usual tolerance;
    raise :class:`LowerError` on disagreement. Returns the program's arguments and blocks there."""
    V = prog.inputs(values, graph)
    with np.errstate(all="ignore"):
        got = prog.fn(V)
    for key, a, b in zip(prog.outputs, got, r.expected):
        why = _disagreement(np.asarray(a), b, slack)
        if why:
            raise LowerError(f"the {prog.backend} program {why} (against the executor) on block {key}")
    return V, got


def _disagreement(a: np.ndarray, b: np.ndarray, slack: float = 1.0) -> str | None:
    """How block ``a`` differs from the reference ``b`` (None when it agrees)."""
    if a.shape != b.shape:
        return f"gives the shape {a.shape}, not {b.shape}"
    if a.dtype != b.dtype and a.dtype.kind == b.dtype.kind == "f":  # (float64 blocks for float32 ones)
        return f"gives {a.dtype} blocks, not {b.dtype}"
    if b.size > _CHECKED:  # big blocks: a fixed sample of entries (a wrong statement shows widely)
        pick = np.random.default_rng(0).integers(0, b.size, _CHECKED)
        a, b = a.reshape(-1)[pick], b.reshape(-1)[pick]
    finite = np.abs(b[np.isfinite(b)])
    # sums may be ordered differently, and a factorisation's rounding differs between libraries:
    # tolerances in units of the blocks' precision (float32's are 5·10⁸ times float64's)
    rtol, atol = (t * slack for t in _TOLERANCE[b.dtype == np.float32])
    if not np.allclose(a, b, rtol=rtol, atol=atol * max(1.0, float(finite.max(initial=0.0))), equal_nan=True):
        return "disagrees"
    return None


_TOLERANCE = {False: (1e-9, 1e-12), True: (1e-4, 1e-5)}  # (rtol, atol per largest entry): float64, float32


# -- emission -----------------------------------------------------------------------------------


def _live(r: Recorded) -> list[Statement]:
    """The statements the results depend on, in order."""
    by_id = {s.id: s for s in r.statements}
    need = {x.id for x in r.results if isinstance(x, Ref)}
    stack = list(need)
    while stack:
        s = by_id[stack.pop()]
        for ref in s.refs:
            if ref not in need:
                need.add(ref)
                stack.append(ref)
    return [s for s in r.statements if s.id in need]


class _Writer:
    """Source text plus the namespace its names refer to."""

    def __init__(self):
        self.env: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self.alias: dict[int, int] = {}  # statement id -> the earlier value it merely renames

    def const(self, obj: Any, hint: str = "k") -> str:
        key = id(obj)
        if key not in self._by_id:
            name = f"{hint}{len(self.env)}"
            self.env[name] = obj
            self._by_id[key] = name
        return self._by_id[key]

    def text(self, x: Any) -> str:
        if isinstance(x, Ref):
            return f"a{self.alias.get(x.id, x.id)}"
        if isinstance(x, tuple):
            return "(" + "".join(self.text(v) + ", " for v in x) + ")"
        if isinstance(x, list):
            return "[" + ", ".join(self.text(v) for v in x) + "]"
        if x is None or isinstance(x, (bool, int, str)) and not isinstance(x, np.generic):
            return repr(x)
        if type(x) is float and math.isfinite(x):  # (np.float64 is a float too: its repr names np)
            return repr(x)
        if x is Ellipsis:
            return "..."
        return self.const(x)

    def call(self, fn_text: str, args: tuple, kwargs: dict) -> str:
        parts = [self.text(a) for a in args] + [f"{k}={self.text(v)}" for k, v in kwargs.items()]
        return f"{fn_text}({', '.join(parts)})"


_LETTERS = string.ascii_letters


def _einsum_parts(args: tuple) -> tuple[str, list]:
    """(subscripts, operands) of an einsum call in either calling convention."""
    if isinstance(args[0], str):
        return args[0], list(args[1:])
    ops, subs = list(args[0::2]), list(args[1::2])
    if len(args) % 2:  # the interleaved form with an explicit output list
        ops, out = ops[:-1], args[-1]
    else:
        out = None
    lhs = ",".join("".join(_LETTERS[i] for i in s) for s in subs)
    if out is None:
        return lhs, ops
    return lhs + "->" + "".join(_LETTERS[i] for i in out), ops


# Arithmetic on scalars is written with operators (NumPy scalars keep NumPy's semantics: 1/0 is inf
# with a warning, not an exception) — a ufunc call costs ~600 ns, an operator on scalars ~60 ns.
_OPERATORS = {np.add: "{} + {}", np.subtract: "{} - {}", np.multiply: "{} * {}", np.true_divide: "{} / {}",
              np.negative: "-{}"}


def _all_scalar(args: tuple, shapes: dict[int, tuple]) -> bool:
    """Every argument a 0-d value (a scalar in the program) or a plain number, at least one of them
    computed."""
    refs = [a for a in args if isinstance(a, Ref)]
    return bool(refs) and all(shapes.get(a.id) == () for a in refs) and all(
        isinstance(a, Ref) or (isinstance(a, (float, np.floating)) and not isinstance(a, bool)) for a in args)


# Copies the algebra makes so that it may write into arrays; a program never writes in place.
_ALIASES = (np.ascontiguousarray,)


def _aliases(live: list[Statement], shapes: dict[int, tuple]) -> dict[int, int]:
    """Statements that only rename an earlier value — copies, and reshapes, broadcasts and
    einsums that leave the shape and layout as they are — mapped to that value's id."""
    out: dict[int, int] = {}
    for s in live:
        src = s.args[0] if s.args and isinstance(s.args[0], Ref) else None
        same = src is not None and shapes.get(src.id) == shapes.get(s.id)
        if s.method == "copy":
            pass
        elif same and (s.method == "reshape" or s.fn is np.broadcast_to or s.fn in _ALIASES):
            pass
        elif same and s.fn is np.moveaxis and _moves_nothing(s.args, s.kwargs, len(shapes[src.id])):
            pass
        elif same and (s.method == "transpose" or s.fn is np.transpose) and _transposes_nothing(s):
            pass
        elif s.fn is np.einsum:  # either calling convention: one operand, its labels unchanged
            subs, ops = _einsum_parts(s.args)
            lhs, _, rhs = subs.partition("->")
            if len(ops) != 1 or lhs != rhs or not isinstance(ops[0], Ref):
                continue
            src = ops[0]
        else:
            continue
        out[s.id] = out.get(src.id, src.id)
    return out


def _transposes_nothing(s: Statement) -> bool:
    """Whether ``x.transpose(axes)`` or ``np.transpose(x, axes)`` (positional) keeps every axis in
    its place (the algebra writes ``np.transpose(v, [0, 1, 2])`` where a product's labels are in
    order already)."""
    if s.kwargs or len(s.args) != 2 or lazy.refs_in(s.args[1:]):
        return False
    axes = s.args[1]
    return isinstance(axes, (list, tuple)) and list(axes) == list(range(len(axes)))


def _moves_nothing(args: tuple, kwargs: dict, ndim: int) -> bool:
    """Whether ``np.moveaxis(x, source, destination)`` (positional) leaves every axis in place."""
    if kwargs or len(args) != 3 or ndim == 0:
        return False
    try:
        src, dst = (tuple(int(a) % ndim for a in np.atleast_1d(x)) for x in args[1:])
    except (TypeError, ValueError):
        return False
    return src == dst


def add_rows(acc: np.ndarray, v: np.ndarray, rows) -> np.ndarray:
    """``acc + put_rows(v, len(acc), rows)``, written into ``acc`` (a program's own temporary)."""
    acc[rows] += v
    return acc


def _summands(s: Statement, alias: dict[int, int]) -> list[int]:
    """The two values ``s`` adds (``np.add`` of two computed values, aliases resolved), else []."""
    if s.fn is np.add and not s.kwargs and len(s.args) == 2 and all(isinstance(x, Ref) for x in s.args):
        return [alias.get(x.id, x.id) for x in s.args]
    return []


def add_where(acc: np.ndarray, v: Any, mask: Any) -> np.ndarray:
    """``acc + np.where(mask, v, 0.0)`` written into ``acc`` (a program's own temporary of the
    result's shape) without the masked term's own block; a sum that would need a cast is a new array.

    >>> acc = np.ones((2, 3))
    >>> add_where(acc, np.array([5.0, 6.0, 7.0]), np.array([[True], [False]])) is acc, acc
    (True, array([[6., 7., 8.],
           [1., 1., 1.]]))
    """
    try:
        return np.add(acc, v, out=acc, where=mask, casting="no")
    except TypeError:  # (numpy's UFuncTypeError: complex values, say)
        return acc + np.where(mask, v, 0.0)


def add_box(acc: np.ndarray, v: Any, box: tuple) -> np.ndarray:
    """``acc + np.where(mask, v, 0.0)`` written into ``acc`` where ``mask`` is True on ``box``
    alone: slices (a concatenation's piece, a block of rows), or the index arrays of a sparse
    mask's positions (a sum on those entries only)."""
    acc[box] += np.broadcast_to(v, acc.shape)[box]
    return acc


def _box(mask: Any, ndim: int) -> tuple | None:
    """Where a constant ``mask`` (broadcast to ``ndim`` axes) is True, as an index for
    :func:`add_box`: slices where those positions are a box of contiguous ranges, else the
    positions' index arrays where they are few (:data:`PLACED_SPARSITY`); else None."""
    if isinstance(mask, Ref) or np.ndim(mask) > ndim:
        return None
    m = np.asarray(mask, dtype=bool).reshape((1,) * (ndim - np.ndim(mask)) + np.shape(mask))
    if not m.any():
        return None
    box, sides = [], []
    for k in range(ndim):
        side = m.any(axis=tuple(a for a in range(ndim) if a != k))
        pos = np.flatnonzero(side)
        box.append(slice(None) if m.shape[k] == 1 else slice(int(pos[0]), int(pos[-1]) + 1))
        sides.append(side.reshape([-1 if a == k else 1 for a in range(ndim)]) if pos[-1] - pos[0] + 1 == pos.size
                     else None)
    if all(x is not None for x in sides) and np.array_equal(m, np.logical_and.reduce(np.broadcast_arrays(*sides))):
        return tuple(box)
    if np.count_nonzero(m) * PLACED_SPARSITY <= m.size and all(n > 1 for n in m.shape):
        return tuple(np.nonzero(m))
    return None


def _masked_terms_added_in_place(live: list[Statement], alias: dict[int, int], kept: set[int],
                                 shapes: dict[int, tuple]) -> list[Statement]:
    """Rewrite ``acc + np.where(mask, v, 0.0)``, both read only there and ``acc`` the program's own
    array of the result's shape, as :func:`add_where`. A concatenation's dense Jacobian was a sum
    of such terms, each a block of the whole Jacobian's size: 23.1 MB held for a 9.0 MB plan."""
    uses = _uses(live, alias)
    by_id = {s.id: s for s in live}
    owned = _owned(live, alias, uses, kept)
    masked = {s.id for s in live if s.fn is np.where and s.method is None and s.item is None and not s.kwargs
              and len(s.args) == 3 and not isinstance(s.args[2], Ref) and np.ndim(s.args[2]) == 0
              and s.args[2] == 0 and uses.get(s.id) == 1 and s.id not in kept}
    dropped: set[int] = set()
    out = []
    for s in live:
        pair = _summands(s, alias)
        for acc, term in (pair, pair[::-1]) if pair else ():
            if acc in owned and uses.get(acc) == 1 and term in masked and term not in dropped \
                    and shapes.get(acc) == shapes.get(s.id) is not None:
                mask, v, _ = by_id[term].args
                box = _box(mask, len(shapes[s.id]))
                s = Statement(s.id, add_where, (Ref(acc), v, mask), {}) if box is None else \
                    Statement(s.id, add_box, (Ref(acc), v, box), {})
                dropped.add(term)
                owned.add(s.id)
                break
        out.append(s)
    return [s for s in out if s.id not in dropped]


def put_summed_rows(v: np.ndarray, n: int, rows: Any, tiles: int, repeats: int) -> np.ndarray:
    """``put_rows(v, n, rows_all, add=True)`` where ``rows_all`` is ``rows`` tiled ``tiles`` times
    or each of them repeated ``repeats`` times: ``v``'s copies summed first, then written once
    (a bias's gradient, a broadcast transposed: a reduction, not a scatter-add per element)."""
    lead, rest = v.shape[0], v.shape[1:]
    if tiles > 1:
        v = v.reshape((tiles, lead // tiles) + rest).sum(axis=0)
    if repeats > 1:
        v = v.reshape((lead // repeats, repeats) + rest).sum(axis=1)
    full = np.zeros((n,) + rest, dtype=v.dtype)
    full[rows] = v
    return full


def _fold_of(rows: np.ndarray, n: int) -> tuple[int, int, np.ndarray] | None:
    """``(tiles, repeats, base)`` with ``rows`` (mod ``n``) equal to ``base`` tiled or repeated and
    ``base`` free of repeats; None for any other pattern."""
    rows = rows % n
    k = np.unique(rows).size
    if rows.size % k:
        return None
    m = rows.size // k
    tiled, repeated = rows.reshape(m, k), rows.reshape(k, m)
    if (tiled == tiled[0]).all():
        return m, 1, tiled[0]
    if (repeated == repeated[:, :1]).all():
        return 1, m, repeated[:, 0]
    return None


def _scatter_adds_summed(live: list[Statement]) -> list[Statement]:
    """``put_rows(v, n, rows, add=True)`` with constant ``rows`` that repeat nothing, or repeat a
    base by tiling or repetition: a plain write, or :func:`put_summed_rows` (``np.add.at`` takes
    40 µs for the 32,768 entries of the MLP's bias gradient; the sum and write take 10); and any
    ``put_rows`` at consecutive rows: a slice."""
    put = S.put_rows.__wrapped__
    out = []
    for s in live:
        rows = s.args[2] if s.fn is put and len(s.args) == 3 and s.kwargs == {"add": True} else None
        if _index_vector(rows) and isinstance(s.args[1], (int, np.integer)):
            fold = _fold_of(rows, int(s.args[1]))
            if fold is not None and fold[:2] == (1, 1):
                s = Statement(s.id, put, (s.args[0], s.args[1], _as_range(fold[2])), {})
            elif fold is not None:
                s = Statement(s.id, put_summed_rows, (s.args[0], s.args[1], _as_range(fold[2]), *fold[:2]), {})
        elif s.fn is put and len(s.args) == 3 and not s.kwargs and _index_vector(s.args[2]):
            # consecutive rows as a slice: a copy, not a scatter (16,384 of 17,793 rows: 4 µs against 17)
            s = Statement(s.id, put, (*s.args[:2], _as_range(s.args[2])), {})
        out.append(s)
    return out


#: Inverses of at least this order used only in products become solves (below it getri's few
#: microseconds are not worth the extra moveaxis and reshape) — where those products have at most
#: n/2 columns in all: triangular solves run slower than a matrix product, so against many columns
#: getri and matmul win (one thread, LU shared, per call: n = 120, 1 column 92 µs by getrs against
#: 237 by getri and matmul, 60 columns 201 against 266, 240 columns 523 against 426; n = 40, the
#: two equal at 20 columns)
SOLVE_FOR_INVERSE_MIN = 16


def _inverse_product(s: Statement, inv_ids: dict[int, bool], alias: dict[int, int], n: int) -> tuple | None:
    """``(other operand, its contracted axis, transposed, negated, labels of the solve, result
    labels)`` where ``s`` is an einsum of an ``n × n`` inverse (``inv_ids``: id -> negated) with one
    value, which it contracts one of the inverse's axes against while the other lands in the output,
    or a sum of the inverse over one axis (a product with ones); None otherwise."""
    if s.fn is not np.einsum or s.kwargs.keys() - {"optimize"}:
        return None
    subs, ops = _einsum_parts(s.args)
    if "->" not in subs or "." in subs or len(ops) not in (1, 2):
        return None
    lhs, out = subs.split("->")
    terms = lhs.split(",")
    if len(ops) == 1:
        ops, terms = [*ops, np.ones(n)], [*terms, "".join(c for c in terms[0] if c not in out)]
    ids = [alias.get(o.id, o.id) if isinstance(o, Ref) else None for o in ops]
    k = [i for i in (0, 1) if ids[i] in inv_ids]
    if len(k) != 1 or len(terms[k[0]]) != 2:
        return None
    mine, theirs = terms[k[0]], terms[1 - k[0]]
    free = [c for c in mine if c in out and c not in theirs]
    summed = [c for c in mine if c not in out and theirs.count(c) == 1]
    if len(free) != 1 or len(summed) != 1 or free == summed or len(set(theirs)) != len(theirs):
        return None
    moved = free[0] + theirs.replace(summed[0], "")
    return ops[1 - k[0]], theirs.index(summed[0]), mine[0] == summed[0], inv_ids[ids[k[0]]], moved, out


def _pairwise(s: Statement, shapes: dict[int, tuple], next_id: int) -> list[Statement] | None:
    """An einsum of three or more operands with its pairwise path given, as one two-operand einsum
    per step of the path (what :func:`_along_path` prints), the last keeping ``s``'s id and the
    others numbered from ``next_id``; None for any other statement."""
    given = s.kwargs.get("optimize") if s.fn is np.einsum else None
    if not isinstance(given, list) or set(s.kwargs) != {"optimize"} or not all(len(p) == 2 for p in given[1:]):
        return None
    subs, ops = _einsum_parts(s.args)
    lhs, arrow, out = subs.partition("->")
    if len(ops) < 3 or not arrow or "." in subs:
        return None
    terms = lhs.split(",")
    sizes = _sizes(terms, [_shape_of(x, shapes) for x in ops])
    steps, last = [], len(given) - 2
    for k, (i, j, tj, ti, res) in enumerate(_path_steps(terms, out, given[1:])):
        xi, xj = ops.pop(i), ops.pop(j)
        sid = s.id if k == last else next_id + k
        shapes.setdefault(sid, tuple(sizes[c] for c in res))
        steps.append(Statement(sid, np.einsum, (f"{tj},{ti}->{res}", xj, xi), {}))
        ops.append(Ref(sid))
    return steps


def _inverses_as_solves(live: list[Statement], alias: dict[int, int], kept: set[int],
                        shapes: dict[int, tuple]) -> list[Statement]:
    """``einsum(…, ±inv(A), X)`` that contracts one axis of the inverse as a solve on A's shared
    LU (:func:`jacc.factorise.inverse_along`), where every use of the inverse is such a product
    (einsums of more operands split along their paths first): the partial of ``solve(A, b)`` by
    ``A`` is −A⁻¹ ⊗ x, and reverse mode only pulls adjoints through A⁻¹ (``u @ solve(A, u)``,
    n = 120: 277 µs a call with the inverse formed)."""
    found: dict[int, bool] = {}  # an inverse's id, or its negation's -> negated
    family: dict[int, int] = {}  # the same ids -> the inverse's id
    for s in live:
        if s.fn is np.linalg.inv and len(s.args) == 1 and not s.kwargs and isinstance(s.args[0], Ref) \
                and len(shapes.get(s.id, ())) == 2 and shapes[s.id][0] >= SOLVE_FOR_INVERSE_MIN:
            found[s.id], family[s.id] = False, s.id
        elif s.fn is np.negative and len(s.args) == 1 and not s.kwargs and isinstance(s.args[0], Ref):
            base = alias.get(s.args[0].id, s.args[0].id)
            if found.get(base) is False:
                found[s.id], family[s.id] = True, base
    if not found:
        return live
    next_id = max(max(shapes), max(s.id for s in live)) + 1
    split: list[Statement] = []
    for s in live:
        steps = _pairwise(s, shapes, next_id) if any(alias.get(r, r) in found for r in s.refs) else None
        split.extend(steps or [s])
        next_id += len(steps or ())
    uses: dict[int, list[Statement]] = {}
    for s in split:
        for ref in set(s.refs):
            uses.setdefault(alias.get(ref, ref), []).append(s)
    by_id = {s.id: s for s in split}
    drop: set[int] = set()
    rewrite: dict[int, tuple] = {}
    for root in [k for k, v in family.items() if k == v]:
        mine = {k for k, v in family.items() if v == root}
        products = [u for k in mine for u in uses.get(k, []) if u.id not in mine]
        if mine & kept or not products or len({u.id for u in products}) != len(products):
            continue
        n = shapes[root][0]
        forms = [_inverse_product(u, {k: found[k] for k in mine}, alias, n) for u in products]
        if all(forms) and sum(math.prod(_shape_of(f[0], shapes)) for f in forms) <= n * n // 2:
            drop |= mine
            rewrite.update((u.id, (by_id[root].args[0], form)) for u, form in zip(products, forms))
    if not rewrite:
        return live
    out: list[Statement] = []
    for s in split:
        if s.id in drop:
            continue
        if s.id not in rewrite:
            out.append(s)
            continue
        a, (other, axis, transposed, negated, moved, result) = rewrite[s.id]
        solved = Statement(s.id if moved == result else next_id, factorise.inverse_along,
                           (a, other, axis, transposed, negated), {})
        out.append(solved)
        if moved != result:
            rest = list(_shape_of(other, shapes))
            del rest[axis]
            shapes[next_id] = (shapes[a.id][0], *rest)
            if sorted(moved) == sorted(result):  # a view with the axes in the product's order
                out.append(Statement(s.id, None, (Ref(next_id), tuple(map(moved.index, result))), {},
                                     method="transpose"))
            else:
                out.append(Statement(s.id, np.einsum, (f"{moved}->{result}", Ref(next_id)), {}))
            next_id += 1
    return out


def _moves_as_transposes(live: list[Statement], shapes: dict[int, tuple]) -> list[Statement]:
    """``np.moveaxis(x, source, destination)`` with constant axes as ``x.transpose(order)``, the
    order found now: the same view, without NumPy's argument checks on every call (4 µs each; the
    program of ``np.linalg.solve`` on a 5×5 matrix made four such calls, a third of its 46 µs)."""
    out = []
    for s in live:
        src = s.args[0] if s.fn is np.moveaxis and len(s.args) == 3 and not s.kwargs else None
        ndim = len(shapes[src.id]) if isinstance(src, Ref) and src.id in shapes else None
        if ndim is not None and not lazy.refs_in(s.args[1:]):
            try:  # (axes told apart by their lengths, on a view of one number: no memory)
                probe = np.broadcast_to(np.empty(()), tuple(range(2, ndim + 2)))
                order = tuple(n - 2 for n in np.moveaxis(probe, s.args[1], s.args[2]).shape)
            except (TypeError, ValueError):  # (AxisError is a ValueError): left to fail as it would
                order = None
            if order is not None:
                s = Statement(s.id, None, (src, order), {}, method="transpose")
        out.append(s)
    return out


def put_rows_moved(v: np.ndarray, n: int, rows: Any, axes: tuple) -> np.ndarray:
    """``put_rows(v, n, rows).transpose(axes)`` laid out in the transposed order: a reshape of the
    result is then a view, where the transposed view's was a copy of the whole block.

    >>> v = np.arange(6.0).reshape(2, 3)
    >>> out = put_rows_moved(v, 4, np.array([3, 0]), (1, 0))
    >>> out.flags.c_contiguous, np.array_equal(out, S.put_rows(v, 4, np.array([3, 0])).T)
    (True, True)
    """
    shape = (n,) + v.shape[1:]
    out = np.zeros(tuple(shape[k] for k in axes), dtype=v.dtype)
    inverse = [0] * len(axes)
    for i, k in enumerate(axes):  # (np.argsort of a tuple took 3 µs a call)
        inverse[k] = i
    out.transpose(inverse)[rows] = v
    return out


def _put_rows_in_final_layout(live: list[Statement], alias: dict[int, int], kept: set[int]) -> list[Statement]:
    """Rewrite ``put_rows(v, n, rows).transpose(axes)``, the placed block read only by that
    transpose, as :func:`put_rows_moved`: a gather's dense Jacobian was placed row-wise, transposed
    and flattened, a copy of the whole block beside it (2× the plan's peak: 3.85 MB for 1.93 MB)."""
    put = S.put_rows.__wrapped__
    uses = _uses(live, alias)
    placed = {s.id: s for s in live if s.fn is put and s.method is None and s.item is None
              and not s.kwargs.get("add") and set(s.kwargs) <= {"add"} and len(s.args) == 3
              and not lazy.refs_in(s.args[1:]) and uses.get(s.id) == 1 and s.id not in kept}
    moved: dict[int, Statement] = {}
    for s in live:
        src = s.args[0] if s.args and isinstance(s.args[0], Ref) else None
        src = alias.get(src.id, src.id) if src is not None else None
        if src in placed and s.item is None and not s.kwargs and len(s.args) == 2 and not lazy.refs_in(s.args[1:]) \
                and (s.method == "transpose" or s.fn is np.transpose) and s.args[1] is not None:
            v, n, rows = placed[src].args
            moved[s.id] = Statement(s.id, put_rows_moved, (v, n, rows, tuple(s.args[1])), {})
    gone = {alias.get(s.args[0].id, s.args[0].id) for s in live if s.id in moved}
    return [moved.get(s.id, s) for s in live if s.id not in gone]


def _index_vector(rows: Any) -> bool:
    """Whether ``rows`` is a constant, non-empty 1-d array of integer indices."""
    return isinstance(rows, np.ndarray) and rows.ndim == 1 and rows.size > 0 and rows.dtype.kind in "iu"


def _as_range(rows: Any) -> Any:
    """A constant index array that counts up by one as the slice it selects (no gather)."""
    if _index_vector(rows) and rows[0] >= 0 and np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
        return slice(int(rows[0]), int(rows[0]) + rows.size)
    return rows


def _uses(live: list[Statement], alias: dict[int, int]) -> dict[int, int]:
    """How many times each value (aliases counted as what they rename) is read."""
    uses: dict[int, int] = {}
    for s in live:
        for ref in s.refs:
            ref = alias.get(ref, ref)
            uses[ref] = uses.get(ref, 0) + 1
    return uses


def add_placed(acc: np.ndarray, v: np.ndarray, at: tuple, src: np.ndarray | None,
               lattice: tuple | None = None) -> np.ndarray:
    """``acc`` plus ``v``'s elements (``src``: which, in flat order; ``None``: all) at the
    positions ``at`` (an index of ``acc``'s axes, each position once), written into ``acc``.
    ``lattice`` (see :func:`_lattice`): the same positions as a strided view of a C-ordered
    ``acc``, added through by one ufunc call, where NumPy's indexing by arrays gathers and
    scatters element by element (attention's 65,536 entries on a block diagonal: 1.1 ms → 0.09 ms)."""
    if lattice is not None and acc.flags.c_contiguous:
        offset, shape, steps = lattice
        n = acc.itemsize
        view = np.ndarray(shape, acc.dtype, acc, offset * n, tuple(k * n for k in steps))
        view += np.reshape(v, shape)
        return acc
    flat = np.reshape(v, (-1,))
    acc[at] += flat if src is None else flat[src]
    return acc


#: Calls that place a value into fresh zeros, and moves that only rearrange it (:func:`_moves`): a
#: chain of them puts each element of its source somewhere in its result (see :func:`_placement`).
_PLACING = frozenset({S.put_rows.__wrapped__, S.put_last.__wrapped__, S.put_diagonal.__wrapped__})
_MOVES = frozenset({np.transpose, np.reshape, np.moveaxis, np.swapaxes})


def _moves(s: Statement) -> bool:
    """Whether ``s`` rearranges a value's axes or shape (a view: it writes no entries)."""
    return s.method in ("reshape", "transpose") or s.method is None and s.item is None and s.fn in _MOVES


def _placing_step(s: Statement) -> bool:
    """A placing call or a move whose only computed argument is the value it places or moves."""
    if s.item is not None or not s.args or not isinstance(s.args[0], Ref) or lazy.refs_in((s.args[1:], s.kwargs)):
        return False
    return _moves(s) or s.method is None and s.fn in _PLACING and not s.kwargs.get("add")


def _chain_to(sid: int, by_id: dict, alias: dict, uses: dict, kept: set) -> list[Statement]:
    """The placing steps (:func:`_placing_step`) that end in value ``sid``, first to last, each
    read once and kept by no result (empty where ``sid`` is no such step)."""
    chain: list[Statement] = []
    while sid in by_id and uses.get(sid) == 1 and sid not in kept and _placing_step(by_id[sid]):
        chain.append(by_id[sid])
        sid = alias.get(chain[-1].args[0].id, chain[-1].args[0].id)
    return chain[::-1]


def _lattice(pos: np.ndarray, src: np.ndarray, shape: tuple) -> tuple | None:
    """``(offset, shape, steps)`` where every element of a source of ``shape`` lands once (element
    ``src[k]`` of it, in flat order, at the flat position ``pos[k]``) and its positions are
    ``offset + Σ iₖ·stepsₖ`` over its multi-index (steps ≥ 0, in elements): a strided view; else None."""
    n = math.prod(shape)
    if pos.size != n or not n or not np.array_equal(np.sort(src), np.arange(n)):
        return None
    q = np.empty(n, np.intp)
    q[src] = pos
    q = q.reshape(shape)
    start = int(q.flat[0])
    steps = tuple(int(q[tuple(int(i == k) for i in range(len(shape)))]) - start if m > 1 else 0
                  for k, m in enumerate(shape))
    if min(steps, default=0) < 0:
        return None
    want = start + sum(np.arange(m).reshape([-1 if i == k else 1 for i in range(len(shape))]) * d
                       for k, (m, d) in enumerate(zip(shape, steps)))
    return (start, tuple(shape), steps) if np.array_equal(q, np.broadcast_to(want, shape)) else None


def _placement(chain: list[Statement], shape: tuple) -> tuple[tuple, np.ndarray | None, tuple | None] | None:
    """``(at, src, lattice)`` for :func:`add_placed`: where the chain puts each element of a source
    of ``shape``, found by running it on the elements' numbers (1, 2, …; 0 is where nothing lands),
    and the same as a strided view where indexing would take arrays (:func:`_lattice`); None
    where nothing lands."""
    x = np.arange(1, math.prod(shape) + 1).reshape(shape)
    for s in chain:
        rest = s.args[1:]
        if s.fn is S.put_diagonal.__wrapped__:  # (its dtype argument: the numbers stay exact integers)
            rest = (rest[0], np.intp, *rest[2:])
        x = getattr(x, s.method)(*rest, **s.kwargs) if s.method else s.fn(x, *rest, **s.kwargs)
    if not x.ndim:  # (a 0-d result: nothing to index by position; left as it is)
        return None
    flat = np.reshape(x, (-1,))
    pos = np.flatnonzero(flat)
    if not pos.size:
        return None
    src = flat[pos] - 1
    at = [np.asarray(i) for i in np.unravel_index(pos, x.shape)]
    varying = [k for k, i in enumerate(at) if i.size and (i != i[0]).any()]
    index: list = [int(i[0]) if k not in varying else i for k, i in enumerate(at)]
    if len(varying) <= 1:  # one axis varies (or none): a slice where it counts up by one
        k = varying[0] if varying else len(index) - 1
        index[k] = _as_range(at[k]) if varying else slice(index[k], index[k] + 1)
    arrays = any(isinstance(i, np.ndarray) for i in index)
    return (tuple(index), None if np.array_equal(src, np.arange(src.size)) else src,
            _lattice(pos, src, tuple(shape)) if arrays else None)


#: a chain's source must be this many times smaller than the block it is placed in: a scattered
#: write costs several times a contiguous one (a source placed whole in one slice is always added
#: in place: the MLP's 16,384 weights of its 17,793-entry gradient, 30 µs a call as zeros, a
#: scatter and a full-size sum)
PLACED_SPARSITY = 8


def _contiguous(at: tuple, src: np.ndarray | None) -> bool:
    """Whether :func:`add_placed` with ``(at, src)`` adds its source, in order, to one slice of
    the accumulator's first varying axis (integers on every other axis)."""
    return src is None and sum(isinstance(i, slice) for i in at) == 1 and all(
        isinstance(i, (int, slice)) for i in at)


def _rows_added_in_place(live: list[Statement], alias: dict[int, int], kept: set[int],
                         shapes: dict[int, tuple]) -> list[Statement]:
    """Rewrite ``acc + placed``, where both operands are used once and ``acc`` is an array the
    program made itself (zero-filled or a sum so far), and ``placed`` is a value ``v`` placed into
    zeros — one ``put_rows`` (:func:`add_rows`), or a chain of placing calls and moves
    (:func:`add_placed`) from a ``v`` at least :data:`PLACED_SPARSITY` times smaller: no zeros and
    no full-size addition per block. A gradient assembled from parameter slices (the MLP's 17,793
    entries from six blocks) was six zero arrays and six additions of that size; the Jacobian of
    ``np.stack`` over 100 slice sums of 1,000 numbers was a 100 × 1,000 block per row."""
    put = S.put_rows.__wrapped__
    uses = _uses(live, alias)
    by_id = {s.id: s for s in live}
    plain = {s.id for s in live if s.fn is put and not s.kwargs.get("add") and len(s.args) == 3}
    fresh = set(plain) | _owned(live, alias, uses, kept)  # values the program may overwrite
    dropped: set[int] = set()
    out = []
    for s in live:
        pair = _summands(s, alias)
        for acc, rows in (pair, pair[::-1]) if pair else ():
            # (used once each: so they are two values, and neither was rewritten away before)
            if acc not in fresh or uses.get(acc) != 1 or acc in kept or rows in dropped \
                    or not shapes.get(acc) == shapes.get(rows) == shapes.get(s.id):
                continue
            chain = _chain_to(rows, by_id, alias, uses, kept)
            if rows in plain and len(chain) == 1:
                v, _, idx = by_id[rows].args
                out.append(Statement(s.id, add_rows, (Ref(acc), v, _as_range(idx)), {}))
            elif chain and any(c.fn in _PLACING for c in chain):
                v = chain[0].args[0]
                shape = shapes.get(alias.get(v.id, v.id))
                dense = shape is not None and math.prod(shape) * PLACED_SPARSITY > math.prod(shapes[s.id])
                placed = None if shape is None else _placement(chain, shape)
                if placed is None:  # (nothing lands: an empty source; left as it is)
                    continue
                at, src, lattice = placed
                if dense and not _contiguous(at, src) and lattice is None:  # (a scattered write of
                    continue  # most of the block costs more than zeros and a sum)
                out.append(Statement(s.id, add_placed, (Ref(acc), v, at, src, lattice), {}))
            else:
                continue
            dropped.update(c.id for c in chain)
            fresh.add(s.id)
            break
        else:
            out.append(s)
    return [s for s in out if s.id not in dropped]


def _owned(live: list[Statement], alias: dict[int, int], uses: dict[int, int], kept: set[int]) -> set[int]:
    """Values the program made itself (see :func:`_fresh`) that no result keeps, and reshapes,
    transposes and other moves (:func:`_moves`) of such a value read only there: the program may
    write into them where they are read once. A long scan's Jacobian gathers its terms into a
    dense accumulator level after level (``np.cumsum`` over 1,000: 80 terms); as the reshaped
    result of the previous sum, that accumulator was not taken as the program's own, and every term
    became a zero-filled 10⁶-entry array and a full-size sum (0.1 s per call, against 1 ms)."""
    owned = {s.id for s in live if _fresh(s)} - kept
    for s in live:
        src = s.args[0] if s.args and isinstance(s.args[0], Ref) else None
        if src is not None and _moves(s) and s.id not in kept:
            src = alias.get(src.id, src.id)
            if src in owned and uses.get(src) == 1:
                owned.add(s.id)
    return owned


def _shape_of(x: Any, shapes: dict[int, tuple]) -> tuple:
    return shapes[x.id] if isinstance(x, Ref) else np.shape(x)


def _numpy_einsum(w: _Writer, subs: str, ops: list, shapes: dict[int, tuple], given=None) -> str:
    """np.einsum with its contraction fixed now: the plan's own order for a product of factors
    (``given``), else plain c-einsum for elementwise and small work, and BLAS where indices are
    summed over large operands — one ``matmul`` per pair (``_matmul_pair``), which skips the
    path bookkeeping ``np.einsum(..., optimize=path)`` repeats on every call."""
    lhs, arrow, rhs = subs.partition("->")
    terms = lhs.split(",")
    op_shapes = [_shape_of(x, shapes) for x in ops]
    out = rhs if arrow else _implicit_output(terms)
    texts = [w.text(o) for o in ops]
    if isinstance(given, list) and len(ops) > 2:
        if "..." not in subs and all(len(p) == 2 for p in given[1:]):
            return _along_path(w, terms, texts, op_shapes, out, given[1:])
        return f"{w.const(np.einsum, 'einsum')}({w.text(subs)}, {', '.join(texts)}, optimize={w.const(given, 'path')})"
    return _contraction(w, terms, texts, op_shapes, out if arrow else None, subs)


def _implicit_output(terms: list[str]) -> str:
    """NumPy's output labels for subscripts without ``->``: those that occur once, sorted."""
    joined = "".join(terms)
    return "".join(sorted(c for c in set(joined) if joined.count(c) == 1))


def _sizes(terms: list[str], op_shapes: list[tuple]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for t, sh in zip(terms, op_shapes):
        for c, n in zip(t, sh):
            sizes[c] = max(sizes.get(c, 1), n)
    return sizes


def _elementwise(terms: list[str], result: str, subs: str) -> bool:
    """Whether ``einsum(subs)`` of two operands is an elementwise product, or a scalar times an
    array: ``np.multiply`` computes it."""
    return len(terms) == 2 and all(t in ("", result) for t in terms) and "..." not in subs


def _contraction(w: _Writer, terms: list[str], texts: list[str], op_shapes: list[tuple], out: str | None,
                 subs: str | None = None) -> str:
    """Source for one einsum over ``terms`` → ``out`` (None: NumPy's implicit output)."""
    subs = subs or ",".join(terms) + ("" if out is None else "->" + out)
    fn = w.const(np.einsum, "einsum")
    sizes = _sizes(terms, op_shapes)
    joined = "".join(terms)
    result = out if out is not None else _implicit_output(terms)
    summed = set(joined) - set(result)
    work = math.prod(sizes.values()) if sizes else 1
    if _elementwise(terms, result, subs):  # NumPy's multiply loop is about twice einsum's speed
        return f"{w.const(np.multiply, 'mul')}({texts[0]}, {texts[1]})"
    plain = len(terms) < 2 or not summed or work < 1 << 14 or "..." in subs
    if not plain and len(terms) == 2:
        pair = _matmul_pair(terms[0], terms[1], result, sizes)
        if pair is not None:
            return f"{w.const(pair, 'mm')}({texts[0]}, {texts[1]})"
        plain = all(sizes[c] == 1 for c in summed)  # an outer product in disguise: one c-einsum pass
    if plain:
        return f"{fn}({w.text(subs)}, {', '.join(texts)})"
    dummies = [np.empty(sh) for sh in op_shapes]
    path = np.einsum_path(subs, *dummies, optimize="greedy")[0]
    return f"{fn}({w.text(subs)}, {', '.join(texts)}, optimize={w.const(path, 'path')})"


def _along_path(w: _Writer, terms: list[str], texts: list[str], op_shapes: list[tuple], out: str,
                path: list[tuple]) -> str:
    """Nested pairwise contractions in the order of ``path`` (NumPy's convention: each step takes
    two operands out of the list and appends their result)."""
    texts, op_shapes = list(texts), list(op_shapes)
    sizes = _sizes(terms, op_shapes)
    for i, j, tj, ti, res in _path_steps(terms, out, path):
        xi, xj = texts.pop(i), texts.pop(j)
        si, sj = op_shapes.pop(i), op_shapes.pop(j)
        texts.append(_contraction(w, [tj, ti], [xj, xi], [sj, si], res))
        op_shapes.append(tuple(sizes[c] for c in res))
    return texts[0]


def _path_steps(terms: list[str], out: str, path: list[tuple]):
    """Per step of a pairwise einsum ``path``: the positions ``i > j`` it takes out of the operand
    list, their labels ``tj`` and ``ti``, and the labels of the result it appends."""
    terms = list(terms)
    for k, pair in enumerate(path):
        i, j = sorted(pair, reverse=True)
        ti, tj = terms.pop(i), terms.pop(j)
        keep = "".join(terms) + out
        res = out if k == len(path) - 1 else "".join(dict.fromkeys(c for c in tj + ti if c in keep))
        terms.append(res)
        yield i, j, tj, ti, res


class _PairLayout:
    """``einsum(f"{ta},{tb}->{out}", a, b)`` as one matrix product: the operands transposed
    (``pa``, ``pb``) and reshaped to ``(batch,) l × k`` and ``(batch,) k × r`` (``ra``, ``rb``),
    the product reshaped to ``shape`` and transposed by ``po``."""

    def __init__(self, ta: str, tb: str, out: str, sizes: dict[str, int], batch, left, right, summed):
        self.pa = tuple(ta.index(c) for c in batch + left + summed)
        self.pb = tuple(tb.index(c) for c in batch + summed + right)
        mid = batch + left + right
        self.po = tuple(mid.index(c) for c in out)
        n = {k: math.prod(sizes[c] for c in g) for k, g in (("b", batch), ("l", left), ("k", summed), ("r", right))}
        self.ra = ((n["b"],) if batch else ()) + (n["l"], n["k"])
        self.rb = ((n["b"],) if batch else ()) + (n["k"], n["r"])
        self.shape = tuple(sizes[c] for c in mid)
        self.same_a, self.same_b = self.pa == tuple(range(len(ta))), self.pb == tuple(range(len(tb)))
        self.same_o = self.po == tuple(range(len(out)))

    @staticmethod
    def labels(ta: str, tb: str, out: str) -> tuple | None:
        """(batch, left, right, summed) labels, or None where one product cannot do it (a label
        repeated in one operand, or summed over one operand alone)."""
        if len(set(ta)) < len(ta) or len(set(tb)) < len(tb) or len(set(out)) < len(out):
            return None
        if any(c not in out and c not in tb for c in ta) or any(c not in out and c not in ta for c in tb):
            return None
        if any(c not in ta and c not in tb for c in out):
            return None
        return ([c for c in out if c in ta and c in tb], [c for c in out if c in ta and c not in tb],
                [c for c in out if c in tb and c not in ta], [c for c in ta if c in tb and c not in out])

    @staticmethod
    def transposed(out: str, batch, left, right) -> bool:
        """Whether the product is wanted as ``r × l``: (AB)ᵀ, computable as BᵀAᵀ."""
        return bool(not batch and left and right and list(out) == right + left)


def _matmul_pair(ta: str, tb: str, out: str, sizes: dict[str, int]) -> Callable | None:
    """``einsum(f"{ta},{tb}->{out}", a, b)`` as transposes, reshapes and one ``np.matmul``, or None
    where that does not apply (see :meth:`_PairLayout.labels`)."""
    found = _PairLayout.labels(ta, tb, out)
    if found is None:
        return None
    batch, left, right, _ = found
    L = _PairLayout(ta, tb, out, sizes, *found)
    pa, pb, po, ra, rb, shape = L.pa, L.pb, L.po, L.ra, L.rb, L.shape
    same_a, same_b, same_o = L.same_a, L.same_b, L.same_o
    matmul = np.matmul
    # (AB)ᵀ = BᵀAᵀ: where the result is wanted transposed, BLAS reads transposed views instead and
    # the result comes out in place (no copy)
    flip = _PairLayout.transposed(out, batch, left, right)
    if flip:
        shape = tuple(sizes[c] for c in out)

    def contract(a, b):
        a = (a if same_a else a.transpose(pa)).reshape(ra)
        b = (b if same_b else b.transpose(pb)).reshape(rb)
        if flip:
            return matmul(b.T, a.T).reshape(shape)
        c = matmul(a, b).reshape(shape)
        return c if same_o else c.transpose(po)
    return contract


def _xla_pair(ta: str, tb: str, out: str, sizes: dict[str, int], jnp, barrier: Callable) -> Callable | None:
    """``_matmul_pair`` for XLA on the CPU, whose fast GEMM (YNNPACK) takes a row-major ``l × k``
    left operand: a transposed operand is materialised behind an optimisation barrier (else XLA
    folds the transpose back into the product's dimensions and may run its slower general dot),
    and where the result is wanted as ``r × l`` the operands swap instead. On the
    least-squares gradient AᵀR (240×120 by 240×120) this takes 144 µs against 199 µs for
    ``jnp.einsum`` and 159 µs for ``jax.jacrev`` itself."""
    found = _PairLayout.labels(ta, tb, out)
    if found is None:
        return None
    batch, left, right, summed = found
    swap = _PairLayout.transposed(out, batch, left, right)
    if swap:
        ta, tb, left, right = tb, ta, right, left
    L = _PairLayout(ta, tb, out, sizes, batch, left, right, summed)
    pa, pb, po, ra, rb, shape = L.pa, L.pb, L.po, L.ra, L.rb, L.shape
    same_a, same_b, same_o = L.same_a, L.same_b, L.same_o
    matmul = jnp.matmul

    def contract(a, b):
        if swap:
            a, b = b, a
        a = (a if same_a else barrier(a.transpose(pa))).reshape(ra)
        b = (b if same_b else barrier(b.transpose(pb))).reshape(rb)
        c = matmul(a, b).reshape(shape)
        return c if same_o else c.transpose(po)
    return contract


def _backend_pair(be: Any, subs: str, ops: list, shapes: dict[int, tuple]) -> Callable | None:
    """A two-operand einsum summing over large operands as the backend's own matrix product
    (``be.pair``, e.g. :func:`_xla_pair`), where it has one; None: the backend's einsum."""
    pair = getattr(be, "pair", None)
    lhs, arrow, out = subs.partition("->")
    terms = lhs.split(",")
    if pair is None or not arrow or len(terms) != 2 or "..." in subs:
        return None
    sizes = _sizes(terms, [_shape_of(x, shapes) for x in ops])
    if not set("".join(terms)) - set(out) or math.prod(sizes.values()) < 1 << 14:
        return None
    return pair(terms[0], terms[1], out, sizes)


def _writes_floats(ufunc: np.ufunc) -> bool:
    """An elementwise ufunc (not a generalised one such as ``matmul``) with one result and a loop
    from float64 operands to a float64 result (comparisons, predicates and integer ufuncs have
    none)."""
    return ufunc.signature is None and ufunc.nout == 1 and "d" * ufunc.nin + "->d" in ufunc.types


def into(ufunc: np.ufunc, k: int) -> Callable:
    """``ufunc(*args)`` written into ``args[k]`` — a program's own temporary, read nowhere else —
    when no operand or result needs a cast (``casting="no"``: the result has that array's dtype);
    otherwise a new array, as ``ufunc`` alone would give, and from then on without trying (one
    function per statement: its operands' dtypes stay those of its program, and a refused try costs
    2 µs). Shapes are the lowering's business: it rewrites only calls whose result has that
    operand's shape.

    >>> acc = np.ones(3)
    >>> into(np.multiply, 1)(2.0, acc) is acc, acc
    (True, array([2., 2., 2.]))
    >>> into(np.add, 0)(np.ones(2), np.ones(2) * 1j)  # a wider result: a new array
    array([1.+1.j, 1.+1.j])
    """
    fits = [True]

    def call(*args):
        if fits[0]:
            try:
                return ufunc(*args, out=args[k], casting="no")
            except TypeError:  # (numpy's UFuncTypeError: a cast was needed)
                fits[0] = False
        return ufunc(*args)
    call.__name__ = f"{ufunc.__name__}_into"
    call.ufunc, call.into = ufunc, k  # (tests and readers of a program find what it computes)
    return call


IN_PLACE_MIN = 1 << 12  # elements: below this a new array is cheaper than the check


def _fresh(s: Statement) -> bool:
    """Whether ``s`` makes a new array that nothing else shares (so that the program may write
    into it once it is used nowhere else): a ufunc's result, a product of two or more operands,
    a scatter, or a ufunc already written into one of those."""
    if s.method is not None or s.item is not None:
        return False
    if isinstance(s.fn, np.ufunc):
        return "out" not in s.kwargs
    if s.fn is np.einsum:
        return len(_einsum_parts(s.args)[1]) >= 2
    if s.fn is np.where:
        return len(s.args) == 3
    return s.fn in (S.put_rows.__wrapped__, S.put_last.__wrapped__, S.put_diagonal.__wrapped__, add_rows,
                    add_placed, put_rows_moved, add_where, add_box) or hasattr(s.fn, "ufunc")


def _ufuncs_in_place(live: list[Statement], alias: dict[int, int], kept: set[int], inputs: set[int],
                     shapes: dict[int, tuple]) -> list[Statement]:
    """Rewrite an elementwise call on large arrays, ``x * y``, ``np.tanh(x)``, ``x + y``, where
    an operand is a fresh temporary (see :func:`_fresh`) of the result's shape read only there,
    as :func:`into`: the result reuses its memory. The dense Jacobian of the suite's attention
    (1,024 × 1,024) was three 8 MiB arrays at each sum of two terms; an MLP's layer made a new
    array at every bias, activation and derivative."""
    uses = _uses(live, alias)
    # (with the moves of such temporaries: the two terms of X Xᵀ's Jacobian are transposed before their sum)
    fresh = _owned(live, alias, uses, kept) - inputs
    out = []
    for s in live:
        shape = shapes.get(s.id)
        call = _ufunc_call(s) if shape is not None and math.prod(shape) >= IN_PLACE_MIN else None
        if call is not None and _writes_floats(call[0]):
            fn, args = call
            refs = [alias.get(a.id, a.id) if isinstance(a, Ref) else None for a in args]
            for k, acc in enumerate(refs):
                if acc in fresh and uses.get(acc) == 1 and shapes.get(acc) == shape:
                    args = tuple(Ref(acc) if n == k else a for n, a in enumerate(args))
                    s = Statement(s.id, into(fn, k), args, {})
                    fresh.add(s.id)
                    break
        out.append(s)
    return out


def _ufunc_call(s: Statement) -> tuple[np.ufunc, tuple] | None:
    """``(ufunc, operands)`` where ``s`` is one plain ufunc call — an elementwise product written
    as an einsum counts as ``np.multiply``, which is how :func:`_contraction` prints it — else None."""
    if s.method is not None or s.item is not None:
        return None
    if isinstance(s.fn, np.ufunc):
        return None if s.kwargs else (s.fn, s.args)
    if s.fn is np.einsum:
        subs, ops = _einsum_parts(s.args)
        lhs, arrow, rhs = subs.partition("->")
        if arrow and _elementwise(lhs.split(","), rhs, subs):
            return np.multiply, tuple(ops)
    return None


def _sums_early(live: list[Statement], alias: dict[int, int], shapes: dict[int, tuple]) -> list[Statement]:
    """Each sum of two computed values moved up to just after the later of them (no wider than
    either), and each view of a value (a transpose, a reshape) to just after it: a Jacobian summed
    from many terms then holds the sum so far and one term, not every term until the end (a scan's
    terms under Markowitz held 6–12× the plan's peak). Statements are values, never changed in
    place before the passes that decide that, so order is free."""
    key: dict[int, tuple[int, int]] = {}  # statement -> (the unmoved statement it follows, then the order)
    moved = 0
    for i, s in enumerate(live):
        key[s.id] = (i, 0)
        if _moves(s) and isinstance(s.args[0], Ref):  # a view (the transpose a term is added as) goes too
            ops = [alias.get(s.args[0].id, s.args[0].id)]
        else:
            ops = _summands(s, alias)
        if not ops or any(o not in key for o in ops) or math.prod(shapes.get(s.id, ())) > max(
                math.prod(shapes.get(o, ())) for o in ops):
            continue
        moved += 1
        key[s.id] = (max(key[o] for o in ops)[0], moved)  # (after its operands, moved ones included)
    return sorted(live, key=lambda s: key[s.id]) if moved else live


def emit(r: Recorded, backend: str = "numpy", host_tail: bool = True, solves: bool = True) -> Program:
    """Print the recorded statements as source for ``backend`` and compile them (with
    ``host_tail=False``, a JAX program assembles its dense blocks itself: see :func:`_host_tail`;
    with ``solves=False``, products with an inverse stay products: see :func:`_inverses_as_solves`)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    be = _backend(backend)  # None: NumPy, called directly
    w = _Writer()
    shapes = r.shapes
    lines = ["def program(V):"]
    position = {sid: k for k, sid in enumerate(r.inputs)}
    if r.one_hot:  # (before _live: a mask read by products alone is then not computed)
        r = dataclasses.replace(r, statements=one_hot_products(r.statements, r.one_hot,
                                                               _aliases(r.statements, shapes), _einsum_parts))
    live = _live(r)
    alias = w.alias = _aliases(live, shapes)
    live = _sums_early([s for s in live if s.id not in alias], alias, shapes)
    solved = False  # (products with an inverse written as solves)
    results = [Ref(alias.get(x.id, x.id)) if isinstance(x, Ref) else x for x in r.results]
    kept = {x.id for x in results if isinstance(x, Ref)}
    if be is None:
        rewritten = _inverses_as_solves(live, alias, kept, shapes) if solves else live
        solved, live = rewritten is not live, _moves_as_transposes(rewritten, shapes)
        live = _scatter_adds_summed(live)
        live = _rows_added_in_place(live, alias, kept, shapes)
        live = _put_rows_in_final_layout(live, alias, kept)
        live = _masked_terms_added_in_place(live, alias, kept, shapes)
        live = _ufuncs_in_place(live, alias, kept, {alias.get(i, i) for i in r.inputs}, shapes)
    tail = (_host_tail(live, alias, kept) if host_tail and getattr(be, "host_assembly", False)
            and r.structures is None else {})
    if tail:
        live = [s for s in live if s.id not in tail]
        kept |= {alias.get(ref, ref) for s in tail.values() for ref in s.refs}
    last: dict[int, int] = {}  # value id -> the statement that reads it last
    for i, s in enumerate(live):
        for ref in s.refs:
            last[alias.get(ref, ref)] = i
    dying: dict[int, list[int]] = {}
    for ref, i in last.items():
        if ref not in kept:
            dying.setdefault(i, []).append(ref)
    for i, s in enumerate(live):
        if s.id in position:
            # a 0-d input becomes a NumPy scalar: arithmetic on those is ~10× cheaper than on 0-d arrays
            rhs = f"V[{position[s.id]}]" + ("[()]" if be is None and shapes.get(s.id) == () else "")
        elif be is None and s.fn in _OPERATORS and _all_scalar(s.args, shapes):
            rhs = _OPERATORS[s.fn].format(*[w.text(x) for x in s.args])
        elif s.item is not None:
            rhs = f"{w.text(s.args[0])}[{s.item}]"
        elif s.method == "__getitem__":
            rhs = (f"{w.text(s.args[0])}[{w.text(s.args[1])}]" if be is None
                   else f"{w.const(be.getitem, 'getitem')}({w.text(s.args[0])}, {w.text(s.args[1])})")
        elif s.method is not None:
            rhs = (w.call(f"{w.text(s.args[0])}.{s.method}", s.args[1:], s.kwargs) if be is None
                   else w.call(w.const(be.method(s.method), "m"), s.args, s.kwargs))
        elif s.fn is np.einsum:
            subs, ops = _einsum_parts(s.args)
            pair = None if be is None else _backend_pair(be, subs, ops, shapes)
            if be is None:
                rhs = _numpy_einsum(w, subs, ops, shapes, s.kwargs.get("optimize"))
            elif pair is not None:
                rhs = f"{w.const(pair, 'mm')}({w.text(ops[0])}, {w.text(ops[1])})"
            else:
                rhs = f"{w.const(be.einsum, 'einsum')}({w.text(subs)}, {', '.join(w.text(o) for o in ops)})"
        else:  # solve/inv/slogdet/det: one LU per matrix and call, shared with the trace (jacc.factorise)
            fn = factorise.REPLACES.get(s.fn, s.fn) if be is None else be.function(s.fn)
            if be is None and not s.kwargs:  # (tanh, exp, … of large arrays: glibc's vector kernels)
                fn = vecmath.faster(fn, math.prod(shapes.get(s.id, ())))
            rhs = w.call(w.const(fn, "f"), s.args, s.kwargs)
        lines.append(f"    a{s.id} = {rhs}")
        if i in dying:  # free intermediates as soon as they are used up, as the executor does
            lines.append(f"    del {', '.join(f'a{ref}' for ref in sorted(dying[i]))}")
    outs: list[str] = []
    seen: set = set()
    copy = w.const(np.array if be is None else be.copy, "copy")
    finish: list = []  # per result: its place in ``outs``, or how the host assembles it

    def slot(a: Any) -> Any:
        if isinstance(a, Ref):
            outs.append(w.text(a))
            return _Slot(len(outs) - 1)
        return a

    for x in results:
        if isinstance(x, Ref) and x.id in tail:
            if x.id in seen:  # a repeated block: the caller owns a fresh copy
                finish.append(("copy", next(i for i, y in enumerate(results) if isinstance(y, Ref) and y.id == x.id)))
                continue
            seen.add(x.id)
            t = tail[x.id]
            finish.append((t.fn, tuple(map(slot, t.args)), {k: slot(v) for k, v in t.kwargs.items()}))
            lines.append(f"    # then, on the host: a{t.id} = {t.fn.__name__}(...)")
            continue
        finish.append(len(outs))
        if isinstance(x, Ref) and x.id not in seen and x.id not in position:
            seen.add(x.id)
            outs.append(w.text(x))
        else:  # a constant block, a repeated one or an input: the caller owns a fresh copy
            outs.append(f"{copy}({w.text(x)})")
    lines.append(f"    return ({''.join(o + ', ' for o in outs)})")
    source = "\n".join(lines) + "\n"
    ns = dict(w.env) if be is None else be.constants(w.env)
    exec(compile(source, f"<jacc program {backend}>", "exec"), ns)
    fn = ns["program"] if be is None else be.wrap(ns["program"])
    if tail:
        fn = _assembled_on_host(fn, finish)
    device = getattr(fn, "device", None) if r.structures is None else None
    written = sum(math.prod(shapes.get(s.id, ())) for s in live if not (_moves(s) or s.fn is np.broadcast_to))
    return Program(backend, source, fn, r.vertices, r.consts, r.outputs, r.mults, len(live), r.baked,
                   r.structures, r.primal, written, r.pinned, device=device, solves=solved)


# The algebra's array writes: dense zeros with a block written in. Under JAX the program returns
# the block and NumPy writes it (np.asarray of a jitted result is read-only, so a dense result made
# by XLA would be copied once more for the caller: RoeFlux's two 72 MB blocks, 6.6 ms per call).
_ASSEMBLY = ("put_diagonal", "put_rows", "put_last")


@dataclass(frozen=True)
class _Slot:
    """Position ``k`` in a jitted program's returned tuple (see :func:`_assembled_on_host`)."""

    k: int


def _host_tail(live: list[Statement], alias: dict, kept: set) -> dict[int, Statement]:
    """The statements that write a result block into dense zeros (:data:`_ASSEMBLY`) and whose
    value nothing else reads, by id: they can run after the jitted call, in NumPy."""
    read = {alias.get(ref, ref) for s in live for ref in s.refs}
    tail = {}
    for s in live:
        if (s.id in kept and s.id not in read and s.method is None and s.item is None
                and getattr(s.fn, "__module__", "") == S.__name__ and getattr(s.fn, "__name__", "") in _ASSEMBLY):
            top = {a.id for a in (*s.args, *s.kwargs.values()) if isinstance(a, Ref)}
            if set(s.refs) == top:  # every value a plain argument
                tail[s.id] = s
    return tail


def _assembled_on_host(fn: Callable, finish: list) -> Callable:
    """``fn`` (a wrapped jitted program returning NumPy arrays) followed by the host's part of
    ``finish``: per result, an index into ``fn``'s tuple, ``(helper, args, kwargs)`` with
    :class:`_Slot` arguments, or ``("copy", j)`` for a copy of result ``j``."""
    def assemble(got: tuple) -> tuple:
        out: list = []
        for f in finish:
            if type(f) is int:
                out.append(got[f])
            elif f[0] == "copy":
                out.append(np.array(out[f[1]]))
            else:
                helper, args, kwargs = f
                out.append(helper(*[got[a.k] if type(a) is _Slot else a for a in args],
                                  **{k: got[v.k] if type(v) is _Slot else v for k, v in kwargs.items()}))
        return tuple(out)

    def run(V):
        return assemble(fn(V))
    begin = getattr(fn, "start", None)
    if begin is not None:
        def start(V):
            pending = begin(V)
            return lambda: assemble(pending())
        run.start = start
    return run


def _backend(backend: str) -> Any:
    """What a backend's program calls instead of NumPy: ``None`` for NumPy itself, else an object
    with ``einsum``, ``function(fn)``, ``method(name)``, ``getitem``, ``copy``, ``constants(env)``
    and ``wrap(program)`` (:class:`_Jax`, :mod:`jacc.torch_backend`). A missing library is one
    clear :class:`BackendError`."""
    if backend == "jax":
        return _Jax()
    if backend == "torch":
        from . import torch_backend

        torch_backend.namespace()
        return torch_backend
    return None


#: Decompositions whose factors' signs are the LAPACK build's choice: another build (PyTorch's,
#: cuSOLVER) may pick other signs at some points only, and a program that mixes the trace's factors
#: with its own then returns a wrong Jacobian at those points, even of a function that does not
#: depend on the signs (pinv, the polar factor, Q·R). Every backend computes these with NumPy on
#: the host, as the trace did.
ON_HOST = frozenset({np.linalg.svd, np.linalg.qr, np.linalg.eigh})


# -- the JAX backend ----------------------------------------------------------------------------


class _Jax:
    """The JAX backend's side of :func:`_backend`: ``jax.numpy`` calls under ``jax.jit`` (methods
    and indexing as calls too: traced once, they cost nothing per call)."""

    def __init__(self):
        self.jnp = _jax_namespace()
        self.einsum, self.copy = self.jnp.einsum, self.jnp.array

    host_assembly = True  # dense result blocks are written by NumPy after the jitted call

    def pair(self, ta: str, tb: str, out: str, sizes: dict[str, int]) -> Callable | None:
        import jax

        barrier = getattr(jax.lax, "optimization_barrier", None)  # (JAX ≥ 0.4.1; else the einsum)
        return None if barrier is None else _xla_pair(ta, tb, out, sizes, self.jnp, barrier)

    def function(self, fn: Callable) -> Callable:
        if fn in ON_HOST:
            return _jax_on_host(fn, self.jnp)
        found = _jax_function(fn, self.jnp)
        return _numbers_of_masks(found) if getattr(fn, "__name__", "") in _ARITHMETIC else found

    getitem = staticmethod(operator.getitem)

    @staticmethod
    def method(name: str) -> Callable:
        if name == "astype":
            return lambda x, *args, **kwargs: _barred(x, x.astype(*args, **kwargs))
        return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)

    @staticmethod
    def constants(env: dict) -> dict:
        return dict(env)

    @staticmethod
    def wrap(program: Callable) -> Callable:
        import jax

        jitted = jax.jit(program)

        def host(V):
            return tuple(np.asarray(b) for b in jitted(V))

        def start(V):  # (JAX dispatches asynchronously: the call returns before XLA has computed)
            found = jitted(V)
            return lambda: tuple(np.asarray(b) for b in found)
        host.device = jitted  # (Program.device: the blocks left where XLA computed them)
        host.start = start  # (Program.start)
        return host


#: NumPy functions that read a boolean operand as the numbers 0 and 1
_ARITHMETIC = frozenset({"add", "subtract", "multiply", "divide", "true_divide", "matmul", "dot"})


def _barred(x: Any, converted: Any) -> Any:
    """``converted`` (``x`` as numbers) behind an optimisation barrier where ``x`` is a mask: XLA's
    simplifier rewrites ``y · convert(mask)`` as ``select(mask, y, 0)``, which is 0 where NumPy's
    0·∞ and 0·NaN are NaN (``clip(x)·x`` at ∞, a maximum's ties at a NaN): the executor's and the
    other programs' Jacobian at non-finite points (docs/conventions.md)."""
    import jax

    if not _boolean(x) or _boolean(converted):
        return converted
    return jax.lax.optimization_barrier(converted)


def _boolean(x: Any) -> bool:
    return getattr(getattr(x, "dtype", None), "kind", None) == "b"


def _numbers_of_masks(fn: Callable) -> Callable:
    """``fn`` with its boolean array operands turned into numbers behind a barrier (see :func:`_barred`)."""
    import jax.numpy as jnp

    def call(*args, **kwargs):
        if any(_boolean(a) and getattr(a, "ndim", 0) for a in args):
            # (the numbers in the other operand's floating type, as NumPy's promotion gives)
            dt = next((a.dtype for a in args if getattr(getattr(a, "dtype", None), "kind", None) == "f"),
                      jnp.float64)
            args = tuple(_barred(a, jnp.asarray(a, dtype=dt)) if _boolean(a) and getattr(a, "ndim", 0) else a
                         for a in args)
        return fn(*args, **kwargs)
    return call


def _on_host(x: Any) -> bool:
    """Whether ``x`` (a ``jax.Array``, or NumPy's) lives in host memory, where ``np.asarray``
    views it without a copy: checking its values there costs a few µs, where a check inside the
    jitted call costs a reduction plus a device-to-host transfer of its answer (22 µs per call on
    a 120×120 argument)."""
    return isinstance(x, np.ndarray) or all(d.platform == "cpu" for d in x.devices())


def _all_finite(jnp, xs: list) -> Any:
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in xs])) if xs else jnp.bool_(True)


def _with_flags(run: Callable, n: int) -> Callable:
    """``run`` (a program's device variant) returning its blocks and two flags: whether its first
    ``n`` arguments are finite, and whether its blocks are."""
    jnp = _jax_namespace()

    def checked(V):
        out = run(V)
        return out, jnp.stack([_all_finite(jnp, V[:n]), _all_finite(jnp, list(out))])
    return checked


def _jax_namespace():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise BackendError("backend 'jax' needs JAX: pip install 'jacc[jax]'") from None
    jax.config.update("jax_enable_x64", True)  # jacc computes in float64 unless asked otherwise
    return jnp


def _jax_on_host(fn: Callable, jnp) -> Callable:
    """``fn`` (one of :data:`ON_HOST`) run by NumPy through ``jax.pure_callback``; its result's
    shapes are those of JAX's own function."""
    import jax

    same = getattr(jnp.linalg, fn.__name__)

    def call(a, **kwargs):
        like = jax.eval_shape(functools.partial(same, **kwargs), a)
        many = isinstance(like, tuple)
        like = tuple(like) if many else like

        def host(x):
            out = fn(np.asarray(x), **kwargs)
            if many:
                return tuple(np.asarray(o, dtype=s.dtype) for o, s in zip(out, like))
            return np.asarray(out, dtype=like.dtype)
        return jax.pure_callback(host, like, a)
    return call


_JAX_RENAMED = {"psi": "digamma", "_zeta": "zeta"}  # SciPy names whose jax.scipy.special function has another


#: past this q, Hurwitz's ζ(s, q) is its Euler–Maclaurin series' first terms (:func:`zeta_far`)
ZETA_FAR = 1e8


def zeta_far(s: Any, q: Any) -> Any:
    """Hurwitz's ζ(s, q) = Σₖ (q + k)⁻ˢ for large q by Euler–Maclaurin's first terms,
    q¹⁻ˢ/(s − 1) + q⁻ˢ/2 + s·q⁻ˢ⁻¹/12 (the next is s(s+1)(s+2)·q⁻ˢ⁻³/720: past q = 1e8, below 1e-24
    of the first for small s); 0 at q = +inf. JAX's and PyTorch's ζ give NaN at q = inf and 0 for
    q past about 1e160, where ψ′(x) = ζ(2, x) is 1/x."""
    return q ** (1.0 - s) / (s - 1.0) + 0.5 * q ** (-s) + s / 12.0 * q ** (-s - 1.0)


def jax_zeta(jnp) -> Callable:
    """Hurwitz's ζ(s, q) under ``jax.jit``: JAX's for q > 0 (past :data:`ZETA_FAR`, :func:`zeta_far`);
    where some q ≤ 0, SciPy's on the host (``jax.pure_callback``). JAX's is wrong there (ζ(2, −38.3) =
    −0.026 for 15.05, −2.9e12 at −9.5), and ψ′ = ζ(2, x) is digamma's derivative."""
    import jax
    import jax.scipy.special as jss

    def zeta(s, q):
        s, q = jnp.asarray(s, dtype=jnp.result_type(s, q, float)), jnp.asarray(q)
        like = jax.ShapeDtypeStruct(jnp.broadcast_shapes(jnp.shape(s), jnp.shape(q)), s.dtype)

        def host(s, q):
            import scipy.special as sp

            return np.asarray(sp.zeta(s, q), dtype=like.dtype).reshape(like.shape)

        def near(s, q):
            return jnp.broadcast_to(jnp.where(q > ZETA_FAR, zeta_far(s, q), jss.zeta(s, q)), like.shape)
        return jax.lax.cond(jnp.any(q <= 0), lambda s, q: jax.pure_callback(host, like, s, q),
                            lambda s, q: near(s, q).astype(like.dtype), s, q)
    return zeta


def _jax_function(fn: Callable, jnp) -> Callable:
    portable = getattr(fn, "portable", None)  # a helper written for any array namespace
    if portable is not None:
        return functools.partial(portable, xp=jnp)
    impl = _JAX_HELPERS.get(getattr(fn, "__name__", ""))
    if impl is not None and getattr(fn, "__module__", "") == S.__name__:
        return impl(jnp)
    name = getattr(fn, "__name__", None)
    name = _JAX_RENAMED.get(name, name)
    mod = getattr(fn, "__module__", "") or ""
    if name == "zeta":
        return jax_zeta(jnp)
    found = None
    if name:
        import jax.scipy.special as jss

        spaces = (jnp.linalg,) if "linalg" in mod else (jnp, jss)
        found = next((getattr(sp, name) for sp in spaces if hasattr(sp, name)), None)
    if found is None:
        raise BackendError(f"backend 'jax' has no equivalent of numpy's {mod}.{name}")
    return found


def _jax_put_rows(jnp):
    def put_rows(v, n, rows, add=False):
        r = np.asarray(rows) if isinstance(rows, (np.ndarray, list)) else None
        r = r % n if r is not None and r.dtype.kind in "iu" else None
        if r is not None and r.ndim == 1 and r.size and (np.diff(r) == 1).all():
            # consecutive rows (a parameter vector's slices): zeros padded around v, which XLA fuses
            # with the sums that follow, where a scatter would run its own loop
            return jnp.pad(v, [(int(r[0]), n - int(r[0]) - r.size)] + [(0, 0)] * (v.ndim - 1))
        full = jnp.zeros((n,) + v.shape[1:], dtype=v.dtype)
        return full.at[rows].add(v) if add else full.at[rows].set(v)
    return put_rows


def _jax_put_last(jnp):
    def put_last(v, n, pos):
        return jnp.zeros(v.shape + (n,), dtype=v.dtype).at[..., pos].set(v)
    return put_last


def _jax_put_diagonal(jnp):
    def put_diagonal(src, shape, dtype, p, q):
        mask_shape = [1] * len(shape)
        mask_shape[p], mask_shape[q] = shape[p], shape[q]
        mask = np.eye(shape[p], dtype=bool).reshape(mask_shape)
        # a select, not a product with the identity: 0·NaN off the diagonal would be NaN
        picked = jnp.where(mask, jnp.expand_dims(jnp.asarray(src), q), jnp.zeros((), dtype=dtype))
        return jnp.broadcast_to(picked, shape).astype(dtype)
    return put_diagonal


_JAX_HELPERS = {"put_rows": _jax_put_rows, "put_last": _jax_put_last, "put_diagonal": _jax_put_diagonal}
