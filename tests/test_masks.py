"""Recorded masks (jacc.masks): comparisons that select values are part of the trace, so one trace
serves every point; comparisons whose entries are read keep the trace value-dependent."""

import warnings

import numpy as np
import pytest
from conftest import assert_one_trace_serves, fd_jacobian

import jacc
from jacc.masks import Mask
from jacc.trace import trace

X = np.array([0.7, -1.3, 2.2, -0.4, 1.6])
POINTS = [X, -X, np.array([-0.9, 1.1, -2.3, 0.45, 0.2])]  # (no point on a threshold: FD jumps there)


def _leaky(x):
    y = x * 1.0
    y[y < 0] = 0.0  # a scalar written through a mask: where(mask, 0, y)
    return y + 0.1 * x


RECORDED = {
    "where": lambda x: np.where(x > 0, x ** 2, np.sin(x)),
    "relu product": lambda x: x * (x > 0),
    "product first": lambda x: (x >= 0.5) * np.exp(x),
    "astype": lambda x: (x < 1.0).astype(float) * x + (x < 1.0).astype(np.float64),
    "and/or/not": lambda x: np.where((x > -1) & ~(x > 1) | (x > 2), x, -2 * x),
    "logical": lambda x: np.where(np.logical_or(x < -1, np.logical_not(x < 1.5)), x ** 3, x),
    "select": lambda x: np.select([x < -1, x < 1], [-x, x ** 2], default=np.cos(x)),
    "setitem": _leaky,
    "broadcast": lambda x: np.where(x[:, None] > x[None, :], x[:, None] * x[None, :], 0.0).sum(axis=1),
    "against a constant array": lambda x: np.where(x > np.linspace(-1, 1, 5), x, 0.5 * x),
    "scalar": lambda x: np.where(x[0] > x[1], x[0] * x, x[1] * x),
    "chained": lambda x: np.clip(x, -1, 1) * np.where(np.abs(x) < 1, 1.0, np.tanh(x)),
    "float constants": lambda x: np.where(x > 0, 1.0, -0.5) * x + (2.0 * (x > 1) - 1.0) * x ** 2,
    "reductions where=": lambda x: (np.sum(x ** 2, where=x > 0) + np.mean(x, where=x < 0.5)
                                    + np.var(x, where=np.abs(x) < 1.5) + np.max(x, where=x < 1, initial=-5.0)) * x,
    "rearranged": lambda x: (np.where((x > 0)[::-1].reshape(5, 1)[:, 0], x, 2 * x)
                             + np.where(np.concatenate([x[:2] > 0, x[2:] < 1]), x ** 2, 0.0)
                             + np.where(np.stack([x > 0, x < 1]).T[:, 1], x, 0.5 * x)),
    "nan-safe": lambda x: np.where(np.isnan(x) | np.isinf(x), 0.0, x ** 2) * np.isfinite(x),
    "float arrays": lambda x: np.where(x < 0.5, np.full(5, 2.0), np.arange(5.0)) * x + (x > 0) / 4.0,
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_recorded_mask_serves_every_point(name):
    assert_one_trace_serves(RECORDED[name], X, POINTS, value_rtol=1e-15)  # (np.var's where= sums in its own order)


@pytest.mark.parametrize("name", ["where", "and/or/not", "select", "setitem"])
def test_later_calls_skip_f(name):
    f = RECORDED[name]
    jf = jacc.jacobian(f)
    for p in POINTS * 2:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
    assert jf.cache.skipped >= 3 and jf.cache.rebuilds == 0, (jf.cache.skipped, jf.cache.why_traced, jf.ran)


@pytest.mark.parametrize("f, why", [
    (lambda x: x * 2.0 if (x > 0).all() else x, "all"),
    (lambda x: x[x > 0].size * x, "a selection's size"),
    (lambda x: x[x > 0].sum(axis=0, keepdims=True) * x, "a selection summed keeping its axis (its shape)"),
    (lambda x: x * np.sum(x > 0), "a count"),
    (lambda x: x * np.where(x > 0, 1, 0), "np.where of integers (an integer array, as NumPy's)"),
    (lambda x: x * ((x > 0) * 2 - 1), "integer arithmetic"),
    (lambda x: x * np.asarray(x > 0), "np.asarray"),
    (lambda x: x * np.nonzero(x > 0)[0].size, "nonzero"),
    (lambda x: x * float((x > 0)[1]), "an entry"),
    (lambda x: x * np.stack([x > 0, x < 1]).T.sum(), "a count of a rearranged mask"),
    (lambda x: x * 2.0 if x[0] > 0 else x, "bool()"),
])
def test_reading_a_masks_entries_makes_the_trace_value_dependent(f, why):
    g = trace(f, X)
    assert g.meta.get("value_dependent"), why
    jf = jacc.jacobian(f)
    for p in POINTS:
        np.testing.assert_allclose(jf(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)


def test_a_mask_is_numpys_boolean_array():
    seen = {}

    def f(x):
        m = x > 0.5
        seen.update(type=type(m), dtype=m.dtype, shape=m.shape, ndim=m.ndim, size=m.size, len=len(m),
                    shape_fn=np.shape(m), values=np.asarray(m).tolist(), repr="Mask" in repr(m))
        return x * m
    trace(f, X)
    assert seen == dict(type=Mask, dtype=np.dtype(bool), shape=(5,), ndim=1, size=5, len=5, shape_fn=(5,),
                        values=(X > 0.5).tolist(), repr=True)
    with pytest.raises(TypeError, match="unhashable"):
        trace(lambda x: {x > 0: 1} and x, X)
    with pytest.raises(ValueError, match="ambiguous"):
        trace(lambda x: x if x > 0 else -x, X)


def test_a_mask_is_the_comparison_where_it_was_made():
    def f(x):
        y = x * 1.0
        m = y > 0
        y[0] = -10.0  # after the comparison: the mask keeps y's entries of before
        return np.where(m, y, 0.0)
    g = trace(f, X)
    assert not g.meta.get("value_dependent")
    for p in POINTS:
        np.testing.assert_array_equal(g.evaluate({"x": p})[g.outputs[0]], f(p))


def test_comparisons_with_text_or_none_are_numpys():
    assert trace(lambda x: x * (x == None).sum(), X).meta.get("value_dependent")  # noqa: E711
    got = {}
    trace(lambda x: got.setdefault("r", x == "a") is not None and x, X)
    assert got["r"] is False or not np.any(got["r"])


def test_closed_over_thresholds_are_followed_when_they_change():
    c = np.array([0.0])
    f = lambda x: np.where(x > c, x ** 2, -x)  # noqa: E731
    jf = jacc.jacobian(f)
    for p in POINTS:
        jf(p)
    c[0] = 1.0  # in place: the guards see it and trace again
    np.testing.assert_allclose(jf(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-7)


def test_recorded_masks_on_other_backends():
    pytest.importorskip("jax")
    f = RECORDED["and/or/not"]
    x = np.random.default_rng(0).normal(size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jf = jacc.jacobian(f, backend="jax", retrace=False)
        jf(x)
        np.testing.assert_allclose(jf(-x), jacc.jacobian(f, compile=False)(-x), rtol=1e-13)


def test_masks_of_a_values_only_block_are_plain():
    from jacc.trace import values_only

    def f(x):
        with values_only():
            m = x > 0
        assert type(m) is np.ndarray
        return x * m
    assert trace(f, X).meta.get("value_dependent")


def test_reading_a_mask_after_the_trace_leaves_the_graph_as_it_was():
    kept = {}

    def f(x):
        kept["mask"] = x > 0.5
        return x * float(x[0] > 0.0)  # (value-dependent already: the list is not empty)

    g = trace(f, X)
    before = list(g.meta["value_dependent"])
    assert bool(kept["mask"][2]) and g.meta["value_dependent"] == before


# -- branches taken at an exact tie of traced values warn (jacc.TieWarning) ----------------------

def _ties_warned(f, *args) -> tuple[np.ndarray, int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        J = jacc.jacobian(f)(*args)
    return J, sum(w.category is jacc.TieWarning for w in caught)


_P = np.polynomial.polynomial


@pytest.mark.parametrize("f, c", [
    (lambda c: np.poly1d(c)(np.array([1.5, 2.0])), [0.0, 2.0, 3.0]),  # a leading 0 trimmed
    (lambda c: _P.polyval(np.array([1.5, 2.0]), _P.polymul(c, np.array([1.0, 1.0]))), [1.0, 2.0, 0.0]),
    (lambda c: (np.polynomial.Polynomial(c) + 1.0)(np.array([1.5, 2.0])), [1.0, 2.0, 0.0]),
    (lambda c: c * 2.0 if c[0] == 0 else c * c, [0.0, 2.0, 3.0]),
    (lambda c: c * 2.0 if np.all(c[:1] != c[1:2] * 0.0) else np.sin(c), [0.0, 2.0, 3.0]),
])
def test_a_branch_on_an_exact_tie_of_a_traced_value_warns(f, c):
    # these functions are smooth in c where the branch taken drops a term, so the Jacobian of the
    # branch differs from the function's (the warning's reason); off the tie they agree, unwarned
    c = np.array(c)
    J, warned = _ties_warned(f, c)
    assert warned >= 1
    off = c + np.array([0.25, 0.0, 0.5])
    J_off, warned_off = _ties_warned(f, off)
    assert warned_off == 0
    np.testing.assert_allclose(J_off, fd_jacobian(f, [off], 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f", [
    lambda x: x if (x > 0).all() else -x,  # an order, not an equality
    lambda x: np.where(x == 0, 1.0, x),  # a mask that selects, read as no value
    lambda x: x * 2.0 if not np.any(x != x) else x,  # a NaN test compares x with itself
    lambda x: x * 3.0 if x[0] == 7.0 else x,  # no tie at this point
])
def test_no_tie_warning_where_no_branch_reads_an_exact_tie(f):
    x = np.array([0.0, 2.0, 3.0]) + np.array([1.0, 0.0, 0.0])
    J, warned = _ties_warned(f, x)
    assert warned == 0
    np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f, tied, untied", [
    (lambda x: x * 2.0 if np.sum(x == x[0:1]) == 1 else x, [1.0, 2.0, 1.0], [1.0, 2.0, 3.0]),
    (lambda x: x * 2.0 if np.sum(x.reshape(2, 2).T == x.reshape(2, 2)) == 2 else x, [1.0, 2.0, 2.0, 4.0],
     [1.0, 2.0, 3.0, 4.0]),
    # copies that pick entries (hunt CC): a scalar, fancy indices, flatten against ravel
    (lambda x: x * 2.0 if np.sum(x == x[0]) == 1 else x, [1.0, 2.0, 1.0], [1.0, 2.0, 3.0]),
    (lambda x: x * 2.0 if np.sum(x[[0, 1, 2]] == x[[0, 3, 2]]) == 2 else x, [1.0, 2.0, 3.0, 2.0],
     [1.0, 2.0, 3.0, 4.0]),
    (lambda x: x * 2.0 if np.sum(x.reshape(2, 2).flatten() == x.reshape(2, 2).T.ravel()) == 2 else x,
     [1.0, 2.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0]),
    (lambda x: x * 2.0 if x[0] == x[-3] else x, None, [1.0, 2.0, 3.0]),
])
def test_an_entry_compared_with_itself_through_a_view_is_no_tie(f, tied, untied):
    # SciPy's pearsonr tests x == x[..., 0:1], whose first entry is x[0] == x[0] at every point:
    # only the other entries' equalities are ties (a symmetric matrix's off-diagonal pairs)
    assert _ties_warned(f, np.array(untied))[1] == 0
    assert tied is None or _ties_warned(f, np.array(tied))[1] >= 1
    jf = jacc.jacobian(f)  # (later calls compare replayed values, Python floats for scalars: they crashed)
    for scale in (1.0, 2.0, 3.0):
        jf(scale * np.array(untied))


@pytest.mark.parametrize("f", [
    lambda x: x * ((x > 0) + (x > 1)),  # NumPy: bool + bool is their OR, still a boolean
    lambda x: x * ((x > 0) + (x > 1) + (x > -5)),
    lambda x: ((x > 0) + (x > 1)) ** 2 * x,
    lambda x: x * np.maximum(x > 0, x < 1) + x * np.minimum(x > 0, x < 1),
    lambda x: x[(x > 0) * (x < 1)] * 2.0,  # an AND, a boolean index
    lambda x: x * ((x > 1) + np.array([True, False, False, False])),
])
def test_arithmetic_of_masks_alone_is_numpys_logic(f):
    # read as their 0.0/1.0 vertices, (x > 0) + (x > 1) was 2 where both hold: a Jacobian of 2
    # where NumPy's function has slope 1, silently, and cached (found by a hunt)
    jf = jacc.jacobian(f)
    for x in (np.array([0.5, 2.0, -1.0, 1.5]), np.array([0.8, 2.3, -0.7, 0.2])):
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), atol=1e-7)
    with pytest.raises(TypeError, match="numpy boolean subtract"):
        jacc.jacobian(lambda x: x * ((x > 0) - (x > 1)))(np.ones(4))


def test_counting_a_mask_where_numpys_functions_are_swapped():
    """m.sum() looked up np.sum when called, which a trace with NumPy's constructors swapped in
    (f builds np.array([...]) of traced values) had replaced: KeyError (found by a hunt)."""
    def f(x):
        return np.array([x[0] * x[1], x[1] + x[2]]) * (x > 0).sum()

    def g(x):
        return np.array([x[0] * x[1], x[1] + x[2]]) * (x > 0).mean()
    x = np.array([-1.0, 2.0, 0.5])
    local = np.array([[2.0, -1.0, 0.0], [0.0, 1.0, 1.0]])  # (of [x0 x1, x1 + x2]; two entries exceed 0)
    np.testing.assert_allclose(jacc.jacobian(f)(x), 2 * local, rtol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(g)(x), 2 / 3 * local, rtol=1e-14)


def test_a_mask_and_an_integer_is_bitwise():
    """(x > 0) & 2 is 0 in NumPy (True & 2); it was read as a logical and (found by a hunt)."""
    f = lambda x: x * ((x > 0) & 2) + x * ((x > 0) | 2)  # noqa: E731
    x = np.array([1.0, -1.0, 2.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), np.diag(((x > 0) & 2) + ((x > 0) | 2)).astype(float))


@pytest.mark.parametrize("f", [
    lambda x: np.where(x > x[0] * 0.5, x, 0.0),  # a replay's x[0] * 0.5 is a Python-float scalar,
    lambda x: np.where(x[0] * 0.5 < x, x, 0.0),  # whose reflected comparison Python calls first
    lambda x: np.where(x[1] * 2.0 >= x[0] * 3.0, x, -x),
])
def test_a_comparison_with_a_traced_scalar_replays_as_recorded(f):
    from jacc.trace import record_call

    first = record_call(f, (X,), {}, (0,), np.float64)
    again = record_call(f, (-X,), {}, (0,), np.float64, expect=first.recording())
    assert again.graph is None  # (replayed step for step: no graph of its own)
    np.testing.assert_allclose(jacc.jacobian(f)(-X), fd_jacobian(f, [-X], 0), rtol=1e-6, atol=1e-7)


def test_labels_passed_as_data_equal_to_a_class_are_no_tie():
    # y == k of labels passed as data, read as values (a selection summed over its rows): no
    # derivative flows from y, so its exact equalities drop none, and nothing is warned
    def g(X, y):
        return np.stack([X[y == k].sum(axis=1).sum() for k in range(3)])

    rng = np.random.default_rng(7)
    jf = jacc.jacobian(g)
    for _ in range(3):
        X, y = rng.standard_normal((20, 3)), rng.integers(0, 3, 20)
        y[:3] = [0, 1, 2]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            J = jf(X, y)
        assert not [w for w in caught if issubclass(w.category, jacc.TieWarning)]
        np.testing.assert_allclose(J, fd_jacobian(g, [X, y], 0), rtol=1e-6, atol=1e-7)


def test_a_masks_dtype_reads_no_entries():
    """m.dtype of a mask (or an argsort's order) fell through to the entries: the trace became
    value-dependent, so SciPy's log_softmax (which asks its mask's dtype) ran f at every call."""
    import scipy.special as sp

    def f(x):
        m, o = x > 0, np.argsort(x)
        assert m.dtype == np.bool_ and o.dtype == np.intp
        return np.where(m, x, 0.0)

    assert jacc.trace(f, np.array([1.0, -1.0])).meta.get("value_dependent") is None
    jf = jacc.jacobian(sp.log_softmax)
    for k in range(5):
        x = np.array([0.3, -1.2, 2.0, 0.1]) * (1 + 0.2 * k)
        np.testing.assert_allclose(jf(x), fd_jacobian(sp.log_softmax, [x], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None


def test_a_branch_that_is_not_finite_where_where_discards_it_is_refused_by_name():
    """where(isnan(y), 0, y*y) over a y holding NaN: the derivative of the discarded branch there is
    0 times NaN, NaN (IEEE, as JAX's). SciPy's nan_policy="omit" masks so: scipy.stats.tvar with
    limits excluding an entry gave an all-NaN Jacobian silently (hunt BW); now it is refused, naming
    the call, unless NaN is asked to propagate. A finite discarded branch changes nothing."""
    from jacc.trace import UnsupportedOperationError
    x = np.array([0.3, 0.8, -1.3, 0.9])

    def f(x):
        y = np.where(x < -1.0, np.nan, x)
        return np.sum(np.where(np.isnan(y), 0.0, y * y))
    with pytest.raises(UnsupportedOperationError, match="numpy.where at .*discards it"):
        jacc.jacobian(f)(x)
    assert np.isnan(jacc.jacobian(f, nonfinite="propagate")(x)).any()
    g = lambda x: np.sum(np.where(x < -1.0, 0.0, x * x))  # noqa: E731
    np.testing.assert_array_equal(jacc.jacobian(g)(x), np.where(x < -1.0, 0.0, 2.0 * x))
    st = pytest.importorskip("scipy.stats")
    with pytest.raises(UnsupportedOperationError, match="numpy.where"):
        jacc.jacobian(lambda x: st.tvar(x, (-1.0, 1.0)))(x)
    inside = np.array([0.3, 0.8, -0.3, 0.9])
    mean = inside.mean()
    np.testing.assert_allclose(jacc.jacobian(lambda x: st.tvar(x, (-1.0, 1.0)))(inside),
                               2.0 * (inside - mean) / (inside.size - 1), rtol=1e-12)
