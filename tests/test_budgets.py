"""Planning budgets (issue 12 items 18, 20, 21, 22): time limits bound the whole planning call,
long chains plan in linear time, pricing never materialises values, ties go to less memory."""

import itertools
import sys
import time
import tracemalloc

import numpy as np
import pytest
from conftest import dense_chain, peak_memory

import jacc
from jacc import budget, examples, suite
from jacc import structure as S
from jacc.chain import brute_force_chain, linear_chain_order, matrix_chain_order
from jacc.costmodel import CostModel
from jacc.eliminate import Problem, price
from jacc.strategies import run_strategy
from jacc.strategies.chain import dp_budget

CI_MARGIN = 1.0  # seconds on top of the promised limit·1.1 + 0.2 s: the 2-core machine is shared (the
# unbudgeted runs these tests guard against take 4 s and more)


def within_promise(seconds: float, limit: float) -> bool:
    return seconds <= limit * 1.1 + 0.2 + CI_MARGIN


@pytest.fixture(scope="module")
def big_dag():
    """~2,300 eliminable scalar vertices; unbudgeted, min-fill alone takes ~2 s here and the
    five heuristic baselines ~4 s, so a limit of 0.5 s fails if any of them runs unbounded."""
    return examples.random_graph(30, 3000, 600, seed=0)


# -- item 21: time_limit bounds planning, baselines and set-up included --------------------------

@pytest.mark.parametrize("strategy", ["auto", "anneal", "window", "chain"])
def test_time_limit_bounds_the_whole_plan_call(big_dag, strategy):
    limit = 0.25 if strategy == "chain" else 0.5  # Markowitz alone takes ~0.65 s here: it must not finish
    t = time.perf_counter()
    p = jacc.plan(big_dag, strategy, time_limit=limit)
    wall = time.perf_counter() - t
    assert within_promise(wall, limit), f"{strategy} took {wall:.2f} s with time_limit={limit}"
    assert p.planning_seconds <= wall
    assert sorted(p.order) == sorted(Problem.from_graph(big_dag).eliminable)  # a valid, priced order
    steps, mults, peak = price(Problem.from_graph(big_dag), p.order)
    assert (p.mults, p.peak_bytes, [s.mults for s in p.steps]) == (mults, peak, [s.mults for s in steps])
    if strategy == "chain":  # Markowitz cannot finish here; the rest goes in the likely cheaper mode
        assert "vertices left in forward order" in p.info["stopped early"]


def test_auto_reports_what_ran_and_what_the_limit_stopped(big_dag):
    p = jacc.plan(big_dag, "auto", time_limit=0.5)
    tried = p.info["tried"]
    # 30 inputs, 600 outputs: forward is the likely cheaper mode, so it is tried first
    assert tried.startswith("forward: ") and "; reverse: " in tried and "; window: " in tried
    # min-fill etc. cannot all finish in 0.5 s here: stopped, or (on a loaded machine, where pricing the
    # naive order kept back most of the limit) not started
    assert "stopped by the time limit" in tried or "not run, the time limit had passed" in tried


def test_candidates_after_the_deadline_are_not_started(big_dag):
    """Past the deadline a candidate is not even started: each would first copy the elimination
    state (a tenth of a second per candidate on a scalar graph of 10⁵ vertices). Only forward or
    reverse order, when it is the order priced last, is taken then: it costs nothing."""
    from jacc.costmodel import CostModel
    from jacc.strategies import best_of

    prob = Problem.from_graph(big_dag)
    log, stopped = [], []
    with budget.within(-1):
        late = best_of(prob, CostModel(), [("forward", {}), ("reverse", {})], log=log, timed_out=stopped)
    assert late is None and stopped == ["forward", "reverse"]
    assert log == ["forward: not run, the time limit had passed", "reverse: not run, the time limit had passed"]
    with budget.within(60):
        first = best_of(prob, CostModel(), [("forward", {}), ("reverse", {})], log=log)
    assert first[2] == "forward" and prob.priced(first[1])  # (30 inputs, 600 outputs)
    with budget.within(-1):
        late = best_of(prob, CostModel(), [("reverse", {}), ("forward", {})], log=log, timed_out=stopped)
    assert late[:3] == first[:3] and stopped[2:] == ["reverse"]
    assert log[4] == "reverse: not run, the time limit had passed" and log[5].startswith("forward: ")


@pytest.mark.parametrize("n_in, n_out, first", [(30, 600, "forward"), (600, 30, "reverse"), (5, 5, "reverse")])
def test_the_likely_cheaper_naive_mode_goes_first(n_in, n_out, first):
    from jacc.strategies import naive_first
    from jacc.strategies.optimal import _fallback
    prob = Problem.from_graph(examples.random_graph(n_in, 40, n_out, seed=1))
    assert naive_first(prob)[0] == first
    fb = _fallback(prob, "auto", {})
    assert fb.order == (prob.eliminable if first == "forward" else prob.eliminable[::-1])
    assert fb.optimal is False and f"returning {first}'s order unchecked" in fb.info["stopped early"]


def test_time_limit_is_still_a_cap_for_optimal():
    g = examples.random_graph(3, 16, 2, seed=17, width=3, fan_in=5)
    t = time.perf_counter()
    q = jacc.plan(g, "optimal", time_limit=0.01)
    assert within_promise(time.perf_counter() - t, 0.01)
    assert q.optimal is False and "time limit" in q.info["stopped early"]


def _polydiv_graph():
    from jacc.trace import trace
    return trace(lambda a, b: np.polydiv(a, b)[0], np.array([1.0, -3.0, 0.5, 2.0, 1.5]), np.array([2.0, 1.0, -1.0]),
                 argnums=(0, 1))


def test_the_pay_off_cap_leaves_out_the_memory_no_order_can_save():
    """Under the time objective a score counts the peak bytes too, and no order holds less than
    the partials at the start: the cap is what 100,000 calls could save above that floor.
    np.polyval of degree 8 over 200 numbers searched 0.52 s (its whole score) for the order
    forward already had; now 0.19 s."""
    from jacc.strategies.auto import search_time
    coef = np.linspace(-1.0, 1.0, 9)
    g = jacc.trace(lambda x: np.polyval(coef, x), np.linspace(-1.0, 1.0, 200))
    cm = CostModel("time")
    floor = cm.score(0, Problem.from_graph(g).eliminator().live_bytes)
    best = min(cm.score(*price(Problem.from_graph(g), jacc.plan(g, m).order)[1:]) for m in ("forward", "reverse"))
    p = jacc.plan(g, "auto", time_limit=5.0, objective="time", payoff_calls=100_000)
    cap = search_time(best - floor, 100_000)
    assert 0 < floor < best and cap < search_time(best, 100_000)
    assert p.info["search limit"].startswith(f"{cap:g} s (what 100,000 runs of the best order so far could save")


