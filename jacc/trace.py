"""The NumPy tracer: run a Python function on traced arrays and record a :class:`Graph`.

Traced arrays carry their current value (so ordinary control flow runs) and implement NumPy's
operator, ``__array_ufunc__`` and ``__array_function__`` protocols, so plain NumPy code records
itself. Closed-over arrays become constants.

>>> import numpy as np
>>> g = trace(lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2), 2.0, 5.0)
>>> [g.op(v) for v in g.intermediates]
['log', 'mul', 'add', 'sin']
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import operator
import os
import re
import sys
import sysconfig
import threading
import warnings
import weakref
from typing import Any, Callable

import numpy as np

from . import pytrees
from .graph import Graph, GraphError, TracedPoint, check_real
from .indexing import as_index_array
from .ops import MASK_OPS, OPS, ShapeError, index_to_numpy

_HERE = os.path.dirname(os.path.abspath(__file__))
_NUMPY = os.path.dirname(os.path.abspath(np.__file__))


class UnsupportedOperationError(TypeError):
    """A NumPy function or method the tracer cannot record."""


class TraceError(ValueError):
    """A recorded op got arguments it cannot take (e.g. shapes that do not fit)."""


class IndexOutOfBounds(TraceError, IndexError):
    """An index past an axis's end: NumPy raises ``IndexError``, and so does the trace."""


class TieWarning(UserWarning):
    """``f`` branched on an exact equality of traced values that holds at the traced point
    (:func:`warn_tie`)."""


def warn_tie(what: str) -> None:
    """Warn that ``f`` took a branch because traced values are exactly equal (``if x == 0``, a zero
    coefficient that ``np.poly1d`` drops): the Jacobian is the derivative of that branch, a one-point
    case that is not ``f``'s derivative where ``f`` is smooth across the tie, as JAX's and PyTorch's
    are at such points."""
    warnings.warn(f"{what} at {call_site()}: traced values are exactly equal at this point and f took the "
                  "branch of that equality, so the Jacobian is the derivative of that branch alone; where f is "
                  "smooth across the tie it is not f's (a zero coefficient dropped is a derivative dropped). "
                  "Compute it without the exact comparison (np.polyval(c, x) for np.poly1d(c)(x)), or at a point "
                  "off the tie", TieWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """``warnings.warn``'s stacklevel that names the user's line (:func:`_user_frame`) from the
    caller of the function that calls this."""
    user, f, level = _user_frame(), sys._getframe(2), 2
    while f is not None and f is not user:
        f, level = f.f_back, level + 1
    return level if f is not None else 1


def _user_frame():
    """The innermost frame outside jacc and NumPy (None if there is none)."""
    f = sys._getframe(2)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_HERE) and not fn.startswith(_NUMPY):
            return f
        f = f.f_back
    return None


_LIBRARIES = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
#: the standard library's code (``statistics.mean`` calling ``as_integer_ratio``): a library too
_STDLIB = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})


#: Libraries whose Python code gets buffers (jacc.buffers) too: they are NumPy code that fills arrays
#: it makes (scipy.integrate's Runge–Kutta solvers step by writing into np.empty arrays; a fit of
#: chosen degrees writes its coefficients into np.zeros) and hands them to no compiled code of its
#: own. Other library code gets NumPy's arrays (a Cython signature refuses a buffer).
SERVED_LIBRARIES = ["scipy.integrate", "numpy.polynomial", "scipy.stats._binned_statistic",
                    "scipy.linalg._special_matrices"]


def served_module(f) -> bool:
    """Whether frame ``f`` runs the code of a module in :data:`SERVED_LIBRARIES`."""
    module = f.f_globals.get("__name__", "")
    return any(module == m or module.startswith(m + ".") for m in SERVED_LIBRARIES)


def _served_store(f) -> bool:
    """Whether the innermost frame outside jacc, from ``f`` out, is a served library's code
    assigning into an array (``cc[deg] = c`` in NumPy's polynomial fits): a write a buffer takes."""
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_HERE):
        f = f.f_back
    return f is not None and _instruction(f) in _SUBSCRIPT_STORES and served_module(f)


def _raised_in_library(err: BaseException) -> bool:
    """Whether ``err`` was raised by a library's code (NumPy's, SciPy's; not jacc's or the user's)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return _in_library(frame) and not os.path.abspath(frame.f_code.co_filename).startswith(_HERE)


def _in_library(f) -> bool:
    fn = f.f_code.co_filename
    if fn.startswith("<frozen"):
        return True
    fn = os.path.abspath(fn)
    return fn.startswith(_HERE) or fn.startswith(_STDLIB) or any(p in fn for p in _LIBRARIES)


def call_site() -> str:
    """``file:line`` of the innermost frame outside jacc and NumPy; where that is inside an
    installed library (SciPy calling NumPy), the line of the code that called the library too."""
    f = _user_frame()
    if f is None:
        return "<unknown>"
    site = f"{f.f_code.co_filename}:{f.f_lineno}"
    if _in_library(f):
        g = f.f_back
        while g is not None and _in_library(g):
            g = g.f_back
        if g is not None:
            site += f" (from {g.f_code.co_filename}:{g.f_lineno})"
    return site


class Recording:
    """What a trace did, step by step: enough to check that a later trace does the same.

    ``sigs`` holds one ``(op, argument refs, params)`` per step (inputs included), where a
    constant argument appears as its shape and dtype only; ``args`` holds each step's arguments
    with the constants' values (the graph's own read-only copies), so equal signatures with equal
    constants mean an identical graph."""

    def __init__(self, names: list[str], sigs: list[tuple], args: list[list], outputs: list[str],
                 output_tuple: bool):
        self.names, self.sigs, self.args = names, sigs, args
        self.outputs, self.output_tuple = outputs, output_tuple

    def same_structure(self, other: "Recording") -> bool:
        return (self.sigs == other.sigs and self.outputs == other.outputs
                and self.output_tuple == other.output_tuple)

    @functools.cached_property
    def replay(self) -> list:
        """Per step, what :meth:`Tape.record` checks a replayed step against without building its
        signature: ``(op, params, name, args, expected, evaluate, scalar, arity, float form,
        step, float form without params)`` (``None`` for inputs), where ``expected`` holds each
        argument's vertex name or an :class:`_Expected` constant, ``scalar`` is the exact
        Python-float form of the op (or ``None``), the float form is :func:`_float_form`'s and
        ``step`` is what :attr:`Tape.steps` records for it."""
        table: list = []
        for name, sig, args in zip(self.names, self.sigs, self.args):
            op = sig[0]
            if op == "input":
                table.append(None)
                continue
            expected = tuple(a if isinstance(a, str) else _Expected(a) for a in args)
            fl = _float_form(op, sig[2], sig[1])
            table.append((op, sig[2], name, args, expected, _replay_evaluate(op, sig[2]),
                          _SCALAR_OPS.get(op), len(expected), fl, (name, op, args, sig[2]),
                          None if sig[2] else fl))
        return table


def _replay_evaluate(op: str, params: dict) -> Callable:
    """``OPS[op].evaluate``, or for indexing with ints, slices and new axes only (no arrays) the
    same computation with the NumPy index made once."""
    if op == "getitem" and all(item[0] in ("int", "slice", "new") for item in params["index"]):
        index = index_to_numpy(params["index"])
        return lambda vals, params: np.array(vals[0][index])  # as OPS["getitem"] on an ndarray
    return OPS[op].evaluate


def _float_form(op: str, params: dict, arg_sigs: tuple) -> Callable | None:
    """The op on Python floats, giving NumPy's float64 result bit for bit (``None`` where it may
    not, or may fail: NumPy then computes it), for replays of 0-d values: exact IEEE arithmetic
    (:data:`_SCALAR_OPS`), or the op's own ufunc applied to floats (NumPy's float64 loop, as on
    0-d arrays). ``getitem`` with ints only on a float64 array: that element as a float."""
    if op == "getitem":
        index = params["index"]
        if all(item[0] == "int" for item in index):
            at = tuple(item[1] for item in index)
            return lambda v: float(v[at]) if v.ndim == len(at) else None
        return None
    if any(not isinstance(a, str) and a[0] != () for a in arg_sigs):
        return None  # an array constant: the result is no scalar
    if op == "stack" and params.get("axis") in (0, -1):  # of 0-d values: the vector of them
        return lambda *xs: np.array(xs)
    if op in _SCALAR_OPS:
        return _SCALAR_OPS[op]
    fn = _FLOAT_UFUNCS.get(op)
    if fn is None:
        return None
    return lambda *xs: float(fn(*xs))


class _Expected:
    """A recorded constant argument, with what a replay compares a new argument with: its bytes
    (small constants) and, for a 0-d float64 constant that is neither zero nor NaN, its value as
    a Python float (a float equal to it has the same bits)."""

    __slots__ = ("array", "shape", "dtype", "kept", "bytes", "number")

    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        # a replay tape (float64) keeps an argument of these types as it is; others: the slow path
        self.kept = array.dtype == np.float64 or array.dtype == bool
        self.bytes = array.tobytes() if array.size <= 256 else None
        number = None
        if array.shape == () and array.dtype == np.float64:
            number = float(array)
            if number == 0.0 or number != number:  # ±0.0 compare equal, NaN unequal: check bits
                number = None
        self.number = number

    def matches(self, a: Any) -> bool:
        """Whether ``a`` would be recorded as this constant (its own type, shape and bits)."""
        tp = type(a)
        if tp is np.ndarray:
            if self.kept and a.dtype == self.dtype and a.shape == self.shape:
                return a.tobytes() == self.bytes if self.bytes is not None else same_bits(a, self.array)
            return False
        if tp is float or tp is _F64_SCALAR:
            return self.number is not None and a == self.number
        if tp is int:
            return self.number is not None and -_EXACT_INT <= a <= _EXACT_INT and a == self.number
        return False


_F8 = np.dtype(np.float64)
_F64_SCALAR = np.float64
_EXACT_INT = 2 ** 53  # every int up to this size is a float64 exactly


def _div(x: float, y: float) -> float | None:
    return None if y == 0.0 else x / y  # x / 0: NumPy's inf or NaN, not Python's error


# ops whose Python-float arithmetic gives NumPy's float64 result bit for bit (IEEE rounding)
_SCALAR_OPS: dict[str, Callable] = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
                                    "div": _div, "neg": operator.neg, "square": lambda x: x * x}


def _single_ufunc_ops() -> dict[str, Callable]:
    """Ops whose whole primal is one NumPy ufunc of their arguments (``sin(x)``, ``power(a, b)``)."""
    from .ops import BINARY, NUMPY_NAMES, QUATERNARY, TERNARY, UNARY

    out = {}
    for table, args in ((UNARY, "(x)"), (BINARY, "(a, b)"), (TERNARY, "(a, b, c)"), (QUATERNARY, "(a, b, c, d)")):
        for op, row in table.items():
            fn, _, call = row[0].partition("(")
            if "(" + call == args and isinstance(NUMPY_NAMES.get(fn), np.ufunc):
                out[op] = NUMPY_NAMES[fn]
    return out


_FLOAT_UFUNCS = _single_ufunc_ops()
_ARITH = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}  # BINARY's a+b, a-b, a*b, a/b


def note_raising(how: dict, tapes: list | None = None) -> dict:
    """NumPy asked to raise (``np.errstate(divide="raise")``, ``np.seterr``; ``how`` their keywords
    or ``np.geterr()``): at other values an op may raise ``FloatingPointError``, which ``f`` may
    catch to go another way, so ``tapes`` (by default the traces running now) are marked as
    ``math``'s domains are (a call that skips ``f`` and meets a non-finite block runs ``f``;
    :mod:`jacc.numpy_api.numerics` swaps NumPy's in). Returns the categories that raise."""
    raising = {k: "raise" for k in sorted(how) if how[k] == "raise"}
    if raising:
        for tape in _RUNNING.tapes if tapes is None else tapes:
            tape.note_domain(f"np.errstate({', '.join(f'{k}=raise' for k in raising)})")
    return raising


def _errstate_of_f(tape: Tape) -> Any:
    """NumPy's error state for a traced ``f``: NaN and inf are values there (jacobian's nonfinite=
    decides), so warnings are silenced, but where the caller asked NumPy to raise (an
    ``np.errstate(divide="raise")`` around the call), ``f`` meets that error as NumPy would run it,
    and catching it is a branch of its own (:func:`note_raising`)."""
    return np.errstate(**{"all": "ignore", **note_raising(np.geterr(), [tape])})


def _evaluate(evaluate: Callable, scalar: Callable | None, vals: list, params: dict) -> Any:
    """``evaluate(vals, params)``; with ``scalar`` (see :data:`_SCALAR_OPS`) and only 0-d float64
    arguments, the same value computed on Python floats (a NaN result, whose payload NumPy
    decides, is computed by NumPy)."""
    if scalar is not None:
        for v in vals:
            if type(v) is not np.ndarray or v.dtype is not _F8 or v.shape:
                break
        else:
            r = scalar(*map(float, vals))
            if r is not None and r == r:
                return np.array(r)
    return evaluate(vals, params)


def _sig(op: str, gargs: list, params: dict) -> tuple:
    return (op, tuple(a if isinstance(a, str) else (a.shape, a.dtype.str) for a in gargs), params)


def _libc_memcmp() -> Callable | None:
    """C's ``memcmp``, where ctypes finds it (Linux, macOS): a guard compares the closed-over
    arrays at every call, and NumPy's compare of two 460 KB arrays (the suite's regression) took
    17 µs against memcmp's 8, with a temporary the size of the arrays."""
    try:
        import ctypes
        import ctypes.util

        fn = ctypes.CDLL(ctypes.util.find_library("c") or None).memcmp
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return fn


_MEMCMP = _libc_memcmp()


#: arrays up to this many bytes are compared as ``bytes`` objects: a copy and a compare of 32 KiB take
#: 1–2 µs, where ``x.ctypes.data`` alone takes about 3 µs (an array of 2,000 float64 took 4.5–8.8 µs
#: through memcmp, 2 µs as bytes)
SMALL_BYTES = 1 << 15


def same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """Bit-for-bit equality (so a NaN matches itself and -0.0 differs from 0.0)."""
    if x is y:
        return True
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.nbytes <= SMALL_BYTES:  # (two copies cost less than reaching memcmp through ctypes: 3 µs an array)
        return x.tobytes() == y.tobytes()
    if _MEMCMP is not None and x.flags.c_contiguous and y.flags.c_contiguous and not x.dtype.hasobject:
        return _MEMCMP(x.ctypes.data, y.ctypes.data, x.nbytes) == 0
    if x.dtype.kind == "c":  # (no 16-byte unsigned integer to view complex128 as)
        return same_bits(x.real, y.real) and same_bits(x.imag, y.imag)
    if x.itemsize not in (1, 2, 4, 8):  # (longdouble, strings, records)
        return x.tobytes() == y.tobytes()
    return np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}"))


def _private(a: Any, dtype=None) -> np.ndarray:
    """A contiguous read-only copy: a graph never shares memory with the caller's arrays."""
    with np.errstate(over="ignore"):  # (a value beyond float32 becomes inf: the finiteness check names it)
        c = np.array(a, dtype=dtype, copy=True, order="C")
    c.setflags(write=False)
    return c


#: Ops a derivative network may apply to its values (:meth:`Tape.derivative_network`): linear in
#: all of them ("sum"), in one of them ("product"), or in the first, a numerator ("quotient").
_NETWORK_OPS = {**dict.fromkeys(("add", "sub", "neg", "alias", "transpose", "reshape", "getitem", "where", "sum",
                                 "concatenate", "stack", "broadcast_to"), "sum"),
                **dict.fromkeys(("mul", "matmul", "einsum"), "product"), "div": "quotient"}

#: Ops whose repeated traced arguments may get an alias (see :meth:`Tape._separate`).
_SEPARATE_USES = frozenset({"matmul", "einsum", "concatenate", "stack", "solve"})
_COMPACT: dict[tuple, bool] = {}


def _adds_compactly(op: str, shapes: list, params: dict, positions: list[int]) -> bool:
    """:func:`jacc.ops.partials_add_compactly`, remembered (replays ask again on every call)."""
    key = (op, tuple(map(tuple, shapes)), repr(params), tuple(positions))
    hit = _COMPACT.get(key)
    if hit is None:
        from .ops import ShapeError, partials_add_compactly

        try:
            hit = partials_add_compactly(op, shapes, params, positions)
        except (ShapeError, ValueError, TypeError):
            hit = True  # bad arguments: left to the op's own check and its error message
        if len(_COMPACT) > 4096:
            _COMPACT.clear()
        _COMPACT[key] = hit
    return hit


