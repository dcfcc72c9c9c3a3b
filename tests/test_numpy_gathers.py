"""Gathers and value-dependent selections: lazy gathers with repeated indices, the permutation
fixed per call, NumPy's values for quantiles, graph files, and the refusals."""

import warnings

import numpy as np
import pytest
from conftest import fd_jacobian, peak_memory

import jacc
from jacc import structure as S
from jacc.eliminate import Problem, accumulate, price
from jacc.graph import Graph
from jacc.trace import TraceError, UnsupportedOperationError

STRATEGIES = ("forward", "reverse", "markowitz")


def _edges(g):
    return {(g.op(v), g.partial(u, v).describe()) for u, v in g.nx.edges}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_repeated_indices_sum_in_reverse_mode(strategy):
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    f = lambda x: np.sum(np.sin(x)[[0, 0, 2, 0]] * w)  # noqa: E731
    x = np.array([0.3, -0.2, 0.5])
    g = jacc.jacobian(f, strategy=strategy)(x)
    want = np.array([1011.0 * np.cos(0.3), 0.0, 100.0 * np.cos(0.5)])
    np.testing.assert_allclose(g, want, rtol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fancy_index_jacobian_is_a_0_1_gather(strategy):
    x = np.arange(12.0).reshape(3, 4)
    J = jacc.jacobian(lambda x: x[[2, 0, 2]][:, [1, 1]], strategy=strategy)(x)
    want = np.zeros((3, 2, 3, 4))
    for i, r in enumerate([2, 0, 2]):
        for j, c in enumerate([1, 1]):
            want[i, j, r, c] = 1.0
    np.testing.assert_array_equal(J, want)


def test_advanced_index_partial_is_lazy_and_keeps_passthrough_axes_diagonal():
    g = jacc.trace(lambda x: x[:, [3, 0, 3]], np.ones((5, 4)))
    [(u, v)] = g.nx.edges
    j = g.partial(u, v)
    assert j.describe() == "select 5×4→5×3" and j.values is None
    assert j.pair == (0, -1)  # the rows pass through: I₅ ⊗ gather, not a 15×20 matrix
    assert isinstance(j.select, S.Take) and j.select.out_axes == (1,) and j.select.in_axes == (1,)
    x = np.random.default_rng(1).normal(size=(5, 4))
    num = g.linearise(g.evaluate({"x": x}))[u, v]
    np.testing.assert_array_equal(num.select.flat, [3, 0, 3])
    np.testing.assert_array_equal(num.to_dense(), np.einsum("ik,jl->ijkl", np.eye(5), np.eye(4)[[3, 0, 3]]))


@pytest.mark.parametrize("f", [
    lambda x: np.tanh(x)[:, [1, 1, 3]],
    lambda x: np.sin(x[[0, 2, 2]]).sum(axis=0),
    lambda x: np.exp(x.reshape(-1)[[5, 5, 0]]),
    lambda x: np.tanh(x)[[0, 2]][:, [1, 1, 3]] * x[0, 0],
    lambda x: np.sort(np.sin(x), axis=0)[1:],
    lambda x: np.median(np.cos(x), axis=1),
    lambda x: x[np.array([[True, False, True, True]] * 3)].sum(),
    lambda x: np.sort((x * x.mean()).ravel()),  # a gather of a broadcast: priced without positions
], ids=["after-tanh", "rows-sum", "ravel-gather", "two-gathers", "sort", "median", "mask", "sort-of-scaled"])
def test_gathers_cost_no_multiplication_and_priced_equals_executed(f):
    priced_as_executed_in_both_orders(f, np.random.default_rng(2).normal(size=(3, 4)))


def priced_as_executed_in_both_orders(f, x):
    """Forward- and reverse-ordered elimination of f's trace: pricing predicts the executed
    multiplications (per step) and peak, and the Jacobian matches finite differences."""
    g = jacc.trace(f, x)
    prob = Problem.from_graph(g)
    vals = g.evaluate({"x": x})
    for order in (prob.eliminable, prob.eliminable[::-1]):
        steps, mults, peak = price(prob, order)
        acc = accumulate(prob, vals, order)
        assert acc.mults == mults and acc.peak_bytes == peak
        assert [s.mults for s in acc.steps] == [s.mults for s in steps]
        [(_, J)] = acc.blocks.items()
        np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_gather_after_reshape_composes_into_one_gather():
    a = S.reshape_map((12,), (3, 4))
    t = S.take_selection((3,), (12,), [-1], np.array([5, 5, 0]))
    c, mults = S.product(t, a)
    assert mults == 0 and isinstance(c.select, S.Take) and c.in_shape == (3, 4)
    np.testing.assert_array_equal(c.select.flat, [5, 5, 0])
    np.testing.assert_array_equal(c.to_dense(), np.eye(12)[[5, 5, 0]].reshape(3, 3, 4))


def test_scatter_of_a_structured_row_adds_repeated_positions():
    t = S.take_selection((4,), (3,), [-1], np.array([1, 1, 0, 1]))
    a = S.dense((2,), (4,), np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 0.0, 0.5]]))
    c, mults = S.product(a, t)
    assert mults == 0
    np.testing.assert_array_equal(c.to_dense(), a.values @ np.eye(3)[[1, 1, 0, 1]])


