"""The tracer's replay fast paths (jacc.trace): same values, same checks, same graphs as the
general path."""

import numpy as np
import pytest

from jacc.trace import UnsupportedOperationError, check_argnums, record_call


def _bits(x):
    x = np.asarray(x)
    return x.shape, x.dtype.str, x.tobytes()


def _replay(f, *args, first=None):
    """Trace ``f`` at ``first`` (default: the same arguments), then replay it at ``args``."""
    nums = tuple(range(len(args)))
    rec = record_call(f, first or args, {}, nums).recording()
    return record_call(f, args, {}, nums, expect=rec)


@pytest.mark.parametrize("c", [2.0, 3, np.float64(1.5), -7, 0.0, -0.0])
def test_replay_with_the_same_constant_builds_no_graph(c):
    t = _replay(lambda x: x * c + c, np.asarray(1.25))
    assert t.graph is None and t.same_constants


@pytest.mark.parametrize("old, new", [(0.0, -0.0), (-0.0, 0.0), (1.0, 1.0 + 2 ** -52), (np.nan, np.nan * -1),
                                      (2.0, 3), (np.array([1.0, 2.0]), np.array([1.0, 2.5])),
                                      (2 ** 60, 2 ** 60 + 1)])
def test_replay_notices_constants_that_differ_in_bits(old, new):
    def make(c):
        return lambda x: x * c
    x = np.asarray(1.25) if np.ndim(old) == 0 else np.ones(2)
    rec = record_call(make(old), (x,), {}, (0,)).recording()
    t = record_call(make(new), (x,), {}, (0,), expect=rec)
    same = _bits(np.asarray(old, dtype=float)) == _bits(np.asarray(new, dtype=float))
    assert t.same_constants == same


def test_replay_notices_constant_dtype_shape_and_kind_changes():
    x = np.ones(3)
    # (old constant, new constant, a different step (graph built), bit-equal once converted)
    for old, new, differs, same in [(np.ones(3), np.ones((1, 3)), True, False),
                                    (np.ones(3), np.ones(3, dtype=np.float32), False, True),
                                    (np.ones(3), np.full(3, 1.1, dtype=np.float32), False, False),
                                    (np.ones(3) > 0, np.ones(3), True, False), (2.0, x, True, False),
                                    (np.arange(3), np.arange(3.0), False, True)]:
        def f(x, c=None):
            return x * c
        rec = record_call(f, (x, old), {}, (0,)).recording()
        t = record_call(f, (x, new), {}, (0,), expect=rec)
        assert (t.graph is not None) == differs and t.same_constants == same


def test_scalar_arithmetic_matches_numpy_bit_for_bit():
    vals = [0.0, -0.0, 1.0, -2.5, 1e308, -1e308, 5e-324, np.inf, -np.inf, np.nan, 0.1, 3.0]
    ops = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
           lambda a, b: -a, lambda a, b: np.square(a)]
    for op in ops:
        for a in vals:
            for b in vals:
                with np.errstate(all="ignore"):
                    want = np.asarray(op(np.asarray(a), np.asarray(b)))
                first = record_call(op, (np.asarray(a), np.asarray(b)), {}, (0, 1))
                again = record_call(op, (np.asarray(a), np.asarray(b)), {}, (0, 1), expect=first.recording())
                for t in (first, again):
                    got = t.arrays()[t.outputs[0]]
                    assert type(got) is np.ndarray and got.dtype == np.float64
                    if np.isnan(want):
                        assert np.isnan(got)
                    else:
                        assert _bits(got) == _bits(want), (a, b)


def test_replayed_values_are_the_traced_ones():
    def f(x, y):
        a, b = x[0], x[1:]
        return np.stack([a * y[1], np.sin(a) - 2.0, (b @ y[:2]) / 3]), np.cos(x).sum() ** 2
    x, y = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.25, -4.0])
    first = record_call(f, (x, y), {}, (0, 1))
    again = record_call(f, (x, y), {}, (0, 1), expect=first.recording())
    assert again.graph is None and again.same_constants
    assert first.values.keys() == again.values.keys()
    for k in first.values:
        assert _bits(first.values[k]) == _bits(again.arrays()[k])
    other = record_call(f, (x + 1, y), {}, (0, 1), expect=first.recording())
    fresh = record_call(f, (x + 1, y), {}, (0, 1))
    for k in fresh.values:
        assert _bits(fresh.values[k]) == _bits(other.arrays()[k])


def test_a_diverging_replay_builds_the_same_graph_as_a_fresh_trace():
    def f(x, c):
        y = x[0] * 2.0 + x[1]
        return y * c if c > 0 else y - c
    x = np.array([1.0, 2.0])
    rec = record_call(f, (x, 1.0), {}, (0,)).recording()
    t = record_call(f, (x, -1.0), {}, (0,), expect=rec)
    assert t.graph.to_dict() == record_call(f, (x, -1.0), {}, (0,)).graph.to_dict()


def test_replay_refuses_a_tracer_from_another_trace():
    held = []

    def inner(y):
        held.append(y)
        return y * 2.0

    record_call(inner, (np.asarray(1.0),), {}, (0,))
    f = lambda x: x * 2.0 + held[-1]  # noqa: E731
    rec = record_call(lambda x: x * 2.0 + 1.0, (np.asarray(1.0),), {}, (0,)).recording()
    with pytest.raises(UnsupportedOperationError, match="another trace"):
        record_call(f, (np.asarray(1.0),), {}, (0,), expect=rec)


def test_argnums_checks_are_unchanged():
    assert check_argnums((0, 2), 3) == (0, 2)
    assert check_argnums((-1,), 3) == (2,)
    with pytest.raises(TypeError):
        check_argnums((True,), 3)
    with pytest.raises(ValueError, match="twice"):
        check_argnums((1, 1), 3)
    with pytest.raises(ValueError, match="out of range"):
        check_argnums((3,), 3)


