"""``jacc.jacobian``: trace, choose an elimination order, execute, assemble (like ``jax.jacobian``).

>>> import numpy as np
>>> f = lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2)
>>> np.round(jacobian(f, argnums=(0, 1))(2.0, 5.0), 3)
array([5.5  , 1.716])
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import functools
import inspect
import keyword
import math
import operator
import re
import sys
import time
import weakref
import zlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import allocator, budget, costmodel, factorise, lanes, locks, pytrees
from .compile import FALLBACK
from .costmodel import CostModel, MemoryLimitError, human_bytes
from .eliminate import OrderError, Problem, accumulate
from .graph import Graph
from .guards import Guards, guards_for, same, snapshot, watch
from .ops import OPS
from .program import finite_array, finite_blocks, owned, raise_as_numpy, singular_ops
from .strategies import naive_first
from .trace import (
    INT_DATA_BOUND,
    Recording,
    Tape,
    Tracer,
    UnsupportedOperationError,
    _param_names,
    check_argnums,
    check_plain,
    check_real,
    record_call,
    refuse_enclosing,
    result_leaves,
    trace_needs,
)
from .unroll import all_scalars, float_list, scalar_level
from .unroll import candidate as unroll_candidate

#: argument types whose values key a structure's skip of ``f`` (jacobian's ``once_key``), for at
#: most _FLAG_VALUES combinations of their values per shape
_FLAGS = frozenset({str, bool, int, type(None)})
_FLAG_VALUES = 8
_LAST_KEPT = 16  # structures kept by key beside the plan cache (jacobian's ``last_of``)


def _check_finite(name: str, x: np.ndarray | float, policy: str, dtype=None) -> None:
    """Raise per ``policy`` where ``x`` (the argument ``name`` in the Jacobian's ``dtype``) is not finite."""
    if policy == "propagate" or (math.isfinite(x) if type(x) is float or x.ndim == 0 else np.isfinite(x).all()):
        return
    x = np.asarray(x)
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0]) if x.ndim else ()
    dt = np.dtype(dtype or x.dtype)
    cast = f" in {dt} (a finite value beyond ±{np.finfo(dt).max:.3g} overflows to inf)" if dt.itemsize < 8 else ""
    raise ValueError(f"argument {name!r} has a non-finite value {x[bad]} at index {bad}{cast}; "
                     "pass nonfinite='propagate' to let NaN/inf flow into the Jacobian")


#: Plans of at least this many elimination steps run the interpreted executor at their structure's
#: first call and are lowered at its next one: lowering records every step (about 0.5 ms each,
#: several times the executor's time) and pays only for a structure that runs again. A Lotka–Volterra
#: solve_ivp over 30 output times (9,837 steps) took 4.7 s to lower against 0.9 s to execute.
LOWER_LATER_STEPS = 1000
#: ... and where its trace depends on values (an ODE solver's steps, read at the traced point), its
#: structure recurs less often: the executor runs this many of its calls before it is lowered (the
#: second call of a BDF solve at the same point took 8.7 s against the first's 2.3 s, lowering)
LOWER_LATER_CALLS_IF_VALUE_DEPENDENT = 2

BACKENDS = ("auto", "numpy", "jax", "torch", "c", "scalar", "interpret")
# seconds for the array-level plan of a graph small enough for the scalar route (jacc.unroll): that
# route runs where it measures faster, as it does on the suite's small graphs, and an array program
# of a few dozen small ops costs its NumPy calls, not its multiplications (30 ms: the suite's plans
# and routes as with 100 ms, and with 10 ms attention's array plan is 36 % dearer)
ARRAY_PLAN_BESIDE_UNROLL = 0.03
#: An array program's call takes at least as long as this many NumPy calls on tiny arrays (its
#: inputs, its result blocks: about 13 measured), and one more per elimination step that
#: multiplies. Where the scalar route runs faster than that, the array program is not lowered
#: at all (for the heart dipole, 110 ms of its 220 ms first call).
PROGRAM_FLOOR_CALLS = 4
#: ``auto``'s array program, where it has more than this many statements per elimination step
#: (its products became many gathers and sums: the suite's programs have 2–5, the plans that
#: misled on long ``np.cumsum`` scans 12–72) ...
PLAIN_STATEMENTS = 8
#: ... or, where the values its statements write (``Program.written``) exceed this many times the
#: plan's multiplications plus its result's entries (a product per term of a sum of gathers, each
#: writing a full-size block: ``np.sin(np.cumsum(x))`` over 1,000 numbers, 30 of them per call) ...
PLAIN_WRITES = 8
#: ... (and at least this many: a small graph's program writes a value or a few per statement,
#: which says nothing about its plan) ...
PLAIN_WRITES_FROM = 1 << 16
#: ... and one call takes at least this many seconds, is timed on the first call against the
#: plain reverse and forward orders' programs (Runner.plain_if_faster) ...
MEASURE_FROM = 1e-4
#: ... (a program timed once, not best of three, from this many seconds) ...
MEASURE_ONCE_FROM = 0.05
#: ... which replace it where they run in at most this fraction of its time (a margin noise does
#: not cross: the plan chosen stays the same from run to run) ...
PLAIN_MARGIN = 0.5
#: ... and which are not lowered where they are priced at this many times the planned score or
#: hold this many times its peak (at least 1 MiB): the cost model misleads on moves, not on products.
PLAIN_SCORE = PLAIN_MEMORY = 4


@functools.cache
def _numpy_call_seconds() -> float:
    """One NumPy ufunc call on a tiny array here, best of five runs of 20 (the unit of
    :func:`_program_floor`)."""
    a, runs = np.ones(2), []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20):
            np.multiply(a, a)
        runs.append((time.perf_counter() - t0) / 20)
    return min(runs)


def _auto_c_lines(graph: Graph) -> int:
    """The longest code ``"auto"`` builds as C on its own for ``graph``: :data:`jacc.ccode.AUTO_LINES`,
    or :data:`~jacc.ccode.MAX_LINES` for a graph of short vectors (:func:`jacc.unroll.short`:
    its array program is slow for its size, so a quick build of long code pays)."""
    from .ccode import AUTO_LINES, MAX_LINES
    from .unroll import short

    return MAX_LINES if short(graph) else AUTO_LINES


def _program_floor(plan) -> float:
    """A lower bound of the seconds ``plan``'s array program takes per call."""
    return _numpy_call_seconds() * (PROGRAM_FLOOR_CALLS + sum(s.mults > 0 for s in plan.steps))


def _assembler(graph: Graph, single: bool, convert: Callable | None, wrt: list[str]) -> Callable[[dict], Any]:
    """A function making jacobian's result from the blocks ``{(output, input): block}``: per
    output, one block or a tuple per input of ``wrt`` (the graph's inputs but its data arguments'); a
    tuple of those for a tuple of outputs. ``convert`` is applied to each block (``None``: they are
    the caller's already). Built once per traced structure for ``retrace=False``, whose whole call
    costs a few microseconds."""
    conv = convert or (lambda b: b)
    nesting = graph.meta.get("output_tuple")
    if graph.meta.get("input_groups") or isinstance(nesting, pytrees.TreeSpec):
        return _nested_assembler(graph, single, conv, wrt)
    rows = [[(y, x) for x in wrt] for y in graph.outputs]
    if single:
        keys = [row[0] for row in rows]
        if not graph.meta.get("output_tuple"):
            k = keys[0]
            if convert is None:  # the commonest result, one block: no call per block
                return lambda found: found[k]
            return lambda found: conv(found[k])
        return lambda found: tuple([conv(found[k]) for k in keys])
    if not graph.meta.get("output_tuple"):
        ks = rows[0]
        return lambda found: tuple([conv(found[k]) for k in ks])
    return lambda found: tuple([tuple([conv(found[k]) for k in row]) for row in rows])


def _nested_assembler(graph: Graph, single: bool, conv: Callable, wrt: list[str]) -> Callable[[dict], Any]:
    """:func:`_assembler` where an argument or the result is nested (:mod:`jacc.pytrees`): per
    output leaf, each argument's blocks in its nesting; the outputs in theirs."""
    kept = set(wrt)
    groups = [(spec, names) for spec, names in graph.meta.get("input_groups") or [(None, [x]) for x in graph.inputs]
              if not names or names[0] in kept]
    nesting = graph.meta.get("output_tuple")

    def per_output(found, y):
        parts = [conv(found[y, names[0]]) if spec is None
                 else pytrees.unflatten(spec, [conv(found[y, x]) for x in names]) for spec, names in groups]
        return parts[0] if single else tuple(parts)

    def assemble(found):
        return _nested(nesting, [per_output(found, y) for y in graph.outputs])
    return assemble


def _nested(nesting: Any, outs: list) -> Any:
    """Per-output results in the nesting of ``f``'s result (``graph.meta["output_tuple"]``)."""
    if isinstance(nesting, pytrees.TreeSpec):
        return pytrees.unflatten(nesting, outs)
    return tuple(outs) if nesting else outs[0]


def _with_value(graph: Graph, assemble: Callable[[dict], Any]) -> Callable[[dict], Any]:
    """:func:`value_and_jacobian`'s result from the blocks and the outputs' values ``found[y, None]``:
    ``(value, assemble(found))``, the value nested as ``f``'s result is."""
    ys, nesting = list(graph.outputs), graph.meta.get("output_tuple")
    return lambda found: (_nested(nesting, [found[y, None] for y in ys]), assemble(found))


def _valued(found: dict, graph: Graph, values: Mapping[str, Any], dt) -> dict:
    """``found`` with each output's value under ``(y, None)``, as the caller's own arrays of ``dt``:
    those it holds (an array program lowered with ``outputs``), else copies of the vertex
    ``values`` (a trace's, which may be the caller's arrays, or the graph's evaluated)."""
    ys = graph.outputs
    if all((y, None) in found for y in ys):
        return found
    return {**found, **{(y, None): np.array(values[y], dtype=dt) for y in ys}}


def _float_values(entry: Entry) -> Callable[[list], dict] | None:
    """For a structure on the scalar route (float or C code, which computes no outputs): its
    outputs' values from the call's arguments as float code (:func:`jacc.compile.compile_values`
    of the scalar-level graph), as ``{(y, None): array}``; None elsewhere, or where an op has no
    float formula."""
    from .compile import CompileError, compile_values

    r, graph = entry.runner, entry.graph
    scalar = r.unrolled.plan.graph if r.unrolled is not None else graph if r.fast is not None else None
    if scalar is None:
        return None
    try:
        code = compile_values(scalar)
    except CompileError:
        return None
    shapes = [graph.shape(y) for y in graph.outputs]
    if sum(math.prod(s) for s in shapes) != len(scalar.outputs):
        return None
    keys, dt = [(y, None) for y in graph.outputs], r.dtype
    ends = np.cumsum([0] + [math.prod(s) for s in shapes]).tolist()
    runs_c = r.unrolled.native is not None if r.unrolled is not None else r.fast_kind == "c"
    native = _native_values(code, len(scalar.inputs)) if runs_c else None
    if r.unrolled is None:  # floats in, floats out (the route is float64's alone)
        asarray = np.asarray
        if native is not None:
            return lambda xs: {k: asarray(v) for k, v in zip(keys, native(xs))}
        return lambda xs: {k: asarray(v) for k, v in zip(keys, code(*xs))}

    def values(xs: list) -> dict:
        if native is not None and all(type(x) is np.ndarray for x in xs):  # (C taking arrays)
            out = native.from_arrays(xs)
        else:
            floats = [v for x in xs for v in (x if type(x) is list else [x] if type(x) is float
                                                else np.ravel(x).tolist())]
            out = native(floats) if native is not None else np.array(code(*floats), dtype=dt)
        return {k: out[a:b].reshape(s) for k, a, b, s in zip(keys, ends, ends[1:], shapes)}
    return values


def _native_values(code: Callable, n_in: int) -> Any:
    """The outputs' float code built as C (:class:`jacc.ccode.Native`) for a route that runs C, or
    None where it is not built (a formula without a C twin, no compiler)."""
    from .ccode import Native
    from .compile import CompileError
    from .program import BackendError

    try:
        return Native(code, n_in, quick=True)
    except (CompileError, BackendError):
        return None


def _shape(a: Any) -> Any:
    """An argument's shape, or for a nested one its nesting and leaf shapes (a cache key; a 0-d
    array's is not a number's, :func:`jacc.pytrees.leaf_key`)."""
    if isinstance(a, np.ndarray):
        return a.shape if a.ndim else pytrees.ZERO_D
    if type(a) is float:
        return ()
    return pytrees.signature(a) if isinstance(a, (dict, tuple, list)) else pytrees.leaf_key(a)


_HOST = (np.ndarray, float, int, np.float64)  # argument types answered before jax.Array's isinstance
_HOSTED = frozenset(_HOST)


def _leaves(arg: Any) -> list:
    """A traced argument's values in :func:`_input_names`' order."""
    if isinstance(arg, (dict, tuple, list)) and pytrees.is_node(arg):
        return pytrees.flatten(arg)[0]
    return [arg]


def _input_names(arg: Any, name: str) -> list[str]:
    """The graph inputs a traced argument ``name`` becomes: itself, or a container's leaves."""
    if isinstance(arg, (dict, tuple, list)) and pytrees.is_node(arg):
        return pytrees.flatten(arg)[1].paths(name)
    return [name]


def _jax_arrays(args, nums) -> bool:
    """Whether every differentiated argument is a ``jax.Array`` (or a nesting of them): the
    ``"jax"`` backend then keeps the computation and the result on JAX's device."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    kind = jax.Array
    for i in nums:
        if not -len(args) <= i < len(args):
            return False
        a = args[i]
        if type(a) in _HOST:  # (the common case)
            return False
        if not isinstance(a, kind):
            leaves = pytrees.flatten(a)[0] if isinstance(a, (dict, tuple, list)) else ()
            if not leaves or not all(isinstance(v, kind) for v in leaves):
                return False
    return True


def _host_data(args: tuple, kwargs: dict, argnums: Any) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` with each ``jax.Array`` not differentiated (a leaf of a container
    too: a batch ``(X, y)``) as a NumPy array, as ``f`` traces it anyway: data that changes then
    takes the data path (:class:`_DataArgs`), and a constant one is guarded by value. Kept as
    ``jax.Array``, it could be neither, and every call traced ``f`` (73 ms a call for a 64 × 5 → 10
    cross-entropy with its batch and labels as ``jax.Array`` values under ``backend="jax"``)."""
    if _HOSTED.issuperset(map(type, args)) and (not kwargs or _HOSTED.issuperset(map(type, kwargs.values()))):
        return args, kwargs  # (the common case, answered first: this runs on every call)
    jax = sys.modules.get("jax")
    if jax is None:
        return args, kwargs
    try:
        differentiated = set(check_argnums(argnums, len(args)))
    except (TypeError, ValueError):  # (the trace says what is wrong with them, in its words)
        return args, kwargs

    def holds(a: Any) -> bool:
        return isinstance(a, jax.Array) or (type(a) is dict and any(map(holds, a.values()))) or (
            isinstance(a, (tuple, list)) and any(map(holds, a)))

    def host(a: Any) -> Any:  # (a container is rebuilt only around a jax.Array: f may append to a list it gets)
        if isinstance(a, jax.Array):
            return np.asarray(a)
        if not holds(a):
            return a
        if type(a) is dict:
            return {k: host(v) for k, v in a.items()}
        if type(a) in (tuple, list):
            return type(a)(map(host, a))
        if isinstance(a, tuple) and hasattr(type(a), "_fields"):  # (a namedtuple)
            return type(a)(*map(host, a))
        return a  # (another container's type: f gets it as it is, and it stays a constant)

    args = tuple(a if i in differentiated or type(a) in _HOST else host(a) for i, a in enumerate(args))
    return args, {k: host(a) for k, a in kwargs.items()} if kwargs else kwargs


