"""``math`` functions on traced scalars (jacc.numpy_api.stdlib_math): code written for floats."""

import math
from math import hypot as length  # a name bound before the trace: replaced through aliases

import numpy as np
import pytest
from conftest import assert_later_calls_raise, fd_jacobian

import jacc
from jacc.trace import UnsupportedOperationError

X = np.array([0.7, 0.3, 1.9])

# name -> f(x) of a vector written with math on its entries
CASES = {
    "sqrt, exp, log": lambda x: math.sqrt(x[0]) * math.exp(-x[1]) + math.log(x[2]),
    "log with a base, log10, log2, log1p": lambda x: math.log(x[2], 3.0) + math.log10(x[0]) * math.log2(x[2]) + math.log1p(x[1]),
    "log with a traced base": lambda x: math.log(x[2], x[0] + 1.0),
    "trigonometric": lambda x: math.sin(x[0]) * math.cos(x[1]) + math.tan(x[2] / 4),
    "inverse trigonometric": lambda x: math.asin(x[0]) + math.acos(x[1]) * math.atan(x[2]) + math.atan2(x[1], x[2]),
    "hyperbolic": lambda x: math.sinh(x[0]) + math.cosh(x[1]) * math.tanh(x[2]) + math.asinh(x[2])
    + math.acosh(x[2]) + math.atanh(x[1]),
    "pow, fabs, copysign, expm1": lambda x: math.pow(x[2], x[0]) + math.fabs(x[1] - 1.0) + math.copysign(x[0], -1.0)
    + math.expm1(x[1]),
    "hypot of two and of three, degrees, radians": lambda x: math.hypot(x[0], x[1]) + math.hypot(*x)
    + math.radians(math.degrees(x[2])),
    "an alias bound before": lambda x: length(x[0], x[2]),
    "prod of a list and of a generator": lambda x: math.prod([x[0], x[1], 2.0]) + math.prod(v * v for v in x),
    "a vector of results": lambda x: np.stack([math.exp(x[0]), math.sin(x[1] * x[2]), x[0] * 2.0]),
    "floats and arrays mixed": lambda x: np.sum(np.sin(x)) * math.sqrt(x[0] * x[0] + 1.0) + math.pi,
    "fmod, ldexp, dist": lambda x: math.fmod(x[2], x[1]) + math.ldexp(x[0], 3) + math.dist(x[:2], [x[2], 1.0])
    + math.dist((x[0],), (0.2,)) * math.fsum([1.0, 2.0]),
}


@pytest.mark.parametrize("name, hint", [("fsum", "sum"), ("remainder", "np.round"), ("modf", "np.trunc"),
                                        ("frexp", "np.frexp")])
def test_untraced_math_functions_say_what_to_use(name, hint):
    """They were refused by their own float() (which the user never wrote)."""
    call = {"fsum": lambda x: math.fsum(v for v in x), "remainder": lambda x: math.remainder(x[0], x[1])}.get(
        name, lambda x: getattr(math, name)(x[0])[0])
    with pytest.raises(UnsupportedOperationError, match=rf"math\.{name} of a traced value at .*test_stdlib_math.py.*{hint}"):
        jacc.jacobian(call)(X)


@pytest.mark.parametrize("name", list(CASES))
def test_math_on_traced_scalars_has_maths_value_and_derivative(name):
    f = CASES[name]
    jf = jacc.jacobian(f)
    for x in (X, X * 0.9 + 0.01, X):  # (later calls may skip f: jacc.guards)
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-7, atol=1e-8, err_msg=name)
    g = jacc.trace(f, X)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: X})[g.outputs[0]], f(X), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", list(CASES))
def test_math_on_the_scalars_of_a_scalar_level_trace(name):
    # scalarize=True hands f traced scalars that math made floats (refused: "float() of a traced scalar")
    f = CASES[name]
    g = jacc.trace(f, X, scalarize=True)
    assert g.inputs == ["x[0]", "x[1]", "x[2]"]
    blocks = jacc.plan(g, "reverse").execute(*X)
    J = [[blocks.get((y, x), 0.0) for x in g.inputs] for y in g.outputs]
    np.testing.assert_allclose(np.reshape(J, (-1, 3)), fd_jacobian(f, [X], 0).reshape(-1, 3), rtol=1e-7, atol=1e-8,
                               err_msg=name)


