"""jacc.matrix_free: the matrix-free Jacobian chain DP against brute force and closed forms."""

from __future__ import annotations

from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc
from jacc.matrix_free import matrix_free_chain_order

BIG = 10**12


def brute_force(dims, tangent, adjoint):
    """Every cost any plan can reach, segment by segment (a set per segment, no minimum taken
    before the end), so it shares nothing with the DP but the problem statement."""
    n = len(dims) - 1

    @lru_cache(maxsize=None)
    def reachable(i, j):
        out = {dims[j + 1] * sum(tangent[i:j + 1]), dims[i] * sum(adjoint[i:j + 1])}
        for k in range(i, j):
            left, right = reachable(i, k), reachable(k + 1, j)
            dense = dims[i] * dims[k + 1] * dims[j + 1]
            out |= {x + y + dense for x in left for y in right}
            out |= {y + dims[j + 1] * sum(tangent[i:k + 1]) for y in right}
            out |= {x + dims[i] * sum(adjoint[k + 1:j + 1]) for x in left}
        return frozenset(out)

    return min(reachable(0, n - 1))


@st.composite
def chains(draw, max_n=7):
    n = draw(st.integers(1, max_n))
    dims = draw(st.lists(st.integers(1, 6), min_size=n + 1, max_size=n + 1))
    costs = st.lists(st.integers(0, 12), min_size=n, max_size=n)
    return dims, draw(costs), draw(costs)


@settings(max_examples=150, deadline=None)
@given(chains())
def test_equals_brute_force(chain):
    dims, t, a = chain
    r = matrix_free_chain_order(dims, t, a)
    assert r.cost == brute_force(dims, t, a)
    assert r.plan.total == r.cost and type(r.cost) is int


@settings(max_examples=40, deadline=None)
@given(chains(max_n=8))
def test_reduces_to_the_dense_chain_when_matrix_free_products_are_prohibitive(chain):
    dims, _, _ = chain
    n = len(dims) - 1
    r = matrix_free_chain_order(dims, [BIG] * n, [BIG] * n, accumulated=[0] * n)
    assert r.cost == jacc.matrix_chain_order(dims).cost


def test_a_single_input_column_is_one_tangent_sweep():
    dims, t = [7, 5, 9, 4, 1], [35, 45, 36, 4]  # tangent cost = the matrix's size
    r = matrix_free_chain_order(dims, t, [10 * x for x in t])
    assert (r.plan.mode, r.plan.parts, r.cost) == ("tangent", (), sum(t))
    r = matrix_free_chain_order(dims[::-1], [10 * x for x in t[::-1]], t[::-1])
    assert (r.plan.mode, r.plan.parts, r.cost) == ("adjoint", (), sum(t))


@pytest.mark.parametrize("N,P", [(2, 1), (3, 2), (10, 3), (7, 40)])
def test_lecture_chain_closed_forms(N, P):
    """L = f(K(D(θ))): factors 1×N², N²×N², N²×P; one product costs the factor's nonzeros.
    Dense ∂K/∂D: reverse sweep N² + N⁴ + N²P, forward P·(N² + N⁴ + N²P); every plan touches
    each factor at least once with a multiplier ≥ 1 (d[0] = 1), so reverse is optimal."""
    dims = [1, N * N, N * N, P]
    dense = [N * N, N**4, N * N * P]
    r = matrix_free_chain_order(dims, dense, dense)
    assert r.cost == N**4 + N**2 * P + N**2 == dense[0] + dense[1] + dense[2]
    assert r.plan.mode == ("tangent" if P == 1 else "adjoint")  # P = 1: the two sweeps tie
    forward = matrix_free_chain_order(dims, dense, [BIG] * 3)
    # tangents only: one sweep per column of θ (splits tie with it; densifying ∂L/∂K adds N⁴)
    assert forward.cost == P * (N**2 + N**4 + N**2 * P) and forward.plan.mode == "tangent"
    elementwise = [N * N, N * N, N * N * P]
    assert matrix_free_chain_order(dims, elementwise, elementwise).cost == N**2 * P + 2 * N**2


def test_plan_prints_one_line_per_step():
    r = matrix_free_chain_order([4, 1, 4, 4], [4, 4, 16], [4, 4, 16])
    text = str(r)
    assert text.splitlines()[-1] == f"total {r.cost:,}"
    assert len(text.splitlines()) == _count(r.plan) + 1


def _count(step):
    return 1 + sum(_count(p) for p in step.parts)


@pytest.mark.parametrize("args,match", [
    (([3], [1], [1]), "dims must have at least 2"),
    (([3, 0], [1], [1]), r"dims\[1\] = 0 must be positive"),
    (([3, 2], [1, 2], [1]), "tangent_costs has 2 entries, expected 1"),
    (([3, 2], [1], []), "adjoint_costs has 0 entries, expected 1"),
    (([3, 2], [-1], [1]), r"tangent_costs\[0\] = -1 must be a non-negative integer"),
    (([3, 2], [1], [1.5]), r"adjoint_costs\[0\] = 1.5 must be a non-negative integer"),
    (([3, 2], [True], [1]), r"tangent_costs\[0\] = True"),
    (([3, 2], 5, [1]), "tangent_costs must be a sequence"),
])
def test_validation_names_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        matrix_free_chain_order(*args)


def test_accumulated_is_validated():
    with pytest.raises(ValueError, match=r"accumulated\[1\] = -2"):
        matrix_free_chain_order([2, 2, 2], [1, 1], [1, 1], accumulated=[0, -2])
