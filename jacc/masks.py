"""Comparisons of traced values, kept as masks that the trace can record.

``x > 0`` on a traced ``x`` gives a :class:`Mask`: NumPy's boolean array at the traced point that
also remembers how it was made. Where a mask selects values — ``np.where(x > 0, x, 0.0)``,
``np.select``, ``x * (x > 0)``, ``y[y < 0] = 0.0``, ``(x > a) & (x < b)`` — the comparison is
recorded as a vertex without edges (its derivative is zero wherever it is defined), so the trace
holds at every point: a compiled Jacobian recomputes the mask at each call, and ``jacobian`` need
not run ``f`` again (``y[m] = g(x[m])`` of elementwise ``g`` too: :mod:`jacc.lanes`). Anything
that reads the mask's entries as Python values — ``if m:``, the size of ``x[m]``, ``m.sum()``,
``np.nonzero(m)`` — reads them at the traced point
and marks the trace value-dependent, as a comparison always did before; only the count or mean of
a mask of data alone (``(y != -100).sum()`` of labels passed as data) is recorded instead, its
integer sum of the recorded mask.

The recorded vertex holds 1.0 where the mask is true and 0.0 elsewhere, so graphs stay float and
every backend (NumPy, JAX, the scalar code and its C) reads the comparison from the same formula
in :data:`jacc.ops.BINARY`. A mask records nothing until it is used that way: a comparison that
only steers Python (``while err > tol``) leaves the graph as it was.

>>> import numpy as np, jacc
>>> g = jacc.trace(lambda x: np.where(x > 0, x ** 2, np.sin(x)), np.array([-1.0, 2.0]))
>>> [g.op(v) for v in g.topological_order()]
['input', 'square', 'sin', 'greater', 'where']
>>> g.meta.get("value_dependent") is None
True
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .ops import OPS
from .trace import Tracer, _Num, _private, _ReadOnUse, array_result, implements_ufunc, note_hidden_nonfinite, warn_tie

__all__ = ["Mask", "compare", "data_mask"]

#: comparison → (recorded op, symbol); the operator module's functions are Tracer's operators
COMPARISONS = {
    np.less: ("less", "<"), np.less_equal: ("less_equal", "<="), np.greater: ("greater", ">"),
    np.greater_equal: ("greater_equal", ">="), np.equal: ("equal", "=="), np.not_equal: ("not_equal", "!="),
    operator.lt: ("less", "<"), operator.le: ("less_equal", "<="), operator.gt: ("greater", ">"),
    operator.ge: ("greater_equal", ">="), operator.eq: ("equal", "=="), operator.ne: ("not_equal", "!="),
}
#: logical ufuncs → recorded op (on booleans, ``&``, ``|``, ``^`` and ``~`` are these)
LOGIC = {"logical_and": "logical_and", "bitwise_and": "logical_and", "logical_or": "logical_or",
         "bitwise_or": "logical_or", "logical_xor": "logical_xor", "bitwise_xor": "logical_xor",
         "logical_not": "logical_not", "invert": "logical_not",
         # predicates of values (np.where(np.isnan(x), 0.0, x))
         "isnan": "isnan", "isfinite": "isfinite", "isinf": "isinf"}
_SYMBOL = {op: sym for op, sym in COMPARISONS.values()}
_MIRRORED = {"less": "greater", "less_equal": "greater_equal", "greater": "less", "greater_equal": "less_equal",
             "equal": "equal", "not_equal": "not_equal"}
#: arithmetic ufuncs that NumPy computes on booleans alone as logic: (x > 0) + (x > 1) is their OR,
#: a boolean (read as its 0.0/1.0 vertices, the sum was 2 where both hold)
BOOLEAN_ARITHMETIC = {"add": "logical_or", "maximum": "logical_or", "fmax": "logical_or",
                      "multiply": "logical_and", "minimum": "logical_and", "fmin": "logical_and"}


class Mask(_ReadOnUse, NDArrayOperatorsMixin):
    """A boolean array computed from traced values (see the module's docstring).

    >>> import numpy as np, jacc
    >>> J = jacc.jacobian(lambda x: x * (x > 1.0))
    >>> J(np.array([0.5, 2.0])).diagonal().tolist(), J(np.array([3.0, 0.0])).diagonal().tolist()
    ([0.0, 1.0], [1.0, 0.0])
    """

    __slots__ = ("tape", "op", "args", "value", "_vertex")
    __array_priority__ = 1001
    __hash__ = None  # as an ndarray's

    def __init__(self, tape, op: str, args: list, value: np.ndarray):
        self.tape, self.op, self.args, self.value, self._vertex = tape, op, args, value, None

    def __repr__(self) -> str:
        return f"Mask({self.op}, {self.value!r})"

    def vertex(self) -> Tracer:
        """The recorded mask (1.0 where true, 0.0 elsewhere), recorded on first use; each call
        gives an array object of its own, so a caller changing it in place changes no other."""
        if self._vertex is None:
            args = [a.vertex() if type(a) is Mask else a for a in self.args]
            self._vertex = self.tape.record(self.op, args)
        t = self._vertex
        return Tracer(t.tape, t.name, t.value)

    def concrete(self) -> np.ndarray:
        """The entries at the traced point, as a new array; the trace becomes value-dependent."""
        sym = _SYMBOL.get(self.op)
        self.tape.note_value_dependence(f"comparison '{sym}'" if sym else f"a mask's entries ({self.op})" if
                                        self.op.isidentifier() else f"the entries of {self.op}")
        if _tied(self):
            warn_tie("a comparison '==' or '!=' read as a value")
        return self.value.copy()

    # -- reading the entries (jacc.trace._ReadOnUse): NumPy's behaviour on the values ------------
    def __getitem__(self, index):
        if _holds_mask(index):
            return self.concrete()[_plain(index)]
        return self._moved(lambda a: a[index])

    # -- rearranging a mask (m.T, m[:, None], m.reshape(…), np.stack([m1, m2])): a mask still --
    def _moved(self, fn) -> "Mask":
        """``fn`` (which only moves entries) applied to the recorded mask and to its entries alike."""
        return _derived(fn(self.vertex()), fn(self.value))

    T = property(lambda self: self._moved(lambda a: a.T))

    def reshape(self, *shape, **kw):
        return self._moved(lambda a: a.reshape(*shape, **kw))

    def transpose(self, *axes):
        return self._moved(lambda a: a.transpose(*axes))

    def ravel(self, *args):
        return self._moved(lambda a: a.ravel(*args))

    def squeeze(self, *args, **kw):
        return self._moved(lambda a: a.squeeze(*args, **kw))

    def copy(self, *args):
        return self._moved(lambda a: a.copy(*args))

    flatten = ravel

    def sum(self, *args, **kwargs):
        out = _COUNT(self, *args, **kwargs)  # (held directly: np.sum may be swapped during a trace)
        return self.concrete().sum(*args, **kwargs) if out is NotImplemented else out

    def mean(self, *args, **kwargs):
        out = _MEAN(self, *args, **kwargs)
        return self.concrete().mean(*args, **kwargs) if out is NotImplemented else out

    def astype(self, dtype, *args, **kwargs):
        """As float64, the recorded mask itself (no entries read); otherwise NumPy's ``astype``."""
        if not args and not kwargs and np.dtype(dtype) == np.float64:
            return self.vertex()
        return self.concrete().astype(dtype, *args, **kwargs)

    # -- NumPy's protocols ----------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            op = LOGIC.get(ufunc.__name__) or COMPARISONS.get(ufunc, (None,))[0]
            if op is not None and all(_operand(a, self.tape) for a in inputs) and (
                    not ufunc.__name__.startswith("bitwise") or all(type(a) is Mask or _boolean(a) for a in inputs)):
                return combine(op, list(inputs))  # (mask & 2 is bitwise in NumPy: 0, not a logical and)
        if method == "__call__" and not kwargs and all(type(a) is Mask or _boolean(a) for a in inputs):
            op = BOOLEAN_ARITHMETIC.get(ufunc.__name__)
            if op is not None:
                return combine(op, list(inputs))
            if ufunc.__name__ == "subtract":  # (NumPy's words)
                raise TypeError("numpy boolean subtract, the `-` operator, is not supported, use the bitwise_xor, "
                                "the `^` operator, or the logical_xor function instead.")
        if any(isinstance(a, Tracer) for a in inputs) and "out" not in kwargs:
            return NotImplemented  # the traced array's ufunc, which reads a mask as its 0.0/1.0 vertex
        if method == "__call__" and not kwargs and ufunc.nout == 1 and all(
                type(a) is Mask or _float(a) for a in inputs):
            # with floats alone (2.0 * (x > 0) - 1.0): where NumPy's result is float64, the recorded masks'
            # 0.0/1.0 give it; of masks alone it may not be (m @ n is boolean, m // n integer, np.exp(m)
            # float16), and then the entries are read
            with np.errstate(all="ignore"):
                kind = np.result_type(ufunc(*[_value(a) for a in inputs]))
            if kind == np.float64:
                return ufunc(*[a.vertex() if type(a) is Mask else a for a in inputs])
        return getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is not None:
            out = handler(*args, **kwargs)
            if out is not NotImplemented:
                return out
        if any(issubclass(t, Tracer) for t in types):
            return NotImplemented  # the traced array's handler
        return func(*_plain(args), **_plain(kwargs))


def _derived(t: Tracer, value: np.ndarray, what: str = "rearranged") -> Mask:
    """A mask whose recorded 0.0/1.0 vertex is ``t`` (already recorded) and entries ``value``;
    ``what`` names it where its entries are read (``Mask.concrete``)."""
    m = Mask(t.tape, what, [], np.asarray(value))
    m._vertex = t
    return m


def data_mask(tape, name: str, value: np.ndarray) -> Mask:
    """A boolean array passed as data (:class:`jacc.api._DataArgs`): the input ``name`` holding
    1.0 where it is true, which ``f`` gets as a mask of data, so that NumPy's boolean semantics
    hold (``m1 + m2`` is their OR, ``~m`` their negation) and ``y * m`` keeps labels integer."""
    t = tape.input(name, value)
    tape.bits.add(name)  # (and Tape.data, as every data argument's input: jacc.trace.record_call)
    return _derived(t, _private(value), f"the boolean data argument {name!r}")


def _plain(x: Any) -> Any:
    """``x`` with every mask in it (in lists, tuples and dicts too) read as its entries."""
    if type(x) is Mask:
        return x.concrete()
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(y) for y in x) if any(_holds_mask(y) for y in x) else x
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _holds_mask(x: Any) -> bool:
    return type(x) is Mask or (isinstance(x, (list, tuple)) and any(_holds_mask(y) for y in x))


