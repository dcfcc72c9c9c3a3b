"""Selections by traced masks kept at full shape (jacc.lanes): ``y[m] = g(x[m])`` traces once and
serves every point, its Jacobian equal to finite differences, finite where the entries outside
``m`` leave ``g``'s domain; anything else a selection meets makes the selection, value-dependent."""

import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.lanes import Lanes

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
    # the fill is a typical selected value (not 0, where √ has an infinite slope), and a later call
    # selecting nothing repeats the traced point's computation outside the mask
    def f(x):
        y = x.copy()
        y[x >= 0] = np.sqrt(x[x >= 0])
        return y

    jf = jacc.jacobian(f)
    J0 = jf(np.array([0.0, 0.0, 0.0, 4.0, -1.0, 9.0]))
    assert np.isinf(J0[0, 0]) and J0[4, 4] == 1.0 and J0[3, 3] == 0.25  # (√ at 0: NumPy's slope, inf)
    for p in (np.array([-1.0, 2.0, -3.0, 4.0, -1.0, -5.0]), -np.ones(6)):
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_a_traced_scalar_takes_its_traced_value_outside_the_mask():
    # outside m, log(x − a) at a later a would be log of a negative number: a takes its traced value there
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


def test_a_selection_refuses_to_become_a_plain_array():
    def f(x):
        return np.asarray(x[x > 0]) * x[0]

    with pytest.raises(Exception, match="plain NumPy array"):
        jacc.trace(f, np.array([1.0, -2.0]))


def test_selections_are_lanes_while_traced():
    kinds = {}

    def f(x):
        kinds["selection"] = type(x[x > 0])
        kinds["sqrt"] = type(np.sqrt(x[x > 0]))
        kinds["with a scalar"] = type(x[0] * x[x > 0])
        return x

    jacc.trace(f, np.array([1.0, -2.0]))
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
