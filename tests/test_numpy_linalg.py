"""numpy.linalg beyond the coverage cases: which triangle is read, batched structure, singular
points, refusals (each naming the function, the argument and the call site) and graph files."""

import functools
import warnings

import numpy as np
import pytest
from conftest import assert_later_calls_raise, fd_jacobian

import jacc
from jacc.eliminate import accumulate
from jacc.numpy_api import linalg
from jacc.numpy_api.linalg import DENSE_PARTIAL_MAX, spd

HERE = "test_numpy_linalg.py:"
# the large networks' tests plan with auto in a tenth of its second: their products, not the search, are tested
_quick = functools.partial(jacc.jacobian, time_limit=0.1)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _sym_fd(f, a, eps=1e-6):
    """Finite differences of f along symmetric perturbations Eᵢⱼ + Eⱼᵢ (i > j) and Eᵢᵢ, laid out
    on the lower triangle: what a function that reads the lower triangle should report."""
    y0 = np.asarray(f(a))
    J = np.zeros(y0.shape + a.shape)
    for i in range(a.shape[0]):
        for j in range(i + 1):
            e = np.zeros_like(a)
            e[i, j] = e[j, i] = eps
            J[..., i, j] = (np.asarray(f(a + e)) - np.asarray(f(a - e))) / (2 * eps)
    return J


@pytest.mark.parametrize("fn", [np.linalg.cholesky, np.linalg.eigvalsh, lambda a: np.linalg.eigh(a)[1]],
                         ids=["cholesky", "eigvalsh", "eigh vectors"])
def test_lower_triangle_is_read_and_upper_has_zero_derivative(fn):
    a = spd(_rng(), 4)
    J = jacc.jacobian(fn)(a)
    assert np.all(J[..., np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0.0)
    np.testing.assert_allclose(J, _sym_fd(fn, a), rtol=1e-6, atol=1e-7)


def test_uplo_u_reads_the_upper_triangle():
    a = _rng(1).normal(size=(3, 3))
    J = jacc.jacobian(lambda a: np.linalg.eigh(a, UPLO="U")[1])(a)
    assert np.all(J[..., np.tril_indices(3, -1)[0], np.tril_indices(3, -1)[1]] == 0.0)
    Jt = jacc.jacobian(lambda a: np.linalg.eigvalsh(a, "U"))(a)
    np.testing.assert_allclose(Jt, np.swapaxes(_sym_fd(lambda b: np.linalg.eigvalsh(b.T, "U"), a.T), -1, -2),
                               rtol=1e-6, atol=1e-7)


def test_eigenvector_projectors_match_finite_differences():
    """The outer products vₖvₖᵀ do not depend on the eigenvectors' signs."""
    a = spd(_rng(2), 4)

    def proj(a):
        w, v = np.linalg.eigh(a)
        return v[:, :, None] * v.T[None, :, :]  # P[:, k, :] = vₖ vₖᵀ

    np.testing.assert_allclose(jacc.jacobian(proj)(a), _sym_fd(proj, a), rtol=1e-6, atol=1e-7)


def test_eigh_returns_numpy_result_fields():
    seen = {}

    def f(a):
        r = np.linalg.eigh(a)
        seen["fields"] = r._fields
        return r.eigenvalues.sum() + r.eigenvectors[0, 0] * 0.0

    J = jacc.jacobian(f)(spd(_rng(), 3))
    assert seen["fields"] == ("eigenvalues", "eigenvectors")
    np.testing.assert_allclose(J, np.tril(np.eye(3)), atol=1e-12)  # d trace / dA read by the lower triangle


def test_cholesky_upper_is_the_transpose_read_from_the_upper_triangle():
    a = spd(_rng(3), 3)
    J = jacc.jacobian(lambda a: np.linalg.cholesky(a, upper=True))(a)
    want = np.transpose(jacc.jacobian(np.linalg.cholesky)(a.T), (1, 0, 3, 2))
    np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-14)


def test_cholesky_of_a_matrix_not_positive_definite_raises_on_calls_that_skip_f():
    """The scalar code's square root gave NaN blocks where NumPy raises."""
    assert_later_calls_raise(lambda x: np.linalg.cholesky(x.reshape(2, 2)).sum(), np.array([2.0, 1.0, 1.0, 3.0]),
                             np.array([1.0, 2.0, 2.0, 1.0]), np.linalg.LinAlgError, "not positive definite")


def _dependent_columns(x):
    bad = x.copy()
    bad[:, 2] = 2.0 * bad[:, 0]
    return bad


def _one_abscissa(x):
    bad = x.copy()
    bad[:, 0] = 1.0  # a Vandermonde matrix of rank 1
    return bad


@pytest.mark.parametrize("fn, spoil", [
    (np.linalg.pinv, _dependent_columns),
    (lambda x: np.linalg.lstsq(x, np.ones(4))[0], _dependent_columns),
    (lambda x: np.linalg.pinv(np.stack([x, 2.0 * x])), _dependent_columns),
    (lambda x: np.polyfit(x[:, 0], x[:, 1], 1), _one_abscissa),
], ids=["pinv", "lstsq", "stack", "polyfit"])
def test_a_rank_deficient_matrix_is_refused_on_calls_that_skip_f(fn, spoil):
    """The rank was checked at the traced point only: later calls at a rank-deficient matrix gave
    Jacobians of 1e30 from the QR route."""
    x = _rng(4).normal(size=(4, 3))
    np.testing.assert_allclose(jacc.jacobian(fn)(x), fd_jacobian(fn, [x], 0), atol=1e-6)
    assert_later_calls_raise(fn, x, spoil(x), jacc.UnsupportedOperationError, "rank-deficient")


