"""``jacc.bench``: plan quality, correctness flags, output formats and baseline skip reasons.

Runs without jax/torch/matplotlib: the baselines' absence is simulated by blocking their import.
"""

import csv
import io
import json
import sys

import numpy as np
import pytest

import jacc
from jacc import STRATEGIES, bench, suite, trace
from jacc.eliminate import Problem

SMALL = ["lion", "lecture_f", "propane", "roeflux"]


@pytest.fixture(scope="module")
def result():
    return bench.run(SMALL, size="small", budget=1.5, progress=False)


def _row(res, name):
    return next(r for r in res.rows if r["problem"] == name)


def test_every_problem_and_strategy_is_reported(result):
    assert [r["problem"] for r in result.rows] == SMALL
    for r in result.rows:
        ran = set(r["mults"]) | set(r["skipped"])
        assert ran == set(STRATEGIES), (r["problem"], set(STRATEGIES) - ran)
        assert not r["errors"], r["errors"]


def test_every_strategy_matches_finite_differences(result):
    for r in result.rows:
        assert r["correct"] is True, r["checks"]
        assert set(r["checks"]) == set(r["mults"])
        for s, c in r["checks"].items():
            assert c["ok"] is True, (r["problem"], s, c)
            assert c["max_abs_diff"] <= c["tol"]


def test_best_never_worse_than_forward_reverse_markowitz(result):
    for r in result.rows:
        ref = min(r["mults"][s] for s in ("forward", "reverse", "markowitz"))
        assert r["baseline_mults"] == ref
        assert r["best_mults"] <= ref
        assert r["improvement_pct"] == (pytest.approx(100 * (ref - r["best_mults"]) / ref) if ref else 0.0)
        assert r["best_mults"] == min(r["mults"].values())


def test_the_exact_search_reports_a_proven_lower_bound(result):
    for r in result.rows:
        lb, best = r["lower_bound"], r["best_mults"]
        assert lb is not None and lb <= best  # every problem: at least the search's root bound
        assert r["optimal"] == (lb == best)
    r = _row(result, "roeflux")
    assert r["eliminable"] > 30 and not r["skipped"]
    assert "| bound " in result.format("table") or " bound " in result.format("table")


def test_alphagrad_reference_shown_next_to_ours(result):
    assert _row(result, "roeflux")["alphagrad_pct"] == 12.0
    assert _row(result, "propane")["alphagrad_pct"] == 2.0
    assert _row(result, "lion")["alphagrad_pct"] is None
    assert "AlphaGrad %" in result.format("table")


def test_lion_at_scalar_level_reports_12_for_optimal():
    res = bench.run(["lion"], ["forward", "reverse", "markowitz", "optimal"], level="scalar", progress=False)
    r = res.rows[0]
    assert r["level"] == "scalar" and r["mults"]["optimal"] == 12 and r["optimal"] is True
    assert r["correct"] is True
    assert "| lion " in res.format("table") and "scalar" in res.format("table")


def test_scalar_level_traces_linalg_and_falls_back_with_a_note_for_large_graphs():
    res = bench.run(["inv_apply", "gp_nll"], ["forward", "reverse", "markowitz"], level="scalar", progress=False)
    inv, gp = res.rows
    # np.linalg.inv as Gaussian elimination (jacc.scalar_linalg): its pivots were read from values
    assert inv["level"] == "scalar" and inv["correct"] is True and "pivot choice" in inv["notes"][0]
    assert gp["level"] == "array" and "(> 2,000); traced at array level" in gp["notes"][0] and gp["correct"] is True


def test_lion_reports_12_for_optimal(result):
    r = _row(result, "lion")
    assert r["mults"]["optimal"] == 12  # angel/OpenAD's optimum, on the traced vector code
    assert r["optimal"] is True  # and the exact search proved it


def test_json_parses(result):
    d = json.loads(result.format("json"))
    assert [r["problem"] for r in d["rows"]] == SMALL
    assert d["meta"]["size"] == "small" and "numpy" in d["meta"]["versions"]
    assert d["rows"][0]["mults"]["forward"] == result.rows[0]["mults"]["forward"]


def test_csv_has_header_and_one_line_per_problem(result):
    text = result.format("csv")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:2] == ["problem", "size"]
    assert "mults.forward" in header and "improvement_pct" in header
    assert len(rows) == 1 + len(SMALL)
    assert [r[0] for r in rows[1:]] == SMALL


def test_table_has_a_row_per_problem(result):
    t = result.format("table")
    for p in SMALL:
        assert f"| {p} " in t
    assert "Execution" not in t  # no baselines requested
    with pytest.raises(ValueError, match="format"):
        result.format("xml")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown problem"):
        bench.run(["nope"], progress=False)
    with pytest.raises(ValueError, match="valid strategies"):
        bench.run(["lion"], ["fastest"], progress=False)
    with pytest.raises(ValueError, match="level"):
        bench.run(["lion"], level="vector", progress=False)