def test_math_outside_its_domain_and_refusals_on_a_scalar_level_trace():
    with pytest.raises(ValueError, match="math domain error: math.log at .*test_stdlib_math"):
        jacc.trace(lambda x: math.log(x[0] - 1.0) * x[1], X, scalarize=True)
    with pytest.raises(UnsupportedOperationError, match="math.fsum of a traced value"):
        jacc.trace(lambda x: math.fsum([x[0], x[1]]), X, scalarize=True)
    g = jacc.trace(lambda x: math.floor(x[2]) * x[0], X, scalarize=True)  # math's own floor at the value
    assert jacc.plan(g, "forward").execute(*X)[g.outputs[0], "x[0]"] == 1.0


@pytest.mark.parametrize("name", ["erf", "erfc", "gamma", "lgamma"])
def test_special_functions_go_to_scipy(name):
    pytest.importorskip("scipy")
    fn = getattr(math, name)
    f = lambda x: fn(x[2]) * x[0]  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), rtol=1e-7, atol=1e-9)


def test_plain_calls_stay_maths_and_math_is_restored():
    sqrt, seen = math.sqrt, []

    def f(x):
        c = math.sqrt(2.0)  # a constant: math's own float
        seen.append(type(c))
        return math.sqrt(x[0]) * c

    J = jacc.jacobian(f, retrace="always")(X)
    np.testing.assert_allclose(J, [math.sqrt(2.0) / (2 * math.sqrt(X[0])), 0, 0], rtol=1e-13)
    assert float in seen and math.sqrt is sqrt and length is math.hypot


def test_outside_the_domain_raises_as_math_does():
    for f, err in [(lambda x: math.sqrt(x[0] - 1.0), ValueError), (lambda x: math.log(x[0] - 0.7), ValueError),
                   (lambda x: math.exp(x[2] * 1000.0), OverflowError)]:
        with pytest.raises(err, match=r"math (domain|range) error: math\.\w+ at .*test_stdlib_math.py"):
            jacc.jacobian(f)(X)


@pytest.mark.parametrize("f, good, bad, err", [
    (lambda x: math.log(x[0]), 2.0, -1.0, ValueError), (lambda x: 3.0 * math.log10(x[0]), 2.0, -1.0, ValueError),
    (lambda x: math.log1p(x[0]) + x[0], 1.0, -3.0, ValueError), (lambda x: math.atanh(x[0]), 0.5, 2.0, ValueError),
    (lambda x: 2.0 * math.sqrt(x[0]), 4.0, -1.0, ValueError), (lambda x: math.exp(x[0]), 1.0, 800.0, OverflowError),
    (lambda x: math.log(x[0]) * x[1] + math.pow(x[0], x[1]), 2.0, -1.0, ValueError),
    (lambda x: math.ldexp(x[0], 10), 2.0, 1.7e308, OverflowError),
], ids=["log", "log10", "log1p", "atanh", "sqrt", "exp", "log and pow", "ldexp"])
def test_calls_that_skip_f_raise_outside_the_domain_too(f, good, bad, err):
    """Compiled calls ran NumPy's functions: math.log(-1) gave the finite derivative -1 (and
    ldexp's overflow 2¹⁰), the others NaN or inf, where f raises."""
    assert_later_calls_raise(f, np.full(2, good), np.full(2, bad), err,
                             r"math (domain|range) error: math\.\w+ at .*test_stdlib_math.py",
                             backends=("auto", "numpy", "c", "interpret"))


