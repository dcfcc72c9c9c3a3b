"""Reductions and scans (jacc.numpy_api.reductions): the cumsum/cumprod primitives and their
structured partials, exact derivatives at zeros, NaN-ignoring reductions, average, ptp,
logsumexp, and the refusals."""

import json
import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.trace import TraceError, UnsupportedOperationError, trace

HERE = "test_numpy_reductions.py:"


def _ops(f, *args):
    g = jacc.trace(f, *args)
    return g, [g.op(v) for v in g.topological_order() if g.op(v) != "input"]


def test_cumsum_is_one_op_with_a_batched_triangle():
    x = np.arange(12.0).reshape(3, 4)
    g, ops = _ops(lambda x: np.cumsum(x, axis=-1), x)
    assert ops == ["cumsum"]
    j = g.linearise(g.evaluate({"x": x}))[("x", g.outputs[0])]
    assert j.describe() == "I3 ⊗ dense 4×4"  # the other axis stays a pair, only the 4×4 triangle is stored
    assert j.values.tolist() == np.tril(np.ones((4, 4))).tolist()
    J = jacc.jacobian(lambda x: np.cumsum(x, axis=0))(x)
    want = np.einsum("ik,jl->ijkl", np.tril(np.ones((3, 3))), np.eye(4))
    np.testing.assert_array_equal(J, want)


def test_cumsum_without_axis_scans_the_flattened_array():
    x = np.arange(6.0).reshape(2, 3)
    J = jacc.jacobian(np.cumsum)(x)
    assert J.shape == (6, 2, 3)
    np.testing.assert_array_equal(J.reshape(6, 6), np.tril(np.ones((6, 6))))


def test_cumprod_is_exact_at_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    J = jacc.jacobian(np.cumprod)(x)
    want = np.zeros((5, 5))
    for j in range(5):
        for i in range(j + 1):
            want[j, i] = np.prod([x[t] for t in range(j + 1) if t != i])
    np.testing.assert_array_equal(J, want)
    assert J[1, 1] == 2.0 and J[2, 1] == 6.0 and J[4, 3] == 0.0  # no 0/0, no NaN


def test_cumprod_partial_keeps_the_other_axes_paired():
    g = jacc.trace(lambda x: np.cumprod(x, axis=0), np.ones((3, 5)))
    assert g.partial("x", g.outputs[0]).describe() == "diag5 ⊗ dense 3×3"


def test_prod_is_exact_at_zeros():
    J = jacc.jacobian(np.prod)(np.array([2.0, 0.0, 3.0]))
    assert J.tolist() == [0.0, 6.0, 0.0]
    J2 = jacc.jacobian(lambda x: np.prod(x, axis=1))(np.array([[0.0, 0.0, 3.0], [1.0, 2.0, 3.0]]))
    assert J2[0].tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert J2[1].tolist() == [[0.0, 0.0, 0.0], [6.0, 3.0, 2.0]]


def test_scan_graph_files_round_trip(tmp_path):
    x = np.random.default_rng(1).uniform(0.5, 1.5, (2, 3))
    g = jacc.trace(lambda x: np.cumprod(np.cumsum(x, axis=0), axis=-1), x)
    p = tmp_path / "scan.json"
    g.save(p)
    h = jacc.load(p)
    assert [h.op(v) for v in h.topological_order()] == ["input", "cumsum", "cumprod"]
    np.testing.assert_array_equal(h.evaluate({"x": x})[h.outputs[0]], np.cumprod(np.cumsum(x, 0), -1))
    data = json.loads(p.read_text())
    data["nodes"][0]["params"]["axis"] = 2
    p.write_text(json.dumps(data))
    with pytest.raises(jacc.GraphError, match="axis 2 is out of range"):
        jacc.load(p)
    del data["nodes"][0]["params"]["axis"]
    p.write_text(json.dumps(data))
    with pytest.raises(jacc.GraphError, match="axis: missing"):
        jacc.load(p)


def test_scans_refuse_out_and_bad_axes():
    out = np.zeros(3)
    with pytest.raises(UnsupportedOperationError, match=f"numpy.cumsum with out=.*{HERE}"):
        jacc.jacobian(lambda x: np.cumsum(x, out=out))(np.ones(3))
    with pytest.raises(TraceError, match=f"numpy.cumprod at .*{HERE}.*axis 1 is out of range"):
        jacc.jacobian(lambda x: np.cumprod(x, axis=1))(np.ones(3))


