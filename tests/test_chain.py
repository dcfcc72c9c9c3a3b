"""Tests for jacc.chain (matrix-chain ordering)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    from jacc import chain
except Exception:  # package not assembled yet: load the module file directly
    _path = Path(__file__).resolve().parents[1] / "jacc" / "chain.py"
    _spec = importlib.util.spec_from_file_location("jacc_chain_standalone", _path)
    assert _spec is not None and _spec.loader is not None
    chain = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = chain  # dataclasses need the module registered
    _spec.loader.exec_module(chain)


def random_dims(rng: np.random.Generator, n: int, hi: int = 30) -> list[int]:
    return [int(x) for x in rng.integers(1, hi + 1, n + 1)]


def eval_tree(tree, mats):
    """Multiply along ``tree``; return (product, scalar multiplications)."""
    if isinstance(tree, tuple):
        a, ca = eval_tree(tree[0], mats)
        b, cb = eval_tree(tree[1], mats)
        return a @ b, ca + cb + a.shape[0] * a.shape[1] * b.shape[1]
    return mats[tree], 0


CASES = [(n, seed) for n in range(1, 10) for seed in range(4)]


@pytest.mark.parametrize("n,seed", CASES)
def test_cost_matches_brute_force_and_multi_dot(n: int, seed: int) -> None:
    dims = random_dims(np.random.default_rng(1000 * n + seed), n)
    r = chain.matrix_chain_order(dims)
    assert isinstance(r.cost, int)
    assert r.cost == chain.brute_force_chain(dims)
    assert r.cost == chain.multi_dot_cost(dims)
    assert r.cost == chain.bracket_cost(r.bracketing, dims)
    assert r.split.shape == (n, n)


@pytest.mark.parametrize("n,seed", [c for c in CASES if c[0] >= 2])
def test_bracketing_product_and_count(n: int, seed: int) -> None:
    rng = np.random.default_rng(7 * n + seed)
    dims = random_dims(rng, n, hi=6)
    mats = [rng.integers(-3, 4, (dims[i], dims[i + 1])) for i in range(n)]
    r = chain.matrix_chain_order(dims)
    prod, count = eval_tree(r.bracketing, mats)
    np.testing.assert_array_equal(prod, np.linalg.multi_dot(mats))
    assert count == r.cost


@pytest.mark.parametrize("n", [1, 2, 5, 9, 25])
def test_costfn_dense_equals_dp(n: int) -> None:
    dims = random_dims(np.random.default_rng(n), n, hi=50)
    a = chain.matrix_chain_order(dims)
    b = chain.chain_order_costfn(n, chain.dense_cost_fn(dims))
    assert a.cost == b.cost
    assert a.bracketing == b.bracketing  # same tie-breaking (lowest split)
    np.testing.assert_array_equal(a.split, b.split)


def test_costfn_structured() -> None:
    # Product of diagonal links is free-ish: cost 1 whenever both sides are
    # single matrices, else 100; the optimum then pairs leaves first.
    def cost(i: int, k: int, j: int) -> int:
        return 1 if (k == i and j == k + 1) else 100

    r = chain.chain_order_costfn(4, cost)
    assert r.cost == 1 + 1 + 100
    assert r.bracketing == ((0, 1), (2, 3))


def test_single_matrix() -> None:
    r = chain.matrix_chain_order([3, 4])
    assert r.cost == 0 and r.bracketing == 0 and str(r) == "A0"
    assert r.split.shape == (1, 1)
    assert chain.chain_order_costfn(1, lambda i, k, j: 1).cost == 0
    assert chain.brute_force_chain([3, 4]) == 0
    assert chain.multi_dot_cost([3, 4]) == 0


def test_known_example_and_str() -> None:
    r = chain.matrix_chain_order([10, 30, 5, 60])
    assert (r.cost, r.bracketing) == (4500, ((0, 1), 2))
    assert str(r) == "((A0 A1) A2)"
    assert chain.bracket_to_str(r.bracketing, names=["J", "K", "L"]) == "((J K) L)"
    # CLRS 15.2 example: 15125 with ((A1 (A2 A3)) ((A4 A5) A6))
    r = chain.matrix_chain_order([30, 35, 15, 5, 10, 20, 25])
    assert r.cost == 15125
    assert str(r) == "((A0 (A1 A2)) ((A3 A4) A5))"


def test_ties_lowest_split() -> None:
    r = chain.matrix_chain_order([2] * 5)
    assert r.bracketing == (0, (1, (2, 3)))


def test_large_dims_exact() -> None:
    # (n-1) * max^3 >= 2**62 forces the exact object-dtype path
    dims = [2**40, 3, 2**41, 5, 7, 2**39]
    r = chain.matrix_chain_order(dims)
    assert isinstance(r.cost, int)
    assert r.cost == chain.brute_force_chain(dims)
    assert r.cost == chain.chain_order_costfn(5, chain.dense_cost_fn(dims)).cost


def test_deep_tree_no_recursion_limit() -> None:
    n = 3 * sys.getrecursionlimit()
    split = np.full((n, n), -1, dtype=np.intp)
    i, j = np.triu_indices(n, 1)
    split[i, j] = i  # right-nested: (A0 (A1 (A2 ...)))
    tree = chain.split_to_bracket(split)
    s = chain.bracket_to_str(tree)
    assert s.startswith("(A0 (A1 ") and s.endswith(")" * (n - 1))
    assert chain.bracket_cost(tree, [1] * (n + 1)) == n - 1


def test_medium_chain_against_costfn() -> None:
    dims = random_dims(np.random.default_rng(42), 60, hi=100)
    assert chain.matrix_chain_order(dims).cost == chain.chain_order_costfn(
        60, chain.dense_cost_fn(dims)
    ).cost


@pytest.mark.parametrize(
    "dims,match",
    [
        ([], "at least 2"),
        ([5], "at least 2"),
        ([3, 0, 4], r"dims\[1\] = 0"),
        ([3, 4, -2], r"dims\[2\] = -2"),
        ([3, 2.5, 4], r"dims\[1\] = 2.5"),
        ([3, 4.0], r"dims\[1\] = 4.0"),
        (["3", 4], r"dims\[0\] = '3'"),
        ([True, 4], r"dims\[0\] = True"),
        (5, "sequence"),
    ],
)
def test_bad_dims(dims, match: str) -> None:
    for fn in (chain.matrix_chain_order, chain.brute_force_chain, chain.multi_dot_cost):
        with pytest.raises(ValueError, match=match):
            fn(dims)


def test_bad_n_and_bad_tree() -> None:
    for n in (0, -1, 2.0):
        with pytest.raises(ValueError, match="n must be"):
            chain.chain_order_costfn(n, lambda i, k, j: 1)
    with pytest.raises(ValueError, match="non-adjacent"):
        chain.bracket_cost(((0, 2), 1), [2, 3, 4, 5])
    with pytest.raises(ValueError, match="covers"):
        chain.bracket_cost((0, 1), [2, 3, 4, 5])


def test_numpy_dims_accepted() -> None:
    dims = np.array([10, 30, 5, 60], dtype=np.int32)
    assert chain.matrix_chain_order(dims).cost == 4500


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=8))
def test_hypothesis_brute_force(dims: list[int]) -> None:
    r = chain.matrix_chain_order(dims)
    assert r.cost == chain.brute_force_chain(dims) == chain.bracket_cost(r.bracketing, dims)