class Tape:
    """Records ops while evaluating them.

    With ``expect`` (the :class:`Recording` of an earlier trace) the tape only checks each step
    against it and builds no graph; at the first step that differs it builds the graph of the
    steps so far and goes on recording normally. ``same_constants`` stays true while every
    constant replayed so far equals the recorded one bit for bit. Generated vertex names never
    collide with input names. ``values`` holds each vertex's value: an ndarray, or while
    replaying, a Python float for a 0-d float64 value (:meth:`arrays` makes them arrays)."""

    def __init__(self, name: str, dtype=np.float64, expect: Recording | None = None):
        self.name, self.dtype, self.expect = name, dtype, expect
        self.graph: Graph | None = None if expect is not None else Graph(name)
        self.steps: list[tuple[str, str, list, dict]] = []  # (name, op, args, params)
        self.values: dict[str, np.ndarray] = {}
        self.count = 0
        self.value_dependent: list[str] = []
        self.domains: list[str] = []  # math functions whose domain a call's values may leave (note_domain)
        # a NaN-aware reduction cut the NaN entries off an array (jacc.numpy_api.reductions): a
        # Jacobian that is not finite may be the plan's order's 0·NaN (see api's other_mode_if_finite)
        self.cut_nan = False
        # (steps, vertex, lowest, n): labels read through a one-hot mask (jacc.numpy_api.gathers._LabelGrid),
        # computed from data by the recorded steps, must hold lowest <= y < n at every call
        self.index_bounds: list[tuple[tuple, str, int, int]] = []
        self.one_hots: dict[str, tuple[str, int]] = {}  # mask vertex -> (its labels' vertex, n): jacc.onehot
        self.nonfinite_because: list[str] = []  # why a non-finite Jacobian of this call is refused (note_nonfinite)
        # 0-d vertices that are NumPy 0-d arrays (a 0-d ndarray argument, a reshape to (), a copy,
        # one changed in place): x op= y changes them in place; other 0-d values are NumPy's scalars,
        # which x op= y rebinds (another name for the old value keeps it)
        self.arrays0d: set[str] = set()
        # vertices holding integer data traced as floats (a data argument of labels, see
        # jacc.api._DataArgs) and NumPy's integer results of them, with a bound on their absolute
        # values that any data the program may take keeps: see record, Tracer.dtype
        self.ints: dict[str, float] = {}
        # vertices computed from data arguments alone (not differentiated): a clip bound among them
        # keeps a constant bound's rule (see _clip)
        self.data: set[str] = set()
        # masks computed from data alone (their recorded 0.0/1.0): NumPy's booleans, which keep
        # integer data integer in arithmetic (y * (y != -100)), see record
        self.bits: set[str] = set()
        # integer data narrower than int64 (int32 labels from JAX, uint8 class maps) and what only
        # selects or moves its entries: NumPy's arithmetic on it wraps, so it only moves, is compared, indexes
        self.narrow: dict[str, np.dtype] = {}  # (their NumPy dtypes)
        self.exact_steps = False  # inside jacc's own exact steps on labels (jacc.numpy_api.gathers)
        # vertices holding float32 data traced as float64, and NumPy's float32 results of them
        # without rounding (selections, copies): an op that NumPy would round in float32 is refused
        self.f32: set[str] = set()
        self.outputs: list[str] | None = None
        self.output_tuple: bool | pytrees.TreeSpec = False  # True: a flat tuple; a TreeSpec: nested
        self.input_groups: list | None = None  # per argument (spec, leaf input names) when one is nested
        self.same_constants = True
        self._anchor: np.ndarray | None = None  # inside anchored(): the value its op takes
        # id(caller's array) -> (that array, the graph's bit-equal private copy of it): a guard on
        # the array keeps that copy instead of a third one (jacc.guards.snapshot), and comparing
        # with it warms the memory the compiled program reads next
        self.copies: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.shared: dict[int, tuple[np.ndarray, np.ndarray]] | None = None  # earlier traces' (see record_call)
        self.replayable = np.dtype(dtype) == _F8  # the fast paths assume float64 values
        # what record's fast path checks steps against: expect's, while replaying it
        self._table = expect.replay if expect is not None and self.replayable else None
        self.input_names: set[str] = set()
        self.written: set[str] = set()  # inputs whose arrays f changed in place (x[0] = 1, x += y)
        # per nested argument: (name, the container f was given, its spec, its traced leaves)
        self.containers: list[tuple] = []
        self._net: set[str] | None = None  # inside derivative_network: the vertices whose values it skips
        self._views: dict[str, list] = {}  # array vertex -> weak references to the views taken of it
        self._root: dict[str, tuple[str, str]] = {}  # a view's vertex -> (the vertex it views at last, op)
        # ``a[i] op= y`` on a view of ``a``: (the result, a's vertex, where) until ``a[i] = ...`` takes it
        self._pending: tuple | None = None
        self.refused_float: str | None = None  # where float() of a traced value was last refused
        self.refused: str | None = None  # the last conversion of a traced value refused (its message)
        # a packed LU factor's vertex -> (the matrix it factors, its pivots): lu_solve's shortcut
        self.factored: dict[str, tuple] = {}
        self.paused = False  # inside values_only(): ops compute values and record nothing
        self.lanes = 0  # selections kept at full shape (jacc.lanes): a non-finite Jacobian traces them gathered

    def _check(self, sig: tuple) -> None:
        k = len(self.steps)
        if self.expect is not None and (k >= len(self.expect.sigs) or self.expect.sigs[k] != sig):
            self.build()

    def build(self) -> Graph:
        """The graph of the steps recorded so far (stop checking against ``expect``)."""
        if self.graph is None:
            self.graph = Graph(self.name)
            for name, op, args, params in self.steps:
                if op == "input":
                    self.graph.add_input(name, params["shape"])
                else:
                    self.graph.add_node(name, op, args, params)
            self.expect = self._table = None
            if self.outputs is not None:
                self._seal()
        return self.graph

    def _name(self) -> str:
        if self.expect is not None:
            return self.expect.names[len(self.steps)]
        while True:
            self.count += 1
            name = f"v{self.count}"
            if name not in self.values:
                return name

    def input(self, name: str, value: Any) -> "Tracer":
        if self._table is not None and type(value) is np.ndarray and value.dtype is _F8 and not value.shape:
            self._check(("input", name, ()))
            if self._table is not None:  # a 0-d input of a replay: a float from the start (_Num)
                num = float(value)
                self.steps.append((name, "input", [], {"shape": ()}))
                self.input_names.add(name)
                self.values[name] = num
                return _Num(self, name, num)
        value = _private(value, self.dtype)
        params = {"shape": value.shape}
        self._check(("input", name, value.shape))
        if self.graph is not None:
            self.graph.add_input(name, value.shape)
        self.steps.append((name, "input", [], params))
        self.input_names.add(name)
        self.values[name] = value
        return Tracer(self, name, value)

    def unwritten(self) -> None:
        """Refuse to go on when an in-place change of a view was not written back into the array it
        views (``views[0] += y`` stores it in a list): NumPy changed that array."""
        where = self._pending[2]
        self._pending = None
        raise UnsupportedOperationError(
            f"an in-place operator at {where} changed a view of another traced array and its result was stored "
            "elsewhere than into that array (a list or dict entry), while NumPy changes the array too, which a "
            "trace cannot follow; write the view's new value into the array itself (a[i] += y) or use y = v + ...")

    def record(self, op: str, args: list, params: dict | None = None) -> "Tracer":
        if not self.data:  # (no data arguments, so no integer data either: the common case)
            return self._record(op, args, params)
        if Mask in map(type, args):  # (its recorded 0.0/1.0 first: a mask of data holds integers, y * mask)
            args = [a.vertex() if type(a) is Mask else a for a in args]
        narrow = self.f32 and any(isinstance(a, Tracer) and a.name in self.f32 for a in args)
        if narrow and op not in _F32_EXACT and not any(map(_widens, args)):
            raise UnsupportedOperationError(
                f"{op} of float32 data at {call_site()}: NumPy computes it in float32, and the data is traced "
                "as float64, which rounds otherwise (the data stays a constant)")
        held = [k for k, a in enumerate(args) if isinstance(a, Tracer) and a.name in self.ints]
        narrowed = self.narrow and _narrow_type(self.narrow, op, args, self.exact_steps)
        if op in _INT_QUOTIENTS and isinstance(args[1], Tracer) and args[1].name in self.bits and held == [0]:
            raise UnsupportedOperationError(  # (NumPy's y // False is 0 in integers, inf in floats)
                f"{op} of integer data by a mask at {call_site()}: NumPy divides integers, where 0 by False is 0, "
                "and the trace divides floats (the data stays a constant)")
        if held and (op in _INT_DIVISIONS and held[-1] == 1):
            raise UnsupportedOperationError(
                f"{op} by integer data at {call_site()}: the data is traced as floats, which divide "
                "by 0 and round past 2**53 otherwise than NumPy's integers (the data stays a constant)")
        if held and op in _INT_PRODUCING and all(k in held or _integral(a) for k, a in enumerate(args)):
            raise UnsupportedOperationError(  # (sums of products: past 2**53 at labels near 2**31)
                f"{op} of integer data at {call_site()}: NumPy computes it in int64, and the data is traced "
                "as floats, which round past 2**53 otherwise (the data stays a constant)")
        r = self._record(op, args, params)
        if isinstance(r, Tracer):
            bits = self.bits
            if held and op in _INT_KEEPING and all(
                    k in held or _integral(a) or (isinstance(a, Tracer) and a.name in bits)
                    for k, a in enumerate(args) if not (op == "where" and k == 0)):  # (where's condition: a mask)
                bound = _int_bound(op, args, {**dict.fromkeys(bits, 1.0), **self.ints} if bits else self.ints)
                if bound >= 2.0 ** 53:
                    raise UnsupportedOperationError(
                        f"{op} of integer data at {call_site()}: the data is traced as floats, and its values "
                        f"could reach {bound:.3g} here, past 2**53, where floats round otherwise than NumPy's "
                        "integers (the data stays a constant)")
                self.ints[r.name] = bound  # (NumPy's result is integer too)
            elif held == [0] and op in _INT_QUOTIENTS and _integral(args[1]) and np.all(np.asarray(args[1]) != 0):
                # y % K and y // c by a constant nonzero integer: exact in floats, and integers (labels
                # wrapped around an axis, y % K); by integer data they are refused above
                self.ints[r.name] = (float(np.max(np.abs(args[1]))) if op != "floor_divide"
                                     else self.ints[args[0].name])
            if all(a.name in self.data for a in args if isinstance(a, Tracer)):
                self.data.add(r.name)
                if op in MASK_OPS:  # (a mask of data is NumPy's booleans: y * mask stays integer)
                    self.bits.add(r.name)
            if narrowed and op in _NARROW_SAFE and narrowed.kind in "iu" and narrowed.itemsize < 8:
                self.narrow[r.name] = narrowed  # (NumPy's result is of that type too; int64 may take arithmetic)
            if narrow and op in _F32_EXACT and not any(map(_widens, args)):
                self.f32.add(r.name)  # (NumPy's result is float32 too)
        return r

    def _record(self, op: str, args: list, params: dict | None = None) -> "Tracer":
        if self.paused:
            return _plain_step(op, args, params or {})
        if self._pending is not None:
            self.unwritten()
        if _LANES[0] and Lanes in map(type, args):  # x[m] * a: on every lane, or on the selection (jacc.lanes)
            return lanes_record(self, op, args, params)
        if Mask in map(type, args):  # a comparison used as numbers: its recorded 0.0/1.0
            args = [a.vertex() if type(a) is Mask else a for a in args]
        if op in _SEPARATE_USES and len(args) > 1:
            args = self._separate(op, args, params)
        if op == "matmul":
            held = self._gram_side(args)
            if held is not None:  # A @ Aᵀ or Aᵀ @ A: see gram_join in jacc.ops
                q = self.record(f"matmul_hold_{'ab'[held]}", args)
                n = q.ndim
                qt = self.record("transpose", [q], {"axes": None if n == 2 else list(range(n - 2)) + [n - 1, n - 2]})
                return self.record("gram_join", [q, qt])
        params = params or {}
        table = self._table
        blank = self._net is not None and self._feeds_network(op, args)
        if table is not None and not blank:
            # the replay's fast path: a step whose op, params, argument names and constants (bit
            # for bit) are the recorded ones reuses the recorded arguments; anything else takes
            # the general path below, which compares signatures and builds the graph
            try:
                step = table[len(self.steps)]
            except IndexError:
                step = None
            try:  # (an error here is one of these values, as in _evaluated: f may catch it)
                if step is not None and step[0] == op and step[1] == params and len(args) == step[7]:
                    fl = step[8]
                    if fl is not None:  # 0-d values stay Python floats: no arrays, no ufunc dispatch
                        xs = self._floats(args, step[4]) if op != "getitem" else self._array_arg(args[0], step[4][0])
                        if xs is not None:
                            r = fl(*xs)
                            if type(r) is np.ndarray:  # (stack: an array of the floats, bits kept)
                                return self._traced(step, r)
                            if r is not None and r == r:  # (a NaN: NumPy decides its payload, below)
                                return self._kept(step, r)
                    arith = _ARITH.get(op)
                    if arith is not None and len(args) == 2:  # + − × ÷ with an array: the ufunc itself
                        va, vb = self._operand(args[0], step[4][0]), self._operand(args[1], step[4][1])
                        if va is not None and vb is not None:
                            value = arith(va, vb)
                            if type(value) is not np.ndarray or value.dtype is not _F8:
                                value = self._own(value)
                            return self._traced(step, value)
                    value = None
                    if step[7] == 2:  # most ops; written out, this is the hot path of small functions
                        va, vb = self._replayed(args[0], step[4][0]), self._replayed(args[1], step[4][1])
                        vals = None if va is None or vb is None else [va, vb]
                        scalar = step[6]
                        if (vals is not None and scalar is not None and not va.ndim and not vb.ndim
                                and va.dtype is _F8 and vb.dtype is _F8):
                            r = scalar(float(va), float(vb))
                            if r is not None and r == r:  # (see _evaluate)
                                value = np.array(r)
                    else:
                        vals = [self._replayed(a, x) for a, x in zip(args, step[4])]
                        if any(v is None for v in vals):
                            vals = None
                    if vals is not None:
                        if value is None:
                            value = self._evaluated(op, step[5], step[6], vals, params)
                            if type(value) is not np.ndarray or value.dtype is not _F8:
                                value = self._own(value)
                        return self._traced(step, value)
            except Exception as e:
                self.raised(op, e)
                raise
        gargs = []
        given: list = []  # per argument, the caller's array where it is one (see copies)
        for a in args:
            given.append(a if type(a) is np.ndarray else None)
            if type(a) is not np.ndarray and isinstance(a, _Held) and not isinstance(a, Tracer):
                a = _unheld(a)
            if isinstance(a, Tracer) and a.tape.paused:
                a = a.value  # an outer trace's value, inside its values_only() (a constant here)
            if isinstance(a, Tracer):
                if a.tape is not self:
                    raise UnsupportedOperationError(
                        f"a traced array from another trace was used at {call_site()} "
                        "(nested jacc traces are not supported)")
                gargs.append(a.name)
            elif isinstance(a, (list, tuple)) and _holds_tracer(a):  # [x[0], 1.0]: NumPy's array of it (a stack)
                gargs.append(_nested(a).name)
            else:
                if _sparse(a):
                    a = _sparse_operand(op, a)
                elif type(a) is not np.ndarray and type(a) not in _NUMBERS:
                    check_plain(a, f"an operand of {op} at {call_site()}")
                try:
                    a = np.asarray(a)
                except UnsupportedOperationError as e:  # a traced complex value (jacc.numpy_api.complexes)
                    if getattr(e, "complex_operand", False):
                        return COMPLEX_OPS[0](op, args, params)
                    raise
                if a.dtype == object:
                    _refuse_objects(op, a)
                if a.dtype.kind == "c":  # (a cast to float would drop the imaginary part without a word)
                    if COMPLEX_OPS[0] is not None:
                        return COMPLEX_OPS[0](op, args, params)
                    raise UnsupportedOperationError(
                        f"{op} of a traced array and a complex value at {call_site()}: jacc traces real arrays; "
                        "write the real and imaginary parts as real arrays of their own")
                gargs.append(a if a.dtype == bool or a.dtype == self.dtype else a.astype(self.dtype))
        self._check(_sig(op, gargs, params))
        # Constants are snapshots (the caller may change an array later, even inside f); when
        # replaying, one bit-for-bit equal to the recorded constant is that recorded copy.
        old = self.expect.args[len(self.steps)] if self.expect is not None else None
        for j, a in enumerate(gargs):
            if isinstance(a, str):
                continue
            mine = given[j]
            if old is not None and same_bits(a, old[j]):
                gargs[j] = old[j]
            else:
                kept = self.shared.get(id(mine)) if self.shared and mine is not None else None
                if kept is not None and kept[0] is mine and kept[1].dtype == a.dtype and kept[1].shape == a.shape \
                        and same_bits(a, kept[1]):
                    gargs[j] = kept[1]
                else:
                    gargs[j] = _private(a)
                self.same_constants = False
            if mine is not None and mine.dtype == gargs[j].dtype and mine.shape == gargs[j].shape:
                self.copies[id(mine)] = (mine, gargs[j])
        vals = [self._array(g) if isinstance(g, str) else g for g in gargs]
        name = self._name()
        if self.graph is not None:
            try:
                self.graph.add_node(name, op, gargs, params)
            except GraphError as e:
                msg = str(e).split(": ", 1)[-1]
                raise (IndexOutOfBounds if "out of bounds" in msg else TraceError)(f"{op} at {call_site()}: {msg}") \
                    from None
        self.steps.append((name, op, gargs, params))
        if blank:  # a value no partial reads (see derivative_network): its shape, not its work
            self._net.add(name)
            value = np.broadcast_to(np.array(np.nan, dtype=self.dtype), OPS[op].shape([v.shape for v in vals], params))
        else:  # (record_call silences floating-point warnings)
            try:
                value = self._evaluated(op, OPS[op].evaluate, _SCALAR_OPS.get(op) if self.replayable else None,
                                        vals, params)
            except Exception:  # (f may catch it and go on: the step it did not take is no step)
                self.steps.pop()
                if self.graph is not None:
                    self.graph.remove_last(name)
                raise
        if self._anchor is not None:  # (see anchored: the library's value, not the formula's)
            value = np.asarray(self._anchor, dtype=value.dtype).reshape(np.shape(value))
        if type(value) is not np.ndarray or value.dtype is not _F8:
            value = self._own(value)
        self.values[name] = value
        t = Tracer(self, name, value)
        if op in _VIEW_OPS and isinstance(gargs[0], str):
            self._watch(gargs[0], op, params, t)
        return t

    def anchored(self, t: "Tracer", value: np.ndarray) -> "Tracer":
        """``t`` (a traced formula) holding a library's ``value`` at this point, which differs from
        the formula's by rounding: a new vertex ``t + 0`` whose value is ``value``. The graph holds
        no constant of this call (the difference as a constant changed at every call, so an ``f``
        with an FFT, a SciPy filter or a convolution ran at every call), so a call that skips ``f``
        computes the formula's own value, accurate to its own scale."""
        self._anchor = value
        try:
            return self.record("add", [t, 0.0])
        finally:
            self._anchor = None

    @contextlib.contextmanager
    def derivative_network(self, *sources: "Tracer"):
        """Inside, ops fed by ``sources`` (or by such ops) record their step but not their value:
        for a derivative recorded as a network of products (see ``value_from``), linear in its
        sources, whose partials read only the held values beside them. A placeholder of NaNs
        stands in, so a partial that read one would show. A non-linear use raises."""
        outer, self._net = self._net, {x.name for x in sources}
        try:
            yield
        finally:
            self._net = outer

    def _feeds_network(self, op: str, args: list) -> bool:
        """Whether ``op(args)`` is inside the current derivative network (checking that it is
        linear in the network's values, as every partial's skipping of them assumes)."""
        fed = [k for k, a in enumerate(args) if isinstance(a, Tracer) and a.tape is self and a.name in self._net]
        if not fed:
            return False
        kind = _NETWORK_OPS.get(op)
        if kind is None or (kind == "product" and len(fed) > 1) or (kind == "quotient" and fed != [0]):
            raise TraceError(f"{op} at {call_site()}: a derivative network must be linear in its values "
                             "(a sum, a selection or a product with one of them)")
        return True

    def _separate(self, op: str, args: list, params: dict | None) -> list:
        """``args`` with each repeat of a traced argument replaced by an ``alias`` of it where
        the partials of its uses would not add compactly (:func:`jacc.ops.partials_add_compactly`):
        one edge holds their sum, and ∂(X@X)/∂X summed is a dense N⁴ array, where two edges keep
        both terms structured and the adjoints add at the alias (2N³ multiplications, not N⁴)."""
        uses: dict[str, list[int]] = {}
        for k, x in enumerate(args):
            if isinstance(x, Tracer) and x.tape is self:
                uses.setdefault(x.name, []).append(k)
        if len(uses) == sum(map(len, uses.values())):
            return args
        out = list(args)
        shapes = [np.shape(x.value if isinstance(x, Tracer) else x) for x in args]
        for positions in uses.values():
            if len(positions) > 1 and not _adds_compactly(op, shapes, params or {}, positions):
                for k in positions[1:]:
                    out[k] = self.unary("alias", args[k])
        return out

    def is_scalar(self, t: "Tracer") -> bool:
        """Whether NumPy's value in place of ``t`` is a scalar (a float argument, an entry ``x[i]``, a
        reduction's or a 0-d array's ufunc result): ``x += y`` rebinds it, ``np.isscalar`` says True.
        A 0-d array (an argument, ``np.array(s)``, one changed in place, a view) is none."""
        return not t.shape and t.name not in self.arrays0d and self.is_view(t.name) is None

    def is_view(self, name: str) -> str | None:
        """The op by which vertex ``name`` is, in NumPy's terms, a view of another array (a slice,
        a reshape, a transpose, a broadcast), or None where it owns its values."""
        entry = self._root.get(name)
        return entry[1] if entry else None

    def own(self, name: str) -> None:
        """Vertex ``name`` owns its values (a NumPy function's new array made by a view op)."""
        self._root.pop(name, None)

    def recent(self, name: str, depth: int = 8) -> tuple | None:
        """The step ``(name, op, args, params)`` that made ``name``, if among the last ``depth``."""
        for step in self.steps[-1:-depth - 1:-1]:
            if step[0] == name:
                return step
        return None

    def operand(self, arg: Any) -> Any:
        """A recorded argument back as a :class:`Tracer` (a vertex name) or the constant."""
        return Tracer(self, arg, self.values[arg]) if isinstance(arg, str) else arg

    def _gram_side(self, args: list) -> int | None:
        """Which operand of ``a @ b`` is the other's transpose (last two axes swapped by a step
        among the last few), as the index of the one to hold; None for other products."""
        if len(args) != 2 or not all(type(x) is Tracer and x.tape is self for x in args):
            return None
        a, b = args
        n = a.value.ndim
        if n < 2 or b.value.ndim != n or a.name == b.name:
            return None
        swap = list(range(n - 2)) + [n - 1, n - 2]
        for held, (t, x) in ((1, (b, a)), (0, (a, b))):  # t made as the transpose of x
            step = self.recent(t.name)
            if step is not None and step[1] == "transpose" and type(step[2][0]) is str and step[2][0] == x.name:
                axes = step[3].get("axes")
                if (list(range(n))[::-1] if axes is None else [k % n for k in axes]) == swap:
                    return held
        return None

    def _traced(self, step: tuple, value: np.ndarray) -> "Tracer":
        """Replayed ``step``'s value ``value`` (a float64 ndarray)."""
        done = step[9]
        self.steps.append(done)
        self.values[done[0]] = value
        t = _new(Tracer)  # (no __init__ frame)
        t.tape, t.name, t.value = self, done[0], value
        if done[1] in _VIEW_OPS and type(done[2][0]) is str:
            self._watch(done[2][0], done[1], done[3], t)
        return t

    def _watch(self, base: str, op: str, params: dict, view: "Tracer") -> None:
        """Remember ``view`` (made from vertex ``base`` by ``op``) while it lives, where NumPy's
        result would be a view: an in-place change of the array it views would change it too."""
        if _views(op, params, np.ndim(view.value)):
            self.lend(base, view, op)

    def lend(self, base: str, view: "Tracer", op: str) -> None:
        """Count ``view`` as a view of vertex ``base`` (made by ``op``; also one recorded as a new
        array that NumPy's is a view, as_strided's): writes through it, and changes of ``base``
        while it lives, are refused or followed (:meth:`view_steps`)."""
        root = self._root.get(base, (base,))[0]
        self._root[view.name] = (root, op)
        self._views.setdefault(root, []).append(weakref.ref(view))

    def viewed(self, name: str) -> bool:
        """Whether a view of vertex ``name`` (or of a view of it) is still in use."""
        refs = self._views.get(name)
        if refs:
            refs[:] = [r for r in refs if r() is not None and r().name in self._root]
        return bool(refs)

    def _chain(self, v: str, root: str) -> dict[int, tuple] | None:
        """The view steps that made vertex ``v`` from ``root``, by their position on the tape,
        looked for back from the end (a view's steps are recent) among the last
        :data:`VIEW_STEPS_BACK`; None where one is not found or is no view op of a vertex."""
        chain, k = {}, len(self.steps)
        stop = max(k - VIEW_STEPS_BACK, 0)
        while v != root:
            k -= 1
            while k >= stop and self.steps[k][0] != v:
                k -= 1
            step = self.steps[k] if k >= stop else None
            if step is None or step[1] not in _VIEW_OPS or type(step[2][0]) is not str:
                return None
            chain[k] = step
            v = step[2][0]
        return chain

    def entries_of(self, v: str) -> tuple[str, np.ndarray]:
        """The vertex ``v`` was selected from by recent steps that pick entries (views, and copies
        such as ``x[[0, 2]]`` or ``x[0]``; itself where none made it), and for each entry of ``v`` the
        flat position in that vertex it was taken from (``x[..., 0:1]``: x, [[0]])."""
        chain, k, name = [], len(self.steps), v
        stop = max(k - VIEW_STEPS_BACK, 0)
        while True:
            k -= 1
            while k >= stop and self.steps[k][0] != name:
                k -= 1
            if k < stop:
                break
            step = self.steps[k]
            if step[1] not in _VIEW_OPS or len(step[2]) != 1 or type(step[2][0]) is not str:
                break
            chain.append(step)
            name = step[2][0]
        made = np.arange(np.size(self.values[name])).reshape(np.shape(self.values[name]))
        for _, op, _, params in reversed(chain):
            made = _view_op(made, op, params)
        return name, made

    def view_steps(self, name: str) -> list[tuple[list, tuple]] | None:
        """The views of vertex ``name`` still in use, as (the traced arrays that are one view, the
        step that made it) in the order they were made, with the steps between (views of views
        whose arrays are gone: no arrays), where each can be made again from a changed ``name``
        (:meth:`_chain`) as a view of it in NumPy (:func:`_run_views`); None where one cannot (an
        in-place change is then refused)."""
        if not self.viewed(name):
            return []
        objects: dict[str, list] = {}
        for r in self._views[name]:
            objects.setdefault(r().name, []).append(r())
        needed: dict[int, tuple] = {}
        for v in objects:
            chain = self._chain(v, name)
            if chain is None:
                return None
            needed.update(chain)
        made = [(objects.get(needed[k][0], []), needed[k]) for k in sorted(needed)]
        return made if _run_views(self.values[name], [step for _, step in made]) is not None else None

    def layout(self, name: str) -> np.ndarray | None:
        """A probe laid out as NumPy lays out vertex ``name`` in the user's run (see
        :func:`_run_views`): its root's layout through the view steps that made it (:meth:`_chain`);
        None where they are not found."""
        root = self._root.get(name, (name,))[0]
        chain = self._chain(name, root)
        made = None if chain is None else _run_views(self.values[root], [chain[k] for k in sorted(chain)])
        return None if made is None else made[name if chain else None]

    def follow_views(self, old: str, x: "Tracer", made: list[tuple[list, tuple]]) -> None:
        """After ``x`` (vertex ``old`` until now) changed in place, its views show the change, as
        NumPy's do: each is made again, by the same steps, from the new ``x`` (``made``: from
        :meth:`view_steps` before the change)."""
        now = {old: x}
        for views, (name, op, args, params) in made:
            new = self.record(op, [now[args[0]], *args[1:]], params)
            for v in views:
                v.name, v.value = new.name, new.value
                self.lend(now[args[0]].name, v, op)  # (v itself, not the record's new object)
            now[name] = views[0] if views else new

    def _kept(self, step: tuple, r: float) -> "_Num":
        """Replayed ``step``'s value ``r`` as a Python float (see :class:`_Num`)."""
        done = step[9]
        self.steps.append(done)
        self.values[done[0]] = r
        t = _new(_Num)  # (no __init__ frame: this runs once per replayed arithmetic step)
        t.tape, t.name, t.num = self, done[0], r
        return t  # (never a view: only all-int getitem, stack and arithmetic have float forms)

    def _float_step(self, op: str, arity: int) -> tuple | None:
        """The next recorded step when this replay may take it on floats: the same op, with no
        params and ``arity`` arguments, and a float form (see :func:`_float_form`)."""
        table = self._table
        if table is not None:
            k = len(self.steps)
            if k < len(table):
                step = table[k]
                if step[10] is not None and step[0] == op and step[7] == arity:
                    return step
        return None

    def binary(self, op: str, a: Any, b: Any) -> "Tracer":
        """``record(op, [a, b])`` for an op without params, with a shortcut for the commonest
        replayed step: a float op on two floats (see :class:`_Num`)."""
        step = self._float_step(op, 2)
        if step is not None:
            ea, eb = step[4]
            ta, tb = type(a), type(b)
            xa = (a.num if ta is _Num and a.name == ea and a.tape is self
                  else a if ta is float and type(ea) is _Expected and ea.number == a else None)
            xb = (b.num if tb is _Num and b.name == eb and b.tape is self
                  else b if tb is float and type(eb) is _Expected and eb.number == b else None)
            if xa is None or xb is None:  # a constant, or a 0-d array: the general check
                xs = self._floats([a, b], step[4])
                if xs is not None:
                    xa, xb = xs
            if xa is not None and xb is not None:
                try:
                    r = step[10](xa, xb)
                except Exception as e:  # (f's np.errstate(...="raise"): see _evaluated)
                    self.raised(op, e)
                    raise
                if r is not None and r == r:
                    return self._kept(step, r)
        return self.record(op, [a, b])

    def unary(self, op: str, x: Any) -> "Tracer":
        """``record(op, [x])`` for an op without params, with :meth:`binary`'s shortcut."""
        if type(x) is _Num and x.tape is self:
            step = self._float_step(op, 1)
            if step is not None and x.name == step[4][0]:
                try:
                    r = step[10](x.num)
                except Exception as e:  # (as in binary)
                    self.raised(op, e)
                    raise
                if r is not None and r == r:
                    return self._kept(step, r)
        return self.record(op, [x])

    def _floats(self, args: list, expected: tuple) -> list | None:
        """The arguments as Python floats when each is the recorded one (see :meth:`_replayed`)
        and a 0-d float64 value, else None."""
        out = []
        for a, x in zip(args, expected):
            tp = type(a)
            if tp is _Num or tp is Tracer:
                if a.name != x or a.tape is not self:
                    return None
                if tp is _Num:
                    out.append(a.num)
                    continue
                v = a.value
                if v.shape or v.dtype is not _F8:
                    return None
                out.append(float(v))
            elif type(x) is _Expected and x.number is not None and (
                    a == x.number if tp is float else x.matches(a)):
                out.append(x.number)
            else:
                return None
        return out

    def _array_arg(self, a: Any, x: Any) -> list | None:
        """``[value]`` of a traced float64 array argument that is the recorded one, else None."""
        if type(a) is Tracer and a.name == x and a.tape is self and a.value.dtype is _F8:
            return [a.value]
        return None

    def _operand(self, a: Any, x: Any) -> Any:
        """As :meth:`_replayed`, with a float replay's 0-d value as its float (a ufunc gives the
        same bits for a float as for a 0-d array)."""
        if type(a) is _Num:
            return a.num if a.name == x and a.tape is self else None
        return self._replayed(a, x)

    def _replayed(self, a: Any, x: Any) -> np.ndarray | None:
        """The value of argument ``a`` when it is the recorded argument ``x`` (the same vertex of
        this tape, or a constant equal to the recorded one bit for bit), else None."""
        if type(a) is Tracer or type(a) is _Num:
            return a.value if a.name == x and a.tape is self else None
        if type(x) is _Expected and ((type(a) is float and a == x.number) or x.matches(a)):
            return x.array
        return None

    def _array(self, name: str) -> np.ndarray:
        """Vertex ``name``'s value as an ndarray (a float replay keeps 0-d values as floats)."""
        v = self.values[name]
        return np.array(v) if type(v) is float else v

    def arrays(self) -> dict[str, np.ndarray]:
        """Every vertex's value as an ndarray: ``values`` with the floats of a replay made 0-d
        arrays, in place (what programs and the executor read)."""
        vals = self.values
        for k, v in vals.items():
            if type(v) is float:
                vals[k] = np.array(v)
        return vals

    def _own(self, value: Any) -> np.ndarray:
        """An op's result as an ndarray of the trace's dtype."""
        if type(value) is _F64_SCALAR and self.replayable:  # a ufunc's result on 0-d arrays
            return value.__array__()
        if not isinstance(value, np.ndarray) or value.dtype != self.dtype:
            return np.asarray(value, dtype=self.dtype)
        return value

    def declare(self, outs: list, output_tuple: bool | pytrees.TreeSpec) -> None:
        """Make the returned values ``outs`` (traced or constant) the outputs and :meth:`finish`:
        a constant becomes a ``constant`` vertex, an input or a repeated output an ``identity``
        one (every output is a vertex of its own)."""
        seen: set[str] = set()
        names = []
        for k, r in enumerate(outs):
            if type(r) in VIEWS:  # a view of an array f made: the entries it shows
                r = r.current()
            elif type(r) is Lanes:  # (x[m] returned: the selection itself)
                r = r.gathered()
            if r is None:  # (np.asarray would make it NaN, a constant whose Jacobian is zeros)
                hint = f"; does {self.name} end with a return statement?" if len(outs) == 1 else ""
                raise TypeError(f"output {k} of {self.name} is None, not an array{hint}")
            if not isinstance(r, Tracer):
                complex_ = np.iscomplexobj(r) if isinstance(r, (np.ndarray, np.generic, complex)) else False
                try:
                    if complex_:  # (np.asarray would drop the imaginary part with a warning only)
                        raise TypeError("complex")
                    val = np.asarray(r, dtype=float)
                except (TypeError, ValueError) as e:
                    if not (complex_ or getattr(e, "complex_operand", False)):
                        raise TypeError(f"output {k} of {self.name} is {type(r).__name__}, not an array") from None
                    raise UnsupportedOperationError(
                        f"output {k} of {self.name} is complex; jacc differentiates real results: return np.real(z), "
                        "np.imag(z) or np.abs(z) (or both parts, as a tuple)") from None
                params = {"value": val.tolist()}
                if val.size == 0:  # (nested lists lose the axes after an empty one)
                    params["shape"] = list(val.shape)
                r = self.record("constant", [], params)
            elif r.name in self.input_names or r.name in seen:
                r = self.record("identity", [r])
            seen.add(r.name)
            names.append(r.name)
        self.finish(names, output_tuple)

    def finish(self, outputs: list[str], output_tuple: bool | pytrees.TreeSpec) -> None:
        """Declare the outputs; a replay that ends differently from ``expect`` builds its graph."""
        e = self.expect
        self.outputs, self.output_tuple = outputs, output_tuple
        if e is not None and (len(self.steps) != len(e.sigs) or outputs != e.outputs
                              or output_tuple != e.output_tuple):
            self.build()
        elif self.graph is not None:
            self._seal()

    def _seal(self) -> None:
        self.graph.set_outputs(self.outputs)
        self.graph.meta["output_tuple"] = self.output_tuple
        if self.input_groups is not None:
            self.graph.meta["input_groups"] = self.input_groups
        if self.value_dependent:  # (a copy: a mask read after the trace has ended is no part of it)
            self.graph.meta["value_dependent"] = list(self.value_dependent)
            self.graph.meta["traced_at"] = TracedPoint({x: self.values[x] for x in self.graph.inputs})
        if self.domains:
            self.graph.meta["math_domain"] = list(self.domains)
        if self.lanes:
            self.graph.meta["lanes"] = self.lanes
        if self.index_bounds:
            self.graph.meta["index_bounds"] = list(self.index_bounds)
        if self.one_hots:
            self.graph.meta["one_hot"] = dict(self.one_hots)

    def recording(self) -> Recording:
        sigs = [(("input", n, p["shape"]) if op == "input" else _sig(op, args, p)) for n, op, args, p in self.steps]
        return Recording([s[0] for s in self.steps], sigs, [s[2] for s in self.steps], self.outputs,
                         self.output_tuple)

    def _evaluated(self, op: str, evaluate: Callable, scalar: Callable | None, vals: list, params: dict) -> Any:
        """:func:`_evaluate`; an error it raises (``LinAlgError`` of a matrix that is not positive
        definite, ``FloatingPointError`` under ``np.errstate(...="raise")``) is one of these values:
        where ``f`` catches it and goes on another way, its trace depends on them."""
        try:
            return _evaluate(evaluate, scalar, vals, params)
        except Exception as e:
            self.raised(op, e)
            raise

    def raised(self, op: str, e: Exception) -> None:
        """``op`` raised ``e`` at this trace's values: where ``f`` catches it and goes on another
        way, its trace depends on them."""
        self.note_value_dependence(f"{op} raised {type(e).__name__} at these values")

    def recorded_constant(self, op: str, position: int, value: Any) -> Any:
        """``value``, or while replaying an earlier trace whose next step is ``op``, that step's
        constant argument at ``position``: a value any trace may choose alike (jacc.lanes' fills)
        stays the recorded one, so the replay keeps its constants."""
        e, k = self.expect, len(self.steps)
        if e is not None and k < len(e.sigs) and e.sigs[k][0] == op and position < len(e.args[k]):
            old = e.args[k][position]
            if not isinstance(old, str) and np.shape(old) == np.shape(value):
                return old
        return value

    def note_value_dependence(self, what: str) -> None:
        self.value_dependent.append(f"{what} at {call_site()}")

    def note_domain(self, what: str) -> None:
        """``what`` (``math.log``) raises outside its domain where ``f`` runs; a call that skips
        ``f`` and meets a non-finite block runs ``f`` instead, so the error is raised as ``math``
        does (``jacc.numpy_api.stdlib_math``)."""
        self.domains.append(f"{what} at {call_site()}")

    def note_nonfinite(self, why: str) -> None:
        """At this call's values an op's partial is not finite (eigenvectors at a repeated
        eigenvalue): a non-finite Jacobian is refused, saying ``why``, unless NaN is asked to
        propagate (a later call that skips ``f`` and may meet one: :meth:`note_domain`)."""
        self.nonfinite_because.append(why)


