"""Shape functions (jacc.numpy_api.shape): values equal NumPy's over many argument forms, the
Jacobians cost no multiplication, graphs round-trip, and bad arguments fail naming the function,
the argument and the call site."""

import os
import warnings

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.trace import TraceError, UnsupportedOperationError

HERE = os.path.basename(__file__)


def traced(f, *args):
    """``f(*args)`` run on traced arrays: the traced result's value(s)."""
    out = []
    jacc.trace(lambda *xs: out.append(f(*xs)) or _first(out[-1]), *args)
    r = out[0]
    return [getattr(p, "value", p) for p in r] if isinstance(r, (list, tuple)) else getattr(r, "value", r)


def _first(r):
    return r[0] if isinstance(r, (list, tuple)) else r


X = np.arange(24.0).reshape(2, 3, 4) - 7.5
M = np.arange(12.0).reshape(3, 4) + 0.5
V = np.arange(5.0) - 1.5

# (function of one array, argument): the traced value must equal NumPy's exactly
SAME_AS_NUMPY = [
    (lambda x: np.expand_dims(x, -1), X),
    (lambda x: np.expand_dims(x, (0, 2, -1)), M),
    (lambda x: np.swapaxes(x, -3, 1), X),
    (lambda x: x.swapaxes(2, 2), X),
    (lambda x: np.moveaxis(x, (0, 1), (2, 0)), X),
    (lambda x: np.rollaxis(x, 2), X),
    (lambda x: np.rollaxis(x, -3, 2), X),
    (lambda x: np.rollaxis(x, 1, -3), X),
    (lambda x: np.flip(x, (-1, 0)), X),
    (lambda x: np.flip(x), V),
    (lambda x: np.fliplr(x), X),
    (lambda x: np.flipud(x), V),
    *[(lambda x, k=k: np.rot90(x, k), M) for k in range(-5, 6)],
    *[(lambda x, k=k: np.rot90(x, k, axes=(2, -3)), X) for k in range(-1, 4)],
    (lambda x: np.roll(x, 7), X),
    (lambda x: np.roll(x, -30, axis=-1), X),
    (lambda x: np.roll(x, (1, -1, 2), axis=(0, 0, 2)), X),
    (lambda x: np.roll(x, [2, 1], axis=1), X),
    (lambda x: np.roll(x, 3, axis=(0, 2)), X),
    (lambda x: np.roll(x, (4, 1)), V),
    (lambda x: np.roll(x, 0), M),
    (lambda x: np.tile(x, 2), M),
    (lambda x: np.tile(x, (2, 1, 3)), V),
    (lambda x: np.tile(x, (0, 2)), M),
    (lambda x: np.tile(x, 1), X),
    (lambda x: np.repeat(x, 3), M),
    (lambda x: np.repeat(x, [1, 0, 2, 2], axis=-1), M),
    (lambda x: np.repeat(x, [0, 0, 0], axis=0), M),
    (lambda x: np.repeat(x, np.int64(2), axis=1), X),
    (lambda x: x.repeat([3], axis=0), M),
    (lambda x: np.pad(x, 1), X),
    (lambda x: np.pad(x, ((0, 1), (2, 0))), M),
    (lambda x: np.pad(x, (1, 2), constant_values=(-1.0, 4.0)), M),
    (lambda x: np.pad(x, [(1, 1), (2, 1)], constant_values=[[1, 2], [3, 4]]), M),  # corners: last axis wins
    (lambda x: np.pad(x, [[3]], mode="constant", constant_values=np.inf), V),
    (lambda x: np.pad(x, 0), M),
    (lambda x: np.pad(x, ((1, 2), (0, 1), (3, 0)), "edge"), X),
    (lambda x: np.pad(x, 7, "reflect"), V),
    (lambda x: np.pad(x, ((2, 5), (1, 1)), "symmetric"), M),
    (lambda x: np.pad(x, [(4, 9)], mode="wrap"), V),
    (lambda x: np.pad(x, 2, "reflect", reflect_type="even"), M),
    (lambda x: np.pad(x, ((1, 2), (0, 1), (3, 0)), "mean"), X),
    (lambda x: np.pad(x, ((2, 1), (1, 3)), "maximum", stat_length=((1, 2), (3, 9))), M),
    (lambda x: np.pad(x, (3, 1), "minimum", stat_length=2), V),
    (lambda x: np.pad(x, 2, "median"), M),
    (lambda x: np.pad(x, ((1, 0), (2, 2), (0, 3)), "median", stat_length=(2, 1)), X),
    (lambda x: np.pad(x, ((2, 3), (1, 2)), "linear_ramp"), M),
    (lambda x: np.pad(x, ((1, 2), (0, 1), (3, 2)), "linear_ramp", end_values=((1.0, -2.0), (0.5, 0.0), (3.0, 4.0))), X),
    (lambda x: np.atleast_1d(x), np.float64(2.0)),
    (lambda x: np.atleast_2d(x), V),
    (lambda x: np.atleast_3d(x), M),
    (lambda x: np.atleast_3d(x), V),
    (lambda x: np.atleast_3d(x), X),
    (lambda x: np.diag(x), V),
    *[(lambda x, k=k: np.diag(x, k), v) for k in (-6, -2, 1, 3, 5) for v in (V, M)],
    (lambda x: np.diagflat(x, 2), M),
    *[(lambda x, k=k: np.diagonal(x, k), M) for k in (-3, -1, 0, 2, 4, 9)],
    (lambda x: np.diagonal(x, 1, -1, -3), X),
    (lambda x: x.diagonal(-1, 2, 1), X),
    *[(lambda x, k=k: np.trace(x, k), M) for k in (-2, 0, 3, 4)],
    (lambda x: x.trace(1, axis1=-1, axis2=0), X),
    *[(lambda x, k=k, f=f: f(x, k), a) for k in (-2, 0, 1) for f in (np.tril, np.triu) for a in (M, X, V)],
    (lambda x: np.split(x, [1, -1, 10], axis=-1), X),
    (lambda x: np.split(x, 3, axis=1), X),
    (lambda x: np.array_split(x, 3), V),
    (lambda x: np.array_split(x, [3, 1]), V),
    (lambda x: np.hsplit(x, 2), np.arange(6.0)),
    (lambda x: np.hsplit(x, [1]), X),
    (lambda x: np.vsplit(x, 3), M),
    (lambda x: np.dsplit(x, [2, 3]), X),
    (lambda x: np.hstack([x, np.ones((3, 1)), x]), M),
    (lambda x: np.vstack((x, [1, 2, 3, 4, 5])), V),
    (lambda x: np.dstack([x, x]), V),
    (lambda x: np.column_stack([x, 2.0 * x]), V),
    (lambda x: np.append(x, [[1.0] * 4], axis=0), M),
    (lambda x: np.append(x, 3.0), M),
    (lambda x: np.broadcast_arrays(x, np.ones((2, 1, 1)), 3.0), M),
    (lambda x: np.block([[x, x[:, :1]], [np.zeros((1, 4)), np.array([[9.0]])]]), M),
    (lambda x: np.block([x, np.array([1.0, 2.0])]), V),
    (lambda x: np.block([[x], [x]]), X),
    (lambda x: np.block(x), M),
    (lambda x: np.resize(x, (5, 5)), M),
    (lambda x: np.resize(x, 7), X),
    (lambda x: np.resize(x, (2, 0)), M),
    (lambda x: np.delete(x, [-1, 0, 0], axis=1), M),
    (lambda x: np.delete(x, np.array([True, False, False]), axis=0), M),
    (lambda x: np.delete(x, slice(None, None, 3)), X),
    (lambda x: np.delete(x, [], axis=0), M),
    (lambda x: np.delete(x, slice(None)), V),
]


