"""Jacobians through jacc's graph against finite differences and closed forms."""

import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.eliminate import Problem, accumulate, price

NUMPY_ASARRAY = np.asarray  # bound at import, as `from numpy import asarray` binds it

rng = np.random.default_rng(42)
A34 = rng.standard_normal((3, 4))
W = rng.standard_normal((5, 4))
SPD = rng.standard_normal((4, 4))
SPD = SPD @ SPD.T + 4 * np.eye(4)
POS = rng.uniform(0.5, 2.0, (3, 4))
MASK = rng.random((3, 4)) > 0.5


def softmax(x):
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / np.sum(z, axis=-1, keepdims=True)


def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


# name -> (function, args); the Jacobian is taken w.r.t. every float array argument
CASES = {
    "lecture": (lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2), [2.0, 5.0]),
    "arith_broadcast": (lambda x, y: (x + y) * (x - y) / (1.0 + y * y) - (-x), [POS, POS[0]]),
    "column_broadcast": (lambda x, y: x * y, [POS, POS[:, :1]]),
    "pow_const": (lambda x: x**3 + x**0.5 + 2.0**x, [POS]),
    "pow_var": (lambda x, y: x**y, [POS, POS * 0.5]),
    "unary": (lambda x: np.exp(x) + np.log(x) + np.sin(x) + np.cos(x) + np.tan(0.3 * x)
              + np.tanh(x) + np.sqrt(x) + np.abs(x - 1.0) + np.log1p(x) + np.expm1(0.1 * x)
              + np.square(x) + np.arctan(x) + np.sinh(x) + np.cosh(x), [POS]),
    "inverse_trig": (lambda x: np.arcsin(0.4 * x) + np.arccos(0.3 * x) + np.reciprocal(x) + np.positive(x), [POS]),
    "shape_functions": (lambda x: np.broadcast_to(np.moveaxis(x[None], 0, 2), (2, 3, 4, 1)).squeeze(axis=3).ravel()
                        * np.ravel(np.squeeze(x[:, None, :])).sum(), [POS]),
    "einsum3": (lambda A, x: np.einsum("ij,jk,k->i", A, W.T, x), [A34, rng.standard_normal(5)]),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), [POS - 1]),
    "relu_max_min": (lambda x, y: np.maximum(x - 1.2, 0.0) + np.minimum(x, y), [POS, POS[::-1] + 0.01]),
    "where": (lambda x: np.where(MASK, np.sin(x), x * x), [POS]),
    "where_traced_mask": (lambda x: np.where(x > 1.0, x, 0.0), [POS]),
    "matvec": (lambda A, x: np.tanh(A @ x), [A34, POS[0]]),
    "vecmat": (lambda x, A: x @ A, [POS[:, 0], A34]),
    "dot_vec": (lambda x, y: np.dot(x, y), [POS[0], POS[1]]),
    "matmul": (lambda X, W: X @ W.T, [POS, W]),
    "batched_matmul": (lambda A, B: A @ B, [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 2))]),
    "broadcast_batch": (lambda A, B: A @ B, [rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2))]),
    "einsum": (lambda A, B: np.einsum("ij,jk->ik", A, B), [A34, W.T]),
    "sum_mean": (lambda x: np.sum(x, axis=0) * np.mean(x, axis=1, keepdims=True), [POS]),
    "sum_all": (lambda x: x.sum() + x.mean(), [POS]),
    "max_min": (lambda x: np.max(x, axis=1) - x.min(axis=0).sum(), [POS]),
    "reshape_transpose": (lambda x: np.sin(x.reshape(2, 6).T).reshape(-1) * np.arange(12.0), [POS]),
    "reshape_batch": (lambda x: np.tanh(x).reshape(3, 2, 2).sum(axis=2), [POS]),
    "indexing": (lambda x: x[1, :2] * x[:, 2][1:].sum() + x[::2, 1:3].sum(axis=0) + x[-1, ::-1][:2], [POS]),
    "newaxis_ellipsis": (lambda x: (x[..., None] * x[None, 0, :, None]).sum(axis=(0, 2)), [POS]),
    "fancy_index": (lambda x: x[[2, 0, 0], 1] * 2.0, [POS]),
    "concat_stack": (lambda x, y: np.concatenate([np.stack([x, y], axis=1), x[:, None, :]], axis=1), [POS, POS ** 2]),
    "softmax": (softmax, [A34]),
    "logsumexp": (logsumexp, [POS[0]]),
    "solve_vec": (lambda A, b: np.linalg.solve(A, b), [SPD, POS[0]]),
    "solve_mat": (lambda A, B: np.linalg.solve(A, B), [SPD, POS.T]),
    "inv": (lambda A: np.linalg.inv(A) @ np.ones(4), [SPD]),
    "slogdet": (lambda A: np.linalg.slogdet(A)[1] * np.linalg.slogdet(A)[0], [SPD]),
    "gp_nll": (lambda theta: _gp(theta), [np.array([0.5, 1.5])]),
    "norm": (lambda x: np.linalg.norm(x), [POS[0]]),
    "clip_iter": (lambda x: sum(np.clip(r, 0.8, 1.5) for r in x), [POS]),
    "tuple_outputs": (lambda x: (np.sin(x), x.sum()), [POS[0]]),
}

