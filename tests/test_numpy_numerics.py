"""jacc.numpy_api.numerics: values equal NumPy's (bit for bit where the module says so), every
mode and length order of convolve/correlate, NumPy's errors, and structured partials at scale."""

import itertools

import numpy as np
import pytest
from conftest import fd_jacobian, peak_memory

import jacc
from jacc.numpy_api.reductions import DENSE_SCAN_MAX
from jacc.trace import TraceError, UnsupportedOperationError, trace

R = np.random.default_rng(2)


def _value(f, *args):
    g = trace(f, *args, argnums=tuple(range(len(args))))
    return g.evaluate(dict(zip(g.inputs, args)))[g.outputs[0]]


X = R.normal(size=(4, 5))
BITWISE = [
    ("diff", lambda x: np.diff(x), (X,)),
    ("diff n=2 axis 0", lambda x: np.diff(x, 2, axis=0), (X,)),
    ("diff prepend/append", lambda x: np.diff(x, prepend=0.5, append=x[:, :1]), (X,)),
    ("ediff1d", lambda x: np.ediff1d(x, to_begin=x[0, 0], to_end=[1.0, 2.0]), (X,)),
    ("ediff1d to_end", lambda x: np.ediff1d(x, to_end=[1.0, 2.0]), (X,)),
    ("gradient", lambda x: np.stack(np.gradient(x)), (X,)),
    ("gradient spacings, order 2", lambda x: np.stack(np.gradient(x, 0.5, 2.0, edge_order=2)), (X,)),
    ("gradient coordinates", lambda x: np.gradient(x, np.array([0, .3, 1, 1.2, 2.0]), axis=1), (X,)),
    ("gradient coordinates, order 2",
     lambda x: np.gradient(x, np.array([0, .3, 1, 1.2, 2.0]), axis=1, edge_order=2), (X,)),
    ("gradient even coordinates", lambda x: np.gradient(x, np.array([0, .5, 1, 1.5, 2.0]), axis=1), (X,)),
    ("trapezoid", lambda y: np.trapezoid(y, dx=0.5), (X,)),
    ("trapezoid x", lambda y, t: np.trapezoid(y, t, axis=0), (X, np.cumsum(R.uniform(0.1, 1, 4)))),
    ("polyval", lambda p, t: np.polyval(p, t), (R.normal(size=4), R.normal(size=3))),
    ("linspace", lambda a, b: np.linspace(a, b, 5), (R.normal(size=2), R.normal(size=2))),
    ("linspace endpoint=False", lambda a: np.linspace(a[0], a[1], 4, endpoint=False), (R.normal(size=2),)),
    ("linspace axis", lambda a, b: np.linspace(a, b, 3, axis=-1), (R.normal(size=2), R.normal(size=2))),
    ("linspace one sample", lambda a, b: np.linspace(a, b, 1), (R.normal(size=2), R.normal(size=2))),
    ("meshgrid", lambda a, b: np.stack(np.meshgrid(a, b)), (R.normal(size=3), R.normal(size=2))),
    ("meshgrid sparse ij", lambda a, b: np.meshgrid(a, b, sparse=True, indexing="ij")[1], (R.normal(size=3), R.normal(size=2))),
    ("geomspace", lambda a, b: np.geomspace(a, b, 6), (1.0 + R.uniform(size=2), 5.0 + R.uniform(size=2))),
    ("geomspace negative, endpoint=False, axis", lambda a: np.geomspace(-a, -9.0 * a, 4, endpoint=False, axis=1),
     (1.0 + R.uniform(size=3),)),
    ("poly", lambda z: np.poly(z), (R.normal(size=5),)),
    ("polydiv quotient", lambda u, v: np.polydiv(u, v)[0], (R.normal(size=6), 1.0 + R.uniform(size=3))),
    ("polydiv remainder", lambda u, v: np.polydiv(u, v)[1], (R.normal(size=6), 1.0 + R.uniform(size=3))),
    ("interp with lists", lambda a: np.interp(a, [-1.0, 0.0, 0.5, 2.0], [0.0, 1.0, -1.0, 4.0]), (X,)),
    ("cov", lambda a: np.cov(a), (X,)),
    ("cov of a vector", lambda a: np.cov(a), (R.normal(size=5),)),
    ("cov y rowvar bias", lambda a, b: np.cov(a, b, rowvar=False, bias=True), (R.normal(size=(6, 2)), R.normal(size=6))),
    ("corrcoef", lambda a: np.corrcoef(a), (X,)),
    ("like", lambda a: a + np.zeros_like(a) + np.full_like(a, 2.0) * np.ones_like(a) + np.empty_like(a) * 0, (X,)),
    ("like with NumPy's positional dtype and shape=",
     lambda a: a * np.zeros_like(a, np.float64) + np.full_like(a, 2.0, shape=(4, 5)) * a, (X,)),
]