@pytest.mark.parametrize("rearrange, order, read", [
    (np.sort, lambda v: np.argsort(v, kind="stable"), False),  # a recorded op: the program sorts
    (lambda v: np.partition(v, 1), lambda v: np.argpartition(v, 1), True),  # a gather read at each trace
], ids=["sort", "partition"])
def test_order_differs_between_calls_each_result_is_right(rearrange, order, read):
    w = np.array([1.0, 2.0, 3.0, 4.0])
    f = lambda x: rearrange(x * x) * w  # noqa: E731
    jf = jacc.jacobian(f)
    points = [np.array([0.1, 0.4, -0.9, 0.7]), np.array([0.8, -0.3, 0.2, 0.5]), np.array([0.1, 0.4, -0.9, 0.7])]
    for x in points:
        J = jf(x)
        np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
        perm = order(x * x)
        want = np.zeros((4, 4))
        want[np.arange(4), perm] = w * 2 * x[perm]
        np.testing.assert_allclose(J, want, rtol=1e-12)
    # one traced structure: a new permutation read at the point builds a new graph with the cached
    # plan; where the program finds the order itself, the graph serves every point (the third call,
    # at the first point again, skips f: np.sort held in a closure is NumPy's, guarded as np.sort)
    assert jf.cache.misses == 1 and jf.cache.rebuilds == (2 if read else 0)
    assert (jf.cache.hits, jf.cache.skipped) == ((2, 0) if read else (1, 1))
    g = jacc.trace(f, points[0])
    assert bool(g.meta.get("value_dependent")) == read


def test_argsort_and_argmax_of_1d_keys_are_orders_and_on_rows_constants():
    seen = {}

    def f(x):
        seen["order"], seen["best"] = np.argsort(x), np.argmax(x)
        return x[seen["order"]] * x[seen["best"]]

    x = np.array([0.3, -1.0, 2.0, 0.5])
    g = jacc.trace(f, x)
    assert type(seen["order"]).__name__ == type(seen["best"]).__name__ == "Order"
    assert seen["order"].value.tolist() == [1, 0, 3, 2] and int(seen["best"].value) == 2
    assert not g.meta.get("value_dependent")  # both indexings are recorded
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
    rows = lambda x: x * np.argmax(x.reshape(2, 2), axis=1).sum()  # noqa: E731  integers on rows: read
    assert ["numpy.argmax" in w for w in jacc.trace(rows, x).meta["value_dependent"]] == [True]


def test_where_with_a_traced_condition_reads_it_at_the_point():
    f = lambda x: np.where(np.sin(x), x * 2.0, -x)  # noqa: E731
    x = np.array([0.0, 1.0, -2.0])
    g = jacc.trace(f, x)
    assert any("numpy.where" in w for w in g.meta["value_dependent"])
    np.testing.assert_array_equal(jacc.jacobian(f)(x), np.diag([-1.0, 2.0, 2.0]))
    (idx,) = jacc.trace(lambda x: x[np.where(x > 0)], x).nx.nodes["v1"]["params"]["index"]
    assert idx == ["array", [1]]


@pytest.mark.parametrize("q, axis, keepdims", [
    (0.5, None, False), (0.0, 0, False), (1.0, 1, True), ([0.1, 0.5, 0.77], -1, False),
    ([0.25, 0.999], (0, 2), True), (np.array([[0.3], [0.6]]), 1, False),
])
def test_quantile_values_match_numpy(q, axis, keepdims):
    x = np.random.default_rng(3).normal(size=(3, 5, 4))
    got = jacc.trace(lambda x: np.quantile(x, q, axis=axis, keepdims=keepdims), x)
    want = np.quantile(x, q, axis=axis, keepdims=keepdims)
    val = got.evaluate({"x": x})[got.outputs[0]]
    assert val.shape == want.shape
    np.testing.assert_allclose(val, want, rtol=1e-14, atol=1e-15)


def test_median_and_percentile_values_match_numpy():
    x = np.random.default_rng(4).normal(size=(4, 6))
    for f in (np.median, lambda x: np.median(x, axis=0), lambda x: np.percentile(x, [10, 50], axis=1)):
        g = jacc.trace(f, x)
        np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-14)


