"""scipy.fft on traced arrays: NumPy's transforms with SciPy's arguments (jacc.numpy_api.scipy_fft)."""

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc

sf = pytest.importorskip("scipy.fft")


@pytest.mark.parametrize("f", [
    lambda x: np.abs(sf.fft(x[0])) ** 2,
    lambda x: sf.ifft(sf.fft(x, axis=0) * 2.0, axis=0).real,
    lambda x: sf.irfft(sf.rfft(x, n=8, norm="forward"), n=8, norm="forward"),
    lambda x: sf.fftn(x, s=(4, 4)).imag,  # (s without axes: SciPy's last two axes)
    lambda x: sf.irfft2(sf.rfft2(x, workers=2, overwrite_x=True), s=x.shape),
    lambda x: sf.hfft(x[:, 0], n=6),
])
def test_scipy_fft_of_traced_arrays(f):
    # SciPy's own ran on traced values and failed on ndarray.flags
    x = np.random.default_rng(4).normal(size=(3, 5))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-7)
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-12, atol=1e-12)


def test_cosine_transforms_and_plans_are_refused_by_name_and_values_stay_scipys():
    x = np.linspace(0.0, 1.0, 6)
    with pytest.raises(jacc.UnsupportedOperationError, match="scipy.fft.dct at .*not recorded"):
        jacc.jacobian(lambda x: sf.dct(x))(x)
    with pytest.raises(jacc.UnsupportedOperationError, match="scipy.fft.fft with plan= at"):
        jacc.jacobian(lambda x: np.abs(sf.fft(x, plan=object())))(x)
    J = jacc.jacobian(lambda x: x * np.abs(sf.fft(np.arange(6.0)))[0])(x)  # (an FFT of constants: SciPy's)
    np.testing.assert_array_equal(J, np.eye(6) * np.abs(sf.fft(np.arange(6.0)))[0])
