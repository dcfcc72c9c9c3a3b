"""scipy.ndimage's linear filters of traced arrays (jacc.numpy_api.scipy_ndimage): values equal
SciPy's to rounding for every boundary mode, Jacobians equal central differences of SciPy, the
partials stay index maps and diagonals, and what is not recorded is refused by name."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc

nd = pytest.importorskip("scipy.ndimage")

R = np.random.default_rng(2)
X1, X2, W2 = R.normal(size=11), R.normal(size=(6, 5)), R.normal(size=(3, 2))
MODES = ["reflect", "mirror", "nearest", "wrap", "constant", "grid-wrap", "grid-mirror", "grid-constant"]
W4 = [0.5, -1.0, 2.0, 0.25]

CASES = [(f"{name}, {mode}", f, X1) for mode in MODES for name, f in [
    ("gaussian_filter1d", lambda x, m=mode: nd.gaussian_filter1d(x, 1.3, mode=m, cval=0.5)),
    ("uniform_filter1d, origin 1", lambda x, m=mode: nd.uniform_filter1d(x, 4, mode=m, origin=1)),
    ("correlate1d, origin -1", lambda x, m=mode: nd.correlate1d(x, W4, mode=m, origin=-1)),
    ("convolve1d", lambda x, m=mode: nd.convolve1d(x, W4, mode=m)),
]] + [
    ("gaussian_filter1d, order 1", lambda x: nd.gaussian_filter1d(x, 1.0, order=1), X1),
    ("gaussian_filter1d, wider than the input", lambda x: nd.gaussian_filter1d(x, 6.0), X1),
    ("gaussian_filter1d, radius", lambda x: nd.gaussian_filter1d(x, 2.0, radius=2), X1),
    ("gaussian_filter", lambda x: nd.gaussian_filter(x, (1.0, 0.7)), X2),
    ("gaussian_filter, orders and modes per axis",
     lambda x: nd.gaussian_filter(x, 1.0, order=(0, 1), mode=("nearest", "wrap")), X2),
    ("gaussian_filter, axes", lambda x: nd.gaussian_filter(x, 1.0, axes=(1,)), X2),
    ("uniform_filter", lambda x: nd.uniform_filter(x, (3, 2)), X2),
    ("correlate", lambda x: nd.correlate(x, W2, mode="wrap"), X2),
    ("correlate, traced weights", lambda w: nd.correlate(X2, w), W2),
    ("correlate1d, traced weights", lambda w: nd.correlate1d(X1, w), np.array(W4)),
    ("convolve, cval", lambda x: nd.convolve(x, W2, mode="constant", cval=1.0), X2),
    ("convolve, origin", lambda x: nd.convolve(x, W2, origin=(1, 0)), X2),
    ("sobel", lambda x: nd.sobel(x, axis=0, mode="mirror"), X2),
    ("prewitt", lambda x: nd.prewitt(x, axis=1), X2),
    ("laplace", lambda x: nd.laplace(x), X2),
]

FP = np.array([[1, 0, 1], [0, 1, 1]], bool)
RANKS = [
    ("maximum_filter", lambda x: nd.maximum_filter(x, 3)),
    ("maximum_filter, modes and origins per axis",
     lambda x: nd.maximum_filter(x, (3, 2), mode=("nearest", "wrap"), origin=(1, 0))),
    ("minimum_filter, cval", lambda x: nd.minimum_filter(x, 3, mode="constant", cval=0.3)),
    ("median_filter", lambda x: nd.median_filter(x, 3)),
    ("median_filter, footprint", lambda x: nd.median_filter(x, footprint=FP, mode="mirror")),
    ("median_filter, even size (SciPy takes the upper middle)", lambda x: nd.median_filter(x, (2, 2))),
    ("percentile_filter", lambda x: nd.percentile_filter(x, 30, size=(3, 3), origin=-1)),
    ("percentile_filter, negative", lambda x: nd.percentile_filter(x, -20, size=(2, 3))),
    ("rank_filter, negative rank", lambda x: nd.rank_filter(x, -2, size=(3, 3), mode="grid-wrap")),
    ("rank_filter, axes", lambda x: nd.rank_filter(x, 1, size=3, axes=(1,))),
    ("maximum_filter1d", lambda x: nd.maximum_filter1d(x, 4, axis=0, origin=1)),
    ("minimum_filter1d", lambda x: nd.minimum_filter1d(x, 3, mode="mirror")),
]
INTERPOLATIONS = [
    ("shift, cubic", lambda x: nd.shift(x, (0.5, -1.3))),
    ("shift, linear, cval", lambda x: nd.shift(x, (0.5, 1.3), order=1, cval=2.0)),
    ("shift, nearest neighbour, wrap", lambda x: nd.shift(x, 1.4, order=0, mode="wrap")),
    ("shift, order 5, reflect", lambda x: nd.shift(x, (2.2, 0.3), order=5, mode="reflect")),
    ("shift, no prefilter", lambda x: nd.shift(x, (2.2, 0.3), order=2, mode="nearest", prefilter=False)),
    ("zoom", lambda x: nd.zoom(x, 1.5)),
    ("zoom, grid_mode, cval", lambda x: nd.zoom(x, (0.7, 2.0), order=1, mode="grid-constant", grid_mode=True,
                                                cval=1.0)),
    ("affine_transform, scales", lambda x: nd.affine_transform(x, [0.9, 1.2], offset=(0.3, -0.5),
                                                               output_shape=(5, 8))),
    ("affine_transform, diagonal matrix", lambda x: nd.affine_transform(x, np.diag([0.9, 1.2]), order=1,
                                                                        mode="mirror")),
    ("spline_filter", lambda x: nd.spline_filter(x)),
    ("spline_filter1d", lambda x: nd.spline_filter1d(x, 4, axis=0, mode="wrap")),
]
CASES += [(name, f, R.normal(size=(7, 6))) for name, f in RANKS + INTERPOLATIONS]


@pytest.mark.parametrize("name, f, x", CASES, ids=[c[0] for c in CASES])
def test_values_and_jacobians_are_scipys(name, f, x):
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-13, atol=1e-14)
    got = jacc.jacobian(f, time_limit=0.1)(x)  # (auto in a tenth of its second: a short suite)
    np.testing.assert_allclose(got, fd_jacobian(f, [x], 0), atol=1e-8)


def test_a_filter_records_index_maps_and_scaled_identities_not_a_dense_matrix():
    from jacc.numpy_api import Case, traced_structures
    from jacc.numpy_api.scipy_ndimage import _INDEX_MAPS

    for f in (lambda x: nd.gaussian_filter(x, 2.0), lambda x: nd.sobel(x, axis=1)):
        ops, kinds = traced_structures(Case("f", lambda xp, f=f: f, lambda r: (r.normal(size=(40, 30)),)))
        assert "pad" in ops or "gather" in ops
        assert kinds and kinds <= _INDEX_MAPS, kinds


@pytest.mark.parametrize("name, f", [RANKS[0], RANKS[4], INTERPOLATIONS[1], INTERPOLATIONS[4]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_rank_filters_and_interpolations_give_sparse_jacobians_equal_to_the_dense_ones(name, f):
    x = R.normal(size=(9, 8))
    J = jacc.jacobian(f, sparse=True)(x)
    dense = jacc.jacobian(f)(x)
    np.testing.assert_array_equal(J.toarray(), dense.reshape(72, 72))
    assert J.nnz <= 72 * 9  # a few entries per row: no dense n × n block


def test_a_linear_shift_records_index_maps_and_diagonals_and_a_median_only_selections():
    from jacc.numpy_api import Case, traced_structures

    for f, allowed in ((lambda x: nd.shift(x, (0.5, 1.3), order=1), {"select", "diag", "embed", "identity"}),
                       (lambda x: nd.median_filter(x, 3), {"select", "embed", "identity"})):
        ops, kinds = traced_structures(Case("f", lambda xp, f=f: f, lambda r: (r.normal(size=(40, 30)),)))
        assert kinds and kinds <= allowed, kinds


@pytest.mark.parametrize("f, words", [
    (lambda x: nd.rotate(x, 30.0), "rotate .*mix the axes"),
    (lambda x: nd.map_coordinates(x, [[0.5, 1.5], [1.0, 2.0]]), "map_coordinates .*mix the axes"),
    (lambda x: nd.affine_transform(x, [[1.0, 0.2], [0.0, 1.0]]), "only a diagonal matrix"),
    (lambda x: nd.shift(x, x[0, 0]), "shift must be a constant"),
    (lambda x: nd.median_filter(x, 3, output=np.empty_like(X2)), "output="),
    (lambda x: nd.zoom(x, 2.0, output=np.float32), "output="),

    (lambda x: nd.gaussian_filter(x, 1.0, output=np.empty_like(X2)), "output="),
    (lambda x: nd.gaussian_filter(x, 1.0, mode="bogus"), "mode='bogus'"),
    (lambda x: nd.gaussian_filter(X2, x[0, 0]), "sigma must be a constant"),
])
def test_what_is_not_recorded_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words):
        jacc.jacobian(f)(X2)


def test_a_rebound_global_that_f_calls_is_seen():
    # the names f binds to replaced SciPy functions were found once per code: after `fn` was
    # rebound, SciPy's own correlate ran on traced values
    global _rebound
    x, w = np.array([0.1, 0.3, 0.7]), np.array([1.0, 2.0, 3.0])

    def f(X):
        return _rebound(X, w)

    jf = jacc.jacobian(f)
    for fn in (nd.convolve, nd.correlate, lambda X, w: X * w, nd.convolve):
        _rebound = fn
        for _ in range(3):
            np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), atol=1e-8)
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


_rebound = None


def test_weights_given_as_lists():
    # nd.convolve(x, [1.0, 2.0, 1.0]) indexed the list with a tuple (a TypeError)
    x = np.random.default_rng(0).normal(size=8)
    X = x.reshape(2, 4)
    for f, arg in ((lambda t: nd.convolve(t, [1.0, 2.0, 1.0]), x), (lambda t: nd.correlate(t, [1.0, 2.0, 0.5]), x),
                   (lambda t: nd.convolve(t, [[1.0, 2.0], [0.5, 1.0]]), X),
                   (lambda t: nd.correlate(t, [[1.0, 2.0], [0.5, 1.0]], mode="nearest"), X)):
        value, J = jacc.value_and_jacobian(f)(arg)
        np.testing.assert_allclose(value, f(arg), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(J, fd_jacobian(f, [arg], 0), rtol=1e-6, atol=1e-8)


def test_generic_filter_traces_its_python_function_per_window():
    """SciPy hands the function each window's entries as a 1-d array: here each window of the traced
    input (footprint order, modes, origins, extra arguments as SciPy's)."""
    r = np.random.default_rng(0)
    x, X = r.normal(size=8), r.normal(size=(4, 5))
    cases = [(lambda t: nd.generic_filter(t, np.mean, 3), x),
             (lambda t: nd.generic_filter(t, np.std, size=3, mode="nearest"), x),
             (lambda t: nd.generic_filter(t, lambda w: w[0] * w[-1], footprint=np.array([[1, 0, 1], [0, 1, 0]])), X),
             (lambda t: nd.generic_filter(t, lambda w, a, b=1.0: a * np.sum(w ** 2) + b, size=(2, 3),
                                          extra_arguments=(0.5,), extra_keywords={"b": 2.0}, mode="wrap"), X),
             (lambda t: nd.generic_filter(t, np.max, 3, origin=1), x)]
    for f, arg in cases:
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.1):
            value, J = jacc.value_and_jacobian(f)(arg * scale)
            np.testing.assert_array_equal(value, f(arg * scale))
            np.testing.assert_allclose(jf(arg * scale), fd_jacobian(f, [arg * scale], 0), rtol=1e-6, atol=1e-8)


def test_generic_filter_refuses_a_function_that_does_not_return_one_number():
    x = np.random.default_rng(0).normal(size=6)
    for fn in (lambda w: None, lambda w: "1.5", lambda w: w[:2], lambda w: np.mean(w, keepdims=True)):
        with pytest.raises(TypeError, match="must return one real number per window"):
            jacc.jacobian(lambda t: nd.generic_filter(t, fn, 3))(x)
