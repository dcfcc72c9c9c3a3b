"""``jacc.plan(..., elimination="edge"|"face")``: EdgePlan reports, execution, pictures and the CLI."""

import json
import os
import time

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc import examples, suite
from jacc.cli import main
from jacc.edgeplan import EdgePlan
from jacc.render import to_dot

GRAPHS = os.path.join(os.path.dirname(__file__), "..", "graphs")


def _lion_fd(x1, x2):
    def f(x):
        t1 = x[0] / x[1]
        t2 = np.cos(t1)
        return np.array([np.exp(t2), 3.14 * t2, np.sin(t2), t2 * t1])
    return fd_jacobian(f, [np.array([x1, x2])], 0)


@pytest.mark.parametrize("elimination", ["edge", pytest.param("face", marks=pytest.mark.slow)])
def test_lion_edge_and_face_optima_beat_vertex_elimination(elimination):
    g = examples.lion()
    p = jacc.plan(g, "optimal", elimination=elimination, time_limit=120)  # face: ~7 s, 34,470 states
    assert isinstance(p, EdgePlan) and p.elimination == elimination
    assert p.mults == 11 and p.optimal is True and p.lower_bound == 11
    assert jacc.plan(g, "optimal").mults == 12  # vertex elimination's optimum
    assert p.mults == sum(s.mults for s in p.steps)
    blocks = p.execute(1.5, 0.7)
    want = _lion_fd(1.5, 0.7)
    got = np.array([[float(blocks[y, x]) for x in g.inputs] for y in g.outputs])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    text = str(p)
    assert "elimination: " + elimination in text and "11 mults" in text and "proven optimal: yes" in text


@pytest.mark.parametrize("strategy", ["forward", "reverse", "markowitz", "min-fill", "chain", ["t2", "t1"]])
def test_vertex_strategies_give_the_same_cost_as_edge_moves(strategy):
    g = examples.lion()
    vertex = jacc.plan(g, strategy)
    for elimination in ("edge", "face"):
        p = jacc.plan(g, strategy, elimination=elimination)
        assert p.mults == vertex.mults
        a, b = p.execute(0.4, 1.9), vertex.execute(0.4, 1.9)
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12)


def test_array_graphs_plan_by_edges_too():
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((3, 4)), rng.standard_normal(4)
    g = jacc.trace(lambda W, x: np.tanh(W @ np.sin(x)) * x.sum(), W, x)
    want = jacc.plan(g, "reverse").execute(W, x)
    for s in ("forward", "reverse", "greedy", "auto", "markowitz"):
        p = jacc.plan(g, s, elimination="edge")
        assert p.mults == sum(st.mults for st in p.steps)
        got = p.execute(W, x)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12)
    assert jacc.plan(g, "markowitz", elimination="edge").mults == jacc.plan(g, "markowitz").mults


def test_face_plans_execute_and_report():
    g = examples.lion()
    p = jacc.plan(g, "greedy", elimination="face")
    assert p.mults >= 11 and p.mults == sum(s.mults for s in p.steps)
    blocks = p.execute(1.5, 0.7)
    got = np.array([[float(blocks[y, x]) for x in g.inputs] for y in g.outputs])
    np.testing.assert_allclose(got, _lion_fd(1.5, 0.7), rtol=1e-6)
    assert all(s.kind == "face" and len(s.edge) == 3 for s in p.steps)
    assert "face t" in str(p) or "face x" in str(p)
    stopped = jacc.plan(g, "optimal", elimination="face", time_limit=0.05)
    assert stopped.optimal is False and stopped.lower_bound <= 11 <= stopped.mults


def test_auto_on_graphs_too_large_to_search_is_never_worse_than_vertex_auto():
    from jacc import suite

    p = suite.get("robotarm", "small")
    g = jacc.trace(lambda q: p.fn(q=q), p.make_inputs(0)["q"], scalarize=True)
    e = jacc.plan(g, "auto", elimination="edge", time_limit=1)
    assert e.strategy in ("auto→greedy", "auto→vertex auto (as moves)")
    assert e.mults <= min(jacc.plan(g, s).mults for s in ("forward", "reverse", "markowitz"))  # vertex auto's floor


def test_edge_auto_under_a_short_limit_leaves_vertex_auto_its_share():
    """Greedy moves that ran to the deadline left vertex auto no time: its order was then the naive
    reverse one (860, where Markowitz takes 632 and vertex auto 561; hunt CB)."""
    g = examples.random_graph(10, 400, 5, seed=3)
    e = jacc.plan(g, "auto", elimination="edge", time_limit=0.5)
    assert e.mults <= jacc.plan(g, "markowitz").mults < e.reverse_mults


@pytest.mark.parametrize("elimination", ["edge", "face"])
def test_auto_under_a_limit_spent_before_it_starts_returns_a_plan(elimination):
    # the time left after the set-up went negative and was passed on as vertex auto's time_limit
    g = examples.random_graph(10, 400, 6, seed=0)
    assert jacc.plan(g, "auto", elimination=elimination, time_limit=1e-6).mults > 0


def test_explicit_moves_and_plans_are_reused():
    g = examples.lion()
    p = jacc.plan(g, "optimal", elimination="edge")
    again = jacc.plan(g, p.moves, elimination="edge")
    assert again.strategy == "explicit" and again.mults == 11
    assert jacc.plan(g, p, elimination="edge").mults == 11
    with pytest.raises(ValueError, match="edge-elimination plan cannot be used with elimination='face'"):
        jacc.plan(g, p, elimination="face")