def test_median_of_even_count_shares_the_derivative():
    J = jacc.jacobian(np.median)(np.array([4.0, 1.0, 3.0, 2.0]))
    np.testing.assert_array_equal(J, [0.0, 0.0, 0.5, 0.5])  # 3.0 and 2.0 are the middle pair


def test_clip_at_the_bounds_passes_the_derivative():
    J = jacc.jacobian(lambda x: np.clip(x, -0.5, np.array([0.5, 0.5, 1.0, 1.0])))(np.array([-0.5, 0.5, 2.0, -1.0]))
    np.testing.assert_array_equal(J.diagonal(), [1.0, 1.0, 0.0, 0.0])


def test_gather_graph_files_round_trip(tmp_path):
    mask = np.array([[True, False, True]] * 3)
    f = lambda x: (np.sort(x, axis=0)[:, [2, 0, 2]] + np.take_along_axis(x, np.array([[1, 0, 0]]), axis=0)  # noqa: E731
                   + x[mask].sum())
    x = np.random.default_rng(5).normal(size=(3, 3))
    g = jacc.trace(f, x)
    assert {"gather", "getitem"} <= {g.op(v) for v in g.intermediates}
    path = tmp_path / "g.json"
    g.save(path)
    h = jacc.load(path)
    assert _edges(h) == _edges(g)
    for a, b in ((g, h),):
        va, vb = a.evaluate({"x": x}), b.evaluate({"x": x})
        np.testing.assert_array_equal(va[a.outputs[0]], vb[b.outputs[0]])
    pg, ph = Problem.from_graph(g), Problem.from_graph(h)
    ja = accumulate(pg, g.evaluate({"x": x}), pg.eliminable).blocks
    jb = accumulate(ph, h.evaluate({"x": x}), ph.eliminable).blocks
    np.testing.assert_array_equal(next(iter(ja.values())), next(iter(jb.values())))


def test_bincount_is_a_scatter_add_that_round_trips_through_a_file(tmp_path):
    bins = np.array([4, 0, 4, 1, 4])
    f = lambda w: np.sin(np.bincount(bins, weights=w * w, minlength=6))  # noqa: E731
    w = np.random.default_rng(6).normal(size=5)
    g = jacc.trace(f, w)
    assert "scatter_add" in {g.op(v) for v in g.intermediates}
    J = jacc.jacobian(f)(w)
    np.testing.assert_allclose(J, fd_jacobian(f, [w], 0), rtol=1e-6, atol=1e-8)
    want = np.zeros((6, 5))
    want[bins, np.arange(5)] = np.cos(np.bincount(bins, weights=w * w, minlength=6))[bins] * 2 * w
    np.testing.assert_allclose(J, want, rtol=1e-14)
    g.save(tmp_path / "g.json")
    h = jacc.load(tmp_path / "g.json")
    np.testing.assert_array_equal(h.evaluate({"w": w})[h.outputs[0]], f(w))
    p = jacc.plan(h, "reverse")
    assert accumulate(p.problem, h.evaluate({"w": w}), p.order).mults == p.mults
    with pytest.raises(Exception, match=r"scatter_add positions must be integers in \[0, 6\)"):
        bad = Graph("bad")
        bad.add_input("w", (2,))
        bad.add_node("y", "scatter_add", ["w", np.array([0.0, 6.0])], {"size": 6})
        bad.evaluate({"w": np.ones(2)})


def test_an_assignment_records_a_put_that_round_trips_and_is_checked(tmp_path):
    """x[i] = v records put(x, v, positions): v's partial places each value once, so a stencil
    written into a buffer composes into gathers (3 entries per row and no multiplications, not a
    block and a mask); a graph file's put must not repeat a position."""
    def f(u):
        lap = np.zeros_like(u)
        lap[1:-1] = u[:-2] - 2.0 * u[1:-1] + u[2:]
        return lap
    u = np.random.default_rng(7).normal(size=7)
    g = jacc.trace(f, u)
    ops = [g.op(v) for v in g.topological_order()]
    assert "put" in ops and "where" not in ops and "scatter_add" not in ops
    g.save(tmp_path / "g.json")
    h = jacc.load(tmp_path / "g.json")
    np.testing.assert_array_equal(h.evaluate({"u": u})[h.outputs[0]], f(u))
    for order in ("forward", "reverse"):
        p = jacc.plan(h, order)
        acc = accumulate(p.problem, h.evaluate({"u": u}), p.order, sparse=True)
        J = acc.blocks[h.outputs[0], "u"]
        np.testing.assert_allclose(J.toarray(), fd_jacobian(f, [u], 0), atol=1e-8)
        assert J.nnz == 3 * 5 and acc.mults == p.mults
    assert jacc.plan(h, "forward").mults == 0  # (the mask as a diagonal of values cost one per written entry)
    bad = Graph("bad")
    bad.add_input("w", (2,))
    bad.add_node("y", "put", [np.zeros(6), "w", np.array([3.0, 3.0])], {})
    with pytest.raises(Exception, match="put positions must be distinct"):
        bad.evaluate({"w": np.ones(2)})


