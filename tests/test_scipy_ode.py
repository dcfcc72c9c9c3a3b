"""scipy.integrate.odeint and solve_ivp's implicit methods of traced values
(jacc.numpy_api.scipy_ode): SciPy's value bit for bit, the derivative through a traced DOP853
solve of the same problem, checked against closed forms and central differences; what is not
recorded (stiff problems, dense output, events, traced times) is refused by name."""

import math

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.numpy_api import scipy_ode
from jacc.trace import UnsupportedOperationError

si = pytest.importorskip("scipy.integrate")


def lotka_volterra(p):
    return lambda t, y: [p[0] * y[0] - p[1] * y[0] * y[1], -p[2] * y[1] + p[3] * y[0] * y[1]]


P = np.array([1.0, 0.5, 1.0, 0.3])

# (each at tolerance tol: the Jacobian at 10⁻¹¹ against central differences of the solve at 10⁻¹³)
SOLVES = {
    "odeint": lambda p, tol: si.odeint(lambda y, t: lotka_volterra(p)(t, y), [1.0, p[0]], np.linspace(0, 3, 5),
                                       rtol=tol, atol=tol),
    "odeint, tfirst, args=": lambda p, tol: si.odeint(lambda t, y, q: lotka_volterra(q)(t, y), [1.0, 1.0], [0.0, 2.0],
                                                 args=(p,), tfirst=True, rtol=tol, atol=tol)[-1],
    "BDF at t_eval": lambda p, tol: si.solve_ivp(lotka_volterra(p), (0, 3), [1.0, p[0]], method="BDF",
                                            t_eval=[1.0, 3.0], rtol=tol, atol=tol).y,
    "Radau at its steps": lambda p, tol: si.solve_ivp(lotka_volterra(p), (0, 3), [1.0, p[0]], method="Radau",
                                                 rtol=tol, atol=tol).y[:, -1],
    "LSODA, args=": lambda p, tol: si.solve_ivp(lambda t, y, q: lotka_volterra(q)(t, y), (0, 3), [1.0, 1.0],
                                           method="LSODA", t_eval=[3.0], args=(p,), rtol=tol, atol=tol).y,
    "odeint backwards in time": lambda p, tol: si.odeint(lambda y, t: lotka_volterra(p)(t, y), [1.0, p[0]],
                                                    [2.0, 1.3, 0.0], rtol=tol, atol=tol),
    "the Radau class": lambda p, tol: si.solve_ivp(lotka_volterra(p), (0, 2), [1.0, 1.0], method=si.Radau,
                                              t_eval=[2.0], rtol=tol, atol=tol).y,
}


@pytest.mark.parametrize("name", SOLVES)
def test_implicit_solutions_have_the_derivative_of_the_problem(name):
    f = SOLVES[name]
    got = jacc.jacobian(lambda p: f(p, 1e-11))(P)
    # (differences of LSODA's output at 10⁻¹¹ are noisy at 10⁻⁵: not smooth in p)
    want = fd_jacobian(lambda p: f(p, 1e-13), [P], 0, eps=1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_the_value_is_scipys_and_the_closed_form_holds():
    # y' = −k·y: y(t) = y0·exp(−k·t)
    def f(z):
        return si.odeint(lambda y, t: -z[0] * y, z[1], [0.0, 0.5, 2.0])[:, 0]

    z = np.array([0.7, 1.5])
    jf = jacc.jacobian(f)
    J = jf(z)
    t = np.array([0.0, 0.5, 2.0])
    np.testing.assert_allclose(J, np.stack([-t * z[1] * np.exp(-z[0] * t), np.exp(-z[0] * t)], 1), rtol=1e-7,
                               atol=1e-12)
    traced = jacc.trace(f, z)
    assert np.array_equal(traced.evaluate({"z": z})[traced.outputs[0]], f(z))  # SciPy's, bit for bit


def test_full_output_keeps_scipys_information():
    seen = []

    def f(k):
        y, info = si.odeint(lambda y, t: -k * y, [1.0], [0.0, 1.0], full_output=True)
        seen.append(info["nfe"][-1])
        return y[-1]

    np.testing.assert_allclose(jacc.jacobian(f)(0.5), [-math.exp(-0.5)], rtol=1e-7)
    assert seen and seen[0] > 0


def test_a_stiff_problem_is_refused_without_tracing_it():
    def robertson(k):
        rhs = lambda t, y: [-k[0] * y[0] + k[2] * y[1] * y[2],  # noqa: E731
                            k[0] * y[0] - k[2] * y[1] * y[2] - k[1] * y[1] ** 2, k[1] * y[1] ** 2]
        return si.solve_ivp(rhs, (0, 100.0), [1.0, 0.0, 0.0], method="BDF", t_eval=[100.0]).y[:, -1]

    with pytest.raises(UnsupportedOperationError, match="DOP853 needs more than .*MAX_EVALUATIONS.*stiff"):
        jacc.jacobian(robertson)(np.array([0.04, 3e7, 1e4]))


@pytest.mark.parametrize("solve, limit", [
    (lambda p, **kw: si.odeint(lambda y, t: -p * y, [1.0], [0.0, 1.0], **kw)[-1], "hmax"),
    (lambda p, **kw: si.solve_ivp(lambda t, y: -p * y, (0, 1), [1.0], method="Radau", t_eval=[1.0], **kw).y[0],
     "max_step"),
])
def test_the_derivative_solve_keeps_the_callers_step_limit(monkeypatch, solve, limit):
    # a step limit is how a caller makes a solver see a narrow pulse of the right-hand side; the
    # DOP853 solve behind the derivative ignored it, stepped over the pulse and missed its share
    # of the derivative (1.3 % of it for a pulse of width 0.01 in a span of 2)
    seen = []
    probe = scipy_ode._explicit_solver()
    monkeypatch.setattr(scipy_ode, "_explicit_solver",
                        lambda: lambda *a, **kw: seen.append(kw["max_step"]) or probe(*a, **kw))
    np.testing.assert_allclose(jacc.jacobian(lambda p: solve(p, **{limit: 0.125}))(0.5), [-math.exp(-0.5)], rtol=1e-7)
    assert seen == [0.125]
    with pytest.raises(UnsupportedOperationError, match=r"step limit 0\.003 alone makes 333 steps"):
        jacc.jacobian(lambda p: solve(p, **{limit: 0.003}))(0.5)


@pytest.mark.parametrize("kw, what", [({"dense_output": True}, "dense_output"),
                                      ({"events": lambda t, y: y[0] - 0.5}, "events")])
def test_what_would_be_constant_is_refused_by_name(kw, what):
    with pytest.raises(UnsupportedOperationError, match=f"method='Radau'.* with {what}="):
        jacc.jacobian(lambda p: si.solve_ivp(lambda t, y: -p * y, (0, 1), [1.0], method="Radau", **kw).y)(0.5)


def test_traced_times_are_refused_by_name():
    with pytest.raises(UnsupportedOperationError, match="odeint.*output times are traced"):
        jacc.jacobian(lambda T: si.odeint(lambda y, t: -y, [1.0], np.stack([0.0 * T, T]))[-1])(1.0)


def test_an_untraced_solve_is_scipys_own_call(monkeypatch):
    monkeypatch.setattr(scipy_ode, "MAX_EVALUATIONS", 0)  # the traced route would refuse
    got = jacc.jacobian(lambda x: x * si.odeint(lambda y, t: -y, 1.0, [0.0, 1.0])[-1, 0])(2.0)
    assert float(got) == pytest.approx(math.exp(-1), rel=1e-7)


def test_runge_kutta_methods_still_trace_through_their_steps(monkeypatch):
    monkeypatch.setattr(scipy_ode, "MAX_EVALUATIONS", 0)  # (this module is not involved)
    f = lambda p: si.solve_ivp(lambda t, y: -p * y, (0, 1), [1.0], method="RK45", t_eval=[1.0]).y[0]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(0.5), fd_jacobian(f, [0.5], 0), rtol=1e-6)