def test_auto_searches_a_cheap_plan_only_as_long_as_it_can_pay_off():
    from jacc.strategies.auto import SEARCH_MIN, search_time
    g = _polydiv_graph()  # 17 eliminable vertices: the exact search cannot finish in seconds
    assert len(Problem.from_graph(g).eliminable) > 15
    p = jacc.plan(g, "auto", time_limit=5.0, objective="time", payoff_calls=100_000)
    assert search_time(p.score, 100_000) == SEARCH_MIN  # the baselines score at least as high
    assert p.info["search limit"].startswith(f"{SEARCH_MIN:g} s (what 100,000 runs"), p.info
    if p.info["chose"] == "optimal":  # (under load a baseline can win: its info has no search note)
        assert f"time limit {SEARCH_MIN:g} s reached" in p.info["stopped early"], p.info
    q = jacc.plan(g, "auto", time_limit=0.3, objective="time")  # jacc.plan: no pay-off cap
    assert "search limit" not in q.info
    if q.info["chose"] == "optimal":
        assert "time limit 0.3 s reached" in q.info["stopped early"]
    assert q.score <= p.score
    jf = jacc.jacobian(lambda a, b: np.polydiv(a, b)[0], argnums=(0, 1), backend="numpy")
    jf(np.array([1.0, -3.0, 0.5, 2.0, 1.5]), np.array([2.0, 1.0, -1.0]))
    assert jf.plan.info["search limit"].startswith(f"{SEARCH_MIN:g} s (what 100,000 runs")  # jacobian's default
    with pytest.raises(ValueError, match="payoff_calls"):
        jacc.plan(g, "auto", payoff_calls=0)


def test_lower_bound_stops_at_its_time_limit_inside_one_bound_evaluation():
    from jacc.strategies.optimal import lower_bound
    from jacc.unroll import scalar_graph
    r = np.random.default_rng(0)
    x, y = r.standard_normal((6, 2)), r.standard_normal((6, 2))
    # np.cov's graph at scalar level: its unit-edge components each take seconds to orient in full
    arrays = jacc.trace(lambda x, y: np.cov(x, y, rowvar=False, bias=True), x, y, argnums=(0, 1))
    g = scalar_graph(arrays, arrays.evaluate(dict(zip(arrays.inputs, (x, y)))))
    t = time.perf_counter()
    bound, _ = lower_bound(Problem.from_graph(g), time_limit=0.2)
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.2), f"lower_bound took {wall:.2f} s with time_limit=0.2 (6-11 s before the fix)"
    assert 0 <= bound <= jacc.plan(g, "reverse").mults


def test_optimal_with_a_memory_objective_stops_at_its_time_limit():
    g = examples.random_graph(4, 200, 3, seed=200)  # its Pareto search took 2.6 s under time_limit=0.3
    t = time.perf_counter()
    p = jacc.plan(g, "optimal", time_limit=0.3, objective="time")
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.3), f"optimal (objective='time') took {wall:.2f} s with time_limit=0.3"
    assert p.optimal is False and "time limit 0.3 s reached" in p.info["stopped early"]


def _sweep_graphs():
    from jacc import suite
    out = {f"random {n}": examples.random_graph(4, n, 3, seed=n) for n in (25, 60, 200)}
    for name in ("roeflux", "robotarm", "blackscholes"):
        prob = suite.get(name)
        ins = prob.make_inputs(0)
        out[f"{name}, scalar level"] = jacc.trace(lambda *a, prob=prob, ins=ins: prob.fn(**dict(zip(ins, a))),
                                                  *ins.values(), argnums=tuple(range(len(ins))), scalarize=True)
    return out


@pytest.mark.slow  # ~20 s of timed planning: five strategies, two objectives, six graphs with long search steps
def test_every_time_limited_strategy_keeps_its_limit_on_graphs_with_long_steps():
    over = []
    for gname, g in _sweep_graphs().items():
        for strategy in ("optimal", "anneal", "window", "auto", "chain"):
            for objective in ("mults", "time"):
                t = time.perf_counter()
                jacc.plan(g, strategy, time_limit=0.3, objective=objective)
                wall = time.perf_counter() - t
                if not within_promise(wall, 0.3):
                    over.append(f"{gname}, {strategy}, objective={objective}: {wall:.2f} s")
    assert not over, "time_limit=0.3 not kept: " + "; ".join(over)


@pytest.mark.parametrize("strategy", ["optimal", "anneal", "window"])
def test_a_search_over_thousands_of_independent_groups_keeps_its_limit(strategy):
    """Each group got at least 10 ms and cost a pass over the whole graph: 2,400 groups took 13.7 s
    with time_limit=0.05 (a batch of 1,000 Black–Scholes options at scalar level, 84–136 s). Past
    the deadline the remaining groups take the likely cheaper naive order, unsearched."""
    g = jacc.trace(lambda x: np.sin(x) * np.cos(x) + np.exp(x) * x ** 2, np.ones(1200), scalarize=True)
    prob = Problem.from_graph(g)
    assert len(prob.components()) == 2400

    t = time.perf_counter()  # the strategy alone (the plan's final pricing is outside the promise)
    order, _, info, optimal = run_strategy(strategy, prob, CostModel(), time_limit=0.05)
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.05), f"{strategy} took {wall:.2f} s"
    # (past the deadline before the one search of the 2,400 alike groups: "unsearched"; during it: the
    # search's own note — either way it says so and claims nothing. A search set up and done within
    # the limit, as on a quick moment of this machine, has nothing to say: its order is complete)
    note = info.get("stopped early")
    assert note is None or ("time limit" in note and optimal is not True), (note, optimal)
    assert sorted(order) == sorted(prob.eliminable)


def test_finding_the_groups_honours_the_deadline():
    """Sorting 10⁵ scalar vertices into independent groups takes a few tenths of a second: past the
    deadline it stops (TimeUp, which the strategy turns into its unsearched answer) instead of
    running to the end first; without a deadline it finds them all."""
    g = jacc.trace(lambda x: np.sin(x) * np.cos(x), np.ones(50), scalarize=True)
    prob = Problem.from_graph(g)
    with budget.within(until=budget.now() - 1.0):
        with pytest.raises(budget.TimeUp):
            prob.components()
    groups = prob.components()
    assert len(groups) == 100 and sorted(v for grp in groups for v in grp) == sorted(prob.eliminable)
    with budget.within(until=budget.now() - 1.0):
        with pytest.raises(budget.TimeUp):
            prob.restrict_all(groups)
    subs = prob.restrict_all(groups)
    assert [s.eliminable for s in subs] == groups
    assert sum(len(s.edges) for s in subs) == sum(1 for u, v in prob.edges if u in prob.eliminable or v in prob.eliminable)


# -- the final pricing counts: a strategy's deadline keeps back what pricing its order takes -------

def test_the_strategy_deadline_keeps_back_the_final_pricing(monkeypatch):
    """jacc.plan ran the strategy up to the limit and priced the order it returned after it: on the
    53,000-vertex scalar graph of the full-size Black–Scholes batch, time_limit=2 ended after
    2.7–2.9 s (one pricing there takes 0.3–0.6 s)."""
    import jacc.eliminate
    from jacc.plan import RESERVE_MARGIN

    seen = {}

    def probe(problem, cost_model, *, time_limit=None):
        seen["left"] = budget.left()
        return list(problem.eliminable)

    def probe_with_a_default(problem, cost_model, *, time_limit=2.0):
        return probe(problem, cost_model)

    monkeypatch.setitem(jacc.STRATEGIES, "probe", probe)
    monkeypatch.setitem(jacc.STRATEGIES, "probe-default", probe_with_a_default)
    monkeypatch.setattr(jacc.eliminate, "pricing_seconds", lambda problem, within: 0.2)
    jacc.plan(examples.np_chain(10, 3), "probe", time_limit=1.0)
    assert 1.0 - 0.2 * RESERVE_MARGIN - 0.1 < seen["left"] <= 1.0 - 0.2 * RESERVE_MARGIN
    jacc.plan(examples.np_chain(10, 3), "probe-default")  # (auto's default limit is 5 s: kept the same way)
    assert 2.0 - 0.2 * RESERVE_MARGIN - 0.1 < seen["left"] <= 2.0 - 0.2 * RESERVE_MARGIN
    jacc.plan(examples.np_chain(10, 3), "probe")  # no limit, nothing kept back
    assert seen["left"] == float("inf")


