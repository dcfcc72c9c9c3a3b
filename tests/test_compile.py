"""Compiled plans on scalar graphs: same numbers and the same multiplication count."""

import numpy as np
import pytest

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
