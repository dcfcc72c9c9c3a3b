"""Plans lowered to generated programs (jacc.program): the same blocks as the executor, the same
multiplication count, programs shared across constants, safe fallbacks, and the JAX backend."""

import functools
import importlib.util

import numpy as np
import pytest
from conftest import hide_module

import jacc
from jacc import allocator, examples, factorise, program, suite, unroll
from jacc.eliminate import accumulate
from jacc.lazy import LowerError, Recorder
from jacc.numpy_api import CASES
from jacc.program import BackendError, lower
from jacc.trace import trace


def _traced(name, size="small"):
    p = suite.get(name, size)
    inputs = p.make_inputs(0)
    g = trace(functools.partial(p.fn, xp=np), *inputs.values())
    return g, g.evaluate(dict(zip(g.inputs, inputs.values())))


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, float(np.max(np.abs(b), initial=0))))


@pytest.mark.parametrize("name", suite.names())
@pytest.mark.parametrize("strategy", ["forward", "reverse", "markowitz"])
def test_program_equals_executor_on_the_suite(name, strategy):
    g, values = _traced(name)
    p = jacc.plan(g, strategy)
    prog = lower(p, values)
    assert prog.mults == p.mults  # the program performs the multiplications the plan predicts
    got, want = prog.run(values, g), accumulate(p.problem, values, p.order).blocks
    assert got.keys() == want.keys()
    for k in want:
        _close(got[k], want[k])


def test_program_is_lowered_once_and_evaluated_anywhere():
    g, values = _traced("roeflux")
    p = jacc.plan(g, "reverse")
    prog = lower(p, values)
    rng = np.random.default_rng(3)
    other = g.evaluate({x: values[x] * (1 + 0.1 * rng.standard_normal(values[x].shape)) for x in g.inputs})
    for k, b in accumulate(p.problem, other, p.order).blocks.items():
        _close(prog.run(other, g)[k], b)


def test_compile_of_a_graph_that_fails_at_its_lowering_point_lowers_at_the_first_call():
    # Plan.compile lowers at a generic point, where this Cholesky factor does not exist: LinAlgError
    # from inside jacc, though execute and jacobian(backend="numpy") worked (found by fuzzing)
    X = np.array([[2.0, 0.5], [0.5, 3.0]])
    g = trace(lambda X: np.linalg.cholesky(X) @ np.array([1.0, -2.0]), X)
    p = jacc.plan(g, "reverse")
    run = p.compile("numpy")
    with pytest.raises(RuntimeError, match="lowered at its first call.*LinAlgError"):
        _ = run.program
    for Y in (X, X + np.eye(2), X.T):
        _close(run(Y)[g.outputs[0], "X"], p.execute(Y)[g.outputs[0], "X"])
    assert "def program" in run.program.source
    assert "def program" in jacc.plan(trace(np.sin, X), "reverse").compile("numpy").program.source  # at once


def test_lowering_with_the_primal_keeps_no_second_copy_of_it():
    # a chain of 30 vertex values with free partials: recording the program's primal held all 30
    # again beside the traced ones (RoeFlux over 10⁶ interfaces: 0.8 GB more at its first call)
    import tracemalloc

    def f(x):
        for k in range(30):
            x = np.sin(x) + float(k)
        return x

    x = np.linspace(0.0, 1.0, 100_000)
    g = trace(f, x)
    values = g.evaluate({"x": x})
    held = sum(v.nbytes for v in values.values())
    p = jacc.plan(g, "reverse")
    tracemalloc.start()
    try:
        prog = lower(p, values, sparse=True, primal=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.75 * held, (peak, held)  # (the partials, 30 diagonals, are about half; before: 1.5×)
    got, y, slope = prog.run({"x": x * 0.5}, g)[g.outputs[0], "x"], x * 0.5, 1.0
    for k in range(30):  # the chain rule by hand: the product of cos at each step's argument
        y, slope = np.sin(y) + float(k), slope * np.cos(y)
    assert got.nnz == x.size
    np.testing.assert_allclose(got.diagonal(), slope, rtol=1e-12)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_every_numpy_example_runs_as_a_program(c):
    args = c.make(np.random.default_rng(0))
    an = c.argnums if len(c.argnums) > 1 else c.argnums[0]
    # Markowitz's order: the lowering is under test, not the planning (the coverage sweep runs
    # auto's orders), and a second kind of order lowers other products
    jf = jacc.jacobian(c.fn(np), argnums=an, backend="numpy", strategy="markowitz")
    got = jf(*args)
    runner = jf.cache.candidates(next(iter(jf.cache.entries)))[0].runner
    while runner.deferred and runner.program is None:  # a long plan: lowered at a later call (api.lower_later)
        got = jf(*args)
    assert jf.ran == "numpy", runner.why
    # the executor runs the same plan (planning once keeps this sweep of ~800 examples short)
    want = jacc.jacobian(c.fn(np), argnums=an, strategy=jf.plan, backend="interpret")(*args)
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12, equal_nan=True)


def test_one_program_serves_every_constant():
    W = np.random.default_rng(1).standard_normal((4, 4))

    def f(x):
        h = W @ x
        # the mask is a constant of each call (np.asarray reads it: a recorded mask would run as C)
        return np.tanh(np.where(np.asarray(h > 0), h, 0.1 * h)) * 2.0

    jf = jacc.jacobian(f)
    ref = jacc.jacobian(f, backend="interpret")
    programs = set()
    for seed in range(4):
        x = np.random.default_rng(seed).standard_normal(4)
        _close(jf(x), ref(x))
        assert jf.ran == "numpy"
        programs.add(id(jf.program))
    assert len(programs) == 1 and not jf.program.baked
    W[:] = 0.5 * W  # a closure constant changes in place: same program, new values
    x = np.ones(4)
    _close(jf(x), ref(x))
    assert id(jf.program) in programs


def test_returned_blocks_belong_to_the_caller(monkeypatch):
    for backend in ("numpy", "scalar-route"):
        jf = jacc.jacobian(lambda x: x + 1.0, backend="numpy" if backend == "numpy" else "auto")
        if backend != "numpy":  # whichever is faster runs under auto: make it the scalar route
            times = iter([0.0, 1.0])  # the route's, then the program's (if its floor is not beaten)
            monkeypatch.setattr(unroll, "best_time", lambda fn, repeats=3: (fn(), next(times))[1])
        J = jf(np.zeros(3))
        assert jf.ran == {"numpy": "numpy", "scalar-route": "scalar"}[backend]
        J[0, 0] = 42.0
        np.testing.assert_array_equal(jf(np.zeros(3)), np.eye(3))
    for kw in ({"backend": "interpret"}, {"compile": False, "sparse": True}):  # the executor keeps jf.last
        jf = jacc.jacobian(lambda x: x * 2.0, **kw)
        J = jf(np.ones(4))
        kept = next(iter(jf.last.blocks.values()))
        sparse = kw.get("sparse", False)
        assert J is not kept and not np.shares_memory(J.data if sparse else J, kept.data if sparse else kept)
        (J.data if sparse else J)[...] = -1.0
        np.testing.assert_array_equal(kept.toarray() if sparse else kept, 2.0 * np.eye(4))


def test_program_prints_its_source():
    p = jacc.plan(examples.single_layer(), "reverse")
    f = p.compile("numpy")
    assert f.program.source.startswith("def program(V):")
    assert "einsum" in f.program.source
    x = {n: np.full(p.graph.shape(n), 0.3) for n in p.graph.inputs}
    for k, b in p.execute(**x).items():
        _close(f(**x)[k], b)


def test_values_that_steer_control_flow_refuse_to_be_recorded():
    rec = Recorder()
    x = rec.leaf(np.ones(3))
    with pytest.raises(LowerError, match="control flow"):
        bool(np.sum(x) > 0)
    with pytest.raises(LowerError, match="plain array"):
        np.array(x)
    with pytest.raises(LowerError):
        np.sin(x, out=np.empty(3))


def test_common_subexpressions_are_computed_once():
    rec = Recorder()
    x = rec.leaf(np.eye(2) * 2)
    a, b = np.linalg.inv(x), np.linalg.inv(x)
    assert a is b and sum(s.fn is np.linalg.inv for s in rec.statements) == 1


def test_a_disagreeing_program_is_refused(monkeypatch):
    from jacc import program

    real = program.emit

    def broken(r, backend="numpy"):
        prog = real(r, backend)
        fn = prog.fn
        prog.fn = lambda V: tuple(b + 1.0 for b in fn(V))
        return prog

    monkeypatch.setattr(program, "emit", broken)
    g, values = _traced("lion")
    with pytest.raises(LowerError, match="disagrees"):
        lower(jacc.plan(g, "reverse"), values)
    jf = jacc.jacobian(lambda x: np.sin(x) * x, backend="numpy")  # and jacobian falls back to the executor
    jf(np.ones(3))
    assert jf.ran == "interpret" and jf.last is not None


def test_bad_backend_names_are_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        jacc.jacobian(np.sin, backend="cuda")
    with pytest.raises(BackendError, match="unknown backend"):
        lower(jacc.plan(examples.lecture_f(), "reverse"), {"x1": 2.0, "x2": 5.0}, backend="tpu")


def test_missing_jax_is_one_clear_line(monkeypatch):
    hide_module(monkeypatch, "jax")
    with pytest.raises(BackendError, match=r"pip install 'jacc\[jax\]'"):
        jacc.jacobian(np.sin, backend="jax")


@pytest.mark.parametrize("name", ["lion", "roeflux", "mlp", "gp_nll", "attention", "robotarm"])
def test_jax_backend_equals_executor(name):
    pytest.importorskip("jax")
    g, values = _traced(name)
    p = jacc.plan(g, "reverse")
    prog = lower(p, values, backend="jax")
    assert prog.backend == "jax" and prog.mults == p.mults
    for k, b in accumulate(p.problem, values, p.order).blocks.items():
        np.testing.assert_allclose(prog.run(values, g)[k], b, rtol=1e-10, atol=1e-12)


