"""The scalar route of small array graphs (jacc.unroll) and the shared LU factorisations
(jacc.factorise): same Jacobians as the array program, taken only where exact."""

import functools
import warnings

import numpy as np
import pytest
import scipy.special as special
from conftest import fd_jacobian as fd

import jacc
from jacc import factorise, suite
from jacc.bench import fd_jacobian
from jacc.trace import trace
from jacc.unroll import MAX_ELEMENTS, scalar_graph, short, unroll


def _blocks(J):
    return J if isinstance(J, tuple) else (J,)


@pytest.fixture(autouse=True)
def later_timings_are_faster(monkeypatch):
    """The first call compares the array program with the route by wall time. Real timings flip
    under load; here an array program's call (a Runner's) takes 2·10⁹ s and every other timing is
    shorter than the one before, so the route wins wherever it is tried, and so do its C and
    jitted forms (timed after it). Tests that script timings patch over this."""
    clock = iter(range(10 ** 9, 0, -1))  # seconds: no route is ruled out by its estimate either

    def timed(fn, repeats=3):
        fn()
        runner = any(isinstance(c.cell_contents, jacc.api.Runner) for c in fn.__closure__ or ())
        return 2e9 if runner else float(next(clock))
    monkeypatch.setattr(jacc.unroll, "best_time", timed)


@pytest.mark.parametrize("name", ["lion", "propane", "heart", "robotarm", "roeflux", "blackscholes"])
@pytest.mark.parametrize("retrace", [True, False])
def test_small_suite_problems_run_unrolled_and_match_the_array_program(name, retrace):
    p = suite.get(name, "small")
    inp = p.make_inputs(0)
    nums = tuple(range(len(inp)))
    strategy = "auto" if name == "lion" else "markowitz"  # (auto plans for up to a second)
    jf = jacc.jacobian(p.fn, argnums=nums, strategy=strategy, retrace=retrace)
    ref = jacc.jacobian(p.fn, argnums=nums, strategy=strategy, backend="numpy")
    fd = fd_jacobian(p, inp)
    for seed in (0, 1, 2):  # the first call builds the route; the others reuse it
        inp = p.make_inputs(seed)
        got, want = _blocks(jf(*inp.values())), _blocks(ref(*inp.values()))
        assert jf.ran == "scalar" and all(x.startswith(tuple(inp)) for x in jf.plan.graph.inputs)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    inp = p.make_inputs(0)
    for J, a in zip(fd.values(), _blocks(jf(*inp.values()))):
        np.testing.assert_allclose(a, J, rtol=1e-5, atol=1e-7 * max(1.0, np.abs(J).max()))


def test_the_route_counts_what_its_plan_prices_and_keeps_the_array_shapes():
    A = np.array([[1.0, 2.0], [0.0, 3.0]])
    f = lambda A, x: (A @ x, np.sin(x).sum())  # noqa: E731  two outputs, two inputs
    x = np.array([0.5, -1.0])
    g = trace(f, A, x)
    u = unroll(g, {"A": A, "x": x}, "markowitz")
    assert u.mults == u.plan.mults
    blocks = u([A, x])
    assert blocks[g.outputs[0], "A"].shape == (2, 2, 2) and blocks[g.outputs[1], "x"].shape == (2,)
    jf = jacc.jacobian(f, argnums=(0, 1))
    got, want = jf(A, x), jacc.jacobian(f, argnums=(0, 1), backend="numpy")(A, x)
    assert jf.ran == "scalar"
    for row_g, row_w in zip(got, want):
        for a, b in zip(row_g, row_w):
            np.testing.assert_allclose(a, b, rtol=1e-14)


def test_counted_multiplications_of_the_scalar_plan_equal_the_priced_ones():
    p = suite.get("heart", "small")
    x = p.make_inputs(0)["x"]
    u = unroll(trace(p.fn, x), {"x": x}, "markowitz")
    values = u.plan.graph.evaluate(dict(zip(u.plan.graph.inputs, x)))
    acc = jacc.eliminate.accumulate(u.plan.problem, values, u.plan.order)
    assert acc.mults == u.plan.mults == u.mults


def test_value_dependent_scalar_graphs_are_not_unrolled():
    x = np.array([1.0, 3.0, 3.0, 3.0])
    for f in (lambda x: np.max(x) * 2.0,  # ties: the array rule splits the derivative
              lambda x: np.sort(x)[::-1] * 1.5):  # (maximum is one scalar op a pair: see below)
        g = trace(f, x)
        assert unroll(g, {"x": x}, "auto") is None
        jf = jacc.jacobian(f)
        np.testing.assert_allclose(jf(x), jacc.jacobian(f, backend="numpy")(x))
        assert jf.ran == "numpy"
    g = trace(lambda x: np.where(np.asarray(x > 2), x, 0.0), x)  # the array trace itself depends on values
    assert g.meta.get("value_dependent") and unroll(g, {"x": x}, "auto") is None


@pytest.mark.parametrize("f", [
    lambda x: np.where(x > 2, x ** 2, np.sin(x)),
    lambda x: np.where((x > 0.5) & ~(x >= 2.5), x, -x) * (x != 3.0),
    lambda x: np.select([x < 1, x < 3], [x, 2 * x], default=x ** 3),
    lambda x: np.where(x[0] > x[1:], x[1:], 1.0),  # a constant branch: where of recorded scalars
    lambda x: np.sign(x - 1.5) * x ** 2 + np.floor(x + 0.5) * x,  # piecewise constants: one scalar op each
])
def test_recorded_masks_unroll_to_branch_free_scalar_code(f):
    """A recorded comparison (jacc.masks) is a scalar op of the code: its mask is computed at each
    call, so one traced point serves points where the comparisons come out otherwise."""
    x = np.array([1.1, 3.2, 0.2, 2.7])  # (no point on a comparison's threshold: FD jumps there)
    g = trace(f, x)
    assert not g.meta.get("value_dependent")
    u = unroll(g, {"x": x}, "auto")
    assert u is not None
    jf = jacc.jacobian(f, retrace=False)
    jf(x)
    for z in (x, np.array([2.9, -1.0, 3.4, 0.6]), np.array([0.1, 0.4, 2.2, 5.0])):
        want = jacc.jacobian(f, compile=False)(z)
        np.testing.assert_allclose(want, fd(f, [z], 0), atol=1e-6)
        np.testing.assert_array_equal(u([z])[g.outputs[0], "x"], want)
        np.testing.assert_array_equal(jf(z), want)
        assert jf.ran in ("c", "scalar")