XS = rng.standard_normal((5, 2))
Y = rng.standard_normal(5)


def _gp(theta):
    d2 = (XS[:, None, :] - XS[None, :, :]) ** 2
    K = np.exp(-0.5 * np.sum(d2 * theta, axis=2)) + 0.1 * np.eye(5)
    return 0.5 * Y @ np.linalg.solve(K, Y) + 0.5 * np.linalg.slogdet(K)[1]


def _argnums(args):
    return tuple(i for i, a in enumerate(args) if isinstance(a, (float, np.ndarray)))


@pytest.mark.parametrize("strategy", ["forward", "reverse"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_matches_finite_differences(name, strategy):
    f, args = CASES[name]
    nums = _argnums(args)
    J = jacc.jacobian(f, argnums=nums, strategy=strategy)(*args)
    outs = J if isinstance(J, tuple) and isinstance(J[0], tuple) else (J,)
    for o, per_out in enumerate(outs):
        fo = (lambda *a, o=o: f(*a)[o]) if len(outs) > 1 else f
        for k, i in enumerate(nums):
            expect = fd_jacobian(fo, args, i)
            np.testing.assert_allclose(per_out[k], expect, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{name} output {o} wrt arg {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_predicted_mults_equal_executed(name):
    f, args = CASES[name]
    g = jacc.trace(f, *args)
    prob = Problem.from_graph(g)
    vals = g.evaluate({n: a for n, a in zip(g.inputs, [args[i] for i in _argnums(args)])})
    for order in (prob.eliminable, prob.eliminable[::-1]):
        steps, mults, peak = price(prob, order)
        acc = accumulate(prob, vals, order)
        assert acc.mults == mults
        assert [s.mults for s in acc.steps] == [s.mults for s in steps]
        assert acc.peak_bytes == peak


def test_lecture_example_values():
    f, args = CASES["lecture"]
    g = jacc.trace(f, *args)
    vals = g.evaluate({"x1": 2.0, "x2": 5.0})
    assert vals[g.outputs[0]] == pytest.approx(11.652071455223084)
    for strategy in ("forward", "reverse"):
        J = jacc.jacobian(f, argnums=(0, 1), strategy=strategy)(2.0, 5.0)
        assert J[0] == pytest.approx(5.5)
        assert J[1] == pytest.approx(5 * 0 + 2 - np.cos(5.0))  # x1 - cos x2 = 1.716…
        assert J[1] == pytest.approx(1.7163378145367738)


def test_single_layer_closed_form():
    A, x, b = A34, POS[0], rng.standard_normal(3)
    JA, Jx, Jb = jacc.jacobian(lambda A, x, b: np.tanh(A @ x + b), argnums=(0, 1, 2))(A, x, b)
    t = 1 - np.tanh(A @ x + b) ** 2
    np.testing.assert_allclose(JA, np.einsum("i,ij,k->ijk", t, np.eye(3), x), atol=1e-14)
    np.testing.assert_allclose(Jx, t[:, None] * A, atol=1e-14)
    np.testing.assert_allclose(Jb, np.diag(t), atol=1e-14)


def test_structure_stays_structured():
    g = jacc.trace(lambda A, x: np.tanh(A @ x), A34, POS[0])
    node = g.outputs[0]
    mm = next(iter(g.nx.predecessors(node)))
    assert g.partial("A", mm).describe() == "I3 ⊗ dense 1×4"  # I ⊗ xᵀ: 4 values, not 3·12
    assert g.partial("A", mm).value_size == 4
    assert g.partial(mm, node).describe() == "diag 3"
    # batched X @ W.T w.r.t. X is I_B ⊗ W: the batch axis is a diagonal pair, W is the values
    X = rng.standard_normal((7, 4))
    g = jacc.trace(lambda X: X @ W.T, X)
    j = g.partial("X", g.outputs[0])
    assert j.pair == (0, -1) and j.value_size == W.size


def test_elementwise_chain_costs_linear():
    n, k = 200, 6

    def f(x):
        for _ in range(k):
            x = np.sin(x)
        return x

    g = jacc.trace(f, np.ones(n))
    prob = Problem.from_graph(g)
    for order in (prob.eliminable, prob.eliminable[::-1]):
        _, mults, _ = price(prob, order)
        assert mults == (k - 1) * n  # O(k·n), not O(k·n²)


def test_float32_is_kept_when_asked():
    J = jacc.jacobian(lambda x: np.sin(x) * 2.0, dtype=np.float32)(np.ones(3, np.float32))
    assert J.dtype == np.float32
    J = jacc.jacobian(lambda x: np.sin(x))(np.ones(3, np.float32))
    assert J.dtype == np.float64


def test_explicit_order_is_checked():
    f, args = CASES["lecture"]
    g = jacc.trace(f, *args)
    order = g.intermediates
    J = jacc.jacobian(f, argnums=(0, 1), strategy=order[::-1])(*args)
    assert J[0] == pytest.approx(5.5)
    with pytest.raises(jacc.OrderError, match="missing"):
        jacc.jacobian(f, argnums=(0, 1), strategy=order[:-1])(*args)
    with pytest.raises(jacc.OrderError, match="not eliminable"):
        jacc.jacobian(f, argnums=(0, 1), strategy=order + ["x1"])(*args)
    with pytest.raises(jacc.UnknownStrategyError, match="valid strategies: anneal, auto, chain, forward, markowitz"):
        jacc.jacobian(f, strategy="sideways")(*args)


def test_output_used_again_and_identity_output():
    def f(x):
        y = np.sin(x)
        return y, y * 2.0, x

    J = jacc.jacobian(f)(np.ones(3))
    np.testing.assert_allclose(J[0], np.diag(np.cos(np.ones(3))))
    np.testing.assert_allclose(J[1], 2 * np.diag(np.cos(np.ones(3))))
    np.testing.assert_allclose(J[2], np.eye(3))


def test_constant_and_unreached_outputs_give_zeros():
    J = jacc.jacobian(lambda x, y: (x * 2.0, np.sin(y)), argnums=0)(np.ones(2), np.ones(3))
    np.testing.assert_allclose(J[0], 2 * np.eye(2))
    assert J[1].shape == (3, 2) and not J[1].any()


def test_unsupported_numpy_function_is_named():
    with pytest.raises(jacc.UnsupportedOperationError, match=r"numpy.*scimath.arccos.*test_jacobians.py.*Supported"):
        jacc.jacobian(lambda x: np.lib.scimath.arccos(x).real)(np.ones(3))  # (sort_complex was the example)
    kept = {"asarray": NUMPY_ASARRAY}  # NumPy's own asarray, out of sight of jacc's replacements
    with pytest.raises(jacc.UnsupportedOperationError, match="np.stack"):
        jacc.jacobian(lambda x: kept["asarray"]([x[0], x[1]]))(np.ones(3))
    # bound to a module-level name, it is replaced during the trace (jacc.constructors.aliases)
    np.testing.assert_array_equal(jacc.jacobian(lambda x: NUMPY_ASARRAY([x[0], x[1]]))(np.ones(3)), np.eye(2, 3))


def test_shape_errors_name_the_op_and_place():
    with pytest.raises(jacc.TraceError, match=r"matmul at .*test_jacobians.py:\d+.*do not align"):
        jacc.jacobian(lambda x: A34 @ x)(np.ones(3))
    with pytest.raises(jacc.TraceError, match="cannot be broadcast"):
        jacc.jacobian(lambda x: x + np.ones(4))(np.ones(3))


def test_non_finite_inputs():
    with pytest.raises(ValueError, match=r"argument 'x' has a non-finite value nan at index \(1,\)"):
        jacc.jacobian(lambda x: np.sin(x))(np.array([1.0, np.nan]))
    J = jacc.jacobian(lambda x: np.sin(x), nonfinite="propagate")(np.array([1.0, np.nan]))
    assert np.isnan(J[1, 1]) and J[0, 0] == pytest.approx(np.cos(1.0))



OVERFLOWS = [  # finite arguments, an overflow in the primal and in the partials
    (lambda x: np.exp(x) * x, 800.0, np.inf),
    (lambda x: np.sum(np.exp(x) * x), np.array([800.0, 1.0]), np.array([np.inf, 2.0 * np.e])),
    (lambda x: np.tanh(x) @ np.exp(x[::-1]) / x, np.array([0.5, 0.0, 710.0]), None),
]


@pytest.mark.parametrize("backend", ["auto", "numpy", "c", "scalar", "interpret", "jax", "torch"])
@pytest.mark.parametrize("case", range(len(OVERFLOWS)))
def test_an_overflow_is_returned_silently_by_every_route_and_call(backend, case):
    # the array program warned from its second call (it recomputes the primal), the other routes
    # and the first call did not: a warning that depends on the route says nothing about the result
    from jacc import ccode

    if backend == "c" and ccode.compiler() is None:
        pytest.skip("no C compiler")
    if backend in ("jax", "torch"):
        pytest.importorskip(backend)
    fn, x, want = OVERFLOWS[case]
    # one order for every route: which entries overflow to inf and which to NaN depends on the order
    # (reverse gives NaN where forward gives inf), and "auto" searches for one within a time limit
    with np.errstate(all="ignore"):
        reference = jacc.jacobian(fn, strategy="forward", backend="interpret", retrace="always",
                                  nonfinite="propagate")(x)
    assert not np.isfinite(reference).all()
    if want is not None:
        np.testing.assert_allclose(reference, want)
    for retrace in ("always", True, False):
        jf = jacc.jacobian(fn, strategy="forward", backend=backend, retrace=retrace)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(4):  # traced, watched, then f skipped or the program alone
                np.testing.assert_allclose(jf(x), reference, rtol=1e-13)

def test_value_dependent_trace_is_marked():
    g = jacc.trace(lambda x: x * 2.0 if x.sum() > 0 else -x, np.ones(2))
    assert "comparison" in g.meta["value_dependent"][0]
    g = jacc.trace(lambda x: x * 2.0, np.ones(2))
    assert "value_dependent" not in g.meta


def test_a_jacobian_of_a_jacobian_is_refused_by_name():
    f = lambda x: (x ** 3).sum()  # noqa: E731
    with pytest.raises(jacc.UnsupportedOperationError, match=r"argument 'x' is traced by an enclosing jacc trace at "
                                                             r".*test_jacobians.py.*Hessian.*not supported"):
        jacc.jacobian(jacc.jacobian(f))(np.arange(3.0))


@pytest.mark.parametrize("options", [{}, {"sparse": True}, {"backend": "numpy"}, {"retrace": False}])
def test_a_jacobian_of_a_warm_jacobian_is_refused_by_name(options):
    """Once the inner Jacobian skips f (its program alone), the error was another one at each
    warmth (.tolist() of a traced value, .flags), or the call went through (found by a hunt; a
    minimize(..., hess=jacobian(g)) calls g twice first)."""
    g = jacc.jacobian(lambda x: (x ** 3).sum(), **options)
    for k in range(4):
        with pytest.raises(jacc.UnsupportedOperationError, match="traced by an enclosing jacc trace"):
            jacc.jacobian(g)(np.arange(3.0))
        g(np.arange(3.0) + 0.1 * k)


@pytest.mark.parametrize("f, shape", [
    (lambda x, c: c[:0, None] * 2.0, (0, 1, 2)),
    (lambda x, c: c[None, :0] * 2.0, (1, 0, 2)),
    (lambda x, c: c[:, 1:-1, None] * 2.0, (2, 0, 1)),
])
def test_an_empty_output_that_does_not_depend_on_the_argument(f, shape):
    # recorded as a constant from .tolist(), which loses every axis after an empty one:
    # (0, 1, 2) gave a Jacobian of shape (0, 2) (found by fuzzing)
    x, c = np.array([0.3, 0.5]), np.ones((2, 2))
    for kw in ({}, {"retrace": False}, {"backend": "interpret"}):
        jf = jacc.jacobian(f, 0, **kw)
        for _ in range(3):
            assert jf(x, c).shape == shape + (2,)
    g = jacc.trace(f, x, c, argnums=0)
    assert g.evaluate({"x": x})[g.outputs[0]].shape == shape


@pytest.mark.parametrize("backend", ["auto", "c", "jax"])
@pytest.mark.parametrize("retrace", [True, False])
def test_empty_inputs_with_several_blocks(backend, retrace):
    """The float route reshaped its entries to (-1, 0) when every input was empty (found by fuzzing)."""
    if backend == "jax":
        pytest.importorskip("jax")
    e = np.zeros(0)
    jf = jacc.jacobian(lambda a, b: (a * b, a.sum()), argnums=(0, 1), backend=backend, retrace=retrace)
    jd = jacc.jacobian(lambda d, y: y * 2.0, argnums=0, backend=backend, retrace=retrace)
    for _ in range(3):
        assert [[b.shape for b in row] for row in jf(e, e)] == [[(0, 0), (0, 0)], [(0,), (0,)]]
        assert jd({}, np.ones(2)) == {}


@pytest.mark.parametrize("backend", ["auto", "interpret"])
def test_an_empty_jacobian_with_paired_axes_allocates_nothing(backend):
    """∂(x.sum(axis=1))/∂x for x of shape (n, 0) has shape (n, n, 0): materialising it built the
    n × n diagonal first (7.28 TiB at n = 10⁶, a raw MemoryError; found by a helper's hunt)."""
    n = 10 ** 6
    J = jacc.jacobian(lambda x: x.sum(axis=1), backend=backend)(np.zeros((n, 0)))
    assert J.shape == (n, n, 0) and J.size == 0


@pytest.mark.parametrize("f", [lambda x: x.transpose(range(2)), lambda x: np.transpose(x, np.array([1, 0])),
                               lambda x: np.moveaxis(x, range(1), [1]), lambda x: x.reshape(np.array([3, 2])),
                               lambda x: x.reshape(range(3, 1, -1))],
                         ids=["range axes", "array axes", "moveaxis range", "array shape", "range shape"])
def test_axes_and_shapes_as_ranges_and_arrays(f):
    """NumPy reads a range or an integer array as several axes; the tracer asked for an int (and
    x @ S with a scipy.sparse.coo_array, whose product transposes by a range, failed so)."""
    x = np.arange(6.0).reshape(2, 3) / 7
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_an_argument_returned_beside_two_equal_outputs_under_jax():
    """The JAX program compared result arrays with == to find a repeated block."""
    pytest.importorskip("jax")
    x = np.linspace(0.1, 0.5, 5)
    for retrace in (True, False):
        jf = jacc.jacobian(lambda a: (a, np.tanh(a), np.tanh(a)), backend="jax", retrace=retrace)
        for _ in range(3):
            eye, d1, d2 = jf(x)
        np.testing.assert_array_equal(eye, np.eye(5))
        np.testing.assert_allclose(d1, np.diag(1 - np.tanh(x) ** 2), rtol=1e-14)
        np.testing.assert_array_equal(d1, d2)
        assert d1 is not d2