class _Running(threading.local):
    """The traces whose ``f`` runs now in this thread (record_call), innermost last."""

    def __init__(self):
        self.tapes: list[Tape] = []


_RUNNING = _Running()


@contextlib.contextmanager
def values_only():
    """Inside, the traces running now compute values and record nothing: their ops give plain
    arrays, and ``float()``, ``bool()`` and ``np.asarray`` of their traced arrays read values; a
    trace started inside (``jacc.jacobian`` of a closure over traced values) records as usual and
    sees the outer traced values as constants. For a solver's iterations, of which the caller keeps
    only the result's value and records its derivative itself (:mod:`jacc.numpy_api.scipy_optimize`).

    >>> import numpy as np, jacc
    >>> def f(x):
    ...     with values_only():
    ...         seen = float(np.sin(x).sum())  # a plain float: nothing recorded
    ...     return x * seen
    >>> len(jacc.trace(f, np.zeros(2)).nx)  # x, and x * 0.0
    2
    """
    tapes = [t for t in _RUNNING.tapes if not t.paused]
    saved = [t._table for t in tapes]
    for t in tapes:
        t.paused, t._table = True, None  # (no replay fast paths: every op reaches record)
    try:
        yield
    finally:
        for t, table in zip(tapes, saved):
            t.paused, t._table = False, table


def _plain_step(op: str, args: list, params: dict) -> Any:
    """``op`` on values, for a paused tape's :meth:`Tape.record`; an argument of a trace that is
    still recording (one started inside values_only) takes the op to that trace."""
    vals, live = [], None
    for a in args:
        if type(a) is not np.ndarray and isinstance(a, _Held) and not isinstance(a, Tracer):
            a = _unheld(a)
        if isinstance(a, Tracer):
            if not a.tape.paused:
                live = a.tape
                vals.append(a)
                continue
            a = a.value
        a = np.asarray(a)
        vals.append(a if a.dtype == bool or a.dtype.kind == "f" else a.astype(np.float64))
    if live is not None:
        return live.record(op, vals, params)
    return OPS[op].evaluate(vals, params)


def _public_ufuncs() -> set[str]:
    """The ufuncs recorded, less SciPy's private ones (they serve its public functions)."""
    return {n for n in _UFUNCS if not n.startswith("_")}


def _unsupported(what: str) -> UnsupportedOperationError:
    names = sorted(_public_ufuncs() | {f.__name__ for f in _FUNCTIONS})
    return UnsupportedOperationError(
        f"{what} is not supported by jacc's tracer (called at {call_site()}). "
        f"Supported NumPy functions: {', '.join(names)}; operators + - * / ** @, unary -, abs, "
        "comparisons, indexing with constant indices, and the methods "
        f"{', '.join('.' + m for m in sorted(set(_METHODS) | _OWN_METHODS))}.")


#: jacc.numpy_api.complexes.combine: a binary op with a complex operand, as real ops on its parts
COMPLEX_OPS: list = [None]

#: jacc.numpy_api.gathers.gather_by_mask: indexing with integer data (labels passed as data)
DATA_GATHER: list = [None]

#: why integer data (labels) converted to an array stays a constant: np.eye(K)[y] indexes a NumPy
#: array, whose indexing takes no traced index
_LABELS_HINT = ("; integer data (labels) that indexes a NumPy array, as np.eye(K)[y], stays a constant: write "
                "the one-hot array as (y[:, None] == np.arange(K)) * 1.0, or index a traced array")


def _holds_int_data(tape: "Tape", index: Any) -> bool:
    """Whether ``index`` holds a traced array computed from data alone (:attr:`Tape.data`, which
    holds the integer data of :attr:`Tape.ints` too)."""
    if not tape.data or tape.paused:
        return False
    return any(isinstance(i, Tracer) and i.name in tape.data for i in (index if type(index) is tuple else (index,)))


class _ArrayConversion(UnsupportedOperationError):
    """A traced array asked for as a plain one (``np.asarray(x)``; see :mod:`jacc.constructors`).
    ``undo()``: the conversion was served after all, so the tape forgets it (a later error in a
    swapped library is then not blamed on it)."""

    def __init__(self, message: str, tape: Any = None, before: str | None = None):
        super().__init__(message)
        self.tape, self.before = tape, before

    def undo(self) -> None:
        if self.tape is not None:
            self.tape.refused = self.before


class _PlainWrite(_ArrayConversion):
    """A traced value written into a plain NumPy array (``a[i] = x``, ``a += x``, ``np.copyto``):
    the array may be one ``f`` makes, which a trace with buffers holds (see :mod:`jacc.buffers`)."""


#: The assignment a plain NumPy array cannot take, and what to do instead (see :class:`_PlainWrite`).
PLAIN_WRITE_FIX = (
    "a plain NumPy array cannot hold a traced value; write into an array f makes with np.zeros, np.ones, "
    "np.empty, np.full, np.eye, np.identity, np.array([...]), or a copy of a constant array made by np.copy(a) "
    "or np.array(a) (not a.copy() or a.astype(float): methods of a plain array give plain arrays) (jacc gives f "
    "arrays that can take traced values; write into the array itself, a[0:2] += x rather than v = a[0:2]; "
    "v += x), or into a traced array (y = x.copy()), or build the array with np.stack, np.concatenate or np.where; "
    "an array f keeps from an earlier call (a global or a cache, made when f first ran, perhaps at jacc's first "
    "trace of f) stays plain: make it anew at each call"
    if sys.version_info >= (3, 11) else  # (jacc.buffers reads instruction positions, new in 3.11)
    "a plain NumPy array cannot hold a traced value (on Python 3.11 or later, one that f makes with np.zeros & "
    "co. can); write into a traced array (y = x.copy()), or build the array with np.stack, np.concatenate or "
    "np.where")


class _FloatConversion(_ArrayConversion):
    """``float()`` of a traced value. SciPy's root finders ask for one from ``f``'s result; a first
    trace that meets it runs ``f`` again with jacc's replacements (see :mod:`jacc.constructors`),
    which record them."""


class _UnsupportedAttribute(UnsupportedOperationError, AttributeError):
    """An ndarray attribute the tracer does not record (also an AttributeError, so ``hasattr``
    and duck-typing probes see a missing attribute rather than a crash)."""


def _sparse_operand(op: str, a: Any) -> np.ndarray:
    """A SciPy sparse constant beside a traced array in ``op``: dense for a sum or difference
    (SciPy's answer is dense too); refused for the rest, whose meaning differs between
    ``spmatrix`` (``*`` is a matrix product) and ``sparray`` (``*`` is elementwise, the result sparse)."""
    if op in ("add", "sub") and hasattr(a, "toarray"):  # (not a scipy.sparse.linalg operator)
        return a.toarray()
    raise UnsupportedOperationError(
        f"{op} of a traced array and a SciPy sparse {type(a).__name__} at {call_site()}: write the product as "
        "A @ x or x @ A (recorded as sparse matrix products), or an elementwise one as A.toarray() * x")


def _concretisation(what: str) -> UnsupportedOperationError:
    site = call_site()
    hint = ("keep it an array (e.g. x.sum() instead of float(x.sum()))"
            if f"scipy{os.sep}sparse{os.sep}" not in site else
            "a SciPy sparse matrix cannot hold traced values, so its own elementwise arithmetic with one "
            "(e.g. A.multiply(x)) cannot be traced; the products A @ x, A.T @ x and A.dot(x) with a traced "
            "vector or matrix x are recorded, and an elementwise product can be written A.toarray() * x")
    return UnsupportedOperationError(
        f"{what} of a traced value at {site} would turn it into a constant, so its derivative "
        f"would be lost; {hint}")


def _conversion(convert: Callable, what: str) -> Callable:
    """A Tracer's ``__int__``-like method: ``convert`` of the value while the tape is paused
    (jacc's own code), else the refusal naming ``what``."""
    def method(self):
        if self.tape.paused:
            return convert(self.value)
        raise _concretisation(what)
    return method


def _refuse_objects(op: str, a: np.ndarray) -> None:
    """Refuse an operand that is an array of objects doing arithmetic of their own (NumPy wraps a
    ``Polynomial`` so: ``scale * x`` in its ``mapdomain``), naming them, not as a failed float cast."""
    odd = next((e for e in a.flat if not isinstance(e, (Tracer, float, int, complex, np.number, np.bool_))), None)
    if odd is None:
        return
    raise TypeError(f"an operand of {op} at {call_site()} is an array of {type(odd).__name__} objects, whose "
                    "arithmetic NumPy leaves to them: jacc traces float arrays; "
                    + (_polynomial_hint(type(odd)) or "pass the numbers as a float array"))