@pytest.mark.parametrize("name, f, args", BITWISE, ids=[b[0] for b in BITWISE])
def test_values_are_numpys_bit_for_bit(name, f, args):
    got, want = _value(f, *args), f(*args)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn", [np.convolve, np.correlate])
def test_convolve_and_correlate_in_every_mode_and_length_order(fn):
    for n, m, mode in itertools.product([1, 2, 3, 4, 6], [1, 2, 3, 5], ["full", "same", "valid"]):
        a, v = R.normal(size=n), R.normal(size=m)
        got = _value(lambda a, v: fn(a, v, mode), a, v)
        np.testing.assert_allclose(got, fn(a, v, mode), rtol=1e-13, atol=1e-14, err_msg=f"{n} {m} {mode}")
        J = jacc.jacobian(lambda a, v: fn(a, v, mode), argnums=(0, 1), time_limit=0.1)(a, v)  # (a short sweep)
        eps = 1e-6
        for k in range(n):  # the map is linear in each argument: differences are exact up to rounding
            d = np.zeros(n)
            d[k] = eps
            np.testing.assert_allclose(J[0][..., k], (fn(a + d, v, mode) - fn(a - d, v, mode)) / (2 * eps), atol=1e-8)


def test_numpys_errors():
    x = np.ones(4)
    with pytest.raises(ValueError, match="order must be non-negative"):
        jacc.jacobian(lambda x: np.diff(x, n=-1))(x)
    with pytest.raises(ValueError, match="at least one dimensional"):
        jacc.jacobian(lambda x: np.diff(x[0]))(x)
    with pytest.raises(ValueError, match="too small to calculate a numerical gradient"):
        jacc.jacobian(lambda x: np.gradient(x[:2], edge_order=2))(x)
    with pytest.raises(ValueError, match="v cannot be empty"):
        jacc.jacobian(lambda x: np.convolve(x, x[:0]))(x)
    with pytest.raises(ValueError, match="mode must be one of"):
        jacc.jacobian(lambda x: np.convolve(x, x, "wide"))(x)
    with pytest.raises(TraceError, match="numpy.convolve at .*takes two 1-d arrays"):
        jacc.jacobian(lambda x: np.convolve(x.reshape(2, 2), x))(x)
    with pytest.raises(ValueError, match=r"numpy.full_like at .*fill value of shape \(2,\) does not broadcast"):
        jacc.jacobian(lambda x: np.full_like(x, x[:2]))(x)
    with pytest.raises(TraceError, match="numpy.gradient at .*spacing is traced"):
        jacc.jacobian(lambda x: np.gradient(x, x[0]))(x)
    with pytest.raises(UnsupportedOperationError, match="numpy.zeros_like with dtype="):
        jacc.jacobian(lambda x: np.zeros_like(x, np.float32) + x)(x)
    # (np.cov's weights: checked as NumPy checks them; traced fweights, integer counts, are refused)
    with pytest.raises(TraceError, match="numpy.cov at .*the fweights .* are traced"):
        jacc.jacobian(lambda x: np.cov(x, fweights=x * x))(x)
    # degrees of freedom <= 0: NumPy warns and divides by 0 (inf and NaN), not by the negative count
    for f, arg in ((lambda t: np.cov(t, ddof=4), np.array([1.0, 2.5, 0.5])),
                   (lambda w: np.cov(np.array([1.0, 2.5, 0.5]), aweights=w, ddof=2), np.array([1.0, 0.01, 0.01]))):
        with pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):
            value = jacc.value_and_jacobian(f, nonfinite="propagate")(arg)[0]
        with np.errstate(divide="ignore"), pytest.warns(RuntimeWarning):
            np.testing.assert_array_equal(value, f(arg))
    with pytest.raises(TypeError, match="fweights must be integer"):
        jacc.jacobian(lambda x: np.cov(x, fweights=[1, 2.5, 1, 1]))(x)
    with pytest.raises(RuntimeError, match="incompatible numbers of samples and aweights"):
        jacc.jacobian(lambda x: np.cov(x, aweights=[1.0, 2.0]))(x)
    with pytest.raises(ValueError, match="fweights cannot be negative"):
        jacc.jacobian(lambda x: np.cov(x, fweights=[1, -2, 1, 1]))(x)


