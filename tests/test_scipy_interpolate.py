"""scipy.interpolate of traced values (jacc.numpy_api.scipy_interpolate): values are SciPy's, bit
for bit; the Jacobian in the data is SciPy's own interpolant of the identity (the interpolants are
affine in the data), in traced evaluation points the interpolant's slope; checked against central
differences of SciPy, and against closed forms where there is one."""

import numpy as np
import pytest
from conftest import assert_later_calls_raise, fd_jacobian

import jacc

sint = pytest.importorskip("scipy.interpolate")

R = np.random.default_rng(5)
K = np.linspace(0.0, 2.0, 6)
Y, Y2, Q = R.normal(size=6), R.normal(size=(6, 3)), np.array([0.3, 1.1, 1.7])
GRID = (K, K[:3])
PTS = np.array([[0.5, 0.3], [1.5, 0.7]])

CASES = [
    ("CubicSpline", lambda y: sint.CubicSpline(K, y)(Q), Y),
    ("CubicSpline, natural", lambda y: sint.CubicSpline(K, y, bc_type="natural")(Q), Y),
    ("CubicSpline, clamped to given slopes", lambda y: sint.CubicSpline(K, y, bc_type=((1, 2.0), (2, -1.0)))(Q), Y),
    ("CubicSpline, columns", lambda y: sint.CubicSpline(K, y)(Q), Y2),
    ("CubicSpline, axis=1", lambda y: sint.CubicSpline(K, y.T, axis=1)(Q), Y2),
    ("CubicSpline at traced points", lambda q: sint.CubicSpline(K, Y)(q), Q),
    ("CubicSpline at traced points, axis=1", lambda q: sint.CubicSpline(K, Y2.T, axis=1)(q), Q),
    ("CubicSpline, both traced", lambda y: sint.CubicSpline(K, y)(y[:3] ** 2), Y),
    ("CubicSpline, nu=1", lambda y: sint.CubicSpline(K, y)(Q, 1), Y),
    ("CubicSpline.derivative", lambda y: sint.CubicSpline(K, y).derivative()(Q), Y),
    ("CubicSpline.antiderivative", lambda y: sint.CubicSpline(K, y).antiderivative(2)(Q), Y),
    ("CubicSpline.integrate", lambda y: sint.CubicSpline(K, y).integrate(0.2, 1.3), Y2),
    ("CubicSpline.integrate, traced limits", lambda q: sint.CubicSpline(K, Y).integrate(q[0], q[2]), Q),
    ("CubicSpline, extrapolated", lambda y: sint.CubicSpline(K, y)(np.array([2.5, -0.5])), Y),
    ("make_interp_spline, k=1", lambda y: sint.make_interp_spline(K, y, k=1)(Q), Y),
    ("make_interp_spline, clamped", lambda y: sint.make_interp_spline(K, y, bc_type=([(1, 0.5)], [(1, -2.0)]))(Q), Y),
    ("make_interp_spline at traced points", lambda q: sint.make_interp_spline(K, Y)(q), Q),
    ("BSpline coefficients", lambda c: sint.BSpline(np.r_[[0.0] * 3, K, [2.0] * 3], c, 3)(Q), R.normal(size=8)),
    ("interp1d", lambda y: sint.interp1d(K, y)(Q), Y),
    ("interp1d cubic, axis=-1", lambda y: sint.interp1d(K, y.T, kind="cubic")(Q), Y2),
    ("interp1d with a fill value", lambda y: sint.interp1d(K, y, bounds_error=False, fill_value=3.0)(
        np.array([0.5, 5.0])), Y),
    ("RegularGridInterpolator", lambda v: sint.RegularGridInterpolator(GRID, v)(PTS), Y2),
    ("RegularGridInterpolator slinear", lambda v: sint.RegularGridInterpolator(GRID, v, method="slinear")(PTS), Y2),
    ("interpn", lambda v: sint.interpn(GRID, v, PTS), Y2),
]