@pytest.mark.parametrize("k", range(len(SAME_AS_NUMPY)))
def test_values_equal_numpy(k):
    f, x = SAME_AS_NUMPY[k]
    want, got = f(x), traced(f, x)
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want)
    else:
        want, got = [want], [got]
    for w, g in zip(want, got):
        assert g.shape == np.shape(w)
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("k", [i for i in range(len(SAME_AS_NUMPY)) if i % 3 == 0])
def test_jacobians_equal_finite_differences(k):
    f, x = SAME_AS_NUMPY[k]

    def g(x):
        r = f(x)
        return np.concatenate([np.reshape(p, -1) for p in r]) if isinstance(r, (list, tuple)) else r

    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf beside constant inf entries: derivative 0
        want = np.nan_to_num(fd_jacobian(g, [x], 0), nan=0.0)
    np.testing.assert_allclose(jacc.jacobian(g)(x), want, atol=1e-8)


@pytest.mark.parametrize("f, x", [
    (lambda x: np.diag(x, -2), V),
    (lambda x: np.diag(x, 1), M),
    (lambda x: np.roll(x, (1, 2), axis=(0, -1)), X),
    (lambda x: np.pad(x, ((1, 0), (2, 3)), constant_values=1.0), M),
    (lambda x: np.repeat(x, [2, 0, 1, 1], axis=1), M),
    (lambda x: np.rot90(np.tile(x, (2, 1)), 3), M),
    (lambda x: np.trace(np.flip(x), 1), M),
    (lambda x: np.hstack(np.split(x, 2, axis=-1)[::-1]), X),
    (lambda x: np.block([[x, np.flip(x)], [np.zeros((3, 4)), x]]), M),
    (lambda x: np.resize(np.delete(x, [1, 2], axis=-1), (5, 3)), M),
])
def test_index_maps_cost_no_multiplication(f, x):
    g = jacc.trace(f, x)
    for strategy in ("forward", "reverse", "markowitz"):
        assert jacc.plan(g, strategy).mults == 0
    assert all(g.op(v) in {"input", "reshape", "transpose", "getitem", "concatenate", "broadcast_to", "sum"}
               for v in g.nx.nodes)