def test_methods_still_refuse_arguments_they_do_not_take():
    with pytest.raises(UnsupportedOperationError, match=r"ndarray.squeeze at .*jacc's tracer takes"):
        record_call(lambda x: x.squeeze(0, 1), (np.ones((1, 2)),), {}, (0,))
    with pytest.raises(UnsupportedOperationError, match="ndarray.sum at"):
        record_call(lambda x: x.sum(0, None, None, False, 0, True, 7), (np.ones(2),), {}, (0,))
    t = record_call(lambda x: x.squeeze(0), (np.ones((1, 2)),), {}, (0,))
    assert t.graph.shape(t.outputs[0]) == (2,)


def test_replayed_float_ops_match_numpy_bit_for_bit():
    """A replay keeps 0-d values as Python floats and applies each op's ufunc to them
    (jacc.trace._Num): every ufunc op gives the bits a fresh trace gives on 0-d arrays."""
    from jacc.trace import _FLOAT_UFUNCS

    unary = {op: fn for op, fn in _FLOAT_UFUNCS.items() if fn.nin == 1}
    binary = {op: fn for op, fn in _FLOAT_UFUNCS.items() if fn.nin == 2}
    assert {"sin", "exp", "log", "tanh", "sqrt"} <= set(unary) and {"pow", "maximum", "arctan2"} <= set(binary)
    vals = [0.0, -0.0, 0.5, -1.5, 3.0, 1e300, -1e-310, np.inf, -np.inf, np.nan]
    for op, fn in unary.items():
        f = lambda x, fn=fn: fn(x[0] * 1.0)  # noqa: E731  x[0] * 1.0 is replayed as a float
        for v in vals:
            x = np.array([v])
            first = record_call(f, (x,), {}, (0,))
            again = record_call(f, (x,), {}, (0,), expect=first.recording())
            assert again.graph is None
            out = first.outputs[0]
            with np.errstate(all="ignore"):
                want = np.asarray(fn(np.asarray(v * 1.0)))
            held = again.values[out]
            assert type(held) is float or np.isnan(want), (op, v)  # the float route ran (NaN: NumPy's)
            assert _bits(again.arrays()[out]) == _bits(want) or (np.isnan(want) and np.isnan(again.arrays()[out])), (op, v)
    for op, fn in binary.items():
        f = lambda x, fn=fn: fn(x[0] * 1.0, x[1] * 1.0)  # noqa: E731
        for a in vals[:8]:
            for b in (0.0, -2.0, 0.5, 3.0, np.inf):
                x = np.array([a, b])
                first = record_call(f, (x,), {}, (0,))
                again = record_call(f, (x,), {}, (0,), expect=first.recording())
                with np.errstate(all="ignore"):
                    want = np.asarray(fn(np.asarray(a), np.asarray(b)))
                got = again.arrays()[first.outputs[0]]
                assert _bits(got) == _bits(want) or (np.isnan(want) and np.isnan(got)), (op, a, b)
    # the float route did run: a replayed scalar is held as a float
    t = record_call(lambda x: np.sin(x[0]) * 2.0, (np.array([0.5]),), {}, (0,))
    again = record_call(lambda x: np.sin(x[0]) * 2.0, (np.array([0.5]),), {}, (0,), expect=t.recording())
    assert type(again.values[again.outputs[0]]) is float


def test_replayed_zero_d_inputs_are_floats_and_diverge_like_fresh_traces():
    def f(a, b):
        y = np.log(a) + a * b - np.sin(b)
        return y * 2.0 if a > 1.0 else y - b  # a value-dependent branch on a replayed input
    first = record_call(f, (np.asarray(2.0), np.asarray(5.0)), {}, (0, 1))
    again = record_call(f, (np.asarray(3.0), np.asarray(4.0)), {}, (0, 1), expect=first.recording())
    assert again.graph is None and type(again.values["a"]) is float
    assert again.value_dependent  # the comparison was seen on the float input too
    fresh = record_call(f, (np.asarray(3.0), np.asarray(4.0)), {}, (0, 1))
    for k in fresh.values:
        assert _bits(fresh.values[k]) == _bits(again.arrays()[k])
    other = record_call(f, (np.asarray(0.5), np.asarray(4.0)), {}, (0, 1), expect=first.recording())
    assert other.graph.to_dict() == record_call(f, (np.asarray(0.5), np.asarray(4.0)), {}, (0, 1)).graph.to_dict()


def test_replayed_arithmetic_with_arrays_matches_a_fresh_trace_bit_for_bit():
    rng = np.random.default_rng(3)
    C, S, K = rng.standard_normal((3, 4, 4))
    Z = np.array([[0.0, 1.0], [-0.0, np.nan]])

    def f(x):
        A = np.cos(x[0]) * C + np.sin(x[1]) * S - K  # floats with arrays, arrays with arrays
        B = (x[2] / Z) * x[:2] + 1.0 / x[3]          # ÷ 0, ÷ −0 and NaN entries
        return A @ A, B
    x0 = np.array([0.3, -1.2, 2.0, 0.5])
    first = record_call(f, (x0,), {}, (0,))
    for x in (x0, np.array([1.1, 0.4, -3.0, 0.0]), np.array([np.nan, 0.0, 0.0, -0.0])):
        again = record_call(f, (x,), {}, (0,), expect=first.recording())
        fresh = record_call(f, (x,), {}, (0,))
        assert again.graph is None
        for k in fresh.values:
            assert _bits(fresh.values[k]) == _bits(again.arrays()[k]), k
