"""scipy.linalg of traced arrays (jacc.numpy_api.scipy_linalg): values equal SciPy's, Jacobians
equal central differences of SciPy itself (so SciPy's conventions — which triangle is read, the
upper Cholesky factor, QR's modes — are kept), the module is restored after every trace, and
what is not recorded is refused by name."""

import threading

import numpy as np
import pytest
from conftest import assert_later_calls_raise, fd_jacobian

import jacc

sl = pytest.importorskip("scipy.linalg")

R = np.random.default_rng(11)
_M = R.normal(size=(4, 4))
A = _M @ _M.T / 4 + np.eye(4) + 0.3 * np.triu(R.normal(size=(4, 4)), 1)  # not symmetric: a triangle matters
S = A + A.T
B = R.normal(size=4)
T = R.normal(size=(5, 3))
G = np.array([[0.5, 2.0, -1.0, 0.3], [3.0, -0.2, 0.7, 1.0], [-1.0, 0.4, 0.2, 2.5], [0.1, 1.5, 2.0, -0.6]])  # pivots

CASES = [
    ("solve", lambda a: sl.solve(a, B), A),
    ("solve, several right-hand sides", lambda a: sl.solve(a, np.stack([B, 2 * B], axis=1)), A),
    ("solve transposed", lambda a: sl.solve(a, B, transposed=True), A),
    ("solve pos (upper triangle)", lambda a: sl.solve(a, B, assume_a="pos"), A),
    ("solve sym, lower", lambda a: sl.solve(a, B, assume_a="sym", lower=True), A),
    ("solve diagonal", lambda a: sl.solve(a, B, assume_a="diagonal"), A),
    ("cholesky (upper)", lambda a: sl.cholesky(a), A),
    ("cholesky lower", lambda a: sl.cholesky(a, lower=True), A),
    ("cho_factor + cho_solve", lambda a: sl.cho_solve(sl.cho_factor(a), B), A),
    ("cho_factor lower + cho_solve", lambda a: sl.cho_solve(sl.cho_factor(a, lower=True), B), A),
    ("solve_triangular", lambda a: sl.solve_triangular(a, B, lower=True), A),
    ("solve_triangular trans unit", lambda a: sl.solve_triangular(a, B, trans="T", unit_diagonal=True), A),
    ("inv", lambda a: sl.inv(a), A),
    ("inv pos", lambda a: sl.inv(a, assume_a="pos"), A),
    ("det", lambda a: sl.det(a), A),
    ("eigh values", lambda a: sl.eigh(a, eigvals_only=True), S),
    ("eigh, upper, subset", lambda a: sl.eigh(a, lower=False, subset_by_index=(1, 2))[0], A),
    ("eigvalsh", lambda a: sl.eigvalsh(a), S),
    ("qr full (Q of a square matrix)", lambda a: sl.qr(a)[0], A),
    ("qr full (R of a wide matrix)", lambda a: sl.qr(a)[1], T.T.copy()),
    ("qr economic (Q)", lambda a: sl.qr(a, mode="economic")[0], T),
    ("qr r", lambda a: sl.qr(a, mode="r")[0], T),
    ("rq full, square (R, then Q)", lambda a: np.concatenate(sl.rq(a)), A),
    ("rq full, tall (Q)", lambda a: sl.rq(a)[1], T),
    ("rq full, tall (R)", lambda a: sl.rq(a)[0], T),
    ("rq economic, wide (R)", lambda a: sl.rq(a, mode="economic")[0], T.T.copy()),
    ("rq economic, wide (Q)", lambda a: sl.rq(a, mode="economic")[1], T.T.copy()),
    ("rq r, wide (zeros left of the triangle)", lambda a: sl.rq(a, mode="r"), T.T.copy()),
    ("rq r, tall", lambda a: sl.rq(a, mode="r"), T),
    ("orth, tall", lambda a: sl.orth(a), T),
    ("orth, wide", lambda a: sl.orth(a), T.T.copy()),
    ("orth, square", lambda a: sl.orth(a), A),
    ("null_space, one vector", lambda a: sl.null_space(a[:4, :3].T), T),
    ("null_space, none (tall)", lambda a: sl.null_space(a).sum() + a[0, 0], T),
    ("pinvh", lambda a: sl.pinvh(a @ a.T + np.eye(4)), A),
    ("pinvh, upper triangle and rank", lambda a: sl.pinvh(a + 5.0 * np.eye(4), lower=False, return_rank=True)[0], A),
    ("svd values", lambda a: sl.svd(a, compute_uv=False), T),
    ("svdvals", lambda a: sl.svdvals(a), T),
    ("norm", lambda a: sl.norm(a, 2), T),
    ("lstsq", lambda a: sl.lstsq(a, np.ones(5))[0], T),
    ("pinv", lambda a: sl.pinv(a), T),
    ("expm", lambda a: sl.expm(a), A),
    ("expm, scaled and squared", lambda a: sl.expm(3.0 * a), A),
    ("toeplitz", lambda a: sl.toeplitz(a[0], a[1, :3]), A),
    ("block_diag", lambda a: sl.block_diag(a[:2], 2.0, a[2, :2]), A),
    ("solve_sylvester", lambda a: sl.solve_sylvester(a, a[:2, :2].T, a[:, :2]), A),
    ("solve_continuous_lyapunov", lambda a: sl.solve_continuous_lyapunov(-a, S), A),
    ("solve_discrete_lyapunov", lambda a: sl.solve_discrete_lyapunov(0.2 * a, a + a.T), A),
    ("sqrtm", lambda a: sl.sqrtm(a), A),
    ("lu_factor (the packed factors)", lambda a: sl.lu_factor(a)[0], G),
    ("lu_factor + lu_solve", lambda a: sl.lu_solve(sl.lu_factor(a), B), G),
    ("lu_factor + lu_solve transposed", lambda a: sl.lu_solve(sl.lu_factor(a), np.stack([B, B**2], 1), trans=1), G),
    ("lu_solve of changed factors", lambda a: sl.lu_solve((sl.lu_factor(a)[0] * 2.0, sl.lu_factor(a)[1]), B), G),
    ("lu_solve of changed factors, trans", lambda a: sl.lu_solve((sl.lu_factor(a)[0] + 0.0, sl.lu_factor(a)[1]), B,
                                                                 trans=2), G),
    ("lu_solve, traced right-hand side", lambda a: sl.lu_solve(sl.lu_factor(G), a), G),
    ("lu: p, l, u", lambda a: np.stack(sl.lu(a)), G),
    ("lu: permute_l", lambda a: sl.lu(a, permute_l=True)[0], G),
    ("polar (U, then P)", lambda a: np.concatenate(sl.polar(a)), T),
    ("polar, side='left'", lambda a: sl.polar(a, side="left")[1], T.T.copy()),
    ("lu: p_indices", lambda a: sl.lu(a, p_indices=True)[1][sl.lu(a, p_indices=True)[0]], G),
    ("cosm", lambda a: sl.cosm(a), A),
    ("sinm", lambda a: sl.sinm(a), 2.0 * A),
    ("tanm", lambda a: sl.tanm(0.5 * a), A),
    ("coshm", lambda a: sl.coshm(a), A),
    ("sinhm", lambda a: sl.sinhm(a), A),
    ("tanhm", lambda a: sl.tanhm(a), A),
    ("expm_frechet, w.r.t. A", lambda a: np.stack(sl.expm_frechet(a, S)), A),
    ("expm_frechet, w.r.t. E", lambda a: sl.expm_frechet(A, a, compute_expm=False), G),
    ("logm", lambda a: sl.logm(a), A),
    ("logm, not diagonalizable by a real basis", lambda a: sl.logm(a), np.array([[1.0, 2.0], [-2.0, 1.0]])),
    ("fractional_matrix_power", lambda a: sl.fractional_matrix_power(a, 0.37), A),
    ("fractional_matrix_power, integer", lambda a: sl.fractional_matrix_power(a, -2), A),
    ("solve_banded", lambda a: sl.solve_banded((1, 2), a + 4.0 * (np.arange(4) == 2)[:, None], B), A),
    ("solve_banded, matrix right-hand side", lambda a: sl.solve_banded((2, 0), a[:3] + 5.0 * (np.arange(3) == 0)[:, None],
                                                                       a[:, 1:]), A),
    ("solveh_banded (upper form)", lambda a: sl.solveh_banded(np.stack([a[0], 4.0 + a[1] ** 2]), B), A),
    ("solveh_banded lower", lambda a: sl.solveh_banded(np.stack([4.0 + a[1] ** 2, a[0], a[2]]), B, lower=True), A),
    ("solve_toeplitz", lambda a: sl.solve_toeplitz((a[0] + 4.0 * (np.arange(4) == 0), a[1]), a[2]), A),
    ("solve_toeplitz, symmetric", lambda a: sl.solve_toeplitz(a[0] + 4.0 * (np.arange(4) == 0), B), A),
    ("matmul_toeplitz", lambda a: sl.matmul_toeplitz((a[0], a[1]), a[2:].T), A),
]


