"""Tracer and op semantics (issue 12): comparisons, keywords, pow at 0, NaN/inf agreement between
the compiled and executor paths, 0-d values, boolean masks with '...', NumPy integer axes,
ndarray methods, and the numerical conventions at kinks (docs/conventions.md)."""

import itertools
import math
import re
import tempfile
import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.compile import MATH_NAMES
from jacc.ops import BINARY, OPS, ORTHOGONAL, TERNARY, UNARY
from jacc.trace import TraceError, UnsupportedOperationError

_PLAIN3 = np.zeros(3)  # made outside f: NumPy's own array, which cannot hold traced values

HERE = "test_tracer_semantics.py:"


def fd(f, x, h=1e-6):
    """Central finite differences of f at x (Jacobian of shape f(x).shape + x.shape)."""
    x = np.asarray(x, float)
    y0 = np.asarray(f(x))
    J = np.zeros(y0.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        J[(...,) + i] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
    return J


def both(f, *args, argnums=0):
    """The Jacobian from the compiled path and from the executor (they must agree; a small
    function may run its scalar-level plan, whose rounding differs by an ulp or two)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = jacc.jacobian(f, argnums, nonfinite="propagate")(*args)
        b = jacc.jacobian(f, argnums, nonfinite="propagate", compile=False)(*args)
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-300)
    return a


# -- item 1: == and != compare values and mark the trace value-dependent ------------------------


def test_ne_mask_in_where_selects_by_value():
    x = np.array([0.0, 2.0, -4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        J = jacc.jacobian(lambda x: np.where(x != 0, 1 / x, 0.0), nonfinite="propagate")(x)
    # the masked-in entries are -1/x²; structural zeros stay exactly 0 next to the NaN at x = 0
    assert J[1, 1] == -0.25 and J[2, 2] == -1 / 16
    assert np.all(J[~np.eye(3, dtype=bool)] == 0.0)
    assert np.isnan(J[0, 0])  # 0·(−∞) as in jax.grad; see docs/conventions.md for the safe form
    g = jacc.trace(lambda x: np.where(x != 0, 1 / x, 0.0), x)
    assert g.evaluate({"x": x})[g.outputs[0]].tolist() == [0.0, 0.5, -0.25]
    # the mask is recorded (jacc.masks): the trace holds at a point where other entries are zero
    assert "value_dependent" not in g.meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert g.evaluate({"x": np.array([4.0, 0.0, 1.0])})[g.outputs[0]].tolist() == [0.25, 0.0, 1.0]


def test_double_where_gives_zero_at_the_masked_point():
    x = np.array([0.0, 2.0])
    J = jacc.jacobian(lambda x: np.where(x != 0, 1 / np.where(x != 0, x, 1.0), 0.0))(x)
    np.testing.assert_array_equal(J, [[0.0, 0.0], [0.0, -0.25]])


@pytest.mark.parametrize("f, at, want", [
    (lambda x: x * 10 if x == 2 else x, 2.0, 10.0),
    (lambda x: x * 10 if x == 2 else x, 3.0, 1.0),
    (lambda x: x * 10 if 2 == x else x, 2.0, 10.0),
    (lambda x: x * 10 if x != 2 else x, 2.0, 1.0),
    (lambda x: x * 10 if np.float64(2.0) == x else x, 2.0, 10.0),
    (lambda x: x * 10 if x == x else x, 2.0, 10.0),
    (lambda x: x * 10 if np.all(np.array([2.0, 2.0]) == x) else x, np.array([2.0, 2.0]), 10 * np.eye(2)),
    (lambda x: x * 10 if np.any(np.array([1.0, 2.0]) <= x) else x, np.array([0.0, 0.0]), np.eye(2)),
])
def test_equality_takes_the_branch_of_the_value(f, at, want):
    np.testing.assert_array_equal(jacc.jacobian(f)(at), want)
    assert jacc.trace(f, at).meta["value_dependent"]


def test_traced_values_are_unhashable_like_ndarrays():
    def f(x):
        hash(x)
        return x
    with pytest.raises(TypeError, match="unhashable"):
        jacc.jacobian(f)(1.0)


def test_scalarized_inputs_compare_too():
    f = lambda x: x[0] * 3.0 if x[0] == 1.0 else x[1]  # noqa: E731
    g = jacc.trace(f, np.array([1.0, 5.0]), scalarize=True)
    assert g.meta["value_dependent"] and g.op(g.outputs[0]) == "mul"


# -- item 5: keywords are implemented or refused, never dropped ---------------------------------


@pytest.mark.parametrize("fn, initial, x", [
    (np.max, 5.0, [0.0, 2.0]), (np.max, 1.0, [0.0, 2.0]), (np.min, -1.0, [0.0, 2.0]),
    (np.min, 1.0, [0.0, 2.0]), (np.sum, 5.0, [0.0, 2.0]), (np.prod, 3.0, [1.5, 2.0]),
])
def test_initial_is_applied(fn, initial, x):
    f = lambda x: fn(x, initial=initial)  # noqa: E731
    x = np.array(x)
    g = jacc.trace(f, x)
    assert float(g.evaluate({"x": x})[g.outputs[0]]) == pytest.approx(fn(x, initial=initial))
    np.testing.assert_allclose(both(f, x), fd(f, x), atol=1e-8)


def test_max_initial_tie_is_shared_like_maximum():
    np.testing.assert_array_equal(jacc.jacobian(lambda x: np.max(x, initial=2.0))(np.array([0.0, 2.0])),
                                  [0.0, 0.5])


def test_initial_on_an_empty_array_is_the_constant():
    J = jacc.jacobian(lambda x, y: np.max(x, initial=3.0) * y, argnums=1)(np.zeros(0), 2.0)
    assert float(J) == 3.0


@pytest.mark.parametrize("fn", [np.sum, np.mean])
def test_where_keyword_masks_the_reduction(fn):
    mask = np.array([[True, False, True], [False, False, True]])
    f = lambda x: fn(x, axis=1, where=mask)  # noqa: E731
    x = np.arange(6.0).reshape(2, 3)
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], fn(x, axis=1, where=mask))
    np.testing.assert_allclose(both(f, x), fd(f, x), atol=1e-8)


def test_numpy_positional_order_is_kept():
    x = np.arange(6.0).reshape(2, 3)
    g = jacc.trace(lambda x: np.sum(x, 1, None, None, True), x)  # axis, dtype, out, keepdims
    assert g.shape(g.outputs[0]) == (2, 1)
    g = jacc.trace(lambda x: np.max(x, 0, None, True), x)  # axis, out, keepdims
    assert g.shape(g.outputs[0]) == (1, 3)


@pytest.mark.parametrize("f, key", [
    (lambda x: np.sum(x, out=np.zeros(())), "out="),
    (lambda x: np.sum(x, dtype=np.float32), "dtype="),
    (lambda x: x.mean(dtype=np.int64), "dtype="),
    (lambda x: np.max(x, where=x * 1.0, initial=0.0), "numpy.max with a traced where="),
    (lambda x: np.min(x, out=np.zeros(())), "out="),
    (lambda x: x.sum(frobnicate=1), "frobnicate"),
    (lambda x: np.concatenate([x, x], casting="no"), "casting="),
    (lambda x: np.concatenate([x, x], out=np.zeros(6)), "out="),
    (lambda x: np.stack([x, x], out=np.zeros((2, 3))), "out="),
    (lambda x: np.einsum("i->i", x, dtype=np.float32), "dtype="),
    (lambda x: np.einsum("i->i", x, order="F"), "order="),
    (lambda x: np.clip(x, 0, 1, out=np.zeros(3)), "out="),
    (lambda x: np.dot(x, x, out=np.zeros(())), "out="),
    (lambda x: np.cumsum(x, out=np.zeros(3)), "out="),
    (lambda x: np.var(x, where=x * 1.0), "numpy.var with a traced where="),
    (lambda x: np.add(x, x, out=_PLAIN3), "out=a"),
])
def test_unimplemented_keywords_raise_naming_keyword_and_call_site(f, key):
    with pytest.raises(UnsupportedOperationError) as e:
        jacc.trace(f, np.array([1.0, -2.0, 3.0]))
    assert key in str(e.value) and HERE in str(e.value)


def test_accepted_noop_keywords_change_nothing():
    x = np.array([1.0, -2.0, 3.0])
    f = lambda x: np.sum(x, dtype=np.float64, out=None) + np.einsum("i->", x, optimize=True)  # noqa: E731
    np.testing.assert_array_equal(jacc.jacobian(f)(x), [2.0, 2.0, 2.0])


# -- item 7: the pow family at 0 -----------------------------------------------------------------


@pytest.mark.parametrize("a, b, da, db", [
    (0.0, 2.0, 0.0, 0.0),            # JAX: 0, 0
    (0.0, 0.0, 0.0, 0.0),            # a⁰ ≡ 1
    (0.0, 1.0, 1.0, 0.0),
    (0.0, 0.5, math.inf, 0.0),
    (0.0, -1.0, -math.inf, math.nan),
    (2.0, 0.0, 0.0, math.log(2.0)),
    (-2.0, 2.0, -4.0, math.nan),     # log of a negative base
    (3.0, 2.5, 2.5 * 3.0 ** 1.5, math.log(3.0) * 3.0 ** 2.5),
])
def test_pow_partials(a, b, da, db):
    ga, gb = both(lambda a, b: a ** b, a, b, argnums=(0, 1))
    np.testing.assert_allclose([ga, gb], [da, db], rtol=1e-14)
    ga, gb = both(lambda a, b: a ** b, np.full(2, a), np.full(2, b), argnums=(0, 1))
    np.testing.assert_allclose([np.diag(ga), np.diag(gb)], [[da, da], [db, db]], rtol=1e-14)


@pytest.mark.parametrize("f", [lambda x: x ** 0, lambda x: x ** 0.0, lambda x: np.power(x, 0.0)])
def test_x_to_the_zero_has_zero_derivative_at_zero(f):
    assert float(both(f, 0.0)) == 0.0
    np.testing.assert_array_equal(both(f, np.zeros(3)), np.zeros((3, 3)))


def test_zero_base_constant_power_of_traced_exponent():
    assert float(both(lambda y: 0.0 ** y, 2.0)) == 0.0


# -- item 8: compiled and executor paths agree at NaN and ±inf, op by op ------------------------

def _scipy(name):
    """scipy.special.<name>, imported when the test runs (SciPy is optional)."""
    return lambda *xs: getattr(pytest.importorskip("scipy.special"), name)(*xs)


_UNARY_FN = {"neg": np.negative, "abs": np.abs, "identity": lambda x: x, "alias": lambda x: x,
             **{n: _scipy(n) for n in ("expit", "logit", "erf", "erfc", "ndtr", "log_ndtr", "gammaln", "log_expit",
                                       "erfinv", "ndtri", "gamma", "psi", "entr", "i1", "i0e", "i1e", "cosm1",
                                       "erfcx", "dawsn", "exp1", "expi", "rgamma", "loggamma", "j0", "j1", "y0",
                                       "y1", "k0", "k1", "gammasgn", "spence", "ellipk", "ellipe", "erfi",
                                       "erfcinv", "exprel", "kolmogorov", "kolmogi")},
             # (W's real branches: a point where W is complex, and a trace refuses it, is moved onto them)
             "lambertw": lambda x: _scipy("lambertw")(np.where(x >= -1 / math.e, x, 0.5)).real,
             "lambertw_m1": lambda x: _scipy("lambertw")(np.where((x >= -1 / math.e) & (x < 0), x, -0.2), -1).real,
             **{f"{n}_{part}": (lambda n, k: lambda x: _scipy(n)(x)[k])(n, k)
                for n, parts in (("fresnel", ("s", "c")), ("sici", ("si", "ci")), ("airy", ("ai", "aip", "bi", "bip")))
                for k, part in enumerate(parts)}}
_BINARY_FN = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
              "maximum": np.maximum, "minimum": np.minimum,
              **{n: getattr(np, n) for n in ("fmax", "fmin", "arctan2", "hypot", "logaddexp", "logaddexp2", "fmod",
                                             "remainder", "copysign", "heaviside", "floor_divide")},
              "xlogy": _scipy("xlogy"), "xlog1py": _scipy("xlog1py"), "rel_entr": _scipy("rel_entr"),
              **{n: _scipy(n) for n in ("betaln", "poch", "gammainc", "gammaincc", "chdtr", "chdtrc", "stdtr",
                                        "kl_div", "huber", "pseudo_huber", "beta", "polygamma", "gammaincinv",
                                        "gammainccinv", "chdtri", "stdtrit", "binom", "powm1", "boxcox", "boxcox1p",
                                        "inv_boxcox", "inv_boxcox1p", "jv", "yv", "iv", "kv", "jve", "yve", "ive",
                                        "kve", "pdtr", "pdtrc", "owens_t", "ellipkinc", "ellipeinc", "struve",
                                        "modstruve", "zeta")},
              **{f"spherical_{k}": (lambda k: lambda n, x: _scipy(f"spherical_{k}")(np.asarray(n).astype(int), x))(k)
                 for k in ("jn", "yn", "in")},
              **{f"ellipj_{part}": (lambda k: lambda u, m: _scipy("ellipj")(u, m)[k])(k)
                 for k, part in enumerate(("sn", "cn", "dn", "ph"))}}
_BINARY_FN.update({n: getattr(np, n) for n in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
                                                "logical_and", "logical_or", "logical_xor")})  # (masks: jacc.masks)
_TERNARY_FN = {n: _scipy(n) for n in ("betainc", "betaincc", "betaincinv", "betainccinv", "fdtr", "fdtrc", "fdtri",
                                      "bdtr", "bdtrc", "nbdtr", "nbdtrc", "gdtr", "gdtrc", "lpmv")}


def _degree(n, whole=False):
    """A degree the orthogonal polynomials record (≥ 0: negative ones are refused; Hermite's whole)."""
    return n if math.isfinite(n) and n >= 0 and (not whole or n == int(n)) else 3.0


def _positive_b(b):
    return b if math.isfinite(b) and b > 0 else 1.5  # (hyp1f1 refuses b ≤ 0)


for _n in ORTHOGONAL:
    if _n in BINARY:
        _BINARY_FN[_n] = (lambda fn, whole: lambda n, x: fn(_degree(n, whole), x))(_scipy(_n), "hermite" in _n)
    elif _n in TERNARY:
        _TERNARY_FN[_n] = (lambda fn: lambda n, a, x: fn(_degree(n), a, x))(_scipy(_n))
_BINARY_FN.update(expn=_scipy("expn"), hyp0f1=_scipy("hyp0f1"))
# (SciPy's hyp1f1(2, 3, inf) never returns: x = inf is kept from it)
_TERNARY_FN["hyp1f1"] = lambda a, b, x: _scipy("hyp1f1")(a, _positive_b(b), np.where(x == np.inf, 0.0, x))
_POINTS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.0]


def _agree(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isinf(a) * np.sign(a), np.isinf(b) * np.sign(b))
    ok = np.isfinite(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-13)


def _paths(f, points, argnums):
    """(compiled, executed) Jacobians of ``f`` at each argument tuple of ``points``; one jacobian
    per path serves every point (a repeated trace reuses its plan, as users' calls do)."""
    jc = jacc.jacobian(f, argnums, nonfinite="propagate")
    ji = jacc.jacobian(f, argnums, nonfinite="propagate", compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for args in points:
            a = jc(*args)
            assert jc.last is None  # the compiled path really ran
            yield a, ji(*args)


# the factor c makes the primal value part of the Jacobian (∂/∂c = op(...)), so values are compared too


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_paths_agree_at_nonfinite_points(op):
    assert set(UNARY) <= set(_UNARY_FN) | {n for n in UNARY if hasattr(np, n)}
    fn = _UNARY_FN.get(op) or getattr(np, op)
    for a, b in _paths(lambda x, c: fn(x) * c, [(x, 1.5) for x in _POINTS], (0, 1)):
        for u, v in zip(a, b):
            _agree(u, v)


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_paths_agree_at_nonfinite_points(op):
    assert set(BINARY) == set(_BINARY_FN)  # a new op needs a row here
    fn = _BINARY_FN[op]
    argnums = tuple(k for k in (0, 1, 2) if k not in OPS[op].constant)  # (a shape parameter stays constant)
    points = [(x, y, 1.5) for x, y in itertools.product(_POINTS, _POINTS)]
    for a, b in _paths(lambda x, y, c: fn(x, y) * c, points, argnums):
        for u, v in zip(a, b):
            _agree(u, v)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # (SciPy's, for bdtr's n = 0.5)
@pytest.mark.parametrize("op", sorted(TERNARY))
def test_ternary_paths_agree_at_nonfinite_points(op):
    assert set(TERNARY) == set(_TERNARY_FN)  # a new op needs a row here
    fn = _TERNARY_FN[op]
    argnums = tuple(k for k in (0, 1, 2, 3) if k not in OPS[op].constant)  # (bdtr's counts stay constant)
    points = [(a, b, x, 1.5) for a, b, x in itertools.product([2.0, 0.5, math.nan], [3.0, math.inf],
                                                               _POINTS + [0.25, 3.0])]
    for u, v in _paths(lambda a, b, x, c: fn(a, b, x) * c, points, argnums):
        for p, q in zip(u, v):
            _agree(p, q)


def test_scalar_helpers_propagate_nan_like_numpy():
    nan = math.nan
    assert math.isnan(MATH_NAMES["sign"](nan))
    for name in ("maximum", "minimum"):
        assert math.isnan(MATH_NAMES[name](nan, 1.0)) and math.isnan(MATH_NAMES[name](1.0, nan))
    assert math.isnan(float(both(abs, nan)))


# -- item 10: 0-d values ---------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [np.max, np.min, np.sum, np.mean, lambda x: np.max(x, axis=())])
def test_reductions_of_a_scalar(fn):
    assert float(both(fn, 2.0)) == 1.0
    assert float(both(lambda x: fn(x * x), 3.0)) == 6.0


def test_einsum_with_a_scalar_operand():
    x = np.array([1.0, -2.0])
    Ja, Jx = both(lambda a, x: np.einsum(",i->i", a, x), 3.0, x, argnums=(0, 1))
    np.testing.assert_array_equal(Ja, x)
    np.testing.assert_array_equal(Jx, 3.0 * np.eye(2))


def test_max_of_an_empty_axis_is_a_clear_error():
    with pytest.raises(TraceError, match=f"amax at .*{HERE}.*empty axis"):
        jacc.trace(lambda x: np.max(x, axis=0), np.zeros((0, 2)))


# -- item 11: boolean masks with '...' ------------------------------------------------------------


def _selection(shape, index):
    """The 0/1 Jacobian of x ↦ x[index] built from NumPy's own indexing."""
    n = math.prod(shape)
    picked = np.arange(n).reshape(shape)[index]
    J = np.zeros(picked.shape + (n,))
    for pos in np.ndindex(picked.shape):
        J[pos + (picked[pos],)] = 1.0
    return J.reshape(picked.shape + shape)


X3 = np.arange(24.0).reshape(2, 3, 4)
M1, M3, M4 = np.array([True, False]), np.array([True, False, True]), np.array([False, True, True, False])
M12 = np.array([[True, False, True], [False, True, True]])


@pytest.mark.parametrize("index", [
    (M1, ...), (..., M4), (M1, ..., M4), (M12, ...), (..., M3, slice(None)), (0, ..., M4),
    (M1, None, ...), (..., M3.tolist(), 1), (slice(None), ...),
])
def test_boolean_masks_with_ellipsis(index):
    g = jacc.trace(lambda x: x[index], X3)
    np.testing.assert_array_equal(g.evaluate({"x": X3})[g.outputs[0]], X3[index])
    np.testing.assert_array_equal(jacc.jacobian(lambda x: x[index])(X3), _selection(X3.shape, index))


def test_two_ellipses_are_a_clear_error():
    with pytest.raises(TraceError, match=f"{HERE}.*more than one"):
        jacc.trace(lambda x: x[..., 0, ...], X3)


# -- item 12: NumPy integers wherever an axis, shape or index is taken --------------------------

I = np.int64  # noqa: E741


@pytest.mark.parametrize("f, g", [
    (lambda x: np.sum(x, axis=I(1)), lambda x: np.sum(x, axis=1)),
    (lambda x: x.mean(axis=(I(0), np.int32(2))), lambda x: x.mean(axis=(0, 2))),
    (lambda x: np.max(x, axis=I(-1)), lambda x: np.max(x, axis=-1)),
    (lambda x: x.min(I(0)), lambda x: x.min(0)),
    (lambda x: np.concatenate([x, x], axis=I(2)), lambda x: np.concatenate([x, x], axis=2)),
    (lambda x: np.stack([x, x], axis=I(1)), lambda x: np.stack([x, x], axis=1)),
    (lambda x: np.moveaxis(x, I(0), I(2)), lambda x: np.moveaxis(x, 0, 2)),
    (lambda x: np.moveaxis(x, (I(0), 1), (2, I(0))), lambda x: np.moveaxis(x, (0, 1), (2, 0))),
    (lambda x: x.transpose(I(2), I(0), I(1)), lambda x: x.transpose(2, 0, 1)),
    (lambda x: np.transpose(x, (I(1), 0, 2)), lambda x: np.transpose(x, (1, 0, 2))),
    (lambda x: x.reshape(I(6), I(4)), lambda x: x.reshape(6, 4)),
    (lambda x: np.reshape(x, (I(4), -1)), lambda x: np.reshape(x, (4, -1))),
    (lambda x: np.broadcast_to(x[0, 0], (I(2), I(4))), lambda x: np.broadcast_to(x[0, 0], (2, 4))),
    (lambda x: x[I(1), I(0):I(2), ::I(2)], lambda x: x[1, 0:2, ::2]),
    (lambda x: np.squeeze(x[:1], axis=I(0)), lambda x: np.squeeze(x[:1], axis=0)),
    (lambda x: np.cumsum(x, axis=I(1)), lambda x: np.cumsum(x, axis=1)),
    (lambda x: x * np.size(x, I(1)), lambda x: x * 3),
])
def test_numpy_integer_axes(f, g):
    np.testing.assert_array_equal(jacc.jacobian(f)(X3), jacc.jacobian(g)(X3))
    assert jacc.trace(f, X3).to_dict() == jacc.trace(g, X3).to_dict()  # params stay plain ints


@pytest.mark.parametrize("f", [lambda x: np.sum(x, axis=1.0), lambda x: x.reshape(2.0, 12),
                               lambda x: np.concatenate([x, x], axis="0")])
def test_non_integer_axes_are_a_clear_error(f):
    with pytest.raises(TypeError, match=f"must be an integer.*{HERE}"):
        jacc.trace(f, X3)


# -- item 13: ndarray methods, and clear refusals -----------------------------------------------

V = np.array([0.5, -2.0, 3.0, 0.0])


@pytest.mark.parametrize("f", [lambda x: x.astype(float), lambda x: x.astype(np.float64), lambda x: x.copy(),
                               lambda x: np.copy(x), lambda x: x.real, lambda x: np.real(x), lambda x: x.conj(),
                               lambda x: np.conjugate(x)])
def test_value_preserving_methods_are_the_identity(f):
    np.testing.assert_array_equal(both(f, V), np.eye(4))


@pytest.mark.parametrize("f", [
    lambda x: x.clip(-1.0, 1.0), lambda x: np.clip(x, [0.0, -3.0, 0.0, -1.0], 2.0),
    lambda x: np.clip(x, min=np.array([1.0, -1.0, 2.0, 0.5])), lambda x: x.std(), lambda x: np.var(x),
    lambda x: np.std(x, ddof=1), lambda x: np.var(x, correction=1), lambda x: x.prod(), lambda x: np.prod(x[:3]),
    lambda x: np.cumsum(x), lambda x: x.cumsum(), lambda x: np.concatenate([x, x[:2]], axis=None),
    lambda x: np.std(x.reshape(2, 2), axis=0), lambda x: np.prod(x.reshape(2, 2), axis=1, keepdims=True),
    lambda x: np.cumsum(x.reshape(2, 2), axis=0),
])
def test_composed_methods_match_numpy_and_finite_differences(f):
    x = V + np.array([0.0, 0.0, 0.0, 0.25])  # away from the kinks
    g = jacc.trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-14)
    np.testing.assert_allclose(both(f, x), fd(f, x), atol=1e-7)


def test_prod_with_zeros_is_exact():
    # d(x0·x1·x2)/dx at a zero: the product of the others (no division by x)
    np.testing.assert_array_equal(both(np.prod, np.array([0.0, 2.0, 3.0])), [6.0, 0.0, 0.0])
    np.testing.assert_array_equal(both(np.prod, np.array([0.0, 0.0, 3.0])), [0.0, 0.0, 0.0])


def test_clip_bounds_that_broadcast_the_argument():
    lo = np.array([[0.0], [1.0]])
    f = lambda x: np.clip(x, lo, 2.5)  # noqa: E731
    x = np.array([0.5, 1.5, 3.0])
    g = jacc.trace(f, x)
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
    np.testing.assert_allclose(both(f, x), fd(f, x), atol=1e-9)


@pytest.mark.parametrize("f, what", [
    (lambda x: x.resize(2), ".resize"), (lambda x: x.imag, ".imag"), (lambda x: x[:2].sort(), ".sort"),
    (lambda x: x.tolist(), ".tolist()"), (lambda x: x.item(), ".item()"), (lambda x: x.view(np.int64), ".view"),
    (lambda x: range(x[0]), "index or size"), (lambda x: np.fmin.reduceat(x, [0, 1]), "numpy.fmin.reduceat"),
])
def test_unsupported_usage_names_the_call_site(f, what):
    with pytest.raises(UnsupportedOperationError) as e:
        jacc.trace(f, V)
    assert what in str(e.value) and HERE in str(e.value)


@pytest.mark.parametrize("f", [
    lambda x: np.clip(x, x[0], 1.0), lambda x: np.clip(x, 0.5, 2.0 * x[::-1]), lambda x: x.clip(max=x[1]),
    lambda x: np.clip(x[:, None], x[None, :], None),  # bounds that broadcast the argument
])
def test_clip_with_traced_bounds_is_numpys_maximum_then_minimum(f):
    x = np.array([0.3, 1.7, 0.9, 2.5])
    g = jacc.trace(f, x)
    np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd(f, x), atol=1e-9)


