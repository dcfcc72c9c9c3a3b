"""np.array / np.asarray (and np.vectorize) of traced values during a trace (jacc.constructors):
the result is traced, NumPy's functions are back after every trace (also one that raised), and
threads that do not trace see NumPy's own behaviour."""

import threading
import types

import numpy as np
import pytest
import scipy.linalg as sl
from conftest import fd_jacobian
from numpy import array, asarray
from scipy.linalg import cho_factor, cho_solve, expm

import jacc
from jacc import constructors
from jacc.trace import UnsupportedOperationError, trace

X = np.array([0.5, -0.3, 0.8])


@pytest.mark.parametrize("f", [
    lambda x: np.array([x[0] * x[1], np.sin(x[2]), 2.0]),
    lambda x: np.array([[x[0], x[1]], [x[2] ** 2, 1.0]]),
    lambda x: np.array([x, x ** 2, np.ones(3)]),
    lambda x: np.array((x[0], x[1]), dtype=float, ndmin=2),
    lambda x: np.asarray(x) * 2.0,
    lambda x: np.asanyarray([x[2], x[0]]) + np.ascontiguousarray(x[:2]),
    lambda x: np.array(x, copy=True) @ np.array([1.0, 2.0, 3.0]),
    lambda x: np.asarray_chkfinite([x[0], x[2]]) * np.asfortranarray(x[:2]),
    lambda x: np.require(np.outer(x, x), np.float64, ["F", "A"]).sum(0) + np.require(x, requirements="O"),
])
def test_constructors_of_traced_values_are_traced(f):
    J = jacc.jacobian(f)(X)
    np.testing.assert_allclose(J, fd_jacobian(f, [X], 0), atol=1e-9)
    g = trace(f, X)
    np.testing.assert_array_equal(g.evaluate({"x": X})[g.outputs[0]], f(X))  # NumPy's value, outside the trace
    jo = jacc.jacobian(f, retrace=False)
    jo(X)
    np.testing.assert_allclose(jo(X + 0.1), fd_jacobian(f, [X + 0.1], 0), atol=1e-9)


@pytest.mark.parametrize("f", [
    lambda x: np.sum([x[0], x[1] ** 2]) * np.mean([x[0], x[2]]),  # only lists: NumPy never dispatches them
    lambda x: np.linalg.norm([x[0], 2.0 * x[1]]),
    lambda x: np.linalg.det([[x[0], x[1]], [x[2], 1.0]]),
    lambda x: np.dot([x[0], x[1]], [1.0, 2.0]) + np.max([x[0], x[2]]),
    lambda x: np.cross([x[0], x[1], 0.0], [0.0, x[2], 1.0]),
    lambda x: np.linalg.solve([[2.0, x[0]], [x[1], 3.0]], [x[2], 1.0]),
    lambda x: np.fft.rfft([x[0], x[1], x[2], 0.0]).real,
    lambda x: np.append(x, [x[0] * 2.0]),  # a list beside a traced array: jacc's handler gets it
    lambda x: np.insert(x, 2, [3.0, x[0]]),
    lambda x: np.where(x > 0.0, [x[0], x[1], 1.0], x),
    lambda x: np.einsum("i,i->", [x[0], x[1]], x[1:]),
    lambda x: np.concatenate([x, [x[0], 1.0]]),  # lists of arrays: each entry an array-like
    lambda x: np.hstack([x, [x[1]]]) * np.vstack([x, [x[0], x[1], 1.0]])[1, 0],
    lambda x: np.stack(([x[0], x[1]], x[1:])),
    lambda x: np.select([x > 0.0], [[x[0], x[1], x[2] ** 2]], default=[1.0, x[0], 0.0]),
    lambda x: np.block([[x[0], 1.0], [x[1], x[2]]]),  # (the nesting is np.block's structure)
], ids=["sum, mean", "norm", "det", "dot, max", "cross", "solve", "rfft", "append", "insert", "where", "einsum",
        "concatenate", "hstack, vstack", "stack", "select", "block"])
