"""Scalar-level tracing (``trace(..., scalarize=True)``) and the free ±1 partials."""

import numpy as np
import pytest
from conftest import fd_jacobian, in_a_fresh_process
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc
from jacc import structure as S
from jacc import suite
from jacc.eliminate import Problem
from jacc.trace import UnsupportedOperationError


def _dense(g, blocks, names, shapes, out_size):
    """The scalar blocks of a scalarized graph as one (outputs × inputs) matrix per argument."""
    cols = []
    for n, shape in zip(names, shapes):
        parts = [n + "".join(f"[{i}]" for i in idx) for idx in np.ndindex(shape)] if shape else [n]
        cols.append(np.array([[float(blocks[o, p]) for p in parts] for o in g.outputs]).reshape(out_size, -1))
    return np.hstack(cols)


def _ops(g):
    """The ops of the vertices the outputs depend on (dead code is pruned when planning)."""
    import networkx as nx

    live = set(g.outputs).union(*(nx.ancestors(g.nx, y) for y in g.outputs))
    return sorted(g.op(v) for v in live if v not in g.inputs)


def test_matrices_split_into_scalars_and_match_finite_differences():
    rng = np.random.default_rng(0)
    A, x = rng.standard_normal((3, 2)), rng.standard_normal(2)

    def f(A, x):
        return np.tanh(A @ x) * A[:, 0] + np.sum(A, axis=1) / (1.0 + x[0] ** 2)

    g = jacc.trace(f, A, x, scalarize=True)
    assert g.inputs == ["A[0][0]", "A[0][1]", "A[1][0]", "A[1][1]", "A[2][0]", "A[2][1]", "x[0]", "x[1]"]
    assert len(g.outputs) == 3 and all(g.shape(v) == () for v in g.nx)
    for strategy in ("forward", "reverse", "markowitz"):
        blocks = jacc.plan(g, strategy).execute(*A.reshape(-1), *x)
        J = _dense(g, blocks, ["A", "x"], [(3, 2), (2,)], 3)
        want = np.hstack([fd_jacobian(f, [A, x], 0).reshape(3, 6), fd_jacobian(f, [A, x], 1)])
        np.testing.assert_allclose(J, want, rtol=1e-6, atol=1e-8)


def test_constants_fold_as_in_the_literature():
    x = np.array([0.3, -1.2])
    cases = [  # (function, the ops left in its graph); an output that is an input gets an identity
        (lambda x: x[0] * 0.0 + x[1], ["identity"]),  # x·0 = 0, 0 + y = y
        (lambda x: x[0] * 1.0 - 0.0 * x[1], ["identity"]),  # x·1 = x, x − 0 = x
        (lambda x: 0.0 - x[0] * -1.0, ["identity"]),  # x·(−1) = −x, 0 − (−x) = x
        (lambda x: -x[0] / -1.0 - x[1], ["sub"]),  # (−x)/(−1) = −(−x) = x
        (lambda x: x[0] / 1.0 + x[1] ** 1, ["add"]),
        (lambda x: x[0] ** 2.0 + x[1] ** 0.0, ["add", "square"]),  # x**0 = 1
        (lambda x: np.array([[1.0, 0.0], [0.0, 1.0]]) @ x, ["identity", "identity"]),
        (lambda x: np.array([[2.0, 0.0], [0.0, -1.0]]) @ x, ["mul", "neg"]),
    ]
    for f, ops in cases:
        assert _ops(jacc.trace(f, x, scalarize=True)) == ops


def test_constant_and_repeated_outputs():
    g = jacc.trace(lambda x: np.stack([x[0] * 0.0, x[1], x[1]]), np.array([1.0, 2.0]), scalarize=True)
    blocks = jacc.plan(g, "forward").execute(1.0, 2.0)
    J = np.array([[float(blocks[o, i]) for i in g.inputs] for o in g.outputs])
    np.testing.assert_array_equal(J, [[0, 0], [0, 1], [0, 1]])


