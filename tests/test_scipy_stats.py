"""scipy.stats distributions of traced arrays (jacc.numpy_api.scipy_stats): values equal SciPy's,
Jacobians equal central differences of SciPy itself, outside the support included."""

import warnings

import numpy as np
import pytest
from conftest import fd_jacobian, in_a_fresh_process

import jacc

st = pytest.importorskip("scipy.stats")
from scipy.stats import gamma, norm  # noqa: E402  (distributions held by a name of their own)

X = np.array([0.3, 0.9, 1.7, 2.6])
METHODS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")
# (distribution, shape parameters): every method's formula is NumPy and scipy.special code jacc records
WHOLE = [("norm", ()), ("expon", ()), ("laplace", ()), ("logistic", ()), ("cauchy", ()), ("lognorm", (0.5,)),
         ("weibull_min", (1.5,)), ("halfnorm", ()), ("gumbel_r", ()), ("lomax", (2.0,)), ("genextreme", (0.2,)),
         ("rayleigh", ()), ("gompertz", (1.2,))]


def _check(f, x, argnum=0):
    args = [x] if argnum == 0 else x
    got = jacc.jacobian(f, argnums=argnum, strategy="reverse")(*args)  # (the value is the point here)
    np.testing.assert_allclose(got, fd_jacobian(f, list(args), argnum), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, shapes", WHOLE)
@pytest.mark.parametrize("method", METHODS)
def test_methods_match_scipy_in_the_points_loc_scale_and_shape(name, shapes, method):
    d = getattr(st, name)

    def m(*args, **kwargs):  # looked up at each call: a method bound before the trace stays SciPy's
        return getattr(d, method)(*args, **kwargs)

    g = jacc.trace(lambda x: m(x, *shapes, loc=0.1, scale=1.3), X)
    np.testing.assert_allclose(g.evaluate({"x": X})[g.outputs[0]], m(X, *shapes, loc=0.1, scale=1.3), rtol=1e-13)
    _check(lambda x: m(x, *shapes, loc=0.1, scale=1.3), X)
    _check(lambda v: m(0.8, *shapes, loc=v[0] * 0.1, scale=1.0 + v), X)  # loc and scale, broadcast
    if shapes:
        _check(lambda v: m(X, *[s * (1.0 + 0.1 * v) for s in shapes]), X)
    _check(lambda v: getattr(d(*shapes, loc=v[1] * 0.1, scale=2.0), method)(v), X)  # a frozen distribution


_LOGPDF = st.norm.logpdf  # a method bound before any trace, at module level


def test_methods_bound_before_the_trace_are_swapped_too():
    """A bound method kept in a global, a closure or passed as f (jacc.constructors.aliases)."""
    cdf = st.gamma(2.5).cdf
    for f in (lambda x: _LOGPDF(x, loc=0.2), lambda x: cdf(x ** 2), st.t(3.0).logpdf, st.norm.logcdf):
        np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)
    assert _LOGPDF.__func__ is vars(type(st.norm).__mro__[1])["logpdf"]  # SciPy's own again


def test_outside_the_support_scipys_constants_with_zero_derivatives():
    x = np.array([-1.0, 0.5, 2.0, np.nan])
    for f, want, outside in [(lambda v: st.expon.logpdf(v), [-np.inf, -0.5, -2.0, np.nan], [0, 3]),
                             (lambda v: st.uniform.cdf(v), [0.0, 0.5, 1.0, np.nan], [0, 2, 3]),
                             (lambda v: st.uniform.sf(v), [1.0, 0.5, 0.0, np.nan], [0, 2, 3]),
                             (lambda v: st.norm.pdf(v, scale=-1.0), [np.nan] * 4, [0, 1, 2, 3])]:  # (as SciPy)
        np.testing.assert_array_equal(f(x), want)
        g = jacc.trace(f, x)
        np.testing.assert_array_equal(g.evaluate({"v": x})[g.outputs[0]], want)
        J = jacc.jacobian(f, nonfinite="propagate")(x)
        assert np.all(J[outside] == 0)
        assert np.all(J[:, outside] == 0)
    J = jacc.jacobian(lambda v: st.expon.logpdf(v))(np.array([-1.0, 0.5, 2.0]))
    np.testing.assert_array_equal(J, np.diag([0.0, -1.0, -1.0]))  # −inf has a zero derivative


def test_formulas_with_branches_see_only_their_own_points():
    """SciPy's apply_where runs each branch on its entries (t's ν = ∞ is the normal's density)."""
    df = np.array([3.0, np.inf, 5.0, np.inf])
    f = lambda x: st.t.logpdf(x, df)  # noqa: E731
    finite = np.where(df < np.inf, df, 1.0)
    np.testing.assert_allclose(jacc.jacobian(f)(X), np.diag(np.where(df < np.inf, -(finite + 1) * X / (finite + X * X),
                                                                     -X)), rtol=1e-12)


def test_every_call_reads_the_support_again():
    jf = jacc.jacobian(lambda v: st.expon.pdf(v), retrace=False)
    np.testing.assert_allclose(jf(np.array([1.0, 2.0])), np.diag(-np.exp([-1.0, -2.0])), rtol=1e-12)
    np.testing.assert_array_equal(jf(np.array([-1.0, 2.0])), np.diag([0.0, -np.exp(-2.0)]))


def test_what_is_not_numpy_code_is_refused_by_name():
    with pytest.raises(jacc.UnsupportedOperationError, match=r"^the compiled ufunc _skewnorm_cdf is not supported .*"
                                                             r"_continuous_distns.py:\d+ \(from .*test_scipy_stats.py"):
        jacc.trace(lambda v: st.skewnorm.cdf(v * 0.2, 2.0), X)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"scipy.stats.vonmises.cdf at .*test_scipy_stats.py.*"
                                                             r"compiled code"):
        jacc.trace(lambda v: st.vonmises.cdf(v, 2.0), X)


def test_the_incomplete_gamma_functions_slope_in_a_is_the_integrals():
    """∂P(a, x)/∂a = ∫₀ˣ ln t · t^(a−1) e^(−t) dt / Γ(a) − ψ(a)·P(a, x), by quadrature, on both sides
    of x = a + 1 (series and continued fraction), and at integer a (where the fraction ends)."""
    special, integrate = pytest.importorskip("scipy.special"), pytest.importorskip("scipy.integrate")
    a = np.array([0.3, 1.0, 2.0, 4.5, 12.0, 12.0])
    x = np.array([0.8, 3.0, 0.7, 9.0, 6.0, 20.0])
    got = np.diag(jacc.jacobian(lambda a: special.gammainc(a, x))(a))
    for ai, xi, g in zip(a, x, got):
        dens = lambda t, ai=ai: np.log(t) * np.exp(special.xlogy(ai - 1.0, t) - t - special.gammaln(ai))  # noqa: E731
        want = integrate.quad(dens, 0.0, xi, epsabs=0.0, epsrel=1e-13, limit=400)[0] - special.digamma(ai) * \
            special.gammainc(ai, xi)
        assert abs(g - want) <= 1e-10 * abs(want), (ai, xi, g, want)