def test_an_array_of_a_python_float_traced_once_runs_unrolled_on_later_floats():
    """The all-float shortcut of retrace=False calls is for all-scalar graphs; a float argument with
    an array result runs the unrolled route, which takes lists (once a TypeError)."""
    def rotation(t):
        return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])

    jf = jacc.jacobian(rotation, retrace=False)
    for t in (0.3, 0.4, 0.5):
        np.testing.assert_allclose(jf(t), [[-np.sin(t), -np.cos(t)], [np.cos(t), -np.sin(t)]], rtol=1e-15)
    assert jf.ran == "scalar"


def test_changed_constants_never_reach_the_compiled_route():
    c = np.array([2.0, 3.0])
    box = {"s": 1.0}
    f = lambda x: np.sin(x) * c * box["s"]  # noqa: E731
    jf = jacc.jacobian(f)
    x = np.array([0.1, 0.2])
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * c))
    assert jf.ran == "scalar"
    c[1] = -1.0  # in place
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * c))
    box["s"] = 4.0  # a closure value
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * c * 4.0))
    assert jf.ran != "scalar"  # a structure rebuilt with other constants runs the array program


def test_no_route_without_the_cache_for_big_graphs_or_explicit_orders():
    f = lambda x: np.tanh(x) * 2.0  # noqa: E731
    x = np.linspace(0, 1, 5)
    jf = jacc.jacobian(f, cache=False)
    jf(x)
    assert jf.ran == "numpy"  # nothing to amortise the second plan over
    big = np.linspace(0, 1, MAX_ELEMENTS)
    jf = jacc.jacobian(f)
    jf(big)
    assert jf.ran == "numpy"
    order = jacc.plan(trace(f, x), "reverse").order
    jf = jacc.jacobian(f, strategy=order)
    jf(x)
    assert jf.ran == "numpy" and list(jf.plan.order) == list(order)