def test_item_assignment_into_the_input_and_into_scalarized_arguments():
    def f(x):
        x[0] = 1.0
        return x
    J = jacc.jacobian(f)(V.copy())
    np.testing.assert_array_equal(J, np.diag([0.0] + [1.0] * (len(V) - 1)))
    # a scalarized argument is a fresh object array of scalars: writing into it is ordinary code
    g = jacc.trace(f, V, scalarize=True)
    J = jacc.plan(g, "reverse").execute(*V)
    assert J[g.outputs[0], "x[0]"] == 0.0 and J[g.outputs[1], "x[1]"] == 1.0


def test_unknown_attributes_stay_attribute_errors():
    def f(x):
        assert not hasattr(x, "resize") and not hasattr(x, "no_such_thing")
        assert not hasattr(x, "__array_interface__")
        return x * 2.0
    np.testing.assert_array_equal(jacc.jacobian(f)(V), 2 * np.eye(4))


# -- conventions at kinks (docs/conventions.md) ----------------------------------------------------


@pytest.mark.parametrize("f, x, want", [
    (np.abs, 0.0, 0.0),                                                  # sign(0)
    (lambda x: np.clip(x, 0.0, 1.0), 0.0, 1.0),                          # bounds are inside
    (lambda x: np.clip(x, 0.0, 1.0), 1.0, 1.0),
    (lambda x: np.clip(x, 0.0, 1.0), 1.5, 0.0),
    (np.sqrt, 0.0, math.inf),
    (lambda x: np.maximum(x, 1.0), 1.0, 0.5),                            # ties: ½ each
    (lambda x: np.minimum(x, 1.0), 1.0, 0.5),
])
def test_scalar_conventions(f, x, want):
    assert float(both(f, x)) == want


