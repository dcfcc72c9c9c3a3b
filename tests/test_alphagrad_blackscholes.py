"""graphs/alphagrad_blackscholes_jacobian.json: AlphaGrad's Black–Scholes task (the first-order
Jacobian of the call price by a reverse sweep, one option, scalar level), traced once and kept
as a graph file so the figures in docs/benchmarks.md can be reproduced without SciPy."""

import os

import numpy as np
import pytest

import jacc

GRAPH = os.path.join(os.path.dirname(__file__), "..", "graphs", "alphagrad_blackscholes_jacobian.json")
ALPHAGRAD = 11.0  # % improvement over min(forward, reverse, Markowitz), Lohoff & Neftci 2024


def test_the_graph_and_its_naive_orders():
    g = jacc.load(GRAPH)
    assert g.inputs == ["S", "K", "r", "sigma", "T"] and len(g.outputs) == 5
    assert [jacc.plan(g, s).mults for s in ("forward", "reverse", "markowitz")] == [306, 297, 255]
    # the graph computes the price's gradient: against central differences of the price
    S, K, r, sigma, T = 100.0, 100.0, 0.02, 0.2, 1.0
    vals = g.evaluate(dict(zip(g.inputs, [S, K, r, sigma, T])))
    got = [float(vals[o]) for o in g.outputs]

    def price(S, K, r, sigma, T):
        from math import erf, exp, log, sqrt

        F = exp(r * T) * S
        d1 = (log(F / K) + sigma ** 2 / 2 * T) / (sigma * sqrt(T))
        d2 = d1 - sigma * sqrt(T)
        phi = lambda z: (1 + erf(z / sqrt(2))) / 2  # noqa: E731
        return exp(-r * T) * (F * phi(d1) - K * phi(d2))

    x = np.array([S, K, r, sigma, T])
    for k in range(5):
        h = 1e-6 * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        assert got[k] == pytest.approx((price(*up) - price(*down)) / (2 * h), rel=1e-6, abs=1e-7)


@pytest.mark.slow
def test_anneal_beats_alphagrads_improvement():
    g = jacc.load(GRAPH)
    naive = min(jacc.plan(g, s).mults for s in ("forward", "reverse", "markowitz"))
    best = jacc.plan(g, "anneal", seed=0, max_iters=4000, time_limit=60)
    assert best.mults == 207
    assert 100 * (1 - best.mults / naive) >= ALPHAGRAD
