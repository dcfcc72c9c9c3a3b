"""scipy.optimize's root finders on equations that read traced values (jacc.numpy_api.scipy_optimize):
the value is SciPy's root, the Jacobian the implicit function theorem's (checked against closed
forms), the trace is value-dependent, and what has no derivative is refused by name."""

import threading

import numpy as np
import pytest
from conftest import in_a_fresh_process

import jacc
from jacc.trace import UnsupportedOperationError, values_only

so = pytest.importorskip("scipy.optimize")

X = np.array([2.0, 3.0])
A = np.array([[3.0, 0.5, -0.2], [0.1, 2.5, 0.4], [-0.3, 0.2, 4.0]])
B = np.array([0.7, -1.2, 2.0])


def cube_roots(x):
    return x ** (1 / 3), np.diag(x ** (-2 / 3) / 3)  # the roots of z³ = x and their Jacobian


# (f of x, its exact Jacobian at X)
CASES = {
    "brentq, x in the closure": (lambda x: so.brentq(lambda z: z**3 - x[0], 0, 10), cube_roots(X)[1][0]),
    "brentq, x in args=": (lambda x: so.brentq(lambda z, c: z**3 - c, 0, 10, args=(x[1],)), cube_roots(X)[1][1]),
    "brentq, a traced bracket": (lambda x: so.brentq(lambda z: z**3 - x[0], 0 * x[1], 10 + x[1]), cube_roots(X)[1][0]),
    "brenth, full_output": (lambda x: so.brenth(lambda z: z**3 - x[0], 0, 10, full_output=True)[0],
                            cube_roots(X)[1][0]),
    "ridder": (lambda x: so.ridder(lambda z: z**3 - x[1], 0, 10), cube_roots(X)[1][1]),
    "bisect": (lambda x: so.bisect(lambda z: z**3 - x[0], 0, 10), cube_roots(X)[1][0]),
    "toms748": (lambda x: so.toms748(lambda z: z**3 - x[0], 0, 10), cube_roots(X)[1][0]),
    "newton, scalar x0": (lambda x: so.newton(lambda z: z**3 - x[0], 1.0), cube_roots(X)[1][0]),
    "newton, array x0": (lambda x: so.newton(lambda z: z**3 - x, np.ones(2)), cube_roots(X)[1]),
    "newton, fprime": (lambda x: so.newton(lambda z: z**3 - x[0], 1.0, fprime=lambda z: 3 * z**2),
                       cube_roots(X)[1][0]),
    "root_scalar, bracket": (lambda x: so.root_scalar(lambda z: z**3 - x[0], bracket=(0, 10)).root,
                             cube_roots(X)[1][0]),
    "root_scalar, fprime=True": (lambda x: so.root_scalar(lambda z: (z**3 - x[1], 3 * z**2), x0=1.0, fprime=True,
                                                          method="newton").root, cube_roots(X)[1][1]),
    "fsolve": (lambda x: so.fsolve(lambda z: z**3 - x, np.ones(2)), cube_roots(X)[1]),
    "fsolve, full_output": (lambda x: so.fsolve(lambda z: z**3 - x, np.ones(2), full_output=True)[0],
                            cube_roots(X)[1]),
    "root (hybr)": (lambda x: so.root(lambda z: z**3 - x, np.ones(2)).x, cube_roots(X)[1]),
    # equations returning lists or tuples, as SciPy allows: their root was returned constant (J = 0)
    "fsolve, a list": (lambda x: so.fsolve(lambda z: [z[0]**3 - x[0], z[1]**3 - x[1]], np.ones(2)), cube_roots(X)[1]),
    "root, a tuple": (lambda x: so.root(lambda z: (z[0]**3 - x[0], z[1]**3 - x[1]), np.ones(2)).x, cube_roots(X)[1]),
    "fsolve, a list of one": (lambda x: so.fsolve(lambda z: [z[0]**3 - x[1]], np.ones(1)), cube_roots(X)[1][1:]),
    "root (lm, jac=True)": (lambda x: so.root(lambda z: (z**3 - x, np.diag(3 * z**2)), np.ones(2), jac=True,
                                              method="lm").x, cube_roots(X)[1]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_root_is_scipys_and_its_jacobian_the_implicit_functions(name):
    f, want = CASES[name]
    g = jacc.trace(f, X)
    assert np.array_equal(g.evaluate({"x": X})[g.outputs[0]], np.asarray(f(X)))  # SciPy's root, bit for bit
    np.testing.assert_allclose(jacc.jacobian(f)(X), want, rtol=1e-9, atol=1e-12)
    assert g.meta.get("value_dependent")


def test_a_system_with_a_matrix_has_the_implicit_functions_jacobian():
    """A z + z³/10 = b: dz/db = (A + 0.3·diag(z²))⁻¹ and dz/dA = −dz/db ⊗ z."""
    f = lambda a, b: so.fsolve(lambda z: a @ z + 0.1 * z**3 - b, np.zeros(3), xtol=1e-13)  # noqa: E731
    z = f(A, B)
    inv = np.linalg.inv(A + 0.3 * np.diag(z**2))
    Ja, Jb = jacc.jacobian(f, argnums=(0, 1))(A, B)
    np.testing.assert_allclose(Jb, inv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Ja, -np.einsum("ij,k->ijk", inv, z), rtol=1e-9, atol=1e-12)


def test_traced_once_calls_find_the_root_again():
    """The root is read at the traced point, so retrace=False traces every call: never a stale root."""
    f = lambda x: so.brentq(lambda z: z**3 + z - x[0], -10, 10)  # noqa: E731
    jf = jacc.jacobian(f, retrace=False)
    for x in (X, X + 5.0):
        z = f(x)
        np.testing.assert_allclose(jf(x)[0], 1 / (3 * z**2 + 1), rtol=1e-10)


def test_roots_of_roots_nest():
    """An equation whose value is itself a root (brentq inside brentq): z = (x·z)^(1/3), so z = √x."""
    f = lambda x: so.brentq(lambda z: z - so.brentq(lambda w: w**3 - x[0] * z, -10, 10), 0.1, 10)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(X)[0], 0.5 / np.sqrt(X[0]), rtol=1e-9)


def test_an_equation_that_reads_nothing_traced_leaves_the_root_constant():
    f = lambda x: x * so.brentq(lambda z: z**3 - 8.0, 0, 10)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(X), 2.0 * np.eye(2), rtol=1e-12)


