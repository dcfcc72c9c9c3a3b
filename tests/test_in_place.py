"""In-place operators and item assignment on traced arrays follow NumPy: the array object takes
the new value, so another name for it sees the change, and so do its views in use; copies do
not; a change of a view of another traced array is refused (NumPy would change that array too),
except as half of ``a[i] op= y``. Each case is checked against NumPy's own run."""

import sys

import numpy as np
import pytest
from conftest import fd_jacobian

import jacc
from jacc.trace import UnsupportedOperationError, trace

X = np.array([0.7, -1.3, 2.1, 0.4])


def _alias(x):
    z = x * 2.0
    w = z
    z += 1.0
    return w * x


def _in_list(x):
    z = x * 2.0
    parts = [z, x]
    z *= x
    return parts[0] + parts[1]


def _accumulate(x):
    acc = np.zeros_like(x) * x
    for k in range(1, 4):
        acc += x ** k / k
    return acc


def _copies(x):
    z = x * 1.5
    a, b, c, d, e = z.copy(), np.copy(z), np.array(z), z.astype(float), +z
    a += 1.0
    b -= x
    c *= x
    d /= 2.0
    e **= 2
    return z + a + b + c + d + e


def _copy_by_a_function(x):
    z = x * 2.0
    y = z.flatten()  # a new array in NumPy, though jacc records a reshape
    z += 1.0
    return y + z


def _copy_of_a_slice(x):
    y = np.copy(x[1:])
    y *= 3.0
    return y


def _new_arrays_from_functions(x):
    k = np.kron(x[:2], x[2:])
    k += 1.0
    t = np.tile(x, 2)
    t *= 2.0
    f = x.flatten()
    f -= 0.5
    return np.concatenate([k, t, f])


def _scalars(x):
    s = x[0]
    s += x[1]
    s *= x[2]
    return np.stack([s, x[3]])


def _input_itself(x):
    x += 1.0
    return x * x


@pytest.mark.parametrize("f", [_alias, _in_list, _accumulate, _copies, _copy_by_a_function, _copy_of_a_slice,
                               _new_arrays_from_functions, _scalars, _input_itself])
def test_in_place_operators_follow_numpy(f):
    want = f(X.copy())
    g = trace(f, X)
    np.testing.assert_allclose(g.evaluate({"x": X})[g.outputs[0]], want, rtol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(lambda x: f(x.copy()), [X], 0), atol=1e-8)
    jo = jacc.jacobian(f, retrace=False)
    jo(X)
    np.testing.assert_allclose(jo(X + 0.25), fd_jacobian(lambda x: f(x.copy()), [X + 0.25], 0), atol=1e-8)


@pytest.mark.parametrize("view, op", [(lambda z: z[1:], "getitem"), (lambda z: z.reshape(2, 2), "reshape"),
                                      (lambda z: z.reshape(2, 2).T, "transpose"), (lambda z: np.ravel(z), "reshape"),
                                      (lambda z: z[::-1], "getitem"), (lambda z: z[None], "getitem")])
def test_in_place_on_a_view_is_refused(view, op):
    def f(x):
        z = x * 2.0
        v = view(z)
        v += 1.0  # NumPy changes z too
        return z

    with pytest.raises(UnsupportedOperationError) as e:
        trace(f, X)
    assert f"a view ({op})" in str(e.value) and "y = y + ..." in str(e.value)


def test_in_place_keeps_the_shape_as_numpy_does():
    with pytest.raises(ValueError, match="non-broadcastable output operand with shape \\(4,\\)"):
        trace(lambda x: x.__iadd__(np.ones((2, 4))), X)


def test_a_function_handing_back_a_view_does_not_make_it_own_its_values():
    """np.concatenate of one array may return its argument as it is: the view stays a view."""
    def f(x):
        z = x * 2.0
        v = z[1:]
        np.concatenate([v])
        v += 1.0
        return z

    with pytest.raises(UnsupportedOperationError, match="a view"):
        trace(f, X)


def _matches_numpy(f):
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(lambda x: f(x.copy()), [X], 0), atol=1e-8)