def test_math_domain_errors_fall_back_with_numpy_semantics():
    f = lambda x: np.log(x) * x[::-1]  # noqa: E731
    jf = jacc.jacobian(f, nonfinite="propagate")
    ref = jacc.jacobian(f, nonfinite="propagate", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        jf(np.array([1.0, 2.0, 3.0]))
        assert jf.ran == "scalar"
        for x in (np.array([-1.0, 2.0, 3.0]), np.array([0.0, 2.0, 1.0])):
            np.testing.assert_array_equal(np.isnan(jf(x)), np.isnan(ref(x)))
            np.testing.assert_allclose(jf(x), ref(x), rtol=1e-14)


_SMALL_LINALG = {  # (f, size of p): a Kalman gain, 2 × 2 systems, stacked inverses, determinants to 3 × 3
    "kalman": (lambda p: (lambda P: p[16:] + P[:, :2] @ np.linalg.inv(P[:2, :2] + 0.1 * np.eye(2))
                          @ (np.array([0.3, -0.2]) - p[16:18]))(p[:16].reshape(4, 4) @ p[:16].reshape(4, 4).T
                                                                  + np.eye(4)), 20),
    "solve": (lambda p: np.linalg.solve(p[:4].reshape(2, 2), p[4:]), 6),
    "solve columns": (lambda p: np.linalg.solve(p[:4].reshape(2, 2), np.outer(p[4:], p[4:])), 6),
    "stacked inverses": (lambda p: np.linalg.inv(p.reshape(2, 2, 2)).sum(axis=0), 8),
    "1 × 1": (lambda p: np.linalg.solve(p[:1].reshape(1, 1), p[1:]) * np.linalg.inv(p[:1].reshape(1, 1))[0], 2),
    "det": (lambda p: np.linalg.det(p[:9].reshape(3, 3)) * p[9:] + np.linalg.det(p[:4].reshape(2, 2)), 11),
    # pivots chosen by recorded masks at every call (a leading entry near 0 is always pivoted away)
    "3 × 3 solve": (lambda p: np.linalg.solve(p[:9].reshape(3, 3) * np.r_[1e-9, np.ones(8)].reshape(3, 3), p[9:]), 12),
    "4 × 4 inverse": (lambda p: np.linalg.inv(p.reshape(4, 4)) @ np.arange(1.0, 5.0), 16),
}


@pytest.mark.parametrize("name", sorted(_SMALL_LINALG))
@pytest.mark.parametrize("retrace", [True, False])
def test_small_systems_inverses_and_determinants_take_the_scalar_route(name, retrace):
    # np.linalg.solve on object arrays failed (LAPACK) and larger eliminations read pivots from
    # values: a 2 × 2 solve ran as an array program (40 µs a call where JAX takes 12)
    f, n = _SMALL_LINALG[name]
    rng = np.random.default_rng(4)
    jf = jacc.jacobian(f, retrace=retrace)
    for _ in range(4):
        p = rng.standard_normal(n) + (1.5 if name == "1 × 1" else 0.0)
        np.testing.assert_allclose(jf(p), fd(f, [p], 0), rtol=1e-6, atol=1e-7)
        assert jf.ran in ("scalar", "c")
    if name in ("solve", "stacked inverses"):  # a singular matrix raises as NumPy's solve and inv do
        singular = np.r_[1.0, 2.0, 2.0, 4.0, p[4:]] if name == "solve" else np.r_[p[:4], 1.0, 1.0, 1.0, 1.0]
        with pytest.raises(np.linalg.LinAlgError, match="Singular"):
            jf(singular)
        np.testing.assert_allclose(jf(p), fd(f, [p], 0), rtol=1e-6, atol=1e-7)
    big = jacc.jacobian(lambda p: np.linalg.solve(p[:25].reshape(5, 5), p[25:]))
    big(rng.standard_normal(30) + np.r_[3 * np.eye(5).ravel(), np.zeros(5)])
    assert big.ran == "numpy"  # pivots read from values: the array program


@pytest.mark.parametrize("n", [2, 3, 4])
def test_small_systems_at_singular_and_nearly_singular_matrices_answer_as_numpy(n):
    # Cramer's determinant is not LAPACK's pivot: a matrix NumPy calls singular gave a Jacobian near
    # 1e31, one NumPy solves gave inf; and the scalar code's NaN came back from the traced call
    # (hunt AL). Rows that are multiples of another make many exactly or nearly singular matrices.
    rng = np.random.default_rng(n)
    b = np.arange(1.0, n + 1)
    f = lambda m: np.linalg.solve(m, b)  # noqa: E731
    jf, ref = jacc.jacobian(f), jacc.jacobian(f, backend="numpy")
    for k in range(3):
        jf(2 * np.eye(n) + 0.1 * k * rng.normal(size=(n, n)))
    raised, ran = 0, set()
    for t in range(240):
        m = np.round(rng.uniform(-3, 3, (n, n)), 1)
        if t % 2:
            m[-1] = m[0] * np.round(rng.uniform(-3, 3), 1)
        try:
            want = ref(m)
        except np.linalg.LinAlgError:
            with pytest.raises(np.linalg.LinAlgError, match="Singular"):
                jf(m)
            raised += 1
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = jf(m)
        ran.add(jf.ran)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    assert raised > 20 and ran & {"scalar", "c"}


def test_scalar_graph_of_an_array_graph_is_the_scalarized_trace():
    p = suite.get("robotarm", "small")
    q = p.make_inputs(0)["q"]
    a = scalar_graph(trace(p.fn, q), {"q": q})
    b = trace(p.fn, q, scalarize=True)
    assert a.inputs == b.inputs and len(a.nx) == len(b.nx) and len(a.outputs) == len(b.outputs)
    assert sorted(a.op(v) for v in a.intermediates) == sorted(b.op(v) for v in b.intermediates)


def test_expit_and_logit_stay_whole_ops_at_the_scalar_level():
    """Evaluated through its formula 1/(1 + exp(−x)), expit's scalar graph differentiated
    exp(1000)·0 = NaN under jax.jit (the float code only survived by falling back on the overflow);
    its own rule gives 0 there, as the executor does."""
    special = pytest.importorskip("scipy.special")
    f = lambda x: special.expit(x) * special.logit(0.1 + 0.8 * special.expit(x / 1000))  # noqa: E731
    x = np.array([-1000.0, 0.5, 2.0])
    a = scalar_graph(trace(f, x), {"x": x})
    assert {"expit", "logit"} <= {a.op(v) for v in a.intermediates}
    assert sorted(a.op(v) for v in a.intermediates) == sorted(trace(f, x, scalarize=True).op(v)
                                                              for v in trace(f, x, scalarize=True).intermediates)
    backends = ["numpy", "interpret"] + [b for b in ("jax", "torch") if _installed(b)]
    want = jacc.jacobian(f, backend="interpret")(x)
    assert want[0, 0] == 0.0
    for backend in backends:
        jf = jacc.jacobian(special.expit, backend=backend)
        for _ in range(3):  # the jax route picks its code by timing the first calls
            np.testing.assert_array_equal(np.diag(jf(x))[:1], [0.0])
        np.testing.assert_allclose(jacc.jacobian(f, backend=backend)(x), want, rtol=1e-14)


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# -- jacc.factorise ---------------------------------------------------------------------------


def test_factorise_matches_numpy_and_leaves_other_inputs_to_it():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 5))
    b, B = rng.standard_normal(5), rng.standard_normal((5, 2))
    stack = rng.standard_normal((2, 3, 3))
    for got, want in [(factorise.solve(A, b), np.linalg.solve(A, b)), (factorise.solve(A, B), np.linalg.solve(A, B)),
                      (factorise.inv(A), np.linalg.inv(A)), (factorise.det(A), np.linalg.det(A)),
                      (factorise.slogdet(A)[1], np.linalg.slogdet(A)[1]),
                      (factorise.inv(stack), np.linalg.inv(stack)), (factorise.det(stack), np.linalg.det(stack)),
                      (factorise.inv(A.astype(complex)), np.linalg.inv(A.astype(complex)))]:
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert factorise.slogdet(A)[0] == np.linalg.slogdet(A)[0]
    Z = np.zeros((3, 3))
    assert factorise.det(Z) == 0.0 and tuple(factorise.slogdet(Z)) == (0.0, -np.inf)
    for fn in (lambda: factorise.solve(Z, np.ones(3)), lambda: factorise.inv(Z)):
        with pytest.raises(np.linalg.LinAlgError, match="Singular"):
            fn()


def test_factorisations_are_kept_only_inside_sharing():
    A = np.eye(4) * 2.0
    before = factorise.factorisations()
    factorise.inv(A), factorise.det(A)
    assert factorise.factorisations() - before == 0  # outside a block: NumPy's own routines
    before -= 2
    with factorise.sharing():
        with factorise.sharing():  # nesting shares the outer block's
            factorise.inv(A)
        factorise.det(A), factorise.solve(A, np.ones(4))
        factorise.inv(A.copy())  # another array object: its own factorisation
    assert factorise.factorisations() - before == 4


class _FakePool:
    def __init__(self, n):
        self.n, self.calls = n, []

    def get_num_threads(self):
        return self.n

    def set_num_threads(self, n):
        self.calls.append(n)
        self.n = n


def test_scipys_separate_blas_pool_runs_on_one_thread_while_a_block_factorises(monkeypatch):
    pytest.importorskip("threadpoolctl")
    pool = factorise._Pool()
    fake = _FakePool(4)
    pool.foreign = [fake]
    monkeypatch.setattr(factorise, "_pool", pool)
    small = np.eye(3) * 2.0  # (OpenBLAS factorises a small matrix on one thread: no pinning)
    with factorise.sharing():
        before = factorise.factorisations()
        factorise.inv(small)
        factorise.det(small)
        assert factorise.factorisations() - before == 1 and fake.calls == []
    A = np.eye(factorise.UNPINNED_ORDER + 1) * 2.0
    with factorise.sharing():
        factorise.inv(A)
        assert fake.n == 1  # pinned at the first factorisation
        with factorise.sharing():
            factorise.det(A)
        assert fake.n == 1  # an inner block's end keeps it
    assert fake.n == 4 and fake.calls == [1, 4]
    with factorise.sharing():  # a block that factorises nothing leaves the pool alone
        np.linalg.inv(A)
    assert fake.calls == [1, 4]