def test_graphs_round_trip_through_files(tmp_path):
    def f(x):
        y = np.pad(np.roll(x, 1, axis=0), ((1, 0), (0, 2)), constant_values=-2.5)
        return np.diag(np.diagonal(y, 1), -1) + np.tril(np.tile(y, (1, 1))[:, :5], 1).sum()

    g = jacc.trace(f, M)
    g.save(tmp_path / "shape.json")
    g2 = jacc.load(tmp_path / "shape.json")
    x = M[::-1] * 0.5
    np.testing.assert_array_equal(g2.evaluate({"x": x})[g2.outputs[0]], f(x))


def test_tril_zeroes_non_finite_entries_and_their_derivatives():
    x = np.array([[1.0, np.inf], [2.0, 3.0]])
    assert traced(np.tril, x).tolist() == [[1.0, 0.0], [2.0, 3.0]]
    J = jacc.jacobian(np.triu, nonfinite="propagate")(x)
    assert J.reshape(4, 4).tolist() == np.diag([1.0, 1.0, 0.0, 1.0]).tolist()


def test_split_pieces_are_separate_outputs():
    J = jacc.jacobian(lambda x: tuple(np.array_split(x, 2)))(V)
    assert [j.shape for j in J] == [(3, 5), (2, 5)]
    np.testing.assert_array_equal(np.vstack(J), np.eye(5))


def test_row_stack_is_vstack():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        got = traced(lambda x: np.row_stack([x, x]), V)
    np.testing.assert_array_equal(got, np.vstack([V, V]))


# -- refusals: the function, the argument and the call site -------------------------------------


@pytest.mark.parametrize("mode", ["empty", np.mean])
def test_pad_modes_without_a_formula_are_refused(mode):
    with pytest.raises(UnsupportedOperationError) as e:
        jacc.trace(lambda x: np.pad(x, 1, mode=mode), M)
    msg = str(e.value)
    assert f"numpy.pad with mode={mode!r}" in msg and HERE in msg and "'constant'" in msg and "'linear_ramp'" in msg


def test_pad_odd_reflection_and_foreign_keywords_are_refused():
    with pytest.raises(UnsupportedOperationError, match="reflect_type='odd'.*only reflect_type='even'"):
        jacc.trace(lambda x: np.pad(x, 1, "reflect", reflect_type="odd"), M)
    with pytest.raises(UnsupportedOperationError, match="constant_values= .*mode='edge' does not take it"):
        jacc.trace(lambda x: np.pad(x, 1, "edge", constant_values=2.0), M)