def test_measuring_a_pricing_prices_the_likely_cheaper_naive_order(big_dag):
    from jacc.eliminate import forward_order, pricing_seconds

    prob = Problem.from_graph(big_dag)
    assert pricing_seconds(prob, 60) > 0
    assert prob.priced(forward_order(prob))  # 30 inputs, 600 outputs: forward is the likely cheaper
    cut = Problem.from_graph(big_dag)
    assert pricing_seconds(cut, 0.0) > 0  # cut at once: extrapolated from what it finished
    assert not cut.priced(forward_order(cut))


@pytest.mark.parametrize("strategy", ["optimal", "anneal", "window", "chain", "auto"])
def test_a_strategy_whose_deadline_passed_returns_the_priced_naive_order(strategy, monkeypatch):
    """Past its deadline a search fell back on an order of its own making — the groups one by one,
    the chain strategy's rest after a fresh pricing — which the plan then priced in full (0.5–0.7 s
    on the Black–Scholes batch); the naive order that :func:`jacc.plan.choose` priced costs nothing."""
    from jacc.eliminate import Eliminator, pricing_seconds, reverse_order

    g = jacc.trace(lambda x: np.sin(x) * np.cos(x) + np.exp(x) * x ** 2, np.ones(100), scalarize=True)
    prob = Problem.from_graph(g)
    assert len(prob.components()) == 200
    pricing_seconds(prob, 60)  # what jacc.plan does first under a time limit
    naive = reverse_order(prob)  # (as many outputs as inputs: reverse first)
    assert prob.priced(naive)
    count = []
    real = Eliminator.eliminate
    monkeypatch.setattr(Eliminator, "eliminate", lambda self, v: count.append(v) or real(self, v))
    with budget.within(0.0):
        order, _, info, optimal = run_strategy(strategy, prob, CostModel(), time_limit=1.0)
    assert order == naive and count == [] and optimal is not True
    p = jacc.plan(g, strategy, time_limit=1e-9)  # the whole call: the plan prices one order, once
    assert p.order == naive and p.mults == build_price(prob, naive)


def build_price(prob, order):
    return price(Problem.from_graph(prob.graph), order)[1]


@pytest.mark.parametrize("strategy", ["markowitz", "min-fill", "relative-markowitz"])
def test_greedy_heuristics_keep_a_time_limit_and_their_picks(big_dag, strategy):
    """Every strategy takes a time limit ("every strategy stops within its time limit"): a greedy
    heuristic cut short keeps the vertices it picked, in its order, and the rest follow in the
    likely cheaper naive mode; unhurried, it runs as before."""
    prob = Problem.from_graph(big_dag)
    whole, *_ = run_strategy(strategy, prob, CostModel(), time_limit=600)
    if strategy != "min-fill":  # (min-fill's 4 s run twice; the others show it)
        assert run_strategy(strategy, prob, CostModel())[0] == whole
    t = time.perf_counter()
    order, _, info, _ = run_strategy(strategy, prob, CostModel(), time_limit=0.05)
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.05), f"{strategy} took {wall:.2f} s"
    picked = int(info["stopped early"].split(" after ")[1].split(" of ")[0].replace(",", ""))
    assert 0 <= picked < len(whole) and order[:picked] == whole[:picked]
    rest = [v for v in prob.eliminable if v not in set(order[:picked])]
    assert order[picked:] == rest and "in forward order" in info["stopped early"]  # 30 in, 600 out
    p = jacc.plan(big_dag, strategy, time_limit=0.05)
    assert within_promise(p.planning_seconds, 0.05) and sorted(p.order) == sorted(prob.eliminable)


def test_forward_and_reverse_take_a_time_limit_too():
    g = examples.three_layer()
    assert jacc.plan(g, "forward", time_limit=1).order == jacc.plan(g, "forward").order
    assert jacc.plan(g, "reverse", time_limit=1).order == jacc.plan(g, "reverse").order


def test_auto_sizes_its_search_by_one_group_of_each_class_of_copies():
    """On graphs over 2,000 vertices auto's search was `window`, run group by group over the
    independent groups in shares too small for their own heuristics: it returned reverse order (1,000
    Black–Scholes options at scalar level: 125,000 multiplications where Markowitz takes 88,000). A
    batch of copies is searched once per class (jacc.strategies.copies), so auto sizes its search by
    the vertices of one group of each class: here 3, so the exact search proves the optimum."""
    from jacc.strategies import searched_size

    g = jacc.trace(lambda x: np.sin(x) * np.cos(x) + np.exp(x) * x ** 2, np.ones(600), scalarize=True)
    prob = Problem.from_graph(g)
    assert len(prob.eliminable) > 2000 and len(prob.components()) == 1200
    assert searched_size(prob, CostModel()) == 3 and searched_size(prob, CostModel("time")) == 3600
    p = jacc.plan(g, "auto", time_limit=2)
    tried = p.info["tried"].split("; ")
    assert tried[1].startswith("optimal: ")  # the search right after the first baseline
    assert p.optimal is True and p.mults == p.lower_bound <= jacc.plan(g, "markowitz").mults
    assert "1 distinct up to relabelling" in p.info["independent groups"]


def test_optimal_keeps_its_limit_on_a_graph_of_thousands_of_vertices():
    """Setting up the search sorted every ancestor list by list.index (quadratic: 2.4 s on 5,000
    vertices) and priced every vertex's first step without looking at the clock: time_limit=0.3
    took 2.9 s here."""

    prob = Problem.from_graph(examples.random_graph(5, 5000, 5, seed=3, fan_in=8))
    t = time.perf_counter()  # the strategy alone (the plan's final pricing is outside the promise)
    _, _, info, optimal = run_strategy("optimal", prob, CostModel(), time_limit=0.3)
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.3), f"optimal took {wall:.2f} s"
    assert optimal is not True and "stopped early" in info


def test_optimal_set_up_looks_at_the_clock_on_a_deep_graph():
    """The search's set-up (every vertex's ancestors and descendants, O(vertices²) on a deep
    graph) ran unchecked: 3.9 s at time_limit=0.1 here, 13–17 s on the small MLP at scalar
    level whatever the limit."""
    from jacc.strategies.optimal import _Sets

    def deep(x):
        for _ in range(300):
            x = np.sin(x) + x.sum() * 0.1
        return x

    prob = Problem.from_graph(jacc.trace(deep, np.ones(3), scalarize=True))  # 2,700 vertices, one group
    with budget.within(0.01), pytest.raises(budget.TimeUp):
        _Sets.of(prob)
    t = time.perf_counter()
    _, _, info, optimal = run_strategy("optimal", prob, CostModel(), time_limit=0.1)
    wall = time.perf_counter() - t
    assert within_promise(wall, 0.1), f"optimal took {wall:.2f} s"
    assert optimal is not True and "stopped early" in info


def test_budget_nests_and_the_earliest_deadline_wins():
    with budget.within(10) as outer:
        with budget.within(0.0) as inner:
            assert inner <= outer and budget.expired()
            with pytest.raises(budget.TimeUp):
                budget.check()
        assert not budget.expired()
    assert budget.deadline() == float("inf")