def test_the_real_foreign_pools_are_restored_after_a_jacobian_call():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    n = factorise.UNPINNED_ORDER + 1  # (a smaller matrix does not hold the pool at all)
    jacc.jacobian(lambda a: np.linalg.slogdet(a)[1])(np.eye(n) * 2.0 + 0.01)
    if not factorise._pool.foreign:
        pytest.skip("NumPy and SciPy share one BLAS here")
    before = [c.get_num_threads() for c in factorise._pool.foreign]
    with factorise.sharing():
        factorise.inv(np.eye(factorise.UNPINNED_ORDER + 1))
        assert [c.get_num_threads() for c in factorise._pool.foreign] == [1] * len(before)
    assert [c.get_num_threads() for c in factorise._pool.foreign] == before
    assert threadpoolctl.threadpool_info()  # the controllers still answer


@pytest.mark.parametrize("jitted_time, ran", [(0.1, "jax"), (0.7, "scalar")])
def test_the_route_runs_under_jax_jit_for_the_jax_backend_where_faster(monkeypatch, jitted_time, ran):
    pytest.importorskip("jax")
    monkeypatch.setenv("JACC_NO_C", "1")  # (floats against jax.jit here; C's turn is in test_ccode)
    p = suite.get("heart", "small")
    # timed in turn: the route as floats, the route under jax.jit, the jitted array program
    times = iter([0.5, jitted_time, 1.0])
    monkeypatch.setattr(jacc.unroll, "best_time", lambda fn, repeats=3: (fn(), next(times))[1])
    # (a floor above the route's estimate: the array program is timed last, not when the estimate,
    # within a microsecond of the measured floor on a quiet machine, asks for it first)
    monkeypatch.setattr(jacc.api, "_program_floor", lambda plan: 0.3)
    jf = jacc.jacobian(p.fn, strategy="markowitz", backend="jax", retrace=False)
    ref = jacc.jacobian(p.fn, strategy="markowitz", backend="numpy")
    for seed in (0, 1):
        x = p.make_inputs(seed)["x"] * (1.0 + seed)
        np.testing.assert_allclose(jf(x), ref(x), rtol=1e-12, atol=1e-12)
        assert jf.ran == ran and jf.program is None and jf.plan.graph.inputs[0] == "x[0]"


@pytest.mark.parametrize("program_time, ran", [(0.1, "jax"), (2.0, "scalar")])
def test_an_all_scalar_plan_under_the_jax_backend_runs_the_faster_code(monkeypatch, program_time, ran):
    pytest.importorskip("jax")
    times = iter([1.0, program_time])  # the float code's time, then the jitted program's
    monkeypatch.setattr(jacc.unroll, "best_time", lambda fn, repeats=3: (fn(), next(times))[1])
    f = suite.lecture_f
    jf = jacc.jacobian(f, argnums=(0, 1), backend="jax", retrace="always")  # (two timings: no C tried)
    for x1, x2 in [(2.0, 5.0), (0.5, -1.0)]:
        got = jf(x1, x2)
        assert jf.ran == ran
        np.testing.assert_allclose(got, [1 / x1 + x2, x1 - np.cos(x2)], rtol=1e-14)
    u = unroll(trace(lambda x: np.sin(x) * 2.0, np.ones(2)), {"x": np.ones(2)}, "forward")
    u.use_jax()
    np.testing.assert_allclose(u([np.array([0.0, np.pi])])[u.blocks[0][0]], np.diag([2.0, -2.0]), atol=1e-15)


def test_a_long_all_scalar_plan_under_the_jax_backend_is_not_compiled_by_xla(monkeypatch):
    pytest.importorskip("jax")
    # 600 steps of a scalar loop: XLA compiled its program for 83 s where the float code takes 1 s
    lowered = []
    real = jacc.program.lower
    monkeypatch.setattr(jacc.program, "lower", lambda *a, **k: lowered.append(a[3]) or real(*a, **k))
    monkeypatch.setattr(jacc.unroll, "JAX_MAX_LINES", 40)

    def f(a, b):
        for _ in range(12):
            if a > -100:  # (value-dependent: no scalar route of its own)
                a = np.sin(a) * b + 0.1 * a
        return a

    jf = jacc.jacobian(f, argnums=(0, 1), backend="jax")
    for a, b in [(0.3, 0.5), (0.7, -1.2)]:
        got = jf(a, b)
        assert jf.ran in ("scalar", "c") and "jax" not in lowered
        np.testing.assert_allclose(np.array(got), fd(lambda v: f(v[0], v[1]), [np.array([a, b])], 0), rtol=1e-7)
    monkeypatch.setattr(jacc.unroll, "JAX_MAX_LINES", 10_000)  # short enough: XLA compiles it
    jacc.jacobian(f, argnums=(0, 1), backend="jax")(0.3, 0.5)
    assert "jax" in lowered


def test_under_jax_jit_only_the_entries_that_vary_are_compiled(monkeypatch):
    pytest.importorskip("jax")
    # x[::-1]·sin(x): two entries per row vary, the other n - 2 are structural zeros that the
    # host fills in (XLA compiles straight-line scalar code in time superlinear in its length)
    n = 12
    f = lambda x: x[::-1] * np.sin(x)  # noqa: E731
    x = np.linspace(0.1, 1.2, n)
    u = unroll(trace(f, x), {"x": x}, "forward")
    u.use_jax()
    assert u.jax_index.tolist() == u.varying and len(u.varying) == 2 * n
    for k in (1.0, -2.0):
        xk = x * k
        want = np.diag(xk[::-1] * np.cos(xk)) + np.fliplr(np.diag(np.sin(xk)))
        got = u([xk])[u.blocks[0][0]]
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
        got[:] = 5.0  # each call's result is a fresh array
    # code longer than jax.jit compiles quickly stays float code (3,560 lines took 14 s)
    monkeypatch.setattr(jacc.unroll, "JAX_MAX_LINES", 30)
    v = unroll(trace(f, x), {"x": x}, "forward")
    with pytest.raises(ValueError, match="lines of scalar code"):
        v.use_jax()
    assert v.jitted is None
    with pytest.raises(ValueError, match="every entry is a constant"):
        unroll(trace(lambda x: 3.0 * x, x), {"x": x}, "forward").use_jax()


