"""The structured-Jacobian algebra against dense arithmetic."""

import math

import numpy as np
import pytest
from conftest import random_index, random_jac, random_selection, random_shape
from hypothesis import given, settings
from hypothesis import strategies as st

from jacc import structure as S


def shapes(rng):
    return random_shape(rng, 2)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_product_matches_dense_and_symbolic(seed):
    rng = np.random.default_rng(seed)
    w, v, u = shapes(rng), shapes(rng), shapes(rng)
    if rng.random() < 0.3:
        v = w
    if rng.random() < 0.3:
        u = v
    check_product(random_jac(rng, w, v), random_jac(rng, v, u))


def factored(rng, j):
    """``j`` with its value split into 2–3 random factors over overlapping label subsets."""
    if j.unit or len(j.vlabels) < 2 or j.reshape or j.select is not None or j.embed is not None:
        return j
    vl = list(j.vlabels)
    groups = [[lab for lab in vl if rng.random() < 0.6] for _ in range(int(rng.integers(2, 4)))]
    for lab in vl:  # every label in some factor
        if not any(lab in g for g in groups):
            groups[int(rng.integers(len(groups)))].append(lab)
    groups = [g for g in groups if g]
    vals = [rng.standard_normal([j.size_of(lab) for lab in g]) for g in groups]
    return S.Jac(j.out_shape, j.in_shape, j.pair, vl, factors=groups, fvalues=vals)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_factored_products_match_dense_and_never_cost_more(seed):
    rng = np.random.default_rng(seed)
    w, v, u = shapes(rng), shapes(rng), shapes(rng)
    if rng.random() < 0.3:
        v = w
    a, b = factored(rng, random_jac(rng, w, v)), factored(rng, random_jac(rng, v, u))
    mults = check_product(a, b)[1]  # factored pricing = the numeric count
    _, solid = S.product(a.solid(), b.solid())
    assert mults <= solid


def test_factored_value_is_multiplied_out_only_when_needed():
    rng = np.random.default_rng(0)
    inv, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    j = S.Jac((4,), (4, 4), None, [0, 1, 2], factors=[(0, 1), (2,)], fvalues=[inv, x])
    assert j.value_size == 20 and j._values is None and j.describe() == "dense 4×16 as factors 4×4, 4"
    g = S.dense((), (4,), rng.standard_normal(4))
    c, mults = S.product(g, j)  # (g·inv) ⊗ x: 16 + 16, not the 64 of the multiplied-out tensor
    assert mults == 32 and j._values is None
    np.testing.assert_allclose(c.to_dense(), np.einsum("i,ij,l->jl", g.values, inv, x))
    np.testing.assert_allclose(j.to_dense(), np.einsum("ij,l->ijl", inv, x))  # now multiplied out
    with pytest.raises(S.StructureError, match="cover"):
        S.Jac((4,), (4, 4), None, [0, 1, 2], factors=[(0, 1)], fvalues=[inv])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_add_matches_dense(seed):
    rng = np.random.default_rng(seed)
    w, v = shapes(rng), shapes(rng)
    a, b = random_jac(rng, w, v), random_jac(rng, w, v)
    c = S.add(a, b)
    np.testing.assert_allclose(c.to_dense(), a.to_dense() + b.to_dense(), atol=1e-12)
    cs = S.add(a.strip(), b.strip())
    assert (cs.pair, cs.vlabels) == (c.pair, c.vlabels)
    # a pair survives only where both terms keep it
    for k in range(len(v)):
        assert (c.pair[k] >= 0) == (a.pair[k] == b.pair[k] and a.pair[k] >= 0)


@pytest.mark.parametrize(
    "old,new",
    [((2, 3, 4), (2, 12)), ((6,), (2, 3)), ((4, 6), (6, 4)), ((2, 3), (3, 1, 2)), ((5,), (1, 5))],
)
def test_reshape_map_is_applied_lazily(old, new):
    rng = np.random.default_rng(0)
    r = S.reshape_map(new, old)
    np.testing.assert_allclose(r.to_dense(), np.eye(math.prod(old)).reshape(new + old))
    b = random_jac(rng, old, (3,))
    c, mults = S.product(r, b)
    assert mults == 0
    np.testing.assert_allclose(c.to_dense(), b.to_dense().reshape(new + (3,)))
    a = random_jac(rng, (2,), new)
    c, mults = S.product(a, r)
    assert mults == 0
    np.testing.assert_allclose(c.to_dense(), a.to_dense().reshape((2,) + old))
    back = S.reshape_map(old, new)
    rr, _ = S.product(back, r)
    np.testing.assert_allclose(rr.to_dense(), np.eye(math.prod(old)).reshape(old + old))
    np.testing.assert_allclose(S.add(r, r).to_dense(), 2 * r.to_dense())


