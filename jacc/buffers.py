"""Arrays that ``f`` makes and then fills with traced values: ``out = np.zeros(n); out[i] = ...``.

Preallocating an array and writing results into it is how much NumPy code is written (a rotation
matrix from ``np.eye(3)``, a residual vector from ``np.zeros(n)``). A plain NumPy array cannot hold
a traced value, so a trace that writes one into it stops (:class:`jacc.trace._PlainWrite`) and
runs ``f`` again — once per function, as for :mod:`jacc.constructors` — with NumPy's creation
functions (``zeros``, ``ones``, ``empty``, ``full``, ``eye``, ``identity``, the ``*_like`` of plain
arrays, ``np.array`` of a list of numbers, and copies of a plain array by ``np.copy`` or
``np.array``) giving the code of ``f`` a :class:`Buffer` instead.

A buffer acts as its plain array (operators, ufuncs, NumPy functions, methods and attributes go to
the array) until a traced value is written into it — by item assignment, an in-place operator,
``out=``, or a writer such as ``np.copyto``, ``np.fill_diagonal`` or ``np.add.at`` — when it
becomes a traced array in place (a constant array with the traced entries written in, see
``Tracer.__setitem__``), so every name for it sees the change, as in NumPy. Its views taken by
indexing or as attributes (``out[i]``, ``for row in out``, ``out.T``) are :class:`_View` objects:
writes through them go to the buffer (``out[i][j] = x``), and reads through them see its current
entries, also after it became traced (read afresh at each use). A plain array sharing its memory
(``np.asarray(out)``) could not see a traced write: while one is still in use, the write is
refused.

Only calls made by the code of ``f`` are served buffers, and those of the libraries in
:data:`jacc.trace.SERVED_LIBRARIES` (``scipy.integrate``, so ``solve_ivp``'s Runge–Kutta methods trace); other
calls from NumPy, SciPy or jacc get NumPy's arrays, and so does compiled code that calls them
(NumPy's random generators do): a call is served only where the calling line's own call is the
creation function, which Python 3.11's instruction positions tell (on Python 3.10 nothing is
served, and the write is refused as before). Only float arrays are served. A buffer is not an
``np.ndarray`` instance (``isinstance`` says so).

>>> import numpy as np, jacc
>>> def rotation(t):
...     r = np.eye(2)
...     r[0, 0] = r[1, 1] = np.cos(t)
...     r[0, 1], r[1, 0] = -np.sin(t), np.sin(t)
...     return r
>>> np.round(jacc.jacobian(rotation)(np.pi / 2), 12) + 0.0  # [[−sin, −cos], [cos, −sin]]
array([[-1.,  0.],
       [ 0., -1.]])
"""

from __future__ import annotations

import contextlib
import dis
import functools
import sys
import threading
import weakref
from typing import Any, Callable

import numpy as np

from . import trace
from .constructors import _MADE, VIEWS, _holds_tracer, swap_during_traces
from .lanes import Lanes
from .lanes import assign as lanes_assign
from .trace import (
    Tracer,
    UnsupportedOperationError,
    _Held,
    _in_library,
    _Num,
    _set_items,
    _take,
    _take_whole,
    call_site,
    served_module,
)

_state = threading.local()  # .on: this thread's trace serves buffers


@contextlib.contextmanager
def held():
    """While inside, this thread's calls of the creation functions from user code give buffers."""
    before = getattr(_state, "on", False)
    _state.on = True
    try:
        yield
    finally:
        _state.on = before


def _plain(obj: Any, buffers: bool = True) -> Any:
    """``obj`` with every buffer in it replaced by its array (lists, tuples and dicts followed);
    with ``buffers=False`` only the views of buffers (by the entries they view)."""
    if type(obj) is Buffer:
        return obj.value if buffers else obj
    if type(obj) is _View:
        return obj.current()
    if type(obj) in (list, tuple):
        return type(obj)(_plain(o, buffers) for o in obj)
    if type(obj) is dict:
        return {k: _plain(v, buffers) for k, v in obj.items()}
    return obj


