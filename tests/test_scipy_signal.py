"""scipy.signal of traced arrays (jacc.numpy_api.scipy_signal): values are SciPy's, Jacobians equal
central differences of SciPy itself over its options, the linear maps hold away from the traced
point (traced once), convolutions match SciPy in every mode and shape, and what is not recorded is
refused by name."""

import numpy as np
import pytest
from conftest import fd_jacobian, in_a_fresh_process

import jacc

ss = pytest.importorskip("scipy.signal")

R = np.random.default_rng(5)
X = R.normal(size=40)
X2 = R.normal(size=(3, 20))
B, A = ss.butter(3, 0.25)
SOS = ss.butter(4, [0.1, 0.4], btype="band", output="sos")

LINEAR = [
    ("lfilter", lambda x: ss.lfilter(B, A, x), X),
    ("lfilter FIR along axis 0", lambda x: ss.lfilter([0.5, 0.5], [1.0], x, axis=0), X2.T.copy()),
    ("lfilter with zi: y and zf", lambda x: np.concatenate(ss.lfilter(B, A, x, zi=np.arange(3.0))), X),
    ("lfilter with zi, batched: zf", lambda x: ss.lfilter(B, A, x, zi=np.ones((3, 3)))[1], X2),
    ("lfilter with zi along axis 0: zf", lambda x: ss.lfilter(B, A, x, axis=0, zi=np.ones((3, 3)))[1], X2.T.copy()),
    ("filtfilt", lambda x: ss.filtfilt(B, A, x), X),
    ("filtfilt gust", lambda x: ss.filtfilt(B, A, x, method="gust"), X),
    ("filtfilt even padding, batched", lambda x: ss.filtfilt(B, A, x, padtype="even"), X2),
    ("sosfilt", lambda x: ss.sosfilt(SOS, x), X2),
    ("sosfilt with zi: zf", lambda x: ss.sosfilt(SOS, x, zi=np.ones((4, 3, 2)))[1], X2),
    ("sosfilt with zi along axis 0: y", lambda x: ss.sosfilt(SOS, x, axis=0, zi=np.ones((4, 2, 3)))[0], X2.T.copy()),
    ("sosfiltfilt", lambda x: ss.sosfiltfilt(SOS, x), X),
    ("savgol_filter interp", lambda x: ss.savgol_filter(x, 7, 3), X),
    ("savgol_filter derivative, constant mode", lambda x: ss.savgol_filter(x, 5, 2, deriv=1, mode="constant",
                                                                        cval=2.0), X2),
    ("detrend linear with breakpoints", lambda x: ss.detrend(x, bp=[8, 15]), X),
    ("detrend constant along axis 0", lambda x: ss.detrend(x, axis=0, type="constant"), X2),
    ("decimate iir", lambda x: ss.decimate(x, 3), X),
    ("decimate fir, not zero phase", lambda x: ss.decimate(x, 2, ftype="fir", zero_phase=False), X),
    ("resample", lambda x: ss.resample(x, 17), X),
    ("resample with t: y", lambda x: ss.resample(x, 9, t=np.arange(40.0))[0], X),
    ("resample_poly, line padding", lambda x: ss.resample_poly(x, 2, 3, padtype="line"), X),
    ("resample_poly, constant cval", lambda x: ss.resample_poly(x, 3, 1, axis=1, cval=1.5), X2),
    ("upfirdn", lambda x: ss.upfirdn([1.0, 2.0, 1.0], x, up=2, down=3), X),
    ("upfirdn along axis 0, symmetric", lambda x: ss.upfirdn([0.5, 1.0], x, up=3, axis=0, mode="symmetric"),
     X2.T.copy()),
    ("deconvolve: quotient and remainder", lambda x: np.concatenate(ss.deconvolve(x, np.array([1.0, 0.5, 0.2]))), X),
]