def test_views_in_use_show_an_in_place_change_of_their_array_as_numpys_do(monkeypatch):
    """Each view made from the array (or from a view of it) is made again from the changed array;
    one made too long before to be found is refused (it was refused always, and with it NumPy
    code such as A[0] = A[1] and y[1:] = y[:-1])."""
    def kept(x):
        z = x * 2.0
        first = z[:2]  # NumPy: first changes with z
        z += 1.0
        return first + 0.0

    def of_a_view(x):
        z = x * 2.0
        v = z[1:]
        u = v.reshape(3, 1)[1:]  # a view of a view
        z[2] = 7.0 * x[0]
        return np.concatenate([u.ravel(), v])

    def row_from_row(x):
        a = np.outer(x, x)
        a[0] = a[1]
        return a

    def shifted(x):
        y = x * 2.0
        y[1:] = y[:-1]  # NumPy copies the overlapping right-hand side first
        return y

    for f in (kept, of_a_view, row_from_row, shifted):
        _matches_numpy(f)
    def older(x):
        z = x * 2.0
        first = z[:2]
        w = z * 3.0  # (first is now two steps back)
        z += w
        return first + 0.0

    _matches_numpy(older)
    monkeypatch.setattr(sys.modules["jacc.trace"], "VIEW_STEPS_BACK", 1)
    with pytest.raises(UnsupportedOperationError, match="has views still in use .* made long before"):
        trace(older, X)

    def gone(x):
        z = x * 2.0
        s = z[:2].sum()  # the view is a temporary, gone before the update
        z += s
        return z

    np.testing.assert_allclose(jacc.jacobian(gone)(X), fd_jacobian(lambda x: gone(x.copy()), [X], 0), atol=1e-8)

    def of_a_copy(x):
        z = x * 2.0
        c = z.copy()
        v = c[1:]  # a view of the copy, not of z
        z += 1.0
        return np.concatenate([z, v])

    np.testing.assert_allclose(jacc.jacobian(of_a_copy)(X), fd_jacobian(lambda x: of_a_copy(x.copy()), [X], 0),
                               atol=1e-8)


def test_view_and_flat_read_as_numpy():
    M = X.reshape(2, 2)

    def through_view(x):
        z = x * 2.0
        v = z.view()  # NumPy: the same data, so z changes with v
        v += 1.0
        return z

    g = trace(through_view, M)
    np.testing.assert_array_equal(g.evaluate({"x": M})[g.outputs[0]], through_view(M.copy()))
    for f in (lambda x: x.flat[1] * x, lambda x: np.stack(list(x.flat)) ** 2, lambda x: x.flat[::2] * len(x.flat)):
        np.testing.assert_allclose(jacc.jacobian(f)(M), fd_jacobian(f, [M], 0), atol=1e-8)
    with pytest.raises(UnsupportedOperationError, match="view"):
        trace(lambda x: x.view(np.int64), M)


def _flat_written(x):
    y = x * 2.0
    y.flat[[3, 0]] = x[0, 1] ** 2
    y.flat[1:3] = [1.5, x[1, 0]]
    y.flat[np.array([False, True, False, True])] = x[1, 1] * 3.0
    z = y.ravel() * 1.0
    z.flat[z > 2.0] = 0.5  # a traced comparison of its own shape (NumPy's flat takes a 1-d one)
    return y + z.reshape(2, 2)


def test_flat_writes_change_a_traced_array():
    M = X.reshape(2, 2)
    np.testing.assert_allclose(jacc.jacobian(_flat_written)(M), fd_jacobian(_flat_written, [M], 0), atol=1e-8)


# -- item assignment: x[index] = value -----------------------------------------------------------


def _set_slice(x):
    y = x.copy()
    y[1:3] = np.sin(x[:2])
    return y


def _set_mask(x):
    y = x * 2.0
    y[y < 0] = 0.0  # (the mask is read at the traced point)
    return y * x


def _set_repeated(x):
    y = x.copy()
    y[np.array([0, 2, 0])] = x[1:]  # NumPy: the last write to position 0 wins
    return y


def _set_matrix(x):
    m = np.stack([x, x[::-1]]) * 1.0
    m[:, 1] = x[:2] * 2.0
    m[1] = np.cos(x)
    m[0, ::-1] = x * x
    m[..., 2] += x[:2]
    return m


def _set_constants_and_lists(x):
    y = x + 0.0
    y[[1, 2]] = [5.0, x[0] * x[1]]
    y[-1] = 7
    return y


def _augmented(x):
    y = x * 1.0
    y[1:3] += x[:2] ** 2  # a view, changed in place: a[i] op= y writes the result back
    y[0] *= x[3]
    y[np.array([0, 0, 1])] -= x[1:]  # a copy (fancy index), then written back (last wins)
    return y


def _set_through_an_alias(x):
    y = x.copy()
    z = y
    y[0] = x[1] * 3.0
    return z


