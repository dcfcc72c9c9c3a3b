"""jacc.sparse.to_sparse against Jac.to_dense, and accumulate(..., sparse=True)."""

import importlib.util
import math

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import fd_jacobian, peak_memory, random_selection, random_shape
from conftest import random_jac as _random_jac
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc
from jacc import eliminate as E
from jacc import structure as S
from jacc import suite
from jacc.sparse import to_sparse
from jacc.trace import trace


def check(j, structural=True):
    """to_sparse(j) is a canonical CSR equal to j.to_dense(); returns it."""
    rows, cols = math.prod(j.out_shape), math.prod(j.in_shape)
    a = to_sparse(j, j.out_shape, j.in_shape)
    assert isinstance(a, sp.csr_array) and a.shape == (rows, cols) and a.dtype == np.float64
    assert a.indices.dtype == np.int32 and a.indptr.dtype == np.int32
    a.check_format(full_check=True)
    assert a.has_canonical_format
    b = a.copy()
    b.sort_indices()
    np.testing.assert_array_equal(b.indices, a.indices)  # really sorted, no duplicates
    np.testing.assert_array_equal(a.toarray(), j.to_dense().reshape(rows, cols))
    if structural and not (j.reshape or j.select is not None or j.embed is not None):
        free = math.prod(n for n, p in zip(j.in_shape, j.pair) if p < 0)
        assert a.nnz == rows * free  # every stored entry, nothing off a diagonal pair
    return a


# -- the named forms ----------------------------------------------------------------------------


def test_none_is_the_zero_matrix():
    a = to_sparse(None, (2, 3), (4,))
    assert a.shape == (6, 4) and a.nnz == 0 and isinstance(a, sp.csr_array)
    assert to_sparse(None, (), ()).shape == (1, 1)


def test_identity_and_axis_moves():
    a = check(S.identity((3, 4)))
    assert a.nnz == 12
    np.testing.assert_array_equal(a.toarray(), np.eye(12))
    check(S.Jac((4, 3), (3, 4), (1, 0)))  # a transpose: pairs crossed
    check(S.Jac((3, 1, 4), (3, 4), (0, 2)))  # a new size-1 axis


def test_diagonal_keeps_structural_zeros():
    a = check(S.diagonal((2, 3), np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])))
    assert a.nnz == 6 and np.count_nonzero(a.data) == 3


def test_scaled_identity():
    a = check(S.scaled_identity((5,), 2.5))
    np.testing.assert_array_equal(a.toarray(), 2.5 * np.eye(5))
    assert check(S.scaled_identity((5,), 0.0)).nnz == 5


def test_dense():
    rng = np.random.default_rng(0)
    check(S.dense((2, 3), (4,), rng.standard_normal((2, 3, 4))))
    check(S.dense((3,), (2, 2), np.zeros((3, 2, 2))))


def test_kronecker_forms():
    rng = np.random.default_rng(1)
    B, m, n = 4, 2, 3
    w = rng.standard_normal((m, n))
    a = check(S.Jac((B, m), (B, n), (0, -1), (1, 3), w))  # I_B ⊗ W
    np.testing.assert_array_equal(a.toarray(), np.kron(np.eye(B), w))
    x = rng.standard_normal(n)
    a = check(S.Jac((B,), (B, n), (0, -1), (2,), x))  # I_B ⊗ xᵀ
    np.testing.assert_array_equal(a.toarray(), np.kron(np.eye(B), x[None, :]))
    d = rng.standard_normal((B, m, n))
    check(S.Jac((B, m), (B, n), (0, -1), (0, 1, 3), d))  # diag ⊗ dense blocks
    check(S.Jac((m, B), (n, B), (-1, 1), (2, 0), rng.standard_normal((n, m))))  # W ⊗ I_B, values transposed


def test_broadcast_and_sum_maps():
    check(S.Jac((3, 4), (4,), (1,)))  # broadcast along a new leading axis
    check(S.Jac((3,), ()))  # scalar broadcast
    check(S.Jac((), (3, 4)))  # total sum
    a = check(S.Jac((3,), (3, 4), (0, -1)))  # row sums
    np.testing.assert_array_equal(a.toarray(), np.kron(np.eye(3), np.ones((1, 4))))