def _polynomial_hint(t: type) -> str:
    """What to write instead of arithmetic with one of NumPy's polynomial classes ('' for another type)."""
    return ("NumPy's polynomial classes compute in Python: use the module functions, as "
            "np.polynomial.polynomial.polyval(x, p.coef), or polyfit(x, y, deg) for "
            "Polynomial.fit(x, y, deg).convert().coef") if t.__module__.startswith("numpy.polynomial") else ""


def check_plain(value: Any, what: str) -> None:
    """Refuse the NumPy array subclasses whose arithmetic is not ndarray's: ``np.matrix`` (``*`` and
    ``**`` are matrix products, results stay 2-D) and masked arrays (NumPy leaves masked entries
    out). Read as their data, as ``np.asarray`` does, they gave a Jacobian of another function."""
    why = _not_plain(type(value))
    if why:
        raise TypeError(f"{what} is {why}")


def _not_plain(t: type) -> str:
    """What :func:`check_plain` says of a value of type ``t`` ('' for one it takes)."""
    if issubclass(t, np.matrix):
        return ("a numpy.matrix, whose * and ** are matrix products: jacc traces ndarray arithmetic; pass "
                "np.asarray(...) and write the products with @")
    if issubclass(t, np.ma.MaskedArray):
        return ("a masked array: jacc does not trace masks (NumPy leaves masked entries out); pass "
                ".filled(value), np.ma.compressed(...) or the data itself")
    why = _overrides(t)
    return why and (f"{why}: jacc traces ndarray arithmetic, so it would compute another function than NumPy "
                    "does; " + (_polynomial_hint(t) or "pass np.asarray(...) of it, or do its arithmetic yourself"))


#: what an ndarray subclass may not redefine for jacc to read it as its data (np.matrix's *, a unit-
#: carrying array's ufuncs, a reflected operator Python calls first)
_SEMANTIC = frozenset({"__array_ufunc__", "__array_function__", "__array_wrap__", "__getitem__"} | {
    f"__{p}{op}__" for p in ("", "r", "i") for op in (
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "divmod", "and", "or", "xor")} | {
    "__neg__", "__pos__", "__abs__", "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"})
_TYPE = type  # (Tracer.view's argument is named type)
_NUMBERS = frozenset({float, int, bool, complex, np.float64, np.float32, np.int64, np.bool_, type(None), str, slice})
_PLAIN_SUBCLASSES = (np.ndarray, np.memmap, np.recarray)  # (NumPy's arithmetic; np.matrix and masked arrays above)
_OVERRIDES: dict[type, str] = {}


def _overrides(t: type) -> str:
    """Why NumPy's operations on a ``t`` are not ndarray's ('' where they are): an ndarray subclass
    redefining them, or another class taking NumPy's ufuncs over (``__array_ufunc__``: units, pandas)."""
    why = _OVERRIDES.get(t)
    if why is None:
        why = ""
        if issubclass(t, np.ndarray):
            if t not in _PLAIN_SUBCLASSES:
                mine = sorted({k for c in t.__mro__[:t.__mro__.index(np.ndarray)] for k in vars(c)} & _SEMANTIC)
                if mine:
                    why = f"a {t.__name__}, an ndarray subclass redefining {', '.join(mine)}"
        elif hasattr(t, "__array_ufunc__") and not t.__module__.startswith("jacc"):
            why = f"a {t.__name__}, whose own __array_ufunc__ NumPy calls for ufuncs on it"
        _OVERRIDES[t] = why
    return why


def check_operands(objs: Any, what: str) -> None:
    """Refuse the constants in ``objs`` (arguments, one list or tuple deep) that :func:`check_plain` refuses."""
    for o in objs:
        t = type(o)
        if t is np.ndarray or t in _NUMBERS or isinstance(o, Tracer):
            continue
        if t in (list, tuple):
            check_operands(o, what)
        elif isinstance(o, (np.matrix, np.ma.MaskedArray)) or _overrides(t):
            check_plain(o, f"an operand of {what} at {call_site()}")


class _NotGiven:
    """The default of a NumPy keyword the caller did not pass (NumPy's own ``<no value>``)."""

    def __repr__(self) -> str:
        return "<not given>"


_NOT = _NotGiven()


def _refuse(what: str, **given) -> None:
    """Raise for every keyword whose value is not a no-op (``None`` or not given): a keyword that
    a rule does not implement must never be silently dropped."""
    for key, value in given.items():
        if value is not None and value is not _NOT:
            raise UnsupportedOperationError(
                f"{what} with {key}={value!r} at {call_site()} is not supported by jacc's tracer; "
                f"call it without {key}=")


def _check_dtype(what: str, x: Any, dtype: Any) -> None:
    """``dtype=`` is accepted only when it is the trace's own float type (values never change type)."""
    if dtype is not None and np.dtype(dtype) != np.dtype(_tape_of(x).dtype):
        raise UnsupportedOperationError(
            f"{what} with dtype={dtype!r} at {call_site()}: the trace computes in {np.dtype(_tape_of(x).dtype)}; "
            "call it without dtype=" + (" (or trace with that dtype: jacobian(..., dtype=...))"
                                         if np.dtype(dtype).kind == "f" else
                                         f" (an integer or boolean result has derivative 0: cast first, "
                                         f"{what}(x.astype({np.dtype(dtype).name})), as NumPy casts the entries)"))


def _int(v: Any, what: str) -> int:
    """``v`` as a Python int (NumPy integers included), for params that must stay plain JSON."""
    if isinstance(v, (bool, np.bool_)) or isinstance(v, Tracer):
        raise TypeError(f"{what} must be a constant integer, got {v!r} (at {call_site()})")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {v!r} (at {call_site()})") from None


def _sequence(v: Any) -> bool:
    """Whether NumPy reads ``v`` as several axes or lengths: a tuple, list, range or 1-D array."""
    return isinstance(v, (tuple, list, range)) or (type(v) is np.ndarray and v.ndim == 1)


def _axis(axis: Any, what: str = "axis") -> int | list[int] | None:
    """``axis`` as ``None``, an int or a list of ints."""
    if axis is None:
        return None
    if _sequence(axis):
        return [_int(a, what) for a in axis]
    return _int(axis, what)


def _ints(shape: Any, what: str = "shape") -> list[int]:
    """A shape (an int or a sequence of ints) as a list of ints."""
    if _sequence(shape):
        return [_int(n, what) for n in shape]
    return [_int(shape, what)]


def _index_item(item: Any) -> Any:
    """One index entry in a normal form: Ellipsis, None, a slice, an int or a constant ndarray."""
    if item is Ellipsis or item is None or isinstance(item, slice):
        return item
    if isinstance(item, Tracer):
        raise _unsupported("indexing with a traced array")
    if isinstance(item, (bool, np.bool_)):
        raise _ScalarBoolIndex(f"indexing with the boolean scalar {item!r} at {call_site()} (NumPy: a new axis of "
                               "length 1 or 0) is taken with constant indices into a traced array, not here: index "
                               "with np.atleast_1d(mask) and drop the axis, or use np.where")
    if isinstance(item, (int, np.integer)):
        return int(item)
    if isinstance(item, np.ndarray) and item.dtype.kind not in "biu":  # (an empty float one too, as NumPy)
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type (at {call_site()})")
    arr = as_index_array(item)  # lists and arrays
    if arr.dtype.kind == "b" and arr.ndim == 0:  # (scipy.stats.multinomial's p[mask, -1] = …)
        raise _ScalarBoolIndex(
            f"index {item!r} at {call_site()} is a 0-d boolean array, which NumPy reads as a new axis of "
            "length 1 or 0; jacc takes it with constant indices into a traced array, not here: index with "
            "np.atleast_1d(mask) and drop the axis, or use np.where")
    if arr.dtype.kind not in "biu":
        raise UnsupportedOperationError(f"index {item!r} at {call_site()} is not an int, slice or "
                                        "integer/boolean array")
    return int(arr) if arr.ndim == 0 and arr.dtype.kind != "b" else arr


class _ScalarBoolIndex(UnsupportedOperationError):
    """An index holding True, False or a 0-d boolean array (NumPy: a new axis of length 1 or 0)."""


def _scalar_bool_positions(index: Any, shape: tuple) -> np.ndarray | None:
    """The flat positions NumPy's ``x[index]`` reads, laid out as its result, for an ``index`` with a
    boolean scalar in it (``p[ok, -1]`` with ``ok`` a 0-d boolean array, as SciPy's multinomial
    writes); None for other indices, and for those holding traced values."""
    items = index if type(index) is tuple else (index,)
    if not any(isinstance(i, (bool, np.bool_)) or (type(i) is np.ndarray and i.dtype == bool and not i.ndim)
               for i in items) or any(isinstance(i, Tracer) for i in items):
        return None
    return np.arange(math.prod(shape)).reshape(shape)[index]


def _axes_used(item: Any) -> int:
    """How many axes of the indexed array an index entry consumes (a boolean mask: its ndim)."""
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, np.ndarray) and item.dtype == bool:
        return item.ndim
    return 1


def _index_params(index: Any, ndim: int) -> list:
    items = [_index_item(i) for i in (index if isinstance(index, tuple) else (index,))]
    if sum(i is Ellipsis for i in items) > 1:
        raise TraceError(f"index at {call_site()} has more than one '...'")
    n_axes = sum(_axes_used(i) for i in items)
    if n_axes > ndim:  # (NumPy's error: an Ellipsis then stands for fewer than no axes)
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but {n_axes} were indexed")
    if n_axes == ndim and any(i is Ellipsis for i in items):
        _refuse_split_by_nothing(items)
    out: list = []
    for item in items:
        if item is Ellipsis:
            out += [["slice", None, None, None]] * max(ndim - n_axes, 0)
        elif item is None:
            out.append(["new"])
        elif isinstance(item, slice):
            if any(isinstance(p, Tracer) for p in (item.start, item.stop, item.step)):
                raise _unsupported("slicing with traced bounds")
            out.append(["slice"] + [None if p is None else _int(p, "a slice bound")
                                    for p in (item.start, item.stop, item.step)])
        elif isinstance(item, int):
            out.append(["int", item])
        else:
            out += _array_items(item)
    return out


def _refuse_split_by_nothing(items: list) -> None:
    """Refuse advanced indices whose only separation is an Ellipsis standing for no axis
    (x[:, [0, 1], ..., 1] of a 3-d x): NumPy counts them apart and puts their axes first; laid out
    as the trace lays out adjacent ones, the result would be another array of the same shape."""
    e = next(k for k, i in enumerate(items) if i is Ellipsis)
    advanced = [k for k, i in enumerate(items) if isinstance(i, np.ndarray) or type(i) is int]
    if not any(isinstance(i, np.ndarray) for i in items) or not advanced[0] < e < advanced[-1]:
        return
    if not any(isinstance(items[k], slice) or items[k] is None for k in range(advanced[0])):
        return  # (their axes come first either way)
    if all(items[k] is Ellipsis or k in advanced for k in range(advanced[0], advanced[-1] + 1)):
        raise UnsupportedOperationError(
            f"index at {call_site()}: its index arrays (or ints) are apart only by an '...' that stands for no "
            "axis, so NumPy puts their axes first, which jacc's indexing does not follow; write the index without "
            "the '...' (or with ':' for an axis)")


def _array_items(item: np.ndarray) -> list:
    """An index array as the graph keeps it, a nested list. An empty one keeps neither its dtype
    nor its shape there (an empty list reads as an empty integer index), so an empty boolean mask
    over d axes becomes d empty integer indices, which select the same nothing (one result axis
    of size 0, in the mask's place); an empty integer index of two or more axes is refused."""
    if item.size or item.ndim == 1:
        return [["array", item.tolist()]]
    if item.dtype == bool:
        return [["array", []]] * item.ndim
    raise _unsupported(f"an empty integer index array of shape {item.shape}")


_VIEW_OPS = ("reshape", "transpose", "broadcast_to", "getitem")  # ops NumPy may run as views
#: How many steps back the step that made a view in use is looked for when the array it views
#: changes in place (Tape.view_steps); an older view makes the change refused
VIEW_STEPS_BACK = 4096


def _view_op(src: np.ndarray, op: str, params: dict) -> np.ndarray:
    """NumPy's result of the view op ``op`` (one of :data:`_VIEW_OPS`) on ``src``."""
    if op == "transpose":
        return np.transpose(src, params.get("axes"))
    if op == "broadcast_to":
        return np.broadcast_to(src, params["shape"])
    if op == "getitem":
        return src[index_to_numpy(params["index"])]
    return np.reshape(src, params["shape"])


def _run_views(base: Any, steps: list[tuple]) -> dict | None:
    """NumPy's own results of ``steps`` (view ops, each from ``base`` or an earlier one) on a
    probe of one byte per element laid out as ``base`` (jacc's values of the steps need not be
    laid out as the user's arrays are), by name (None: the probe itself); None where NumPy runs one
    as a copy, not a view of ``base`` (a reshape of a strided array: y.T.reshape(-1))."""
    probe = np.empty_like(np.asarray(base), dtype=np.uint8)
    made: dict = {None: probe}
    for name, op, args, params in steps:
        out = _view_op(made.get(args[0], probe), op, params)
        if out.size and not np.may_share_memory(out, probe):
            return None
        made[name] = out
    return made


def _views(op: str, params: dict, ndim: int) -> bool:
    """Whether NumPy gives a view for this op: reshapes, transposes, broadcasts, and basic
    indexing (no index arrays) unless it picks out one element."""
    if op not in _VIEW_OPS:
        return False
    if op != "getitem":
        return True
    items = params["index"]
    return not any(i[0] == "array" for i in items) and not (ndim == 0 and all(i[0] == "int" for i in items))


def _writable(x: "Tracer", what: str, of_view: str, of_viewed: str) -> None:
    """Refuse to change ``x`` in place where NumPy would change another array with it: ``x`` is a
    view of another traced array (``of_view`` says what to write instead), or has views still in
    use (``of_viewed``)."""
    view = x.tape.is_view(x.name)
    if view is not None:
        raise UnsupportedOperationError(
            f"{what} at {call_site()} changes a view ({view}) of another traced array, which NumPy would "
            f"change too and a trace cannot follow; {of_view}")
    if x.tape.view_steps(x.name) is None:  # (views made recently from x itself follow the change)
        raise UnsupportedOperationError(
            f"{what} at {call_site()} changes an array that has views still in use (a slice, reshape or "
            f"transpose of it, made long before or from another array), which NumPy would change too and a "
            f"trace cannot follow; {of_viewed}")


def _no_overlap(x: "Tracer", index: Any, value: Any, what: str) -> None:
    """Refuse a boolean-mask write into ``x`` of values that are a view of ``x`` itself: NumPy copies
    entry by entry from memory the write changes (y[mask] = y[4:0:-1] reads entries it already
    wrote), where a trace takes the values as they were."""
    masked = _holds_mask(index) or (isinstance(index, np.ndarray) and index.dtype == bool) or (
        isinstance(index, tuple) and any(isinstance(i, np.ndarray) and i.dtype == bool for i in index))
    if masked and isinstance(value, Tracer) and x.tape._root.get(value.name, (None,))[0] == x.name:
        raise UnsupportedOperationError(
            f"{what} at {call_site()} writes values that are a view of the array written into: NumPy copies them "
            "entry by entry from memory the write changes, which a trace does not follow; write a copy of the "
            "values (v.copy())")


def _take(x: "Tracer", r: "Tracer") -> "Tracer":
    """The array object ``x`` takes the vertex ``r`` (an in-place change: every name sees it); a
    :class:`jacc.buffers.Buffer` becomes a traced array doing so."""
    if not isinstance(x, Tracer):
        x.release()  # (refuses while plain views of it are in use)
        x.__class__ = Tracer
        x.tape = r.tape
    old, tape = x.name, x.tape
    if old in tape.input_names:
        tape.written.add(old)
    made = tape.view_steps(old) if not tape.paused else None  # (a 0-d array replayed as a _Num too)
    x.name = r.name
    if not np.ndim(r.num if type(r) is _Num else r.value):
        tape.arrays0d.add(r.name)  # (an array changed in place stays an array)
    if type(x) is _Num:
        x.num = r.num if type(r) is _Num else float(r.value)
    else:
        x.value = r.value
    if made:  # (checked by _writable before the change: None was refused there)
        tape.follow_views(old, x, made)
    return x


def _take_whole(x: Any, r: Any) -> "Tracer":
    """:func:`_take` for an in-place result (``x += y``, ``out=x``), which keeps ``x``'s shape: a
    smaller result is broadcast to it, as NumPy broadcasts a ufunc's inputs to ``out``
    (np.sin(x[:1], out=b)); a constant one (a ufunc of constants into a traced ``out``) is placed."""
    if np.shape(r) != np.shape(x):
        try:
            fits = np.broadcast_shapes(np.shape(r), np.shape(x)) == np.shape(x)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"non-broadcastable output operand with shape {np.shape(x)} doesn't match the "
                             f"broadcast shape {np.shape(r)} (at {call_site()})")
        r = np.broadcast_to(r, np.shape(x))
    if isinstance(r, Tracer):
        return _take(x, r)
    if isinstance(x, Tracer):
        return _take(x, _set_items(x, Ellipsis, r))
    x[...] = r  # (a buffer not traced yet: its array takes the constants)
    return x


_INSTRUCTIONS: dict = {}  # code object -> ({offset: opname}, {offset: the next store's opname})
_SUBSCRIPT_STORES = ("STORE_SUBSCR", "STORE_SLICE")  # a[i] = ..., a[i:j] = ...


def _instructions(code) -> tuple[dict, dict]:
    """``code``'s instructions by offset, and for each the store (or delete) that comes next."""
    table = _INSTRUCTIONS.get(code)
    if table is None:
        import dis

        names, stores, pending = {}, {}, []
        for ins in dis.get_instructions(code):
            names[ins.offset] = ins.opname
            if ins.opname.startswith(("STORE_", "DELETE_")):
                stores.update(dict.fromkeys(pending, ins.opname))
                pending = []
            pending.append(ins.offset)
        table = _INSTRUCTIONS[code] = (names, stores)
    return table


#: (pattern in the user's line, hint): conversions that happen in compiled code no replacement
#: reaches, named with their fix
_LINE_HINTS = [
    (re.compile(r"\.dot\("), "A.dot(x) of a plain array A converts x: write A @ x or np.dot(A, x)"),
    (re.compile(r"\b(?:np|numpy)\.(?:float(?:16|32|64)|double|single|longdouble|complex(?:64|128))\("),
     "a NumPy scalar type such as np.float64(x) converts x: leave x as it is (a traced value is an "
     "array already) or write x.astype(np.float64)"),
    (re.compile(r"\b(?:np|numpy)\.arange\("),
     "np.arange's bounds set its length, which must not depend on a traced value: write start + step * "
     "np.arange(n) with a constant n (np.linspace(start, stop, n) takes traced ends)"),
    (re.compile(r"\.choose\("),
     "a.choose(choices) of a plain array a converts the choices: write np.choose(a, choices)"),
    (re.compile(r"\.(?:reduce|accumulate|reduceat|outer|at)\(\s*[\[(]"),
     "a ufunc method converts a list or tuple it is given as NumPy's array of it: pass np.stack([...])"),
]


def _line_of(frame) -> str:
    """The source line ``frame`` is running ("" where there is none)."""
    if frame is None:
        return ""
    import linecache

    return linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def _line_hint(frame) -> str:
    """The hints of :data:`_LINE_HINTS` whose pattern the user's line matches, as "; hint"."""
    line = _line_of(frame)
    return "".join(f"; {hint}" for pattern, hint in _LINE_HINTS if pattern.search(line))


#: a plain array's ``put`` method converting a traced value: a write into a plain array, which the
#: retry with arrays that take traced values (jacc.buffers) serves where ``np.zeros`` made it
_PUT_METHOD = re.compile(r"\.put\(")


def _instruction(frame) -> str:
    """The name of the instruction ``frame`` is running."""
    return _instructions(frame.f_code)[0].get(frame.f_lasti, "")


def _stored_into_subscript(frame) -> bool:
    """Whether the in-place operator running in ``frame`` is half of ``x[i] op= y``: the next store
    instruction after it puts the result back with ``x[i] = ...``."""
    return _instructions(frame.f_code)[1].get(frame.f_lasti) in _SUBSCRIPT_STORES


def _in_place(dunder: str, sym: str) -> Callable:
    """``x op= y`` as NumPy runs it: the array object itself takes the new value, so every other
    name for it sees the change (the new vertex is recorded as usual). On a view of another
    traced array NumPy would change that array too, which a trace cannot follow: refused — except
    as half of ``a[i] op= y``, whose other half (``a[i] = ...``) writes the result back."""
    def method(self, other):
        tape = self.tape
        if tape.is_view(self.name) is not None and _stored_into_subscript(sys._getframe(1)):
            r = getattr(self, f"__{dunder}__")(other)  # a new array, which a[i] = ... writes back next
            if r is not NotImplemented:
                _fits_in_place(self, r)
                tape._pending = (r, tape._root[self.name][0], call_site())
            return r
        if tape.is_scalar(self):
            return getattr(self, f"__{dunder}__")(other)  # a NumPy scalar: a new one, which the name is bound to
        _writable(self, f"'{sym}='", f"write y = y {sym} ... (a new array), or build the changed array with "
                  "np.where or np.concatenate", f"write x = x {sym} ... (a new array)")
        r = getattr(self, f"__{dunder}__")(other)
        if r is NotImplemented:
            return r
        return _take_whole(self, r)
    method.__name__ = f"__i{dunder}__"
    return method