def test_batch_prefix_of_reshape_stays_diagonal():
    r = S.reshape_map((7, 12), (7, 3, 4))
    d = S.diagonal((7, 3, 4), np.ones((7, 3, 4)))
    c, mults = S.product(r, d)
    assert mults == 0
    assert c.pair[0] == 0  # the batch axis is still an identity pair


def test_elementwise_chain_is_linear_not_quadratic():
    n = 1000
    j = S.diagonal((n,), np.full(n, 2.0))
    acc, total = j, 0
    for _ in range(5):
        acc, c = S.product(j, acc)
        total += c
    assert total == 5 * n
    assert acc.describe() == f"diag {n}"
    np.testing.assert_allclose(acc.values, 2.0**6)


def test_describe_names_common_structures():
    assert S.identity((4,)).describe() == "identity 4"
    assert S.diagonal((100,)).describe() == "diag 100"
    assert S.dense((100,), (20,)).describe() == "dense 100×20"
    assert S.scaled_identity((3,), 2.0).describe() == "scaled identity 3"


def test_shape_mismatch_is_reported():
    with pytest.raises(S.StructureError, match="cannot multiply"):
        S.product(S.identity((3,)), S.identity((4,)))
    with pytest.raises(S.StructureError, match="values have shape"):
        S.diagonal((3,), np.ones(4))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_selection_gather_and_scatter_match_dense(seed):
    from jacc.ops import index_to_numpy

    rng = np.random.default_rng(seed)
    u, index, v = random_selection(rng)
    if 0 in v:
        return
    sel = S.selection(v, u, index)
    dense_sel = np.zeros(v + u)
    flat = np.arange(int(np.prod(u))).reshape(u)[index_to_numpy(index)]
    for pos in np.ndindex(*v):
        dense_sel[pos + np.unravel_index(flat[pos], u)] = 1.0
    np.testing.assert_array_equal(sel.to_dense(), dense_sel)
    t, w = shapes(rng), shapes(rng)
    b = random_jac(rng, u, t)
    c, mults = S.product(sel, b)
    assert mults == 0
    np.testing.assert_allclose(c.to_dense(), np.tensordot(dense_sel, b.to_dense(), axes=len(u)), atol=1e-12)
    cs, _ = S.product(sel, b.strip() if not b.unit else b)
    assert (cs.pair, cs.vlabels) == (c.pair, c.vlabels)
    a = random_jac(rng, w, v)
    c, mults = S.product(a, sel)
    assert mults == 0
    expect = np.tensordot(a.to_dense(), dense_sel, axes=len(v)) if v else np.multiply.outer(a.to_dense(), dense_sel)
    np.testing.assert_allclose(c.to_dense(), expect, atol=1e-12)
    cs, _ = S.product(a.strip() if not a.unit else a, sel)
    assert (cs.pair, cs.vlabels) == (c.pair, c.vlabels)
    np.testing.assert_allclose(S.add(sel, sel).to_dense(), 2 * dense_sel)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_transpose_and_embedding_match_dense(seed):
    from jacc.ops import index_to_numpy

    rng = np.random.default_rng(seed)
    w, v = shapes(rng), shapes(rng)
    j = random_jac(rng, w, v)
    dj = j.to_dense()
    t = S.transpose(j)
    np.testing.assert_allclose(t.to_dense(), np.transpose(dj, list(range(len(w), len(w) + len(v))) + list(range(len(w)))))
    # an embedding is the transpose of a selection: x placed at y[index]
    y = tuple(int(x) for x in rng.choice([1, 2, 3], size=int(rng.integers(1, 4))))
    index = random_index(rng, y)
    x = np.empty(y)[index_to_numpy(index)].shape
    if 0 in x:
        return
    e = S.embedding(y, x, index)
    de = np.moveaxis(S.selection(x, y, index).to_dense(), list(range(len(x))), list(range(len(y), len(y) + len(x))))
    np.testing.assert_array_equal(e.to_dense(), de)
    t2 = shapes(rng)
    b = random_jac(rng, x, t2)
    c, mults = S.product(e, b)
    assert mults == 0
    np.testing.assert_allclose(c.to_dense(), np.tensordot(de, b.to_dense(), axes=len(x)), atol=1e-12)
    a = random_jac(rng, t2, y)
    c, mults = S.product(a, e)
    assert mults == 0
    expect = np.tensordot(a.to_dense(), de, axes=len(y))
    np.testing.assert_allclose(c.to_dense(), expect, atol=1e-12)
    cs, _ = S.product(a.strip() if not a.unit else a, e)
    assert (cs.pair, cs.vlabels) == (c.pair, c.vlabels)
    np.testing.assert_allclose(S.add(e, e).to_dense(), 2 * de)


