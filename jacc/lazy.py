"""Record the NumPy work of an executed plan as a straight-line program.

The structured-Jacobian algebra and the op table's partial rules are written against NumPy. Run
them once on :class:`Lazy` arrays — stand-ins that carry a concrete value and record every NumPy
call made on them (``__array_function__``/``__array_ufunc__``, operators, a few methods) — and
the calls that depend on the arguments are what a plan does with values; everything else
(labels, pairings, index arrays) was structure and has been computed once. :mod:`jacc.program`
turns the record into generated source.

Any use of a value that the record cannot express (``bool(x)``, ``float(x)``, ``np.array(x)``,
in-place writes) raises :class:`LowerError`, so a plan that cannot be recorded faithfully is
never recorded at all: its caller falls back to the interpreted executor.

>>> import numpy as np
>>> rec = Recorder()
>>> x = rec.leaf(np.arange(3.0))
>>> y = np.sin(x) * 2.0
>>> [s.fn.__name__ for s in rec.statements if s.fn]
['sin', 'multiply']
>>> bool(y.value[1] == 2 * np.sin(1.0))
True
"""

from __future__ import annotations

import functools
import operator
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


class LowerError(RuntimeError):
    """A computation that a straight-line program cannot record faithfully."""


@dataclass(frozen=True)
class Ref:
    """A reference to a recorded value (statement ``id``), inside a statement's arguments."""

    id: int


@dataclass
class Statement:
    """``out = fn(*args, **kwargs)``; ``method`` names a method called on ``args[0]`` instead;
    ``item`` picks element ``item`` of a tuple result stored at ``args[0]``."""

    id: int
    fn: Callable | None
    args: tuple
    kwargs: dict
    method: str | None = None
    item: int | None = None

    @functools.cached_property
    def refs(self) -> list[int]:
        """The ids of the statements this one reads, in order (statements are never changed in
        place: a rewrite makes a new one)."""
        return refs_in((self.args, self.kwargs))


# Shape queries answer from the concrete value; they are structure, not work.
_QUERIES = {np.ndim, np.shape, np.size, np.result_type}


