"""Guards: what a call must find unchanged to skip running ``f`` — values by value, and the globals
and closure cells that ``f`` reads.

``jacobian(retrace=False)`` compares the arguments it does not differentiate with the traced ones
(:func:`snapshot`, :func:`same`). By default ``jacobian`` runs ``f`` on every call, so that a call
sees the values of that call; :func:`watch` and :func:`guards_for` find when that run cannot be
observed, so the traced-once program may stand in for it:

- while ``f`` ran, every Python function it (or the helpers it called) executed was user code
  checked by its bytecode — no stores to globals, attributes or outer cells — or NumPy's and
  jacc's own, and every C function called from user code was a pure one (``len``, ufuncs, NumPy,
  ``math``, methods of arrays and plain containers: not ``print``, ``time``, ``np.random``, files);
- every global and closure cell the user code (and standard-library code it called) reads holds
  plain data (arrays, numbers, strings and containers of them, compared by value on each call) or
  a module, function or class that is compared by identity (functions' own cells and defaults
  guarded in turn).

:class:`Guards` are then checked on each call (``hold()``); the caller confirms on the next traced
call that running ``f`` again changes nothing it reads and gives the same trace, before it stops
running ``f``.

>>> import numpy as np
>>> scale = np.ones(2)
>>> f = lambda x: np.sin(x) * scale
>>> with watch(f) as w:
...     _ = f(np.zeros(2))
>>> g = guards_for(f, w)
>>> g.hold(), sorted(g.names)
(True, ['np', 'scale'])
>>> scale[0] = 3.0
>>> g.hold()
False
>>> with watch() as w:
...     print("side effect")
side effect
>>> guards_for(lambda: None, w)
'it calls print'
"""

from __future__ import annotations

import abc
import builtins
import collections
import copy
import dis
import functools
import gc
import importlib.util
import itertools
import math
import operator
import os
import random
import sys
import types
from typing import Any, Callable, Mapping

import numpy as np

from .trace import _STDLIB, _sparse, same_bits

_PLAIN = (bool, int, float, complex, str, bytes, type(None))


class _Sparse:
    """A copy of a SciPy sparse matrix, for comparing the argument by value on later calls."""

    __slots__ = ("copy",)

    def __init__(self, m: Any):
        self.copy = m.copy()


class _Subclass:
    """A copy of an array of an ndarray subclass: its type, its data and a masked array's mask (which
    ``np.array(x, copy=True)`` drops: ``c.sum()`` of a masked ``c`` changes with the mask alone)."""

    __slots__ = ("type", "data", "mask")

    def __init__(self, a: np.ndarray):
        self.type, self.data = type(a), np.array(a, copy=True)
        self.mask = np.ma.getmaskarray(a).copy() if isinstance(a, np.ma.MaskedArray) else None

    def holds(self, a: Any) -> bool:
        return (type(a) is self.type and same_bits(np.asarray(a), self.data)
                and (self.mask is None or same_bits(np.ma.getmaskarray(a), self.mask)))


class _Objects:
    """An object array's shape and a snapshot of each of its entries (a copy of the array would
    keep the same objects: ``c[0][0] = 5.0`` on a list held in it would go unseen)."""

    __slots__ = ("shape", "items")

    def __init__(self, a: np.ndarray, copies: Mapping[int, tuple] | None):
        self.shape, self.items = a.shape, [snapshot(v, copies) for v in a.flat]

    def holds(self, a: Any) -> bool:
        return (type(a) is np.ndarray and a.dtype == object and a.shape == self.shape
                and all(map(same, a.flat, self.items)))


class _Container:
    """A snapshot of a tuple or dict subclass (a namedtuple, ``OrderedDict``, ``defaultdict``): its
    type, its items' snapshots and a ``defaultdict``'s factory (a copy by identity would miss an
    array changed in place inside it)."""

    __slots__ = ("type", "items", "factory", "classes", "attributes")

    def __init__(self, x: tuple | dict, copies: Mapping[int, tuple] | None):
        self.type, self.factory = type(x), getattr(x, "default_factory", None)
        self.items = snapshot(tuple(x) if isinstance(x, tuple) else dict(x), copies)
        # a namedtuple's class may define methods and constants, and a subclass's instances attributes
        self.classes = _Classes(type(x), copies) if _namedtuple(x) else None
        self.attributes = snapshot(dict(vars(x)), copies) if hasattr(x, "__dict__") else None

    def holds(self, a: Any) -> bool:
        if type(a) is not self.type or getattr(a, "default_factory", None) is not self.factory:
            return False
        if self.classes is not None and not self.classes.holds(type(a)):
            return False
        if self.attributes is not None and not same(dict(vars(a)), self.attributes):
            return False
        return same(tuple(a) if isinstance(a, tuple) else dict(a), self.items)


class _Classes:
    """What an object's classes define (see :class:`_Record`): the classes in order (``__bases__``
    may be reassigned), each ``class`` statement's namespace by identity (a method replaced, a
    constant rebound) and what may change inside it (a list, an object held) by value, and where
    an ``abc.ABC`` is among them, ``abc``'s token of registrations (``isinstance`` reads them)."""

    __slots__ = ("mro", "quick", "deep", "token")

    def __init__(self, cls: type, copies: Mapping[int, tuple] | None):
        self.mro = cls.__mro__
        heap = [c for c in self.mro if c.__flags__ & _HEAP_TYPE]
        self.quick = [(c, _Attributes(c)) for c in heap]
        self.deep = [(c, k, snapshot(v, copies)) for c in heap for k, v in _class_entries(c) if not _fixed(v)]
        self.token = abc.get_cache_token() if any(type(c) is abc.ABCMeta for c in self.mro) else None

    def holds(self, cls: type) -> bool:
        return (cls.__mro__ == self.mro and all(kept.holds(c) for c, kept in self.quick)
                and all(same(vars(c)[k], copy_) for c, k, copy_ in self.deep)
                and (self.token is None or abc.get_cache_token() == self.token))


def _fixed(v: Any) -> bool:
    """A value compared by identity alone: immutable (a tuple of immutables too: a namedtuple's
    ``_fields``), a pure module or function, a method or a field of a namedtuple (a change is a new
    object)."""
    return (isinstance(v, _IMMUTABLE) or _identity(v) or _descriptor(v) or type(v) in (np.ndarray, _TUPLEGETTER)
            or (type(v) is tuple and all(isinstance(x, _IMMUTABLE) for x in v)))


class _Record:
    """An object of the user's own plain class (``self.X`` in a method ``f``, a dataclass of data held
    globally or passed): its attributes by value as :func:`snapshot` keeps them, and what its
    classes define (:class:`_Classes`), so a method replaced, a class constant changed or an array
    attribute refilled is seen. A quick test comes first: the attributes the same objects, arrays
    the same bits, what may change inside them the same by value."""

    __slots__ = ("type", "items", "classes", "live", "quick", "deep")

    def __init__(self, x: Any, copies: Mapping[int, tuple] | None):
        self.type, self.items, self.classes = type(x), snapshot(dict(vars(x)), copies), _Classes(type(x), copies)
        self.live, self.quick = x, _Attributes(x)
        self.deep = [(k, self.items[k]) for k, v in vars(x).items() if not _fixed(v)]  # (the copies in items)

    def holds(self, a: Any) -> bool:
        if type(a) is not self.type or not self.classes.holds(type(a)):
            return False
        if a is self.live and self.quick.holds(a) and all(same(vars(a)[k], copy_) for k, copy_ in self.deep):
            return True
        return same(dict(vars(a)), self.items)  # (rebound to equal values, another object: by value)