@pytest.mark.parametrize("retrace", [True, False])
def test_mostly_constant_jacobians_come_from_a_fresh_copy_of_their_constants(retrace):
    # 2·sin(x)'s Jacobian is diagonal: its 30 structural zeros are a template the code's six
    # entries are written into, a new array on every call
    f = lambda x: 2.0 * np.sin(x)  # noqa: E731
    x0 = np.ones(6)
    u = unroll(trace(f, x0), {"x": x0}, "forward")
    assert u.template is not None and u.index.tolist() == [0, 7, 14, 21, 28, 35]
    heart = suite.get("heart", "small")
    x8 = heart.make_inputs(0)["x"]
    assert unroll(trace(heart.fn, x8), {"x": x8}, "forward").template is None  # 52 of 64 vary
    jf = jacc.jacobian(f, retrace=retrace)
    xs = [np.linspace(0.1, 0.6, 6) * k for k in (1.0, 2.0, 3.0)]
    got = [jf(x) for x in xs]
    assert jf.ran == "scalar"
    for x, J in zip(xs, got):
        np.testing.assert_array_equal(J, np.diag(2.0 * np.cos(x)))
    got[0][:] = 7.0  # the caller owns each result
    np.testing.assert_array_equal(jf(xs[1]), got[1])
    with warnings.catch_warnings():  # a domain error: the executor's NaN, the zeros kept
        warnings.simplefilter("ignore", RuntimeWarning)
        g = jacc.jacobian(lambda x: np.sqrt(x) * 2.0, nonfinite="propagate", retrace=retrace)
        g(np.ones(6))
        J = g(np.array([-1.0, 1, 1, 1, 1, 4]))
    assert np.isnan(J[0, 0]) and J[5, 5] == 0.5 and np.count_nonzero(J[~np.eye(6, dtype=bool)]) == 0


def test_traced_once_calls_check_finiteness_exactly_where_a_sum_overflows():
    jf = jacc.jacobian(lambda x: np.sin(x) * 3.0, retrace=False)
    jf(np.ones(3))
    big = np.array([1e308, 1e308, 1.0])  # finite, though their sum is not
    np.testing.assert_array_equal(jf(big), np.diag(3.0 * np.cos(big)))
    with pytest.raises(ValueError, match="non-finite"):
        jf(np.array([1.0, np.inf, -np.inf]))


def test_code_too_long_for_c_is_estimated_as_float_code():
    """The bottleneck network at size small unrolls to ~11,000 scalar vertices: too long to be built as
    C, so the C estimate must not admit it — planning and compiling its float code took 10 s of a
    traced-once first call, and the array program ran anyway."""
    from jacc import ccode

    p = suite.get("bottleneck", "small")
    inputs = p.make_inputs(0)
    g = trace(functools.partial(p.fn, xp=np), *inputs.values())
    values = dict(zip(g.inputs, inputs.values()))
    assert unroll(g, values, "markowitz", beat=1e-4, per_line=ccode.SECONDS_PER_LINE, c_lines=ccode.AUTO_LINES) is None


@pytest.mark.parametrize("unit, program_time, lowered, ran", [
    (1.0, None, False, "scalar"),  # the route beats the program's floor: the program is never lowered
    (1e-12, 1.0, True, "scalar"),  # it does not: the program is lowered and timed, and loses
    (1e-12, 0.1, True, "numpy"),  # ... and wins
])
def test_the_array_program_is_lowered_only_where_its_floor_does_not_settle_the_route(
        monkeypatch, unit, program_time, lowered, ran):
    monkeypatch.setenv("JACC_NO_C", "1")
    monkeypatch.setattr(jacc.api, "_numpy_call_seconds", lambda: unit)  # the floor: (4 + products) × unit s
    # the route's time, asked first where the route's estimate is under the floor, else the program's
    times = iter([program_time, 0.5] if lowered else [0.5])
    monkeypatch.setattr(jacc.unroll, "best_time", lambda fn, repeats=3: (fn(), next(times))[1])
    made = []
    real = jacc.api.Runner.lower
    monkeypatch.setattr(jacc.api.Runner, "lower", lambda self, *a: (made.append(1), real(self, *a))[1])
    p = suite.get("heart", "small")
    jf = jacc.jacobian(p.fn, strategy="markowitz")
    x = p.make_inputs(0)["x"]
    got = jf(x)
    assert jf.ran == ran and bool(made) == lowered and next(times, None) is None
    np.testing.assert_allclose(got, jacc.jacobian(p.fn, backend="numpy")(x), rtol=1e-12, atol=1e-12)


def test_code_too_long_for_c_by_its_plan_is_not_compiled_where_floats_would_lose(monkeypatch):
    """np.linalg.matrix_power of a 6×6 matrix to the 5th: its scalar graph is short enough for C,
    so the route was planned and its float code compiled (0.5 s of a 0.6 s first call), but the
    plan's code has 35,508 lines, too long for C, and the floats took 1.7 ms against the array
    program's 60 µs. The plan's multiplications now count in the estimate before compiling."""
    from jacc import ccode
    from jacc import unroll as U

    def built(*args, **kwargs):
        raise AssertionError("the code was compiled")
    monkeypatch.setattr(U, "compile_plan", built)
    x = np.linspace(-0.5, 0.5, 36)
    f = lambda x: np.linalg.matrix_power(x.reshape(6, 6), 5).ravel()  # noqa: E731
    g = trace(f, x)
    values = g.evaluate({"x": x})
    assert U.unroll(g, values, "auto", beat=60e-6, per_line=ccode.SECONDS_PER_LINE,
                    c_lines=ccode.AUTO_LINES) is None
    monkeypatch.undo()
    jf = jacc.jacobian(f)
    h = 1e-6
    fd = np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(36)], axis=1)
    np.testing.assert_allclose(jf(x), fd, rtol=1e-6, atol=1e-8)