@pytest.mark.parametrize("name, f, a", CASES, ids=[c[0] for c in CASES])
def test_values_and_jacobians_are_scipys(name, f, a):
    g = jacc.trace(f, a)
    np.testing.assert_allclose(g.evaluate({"a": a})[g.outputs[0]], f(a), rtol=1e-12, atol=1e-13)
    want = fd_jacobian(f, [a], 0)
    got = jacc.jacobian(f, time_limit=0.1)(a)  # (auto in a tenth of its second: a short suite)
    np.testing.assert_allclose(got, want, atol=2e-8 * max(1.0, np.abs(want).max()))


def test_the_module_is_restored_and_constant_calls_go_to_scipy():
    original = sl.solve

    def f(a):
        c = sl.solve(S, B)  # constants only: SciPy's own function, inside the trace
        assert isinstance(c, np.ndarray)
        return sl.solve(a, c)

    J = jacc.jacobian(f)(A)
    assert sl.solve is original
    np.testing.assert_allclose(J, fd_jacobian(f, [A], 0), atol=1e-8)


def test_other_threads_get_scipys_results_while_a_trace_runs():
    seen = []

    def f(a):
        t = threading.Thread(target=lambda: seen.append(sl.solve(S, B)))
        t.start()
        t.join()
        return sl.solve(a, B)

    jacc.jacobian(f)(A)
    np.testing.assert_array_equal(seen[0], sl.solve(S, B))