def _operand(x: Any, tape) -> bool:
    """Whether a comparison may record ``x``: a traced array or mask of ``tape``, or a real number
    or array of them (not text, None or objects, which NumPy compares otherwise)."""
    if isinstance(x, (Tracer, Mask)):
        return x.tape is tape and not tape.paused
    if isinstance(x, np.ndarray | np.generic):
        return x.dtype.kind in "biuf"
    return isinstance(x, numbers.Real)


def _boolean(x: Any) -> bool:
    """A Python or NumPy boolean, or a boolean array."""
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, np.ndarray) and x.dtype == bool)


def _float(x: Any) -> bool:
    """A Python float or a float64 array or scalar: with a mask in an op, NumPy's result is float64."""
    return type(x) is float or (isinstance(x, np.ndarray | np.float64) and x.dtype == np.float64)


def _value(x: Any) -> Any:
    return x.value if isinstance(x, (Tracer, Mask)) else x


def _snapshot(x: Any) -> Any:
    """``x`` as it is now: a traced array may change in place (``x[0] = …``) before the mask is
    recorded, and a constant may be changed by the caller."""
    if type(x) is _Num:
        return _Num(x.tape, x.name, x.num)
    if isinstance(x, Tracer):
        return Tracer(x.tape, x.name, x.value)
    return x if type(x) is Mask or isinstance(x, numbers.Real) else _private(x)