def _fits_in_place(x: Any, r: Any) -> None:
    """NumPy's error where ``x op= y`` broadcasts ``x`` itself (its result ``r`` has another shape)."""
    if np.shape(r) != np.shape(x):
        raise ValueError(f"non-broadcastable output operand with shape {np.shape(x)} doesn't match the broadcast "
                         f"shape {np.shape(r)} (at {call_site()})")


def _scatter(values: "Tracer", positions: Any, size: int) -> "Tracer":
    """The length-``size`` vector whose entry k sums the ``values`` at ``positions`` k (constant
    integers shaped like ``values``): NumPy's bincount with weights, a free scatter of a traced value."""
    return values.tape.record("scatter_add", [values, np.asarray(positions).astype(float)], {"size": int(size)})


def _set_items(x: "Tracer", index: Any, value: Any) -> "Tracer":
    """``x[index] = value`` as NumPy assigns it (the last of repeated positions wins), recorded as
    ``put(x, values, positions)`` (each flat position once: the value's partial is a free
    placement); a constant value goes in by ``where`` with a constant mask."""
    shape = np.shape(x)
    size = int(np.prod(shape))
    positions = np.arange(size, dtype=np.intp).reshape(shape)[index]
    region = positions.shape
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)  # (during a trace: a list of traced values stacks)
    vshape = np.shape(value)
    if len(vshape) > 1 and isinstance(index, np.ndarray) and index.dtype == bool and index.ndim == len(shape):
        raise TypeError(f"NumPy boolean array indexing assignment requires a 0 or 1-dimensional input, input has "
                        f"{len(vshape)} dimensions (at {call_site()})")
    while len(vshape) > len(region) and vshape[0] == 1:  # NumPy drops leading ones of the value
        value, vshape = value[0], vshape[1:]
    try:
        fits = np.broadcast_shapes(vshape, region) == region
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"could not broadcast input array from shape {vshape} into shape {region} "
                         f"(at {call_site()})")
    flat = positions.reshape(-1)
    if flat.size == 0:
        return x
    if increasing(flat):  # a slice's positions: each once already
        where, keep = flat, None
    else:
        where, last = np.unique(flat[::-1], return_index=True)  # each position once, its last value
        keep = flat.size - 1 - last
    if isinstance(value, Tracer):
        spread = np.broadcast_to(value, region) if vshape != region else value
        picked = spread.reshape(-1)
        if keep is not None and not np.array_equal(keep, np.arange(flat.size)):  # repeated or unsorted positions
            picked = picked[keep]
        return picked.tape.record("put", [x, picked, where.astype(float)])
    placed, mask = np.zeros(size), np.zeros(size, dtype=bool)
    vals = np.broadcast_to(np.asarray(value, dtype=float), region).reshape(-1)
    placed[where], mask[where] = vals if keep is None else vals[keep], True
    return np.where(mask.reshape(shape), placed.reshape(shape), x)


def increasing(flat: np.ndarray) -> bool:
    """Positions strictly increasing in C order, so distinct: found in O(n), where np.unique takes
    ~30 ms at 10⁵ (a slice's positions are)."""
    f = flat.reshape(-1)
    return bool((f[1:] > f[:-1]).all())


def _into(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``ufunc(..., out=a)`` (``a += x`` on a plain ``a`` comes here) with a traced input: a traced
    array or a :class:`jacc.buffers.Buffer` takes the result in place; a plain array cannot."""
    kwargs = dict(kwargs)
    out = kwargs.pop("out")
    outs = out if isinstance(out, tuple) else (out,)
    what = _ufunc_name(ufunc) + ("" if method == "__call__" else f".{method}")
    if method != "at" and len(outs) == 1 and isinstance(outs[0], _Held):
        a = outs[0]
        if type(a) in VIEWS:  # a view of a buffer: the buffer's entries take the result
            a[...] = getattr(ufunc, method)(*inputs, **kwargs)
            return a
        if isinstance(a, Tracer):
            _writable(a, f"{what}(..., out=a)", "write a = ... (a new array)", "write a = ... (a new array)")
        return _take_whole(a, getattr(ufunc, method)(*inputs, **kwargs))
    if method == "__call__" and len(outs) == 1 and type(outs[0]) is np.ndarray:
        frame = _user_frame()
        # a[i] += x, a[i] NumPy's copy or view of a buffer: the new array, which a[i] = ... writes into a
        # next (an in-place operator's instruction only: np.sin(x, out=b) followed by a line b[0] = ...
        # stores into a subscript next too, and b was left as it was)
        if frame is not None and _instruction(frame).startswith(("BINARY_OP", "INPLACE_")) \
                and _stored_into_subscript(frame):
            r = ufunc(*inputs, **kwargs)
            _fits_in_place(outs[0], r)
            return r
    if any(isinstance(o, np.ndarray) for o in outs):
        raise _PlainWrite(f"{what} at {call_site()} writes a traced value into a plain NumPy array in place "
                          f"(a += x, or out=a): {PLAIN_WRITE_FIX}")
    raise _unsupported(f"{what} with keyword(s) ['out']")


def _where_into(ufunc: np.ufunc, inputs: tuple, kwargs: dict) -> Any:
    """``ufunc(..., out=o, where=m)`` (``np.divide(a, b, out=np.zeros_like(a), where=b != 0)``,
    the safe division SciPy's ``simpson`` makes): ``o`` takes ``where(m, ufunc(...), o)``. NumPy
    does not evaluate the ufunc where ``m`` is false, so there it is evaluated at ½ (finite for
    division, logarithms, roots, arcsin …): ``o`` is all ``f`` reads there, and its derivative
    too (at b = 0, −a/b² = −inf would have made 0·inf = NaN in the Jacobian)."""
    kwargs = dict(kwargs)
    mask, out = kwargs.pop("where"), kwargs.pop("out")
    o = out[0] if isinstance(out, tuple) else out
    safe = [np.where(mask, x, 0.5) if isinstance(x, (Tracer, np.ndarray, float, int)) else x for x in inputs]
    return _into(np.positive, "__call__", (np.where(mask, ufunc(*safe, **kwargs), o),), {"out": out})


#: ops whose result NumPy keeps integer for integer operands (Tape.ints); the divisions whose
#: integer divisor (the second operand) gives another answer than the float one (1 // 0)
_INT_KEEPING = frozenset({"add", "sub", "mul", "pow", "neg", "abs", "square", "maximum", "minimum", "getitem",
                          "reshape", "transpose", "broadcast_to", "identity", "alias", "sum", "cumsum", "concatenate",
                          "stack", "where", "sort", "amax", "amin", "sign"})
_INT_DIVISIONS = frozenset({"floor_divide", "remainder", "fmod", "pow"})
#: of those, the ones whose integer result by a constant nonzero integer Tape.ints follows
_INT_QUOTIENTS = frozenset({"floor_divide", "remainder", "fmod"})
#: ops NumPy computes in int64 for integer operands whose results Tape.ints does not bound (k @ k)
_INT_PRODUCING = frozenset({"matmul", "matmul_hold_a", "matmul_hold_b", "einsum", "cumprod", "cumprod_value"})
#: ops that only select, move or compare entries: exact on integer data of any width (Tape.narrow)
_NARROW_SAFE = frozenset({"getitem", "reshape", "transpose", "broadcast_to", "identity", "alias", "concatenate",
                          "stack", "where", "sort", "amax", "amin", "maximum", "minimum", "sign"})


#: integer data below this (in absolute value) is traced as floats (jacc.api._DataArgs)
INT_DATA_BOUND = 2.0 ** 31


_INT64 = np.dtype(np.int64)


def _int_type(tape: "Tape", name: str) -> np.dtype:
    """NumPy's type of integer data ``name`` (:attr:`Tape.ints`): int64 unless narrower (:attr:`Tape.narrow`)."""
    return tape.narrow.get(name, _INT64)


def _into_int_data(x: "Tracer", value: Any) -> Any:
    """``value`` as NumPy writes it into integer data ``x`` (labels, :attr:`Tape.ints`): a constant
    cast to ``x``'s type (-1 into uint8 labels is 255, 2.7 into int64 ones 2); traced values other
    than integer data holding in that type are refused (the data stays a constant)."""
    tape = x.tape
    kind = _int_type(tape, x.name)
    if isinstance(value, Tracer):
        if value.name in tape.bits or (
                value.name in tape.ints and np.can_cast(_int_type(tape, value.name), kind, "safe")):
            return value
        raise UnsupportedOperationError(
            f"an assignment into integer data at {call_site()} of values NumPy casts to {kind} (the data stays a "
            "constant)")
    if isinstance(value, _ReadOnUse):  # (a mask: 0 and 1 in any integer type)
        return value
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(value).astype(kind)


def _narrow_type(narrow: dict, op: str, args: list, exact: bool) -> Any:
    """The integer type of ``op``'s result on data narrower than int64 (:attr:`Tape.narrow`), or
    None where no operand is such data; refuses an op NumPy would compute with wrapping in that
    type: arithmetic, or an integer constant beyond its range (``np.where(y > 3, y, -1)`` of uint8
    labels is 255 in NumPy). ``exact``: jacc's own steps on labels (:attr:`Tape.exact_steps`)."""
    kinds = [narrow[a.name] for a in args if isinstance(a, Tracer) and a.name in narrow]
    if not kinds or exact or op in MASK_OPS:  # (comparisons take any number exactly; their result is a mask)
        return None
    operands = [a for k, a in enumerate(args) if not (op == "where" and k == 0)]  # (where's condition: a mask)
    # (a NumPy integer constant widens the type, as np.result_type does: np.where(y8 > 3, y8, np.int64(-1))
    # is int64; a Python int is weak, and must fit)
    typed = [a.dtype for a in operands if isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind in "iu"]
    kind = functools.reduce(np.promote_types, kinds + typed)
    why = None
    if op not in _NARROW_SAFE:
        why = "NumPy computes it in that type, which wraps"
    elif kind.kind not in "iu":  # (uint64 with int8 is float64 in NumPy)
        why = f"NumPy's result is {kind}, which no longer indexes"
    elif kind == np.uint64:  # (uint64 arithmetic wraps at 0 - 1)
        why = "NumPy's result is uint64, whose arithmetic wraps"
    else:
        info = np.iinfo(kind)
        if any(not isinstance(a, Tracer) and _integral(a) and (np.any(np.asarray(a) < info.min)
                                                              or np.any(np.asarray(a) > info.max)) for a in operands):
            why = f"a constant beyond its type's range ({kind}), which NumPy wraps"
    if why is not None:
        raise UnsupportedOperationError(
            f"{op} of integer data narrower than int64 at {call_site()}: {why}, and the data is traced as floats "
            "(the data stays a constant; int64 data may take arithmetic)")
    return kind


def _widens(a: Any) -> bool:
    """Whether operand ``a`` makes NumPy compute in float64: a traced value that is no float32
    data, a float64 array or NumPy scalar (Python numbers are weak: float32 stays float32)."""
    if isinstance(a, Tracer):
        return a.name not in a.tape.f32
    return isinstance(a, (np.ndarray, np.generic)) and np.result_type(a, np.float32) == np.float64


#: ops on integers whose result's bound is the sum, the product, the square or the power of their operands'
_INT_SUMS, _INT_PRODUCTS = frozenset({"add", "sub"}), frozenset({"mul", "square", "pow"})
#: ops whose float32 result NumPy computes without rounding (selections, copies, signs): those that
#: keep integers integer, less the arithmetic
_F32_EXACT = _INT_KEEPING - _INT_SUMS - _INT_PRODUCTS - {"sum", "cumsum"}


def _int_bound(op: str, args: list, ints: dict[str, float]) -> float:
    """A bound on the absolute values of ``op``'s integer result (NumPy's int64 arithmetic equals the
    floats' only below 2**53): from the operands' bounds (:attr:`Tape.ints`) and constants' values."""
    bounds = [ints[a.name] if isinstance(a, Tracer) else float(np.max(np.abs(a), initial=0.0)) for a in args]
    if op in _INT_SUMS:
        return sum(bounds)
    if op == "square":
        return bounds[0] ** 2
    if op == "pow":  # (k ** 3 of integer data; data as the exponent is refused before: _INT_DIVISIONS)
        return max(bounds[0], 1.0) ** bounds[1]
    if op in _INT_PRODUCTS:
        return float(np.prod(bounds))
    if op in ("sum", "cumsum"):  # (at most every entry of the operand added up)
        return bounds[0] * max(1, np.size(args[0].value))
    return max(bounds)


def _integral(a: Any) -> bool:
    """An integer constant operand (``y - 1``: NumPy's result stays integer)."""
    if isinstance(a, Tracer):
        return a.name in a.tape.ints
    return (isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))) or (
        isinstance(a, np.ndarray) and a.dtype.kind in "iu")


def _int_dtype(t: "Tracer") -> Any:
    raise UnsupportedOperationError(
        f"f reads the dtype of integer data at {call_site()}: the data is traced as floats (it stays a constant)")


def _copy(x: Any, kind: str = "array") -> Any:
    """A new array with ``x``'s value (NumPy's copies): a vertex of its own (an identity op, free),
    so changing one in place, or taking views of one, leaves the other alone. What a 0-d one is
    (:meth:`Tape.is_scalar`): ``"array"`` a 0-d array (``np.copy``, ``np.array`` of a scalar),
    ``"same"`` what ``x`` is (``x.copy()``, ``x.astype(float)``), ``"scalar"`` a scalar (``+x``,
    ``np.positive``: a ufunc's 0-d result)."""
    if isinstance(x, Tracer):
        r = x.tape.record("identity", [x])
        if not x.shape and isinstance(r, Tracer) and (kind == "array" or (kind == "same" and not x.tape.is_scalar(x))):
            r.tape.arrays0d.add(r.name)
        return r
    return x


def note_hidden_nonfinite(mask: Any, x: Any, y: Any, what: str = "numpy.where") -> None:
    """``where(mask, x, y)``: where a traced branch holds NaN or ±inf at entries the mask discards,
    its derivative there is 0 times a non-finite slope, NaN in IEEE arithmetic (as in JAX), so a
    non-finite Jacobian is refused naming this call (unless NaN is asked to propagate): SciPy's
    ``nan_policy="omit"`` masks NaN so (scipy.stats.tvar with limits gave NaN silently, hunt BW)."""
    m = np.broadcast_to(np.asarray(mask, dtype=bool), np.broadcast_shapes(np.shape(mask), np.shape(x), np.shape(y)))
    for branch, discarded in ((x, ~m), (y, m)):
        if isinstance(branch, Tracer) and discarded.any():
            with np.errstate(invalid="ignore"):
                hidden = discarded & ~np.isfinite(branch.value)
            if hidden.any():
                branch.tape.note_domain(what)  # (a later call that skips f and meets one runs f)
                branch.tape.note_nonfinite(
                    f"{what} at {call_site()}: a branch holds NaN or inf where the condition discards it, and "
                    "the derivative there, 0 times a non-finite slope, is NaN (IEEE arithmetic, as in JAX), so "
                    "the Jacobian is not finite; compute the branch on finite stand-ins (x = np.where(ok, x, 0.0) "
                    "before the operation), or pass nonfinite='propagate' to get the NaN")
                return


def array_result(r: Any, *args: Any) -> Any:
    """``r``, the result of a NumPy function that returns arrays (``np.where``, ``np.i0``), as
    NumPy's: a 0-d one is a 0-d array, not a scalar (:meth:`Tape.is_scalar`); a new one where it is
    an argument's vertex."""
    if isinstance(r, Tracer) and not r.shape and not r.tape.paused:
        if any(isinstance(a, Tracer) and a.name == r.name for a in args):
            return _copy(r)
        r.tape.arrays0d.add(r.name)
    return r


def _of_kind(out: "Tracer", kind: str, args: tuple, before: int) -> "Tracer":
    """A 0-d result as NumPy's function returns it (:data:`_RESULT_KINDS`): ``"scalar"`` a new
    scalar (never an argument's array itself, nor a view of one; one made since step ``before``
    becomes one), ``"array"`` a 0-d array."""
    tape = out.tape
    if tape.paused:
        return out
    if kind == "array":
        return array_result(out, *args)
    if any(isinstance(a, Tracer) and a.name == out.name for a in args):
        return _copy(out, "scalar")
    if not tape.is_scalar(out) and any(step[0] == out.name for step in tape.steps[before:]):
        tape.arrays0d.discard(out.name)  # (made here: no other name holds it)
        tape.own(out.name)
    return out if tape.is_scalar(out) else _copy(out, "scalar")


#: What NumPy's functions return where their result is 0-d (an alias of it sees ``t += …`` only
#: where it is an array; ``np.isscalar`` tells them apart): found with NumPy's own functions
_RESULT_KINDS: dict[Callable, str] = {
    **{getattr(np, n): "scalar" for n in (
        "median", "nanmedian", "percentile", "nanpercentile", "quantile", "nanquantile", "take", "choose",
        "interp", "nan_to_num", "prod", "nanprod", "einsum", "flip", "sum", "nansum", "mean", "nanmean", "amax",
        "amin", "max", "min", "nanmax", "nanmin", "std", "var", "nanstd", "nanvar", "average", "ptp", "trace",
        "dot", "vdot", "inner", "trapezoid", "around", "round", "clip", "matmul", "polyval", "corrcoef")
       if hasattr(np, n)},
    np.linalg.det: "scalar", np.linalg.norm: "scalar",
    **{getattr(np, n): "array" for n in ("tensordot", "apply_along_axis", "real_if_close", "cov", "select", "copy")},
}  # (np.squeeze and np.reshape keep their argument's kind: Tracer.reshape and _squeeze)


class _ValueShaped:
    """Shape queries of an array stand-in, answered from its ``value`` (traced arrays, buffers and
    masks: :mod:`jacc.buffers`, :mod:`jacc.masks`); nothing is recorded or read."""

    __slots__ = ()

    def _set_shape(self, shape) -> None:
        raise UnsupportedOperationError(
            f"x.shape = {shape!r} at {call_site()} reshapes a traced array in place, which a trace does not follow "
            "(NumPy's own code does it in rng.multivariate_normal of a traced mean); write x = x.reshape(...)")

    shape = property(lambda self: self.value.shape, _set_shape)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)
    dtype = property(lambda self: _int_dtype(self) if self.name in self.tape.ints else self.value.dtype)

    def __len__(self) -> int:
        if not np.ndim(self.value):
            raise TypeError("len() of unsized object")  # (NumPy's words)
        return len(self.value)


class _ReadOnUse(_ValueShaped):
    """An array stand-in recorded where it is used as a whole (a comparison's mask, an argsort's
    order: :mod:`jacc.masks`, :mod:`jacc.numpy_api.orders`), whose entries, read as Python or NumPy
    values, come from ``concrete()``: read at the traced point, the trace becoming value-dependent."""

    __slots__ = ()
    # (its value's: it has no vertex name to look up among the tape's integers, and the failed lookup
    # fell through to __getattr__, which read the entries: SciPy's log_softmax asks a mask's dtype)
    dtype = property(lambda self: self.value.dtype)

    def concrete(self) -> np.ndarray:
        raise NotImplementedError

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.concrete(), dtype=dtype)

    def __bool__(self) -> bool:
        return bool(self.concrete())

    def __int__(self) -> int:
        return int(self.concrete())

    def __float__(self) -> float:
        return float(self.concrete())

    def __iter__(self):
        return iter(self.concrete())

    def __getattr__(self, name: str):
        # the ndarray's other methods and attributes (m.any(), o.tolist()) on the values
        if name.startswith("_") or not hasattr(np.ndarray, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.concrete(), name)


class _Held(_ValueShaped):
    """The slots of a traced array, shared with :class:`jacc.buffers.Buffer` so that a buffer can
    become a traced array in place (every name for it then sees the traced value)."""

    __slots__ = ("tape", "name", "value", "__weakref__")


#: How many jacc.buffers.Buffer objects hold traced elements not yet placed: while any do, the
#: tracer's protocols place those of the buffers among their arguments first (jacc.buffers.settle_all).
_HOLDING = [0]


def _settle(args: Any) -> None:
    from .buffers import settle_all

    settle_all(args)


def _unheld(a: Any) -> Any:
    """What a jacc.buffers.Buffer argument stands for: the traced array it became once its held
    elements are placed, else its array (a view: the entries it shows)."""
    _settle(a)
    return a if isinstance(a, Tracer) else a.current()