@pytest.mark.parametrize("elimination", ["edge", "face"])
def test_a_plan_reused_on_another_graph_keeps_its_moves_not_its_proof(elimination):
    rng = np.random.default_rng(0)

    def mlp(d):
        A, B, C = (rng.standard_normal((d[i + 1], d[i])) for i in range(3))
        return lambda x: C @ np.tanh(B @ np.tanh(A @ x))

    pa = jacc.plan(jacc.trace(mlp([2, 9, 9, 9]), np.ones(2)), "optimal", elimination=elimination)
    assert pa.optimal and pa.lower_bound == pa.mults == 360
    gb = jacc.trace(mlp([9, 9, 9, 2]), np.ones(9))
    pb = jacc.plan(gb, pa, elimination=elimination)
    assert pb.moves == pa.moves and pb.mults == 1053  # (forward's moves where reverse is cheap)
    assert not pb.optimal and pb.lower_bound is None and "reused" in pb.info and "mults" not in pb.info
    assert jacc.plan(gb, "optimal", elimination=elimination).mults == 360


def test_bad_elimination_arguments_say_what_to_do():
    g = examples.lion()
    with pytest.raises(ValueError, match="elimination must be one of"):
        jacc.plan(g, "forward", elimination="faces")
    with pytest.raises(ValueError, match="'mults' objective without a memory limit only"):
        jacc.plan(g, "forward", elimination="edge", memory_limit=10**6)
    with pytest.raises(NotImplementedError, match="run on the executor"):
        jacc.plan(g, "forward", elimination="edge").compile()


def test_edge_plan_picture_marks_each_step():
    g = examples.lion()
    p = jacc.plan(g, "optimal", elimination="edge")
    text = to_dot(g, p).to_string()
    assert "edge elimination, 11 mults" in text
    for k, s in enumerate(p.steps, 1):
        assert f"{k}: {s.kind} " in text  # the legend lists every move
    assert "back step 1" in text and "style=dashed" in text
    with pytest.raises(ValueError, match=r"steps_dir \(--steps\) draws vertex plans"):
        jacc.render(g, p, steps_dir="unused")


def test_cli_plans_and_draws_edge_eliminations(capsys, tmp_path):
    lion = os.path.join(GRAPHS, "lion.json")
    assert main(["plan", lion, "--elimination", "edge", "--strategy", "optimal"]) == 0
    out = capsys.readouterr().out
    assert "This plan's cost:                   11 mults" in out
    assert main(["plan", lion, "--elimination", "edge", "--strategy", "optimal", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mults"] == 11 and d["optimal"] is True and len(d["steps"]) == 5
    assert main(["plan", lion, "--elimination", "edge", "--strategy", "all"]) == 0
    out = capsys.readouterr().out
    assert "auto→optimal" in out and "markowitz (vertex order as edge moves)" in out
    pic = tmp_path / "lion.dot"
    assert main(["render", lion, "--elimination", "edge", "--strategy", "optimal", "-o", str(pic)]) == 0
    assert "front step" in pic.read_text()


def test_edge_auto_returns_a_plan_when_the_deadline_passes_and_takes_a_seed():
    """The greedy moves ran past the deadline and TimeUp reached the user (a crash, in the CLI
    too); a seed (for vertex auto's anneal) was passed to the exact edge search, which takes none."""
    g = examples.random_graph(4, 300, 3, seed=5, width=4, fan_in=6)
    t = time.perf_counter()
    p = jacc.plan(g, "auto", elimination="edge", time_limit=0.3, seed=0)
    wall = time.perf_counter() - t
    assert wall < 0.3 * 1.1 + 0.2 + 1.0, wall
    assert p.strategy.startswith("auto→") and p.mults > 0
    assert jacc.plan(examples.lion(), "auto", elimination="edge", seed=1).mults == 11


def test_face_optimal_returns_its_incumbent_when_the_deadline_passes_at_once():
    """The incumbent (greedy moves as faces, priced) ran under a deadline already passed and
    budget.TimeUp reached the user; the search needs an incumbent, then stops unproven."""
    for _ in range(5):
        p = jacc.plan(examples.lion(), "optimal", elimination="face", time_limit=0.002)
        assert p.mults >= 11 and p.optimal in (True, False)


@pytest.mark.parametrize("strategy", ["optimal", "auto"])
@pytest.mark.parametrize("elimination", ["edge", "face"])
@pytest.mark.parametrize("name", ["lion", "mlp"])
def test_exact_edge_and_face_search_return_a_plan_whatever_the_deadline(name, elimination, strategy):
    """The incumbent's greedy moves looked at the clock and raised budget.TimeUp to the user on
    the suite's lion and MLP (array graphs) with time_limit=0.002 (found by a sweep of every
    strategy × elimination × limit); forward and reverse moves now always make an incumbent."""
    prob = suite.get(name, "small")
    args = list(prob.make_inputs().values())
    g = jacc.trace(prob.fn, *args)
    want = jacc.plan(g, "reverse").execute(*args)
    for limit in (1e-6, 0.002):
        p = jacc.plan(g, strategy, elimination=elimination, time_limit=limit)
        assert p.optimal is not True and p.mults > 0
        got = p.execute(*args)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12)