class _Early:
    """A buffer's own state before it becomes traced: weak references to the plain views of it
    handed out, and the traced elements written in and not yet placed ({flat position: value})."""

    __slots__ = ("lent", "held")

    def __init__(self):
        self.lent: list = []
        self.held: dict[int, Tracer] = {}


def _element(index: Any, shape: tuple) -> int | None:
    """The flat position ``index`` names if it is one element (ints, one per axis), else None."""
    if type(index) is not tuple:
        index = (index,)
    if len(index) != len(shape):
        return None
    pos = 0
    for i, n in zip(index, shape):
        if not isinstance(i, (int, np.integer)) or isinstance(i, (bool, np.bool_)) or not -n <= i < n:
            return None  # (out of range: NumPy's own error, from the general path)
        pos = pos * n + int(i) % n
    return pos


def _basic(index: Any) -> bool:
    """Whether ``index`` is basic indexing (ints, slices, ``...``, ``None``): NumPy gives a view."""
    for i in (index if type(index) is tuple else (index,)):
        if not (i is None or i is Ellipsis or isinstance(i, slice)
                or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)))):
            return False
    return True


def _snapshot(t: Tracer) -> Tracer:
    """Another object for ``t``'s vertex: an in-place change of one (x += 1) leaves the other."""
    return _Num(t.tape, t.name, t.num) if type(t) is _Num else Tracer(t.tape, t.name, t.value)


def _settling(method: Callable) -> Callable:
    """``method`` of a buffer, run on the traced array the buffer becomes once its held elements
    are placed (anything but reading or writing one element places them, see Buffer.settle)."""
    name = {"_get": "__getitem__", "_set": "__setitem__"}.get(method.__name__, method.__name__)

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        settle_all((args, kwargs))
        if type(self) is _View:
            target = self.resolved() if name != "__array_function__" else self  # (that one resolves itself)
            if target is not self:  # the buffer's entries it views, once traced
                return getattr(target, name)(*args, **kwargs)
            return method(self, *args, **kwargs)
        if type(self) is Buffer and self.tape.held:
            self.settle()
        if type(self) is not Buffer:  # a traced array now: its own method
            return getattr(self, name)(*args, **kwargs)
        return method(self, *args, **kwargs)
    return run


def settle_all(obj: Any) -> None:
    """Place the held elements of every buffer in ``obj`` (lists, tuples and dicts followed)."""
    if not trace._HOLDING[0]:
        return
    if type(obj) is Buffer:
        if obj.tape.held:
            obj.settle()
    elif type(obj) is _View:  # (a view taken while its buffer held entries: b[:2] of b[0] = x[0])
        settle_all(obj.root)
    elif type(obj) in (list, tuple):
        for o in obj:
            settle_all(o)
    elif type(obj) is dict:
        for o in obj.values():
            settle_all(o)