def test_greedy_and_pricing_stop_at_the_deadline(big_dag):
    prob = Problem.from_graph(big_dag)
    cm = CostModel()
    for job in (lambda: run_strategy("min-fill", prob, cm), lambda: price(prob, prob.eliminable[::-1])):
        t = time.perf_counter()
        with budget.within(0.05), pytest.raises(budget.TimeUp):
            job()
        assert time.perf_counter() - t < 0.05 + CI_MARGIN


def test_a_ticker_looks_at_the_clock_at_every_call_once_calls_are_slow():
    calls = 0
    with budget.within(0.02), pytest.raises(budget.TimeUp):
        tick = budget.Ticker(1000)
        while True:
            tick()
            calls += 1
            time.sleep(0.005)  # a step that prices a product
    assert calls < 50  # (a look every 1,000 calls would run 1,000 slow steps past the deadline)


def test_greedy_checks_the_deadline_before_every_preview(monkeypatch):
    """Each preview prices a product, and a greedy step re-scores every neighbour of what it
    eliminated: those pushes too must stop at the deadline (a 0.3 s limit ran 0.9 s on a 2-D
    Gaussian filter's graph). Here every preview takes 10 ms and the hub ``sum(x)`` touches all."""
    from jacc.eliminate import Eliminator

    g = jacc.trace(lambda x: np.stack([np.tanh(x[i] * np.sum(x)) for i in range(12)]), np.zeros(12))
    real, real_eliminate, late, started = Eliminator.preview, Eliminator.eliminate, [], []

    def slow(self, v):  # slow once eliminations have begun: the deadline passes among the pushes
        late.append(budget.expired())
        if started:
            time.sleep(0.01)
        return real(self, v)

    def eliminate(self, v):
        started.append(v)
        return real_eliminate(self, v)

    monkeypatch.setattr(Eliminator, "preview", slow)
    monkeypatch.setattr(Eliminator, "eliminate", eliminate)
    for limit in (0.05, 0.12, 0.2):
        late.clear()
        started.clear()
        with budget.within(limit), pytest.raises(budget.TimeUp):
            run_strategy("markowitz", Problem.from_graph(g), CostModel(), objective="time")
        assert sum(late) <= 1, f"{sum(late)} previews started past a {limit} s deadline"


# -- anneal: iteration-based, seeded --------------------------------------------------------------

def test_anneal_schedule_counts_moves_not_seconds():
    g = examples.random_graph(4, 40, 3, seed=11)
    runs = [jacc.plan(g, "anneal", max_iters=150, time_limit=tl, seed=5) for tl in (30, 60)]
    assert runs[0].order == runs[1].order  # the cap did not bind: the time limit changes nothing
    assert runs[0].info["iterations"] == 150 and "stopped early" not in runs[0].info
    other = jacc.plan(g, "anneal", max_iters=150, time_limit=30, seed=6)
    assert other.info["seed"] == 6


def test_anneal_default_schedule_is_reproducible():
    g = examples.random_graph(3, 25, 2, seed=3)
    a, b = (jacc.plan(g, "anneal", seed=1) for _ in range(2))
    assert a.order == b.order and a.info["iterations"] == b.info["iterations"] == 400


def test_anneal_polishes_until_nothing_improves_and_says_when_a_cap_cut_a_polish():
    # the polishes used to stop silently at a quarter of time_limit: 59 mults with time_limit=1
    # and 51 with 30 from the same seed, neither run saying that the clock had chosen
    g = examples.random_graph(5, 100, 3, seed=2)
    free = jacc.plan(g, "anneal", seed=3, time_limit=60)
    assert "stopped early" not in free.info, free.info
    assert jacc.plan(g, "anneal", seed=3, time_limit=20).order == free.order
    cut = jacc.plan(g, "anneal", seed=3, time_limit=60, polish_time=0)
    assert "window polish cut after 0 windows by polish_time" in cut.info["stopped early"]
    assert cut.mults >= free.mults


def test_polish_searches_a_window_again_only_after_a_change():
    from jacc.strategies.optimal import polish

    prob = Problem.from_graph(examples.random_graph(4, 60, 3, seed=1))
    order = run_strategy("reverse", prob)[0]
    stats: dict = {}
    new, saved = polish(prob, order, CostModel(), window=8, stats=stats)
    assert saved > 0 and stats["converged"]
    windows = len(range(0, len(order) - 8 + 4, 4))
    assert windows < stats["windows"] < 3 * windows  # passes after the first skip unchanged windows
    again: dict = {}
    assert polish(prob, new, CostModel(), window=8, stats=again) == (new, 0)
    assert again == {"windows": windows, "converged": True}  # one pass, every window once
    with budget.within(0.0):
        assert polish(prob, order, CostModel(), window=8, stats=again) == (order, 0)
    assert again == {"windows": 0, "converged": False}


def test_anneal_says_when_the_time_cap_cut_it_short(big_dag):
    p = jacc.plan(big_dag, "anneal", time_limit=0.3, max_iters=10**6)
    assert "stopped early" in p.info


# -- items 18 and 20: long chains -----------------------------------------------------------------

def test_dp_budget_refuses_what_would_not_fit():
    assert dp_budget(50, False) is None
    assert "GiB" in dp_budget(100_000, False, dp_memory=2**30) or "s left" in dp_budget(100_000, False)
    with budget.within(0.001):
        assert "more than" in dp_budget(2000, False)
    assert "GiB" in dp_budget(3000, False, dp_memory=10**6)


def _random_chain(n):
    rng = np.random.default_rng(n)
    return dense_chain([int(d) for d in rng.integers(1, 9, n + 1)])


@pytest.mark.parametrize("n, limit", [(3000, 0.5), (6000, 1.0)])
def test_long_chain_plans_within_the_limit(n, limit):
    g = _random_chain(n)
    t = time.perf_counter()
    p = jacc.plan(g, "auto", time_limit=limit)
    wall = time.perf_counter() - t
    assert within_promise(wall, limit), wall  # the DP alone would take ~n³ ns: 27 s at n = 3,000
    assert p.strategy in ("auto→chain", "auto→markowitz")  # whichever is cheaper here
    assert "chain: " in p.info["tried"] and "(linear: " in p.info["tried"] and "s left)" in p.info["tried"]
    assert "bracketing" not in p.info  # thousands of names would swamp the report
    assert p.mults <= min(p.forward_mults, p.reverse_mults)


