"""``np.array``, ``np.asarray`` and friends (``asanyarray``, ``ascontiguousarray``,
``asfortranarray``, ``asarray_chkfinite``, ``require``) of traced values, during a trace.

NumPy's array constructors are not dispatched to ``__array_function__``: ``np.array([x[0] * 2,
x[1]])`` or a defensive ``x = np.asarray(x)`` would make the traced values a plain array, and
:class:`~jacc.trace.Tracer` refuses that conversion. Ordinary NumPy code is written that way,
so while ``f`` runs on traced arguments (:func:`constructors`) the ``numpy`` module's
constructors are replaced by versions that give a traced result where one is needed: the tracer
itself, or a nested list holding traced values as ``np.stack`` of its rows. Anything else goes
to NumPy's own function; a call whose argument holds no traced value costs one Python call more.

Calls through the module (``np.asarray(x)``) are seen, and so are names bound to a replaced
function elsewhere (``from numpy import asarray`` or ``from scipy.linalg import expm`` in ``f``'s
module, in a module whose functions ``f`` calls, or in a closure): :class:`aliases` finds them from
the names ``f``'s code uses and swaps them too. The replacement is process-wide while any thread
traces (it passes other threads' arguments straight to NumPy), and made only for the functions
whose trace needs it (:func:`jacc.trace.record_call` learns which).

>>> import numpy as np, jacc
>>> jacc.jacobian(lambda x: np.array([x[0] * x[1], 2.0]))(np.array([3.0, 4.0]))
array([[4., 3.],
       [0., 0.]])
"""

from __future__ import annotations

import functools
import inspect
import operator
import os
import sys
import types
from typing import Any, Callable

import numpy as np

from . import locks
from .trace import Tracer, _ArrayConversion, _concretisation, _copy, call_site, code_key

_NAMES = ("array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray", "asarray_chkfinite", "require")
_ORIGINAL = {name: getattr(np, name) for name in _NAMES}
_NUMPY = vars(np)
_lock = locks.lock()
_users = [0]


#: Types that stand for traced values once their ``live()`` is false (jacc.buffers' views).
VIEWS: set[type] = set()


#: stand-ins for traced arrays that are made one where an array is built of them: type -> the
#: traced array (jacc.lanes.Lanes, a selection kept at full shape: the selection itself)
STANDS_FOR: dict[type, Callable[[Any], Tracer]] = {}


def _holds_tracer(obj: Any) -> bool:
    """Whether ``obj`` is a traced array or a list, tuple or dict holding one."""
    if isinstance(obj, Tracer) or type(obj) in STANDS_FOR:
        return True
    if type(obj) in VIEWS:
        return not obj.live()
    if isinstance(obj, dict):
        obj = obj.values()
    elif not isinstance(obj, (list, tuple)):
        return False
    return any(_holds_tracer(o) for o in obj)


def _nested(obj: Any) -> Any:
    """A tracer, a constant array, or the stack of a list's entries (rows first, as NumPy)."""
    if isinstance(obj, Tracer):
        return obj
    made = STANDS_FOR.get(type(obj))
    if made is not None:
        return made(obj)
    if isinstance(obj, (list, tuple)) and _holds_tracer(obj):
        parts = [_nested(o) for o in obj]
        shapes = {np.shape(p) for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"setting an array element with a sequence at {call_site()}: the entries have "
                             f"shapes {sorted(shapes)} (an inhomogeneous list)")
        return np.stack(parts)
    return _ORIGINAL["asarray"](obj, dtype=float)


#: NumPy functions whose first argument lists arrays (``np.concatenate([x, [x[0], 1.0]])``): each
#: entry of the list is an array-like, not the list itself; ``np.select`` lists two such.
_LISTING = {np.concatenate: (0,), np.stack: (0,), np.vstack: (0,), np.hstack: (0,), np.dstack: (0,),
            np.column_stack: (0,), np.linalg.multi_dot: (0,), np.select: (0, 1), np.choose: (1,), np.lexsort: (0,),
            np.histogramdd: (0,)}  # (D arrays of N points each: not the (D, N) array they would stack into)
#: Functions whose lists' nesting is their structure: left as they are.
_NESTING = frozenset({np.block, np.piecewise})


