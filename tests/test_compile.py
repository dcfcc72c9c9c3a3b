"""Compiled plans on scalar graphs: same numbers and the same multiplication count."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jacc
from jacc import examples, suite
from jacc.compile import CompileError


def _scalar_trace(name):
    p = suite.get(name, "small")
    inp = p.make_inputs(0)
    names = list(inp)
    g = jacc.trace(lambda *a: p.fn(**dict(zip(names, a)), xp=np), *[inp[n] for n in names], scalarize=True)
    return g, [float(v) for n in names for v in np.atleast_1d(inp[n])]


@pytest.mark.parametrize("name", ["roeflux", "heart", "lion", "lecture_f"])
@pytest.mark.parametrize("strategy", ["forward", "reverse", "markowitz", "window"])
def test_compiled_plan_matches_executor(name, strategy):
    g, xs = _scalar_trace(name)
    p = jacc.plan(g, strategy, **({"time_limit": 0.5} if strategy == "window" else {}))
    f = p.compile()
    assert f.mults == p.mults  # one generated multiplication per counted one
    assert f.source.count(" * ") == p.mults
    got, ref = f(*xs), p.execute(*xs)
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == pytest.approx(float(ref[k]), rel=1e-12, abs=1e-14)


def test_compiled_plan_falls_back_for_domain_errors():
    p = jacc.plan(examples.lecture_f(), "reverse")
    f = p.compile()
    out = f(-1.0, 5.0)  # log(-1): math refuses, NumPy gives NaN
    assert np.isnan(out["v5", "x1"]) or out["v5", "x1"] == pytest.approx(-1.0 + 5.0)
    assert out["v5", "x2"] == pytest.approx(-1.0 - np.cos(5.0))


def test_array_graphs_are_refused_clearly():
    with pytest.raises(CompileError, match="scalars"):
        jacc.plan(examples.single_layer(), "reverse").compile("scalar")


def test_jacobian_runs_scalar_plans_compiled():
    f = lambda a, b: np.exp(a) * np.cos(b) / b + a ** 3.0  # noqa: E731
    fast = jacc.jacobian(f, argnums=(0, 1))
    slow = jacc.jacobian(f, argnums=(0, 1), compile=False)
    for a, b in [(0.3, 1.2), (-1.0, 2.5), (2.0, -0.7)]:
        got, ref = fast(a, b), slow(a, b)
        assert fast.last is None and slow.last is not None
        for g, r in zip(got, ref):
            assert g.dtype == np.float64 and g.shape == ()
            assert float(g) == pytest.approx(float(r), rel=1e-12)
    # math refuses log(-1); the executor's NaN semantics are kept
    h = jacc.jacobian(lambda x1, x2: np.log(x1) + x1 * x2, argnums=(0, 1), nonfinite="propagate")
    d1, d2 = h(-1.0, 5.0)
    assert float(d1) == pytest.approx(4.0) and float(d2) == pytest.approx(-1.0)


def _bits(v):
    return np.float64(v).tobytes()


def test_signs_are_carried_into_the_sums_not_computed():
    # −(sin x · y) − cos(y) · x − x · y: every −1 edge folds into a subtraction; the code
    # assigns no bare negation, and its numbers are the executor's bit for bit (signed zeros too)
    g = jacc.trace(lambda x, y: -(np.sin(x) * y) - np.cos(y) * x - x * y, 0.3, 1.2)
    for strategy in ("forward", "reverse", "markowitz"):
        p = jacc.plan(g, strategy)
        f = p.compile()
        assert f.source.count(" * ") == p.mults
        body = [line.split(" = ", 1)[1] for line in f.source.splitlines()[1:-1]]
        assert not [e for e in body if e.startswith("-") and e[1:].isidentifier()], f.source
        for xs in [(0.3, 1.2), (0.0, 0.0), (-0.0, 2.0), (1.5, -0.0)]:
            got, ref = f(*xs), p.execute(*xs)
            assert {k: _bits(v) for k, v in got.items()} == {k: _bits(v) for k, v in ref.items()}


def test_the_code_computes_only_what_the_jacobian_reads():
    # the lecture's f = log(x1) + x1·x2 − sin(x2): ∂f needs 1/x1 and cos(x2), not log(x1) or f
    g = examples.lecture_f()
    f = jacc.plan(g, "reverse").compile()
    assert f.source.count("F_") == 1  # sin(x2), whose partial reads it; no log, no sum
    assert len(f.source.splitlines()) == 1 + 5 + 1  # def, sin, 1/x1, cos, two sums, return
    assert f(2.0, 5.0)[g.outputs[0], "x1"] == pytest.approx(0.5 + 5.0)


def test_flat_constants_and_subsets_of_the_generated_code():
    from jacc.compile import flat, flat_constants, flat_subset

    g = jacc.trace(lambda x: np.sin(x) * 2.0 + x[::-1], np.arange(1.0, 4.0), scalarize=True)
    f = jacc.plan(g, "forward").compile()
    full = flat(f)(1.0, 2.0, 3.0)
    consts = flat_constants(f)
    # ∂(sin xᵢ · 2 + x₂₋ᵢ)/∂xⱼ: off the two diagonals 0, the middle anti-diagonal entry 1 + 2cos
    assert [c for c in consts if c is not None] == [full[i] for i, c in enumerate(consts) if c is not None]
    assert consts.count(0.0) == 4 and consts[4] is None
    keep = [i for i, c in enumerate(consts) if c is None]
    assert flat_subset(f, keep)(1.0, 2.0, 3.0) == tuple(full[i] for i in keep)


@settings(max_examples=60, deadline=None, derandomize=True)  # the same graphs every run
@given(seed=st.integers(0, 10 ** 6), n_in=st.integers(1, 3), n_inner=st.integers(1, 14), n_out=st.integers(1, 3),
       order_seed=st.integers(0, 10 ** 6))
def test_compiled_random_graphs_equal_the_executor_bit_for_bit(seed, n_in, n_inner, n_out, order_seed):
    # random scalar DAGs (sub gives −1 edges, add +1) under a random elimination order: the code
    # with carried signs and only the live statements computes the executor's numbers exactly and
    # performs the plan's multiplications
    g = examples.random_graph(n_in, n_inner, n_out, seed=seed)
    order = list(jacc.plan(g, "forward").order)  # every eliminable vertex, then a random order of them
    np.random.default_rng(order_seed).shuffle(order)
    p = jacc.plan(g, order)
    f = p.compile()
    assert f.source.count(" * ") == p.mults == f.mults
    xs = np.random.default_rng(seed + 1).uniform(-1.5, 1.5, n_in).tolist()
    # math.exp and np.exp may differ by an ulp; exp(exp(exp(x))) makes that ulp 32 at 2·10¹⁵, where
    # sin and cos of the two values have nothing in common: such graphs test the libraries, not jacc
    values = g.evaluate(dict(zip(g.inputs, map(np.float64, xs))))
    assume(all(abs(float(v)) < 1e6 for v in values.values() if np.isfinite(v)))
    got, ref = f(*xs), p.execute(*xs)
    assert got.keys() == ref.keys()
    # Bit for bit, except where the scalar code's math.tanh/exp/sin and NumPy's vectorised ones
    # differ by an ulp: a partial such as tanh's 1 − y² near |y| = 1 turns that ulp into a large
    # relative difference, so the tolerance is absolute, on the scale of the Jacobian's entries.
    scale = max([1.0] + [abs(float(v)) for v in ref.values()])
    for k in ref:
        assert np.float64(got[k]).tobytes() == np.float64(ref[k]).tobytes() or got[k] == pytest.approx(
            float(ref[k]), rel=1e-12, abs=1e-14 * scale), k


def test_plans_run_silently_at_infinities_on_every_route():
    """The lecture's graph at x1 = inf, x2 = -inf: cos(-inf) is NaN. The array program was silent,
    the executor (Plan.execute) and the scalar code (whose math.cos raises, so it falls back on the
    executor) warned; `jacc run --at x1=inf,...` printed NumPy's RuntimeWarning."""
    import warnings

    p = jacc.plan(examples.lecture_f(), "forward")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = [p.execute(np.inf, -np.inf)] + [p.compile(b)(np.inf, -np.inf) for b in ("scalar", "numpy")]
    for got in runs:  # ∂f/∂x1 = 1/x1 + x2 = -inf, ∂f/∂x2 = x1 - cos(x2) = inf - NaN
        np.testing.assert_array_equal([got[k] for k in sorted(got)], [-np.inf, np.nan])


@pytest.mark.parametrize("backend", ["scalar", "c"])
def test_compiled_scalar_plans_name_their_inputs_on_a_wrong_call(backend):
    from jacc import ccode

    if backend == "c" and ccode.compiler() is None:
        pytest.skip("no C compiler on this machine")
    g = jacc.trace(lambda x: np.stack([x[0] * np.sin(x[1]), x[0] ** 2]), np.array([2.0, 0.5]), scalarize=True)
    fn = jacc.plan(g, "reverse").compile(backend)
    for args in ((2.0,), (2.0, 0.5, 1.0)):
        with pytest.raises(TypeError, match=rf"plan takes 2 inputs \['x\[0\]', 'x\[1\]'\], got {len(args)}"):
            fn(*args)
    with pytest.raises(TypeError, match=r"input 'x\[1\]' must be a real number, not str"):
        fn(2.0, "0.5")
    got = fn(2, np.float64(0.5))  # (numbers of any kind)
    want = jacc.plan(g, "reverse").execute(2.0, 0.5)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(float(want[k]), rel=1e-15)