def test_partials_stay_structured_at_scale():
    n = 20_000
    x = R.normal(size=n)
    for f, most in [(lambda x: np.sum(np.sin(np.diff(x, 2))), 0),
                    (lambda x: np.sum(np.sin(np.gradient(x, 0.1))), 4 * n),
                    (lambda x: np.sum(np.sin(np.convolve(x, [1.0, 2.0, 0.5], "same"))), 3 * n),
                    (lambda x: np.trapezoid(np.sin(x), dx=0.1), 4 * n),
                    (lambda x: np.sum(np.sin(np.cumsum(x))), n),  # a prefix network: no products
                    (lambda x: np.sum(np.sin(np.nancumsum(x.reshape(50, -1), axis=1))), n),
                    (lambda x: np.sum(np.cumprod(1 + x / n)), 2 * n * 15)]:  # 2n per level of the network
        jf = jacc.jacobian(f)
        jf(x)
        assert jf.plan.mults <= most and jf.plan.peak_bytes < 100 * 8 * n


@pytest.mark.parametrize("shape, axis", [((300,), None), ((3, 257), 1), ((260, 2), 0), ((2, 256), -1)])
def test_long_cumsum_keeps_numpys_value_and_the_triangle_as_its_derivative(shape, axis):
    x = R.normal(size=shape)
    f = lambda x: np.cumsum(x, axis=axis)  # noqa: E731
    np.testing.assert_array_equal(_value(f, x), f(x))
    J = jacc.jacobian(f)(x)
    n = x.size if axis is None else x.shape[axis]
    tri = np.tril(np.ones((n, n)))
    # the triangle along the scanned axis, the identity along the others
    want = tri if axis is None else _embed_batched(tri, x.shape, axis % x.ndim)
    np.testing.assert_array_equal(J.reshape(want.shape), want)
    ops = {trace(f, x).op(v) for v in trace(f, x).nx}
    assert ("value_from" in ops) == (n > DENSE_SCAN_MAX)


def _embed_batched(tri, shape, k):
    """The Jacobian of a cumsum along axis k of an array of ``shape``: out index ⊗ in index."""
    n = shape[k]
    J = np.zeros(shape + shape)
    for idx in np.ndindex(*shape):
        for j in range(n):
            src = idx[:k] + (j,) + idx[k + 1:]
            J[idx + src] = tri[idx[k], j]
    return J


def test_long_cumprod_with_zeros_matches_finite_differences():
    from conftest import fd_jacobian

    x = 1 + R.normal(size=(3, DENSE_SCAN_MAX + 6)) / 20
    x[1, 5] = 0.0  # a zero: the derivative needs no division
    f = lambda x: np.cumprod(x, axis=1)  # noqa: E731
    np.testing.assert_array_equal(_value(f, x), f(x))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    assert "value_from" in {trace(f, x).op(v) for v in trace(f, x).nx}


# -- logspace and histogram ---------------------------------------------------------------------


@pytest.mark.parametrize("f", [
    lambda a: np.logspace(a[0], a[1], 6),
    lambda a: np.logspace(a, 3.0, 4, base=2.0, endpoint=False, axis=-1),
    lambda a: np.logspace(0.5, a, 3, base=np.array([2.0, 5.0, 10.0])),
])
def test_logspace_values_equal_numpy(f):
    a = np.array([0.3, -1.2, 2.0])
    np.testing.assert_array_equal(_value(f, a), f(a))