def test_an_empty_t_eval_gives_an_empty_jacobian():
    f = lambda k: si.solve_ivp(lambda t, y: -k * y, (0.0, 2.0), [1.0], method="BDF", t_eval=[]).y  # noqa: E731
    # (SciPy's y is then an empty list: no outputs, so no blocks; it crashed with an IndexError)
    assert f(0.5) == [] and len(jacc.jacobian(f)(0.5)) == 0


@pytest.mark.parametrize("method", ["odeint", "Radau"])
def test_a_right_hand_side_that_reads_a_traced_value_later_in_the_span_is_traced(method):
    rhs = lambda k: lambda t, y: -y if t < 1.0 else -k * y  # noqa: E731  (k only from t = 1 on)
    f = (lambda k: si.odeint(rhs(k), [1.0], [0.0, 2.0], tfirst=True, rtol=1e-10, atol=1e-12)[-1]) if method == "odeint" \
        else (lambda k: si.solve_ivp(rhs(k), (0, 2.0), [1.0], method=method, t_eval=[2.0], rtol=1e-10, atol=1e-12).y[0])
    # y(2) = exp(−1 − k): read at the start only, the solve went to SciPy's compiled code, which
    # refused the traced value naming its own lines
    np.testing.assert_allclose(jacc.jacobian(f)(0.5), [-math.exp(-1.5)], rtol=1e-6)


@pytest.mark.parametrize("method", ["RK45", "Radau"])
def test_a_traced_time_span_is_refused_by_name(method):
    with pytest.raises(UnsupportedOperationError, match=f"method='{method}'.* time span .*is traced"):
        jacc.jacobian(lambda T: si.solve_ivp(lambda t, y: -y, (0.0, T), [1.0], method=method).y[:, -1])(1.0)


def test_events_of_a_traced_runge_kutta_solve_are_refused_by_name():
    with pytest.raises(UnsupportedOperationError, match="method='RK45'.* with events="):
        jacc.jacobian(lambda k: si.solve_ivp(lambda t, y: -k * y, (0.0, 1.0), [1.0],
                                             events=lambda t, y: y[0] - 0.5).y[:, -1])(1.0)


def test_a_failed_implicit_run_is_refused_not_differentiated_as_constants():
    # y' = y², y(0) = p blows up at t = 1/p: BDF stops with status −1, and its states were returned
    # as constants (a Jacobian of zeros)

    def f(p):
        return si.solve_ivp(lambda t, y: y ** 2, (0.0, 2.0), [p], method="BDF", rtol=1e-8, atol=1e-10).y[0, 5]
    with pytest.raises(UnsupportedOperationError, match="failed"):
        jacc.jacobian(f)(1.0)