@pytest.mark.parametrize("f, words", [
    (lambda a: sl.lu_factor(np.concatenate([a, a])), "lu_factor.*square matrices.*\\(8, 4\\)"),
    (lambda a: sl.lu_factor(a - a), "lu_factor.*singular"),
    (lambda a: sl.lu_solve((a, np.arange(4) + 0 * a[0]), B), "lu_solve.*pivots"),
    (lambda a: sl.sqrtm(-a @ a.T), "scipy.linalg.sqrtm.*complex"),
    (lambda a: sl.logm(-a @ a.T), "scipy.linalg.logm.*negative real eigenvalue.*complex"),
    (lambda a: sl.fractional_matrix_power(-a @ a.T, 0.5), "fractional_matrix_power.*complex"),
    (lambda a: sl.fractional_matrix_power(a, a[0, 0]), "fractional_matrix_power.*power t must be a constant"),
    (lambda a: sl.eig(a)[0].real, "scipy.linalg.eig.*np.linalg.eig"),
    (lambda a: sl.eigh(a, np.eye(4))[0], "generalized eigenproblem"),
    (lambda a: sl.qr(a, pivoting=True)[0], "pivoting=True"),
    (lambda a: sl.qr(np.concatenate([a, a]))[1], "mode='full' .*8×4 matrix.*mode='economic'"),
    (lambda a: sl.solve(a, B, assume_a="banded"), "assume_a='banded'"),
    (lambda a: sl.rq(a[:2])[1], "rq.*mode='full' .*2×4 matrix.*extra rows of Q.*mode='economic'"),
    (lambda a: sl.orth(a[:, :2] @ a[:2]), "orth.*rank 2 < 4.*no derivative"),
    (lambda a: sl.orth(a * 0 + np.eye(4)), "orth.*repeated singular values.*not unique"),
    (lambda a: sl.null_space(a[:2]), "null_space.*2 dimensions.*basis is not unique.*I − pinv\\(A\\) @ A"),
    (lambda a: sl.null_space(a[:, :2] @ a[:2]), "null_space.*4×4 matrix has rank 2 < 4.*changes dimension"),
])
def test_what_is_not_recorded_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words) as e:
        jacc.trace(f, A)
    assert "test_scipy_linalg.py" in str(e.value)


