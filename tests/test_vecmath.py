"""jacc.vecmath: glibc's vector kernels for tanh, exp, … of large arrays in NumPy programs."""

import numpy as np
import pytest

import jacc
from jacc import ccode, vecmath

pytestmark = pytest.mark.skipif(ccode.compiler() is None, reason="no C compiler (cc) on this machine")


@pytest.fixture(autouse=True)
def kernels():
    if not vecmath.active():  # (at test time: the library is built in the tests' own cache folder)
        pytest.skip("no libmvec kernels here: not Linux on x86-64, glibc before 2.35, or the build failed")


def _args(ufunc, rng, n=5000):
    lo, hi = vecmath.FUNCTIONS[ufunc][2]
    lo, hi = max(lo, -50.0), min(hi, 50.0)
    xs = [rng.uniform(lo, hi, n) for _ in range(vecmath.FUNCTIONS[ufunc][1])]
    for x in xs:  # (special values at places the check's own sample does not use)
        x[[7, 99, 1234, 4000]] = [np.nan, np.inf, -np.inf, -0.0]
    return xs


@pytest.mark.parametrize("ufunc", list(vecmath.FUNCTIONS), ids=lambda u: u.__name__)
def test_each_kernel_agrees_with_numpy_within_a_few_ulps(ufunc):
    if not vecmath.active()[ufunc.__name__]:
        pytest.skip(f"{ufunc.__name__}: the kernel failed its check or is not faster here; NumPy's runs")
    f = vecmath.faster(ufunc, 5000)
    assert f is not ufunc and f.ufunc is ufunc
    xs = _args(ufunc, np.random.default_rng(3))
    with np.errstate(all="ignore"):
        got, want = f(*xs), ufunc(*xs)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    with np.errstate(invalid="ignore"):  # (inf - inf where both are inf: equal, which the test accepts)
        err = np.abs(got[ok] - want[ok])
    assert np.all((err <= vecmath.ULPS * np.spacing(np.abs(want[ok]))) | (got[ok] == want[ok]))
    assert np.array_equal(np.signbit(got[ok & (want == 0)]), np.signbit(want[ok & (want == 0)]))


def test_small_arrays_other_functions_and_other_dtypes_stay_numpy():
    assert vecmath.faster(np.tanh, vecmath.MIN_SIZE - 1) is np.tanh
    assert vecmath.faster(np.sqrt, 10**6) is np.sqrt  # (NumPy's sqrt is vectorised already)
    f = vecmath.faster(np.tanh, 10**4)
    x = np.linspace(-2, 2, 10**4)
    for arg in (x.astype(np.float32), x[::2], x.reshape(100, 100).T, x[:10], list(x[:600]), x + 0j):
        got = f(arg)
        np.testing.assert_array_equal(got, np.tanh(arg))  # NumPy's own result, bit for bit
        assert got.dtype == np.tanh(arg).dtype
    g = vecmath.faster(np.arctan2, 10**4)
    np.testing.assert_array_equal(g(x, 2.0), np.arctan2(x, 2.0))  # (a broadcast operand)


def test_written_into_an_operand_and_falling_back_to_the_given_function():
    from jacc.program import into
    x, y = np.linspace(0.1, 3, 4096), np.linspace(-1, 1, 4096)
    want = np.arctan2(x, y)
    f = vecmath.faster(into(np.arctan2, 1), 4096)
    assert f.into == 1
    got = f(x, y)
    assert got is y and np.allclose(got, want, rtol=1e-15, atol=0)
    z = np.linspace(-1, 1, 4096).astype(np.float32)  # no kernel: into's own casting rules
    assert np.array_equal(f(x, z), np.arctan2(x, z))
    y.flags.writeable, before = False, y.copy()  # never written through a pointer: NumPy's own error (hunt CE)
    with pytest.raises(ValueError, match="read-only"):
        vecmath.faster(into(np.arctan2, 1), 4096)(x, y)
    assert np.array_equal(y, before)


def test_off_under_jacc_no_c(monkeypatch):
    monkeypatch.setenv("JACC_NO_C", "1")
    vecmath._reset()
    try:
        assert vecmath.faster(np.tanh, 10**5) is np.tanh and vecmath.active() == {}
    finally:
        monkeypatch.delenv("JACC_NO_C")
        vecmath._reset()
    assert vecmath.faster(np.tanh, 10**5) is not np.tanh


def test_a_failed_build_leaves_numpy(monkeypatch):
    def fail(*a, **k):
        raise ccode.CompileError("C: cc failed")

    monkeypatch.setattr(ccode, "library", fail)
    vecmath._reset()
    try:
        assert vecmath.faster(np.exp, 10**5) is np.exp
    finally:
        monkeypatch.undo()
        vecmath._reset()


def test_a_kernel_that_disagrees_with_numpy_is_not_used(monkeypatch):
    vecmath._reset()
    monkeypatch.setitem(vecmath.FUNCTIONS, np.sinh, ("cosh", 1, (-700.0, 700.0)))  # the wrong function
    try:
        assert vecmath.faster(np.sinh, 10**5) is np.sinh
    finally:
        monkeypatch.undo()
        vecmath._reset()


def test_an_mlp_program_runs_its_activations_as_kernels():
    rng = np.random.default_rng(0)
    X, W1, W2 = rng.standard_normal((64, 8)), rng.standard_normal((8, 32)), rng.standard_normal((32, 1))

    def f(W):
        h = np.tanh(X @ W)
        return np.sum(np.exp(-h @ W2) + np.sin(h).sum())

    jf = jacc.jacobian(f, retrace=False)
    got = jf(W1)
    kernels = [v.__name__ for v in jf.program.fn.__globals__.values() if callable(v) and hasattr(v, "ufunc")]
    # (the Jacobian needs sin's derivative only: cos; exp runs on 64 numbers, too few for a kernel)
    assert sorted(k.split("_")[0] for k in kernels) == ["cos", "tanh"]
    want = jacc.jacobian(f, backend="interpret")(W1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    eps = 1e-6
    for i, j in [(0, 0), (3, 17), (7, 31)]:
        d = np.zeros_like(W1)
        d[i, j] = eps
        np.testing.assert_allclose(got[i, j], (f(W1 + d) - f(W1 - d)) / (2 * eps), rtol=1e-6)
    W = W1 * 0.5  # a later call at another point: the kernels' values, not the first call's
    np.testing.assert_allclose(jf(W), jacc.jacobian(f, backend="interpret")(W), rtol=1e-12, atol=1e-12)
