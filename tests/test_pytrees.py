"""Nested arguments and results (jacc.pytrees): dicts and tuples of arrays in, the Jacobian back
in the same nesting, equal to the flat function's blocks and to finite differences."""

from collections import namedtuple

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc import pytrees

R = np.random.default_rng(7)
W, B, X = R.normal(size=(3, 2)), R.normal(size=3), R.normal(size=2)


def loss(p, x):
    return np.sum(np.tanh(p["W"] @ x + p["b"]) ** 2)


def flat_loss(W, b, x):
    return loss({"W": W, "b": b}, x)


@pytest.mark.parametrize("options", [{}, {"retrace": False}, {"compile": False}, {"strategy": "forward"},
                                     {"sparse": True}])
def test_dict_of_parameters_gives_a_dict_of_blocks_equal_to_the_flat_functions(options):
    jf = jacc.jacobian(loss, **options)
    want = jacc.jacobian(flat_loss, argnums=(0, 1))(W, B, X)
    for scale in (1.0, -0.5):  # a second call: traced again, or (retrace=False) run on the new leaves
        got = jf({"W": scale * W, "b": B}, X)
        want = jacc.jacobian(flat_loss, argnums=(0, 1))(scale * W, B, X)
        assert list(got) == ["W", "b"]
        for g, w in zip(got.values(), want):
            g = g.toarray().reshape(w.shape) if hasattr(g, "toarray") else g
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)
    if not options.get("sparse"):
        np.testing.assert_allclose(got["W"], fd_jacobian(lambda W: loss({"W": W, "b": B}, X), [scale * W], 0),
                                   atol=1e-8)


def test_nested_results_keep_their_nesting():
    f = lambda x: {"double": 2 * x, "parts": (np.sum(x), x[::-1]), "const": np.ones(2)}  # noqa: E731
    J = jacc.jacobian(f)(X)
    assert list(J) == ["double", "parts", "const"] and isinstance(J["parts"], tuple)
    np.testing.assert_array_equal(J["double"], 2 * np.eye(2))
    np.testing.assert_array_equal(J["parts"][0], np.ones(2))
    np.testing.assert_array_equal(J["parts"][1], np.eye(2)[::-1])
    np.testing.assert_array_equal(J["const"], np.zeros((2, 2)))
    # the plain forms are unchanged: one array, or a flat tuple of them
    assert isinstance(jacc.jacobian(lambda x: [x, 2 * x])(X), tuple)
    assert isinstance(jacc.jacobian(lambda x: 2 * x)(X), np.ndarray)


def test_tuple_and_namedtuple_arguments_with_several_argnums():
    Pair = namedtuple("Pair", "a b")
    f = lambda p, q, s: p.a * q[0] + p.b[:2] * q[1] * s  # noqa: E731
    p, q = Pair(X, B), (X[::-1].copy(), 2.0)
    Jp, Jq = jacc.jacobian(f, argnums=(0, 1))(p, q, 3.0)
    assert type(Jp) is Pair and type(Jq) is tuple
    np.testing.assert_allclose(Jp.a, np.diag(q[0]))
    np.testing.assert_allclose(Jp.b, np.eye(2, 3) * q[1] * 3.0)
    np.testing.assert_allclose(Jq[0], np.diag(X))
    np.testing.assert_allclose(Jq[1], B[:2] * 3.0)


def test_trace_names_each_leaf_by_its_path():
    g = jacc.trace(lambda p, x: p["layers"][1]["w"] * x + p["layers"][0]["w"] + p[2],
                   {"layers": [{"w": X}, {"w": X}], 2: 1.0}, X)
    assert g.inputs == ["p.layers[0].w", "p.layers[1].w", "p[2]", "x"]
    inputs = {"p.layers[0].w": X, "p.layers[1].w": 2 * X, "p[2]": np.float64(1.0), "x": X}
    np.testing.assert_allclose(g.evaluate(inputs)[g.outputs[0]], 2 * X * X + X + 1.0)
    blocks = jacc.plan(g, "reverse").execute(**inputs)
    y = g.outputs[0]
    np.testing.assert_allclose(blocks[y, "p.layers[1].w"], np.diag(X))
    np.testing.assert_allclose(blocks[y, "x"], np.diag(2 * X))


def test_lists_of_numbers_stay_one_array_and_lists_of_arrays_are_nested():
    J = jacc.jacobian(lambda x: np.sin(x))([0.3, 0.5])
    assert J.shape == (2, 2)
    J = jacc.jacobian(lambda xs: xs[0] * xs[1])([X, 2 * X])
    assert isinstance(J, list) and [j.shape for j in J] == [(2, 2), (2, 2)]
    np.testing.assert_allclose(J[0], np.diag(2 * X))


