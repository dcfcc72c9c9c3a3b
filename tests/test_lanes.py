"""Selections by traced masks kept at full shape (jacc.lanes): ``y[m] = g(x[m])`` traces once and
serves every point, its Jacobian equal to finite differences, finite where the entries outside
``m`` leave ``g``'s domain; anything else a selection meets makes the selection, value-dependent."""

import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.lanes import Lanes
from jacc.trace import UnsupportedOperationError

X = np.array([0.7, -1.3, 2.2, -0.4, 1.6, 3.1])
POINTS = [X, -X, np.array([-0.9, 1.1, -2.3, 0.45, 0.2, 0.6]), -np.abs(X), np.abs(X) + 0.5]


def _sqrt_where_positive(x):
    y = x.copy()
    y[x > 0] = np.sqrt(x[x > 0])  # (the mask written twice: the same formula)
    return y


def _log_piecewise(x):
    m = x > 0.1
    y = np.zeros_like(x)  # an array f made (jacc.buffers)
    y[m] = np.log(x[m]) * x[m]
    y[~m] = x[~m] ** 3 - 1.0
    return y


def _scaled_in_place(x):
    y = 2.0 * x
    y[y > 1.0] *= 3.0
    y[x < 0] += np.exp(x[x < 0])
    return y * x


def _two_dimensional(x):
    a = x.reshape(2, 3) * 1.0
    m = a < 0.5
    a[m] = np.arcsinh(a[m]) / (1.0 + a[m] ** 2)
    return a.sum(axis=0)


def _masked_loss(x):
    m = x > 0
    return np.sum(np.log1p(x[m]) ** 2) + x[m].sum() * x + np.mean(x[x < 2.5] ** 2)


def _scalar_operands(x):
    s = x[0] * 0.5  # a traced scalar, combined with the selection on every lane
    y = x.copy()
    m = x > s
    y[m] = np.sqrt(x[m] - s) * s + 1.0 / (x[m] - s + 1.0)
    return y


PIECEWISE = {
    "sqrt where positive": _sqrt_where_positive,
    "log piecewise into zeros": _log_piecewise,
    "scaled in place": _scaled_in_place,
    "two dimensional": _two_dimensional,
    "masked loss": _masked_loss,
    "traced scalar operands": _scalar_operands,
}