#: a class made by a ``class`` statement (CPython's Py_TPFLAGS_HEAPTYPE), not one written in C
_HEAP_TYPE = 1 << 9
#: values that cannot change in place (a record's quick test compares them by identity)
_IMMUTABLE = (bool, int, float, complex, str, bytes, type(None), np.generic)
#: a namedtuple's field (a C descriptor that reads one item)
_TUPLEGETTER = type(collections.namedtuple("_Pair", "a").a)


#: what Python, ``dataclasses`` and ``abc`` keep in a class's namespace for their own bookkeeping
_CLASS_BOOKKEEPING = frozenset({"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__",
                                "__firstlineno__", "__static_attributes__", "__dataclass_fields__",
                                "__dataclass_params__", "__match_args__", "__orig_bases__", "__parameters__",
                                "_abc_impl", "__abstractmethods__"})
#: the metaclasses of records' classes: ``type``, and ``abc.ABCMeta`` (``class Model(abc.ABC)``), whose
#: registry of subclasses changes ``isinstance``, not attributes
_METACLASSES = (type, abc.ABCMeta)


def _class_entries(c: type):
    """What a class defines for its instances to read: its attributes and methods, Python's own
    (``__call__``, ``__mul__``, ``__array_priority__``) among them, not its bookkeeping (``__module__``)."""
    return ((k, v) for k, v in vars(c).items() if k not in _CLASS_BOOKKEEPING)


def _descriptor(v: Any) -> bool:
    """A method, static or class method or property of plain functions (compared by identity; a
    wrapped partial or object would carry state that identity misses)."""
    if type(v) is types.FunctionType:
        return True
    if type(v) in (staticmethod, classmethod):
        return type(v.__func__) is types.FunctionType
    if type(v) is property:
        return all(fn is None or type(fn) is types.FunctionType for fn in (v.fget, v.fset, v.fdel))
    return False


def _class_functions(x: Any):
    """The functions a record's classes define (a property's getter, a static method's function)."""
    for c in type(x).__mro__[:-1]:
        for _, v in _class_entries(c):
            fn = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v.fget if isinstance(v, property) else v
            if type(fn) is types.FunctionType:
                yield fn


def _record(x: Any) -> bool:
    """Whether ``x`` is an object of a plain class of the user's (see :class:`_Record`): defined by
    ``class`` statements outside NumPy, SciPy and jacc, attributes in a ``__dict__``, no slots
    (``abc.ABC``'s empty ones aside), metaclass but ``abc.ABCMeta`` or attribute hooks
    (``__getattr__`` runs code on reads that no watch saw)."""
    cls = type(x)
    if type(cls) not in _METACLASSES or not isinstance(getattr(x, "__dict__", None), dict) \
            or _pure_module(cls.__module__):
        return False
    for c in cls.__mro__[:-1]:
        if not c.__flags__ & _HEAP_TYPE or vars(c).get("__slots__", ()) or "__getattr__" in vars(c) \
                or "__getattribute__" in vars(c):
            return False
    return cls.__mro__[-1] is object


def _record_class(cls: type) -> bool:
    return type(cls) in _METACLASSES and all(c.__flags__ & _HEAP_TYPE for c in cls.__mro__[:-1])


def _method(f: Any) -> tuple[Any, Any]:
    """``(function, record)`` for a method bound to a record (``model.loss``) or a record that is
    called (``model(x)`` runs ``type(model).__call__``); else ``(f, None)``."""
    if type(f) is types.MethodType and _record(f.__self__):
        return f.__func__, f.__self__
    if not _record(f):
        return f, None
    call = next((vars(c)["__call__"] for c in type(f).__mro__ if "__call__" in vars(c)), None)
    if type(call) is types.FunctionType:
        return call, f
    return f, None


#: records nested deeper than this (a linked list of objects) are not compared
_RECORD_DEPTH = 16


def _namespaces_plain(x: Any, budget: list) -> bool:
    """Whether ``x``'s attributes (if it has a ``__dict__``) are plain data and what its classes
    define is plain data, a method of plain functions or a namedtuple's field."""
    if not all(_plain(v, budget) for v in getattr(x, "__dict__", {}).values()):
        return False
    return all(_descriptor(v) or type(v) is _TUPLEGETTER
               or (_plain(v, budget) and not isinstance(v, functools._lru_cache_wrapper))
               for c in type(x).__mro__ if c.__flags__ & _HEAP_TYPE for _, v in _class_entries(c))


def _record_plain(x: Any, budget: list) -> bool:
    """Whether a record's attributes are plain data, and its classes' entries descriptors or plain
    data; a record that holds itself (``node.parent.child``) or nests too deep is not."""
    if len(budget) == 1:
        budget.append([])  # (the records on the path from the value compared)
    path = budget[1]
    if len(path) >= _RECORD_DEPTH or any(r is x for r in path):
        return False
    path.append(x)
    try:
        return _namespaces_plain(x, budget)
    finally:
        path.pop()


class _Frozen:
    """A SciPy frozen distribution (``prior = st.norm(0, 2)``, read by ``f``): its class and its
    distribution's, what they were made from — the frozen arguments, the constructor's parameters
    (``rv_histogram``'s histogram among them), the support — by value, and every other attribute of
    the frozen object and of its distribution (a method replaced, ``rv_discrete``'s ``pk`` changed
    in place, the user's own) by identity, arrays by value; the live object is what ``f`` reads.
    A multivariate one (``st.multivariate_normal(m, C)``) is its attributes, and those of the
    objects among them (its distribution, its covariance's factors, a user's subclass of one),
    compared the same way.
    (Like the functions of NumPy and SciPy, their classes' methods are not compared.)"""

    __slots__ = ("type", "made", "attributes")

    def __init__(self, d: Any, copies: Mapping[int, tuple] | None):
        self.type, self.made = type(d), snapshot(_frozen_made(d), copies)
        self.attributes = [(type(obj), _Attributes(obj)) for obj in _frozen_parts(d)]

    def holds(self, a: Any) -> bool:
        if type(a) is not self.type:
            return False
        parts = _frozen_parts(a)
        if len(parts) != len(self.attributes):
            return False
        for obj, (cls, kept) in zip(parts, self.attributes):
            if type(obj) is not cls or not kept.holds(obj):
                return False
        return same(_frozen_made(a), self.made)


def _univariate(d: Any) -> bool:
    return hasattr(d, "dist")


def _frozen_made(d: Any) -> tuple:
    return (d.args, d.kwds, d.dist._updated_ctor_param(), d.a, d.b) if _univariate(d) else ()


def _frozen_parts(d: Any) -> list:
    """The objects whose attributes a frozen distribution's methods read: itself and its
    distribution, or (multivariate) the objects with attributes it holds as well — SciPy's or the
    user's (a subclass of a covariance) — and theirs in turn (a multivariate normal's
    ``CovViaPSD`` holds a ``_PSD`` with the whitening factor)."""
    if _univariate(d):
        return [d, d.dist]
    parts, seen = [d], {id(d)}
    for obj in parts:  # (grows as it goes: breadth first, each object once)
        for v in vars(obj).values():
            if id(v) not in seen and _part(v):
                seen.add(id(v))
                parts.append(v)
    return parts