def test_jacobian_with_the_jax_backend(monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)  # no scalar route: the jitted program runs
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    f = lambda x, y: np.sin(x) * y + np.cumsum(x) ** 2  # noqa: E731
    x, y = np.linspace(0.1, 1, 5), np.linspace(1, 2, 5)
    jf = jacc.jacobian(f, argnums=(0, 1), backend="jax")
    got = jf(x, y)
    assert jf.ran == "jax"
    for a, b in zip(got, jacc.jacobian(f, argnums=(0, 1), backend="interpret")(x, y)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_program_too_long_for_xla_runs_its_numpy_twin(monkeypatch):
    jax = pytest.importorskip("jax")
    # an adaptive integrator's 2,951 statements spent over 200 s in XLA's compile
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    f = lambda x, y: np.sin(x) * y + np.cumsum(x) ** 2  # noqa: E731
    x, y = np.linspace(0.1, 1, 5), np.linspace(1, 2, 5)
    want = jacc.jacobian(f, argnums=(0, 1), backend="interpret")(x, y)
    monkeypatch.setattr(jacc.program, "JAX_MAX_STATEMENTS", 3)
    jf = jacc.jacobian(f, argnums=(0, 1), backend="jax")
    for a, b in zip(jf(x, y), want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert jf.ran == "numpy"  # (under the cap of 1,000: "jax", test_jacobian_with_the_jax_backend)
    got = jf(jax.numpy.asarray(x), jax.numpy.asarray(y))  # jax.Arrays in, jax.Arrays out still
    assert all(isinstance(a, jax.Array) for a in got)
    np.testing.assert_allclose(np.asarray(got[1]), want[1], rtol=1e-12)


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("size", [300, 2])  # the array program, and the scalar route's float code
def test_the_digamma_derivative_at_negative_and_huge_points(size, backend):
    # ψ′ = ζ(2, x): JAX's Hurwitz ζ is wrong for x < 0 (ζ(2, −38.3) = −0.026 for 15.05), JAX's and
    # PyTorch's give NaN at inf and 0 at 1e300 (1e-300): a plan lowered at ordinary points returned them
    pytest.importorskip(backend)
    sp = pytest.importorskip("scipy.special")
    if backend == "jax":
        f = lambda x: sp.psi(x) * 2.0 + sp.polygamma(1, x)  # noqa: E731
    else:  # (polygamma runs on the executor under torch)
        f = lambda x: sp.psi(x) * 2.0  # noqa: E731
    jf = jacc.jacobian(f, backend=backend, nonfinite="propagate")
    ref = jacc.jacobian(f, backend="numpy", nonfinite="propagate")
    far = np.resize([np.inf, 1e300, 1e200, 3e8], size)
    for x in (np.full(size, 2.5), np.full(size, 2.5), np.linspace(-38.3, -9.5, size), far):
        np.testing.assert_allclose(jf(x), ref(x), rtol=1e-12)
        assert jf.ran in (backend, "scalar")
    second = sp.polygamma(2, -38.3) if backend == "jax" else 0.0  # ψ′(−38.3) = 15.0536419332649 (mpmath)
    np.testing.assert_allclose(np.diag(ref(np.array([-38.3, -9.5])))[:1], 2 * 15.053641933264894 + second, rtol=1e-12)


@pytest.mark.parametrize("f", [
    lambda x: np.sin(x) * x,  # a diagonal block: put_diagonal
    lambda x: (np.sin(x), np.sin(x)),  # the same block twice: two arrays
])
def test_the_jax_programs_dense_blocks_are_written_on_the_host(monkeypatch, f):
    # the jitted program returns the block's values; NumPy writes them into zeros, so the caller
    # gets writeable arrays without a copy of XLA's dense result
    pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    x = np.linspace(0.2, 1.4, 5)
    jf = jacc.jacobian(f, backend="jax", retrace=False)
    got = jf(x)
    assert jf.ran == "jax" and "on the host" in jf.program.source
    got = got if isinstance(got, tuple) else (got,)
    want = jacc.jacobian(f, backend="interpret")(x)
    want = want if isinstance(want, tuple) else (want,)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
        assert a.flags.writeable and a.flags.owndata
    if len(got) == 2:
        assert got[0] is not got[1]
    got[0][...] = 9.0  # the caller owns it: the next call is unaffected
    np.testing.assert_allclose((jf(x),)[0][0] if len(got) == 2 else jf(x), want[0], rtol=1e-12)


@pytest.mark.parametrize("f", [
    lambda x: np.sin(x) * x,  # a diagonal block, written by NumPy on the host path
    lambda x: (np.sin(x), np.sin(x)),  # the same block twice
    lambda x: np.outer(x, x).sum(axis=0) ** 2,
])
@pytest.mark.parametrize("retrace", [False, True])
def test_jax_arrays_in_give_jax_arrays_out_without_the_host(monkeypatch, f, retrace):
    # backend="jax" called with jax.Arrays: the jitted program reads them where they are and
    # leaves its blocks there (XLA assembles them), so nothing crosses to NumPy and back
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)  # the array program, not the scalar route
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    x = np.linspace(0.2, 1.4, 5)
    want = jacc.jacobian(f, backend="interpret")(x)
    want = want if isinstance(want, tuple) else (want,)
    jf = jacc.jacobian(f, backend="jax", retrace=retrace)
    jf(x)  # planned and lowered with NumPy arguments
    prog = jf.program
    assert prog.device is not None
    jf(jax.numpy.asarray(x))  # the device variant's first call: compared with the host program
    host = prog.fn
    monkeypatch.setattr(prog, "fn", lambda V: pytest.fail("the host program ran"))
    for _ in range(2):
        got = jf(jax.numpy.asarray(x))
        got = got if isinstance(got, tuple) else (got,)
        assert jf.ran == "jax" and len(got) == len(want)
        for a, b in zip(got, want):
            assert isinstance(a, jax.Array)
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12)
    monkeypatch.setattr(prog, "fn", host)
    for a, b in zip((jf(x),) if len(want) == 1 else jf(x), want):  # NumPy in: NumPy out, as before
        assert isinstance(a, np.ndarray) and a.flags.writeable
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_device_variant_that_disagrees_at_its_first_call_gives_way_to_the_host_program(monkeypatch):
    # the device variant assembles dense blocks in XLA where the host program (checked against the
    # executor at lowering) lets NumPy do it: its first call is compared with the host program
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    f = lambda x: np.sin(x) * x  # noqa: E731
    x = np.linspace(0.2, 1.4, 5)
    want = np.diag(np.sin(x) + x * np.cos(x))
    jf = jacc.jacobian(f, backend="jax", retrace=False)
    jf(x)
    prog = jf.program
    good = prog.device
    prog.device = lambda V: tuple(b * 2.0 for b in good(V))  # a wrong assembly
    with pytest.warns(RuntimeWarning, match="device variant disagrees"):
        got = jf(jax.numpy.asarray(x))
    for _ in range(2):
        assert isinstance(got, jax.Array)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
        got = jf(jax.numpy.asarray(x))
    bad = x.copy()
    bad[1] = np.inf
    with pytest.raises(ValueError, match="'x'"):  # the finite check survives the fallback
        jf(jax.numpy.asarray(bad))


@pytest.mark.parametrize("host", [True, False])
def test_jax_arrays_that_are_not_finite_are_refused_by_name(monkeypatch, host):
    # host: CPU arrays, checked by NumPy in place; else (a GPU's, say) inside the jitted call
    jax = pytest.importorskip("jax")
    from jacc import program

    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    monkeypatch.setattr(program, "_on_host", lambda x: host)
    f = lambda x, y: np.sin(x) * y  # noqa: E731
    x, y = np.linspace(0.2, 1.4, 5), np.linspace(1.0, 2.0, 5)
    jf = jacc.jacobian(f, argnums=(0, 1), backend="jax", retrace=False)
    jf(x, y)
    bad = y.copy()
    bad[3] = np.nan
    jf(jax.numpy.asarray(x), jax.numpy.asarray(y))  # (the device variant's first call)
    with pytest.raises(ValueError, match="'y'"):
        jf(jax.numpy.asarray(x), jax.numpy.asarray(bad))
    assert (jf.program.device_checked is None) == host
    np.testing.assert_allclose(np.asarray(jf(jax.numpy.asarray(x), jax.numpy.asarray(y))[1]), np.diag(np.sin(x)))
    got = jacc.jacobian(f, argnums=(0, 1), backend="jax", retrace=False, nonfinite="propagate")
    got(x, y)
    dx, dy = got(jax.numpy.asarray(x), jax.numpy.asarray(bad))
    assert isinstance(dx, jax.Array) and np.isnan(np.asarray(dx)[3, 3]) and not np.isnan(np.asarray(dx)[2, 2])
    np.testing.assert_allclose(np.asarray(dy), np.diag(np.sin(x)), rtol=1e-12)


def test_a_jax_program_started_before_the_checks_gives_what_run_gives():
    """Program.start dispatches the jitted call and returns a function that waits for it (jacobian
    compares what f reads meanwhile); NumPy programs and sparse results run at once (None)."""
    pytest.importorskip("jax")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 12)) + 12 * np.eye(12)
    f = lambda a: np.linalg.inv(a) @ np.tanh(a)  # noqa: E731
    graph = trace(f, x)
    pl = jacc.plan(graph, "reverse")
    values = {graph.inputs[0]: x}
    jit = lower(pl, values, backend="jax", primal=True)
    collect = jit.start(values, graph)
    got, want = collect(), jit.run(values, graph)
    assert got.keys() == want.keys()
    for k in got:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].flags.writeable  # the caller's own, as run's
    np.testing.assert_allclose(next(iter(got.values())), pl.execute(x)[next(iter(got))], rtol=1e-10, atol=1e-12)
    assert lower(pl, values, backend="numpy", primal=True).start(values, graph) is None
    assert lower(pl, values, backend="jax", primal=True, sparse=True).start(values, graph) is None


def test_a_skipping_jax_call_starts_its_program_only_where_it_may_use_it(monkeypatch):
    """Other arguments not differentiated (f traced anyway) start nothing; what f reads changed
    starts one run, discarded; a NaN argument is refused before the program starts (its host SVD
    step failed on it, and JAX printed the error), and under nonfinite="propagate" NumPy's error
    comes from f, as with jax.Array arguments (which raised JAX's "INTERNAL: CpuCallback error")."""
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    starts, start = [], program.Program.start
    monkeypatch.setattr(program.Program, "start", lambda self, *a: starts.append(1) or start(self, *a))
    rng = np.random.default_rng(5)
    C, W = rng.standard_normal((40, 40)) / 40, np.ones(40)
    x = rng.standard_normal(40)
    jf = jacc.jacobian(lambda x, mode: np.tanh(C @ x) * W * mode[0], backend="jax")
    for _ in range(6):
        jf(x, (1.0, "a"))
    assert jf.ran == "jax" and jf.cache.skipped >= 2 and starts
    del starts[:]
    for i in range(3):
        np.testing.assert_allclose(jf(x, (2.0 + i, "a")), np.diag(1 - np.tanh(C @ x) ** 2) @ C * (2.0 + i),
                                   rtol=1e-12)
    assert not starts
    jf(x, (1.0, "a"))
    del starts[:]
    W[0] = 3.0
    np.testing.assert_allclose(jf(x, (1.0, "a"))[0], 3.0 * (1 - np.tanh(C[0] @ x) ** 2) * C[0], rtol=1e-12)
    assert len(starts) == 1
    svd = lambda a: np.linalg.svd(a, compute_uv=False)  # noqa: E731
    good = rng.standard_normal((4, 4))
    bad = good.copy()
    bad[0, 0] = np.nan
    for nonfinite, error, match in (("raise", ValueError, r"'a' has a non-finite value nan at index \(0, 0\)"),
                                    ("propagate", np.linalg.LinAlgError, "SVD did not converge")):
        js = jacc.jacobian(svd, backend="jax", nonfinite=nonfinite)
        for _ in range(5):
            js(jax.numpy.asarray(good))
            want = js(good)
        del starts[:]
        for arg in (bad, jax.numpy.asarray(bad)):
            with pytest.raises(error, match=match):
                js(arg)
        assert nonfinite == "propagate" or not starts
        np.testing.assert_allclose(js(good), want, rtol=1e-12)


def test_a_tuple_of_jax_arrays_is_a_nested_argument():
    jax = pytest.importorskip("jax")
    g = lambda p: np.tanh(p[0]) * p[1].sum()  # noqa: E731
    x, y = np.arange(3.0), np.ones(4)
    want = jacc.jacobian(g)((x, y))
    got = jacc.jacobian(g, backend="jax")((jax.numpy.asarray(x), jax.numpy.asarray(y)))
    assert isinstance(got, tuple) and len(got) == 2  # (was one stacked array; unequal shapes raised)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12)