def test_code_with_a_dense_jacobian_is_not_built(monkeypatch):
    # tanh(x) * x.sum() over 400 numbers: a scalar graph of ~1,600 lines whose Jacobian has
    # 160,000 entries, each a line of the code; its first call compiled 160,000 lines as floats
    # (3.4 s) and, where those measured slow, as C (64 s)
    from jacc import unroll as U

    x = np.linspace(-2.0, 2.0, 400)
    g = trace(lambda x: np.tanh(x) * x.sum(), x)
    values = g.evaluate({"x": x})
    assert U.entries(U.scalar_graph(g, values)) == 400 * 400

    def built(*args, **kwargs):
        raise AssertionError("the code was compiled")
    monkeypatch.setattr(U, "compile_plan", built)
    assert U.unroll(g, values, "auto") is None
    monkeypatch.undo()
    jf = jacc.jacobian(lambda x: np.tanh(x) * x.sum())
    J = jf(x)
    assert jf.ran == "numpy"
    np.testing.assert_allclose(J, np.diag(x.sum() / np.cosh(x) ** 2) + np.tanh(x)[:, None], rtol=1e-13)
    small = np.linspace(-2.0, 2.0, 5)  # a small one is still unrolled
    gs = trace(lambda x: np.tanh(x) * x.sum(), small)
    assert U.unroll(gs, gs.evaluate({"x": small}), "auto") is not None


def test_products_over_long_sums_are_not_recorded_one_scalar_at_a_time(monkeypatch):
    # x @ A @ x over 300 numbers: 601 scalars over the graph's vertices, but 90,600 scalar
    # operations, which the scalar route recorded one by one for 12 s at the first call
    from jacc import unroll as U

    A = np.random.default_rng(2).normal(size=(300, 300)) / 30
    x = np.linspace(-1.0, 1.0, 300)
    g = trace(lambda x: x @ A @ x, x)
    assert U.scalar_ops(g) > U.MAX_SCALAR_OPS and not U.candidate(g, "auto")

    def recorded(*args, **kwargs):
        raise AssertionError("the scalar graph was recorded")
    monkeypatch.setattr(U, "scalar_graph", recorded)
    jf = jacc.jacobian(lambda x: x @ A @ x)
    np.testing.assert_allclose(jf(x), (A + A.T) @ x, rtol=1e-12)
    X = np.eye(20) + 0.1
    assert U.scalar_ops(trace(np.linalg.inv, X)) == 400 + 20 * 400  # a factorisation: n per entry
    # ... of the matrix it factorises, whatever its result: a determinant of 40 × 40 came to 40
    # operations and took 2.7 s to record at the first call
    assert U.scalar_ops(trace(np.linalg.det, X)) == 400 + 20 * 400
    from jacc.ops import OPS
    assert {"inv", "solve", "det", "logabsdet", "cholesky", "eigh_values", "svd_u", "qr_r", "eig_vectors"} <= {
        name for name, op in OPS.items() if op.factorises} and not OPS["matmul"].factorises
    M = np.eye(40) + np.linspace(0.0, 0.1, 1600).reshape(40, 40)
    assert not U.candidate(trace(np.linalg.det, M), "auto")
    jf = jacc.jacobian(np.linalg.det)
    np.testing.assert_allclose(jf(M), np.linalg.det(M) * np.linalg.inv(M).T, rtol=1e-10)


def test_the_scalar_route_compiles_only_the_entries_it_returns(monkeypatch):
    """np.hypot(x, x[::-1]) over 200 numbers: 400 of the 40,000 Jacobian entries vary. The scalar
    route's code returns those 400; the code returning every entry as a dict (40,000 items, 0.3 s
    of Python's compiler) was compiled too at the first call, and never ran."""
    from jacc import compile as C
    from jacc import unroll as U

    defined = []
    define = C._define
    monkeypatch.setattr(C, "_define", lambda name, *rest: defined.append(name) or define(name, *rest))
    x = np.linspace(0.5, 1.5, 200)
    f = lambda x: np.hypot(x, x[::-1])  # noqa: E731
    u = U.unroll(trace(f, x), {"x": x}, "reverse")
    assert defined == ["jacobian_flat"] and u.index.size == 400
    want = np.diag(x / np.hypot(x, x[::-1])) + np.fliplr(np.diag((x / np.hypot(x, x[::-1]))[::-1]))
    np.testing.assert_allclose(next(iter(u.run_lists([x.tolist()]).values())), want, rtol=1e-14)
    with warnings.catch_warnings():  # a domain error: the flat code again, on np.float64 (jacc.compile.flat_numpy)
        warnings.simplefilter("ignore", RuntimeWarning)
        y = np.sqrt(np.linspace(1.0, 2.0, 200))
        g = lambda x: np.sqrt(x) * np.hypot(x, x[::-1])  # noqa: E731
        v = U.unroll(trace(g, y), {"x": y}, "reverse")
        bad = y.copy()
        bad[0] = -1.0
        J = next(iter(v.run_lists([bad.tolist()]).values()))
    assert defined == ["jacobian_flat"] * 3 and np.isnan(J[0, 0]) and np.isfinite(J[1:, 1:]).all()


def test_a_large_dense_jacobian_is_not_unrolled(monkeypatch):
    """x * np.linspace(0, 1, 1000): 2,000 scalars and 1,000 operations, within the scalar route's
    limits, but a dense Jacobian of 10⁶ entries, each an expression of its code (2.7 s at the first
    call, for 1,000 non-zeros); the array program runs it."""
    from jacc import unroll as U

    x = np.linspace(0.5, 1.5, 1000)
    f = lambda x: x * np.linspace(0.0, 1.0, 1000)  # noqa: E731
    g = trace(f, x)
    assert U.scalar_ops(g) <= U.MAX_SCALAR_OPS and not U.candidate(g, "auto")
    assert U.candidate(trace(lambda x: x * np.linspace(0.0, 1.0, 300), x[:300]), "auto")  # 90,000 entries: tried

    def recorded(*args, **kwargs):
        raise AssertionError("the scalar graph was recorded")
    monkeypatch.setattr(U, "scalar_graph", recorded)
    jf = jacc.jacobian(f)
    np.testing.assert_array_equal(jf(x), np.diag(np.linspace(0.0, 1.0, 1000)))