class Tracer(_Held):
    """A traced array: holds its current value and its vertex name in the tape's graph.

    Traced arrays are unhashable, as ndarrays are: ``==`` compares values."""

    __array_priority__ = 1000
    __slots__ = ()

    def __init__(self, tape: Tape, name: str, value: np.ndarray):
        self.tape, self.name, self.value = tape, name, value

    # -- array attributes (shape, ndim, size, dtype and len(): _ValueShaped) ----------------------
    itemsize = property(lambda self: self.value.itemsize)
    #: a C-contiguous array's (what as_strided, recorded, takes them for)
    strides = property(lambda self: tuple(self.value.itemsize * math.prod(self.shape[k + 1:])
                                          for k in range(self.ndim)))
    nbytes = property(lambda self: self.value.nbytes)
    device = property(lambda self: "cpu")  # NumPy's: SciPy's array-API helpers ask for it
    T = property(lambda self: self.transpose())
    mT = property(lambda self: np.matrix_transpose(self))  # NumPy 2's matrix transpose (≥ 2-d)
    real = property(lambda self: self)  # traced values are real

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")  # (NumPy's, at the call: code tells scalars by it)
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Tracer({self.name}, shape={self.shape})"

    # copy.copy and copy.deepcopy of an ndarray copy its data: so do a traced one's (by default
    # they copied the object, tape included, and the copy's vertex belonged to no trace)
    def __copy__(self) -> "Tracer":
        return self.copy()

    def __deepcopy__(self, memo: dict) -> "Tracer":
        return self.copy()

    def __reduce_ex__(self, protocol: int):
        raise UnsupportedOperationError(
            f"a traced array cannot be pickled (at {call_site()}): its value is not a number yet; pickle "
            "outside the differentiated function, or copy it with x.copy() or copy.deepcopy")

    def __array__(self, dtype=None, copy=None):
        if self.tape.paused:
            return self.value if dtype is None else self.value.astype(dtype)
        frame = _user_frame()
        if (frame is not None and _instruction(frame) in _SUBSCRIPT_STORES) or _served_store(sys._getframe(1)):
            if self.name in self.tape.ints:  # (labels as the index of t[np.arange(n), y] = 1.0, or its value)
                raise _PlainWrite(f"integer data (labels) indexes or fills a plain NumPy array (a[...] = ...) at "
                                  f"{call_site()}, and stays a constant: write the one-hot array as "
                                  "(y[:, None] == np.arange(K)) * 1.0, or index a traced array")
            raise _PlainWrite(f"a traced value was assigned into a plain NumPy array (a[...] = ...) at "
                              f"{call_site()}: {PLAIN_WRITE_FIX}")
        if frame is not None and _PUT_METHOD.search(_line_of(frame)):
            raise _PlainWrite(f"a traced value was written into a plain NumPy array by its put method at "
                              f"{call_site()}: {PLAIN_WRITE_FIX}")
        before = self.tape.refused
        self.tape.refused = (f"a traced array was converted to a plain NumPy array at {call_site()} (e.g. by np.array"
                             "([...]) or np.asarray); build arrays from traced values with np.stack or np.concatenate"
                             + (_LABELS_HINT if self.name in self.tape.ints else _line_hint(frame)))
        raise _ArrayConversion(self.tape.refused, self.tape, before)

    def __array_namespace__(self, *, api_version=None):
        """NumPy: traced arrays follow NumPy's functions, so array-API-aware code (SciPy's) treats
        them as NumPy arrays, writable ones included."""
        return np

    def __getattr__(self, name: str):
        # only reached for attributes Tracer lacks: an ndarray attribute gets a clear refusal
        if name.startswith("__") or not hasattr(np.ndarray, name):
            raise AttributeError(f"'Tracer' object has no attribute {name!r}")
        if name in _CONCRETE_METHODS:
            raise _UnsupportedAttribute(str(_concretisation(f".{name}()")))
        if name in _IN_PLACE_METHODS:
            raise _UnsupportedAttribute(
                f"x.{name}() at {call_site()} changes the array in place, which a trace cannot follow; "
                f"use the result of {_IN_PLACE_METHODS[name]} instead")
        raise _UnsupportedAttribute(str(_unsupported(f"the ndarray attribute .{name}")))

    def __setitem__(self, index, value):
        """``x[index] = value`` as in NumPy: the array takes the new values (see :func:`_set_items`);
        refused where NumPy would change another traced array too (``x`` a view, or viewed)."""
        if self.tape.paused:
            raise UnsupportedOperationError(
                f"x[...] = ... at {call_site()} writes into a traced array while only values are computed (a "
                "solver's iterations); write into a copy (y = x.copy(); y[...] = ...)")
        _writable(self, "x[...] = ...", "assign into the array it views (a[i, j] = ... rather than a[i][j] = ..., "
                  "a[1:3] = ... rather than v = a[1:3]; "
                  "v[...] = ...), or into a copy (v = v.copy())", "assign into a copy (y = x.copy(); y[...] = ...), "
                  "or build the changed array with np.where(mask, new, x)")
        if type(value) in VIEWS:  # a view of an array f made: the entries it shows
            value = value.current()
        found = _scalar_bool_positions(index, self.shape) if self.ndim and type(index) is not int else None
        if found is not None:  # x[ok, -1] = v: the same entries by their integer positions
            if found.size:
                self[np.unravel_index(found, self.shape)] = value
            else:  # (none written; NumPy's error where value does not fit the empty selection)
                np.zeros(found.shape)[...] = np.zeros(np.shape(value))
            return
        if type(value) is Lanes:  # y[m] = g(x[m]): where(m, g(x), y) (jacc.lanes), else the selection
            r = None if self.name in self.tape.ints else lanes_assign(self, index, value)
            if r is not None:
                _take(self, r)
                return
            value = value.gathered()
        if self.name in self.tape.ints and not self.tape.paused:
            value = _into_int_data(self, value)
        _no_overlap(self, index, value, "x[mask] = v")
        if type(index) is Mask:  # x[x < 0] = 0.0, Y[Y[:, 0] < 0] = w: where (jacc.lanes)
            r = write_rows(self, index, value)
            if r is not None:
                _take(self, r)
                return
        if _holds_mask(index):
            index = _plain(index)
        pending = self.tape._pending
        if pending is not None:
            # (the write-back half of self[index] op= y stores the operator's result into the very
            # array the bytecode read self[index] from, whatever vertex jacc keeps that view of: an
            # index from np.argsort views the array sorted, y[i[:3]] += 1 was refused)
            if value is not pending[0]:
                self.tape.unwritten()
            self.tape._pending = None  # the write-back of a[i] op= y
        _take(self, _set_items(self, index, value))

    # value-dependent conversions: allowed, but the trace is then only valid at this point
    def _concrete(self, what: str):
        self.tape.note_value_dependence(what)
        return self.value

    def __bool__(self) -> bool:
        return bool(self._concrete("bool() of a traced value"))

    def __float__(self) -> float:
        if self.tape.paused:
            return float(self.value)
        # NumPy turns this refusal into "setting an array element with a sequence" where it meets it
        # writing into a plain array (a[i] = x, a.fill(x)): record_call reads where it happened
        self.tape.refused_float = call_site()
        self.tape.refused = str(_concretisation("float()"))
        raise _FloatConversion(self.tape.refused)

    # int(), math.trunc() and round() to an int are piecewise constant: read at the traced point (the
    # trace value-dependent, as after a comparison), their zero derivative loses nothing. float()
    # keeps a value's slope and an index must be an integer array in NumPy too: those are refused.
    def __int__(self) -> int:  # (NumPy's int() of a 0-d or one-element array, truncating toward zero)
        if self.tape.paused:
            return int(self.value)
        frame = _user_frame()
        if frame is not None and _instruction(frame) in _SUBSCRIPT_STORES:  # a[i] = x into an int array:
            raise _concretisation("int()")  # (a slip, most likely: the values would be truncated)
        return int(self._concrete("int() of a traced value"))

    __trunc__ = __int__
    __index__ = _conversion(operator.index, "use as an index or size")
    __complex__ = _conversion(complex, "complex()")

    def as_integer_ratio(self):  # (the statistics module and fractions.Fraction read numbers so)
        raise _concretisation("as_integer_ratio() (statistics, fractions.Fraction)")

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"`` shows the value (as NumPy formats it). The trace cannot follow the text, and
        code may take a path by it (``if f"{x:.1f}" < "1.0"``): the trace depends on the value there."""
        if not spec:
            return str(self)
        if not self.tape.paused:  # (inside values_only(), values are read on purpose, as float() there)
            self.tape.note_value_dependence("format() of a traced value")
        return format(self.value, spec)

    def _compare(self, other, fn, what):
        check_operands((other,), f"comparison '{what}'")
        if self.tape.paused:
            other = other.value if isinstance(other, Tracer) else other
            return fn(self._concrete(f"comparison '{what}'"), other)
        return compare(self, other, fn)

    # comparisons give a jacc.masks.Mask: the values' booleans, recorded where they select values
    # (the operator module, not ufuncs: `x == None` or `x == "a"` behave as for an ndarray)
    __lt__ = lambda s, o: s._compare(o, operator.lt, "<")  # noqa: E731
    __le__ = lambda s, o: s._compare(o, operator.le, "<=")  # noqa: E731
    __gt__ = lambda s, o: s._compare(o, operator.gt, ">")  # noqa: E731
    __ge__ = lambda s, o: s._compare(o, operator.ge, ">=")  # noqa: E731
    __eq__ = lambda s, o: s._compare(o, operator.eq, "==")  # noqa: E731
    __ne__ = lambda s, o: s._compare(o, operator.ne, "!=")  # noqa: E731
    __hash__ = None  # with a value-comparing ==, identity hashing would break dict/set semantics

    # -- operators ------------------------------------------------------------------------------
    def _bin(self, op, other, reverse=False):
        args = [other, self] if reverse else [self, other]
        return self.tape.record(op, args)

    __add__ = lambda s, o: s.tape.record("add", [s, o])  # noqa: E731
    __radd__ = lambda s, o: s.tape.record("add", [o, s])  # noqa: E731
    __sub__ = lambda s, o: s.tape.record("sub", [s, o])  # noqa: E731
    __rsub__ = lambda s, o: s.tape.record("sub", [o, s])  # noqa: E731
    __mul__ = lambda s, o: s.tape.record("mul", [s, o])  # noqa: E731
    __rmul__ = lambda s, o: s.tape.record("mul", [o, s])  # noqa: E731
    __truediv__ = lambda s, o: s.tape.record("div", [s, o])  # noqa: E731
    __rtruediv__ = lambda s, o: s.tape.record("div", [o, s])  # noqa: E731
    # a scipy.sparse matrix multiplies itself (jacc.numpy_api.scipy_sparse)
    __matmul__ = lambda s, o: NotImplemented if _sparse(o) else s.tape.record("matmul", [s, o])  # noqa: E731
    __rmatmul__ = lambda s, o: s.tape.record("matmul", [o, s])  # noqa: E731

    def __pow__(self, other):
        if not isinstance(other, Tracer) and np.ndim(other) == 0 and not np.iscomplexobj(other) and float(other) == 2.0:
            return self.tape.unary("square", self)
        return self._bin("pow", other)

    def __rpow__(self, other):
        return self._bin("pow", other, True)

    def __neg__(self):
        return self.tape.record("neg", [self])

    def __pos__(self):
        return _copy(self, "scalar")

    def __abs__(self):
        return self.tape.record("abs", [self])

    def __round__(self, ndigits=None):
        """``round(x[i], n)`` as for NumPy's float scalars: ``np.round`` (an int without ``n``,
        which reads the value like ``int()``); arrays, as ndarrays, have no ``round``."""
        if self.ndim:
            raise TypeError("type numpy.ndarray doesn't define __round__ method")
        if ndigits is None:  # an int: piecewise constant, read at the traced point (as int())
            return round(float(self._concrete("round() of a traced value") if not self.tape.paused else self.value))
        return np.round(self, ndigits)

    def __getitem__(self, index):
        if type(index) is int:  # x[i]: what _index_params makes of a plain int
            return self.tape.record("getitem", [self], {"index": [["int", index]]})
        taken = getattr(index, "take_from", None)  # x[np.argsort(x)] (jacc.numpy_api.orders.Order)
        if taken is not None:
            r = taken(self)
            if r is not None:
                return r
        if type(index) is Mask:  # x[x > 0]: kept at full shape where only elementwise steps follow (jacc.lanes)
            r = select(self, index)
            if r is not None:
                return r
        if _holds_mask(index):
            index = _plain(index)  # x[x > 0]: a size that is a value
        if DATA_GATHER[0] is not None and _holds_int_data(self.tape, index):
            return DATA_GATHER[0](self, index)  # logp[np.arange(n), y] of labels y passed as data
        try:
            items = _index_params(index, self.ndim)
        except _ScalarBoolIndex:
            found = _scalar_bool_positions(index, self.shape)
            if found is None:
                raise
            flat = self.reshape(-1)  # (a gather, or an empty slice: NumPy's is a copy too)
            return flat[found] if found.size else _copy(flat[:0].reshape(found.shape))
        if any(type(i) is np.ndarray and not i.ndim for i in (index if type(index) is tuple else (index,))):
            return _copy(self.tape.record("getitem", [self], {"index": items}))  # (advanced: NumPy's is a copy)
        if all(i[0] == "int" for i in items) and (index is Ellipsis or (type(index) is tuple and Ellipsis in index)):
            # x[1, ...] (and y[...] of a 0-d y) is NumPy's 0-d view, not an element: a view step of
            # the same entry (one-element slices, then a reshape to 0-d) follows changes as NumPy's
            for (_, i), n in zip(items, self.shape):
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for axis of size {n} (at {call_site()})")
            one = [["slice", i % n, i % n + 1, None] for (_, i), n in zip(items, self.shape)]
            if not one and self.tape.is_scalar(self):
                return _copy(self)  # (s[...] of a NumPy scalar: a new 0-d array)
            # (y[...] of a 0-d y: a reshape of y itself, a view of it)
            return (self.tape.record("getitem", [self], {"index": one}) if one else self).reshape(())
        return self.tape.record("getitem", [self], {"index": items})

    # -- methods (the rest come from the _METHODS table below) ----------------------------------
    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and _sequence(shape[0]):
            shape = tuple(shape[0])
        if copy:  # a new array, which the caller may change in place
            return _copy(self.reshape(shape, order=order), "same")
        if order == "F":  # Fortran order: C order of the array with its axes reversed
            return self.transpose().reshape(_ints(shape)[::-1]).transpose()
        if order != "C":
            raise _unsupported(f"reshape with order={order!r} (the order of the array in memory, which a trace "
                               "does not follow; order='C' and 'F' work)")
        if not self.shape and not _ints(shape) and self.tape.is_scalar(self) and not self.tape.paused:
            return _copy(self, "scalar")  # (a NumPy scalar's reshape is a new scalar, no view)
        out = self.tape.record("reshape", [self], {"shape": _ints(shape)})
        if not self.tape.paused and type(out) is Tracer:
            _copies(self, out, _ints(shape))
            if not out.shape:
                out.tape.arrays0d.add(out.name)
        return out

    def transpose(self, *axes):
        if len(axes) == 1 and _sequence(axes[0]):
            axes = tuple(axes[0])
        if len(axes) == 1 and axes[0] is None:
            axes = ()
        axes = _axis(list(axes), "axes") if axes else None
        n = self.value.ndim
        if (n <= 1 and axes is None) or (axes is not None and [k % n if n else k for k in axes] == list(range(n))):
            # NumPy's view would have every element where it is: as an in-place target it is the
            # array itself (numpy.polynomial's polyder moves axis 0 to 0, then scales in place)
            return self
        return self.tape.record("transpose", [self], {"axes": axes})

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if np.dtype(dtype).kind == "c" and COMPLEX_OPS[0] is not None:  # complex, imaginary part zero
            return COMPLEX_OPS[0]("add", [self, np.zeros((), dtype)], None)
        tape, to = self.tape, np.dtype(dtype)
        if to.kind in "iu" and self.name in tape.ints and not tape.paused and np.can_cast(
                _int_type(tape, self.name), to, "safe"):  # integer data into a type holding it:
            r = _copy(self, "same")  # the same values (labels as int64 for an index)
            if to == np.int64:
                tape.narrow.pop(r.name, None)
            else:
                tape.narrow[r.name] = to
            return r
        if to.kind in "iub":  # integers (an index, a bin) or truth values, whose
            # derivative is zero almost everywhere, as a comparison's or np.floor's: a constant,
            # read at the traced point (the trace depends on values), as JAX differentiates it too
            return self._concrete(f".astype({np.dtype(dtype)})").astype(dtype, order=order, casting=casting)
        if np.dtype(dtype).kind != "f":
            raise _concretisation(f".astype({np.dtype(dtype)})")
        return _copy(self, "same") if copy else self  # values stay in the trace's float type

    def ravel(self, order="C"):
        return _ravel(self, order)

    def view(self, dtype=None, type=None):
        """The same array (a view of all of it, as NumPy's ``x.view()``); another dtype is refused."""
        kind = type if type is not None else dtype if isinstance(dtype, _TYPE) and issubclass(dtype, np.ndarray) \
            else None
        why = kind is not None and _not_plain(kind)
        if why:  # (`ma + x` asks a traced x for .view(MaskedArray))
            raise TypeError(f"an operand of an operation with a traced array at {call_site()} is {why}")
        if type is not None or (dtype is not None and np.dtype(dtype) != self.dtype):
            raise _concretisation(f".view({dtype or type})")
        return self

    @property
    def flat(self) -> "_Flat":
        return _Flat(self)

    def flatten(self, order="C"):
        before = len(self.tape.steps)
        out = self.reshape(-1, order=order)
        return _fresh(out, self.tape, before) if out is not self else _copy(self)  # a new array, never a view

    # -- NumPy protocols ------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _LANES[0] and Lanes in map(type, inputs):
            return NotImplemented  # (its own: jacc.lanes)
        if _HOLDING[0]:
            _settle((inputs, kwargs))
        check_operands(inputs, _ufunc_name(ufunc))
        if method == "__call__" and not kwargs:
            handler = _UFUNCS.get(ufunc.__name__)
            if handler is not None:
                return handler(self.tape, *inputs)
        if "where" in kwargs and "out" in kwargs and method == "__call__" and ufunc.nout == 1:
            return _where_into(ufunc, inputs, kwargs)
        if "out" in kwargs:
            return _into(ufunc, method, inputs, kwargs)
        name = ufunc.__name__
        handler = _UFUNC_METHODS.get((name, method))
        if handler is None and method == "outer" and ufunc.nin == 2 and name in _UFUNCS:
            handler = functools.partial(_outer, ufunc)
        fold = _UFUNC_METHODS.get(("*", method))  # (any binary ufunc's reduce, accumulate)
        if handler is None and fold is not None and ufunc.nin == 2 and ufunc.nout == 1 and name in _UFUNCS:
            handler = functools.partial(fold, ufunc)
        if handler is not None:
            return _call(handler, f"{_ufunc_name(ufunc)}.{method}", inputs, kwargs)
        if method == "at":
            raise UnsupportedOperationError(
                f"{_ufunc_name(ufunc)}.at at {call_site()} writes into its first argument in place, which a "
                "trace follows for np.add.at, np.subtract.at, np.multiply.at, np.maximum.at and np.minimum.at "
                "only; build the result instead (the changed entries with np.where)")
        if method != "__call__" or kwargs or name not in _UFUNCS:
            if name.endswith(" (vectorized)"):  # (np.frompyfunc's: its Python function is not reachable)
                raise UnsupportedOperationError(
                    f"a ufunc made by np.frompyfunc ({name}) at {call_site()} computes on Python objects, and its "
                    "function cannot be reached from the ufunc; use np.vectorize(fn) (recorded) or call fn on the "
                    "array itself")
            what = _ufunc_name(ufunc) + ("" if method == "__call__" else f".{method}")
            if kwargs:
                what += f" with keyword(s) {sorted(kwargs)}"
            raise _unsupported(what)
        return _UFUNCS[name](self.tape, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        if _LANES[0] and Lanes in types:
            return NotImplemented  # (its own: jacc.lanes)
        if _HOLDING[0]:
            _settle((args, kwargs))
        handler = _FUNCTIONS.get(func)
        mod = getattr(func, "__module__", "numpy") or "numpy"
        if handler is None:
            raise _unsupported(f"{mod}.{func.__name__}")
        before = len(self.tape.steps)
        args, kwargs = as_arrays(func, args, kwargs)
        out = _call(handler, f"{mod}.{func.__name__}", args, kwargs)
        out = out if func in _VIEW_FUNCTIONS else _fresh(out, self.tape, before)
        kind = _RESULT_KINDS.get(func)
        return out if kind is None or not isinstance(out, Tracer) or out.shape else _of_kind(out, kind, args, before)


class _Flat:
    """``x.flat``: reads as ``x.ravel()`` (indexing, iteration, ``len``; as NumPy's iterator, its
    ``index`` and ``coords``, which ``np.ndenumerate`` reads); ``x.flat[i] = v`` writes the entries
    at flat positions ``i``. ``x`` is a traced array or an array ``f`` made (jacc.buffers)."""

    __slots__ = ("x", "index", "_flat")

    def __init__(self, x: Any):
        self.x, self.index, self._flat = x, 0, None

    def __getitem__(self, index):
        x = self.x if isinstance(self.x, Tracer) else self.x.current()  # (a buffer: what it holds now)
        if not isinstance(x, Tracer):
            return x.flat[index]
        return _copy(x.reshape(-1)[index], "scalar")  # (NumPy's x.flat[...] is a copy, also of a slice)

    def __iter__(self):
        return self

    def __next__(self):
        if self.index >= self.x.size:
            raise StopIteration
        if self._flat is None:
            self._flat = self.x.reshape(-1)
        self.index += 1
        return self._flat[self.index - 1]

    @property
    def coords(self) -> tuple:
        """The next entry's index (past the end, NumPy's: (2, 0) for a 2 × 3 array)."""
        at, found = self.index, []
        for n in reversed(self.x.shape[1:]):
            at, r = divmod(at, n)
            found.append(r)
        return (at, *reversed(found)) if self.x.ndim else ()

    def __len__(self) -> int:
        return self.x.size

    def __setitem__(self, index, value):
        """As NumPy: the selected flat positions in order take ``value``'s entries, repeated where it
        has fewer; of a position selected twice, the last write stays."""
        x = self.x
        if type(index) is Mask and index.shape == x.shape and x.ndim == 1:  # (y.flat[y > 2.5] = v, as NumPy)
            x[index] = value
            return
        if _holds_tracer(index) or _holds_mask(index):
            raise UnsupportedOperationError(
                f"assignment into x.flat at {call_site()} with a traced index: the positions must be constant "
                "(or a comparison of the array's own shape)")
        positions = np.asarray(np.arange(x.size).reshape(x.shape).flat[index]).reshape(-1)
        size = int(np.size(value))
        if not positions.size:
            return
        if size == 0:
            raise ValueError(f"assignment into x.flat at {call_site()}: no values to write")
        last = positions.size - 1 - np.unique(positions[::-1], return_index=True)[1]  # (sorted by position)
        picks = last % size
        values = np.reshape(value, -1)[picks] if size > 1 else np.broadcast_to(np.reshape(value, ()), picks.shape)
        x[np.unravel_index(positions[last], x.shape)] = values


class _Num(Tracer):
    """A traced 0-d float64 value held as a Python float (a replay's arithmetic on scalars runs on
    floats: about a third of the time of 0-d arrays). ``value`` is the 0-d array, made on use."""

    __slots__ = ("num",)

    def __init__(self, tape: Tape, name: str, num: float):
        self.tape, self.name, self.num = tape, name, num

    @property
    def value(self) -> np.ndarray:
        return np.array(self.num)

    __neg__ = lambda s: s.tape.unary("neg", s)  # noqa: E731


def _num_operator(op: str, reverse: bool) -> Callable:
    """``_Num``'s operator for ``op``: :meth:`Tape.binary` with its commonest case — both
    operands replayed floats — written out, since every arithmetic step of a scalar replay
    comes here."""
    def method(s, o):
        tape = s.tape
        if type(o) is _Num and o.tape is tape:
            step = tape._float_step(op, 2)
            if step is not None:
                a, b = (o, s) if reverse else (s, o)
                ea, eb = step[4]
                if a.name == ea and b.name == eb:
                    r = step[10](a.num, b.num)
                    if r is not None and r == r:
                        return tape._kept(step, r)
        if type(o) is np.ndarray:  # no float form with an array constant: straight to record
            return tape.record(op, [o, s] if reverse else [s, o])
        return tape.binary(op, o, s) if reverse else tape.binary(op, s, o)
    return method


for _op, _names in {"add": ("__add__", "__radd__"), "sub": ("__sub__", "__rsub__"),
                    "mul": ("__mul__", "__rmul__"), "div": ("__truediv__", "__rtruediv__")}.items():
    setattr(_Num, _names[0], _num_operator(_op, False))
    setattr(_Num, _names[1], _num_operator(_op, True))


_new = object.__new__

for _dunder, _sym in [("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("pow", "**"), ("matmul", "@"),
                      ("floordiv", "//"), ("mod", "%")]:
    setattr(Tracer, f"__i{_dunder}__", _in_place(_dunder, _sym))

_CONCRETE_METHODS = {"item", "tolist", "tobytes", "tofile", "__index__"}
#: ndarray methods that change the array in place (and return None), with what builds the result
_IN_PLACE_METHODS = {"resize": "np.resize(x, shape)", "itemset": "np.where(mask, v, x)", "setfield": "np.where",
                     "byteswap": "x itself (traced values are native float64)"}


def _ufunc_name(ufunc: np.ufunc) -> str:
    """``numpy.exp``, ``scipy.special.expit`` (SciPy's ufuncs say no module of their own); a
    ufunc of neither public namespace (SciPy's private ones, e.g. ``scipy.stats``' compiled
    densities) is named as a ufunc."""
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"numpy.{name}"
    if getattr(sys.modules.get("scipy.special"), name, None) is ufunc:
        return f"scipy.special.{name}"
    return f"the compiled ufunc {name}"


@functools.lru_cache(maxsize=None)
def _signature(handler: Callable) -> inspect.Signature:
    return inspect.signature(handler)


@functools.lru_cache(maxsize=None)
def _positional_counts(handler: Callable) -> tuple[float, float]:
    """``(lo, hi)``: ``handler`` takes any ``lo`` to ``hi`` positional arguments without keywords
    (``(inf, -1)``, never, where a keyword-only parameter is required)."""
    lo, hi = 0, 0
    for p in _signature(handler).parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            hi = math.inf
        elif p.kind == p.KEYWORD_ONLY and p.default is p.empty:
            return math.inf, -1
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            hi += 1
            if p.default is p.empty:
                lo += 1
    return lo, hi


def _call(handler: Callable, what: str, args: tuple, kwargs: dict) -> Any:
    """``handler(*args, **kwargs)``, refusing arguments it does not take with a message that
    names the call site (instead of a bare TypeError from inside jacc)."""
    check_operands(args, what)
    if kwargs:
        check_operands(kwargs.values(), what)
    if not kwargs:
        lo, hi = _positional_counts(handler)
        if lo <= len(args) <= hi:  # binds: a check by signature would pass
            return handler(*args)
    try:
        _signature(handler).bind(*args, **kwargs)
    except TypeError as e:
        raise UnsupportedOperationError(
            f"{what} at {call_site()}: {e}; jacc's tracer takes {what}{_signature(handler)}") from None
    return handler(*args, **kwargs)


def _tape_of(*xs) -> Tape:
    for x in xs:
        if isinstance(x, Tracer):
            return x.tape
        if isinstance(x, (list, tuple)):
            for y in x:
                if isinstance(y, Tracer):
                    return y.tape
    raise TypeError("no traced argument")


def lone_axis(x, axis) -> bool:
    """Whether ``axis`` is the integer 0 or −1 on a 0-d ``x``: NumPy's ufunc reductions (sum, prod,
    max, min), scans and ``repeat`` accept it there, as the lone axis of a one-element array."""
    return (np.ndim(x) == 0 and isinstance(axis, (int, np.integer)) and not isinstance(axis, bool)
            and int(axis) in (0, -1))


def _reduce(op, x, axis=None, keepdims=False):
    if not isinstance(x, Tracer):
        return getattr(np, op)(x, axis=_tuple_axis(axis), keepdims=keepdims)
    if op != "mean" and lone_axis(x, axis):  # (NumPy's mean refuses it)
        axis = None
    return x.tape.record(op, [x], {"axis": _axis(axis), "keepdims": bool(keepdims)})


def _masked(what: str, x, where, fill: float):
    """``x`` with the entries outside the constant mask ``where`` replaced by ``fill``."""
    if where is _NOT:
        return x
    if isinstance(where, Tracer):
        raise _unsupported(f"{what} with a traced where= mask")
    if type(where) is Mask:  # a comparison (np.sum(x, where=x > 0)): recorded, computed at each call
        if np.broadcast_shapes(where.shape, np.shape(x)) != np.shape(x):
            raise ValueError(f"{what}: the where= mask of shape {where.shape} does not broadcast to the array's "
                             f"shape {np.shape(x)} (at {call_site()})")
        return np.where(where, x, fill)
    mask = np.asarray(where, dtype=bool)
    return _tape_of(x).record("where", [np.broadcast_to(mask, np.shape(x)), x, fill])


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NOT, where=_NOT):
    _refuse("numpy.sum", out=out)
    _check_dtype("numpy.sum", a, dtype)
    r = _reduce("sum", _masked("numpy.sum", a, where, 0.0), axis, keepdims)
    return r if initial is _NOT else r + initial


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NOT):
    _refuse("numpy.mean", out=out)
    _check_dtype("numpy.mean", a, dtype)
    if where is _NOT:
        return _reduce("mean", a, axis, keepdims)
    return _reduce("sum", _masked("numpy.mean", a, where, 0.0), axis, keepdims) / _counted(a, where, axis, keepdims)


def _counted(a, where, axis, keepdims) -> np.ndarray:
    """How many entries of ``a`` the mask ``where`` keeps in each reduced slice (a recorded mask's
    count is recorded too)."""
    kept = where.astype(float) if type(where) is Mask else np.asarray(where, bool)
    count = np.sum(np.broadcast_to(kept, np.shape(a)), axis=_tuple_axis(axis), keepdims=bool(keepdims))
    return count if type(where) is Mask else np.asarray(count, dtype=float)


def _tuple_axis(axis):
    axis = _axis(axis)
    return tuple(axis) if isinstance(axis, list) else axis


def _extreme(op: str, combine: str):
    """np.max / np.min: ``initial`` joins the result by ``combine`` (maximum / minimum)."""
    def reduce(a, axis=None, out=None, keepdims=False, initial=_NOT, where=_NOT):
        what = f"numpy.{'max' if op == 'amax' else 'min'}"
        _refuse(what, out=out)
        if where is not _NOT:
            if initial is _NOT:  # NumPy's own rule
                raise ValueError(f"reduction operation '{combine}' does not have an identity, so to use a "
                                 f"where mask one has to specify 'initial' (at {call_site()})")
            a = _masked(what, a, where, -np.inf if combine == "maximum" else np.inf)
        if initial is not _NOT and np.size(a) == 0:  # NumPy's answer: initial, a constant
            return getattr(np, op)(np.zeros(np.shape(a)), axis=_tuple_axis(axis), keepdims=keepdims,
                                   initial=initial)
        r = _reduce(op, a, axis, keepdims)
        return r if initial is _NOT else _tape_of(a).record(combine, [r, initial])
    return reduce


def _axes_of(axis: Any, ndim: int, what: str) -> list[int]:
    """The axes named by ``axis`` (None: all), non-negative, checked against ``ndim``."""
    if axis is None:
        return list(range(ndim))
    axes = np.atleast_1d(_tuple_axis(axis)).tolist()
    for k in axes:
        if not -ndim <= k < ndim:
            raise TraceError(f"{what} at {call_site()}: axis {k} is out of range for {ndim} dimension(s)")
    return sorted({k % ndim for k in axes})


def _reduced_count(a, axis) -> int:
    shape = np.shape(a)
    return int(np.prod([shape[k] for k in _axes_of(axis, len(shape), "numpy.var")]))


def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NOT, mean=_NOT,
         correction=_NOT):
    """Variance by composition: mean((a - mean(a))²)·n / (n − ddof), as NumPy computes it."""
    _refuse("numpy.var", out=out)
    _check_dtype("numpy.var", a, dtype)
    if correction is not _NOT:
        ddof = correction
    if isinstance(where, Tracer):
        raise _unsupported("numpy.var with a traced where= mask")
    m = _mean(a, axis, keepdims=True, where=where) if mean is _NOT else mean
    squares = _masked("numpy.var", np.square(a - m), where, 0.0)
    if where is _NOT:
        return _reduce("sum", squares, axis, keepdims) / float(_reduced_count(a, axis) - ddof)
    return _reduce("sum", squares, axis, keepdims) / (_counted(a, where, axis, keepdims) - ddof)


