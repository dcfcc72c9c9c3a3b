"""Gram products A·Aᵀ and Aᵀ·A: traced so that the adjoint is one product, (M̄ + M̄ᵀ)·A, not two.

The derivative is checked against finite differences and the closed form, the plan's count
against the same function written so that the pattern is not seen, and the executed count
against the predicted one."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.eliminate import accumulate

R = np.random.default_rng(11)


def _ops(g):
    return [g.op(v) for v in g.topological_order() if g.op(v) != "input"]


def _logdet_gram(X):
    return np.linalg.slogdet(X @ X.T + np.eye(X.shape[0]))[1]


def _logdet_hidden(X):
    """The same function with the transpose behind a reshape, so no Gram product is seen."""
    Y = X.T
    return np.linalg.slogdet(X @ Y.reshape(Y.shape) + np.eye(X.shape[0]))[1]


@pytest.mark.parametrize("f, held", [(lambda X: X @ X.T, "matmul_hold_b"),
                                     (lambda X: X.T @ X, "matmul_hold_a"),
                                     (lambda X: np.matmul(np.transpose(X), X), "matmul_hold_a"),
                                     (lambda X: np.dot(X, np.swapaxes(X, 0, 1)), "matmul_hold_b")])
def test_gram_products_are_recorded_as_one_held_product_and_a_join(f, held):
    X = R.normal(size=(4, 3))
    g = jacc.trace(f, X)
    assert _ops(g) == ["transpose", held, "transpose", "gram_join"]
    hold = g.topological_order()[2]
    assert list(g.nx.predecessors(hold)) == ["X"]  # the transposed operand has no edge
    np.testing.assert_array_equal(g.evaluate({"X": X})[g.outputs[0]], f(X))  # same bits
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-7, atol=1e-8)


def test_batched_gram_products_and_other_products_left_alone():
    A = R.normal(size=(2, 3, 4))
    f = lambda A: np.sin(A @ np.swapaxes(A, -1, -2))  # noqa: E731
    assert "gram_join" in _ops(jacc.trace(f, A))
    np.testing.assert_allclose(jacc.jacobian(f)(A), fd_jacobian(f, [A], 0), rtol=1e-7, atol=1e-8)
    # A.T of a 3-d array reverses every axis: not a Gram product; nor is a product with another
    # matrix's transpose, or A @ A
    B, S, C = R.normal(size=(4, 3)), R.normal(size=(3, 3)), R.normal(size=(3, 3, 3))
    for fn, args in [(lambda C: C.T @ C, (C,)), (lambda X, Y: X @ Y.T, (B, B + 1)),
                     (lambda S: S @ S, (S,))]:
        assert "gram_join" not in _ops(jacc.trace(fn, *args))


def test_a_transpose_recorded_long_before_the_product_gives_a_plain_product():
    X = R.normal(size=(3, 2))

    def f(X):
        Xt = X.T
        y = X
        for _ in range(10):  # more steps than the tracer looks back over
            y = y * 1.5
        return y @ Xt, X @ Xt

    assert _ops(jacc.trace(lambda X: f(X)[1], X))[-1] == "matmul"
    jf = jacc.jacobian(lambda X: f(X)[1])
    np.testing.assert_allclose(jf(X), fd_jacobian(lambda X: f(X)[1], [X], 0), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("n, m", [(5, 3), (6, 6)])
def test_the_reverse_adjoint_costs_one_product_and_counts_as_predicted(n, m):
    X = R.normal(size=(n, m))
    g, hidden = jacc.trace(_logdet_gram, X), jacc.trace(_logdet_hidden, X)
    p, q = jacc.plan(g, "reverse"), jacc.plan(hidden, "reverse")
    assert q.mults - p.mults == n * n * m  # (M̄ + M̄ᵀ)·X: one n×n by n×m product fewer
    values = g.evaluate({"X": X})
    acc = accumulate(p.problem, values, p.order)
    assert acc.mults == p.mults
    want = 2 * np.linalg.solve(X @ X.T + np.eye(n), X)  # ∂ log det(XXᵀ + I)/∂X
    np.testing.assert_allclose(acc.blocks[g.outputs[0], "X"], want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kw", [{}, {"retrace": False}, {"strategy": "forward"}, {"backend": "numpy"}])
def test_jacobian_of_a_gram_loss_on_every_route(kw):
    n = 7
    jf = jacc.jacobian(_logdet_gram, **kw)
    for seed in range(3):  # the replays of the first call's recording, with new values
        X = np.random.default_rng(seed).normal(size=(n, 4))
        want = 2 * np.linalg.solve(X @ X.T + np.eye(n), X)
        np.testing.assert_allclose(jf(X), want, rtol=1e-11, atol=1e-12)


def test_program_performs_the_predicted_multiplications():
    from jacc.program import lower

    X = R.normal(size=(9, 5))
    g = jacc.trace(_logdet_gram, X)
    p = jacc.plan(g, "reverse")
    values = g.evaluate({"X": X})
    prog = lower(p, values)
    assert prog.mults == p.mults == 9 * 9 * 5
    np.testing.assert_allclose(prog.run(values, g)[g.outputs[0], "X"],
                               2 * np.linalg.solve(X @ X.T + np.eye(9), X), rtol=1e-12)


def test_jax_backend_runs_the_gram_program():
    pytest.importorskip("jax")
    X = R.normal(size=(8, 3))
    jf = jacc.jacobian(_logdet_gram, backend="jax", retrace=False)
    for _ in range(2):
        np.testing.assert_allclose(jf(X), 2 * np.linalg.solve(X @ X.T + np.eye(8), X), rtol=1e-11)


def test_scalar_level_trace_is_unchanged():
    g = jacc.trace(lambda X: X @ X.T, np.ones((2, 2)), scalarize=True)
    assert {g.op(v) for v in g.nx if v not in g.inputs} <= {"add", "mul", "square"}


def test_graph_file_round_trip(tmp_path):
    X = R.normal(size=(4, 2))
    g = jacc.trace(_logdet_gram, X)
    g.save(tmp_path / "gram.json")
    h = jacc.graph.load(tmp_path / "gram.json")
    assert _ops(h) == _ops(g)
    assert jacc.plan(h, "reverse").mults == jacc.plan(g, "reverse").mults


def test_replays_reuse_the_recording(monkeypatch):
    import sys

    tape = sys.modules["jacc.trace"].Tape
    jf = jacc.jacobian(_logdet_gram)
    X = R.normal(size=(5, 3))
    jf(X)
    first = jf.plan
    builds = []
    real = tape.build
    monkeypatch.setattr(tape, "build", lambda self: builds.append(1) or real(self))
    for k in range(3):
        jf(X * (k + 2))
    assert jf.plan is first and not builds  # the three steps replay like any others