@pytest.mark.parametrize("name, f, x", CASES, ids=[c[0] for c in CASES])
def test_values_are_scipys_and_jacobians_its_differences(name, f, x):
    g = jacc.trace(f, x)
    if name == "make_interp_spline at traced points":  # a BSpline run as SciPy's PPoly: equal to rounding
        np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-14)
    else:
        assert np.array_equal(g.evaluate({g.inputs[0]: x})[g.outputs[0]], np.asarray(f(x)))
    want = fd_jacobian(f, [x], 0)
    np.testing.assert_allclose(jacc.jacobian(f)(x), want, atol=1e-8 * max(1.0, np.abs(want).max()))


def test_the_jacobian_in_the_data_is_the_spline_of_the_identity_exactly():
    J = jacc.jacobian(lambda y: sint.CubicSpline(K, y, bc_type="natural")(Q))(Y)
    np.testing.assert_allclose(J, sint.CubicSpline(K, np.eye(6), bc_type="natural")(Q), rtol=1e-14, atol=1e-15)


def test_traced_points_of_a_fixed_curve_find_their_piece_at_each_call():
    f = lambda q: sint.CubicSpline(K, Y)(q)  # noqa: E731  constant data: the ppoly op
    assert not jacc.trace(f, Q).meta.get("value_dependent")
    jf = jacc.jacobian(f, retrace=False)
    for q in (Q, Q + 0.2, Q[::-1] * 1.5):
        np.testing.assert_allclose(jf(q), np.diag(sint.CubicSpline(K, Y).derivative()(q)), rtol=1e-12)
    both = lambda y: sint.CubicSpline(K, y)(y[:3] ** 2)  # noqa: E731  traced data too: read at the point
    assert "piece at the traced point" in jacc.trace(both, Y).meta["value_dependent"][0]


_PTS2 = np.array([[0.1, 0.2], [0.9, 0.1], [0.5, 0.9], [0.2, 0.7], [0.8, 0.8], [0.45, 0.4]])  # as many as Y


@pytest.mark.parametrize("make", [
    lambda y: sint.griddata(_PTS2, y, _PTS2[:3] * 0.9 + 0.05),
    lambda y: sint.griddata(_PTS2, y, np.array([[0.5, 0.5], [3.0, 3.0]]), method="nearest"),
    lambda y: sint.LinearNDInterpolator(_PTS2, np.stack([y, 1 - 2 * y], 1))(np.array([[0.5, 0.5], [3.0, 3.0]])),
    lambda y: sint.NearestNDInterpolator(_PTS2, y)(_PTS2[:2] + 0.01),
    lambda y: sint.RBFInterpolator(_PTS2, y, kernel="gaussian", epsilon=1.5)(np.array([[0.5, 0.5], [0.2, 0.3]])),
])
def test_scattered_data_interpolants_are_affine_in_their_values(make):
    """SciPy's interpolant of the values plus that of the identity times the change: the values
    SciPy's bit for bit (NaN outside the hull), the Jacobian its interpolant of the unit vectors."""
    value, J = jacc.value_and_jacobian(make)(Y)
    np.testing.assert_array_equal(value, make(Y))
    np.testing.assert_allclose(J, fd_jacobian(make, [Y], 0), rtol=1e-7, atol=1e-8)
    jf = jacc.jacobian(make)
    for y in (Y, 2 * Y - 1, Y):
        np.testing.assert_allclose(jf(y), J, rtol=1e-12, atol=1e-13)  # (affine: one Jacobian everywhere)


@pytest.mark.parametrize("kernel", ["thin_plate_spline", "linear", "cubic", "quintic", "multiquadric",
                                    "inverse_multiquadric", "inverse_quadratic", "gaussian"])
@pytest.mark.parametrize("options", [{}, {"degree": 2, "smoothing": 0.01}, {"neighbors": 7}])
def test_an_rbf_interpolant_of_constant_data_at_traced_points(kernel, options):
    """The kernels' and monomials' slopes, SciPy's values bit for bit; at a centre too (the
    distance's own slope at 0 gave NaN), in later calls that run the compiled program as well."""
    eps = {"epsilon": 2.0} if kernel in ("multiquadric", "inverse_multiquadric", "inverse_quadratic", "gaussian") else {}
    points = np.random.default_rng(4).uniform(0.0, 1.0, (12, 2))
    rbf = sint.RBFInterpolator(points, np.stack([np.sin(3 * points[:, 0]), points[:, 1] ** 2], 1), kernel=kernel,
                               **eps, **options)
    f = lambda q: rbf(q)  # noqa: E731
    value, J = jacc.value_and_jacobian(f)(points[:3] * 0.9 + 0.05)
    np.testing.assert_array_equal(value, f(points[:3] * 0.9 + 0.05))
    jf = jacc.jacobian(f, retrace=False)
    for q in (points[:3] * 0.9 + 0.05, points[1:3].copy(), points[:3] * 0.8 + 0.1):
        np.testing.assert_allclose(jf(q), fd_jacobian(f, [q], 0), rtol=1e-6, atol=1e-7)


