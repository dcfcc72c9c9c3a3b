"""scipy.spatial.distance of traced arrays (jacc.numpy_api.scipy_spatial): values equal SciPy's,
Jacobians central differences of SciPy's."""

import numpy as np
import pytest
import scipy.spatial.distance as dist
from conftest import assert_later_calls_raise, fd_jacobian

import jacc
from jacc.trace import UnsupportedOperationError

R = np.random.default_rng(3)
A, B, W = R.standard_normal((3, 2)), R.standard_normal((4, 2)), np.array([0.5, 2.0])

CALLS = {
    **{m: (lambda a, b, m=m: dist.cdist(a, b, m)) for m in (
        "euclidean", "sqeuclidean", "cityblock", "chebyshev", "cosine", "correlation", "braycurtis", "seuclidean",
        "mahalanobis")},
    "minkowski p=3": lambda a, b: dist.cdist(a, b, "minkowski", p=3.0),
    "euclidean w": lambda a, b: dist.cdist(a, b, "euclidean", w=W),
    "minkowski w": lambda a, b: dist.cdist(a, b, "minkowski", p=1.5, w=W),
    "correlation w": lambda a, b: dist.cdist(a, b, "correlation", w=W),
    "a function": lambda a, b: dist.cdist(a, b, lambda u, v: np.sum((u - v) ** 4)),
    "pdist": lambda a, b: dist.pdist(np.concatenate([a, b]), "cosine"),
    "pdist mahalanobis": lambda a, b: dist.pdist(np.concatenate([a, b]), "mahalanobis"),
    "squareform": lambda a, b: dist.squareform(dist.pdist(np.concatenate([a, b]))),
    "squareform back": lambda a, b: dist.squareform(dist.squareform(dist.pdist(a)) * 2.0),
}


@pytest.mark.parametrize("name", CALLS)
def test_distances_follow_scipy(name):
    f = CALLS[name]
    g = jacc.trace(f, A, B, argnums=(0, 1))
    np.testing.assert_allclose(g.evaluate({"a": A, "b": B})[g.outputs[0]], f(A, B), rtol=1e-14, atol=1e-15)
    J = jacc.jacobian(f, argnums=(0, 1))(A, B)
    for k in (0, 1):
        np.testing.assert_allclose(J[k], fd_jacobian(f, [A, B], k), atol=1e-7)


def test_a_zero_distance_has_the_derivative_zero():
    """cdist(X, X)'s diagonal: |x − x| is identically 0, so is its derivative (not NaN)."""
    jf = jacc.jacobian(lambda x: dist.cdist(x, x))
    J = jf(A)
    assert np.isfinite(J).all() and not J[np.arange(3), np.arange(3)].any()
    np.testing.assert_allclose(J, fd_jacobian(lambda x: dist.cdist(x, x), [A], 0), atol=1e-7)
    assert not jacc.trace(lambda x: dist.cdist(x, x), A).meta.get("value_dependent")  # (a recorded mask)
    # a zero the trace did not see: derivative 0 there too (later calls gave NaN)
    good, coincide = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    for retrace in (True, False):
        jp = jacc.jacobian(dist.pdist, retrace=retrace)
        for _ in range(3):
            jp(good)
        np.testing.assert_array_equal(jp(coincide), jacc.jacobian(dist.pdist, retrace="always")(coincide))
        assert np.isfinite(jp(coincide)).all() and not jp(coincide)[0].any()


def test_squareform_checks_the_matrix_at_every_call():
    D = dist.squareform(dist.pdist(A))
    bad = D.copy()
    bad[1, 0] = 5.0
    assert_later_calls_raise(dist.squareform, D, bad, ValueError, "symmetric with a zero diagonal")


def test_what_is_not_recorded_is_refused_by_name():
    for call, words in [(lambda a: dist.cdist(a, B, "hamming"), "metric='hamming'"),
                        (lambda a: dist.cdist(a, B, "chebyshev", w=W), "keyword(s) ['w']"),
                        (lambda a: dist.cdist(a, B, out=np.zeros((3, 4))), "out="),
                        (lambda a: dist.squareform(dist.cdist(a, B)), "square matrix"),
                        (lambda a: dist.squareform(dist.cdist(a, B[:3])), "symmetric"),
                        (lambda a: dist.cdist(a.ravel(), B), "2-dimensional")]:
        with pytest.raises((UnsupportedOperationError, ValueError), match=r"test_scipy_spatial\.py") as e:
            jacc.trace(call, A)
        assert words in str(e.value)


def test_distances_let_calls_skip_f_and_a_users_metric_stays_guarded():
    """cdist read its metric table (a dict of objects) as user code: f ran at every call (817 us
    against 9 us skipping). A metric of the user's, and what it reads, are still seen."""
    Y = np.linspace(0.0, 1.0, 8).reshape(4, 2)
    scale = [1.0]

    def kernel(x):
        return np.exp(-dist.cdist(x.reshape(4, 2), Y, "sqeuclidean")).sum(0) + dist.pdist(x.reshape(4, 2)).sum()

    def custom(x):
        return dist.cdist(x.reshape(4, 2), Y, metric=lambda u, v: np.abs(u - v).sum() * scale[0]).sum(1)

    for f in (kernel, custom):
        jf = jacc.jacobian(f)
        for k in range(5):
            x = np.linspace(-1.0, 1.3, 8) * (1 + 0.1 * k)
            np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
        assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    scale[0] = 3.0
    np.testing.assert_allclose(jf(x), fd_jacobian(custom, [x], 0), rtol=1e-6, atol=1e-8)
