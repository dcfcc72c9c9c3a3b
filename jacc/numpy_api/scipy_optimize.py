"""``scipy.optimize``'s root finders on equations that read traced values: the root as a function
of those values, by implicit differentiation.

``brentq(lambda z: z**3 - x, 0, 10)`` runs compiled code that asks for ``float()`` of each value
of the equation, which a trace cannot follow; differentiating the solver's iterations would not
give the root's derivative anyway (only their limit does). While ``f`` runs on traced arguments
these functions are replaced on the ``scipy.optimize`` module (see
:func:`jacc.constructors.swap_during_traces`). The replacement runs SciPy's solver on values
(:func:`jacc.trace.values_only`: nothing is recorded), then records one Newton step from its root
z*, with z* constant:

    z* − J⁻¹ · (g(z*) − g(z*)₀),  J = ∂g/∂z at z*,

where g is the equation and g(z*)₀ the value of g(z*) at the traced point. The step is exactly
zero there, so the value is SciPy's root, and its derivative w.r.t. whatever g reads is
−J⁻¹ ∂g/∂θ: the implicit function theorem's. J is computed by jacc itself (a Jacobian of g in z
alone, the traced values held as constants). The root is read at the traced point, so the trace is
value-dependent (traced-once calls trace again). A root where J is singular has no derivative and
is refused. Replaced: ``brentq``, ``brenth``, ``ridder``, ``bisect``, ``toms748``, ``newton``,
``root_scalar``, ``fsolve`` and ``root`` (``jac=`` and ``fprime=`` as SciPy; their values are only
handed to the solver). As for ``scipy.linalg``, calls through the module are seen
(``scipy.optimize.brentq(...)``, ``optimize.brentq(...)``), and names imported before
(``from scipy.optimize import brentq``; :class:`jacc.constructors.aliases`). A
function whose own code names one of them is traced with the replacements from its first call;
one that calls them through a helper meets the solver's refused ``float()`` at its first trace and
runs again with them (MINPACK prints that refusal once).

>>> import numpy as np, scipy.optimize, jacc
>>> cube_root = lambda x: scipy.optimize.brentq(lambda z: z**3 - x, 0.0, 10.0)
>>> J = jacc.jacobian(cube_root)(8.0)  # d(x^(1/3))/dx at 8 = 1/12
>>> round(float(J), 12)
0.083333333333
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces
from ..trace import UnsupportedOperationError, call_site, values_only
from . import case
from .implicit import root as _root


def _plain(x: Any) -> Any:
    """A value as SciPy takes it: traced arrays (inside :func:`values_only`) read as values."""
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    return np.asarray(x) if _holds_tracer(x) else x


def _on_values(fn: Any) -> Any:
    """A callable as the solver calls it: its results read as values."""
    if not callable(fn):
        return fn

    def plain(*z):
        return _plain(fn(*z))
    return plain


#: the solvers' tolerances on the unknown (absolute, or relative for fsolve's and root's: read as
#: absolute, the more lenient), which loosen the check that their result is a root
_X_TOLERANCES = ("xtol", "tol", "x_tol", "x_rtol")


def _implicit(g: Callable, root: Any, what: str, bound: inspect.BoundArguments | None = None) -> Any:
    given = [] if bound is None else [bound.arguments.get(k) for k in _X_TOLERANCES]
    atol = max([1e-8] + [float(t) for t in given if isinstance(t, (int, float)) and not isinstance(t, bool)])
    return _root(g, root, f"scipy.optimize.{what}", atol=atol)


def _equation(fn: Callable, extra: Any, first: bool = False) -> Callable:
    """The equation g(z) = fn(z, *extra) (its first value where ``fn`` also returns a derivative)."""
    extra = extra if isinstance(extra, tuple) else (extra,)
    if first:
        return lambda z: fn(z, *extra)[0]
    return lambda z: fn(z, *extra)


def _solve(original: Callable, what: str, bound: inspect.BoundArguments, fn: str,
           derivative: str | None) -> tuple[Any, Callable]:
    """SciPy's ``original`` run on values with the ``bound`` arguments; its result and the equation."""
    p = bound.arguments
    g = _equation(p[fn], p.get("args", ()), derivative is not None and p.get(derivative) is True)
    with values_only():
        for k, v in p.items():
            p[k] = _on_values(v) if k in (fn, "fprime", "fprime2", "jac") else _plain(v)
        return original(*bound.args, **bound.kwargs), g