@pytest.mark.parametrize("name", sorted(PIECEWISE))
def test_one_trace_serves_every_point(name):
    f = PIECEWISE[name]
    g = jacc.trace(f, X)
    assert not g.meta.get("value_dependent"), g.meta.get("value_dependent")
    jf = jacc.jacobian(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no warning from the entries outside the mask)
        for p in POINTS * 2:
            J = jf(p)
            assert np.isfinite(J).all()
            np.testing.assert_allclose(J, fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
    # (f runs to trace and to check; then the program serves alone, planned once)
    assert jf.cache.skipped >= 2 * len(POINTS) - 2 and jf.cache.rebuilds == 0, (jf.cache.skipped, jf.ran)


@pytest.mark.parametrize("backend", ["numpy", "c", "jax", "torch"])
def test_every_backend_agrees(backend):
    if backend in ("jax", "torch"):
        pytest.importorskip(backend)
    for f in (_log_piecewise, _scalar_operands):
        jf = jacc.jacobian(f, backend=backend)
        for p in POINTS:
            np.testing.assert_allclose(np.asarray(jf(p)), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_entries_outside_the_mask_stay_in_the_domain():
    # outside the mask every entry repeats the first selected one; where that one is √'s edge, 0, its
    # infinite slope would meet where's 0 there (NaN): that call is traced again with the selection
    # gathered, and a later call selecting nothing keeps the traced point's fill
    def f(x):
        y = x.copy()
        y[x >= 0] = np.sqrt(x[x >= 0])
        return y

    jf = jacc.jacobian(f)
    J0 = jf(np.array([0.0, 0.0, 0.0, 6.25, -1.0, 9.0]))
    assert np.isinf(J0[0, 0]) and J0[4, 4] == 1.0 and J0[3, 3] == 0.2  # (√ at 0: NumPy's slope, inf)
    assert np.count_nonzero(np.isnan(J0)) == 0
    assert not jacc.trace(f, np.array([0.0, 0.0, 0.0, 6.25, -1.0, 9.0])).meta.get("value_dependent")
    for p in (np.array([-1.0, 2.0, -3.0, 4.0, -1.0, -5.0]), -np.ones(6)):
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("first", [np.zeros(3), np.array([0.0, 0.0, -1.0]), np.array([1.0, 2.0, -1.0])])
def test_a_first_call_selecting_integers_alone_keeps_one_trace_and_later_calls_are_right(first):
    # the fill is found at each call, so integers selected first (√'s edge, 0, among them) do not
    # stay the fill of later calls; the one trace serves them without running f
    def f(x):
        y = x.copy()
        y[x >= 0] = np.sqrt(x[x >= 0])
        return y

    assert not jacc.trace(f, first).meta.get("value_dependent")
    jf = jacc.jacobian(f)
    jf(first)
    later = (np.array([4.5, -1.0, -2.0]), np.array([9.1, 1.2, -3.0]), -np.ones(3), np.array([4.5, -1.0, -2.0]))
    for p in later:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 1 and jf.cache.rebuilds == 0


@pytest.mark.parametrize("n", [1, 40])  # (the scalar route, and the array program)
def test_a_later_call_whose_fill_leaves_the_domain_is_right(n):
    # (a fill kept from the first trace, 2.2 here, left √'s domain once s passed it: NaN in J)
    def f(x, s):
        y = np.zeros_like(x)
        m = x > s
        y[m] = np.sqrt(x[m] - s)
        return y

    x = np.tile([0.3, 2.2, 2.9, 0.1, 3.3, 1.7, 0.8, 3.95], n)
    jf = jacc.jacobian(f, argnums=(0, 1))
    for s in (1.0, 2.0, 3.9, 0.05, 3.0, 3.9):
        Jx, Js = jf(x, s)
        np.testing.assert_allclose(Jx, fd_jacobian(f, [x, s], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(Js, fd_jacobian(f, [x, s], 1), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 3 and jf.cache.rebuilds == 0


def test_arrays_selected_by_one_mask_are_filled_from_one_lane():
    # inside the unit disk the hemisphere is finite; x's and z's typical values taken apart are not
    def f(x, z):
        m = x ** 2 + z ** 2 < 1
        y = np.zeros_like(x)
        y[m] = np.sqrt(1 - x[m] ** 2 - z[m] ** 2)
        return y

    jf = jacc.jacobian(f, argnums=(0, 1))
    for x, z in [([-0.45, 0.55, 1.1], [0.85, -0.4, 0.0]), ([0.1, 0.95, -0.3], [0.2, 0.25, 0.9])] * 2:
        x, z = np.array(x), np.array(z)
        Jx, Jz = jf(x, z)
        np.testing.assert_allclose(Jx, fd_jacobian(f, [x, z], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(Jz, fd_jacobian(f, [x, z], 1), rtol=1e-6, atol=1e-7)


def test_a_traced_scalar_meets_a_selected_entry_outside_the_mask():
    # outside m, log(x − a) of a fill kept from the first trace would be log of a negative number at a later a
    def f(x, a):
        y = x.copy()
        m = x > a
        y[m] = np.log(x[m] - a)
        return y

    jf = jacc.jacobian(f, argnums=(0, 1))
    for x, a in [(np.array([1.0, 2.0, 3.0]), 0.5), (np.array([6.0, 2.0, 7.0]), 5.5), (np.array([1.0, 2.0, 3.0]), 9.0)]:
        Jx, Ja = jf(x, a)
        np.testing.assert_allclose(Jx, fd_jacobian(f, [x, a], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(Ja, fd_jacobian(f, [x, a], 1), rtol=1e-6, atol=1e-7)


def test_a_selection_is_numpys_where_it_is_read():
    seen = {}

    def f(x):
        s = x[x > 0]
        seen["len"], seen["shape"], seen["first"] = len(s), s.shape, s[0]
        return np.concatenate([s ** 2, x])

    x = np.array([1.0, -2.0, 3.0])
    g = jacc.trace(f, x)
    assert g.meta.get("value_dependent")
    assert seen["len"] == 2 and seen["shape"] == (2,)
    for p in (x, np.array([-1.0, 2.0, 5.0]), np.array([4.0, -2.0, -3.0])):
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_augmented_assignment_changes_the_object_every_name_holds():
    def f(x):
        a = x[x > 0]
        b = a
        a += 1.0  # NumPy: a and b are one array
        y = x.copy()
        y[x > 0] = b * x[x > 0]
        return y

    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jacc.trace(f, x).evaluate({"x": x})[jacc.trace(f, x).outputs[0]], f(x))


def test_writing_into_a_selection_leaves_the_array_as_numpy_does():
    def f(x):
        s = x[x > 0]
        s[0] = 100.0  # (a copy: x is unchanged)
        y = x.copy()
        y[x > 0] = s
        return y * x

    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)


def test_a_matrix_product_of_selections_is_numpys():
    def f(x):
        a = x.reshape(2, 2) * 1.0
        m = a > 0
        return (a[m] @ a[m]).sum() * x  # (a gufunc: of the selections, not of their full arrays)

    x = np.array([1.5, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("change", [
    lambda a: a.sort(), lambda a: a.fill(7.0), lambda a: np.copyto(a, 3.0), lambda a: np.add.at(a, 0, 5.0),
    lambda a: a.put([0], [9.0]),
])
def test_a_selection_changed_in_place_is_written_as_changed(change):
    def f(x):
        a = x[x > 0]
        change(a)
        y = x.copy()
        y[x > 0] = a
        return y * x

    x = np.array([2.5, -2.0, 0.5, 3.0, 1.5])
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("f", [
    lambda x: np.array([np.sum(x[x > 0.1] ** 2), x[0]]),  # (np.array swaps stand-ins in while traced)
    lambda x: np.zeros(x.shape) + np.mean(np.log(x[x > 0.1])) + np.copy(x[x > 0.1]).sum(),
    lambda x: np.where(x > 1, x, 0.0) + np.sqrt(x[x > 1.0]).sum(),  # (x > 1 and x > 1.0: one mask)
])
def test_numpys_reductions_of_a_selection_keep_it_at_full_shape(f):
    assert not jacc.trace(f, X).meta.get("value_dependent")


def test_another_mask_or_shape_makes_the_selection():
    def other_mask(x):
        y = x.copy()
        y[x < 0] = x[x > 0][::-1]  # NumPy's counts agree at this point only
        return y

    def row_mask(x):
        a = x.reshape(3, 2) * 1.0
        return a[a[:, 0] > 0] ** 2

    for f, x in ((other_mask, np.array([1.0, -2.0, 3.0, -4.0])), (row_mask, np.array([1.0, 2.0, -3.0, 4.0, 5.0, 6.0]))):
        g = jacc.trace(f, x)
        assert g.meta.get("value_dependent")
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)


def test_comparisons_and_integer_results_of_a_selection_are_numpys():
    def f(x):
        s = x[x > 0]
        return np.where(s > 2.0, s, 0.0).sum() * x + np.floor(s).sum()

    x = np.array([1.2, -2.0, 3.4, 2.6])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)
    assert type(jacc.trace(lambda x: x[x > 0], x)) is jacc.Graph  # (a returned selection: its entries)


def _copied_into_a_view(x):
    out = np.ones(5)[:2]  # (a view of an array f made)
    np.copyto(out, x[x > 0])
    return out


@pytest.mark.parametrize("f", [
    lambda x: np.asarray(x[x > 0]) * x[0],  # (as of a traced array: the selection itself)
    lambda x: np.array([x[x > 0], 2.0 * x[x > 0]]).sum(axis=0),
    lambda x: np.concatenate([x, x[x > 0] ** 2]),
    lambda x: _copied_into_a_view(x),
])
def test_an_array_made_of_a_selection_is_the_selection(f):
    for p in (np.array([1.5, -2.0, 3.25]), np.array([-1.5, 2.5, 3.25])):
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)

def test_selections_are_lanes_while_traced():
    kinds = {}

    def f(x):
        kinds["selection"] = type(x[x > 0])
        kinds["sqrt"] = type(np.sqrt(x[x > 0]))
        kinds["with a scalar"] = type(x[0] * x[x > 0])
        return x

    jacc.trace(f, np.array([1.5, -2.0]))
    assert set(kinds.values()) == {Lanes}


def test_a_selection_written_through_numpy_stays_that_selection():
    def f(x):
        a = x[x > 0]
        np.multiply(a, np.array([2.0, 3.0]), out=a)  # (an array operand: made the selection, written in place)
        y = x.copy()
        y[x > 0] = a + 1.0
        return y

    x = np.array([1.0, 2.0, -3.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)


def _class_means(X, y):
    return np.stack([X[y == k].mean(axis=0) for k in range(3)])


def _row_update(X, w):
    X = X * 1.0
    m = X[:, 0] > 0.2  # (rows)
    X[m] = np.tanh(X[m] * w) + X[m].sum() * w  # (w over a row's axis; a traced scalar)
    return X.mean(axis=1) + np.mean(np.exp(X[m])) + X[m].sum(axis=0).sum()


def test_rows_selected_by_data_labels_keep_one_trace():
    rng = np.random.default_rng(3)
    jf = jacc.jacobian(_class_means, argnums=0)
    for _ in range(6):
        X, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
        y[:3] = [0, 1, 2]  # (every class present: a mean of none is NaN, as NumPy's)
        np.testing.assert_allclose(jf(X, y), fd_jacobian(_class_means, [X, y], 0), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 3 and jf.cache.rebuilds == 0, (jf.cache.skipped, jf.cache.why_traced)


def test_rows_with_a_column_of_integers_keep_one_trace():
    # (an intercept column of ones: no typical fill, so every call was traced, 4.7 ms against 0.8)
    rng = np.random.default_rng(5)
    jf = jacc.jacobian(_class_means, argnums=0)
    for _ in range(5):
        X, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
        X[:, 0], y[:3] = 1.0, [0, 1, 2]
        np.testing.assert_allclose(jf(X, y), fd_jacobian(_class_means, [X, y], 0), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 2 and jf.cache.rebuilds == 0, (jf.cache.skipped, jf.cache.why_traced)


def test_a_graph_with_selections_is_saved_and_loaded(tmp_path):
    g = jacc.trace(_row_update, np.arange(12.0).reshape(4, 3) / 7 - 0.5, np.array([0.5, -1.0, 2.0]))
    assert "lanes" in {g.op(v) for v in g.nx}
    path = tmp_path / "rows.json"
    g.save(path)
    back = jacc.load(path)
    X, w = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0.3, 0.2, -0.1])
    blocks = jacc.plan(back, "reverse").execute(X=X, w=w)
    for k, x in enumerate(back.inputs):
        want = fd_jacobian(_row_update, [X, w], k).reshape(4, -1)
        got = blocks[back.outputs[0], x]
        np.testing.assert_allclose(got.reshape(4, -1), want, rtol=1e-6, atol=1e-7)


def test_rows_selected_by_a_traced_mask():
    rng = np.random.default_rng(4)
    X0, w0 = rng.standard_normal((6, 3)), rng.standard_normal(3)
    assert not jacc.trace(_row_update, X0, w0).meta.get("value_dependent")
    jf = jacc.jacobian(_row_update, argnums=(0, 1))
    for _ in range(5):
        X, w = rng.standard_normal((6, 3)), rng.standard_normal(3)
        X[0, 0] = 1.3  # (a row selected: NumPy's mean of none is NaN)
        JX, Jw = jf(X, w)
        np.testing.assert_allclose(JX, fd_jacobian(_row_update, [X, w], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(Jw, fd_jacobian(_row_update, [X, w], 1), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 3, (jf.cache.skipped, jf.cache.why_traced)


def test_rows_written_by_a_mask_take_a_block_of_rows_as_numpy():
    # NumPy takes a 2-D value for a mask of rows (a mask of every axis takes 0-d or 1-d ones alone);
    # integer values select no typical row, so this is the gathered selection's write
    def f(X):
        X = X * 1.0
        m = X[:, 0] > 0.2
        X[m] = X[m] * 2.0
        return X

    X = np.array([[1.0, 2.0], [-1.0, 0.5], [2.0, 3.0]])
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)


def _sqrt_rows(X):
    Y = X * 1.0
    m = X[:, 0] > 0
    Y[m] = np.sqrt(X[m])
    return Y


def _second_array_at_an_edge(x, z):
    y = x.copy()
    m = x > 0
    y[m] = x[m] * np.sqrt(z[m])
    return y


def _row_operand(X, w):
    Y = X * 1.0
    m = X[:, 0] > 0
    Y[m] = np.sqrt(X[m] * w)
    return Y


@pytest.mark.parametrize("f, first, later", [
    # (from a hunt: each kept a fill at √'s edge, 0, for every later call: NaN outside the mask)
    (_sqrt_rows, [np.array([[0.5, 0.0], [1.5, 0.0], [-0.5, 1.0]])], [np.array([[0.5, 4.0], [1.5, 9.0], [-0.5, 1.0]])]),
    (_second_array_at_an_edge, [np.array([0.5, 1.5, 2.5, -1.0]), np.array([4.0, 0.0, 1.5, 0.5])],
     [np.array([0.5, 1.5, 2.5, -1.0]), np.array([4.0, 1.0, 1.5, 0.5])]),
    (_row_operand, [np.array([[0.5, 1.5], [-1.5, 2.5]]), np.zeros(2)], [np.array([[0.5, 1.5], [-1.5, 2.5]]),
                                                                       np.array([1.0, 2.0])]),
])
def test_fills_never_come_from_an_edge_of_the_domain(f, first, later):
    nums = tuple(range(len(first)))
    jf = jacc.jacobian(f, argnums=nums if len(nums) > 1 else 0)
    jf(*first)
    for args in (later, [a * 1.1 for a in later], later):
        got = jf(*args)
        for k, J in enumerate(got if len(nums) > 1 else (got,)):
            assert np.isfinite(J).all()
            np.testing.assert_allclose(J, fd_jacobian(f, list(args), k), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("f", [
    lambda X: _written(X, lambda Y, m: Y.__setitem__(m, 0.5)),  # a scalar into rows
    lambda X: _written(X, lambda Y, m: Y.__setitem__(m, X[0] * 2.0)),  # a traced row into rows
    lambda X: np.sum((2.0 + X[0, 0] ** 2) ** X[X[:, 0] > 0.1]),  # (a traced base: x ** y asks for y's ndim)
])
def test_rows_written_with_one_value_and_powers_keep_one_trace(f):
    X = np.array([[0.5, 1.5, -0.3], [-1.5, 2.5, 0.7], [1.2, -0.4, 0.9]])
    assert not jacc.trace(f, X).meta.get("value_dependent")
    for p in (X, -X, X[::-1].copy()):
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def _written(X, write, column=True):
    Y = X.copy()
    write(Y, (X[:, 0] if column else X) > 0.1)
    return Y


@pytest.mark.parametrize("f, x", [
    (lambda x: _written(x, lambda y, m: y.__setitem__(m, 0.5), False), np.array(0.3)),  # a 0-d array and its mask
    (lambda x: _written(x, lambda y, m: y.__setitem__(m, np.array(0.5, dtype=object)), False), np.array([0.3, -1.0])),
])
def test_a_value_of_no_axes_written_by_a_mask_keeps_one_trace_as_it_did(f, x):
    assert not jacc.trace(f, x).meta.get("value_dependent")
    for p in (x, -x):
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n", [8, 300])
@pytest.mark.parametrize("empty_at", [0, 1])
def test_an_early_call_selecting_nothing_keeps_one_trace(n, empty_at):
    # (hunt BB: such a call was gathered, value-dependent, and every later call ran f)
    def f(x, s):
        y = x.copy()
        m = x < -s
        y[m] = np.log(-x[m] - s)
        return y

    rng = np.random.default_rng(1)
    jf = jacc.jacobian(f, argnums=(0, 1))
    for i in range(8):
        x = rng.uniform(-3, 3, n)
        x[0] = -2.5
        if i == empty_at:
            x = np.abs(x)
        Jx, Js = jf(x, 0.5)
        np.testing.assert_allclose(Jx, fd_jacobian(f, [x, 0.5], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(Js, fd_jacobian(f, [x, 0.5], 1), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 5 and jf.cache.why_traced is None, (jf.cache.skipped, jf.cache.why_traced)


@pytest.mark.parametrize("f", [
    lambda x: np.piecewise(x, [x < 0, x >= 0], [lambda v: v ** 2, lambda v: np.sqrt(v + 1.0)]),
    lambda x: np.piecewise(x, [x < -1, (x >= -1) & (x < 1)], [lambda v: -v, lambda v: v ** 3, 0.5]),
    lambda x: np.piecewise(x, x > 0.5, [lambda v, a: np.log(v) / a, lambda v, a: a * v], 3.0),  # (args, the rest)
    lambda x: np.piecewise(x, [x > 10.0, x < 0], [np.log, np.exp]),  # (a piece that is empty)
    lambda x: np.piecewise(x, [x < 0], [lambda v, k=1.0: np.exp(k * v) - k], k=2.0),
])
def test_piecewise_keeps_one_trace(f):
    # (np.piecewise read its conditions at the traced point: every call traced f)
    assert not jacc.trace(f, X).meta.get("value_dependent")
    jf = jacc.jacobian(f)
    for p in POINTS * 2:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
        g = jacc.trace(f, p)
        np.testing.assert_array_equal(g.evaluate({"x": p})[g.outputs[0]], f(p))
    assert jf.cache.skipped >= 2 * len(POINTS) - 2 and jf.cache.rebuilds == 0


@pytest.mark.parametrize("g", [lambda v: v.max() * v, lambda v: v / np.abs(v).max(), lambda v: (2 * v)[0] * v])
def test_piecewise_whose_function_reads_its_piece_is_numpys(g):
    def f(x):  # (the piece's values read, and no call on an empty piece: hunt BC, a value made of it)
        return np.piecewise(x, [x > 0, x < -100.0], [lambda v: v * len(v), g])

    for p in POINTS:
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_piecewise_of_a_number_is_numpys():
    def f(x):
        return np.piecewise(x, [x < 0, x >= 0], [lambda t: -t ** 3, lambda t: t ** 2])

    jf = jacc.jacobian(f)
    for x in (-1.3, 0.4, np.array(2.0)):
        assert jf(x) == pytest.approx(-3 * x ** 2 if x < 0 else 2 * x)


def test_piecewise_reads_a_condition_array_as_numpy_does():
    def stacked(x):  # (the rows of one array are the conditions: hunt BC)
        return np.piecewise(x, np.stack([x < 0, x > 1]), [lambda t: -t, lambda t: t ** 3, np.sin])

    def booleans(x):  # (a list of booleans is one condition)
        return np.piecewise(x, [True, False, True, False, True, False], [lambda t: t ** 2, np.cos])

    for f in (stacked, booleans):
        for p in POINTS:
            g = jacc.trace(f, p)
            np.testing.assert_array_equal(g.evaluate({"x": p})[g.outputs[0]], f(p))
            np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
    with pytest.raises(UnsupportedOperationError, match="rows as the conditions"):  # (of x's leading axes)
        jacc.jacobian(lambda x: np.piecewise(x, x < 0, [np.sin, np.cos]))(X.reshape(2, 3))