def test_lists_of_traced_values_are_arrays(f):
    """Where NumPy takes an array-like, a list holding traced values is the array NumPy would make
    of it; they were refused, as conversions of traced arrays."""
    g = trace(f, X)
    np.testing.assert_allclose(g.evaluate({"x": X})[g.outputs[0]], f(X), rtol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), atol=1e-9)
    jo = jacc.jacobian(f, retrace=False)
    jo(X)
    np.testing.assert_allclose(jo(-X), fd_jacobian(f, [-X], 0), atol=1e-9)


def test_scipy_functions_that_call_np_asarray_now_trace():
    sp = pytest.importorskip("scipy.special")
    # log_softmax: SciPy's array-API code writes into the max it took (xpx.at(...).set), when it
    # sees a writable array (Tracer.__array_namespace__)
    for f in (lambda x: sp.softmax(x), lambda x: sp.logsumexp(x * 3.0), lambda x: sp.log_softmax(np.stack([x, x * 2.0]), 1)):
        np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), atol=1e-9)


def test_asarray_chkfinite_checks_the_traced_values():
    with pytest.raises(ValueError, match="must not contain infs or NaNs.*asarray_chkfinite at .*test_constructors"):
        jacc.jacobian(lambda x: np.asarray_chkfinite(np.log(x)), nonfinite="propagate")(X)


def test_refusals_and_shape_errors_name_the_call():
    m = np.arange(9.0).reshape(3, 3)
    with pytest.raises(UnsupportedOperationError, match="test_constructors.py.*plain array A converts x: write A @ x") as e:
        trace(lambda x: m.dot(x), X)  # NumPy's compiled method converts x: no replacement reaches it
    assert "np.float64" not in str(e.value)  # (only the hint whose pattern the line matches)
    np.testing.assert_array_equal(jacc.jacobian(lambda x: np.dot(m, x) + m @ x)(X), 2 * m)
    with pytest.raises(UnsupportedOperationError, match=r"test_constructors.py.*np.float64\(x\) converts x: leave x"):
        trace(lambda x: np.float64(x[0]) * x, X)  # a scalar type's constructor is compiled too
    with pytest.raises(UnsupportedOperationError, match=r"test_constructors.py.*np.arange's bounds set its length"):
        trace(lambda x: np.arange(x[0]) * x[1], X)
    with pytest.raises(UnsupportedOperationError, match="dtype=int64"):
        trace(lambda x: np.array([x[0], x[1]], dtype=np.int64), X)
    with pytest.raises(ValueError, match="inhomogeneous"):
        trace(lambda x: np.array([x[0], x[1:]]), X)


def test_numpy_is_restored_after_each_trace_and_after_an_error():
    originals = dict(constructors._ORIGINAL)
    trace(lambda x: np.array([x[0]]), X)
    def fails(x):
        np.asarray(x)
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        trace(fails, X)
    assert all(getattr(np, k) is v for k, v in originals.items())


def test_other_threads_keep_numpys_behaviour_while_one_traces():
    started, done, seen = threading.Event(), threading.Event(), []

    def slow(x):
        y = np.array([x[0], x[1]])  # (a first trace without the replacements stops here; see below)
        started.set()
        done.wait(5)
        return y

    t = threading.Thread(target=lambda: seen.append(jacc.jacobian(slow)(X)))
    t.start()
    started.wait(5)
    try:
        assert np.asarray is not constructors._ORIGINAL["asarray"]  # replaced while the trace runs
        a = np.asarray([1, 2])  # another thread's plain call: NumPy's result, dtype kept
        assert a.dtype.kind == "i" and a.tolist() == [1, 2]
    finally:
        done.set()
        t.join(10)
    np.testing.assert_array_equal(seen[0], np.eye(2, 3))
    assert np.asarray is constructors._ORIGINAL["asarray"]


_PIECEWISE = np.vectorize(lambda t: t * t if t > 0 else -2.0 * t)  # made before any trace, as at module level