def test_replicated_axes():
    rng = np.random.default_rng(2)
    check(S.Jac((2, 3), (4,), None, (0, 2), rng.standard_normal((2, 4))))  # constant along out axis 1
    check(S.Jac((2, 3), (3, 4), (1, -1), (3,), rng.standard_normal(4)))  # constant along the pair
    check(S.Jac((2, 3), (4,), None, (), np.asarray(0.0)))  # one value for all: 0, still 24 entries


def test_zero_dimensional_and_empty_shapes():
    check(S.Jac((), ()))
    check(S.Jac((), (), None, (), np.asarray(3.0)))
    check(S.dense((), (3,), np.arange(3.0)))
    check(S.dense((3,), (), np.arange(3.0)))
    for j in (S.identity((0,)), S.dense((0,), (3,), np.zeros((0, 3))), S.dense((2,), (0,), np.zeros((2, 0))),
              S.Jac((2, 0), (0,), (1,))):
        assert check(j).nnz == 0


def test_dtype_and_shape_checks():
    j = S.diagonal((3,), np.array([1.0, 2.0, 3.0]))
    assert to_sparse(j, (3,), (3,), np.float32).dtype == np.float32
    with pytest.raises(S.StructureError):
        to_sparse(j, (3,), (4,))
    with pytest.raises(S.StructureError):
        to_sparse(j.strip(), (3,), (3,))


def test_matrix_does_not_alias_the_values():
    v = np.array([1.0, 2.0, 3.0])
    a = to_sparse(S.diagonal((3,), v), (3,), (3,))
    a.data[:] = 0
    np.testing.assert_array_equal(v, [1.0, 2.0, 3.0])


# -- lazy maps ----------------------------------------------------------------------------------


def test_reshape_map():
    r = S.reshape_map((3, 2), (2, 3))
    assert r.reshape
    np.testing.assert_array_equal(check(r).toarray(), np.eye(6))
    r = S.reshape_map((5, 6), (5, 2, 3))
    check(r)
    check(S.reshape_map((6, 1), (1, 6)))  # only size-1 axes differ: pairs


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**9))
def test_selection_and_embedding(seed):
    rng = np.random.default_rng(seed)
    u, index, v = random_selection(rng)
    sel = S.selection(v, u, index)
    check(sel)
    emb = S.embedding(u, v, index)
    check(emb)


def test_take_selection_and_its_transpose():
    t = S.take_selection((4,), (3,), [-1], np.array([1, 1, 0, 2]))
    a = check(t)
    np.testing.assert_array_equal(a.toarray(), np.eye(3)[[1, 1, 0, 2]])
    check(S.transpose(t))  # embed=Take: a column read twice gets two entries in its row
    # a gather along the trailing axis passing the leading one through
    t = S.take_selection((5, 2), (5, 3), [0, -1], np.array([2, 0]))
    check(t)
    check(S.transpose(t))
    # a gather over two input axes into one output axis, the middle axis passed through
    t = S.take_selection((3, 4), (2, 4, 3), [-1, 1, -1], np.array([5, 0, 3]))
    check(t)
    check(S.transpose(t))
    t = S.take_selection((0,), (3,), [-1], np.zeros(0, dtype=int))
    assert check(t).nnz == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**9))
def test_random_take_selections(seed):
    rng = np.random.default_rng(seed)
    u = tuple(int(x) for x in rng.choice([1, 2, 3, 4], size=int(rng.integers(1, 4))))
    through = [k for k in range(len(u)) if rng.random() < 0.4]
    gathered = [k for k in range(len(u)) if k not in through]
    gout = tuple(int(x) for x in rng.choice([1, 2, 3], size=int(rng.integers(0, 3))))
    axes = through + [None] * len(gout)
    rng.shuffle(axes)  # output axes: the passed-through ones and the gathered ones, interleaved
    out = tuple(u[a] if a is not None else 0 for a in axes)
    it = iter(gout)
    out = tuple(o if a is not None else next(it) for o, a in zip(out, axes))
    pair = [axes.index(k) if k in through else -1 for k in range(len(u))]
    flat = rng.integers(0, math.prod(u[k] for k in gathered), size=gout)
    t = S.take_selection(out, u, pair, flat)
    check(t)
    check(S.transpose(t))


