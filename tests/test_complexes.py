"""Complex intermediates (jacc.numpy_api.complexes): values are NumPy's, Jacobians equal central
differences of NumPy itself for every FFT and its options, complex arithmetic is exact, a
traced-once plan holds at other points, and what is not supported is refused by name."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc

sp = pytest.importorskip("scipy.special")

R = np.random.default_rng(3)
X = R.normal(size=8)
M = R.normal(size=(3, 6))
H = np.array([1.0, 0.5 - 0.2j, 0.25j, -0.3, 0.1 + 0.1j])

FUNCTIONS = [
    ("power spectrum", lambda x: np.abs(np.fft.rfft(x)) ** 2, X),
    ("filter in frequency", lambda x: np.fft.irfft(np.fft.rfft(x) * H, 8), X),
    ("rfft padded, ortho", lambda x: np.fft.rfft(x, n=11, norm="ortho").imag, X),
    ("rfft cropped, forward norm", lambda x: np.fft.rfft(x, n=5, norm="forward").real, X),
    ("irfft odd length", lambda x: np.fft.irfft(x[:5] + 1j * x[3:], n=9), X),
    ("fft along axis 0", lambda x: np.abs(np.fft.fft(x, axis=0)), M),
    ("ifft of a complex input", lambda x: np.fft.ifft(x[0] + 1j * x[1]).imag, M),
    ("hfft and ihfft", lambda x: np.fft.hfft(np.fft.ihfft(x) * 2.0, 8), X),
    ("fft2", lambda x: np.angle(np.fft.fft2(x)[1:, 1:]), M),
    ("ifftn with s", lambda x: np.fft.ifftn(x, s=(4, 4), axes=(0, 1)).real, M),
    ("rfftn on two axes", lambda x: np.abs(np.fft.rfftn(x.reshape(3, 2, 3), axes=(0, 2))), M),
    ("irfftn", lambda x: np.fft.irfftn(np.fft.rfftn(x) * 0.5j, s=M.shape, axes=(0, 1)), M),
    ("fftshift and ifftshift", lambda x: np.fft.ifftshift(np.fft.fftshift(np.fft.fft(x)).imag), X),
    ("fftshift of a real array", lambda x: np.fft.fftshift(x, axes=1), M),
    ("phase: exp(i t)", lambda x: np.real(np.exp(1j * x) * np.exp(-2j * x[::-1])), X),
    ("complex division", lambda x: np.imag((x + 2j) / (x[::-1] - 1j * x)), X),
    ("division by a complex constant", lambda x: ((x + 1j) / (1.0 - 2.0j)).real, X),
    ("conjugate product", lambda x: (np.fft.fft(x) * np.conj(np.fft.fft(x[::-1]))).real, X),
    ("integer power", lambda x: ((x + 0.5j) ** 3).imag, X),
    ("matmul with complex", lambda x: np.abs(np.fft.fft(x, axis=1) @ (M.T + 1j)), M),
    ("sum, mean, indexing, reshape", lambda x: np.abs(np.fft.fft(x).sum()) + np.fft.fft(x).reshape(2, 4)[1].mean().imag
     + np.fft.fft(x)[2].real, X),
    ("angle in degrees", lambda x: np.angle(x + 1j * x[::-1], deg=True), X),
    ("sort_complex: real parts, then imaginary", lambda x: np.sort_complex(np.round(x[0]) + 1j * x[1]).imag
     + 2 * np.sort_complex(np.round(x[0]) + 1j * x[1]).real, M),
    ("sort_complex of a real array", lambda x: np.abs(np.sort_complex(x[::-1])) ** 2, M),
]


@pytest.mark.parametrize("name, f, x", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_values_are_numpys_and_jacobians_central_differences(name, f, x):
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-7)


def test_ffts_are_linear_maps_with_numpys_values_bit_for_bit():
    """At a traced call the values are NumPy's own (anchored); the graph evaluated again runs the
    maps' matrices, NumPy's transform of the identity, equal to rounding only (with NumPy 2.4's FFT
    one unit in the last place off: this test compared that bit for bit)."""
    f = lambda x: np.fft.rfft(x, 8).imag @ np.fft.irfft(np.fft.fft(x), 5)  # noqa: E731
    value, _ = jacc.value_and_jacobian(f)(X)
    np.testing.assert_array_equal(value, f(X))
    g = jacc.trace(f, X)
    np.testing.assert_allclose(g.evaluate({"x": X})[g.outputs[0]], f(X), rtol=1e-14)
    assert not g.meta.get("value_dependent")


def test_the_power_spectrum_slope_in_closed_form():
    """∂|F_k|²/∂x_j = 2 Re(conj(F_k) e^(−2πi jk/n))."""
    F = np.fft.rfft(X)
    E = np.exp(-2j * np.pi * np.outer(np.arange(5), np.arange(8)) / 8)
    want = 2 * np.real(np.conj(F)[:, None] * E)
    np.testing.assert_allclose(jacc.jacobian(lambda x: np.abs(np.fft.rfft(x)) ** 2)(X), want, rtol=1e-12, atol=1e-12)


def test_complex_arithmetic_with_a_zero_imaginary_part_keeps_numpys_values():
    f = lambda x: (np.real(x * 1j * 1j) + np.abs(x + 0j) + np.real(np.exp(x - 0j)) + np.real((x + 0j)[::-1])  # noqa: E731
                   + np.imag(x.astype(complex) * (1 + 2j)))
    J = jacc.jacobian(f)(X)
    np.testing.assert_allclose(J, fd_jacobian(f, [X], 0), atol=1e-7)


def test_a_plan_traced_once_holds_at_other_points():
    f = lambda x: np.fft.irfft(np.fft.rfft(x) * H, 8) ** 2  # noqa: E731
    jf = jacc.jacobian(f, retrace=False)
    jf(X)
    other = R.normal(size=8)
    np.testing.assert_allclose(jf(other), fd_jacobian(f, [other], 0), atol=1e-7)
    assert jf.cache.misses == 1


@pytest.mark.parametrize("f, words", [
    (lambda x: np.fft.fft(x), "output 0 of lambda is complex.*np.real"),
    (lambda x: np.asarray(np.fft.fft(x)).real, "complex array was converted to a plain NumPy array"),
    (lambda x: np.maximum(x, 1j), "maximum of a traced array and a complex value"),
    (lambda x: np.linalg.norm(np.fft.fft(x)), "numpy.linalg.norm of a traced complex array.*not supported"),
    (lambda x: (np.fft.fft(x) ** 0.5).real, "only constant integer powers"),
    (lambda x: np.fft.fft(x, out=np.zeros(8, complex)).real, "out="),
    (lambda x: np.real((x * (1 + 0j)) ** 0.5), "only constant integer powers"),
    # a zero imaginary part is complex still (np.arccos(x - 0j) outside [-1, 1] is complex, not NaN)
    (lambda x: np.imag(np.arccos(x - 0j)), "numpy.arccos of a traced complex array"),
    (lambda x: x + 0j, "output 0 of lambda is complex"),
    # a constant complex array beside a traced output: np.asarray kept its real part with a warning only
    (lambda x: (np.sin(x), np.ones(2) * 1j), "output 1 of lambda is complex"),
    (lambda x: (np.sin(x), np.complex128(2.0)), "output 1 of lambda is complex"),
])
def test_what_is_not_supported_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words):
        jacc.trace(f, X)


@pytest.mark.parametrize("f", [
    lambda x: np.imag(np.sqrt(x + 0j)),  # a zero imaginary part is complex still: imaginary, not NaN
    lambda x: np.real(np.sqrt(x.astype(np.complex128))),
    lambda x: np.sqrt((x + 0j)[1:]).imag * x[:-1],
    lambda x: np.abs(np.sqrt(np.fft.fft(x))),  # im exactly ±0 at DC and Nyquist: NumPy's sign of zero
    lambda x: np.sqrt(np.fft.fft(x)).imag,
    lambda x: np.sqrt(x + 1j * x ** 2).imag + np.sqrt(x - 1j * x ** 2).real,
    lambda x: np.real(np.sqrt(np.fft.rfft(x)) ** 2),  # = the transform's real part
], ids=["imag(x+0j)", "astype", "slice", "abs-fft", "imag-fft", "both-halves", "square"])
def test_complex_square_roots_take_numpys_principal_branch(f):
    """np.sqrt of a complex value was refused; at x + 0j of a negative x the textbook formula
    √((|z| + re)/2) has an infinite derivative (its real part is √0)."""
    x = np.array([-4.0, -0.5, 0.3, 2.0, -1.0, 3.0, -2.5, 0.7])
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-14, atol=1e-15)
    J = jacc.jacobian(f)(x)
    assert np.isfinite(J).all()
    np.testing.assert_allclose(J, fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
    # the branch is a recorded mask (jacc.masks) or read from the values: either way the other
    # signs are followed, and a trace that does not depend on values holds there
    np.testing.assert_allclose(jacc.jacobian(f)(-x), fd_jacobian(f, [-x], 0), rtol=1e-6, atol=1e-8)
    if not g.meta.get("value_dependent"):
        np.testing.assert_allclose(g.evaluate({"x": -x})[g.outputs[0]], f(-x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("scale", [1e170, 1e-170, 1.0])
def test_complex_division_scales_its_denominator_as_numpy_does(scale):
    # c² + d² overflowed past 1e154 (a zero Jacobian) and underflowed below 1e-154 (inf)
    def re_quotient(x):
        return ((x[0] + 1j * x[1]) / (x[2] + 1j * x[3])).real

    a, b, c, d = unit = np.array([1.0, 1.0, 1.0, 2.0])
    p = unit * scale
    n, u = c * c + d * d, a * c + b * d  # (Re is homogeneous of degree 0: the derivative scales as 1/scale)
    exact = np.array([c, d, a - 2 * u * c / n, b - 2 * u * d / n]) / n / scale
    np.testing.assert_allclose(jacc.jacobian(re_quotient)(p), exact, rtol=1e-14)
    w = (1.0 + 1.0j) * scale  # a constant divisor
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jacc.jacobian(lambda x: ((x + 1j) / w).real)(x), np.eye(2) * (1 / (2 * scale)), rtol=1e-15)


_B = np.array([[1.0 + 2.0j, 0.5, -1.0j], [0.3j, 2.0, 1.0 - 1.0j], [1.0, -0.5 + 0.5j, 0.2]])


@pytest.mark.parametrize("f", [
    lambda X: np.abs(_B @ (X + 1j * np.arange(1.0, 4.0))),  # the imaginary part broadcast along rows
    lambda X: (X @ (np.arange(3.0) + 1j * X)).real,
    lambda X: np.abs(_B @ (X + 0.5j)),  # a scalar part
    lambda X: np.abs((X + 1j * X[:, :1]) @ _B),  # a column part, on the left
    lambda X: np.abs(np.sqrt(X ** (1 + 0j))),  # a complex exponent: a complex result, also of a real base
    lambda X: np.fft.fft(X).copy().swapaxes(0, 1).flatten().imag,
])
def test_complex_products_broadcast_their_parts_as_numpy(f):
    # @ multiplied the stored parts as they were: 1j·v kept as the vector v made Bi @ v a
    # matrix-vector product (wrong values and Jacobians); x ** (1 + 0j) lost the complex type
    X = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, -0.6], [-0.9, 0.7, 1.5]])
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-6, atol=1e-8)


def test_complex_sums_refuse_the_keywords_they_do_not_take():
    mask = np.array([True, False, True, False])
    with pytest.raises(jacc.UnsupportedOperationError, match="where="):
        jacc.jacobian(lambda x: np.abs(np.sum(np.fft.fft(x), where=mask)))(np.arange(4.0))
    with pytest.raises(jacc.UnsupportedOperationError, match="write into a traced complex array"):
        def low_pass(x):
            z = np.fft.rfft(x)
            z[2:] = 0
            return np.fft.irfft(z)
        jacc.jacobian(low_pass)(np.arange(6.0))


@pytest.mark.parametrize("make", [lambda x: np.array(x, dtype=complex), lambda x: np.asarray(x, dtype=np.complex128)])
def test_an_array_made_complex_by_its_dtype_is_traced_as_astype(make):
    """np.array(x, dtype=complex) was refused with a hint about float() (found by a hunt), where
    x.astype(complex) is traced."""
    x = np.array([0.5, -1.0, 2.0])
    J = jacc.jacobian(lambda x: np.abs(make(x) * (1.0 + 1.0j)))(x)
    np.testing.assert_allclose(J, np.diag(np.sign(x) * np.sqrt(2.0)), rtol=1e-14)


def test_sort_complex_follows_the_point_and_types_as_numpy():
    x = np.array([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    f = lambda x: np.sort_complex(x[0] + 1j * x[1]).imag * np.arange(1.0, 4.0)  # noqa: E731
    jf = jacc.jacobian(f)
    for point in (x, x[:, ::-1].copy(), x + 0.5):
        for _ in range(2):
            np.testing.assert_allclose(jf(point), fd_jacobian(f, [point], 0), atol=1e-8)
    tied = lambda y: np.sort_complex(np.array([1.0, 0.0, 0.0]) + 1j * y).imag  # noqa: E731  (real parts tie)
    jt = jacc.jacobian(tied)
    for y in (np.array([3.0, -1.0, 2.0]), np.array([3.0, 2.0, -1.0])):
        np.testing.assert_allclose(jt(y), fd_jacobian(tied, [y], 0), atol=1e-8)
    v = np.array([2.5, -1.25, 0.5])
    for dtype in (np.float32, np.float64):
        h = lambda v: np.sort_complex(v.astype(dtype)).real  # noqa: E731
        g = jacc.trace(h, v)
        assert np.array_equal(g.evaluate({g.inputs[0]: v})[g.outputs[0]], h(v))
        np.testing.assert_array_equal(jacc.jacobian(h)(v), np.eye(3)[np.argsort(v)])
    with pytest.raises(np.exceptions.AxisError):
        jacc.jacobian(lambda v: np.sort_complex(v[0]).real)(np.arange(3.0))


@pytest.mark.parametrize("f", [
    lambda t: sp.wofz((t + 0.5j) / np.sqrt(2)).real,  # a Voigt profile
    lambda t: sp.wofz(t).imag + sp.wofz(t).real ** 2,  # of a real argument: complex result
    lambda t: sp.wofz(1.0 + 1j * np.abs(t)).real,
    lambda t: np.abs(sp.erf(t + 0.7j)), lambda t: sp.erfc(0.5 + 1j * t).imag, lambda t: sp.erfi(t * 1j + 0.2).real,
    lambda t: sp.erfcx(t + 1j).real, lambda t: sp.dawsn(t - 0.4j).imag,
])
def test_holomorphic_special_functions_of_complex_values(f):
    """SciPy's value and its complex derivative at the traced point; later calls follow the point."""
    x = np.array([0.3, -1.2, 2.5])
    jf = jacc.jacobian(f)
    for s in (1.0, 1.1, 0.9):
        np.testing.assert_allclose(jf(s * x), fd_jacobian(f, [s * x], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jacc.value_and_jacobian(f)(x)[0], f(x), rtol=1e-14)


def test_a_holomorphic_function_that_overflows_is_refused_by_name():
    # w₀ + w′·(z − z₀) gave NaN where SciPy's value is infinite (hunt CC)
    with pytest.raises(jacc.UnsupportedOperationError, match="wofz .* overflows"):
        jacc.jacobian(lambda t: sp.wofz(t - 30j).real)(np.array([5.0]))