def test_a_structural_map_times_factors_stays_factored():
    rng = np.random.default_rng(3)
    n = 5
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    # ∂A⁻¹/∂A-like: values A[i, k]·B[l, j] over (out i, j; in k, l), as two factors
    f = S.Jac((n, n), (n, n), None, [0, 1, 2, 3], factors=[(0, 2), (3, 1)], fvalues=[A, B])
    total = S.Jac((), (n, n), None)  # the sum over both axes: a structure without values
    c, mults = S.product(total, f)
    assert f._values is None  # never multiplied out
    assert c.factors is not None and c.value_size == 2 * n and mults == 0
    np.testing.assert_allclose(c.to_dense(), np.einsum("ijkl->kl", np.einsum("ik,lj->ijkl", A, B)))
    t = S.transpose(f)
    assert t.factors is not None and f._values is None
    np.testing.assert_allclose(t.to_dense(), np.moveaxis(f.to_dense(), [0, 1], [2, 3]))


def test_sum_of_an_inverse_never_builds_the_n4_partial():
    import tracemalloc

    import jacc

    n = 120
    A = np.random.default_rng(4).standard_normal((n, n)) / np.sqrt(n) + 3 * np.eye(n)
    jf = jacc.jacobian(lambda A: np.sum(np.linalg.inv(A)))
    tracemalloc.start()
    J = jf(A)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    Ai = np.linalg.inv(A)
    np.testing.assert_allclose(J, -Ai.T @ np.ones((n, n)) @ Ai.T, rtol=1e-10, atol=1e-12)
    assert peak < 50e6  # the n⁴ partial alone would be 1.6 GB


# -- lazy maps carrying values: a gather of a diagonal stays one value per element ---------------


def random_lazy(rng):
    """A bare lazy map: a basic selection, an advanced gather, a reshape, or an embedding of one."""
    kind = rng.integers(4)
    if kind == 0:
        u, index, v = random_selection(rng)
        lz = S.selection(v, u, index)
    elif kind == 1:
        u = tuple(int(x) for x in rng.choice([1, 2, 3, 4], size=int(rng.integers(1, 3))))
        through = [k for k in range(len(u)) if rng.random() < 0.4]
        gout = tuple(int(x) for x in rng.choice([2, 3, 5], size=int(rng.integers(1, 3))))
        out = tuple(u[k] for k in through) + gout
        pair = [through.index(k) if k in through else -1 for k in range(len(u))]
        n = math.prod(u[k] for k in range(len(u)) if k not in through)
        flat = rng.integers(0, n, size=gout)
        lz = S.take_selection(out, u, pair, flat, key=repr((out, u, pair, flat.tolist())))  # equal positions, equal key
    else:
        u = random_shape(rng, 3)
        v = tuple(rng.permutation(list(u) + [1] * int(rng.integers(2))))  # a size-1 axis makes a true reshape
        lz = S.reshape_map(v, u) if math.prod(v) else S.identity(u)
    if rng.random() < 0.4 and S._lazy(lz):
        lz = S.transpose(lz)
    return lz


