"""Constant results: predicates read from traced values (``all``, ``any``, ``isclose``,
``allclose``, ``array_equal``, ``isin``, ``signbit``, the logical ufuncs, ``nanargmax`` …), index
helpers computed from shapes (``triu_indices_from`` …) and the complex-number queries of real
arrays (``imag``, ``angle``, ``iscomplexobj`` …).

A result read from values marks the trace value-dependent, as a comparison does (every call
traces again, so a later call never reuses a stale mask); one computed from shapes or dtypes
alone does not. None of these carries a derivative: their results are integers, booleans or
constants.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constructors import routed, swap_during_traces
from ..trace import (
    Tracer,
    UnsupportedOperationError,
    _comparison,
    call_site,
    implements,
    implements_ufunc,
)
from . import FREE, case
from .gathers import _value


def _read(x: Any, what: str) -> Any:
    """A traced argument's value (noting the dependence); anything else as it is."""
    return _value(x, what) if isinstance(x, Tracer) else x


def _reading(func: Callable, method: str | None = None) -> Callable:
    """Register ``func`` run on the values of its traced arguments (the trace becomes value-dependent)."""
    what = f"numpy.{func.__name__}"

    def handler(*args, **kwargs):
        return func(*[_read(a, what) for a in args], **{k: _read(v, what) for k, v in kwargs.items()})
    handler.__name__ = func.__name__
    return implements(func, method=method)(handler)


def _isscalar(original: Callable, element: Any) -> bool:
    """NumPy's answer for the value a traced one stands for (:meth:`~jacc.trace.Tape.is_scalar`):
    scalar-or-array code then takes NumPy's branch (``isinstance(x, float)`` cannot: a traced value
    is no float)."""
    return element.tape.is_scalar(element) if isinstance(element, Tracer) else original(element)


swap_during_traces("numpy", {"isscalar": routed(_isscalar, traced=lambda a: isinstance(a, Tracer))}, eager=True)


for _f in (np.isclose, np.allclose, np.array_equal, np.array_equiv, np.isin, np.isposinf, np.isneginf,
           np.nanargmax, np.nanargmin):
    _reading(_f)
_reading(np.all, "all")
_reading(np.any, "any")

# ufuncs that look at values (no derivative): their result is a constant, as for a comparison
# (the logical ufuncs give masks: jacc.masks)
for _u in (np.signbit, np.spacing):
    implements_ufunc(_u.__name__)(_comparison(_u, _u.__name__))


@implements_ufunc("nextafter")
def _nextafter(tape, x1, x2):
    """The float after ``x1`` towards ``x2``: ``x1`` plus that one-ulp step, read at the traced point
    (the trace is value-dependent), so the slope is 1 in ``x1`` and 0 in ``x2``; the sum is exact."""
    values = [_read(x, "numpy.nextafter (its step)") for x in (x1, x2)]
    after = np.nextafter(*values)
    if not isinstance(x1, Tracer):
        return after
    return tape.record("add", [x1, after - values[0]])


# -- from shapes and dtypes alone ----------------------------------------------------------------


def _shape_only(func: Callable) -> Callable:
    """``func`` run on an uninitialised array of the traced argument's shape (it reads no values)."""
    def handler(arr, *args, **kwargs):
        return func(np.empty(np.shape(arr), dtype=bool), *args, **kwargs)
    handler.__name__ = func.__name__
    return implements(func)(handler)


for _f in (np.triu_indices_from, np.tril_indices_from, np.diag_indices_from):
    _shape_only(_f)


@implements(np.result_type)
def _result_type(*arrays_and_dtypes):
    return np.result_type(*[a.dtype if isinstance(a, Tracer) else a for a in arrays_and_dtypes])


@implements(np.common_type)
def _common_type(*arrays):
    """NumPy's scalar type for the arrays' dtypes (numpy.polynomial's classes ask for it)."""
    return np.common_type(*[np.empty(0, dtype=a.dtype) if isinstance(a, Tracer) else a for a in arrays])


@implements(np.einsum_path)
def _einsum_path(*operands, **kwargs):
    """NumPy's contraction path: it depends on the operands' shapes alone."""
    return np.einsum_path(*[np.empty(o.shape) if isinstance(o, Tracer) else o for o in operands], **kwargs)