def test_logspace_jacobian_is_the_log_of_the_base_times_the_value():
    a = np.array([0.5, 2.0])
    J = jacc.jacobian(lambda a: np.logspace(a[0], a[1], 3, base=3.0))(a)
    y, t = np.logspace(0.5, 2.0, 3, base=3.0), np.linspace(0.0, 1.0, 3)
    np.testing.assert_allclose(J, np.log(3.0) * y[:, None] * np.stack([1 - t, t], axis=1), rtol=1e-14)


A = np.random.default_rng(7).normal(size=40)
W = np.random.default_rng(8).normal(size=40)


@pytest.mark.parametrize("bins, rng", [(6, None), (5, (-1.0, 1.5)), (np.array([-3.0, -0.5, 0.0, 0.2, 3.0]), None),
                                       ("auto", None), (1, None)])
def test_histogram_values_and_edges_equal_numpy(bins, rng):
    counts, edges = np.histogram(A, bins, rng)
    got = []
    jacc.trace(lambda a: got.append(np.histogram(a, bins, rng)) or a * 1.0, A)
    np.testing.assert_array_equal(got[0][0], counts)
    np.testing.assert_array_equal(getattr(got[0][1], "value", got[0][1]), edges)
    weighted = _value(lambda w: np.histogram(A, bins, rng, weights=w)[0], W) if not isinstance(bins, str) else None
    if weighted is not None:
        np.testing.assert_allclose(weighted, np.histogram(A, bins, rng, weights=W)[0], rtol=0, atol=1e-14)


def test_histogram_weights_jacobian_is_the_bin_membership():
    edges = np.array([-3.0, -0.5, 0.0, 0.2, 3.0])
    J = jacc.jacobian(lambda w: np.histogram(A, edges, weights=w)[0])(W)
    member = (np.searchsorted(edges, A, side="right") - 1)[None, :] == np.arange(4)[:, None]
    np.testing.assert_array_equal(J, member * 1.0)
    assert trace(lambda w: np.histogram(A, edges, weights=w)[0], W).meta.get("value_dependent") is None


def test_histogram_edges_from_the_data_follow_its_extremes():
    """Data-range edges are linspace(min, max): ∂edge_k/∂a is (1 − k/n) at the minimum, k/n at the
    maximum; a constant sample widens the range by ½ each side, as NumPy does."""
    J = jacc.jacobian(lambda a: np.histogram(a, 4)[1])(A)
    t = np.linspace(0.0, 1.0, 5)
    want = np.zeros((5, A.size))
    want[:, A.argmin()], want[:, A.argmax()] = 1 - t, t
    np.testing.assert_allclose(J, want, atol=1e-15)
    same = np.full(3, 2.0)
    np.testing.assert_array_equal(_value(lambda a: np.histogram(a, 2)[1], same), np.histogram(same, 2)[1])
    with pytest.raises(TraceError, match="numpy.histogram.*bins is traced"):
        jacc.trace(lambda a: np.histogram(A, bins=a), np.array([0.0, 1.0]))


B = np.random.default_rng(9).normal(size=40)


@pytest.mark.parametrize("bins, rng, density", [(4, None, False), ((3, 5), None, True), (3, [(-1.0, 1.0), None], True),
                                                (np.array([-2.0, -0.3, 0.0, 0.4, 2.5]), None, False),
                                                ([np.array([-1.0, 0.0, 1.0]), 3], None, True)])
def test_histogram2d_values_and_jacobians(bins, rng, density):
    """Counts and edges are NumPy's; weights and data-range edges have central differences' derivatives."""
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.histogram2d(A, B, bins, rng, density, W ** 2)
        got = _value(lambda w: np.histogram2d(A, B, bins, rng, density, w)[0], W ** 2)
    np.testing.assert_allclose(got, want[0], rtol=1e-12, atol=1e-15)
    for k, f, x in [(0, lambda w: np.histogram2d(A, B, bins, rng, density, w)[0], W ** 2),
                    (1, lambda a: np.histogram2d(a, B, bins, rng, density)[1], A),
                    (2, lambda b: np.histogram2d(A, b, bins, rng, True)[0], B)]:
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-7, err_msg=str(k))


