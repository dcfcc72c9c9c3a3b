"""Products (jacc.numpy_api.products): how np.einsum is normalised and recorded (diagonals as free
index maps, '...', implicit outputs, pairwise contraction of three or more operands, optimize=),
the products built on it, and the refusals."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.trace import TraceError, UnsupportedOperationError

HERE = "test_numpy_products.py:"
R = np.random.default_rng(3)


def _recorded(f, *args):
    g = jacc.trace(f, *args)
    return g, [(g.op(v), g.nx.nodes[v]["params"].get("spec")) for v in g.topological_order() if g.op(v) != "input"]


def test_diagonal_and_trace_are_free_index_maps():
    a = R.normal(size=(4, 4))
    g, ops = _recorded(lambda a: np.einsum("ii->i", a), a)
    assert [op for op, _ in ops] == ["reshape", "getitem"]  # a.ravel()[::5]
    jf = jacc.jacobian(lambda a: np.einsum("ii", a))
    J = jf(a)
    np.testing.assert_array_equal(J, np.eye(4))
    assert jf.plan.mults == 0
    np.testing.assert_array_equal(jacc.jacobian(lambda a: np.einsum("ii->i", a))(a).reshape(4, 16),
                                  np.eye(16)[::5])


def test_label_repeated_three_times_and_out_of_order():
    a = R.normal(size=(3, 2, 3, 3))
    f = lambda a: np.einsum("ijii->ji", a)  # noqa: E731
    g = jacc.trace(f, a)
    np.testing.assert_array_equal(g.evaluate({"a": a})[g.outputs[0]], np.einsum("ijii->ji", a))
    J = jacc.jacobian(f)(a)
    want = np.zeros((2, 3) + a.shape)
    for i in range(3):
        for j in range(2):
            want[j, i, i, j, i, i] = 1.0
    np.testing.assert_array_equal(J, want)


def test_ellipsis_and_implicit_outputs_are_spelled_out():
    a, b = R.normal(size=(2, 1, 3, 4)), R.normal(size=(5, 4, 2))
    g, ops = _recorded(lambda a, b: np.einsum("...ij,...jk->...ik", a, b), a, b)
    assert ops[-1][0] == "einsum" and "." not in ops[-1][1] and "->" in ops[-1][1]
    np.testing.assert_allclose(g.evaluate({"a": a, "b": b})[g.outputs[0]], np.einsum("...ij,...jk->...ik", a, b))
    _, ops = _recorded(lambda a, b: np.einsum("jk,ij", a, b), R.normal(size=(4, 2)), R.normal(size=(3, 4)))
    assert ops == [("einsum", "jk,ij->ik")]


def test_three_operands_contract_pairwise_along_the_given_path():
    a, b, c = R.normal(size=(2, 6)), R.normal(size=(6, 6)), R.normal(size=(6, 3))
    _, ops = _recorded(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c,
                                                 optimize=["einsum_path", (1, 2), (0, 1)]), a, b, c)
    assert ops == [("einsum", "jk,kl->jl"), ("einsum", "ij,jl->il")]
    _, ops = _recorded(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c), a, b, c)
    assert len(ops) == 2 and all(op == "einsum" and spec.count(",") == 1 for op, spec in ops)
    J = jacc.jacobian(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c), argnums=(0, 1, 2))(a, b, c)
    np.testing.assert_allclose(J[1], np.einsum("ij,kl->iljk", a, c), atol=1e-12)


@pytest.mark.parametrize("spec", ["i,j,k->ijk", "i,j,k->kji", "i,j,k,l->ijkl", "ij,k,l->lijk", "i,j,k,ij->k"])
def test_outer_products_of_three_or_more_operands_go_pairwise(spec):
    """NumPy's path contracts an outer product of k operands in one step of k; jacc records k − 1
    pairwise einsums (it raised "too many values to unpack" before)."""
    x = R.normal(size=3)
    ops = [np.outer(x, x) if term == "ij" else x for term in spec.split("->")[0].split(",")]
    f = lambda x: np.einsum(spec, *[np.outer(x, x) if o.ndim == 2 else x * (t + 1.0)  # noqa: E731
                                    for t, o in enumerate(ops)])
    g, recorded = _recorded(f, x)
    outers = sum(o.ndim == 2 for o in ops)  # np.outer is an einsum of its own
    assert [spec.count(",") for op, spec in recorded if op == "einsum"] == [1] * (len(ops) - 1 + outers)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-14)
    J, n = jacc.jacobian(f)(x), 1e-6
    fd = np.stack([(f(x + n * e) - f(x - n * e)) / (2 * n) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(J, fd, atol=1e-8)


def test_constant_operands_fold():
    m = R.normal(size=(3, 3))
    _, ops = _recorded(lambda x: np.einsum("ij,jk,k->i", m, m, x), R.normal(size=3))
    assert len(ops) == 1  # m·m is a constant, folded before the traced product


def test_einsum_errors_name_the_call_site():
    a = np.ones((2, 3))
    with pytest.raises(TraceError, match=f"numpy.einsum at .*{HERE}.*name 2 operand"):
        jacc.jacobian(lambda a: np.einsum("ij,jk->ik", a))(a)
    with pytest.raises(TraceError, match=f"numpy.einsum at .*{HERE}.*needs '...'"):
        jacc.jacobian(lambda a: np.einsum("...j->j", a))(np.ones((4, 2, 3)))
    with pytest.raises(TraceError, match="label 'j' has sizes 3 and 2"):
        jacc.jacobian(lambda a: np.einsum("ij,jk->ik", a, a))(a)
    with pytest.raises(TraceError, match="repeats on axes of sizes"):
        jacc.jacobian(lambda a: np.einsum("ii->i", a))(a)
    with pytest.raises(UnsupportedOperationError, match=f"numpy.einsum with out=.*{HERE}"):
        jacc.jacobian(lambda a: np.einsum("ij->j", a, out=np.zeros(3)))(a)


def test_einsum_graph_files_round_trip(tmp_path):
    a, b = R.normal(size=(2, 3, 3)), R.normal(size=(3, 4))
    f = lambda a, b: np.einsum("bii,ij,jk->bk", a, b, b.T)  # noqa: E731
    g = jacc.trace(f, a, b)
    p = tmp_path / "e.json"
    g.save(p)
    h = jacc.load(p)
    np.testing.assert_allclose(h.evaluate({"a": a, "b": b})[h.outputs[0]], np.einsum("bii,ij,jk->bk", a, b, b.T))


def test_products_record_einsum_with_structured_partials():
    a, b = R.normal(size=(2, 3)), R.normal(size=(3, 2))
    g = jacc.trace(np.kron, a, b, argnums=(0, 1))
    kinds = {g.partial(u, v).describe() for u, v in g.nx.edges}
    assert "I6 ⊗ dense 6×1" in kinds  # ∂kron/∂a: b's 6 values per entry of a, never a 36×6 array
    np.testing.assert_allclose(g.evaluate({"a": a, "b": b})[g.outputs[0]], np.kron(a, b))
    _, ops = _recorded(lambda a, b: np.tensordot(a, b, axes=([0, 1], [1, 0])), a, b)
    assert ops == [("einsum", "ab,ba->")]


def test_cross_refuses_2_vectors_and_moves_axes():
    with pytest.raises(UnsupportedOperationError, match=f"numpy.cross of a with 2-vectors.*{HERE}"):
        jacc.jacobian(np.cross)(np.ones(2), np.ones(2))
    a, b = R.normal(size=(3, 2)), R.normal(size=(2, 3))
    g = jacc.trace(lambda a, b: np.cross(a, b, axisa=0, axisc=0), a, b)
    np.testing.assert_allclose(g.evaluate({"a": a, "b": b})[g.outputs[0]], np.cross(a, b, axisa=0, axisc=0))


def test_matrix_power_edges():
    a = R.normal(size=(3, 3))
    J = jacc.jacobian(lambda a: np.linalg.matrix_power(a, 0) + a)(a)
    np.testing.assert_array_equal(J.reshape(9, 9), np.eye(9))  # a⁰ = I is a constant
    _, ops = _recorded(lambda a: np.linalg.matrix_power(a, 5), a)
    # a², a⁴, a·a⁴; a repeated operand gets an alias (jacc.ops.partials_add_compactly)
    assert [op for op, _ in ops] == ["alias", "matmul", "alias", "matmul", "matmul"]
    stack = R.normal(size=(2, 3, 3)) + 3 * np.eye(3)  # n < 0 of a stack (refused before; found by a hunt)
    f = lambda a: np.linalg.matrix_power(a, -2)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(stack), fd_jacobian(f, [stack], 0), atol=1e-8)


@pytest.mark.skipif(not hasattr(np, "vecdot"), reason="np.vecdot is NumPy 2's")
@pytest.mark.parametrize("f", [
    lambda x: np.vecdot(x, x + 1.0, axis=0),
    lambda x: np.vecdot(x, np.sin(x), axis=-2, keepdims=True),
    lambda x: np.vecdot(x, x[0], keepdims=True),
], ids=["axis", "axis and keepdims", "keepdims"])
def test_vecdot_takes_the_gufuncs_axis_and_keepdims(f):
    """np.vecdot(..., axis=0) was refused ('keyword(s) ['axis']'; np.linalg.vecdot took it)."""
    x = R.normal(size=(5, 3))
    np.testing.assert_allclose(jacc.trace(f, x).evaluate({"x": x})[jacc.trace(f, x).outputs[0]], f(x), rtol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    with pytest.raises(TraceError, match="needs square matrices"):
        jacc.jacobian(lambda a: np.linalg.matrix_power(a, 2))(np.ones((2, 3)))


def test_tensordot_and_multi_dot_errors():
    with pytest.raises(TraceError, match=f"numpy.tensordot at .*{HERE}.*pair 2 axes of a with 1"):
        jacc.jacobian(lambda a: np.tensordot(a, a, axes=([0, 1], [0])))(np.ones((2, 2)))
    with pytest.raises(TraceError, match="multi_dot at .*needs at least two arrays"):
        jacc.jacobian(lambda a: np.linalg.multi_dot([a]))(np.ones((2, 2)))


def test_multi_dot_takes_vectors_at_the_ends_only_as_numpy():
    with pytest.raises(np.linalg.LinAlgError, match="1-dimensional array given.*operand 1"):
        jacc.trace(lambda v: np.linalg.multi_dot([np.eye(4), v, np.eye(4)]), np.ones(4))
    J = jacc.jacobian(lambda v: np.linalg.multi_dot([v, np.eye(4) * 2.0, v]))(np.arange(4.0))
    np.testing.assert_allclose(J, 4.0 * np.arange(4.0))


def test_the_diagonal_of_a_product_of_a_vector_and_a_stack_and_size_0_broadcasts():
    """diag(x @ C3) took the product's factors for matrices (an internal einsum error); a size-1
    axis against a size-0 one was not broadcast (einsum, vecdot, cross: 'label has sizes 0 and 1');
    the chain strategy refused a size-0 chain."""
    r = np.random.default_rng(3)
    C3, x = r.standard_normal((2, 3, 2)), r.standard_normal(3)
    for f in (lambda x: np.diagonal(x @ C3), lambda x: np.trace(x @ C3), lambda x: np.diagonal(C3.transpose(0, 2, 1) @ x)):
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    a, b = np.zeros((0, 3)), np.ones((1, 3))
    for f in (lambda a, b: np.einsum("ij,ij->i", a, b), lambda a, b: np.cross(a, b)):
        Ja, Jb = jacc.jacobian(f, argnums=(0, 1))(a, b)
        assert Ja.shape == f(a, b).shape + a.shape and Jb.shape == f(a, b).shape + b.shape
    for strategy in ("auto", "chain"):
        assert jacc.jacobian(lambda z: np.tanh(np.vdot(np.sin(z), z)), strategy=strategy)(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("f", [
    lambda a: np.linalg.multi_dot([U12, a, a.T, a, U12]),
    lambda a: np.einsum("i,ij,jk,kl,l->", U12, a, a.T, a, U12, optimize=True),
], ids=["multi_dot", "einsum chain"])
def test_constants_are_folded_only_where_that_keeps_the_cheap_path(f):
    """u·A·Aᵀ·A·u folded u ⊗ u first and then took A·Aᵀ: 3n³ multiplications (0.43 ms at n = 120
    against jax.jacrev's 0.05, found by a hunt) where the vectors' path costs n² each."""
    a, u = R.normal(size=(12, 12)), U12
    jf = jacc.jacobian(f)
    grad = np.outer(u, a.T @ a @ u) + np.outer(a @ u, a.T @ u) + np.outer(a @ a.T @ u, u)
    np.testing.assert_allclose(jf(a), grad, rtol=1e-12)
    assert jf.plan.mults < 12 ** 3


U12 = R.normal(size=12)