def test_nan_reductions_ignore_nan_and_mark_the_trace():
    x = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, 5.0]])
    J = jacc.jacobian(lambda x: np.nansum(x, axis=1), nonfinite="propagate")(x)
    assert J.tolist() == [[[1, 0, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 1]]]
    J = jacc.jacobian(lambda x: np.nanmean(x, axis=1), nonfinite="propagate")(x)
    np.testing.assert_allclose(J[0, 0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(J[1, 1], [1 / 3] * 3)
    J = jacc.jacobian(lambda x: np.nanmax(x, axis=1), nonfinite="propagate")(x)
    assert J.tolist() == [[[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]]
    J = jacc.jacobian(lambda x: np.nanprod(x), nonfinite="propagate")(x)
    assert J[0].tolist() == [120.0, 0.0, 60.0]
    g = jacc.trace(lambda x: np.nansum(x), x)
    assert any("isnan" in s and HERE in s for s in g.meta["value_dependent"])


def test_nanmax_of_an_all_nan_slice_is_nan_as_in_numpy():
    x = np.array([[np.nan, np.nan], [1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = jacc.trace(lambda x: np.nanmin(x, axis=1), x)
        y = g.evaluate({"x": x})[g.outputs[0]]
        J = jacc.jacobian(lambda x: np.nanmin(x, axis=1), nonfinite="propagate")(x)
    assert np.isnan(y[0]) and y[1] == 1.0
    assert J.tolist() == [[[0, 0], [0, 0]], [[0, 0], [1, 0]]]


def test_max_ties_share_the_derivative():
    # the convention of docs/conventions.md (as JAX): k tied maxima get 1/k each
    J = jacc.jacobian(lambda x: np.max(x, axis=-1))(np.array([[3.0, 1.0, 3.0], [0.0, 2.0, 1.0]]))
    assert J[0].tolist() == [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]
    assert J[1].tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    J = jacc.jacobian(np.ptp)(np.array([1.0, 4.0, 1.0]))
    assert J.tolist() == [-0.5, 1.0, -0.5]


def test_average_weights_and_refusals():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    w = np.array([1.0, 0.0, 3.0])
    J = jacc.jacobian(lambda x: np.average(x, axis=1, weights=w))(x)
    assert J[0, 0].tolist() == [0.25, 0.0, 0.75] and J[0, 1].tolist() == [0.0, 0.0, 0.0]
    Jw = jacc.jacobian(lambda w: np.average(x, axis=1, weights=w))(w)
    np.testing.assert_allclose(Jw[0], (x[0] - np.average(x[0], weights=w)) / 4)
    with pytest.raises(UnsupportedOperationError, match=f"numpy.average with returned=True.*{HERE}"):
        jacc.jacobian(lambda x: np.average(x, weights=w, axis=1, returned=True))(x)
    with pytest.raises(TraceError, match=f"numpy.average at .*{HERE}.*weights of shape \\(2,\\)"):
        jacc.jacobian(lambda x: np.average(x, weights=np.ones(2), axis=1))(x)
    with pytest.raises(ZeroDivisionError, match="weights sum to zero"):
        jacc.jacobian(lambda x: np.average(x, weights=np.zeros(3), axis=1))(x)


def test_average_traced_weights_summing_to_zero_raise_as_numpy_on_every_call():
    from conftest import assert_later_calls_raise

    x = np.array([1.0, 2.0, 3.0])
    assert_later_calls_raise(lambda w: np.average(x, weights=w), np.array([1.0, 2.0, 3.0]),
                             np.array([1.0, -2.0, 1.0]), ZeroDivisionError, "weights sum to zero")


def test_where_and_keepdims_on_sum_and_mean():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    mask = np.array([True, False, True])
    J = jacc.jacobian(lambda x: np.mean(x, axis=1, where=mask, keepdims=True))(x)
    assert J.shape == (2, 1, 2, 3)
    assert J[0, 0, 0].tolist() == [0.5, 0.0, 0.5] and J[0, 0, 1].tolist() == [0.0, 0.0, 0.0]


def test_var_ddof_and_tuple_axes():
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    J = jacc.jacobian(lambda x: np.var(x, axis=(0, 2), ddof=1, keepdims=True))(x)
    d = x - x.mean(axis=(0, 2), keepdims=True)
    want = np.zeros((1, 3, 1) + x.shape)
    for j in range(3):
        want[0, j, 0, :, j, :] = 2 * d[:, j, :] / (8 - 1)
    np.testing.assert_allclose(J, want, atol=1e-12)


def test_logsumexp():
    special = pytest.importorskip("scipy.special")
    x = np.array([[1000.0, 1001.0, 999.0], [0.5, -1.0, 2.0]])
    y = jacc.trace(lambda x: special.logsumexp(x, axis=1), x)
    np.testing.assert_allclose(y.evaluate({"x": x})[y.outputs[0]], special.logsumexp(x, axis=1))
    J = jacc.jacobian(lambda x: special.logsumexp(x, axis=1))(x)  # finite at large values: softmax rows
    soft = np.exp(x - special.logsumexp(x, axis=1, keepdims=True))
    np.testing.assert_allclose(J[0, 0], soft[0], rtol=1e-12)
    np.testing.assert_allclose(J[1, 1], soft[1], rtol=1e-12)
    b = np.array([1.0, 0.0, 2.0])
    Jb = jacc.jacobian(lambda x: special.logsumexp(x, b=b))(x[1])
    assert Jb[1] == 0.0
    # return_sign: log |Σ b·exp(x)|, whose slope is b·exp(x)/Σ b·exp(x) whatever the sum's sign
    signed = np.array([1.0, -3.0, -0.5])  # (a negative sum)
    f = lambda x: special.logsumexp(x, b=signed, return_sign=True)  # noqa: E731
    value, J = jacc.value_and_jacobian(lambda x: f(x)[0])(x[1])
    assert value == pytest.approx(f(x[1])[0], rel=1e-14) and f(x[1])[1] == -1.0
    w = signed * np.exp(x[1])
    np.testing.assert_allclose(J, w / w.sum(), rtol=1e-12)
    # untraced calls reach SciPy's own function
    assert special.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)[1] == -1.0


def test_logsumexp_shifts_by_each_calls_max():
    # the shift was a constant of the trace: traced at 0, a plan then overflowed at 1000 (NaN)
    special = pytest.importorskip("scipy.special")
    f = lambda x: special.logsumexp(x.reshape(2, 3), axis=1)  # noqa: E731
    jf = jacc.jacobian(f, retrace=False, nonfinite="propagate")
    jf(np.zeros(6))
    for x in (np.arange(6.0) * 300, np.array([-np.inf, 0.0, 1.0, -np.inf, -np.inf, -np.inf])):
        with np.errstate(all="ignore"):
            want = jacc.jacobian(f, compile=False, nonfinite="propagate")(x)
        np.testing.assert_allclose(jf(x), want, rtol=1e-13)
    assert np.isfinite(jf(np.arange(6.0) * 300)).all()


@pytest.mark.parametrize("f", [
    lambda x: np.sum(x * x, axis=0), lambda x: np.max(np.sin(x), axis=-1), lambda x: np.min(x, axis=0),
    lambda x: np.prod(x * x, axis=0), lambda x: x.sum(axis=0, keepdims=True) * 2.0,
    lambda x: np.cumsum(x * x, axis=0), lambda x: np.cumprod(np.exp(x), axis=-1),
    lambda x: np.repeat(x * x, 3, axis=0),
], ids=["sum", "max", "min", "prod", "sum method", "cumsum", "cumprod", "repeat"])
def test_axis_0_of_a_0d_array_as_numpy_takes_it(f):
    # NumPy's ufunc reductions, scans and repeat accept the integer axis 0 or -1 on a 0-d array
    # (as the lone axis of a one-element array); jacc refused them (about 900 refusals in a fuzz run)
    x = np.array(0.7)
    J = jacc.jacobian(f)(x)
    assert np.shape(J) == np.shape(f(x))
    np.testing.assert_allclose(J, (f(x + 1e-6) - f(x - 1e-6)) / 2e-6, rtol=1e-6)


def test_what_numpy_refuses_on_a_0d_array_stays_refused():
    x = np.array(0.7)
    for f in (lambda x: np.mean(x, axis=0), lambda x: np.sum(x, axis=(0,)), lambda x: np.sum(x, axis=1)):
        with pytest.raises(np.exceptions.AxisError):
            f(x)
        with pytest.raises(jacc.TraceError, match="axis"):
            jacc.jacobian(f)(x)


def test_block_reductions_by_reduceat_are_one_reduction():
    """np.add.reduceat(x, range(0, n, k)) over 1,000 numbers in blocks of 10: a selection and a sum
    per block (201 vertices) planned for 0.8 s and ran 58× slower than reverse mode; blocks of
    one length are one reduction of the reshaped axis. Uneven slices stay a selection per slice."""
    x = np.linspace(0.5, 1.5, 1000)
    f = lambda x: np.add.reduceat(x ** 2, np.arange(0, 1000, 10))  # noqa: E731
    g = trace(f, x)
    assert len(g.nx) <= 5 and "concatenate" not in {g.op(v) for v in g.nx}
    np.testing.assert_allclose(jacc.jacobian(f)(x), np.kron(np.eye(100), np.ones(10)) * (2 * x), rtol=1e-15)
    h = lambda x: np.maximum.reduceat(x, [0, 3, 6], axis=1)  # noqa: E731
    X = np.arange(16.0).reshape(2, 8) % 7
    assert "concatenate" in {trace(h, X).op(v) for v in trace(h, X).nx}
    np.testing.assert_array_equal(trace(h, X).evaluate({"x": X})[trace(h, X).outputs[0]], h(X))
    # sums over uneven slices at increasing indices: one scatter-add; other indices, the composition
    cuts = np.array([0, 3, 4, 9, 100, 517])
    s = lambda x: np.add.reduceat(x ** 2, cuts)  # noqa: E731
    assert "scatter_add" in {trace(s, x).op(v) for v in trace(s, x).nx} and len(trace(s, x).nx) <= 6
    ends = list(cuts[1:]) + [1000]
    want = np.zeros((6, 1000))
    for k, (a, b) in enumerate(zip(cuts, ends)):
        want[k, a:b] = 2 * x[a:b]
    np.testing.assert_allclose(jacc.jacobian(s)(x), want, rtol=1e-15)
    np.testing.assert_allclose(trace(s, x).evaluate({"x": x})[trace(s, x).outputs[0]], s(x), rtol=1e-13)
    u = lambda x: np.add.reduceat(x, [2, 0, 5])  # noqa: E731
    assert "scatter_add" not in {trace(u, x).op(v) for v in trace(u, x).nx}


@pytest.mark.parametrize("fn", [np.median, np.nanmedian])
def test_median_is_the_middle_entry_as_numpy_takes_it_next_to_an_overflowed_one(fn):
    """The linear quantile read the upper neighbour with weight 0: 0·inf made the median NaN
    where NumPy's is the middle entry (exp overflowing above it), and its Jacobian NaN."""
    x = np.array([1.0, 2.0, 800.0])
    with np.errstate(over="ignore"):
        for f in (lambda x: fn(np.exp(x)), lambda x: fn(np.exp(x).reshape(1, 3), axis=1),
                  lambda x: fn(np.exp(np.concatenate([x, x[:1] - 0.5])))):  # (an even count: the middle two's mean)
            g = jacc.trace(f, x)
            np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
        J = jacc.jacobian(lambda x: np.sin(fn(np.exp(x))))(x)
    np.testing.assert_allclose(J[:2], [0.0, np.cos(np.e ** 2) * np.e ** 2], rtol=1e-12)  # (J[2]: 0·inf, as JAX's)


def test_empty_clip_bounds_and_the_2_norm_of_an_empty_matrix_follow_numpy():
    """Constant clip bounds of shape (0, 3) lost their shape as nested lists (a raw ValueError; (0, 1)
    gave a (0, 0) result); the 2-norm of an empty matrix divided by its size 0 (ZeroDivisionError),
    its 1- and inf-norms were refused; NumPy's are 0."""
    x = np.array([0.3, -0.7, 1.2])
    for lo in (np.zeros((0, 3)), np.zeros((0, 1)), np.zeros((2, 0, 3))):
        want = np.clip(x, lo, None)
        assert jacc.jacobian(lambda x: np.clip(x, lo, None))(x).shape == want.shape + x.shape  # noqa: B023
    for e in (np.zeros((0, 3)), np.zeros((2, 0))):  # (ord 1 and inf: "max over an empty axis" was refused)
        for order in (2, 1, np.inf, "nuc", None):
            assert np.linalg.norm(e, order) == 0.0
            g = jacc.trace(lambda e: np.linalg.norm(e, order), e)  # noqa: B023
            assert g.evaluate({"e": e})[g.outputs[0]] == 0.0
            assert jacc.jacobian(lambda e: np.linalg.norm(e, order))(e).shape == e.shape  # noqa: B023


@pytest.mark.parametrize("f", [lambda x: np.std(x, axis=0), lambda x: x.std(axis=(0,), keepdims=True),
                               lambda x: np.std(x[:, 2]), lambda x: np.nanstd(x, axis=0),
                               lambda x: np.nanstd(np.where(x > 2.5, x, np.nan), axis=1)])
def test_std_of_one_value_has_slope_zero(f):
    # one value has standard deviation 0 whatever it is: √var's slope there was ∞·0 = NaN
    x = np.array([[0.5, 1.0, 2.0, 3.0]])
    J = jacc.jacobian(f)(x)
    np.testing.assert_array_equal(J, np.zeros(np.shape(f(x)) + x.shape))


_NAN_DATA = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, np.nan], [-0.7, 2.0, 0.5], [np.nan, 0.9, -0.4], [1.5, -0.3, 1.2]])


@pytest.mark.parametrize("name,reduce", [
    ("nanmean", lambda y: np.nanmean(y, axis=0)), ("nanmean, all axes", np.nanmean),
    ("nansum", lambda y: np.nansum(y, axis=0)), ("nanvar", lambda y: np.nanvar(y, axis=0)),
    ("nanstd, ddof", lambda y: np.nanstd(y, axis=1, ddof=1)), ("nanmax", lambda y: np.nanmax(y, axis=0)),
    ("nanprod", lambda y: np.nanprod(y, axis=0)), ("nancumsum", lambda y: np.nancumsum(y, axis=0)),
    ("nanprod, all axes", np.nanprod), ("nanvar, all axes", np.nanvar)])
@pytest.mark.parametrize("options", [{}, {"compile": False}, {"retrace": False}, {"strategy": "reverse"}],
                         ids=["defaults", "executor", "once", "reverse"])
def test_nan_aware_reductions_of_data_with_nan_have_finite_jacobians(name, reduce, options):
    """nanmean(D * b) w.r.t. b with NaN in the data D: the NaN entries' 0 times ∂(D·b)/∂b = NaN
    made the Jacobian NaN where it is finite (hunt BE). They are cut off from the array instead,
    and where the plan is reverse mode (its scatter of the cut's cotangent stores that 0 again:
    auto's plan of a whole-array nanprod; hunt BF), forward mode's blocks are taken.
    (nanmedian and nanquantile weigh the order statistics found at each call, so one trace serves
    every point: there the 0 weight of a NaN entry still meets a NaN partial, as in JAX.)"""
    def f(b, D):
        return reduce(D * b)

    jf = jacc.jacobian(f, **options)
    for b in (np.array([2.1, 1.7, 2.6]), np.array([1.9, 2.2, 1.4]), np.array([2.5, 1.1, 1.8])):
        J = jf(b, _NAN_DATA)
        assert np.isfinite(J).all(), name
        np.testing.assert_allclose(J, fd_jacobian(f, (b, _NAN_DATA), 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("f", [
    lambda a: np.hypot.reduce(a, axis=None), lambda a: np.hypot.reduce(a, axis=(0, 2), keepdims=True),
    lambda a: np.fmax.reduce(a, axis=1, initial=1.5), lambda a: np.subtract.reduce(a, axis=-1),
    lambda a: np.divide.reduce(a, axis=0, initial=2.0), lambda a: np.power.reduce(a, axis=2),
    lambda a: np.arctan2.accumulate(a, axis=1), lambda a: np.fmin.accumulate(a, axis=-1),
    lambda a: np.subtract.accumulate(a), lambda a: np.fmax.reduce(a[0, 0, 0], axis=None),
    lambda a: np.hypot.reduce(a[0, 0, 0]), lambda a: np.hypot.accumulate(a[0, 0], axis=None),  # (hunt BZ: raised)
    lambda a: np.subtract.accumulate(a[:, :0], axis=1).sum() + a[0, 0, 0],
])
def test_reduce_and_accumulate_of_other_binary_ufuncs_fold_as_numpy(f):
    """A binary ufunc with no reduction rule of its own: NumPy's left fold, step by step (these
    were refused), its values NumPy's bit for bit."""
    a = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4, 2))
    value, J = jacc.value_and_jacobian(f)(a)
    np.testing.assert_array_equal(value, f(a))
    np.testing.assert_allclose(J, fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-8)


def test_folds_refuse_what_numpy_refuses_and_what_they_do_not_record():
    a = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4))
    with pytest.raises(ValueError, match="not reorderable"):  # NumPy's own errors
        jacc.jacobian(lambda a: np.subtract.reduce(a, axis=None))(a)
    with pytest.raises(ValueError, match="no identity"):
        jacc.jacobian(lambda a: np.fmax.reduce(a[:0]))(a)
    with pytest.raises(jacc.UnsupportedOperationError, match="fmax.reduce with where="):
        jacc.jacobian(lambda a: np.fmax.reduce(a, where=a > 1, initial=0.0))(a)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"hypot.reduce of 1,200 entries.*FOLD_MAX"):
        jacc.jacobian(lambda a: np.hypot.reduce(np.tile(a.ravel(), 100)))(a)


def test_a_fold_applies_the_elementwise_tie_rule_at_each_step():
    # docs/conventions.md: fmax's ½ at each step of the left fold (np.max's k tied maxima get 1/k)
    np.testing.assert_array_equal(jacc.jacobian(lambda a: np.fmax.reduce(a))(np.full(3, 2.0)), [0.25, 0.25, 0.5])
