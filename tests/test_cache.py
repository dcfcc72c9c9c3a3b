"""jacobian's cache never answers for values it did not see; returned arrays belong to the caller."""

import types

import numpy as np
import pytest
from conftest import fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc


def fresh(f, *args, argnums=0):
    """The Jacobian from a new jacobian() with no cache: the reference a cached call must equal."""
    return jacc.jacobian(f, argnums=argnums, cache=False)(*args)


# -- item 2: constant arrays ---------------------------------------------------------------------
def test_mutating_a_constant_argument_after_a_call_changes_nothing_cached():
    jf = jacc.jacobian(lambda x, c: x * c)
    x, c = np.ones(3), np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(jf(x, c), np.diag(c))
    c[:] = 5.0
    np.testing.assert_array_equal(jf(x, np.array([1.0, 2.0, 3.0])), np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(jf(x, c), 5 * np.eye(3))


def test_matrix_constant_mutated_in_place_is_seen():
    W = np.arange(6.0).reshape(2, 3)
    jf = jacc.jacobian(lambda x: np.tanh(W @ x))
    x = np.full(3, 0.1)
    jf(x)
    W[0, 0] = -4.0
    np.testing.assert_allclose(jf(x), fd_jacobian(lambda v: np.tanh(W @ v), [x], 0), rtol=1e-7, atol=1e-9)


def test_traced_graph_keeps_its_own_copy_of_constants():
    c = np.array([1.0, 2.0])
    g = jacc.trace(lambda x: x * c, np.ones(2))
    c[:] = 7.0
    np.testing.assert_array_equal(jacc.plan(g, "forward").execute(np.ones(2))[g.outputs[0], "x"], np.diag([1.0, 2.0]))


# -- item 3: objects, closures, globals ----------------------------------------------------------
def test_object_attribute_change_is_seen():
    m = types.SimpleNamespace(W=np.eye(2))
    jf = jacc.jacobian(lambda x, m: m.W @ x)
    np.testing.assert_array_equal(jf(np.ones(2), m), np.eye(2))
    m.W = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(jf(np.ones(2), m), m.W)
    m.W[1, 1] = -1.0  # in place, same object
    np.testing.assert_array_equal(jf(np.ones(2), m), [[1.0, 2.0], [3.0, -1.0]])


def test_closure_variable_change_is_seen_and_reuses_the_plan():
    scale = 2.0
    jf = jacc.jacobian(lambda x: scale * np.sin(x))
    assert float(jf(0.0)) == 2.0
    scale = 3.0
    assert float(jf(0.0)) == 3.0
    assert jf.cache.misses == 1 and jf.cache.rebuilds == 1


GLOBAL_SHIFT = 1.0


def _uses_global(x):
    return x ** 2 * GLOBAL_SHIFT


def test_global_variable_change_is_seen():
    global GLOBAL_SHIFT
    jf = jacc.jacobian(_uses_global)
    np.testing.assert_allclose(jf(np.array([1.0, 2.0])), np.diag([2.0, 4.0]))
    GLOBAL_SHIFT = 10.0
    try:
        np.testing.assert_allclose(jf(np.array([1.0, 2.0])), np.diag([20.0, 40.0]))
    finally:
        GLOBAL_SHIFT = 1.0


def test_keyword_argument_change_is_seen():
    jf = jacc.jacobian(lambda x, k=1.0: x * k)
    np.testing.assert_array_equal(jf(np.ones(2), k=2.0), 2 * np.eye(2))
    np.testing.assert_array_equal(jf(np.ones(2), k=4.0), 4 * np.eye(2))


def test_nan_constants_compare_equal_to_themselves_and_signed_zeros_differ():
    c = np.array([np.nan, 1.0])
    jf = jacc.jacobian(lambda x, c: x * c)
    jf(np.ones(2), c)
    jf(np.ones(2), c.copy())
    assert jf.cache.hits == 1 and jf.cache.rebuilds == 0
    jg = jacc.jacobian(lambda x, c: x / c, compile=False)
    assert float(jg(1.0, 0.0)) == np.inf
    assert float(jg(1.0, -0.0)) == -np.inf  # -0.0 is another constant: not a stale hit


# -- item 4: results are the caller's ------------------------------------------------------------
@pytest.mark.parametrize("compile", [True, False])
def test_returned_jacobians_are_writable_and_share_nothing(compile):
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    jf = jacc.jacobian(lambda a, b: a * b, argnums=(0, 1), compile=compile)
    Ja, Jb = jf(a, b)
    for J in (Ja, Jb):
        assert J.flags.writeable
        assert not np.shares_memory(J, a) and not np.shares_memory(J, b)
    Ja *= 2  # must not raise
    b[:] = 100.0
    np.testing.assert_array_equal(Ja, 2 * np.diag([3.0, 4.0]))
    Ja2, _ = jf(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(Ja2, np.diag([3.0, 4.0]))  # the first result's edit did not leak


def test_jacobian_equal_to_a_constant_matrix_is_a_copy():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    jf = jacc.jacobian(lambda x: W @ x)
    J = jf(np.ones(2))
    assert not np.shares_memory(J, W)
    J[0, 0] = 99.0
    np.testing.assert_array_equal(jf(np.ones(2)), W)


def test_scalar_outputs_are_writable():
    J = jacc.jacobian(lambda x: x * 3.0)(2.0)
    J[...] = 1.0
    assert float(jacc.jacobian(lambda x: x * 3.0)(2.0)) == 3.0


# -- item 6: compiled scalar path keeps every block's shape --------------------------------------
def test_constant_array_output_of_scalar_input_has_array_jacobian():
    J = jacc.jacobian(lambda x: np.ones(3))(1.0)
    assert J.shape == (3,)
    np.testing.assert_array_equal(J, 0.0)


def test_scalar_path_with_an_unused_vector_argument():
    Jx, Jy = jacc.jacobian(lambda x, y: np.sin(x), argnums=(0, 1))(1.0, np.ones(3))
    assert Jx.shape == () and Jy.shape == (3,)
    assert float(Jx) == pytest.approx(np.cos(1.0))
    np.testing.assert_array_equal(Jy, 0.0)


def test_vector_output_of_scalar_inputs_off_the_path():
    Jx, Jy = jacc.jacobian(lambda x, y: (np.sin(x), np.zeros((2, 2))), argnums=(0, 1))(1.0, 2.0)
    assert Jx[0].shape == () and Jy[1].shape == (2, 2)


# -- item 9: names -------------------------------------------------------------------------------
def test_parameters_named_like_generated_vertices():
    def f(v1, v2, v3):
        return np.sin(v1) * v2 + v3 * v1

    args = (np.array([0.3, 0.4]), np.array([1.0, 2.0]), np.array([5.0, 6.0]))
    got = jacc.jacobian(f, argnums=(0, 1, 2))(*args)
    for k in range(3):
        np.testing.assert_allclose(got[k], fd_jacobian(f, list(args), k), rtol=1e-7, atol=1e-9)
    g = jacc.trace(f, *args)
    assert g.inputs == ["v1", "v2", "v3"] and len(set(g.nx.nodes)) == len(g)


def test_scalarized_inputs_named_like_generated_vertices():
    g = jacc.trace(lambda v1: v1[0] * v1[1], np.ones(2), scalarize=True)
    assert g.inputs == ["v1[0]", "v1[1]"]
    assert jacc.plan(g, "reverse").execute(2.0, 3.0)[g.outputs[0], "v1[0]"] == 3.0


# -- argnums -------------------------------------------------------------------------------------
@pytest.mark.parametrize("argnums, err, msg", [
    ("x", TypeError, "argnums must be an int or a tuple of ints"),
    ((0, "1"), TypeError, "argnums must be an int or a tuple of ints"),
    (1.0, TypeError, "argnums must be an int"),
    (True, TypeError, "argnums must be an int"),
    ((0, 0), ValueError, "names an argument twice"),
    ((), ValueError, "argnums is empty"),
])
def test_bad_argnums_say_what_to_pass(argnums, err, msg):
    with pytest.raises(err, match=msg):
        jacc.jacobian(lambda x, y: x * y, argnums=argnums)


def test_argnums_that_normalise_to_the_same_position():
    jf = jacc.jacobian(lambda x, y: x * y, argnums=(1, -1))
    with pytest.raises(ValueError, match="names an argument twice"):
        jf(1.0, 2.0)
    with pytest.raises(ValueError, match="out of range"):
        jacc.jacobian(lambda x, y: x * y, argnums=2)(1.0, 2.0)


def test_a_differentiated_argument_given_by_keyword_is_named():
    with pytest.raises(ValueError, match="'x' came by keyword.*pass them positionally"):
        jacc.jacobian(lambda x: 2 * x)(x=np.ones(2))


def test_numpy_integer_argnums():
    assert float(jacc.jacobian(lambda x, y: x * y, argnums=np.int64(1))(2.0, 3.0)) == 2.0


# -- item 23: value-dependent code reuses its plan -----------------------------------------------
@pytest.mark.parametrize("read", [True, False])
def test_value_dependent_mlp_plans_once(read):
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(8, 4)), rng.normal(size=(3, 8))

    def mlp(x):
        h = W1 @ x
        # leaky ReLU; np.asarray reads the mask's entries, so the trace is value-dependent
        h = np.where(np.asarray(h > 0) if read else h > 0, h, 0.1 * h)
        return np.tanh(W2 @ h)

    jf = jacc.jacobian(mlp)
    orders = []
    for _ in range(4):
        x = rng.normal(size=4)
        np.testing.assert_allclose(jf(x), fd_jacobian(mlp, [x], 0), rtol=1e-6, atol=1e-8)
        orders.append(jf.plan.order)
    # a recorded mask (jacc.masks) is computed by the plan's program: nothing to rebuild
    # and later calls need not run f at all
    c = jf.cache
    assert c.misses == 1 and (c.hits, c.rebuilds, c.skipped) == ((3, 3, 0) if read else (1, 0, 2))
    assert all(o == orders[0] for o in orders)


def test_branch_change_within_same_shapes_is_followed():
    def f(x):
        if x[0] > 0:
            return np.sin(x)
        return np.cos(x) * 2.0

    jf = jacc.jacobian(f)
    for x in (np.array([1.0, 2.0]), np.array([-1.0, 2.0]), np.array([0.5, 0.1])):
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_cache_false_plans_every_call():
    jf = jacc.jacobian(lambda x: np.sin(x), cache=False)
    jf(np.ones(2))
    jf(np.ones(2))
    assert jf.cache.misses == 2 and jf.cache.hits == 0


def test_threads_with_different_constants_get_their_own_results():
    from concurrent.futures import ThreadPoolExecutor

    jf = jacc.jacobian(lambda x, c: np.sin(x) * c)
    x = np.linspace(0.1, 1.0, 50)

    def job(k):
        return np.allclose(jf(x, float(k)), np.diag(np.cos(x) * k))

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(job, range(40)))