def _part(v: Any) -> bool:
    return not isinstance(v, type) and isinstance(getattr(v, "__dict__", None), dict) and (
        _stats_class(type(v)) or _record(v))


def _multivariate_plain(d: Any) -> bool:
    """Whether every attribute of a multivariate frozen distribution's parts is compared where it
    matters: plain data (arrays of NumPy's own type: a subclass's contents are not copied), a part,
    or its distribution's random generator (drawing from it is seen where it runs)."""
    for obj in _frozen_parts(d):
        for v in vars(obj).values():
            if not (_plain(v, [10_000]) or _part(v) or isinstance(v, (np.random.RandomState, np.random.Generator))):
                return False
    return True


class _Attributes:
    """An object's attributes as a guard keeps them: the names in order and the values, compared by
    identity in one C-level pass, and a copy of each array (changed in place; an array subclass's
    as :func:`snapshot` keeps it) compared by value."""

    __slots__ = ("names", "values", "arrays")

    def __init__(self, obj: Any):
        now = vars(obj)
        self.names, self.values = tuple(now), tuple(now.values())
        self.arrays = [(k, _Bits(v) if _Bits.fits(v) else snapshot(v)) for k, v in now.items()
                       if isinstance(v, np.ndarray)]

    def holds(self, obj: Any) -> bool:
        now = vars(obj)
        if len(now) != len(self.names) or tuple(now) != self.names \
                or not all(map(operator.is_, now.values(), self.values)):
            return False
        return all(same(now[k], copy_) for k, copy_ in self.arrays)


class _Bits:
    """A small array as a guard keeps it to compare on every skipping call: its shape, dtype and
    bytes (one copy and a compare of the bytes cost less than :func:`same_bits` of two arrays:
    ``model.X`` of 200 × 10 in 1 µs against 5–9)."""

    __slots__ = ("shape", "dtype", "data")

    #: the largest array kept as bytes: beyond about 100 KiB a copy costs more than memcmp's call
    LARGEST = 1 << 16

    def __init__(self, a: np.ndarray):
        self.shape, self.dtype, self.data = a.shape, a.dtype, a.tobytes()

    @classmethod
    def fits(cls, a: Any) -> bool:
        return type(a) is np.ndarray and a.nbytes <= cls.LARGEST and not a.dtype.hasobject

    def holds(self, a: Any) -> bool:
        return type(a) is np.ndarray and a.shape == self.shape and a.dtype == self.dtype and a.tobytes() == self.data


def _frozen(x: Any) -> bool:
    """Whether ``x`` is one of SciPy's frozen distributions (of one of SciPy's own classes)."""
    infrastructure = sys.modules.get("scipy.stats._distn_infrastructure")
    if infrastructure is not None and isinstance(x, infrastructure.rv_frozen):
        return _stats_class(type(x.dist))
    multivariate = sys.modules.get("scipy.stats._multivariate")
    return (multivariate is not None and isinstance(x, multivariate.multi_rv_frozen) and _stats_class(type(x))
            and _multivariate_plain(x))


class _RandomState:
    """A random generator's state (``np.random.Generator``, ``RandomState``, ``random.Random``): the
    object itself and what its next draws will be (``f`` drawing from one changes it)."""

    __slots__ = ("rng", "state")

    def __init__(self, rng: Any):
        self.rng, self.state = rng, _state_of(rng)

    def holds(self, a: Any) -> bool:
        return a is self.rng and _same_state(_state_of(a), self.state)


def _state_of(rng: Any) -> Any:
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    return rng.get_state(legacy=False) if isinstance(rng, np.random.RandomState) else rng.getstate()


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, list, tuple)):
        return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return type(a) is type(b) and a == b