def test_gather_with_bad_positions_is_refused():
    g = Graph("bad")
    g.add_input("x", (3,))
    with pytest.raises(Exception, match=r"gather positions must be integers in \[0, 3\)"):
        g.add_node("y", "gather", ["x", np.array([0.0, 3.0])])
        g.evaluate({"x": np.ones(3)})


def _raises(exc, pattern, f, *args):
    with pytest.raises(exc, match=pattern) as e:
        jacc.trace(f, *args)
    return str(e.value)


@pytest.mark.parametrize("f, pattern", [
    (lambda x: np.take(x, [0], out=np.empty(1)), r"numpy\.take with out="),
    (lambda x: np.take(x, x), r"numpy\.take with traced indices"),
    (lambda x: np.take(x, [0.5]), r"numpy\.take .*indices must be integers"),
    (lambda x: np.quantile(x, 0.5, weights=np.ones(4)), r"numpy\.quantile with weights="),
    (lambda x: np.quantile(x, x[0]), r"numpy\.quantile with traced quantiles"),
    (lambda x: np.sort(x, order="a"), r"numpy\.sort with order="),
    (lambda x: np.argmax(x, out=np.empty((), int)), r"numpy\.argmax with out="),
    (lambda x: np.take_along_axis(x, x, axis=0), r"numpy\.take_along_axis with traced indices"),
])
def test_unsupported_arguments_name_function_argument_and_call_site(f, pattern):
    msg = _raises(UnsupportedOperationError, pattern, f, np.linspace(0.1, 0.4, 4))
    assert "test_numpy_gathers.py" in msg


@pytest.mark.parametrize("f, pattern", [
    (lambda x: np.take(x, [7]), r"out of bounds"),
    (lambda x: np.compress([False, False, False, False, True], x), r"selects beyond the axis of size 4"),
    (lambda x: np.take_along_axis(x, np.array([0, 4]), axis=0), r"out of bounds for axis 0"),
    (lambda x: np.choose([0, 2, 0, 1], [x, x]), r"out of range for 2 choices"),
])
def test_bad_indices_raise_trace_errors(f, pattern):
    _raises(TraceError, pattern, f, np.linspace(0.1, 0.4, 4))


@pytest.mark.parametrize("mode", ["wrap", "clip"])
def test_take_and_choose_move_indices_as_numpy(mode):
    x = np.linspace(0.1, 0.6, 6)
    idx = np.array([-13, -1, 0, 5, 6, 17])
    for f in (lambda x: np.take(x, idx, mode=mode) * x, lambda x: np.choose(idx % 4 - 1, [x, x ** 2], mode=mode)):
        g = jacc.trace(f, x)
        np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="mode must be one of 'raise', 'wrap' or 'clip'"):
        jacc.trace(lambda x: np.take(x, [0], mode="bogus"), x)


def test_quantile_methods_are_numpys_names():
    with pytest.raises(ValueError, match=r"numpy\.percentile: method 'closest' is not one of NumPy's quantile methods"):
        jacc.trace(lambda x: np.percentile(x, 50, method="closest"), np.ones(3))


def test_quantile_out_of_range_is_numpys_value_error():
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        jacc.trace(lambda x: np.quantile(x, 1.5), np.ones(3))
    with pytest.raises(ValueError, match=r"range \[0, 100\]"):
        jacc.trace(lambda x: np.percentile(x, -1), np.ones(3))


