"""The standard library's ``math`` functions on traced scalars.

Code written for floats calls ``math.sqrt(x[0])`` or ``math.exp(-t * k)``; those functions ask for
``float()`` of their argument, which a trace refuses (the derivative would be lost). While ``f``
runs on traced arguments they are replaced on the ``math`` module (see
:func:`jacc.constructors.swap_during_traces`): a call with a traced argument goes to the NumPy
ufunc of the same function and gives a traced 0-d value; every other call is ``math``'s own and
gives its float; a traced array of any other shape raises ``TypeError`` as ``math`` does (the
ufunc would map over it). Names imported before (``from math import sqrt``) are replaced too where
:class:`jacc.constructors.aliases` finds them. A function whose first trace meets the refused
``float()`` runs again with the replacements (once per function).

Outside a function's domain the call raises as ``math`` does (``ValueError``, or
``OverflowError`` for a result too large), naming the call site. Calls of ``jacobian`` that skip
``f`` (and ``retrace=False`` calls) run ``f`` again where a Jacobian block is not finite, so they
raise the same error; the logarithms and ``atanh``, whose derivatives stay finite outside their
domains, read their argument through a recorded mask that is NaN there. ``fmod``, ``ldexp`` (an integer
exponent) and ``dist`` are traced too; ``fsum``, ``remainder``, ``modf`` and ``frexp`` of traced
values are refused, naming what to write instead. ``erf``, ``erfc``, ``gamma``
and ``lgamma`` need SciPy (its ``special`` ufuncs); without it they stay refused. Predicates and
roundings (``isfinite``, ``isnan``, ``isinf``, ``isclose``, ``floor``, ``ceil``, ``trunc``) are
piecewise constant: they give ``math``'s own result at the traced value, and the trace is marked
value-dependent as by a comparison (``jacobian`` traces again where a value may change it).

>>> import math, numpy as np, jacc
>>> f = lambda x: math.sqrt(x[0]) * math.exp(-x[1])
>>> J = jacc.jacobian(f)(np.array([4.0, 0.0]))
>>> [round(float(v), 12) for v in J]
[0.25, -2.0]
"""

from __future__ import annotations

import functools
import importlib.util
import math
import operator
from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, routed, swap_during_traces
from ..scalarize import Scalar, ScalarArray, _unwrap, _wrap
from ..trace import Tracer, UnsupportedOperationError, call_site


def _log(x: Any, base: Any = None) -> Any:
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _hypot(*xs: Any) -> Any:
    return np.hypot(*xs) if len(xs) == 2 else np.sqrt(sum(x * x for x in xs))


def _prod(values: Any, *, start: Any = 1) -> Any:
    return functools.reduce(operator.mul, values, start)  # left to right, as math.prod


def _ldexp(x: Any, i: Any) -> Any:
    if isinstance(i, Tracer) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"math.ldexp at {call_site()}: the exponent must be an integer, not {type(i).__name__}")
    scale = math.ldexp(1.0, int(i))
    if not isinstance(x, Tracer):
        return x * scale
    # x·2ⁱ is linear: its derivative stays 2ⁱ past an overflow, so the factor itself is inf there
    return x * np.where(np.abs(x) <= np.finfo(float).max / scale, scale, np.inf)


def _dist(p: Any, q: Any) -> Any:
    p, q = list(p), list(q)
    if len(p) != len(q):
        raise ValueError(f"math.dist at {call_site()}: both points must have the same number of dimensions")
    return _hypot(*[a - b for a, b in zip(p, q)])


@functools.cache
def _special(name: str) -> Callable | None:
    """SciPy's ufunc for ``name`` (``erf``, ``gammaln``, …), or None without SciPy."""
    if importlib.util.find_spec("scipy") is None:
        return None
    import scipy.special

    return getattr(scipy.special, name)