CHOL_N = DENSE_PARTIAL_MAX + 2  # above the threshold: the derivative is a network of products


@pytest.mark.parametrize("fn, a", [
    (np.linalg.cholesky, spd(_rng(6), CHOL_N)),
    (lambda a: np.linalg.cholesky(a, upper=True), spd(_rng(7), CHOL_N)),
    (np.linalg.cholesky, spd(_rng(8), CHOL_N, (2,))),
], ids=["lower", "upper", "stack"])
def test_large_cholesky_network_equals_the_dense_partial(fn, a, monkeypatch):
    g = jacc.trace(fn, a)
    assert {"cholesky_value", "value_from"} <= {g.op(v) for v in g.nx} and "cholesky" not in {g.op(v) for v in g.nx}
    J = _quick(fn)(a)
    np.testing.assert_allclose(_quick(fn, retrace=False)(a), J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.evaluate({"a": a})[g.outputs[0]], fn(a), rtol=1e-15, atol=1e-15)  # not L/2
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    assert "cholesky" in {jacc.trace(fn, a).op(v) for v in jacc.trace(fn, a).nx}
    np.testing.assert_allclose(J, _quick(fn)(a), rtol=1e-10, atol=1e-12)


def test_large_cholesky_reads_the_lower_triangle_and_costs_n_cubed_per_adjoint():
    a, n = spd(_rng(9), CHOL_N), CHOL_N
    f = lambda a: np.sum(np.sin(np.linalg.cholesky(a)))  # noqa: E731
    J = _quick(f)(a)
    assert np.all(J[np.triu_indices(n, 1)] == 0.0)
    np.testing.assert_allclose(J, _sym_fd(f, a), rtol=1e-6, atol=1e-7)
    g = jacc.trace(f, a)
    p = jacc.plan(g, "reverse")
    assert p.mults == 3 * n**3 + 3 * n**2  # Lᵀ·L̄, then L⁻ᵀ·B̄·L⁻¹: no n⁴ partial
    assert accumulate(p.problem, g.evaluate({"a": a}), p.order).mults == p.mults