# -- the property: cached answers equal fresh ones after arbitrary mutation ----------------------
class Model:
    def __init__(self, W, b):
        self.W, self.b = W, b


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["input", "const", "closure", "attr", "attr_inplace", "shape"]),
                          st.floats(-3, 3, allow_nan=False)), min_size=1, max_size=6),
       st.booleans())
def test_cached_jacobians_equal_fresh_ones_after_any_mutation(edits, compile):
    rng = np.random.default_rng(1)
    x = rng.normal(size=3)
    c = rng.normal(size=3)
    m = Model(rng.normal(size=(2, 3)), rng.normal(size=2))
    box = {"s": 1.5}

    def f(x, c, m):
        s = box["s"]
        return np.tanh(m.W @ (x * c) + m.b) * s + (x[:2] if x.shape[0] > 2 else x.sum())

    jf = jacc.jacobian(f, compile=compile)
    jf(x, c, m)
    for what, v in edits:
        if what == "input":
            x[1] = v
        elif what == "const":
            c[0] = v
        elif what == "closure":
            box["s"] = v
        elif what == "attr":
            m.W = m.W + v
        elif what == "attr_inplace":
            m.b[0] = v
        else:
            x = np.append(x, v)
            c = np.append(c, 1.0)
            m.W = np.hstack([m.W, np.ones((2, 1))])
        got = jf(x, c, m)  # (a cached structure may run its scalar-level plan: rounding differs)
        want = fresh(f, x, c, m)
        # relative to the Jacobian's scale: an entry that is a difference of O(1) terms carries
        # their rounding (one case: 1.8e-3 off by 1.9e-15 in a row whose largest entry is 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("cache", [True, False])
