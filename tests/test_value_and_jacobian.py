"""jacc.value_and_jacobian: f's value beside its Jacobian on every route, from one call."""

import math

import numpy as np
import pytest

import jacc
from jacc import pytrees
from jacc.compile import CompileError, compile_values
from jacc.graph import Graph

RNG = np.random.default_rng(7)
A = RNG.standard_normal((30, 20))


def lecture(x1, x2):
    return np.sin(x1) * x2 + np.exp(x1 * x2)


def short(x):  # a short vector: the scalar route of an array graph (unrolled)
    return np.tanh(x) * 2.0 + x[::-1]


def wide(x):  # larger: the array program
    return np.tanh(A @ x) * np.sum(x ** 2)


def pair(x):
    return np.sum(x ** 2), x * 3.0


def nested(x):
    return {"a": np.sum(np.sin(x)), "b": (np.cos(x), x[0] ** 2)}


def identity(x):
    return x


CASES = [(lecture, lambda: [2.0 + RNG.uniform(-0.5, 0.5), 5.0 + RNG.uniform(-0.5, 0.5)], (0, 1)),
         (short, lambda: [RNG.standard_normal(5)], 0),
         (wide, lambda: [RNG.standard_normal(20)], 0),
         (pair, lambda: [RNG.standard_normal(4)], 0),
         (nested, lambda: [RNG.standard_normal(4)], 0),
         (identity, lambda: [RNG.standard_normal(4)], 0)]
OPTIONS = [{}, {"retrace": False}, {"backend": "numpy"}, {"backend": "c"}, {"compile": False},
           {"backend": "jax"}, {"backend": "torch"}]


def leaves(tree):
    return pytrees.flatten(tree, lambda x: isinstance(x, (dict, tuple, list)))[0]


def assert_same_tree(got, want):
    assert type(got) is type(want) or not isinstance(want, (tuple, dict))
    if isinstance(want, dict):
        assert list(got) == list(want)
    g, w = leaves(got), leaves(want)
    assert len(g) == len(w)
    for a, b in zip(g, w):
        a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
        b = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
        assert a.shape == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
