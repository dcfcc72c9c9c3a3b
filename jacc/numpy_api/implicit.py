"""Derivatives of values that a library computes on plain numbers: a root by the implicit
function theorem, and a library's value given the derivative of a traced formula.

Both record something whose value at the traced point is exactly the library's, so the trace's
values stay SciPy's bit for bit while its partials are exact:

- :func:`root` records one Newton step from a root z* of g, with z* constant,
  z* − J⁻¹ · (g(z*) − g(z*)₀): zero at the traced point, with derivative −J⁻¹ ∂g/∂θ.
- :func:`anchored` records v₀ + (h − h₀): the library's value v₀ and the derivative of a traced
  formula h that computes the same thing (h₀ is h's value at the traced point).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constructors import _listed
from ..trace import Tracer, UnsupportedOperationError, call_site, values_only

#: A library's value within this much of its largest magnitude of a traced formula's is that
#: formula's value up to rounding (see :func:`anchored`)
ANCHOR_RTOL = 1e-12


def _jacobian_at(g: Callable, z: np.ndarray) -> np.ndarray:
    """∂g/∂z at ``z``, the traced values g reads held at their values (a trace of its own)."""
    from ..api import jacobian

    with values_only():
        return np.asarray(jacobian(g, strategy="forward", compile=False, cache=False)(z), dtype=float)


#: How far from a root (the Newton step J⁻¹·g(z₀), relative to z₀) a library's result may be and
#: still be differentiated as one; plus ``root``'s ``atol``. A solver stopped early (maxiter,
#: a secant method's "converged" far from the root, a residual tiny only by the equation's scale)
#: returns a point whose implicit derivative is the derivative of nothing it computed.
ROOT_RTOL = 1e-4


def root(g: Callable, z0: Any, name: str, why_singular: str = "a multiple root?", atol: float = 1e-8) -> Any:
    """``z0``, a root of ``g``, as a function of the traced values ``g`` reads (``z0`` itself where
    it reads none). ``name`` is the library function, for messages; the trace becomes
    value-dependent, since the root is read at the traced point. A ``z0`` that one Newton step
    would move by more than :data:`ROOT_RTOL`·|z0| + ``atol`` is no root, and refused.

    >>> import jacc, numpy as np
    >>> jacc.jacobian(lambda x: root(lambda z: z**2 - x, np.sqrt(x), "sqrt"))(4.0).item()
    0.25
    """
    def equation(z):
        # SciPy's solvers take equations that return lists, [z[0] ** 3 - x[0], ...]: read as a
        # list, such a result held no Tracer, and the root came back constant (derivative 0)
        return _listed(g(z))

    z = np.asarray(z0, dtype=float)
    # a scalar root (brentq's, newton's float) meets the equation as a float, as the solver called it:
    # norminvgauss's _sf takes np.isscalar(x) to mean its parameters are scalars too
    scalar = isinstance(z0, (float, int, np.floating, np.integer))
    r = equation(float(z0) if scalar else z.copy())
    if not isinstance(r, Tracer):
        return z0
    r.tape.note_value_dependence(f"{name}'s root at the traced point")
    if np.shape(r) != z.shape and np.size(r) != z.size:
        raise ValueError(f"the equation's value has shape {np.shape(r)} where its unknown has shape {z.shape}: "
                         f"a root needs as many equations as unknowns ({name} at {call_site()})")
    J = _jacobian_at(equation, float(z0) if scalar else z).reshape(z.size, z.size)
    try:
        inv = np.linalg.inv(J)
    except np.linalg.LinAlgError:
        inv = None
    if inv is None or not np.all(np.isfinite(inv)):
        raise UnsupportedOperationError(
            f"{name} at {call_site()}: the equation's derivative in the unknown is singular at the root, so the "
            f"root has no derivative in what the equation reads ({why_singular})")
    residual = np.reshape(np.asarray(r.value, dtype=float), z.size)
    moved = np.abs(inv @ residual)
    far = moved > ROOT_RTOL * np.abs(z.reshape(-1)) + atol
    if far.any():
        k = int(np.argmax(np.where(far, moved, -1.0)))
        raise UnsupportedOperationError(
            f"{name} at {call_site()} returned a point that is not a root of the equation (its value there is "
            f"{residual[k]:.3g}, and a Newton step would move the unknown by {moved[k]:.3g} from "
            f"{z.reshape(-1)[k]:.6g}): "
            "jacc differentiates a root by the implicit function theorem, and this point's derivative would be "
            "nothing the solver computed; let the solver converge (more iterations, a tighter tolerance, another "
            "method or starting point), or check that the equation has a root there")
    step = np.reshape(r - r.value, (z.size,))  # zero at the traced point: the value stays the library's
    return z - np.reshape(inv @ step, z.shape)


def anchored(value: Any, traced: Any, scale: float | None = None) -> Any:
    """``value`` (a library's result at the traced point) with the derivative of ``traced``, a
    formula computing the same thing from the traced arguments; ``value`` where nothing is traced.
    ``scale``: the magnitude the formula's rounding is relative to (default: the largest of
    ``value``; a complex result's parts share their modulus's)."""
    if not isinstance(traced, Tracer):
        return value
    value = np.asarray(value, dtype=float)
    with np.errstate(all="ignore"):
        gap = np.abs(value - traced.value)
        if scale is None:
            scale = float(np.max(np.abs(value), initial=0.0, where=np.isfinite(value)))
        rounding = bool(np.all((gap <= ANCHOR_RTOL * scale) | (value == traced.value)))
    if rounding and np.shape(value) == traced.shape:  # the formula is the library's function: no constant
        return traced.tape.anchored(traced, value)  # of this call in the graph, so later calls may skip f
    return value + (traced - traced.value)  # (constants of this call: traced again at every call)