def test_a_buffer_reused_inside_f_is_snapshotted_per_op(cache):
    buf = np.zeros(2)

    def f(x):
        buf[:] = [2.0, 3.0]
        y = x * buf
        buf[:] = [5.0, 7.0]  # the same array, other values, for the next op
        return y * buf

    jf = jacc.jacobian(f, cache=cache)
    for _ in range(2):
        np.testing.assert_array_equal(jf(np.ones(2)), np.diag([10.0, 21.0]))


def _long_steps(x, c):
    for _ in range(6):  # a dozen elimination steps or so
        x = np.sin(x) * c + x
    return x


def test_a_long_plan_runs_the_executor_first_and_lowers_at_its_next_call(monkeypatch):
    monkeypatch.setattr(jacc.api, "LOWER_LATER_STEPS", 5)
    jf = jacc.jacobian(_long_steps, backend="numpy")
    x, c = np.linspace(0.1, 0.9, 4), 1.5
    ref = fd_jacobian(lambda v: _long_steps(v, c), [x], 0)
    np.testing.assert_allclose(jf(x, c), ref, rtol=1e-7, atol=1e-9)
    assert jf.ran == "interpret" and jf.program is None
    np.testing.assert_allclose(jf(x, c), ref, rtol=1e-7, atol=1e-9)
    assert jf.ran == "numpy" and jf.program is not None
    # a structure whose constants change at every call shares the deferred runner: lowered at its second call
    # (c a NumPy scalar: a changing Python float would be data, next test)
    jg = jacc.jacobian(_long_steps, backend="numpy")
    jg(x, np.float64(1.5))
    assert jg.ran == "interpret"
    np.testing.assert_allclose(jg(x, np.float64(2.5)), fd_jacobian(lambda v: _long_steps(v, 2.5), [x], 0),
                               rtol=1e-7, atol=1e-9)
    assert jg.ran == "numpy"


