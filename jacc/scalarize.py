"""Scalar-level tracing: the AD literature's graphs, one vertex per scalar operation.

``trace(f, ..., scalarize=True)`` hands ``f`` every differentiated argument as a NumPy *object*
array of :class:`Scalar` handles (a float argument becomes one ``Scalar``). NumPy evaluates
object arrays element by element through Python's operators and methods (``a @ b`` becomes
sums of products, ``np.sin(a)`` calls ``.sin()`` per element), so matrices, reductions, stacking
and indexing all come out as scalar operations, as in CasADi's SX graphs and the graphs that
Graphax/AlphaGrad and angel count on.

Constants fold as those tools fold them: ``x·0 = 0``, ``x·1 = x``, ``x·(−1) = −x``, ``x ± 0 = x``,
``0 − x = −x``, ``x/1 = x``, ``0/x = 0``, ``x**1 = x``, ``x**0 = 1``; operations on constants
alone are plain float arithmetic and never reach the graph. (``x·0 = 0`` also for ``x = ±∞`` or
NaN, as in CasADi: a structural zero is zero.) Together with the cost model's free ±1 partials
(``neg`` and the second argument of ``sub``) this gives multiplication counts comparable with
the literature's, e.g. the PUMA robot arm's Denavit–Hartenberg products, whose constant zeros
and ones cost nothing.

>>> import numpy as np
>>> from jacc.trace import trace
>>> g = trace(lambda A, x: A @ x, np.array([[1.0, 0.0], [2.0, 3.0]]), np.ones(2), scalarize=True)
>>> g.inputs
['A[0][0]', 'A[0][1]', 'A[1][0]', 'A[1][1]', 'x[0]', 'x[1]']
>>> sorted({g.op(v) for v in g.nx if v not in g.inputs})
['add', 'mul']
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np

# (imported with jacc, never while a trace has swapped NumPy's functions: the table's keys are
# the functions themselves, and a first import under a trace's swaps keyed it by the replacements)
from .scalar_linalg import FUNCTIONS
from .trace import Tape, Tracer, UnsupportedOperationError, _FloatConversion, call_site

__all__ = ["Scalar", "ScalarArray", "split", "join", "element_name"]


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


class Scalar:
    """One traced scalar of a scalar-level trace (wraps a 0-d :class:`~jacc.trace.Tracer`).

    It has no ``__array_ufunc__``: NumPy treats it as a plain Python object, so object arrays
    of ``Scalar`` run NumPy code element by element."""

    __slots__ = ("t", "negated")

    def __init__(self, t: Tracer):
        self.t = t
        self.negated: Scalar | None = None  # x when this is −x

    def __repr__(self) -> str:
        return f"Scalar({self.t.name})"

    @property
    def value(self) -> float:
        return float(self.t.value)

    # binary operators: fold exact constants, record the rest on the tape
    def _op(self, op: str, other: Any, reverse: bool = False):
        if isinstance(other, Scalar):
            other = other.t
        elif not _number(other):
            return NotImplemented  # an ndarray applies the operator element by element
        else:
            folded = _FOLD[op](self, float(other), reverse)
            if folded is not _KEEP:
                return folded
        a, b = (other, self.t) if reverse else (self.t, other)
        return Scalar(self.t.tape.record(op, [a, b]))

    __add__ = lambda s, o: s._op("add", o)  # noqa: E731
    __radd__ = lambda s, o: s._op("add", o, True)  # noqa: E731
    __sub__ = lambda s, o: s._op("sub", o)  # noqa: E731
    __rsub__ = lambda s, o: s._op("sub", o, True)  # noqa: E731
    __mul__ = lambda s, o: s._op("mul", o)  # noqa: E731
    __rmul__ = lambda s, o: s._op("mul", o, True)  # noqa: E731
    __truediv__ = lambda s, o: s._op("div", o)  # noqa: E731
    __rtruediv__ = lambda s, o: s._op("div", o, True)  # noqa: E731
    __pow__ = lambda s, o: s._op("pow", o)  # noqa: E731
    __rpow__ = lambda s, o: s._op("pow", o, True)  # noqa: E731

    def __neg__(self):
        if self.negated is not None:  # −(−x) = x
            return self.negated
        out = Scalar(self.t.tape.record("neg", [self.t]))
        out.negated = self
        return out

    def __pos__(self):
        return self

    def __abs__(self):
        return Scalar(self.t.tape.record("abs", [self.t]))

    # comparisons read the value: the traced array's own comparison marks the trace value-dependent
    __lt__ = lambda s, o: bool(s.t < _unwrap(o))  # noqa: E731
    __le__ = lambda s, o: bool(s.t <= _unwrap(o))  # noqa: E731
    __gt__ = lambda s, o: bool(s.t > _unwrap(o))  # noqa: E731
    __ge__ = lambda s, o: bool(s.t >= _unwrap(o))  # noqa: E731
    __eq__ = lambda s, o: bool(s.t == _unwrap(o))  # noqa: E731
    __ne__ = lambda s, o: bool(s.t != _unwrap(o))  # noqa: E731
    __hash__ = None

    def __bool__(self) -> bool:
        self.t.tape.note_value_dependence("bool() of a traced scalar")
        return self.value != 0.0

    def __float__(self) -> float:  # (a first trace that meets it runs f again with math's replacements)
        raise _FloatConversion(f"{LEAVES} at {call_site()}{LEAVES_FIX}")

    __mod__ = lambda s, o: s._ufunc(np.remainder, o)  # noqa: E731
    __rmod__ = lambda s, o: s._ufunc(np.remainder, o, True)  # noqa: E731
    __floordiv__ = lambda s, o: s._ufunc(np.floor_divide, o)  # noqa: E731
    __rfloordiv__ = lambda s, o: s._ufunc(np.floor_divide, o, True)  # noqa: E731
    __divmod__ = lambda s, o: (s // o, s % o)  # noqa: E731
    __rdivmod__ = lambda s, o: (o // s, o % s)  # noqa: E731

    def _ufunc(self, ufunc: np.ufunc, other: Any, reverse: bool = False):
        if not isinstance(other, Scalar) and not _number(other):
            return NotImplemented
        return ufunc(other, self) if reverse else ufunc(self, other)

    # NumPy calls a ufunc's method on each element of an object array (np.exp(a) -> x.exp()) and
    # a function's method on a lone object (np.round(x, 1) -> x.round(1)): run the traced-array
    # rule on the 0-d tracer inside
    def __getattr__(self, name: str):
        fn = getattr(np, name, None) if not name.startswith("_") else None
        if not (isinstance(fn, np.ufunc) or name in _WRAPPED):  # e.g. hasattr(x, "dtype") stays False
            raise AttributeError(f"'Scalar' object has no attribute {name!r}")

        def method(*args, **kwargs):
            return _wrap(fn(self.t, *map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()}))
        return method

    def __array_function__(self, func, types, args, kwargs):
        # NumPy's own code for the rest, as without this method; the table's functions would
        # pass a lone object through unchanged (np.nan_to_num)
        own = _OBJECT_FUNCTIONS.get(func)
        return own(*args, **kwargs) if own is not None else func._implementation(*args, **kwargs)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            return NotImplemented
        if any(isinstance(x, np.ndarray) for x in inputs):  # element by element, folding as above
            return _elementwise(ufunc, inputs)
        if ufunc in _ELEMENTWISE:
            return _ELEMENTWISE[ufunc](*inputs)
        return _wrap(ufunc(*map(_unwrap, inputs)))


class ScalarArray(np.ndarray):
    """An object array of traced scalars and constants (what ``split`` hands to ``f``): ufuncs
    run element by element through :class:`Scalar`'s rules or on plain numbers, so constants
    mixed in (a zero row of a matrix product, say) work where NumPy's object loops would look
    for a ``.exp()`` method on a float. Results stay ``ScalarArray``."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs, **kwargs):
        out = kwargs.pop("out", None)
        if out is not None:  # x += y: x + y by the rules below, written into x's elements (as NumPy)
            result = self.__array_ufunc__(ufunc, method, *inputs, **kwargs)
            for target, r in zip(out, result if isinstance(result, tuple) else (result,)):
                target.view(np.ndarray)[...] = r
            return out[0] if len(out) == 1 else out
        plain = [x.view(np.ndarray) if isinstance(x, ScalarArray) else x for x in inputs]
        if method == "__call__" and not kwargs and ufunc.signature is None:
            return _elementwise(ufunc, plain)
        return _as_scalar_array(getattr(ufunc, method)(*plain, **kwargs))  # matmul, reductions

    def __array_function__(self, func, types, args, kwargs):  # np.concatenate, np.stack, …
        try:
            own = FUNCTIONS.get(func) or _OBJECT_FUNCTIONS.get(func, func)
            return _as_scalar_array(own(*_plain(args), **_plain(kwargs)))
        except (TypeError, UnsupportedOperationError) as e:  # compiled routines refuse object arrays
            if not ("dtype('O')" in str(e) or str(e).startswith("float()")):
                raise
            have = ", ".join(sorted("np.linalg." + f.__name__ for f in FUNCTIONS))
            raise UnsupportedOperationError(
                f"scalarize=True: {func.__module__}.{func.__name__} does not run on scalar-level arrays "
                f"(its compiled routine needs floats; scalar forms exist for {have}); "
                "trace without scalarize=True, or write it with elementwise operations") from e