def test_a_new_nesting_traces_again_under_retrace_false():
    jf = jacc.jacobian(lambda p: sum(np.sum(v ** 2) for v in p.values()), retrace=False)
    a = jf({"u": X})
    b = jf({"u": X, "v": B})
    np.testing.assert_allclose(a["u"], 2 * X)
    assert list(b) == ["u", "v"]
    np.testing.assert_allclose(b["v"], 2 * B)
    np.testing.assert_allclose(jf({"u": 3 * X})["u"], 6 * X)  # the first nesting's program, new values


def test_a_leaf_that_is_not_a_float_array_is_named_by_its_path():
    with pytest.raises(TypeError, match=r"p\.name \(in argument 'p'\) must be a real float array"):
        jacc.jacobian(lambda p: p["w"] * 2)({"w": X, "name": np.array(["a"])})


def test_flatten_and_unflatten_round_trip():
    tree = {"a": (X, [B, 1.0]), "b": {"c": X}}
    leaves, spec = pytrees.flatten(tree)
    assert len(leaves) == spec.size == 4
    back = pytrees.unflatten(spec, leaves)
    assert back["a"][1][1] == 1.0 and back["b"]["c"] is X and isinstance(back["a"][1], list)
    assert pytrees.signature(tree) != pytrees.signature({"a": (X, [B, 1.0]), "b": {"c": B}})
    assert pytrees.flatten(X) == ([X], None)


def test_leaf_names_are_valid_vertex_names_and_distinct():
    tree = {"a b": X, "a_b": X, 3: X, (1, 2): X, "θ": X}
    leaves, spec = pytrees.flatten(tree)
    assert spec.paths("p") == ["p.a_b", "p.a_b-2", "p[3]", "p[_1__2_]", "p.θ"]
    g = jacc.trace(lambda p: sum(p.values()), tree)
    assert g.inputs == spec.paths("p")


def test_a_namedtuple_of_numbers_is_nested_not_one_array():
    Point = namedtuple("Point", "x y")
    J = jacc.jacobian(lambda p: p.x * p.y ** 2)(Point(2.0, 3.0))
    assert type(J) is Point
    assert float(J.x) == 9.0 and float(J.y) == 12.0


def test_the_result_nests_the_same_whichever_argument_is_differentiated():
    # (2·s,) with s depending on a only: a tuple of one traced number for argnums=0, but a tuple
    # of a plain number for argnums=1, which was read as one array of shape (1,) (found by fuzzing)
    a, b = np.array([0.3, -0.2, 0.5, 0.1]), np.array([0.7, 0.1, -0.4, 0.2])

    def f(a, b):
        s = np.log1p(a[1] * a[1])
        return {"first": s, "more": (2.0 * s,), "pair": [s, b.sum()]}

    for k, x in enumerate((a, b)):
        r = jacc.jacobian(f, k)(a, b)
        assert isinstance(r["more"], tuple) and len(r["more"]) == 1 and r["more"][0].shape == (4,)
        assert isinstance(r["pair"], list) and [p.shape for p in r["pair"]] == [(4,), (4,)]
        want = fd_jacobian(lambda x: f(*((x, b) if k == 0 else (a, x)))["more"][0], [x], 0)
        np.testing.assert_allclose(r["more"][0], want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("retrace", [True, False])
@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: (v,), lambda v: {"k": v}], ids=["list", "tuple", "dict"])
def test_a_container_of_one_number_keeps_its_nesting_on_every_call(wrap, retrace):
    # an all-scalar graph's compiled route returned a bare 0-d array from the call that skipped f
    # on (the third by default, the second with retrace=False), the traced calls [J] (found by fuzzing)
    def f(p):
        leaf = p["k"] if isinstance(p, dict) else p[0]
        return np.tanh(leaf) ** 3

    jf = jacc.jacobian(f, retrace=retrace)
    for v in (0.3, 0.5, 0.7, 0.9):
        r = jf(wrap(np.array(v)))
        assert type(r) is type(wrap(0.0))
        got = r["k"] if isinstance(r, dict) else r[0]
        np.testing.assert_allclose(got, 3 * np.tanh(v) ** 2 / np.cosh(v) ** 2, rtol=1e-13)


@pytest.mark.parametrize("retrace", [True, False])
def test_a_namedtuple_result_keeps_its_type_at_the_top_level_too(retrace):
    # (it came back a plain tuple there, and nested a namedtuple: J.s raised AttributeError)
    Out = namedtuple("Out", "y s")
    jf = jacc.jacobian(lambda x: Out(np.sin(x), np.sum(x)), retrace=retrace)
    x = np.array([0.1, 0.2])
    for _ in range(4):
        J = jf(x)
        assert type(J) is Out
        np.testing.assert_allclose(J.y, np.diag(np.cos(x)), rtol=1e-15)
        np.testing.assert_array_equal(J.s, np.ones(2))