def test_pad_by_copies_sums_repeated_entries_in_reverse():
    """Each padded entry copies one of the array's: the gradient of the sum counts the copies."""
    x = np.arange(4.0)
    g = jacc.jacobian(lambda x: np.sum(np.pad(x, 3, "wrap")))(x)
    np.testing.assert_array_equal(g, [2.0, 3.0, 3.0, 2.0])  # wrap(3) of 0..3 is 1 2 3 0 1 2 3 0 1 2
    J = jacc.jacobian(lambda x: np.pad(x, (0, 6), "symmetric"))(x)
    np.testing.assert_array_equal(J, np.pad(np.eye(4), ((0, 6), (0, 0)), "symmetric"))


@pytest.mark.parametrize("mode, options", [
    ("mean", {}), ("mean", {"stat_length": ((1, 3), (2, 2))}), ("maximum", {"stat_length": 2}), ("minimum", {}),
    ("median", {"stat_length": (3, 2)}), ("linear_ramp", {"end_values": ((0.5, -1.0), (2.0, 0.0))}),
])
def test_pad_by_formula_jacobians(mode, options):
    """Each padded entry is a statistic or a ramp of the array padded so far: corners included,
    the Jacobian equals finite differences (at a point without ties)."""
    x = np.random.default_rng(5).normal(size=(4, 5))
    f = lambda x: np.pad(np.sin(x), ((2, 1), (1, 3)), mode, **options)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


@pytest.mark.parametrize("f", [
    lambda x: np.pad(x, 2, constant_values=x[0, 1]),
    lambda x: np.pad(x, ((1, 0), (0, 2)), constant_values=((x[0, 0], 1.5), (x[1, 1], x[2, 3]))),
    lambda x: np.pad(x, (2, 1), "linear_ramp", end_values=((x[0, 0], 0.5), (x[1, 2], x[2, 0]))),
    lambda x: np.pad(np.ones((2, 3)), 1, constant_values=[x[0, 0], x[1, 1]]) * x[2, 2],
], ids=["one value", "values per axis", "ramp ends", "around a constant array"])
def test_pad_with_traced_fill_values(f):
    """Traced ``constant_values``/``end_values`` fill their blocks (NumPy dispatches ``np.pad`` on its
    array alone: traced values around a constant array take jacc's pad too)."""
    x = np.random.default_rng(3).normal(size=(3, 4))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_pad_of_an_integer_array_with_a_traced_value_is_refused():
    with pytest.raises(TraceError, match=r"numpy.pad at .*dtype int64: NumPy would round"):
        jacc.trace(lambda x: np.pad(np.arange(3), 1, constant_values=x[0]), V)


@pytest.mark.parametrize("f", [
    lambda x: np.r_[x, x[:2] * 2.0, 5.0],
    lambda x: np.r_[x[0], 0:3, [x[1], 1.0]],
    lambda x: np.r_["0,2", x, x ** 2],
    lambda x: np.r_["0,2,0", x[:2], x[2:]],
    lambda x: np.c_[x, np.sin(x)],
    lambda x: np.c_[x[:2], [1.0, 2.0]],
], ids=["pieces", "0-d, a range and a list", "ndmin 2", "trans1d", "columns", "column of constants"])
def test_r_and_c_join_traced_pieces(f):
    x = np.array([0.3, 0.7, 1.1, 1.9])
    np.testing.assert_array_equal(traced(f, x), f(x))
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


@pytest.mark.parametrize("call, words", [
    (lambda x: np.pad(x, 1, stat_length=2), ["numpy.pad", "stat_length="]),
    (lambda x: np.pad(x, 1, "mean", end_values=2), ["numpy.pad", "mode='mean' takes only stat_length="]),
    (lambda x: np.pad(x, 1, "mean", stat_length=x[0, :1]), ["numpy.pad", "traced stat_length"]),
    (lambda x: np.repeat(x, x[0, :3]), ["numpy.repeat", "traced repeats"]),
    (lambda x: np.roll(x, x[0, 0]), ["numpy.roll", "traced shift"]),
    (lambda x: np.split(x, x[0, :2]), ["numpy.split", "traced split points"]),
    (lambda x: np.trace(x, out=np.zeros(())), ["numpy.trace", "out="]),
    (lambda x: x.trace(dtype=np.float32), ["numpy.trace", "dtype="]),
    (lambda x: np.vstack([x, x], casting="unsafe"), ["numpy.vstack", "casting="]),
    (lambda x: x.repeat(2, axis=0, foo=1), ["ndarray.repeat", "foo"]),
])
def test_unsupported_arguments_are_refused(call, words):
    with pytest.raises(UnsupportedOperationError) as e:
        jacc.trace(call, M)
    for w in words + [HERE]:
        assert w in str(e.value)


