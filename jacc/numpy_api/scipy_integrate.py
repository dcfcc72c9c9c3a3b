"""``scipy.integrate.quad`` of integrands that read traced values (through their closure or
``args=``), and so ``dblquad``, ``tplquad`` and ``nquad``, which call it.

QUADPACK is compiled code that asks for ``float()`` of each value of the integrand, which a trace
cannot follow. While ``f`` runs on traced arguments ``quad`` is replaced (see
:func:`jacc.constructors.swap_during_traces`): SciPy's ``quad`` runs on values
(:func:`jacc.trace.values_only`), and on the subintervals it ended with jacc records a 21-point
Gauss–Legendre rule of the integrand's change from the traced point,

    I₀ + Σₖ wₖ·(g(tₖ) − g(tₖ)₀) + g(b₀)·(b − b₀) − g(a₀)·(a − a₀),

with I₀ SciPy's value. The recorded terms are exactly zero at the traced point, so the value is
SciPy's, bit for bit; the derivative is ∫ ∂g/∂θ (Leibniz's rule, with the limits' terms) by a rule
of degree 41. Its subintervals are QUADPACK's, bisected (on values) until the rule agrees with
itself on their halves to a thousandth of the requested tolerance: QUADPACK's extrapolation can
make a coarse partition accurate (an endpoint singularity, a jump), which a plain rule on it is
not, and the derivative's integrand may be rougher than the integrand. So the derivative is about
as accurate as the value, usually more; where 400 subintervals do not get the rule to the
requested tolerance, the call is refused. Infinite
limits use QUADPACK's substitution x = a + (1 − s)/s on s ∈ (0, 1]. The integrand is sampled with
one call on the array of nodes where that gives what calling it node by node gives (checked on
values), else node by node (a larger graph). The partition is read at the traced point, so the
trace is value-dependent. Refused by name: ``weight=`` (QUADPACK's weighted rules) and
``complex_func=True``.

>>> import numpy as np, scipy.integrate, jacc
>>> def normaliser(s):  # ∫ exp(−x²/(2s²)) dx over the real line = s·√(2π)
...     return scipy.integrate.quad(lambda x: np.exp(-x**2 / (2 * s**2)), -np.inf, np.inf)[0]
>>> bool(np.isclose(jacc.jacobian(normaliser)(1.5), np.sqrt(2 * np.pi), rtol=1e-10))
True
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site, values_only
from . import case
from .scipy_optimize import _equation, _on_values, _plain

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(21)


def _gauss(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """21-point Gauss–Legendre nodes and weights on each interval [left, right], flattened."""
    half, mid = (right - left) / 2, (right + left) / 2
    return (mid[:, None] + half[:, None] * _NODES).ravel(), (half[:, None] * _WEIGHTS).ravel()


class _Integrand:
    """The integrand as QUADPACK integrates it, on values: g in x, or for an infinite range
    g(x(s))/s² in s ∈ (0, 1] with x = a + (1 − s)/s (both signs of x on the whole line). It is
    called once on an array of nodes where that gives what node-by-node calls give (checked at
    the first call), else node by node."""

    def __init__(self, g: Callable, a0: float, b0: float):
        self.g, self.a0, self.b0 = g, a0, b0
        self.batched: bool | None = None

    def nodes(self, s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points x where g is sampled and their weights, for nodes s and weights w."""
        a0, b0 = self.a0, self.b0
        if not (math.isinf(a0) or math.isinf(b0)):
            return s, w
        stretch, w = (1 - s) / s, w / s**2  # QUADPACK's substitution on its s ∈ (0, 1]
        if math.isinf(a0) and math.isinf(b0):
            return np.concatenate([stretch, -stretch]), np.concatenate([w, w])
        return (a0 + stretch if math.isinf(b0) else b0 - stretch), w

    def values(self, x: np.ndarray) -> np.ndarray:
        with values_only():
            if self.batched is not False:
                try:
                    whole = np.asarray(self.g(x.copy()), dtype=float)
                except Exception:  # noqa: BLE001  an integrand written for floats only
                    whole = None
                if self.batched:
                    return whole
            each = np.array([np.asarray(self.g(float(t)), dtype=float) for t in x])
        if each.ndim != 1:
            raise ValueError(f"the integrand must return a number, got shape {each.shape[1:]} "
                             f"(scipy.integrate.quad at {call_site()})")
        if self.batched is None:
            self.batched = whole is not None and whole.shape == each.shape and np.allclose(
                whole, each, rtol=1e-12, atol=0, equal_nan=True)
        return each

    def rule(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The Gauss–Legendre estimate on each interval."""
        x, wx = self.nodes(*_gauss(left, right))
        return (self.values(x) * wx).reshape(-1, len(left), len(_NODES)).sum(axis=(0, 2))

    def recorded(self, x: np.ndarray) -> Any:
        """g at the points x, recorded (an array of them, or plain values where g reads nothing traced)."""
        if self.batched:
            return self.g(x.copy())
        vals = [self.g(float(t)) for t in x]
        return np.stack(vals) if any(isinstance(v, Tracer) for v in vals) else np.array(vals, dtype=float)


def _partition(h: _Integrand, info: dict, value: float, tol: float, limit: int = 400) -> np.ndarray:
    """Subintervals on which the Gauss–Legendre rule agrees with itself on their halves to
    ``tol``/1000 (the derivative's integrand may be rougher than the integrand: t^c at 0 has
    t^c·log t, a spline's square has its basis functions' kinks): QUADPACK's, bisected where
    needed. QUADPACK may end with a partition that its
    extrapolation, not its rule, makes accurate (an endpoint singularity, a jump)."""
    last = int(info["last"])
    ends = np.stack([np.asarray(info["alist"][:last], float), np.asarray(info["blist"][:last], float)], 1)
    while True:
        mid = ends.mean(axis=1)
        whole = h.rule(ends[:, 0], ends[:, 1])
        halves = h.rule(np.concatenate([ends[:, 0], mid]), np.concatenate([mid, ends[:, 1]]))
        halves = halves[:len(ends)] + halves[len(ends):]
        errors = np.abs(whole - halves)
        if errors.sum() <= tol * 1e-3 or len(ends) >= limit:
            break
        split = errors > max(tol * 1e-3 / len(ends), errors.max() / 8)
        if not split.any():  # (NaN errors: nothing to split, and bisecting would not end)
            break
        ends = np.concatenate([ends[~split], np.stack([ends[split, 0], mid[split]], 1),
                               np.stack([mid[split], ends[split, 1]], 1)])
    if not (errors.sum() <= tol and abs(halves.sum() - value) <= 10 * tol + errors.sum()):  # (NaN fails too)
        raise UnsupportedOperationError(
            f"scipy.integrate.quad at {call_site()}: {len(ends)} subintervals do not resolve the integrand well enough "
            f"to differentiate it (a rule on them gives {halves.sum():.10g} against SciPy's {value:.10g}); split the "
            "range at its singularities or kinks (points=) or transform them away")
    return ends


def _quad(original: Callable, bound: inspect.BoundArguments) -> Any:
    p = bound.arguments
    if p.get("weight") is not None:
        raise UnsupportedOperationError(
            f"scipy.integrate.quad with weight={p['weight']!r} at {call_site()}: QUADPACK's weighted rules are not "
            "recorded; multiply the integrand by the weight")
    if p.get("complex_func"):
        raise UnsupportedOperationError(f"scipy.integrate.quad with complex_func=True at {call_site()}: traces are "
                                        "real; integrate the real and imaginary parts separately")
    g = _equation(p["func"], p.get("args", ()))
    a, b, wanted = p["a"], p["b"], p.get("full_output")
    with values_only():
        a0, b0 = float(_plain(a)), float(_plain(b))
        for k, v in p.items():
            p[k] = _on_values(v) if k == "func" else _plain(v)
        p["full_output"] = 1
        out = original(*bound.args, **bound.kwargs)
    if a0 == b0 or len(out) < 3 or "alist" not in out[2]:  # an empty range: no subintervals
        total = _limits(_Integrand(g, a0, b0), a, b) if a0 == b0 and math.isfinite(a0) else None
        if total is None:
            return out if wanted else out[:2]
        total.tape.note_value_dependence("scipy.integrate.quad's empty range at the traced point")
        return (out[0] + total, *out[1:]) if wanted else (out[0] + total, out[1])
    value = out[0]
    tol = max(float(p["epsabs"]), float(p["epsrel"]) * abs(value))
    # SciPy integrates from the lower limit to the upper and negates where b < a: so does the change
    flip = b0 < a0
    lo, hi = (b, a) if flip else (a, b)
    total = _change(_Integrand(g, min(a0, b0), max(a0, b0)), lo, hi, out[2], -value if flip else value, tol)
    if total is None:  # the integrand reads no traced value and the limits are constants
        return out if wanted else out[:2]
    total = -total if flip else total
    return (value + total, *out[1:]) if wanted else (value + total, out[1])


def _change(h: _Integrand, a: Any, b: Any, info: dict, value: float, tol: float) -> Any:
    """The recorded change of the integral from the traced point (None where nothing is traced)."""
    if (_holds_tracer(a) and math.isinf(h.a0)) or (_holds_tracer(b) and math.isinf(h.b0)):
        raise ValueError(f"an infinite limit cannot be traced (scipy.integrate.quad at {call_site()})")
    ends = _partition(h, info, value, tol)
    x, w = h.nodes(*_gauss(ends[:, 0], ends[:, 1]))
    terms = []
    samples = h.recorded(x)
    if isinstance(samples, Tracer):
        terms.append((samples - samples.value) @ w)  # zero at the traced point: the value stays SciPy's
    limits = _limits(h, a, b)
    terms = [t for t in terms + [limits] if isinstance(t, Tracer)]
    if not terms:
        return None
    terms[0].tape.note_value_dependence("scipy.integrate.quad's subintervals at the traced point")
    return sum(terms[1:], terms[0])


def _limits(h: _Integrand, a: Any, b: Any) -> Any:
    """Leibniz's terms of traced limits, g(b)·(b − b₀) − g(a)·(a − a₀) (zero at the traced point;
    an empty range, a = b, has these alone), or None where no limit is traced."""
    terms = []
    for limit, at, sign in ((b, h.b0, 1.0), (a, h.a0, -1.0)):
        if _holds_tracer(limit):
            terms.append(sign * float(h.values(np.array([at]))[0]) * (limit - at))
    terms = [t for t in terms if isinstance(t, Tracer)]  # (inside values_only(), as an outer quad's own
    return sum(terms[1:], terms[0]) if terms else None  # value: numbers, zero at the traced point)


_QUAD = {"quad": replacement(_quad, always=True)}  # (the integrand may read traced values)
# SciPy's nquad (so dblquad and tplquad) calls quad by its module's own name
swap_during_traces("scipy.integrate", _QUAD, eager=True)
swap_during_traces("scipy.integrate._quadpack_py", _QUAD)


def supported() -> list[str]:
    """The ``scipy.integrate`` functions a trace records."""
    return [f"scipy.integrate.{n}" for n in ("quad", "dblquad", "tplquad", "nquad")]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _si():
    import scipy.integrate as si
    return si


case("scipy.integrate.quad", lambda xp: lambda c: _si().quad(lambda t: np.exp(-c[0] * t) * np.sin(c[1] * t), 0, 3)[0],
     lambda r: (r.uniform(0.5, 2, size=2),), jax=False,
     note="SciPy's value; the derivative by a Gauss–Legendre rule on QUADPACK's subintervals")
case("scipy.integrate.quad", lambda xp: lambda c: _si().quad(lambda t, s: np.exp(-(t / s) ** 2), -np.inf, c[0],
                                                             args=(c[1],))[0],
     lambda r: (r.uniform(0.5, 2, size=2),), jax=False, variant="infinite limit, traced upper limit")
case("scipy.integrate.dblquad", lambda xp: lambda c: _si().dblquad(lambda y, x: np.exp(-c[0] * x * y), 0, 1, 0,
                                                                   lambda x: c[1] * x)[0],
     lambda r: (r.uniform(0.5, 2, size=2),), jax=False, note="by quad, nested")