def test_histogramdd_weights_jacobian_is_the_cell_membership():
    sample = np.stack([A, B, W], axis=1)
    J = jacc.jacobian(lambda w: np.histogramdd(sample, bins=(2, 3, 2), weights=w)[0])(W)
    _, edges = np.histogramdd(sample, bins=(2, 3, 2))
    cells = [np.minimum(np.searchsorted(e, c, side="right") - 1, e.size - 2) for e, c in zip(edges, sample.T)]
    want = np.zeros((2, 3, 2, 40))
    want[cells[0], cells[1], cells[2], np.arange(40)] = 1.0
    np.testing.assert_array_equal(J, want)


@pytest.mark.parametrize("p", [np.array([1.0, -0.5, -2.25, 1.125]), np.array([2.0, -3.0, 0.0]),
                               np.array([0.0, 1.0, -2.0, -3.0]), np.array([3.0, 1.0])])
def test_real_roots_have_numpys_values_and_implicit_derivatives(p):
    """dr/dp_k = −r^(n−k)/p′(r), the closed form of implicit differentiation."""
    r = np.roots(p)
    np.testing.assert_array_equal(_value(np.roots, p), r)
    n = p.size - 1
    slope = np.polyval(np.polyder(p), r)
    want = -(r[:, None] ** (n - np.arange(n + 1))[None, :]) / slope[:, None]
    np.testing.assert_allclose(jacc.jacobian(np.roots)(p), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("p, words", [(np.array([1.0, 0.0, 1.0]), "complex roots"),
                                      (np.array([1.0, -2.0, 1.0]), "singular.*multiple root")])
def test_complex_and_multiple_roots_are_refused(p, words):
    with pytest.raises(UnsupportedOperationError, match="numpy.roots at .*test_numpy_numerics.py.*" + words):
        jacc.trace(np.roots, p)



# -- numpy.polynomial -------------------------------------------------------------------------------

_C = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])  # two series of three coefficients


def _two_deep(x):
    return _one_deep(x) + 1.0


def _one_deep(x):
    return np.polynomial.polynomial.polyval(x, _C)


@pytest.mark.parametrize("f", [
    lambda x: np.polynomial.polynomial.polyval(x, _C),  # every column at every point: (2, 2)
    lambda x: np.polynomial.hermite.hermval(x, _C),
    lambda x: _two_deep(x) * 2.0,  # the call two helpers down gets the replacement too
    lambda x: np.polynomial.polynomial.polyval(x, _C, tensor=False),  # column k at point k
    lambda x: np.polynomial.legendre.legval([x[0], 2.0, x[1]], _C),
])
def test_series_at_traced_points_have_numpys_shape_and_derivatives(f):
    # NumPy's evaluation pairs a 2-d c with an ndarray x as a tensor product, and only for an
    # ndarray: a traced x used to get (2,) where NumPy gives (2, 2) -- wrong, and silently
    x = np.array([0.3, -0.6])
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-15)
    J = jacc.jacobian(f)(x)
    assert J.shape == np.shape(f(x)) + (2,)
    np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("series", [np.polynomial.polynomial.polyval, np.polynomial.chebyshev.chebval,
                                    np.polynomial.hermite.hermval, np.polynomial.legendre.legval,
                                    np.polynomial.laguerre.lagval, np.polynomial.hermite_e.hermeval])