def _plain(x: Any) -> Any:
    """``x`` with every :class:`ScalarArray` inside (lists, tuples, dicts) a plain ndarray view."""
    if isinstance(x, ScalarArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(y) for y in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _elementwise(ufunc: np.ufunc, inputs) -> Any:
    loop = np.frompyfunc(_ELEMENTWISE.get(ufunc, lambda *xs: _scalar_ufunc(ufunc, xs)), ufunc.nin, ufunc.nout)
    args = [np.asarray(x, dtype=object) if isinstance(x, Scalar) else _plain(x) for x in inputs]
    out = loop(*args)
    if _is_predicate(ufunc):  # x > 0 is a mask NumPy indexes with (x[x > 0]), not an object array
        return out.astype(bool) if isinstance(out, np.ndarray) else bool(out)
    return _as_scalar_array(out)


def _is_predicate(ufunc: np.ufunc) -> bool:
    """Whether ``ufunc`` answers floats with booleans (comparisons, isnan, signbit, …)."""
    return ufunc.nout == 1 and ("dd->?" in ufunc.types or "d->?" in ufunc.types)


def _scalar_ufunc(ufunc: np.ufunc, xs: tuple) -> Any:
    """``ufunc`` on one element of each operand: traced when a :class:`Scalar` is among them."""
    if any(isinstance(x, Scalar) for x in xs):
        return ufunc(*xs)  # Scalar.__array_ufunc__
    out = ufunc(*xs)
    return tuple(map(float, out)) if isinstance(out, tuple) else float(out)


def _as_scalar_array(x: Any) -> Any:
    if isinstance(x, tuple):  # (a named tuple, e.g. slogdet's, keeps its names)
        items = map(_as_scalar_array, x)
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, np.ndarray) and x.dtype == object and not isinstance(x, ScalarArray):
        return x.view(ScalarArray)
    return x


