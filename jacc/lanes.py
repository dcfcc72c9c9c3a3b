"""Values selected by a traced mask, kept at full shape: ``y[m] = g(x[m])`` without reading ``m``.

``x[m]`` of a traced comparison ``m`` has as many entries as ``m`` has true ones, a size that is
a value: read at the traced point, it makes the trace value-dependent, so every call ran ``f``
and planned again. NumPy code writes piecewise functions this way (``y[x > 1] = np.sqrt(x[x > 1])``,
``y[m] *= 3``), and every step between the selection and the write is elementwise. So ``x[m]``
gives :class:`Lanes`: ``x`` at full shape, recorded as ``lanes(m, x, c)`` (``where(m, x, r)``, see
below), on which elementwise steps (ufuncs, operators, with scalars) run at full shape too;
``y[m] = lanes`` records ``where(m, lanes, y)``, and ``lanes.sum()`` the sum of
``where(m, lanes, 0)``. Nothing reads ``m``, so the trace holds at every point.

The entries outside ``m`` are never part of the result, but their values and partials are
computed, and ``0 · NaN`` would spoil a product. So outside ``m`` every array the mask selects
takes its first selected row ``r``, found at each call (the ``lanes`` op; ``c`` where nothing is
selected: the traced point's first selected row, or first row, kept by a replay,
``Tape.recorded_constant``), and traced scalars and rows are the same at every row: each step
there repeats the computation of a selected row. Where that row's own partial is infinite (√x at
0), it still meets the mask's 0 outside ``m``: a call whose Jacobian is not finite skips no ``f``
(``Tape.note_domain``) and is traced again with its selections gathered (:func:`gathering`,
``jacc.api``).

Anything else (``len``, a shape, indexing, a method, other NumPy functions and gufuncs such as
``matmul``, an operand of another shape, an array built of it) makes the selection itself: the
gather ``x[m]`` at the traced point, value-dependent as before, which stands for it from then on.

>>> import numpy as np, jacc
>>> def f(x):
...     y = x.copy()
...     y[x > 1.0] = np.sqrt(x[x > 1.0])
...     return y
>>> g = jacc.trace(f, np.array([0.5, 6.25]))
>>> g.meta.get("value_dependent") is None
True
>>> jacc.jacobian(f)(np.array([6.25, 0.5, 9.0])).diagonal().round(4).tolist()
[0.2, 1.0, 0.1667]
"""

from __future__ import annotations

import contextlib
import numbers
import threading
from typing import Any, Callable

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .constructors import STANDS_FOR
from .masks import Mask
from .ops import ELEMENTWISE, UNARY
from .trace import Tracer

__all__ = ["Lanes", "select", "same_mask"]

#: set once the first Lanes is made: the tracer's protocols step aside for it from then on
LIVE = [False]
#: NumPy's own functions, held before any trace swaps stand-ins into the namespace (jacc.constructors)
_SUM, _MEAN, _COPY, _NDIM = np.sum, np.mean, np.copy, np.ndim


class _Gathering(threading.local):
    """Set in a thread while a call is traced again with its selections gathered (:func:`gathering`)."""

    on = False


GATHER = _Gathering()