def test_vectorize_runs_the_function_per_traced_element():
    x = np.array([0.5, -0.3, 0.8, -1.2])
    want = np.diag(np.where(x > 0, 2 * x, -2.0))
    np.testing.assert_array_equal(jacc.jacobian(_PIECEWISE)(x), want)
    once = jacc.jacobian(_PIECEWISE, retrace=False)
    once(x)
    np.testing.assert_array_equal(once(-x), np.diag(np.where(-x > 0, -2 * x, -2.0)))  # its branches: traced again
    pair = np.vectorize(lambda a, b, c: (a * b + c, a - b), excluded={"c"})
    f = lambda x: pair(x[:2, None], x[2:], c=1.5)[0].ravel() + pair(x[:2], 2.0, c=0.0)[1].sum()  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    assert vars(np.vectorize)["__call__"] is _PIECEWISE.__class__.__dict__["__call__"]
    assert not hasattr(vars(np.vectorize)["__call__"], "__wrapped__")  # NumPy's own again after the traces
    np.testing.assert_array_equal(_PIECEWISE(x), np.where(x > 0, x * x, -2.0 * x))


@pytest.mark.parametrize("make", [
    lambda x: np.vectorize(lambda t: 2.5 * t, otypes=[int])(x),
    lambda x: np.vectorize(lambda t: 0 if t < 1 else 3.0 * t)(x),  # the first result, an int, decides
    lambda x: np.vectorize(lambda t: (t > 1.0, 2.0 * t))(x)[1] * np.vectorize(lambda t: t * 0.5, otypes="?")(x),
    lambda x: np.apply_along_axis(lambda v: v.sum() * 2.5 if v[0] > 1 else 0, 1, x.reshape(3, 1)),
], ids=["otypes int", "first result int", "bool output", "apply_along_axis first int"])
def test_vectorized_results_have_numpys_type(make):
    # NumPy writes every result as the output type: ints are truncated, a step of slope 0
    x = np.array([0.7, 1.3, 2.9])
    for xk in (x, x + 0.45):
        got = jacc.jacobian(make)(xk)
        np.testing.assert_allclose(got, fd_jacobian(lambda z: np.asarray(make(z), float), [xk], 0), atol=1e-8)


def test_vectorize_with_a_signature_is_refused():
    with pytest.raises(UnsupportedOperationError, match="numpy.vectorize with signature='\\(\\)->\\(\\)'"):
        trace(np.vectorize(lambda t: t, signature="()->()"), X)


def test_the_replacements_are_made_only_for_functions_that_need_them():
    from jacc.trace import _NEEDS_SWAPS

    calls = []

    def plain(x):
        calls.append("plain")
        assert np.asarray is constructors._ORIGINAL["asarray"]  # nothing replaced for it
        return x * 2.0

    def builds(x):
        calls.append("builds")
        return np.array([x[0] * x[1], 2.0])

    jf, jb = jacc.jacobian(plain), jacc.jacobian(builds)
    for _ in range(3):
        jf(X)
        np.testing.assert_array_equal(jb(X), [[X[1], X[0], 0.0], [0.0, 0.0, 0.0]])
    assert calls == ["plain", "builds", "builds"] + ["plain", "builds"] * 2  # its first trace ran twice
    assert builds.__code__ in _NEEDS_SWAPS and plain.__code__ not in _NEEDS_SWAPS


# names bound to replaced functions outside their modules (jacc.constructors.aliases)
_HELPERS = types.ModuleType("jacc_test_helpers")  # a user's module of helpers, imported by name
exec("from scipy.linalg import inv\ndef shifted_inverse(a):\n    return inv(a + 3.0 * __import__('numpy').eye(3))",
     vars(_HELPERS))
A = np.array([[0.3, -0.2, 0.1], [0.4, 0.2, -0.5], [0.1, 0.6, 0.3]])


def _closing_over_an_import():
    from scipy.linalg import det as determinant

    return lambda a: determinant(a + np.eye(3)) * a[0]


class _Model:
    def __call__(self, a):
        return self.scale * cho_solve(cho_factor(a @ a.T + np.eye(3)), np.ones(3))

    scale = 2.0