def _set_0d(x):
    s = np.array(np.sum(x * x))
    s[()] = s * 2.0 + x[0]
    s[...] += x[1]
    return s


def _fill_zeros_like(x):
    out = np.zeros_like(x)  # a traced array of zeros: it can take traced values
    for i in range(1, len(x)):
        out[i] = out[i - 1] * 0.5 + x[i] * x[i - 1]
    full = np.full_like(x, x[0])  # a traced fill value
    full[::2] += np.ones_like(x)[::2]
    return out + full


@pytest.mark.parametrize("f", [_set_slice, _set_mask, _set_repeated, _set_matrix, _set_constants_and_lists,
                               _augmented, _set_through_an_alias, _set_0d, _input_itself, _fill_zeros_like])
def test_item_assignment_follows_numpy(f):
    _follows_numpy(f, atol=1e-8)


def _follows_numpy(f, atol):
    """The trace's value is NumPy's, and the Jacobian is central differences' by default, traced
    once and on the executor."""
    want = f(X.copy())
    g = trace(f, X)
    np.testing.assert_array_equal(g.evaluate({"x": X})[g.outputs[0]], want)
    for options in ({}, {"retrace": False}, {"compile": False}):
        jf = jacc.jacobian(f, **options)
        for x in (X, X * 1.1 - 0.05):  # the second call replays (or runs the traced-once program)
            np.testing.assert_allclose(jf(x.copy()), fd_jacobian(lambda x: f(x.copy()), [x], 0), atol=atol)


def test_item_assignment_where_numpy_would_change_another_array_is_refused():
    def into_a_viewed_array(x):
        y = x.copy()
        v = y[:2]  # NumPy: v changes with y (followed)
        y[0] = 1.0
        return v

    def into_a_view(x):
        y = x.copy()
        v = y[:2]
        v[0] = 1.0  # NumPy: y changes too
        return y

    _matches_numpy(into_a_viewed_array)
    with pytest.raises(UnsupportedOperationError, match=r"a view \(getitem\)"):
        trace(into_a_view, X)


def test_item_assignment_errors_are_numpys():
    with pytest.raises(ValueError, match=r"could not broadcast input array from shape \(3,\) into shape \(2,\)"):
        trace(lambda x: x.__setitem__(slice(0, 2), x[:3] * 2.0), X)
    with pytest.raises(IndexError):
        trace(lambda x: x.__setitem__(7, 1.0), X)


_PLAIN = np.zeros(4)  # an array made outside f: NumPy's own, which cannot hold traced values


def test_assigning_a_traced_value_into_a_plain_array_says_what_to_do():
    def f(x):
        _PLAIN[1:3] = x[:2] * 2.0
        return _PLAIN

    def element(x):
        _PLAIN[1] = x[0] * 2.0  # (NumPy reports this one as "setting an array element with a sequence")
        return _PLAIN

    with pytest.raises(UnsupportedOperationError, match=r"assigned into a plain NumPy array .*test_in_place.py.*"
                                                        r"np.zeros.*y = x.copy\(\)"):
        trace(f, X)
    with pytest.raises(UnsupportedOperationError, match=r"traced value as a float at .*test_in_place.py.*"
                                                        r"a\[i\] = x.*np.zeros"):
        trace(element, X)
    assert not _PLAIN.any()


def test_an_in_place_change_of_a_view_stored_elsewhere_is_refused():
    """views[0] += y stores the view's new value in the list; NumPy changes the viewed array too."""
    def in_a_list(x):
        z = x * 2.0
        views = [z[:2]]
        views[0] += 1.0
        return z

    def in_a_dict(x):
        z = x * 2.0
        d = {"head": z[:2]}
        d["head"] *= 3.0
        return d["head"] + z[:2]

    for f in (in_a_list, in_a_dict):
        with pytest.raises(UnsupportedOperationError, match="stored elsewhere than into that array"):
            trace(f, X)

    def nested(x):  # the view's own view: refused as a change of a view
        z = x * 2.0
        y = z[1:]
        y[0:2] += 1.0
        return z

    with pytest.raises(UnsupportedOperationError, match=r"changes a view \(getitem\)"):
        trace(nested, X)


# -- NumPy's in-place writers (jacc.numpy_api.writes) --------------------------------------------