def test_sort_ties_follow_the_stable_order_as_in_the_conventions():
    J = jacc.jacobian(np.sort)(np.array([2.0, 1.0, 2.0]))
    np.testing.assert_array_equal(J, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(jacc.jacobian(np.median)(np.array([1.0, 2.0, 2.0])), [0.0, 1.0, 0.0])


@pytest.mark.parametrize("f", [
    lambda x: x.T[[0, 3, 3]],
    lambda x: x[[0, 2]][:, [1, 1, 3]],
    lambda x: x.reshape(-1)[[5, 5, 0]][1:],
    lambda x: np.partition(x, 1, axis=0)[1:].T,
    lambda x: x.reshape(3, 1, 4)[[1, 1]][:, 0],
    lambda x: x[:, [2, 0]][None, 1:, [1, 1]],
], ids=["transpose", "two-with-pairs", "ravel-slice", "partition-slice-T", "squeeze", "new-axis"])
def test_chains_of_index_maps_compose_into_one_gather(f):
    """Consecutive index maps around a gather never become a 0/1 matrix: sin of them costs 0."""
    x = np.random.default_rng(6).normal(size=(3, 4))
    h = lambda x: np.sin(f(x))  # noqa: E731
    g = jacc.trace(h, x)
    prob = Problem.from_graph(g)
    vals = g.evaluate({"x": x})
    for order in (prob.eliminable, prob.eliminable[::-1]):
        assert price(prob, order)[1] == 0
        acc = accumulate(prob, vals, order)
        [(_, J)] = acc.blocks.items()
        np.testing.assert_allclose(J, fd_jacobian(h, [x], 0), rtol=1e-6, atol=1e-8)


def test_composed_gather_keeps_the_pairs_both_maps_pass_through():
    a = S.take_selection((5, 2), (5, 3), [0, -1], np.array([2, 2]))
    b = S.take_selection((5, 3), (5, 4), [0, -1], np.array([3, 0, 1]))
    c, mults = S.product(a, b)
    assert mults == 0 and c.pair == (0, -1) and isinstance(c.select, S.Take)
    np.testing.assert_array_equal(c.select.flat, [1, 1])


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # NumPy's own, from the op's value as from f's
def test_nan_quantiles_skip_nans_per_row_like_numpy():
    mask = np.array([[True, True, True, True], [False, True, False, True], [False, False, False, False]])

    def f(x):
        return np.nanquantile(np.where(mask, x, np.nan), [0.0, 0.3, 1.0], axis=1, keepdims=True)

    x = np.random.default_rng(7).normal(size=(3, 4))
    g = jacc.trace(f, x)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = f(x)
    got = g.evaluate({"x": x})[g.outputs[0]]
    assert got.shape == want.shape == (3, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-14)  # the row of NaNs is NaN in both
    J = jacc.jacobian(f)(x)
    assert J.shape == (3, 3, 1, 3, 4) and not J[:, 2].any()  # (q, row, 1, …): the row of NaNs has none
    assert not J[..., 1, 0].any() and not J[..., 1, 2].any()  # NaN entries are skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "All-NaN slice" on every probe
        fd = fd_jacobian(f, [x], 0)
    np.testing.assert_allclose(J[:, :2], fd[:, :2], rtol=1e-6, atol=1e-8)


def test_searchsorted_and_digitize_return_constant_positions():
    x = np.array([0.1, -0.7, 0.3, 0.9])
    seen = {}

    def f(x):
        seen["pos"] = np.searchsorted(np.sort(x), 0.2)
        seen["bin"] = np.digitize(0.2, np.sort(x))
        return x * 2.0

    g = jacc.trace(f, x)
    assert int(seen["pos"]) == 2 and int(seen["bin"]) == 2
    assert sum("numpy.searchsorted" in w or "numpy.digitize" in w for w in g.meta["value_dependent"]) == 2


def test_unique_returns_numpy_values_and_constant_extras():
    x = np.array([0.5, -1.0, 0.5, 2.0, -1.0, 3.5])
    seen = []

    def f(x):
        u, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
        seen.append((idx, inv, cnt))
        return u

    g = jacc.trace(f, x)
    u, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], u)
    for a, b in zip(seen[0], (idx, inv, cnt)):
        np.testing.assert_array_equal(a, b)
    J = jacc.jacobian(f)(x)
    np.testing.assert_array_equal(J, np.eye(6)[idx])  # each distinct value reads its first occurrence
    assert any("numpy.unique" in w for w in g.meta["value_dependent"])


def test_array_api_unique_functions_and_setxor1d_match_numpy():
    x = np.array([0.5, -1.0, 0.5, 2.0, -1.0, 3.5])
    b = np.array([2.0, 7.0])

    def f(x):
        counts, everything, inverse = np.unique_counts(x), np.unique_all(x), np.unique_inverse(x)
        for got, want in [(counts, np.unique_counts(x.value)), (everything, np.unique_all(x.value)),
                          (inverse, np.unique_inverse(x.value))]:
            assert type(got) is type(want) and all(np.array_equal(getattr(g, "value", g), w) for g, w in zip(got, want))
        return np.concatenate([np.unique_values(x), counts.values, np.setxor1d(x, b)])

    g = jacc.trace(f, x)
    want = np.concatenate([np.unique_values(x), np.unique_values(x), np.setxor1d(x, b)])
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], want)
    J = jacc.jacobian(f)(x)
    first = np.unique(x, return_index=True)[1]
    np.testing.assert_array_equal(J[:8], np.eye(6)[np.concatenate([first, first])])
    # setxor1d: -1.0, 0.5 and 3.5 from x (2.0 is in both), 7.0 from the constant b
    np.testing.assert_array_equal(J[8:], np.concatenate([np.eye(6)[[1, 0, 5]], np.zeros((1, 6))]))