@pytest.mark.parametrize("fn", [np.max, np.min])
def test_reduction_ties_share_equally(fn):
    sign = 1.0 if fn is np.max else -1.0
    np.testing.assert_array_equal(both(fn, sign * np.array([1.0, 1.0, 0.0, 1.0])), [1 / 3, 1 / 3, 0.0, 1 / 3])
    np.testing.assert_array_equal(both(fn, sign * np.array([2.0, 0.0, 2.0])), [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(both(fn, sign * np.array([2.0, 0.0, 3.0])), [0.0, 0.0, 1.0])


@pytest.mark.slow  # importing JAX takes about a second
def test_conventions_against_jax():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    jax.config.update("jax_enable_x64", True)
    same = [(jnp.sqrt, np.sqrt, 0.0), (lambda x: jnp.maximum(x, 1.0), lambda x: np.maximum(x, 1.0), 1.0),
            (lambda x: x ** 2.0, lambda x: x ** 2.0, 0.0), (lambda y: 0.0 ** y, lambda y: 0.0 ** y, 2.0)]
    for jf, nf, x in same:
        assert float(jax.grad(jf)(x)) == float(both(nf, x))
    x = np.array([2.0, 0.0, 2.0])
    np.testing.assert_array_equal(jax.grad(jnp.max)(x), both(np.max, x))
    # the documented differences: |x| and clip at the kink
    assert float(jax.grad(jnp.abs)(0.0)) == 1.0 and float(both(np.abs, 0.0)) == 0.0
    assert float(jax.grad(lambda x: jnp.clip(x, 0.0, 1.0))(0.0)) == 0.5


def test_clip_with_array_bounds_round_trips_through_a_graph_file():
    g = jacc.trace(lambda x: np.clip(x, [0.0, 1.0], 2.0), np.array([-1.0, 3.0]))
    g2 = jacc.Graph.from_dict(g.to_dict(), "clip.json")
    np.testing.assert_array_equal(g2.evaluate({"x": np.array([-1.0, 3.0])})[g2.outputs[0]], [0.0, 2.0])


@pytest.mark.parametrize("vlabels, vshape", [((0, 1), (2, 3)), ((1,), (3,)), ((), ())])
def test_materialised_diagonals_keep_structural_zeros_next_to_nan(vlabels, vshape):
    from jacc.structure import Jac
    vals = np.arange(1.0, 1.0 + math.prod(vshape)).reshape(vshape)
    vals.flat[0] = math.nan
    D = Jac((2, 3), (2, 3), (0, 1), vlabels, vals).to_dense()
    want = np.einsum("ij,ik,jl->ijkl", np.broadcast_to(vals, (2, 3)), np.eye(2), np.eye(3))
    off = np.einsum("ik,jl->ijkl", np.eye(2), np.eye(3)) == 0
    assert np.all(D[off] == 0.0)
    np.testing.assert_array_equal(D[~off], want[~off])


def test_elementwise_jacobian_at_nan_is_diagonal():
    J = both(np.sin, np.array([math.nan, 1.0, math.inf]))
    assert np.all(J[~np.eye(3, dtype=bool)] == 0.0) and np.isnan(J[0, 0]) and J[1, 1] == math.cos(1.0)


def test_ufunc_at_into_a_plain_array_is_refused_with_the_bincount_alternative():
    idx = np.array([0, 2, 2])

    def f(x):
        np.add.at(_PLAIN3, idx, x)  # made outside f: NumPy's own array
        return _PLAIN3

    def made_in_f(x):
        y = np.zeros(3)
        np.add.at(y, idx, x)
        return y

    with pytest.raises(jacc.UnsupportedOperationError, match=r"numpy\.add\.at .* plain NumPy array.*np\.bincount"):
        jacc.jacobian(f)(np.ones(3))
    J = jacc.jacobian(lambda x: np.zeros(3) + np.bincount(idx, weights=x, minlength=3))(np.ones(3))
    np.testing.assert_array_equal(J, [[1, 0, 0], [0, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(jacc.jacobian(made_in_f)(np.ones(3)), J)


def test_bincount_refuses_traced_bins_and_keeps_constant_counts():
    with pytest.raises(jacc.TraceError, match="bins are traced"):
        jacc.jacobian(lambda x: np.bincount(x))(np.ones(3))
    J = jacc.jacobian(lambda x: x * np.bincount(np.array([0, 0, 2]), minlength=3))(np.ones(3))
    np.testing.assert_array_equal(J, np.diag([2.0, 0.0, 1.0]))


@pytest.mark.parametrize("f", [
    lambda x: np.abs(x + 1j * x),  # was: 1j cast to 0.0 with only NumPy's ComplexWarning, a wrong Jacobian
    lambda x: np.exp(x * (1 + 2j)).real,
    lambda x: np.add(x, np.complex128(2 + 1j)).imag * x + np.real(np.add(x, np.complex128(2))),  # (2 + 0j: complex)
])
def test_complex_values_are_computed_not_cast_to_real(f):
    from conftest import fd_jacobian

    np.testing.assert_allclose(jacc.jacobian(f)(V), fd_jacobian(f, [V], 0), atol=1e-7)


@pytest.mark.parametrize("f, words", [
    (lambda x: np.where(x > 0, x, 1j), f"where of a traced array and a complex value at .*{HERE}"),
    (lambda x: x @ (np.ones((len(x), 2)) * 1j), "output 0 of lambda is complex"),
    (lambda x: np.add(x, np.complex128(2 + 1j)), "output 0 of lambda is complex"),
])
def test_complex_results_and_unsupported_complex_ops_are_refused(f, words):
    with pytest.raises(UnsupportedOperationError, match=words):
        jacc.jacobian(f)(V)


def test_round_of_a_traced_scalar_is_numpys_round():
    J = jacc.jacobian(lambda x: round(x[0] * 10, 1) * x)(V)
    np.testing.assert_array_equal(J, np.diag(np.full(len(V), np.round(V[0] * 10, 1))))
    # an int: piecewise constant, read at the traced point (the trace value-dependent), as int() and math.trunc()
    for f in (lambda x: round(x[0] * 3) * x, lambda x: int(x[0] * 3) * x, lambda x: math.trunc(x[0] * 3) * x):
        g = jacc.trace(f, V)
        assert g.meta["value_dependent"]
        np.testing.assert_array_equal(jacc.jacobian(f)(V), np.diag(np.full(len(V), float(f(V)[0] / V[0]))))
    with pytest.raises(UnsupportedOperationError, match="complex\\(\\) of a traced value"):
        jacc.jacobian(lambda x: complex(x[0]).real * x)(V)
    shown = []
    J = jacc.jacobian(lambda x: shown.append(f"{x[0]:.2f}") or x * 2.0)(V)  # shown, not used
    assert shown == [f"{V[0]:.2f}"] and np.array_equal(J, 2.0 * np.eye(len(V)))
    with pytest.raises(TypeError, match="doesn't define __round__"):
        jacc.trace(lambda x: round(x), V)  # as for ndarrays


def test_an_output_that_is_none_is_refused_not_a_zero_jacobian():
    # np.asarray(None, dtype=float) is NaN: a function that forgot its return statement gave a
    # constant output, whose Jacobian is all zeros, without a word
    def loss(x):
        np.sum(x ** 2)

    with pytest.raises(TypeError, match="output 0 of loss is None, not an array; does loss end with a return"):
        jacc.jacobian(loss)(V)
    with pytest.raises(TypeError, match="output 1 of lambda is None, not an array$"):
        jacc.jacobian(lambda x: (x * 2.0, None))(V)
    with pytest.raises(TypeError, match="is None, not an array"):
        jacc.trace(lambda x: {"a": x, "b": None}, V)
    np.testing.assert_array_equal(jacc.jacobian(lambda x: np.argmax(x))(V), np.zeros(len(V)))  # ints stay constants


def test_integer_casts_are_constants_read_at_the_traced_point():
    """A table lookup with linear interpolation: the integer cast of a traced value was refused
    (".astype(int64) ... would turn it into a constant"), yet its derivative is zero almost
    everywhere, as a comparison's; JAX takes the code. The trace depends on values, so every call
    traces and the indices are this call's."""
    tab = np.array([0.0, 1.0, 4.0, 9.0, 16.0])

    def lookup(x):
        i = np.floor(x).astype(int)
        w = x - i
        return tab[i] * (1 - w) + tab[i + 1] * w
    jf = jacc.jacobian(lookup)
    for x in (np.array([0.7, 1.3, 2.2]), np.array([3.5, 0.2, 1.9])):
        np.testing.assert_allclose(jf(x), np.diag(tab[np.floor(x).astype(int) + 1] - tab[np.floor(x).astype(int)]))
    # (naming where: the cast's line, not a generic "depends on values")
    assert re.fullmatch(r"its trace depends on values \(\.astype\(int64\) at .*test_tracer_semantics\.py:\d+\)",
                        jf.cache.why_traced), jf.cache.why_traced
    x = np.array([0.7, 1.3])
    np.testing.assert_array_equal(jacc.jacobian(lambda x: x * x.astype(bool) + x.astype(np.int8))(x), np.eye(2))


def test_matrix_transpose_attribute():
    """x.mT, NumPy 2's transpose of the last two axes (was refused as an unknown attribute)."""
    X = np.arange(1.0, 7.0).reshape(2, 3)
    J = jacc.jacobian(lambda X: X.mT @ X)(X)
    np.testing.assert_allclose(J, fd(lambda X: X.T @ X, X), atol=1e-8)
    S = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(jacc.jacobian(lambda S: S.mT)(S), jacc.jacobian(lambda S: np.swapaxes(S, -1, -2))(S))
    with pytest.raises(TraceError, match="at least 2 dimension"):
        jacc.jacobian(lambda x: x.mT)(np.ones(3))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_matrix_and_masked_arrays_are_refused_not_read_as_their_data():
    """np.matrix multiplies with * and masked arrays leave masked entries out: read as their data,
    both gave the Jacobian of another function without a word (X * X differentiated as X²)."""
    M = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"argument 'X' is a numpy.matrix.*matrix products"):
        jacc.jacobian(lambda X: X * X)(M)
    with pytest.raises(TypeError, match=r"an operand of mul at .* is a numpy.matrix"):
        jacc.jacobian(lambda x, M: M * x)(np.array([[0.5], [1.5]]), M)
    m = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"an operand of mul at .* is a masked array"):
        jacc.jacobian(lambda x, c: np.sum(x * c))(np.ones(3), m)
    with pytest.raises(TypeError, match=r"argument 'x' is a masked array"):
        jacc.jacobian(lambda x: np.sum(x ** 2))(m)
    for f in (lambda x, c: np.sum(c + x), lambda x, c: np.sum(c * x)):  # on the left: NumPy asks x.view(type)
        with pytest.raises(TypeError, match=r"an operand of an operation with a traced array at .*test_tracer_sema"
                                            r"ntics.py.* is a masked array"):
            jacc.jacobian(f)(np.ones(3), m)
    # a matrix after ndarray calls (calls that skip f, traced once) is refused too
    for retrace in (True, False):
        jf = jacc.jacobian(lambda X: X * X, retrace=retrace)
        expected = np.einsum("ik,jl->ijkl", np.eye(2), np.eye(2)) * 2 * np.asarray(M)[..., None, None]
        for _ in range(3):
            np.testing.assert_allclose(jf(np.asarray(M)), expected, rtol=1e-14)
        with pytest.raises(TypeError, match="numpy.matrix"):
            jf(M)
    # what a masked array gives outside traced operations is plain data: read as NumPy does
    np.testing.assert_allclose(jacc.jacobian(lambda x, c: x * c.sum())(np.ones(2), m), np.eye(2) * 4.0)


def test_a_value_beyond_float32_is_named_without_a_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"argument 'x' has a non-finite value inf .* in float32"):
            jacc.jacobian(np.sin, dtype=np.float32)(np.array([1e39]))


class _Kilo(np.ndarray):
    """A unit-carrying array (as astropy's Quantity): its ufuncs see the values times 1000."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = [np.asarray(i) * 1000.0 if isinstance(i, _Kilo) else i for i in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)


class _Negated(np.ndarray):
    def __rmul__(self, other):  # Python calls a subclass's reflected operator first
        return -np.multiply(other, np.asarray(self))

    __mul__ = __rmul__


class _Scaled:
    """Not an array, but NumPy hands its ufuncs over (__array_ufunc__), as pandas and pint do."""

    def __init__(self, data):
        self.data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self.data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = [i.data * 10.0 if isinstance(i, _Scaled) else i for i in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("f, why", [
    (lambda x, c: np.sum(np.clip(x, c, None)), "masked array"), (lambda x, c: np.sum(x.clip(c, None)), "masked array"),
    (lambda x, c: np.sum((x > c) * x), "masked array"), (lambda x, c: np.sum(np.greater(x, c) * x), "masked array"),
    (lambda x, c: np.sum(np.ldexp(x, c.astype(int))), "masked array"),
    (lambda x, c: np.sum(np.clip(x, np.matrix(c), None) * np.clip(x, np.matrix(c), None).T), "numpy.matrix"),
    (lambda x, c: x * c.data.view(_Kilo), "_Kilo, an ndarray subclass redefining __array_ufunc__"),
    (lambda x, c: x * c.data.view(_Negated), "_Negated, an ndarray subclass redefining __mul__, __rmul__"),
    (lambda x, c: x * _Scaled(c.data), "_Scaled, whose own __array_ufunc__"),
    (lambda x, c: np.multiply(x, _Scaled(c.data)), "_Scaled, whose own __array_ufunc__")],
    ids=["clip", "clip-method", "compare", "greater", "ldexp", "matrix-clip", "ufunc-subclass", "reflected-subclass",
         "ufunc-object", "ufunc-object-call"])
def test_constants_whose_numpy_arithmetic_is_not_ndarrays_are_refused_wherever_met(f, why):
    """Masked and matrix bounds of clip, masked exponents and masked comparisons, and constants
    that take NumPy's operations over, were read as their data: the Jacobian of another function."""
    x = np.array([0.3, 0.7, 1.2, 0.5])
    c = np.ma.MaskedArray([0.1, 0.2, 0.3, 0.4], mask=[0, 1, 0, 0])
    with pytest.raises(TypeError, match=why):
        jacc.jacobian(f)(x, c)


def test_an_input_of_an_overriding_subclass_is_refused_and_a_memmap_is_read():
    x = np.array([0.3, 0.7])
    with pytest.raises(TypeError, match=r"argument 'x' is a _Kilo"):
        jacc.jacobian(np.sin)(x.view(_Kilo))
    with tempfile.TemporaryFile() as file:
        m = np.memmap(file, dtype=float, mode="w+", shape=(2,))  # NumPy's own arithmetic: read as its data
        m[:] = x
        np.testing.assert_allclose(jacc.jacobian(lambda x, c: np.sin(x) * c)(x, m), np.diag(np.cos(x) * x))


@pytest.mark.parametrize("retrace", [True, False])
def test_isscalar_of_a_traced_value_is_numpys(retrace):
    def f(x):
        if np.isscalar(x):  # a rate, or per-component values to average
            return np.exp(-x) * 2.0
        return np.exp(-x).mean() * 3.0
    jf = jacc.jacobian(f, retrace=retrace)
    for v in (0.5, 0.7, np.float64(0.4), np.array(0.5), np.array(0.6), 0.9):
        scale = 2.0 if np.isscalar(v) else 3.0
        assert float(jf(v)) == pytest.approx(-scale * np.exp(-float(v)), rel=1e-14)
    seen = []

    def g(x):
        seen.append((np.isscalar(x), np.isscalar(x[0]), np.isscalar(np.sum(x)), np.isscalar(np.array(x[0])),
                     np.isscalar(x[0] * 2.0)))
        return x * 2.0
    jacc.jacobian(g)(np.ones(2))
    assert seen[-1] == (np.isscalar(np.ones(2)), True, True, False, True)


def test_a_parameter_named_like_a_star_args_entry_keeps_its_name():
    def f(args0, *args):
        return args0 * 2.0 + args[0] * 3.0
    J0, J1 = jacc.jacobian(f, argnums=(0, 1))(np.ones(2), np.ones(2))
    assert np.array_equal(J0, 2.0 * np.eye(2)) and np.array_equal(J1, 3.0 * np.eye(2))
    g = jacc.trace(f, np.ones(2), np.ones(2), argnums=(0, 1))
    assert g.inputs[0] == "args0" and len(set(g.inputs)) == 2


# -- scalars and 0-d arrays: which one NumPy's result is decides what an alias sees --------------

def _fd_copying(f, args, argnum, eps=1e-6):
    """Central differences of f w.r.t. args[argnum], every argument copied for each run (f may
    change them in place)."""
    def run(k, step):
        a = [np.array(v, copy=True) for v in args]
        a[argnum] = np.array(a[argnum] + step)  # (a 0-d array stays one)
        return np.asarray(f(*a), dtype=float)
    x = np.asarray(args[argnum], dtype=float)
    cols = []
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = eps
        cols.append((run(0, e) - run(0, -e)) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(run(0, 0.0)) + x.shape)


def _view_of_0d_argument(x, a):
    v = np.atleast_1d(a)  # a view of a: it shows the change below
    a *= x[0]
    return v


def _asarray_of_a_scalar(x, a):
    t = np.asarray(x[0])  # a new 0-d array: b is it, and sees t *= 3
    b = t
    t *= 3.0
    return b * a


def _copy_of_a_scalar(x, a):
    t = x[0].copy()  # still a scalar: t *= 3 rebinds t, b keeps x[0]
    b = t
    t *= 3.0
    return b + t * a


def _positive_of_a_0d_array(x, a):
    t = +a  # a ufunc's 0-d result is a scalar: t += ... rebinds
    b = t
    t += t * x[1]
    return b * x[0]


def _where_of_scalars(x, a):
    t = np.where(x[0] > 0, x[0], 0.1 * x[0])  # NumPy's where gives a 0-d array: b sees t += ...
    b = t
    t += x[1] ** 2
    return b * a


def _ellipsis_view_of_a_0d_array(x, a):
    c = np.array(x[1])
    y = c[...]  # a view of c
    c *= x[0]
    return y + a


def _fill_of_a_scalar(x, a):
    t = x[0] * x[1]
    t.fill(0.5)  # a NumPy scalar's fill changes nothing
    return t * a


@pytest.mark.parametrize("f", [_view_of_0d_argument, _asarray_of_a_scalar, _copy_of_a_scalar,
                               _positive_of_a_0d_array, _where_of_scalars, _ellipsis_view_of_a_0d_array,
                               _fill_of_a_scalar])
@pytest.mark.parametrize("backend, retrace", [("auto", True), ("numpy", True), ("interpret", True),
                                              ("numpy", False), ("interpret", False)])
def test_scalars_and_0d_arrays_change_in_place_as_numpys(f, backend, retrace):
    jf = jacc.jacobian(f, argnums=(0, 1), backend=backend, retrace=retrace)
    for x, a in [([0.3, 0.5], 0.7), ([-0.2, 0.9], -0.4), ([1.2, 0.1], 0.25)]:
        args = (np.array(x), np.array(a))
        Jx, Ja = jf(*(np.array(v, copy=True) for v in args))
        np.testing.assert_allclose(Jx, _fd_copying(f, args, 0), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(Ja, _fd_copying(f, args, 1), rtol=1e-6, atol=1e-8)


_PRODUCERS = {  # a 0-d result of x: NumPy's kind decides what b = t; t += y does to b, and np.isscalar(t)
    "median": lambda x: np.median(x), "percentile": lambda x: np.percentile(x, 30.0),
    "take": lambda x: np.take(x, 1), "choose": lambda x: np.choose(1, [x[0], x[1]]),
    "interp": lambda x: np.interp(x[0], [0.0, 5.0], [0.0, 2.0]), "nan_to_num": lambda x: np.nan_to_num(x[0]),
    "prod of 0-d": lambda x: np.prod(np.array(x[0])), "einsum of 0-d": lambda x: np.einsum("->", np.array(x[0])),
    "flip of 0-d": lambda x: np.flip(np.array(x[0])), "tensordot": lambda x: np.tensordot(x, x, 1),
    "apply_along_axis": lambda x: np.apply_along_axis(np.sum, 0, x), "real_if_close": lambda x: np.real_if_close(x[0]),
    "squeeze of a scalar": lambda x: np.squeeze(x[0]), "reshape of a scalar": lambda x: x[0].reshape(()),
    "squeeze method of a scalar": lambda x: np.sum(x).squeeze(),
    "where": lambda x: np.where(x[0] > 0, x[0], 0.0), "sum": lambda x: np.sum(x),
}


@pytest.mark.parametrize("name", sorted(_PRODUCERS))
@pytest.mark.parametrize("retrace", [True, False])
def test_a_0d_result_is_a_scalar_or_an_array_as_numpys(name, retrace):
    make = _PRODUCERS[name]

    def f(x):
        t = make(x)
        b = t
        t += x[1]  # an array changes in place (b sees it), a scalar is rebound
        return b * (2.0 if np.isscalar(t) else 3.0)
    jf = jacc.jacobian(f, retrace=retrace)
    for x in ([0.5, 1.0, 2.0], [0.7, 2.0, -1.0], [1.1, 0.1, 0.3]):
        x = np.array(x)
        np.testing.assert_allclose(jf(x), _fd_copying(f, (x,), 0), rtol=1e-6, atol=1e-8)


def test_polyval_of_a_poly1d_reads_its_coefficients_highest_power_first():
    p = np.poly1d([1.0, 2.0, 0.5])  # p[i] is the coefficient of xⁱ: NumPy's polyval takes p.coeffs
    x = np.array([0.5, 1.0, -0.3])
    np.testing.assert_allclose(jacc.jacobian(lambda x: np.polyval(p, x))(x), np.diag(2 * x + 2.0), rtol=1e-14)
    for g in (lambda c: np.polyval(np.poly1d(c), 2.0), lambda c: np.polyder(np.poly1d(c))(1.5),
              lambda c: np.polyint(np.poly1d(c))(1.5), lambda c: np.polymul(np.poly1d(c), np.poly1d([1.0, 2.0]))(0.7),
              lambda c: np.polydiv(np.poly1d(c), np.poly1d([1.0, 2.0]))[0](0.7)):
        np.testing.assert_allclose(jacc.jacobian(g)(x), fd_jacobian(g, [x], 0), rtol=1e-6, atol=1e-8)
    assert isinstance(np.polyder(np.poly1d(x)), np.poly1d)


def _copies(x):
    import copy

    y = copy.copy(x)
    y[0] = 0.0  # (a copy's write leaves x as it is, as NumPy's)
    state = copy.deepcopy({"a": [x, 2.0 * x]})
    state["a"][0][1] = 5.0
    return x + y + state["a"][0] + state["a"][1]


def test_copy_and_deepcopy_of_traced_arrays_copy_them_as_numpy_does():
    """copy.deepcopy of a dict of traced arrays failed inside jacc (hunt BD): they copy as ndarrays do."""
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(_copies(x), [4.0, 13.0, 15.0])
    J = jacc.jacobian(_copies)(x)
    np.testing.assert_allclose(J, np.diag([4.0, 4.0, 5.0]))
    np.testing.assert_allclose(J, fd_jacobian(_copies, (x,), 0), atol=1e-6)


def test_pickling_a_traced_array_is_refused_by_name():
    import pickle

    with pytest.raises(UnsupportedOperationError, match="cannot be pickled"):
        jacc.jacobian(lambda x: pickle.loads(pickle.dumps(x)))(np.ones(2))


def _log_or_square(x):
    try:
        with np.errstate(divide="raise"):
            return np.log(x[0]) * x
    except FloatingPointError:
        return x ** 2


@pytest.mark.parametrize("points", [[[1.0, 2.0], [0.0, 1.0], [0.7, 3.0], [0.0, 2.0], [2.0, 1.0]],
                                    [[1.0, 2.0], [0.5, 1.0], [0.7, 3.0], [0.0, 2.0], [2.0, 1.0]],
                                    [[0.0, 1.0], [0.7, 3.0], [0.5, 2.0], [0.0, 3.0]]],
                         ids=["good, bad, good", "bad after skips", "bad first"])
@pytest.mark.parametrize("retrace", [False, True])
def test_a_guard_by_np_errstate_raise_holds_on_every_call(points, retrace):
    """f's own np.errstate(divide="raise") and except FloatingPointError: a call that skips f and
    meets a non-finite block runs f, and the branch taken at the error is never reused elsewhere
    (retrace=False replayed either branch at the other's points; hunt BD)."""
    jf = jacc.jacobian(_log_or_square, retrace=retrace)
    for p in points:
        x = np.array(p)
        want = (np.diag(2 * x) if x[0] == 0
                else np.array([[np.log(x[0]) + 1.0, 0.0], [x[1] / x[0], np.log(x[0])]]))
        np.testing.assert_allclose(jf(x), want, rtol=1e-12)


def test_the_statistics_module_is_refused_by_name_and_the_users_line():
    """The message named only statistics.py's line (hunt BF): the user's line follows it now."""
    import statistics

    with pytest.raises(UnsupportedOperationError, match=r"as_integer_ratio.*statistics.py:\d+ "
                                                        r"\(from .*test_tracer_semantics.py:\d+\)"):
        jacc.jacobian(lambda x: statistics.mean(x) * x)(np.ones(3))


def _log_or_five(x):
    try:
        a = np.log(x[0])
    except FloatingPointError:
        a = x[0] * 5.0
    return a * x[1]


@pytest.mark.parametrize("options", [{}, {"retrace": "always"}, {"compile": False}, {"dtype": np.float32}])
def test_the_callers_np_errstate_raise_reaches_f(options):
    """np.errstate(divide="raise") around the call: NumPy's f takes its except branch at x[0] = 0;
    the trace ran f under errstate(all="ignore") and took the log branch (hunt BF)."""
    x = np.array([0.0, 2.0])
    with np.errstate(divide="raise"):
        value, J = jacc.value_and_jacobian(_log_or_five, nonfinite="propagate", **options)(x)
    assert float(value) == 0.0
    np.testing.assert_allclose(J, [10.0, 0.0])


def test_a_caught_error_on_a_float32_replay_leaves_no_step_behind():
    """float32 values take the general recording path, which adds the step before evaluating it:
    np.log's FloatingPointError, caught by f, left that step in the graph, and the next one took its
    name ('every vertex needs its own name'; hunt BF)."""
    def f(x):
        with np.errstate(divide="raise"):
            try:
                a = np.log(x[0])
            except FloatingPointError:
                a = x[0] * 5
        return a * x[1]

    jf = jacc.jacobian(f, dtype=np.float32)
    np.testing.assert_allclose(jf(np.array([0.5, 2.0])), [4.0, np.log(0.5)], rtol=1e-6)
    np.testing.assert_allclose(jf(np.array([0.0, 2.0])), [10.0, 0.0])


@pytest.mark.parametrize("retrace", [True, False])
def test_a_value_dependent_trace_replayed_at_its_own_call_does_not_warn(retrace):
    """jacobian's traced call ran the cached scalar code of a value-dependent structure through
    Plan.compile's check of the traced point, which warned that the graph runs elsewhere, though
    this call's own trace had just replayed it (hunt BF)."""
    def f(a, b):
        return a * b if a > 0 else -a

    jf = jacc.jacobian(f, (0, 1), retrace=retrace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a in (0.5, 0.7, -0.3, -0.4, 0.9):
            J = jf(a, 0.25)
            assert [float(j) for j in J] == ([0.25, a] if a > 0 else [-1.0, 0.0])


def _zeroed_last_unless(x, ok):
    y = x.copy()
    y[ok, -1] = x[0, 0] ** 2  # (scipy.stats.multinomial writes p[ok, -1] = … with a 0-d boolean ok)
    y[np.array(False), 0] = 100.0
    return y[True] * 3


@pytest.mark.parametrize("f", [
    lambda x: x[True] * 2, lambda x: x[False].sum() + x.sum(), lambda x: x[np.True_, -1],
    lambda x: x[0, :, np.array(True)], lambda x: x[:, True, 1], lambda x: x[..., np.array(False)].sum() + x[1, 1],
    lambda x: x[1, 2][True], lambda x: _zeroed_last_unless(x, np.array(True)),
    lambda x: _zeroed_last_unless(x, np.array(False)),
    lambda x: np.abs(x)[x[0, 0] > 0, 1:],  # of a traced comparison: read at the point, as a mask
])
def test_boolean_scalar_indices_are_numpys_new_axis_of_length_one_or_zero(f):
    x = np.arange(1.0, 7.0).reshape(2, 3)
    g = jacc.trace(f, x)
    got = g.evaluate({"x": x})[g.outputs[0]]
    assert np.shape(got) == np.shape(f(x))
    np.testing.assert_array_equal(got, f(x))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd(f, x), atol=1e-9)


def test_a_write_through_a_false_index_checks_the_value_as_numpy_does():
    # (found by a hunt: nothing was written, and a value of the wrong shape passed silently)
    def f(x):
        y = np.zeros((2, 4))
        y[np.array(False), -1] = x[:, 0]  # NumPy: shape (3,) into (0, 4)
        return y + x.sum()

    for x in (np.ones((3, 2)), np.ones((3, 4))):  # (y an array f made; y the traced x itself)
        g = f if x.shape[1] == 2 else (lambda x: _false_write(x.copy(), x[:, 0]))
        with pytest.raises(ValueError, match=r"could not broadcast input array from shape \(3,\) into shape \(0, ?4\)"):
            jacc.jacobian(g)(x)


def _false_write(y, v):
    y[np.array(False), -1] = v
    return y


def test_an_error_f_raises_itself_is_raised_at_once():
    """f is run again with jacc's replacements only for a library's error: f's own may not come
    twice (here the next batch of an iterator had no NaN, and its Jacobian came back; hunt CD)."""
    batches = iter([np.array([1.0, np.nan]), np.array([3.0, 4.0])])
    runs = []

    def loss(w):
        b = next(batches)
        runs.append(1)
        if np.isnan(b).any():
            raise ValueError("batch contains NaN")
        return w * b
    with pytest.raises(ValueError, match="batch contains NaN"):
        jacc.jacobian(loss)(np.array([1.0, 1.0]))
    assert len(runs) == 1