def test_the_module_is_restored_and_calls_outside_traces_are_scipys():
    original = so.brentq
    jacc.jacobian(CASES["brentq, x in the closure"][0])(X)
    assert so.brentq is original
    assert so.brentq(lambda z: z - 1.0, 0, 2) == 1.0


def test_a_singular_root_and_a_non_square_system_are_refused_by_name():
    singular = lambda x: so.fsolve(lambda z: np.stack([z[0] - x[0], 0.0 * z[1]]), np.ones(2))  # noqa: E731
    with pytest.raises(jacc.UnsupportedOperationError, match="fsolve at .*test_scipy_optimize.py.*singular"):
        jacc.jacobian(singular)(X)
    wide = lambda x: so.root(lambda z: np.stack([z[0] - x[0], z[1] - x[1], z[0] * z[1]]), np.ones(2),  # noqa: E731
                             method="lm").x
    with pytest.raises(ValueError, match="shape \\(3,\\).*shape \\(2,\\).*as many equations as unknowns"):
        jacc.jacobian(wide)(X)


def test_compiled_code_that_still_cannot_take_a_traced_value_says_where_it_met_one():
    """SciPy's own quad asks for float() of its integrand's value: refused, naming the conversion.
    Kept in a dict, it is out of sight of jacc's replacements (which trace quad through the module or
    a name bound to it), so the retry with them does not help."""
    kept = {"quad": pytest.importorskip("scipy.integrate").quad}
    with pytest.raises(jacc.UnsupportedOperationError, match="float\\(\\) of a traced value.*test_scipy_optimize.py"):
        jacc.jacobian(lambda x: kept["quad"](lambda t: x[0] * t, 0, 1)[0])(X)


def test_values_only_is_per_thread():
    """A thread's solver reads values while another thread's trace keeps recording."""
    started, release, out = threading.Event(), threading.Event(), {}

    def other():
        def f(x):
            started.set()
            release.wait(5)
            return np.sin(x) * 2.0
        out["J"] = jacc.jacobian(f)(X)

    t = threading.Thread(target=other)
    t.start()
    started.wait(5)

    def mine(x):
        with values_only():
            release.set()
            total = float(np.sum(x))
        return x * total

    np.testing.assert_allclose(jacc.jacobian(mine)(X), 5.0 * np.eye(2))
    t.join(5)
    np.testing.assert_allclose(out["J"], np.diag(2 * np.cos(X)))