def usable_lazy(rng):
    """``random_lazy``'s map when it is lazy and has no empty side, else None."""
    lz = random_lazy(rng)
    return lz if S._lazy(lz) and 0 not in lz.out_shape + lz.in_shape else None


def random_diag(rng, shape, nan=False):
    """A diagonal over ``shape`` varying along a random subset of its axes (a scalar: none)."""
    labels = [k for k in range(len(shape)) if rng.random() < 0.7]
    vals = rng.standard_normal([shape[k] for k in labels])
    if nan and vals.size:
        vals.flat[0] = np.nan
    return S.Jac(shape, shape, tuple(range(len(shape))), labels, vals)


def dense_product(a, b):
    axes = len(a.in_shape)
    return np.tensordot(a.to_dense(), b.to_dense(), axes=axes) if axes else np.multiply.outer(a.to_dense(), b.to_dense())


def check_product(a, b):
    """a·b equals the dense product; pricing the stripped pair gives the same count and structure."""
    c, mults = S.product(a, b)
    np.testing.assert_allclose(c.to_dense(), dense_product(a, b), atol=1e-12)
    cs, ms = S.product(a.strip() if not a.unit else a, b.strip() if not b.unit else b)
    assert ms == mults
    assert (cs.pair, cs.vlabels, cs.describe()) == (c.pair, c.vlabels, c.describe())
    return c, mults


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_a_lazy_map_carries_a_diagonal_on_either_side(seed):
    rng = np.random.default_rng(seed)
    lz = usable_lazy(rng)
    if lz is None:
        return
    middle = lz.in_shape if lz.embed is not None else lz.out_shape
    d_in, d_out = random_diag(rng, lz.in_shape), random_diag(rng, lz.out_shape)
    for a, b in ((d_out, lz), (lz, d_in)):
        c, mults = check_product(a, b)
        assert mults == 0 and S._valued(c)
        assert c.value_size <= math.prod(middle)  # one value per element, never a one-hot block
        np.testing.assert_allclose(S.transpose(c).to_dense(), S.transpose(S.as_labelled(c)).to_dense())
        np.testing.assert_allclose(S.negate(c).to_dense(), -c.to_dense())
        np.testing.assert_allclose(S.add(c, c).to_dense(), 2 * c.to_dense())  # same map: values summed
        assert S._valued(S.add(c, c))
        # and the valued map against any neighbour, on either side
        w, t = random_shape(rng), random_shape(rng)
        check_product(c, random_jac(rng, c.in_shape, t))
        check_product(random_jac(rng, w, c.out_shape), c)
        check_product(c, random_diag(rng, c.in_shape))
        check_product(random_diag(rng, c.out_shape), c)
        check_product(c, S.transpose(c))
        check_product(S.transpose(c), c)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_gathers_and_embeddings_with_values_compose(seed):
    """Chains of lazy maps and diagonals in every grouping agree with dense arithmetic."""
    rng = np.random.default_rng(seed)
    lz = usable_lazy(rng)
    if lz is None:
        return
    lt = S.transpose(lz)
    chain = [random_diag(rng, lz.out_shape), lz, random_diag(rng, lz.in_shape), lt, random_diag(rng, lz.out_shape), lz]
    left = chain[0]
    for j in chain[1:]:
        left, _ = check_product(left, j)
    right = chain[-1]
    for j in reversed(chain[:-1]):
        right, _ = check_product(j, right)
    np.testing.assert_allclose(left.to_dense(), right.to_dense(), atol=1e-12)


def _random_gather(rng, out_shape):
    """A gather onto ``out_shape`` from a random array: a basic selection or an advanced one."""
    if rng.random() < 0.5:
        u = tuple(int(x) for x in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        flat = rng.integers(0, math.prod(u), size=out_shape)
        return S.take_selection(out_shape, u, [-1] * len(u), flat, key=None)
    u, index, v = random_selection(rng)
    return S.selection(v, u, index) if v == out_shape else None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9))