@pytest.mark.parametrize("call, words", [
    (lambda x: np.split(x, 3, axis=1), ["numpy.split", "4", "3 equal sections"]),
    (lambda x: np.split(x, 0), ["numpy.split", "larger than 0"]),
    (lambda x: np.hsplit(x[0, 0], 1), ["numpy.hsplit", "at least 1 dimension"]),
    (lambda x: np.vsplit(x[0], 1), ["numpy.vsplit", "at least 2 dimension"]),
    (lambda x: np.dsplit(x, 1), ["numpy.dsplit", "at least 3 dimension"]),
    (lambda x: np.fliplr(x[0]), ["numpy.fliplr", "at least 2 dimension", "(4,)"]),
    (lambda x: np.flip(x, 2), ["numpy.flip", "axis 2"]),
    (lambda x: np.rot90(x, axes=(0, 0)), ["numpy.rot90", "repeats an axis"]),
    (lambda x: np.rot90(x, axes=(0, 1, 2)), ["numpy.rot90", "exactly 2 axes"]),
    (lambda x: np.expand_dims(x, (0, 0)), ["numpy.expand_dims", "repeats"]),
    (lambda x: np.expand_dims(x, 3), ["numpy.expand_dims", "axis 3"]),
    (lambda x: np.swapaxes(x, 0, -3), ["numpy.swapaxes", "axis2 -3"]),
    (lambda x: np.rollaxis(x, 0, 3), ["numpy.rollaxis", "start 3"]),
    (lambda x: np.roll(x, (1, 2, 3), axis=(0, 1)), ["numpy.roll", "different lengths"]),
    (lambda x: np.repeat(x, [1, 2], axis=1), ["numpy.repeat", "length 4"]),
    (lambda x: np.repeat(x, -1), ["numpy.repeat", "negative"]),
    (lambda x: np.tile(x, (2, -1)), ["numpy.tile", "negative"]),
    (lambda x: np.pad(x, -1), ["numpy.pad", "negative"]),
    (lambda x: np.pad(x, 1, "maximum", stat_length=0), ["numpy.pad", "stat_length 0", "maximum"]),
    (lambda x: np.pad(x, ((1, 2, 3),)), ["numpy.pad", "pad_width of shape (1, 3)"]),
    (lambda x: np.diag(x[None]), ["numpy.diag", "1-d or 2-d", "(1, 3, 4)"]),
    (lambda x: np.diagonal(x[0]), ["numpy.diagonal", "at least 2 dimension"]),
    (lambda x: np.diagonal(x, 0, 1, -1), ["numpy.diagonal", "repeats an axis"]),
    (lambda x: np.tril(x[0, 0]), ["numpy.tril", "at least 1 dimension"]),
    (lambda x: np.block([[x], x]), ["numpy.block", "depths are mismatched"]),
    (lambda x: np.block([x, []]), ["numpy.block", "empty"]),
    (lambda x: np.delete(x, 5, axis=-1), ["numpy.delete", "length 4"]),
    (lambda x: np.delete(x, x[0, 0]), ["numpy.delete", "traced obj"]),
    (lambda x: np.resize(x, (2, -1)), ["numpy.resize", "negative"]),
])
def test_bad_arguments_fail_naming_function_and_call_site(call, words):
    with pytest.raises((TraceError, UnsupportedOperationError, TypeError, ValueError)) as e:
        jacc.trace(call, M)
    msg = str(e.value)
    for w in words + [HERE]:
        assert w in msg, msg


def test_float_counts_are_refused_as_numpy_does():
    with pytest.raises(TypeError, match="repeats must be integers"):
        jacc.trace(lambda x: np.repeat(x, 2.0), V)
    with pytest.raises(TypeError, match="pad_width must be integers"):
        jacc.trace(lambda x: np.pad(x, 1.5), V)


# -- chains of index maps stay lazy (structure._compose_basic) ------------------------------------