@pytest.mark.parametrize("f", [lambda v: st.triang.pdf(v, 0.4), lambda v: st.triang.cdf(v, 0.4, scale=1.5),
                               lambda v: st.triang.logsf(np.abs(v) / 3, 0.3 + 0.1 * v),
                               lambda v: st.triang.ppf(np.clip(np.abs(v) / 3, 0.05, 0.95), 0.3),
                               lambda v: st.kappa4.pdf(v, 0.3, 0.2), lambda v: st.kappa4.cdf(v, -0.2, 0.5 + 0.1 * v)])
def test_formulas_that_select_lazily_see_only_their_own_points(f):
    """triang and kappa4 pick their formula per entry with SciPy's _lazyselect."""
    v = np.array([0.1, 0.3, 0.5, 0.9, 1.2, -0.1])
    g = jacc.trace(f, v)
    with np.errstate(all="ignore"):
        want = f(v)
        np.testing.assert_allclose(g.evaluate({"v": v})[g.outputs[0]], want, rtol=1e-13)
        fd = fd_jacobian(f, [v], 0)
    J = jacc.jacobian(f, nonfinite="propagate")(v)
    ok = np.isfinite(fd)
    np.testing.assert_allclose(J[ok], fd[ok], rtol=1e-6, atol=1e-7)


def test_the_beta_density_in_its_point_and_shape_parameters():
    v = np.array([0.3, 2.0, 3.5])
    f = lambda v: st.beta.pdf(v[0] * np.array([0.5, 1.0, 2.0]), v[1], v[2])  # noqa: E731
    g = jacc.trace(f, v)
    np.testing.assert_allclose(g.evaluate({"v": v})[g.outputs[0]], f(v), rtol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(f)(v), fd_jacobian(f, [v], 0), rtol=1e-7)


def test_jacc_does_not_import_scipy_stats():
    code = "import sys, jacc; jacc.jacobian(lambda x: x * 2.0)(1.0); print('scipy.stats' in sys.modules)"
    out = in_a_fresh_process(code, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name, shapes", [("gamma", (2.5,)), ("chi2", (3.0,)), ("t", (4.0,)), ("invgamma", (2.0,)),
                                          ("beta", (2.0, 3.0)), ("f", (3.0, 5.0))])
def test_distribution_functions_in_the_point_and_the_shape_parameters(name, shapes):
    """Their incomplete gamma and beta functions have the density as the derivative in the point."""
    scale = 3.0 if name == "beta" else 1.3  # (beta's support: [loc, loc + scale])
    for method in METHODS:
        _check(lambda v: getattr(getattr(st, name), method)(v, *shapes, loc=0.1, scale=scale), X)
    for method in ("ppf", "isf") if name != "t" else ():  # (t: see the test below)
        _check(lambda u: getattr(getattr(st, name), method)(u, *shapes, loc=0.1, scale=scale), Q[:3])
    # in the shape parameters too (the incomplete gamma and beta functions' derivatives in them)
    _check(lambda v: getattr(st, name).cdf(0.5, *[s * (1.0 + v) for s in shapes]), X[:1])
    _check(lambda v: getattr(st, name).sf(0.5, *[s * (1.0 + v) for s in shapes]), X[:1])
    if name != "t":  # (t.ppf's stdtrit is a root search: central differences of it are off)
        _check(lambda v: getattr(st, name).ppf(0.3, *[s * (1.0 + v) for s in shapes]), X[:1])


@pytest.mark.parametrize("f", [lambda m: st.poisson.logpmf(K, m), lambda m: st.poisson.pmf(K, m),
                               lambda p: st.binom.logpmf(K, 6, p / 5), lambda p: st.nbinom.logpmf(K, 3, p / 5),
                               lambda m: st.poisson(m, loc=1).logpmf(K + 1), lambda p: st.geom.logpmf(K, p / 5)])
def test_discrete_mass_functions_in_their_parameters(f):
    """A point outside the support, or not an integer, has SciPy's constant and a zero derivative."""
    J = jacc.jacobian(f)(MU)
    inside = np.isfinite(f(MU)) & (f(MU) != 0)
    with np.errstate(invalid="ignore"):  # (central differences of −inf)
        want = fd_jacobian(f, [MU], 0)
    np.testing.assert_allclose(J[inside], want[inside], rtol=1e-6, atol=1e-8)
    assert np.all(J[~inside] == 0) and (~inside).sum() >= 2


@pytest.mark.parametrize("f", [lambda p: st.binom.cdf(K, 6, p / 5), lambda p: st.binom.sf(K, 6, p / 5),
                               lambda m: st.poisson.cdf(K, m), lambda m: st.poisson(m, loc=1).sf(K),
                               lambda p: st.nbinom.cdf(K, 3.5, p / 5), lambda p: st.nbinom.sf(K, 3, p / 5),
                               lambda p: st.bernoulli.cdf(K, p / 5), lambda p: st.geom.sf(K, p / 5),
                               lambda p: st.binom.cdf(K + 7.0, 6, p / 5),  # (beyond n: 1)
                               # (their logs: refused with a message from inside SciPy; hunt BE)
                               lambda m: st.poisson.logcdf(K + 1.0, m), lambda m: st.poisson.logsf(K, m),
                               lambda p: st.nbinom.logcdf(K + 1.0, 3, p / 5), lambda p: st.binom.logsf(K, 6, p / 5)])
def test_discrete_distribution_functions_in_their_parameters(f):
    """Values SciPy's (non-integer points read floor(k)); derivatives central differences'."""
    g = jacc.trace(f, MU)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: MU})[g.outputs[0]], f(MU), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(MU), fd_jacobian(f, [MU], 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f, slope", [(lambda p: st.binom.ppf(Q, 6, p / 5), 0.0),
                                      (lambda m: st.poisson.isf(Q, m, loc=m), 1.0)])
def test_discrete_quantiles_are_steps(f, slope):
    """Integers, so piecewise constant in the probability and the parameters; loc moves them."""
    with np.errstate(invalid="ignore"):
        want = f(MU)
    g = jacc.trace(f, MU)
    np.testing.assert_array_equal(g.evaluate({g.inputs[0]: MU})[g.outputs[0]], want)
    J = jacc.jacobian(f, nonfinite="propagate")(MU)
    np.testing.assert_array_equal(J, np.diag(slope * np.isfinite(want)))


K = np.array([0.0, 1.0, 3.0, 5.0, 2.5, -1.0])
MU = np.array([0.5, 1.2, 2.0, 4.0, 1.0, 1.0])


Q = np.array([0.1, 0.5, 0.9, 0.0, 1.0, 1.5])  # inside, at both ends, outside (NaN)


@pytest.mark.parametrize("f", [lambda m: st.norm.ppf(Q, loc=m, scale=2.0),
                               lambda m: st.norm.ppf(Q, loc=0.3, scale=1 + m ** 2),
                               lambda m: st.expon.ppf(Q, loc=m, scale=2 + m),
                               lambda u: st.norm.isf(np.clip(u, 0.05, 0.95)),
                               lambda m: st.uniform.ppf(Q, loc=m, scale=2.0 + m),  # finite ends: loc, loc + scale
                               lambda m: st.uniform.isf(Q, loc=m, scale=2.0 + m),
                               lambda m: st.logistic(m, 1.5).ppf(Q),
                               # (gammaincinv, chdtri, stdtrit, inv_boxcox: 1/density at the quantile)
                               lambda u: st.gamma.ppf(np.clip(u, 0.05, 0.95), 2.5, scale=1.5),
                               lambda m: st.gamma.ppf(Q, 2.5, loc=m, scale=1 + m ** 2),
                               lambda u: st.chi2.isf(np.clip(u, 0.05, 0.95), 3.0),
                               lambda u: st.invgamma.ppf(np.clip(u, 0.05, 0.95), 2.0),
                               lambda m: st.genpareto.cdf(np.abs(m) + 0.1, 0.3 + m),
                               lambda m: st.genpareto.ppf(Q, 0.3 + m, scale=2.0)])
