"""Constant results (jacc.numpy_api.predicates): predicates read from values make the trace
value-dependent, so a later call never reuses a stale mask; shape-only helpers do not; in-place
writers are refused with the way around."""

import os

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.trace import UnsupportedOperationError, trace

HERE = os.path.basename(__file__)
X = np.array([[0.5, -0.3, 0.8], [0.1, 0.2, -0.9], [0.3, 0.4, -0.6]])


@pytest.mark.parametrize("f", [
    lambda x: x * np.isclose(x, 0.5),
    lambda x: x * 2.0 if np.allclose(x, np.abs(x)) else x ** 2,
    lambda x: x * np.all(x > 0, axis=1, keepdims=True),
    lambda x: x * x.any(axis=0),
    lambda x: np.where(np.signbit(x), -x, x ** 2),
    lambda x: x.ravel()[np.nanargmax(x)] * x,
    lambda x: x * np.isin(x, x[0]),
    lambda x: x * np.array_equal(x, np.abs(x)),
    lambda x: x * np.angle(x),
    lambda x: np.nextafter(x, 0.0) * 2.0,
])
def test_a_predicate_of_values_is_retraced_when_the_values_change(f):
    """Traced once (retrace=False) at X, then called at −X: the mask must be −X's."""
    jf = jacc.jacobian(f, retrace=False)
    jf(X)
    np.testing.assert_array_equal(jf(-X), jacc.jacobian(f, compile=False)(-X))
    assert trace(f, X).meta["value_dependent"]


@pytest.mark.parametrize("f", [
    lambda x: x * np.logical_xor(x > 0, x > 0.4),
    lambda x: x * np.logical_and(x > -0.45, np.logical_not(x > 0.55)),
    lambda x: np.where((x > 0) | (x < -0.45), x ** 2, -x),
    lambda x: x * ~(x >= 0.2),
])
def test_logical_ufuncs_of_comparisons_are_recorded(f):
    """Masks (jacc.masks): traced once at X, the plan computes −X's mask itself."""
    jf = jacc.jacobian(f, retrace=False)
    jf(X)
    np.testing.assert_array_equal(jf(-X), jacc.jacobian(f, compile=False)(-X))
    np.testing.assert_allclose(jf(-X), fd_jacobian(f, [-X], 0), atol=1e-8)
    assert not trace(f, X).meta.get("value_dependent")


def test_shape_and_dtype_helpers_read_no_values():
    f = lambda x: x[np.triu_indices_from(x, 1)] + np.imag(x)[0, 0] + x[np.diag_indices_from(x)].sum()  # noqa: E731
    g = trace(f, X)
    assert not g.meta.get("value_dependent")
    J = jacc.jacobian(f)(X)
    want = np.zeros((3, 3, 3))
    for k, (i, j) in enumerate(zip(*np.triu_indices(3, 1))):
        want[k, i, j] = 1.0
    want[:, np.arange(3), np.arange(3)] += 1.0
    np.testing.assert_array_equal(J, want)
    seen = []
    trace(lambda x: seen.extend([np.result_type(x, np.float32), np.iscomplexobj(x), np.isrealobj(x),
                                 np.isreal(x).all(), x.nbytes, x.itemsize, np.common_type(x, np.ones(2, np.float32))])
          or x * 1.0, X)
    assert seen == [np.dtype(np.float64), False, True, True, 72, 8, np.float64]
    np.testing.assert_array_equal(jacc.jacobian(lambda x: np.real_if_close(x) * 2.0)(X[0]), 2.0 * np.eye(3))


@pytest.mark.parametrize("name, write, shape, fix", [
    ("putmask", lambda a, x: np.putmask(a, [True, False, True], x), (3,), "np.where(mask, values, a)"),
    ("copyto", lambda a, x: np.copyto(a, x), (3, 3), "np.where(where, src, dst)"),
    ("place", lambda a, x: np.place(a, [True, False, True], x), (3,), "np.where(mask, values, arr)"),
    ("put_along_axis", lambda a, x: np.put_along_axis(a, np.zeros((3, 1), int), x[:, :1], 1), (3, 3),
     "np.where(mask"),
])
def test_in_place_writers_into_plain_arrays_are_refused_with_the_way_around(name, write, shape, fix):
    """The writers follow NumPy on traced arrays (tests/test_in_place.py) and on arrays f makes
    (tests/test_buffers.py); an array made outside f is NumPy's own, which cannot hold traced values."""
    outside = np.zeros(shape)
    with pytest.raises(UnsupportedOperationError) as e:
        trace(lambda x: write(outside, x) or outside, X)
    msg = str(e.value)
    assert "plain NumPy array" in msg and HERE in msg and fix in msg and not outside.any()
    assert name in jacc.supported_functions()

    def made_in_f(x):
        a = np.zeros(shape)
        write(a, x)
        return a

    np.testing.assert_allclose(jacc.jacobian(made_in_f)(X), fd_jacobian(made_in_f, [X], 0), atol=1e-8)


def test_nextafter_is_numpys_float_with_slope_one_in_its_first_argument():
    x = np.array([0.3, -1.0, 0.0, 1e-310, 2.0])
    y = np.array([1.0, -2.0, -1.0, 0.0, 2.0])
    g = trace(lambda x, y: np.nextafter(x, y), x, y, argnums=(0, 1))
    np.testing.assert_array_equal(g.evaluate({"x": x, "y": y})[g.outputs[0]], np.nextafter(x, y))
    Jx, Jy = jacc.jacobian(lambda x, y: np.nextafter(x, y), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(Jx, np.eye(5))
    np.testing.assert_array_equal(Jy, np.zeros((5, 5)))


def test_einsum_path_and_astype_read_no_values():
    f = lambda x: np.astype(np.einsum("ij,jk,kl", x, x, x, optimize=np.einsum_path("ij,jk,kl", x, x, x)[0]),  # noqa: E731
                            np.float64)
    g = trace(f, X)
    assert not g.meta.get("value_dependent")
    np.testing.assert_allclose(g.evaluate({"x": X})[g.outputs[0]], X @ X @ X, rtol=1e-14)