class Buffer(_Held):
    """A float array ``f`` made (``np.zeros(3)``), acting as that array until a traced value is
    written into it; it then becomes a :class:`~jacc.trace.Tracer` in place. ``value`` is the
    array; ``tape`` its :class:`_Early` state.

    Single traced elements written in (``x[i + 1] = x[i] * 0.5``, the loop that fills an array
    one entry at a time) are held and read back as they are, and placed all at once, by one
    ``put``, when the array is used otherwise: filling n entries costs O(n), not O(n²)."""

    __slots__ = ()
    __array_priority__ = 999  # (a traced operand's protocols run first)
    __hash__ = None

    def __init__(self, value: np.ndarray):
        self.value, self.name, self.tape = value, None, _Early()

    # (shape, ndim, size, dtype and len(): jacc.trace._ValueShaped)

    # -- views handed out, and the change into a traced array ------------------------------------
    def _lend(self, r: Any) -> Any:
        """``r``, remembered if it is a plain array sharing memory with the buffer's."""
        if isinstance(r, np.ndarray) and np.may_share_memory(r, self.value):
            if r is self.value:
                r = r.view()
            lent = self.tape.lent
            if len(lent) >= 64:  # (a loop over slices: keep the live ones only)
                lent[:] = [ref for ref in lent if ref() is not None]
            lent.append(weakref.ref(r))
        elif type(r) in (tuple, list):
            for o in r:
                self._lend(o)
        return r

    def release(self) -> None:
        """Called as a traced value is written in: refuse while a plain view is still in use."""
        if any(ref() is not None for ref in self.tape.lent):
            raise UnsupportedOperationError(
                f"a traced value is written at {call_site()} into an array that has plain views still in use "
                "(a slice, a row of a loop over it, a transpose, or np.asarray of it, taken before), which NumPy "
                "would change too and a trace cannot follow; write the traced values first and take views after "
                "(or del a view no longer needed), or build the array with np.stack, np.concatenate or np.where")

    def settle(self) -> None:
        """Place the held elements (one stack and one ``put``): the buffer becomes traced."""
        held = self.tape.held
        positions = sorted(held)
        values = np.stack([held[p] for p in positions])
        held.clear()
        trace._HOLDING[0] -= 1
        shape = self.value.shape
        index = np.unravel_index(np.array(positions), shape) if shape else ()
        _take(self, _set_items(self.value, index, values if shape else values[0]))

    # -- one element: held or read back without placing anything ---------------------------------
    def __getitem__(self, index):
        pos = _element(index, self.value.shape)
        if pos is not None:
            held = self.tape.held.get(pos)
            return self.value[index] if held is None else _snapshot(held)
        if self.tape.held and _basic(index):  # a view (out[i] of out[i][j] = x): nothing placed yet
            made = self._view(self.value[index])
            if type(made) is _View:
                return made
        return self._get(index)

    def __setitem__(self, index, value) -> None:
        pos = _element(index, self.value.shape)
        if pos is not None and isinstance(value, Tracer) and not value.shape:
            self.release()  # (a plain view would see the write)
            held = self.tape.held
            if not held:
                trace._HOLDING[0] += 1
            held[pos] = _snapshot(value)
        elif pos is not None and not _holds_tracer(value) and type(value) is not Buffer:
            self.tape.held.pop(pos, None)
            self.value[index] = value
        else:
            self._set(index, value)

    # -- anything else: the held elements placed first -------------------------------------------
    @_settling
    def _get(self, index):
        return self._view(self.value[_plain(index)])

    def _view(self, r: Any) -> Any:
        """``r``, a result computed from the buffer's array: a :class:`_View` where it is a view
        of that array (writes through it reach the buffer), else as :meth:`_lend` keeps it."""
        base = self.value if type(self) is Buffer else self.base
        root = self if type(self) is Buffer else self.root
        if (type(r) is np.ndarray and r.ndim and base.ndim and r.base is not None and base.flags.c_contiguous
                and np.may_share_memory(r, base) and all(st % base.itemsize == 0 for st in r.strides)):
            return _View(root, base, r)
        return self._lend(r)

    def current(self) -> Any:
        """What the buffer stands for now: its array (a traced buffer is a Tracer)."""
        return self.value

    @_settling
    def _set(self, index, value) -> None:
        if type(value) is Lanes:  # y = np.zeros(n); y[m] = g(x[m]) (jacc.lanes)
            r = lanes_assign(self.value.copy(), index, value)
            if r is not None:
                self.release()
                _take(self, r)
                return
            value = value.gathered()
        index = _plain(index)
        if type(value) is _View:  # (the entries it views, traced or not)
            value = value.current()
        if _holds_tracer(value):
            self.release()  # (before the write takes views of its own)
            r = _set_items(self.value, index, value)
            if isinstance(r, Tracer):  # (an empty selection writes nothing)
                _take(self, r)
        else:
            self.value[index] = _plain(value)

    @_settling
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "at" and inputs and inputs[0] is self and _holds_tracer(inputs[1:]):
            handler = trace._UFUNC_METHODS.get((ufunc.__name__, "at"))
            if handler is not None:
                return handler(*inputs, **kwargs)
        out = kwargs.get("out")
        if out is not None and _holds_tracer(inputs):  # np.add(a, x, out=buffer)
            outs = out if isinstance(out, tuple) else (out,)
            if method == "__call__" and len(outs) == 1 and outs[0] is self:
                rest = {k: v for k, v in kwargs.items() if k != "out"}
                result = ufunc(*_plain(inputs), **_plain(rest))
                if type(self) is _View:
                    self[...] = result
                    return self
                return _take_whole(self, result)
        return self._lend(getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs)))

    @_settling
    def __array_function__(self, func, types, args, kwargs):
        if type(self) is _View and (_holds_tracer((args, kwargs)) or not self.live()):
            if args and args[0] is self and func in _WRITERS:
                if func is _COPYTO and len(args) == 2 and not kwargs:
                    self[...] = args[1]
                    return None
                _refuse_view_writer(f"np.{func.__name__}")
            if not self.live():  # the buffer's traced entries it views stand in for it, in every argument (other
                return func(*_plain(args, False), **_plain(kwargs, False))  # buffers, np.copyto(c, v)'s c, stay)
        if args and args[0] is self and func in _WRITERS and _holds_tracer((args[1:], kwargs)):
            return trace._call(trace._FUNCTIONS[func], f"numpy.{func.__name__}", args, kwargs)
        return self._lend(func(*_plain(args), **_plain(kwargs)))

    @_settling
    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.value, dtype=dtype, copy=True)
        return self._lend(self.value.view() if dtype is None else self.value.astype(dtype, copy=False))

    def __iter__(self):
        base = self.value
        if type(self) is Buffer and base.ndim > 1 and base.flags.c_contiguous:
            # rows that stay views of this buffer after a write through one makes it traced
            return (_View(self, base, base[i]) for i in range(len(base)))
        return (self[i] for i in range(len(base)))

    @property
    def flat(self) -> Any:
        """NumPy's ``out.flat``, whose writes may be traced (``out.flat[2:4] = x[:2]``)."""
        settle_all(self)
        return trace._Flat(self) if type(self) in (Buffer, _View) else self.flat  # (traced once settled)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if self.tape.held:
            self.settle()
            return getattr(self, name)  # the traced array's
        attr = getattr(self.value, name)
        if not callable(attr):
            return self._view(attr)
        handler = trace._METHODS.get(name)

        @functools.wraps(attr)
        def method(*args, **kwargs):
            settle_all((args, kwargs))
            if type(self) is _View:
                if not self.live():  # (its buffer became traced meanwhile)
                    return getattr(self.resolved(), name)(*args, **kwargs)
            elif type(self) is not Buffer:  # (it became traced meanwhile)
                return getattr(self, name)(*args, **kwargs)
            if name in _WRITER_METHODS and handler is not None and _holds_tracer((args, kwargs)):
                return handler(self, *_plain(args, False), **_plain(kwargs, False))
            if name == "copy":
                return Buffer(attr(*args, **kwargs))
            return self._view(attr(*_plain(args), **_plain(kwargs)))
        return method

    def __copy__(self) -> Any:
        if self.tape.held:
            self.settle()
            return trace._copy(self)  # (a traced array now: its copy, as np.copy makes)
        return Buffer(self.value.copy())

    def __deepcopy__(self, memo) -> Any:
        return self.__copy__()