@pytest.mark.parametrize("n, dp_memory", [(1500, None), (1500, 10**6)])
def test_long_chain_planning_memory_stays_linear(n, dp_memory):
    g = _random_chain(n)
    tracemalloc.start()
    try:
        with budget.within(0.01 if dp_memory is None else 60):  # no time for the DP, or no memory
            p = jacc.plan(g, "chain", dp_memory=dp_memory, time_limit=60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert p.info["method"].startswith("linear:")
    assert ("s left" if dp_memory is None else "GiB budget") in p.info["method"]
    assert peak < 40 * n * n / 4, peak  # the DP tables alone would take 40·n² bytes


def test_chain_strategy_with_small_dp_memory_goes_linear_and_says_why():
    dims = [3, 7, 2, 9, 4, 4, 8, 1, 6]
    g = dense_chain(dims)
    exact = jacc.plan(g, "chain")
    lin = jacc.plan(g, "chain", dp_memory=100)
    assert exact.optimal is True and exact.mults == brute_force_chain(dims)
    assert lin.optimal is None and "GiB budget" in lin.info["method"]
    assert lin.mults == linear_chain_order(dims)[0].cost >= exact.mults


@pytest.mark.parametrize("seed", range(20))
def test_linear_chain_order_is_priced_exactly(seed):
    rng = np.random.default_rng(seed)
    dims = [int(d) for d in rng.integers(1, 20, int(rng.integers(2, 10)))]
    res, how = linear_chain_order(dims)
    g = dense_chain(dims)
    from jacc.strategies.chain import _tree_order, segments
    prob = Problem.from_graph(g)
    w = segments(prob)[0][::-1] if len(dims) > 2 else None
    if w is not None:
        assert price(prob, _tree_order(res.bracketing, w))[1] == res.cost  # the cost it claims
    assert res.cost >= matrix_chain_order(dims).cost
    assert how in ("left-to-right", "right-to-left", "greedy", "single matrix")


@pytest.mark.slow
def test_hundred_thousand_link_chain_plans_in_seconds():
    rng = np.random.default_rng(0)
    g = dense_chain([int(d) for d in rng.integers(1, 9, 100_001)])
    t = time.perf_counter()
    p = jacc.plan(g, "auto", time_limit=5)
    assert time.perf_counter() - t < 20
    assert p.info["method"].startswith("linear:")


# -- item 18: pricing never materialises ----------------------------------------------------------

def _big_reshape_graph(feeds_on: bool):
    g = jacc.Graph("r")
    g.add_input("x", (5000, 5000))
    g.add_node("a", "sin", ["x"])
    g.add_node("r", "reshape", ["a"], {"shape": [2500, 10000]})
    g.add_node("b", "exp", ["r"])
    g.add_node("y", "sum", ["b"], {"axis": 1})
    g.set_outputs(["y", "r"] if feeds_on else ["y"])  # "r" then gets an identity sink edge
    return g


@pytest.mark.parametrize("feeds_on", [False, True])
@pytest.mark.parametrize("strategy", ["forward", "reverse", "markowitz", "auto"])
def test_planning_a_large_reshape_stays_symbolic(feeds_on, strategy):
    g = _big_reshape_graph(feeds_on)
    p, peak = peak_memory(lambda: jacc.plan(g, strategy))
    assert peak < 2_000_000, f"{strategy} allocated {peak:,} bytes to plan"  # x alone is 200 MB
    assert p.mults > 0


@pytest.mark.parametrize("make", [
    lambda: S.product(S.identity((10**6,)), S.reshape_map((10**6,), (1000, 1000))),
    lambda: S.product(S.reshape_map((10**6,), (1000, 1000)), S.identity((1000, 1000))),
    lambda: S.product(S.dense((3,), (10**6,)), S.reshape_map((10**6,), (1000, 1000))),
    lambda: S.as_labelled(S.reshape_map((10**6,), (1000, 1000))),
    lambda: S.as_labelled(S.selection((500, 1000), (1000, 1000), [["slice", 0, 500, 1], ["slice", None, None, None]])),
    lambda: S.add(S.selection((500, 1000), (1000, 1000), [["slice", 0, 500, 1], ["slice", None, None, None]]),
                  S.dense((500, 1000), (1000, 1000))),
])
def test_pricing_builds_no_identity_or_one_hot(make):
    def run():
        with S.pricing():
            return make()
    out, peak = peak_memory(run)
    j = out[0] if isinstance(out, tuple) else out
    assert j.values is None and peak < 100_000, peak


def test_identity_shortcut_keeps_numeric_results():
    def f(x):
        r = np.sin(x).reshape(6)
        return r, np.exp(r).sum()
    x = np.linspace(0.1, 1.2, 6).reshape(2, 3)
    J = jacc.jacobian(f)(x)
    np.testing.assert_allclose(J[0], np.diag(np.cos(x).ravel()).reshape(6, 2, 3), atol=1e-14)
    np.testing.assert_allclose(J[1], (np.exp(np.sin(x)) * np.cos(x)), atol=1e-12)


# -- item 22: ties go to less memory --------------------------------------------------------------

def _all_orders(g):
    prob = Problem.from_graph(g)
    return prob, [(price(prob, list(o))[1:], list(o)) for o in itertools.permutations(prob.eliminable)]


@pytest.mark.parametrize("n", [40, 600])
@pytest.mark.parametrize("strategy", ["auto", "optimal"])
def test_outer_product_sum_takes_the_least_memory_among_ties(n, strategy):
    g = jacc.trace(lambda x: (x[:, None] * x[None, :]).sum(1), np.ones(n))
    _, orders = _all_orders(g)
    best = min(m for (m, _), _ in orders)
    least = min(p for (m, p), _ in orders if m == best)
    assert max(p for (m, p), _ in orders if m == best) > 10 * least  # the tie is a real trap
    plan = jacc.plan(g, strategy)
    assert (plan.mults, plan.peak_bytes) == (best, least)


def test_reshape_graph_tie_goes_to_the_smallerpeak_memory():
    g = _big_reshape_graph(False)
    _, orders = _all_orders(g)
    best = min(m for (m, _), _ in orders)
    least = min(p for (m, p), _ in orders if m == best)
    assert (jacc.plan(g).mults, jacc.plan(g).peak_bytes) == (best, least)


@pytest.mark.parametrize("priced, available, want", [
    ([(10, 100), (10, 50), (11, 1)], 10**9, 1),        # exact tie: smaller peak
    ([(1000, 1000), (1005, 400)], 10**9, 1),           # near-tie that halves memory
    ([(1000, 1000), (1005, 600)], 10**9, 0),           # near-tie, too little saved
    ([(1000, 1000), (1020, 10)], 10**9, 0),            # not a near-tie
    ([(10, 100), (20, 5)], 50, 1),                     # the cheaper one does not fit in memory
    ([(10, 100), (20, 80)], 50, 0),                    # none fits: fall back to the score
])
def test_pick_breaks_ties_by_memory_and_respects_available_memory(priced, available, want):
    assert CostModel().pick(priced, available) == want


def test_pick_with_memory_objective_breaks_ties_by_mults():
    assert CostModel("memory").pick([(30, 8), (20, 8), (10, 9)], 10**9) == 1
    assert CostModel(memory_limit=50).pick([(10, 100), (20, 60)], 10**9) is None


@pytest.mark.parametrize("shapes", [((3,), (4,), (5,)), ((2, 3), (4,), (5, 1)), ((), (4, 2), (3,)), ((3,), (), (2,))])
def test_symbolic_dense_fast_path_matches_the_numeric_product(shapes):
    o, m, i = shapes
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(o + m), rng.standard_normal(m + i)
    num, n_mults = S.product(S.dense(o, m, a), S.dense(m, i, b))
    sym, s_mults = S.product(S.dense(o, m), S.dense(m, i))
    assert s_mults == n_mults == int(np.prod(o + m + i))
    assert (sym.out_shape, sym.in_shape, sym.pair, sym.vlabels) == (num.out_shape, num.in_shape, num.pair, num.vlabels)
    np.testing.assert_allclose(num.values, np.tensordot(a, b, len(m)) if m else np.multiply.outer(a, b))


def test_heuristics_stopped_by_their_share_are_a_time_out_not_a_memory_limit(big_dag):
    # each heuristic's share of the time ends long before the enclosing deadline: that must read
    # as "out of time" (strategies then fall back), never as "no order fits the memory limit"
    from jacc.strategies.optimal import _heuristic_bound

    prob = Problem.from_graph(big_dag)
    with budget.within(30):
        with pytest.raises(budget.TimeUp):
            _heuristic_bound(prob, CostModel(), share=1e-9)
        assert not budget.expired()
    small = Problem.from_graph(examples.random_graph(3, 12, 3, seed=2))
    assert _heuristic_bound(small, CostModel(memory_limit=1)) is None  # every order is over the limit


def test_jacobian_refuses_a_plan_larger_than_the_memory_available(monkeypatch):
    from jacc import costmodel

    X = np.random.default_rng(0).normal(size=(6, 6))
    f = lambda X: np.sum(np.linalg.cholesky(X @ X.T + np.eye(6)))  # noqa: E731  (a dense 36×36 partial)
    monkeypatch.setattr(costmodel, "available_memory", lambda: 5_000)
    with pytest.raises(jacc.MemoryLimitError, match=r"more than the 5\.0 KB this machine has available.*"
                                                    r"∂v6/∂v5 \(cholesky: dense 36×36"):
        jacc.jacobian(f)(X)
    monkeypatch.setattr(costmodel, "available_memory", lambda: None)  # unknown: no check
    assert jacc.jacobian(f)(X).shape == (6, 6)
    monkeypatch.setattr(costmodel, "available_memory", lambda: 5_000)
    with pytest.raises(jacc.MemoryLimitError):  # an explicit limit is searched within, as before
        jacc.jacobian(f, memory_limit=5_000)(X)
    assert jacc.jacobian(f, memory_limit=10**9)(X).shape == (6, 6)  # the caller's budget, not the machine's


def test_jacobian_does_not_trade_a_huge_stored_jacobian_for_fewer_multiplications():
    """Counting multiplications alone, the forward order of the trace of XᵀX by einsum is free
    (selections and adds) and holds the n⁴ Jacobian of XᵀX; jacobian's "time" objective counts
    each stored value."""
    n = 30
    X = np.random.default_rng(1).normal(size=(n, n))
    f = lambda X: np.einsum("ii->", X.T @ X)  # noqa: E731
    g = jacc.trace(f, X)
    by_mults = jacc.plan(g, "auto")
    assert by_mults.mults == 0 and by_mults.peak_bytes >= 8 * n**4
    jf = jacc.jacobian(f)
    np.testing.assert_allclose(jf(X), 2 * X, rtol=1e-13, atol=1e-13)
    assert jf.plan.cost_model.objective == "time" and jf.plan.peak_bytes < 8 * n**3
    assert jf.plan.mults + jf.plan.peak_bytes / 8 < by_mults.peak_bytes / 8
    assert jacc.jacobian(f, objective="mults")(X).shape == (n, n)  # the literature's count, when asked
    assert jacc.CostModel("time").weights == (1.0, 0.125)


def test_the_memory_refusal_names_the_jacobian_when_it_alone_does_not_fit(monkeypatch):
    from jacc import costmodel

    X = np.random.default_rng(1).normal(size=(10, 10))
    monkeypatch.setattr(costmodel, "available_memory", lambda: 8 * 100 * 100 - 1)  # one byte short of ∂Q/∂X
    with pytest.raises(jacc.MemoryLimitError, match=r"the Jacobian itself takes 80\.0 KB as dense arrays, more than "
                       r"the 80\.0 KB this machine has available, so it was not computed \(the block of output 0, "
                       r"shape \(10, 10\), w\.r\.t\. X, shape \(10, 10\): 100 × 100 entries, 80\.0 KB\)\..*sparse=True"):
        jacc.jacobian(lambda X: np.linalg.qr(X)[0])(X)
    monkeypatch.setattr(costmodel, "available_memory", lambda: 8 * 100 * 100)  # the result fits, the plan not
    with pytest.raises(jacc.MemoryLimitError, match="largest local partial"):
        jacc.jacobian(lambda X: np.linalg.qr(X)[0])(X)


def test_a_dense_result_larger_than_the_budget_is_refused_before_it_is_allocated(monkeypatch):
    """A diagonal Jacobian's plan holds n values, its dense result n²: memory_limit bounds what the
    call allocates, so the result counts too; sparse=True returns the n entries within it."""
    from jacc import costmodel

    n = 3000
    x = np.linspace(0.0, 1.0, n)
    with pytest.raises(jacc.MemoryLimitError, match=r"72\.0 MB as dense arrays, more than the memory_limit of "
                       r"10\.0 MB.*3,000 × 3,000 entries.*Pass sparse=True"):
        jacc.jacobian(np.sin, memory_limit=10_000_000)(x)
    J, peak = peak_memory(lambda: jacc.jacobian(np.sin, memory_limit=10_000_000, sparse=True)(x))
    assert J.nnz == n and peak < 10_000_000
    np.testing.assert_allclose(J.diagonal(), np.cos(x))
    assert jacc.jacobian(np.sin, memory_limit=8 * n * n + 10**6)(x).shape == (n, n)  # it fits: it runs
    monkeypatch.setattr(costmodel, "available_memory", lambda: 8 * n * n - 1)  # no limit: what the machine has
    with pytest.raises(jacc.MemoryLimitError, match="this machine has available"):
        jacc.jacobian(np.sin)(x)


def test_a_sparse_result_larger_than_the_budget_is_refused_before_it_is_allocated(monkeypatch):
    """sparse=True skipped the check: a dense Jacobian's CSR form (12 bytes per entry) came back
    under a memory_limit that its dense array (8 bytes per entry) would have kept."""
    from jacc import costmodel

    A = np.random.default_rng(0).normal(size=(1024, 1024))
    X = np.ones(1024)
    f = lambda x: A @ x  # noqa: E731  (the Jacobian is A: no step, the plan holds 8.4 MB)
    with pytest.raises(jacc.MemoryLimitError, match=r"even as sparse matrices the Jacobian takes at least 12\.6 MB "
                       r".*more than the memory_limit of 10\.0 MB.*1,048,576 stored entries of 1,048,576.*"
                       r"pass sparse=False \(its dense arrays take 8\.4 MB\)"):
        jacc.jacobian(f, memory_limit=10_000_000, sparse=True)(X)
    assert jacc.jacobian(f, memory_limit=10_000_000)(X).shape == (1024, 1024)
    J = jacc.jacobian(f, memory_limit=13_000_000, sparse=True)(X)
    assert J.nnz == 1024 ** 2 and J.data.nbytes + J.indices.nbytes + J.indptr.nbytes <= 12_587_012  # the estimate
    n = 3000  # a diagonal: the estimate follows the stored entries, not the dense size
    monkeypatch.setattr(costmodel, "available_memory", lambda: 30_000)
    with pytest.raises(jacc.MemoryLimitError, match=r"at least 48\.0 KB.*the 30\.0 KB this machine has available.*"
                       r"3,000 stored entries of 9,000,000.*differentiate smaller"):
        jacc.jacobian(np.sin, sparse=True)(np.ones(n))
    monkeypatch.setattr(costmodel, "available_memory", lambda: 60_000)
    assert jacc.jacobian(np.sin, sparse=True)(np.ones(n)).nnz == n


def test_the_memory_refusal_names_a_partial_the_plan_uses(monkeypatch):
    """A large eigh records its vectors' dense partial on an edge no plan uses (the network
    carries the derivative): the refusal must not blame it."""
    from jacc import costmodel

    X = np.random.default_rng(1).normal(size=(10, 10))
    f = lambda X: np.sum(np.linalg.eigh(X @ X.T + np.eye(10))[1] ** 2) + np.sum(np.linalg.qr(X[:5, :5])[0])  # noqa: E731
    g = jacc.trace(f, X)
    dead = [(u, v) for u, v in g.nx.edges if g.op(v) == "eigh_vectors"]
    assert dead and g.partial(*dead[0]).nbytes == 8 * 10**4  # the largest partial in the graph
    monkeypatch.setattr(costmodel, "available_memory", lambda: 8 * 100)  # the gradient fits, the plan not
    with pytest.raises(jacc.MemoryLimitError, match="largest local partial") as e:
        jacc.jacobian(f)(X)
    assert "eigh_vectors" not in str(e.value) and "qr_q" in str(e.value)


def test_a_call_holds_no_more_jacobian_memory_than_its_plan_predicts():
    """The memory model counted live Jacobians between steps only: the attention's plan said
    8.9 MB and a call held 17.4 MB (a step's product beside the edge it is added to), so a 10 MB
    memory_limit let it through. Steps now count their products and sums while they run."""
    import tracemalloc

    p = suite.get("attention", "full")
    X = p.make_inputs()["X"]
    # the optimal order (a loaded machine's 1 s planning budget can end before it is proven);
    # other orders hold up to a third more: a product whose operand BLAS needs in another layout
    # copies it first, which the model does not see (docs/cost-model.md)
    jf = jacc.jacobian(p.fn, strategy="optimal", retrace=False, backend="numpy", time_limit=60)
    jf(X)
    assert jf.plan.optimal is True
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        jf(X)
        held = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert jf.plan.peak_bytes > 16_000_000  # two 8 MiB Jacobians at once in the last steps
    assert held <= jf.plan.peak_bytes + 100_000  # (Python objects)
    with pytest.raises(jacc.MemoryLimitError, match="memory limit"):
        jacc.jacobian(p.fn, memory_limit=10_000_000)(X)


def test_tracing_and_planning_pause_the_cyclic_collector_and_restore_it(monkeypatch):
    """Paused, tracing and planning a 10⁵-vertex scalar graph take a fifth to two fifths less time
    (jacc.collector); the collector must come back on, also after an error, and stay off when the
    caller had turned it off."""
    import gc

    seen = []

    def f(x):
        seen.append(gc.isenabled())
        return np.sin(x) * x

    g = jacc.trace(f, np.ones(3))
    assert seen == [False] and gc.isenabled()

    def probe(problem, cost_model, *, time_limit=None):
        seen.append(gc.isenabled())
        return list(problem.eliminable)

    def failing(problem, cost_model, *, time_limit=None):
        raise RuntimeError("a strategy's own error")

    monkeypatch.setitem(jacc.STRATEGIES, "probe", probe)
    monkeypatch.setitem(jacc.STRATEGIES, "failing", failing)
    jacc.plan(g, "probe")
    jf = jacc.jacobian(lambda x: np.tanh(x) * x, strategy="probe", backend="numpy")  # (no scalar route)
    jf(np.ones(4))
    assert seen == [False, False, False] and gc.isenabled()
    with pytest.raises(RuntimeError, match="own error"):
        jacc.plan(g, "failing")
    assert gc.isenabled()
    gc.disable()
    try:
        jacc.plan(g, "probe")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_finding_the_copies_is_dropped_when_the_deadline_passes(monkeypatch):
    """Sorting the groups into classes of copies takes about a second on 10⁵ vertices: past the
    deadline a decomposed search returns the priced naive order, and auto sizes its search by all
    the vertices (it ran the sorting unchecked: time_limit=1 on RoeFlux over 1,000 interfaces at
    scalar level ended after 3.7–4.2 s instead of 2.7–2.9 s)."""
    import jacc.strategies as st

    def late(problem, subs):
        raise budget.TimeUp

    g = jacc.trace(lambda x: np.sin(x) * np.cos(x) + np.exp(x) * x ** 2, np.ones(600), scalarize=True)
    monkeypatch.setattr(st, "alike", late)
    p = jacc.plan(g, "anneal", time_limit=5)
    assert "before the search began" in p.info["stopped early"] and p.mults == jacc.plan(g, "reverse").mults
    a = jacc.plan(g, "auto", time_limit=5)
    assert "window: " in a.info["tried"]  # (3,600 vertices: the size table's window search)


@pytest.mark.parametrize("elimination", ["edge", "face"])
@pytest.mark.parametrize("strategy", ["forward", "reverse", "greedy"])
def test_edge_and_face_heuristics_take_a_time_limit(elimination, strategy):
    # they refused it with a TypeError, though every strategy takes one
    g = examples.random_graph(2, 12, 2, seed=1)
    p = jacc.plan(g, strategy, elimination=elimination, time_limit=5.0)
    assert p.mults == jacc.plan(g, strategy, elimination=elimination).mults


def test_a_proof_finished_just_before_the_deadline_is_returned(monkeypatch):
    # the proof's order was priced (for the ties of smaller peak) outside any catch of the deadline:
    # budget.TimeUp reached the caller of jacc.plan(g, "optimal")
    import jacc.strategies.optimal as O

    g = examples.random_graph(3, 12, 3, seed=0, width=2, fan_in=4)  # arrays: the ties are searched
    real, calls = O.astar, []

    def proof_then_late(*args, **kwargs):
        r = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # a busy machine pauses right after the proof
            while not budget.expired():
                time.sleep(0.001)
        return r

    monkeypatch.setattr(O, "astar", proof_then_late)
    p = jacc.plan(g, "optimal", time_limit=0.5)
    assert p.optimal and p.mults == jacc.plan(g, "optimal").mults


def test_edge_greedy_past_its_deadline_finishes_with_the_forward_order():
    g = examples.random_graph(6, 1500, 6, seed=3, width=3, fan_in=6)  # 24 s of greedy moves unbounded
    t = time.perf_counter()
    p = jacc.plan(g, "greedy", elimination="edge", time_limit=0.3)
    assert time.perf_counter() - t < 10 and "stopped early" in p.info
    values = {x: np.random.default_rng(0).standard_normal(g.shape(x)) for x in g.inputs}
    got, want = p.execute(**values), jacc.plan(g, "reverse").execute(**values)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-9)


