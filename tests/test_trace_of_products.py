"""np.trace(P @ Q) is recorded as Σ Pᵢⱼ Qⱼᵢ: the diagonal's sum, multiplied back through P·Q's
partial, made the adjoint an identity matrix times a Kronecker factor (n³ multiplications)."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc

N = 6
R = np.random.default_rng(11)
A, B, X = R.normal(size=(N, N)), R.normal(size=(N, N)), R.normal(size=(N, N))

CASES = [  # (name, f, closed-form gradient, reverse mults)
    ("tr(AXB)", lambda X: np.trace(A @ X @ B), A.T @ B.T, N**3),
    ("tr(XᵀAX)", lambda X: np.trace(X.T @ A @ X), (A + A.T) @ X, N**3),
    ("tr(XᵀX)", lambda X: np.trace(X.T @ X), 2 * X, 0),
    ("tr(XXᵀ)", lambda X: (X @ X.T).trace(), 2 * X, 0),
    ("tr(XX)", lambda X: np.trace(X @ X), 2 * X.T, 0),
    ("tr(X⁻¹A)", lambda X: np.trace(np.linalg.inv(X) @ A), None, None),
]


@pytest.mark.parametrize("name, f, grad, mults", CASES, ids=[c[0] for c in CASES])
def test_trace_of_a_product_is_a_sum_of_elementwise_products(name, f, grad, mults):
    g = jacc.trace(f, X)
    assert "einsum" in {g.op(v) for v in g.nx}
    J = jacc.jacobian(f)(X)
    np.testing.assert_allclose(J, fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)
    if grad is not None:
        np.testing.assert_allclose(J, grad, rtol=1e-12, atol=1e-12)
    if mults is not None:
        assert jacc.plan(g, "reverse").mults == mults
    np.testing.assert_allclose(jacc.jacobian(f, retrace=False)(X), J, rtol=1e-12, atol=1e-13)
    assert float(g.evaluate({"X": X})[g.outputs[0]]) == pytest.approx(float(f(X)), rel=1e-13)


@pytest.mark.parametrize("f, want", [
    (lambda X: np.diagonal(X.T @ X), lambda X: np.sum(X * X, 0)),
    (lambda X: np.diag(A @ X), lambda X: np.sum(A * X.T, 1)),
], ids=["diagonal(XᵀX)", "diag(AX)"])
def test_diagonal_of_a_product_is_an_einsum(f, want):
    g = jacc.trace(f, X)
    assert "einsum" in {g.op(v) for v in g.nx}
    np.testing.assert_allclose(g.evaluate({"X": X})[g.outputs[0]], want(X), rtol=1e-13)
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)
    assert jacc.plan(g, "reverse").mults <= 2 * N**2


def test_other_traces_sum_the_diagonal():
    for f in (lambda X: np.trace(np.sin(X)), lambda X: np.trace(A @ X, offset=1),
              lambda X: np.trace(np.stack([X @ A, X]), axis1=1, axis2=2).sum()):
        g = jacc.trace(f, X)
        assert "einsum" not in {g.op(v) for v in g.nx}
        np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)


W, T = R.normal(size=(3, N)), R.normal(size=(N, 4))  # a wide and a tall constant factor


@pytest.mark.parametrize("f", [
    lambda Y: np.diag(W @ Y),                # 3×4 product of a wide factor and a 6×4 argument
    lambda Y: np.diagonal(Y.T @ T),          # 4×4 from tall factors: square, each factor not
    lambda Y: np.trace(W @ Y),
    lambda Y: np.trace(Y @ Y.T[:, :3]),      # 6×3, both factors traced
    lambda Y: (Y.T @ W.T).diagonal(),        # 4×3
    lambda Y: np.linalg.trace(W @ Y),
], ids=["diag(WY)", "diagonal(YᵀT)", "tr(WY)", "tr(Y·Yᵀ[:, :3])", "(YᵀWᵀ).diagonal()", "linalg.trace(WY)"])
def test_the_diagonal_of_a_product_that_is_not_square(f):
    # its diagonal has min(rows, columns) entries: the einsum over both factors whole raised
    # "label 'i' has sizes 3 and 4" (found by fuzzing)
    Y = R.normal(size=(N, 4))
    J = jacc.jacobian(f)(Y)
    np.testing.assert_allclose(J, fd_jacobian(f, [Y], 0), rtol=1e-6, atol=1e-7)
    g = jacc.trace(f, Y)
    np.testing.assert_allclose(g.evaluate({"Y": Y})[g.outputs[0]], f(Y), rtol=1e-13)