def test_scattered_data_interpolants_made_outside_f_refuse_traced_points_by_name():
    # SciPy's compiled code raised "Invalid call to pythranized function" (RBF) and a TypeError
    linear = sint.LinearNDInterpolator(_PTS2, Y)
    for f in (lambda q: linear(q), lambda q: sint.griddata(_PTS2, Y, q)):
        with pytest.raises(jacc.UnsupportedOperationError, match=r"at .*test_scipy_interpolate.py.*xi must be"):
            jacc.jacobian(f)(_PTS2[:2] + 0.01)


@pytest.mark.parametrize("f, words", [
    (lambda y: sint.CubicSpline(K * y[0], y)(Q), "CubicSpline.*x must be constant"),
    (lambda y: sint.PchipInterpolator(K, y)(Q), "PchipInterpolator.*nonlinearly"),
    (lambda y: sint.RegularGridInterpolator(GRID, y[:, None] * np.ones(3), method="cubic")(PTS), "iteratively"),
    (lambda y: sint.interp1d(K, Y)(np.abs(y[:2])), "interp1d.*traced points.*CubicSpline"),
    (lambda y: sint.CubicSpline(K, y).c, "attribute .c"),
    (lambda y: sint.griddata(_PTS2, y, _PTS2[:2] + 0.01, method="cubic"), "griddata.*cubic.*iteration"),
    (lambda y: sint.CloughTocher2DInterpolator(_PTS2, y)(_PTS2[:2]), "CloughTocher2DInterpolator.*iteration"),
    (lambda y: sint.RBFInterpolator(_PTS2, y)(_PTS2[:2] * y[0]), "RBFInterpolator.*slope.*constant points"),
])
def test_what_is_not_recorded_is_refused_by_name(f, words):
    with pytest.raises(jacc.UnsupportedOperationError, match=words):
        jacc.jacobian(f)(Y)


@pytest.mark.parametrize("build", [lambda xk, yk: sint.CubicSpline(xk, yk), lambda xk, yk: sint.make_interp_spline(xk, yk)])
def test_integrate_with_traced_limits_follows_the_limits_at_every_call(build):
    # the slope in a limit is read at the traced point: calls that skipped f returned the Jacobian
    # (and value) of the point f was traced at
    xk = np.linspace(0, 3, 7)
    yk = np.sin(xk)

    def f(q):
        return build(xk, yk).integrate(q[0], q[1])

    jf = jacc.jacobian(f)
    spline = build(xk, yk)
    for q in ([0.1, 2.9], [0.1, 2.9], [0.5, 1.0], [0.5, 1.0], [2.0, 0.3]):
        q = np.array(q)
        np.testing.assert_allclose(jf(q), [-spline(q[0]), spline(q[1])], rtol=1e-12)


_XK = np.linspace(0, 3, 7)
_CS = sint.CubicSpline(_XK, np.sin(_XK))  # made before any trace, as a module-level interpolant is
_BS = sint.make_interp_spline(_XK, np.sin(_XK))


@pytest.mark.parametrize("f", [
    lambda q: _CS(q), lambda q: _BS(q), lambda q: _CS(q, 1), lambda q: sint.PPoly.from_spline(_BS)(q),
    lambda q: _CS.integrate(q[0], q[1]), lambda q: _BS.integrate(q[0], q[1]), lambda q: _CS.derivative()(q) * q,
])
def test_an_interpolant_made_outside_f_at_traced_points(f):
    # SciPy's own __call__ ran on the traced points: "a bytes-like object is required, not 'Tracer'"
    jf = jacc.jacobian(f)
    for q in ([0.4, 1.3], [0.4, 1.3], [2.0, 0.7], [2.9, 3.4]):
        q = np.array(q)
        np.testing.assert_allclose(jf(q), fd_jacobian(f, [q], 0), atol=1e-6)
        g = jacc.trace(f, q)
        np.testing.assert_allclose(g.evaluate({g.inputs[0]: q})[g.outputs[0]], f(q), rtol=1e-13, atol=1e-15)