def test_face_heuristics_that_cannot_finish_in_time_say_so():
    g = examples.random_graph(6, 1500, 6, seed=3, width=3, fan_in=6)
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match="face elimination's 'greedy' did not finish within time_limit=0.2"):
        jacc.plan(g, "greedy", elimination="face", time_limit=0.2)  # (unbounded: 270 s)
    assert time.perf_counter() - t0 < 5
    # a fixed order's faces stop at the deadline too, rewriting the vertex order as edge moves first
    with pytest.raises(TimeoutError, match="'reverse' did not finish within time_limit=0.001"):
        jacc.plan(g, "reverse", elimination="face", time_limit=0.001)


def test_jacobians_planning_time_counts_the_set_up_and_its_limit_too(monkeypatch):
    # the set-up (Problem.from_graph) ran outside the limit and outside planning_seconds
    from jacc import api

    real = api.Problem.from_graph

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)

    monkeypatch.setattr(api.Problem, "from_graph", staticmethod(slow))
    seen = {}
    planning = sys.modules["jacc.plan"]
    real_choose = planning.choose

    def spy(problem, strategy, cm, options):
        seen.update(options)
        return real_choose(problem, strategy, cm, options)

    monkeypatch.setattr(planning, "choose", spy)
    jf = jacc.jacobian(lambda x: np.tanh(x) * x.sum(), time_limit=0.5, backend="numpy")
    jf(np.linspace(0.1, 1.0, 20))
    assert jf.plan.planning_seconds >= 0.3
    assert seen["time_limit"] <= 0.2 + 1e-9