def _writers(x):
    m = np.outer(x, x[:3])  # (4, 3)
    alias = m
    np.fill_diagonal(m, x[1:])  # the diagonal's three values
    np.put(m, [0, 11, 0], x[:3] * 2.0)  # a repeated index: the last value wins
    np.place(m, m > 0.5, x[:2])  # the values reused cyclically over the masked positions
    np.putmask(m, np.arange(12).reshape(4, 3) % 5 == 0, -x)  # repeated cyclically over m's positions
    np.copyto(m, np.sin(x[:3]), where=np.array([True, False, True]))  # broadcast over rows
    np.put_along_axis(m, np.array([[2], [0], [1], [2]]), x[:, None] ** 2, axis=1)
    return alias  # every name sees the writes, as in NumPy


def _accumulators(x):
    y = np.zeros_like(x)
    np.add.at(y, [0, 2, 0, 0], x)  # repeated positions accumulate
    m = np.outer(x, x)
    np.add.at(m, (np.array([1, 1]), np.array([0, 0])), x[:2] * 3.0)
    np.subtract.at(m, np.array([3, 3]), x)  # whole rows
    np.add.at(y, 1, 2.0)  # a constant
    return m + y[:, None]


def _methods(x):
    m = np.outer(x, x)
    alias = m
    m.sort(axis=0)  # read at the traced point: the order is a constant
    v = x * 1.0
    v.partition(1)
    w = x.copy()
    w.fill(x[2])
    w.put([1, 3], x[:2])
    return alias + v[:, None] + w[None, :]


@pytest.mark.parametrize("f", [_writers, _accumulators, _methods])
def test_numpy_in_place_writers_follow_numpy(f):
    _follows_numpy(f, atol=1e-7)


def test_numpy_in_place_writers_refuse_what_numpy_would_change_elsewhere():
    def into_plain(x):
        np.add.at(_PLAIN, [0, 1, 0], x[:3])
        return _PLAIN

    def into_a_view(x):
        y = x.copy()
        np.fill_diagonal(y.reshape(2, 2), x[:2])  # NumPy: y changes too
        return y

    def sort_viewed(x):
        y = x.copy()
        head = y[:2]
        y.sort()  # NumPy: head changes too
        return head

    with pytest.raises(UnsupportedOperationError, match=r"numpy.add.at at .*test_in_place.py.* plain NumPy array.*"
                                                        r"np.bincount"):
        trace(into_plain, X)
    with pytest.raises(UnsupportedOperationError, match=r"numpy.fill_diagonal at .* a view"):
        trace(into_a_view, X)
    _matches_numpy(sort_viewed)  # (head shows the sorted entries, as NumPy's view does)
    with pytest.raises(UnsupportedOperationError, match=r"numpy.divide.at .*np.add.at, np.subtract.at, np.multiply.at"):
        trace(lambda x: np.divide.at(x.copy(), [0], 2.0), X)


def test_a_transpose_that_moves_nothing_is_the_array_itself():
    # NumPy's x.T of a vector is a view with every element in place: an in-place change through
    # it changes x, so it is x (and moveaxis(c, 0, 0), as numpy.polynomial's polyder does)
    def f(x):
        y = x.T
        y *= 2.0
        z = np.moveaxis(x, 0, 0)
        z += 1.0
        return x + y + z

    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(f(x.copy()), 3.0 * (2.0 * x + 1.0))  # NumPy's own semantics
    np.testing.assert_allclose(jacc.jacobian(f)(x), 6.0 * np.eye(3))
    g = trace(lambda a: a.transpose(0, 1) + a.T, np.ones((2, 2)))
    assert [d["op"] for _, d in g.nx.nodes(data=True) if "op" in d].count("transpose") == 1


def test_segment_products_and_extremes_by_ufunc_at():
    """np.multiply.at / np.maximum.at / np.minimum.at into a fresh array (a segment reduction), and
    into a copy: repeated indices combine in their order, as NumPy's (values bit for bit)."""
    idx = np.array([0, 2, 0, 1, 2, 0])
    x = np.array([0.3, -1.0, 2.0, 0.7, 0.1, -0.4])

    def segments(x):
        top, low, prod = np.full(3, -np.inf), np.full(3, np.inf), np.ones(3)
        np.maximum.at(top, idx, x)
        np.minimum.at(low, idx, x ** 2)
        np.multiply.at(prod, idx, x)
        return np.concatenate([top, low, prod])

    def into_copy(x):
        y = np.sin(x)
        np.multiply.at(y, [1, 1, 4], x[:3])
        return y

    for f in (segments, into_copy):
        g = trace(f, x)
        np.testing.assert_array_equal(g.evaluate({"x": x})[g.outputs[0]], f(x))
        for p in (x, -x, x[::-1].copy()):
            np.testing.assert_allclose(jacc.jacobian(f)(p), fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-8)