def test_what_an_interpolant_made_outside_f_cannot_record_is_refused_by_name():
    periodic = sint.CubicSpline(_XK, np.r_[np.sin(_XK[:-1]), 0.0], bc_type="periodic")
    grid = sint.RegularGridInterpolator((_XK, _XK), np.outer(np.sin(_XK), np.cos(_XK)))
    q = np.array([0.4, 1.3])
    with pytest.raises(jacc.UnsupportedOperationError, match=r"CubicSpline at .*not periodic"):
        jacc.jacobian(lambda q: periodic(q))(q)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"RegularGridInterpolator at .*xi must be constant"):
        jacc.jacobian(lambda q: grid(q[None, :]))(q)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"integrate at .*extrapolate=True only"):
        jacc.jacobian(lambda q: _CS.integrate(q[0], q[1], extrapolate=False))(q)


def test_splines_at_traced_points_under_float32():
    # SciPy evaluates float64 only: "No matching signature found"
    q = np.array([0.5, 1.7], dtype=np.float32)
    for f in (lambda q: sint.CubicSpline(_XK, np.sin(_XK))(q), lambda q: _BS(q)):
        J32 = jacc.jacobian(f, dtype=np.float32)(q)
        assert J32.dtype == np.float32
        np.testing.assert_allclose(J32, jacc.jacobian(f)(q.astype(float)), rtol=1e-5, atol=1e-6)


def test_a_periodic_cubic_spline_of_traced_data():
    # SciPy refused the unit vectors the basis was built from (their ends differ): every such call
    # failed; now a change of the tied ends is split evenly between them
    xk = np.linspace(0, 2 * np.pi, 7)
    y = np.sin(xk)
    y[-1] = y[0]
    q = np.array([0.5, 2.0, 7.0])  # (7.0: periodic extrapolation)

    def f(y):
        return sint.CubicSpline(xk, y, bc_type="periodic")(q)

    J = jacc.jacobian(f)(y)
    np.testing.assert_allclose(J[:, 0], J[:, -1], rtol=1e-14)
    for d in np.random.default_rng(0).normal(size=(3, 7)):
        d[-1] = d[0]  # (directions SciPy accepts)
        np.testing.assert_allclose(J @ d, (f(y + 1e-6 * d) - f(y - 1e-6 * d)) / 2e-6, atol=1e-8)


def test_ppoly_from_a_spline_made_inside_f():
    # make_interp_spline inside f gives jacc's spline, which SciPy's from_spline could not unpack
    f = lambda q: sint.PPoly.from_spline(sint.make_interp_spline(_XK, np.sin(_XK)))(q)  # noqa: E731
    q = np.array([0.5, 2.2])
    np.testing.assert_allclose(jacc.jacobian(f)(q), fd_jacobian(f, [q], 0), atol=1e-7)
    with pytest.raises(jacc.UnsupportedOperationError, match="PPoly.from_spline at .*traced data"):
        jacc.jacobian(lambda y: sint.PPoly.from_spline(sint.make_interp_spline(_XK, y))(q))(np.sin(_XK))


@pytest.mark.parametrize("f, bad, match", [
    (lambda y: sint.CubicSpline(np.arange(4.0), y, bc_type="periodic")(1.5), np.array([1.0, 2.0, 0.5, 3.0]),
     "must be identical"),
    (lambda y: sint.CubicSpline(np.arange(4.0), np.log(y))(1.5), np.array([1.0, -2.0, 0.5, 1.0]), "only finite values"),
], ids=["periodic ends apart", "not finite"])
def test_data_scipy_refuses_is_refused_at_every_call(f, bad, match):
    """The interpolant is built from the traced data once: later calls took data SciPy refuses
    (their change now carries NaN into the derivative there, so f runs and SciPy raises)."""
    assert_later_calls_raise(f, np.array([1.0, 2.0, 0.5, 1.0]), bad, ValueError, match)