#: what a call that skipped ``f`` returns where ``f`` must run after all (see ``_Once.domain``)
class _Missed:
    """What a skipping call returns where it did not compute the Jacobian (see ``run_once``)."""


_RUN_F = _Missed()  # f runs (traced)
_UNFIT = _Missed()  # the arguments not differentiated are other ones than the structure's
_STALE = _Missed()  # what f reads changed since the structure was kept
_NO_ERRSTATE = contextlib.nullcontext()


@functools.cache
def _jax_identity() -> Callable:
    import jax

    return jax.jit(lambda xs: xs)


def _on_device(result: Any) -> Any:
    """A result computed on the host, as ``jax.Array`` values (the same nesting). A jitted identity
    moves all blocks in one call: ``jax.device_put`` costs 5–10× more (µs per block)."""
    import jax

    leaves, tree = jax.tree_util.tree_flatten(result)
    return jax.tree_util.tree_unflatten(tree, _jax_identity()(tuple(leaves)))


#: times in a row a structure's reads are watched without being confirmed before its calls stop
#: trying to skip ``f`` (its globals change at every call, as in a loop that updates a closed-over array)
WATCHES = 3


class _DataWritten(UnsupportedOperationError):
    """``f`` changed a data argument in place: NumPy would change the caller's array, which a
    traced input does not (the argument stays a constant, see :class:`_DataArgs`)."""


def _fingerprint(a: Any) -> tuple:
    """What tells whether a data candidate changed between traced calls: its :func:`_kind`, then
    its value, a float's bits (as hex) or a checksum of an array's bytes (a collision only keeps the
    data constant a call longer); for a container (a batch ``(X, y)``) its leaves' values."""
    if type(a) is np.ndarray:
        return _kind(a) + (zlib.crc32(a if a.flags.c_contiguous else a.tobytes()),)
    if isinstance(a, (dict, tuple, list)):
        leaves, spec = pytrees.flatten(a)
        parts = [_fingerprint(leaf) for leaf in leaves]
        return spec, tuple(p[:2] for p in parts), tuple(p[2] for p in parts)
    return _kind(a) + (float(a).hex(),)  # (NaN is itself; -0.0 is not 0.0)


def _kind(a: Any) -> tuple:
    """A data candidate's kind, :func:`_fingerprint` less the value: an array's dtype and shape (a
    program traced with float64 data ran float32 or int64 data of its shape, and missed what f does
    with them: a branch on the dtype, float32 rounding, int64 wrapping), a container's nesting and
    its leaves' kinds. A Python float and an np.float64 are one kind (solve_ivp passes both as t:
    a kind that alternated kept the data constant, then f traced for good)."""
    if type(a) is np.ndarray:
        return (np.ndarray, a.dtype), a.shape
    if isinstance(a, (dict, tuple, list)):
        leaves, spec = pytrees.flatten(a)
        return spec, tuple(map(_kind, leaves))
    return (float if type(a) is np.float64 else type(a)), ()


def _dtypes(kind: tuple) -> tuple:
    """A data candidate's :func:`_kind` without its shapes: whether it is 0-d, its dtype, its
    nesting."""
    if isinstance(kind[0], pytrees.TreeSpec):
        return kind[0], tuple(map(_dtypes, kind[1]))
    return kind[0], not kind[1]


#: calls of a structure taking its data as inputs that all traced ``f`` after which it keeps them
#: constants again (a trace whose constants change with the data, as SciPy's convolutions anchored
#: at their values: the smaller graph with the data constant traces faster)
DATA_TRACES = 4

#: integer data (labels) is traced as floats only while its values are below this in magnitude
_INT_DATA = int(INT_DATA_BOUND)
#: integer dtypes data may have: int64, and narrower ones that the trace only moves, compares and
#: indexes with (int32 labels from JAX, uint8 class maps: NumPy's arithmetic in them wraps; Tape.narrow)
_INT_DATA_TYPES = frozenset(map(np.dtype, (np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint16, np.uint8)))

#: calls within which building long C code for a structure taking data must pay, by the estimates
#: (its build at ccode.BUILD_SECONDS_PER_LINE against the program's time saved per call)
REPEAT_PAYOFF = 10_000

#: new structures (each call replaying a cached one counts one less) after which ``auto`` plans the
#: next ones as the likelier cheaper of forward and reverse mode, without the scalar route, and runs
#: them on the executor (lowered only at a second call): calls whose indices change with the data
#: (``E[idx]``, ``logp[np.arange(n), y]``) are a new structure each, and ``auto``'s search with the
#: scalar route's took 70 ms a call for a 10 × 4 embedding (JAX: 21 µs); ``sorted(x)`` of a traced
#: 4-vector is one of 24 structures, of which a shape keeps 8: a hit between misses had reset the
#: count, and every new order was searched and lowered (30 ms a call; hunt BD)
CHURN_MISSES = 4

#: argument shapes (cache keys) one jacobian keeps structures for: called in turn with more, every
#: call plans anew (least recently used first out). A structure holds 0.3-0.6 MB besides the
#: arrays it shares (the suite's MLP, RoeFlux, GP); 32 shapes made a loop over 33 sequence
#: lengths plan at every call
CACHED_SHAPES = 128

#: array copies that guards of one jacobian's structures share, at most (see ``judge`` in jacobian)
SHARED_SNAPSHOTS = 64

#: the least planning time a structure taking data as inputs gets (see ``with_data`` in jacobian)
DATA_PLANNING = 0.05