def test_an_in_place_operator_at_an_argsort_index():
    # y[i[:3]] += 1 with i = np.argsort(x): jacc views y[i] as y sorted, so the write-back was taken
    # for a store into another array and refused
    def f(x):
        y = x * 2
        i = np.argsort(x)
        y[i[:3]] += 1.0
        y[i[1:]] *= x[:4]
        return y

    x = np.array([0.5, -1.2, 2.0, 0.3, 1.1])
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({g.inputs[0]: x})[g.outputs[0]], f(x), rtol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)
    with pytest.raises(UnsupportedOperationError, match="stored elsewhere"):  # (a list still refuses)
        def g2(x):
            y = x * 2
            views = [y[1:]]
            views[0] += 1.0
            return y * 1.0
        jacc.jacobian(g2)(x)


def _returns_self_then_changed(fn):
    def f(x):
        y = x * 2.0
        c = fn(y)
        c += 10.0 * x[0]
        return y
    return f


@pytest.mark.parametrize("fn", [lambda y: y.conj(), lambda y: y.conjugate(),
                                lambda y: np.nan_to_num(y, copy=False), lambda y: np.pad(y, 0),
                                lambda y: np.pad(y, 0, mode="edge"), np.conj],
                         ids=["conj", "conjugate", "nan_to_num-nocopy", "pad-0", "pad-0-edge", "np.conj"])
def test_functions_returning_their_argument_or_a_copy_alias_as_numpys_do(fn):
    """x.conj() of a real array and nan_to_num(copy=False) hand back the array itself (a change of
    the result changes y: ∂y/∂x gains 10 in column 0); pad and the ufunc conj always copy (jacc
    handed back a copy, and the array itself, and lost or invented that change)."""
    f = _returns_self_then_changed(fn)
    np.testing.assert_allclose(jacc.jacobian(f)(X), fd_jacobian(f, [X], 0), atol=1e-6)


def test_a_change_through_trim_zeros_a_slice_of_y_is_refused_as_any_view():
    with pytest.raises(UnsupportedOperationError, match="a view"):
        trace(_returns_self_then_changed(np.trim_zeros), X)


def test_nditer_over_a_traced_array_is_refused_by_name_and_plain_arrays_still_iterate():
    def over_traced(x):
        return np.array([v * v for v in np.nditer(x)])

    def over_plain(x):
        return x * sum(float(v) for v in np.nditer(np.array([1.0, 2.0, 3.0, 4.0])))

    with pytest.raises(UnsupportedOperationError, match=r"numpy.nditer over a traced array .* x.ravel\(\)"):
        trace(over_traced, X)  # (NumPy's own error spoke of WRITEBACKIFCOPY)
    np.testing.assert_allclose(jacc.jacobian(over_plain)(X), 10.0 * np.eye(4))


_M = np.arange(1.0, 7.0).reshape(2, 3) / 7


@pytest.mark.parametrize("made", [lambda y: y.T.ravel(), lambda y: y.T.reshape(-1), lambda y: y[:, ::2].reshape(-1),
                                  lambda y: np.ravel(y, order="F"), lambda y: y.diagonal().ravel(),
                                  lambda y: np.broadcast_to(y, (2, 2, 3)).ravel(), lambda y: y[::-1].ravel(),
                                  lambda y: y.ravel(), lambda y: y.T[None].squeeze(), lambda y: np.diag(y)],
                         ids=["T.ravel", "T.reshape", "strided reshape", "ravel F", "diagonal.ravel",
                              "broadcast.ravel", "flip.ravel", "ravel", "squeeze of T", "np.diag"])
def test_what_numpy_copies_keeps_its_values_and_what_it_views_follows_the_change(made):
    """A reshape of a strided array (and ravel of one) is NumPy's copy: following y's change as a
    view's gave the changed entries' derivative (found by a helper's fuzzing); np.diag of a matrix
    is NumPy's view, and gave the stale diagonal."""
    def f(x):
        y = x * 1.0
        r = made(y)
        y[0, 0] = 5.0 * x[1, 2]
        y[1, 2] = 7.0
        return r + 0.0

    np.testing.assert_allclose(jacc.jacobian(f)(_M), fd_jacobian(lambda x: f(x.copy()), [_M], 0), atol=1e-8)