@pytest.mark.parametrize("f,point,argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_value_and_jacobian_on_every_route(f, point, argnums, options):
    if options.get("backend") == "jax":
        pytest.importorskip("jax")
    if options.get("backend") == "torch":
        pytest.importorskip("torch")
    if options.get("backend") == "c":
        from jacc.ccode import compiler
        if compiler() is None:
            pytest.skip("no C compiler")
    vj = jacc.value_and_jacobian(f, argnums, **options)
    jf = jacc.jacobian(f, argnums, **options)
    for _ in range(6):  # traced calls, then calls that skip f (retrace) or run the program (traced once)
        args = point()
        value, J = vj(*args)
        assert_same_tree(value, f(*args))
        assert_same_tree(J, jf(*args))
        for v in leaves(value):
            assert type(v) is np.ndarray and v.dtype == np.float64
    if options.get("compile") is not False:
        assert vj.cache.skipped > 0 or options.get("retrace") is False or f is identity


def test_sparse_blocks_with_dense_values():
    vj = jacc.value_and_jacobian(wide, sparse=True)
    for _ in range(4):
        x = RNG.standard_normal(20)
        value, J = vj(x)
        np.testing.assert_allclose(value, wide(x), rtol=1e-13)
        np.testing.assert_allclose(J.toarray(), jacc.jacobian(wide)(x), rtol=1e-12, atol=1e-14)
    assert vj.ran == "numpy"


def test_the_array_program_returns_the_outputs_itself(monkeypatch):
    """On the array route the value is the program's own (no evaluation of the graph)."""
    vj = jacc.value_and_jacobian(wide, backend="numpy")
    for _ in range(3):
        vj(RNG.standard_normal(20))
    assert vj.cache.skipped and vj.ran == "numpy"
    assert any(k[1] is None for k in vj.program.outputs)

    def refuse(*_, **__):
        raise AssertionError("the graph was evaluated")
    monkeypatch.setattr(Graph, "evaluate", refuse)
    x = RNG.standard_normal(20)
    value, _ = vj(x)
    np.testing.assert_allclose(value, wide(x), rtol=1e-13)


@pytest.mark.parametrize("f,args,argnums", [(lecture, (2.0, 5.0), (0, 1)), (short, (np.linspace(-1, 1, 5),), 0)])
def test_the_scalar_route_computes_the_value_as_float_code(monkeypatch, f, args, argnums):
    vj = jacc.value_and_jacobian(f, argnums)
    for _ in range(3):
        vj(*args)
    assert vj.cache.skipped and vj.ran in ("scalar", "c")

    def refuse(*_, **__):
        raise AssertionError("the graph was evaluated")
    monkeypatch.setattr(Graph, "evaluate", refuse)
    value, _ = vj(*args)
    np.testing.assert_allclose(value, f(*args), rtol=1e-14)


def test_a_value_outside_maths_domain_is_numpys():
    """math.log(-1) raises where NumPy gives NaN: the value is then the graph's by NumPy."""
    def f(x):
        return np.log(x[0]) + x[1] ** 2

    vj = jacc.value_and_jacobian(f, nonfinite="propagate")
    with np.errstate(all="ignore"):
        for x in ([1.0, 2.0], [2.0, 3.0], [3.0, 1.0], [-1.0, 2.0]):
            value, J = vj(np.array(x))
            want = f(np.array(x))
            np.testing.assert_allclose(value, want)
            np.testing.assert_allclose(J[1], 2 * x[1])
    assert math.isnan(float(value))


def test_the_value_belongs_to_the_caller():
    vj = jacc.value_and_jacobian(identity)
    x = np.arange(4.0)
    for _ in range(4):
        value, J = vj(x)
        value[:] = -1.0
        np.testing.assert_array_equal(x, np.arange(4.0))
        np.testing.assert_array_equal(J, np.eye(4))
    assert vj.cache.skipped


def test_data_arguments_that_change():
    def loss(w, X, y):
        return np.mean((np.tanh(X @ w) - y) ** 2)

    vj = jacc.value_and_jacobian(loss)
    jf = jacc.jacobian(loss)
    for _ in range(8):
        w, X, y = RNG.standard_normal(5), RNG.standard_normal((40, 5)), RNG.standard_normal(40)
        value, g = vj(w, X, y)
        np.testing.assert_allclose(value, loss(w, X, y), rtol=1e-13)
        np.testing.assert_allclose(g, jf(w, X, y), rtol=1e-12)
    assert vj.cache.skipped


@pytest.mark.parametrize("retrace", [True, False])
def test_jax_arrays_give_jax_values(retrace):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    vj = jacc.value_and_jacobian(wide, backend="jax", retrace=retrace)
    for _ in range(5):
        x = RNG.standard_normal(20)
        value, J = vj(jnp.asarray(x))
        assert isinstance(value, jax.Array) and isinstance(J, jax.Array)
        np.testing.assert_allclose(np.asarray(value), wide(x), rtol=1e-12)


def test_minimize_takes_value_and_gradient_from_one_call():
    from scipy.optimize import minimize

    def rosen(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    vj = jacc.value_and_jacobian(rosen)
    found = minimize(vj, np.zeros(5), jac=True, method="BFGS")
    np.testing.assert_allclose(found.x, np.ones(5), atol=1e-4)
    assert found.fun == pytest.approx(rosen(found.x), abs=1e-12)
    assert vj.cache.skipped >= found.nfev - 2  # all calls but the first two skipped f


def test_jax_only_options_name_value_and_jacobian():
    with pytest.raises(TypeError, match="value_and_jacobian has no has_aux"):
        jacc.value_and_jacobian(lecture, has_aux=True)


def test_compile_values_agrees_with_the_graph():
    def f(x):
        return np.stack([np.sin(x[0]) * x[1], np.exp(x[2]) / (1 + x[0] ** 2), x[1]])

    g = jacc.trace(f, np.array([0.3, -1.2, 0.7]), scalarize=True)
    code = compile_values(g)
    for _ in range(5):
        x = RNG.standard_normal(3)
        want = g.evaluate(dict(zip(g.inputs, x)))
        assert code(*x) == pytest.approx([float(want[y]) for y in g.outputs], rel=1e-15)


def test_compile_values_refuses_arrays():
    g = jacc.trace(lambda x: np.tanh(x), np.zeros(3))
    with pytest.raises(CompileError, match="all scalars"):
        compile_values(g)


B = RNG.standard_normal((200, 150))


def large(x):  # beyond the scalar route: the backends' array programs
    return np.tanh(B @ x) * np.sum(x ** 2), np.sum(np.sin(x))


@pytest.mark.parametrize("retrace", [True, False])
@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_each_array_program_returns_the_outputs(backend, retrace):
    if backend != "numpy":
        pytest.importorskip(backend)
    vj = jacc.value_and_jacobian(large, backend=backend, retrace=retrace)
    jf = jacc.jacobian(large, backend=backend, retrace=retrace)
    for _ in range(5):
        x = RNG.standard_normal(150)
        value, J = vj(x)
        assert_same_tree(value, large(x))
        assert_same_tree(J, jf(x))
    assert vj.ran == backend
    assert [k for k in vj.program.outputs if k[1] is None] == [(y, None) for y in vj.plan.graph.outputs]


def test_sparse_values_are_the_callers_own():
    """With sparse=True the program's outputs went through owned() without its inputs: f(x) =
    x.reshape(2, 2) gave a view of the caller's x on calls that skip f (hunt BF)."""
    vj = jacc.value_and_jacobian(lambda x: x.reshape(2, 2), sparse=True)
    x = np.arange(1.0, 5.0)
    for _ in range(4):
        value, _ = vj(x)
        value[...] = -7.0
        np.testing.assert_array_equal(x, np.arange(1.0, 5.0))
    assert vj.cache.skipped


def test_jacobians_own_programs_return_blocks_alone():
    """record() read its list of result keys for the flag asking for the outputs (the same name),
    so every program lowered with the primal returned the outputs too: jacobian's calls paid for
    them (a small program: 21 → 27 µs a call)."""
    jf = jacc.jacobian(large, backend="numpy")
    vj = jacc.value_and_jacobian(large, backend="numpy")
    for _ in range(3):
        x = RNG.standard_normal(150)
        jf(x)
        vj(x)
    assert jf.program.primal and all(k[1] is not None for k in jf.program.outputs)
    assert any(k[1] is None for k in vj.program.outputs)
    from jacc.program import lower

    g = jacc.trace(large, np.ones(150))
    p = jacc.plan(g, "reverse")
    assert all(k[1] is not None for k in lower(p, {"x": np.ones(150)}, primal=True).outputs)
    assert [k for k in lower(p, {"x": np.ones(150)}, primal=True, outputs=True).outputs if k[1] is None] == \
        [(y, None) for y in g.outputs]