def _same_values(a: list, b: list) -> bool:
    """Whether ``f``'s outputs ``a`` (run plainly) are the traced ones ``b`` (to rounding)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            return False
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-9, atol=1e-12 * float(np.max(np.abs(
                np.nan_to_num(y)), initial=1.0)), equal_nan=True):
            return False
    return True


class _DataArgs:
    """Arguments not differentiated that change from call to call (a batch, a time series, a
    model's other layers, the time of an ODE's right-hand side): float arrays of the Jacobian's
    dtype (0-d ones too), int64 arrays below :data:`_INT_DATA` (class labels, traced as floats: one
    used as an index, ``E[idx]``, a divisor or exponent, or whose dtype ``f`` reads stays a
    constant: ``jacc.trace.Tape.ints``; narrower integer arrays too, where ``f`` only moves,
    compares and indexes with them: ``Tape.narrow``), boolean arrays (masks: traced as recorded masks,
    :func:`jacc.masks.data_mask`, so ``m1 + m2`` is their OR as in NumPy) and, for float64,
    Python and NumPy floats; containers of these (a batch
    ``(X, y)``, taken apart as differentiated arguments are); by position or by keyword (slots:
    positions, then keyword names). A structure's traced call that finds such an argument changed
    since its last traced call (the same shape) makes its calls run a Jacobian of their own
    (``make(n, slots, keyword order)``) that traces them as inputs that are not
    differentiated: its program then runs on their new values without tracing ``f``, as
    ``jax.jit`` takes every array argument. Where that trace fails, depends on their values or
    writes into them, the structure keeps them as constants (``by_key`` says why)."""

    def __init__(self, make: Callable[[int, tuple], Callable], dtype):
        self.make, self.dtype = make, dtype
        self.floats = dtype == np.float64
        self.seen: dict[Any, tuple] = {}  # key -> (positions, their fingerprints at the last traced call)
        self.by_key: dict[Any, Any] = {}  # key -> the Jacobian taking them as inputs, or why not

    def _data(self, a: Any) -> bool:
        if type(a) is np.ndarray:  # (integers below 2**31: Tape.record keeps their results below 2**53)
            return a.size > 0 and (a.dtype == self.dtype or (self.floats and a.dtype == np.float32) or (
                a.dtype == bool and a.ndim > 0) or (
                a.dtype in _INT_DATA_TYPES and -_INT_DATA < a.min() and a.max() < _INT_DATA))
        if type(a) is float or type(a) is np.float64:
            return self.floats
        # a container of such (a batch (X, y), a dict of series), taken apart as differentiated
        # arguments are (jacc.pytrees: a tuple of floats alone is one array to NumPy, so not one)
        if isinstance(a, dict):
            return bool(a) and all(map(self._data, a.values()))
        return isinstance(a, (tuple, list)) and all(map(self._data, a)) and pytrees.is_node(a)

    def candidates(self, args, kwargs, nums) -> tuple:
        """The arguments not differentiated that may be data: positions, then keyword names."""
        found = tuple(i for i, a in enumerate(args) if i not in nums and self._data(a))
        return found + tuple(k for k, a in kwargs.items() if self._data(a)) if kwargs else found

    def takes(self, inner: Callable, args, kwargs) -> bool:
        """Whether ``inner`` (a Jacobian taking data) takes this call's: data of the dtypes it was
        made for, of any shape (an epoch's last, partial batch: ``inner`` plans a structure for
        it as for any new shape, where the batch was a constant of each call's own structure)."""
        try:
            return all(self._data(a) and _dtypes(_kind(a)) == k for a, k in zip(
                [_slot(args, kwargs, s) for s in inner.data], inner.kinds))
        except (IndexError, KeyError):
            return False

    def switch(self, key, args, kwargs, nums) -> Callable | None:
        """The Jacobian for ``key``'s calls from now on, where this traced call's data changed
        since the last one's (see :meth:`note`)."""
        last = self.seen.get(key)
        if last is None or key in self.by_key:
            return None
        slots = last[0]
        if self.candidates(args, kwargs, nums) != slots:
            return None
        now = [_fingerprint(_slot(args, kwargs, s)) for s in slots]
        if now == last[1] or any(a[:2] != b[:2] for a, b in zip(now, last[1])):  # (unchanged, or another kind)
            return None
        del self.seen[key]
        if len(self.by_key) >= CACHED_SHAPES:
            self.by_key.pop(next(iter(self.by_key)))
        inner = self.by_key[key] = self.make(len(args), slots, tuple(kwargs))
        inner.first, inner.calls, inner.kinds = True, 0, [_dtypes(p[:2]) for p in now]
        return inner

    def note(self, key, args, kwargs, nums) -> None:
        """Keep a traced call's candidates' fingerprints for the next traced call to compare."""
        if key in self.by_key:
            return
        slots = self.candidates(args, kwargs, nums)
        if slots:
            if len(self.seen) >= CACHED_SHAPES and key not in self.seen:
                self.seen.pop(next(iter(self.seen)))
            self.seen[key] = (slots, [_fingerprint(_slot(args, kwargs, s)) for s in slots])


class _Shared(collections.abc.Mapping):
    """Read-only copies of a caller's arrays that one jacobian's structures share, by the array's
    id, as ``{id: (array, copy)}`` (:attr:`jacc.trace.Tape.copies`), held weakly: this keeps
    neither alive (a changing argument that stays a constant would keep its calls' arrays)."""

    def __init__(self):
        self.pairs: dict[int, tuple] = {}

    def __getitem__(self, key: int) -> tuple:
        a, copy = (ref() for ref in self.pairs[key])
        if a is None or copy is None:
            del self.pairs[key]
            raise KeyError(key)
        return a, copy

    def __iter__(self):
        return iter(list(self.pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def add(self, pairs) -> None:
        for key, (a, copy) in pairs:
            self.pairs.pop(key, None)  # (the newest last: the oldest go first)
            self.pairs[key] = (weakref.ref(a), weakref.ref(copy))
        while len(self.pairs) > SHARED_SNAPSHOTS:
            self.pairs.pop(next(iter(self.pairs)))


def _slot(args, kwargs, s: int | str) -> Any:
    """The argument at position ``s``, or the keyword argument ``s``."""
    return kwargs[s] if type(s) is str else args[s]


def _keywords_last(f: Callable, n: int, keys: tuple, order: tuple, *args, **kwargs) -> Any:
    """``f`` called with ``args[:n]`` by position and ``args[n:]`` as the keyword arguments
    ``keys``, all keyword arguments in the call's ``order`` (``f(**kw)`` sees it): a function whose
    keyword data arguments are positions, so that a trace can take them as inputs."""
    given = dict(zip(keys, args[n:]))
    return f(*args[:n], **{k: given[k] if k in given else kwargs[k] for k in order})


def _keywords_as_positions(f: Callable, n: int, keys: tuple, order: tuple) -> Callable:
    """:func:`_keywords_last` for ``f``: its signature names the positions after the first ``n``
    by their keywords (the graph's inputs; ``keyword_of`` maps such a name back to its keyword),
    and ``__wrapped__`` is ``f`` (what a trace of it learns is ``f``'s: jacc.trace.code_key)."""
    g = functools.partial(_keywords_last, f, n, keys, order)
    names = _param_names(f, n)

    def fresh(name: str) -> str:  # (f(x, /, **kw) called with x=…; **{"a-b": …}; made-up names)
        name = re.sub(r"\W", "_", name)
        name = name if name.isidentifier() and not keyword.iskeyword(name) else "_" + name
        while name in names:
            name += "_"
        names.append(name)
        return name
    named = {fresh(k): k for k in keys}
    P = inspect.Parameter
    g.__signature__ = inspect.Signature([P(x, P.POSITIONAL_ONLY) for x in names]
                                        + [P(fresh("kwargs"), P.VAR_KEYWORD)])
    g.__wrapped__ = f

    def keyword_of(name: str) -> str:
        """The keyword argument (and the leaf of it) an input's name stands for."""
        base = re.match(r"[^\[.]*", name).group()
        return named[base] + name[len(base):] if base in named else name
    g.keyword_of = keyword_of
    return g


def _raised(e: Exception) -> str:
    """Why a data trace failed, from its error: the tracer's advice on keeping a derivative
    (``float(x) would turn it into a constant, so its derivative would be lost; …``) cut off, as
    data has none."""
    what = str(e)
    if isinstance(e, UnsupportedOperationError) and ", so its derivative would be lost" in what:
        what = what.split(" would turn it into a constant", 1)[0] + " (the data stays a constant for it)"
    # (indexing with the data, E[idx]: the list of supported functions says nothing of that)
    what = what.split(". Supported NumPy functions: ", 1)[0]
    return f"f raised {type(e).__name__}: {what}"


def _differentiated_copied(args: tuple, nums) -> list:
    """``args`` with each differentiated argument's array leaves copied: ``f`` run plainly on them
    may write into them, as into the trace's own arrays, and the caller's must keep their values."""
    out, n = list(args), len(args)
    for i, a in enumerate(args):
        if i in nums or i - n in nums:
            leaves, spec = pytrees.flatten(a)
            out[i] = pytrees.unflatten(spec, [x.copy() if isinstance(x, np.ndarray) else x for x in leaves])
    return out


def _same_name(name: str) -> str:
    return name


class _Once:
    """``retrace=False``: a compiled function of the differentiated arguments alone (the primal
    included), valid while the other arguments equal the traced ones."""

    def __init__(self, entry: Entry, nums: tuple, others: dict, kw: dict, run: Callable, kind: str, program,
                 convert: Callable | None, single: bool, assemble: Callable | None = None, outputs: bool = False):
        self.entry, self.nums, self.others, self.kw = entry, nums, others, kw
        self.run, self._kind, self.program = run, kind, program
        self.plan = entry.runner.unrolled.plan if entry.runner.unrolled is not None else entry.plan
        dt = entry.runner.dtype
        # how arguments are passed: floats (scalar graphs), lists of floats (unrolled), arrays
        # (float64 ones for unrolled C code that takes them: Unrolled.takes_arrays)
        u = entry.runner.unrolled
        arrays = u is not None and run == u.run_arrays
        self.unrolled = u is not None and not arrays
        self.floats = entry.runner.fast is not None  # (as floats or as C)
        dt_in = np.float64 if arrays else dt
        self.cast = float if self.floats else float_list if self.unrolled else (lambda a: np.asarray(a, dtype=dt_in))
        self.assemble = assemble or _assembler(entry.graph, single, convert, entry.plan.wrt)
        self.outputs = outputs  # value_and_jacobian: the outputs' values beside the blocks
        self.values: Callable | None = None  # the scalar routes' outputs as float code (see valued)
        if outputs:
            self.assemble = _with_value(entry.graph, self.assemble)
            self.values = _float_values(entry)
        # the leaves checked for non-finite values: all but data arguments' (the last ones, see _DataArgs)
        self.checked = len(entry.plan.wrt) if len(entry.plan.wrt) < len(entry.graph.inputs) else None
        self.nested = entry.graph.meta.get("input_groups") is not None  # arguments passed as their leaves
        # f calls math functions, which raise outside their domains, or (under jax.jit, which cannot
        # raise, or as scalar code: Cramer's rule divides by a zero determinant) NumPy's linear algebra,
        # which raises at a singular matrix: a non-finite block runs f instead
        self.domain = bool(entry.graph.meta.get("math_domain")) or (
            kind in ("jax", "scalar", "c") and singular_ops(entry.graph))
        # the float code of a scalar route too long to build as C at the first call: built once the
        # calls of every structure sharing it have taken as long as the build would
        # (Unrolled.build_later, .spent), kept where faster
        self.tier = u if u is not None and not arrays and u.build_later else None
        # or the array program runs, and the scalar route's C is built once the calls have taken as
        # long as its build would (Runner.pending), kept where it measures faster than the program
        self.upgrade = False
        pending = entry.runner.pending
        if self.tier is None and u is None and program is not None and pending is not None and pending.build_later:
            self.tier, self.upgrade = pending, True
        # labels read through one-hot masks keep their bounds, else f runs and raises NumPy's
        # IndexError (jacc.numpy_api.gathers.gather_by_mask)
        self.bounds = _label_bounds(entry.graph)
        # (xs, check, domain) -> (blocks, arguments finite, blocks finite) on jax.Arrays, the blocks left on
        # JAX's device (JAX programs): see Program.run_on_device
        self.device: Callable | None = None
        self.guards: Guards | None = None  # by default: what f reads must hold (jacc.guards)
        # xs -> a function waiting for the blocks, the program's run dispatched (Program.start), or None
        self.start: Callable | None = None
        if program is not None and program.device is not None:
            inputs, g = entry.graph.inputs, entry.graph

            def device(xs, check, domain):
                return program.run_on_device(dict(zip(inputs, xs)), g, check, domain)
            self.device = device

    def leaves(self, args, device: bool = False) -> list:
        """The differentiated arguments' values in the graph's input order (``device``: the
        ``jax.Array`` values as they are, in the program's dtype)."""
        cast = self.cast
        if device:
            dt = self.entry.runner.dtype

            def cast(a):
                return a if a.dtype == dt else a.astype(dt)
        if self.nested:
            raw = [v for i in self.nums for v in pytrees.flatten(args[i])[0]]
        elif len(self.nums) == 1:  # (the common case, kept short: this runs on every skipping call)
            v = args[self.nums[0]]
            if type(v) is not float and (type(v) is not np.ndarray or v.dtype.kind not in "fiu"):
                self.refuse_unreal([v])
            return [cast(v)]
        else:
            raw = [args[i] for i in self.nums]
        self.refuse_unreal(raw)
        return [cast(v) for v in raw]

    def refuse_unreal(self, raw: list) -> None:
        """Refuse, as a traced call would, an argument that is no real number or array (a cast
        would drop an imaginary part, or read booleans as numbers)."""
        for name, v in zip(self.entry.graph.inputs, raw):
            if type(v) is not float and (type(v) is not np.ndarray or v.dtype.kind not in "fiu") and not (
                    type(v) is np.ndarray and v.dtype == bool and name not in self.entry.plan.wrt):  # (masks as data)
                refuse_enclosing(v, f"argument {name!r}")
                check_plain(v, f"argument {name!r}")
                kind = getattr(v, "dtype", None)  # (a jax.Array's, without a copy)
                try:
                    kind = np.asarray(v).dtype if kind is None else np.dtype(kind)
                except TypeError:  # a torch.dtype, say: NumPy's reading of the value says
                    kind = np.asarray(v).dtype
                check_real(kind, f"argument {name!r}")

    def result(self, found: dict, xs: list, device: bool = False) -> Any:
        """The call's result from the route's blocks ``found`` at the arguments ``xs`` (with the
        outputs' values for :func:`value_and_jacobian`; ``device``: as ``jax.Array`` values)."""
        if self.outputs and (self.entry.graph.outputs[0], None) not in found:
            found = self.valued(found, xs)
            if device:
                found = {k: _on_device(v) if k[1] is None else v for k, v in found.items()}
        return self.assemble(found)

    def valued(self, found: dict, xs: list) -> dict:
        """``found`` with the outputs' values at ``xs``: by the float code of the scalar routes
        (whose Jacobian code computes none), else (or outside ``math``'s domains, where NumPy
        gives NaN or inf) by the graph evaluated in NumPy."""
        if self.values is not None:
            try:
                return {**found, **self.values(xs)}
            except FALLBACK:
                pass
        graph, dt = self.entry.graph, self.entry.runner.dtype
        given = {x: np.asarray(a, dtype=dt).reshape(graph.shape(x)) for x, a in zip(graph.inputs, xs)}
        return _valued(found, graph, graph.evaluate(given, dt), dt)

    def to_c(self, u, xs: list, took: float) -> dict | None:
        """The scalar route ``u`` built as C (at ``-O0``) in place of the array program that took
        ``took`` seconds a call, where it measures faster (:data:`jacc.ccode.MARGIN`): from this
        call on, for this structure's calls, traced or not; its blocks at ``xs``, or None."""
        from . import ccode
        from .compile import CompileError
        from .program import BackendError
        from .unroll import best_time, float_list

        try:
            u.use_c(ccode.MAX_LINES, quick=True)
        except (CompileError, BackendError):
            return None
        if u.native is None:
            return None
        native, cast = (u.run_arrays, lambda a: np.asarray(a, dtype=np.float64)) if u.takes_arrays() else (
            u.run_lists, float_list)

        def run(xs: list) -> dict:  # (the program's arguments, as other threads may hold them: cast here)
            return native([cast(x) for x in xs])
        if best_time(lambda: run(xs)) >= ccode.MARGIN * took:
            u.native = None
            return None
        self.domain = self.domain or bool(singular_ops(self.entry.graph))
        self.plan, self.values = u.plan, _float_values(self.entry) if self.outputs else None
        self.run, self.program, self._kind, self.start = run, None, "c", None
        self.entry.runner.unrolled, self.entry.runner.pending = u, None
        return run(xs)

    @classmethod
    def make(cls, entry: Entry, args, kwargs, nums, single: bool, copies=None,
             outputs: bool = False) -> "_Once | None":
        r, g = entry.runner, entry.graph
        assemble = None
        if r.unrolled is not None:  # scalar-level code of the array arguments (jacc.unroll)
            run = r.unrolled.run_arrays if r.unrolled.takes_arrays() else r.unrolled.run_lists
            kind, program, convert = r.kind, None, None
        elif r.fast is not None:  # scalar code evaluates the primal itself
            run, assemble = _scalar_run(entry, single, outputs)
            kind, program, convert = r.kind, None, np.asarray  # floats to fresh 0-d arrays
        elif r.program and r.program.primal:  # lowered with the primal (Runner(primal=True))
            program = r.program
            inputs = g.inputs

            def run(xs, program=program):
                return program.run(dict(zip(inputs, xs)), g)

            def start(xs, program=program):
                return program.start(dict(zip(inputs, xs)), g)
            kind, convert = program.backend, None  # Program.run returns the caller's blocks
        else:
            return None
        others = {i: snapshot(a, copies) for i, a in enumerate(args) if i not in nums}  # (copies: the trace's)
        kw = {k: snapshot(v, copies) for k, v in kwargs.items()}
        made = cls(entry, nums, others, kw, run, kind, program, convert, single, assemble, outputs)
        if program is not None and getattr(program.fn, "start", None) is not None:
            made.start = start
        made.direct = tuple(nums) == tuple(range(len(args)))  # every argument differentiated, in order
        return made

    @property
    def kind(self) -> str:
        """What runs (``jf.ran``): the scalar route's code may have been built as C since."""
        u = self.entry.runner.unrolled
        return "c" if u is not None and u.native is not None else self._kind

    def run_tiered(self, xs: list) -> Any:
        """:attr:`run`, timed; once the calls have taken as long as building their code as C would,
        that code is built (at ``-O0``, in this call) and kept where it measures faster."""
        u = self.tier
        later = None if u is None else u.build_later  # (read once: another thread may build meanwhile)
        if later is None:  # (tried by another structure sharing the code: C or floats for good)
            self.tier = None
            return self.run(xs)
        t0 = time.perf_counter()
        found = self.run(xs)
        u.spent += time.perf_counter() - t0
        if u.spent >= later:
            with _TIER_LOCK:  # (one thread builds; hunt BL: two raced here, one raised TypeError)
                if u.build_later is None:
                    return found
                u.build_later, self.tier = None, None  # (once, whatever comes of it)
            from . import ccode
            from .compile import CompileError
            from .program import BackendError
            from .unroll import best_time

            took = best_time(lambda: self.run(xs))
            if self.upgrade:
                return self.to_c(u, xs, took) or found
            _kept_if_faster(u, xs, took, lambda: u.use_c(ccode.MAX_LINES, quick=True), "native",
                            (CompileError, BackendError), ccode.MARGIN)
            if u.native is not None:
                if u.takes_arrays():  # (long inputs reach C as arrays: see Unrolled.takes_arrays)
                    self.run, self.unrolled = u.run_arrays, False
                    self.cast = lambda a: np.asarray(a, dtype=np.float64)
                    xs = [self.cast(x) for x in xs]
                found = self.run(xs)  # (this call's result is C's, as jf.ran says)
        return found

    def unfit(self, args, kwargs) -> _Missed | None:
        """``_UNFIT`` where the arguments not differentiated are not the structure's, ``_STALE``
        where what ``f`` reads changed, else None."""
        if not self.fits(args, kwargs):
            return _UNFIT
        return _STALE if self.stale() else None

    def stale(self) -> bool:
        """Whether what ``f`` reads changed since its guards were confirmed (no guards: never)."""
        return self.guards is not None and not self.guards.hold()

    def fits(self, args, kwargs) -> bool:
        if not (self.others or self.kw):
            return True
        return (all(same(args[i], b) for i, b in self.others.items())
                and all(same(kwargs[k], b) for k, b in self.kw.items()))

    def refuse_nonfinite(self, xs: list, nonfinite: str) -> None:
        """Raise (or warn, per ``nonfinite``) naming the first argument in ``xs`` that is not finite."""
        for name, x in zip(self.entry.plan.wrt, xs):
            _check_finite(name, np.asarray(x, dtype=float), nonfinite, self.entry.runner.dtype)

    def finite(self, xs: list) -> bool:
        """True when every differentiated argument is finite (cheap for the scalar kind: floats)."""
        if self.checked is not None:
            xs = xs[:self.checked]
        if self.floats:
            return all(map(math.isfinite, xs))
        if self.unrolled:  # a finite sum means finite terms; an overflowing one checks each
            for x in xs:
                if not (math.isfinite(sum(x)) or all(map(math.isfinite, x))):
                    return False
            return True
        return all(map(finite_array, xs))


class _Labels:
    """The labels a structure reads through one-hot masks (``graph.meta["index_bounds"]``: the
    steps computing each from integer data, its vertex, its least label allowed (−n, or 0 for
    ``np.bincount``) and its axis's length n), checked at a call that skips ``f``: lowest <= y < n,
    else ``f`` runs and raises NumPy's ``IndexError`` (or gives a longer bincount)."""

    def __init__(self, graph: Graph, found: list):
        self.checks = found
        names = {a for steps, *_ in found for _, _, args, _ in steps for a in args if isinstance(a, str)}
        names |= {t for _, t, *_ in found}
        self.inputs = [(graph.inputs.index(x), x, graph.shape(x)) for x in graph.inputs if x in names]

    def within(self, xs: list) -> bool:
        """Whether the labels that ``xs`` (the program's inputs) give keep their bounds."""
        env = {}
        for i, name, shape in self.inputs:
            v = xs[i]
            env[name] = np.asarray(v, dtype=np.float64).reshape(shape) if type(v) is list else np.asarray(v)
        for steps, t, lowest, n in self.checks:
            for name, op, args, params in steps:
                if name not in env:
                    env[name] = OPS[op].evaluate([env[a] if isinstance(a, str) else a for a in args], params)
            y = env[t]
            if y.size and not (lowest <= y.min() and y.max() < n):
                return False
        return True


def _value_dependence(graph: Graph) -> str:
    """Why ``graph``'s calls trace every time, naming where its trace first read a value.

    >>> g = Graph(); g.meta["value_dependent"] = ["comparison '>' at f.py:3", "comparison '>' at f.py:3"]
    >>> _value_dependence(g)
    "its trace depends on values (comparison '>' at f.py:3)"
    """
    found = list(dict.fromkeys(graph.meta.get("value_dependent", ())))  # (a loop notes one place many times)
    more = f", and {len(found) - 1} more" if len(found) > 1 else ""
    return f"its trace depends on values ({found[0]}{more})" if found else "its trace depends on values"


def _label_bounds(graph: Graph) -> _Labels | None:
    found = graph.meta.get("index_bounds")
    return _Labels(graph, found) if found else None


def _finite_result(out: Any) -> bool:
    """Whether every block of an assembled Jacobian (a pytree of arrays, sparse or JAX blocks) is finite."""
    return finite_blocks(pytrees.flatten(out, lambda x: isinstance(x, (dict, tuple, list)))[0])


def _scalar_run(entry: Entry, single: bool, general: bool = False) -> tuple[Callable, Callable | None]:
    """``(run, assemble)`` for an all-scalar graph traced once: where the result is the
    Jacobian's entries in :func:`~jacc.compile.flat`'s order (one output), ``run`` returns that
    tuple of floats and ``assemble`` makes each a 0-d array — no dict per call (on the lecture's
    example that is a third of the whole call); else (or where ``general``) the dict-returning
    code and None."""
    from .compile import flat

    fast, graph = entry.runner.fast, entry.graph
    raw, keys = fast.raw, fast.flat_keys
    wanted = [(y, x) for y in graph.outputs for x in entry.plan.wrt]
    if general or graph.meta.get("output_tuple") or graph.meta.get("input_groups") or len(graph.outputs) != 1 \
            or keys != wanted or (single and len(keys) != 1):  # (nested: the general assembler)
        def run(xs):
            try:
                return raw(*xs)
            except FALLBACK:  # a math domain error: NumPy's semantics via the wrapper
                return fast(*xs)
        return run, None
    code = flat(fast)

    def run_flat(xs):
        try:
            return code(*xs)
        except FALLBACK:
            d = fast(*xs)
            return tuple([d[k] for k in keys])
    asarray = np.asarray
    return run_flat, ((lambda v: asarray(v[0])) if single else (lambda v: tuple(map(asarray, v))))


def check_fits(plan, graph: Graph, sparse: bool, limit: int | None, cli: bool = False) -> None:
    """Refuse a plan before any of it is allocated when it does not fit: the dense Jacobian it
    returns (unless ``sparse``) against ``limit`` (the caller's ``memory_limit``, which already
    bounds the plan's own peak) or else the memory the machine has available, then the plan's
    predicted peak against the latter, naming its largest local partial. ``cli``: the fixes named
    are ``jacc run``'s options. Values take the plan's cost model's ``value_bytes`` each."""
    free = costmodel.available_memory() if limit is None else limit
    who = "jacc run" if cli else "jacobian"
    if free is None:
        return
    where = (f"the memory_limit of {human_bytes(free)}" if limit is not None
             else f"the {human_bytes(free)} this machine has available")
    item = plan.cost_model.value_bytes
    size = {x: math.prod(graph.shape(x)) for x in (*plan.problem.wrt, *plan.problem.of)}
    blocks = [(size[y] * size[x] * item, y, x) for y in plan.problem.of for x in plan.problem.wrt]
    whole = sum(b for b, _, _ in blocks)
    full = sum(_csr_bytes(size[y] * size[x], size[y], item) for y in plan.problem.of for x in plan.problem.wrt)
    if sparse and full > free:  # (else even a CSR result holding every entry fits)
        need, (nbytes, y, x, stored) = _sparse_bytes(plan, item)
        if need > free:
            out = f"output {graph.outputs.index(y)}" if y in graph.outputs else y
            dense = (f"pass sparse=False (its dense arrays take {human_bytes(whole)})" if whole <= free
                     else "differentiate smaller inputs or outputs, or a scalar function of them")
            raise MemoryLimitError(
                f"{who}: even as sparse matrices the Jacobian takes at least {human_bytes(need)} (CSR: {item + 4} "
                f"bytes per stored entry), more than {where}, so it was not computed (the block of {out} w.r.t. {x}: "
                f"{stored:,} stored entries of {size[y] * size[x]:,}, {human_bytes(nbytes)}); {dense}")
    elif whole > free:
        nbytes, y, x = max(blocks)
        out = f"output {graph.outputs.index(y)}" if y in graph.outputs else y
        raise MemoryLimitError(
            f"{who}: the Jacobian itself takes {human_bytes(whole)} as dense arrays, more than {where}, so "
            f"it was not computed (the block of {out}, shape {graph.shape(y)}, w.r.t. {x}, shape "
            f"{graph.shape(x)}: {size[y]:,} × {size[x]:,} entries, {human_bytes(nbytes)}). "
            + ("Differentiate fewer inputs or outputs (--wrt, --of), or raise --memory-limit" if cli else
               "Pass sparse=True if the Jacobian is sparse, or differentiate smaller inputs or outputs, or a "
               "scalar function of them"))
    peak = getattr(plan, "peak_bytes", None)  # (edge and face plans price multiplications alone)
    if limit is not None or peak is None or plan.cost_model.held(peak) <= free:
        return
    edges = plan.problem.symbolic_edges()  # the plan's own partials (not a pruned branch's)
    u, v = max(plan.problem.edges, key=lambda e: edges[e].nbytes)
    j, held = edges[u, v], plan.cost_model.held
    raise MemoryLimitError(
        f"{who}: this plan's Jacobians need {human_bytes(held(peak))} at their peak, more than {where}, "
        f"so it was not run; the largest local partial is ∂{v}/∂{u} ({graph.op(v)}: {j.describe()}, "
        f"{human_bytes(held(j.nbytes))}). Pass {'--memory-limit' if cli else 'memory_limit='} (bytes) to search for an "
        "order within a budget, or differentiate smaller inputs or outputs")


def _csr_bytes(entries: int, rows: int, item: int = 8) -> int:
    """A CSR matrix's bytes: an ``item``-byte value and a 4-byte column index per entry, 4 bytes per row pointer."""
    return (item + 4) * entries + 4 * (rows + 1)


def _sparse_bytes(plan, item: int = 8) -> tuple[int, tuple]:
    """The bytes of ``plan``'s result as CSR matrices (:func:`_csr_bytes`), from its final edges as
    pricing sees them (:func:`jacc.sparse.stored_entries`), and the largest block as (bytes,
    output, input, stored entries)."""
    from .sparse import stored_entries
    from .structure import Jac

    problem = plan.problem
    e = problem.eliminator()
    with budget.lifted():  # the plan's own pricing, once more
        for v in plan.order:
            e.eliminate(v)
    blocks = []
    for y in problem.of:
        rows = math.prod(plan.graph.shape(y))
        for x in problem.wrt:
            j = e.edge(x, problem.out_key[y])
            # (a graph of scalars prices its edges as small ints: an edge is its block's one entry)
            stored = 0 if j is None else stored_entries(j) if isinstance(j, Jac) else 1
            blocks.append((_csr_bytes(stored, rows, item), y, x, stored))
    return sum(b[0] for b in blocks), max(blocks, key=lambda b: b[0])


def _scalar_compiled(plan):
    from .compile import CompileError

    try:
        return plan.compile("scalar")
    except CompileError:
        return None


_TIER_LOCK = locks.lock()  # (a structure's later C build, decided by one thread; fresh in a forked child)
#: float code measured slower than the array program is worth a later C build where it takes less than
#: this many times the program (C runs such code 10–30× faster than Python floats)
C_SPEEDUP = 8


def _build_seconds(u, built_now: int) -> float | None:
    """About how long a quick C build of the scalar route ``u``'s code takes, where it is longer than
    the ``built_now`` lines a first call builds and at most :data:`jacc.ccode.MAX_LINES`; else None."""
    from . import ccode

    lines = ccode.code_lines(u.compiled)
    return lines * ccode.BUILD_SECONDS_PER_LINE if built_now < lines <= ccode.MAX_LINES else None


def _kept_if_faster(u, xs: list, took: float, use: Callable, attr: str, errors, margin: float = 1.0) -> float:
    """Give the scalar route ``u`` its other form (``use()`` sets ``u.<attr>``) and keep it where
    it measures faster than ``margin × took`` (best of three calls); the time that runs now."""
    from .unroll import best_time

    try:
        use()
    except errors:
        return took
    if getattr(u, attr) is None:
        return took
    t = best_time(lambda: u(xs))
    if t < margin * took:
        return t
    setattr(u, attr, None)
    return took


def _call_seconds(program, values: dict, graph: Graph, repeats: int = 1) -> float:
    """The best of ``repeats`` timed runs of ``program`` (what :meth:`Runner.plain_if_faster` weighs)."""
    from .unroll import best_time

    return best_time(lambda: program.run(values, graph), repeats)


class Runner:
    """How an entry's plan runs, decided at its first call (lowering needs values): the scalar
    straight-line function, a :class:`~jacc.program.Program`, or the interpreted executor."""

    def __init__(self, backend: str, dtype, sparse: bool = False, primal: bool = False, unroll: bool = True,
                 outputs: bool = False):
        # primal: the program also evaluates the graph, so retrace=False (or a call that skips f)
        # can run it on arguments alone; such calls repeat, so the float code may be built as C
        self.backend, self.dtype, self.sparse, self.primal = backend, dtype, sparse, primal
        self.outputs = outputs  # a program with the primal returns the outputs' values too (value_and_jacobian)
        self.fast: Callable | None = None  # scalar straight-line function
        self.fast_kind = "scalar"  # or "c": that code built by the C compiler (jacc.ccode)
        # unroll: may try that route (not for structures rebuilt with other constants: it would
        # plan again whenever they change)
        self.unroll = unroll and backend in ("auto", "jax", "torch", "c") and dtype == np.float64 and not sparse
        self.unroll_options: dict = {}  # the strategy's options for the scalar-level plan
        self.unroll_time: float | None = None  # and its planning time, at most
        self.unrolled: Any = None  # the scalar route of a small array graph (jacc.unroll)
        self.required: Any = None  # a scalar-level Plan given as the strategy: that route, untimed
        self.program: Any = None  # a Program, or False once lowering failed
        self.why = ""  # why the executor runs, when it does
        self.deferred = 0  # calls that ran the executor, leaving lowering to a later one (lower_later)
        # made because calls repeat with new data (see _DataArgs): the scalar route's code is built as
        # C past ccode.AUTO_LINES (quickly) where that pays within REPEAT_PAYOFF calls
        self.repeating = False
        self.churn = False  # made where structures do not repeat (CHURN_MISSES): lowered at a second call
        # the scalar route whose float code lost to the array program but whose C, too long to build
        # at the first call, is estimated to win: built once calls skipping f have taken that long
        self.pending: Any = None

    def lower_later(self, plan) -> bool:
        """Whether this call runs the executor and leaves lowering to a later call of the structure:
        a plan of :data:`LOWER_LATER_STEPS` steps or more under ``"auto"`` or ``"numpy"``, at its
        first call (a function called once does not pay for a program it never reuses), or at its
        first :data:`LOWER_LATER_CALLS_IF_VALUE_DEPENDENT` where its trace depends on values."""
        calls = LOWER_LATER_CALLS_IF_VALUE_DEPENDENT if plan.graph.meta.get("value_dependent") else 1
        if self.deferred >= calls or self.backend not in ("auto", "numpy") or (
                len(plan.steps) < LOWER_LATER_STEPS and not self.churn):
            return False
        self.deferred += 1
        self.why = (f"a plan of {len(plan.steps):,} steps runs the executor at its structure's first "
                    f"{'call' if calls == 1 else f'{calls} calls'}; the program is lowered at the next one")
        return True

    def prepare(self, plan, values, lower: bool = True, keep: bool = False) -> None:
        """The scalar function of an all-scalar plan, else (with ``lower``) the array program;
        a small array graph's is lowered in :meth:`try_unroll`, only if the scalar route needs it."""
        from .ccode import auto_c

        if self.backend in ("auto", "scalar", "c") and self.dtype == np.float64 and not self.sparse:
            self.fast = _scalar_compiled(plan)
            # C for a structure planned here (not one rebuilt for other constants: it would build
            # again whenever they change), under "auto" only for code traced once (calls repeat)
            if self.fast is not None and self.unroll and (
                    self.backend == "c" or (self.backend == "auto" and self.primal and auto_c())):
                self._floats_or_c(plan, values)
            if self.fast is not None or self.backend == "scalar":
                self.program = False
                self.why = "" if self.fast is not None else "not an all-scalar graph"
                return
        if self.backend == "interpret":
            self.program, self.why = False, "backend='interpret'"
            return
        g = plan.graph  # (under "jax" and "torch" an all-scalar plan's float code is weighed against
        if lower or (self.backend in ("jax", "torch") and not any(g.shape(v) for v in g.nx)):  # the program
            self.lower(plan, values, keep)

    def lower(self, plan, values, keep: bool = False) -> None:
        """The array program (or False, with :attr:`why`); ``keep``: see :func:`jacc.program.lower`."""
        from .lazy import LowerError
        from .program import BackendError, TooLongForXLA, lower
        from .unroll import JAX_MAX_LINES

        floats = self.backend in ("jax", "torch") and self.dtype == np.float64 and not self.sparse
        fast = _scalar_compiled(plan) if floats else None
        lines = 0 if fast is None else fast.source.count("\n")
        if self.backend == "jax" and lines > JAX_MAX_LINES:
            # XLA's compile time of straight-line scalar code grows faster than linearly: an adaptive
            # integrator's 2,401 scalar vertices compiled for over 200 s (the float code: 0.1 s)
            self.program = False
            self.why = (f"{lines:,} lines of scalar code: more than jax.jit compiles quickly "
                        f"({JAX_MAX_LINES:,}); the float code runs")
        else:
            backend = "numpy" if self.backend in ("auto", "scalar", "c") else self.backend
            for primal in dict.fromkeys((self.primal, False)):  # without the primal if it will not lower
                try:
                    try:
                        self.program = lower(plan, values, self.dtype, backend, self.sparse, primal, keep,
                                             self.outputs)
                    except TooLongForXLA as e:
                        self.program = lower(plan, values, self.dtype, "numpy", self.sparse, primal, keep,
                                             self.outputs)
                        self.why = str(e)
                    break
                except (LowerError, BackendError) as e:
                    self.program, self.why = False, str(e)
        if floats:
            self._program_or_floats(plan, values, fast)

    def _floats_or_c(self, plan, values) -> None:
        """An all-scalar plan's code built as C: always under ``backend="c"``; under ``"auto"``,
        ``"jax"`` and ``"torch"`` where the float code takes at least :data:`jacc.ccode.WORTH`, the code
        is at most :func:`_auto_c_lines` long and C measures clearly faster
        (:data:`~jacc.ccode.MARGIN`); code longer than :data:`~jacc.ccode.AUTO_O2_LINES` is then built
        quickly (``-O0``)."""
        from .ccode import MARGIN, MAX_LINES, WORTH, compile_native
        from .compile import CompileError
        from .program import BackendError
        from .unroll import best_time

        xs = [float(values[x]) for x in plan.graph.inputs]
        took = None
        if self.backend != "c":
            try:
                took = best_time(lambda: self.fast.raw(*xs))
            except FALLBACK:
                return
            if took < WORTH:
                return
        try:
            native = compile_native(plan, MAX_LINES if took is None else _auto_c_lines(plan.graph),
                                    quick=took is not None)
        except (CompileError, BackendError):  # a formula without a C twin, too long: the float code
            return
        if took is None or best_time(lambda: native(*xs)) < MARGIN * took:
            self.fast, self.fast_kind = native, "c"

    def _program_or_floats(self, plan, values, fast) -> None:
        """Under ``backend="jax"`` or ``"torch"``, an all-scalar plan runs as float code where that
        beats the program's call (a jitted call's dispatch alone costs several µs, a PyTorch op a
        few; best of three), and traced once that code as C where faster still (as under ``"auto"``)."""
        from .ccode import auto_c
        from .unroll import best_time

        if fast is None:  # (fast: the plan's float code, or None where it has none)
            return
        here = self.unroll  # (planned here, not rebuilt for other constants: C may be built)
        self.unroll = False  # the scalar route would be this float code again
        if self.program:
            xs = [values[x] for x in plan.graph.inputs]
            with np.errstate(all="ignore"):
                if best_time(lambda: fast(*xs)) >= best_time(lambda: self.program.run(values, plan.graph)):
                    return
        self.fast, self.program = fast, False
        if here and self.primal and auto_c():  # traced once: calls repeat, C may pay for its build
            self._floats_or_c(plan, values)

    def plain_if_faster(self, plan, values: dict, cost_model: CostModel):
        """Time the array program of ``plan`` (``auto``'s choice) against those of the plain reverse
        and forward orders and run the fastest where it takes at most :data:`PLAIN_MARGIN` of the
        planned program's time (best of three calls each). Only programs that are long for their
        plan (:data:`PLAIN_STATEMENTS`) or write many values for it (:data:`PLAIN_WRITES`), and
        not fast already (:data:`MEASURE_FROM`), are weighed. Returns the plan that now runs, or
        ``None`` where ``plan``'s program stays.

        The cost model counts multiplications and the values held at the peak, not the gathers and
        sums that move values without multiplying: an order that pushes ``2x`` through the prefix
        network of ``np.cumsum(x ** 2)`` over 1,000 numbers prices at 0 multiplications against
        reverse's 10⁶, yet runs 100× slower."""
        from .lazy import LowerError
        from .plan import build, choose
        from .program import BackendError, lower

        if not self.program or self.sparse or self.backend not in ("auto", "numpy"):
            return None
        result = sum(math.prod(plan.graph.shape(y)) * math.prod(plan.graph.shape(x))
                     for y in plan.graph.outputs for x in plan.wrt)
        if self.program.statements <= PLAIN_STATEMENTS * max(len(plan.steps), 1) \
                and self.program.written <= max(PLAIN_WRITES * (plan.mults + result), PLAIN_WRITES_FROM):
            return None
        t0 = time.perf_counter()
        graph = plan.graph
        took = _call_seconds(self.program, values, graph)
        if took < MEASURE_FROM:
            return None
        if took < MEASURE_ONCE_FROM:
            took = min(took, _call_seconds(self.program, values, graph, 2))
        timed = {plan.strategy: took}
        best = None
        for name in ("reverse", "forward"):
            order, name, info, optimal = choose(plan.problem, name, cost_model, {})
            if list(order) == list(plan.order):
                continue
            alt = build(plan.problem, order, name, cost_model, info, 0.0, optimal)
            # (never a plan priced far dearer, nor one that holds much more: forward on a wide graph)
            if alt.score > PLAIN_SCORE * plan.score or not cost_model.fits(alt.peak_bytes) \
                    or alt.peak_bytes > PLAIN_MEMORY * max(plan.peak_bytes, 1 << 20):
                continue
            try:
                program = lower(alt, values, self.dtype, "numpy", False, self.program.primal,
                                outputs=self.outputs)
            except (LowerError, BackendError):
                continue
            t = _call_seconds(program, values, graph)
            if t < min(took, MEASURE_ONCE_FROM):
                t = min(t, _call_seconds(program, values, graph, 2))
            timed[name] = t
            if t <= PLAIN_MARGIN * took and (best is None or t < best[0]):
                best = (t, alt, program)
        if best is None:
            return None
        t, alt, self.program = best
        per_call = ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in timed.items())
        note = f"{alt.strategy} ran fastest of the programs timed on the first call ({per_call} per call)"
        info = {**alt.info, "planned": f"{plan.strategy}: {plan.mults:,} mults, peak {human_bytes(plan.peak_bytes)}",
                "measured": note}
        return dataclasses.replace(alt, strategy=f"{plan.strategy.split('→')[0]}→{alt.strategy}", info=info,
                                   planning_seconds=plan.planning_seconds + time.perf_counter() - t0)

    def try_unroll(self, entry: "Entry", values: dict, strategy: Any, cost_model: CostModel) -> None:
        """Keep the scalar route (:mod:`jacc.unroll`) if it runs faster than the array program
        here (best of three calls each; a route estimated slower is not even planned): as floats,
        as C (``backend="c"``, or ``"auto"``, ``"jax"`` and ``"torch"`` traced once where C
        measures faster) or under
        ``jax.jit`` (``backend="jax"``, where faster)."""
        from . import ccode
        from .compile import CompileError
        from .program import BackendError
        from .unroll import best_time, unroll

        self.unroll = False
        if self.fast is not None:
            return
        graph, timed = entry.graph, []
        if self.required is not None:
            with np.errstate(all="ignore"):
                self.unrolled = unroll(graph, values, self.required, cost_model, wrt=entry.plan.wrt)
            if self.unrolled is None:
                raise OrderError(f"the scalar-level plan given as the strategy ({self.required.strategy}, "
                                 f"{len(self.required.order)} steps) does not fit this function's scalar-level "
                                 "graph: pass the .plan of a jacobian of the same function and argument shapes")
            return

        def beat() -> float | None:
            """The array program's time (lowered now if need be); None where it did not lower (the
            executor runs, slower than either)."""
            if not timed:
                if self.program is None:
                    self.lower(entry.plan, values)
                timed.append(best_time(lambda: self.program.run(values, graph)) if self.program else None)
            return timed[0]

        with np.errstate(all="ignore"):
            native = self.backend == "c"  # (no estimate: C runs the code ~30× faster than floats)
            # C where faster, traced once (calls repeat): the scalar route is host code on every backend
            may_c = self.backend in ("auto", "jax", "torch") and self.primal and ccode.auto_c()
            floor = _program_floor(entry.plan)
            c_lines = _auto_c_lines(graph)
            if self.repeating and may_c and beat() is not None:  # long code where its build pays within
                # REPEAT_PAYOFF calls, by the estimates: the RNN of 20 steps (213 µs a call as the
                # program) builds 5,700 lines; tanh(A @ x) of 30 with a new A (20 µs) builds none
                pays = beat() * REPEAT_PAYOFF / (ccode.BUILD_SECONDS_PER_LINE + REPEAT_PAYOFF * ccode.SECONDS_PER_LINE)
                c_lines = max(c_lines, min(ccode.MAX_LINES, int(pays)))
            u = unroll(graph, values, strategy, cost_model, beat=None if native else beat, floor=floor,
                       time_cap=self.unroll_time, per_line=ccode.SECONDS_PER_LINE if may_c else None,
                       c_lines=c_lines, wrt=entry.plan.wrt, **self.unroll_options)
            if u is None:
                return
            if native:
                try:
                    u.use_c()
                    self.unrolled = u
                    return
                except (CompileError, BackendError):  # a formula without a C twin, too long: as "auto"
                    pass
            xs = [values[x] for x in graph.inputs]
            took = best_time(lambda: u(xs))
            if may_c and took >= ccode.WORTH:  # C is kept where clearly faster (ccode.MARGIN)
                took = _kept_if_faster(u, xs, took, lambda: u.use_c(c_lines, quick=True), "native",
                                       (CompileError, BackendError), ccode.MARGIN)
            if self.backend == "jax":  # the same code under jax.jit, or as floats where faster
                # (a formula JAX lacks fails in any form: floats or the program then)
                took = _kept_if_faster(u, xs, took, u.use_jax, "jitted", Exception)
            # (C too long to build at the first call: built later, once calls have paid for it)
            later = _build_seconds(u, c_lines) if may_c and u.native is None and u.jitted is None else None
            if took >= floor and beat() is not None and took >= beat():
                if later and took < C_SPEEDUP * beat():  # (the program runs meanwhile; hunt BH: Jacobi sweeps)
                    u.build_later, self.pending = later, u
                return
            if later and took >= ccode.WORTH:
                u.build_later = later
        self.unrolled = u

    @property
    def kind(self) -> str:
        if self.unrolled is not None and self.unrolled.native is not None:
            return "c"
        if self.unrolled is not None and self.unrolled.jitted is not None:
            return "jax"
        if self.fast is not None:
            return self.fast_kind
        if self.unrolled is not None:
            return "scalar"
        return self.program.backend if self.program else "interpret"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One traced structure: its recording, graph, plan and how it runs."""

    recording: Recording
    graph: Graph
    plan: Any
    runner: Runner
    assemble: Callable[[dict], Any]  # the blocks as jacobian's result (see _assembler)


class _Cache:
    """Plans per traced structure. Every call traces ``f`` again (the trace is the primal
    evaluation); a trace that replays a cached structure step for step reuses its plan, and its
    graph as well when every constant is bit-for-bit the same. So a result always comes from the
    values this call saw: arguments, constants, closures and object attributes alike."""

    def __init__(self, limit: int = CACHED_SHAPES, per_key: int = 8):
        self.entries: dict[Any, list[Entry]] = {}
        self.limit, self.per_key = limit, per_key
        self.hits = self.misses = self.rebuilds = 0
        self.missed = 0  # misses less hits, never below 0 (jacc.api.CHURN_MISSES)
        self.skipped = 0  # calls that ran the traced-once program without running f (jacc.guards)
        self.why_traced: str | None = None  # why the last structure watched runs f on every call
        # why the last structure whose data arguments changed keeps them constants (see _DataArgs)
        self.why_constant: str | None = None
        self._lock = locks.lock()

    def candidates(self, key) -> list[Entry]:
        return list(self.entries.get(key, ()))

    def put(self, key, entry: Entry) -> None:
        with self._lock:
            old = [e for e in self.entries.pop(key, []) if e is not entry
                   and not e.recording.same_structure(entry.recording)]
            if len(self.entries) >= self.limit:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = [entry] + old[: self.per_key - 1]


def jacobian(f: Callable, argnums: int | Sequence[int] = 0, strategy: Any = "auto", *,
             dtype=None, nonfinite: str = "raise", cache: bool = True, compile: bool = True,
             backend: str = "auto", sparse: bool = False, retrace: bool | str = True,
             cost_model: CostModel | None = None,
             objective: Any = None, memory_limit: int | None = None, **strategy_options) -> Callable:
    """A function computing the Jacobian of ``f`` w.r.t. the arguments ``argnums``.

    The Jacobian of an output of shape ``S`` w.r.t. an input of shape ``T`` has shape ``S + T``.
    Several ``argnums`` give a tuple per output; a tuple of outputs gives a tuple of those. An
    argument that is a dict or tuple of arrays (a model's parameters) gives its blocks in the same
    nesting, and so does a result that is a dict or nested tuple (:mod:`jacc.pytrees`).
    ``strategy`` is a strategy name (``"auto"``, ``"forward"``, ``"reverse"``, ``"markowitz"``,
    … see ``jacc.STRATEGIES``), an explicit list of vertex names, or a :class:`~jacc.Plan`;
    ``strategy_options`` go to the strategy (``auto`` gets ``time_limit=1.0`` and
    ``payoff_calls=100_000`` unless given: it searches a cheap plan only as long as running it
    100,000 times would take, see :func:`~jacc.strategies.auto.search_time`);
    ``cost_model`` (or ``objective=``/``memory_limit=``) is what the plan minimises (by default
    ``"time"``: multiplications plus one per value held at the peak, see
    :class:`~jacc.CostModel`; ``jacc.plan`` counts multiplications alone; under ``"auto"`` and
    ``"time"``, an array program much longer than its plan, or writing far more values than its plan
    multiplies, is timed on the first call against the plain forward and reverse orders', which run
    where twice as fast, see
    :meth:`Runner.plain_if_faster`); without a
    ``memory_limit``, a plan whose predicted peak exceeds the memory the machine has available
    raises :class:`~jacc.MemoryLimitError`, naming its largest partial, before anything is
    allocated, and so does a dense result larger than ``memory_limit`` (or than the memory
    available): ``sparse=True`` then returns only the entries the structure holds. Arrays are float64
    unless ``dtype=np.float32`` is asked for. Non-finite arguments raise ``ValueError`` unless
    ``nonfinite="propagate"``.

    The result always reflects the values of this call — arguments, closed-over variables, object
    attributes: calls run ``f`` on traced arguments (that is the primal evaluation), except where
    running it provably cannot be observed (:mod:`jacc.guards`): ``f`` is a function (or a
    ``functools.partial`` of one) whose code stores nothing outside itself and calls nothing with
    effects (``print``, ``np.random``, files, clocks), its trace does not depend on values, and
    what it reads from globals and closures is plain data (arrays, numbers, strings and containers
    of them) or modules and functions. Then, once a second traced call has replayed the first
    exactly and left everything ``f`` reads unchanged, later calls run the compiled program, primal
    included, on the arguments alone while those globals and cells hold the same values (arrays
    compared bit for bit; a change traces again). ``.cache.skipped`` counts such calls and
    ``.cache.why_traced`` says why a structure's calls run ``f`` every time; ``retrace="always"``
    runs it on every call regardless. Plans are cached per traced structure: a call whose trace
    repeats an earlier one op for op (same ops, shapes and parameters) reuses its plan without
    planning again, also when constants or the branch taken by value-dependent code differ.

    ``backend`` says how a plan runs: ``"auto"`` (straight-line float code when every vertex is a
    scalar, else the plan compiled to one NumPy function, see :mod:`jacc.program`; a small array
    graph is also planned at the scalar level and runs as float code where that is faster, see
    :mod:`jacc.unroll` — ``.plan`` is then the scalar-level plan), ``"numpy"``,
    ``"jax"`` (the same program under ``jax.jit``, or for small graphs scalar code under ``jax.jit``
    or as floats — traced once also as C where a compiler is found — whichever the first call
    measures fastest; needs ``pip install 'jacc[jax]'`` and
    turns on JAX's float64 mode; ``jax.Array`` arguments give dense ``jax.Array`` blocks, which
    with ``retrace=False`` never leave JAX's device),
    ``"torch"`` (the program on PyTorch, see :mod:`jacc.torch_backend`;
    for small graphs scalar code as floats, or traced once as C, where the first call measures
    that faster),
    ``"c"`` (the scalar route's code built by the system C compiler, :mod:`jacc.ccode`: graphs
    of scalars and short vectors whose float64 code has at most
    :data:`~jacc.ccode.MAX_LINES` statements and formulas with C twins; else as ``"auto"``;
    built libraries are cached per machine),
    ``"scalar"`` or ``"interpret"`` (the executor; ``compile=False`` means
    the same). A plan that cannot be compiled runs on the executor. ``sparse=True`` returns each
    block as a ``scipy.sparse.csr_array`` of shape ``(output size, input size)`` built from the
    Jacobian's structure, with no dense intermediate. The returned arrays belong
    to the caller. The returned function has ``.plan`` (the last call's :class:`~jacc.Plan`),
    ``.ran`` (``"scalar"``, ``"c"``, ``"numpy"``, ``"jax"``, ``"torch"`` or ``"interpret"``), ``.program`` (the
    :class:`~jacc.program.Program`, if one ran), ``.last`` (the executor's
    :class:`~jacc.Accumulation` when it ran, else ``None``) and ``.cache`` (``hits``,
    ``misses``, ``rebuilds``, ``skipped``, ``why_traced``, ``why_constant``).

    ``retrace=False`` trades that guarantee for speed, with ``jax.jit``'s semantics: ``f`` is
    traced once per argument shapes and later calls run the compiled program — primal included —
    on the new arguments without running ``f``. Arguments that are not differentiated are
    compared with the traced ones by value — arrays, numbers, strings, lists, tuples and dicts of
    them, SciPy sparse matrices, masked arrays with their masks, also when changed in place — and
    other objects by identity (another
    value traces again); what ``f`` reads from closures, globals or objects is fixed at the trace.
    A trace whose ops depend on values (``x > 0``) is never reused this way: such calls trace every
    time.

    Float arrays (of ``dtype``) and floats not differentiated that change between calls (data, a
    batch, a time series, an ODE's ``t``; by position or keyword, alone or in a dict, tuple, list
    or namedtuple such as a batch ``(X, y)``) are, from the first change a
    structure's traced call sees, traced as inputs without derivatives, so that later calls run the
    program on their new values without tracing ``f`` (as ``jax.jit``); where that trace fails,
    computes other values than ``f`` run plainly, depends on their values or writes into them,
    they stay constants (``.cache.why_constant`` says why; docs/execution.md, "Data arguments").

    >>> import numpy as np
    >>> jf = jacobian(lambda x: np.tanh(x) * 2.0)
    >>> J = jf(np.zeros(3))
    >>> J.shape, float(J[0, 0]), float(J[0, 1])
    ((3, 3), 2.0, 0.0)
    """
    return _public(f, argnums, strategy, dict(
        dtype=dtype, nonfinite=nonfinite, cache=cache, compile=compile, backend=backend, sparse=sparse,
        retrace=retrace, cost_model=cost_model, objective=objective, memory_limit=memory_limit), strategy_options)


def value_and_jacobian(f: Callable, argnums: int | Sequence[int] = 0, strategy: Any = "auto", *,
                       dtype=None, nonfinite: str = "raise", cache: bool = True, compile: bool = True,
                       backend: str = "auto", sparse: bool = False, retrace: bool | str = True,
                       cost_model: CostModel | None = None, objective: Any = None, memory_limit: int | None = None,
                       **strategy_options) -> Callable:
    """A function computing ``(f(*args, **kwargs), J)``: ``f``'s value beside the Jacobian that
    :func:`jacobian` with the same arguments computes, without a second evaluation of ``f``.

    Newton and Gauss–Newton steps need both; so does ``scipy.optimize.minimize(vj, x0,
    jac=True)``, which takes the value and the gradient from one call. The value has ``f``'s
    nesting (one array, a tuple, a dict) with each output as a NumPy array of the Jacobian's
    ``dtype`` (a scalar output as a 0-d array), or as ``jax.Array`` values where the Jacobian's
    blocks are; it belongs to the caller. A call that traces ``f`` takes the value from its trace;
    a call that runs the compiled array program (primal included) returns the outputs that program
    computes; the scalar route's float and C code, which compute no outputs, get float (or C) code
    of the outputs (:func:`jacc.compile.compile_values`), and where that leaves ``math``'s domain,
    or the executor runs, the graph is evaluated by NumPy. A list of outputs comes back as a
    tuple, as the Jacobian's blocks do. Every option is
    :func:`jacobian`'s, and so are the returned function's attributes (``.plan``, ``.ran``,
    ``.cache``, …).

    >>> import numpy as np
    >>> vj = value_and_jacobian(lambda x: np.sum(x ** 2))
    >>> value, grad = vj(np.array([1.0, 2.0]))
    >>> float(value), grad.tolist()
    (5.0, [2.0, 4.0])
    """
    return _public(f, argnums, strategy, dict(
        dtype=dtype, nonfinite=nonfinite, cache=cache, compile=compile, backend=backend, sparse=sparse,
        retrace=retrace, cost_model=cost_model, objective=objective, memory_limit=memory_limit), strategy_options,
        outputs=True)


def _public(f: Callable, argnums: Any, strategy: Any, options: dict, strategy_options: dict,
            outputs: bool = False) -> Callable:
    """:func:`jacobian` and :func:`value_and_jacobian`: their options checked, the function made."""
    for name in _JAX_ONLY.keys() & strategy_options.keys():
        raise TypeError(f"jacc.{'value_and_jacobian' if outputs else 'jacobian'} has no {name}= "
                        f"(jax.jacrev's option): {_JAX_ONLY[name]}")
    return _jacobian(f, argnums, strategy, **options, strategy_options=strategy_options, outputs=outputs)


#: JAX's jacobian options that jacc has no counterpart of, and what to do instead (a misspelt or
#: foreign keyword otherwise reads as an option of the strategy)
_JAX_ONLY = {
    "has_aux": "differentiate a function that returns the differentiated output alone, and compute the "
               "auxiliary values by calling f itself (or return them as further outputs, whose Jacobians "
               "are computed too)",
    "holomorphic": "jacc differentiates real functions; split a complex function into its real and "
                   "imaginary parts (np.real, np.imag)",
    "allow_int": "integer arguments are differentiated as floats already (argnums may name them)",
}


def _jacobian(f: Callable, argnums: Any, strategy: Any, *, dtype, nonfinite: str, cache: bool, compile: bool,
              backend: str, sparse: bool, retrace: bool | str, cost_model: CostModel | None, objective: Any,
              memory_limit: int | None, strategy_options: dict, data: tuple = (), single: bool | None = None,
              store: _Cache | None = None, outputs: bool = False) -> Callable:
    """:func:`jacobian`'s function. Where ``data`` names positions of ``argnums``, those arguments
    (keyword data made positions by :func:`_keywords_as_positions`)
    are traced as inputs that are not differentiated (:class:`_DataArgs`): their blocks are not
    computed and their values may change from call to call without a new trace; ``single`` is
    then the outer call's (an int ``argnums``) and ``store`` its plan cache."""
    from .collector import paused
    from .plan import build, choose

    if nonfinite not in ("raise", "propagate"):
        raise ValueError(f"nonfinite must be 'raise' or 'propagate', not {nonfinite!r}")
    if retrace not in (True, False, "always"):
        raise ValueError(f"retrace must be True, False or 'always', not {retrace!r}")
    if single is None:
        single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, (bool, np.bool_))
    nums = check_argnums(argnums)
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type, not {dt}")
    allocator.tune()  # same pages every call: no page faults for large temporaries (jacc.allocator)
    if store is None:
        store = _Cache()
    cm = CostModel.coerce(cost_model, objective, memory_limit, default="time")
    if dt.itemsize != cm.value_bytes:  # (pricing counts float64 values; the limit is on these)
        cm = dataclasses.replace(cm, value_bytes=dt.itemsize)
    if strategy == "auto":  # planning happens on the first call: keep its latency modest
        strategy_options.setdefault("time_limit", 1.0)
        strategy_options.setdefault("payoff_calls", 100_000)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}")
    if not compile:
        backend = "interpret"
    if sparse:
        from . import sparse as _  # noqa: F401  a missing SciPy is one clear line now
        if dt.itemsize < 4:  # (SciPy built such matrices but could not convert or multiply them)
            raise ValueError(f"sparse=True needs dtype float32 or float64: SciPy's sparse arrays have no {dt}; "
                             "pass dtype=np.float32, or sparse=False for dense blocks")
    if backend in ("jax", "torch"):
        from .program import _backend

        _backend(backend)  # a missing JAX or PyTorch is one clear line now, not at the first call
    if backend == "torch" and not (dt.isnative and dt in (np.float16, np.float32, np.float64)):
        raise ValueError(f"backend='torch' computes in float16, float32 or float64 (native byte order), not {dt}; "
                         "pass one of those as dtype=, or another backend")
    if backend == "c":
        from .ccode import require

        require()  # likewise a missing C compiler
    arg_names: dict[int, list[str]] = {}  # f's parameter names per argument count
    data_names: set[str] = set()  # the inputs that are data arguments (not differentiated)
    planned = [0.0]  # the planning time of the last structure planned

    # by default, calls may skip running f once two traced calls showed that running it is not
    # observable (jacc.guards): per structure, the guards awaiting confirmation or why not
    skipping = retrace is True and cache and backend != "interpret"
    pure: dict[Any, Guards | str | None] = {}
    # structures whose f ran once more, watched, without changing what it had read: only then are
    # data arguments traced (that runs f beside the call's own run); a first watch cannot tell
    # (state["mean"] = 0.9 * state["mean"] + 0.1 * x.mean(0) left a traced value in the caller's
    # dict and updated it twice a call)
    quiet: set = set()
    watched: dict[Any, float] = {}  # structure → times watched (f's globals may change every call)
    # structure → the entry its last traced call took: replayed first (a flag that alternates
    # between two structures of one shape replayed the other's, so neither came to skip f)
    last_of: dict[Any, Entry] = {}
    flag_values: dict[Any, set] = {}  # shape key → the flags' values that keyed a skip of their own
    verdict: list = [None]  # this call's: the guards of what f read while watched, or why not

    def with_primal(graph: Graph) -> bool:
        """Whether this graph's program should include the primal: under retrace=False, or where
        calls may come to skip f, unless the trace depends on values (those calls trace every time)."""
        return (not retrace or isinstance(verdict[0], Guards)) and not graph.meta.get("value_dependent")

    def result_of(plan) -> Callable[[dict], Any]:
        found = _assembler(plan.graph, single, None if sparse else owned, plan.wrt)
        return _with_value(plan.graph, found) if outputs else found

    def new_plan(tape: Tape, rec: Recording, recurs: bool = False) -> Entry:
        """``recurs``: a structure planned quickly (see :data:`CHURN_MISSES`) called again."""
        graph = tape.build()
        if graph.meta.get("index_bounds"):  # (via_data checks such a structure's results: see there)
            jf.gathers = True
        t0 = time.perf_counter()  # (planning_seconds counts the set-up and the final pricing, as jacc.plan's)
        problem = Problem.from_graph(graph, [x for x in graph.inputs if x not in data_names] if data else None)
        # structures that do not repeat: each plan serves about one call, so it is made quickly
        churn = not recurs and strategy == "auto" and store.missed >= CHURN_MISSES and cm.memory_limit is None
        runner = Runner(backend, dt, sparse, with_primal(graph),
                        cache and not churn and unroll_candidate(graph, strategy), outputs)
        runner.churn = churn
        if data:  # (made because calls repeat with new data: lowered at its first call)
            runner.deferred, runner.repeating = 1, True
        options = {} if churn else dict(strategy_options)
        limit = options.get("time_limit")
        if limit is not None:  # the set-up above is part of the planning the limit bounds
            options["time_limit"] = max(limit - (time.perf_counter() - t0), 1e-3)
        if runner.unroll and limit is not None:  # the scalar-level plan (jacc.unroll) shares the budget
            options["time_limit"] = min(options["time_limit"] / 2, ARRAY_PLAN_BESIDE_UNROLL)
        with paused():
            given = naive_first(problem)[0] if churn else strategy  # (one pricing: Markowitz previews every step)
            if scalar_level(strategy) and not all_scalars(graph):
                # jf.plan after the scalar route ran, given back: that route runs its order (a
                # clock-independent plan, as strategies.md offers), the array level a greedy one
                if not runner.unroll:
                    raise OrderError(
                        f"the plan given as the strategy is a scalar-level one (a jacobian's .plan after its "
                        f"scalar route ran), which backend={backend!r}, sparse={sparse}, compile={compile} and "
                        f"dtype={np.dtype(dt).name} do not run; pass the .plan of a jacobian made with these "
                        "options, or call this one with the defaults")
                runner.required, given = strategy, "markowitz"
            order, name, info, optimal = choose(problem, given, cm, options)
            plan = build(problem, order, name, cm, info, time.perf_counter() - t0, optimal)
            plan.planning_seconds = planned[0] = time.perf_counter() - t0
        check_fits(plan, graph, sparse, cm.memory_limit)
        if runner.unroll:  # the scalar-level plan may take as long as this one (at least 50 ms),
            # within what is left of the time limit
            spent = time.perf_counter() - t0
            runner.unroll_options = strategy_options
            runner.unroll_time = max(spent, 0.05) if limit is None else min(max(spent, 0.05), limit - spent)
        return Entry(rec, graph, plan, runner, result_of(plan))

    def rebase(old: Entry, tape: Tape, rec: Recording) -> Entry:
        """The same structure with this call's constants: a new graph, the old plan's order and,
        unless it compiled in old constants that changed (see ``Program.serves``), the old program."""
        graph = tape.build()
        plan = dataclasses.replace(old.plan, graph=graph)  # pricing depends on structure only
        r = old.runner
        if r.program and not r.program.serves(graph):  # constants it compiled in changed: lower
            # again, or under "auto" let the executor run: such constants (a sort order) change per call
            new = Runner("interpret" if backend == "auto" else backend, dt, sparse, with_primal(graph), False,
                         outputs)
            return Entry(rec, graph, plan, new, result_of(plan))
        # (a runner whose lowering was left to the next call is shared too: else a structure whose
        # constants change at every call would never be lowered)
        shared = r.fast is None and r.unrolled is None and (r.program is not None or r.deferred)
        return Entry(rec, graph, plan, r if shared else Runner(backend, dt, sparse, with_primal(graph), False,
                                                               outputs), result_of(plan))

    def shape_key(args) -> tuple:
        """Cache key: the number of arguments and the shapes of the differentiated ones."""
        try:
            if len(nums) == 1:  # (no comprehension: this runs on every traced-once call)
                return len(args), (_shape(args[nums[0]]),)
            return len(args), tuple([_shape(args[i]) for i in nums])
        except IndexError:  # an argnum out of range: tracing says so
            return len(args), tuple(_shape(args[i]) if -len(args) <= i < len(args) else None for i in nums)

    def prepare(args, kwargs, seen=None, prefer: Entry | None = None, keep: bool = True) -> tuple[Entry, Tape]:
        """The call's structure: traced, replaying ``prefer`` (this call's key's last) or else the
        shape's last structure where it can, planned where new; kept in the cache (``keep``)."""
        key = shape_key(args)
        found = store.candidates(key) if cache else []
        if prefer is not None and cache and (not found or found[0] is not prefer):
            found = [prefer] + [e for e in found if e is not prefer]  # (also one with other constants)
        if len(args) not in arg_names:
            arg_names[len(args)] = _param_names(f, len(args))
        if data:  # (a container's inputs are its leaves, named by their paths: jacc.pytrees)
            names = arg_names[len(args)]
            data_names.clear()
            data_names.update(x for i in data for x in _input_names(args[i], names[i]))
        kinds = [(x, v.dtype) for i in data for x, v in zip(_input_names(args[i], names[i]), _leaves(args[i]))
                 if isinstance(v, np.ndarray)] if data else []
        ints = frozenset(x for x, d in kinds if d.kind in "iu")
        narrow = {x: d for x, d in kinds if d.kind in "iu" and d != np.int64}
        bools = frozenset(x for x, d in kinds if d.kind == "b")
        f32 = frozenset(x for x, d in kinds if d == np.float32 and dt == np.float64)
        before = [_fingerprint(args[i]) for i in data]
        with seen or contextlib.nullcontext():  # (seen: a guards.Watch of what f runs)
            tape = record_call(f, args, kwargs, nums, dt, expect=found[0].recording if found else None,
                               names=arg_names[len(args)], shared=snapshots, ints=ints, f32=f32, bools=bools,
                               narrow=narrow, data=frozenset(data_names) if data else frozenset())
        if data:  # the caller's array changed as in NumPy, which a traced input does not follow
            changed = sorted(tape.written & data_names)
            called = getattr(f, "keyword_of", _same_name)  # (keyword data's inputs: jacc's names)
            if changed:
                raise _DataWritten(f"f writes into the argument {called(changed[0])!r} in place")
            for i, was in zip(data, before):
                if _fingerprint(args[i]) != was:
                    raise _DataWritten(f"f changes the argument {called(names[i])!r} in place (through "
                                       "another name for its array)")
            # f was given a new container of traced leaves: an item it assigns (b[0] = …,
            # batch["Xn"] = …) would change the caller's container in NumPy, and here does not
            data_args_named = {names[i] for i in data}
            for name, given, spec, traced in tape.containers:
                leaves, now = pytrees.flatten(given) if name in data_args_named else (traced, spec)
                if now != spec or len(leaves) != len(traced) or any(map(operator.is_not, leaves, traced)):
                    raise _DataWritten(f"f assigns into the container argument {called(name)!r} (NumPy code "
                                       "changes the caller's container)")
        snapshots.add(tape.copies.items())
        verdict[0] = None if seen is None else judge(seen, args, kwargs, tape.copies)
        if not keep:
            return new_plan(tape, tape.recording()), tape
        if tape.graph is None and tape.same_constants and not found[0].runner.churn:  # replayed found[0] exactly
            store.hits += 1
            store.missed = max(store.missed - 1, 0)
            return found[0], tape
        rec = tape.recording()
        if tape.graph is None:  # replayed found[0]'s structure with other constants
            match = found[0]
        else:
            match = next((e for e in found if e.recording.same_structure(rec)), None)
        if match is not None and match.runner.churn:  # planned quickly, as structures did not repeat: this
            entry = new_plan(tape, rec, recurs=True)  # one does, and is planned as the strategy says
            store.hits += 1
            store.missed = max(store.missed - 1, 0)
        elif match is not None:
            entry = rebase(match, tape, rec)
            store.hits += 1
            store.rebuilds += 1
            store.missed = max(store.missed - 1, 0)
        else:
            entry = new_plan(tape, rec)
            store.misses += 1
            store.missed += 1
        if cache:
            store.put(key, entry)
        return entry, tape

    once: dict[Any, _Once] = {}
    jax_results = backend == "jax" and not sparse  # jax.Array arguments give jax.Array results
    shown = tuple(i for i in nums if i not in data)  # (those whose blocks are returned decide that)
    # the last traced-once structure called with Python floats only (the lecture's jf(2.0, 5.0)):
    # found by the argument types alone, a few hundred nanoseconds sooner than by shape key
    floats: list = [None]  # (argument types, _Once): one slot, replaced whole (threads read it once)
    # likewise the last one called with NumPy arrays only, positionally: (argument types, their
    # shapes, its key, _Once); its key and host copies not worked out again (lecture_f with 0-d
    # arrays: a fifth of an 11 µs call)
    arrays: list = [None]
    # a traced call (trace, plan, lowering, watching f) is one thread's at a time: its steps share
    # the runner being lowered and the watch's verdict (two threads' first calls paired one shape's
    # graph with the other's program, or guards); calls that skip f run without it
    traced_call = locks.lock(reentrant=True)

    def with_data(n: int, slots: tuple, order: tuple) -> Callable:
        """This Jacobian, for calls of ``n`` arguments and keyword arguments in ``order``, with the
        arguments in ``slots`` (positions, then keywords) traced as data; ``.call(args, kwargs)``
        calls it. Keywords become positions after the others (:func:`_keywords_as_positions`).
        Its structure is the one planned last with them constant, so its planning gets at most
        twice that one's time (at least :data:`DATA_PLANNING`): a second search as long as the
        first call's made the call where the data first changed 5x slower (a 20-step RNN: 0.3 s)."""
        options = dict(strategy_options)
        if options.get("time_limit") is not None:
            options["time_limit"] = min(options["time_limit"], max(2 * planned[0], DATA_PLANNING))
        keys = tuple(s for s in slots if type(s) is str)
        positions = tuple(s for s in slots if type(s) is not str) + tuple(range(n, n + len(keys)))
        inner = _jacobian(_keywords_as_positions(f, n, keys, order) if keys else f,
                          check_argnums(argnums, n) + positions, strategy, dtype=dtype, nonfinite=nonfinite,
                          cache=cache, compile=compile, backend=backend, sparse=sparse, retrace=retrace,
                          cost_model=cost_model, objective=objective, memory_limit=memory_limit,
                          strategy_options=options, data=positions, single=single, store=store, outputs=outputs)
        inner.data = slots
        if keys:
            def call(args, kwargs):
                return inner(*args, *[kwargs[k] for k in keys], **{k: v for k, v in kwargs.items() if k not in keys})
        else:
            def call(args, kwargs):
                return inner(*args, **kwargs)
        inner.call = call
        return inner

    # arguments not differentiated whose values change between calls: traced as data (see _DataArgs)
    data_args = _DataArgs(with_data, dt) if (not data and cache and backend != "interpret"
                                             and (not retrace or skipping)) else None

    def refuse_data(key, why: str) -> None:
        data_args.by_key[key] = store.why_constant = f"traced with its data arguments as inputs, {why}"

    def via_data(key, inner: Callable, args, kwargs):
        """The call by ``inner``, which traces data arguments; ``_RUN_F`` (trace here, the data
        constants) where it raises or its first trace is not ``f``'s computation. Its first call
        failing, depending on values or computing other values than ``f`` does (``f`` telling a
        traced argument from a number: ``isinstance(t, float)``), a later trace (of other shapes)
        refused, or calls that trace ``f`` every time anyway (:data:`DATA_TRACES`), leave them
        constants for ``key`` from then on."""
        out = None
        if inner.first:  # (one thread makes the first call: its checks read that call's own trace)
            with traced_call:
                if inner.first:
                    out = first_via_data(key, inner, args, kwargs)
        skipped = store.skipped
        if out is None:
            traces = inner.traces
            try:
                out = inner.call(args, kwargs)
            except UnsupportedOperationError as e:  # (a later trace: other shapes)
                refuse_data(key, _raised(e))
                return _RUN_F
            except Exception:  # (f's own error: the trace with constants raises it again)
                return _RUN_F
            inner.calls += 1
            if inner.calls == DATA_TRACES and inner.traces >= DATA_TRACES:
                refuse_data(key, f"its first {DATA_TRACES} calls traced f all the same")
            if inner.traces != traces:  # (f ran: what it reads may hold traced values now)
                scrubbed(key, args)
        if out is not _RUN_F and inner.gathers and not _finite_result(out[1] if outputs else out):
            # a mask reads every position of the axis: 0 times an infinite partial where no label
            # falls (sqrt at 0) is NaN, where the selection of this call's labels may have a 0
            store.skipped = skipped  # (f runs after all)
            return _RUN_F
        if out is not _RUN_F:
            jf.plan, jf.last, jf.ran, jf.program = inner.plan, inner.last, inner.ran, inner.program
        return out

    def scrubbed(key, args) -> bool:
        """Whether ``f``, run by a data trace, stored traced values into what it reads (``state["X"] =
        X``: the first watched runs stored the same batch, and left it as it was), which are then
        replaced by what ``f`` had stored (a data argument itself, else a traced value's value), and
        the data stays constant for ``key`` from then on."""
        g = pure.get(key)
        if not isinstance(g, Guards):
            return False
        given: dict = {}

        def value(t: Tracer) -> Any:
            if not given:  # (the arguments' leaves by input name, at the first traced value found)
                names = arg_names.get(len(args)) or ()
                given.update((x, v) for i, a in enumerate(args[:len(names)])
                             for x, v in zip(_input_names(a, names[i]), _leaves(a)))
            v = given.get(t.name)
            return v if v is not None and t.name in t.tape.input_names else np.array(t.value)
        if not g.scrub(lambda v: isinstance(v, Tracer), value):
            return False
        refuse_data(key, "f stores values computed from it into what it reads (a global dict or list)")
        pure[key] = store.why_traced = "running f changes what it reads"
        return True

    def first_via_data(key, inner: Callable, args, kwargs):
        """:func:`via_data` at ``inner``'s first call, with its checks."""
        learned = trace_needs(f)
        try:
            out = inner.call(args, kwargs)
        except Exception as e:  # (f's own error too: the trace with constants raises it again)
            trace_needs(f, learned)  # (a refused trace must not leave f's later traces with swaps)
            refuse_data(key, _raised(e))
            scrubbed(key, args)
            return _RUN_F
        inner.calls, inner.first = 1, False
        if scrubbed(key, args):  # (its values are this call's: f is not run once more)
            return out
        once.pop(key, None)
        if inner.plan.graph.meta.get("value_dependent"):
            refuse_data(key, _value_dependence(inner.plan.graph))
            return out
        with np.errstate(all="ignore"):  # (f may write into its differentiated arguments: copies of them)
            plain = result_leaves(f(*_differentiated_copied(args, nums), **kwargs))[0]
        traced, inner.primal = inner.primal, None
        if not _same_values(plain, traced):
            if inner.gathers and _finite_result(plain) and not _finite_result(traced):
                # (a label's mask met inf or NaN where no label falls: 0 times inf)
                refuse_data(key, "the one-hot mask of its labels met inf or NaN at a position no label selects, "
                                 "which the mask's product reads (0 times inf is NaN)")
                return _RUN_F
            float32 = any(getattr(v, "dtype", None) in (np.float32, np.float16)
                          for a in list(args) + list(kwargs.values()) for v in _leaves(a))
            refuse_data(key, "f computes other values (" + (
                "its arguments hold float32 values, which NumPy computes with in float32 where the trace "
                "computes in float64: pass float64 arrays, or jacobian(..., dtype=np.float32)" if float32 else
                "it tells a traced argument from a number or an array: isinstance, np.isscalar") + ")")
            return _RUN_F
        return out

    def once_key(args, kwargs) -> tuple:
        key = shape_key(args) + (tuple(kwargs) if kwargs else (),)  # (in the call's order: f's **kw is)
        # flags (mode="train", a bool, None) keep a skip of their own each, as jax.jit's static
        # arguments: one that alternates made every call run f, each value's guards failing the other's
        n = len(args)  # (not the differentiated ones: an int point of f is traced as a float)
        # (with their types: True == 1 and hashes alike, and f may tell them apart)
        flags = [(i, type(a), a) for i, a in enumerate(args)
                 if type(a) in _FLAGS and i not in nums and i - n not in nums]
        if kwargs:
            flags += [(k, type(a), a) for k, a in kwargs.items() if type(a) in _FLAGS]
        if flags:
            flags, taken = tuple(flags), flag_values.setdefault(key, set())
            if flags in taken or len(taken) < _FLAG_VALUES:  # (not a counter, new at every call)
                taken.add(flags)
                key += flags
        return key

    def run_once(hit: _Once, args, kwargs):
        """The compiled program on the arguments alone, ``f`` not run; ``_UNFIT`` or ``_STALE``
        (:meth:`_Once.unfit`), or ``_RUN_F`` where ``f`` must run. A JAX program is dispatched
        before its guards are compared: XLA computes meanwhile (on regression, 85 µs of
        bit-for-bit comparison of the arrays f reads, a seventh of a call); the cheap checks come
        first, so a call that traces f anyway, or refuses its arguments, dispatches nothing (a
        host step of the program, an SVD, failed on a NaN argument and JAX printed its error)."""
        to_jax = jax_results and _jax_arrays(args, shown)
        if to_jax and hit.device is not None:  # JAX arrays stay on device
            unfit = hit.unfit(args, kwargs)
            if unfit is not None:
                return unfit
            xs = hit.leaves(args, device=True)
            if hit.bounds is not None and not hit.bounds.within(xs):
                return _RUN_F
            try:
                found, finite, fine = hit.device(xs, nonfinite != "propagate", hit.domain)
            except (ArithmeticError, ValueError, np.linalg.LinAlgError):  # (a host step of the program,
                return _RUN_F  # an SVD of NaN, failed inside the jitted call: f runs, and raises NumPy's error)
            if not finite:
                hit.refuse_nonfinite(xs, nonfinite)
            if not fine:
                return _RUN_F
            jf.plan, jf.last, jf.ran, jf.program = hit.plan, None, hit.kind, hit.program
            return hit.result(found, xs, device=True)
        xs = hit.leaves(args)
        if not hit.fits(args, kwargs):
            return _UNFIT
        if nonfinite != "propagate" and not hit.finite(xs):
            hit.refuse_nonfinite(xs, nonfinite)
        within = hit.bounds is None or hit.bounds.within(xs)  # (outside: f raises NumPy's IndexError)
        pending = None
        try:
            if within and hit.start is not None and hit.tier is None:
                pending = hit.start(xs)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            pending = _RUN_F
        if hit.stale():
            return _STALE
        if not within or pending is _RUN_F:
            return _RUN_F
        try:
            with np.errstate(all="ignore") if nonfinite == "propagate" else _NO_ERRSTATE:
                found = pending() if pending is not None else hit.run(xs) if hit.tier is None else hit.run_tiered(xs)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):  # (cholesky of a matrix that is not
            return _RUN_F  # positive definite): f runs, and raises it, or catches it and goes on another way
        if hit.domain and not finite_blocks(found):
            return _RUN_F
        jf.plan, jf.last, jf.ran, jf.program = hit.plan, None, hit.kind, hit.program
        return _on_device(hit.result(found, xs)) if to_jax else hit.result(found, xs)

    def make_once(entry: Entry, tape: Tape, args, kwargs) -> _Once | None:
        """The structure as a function of the differentiated arguments alone; an array program
        lowered without the primal (a default call's) is lowered again with it."""
        nums_here = check_argnums(argnums, len(args))
        made = _Once.make(entry, args, kwargs, nums_here, single, tape.copies, outputs)
        if made is None and entry.runner.program:
            r = Runner(entry.runner.backend, dt, sparse, True, False, outputs)
            with np.errstate(all="ignore"):
                r.prepare(entry.plan, tape.arrays())
            if r.program and r.program.primal:
                made = _Once.make(dataclasses.replace(entry, runner=r), args, kwargs, nums_here, single, tape.copies,
                                  outputs)
        return made

    def settle(key, entry: Entry, tape: Tape, state, held: bool, args, kwargs, before: bool = False) -> None:
        """After a traced call: note the guards of what ``f`` read while watched, or, where guards
        held before it ran (``held``), confirm them — the trace replayed the last exactly and
        running ``f`` changed nothing it reads — and skip ``f`` from the next call on. ``before``:
        what ``f`` reads held before it ran, with other arguments (new data): that run must not
        have changed it either."""
        if isinstance(state, Guards) and before:
            if not state.hold():
                pure[key] = store.why_traced = "running f changes what it reads"
                return
            quiet.add(key)
        if entry.graph.meta.get("value_dependent"):
            pure[key] = _value_dependence(entry.graph)
        elif held:
            if not state.same_passed(passed_of(args, kwargs)):  # f changed an argument it was given
                pure[key] = "running f changes its arguments"
            elif tape.graph is None and tape.same_constants and state.hold():
                made = make_once(entry, tape, args, kwargs)
                if made is None:
                    pure[key] = "its plan does not run without f"
                else:
                    made.guards = state
                    keep_once(key, made, args, kwargs)
                    watched.pop(key, None)  # (the cap counts watches in a row without a confirmation)
            else:
                pure[key] = None if state.hold() else "running f changes what it reads"
        else:
            # (a watch where what f reads held, and only the arguments not differentiated were other
            # ones, counts a quarter: an ODE's t and parameters changing are not its reads changing)
            watched[key] = watched.get(key, 0) + (0.25 if before else 1)
            pure[key] = "what it reads changed at every call" if watched[key] > WATCHES else verdict[0]
            if isinstance(pure[key], Guards) and not pure[key].mutable:  # (nothing its run could change)
                quiet.add(key)
        store.why_traced = pure.get(key) if isinstance(pure.get(key), str) else None

    def keep_once(key, made: _Once, args, kwargs) -> None:
        """Keep ``made`` for calls with this key (bounded like the plan cache), and as the
        Python-floats path's structure where its arguments are floats."""
        if len(once) >= store.limit and key not in once:
            once.pop(next(iter(once)))
        once[key] = made
        if made.floats and not (kwargs or made.others) and all(type(a) is float for a in args):
            floats[0] = (tuple(map(type, args)), made)

    def passed_of(args, kwargs) -> tuple:
        """The arguments not differentiated, then the keyword arguments' names and values in the
        order the call gives them (``f(x, **kw)`` sees that order)."""
        differentiated = set(check_argnums(argnums, len(args)))
        return (tuple(a for i, a in enumerate(args) if i not in differentiated)
                + ((tuple(kwargs),) + tuple(kwargs.values()) if kwargs else ()))

    # read-only copies of the caller's arrays: the traces' constants and the guards' copies of what
    # f reads. A structure takes another's copy where the array still has its bits (a 40 MB array f
    # reads, or multiplies by, at 10 argument shapes was held 10 times)
    snapshots = _Shared()

    def judge(seen, args, kwargs, copies) -> Guards | str:
        """Whether running ``f`` as it just ran can be skipped: its guards, or why not."""
        found = guards_for(f, seen, passed_of(args, kwargs), collections.ChainMap(copies, snapshots))
        if isinstance(found, Guards):
            snapshots.add((id(a), (a, copy)) for kept in found.kept() for a, _, _, copy in kept.arrays or ()
                          if type(copy) is np.ndarray)
        return found

    def jf(*args, **kwargs):
        if not retrace or skipping:
            kept = floats[0]
            hit = None if kept is None else kept[1]
            if hit is not None and not kwargs and tuple(map(type, args)) == kept[0]:
                xs = args if hit.direct else [args[i] for i in hit.nums]
                if nonfinite != "propagate" and all(map(math.isfinite, xs)) and (
                        hit.guards is None or hit.guards.hold()):
                    found = hit.run(xs)
                    if not hit.domain or finite_blocks(found):
                        store.skipped += hit.guards is not None
                        jf.plan, jf.last, jf.ran, jf.program = hit.plan, None, hit.kind, hit.program
                        return hit.result(found, xs)
            last = arrays[0]
            if last is not None and not kwargs and tuple(map(type, args)) == last[0] \
                    and [a.shape for a in args] == last[1] and once.get(last[2]) is last[3]:
                hit = last[3]  # (the types hold no flag and no jax.Array: the key and arguments as below)
                out = run_once(hit, args, kwargs)
                if type(out) is not _Missed:
                    store.skipped += hit.guards is not None
                    return out
                if out is _STALE:  # (as the keyed path below would, without asking again: last[2] is the key)
                    once.pop(last[2], None)
                    pure[last[2]] = None
            if not data:  # (after the floats' path, which takes floats alone; a Jacobian taking data gets
                args, kwargs = _host_data(args, kwargs, argnums)  # them as its outer one passes them on)
            key = once_key(args, kwargs)
            hit = once.get(key)
            if hit is not None:
                out = run_once(hit, args, kwargs)
                if type(out) is not _Missed:
                    store.skipped += hit.guards is not None
                    if not kwargs and (last is None or last[3] is not hit) and args and all(
                            type(a) is np.ndarray for a in args):
                        arrays[0] = (tuple(map(type, args)), [a.shape for a in args], key, hit)
                    return out
                if out is _STALE:
                    once.pop(key, None)  # what f reads changed: trace, and watch what it reads again
                    pure[key] = None
            if data_args is not None and data_args.by_key:
                inner = data_args.by_key.get(key)
                if inner is not None and type(inner) is not str and data_args.takes(inner, args, kwargs):
                    out = via_data(key, inner, args, kwargs)
                    if out is not _RUN_F:
                        return out
        elif not data:
            args, kwargs = _host_data(args, kwargs, argnums)
        with traced_call:
            return traced(key if not retrace or skipping else None, args, kwargs)

    def traced(key, args, kwargs):
        # (by default only where running f is not observable: where the data trace fails, f runs again)
        if data_args is not None and key is not None and data_args.seen and (
                not skipping or (isinstance(pure.get(key), Guards) and key in quiet)):
            inner = data_args.switch(key, args, kwargs, check_argnums(argnums, len(args), kwargs))
            if inner is not None:
                out = via_data(key, inner, args, kwargs)
                if out is not _RUN_F:
                    return out
        held, seen, state, before = False, None, None, False
        if skipping:
            state = pure.get(key)
            if isinstance(state, Guards):  # (other arguments than the watched call's: watched again)
                before = state.hold()  # (what f read holds what the last watched run left)
                held = before and state.same_passed(passed_of(args, kwargs))
            if not held and not isinstance(state, str):
                seen = watch(f, args + tuple(kwargs.values()))
        device = jax_results and _jax_arrays(args, shown)  # results as jax.Arrays
        # (traced once: the arguments not differentiated as f got them, to see whether it changes them)
        given = None if retrace else snapshot(passed_of(args, kwargs))
        with factorise.sharing():  # the trace's factorisations serve the partials (jacc.factorise)
            entry, tape = prepare(args, kwargs, seen, None if key is None else last_of.get(key))
            graph, plan = entry.graph, entry.plan
            if data:  # (what via_data checks: whether calls keep tracing, and the first one's values)
                jf.traces += 1
                if jf.traces == 1:
                    jf.primal = [tape.values[y] for y in tape.outputs]
            # (not where data could not be taken anyway: a checksum of large data per call is not free)
            if data_args is not None and key is not None and not graph.meta.get("value_dependent") \
                    and not isinstance(pure.get(key), str):
                data_args.note(key, args, kwargs, check_argnums(argnums, len(args)))
            for name in entry.plan.wrt:  # (data arguments may hold NaN, as constants may)
                _check_finite(name, tape.values[name], nonfinite)
            run = entry.runner
            # nothing chosen yet: a route is prepared in this call (a lowered program's check's blocks
            # serve). The scalar route, once kept, leaves no program: lowering one then (an XLA
            # compile of thousands of statements under "jax") would be work for nothing
            first = run.program is None and run.unrolled is None
            later = first and run.lower_later(plan)
            if first and not later:
                with np.errstate(all="ignore"):
                    run.prepare(plan, tape.arrays(), lower=not run.unroll, keep=True)
            if run.unroll and not later:
                run.try_unroll(entry, tape.arrays(), strategy, cm)
            if run.program is None and run.fast is None and run.unrolled is None and not later:
                with np.errstate(all="ignore"):
                    run.lower(plan, tape.arrays(), keep=True)
            if first and not later and strategy == "auto" and cm.objective == "time" and run.fast is None \
                    and run.unrolled is None:
                with np.errstate(all="ignore"):
                    faster = run.plain_if_faster(plan, tape.arrays(), cm)
                if faster is not None:
                    entry = dataclasses.replace(entry, plan=faster)
                    plan = faster
                    if cache:
                        store.put(shape_key(args), entry)
            if key is not None and last_of.get(key) is not entry:  # (the entry as chosen: a plain order too)
                if len(last_of) >= _LAST_KEPT:  # (each holds a structure's constants)
                    last_of.pop(next(iter(last_of)))
                last_of[key] = entry
            jf.plan, jf.last, jf.ran, jf.program = plan, None, run.kind, run.program or None
            if run.unrolled is not None or run.fast is not None:
                if run.unrolled is not None:  # a small array graph: scalar-level straight-line code
                    found = run.unrolled([tape.values[x] for x in graph.inputs])
                    jf.plan, jf.program = run.unrolled.plan, None
                else:  # all-scalar graph: the compiled straight-line plan
                    # (this call's own trace, replayed or new, holds at its values: no warning that
                    # a value-dependent graph runs elsewhere)
                    found = getattr(run.fast, "unchecked", run.fast)(*[tape.values[x] for x in graph.inputs])
                    found = {k: np.asarray(v, dtype=dt) for k, v in found.items()}  # fresh arrays
                if not finite_blocks(found) and singular_ops(graph):  # a (numerically) singular matrix:
                    with np.errstate(all="ignore"):  # LAPACK's answer (its LinAlgError, or its finite values)
                        found = dict(accumulate(plan.problem, tape.arrays(), plan.order, dt, sparse=sparse).blocks)
                    jf.plan, jf.ran = plan, "interpret"
            elif run.program:
                found = run.program.run(tape.arrays(), graph, device=device, first=first)
                device = device and run.program.device is None  # (else they are there already)
                raise_as_numpy(run.program.backend, graph, found,
                               lambda: accumulate(plan.problem, tape.arrays(), plan.order, dt, sparse=sparse))
            else:
                found = interpreted(plan, tape)
            if (run.churn or tape.cut_nan) and not finite_blocks(found):
                found = other_mode_if_finite(plan, tape, found)
            assembled = entry
            if graph.meta.get("lanes") and not finite_blocks(found):
                # (0 · inf outside a mask: the first selected row, which fills it, is at a domain's edge)
                assembled, found = gathered(args, kwargs)
            if tape.nonfinite_because and nonfinite != "propagate" and not finite_blocks(found):
                raise UnsupportedOperationError(tape.nonfinite_because[0])
            if outputs and assembled is entry:  # (gathered() gives its trace's)
                found = _valued(found, graph, tape.values, dt)
        if skipping and (held or seen is not None):
            settle(key, entry, tape, state, held, args, kwargs, before)
        if not retrace and not graph.meta.get("value_dependent") and same(passed_of(args, kwargs), given):
            made = _Once.make(entry, args, kwargs, check_argnums(argnums, len(args)), single, tape.copies, outputs)
            if made is not None:
                keep_once(key, made, args, kwargs)
        return _on_device(assembled.assemble(found)) if device else assembled.assemble(found)

    def gathered(args, kwargs) -> tuple[Entry, dict]:
        """The call's structure and blocks with every selection by a mask gathered (jacc.lanes), as
        NumPy makes it at this point: value-dependent, exact, for this call alone."""
        with lanes.gathering():
            entry, tape = prepare(args, kwargs, keep=False)
        jf.plan, jf.ran, jf.program = entry.plan, "interpret", None
        found = interpreted(entry.plan, tape)
        return entry, _valued(found, entry.graph, tape.values, dt) if outputs else found

    def other_mode_if_finite(plan, tape: Tape, found: dict) -> dict:
        """Blocks that are not finite, of a quick plan (see :data:`CHURN_MISSES`) or of a trace
        whose NaN-aware reductions cut NaN entries off, by forward or else reverse mode (not the
        plan's own) where that gives finite ones. Reverse mode scatters a selection's cotangent
        into a dense row, whose stored 0 where nothing is selected meets the partial there:
        ``np.sqrt(x)[y].sum()`` at a 0 that ``y`` does not read (sqrt's infinite slope), or
        ``np.nanmean(D * b)`` w.r.t. ``b`` with NaN in the data ``D`` (∂(D·b)/∂b is NaN there).
        Forward mode selects first: an exact 0."""
        from .plan import build, choose

        for mode in ("forward", "reverse"):
            if mode == plan.strategy:
                continue
            order, name, info, optimal = choose(plan.problem, mode, cm, {})
            other = build(plan.problem, order, name, cm, info, 0.0, optimal)
            blocks = interpreted(other, tape)
            if finite_blocks(blocks):
                jf.plan, jf.ran = other, "interpret"
                return blocks
        return found

    def interpreted(plan, tape: Tape) -> dict:
        """The blocks by the executor, the caller's own; its accumulation kept as ``jf.last``."""
        with np.errstate(all="ignore"):
            acc = accumulate(plan.problem, tape.arrays(), plan.order, dt, sparse=sparse)
        jf.last = acc  # (kept for inspection: the caller gets blocks of its own)
        return {k: b.copy() if hasattr(b, "copy") else b for k, b in acc.blocks.items()}

    jf.plan = jf.last = jf.program = jf.ran = None
    jf.cache = store
    jf.traces, jf.primal = 0, None
    jf.gathers = False  # a structure reads labels through a one-hot mask (jacc.numpy_api.gathers)
    return jf