@pytest.mark.parametrize("name, f, x", LINEAR, ids=[c[0] for c in LINEAR])
def test_linear_maps_have_scipys_values_and_jacobians(name, f, x):
    g = jacc.trace(f, x)  # the graph is the formula a call that skips f runs: SciPy's values to rounding
    want = f(x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], want, rtol=1e-12, atol=1e-14 * np.abs(want).max())
    assert not g.meta.get("value_dependent")
    want = fd_jacobian(f, [x], 0)
    np.testing.assert_allclose(jacc.jacobian(f)(x), want, atol=1e-8 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("name, f, x", LINEAR[:4] + LINEAR[13:15], ids=[c[0] for c in LINEAR[:4] + LINEAR[13:15]])
def test_a_map_traced_once_holds_at_other_points(name, f, x):
    jf = jacc.jacobian(f, retrace=False)
    jf(x)
    other = x + R.normal(size=x.shape)
    np.testing.assert_allclose(jf(other), fd_jacobian(f, [other], 0), atol=1e-8)
    assert jf.cache.misses == 1


def test_the_primal_traced_once_follows_the_signal():
    f = lambda x: ss.filtfilt(B, A, x) ** 2  # noqa: E731
    jf = jacc.jacobian(f, retrace=False)
    jf(X)
    other = 2.0 * X + 1.0
    np.testing.assert_allclose(jf(other), fd_jacobian(f, [other], 0), atol=1e-7)


def _shapes():
    for s1, s2 in [((7,), (3,)), ((3,), (7,)), ((6,), (4,)), ((5,), (5,)), ((4, 5), (2, 3)), ((2, 3), (4, 5)),
                   ((4, 6), (3, 2)), ((3, 2, 4), (2, 2, 3))]:
        for mode in ("full", "same", "valid"):
            yield s1, s2, mode


_FFT_SHAPES = [((7,), (3,), "same"), ((3,), (7,), "valid"), ((4, 5), (2, 3), "full"), ((2, 3), (4, 5), "same")]


@pytest.mark.parametrize("fn, s1, s2, mode", [(fn, *case) for fn in ("convolve", "correlate") for case in _shapes()]
                         + [(fn, *case) for fn in ("fftconvolve", "oaconvolve") for case in _FFT_SHAPES])
def test_convolutions_match_scipy_in_every_mode(fn, s1, s2, mode):
    big = all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))
    if mode == "valid" and not big:
        pytest.skip("SciPy refuses 'valid' for these shapes too")  # (see test_valid_needs_one_larger_input)
    a, b = R.normal(size=s1), R.normal(size=s2)
    f = lambda a, b: getattr(ss, fn)(a, b, mode=mode)  # noqa: E731
    Ja, Jb = jacc.jacobian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(Ja, fd_jacobian(f, [a, b], 0), atol=1e-8)
    np.testing.assert_allclose(Jb, fd_jacobian(f, [a, b], 1), atol=1e-8)
    g = jacc.trace(f, a, b, argnums=(0, 1))
    want = f(a, b)
    np.testing.assert_allclose(g.evaluate({"a": a, "b": b})[g.outputs[0]], want, rtol=1e-12,
                               atol=1e-14 * np.abs(want).max())


@pytest.mark.parametrize("fn", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_2d_convolutions_with_one_constant_input(fn, mode):
    image, kernel = R.normal(size=(6, 5)), np.array([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])  # one even side
    f = lambda x: getattr(ss, fn)(x, kernel, mode=mode)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(image), fd_jacobian(f, [image], 0), atol=1e-8)


def test_a_convolution_with_a_constant_kernel_is_a_gather_and_a_product():
    kernel = np.ones((3, 3)) / 9
    g = jacc.trace(lambda x: ss.convolve(x, kernel, mode="same"), np.zeros((32, 32)))
    # pad, gather, product, crop and SciPy's value: not one op per kernel entry
    assert [g.op(v) for v in g.topological_order()].count("matmul") == 1 and len(g.nx.nodes) <= 10


def test_scipys_own_errors_pass_through():
    # (the replacement's np.asarray of the traced signal is served, so SciPy's error is not blamed on it)
    with pytest.raises(ValueError, match="must be greater than padlen"):
        jacc.trace(lambda x: ss.sosfiltfilt(SOS, x), np.zeros(20))


def test_valid_needs_one_larger_input():
    with pytest.raises(ValueError, match="'valid' mode.*\\(2, 5\\) and \\(3, 3\\)"):
        jacc.trace(lambda a: ss.convolve(a, np.ones((3, 3)), mode="valid"), np.zeros((2, 5)))


