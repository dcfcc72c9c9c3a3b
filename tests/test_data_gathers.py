"""Gathers whose positions are integer data (class labels, token ids): recorded through a one-hot
mask, so one structure serves every batch (jacc.numpy_api.gathers.gather_by_mask)."""

import numpy as np
import pytest

import jacc

R = np.random.default_rng(11)

# (the gather, as a function of the array and the labels; the shapes of both; the labels' range)
GATHERS = [
    ("cross-entropy", lambda x, y: x[np.arange(len(y)), y], (6, 5), (6,), 5),
    ("embedding", lambda x, y: x[y], (7, 3), (2, 4), 7),
    ("columns", lambda x, y: x[:, y], (4, 6), (5,), 6),
    ("rows and a slice", lambda x, y: x[y, 1:3], (5, 4), (3,), 5),
    ("int, slice, data: block first", lambda x, y: x[1, :, y], (3, 4, 5), (6,), 5),
    ("ellipsis", lambda x, y: x[..., y], (2, 3, 4), (2, 2), 4),
    ("broadcast with a constant", lambda x, y: x[y[:, None], np.arange(3)], (5, 3), (4,), 5),
    ("new axis", lambda x, y: x[None, y], (5, 2), (3,), 5),
    ("one label", lambda x, y: x[y[1]], (5, 2), (3,), 5),
    ("take_along_axis", lambda x, y: np.take_along_axis(x, y[:, None], axis=1), (6, 4), (6,), 4),
    ("take along 0", lambda x, y: np.take(x, y, axis=0), (5, 3), (4,), 5),
    ("take of the flat array", lambda x, y: np.take(x, y), (3, 4), (5,), 12),
    ("take method, axis 1", lambda x, y: x.take(y, axis=1), (3, 4), (2, 3), 4),
]


def _expected(gather, x: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The gradient of sum(c * tanh(gather(x, y))): gathered flat positions, added back."""
    positions = gather(np.arange(x.size).reshape(x.shape), y)
    g = c * (1 - np.tanh(x.reshape(-1)[positions]) ** 2)
    return np.bincount(positions.reshape(-1), weights=g.reshape(-1), minlength=x.size).reshape(x.shape)


@pytest.mark.parametrize("name, gather, xs, ys, n", GATHERS, ids=[g[0] for g in GATHERS])
def test_a_gather_by_integer_data_keeps_one_structure(name, gather, xs, ys, n):
    x = R.normal(size=xs)
    c = R.normal(size=gather(x, np.zeros(ys, dtype=np.int64)).shape)
    jf = jacc.jacobian(lambda x, y: (c * np.tanh(gather(x, y))).sum())
    for k in range(8):
        y = R.integers(0, n, ys)
        np.testing.assert_allclose(jf(x, y), _expected(gather, x, y, c), rtol=1e-12, atol=1e-15)
    assert jf.cache.why_constant is None and jf.cache.skipped >= 4, (jf.cache.why_constant, jf.cache.skipped)


def test_labels_out_of_bounds_or_negative_at_a_later_call_are_numpys():
    """A call that skips f meets labels its mask has no row for: f runs, so an index out of bounds
    raises NumPy's IndexError, and a negative one counts from the end as NumPy's."""
    x, c = R.normal(size=(4, 5)), R.normal(size=4)

    def gather(x, y):
        return x[np.arange(4), y]
    jf = jacc.jacobian(lambda x, y: (c * np.tanh(gather(x, y))).sum())
    for y in ([0, 1, 2, 3], [4, 4, 0, 1], [2, 0, 1, 3], [4, 3, 2, 1], [1, -1, -5, 0], [0, 1, 2, 3], [1, 1, 1, 1]):
        y = np.array(y)
        np.testing.assert_allclose(jf(x, y), _expected(gather, x, y, c), rtol=1e-12, atol=1e-15)
    assert jf.cache.why_constant is None
    skipped = jf.cache.skipped
    np.testing.assert_allclose(jf(x, np.array([3, 3, 3, 3])), _expected(gather, x, np.array([3, 3, 3, 3]), c))
    assert jf.cache.skipped == skipped + 1
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1 with size 5"):
        jf(x, np.array([0, 5, 1, 1]))
    with pytest.raises(IndexError, match="out of bounds"):
        jf(x, np.array([0, -6, 1, 1]))


def test_labels_negative_from_the_first_data_call():
    x = R.normal(size=(3, 4))
    jf = jacc.jacobian(lambda x, y: np.tanh(x[np.arange(3), y]).sum())
    for k in range(5):
        y = R.integers(-4, 4, 3)
        np.testing.assert_allclose(jf(x, y), _expected(lambda a, b: a[np.arange(3), b], x, y, np.ones(3)),
                                   rtol=1e-12)
    assert jf.cache.why_constant is None and jf.cache.skipped >= 2


def test_what_a_mask_cannot_take_stays_a_constant_and_says_why(monkeypatch):
    x = R.normal(size=(4, 4))
    jf = jacc.jacobian(lambda x, y: np.tanh(x[y, y[::-1]]).sum())  # two data indices
    for k in range(4):
        y = R.integers(0, 4, 4)
        np.testing.assert_allclose(jf(x, y), _expected(lambda a, b: a[b, b[::-1]], x, y, np.ones(4)), rtol=1e-12)
    assert "takes one data index array" in jf.cache.why_constant
    from jacc.numpy_api import gathers
    monkeypatch.setattr(gathers, "MASK_GATHER_MAX", 10)
    jf = jacc.jacobian(lambda x, y: np.tanh(x[y]).sum())
    for k in range(4):
        y = R.integers(0, 4, 3)
        np.testing.assert_allclose(jf(x, y), _expected(lambda a, b: a[b], x, y, np.ones((3, 4))), rtol=1e-12)
    assert "more than 10 entries" in jf.cache.why_constant


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_a_cross_entropy_over_batches_matches_its_closed_form(backend):
    """On every backend (torch's program took neither np.max over axes nor a gather's copy)."""
    if backend != "numpy":
        pytest.importorskip(backend)
    n, d, k = 32, 6, 4
    W = R.normal(size=(d, k))

    def loss(W, X, y):
        z = X @ W
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()
    jf = jacc.jacobian(loss, backend=backend)
    for _ in range(6):
        X, y = R.normal(size=(n, d)), R.integers(0, k, n)
        z = X @ W
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(np.asarray(jf(W, X, y)), X.T @ (p - np.eye(k)[y]) / n, rtol=1e-11, atol=1e-15)
    assert jf.cache.why_constant is None and jf.cache.skipped >= 3 and jf.ran == backend