def test_hypot_overflows_to_inf_as_maths_does():
    """Python's math.hypot gives inf where the length overflows: no error, on any call."""
    f = lambda x: math.hypot(x[0], x[1])  # noqa: E731
    jf = jacc.jacobian(f)
    for x in ([3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [1.7e308, 1.7e308]):
        J = jf(np.array(x))
    np.testing.assert_array_equal(J, jacc.jacobian(f)(np.array([1.7e308, 1.7e308])))


def test_predicates_and_roundings_are_maths_at_the_value_and_mark_the_trace():
    def f(x):
        k = math.floor(x[2])  # 1: an index read at the traced value
        if math.isfinite(x[0]) and not math.isnan(x[1]) and not math.isclose(x[0], x[1]):
            return x[k] * math.ceil(x[0]) + x[0] ** 2
        return x

    J = jacc.jacobian(f)
    for x in (X, X + 0.05):
        np.testing.assert_allclose(J(x), fd_jacobian(f, [x], 0), rtol=1e-7, atol=1e-9)
    meta = jacc.trace(f, X).meta["value_dependent"]
    assert any(m.startswith("math.floor() of a traced value at ") and "test_stdlib_math.py" in m for m in meta)
    assert any(m.startswith("math.isclose()") for m in meta)
    with pytest.raises(UnsupportedOperationError, match="float"):
        jacc.jacobian(lambda x: float(x[2]) * x[0])(X)  # (float() itself stays refused)


def test_prod_overflows_to_inf_as_maths_does():
    f = lambda x: math.prod([x[2] * 1e200, 1e200]) * x[0]  # noqa: E731
    g = jacc.trace(f, X)  # (no OverflowError: math.prod gives inf too)
    with np.errstate(over="ignore"):
        assert g.evaluate({g.inputs[0]: X})[g.outputs[0]] == f(X) == math.inf


def test_functions_made_by_one_lambda_each_get_their_own_aliases():
    # functions made by one lambda share its code; a closure whose cell holds math.sqrt needs it
    # swapped even where the cells of one freed before (holding np.sin) had the same addresses:
    # keyed by the cells' ids, most of the math.sqrt ones were refused
    import gc

    def make(fn):
        return lambda x: fn(x[0]) * x

    for i in range(40):
        fn = np.sin if i % 2 else math.sqrt
        g = make(fn)
        J = jacc.jacobian(g)(np.array([4.0, 1.0]))
        d = np.cos(4.0) if i % 2 else 0.25
        np.testing.assert_allclose(J[:, 0], [fn(4.0) + 4.0 * d, d], rtol=1e-13)
        del g
        gc.collect()  # (g's cells freed: the next function's may take their addresses)


def _scaled_length(x, scale):
    return scale * length(x[0], x[2])


def test_aliases_are_found_through_functools_partial():
    # a partial calls its .func: the alias bound before (length, math.hypot) is in that function's
    # globals; two partials of different functions must not share what was found for the first
    import functools

    sq = functools.partial(lambda x, c: math.sqrt(c * x[0]) + x[1], c=2.0)
    np.testing.assert_allclose(jacc.jacobian(sq)(np.array([2.0, 1.0])), [0.5, 1.0], rtol=1e-14)
    both = functools.partial(functools.partial(_scaled_length, scale=3.0))
    J = jacc.jacobian(both)(X)
    np.testing.assert_allclose(J, fd_jacobian(lambda x: 3.0 * math.hypot(x[0], x[2]), (X,), 0), rtol=1e-7)


@pytest.mark.parametrize("f", [lambda x: math.log(x), lambda x: math.sqrt(x[:1]) * x, lambda x: math.pow(x, 2.0),
                               lambda x: math.hypot(x[0], x[1:])])
def test_math_of_an_array_raises_as_math_does(f):
    # math takes numbers: NumPy's ufunc, which stands in for a traced 0-d value, would map over x
    with pytest.raises(TypeError, match="only 0-dimensional arrays"):
        f(X)
    with pytest.raises(TypeError, match=r"only 0-dimensional arrays can be converted to Python scalars \(the arg"):
        jacc.jacobian(f)(X)


def _log_or_square(x):
    try:
        return math.log(x[0]) * x
    except ValueError:  # math.log raises at x[0] <= 0, NumPy's log would not
        return x ** 2


@pytest.mark.parametrize("points", [[[1.0, 2.0], [-1.0, 1.0], [0.7, 3.0]], [[-1.0, 1.0], [0.7, 3.0], [0.5, 2.0]]],
                         ids=["good, bad, good", "bad first"])
@pytest.mark.parametrize("retrace", [False, True])
def test_a_caught_domain_error_makes_the_trace_value_dependent(points, retrace):
    """f catching math's ValueError goes another way at those values: that trace is never reused
    at other points (retrace=False reused the x ** 2 branch where log applies; hunt BD)."""
    jf = jacc.jacobian(_log_or_square, retrace=retrace)
    for p in points:
        x = np.array(p)
        want = (np.array([[math.log(x[0]) + 1.0, 0.0], [x[1] / x[0], math.log(x[0])]]) if x[0] > 0
                else np.diag(2 * x))
        np.testing.assert_allclose(jf(x), want, rtol=1e-12)