@pytest.mark.parametrize("f", [
    lambda x: np.sin(np.pad(x, 1)),
    lambda x: np.pad(np.sin(x), ((2, 0), (1, 1))),
    lambda x: np.sin(x[1:][:, ::2][::-1]),
    lambda x: np.sin(x)[1:, None, ::-3][::2, :, 1:][..., None, 1, None],
    lambda x: np.sin(np.flip(np.flip(x, 1), 0)),
])
def test_chains_of_index_maps_cost_nothing_in_any_order(f):
    x = np.random.default_rng(1).uniform(0.1, 0.9, (6, 10))
    g = jacc.trace(f, x)
    want = fd_jacobian(f, [x], 0)
    for strategy in ("forward", "reverse", "markowitz"):
        assert jacc.plan(g, strategy).mults == 0, strategy
        np.testing.assert_allclose(jacc.jacobian(f, strategy=strategy)(x), want, atol=1e-8)


def _random_basic_index(rng, shape):
    """A random basic index over ``shape`` (ints, slices with any step, new axes), as NumPy items."""
    items = []
    for n in shape:
        while rng.random() < 0.2:
            items.append(None)
        if n and rng.random() < 0.25:
            items.append(int(rng.integers(-n, n)))
        else:
            lo, hi = (int(v) if rng.random() < 0.7 else None for v in rng.integers(-n - 1, n + 2, 2))
            items.append(slice(lo, hi, int(rng.choice([-3, -2, -1, 1, 2, 3]))))
    return tuple(items) + (None,) * int(rng.random() < 0.2)


def test_composed_basic_indices_equal_numpy_indexing_twice():
    from jacc.ops import index_to_numpy
    from jacc.structure import _then
    from jacc.trace import _index_params

    rng = np.random.default_rng(7)
    for _ in range(300):
        x = np.arange(60.0).reshape(rng.permutation([3, 4, 5]))
        i1 = _random_basic_index(rng, x.shape)
        y = x[i1]
        i2 = _random_basic_index(rng, y.shape)
        both = _then(_index_params(i1, x.ndim), _index_params(i2, y.ndim), x.shape)
        if both is None:  # an empty slice of a new axis: no basic index (NumPy's shape has a 0)
            assert 0 in y[i2].shape
            continue
        np.testing.assert_array_equal(x[index_to_numpy(both)], y[i2], err_msg=f"{i1} then {i2}")


def test_fortran_order_reshapes_follow_numpy():
    x = np.arange(24.0).reshape(2, 3, 4) * 0.1 + 0.3
    fns = [lambda a: np.reshape(a, (4, 6), order="F") * a.reshape(4, 6),
           lambda a: a.ravel(order="F") ** 2,
           lambda a: a.flatten("F")[:5] * a.reshape(-1)[:5],
           lambda a: a.reshape((3, 8), order="F").T @ np.ones(3)]
    for f in fns:
        g = jacc.trace(f, x)
        np.testing.assert_array_equal(g.evaluate({"a": x})[g.outputs[0]], f(x))
        np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    with pytest.raises(UnsupportedOperationError, match=r"order='A'.*'C' and 'F' work"):
        jacc.trace(lambda a: a.reshape(-1, order="A"), x)


@pytest.mark.parametrize("pad_width", [{1: (2, 1)}, {0: 1}, {-1: (0, 2)}])
def test_pad_with_a_dict_of_widths(pad_width):
    # (NumPy ≥ 2.3 takes {axis: width}; jacc said "pad_width must be integers")
    x = np.arange(6.0).reshape(2, 3)
    f = lambda x: np.pad(x, pad_width, mode="edge")  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-9)


def test_ndenumerate_and_flat_iteration_of_a_traced_array():
    # np.ndenumerate reads x.flat.coords: AttributeError from inside NumPy (found by a hunt)
    g = lambda x: sum(v * (i + 2 * j) for (i, j), v in np.ndenumerate(x))  # noqa: E731
    np.testing.assert_array_equal(jacc.jacobian(g)(np.ones((2, 3))), [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
    f = lambda x: np.array([v * i for i, v in enumerate(x.flat)])  # noqa: E731
    np.testing.assert_array_equal(jacc.jacobian(f)(np.ones((2, 2))).reshape(4, 4), np.diag([0.0, 1.0, 2.0, 3.0]))