def test_chain_under_a_memory_limit_does_not_blame_the_partials():
    # the segments' DP orders ignore memory; past the limit chain said the graph's own partials
    # "already take 9.4 GB" (they take far less) — now Markowitz orders every vertex under it
    p = suite.get("mlp", "small")
    g = jacc.trace(p.fn, *p.make_inputs(0).values(), xp=np)
    limit = jacc.plan(g, "reverse").peak_bytes * 4
    try:
        plan = jacc.plan(g, "chain", memory_limit=limit)
    except jacc.MemoryLimitError as e:
        assert "already take" not in str(e)
    else:
        assert plan.peak_bytes <= limit


def test_a_search_stopped_before_it_fits_the_memory_limit_says_so():
    """The error blamed memory and suggested optimal itself, where its search ran out of time (an
    order of 400 bytes fits this 410-byte limit; optimal finds it given about 25 s)."""
    from jacc.plan import MemoryLimitError

    g = examples.random_graph(3, 20, 2, seed=5, width=3)
    with pytest.raises(MemoryLimitError, match=r"its search stopped \(.*time limit.*\).*raise time_limit"):
        jacc.plan(g, "optimal", memory_limit=410, time_limit=0.5)


def test_a_sum_of_two_transposed_terms_is_written_into_one_of_them():
    # forward through X Xᵀ: the partial's two Kronecker terms become dense n² × n² blocks, each
    # transposed before their sum; the sum made a third block (1.5× the predicted peak, so a
    # memory_limit between the two let the call exceed it) until it was written into the first
    n = 30
    X = np.random.default_rng(1).normal(size=(n, n))
    f = lambda X: np.tanh(X @ X.T).sum()  # noqa: E731
    jf = jacc.jacobian(f, strategy="forward", backend="numpy", retrace=False, memory_limit=14_000_000)
    jf(X)
    J, peak = peak_memory(lambda: jf(X + 0.1))
    assert jf.ran == "numpy"
    assert peak <= 1.05 * jf.plan.peak_bytes <= 1.05 * 14_000_000, (peak, jf.plan.peak_bytes)
    want = jacc.jacobian(f, backend="interpret")(X + 0.1)
    # (the program's tanh is libmvec's where it runs, a few ulps from NumPy's: jacc.vecmath; an entry
    # summed from terms of order 1 down to 1e-3 keeps those ulps, relative to the Jacobian's scale)
    np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("f", [lambda X: X @ X.T, lambda X: X.T @ np.diag(np.arange(30.0)) @ X])