def _tied(mask: Mask) -> bool:
    """Whether ``mask`` holds an equality test (``==``, ``!=``) of a traced value that is exactly
    equal to what it is compared with at the traced point (``x != x``, a NaN test, is no tie)."""
    if mask.op in ("equal", "not_equal"):
        a, b = mask.args
        # (data passed to f, labels: no derivative flows from them, so a tie of theirs drops none)
        traced = [x for x in (a, b) if isinstance(x, Tracer) and x.name not in x.tape.data]
        if not traced or (len(traced) == 2 and a.name == b.name):
            return False
        equal = np.equal(_value(a), _value(b))
        if len(traced) == 2:  # an entry compared with itself (x == x[..., :1] at x[0]) is no tie
            ea, eb = a.tape.entries_of(a.name), a.tape.entries_of(b.name)
            if ea[0] == eb[0]:
                equal = equal & np.not_equal(ea[1], eb[1])
        return bool(np.any(equal))
    return any(_tied(a) for a in mask.args if type(a) is Mask)


def combine(op: str, args: list) -> Mask:
    """The mask ``op(*args)`` (a comparison or a logical op) over traced arrays, masks and constants."""
    tape = next(a.tape for a in args if isinstance(a, (Tracer, Mask)))
    value = np.asarray(OPS[op].evaluate([np.asarray(_value(a)) for a in args], {})) != 0
    return Mask(tape, op, [_snapshot(a) for a in args], value)


def compare(a: Any, b: Any, fn) -> Any:
    """``fn(a, b)`` for a comparison ``fn`` with a traced operand: a :class:`Mask` where both are
    numbers or traced, else NumPy's result on the values (the trace then depends on them)."""
    tape = (a if isinstance(a, (Tracer, Mask)) else b).tape
    if _operand(a, tape) and _operand(b, tape):
        op, _ = COMPARISONS[fn]
        value = np.asarray(fn(_value(a), _value(b)))
        if isinstance(a, Tracer) and isinstance(b, Tracer) and b.name < a.name:
            # one order for x > s and s < x: Python calls a replayed scalar's (jacc.trace._Num, a
            # subclass) reflected comparison first, which would record a step the first trace did not
            op, a, b = _MIRRORED[op], b, a
        return Mask(tape, op, [_snapshot(a), _snapshot(b)], value)
    tape.note_value_dependence(f"comparison '{COMPARISONS[fn][1]}'")
    return fn(_value(a), _value(b))