@pytest.fixture
def no_baselines(monkeypatch):
    for mod in ("jax", "jax.numpy", "torch", "torch.func"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` raise ImportError


def test_baselines_missing_are_skipped_with_the_reason(no_baselines):
    res = bench.run(["lecture_f"], ["forward", "reverse", "markowitz"], baselines=True, repeats=1,
                    progress=False)
    ex = res.rows[0]["execution"]
    assert ex["jacc"]["seconds"] > 0
    for key in bench.BASELINES:
        assert key in ex and "seconds" not in ex[key]
        assert ex[key]["skipped"].startswith(("jax not installed: pip install 'jacc[bench]'",
                                              "torch not installed: pip install 'jacc[bench]'"))
    assert ex["jax_fwd"]["skipped"].startswith("jax not installed")
    assert ex["torch_rev"]["skipped"].startswith("torch not installed")
    t = res.format("table")
    assert "jax fwd, jax rev skipped — jax not installed: pip install 'jacc[bench]'" in t
    assert "torch fwd, torch rev skipped — torch not installed" in t
    assert "Execution" in t
    assert "jax not installed" in res.meta["versions"]["jax"]


def test_memory_guard_names_its_reason():
    why = bench._memory_skip("fwd", 20000, 40000)
    assert "tangents" in why and "GB" in why
    assert bench._memory_skip("rev", 1, 40000) is None


def test_plot_without_matplotlib_says_how_to_install(result, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(RuntimeError, match="pip install matplotlib"):
        result.plot(tmp_path / "b.svg")


def test_plot_writes_svg(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.svg"
    result.plot(path)
    assert path.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_repeats_are_set_by_a_call_after_the_warm_up(monkeypatch):
    # a slow first call (a compile) must not cut the repeats of a fast function: every column,
    # jacc's and the baselines', is timed over as many calls as its steady state allows
    monkeypatch.setattr(bench, "MIN_TOTAL", 0.05)
    calls = []

    def fn():
        calls.append(None)
        if len(calls) == 1:
            import time
            time.sleep(0.2)
        return len(calls)

    med, n, warm, out = bench._median_time(fn, 5)
    assert warm >= 0.2 and med < 0.01
    assert n > 5 and len(calls) == n + 2 and out == n + 2


def test_columns_timed_in_turns_alternate_and_resolve_to_their_medians(monkeypatch):
    """Under a problem's _Turns each column is warmed up at once and its repeats wait: the rounds
    then alternate between the columns (each column's calls split evenly), so a machine whose speed
    drifts slows them all alike; medians and quotients are filled in by _resolved."""
    monkeypatch.setattr(bench, "MIN_TOTAL", 0.0)
    calls = []
    turns = bench._TURNS[0] = bench._Turns()
    try:
        a = bench._median_time(lambda: calls.append("a"), 10)
        b = bench._median_time(lambda: calls.append("b"), 20)
    finally:
        bench._TURNS[0] = None
    assert calls == ["a", "a", "b", "b"] and isinstance(a[0], bench._Timing) and a[1] == 10 and b[1] == 20
    ex = {"a": {"seconds": a[0]}, "b": {"seconds": b[0], "ratio": bench._over(b[0], a[0])}, "n": 3}
    turns.run(5)
    timed = calls[4:]
    assert timed.count("a") == 10 and timed.count("b") == 20
    assert timed[:6] == ["a", "a", "b", "b", "b", "b"] and timed[-6:] == ["a", "a", "b", "b", "b", "b"]
    bench._resolved(ex)
    assert type(ex["a"]["seconds"]) is float and ex["n"] == 3
    assert ex["b"]["ratio"] == pytest.approx(ex["b"]["seconds"] / ex["a"]["seconds"])
    assert not turns.columns  # (what the columns held is let go)


def test_a_column_whose_timed_calls_raise_reports_the_error_and_the_others_go_on(monkeypatch):
    """A column that raises only in its turns (the device runs out of memory at a later call) is
    reported as {"error": …}, as one raising at its first call; the ratios of its time are dropped
    and the other columns keep theirs (found by hunt BU: the whole run died)."""
    monkeypatch.setattr(bench, "MIN_TOTAL", 0.0)
    calls = []

    def flaky():
        calls.append(None)
        if len(calls) > 4:
            raise MemoryError("out of device memory")

    turns = bench._TURNS[0] = bench._Turns()
    try:
        good = bench._median_time(lambda: None, 10)[0]
        bad = bench._median_time(flaky, 10)[0]
    finally:
        bench._TURNS[0] = None
    ex = {"jacc": {"seconds": good, "ran": bench._Late(lambda: "numpy")},
          "jax_rev": {"seconds": bad, "repeats": 10, "ratio": bench._over(bad, good)},
          "torch_rev": {"seconds": good, "ratio": bench._over(good, bad)}}
    turns.run(5)
    bench._resolved(ex)
    assert ex["jax_rev"] == {"error": "MemoryError: out of device memory"}
    assert ex["torch_rev"].keys() == {"seconds"} and ex["jacc"]["ran"] == "numpy"
    assert len(calls) == 5  # (no call after the first that raised)
    calls.clear()  # timed at once (no turns), the error reaches the caller, as before turns
    with pytest.raises(MemoryError, match="out of device memory"):
        bench._median_time(flaky, 10)


def test_fd_jacobian_matches_closed_form():
    p = suite.get("lecture_f")
    fd = bench.fd_jacobian(p, p.make_inputs(0))
    assert fd["x1"] == pytest.approx(1 / 2 + 5, rel=1e-8)
    assert fd["x2"] == pytest.approx(2 - np.cos(5.0), rel=1e-8)


@pytest.mark.parametrize("name", suite.names())
def test_torch_namespace_and_constant_rebinding(name):
    """Every suite function runs on the torch baseline's namespace (its baselines cannot fail)."""
    torch = pytest.importorskip("torch")
    p = suite.get(name)
    inputs = p.make_inputs(0)
    fn = bench.rebind_constants(p.fn, lambda a: torch.as_tensor(a, dtype=torch.float64))
    got = fn(**{k: torch.as_tensor(v, dtype=torch.float64) for k, v in inputs.items()}, xp=bench.TorchNamespace(torch))
    np.testing.assert_allclose(np.asarray(got), p.fn(**inputs, xp=np), rtol=1e-10, atol=1e-12)


def test_out_checkpoint_is_json(tmp_path):
    path = tmp_path / "bench.json"
    bench.run(["lecture_f"], ["forward"], out=path, progress=False)
    assert json.loads(path.read_text())["rows"][0]["problem"] == "lecture_f"


def test_compiled_plan_is_timed_on_scalar_graphs(no_baselines):
    res = bench.run(["lecture_f"], ["forward", "reverse", "markowitz"], level="scalar", baselines=True,
                    repeats=1, progress=False)
    comp = res.rows[0]["execution"]["jacc_compiled"]
    assert comp["seconds"] > 0 and comp["max_diff_vs_execute"] < 1e-12
    assert "compiled s" in res.format("table")


def test_a_whole_traced_once_call_is_timed_against_the_compiled_plan(no_baselines):
    res = bench.run(["lecture_f"], ["reverse"], baselines=True, repeats=1, progress=False)
    call = res.rows[0]["execution"]["scalar_call"]
    assert call["seconds"] > 0 and call["compiled_seconds"] > 0
    assert call["ratio"] == pytest.approx(call["seconds"] / call["compiled_seconds"])
    assert "retrace=False)(x1, …) call with Python floats" in res.format("table")


def test_the_main_column_says_when_the_executor_stands_in_for_jacobian(no_baselines):
    # --backends with neither auto nor numpy: the "jacobian s" column held the executor's time, unmarked
    res = bench.run(["lecture_f"], ["reverse"], baselines=True, repeats=1, progress=False, backends=("c-once",))
    row = next(line for line in res.format("table").splitlines() if line.startswith("| lecture_f") and "skip" in line)
    assert "(executor)" in row
    res = bench.run(["lecture_f"], ["reverse"], baselines=True, repeats=1, progress=False, backends=("auto",))
    row = next(line for line in res.format("table").splitlines() if line.startswith("| lecture_f") and "skip" in line)
    assert "(executor)" not in row


def test_planning_bench_reports_the_batch_searched_once_per_class_of_copies():
    from jacc import perf

    lines: list[str] = []
    fig = perf.bench_batch(lines.append, "small")
    assert (fig["groups"], fig["classes"], fig["eliminable"]) == (8, 1, 352)
    assert fig["markowitz"]["mults"] == 704 and fig["anneal"]["mults"] == 664 <= fig["window"]["mults"] <= 704
    assert "8 independent groups, 1 up to relabelling" in lines[0] and lines[-1].startswith("  anneal: 664 mults")


def test_first_calls_are_set_beside_jitted_jaxs_faster_first_call():
    def row(name, mine, **base):
        ex = {"jacc_auto": {"seconds": 1e-5, "first_call_seconds": mine}}
        ex.update({k: {"seconds": 1e-5, "first_call_seconds": v} for k, v in base.items()})
        return {"problem": name, "execution": ex}
    res = bench.BenchResult([row("lion", 0.04, jax_fwd=0.09, jax_rev=0.06),
                             row("mlp", 1.0, jax_rev=0.22, torch_rev=0.01),  # (torch compiles nothing)
                             row("heart", 0.2, jax_fwd=0.3),
                             {"problem": "gp", "execution": {"jacc_auto": {"skipped": "level scalar"}}}],
                            baselines=True)
    res.rows[2]["execution"]["jax_rev"] = {"skipped": "no jax"}  # a skipped baseline has no first call
    (line,) = res.first_calls()
    assert "faster on 2 of 3 problems" in line
    assert "lion 0.04 s (0.06 s, jax rev)" in line and "mlp 1 s (0.22 s, jax rev)" in line
    assert "gp" not in line
    assert bench.BenchResult([], baselines=True).first_calls() == []


def test_jax_baselines_over_the_memory_limit_are_skipped_by_xlas_own_count(monkeypatch):
    """jax.jacfwd of the suite's matrix functions at N = 120 compiled to 5.0 GB of buffers where the
    graph's largest vertex estimated 1.7 GB, and `jacc bench --baselines` peaked at 16.7 GB; the
    compiled program's own memory analysis now decides, before it runs."""
    jax = pytest.importorskip("jax")
    from jacc import bench
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    f = jax.jit(jax.jacfwd(lambda X: jnp.sum(jnp.tanh(X @ X))))
    X = jnp.ones((40, 40))
    skip, compiling = bench._xla_memory_skip("fwd", f, [X])
    assert skip is None and compiling > 0  # about 61 MB of buffers: under 2 GB
    monkeypatch.setattr(bench, "BASELINE_MEMORY", 1e7)
    assert bench._xla_memory_skip("fwd", f, [X])[0] == \
        "skipped: XLA's buffers for jax.jacfwd need 0.1 GB (> 0 GB limit)"


def test_a_jax_baselines_first_call_counts_the_compile_its_memory_check_did(monkeypatch):
    """The memory check compiles the jitted baseline, so its first call finds the executable made:
    the first-call figure adds the check's tracing and compiling (the 5 Dec 03:40 run reported JAX's
    first calls at 0.4 ms and jacc faster on 3 of 17 problems, where the run before said 12)."""
    pytest.importorskip("jax")
    from jacc import bench
    p = suite.get("lecture_f", "small")
    inputs = p.make_inputs(0)
    names = list(inputs)
    monkeypatch.setattr(bench, "_xla_memory_skip", lambda kind, jitted, args: (None, 100.0))
    monkeypatch.setattr(bench, "_load_torch", lambda: (None, "not here"))
    f = lambda *a: p.fn(**dict(zip(names, a)))  # noqa: E731
    J = dict(zip(names, jacc.jacobian(f, argnums=tuple(range(len(names))))(*inputs.values())))
    res = bench._run_baselines(p, inputs, names, J, trace(f, *inputs.values()), 3, 1.0)
    for kind in ("jax_fwd", "jax_rev"):
        assert 100.0 < res[kind]["first_call_seconds"] < 110.0 and res[kind]["max_diff"] < 1e-12, res[kind]


def test_the_markowitz_reference_keeps_the_problems_budget(monkeypatch):
    # min(forward, reverse, Markowitz) is priced even when Markowitz is not among the strategies
    # run: within the per-problem budget (greedy pricing of an unrolled loop took minutes), and a
    # reference cut short says so
    from jacc import budget
    from jacc.strategies import greedy

    limits = []
    real = bench.make_plan

    def spy(g, strategy, **opts):
        if strategy == "markowitz":
            limits.append(opts.get("time_limit"))
        return real(g, strategy, **opts)

    def out_of_time(e, vertices, cost_model, score, needs_fill=False, order=None):
        order.append(vertices[0])  # one pick made, then the deadline
        raise budget.TimeUp()

    monkeypatch.setattr(bench, "make_plan", spy)
    monkeypatch.setattr(greedy, "run_greedy", out_of_time)
    res = bench.run(["lion"], strategies=["reverse"], budget=0.7, progress=False)
    row = _row(res, "lion")
    assert limits == [0.7]
    note = next(n for n in row["notes"] if n.startswith("markowitz (reference)"))
    assert "time limit reached after 1 of" in note
    # the one pick, then the rest in the cheaper naive mode (as greedy_order completes a cut search)
    lion = suite.get("lion", "small")
    g = bench.Traced(lion, {k: np.asarray(v, dtype=float) for k, v in lion.make_inputs(0).items()}, "array").graph
    problem = Problem.from_graph(g)
    first = problem.eliminable[0]
    left, _ = greedy.naive_rest(problem, [first])
    assert row["reference_mults"]["markowitz"] == jacc.plan(g, [first] + left).mults