def test_a_sum_of_two_kronecker_terms_is_one_block(f):
    # ∂(X Xᵀ)/∂X is two Kronecker terms: each was written out as a dense n² × n² block before
    # their sum (twice the plan's peak); the second is now added onto the first's diagonal
    X = np.random.default_rng(0).normal(size=(30, 30))
    jf = jacc.jacobian(f, memory_limit=6_900_000)
    jf(X)
    jf(X + 1.0)
    J, peak = peak_memory(lambda: jf(X + 0.5))
    assert jf.ran == "numpy" and jf.plan.peak_bytes < 6_900_000
    assert peak <= 1.1 * jf.plan.peak_bytes, (peak, jf.plan.peak_bytes)
    np.testing.assert_allclose(J, jacc.jacobian(f, backend="interpret")(X + 0.5), rtol=1e-12, atol=1e-12)


def test_a_gathers_block_is_placed_in_its_final_layout():
    # placed row-wise and transposed, the block was copied whole when flattened (2× the plan's peak)
    rng = np.random.default_rng(0)
    idx, perm = rng.integers(0, 400, size=600), rng.permutation(400)
    f = lambda x: np.sin(x)[idx] * x[perm].sum()  # noqa: E731
    x = rng.normal(size=400)
    jf = jacc.jacobian(f, retrace=False)
    jf(x)
    J, peak = peak_memory(lambda: jf(x + 1.0))
    assert jf.ran == "numpy" and peak <= 1.1 * jf.plan.peak_bytes, (peak, jf.plan.peak_bytes)
    np.testing.assert_allclose(J, jacc.jacobian(f, backend="interpret")(x + 1.0), rtol=1e-13)


@pytest.mark.parametrize("f", [
    lambda x: np.concatenate([np.sin(x), np.outer(x[:40], x[:40]).ravel(), np.cumsum(x)]),  # scattered pieces
    lambda x: np.concatenate([np.sin(x), np.cos(x[:100]) * 2.0, x[::-1] ** 2]),  # blocks of rows
])
def test_a_concatenations_pieces_are_added_into_one_block(f):
    # each piece's term was np.where(mask, v, 0) of the whole Jacobian's size, then summed: 2.6× the peak
    x = np.random.default_rng(0).normal(size=400)
    jf = jacc.jacobian(f, retrace=False, strategy="forward")
    jf(x)
    J, peak = peak_memory(lambda: jf(x + 1.0))
    held = max(jf.plan.peak_bytes, J.nbytes)  # (structured blocks: the dense result is the larger)
    assert jf.ran == "numpy" and peak <= 1.1 * held, (peak, jf.plan.peak_bytes, J.nbytes)
    np.testing.assert_allclose(J, jacc.jacobian(f, backend="interpret", strategy="forward")(x + 1.0), rtol=1e-13)


def test_a_float32_jacobian_is_held_to_the_limit_in_float32_bytes(monkeypatch):
    """Every entry was counted as 8 bytes: float32 Jacobians of 4 MB were refused under a 6 MB
    limit, by the result's check (np.sin) and by the planner (x·Σx), and np.sin's on 10⁵ points
    was said to take 80 GB (it takes 40)."""
    from jacc import costmodel

    n = 1000
    J = jacc.jacobian(np.sin, dtype=np.float32, memory_limit=6_000_000)(np.zeros(n, np.float32))
    assert J.dtype == np.float32 and J.nbytes == 4 * n * n
    np.testing.assert_array_equal(np.diag(J), 1.0)
    J = jacc.jacobian(lambda x: x * x.sum(), dtype=np.float32, memory_limit=6_000_000)(np.ones(1024, np.float32))
    assert J.nbytes == 4 * 1024 * 1024 and J[0, 1] == 1.0 and J[0, 0] == 1025.0
    with pytest.raises(jacc.MemoryLimitError, match=r"takes 4\.0 MB as dense arrays, more than the memory_limit of 3\.0 MB"):
        jacc.jacobian(np.sin, dtype=np.float32, memory_limit=3_000_000)(np.zeros(n, np.float32))
    monkeypatch.setattr(costmodel, "available_memory", lambda: 10**9)
    with pytest.raises(jacc.MemoryLimitError, match=r"takes 40\.0 GB as dense arrays"):
        jacc.jacobian(np.sin, dtype=np.float32)(np.zeros(10**5, np.float32))
    with pytest.raises(jacc.MemoryLimitError, match=r"at least 8\.0 MB \(CSR: 8 bytes per stored entry\)"):
        jacc.jacobian(lambda x: x * x.sum(), dtype=np.float32, memory_limit=6_000_000,
                      sparse=True)(np.ones(1000, np.float32))
    assert costmodel.CostModel(memory_limit=100, value_bytes=4).fits(200)
    assert not costmodel.CostModel(memory_limit=100).fits(200)