# functions NumPy calls as a method of a lone object (np.round(x) -> x.round(), np.sum(x) -> x.sum())
_WRAPPED = frozenset({"round", "around", "clip", "sum", "prod", "mean", "max", "min", "conjugate"})


def _unwrap(x: Any) -> Any:
    return x.t if isinstance(x, Scalar) else x


def _wrap(x: Any) -> Any:
    if isinstance(x, Tracer):
        return Scalar(x)
    if isinstance(x, tuple):
        return tuple(map(_wrap, x))
    return x


def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """np.nan_to_num of traced scalars: NumPy's returns an object array unchanged. Each element is
    kept or replaced by its value at the traced point, so the trace is value-dependent."""
    big = np.finfo(float).max
    fills = (nan, big if posinf is None else posinf, -big if neginf is None else neginf)

    def one(e):
        v = e.value if isinstance(e, Scalar) else float(e)
        if isinstance(e, Scalar):
            e.t.tape.note_value_dependence("np.nan_to_num of a traced scalar")
        if np.isfinite(v):
            return e
        return float(fills[0] if np.isnan(v) else fills[1] if v > 0 else fills[2])

    if isinstance(x, Scalar):
        return one(x)
    return _as_scalar_array(np.frompyfunc(one, 1, 1)(np.asarray(x, dtype=object)))


# functions whose NumPy code would return scalar-level values unchanged: written element by element
_OBJECT_FUNCTIONS = {np.nan_to_num: _nan_to_num}

# ufuncs that are Python operators: applied through the operators, so constants fold
_ELEMENTWISE = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
                np.true_divide: operator.truediv, np.power: operator.pow, np.negative: operator.neg,
                np.positive: operator.pos, np.absolute: abs}


_KEEP = object()


def _fold_add(x: Scalar, c: float, reverse: bool):
    return x if c == 0.0 else _KEEP