@implements(np.astype)
def _astype(x, dtype, /, *, copy=True, device=None):
    if device not in (None, "cpu"):
        raise UnsupportedOperationError(
            f"numpy.astype with device={device!r} at {call_site()}: traced arrays are on the CPU")
    return x.astype(dtype, copy=copy)


# traced arrays are real: their imaginary part is zero and their angle 0 or π
implements(np.iscomplexobj)(lambda x: False)
implements(np.isrealobj)(lambda x: True)
implements(np.iscomplex)(lambda x: np.zeros(np.shape(x), dtype=bool))
implements(np.isreal)(lambda x: np.ones(np.shape(x), dtype=bool))
implements(np.imag)(lambda val: np.zeros(np.shape(val)))
implements(np.real_if_close)(lambda a, tol=100: a)


@implements(np.angle)
def _angle(z, deg=False):
    """0 or π by the sign (NaN for NaN), read from the value: a constant."""
    return np.angle(_read(z, "numpy.angle"), deg=deg)


# -- examples -----------------------------------------------------------------------------------


def _x(r, shape=(3, 4)):
    return r.normal(size=shape)


_READ = "read at the traced point: a constant, and the trace is value-dependent"
case("numpy.isclose", lambda xp: lambda x: xp.where(xp.isclose(x, x[0]), 2.0 * x, x), lambda r: (_x(r),), note=_READ)
case("numpy.allclose", lambda xp: lambda x: x * 2.0 if xp.allclose(x, 0.0) else x ** 2, lambda r: (_x(r),), note=_READ)
case("numpy.all", lambda xp: lambda x: x * xp.all(x > -10.0, axis=0) + x * xp.any(x > 0.5), lambda r: (_x(r),),
     note=_READ)
case("ndarray.all", lambda xp: lambda x: x * x.all() + x * x.any(axis=1, keepdims=True), lambda r: (_x(r),))
case("numpy.signbit", lambda xp: lambda x: xp.where(xp.signbit(x), -x, x), lambda r: (_x(r),), note=_READ)
case("numpy.logical_and", lambda xp: lambda x: x * xp.logical_and(x > -0.5, xp.logical_not(x > 0.5)),
     lambda r: (_x(r),), note=_READ)
case("numpy.nanargmax", lambda xp: lambda x: x[xp.nanargmax(x)] * x, lambda r: (_x(r, (5,)),), note=_READ)
case("numpy.isin", lambda xp: lambda x: x * xp.isin(x, x[:2]), lambda r: (_x(r, (5,)),), note=_READ, jax=False)
case("numpy.triu_indices_from", lambda xp: lambda x: x[xp.triu_indices_from(x, 1)], lambda r: (_x(r, (4, 4)),),
     structures=FREE, note="from the shape alone (not value-dependent)")
case("numpy.nextafter", lambda xp: lambda x, y: xp.nextafter(x, y) * 3.0, lambda r: (_x(r), _x(r, (4,))),
     argnums=(0, 1), jax=False,
     note="x1 plus a one-ulp step read at the traced point: slope 1 in x1, 0 in x2 (JAX has no derivative rule)")
case("numpy.einsum_path", lambda xp: lambda x: np.einsum("ij,jk,kl->il", x, x, x,
     optimize=np.einsum_path("ij,jk,kl->il", x, x, x)[0]), lambda r: (_x(r, (3, 3)),), jax=False,
     note="NumPy's path, found from the shapes alone")
case("numpy.astype", lambda xp: lambda x: xp.astype(x, np.float64) * 2.0, lambda r: (_x(r),),
     note="a float dtype: a copy (copy=False: the array itself); an integer or bool dtype: a constant "
     "read at the traced point (derivative zero, the trace depends on values); a complex one: see complexes")
case("numpy.astype", lambda xp: lambda x: x * xp.astype(xp.floor(4 * x), np.int64), lambda r: (_x(r),),
     variant="integers")
case("numpy.angle", lambda xp: lambda x: x * xp.angle(x) + xp.imag(x), lambda r: (_x(r),),
     note="real arrays: the angle is 0 or π (a constant), the imaginary part zero")