def test_a_ufunc_writing_into_a_buffer_is_followed_by_an_item_assignment_on_the_next_line():
    """np.sin(x, out=b) then b[0] = b[1]: the next store after the call was the subscript on the next
    line, read as the write-back of b[i] += x, so b was left as it was (a zero Jacobian)."""
    def f(x):
        b = np.ones(2)
        np.sin(x, out=b)
        b[0] = b[1]
        return b

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), [[0.0, np.cos(2.0)], [0.0, np.cos(2.0)]])


def test_a_masked_write_of_a_view_of_the_array_itself_is_refused():
    """NumPy copies y[mask] = y[4:0:-1] entry by entry from memory it changes ([1, 5, 4, 4, 5]),
    where the trace took the values as they were ([1, 5, 4, 3, 2]): its Jacobian was not f's."""
    def masked(x):
        y = x * 1.0
        y[np.array([False, True, True, True, True])] = y[4:0:-1]
        return y

    def placed(x):
        y = x * 1.0
        np.place(y, np.array([False, True, True, True, True]), y[4:0:-1])
        return y

    for f in (masked, placed):
        with pytest.raises(UnsupportedOperationError, match="a view of the array written into"):
            trace(f, np.arange(1.0, 6.0))
    _matches_numpy(lambda x: (lambda y: (y.__setitem__(np.array([True, False, True, False]), y[1::2].copy()), y)[1])(
        x * 1.0))


def test_writers_through_a_buffers_view_and_out_arguments_numpy_broadcasts_or_fills_with_constants():
    """Each raised an internal error: np.fill_diagonal through b[::-1] (a __class__ assignment),
    np.sin(x[:1], out=b) with b larger (NumPy broadcasts the inputs to out), np.sin(constants,
    out=y) into a traced y (a plain array has no vertex)."""
    def through_view(x):
        b = np.eye(2)
        np.fill_diagonal(b[::-1], x[0])
        return b

    def broadcast_out(x):
        b = np.zeros(3)
        np.sin(x[:1], out=b)
        return b

    def constant_out(x):
        y = x * 2.0
        np.sin(np.zeros(4), out=y)
        return y + x

    for f in (through_view, broadcast_out, constant_out):
        _matches_numpy(f)


def _zero_d_view_sees_a_change(x):
    y = x.copy()
    w = y[1, ...]  # NumPy: a 0-d view (not the element, as y[1] is)
    y += 1.0
    return w * 1.0


def _zero_d_view_of_a_reshape(x):
    y = x.copy()
    w = y.reshape(2, 2)[1, 0, ...]
    y[2] = x[0] * 3.0
    return w * 1.0


def _ellipsis_of_a_0d_array(x):
    y = x[0] * 1.0
    w = y[...]
    y *= x[1]
    return w + y


@pytest.mark.parametrize("f", [_zero_d_view_sees_a_change, _zero_d_view_of_a_reshape, _ellipsis_of_a_0d_array])
def test_an_index_with_an_ellipsis_that_leaves_no_axis_is_a_view_as_in_numpy(f):
    """y[1, ...] was recorded as the element y[1] (a copy): a later change of y went unseen."""
    x = np.array([0.3, 0.7, 1.1, 0.45])
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_a_write_through_a_0d_view_is_refused_as_through_any_view():
    def f(x):
        y = x.copy()
        w = y[1, ...]
        w += 5.0 * x[0]  # NumPy changes y[1]; the write was lost
        return y

    with pytest.raises(UnsupportedOperationError, match="changes a view"):
        jacc.jacobian(f)(np.array([0.3, 0.7]))


def _view_of_a_0d_index_array(x):
    y = x * 1.0
    v = y[np.array(1)]  # advanced indexing: NumPy's is a copy
    y *= 3.0
    return v * 1.0


def _flat_slice(x):
    y = x * 1.0
    v = y.flat[1:5:2]  # NumPy's x.flat[...] is a copy
    y *= 3.0
    return v * 1.0