#: math's name -> the NumPy function computing it on traced values (SciPy's special ones: _SCIPY)
_SAME: dict[str, Any] = {
    "sqrt": np.sqrt, "exp": np.exp, "expm1": np.expm1, "log": _log, "log10": np.log10, "log2": np.log2,
    "log1p": np.log1p, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "atan2": np.arctan2, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "fabs": np.abs, "pow": np.power,
    "hypot": _hypot, "degrees": np.degrees, "radians": np.radians, "copysign": np.copysign, "prod": _prod,
    "cbrt": np.cbrt, "exp2": np.exp2, "fmod": np.fmod, "ldexp": _ldexp, "dist": _dist,
}
_SCIPY = {"erf": "erf", "erfc": "erfc", "gamma": "gamma", "lgamma": "gammaln"}
#: piecewise constant in their arguments: math's own result at the traced values, whose derivative
#: (zero) loses nothing; the trace is marked value-dependent, as by a comparison
_CONSTANT = ("isfinite", "isnan", "isinf", "isclose", "floor", "ceil", "trunc")


#: not traced, with what to write instead (their own refusal of float() named no function)
_REFUSED = {
    "fsum": "sum() or np.sum (fsum's exactly rounded sum is not traced)",
    "remainder": "x - y * np.round(x / y) (IEEE remainder: the quotient rounded half to even)",
    "modf": "x - np.trunc(x) and np.trunc(x)", "frexp": "np.frexp on a constant (the exponent is an integer)",
}


def _has_scalar(a: Any) -> bool:
    return isinstance(a, Scalar) or (isinstance(a, (list, tuple, ScalarArray)) and np.ndim(a) == 1
                                     and any(isinstance(v, Scalar) for v in a))


def _traced_or_scalar(a: Any) -> bool:
    return _holds_tracer(a) or _has_scalar(a)


def _scalar_level(impl: Callable) -> Callable:
    """``impl`` also for the traced scalars of ``scalarize=True`` (:class:`~jacc.scalarize.Scalar`,
    which ``math`` would make floats): it runs on their 0-d traced values and gives a Scalar back."""
    def lifted(original: Callable, *args, **kwargs):
        if not any(map(_has_scalar, args)):
            return impl(original, *args, **kwargs)
        return _wrap(impl(original, *map(_unwrapped, args), **kwargs))
    return lifted


def _unwrapped(a: Any) -> Any:
    if isinstance(a, (list, tuple, ScalarArray)):  # (the points of dist, the factors of prod)
        return [_unwrap(v) for v in a]
    return _unwrap(a)


def _refusal(name: str) -> Callable[[Callable], Callable]:
    def impl(original: Callable, *args, **kwargs):
        if name == "fsum":  # (any iterable, a generator too: read once, math's own sum where nothing is traced)
            args = (list(args[0]),) if args else args
            if not any(isinstance(v, Tracer) for v in (args[0] if args else ())):
                return original(*args, **kwargs)
        raise UnsupportedOperationError(f"math.{name} of a traced value at {call_site()} is not traced; use "
                                        f"{_REFUSED[name]}")
    return routed(_scalar_level(impl), always=name == "fsum", traced=_traced_or_scalar)


def _constant_maker(name: str) -> Callable[[Callable], Callable]:
    def impl(original: Callable, *args, **kwargs):
        what = f"math.{name}() of a traced value"
        plain = [a._concrete(what) if isinstance(a, Tracer) else a for a in args]
        return original(*[float(v) if isinstance(v, (np.ndarray, np.generic)) else v for v in plain], **kwargs)
    return routed(_scalar_level(impl), traced=_traced_or_scalar)


_POLES = {"log", "log10", "log2", "log1p", "atanh", "lgamma", "gamma"}  # (an infinite value: math's ValueError)


def _refuse_outside_domain(name: str, out: Any, args: tuple) -> None:
    """Raise as ``math`` would where NumPy gave a non-finite value for finite arguments: a NaN or a
    pole is ``ValueError``, an overflow ``OverflowError`` (NumPy's NaN or inf would pass silently)."""
    value = getattr(out, "value", out)
    if not isinstance(value, (np.ndarray, np.generic, float)) or np.isfinite(value).all():
        return
    if not all(np.isfinite(getattr(a, "value", a)).all() for a in args if isinstance(a, (Tracer, float, int))):
        return
    tracer = next((a for a in args if isinstance(a, Tracer)), None)
    if tracer is not None:  # (f may catch it and go on another way: its trace then depends on values)
        tracer.tape.note_value_dependence(f"math.{name} raised outside its domain at these values")
    if np.isnan(value).any() or name in _POLES:
        raise ValueError(f"math domain error: math.{name} at {call_site()}")
    raise OverflowError(f"math range error: math.{name} at {call_site()}")


