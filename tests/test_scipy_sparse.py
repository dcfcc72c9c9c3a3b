"""A constant scipy.sparse matrix times a traced array (jacc.numpy_api.scipy_sparse): every way to
write the product, against finite differences; the size limit and the errors name the call."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.numpy_api import scipy_sparse

sparse = pytest.importorskip("scipy.sparse")
S = sparse.csr_array(np.array([[2.0, 0.0, 1.0, 0.0], [0.0, -3.0, 0.0, 0.5], [1.0, 0.0, 0.0, 4.0]]))
x = np.array([0.3, -0.7, 1.1, 0.4])
X = np.arange(8.0).reshape(4, 2) / 7.0 - 0.5


@pytest.mark.parametrize("f, arg", [
    (lambda x: S @ np.sin(x), x),
    (lambda x: S.dot(x ** 2), x),
    (lambda X: S @ X ** 2, X),  # (4, 2): one column per right-hand side
    (lambda y: np.tanh(y) @ S, np.array([0.2, -0.4, 0.9])),  # x @ S: SciPy's __rmatmul__
    (lambda X: X.T @ S.T, X),
    (lambda x: sparse.csr_matrix(S) * x, x),  # spmatrix: * is the matrix product
    (lambda x: S.tocoo() @ x + sparse.csc_array(S) @ x, x),
    (lambda x: np.exp(x) @ (S.T @ (S @ x)), x),
])
def test_products_with_a_constant_sparse_matrix_trace(f, arg):
    J = jacc.jacobian(f)(arg)
    np.testing.assert_allclose(J, fd_jacobian(f, [arg], 0), atol=1e-8)
    jo = jacc.jacobian(f, retrace=False)
    jo(arg)
    np.testing.assert_allclose(jo(arg * 0.5), fd_jacobian(f, [arg * 0.5], 0), atol=1e-8)
    for name in ("_matmul_dispatch", "_rmatmul_dispatch"):  # SciPy's own again after the trace
        assert vars(sparse._base._spbase)[name].__module__ == "scipy.sparse._base"
    np.testing.assert_array_equal(S @ np.ones(4), [3.0, -2.5, 5.0])


def test_a_matrix_too_large_to_make_dense_and_a_wrong_shape_are_refused_by_name(monkeypatch):
    with pytest.raises(ValueError, match="dimension mismatch at .*sparse 3×4 matrix times an array of shape \\(3,\\)"):
        jacc.jacobian(lambda y: S @ y)(np.ones(3))
    monkeypatch.setattr(scipy_sparse, "MAX_DENSE", 11)
    with pytest.raises(jacc.UnsupportedOperationError, match="sparse 3×4 matrix times a traced array at .*test_scipy_"
                                                             "sparse.py.*at most 11 entries"):
        jacc.jacobian(lambda y: S @ y)(x)


def test_sparse_solves_and_matrix_exponential_products():
    """spsolve with a constant sparse matrix, expm_multiply with a constant sparse or a traced dense
    matrix (imported by name too); their values are SciPy's to rounding (expm_multiply's own
    truncation: about 1e-12)."""
    sla = pytest.importorskip("scipy.sparse.linalg")
    from scipy.sparse.linalg import expm_multiply, spsolve

    a = (S.T @ S + 2.0 * sparse.eye(4)).tocsc()
    m = np.outer(x, x[::-1]) * 0.3
    for f, arg in [(lambda b: sla.spsolve(a, np.sin(b)), x), (lambda b: spsolve(a, b ** 2), X),
                   (lambda b: expm_multiply(a * 0.2, b), X), (lambda m: sla.expm_multiply(m, np.ones(4)), m)]:
        np.testing.assert_allclose(jacc.trace(f, arg).evaluate({"b" if arg is not m else "m": arg})[
            jacc.trace(f, arg).outputs[0]], f(arg), rtol=1e-10)  # (expm_multiply's own truncation: ~1e-12)
        np.testing.assert_allclose(jacc.jacobian(f)(arg), fd_jacobian(f, [arg], 0), atol=1e-8)
    with pytest.raises(jacc.UnsupportedOperationError, match="expm_multiply with start=.*test_scipy_sparse.py"):
        jacc.jacobian(lambda b: expm_multiply(a, b, start=0.0, stop=1.0, num=3))(x)


@pytest.mark.parametrize("fmt", ["csr_matrix", "csr_array"])
def test_sums_with_a_sparse_constant_trace_and_other_operators_are_refused_clearly(fmt):
    """A + x fell into NumPy's 'setting an array element with a sequence' (an object array of the
    matrix); x * A on a csr_matrix (a vector-matrix product in SciPy) must not become elementwise."""
    import scipy.sparse as sp

    A = getattr(sp, fmt)(sp.random(5, 5, density=0.5, random_state=0))
    u = np.linspace(1.0, 2.0, 5)
    for f in (lambda u: A + u, lambda u: u - A, lambda u: np.sin(u) + A):
        got, g = jacc.jacobian(f)(u), jacc.trace(f, u)
        np.testing.assert_allclose(g.evaluate({"u": u})[g.outputs[0]], np.asarray(f(u)), rtol=1e-15)
        np.testing.assert_allclose(got, fd_jacobian(lambda u: np.asarray(f(u)), [u], 0), rtol=1e-7, atol=1e-9)
    with pytest.raises(jacc.UnsupportedOperationError, match=rf"mul of a traced array and a SciPy sparse {fmt}.*A @ x"):
        jacc.jacobian(lambda u: u * A)(u)
    with pytest.raises(jacc.UnsupportedOperationError, match="a SciPy sparse matrix cannot hold traced values.*A.toarray"):
        jacc.jacobian(lambda u: A.multiply(u).sum())(u)