def test_negations_and_subtractions_cost_nothing():
    x = np.array([0.4, 1.3, -0.7])
    g = jacc.trace(lambda x: np.sin(x[0]) - x[1] * x[2] - (-x[2]), x, scalarize=True)
    prob = Problem.from_graph(g)
    for strategy in ("forward", "reverse"):
        p = jacc.plan(g, strategy)
        # every path carries at most one stored partial: sin' and the two factors of x1·x2
        assert p.mults == 0
        blocks = p.execute(*x)
        J = [float(blocks[g.outputs[0], i]) for i in g.inputs]
        np.testing.assert_allclose(J, [np.cos(x[0]), -x[2], -x[1] + 1.0])
    assert {Problem.from_graph(g).eliminator().algebra.of(j) for j in prob.symbolic_edges().values()} >= {0, 1, 2}


def test_robot_arm_at_the_literature_level():
    p = suite.get("robotarm", "small")
    q = p.make_inputs(0)["q"]
    g = jacc.trace(lambda q: p.fn(q=q, xp=np), q, scalarize=True)
    # the Denavit–Hartenberg matrices' constant zeros and ones fold away (CasADi: 251 mults)
    best = min(jacc.plan(g, s).mults for s in ("forward", "reverse", "markowitz"))
    assert best <= 300
    plan = jacc.plan(g, "forward")
    J = _dense(g, plan.execute(*q), ["q"], [(6,)], 12)
    np.testing.assert_allclose(J, fd_jacobian(lambda v: p.fn(q=v, xp=np), [q], 0), rtol=1e-6, atol=1e-8)


def test_value_dependent_scalar_code_is_marked():
    g = jacc.trace(lambda x: x[0] if x[0] > x[1] else x[1] * 2.0, np.array([1.0, 3.0]), scalarize=True)
    assert "comparison '>'" in g.meta["value_dependent"][0]
    # comparisons with NumPy scalars and 0-d arrays read the value too (and take the right branch)
    for c in (np.float32(3.0), np.array(3.0), 3):
        g = jacc.trace(lambda x: x[0] * 2.0 if x[0] > c else x[1] - x[0], np.array([1.0, 2.0]), scalarize=True)
        assert _ops(g) == ["sub"] and g.meta["value_dependent"]


def test_functions_without_scalar_rules_are_refused_clearly():
    # (np.linalg.solve, inv, … raised NumPy's "Cannot cast ufunc 'solve1' input 0 from dtype('O')")
    for fn in (np.linalg.eigh, np.linalg.qr, np.linalg.svd):
        with pytest.raises(UnsupportedOperationError, match=rf"scalarize=True: numpy.linalg.{fn.__name__} does "
                                                            "not run on scalar-level arrays.*without scalarize"):
            jacc.trace(lambda A: fn(A)[0], np.eye(2) * 2.0 + 1.0, scalarize=True)
    with pytest.raises(UnsupportedOperationError, match="float"):
        jacc.trace(lambda x: float(x[0]) * x[1], np.ones(2), scalarize=True)


def _writes_slice(x):
    y = np.zeros(4)
    y[1:] = x
    return y


def _adds_at(x):
    y = np.zeros(2)
    np.add.at(y, [0, 0, 1], x)  # (NumPy's C code turned the refusal into a SystemError)
    return y


@pytest.mark.parametrize("f", [_writes_slice, _adds_at])
def test_a_write_into_a_plain_array_is_refused_with_its_line_and_the_fix(f):
    with pytest.raises(UnsupportedOperationError, match=r"written into a plain float array at .*test_scalarize.py:\d+"
                                                        r".*build them from the scalars"):
        jacc.trace(f, np.array([0.3, -1.2, 2.0]), scalarize=True)
    assert jacc.jacobian(f)(np.array([0.3, -1.2, 2.0])).shape == (f(np.zeros(3)).size, 3)  # (array level takes it)


