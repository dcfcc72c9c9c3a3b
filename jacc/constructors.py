"""``np.array``, ``np.asarray`` and friends of traced values, during a trace.

NumPy's array constructors are not dispatched to ``__array_function__``: ``np.array([x[0] * 2,
x[1]])`` or a defensive ``x = np.asarray(x)`` would make the traced values a plain array, and
:class:`~jacc.trace.Tracer` refuses that conversion. Ordinary NumPy code is written that way,
so while ``f`` runs on traced arguments (:func:`constructors`) the ``numpy`` module's
constructors are replaced by versions that give a traced result where one is needed: the tracer
itself, or a nested list holding traced values as ``np.stack`` of its rows. Anything else goes
to NumPy's own function; a call whose argument holds no traced value costs one Python call more.

Only calls through the module (``np.asarray(x)``) are seen; a name imported before the trace
(``from numpy import asarray``) keeps NumPy's function and its refusal. The replacement is
process-wide while any thread traces (it passes other threads' arguments straight to NumPy), and
made only for the functions whose trace needs it (:func:`jacc.trace.record_call` learns which).

>>> import numpy as np, jacc
>>> jacc.jacobian(lambda x: np.array([x[0] * x[1], 2.0]))(np.array([3.0, 4.0]))
array([[4., 3.],
       [0., 0.]])
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
import threading
from typing import Any, Callable

import numpy as np

from .trace import Tracer, _ArrayConversion, _concretisation, _copy, call_site

_NAMES = ("array", "asarray", "asanyarray", "ascontiguousarray")
_ORIGINAL = {name: getattr(np, name) for name in _NAMES}
_NUMPY = vars(np)
_lock = threading.Lock()
_users = [0]


#: Types that stand for traced values once their ``live()`` is false (jacc.buffers' views).
VIEWS: set[type] = set()


def _holds_tracer(obj: Any) -> bool:
    """Whether ``obj`` is a traced array or a list, tuple or dict holding one."""
    if isinstance(obj, Tracer):
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
    if isinstance(obj, (list, tuple)) and _holds_tracer(obj):
        parts = [_nested(o) for o in obj]
        shapes = {np.shape(p) for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"setting an array element with a sequence at {call_site()}: the entries have "
                             f"shapes {sorted(shapes)} (an inhomogeneous list)")
        return np.stack(parts)
    return _ORIGINAL["asarray"](obj, dtype=float)


def _traced(name: str, obj: Any, dtype: Any = None, ndmin: int = 0, copy: Any = None) -> Any:
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise _concretisation(f"numpy.{name}(..., dtype={np.dtype(dtype)})")
    x = _nested(obj)
    if ndmin > np.ndim(x):
        x = np.reshape(x, (1,) * (ndmin - np.ndim(x)) + np.shape(x))
    copies = copy is True or getattr(copy, "name", None) == "ALWAYS"  # (NumPy's _CopyMode has no truth value)
    return _copy(x) if x is obj and copies else x  # np.array copies (an in-place change stays its own)


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
            return _traced(name, obj, dtype, int(kwargs.get("ndmin", 0)) if name == "array" else 0, copy)
    return make


#: What a constructor's plain result becomes during a trace: ``after(obj, made)``, called by the
#: constructor (jacc.buffers makes ``np.array([0.0, 1.0])`` in ``f`` an array that can take
#: traced values).
_MADE: dict[str, Callable[[Any, np.ndarray], Any]] = {}
_REPLACEMENT = {name: _constructor(name) for name in _NAMES}

#: Other modules' functions replaced the same way while a trace runs, where the module is imported:
#: module name -> {name: make(original) -> replacement} (see :func:`swap_during_traces`).
_SWAPS: dict[str, dict[str, Callable[[Callable], Callable]]] = {}


#: Names whose use in ``f``'s own code turns the replacements on from its first trace: functions
#: whose refused conversions happen in compiled code that prints them (MINPACK) or garbles them.
_EAGER: set[str] = set()
_WANTS: dict[Any, bool] = {}  # code object -> whether its names include one of _EAGER


def swap_during_traces(module: str, makers: dict[str, Callable[[Callable], Callable]],
                       eager: bool = False) -> None:
    """While ``f`` runs on traced arguments, ``module.name`` (if ``module`` is imported) is
    ``makers[name](original)``: a function that gives traced results for traced arguments and
    calls ``original`` otherwise. Only calls through the module are seen, as for NumPy's
    constructors. ``eager``: a function whose code names one of these (``so.fsolve(...)``) is
    traced with the replacements from the first time."""
    _SWAPS.setdefault(module, {}).update(makers)
    if eager:
        _EAGER.update(makers)
        _WANTS.clear()


def replacement(run: Callable, always: bool = False) -> Callable[[Callable], Callable]:
    """A maker for :func:`swap_during_traces`: a call with a traced argument (with ``always``, every
    call while a trace runs: an equation's closure may hold traced values no argument shows) goes to
    ``run(original, bound)``, the original's arguments bound by name with its defaults filled in;
    the rest to the original."""
    def make(original: Callable) -> Callable:
        sig = inspect.signature(original)

        def call(*args, **kwargs):
            if not (always or any(map(_holds_tracer, args)) or any(map(_holds_tracer, kwargs.values()))):
                return original(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return run(original, bound)
        call.__name__, call.__doc__, call.__wrapped__ = original.__name__, original.__doc__, original
        return call
    return make


def wants_swaps(code: Any) -> bool:
    """Whether ``code`` (or a function defined in it) names an eager replacement."""
    found = _WANTS.get(code)
    if found is None:
        found = _WANTS[code] = bool(_EAGER) and hasattr(code, "co_names") and _names_any(code)
    return found


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
            self.made = {n: self.makers[n](f) for n, f in self.saved.items()}
        self.space.update(self.made)


#: Class attributes replaced while a trace runs: (class, attribute, replacement); see
#: :func:`swap_method_during_traces`. Their originals, while swapped.
_METHODS: list[tuple[type, str, Callable]] = []
_SAVED_METHODS: list[tuple[type, str, Any]] = []


_PENDING: list[tuple[str, str, Callable]] = []  # ("module:Class", attribute, make) until the module is imported


def swap_method_during_traces(cls: type | str, name: str, make: Callable[[Callable], Callable]) -> None:
    """While ``f`` runs on traced arguments, ``cls.name`` is ``make(original)`` (for objects made
    before the trace too, such as a module-level ``np.vectorize(...)``). ``cls`` may be named
    ``"module:Class"``: it is looked up at the first trace after that module is imported, so
    jacc never imports it (SciPy's)."""
    if isinstance(cls, str):
        _PENDING.append((cls, name, make))
    else:
        _METHODS.append((cls, name, make(vars(cls)[name])))


def _resolve_pending() -> None:
    for entry in list(_PENDING):
        module, _, qualname = entry[0].partition(":")
        if module in sys.modules:
            _PENDING.remove(entry)
            swap_method_during_traces(functools.reduce(getattr, qualname.split("."), sys.modules[module]),
                                      *entry[1:])


_ACTIVE: dict[str, _Swap] = {}  # module name -> its swap, once the module is imported
_LIVE: list[_Swap] = []  # the same, as a list


def _swap_in() -> None:
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
    for cls, name, made in _METHODS:
        _SAVED_METHODS.append((cls, name, vars(cls)[name]))
        setattr(cls, name, made)


def unseen_imports() -> bool:
    """Whether a module with replacements was imported since they were last put in (by ``f``
    itself, during its trace: a retry puts them in)."""
    return len(_ACTIVE) < len(_SWAPS) and any(
        module not in _ACTIVE and module in sys.modules and any(n in vars(sys.modules[module]) for n in makers)
        for module, makers in _SWAPS.items())


def _swap_out() -> None:
    _NUMPY.update(_ORIGINAL)
    for swap in _LIVE:
        swap.space.update(swap.saved)
    while _SAVED_METHODS:
        cls, name, original = _SAVED_METHODS.pop()
        setattr(cls, name, original)


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