def test_a_grid_interpolator_called_with_a_method_and_a_decreasing_ppoly_follow_scipy():
    """RegularGridInterpolator(...)(xi, method=...) raised a TypeError inside jacc's wrapper; a
    PPoly with decreasing breaks (SciPy takes either order) raised jacc's ShapeError without a call site."""
    gx, gy = np.linspace(0, 1, 4), np.linspace(0, 2, 5)
    V = np.random.default_rng(0).normal(size=(4, 5))
    P = np.array([[0.2, 0.3], [0.7, 1.9]])
    for method in ("nearest", "linear", "slinear"):
        f = lambda v: sint.RegularGridInterpolator((gx, gy), v)(P, method=method)  # noqa: B023, E731
        np.testing.assert_allclose(jacc.jacobian(f)(V), fd_jacobian(f, [V], 0), atol=1e-8)
    with pytest.raises(jacc.UnsupportedOperationError, match="method='cubic' solves"):
        jacc.jacobian(lambda v: sint.RegularGridInterpolator((gx, gy), v)(P, method="cubic"))(V)
    p = sint.PPoly(np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([2.0, 1.0, 0.0]))
    with pytest.raises(jacc.UnsupportedOperationError, match="increasing breaks"):
        jacc.jacobian(lambda v: p(v))(np.array([0.4, 1.5]))


@pytest.mark.parametrize("k", [5, 7, 9])
def test_splines_of_high_degree(k):
    # PPoly.from_spline calls FITPACK's splev, made for degrees up to 5: a degree-9 spline crashed the
    # process (scipy.stats.irwinhall with n ≥ 9 too); its pieces come from BSpline's own evaluation
    from scipy.interpolate import make_interp_spline

    xk = np.linspace(0, 1, 20)
    b = make_interp_spline(xk, np.sin(3 * xk), k=k)
    x = np.array([0.3, 0.6, 0.95])
    np.testing.assert_allclose(np.diag(jacc.jacobian(lambda x: b(x))(x)), b.derivative()(x), rtol=1e-9)
    st = pytest.importorskip("scipy.stats")
    n = k + 2
    z = np.array([n / 2 - 0.5, n / 2 + 0.3, 0.7])
    f = lambda z: st.irwinhall.pdf(z, n)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(z), fd_jacobian(f, [z], 0), rtol=1e-6, atol=1e-12)


def test_the_bspline_class_keeps_its_attributes_while_f_runs():
    # BSpline stood in as a plain function during a trace: BSpline.basis_element, isinstance failed
    from scipy.interpolate import BSpline

    def f(x):
        b = BSpline.basis_element(np.array([0.0, 1.0, 2.0, 3.0]))
        assert isinstance(b, BSpline) and issubclass(type(b), sint.BSpline)
        c = sint.BSpline(np.r_[0.0, 0, 0, 0, 1, 1, 1, 1], x[:4], 3)  # (traced coefficients: the stand-in)
        return b(x) + c(0.5)

    x = np.array([0.5, 1.5, 2.5, 1.2])
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), rtol=1e-7, atol=1e-9)
    assert "BSpline" in repr(sint.BSpline) and isinstance(sint.BSpline, type)  # the class again after


_XS = np.linspace(0.0, 1.0, 8)
_TCK = sint.splrep(_XS, np.sin(3 * _XS))