@pytest.mark.parametrize("f, words", [
    (lambda x: ss.lfilter(x[:3], A, X), "lfilter.*b must be a constant \\(only x may be traced\\)"),
    (lambda x: ss.lfilter(B, A, X, zi=x[:3]), "lfilter.*zi must be a constant"),
    (lambda x: ss.resample_poly(x, 2, 1, padtype="median"), "padtype='median' is not linear"),
    (lambda x: ss.detrend(x, overwrite_data=True), "overwrite_data=True"),
    (lambda x: ss.fftconvolve(x, X, axes=0), "fftconvolve.*axes="),
    (lambda x: ss.convolve2d(x.reshape(5, 8), np.ones((2, 2)), boundary="wrap"), "boundary='fill' with fillvalue=0"),
    (lambda x: ss.welch(x, nperseg=16)[1], "welch is not supported.*np.fft.rfft"),
    (lambda x: ss.stft(x, nperseg=16)[2].real, "stft is not supported.*sliding_window_view"),
    (lambda x: np.abs(ss.hilbert(x)), "hilbert gives a complex analytic signal"),
    (lambda x: ss.peak_widths(x, [3])[0], "peak_widths is not supported"),
    (lambda x: ss.find_peaks(x, width=1)[1]["widths"], "find_peaks.*'widths' \\(width=\\) is interpolated"),
])
def test_what_is_not_recorded_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words) as e:
        jacc.trace(f, X)
    assert "test_scipy_signal.py" in str(e.value)


@pytest.mark.parametrize("f", [
    lambda x: x[ss.find_peaks(x)[0]] ** 2,
    lambda x: ss.find_peaks(x, height=0.0)[1]["peak_heights"] * 3.0,
    lambda x: ss.find_peaks(x, prominence=0.1)[1]["prominences"],
    lambda x: np.concatenate([ss.find_peaks(x, threshold=0.0)[1][k] for k in ("left_thresholds", "right_thresholds")]),
    lambda x: x[ss.argrelextrema(x, np.less, order=2)] + x[ss.argrelmax(x)].sum(),
])
def test_peak_positions_are_read_at_the_traced_point_and_their_values_traced(f):
    jf = jacc.jacobian(f)
    for _ in range(3):  # positions change between calls: the trace is value-dependent
        x = R.normal(size=24)
        want = fd_jacobian(f, [x], 0)
        got = jf(x)
        assert got.shape == want.shape and want.size
        np.testing.assert_allclose(got, want, atol=1e-8)


def test_the_module_is_restored_and_constant_calls_go_to_scipy():
    original = ss.lfilter
    seen = []

    def f(x):
        seen.append(type(ss.lfilter(B, A, X)))
        return ss.lfilter(B, A, x)

    jacc.jacobian(f)(X)
    assert ss.lfilter is original and seen == [np.ndarray]


_FRESH = "import sys, numpy as np, jacc\nassert 'scipy.signal' not in sys.modules\n"
_IMPORTS = {
    # The first trace met SciPy's own sosfilt (compiled: 'a bytes-like object is required, not
    # Tracer') because scipy.signal was not imported when the trace began, and that error was not
    # taken as a reason to trace again with the replacements in (the coverage test of sosfiltfilt
    # failed when run alone)
    "f imports it, SciPy's original fails": (
        "def f(x):\n"
        "    import scipy.signal as ss\n"
        "    return ss.sosfiltfilt(np.array([[0.2, 0.4, 0.2, 1.0, -0.3, 0.1]]), x)\n"
        "x = np.linspace(0.0, 1.0, 15)\n"
        "J = jacc.jacobian(f)(x)\n"
        "import scipy.signal as ss\n"
        "want = ss.sosfiltfilt(np.array([[0.2, 0.4, 0.2, 1.0, -0.3, 0.1]]), np.eye(15), axis=0)\n"
        "print(np.allclose(J, want, rtol=1e-12, atol=1e-14) or abs(J - want).max())\n", "True"),
    # SciPy's own argrelmax runs on traced arrays (comparisons read at the traced point), so the
    # first trace succeeded without the replacements, and later traces, with them, made another
    # graph: a plan of the first did not fit the second
    "f imports it, SciPy's original runs": (
        "def f(x):\n"
        "    import scipy.signal as ss\n"
        "    return x[ss.argrelmax(x)] * 2.0\n"
        "x = np.sin(np.linspace(0.0, 9.0, 12))\n"
        "jf = jacc.jacobian(f, strategy='markowitz')\n"
        "J = jf(x)\n"
        "again = jacc.jacobian(f, strategy=jf.plan, backend='interpret')(x)\n"
        "print(np.array_equal(J, again) and J.sum() == 2.0 * len(J) and len(J) == 2 or J)\n", "True"),
    # the retry is for a module f imports while it runs: with scipy.signal imported before, every
    # function's first call ran f twice (and kept the replacements for all its traces)
    "imported before: no second trace": (
        "import scipy.signal\n"
        "calls = []\n"
        "def f(x):\n"
        "    calls.append(1)\n"
        "    return np.sin(x) * 2.0\n"
        "jacc.jacobian(f)(np.ones(3))\n"
        "print(len(calls))\n", "1"),
}