def _same_key(a: Any, b: Any) -> bool:
    """Dictionary keys that are the same for ``f``: equal and of one type (``1``, ``1.0`` and ``True``
    are one key to a dict, not to ``isinstance``)."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(map(_same_key, a, b))
    return a == b


def _is_sparse(x: Any) -> bool:
    return _sparse(x) and hasattr(x, "tocoo")  # (a matrix, not a scipy.sparse.linalg operator)


def _namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


#: dict subclasses a snapshot copies (with namedtuples): the pytree kinds of :mod:`jacc.pytrees`
_CONTAINERS = (collections.OrderedDict, collections.defaultdict)


def snapshot(x: Any, copies: Mapping[int, tuple] | None = None) -> Any:
    """What a guard keeps of a value: a copy for arrays, numbers, strings, lists, tuples and dicts
    of them (recursively; namedtuples, ``OrderedDict`` and ``defaultdict`` too) and SciPy sparse
    matrices, so a container changed in place is seen; the object itself otherwise. ``copies`` (a
    trace's :attr:`~jacc.trace.Tape.copies`) offers read-only copies already made of some arrays:
    one still bit-equal to its array is kept instead of a new copy."""
    if type(x) is np.ndarray and copies:
        mine, copy = copies.get(id(x), (None, None))
        if mine is x and copy.dtype == x.dtype and copy.shape == x.shape and same_bits(x, copy):
            return copy
    if isinstance(x, np.generic):  # (kept as a NumPy scalar: f can tell it from a 0-d array, isinstance(c, float))
        return x.copy()
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return _Objects(x, copies)
        return np.array(x, copy=True) if type(x) is np.ndarray else _Subclass(x)
    if type(x) in (list, tuple):
        return type(x)(snapshot(v, copies) for v in x)
    if type(x) is dict:
        return {k: snapshot(v, copies) for k, v in x.items()}
    if type(x) in _CONTAINERS or _namedtuple(x):
        return _Container(x, copies)
    if isinstance(x, (np.random.Generator, np.random.RandomState, random.Random)):
        return _RandomState(x)
    if _is_sparse(x):
        return _Sparse(x)
    if _frozen(x):
        return _Frozen(x, copies)
    if _record(x):
        return _Record(x, copies)
    return x


def same(a: Any, b: Any) -> bool:
    """Is ``a`` the value ``b`` a guard kept (see :func:`snapshot`: arrays bit for bit, containers
    item by item, other objects by identity)?"""
    if isinstance(b, np.ndarray):
        return type(a) is np.ndarray and same_bits(a, b)
    if isinstance(b, np.generic):
        return type(a) is type(b) and same_bits(np.asarray(a), np.asarray(b))
    if isinstance(b, _PLAIN):
        return type(a) is type(b) and (same_number(a, b) if isinstance(b, (float, complex)) else a == b)
    if type(b) in (list, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if type(b) is dict:
        return (type(a) is dict and len(a) == len(b) and all(map(_same_key, a, b))  # (keys in order: f may iterate)
                and all(same(a[k], v) for k, v in b.items()))
    if isinstance(b, (_Subclass, _Objects, _Container, _RandomState, _Frozen, _Record, _Bits)):
        return b.holds(a)
    if isinstance(b, _Sparse):
        c = b.copy
        return (type(a) is type(c) and a.shape == c.shape and a.dtype == c.dtype
                and (a != c).nnz == 0)  # (a NaN entry never equals: such calls trace again)
    return a is b


def same_number(a: float | complex, b: float | complex) -> bool:
    """Equal bit for bit in effect: NaN matches NaN, but -0.0 differs from 0.0 (``f`` can tell
    them apart: ``np.copysign``, ``1 / c``, ``np.arctan2``)."""
    if isinstance(b, complex):
        return same_number(a.real, b.real) and same_number(a.imag, b.imag)
    if a != a:
        return b != b
    return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))


# --- which code ran: jacc's and NumPy's own (trusted), the standard library's (transparent: its C
# calls count as its caller's; the globals it reads where user code called it are guarded), the
# user's (checked)

TRUSTED, STDLIB, USER = 0, 1, 2
_JACC = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NUMPY = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_NUMPY_RANDOM = _NUMPY + "random" + os.sep
_API = _JACC + "api.py"  # (where the functions jacc.jacobian makes are defined)
#: the standard library's ``copy``: watched as the standard library is (the user's ``__deepcopy__``
#: it calls runs as the user's), but its ``id`` calls (``deepcopy``'s memo) are pure and its own
#: dispatch tables, dicts keyed by type, are not guarded (changed by ``copyreg`` registrations only)
_COPY = os.path.abspath(copy.__file__)


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    return os.path.dirname(os.path.abspath(spec.origin)) + os.sep if spec and spec.origin else None


def _scipy_lib() -> str | None:
    """SciPy's own utilities (``scipy/_lib``: argument checks, the array-API dispatch its functions
    run first), which read module-level caches and ``sys``: watched as user code, every function
    calling ``scipy.linalg`` ran ``f`` at every call."""
    d = _package_dir("scipy")
    return d + "_lib" + os.sep if d else None


def _scipy_tables() -> tuple[str, ...]:
    """SciPy's code that computes from its arguments and reads no state, but picks helpers from
    tables of its own by value, so a helper that one call did not run (or a table of objects)
    made every call of ``f`` run ``f``: filter design (``butter``, ``firwin``, windows:
    ``iirfilter``'s band transforms) and ``scipy.spatial.distance`` (``cdist``'s metric table:
    817 µs a call against 9 µs skipping). A metric that is the user's function is guarded where
    ``f`` names it, as any function ``f`` reads."""
    d = _package_dir("scipy")
    if not d:
        return ()
    signal = os.path.join(d, "signal") + os.sep
    return (signal + "_filter_design.py", signal + "_fir_filter_design.py", signal + "windows" + os.sep,
            os.path.join(d, "spatial", "distance.py"))


#: where trusted code lives: jacc, NumPy and the libraries jacc itself calls while it traces, SciPy's
#: utilities, and the code jacc and NetworkX generate (``<jacc program …>``, ``<class 'networkx…'>``)
_TRUSTED = tuple(d for d in (_JACC, _NUMPY, _package_dir("networkx"), _package_dir("opt_einsum"), _scipy_lib(),
                             *_scipy_tables()) if d) + ("<jacc ", "<class 'networkx.")

#: NumPy functions that read or write files or change NumPy's global state
_NUMPY_EFFECTS = frozenset({
    "save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "genfromtxt", "fromfile", "fromregex",
    "tofile", "dump", "memmap", "seterr", "seterrcall", "set_printoptions", "setbufsize", "set_string_function",
    "open_memmap",
    # (they read the print options that np.set_printoptions sets: str(x) in f, hunt CF)
    "array2string", "array_str", "array_repr", "format_float_positional", "format_float_scientific"})

#: builtins without side effects whose results depend on their arguments alone
_PURE_BUILTINS = frozenset(id(getattr(builtins, n)) for n in (
    "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "format", "getattr", "hasattr", "hash",
    "hex", "isinstance", "issubclass", "iter", "len", "max", "min", "next", "oct", "ord", "pow", "repr",
    "round", "sorted", "sum"))

#: modules whose functions and classes are pure (their C functions are checked by name against
#: _NUMPY_EFFECTS; ``numpy.random`` is not among them)
_PURE_MODULES = frozenset({"numpy", "math", "cmath", "operator", "_operator", "itertools", "functools",
                           "_functools", "_abc", "scipy", "jacc", "copy"})

_DATA = (list, tuple, dict, set, frozenset, str, bytes, int, float, complex, bool, np.ndarray, np.generic)


def _pure_module(name: Any) -> bool:
    return (isinstance(name, str) and name.split(".", 1)[0] in _PURE_MODULES
            and not name.startswith("numpy.random"))


def _pure_c(fn: Any) -> bool:
    """Whether calling the C function ``fn`` from user code is unobservable and repeatable."""
    if id(fn) in _PURE_BUILTINS or isinstance(fn, np.ufunc):
        return True
    name = getattr(fn, "__name__", "")
    if name in _NUMPY_EFFECTS:
        return False
    owner = getattr(fn, "__self__", None)
    if owner is None or isinstance(owner, types.ModuleType):  # a function (or a method descriptor)
        cls = getattr(fn, "__objclass__", None)
        if cls is not None:
            return issubclass(cls, _DATA)
        return _pure_module(owner.__name__ if owner is not None else getattr(fn, "__module__", None))
    if isinstance(owner, _DATA):  # a method of an array or a plain container (what it changes in
        return True  # place is compared before and after the confirming call)
    if isinstance(owner, type):  # a class method (np.float64.fromhex, dict.fromkeys)
        return _pure_module(owner.__module__) or issubclass(owner, _DATA)
    return _pure_module(type(owner).__module__)  # (a Generator's methods are numpy.random's: not pure)


#: SciPy's distribution constructors (``st.norm(mu, sigma)``, ``dist.freeze(...)``, a frozen
#: distribution's ``__init__``, and the multivariate ones': ``st.multivariate_normal(mu, C)`` and the
#: covariance objects it builds): building a distribution runs ``exec`` and ``setattr`` on the new
#: objects and reads ``sys.flags``, none of it observable by ``f``; watched as user code, every ``f``
#: that froze a distribution ran at every call (4.7 ms against 9 µs unfrozen, found by a hunt; a
#: frozen multivariate normal 855 against 73 µs). The methods then called on it (``logpdf``,
#: ``cdf``) are watched as before.
_STATS_INFRASTRUCTURE = tuple(os.path.join("scipy", "stats", f"{name}.py")
                              for name in ("_distn_infrastructure", "_multivariate", "_covariance"))
_STATS_CONSTRUCTORS = frozenset({"__init__", "freeze", "__call__"})


def _file_kind(code: types.CodeType) -> int:
    path = code.co_filename
    if path.startswith(_TRUSTED) and not path.startswith(_NUMPY_RANDOM):
        return TRUSTED
    if code.co_name in _STATS_CONSTRUCTORS and path.endswith(_STATS_INFRASTRUCTURE):
        return TRUSTED
    if path.startswith("<frozen") or (path.startswith(_STDLIB) and "-packages" not in path):
        return STDLIB
    return USER


def _codes_of(fn: types.FunctionType, into: set, depth: int = 0) -> None:
    """The code objects of ``fn`` and of the functions it may reach through its globals, cells and
    defaults (a callback such code hands to NumPy is the user's code too, wherever it is called from)."""
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        if code in into:
            continue
        into.add(code)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if depth < 8:
            held = [fn.__globals__.get(n) for n in code.co_names]
            held += [c.cell_contents for c in fn.__closure__ or () if _filled(c)] + list(fn.__defaults__ or ())
            held += list((fn.__kwdefaults__ or {}).values()) + list(fn.__dict__.values())  # (f(*, act=cb), f.cb)
            for x in _functions_in(held):
                if x.__code__ not in into:
                    _codes_of(x, into, depth + 1)


def _functions_in(values: list, budget: int = 10_000, cached: bool = False, ran: Any = ()):
    """The functions among ``values`` and inside their lists, tuples, dicts and records (their
    attributes), however deeply nested (a registry of callbacks), a ``functools.partial`` as the
    function it calls; at most ``budget`` items are looked at. A ``functools.lru_cache`` wrapper
    counts as its function, or with ``cached`` is yielded as it is. A record's classes' functions
    are yielded where their code is in ``ran`` (their defaults and cells are then guarded)."""
    stack = list(values)
    while stack and budget:
        x, budget = stack.pop(), budget - 1
        if type(x) is dict:
            stack.extend(x.values())
        elif type(x) in (list, tuple):  # (as _plain)
            stack.extend(x)
        elif _namedtuple(x) or _record(x):  # (items, attributes and its classes' data: objects, lists of functions)
            stack.extend(x if isinstance(x, tuple) else ())
            stack.extend(getattr(x, "__dict__", {}).values())
            stack.extend(v for c in type(x).__mro__ if c.__flags__ & _HEAP_TYPE for _, v in _class_entries(c)
                         if not _descriptor(v))
            yield from (fn for fn in _class_functions(x) if fn.__code__ in ran)
        else:
            if isinstance(x, functools.partial):
                x = x.func
            if isinstance(x, functools._lru_cache_wrapper):  # (SciPy's internal helpers are cached)
                if cached:
                    yield x
                    continue
                x = getattr(x, "__wrapped__", None)
            if isinstance(x, types.FunctionType):
                yield x


_IMPORT = importlib.import_module("importlib._bootstrap")._gcd_import.__code__  # what import_module runs
_FROZEN_IMPORT = ("<frozen importlib", "<frozen zipimport")  # the import system's code (os is frozen too, in 3.11)


def _unwrapped(f: Any) -> Any:
    """The function a partial that jacc made around it stands for (its ``__wrapped__``: the
    other arguments it binds are jacc's, see ``jacc.api._keywords_as_positions``)."""
    while type(f) is functools.partial and "__wrapped__" in f.__dict__:
        f = f.__dict__["__wrapped__"]
    return f


def _filled(cell: Any) -> bool:
    try:
        return cell.cell_contents is not _MISSING
    except ValueError:
        return False


class Watch:
    """What ran while it was active (:func:`watch`): the user code objects with the globals they
    ran with, and the first thing seen that makes running ``f`` observable (``problem``). User code
    is ``f``'s and what it may reach, and whatever user code calls; what jacc and NumPy call on
    their own behalf (NetworkX, generated dataclass methods, import hooks) is theirs."""

    def __init__(self, f: Callable | None = None, passed: tuple = ()):
        self.codes: dict[types.CodeType, dict] = {}
        self.problem: str | None = None
        self._kinds: dict[types.CodeType, int] = {}
        self._roots: set = set()
        for v in (f, *passed):  # (a function passed as an argument may be NumPy's callback)
            for x in (v.values() if type(v) is dict else v if type(v) in (list, tuple) else (v,)):
                x = _unwrapped(x)  # (keyword data's partial: f itself is the root)
                x = x.func if isinstance(x, functools.partial) else x
                x, self_ = _method(x)  # (a method, or an object called: its function and its classes' are roots)
                for fn in _class_functions(self_) if self_ is not None else ():
                    _codes_of(fn, self._roots)
                if isinstance(x, types.FunctionType):
                    _codes_of(x, self._roots)
        self._mine = False

    def __enter__(self) -> "Watch":
        if sys.getprofile() is not None:  # the user's profiler (or another watch) keeps its hook
            self.problem = "a profiler is active"
            return self
        kinds, codes, roots = self._kinds, self.codes, self._roots
        frames: dict = {}  # live frames of other code → whose they are (TRUSTED or USER)
        effects = _NUMPY_EFFECTS
        # what the garbage collector runs (finalizers, weakref callbacks, the other gc.callbacks:
        # Hypothesis times every collection) runs when memory says, not on f's behalf: its calls
        # are not f's (Hypothesis's perf_counter kept f running at random). One callback first in
        # the list marks the start, one last the end, so the others run between them
        collecting = [False]

        def starts(phase, info):
            if phase == "start":
                collecting[0] = True

        def ends(phase, info):
            if phase == "stop":
                collecting[0] = False
        self._collection = (starts, ends)

        def kind(code):
            k = kinds.get(code)
            if k is None:
                k = kinds[code] = _file_kind(code)
                # (by the name of its class too: np.memmap runs as memmap.__new__, hunt CF)
                named = {code.co_name, getattr(code, "co_qualname", "").split(".", 1)[0]}
                if k == TRUSTED and named & effects and code.co_filename.startswith(_NUMPY):
                    self.problem = self.problem or f"it calls numpy's {min(named & effects)}"
            return k

        def whose(frame):
            """TRUSTED or USER: the nearest frame that is not the standard library's decides."""
            while frame is not None:
                k = kind(frame.f_code)
                if k == TRUSTED:
                    return TRUSTED
                if k == USER:
                    return frames.get(frame, USER)
                frame = frame.f_back
            return USER

        def hook(frame, event, arg):
            if collecting[0]:
                return
            if event == "call":
                code = frame.f_code
                k = kind(code)
                if k == USER:
                    who = frames[frame] = USER if code in roots else whose(frame.f_back)
                    if who == USER and code not in codes:
                        codes[code] = frame.f_globals
                elif code is _IMPORT:
                    if self.problem is None and whose(frame.f_back) == USER:
                        self.problem = "it imports a module"  # (importlib.import_module: its attributes are unguarded)
                elif (k == STDLIB and code not in codes and not code.co_filename.startswith(_FROZEN_IMPORT)
                      and whose(frame.f_back) == USER):  # (import statements run frozen code: IMPORT_NAME decides)
                    codes[code] = frame.f_globals  # (its globals are read on the user's behalf: os.getenv's environ)
            elif event == "return":
                frames.pop(frame, None)
            elif event == "c_call":
                if (self.problem is None and whose(frame) == USER and not _pure_c(arg)
                        and not (arg is id and frame.f_code.co_filename == _COPY)):
                    self.problem = f"it calls {getattr(arg, '__qualname__', None) or getattr(arg, '__name__', arg)}"

        self._mine = True
        gc.callbacks.insert(0, starts)
        gc.callbacks.append(ends)
        hook.watch = self  # (restart_watch finds it: the profile hook is per thread)
        sys.setprofile(hook)
        return self

    def restart(self) -> None:
        """Forget the code that ran so far (not a problem seen): ``f`` runs again, and what ran
        before is not what a later run runs (a first trace that SciPy's original methods refused,
        retried with jacc's replacements, which every later trace uses)."""
        self.codes.clear()

    def __exit__(self, *exc) -> None:
        if self._mine:
            sys.setprofile(None)
            for callback in self._collection:
                gc.callbacks.remove(callback)
            self._mine = False


def restart_watch() -> None:
    """:meth:`Watch.restart` of the watch active in this thread, if any."""
    w = getattr(sys.getprofile(), "watch", None)
    if type(w) is Watch:
        w.restart()


def watch(f: Callable | None = None, passed: tuple = ()) -> Watch:
    """A context that records what runs inside it (``f``: the function whose run it watches,
    ``passed``: the arguments it is given), for :func:`guards_for`."""
    return Watch(f, passed)


# --- the bytecode of user code: what it reads and whether it writes outside itself

_WRITES = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL", "STORE_ATTR", "DELETE_ATTR", "IMPORT_STAR", "STORE_NAME",
                     "DELETE_NAME", "LOAD_NAME", "LOAD_CLASSDEREF"})