def test_quantiles_in_the_probability_and_the_parameters(f):
    """Inverse-CDF sampling (norm.ppf(u, mu, sigma)) differentiated in its parameters."""
    m = np.array([0.3, -0.2, 1.0, 0.5, 0.1, 0.2])
    g = jacc.trace(f, m)
    np.testing.assert_array_equal(g.evaluate({g.inputs[0]: m})[g.outputs[0]], f(m))
    J = jacc.jacobian(f, nonfinite="propagate")(m)
    with np.errstate(invalid="ignore"):
        want = fd_jacobian(f, [m], 0)
    ok = np.isfinite(want)
    np.testing.assert_allclose(J[ok], want[ok], rtol=1e-6, atol=1e-7)


def test_the_incomplete_beta_functions_slopes_in_a_and_b_are_mpmaths():
    mp = pytest.importorskip("mpmath")
    special = pytest.importorskip("scipy.special")
    mp.mp.dps = 30
    a, b, x = np.array([0.4, 2.0, 3.5, 30.0]), np.array([1.0, 0.5, 4.0, 12.0]), np.array([0.3, 0.9, 0.5, 0.75])
    Ja, Jb = jacc.jacobian(lambda a, b: special.betainc(a, b, x), argnums=(0, 1))(a, b)
    for k in range(4):
        f = lambda s, t, k=k: mp.betainc(s, t, 0, x[k], regularized=True)  # noqa: E731
        want_a = float(mp.diff(lambda s: f(s, b[k]), a[k]))
        want_b = float(mp.diff(lambda t: f(a[k], t), b[k]))
        assert abs(Ja[k, k] - want_a) <= 1e-12 * abs(want_a) and abs(Jb[k, k] - want_b) <= 1e-12 * abs(want_b)


def test_students_t_quantile_slope_is_one_over_the_density_there():
    """SciPy's stdtrit is a root search (central differences of it are off by ~1e-4)."""
    q = np.array([0.05, 0.3, 0.5, 0.8, 0.99])
    J = jacc.jacobian(lambda u: st.t.ppf(u, 4.0, loc=2.0 * u))(q)
    np.testing.assert_allclose(np.diag(J), 1.0 / st.t.pdf(st.t.ppf(q, 4.0), 4.0) + 2.0, rtol=1e-12)
    assert not J[~np.eye(5, dtype=bool)].any()


def test_a_formula_that_zips_its_arguments_sees_them_broadcast():
    # norminvgauss._sf zips (x, a, b): with a and b left scalars every point got the first one's value
    x = np.array([-0.8, 0.0, 1.1])
    f = lambda x: st.norminvgauss.sf(x, 1.25, 0.5)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-9)
    # its isf solves sf(x) = q with brentq, whose root meets the equation as a float (a 0-d array
    # made _sf zip it: an internal TypeError)
    f = lambda x: st.norminvgauss.isf(0.2 + 0.2 * np.tanh(x), 1.25, 0.5)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-5, atol=1e-9)
    g = lambda loc: st.norminvgauss.sf(x, 1.25, 0.5, loc=loc)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(g)(0.0), st.norminvgauss.pdf(x, 1.25, 0.5), rtol=1e-10)


@pytest.mark.parametrize("f", [lambda x: st.poisson.pmf(x, 2.3), lambda x: st.poisson.logpmf(x, 2.3),
                               lambda x: st.nbinom.pmf(x, 3.5, 0.4), lambda x: st.geom.pmf(x + 1.0, 0.3),
                               lambda x: st.poisson.pmf(5.0, 2.3, loc=x)])
def test_a_mass_has_slope_zero_in_its_points_and_loc(f):
    # piecewise constant in them: the slope of the formula's continuous extension is not the mass's
    x = np.array([0.0, 2.0, 5.0])
    np.testing.assert_array_equal(jacc.jacobian(f)(x), np.zeros(np.shape(f(x)) + x.shape))
    mu = jacc.jacobian(lambda m: st.poisson.pmf(x, m))(2.3)  # (the parameter's slope stays)
    np.testing.assert_allclose(mu, st.poisson.pmf(x, 2.3) * (x / 2.3 - 1.0), rtol=1e-12)


def _kernel(p, X):
    d2 = (X[:, None] - X[None, :]) ** 2
    return np.exp(2 * p[1]) * np.exp(-0.5 * d2 / np.exp(2 * p[0])) + np.exp(2 * p[2]) * np.eye(len(X))


def test_multivariate_normal_of_a_traced_cov_goes_through_cholesky():
    """SciPy's logpdf goes through eigh: a GP's kernel plus noise (n = 20) has eigenvalues equal to
    rounding, and the gradient came out wrong by up to 14 with a TieWarning (found by a hunt)."""
    import warnings

    r = np.random.default_rng(1200)
    X = np.sort(r.uniform(-3, 3, 20))
    y = np.sin(X) + 0.1 * r.normal(size=20)
    p = np.array([0.3, 0.0, np.log(0.1)])
    f = lambda p: st.multivariate_normal.logpdf(y, np.zeros(20), _kernel(p, X))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no TieWarning)
        J = jacc.jacobian(f)(p)
    np.testing.assert_allclose(J, fd_jacobian(f, [p], 0), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x, m, c: st.multivariate_normal.logpdf(x, m, c),
    lambda x, m, c: st.multivariate_normal.pdf(x, m, c),
    lambda x, m, c: st.multivariate_normal.logpdf(x[:2], m, c),  # points in rows
    lambda x, m, c: st.multivariate_normal.logpdf(x[0], None, c),  # no mean
    lambda x, m, c: st.multivariate_normal.logpdf(x[0], m, np.diagonal(c)),  # a diagonal cov
    lambda x, m, c: st.multivariate_normal.logpdf(x[0], m, c[0, 0]),  # a scalar one
    lambda x, m, c: st.multivariate_normal.logpdf(x[:, 0], m[0], c[0, 0]),  # 1-d: points
])
def test_multivariate_normal_densities_have_scipys_values_and_shapes(call):
    r = np.random.default_rng(3)
    x, m = r.normal(size=(4, 3)), r.normal(size=3)
    A = r.normal(size=(3, 3))
    c = A @ A.T + np.eye(3)
    for nums in ((0,), (1,), (2,), (0, 1, 2)):
        f = lambda *a: call(*[a[nums.index(k)] if k in nums else v for k, v in enumerate((x, m, c))])  # noqa: E731
        args = [(x, m, c)[k] for k in nums]
        g = jacc.trace(f, *args)
        want = call(x, m, c)
        got = g.evaluate(dict(zip(g.inputs, args)))[g.outputs[0]]
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        J = jacc.jacobian(f, tuple(range(len(nums))))(*args)
        for k, Jk in enumerate(J):
            if args[k] is not c:
                np.testing.assert_allclose(Jk, fd_jacobian(f, args, k), rtol=1e-6, atol=1e-9)
                continue
            E = r.normal(size=c.shape)  # a symmetric cov: along a symmetric direction
            E = (E + E.T) * 1e-6
            moved = [a + E if a is c else a for a in args], [a - E if a is c else a for a in args]
            slope = (np.asarray(f(*moved[0])) - np.asarray(f(*moved[1]))) / 2
            np.testing.assert_allclose(np.tensordot(Jk, E, axes=np.ndim(c)), slope, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda p: st.norm.logpdf(X, p[0], p[1]),
    lambda p: st.gamma.logpdf(X, p[1], scale=p[0] + 1.0),
    lambda p: st.beta.pdf(X / 3.0, p[0] + 1.0, p[1]),
    lambda p: st.expon.cdf(X - p[0], scale=p[1]),
    lambda p: st.weibull_min.sf(X, p[1], loc=p[0]),
], ids=["norm logpdf", "gamma logpdf", "beta pdf", "expon cdf", "weibull_min sf"])
def test_densities_are_masks_so_calls_skip_f_across_the_support(call):
    """The support and the parameters' check were read at the traced point: every call traced f
    (35-200x jax.jacrev's time on GLM likelihoods, by a hunt). They are masks now, so calls skip
    f, and a later point outside the support or with an invalid parameter gets SciPy's constant
    (NaN for a negative scale or shape) with a zero derivative."""
    jf = jacc.jacobian(call, nonfinite="propagate")
    points = [np.array([0.4, 1.2]), np.array([0.5, 1.1]), np.array([0.45, 1.3]), np.array([0.6, 0.9]),
              np.array([2.9, 0.7]), np.array([0.2, -0.5]), np.array([0.25, 1.4])]
    for p in points:
        got, want = jf(p), call(p)
        fine = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(np.diagonal(got) if got.ndim == 1 else got.sum(1)) | ~fine,
                                      True)
        np.testing.assert_allclose(got[fine], fd_jacobian(call, [p], 0)[fine], rtol=1e-6, atol=1e-7)
        assert np.all(got[~fine] == 0)
    assert jf.cache.skipped >= 4 and jf.plan.graph.meta.get("value_dependent") is None