@pytest.mark.parametrize("points", [2, 7])
def test_series_of_traced_columns_at_constant_points_are_evaluated_as_a_tensor_product(series, points):
    # a constant ndarray x with a traced 2-d c (columns are polynomials): NumPy evaluates every
    # column at every point; jacc paired column k with point k ((2, 3, 2) where NumPy's is
    # (2, 2, 3, 2), silently) or failed to broadcast 7 points against 3 columns
    x = np.linspace(-0.8, 0.7, points)
    f = lambda C: series(x, C)  # noqa: E731
    C = np.array([[1.0, 2.0, 0.1], [0.5, -1.0, 0.4], [0.3, 0.7, -0.2]])
    J = jacc.jacobian(f)(C)
    assert J.shape == (3, points, 3, 3)
    np.testing.assert_allclose(J, fd_jacobian(f, [C], 0), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("f", [
    lambda c: np.polynomial.polynomial.polyder(c, 2, scl=0.5),
    lambda c: np.polynomial.Polynomial(c).deriv().coef,
    lambda c: np.polynomial.chebyshev.chebint(c, 2, k=[1.0, 2.0], lbnd=0.5),
    lambda c: np.polynomial.Laguerre(c).integ().coef,
    lambda c: np.polynomial.polynomial.polyval2d(c[:2], c[1:3], np.outer(c, c[:2])),
    lambda c: np.polynomial.polynomial.polygrid2d(c[:2], c[1:], np.outer(c, c[:2])),
])
def test_polynomial_calculus_traces_numpys_own_code(f):
    c = np.array([0.5, -1.0, 2.0, 0.75])
    J = jacc.jacobian(f)(c)
    np.testing.assert_allclose(J, fd_jacobian(f, [c], 0), rtol=1e-7, atol=1e-9)


def test_polynomial_calculus_along_another_axis_is_refused_clearly():
    # NumPy moves the axis to the front (a view of its copy) and scales that view in place
    with pytest.raises(UnsupportedOperationError, match="changes a view"):
        jacc.jacobian(lambda c: np.polynomial.polynomial.polyder(np.outer(c, c), axis=1))(np.ones(3))


def test_a_long_filters_jacobian_is_its_band_built_row_by_row():
    # more taps than FEW_TAPS: a gather of sliding windows and one product with the kernel, whose
    # partial is batched over the windows; it used to be unpaired into a windows² block (1.3 s and
    # 2 GB per call at n = 2,000 with 31 taps, now 6 ms and 96 MB)
    n, w = 1500, np.exp(-np.linspace(-2.0, 2.0, 31) ** 2)
    a = np.random.default_rng(0).standard_normal(n)
    jf = jacc.jacobian(lambda a: np.convolve(a, w, "same"), retrace=False)
    J = jf(a)
    band = np.zeros((n, n))
    for i in range(n):  # y_i = Σ_k w_k a_{i + 15 − k}
        for k in range(31):
            if 0 <= i + 15 - k < n:
                band[i, i + 15 - k] = w[k]
    np.testing.assert_allclose(J, band, rtol=1e-14, atol=1e-16)
    _, peak = peak_memory(lambda: jf(a + 1.0))
    assert peak < 5 * J.nbytes  # the windows² block alone was 18 × J.nbytes here


@pytest.mark.parametrize("xp_knots, x", [([0.0, 0.0, 0.5, 1.0], [-0.5, 0.25, 0.8]), ([0.0, 0.5, 1.0, 1.0], [1.5, 0.3, 0.7])],
                         ids=["first-knot-repeated", "last-knot-repeated"])
def test_interp_with_a_repeated_end_knot_is_finite_outside_and_numpys_at_the_end(xp_knots, x):
    """A clipped segment of no width divided by 0 in a derivative np.where left out: NaN
    (0·inf) without an error; at x = xp[-1] of a repeated last knot the value was NaN."""
    knots, x = np.array(xp_knots), np.array(x)
    fp = np.array([0.0, 1.0, 2.0, 3.0])
    for f, arg in ((lambda x: np.interp(x, knots, fp), x), (lambda fp: np.interp(x, knots, fp), fp)):
        g = jacc.trace(f, arg)
        np.testing.assert_array_equal(g.evaluate({g.inputs[0]: arg})[g.outputs[0]], f(arg))
        np.testing.assert_allclose(jacc.jacobian(f)(arg), fd_jacobian(f, [arg], 0), atol=1e-8)
    end = np.array([knots[-1]])  # (a jump there: the value alone)
    g = jacc.trace(lambda x: np.interp(x, knots, fp), end)
    np.testing.assert_array_equal(g.evaluate({g.inputs[0]: end})[g.outputs[0]], np.interp(end, knots, fp))


def test_one_point_interpolated_takes_the_array_route_for_its_constant_knots():
    """All-scalar graph, constant vector operands: the scalar compiler raised float()'s TypeError
    instead of falling back."""
    knots, values = np.array([0.0, 0.5, 1.0]), np.array([0.3, -0.2, 0.7])
    for kw in ({}, {"backend": "c"}, {"retrace": False}):
        assert jacc.jacobian(lambda t: np.interp(t, knots, values), **kw)(0.3) == pytest.approx(-1.0)
        assert jacc.jacobian(lambda y: np.einsum("b,->", values, y), **kw)(0.4) == pytest.approx(0.8)


@pytest.mark.parametrize("backend", ["auto", "numpy", "interpret", "c"])
def test_slopes_that_cancel_at_extreme_arguments(backend):
    """Found by a hunt, on every route: ∂log_ndtr at −10⁸ was 1.9e8 (true 1e8) and inf past −10¹⁰
    (e^(−x²/2 − y) cancels in its exponent); ∂logaddexp at a = b = 1e16 was 1.0 each (y rounds to
    a); ∂arctan2 at (1e-200, 1e-200) was inf (a² + b² underflows)."""
    sp = pytest.importorskip("scipy.special")
    if backend == "c":
        from jacc import ccode

        if ccode.compiler() is None:
            pytest.skip("no C compiler")
    x = np.array([-1e12, -1e8, -1e4, -50.0, -3.0, 0.0, 2.0])
    J = jacc.jacobian(lambda x: sp.log_ndtr(x), backend=backend)(x)
    np.testing.assert_allclose(np.diag(J), np.sqrt(2 / np.pi) / sp.erfcx(-x / np.sqrt(2)), rtol=1e-13)
    a, b = np.array([1e16, 1e300, 3.0]), np.array([1e16, 1e300, 1.0])
    Ja, Jb = jacc.jacobian(np.logaddexp, argnums=(0, 1), backend=backend)(a, b)
    np.testing.assert_allclose(np.diag(Ja), [0.5, 0.5, 1 / (1 + np.exp(-2.0))], rtol=1e-15)
    np.testing.assert_allclose(np.diag(Jb), [0.5, 0.5, 1 / (1 + np.exp(2.0))], rtol=1e-15)
    a, b = np.array([1e-200, 1e200, 1.0]), np.array([1e-200, 1e200, 2.0])
    Ja, Jb = jacc.jacobian(np.arctan2, argnums=(0, 1), backend=backend)(a, b)
    np.testing.assert_allclose(np.diag(Ja), [5e199, 5e-201, 0.4], rtol=1e-15)
    np.testing.assert_allclose(np.diag(Jb), [-5e199, -5e-201, -0.2], rtol=1e-15)


_SERIES_ALIAS = np.polynomial.chebyshev.chebval


def test_a_series_held_under_a_name_of_its_own_is_replaced_too():
    # alias = P.polyval: the name did not say it was an eagerly replaced function, so NumPy's own
    # code ran on the traced points and paired the columns of a 2-d c with them: (2, 2), silently,
    # where NumPy's value is (2, 2) and its Jacobian (2, 2, 2) (found by a hunt)
    c = np.array([[1.0, 2.0], [0.5, -1.0], [0.25, 3.0]])
    x = np.array([0.1, -0.4])
    held = np.polynomial.polynomial.polyval
    for f in (lambda x: _SERIES_ALIAS(x, c), lambda x: held(x, c)):
        J = jacc.jacobian(f)(x)
        assert J.shape == (2, 2, 2)
        np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("module, name", [("polynomial", "polyvander"), ("chebyshev", "chebvander"),
                                          ("legendre", "legvander"), ("hermite", "hermvander"),
                                          ("hermite_e", "hermevander"), ("laguerre", "lagvander")])
def test_pseudo_vandermonde_matrices_of_traced_points_are_numpys(module, name):
    """NumPy writes their columns into np.empty (a plain array): the same recurrence is stacked, so
    the values are NumPy's bit for bit; the 2-d variant calls them through the module."""
    vander = getattr(getattr(np.polynomial, module), name)
    x = np.linspace(-0.8, 0.9, 5)
    value, J = jacc.value_and_jacobian(lambda t: vander(t, 5))(x)
    np.testing.assert_array_equal(value, vander(x, 5))
    np.testing.assert_allclose(J, fd_jacobian(lambda t: vander(t, 5), [x], 0), rtol=1e-7, atol=1e-8)
    assert jacc.jacobian(lambda t: vander(t[2], 0))(x).shape == (1, 1, 5)  # a 0-d point: NumPy's ndmin=1
    two = getattr(getattr(np.polynomial, module), name + "2d")
    np.testing.assert_allclose(jacc.jacobian(lambda t: two(t, t ** 2, [2, 1]))(x),
                               fd_jacobian(lambda t: two(t, t ** 2, [2, 1]), [x], 0), rtol=1e-7, atol=1e-8)


def test_interp_with_a_period_reduces_as_numpy_does():
    knots, fp = np.array([350.0, 10.0, 50.0, 190.0, 260.0]), np.array([1.0, 2.0, 0.5, -1.0, 3.0])
    x = np.array([-45.0, 5.0, 100.0, 300.0, 355.0, 725.0])
    for f, arg in ((lambda t: np.interp(t, knots, fp, period=-360), x),
                   (lambda v: np.interp(x, knots, v, period=360), fp),
                   (lambda k: np.interp(x, k, fp, period=360), knots)):
        value, J = jacc.value_and_jacobian(f)(arg)
        np.testing.assert_array_equal(value, f(arg))
        np.testing.assert_allclose(J, fd_jacobian(f, [arg], 0), rtol=1e-7, atol=1e-8)
    with pytest.raises(ValueError, match="period must be a non-zero value"):
        jacc.jacobian(lambda v: np.interp(x, knots, v, period=0.0))(fp)


def test_interp_with_only_its_period_or_bounds_traced():
    """NumPy dispatches np.interp on x, xp and fp alone: a traced period went to NumPy's own code,
    which refused it as a conversion; now the call is replaced while f is traced."""
    knots, fp = np.array([0.1, 0.28, 0.46, 0.64, 0.82, 1.0]), np.cos(np.linspace(0.1, 1.0, 6))
    x = np.array([0.3, 0.7, 1.9, -0.4])
    for f, arg in ((lambda p: np.interp(x, knots, fp, period=p), 1.3),
                   (lambda b: np.interp(np.array([-1.0, 0.5, 2.0]), knots, fp, left=b, right=2 * b), 0.7)):
        jf = jacc.jacobian(f)
        for t in (arg, 1.1 * arg, 0.9 * arg):  # (a later call may skip f)
            np.testing.assert_allclose(jf(t), (f(t + 1e-6) - f(t - 1e-6)) / 2e-6, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(jacc.value_and_jacobian(lambda p: np.interp(x, knots, fp, period=p))(1.3)[0],
                                  np.interp(x, knots, fp, period=1.3))


def test_fits_of_chosen_degrees_write_into_numpys_zeros():
    """chebfit(x, y, [0, 2, 3]) writes its coefficients into np.zeros inside NumPy's own code: a
    plain write, which the retry with buffers takes (it was refused as a conversion)."""
    C, P = np.polynomial.chebyshev, np.polynomial.polynomial
    x, y = np.linspace(0.1, 1.0, 7), np.cos(3 * np.linspace(0.1, 1.0, 7))
    for f, arg in ((lambda t: C.chebfit(t, y, [0, 2, 3]), x), (lambda v: P.polyfit(x, np.stack([v, v ** 2], 1), [0, 2]), y),
                   (lambda w: np.polynomial.legendre.legfit(x, y, [0, 1, 3], w=w), 1.0 + x)):
        value, J = jacc.value_and_jacobian(f)(arg)
        np.testing.assert_allclose(value, f(arg), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(J, fd_jacobian(f, [arg], 0), rtol=1e-6, atol=1e-8)
    assert not jacc.jacobian(lambda t: C.chebfit(t, y, [0, 2, 3]))(x)[1].any()  # the degree left out


def test_polynomial_objects_meeting_traced_values_are_refused_with_the_function_to_use():
    P = np.polynomial.Polynomial
    x, y = np.linspace(0.1, 1.0, 6), np.cos(np.linspace(0.1, 1.0, 6))
    for f in (lambda t: P.fit(t, y, 2).convert().coef, lambda t: (t[1] + P([1.0, 2.0])).coef):
        with pytest.raises(TypeError, match=r"Polynomial.*polyfit\(x, y, deg\) for Polynomial.fit"):
            jacc.jacobian(f)(x)
    f = lambda t: P.fit(t, y, 2).deriv()(t)  # noqa: E731  (evaluating one at traced points is fine)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_a_ufunc_method_given_a_list_of_traced_values_says_to_stack_them():
    with pytest.raises(UnsupportedOperationError, match=r"ufunc method converts a list.*np.stack"):
        jacc.jacobian(lambda x: np.add.reduce([x[0], x[1]]))(np.ones(2))