def test_a_first_trace_through_minpack_prints_nothing(capfd):
    """MINPACK prints an exception its callback raises; f's code names fsolve, so the replacements
    are on from the first trace and no refused conversion reaches it."""
    f = lambda x: so.fsolve(lambda z: z**3 + z - x, np.zeros(2))  # noqa: E731
    jacc.jacobian(f)(X)
    assert "Traceback" not in capfd.readouterr().err


def test_scipy_optimize_imported_by_f_during_its_first_trace():
    """The replacements are put in for modules imported when a trace starts; one that f imports
    itself is put in by a retry."""
    code = ("import numpy as np, jacc\n"
            "def f(x):\n"
            "    import scipy.optimize\n"
            "    return scipy.optimize.brentq(lambda z: z**3 - x[0], 0, 10)\n"
            "print(float(jacc.jacobian(f)(np.array([8.0]))[0]))\n")
    out = in_a_fresh_process(code)
    assert out.returncode == 0, out.stderr
    assert abs(float(out.stdout) - 1 / 12) < 1e-12


@pytest.mark.parametrize("f", [
    lambda p: so.minimize(lambda z: np.sum((z - p) ** 2), np.zeros(2)).x,
    lambda p: so.minimize(lambda z, c: np.sum((z - c) ** 2), np.zeros(2), args=(p,)).x,
    lambda p: so.minimize_scalar(lambda z: (z - p[0]) ** 2).x * p,
    lambda p: so.least_squares(lambda z: z - p, np.zeros(2)).x,
    lambda p: so.curve_fit(lambda t, a: a * t, np.arange(3.0), p[0] * np.arange(3.0), p0=[1.0])[0],
], ids=["minimize", "minimize, args=", "minimize_scalar", "least_squares", "curve_fit"])
def test_optima_of_traced_objectives_are_refused_with_the_way_around(f):
    """SciPy's own errors were "The user-provided objective function must return a scalar value" or
    a refused write inside its finite differences; an optimum of values that are not traced is SciPy's."""
    with pytest.raises(UnsupportedOperationError, match=r"scipy\.optimize\.\w+ at .*test_scipy_optimize"
                                                                    r".*a root of the objective's gradient"):
        jacc.jacobian(f)(X)
    g = lambda p: p * so.minimize(lambda z: (z[0] - 3.0) ** 2, np.zeros(1)).x[0]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(g)(X), np.eye(2) * so.minimize(lambda z: (z[0] - 3.0) ** 2, np.zeros(1)).x[0])


def test_a_root_scipy_did_not_find_is_refused():
    # df-sane stopped at a residual of 0.4 (success=False): the implicit-function Jacobian there
    # is the derivative of nothing SciPy returned, and was given without a word
    def G(z, a, b):
        return np.stack([z[0] ** 2 + a * z[1] - 1, z[1] ** 3 - b * z[0] + 0.5])

    p = np.array([2.0, 0.5])
    f = lambda p: so.root(G, np.array([0.5, 0.5]), args=(p[0], p[1]), method="df-sane", tol=1e-12).x  # noqa: E731
    with pytest.raises(UnsupportedOperationError, match="scipy.optimize.root .* did not converge"):
        jacc.jacobian(f)(p)
    g = lambda x: so.brentq(lambda z: z**3 + z - x[0], -10, 10, maxiter=2, disp=False, full_output=True)[0]  # noqa: E731
    with pytest.raises(UnsupportedOperationError, match="brentq .* did not converge"):
        jacc.jacobian(g)(np.array([2.0]))
    h = lambda x: so.fsolve(lambda z: z**2 + x[0], np.array([1.0]))  # noqa: E731  (no real root)
    with pytest.raises(UnsupportedOperationError, match="fsolve .* did not converge"):
        jacc.jacobian(h)(np.array([1.0]))
    # converged roots, full_output or not, as before
    k = lambda x: so.fsolve(lambda z: z**3 + z - x[0], np.array([1.0]), full_output=True)[0]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(k)(np.array([2.0])), [[0.25]], rtol=1e-10)
    np.testing.assert_allclose(jacc.jacobian(lambda x: so.fsolve(lambda z: z**3 + z - x[0], np.array([1.0])))(
        np.array([2.0])), [[0.25]], rtol=1e-10)