def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NOT, mean=_NOT,
         correction=_NOT):
    v = _var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction)
    one = _reduced_count(a, axis) == 1 and where is _NOT and mean is _NOT
    if one and (ddof if correction is _NOT else correction) == 0:
        return v  # identically 0 with slope 0, where √ of it would have slope ∞·0 = NaN
    return np.sqrt(v)


def _prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NOT, where=_NOT):
    """Product by composition: a chain of multiplications along each reduced axis."""
    _refuse("numpy.prod", out=out)
    _check_dtype("numpy.prod", a, dtype)
    x = _masked("numpy.prod", a, where, 1.0)
    shape = x.shape
    axes = [] if lone_axis(x, axis) else _axes_of(axis, x.ndim, "numpy.prod")
    for k in reversed(axes):
        if x.shape[k] == 0:
            x = np.ones(x.shape[:k] + x.shape[k + 1:])
            continue
        pre = (slice(None),) * k
        r = x[pre + (0,)]
        for i in range(1, x.shape[k]):
            r = r * x[pre + (i,)]
        x = r
    if keepdims:
        x = x.reshape([1 if k in axes else n for k, n in enumerate(shape)])
    return x if initial is _NOT else x * initial


def _nd(x) -> int:
    return x.ndim if isinstance(x, Tracer) else np.ndim(x)


def _squeeze(a, axis=None):
    shape = a.shape
    axes = _axes_of(axis, len(shape), "squeeze")
    if axis is not None and any(shape[k] != 1 for k in axes):
        raise TraceError(f"squeeze at {call_site()}: an axis in {axis} of shape {shape} does not have size 1")
    drop = {k for k in axes if shape[k] == 1}
    if not shape and isinstance(a, Tracer) and a.tape.is_scalar(a) and not a.tape.paused:
        return _copy(a, "scalar")  # (a NumPy scalar's squeeze is a new scalar, no view)
    return _tape_of(a).record("reshape", [a], {"shape": [n for k, n in enumerate(shape) if k not in drop]})


def _unary(op):
    return lambda tape, x: tape.unary(op, x)


def _binary(op):
    return lambda tape, x, y: tape.record(op, [x, y])


def _comparison(fn, what):
    """A ufunc that looks at values (``np.signbit``), met with a traced operand: the result is a
    constant and the trace is value-dependent."""
    def compare(tape, *xs):
        tape.note_value_dependence(f"comparison '{what}'")
        return fn(*[x.value if isinstance(x, Tracer) else x for x in xs])
    return compare


_UFUNCS: dict[str, Callable] = {
    **{name: _unary(name) for name in
       ["exp", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arctan",
        "arcsin", "arccos", "sqrt", "square", "reciprocal"]},
    "negative": _unary("neg"), "absolute": _unary("abs"), "positive": lambda tape, x: _copy(x, "scalar"),
    "conjugate": lambda tape, x: _copy(x, "scalar"),
    "add": _binary("add"), "subtract": _binary("sub"), "multiply": _binary("mul"),
    "divide": _binary("div"), "true_divide": _binary("div"),
    "power": lambda tape, x, y: x ** y if isinstance(x, Tracer) else tape.record("pow", [x, y]),  # (x ** 2: square)
    "maximum": _binary("maximum"), "minimum": _binary("minimum"), "matmul": _binary("matmul"),
    # (comparisons, np.isnan & co. and the logical ufuncs: registered by jacc.masks, below)
}


def _ravel(a):
    return a.reshape(-1) if isinstance(a, Tracer) else np.ravel(a)


def _concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _refuse("numpy.concatenate", out=out, casting=None if casting == "same_kind" else casting)
    _check_dtype("numpy.concatenate", arrays, dtype)
    if axis is None:  # NumPy flattens every array first
        arrays, axis = [_ravel(a) for a in arrays], 0
    return _tape_of(arrays).record("concatenate", list(arrays), {"axis": _int(axis, "axis")})


def _stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _refuse("numpy.stack", out=out, casting=None if casting == "same_kind" else casting)
    _check_dtype("numpy.stack", arrays, dtype)
    return _tape_of(arrays).record("stack", list(arrays), {"axis": _int(axis, "axis")})


def _bound_param(b: Any) -> Any:
    """A constant clip bound as JSON-friendly params: None, a float or nested lists."""
    if b is None or b is _NOT:
        return None
    b = np.asarray(b, dtype=float)
    return float(b) if b.ndim == 0 else b.tolist()


def _clip(a, a_min=_NOT, a_max=_NOT, out=None, *, min=_NOT, max=_NOT, **kwargs):
    _refuse("numpy.clip", out=out, **kwargs)
    lo, hi = (min if a_min is _NOT else a_min), (max if a_max is _NOT else a_max)
    lo, hi = (None if lo is _NOT else lo), (None if hi is _NOT else hi)
    traced = [b for b in (lo, hi) if isinstance(b, Tracer)]
    if traced:  # NumPy's own definition, bounds differentiated
        kept = a
        for bound, keep in ((lo, np.maximum), (hi, np.minimum)):
            if bound is not None:
                kept = keep(kept, bound)
        if not all(b.name in b.tape.data for b in traced):
            return kept
        # bounds from data arguments alone: a constant bound's rule (1 on [lo, hi], bounds included),
        # as at the calls that fold the data in as constants; outside, NumPy's value
        inside = (a >= lo) if hi is None else (a <= hi) if lo is None else (a >= lo) & (a <= hi)
        return np.where(inside, a, kept)
    if isinstance(a, Tracer) and a.name in a.tape.ints and all(b is None or _integral(b) for b in (lo, hi)):
        # integer data by integer bounds (labels clamped to the classes): NumPy's clip is this maximum
        # and minimum, which keep the data integer (Tape.ints), so the labels may index
        kept = a if lo is None else np.maximum(a, lo)
        return kept if hi is None else np.minimum(kept, hi)
    full = np.broadcast_shapes(np.shape(a), *[np.shape(b) for b in (lo, hi) if b is not None and b is not _NOT])
    if full != np.shape(a):  # bounds that broadcast the argument: NumPy's result has their shape
        a = _broadcast_to(a, full)
    if not a.size:  # (nothing to clip; an empty bound's nested list would lose its shape)
        return a * 1.0
    lo, hi = _bound_param(lo), _bound_param(hi)
    return _tape_of(a).record("clip", [a], {"lo": lo, "hi": hi})


def _broadcast_to(array, shape, subok=False):
    return _tape_of(array).record("broadcast_to", [array], {"shape": _ints(shape)})


def _transpose(a, axes=None):
    return a.transpose() if axes is None else a.transpose(_axis(axes, "axes"))


def _moveaxis(a, source, destination):
    n = a.ndim
    src = [k % n for k in np.atleast_1d(_axis(source, "source")).tolist()]
    dst = [k % n for k in np.atleast_1d(_axis(destination, "destination")).tolist()]
    _axes_of(src + dst, n, "moveaxis")
    if len(src) != len(dst):
        raise TraceError(f"moveaxis at {call_site()}: source and destination need the same number of axes")
    order = [k for k in range(n) if k not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return a.transpose(order)


def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    return a.reshape(shape if newshape is None else newshape, order=order, copy=copy)


def _ravel(a, order="C"):
    """``a.reshape(-1)``, which NumPy's ravel makes as a copy where ``a`` is not contiguous in
    ``order`` (where ``reshape(-1)`` of a strided 1-d array is a view): then the result owns its values."""
    out = a.reshape(-1, order=order)
    if isinstance(a, Tracer) and type(a) is not _Num and out is not a and out.tape.is_view(out.name):
        probe = a.tape.layout(a.name)
        if probe is not None and not np.may_share_memory(np.ravel(probe, order=order), probe):
            a.tape.own(out.name)
    return out


def _copies(t: "Tracer", out: "Tracer", shape) -> None:
    """``out``, just recorded as ``t.reshape(shape)``, owns its values where NumPy's reshape of the
    user's array copies (``t`` laid out strided: y.T.reshape(-1)); a contiguous array's is a view."""
    tape = t.tape
    if tape.is_view(out.name) and (t.name in tape._root or not t.value.flags.c_contiguous):
        probe = tape.layout(t.name)
        if probe is not None:
            r = np.reshape(probe, shape)
            if r.size and not np.may_share_memory(r, probe):
                tape.own(out.name)


def _size(a, axis=None):
    return a.size if axis is None else a.shape[_int(axis, "axis")]


def _same(a):
    """x.conj()/x.conjugate() of a traced (real) value: ``x`` itself, as NumPy's methods return
    a real array (so an in-place change of the result changes ``x``; the ufunc np.conj copies)."""
    return a


_FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _extreme("amax", "maximum"),
    np.min: _extreme("amin", "minimum"),
    np.var: _var,
    np.std: _std,
    np.prod: _prod,
    np.ndim: lambda a: a.ndim,
    np.shape: lambda a: a.shape,
    np.size: _size,
    np.reshape: _np_reshape,
    np.transpose: _transpose,
    np.moveaxis: _moveaxis,
    np.ravel: lambda a, order="C": _ravel(a, order),
    np.squeeze: _squeeze,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.broadcast_to: _broadcast_to,
    np.clip: _clip,
    np.copy: lambda a, order="K", subok=False: _copy(a),
    np.real: lambda val: val,
    # numpy.where, numpy.matmul, numpy.linalg and the rest: jacc/numpy_api/
}
for _alias in ("amax", "amin"):
    if hasattr(np, _alias) and getattr(np, _alias) not in _FUNCTIONS:
        _FUNCTIONS[getattr(np, _alias)] = _FUNCTIONS[np.max if _alias == "amax" else np.min]

# ndarray methods recorded through the same rules as the NumPy functions (same arguments, same
# refusals); x.copy() is a new array with the value, x.conj() the array itself
_METHODS: dict[str, Callable] = {
    "sum": _sum, "mean": _mean, "max": _FUNCTIONS[np.max], "min": _FUNCTIONS[np.min], "var": _var,
    "std": _std, "prod": _prod, "squeeze": _squeeze, "clip": _clip,
    "copy": lambda a, order="C": _copy(a, "same"), "conj": _same, "conjugate": _same,
}


def _method(name: str, handler: Callable) -> Callable:
    def method(self, *args, **kwargs):
        before = len(self.tape.steps)
        out = _call(handler, f"ndarray.{name}", (self, *args), kwargs)
        return out if name in _VIEW_METHODS else _fresh(out, self.tape, before)
    method.__name__ = name
    return method