def _binary(dunder: str) -> Callable:
    def op(self, other):
        return getattr(self.value, dunder)(_plain(other))
    op.__name__ = dunder
    return _settling(op)


def _unary(dunder: str) -> Callable:
    def op(self):
        return getattr(self.value, dunder)()
    op.__name__ = dunder
    return _settling(op)


def _in_place(dunder: str) -> Callable:
    """``a op= x``: a traced ``x`` makes the buffer a traced array holding ``a op x``."""
    def op(self, other):
        if _holds_tracer(other):
            self.release()
            return _take_whole(self, getattr(self.value, f"__{dunder}__")(other))
        getattr(self.value, f"__i{dunder}__")(_plain(other))
        return self
    op.__name__ = f"__i{dunder}__"
    return _settling(op)


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
            "lshift", "rshift", "divmod"):
    setattr(Buffer, f"__{_op}__", _binary(f"__{_op}__"))
    setattr(Buffer, f"__r{_op}__", _binary(f"__r{_op}__"))
    if _op != "divmod":
        setattr(Buffer, f"__i{_op}__", _in_place(_op))
for _op in ("lt", "le", "gt", "ge", "eq", "ne", "format", "contains"):
    setattr(Buffer, f"__{_op}__", _binary(f"__{_op}__"))
for _op in ("neg", "pos", "abs", "invert", "repr", "str", "bool", "float", "int", "index"):
    setattr(Buffer, f"__{_op}__", _unary(f"__{_op}__"))