def test_a_gather_meeting_a_placement_is_one_gather_with_holes(seed):
    """pad(x)[1:] (a selection after an embedding) and slices joined (an embedding after a
    gather) are one gather whose rows that read nothing are holes: never a one-hot block. It
    carries values, transposes, prices as it runs, and its sparse form stores the reads only."""
    from jacc.sparse import to_sparse

    rng = np.random.default_rng(seed)
    u, index, v = random_selection(rng)
    if 0 in u + v:
        return
    e = S.embedding(u, v, index)  # v placed into u
    w, g_index = None, random_index(rng, u)
    from jacc.ops import index_to_numpy

    w = np.empty(u)[index_to_numpy(g_index)].shape
    if 0 in w:
        return
    maps = [S.product(S.selection(w, u, g_index), e)[0]]  # read after the placement
    g = _random_gather(rng, v)
    if g is not None and S._lazy(g):
        maps.append(S.product(e, g)[0])  # place what a gather read
    for m in maps:
        if not S._lazy(m):  # (a placement and a read that compose to a plain map)
            continue
        expect = m.to_dense()
        shape = (math.prod(m.out_shape), math.prod(m.in_shape))
        sp = to_sparse(m, m.out_shape, m.in_shape)
        np.testing.assert_array_equal(sp.toarray(), expect.reshape(shape))
        assert sp.nnz == np.count_nonzero(expect)
        assert m.value_size == 0
        valued, _ = check_product(random_diag(rng, m.out_shape), m)
        np.testing.assert_array_equal(to_sparse(valued, m.out_shape, m.in_shape).toarray() != 0,
                                      expect.reshape(shape) != 0)
        for a, b in ((m, S.transpose(m)), (S.transpose(m), m), (valued, S.transpose(valued)),
                     (m, random_diag(rng, m.in_shape)), (S.transpose(valued), valued),
                     (random_jac(rng, random_shape(rng), m.out_shape), m), (m, random_jac(rng, m.in_shape, random_shape(rng)))):
            check_product(a, b)
        np.testing.assert_allclose(S.add(valued, valued).to_dense(), 2 * valued.to_dense())


def test_a_slice_of_a_padded_array_is_a_gather_with_holes():
    """∂(pad(x, 1)[:-1])/∂x: row 0 reads nothing, row i reads x[i − 1]."""
    n = 5
    pad = S.embedding((n + 2,), (n,), [["slice", 1, n + 1, 1]])
    m, mults = S.product(S.selection((n + 1,), (n + 2,), [["slice", None, n + 1, 1]]), pad)
    assert mults == 0 and isinstance(m.select, S.Take) and m.select.flat.tolist() == [-1, 0, 1, 2, 3, 4]
    np.testing.assert_array_equal(m.to_dense(), np.eye(n + 1, n, k=-1))
    with S.pricing():
        priced, _ = S.product(S.selection((n + 1,), (n + 2,), [["slice", None, n + 1, 1]]), pad)
    assert priced.describe() == m.describe()
    x = np.arange(1.0, n + 1)
    np.testing.assert_array_equal(S._apply_lazy(m, x), [0.0, 1, 2, 3, 4, 5])


def test_a_broadcast_read_through_a_selection_is_one_gather():
    """∂(x − x[0])/∂x's second term: broadcasting x[0] reads it n times, a gather (no one-hot row
    times a broadcast); a broadcast with values on its output side (∂(sin(x) / s)/∂s, a column)
    carries them on that gather; a column of a matrix broadcast along its rows likewise."""
    n = 5
    first = S.selection((), (n,), [["int", 0]])
    c, mults = check_product(S.Jac((n,), (), ()), first)
    assert mults == 0 and isinstance(c.select, S.Take) and c.select.flat.tolist() == [0] * n
    expect = np.zeros((n, n))
    expect[:, 0] = 1.0
    np.testing.assert_array_equal(c.to_dense(), expect)
    c, mults = check_product(S.dense((n,), (), np.arange(1.0, n + 1)), first)
    expect[:, 0] = np.arange(1.0, n + 1)
    assert mults == 0 and c.describe() == "select 5→5 with values 5"
    np.testing.assert_array_equal(c.to_dense(), expect)
    signed, mults = check_product(S.negate(S.Jac((n,), (), ())), first)  # ∂(x − x[0])/∂x[0] · ∂x[0]/∂x
    assert mults == 0 and S._lazy(signed) and signed.value_size == 1
    column = S.selection((4, 1), (4, 3), [["slice", None, None, 1], ["slice", 0, 1, 1]])
    c, mults = check_product(S.Jac((4, 3), (4, 1), (0, -1)), column)  # X[:, :1] broadcast to (4, 3)
    assert mults == 0 and S._lazy(c) and c.value_size == 0
    expect = np.zeros((4, 3, 4, 3))
    for i in range(4):
        expect[i, :, i, 0] = 1.0
    np.testing.assert_array_equal(c.to_dense(), expect)
    outer = S.Jac((4, 3), (4,), (0,), (1,), np.array([1.0, 2.0, -1.0]))  # ∂ outer(x, c)/∂x = I ⊗ c
    c, mults = check_product(S.reshape_map((12,), (4, 3)), outer)  # … raveled: a gather with values
    assert mults == 0 and S._valued(c) and c.value_size == 12
    np.testing.assert_array_equal(c.to_dense(), np.kron(np.eye(4), [[1.0], [2.0], [-1.0]]))