def _scalar(what: str) -> Callable:
    """brentq, brenth, ridder, bisect, toms748 and newton: the root (and SciPy's results object
    with ``full_output=True``)."""
    def run(original, bound):
        out, g = _solve(original, what, bound, "f" if "f" in bound.arguments else "func", None)
        if bound.arguments.get("full_output"):
            root, *rest = out
            if rest and getattr(rest[0], "converged", True) is False:  # (disp=False: SciPy's flag, not an error)
                raise _unconverged(what, str(getattr(rest[0], "flag", "")))
            root = _implicit(g, root, what, bound)
            if rest and hasattr(rest[0], "root"):  # (the results object's root is the same root)
                rest[0].root = root
            return (root, *rest)
        return _implicit(g, out, what, bound)
    return run


def _unconverged(what: str, why: str) -> UnsupportedOperationError:
    """The refusal of a root SciPy did not find: the implicit function theorem differentiates a
    root, and where the equation does not vanish the result is the derivative of nothing SciPy
    returned (df-sane stopping at a residual of 0.4 gave a Jacobian without a word)."""
    return UnsupportedOperationError(
        f"scipy.optimize.{what} at {call_site()} did not converge ({why}): jacc differentiates its result as a root "
        "of the equation, which it is not; try another method, starting point or tolerance")


def _vanishes(residual) -> bool:
    """Whether a solver that reports failure still stopped at a root (fsolve's "not making good
    progress" under a tolerance below what double precision resolves): every residual ≤ 1e-10."""
    return residual is not None and bool(np.all(np.abs(np.asarray(residual, dtype=float)) <= 1e-10))


def _result(what: str, fn: str, field: str, derivative: str) -> Callable:
    """root_scalar and root: SciPy's results object with the root differentiable."""
    def run(original, bound):
        out, g = _solve(original, what, bound, fn, derivative)
        if (getattr(out, "success", True) is False or getattr(out, "converged", True) is False) and not _vanishes(
                getattr(out, "fun", None)):
            raise _unconverged(what, str(getattr(out, "message", None) or getattr(out, "flag", "")))
        setattr(out, field, _implicit(g, getattr(out, field), what, bound))
        return out
    return run


def _fsolve(original, bound):
    wanted = bound.arguments.get("full_output")
    bound.arguments["full_output"] = True  # (its flag says whether it converged)
    (x, info, ier, message), g = _solve(original, "fsolve", bound, "func", None)
    if ier != 1 and not _vanishes(info.get("fvec")):
        raise _unconverged("fsolve", str(message))
    x = _implicit(g, x, "fsolve", bound)
    return (x, info, ier, message) if wanted else x


_REPLACED = {
    **{n: _scalar(n) for n in ("brentq", "brenth", "ridder", "bisect", "toms748", "newton")},
    "root_scalar": _result("root_scalar", "f", "root", "fprime"),
    "root": _result("root", "fun", "x", "jac"),
    "fsolve": _fsolve,
}

def _no_optimum(what: str, fn: str, start: str | None) -> Callable:
    """The optimisers (minimize, curve_fit, shgo, nnls, …: :data:`_OPTIMA`): SciPy's own where nothing
    they read is traced; else a refusal that says what to write instead (SciPy's own error was "The
    user-provided objective function must return a scalar value", or a plain-array write)."""
    def run(original, bound):
        p = bound.arguments
        data = {k: v for k, v in p.items() if k != fn and not callable(v)}
        reads = _holds_tracer(tuple(data.values()))
        if not reads and callable(p.get(fn)) and what != "curve_fit":  # a traced value behind the objective?
            try:  # (one call of it, at the start, the middle of its bounds, or at 0)
                x0 = _start_point(p, start)
                extra = p.get("args", ())
                reads = _holds_tracer(p[fn](x0, *(extra if isinstance(extra, tuple) else (extra,))))
            except Exception:  # (an objective that needs more: SciPy's call says so)
                reads = False
        if not reads:
            return original(*bound.args, **bound.kwargs)
        raise UnsupportedOperationError(
            f"scipy.optimize.{what} at {call_site()}: its {'problem data are' if fn is None else 'objective reads'} "
            "traced values, so the optimum depends on them; jacc differentiates roots (scipy.optimize.root, "
            "fsolve, brentq, ...) by the implicit function theorem, not optima: write the optimum as a root of "
            "the objective's gradient, written out, e.g. scipy.optimize.root(lambda z: grad(z), z0).x")
    return run