@pytest.mark.parametrize("f", [_view_of_a_0d_index_array, _flat_slice])
def test_copies_made_by_indexing_as_numpys_do_not_follow_changes(f):
    """y[np.array(1)] was read as y[1] and y.flat[1:5:2] as a slice: views that followed y *= 3."""
    x = np.arange(6.0).reshape(2, 3) + 0.5
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-15)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_indices_around_an_ellipsis_for_no_axis_are_refused_where_numpy_moves_their_axes_first():
    x = np.arange(24.0).reshape(2, 3, 4)
    with pytest.raises(UnsupportedOperationError, match=r"apart only by an '\.\.\.' that stands for no axis"):
        jacc.jacobian(lambda x: x[:, [0, 1], ..., 1] * 1.0)(x)  # NumPy: [[1, 13], [5, 17]]; it gave the transpose
    f = lambda x: x[[0, 1], ..., [1, 2]] * 1.0  # noqa: E731  (their axes come first either way)
    np.testing.assert_allclose(jacc.jacobian(f)(x[0]), fd_jacobian(f, [x[0]], 0), atol=1e-8)
    with pytest.raises(IndexError, match="too many indices"):  # (it read x[0, ..., 0] of a vector as x[0])
        jacc.jacobian(lambda x: x[0, ..., 0] * 1.0)(np.array([5.0, 6.0, 7.0]))


def _write_into_a_fortran_copy(x):
    y = x.reshape(2, 3) * 1.0
    z = np.asfortranarray(y)  # NumPy: a copy of the C-contiguous y
    z[0, 0] = 7.0 * x[1]
    return y.ravel() * 1.0


def _contiguous_copy_of_a_transpose(x):
    y = x.reshape(2, 3) * 1.0
    v = np.ascontiguousarray(y.T)  # a copy
    y[0, 0] = 7.0 * x[1]
    return v * 1.0


def _ordered_asarray(x):
    y = x.reshape(2, 3) * 1.0
    v = np.asarray(y, order="F")  # a copy; np.require(y, requirements="F") too
    w = np.require(y.T, requirements="C")
    y *= 2.0
    return v + w.T


def _fortran_ravel_of_a_fortran_array(x):
    y = x.reshape(2, 3) * 1.0
    v = y.T.ravel(order="F")  # NumPy: a view (y.T is F-contiguous)
    y[0, 0] = 7.0 * x[1]
    return v * 1.0


@pytest.mark.parametrize("f", [_write_into_a_fortran_copy, _contiguous_copy_of_a_transpose, _ordered_asarray,
                               _fortran_ravel_of_a_fortran_array])
def test_layout_conversions_copy_where_numpy_does(f):
    """np.asfortranarray, np.ascontiguousarray, order= and require('C'/'F') returned the traced
    array itself where NumPy copies to lay it out as asked; ravel(order='F') of an F-contiguous
    array was taken for a copy."""
    x = np.array([0.3, -0.7, 0.5, 1.1, 0.9, -0.2])
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-15)
    for kw in ({}, {"retrace": False}):
        np.testing.assert_allclose(jacc.jacobian(f, **kw)(x), fd_jacobian(f, [x], 0), atol=1e-8, err_msg=str(kw))


def test_in_place_writes_that_numpy_cannot_broadcast_raise_its_errors():
    def slice_times_a_row(x):
        y = x * 1.0
        y[1:3] *= np.cos(x[:2]).reshape(1, 2)  # the slot is (2,): NumPy cannot broadcast it to (1, 2)
        return y

    def buffer_entries_plus_a_row(x):
        y = np.zeros(4)
        y[[0, 1, 0]] += np.cos(x[:1]).reshape(1, 1)
        return y

    def masked_rows(x):
        y = x * 1.0
        y[np.array([True, True, False, True])] = np.cos(x[:3]).reshape(1, 3)
        return y

    x = np.array([0.3, -0.7, 0.5, 1.1])
    for f, error in ((slice_times_a_row, ValueError), (buffer_entries_plus_a_row, ValueError), (masked_rows, TypeError)):
        with pytest.raises(error):
            f(x)  # NumPy's own
        with pytest.raises(error, match="non-broadcastable output operand|0 or 1-dimensional input"):
            jacc.jacobian(f)(x)


def _scalar_alias_keeps_its_value(x):
    a = x[0] * 2.0  # NumPy's scalar: a *= 3 binds a to a new one; b keeps the old
    b = a
    a *= 3.0
    return b + a


def _previous_step_of_a_loop(x):
    t = x[0] * 1.0
    olds = []
    for _ in range(3):
        t_old = t
        t += 0.5 * t * x[1]
        olds.append(t_old)
    return np.stack(olds) + t


def _copy_of_a_scalar_is_its_own(x):
    a = x[0] * 2.0
    b = a
    c = np.copy(a)  # a 0-d array of a's value; a stays NumPy's scalar, rebound below
    a += x[1]
    d = c
    c += x[1]  # in place: d follows
    return b * 1.0 + d


def _0d_array_alias_follows(x):
    y = np.array(x[0] * 1.0)  # a 0-d array: changed in place, as its other name sees
    c = y
    y += x[1]
    return c * 2.0