def test_a_nan_in_a_gathered_value_stays_in_its_own_entry():
    s = S.take_selection((3,), (4,), [-1], np.array([2, 0, 2]))
    d = S.diagonal((3,), np.array([np.nan, 2.0, 3.0]))
    c, _ = S.product(d, s)
    expect = np.zeros((3, 4))
    expect[[0, 1, 2], [2, 0, 2]] = [np.nan, 2.0, 3.0]
    np.testing.assert_array_equal(c.to_dense(), expect)  # not a row of NaN: written, not multiplied
    assert c.describe() == "select 4→3 with values 3"


def test_an_embedding_times_a_gather_sums_its_nonzeros():
    """∂ bincount(rows, w * x[cols]) / ∂x: a sparse matrix made dense, with no one-hot block."""
    rows, cols, w = np.array([0, 2, 2, 0]), np.array([1, 1, 3, 1]), np.array([1.0, 2.0, 3.0, 4.0])
    g = S.product(S.diagonal((4,), w), S.take_selection((4,), (5,), [-1], cols))[0]
    e = S.transpose(S.take_selection((4,), (3,), [-1], rows))
    c, mults = check_product(e, g)
    expect = np.zeros((3, 5))
    np.add.at(expect, (rows, cols), w)
    np.testing.assert_array_equal(c.to_dense(), expect)
    assert mults == 0 and c.describe() == "dense 3×5"
    c, mults = check_product(S.product(e, S.diagonal((4,), w))[0], g)  # values on both sides
    np.add.at(expect, (rows, cols), w * w - w)
    np.testing.assert_allclose(c.to_dense(), expect)
    assert mults == 4


def test_two_gathers_by_the_same_index_sum_as_one():
    """Equal keys (the tracer's digest of an index) let two gathers' values add; different or
    missing keys fall back to a labelled sum, correct either way."""
    flat = np.array([1, 0, 1])
    one = S.product(S.diagonal((3,), np.arange(3.0)), S.take_selection((3,), (2,), [-1], flat, key="k"))[0]
    two = S.product(S.diagonal((3,), np.ones(3)), S.take_selection((3,), (2,), [-1], flat, key="k"))[0]
    other = S.product(S.diagonal((3,), np.ones(3)), S.take_selection((3,), (2,), [-1], flat))[0]
    s = S.add(one, two)
    assert S._valued(s) and s.value_size == 3
    np.testing.assert_array_equal(s.to_dense(), one.to_dense() + two.to_dense())
    s = S.add(one, other)
    assert not S._valued(s)
    np.testing.assert_array_equal(s.to_dense(), one.to_dense() + other.to_dense())