@pytest.mark.parametrize("trim", ["fb", "f", "b", "BF"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0,)])
def test_trim_zeros_slices_as_numpy(trim, axis):
    x = np.array([[0.0, 0, 0, 0], [0, 1.5, 0, 0], [0, 2, 3, 0], [0, 0, 0, 0]])
    want = np.trim_zeros(x, trim, axis=axis)
    g = jacc.trace(lambda x: np.trim_zeros(x, trim, axis=axis), x)
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], want)
    assert g.meta["value_dependent"]
    assert jacc.jacobian(lambda x: np.trim_zeros(x, trim, axis=axis))(x).shape == want.shape + x.shape


def test_unique_rows_and_lexsort():
    x = np.array([[1.0, 2.0], [0.0, 5.0], [1.0, 2.0], [0.0, 4.0]])
    J = jacc.jacobian(lambda x: np.unique(x, axis=0))(x)
    rows = np.unique(x, axis=0, return_index=True)[1]
    np.testing.assert_array_equal(J.reshape(6, 8), np.kron(np.eye(4)[rows], np.eye(2)))
    keys = np.array([3.0, 1.0, 3.0, 2.0])
    order = np.lexsort((-keys, keys))
    seen = []
    jacc.trace(lambda k: seen.append(np.lexsort((-k, k))) or k * 1.0, keys)
    np.testing.assert_array_equal(seen[0], order)


@pytest.mark.parametrize("call", [lambda y: y.partition(1), lambda y: y.sort(), lambda y: y.fill(0.25)])
def test_in_place_methods_change_the_array_not_a_copy(call):
    """ndarray.partition/sort/fill change the array and return None, as in NumPy: a copy in their
    place would leave the traced array as it was, a silent difference (jacc.numpy_api.writes)."""
    def f(x):
        y = x * 1.0
        assert call(y) is None
        return y

    x = np.array([0.3, 0.1, 0.2])
    g = jacc.trace(f, x)
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
    assert not np.array_equal(f(x), x)


# -- gathers that carry values: assembly and sparse products by indexing ------------------------
_ROWS, _COLS = np.array([0, 2, 2, 1, 0, 3]), np.array([1, 1, 3, 0, 1, 2])
_DATA = np.array([0.5, -1.0, 2.0, 1.5, 3.0, -0.25])


@pytest.mark.parametrize("f", [
    lambda x: np.bincount(_ROWS, weights=_DATA * x[_COLS], minlength=4),
    lambda x: np.bincount(_ROWS, weights=_DATA * np.sin(x[_COLS]) * x[_COLS], minlength=4),
    lambda x: np.bincount(_ROWS, weights=np.sin(x)[_COLS] * x[_COLS] * 2.0, minlength=4) + 3.0 * x[::-1],
    lambda x: (_DATA * np.exp(x[_COLS])).reshape(3, 2).sum(axis=1),
    lambda x: np.tanh(x)[_COLS][::2] * x[_COLS][::2],
], ids=["linear", "same-index-twice", "two-sources", "reshape-sum", "gather-of-gather"])
def test_scaled_gathers_price_as_executed_and_match_finite_differences(f):
    x = np.random.default_rng(3).normal(size=4)
    priced_as_executed_in_both_orders(f, x)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_a_scatter_add_of_a_scaled_gather_allocates_about_its_result():
    """bincount(rows, w * x[cols]), the form of a sparse product or an assembly: the scaled gather
    stays one value per nonzero. It once became a dense 9,000² block on the way to a 72 MB result
    (0.86 GB allocated against 0.22 GB predicted; at 20,000 points a MemoryError)."""
    from scipy.sparse import coo_matrix

    n = 3000
    rng = np.random.default_rng(0)
    rows, cols, data = rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n), rng.standard_normal(3 * n)

    def f(x):
        return np.bincount(rows, weights=data * np.sin(x[cols]) * x[cols], minlength=n)

    x = rng.standard_normal(n)
    g = jacc.trace(f, x)
    p = jacc.plan(g, "auto")
    result = 8 * n * n
    assert p.peak_bytes <= result + 16 * 3 * n  # the result and the per-nonzero values
    J, peak = peak_memory(lambda: jacc.jacobian(f)(x))
    assert peak < 2.5 * result  # the first call also checks the compiled program against the plan
    xc = x[cols]
    expect = coo_matrix((data * (np.cos(xc) * xc + np.sin(xc)), (rows, cols)), shape=(n, n)).toarray()
    np.testing.assert_allclose(J, expect, rtol=1e-12, atol=1e-14)