def _fold_sub(x: Scalar, c: float, reverse: bool):
    if c == 0.0:
        return -x if reverse else x
    return _KEEP


def _fold_mul(x: Scalar, c: float, reverse: bool):
    return 0.0 if c == 0.0 else x if c == 1.0 else -x if c == -1.0 else _KEEP


def _fold_div(x: Scalar, c: float, reverse: bool):
    if reverse:
        return 0.0 if c == 0.0 else _KEEP
    return x if c == 1.0 else -x if c == -1.0 else _KEEP


def _fold_pow(x: Scalar, c: float, reverse: bool):
    if reverse:
        return _KEEP
    if c == 2.0:
        return Scalar(x.t.tape.record("square", [x.t]))
    return x if c == 1.0 else 1.0 if c == 0.0 else _KEEP


_FOLD = {"add": _fold_add, "sub": _fold_sub, "mul": _fold_mul, "div": _fold_div, "pow": _fold_pow}


def split(tape: Tape, name: str, value: np.ndarray) -> Any:
    """The argument ``name`` as traced scalar inputs ``name[i][j]`` (an object array; a 0-d
    argument is one :class:`Scalar` named ``name``)."""
    if value.ndim == 0:
        return Scalar(tape.input(name, value))
    out = np.empty(value.shape, dtype=object)
    for idx in np.ndindex(value.shape):
        out[idx] = Scalar(tape.input(element_name(name, idx), value[idx]))
    return out.view(ScalarArray)


def element_name(name: str, index: tuple[int, ...]) -> str:
    """The input vertex of one element of a scalarized argument: ``A[1][2]`` (``name`` if 0-d).

    >>> element_name("A", (1, 2))
    'A[1][2]'
    """
    return name + "".join(f"[{i}]" for i in index)


#: a traced scalar made a float: by ``float(x)``, or by NumPy writing it into a float array
LEAVES = "float() of a traced scalar, or a traced scalar written into a plain float array"
LEAVES_FIX = (": the graph cannot follow a value that leaves the trace. Under scalarize=True, arrays that "
              "hold traced scalars are object arrays: build them from the scalars (np.array([...]), np.stack, "
              "np.concatenate) rather than writing into np.zeros(...) (y[i] = x, np.add.at), or trace without "
              "scalarize=True, which takes such writes")


def refusal(err: BaseException) -> UnsupportedOperationError:
    """The error for NumPy code that fails on arrays of traced scalars (``err``: how it failed),
    where the same code traces at array level: a function that does not run element by element
    on object arrays, or an index a lone scalar does not take. Where the failure was a traced
    scalar made a float inside NumPy (``np.add.at`` on a float array: a ``SystemError``), that."""
    inner = err
    while inner is not None and not (isinstance(inner, UnsupportedOperationError) and str(inner).startswith(LEAVES)):
        inner = inner.__cause__ or inner.__context__
    if inner is not None:
        return UnsupportedOperationError(str(inner))
    return UnsupportedOperationError(
        f"scalarize=True: running f on scalar-level arrays (NumPy object arrays of traced scalars) "
        f"failed with {type(err).__name__}: {str(err)[:300]}; this NumPy code does not run element by "
        "element there. Trace without scalarize=True, or write it with elementwise operations")


def join(result: Any) -> list:
    """The scalars of one returned value, in C order: :class:`Tracer` s for traced ones, floats
    for constants."""
    if isinstance(result, Scalar):
        return [result.t]
    if isinstance(result, Tracer):
        raise UnsupportedOperationError(
            "scalarize=True: the function returned an array-level traced value; build outputs "
            "from the scalar arguments (e.g. np.stack of scalars or an object array)")
    arr = np.asarray(result, dtype=object) if isinstance(result, (list, tuple, np.ndarray)) else None
    if arr is None:
        if not _number(result):
            raise TypeError(f"a scalarized function returned {type(result).__name__}, not numbers")
        return [float(result)]
    out = [x.t if isinstance(x, Scalar) else x for x in arr.reshape(-1)]
    odd = next((x for x in out if not isinstance(x, Tracer) and not _number(x)), None)
    if odd is not None:  # (np.pad of a lone scalar nests an array in an object array)
        raise UnsupportedOperationError(
            f"scalarize=True: the function's result holds {type(odd).__name__} among its scalars; return "
            "traced scalars and numbers (an object array, a list or np.stack of them)")
    return out