@pytest.mark.parametrize("uplo, batch", [("L", ()), ("U", ()), ("L", (2,))], ids=["lower", "upper", "stack"])
def test_large_eigenvectors_network_equals_the_dense_partial(uplo, batch, monkeypatch):
    r = _rng(10)
    a = spd(r, CHOL_N, batch) + 0.3 * r.normal(size=batch + (CHOL_N, CHOL_N))  # not symmetric: one triangle read
    f = lambda a: np.linalg.eigh(a, UPLO=uplo)[1] ** 2  # noqa: E731  (sign-free)
    g = jacc.trace(f, a)
    assert {"hold", "value_from"} <= {g.op(v) for v in g.nx}
    J = _quick(f)(a)
    np.testing.assert_allclose(_quick(f, retrace=False)(a), J, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(g.evaluate({"a": a})[g.outputs[0]], f(a))  # NumPy's vectors, not the network's
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    np.testing.assert_allclose(J, _quick(f)(a), rtol=1e-10, atol=1e-12)


def test_large_eigenvectors_cost_n_cubed_per_adjoint():
    a, n = spd(_rng(12), CHOL_N), CHOL_N
    f = lambda a: np.sum(np.linalg.eigh(a)[1][:, 0] ** 3)  # noqa: E731
    np.testing.assert_allclose(_quick(f)(a), _sym_fd(f, a), rtol=1e-6, atol=1e-7)
    g = jacc.trace(f, a)
    p = jacc.plan(g, "reverse")
    assert p.mults == 3 * n**3 + 3 * n**2  # Vᵀ·V̄, then V·(F ∘ ·)·Vᵀ: no n⁴ partial
    assert accumulate(p.problem, g.evaluate({"a": a}), p.order).mults == p.mults


_NOT_SYMMETRIC = spd(_rng(16), CHOL_N) + 0.3 * _rng(17).normal(size=(CHOL_N, CHOL_N))  # one triangle read


@pytest.mark.parametrize("f, a", [
    (lambda a: np.linalg.eigvalsh(a) ** 3, _NOT_SYMMETRIC),
    (lambda a: np.linalg.eigvalsh(a, UPLO="U") ** 3, _NOT_SYMMETRIC),
    (lambda a: np.linalg.eigh(a)[0] ** 2 + np.linalg.eigh(a)[1][0, 0] ** 2, _NOT_SYMMETRIC),
    (lambda a: np.linalg.eigvalsh(a) ** 2, spd(_rng(18), CHOL_N, (2,))),
    (lambda a: np.linalg.svd(a, compute_uv=False) ** 3, _rng(19).normal(size=(CHOL_N + 2, CHOL_N))),
    (lambda a: np.linalg.svd(a, full_matrices=False)[1] ** 2 + np.linalg.svd(a, full_matrices=False)[0][1, 0] ** 2,
     _rng(20).normal(size=(CHOL_N, CHOL_N + 1))),
    (lambda a: np.linalg.cond(a) + np.linalg.norm(a, 2) + np.linalg.norm(a, "nuc"), _rng(21).normal(size=(CHOL_N, CHOL_N))),
], ids=["eigvalsh", "eigvalsh U", "eigh values and a vector entry", "eigvalsh stack", "singular values",
        "svd values and a U entry", "cond and norms"])
def test_large_eigen_and_singular_values_network_equals_the_dense_partial(f, a, monkeypatch):
    """Eigenvalues' and singular values' partials above DENSE_PARTIAL_MAX are networks with the
    vectors held (eigvalsh at n = 120 was 8 ms a call against jax.jacrev's 1.1, found by a hunt);
    an int pick of a paired axis keeps a one-hot label (eigh()[1][0, 0] built a 4-d n⁴ array)."""
    g = jacc.trace(f, a)
    assert {"hold", "value_from"} <= {g.op(v) for v in g.nx}
    J = _quick(f)(a)
    np.testing.assert_allclose(_quick(f, retrace=False)(a), J, rtol=1e-12, atol=1e-14)
    # (the full decomposition's values: the vectors' own, within rounding of NumPy's values-only ones)
    np.testing.assert_allclose(g.evaluate({"a": a})[g.outputs[0]], f(a), rtol=1e-13)
    if a.ndim == 2 and a.shape[0] != a.shape[1]:
        np.testing.assert_allclose(J, fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-7)
    p = jacc.plan(jacc.trace(lambda a: np.sum(np.sin(f(a))), a), "reverse")
    assert accumulate(p.problem, p.problem.graph.evaluate({"a": a}), p.order).mults == p.mults
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    np.testing.assert_allclose(J, _quick(f)(a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(CHOL_N + 1, CHOL_N - 1), (CHOL_N - 1, CHOL_N + 1), (2, CHOL_N, CHOL_N), (12, 3)],
                         ids=["tall", "wide", "stack", "tall, k = 3"])
def test_large_singular_vectors_network_equals_the_dense_partial(shape, monkeypatch):
    a = _rng(13).normal(size=shape)
    f = lambda a: np.linalg.svd(a, full_matrices=False)[0] ** 2 + np.sum(np.linalg.svd(a, full_matrices=False)[2] ** 3)  # noqa: E731,E501
    g = jacc.trace(f, a)
    assert {"hold", "value_from"} <= {g.op(v) for v in g.nx}
    J = _quick(f)(a)
    np.testing.assert_allclose(_quick(f, retrace=False)(a), J, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(g.evaluate({"a": a})[g.outputs[0]], f(a))  # NumPy's vectors
    if len(shape) == 2:
        np.testing.assert_allclose(J, fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-7)
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    np.testing.assert_allclose(J, _quick(f)(a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(CHOL_N + 1, CHOL_N - 1), (CHOL_N, CHOL_N), (CHOL_N - 1, CHOL_N + 1),
                                   (2, CHOL_N, CHOL_N - 1), (12, 3)],
                         ids=["tall", "square", "wide", "stack", "tall, n = 3"])
def test_large_qr_network_equals_the_dense_partial(shape, monkeypatch):
    a = _rng(14).normal(size=shape)
    f = lambda a: np.linalg.qr(a)[0] ** 2 + np.sum(np.sin(np.linalg.qr(a)[1]))  # noqa: E731
    g = jacc.trace(f, a)
    assert {"hold", "inv_lower_value", "value_from"} <= {g.op(v) for v in g.nx}
    J = _quick(f)(a)
    np.testing.assert_allclose(_quick(f, retrace=False)(a), J, rtol=1e-12, atol=1e-14)
    if shape[-2] >= shape[-1]:  # (a wide matrix's R is assembled from its square block's)
        np.testing.assert_array_equal(g.evaluate({"a": a})[g.outputs[0]], f(a))  # NumPy's factors
    if len(shape) == 2:
        np.testing.assert_allclose(J, fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-7)
    r = _quick(lambda a: np.linalg.qr(a, mode="r"))(a)
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    assert "hold" not in {jacc.trace(f, a).op(v) for v in jacc.trace(f, a).nx}
    np.testing.assert_allclose(J, _quick(f)(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r, _quick(lambda a: np.linalg.qr(a, mode="r"))(a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("part", ["Q", "R"])
def test_large_qr_costs_m_n_squared_per_adjoint(part):
    m, n = CHOL_N + 1, CHOL_N - 1
    a = _rng(15).normal(size=(m, n))
    f = lambda a: np.sum(np.sin(np.linalg.qr(a)["QR".index(part)]))  # noqa: E731
    g = jacc.trace(f, a)
    p = jacc.plan(g, "reverse")
    # R̄·Rᵀ (n³) or Qᵀ·Q̄ (mn²), the two triangle masks (2n²), Q·X̄ and B̄·R⁻ᵀ (2mn²): no m²n² partial
    assert p.mults == (n**3 if part == "R" else m * n * n) + 2 * n * n + 2 * m * n * n
    assert accumulate(p.problem, g.evaluate({"a": a}), p.order).mults == p.mults


_NETWORKS = {
    "cholesky": lambda a: np.sum(np.sin(np.linalg.cholesky(a @ a.T + np.eye(len(a))))),
    "eigh": lambda a: np.sum(np.linalg.eigh(a @ a.T)[1][:, -1] ** 2 * np.arange(len(a))),
    "svd": lambda a: np.sum(np.linalg.svd(a)[0][:, 0] ** 2 * np.arange(len(a))) + np.sum(np.linalg.svd(a)[2][0] ** 3),
    "qr": lambda a: np.sum(np.linalg.qr(a)[0][:, 0] ** 3) + np.sum(np.sin(np.linalg.qr(a)[1])),
}


@pytest.mark.parametrize("kind", sorted(_NETWORKS))
def test_a_trace_skips_the_values_of_a_derivative_network(kind, monkeypatch):
    from jacc.trace import record_call

    f, a = _NETWORKS[kind], _rng(16).normal(size=(CHOL_N, CHOL_N))
    tape = record_call(f, (a,), {}, 0)
    g = tape.graph
    skipped = [v for v in g.nx if not any(tape.values[v].strides) and np.isnan(tape.values[v]).all()]
    assert len(skipped) >= 3 and all(g.op(v) not in ("hold", "value_from") for v in skipped)
    np.testing.assert_array_equal(tape.values[g.outputs[0]], f(a))  # the value is NumPy's all the same
    jf = _quick(f)
    jf(a)
    b = a + 0.01 * _rng(17).normal(size=a.shape)
    J = jf(b)  # a replayed trace skips them too
    assert np.all(np.isfinite(J))
    np.testing.assert_allclose(J, _quick(f, retrace=False)(b), rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(linalg, "DENSE_PARTIAL_MAX", 10**6)
    np.testing.assert_allclose(J, _quick(f)(b), rtol=1e-9, atol=1e-11)


def test_a_derivative_network_must_be_linear_in_its_values():
    from jacc.trace import Tape, TraceError

    tape = Tape("t")
    x = tape.input("x", np.ones((3, 3)))
    with tape.derivative_network(x):
        y = 2.0 * (x @ np.eye(3)) + x.T  # sums and products with one network value: skipped
        assert np.isnan(y.value).all()
        with pytest.raises(TraceError, match="linear"):
            x * y
        with pytest.raises(TraceError, match="linear"):
            np.sin(y)
        with pytest.raises(TraceError, match="linear"):
            np.eye(3) / x
    assert np.all(np.sin(x).value == np.sin(1.0))  # outside: values as ever


def test_singular_values_with_vectors_come_from_the_same_decomposition(monkeypatch):
    """svd(X)[1] is NumPy's value bit for bit, and a function of U, s and Vh decomposes X once per
    call (the values-only call, compute_uv=False, is a second LAPACK run otherwise)."""
    X = _rng(18).normal(size=(CHOL_N, CHOL_N))
    g = jacc.trace(lambda X: np.linalg.svd(X)[1], X)
    np.testing.assert_array_equal(g.evaluate({"X": X})[g.outputs[0]], np.linalg.svd(X)[1])
    f = lambda X: np.sum(np.linalg.svd(X)[0][:, 0] ** 2 * np.linalg.svd(X)[1])  # noqa: E731
    calls = []
    svd = np.linalg.svd
    for retrace in (True, False):
        jf = jacc.jacobian(f, retrace=retrace)
        J = jf(X)  # (lowered with NumPy's svd, which the program swaps for the shared one)
        monkeypatch.setattr(np.linalg, "svd", lambda a, **k: (type(a) is np.ndarray and calls.append(  # (f's own
            k.get("compute_uv", True))) or svd(a, **k))  # traced calls pass through here too: not counted)
        calls.clear()
        np.testing.assert_array_equal(jf(X), J)
        assert calls == [True], (retrace, calls)
        monkeypatch.undo()


def test_least_squares_and_pinv_keep_numpys_accuracy_on_ill_conditioned_matrices():
    """Through QR, not the normal equations (AᵀA)⁻¹Aᵀ, which square the condition number: at
    cond 10⁷ they were wrong in the fourth digit (value and Jacobian), at 10⁹ in the first."""
    r = _rng(19)
    m, n = 30, 6
    U, V = np.linalg.qr(r.normal(size=(m, n)))[0], np.linalg.qr(r.normal(size=(n, n)))[0]
    b = r.normal(size=m)
    for cond in (1e7, 1e9):
        A = U @ np.diag(np.logspace(0, -np.log10(cond), n)) @ V.T
        for f, a, want in ((lambda A: np.linalg.lstsq(A, b, rcond=None)[0], A, np.linalg.lstsq(A, b, rcond=None)[0]),
                           (np.linalg.pinv, A, np.linalg.pinv(A)), (np.linalg.pinv, A.T.copy(), np.linalg.pinv(A.T))):
            g = jacc.trace(f, a)
            got = g.evaluate({g.inputs[0]: a})[g.outputs[0]]
            assert np.abs(got - want).max() <= 1e3 * cond * np.finfo(float).eps * np.abs(want).max()
    A = U @ np.diag(np.logspace(0, -7, n)) @ V.T
    P = np.linalg.pinv(A)
    x = P @ b
    want = -np.einsum("ki,j->kij", P, x) + np.einsum("kj,i->kij", P @ P.T, b - A @ x)  # ∂x/∂A, full column rank
    J = jacc.jacobian(lambda A: np.linalg.lstsq(A, b, rcond=None)[0])(A)
    np.testing.assert_allclose(J, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_det_at_a_singular_matrix_is_the_adjugate():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2
    J = jacc.jacobian(np.linalg.det)(a)
    assert np.all(np.isfinite(J)) and np.abs(J).max() > 1.0
    np.testing.assert_allclose(J, fd_jacobian(np.linalg.det, [a], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn,shape", [
    (np.linalg.inv, (3, 2, 2)), (np.linalg.det, (3, 2, 2)), (lambda a: np.linalg.slogdet(a)[1], (3, 2, 2)),
    (np.linalg.cholesky, (2, 3, 3)), (np.linalg.eigvalsh, (2, 3, 3)), (lambda a: np.linalg.qr(a)[1], (2, 4, 3)),
    (lambda a: np.linalg.svd(a, compute_uv=False), (2, 4, 3)),
])
def test_stacks_keep_the_batch_axes_diagonal(fn, shape):
    r = _rng(4)
    a = spd(r, shape[-1], shape[:1]) if shape[-1] == shape[-2] else r.normal(size=shape)
    g = jacc.trace(fn, a)
    d = g.partial("a", g.outputs[0]).describe()
    assert d.startswith(f"diag{shape[0]} ⊗ dense"), d
    # and each block is the single-matrix Jacobian
    J = jacc.jacobian(fn)(a)
    J0 = jacc.jacobian(fn)(a[0])
    np.testing.assert_allclose(J[0][..., 0, :, :], J0, rtol=1e-12, atol=1e-14)
    assert np.all(J[0][..., 1, :, :] == 0.0)


def test_batched_inverse_mults_are_block_diagonal_and_factored():
    """Pricing sees B blocks, not one (Bn²)×(Bn²) dense matrix, and each block's partial as the
    two factors −A⁻¹ ⊗ A⁻ᵀ: the product of two of them contracts k and l first (2·n³ per block)
    and forms the n⁴ result once, not the n⁶ of multiplied-out blocks."""
    a = spd(_rng(), 3, (5,))
    g = jacc.trace(lambda a: np.linalg.inv(np.linalg.inv(a)), a)
    p = jacc.plan(g, "forward")
    assert p.mults == 5 * (2 * 3 ** 3 + 3 ** 4) < 5 * 9 ** 3
    acc = accumulate(p.problem, g.evaluate({"a": a}), p.order)
    assert acc.mults == p.mults
    np.testing.assert_allclose(acc.blocks[g.outputs[0], "a"], np.eye(45).reshape(5, 3, 3, 5, 3, 3), atol=1e-10)


def test_eigh_graph_file_round_trips_uplo(tmp_path):
    a = _rng(5).normal(size=(3, 3))
    g = jacc.trace(lambda a: np.linalg.eigh(a, UPLO="U")[1], a)
    g.save(tmp_path / "g.json")
    h = jacc.load(tmp_path / "g.json")
    ops = {h.op(v): h.nx.nodes[v]["params"] for v in h.nx.nodes if v not in h.inputs}
    assert ops["eigh_vectors"] == {"uplo": "U"}
    out = h.evaluate({"a": a})[h.outputs[0]]
    np.testing.assert_array_equal(out, np.linalg.eigh(a, UPLO="U")[1])


def test_lstsq_returns_numpy_rank_and_singular_values():
    r = _rng(6)
    a, b = r.normal(size=(5, 3)), r.normal(size=5)
    seen = {}

    def f(a, b):
        x, res, rank, s = np.linalg.lstsq(a, b)
        seen["rank"], seen["s"] = rank, s.value
        return x

    jacc.jacobian(f, argnums=(0, 1))(a, b)
    _, _, rank, s = np.linalg.lstsq(a, b)
    assert seen["rank"] == rank == 3
    np.testing.assert_allclose(seen["s"], s, rtol=1e-12)


def test_pinv_of_a_constant_solves_a_traced_right_hand_side():
    r = _rng(7)
    a, b = r.normal(size=(5, 3)), r.normal(size=5)
    J = jacc.jacobian(lambda b: np.linalg.lstsq(a, b)[0])(b)
    np.testing.assert_allclose(J, np.linalg.pinv(a), rtol=1e-10, atol=1e-12)


# -- refusals: each names the function, the reason and the caller's line -------------------------


@pytest.mark.parametrize("fn,arg,message", [
    (lambda x: np.linalg.norm(x, ord=0), np.ones(3), r"numpy\.linalg\.norm with ord=0 at .*non-zero entries"),
    (lambda a: np.linalg.qr(a, mode="raw"), np.ones((3, 2)), r"numpy\.linalg\.qr with mode='raw' at "),
    (lambda a: np.linalg.qr(a, mode="complete"), np.eye(3)[:, :2] + 1.0,
     r"mode='complete' of a 3×2 matrix at .*not unique"),
    (np.linalg.svd, np.eye(3)[:, :2] + 1.0, r"full_matrices=True of a 3×2 matrix at .*full_matrices=False"),
    (lambda a: np.linalg.svd(a, hermitian=True), np.eye(2), r"hermitian=True at "),
    (np.linalg.pinv, np.ones((3, 2)), r"numpy\.linalg\.pinv at .*rank-deficient"),
    (lambda a: np.linalg.pinv(a, hermitian=True), np.eye(2), r"pinv with hermitian=True at "),
    (lambda a: np.linalg.lstsq(a, np.ones(3)), np.ones((3, 2)), r"lstsq at .*rank-deficient"),
    (np.linalg.eig, np.array([[0.0, 1.0], [-1.0, 0.0]]), r"numpy\.linalg\.eig at .*complex eigenvalues at the traced point"),
    (np.linalg.eigvals, np.array([[1.0, -2.0], [3.0, 1.0]]), r"numpy\.linalg\.eigvals at .*complex.*eigh"),
])
def test_refusals_name_function_and_call_site(fn, arg, message):
    with pytest.raises(jacc.UnsupportedOperationError, match=message) as e:
        jacc.trace(fn, arg)
    assert HERE in str(e.value)


@pytest.mark.parametrize("fn,arg,message", [
    (lambda x: np.linalg.norm(x, ord=1), np.ones((2, 2, 2)), r"ord=1 needs a vector or a matrix"),
    (lambda x: np.linalg.norm(x, ord="fro", axis=0), np.ones((2, 2)), r"'fro' is a matrix norm"),
    (lambda x: np.linalg.norm(x, ord=3, axis=(0, 1)), np.ones((2, 2)), r"invalid norm order 3 for matrices"),
    (lambda x: np.linalg.norm(x, axis=(0, 0)), np.ones((2, 2)), r"axis must name one or two distinct axes"),
    (lambda a: np.linalg.eigh(a, UPLO="X"), np.eye(2), r"UPLO must be 'L' or 'U'"),
    (np.linalg.cholesky, np.ones((2, 3)), r"cholesky.*square"),
    (np.linalg.svd, np.ones(3), r"numpy\.linalg\.svd needs a matrix"),
    (lambda a: np.linalg.tensorinv(a, ind=1), np.ones((2, 3)), r"tensorinv at .*ind=1 does not split"),
])
def test_bad_arguments_name_function_and_call_site(fn, arg, message):
    with pytest.raises(jacc.TraceError, match=message) as e:
        jacc.trace(fn, arg)
    assert HERE in str(e.value)


def test_matrix_rank_is_read_at_the_traced_point():
    """The rank is piecewise constant: read as argmax is (its derivative 0), and a Jacobian whose
    code depends on it follows the rank from call to call."""
    assert "matrix_rank" in jacc.supported_functions()
    a = np.array([[2.0, 0.3, 0.1], [0.3, 1.5, 0.2], [0.1, 0.2, 1.2]])
    np.testing.assert_array_equal(jacc.jacobian(lambda m: np.linalg.matrix_rank(m) * m)(a).reshape(9, 9),
                                  3.0 * np.eye(9))
    jf = jacc.jacobian(lambda m: m[:, :np.linalg.matrix_rank(m)].sum())
    low = np.array([[1.0, 2.0], [2.0, 4.0]])
    for m, want in ((low, [[1.0, 0.0], [1.0, 0.0]]), (np.eye(2), np.ones((2, 2))), (low, [[1.0, 0.0], [1.0, 0.0]])):
        np.testing.assert_array_equal(jf(m), want)
    tol = jacc.jacobian(lambda m: np.linalg.matrix_rank(m, tol=0.5 * m[1, 1]) * m[0, 0])
    np.testing.assert_array_equal(tol(np.diag([1.0, 3.0])), [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(tol(np.diag([1.0, 1.5])), [[2.0, 0.0], [0.0, 0.0]])


def test_repeated_eigenvalues_refuse_eigenvector_jacobians_not_give_wrong_ones():
    """Distinct eigenvalues are assumed: at a repeated one the eigenvectors are not differentiable,
    and the Jacobian is refused (NaN with nonfinite="propagate") while the eigenvalues' stays
    finite where they are simple."""
    a = np.diag([1.0, 1.0, 3.0])
    with pytest.raises(jacc.UnsupportedOperationError, match="repeated eigenvalue"):
        jacc.jacobian(lambda a: np.linalg.eigh(a)[1])(a)
    assert not np.all(np.isfinite(jacc.jacobian(lambda a: np.linalg.eigh(a)[1], nonfinite="propagate")(a)))
    Jw = jacc.jacobian(np.linalg.eigvalsh)(a)
    np.testing.assert_allclose(Jw[2], np.diag([0.0, 0.0, 1.0]), atol=1e-12)


def test_eig_of_a_general_matrix_at_a_repeated_eigenvalue_refuses_its_eigenvectors_as_eigh_does():
    """Hunt CH: np.linalg.eig's eigenvectors at a repeated (non-defective) eigenvalue gave a Jacobian
    with 54 NaN and inf entries and no error, at the first call and at a later compiled one; eig's
    eigenvalues are in NumPy's order, not sorted, so the tie is looked for among all of them."""
    R = np.diag([2.0, 5.0, 2.0]) + np.array([[0, 1.0, 0], [0, 0, 0], [0, 1.0, 0]])
    A = np.array([[4.0, 1.0, 0.5], [0.2, 2.0, 0.3], [0.1, 0.4, -1.0]])
    f = lambda M: np.linalg.eig(M)[1] ** 2  # noqa: E731
    for backend in ("auto", "interpret"):
        with pytest.raises(jacc.UnsupportedOperationError, match="repeated eigenvalue"):
            jacc.jacobian(f, backend=backend)(R)
        jf = jacc.jacobian(f, backend=backend)
        np.testing.assert_allclose(jf(A), fd_jacobian(f, [A], 0), rtol=1e-6, atol=1e-7)
        with pytest.raises(jacc.UnsupportedOperationError, match="repeated eigenvalue"):
            jf(R)
    # the eigenvalues' sum (the trace) keeps its derivative there
    np.testing.assert_allclose(jacc.jacobian(lambda M: np.linalg.eigvals(M).sum())(R), np.eye(3), atol=1e-12)
    # a tie that rounding splits (by 3e-16 here) is one too: its partial was 1/(rounding), finite (hunt CL)
    S = np.random.default_rng(3).normal(size=(4, 4))
    split = S @ np.diag([1.0, 1.0, 2.0, 3.0]) @ np.linalg.inv(S)
    for backend in ("auto", "interpret"):
        with pytest.raises(jacc.UnsupportedOperationError, match="repeated eigenvalue"):
            jacc.jacobian(f, backend=backend)(split)


def test_repeated_singular_values_refuse_singular_vector_jacobians_as_eigh_does():
    """Hunt BJ: svd's vectors at a repeated singular value gave NaN and inf silently, where eigh's
    refuse; later calls that skip f and meet one refuse too. The values alone stay differentiable,
    and above DENSE_PARTIAL_MAX (a network: finite where rounding split the tie) the trace warns."""
    a = np.diag([2.0, 2.0, 1.0])
    with pytest.raises(jacc.UnsupportedOperationError, match="repeated singular value"):
        jacc.jacobian(lambda a: np.abs(np.linalg.svd(a)[0]))(a)
    np.testing.assert_allclose(jacc.jacobian(lambda a: np.linalg.svd(a)[1])(a)[2], np.diag([0.0, 0.0, 1.0]))
    q, _ = np.linalg.qr(_rng(7).normal(size=(3, 3)))
    for retrace in (True, False):
        jf = jacc.jacobian(lambda a: np.linalg.svd(a)[0] ** 2, retrace=retrace)
        for d in ([3.0, 2.0, 1.0], [3.5, 2.0, 1.0], [3.0, 2.5, 1.0]):
            jf(q @ np.diag(d) @ q.T)
        with pytest.raises(jacc.UnsupportedOperationError, match="repeated singular value"):
            jf(q @ np.diag([2.0, 2.0, 1.0]) @ q.T)
    n = DENSE_PARTIAL_MAX + 2
    q, _ = np.linalg.qr(_rng(8).normal(size=(n, n)))
    with pytest.warns(jacc.TieWarning, match="repeated singular value"):
        jacc.jacobian(lambda a: np.linalg.svd(a)[0] ** 2, nonfinite="propagate")(
            q @ np.diag([3.0, 3.0] + list(range(4, n + 2))) @ q.T)


@pytest.mark.parametrize("n", [3, DENSE_PARTIAL_MAX + 2])
def test_square_svd_vectors_at_a_zero_singular_value_have_their_derivative(n):
    """U and V of a square matrix are complete, so I − UUᵀ is 0; its rounding times 1/s at a
    (near-)zero singular value gave NaN, or a finite Jacobian 1.5 off (hunt BL). A simple zero
    singular value leaves the vectors differentiable."""
    q, _ = np.linalg.qr(_rng(9).normal(size=(n, n)))
    r, _ = np.linalg.qr(_rng(10).normal(size=(n, n)))
    for a in (q @ np.diag(np.arange(n, 0.0, -1.0) - 1) @ r.T, np.diag(np.arange(n, 0.0, -1.0) - 1)):
        for part in (0, 2):
            f = lambda a, part=part: np.abs(np.linalg.svd(a)[part])  # noqa: E731 (signs are NumPy's)
            np.testing.assert_allclose(jacc.jacobian(f)(a), fd_jacobian(f, [a], 0), atol=1e-6)


def _top_eigenvector(a):
    return np.linalg.eigh(a)[1][:, -1] ** 2  # (squared: free of its sign)


def _through_all_eigenvectors(a):  # U Λ Uᵀ: no function of the basis, but differentiated through it
    w, v = np.linalg.eigh(a)
    return (v * w) @ v.T


def test_an_eigenvalue_repeated_in_floating_point_is_one_repeated_eigenvalue():
    """I + 0.3·ones has eigenvalues 1.9, 1, 1; computed, the two 1s differ by rounding, and
    1/(their difference) made finite nonsense of every Jacobian through the eigenvectors
    (scipy.stats.multivariate_normal.logpdf in cov: 2.50 where the derivative is 1.91). An
    eigenvector of a simple eigenvalue keeps its derivative."""
    q, _ = np.linalg.qr(_rng(5).normal(size=(3, 3)))
    for a in (np.eye(3) + 0.3 * np.ones((3, 3)), q @ np.diag([1.0, 1.0, 5.0]) @ q.T):
        for retrace in (True, False):
            jf = jacc.jacobian(_through_all_eigenvectors, retrace=retrace)
            jf(np.diag([1.0, 2.0, 3.0]))  # (distinct: a later call that skips f meets the tie)
            jf(np.diag([1.0, 2.5, 3.0]))
            with pytest.raises(jacc.UnsupportedOperationError, match="repeated eigenvalue"):
                jf(a)
        a = (a + a.T) / 2
        np.testing.assert_allclose(jacc.jacobian(_top_eigenvector)(a), _sym_fd(_top_eigenvector, a), atol=1e-6)


def test_a_large_matrix_with_an_eigenvalue_repeated_in_floating_point_warns():
    """Above DENSE_PARTIAL_MAX the eigenvectors' partial is a network whose sum meets 1/(rounding
    between the equal eigenvalues): finite, so no refusal, and wrong for a function through the
    eigenvectors of that space (here by 10 %); the trace warns, naming the line, and an eigenvector
    of a simple eigenvalue keeps its derivative."""
    n = DENSE_PARTIAL_MAX + 2
    q, _ = np.linalg.qr(_rng(6).normal(size=(n, n)))
    a = q @ np.diag([1.0, 1.0, 1.0] + list(range(2, n - 1))) @ q.T
    a = (a + a.T) / 2
    with pytest.warns(jacc.TieWarning, match="repeated eigenvalue"):
        jacc.jacobian(_through_all_eigenvectors)(a)
    with pytest.warns(jacc.TieWarning):
        J = jacc.jacobian(_top_eigenvector)(a)
    np.testing.assert_allclose(J, _sym_fd(_top_eigenvector, a), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jacc.jacobian(_through_all_eigenvectors)(q @ np.diag(np.arange(1.0, n + 1)) @ q.T)


def test_spectral_norm_reads_the_largest_singular_value_through_a_free_selection():
    x = _rng(8).normal(size=(4, 3))
    g = jacc.trace(lambda x: np.linalg.norm(x, 2), x)
    # s[..., 0]: NumPy's 0-d view of s, recorded as the one-element slice, then a reshape (jacc.trace)
    assert [g.op(v) for v in g.topological_order() if v not in g.inputs] == ["svd_values", "getitem", "reshape"]
    [o] = g.outputs
    [t] = list(g.nx.predecessors(o))
    [s] = list(g.nx.predecessors(t))
    assert g.partial(s, t).describe().startswith("select")
    u, _, vh = np.linalg.svd(x)
    np.testing.assert_allclose(jacc.jacobian(lambda x: np.linalg.norm(x, 2))(x), np.outer(u[:, 0], vh[0]),
                               rtol=1e-12, atol=1e-14)


def test_eig_of_a_matrix_with_a_real_spectrum_matches_jax_and_finite_differences():
    """NumPy returns real eigenvalues and vectors where the spectrum is real: they trace, with
    dλₖ = (V⁻¹ dA V)ₖₖ and unit vectors; a trace is only valid at its point (value-dependent)."""
    r = np.random.default_rng(4)
    s = r.normal(size=(4, 4)) + 2 * np.eye(4)
    a = s @ np.diag([1.0, 2.5, 4.0, 7.0]) @ np.linalg.inv(s)  # not symmetric
    J = jacc.jacobian(np.linalg.eigvals)(a)
    w, v = np.linalg.eig(a)
    np.testing.assert_allclose(J, np.einsum("ki,jk->kij", np.linalg.inv(v), v), rtol=1e-12, atol=1e-13)
    f = lambda a: np.linalg.eig(a)[1]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(a), fd_jacobian(f, [a], 0), atol=1e-7)
    assert jacc.trace(f, a).meta["value_dependent"]


def test_uplo_in_lower_case_reads_the_triangle_it_names_as_numpy():
    """NumPy upper-cases UPLO; 'u' was refused."""
    a = _rng(3).normal(size=(3, 3))  # not symmetric: which triangle is read shows in the Jacobian
    for fn in (np.linalg.eigvalsh, lambda a, UPLO: np.linalg.eigh(a, UPLO=UPLO)[0]):
        np.testing.assert_array_equal(jacc.jacobian(lambda a: fn(a, UPLO="u"))(a),
                                      jacc.jacobian(lambda a: fn(a, UPLO="U"))(a))
        assert np.all(jacc.jacobian(lambda a: fn(a, UPLO="u"))(a)[:, 1, 0] == 0.0)


def test_det_of_a_matrix_with_nan_propagates_nan_under_propagate():
    # the adjugate fell back to the SVD, which raised LinAlgError where NumPy's det gives NaN
    a = np.array([[2.0, 1.0], [1.0, np.nan]])
    for backend in ("numpy", "interpret"):  # (NaN at least where a's NaN enters: the scalar route's cofactors)
        assert np.isnan(jacc.jacobian(np.linalg.det, backend=backend, nonfinite="propagate")(a)[0, 0])
    J = jacc.jacobian(np.linalg.det, nonfinite="propagate")(np.stack([a, 2.0 * np.eye(2)]))
    assert np.isnan(J[0, 0, 0, 0])
    np.testing.assert_allclose(J[1, 1], 2.0 * np.eye(2), rtol=1e-14)
    np.testing.assert_array_equal(J[1, 0], 0.0)