def test_constants_inside_scalar_arrays_go_through_ufuncs():
    A = np.array([[0.0, 0.0], [1.0, 2.0]])  # a zero row: its product entry is the constant 0.0

    def f(x):
        return np.exp(A @ x) + np.sin(np.concatenate([x, np.ones(1)])).sum() + np.mean(x * x)

    x = np.array([0.3, 0.4])
    g = jacc.trace(f, x, scalarize=True)
    J = _dense(g, jacc.plan(g, "reverse").execute(*x), ["x"], [(2,)], 2)
    np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6)


def test_ufuncs_without_object_loops_run_per_scalar():
    sp = pytest.importorskip("scipy.special")
    x = np.array([0.2, -0.5])
    g = jacc.trace(lambda x: sp.expit(x[0]) * np.exp2(x[1]) + np.arctan2(x[0], x[1]), x, scalarize=True)
    blocks = jacc.plan(g, "reverse").execute(*x)
    J = [float(blocks[g.outputs[0], i]) for i in g.inputs]
    np.testing.assert_allclose(J, fd_jacobian(lambda v: sp.expit(v[0]) * np.exp2(v[1]) + np.arctan2(v[0], v[1]),
                                              [x], 0).reshape(-1), rtol=1e-6)


# -- the structured algebra's exact −1 --------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.booleans())
def test_products_with_minus_one_cost_what_plus_one_costs(n, m, left, pricing):
    rng = np.random.default_rng(n * 10 + m)
    neg = S.Jac((n,), (n,), (0,), neg=True)
    d = S.dense((n,), (m,), rng.standard_normal((n, m))) if left else S.dense((m,), (n,), rng.standard_normal((m, n)))
    a, b = (neg, d) if left else (d, neg)
    plus = (S.identity((n,)), d) if left else (d, S.identity((n,)))
    c, mults = S.product(a, b)
    assert mults == S.product(*plus)[1] == 0
    np.testing.assert_array_equal(c.to_dense(), -d.to_dense())
    if pricing:
        with S.pricing():
            cs, ms = S.product(a.strip(), b.strip())
        assert ms == mults and cs.vlabels == c.vlabels
    # −1 · −1 is the identity again, a sum with it a stored value
    twice, k = S.product(neg, neg)
    assert k == 0 and S.is_identity(twice)
    total = S.add(neg, S.identity((n,)))
    np.testing.assert_array_equal(total.to_dense(), np.zeros((n, n)))
    assert neg.describe() == f"−identity {n}" and neg.plain().describe() == f"scaled identity {n}"


def test_counted_multiplications_equal_predicted_with_negations():
    x = np.array([0.3, 0.8, -1.1])

    def f(x):
        return np.stack([x[0] * x[1] - np.sin(x[2]), -(x[0] * x[2]) - x[1] ** 2])

    g = jacc.trace(f, x)
    for strategy in ("forward", "reverse", "markowitz"):
        p = jacc.plan(g, strategy)
        values = g.evaluate({"x": x})
        acc = jacc.eliminate.accumulate(p.problem, values, p.order)
        assert acc.mults == p.mults
        np.testing.assert_allclose(acc.blocks[g.outputs[0], "x"], fd_jacobian(f, [x], 0), rtol=1e-6)


def test_in_place_operators_on_scalar_arrays_follow_numpy():
    """Scalar arrays are object arrays: x op= y writes into their elements, so aliases and views
    see the change as in NumPy (this recursed without end before)."""
    x = np.array([0.7, -1.3, 2.1])

    def f(x):
        z = x * 2.0
        w = z
        z += np.stack([x[0] * x[1], 1.0 + 0 * x[1], x[2]])
        v = z[1:]
        v *= 3.0
        return w * x

    g = jacc.trace(f, x, scalarize=True)
    vals = g.evaluate(dict(zip(g.inputs, x)))
    np.testing.assert_allclose([float(vals[o]) for o in g.outputs], f(x.copy()), rtol=1e-15)
    J = _dense(g, jacc.plan(g, "reverse").execute(*x), ["x"], [(3,)], 3)
    np.testing.assert_allclose(J, fd_jacobian(lambda v: f(v.copy()), [x], 0), rtol=1e-6, atol=1e-8)


