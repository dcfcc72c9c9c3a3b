"""Planning benchmarks: figures as ratios measured in one run (``jacc bench --planning``).

* ``chain``: jacc's vectorised matrix-chain DP against numpy's own ``multi_dot`` ordering
  routine at n links (same cost required);
* ``markowitz``: planning time on random scalar graphs of 10⁴ and 10⁵ vertices and the growth
  factor (linear growth would be ×10);
* ``optimal``: the exact search on random graphs with 15 and 20 eliminable vertices (scalar and
  3-vectors): time, sets explored, and the gain over min(forward, reverse, markowitz);
* ``batch``: the Black–Scholes batch at scalar level (1,000 copies of one option's group): tracing
  time, and Markowitz, ``window`` and ``anneal`` (searched once per class of copies).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

from . import chain as mchain
from .costmodel import CostModel
from .eliminate import Problem
from .examples import random_graph
from .plan import plan
from .strategies import run_strategy


def _median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_chain(out=print, n: int = 300, repeats: int = 3) -> dict:
    dims = [int(x) for x in np.random.default_rng(0).integers(1, 101, n + 1)]
    t_j, res = _median(lambda: mchain.matrix_chain_order(dims), repeats)
    np_fn = mchain.numpy_chain_order_fn()
    fig = {"n": n, "jacc_s": t_j, "cost": res.cost}
    if np_fn is None:
        out(f"chain DP n={n}: jacc {t_j:.3f} s; numpy's ordering routine is not available here")
        return fig
    arrays = [np.empty((dims[i], dims[i + 1]), dtype=np.float64) for i in range(n)]
    t_n, _ = _median(lambda: np_fn(arrays), max(1, repeats - 2))
    same = mchain.multi_dot_cost(dims) == res.cost
    fig.update(numpy_s=t_n, ratio=t_n / t_j, same_cost=same)
    out(f"chain DP n={n}: jacc {t_j:.3f} s, numpy multi_dot ordering {t_n:.3f} s, "
        f"{t_n / t_j:.1f}x faster, same cost: {same}")
    t_big, big = _median(lambda: mchain.matrix_chain_order(
        [int(x) for x in np.random.default_rng(1).integers(1, 101, 1001)]), 1)
    fig.update(n1000_s=t_big)
    out(f"chain DP n=1000: jacc {t_big:.3f} s")
    return fig


def bench_markowitz(out=print, sizes=(10**4, 10**5)) -> dict:
    fig: dict = {}
    for p_far in (0.01, 0.25):
        out(f"random scalar graphs, {100 * p_far:g}% of arguments drawn from anywhere, the rest local:")
        fig[p_far] = _markowitz_sizes(out, sizes, p_far)
    return fig


def _markowitz_sizes(out, sizes, p_far: float) -> dict:
    fig: dict = {}
    prev = prev_n = None
    for n in sizes:
        g = random_graph(100, n, 100, seed=1, p_far=p_far)
        t0 = time.perf_counter()
        prob = Problem.from_graph(g)
        prob.eliminator()
        t_prep = time.perf_counter() - t0
        t, order = _median(lambda: run_strategy("markowitz", prob, CostModel()), 1)
        fig[n] = {"vertices": len(g), "eliminable": len(prob.eliminable), "prepare_s": t_prep, "plan_s": t}
        growth = f", growth ×{t / prev:.1f} for ×{n // prev_n} vertices" if prev else ""
        out(f"  markowitz on {len(g):,}-vertex graph ({len(prob.eliminable):,} eliminable): "
            f"{t:.2f} s (+{t_prep:.2f} s building symbolic edges){growth}")
        prev, prev_n = t, n
    return fig


def _graph_with(target: int, width: int, seed: int):
    rng = np.random.default_rng(seed)
    while True:
        g = random_graph(3, target + 6, 2, seed=int(rng.integers(10**6)), width=width, fan_in=5)
        if len(Problem.from_graph(g).eliminable) == target:
            return g


def bench_optimal(out=print, sizes=(15, 20), time_limit: float = 120.0) -> dict:
    fig: dict = {}
    for n in sizes:
        for width in (0, 3):
            g = _graph_with(n, width, n)
            t0 = time.perf_counter()
            p = plan(g, "optimal", time_limit=time_limit)
            t = time.perf_counter() - t0
            base = min(plan(g, s).mults for s in ("forward", "reverse", "markowitz"))
            kind = "scalar" if not width else f"{width}-vector"
            fig[f"{n}_{kind}"] = {"seconds": t, "mults": p.mults, "baseline": base, "proven": p.optimal,
                                  "sets": p.info.get("sets explored")}
            out(f"optimal, {n} eliminable ({kind}): {t:.2f} s, {p.info.get('sets explored'):,} sets, "
                f"{p.mults:,} mults vs {base:,} for min(fwd, rev, markowitz) "
                f"({100 * (1 - p.mults / base):.0f}% cheaper), proven optimal: {p.optimal}")
    return fig


def bench_batch(out=print, size: str = "full", strategies=("markowitz", "window", "anneal")) -> dict:
    """The suite's Black–Scholes batch traced at scalar level (1,000 options at ``size="full"``, 8 at
    ``"small"``): every option is a copy of one independent group, which the decomposed searches
    search once (:func:`jacc.strategies.copies`). Tracing time, then each strategy's mults and time."""
    from .strategies import copies
    from .suite import get
    from .trace import trace

    bs = get("blackscholes", size)
    inputs = bs.make_inputs(0)
    t0 = time.perf_counter()
    g = trace(bs.fn, *inputs.values(), xp=np, scalarize=True)
    t_trace = time.perf_counter() - t0
    problem = Problem.from_graph(g)
    groups, _, classes = copies(problem)
    n = len(problem.eliminable)
    out(f"Black–Scholes batch at scalar level: {len(g):,} vertices ({n:,} eliminable) traced in {t_trace:.2f} s; "
        f"{len(groups):,} independent groups, {len(classes):,} up to relabelling")
    fig: dict = {"vertices": len(g), "eliminable": n, "groups": len(groups), "classes": len(classes),
                 "trace_s": t_trace}
    for name in strategies:
        t0 = time.perf_counter()
        p = plan(g, name)
        t = time.perf_counter() - t0
        fig[name] = {"mults": p.mults, "seconds": t}
        out(f"  {name}: {p.mults:,} mults in {t:.2f} s")
    return fig


def run(out=print, quick: bool = False) -> dict:
    """All planning benchmarks (``quick``: small sizes, for tests)."""
    if quick:
        return {"chain": bench_chain(out, n=60, repeats=1),
                "markowitz": bench_markowitz(out, sizes=(500, 5000)),
                "optimal": bench_optimal(out, sizes=(8,), time_limit=10),
                "batch": bench_batch(out, "small")}
    return {"chain": bench_chain(out), "markowitz": bench_markowitz(out), "optimal": bench_optimal(out),
            "batch": bench_batch(out)}


if __name__ == "__main__":
    run()