class Lanes(NDArrayOperatorsMixin):
    """``x[m]`` kept as ``lanes(m, x, c)`` at ``x``'s shape (see the module's docstring); ``m``
    spans the leading axes of ``x`` (a mask of rows: ``X[labels == k]``), ``wide`` is ``m`` with
    ``x``'s other axes added as axes of length 1. ``full`` may be a constant array, whose entries
    outside ``m`` are a caller's safe values (a distribution's points: :mod:`jacc.numpy_api.scipy_stats`)."""

    __slots__ = ("mask", "wide", "full", "_gathered")
    __array_priority__ = 1002

    def __init__(self, mask: Mask, wide: Mask, full: Tracer):
        self.mask, self.wide, self.full, self._gathered = mask, wide, full, None

    # -- what a selection is without its size ---------------------------------------------------
    ndim = property(lambda self: 1 + self.full.ndim - self.mask.ndim)
    dtype = property(lambda self: self.full.dtype)

    def gathered(self) -> Tracer:
        """The selection itself, ``full[m]``: its size read at the traced point (value-dependent).
        Once made, it stands for the selection from then on (a method or function may change it in
        place: ``a.sort()``, ``np.copyto(a, …)``)."""
        if self._gathered is None:
            self._gathered = self.full[self.mask.concrete()]
        return self._gathered

    def __repr__(self) -> str:
        return repr(self.gathered())

    def __str__(self) -> str:
        return str(self.gathered())

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.gathered(), name)

    def copy(self, order: str = "C") -> "Lanes | Tracer":
        return Lanes(self.mask, self.wide, self.full) if self._gathered is None else self._gathered.copy(order)

    def _axes(self, axis, dtype, out, keepdims, kwargs) -> tuple | None | bool:
        """The full array's axes a reduction of the selection over ``axis`` sums (None: all; the
        selection's axis 0 is the mask's axes), or False where its arguments ask for anything else."""
        if self._gathered is not None or dtype is not None or out is not None or keepdims or kwargs:
            return False
        if axis is None or (self.ndim == 1 and axis in (0, -1, (0,), (-1,))):
            return None
        return tuple(range(self.mask.ndim)) if axis in (0, (0,)) else False

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        axes = self._axes(axis, dtype, out, keepdims, kwargs)
        if axes is False:
            return self.gathered().sum(axis, dtype, out, keepdims, **kwargs)
        return np.where(self.wide, self.full, 0.0).sum(axis=axes)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        axes = self._axes(axis, dtype, out, keepdims, kwargs)
        if axes is False:
            return self.gathered().mean(axis, dtype, out, keepdims, **kwargs)
        count = self.mask.astype(np.float64).sum()  # (0: NumPy's NaN, with its warning)
        per_row = self.full.size // self.mask.size
        if axes is None and per_row != 1:  # (the whole selection: every entry of each selected row)
            count = count * per_row
        return self.sum(axis) / count

    # -- NumPy's protocols ----------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        return self.gathered().__array__(dtype, copy)  # (refused as a traced array's)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if method == "__call__" and ufunc.nout == 1 and ufunc.signature is None and set(kwargs) <= {"out"} and (
                out is None or (len(out) == 1 and out[0] is self)):
            r = _lift(lambda args: ufunc(*args), self, inputs)
            if r is not None:
                if out is None:
                    return r
                self.full, self._gathered = r.full, None  # (y += 1: the object the caller holds changes)
                return self
        if out is not None:
            kwargs["out"] = _gathered(out)
        return getattr(ufunc, method)(*_gathered(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func is _NDIM and len(args) == 1 and args[0] is self:  # (x ** y asks for y's; no size read)
            return self.ndim
        if (func is _SUM or func is _MEAN) and len(args) == 1 and args[0] is self:
            return getattr(self, func.__name__)(**kwargs)
        if func is _COPY and len(args) == 1 and args[0] is self and not kwargs:
            return self.copy()
        return func(*_gathered(args), **_gathered(kwargs))

    # (the values as Python reads them: those of the selection)
    def __bool__(self) -> bool:
        return bool(self.gathered())

    def __float__(self) -> float:
        return float(self.gathered())

    def __int__(self) -> int:
        return int(self.gathered())

    def __index__(self) -> int:
        return self.gathered().__index__()

    def __len__(self) -> int:
        return len(self.gathered())

    def __iter__(self):
        return iter(self.gathered())

    def __getitem__(self, index):
        return self.gathered()[index]

    def __setitem__(self, index, value):
        """``x[m][i] = v`` changes the selection (a copy, as NumPy's), which is made and kept from here on."""
        self.gathered()[index] = value

    def __format__(self, spec: str) -> str:
        return format(self.gathered(), spec)


STANDS_FOR[Lanes] = Lanes.gathered  # (np.asarray(x[m]), np.array([x[m], …]): the selection)


def _gathered(x: Any) -> Any:
    """``x`` (arguments, lists, tuples and dicts of them) with every Lanes made its selection."""
    if type(x) is Lanes:
        return x.gathered()
    if type(x) in (list, tuple):
        return type(x)(_gathered(a) for a in x)
    if type(x) is dict:
        return {k: _gathered(v) for k, v in x.items()}
    return x


def _widened(mask: Mask, ndim: int) -> Mask:
    """``mask`` (of an array's leading axes) with the array's other axes added as axes of length 1."""
    extra = ndim - mask.ndim
    return mask if not extra else mask.reshape(mask.shape + (1,) * extra)


def _lift(apply: Callable, lanes: Lanes, inputs: tuple | list) -> Lanes | None:
    """``apply(inputs)``, an elementwise step, at full shape; None where an input is not a scalar
    (or, for a selection of rows, an array over the rows' axes), or lanes of another mask or shape."""
    mask, shape, args = lanes.mask, lanes.full.shape, []
    rows = shape[mask.ndim:]  # (a row's shape: a constant or traced operand of it broadcasts over rows)
    for a in inputs:
        if type(a) is Lanes:
            if a._gathered is not None or a.full.shape != shape or not same_mask(a.mask, mask):
                return None
            args.append(a.full)
        elif isinstance(a, Tracer) and a.value.dtype.kind in "fc" and _over_rows(a.shape, rows):
            args.append(a)  # (the same at every row: outside the mask it meets the first selected row)
        elif isinstance(a, numbers.Number) or (type(a) is np.ndarray and a.dtype.kind in "biuf"
                                                and _over_rows(a.shape, rows)):
            args.append(a)
        else:
            return None
    r = apply(args)
    value = r.value if isinstance(r, Tracer) else r
    # (a constant: lanes of constants only, which jacc's own formulas make: jacc.numpy_api.scipy_stats)
    if not isinstance(r, (Tracer, np.ndarray)) or r.shape != shape or value.dtype.kind not in "fc":
        return None  # (a comparison, an integer result: made from the selection instead)
    return Lanes(mask, lanes.wide, r)


@contextlib.contextmanager
def gathering():
    """Inside, selections by a mask are gathered (value-dependent, exact at this point): a call whose
    Jacobian through selections kept at full shape is not finite is traced again so (jacc.api)."""
    was, GATHER.on = GATHER.on, True
    try:
        yield
    finally:
        GATHER.on = was


def _over_rows(shape: tuple, rows: tuple) -> bool:
    """Whether an operand of ``shape`` broadcasts with a selection's rows of shape ``rows`` alike
    in the selection and at full shape (no more axes than a row has, none longer than its)."""
    if len(shape) > len(rows):
        return False
    return all(n == 1 or n == r for n, r in zip(shape[::-1], rows[::-1]))


def record(tape, op: str, args: list, params: dict | None) -> Tracer | Lanes:
    """``tape.record(op, args, params)`` where an argument is Lanes (a traced array's operator:
    ``a * x[m]``): an elementwise op lifted, anything else on the selections."""
    if not params and (op in ELEMENTWISE or op in UNARY):
        first = next(a for a in args if type(a) is Lanes)
        r = _lift(lambda lifted: tape.record(op, lifted), first, args)
        if r is not None:
            return r
    return tape.record(op, _gathered(list(args)), params)


def select(x: Tracer | np.ndarray, mask: Mask) -> Lanes | None:
    """``x[mask]`` as Lanes, or None where it is gathered as before: a mask of another shape than
    ``x``'s leading axes, ``x`` empty, integer data or not float. ``x`` may be a constant array
    (jacc's own formulas select constants too: :mod:`jacc.numpy_api.scipy_stats`)."""
    tape = mask.tape
    traced = isinstance(x, Tracer)
    value = x.value if traced else x
    if (tape.paused or GATHER.on or not mask.ndim or mask.shape != x.shape[:mask.ndim] or not x.size
            or value.dtype.kind not in "fc" or (traced and x.tape is not tape) or (traced and (
                x.name in tape.ints or x.name in tape.bits or x.name in tape.f32 or x.name in tape.narrow))):
        return None
    LIVE[0] = True
    tape.lanes += 1
    tape.note_domain("x[mask] computed at every entry")
    wide = _widened(mask, x.ndim)
    # (the fill where a later call selects nothing: this call's first selected row, or first row
    # where it selects none, kept by a replay; a fill outside f's domain makes such calls trace again)
    row = value.reshape((mask.size,) + x.shape[mask.ndim:])[mask.value.reshape(-1).argmax()]
    m = wide.vertex()  # (recorded first: a replay's constant is its next step's)
    fill = tape.recorded_constant("lanes", 2, row.copy() if row.ndim else row.item())
    return Lanes(mask, wide, tape.record("lanes", [m, x, fill], {"axes": mask.ndim}))


def write_rows(y: Tracer, mask: Any, value: Any) -> Tracer | None:
    """``y[mask] = value`` of a value that is the same for every selected row (a scalar, or an
    array of a row's shape: ``Y[Y[:, 0] > 0] = 0.0``) as ``where``, without reading the mask; None
    for anything else."""
    if (type(mask) is not Mask or mask.shape != y.shape[:mask.ndim] or (not mask.ndim and y.ndim)
            or type(value) is Mask):
        return None
    shape = np.shape(value)
    if shape and not (isinstance(value, Tracer) or (type(value) is np.ndarray and value.dtype.kind in "biuf")):
        return None  # (any value of no axes, as NumPy writes it; a row: traced, or numbers)
    if not _over_rows(shape, y.shape[mask.ndim:]) or (y.ndim > mask.ndim and y.tape.paused):
        return None
    return y.tape.record("where", [_widened(mask, y.ndim).vertex(), value, y])


def assign(y: Tracer, mask: Mask, value: Any) -> Tracer | None:
    """``y[mask] = value`` as ``where(mask, value, y)`` where ``value`` is Lanes of the same mask."""
    if type(value) is not Lanes or value._gathered is not None or type(mask) is not Mask or (
            np.shape(y) != value.full.shape or not same_mask(value.mask, mask)):
        return None
    return np.where(value.wide, value.full, y)


def same_mask(a: Mask, b: Mask) -> bool:
    """Whether two masks are the same formula of the same recorded values (``x > 1`` written twice)."""
    if a is b:
        return True
    if a.op != b.op or len(a.args) != len(b.args):
        return False
    if a._vertex is not None and b._vertex is not None and a._vertex.name == b._vertex.name:
        return True
    if not a.args:  # (a rearranged or data mask: the same recorded vertex only)
        return False
    return all(_same_operand(p, q) for p, q in zip(a.args, b.args))


def _same_operand(p: Any, q: Any) -> bool:
    if type(p) is Mask and type(q) is Mask:
        return same_mask(p, q)
    if isinstance(p, Tracer) or isinstance(q, Tracer):
        return isinstance(p, Tracer) and isinstance(q, Tracer) and p.name == q.name
    if type(p) is Mask or type(q) is Mask:
        return False
    if isinstance(p, numbers.Number) and isinstance(q, numbers.Number):  # (x > 1 and x > 1.0 alike)
        return (p == q or (p != p and q != q)) and isinstance(p, bool) == isinstance(q, bool)
    p, q = np.asarray(p), np.asarray(q)
    return p.dtype == q.dtype and p.shape == q.shape and np.array_equal(p, q, equal_nan=p.dtype.kind in "fc")