def test_a_long_plan_with_data_is_lowered_when_the_data_change(monkeypatch):
    """The structure taking its data as inputs is made because calls repeat: it lowers at once."""
    monkeypatch.setattr(jacc.api, "LOWER_LATER_STEPS", 5)
    jg = jacc.jacobian(_long_steps, backend="numpy")
    x = np.linspace(0.1, 0.9, 4)
    jg(x, 1.5)
    assert jg.ran == "interpret"
    for c in (2.5, 3.5):
        np.testing.assert_allclose(jg(x, c), fd_jacobian(lambda v: _long_steps(v, c), [x], 0), rtol=1e-7, atol=1e-9)
        assert jg.ran == "numpy" and jg.plan.wrt == ["x"]


def test_a_long_plan_whose_trace_depends_on_values_is_lowered_at_its_third_call(monkeypatch):
    # (an ODE solver's steps read at the point: the structure recurs less often than a plain loop's)
    monkeypatch.setattr(jacc.api, "LOWER_LATER_STEPS", 5)

    def f(x, c):
        return _long_steps(x, c) if np.sum(x) > 0 else -x  # a branch read at the traced point

    jf = jacc.jacobian(f, backend="numpy")
    x, c = np.linspace(0.1, 0.9, 4), 1.5
    ref = fd_jacobian(lambda v: _long_steps(v, c), [x], 0)
    ran = []
    for _ in range(4):
        np.testing.assert_allclose(jf(x, c), ref, rtol=1e-7, atol=1e-9)
        ran.append(jf.ran)
    assert jf.plan.graph.meta.get("value_dependent")
    assert ran == ["interpret", "interpret", "numpy", "numpy"]


def test_a_short_plan_is_lowered_at_its_first_call():
    jf = jacc.jacobian(_long_steps, backend="numpy")
    jf(np.linspace(0.1, 0.9, 4), 1.5)
    assert jf.ran == "numpy"


@pytest.mark.parametrize("backend", ["auto", "numpy", "jax"])
@pytest.mark.parametrize("retrace", [True, False])
@pytest.mark.parametrize("first, then", [(2.0, np.array(2.0)), (np.array(2.0), 2.0), (np.float64(2.0), np.array(2.0))])
def test_a_float_and_a_0d_array_of_one_value_are_cached_apart(backend, retrace, first, then):
    # x += 1 rebinds a number and changes a 0-d array in place, which y (an alias) sees:
    # f is (x + 1)·x for the one (slope 2x + 1) and (x + 1)² for the other (2x + 2)
    pytest.importorskip("jax") if backend == "jax" else None

    def f(x):
        y = x
        x += 1.0
        return x * y

    def slope(v):
        return 2.0 * float(v) + (2.0 if isinstance(v, np.ndarray) else 1.0)
    jf = jacc.jacobian(f, backend=backend, retrace=retrace)
    for v in (first, first, first, then, then, first):
        assert float(jf(v.copy() if isinstance(v, np.ndarray) else v)) == slope(v)


