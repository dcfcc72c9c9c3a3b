"""scipy.integrate.quad (and dblquad, which calls it) of integrands that read traced values
(jacc.numpy_api.scipy_integrate): the value is SciPy's, bit for bit; the Jacobian is Leibniz's
rule, checked against closed forms, also where QUADPACK's own partition would not resolve the
derivative (an endpoint singularity, a jump); what is not recorded is refused by name."""

import math

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc

si = pytest.importorskip("scipy.integrate")

C = np.array([1.3, 0.7])

# (f of c, its exact Jacobian at C)
CASES = {
    "a closure, vectorizable": (
        lambda c: si.quad(lambda t: c[0] * t**2 + np.sin(c[1] * t), 0, 2)[0],
        [8 / 3, (2 * C[1] * math.sin(2 * C[1]) - 1 + math.cos(2 * C[1])) / C[1] ** 2]),
    "args=, written for floats (math, a branch)": (
        lambda c: si.quad(lambda t, a: math.exp(-t) * (a[0] if t > 1 else a[1]), 0, 3, args=(c,))[0],
        [math.exp(-1) - math.exp(-3), 1 - math.exp(-1)]),
    "traced limits": (lambda c: si.quad(lambda t: t**2, c[0], c[1] + 1)[0], [-C[0] ** 2, (C[1] + 1) ** 2]),
    "the whole line": (lambda c: si.quad(lambda t: np.exp(-c[0] * t * t), -np.inf, np.inf)[0],
                       [-0.5 * math.sqrt(math.pi) * C[0] ** -1.5, 0.0]),
    "a half line, traced finite limit": (lambda c: si.quad(lambda t: np.exp(c[0] * t), -np.inf, c[1])[0],
                                         [math.exp(C[0] * C[1]) * (C[1] / C[0] - 1 / C[0] ** 2),
                                          math.exp(C[0] * C[1])]),
    "an endpoint singularity": (lambda c: si.quad(lambda t: t ** (c[0] - 1.5), 0, 1)[0], [-1 / (C[0] - 0.5) ** 2, 0]),
    "full_output": (lambda c: si.quad(lambda t: c[0] * np.cos(t), 0, 1, full_output=1)[0], [math.sin(1), 0.0]),
    "points=": (lambda c: si.quad(lambda t: np.abs(t - 0.7) * c[0], 0, 2, points=[0.7])[0], [0.7**2 / 2 + 1.3**2 / 2, 0]),
    "dblquad, a traced inner limit": (
        lambda c: si.dblquad(lambda y, x: c[0] * x * y, 0, 1, 0, lambda x: c[1] * x)[0],
        [C[1] ** 2 / 8, C[0] * C[1] / 4]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_value_is_scipys_and_the_jacobian_leibnizs(name):
    f, want = CASES[name]
    g = jacc.trace(f, C)
    assert np.array_equal(g.evaluate({"c": C})[g.outputs[0]], np.asarray(f(C)))
    np.testing.assert_allclose(jacc.jacobian(f)(C), want, rtol=1e-8, atol=1e-10)
    assert g.meta.get("value_dependent")


def test_traced_once_calls_integrate_again():
    f = lambda c: si.quad(lambda t: np.exp(-c[0] * t), 0, np.inf)[0]  # noqa: E731  1/c0
    jf = jacc.jacobian(f, retrace=False)
    for c in (C, C + 1.0):
        np.testing.assert_allclose(jf(c), [-1 / c[0] ** 2, 0.0], rtol=1e-9)


def test_an_integrand_that_reads_nothing_traced_is_a_constant():
    f = lambda c: c * si.quad(lambda t: t, 0, 1)[0]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(C), 0.5 * np.eye(2), rtol=1e-14)


@pytest.mark.parametrize("call, words", [
    (lambda c: si.quad(lambda t: c[0] * t, 0, 1, weight="cos", wvar=2.0), "weight='cos'.*multiply the integrand"),
    (lambda c: si.quad(lambda t: c[0] * t, 0, 1, complex_func=True), "complex_func=True"),
    (lambda c: si.quad(lambda t: c[0] * t, 0, np.inf * c[1]), "infinite limit cannot be traced"),
    # QUADPACK's extrapolation gets 100·c0; no partition a plain rule can use does
    (lambda c: si.quad(lambda t: c[0] * t**-0.99, 0, 1)[0], "do not resolve the integrand.*points="),
])
def test_what_is_not_recorded_is_refused_by_name(call, words):
    with pytest.raises((jacc.UnsupportedOperationError, ValueError), match=words):
        jacc.jacobian(call)(C)


def test_a_derivative_rougher_than_the_integrand_is_resolved_too():
    """∫ S(t)² of a cubic spline through traced values: the derivative's integrand 2·S·Bᵢ has the
    basis functions' kinks, which a partition fitted to S² alone resolves only to about the value's
    tolerance; jacc refines to a thousandth of it. Exact: 2·G·y with G = ∫ Bᵢ Bⱼ."""
    sint = pytest.importorskip("scipy.interpolate")
    knots = np.linspace(0.0, 3.0, 7)
    y = np.sin(knots) + 1.0
    J = jacc.jacobian(lambda y: si.quad(lambda t: sint.CubicSpline(knots, y)(t) ** 2, 0, 3)[0])(y)
    basis = sint.CubicSpline(knots, np.eye(7))
    G = np.array([[si.quad(lambda t: basis(t)[i] * basis(t)[j], 0, 3, points=knots[1:-1], epsabs=1e-14,
                           epsrel=1e-14)[0] for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(J, 2 * G @ y, rtol=0, atol=2e-8 * np.abs(J).max())


@pytest.mark.parametrize("f, p, want", [
    # SciPy integrates from the lower limit and negates where b < a; an infinite limit written first
    # gave inf, a traced finite one hung, a finite reversed range was refused
    (lambda p: si.quad(lambda t: np.exp(-p[0] * t), np.inf, 0.0)[0], [1.3, 0.7], lambda p: [1 / p[0] ** 2, 0.0]),
    (lambda p: si.quad(lambda t: np.exp(p[0] * t), 0.0, -np.inf)[0], [1.3, 0.7], lambda p: [1 / p[0] ** 2, 0.0]),
    (lambda p: si.quad(lambda t: np.exp(-p[0] * t), np.inf, p[1])[0], [1.3, 0.7],
     lambda p: [math.exp(-p[0] * p[1]) * (p[1] / p[0] + 1 / p[0] ** 2), math.exp(-p[0] * p[1])]),
    (lambda p: si.quad(lambda t: p[0] * t, 2.0, p[1])[0], [1.3, 0.7], lambda p: [(p[1] ** 2 - 4) / 2, p[0] * p[1]]),
    (lambda p: si.quad(lambda t: np.exp(-(t * p[0]) ** 2), np.inf, -np.inf)[0], [1.3, 0.7],
     lambda p: [math.sqrt(math.pi) / p[0] ** 2, 0.0]),
])
def test_quad_with_limits_in_either_order(f, p, want):
    p = np.array(p)
    np.testing.assert_allclose(jacc.jacobian(f)(p), want(p), rtol=1e-7, atol=1e-12)


def test_dblquad_with_a_traced_number_as_a_limit():
    # (its inner quad ran inside the outer one's values: an internal AttributeError)
    p = np.array([1.3, 0.7])
    by_number = jacc.jacobian(lambda p: si.dblquad(lambda y, x: np.exp(-x * y), 0, 1, 0, p[1])[0])(p)
    by_function = jacc.jacobian(lambda p: si.dblquad(lambda y, x: np.exp(-x * y), 0, 1, 0, lambda x: p[1])[0])(p)
    np.testing.assert_allclose(by_number, [0.0, (1 - math.exp(-p[1])) / p[1]], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(by_number, by_function, rtol=1e-12)


@pytest.mark.parametrize("retrace", [True, False])
def test_an_empty_range_keeps_the_derivative_of_its_traced_limits(retrace):
    # F(x) = ∫₀ˣ cos at x = 0: the range is empty, the derivative cos 0 = 1 (Leibniz); it was 0, and
    # with retrace=False every later call reused that constant graph

    jf = jacc.jacobian(lambda x: si.quad(np.cos, 0.0, x)[0], retrace=retrace)
    for x in (0.5, 0.0, 1.0, 0.0, 2.0):
        assert float(jf(x)) == pytest.approx(math.cos(x), rel=1e-9)
    g = jacc.jacobian(lambda v: si.quad(lambda t: np.exp(-v[2] * t * t), v[0], v[1])[0], retrace=retrace)
    for v in ([0.7, 0.7, 1.0], [0.2, 3.0, 1.5], [1.0, 1.0, 2.0]):
        g0 = math.exp(-v[2] * v[0] ** 2)
        np.testing.assert_allclose(g(np.array(v))[:2], [-g0, math.exp(-v[2] * v[1] ** 2)], rtol=1e-8)


def test_cumulative_simpson_fills_scipys_namespace_empty():
    """SciPy calls xp.empty through its array-API wrappers: their caller, scipy.integrate, is served."""
    x = np.random.default_rng(0).normal(size=8)
    for f in (lambda t: si.cumulative_simpson(t), lambda t: si.cumulative_simpson(t, dx=0.3, initial=0)):
        value, J = jacc.value_and_jacobian(f)(x)
        np.testing.assert_allclose(value, f(x), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