class _View(Buffer):
    """A view of a buffer's array (``row = out[i]``, ``out[i][j] = x``, ``for row in out``,
    ``out.T``): the plain view while the buffer holds no traced value; after that, the buffer's
    entries it views, read afresh at each use, as NumPy's views see their base change. Writes go
    to the buffer, at the entries the view's memory is (``base``: the buffer's array when the view
    was taken, C-contiguous)."""

    __slots__ = ("root", "base")

    def __init__(self, root: Buffer, base: np.ndarray, value: np.ndarray):
        self.value, self.name, self.tape = value, None, root.tape
        self.root, self.base = root, base

    def live(self) -> bool:
        """Whether the plain view still shows the buffer (it holds no traced value)."""
        root = self.root
        return type(root) is Buffer and not root.tape.held and root.value is self.base

    def positions(self) -> np.ndarray:
        """The flat positions in the buffer of the view's entries."""
        size = self.base.itemsize
        at = np.full(self.value.shape, (self.value.__array_interface__["data"][0]
                                        - self.base.__array_interface__["data"][0]) // size, dtype=np.intp)
        for axis, (n, stride) in enumerate(zip(self.value.shape, self.value.strides)):
            at += (np.arange(n) * (stride // size)).reshape((n,) + (1,) * (self.value.ndim - axis - 1))
        return at

    def _at(self, index: Any = Ellipsis) -> tuple:
        return np.unravel_index(self.positions()[_plain(index)], self.base.shape)

    def current(self) -> Any:
        """The plain view while live, else the buffer's entries it views (traced)."""
        return self.value if self.live() else self.root[self._at()]

    def resolved(self) -> Any:
        """The view itself while live, else :meth:`current`."""
        return self if self.live() else self.current()

    def __getitem__(self, index):
        index = _plain(index)
        if self.live():
            return self._view(self.value[index])
        if _basic(index):  # a view of the view (writable, as NumPy's), or one entry
            sub = self.value[index]
            if type(sub) is np.ndarray and sub.ndim:
                return _View(self.root, self.base, sub)
            return self.root[self._at(index)]  # (held entries are read back, nothing placed)
        return self.resolved()[index]

    def __setitem__(self, index, value) -> None:
        settle_all(value)  # (a buffer holding traced entries is traced from here on)
        if self.live() and not _holds_tracer(value) and type(value) is not _View:
            self.value[_plain(index)] = _plain(value)  # shared memory: the buffer sees it
            return
        if type(value) is _View:
            value = value.current()
        root = self.root
        if isinstance(root, Tracer) and root.tape._pending is not None and value is root.tape._pending[0]:
            root.tape._pending = None  # v[i] op= y: its write-back, to the buffer's entries here
        root[self._at(index)] = value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "at" and inputs and inputs[0] is self:  # np.add.at(v, i, x): on the entries v views
            settle_all((inputs, kwargs))
            if self.live() and not _holds_tracer((inputs[1:], kwargs)):
                return ufunc.at(self.value, *_plain(inputs[1:]), **_plain(kwargs))  # (shared memory)
            work = Buffer(self.value.copy()) if self.live() else self.current()
            ufunc.at(work, *inputs[1:], **kwargs)
            self[...] = work
            return None
        return Buffer.__array_ufunc__(self, ufunc, method, *inputs, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in _WRITER_METHODS:
            return functools.partial(_view_writer, self, name)
        if not self.live():
            return getattr(self.resolved(), name)
        return Buffer.__getattr__(self, name)  # (live: no held entries to place)

    def __copy__(self) -> Any:
        return Buffer(self.value.copy()) if self.live() else trace._copy(self.resolved())


def _view_writer(view: _View, name: str, *args, **kwargs) -> Any:
    """``v.fill(x)``, ``v.sort()``, …: on the buffer's entries (fill), or on the plain view while
    nothing traced is involved."""
    if name == "fill" and len(args) == 1 and not kwargs:
        view[...] = args[0]
        return None
    if view.live() and not _holds_tracer((args, kwargs)):
        return getattr(view.value, name)(*_plain(args), **_plain(kwargs))
    _refuse_view_writer(f".{name}")


def _refuse_view_writer(what: str) -> None:
    raise UnsupportedOperationError(
        f"{what} at {call_site()} writes traced values through a view of an array f made, which is followed for "
        "v[...] = x, v op= x, np.copyto(v, x), v.fill(x) and np.add.at(v, i, x) (any ufunc's .at) only; "
        "write into the array itself (a[i, :] = ...)")


def _view_in_place(dunder: str) -> Callable:
    """``v op= x`` on a view: the buffer's entries take ``v op x``."""
    def op(self, other):
        settle_all(other)
        if self.live() and not _holds_tracer(other) and type(other) is not _View:
            getattr(self.value, f"__i{dunder}__")(_plain(other))
        else:
            self[...] = getattr(self.current(), f"__{dunder}__")(_plain(other))
        return self
    op.__name__ = f"__i{dunder}__"
    return op


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
            "lshift", "rshift"):
    setattr(_View, f"__i{_op}__", _view_in_place(_op))
VIEWS.add(_View)


#: NumPy functions and ndarray methods that write into their first argument, whose traced
#: handlers (jacc.numpy_api.writes) take a buffer as that argument.
_WRITERS = frozenset(getattr(np, n) for n in ("copyto", "fill_diagonal", "put", "place", "putmask",
                                              "put_along_axis"))
_WRITER_METHODS = frozenset(("fill", "put", "sort", "partition"))
_COPYTO = np.copyto  # NumPy's own (dispatch names it while a trace has np.copyto swapped for lists)


# -- the creation functions ---------------------------------------------------------------------




def _serving(name: str) -> bool:
    """Whether this call of the creation function ``name`` gets a buffer (if it makes a float array)."""
    return getattr(_state, "on", False) and _served(sys._getframe(2), name)


_PASS_THROUGH = "scipy._lib.array_api_compat"  # (modules whose creation functions call NumPy's for their caller)


def _served(caller, name: str) -> bool:
    """Whether the code of ``caller`` (a frame: f's own, or a served library's) is calling the
    creation function ``name`` itself. Compiled code (NumPy's random generators, Cython) calling
    it runs no frame of its own, so ``caller`` is then the Python code that called the compiled
    function; a buffer there would reach code that writes into an ndarray's memory directly. SciPy's
    array-API wrappers (``xp.empty``) pass the call on: their caller is the one asking."""
    while caller is not None and caller.f_globals.get("__name__", "").startswith(_PASS_THROUGH):
        caller = caller.f_back
    if caller is None:
        return False
    if _in_library(caller):
        if not served_module(caller):
            return False
    callee = _callee(caller.f_code, caller.f_lasti)
    if callee == name or callee is None:
        return callee == name
    # a name of its own (from numpy import zeros as Z): what it is bound to must be that function
    bound = caller.f_locals.get(callee, caller.f_globals.get(callee))
    return getattr(bound, "__name__", None) == name and getattr(bound, "__module__", "").startswith("numpy")


_CALLEES: dict[tuple, str | None] = {}
_LOADS = frozenset(("LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST"))


def _callee(code, lasti: int) -> str | None:
    """The name the call instruction at ``lasti`` calls (``np.zeros(3)``: "zeros"), read from the
    instruction that loads the callable: it starts where the call expression starts and ends
    last before the call's own end. None where that cannot be told (Python 3.10: no positions)."""
    key = (code, lasti)
    if key not in _CALLEES:
        found = None
        if hasattr(code, "co_positions"):
            ins = list(dis.get_instructions(code))
            call = None  # (lasti may point into the call instruction's inline caches)
            for i in ins:
                if i.offset > lasti:
                    break
                call = i
            if call is not None and call.positions is not None and call.positions.lineno is not None:
                start = (call.positions.lineno, call.positions.col_offset)
                end = (call.positions.end_lineno, call.positions.end_col_offset)
                best = None
                for i in ins:
                    p = i.positions
                    if (i.offset < call.offset and i.opname in _LOADS and p is not None and p.lineno is not None
                            and (p.lineno, p.col_offset) == start and (p.end_lineno, p.end_col_offset) < end
                            and (best is None or (p.end_lineno, p.end_col_offset) > best[0])):
                        best = ((p.end_lineno, p.end_col_offset), i.argval)
                found = best[1] if best else None
        _CALLEES[key] = found
    return _CALLEES[key]


def _maker(position: int, fill: bool = False, empty: bool = False,
           copies: bool = False) -> Callable[[Callable], Callable]:
    """A creation function that gives a buffer; ``position``: where its dtype may come positionally;
    ``fill``: the second argument is the fill value (a traced one is written into the new array,
    which becomes traced); ``empty``: NumPy leaves the values unset (the buffer's are zeros). A
    traced prototype (``np.zeros_like(x)``) goes to its handler; a buffer one stands for its array.
    ``copies``: a copy of its first argument (``np.copy``), a buffer only of a plain array (a
    buffer's copy is NumPy's, its held entries placed first)."""
    def make(original: Callable) -> Callable:
        @functools.wraps(original)
        def create(*args, **kwargs):
            if args and (_holds_tracer(args[0]) or (copies and type(args[0]) is not np.ndarray)):
                return original(*args, **kwargs)
            dtype = kwargs.get("dtype", args[position] if len(args) > position else None)
            if fill and _holds_tracer(args[1:2] or kwargs.get("fill_value")) and (
                    dtype is None or np.dtype(dtype).kind == "f"):
                value = args[1] if len(args) > 1 else kwargs["fill_value"]
                rest = {k: v for k, v in kwargs.items() if k != "fill_value"}
                new = Buffer(original(*_plain(args[:1]), 0.0, *_plain(args[2:]), **_plain(rest)))
                new[...] = value
                return new
            r = original(*_plain(args), **_plain(kwargs))
            if (type(r) is not np.ndarray or r.dtype.kind != "f" or _holds_tracer(args) or _holds_tracer(kwargs)
                    or not _serving(original.__name__)):
                return r
            if empty:  # zeros, as NumPy's empty may hold: memory's leftovers would be constants of the trace
                r.fill(0.0)  # that differ on every call, so no call could reuse an earlier one's plan
            return Buffer(r)
        return create
    return make


def _fill_diagonal(original: Callable) -> Callable:
    """NumPy dispatches ``np.fill_diagonal`` on its array alone: a traced value goes to the traced
    writer here (which takes a buffer, and names the fix for a plain array)."""
    @functools.wraps(original)
    def fill_diagonal(a, val, wrap=False):
        settle_all(a)  # (held entries first: the fill overwrites them)
        if type(a) is _View and not a.live():  # on the buffer's entries it views
            work = a.current()
            original(work, val, wrap=wrap)
            a[...] = work
            return None
        if _holds_tracer(val) and not isinstance(a, Tracer):
            return trace._call(trace._FUNCTIONS[original], "numpy.fill_diagonal", (a, val), {"wrap": wrap})
        return original(a if isinstance(a, Tracer) else _plain(a), val, wrap=wrap)
    return fill_diagonal


swap_during_traces("numpy", {
    "zeros": _maker(1), "ones": _maker(1), "empty": _maker(1, empty=True), "full": _maker(2, fill=True),
    "eye": _maker(3), "identity": _maker(1),
    "zeros_like": _maker(1), "ones_like": _maker(1), "empty_like": _maker(1, empty=True),
    "full_like": _maker(2, fill=True), "fill_diagonal": _fill_diagonal,
    # a copy of a constant state that f steps (u = np.copy(u0); u[1:-1] = …); of a buffer, as NumPy's
    "copy": _maker(99, copies=True),
})


def _from_list(obj: Any, made: np.ndarray) -> Any:
    """``np.array(obj)``'s result ``made`` (called by jacc.constructors' np.array), as a buffer
    where ``obj`` is a list of numbers, or a plain array that ``made`` copies, and the code of
    ``f`` calls np.array, during a trace with buffers."""
    if ((type(obj) in (list, tuple) or (type(obj) is np.ndarray and made is not obj))
            and type(made) is np.ndarray and made.dtype.kind == "f"
            and getattr(_state, "on", False) and _served(sys._getframe(2), "array")):
        return Buffer(made)
    return made


_MADE["array"] = _from_list