def test_forty_shapes_in_turn_stay_cached():
    """A loop over 33 sequence lengths planned at every call with 32 shapes kept (found by a hunt)."""
    jf = jacc.jacobian(lambda x, c: np.tanh(x * c) * np.sum(x ** 2), strategy="reverse", backend="numpy")
    r = np.random.default_rng(0)
    for _ in range(2):
        for n in range(1, 41):
            jf(r.standard_normal(n), 1.3)
    misses = jf.cache.misses
    for n in range(1, 41):
        x = r.standard_normal(n)
        t = np.tanh(1.3 * x)
        np.testing.assert_allclose(jf(x, 1.3), np.diag(1.3 * (1 - t ** 2) * np.sum(x ** 2)) + np.outer(t, 2 * x),
                                   rtol=1e-12, atol=1e-15)
    assert jf.cache.misses == misses


def test_structures_that_do_not_repeat_are_planned_quickly_until_one_does():
    """E[idx] with new indices at every call is a new structure each call: auto's search and the
    scalar route's took 70 ms a call for a 10 × 4 embedding (found by a hunt). After CHURN_MISSES
    such calls, new structures take the likelier cheaper of forward and reverse and run on the
    executor; one that recurs is then planned as the strategy says."""
    from jacc.api import CHURN_MISSES

    r = np.random.default_rng(2)
    E, W = r.normal(size=(10, 4)), r.normal(size=(4, 2))

    def emb(E, idx):
        return np.tanh(E[idx].mean(axis=1) @ W).sum()

    def want(E, idx):
        g = np.zeros_like(E)
        for row in range(idx.shape[0]):
            s = 1 - np.tanh(E[idx[row]].mean(axis=0) @ W) ** 2
            np.add.at(g, idx[row], np.outer(np.ones(idx.shape[1]), W @ s) / idx.shape[1])
        return g

    jf = jacc.jacobian(emb)
    # (uint64 indices: constants, a new structure each; int64 and narrower ones are data, read through a mask)
    idxs = [r.integers(0, 10, (3, 5), dtype=np.uint64) for _ in range(CHURN_MISSES + 3)]
    for k, idx in enumerate(idxs):
        np.testing.assert_allclose(jf(E, idx), want(E, idx), rtol=1e-12)
        quick = k >= CHURN_MISSES
        assert jf.plan.strategy.startswith("auto") != quick and (jf.ran == "interpret") == quick, (k, jf.plan.strategy)
    np.testing.assert_allclose(jf(E, idxs[-1]), want(E, idxs[-1]), rtol=1e-12)  # it recurs
    assert jf.plan.strategy.startswith("auto")
    for _ in range(20):  # many calls replaying it, then new indices again: quick plans again after a few
        jf(E, idxs[-1])
    for k in range(CHURN_MISSES + 2):
        idx = r.integers(0, 10, (3, 5), dtype=np.uint64)
        np.testing.assert_allclose(jf(E, idx), want(E, idx), rtol=1e-12)
        assert jf.plan.strategy.startswith("auto") == (k < CHURN_MISSES), (k, jf.plan.strategy)


def test_structures_that_mostly_do_not_repeat_are_planned_quickly_too():
    """sorted(x) of a traced 4-vector: one of 24 structures per call, of which the shape keeps 8, so
    hits come between the misses. They had reset the count of misses, and every new order was
    searched and lowered (30 ms a call; hunt BD): now each hit takes one miss back."""
    from jacc.api import CHURN_MISSES

    w = np.arange(1.0, 5.0)

    def f(x):
        return np.array(sorted(x)) * w

    jf = jacc.jacobian(f)
    r = np.random.default_rng(0)
    quick = 0
    for _ in range(40):
        x = r.normal(size=4)
        J = jf(x)
        want = np.zeros((4, 4))
        want[np.arange(4), np.argsort(x)] = w
        np.testing.assert_array_equal(J, want)
        quick += not jf.plan.strategy.startswith("auto")
    assert jf.cache.hits > 0 and jf.cache.misses > CHURN_MISSES
    assert quick >= 5  # (it was 0: every new order searched with auto)