def test_distributions_imported_by_name_let_calls_skip_f():
    """from scipy.stats import norm put an object in f's globals that the guards refused: f ran at
    every call (929 us against 63 through st.norm, found by a hunt)."""
    y = np.array([0.3, -1.2, 0.8])

    def nll(p):
        return -norm.logpdf(y, p[0], p[1]).sum() - gamma.logpdf(p[1], 2.0)

    jf = jacc.jacobian(nll)
    for k in range(6):
        p = np.array([0.1 + 0.01 * k, 1.2])
        np.testing.assert_allclose(jf(p), fd_jacobian(nll, [p], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 3 and jf.cache.why_traced is None


@pytest.mark.parametrize("make", [
    lambda p: st.norm(p[0], np.exp(p[1])),
    lambda p: st.gamma(2.0 + p[0], scale=np.exp(p[1])),
    lambda p: st.logistic.freeze(loc=p[0], scale=1.0 + p[1] ** 2),
], ids=["norm(loc, scale)", "gamma(a, scale=)", "logistic.freeze"])
def test_a_distribution_frozen_inside_f_lets_calls_skip_f(make):
    """Freezing runs SciPy's constructors (exec, setattr on the new object, sys.flags read), which
    the guards refused as user code: f ran at every call (4.7 ms against 9 us unfrozen)."""
    y = np.array([0.3, 1.2, 2.8])

    def nll(p):
        return -make(p).logpdf(y).sum()

    jf = jacc.jacobian(nll)
    for k in range(6):
        p = np.array([0.1 + 0.05 * k, 0.2 - 0.03 * k])
        np.testing.assert_allclose(jf(p), fd_jacobian(nll, [p], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 3 and jf.cache.why_traced is None


def test_a_frozen_distribution_read_from_a_global_is_compared_by_its_parameters():
    """A prior frozen once at module level (``prior = st.norm(0, 2)``) was refused as an object of
    unknown type: f ran at every call. It is kept by value now: its class, constructor parameters
    and frozen arguments; a new one, or changed arguments, are seen at the next call."""
    global PRIOR
    PRIOR = st.norm(loc=0.0, scale=2.0)

    def lp(p):
        return PRIOR.logpdf(p).sum()

    jf = jacc.jacobian(lp)
    x = np.array([1.3, 0.2])
    for _ in range(5):
        np.testing.assert_allclose(jf(x), -x / 4)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    PRIOR = st.norm(loc=0.0, scale=1.0)
    np.testing.assert_allclose(jf(x), -x)
    PRIOR.kwds["scale"] = 4.0
    np.testing.assert_allclose(jf(x), -x / 16)
    PRIOR = st.norm(loc=1.0, scale=4.0)  # (same kwds' scale: the loc differs)
    np.testing.assert_allclose(jf(x), -(x - 1) / 16)


def test_whatever_a_frozen_global_holds_is_compared():
    """Hunt BI: a histogram replaced over the same bins (rv_histogram keeps it out of _ctor_param), an
    attribute the user sets, a method replaced on the instance or its distribution, rv_discrete's
    probabilities changed in place: each gave the Jacobian of the old distribution."""
    global PRIOR
    x = np.array([0.25, 1.25, 2.25])

    def check(f):
        jf = jacc.jacobian(f)
        for _ in range(4):
            jf(x)
        assert jf.cache.skipped >= 1
        return jf

    PRIOR = st.rv_histogram((np.array([2.0, 3.0, 5.0]), np.array([0.0, 1.0, 2.0, 3.0]))).freeze()
    points = x.copy()
    jf = check(lambda t: PRIOR.pdf(points) * t)  # (at traced points its bin search reads values)
    PRIOR = st.rv_histogram((np.array([2.0, 3.0, 1.0]), np.array([0.0, 1.0, 2.0, 3.0]))).freeze()
    np.testing.assert_allclose(np.diag(jf(x)), PRIOR.pdf(x))
    PRIOR = st.norm(loc=0.5, scale=2.0)
    PRIOR.w = 2.0
    jf = check(lambda t: PRIOR.logpdf(t) * PRIOR.w)
    PRIOR.w = 3.0
    np.testing.assert_allclose(np.diag(jf(x)), -3.0 * (x - 0.5) / 4)
    PRIOR.dist._logpdf = lambda t: -t ** 4
    np.testing.assert_allclose(np.diag(jf(x)), -3.0 * 4 * ((x - 0.5) / 2) ** 3 / 2)
    PRIOR = st.rv_discrete(values=(np.array([0, 1, 2]), np.array([0.2, 0.3, 0.5]))).freeze()
    jf = check(lambda t: PRIOR.pmf(1) * t)
    PRIOR.dist.pk[:] = [0.5, 0.2, 0.3]
    np.testing.assert_allclose(np.diag(jf(x)), [0.2] * 3)


@pytest.mark.parametrize("make", [
    lambda m, C: st.multivariate_normal(m, C),
    lambda m, C: st.multivariate_normal(m, st.Covariance.from_diagonal(np.diag(C))),
    lambda m, C: st.multivariate_t(m, C, df=4.0),
], ids=["multivariate_normal", "Covariance.from_diagonal", "multivariate_t (reads multivariate_normal)"])
def test_a_multivariate_distribution_frozen_inside_f_lets_calls_skip_f(make):
    """SciPy's multivariate constructors (the frozen object's, its covariance factors') set
    attributes on the new objects, and multivariate_t reads the global multivariate_normal: f ran
    at every call (855 us against 74 for a frozen multivariate normal of 5 over 200 points)."""
    Y = np.random.default_rng(3).standard_normal((20, 3))
    C = np.diag([1.0, 2.0, 0.5])

    def nll(m):
        return -make(m, C).logpdf(Y).sum()

    jf = jacc.jacobian(nll)
    for k in range(6):
        m = np.array([0.1, -0.2, 0.3]) + 0.05 * k
        np.testing.assert_allclose(jf(m), fd_jacobian(nll, [m], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 3 and jf.cache.why_traced is None


def test_a_frozen_multivariate_global_is_compared_by_what_it_holds():
    """A global ``prior = st.multivariate_normal(m, C)`` was an object of unknown type (f ran at
    every call, 610 against 26 us); its attributes and its SciPy parts' (mean, covariance factors)
    are compared now: a new prior, a mean changed in place or new factors are seen at the next call."""
    global PRIOR
    C = np.diag([1.0, 4.0])
    PRIOR = st.multivariate_normal(np.zeros(2), C)

    def lp(x):
        return PRIOR.logpdf(x)

    jf = jacc.jacobian(lp)
    x = np.array([1.3, 0.2])
    for _ in range(5):
        np.testing.assert_allclose(jf(x), -x / np.diag(C))
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    PRIOR = st.multivariate_normal(np.ones(2), C)
    np.testing.assert_allclose(jf(x), -(x - 1) / np.diag(C))
    PRIOR.mean[:] = [2.0, -1.0]
    np.testing.assert_allclose(jf(x), -(x - [2.0, -1.0]) / np.diag(C))
    PRIOR.cov_object = st.multivariate_normal(np.zeros(2), np.eye(2)).cov_object
    np.testing.assert_allclose(jf(x), -(x - [2.0, -1.0]))
    PRIOR.cov_object._LP[:] *= 0.5  # (its whitening factor, changed in place: the covariance is 4 I)
    np.testing.assert_allclose(jf(x), -(x - [2.0, -1.0]) / 4)


def test_what_a_frozen_multivariate_global_holds_is_compared_hunt_bm():
    """Hunt BM: a covariance of the user's subclass (compared by identity only) and a Cholesky factor
    that is a masked array (kept by SciPy as it is, its contents not copied) each gave the old
    prior's Jacobian."""
    global PRIOR
    x = np.array([1.3, 0.2])

    def lp(x):
        return PRIOR.logpdf(x)

    def settled():
        jf = jacc.jacobian(lp)
        for _ in range(5):
            jf(x)
        return jf

    class MyCov(type(st.Covariance.from_diagonal([1.0]))):
        pass

    PRIOR = st.multivariate_normal(np.zeros(2), MyCov(np.array([1.0, 4.0])))
    jf = settled()
    assert jf.cache.skipped >= 2
    PRIOR.cov_object._LP = PRIOR.cov_object._LP * 0.5
    np.testing.assert_allclose(jf(x), -x / np.array([4.0, 16.0]), rtol=1e-12)

    L = np.ma.masked_array([[1.0, 0.0], [0.5, 2.0]])
    PRIOR = st.multivariate_normal(np.zeros(2), st.Covariance.from_cholesky(L))
    jf = settled()
    L[1, 1] = 0.5
    Lp = np.array(L)
    np.testing.assert_allclose(jf(x), -np.linalg.solve(Lp @ Lp.T, x), rtol=1e-12)



def test_a_frozen_distribution_of_a_users_class_still_runs_f():
    """A user's subclass runs the user's code inside SciPy's methods: not compared by value."""
    class Unit(st.rv_continuous):
        def _pdf(self, t):
            return np.exp(-t * t / 2) / np.sqrt(2 * np.pi)

    mine = Unit(name="unit")(1.0)

    def lp(p):
        return mine.logpdf(p).sum()

    jf = jacc.jacobian(lp)
    x = np.array([1.3, 0.2])
    for _ in range(4):
        np.testing.assert_allclose(jf(x), -(x - 1.0), rtol=1e-6)
    assert jf.cache.skipped == 0 and "rv_continuous_frozen" in jf.cache.why_traced


@pytest.mark.parametrize("call", [
    lambda p: st.t.logpdf(np.linspace(-2.0, 3.0, 7), np.exp(p[2]), p[0], np.exp(p[1])),
    lambda p: st.t.logpdf(np.linspace(-2.0, 1.0, 3), np.array([np.exp(p[2]), np.inf, 3.0]), p[0], np.exp(p[1])),
    lambda p: st.lognorm.logpdf(np.linspace(0.1, 3.0, 5), np.exp(p[0]), scale=np.exp(p[1])),
    lambda p: st.cauchy.logpdf(np.array([0.3, -2.0, 5.0]) * (1 + p[2]), p[0], np.exp(p[1])),
], ids=["t in nu", "t with an infinite nu", "lognorm", "cauchy"])
def test_branches_of_a_distributions_formula_are_kept_at_full_shape(call):
    """SciPy's formulas pick a branch per entry (apply_where: t's nu = inf, lognorm's, cauchy's
    |x| < 1), read at the traced point: a Student-t likelihood of traced nu ran f at every call (1 ms
    against 26 us for jax.jit). The branches now run on every entry through jacc.lanes."""
    jf = jacc.jacobian(call)
    for k in range(6):
        p = np.array([0.1, 0.2, 0.3]) + 0.07 * k
        np.testing.assert_allclose(jf(p), fd_jacobian(call, [p], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 3 and jf.cache.why_traced is None


@pytest.mark.parametrize("call", [
    lambda b: -st.poisson.logpmf(_COUNTS, np.exp(_DESIGN @ b)).sum(),
    lambda b: -st.binom.logpmf(np.minimum(_COUNTS, 10), 10, 1 / (1 + np.exp(-_DESIGN @ b))).sum(),
    lambda b: -st.nbinom.logpmf(_COUNTS, 3.0 + b[0] ** 2, 1 / (1 + np.exp(-_DESIGN @ b))).sum(),
    lambda b: st.binom.cdf(_COUNTS - 1.5, 10, 0.3 + 0.1 * np.tanh(b.sum())),
    lambda b: st.poisson.logpmf(_COUNTS, b[0] - 0.5),  # (invalid mu < 0 at some calls: NaN)
], ids=["poisson GLM", "binomial GLM", "negative binomial", "binom cdf, points outside", "poisson, invalid mu"])
def test_discrete_likelihoods_of_traced_parameters_let_calls_skip_f(call):
    """A discrete distribution's parameters and support were read at the traced point: every GLM
    likelihood through scipy.stats ran f at every call (Poisson 344 us a call, hand-written 25 us).
    They are traced masks now, the mass's formula run through jacc.lanes."""
    jf = jacc.jacobian(call, nonfinite="propagate")
    for k in range(6):
        b = np.array([0.1, -0.2, 0.05]) + 0.15 * k
        got, want = jf(b), call(b)
        fine = np.isfinite(want)
        np.testing.assert_allclose(got[fine], fd_jacobian(call, [b], 0)[fine], rtol=1e-6, atol=1e-8)
        assert np.all(got[~fine] == 0)  # (invalid parameters: SciPy's NaN, derivative 0)
    assert jf.cache.skipped >= 3 and jf.cache.why_traced is None


def test_discrete_distributions_the_masks_do_not_fit_trace_as_before():
    """Hunt BK on the masks: SciPy's default parameter check converts (dlaplace), a generic cdf sums
    through np.vectorize (betabinom): both raised where they traced before; a NaN count gave 0 or
    -inf, not SciPy's NaN."""
    k = np.array([0.0, 1.0, 2.0, 4.0, -1.0])
    for f in (lambda p: st.dlaplace.logpmf(k, p[0] + 0.5), lambda p: st.dlaplace.cdf(k, p[0] + 0.5),
              lambda p: st.betabinom.cdf(k, 6, p[0] + 1.0, p[1] + 2.0), lambda p: st.logser.cdf(k, p[0] / 2)):
        p = np.array([0.4, 0.3])
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-8)
    nan = np.array([0.0, 1.0, np.nan])
    for f in (lambda m: m * st.poisson.pmf(nan, m), lambda m: m * st.binom.logpmf(nan, 5, m / 2)):
        m = np.array(0.4)  # (SciPy's NaN, a constant: its own derivative 0, so the product's is NaN)
        np.testing.assert_array_equal(np.isnan(jacc.jacobian(f, nonfinite="propagate")(m)), [False, False, True])


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_t_with_infinite_degrees_of_freedom_has_the_normal_slope(backend):
    """stdtr's slope in t, the t density, took Γ((ν+1)/2)/Γ(ν/2) as ∞ − ∞ at ν = ∞: t.cdf's
    Jacobian was NaN there where norm.cdf's is the answer (hunt BK); in ν the slope is 0."""
    x = np.array([-1.0, 0.5, 2.0])
    jf = jacc.jacobian(lambda p: st.t.cdf(x, p[2], loc=p[0], scale=p[1]), backend=backend, nonfinite="propagate")
    for k in range(4):
        p = np.array([0.1 + 0.02 * k, 1.2, np.inf])
        J = jf(p)
        np.testing.assert_allclose(J[:, :2], jacc.jacobian(lambda q: st.norm.cdf(x, loc=q[0], scale=q[1]))(p[:2]),
                                   rtol=1e-12)
        np.testing.assert_array_equal(J[:, 2], 0.0)


def test_t_with_a_huge_finite_nu_has_the_normal_slope():
    """The t density's Gamma ratio by two gammaln cancelled: 2e-4 off at nu = 1e12, 1e-9 for 0.054
    at 1e16; the slope in nu was inf and NaN from 1e20 on (hunt BL)."""
    x = np.array([-2.0, 0.0, 1.5])
    normal = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    for nu in (1e8, 1e12, 1e16, 1e20, 1e300):
        J = jacc.jacobian(lambda p: st.t.cdf(x * p[1], p[0]))(np.array([nu, 1.0]))
        np.testing.assert_allclose(J[:, 1], normal * x, rtol=1e-7, atol=1e-12)
        assert np.all(np.isfinite(J[:, 0])) and np.all(np.abs(J[:, 0]) < 1e-12)


_COUNTS = np.array([0.0, 1.0, 3.0, 2.0, 7.0, 4.0])
_DESIGN = np.linspace(-1.0, 1.0, 18).reshape(6, 3)


def test_a_traced_count_of_a_special_function_is_named_by_its_place():
    """pdtr(k, m) with k traced: the message said 'argument 1' (counted from 1), read as m (hunt BE)."""
    import scipy.special as sp

    from jacc.trace import UnsupportedOperationError

    with pytest.raises(UnsupportedOperationError, match="its first argument"):
        jacc.jacobian(lambda m: sp.pdtr(np.floor(2 * m), m))(np.array([1.5, 2.5]))


@pytest.mark.parametrize("cov", [lambda: st.Covariance.from_diagonal(np.array([1.0, 4.0])),
                                 lambda: st.Covariance.from_cholesky(np.array([[1.0, 0.0], [0.5, 2.0]]))],
                         ids=["from_diagonal", "from_cholesky"])
def test_multivariate_normal_of_a_covariance_object_with_traced_points(cov):
    """Hunt BM: a scipy.stats.Covariance passed to multivariate_normal.logpdf with traced points
    raised TypeError (jacc's Cholesky route multiplied it by an identity); SciPy's code runs now."""
    C = cov()

    def f(x):
        return st.multivariate_normal.logpdf(x, np.zeros(2), C).sum()

    x = np.array([[1.3, 0.2], [-0.4, 0.7]])
    np.testing.assert_allclose(jacc.jacobian(f)(x), -np.linalg.solve(C.covariance, x.T).T, rtol=1e-10)


_S3 = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.5]])
_X3 = np.array([[1.5, 0.2, 0.0], [0.2, 0.8, 0.1], [0.0, 0.1, 1.1]])


@pytest.mark.parametrize("call, arg", [
    (lambda X: st.wishart.logpdf(X, df=5, scale=_S3), _X3),
    (lambda S: st.wishart.logpdf(_X3, df=5, scale=S), _S3),
    (lambda X: st.wishart.pdf(X, df=5, scale=_S3), _X3),
    (lambda X: st.wishart.logpdf(X, df=5, scale=_S3), np.stack([_X3, _X3 + 0.3 * np.eye(3)], axis=-1)),  # 2 points
    (lambda d: st.wishart.logpdf(_X3, df=5, scale=d), np.array([1.0, 2.0, 3.0])),  # a diagonal scale
    (lambda x: st.wishart.logpdf(x, df=3, scale=2.0), np.array(1.3)),  # 1 × 1
    (lambda x: st.wishart.logpdf(x, df=3, scale=2.0), np.array([1.3, 0.7])),  # 1 × 1, two points
    (lambda x: st.wishart.logpdf(x, df=4, scale=_S3), np.array([1.3, 0.7, 0.9])),  # a diagonal point
    (lambda X: st.invwishart.logpdf(X, df=5, scale=_S3), _X3),
    (lambda S: st.invwishart.pdf(_X3, df=5, scale=S), _S3),
    (lambda x: st.invwishart.logpdf(x, df=3, scale=2.0), np.array([1.3, 0.7])),
    (lambda X: st.wishart(df=5, scale=_S3).logpdf(X), _X3),  # frozen
    (lambda S: st.invwishart(df=5, scale=S).logpdf(_X3), _S3),  # frozen with a traced scale
])
def test_wishart_densities_have_scipys_values_and_derivatives(call, arg):
    value, J = jacc.value_and_jacobian(call)(arg)
    np.testing.assert_allclose(value, call(arg), rtol=1e-12)
    assert np.shape(value) == np.shape(call(arg))
    np.testing.assert_allclose(J, fd_jacobian(call, [arg], 0), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dist", ["wishart", "invwishart"])
def test_wishart_degrees_of_freedom_differentiate_and_are_checked_at_each_point(dist):
    f = lambda df: getattr(st, dist).logpdf(_X3, df=df, scale=_S3)  # noqa: E731
    jf = jacc.jacobian(f)
    for df in (5.5, 3.0, 5.5):
        np.testing.assert_allclose(jf(df), (f(df + 1e-6) - f(df - 1e-6)) / 2e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="greater than the dimension"):
        jf(1.5)  # SciPy's error, where SciPy raises it


def test_a_global_wishart_prior_skips_f_and_sees_its_scale_change():
    prior = st.invwishart(df=6, scale=_S3.copy())

    def f(X):
        return prior.logpdf(X)

    jf = jacc.jacobian(f)
    for _ in range(4):
        np.testing.assert_allclose(jf(_X3), fd_jacobian(f, [_X3], 0), rtol=1e-6, atol=1e-9)
    assert jf.cache.skipped >= 2
    before = jf(_X3)
    prior.df = 9.0  # an attribute of the frozen object (its logpdf reads it)
    np.testing.assert_allclose(jf(_X3), fd_jacobian(f, [_X3], 0), rtol=1e-6, atol=1e-9)
    assert not np.allclose(jf(_X3), before)
    prior = st.invwishart(df=7, scale=_S3)  # rebound
    np.testing.assert_allclose(jf(_X3), fd_jacobian(f, [_X3], 0), rtol=1e-6, atol=1e-9)


def test_wishart_errors_are_scipys():
    with pytest.raises(ValueError, match="Quantiles must be square"):
        jacc.jacobian(lambda X: st.wishart.logpdf(X[:2], df=5, scale=_S3))(_X3)
    with pytest.raises(ValueError, match="Degrees of freedom must be greater"):
        jacc.jacobian(lambda S: st.wishart.logpdf(_X3, df=1, scale=S))(_S3)
    with pytest.raises(ValueError, match="must be square"):
        jacc.jacobian(lambda S: st.wishart.logpdf(_X3, df=5, scale=S[:2]))(_S3)
    with pytest.raises(np.linalg.LinAlgError):
        jacc.jacobian(lambda X: st.wishart.logpdf(X, df=5, scale=_S3))(-_X3)


def test_multinomial_logpmf_differentiates_in_p():
    """SciPy writes p[ok, -1] = … with a 0-d boolean ok (the last probability adjusted where p does not
    sum to 1): a new axis of length 1 or 0 to NumPy, and to the trace."""
    x = np.array([1.0, 2.0, 3.0])
    f = lambda q: st.multinomial.logpmf(x, 6, q / q.sum())  # noqa: E731
    jf = jacc.jacobian(f)
    for q in (np.array([0.2, 0.3, 0.7]), np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.3, 0.7])):
        np.testing.assert_allclose(jf(q), fd_jacobian(f, [q], 0), rtol=1e-6, atol=1e-9)
    p = np.array([0.25, 0.25, 0.5])  # on the simplex: the formula's slope x/p, as jax.scipy.stats gives
    np.testing.assert_allclose(jacc.jacobian(lambda p: st.multinomial.logpmf(x, 6, p))(p), x / p, rtol=1e-13)


@pytest.mark.parametrize("call", [
    lambda p: np.stack([st.gamma(p[0], scale=p[1]).mean(), st.gamma(p[0], scale=p[1]).var()]),
    lambda p: st.gamma.std(p[0], loc=p[1]),  # unfrozen
    lambda p: np.stack(st.norm.stats(loc=p[0], scale=p[1], moments="mvsk")),
    lambda p: np.stack(st.beta.stats(p[0], p[1], moments="mvsk")),
    lambda p: st.t(p[0] + 2, scale=p[1]).var(),
    lambda p: st.lognorm(p[1] * 0.3, scale=p[0]).mean(),
    lambda p: st.weibull_min(p[0]).var(),  # a moment from _munp (its _stats gives None)
    lambda p: np.stack(st.poisson(p[0]).stats()),
    lambda p: st.binom(10, p[0] / 5).var(),
    lambda p: st.gamma(p).mean() + st.expon(scale=p).var(),  # vectors of parameters
    lambda p: st.gamma(p[0], scale=p[1]).entropy(),
    lambda p: st.beta(p[0], p[1]).entropy() + st.norm(0, p).entropy().sum(),
    lambda p: st.t(p[0]).entropy(),
])
def test_moments_and_entropy_have_scipys_values_and_derivatives(call):
    p = np.array([2.5, 1.5])
    jf = jacc.jacobian(call)
    for q in (p, p * 1.3, p):
        value, J = jacc.value_and_jacobian(call)(q)
        np.testing.assert_allclose(value, call(q), rtol=1e-12)
        np.testing.assert_allclose(jf(q), fd_jacobian(call, [q], 0), rtol=1e-6, atol=1e-9)


def test_moments_of_invalid_parameters_are_scipys_nan_with_a_zero_derivative():
    f = lambda p: st.gamma(p - 2.0).mean()  # noqa: E731  (the second shape parameter negative)
    value, J = jacc.value_and_jacobian(f)(np.array([2.5, 1.5]))
    np.testing.assert_array_equal(value, f(np.array([2.5, 1.5])))
    np.testing.assert_array_equal(J, [[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(jacc.UnsupportedOperationError, match="no entropy formula of its own"):
        jacc.jacobian(lambda c: st.burr(c[0], 2.0).entropy())(np.array([3.5]))


def test_moments_skip_f_and_meet_invalid_parameters_at_later_calls():
    f = lambda p: st.gamma(p[0], scale=p[1]).mean() + st.gamma.var(p[0], scale=p[1])  # noqa: E731
    jf = jacc.jacobian(f)
    for q in (np.array([2.5, 1.5]), np.array([0.7, 3.0]), np.array([2.5, 1.5]), np.array([4.0, 0.2])):
        np.testing.assert_allclose(jf(q), fd_jacobian(f, [q], 0), rtol=1e-6)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None  # (SciPy's default check, as masks)
    value, J = jacc.value_and_jacobian(f)(np.array([-1.0, 1.5]))  # a later call's invalid shape parameter
    assert np.isnan(value) and np.isnan(f(np.array([-1.0, 1.5])))
    np.testing.assert_array_equal(J, [0.0, 0.0])
    assert np.isnan(jf(np.array([-1.0, 1.5]))).sum() == 0 and np.array_equal(jf(np.array([-1.0, 1.5])), [0.0, 0.0])


@pytest.mark.parametrize("call", [
    lambda p: np.stack(st.gamma.stats(p[0], scale=p[1], moments="vm")),  # SciPy's order: m, v, s, k
    lambda p: st.gamma.stats(p[0], scale=p[1], moments="mm"),  # each once
    lambda p: st.gamma.stats(p[0], scale=p[1], moments="mx"),  # other letters ignored
    lambda p: st.binom.entropy(10, p / 5),  # entropy formulas written for one value, a vector of them
    lambda p: st.t.entropy(p * 10),
    lambda p: st.chi2.var([3.0, 4.0], loc=p[0], scale=p[1] * 3),  # parameters as lists
    lambda p: st.norm.var(loc=[p[0], 1.0], scale=[p[1], 2.0]),
    lambda p: np.stack(st.gamma.stats([p[0] * 10, p[1] * 10])),
])
def test_moments_take_scipys_forms_of_their_arguments(call):
    # (found by hunt BT: "vm" gave (var, mean), "mx" a KeyError; lists and vector entropies raised)
    p = np.array([1.5, 2.25])
    value, J = jacc.value_and_jacobian(call)(p)
    np.testing.assert_allclose(value, call(p), rtol=1e-12)
    np.testing.assert_allclose(J, fd_jacobian(call, [p], 0), rtol=1e-6, atol=1e-9)


def test_pearsonr_traces_through_scipys_namespace_clip():
    """SciPy's NumPy namespace clips r by writing into np.empty; NumPy's clip is used for traced
    values. SciPy's own `x == x[..., 0:1]` test compares x[0] with itself: no tie warning."""
    r = np.random.default_rng(0)
    x, y, Y = r.normal(size=8), r.normal(size=8), r.normal(size=(8, 3))
    cases = ((lambda t: st.pearsonr(t, y).statistic, x), (lambda t: st.pearsonr(t, y).pvalue, x),
             (lambda t: st.pearsonr(y, t, alternative="less")[1], x),
             (lambda t: st.pearsonr(t, Y ** 2, axis=0).statistic, Y))
    for f, arg in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", jacc.TieWarning)
            value, J = jacc.value_and_jacobian(f)(arg)
        np.testing.assert_allclose(value, f(arg), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(J, fd_jacobian(f, [arg], 0), rtol=1e-6, atol=1e-9)


def test_gaussian_kde_of_traced_data_weights_and_points():
    """The sum of Gaussians as NumPy code (bandwidth from the traced covariance), with SciPy's
    value; 1-d and 2-d data, Scott's, Silverman's and a fixed bandwidth, evaluate, pdf, logpdf,
    a single 2-d point given as a flat row; later calls follow new values."""
    r = np.random.default_rng(0)
    x, y, P, D = r.normal(size=8), r.normal(size=8), r.normal(size=(2, 10)), r.normal(size=(2, 4))
    at = np.array([0.1, 0.5])
    cases = [(lambda t: st.gaussian_kde(t)(at), x), (lambda t: st.gaussian_kde(y).pdf(t), x[:3]),
             (lambda t: st.gaussian_kde(t).logpdf(at), x),
             (lambda t: st.gaussian_kde(y, weights=np.exp(t)).evaluate(at), x),
             (lambda t: st.gaussian_kde(t, bw_method="silverman")(at), x),
             (lambda t: st.gaussian_kde(t, bw_method=0.3)(at), x),
             (lambda t: st.gaussian_kde(t)(D), P), (lambda t: st.gaussian_kde(P).logpdf(t), D),
             (lambda t: st.gaussian_kde(P)(t), D[:, 0])]
    for f, arg in cases:
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.05, 1.1):
            t = arg * scale
            value, J = jacc.value_and_jacobian(f)(t)
            np.testing.assert_allclose(value, f(t), rtol=1e-12)
            np.testing.assert_allclose(jf(t), fd_jacobian(f, [t], 0), rtol=1e-6, atol=1e-9)


def test_cov_with_traced_aweights_refuses_a_later_negative_weight():
    x = np.random.default_rng(2).normal(size=(2, 5))
    f = lambda w: np.cov(x, aweights=w)  # noqa: E731
    w = np.array([0.5, 1.0, 2.0, 0.25, 1.0])
    jf = jacc.jacobian(f)
    for scale in (1.0, 2.0, 3.0):
        np.testing.assert_allclose(jf(scale * w), fd_jacobian(f, [scale * w], 0), rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="aweights cannot be negative"):
        jf(-w)
    with pytest.raises(jacc.TraceError, match="fweights"):
        jacc.jacobian(lambda w: np.cov(x, fweights=w))(w)


@pytest.mark.parametrize("statistic", ["mean", "sum", "std", "median", "min", "max", "count", np.mean,
                                       lambda z: np.sum(z ** 2)])
def test_binned_statistics_run_scipys_code_with_buffers(statistic):
    """SciPy fills np.empty with its per-bin statistics: its module is served buffers, so its own
    code traces. Traced values; traced sample coordinates (bins read at the point; the edges of
    range=None follow the extremes); 2-d; two rows of values. Empty bins are NaN with derivative 0."""
    r = np.random.default_rng(0)
    x, y, v = r.normal(size=12), r.normal(size=12), r.normal(size=12)
    cases = [(lambda t: st.binned_statistic(x, t, statistic, bins=4).statistic, v),
             (lambda t: st.binned_statistic(t, v, statistic, bins=4).statistic, x),
             (lambda t: st.binned_statistic(t, v, statistic, bins=4).bin_edges, x),
             (lambda t: st.binned_statistic(x, [t, t ** 2], statistic, bins=3).statistic, v),
             (lambda t: st.binned_statistic_2d(x, y, t, statistic, bins=3).statistic, v)]
    for f, arg in cases:
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.03, 0.97):
            t = arg * scale
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (SciPy's own; a traced edge equals the traced maximum)
                value, J = jacc.value_and_jacobian(f)(t)
                np.testing.assert_allclose(value, f(t), rtol=1e-14, atol=1e-15)
                want = fd_jacobian(f, [t], 0)
                empty = np.isnan(value)
                assert not J[empty].any()
                single = np.isnan(J) & ~empty[..., None]  # (std of one value: the square root's slope at 0)
                assert statistic == "std" or not single.any()
                np.testing.assert_allclose(np.where(empty[..., None] | single, 0.0, J),
                                           np.where(empty[..., None] | single, 0.0, want), rtol=1e-6, atol=1e-8)
                if scale == 1.0:
                    np.testing.assert_allclose(jf(t), J, rtol=1e-12, equal_nan=True)


def test_distances_between_empirical_distributions():
    """wasserstein_distance and energy_distance: SciPy's steps, its sorted.searchsorted(values) (a
    plain array's method, which converted the traced values) written np.searchsorted."""
    r = np.random.default_rng(0)
    x, y, w = r.normal(size=8), 1.3 * r.normal(size=6), np.abs(r.normal(size=8)) + 0.2
    for f, arg in ((lambda t: st.wasserstein_distance(t, y), x), (lambda t: st.wasserstein_distance(x, t), y),
                   (lambda t: st.energy_distance(t, y), x), (lambda t: st.wasserstein_distance(x, y, t), w),
                   (lambda t: st.energy_distance(x, y, t, t[:6]), w)):
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.1, 0.9):
            t = arg * scale
            np.testing.assert_allclose(jf(t), fd_jacobian(f, [t], 0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(jacc.value_and_jacobian(f)(arg)[0], f(arg), rtol=1e-14)


def test_kde_refusals_and_a_traced_bandwidth_after_another_kde():
    """integrate_box is refused by name (it failed in Pythran's signature check); a traced scalar
    bandwidth met NumPy's own np.isscalar once SciPy's module had been seen by an earlier trace (its
    ValueError reached the user): f now runs again with the replacements before an error stands."""
    data, points = np.arange(5.0), np.array([0.3, 2.2])
    jacc.jacobian(lambda d: st.gaussian_kde(d)(points))(data)
    f = lambda h: st.gaussian_kde(data, bw_method=h[0])(points)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(np.array([0.4])), fd_jacobian(f, [np.array([0.4])], 0), rtol=1e-6)
    d = np.random.default_rng(3).normal(size=(2, 10))
    with pytest.raises(jacc.UnsupportedOperationError, match="integrate_box.*integrate_gaussian"):
        jacc.jacobian(lambda d: st.gaussian_kde(d).integrate_box(np.array([-1.0, -1.0]), np.array([1.0, 0.5])))(d)
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):  # (NumPy's error, hunt CC)
        jacc.jacobian(lambda w: np.cov(d, aweights=w))(np.zeros(10))