#: math gives inf where these overflow (a product, a Euclidean length), never an error
_NEVER_RAISE = ("prod", "hypot", "dist")
#: functions whose Jacobian stays finite outside their domain (d log x = 1/x at x = -1): their
#: argument passes a recorded mask, NaN outside, so every call's blocks show the violation
_DOMAINS: dict[str, Callable[[Any], Any]] = {
    "log": lambda x: x > 0, "log10": lambda x: x > 0, "log2": lambda x: x > 0, "log1p": lambda x: x > -1,
    "atanh": lambda x: (x > -1) & (x < 1)}


#: take an iterable of numbers; every other function takes numbers
_ITERABLES = ("prod", "dist")


def _only_scalars(name: str, args: tuple) -> None:
    """Raise as ``math`` does for an array argument (its ``float()`` takes 0-d arrays only):
    the NumPy ufunc that stands in would silently map over the elements."""
    for a in args:
        if isinstance(a, Tracer) and np.ndim(a) != 0:
            raise TypeError(f"math.{name} at {call_site()}: only 0-dimensional arrays can be converted to "
                            f"Python scalars (the argument has shape {np.shape(a)}); use "
                            f"{f'np.{name}' if hasattr(np, name) else 'its NumPy or SciPy twin'} for arrays")


def _maker(name: str) -> Callable[[Callable], Callable]:
    def impl(original: Callable, *args, **kwargs):
        if name not in _ITERABLES:
            _only_scalars(name, args)
        fn = _SAME.get(name) or _special(_SCIPY[name])
        if fn is None:  # (no SciPy: math's own refusal of float())
            return original(*args, **kwargs)
        inside = _DOMAINS.get(name)
        x = args[0] if args else None
        given = args
        if inside is not None and isinstance(x, Tracer):
            args = (np.where(inside(x), x, np.nan), *args[1:])
        out = fn(*args, **kwargs)
        if name not in _NEVER_RAISE:
            _refuse_outside_domain(name, out, given)
            tracer = next((a for a in given if isinstance(a, Tracer)), None)
            if tracer is not None:  # (a later call that skips f checks its blocks: Tape.note_domain)
                tracer.tape.note_domain(f"math.{name}")
        return out
    # (prod takes any iterable, a generator too: it is a product whatever it holds)
    return routed(_scalar_level(impl), always=name == "prod", traced=_traced_or_scalar)


swap_during_traces("math", {**{n: _maker(n) for n in [*_SAME, *_SCIPY]}, **{n: _constant_maker(n) for n in _CONSTANT},
                            **{n: _refusal(n) for n in _REFUSED}})


def _example(name: str, body: Callable[[Any, Any], Any], note: str = "") -> None:
    """A coverage example: ``body(m, x)`` with ``m`` the ``math`` module (NumPy's run) or the array
    module standing in for it (JAX's cross-check, whose tracers ``math`` cannot take)."""
    import math

    from . import case

    case(f"math.{name}", lambda xp: (lambda x: body(math if xp is np else xp, x)),
         lambda r: (r.uniform(0.5, 2.0, size=3),), note=note)


_example("sqrt", lambda m, x: m.sqrt(x[0]) * x[1] + m.sqrt(x[2]),
         "a traced scalar goes to np.sqrt, a float stays math's: so for every math function here")
_example("exp", lambda m, x: m.exp(-x[0] * x[1]) + m.exp(x[2]))
_example("log", lambda m, x: m.log(x[0]) * m.log(x[1] + x[2]))
_example("sin", lambda m, x: m.sin(x[0]) * m.cos(x[1]) + m.tanh(x[2]))
_example("atan2", lambda m, x: m.atan2(x[0], x[1]) + m.atan2(x[2], 1.5))
_example("hypot", lambda m, x: m.hypot(x[0], x[1]) * x[2])
_example("pow", lambda m, x: m.pow(x[0], x[1]) + m.pow(x[2], 2.0))