def test_jax_arrays_check_arguments_and_blocks_in_the_jitted_call(monkeypatch):
    """Where f's blocks must be finite (a singular matrix runs f, which raises as NumPy does), the
    check of jax.Array arguments and blocks is one jitted call with the program, not eager JAX
    reductions per block."""
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    good = np.array([[2.0, 1.0, 0.3], [1.0, 3.0, 0.2], [0.3, 0.2, 1.5]])
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 0.1, 1.0]])
    jf = jacc.jacobian(np.linalg.inv, backend="jax", retrace=False)
    want = jf(good)
    for _ in range(2):
        got = jf(jax.numpy.asarray(good))
    assert isinstance(got, jax.Array) and jf.program.device_checked is not None
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        jf(jax.numpy.asarray(singular))
    bad = good.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite value inf at index \\(1, 2\\)"):
        jf(jax.numpy.asarray(bad))
    np.testing.assert_allclose(np.asarray(jf(jax.numpy.asarray(good))), want, rtol=1e-12)


@pytest.mark.parametrize("retrace", [False, True])
def test_jax_arrays_with_sparse_results_give_scipy_blocks(retrace):
    jax = pytest.importorskip("jax")
    f = lambda x: np.sin(x) * x  # noqa: E731
    x = np.linspace(0.2, 1.4, 5)
    jf = jacc.jacobian(f, backend="jax", sparse=True, retrace=retrace)
    want = jf(x)
    for _ in range(2):
        got = jf(jax.numpy.asarray(x))
        assert type(got) is type(want) and hasattr(got, "tocsr")
        np.testing.assert_allclose(got.toarray(), np.diag(np.sin(x) + x * np.cos(x)), rtol=1e-12)


@pytest.mark.parametrize("retrace", [False, True])
def test_jax_arrays_into_a_scalar_route_come_back_as_jax_arrays(retrace):
    # small graphs run as float code even under backend="jax": the result still follows the arguments
    jax = pytest.importorskip("jax")
    p = suite.get("lecture_f", "small")
    jf = jacc.jacobian(p.fn, argnums=(0, 1), backend="jax", retrace=retrace)
    want = jf(2.0, 5.0)
    for _ in range(2):
        got = jf(jax.numpy.asarray(2.0), jax.numpy.asarray(5.0))
        assert all(isinstance(a, jax.Array) for a in got)
        np.testing.assert_allclose([float(a) for a in got], [float(a) for a in want], rtol=1e-15)


@pytest.mark.parametrize("subs", ["ab,bc->ac", "ba,bc->ac", "cb,ca->ab", "ab,cb->ca", "xab,xbc->xac",
                                  "axb,xbc->xca", "abc,cd->abd", "ab,b->a", "b,ba->a", "dcb,ca->bda"])
def test_the_xla_matrix_product_equals_einsum(subs):
    jax = pytest.importorskip("jax")
    from jacc.program import _jax_namespace, _sizes, _xla_pair

    _jax_namespace()  # (float64)

    rng = np.random.default_rng(3)
    size = dict(zip("abcdx", (3, 4, 5, 2, 6)))
    terms, out = subs.split("->")[0].split(","), subs.split("->")[1]
    a, b = (rng.standard_normal([size[c] for c in t]) for t in terms)
    pair = _xla_pair(terms[0], terms[1], out, _sizes(terms, [a.shape, b.shape]), jax.numpy,
                     jax.lax.optimization_barrier)
    np.testing.assert_allclose(np.asarray(jax.jit(pair)(a, b)), np.einsum(subs, a, b), rtol=1e-12)


@pytest.mark.parametrize("rows", [[2, 3, 4], [0, 1, 2, 3, 4, 5], [3, 1], [1, 1, 4], [-2, -1], [-1, 0]])
@pytest.mark.parametrize("add", [False, True])
def test_the_jax_put_rows_equals_numpys(rows, add):
    # consecutive rows are zeros padded around the values; others a scatter
    jax = pytest.importorskip("jax")
    from jacc import structure as S
    from jacc.program import _jax_namespace, _jax_put_rows

    put = _jax_put_rows(_jax_namespace())
    v = np.arange(1.0, 1.0 + 2 * len(rows)).reshape(len(rows), 2)
    rows = np.array(rows)
    want = S.put_rows(v, 6, rows, add)
    got = np.asarray(jax.jit(lambda v: put(v, 6, rows, add))(v))
    once = [r for r in range(6) if add or (rows % 6 == r).sum() < 2]  # a repeated write: either one
    np.testing.assert_array_equal(got[once], want[once])
    assert len(once) >= 5


def test_host_assembly_fills_slots_and_copies_repeated_blocks():
    from jacc.program import _assembled_on_host, _Slot
    from jacc.structure import put_rows

    run = _assembled_on_host(lambda V: (V[0] * 2.0, V[1]), [
        1, (put_rows, (_Slot(0), 3), {"rows": np.array([2, 0])}), ("copy", 1)])
    a, b, c = run([np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones(2)])
    np.testing.assert_array_equal(a, np.ones(2))
    np.testing.assert_array_equal(b, [[6.0, 8.0], [0.0, 0.0], [2.0, 4.0]])
    np.testing.assert_array_equal(c, b)
    assert c is not b


def test_a_program_that_compiles_constants_in_serves_only_its_graph():
    f = lambda x: np.partition(np.sin(x), 2)[2] * x  # noqa: E731  the order is a constant per call
    jf, ref = jacc.jacobian(f, backend="numpy"), jacc.jacobian(f, backend="interpret")
    rng = np.random.default_rng(5)
    seen = []
    for _ in range(3):
        x = rng.standard_normal(7)
        _close(jf(x), ref(x))
        assert jf.ran == "numpy" and jf.program.pinned and not jf.program.baked  # the order, read as a value
        seen.append(jf.program)
    assert len({id(p) for p in seen}) == 3  # lowered again for each new set of constants
    auto = jacc.jacobian(f)
    auto(rng.standard_normal(7))
    assert auto.ran == "numpy"
    x = rng.standard_normal(7)
    _close(auto(x), ref(x))
    assert auto.ran == "interpret"  # under "auto", constants that change per call are not re-lowered


def test_a_program_keeps_serving_when_only_constants_it_did_not_read_change():
    """Writing into np.zeros at fixed positions: the scatter's rule reads the positions (a
    constant), so the program compiles them in (Program.pinned) and keeps the closed-over weights
    an input. A changed weight rebuilds the graph and reuses the program; before, any constant
    read as a value compiled every constant in: each change lowered anew, and under "auto" the
    structure ran interpreted from then on (100 slice dot products: 0.7 -> 46 ms per call)."""
    w = np.linspace(1.0, 2.0, 12)

    def f(x):
        out = np.zeros(4)
        for i in range(4):
            out[i] = np.dot(w[3 * i:3 * i + 3] * x[3 * i:3 * i + 3], x[3 * i:3 * i + 3])
        return out

    def want(x):
        J = np.zeros((4, 12))
        for i in range(4):
            J[i, 3 * i:3 * i + 3] = 2 * w[3 * i:3 * i + 3] * x[3 * i:3 * i + 3]
        return J

    jf = jacc.jacobian(f, backend="numpy")  # (under "auto" a graph this small runs as scalar code)
    x = np.linspace(-1.0, 1.0, 12)
    _close(jf(x), want(x))
    program = jf.program
    assert program.pinned and not program.baked and jf.ran == "numpy"
    for k in range(3):
        w[k] += 1.0  # changed in place: a new graph of the same structure
        _close(jf(x + k), want(x + k))
        assert jf.ran == "numpy" and jf.program is program
    assert jf.cache.rebuilds == 3 and jf.cache.misses == 1


