"""An argument used twice by a non-elementwise op (X @ X, np.outer(x, x), np.stack([x, x])) gets an
alias vertex, so each use keeps its own structured partial instead of one summed dense edge."""

import sys

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.eliminate import accumulate
from jacc.ops import partials_add_compactly

R = np.random.default_rng(5)
N = 5
X = R.normal(size=(N, N)) / 3
x = R.normal(size=N)

CASES = [  # (name, f, argument, reverse mults with the alias)
    ("X@X", lambda X: np.sum(np.sin(X @ X)), X, 2 * N**3),
    ("X@X@X", lambda X: np.sum(np.sin(X @ X @ X)), X, 4 * N**3),
    ("matrix_power", lambda X: np.sum(np.sin(np.linalg.matrix_power(X, 3))), X, 4 * N**3),
    ("einsum", lambda X: np.sum(np.sin(np.einsum("ij,jk->ik", X, X))), X, 2 * N**3),
    ("outer", lambda x: np.sum(np.sin(np.outer(x, x))), x, 2 * N**2),
    ("kron", lambda x: np.sum(np.sin(np.kron(x, x))), x, 2 * N**2),
    ("solve", lambda A: np.sum(np.sin(np.linalg.solve(A, A) + A)), X + 2 * np.eye(N), None),
]


@pytest.mark.parametrize("name, f, a, mults", CASES, ids=[c[0] for c in CASES])
def test_repeated_arguments_keep_structured_edges(name, f, a, mults):
    g = jacc.trace(f, a)
    assert "alias" in {g.op(v) for v in g.nx}
    p = jacc.plan(g, "reverse")
    if mults is not None:
        assert p.mults == mults
    acc = accumulate(p.problem, g.evaluate({g.inputs[0]: a}), p.order)
    assert acc.mults == p.mults
    J = jacc.jacobian(f)(a)
    np.testing.assert_allclose(J, fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jacc.jacobian(f, retrace=False)(a), J, rtol=1e-12, atol=1e-14)


def test_uses_whose_partials_add_compactly_stay_on_one_edge():
    for f, a in [(lambda x: np.sin(x @ x), x), (lambda X: np.sum(X * X), X), (lambda x: np.stack([x * 2, x])[0], x)]:
        g = jacc.trace(f, a)
        assert "alias" not in {g.op(v) for v in g.nx}
    assert jacc.plan(jacc.trace(lambda x: np.sin(x @ x), x), "reverse").mults == N
    assert partials_add_compactly("mul", [(3,), (3,)], {}, [0, 1])
    assert partials_add_compactly("einsum", [(3,), (3,)], {"spec": "i,i->"}, [0, 1])
    assert not partials_add_compactly("einsum", [(3,), (3,)], {"spec": "i,j->ij"}, [0, 1])
    # two embeddings of x add as a sum of both (no values): the edge stays as compact as its terms
    assert partials_add_compactly("concatenate", [(3,), (3,)], {"axis": 0}, [0, 1])


@pytest.mark.parametrize("f", [lambda x: np.sum(np.sin(np.stack([x, x]))),
                               lambda x: np.sum(np.sin(np.concatenate([x, x])))], ids=["stack", "concatenate"])
def test_stacking_an_array_with_itself_is_one_edge_holding_both_embeddings(f):
    g = jacc.trace(f, x)
    assert "alias" not in {g.op(v) for v in g.nx}
    p = jacc.plan(g, "reverse")
    assert p.mults == 0
    acc = accumulate(p.problem, g.evaluate({g.inputs[0]: x}), p.order)
    assert acc.mults == 0
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_a_repeated_scalar_in_a_stack_replays_without_rebuilding(monkeypatch):
    f = lambda a, b: np.stack([a * b, a * b + 1.0, a * b])  # noqa: E731
    jf = jacc.jacobian(f, argnums=(0, 1))
    jf(2.0, 3.0)
    first = jf.plan
    tape = sys.modules["jacc.trace"].Tape
    builds = []
    real = tape.build
    monkeypatch.setattr(tape, "build", lambda self: builds.append(1) or real(self))
    for k in range(3):
        J = jf(1.0 + k, 0.5)
        np.testing.assert_allclose(J[0], [0.5, 0.5, 0.5])
        np.testing.assert_allclose(J[1], [1.0 + k] * 3)
    assert jf.plan is first and not builds