@pytest.mark.parametrize("case", sorted(_IMPORTS))
def test_scipy_signal_imported_by_f_or_before_its_trace(case):
    code, expected = _IMPORTS[case]
    out = in_a_fresh_process(_FRESH + code)
    assert out.stdout.strip() == expected, out.stderr[-2000:] or out.stdout


CUTOFF = 0.3


def test_a_filter_designed_inside_f_lets_later_calls_skip_f_and_follows_its_settings():
    # butter's band transforms are picked from a table by value: the ones a call did not run were
    # "reached only through a value", and every call ran f (1.5 ms where the program takes 6 µs)
    global CUTOFF

    def f(x):
        return ss.sosfilt(ss.butter(2, CUTOFF, output="sos"), x) + ss.lfilter(*ss.butter(1, [0.1, 0.4], "bandstop"), x)

    jf = jacc.jacobian(f)
    x = R.normal(size=12)
    for _ in range(4):
        J = jf(x)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), atol=1e-8)
    try:
        CUTOFF = 0.1  # a global f reads: guarded, so the next call runs f
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), atol=1e-8)
    finally:
        CUTOFF = 0.3


def test_a_signal_shorter_than_the_divisor_is_its_own_remainder_and_refusals_name_no_empty_list():
    f = lambda x: np.concatenate(ss.deconvolve(x, np.array([1.0, 0.5, 0.2])))  # noqa: E731  (SciPy: ([], x))
    np.testing.assert_array_equal(jacc.jacobian(f)(np.array([0.3, -1.2])), np.eye(2))
    with pytest.raises(jacc.UnsupportedOperationError, match=r"height must be a constant \(the positions are read"):
        jacc.jacobian(lambda x: x[ss.find_peaks(x, height=x[0])[0]])(X)


@pytest.mark.parametrize("f", [
    lambda x: np.sum(ss.lfilter(B, A, x) ** 2),
    lambda x: np.sum(np.concatenate(ss.lfilter(B, A, x, zi=np.ones(3))) ** 2),
    lambda x: np.sum(ss.savgol_filter(x, 5, 2) ** 2),
    lambda x: np.sum(ss.convolve(x, np.array([1.0, 2.0, 1.0])) ** 2),
    lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2 * np.arange(21.0)),
    lambda x: np.sum(ss.deconvolve(x, np.array([1.0, 0.5]))[0] ** 2),
])
def test_library_values_anchored_to_formulas_let_later_calls_skip_f(f):
    # SciPy's (or NumPy's FFT's) value minus the traced formula's is rounding that differs from call
    # to call: compared bit for bit, every call ran f (lfilter 650 µs, rfft 820 µs a call, against 20)
    jf = jacc.jacobian(f)
    for k in range(5):
        x = X + 0.05 * k * R.normal(size=X.shape)
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-6)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None


def test_a_call_that_skips_f_computes_the_formula_at_its_own_scale():
    # the library's value minus the formula's, kept as a constant from a first call at 1e4, was added
    # at a call at 1e-12: a Jacobian off by O(1), signs flipped (hunt AM)
    f = lambda x: np.fft.ifft(np.fft.fft(x)).real ** 2 + ss.lfilter(B, A, x) ** 2  # noqa: E731
    jf = jacc.jacobian(f)
    for scale in (1e4, 1e4, 1e4, 1e-12, 1.0, 1e-8):
        x = scale * R.normal(size=16)
        want = jacc.jacobian(f, retrace="always")(x)
        np.testing.assert_allclose(jf(x), want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert jf.cache.skipped >= 3