_CELL_WRITES = frozenset({"STORE_DEREF", "DELETE_DEREF"})
#: attributes that reach a namespace no guard covers (``helper.__globals__["K"]``), named as
#: attributes or as strings (``getattr(helper, "__globals__")``)
_INTROSPECTION = frozenset({"__globals__", "__dict__", "__closure__", "cell_contents", "__builtins__", "f_globals",
                            "f_locals", "f_back", "gi_frame", "__code__", "__defaults__", "__kwdefaults__"})


def _tree(code: types.CodeType, outer: frozenset, into: dict) -> None:
    """Map each code object nested in ``code`` (itself included) to the free variables it may
    write: those that are cells of ``code``'s own tree (``outer``: such names of its parents)."""
    local = frozenset(n for n in code.co_freevars if n in outer) | frozenset(code.co_cellvars)
    into[code] = local
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _tree(c, local, into)


_NAMED_AT_RUN_TIME = frozenset({"attrgetter", "methodcaller"})  # (operator's: names given as data)
_PASSIVE = frozenset({"PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "PUSH_NULL"})


def _literal_getattr(ins: list, i: int) -> bool:
    """Whether the ``getattr`` loaded by ``ins[i]`` is called at once as ``getattr(obj, "name")``
    (or with a default), ``obj`` a name or a chain of attributes: the attribute is then a string
    in the code, which :func:`_reads` looks at; any other use may reach ``numpy.random`` or a
    function's globals by a name built at run time (``getattr(np, name)``)."""
    rest = (x for x in itertools.islice(ins, i + 1, None) if x.opname not in _PASSIVE)  # (up to the call)
    x = next(rest, None)
    if x is None or x.opname not in ("LOAD_GLOBAL", "LOAD_FAST", "LOAD_DEREF", "LOAD_NAME"):
        return False
    x = next(rest, None)
    while x is not None and x.opname == "LOAD_ATTR":
        x = next(rest, None)
    if x is None or x.opname != "LOAD_CONST" or not isinstance(x.argval, str):
        return False
    argc, x = 2, next(rest, None)
    if x is not None and x.opname == "LOAD_CONST":  # a default
        argc, x = 3, next(rest, None)
    return x is not None and x.opname in ("CALL", "CALL_FUNCTION") and x.arg == argc


def _reads(code: types.CodeType) -> tuple[list[str], Callable[[frozenset], str | None]]:
    """The global names ``code`` reads, and a function of the outer variables it may write that
    says what it writes outside itself (None: nothing)."""
    names, cells, found = [], [], None
    handlers = 0  # exception handlers less those of with-statements
    error_state, raising = 0, False  # np.errstate(divide="raise") or (call=…): a path taken by value
    ins_list = list(dis.get_instructions(code))
    for at, ins in enumerate(ins_list):
        op = ins.opname
        if found is None and ((op in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval == "getattr"
                               and not _literal_getattr(ins_list, at))
                              or (ins.argval in _NAMED_AT_RUN_TIME
                                  and op in ("LOAD_GLOBAL", "LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"))):
            found = f"{code.co_name} (line {ins.positions.lineno}) looks up an attribute by a name built at run time"
        if op in ("PUSH_EXC_INFO", "SETUP_FINALLY"):  # (3.11 on, 3.10)
            handlers += 1
        elif op == "WITH_EXCEPT_START":
            handlers -= 1
        elif (ins.argval in _INTROSPECTION and op in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_CONST")
              and found is None):
            found = f"{code.co_name} (line {ins.positions.lineno}) reads {ins.argval}"
        if op == "LOAD_GLOBAL":
            names.append(ins.argval)
        elif op in _WRITES and found is None:
            found = f"{code.co_name} (line {ins.positions.lineno}) has {op}"
        elif op == "IMPORT_NAME" and not _pure_module(ins.argval) and found is None:
            # (a module's attributes are not guarded: a global holding one is refused the same way)
            found = f"{code.co_name} (line {ins.positions.lineno}) imports {ins.argval}"
        elif op in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_CONST") and ins.argval == "random" and found is None:
            # np.random.normal handed to C (max(..., key=…), map) runs with no event the hook sees
            found = f"{code.co_name} (line {ins.positions.lineno}) uses numpy.random"
        elif op in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "IMPORT_FROM") and ins.argval == "datetime64" \
                and found is None:
            # np.datetime64("now") reads the clock while NumPy makes the value, which no call the hook sees
            # shows, however "now" is spelled or reaches it (hunts CF, CL)
            found = f"{code.co_name} (line {ins.positions.lineno}) uses numpy.datetime64 (it may read the clock)"
        elif op in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval in ("errstate", "seterr"):
            error_state = error_state or ins.positions.lineno
        elif op == "LOAD_CONST" and ins.argval in ("raise", "call"):
            raising = True
        elif op in _CELL_WRITES and ins.argval in code.co_freevars:
            cells.append(ins.argval)

    if handlers > 0 and found is None:  # an error raised at some values only (np.errstate(divide="raise"),
        # LinAlgError) takes another path there, which the program run without f would not take
        found = f"{code.co_name} catches exceptions"
    if error_state and raising and found is None:
        found = f"{code.co_name} (line {error_state}) makes floating-point errors raise or call back"

    def writes(writable: frozenset) -> str | None:
        outer = next((n for n in cells if n not in writable), None)
        return found or (outer and f"{code.co_name} writes the outer variable {outer!r}")
    return names, writes


# --- guarded values

_MISSING = object()


def _lookup(space: dict, name: str) -> Any:
    """What the global ``name`` resolves to in ``space`` (its builtin if unset there), or _MISSING."""
    v = space.get(name, _MISSING)
    return builtins.__dict__.get(name, _MISSING) if v is _MISSING else v


#: the type of NumPy's dispatching functions (np.mean, np.linalg.norm: not ufuncs, not FunctionType)
_DISPATCHER = type(np.mean)


def _stats_class(cls: type) -> bool:
    """Whether ``cls`` is defined by ``scipy.stats`` itself (a user's subclass runs the user's code)."""
    return str(getattr(cls, "__module__", "")).startswith("scipy.stats.")


def _stats_singleton(v: Any) -> bool:
    """One of ``scipy.stats``' own distributions (``norm``, ``gamma``: ``from scipy.stats import
    norm`` puts it in f's globals; ``multivariate_normal``, which SciPy's ``multivariate_t`` reads
    as a global): its methods' code runs where it is called, watched as any; f never skipped where
    it was read through such a name (929 µs a call against 63 through ``st.norm``, found by a hunt;
    1,282 against 761 µs for a frozen ``multivariate_t``)."""
    stats = sys.modules.get("scipy.stats")
    if stats is None or isinstance(v, type):
        return False
    name = getattr(v, "name", None)
    if type(name) is not str:  # (a multivariate one: multivariate_normal_gen's is multivariate_normal)
        cls = type(v)
        name = cls.__name__.removesuffix("_gen") if _stats_class(cls) else None
    return name is not None and getattr(stats, name, None) is v


#: a ufunc's loop made of objects alone (``np.frompyfunc``'s "O->O")
_OBJECT_LOOP = frozenset("O->")
#: standard-library modules whose classes read files, sockets, the clock or a context when made or
#: used from C, where no call is seen (``io.FileIO(path)`` read by ``b"".join``; ``decimal``'s
#: precision), so a class of theirs that ``f`` reads keeps ``f`` running (hunt CF)
_STATEFUL_STDLIB = frozenset({"io", "_io", "mmap", "socket", "_socket", "ssl", "_ssl", "select", "selectors",
                              "decimal", "_decimal", "_pydecimal", "datetime", "_datetime", "time", "random",
                              "_random", "os", "posix", "nt", "sys", "threading", "_thread", "queue", "subprocess",
                              "multiprocessing", "sqlite3", "_sqlite3", "tempfile", "uuid", "secrets", "asyncio"})


def _identity(v: Any) -> bool:
    """Values a guard compares by identity: modules, functions and classes that are pure."""
    if isinstance(v, types.ModuleType):
        return _pure_module(v.__name__)
    if isinstance(v, types.BuiltinFunctionType):  # (not a method bound to data: PARAMS.get, W.sum)
        return _pure_c(v) and isinstance(getattr(v, "__self__", None), (types.NoneType, types.ModuleType, type,
                                                                         np.ufunc))
    if isinstance(v, np.ufunc):  # (not one of np.frompyfunc: its Python function is out of sight, hunt CF)
        return not all(set(t) <= _OBJECT_LOOP for t in v.types)
    if isinstance(v, (types.FunctionType, np.dtype)):
        return True
    if type(v) is _DISPATCHER:  # NumPy's own functions imported by name (from numpy import mean)
        return _pure_module(getattr(v, "__module__", None)) and getattr(v, "__name__", "") not in _NUMPY_EFFECTS
    if isinstance(v, functools._lru_cache_wrapper):  # its function's code is walked (_functions_in)
        return isinstance(getattr(v, "__wrapped__", None), types.FunctionType)
    if _stats_singleton(v):  # (its attributes are not compared: SciPy's objects, like the functions in
        return True  # NumPy's and SciPy's modules, are taken as they are; a check cost 2.5 µs a call each)
    if isinstance(v, type):  # (the standard library's classes: their Python code is watched where it runs,
        # its C functions called from there checked, as any; ``contextlib.contextmanager`` makes one)
        top = str(v.__module__).split(".", 1)[0]
        return (v.__module__ == "builtins" or _pure_module(v.__module__)
                or top in sys.stdlib_module_names and top not in _STATEFUL_STDLIB)
    return False


def _plain(v: Any, budget: list) -> bool:
    """Plain data (compared by value) made of at most ``budget[0]`` items, or identity-guarded."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if type(v) in _PLAIN or _identity(v):  # (a float subclass or an enum member may hold attributes)
        return True
    if isinstance(v, np.generic):  # (NumPy's own scalar types, np.float64 and np.str_; not a subclass)
        return not type(v).__flags__ & _HEAP_TYPE and (isinstance(v, _PLAIN) or v.dtype.kind in "biufc")
    if type(v) is np.ndarray:  # (a subclass's state, a mask, is not copied)
        return v.dtype.kind in "biufc"
    if type(v) in (list, tuple):
        return all(_plain(x, budget) for x in v)
    if _namedtuple(v):  # (a namedtuple batch; its class's methods and constants, a subclass's attributes)
        return all(_plain(x, budget) for x in v) and _namespaces_plain(v, budget)
    if type(v) is dict:
        return all(isinstance(k, _PLAIN) and _plain(x, budget) for k, x in v.items())
    if _record(v):
        return _record_plain(v, budget)
    return _frozen(v)


class Kept:
    """A value a guard holds: a copy to compare by value (:func:`same`), and a quicker test that
    passes only when the same containers still hold the same items and each array the same bytes
    (on the robot arm's 18 closed-over 4 × 4 arrays 2–3 µs where :func:`same` takes 12 µs); where
    it does not pass, the copy decides."""

    __slots__ = ("live", "copy", "lists", "dicts", "arrays", "records", "classes")

    def __init__(self, v: Any, copies: Mapping[int, tuple] | None = None):
        self.live, self.copy = v, snapshot(v, copies)
        self.lists: list = []  # (list, its items)
        self.dicts: list = []  # (dict, its keys, its values)
        self.arrays: list = []  # (array, shape, dtype, bytes or its copy in self.copy)
        self.records: list = []  # (object, its _Record in self.copy)
        self.classes: dict = {}  # namedtuples' classes → their _Classes (each checked once: a batch of 50)
        stack = [(v, self.copy)]
        while stack:
            x, c = stack.pop()
            t = type(x)
            if t is list or t is tuple:
                if t is list:
                    self.lists.append((x, list(x)))
                stack.extend(zip(x, c))
            elif t is dict:
                self.dicts.append((x, tuple(x), tuple(x.values())))
                stack.extend(zip(x.values(), c.values()))
            elif t is np.ndarray:
                self.arrays.append((x, x.shape, x.dtype, x.tobytes() if _Bits.fits(x) else c))
            elif type(c) is _Record:
                self.records.append((x, c))
            elif type(c) is _Container and c.classes is not None and c.attributes is None:  # a namedtuple
                self.classes.setdefault(type(x), c.classes)
                stack.extend(zip(x, c.items))
            elif not (isinstance(x, _PLAIN + (np.generic,)) or _identity(x)):  # (a sparse matrix): by copy
                self.lists = self.dicts = self.arrays = None
                return

    @property
    def mutable(self) -> bool:
        """Whether the value itself may change in place (it holds a list, dict or array, or is
        compared by copy); a number, string or module guarded as itself cannot."""
        return self.arrays is None or bool(self.lists or self.dicts or self.arrays or self.records or self.classes)

    def holds(self, v: Any) -> bool:
        if v is self.live and self.arrays is not None:  # (loops, not all() of generators: every skipping call)
            for c, items in self.lists:
                if len(c) != len(items) or not all(map(operator.is_, c, items)):
                    return same(v, self.copy)
            for d, keys, values in self.dicts:  # (keys in order: f may iterate)
                if len(d) != len(keys) or tuple(d) != keys or not all(map(operator.is_, d.values(), values)):
                    return same(v, self.copy)
            for a, shape, dtype, kept in self.arrays:
                if a.shape != shape or a.dtype != dtype:
                    return same(v, self.copy)
                if not (a.tobytes() == kept if type(kept) is bytes else same_bits(a, kept)):
                    return False  # (the same array, other bits: changed)
            for x, kept in self.records:
                if not kept.holds(x):
                    return False
            for cls, kept in self.classes.items():
                if not kept.holds(cls):
                    return False
            return True
        return same(v, self.copy)


class Guards:
    """The globals and cells ``f`` read, with the values they held: ``hold()`` says whether all
    still hold them (arrays bit for bit, functions and modules the same objects)."""

    def __init__(self):
        self.globals: list[tuple[dict, str, Kept]] = []
        self.absent: list[tuple[dict, str]] = []  # globals read while unset (a NameError caught)
        self.cells: list[tuple[Any, Kept]] = []
        self.values: list[Kept] = []  # objects compared with a copy (a partial's arguments, defaults)
        # functions with what they were: code, defaults, keyword defaults (rebound, not changed in place)
        self.functions: list[tuple[types.FunctionType, types.CodeType, Any, Any]] = []
        self.names: list[str] = []
        self.passed: list[Kept] = []  # the arguments not differentiated, as the watched call left them

    def kept(self) -> list[Kept]:
        """Every value these guards hold a copy of."""
        return self._read() + self.passed

    def _read(self) -> list[Kept]:
        """What ``f`` read besides its arguments."""
        return [k for _, _, k in self.globals] + [k for _, k in self.cells] + self.values

    @property
    def mutable(self) -> bool:
        """Whether something ``f`` read besides its arguments may change in place (a global dict,
        a closed-over array): a run of ``f`` may then have changed it, unseen by one watch."""
        return any(k.mutable for k in self._read())

    def scrub(self, leaked: Callable[[Any], bool], value: Callable[[Any], Any]) -> bool:
        """Replace the ``leaked`` items that ``f`` stored into the lists and dicts it reads (a traced
        value in a global dict) by their ``value``; whether there were any."""
        found, stack, seen = False, [k.live for k in self._read()], set()
        while stack:
            x = stack.pop()
            if id(x) in seen or type(x) not in (list, dict):
                continue
            seen.add(id(x))
            for k, v in (x.items() if type(x) is dict else enumerate(x)):
                if leaked(v):
                    x[k], found = value(v), True
                else:
                    stack.append(v)
        return found

    def hold(self) -> bool:
        for fn, code, defaults, kwdefaults in self.functions:
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                return False
        for space, name, kept in self.globals:
            v = _lookup(space, name)
            if v is not kept.copy and not kept.holds(v):
                return False
        for space, name in self.absent:
            if _lookup(space, name) is not _MISSING:
                return False
        for cell, kept in self.cells:
            try:
                v = cell.cell_contents
            except ValueError:
                return False
            if v is not kept.copy and not kept.holds(v):
                return False
        for kept in self.values:  # (a loop, not all() of a generator: hold() runs on every skipping call)
            if not kept.holds(kept.live):
                return False
        return True

    def same_passed(self, passed: tuple) -> bool:
        """Whether the arguments not differentiated are those the guards were found with: other
        values may take other paths through ``f`` (a helper that call never ran)."""
        return len(passed) == len(self.passed) and all(k.holds(v) for k, v in zip(self.passed, passed))


def guards_for(f: Callable, w: Watch, passed: tuple = (), copies: Mapping[int, tuple] | None = None) -> Guards | str:
    """The :class:`Guards` under which running ``f`` again is unobservable, given what ran while
    ``f`` did (``w``) and the arguments ``passed`` that the caller compares itself (by
    :func:`same`: they must be plain data, functions among them have their cells guarded here);
    else a short reason why not. ``copies``: the trace's copies of arrays (see :func:`snapshot`)."""
    if w.problem:
        return w.problem
    g = Guards()
    bound: tuple = ()
    f = _unwrapped(f)
    if type(f) is functools.partial:  # its function, and the arguments it binds (compared by value)
        f, bound = f.func, (f.args, f.keywords)
    f, self_ = _method(f)
    if self_ is not None:  # a method of a record, or a record called: the record is an argument
        bound += ((self_,),)
    if type(f) is not types.FunctionType:
        return "f is not a plain function"
    writable: dict[types.CodeType, frozenset] = {}
    seen: set[int] = set()
    pending: list[Any] = [f]

    def value(v: Any, what: str) -> str | None:
        if not _plain(v, [10_000]):  # (plain: no partial in it, at most 10,000 items)
            return f"{what} holds a value of type {type(v).__name__}"
        for x in _functions_in([v], cached=True, ran=w.codes):
            if isinstance(x, functools._lru_cache_wrapper):
                # a hit runs no code and reads nothing: a result changed in place, or one computed
                # from globals since changed and then cache_clear(), is not seen
                return f"{what} is the cached function {getattr(x, '__qualname__', x)} (functools.cache)"
            if id(x) not in seen:
                pending.append(x)  # (their cells are guarded)
        return None

    def function(fn: types.FunctionType) -> str | None:
        """Guard what a function carries: its cells and defaults; its code tree may then run."""
        seen.add(id(fn))
        code = fn.__code__
        if code not in w.codes and code not in w._roots and _file_kind(code) == USER:
            # (had it run where jacc or NumPy called it, no one would have seen what it read)
            return f"{fn.__qualname__} may run unwatched (it is reached only through a value)"
        _tree(fn.__code__, frozenset(), writable)
        if code.co_name == "jf" and code.co_filename == _API:  # (its cells are jacc's caches, changing as it runs)
            return "it calls a function that jacc.jacobian made (whose caches change as it runs)"
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                v = cell.cell_contents
            except ValueError:
                return f"the variable {name!r} of {fn.__qualname__} is unset"
            if name == "__class__" and isinstance(v, type) and _record_class(v) \
                    and fn.__qualname__.startswith(v.__qualname__ + "."):  # (super(): Python's own cell)
                continue
            why = value(v, f"the variable {name!r} of {fn.__qualname__}")
            if why:
                return why
            g.cells.append((cell, Kept(v, copies)))
            g.names.append(name)
        for d in (fn.__defaults__ or ()), tuple((fn.__kwdefaults__ or {}).values()):
            for v in d:
                why = value(v, f"a default of {fn.__qualname__}")
                if why:
                    return why
                kept = Kept(v, copies)
                if kept.mutable:  # (an array default changed in place is seen; a rebound one by identity)
                    g.values.append(kept)
        g.functions.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
        for held in fn.__kwdefaults__, fn.__dict__:  # (a keyword default or an attribute set in place)
            if held:
                why = value(held, f"an attribute of {fn.__qualname__}")
                if why:
                    return why
                g.values.append(Kept(held, copies))
        return None

    for v in passed + bound:
        why = value(v, "an argument")
        if why:
            return why
    for v in bound:
        kept = Kept(v, copies)
        if kept.mutable:  # (a tuple of numbers or modules cannot change: no test on every call)
            g.values.append(kept)
    scanned = {code: _reads(code) for code in w.codes}
    stdlib = {code for code in w.codes if _file_kind(code) == STDLIB}  # (their reads guarded, their writes their own)
    read: set[tuple[int, str]] = set()
    while pending:  # the functions met so far, then the globals their code read (more functions)
        fn = pending.pop()
        if id(fn) not in seen:
            why = function(fn)
            if why:
                return why
        if pending:
            continue
        for code, space in w.codes.items():
            if code.co_filename == _COPY:
                continue
            for name in scanned[code][0]:
                if (id(space), name) in read:
                    continue
                read.add((id(space), name))
                v = _lookup(space, name)
                if v is _MISSING:  # (a NameError where it ran, caught: it must stay unset)
                    g.absent.append((space, name))
                    continue
                why = value(v, f"the global {name!r}" + (f" (read by {code.co_name} in {code.co_filename})"
                                                          if code in stdlib else ""))
                if why:
                    return why
                g.globals.append((space, name, Kept(v, copies)))
                g.names.append(name)
    for code, (_, writes) in scanned.items():
        if code in stdlib:
            continue
        if code not in writable and code.co_freevars:  # a closure that no guarded function carries
            return f"{code.co_name} reads variables of a function it cannot see"
        why = writes(writable.get(code, frozenset()))
        if why:
            return why
    g.passed = [Kept(v, copies) for v in passed]
    return g
