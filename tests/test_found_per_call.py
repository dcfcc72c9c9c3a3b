"""Ops whose partials the program finds at each call — sorting and quantiles (their permutation:
jacc.numpy_api.orders), interp (its segments) and nan_to_num (its masks): one trace serves every
point."""

import json
import warnings

import numpy as np
import pytest
from conftest import assert_one_trace_serves, fd_jacobian

import jacc
from jacc.numpy_api import orders
from jacc.trace import trace

X = np.array([0.7, -1.3, 2.2, -0.4, 1.6, 0.1])
# other orders of the entries (no ties: the derivative jumps there)
POINTS = [X, -X, X[::-1].copy(), np.array([-0.9, 1.1, -2.3, 0.45, 0.2, 3.0])]

_KNOTS = np.array([-1.45, -0.25, 0.35, 1.05, 2.15])  # (no point on a knot: the slope jumps)
_TABLE = np.array([0.5, -1.0, 2.0, 0.0, 1.0])

PER_CALL = {
    "median": np.median,
    "percentiles": lambda x: np.percentile(x, [10.0, 50.0, 95.0]),
    "quantile of a product": lambda x: np.quantile(np.sin(x) * x, 0.3),
    "sorted weights": lambda x: np.sort(x) @ np.linspace(1.0, 2.0, 6) * np.exp(x),
    "sort of a matrix": lambda x: np.sort(np.outer(x, x[:2]), axis=0).ravel(),
    "median over an axis": lambda x: np.median(x.reshape(2, 3) ** 2, axis=0),
    "trimmed mean": lambda x: np.sort(x)[1:-1].mean() * x,
    "nanmedian": lambda x: np.nanmedian(np.where(np.arange(6) == 2, np.nan, x)) * x,
    "interp in a table": lambda x: np.interp(1.7 * x, _KNOTS, _TABLE) * x,
    "interp of traced values": lambda x: np.interp(x, _KNOTS, x[1:] ** 2, left=3.0),
    "interp of traced values past the ends": lambda x: np.interp(1.3 * x[:5], _KNOTS, np.cos(x[1:]), right=-1.0),
    "nan_to_num": lambda x: np.nan_to_num(np.log(x), posinf=7.0) * x,
    "argsort as an index": lambda x: x[np.argsort(x)] * np.linspace(1.0, 2.0, 6),
    "top two by another order": lambda x: np.sin(x)[np.argsort(x ** 3)[::-1][:2]] * x[:2],
    "rows taken in order": lambda x: np.take_along_axis(np.exp(x).reshape(2, 3), np.argsort(x.reshape(2, 3), axis=1),
                                                        axis=1).ravel(),
    "rows of a table by keys": lambda x: np.stack([x, x ** 2], 1)[np.argsort(np.cos(x))].ravel(),
    "argmax as an index": lambda x: x[np.argmax(x)] * np.sin(x),
    "rows at another's argmin": lambda x: np.stack([x, x ** 2], 1)[np.argmin(np.cos(x))],
    "drawdown": lambda x: x - np.maximum.accumulate(np.cumsum(x)),
    "running minimum of rows": lambda x: np.minimum.accumulate(np.outer(x[:3], x), axis=1).ravel() * 2.0,
    "cubic spline of constant values": lambda x: _spline()(_KNOTS, np.sin(_KNOTS))(x) * x,
    "spline's derivative, 2 columns": lambda x: _spline("make_interp_spline")(
        _KNOTS, np.stack([_TABLE, _KNOTS ** 2], 1), k=3).derivative()(x[:4]).ravel(),
}


def _spline(name: str = "CubicSpline"):
    return getattr(pytest.importorskip("scipy.interpolate"), name)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")  # (nan_to_num's NaNs)
@pytest.mark.parametrize("name", sorted(PER_CALL))
def test_one_trace_serves_every_point(name):
    assert_one_trace_serves(PER_CALL[name], X, POINTS, value_rtol=1e-14)  # (a converted BSpline: to rounding)