# -- linear algebra at scalar level ----------------------------------------------------------------

def _spd(n, seed=0):
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


_LINALG = {
    "solve-vector": (lambda A, b: np.linalg.solve(A, b), (4,)),
    "solve-matrix": (lambda A, b: np.linalg.solve(A, np.outer(b, b[:2])), (4, 2)),
    "inv": (lambda A, b: np.linalg.inv(A) @ b, (4,)),
    "det": (lambda A, b: np.linalg.det(A) * b, (4,)),
    "slogdet": (lambda A, b: np.linalg.slogdet(A)[1] + b * np.linalg.slogdet(A).sign, (4,)),
    "cholesky": (lambda A, b: np.linalg.cholesky(A) @ b, (4,)),
    "cholesky-upper": (lambda A, b: np.linalg.cholesky(A, upper=True) @ b, (4,)),
    "batched": (lambda A, b: np.linalg.solve(np.stack([A, A.T + np.eye(4)]), np.stack([b, b])[..., None])[..., 0]
                + np.linalg.det(np.stack([A, 2 * A]))[:, None], (2, 4)),
}


@pytest.mark.parametrize("name", sorted(_LINALG))
def test_linear_algebra_at_scalar_level_matches_numpy_and_finite_differences(name):
    f, out_shape = _LINALG[name]
    A = _spd(4, 1)
    A[0, 1] += 0.7  # not symmetric (Cholesky reads the lower triangle only, as LAPACK)
    A[3, 0] = 0.0  # a structural zero the elimination skips
    b = np.array([0.5, -1.0, 2.0, 0.25])
    g = jacc.trace(f, A, b, scalarize=True)
    n_out = int(np.prod(out_shape))
    assert len(g.outputs) == n_out and all(g.shape(v) == () for v in g.nx)
    values = g.evaluate(dict(zip(g.inputs, [*A.reshape(-1), *b])))
    np.testing.assert_allclose([values[y] for y in g.outputs], np.ravel(f(A, b)), rtol=1e-12, atol=1e-12)
    blocks = jacc.plan(g, "reverse").execute(*A.reshape(-1), *b)
    J = _dense(g, blocks, ["A", "b"], [(4, 4), (4,)], n_out)
    want = np.hstack([fd_jacobian(f, [A, b], 0).reshape(n_out, 16), fd_jacobian(f, [A, b], 1).reshape(n_out, 4)])
    np.testing.assert_allclose(J, want, rtol=1e-5, atol=1e-6)


def test_scalar_level_elimination_pivots_like_lapack_and_says_the_trace_is_value_dependent():
    A = np.eye(5) + np.diag([0.5, 0.25, 0.1, 0.2], 1)
    A[:2, :2] = [[1e-12, 1.0], [1.0, 1.0]]  # no pivoting would divide by 1e-12
    b = np.arange(1.0, 6.0)
    g = jacc.trace(lambda A: np.linalg.solve(A, b), A, scalarize=True)
    assert "pivot choice of np.linalg.solve" in g.meta["value_dependent"][0]
    values = g.evaluate(dict(zip(g.inputs, A.reshape(-1))))
    np.testing.assert_allclose([values[y] for y in g.outputs], np.linalg.solve(A, b), rtol=1e-15)
    # 2 × 2 systems and inverses by Cramer's rule, determinants up to 3 × 3 expanded, 3 × 3 and 4 × 4
    # systems with their pivots chosen by recorded masks: nothing read from values, the same pivots
    for fn, a in ((lambda A: np.linalg.solve(A, b[:2]), A[:2, :2]), (np.linalg.inv, A[:2, :2]),
                  (lambda A: np.linalg.inv(A[:1, :1]), A), (np.linalg.det, A[:3, :3]),
                  (lambda A: np.linalg.solve(A, b[:3]), A[:3, :3]), (np.linalg.inv, A[:4, :4])):
        g = jacc.trace(fn, a, scalarize=True)
        assert not g.meta.get("value_dependent")
        for point in (a, a[::-1] + 1e-3):  # the masks choose other pivots at another point
            values = g.evaluate(dict(zip(g.inputs, point.reshape(-1))))
            np.testing.assert_allclose([values[y] for y in g.outputs], np.ravel(fn(point)), rtol=1e-13)
    g = jacc.trace(lambda A: np.linalg.cholesky(A), _spd(3), scalarize=True)
    assert not g.meta.get("value_dependent")  # Cholesky needs no pivots
    assert _ops(g).count("sqrt") == 3


