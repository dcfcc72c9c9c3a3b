"""``scipy.integrate.odeint`` and ``solve_ivp``'s implicit methods (BDF, Radau, LSODA) of
traced values: the initial state, ``args=``, or values the right-hand side reads.

Their steps solve Newton systems with LAPACK, and odeint and LSODA are Fortran: a trace cannot
follow them (``solve_ivp``'s explicit Runge–Kutta methods trace as they are, see
:mod:`jacc.buffers`). So the value is SciPy's own, computed on values, and the derivative is that
of the same problem integrated by DOP853 (Dormand–Prince, order 8; SciPy's tableau) on the steps
that ``solve_ivp``'s own DOP853 takes at the same tolerances (found on values, then traced as
fixed steps), the output times from its dense output — recorded as v₀ + (h − h₀)
(:func:`jacc.numpy_api.implicit.anchored`), zero at the traced point, so the value stays SciPy's
bit for bit. Both solutions approximate the exact one to the requested tolerance, and so does the
derivative. The steps are fixed because differentiating the step-size control as well (as a
traced ``solve_ivp`` does) adds the derivative of its error estimate, a difference of nearly
equal numbers: at tolerance 10⁻¹¹ two evaluation orders of that Jacobian differed by 10⁻⁹. The
steps are read at the traced point, so the trace is value-dependent.

A stiff problem, the reason to choose an implicit method, may need far more explicit steps: one
where DOP853 takes more than :data:`MAX_EVALUATIONS` evaluations of the right-hand side is refused
by name rather than traced through every step. Refused too: traced output times, and
``dense_output=True`` or ``events=`` on traced values (SciPy's interpolant and event times would
be constants); for the explicit methods, a traced time span and ``events=``.

With ``t_eval=None`` the output times are the solver's own steps. The implicit methods hold them
fixed: the derivative is the solution's at those times. The explicit methods, traced through
their steps, also follow how the steps move with the arguments (as central differences of the
call do): 0.720 against 0.603 for one entry of a Lotka–Volterra solve. Pass ``t_eval=`` for
times that stay where they are.

>>> import numpy as np, scipy.integrate, jacc
>>> def decay(k):  # y' = −k·y, y(0) = 1: y(1) = exp(−k), dy(1)/dk = −exp(−k)
...     return scipy.integrate.odeint(lambda y, t: -k * y, 1.0, [0.0, 1.0])[-1, 0]
>>> bool(np.isclose(jacc.jacobian(decay)(0.5), -np.exp(-0.5), rtol=1e-7))
True
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, _listed, replacement, swap_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site, values_only
from . import case
from .implicit import anchored
from .scipy_optimize import _on_values, _plain

#: Right-hand side evaluations of the traced DOP853 solve beyond which a problem is refused as
#: stiff (DOP853 evaluates 12 times a step: about 250 steps, a graph of some 10⁵ operations)
MAX_EVALUATIONS = 3000

_EXPLICIT = ("RK45", "RK23", "DOP853")


def _explicit_solver() -> Callable:
    from scipy.integrate._ivp.ivp import solve_ivp  # SciPy's own: never the traced replacement

    return solve_ivp


def _reads_traced(fun: Callable, span: Any, y0: Any, extra: tuple) -> bool:
    """Whether the right-hand side reads a traced value (its closure, say): a call of it at the
    start, the middle and the end of the time ``span`` (one that reads it only from some time on,
    called at the start alone, went to SciPy's compiled solver, which refused the traced value
    naming its own code)."""
    with values_only():
        y = np.asarray(_plain(y0), dtype=float)
        a, b = (float(np.asarray(_plain(t))) for t in (span[0], span[-1]))
    try:
        return any(_holds_tracer(fun(t, y, *extra)) for t in (a, (a + b) / 2, b))
    except Exception:  # noqa: BLE001  (a right-hand side that needs more: SciPy's own call says so)
        return False


def _traced(fun: Callable, t_span: tuple, y0: Any, times: np.ndarray, rtol: Any, atol: Any, extra: tuple,
            what: str, max_step: float = np.inf) -> Any:
    """The solution at ``times`` (shape (n, len(times))), traced: DOP853 on the steps of its own
    adaptive run on values (:func:`_on_grid`), no longer than the caller's ``max_step`` (a narrow
    pulse in the right-hand side that the caller's step limit catches is caught here too); refused
    where that run looks stiff."""
    solve = _explicit_solver()
    plain, calls = _on_values(fun), [0]

    def counted(*a):
        calls[0] += 1
        if calls[0] > MAX_EVALUATIONS:
            raise _Stiff
        return plain(*a)

    why = None
    with values_only():
        try:
            probe = solve(counted, t_span, np.asarray(_plain(y0), dtype=float), method="DOP853", rtol=rtol,
                          atol=atol, args=extra or None, max_step=max_step)
            if probe.status != 0:
                why = f"fails ({probe.message})"
        except _Stiff:
            why = (f"needs more than jacc.numpy_api.scipy_ode.MAX_EVALUATIONS = {MAX_EVALUATIONS:,} evaluations "
                   "of the right-hand side: the problem looks stiff")
            steps = abs(float(t_span[1]) - float(t_span[0])) / max_step
            if 12 * steps > MAX_EVALUATIONS:  # (DOP853 evaluates 12 times a step)
                why = (f"needs more than jacc.numpy_api.scipy_ode.MAX_EVALUATIONS = {MAX_EVALUATIONS:,} evaluations "
                       f"of the right-hand side: the step limit {max_step:g} alone makes {steps:,.0f} steps (raise "
                       "MAX_EVALUATIONS, or the step limit)")
    if why:
        raise UnsupportedOperationError(
            f"{what} at {call_site()}: jacc differentiates an implicit solver's solution through the same "
            f"problem solved by the explicit DOP853 method, which traces; here DOP853 {why}. Write the implicit "
            "steps in NumPy (a backward Euler or BDF loop: np.linalg.solve traces)")
    return _on_grid(fun, np.asarray(probe.t, dtype=float), y0, times, extra)


def _on_grid(fun: Callable, grid: np.ndarray, y0: Any, times: np.ndarray, extra: tuple) -> Any:
    """DOP853's steps through ``grid`` (its own accepted steps, on values), the state at ``times``
    from its dense output (SciPy's interpolant of degree 7), stacked as columns. Fixed steps:
    differentiating the step-size control too (as a traced ``solve_ivp`` does) adds derivatives
    of the error estimate, a difference of nearly equal numbers, whose rounding then shows in the
    Jacobian (10⁻⁹ between two evaluation orders at tolerance 10⁻¹¹)."""
    from scipy.integrate._ivp import dop853_coefficients as tableau

    n = tableau.N_STAGES
    A, B, C = tableau.A[:n, :n], tableau.B, tableau.C[:n]
    extra_a, extra_c = tableau.A[n + 1:], tableau.C[n + 1:]
    y = _vector(y0)
    _note(y)
    out: dict = {}
    pending = sorted(set(map(float, times)), key=lambda t: (t - grid[0]) * np.sign(grid[-1] - grid[0] or 1))
    if pending and pending[0] == float(grid[0]):
        out[pending.pop(0)] = y
    f_old = None
    for t, h in zip(grid[:-1], np.diff(grid)):
        K = [f_old if f_old is not None else _note(_vector(fun(float(t), y, *extra)))]
        for i in range(1, n):  # (a stage's combination as one product, as SciPy's rk_step has it)
            K.append(_note(_vector(fun(float(t + C[i] * h), y + (h * A[i, :i]) @ np.stack(K), *extra))))
        y_new = y + (h * B) @ np.stack(K)
        f_old = _note(_vector(fun(float(t + h), y_new, *extra)))  # the next step's first stage
        inside = []
        while pending and (pending[0] - t) / h <= 1.0 + 1e-12:
            inside.append(pending.pop(0))
        if any(x != float(t + h) for x in inside):  # SciPy's dense output on this step
            K.append(f_old)
            for a_s, c_s in zip(extra_a, extra_c):
                K.append(_note(_vector(fun(float(t + c_s * h), y + (h * a_s[:len(K)]) @ np.stack(K), *extra))))
            dy = y_new - y
            F = [dy, h * K[0] - dy, 2 * dy - h * (f_old + K[0])] + list(h * tableau.D @ np.stack(K))
            for x_t in inside:
                x = (x_t - t) / h
                v = 0.0
                for i, f in enumerate(reversed(F)):
                    v = (v + f) * (x if i % 2 == 0 else 1 - x)
                out[x_t] = v + y
        for x_t in inside:
            out.setdefault(x_t, y_new)  # (an output at the step's end: the step's own value)
        y = y_new
    for x_t in pending:  # (an end time that rounding put past the last step: its value)
        out[x_t] = y
    return np.stack([np.reshape(out[float(t)], (-1,)) for t in times], axis=1)


def _note(v: Any) -> Any:
    """``v``, its trace marked value-dependent (the steps were read at the traced point)."""
    if isinstance(v, Tracer):
        v.tape.note_value_dependence(f"{_ODE_NOTE} at {call_site()}")
    return v


_ODE_NOTE = "an ODE solver's steps, read at the traced point"


def _vector(x: Any) -> Any:
    """A state or a right-hand side's value as a float vector (a list of traced values, stacked)."""
    v = _listed(x)
    return v if isinstance(v, Tracer) else np.asarray(v, dtype=float)


class _Stiff(Exception):
    """The probe's evaluations ran past :data:`MAX_EVALUATIONS`."""


def _odeint(original: Callable, bound: inspect.BoundArguments) -> Any:
    p = bound.arguments
    func, y0, t, extra = p["func"], p["y0"], p["t"], p.get("args") or ()
    extra = extra if isinstance(extra, tuple) else (extra,)
    if _holds_tracer(t):
        raise UnsupportedOperationError(f"scipy.integrate.odeint at {call_site()}: its output times are traced; "
                                        "pass them as constants")
    fun = func if p.get("tfirst") else (lambda tt, y, *a: func(y, tt, *a))
    times = np.asarray(t, dtype=float)
    if np.ndim(y0) == 0:  # odeint takes a number; solve_ivp a vector, as odeint hands func
        y0 = np.reshape(y0, (1,))
    if not (_holds_tracer((y0, extra)) or _reads_traced(fun, times, y0, extra)):
        return original(*bound.args, **bound.kwargs)
    with values_only():
        for k, v in p.items():
            p[k] = _on_values(v) if k in ("func", "Dfun") else _plain(v)
        out = original(*bound.args, **bound.kwargs)
    Y = out[0] if p.get("full_output") else out
    tol = 1.49012e-8  # odeint's default tolerances
    hmax = float(p.get("hmax") or 0.0)  # (0: odeint's "no limit")
    h = _traced(fun, (times[0], times[-1]), y0, times, tol if p.get("rtol") is None else p["rtol"],
                tol if p.get("atol") is None else p["atol"], extra, "scipy.integrate.odeint",
                hmax if hmax > 0 else np.inf)
    traced = anchored(Y, np.transpose(h))
    return (traced, out[1]) if p.get("full_output") else traced


def _solve_ivp(original: Callable, bound: inspect.BoundArguments) -> Any:
    p = bound.arguments
    method, options = p.get("method", "RK45"), dict(p.get("options") or {})
    fun, t_span, y0 = p["fun"], p["t_span"], p["y0"]
    extra = p.get("args") or ()
    extra = extra if isinstance(extra, tuple) else (extra,)
    name = f"scipy.integrate.solve_ivp(method={getattr(method, '__name__', method)!r})"
    explicit = getattr(method, "__name__", method) in _EXPLICIT
    if _holds_tracer(t_span) or (not explicit and _holds_tracer(p.get("t_eval"))):
        raise UnsupportedOperationError(f"{name} at {call_site()}: its time span{'' if explicit else ' or t_eval'} "
                                        "is traced; pass it as a constant")
    if explicit and not p.get("events"):  # Runge–Kutta: traced through its steps (no extra calls of fun)
        return original(*bound.args, **bound.kwargs)
    if not (_holds_tracer((y0, extra)) or _reads_traced(fun, t_span, y0, extra)):
        return original(*bound.args, **bound.kwargs)
    for bad, why in (("dense_output", "its interpolant would be a constant"),
                     ("events", "its event times would be constants")):
        if p.get(bad) and not (explicit and bad == "dense_output"):  # (Runge–Kutta's interpolant traces)
            raise UnsupportedOperationError(f"{name} with {bad}= at {call_site()}: {why}; pass the times you need "
                                            "as t_eval=")
    if explicit:  # Runge–Kutta: traced through its steps
        return original(*bound.args, **bound.kwargs)
    with values_only():
        for k, v in p.items():
            p[k] = _on_values(v) if k == "fun" else _plain(v)
        p["options"] = {k: _on_values(v) if k == "jac" else _plain(v) for k, v in options.items()}
        res = original(*bound.args, **bound.kwargs)
    if res.status < 0:  # (its states were constants: a Jacobian of zeros, without a word)
        raise UnsupportedOperationError(
            f"{name} at {call_site()} failed ({res.message}): jacc differentiates a solution that reaches the end "
            "of t_span; end the span before the failure, or integrate with an explicit method (RK45, DOP853), "
            "whose steps are traced up to where it stops")
    times = np.asarray(res.t, dtype=float)
    if not times.size:  # (t_eval=[]: no values, nothing to differentiate)
        return res
    span = (float(np.asarray(_plain(t_span[0]))), float(times[-1]))
    h = _traced(fun, span, y0, times, options.get("rtol", 1e-3), options.get("atol", 1e-6), extra, name,
                options.get("max_step", np.inf))
    res.y = anchored(res.y, h)
    return res


swap_during_traces("scipy.integrate", {"odeint": replacement(_odeint, always=True),
                                       "solve_ivp": replacement(_solve_ivp, always=True)}, eager=True)


def supported() -> list[str]:
    """The ``scipy.integrate`` ODE solvers a trace records by this module (the explicit methods of
    ``solve_ivp`` trace through SciPy's own code)."""
    return ["scipy.integrate.odeint", "scipy.integrate.solve_ivp"]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _si():
    import scipy.integrate as si
    return si


def _lotka_volterra(p):
    return lambda t, y: [p[0] * y[0] - p[1] * y[0] * y[1], -p[2] * y[1] + p[3] * y[0] * y[1]]


case("scipy.integrate.odeint",
     lambda xp: lambda p: _si().odeint(lambda y, t: _lotka_volterra(p)(t, y), [1.0, 1.0], np.linspace(0, 1, 3),
                                       rtol=1e-11, atol=1e-11),
     lambda r: (r.uniform(0.5, 1.0, 4),), jax=False,
     note="SciPy's value; the derivative by solve_ivp's DOP853 (traced) at the same times, tolerances and hmax")
case("scipy.integrate.solve_ivp",
     lambda xp: lambda p: _si().solve_ivp(_lotka_volterra(p), (0.0, 1.0), [1.0, p[0]], method="BDF",
                                          t_eval=[0.5, 1.0], rtol=1e-10, atol=1e-10).y,
     lambda r: (r.uniform(0.5, 1.0, 4),), jax=False, variant="method='BDF'",
     note="implicit methods (BDF, Radau, LSODA): as odeint; RK45, RK23 and DOP853 trace through their steps")