def test_later_calls_skip_f():
    def f(x):
        return np.median(x) * x + np.sort(x)

    jf = jacc.jacobian(f)
    for p in POINTS * 2:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 4 and jf.cache.rebuilds == 0


def test_closed_forms():
    x = np.array([0.0, 4.0, 1.0, 9.0])
    np.testing.assert_array_equal(jacc.jacobian(np.median)(x), [0.0, 0.5, 0.5, 0.0])
    # the 30th percentile of 4 values sits at position 0.9: 0.1 of the smallest, 0.9 of the next
    np.testing.assert_allclose(jacc.jacobian(lambda x: np.percentile(x, 30.0))(x), [0.1, 0.0, 0.9, 0.0], rtol=1e-14)
    np.testing.assert_array_equal(jacc.jacobian(np.sort)(x), np.eye(4)[[0, 2, 1, 3]])


@pytest.mark.parametrize("method", orders.METHODS)
def test_every_quantile_method_is_numpys(method):
    """Values bit for bit NumPy's, Jacobians the weights of the order statistics each method reads
    (checked by central differences: the picks depend on n and q, not on the values), with and
    without NaNs skipped, at sizes whose positions fall on and between ranks."""
    rng = np.random.default_rng(3)
    qs = np.array([0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0])
    for n in (1, 2, 5, 6, 9):
        x = rng.normal(size=(2, n))
        f = lambda x: np.quantile(x, qs, axis=1, method=method)  # noqa: B023, E731
        g = trace(f, x)
        np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
        np.testing.assert_allclose(jacc.jacobian(f, retrace=False)(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-7)
    nan = np.arange(7) % 3 == 1
    f = lambda x: np.nanpercentile(np.where(nan, np.nan, x), 100 * qs, method=method) * x[0]  # noqa: E731
    g = trace(f, X[:1].repeat(7))
    for p in (rng.normal(size=7), rng.normal(size=7)):
        np.testing.assert_array_equal(g.evaluate({"x": p})[g.outputs[0]], f(p))
        np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_nan_rows_give_numpys_nan():
    """The trace used to gather the order statistics of the non-NaN entries: median([1, nan, 2])
    was 2.0 where NumPy says nan."""
    x = np.array([1.0, np.nan, 2.0])
    for f in (np.median, lambda x: np.percentile(x, 30.0), lambda x: np.quantile(x, [0.0, 1.0])):
        g = trace(f, x)
        np.testing.assert_array_equal(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own "All-NaN slice"
        f = lambda x: np.nanmedian(x, axis=1)  # noqa: E731
        xs = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
        g = trace(f, xs)
        np.testing.assert_array_equal(g.evaluate({"x": xs})[g.outputs[0]], f(xs))


def test_running_extremes_follow_numpy_at_ties_and_nans():
    """The derivative goes to the element that set the record, the first of equal ones (a tie
    does not take it over); from a NaN on, NumPy's value stays NaN and so does the one-hot's owner."""
    x = np.array([1.0, 3.0, 3.0, 2.0, np.nan, 5.0])
    for kind, sign in (("maximum", 1.0), ("minimum", -1.0)):
        f = getattr(np, kind).accumulate
        g = trace(f, sign * x)
        assert not g.meta.get("value_dependent")
        np.testing.assert_array_equal(g.evaluate({g.inputs[0]: sign * x})[g.outputs[0]], f(sign * x))
        J = jacc.jacobian(f, retrace=False, nonfinite="propagate")(sign * x)
        np.testing.assert_array_equal(J, np.eye(6)[[0, 1, 1, 1, 4, 4]])
    n = int(np.sqrt(orders.BLOCK_MAX)) + 1  # past the block: read at the point, as before
    assert "numpy.maximum.accumulate" in trace(np.maximum.accumulate, np.arange(n) % 7.0).meta["value_dependent"][0]


def test_a_sort_too_long_for_a_block_is_read_at_the_point():
    n = int(np.sqrt(orders.BLOCK_MAX)) + 1
    x = np.random.default_rng(0).normal(size=n)
    f = lambda x: np.sort(x)[::7] * 2.0  # noqa: E731
    assert "numpy.sort" in trace(f, x).meta["value_dependent"][0]
    assert not trace(f, x[:n - 1]).meta.get("value_dependent")
    jf = jacc.jacobian(f)
    for p in (x, -x):
        np.testing.assert_array_equal(jf(p), 2.0 * np.eye(n)[np.argsort(p, kind="stable")[::7]])


def test_graph_files_keep_the_ops(tmp_path):
    f = lambda x: np.quantile(np.sort(np.minimum.accumulate(x.reshape(2, 3), axis=1), axis=0), [0.25, 0.5], axis=1,  # noqa: E731
                              method="hazen")
    g = trace(f, X)
    path = tmp_path / "orders.json"
    g.save(path)
    ops = {n["op"] for n in json.loads(path.read_text())["nodes"]}
    assert {"sort", "quantile", "running_extreme"} <= ops
    h = jacc.load(path)
    for p in POINTS:
        np.testing.assert_array_equal(h.evaluate({"x": p})[h.outputs[0]], f(p))


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("name", ["sorted weights", "drawdown", "running minimum of rows"])
def test_other_backends(backend, name):
    pytest.importorskip(backend)
    f = PER_CALL[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jf = jacc.jacobian(f, backend=backend, retrace=False)
        jf(X)
        for p in POINTS[1:] + [np.round(X)]:  # (rounded: ties)
            np.testing.assert_allclose(jf(p), jacc.jacobian(f, compile=False)(p), rtol=1e-13)
    # (the torch program once failed on its helpers' float32 one-hots and fell back to the executor)
    assert jf.ran == backend


@pytest.mark.parametrize("f", [
    lambda x: x * np.argsort(x)[0],  # an integer used as a number
    lambda x: x[(np.argsort(x) + 1) % 6],  # arithmetic on the integers
    lambda x: x.reshape(3, 2)[np.argsort(x[:2])],  # rows of an array whose leading axis is not the keys'
    lambda x: x[np.asarray(np.argsort(x))],
    lambda x: x * float(np.argmax(x)),
    lambda x: x[np.argmin(x) - 1],
    lambda x: (lambda k: k[np.argsort(k, axis=1)])(x[:4].reshape(2, 2)).ravel(),  # rows picked, not sorted
    lambda x: np.take(x[:4].reshape(2, 2), np.argsort(x[:4].reshape(2, 2), axis=0), axis=0).ravel(),
    lambda x: np.take(np.outer(x, x), np.argsort(x), axis=1).ravel(),  # along y's axis 1: columns
    lambda x: np.take(np.outer(x, x), np.argmax(x), axis=1),
], ids=["a number", "arithmetic", "other shape", "np.asarray", "argmax as a number", "argmin arithmetic",
        "2-d order as an index", "2-d order in np.take", "np.take along axis 1", "argmax in np.take along axis 1"])
def test_reading_an_orders_integers_makes_the_trace_value_dependent(f):
    assert "(its integers read)" in trace(f, X).meta["value_dependent"][0]
    jf = jacc.jacobian(f)
    for p in POINTS:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def _order_then_changed(x):
    z = x * 1.0
    o = np.argsort(z)
    z *= -1.0  # NumPy indexes the new z with the order of the old one
    return z[o]


def _extreme_then_changed(x):
    z = x * 1.0
    i = np.argmax(z)
    z[:] = z[::-1].copy()
    return z[i] * x


def _tied_keys(x):
    return x[np.argsort(np.floor(x))]  # floor ties: NumPy's default sort need not be stable


@pytest.mark.parametrize("f", [_order_then_changed, _extreme_then_changed, _tied_keys])
@pytest.mark.parametrize("retrace", [True, False])
def test_an_order_is_numpys_order_of_the_keys_as_they_were(f, retrace):
    jf = jacc.jacobian(f, retrace=retrace)
    for x in ([0.3, -1.2, 2.5, 0.9, 1.7, 0.45, 1.25], [1.5, 0.7, 1.3, 0.9, 0.5, 1.2, 0.8],
              [-0.4, 2.2, 0.1, -1.6, 0.6, 1.9, 1.05]):
        x = np.array(x)
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