def _listed(a: Any) -> Any:
    return _nested(a) if type(a) in (list, tuple) and _holds_tracer(a) else a


def as_arrays(func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` of a NumPy function with every list or tuple that holds traced values
    made the traced array NumPy would make of it (``np.sum([a, b])``, ``np.append(x, [x[0]])``;
    NumPy's dispatch does not look inside lists). For a function that lists arrays
    (:data:`_LISTING`), each entry of that list instead."""
    for a in args:  # (every traced NumPy call passes here: the common case returns at once)
        if type(a) is list or type(a) is tuple:
            break
    else:
        if not kwargs or not any(type(v) is list or type(v) is tuple for v in kwargs.values()):
            return args, kwargs
    if func in _NESTING:
        return args, kwargs
    listing = _LISTING.get(func, ())
    # (a listing made a tuple: NumPy's dispatch of np.lexsort looks inside a tuple of keys only)
    args = tuple(tuple([_listed(e) for e in a]) if k in listing and type(a) in (list, tuple) else _listed(a)
                 for k, a in enumerate(args))
    return args, {k: _listed(v) for k, v in kwargs.items()}


def _with_arrays(original: Callable) -> Callable:
    """A maker's function: ``original`` called with :func:`as_arrays`' arguments (while a trace
    runs, for NumPy functions that users call with lists of traced values only, which NumPy's
    dispatch never sees)."""
    def call(*args, **kwargs):
        args, kwargs = as_arrays(original, args, kwargs)
        return original(*args, **kwargs)
    call.__name__, call.__doc__, call.__wrapped__ = original.__name__, original.__doc__, original
    call.swapped_for = original
    return call


def original(f: Any) -> Any:
    """The NumPy function that ``f`` stands in for while a trace runs (``f`` itself if none): a
    closure that held ``np.mean`` before the trace holds the stand-in during it (:class:`aliases`),
    and a message naming it should name NumPy's."""
    return getattr(f, "swapped_for", f)


def swap_lists_during_traces(functions: Any) -> None:
    """Let ``functions`` (NumPy's, jacc implements them) take lists of traced values while a
    trace runs: each in its module's namespace, unless that name is replaced already."""
    for module in ("numpy", "numpy.linalg", "numpy.fft"):
        taken = _SWAPS.get(module, {})
        space = vars(sys.modules[module])
        found = {f.__name__: _with_arrays for f in functions
                 if getattr(f, "__module__", None) == module and space.get(f.__name__) is f
                 and f.__name__ not in taken and f not in _NESTING and not isinstance(f, np.ufunc)}
        swap_during_traces(module, found)


def _traced(name: str, obj: Any, dtype: Any = None, ndmin: int = 0, copy: Any = None) -> Any:
    kind = None if dtype is None else np.dtype(dtype).kind
    if kind is not None and kind not in "fc":
        raise _concretisation(f"numpy.{name}(..., dtype={np.dtype(dtype)})")
    x = _nested(obj)
    if ndmin > np.ndim(x):
        x = np.reshape(x, (1,) * (ndmin - np.ndim(x)) + np.shape(x))
    if kind == "c":  # (as x.astype(complex): a complex value whose parts are traced, a new one)
        if not isinstance(x, Tracer):
            raise _concretisation(f"numpy.{name}(..., dtype={np.dtype(dtype)})")
        return x.astype(dtype)
    copies = copy is True or getattr(copy, "name", None) == "ALWAYS"  # (NumPy's _CopyMode has no truth value)
    # np.array copies (an in-place change stays its own); every constructor makes a scalar an array
    return _copy(x) if x is obj and (copies or (isinstance(x, Tracer) and x.tape.is_scalar(x))) else x


def _requirements(args: tuple, kwargs: dict) -> Any:
    """np.require's ``requirements`` argument (after ``a`` and ``dtype``)."""
    return (args[1:] or [kwargs.get("requirements")])[0]


def _relaid(name: str, x: Any, args: tuple, kwargs: dict) -> bool:
    """Whether NumPy's ``name`` copies traced ``x`` to lay it out as asked (np.asfortranarray of a
    C-contiguous array, np.ascontiguousarray(y.T), order=, require's 'C'/'F'): found by NumPy on a
    probe laid out as the user's array (:meth:`~jacc.trace.Tape.layout`)."""
    if not isinstance(x, Tracer) or not x.ndim:
        return False
    probe = x.tape.layout(x.name)
    if probe is None:
        return False
    if name in ("ascontiguousarray", "asfortranarray"):
        laid = _ORIGINAL[name](probe)
    elif name == "require":
        laid = _ORIGINAL[name](probe, None, _requirements(args, kwargs))
    else:
        order = args[1] if name in ("asarray", "asanyarray") and len(args) > 1 else kwargs.get("order")
        if order in (None, "K", "A"):
            return False
        laid = _ORIGINAL["asarray"](probe, order=order)
    return not np.may_share_memory(laid, probe)


def _constructor(name: str) -> Callable:
    original = _ORIGINAL[name]

    @functools.wraps(original)
    def make(obj, *args, **kwargs):
        try:
            made = original(obj, *args, **kwargs)
            after = _MADE.get(name)
            return made if after is None else after(obj, made)
        except _ArrayConversion as e:  # a traced value inside: NumPy asked it for a plain array
            e.undo()
            dtype = args[0] if args else kwargs.get("dtype")
            copy = kwargs.get("copy", name == "array")  # np.array copies unless told not to, the rest on copy=True
            if name == "require":  # (memory layout is NumPy's business; owning its data is a copy)
                asked = _requirements(args, kwargs) or ()
                copy = any(r in ("O", "OWNDATA") for r in ([asked] if isinstance(asked, str) else asked))
            made = _traced(name, obj, dtype, int(kwargs.get("ndmin", 0)) if name == "array" else 0, copy)
            if made is obj and _relaid(name, obj, args, kwargs):
                made = _copy(made)
            if name == "asarray_chkfinite" and not np.isfinite(made.value).all():
                where = call_site()
                raise ValueError(f"array must not contain infs or NaNs (numpy.asarray_chkfinite at {where})") from None
            return made
    return make


#: What a constructor's plain result becomes during a trace: ``after(obj, made)``, called by the
#: constructor (jacc.buffers makes ``np.array([0.0, 1.0])`` in ``f`` an array that can take
#: traced values).
_MADE: dict[str, Callable[[Any, np.ndarray], Any]] = {}
_REPLACEMENT = {name: _constructor(name) for name in _NAMES}


def traced_constructor(name: str) -> Callable:
    """NumPy's constructor ``name`` as it is while a trace runs (for modules that imported it under
    a name of their own: ``np.r_`` builds its pieces with ``array``)."""
    return _REPLACEMENT[name]

#: Other modules' functions replaced the same way while a trace runs, where the module is imported:
#: module name -> {name: make(original) -> replacement} (see :func:`swap_during_traces`).
_SWAPS: dict[str, dict[str, Callable[[Callable], Callable]]] = {}


#: Names whose use in ``f``'s own code turns the replacements on from its first trace: functions
#: whose refused conversions happen in compiled code that prints them (MINPACK) or garbles them.
_EAGER: set[str] = set()
_WANTS: dict[Any, bool] = {}  # code object -> whether its names include one of _EAGER
_EAGER_IDS: dict[str, Any] = {}  # "ids": of the eagerly replaced functions; "state": what they were found for


def swap_during_traces(module: str, makers: dict[str, Callable[[Callable], Callable]],
                       eager: bool = False) -> None:
    """While ``f`` runs on traced arguments, ``module.name`` (if ``module`` is imported) is
    ``makers[name](original)``: a function that gives traced results for traced arguments and
    calls ``original`` otherwise. Calls through the module are seen, and names bound to
    ``original`` elsewhere that :class:`aliases` finds. ``eager``: a function whose code names one
    of these (``so.fsolve(...)``) is traced with the replacements from the first time."""
    _SWAPS.setdefault(module, {}).update(makers)
    if eager:
        _EAGER.update(makers)
        _WANTS.clear()


def routed(impl: Callable, always: bool = False,
           traced: Callable[[Any], bool] | None = None) -> Callable[[Callable], Callable]:
    """A maker for :func:`swap_during_traces`: a call with a traced argument (with ``always``, every
    call while a trace runs) goes to ``impl(original, *args, **kwargs)``, the rest to the original.
    ``traced(arg)`` says what counts as traced (by default a traced array, or a list, tuple or
    dict holding one)."""
    holds = traced or _holds_tracer

    def make(original: Callable) -> Callable:
        def call(*args, **kwargs):
            if not (always or any(map(holds, args)) or any(map(holds, kwargs.values()))):
                return original(*args, **kwargs)
            return impl(original, *args, **kwargs)
        call.__name__, call.__doc__, call.__wrapped__ = original.__name__, original.__doc__, original
        return call
    return make


def replacement(run: Callable, always: bool = False) -> Callable[[Callable], Callable]:
    """:func:`routed` with the original's arguments bound by name and its defaults filled in:
    ``run(original, bound)`` (``always``: an equation's closure may hold traced values no argument
    shows)."""
    def make(original: Callable) -> Callable:
        sig = inspect.signature(original)

        def bound_run(original: Callable, *args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return run(original, bound)
        return routed(bound_run, always)(original)
    return make


def wants_swaps(f: Any) -> bool:
    """Whether ``f``, or a function of user code it calls (see :func:`_reachable`), names an eager
    replacement (found once per code object), or holds one under a name of its own (``alias =
    P.polyval``: NumPy's own polyval ran on the traced points, and paired a 2-d c's columns with
    them, silently; looked up at each call, as such a name may be rebound)."""
    key = code_key(f)
    found = _WANTS.get(key)
    if found is None:
        found = _WANTS[key] = bool(_EAGER) and ((hasattr(key, "co_names") and _names_any(key))
                                                or any(_names_any(fn.__code__) for fn in _reachable(f)))
    return found or (bool(_EAGER) and _holds_eager(f))


def _holds_eager(f: Any) -> bool:
    """Whether a name ``f`` or a function it calls reads, or a cell it closes over, holds a function
    replaced eagerly (:func:`swap_during_traces`)."""
    state = (len(_SWAPS), len(_EAGER), len(sys.modules))  # (a module imported since: looked up again)
    if _EAGER_IDS.get("state") != state:
        ids: set[int] = set()
        for module, makers in _SWAPS.items():
            space = vars(sys.modules[module]) if module in sys.modules else {}
            swap = _ACTIVE.get(module)  # (another thread's trace may hold the replacements in)
            for n in makers:
                if n in _EAGER and n in space:
                    v = space[n]
                    ids.add(id(swap.saved[n] if swap is not None and swap.made.get(n) is v else v))
        _EAGER_IDS.update(state=state, ids=frozenset(ids))
    eager = _EAGER_IDS["ids"]
    for fn in _reachable(f):
        space = fn.__globals__
        if any(id(space.get(n)) in eager for n in _names(fn.__code__)) or any(
                id(_contents(c)) in eager for c in fn.__closure__ or ()):
            return True
    return False


def _names_any(code: Any) -> bool:
    return not _EAGER.isdisjoint(code.co_names) or any(
        _names_any(c) for c in code.co_consts if hasattr(c, "co_names"))


class _Swap:
    """One module's replacements, made once from its originals (made again if they change)."""

    def __init__(self, space: dict, makers: dict[str, Callable[[Callable], Callable]]):
        self.space, self.makers = space, makers
        self.names = tuple(n for n in makers if n in space)
        self.get = operator.itemgetter(*self.names) if len(self.names) > 1 else (lambda d: (d[self.names[0]],))
        self.originals: tuple = ()
        self.saved: dict = {}
        self.made: dict = {}

    def swap_in(self) -> None:
        current = self.get(self.space)
        if current != self.originals:  # (the first time, or someone replaced one meanwhile)
            self.originals = current
            self.saved = dict(zip(self.names, current))
            self.made = {n: _ClassStandIn(self.makers[n](f), f) if isinstance(f, type) else self.makers[n](f)
                         for n, f in self.saved.items()}
        self.space.update(self.made)


class _ClassStandIn:
    """A class's replacement while a trace runs (``scipy.interpolate.BSpline``): called, the
    replacement; otherwise the class, so that ``BSpline.basis_element(...)``, its other attributes
    and ``isinstance(b, BSpline)`` keep working (a plain function had none of them)."""

    def __init__(self, call: Callable, cls: type):
        self._call, self._cls = call, cls
        self.__wrapped__ = self.swapped_for = cls

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._cls, name)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._cls)

    def __subclasscheck__(self, sub: type) -> bool:
        return issubclass(sub, self._cls)

    def __repr__(self) -> str:
        return repr(self._cls)


#: Class attributes replaced while a trace runs: (class, attribute, replacement); see
#: :func:`swap_method_during_traces`. Their originals, while swapped.
_METHODS: list[tuple[type, str, Callable, Callable]] = []  # (class, attribute, replacement, original)
_SAVED_METHODS: list[tuple[type, str, Any]] = []


_PENDING: list[tuple[str, str, Callable]] = []  # ("module:Class", attribute, make) until the module is imported


def swap_method_during_traces(cls: type | str, name: str, make: Callable[[Callable], Callable],
                              eager: bool = False) -> None:
    """While ``f`` runs on traced arguments, ``cls.name`` is ``make(original)`` (for objects made
    before the trace too, such as a module-level ``np.vectorize(...)``). ``cls`` may be named
    ``"module:Class"``: it is looked up at the first trace after that module is imported, so
    jacc never imports it (SciPy's). ``eager``: as :func:`swap_during_traces`' (a function whose
    code names ``name`` is traced with the replacements from the first time)."""
    if eager:
        _EAGER.add(name)
        _WANTS.clear()
    if isinstance(cls, str):
        _PENDING.append((cls, name, make))
    else:
        original = vars(cls)[name]
        _METHODS.append((cls, name, make(original), original))


def _resolve_pending() -> None:
    for entry in list(_PENDING):
        module, _, qualname = entry[0].partition(":")
        if module in sys.modules:
            _PENDING.remove(entry)
            swap_method_during_traces(functools.reduce(getattr, qualname.split("."), sys.modules[module]),
                                      *entry[1:])


_ACTIVE: dict[str, _Swap] = {}  # module name -> its swap, once the module is imported
_LIVE: list[_Swap] = []  # the same, as a list


_BEFORE: dict = {}  # numpy's constructors as found at swap-in (a user's own wrapper, say), put back after


def _swap_in() -> None:
    _BEFORE.update((name, _NUMPY[name]) for name in _NAMES)
    _NUMPY.update(_REPLACEMENT)
    if len(_ACTIVE) < len(_SWAPS):  # a module not imported yet, or not seen yet
        for module, makers in _SWAPS.items():
            mod = sys.modules.get(module)
            if module not in _ACTIVE and mod is not None and any(n in vars(mod) for n in makers):
                _ACTIVE[module] = _Swap(vars(mod), makers)
                _LIVE.append(_ACTIVE[module])
    for swap in _LIVE:
        swap.swap_in()
    if _PENDING:
        _resolve_pending()
    for cls, name, made, _ in _METHODS:
        _SAVED_METHODS.append((cls, name, vars(cls)[name]))
        setattr(cls, name, made)


def unseen_imports() -> bool:
    """Whether a module with replacements was imported since they were last put in (by ``f``
    itself, during its trace: a retry puts them in)."""
    return bool(unseen_modules())


def unseen_modules() -> frozenset:
    """The modules with replacements that are imported but have not had them put in (found again
    only when a module was imported or put in since: a trace asks twice)."""
    if len(_ACTIVE) >= len(_SWAPS):
        return frozenset()
    state = (len(sys.modules), len(_ACTIVE), len(_SWAPS))
    if _UNSEEN[0] != state:
        found = frozenset(module for module, makers in _SWAPS.items() if module not in _ACTIVE
                          and module in sys.modules and any(n in vars(sys.modules[module]) for n in makers))
        _UNSEEN[:] = [state, found]
    return _UNSEEN[1]


_UNSEEN: list = [None, frozenset()]


def _swap_out() -> None:
    _NUMPY.update(_BEFORE)
    for swap in _LIVE:
        swap.space.update(swap.saved)
    while _SAVED_METHODS:
        cls, name, original = _SAVED_METHODS.pop()
        setattr(cls, name, original)


_LIBRARIES = ("numpy", "scipy", "jacc")  # packages whose code is not searched for aliases


def _library_code(code: Any) -> bool:
    """Whether ``code`` is NumPy's, SciPy's or jacc's own (its file lies in one of those packages)."""
    found = _IN_LIBRARY.get(code.co_filename)
    if found is None:
        dirs = [os.path.dirname(m.__file__) + os.sep for m in map(sys.modules.get, _LIBRARIES)
                if m is not None and getattr(m, "__file__", None)]
        found = _IN_LIBRARY[code.co_filename] = code.co_filename.startswith(tuple(dirs))
    return found


_IN_LIBRARY: dict[str, bool] = {}
_DEPTH = 4  # how many calls deep (f, its helpers, theirs) aliases are looked for


_REPLACED: list = [None, {}]  # the swaps' originals when last asked, and _replaced()'s answer


def _replaced() -> dict[int, tuple[Callable, Callable]]:
    """id(original) -> (original, replacement) for every function (and method) swapped in now."""
    now = (tuple(swap.originals for swap in _LIVE), len(_METHODS))
    if now != _REPLACED[0]:
        found = {id(f): (f, _REPLACEMENT[n]) for n, f in _ORIGINAL.items()}
        for swap in _LIVE:
            for n, f in swap.saved.items():
                found[id(f)] = (f, swap.made[n])
        for _, _, made, original in _METHODS:
            found[id(original)] = (original, made)
        _REPLACED[:] = [now, found]
    return _REPLACED[1]


def _swapped_for(v: Any, replaced: dict) -> Any:
    """What ``v`` becomes during the trace: a replaced function's replacement, a method bound to an
    object (``lp = scipy.stats.norm.logpdf``) bound to the replacement; None if neither."""
    found = replaced.get(id(v))
    if found is not None and found[0] is v:
        return found[1]
    if isinstance(v, types.MethodType):
        found = replaced.get(id(v.__func__))
        if found is not None and found[0] is v.__func__:
            return types.MethodType(found[1], v.__self__)
    return None


def _names(code: Any) -> set[str]:
    """The global and attribute names ``code`` and the functions defined in it use."""
    out = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            out |= _names(c)
    return out


def _called(f: Any) -> Any:
    """The function a call of ``f`` runs: a bound method's, and the innermost one of nested
    ``functools.partial`` objects (their holders are that function's); ``f`` itself otherwise."""
    while isinstance(f, functools.partial):
        f = f.func
    return getattr(f, "__func__", f)


def _reachable(f: Any):
    """``f`` and the functions of user code it calls by name, to :data:`_DEPTH` calls deep (through
    its globals, modules of user code and closures; NumPy's, SciPy's and jacc's code is not entered)."""
    seen: set[int] = set()

    def visit(fn: Any, depth: int):
        fn = _called(fn)
        if not isinstance(fn, types.FunctionType):
            call = next((vars(c)["__call__"] for c in type(fn).__mro__ if "__call__" in vars(c)), None)
            if isinstance(call, types.FunctionType) and depth == 0:
                yield from visit(call, depth)
            return
        if depth > _DEPTH or id(fn.__code__) in seen or _library_code(fn.__code__):
            return
        seen.add(id(fn.__code__))
        yield fn
        space, names = fn.__globals__, _names(fn.__code__)
        for name in names:
            v = space.get(name)
            if isinstance(v, types.ModuleType):
                if v.__name__.split(".")[0] not in _LIBRARIES:  # mymodule.helper(x)
                    for n in names:
                        yield from visit(getattr(v, n, None), depth + 1)
            else:
                yield from visit(v, depth + 1)
        for cell in fn.__closure__ or ():
            yield from visit(_contents(cell), depth + 1)

    yield from visit(f, 0)


def _holders(f: Any, replaced: dict) -> tuple[list[tuple[Any, str | None, Any, Any]], list[tuple]]:
    """Where a replaced function is bound outside its module, for ``f`` and the functions it
    calls by name: (module dict, name, original, replacement) or (closure cell, None, …); and
    every (holder, name, value) looked at, which must stay as it was for the first list to hold."""
    found: list = []
    scanned: list = []
    for fn in _reachable(f):
        space, names = fn.__globals__, _names(fn.__code__)
        for name in names:
            v = space.get(name)
            scanned.append((space, name, v))
            if isinstance(v, types.ModuleType) and v.__name__.split(".")[0] not in _LIBRARIES:
                # mymodule.helper(x): _reachable followed its attributes, which may be rebound
                scanned.extend((vars(v), n, vars(v).get(n)) for n in names)
            made = _swapped_for(v, replaced)
            if made is not None:
                found.append((space, name, v, made))
        for cell in fn.__closure__ or ():
            v = _contents(cell)
            scanned.append((cell, None, v))
            made = _swapped_for(v, replaced)
            if made is not None:
                found.append((cell, None, v, made))
    return found, scanned


def _unchanged(scanned: list[tuple]) -> bool:
    """Whether every name :func:`_holders` looked at still holds what it held (or, while another
    trace swapped it, that trace's replacement): ``fn = scipy.ndimage.correlate`` rebound after a
    trace of ``f`` that calls ``fn`` ran SciPy's own function on traced values."""
    for holder, name, v in scanned:
        now = holder.get(name) if name is not None else _contents(holder)
        if now is not v and (id(holder), name) not in _HELD:
            return False
    return True


#: f's code -> (the _replaced() it was found for, f's closure cells, its holders, what was scanned): functions made by
#: one ``lambda`` share its code but not what their cells hold, so a hit needs the very same cells
#: (kept here, so that their ids cannot be reused by another function's; one set per code)
_FOUND: dict[Any, tuple[dict, tuple, list, list]] = {}
_HELD: dict[tuple[int, str | None], list] = {}  # (id(holder), name) -> [users, original]


class aliases:
    """Inside :class:`constructors`, for ``f``: names bound to replaced functions outside their
    modules (``from scipy.linalg import expm``) are swapped too, and ``as`` gives the function to
    call (the replacement, when ``f`` is itself a replaced function such as ``scipy.linalg.expm``).

    >>> import numpy as np, jacc
    >>> from scipy.linalg import expm
    >>> J = jacc.jacobian(lambda a: expm(a)[0, 1])(np.zeros((2, 2)))
    >>> J.tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """

    __slots__ = ("f", "taken")

    def __init__(self, f: Callable):
        self.f, self.taken = f, []

    def __enter__(self) -> Callable:
        with _lock:
            replaced = _replaced()
            called = _called(self.f)
            key = getattr(called, "__code__", None) or type(called)
            cells = getattr(called, "__closure__", None) or ()
            known = _FOUND.get(key)
            if known is None or known[0] is not replaced or not (
                    len(known[1]) == len(cells) and all(map(operator.is_, known[1], cells))
                    and _unchanged(known[3])):
                known = _FOUND[key] = (replaced, cells, *_holders(self.f, replaced))
            for holder, name, original, made in known[2]:
                held = _HELD.get((id(holder), name))
                if held is not None:
                    held[0] += 1
                elif (holder.get(name) if name is not None else _contents(holder)) is original:
                    _HELD[id(holder), name] = [1, original]
                    _put(holder, name, made)
                else:  # rebound since: leave it
                    continue
                self.taken.append((holder, name))
            made = _swapped_for(self.f, replaced)
        return self.f if made is None else made

    def __exit__(self, *exc) -> None:
        with _lock:
            for holder, name in self.taken:
                held = _HELD[id(holder), name]
                held[0] -= 1
                if held[0] == 0:
                    del _HELD[id(holder), name]
                    _put(holder, name, held[1])
            self.taken.clear()


def _contents(cell: Any) -> Any:
    """A closure cell's value (None while it is empty)."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _put(holder: Any, name: str | None, value: Any) -> None:
    if name is None:
        holder.cell_contents = value
    else:
        holder[name] = value


class constructors:
    """While inside (nestable, any thread), ``numpy``'s array constructors (and the functions of
    :func:`swap_during_traces`) accept traced values."""

    __slots__ = ()

    def __enter__(self) -> "constructors":
        with _lock:
            _users[0] += 1
            if _users[0] == 1:
                _swap_in()
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            _users[0] -= 1
            if _users[0] == 0:
                _swap_out()