@pytest.mark.parametrize("f", [
    lambda a: expm(a).sum(0),  # imported by name at this module's top
    lambda a: cho_solve(cho_factor(a @ a.T + np.eye(3)), np.ones(3)),
    lambda a: array([asarray(a)[0, 0] * a[1, 1], a[2, 2]]),  # NumPy's constructors imported by name
    lambda a: _HELPERS.shifted_inverse(a),  # in another module's helper
    _closing_over_an_import(),  # in a closure
    _Model(),  # in a callable object's method
    sl.expm, sl.det, sl.inv,  # the library function itself, passed to jacobian
])
def test_functions_imported_by_name_trace(f):
    J = jacc.jacobian(f)(A)
    np.testing.assert_allclose(J, fd_jacobian(f, [A], 0), atol=1e-7)
    jo = jacc.jacobian(f, retrace=False)
    jo(A)
    np.testing.assert_allclose(jo(A * 0.5), fd_jacobian(f, [A * 0.5], 0), atol=1e-7)
    # every binding is the library's own again
    assert expm is sl.expm and not hasattr(expm, "__wrapped__") and not hasattr(array, "__wrapped__")
    assert _HELPERS.inv is sl.inv and not hasattr(sl.inv, "__wrapped__")
    np.testing.assert_array_equal(expm(np.zeros((2, 2))), np.eye(2))


def _converts_in_a_try(x):
    try:
        a = np.asarray(x, dtype=float)  # (a defensive conversion with a fallback)
    except TypeError:
        a = np.zeros_like(x)
    return np.sin(a) * 2.0


def _floats_in_a_try(x):
    try:
        s = float(x[0])
    except TypeError:
        s = 1.0
    return x * s


def test_a_refusal_caught_by_fs_own_code_does_not_send_the_trace_down_its_fallback():
    """The first trace's refused np.asarray was caught by f's `except TypeError:` and the Jacobian
    of the fallback (zeros) came back; the refusal now turns the replacements on, which serve it."""
    got = jacc.jacobian(_converts_in_a_try)(X)
    np.testing.assert_allclose(got, np.diag(2 * np.cos(X)), rtol=1e-12)
    with pytest.raises(UnsupportedOperationError, match=r"float\(\) of a traced value .* caught the error and went on"):
        jacc.jacobian(_floats_in_a_try)(X)  # (the fallback's s = 1.0 gave I where f's is 0.5·I + e₀xᵀ)


def test_a_users_own_np_asarray_is_put_back_after_a_trace(monkeypatch):
    """The swap put back NumPy's constructors as found at import, so a wrapper the user had
    installed was gone for the rest of the process."""
    def mine(a, *args, **kw):
        return asarray(a, *args, **kw)

    monkeypatch.setattr(np, "asarray", mine)
    got = jacc.jacobian(lambda x: np.array([x[0] * x[1], x[1]]))(X[:2])
    np.testing.assert_allclose(got, [[X[1], X[0]], [0.0, 1.0]])
    assert np.asarray is mine


def test_an_alias_found_through_a_rebound_module_attribute_is_found_again(tmp_path, monkeypatch):
    """The aliases found for f were kept while the names f's functions read held still, but not
    the module attribute f calls through (mod_a.helper): rebound, the stale list left the new
    helper's `expm` unswapped, and SciPy's own expm met the traced matrix."""
    import importlib

    for name, body in (("jacc_t_mod_a", "expm(a)"), ("jacc_t_mod_b", "expm(a) * 2.0")):
        (tmp_path / f"{name}.py").write_text(f"from scipy.linalg import expm\n\ndef helper(a):\n    return {body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod_a, mod_b = importlib.import_module("jacc_t_mod_a"), importlib.import_module("jacc_t_mod_b")
    space = {"mod_a": mod_a}  # (f reads the module as a global, as code calling mymodule.helper does)
    exec("def f(a):\n    return mod_a.helper(a)[0, 1]\n", space)
    f = space["f"]
    a0 = np.array([[0.1, 0.2], [0.3, 0.4]])
    first = jacc.jacobian(f)(a0)
    monkeypatch.setattr(mod_a, "helper", mod_b.helper)
    np.testing.assert_allclose(jacc.jacobian(f)(a0), 2 * first, rtol=1e-10)