def test_a_long_loop_over_short_vectors_takes_the_scalar_route(monkeypatch):
    """An unrolled time-stepping loop is far over MAX_ELEMENTS, but its vertices hold one or two
    numbers each, so its NumPy program is a call per few numbers (an RK4 Lorenz system over 150
    steps: 35 ms a call as the program, 2 ms as float code, 0.1–0.3 ms as C)."""
    monkeypatch.setenv("JACC_NO_C", "1")
    monkeypatch.setattr(jacc.unroll, "MAX_ELEMENTS", 2000)  # (a graph beyond it, of a quick test's size)
    A = np.array([[1.0, 0.1], [-0.1, 1.0]])

    def steps(y):
        for _ in range(300):
            y = y + 0.1 * np.array([y[1], -y[0]])  # y ← A·y
        return y

    y0 = np.array([1.0, 0.5])
    g = trace(steps, y0)
    elements = sum(int(np.prod(g.shape(v))) for v in g.nx)
    assert elements > jacc.unroll.MAX_ELEMENTS and short(g)
    assert not short(trace(lambda x: np.tanh(x) * x.sum(), np.ones(400)))  # long vectors: the program
    jf = jacc.jacobian(steps, retrace=False)
    ran = []
    for y in (y0, np.array([-0.2, 0.3])):  # a plan of over 1,000 steps is built at the second call
        np.testing.assert_allclose(jf(y), np.linalg.matrix_power(A, 300), rtol=1e-11)
        ran.append(jf.ran)
    assert ran == ["interpret", "scalar"]
    monkeypatch.setattr(jacc.unroll, "MAX_SHORT_OPS", 1000)  # too many operations: no route
    assert not short(g)


def test_a_kept_scalar_route_lowers_no_array_program_later(monkeypatch):
    """The scalar route, once kept, leaves no array program. A later traced call must not take
    that for "nothing prepared yet" and lower one: under backend="jax" that was an XLA compile of
    the whole unrolled loop (6 s for five RK4 steps of the Lorenz system), for a program never run."""
    h = 0.01

    def rhs(y, p):
        return np.stack([p[0] * (y[1] - y[0]), y[0] * (p[1] - y[2]) - y[1], y[0] * y[1] - p[2] * y[2]])

    def rk4(y, p):
        for _ in range(5):
            k1 = rhs(y, p)
            k2 = rhs(y + (h / 2) * k1, p)
            k3 = rhs(y + (h / 2) * k2, p)
            k4 = rhs(y + h * k3, p)
            y = y + (h / 6) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return y

    p = np.array([10.0, 28.0, 8 / 3])
    # the route measures under the program's least possible time (the fixture's clock counts down
    # from 10⁹ s): kept without lowering the program to time it
    monkeypatch.setattr(jacc.api, "_program_floor", lambda plan: 1e12)
    lowered = []
    real = jacc.program.lower
    monkeypatch.setattr(jacc.program, "lower", lambda *a, **k: (lowered.append(1), real(*a, **k))[1])
    jf = jacc.jacobian(rk4, argnums=(0, 1))
    for y in (np.array([1.0, 1.1, 0.9]), np.array([0.5, -0.2, 2.0]), np.array([1.5, 1.0, 0.1])):
        J = jf(y, p)
        assert jf.ran in ("scalar", "c")
        np.testing.assert_allclose(np.concatenate(J, axis=1), fd(lambda v: rk4(v[:3], v[3:]), [np.concatenate([y, p])], 0),
                                   rtol=1e-6, atol=1e-8)
    assert lowered == [] and jf.cache.skipped == 1  # (the third call ran the route alone)


def test_a_scalar_level_plan_given_back_as_the_strategy_runs_its_order_on_the_route():
    """strategies.md offers jacobian(f, strategy=jf.plan) for a plan that does not depend on the
    clock; after the scalar route ran, jf.plan is its scalar-level plan, which the array graph
    refused (OrderError naming vertices the user never saw)."""
    f = lambda x: np.sin(x) * x.sum()  # noqa: E731
    x = np.array([0.3, 0.8, 1.1])
    jf = jacc.jacobian(f, strategy="reverse")
    jf(x)
    assert jf.ran == "scalar"
    again = jacc.jacobian(f, strategy=jf.plan)
    np.testing.assert_allclose(again(x), jf(x), rtol=1e-14)
    assert again.ran == "scalar" and list(again.plan.order) == list(jf.plan.order)
    with pytest.raises(jacc.OrderError, match="does not fit this function's scalar-level graph"):
        again(np.ones(4))
    with pytest.raises(jacc.OrderError, match="scalar-level one .* backend='numpy'"):
        jacc.jacobian(f, strategy=jf.plan, backend="numpy")(x)


def test_built_code_of_many_inputs_is_timed_as_calls_run_it():
    """Routes are timed by calling the Unrolled: C code of 16 inputs or more runs on arrays, and
    was timed through lists (38 µs against 4 µs for 930 inputs: a C build thrown away, found by a
    hunt). ``wrt`` leaves the other inputs out of the blocks."""
    from jacc import ccode

    if ccode.compiler() is None:
        pytest.skip("no C compiler")
    A = np.linspace(-1.0, 1.0, 20).reshape(4, 5)
    g = trace(lambda x, B: np.tanh(B @ x), np.ones(5), A)
    values = {"x": np.linspace(0.1, 0.5, 5), "B": A}
    u = unroll(g, values, "markowitz", wrt=["x"])
    u.use_c()
    assert u.takes_arrays()
    u.run_lists = None  # (not to be called)
    blocks = u([values["x"], values["B"]])
    assert list(blocks) == [(g.outputs[0], "x")]
    t = np.tanh(A @ values["x"])
    np.testing.assert_allclose(blocks[g.outputs[0], "x"], (1 - t ** 2)[:, None] * A, rtol=1e-13)