@pytest.mark.parametrize("f, words", [
    (lambda a: sl.expm_frechet(a, a[:2]), "E must have A's shape \\(4, 4\\), got \\(2, 4\\).*expm_frechet"),
    (lambda a: sl.cosm(a[:2]), "A must be a square matrix.*cosm"),
    (lambda a: sl.rq(a, mode="reduced")[0], "mode argument must be one of.*'reduced'.*scipy.linalg.rq"),
    (lambda a: sl.rq(a[0]), "expected a 2-d matrix, got shape \\(4,\\).*scipy.linalg.rq"),
])
def test_bad_shapes_are_named(f, words):
    with pytest.raises(ValueError, match=words):
        jacc.trace(f, A)


def test_supported_functions_lists_them():
    names = jacc.supported_functions()
    assert {"scipy.linalg.solve", "scipy.linalg.cho_solve", "scipy.linalg.cholesky"} <= set(names)


def test_triangular_solves_use_the_triangle_not_an_lu(tmp_path):
    """solve_triangular and cho_solve: trtrs for the value and a network with T⁻¹ held for the
    derivative, not np.linalg.solve's LU; the graph round-trips through a file."""
    f = lambda a: sl.cho_solve((sl.cholesky(a, lower=True), True), B)  # noqa: E731
    g = jacc.trace(f, S)
    ops = [g.op(v) for v in g.nx.nodes]
    assert ops.count("solve_triangular_value") == 2 and "solve" not in ops
    np.testing.assert_allclose(g.evaluate({"a": S})[g.outputs[0]], sl.solve(S, B), rtol=1e-12)
    g.save(tmp_path / "cho.json")
    back = jacc.load(tmp_path / "cho.json")
    np.testing.assert_allclose(back.evaluate({"a": S})[back.outputs[0]], sl.solve(S, B), rtol=1e-12)
    p = jacc.plan(back, "reverse")
    np.testing.assert_allclose(p.execute(a=S)[back.outputs[0], "a"], jacc.jacobian(f)(S), rtol=1e-10, atol=1e-12)


def test_sqrtm_reads_its_root_at_each_point_and_is_differentiable_where_jax_is_not():
    """One Newton step from SciPy's root at the traced point: exact derivative (the Sylvester
    solve), and a value-dependent trace, so traced-once calls trace again (never a stale root)."""
    jf = jacc.jacobian(lambda a: sl.sqrtm(a), retrace=False)
    for a in (A, A + 0.5 * np.eye(4)):
        J = jf(a)
        np.testing.assert_allclose(J, fd_jacobian(lambda m: sl.sqrtm(m), [a], 0), atol=2e-8)
        root = sl.sqrtm(a)
        # the defining identity, differentiated: X·dX + dX·X = dA for every direction dA = E_kl
        np.testing.assert_allclose(np.einsum("ij,jkab->ikab", root, J) + np.einsum("ijab,jk->ikab", J, root),
                                   np.einsum("ia,jb->ijab", np.eye(4), np.eye(4)), atol=1e-12)
    assert jacc.trace(lambda a: sl.sqrtm(a), A).meta.get("value_dependent")