def test_rows_picked_from_a_batched_product_keep_their_jacobian_compact():
    # tanh(X @ W)[rows]: the gather reads along the axis the product is batched over; unpairing
    # that axis first stored an n² block (404 ms and 1.2 GB per call at n = 1,000, 300 rows;
    # now 2.5 ms and the 154 MB of the result)
    rng = np.random.default_rng(0)
    W, rows = rng.standard_normal((4, 3)), rng.integers(0, 400, 100)
    f = lambda X: np.tanh(X @ W)[rows]  # noqa: E731
    X = rng.standard_normal((400, 4))
    jf = jacc.jacobian(f, retrace=False)
    J = jf(X)
    want = np.zeros((100, 3, 400, 4))
    d = 1.0 - np.tanh(X @ W) ** 2
    for r, i in enumerate(rows):
        want[r, :, i, :] = (d[i][:, None] * W.T)
    np.testing.assert_allclose(J, want, rtol=1e-13, atol=1e-15)
    _, peak = peak_memory(lambda: jf(X + 0.5))
    assert peak < 3 * J.nbytes  # the n² block alone was 4 × J.nbytes here


@pytest.mark.parametrize("kw", [{}, {"strategy": "forward"}, {"sparse": True}, {"backend": "interpret"}])
def test_a_gather_from_an_empty_slice(kw):
    # x[:, 1:-1] of a 2×2 matrix has no entries; gathering its rows crashed in a reshape with -1
    # ("cannot reshape array of size 0", found by fuzzing)
    x = np.arange(1.0, 5.0).reshape(2, 2)
    f = lambda x: x[:, 1:-1][np.array([0, 1, 0])].sum() + (x * x).sum()  # noqa: E731
    J = jacc.jacobian(f, **kw)(x)
    J = J.toarray().reshape(x.shape) if hasattr(J, "toarray") else J
    np.testing.assert_allclose(J, 2 * x, rtol=1e-14)
    empty = jacc.jacobian(lambda x: x[:, 1:-1][np.array([0, 1, 0])], **kw)(x)
    assert empty.shape in ((3, 0, 2, 2), (0, 4))


_EMPTY_SELECTIONS = {
    "nonzero": lambda x: x[np.nonzero(x > 5)[0]].sum() + np.sin(x),
    "where": lambda x: (x[np.where(x > 5)] ** 2).sum() * x,
    "list": lambda x: np.concatenate([x[[]], np.tanh(x)]),
    "take": lambda x: np.take(x, []).sum() + x ** 2,
    "rows": lambda x: np.outer(x, x)[np.nonzero(x > 5)[0]].sum(0) + x,
    "columns": lambda x: np.outer(x, np.cos(x))[:, np.flatnonzero(x > 5)].sum(1) + x,
}


@pytest.mark.parametrize("name", sorted(_EMPTY_SELECTIONS))
@pytest.mark.parametrize("backend", ["auto", "numpy", "interpret"])
def test_selections_that_pick_nothing(name, backend, tmp_path):
    """x[np.nonzero(x > 5)[0]] where nothing exceeds 5: the graph keeps an index array as a list,
    and the empty list had lost its integer dtype (a TraceError; ``x[[]]`` and ``np.take(x, [])``,
    which NumPy takes, were refused)."""
    f = _EMPTY_SELECTIONS[name]
    x = np.linspace(0.1, 1.0, 5)
    J = jacc.jacobian(f, backend=backend)(x)
    np.testing.assert_allclose(J, fd_jacobian(f, (x,), 0), rtol=1e-7, atol=1e-9)
    g = jacc.trace(f, x)
    g.save(tmp_path / "g.json")
    loaded = jacc.load(tmp_path / "g.json")
    [block] = jacc.plan(loaded, "reverse").execute(x).values()
    np.testing.assert_array_equal(block, J)


def _set_big_squared(X):
    Y = X * 1.0
    Y[Y > 5] = Y[Y > 5] ** 2
    return Y


@pytest.mark.parametrize("f, x, shape", [
    (lambda X: X[X > 0], np.zeros((0, 3)), (0, 0, 3)),  # an empty mask over two axes
    (lambda X: X[X > 5], np.ones((2, 0, 2)), (0, 2, 0, 2)),
    (lambda X: np.concatenate([X[X > 0], np.ones(1)]), np.zeros((0, 3)), (1, 0, 3)),
    (_set_big_squared, np.zeros((0, 3)), (0, 3, 0, 3)),
    (lambda Z: Z[Z[:, :, 0] > 0, 1:], np.ones((2, 0, 3)), (0, 2, 2, 0, 3)),
    (lambda x: x.T[[1]], np.zeros((0, 2)), (1, 0, 0, 2)),  # zero-size arguments and steps
    (lambda x: np.sin(np.stack([x[:, ::-1], x], -1)), np.zeros((0, 3)), (0, 3, 2, 0, 3)),
    (lambda x: x[[0, 0], 1:][[0, 0], 1:], np.ones((1, 1)), (2, 0, 1, 1)),
    (lambda x: x[:, :0][[0, 0]][[0]], np.ones((1, 3)), (1, 0, 1, 3)),
])
@pytest.mark.parametrize("kw", [{}, {"strategy": "forward"}, {"strategy": "reverse"}, {"backend": "interpret"}])
def test_zero_size_values_give_empty_jacobians_of_numpys_shapes(f, x, shape, kw):
    """Found by fuzzing: an empty boolean mask over two axes was kept as an empty list, read back
    as an empty integer index over one axis (shape (0, 3, 0, 3) for X[X > 0] of a (0, 3) X, and a
    crash where the result met other arrays); products of maps through a zero-size step raised
    IndexError or ValueError on some routes."""
    assert np.shape(f(x)) == shape[:len(shape) - x.ndim]
    J = jacc.jacobian(f, **kw)(x)
    assert J.shape == shape and J.size == 0