def _0d_buffer_alias_follows(x):
    b = np.zeros(())
    b += x[0]
    c = b
    b *= x[1]
    return c * 1.0


@pytest.mark.parametrize("f", [_scalar_alias_keeps_its_value, _previous_step_of_a_loop, _copy_of_a_scalar_is_its_own,
                               _0d_array_alias_follows, _0d_buffer_alias_follows])
def test_in_place_operators_rebind_scalars_and_change_0d_arrays_as_numpy(f):
    """A 0-d traced value changed in place whatever it was: b = a; a *= 3 changed b too where NumPy's
    scalar a is rebound (jacc 12, NumPy 8), and a loop's t_old = t; t += ... followed t. A copy of
    a scalar replayed as a float kept the scalar's vertex, so marking it an array marked both."""
    x = np.array([1.0, 2.0])
    g = trace(f, x)
    np.testing.assert_allclose(g.evaluate({"x": x})[g.outputs[0]], f(x), rtol=1e-15)
    for kw in ({}, {"retrace": False}):
        jf = jacc.jacobian(f, **kw)
        for shift in (0.0, 0.25, 0.5):
            np.testing.assert_allclose(jf(x + shift), fd_jacobian(f, [x + shift], 0), atol=1e-6, err_msg=str(kw))


def test_a_float_argument_is_a_scalar_and_a_0d_array_argument_an_array():
    def f(s):
        y = s
        s += 1.0
        return y * s

    assert jacc.jacobian(f)(2.0) == pytest.approx(2.0 * 2.0 + 1.0)  # y = 2 stays: d(s(s + 1))/ds
    assert jacc.jacobian(f)(np.array(2.0)) == pytest.approx(2.0 * 3.0)  # y is s: d((s + 1)²)/ds


@pytest.mark.parametrize("reshape", [lambda x: np.reshape(x, (3, 1), copy=True),
                                     lambda x: x.reshape((3, 1), copy=True)])
def test_a_reshape_with_copy_true_may_be_written_into(reshape):
    # NumPy's copy=True makes a new array: writing into it leaves x alone (it was refused as a view)
    def f(x):
        y = reshape(x)
        y[0, 0] = 5.0
        y[1, 0] *= 3.0
        return y.ravel() * x + x

    x = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(jacc.jacobian(f)(x), np.diag([6.0, 6 * x[1] + 1, 2 * x[2] + 1]), rtol=1e-14)
    np.testing.assert_allclose(jacc.jacobian(f)(x), fd_jacobian(f, [x], 0), atol=1e-8)


def test_a_ufunc_with_where_and_out_reads_out_where_the_mask_is_false():
    # np.divide(a, b, out=np.zeros_like(a), where=b != 0), the safe division of SciPy's simpson
    # (found by a hunt: simpson differentiated in x was refused): NumPy does not evaluate the
    # division where b = 0, so neither its value nor its derivative (-a/b² = -inf) reaches the
    # result there
    def safe(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b != 0)

    def kept(a, b):
        out = np.ones_like(a) * 7.0  # a traced out keeps its own entries where b <= 1
        np.divide(a, b, out=out, where=b > 1)
        return out * 2

    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 4.0])
    Ja, Jb = jacc.jacobian(safe, (0, 1))(a, b)
    np.testing.assert_array_equal(Ja, np.diag([0.5, 0.0, 0.25]))
    np.testing.assert_array_equal(Jb, np.diag([-0.25, 0.0, -3 / 16]))
    Ja, Jb = jacc.jacobian(kept, (0, 1))(a, b)
    np.testing.assert_array_equal(Ja, np.diag([1.0, 0.0, 0.5]))
    np.testing.assert_array_equal(Jb, np.diag([-0.5, 0.0, -0.375]))
    g = trace(kept, a, b)
    np.testing.assert_array_equal(g.evaluate({"a": a, "b": b})[g.outputs[0]], kept(a, b))
    np.testing.assert_array_equal(kept(a, b), [1.0, 14.0, 1.5])
    import scipy.integrate as si

    x0 = np.linspace(0, 2, 9) + 0.01 * np.arange(9) ** 1.5  # uneven: simpson's ratio of steps
    f = lambda x: si.simpson(np.sin(np.linspace(0, 2, 9)), x=x)  # noqa: E731
    np.testing.assert_allclose(jacc.jacobian(f)(x0), fd_jacobian(f, [x0], 0), rtol=1e-6, atol=1e-9)