def _start_point(p: dict, start: str | None) -> Any:
    """Where to call an objective once: its start ``x0``, the middle of its ``bounds`` or ``ranges``
    (infinite ends read as 0), else 0."""
    if not start or p.get(start) is None:
        return 0.0
    if start not in ("bounds", "ranges"):
        return np.asarray(_plain(p[start]), dtype=float)
    b = p[start]
    if hasattr(b, "lb"):  # (scipy.optimize.Bounds)
        lo, hi = b.lb, b.ub
    else:
        lo, hi = zip(*[(r.start, r.stop) if isinstance(r, slice) else tuple(r) for r in b])
    ends = np.stack(np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)))
    return np.where(np.isfinite(ends), ends, 0.0).mean(axis=0)


#: optimisers, refused where what they read is traced: the objective's name and where to call it
#: once (None: a problem given by data only, nnls and the linear programs)
_OPTIMA = {"minimize": ("fun", "x0"), "minimize_scalar": ("fun", None), "least_squares": ("fun", "x0"),
           "curve_fit": ("f", None), "basinhopping": ("func", "x0"),
           **{n: ("func", "x0") for n in ("fmin", "fmin_powell", "fmin_l_bfgs_b", "fmin_tnc")},
           **{n: ("f", "x0") for n in ("fmin_cg", "fmin_bfgs", "fmin_ncg")},
           **{n: ("func", "bounds") for n in ("shgo", "dual_annealing", "differential_evolution", "direct")},
           "brute": ("func", "ranges"), **{n: (None, None) for n in ("nnls", "lsq_linear", "linprog", "milp")}}

# (every call: the equation's closure may hold traced values that no argument shows)
swap_during_traces("scipy.optimize", {**{n: replacement(run, always=True) for n, run in _REPLACED.items()},
                                      **{n: replacement(_no_optimum(n, *a), always=True) for n, a in _OPTIMA.items()}},
                   eager=True)


def supported() -> list[str]:
    """The ``scipy.optimize`` functions a trace records (the optimisers of :data:`_OPTIMA` are
    refused by name where what they read is traced)."""
    return [f"scipy.optimize.{n}" for n in _REPLACED]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _so():
    import scipy.optimize as so
    return so


case("scipy.optimize.brentq", lambda xp: lambda x: _so().brentq(lambda z: z**3 + z - x, -10.0, 10.0),
     lambda r: (np.array(r.uniform(1, 3)),), jax=False, note="implicit differentiation at SciPy's root")
case("scipy.optimize.newton",
     lambda xp: lambda x: _so().newton(lambda z, c: np.cos(z) - c * z, np.ones(3), args=(x,)),
     lambda r: (r.uniform(0.5, 2.0, size=3),), jax=False, note="array x0: elementwise roots")
case("scipy.optimize.root_scalar",
     lambda xp: lambda x: _so().root_scalar(lambda z: np.exp(z) - x, bracket=(-5, 5)).root,
     lambda r: (np.array(r.uniform(1, 3)),), jax=False)
case("scipy.optimize.fsolve",
     lambda xp: lambda a, b: _so().fsolve(lambda z: a @ z + 0.1 * z**3 - b, np.zeros(3)),
     lambda r: (r.normal(size=(3, 3)) + 3 * np.eye(3), r.normal(size=3)), argnums=(0, 1), jax=False)
case("scipy.optimize.root", lambda xp: lambda x: _so().root(lambda z: np.tanh(z) + z - x, np.zeros(2)).x,
     lambda r: (r.normal(size=2),), jax=False, note="any method; jac=True or a callable jac only guides the solver")