class Lazy(NDArrayOperatorsMixin):
    """An array stand-in: a concrete value plus its place in a :class:`Recorder`."""

    __slots__ = ("rec", "id", "value", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, rec: "Recorder", id: int, value: Any):
        self.rec, self.id, self.value = rec, id, value

    # structure: answered from the value
    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    size = property(lambda self: np.size(self.value))
    dtype = property(lambda self: np.result_type(self.value))

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Lazy(#{self.id}, shape={self.shape}, dtype={self.dtype})"

    # work: recorded
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or "out" in kwargs:
            raise LowerError(f"cannot record {ufunc.__name__}.{method} (out={kwargs.get('out')!r})")
        return self.rec.call(ufunc, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func in _QUERIES:
            return func(*_concrete(args), **_concrete(kwargs))
        return self.rec.call(func, args, kwargs)

    def _method(self, name: str, *args, **kwargs):
        return self.rec.call(None, (self,) + args, kwargs, method=name)

    def reshape(self, *shape, **kw):
        return self._method("reshape", *shape, **kw)

    def transpose(self, *axes):
        return self._method("transpose", *axes)

    def astype(self, dtype, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return self._method("astype", np.dtype(dtype))

    def copy(self):
        return self._method("copy")

    def ravel(self):
        return self._method("ravel")

    @property
    def T(self):
        return self.rec.call(np.transpose, (self,), {})

    def __getitem__(self, index):
        return self.rec.call(None, (self, index), {}, method="__getitem__")

    # values a program cannot see at lowering time
    def _refuse(self, *_a, **_k):
        raise LowerError("a value was inspected while recording a plan (control flow on data)")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __iter__ = _refuse
    __setitem__ = item = tolist = _refuse

    def __array__(self, *a, **k):
        raise LowerError("a recorded value was converted to a plain array (np.asarray/np.array)")


class Pinnable(Lazy):
    """A graph constant's stand-in whose value a rule may read — positions a scatter writes at,
    a count: reading it *pins* the constant (``pin()``), compiling its value in, so the program
    then serves a graph only while that constant holds this value. Its other uses are recorded
    as an input's, so a change of any other constant still needs no new program."""

    __slots__ = ("pin",)

    def _read(self):
        self.pin()
        return self.value

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._read())
        return a if dtype is None else a.astype(dtype, copy=False)

    def __bool__(self):
        return bool(self._read())

    def __float__(self):
        return float(self._read())

    def __int__(self):
        return int(self._read())

    def __index__(self):
        return operator.index(self._read())

    def __complex__(self):
        return complex(self._read())

    def __iter__(self):
        return iter(self._read())

    def item(self, *args):
        return np.asarray(self._read()).item(*args)

    def tolist(self):
        return np.asarray(self._read()).tolist()


def _map_lazy(x: Any, fn: Callable[["Lazy"], Any]) -> Any:
    """``x`` with ``fn`` applied to every :class:`Lazy` inside it (through tuples, lists, dicts)."""
    if isinstance(x, Lazy):
        return fn(x)
    if isinstance(x, (tuple, list)):
        # leaves inline: an einsum's subscript lists are most of what lowering walks
        return type(x)([fn(v) if isinstance(v, Lazy) else _map_lazy(v, fn) if isinstance(v, _NESTS) else v
                        for v in x])
    if isinstance(x, dict):
        return {k: _map_lazy(v, fn) for k, v in x.items()}
    return x


_NESTS = (tuple, list, dict)


def _concrete(x: Any) -> Any:
    """``x`` with every :class:`Lazy` replaced by its value."""
    return _map_lazy(x, _value_of)


def _value_of(v: "Lazy") -> Any:
    return v.value


def _refs(x: Any) -> Any:
    """``x`` with every :class:`Lazy` replaced by a :class:`Ref` to it."""
    return _map_lazy(x, _ref_to)


def _ref_to(v: "Lazy") -> Ref:
    return Ref(v.id)


def refs_in(x: Any) -> list[int]:
    """The ids of the :class:`Ref` values inside ``x``, in order."""
    return [r.id for r in collect(x, Ref)]


def collect(x: Any, kind: type | tuple) -> list:
    """Every object of type ``kind`` inside ``x`` (through tuples, lists and dict values), in order."""
    if isinstance(x, kind):
        return [x]
    out: list = []
    _collect_into(x, kind, out)
    return out


def _collect_into(x: Any, kind: type | tuple, out: list) -> None:
    for v in x.values() if isinstance(x, dict) else x if isinstance(x, (tuple, list)) else ():
        if isinstance(v, kind):
            out.append(v)
        elif isinstance(v, _NESTS):
            _collect_into(v, kind, out)


_PLAIN = frozenset({int, float, str, bool, type(None)})  # hashable, compared by value


def _key(x: Any) -> Any:
    """A hashable key for common-subexpression detection (arrays by identity)."""
    t = type(x)
    if t in _PLAIN:
        return (t.__name__, x)
    if t is Ref:
        return ("Ref", x.id)
    if isinstance(x, (tuple, list)):
        return (t.__name__,) + tuple([(type(v).__name__, v) if type(v) in _PLAIN else _key(v) for v in x])
    if isinstance(x, dict):
        return ("dict",) + tuple(sorted((k, _key(v)) for k, v in x.items()))
    if isinstance(x, (np.ndarray, np.generic)):
        return ("array", id(x))
    if isinstance(x, slice):
        return ("slice", x.start, x.stop, x.step)
    try:
        hash(x)
    except TypeError:
        return ("object", id(x))
    return (type(x).__name__, x)


#: Results of at most this many bytes are kept for reuse by identical later calls while lowering,
#: up to SMALL_HELD bytes in all (larger ones are held weakly: lowering a big plan must not hold
#: every intermediate at once)
SMALL_VALUE = 8192
SMALL_HELD = 16 << 20


class Recorder:
    """The statements recorded so far; leaves are the program's inputs.

    Identical calls on identical arguments are recorded once (common subexpressions), so e.g. an
    inverse needed by two partial rules is computed once per call."""

    def __init__(self):
        self.statements: list[Statement] = []
        self.shapes: dict[int, tuple] = {}  # statement id -> shape of its value
        # Results by call key, weakly: a value the algebra has dropped is freed (lowering a big
        # plan must not hold every intermediate at once); its constant arguments, whose id() is
        # part of the key, stay alive with the entry.
        self._seen: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._keep: dict = {}
        self._strong: dict = {}  # linalg and tuple results (inv, slogdet, eigh, …), small values: kept
        self._held_bytes = 0  # of the small values kept

    def _new(self, value: Any, kind: type = Lazy) -> Lazy:
        x = kind(self, len(self.statements), value)
        self.shapes[x.id] = np.shape(value) if not isinstance(value, tuple) else ()
        return x

    def leaf(self, value: Any, pin: Callable[[], None] | None = None) -> Lazy:
        """A new program input with this (concrete) value; with ``pin``, a :class:`Pinnable` one
        that calls ``pin()`` when a rule reads its value."""
        x = self._new(value, Lazy if pin is None else Pinnable)
        if pin is not None:
            x.pin = pin
        self.statements.append(Statement(x.id, None, (), {}))
        return x

    def call(self, fn: Callable | None, args: tuple, kwargs: dict, method: str | None = None):
        rargs, rkwargs = _refs(args), _refs(kwargs)
        key = (fn, method, _key(rargs), _key(rkwargs))
        hit = self._strong.get(key)
        if hit is None:
            hit = self._seen.get(key)
        if hit is not None:
            return hit
        cargs, ckw = _concrete(args), _concrete(kwargs)
        value = getattr(cargs[0], method)(*cargs[1:], **ckw) if method else fn(*cargs, **ckw)
        if isinstance(value, tuple):  # (sign, logdet), eigh's pair, …: a tuple, then its items
            holder = self._record(fn, rargs, rkwargs, method, value)
            out: Any = tuple(self._item(holder.id, i, v) for i, v in enumerate(value))
            if hasattr(value, "_fields"):
                out = type(value)(*out)
        elif isinstance(value, (np.ndarray, np.generic)):
            out = self._record(fn, rargs, rkwargs, method, value)
        else:
            raise LowerError(f"{getattr(fn, '__name__', method)} returned {type(value).__name__}, not an array")
        if isinstance(out, Lazy) and not _costly(fn) and not self._small(value, method == "astype"):
            self._seen[key] = out
        else:  # factorisations, and small values, are worth keeping for a later identical call: held strongly
            self._strong[key] = out
        self._keep[key] = collect((args, kwargs), (np.ndarray, np.generic))
        return out

    def _small(self, value: Any, conversion: bool = False) -> bool:
        """Whether ``value`` is small enough to hold strongly for reuse (``np.sign(x)`` needed by
        three partial rules is then computed once), within :data:`SMALL_HELD` bytes in all; a
        ``conversion`` (a mask's ``astype``, which every rule reading the mask asks for) of any size."""
        n = getattr(value, "nbytes", 0)
        if (n > SMALL_VALUE and not conversion) or self._held_bytes + n > SMALL_HELD:
            return False
        self._held_bytes += n
        return True

    def _record(self, fn, rargs, rkwargs, method, value) -> Lazy:
        x = self._new(value)
        self.statements.append(Statement(x.id, fn, rargs, rkwargs, method))
        return x

    def _item(self, holder: int, i: int, value: Any) -> Lazy:
        x = self._new(value)
        self.statements.append(Statement(x.id, None, (Ref(holder),), {}, item=i))
        return x


def _costly(fn: Callable | None) -> bool:
    """A linear-algebra routine: O(n³) work on O(n²) data, so sharing its result pays."""
    return "linalg" in (getattr(fn, "__module__", None) or "")


def recordable(fn: Callable) -> Callable:
    """Let a pure NumPy helper be recorded as one statement when an argument is :class:`Lazy`
    (for the algebra's few array writes, which a record cannot express as calls)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return apply(fn, *args, **kwargs)

    return wrapper


def portable(fn: Callable) -> Callable:
    """``fn(..., xp=np)``, written for any array namespace ``xp``, recorded as one statement on
    :class:`Lazy` arguments; the jax and torch backends run it in their own namespace."""
    fn.portable = fn
    return recordable(fn)


def apply(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, recorded when an argument is :class:`Lazy` (for NumPy functions
    that do not dispatch on their argument, e.g. ``np.ascontiguousarray``)."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, Lazy):
            return a.rec.call(fn, args, kwargs)
    return fn(*args, **kwargs)


def asarray(x: Any, dtype: Any = None):
    """``np.asarray(x, dtype)`` that keeps a :class:`Lazy` recorded."""
    if isinstance(x, Lazy):
        return x if dtype is None else x.astype(dtype, copy=False)
    return np.asarray(x, dtype=dtype)