def test_lu_factors_read_their_pivots_at_each_point_and_lu_solve_is_one_solve():
    """The packed factor is SciPy's at the traced point plus a recorded Newton step that is zero
    there: the derivative satisfies dL·U + L·dU = dA[p]; the pivots make the trace
    value-dependent, so traced-once calls at a point that pivots otherwise trace again.
    lu_solve of lu_factor's own result records one solve with the matrix."""
    jf = jacc.jacobian(lambda a: sl.lu_factor(a)[0], retrace=False)
    swapped = G[[1, 0, 2, 3]] * [[0.01], [1], [1], [1]]  # another pivot order
    for a in (G, swapped):
        lu, piv = sl.lu_factor(a)
        p = np.arange(4)
        for i, j in enumerate(piv):
            p[i], p[j] = p[j], p[i]
        J = jf(a)
        np.testing.assert_allclose(J, fd_jacobian(lambda m: sl.lu_factor(m)[0], [a], 0), atol=1e-7)
        low, up = np.tril(lu, -1) + np.eye(4), np.triu(lu)
        dlow, dup = np.tril(J.transpose(2, 3, 0, 1), -1), np.triu(J.transpose(2, 3, 0, 1))
        np.testing.assert_allclose(dlow @ up + low @ dup, np.eye(16).reshape(4, 4, 4, 4)[:, :, p], atol=1e-12)
    assert jacc.trace(lambda a: sl.lu_factor(a)[0], G).meta.get("value_dependent")
    g = jacc.trace(lambda a: sl.lu_solve(sl.lu_factor(a), B), G)
    ops = [g.op(v) for v in g.nx.nodes]
    assert ops.count("solve") == 1 and not [o for o in ops if "triangular" in str(o) or "inv" in str(o)], ops


@pytest.mark.parametrize("f, shape", [
    (lambda c: sl.toeplitz(c), (2, 3)), (lambda c: sl.circulant(c), (2, 3)),
    (lambda c: sl.toeplitz(c, c[::-1]), (2, 2, 3)), (lambda c: sl.toeplitz(c, np.array([1.0, 5.0])), (2, 3)),
    (lambda c: sl.toeplitz(c), (3,)), (lambda c: sl.circulant(c), (4,)),
])
def test_toeplitz_and_circulant_take_nd_input_as_scipy_does(f, shape):
    # SciPy 1.17 reads N-D input as a batch of vectors; jacc flattened it (value and Jacobian wrong)
    c = np.random.default_rng(3).normal(size=shape)
    g = jacc.trace(f, c)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: c})[g.outputs[0]], f(c), rtol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(f)(c), fd_jacobian(f, [c], 0), atol=1e-8)


def test_lstsq_residues_of_a_vector_have_scipys_shape():
    R = np.random.default_rng(3).standard_normal((5, 3))
    b = np.arange(5.0)
    f = lambda a: sl.lstsq(a, b)[1]  # noqa: E731  (a number for a vector b: NumPy's is (1,))
    J = jacc.jacobian(f)(R)
    assert np.shape(f(R)) == () and J.shape == (5, 3)
    np.testing.assert_allclose(J, fd_jacobian(f, [R], 0), atol=1e-7)


@pytest.mark.parametrize("f, good, bad, match", [
    (lambda ab: sl.solveh_banded(ab.reshape(2, 3), np.array([1.0, 2.0, 3.0])),
     np.array([0.0, 1.0, 1.0, 4.0, 4.0, 4.0]), np.array([0.0, 1.0, 1.0, 1.0, -3.0, 4.0]), "not positive definite"),
    (lambda c: sl.solve_toeplitz(c, np.array([1.0, 2.0, 3.0])), np.array([2.0, 0.5, 0.1]),
     np.array([0.0, 1.0, 0.5]), "Singular principal minor"),
], ids=["solveh_banded", "solve_toeplitz"])
def test_what_scipy_refuses_is_refused_at_every_call(f, good, bad, match):
    """The traced forms solve densely, which takes matrices SciPy refuses: later calls returned finite
    Jacobians there (their traces now depend on values, so f and SciPy run at every call)."""
    assert_later_calls_raise(f, good, bad, np.linalg.LinAlgError, match)


@pytest.mark.parametrize("f", [lambda a: sl.solve(a, np.ones(3), assume_a="pos"), lambda a: sl.inv(a, assume_a="pos")],
                         ids=["solve", "inv"])