def test_large_lazy_maps_are_not_densified():
    n = 10**6
    sel = S.selection((n - 1,), (n,), [["slice", 1, None, None]])
    a = to_sparse(sel, (n - 1,), (n,))
    assert a.nnz == n - 1 and a.indices[0] == 1 and a.indices[-1] == n - 1
    e = S.embedding((n,), (n - 1,), [["slice", 1, None, None]])
    b = to_sparse(e, (n,), (n - 1,))
    assert (b != a.T).nnz == 0
    r = S.reshape_map((1000, 1000), (100, 10_000))
    assert to_sparse(r, (1000, 1000), (100, 10_000)).nnz == n
    d = to_sparse(S.diagonal((1000, 1000), np.ones((1000, 1000))), (1000, 1000), (1000, 1000))
    assert d.nnz == n and (d.indices == np.arange(n)).all()
    big = 10**9  # memory follows the entries read, not the size of the input
    a = to_sparse(S.selection((), (big,), [["int", -1]]), (), (big,))
    assert a.nnz == 1 and a.indices[0] == big - 1
    a = to_sparse(S.selection((1000,), (big,), [["slice", 7, None, big // 1000]]), (1000,), (big,))
    assert a.nnz == 1000 and a.indices[-1] == 7 + 999 * (big // 1000)
    a = to_sparse(S.take_selection((2,), (big,), [-1], np.array([3, big - 2])), (2,), (big,))
    assert a.indices.tolist() == [3, big - 2]
    t = S.take_selection((n,), (n,), [-1], np.arange(n)[::-1].copy())
    c = to_sparse(S.transpose(t), (n,), (n,))
    assert c.nnz == n and c.indices[0] == n - 1


# -- random labelled Jacobians ------------------------------------------------------------------


def random_jac(rng, out_shape, in_shape):
    return _random_jac(rng, out_shape, in_shape, pair_p=0.6, zeros=0.2)  # explicit zeros stay stored


def _shape(rng):
    return random_shape(rng, 3)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9))
def test_random_labelled_jacs(seed):
    rng = np.random.default_rng(seed)
    w = _shape(rng)
    v = w if rng.random() < 0.4 else _shape(rng)
    check(random_jac(rng, w, v))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**9))
def test_random_products_with_lazy_maps(seed):
    """Edges the executor produces: products of labelled Jacobians with selections."""
    rng = np.random.default_rng(seed)
    u, index, v = random_selection(rng)
    if 0 in v:
        return
    c, _ = S.product(S.selection(v, u, index), random_jac(rng, u, _shape(rng)))
    check(c)
    c, _ = S.product(random_jac(rng, _shape(rng), v), S.selection(v, u, index))
    check(c)


# -- accumulate(..., sparse=True) ---------------------------------------------------------------


def _both(g, inputs):
    prob = E.Problem.from_graph(g)
    vals = g.evaluate(dict(zip(g.inputs, inputs)))
    for order in (E.forward_order(prob), E.reverse_order(prob)):
        d = E.accumulate(prob, vals, order)
        s = E.accumulate(prob, vals, order, sparse=True)
        assert d.blocks.keys() == s.blocks.keys()
        assert (s.mults, s.peak_bytes) == (d.mults, d.peak_bytes)
        for (y, x), a in s.blocks.items():
            assert isinstance(a, sp.csr_array)
            assert a.shape == (math.prod(g.shape(y)), math.prod(g.shape(x)))
            np.testing.assert_array_equal(a.toarray(), d.blocks[y, x].reshape(a.shape))
    return s


@pytest.mark.parametrize("name", ["roeflux", "lion", "propane", "blackscholes", "attention", "lecture_f"])
def test_accumulate_sparse_matches_dense_on_suite(name):
    p = suite.get(name)
    inputs = list(p.make_inputs(0).values())
    _both(trace(p.fn, *inputs), inputs)


def test_accumulate_sparse_roeflux_batched_is_block_diagonal():
    m = 50
    rng = np.random.default_rng(0)
    ql = suite.primitive_to_conserved(1 + 0.05 * rng.random(m), 0.75 + 0.05 * rng.random(m), 1 + 0.05 * rng.random(m))
    qr = suite.primitive_to_conserved(0.125 + 0.01 * rng.random(m), 0.3 + 0.05 * rng.random(m), 0.1 + 0.01 * rng.random(m))
    s = _both(trace(suite.roeflux, ql, qr), [ql, qr])
    for a in s.blocks.values():
        assert a.nnz == 9 * m  # 3×3 per interface


def test_accumulate_sparse_lazy_and_missing_blocks():
    x, y = np.arange(1.0, 7.0), np.arange(1.0, 4.0)
    _both(trace(lambda x: x[1::2], x), [x])  # the final edge is a selection
    _both(trace(lambda x: x.reshape(2, 3).T * 2.0, x), [x])
    _both(trace(lambda x: np.concatenate([x, x[:2]]), x), [x])  # an embedding plus a selection
    _both(trace(lambda x: np.sort(x)[::-1], x[::-1].copy()), [x[::-1].copy()])  # a gather
    _both(trace(lambda x: x[[0, 0, 2]], x), [x])  # a gather reading one position twice
    _both(trace(lambda x: np.pad(x, 2), x), [x])  # the final edge is an embedding
    s = _both(trace(lambda x, y: (np.sin(x), 2.0 * y), x, y), [x, y])  # no path: zero blocks
    assert sum(a.nnz == 0 for a in s.blocks.values()) == 2


# -- stencils and gathers: the nonzeros, not a dense block ---------------------------------------


def _stencil(u):
    return u[2:] - 2.0 * u[1:-1] + u[:-2] + np.sin(u[1:-1]) ** 2


@pytest.mark.parametrize("backend", ["numpy", "interpret", "jax"])
def test_a_stencils_sparse_jacobian_stores_three_entries_per_row(backend):
    import jacc

    if backend == "jax":
        pytest.importorskip("jax")
    u = np.random.default_rng(0).standard_normal(8)
    jf = jacc.jacobian(_stencil, sparse=True, backend=backend)
    J = jf(u)
    dense = jacc.jacobian(_stencil)(u)
    expect = np.zeros((6, 8))
    for i in range(6):
        expect[i, i:i + 3] = [1.0, -2.0 + np.sin(2 * u[i + 1]), 1.0]
    np.testing.assert_allclose(dense, expect, rtol=1e-12)
    np.testing.assert_allclose(J.toarray(), expect, rtol=1e-12)
    assert J.nnz == 18
    np.testing.assert_allclose(jf(u + 1.0).toarray(), jacc.jacobian(_stencil)(u + 1.0), rtol=1e-12)
    n = 2000
    big = np.random.default_rng(1).standard_normal(n)
    J, peak = peak_memory(lambda: jacc.jacobian(_stencil, sparse=True, backend=backend)(big))
    assert J.nnz == 3 * (n - 2)
    assert peak < 20e6  # a dense (n − 2) × n block alone is 32 MB (165 MB were allocated before)


STENCILS = {  # (function, nonzeros of its Jacobian at n = size of u)
    "roll Laplacian": (lambda u: np.roll(u, 1) - 2.0 * u + np.roll(u, -1) + u ** 3, lambda n: 3 * n),
    "reversal plus diagonal": (lambda u: 3.0 * u[::-1] + np.sin(u), lambda n: 2 * n),
    "roll along both axes": (lambda u: (np.roll(u.reshape(10, -1), 1, 0) * np.roll(u.reshape(10, -1), (2, 1), (0, 1))
                                        ).ravel(), lambda n: 2 * n),
    "zero-padded Laplacian": (lambda u: np.diff(np.pad(u, 1), 2) * np.cos(u), lambda n: 3 * n - 2),
    "periodic ends joined": (lambda u: np.diff(np.concatenate([u[-1:], u, u[:1]]), 2), lambda n: 3 * n),
    "np.gradient": (lambda u: np.gradient(u) ** 2, lambda n: 2 * n),
    "np.convolve, 3 taps": (lambda u: np.convolve(u, [1.0, -2.0, 0.5], mode="same"), lambda n: 3 * n - 2),
    # one element broadcast: a gather reading it n times, not a one-hot row times a broadcast
    # (1 − 1 at [0, 0] is stored as an explicit 0: a sum keeps its terms' entries, so the stored
    # layout does not depend on the values, hunt CK)
    "minus the first element": (lambda u: u - u[0], lambda n: 2 * n - 1),
    "divided by the first element": (lambda u: np.sin(u) / u[0], lambda n: 2 * n - 1),
    "scaled by the last element squared": (lambda u: u * u[-1] ** 2, lambda n: 2 * n - 1),
    "outer product, raveled": (lambda u: np.outer(u, [1.0, 2.0, -1.0]).ravel(), lambda n: 3 * n),  # (I ⊗ c) reshaped
    "rows minus their first column": (lambda u: (u.reshape(-1, 4) - u.reshape(-1, 4)[:, :1]).ravel(),
                                      lambda n: 2 * n - n // 4),  # (an explicit 0 per row, as above)
    # written into a zeros buffer (x[i] = v records a scatter at distinct positions): a placement that
    # composes with gathers, not a block (the first refused n = 10⁵ as a 120 GB sparse matrix)
    "Laplacian written into a buffer": (lambda u: _into_buffer(u) + u ** 3, lambda n: 3 * n - 4),
    "every other entry written": (lambda u: _every_other(u) * u, lambda n: 3 * n // 2),
    "shifted into a longer buffer": (lambda u: np.diff(_padded(u)), lambda n: 2 * n),
}


def _into_buffer(u):
    lap = np.zeros_like(u)
    lap[1:-1] = u[:-2] - 2.0 * u[1:-1] + u[2:]
    return lap


def _every_other(u):
    v = np.full_like(u, 0.5)
    v[::2] = np.sin(u[::2])
    v[1::2] = u[1::2] * u[:-1:2]
    return v


def _padded(u):
    y = np.zeros(u.size + 2)
    y[1:-1] = u
    return y


@pytest.mark.parametrize("name", STENCILS)
def test_a_stencils_sparse_jacobian_stores_its_nonzeros_only(name):
    """np.roll is one gather, a diagonal joins a sum of gathers, a slice of a padded or joined
    array is one gather with holes, and an element broadcast (u − u[0]) is one gather reading it
    n times: these sparse Jacobians store their nonzeros only (each stored all n² entries
    before), on NumPy and on JAX."""
    import jacc

    f, nnz = STENCILS[name]
    u = np.random.default_rng(2).standard_normal(40)
    J = jacc.jacobian(f, sparse=True)(u)
    np.testing.assert_allclose(J.toarray(), jacc.jacobian(f, strategy="forward", compile=False)(u), rtol=1e-12)
    np.testing.assert_allclose(J.toarray(), fd_jacobian(f, [u], 0), atol=1e-6)
    assert J.nnz == nnz(40)
    if importlib.util.find_spec("jax") is not None:
        np.testing.assert_allclose(jacc.jacobian(f, sparse=True, backend="jax")(u).toarray(), J.toarray(), rtol=1e-12)
    n = 4000
    big = np.random.default_rng(3).standard_normal(n)
    J, peak = peak_memory(lambda: jacc.jacobian(f, sparse=True)(big))
    assert J.nnz == nnz(n) and peak < 20e6  # one dense n × n block is 128 MB


@pytest.mark.parametrize("name", STENCILS)
def test_a_stencils_dense_jacobian_is_written_once(name):
    """The dense Jacobian of a sum of gathers and diagonals is each term's values written into one
    output array: its peak is the result, not a block per term (the roll Laplacian peaked at twice
    its result before)."""
    import jacc

    f, _ = STENCILS[name]
    n = 1500
    u = np.random.default_rng(4).standard_normal(n)
    jf = jacc.jacobian(f)
    expect = jacc.jacobian(f, strategy="forward", compile=False)(u)
    np.testing.assert_allclose(jf(u), expect, rtol=1e-12, atol=1e-15)
    J, peak = peak_memory(lambda: jf(u + 0.5))
    np.testing.assert_allclose(J, jacc.jacobian(f, strategy="forward", compile=False)(u + 0.5), rtol=1e-12, atol=1e-15)
    assert peak < 1.25 * J.nbytes


def test_a_zero_block_under_float32_is_float32():
    # an output that does not depend on the argument: its all-zero block came back float64 while
    # every other block was float32 (found by fuzzing)
    x, y = np.float32(0.3), np.linspace(0.1, 1.0, 4).astype(np.float32)
    f = lambda x, y: (np.sin(x) * y, np.cos(y))  # noqa: E731
    for backend in ("numpy", "interpret"):
        for retrace in (True, False):
            jf = jacc.jacobian(f, (0, 1), dtype=np.float32, sparse=True, backend=backend, retrace=retrace)
            for _ in range(3):
                blocks = [b for out in jf(x, y) for b in out]
                assert [b.dtype for b in blocks] == [np.float32] * 4
            assert blocks[2].nnz == 0 and blocks[2].shape == (4, 1)


def test_float16_with_sparse_is_refused_at_once():
    # SciPy built float16 CSR blocks it could neither convert nor multiply (a constant output's
    # block raised SciPy's own error inside the call)
    with pytest.raises(ValueError, match="sparse=True needs dtype float32 or float64.*float16"):
        jacc.jacobian(lambda x: x * 2.0, sparse=True, dtype=np.float16)
    J = jacc.jacobian(lambda x: x * 2.0, sparse=True, dtype=np.float32)(np.ones(3))
    np.testing.assert_array_equal(J.toarray(), 2.0 * np.eye(3))


@pytest.mark.parametrize("f", [lambda x: x[::-1] * 1.0, lambda x: np.roll(x, 1) - 2 * x + np.roll(x, -1),
                               lambda x: x[np.arange(x.size) // 2], lambda x: np.sin(x),
                               lambda x: np.cumsum(x[:40]), lambda x: np.outer(x[:30], x[:20]).ravel()],
                         ids=["reverse", "stencil", "gather", "sin", "cumsum", "outer"])
def test_a_sparse_results_size_is_known_before_it_is_built_and_kept_under_the_limit(f):
    """The size check read the stored entries off pricing's bytes, which are 0 for lazy
    selections: a reversal's 16 MB CSR result passed a 10 MB memory_limit."""
    from jacc.api import _csr_bytes, _sparse_bytes

    x = np.linspace(0.1, 1.0, 3000)
    jf = jacc.jacobian(f, sparse=True)
    got = jf(x)
    need, (nbytes, _, _, stored) = _sparse_bytes(jf.plan)
    # (outer's two terms both store the 20 entries where x[:30] and x[:20] overlap: summed, once)
    assert stored == got.nnz + (20 if stored != got.nnz else 0) and need == nbytes == _csr_bytes(stored, got.shape[0])
    with pytest.raises(jacc.MemoryLimitError, match="even as sparse matrices"):
        jacc.jacobian(f, sparse=True, memory_limit=need - 1)(x)
    assert jacc.jacobian(f, sparse=True, memory_limit=max(need, jf.plan.peak_bytes))(x).nnz == got.nnz


@pytest.mark.parametrize("backend", ["numpy", "jax", "interpret"])
def test_a_sum_with_an_identity_under_float32_stays_float32(backend):
    # log(x) + x: the program added the identity's float64 coefficient to the float32 diagonal,
    # and the sparse block (unlike the dense one) was not cast back
    if backend == "jax":
        pytest.importorskip("jax")
    x = np.float32([0.31, 0.73, 0.42])
    for f in (lambda x: np.log(x) + x, lambda x: x + x, lambda x: np.sin(x) - x):
        J = jacc.jacobian(f, dtype=np.float32, sparse=True, backend=backend)(x)
        assert J.dtype == np.float32
        np.testing.assert_allclose(J.toarray(), jacc.jacobian(f, dtype=np.float32)(x), rtol=1e-6)


def test_blocks_of_more_than_52_axes_name_the_limit_and_sparse_serves():
    """An elementwise function of a 27-axis array needs 54 einsum labels: an internal 'product needs
    more than 52 distinct axes' before (found by a hunt); sparse results need none."""
    x = np.linspace(0.1, 0.5, 2).reshape((1,) * 26 + (2,))
    with pytest.raises(S.StructureError, match="more than 52 distinct axes .*reshape .*sparse=True"):
        jacc.jacobian(np.sin)(x)
    np.testing.assert_allclose(jacc.jacobian(np.sin, sparse=True)(x).toarray(), np.diag(np.cos(x.ravel())))


@pytest.mark.parametrize("f", [
    lambda x: np.roll(x, 1) - 2 * x ** 2 + np.roll(x, -1),
    lambda x: 3 * x[::-1] + x ** 2,
    lambda x: x[::2] * x[1::2],
    lambda x: np.diff(np.pad(x ** 2, 1), 2),
])
def test_a_sum_of_terms_stores_the_same_entries_whatever_the_values(f):
    """Hunt CK: a block summed from several terms dropped the entries whose sum was 0 (scipy's +
    does), so a zero in x changed the stored layout between calls; the values were right."""
    x = np.arange(1.0, 7.0)
    z = x.copy()
    z[2] = 0.0
    jf = jacc.jacobian(f, sparse=True)
    a, b = jf(x), jf(z)
    assert (a.nnz, a.indptr.tolist(), a.indices.tolist()) == (b.nnz, b.indptr.tolist(), b.indices.tolist())
    assert b.has_canonical_format
    np.testing.assert_allclose(b.toarray(), jacc.jacobian(f, backend="interpret")(z), rtol=1e-14)