def test_scalar_level_linear_algebra_refuses_what_lapack_refuses():
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        jacc.trace(lambda A: np.linalg.solve(A, np.ones(2)), np.ones((2, 2)), scalarize=True)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        jacc.trace(np.linalg.cholesky, -np.eye(2), scalarize=True)
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        jacc.trace(np.linalg.inv, np.ones((2, 3)), scalarize=True)
    # singular: det is 0, but its derivative (the adjugate, here [[1, -1], [-1, 1]]) is not; elimination
    # cannot give it (a 4 × 4 det, slogdet), the expansion of a small det can
    for fn, a in ((np.linalg.det, np.ones((4, 4))), (lambda A: np.linalg.slogdet(A)[1], np.ones((2, 2)))):
        with pytest.raises(UnsupportedOperationError, match="singular at the traced values.*adjugate"):
            jacc.trace(fn, a, scalarize=True)
    g = jacc.trace(np.linalg.det, np.ones((2, 2)), scalarize=True)
    blocks = jacc.plan(g, "reverse").execute(*np.ones(4))
    assert [float(blocks[(g.outputs[0], v)]) for v in g.inputs] == [1.0, -1.0, -1.0, 1.0]


def test_gp_likelihood_traces_at_scalar_level():
    """The lecture's GP likelihood (solve and slogdet) raised NumPy's object-dtype error."""
    p = suite.get("gp_nll", "small")
    theta = p.make_inputs()["theta"]
    g = jacc.trace(p.fn, theta, scalarize=True)
    blocks = jacc.plan(g, "auto", time_limit=1).execute(*theta)
    J = _dense(g, blocks, ["theta"], [theta.shape], 1)
    np.testing.assert_allclose(J.ravel(), fd_jacobian(p.fn, [theta], 0).ravel(), rtol=1e-6)


def _structure(j):
    return (j.out_shape, j.in_shape, j.pair, j.vlabels, j.neg, j.unit, j.describe())


@pytest.mark.parametrize("name", ["roeflux", "robotarm", "blackscholes", "heart"])
def test_shared_scalar_partials_are_those_built_edge_by_edge(name):
    """Graph.partials builds one partial per kind of scalar edge (op, position, constants) and
    shares it: each must be the partial built for that edge alone."""
    p = suite.PROBLEMS[name]("small")
    inp = p.make_inputs(0)
    g = jacc.trace(p.fn, *inp.values(), argnums=tuple(range(len(inp))), scalarize=True)
    edges = Problem.from_graph(g).edges
    shared = g.partials(edges)
    assert len({id(j) for j in shared.values()}) < len(edges) / 3  # shared, not one per edge
    fresh = jacc.trace(p.fn, *inp.values(), argnums=tuple(range(len(inp))), scalarize=True)
    for u, v in edges:
        assert _structure(shared[u, v]) == _structure(fresh.partial(u, v)), (u, v)