@pytest.mark.parametrize("backend", ["numpy", "interpret"])
@pytest.mark.parametrize("name", ["roeflux", "blackscholes", "mlp", "attention", "lecture_f"])
def test_sparse_blocks_equal_dense_ones(name, backend):
    p = suite.get(name, "full" if name in ("roeflux", "blackscholes") else "small")
    args = list(p.make_inputs(0).values())
    f = functools.partial(p.fn, xp=np)
    nums = tuple(range(len(args)))
    dense = jacc.jacobian(f, argnums=nums, strategy="reverse")(*args)
    js = jacc.jacobian(f, argnums=nums, strategy="reverse", sparse=True, backend=backend)
    sparse = js(*args)
    assert js.ran == backend
    for d, s in zip(dense, sparse):
        assert s.format == "csr" and s.shape == (int(np.prod(p.out_shape)), d.size // int(np.prod(p.out_shape)))
        _close(s.toarray(), d.reshape(s.shape))
    if name == "roeflux":  # 1000 independent interfaces: 3 entries per row and block
        assert all(s.nnz == 3 * s.shape[0] for s in sparse)


# -- retrace=False: the primal runs inside the program -------------------------------------------


@pytest.mark.parametrize("name", suite.names())
def test_traced_once_equals_traced_every_call(name):
    p = suite.get(name, "small")
    args = list(p.make_inputs(0).values())
    f = functools.partial(p.fn, xp=np)
    nums = tuple(range(len(args)))
    every = jacc.jacobian(f, argnums=nums, strategy="markowitz")
    once = jacc.jacobian(f, argnums=nums, strategy="markowitz", retrace=False)
    once(*args)
    rng = np.random.default_rng(1)
    moved = [a * (1 + 0.01 * rng.standard_normal(np.shape(a))) for a in args]
    for got, want in zip(once(*moved), every(*moved)):
        _close(got, want)
    assert once.ran in ("numpy", "scalar", "c") and (once.program is None or once.program.primal)


def test_traced_once_runs_f_once_and_retraces_for_other_arguments():
    calls = []

    def f(x, scale, power=2.0):
        calls.append(1)
        return np.sin(x) * scale + x ** power

    jf = jacc.jacobian(f, retrace=False)
    x = np.linspace(0.1, 1.0, 4)
    for k in range(3):
        _close(jf(x + k, 2.0), np.diag(np.cos(x + k) * 2.0 + 2 * (x + k)))
    assert len(calls) == 1  # the later calls ran the program alone
    # another float argument: traced again, as data (and run plainly, to check that trace)
    _close(jf(x, 3.0), np.diag(np.cos(x) * 3.0 + 2 * x))
    _close(jf(x, 3.0, power=3.0), np.diag(np.cos(x) * 3.0 + 3 * x ** 2))  # and another keyword
    assert len(calls) == 4
    with pytest.raises(ValueError, match="non-finite"):
        jf(np.array([np.nan, 0, 0, 0]), 3.0, power=3.0)


def test_traced_once_sees_containers_and_sparse_matrices_changed_in_place():
    """Lists, dicts, tuples holding arrays and SciPy sparse matrices are compared by value (a copy
    is kept at the trace): changed in place, the call traces again instead of reusing the old
    program; equal copies reuse it."""
    sparse = pytest.importorskip("scipy.sparse")
    calls = []

    def f(x, idx, c, t, A):
        calls.append(1)
        return (A @ x[idx]) * c["a"] * t[0] * t[1]

    jf = jacc.jacobian(f, retrace=False)
    x = np.array([1.0, 2.0, 3.0])
    idx, c, t, A = [1, 1], {"a": 1.0}, (np.ones(2), 2.0), sparse.eye(2, format="csr")

    def want():
        J = np.zeros((2, 3))
        J[np.arange(2), idx] = A.diagonal() * c["a"] * t[0] * t[1]
        return J

    jf(x, idx, c, t, A)
    traced = len(calls)
    _close(jf(x, list(idx), dict(c), (t[0].copy(), 2.0), A.copy()), want())  # equal values: reused
    assert len(calls) == traced
    # (c and t hold floats only: changed, they may become data, inputs of the program, which then
    # runs on their new values without running f; integer indices and sparse matrices trace again)
    for change, retraces in ((lambda: idx.__setitem__(0, 2), True), (lambda: c.__setitem__("a", 5.0), None),
                             (lambda: t[0].__setitem__(1, 4.0), None),
                             (lambda: A.data.__setitem__(slice(None), 3.0), True)):
        change()
        _close(jf(x, idx, c, t, A), want())
        assert len(calls) > traced or not retraces
        traced = len(calls)


@pytest.mark.parametrize("backend", ["auto", "scalar", "jax"])
def test_traced_once_tells_signed_zero_arguments_apart(backend):
    """A number not differentiated was compared with ==, so -0.0 reused the program traced at 0.0
    and np.copysign's sign was stale (found by a cross-backend fuzz); NaN still matches NaN."""
    if backend == "jax":
        pytest.importorskip("jax")
    f = lambda x, c: x * np.copysign(1.0, c)  # noqa: E731
    for x in (np.ones(2), 1.5):
        jf = jacc.jacobian(f, retrace=False, backend=backend)
        for c in (0.0, -0.0, 0.0, np.nan, np.nan):
            want = jacc.jacobian(f, backend="interpret")(x, c)
            np.testing.assert_array_equal(np.asarray(jf(x, c)), want)


def test_same_number_compares_signed_zeros_and_nans():
    from jacc.guards import same_number as _same_number

    assert _same_number(0.0, 0.0) and _same_number(-0.0, -0.0) and _same_number(np.nan, float("nan"))
    assert not _same_number(-0.0, 0.0) and not _same_number(0.0, -0.0) and not _same_number(np.nan, 1.0)
    assert _same_number(complex(1, -0.0), complex(1, -0.0)) and not _same_number(complex(1, -0.0), complex(1, 0.0))


def test_traced_once_scalar_code_matches_every_call_and_falls_back_on_math_errors():
    f = lambda a, b: np.log(a) * b - np.sqrt(b) + a  # noqa: E731
    once = jacc.jacobian(f, argnums=(0, 1), retrace=False, nonfinite="propagate")
    every = jacc.jacobian(f, argnums=(0, 1), nonfinite="propagate")
    for a, b in ((2.0, 5.0), (0.5, 3.0), (-1.0, 4.0), (3.0, -1.0)):  # math.log/sqrt raise below 0
        got, want = once(a, b), every(a, b)
        assert once.ran == "scalar" and all(isinstance(g, np.ndarray) and g.shape == () for g in got)
        np.testing.assert_array_equal(got, want)
    strict = jacc.jacobian(f, argnums=(0, 1), retrace=False)
    strict(2.0, 5.0)
    with pytest.raises(ValueError, match="argument 'b' has a non-finite value"):
        strict(1.0, float("nan"))  # the traced-once path checks too
    single = jacc.jacobian(f, argnums=1, retrace=False)
    single(2.0, 5.0)
    assert float(single(2.0, 4.0)) == pytest.approx(np.log(2.0) - 0.25)
    swapped = jacc.jacobian(f, argnums=(1, 0), retrace=False)  # the all-float fast path keeps the order
    swapped(2.0, 5.0)
    for a, b in ((3.0, 4.0), (3, 4.0), (np.float64(3.0), 4.0)):  # ints and NumPy floats take the keyed path
        db, da = swapped(a, b)
        assert float(da) == pytest.approx(b / a + 1.0) and float(db) == pytest.approx(np.log(a) - 0.5 / np.sqrt(b))
    pair = jacc.jacobian(lambda a, b: (a * b, np.sin(a) - b), argnums=(0, 1), retrace=False)  # a tuple of outputs
    pair(2.0, 5.0)
    (d1a, d1b), (d2a, d2b) = pair(3.0, 4.0)
    assert [float(d) for d in (d1a, d1b, d2a, d2b)] == [4.0, 3.0, np.cos(3.0), -1.0]
    got = once(2.0, 5.0)
    got[0][...] = 7.0  # fresh arrays, the caller's
    assert float(once(2.0, 5.0)[0]) == pytest.approx(5.0 / 2.0 + 1.0)


def test_traced_once_fixes_closures_like_jit_and_retraces_value_dependent_code():
    c = [2.0]
    f = lambda x: np.sin(x) * c[0]  # noqa: E731
    once, every = jacc.jacobian(f, retrace=False), jacc.jacobian(f)
    x = np.ones(3)
    once(x), every(x)
    c[0] = 5.0  # jax.jit semantics: the closure was read at the trace
    _close(once(x), np.diag(np.cos(x) * 2.0))
    _close(every(x), np.diag(np.cos(x) * 5.0))

    relu = jacc.jacobian(lambda x: np.where(x > 0, x, 0.1 * x) * 2.0, retrace=False)
    for v in (np.array([1.0, -1.0]), np.array([-1.0, 1.0])):  # the mask is a value: traced each call
        _close(relu(v), np.diag(np.where(v > 0, 2.0, 0.2)))


def test_one_lu_factorisation_serves_solve_slogdet_and_the_inverse():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(2)
    y = rng.standard_normal(6)
    f = lambda K: y @ np.linalg.solve(K, y) + np.linalg.slogdet(K)[1]  # noqa: E731
    K = rng.standard_normal((6, 6)) + 6 * np.eye(6)
    other = K + 0.5 * rng.standard_normal((6, 6))  # not symmetric, and a new point
    for retrace in (False, True):  # the trace's LU serves the partials too (jacc.factorise)
        jf = jacc.jacobian(f, retrace=retrace)
        jf(K)
        expected = jacc.jacobian(f, backend="interpret")(other)
        before = factorise.factorisations()
        _close(jf(other), expected)
        assert factorise.factorisations() - before == 1  # solve, slogdet and K⁻¹: one getrf
        with pytest.raises(np.linalg.LinAlgError, match="Singular"):
            jf(np.zeros((6, 6)))
    g = lambda A: np.linalg.det(A) * np.linalg.inv(A).sum()  # noqa: E731  the product rule needs both
    once = jacc.jacobian(g, retrace=False)
    once(K)
    for A in (rng.standard_normal((6, 6)), -rng.standard_normal((6, 6))):  # pivoting; either sign of det
        _close(once(A), jacc.jacobian(g, backend="interpret")(A))
    assert "factorise" in once.program.fn.__globals__["f0"].__module__


@pytest.mark.parametrize("case", range(6))
def test_products_with_an_inverse_are_solves_on_the_shared_lu(case):
    pytest.importorskip("scipy")
    rng = np.random.default_rng(case)
    n = program.SOLVE_FOR_INVERSE_MIN + 4
    u, B = rng.standard_normal(n), rng.standard_normal((n, 3))
    f = [lambda a: u @ np.linalg.solve(a, u),  # reverse: the adjoint through A⁻ᵀ
         lambda a: (np.linalg.solve(a, B) ** 2).sum(),  # several right-hand sides, a transposed product
         lambda a: np.linalg.solve(a.T, B).sum(axis=0),  # a sum of the inverse over one axis
         lambda a: u @ np.linalg.solve(a, u) + B[:, 0] @ np.linalg.solve(a, B[:, 1]),  # one inverse, two products
         lambda a: np.sin(np.linalg.solve(a, u)) @ np.linalg.solve(a @ a, 2 * u),
         lambda a: np.linalg.solve(a, np.linalg.solve(a, u)) @ u][case]
    A = rng.standard_normal((n, n)) + n * np.eye(n)
    jf = jacc.jacobian(f)
    for k in range(3):  # calls 2 and 3 run the program alone
        X = A + 0.3 * k * rng.standard_normal((n, n))
        _close(jf(X), jacc.jacobian(f, backend="interpret")(X))
    used = set(map(id, jf.program.fn.__globals__.values()))
    assert id(factorise.inverse_along) in used and id(np.linalg.inv) not in used and id(factorise.inv) not in used
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        jf(np.zeros((n, n)))


def test_an_inverse_used_beyond_few_columns_of_products_is_formed_and_small_ones_stay_inverses():
    rng = np.random.default_rng(7)
    for n in (program.SOLVE_FOR_INVERSE_MIN - 1, program.SOLVE_FOR_INVERSE_MIN + 1):
        u = rng.standard_normal(n)
        f = lambda a: u @ np.linalg.solve(a, u) + np.linalg.slogdet(a)[1]  # noqa: E731  ∂ logdet is A⁻ᵀ itself
        g = lambda a: u @ np.linalg.solve(a, u)  # noqa: E731
        h = lambda a: u @ np.linalg.inv(a) @ u  # noqa: E731  an n × n adjoint through A⁻¹ twice: 2n columns
        A = rng.standard_normal((n, n)) + n * np.eye(n)
        for fn, solves in ((f, False), (g, n >= program.SOLVE_FOR_INVERSE_MIN), (h, False)):
            jf = jacc.jacobian(fn)
            jf(A)
            _close(jf(A.T), jacc.jacobian(fn, backend="interpret")(A.T))
            used = set(map(id, jf.program.fn.__globals__.values()))
            assert (id(factorise.inverse_along) in used) == solves


@pytest.mark.parametrize("solves", [True, False])
def test_an_ill_conditioned_lowering_point_keeps_the_program(solves, monkeypatch):
    # a correct program and the executor differ by about cond·ε: at a first call with a matrix of
    # condition 10⁸ the check's 10⁻⁹ failed, and every later call ran the executor (6× slower; hunt AK)
    if not solves:
        monkeypatch.setattr(program, "SOLVE_FOR_INVERSE_MIN", 10 ** 6)
    rng = np.random.default_rng(0)
    n = 40
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ill, well = (U * np.logspace(0, -8, n)) @ V.T, rng.standard_normal((n, n)) + n * np.eye(n)
    u = rng.standard_normal(n)
    f = lambda A, u: u @ np.linalg.solve(A, u)  # noqa: E731
    jf = jacc.jacobian(f, argnums=(0, 1))
    jf(ill, u)
    for k in range(3):
        got = jf(well + k * 1e-3, u)
        assert jf.ran == "numpy"
        for a, b in zip(got, jacc.jacobian(f, argnums=(0, 1), backend="interpret")(well + k * 1e-3, u)):
            _close(a, b)
    assert program._slack(jf.plan.graph, {v: ill for v in jf.plan.graph.nx}) > 1e3
    singular = np.ones((n, n))  # beyond SLACK_COND_MAX: no slack
    assert program._slack(jf.plan.graph, {v: singular for v in jf.plan.graph.nx}) == 1.0


def test_det_gradient_uses_the_shared_lu_and_the_svd_where_pivots_vanish():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(3)
    A = rng.standard_normal((7, 7))
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    near = singular + 1e-13 * np.eye(3)  # pivots below PIVOT_RATIO of the largest
    for a in (A, singular, near, rng.standard_normal((2, 4, 4))):
        want = factorise.adjugate_by_svd(a)
        with factorise.sharing():
            got = factorise.det_gradient(a)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(factorise.adjugate_by_svd(A), np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-10)
    # rows of very different sizes are not near singularity: det·A⁻ᵀ entry by entry (the SVD's
    # adjugate is accurate only against the largest entries: 3e-4 relative here, hunt AK)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0] + 0.1 * rng.standard_normal((4, 4))
    for scaled in (np.array([1e8, 1e-8, 1.0, 1e4])[:, None] * Q, Q * np.array([1e-6, 1.0, 1e7, 1.0])):
        with factorise.sharing():
            got = factorise.det_gradient(scaled)
        np.testing.assert_allclose(got, np.linalg.det(scaled) * np.linalg.inv(scaled).T, rtol=1e-10)
    f = lambda a: np.linalg.det(a)  # noqa: E731
    jf = jacc.jacobian(f)
    jf(A)
    want = jacc.jacobian(f, backend="interpret")(A + 0.1)
    before = factorise.factorisations()
    _close(jf(A + 0.1), want)
    assert factorise.factorisations() - before == 1  # det and its gradient: one getrf
    singular4 = np.array([[1.0, 2.0, 3.0, 0.5], [2.0, 4.0, 6.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 2.0]])
    for backend in ("jax", "torch"):  # the SVD form, in the backend's namespace (a 3 × 3 det: the scalar route)
        if importlib.util.find_spec(backend) is None:
            continue
        jb = jacc.jacobian(f, backend=backend, retrace=False)
        _close(jb(singular4), factorise.adjugate_by_svd(singular4))
        assert jb.ran == backend


@pytest.mark.parametrize("n", [4, 9], ids=["dense partials", "network"])
@pytest.mark.parametrize("kind", ["eigh", "svd", "qr"])
def test_one_decomposition_per_call_serves_values_vectors_and_partials(n, kind):
    X = np.random.default_rng(4).normal(size=(n, n))
    if kind == "eigh":
        f = lambda X: np.sum(np.linalg.eigh(X @ X.T + np.eye(n))[1][:, -1] ** 2 * np.arange(n))  # noqa: E731
    elif kind == "qr":
        f = lambda X: np.sum(np.linalg.qr(X)[0][:, 0] ** 2 * np.arange(n)) + np.sum(np.linalg.qr(X)[1] ** 3)  # noqa: E731
    else:  # (the singular values alone, by compute_uv=False, are a second, separate call)
        f = lambda X: np.sum(np.linalg.svd(X)[0][:, 0] ** 2 * np.arange(n)) + np.sum(np.linalg.svd(X)[2] ** 2)  # noqa: E731
    want = jacc.jacobian(f, backend="interpret", time_limit=0.1)(X + 0.01)
    for retrace in ("always", True, False):
        jf = jacc.jacobian(f, retrace=retrace, time_limit=0.1)  # (the decompositions are tested, not the search)
        jf(X)
        jf(X)  # (by default the second call confirms that f may be skipped: from the third on it is)
        before = factorise.factorisations()
        _close(jf(X + 0.01), want)
        assert factorise.factorisations() - before == 1  # values, vectors, partials: one decomposition


def test_numpy_scalars_in_statements_are_constants_not_their_repr():
    from jacc.program import _Writer

    w = _Writer()
    name = w.text(np.float64(2.0))  # a float subclass whose repr, np.float64(2.0), names np
    assert "np" not in name and w.env[name] == 2.0 and type(w.env[name]) is np.float64
    assert w.text(2.0) == "2.0"


def test_inv_lower_is_trtri_inside_a_sharing_block_and_numpy_outside():
    pytest.importorskip("scipy")
    L = np.linalg.cholesky(np.eye(5) * 5 + np.ones((5, 5)))
    want = np.linalg.inv(L)
    with factorise.sharing():
        got = factorise.inv_lower(L)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert np.all(np.triu(got, 1) == 0.0)
    np.testing.assert_array_equal(factorise.inv_lower(L), want)  # outside a block: NumPy's inv
    np.testing.assert_allclose(factorise.inv_lower(np.stack([L, 2 * L])), np.linalg.inv(np.stack([L, 2 * L])))


_FAULTS = """
import functools, resource, sys, numpy as np, jacc
from jacc import allocator, suite
from jacc.bench import arg_names
p = suite.get(sys.argv[1], "full")
inputs = p.make_inputs(0)
args = [inputs[n] for n in arg_names(p)]
jf = jacc.jacobian(functools.partial(p.fn, xp=np), argnums=tuple(range(len(args))), strategy="reverse",
                   retrace="always")  # (f's temporaries every call)
for _ in range(3):
    jf(*args)
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    jf(*args)
print(allocator.tuned(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 20)
"""


@pytest.mark.skipif(not allocator._glibc(), reason="the malloc settings are glibc's")
@pytest.mark.parametrize("name, untuned", [("regression", 190), ("roeflux", 760)])
def test_repeated_calls_reuse_heap_pages_and_jacc_malloc_system_opts_out(name, untuned):
    """regression's arrays are below glibc's largest mmap threshold (32 MiB), roeflux's two 72 MB
    Jacobian blocks above it: both reuse the heap's pages from call to call."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "JACC_MALLOC"}
    runs = {}
    for setting in ("", "system"):
        out = subprocess.run([sys.executable, "-c", _FAULTS, name], env={**env, "JACC_MALLOC": setting},
                             capture_output=True, text=True, check=True).stdout.split()
        runs[setting] = (out[0] == "True", float(out[1]))
    assert runs[""][0] and not runs["system"][0]
    assert runs[""][1] < 20  # page faults per call, tuned (about `untuned` with glibc's own settings)
    assert runs["system"][1] > 5 * max(runs[""][1], 1)


def test_blocks_of_parameter_slices_are_added_into_one_array_in_place():
    from jacc import program, structure
    f = lambda th: np.sum(np.tanh(th[:3]) * 2) + np.sum(th[3:7] ** 2) + np.sum(np.sin(th[7:]))  # noqa: E731
    x = np.linspace(0.1, 1.0, 10)
    jf = jacc.jacobian(f, backend="numpy", strategy="reverse", retrace="always")  # (no primal in the program)
    got = jf(x)
    np.testing.assert_allclose(got, np.concatenate([2.0 / np.cosh(x[:3]) ** 2, 2.0 * x[3:7], np.cos(x[7:])]),
                               rtol=1e-14)
    env, src = jf.program.fn.__globals__, jf.program.source
    calls = {k: src.count(f" {k}(") for k in env}
    named = {fn: sum(n for k, n in calls.items() if env[k] is fn)
             for fn in (program.add_rows, structure.put_rows.__wrapped__, np.add)}
    # one zero-filled array for the first block, the other two added into it in place
    assert named == {program.add_rows: 2, structure.put_rows.__wrapped__: 1, np.add: 0}
    placed = {(v.start, v.stop) for v in env.values() if isinstance(v, slice)}  # contiguous rows: slices
    assert placed == {(0, 3), (3, 7), (7, 10)}  # (the first block's write into zeros too)
    x2 = x[::-1].copy()
    np.testing.assert_allclose(jf(x2), jacc.jacobian(f, backend="interpret")(x2), rtol=1e-14)
    assert not np.shares_memory(jf(x), got)  # a fresh accumulator per call


def test_a_large_reshaped_block_is_added_into_its_slice_in_place():
    """The MLP's weight matrix is most of its gradient (16,384 of 17,793 entries) and reaches it
    through a reshape: too large a share for a scattered add, but placed whole in one slice, so it
    is added there (program.add_placed) rather than written into zeros and summed at full size."""
    from jacc import program, structure
    v = np.linspace(-1.0, 1.0, 4)
    f = lambda th: (np.sum(np.tanh(th[:2])) + np.sum(np.sin(th[2:14].reshape(3, 4) @ v))  # noqa: E731
                    + np.sum(th[14:] ** 2))
    x = np.linspace(0.1, 0.9, 16)
    jf = jacc.jacobian(f, backend="numpy", strategy="reverse", retrace="always")
    got = jf(x)
    want = np.concatenate([1.0 / np.cosh(x[:2]) ** 2, (np.cos(x[2:14].reshape(3, 4) @ v)[:, None] * v).ravel(),
                           2.0 * x[14:]])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    env, src = jf.program.fn.__globals__, jf.program.source
    count = lambda fn: sum(src.count(f" {k}(") for k in env if getattr(env[k], "ufunc", env[k]) is fn)  # noqa: E731
    assert count(program.add_placed) == 1 and count(structure.put_rows.__wrapped__) == 1 and count(np.add) == 0
    assert any(isinstance(k, slice) and (k.start, k.stop) == (2, 14) for k in env.values())
    np.testing.assert_allclose(jf(x[::-1].copy()), jacc.jacobian(f, backend="interpret")(x[::-1].copy()),
                               rtol=1e-14)


def test_rows_placed_into_a_stacked_jacobian_are_added_where_they_land():
    """np.stack of 20 slice sums: forward mode places each sum's row (10 numbers) into the 20 × 200
    Jacobian through put_rows, put_last and a transpose. Each row is now added where it lands
    (program.add_placed) instead of as a zero-filled 20 × 200 block and a full-size sum per row
    (100 rows over 1,000 numbers: 3.6 → 0.27 ms per call)."""
    from jacc import program, structure
    f = lambda x: np.stack([np.sum(x[i:i + 10] ** 2) for i in range(0, 200, 10)])  # noqa: E731
    x = np.linspace(-1.0, 1.0, 200)
    jf = jacc.jacobian(f, strategy="forward", backend="numpy", retrace="always")
    want = np.zeros((20, 200))
    for i in range(20):
        want[i, 10 * i:10 * i + 10] = 2 * x[10 * i:10 * i + 10]
    np.testing.assert_allclose(jf(x), want, rtol=1e-15)
    env, src = jf.program.fn.__globals__, jf.program.source
    count = lambda fn: sum(src.count(f" {k}(") for k in env if env[k] is fn)  # noqa: E731
    assert count(program.add_placed) == 19 and count(structure.put_last.__wrapped__) == 1
    assert not any(getattr(env[k], "ufunc", env[k]) is np.add and f" {k}(" in src for k in env)
    y = x[::-1] * 3.0
    np.testing.assert_allclose(jf(y), jacc.jacobian(f, backend="interpret")(y), rtol=1e-15)


def test_a_placement_found_from_its_chain_adds_what_the_chain_would():
    """program._placement runs a chain of placing calls and moves on the numbers of its source's
    elements; add_placed then adds the source where the chain puts it, in any order."""
    from jacc import program, structure
    from jacc.lazy import Ref, Statement
    put, last = structure.put_rows.__wrapped__, structure.put_last.__wrapped__
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3, 2))
    chains = {  # rows out of order, then moved: the source's elements land out of order
        "rows, transposed": [Statement(1, put, (Ref(0), 5, np.array([4, 0, 2])), {}),
                             Statement(2, np.transpose, (Ref(1), [1, 0]), {})],
        "a new last axis, reshaped": [Statement(1, last, (Ref(0), 4, 3), {}),
                                      Statement(2, None, (Ref(1), (2, 12)), {}, method="reshape")],
    }
    for name, chain in chains.items():
        placed = v
        for s in chain:
            placed = getattr(placed, s.method)(*s.args[1:]) if s.method else s.fn(placed, *s.args[1:])
        at, src, lattice = program._placement(chain, v.shape)
        acc = rng.standard_normal(placed.shape)
        want = acc + placed
        np.testing.assert_array_equal(program.add_placed(acc.copy(), v, at, src), want, err_msg=name)
        if lattice is not None:  # (the same positions as a strided view)
            np.testing.assert_array_equal(program.add_placed(acc.copy(), v, at, src, lattice), want, err_msg=name)


def test_a_placement_on_a_lattice_is_added_through_a_strided_view():
    """Positions that are an affine function of the source's multi-index (a block diagonal:
    acc[a, b, a, d] += v[a, b, d]) are added through one strided view (program._lattice), where
    indexing by four arrays gathered and scattered element by element (attention: 1.1 ms → 0.09 ms
    for 65,536 entries); positions that are not, or a source element landing twice, are not."""
    from jacc import program
    a, b, d = np.indices((4, 3, 5)).reshape(3, -1)
    pos = np.ravel_multi_index((a, b, a, d), (4, 3, 4, 5))
    order = np.argsort(pos)
    lattice = program._lattice(pos[order], order, (4, 3, 5))
    assert lattice == (0, (4, 3, 5), (3 * 4 * 5 + 5, 4 * 5, 1))
    rng = np.random.default_rng(1)
    acc, v = rng.standard_normal((4, 3, 4, 5)), rng.standard_normal((4, 3, 5))
    want = acc.copy()
    want[a, b, a, d] += v.reshape(-1)
    at = (a, b, a, d)
    np.testing.assert_array_equal(program.add_placed(acc.copy(), v, at, None, lattice), want)
    np.testing.assert_array_equal(program.add_placed(np.asfortranarray(acc), v, at, None, lattice), want)  # (indexed)
    assert program._lattice(np.array([0, 1, 3]), np.arange(3), (3,)) is None  # not evenly spaced
    assert program._lattice(np.array([0, 1, 2]), np.array([0, 0, 1]), (3,)) is None  # one element twice
    W = np.linspace(-1.0, 1.0, 9).reshape(3, 3)

    def attention(X):
        e = np.exp(X @ W @ X.T)
        return (e / np.sum(e, axis=1, keepdims=True)) @ X
    X = np.linspace(0.1, 0.9, 12).reshape(4, 3)
    jf = jacc.jacobian(attention, backend="numpy", strategy="reverse", retrace="always")
    np.testing.assert_allclose(jf(X), jacc.jacobian(attention, backend="interpret")(X), rtol=1e-13)
    env = jf.program.fn.__globals__
    placed = [line for line in jf.program.source.splitlines() if any(
        f" {k}(" in line for k in env if env[k] is program.add_placed)]
    assert any(not line.rstrip().endswith("None)") for line in placed), placed  # (a lattice passed)
    Y = X[::-1] * 1.5
    np.testing.assert_allclose(jf(Y), jacc.jacobian(attention, backend="interpret")(Y), rtol=1e-13)


def test_a_placement_into_a_zero_dimensional_sum_is_left_as_it_is():
    """A chain that ends in a 0-d value has no positions to add at: the sum stays a sum (found by
    review: taking every dense chain to _placement let np.unravel_index fail on it)."""
    from jacc import program, structure
    from jacc.lazy import Ref, Statement
    put = structure.put_rows.__wrapped__
    live = [Statement(3, put, (Ref(9), 1, np.array([0])), {}), Statement(4, None, (Ref(3), ()), {}, method="reshape"),
            Statement(1, put, (Ref(0), 1, np.array([0])), {}), Statement(2, None, (Ref(1), ()), {}, method="reshape"),
            Statement(5, np.add, (Ref(4), Ref(2)), {})]
    shapes = {0: (1,), 9: (1,), 1: (1,), 2: (), 3: (1,), 4: (), 5: ()}
    out = program._rows_added_in_place(live, {}, {5}, shapes)
    assert [s.id for s in out] == [3, 4, 1, 2, 5] and out[-1].fn is np.add


def test_a_long_scan_writes_the_terms_of_a_product_in_one_pass():
    """The order that pushes 2x through np.cumsum's prefix network multiplies the Jacobian so far
    by sums of up to 256 gathers: their values are written in one pass (structure's
    _summed_in_one_pass), one put_rows and no add per term. Added pair by pair, each term was a
    gather and a scattered add of its own (2,500 statements and 3.0 ms per call against 1,543 and
    2.1 ms); before that, every term was a fresh 90,000-entry array of zeros and a full-size sum."""
    from jacc import program, structure
    x = np.linspace(0.1, 1.0, 300)
    plan = jacc.plan(trace(lambda x: np.cumsum(x ** 2), x), "min-fill", objective="time")
    compiled = plan.compile("numpy")
    [got] = compiled(x).values()
    np.testing.assert_array_equal(got, np.tril(np.ones((300, 300))) * (2 * x))
    env, src = compiled.program.fn.__globals__, compiled.program.source
    count = lambda fn: sum(src.count(f" {k}(") for k in env if env[k] is fn)  # noqa: E731
    assert count(structure.put_rows.__wrapped__) == 1 and count(program.add_rows) == 0
    assert compiled.program.statements < 2000
    np.testing.assert_array_equal(compiled(x[::-1].copy())[next(iter(compiled(x)))],
                                  np.tril(np.ones((300, 300))) * (2 * x[::-1]))


def test_moveaxis_with_constant_axes_becomes_a_transpose_method_call():
    """np.moveaxis checks its arguments on every call (4 µs on a small array): a program's moves
    with constant axes are printed as ``x.transpose(order)``, the order found at lowering. The
    program of np.linalg.solve on a 5×5 matrix made four such moves per call (46 → 33 µs)."""
    from jacc import program
    from jacc.lazy import Ref, Statement
    shapes = {0: (2, 3, 4)}
    for src, dst in ((0, -1), (-1, 0), ([0, 1], [2, 0]), (1, 1)):
        [s] = program._moves_as_transposes([Statement(1, np.moveaxis, (Ref(0), src, dst), {})], shapes)
        assert s.method == "transpose" and s.fn is None
        x = np.arange(24.0).reshape(2, 3, 4)
        np.testing.assert_array_equal(x.transpose(s.args[1]), np.moveaxis(x, src, dst))
    [bad] = program._moves_as_transposes([Statement(1, np.moveaxis, (Ref(0), 5, 0), {})], shapes)
    assert bad.fn is np.moveaxis  # (an axis out of range: left to fail as NumPy fails)
    f = lambda x: np.linalg.solve(x[:25].reshape(5, 5) + 5 * np.eye(5), x[25:])  # noqa: E731
    x = np.linspace(-1.0, 1.0, 30)
    jf = jacc.jacobian(f, backend="numpy", strategy="optimal")
    got = jf(x)
    assert "moveaxis" not in {getattr(v, "__name__", "") for v in jf.program.fn.__globals__.values()}
    np.testing.assert_allclose(got, jacc.jacobian(f, backend="interpret", strategy="optimal")(x), rtol=1e-13)


def test_transposes_that_keep_every_axis_are_aliases():
    """The algebra writes ``np.transpose(v, [0, 1, 2])`` where a product's labels are in order
    already: a statement per call that moves nothing (the 5×5 solve's program had one of its 21)."""
    from jacc import program
    from jacc.lazy import Ref, Statement
    shapes = {0: (2, 3, 4), 1: (2, 3, 4), 2: (2, 3, 4), 3: (4, 3, 2)}
    live = [Statement(1, np.transpose, (Ref(0), [0, 1, 2]), {}), Statement(2, None, (Ref(1), (0, 1, 2)), {},
                                                                           method="transpose"),
            Statement(3, np.transpose, (Ref(0), [2, 1, 0]), {})]
    assert program._aliases(live, shapes) == {1: 0, 2: 0}
    f = lambda x: np.linalg.solve(x[:25].reshape(5, 5) + 5 * np.eye(5), x[25:])  # noqa: E731
    x = np.linspace(-1.0, 1.0, 30)
    jf = jacc.jacobian(f, backend="numpy", strategy="optimal")
    got = jf(x)
    assert "[0, 1, 2])" not in jf.program.source
    np.testing.assert_allclose(got, jacc.jacobian(f, backend="interpret", strategy="optimal")(x), rtol=1e-13)


def test_terms_that_meet_are_written_in_groups_that_do_not():
    """structure._disjoint: terms whose positions meet go to different groups, each a plain write
    (past DISJOINT_GROUPS groups the rest are summed with np.add.at); the sum is the same."""
    from jacc import structure
    where = [np.array([0, 1, 2]), np.array([2, 3]), np.array([4, 5]), np.array([0, 5]), np.array([6])]
    groups = structure._disjoint(where, 8)
    assert groups == [([0, 2, 4], False), ([1, 3], False)]
    for g, _ in groups:
        at = np.concatenate([where[k] for k in g])
        assert np.unique(at).size == at.size
    assert structure._disjoint([np.array([0])] * 12, 1)[-1] == ([8, 9, 10, 11], True)
    # through a Jacobian: three gathers of x that read some entries twice, summed
    f = lambda x: 2 * x[[0, 1, 0]] + 3 * x[[0, 2, 0]] + x[[1, 1, 2]] ** 2  # noqa: E731
    x = np.array([0.3, -0.7, 1.1])
    want = np.array([[5, 2 * x[1], 0], [0, 2 + 2 * x[1], 3], [5, 0, 2 * x[2]]])
    for strategy in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(jacc.jacobian(f, strategy=strategy)(x), want, rtol=1e-15)


@pytest.mark.parametrize("faster", [True, False])
def test_auto_runs_a_plain_order_where_the_planned_program_measures_far_slower(monkeypatch, faster):
    """np.sin(np.cumsum(x)) over 300: auto's plan prices at 0 multiplications against forward's
    90,000 but its program moves values through every level of the scan (50 ms against forward's
    0.8 ms at 1,000). The first call times both plain orders' programs (here a clock that charges
    per statement, or the same for every program) and runs one where it takes at most half the time."""
    from jacc import api
    clock = (lambda program, *_: 1e-5 * program.statements) if faster else (lambda *_: 1e-3)
    monkeypatch.setattr(api, "_call_seconds", clock)
    x = np.linspace(0.1, 1.0, 300)
    jf = jacc.jacobian(lambda x: np.sin(np.cumsum(x)))
    expected = lambda x: np.cos(np.cumsum(x))[:, None] * np.tril(np.ones((300, 300)))  # noqa: E731
    np.testing.assert_allclose(jf(x), expected(x), rtol=1e-12, atol=1e-15)
    plan = jf.plan
    if faster:
        assert plan.strategy == "auto→forward" and jf.program.mults == plan.mults == 90_000
        assert plan.info["measured"].startswith("forward ran fastest") and "0 mults" in plan.info["planned"]
    else:
        assert plan.strategy.startswith("auto→") and "measured" not in plan.info and plan.mults == 0
    for _ in range(3):  # later calls (f skipped once watched) run the same plan
        x = x[::-1] + 0.01
        np.testing.assert_allclose(jf(x), expected(x), rtol=1e-12, atol=1e-15)
        assert jf.plan.order == plan.order


def test_a_program_that_writes_far_more_than_its_plan_multiplies_is_timed(monkeypatch):
    """np.sin(np.cumsum(x)) over 300: auto's program has fewer statements per step than
    PLAIN_STATEMENTS, but writes 4.1 million values per call for a Jacobian of 90,000 entries and a
    plan of 0 multiplications (each term of a product a full-size block): over PLAIN_WRITES, so the
    first call times it (here a clock that charges per value written) and forward runs instead."""
    from jacc import api
    timed: list = []

    def clock(program, *_):
        timed.append(program)
        return 1e-9 * program.written
    monkeypatch.setattr(api, "_call_seconds", clock)
    # (the writes alone: the order auto finds in its search time, which a loaded machine shortens,
    # may have more statements per step than PLAIN_STATEMENTS, the other trigger)
    monkeypatch.setattr(api, "PLAIN_STATEMENTS", 10**6)
    x = np.linspace(0.1, 1.0, 300)
    f = lambda x: np.sin(np.cumsum(x))  # noqa: E731
    jf = jacc.jacobian(f)
    np.testing.assert_allclose(jf(x), np.cos(np.cumsum(x))[:, None] * np.tril(np.ones((300, 300))), rtol=1e-12)
    planned = timed[0]
    assert planned.mults == 0 and planned.written > api.PLAIN_WRITES * 90_000
    assert jf.plan.strategy == "auto→forward" and "0 mults" in jf.plan.info["planned"]
    monkeypatch.setattr(api, "PLAIN_WRITES", 10**9)  # without the trigger: nothing timed
    n = len(timed)
    jg = jacc.jacobian(f)
    jg(x)
    assert len(timed) == n and "measured" not in jg.plan.info


def test_auto_keeps_its_plan_unmeasured_where_the_program_is_short_for_it(monkeypatch):
    """The suite's programs have a few statements per elimination step: their first calls time
    nothing (the clock here would fail the test if called)."""
    from jacc import api

    def clock(*_):
        raise AssertionError("timed")
    monkeypatch.setattr(api, "_call_seconds", clock)
    problem = suite.get("gp_nll", "small")
    inputs = problem.make_inputs(0)
    jf = jacc.jacobian(lambda th: problem.fn(**{**inputs, "theta": th}))
    jf(inputs["theta"])
    assert jf.ran == "numpy" and "measured" not in jf.plan.info


def _calls_of(jf, fn) -> int:
    env, src = jf.program.fn.__globals__, jf.program.source
    return sum(src.count(f" {k}(") for k in env if env[k] is fn)


def _in_place(jf, ufunc) -> int:
    """Calls in the program of ``jf`` that write ``ufunc``'s result into an operand (program.into)."""
    env, src = jf.program.fn.__globals__, jf.program.source
    return sum(src.count(f" {k}(") for k in env if getattr(env[k], "ufunc", None) is ufunc)


def test_large_sums_reuse_a_temporary_read_nowhere_else():
    """The dense Jacobian of the suite's attention (1,024 × 1,024, 8 MiB) was three 8 MiB
    arrays at each sum of two terms: 24.6 MiB at the peak of a call, 16.7 MiB now."""
    import tracemalloc


    p = suite.get("attention", "full")
    X = p.make_inputs()["X"]
    jf = jacc.jacobian(p.fn, strategy="optimal", time_limit=60, backend="numpy", memory_limit=20_000_000)
    want = jf(X)
    assert _in_place(jf, np.add) >= 3
    keep = X.copy()
    tracemalloc.start()
    try:
        got = jf(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.3 * want.nbytes, f"{peak / 2**20:.1f} MiB at the peak for an {want.nbytes / 2**20:.0f} MiB result"
    np.testing.assert_array_equal(got, want)  # the same every call: nothing cached was written into
    np.testing.assert_array_equal(X, keep)
    np.testing.assert_allclose(got, jacc.jacobian(p.fn, backend="interpret")(X), rtol=1e-12, atol=1e-14)


def test_a_sum_never_writes_into_an_input_a_result_or_a_value_read_again():
    from jacc import program

    n = 80  # blocks of 6,400 entries: above program.IN_PLACE_MIN

    def f(x, y):
        s = np.outer(x, y) + np.outer(y, x)  # two fresh products, each read once
        return s, s + np.outer(x, x), np.sin(x) + y * 0 + x  # an input as an addend
    x, y = np.linspace(0.1, 1.0, n), np.linspace(-1.0, 0.5, n)
    xs, ys = x.copy(), y.copy()
    jf = jacc.jacobian(f, argnums=(0, 1), backend="numpy", strategy="reverse")
    got = jf(x, y)
    env = jf.program.fn.__globals__  # (a sum into a temporary, or a diagonal added onto one)
    assert _in_place(jf, np.add) + sum(jf.program.source.count(f" {k}(") for k in env
                                       if env[k] is program.add_placed) >= 1
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(y, ys)
    want = jacc.jacobian(f, argnums=(0, 1), backend="interpret", strategy="reverse")(x, y)
    for g, w in zip(_leaves(got), _leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
    for g, w in zip(_leaves(jf(x, y)), _leaves(want)):  # and again: nothing kept was changed
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
    acc = np.ones(5000)
    assert program.into(np.add, 0)(acc, np.ones(5000)) is acc and acc[0] == 2.0
    assert program.into(np.add, 0)(np.ones(5000), np.ones(5000) * 1j).dtype == complex  # a wider sum: a new array


def _leaves(x):
    return [np.asarray(v) for v in (x if isinstance(x, tuple) else (x,)) for v in (v if isinstance(v, tuple) else (v,))]


def test_elementwise_calls_write_into_a_temporary_read_nowhere_else():
    """A layer's bias, activation and derivative (``tanh``, ``1 - t²``, ``δ * (1 - t²)``) reuse
    the memory of temporaries read only there; never an input, a result, a constant or a value
    read again (``t`` below is read three times)."""
    from jacc import program

    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((64, 80)) / 8, rng.standard_normal(80)

    def layer(x, w):
        t = np.tanh(x @ w + b)  # the product is fresh and read once: the bias and tanh go into it
        return np.sum((1.0 - t * t) * t), t * 2.0  # t: read again, and a result's operand
    x = rng.standard_normal((100, 64))
    xs, ws, bs = x.copy(), W.copy(), b.copy()
    jf = jacc.jacobian(layer, argnums=(0, 1), backend="numpy", strategy="reverse")
    got = jf(x, W)
    for ufunc in (np.add, np.tanh, np.subtract):
        assert _in_place(jf, ufunc) >= 1, (ufunc, jf.program.source)
    want = jacc.jacobian(layer, argnums=(0, 1), backend="interpret", strategy="reverse")(x, W)
    for _ in range(2):  # and again: nothing kept was written into
        for g, w in zip(_leaves(got), _leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
        got = jf(x, W)
    for a, keep in ((x, xs), (W, ws), (b, bs)):
        np.testing.assert_array_equal(a, keep)
    # float32: a constant or operand of another dtype needs a cast, so the result is a new array
    jf32 = jacc.jacobian(layer, argnums=(0, 1), backend="numpy", strategy="reverse", dtype=np.float32)
    for g, w in zip(_leaves(jf32(x.astype(np.float32), W.astype(np.float32))), _leaves(want)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)
    assert not any(map(program._writes_floats, (np.greater, np.divmod, np.matmul, np.isfinite)))
    acc = np.ones(3, np.float32)
    assert program.into(np.multiply, 0)(acc, np.full(3, 2.0)).dtype == np.float64 and acc[0] == 1.0


@pytest.mark.slow  # ~1 min: every example lowered and jitted
def test_every_numpy_example_lowers_to_jax_but_a_few_special_functions():
    """docs/execution.md quotes 904 of 966; a mapping lost shows here."""
    pytest.importorskip("jax")
    refused = []
    for c in CASES:
        args = c.make(np.random.default_rng(0))
        g = trace(c.fn(np), *args, argnums=c.argnums)
        try:
            lower(jacc.plan(g, "reverse"), g.evaluate(dict(zip(g.inputs, [args[i] for i in c.argnums]))),
                  backend="jax")
        except (BackendError, LowerError):
            refused.append(c.id)
    assert len(CASES) - len(refused) >= 904, refused


# Decompositions whose signs are a LAPACK build's choice (jacc.program.ON_HOST). A backend whose
# build follows another convention (here: U's and V's first row positive, R's diagonal positive)
# agrees with NumPy at some points and not at others; the program must still be right at both.
_DECOMPOSED = {
    "svd": lambda a: (lambda u, s, vt: (u * s) @ vt + u @ vt)(*np.linalg.svd(a, full_matrices=False)),
    "qr": lambda a: (lambda q, r: q @ r + q ** 2)(*np.linalg.qr(a)),
    "eigh": lambda a: (lambda w, v: (v * w) @ v.T + v ** 2)(*np.linalg.eigh(a @ a.T)),
}


def _another_convention(xp, kind: str, original):
    def call(a, *args, **kwargs):
        out = tuple(original(a, *args, **kwargs))
        if kind == "qr":
            q, r = out
            k = r.shape[-2]
            d = xp.where(r[..., list(range(k)), list(range(k))] < 0, -1.0, 1.0)
            return q * d[..., None, :], r * d[..., :, None]
        if kind == "svd":
            u, s, vt = out
            d = xp.where(u[..., 0, :] < 0, -1.0, 1.0)
            return u * d[..., None, :], s, vt * d[..., :, None]
        w, v = out
        return w, v * xp.where(v[..., 0, :] < 0, -1.0, 1.0)[..., None, :]
    return call


def _agrees(kind: str, a) -> bool:
    """Whether NumPy's factors of ``a`` already follow the other convention."""
    got = tuple(_another_convention(np, kind, {"svd": lambda m: np.linalg.svd(m, full_matrices=False),
                                               "qr": np.linalg.qr, "eigh": np.linalg.eigh}[kind])(
        a @ a.T if kind == "eigh" else a))
    want = np.linalg.svd(a, full_matrices=False) if kind == "svd" else (
        np.linalg.qr(a) if kind == "qr" else np.linalg.eigh(a @ a.T))
    return all(np.array_equal(x, y) for x, y in zip(got, want))


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("kind", sorted(_DECOMPOSED))
def test_decompositions_are_right_on_a_backend_that_signs_factors_otherwise(backend, kind, monkeypatch):
    lib = pytest.importorskip(backend)
    xp = importlib.import_module("jax.numpy") if backend == "jax" else lib
    monkeypatch.setattr(xp.linalg, kind, _another_convention(xp, kind, getattr(xp.linalg, kind)))
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)  # the backend's program, not scalar code
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    rng = np.random.default_rng(1)
    points = [rng.standard_normal((4, 3)) for _ in range(200)]
    same = next(a for a in points if _agrees(kind, a))  # the lowering check passes here ...
    other = next(a for a in points if not _agrees(kind, a))  # ... and the conventions differ here
    f = _DECOMPOSED[kind]
    for retrace in (True, False):
        jf = jacc.jacobian(f, backend=backend, retrace=retrace)
        for a in (same, other, same):
            np.testing.assert_allclose(jf(a), jacc.jacobian(f, backend="interpret")(a), rtol=1e-9, atol=1e-11,
                                       err_msg=f"retrace={retrace}")
            assert jf.ran == backend


@pytest.mark.parametrize("rows, n, fold", [
    (np.tile([4, 1, 7], 5), 9, (5, 1, [4, 1, 7])),  # a broadcast over leading axes, transposed
    (np.repeat([2, 0], 3), 4, (1, 3, [2, 0])),  # over trailing axes
    (np.array([3, 9, 15, 0]), 18, (1, 1, [3, 9, 15, 0])),  # nothing repeats: a plain write
    (np.array([-1, 3, 3]), 4, (3, 1, [3])),  # -1 is row 3 too
    (np.array([0, 1, 1, 2]), 3, None),  # any other pattern stays a scatter-add
])
def test_scatter_adds_of_tiled_or_repeated_rows_are_sums_then_one_write(rows, n, fold):
    from jacc.program import _fold_of, put_summed_rows
    from jacc.structure import put_rows

    found = _fold_of(rows, n)
    assert (found is None) if fold is None else (found[:2] == fold[:2] and found[2].tolist() == fold[2])
    if found is not None:
        v = np.random.default_rng(3).normal(size=(rows.size, 2))
        np.testing.assert_allclose(put_summed_rows(v, n, found[2], *found[:2]), put_rows(v, n, rows, add=True),
                                   rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("strategy", ["forward", "markowitz"])
def test_a_broadcast_parameters_gradient_runs_without_a_scatter_add(strategy):
    def f(theta):  # theta[:3] broadcast over rows, theta[3:] over columns
        rows = np.broadcast_to(theta[:3], (5, 3)) * np.arange(15.0).reshape(5, 3)
        cols = np.broadcast_to(theta[3:, None], (3, 5)) * np.arange(15.0).reshape(3, 5)
        return np.sum(rows, axis=0) + np.sum(cols, axis=1) ** 2

    x = np.linspace(0.1, 0.9, 6)
    jf = jacc.jacobian(f, strategy=strategy, backend="numpy")
    got = jf(x)
    assert "add=True" not in jf.program.source and jf.program.mults == jf.plan.mults
    assert "put_summed_rows" in {getattr(v, "__name__", "") for v in jf.program.fn.__globals__.values()}
    np.testing.assert_allclose(got, jacc.jacobian(f, strategy=strategy, backend="interpret")(x), rtol=1e-13)


def test_the_first_run_takes_the_lowering_checks_blocks_only_on_the_same_arguments(monkeypatch):
    g, values = _traced("roeflux")
    p = jacc.plan(g, "reverse")
    ran = []
    prog = lower(p, values, keep=True)
    real = prog.fn
    prog.fn = lambda V: (ran.append(1), real(V))[1]
    other = dict(values)
    other[g.inputs[0]] = values[g.inputs[0]].copy()  # equal values, another object: runs
    for k, b in prog.run(other, g, first=True).items():
        _close(b, accumulate(p.problem, values, p.order).blocks[k])
    assert len(ran) == 1 and prog.checked is None  # (and any run drops what was kept)
    prog = lower(p, values, keep=True)
    prog.fn = lambda V: (ran.append(1), real(V))[1]
    first = prog.run(values, g, first=True)  # the same objects, right after lowering: no run
    assert len(ran) == 1
    again = prog.run(values, g)
    assert len(ran) == 2 and all(np.array_equal(first[k], again[k]) and first[k] is not again[k] for k in first)
    assert lower(p, values).checked is None  # not kept unless asked


def test_a_jacobians_first_call_runs_its_program_once_and_later_calls_see_new_values(monkeypatch):
    f = lambda x: np.tanh(x[:-1] * x[1:]) @ np.cos(x)[1:]  # noqa: E731
    x = np.linspace(0.1, 1.0, 5000)
    calls = []
    real = jacc.program.Program.run
    monkeypatch.setattr(jacc.program.Program, "run",
                        lambda self, *a, **k: (calls.append(self.checked is not None), real(self, *a, **k))[1])
    jf = jacc.jacobian(f, strategy="reverse")
    _close(jf(x), jacc.jacobian(f, strategy="reverse", compile=False)(x))
    assert calls == [True]  # the check's blocks served the first call
    x[:] = np.linspace(-1.0, 0.5, 5000)  # in place: the same object, other values
    _close(jf(x), jacc.jacobian(f, strategy="reverse", compile=False)(x))
    assert calls[1:] == [False]


def test_a_small_value_two_rules_need_is_computed_once():
    # np.sign(x) for three norms' partials: held weakly, it was dropped and recomputed (jacc.lazy.SMALL_VALUE)
    def norms(x):
        return np.stack([np.linalg.norm(x, 1), np.linalg.norm(x, np.inf), np.linalg.norm(x, 3)])
    x = np.random.default_rng(2).normal(size=50)
    jf = jacc.jacobian(norms, backend="numpy")
    _close(jf(x), jacc.jacobian(norms, backend="interpret")(x))
    calls = [line.split(" = ", 1)[1] for line in jf.program.source.splitlines() if " = f" in line]
    assert calls and len(calls) == len(set(calls))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("f, at", [
    (lambda x: np.clip(x, -0.5, 0.5) * x, [np.inf, 0.5, -0.3]),  # 0·∞ where the clip is flat
    (lambda x: np.max(x) * x, [np.nan, 0.5, -0.3]),  # the maximum's ties at a NaN: 0/0
    (lambda x: np.where(x > 0, x, 0.0) * x, [-np.inf, 0.5, 2.0]),
])
def test_jax_programs_keep_numpys_nans_at_non_finite_points(f, at, monkeypatch):
    # XLA rewrites y·convert(mask) as select(mask, y, 0): 0 where NumPy's 0·∞ is NaN
    pytest.importorskip("jax")
    monkeypatch.setattr(unroll, "MAX_ELEMENTS", 0)  # the array program, not the scalar route
    monkeypatch.setattr(unroll, "MAX_SHORT_OPS", 0)
    want = jacc.jacobian(f, backend="interpret", nonfinite="propagate")(np.array(at))
    jf = jacc.jacobian(f, backend="jax", nonfinite="propagate")
    for _ in range(3):
        jf(np.array([0.31, -0.72, 1.13]))  # lowered at a finite point
    got = jf(np.array(at))
    assert jf.ran == "jax"
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_float32_programs_are_checked_at_float32_precision(backend):
    # the lowering check compared float32 blocks at float64's tolerance: a solver's rounding made
    # the program "disagree" and the executor ran instead
    if backend == "jax":
        pytest.importorskip("jax")
    A = (np.random.default_rng(0).standard_normal((3, 3)) + 3 * np.eye(3)).astype(np.float32)
    jf = jacc.jacobian(lambda A: np.linalg.inv(A) @ np.linalg.inv(A.T), backend=backend, dtype=np.float32)
    got = jf(A)
    assert jf.ran == backend and got.dtype == np.float32
    want = jacc.jacobian(lambda A: np.linalg.inv(A) @ np.linalg.inv(A.T), dtype=np.float64)(A.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("f, backend", [
    (lambda x: np.abs(np.linalg.eigh((lambda A: A @ A.T + 3 * np.eye(3))(x.reshape(3, 3)))[1]), "numpy"),
    (lambda x: np.max(x.reshape(3, 3), axis=0), "numpy"),
])
def test_compile_lowers_at_a_point_without_ties(f, backend):
    # at 0.5 everywhere a maximum is all ties and A·Aᵀ + 3I has a repeated eigenvalue: the check
    # refused the program there ("disagrees"), though jacobian(strategy=p) ran it
    x = np.random.default_rng(0).standard_normal(9)
    p = jacc.plan(trace(f, x), "reverse")
    run = p.compile(backend)
    assert "def program" in run.program.source
    for k, b in p.execute(x).items():
        _close(run(x)[k], b)


def test_a_program_giving_float64_blocks_for_float32_ones_is_not_used():
    # np.mean(..., where=) divides by a count: the program computed float64 blocks, which passed
    # the check at float64's tolerance at some points and came back as float64 for a float32 Jacobian
    def f(x):
        return np.mean(x ** 2, where=x > 0) if (x > 0).any() else 0.0 * x.sum()

    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal(8).astype(np.float32)
        jf = jacc.jacobian(f, backend="numpy", dtype=np.float32)
        for _ in range(3):
            got = jf(x)
            assert got.dtype == np.float32
        np.testing.assert_allclose(got, jacc.jacobian(f, backend="interpret", dtype=np.float32)(x), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_a_singular_matrix_raises_as_numpy_does_on_every_backend(backend):
    """XLA's inverse of a singular matrix is inf (jax returned inf and NaN blocks once f was
    skipped, and on a traced call for slogdet); torch raised its own LinAlgError class."""
    if backend != "numpy":
        pytest.importorskip(backend)
    from conftest import assert_later_calls_raise

    good = np.array([[2.0, 1.0, 0.3], [1.0, 3.0, 0.2], [0.3, 0.2, 1.5]])
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 0.1, 1.0]])
    for f in (np.linalg.inv, lambda a: np.linalg.solve(a, np.ones(3)), lambda a: np.linalg.slogdet(a)[1]):
        assert_later_calls_raise(f, good, singular, np.linalg.LinAlgError, "[Ss]ingular", backends=(backend,))
        if backend == "jax":  # jax.Array arguments: blocks left on the device, checked there
            import jax.numpy as jnp

            jf = jacc.jacobian(f, backend="jax")
            for _ in range(3):
                jf(jnp.asarray(good))
            with pytest.raises(np.linalg.LinAlgError):
                jf(jnp.asarray(singular))
        compiled = jacc.plan(jacc.trace(f, good), "reverse").compile(backend)  # Plan.compile too
        compiled(good)
        with pytest.raises(np.linalg.LinAlgError):
            compiled(singular)


def test_a_zero_on_a_triangular_diagonal_raises_under_jax():
    pytest.importorskip("jax")
    sl = pytest.importorskip("scipy.linalg")
    from conftest import assert_later_calls_raise

    good, bad = np.array([[2.0, 0.0], [1.0, 3.0]]), np.array([[2.0, 0.0], [1.0, 0.0]])
    assert_later_calls_raise(lambda a: sl.solve_triangular(a, np.ones(2), lower=True), good, bad,
                             np.linalg.LinAlgError, "[Ss]ingular", backends=("jax", "numpy"))


@pytest.mark.parametrize("f, x", [(lambda x: np.cumprod(x), np.linspace(0.9, 1.1, 300)),
                                  (lambda x: np.cumsum(x ** 2), np.linspace(-1.0, 1.0, 800))])
def test_a_sum_of_many_terms_holds_one_term_at_a_time(f, x):
    """A scan's Jacobian under Markowitz is a sum of many placed terms: each is added as soon as it
    is made (program._sums_early), so a call holds about the plan's peak, not every term (8× and
    6× the peak before)."""
    from conftest import peak_memory

    jf = jacc.jacobian(f, strategy="markowitz", backend="numpy", retrace=False)
    jf(x)
    jf(x + 0.01)
    J, held = peak_memory(lambda: jf(x + 0.02))
    np.testing.assert_allclose(J, jacc.jacobian(f, strategy="reverse", backend="interpret")(x + 0.02), rtol=1e-12)
    assert held < 2.5 * jf.plan.peak_bytes, (held, jf.plan.peak_bytes)


def test_plan_compile_takes_every_backend_name_jacobian_takes():
    # docs/execution.md: jacobian(backend=…), Plan.compile(backend) and jacc run --backend take
    # the same names; "interpret" was refused, by an error naming only numpy, jax and torch
    p = jacc.plan(examples.lecture_f(), "reverse")
    want = p.execute(2.0, 5.0)
    run = p.compile("interpret")
    assert run.program is None and run(2.0, 5.0).keys() == want.keys()
    for k in want:
        assert float(run(2.0, 5.0)[k]) == float(want[k])
    with pytest.raises(BackendError, match="choose one of auto, scalar, c, numpy, jax, torch, interpret"):
        p.compile("fortran")
    with pytest.raises(TypeError, match=r"plan has no input 'x3'; its inputs are \['x1', 'x2'\]"):
        p.execute(x1=2.0, x3=5.0)  # (the misspelt name, not the missing 'x2')


def test_a_mask_read_by_several_rules_is_converted_once_per_dtype():
    # (each rule reading the mask asked for its astype; a 10⁴-entry mask's conversion was held
    # weakly, dropped, and converted again: six conversions a call where three differ)
    import re

    def f(x):
        y = x.copy()
        m = x > 0.5
        y[m] = x[m] ** 2
        return np.sum(y ** 2)

    jf = jacc.jacobian(f)
    x = np.random.default_rng(0).random(10_000)
    for _ in range(3):
        J = jf(x)
    np.testing.assert_allclose(J, 2 * np.where(x > 0.5, x ** 2, x) * np.where(x > 0.5, 2 * x, 1.0))
    conversions = re.findall(r"= (a\d+)\.astype\((\w+)\)", jf.program.source)
    assert conversions and len(conversions) == len(set(conversions)), conversions