def random_stencil(rng):
    """A sum of 2–4 scaled windows, gathers and (where the window is the whole array) diagonals
    of one array: the partial of a stencil."""
    n, m = int(rng.integers(3, 7)), int(rng.integers(1, 3))
    width = int(rng.integers(1, n + 1))
    u, v = (n, m), (width, m)
    terms = []
    for _ in range(int(rng.integers(2, 5))):
        if width == n and rng.random() < 0.4:  # sin(u) + u[::-1]: a diagonal joins the sum
            terms.append(random_diag(rng, u) if rng.random() < 0.7 else S.identity(u))
            continue
        if rng.random() < 0.6:  # a window along axis 0, the other axis passed through
            k = int(rng.integers(0, n - width + 1))
            lz = S.selection(v, u, [["slice", k, k + width, 1], ["slice", None, None, None]])
        else:
            flat = rng.integers(0, 2, size=width)  # few choices: equal gathers meet and merge
            lz = S.take_selection(v, u, [-1, 1], flat, key=repr(flat.tolist()))
        if rng.random() < 0.8:
            lz = S.product(random_diag(rng, v), lz)[0]
        terms.append(lz)
    total = terms[0]
    for t in terms[1:]:
        total = S.add(total, t)
    return terms, total


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_a_sum_of_lazy_maps_stays_a_sum_of_terms(seed):
    """u[2:] − 2·u[1:-1] + u[:-2]: the sum keeps each term's one value per row, and products
    with it distribute over the terms, priced as executed."""
    from jacc.sparse import to_sparse

    rng = np.random.default_rng(seed)
    terms, total = random_stencil(rng)
    expect = sum(t.to_dense() for t in terms)
    np.testing.assert_allclose(total.to_dense(), expect, atol=1e-12)
    assert total.value_size <= sum(math.prod(t.out_shape) for t in terms)  # never a dense block
    shape = (math.prod(total.out_shape), math.prod(total.in_shape))
    np.testing.assert_allclose(to_sparse(total, total.out_shape, total.in_shape).toarray(), expect.reshape(shape))
    np.testing.assert_allclose(S.negate(total).to_dense(), -expect)
    tt = S.transpose(total)
    np.testing.assert_allclose(tt.to_dense(), np.moveaxis(expect, [0, 1], [2, 3]))
    for a, b in ((total, random_jac(rng, total.in_shape, random_shape(rng))),
                 (random_jac(rng, random_shape(rng), total.out_shape), total),
                 (total, random_diag(rng, total.in_shape)), (random_diag(rng, total.out_shape), total),
                 (total, tt), (tt, total), (terms[0], tt)):
        check_product(a, b)
    np.testing.assert_allclose(S.add(total, S.dense(total.out_shape, total.in_shape, expect)).to_dense(), 2 * expect)


def test_a_three_point_stencil_keeps_three_values_per_row():
    from jacc.sparse import to_sparse

    n = 6
    S1, S2, S3 = (S.selection((n - 2,), (n,), [["slice", k, k + n - 2, 1]]) for k in (2, 1, 0))
    lap = S.add(S.add(S1, S.product(S.scaled_identity((n - 2,), -2.0), S2)[0]), S3)
    assert lap.terms is not None and len(lap.terms) == 3 and lap.value_size == 1
    expect = np.zeros((n - 2, n))
    for i in range(n - 2):
        expect[i, i:i + 3] = [1.0, -2.0, 1.0]
    np.testing.assert_array_equal(lap.to_dense(), expect)
    assert to_sparse(lap, (n - 2,), (n,)).nnz == 3 * (n - 2)
    twice, mults = S.product(S.selection((n - 4,), (n - 2,), [["slice", 1, n - 3, 1]]), lap)
    assert mults == 0 and twice.terms is not None  # a window of the stencil: still three terms
    lap2, mults = S.product(S.transpose(lap), lap)  # shifts that meet merge: five distinct maps
    np.testing.assert_allclose(lap2.to_dense(), expect.T @ expect)


def test_a_diagonal_joins_a_sum_of_gathers():
    """∂(sin u + 3·u[::-1] − u)/∂u = diag(cos u) + 3·R − I: two terms (the diagonals merge), 2n
    values, never an n × n block; negation keeps the diagonal's values."""
    from jacc.sparse import to_sparse

    n = 7
    u = np.linspace(0.1, 1.0, n)
    rev = S.product(S.scaled_identity((n,), 3.0), S.selection((n,), (n,), [["slice", None, None, -1]]))[0]
    total = S.add(S.add(S.diagonal((n,), np.cos(u)), rev), S.negate(S.identity((n,))))
    expect = np.diag(np.cos(u) - 1.0) + 3.0 * np.eye(n)[::-1]
    assert total.terms is not None and len(total.terms) == 2 and total.value_size == n + 1
    np.testing.assert_allclose(total.to_dense(), expect)
    np.testing.assert_allclose(S.negate(total).to_dense(), -expect)
    np.testing.assert_allclose(S.transpose(total).to_dense(), expect.T)
    assert to_sparse(total, (n,), (n,)).nnz == 2 * n - 1  # the middle element: both terms, one entry
    np.testing.assert_allclose(to_sparse(total, (n,), (n,)).toarray(), expect)
    c, mults = check_product(total, total)
    np.testing.assert_allclose(c.to_dense(), expect @ expect)