def test_assume_a_pos_refuses_a_matrix_that_is_not_positive_definite(f):
    """SciPy's posv and potri refuse it; the traced form solved it as a symmetric matrix, on every call."""
    good = np.array([[4.0, 1.0, 0.2], [1.0, 3.0, 0.5], [0.2, 0.5, 2.0]])
    indefinite = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(jacc.jacobian(f)(good), fd_jacobian(f, [good], 0), atol=1e-7)
    with pytest.raises(np.linalg.LinAlgError):
        jacc.jacobian(f)(indefinite)
    assert_later_calls_raise(f, good, indefinite, np.linalg.LinAlgError, "[Ss]ingular|positive definite")


@pytest.mark.parametrize("solver", ["solve_continuous_are", "solve_discrete_are"])
def test_riccati_solutions_are_scipys_with_the_implicit_derivative(solver):
    """X from SciPy, differentiated by the implicit function theorem on the equation written as
    SciPy states it (E and S included), in every argument; later calls follow new values."""
    r = np.random.default_rng(1)
    a, b = r.normal(size=(3, 3)), r.normal(size=(3, 2))
    q, rr = np.eye(3) + 0.1 * np.ones((3, 3)), 1.5 * np.eye(2)
    e, s = np.eye(3) + 0.1 * r.normal(size=(3, 3)), 0.1 * r.normal(size=(3, 2))
    solve = getattr(sl, solver)
    cases = [(lambda t: solve(t, b, q, rr), a), (lambda t: solve(a, t, q, rr), b),
             (lambda t: solve(a, b, t @ t.T, rr), q), (lambda t: solve(a, b, q, t @ t.T), rr),
             (lambda t: solve(a, b, q, rr, e=t, s=s), e), (lambda t: solve(a, b, q, rr, e=e, s=t), s)]
    for f, arg in cases:
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.01, 1.02):
            t = arg * scale
            value, J = jacc.value_and_jacobian(f)(t)
            np.testing.assert_array_equal(value, f(t))
            np.testing.assert_allclose(jf(t), fd_jacobian(f, [t], 0), rtol=1e-6, atol=1e-7)


def test_tridiagonal_eigenproblems_and_special_matrices():
    """eigh_tridiagonal / eigvalsh_tridiagonal: eigh of the tridiagonal matrix, with SciPy's values
    and signs; convolution_matrix (toeplitz under its module's own name) and the builders that fill
    np.zeros (companion, fiedler, leslie: their module is served buffers)."""
    x = np.random.default_rng(0).normal(size=8)
    cases = [lambda d: sl.eigh_tridiagonal(d[:4], d[4:7])[0], lambda d: sl.eigh_tridiagonal(d[:4], d[4:7])[1],
             lambda d: sl.eigh_tridiagonal(d[:4], d[4:7], eigvals_only=True),
             lambda d: sl.eigvalsh_tridiagonal(d[:4], d[4:7]),
             lambda d: sl.convolution_matrix(d[:3], 5), lambda d: sl.convolution_matrix(d[:3], 5, "same"),
             lambda d: sl.companion(np.r_[1.0, d[:3]]), lambda d: sl.fiedler(d[:4]),
             lambda d: sl.leslie(d[:3], np.abs(d[3:5]))]
    for f in cases:
        jf = jacc.jacobian(f)
        for scale in (1.0, 1.1, 0.9):
            t = x * scale
            np.testing.assert_allclose(jf(t), fd_jacobian(f, [t], 0), rtol=1e-6, atol=1e-8)
        value = jacc.value_and_jacobian(lambda d: f(d) * 1.0)(1.2 * x)[0]  # (a fresh trace: SciPy's value)
        np.testing.assert_allclose(value, f(1.2 * x), rtol=1e-13, atol=1e-14)
    for f, match in ((lambda d: sl.eigh_tridiagonal(d[:4], d[4:7], select="i", select_range=(0, 1)), "select='a'"),
                     (lambda d: sl.hessenberg(d[:4].reshape(2, 2)), "Hessenberg"),
                     (lambda d: sl.ldl(d[:4].reshape(2, 2)), "LDL")):
        with pytest.raises(jacc.UnsupportedOperationError, match=match):
            jacc.jacobian(f)(x)