#: NumPy functions and ndarray methods that return views: the rest return new arrays, so their
#: results own their values where jacc's own last op is a reshape or slice (see Tape.own)
_VIEW_FUNCTIONS = {getattr(np, n) for n in (
    "reshape", "transpose", "moveaxis", "swapaxes", "squeeze", "expand_dims", "ravel", "broadcast_to",
    "broadcast_arrays", "flip", "fliplr", "flipud", "rot90", "real", "atleast_1d", "atleast_2d", "atleast_3d",
    "diagonal", "diag", "split", "array_split", "hsplit", "vsplit", "dsplit", "unstack", "matrix_transpose",
    "permute_dims", "asarray", "asanyarray", "ascontiguousarray", "real_if_close", "trim_zeros")
    if hasattr(np, n)}
_VIEW_METHODS = {"reshape", "transpose", "ravel", "squeeze", "swapaxes", "diagonal", "view"}


def _fresh(out: Any, tape: Tape, before: int) -> Any:
    """``out`` (a result or a tuple of them), its traced arrays made by a view op since step
    ``before`` owning their values (an argument handed back as it was keeps its kind)."""
    made = {step[0] for step in tape.steps[before:] if step[1] in _VIEW_OPS}
    if made:
        for o in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(o, Tracer) and o.name in made:
                tape.own(o.name)
    return out


for _name, _handler in _METHODS.items():
    setattr(Tracer, _name, _method(_name, _handler))
_OWN_METHODS = {"T", "reshape", "transpose", "astype", "ravel", "flatten", "real", "view", "flat"}


def implements(*funcs: Callable, method: str | None = None) -> Callable:
    """Register a handler for NumPy functions (and, with ``method=``, the ndarray method of that
    name). The handler takes NumPy's own signature; arguments it does not take are refused with
    the call site. Used by :mod:`jacc.numpy_api`::

        @implements(np.flip)
        def _flip(m, axis=None): ...
    """
    def deco(handler: Callable) -> Callable:
        for f in funcs:
            _FUNCTIONS[f] = handler
        if method is not None:
            _METHODS[method] = handler
            setattr(Tracer, method, _method(method, handler))
        return handler
    return deco


#: ``(ufunc name, method)`` → ``handler(*inputs, **kwargs)`` for ufunc methods other than a call
#: (``np.add.reduce``: a sum); ``outer`` of every binary ufunc is :func:`_outer`.
_UFUNC_METHODS: dict[tuple[str, str], Callable] = {}


def _outer(ufunc: np.ufunc, a, b):
    """``ufunc.outer(a, b)``: ``a`` given ``b``'s dimensions as trailing ones, then broadcast."""
    return ufunc(np.reshape(a, np.shape(a) + (1,) * np.ndim(b)), b)


def implements_ufunc_method(name: str, method: str) -> Callable:
    """Register ``handler(*inputs, **kwargs)`` for ``ufunc.method`` (e.g. ``"add", "reduce"``).
    ``name="*"``: ``handler(ufunc, *inputs, **kwargs)`` for that method of every binary ufunc the
    trace records that has no handler of its own (``np.fmax.reduce``, ``np.subtract.accumulate``)."""
    def deco(handler: Callable) -> Callable:
        _UFUNC_METHODS[name, method] = handler
        return handler
    return deco


def implements_ufunc(*names: str) -> Callable:
    """Register ``handler(tape, *inputs)`` for the ufuncs ``names`` (``ufunc.__name__``)."""
    def deco(handler: Callable) -> Callable:
        for n in names:
            _UFUNCS[n] = handler
        return handler
    return deco


def supported_functions() -> list[str]:
    """Names of the NumPy functions and ufuncs the tracer records."""
    # a handler marked ``refusal`` only explains why a function cannot be recorded
    from .numpy_api import (
        scipy_fft,
        scipy_integrate,
        scipy_interpolate,
        scipy_linalg,
        scipy_ndimage,
        scipy_ode,
        scipy_optimize,
        scipy_signal,
        scipy_sparse,
        scipy_spatial,
        scipy_stats,
        ufuncs,
    )

    scipy = {n for m in (scipy_fft, scipy_integrate, scipy_interpolate, scipy_linalg, scipy_ndimage, scipy_ode,
                         scipy_optimize, scipy_signal, scipy_sparse, scipy_spatial, scipy_stats) for n in m.supported()}
    return sorted(_public_ufuncs() | {f.__name__ for f, h in _FUNCTIONS.items() if not getattr(h, "refusal", False)}
                  | {f"{'ufunc' if n == '*' else n}.{m}" for n, m in _UFUNC_METHODS} | scipy | set(ufuncs.SWAPPED)
                  | set(ufuncs.WRAPPED) | {"vectorize"})


def _is_array_like(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (float, np.floating)):
        return True
    if pytrees.is_node(x):  # a dict or tuple of float arrays
        leaves = pytrees.flatten(x)[0]
        return bool(leaves) and all(map(_is_array_like, leaves))
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def trace(f: Callable, *args, argnums: int | tuple[int, ...] | None = None, dtype=np.float64,
          scalarize: bool = False, **kwargs) -> Graph:
    """Record ``f(*args, **kwargs)`` as a :class:`Graph`.

    Inputs are the positional arguments ``argnums`` (default: every float array or float
    argument), named after ``f``'s parameters; other arguments are constants (the graph keeps
    its own copies). Outputs are the returned array(s). ``graph.meta['value_dependent']`` lists
    any place where the trace looked at a value (``if x > 0``), which makes the graph valid at
    this point only.

    ``scalarize=True`` records the graph at the scalar level used by the AD literature: each
    vector input becomes scalar inputs ``x[0]``, ``x[1]``, … (indexing them costs nothing), and
    an output built by stacking scalars becomes separate scalar outputs.

    >>> import numpy as np
    >>> g = trace(lambda A, x: np.tanh(A @ x), np.ones((2, 3)), np.ones(3))
    >>> g.inputs, [g.shape(o) for o in g.outputs]
    (['A', 'x'], [(2,)])
    """
    if argnums is None:
        argnums = tuple(i for i, a in enumerate(args) if _is_array_like(a))
        if not argnums:
            raise TypeError("trace: no float array arguments to differentiate; pass argnums=")
    from .collector import paused

    with paused():  # (10⁵ scalar vertices: the collector's passes took 40 % of the time)
        return record_call(f, args, kwargs, argnums, dtype, scalarize=scalarize).graph


#: ValueErrors that NumPy and SciPy raise for object arrays only (a scalar-level trace's arrays)
_OF_OBJECT_ARRAYS = re.compile(r"object arrays|does not have an identity")


def check_argnums(argnums: Any, n: int | None = None, keywords: Any = ()) -> tuple[int, ...]:
    """``argnums`` as a tuple of distinct ints (made non-negative when the count ``n`` is known);
    ``keywords``: the names of the call's keyword arguments, for the message when a position is missing."""
    if type(argnums) is tuple and argnums and n is not None:  # the usual case, checked cheaply
        for i in argnums:
            if type(i) is not int or not 0 <= i < n:
                break
        else:
            if len(argnums) == 1 or len(set(argnums)) == len(argnums):
                return argnums
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) else argnums
    if (isinstance(argnums, (bool, np.bool_)) or not isinstance(nums, (tuple, list))
            or not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in nums)):
        raise TypeError(f"argnums must be an int or a tuple of ints (positions of the arguments to "
                        f"differentiate), not {argnums!r}")
    nums = tuple(int(i) for i in nums)
    if not nums:
        raise ValueError("argnums is empty: name at least one argument to differentiate")
    if n is not None:
        for i in nums:
            if not -n <= i < n:
                given = (f"; {', '.join(map(repr, keywords))} came by keyword, but differentiated arguments are "
                         "taken by position: pass them positionally") if keywords else ""
                raise ValueError(f"argnums {i} is out of range for {n} positional argument(s){given}")
        nums = tuple(i % n for i in nums)
    if len(set(nums)) != len(nums):
        raise ValueError(f"argnums {argnums!r} names an argument twice; list each position once")
    return nums


#: Functions (their code objects, or their types) whose trace needed NumPy's constructors and the
#: other replaced functions of jacc.constructors: later traces of them run with the replacements.
_NEEDS_SWAPS: set = set()
_NO_SWAPS = contextlib.nullcontext()
#: Those whose trace wrote a traced value into a plain array: their later traces make the arrays
#: they create with np.zeros & co. buffers that can take traced values (jacc.buffers).
_NEEDS_BUFFERS: set = set()


def trace_needs(f: Callable, restore: tuple | None = None) -> tuple:
    """Whether traces of ``f`` run with NumPy's constructors replaced and with buffers (learned
    from a trace that needed them); with ``restore``, set them back to that."""
    key = code_key(f)
    if restore is not None:
        for needs, on in zip((_NEEDS_SWAPS, _NEEDS_BUFFERS), restore):
            if on:
                needs.add(key)
            else:
                needs.discard(key)
    return key in _NEEDS_SWAPS, key in _NEEDS_BUFFERS


def code_key(f: Any) -> Any:
    """What a trace of ``f`` is remembered by (its needs for swaps and buffers): its code object —
    through ``functools.partial`` — or, for another callable, its type. (Every partial was one key:
    one partial's refused trace turned swaps on for all.)"""
    while isinstance(f, functools.partial):  # (one jacobian makes around f: f's, see api._keywords_as_positions)
        f = f.__dict__.get("__wrapped__") or f.func
    return getattr(f, "__code__", None) or type(f)


def _buffers():
    from .buffers import held

    return held()


def _sparse(obj: Any) -> bool:
    """Whether ``obj`` is a ``scipy.sparse`` matrix or array (without importing SciPy)."""
    return type(obj).__module__.startswith("scipy.sparse")


def record_call(f: Callable, args: tuple, kwargs: dict, argnums: Any, dtype=np.float64, *,
                scalarize: bool = False, expect: Recording | None = None,
                names: list[str] | None = None, shared: dict | None = None,
                ints: frozenset = frozenset(), data: frozenset = frozenset(),
                f32: frozenset = frozenset(), bools: frozenset = frozenset(),
                narrow: dict | None = None) -> Tape:
    """Run ``f`` on traced arguments; the :class:`Tape` holds the graph (or, when the call
    replayed ``expect`` exactly, no graph), every vertex's value and the recording. ``names``:
    the inputs' names if already known (default: ``f``'s parameter names). ``shared``: read-only
    copies of the caller's arrays made by earlier traces, by id (``{id: (array, copy)}``, as
    :attr:`Tape.copies`): a constant operand that is such an array with the copy's bits takes
    that copy instead of a new one (the graphs of one ``jacobian``'s structures share it).

    NumPy's array constructors (and ``scipy.linalg``, ``np.vectorize``; :mod:`jacc.constructors`)
    are replaced only for functions that need them, which costs no one else anything: a first
    trace that meets a conversion of a traced array runs ``f`` again with them (once per
    function; its side effects happen twice that time)."""
    if scalarize:
        from .scalarize import join

    names = names or _param_names(f, len(args))
    argnums = check_argnums(argnums, len(args), kwargs)
    key = code_key(f)
    swaps = key in _NEEDS_SWAPS or wants_swaps(f)
    tries = 0
    while True:
        if tries:  # (what the refused try ran is not what later traces run: jacc.guards)
            from .guards import restart_watch

            restart_watch()
        tries += 1
        tape = Tape(getattr(f, "__name__", "f").replace("<lambda>", "lambda"), dtype,
                    None if scalarize else expect)
        tape.shared = shared
        targs = _traced_arguments(tape, args, argnums, names, dtype, scalarize, bools)
        tape.ints.update(dict.fromkeys(ints, INT_DATA_BOUND))
        tape.f32.update(f32)
        tape.narrow.update(narrow or {})
        tape.data.update(data)
        _RUNNING.tapes.append(tape)
        unseen_before = unseen_modules()
        try:
            with _errstate_of_f(tape), constructors() if swaps else _NO_SWAPS, \
                    aliases(f) if swaps else _NO_SWAPS as call, \
                    _buffers() if key in _NEEDS_BUFFERS else _NO_SWAPS:
                result = (call or f)(*targs, **kwargs)
            if tape.refused is None and not (unseen_modules() - unseen_before):
                break
            if tape.refused is None:  # f imported a module with replacements and its originals ran on
                _NEEDS_SWAPS.add(key)  # traced arrays: the replacements' trace is the one later calls meet
                swaps = True
                continue
            # a refusal was caught (f's own `except TypeError:`, or a library's) and f went on: the
            # trace took a path NumPy would not have taken; with the replacements it may not refuse
            if swaps:
                raise UnsupportedOperationError(
                    f"{tape.refused} — and the code that called it caught the error and went on (an `except "
                    "TypeError:` in f or a library it calls), which would give the Jacobian of another "
                    "computation; let the conversion happen outside the try, or build the array as suggested")
            _NEEDS_SWAPS.add(key)
            swaps = True
            continue
        except Exception as err:
            e = _refusal_behind(err, tape)
            if e is None:
                if scalarize and (isinstance(err, (TypeError, AttributeError, RecursionError, SystemError))
                                  or (isinstance(err, ValueError) and _OF_OBJECT_ARRAYS.search(str(err)))) \
                        and not isinstance(err, UnsupportedOperationError):  # (LinAlgError &c. stand)
                    from .scalarize import refusal

                    raise refusal(err) from err
                imported = bool(unseen_modules() - unseen_before)  # (by f, while it ran)
                if not imported and (swaps or not _raised_in_library(err)):
                    raise  # (f's own error; or a library's, with the replacements on)
                # again: f imported a module with replacements while it ran (its originals failed), or
                # a library's code met a traced value and took the wrong branch without refusing it
                # (SciPy's np.isscalar(bw_method) of a traced h[0]: its ValueError, hunt CC). An error
                # f raises itself is not retried: f may not give it twice (a batch from an iterator)
                e = err
            more = isinstance(e, _PlainWrite) and key not in _NEEDS_BUFFERS
            if swaps and not more and not unseen_imports():  # final: the public error, not the retry's marker
                if isinstance(e, _UnsupportedAttribute):  # (raised as it is: also an AttributeError)
                    raise
                cause = None if e is err or isinstance(err, ValueError) else err
                raise UnsupportedOperationError(str(e)) from cause
            _NEEDS_SWAPS.add(key)
            swaps = True
            if more:
                _NEEDS_BUFFERS.add(key)
        finally:
            _RUNNING.tapes.pop()
    if tape._pending is not None:
        tape.unwritten()
    if _HOLDING[0]:
        _settle(result)
    # Outputs nest by their containers alone: a tuple of numbers inside a dict is a tuple of outputs
    # whether or not its numbers were traced (they are not when they do not depend on the argument
    # differentiated: the result's nesting then changed with argnums)
    outs, kind, nested = result_leaves(result, pytrees.is_node if scalarize else _output_node)
    if scalarize:  # (scalar outputs: a flat tuple of them)
        outs, kind = [y for r in outs for y in join(r)], kind if not nested else True
    tape.declare(outs, kind)
    return tape


def result_leaves(result: Any, node: Callable[[Any], bool] | None = None) -> tuple[list, Any, bool]:
    """``f``'s result as its outputs: ``(leaves, nesting, nested)`` — the nesting a TreeSpec where
    ``nested`` (a dict or nested tuple), else whether it was a flat tuple or list."""
    node = node or _output_node
    nested = isinstance(result, dict) or (isinstance(result, (tuple, list)) and (
        any(map(node, result)) or hasattr(type(result), "_fields")))  # (a namedtuple keeps its type, as in JAX)
    if nested:  # a dict or nested tuple: one output per leaf, the nesting kept for the result
        outs, kind = pytrees.flatten(result, node)
        return list(outs), kind, True
    outs = result if isinstance(result, (tuple, list)) else (result,)
    return list(outs), isinstance(result, (tuple, list)), False


def _output_node(x: Any) -> bool:
    """A container of ``f``'s result to take apart: a dict, tuple or list, whatever it holds."""
    return isinstance(x, (dict, tuple, list))


def _from_swapped_library(err: Exception) -> bool:
    """Whether ``err`` passed through a package other than NumPy that jacc replaces functions of
    (SciPy): its compiled code, meeting a refused conversion, reports an error of its own, or
    leaves ours set for the next Python call to find (a SystemError anywhere below it)."""
    roots = {m.split(".", 1)[0] for m in _SWAPS} - {"numpy"}
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").split(".", 1)[0] in roots:
            return True
        tb = tb.tb_next
    return False


def _refusal_behind(err: Exception, tape: Tape) -> UnsupportedOperationError | None:
    """The refused conversion that made ``f`` fail, which jacc's replacements may avoid (see
    record_call): ours as raised, NumPy's "setting an array element with a sequence" after a
    refused float(), or any error compiled code reported after meeting one; else None."""
    if isinstance(err, (_ArrayConversion, _UnsupportedAttribute)):
        return err
    if isinstance(err, ValueError) and tape.refused_float is not None and str(err).startswith(
            ("setting an array element with a sequence", "Error setting single item of array")):  # (a.flat[i] = x)
        return _PlainWrite(f"NumPy asked for a traced value as a float at {tape.refused_float} (and reported "
                           f"{str(err)!r}), as it does writing one into a plain array (a[i] = x, a.fill(x)): "
                           f"{PLAIN_WRITE_FIX}")
    if isinstance(err, UnsupportedOperationError) or tape.refused is None or not _from_swapped_library(err):
        return None
    return _ArrayConversion(f"{tape.refused} (compiled code met it and reported {type(err).__name__}: {err})")


def _traced_arguments(tape: Tape, args: tuple, argnums: tuple, names: list, dtype, scalarize: bool,
                      bools: frozenset = frozenset()) -> list:
    """``args`` with the differentiated ones traced (a nested one leaf by leaf, see jacc.pytrees);
    ``bools``: the inputs of boolean data (:func:`jacc.masks.data_mask`)."""
    targs = list(args)
    groups = []  # per argument: (None, [name]) or, nested, (spec, leaf names)
    nested = False
    for i in argnums:
        arg, name = args[i], names[i]
        if isinstance(arg, (dict, tuple, list)) and pytrees.is_node(arg):  # one input per leaf
            leaves, spec = pytrees.flatten(arg)
            paths = spec.paths(name)
            traced = [_traced_input(tape, p, leaf, dtype, scalarize, name, mask=p in bools)
                      for p, leaf in zip(paths, leaves)]
            targs[i] = pytrees.unflatten(spec, traced)
            tape.containers.append((name, targs[i], spec, traced))
            groups.append((spec, paths))
            nested = True
        else:
            targs[i] = _traced_input(tape, name, arg, dtype, scalarize, mask=name in bools)
            groups.append((None, [name]))
    if nested:
        tape.input_groups = groups
    return targs


def refuse_enclosing(value: Any, what: str) -> None:
    """Refuse a value traced by an enclosing jacc trace (``jacobian(jacobian(f))``), also where
    the inner Jacobian would not trace ``f`` (a call that skips it)."""
    if isinstance(value, Tracer) and not value.tape.paused:
        raise UnsupportedOperationError(
            f"{what} is traced by an enclosing jacc trace at {call_site()}: differentiating a jacc Jacobian again "
            "(a Hessian, jacobian(jacobian(f))) is not supported; differentiate a gradient written out in NumPy "
            "instead")


def _traced_input(tape: Tape, name: str, value: Any, dtype, scalarize: bool, owner: str | None = None,
                  mask: bool = False) -> Any:
    """The input vertex ``name`` (a leaf of the argument ``owner`` when that is nested); ``mask``:
    boolean data, which ``f`` gets as a recorded mask."""
    what = f"argument {name!r}" if owner is None else f"{name} (in argument {owner!r})"
    refuse_enclosing(value, what)
    check_plain(value, what)
    a = np.asarray(value)
    if mask and a.dtype == bool:  # a mask passed as data: NumPy's booleans, f gets a Mask
        return data_mask(tape, name, a)
    check_real(a.dtype, what)
    if scalarize:
        from .scalarize import split

        return split(tape, name, _private(a, dtype))
    if isinstance(value, np.ndarray) and not value.ndim:  # (a float argument is NumPy's scalar)
        tape.arrays0d.add(name)
    return tape.input(name, a)


def _param_names(f: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return [f"x{i}" for i in range(n)]
    names: list[str] = []
    taken = {p.name for p in params}

    def fresh(name: str) -> str:  # (a made-up name may be a parameter's: def f(args0, *args))
        while name in taken:
            name += "_"
        taken.add(name)
        return name
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [fresh(f"{p.name}{i}") for i in range(n - len(names))]
    names += [fresh(f"x{i}") for i in range(len(names), n)]
    return names[:n]


from .constructors import (  # noqa: E402  (it needs Tracer, above)
    _SWAPS,
    VIEWS,
    _holds_tracer,
    _nested,
    aliases,
    as_arrays,
    constructors,
    unseen_imports,
    unseen_modules,
    wants_swaps,
)

__all__ = ["trace", "Tracer", "UnsupportedOperationError", "TraceError", "ShapeError",
           "supported_functions"]


from .lanes import LIVE as _LANES  # noqa: E402
from .lanes import Lanes, select, write_rows  # noqa: E402
from .lanes import assign as lanes_assign  # noqa: E402
from .lanes import record as lanes_record  # noqa: E402
from .masks import Mask, _holds_mask, _plain, compare, data_mask  # noqa: E402  (it builds on the tracer above)