@pytest.mark.parametrize("f, arg", [
    (lambda z: sint.splev(z, _TCK), np.array([0.05, 0.33, 0.71, 0.98])),
    (lambda z: sint.splev(z, _TCK, der=1), np.array([0.05, 0.33, 0.71, 0.98])),
    (lambda z: sint.splev(z, _TCK, ext=1), np.array([-0.2, 0.5, 1.3])),
    (lambda z: sint.splev(z, _TCK, ext=3), np.array([-0.2, 0.5, 1.3])),
    (lambda z: sint.splev(z, _TCK, der=1, ext=3), np.array([-0.2, 0.5, 1.3])),  # (FITPACK: a slope extrapolates)
    (lambda v: sint.splev(np.array([0.05, 0.33, 0.71]), sint.splrep(_XS, v)), np.sin(3 * _XS)),
    (lambda v: sint.splev(np.array([0.2, 0.6]), sint.splrep(_XS, v, k=2, w=np.linspace(1, 2, 8), t=[0.3, 0.6]), der=1),
     np.sin(3 * _XS)),
    (lambda v: sint.splev(v[:3] * 0.5, sint.splrep(_XS, v)), np.sin(3 * _XS)),
])
def test_fitpack_splrep_and_splev_of_traced_values_and_points(f, arg):
    """splrep's coefficients are linear in y where its knots are fixed (s=0 or t given), splev is
    the B-spline at x: SciPy's values bit for bit, the Jacobian as finite differences, at later calls too."""
    value, J = jacc.value_and_jacobian(f)(arg)
    np.testing.assert_array_equal(value, f(arg))
    jf = jacc.jacobian(f)
    for a in (arg, arg * 0.97 + 0.01, arg):
        np.testing.assert_allclose(jf(a), fd_jacobian(f, [a], 0), rtol=1e-6, atol=1e-7)


def test_fitpack_what_is_not_affine_or_not_recorded_is_refused_by_name():
    y = np.sin(3 * _XS)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"splrep at .*smoothing spline.*s=0"):
        jacc.jacobian(lambda v: sint.splev(0.5, sint.splrep(_XS, v, s=0.1)))(y)
    with pytest.raises(jacc.UnsupportedOperationError, match=r"splrep at .*per="):
        jacc.jacobian(lambda v: sint.splev(0.5, sint.splrep(_XS, v, per=1)))(y)
    with pytest.raises(ValueError, match="not in the domain"):  # (SciPy's own, ext=2)
        jacc.jacobian(lambda z: sint.splev(z, _TCK, ext=2))(np.array([-0.5, 0.5]))


_PTS7 = np.array([[0.1, 0.2], [0.9, 0.1], [0.5, 0.9], [0.2, 0.7], [0.8, 0.8], [0.45, 0.4], [0.3, 0.35]])
_MESH = np.meshgrid([0.4, 0.5], [0.5, 0.6, 0.45])  # (each (3, 2))
_QUERY7 = np.array([[0.4, 0.5], [0.6, 0.3], [0.12, 0.21]])


@pytest.mark.parametrize("f", [
    lambda v: sint.griddata(_PTS7, v, tuple(_MESH)),  # (was read as other points, transposed: hunt BZ)
    lambda v: sint.griddata(_PTS7, v, tuple(_MESH), method="nearest"),
    lambda v: sint.LinearNDInterpolator(_PTS7, v)(tuple(_MESH)),
    lambda v: sint.LinearNDInterpolator(_PTS7, v)(*_MESH),  # (the coordinates as arguments: raised)
    lambda v: sint.NearestNDInterpolator(_PTS7, v)(_PTS7[:3] + 0.01, distance_upper_bound=0.2),  # (raised)
])
def test_scattered_interpolants_take_their_points_as_scipy_does(f):
    v = np.arange(7.0) ** 2
    value, J = jacc.value_and_jacobian(f)(v)
    np.testing.assert_array_equal(value, f(v))
    np.testing.assert_allclose(J, fd_jacobian(f, [v], 0), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("make", [
    lambda y: sint.griddata(_PTS7, y, _QUERY7), lambda y: sint.griddata(_PTS7, y, _QUERY7, method="nearest"),
    lambda y: sint.LinearNDInterpolator(_PTS7, y)(_QUERY7), lambda y: sint.RBFInterpolator(_PTS7, y, neighbors=3)(_QUERY7),
])
def test_non_finite_scattered_data_is_nan_only_where_scipy_reads_it(make):
    # a NaN data value far from the queries made every value NaN (its NaN times M's zeros)
    x = np.arange(1.0, 8.0)
    x[2] = -1.0
    f = lambda x: make(np.log(x))  # noqa: E731
    with np.errstate(invalid="ignore"):
        want = f(x)
        value, J = jacc.value_and_jacobian(f)(x)
    np.testing.assert_array_equal(value, want)
    assert np.isfinite(J[np.isfinite(want)]).all()
    good = np.arange(1.0, 8.0)
    np.testing.assert_allclose(jacc.jacobian(f)(good), fd_jacobian(f, [good], 0), rtol=1e-6, atol=1e-8)

