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


@pytest.mark.parametrize("name, f, x", CASES, ids=[c[0] for c in CASES])
def test_values_and_jacobians_are_scipys(name, f, x):
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_a_filter_records_index_maps_and_scaled_identities_not_a_dense_matrix():
    from jacc.numpy_api import Case, traced_structures
    from jacc.numpy_api.scipy_ndimage import _INDEX_MAPS

    for f in (lambda x: nd.gaussian_filter(x, 2.0), lambda x: nd.sobel(x, axis=1)):
        ops, kinds = traced_structures(Case("f", lambda xp, f=f: f, lambda r: (r.normal(size=(40, 30)),)))
        assert "pad" in ops or "gather" in ops
        assert kinds and kinds <= _INDEX_MAPS, kinds


@pytest.mark.parametrize("f, words", [
    (lambda x: nd.gaussian_filter(x, 1.0, output=np.empty_like(X2)), "output="),
    (lambda x: nd.gaussian_filter(x, 1.0, mode="bogus"), "mode='bogus'"),
    (lambda x: nd.gaussian_filter(X2, x[0, 0]), "sigma must be a constant"),
])
def test_what_is_not_recorded_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words):
        jacc.jacobian(f)(X2)