@pytest.mark.parametrize("name, f", [
    ("fmin", lambda p: so.fmin(lambda z: ((z - p) ** 2).sum(), np.zeros(2), disp=False)),
    ("fmin_bfgs", lambda p: so.fmin_bfgs(lambda z: ((z - p) ** 2).sum(), np.zeros(2), disp=False)),
    ("shgo", lambda p: so.shgo(lambda z: ((z - p) ** 2).sum(), [(-5, 5), (-5, 5)]).x),
    ("dual_annealing", lambda p: so.dual_annealing(lambda z: ((z - p) ** 2).sum(), [(-5, 5), (-5, 5)]).x),
    ("brute", lambda p: so.brute(lambda z: ((z - p) ** 2).sum(), ((-3, 3), (-3, 3)), Ns=5)),
    ("nnls", lambda p: so.nnls(np.eye(2) * p[0], p)[0]),
])
def test_more_optimisers_of_traced_values_are_refused_by_name(name, f):
    # SciPy's own ran on traced values: "objective function must return a scalar value", or
    # "argument 2 must be numpy.ndarray, not Tracer"
    with pytest.raises(UnsupportedOperationError, match=rf"scipy.optimize.{name} at .*optimum depends on them"):
        jacc.jacobian(f)(np.array([1.0, 2.0]))


_NOT_ROOTS = {  # (the function, a point where its solver stops short of a root)
    "newton stopped by maxiter": (lambda x: so.newton(lambda z: z ** 3 - x, 1.0, maxiter=5, disp=False), 27.0),
    "secant 'converged' far away": (lambda x: so.root_scalar(lambda z: np.exp(z) + z - x, method="secant",
                                                             x0=0.0, x1=0.5, xtol=1e-14).root, 100.0),
    "lm 'success' without a root": (lambda x: so.root(lambda z: z ** 2 + x, np.array([0.5]), method="lm").x,
                                    np.array([1.0])),
    "fsolve's tiny residual of a scaled equation": (lambda x: so.fsolve(lambda z: 1e-12 * (z ** 2 + x), 0.5),
                                                    np.array([1.0])),
    "brentq stopped by maxiter": (lambda x: so.brentq(lambda z: z ** 3 - x, 0.0, 10.0, maxiter=3, disp=False), 5.0),
    "array newton, one entry unconverged": (lambda x: so.newton(lambda z: z ** 3 - x, np.ones(2), maxiter=3),
                                            np.array([1.0, 5.0])),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(_NOT_ROOTS))
def test_a_solvers_result_that_is_not_a_root_is_refused_whatever_its_flag_says(name):
    """SciPy's flag was checked only with full_output=True, and secant and lm report success far
    from any root: jacc differentiated such a point as a root (newton at x = 27 gave 0.0807 where
    the function's slope is −0.0245 and the root's 0.037; found by a helper's hunt)."""
    with pytest.raises(UnsupportedOperationError, match="not a root of the equation"):
        f, x = _NOT_ROOTS[name]
        jacc.jacobian(f)(x)


def test_a_converged_solvers_root_with_a_loose_tolerance_is_still_differentiated():
    jf = jacc.jacobian(lambda x: so.newton(lambda z: z ** 3 - x, 2.0, tol=1e-3))
    assert float(jf(8.0)) == pytest.approx(1 / 12, rel=1e-6)


@pytest.mark.parametrize("solver", ["brentq", "newton"])
def test_full_output_results_hold_the_differentiated_root_too(solver):

    def f(p):  # the root of x³ + p·x − 1: dx/dp = −x / (3x² + p)
        g = lambda x: x ** 3 + p * x - 1.0  # noqa: E731
        x, r = (so.brentq(g, 0.0, 2.0, full_output=True) if solver == "brentq"
                else so.newton(g, 1.0, full_output=True))
        return np.stack([x, r.root])
    for p in (0.5, 1.5):
        x = so.brentq(lambda x: x ** 3 + p * x - 1.0, 0.0, 2.0)
        np.testing.assert_allclose(jacc.jacobian(f)(p), [-x / (3 * x * x + p)] * 2, rtol=1e-7)