@pytest.mark.parametrize("f, x", [
    (lambda x: np.sqrt(np.sum(x[x > 1])), np.array([0.5, 0.3])),
    (lambda x: np.log(np.sum(x[x > 1])) * 0 + np.linalg.norm(x.reshape(1, 2)[:0]), np.array([0.5, 1.0])),
    (lambda x: np.linalg.norm((x.T @ x)[:0]), np.array([[0.5, 0.3, -0.8]])),
])
@pytest.mark.parametrize("kw", [{}, {"strategy": "forward"}, {"strategy": "reverse"}, {"backend": "interpret"}])
def test_a_path_through_a_selection_of_nothing_is_a_structural_zero(f, x, kw):
    """sqrt(sum(x[x > 1])) where nothing exceeds 1 is sqrt(0): the partial of sqrt there is inf, and
    the empty selection's product with it was 0·inf = NaN on some routes (forward, or the
    executor) and 0 on others. A vertex of size 0 now carries no path: exactly 0 on every route."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (NumPy's own sqrt/log of 0 in f)
        J = jacc.jacobian(f, **kw)(x)
        want = np.zeros(np.shape(f(x)) + x.shape)
    np.testing.assert_array_equal(J, want)


def test_the_compress_method_takes_the_array_first():
    # registered with np.compress's order, x.compress(cond) read x as the condition: a wrong value
    # and a zero Jacobian
    x = np.array([2.0, 0.0, 5.0])
    for f in (lambda x: x.compress([True, False, True]), lambda x: x.compress(np.array([1, 1, 0]))):
        g = jacc.trace(f, x)
        np.testing.assert_array_equal(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x))
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-9)
    X = np.arange(6.0).reshape(3, 2)
    f = lambda X: X.compress([True, False, True], axis=0)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), atol=1e-9)


def test_a_zero_d_boolean_index_is_a_new_axis_as_numpy_reads_it():
    # it was refused (scipy.stats.multinomial writes p[mask, -1] with a 0-d mask; found by a hunt):
    # NumPy reads it as a new axis of length 1 (True) or 0 (False)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(jacc.jacobian(lambda x: x[np.array(True)] * 2.0)(x), 2.0 * np.eye(3)[None])
    assert jacc.jacobian(lambda x: x[np.array(False)] * 2.0)(x).shape == (0, 3, 3)  # (output (0, 3) by input (3,))


@pytest.mark.parametrize("use", [lambda i, n: i / (n - 1), lambda i, n: 2 / (i + 1), lambda i, n: divmod(i, 2)[1],
                                 lambda i, n: round(i), lambda i, n: i << 1, lambda i, n: 8 >> i])
def test_an_argmax_reads_as_its_integer_in_every_operator(use):
    # np.argmax(x) / (len(x) - 1) raised TypeError for '/', divmod, round, << and >> (found by a hunt)
    f = lambda x: x * float(use(np.argmax(x), len(x)))  # noqa: E731
    x = np.array([0.3, 2.0, -1.0, 0.5, 1.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), np.eye(5) * float(use(np.argmax(x), 5)))


def test_a_float_index_array_raises_numpys_index_error_even_empty():
    """x[np.array([])] (a float array, as np.array([]) makes) gave a Jacobian; NumPy raises."""
    for idx in (np.array([]), np.array([0.0, 1.0])):
        with pytest.raises(IndexError, match="integer"):
            jacc.jacobian(lambda x: np.tanh(x[idx]).sum() + x.sum())(np.ones(3))


def test_take_along_axis_with_indices_of_another_length_raises_index_error():
    """NumPy raises IndexError (shape mismatch); the trace raised ValueError (found by a hunt)."""
    with pytest.raises(IndexError, match="shape mismatch"):
        jacc.jacobian(lambda x: np.take_along_axis(x, np.zeros((8, 1), dtype=np.int64), axis=1).sum())(np.ones((5, 3)))