def test_every_supported_functions_example_that_unrolls_matches_the_array_program():
    # SciPy's ufuncs (erf, ndtr, gammainc), logaddexp and maximum did not run on traced scalars
    # (no loop for objects, or one that compares), nor did clip: their graphs kept the array
    # program. They are recorded element by element now, one scalar op each with the array op's
    # own rule (clip as recorded masks and where).
    from jacc.numpy_api import CASES

    taken = set()
    for c in CASES:
        try:
            args = c.make(np.random.default_rng(0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = trace(c.fn(np), *args, argnums=c.argnums)
        except Exception:  # noqa: BLE001 - the examples that raise on purpose (refusals)
            continue
        values = {x: np.asarray(args[i], dtype=float) for x, i in zip(g.inputs, c.argnums)}
        u = unroll(g, values, "markowitz")
        if u is None:
            continue
        taken.add(c.name)
        got = u([values[x] for x in g.inputs])
        for key, want in jacc.plan(g, "markowitz").execute(*[values[x] for x in g.inputs]).items():
            scale = max(1.0, np.nanmax(np.abs(want), initial=0.0))
            np.testing.assert_allclose(got[key], want, rtol=1e-10, atol=1e-10 * scale, err_msg=f"{c.name} {c.variant}")
    assert {"scipy.special.erf", "scipy.special.ndtr", "numpy.logaddexp", "numpy.maximum", "numpy.fmin",
            "scipy.special.gammainc", "scipy.special.xlogy", "numpy.copysign", "numpy.clip"} <= taken


@pytest.mark.parametrize("f", [lambda x: np.maximum(x, x[::-1]) * x[0], lambda x: np.maximum(x, 0.5),
                               lambda x: np.fmin(x, 0.5) * x[1], special.erf,
                               lambda x: np.clip(x, 0.3, 0.5) * x[1],  # at the bounds: 1, the bounds inside
                               lambda x: np.clip(np.log(x - 0.25), np.array([-1.0, -2, -3, -4]), None),
                               # bounds that decide alone (found by a hunt): hi where lo > hi, NaN for a NaN
                               lambda x: np.clip(x, np.array([0.6, 0.2, 0.2, 0.2]), 0.4) * x,
                               lambda x: np.clip(x, np.array([np.nan, 0.0, 0.0, 0.0]), 0.4) * x])
def test_ties_and_scipy_ufuncs_take_the_route_with_the_array_rules(f):
    jf, ref = jacc.jacobian(f), jacc.jacobian(f, backend="numpy")
    for x in (np.array([0.3, 0.5, 0.5, 0.3]), np.array([0.3, 0.6, 0.9, 0.2])):  # ties: ½ each, then none
        np.testing.assert_allclose(jf(x), ref(x), rtol=1e-15, atol=1e-15)
        assert jf.ran in ("scalar", "c")
    x = np.array([0.2, 0.3, 0.5, np.inf])  # NaN inside (log of a negative number), an infinity
    jf, ref = jacc.jacobian(f, nonfinite="propagate"), jacc.jacobian(f, backend="numpy", nonfinite="propagate")
    np.testing.assert_allclose(jf(x), ref(x), rtol=1e-15, atol=1e-15)


def test_a_math_domain_error_runs_the_same_code_with_numpys_semantics(monkeypatch):
    # where Python's math raises (log(0), 1/0), the float code ran the executor on the scalar-level
    # plan at every such call: 1.75 ms against 7 µs (found by a hunt); the same code now runs on
    # np.float64 with NumPy's functions, and equals the array program
    f = lambda x: np.log(x) * np.sin(x) + x[::-1] / x  # noqa: E731
    jf = jacc.jacobian(f, nonfinite="propagate")
    ref = jacc.jacobian(f, backend="numpy", nonfinite="propagate")
    x = np.arange(1.0, 9.0)
    jf(x)
    assert jf.ran == "scalar"

    def refused(*a, **k):
        raise AssertionError("the executor ran")
    monkeypatch.setattr(jacc.Plan, "execute", refused)
    for k, v in ((3, 0.0), (2, -1.0), (5, -0.0)):
        pt = x.copy()
        pt[k] = v
        with np.errstate(all="ignore"):
            got, want = jf(pt), ref(pt)
        assert jf.ran == "scalar"
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-13)


def test_a_compiled_scalar_plan_meets_a_domain_error_with_numpys_semantics(monkeypatch):
    """Plan.compile()'s function ran the executor where Python's math raises (log at 0): it now runs
    its own code on np.float64 (jacc.compile.flat_numpy), with the executor's values."""
    g = trace(lambda a, b: np.log(a) * b + np.sqrt(b), 1.0, 2.0)
    p = jacc.plan(g, "reverse")
    f = p.compile()
    monkeypatch.setattr(type(p), "execute", lambda *a, **k: pytest.fail("the executor ran"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = f(0.0, 2.0)
    assert got[(g.outputs[0], "a")] == np.inf and got[(g.outputs[0], "b")] == -np.inf


@pytest.mark.parametrize("f", [
    lambda q: np.array([np.arcsin(np.clip(2 * (q[0] * q[2] - q[3] * q[1]), -1, 1)), q[1] * q[2]]),
    lambda q: np.maximum(q[0] * q[1], -0.1) * q + np.minimum(q[2], 0.0),
    lambda q: special.erf(q[0] * q[3]) * q,
], ids=["clip", "maximum and minimum", "erf"])
def test_elementwise_ops_of_one_entry_take_the_scalar_route(f):
    """np.clip of one entry (a quaternion's Euler angles) sent the function to the array program,
    27x slower (found by a hunt): its per-element op handed NumPy's frompyfunc a traced scalar, whose
    own protocol refused it."""
    q = np.array([0.9, 0.1, -0.3, 0.2])
    jf = jacc.jacobian(f)
    J = jf(q)
    assert jf.ran in ("scalar", "c")
    np.testing.assert_allclose(J, jacc.jacobian(f, backend="numpy")(q), rtol=1e-14, atol=1e-15)


def test_a_force_loop_of_a_spring_network_takes_the_scalar_route():
    """F[i] -= f; F[j] += f over 22 springs of 12 masses: 2,514 scalars over the graph's vertices,
    past the former MAX_ELEMENTS of 2,000, ran its 1,660-statement program at 1.2 ms a call where
    its C takes 13 µs (found by a hunt)."""
    r = np.random.default_rng(1)
    x0 = r.normal(size=(12, 3))
    edges = [(i, j) for i in range(12) for j in range(i + 1, 12) if (i * 7 + j) % 3 == 0]
    rest = [0.9 * np.linalg.norm(x0[i] - x0[j]) for i, j in edges]

    def forces(x):
        F = np.zeros_like(x)
        for (i, j), r0 in zip(edges, rest):
            d = x[i] - x[j]
            length = np.linalg.norm(d)
            f = (length - r0) * d / length
            F[i] -= f
            F[j] += f
        return F

    g = trace(forces, x0)
    assert 2000 < sum(int(np.prod(g.shape(v))) for v in g.nx) <= jacc.unroll.MAX_ELEMENTS
    jf = jacc.jacobian(forces)
    J = jf(x0)
    assert jf.ran in ("scalar", "c")
    np.testing.assert_allclose(J, jacc.jacobian(forces, backend="numpy")(x0), rtol=1e-12, atol=1e-14)