def _random_take(rng):
    """(gathered shape, input shape, an advanced selection between them, with holes 2 times in 5)."""
    gout = tuple(int(x) for x in rng.integers(1, 5, size=int(rng.integers(1, 3))))
    u = tuple(int(x) for x in rng.integers(1, 6, size=int(rng.integers(1, 3))))
    flat = rng.integers(-1 if rng.random() < 0.4 else 0, math.prod(u), size=gout)
    return gout, u, S.take_selection(gout, u, [-1] * len(u), flat, key=None)


def _random_batched(rng, out, inn, pair):
    """A Jac with these pairs whose values vary along a random subset of its labels (none: a 0/1
    map), and the same structure without values (None for a 0/1 map)."""
    vl = [lab for lab in S.Jac(out, inn, pair).labels if rng.random() < 0.7]
    if not vl:
        return S.Jac(out, inn, pair), None
    sizes = [out[lab] if lab < len(out) else inn[lab - len(out)] for lab in vl]
    return S.Jac(out, inn, pair, vl, rng.standard_normal(sizes)), S.Jac(out, inn, pair, vl)


def _check_lazy_product(a, b, bound, priced=None):
    """a·b costs nothing, equals the dense product and stores at most ``bound`` values; the
    ``priced`` pair (values dropped) gives the same structure."""
    c, mults = S.product(a, b)
    assert mults == 0
    want = a.to_dense().reshape(math.prod(a.out_shape), -1) @ b.to_dense().reshape(math.prod(b.out_shape), -1)
    np.testing.assert_allclose(c.to_dense().reshape(want.shape), want, rtol=1e-12, atol=1e-12)
    assert c.value_size <= bound
    if priced is not None:
        symbolic, _ = S.product(*priced)
        assert symbolic.vlabels == c.vlabels and symbolic.pair == c.pair


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_a_map_batched_over_gathered_axes_scatters_row_by_row(seed):
    """x[windows] @ w (im2col): the product's partial is batched over the window axis, which the
    gather reads along. a·S places each row's values at the columns that row's windows read
    (repeats add, holes read nothing): as dense as the result, never a count² block."""
    rng = np.random.default_rng(seed)
    gout, u, s = _random_take(rng)
    extra = tuple(int(x) for x in rng.integers(1, 4, size=int(rng.integers(0, 2))))
    # a: (gout[paired] + extra) ← gout, its leading output axes paired with some gathered axes
    paired = [k for k in range(len(gout)) if rng.random() < 0.7] or [0]
    out = tuple(gout[k] for k in paired) + extra
    pair = [-1] * len(gout)
    for o, k in enumerate(paired):
        pair[k] = o
    a, symbolic = _random_batched(rng, out, gout, pair)
    _check_lazy_product(a, s, math.prod(out) * math.prod(u), None if symbolic is None else (symbolic, s))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_a_gather_of_a_batched_maps_rows_keeps_one_entry_per_gathered_row(seed):
    """(X @ W)[rows]: S·b where b is batched over the axes S gathers along. Each gathered row
    keeps b's values at the column of the position it reads (holes read zeros): as dense as the
    result, never an n² block."""
    rng = np.random.default_rng(seed)
    gout, u, s = _random_take(rng)
    extra = tuple(int(x) for x in rng.integers(1, 4, size=int(rng.integers(0, 2))))
    paired = [k for k in range(len(u)) if rng.random() < 0.7] or [0]
    inn = tuple(u[k] for k in paired) + extra
    b, symbolic = _random_batched(rng, u, inn, list(paired) + [-1] * len(extra))
    _check_lazy_product(s, b, math.prod(gout) * math.prod(inn), None if symbolic is None else (s, symbolic))
