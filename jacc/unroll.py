"""Small array functions run as straight-line float code: ``jacobian``'s scalar route.

A function of a few short vectors (the heart dipole, propane, the robot arm of the suite)
traces to an array graph whose NumPy program spends its time on call overhead, about a
microsecond per statement for a few flops each. The same graph evaluated op by op on object
arrays of traced scalars (:func:`scalar_graph`, the machinery of ``trace(...,
scalarize=True)``, without calling ``f`` again), planned at that level and compiled by
:mod:`jacc.compile` is one Python function over floats, tens of nanoseconds per operation, and
its plan is usually cheaper too (constants fold, ±1 partials are free). At the first call of a
traced structure with at most :data:`MAX_ELEMENTS` scalars, :func:`~jacc.api.jacobian` builds
this route, times it against the array program at that point, and keeps the faster.

The route is only taken where it is exact: the trace must not depend on values (a branch or a
mask taken from a comparison holds at this point only), and the compiled code bakes the graph's
constants in, so under ``retrace=True`` it serves only calls whose trace replays the first one
exactly (same ops, same constants).

>>> import numpy as np
>>> from jacc.trace import trace
>>> x = np.array([1.0, 2.0, 0.0])
>>> graph = trace(lambda x: np.stack([x[0] * x[1], np.sin(x[2])]), x)
>>> u = unroll(graph, {"x": x}, "auto")
>>> u.plan.graph.inputs
['x[0]', 'x[1]', 'x[2]']
>>> u([x])[graph.outputs[0], "x"]
array([[2., 1., 0.],
       [0., 0., 1.]])
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import scalar_linalg
from .compile import FALLBACK, CompileError, compile_plan, flat, flat_constants, flat_fallback, flat_subset
from .costmodel import CostModel
from .graph import Const, Graph
from .ops import ELEMENTWISE, MASK_OPS, OPS, UNARY

#: the largest array graph (total scalars over its vertices) that jacobian tries to unroll
MAX_ELEMENTS = 5000
#: seconds per vertex and per edge of the scalar graph that its compiled code takes, at least (one
#: line of float arithmetic each): a route estimated slower than the array program is not planned
SECONDS_PER_LINE = 25e-9
#: the most scalar operations (:func:`scalar_ops`) of an array graph the scalar route records:
#: recording takes about 60 µs an operation, and such graphs are products over long sums, which
#: the array program runs as BLAS calls
MAX_SCALAR_OPS = 5_000
#: the longest float code (vertices, edges and Jacobian entries of the scalar graph) the scalar
#: route compiles: Python compiles about 10 µs a line, and code this long runs slower than the
#: array program anyway (``tanh(x) * x.sum()`` of 400 numbers: 160,000 entries, 3.4 s to build)
MAX_LINES = 20_000
#: the most entries of the dense Jacobian (outputs × inputs, over the differentiated arguments) the
#: scalar route builds: its code keeps an expression per entry, structural zeros included, about
#: 3 µs each to write and sort (``x * np.linspace(0, 1, 1000)``: 10⁶ entries, 1,000 of them
#: non-zero, 2.7 s at the first call)
MAX_DENSE_ENTRIES = 100_000
#: A graph of many short vectors (a time-stepping loop unrolled: an RK4 Lorenz system over 150
#: steps is 13,952 vertices of 1 to 3 numbers) takes the scalar route beyond :data:`MAX_ELEMENTS`
#: and :data:`MAX_SCALAR_OPS`, up to :data:`MAX_SHORT_OPS` scalar operations and
#: :data:`MAX_SHORT_LINES` lines, where its vertices average at most :data:`SHORT_MEAN` scalar
#: operations: its array program is a NumPy call per few numbers (35 ms a call for that Lorenz
#: system, against 2 ms as float code and 0.1 ms as C)
SHORT_MEAN = 4
MAX_SHORT_OPS = 40_000
MAX_SHORT_LINES = 150_000
#: the longest scalar code (statements plus returned entries) that ``backend="jax"`` compiles with
#: ``jax.jit``: XLA's compile time of straight-line scalar code grows faster than linearly
JAX_MAX_LINES = 1000


#: From this many inputs on, C code takes its arguments as arrays (copied into its buffer) rather
#: than as lists of floats: with 20 inputs the list costs 0.7 µs to make and assign, the array 0.3 µs
ARRAY_INPUTS = 16


def float_list(a: Any) -> list:
    """An argument as the list of floats :meth:`Unrolled.run_lists` takes (C order)."""
    tp = type(a)
    if tp is float:
        return [a]
    if tp is np.ndarray:  # (the method: a third of np.ravel's call time on small arrays)
        return (a if a.ndim == 1 else a.ravel()).tolist()
    return np.ravel(a).tolist()


class Unrolled:
    """A scalar-level plan compiled to float code, called with the array arguments: returns
    ``{(array output, array input): block}`` like a :class:`~jacc.program.Program`."""

    def __init__(self, plan, compiled: Callable, blocks: list, n_in: int, n_cols: int | None = None):
        self.plan, self.compiled = plan, compiled
        self.keys = compiled.flat_keys
        consts = flat_constants(compiled)
        self.varying = [i for i, c in enumerate(consts) if c is None]
        self.constants = np.array([0.0 if c is None else c for c in consts], dtype=np.float64)
        # Mostly constant entries (structural zeros and ones): the code returns only the others,
        # written into a copy of the constants (a list of n floats to an array costs ~9 ns each)
        self.index: np.ndarray | None = None  # the entries the float code returns, if not all
        if 2 * len(self.varying) <= len(consts):
            self.fn = flat_subset(compiled, self.varying)
            self.index = np.array(self.varying, dtype=np.intp)
        else:
            self.fn = flat(compiled)
        # blocks: (key, rows, cols, shape); n_in floats in, n_cols columns (fewer: data inputs)
        self.blocks, self.n_in = blocks, n_in
        self.n_cols = n_in if n_cols is None else n_cols
        self.single = (blocks[0][0], blocks[0][3]) if len(blocks) == 1 else None  # (key, shape)
        self.mults = compiled.mults
        self.jitted: Callable | None = None  # set by use_jax()
        self.jax_index: np.ndarray | None = None  # the entries the jitted code returns, if not all
        self.native: Callable | None = None  # set by use_c()
        # seconds a quick C build of this code would take, where it was too long to build at the
        # first call: the calls build it once they have taken as long (jacc.api._Once.run_tiered)
        self.build_later: float | None = None
        self.spent = 0.0  # seconds the float code's calls have taken since (all structures sharing it)

    def use_c(self, max_lines: int | None = None, quick: bool = False) -> None:
        """Run as built C code (:mod:`jacc.ccode`): the same statements, about a nanosecond each.
        Raises :class:`~jacc.compile.CompileError` where a formula has no C twin or the code is
        longer than ``max_lines`` (:data:`jacc.ccode.MAX_LINES`), and ``BackendError`` where
        there is no C compiler."""
        from .ccode import MAX_LINES, Native

        self.native = Native(self.compiled, self.n_in, max_lines or MAX_LINES, quick)

    def use_jax(self) -> None:
        """Run under ``jax.jit``: the same code over ``jax.numpy`` (one fused XLA computation for
        the whole Jacobian, primal included). Raises where a formula has no JAX equivalent, or
        where the code is too long for XLA to compile in reasonable time (:data:`JAX_MAX_LINES`).

        Only the entries that are not constants are computed under jit (XLA's compile time grows
        faster than linearly with the number of scalars stacked into the result: 20,000 entries,
        most of them structural zeros, took 18 s); the constants are filled in on the host."""
        import jax

        from .compile import retarget
        from .program import _jax_namespace

        if not self.varying:
            raise ValueError("every entry is a constant: there is nothing to compile")
        keep = None if len(self.varying) == len(self.constants) else self.varying
        fn, n = retarget(self.compiled, _jax_names(), keep), self.n_in
        lines = fn.source.count("\n") + len(self.varying)
        if lines > JAX_MAX_LINES:
            raise ValueError(f"{lines} lines of scalar code: more than jax.jit compiles quickly ({JAX_MAX_LINES})")
        jnp = _jax_namespace()

        def jacobian(x):
            return jnp.stack([jnp.asarray(v, dtype=jnp.float64) for v in fn(*[x[i] for i in range(n)])])

        jitted = jax.jit(jacobian)
        jitted(np.zeros(n))  # traced and compiled now: a formula without a JAX twin fails here
        self.jitted = jitted
        self.jax_index = None if keep is None else np.array(keep, dtype=np.intp)

    def __call__(self, xs: Sequence[Any]) -> dict:
        """The blocks at the arguments ``xs`` (arrays or floats, in the graph's input order), passed
        as calls pass them (:meth:`takes_arrays`): timed this way, the route is timed as it runs
        (C code of 930 inputs took 38 µs through lists, 4 µs through arrays)."""
        if self.takes_arrays():
            return self.run_arrays([np.asarray(x, dtype=np.float64) for x in xs])
        return self.run_lists([float_list(x) for x in xs])

    def takes_arrays(self) -> bool:
        """Whether calls should pass :meth:`run_arrays` float64 arrays rather than lists: built C
        code of at least :data:`ARRAY_INPUTS` inputs."""
        return self.native is not None and self.n_in >= ARRAY_INPUTS

    def run_arrays(self, arrays: Sequence[np.ndarray]) -> dict:
        """The blocks at the arguments given as float64 arrays (C code only: see :meth:`takes_arrays`)."""
        return self._blocks(self.native.from_arrays(arrays))

    def run_lists(self, lists: Sequence[list]) -> dict:
        """The blocks at the arguments given as lists of floats (each in C order)."""
        floats = lists[0] if len(lists) == 1 else [v for x in lists for v in x]
        if self.native is not None:
            return self._blocks(self.native(floats))
        if self.jitted is not None:
            return self._blocks(self._filled(np.asarray(self.jitted(np.array(floats))), self.jax_index))
        try:
            vals = self.fn(*floats)
        except FALLBACK:  # a math domain error: the same code with NumPy's NaN/inf semantics
            return self._blocks(np.array(flat_fallback(self.compiled, floats), dtype=np.float64))
        return self._blocks(self._filled(vals, self.index))

    @property
    def template(self) -> np.ndarray | None:
        """The constants the float code's entries are written into, where it returns only some."""
        return None if self.index is None else self.constants

    def _filled(self, vals, index: np.ndarray | None) -> np.ndarray:
        """The flat Jacobian from returned entries: all of them, or those at ``index`` written into
        a copy of the constants."""
        if index is None:
            return np.asarray(vals, dtype=np.float64)
        M = self.constants.copy()
        M[index] = vals
        return M

    def _blocks(self, M: np.ndarray) -> dict:
        if self.single is not None:  # one reshape of the flat array
            return {self.single[0]: M.reshape(self.single[1])}
        if not self.blocks:  # (no input: an empty pytree)
            return {}
        M = M.reshape(self.blocks[-1][1].stop, self.n_cols)  # (rows by the blocks: n_cols may be 0)
        return {key: M[r, c].reshape(shape) for key, r, c, shape in self.blocks}


def scalar_graph(graph: Graph, values: Mapping[str, Any]) -> Graph:
    """``graph`` at the scalar level, at the input ``values``: its ops evaluated in order on
    object arrays of traced scalars (:mod:`jacc.scalarize`), so every array op comes out as the
    scalar operations NumPy performs for it, with constants folded. ``f`` is not called again.
    Raises where an op's NumPy evaluation does not run element by element."""
    from .scalarize import join, split
    from .trace import Tape, _private

    tape = Tape(graph.name, np.float64)
    env: dict[str, Any] = {x: split(tape, x, _private(values[x], np.float64)) for x in graph.inputs}
    with np.errstate(all="ignore"):  # (an overflow is a value here, as in the array trace)
        for v in graph.topological_order():
            if v in env:
                continue
            d = graph.nx.nodes[v]
            args = [a.value if isinstance(a, Const) else env[a] for a in d["args"]]
            if d["op"] == "clip":
                env[v] = _clip(tape, args[0], d["params"])
            elif d["op"] == "lanes":
                env[v] = _lanes(tape, *args, d["params"]["axes"])
            elif d["op"] in LINALG:  # (LAPACK does not take object arrays)
                env[v] = LINALG[d["op"]](*args)
            elif d["op"] in _PER_ELEMENT or not _on_objects(d["op"], len(args), d["params"]):
                env[v] = _per_element(tape, d["op"], args, d["params"])
            else:
                env[v] = OPS[d["op"]].evaluate(args, d["params"])
    tape.declare([s for y in graph.outputs for s in join(env[y])], False)
    return tape.graph


#: Linear-algebra ops at the scalar level (:mod:`jacc.scalar_linalg`: Cramer's rule and expanded
#: determinants at small orders read no values; elimination with pivots read from values marks the
#: scalar graph value-dependent, and the scalar route stands aside)
LINALG = {"solve": scalar_linalg.solve, "inv": scalar_linalg.inv, "det": scalar_linalg.det,
          "cholesky": scalar_linalg.cholesky}


def entries(g: Graph) -> int:
    """How many (output, input) pairs of the graph ``g`` a path joins: the Jacobian entries its
    code computes, at most (a dense one where every output reads a sum of all the inputs).

    >>> from jacc import examples
    >>> entries(examples.lecture_f())
    2
    """
    reach: dict[str, int] = {x: 1 << k for k, x in enumerate(g.inputs)}
    for v in g.topological_order():
        if v not in reach:
            reach[v] = 0
            for u in g.nx.predecessors(v):
                reach[v] |= reach.get(u, 0)
    return sum(bin(reach.get(y, 0)).count("1") for y in g.outputs)


def _composite(formula: str) -> bool:
    """A primal formula that calls a function and is more than one call of it (``1/(1 + exp(-x))``)."""
    return "(" in formula and not re.fullmatch(r"\w+\(x\)", formula.replace(" ", ""))


#: Unary ops kept as one scalar op each, not evaluated through their formula (expit as
#: 1/(1 + exp(−x)) would differentiate exp(1000)·0 = NaN where expit's own rule gives 0).
#: Piecewise constant ones (sign, floor, …) likewise: on scalar handles they would compare values.
WHOLE = frozenset(name for name, (primal, _, spec) in UNARY.items() if _composite(primal) or spec == "zero")


#: Ops on recorded masks (jacc.masks): element by element, each a recorded scalar op where a traced
#: scalar takes part (evaluating their formulas on scalar handles would read the comparisons' values)
SELECTING = MASK_OPS | {"where"}
_PER_ELEMENT = WHOLE | SELECTING
_ON_OBJECTS: dict[tuple, bool] = {}


def _on_objects(op: str, n: int, params: dict) -> bool:
    """Whether NumPy's evaluation of the elementwise ``op`` runs on traced scalars without reading
    their values: SciPy's ufuncs have no loop for objects (erf, ndtr) nor has ``logaddexp``, and
    ``maximum``'s object loop compares. Those are recorded element by element instead
    (:func:`_per_element`), one scalar op each with its own rule (``maximum``'s ties: ½ each, as
    at the array level). Found once per op on a scratch tape. Other ops: True."""
    if op not in UNARY and op not in ELEMENTWISE:
        return True
    key = (op, n, repr(sorted(params.items())) if params else "")
    if key not in _ON_OBJECTS:
        from .scalarize import Scalar
        from .trace import Tape

        tape = Tape("probe", np.float64)
        args = []
        for k in range(n):
            a = np.empty(1, dtype=object)
            a[0] = Scalar(tape.input(f"p{k}", np.float64(0.25 + 0.125 * k)))
            args.append(a)
        try:
            with np.errstate(all="ignore"):
                OPS[op].evaluate(args, params)
            _ON_OBJECTS[key] = not tape.value_dependent
        except Exception:  # noqa: BLE001 - no loop for objects, in whatever way NumPy or SciPy says it
            _ON_OBJECTS[key] = False
    return _ON_OBJECTS[key]


def _per_element(tape, op: str, args: list, params: dict) -> Any:
    """``op`` over ``args`` (object arrays of traced scalars, or constants) broadcast as NumPy
    does: one recorded scalar op per element where a traced scalar takes part, constants
    evaluated; ``where`` with a constant condition picks its argument as NumPy's would."""
    from .scalarize import Scalar, ScalarArray

    def one(*es):
        if op == "where" and not isinstance(es[0], Scalar):
            return es[1] if es[0] else es[2]
        if any(isinstance(e, Scalar) for e in es):
            return Scalar(tape.record(op, [e.t if isinstance(e, Scalar) else float(e) for e in es],
                                      dict(params) or None))
        return float(OPS[op].evaluate([np.asarray(e, dtype=float) for e in es], params))
    def plain(a):  # (a traced scalar alone in a 0-d object array: its own __array_ufunc__ refuses the ufunc)
        if isinstance(a, np.ndarray):
            return a.view(np.ndarray)
        if isinstance(a, Scalar):
            held = np.empty((), dtype=object)
            held[()] = a
            return held
        return a
    out = np.frompyfunc(one, len(args), 1)(*map(plain, args))
    return out.view(ScalarArray) if isinstance(out, np.ndarray) and out.ndim else (
        out[()] if isinstance(out, np.ndarray) else out)


def _clip(tape, x: Any, params: dict) -> Any:
    """``clip(x, lo, hi)`` with constant bounds as recorded masks and ``where``: ``x`` on
    [lo, hi] (derivative 1, the bounds inside as at the array level), else the bound it passed, a
    constant (NaN for NaN, derivative 0). NumPy's clip on traced scalars compares their values.
    Where the bounds alone decide, NumPy's ``minimum(maximum(x, lo), hi)`` is a constant: ``hi``
    where lo > hi, NaN where a bound is NaN."""
    inside, rest = None, np.nan
    bounds = {k: np.asarray(params[k], dtype=float) for k in ("lo", "hi") if params.get(k) is not None}
    for key, keeps, passes in (("hi", "less_equal", "greater"), ("lo", "greater_equal", "less")):
        if key not in bounds:
            continue
        b = bounds[key]
        m = _per_element(tape, keeps, [x, b], {})
        inside = m if inside is None else _per_element(tape, "logical_and", [inside, m], {})
        rest = _per_element(tape, "where", [_per_element(tape, passes, [x, b], {}), b, rest], {})
    if inside is None:
        return x
    got = _per_element(tape, "where", [inside, x, rest], {})
    lo, hi = bounds.get("lo", -np.inf), bounds.get("hi", np.inf)
    nan = np.isnan(lo) | np.isnan(hi)
    with np.errstate(invalid="ignore"):
        fixed = nan | (lo > hi)
    if not np.any(fixed):
        return got
    value = np.where(nan, np.nan, hi)
    return _per_element(tape, "where", [np.broadcast_to(fixed, np.shape(got)), value, got], {})


def _lanes(tape, m: Any, x: Any, fill: Any, axes: int) -> Any:
    """jacc.lanes' op: ``x`` where ``m`` holds, elsewhere the first row ``m`` selects (``fill`` where
    it selects none), held (no edge, as at the array level): ``where`` over the rows, last to first."""
    from .scalarize import Scalar

    def held(row):
        out = np.empty(row.shape, dtype=object)
        for k, e in enumerate(row.flat):
            out.flat[k] = Scalar(tape.record("hold", [e.t])) if isinstance(e, Scalar) else e
        return out

    x = np.asarray(x, dtype=object).view(np.ndarray)
    n = math.prod(x.shape[:axes])
    rows, flat = x.reshape((n,) + x.shape[axes:]), np.asarray(m, dtype=object).view(np.ndarray).reshape(n)
    rest = np.broadcast_to(np.asarray(fill, dtype=float), rows.shape[1:])
    for i in reversed(range(n)):
        rest = _per_element(tape, "where", [flat[i], held(rows[i, ...]), rest], {})
    return _per_element(tape, "where", [m, x, rest], {})


def candidate(graph: Graph, strategy: Any) -> bool:
    """Whether :func:`unroll` may apply: a named strategy, a trace that does not depend on
    values, a dense Jacobian of at most :data:`MAX_DENSE_ENTRIES` entries, and a small graph (at
    most :data:`MAX_ELEMENTS` scalars over its vertices and about :data:`MAX_SCALAR_OPS` scalar
    operations, :func:`scalar_ops`) or one of short vectors (:func:`short`)."""
    sizes = lambda names: sum(math.prod(graph.shape(v)) for v in names)  # noqa: E731
    if not ((isinstance(strategy, str) or scalar_level(strategy)) and not graph.meta.get("value_dependent")
            and sizes(graph.outputs) * sizes(graph.inputs) <= MAX_DENSE_ENTRIES):
        return False
    ops = scalar_ops(graph)
    return (sizes(graph.nx) <= MAX_ELEMENTS and ops <= MAX_SCALAR_OPS) or _short(ops, len(graph.nx))


def all_scalars(graph: Graph) -> bool:
    """Whether every vertex of ``graph`` is a scalar (a scalar-level graph)."""
    return all(graph.shape(v) == () for v in graph.nx)


def scalar_level(plan: Any) -> bool:
    """Whether ``plan`` is a :class:`~jacc.Plan` of a graph of scalars (``jacobian``'s ``.plan``
    after the scalar route ran): passed back as a strategy, its order is for the scalar level."""
    from .plan import Plan

    return isinstance(plan, Plan) and all_scalars(plan.graph)


def short(graph: Graph) -> bool:
    """Whether ``graph`` is one of many short vectors (see :data:`SHORT_MEAN`): at most
    :data:`MAX_SHORT_OPS` scalar operations, :data:`SHORT_MEAN` a vertex on average.

    >>> from jacc.trace import trace
    >>> def steps(y):
    ...     for _ in range(700):
    ...         y = y + 0.1 * np.array([y[1], -y[0]])
    ...     return y
    >>> g = trace(steps, np.ones(2))
    >>> short(g), scalar_ops(g) > MAX_SCALAR_OPS or sum(math.prod(g.shape(v)) for v in g.nx) > MAX_ELEMENTS
    (True, True)
    """
    return _short(scalar_ops(graph), len(graph.nx))


def _short(ops: int, vertices: int) -> bool:
    return ops <= MAX_SHORT_OPS and ops <= SHORT_MEAN * vertices


def scalar_ops(graph: Graph) -> int:
    """About how many scalar operations ``graph`` comes to at the scalar level: each vertex's
    size, times the length of the sums in a product (``x @ A @ x`` over 300 numbers: 600 scalars
    but 90,600 operations, which took 12 s to record one by one).

    >>> from jacc.trace import trace
    >>> scalar_ops(trace(lambda x: np.ones((30, 30)) @ x, np.ones(30)))  # the input, 900 products
    930
    """
    nodes, total = graph.nx.nodes, 0
    for v in graph.nx:
        d, out = nodes[v], math.prod(graph.shape(v))
        shapes = [graph.shape(a) if isinstance(a, str) else np.shape(a.value) for a in d["args"]]
        summed = 1
        op = OPS.get(d["op"])
        if op is not None and op.factorises and shapes and shapes[0]:
            # a factorisation of an n × n matrix: about n operations per entry of the matrix,
            # whatever its result (a 40 × 40 determinant: 1 output, 21,000 operations, 2.7 s to record)
            out, summed = max(out, math.prod(shapes[0])), shapes[0][-1]
        elif d["op"].startswith("matmul") and shapes and shapes[0]:
            summed = shapes[0][-1]
        elif d["op"] == "einsum" and "..." not in d["params"].get("spec", "..."):
            sizes: dict[str, int] = {}
            for labels, shape in zip(d["params"]["spec"].split("->")[0].split(","), shapes):
                sizes.update(zip(labels, shape))
            summed = max(1, math.prod(sizes.values()) // max(out, 1))
        total += out * summed
    return total


def unroll(graph: Graph, values: Mapping[str, Any], strategy: Any, cost_model=None, *,
           beat: float | Callable[[], float | None] | None = None, floor: float = 0.0,
           time_cap: float | None = None, per_line: float | None = None, c_lines: int | None = None,
           wrt: Sequence[str] | None = None, **options) -> Unrolled | None:
    """The scalar route for the array ``graph`` at the vertex ``values``, or None where it does
    not apply: a big graph, a strategy that is not a name, a trace that depends on values, an op
    that does not run on object arrays, or one without scalar formulas — or where its code would
    take at least ``beat`` seconds by :data:`SECONDS_PER_LINE` (or ``per_line`` seconds a line, for
    code that may be built as C — where the scalar graph has at most ``c_lines`` vertices and edges,
    the longest code C is built for; then it is not planned at all). ``beat`` may be a function
    giving that time (or None), asked only where the estimate reaches ``floor`` seconds, a lower
    bound of it.
    A strategy that takes ``time_limit`` plans for at most ``time_cap`` seconds. ``wrt``: the
    inputs differentiated (default all; the others are data, see ``jacc.api._DataArgs``)."""
    from .eliminate import OrderError, Problem
    from .plan import MemoryLimitError, build, choose
    from .strategies import lookup, run_strategy

    if not candidate(graph, strategy):
        return None
    try:
        with np.errstate(all="ignore"):
            g = scalar_graph(graph, values)
    except Exception:  # noqa: BLE001 - an op NumPy cannot run on objects, in any way: the array route stands
        return None
    if g.meta.get("value_dependent"):  # e.g. max over objects compares: its ties and branches are values
        return None
    lines = len(g.nx) + g.nx.number_of_edges() + entries(g)  # (one line returns each entry)
    if lines > (MAX_SHORT_LINES if short(graph) else MAX_LINES):
        return None

    def seconds(n: int) -> float:
        """What ``n`` lines of code take: as C, unless too long to be built as C (then float code:
        planning and compiling C took 10 s on the bottleneck network)."""
        c = per_line is not None and (c_lines is None or n <= c_lines)
        return (per_line if c else SECONDS_PER_LINE) * n

    if _slower(beat, floor, seconds(lines)):
        return None
    rows = [math.prod(graph.shape(y)) for y in graph.outputs]
    cols = [math.prod(graph.shape(x)) for x in graph.inputs]
    if sum(rows) != len(g.outputs) or sum(cols) != len(g.inputs):
        return None
    wrt = list(graph.inputs) if wrt is None else list(wrt)
    starts = np.cumsum([0] + cols)  # graph.inputs[k]'s scalars are g.inputs[starts[k]:starts[k + 1]]
    taken = [k for k, x in enumerate(graph.inputs) if x in wrt]
    problem = Problem.from_graph(g, None if len(taken) == len(cols) else
                                 [s for k in taken for s in g.inputs[starts[k]:starts[k + 1]]])
    cm = CostModel.coerce(cost_model)
    if cm.objective == "time":  # scalar code keeps its values in locals, not arrays: count the work
        cm = dataclasses.replace(cm, objective="mults")
    if time_cap is not None and isinstance(strategy, str) and \
            "time_limit" in inspect.signature(lookup(strategy)).parameters:
        options = {**options, "time_limit": min(options.get("time_limit", math.inf), max(time_cap, 0.01))}
    t0 = time.perf_counter()
    try:
        if isinstance(strategy, str):
            order, name, info, optimal = run_strategy(strategy, problem, cm, **options)
        else:  # a scalar-level plan given back (scalar_level): its order, re-priced here
            order, name, info, optimal = choose(problem, strategy, cm, {})
        plan = build(problem, order, name, cm, info, time.perf_counter() - t0, optimal)
        # the code has a line or more per product its plan multiplies: where that makes it too long
        # for C (np.linalg.matrix_power of 6×6 to the 5th: 2,700 lines by the graph, 35,508 by the
        # plan), it runs as floats, and is not compiled where those would lose
        if _slower(beat, floor, seconds(lines + plan.mults)):
            return None
        compiled = compile_plan(plan, entries_only=True)
    except (CompileError, MemoryLimitError, OrderError):  # (OrderError: a given plan of another graph)
        return None
    blocks = []
    r0 = 0
    for y, nr in zip(graph.outputs, rows):
        c0 = 0
        for k in taken:
            x, nc = graph.inputs[k], cols[k]
            blocks.append(((y, x), slice(r0, r0 + nr), slice(c0, c0 + nc), graph.shape(y) + graph.shape(x)))
            c0 += nc
        r0 += nr
    return Unrolled(plan, compiled, blocks, sum(cols), sum(cols[k] for k in taken))


def _slower(beat: float | Callable[[], float | None] | None, floor: float, estimate: float) -> bool:
    """Whether code estimated to take ``estimate`` seconds cannot beat ``beat`` (see :func:`unroll`;
    asked only from ``floor`` seconds on)."""
    if beat is None or estimate < floor:
        return False
    beat = beat() if callable(beat) else beat
    return beat is not None and estimate >= beat


def best_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The shortest of ``repeats`` timed calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _jax_names() -> dict:
    """The functions of :data:`jacc.compile.MATH_NAMES` in ``jax.numpy`` / ``jax.scipy.special``
    by name (the ones with NumPy's semantics at NaN and ±inf); jacc's own helpers have none."""
    import jax.numpy as jnp
    import jax.scipy.special as jss

    from .compile import MATH_NAMES
    from .program import jax_zeta

    found = {k: getattr(space, k) for k in MATH_NAMES for space in (jss, jnp) if hasattr(space, k)}
    return {**found, "zeta": jax_zeta(jnp)} if "zeta" in found else found