def _ufunc(name: str):
    op = LOGIC.get(name)

    def handler(tape, *xs):
        if op is None:
            return compare(*xs, getattr(np, name))
        if all(_operand(x, tape) for x in xs):
            return combine(op, list(xs))
        tape.note_value_dependence(f"numpy.{name}")
        return getattr(np, name)(*[_value(x) for x in xs])
    return handler


for _name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
              "logical_and", "logical_or", "logical_xor", "logical_not", "isnan", "isfinite", "isinf"):
    implements_ufunc(_name)(_ufunc(_name))


# -- functions that select with a mask ------------------------------------------------------------


def _where(condition, x=None, y=None, /):
    if type(condition) is not Mask or x is None or y is None or _holds_mask([x, y]):
        return NotImplemented
    if not (isinstance(x, Tracer) or isinstance(y, Tracer) or (_float(x) and _float(y))):
        return NotImplemented  # other constants: NumPy's dtype (np.where(m, 1, 0) is an int array)
    note_hidden_nonfinite(condition.value, x, y)
    return array_result(condition.tape.record("where", [condition.vertex(), x, y]), x, y)


def _select(condlist, choicelist, default=0):
    if not any(type(c) is Mask for c in condlist) or len(condlist) != len(choicelist) or not condlist:
        return NotImplemented
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):  # the first true condition wins
        out = np.where(cond, choice, out)
    shape = np.broadcast_shapes(*[np.shape(c) for c in list(condlist) + list(choicelist)], np.shape(default))
    return out if np.shape(out) == shape else np.broadcast_to(out, shape)


def _moving(func):
    """A NumPy function that only moves entries (np.stack, np.reshape, …), applied to masks: on
    their recorded vertices and on their entries alike, where every array argument is a mask."""
    def handler(*args, **kwargs):
        arrays = [a for a in _leaves(args) if isinstance(a, (np.ndarray, Tracer, Mask))]
        if not arrays or any(type(a) is not Mask for a in arrays):
            return NotImplemented
        made = func(*_swap(args, lambda m: m.vertex()), **kwargs)
        return _derived(made, func(*_swap(args, lambda m: m.value), **kwargs))
    return handler


def _leaves(x: Any) -> list:
    return [y for v in x for y in _leaves(v)] if isinstance(x, (list, tuple)) else [x]


def _swap(x: Any, fn) -> Any:
    if type(x) is Mask:
        return fn(x)
    return type(x)(_swap(v, fn) for v in x) if isinstance(x, (list, tuple)) else x


def _data_only(m: Mask) -> bool:
    """Whether mask ``m`` is computed from data arguments alone (``y != -100`` of labels passed as
    data, :class:`jacc.api._DataArgs`): no derivative reads its entries."""
    tape = m.tape
    return bool(tape.data) and not tape.paused and all(
        _data_only(a) if type(a) is Mask else (not isinstance(a, Tracer) or a.name in tape.data) for a in m.args) \
        and (m._vertex is None or m._vertex.name in tape.data)


def _counted(name: str):
    """``m.sum()``, ``m.mean()`` and ``np.count_nonzero(m)`` of a mask of data alone: the recorded
    mask's sum or mean, a value the program computes at every call (no derivative is lost, so the
    trace needs not read the entries: ``loss.sum() / (y != -100).sum()``, an ignore-index mean,
    made every call trace ``f``); of any other mask, NumPy's on its entries at the traced point."""
    def count(m, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if type(m) is not Mask or not _data_only(m) or dtype is not None or out is not None or kwargs:
            return NotImplemented
        r = getattr(m.vertex(), "mean" if name == "mean" else "sum")(axis=axis, keepdims=keepdims)
        if name != "mean":  # (NumPy's count is an integer: Tape.ints bounds it by the mask's size)
            m.tape.ints[r.name] = float(max(m.value.size, 1))
        return r
    return count


_COUNT, _MEAN = _counted("sum"), _counted("mean")

_FUNCTIONS = {np.where: _where, np.select: _select,
              np.sum: _COUNT, np.mean: _MEAN, np.count_nonzero: _counted("count_nonzero"),
              **{f: _moving(f) for f in (np.reshape, np.transpose, np.ravel, np.squeeze, np.expand_dims,
                                         np.broadcast_to, np.stack, np.concatenate, np.copy, np.moveaxis,
                                         np.swapaxes, np.atleast_1d, np.atleast_2d)},
              # questions of shape read no entries
              np.shape: lambda a: np.shape(_value(a)), np.ndim: lambda a: np.ndim(_value(a)),
              np.size: lambda a, axis=None: np.size(_value(a), axis)}