@pytest.mark.parametrize("f", [
    lambda x: x.sum()[None],                                # a lone scalar indexed
    lambda x: np.pad(x.sum(), 1, mode="reflect"),           # an array nested in the result
    lambda x: np.fft.rfft(x).real,                          # a compiled routine on objects
    lambda x: np.kron(np.pad(x, (1, 2)), np.pad(x, (1, 2))),  # recursed without end
], ids=["sum()[None]", "pad(sum)", "rfft", "kron(pad, pad)"])
def test_code_that_does_not_run_on_scalar_level_arrays_is_refused_by_name(f):
    # each traces at array level; at scalar level they raised TypeError, AttributeError or
    # RecursionError from inside NumPy or jacc (found by fuzzing)
    x = np.array([0.3, -0.8, 0.5])
    jacc.trace(f, x)
    with pytest.raises(UnsupportedOperationError, match="scalarize=True"):
        jacc.trace(f, x, scalarize=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_to_num_replaces_non_finite_scalars_and_keeps_the_rest():
    # NumPy's nan_to_num returns object arrays unchanged: the graph computed log(-1) = NaN, with
    # derivative 1/x where the replacement's is 0
    def f(x):
        return np.nan_to_num(np.log(x)) * x[0] + np.nan_to_num(np.log(x[1]), nan=7.0)

    x = np.array([0.5, -1.0])
    g = jacc.trace(f, x, scalarize=True)
    out = g.evaluate(dict(zip(g.inputs, x)))
    np.testing.assert_allclose([out[y] for y in g.outputs], f(x))
    blocks = jacc.plan(g, "forward").execute(*x)
    J = np.array([[float(blocks[(y, v)]) for v in g.inputs] for y in g.outputs])
    np.testing.assert_allclose(J, jacc.jacobian(f)(x))
    np.testing.assert_allclose(J, [[np.log(0.5) + 1.0, 0.0], [0.0, 0.0]])
    assert g.meta.get("value_dependent")


def test_comparisons_are_masks_numpy_indexes_with():
    # comparisons of traced scalars made object arrays of bools, which NumPy refused as an index
    f = lambda x: (x[x > 0] ** 2).sum() + np.sum(np.where(x < 0.5, x, 2 * x))  # noqa: E731
    x = np.linspace(-1.0, 1.0, 9)
    g = jacc.trace(f, x, scalarize=True)
    blocks = jacc.plan(g, "forward").execute(*x)
    np.testing.assert_allclose([float(blocks[(g.outputs[0], v)]) for v in g.inputs], jacc.jacobian(f)(x))
    assert g.meta.get("value_dependent")


@pytest.mark.parametrize("f", [
    lambda x: np.add.at(np.zeros(3), [0, 1, 0], x[:3]),
    lambda x: __import__("scipy.linalg").linalg.solve_triangular(np.triu(x[:9].reshape(3, 3)) + 3 * np.eye(3), x[:3]),
    lambda x: np.mean(x, where=x > 0),
])
def test_code_that_fails_on_object_arrays_is_refused_by_name(f):
    with pytest.raises(UnsupportedOperationError, match="scalarize=True"):
        jacc.trace(f, np.linspace(-1.0, 1.0, 9), scalarize=True)


def test_scalar_linear_algebra_after_a_trace_that_ran_with_swaps():
    # a first scalar-level trace that met math on a Scalar runs again with NumPy's functions swapped;
    # the linear-algebra table, first imported inside it, was keyed by the replacements, and every
    # later scalar-level solve in the process was refused (a fresh process: the import is once)
    code = ("import math, numpy as np, jacc\n"
            "x = np.array([2.0, 3.0, 0.5])\n"
            "jacc.trace(lambda x: [math.fmod(x[2], x[1]) + math.dist(x[:2], [x[2], 1.0])], x, scalarize=True)\n"
            "g = jacc.trace(lambda x: list(np.linalg.solve(np.diag(x[1:]), x[:2])), x, scalarize=True)\n"
            "print(len(g.outputs))\n")
    out = in_a_fresh_process(code)
    assert out.returncode == 0 and out.stdout.split() == ["2"], out.stderr[-500:]
