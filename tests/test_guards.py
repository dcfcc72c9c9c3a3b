"""By default ``jacobian`` may skip running ``f`` once two traced calls showed that running it cannot
be observed (jacc.guards); every case here checks the result against the closed form at each call,
and whether ``f`` was skipped (``jf.cache.skipped``) or why not (``jf.cache.why_traced``)."""

import collections
import contextlib
import copy
import enum
import functools
import gc
import math
import sys
import time
import typing
from decimal import Decimal
from io import FileIO
from os import getenv
from random import Random
from typing import Callable

import numpy as np
import pytest
from conftest import fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc
from jacc.guards import guards_for, same, snapshot, watch
from jacc.trace import values_only

SCALE = np.array([1.0, 2.0, 3.0])
LOG: list = []
STATE = {"calls": 0}


def scaled(x):
    return np.sin(x) * SCALE


def helper(x):
    return np.exp(x) * SCALE


def via_helper(x):
    return helper(x) + 1.0


def calls(jf, x, n=4):
    return [jf(x) for _ in range(n)]


def test_a_pure_function_stops_running_after_two_calls_and_sees_a_changed_global():
    global SCALE
    keep = SCALE
    try:
        jf = jacc.jacobian(scaled)
        x = np.array([0.1, 0.2, 0.3])
        for J in calls(jf, x):
            np.testing.assert_allclose(J, np.diag(np.cos(x) * SCALE), rtol=1e-14)
        assert jf.cache.skipped == 2 and jf.cache.why_traced is None
        SCALE = np.array([5.0, 6.0, 7.0])  # rebound
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * SCALE), rtol=1e-14)
        SCALE[1] = -1.0  # changed in place
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * SCALE), rtol=1e-14)
        skipped = jf.cache.skipped
        for J in calls(jf, x):  # confirmed again, then skipped again
            np.testing.assert_allclose(J, np.diag(np.cos(x) * SCALE), rtol=1e-14)
        assert jf.cache.skipped == skipped + 3  # (the call after the change watched f's reads)
    finally:
        SCALE = keep


def test_closure_cells_helpers_and_partials_are_guarded():
    w = np.array([1.0, 2.0])

    def f(x):
        return np.tanh(x) * w

    jf = jacc.jacobian(f)
    x = np.array([0.3, -0.2])
    calls(jf, x)
    assert jf.cache.skipped == 2
    w = np.array([3.0, 4.0])  # the cell rebound  # noqa: F841 (read by f)
    np.testing.assert_allclose(jf(x), np.diag((1 - np.tanh(x) ** 2) * np.array([3.0, 4.0])), rtol=1e-14)

    jh = jacc.jacobian(via_helper)
    x3 = np.array([0.1, 0.2, 0.3])
    calls(jh, x3)
    assert jh.cache.skipped == 2
    global helper
    keep = helper
    try:
        helper = lambda x: np.cos(x) * SCALE  # noqa: E731 - rebinding the global helper is the point
        np.testing.assert_allclose(jh(x3), np.diag(-np.sin(x3) * SCALE), rtol=1e-14)
    finally:
        helper = keep

    c = np.array([2.0, 2.0, 2.0])
    bound = functools.partial(lambda x, c: np.sin(x) * c, c=c)
    jp = jacc.jacobian(bound)
    calls(jp, x3)
    assert jp.cache.skipped == 2
    c[0] = 9.0  # the partial's bound argument changed in place
    np.testing.assert_allclose(jp(x3), np.diag(np.cos(x3) * c), rtol=1e-14)
    bound.keywords["c"] = np.array([1.0, 5.0, 7.0])  # its keywords rebound in place
    np.testing.assert_allclose(jp(x3), np.diag(np.cos(x3) * [1.0, 5.0, 7.0]), rtol=1e-14)

    b = np.array([3.0, 1.0, 2.0])  # bound by position: the tuple cannot change, the array in it can
    by_position = functools.partial(lambda c, x, k=2.0: np.sin(x) * c * k, b, k=2.0)
    jb = jacc.jacobian(by_position)
    calls(jb, x3)
    assert jb.cache.skipped == 2
    b[2] = -1.0
    np.testing.assert_allclose(jb(x3), np.diag(np.cos(x3) * b * 2.0), rtol=1e-14)
    by_position.keywords["k"] = 3.0
    np.testing.assert_allclose(jb(x3), np.diag(np.cos(x3) * b * 3.0), rtol=1e-14)


def test_non_differentiated_arguments_are_compared_by_value():
    jf = jacc.jacobian(lambda x, a: np.sin(x) * a, argnums=0)
    x, a = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    for _ in range(3):
        np.testing.assert_allclose(jf(x, a), np.diag(np.cos(x) * a), rtol=1e-14)
    assert jf.cache.skipped == 1
    a[0] = -4.0
    np.testing.assert_allclose(jf(x, a), np.diag(np.cos(x) * a), rtol=1e-14)


def printing(x):
    print("called")
    return np.sin(x)


def logging_(x):
    LOG.append(1)
    return np.sin(x) * len(LOG)


def counting(x):
    STATE["calls"] += 1
    return np.sin(x)


def noisy(x):
    return np.sin(x) + np.random.default_rng().normal() * 0


class Box:
    k = 2.0


def reads_attribute(x, box):
    return np.sin(x) * box.k


@pytest.mark.parametrize("fn, why", [
    (printing, "print"), (logging_, "changes what it reads"), (counting, "STORE_SUBSCR|changes what it reads"),
    (noisy, "normal|default_rng|urandom")])
def test_functions_with_effects_run_on_every_call(fn, why, capsys):
    jf = jacc.jacobian(fn)
    x = np.array([0.1, 0.2])
    for _ in range(4):
        J = jf(x)
    assert jf.cache.skipped == 0
    import re
    assert re.search(why, jf.cache.why_traced), jf.cache.why_traced
    if fn is printing:
        assert capsys.readouterr().out.count("called") == 4
    if fn is logging_:
        np.testing.assert_allclose(J, np.diag(np.cos(x) * len(LOG)), rtol=1e-14)


def test_a_callback_passed_as_an_argument_is_checked_where_numpy_calls_it(capsys):
    def shout(row):
        print("row")
        return row * 2.0

    jf = jacc.jacobian(lambda x, cb: np.sin(x) * np.apply_along_axis(cb, 0, np.ones(2)), argnums=0)
    x = np.array([0.1, 0.2])
    for _ in range(3):
        np.testing.assert_allclose(jf(x, shout), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    assert jf.cache.skipped == 0 and jf.cache.why_traced == "it calls print"
    assert capsys.readouterr().out.count("row") == 3


class SlottedBox:
    __slots__ = ("k",)

    def __init__(self):
        self.k = 2.0


class LookupBox:
    def __getattr__(self, name):  # (code that runs on a read: whatever it reads is out of sight)
        return 2.0


def test_an_object_argument_is_compared_by_its_attributes_and_class_and_value_dependent_code_is_not_skipped():
    box = Box()
    jf = jacc.jacobian(reads_attribute, argnums=0)
    x = np.array([0.1, 0.2])
    for _ in range(4):
        np.testing.assert_allclose(jf(x, box), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    assert jf.cache.skipped >= 1 and jf.cache.why_traced is None
    box.k = 5.0  # (an attribute of the instance now, shadowing the class's)
    np.testing.assert_allclose(jf(x, box), np.diag(np.cos(x) * 5.0), rtol=1e-14)
    other = Box()
    for _ in range(3):
        np.testing.assert_allclose(jf(x, other), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    Box.k = 3.0  # (the class's constant)
    try:
        np.testing.assert_allclose(jf(x, other), np.diag(np.cos(x) * 3.0), rtol=1e-14)
    finally:
        Box.k = 2.0
    for odd in SlottedBox(), LookupBox():
        jo = jacc.jacobian(reads_attribute, argnums=0)
        for _ in range(3):
            np.testing.assert_allclose(jo(x, odd), np.diag(np.cos(x) * 2.0), rtol=1e-14)
        assert jo.cache.skipped == 0 and type(odd).__name__ in jo.cache.why_traced

    jv = jacc.jacobian(lambda x: np.sin(x) if x[0] > 0 else np.cos(x))
    for _ in range(3):
        jv(x)
    assert jv.cache.skipped == 0 and "depends on values" in jv.cache.why_traced
    np.testing.assert_allclose(jv(-x), np.diag(-np.sin(-x)), rtol=1e-14)


def test_in_place_changes_of_what_f_reads_stop_skipping():
    acc = np.zeros(2)

    def f(x):
        a = acc
        a += 1.0  # (an alias: no store the bytecode shows)
        return np.sin(x) * a[0]

    jf = jacc.jacobian(f)
    x = np.array([0.1, 0.2])
    for n in range(1, 6):
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * n), rtol=1e-14)
    assert jf.cache.skipped == 0


def test_a_closed_over_array_is_kept_once_and_changes_in_place_are_seen():
    """A guard keeps the graph's read-only copy of an array f closed over instead of copies of its
    own: a data matrix of 8 MB held 24 MB more (the graph's copy and two of the guard's), now 8 MB.
    Changing the caller's array in place is still seen at the next call."""
    import tracemalloc

    rng = np.random.default_rng(5)
    A = rng.standard_normal((1000, 1000))
    x = rng.standard_normal(1000)

    def f(x):
        return np.sum(np.tanh(A @ x))

    def grad():
        return A.T @ (1.0 - np.tanh(A @ x) ** 2)

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        jf = jacc.jacobian(f)
        for _ in range(4):
            np.testing.assert_allclose(jf(x), grad(), rtol=1e-12)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert jf.cache.skipped >= 1
    assert held < 1.5 * A.nbytes, f"{held / 1e6:.1f} MB held for an {A.nbytes / 1e6:.0f} MB closed-over array"
    A[123, 456] += 0.5  # in place: the kept copy (the graph's) is not the caller's array
    np.testing.assert_allclose(jf(x), grad(), rtol=1e-12)
    skipped = jf.cache.skipped
    np.testing.assert_allclose(jf(x), grad(), rtol=1e-12)
    A[0] = 0.0
    np.testing.assert_allclose(jf(x), grad(), rtol=1e-12)
    assert jf.cache.skipped >= skipped


def test_retrace_false_keeps_the_graphs_copy_of_an_argument_it_compares():
    """retrace=False compares the arguments not differentiated with what the first call saw; it
    keeps the graph's copy of a data array for that (8 MB held once more, not twice)."""
    import tracemalloc

    rng = np.random.default_rng(6)
    X = rng.standard_normal((1000, 1000))
    w = rng.standard_normal(1000)

    def loss(w, X):
        return np.sum(np.tanh(X @ w))

    def grad(X):
        return X.T @ (1.0 - np.tanh(X @ w) ** 2)

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        jf = jacc.jacobian(loss, retrace=False)
        for _ in range(3):
            np.testing.assert_allclose(jf(w, X), grad(X), rtol=1e-12)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1.5 * X.nbytes, f"{held / 1e6:.1f} MB held for an {X.nbytes / 1e6:.0f} MB argument"
    X[1, 2] = 7.0  # in place: another argument value, traced again
    np.testing.assert_allclose(jf(w, X), grad(X), rtol=1e-12)


def test_a_function_that_fills_an_array_it_makes_is_skipped_and_sees_changes():
    """Writing traced values into np.zeros(...) swaps NumPy's constructors while f is traced; such
    an f was traced at every call (a loop of 100 slice dot products: 3.7 ms per call, of which the
    program takes 0.6). What it reads is guarded as for any other f."""
    w = np.arange(1.0, 6.0)

    def f(x):
        out = np.zeros(5)
        for i in range(5):
            out[i] = w[i] * x[i] ** 2
        return out

    jf = jacc.jacobian(f)
    x = np.linspace(0.1, 0.5, 5)
    for J in calls(jf, x):
        np.testing.assert_allclose(J, np.diag(2 * w * x), rtol=1e-14)
    assert jf.cache.skipped == 2 and jf.cache.why_traced is None
    w[2] = -1.0  # changed in place: seen
    np.testing.assert_allclose(jf(x), np.diag(2 * w * x), rtol=1e-14)
    np.testing.assert_allclose(jf(x * 2), np.diag(4 * w * x), rtol=1e-14)


def test_a_global_changed_at_every_call_is_watched_a_few_times_then_no_more():
    from jacc.api import WATCHES

    k = [1.0]

    def f(x):
        return np.sin(x) * k[0]

    jf = jacc.jacobian(f)
    x = np.array([0.1, 0.2])
    for n in range(2 * WATCHES + 4):
        k[0] = float(n)
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * n), rtol=1e-14)
    assert jf.cache.skipped == 0 and "changed at every call" in jf.cache.why_traced


def test_an_active_profiler_keeps_its_hook_and_f_runs_every_call():
    seen = []

    def prof(frame, event, arg):
        seen.append(event)
    jf = jacc.jacobian(lambda x: np.sin(x))
    sys.setprofile(prof)
    try:
        for _ in range(3):
            jf(np.array([0.1]))
    finally:
        sys.setprofile(None)
    assert seen and jf.cache.skipped == 0 and jf.cache.why_traced == "a profiler is active"


def test_retrace_always_runs_f_on_every_call_and_a_bad_value_is_refused():
    ja = jacc.jacobian(scaled, retrace="always")
    x = np.array([0.1, 0.2, 0.3])
    for _ in range(4):
        np.testing.assert_allclose(ja(x), np.diag(np.cos(x) * SCALE), rtol=1e-14)
    assert ja.cache.skipped == 0 and ja.cache.hits == 3
    with pytest.raises(ValueError, match="retrace must be True, False or 'always'"):
        jacc.jacobian(scaled, retrace="sometimes")


def test_retrace_false_and_the_interpreter_are_unchanged():
    jo = jacc.jacobian(scaled, retrace=False)
    x = np.array([0.1, 0.2, 0.3])
    for _ in range(3):
        jo(x)
    assert jo.cache.skipped == 0  # (its own semantics: f traced once)
    ji = jacc.jacobian(scaled, compile=False)
    for _ in range(3):
        np.testing.assert_allclose(ji(x), np.diag(np.cos(x) * SCALE), rtol=1e-14)
    assert ji.cache.skipped == 0 and ji.ran == "interpret"


def test_an_array_program_is_lowered_with_its_primal_to_skip_f():
    A = np.random.default_rng(0).normal(size=(30, 20))

    def loss(w):
        r = A @ w - 1.0
        return r @ r

    jf = jacc.jacobian(loss)
    w = np.linspace(-1, 1, 20)
    for _ in range(4):
        np.testing.assert_allclose(jf(w), 2 * A.T @ (A @ w - 1.0), rtol=1e-12)
    assert jf.cache.skipped == 2
    A[3, 4] += 1.0  # the closed-over matrix changed in place
    np.testing.assert_allclose(jf(w), 2 * A.T @ (A @ w - 1.0), rtol=1e-12)


_XD = np.linspace(0.0, 4.0, 12)


def _gp_nll(logp):
    from scipy.linalg import cho_factor, cho_solve
    ell, noise = np.exp(logp)
    K = np.exp(-0.5 * (_XD[:, None] - _XD[None, :]) ** 2 / ell ** 2) + noise * np.eye(_XD.size)
    c = cho_factor(K, lower=True)
    return 0.5 * np.sin(_XD) @ cho_solve(c, np.sin(_XD)) + np.sum(np.log(np.diag(c[0])))


def test_scipy_linalg_calls_are_skipped():
    """SciPy's functions run its utilities first (scipy/_lib: array-API dispatch, argument checks),
    which read an lru_cache-wrapped global and ``sys``: guarded as the user's code, they kept a GP
    likelihood built on cho_factor running f at every call (1.1 ms a call, then 0.15 ms)."""
    jf = jacc.jacobian(_gp_nll)
    points = [np.array([0.1, -2.0]), np.array([-0.3, -1.0]), np.array([0.4, -2.5])]
    for p in points * 2:
        h = 1e-6
        fd = np.array([(_gp_nll(p + h * e) - _gp_nll(p - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(jf(p), fd, rtol=1e-6)
    assert jf.cache.skipped >= 3, jf.cache.why_traced


def test_guards_by_hand():
    f = lambda x: np.sin(x) * SCALE  # noqa: E731
    with watch(f) as w:
        f(np.zeros(3))
    g = guards_for(f, w)
    assert sorted(g.names) == ["SCALE", "np"] and g.hold()
    with watch(f) as w:
        math.sqrt(2.0)
        sorted([3, 1])
    assert w.problem is None
    with watch(f) as w:
        open  # noqa: B018 (a read is no call)
        import time
        time.time()
    assert w.problem == "it calls time"
    assert same(snapshot([np.zeros(2), 1.0]), [np.zeros(2), 1.0])
    assert not same(snapshot([np.zeros(2), 1.0]), [np.zeros(2), -1.0])


def test_containers_of_arrays_changed_in_place_or_replaced_are_seen():
    parts = [(np.array([1.0, 2.0]), 3.0), {"k": np.array([0.5, 0.5])}]

    def f(x):
        return np.sin(x) * parts[0][0] * parts[0][1] + x * parts[1]["k"]

    def want():
        return np.diag(np.cos(x) * parts[0][0] * parts[0][1] + parts[1]["k"])

    jf = jacc.jacobian(f)
    x = np.array([0.3, 0.4])
    for _ in range(4):
        np.testing.assert_allclose(jf(x), want(), rtol=1e-14)
    assert jf.cache.skipped == 2
    for change in (lambda: parts[0][0].__setitem__(1, -2.0),  # an array inside a tuple inside a list
                   lambda: parts[1].__setitem__("k", np.array([7.0, 8.0])),  # a dict entry replaced
                   lambda: parts.__setitem__(0, (np.array([4.0, 5.0]), -1.0)),  # a list item replaced
                   lambda: parts[1]["k"].__setitem__(0, 9.0)):
        change()
        np.testing.assert_allclose(jf(x), want(), rtol=1e-14)
        for _ in range(3):
            np.testing.assert_allclose(jf(x), want(), rtol=1e-14)
    skipped = jf.cache.skipped
    parts[0] = (parts[0][0].copy(), parts[0][1])  # an equal copy: the guard still holds by value
    np.testing.assert_allclose(jf(x), want(), rtol=1e-14)
    assert jf.cache.skipped == skipped + 1


def test_kept_values_decide_by_value_when_the_quick_test_fails():
    from jacc.guards import Kept

    a = np.arange(6.0)
    k = Kept([a, (1.0, a[:2])])
    assert k.holds(k.live)
    a.shape = (2, 3)  # same bytes, another shape: changed
    assert not k.holds(k.live)
    a.shape = (6,)
    assert k.holds(k.live) and k.holds([np.arange(6.0), (1.0, np.arange(2.0))])
    a[5] = np.nan
    assert not k.holds(k.live)


def test_a_default_array_changed_in_place_is_seen():
    w = np.array([1.0, 2.0])

    def f(x, scale=w):
        return np.sin(x) * scale

    jf = jacc.jacobian(f)
    x = np.array([0.1, 0.2])
    calls(jf, x)
    assert jf.cache.skipped == 2
    w[1] = -3.0
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * w), rtol=1e-14)


def _scaled_by_attribute(x):
    return x * _scaled_by_attribute.k


def _scaled_unless_unset(x, flag=False):
    return x * (UNSET_SCALE if flag else 2.0)  # noqa: F821  (set by the test after the trace: traced again)


NESTED = {"fns": [lambda v: v * SCALE[0]]}  # a callback two containers deep, run by NumPy


def _apply_nested(x):
    return np.apply_along_axis(NESTED["fns"][0], 0, x)


def _make_scaling(s):
    return lambda h: h * s


OUTER_SCALING = _make_scaling(np.array([1.0]))  # guarded directly; the same code as the one below
INNER = np.array([2.0])
LAYERS = [(1.0, _make_scaling(INNER))]  # a closure in a tuple in a list


def _layered(x):
    for w, act in LAYERS:
        x = act(w * x)
    return OUTER_SCALING(x)


def _with_keyword(x, *, c=2.0):
    return x * c


def _set(name, value):
    globals()[name] = value


@pytest.mark.parametrize("fn, change, scale", [
    (_scaled_by_attribute, lambda: setattr(_scaled_by_attribute, "k", 5.0), 5.0),  # an attribute of a function
    (_with_keyword, lambda: _with_keyword.__kwdefaults__.update(c=7.0), 7.0),  # a keyword default in place
    (_with_keyword, lambda: setattr(_with_keyword, "__code__", (lambda x, *, c=2.0: x * 3.0).__code__), 3.0),
    (_scaled_unless_unset, lambda: _set("UNSET_SCALE", 9.0), 2.0),  # a global unset at the trace, set
    (_apply_nested, lambda: SCALE.__setitem__(0, 8.0), 8.0),  # read by a callback deep in containers
    (_layered, lambda: INNER.__setitem__(0, 3.0), 3.0),  # a closure's cell deep in containers
])
def test_what_f_reads_through_functions_and_containers_is_guarded(fn, change, scale):
    code, kw, keep, inner, d = fn.__code__, dict(fn.__kwdefaults__ or {}), SCALE.copy(), INNER.copy(), dict(fn.__dict__)
    try:
        fn.__dict__.setdefault("k", 2.0) if fn is _scaled_by_attribute else None
        SCALE[0], INNER[0] = 2.0, 2.0
        jf, x = jacc.jacobian(fn), np.array([0.5, 1.5])
        for _ in range(3):
            np.testing.assert_allclose(jf(x), np.eye(2) * 2.0, rtol=1e-14)
        assert jf.cache.skipped == 1  # (skipping f before the change: the test tests the guard)
        change()
        skipped = jf.cache.skipped
        np.testing.assert_allclose(jf(x), np.eye(2) * scale, rtol=1e-14)
        assert jf.cache.skipped == skipped  # (f ran: the guard saw the change)
    finally:
        fn.__code__ = code
        if kw:
            fn.__kwdefaults__.update(kw)
        fn.__dict__.clear()
        fn.__dict__.update(d)
        SCALE[:], INNER[:] = keep, inner
        globals().pop("UNSET_SCALE", None)


def _picks(x, flag, a=False, b=False):
    return _scaled_by_global(x) if flag or a else x * 2.0  # one trace for both while FACTOR is 2


FACTOR = 2.0


def _scaled_by_global(x):
    return x * FACTOR


def _appends(x, log):
    log.append(1.0)
    return x * len(log)


def test_a_call_with_other_arguments_is_watched_and_one_changing_them_runs_f():
    global FACTOR
    jf, x = jacc.jacobian(_picks), np.array([0.5, 1.5])
    try:
        for flag in (False, False, False, True, True, True):  # the helper runs only when flag is set
            np.testing.assert_allclose(jf(x, flag), np.eye(2) * 2.0, rtol=1e-14)
        FACTOR = 5.0
        np.testing.assert_allclose(jf(x, True), np.eye(2) * 5.0, rtol=1e-14)
        FACTOR = 2.0
        jf = jacc.jacobian(_picks)
        for _ in range(3):  # keyword arguments are compared by name, not in the order given
            np.testing.assert_allclose(jf(x, False, a=False, b=True), np.eye(2) * 2.0, rtol=1e-14)
        for _ in range(3):
            np.testing.assert_allclose(jf(x, False, b=False, a=True), np.eye(2) * 2.0, rtol=1e-14)
        FACTOR = 5.0
        np.testing.assert_allclose(jf(x, False, b=False, a=True), np.eye(2) * 5.0, rtol=1e-14)
    finally:
        FACTOR = 2.0
    jf, log = jacc.jacobian(_appends), []
    for k in range(1, 6):  # f's effect on its own argument: every call runs it
        np.testing.assert_allclose(jf(x, log), np.eye(2) * k, rtol=1e-14)
    assert len(log) == 5 and jf.cache.skipped == 0 and jf.cache.why_traced == "running f changes its arguments"


def _imports_inside(x):
    import jacc_test_config

    return x * jacc_test_config.SCALE


def _draws_through_c(x):
    c = max([0.0, 1.0], key=np.random.normal)  # np.random.normal called by max, out of the hook's sight
    return x * (1.0 + c)


def _draws_through_getattr(x):
    return x * (1.0 + max([0.0, 1.0], key=getattr(np, "random").normal))  # noqa: B009  (the point)


def _draws_through_a_built_name(x):
    # the attribute name is made at run time: no string in the code says "random" ("ran" + "dom"
    # would be folded into one by the compiler)
    name = "".join(["ran", "dom"])
    return x * (1.0 + max([0.0, 1.0], key=getattr(np, name).normal))


def _draws_through_attrgetter(x):
    import operator

    return x * (1.0 + max([0.0, 1.0], key=operator.attrgetter("".join(["ran", "dom.normal"]))(np)))


@pytest.mark.parametrize("fn, why", [(_imports_inside, "imports jacc_test_config"),
                                     (_draws_through_c, "uses numpy.random"),
                                     (_draws_through_getattr, "uses numpy.random"),
                                     (_draws_through_a_built_name, "by a name built at run time"),
                                     (_draws_through_attrgetter, "by a name built at run time")])
def test_imports_and_random_draws_out_of_sight_keep_f_running(fn, why, monkeypatch):
    import types

    config = types.ModuleType("jacc_test_config")
    config.SCALE = 2.0
    monkeypatch.setitem(sys.modules, "jacc_test_config", config)
    jf = jacc.jacobian(fn)
    for _ in range(4):
        jf(np.array([0.5, 1.5]))
    assert jf.cache.skipped == 0 and why in jf.cache.why_traced


def _literal_lookups(x, scale=2.0):
    return getattr(np, "sin")(x) * getattr(np.linalg, "norm", None)(x) * scale  # noqa: B009


def test_getattr_with_a_name_in_the_code_still_lets_f_be_skipped():
    jf, x = jacc.jacobian(_literal_lookups), np.array([0.5, 1.5])
    want = jacc.jacobian(_literal_lookups, retrace="always")(x)
    for _ in range(5):
        np.testing.assert_allclose(jf(x), want, rtol=1e-14)
    assert jf.cache.skipped >= 2, jf.cache.why_traced


def test_a_closed_over_complex_array_is_compared_bit_for_bit():
    # 300 complex128 entries: compared as real and imaginary parts (there is no 16-byte integer
    # to view them as; that raised TypeError from the second call on)
    c = np.exp(1j * np.linspace(0.0, 1.0, 300))
    jf, x = jacc.jacobian(lambda x: np.real(x * c), sparse=True), np.linspace(0.0, 1.0, 300)
    for _ in range(3):
        np.testing.assert_allclose(jf(x).diagonal(), c.real, rtol=1e-14)
    c.imag[7] = -c.imag[7]  # (the real parts unchanged: the trace's constant changed all the same)
    c[5] = 2.0
    np.testing.assert_allclose(jf(x).diagonal(), c.real, rtol=1e-14)


def test_same_bits_compares_every_byte_of_large_arrays_in_any_layout():
    from jacc.trace import same_bits

    a = np.random.default_rng(0).standard_normal((240, 120))
    for x, y in [(a, a.copy()), (a, np.asfortranarray(a)), (a[:, ::2], a.copy()[:, ::2]),
                 (a.astype(np.complex128), a.astype(np.complex128)), (np.full(999, np.nan), np.full(999, np.nan))]:
        assert same_bits(x, y)
        for flat in (0, x.size // 2, x.size - 1):  # (first, middle and last byte: memcmp's whole length)
            z, at = np.array(y, copy=True, order="K"), np.unravel_index(flat, y.shape)
            z[at] = -z[at] if z[at] == z[at] else 1.0
            assert not same_bits(x, z), (x.shape, flat)
    assert not same_bits(np.zeros(1000), -np.zeros(1000))
    assert not same_bits(a, a.astype(np.float32)) and not same_bits(a, a.T)


def _log_or_linear(x):
    with np.errstate(divide="raise"):
        try:
            return np.log(x) * 2.0
        except FloatingPointError:  # taken at some values only
            return x * 3.0


MASKED = np.ma.array([2.0, 2.0], mask=[False, False])
PARAMS = {"s": 2.0}
param = PARAMS.get  # a method bound to data: guarding it by identity misses PARAMS changing


def _log_or_linear_by_callback(x):
    hit = []
    with np.errstate(divide="call", call=lambda kind, flag: hit.append(kind)):
        y = np.log(x)
    return x * 3.0 if hit else y * 2.0  # (no exception: a flag set at some values only)


def _reads_masked(x):
    return x * MASKED.filled(0.0)


def _reads_bound_method(x):
    return x * param("s")


def _reads_globals_of(x):
    return x * _scaled_by_global.__globals__["FACTOR"]


def _imports_by_function(x):
    import importlib

    return x * importlib.import_module("jacc_test_config").SCALE


@pytest.mark.parametrize("fn, why", [
    (_log_or_linear, "catches exceptions"), (_log_or_linear_by_callback, "raise or call back"),
    (_reads_masked, "holds a value of type MaskedArray"),
    (_reads_bound_method, "holds a value of type builtin_function_or_method"), (_reads_globals_of, "reads __globals__"),
    (_imports_by_function, "imports"),
])
def test_paths_taken_by_value_and_state_out_of_the_guards_sight_keep_f_running(fn, why, monkeypatch):
    import types

    config = types.ModuleType("jacc_test_config")
    config.SCALE = 2.0
    monkeypatch.setitem(sys.modules, "jacc_test_config", config)
    jf = jacc.jacobian(fn)
    x = np.array([1.0, 2.0])
    for _ in range(4):
        logs = fn in (_log_or_linear, _log_or_linear_by_callback)
        np.testing.assert_allclose(jf(x), np.eye(2) * 2.0 / (x if logs else 1.0), rtol=1e-14)
    assert jf.cache.skipped == 0 and why in jf.cache.why_traced, jf.cache.why_traced
    if logs:
        np.testing.assert_allclose(jf(np.array([0.0, 2.0])), np.eye(2) * 3.0, rtol=1e-14)


@pytest.mark.parametrize("x", [np.linspace(0.1, 1.0, 3000), np.array([0.1, 0.2])], ids=["array program", "small"])
@pytest.mark.parametrize("retrace", [True, False])
def test_calls_that_skip_f_refuse_arguments_a_trace_refuses(x, retrace):
    jf = jacc.jacobian(lambda x: np.sin(x) * 2.0, retrace=retrace)
    for _ in range(3):
        jf(x)
    for bad in (x + 1j, x > 0.15):  # (cast to floats, the imaginary part or the booleans' meaning is lost)
        with pytest.raises(TypeError, match="argument 'x' must be a real float array"):
            jf(bad)
    with pytest.raises(TypeError, match=r"got dtype object \(NumPy makes object arrays of Python integers beyond"):
        jf([10**20] * x.size)
    np.testing.assert_allclose(np.diag(jf(x)) if x.size < 100 else jf(x).diagonal(), 2.0 * np.cos(x), rtol=1e-14)


# -- the property: a call that may skip f equals a fresh jacobian after any change between calls --
CONFIG = {"scale": 1.5, "weights": [np.array([1.0, -2.0])]}


def _prop_helper(x):
    return np.tanh(x) * _prop_helper.k


_prop_helper.k = 0.5


def _make_prop_f(w):
    def f(x, flag, *, k=1.0):
        y = np.sin(x) * w * CONFIG["scale"] + CONFIG["weights"][0] * x
        return (y + _prop_helper(x) if flag else y * x) * k
    return f


_PROP_EDITS = ["call", "call", "call", "x", "w", "scale", "weights", "attribute", "flag", "k"]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(_PROP_EDITS), st.floats(-2, 2, allow_nan=False)), min_size=4,
                max_size=14))
def test_calls_that_may_skip_f_equal_fresh_jacobians_after_any_change(edits):
    keep = dict(CONFIG), CONFIG["weights"][0].copy(), _prop_helper.k
    try:
        w, state = np.array([0.5, 1.0]), {"x": np.array([0.3, -0.7]), "flag": False, "k": 1.0}
        f = _make_prop_f(w)
        jf = jacc.jacobian(f)
        for what, v in edits:
            if what == "x":
                state["x"] = state["x"] + v
            elif what == "w":
                w[0] = v  # a closed-over array, in place
            elif what == "scale":
                CONFIG["scale"] = v  # a global dict, in place
            elif what == "weights":
                CONFIG["weights"][0][1] = v  # an array in a list in a global dict
            elif what == "attribute":
                _prop_helper.k = v  # a helper's attribute
            elif what == "flag":
                state["flag"] = not state["flag"]  # another path through f
            elif what == "k":
                state["k"] = v  # a keyword argument
            got = jf(state["x"], state["flag"], k=state["k"])
            want = jacc.jacobian(f, retrace="always", cache=False)(state["x"], state["flag"], k=state["k"])
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    finally:
        CONFIG.clear()
        CONFIG.update(keep[0])
        CONFIG["weights"][0][:] = keep[1]
        _prop_helper.k = keep[2]


def test_the_property_reaches_calls_that_skip_f():
    f = _make_prop_f(np.array([0.5, 1.0]))
    jf = jacc.jacobian(f)
    for _ in range(4):
        jf(np.array([0.3, -0.7]), True, k=2.0)
    assert jf.cache.skipped == 2, jf.cache.why_traced  # (else the property above tests traced calls only)


GAIN = 2.0


def _gain_of_row(v):
    return np.sin(v) * GAIN


def _applies_keyword_default(x, *, act=_gain_of_row):
    return np.apply_along_axis(act, 0, x)


def _holder():
    pass


_holder.callback = _gain_of_row


def _applies_attribute(x):
    return np.apply_along_axis(_holder.callback, 0, x)


@pytest.mark.parametrize("fn", [_applies_keyword_default, _applies_attribute], ids=["keyword default", "attribute"])
def test_a_callback_reached_through_a_keyword_default_or_an_attribute_has_its_globals_guarded(fn, monkeypatch):
    # NumPy (here jacc's apply_along_axis) calls it: only code known as the user's beforehand is
    # watched there, and these two roads to it were not followed, so GAIN went unguarded
    jf = jacc.jacobian(fn)
    x = np.array([0.3, 0.6])
    for gain in (2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 2.0):
        monkeypatch.setitem(globals(), "GAIN", gain)
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * gain), rtol=1e-14)
    assert jf.cache.skipped >= 2  # (still skipped where nothing changed)


def _scaled_by_environment(x):
    return x * float(getenv("JACC_TEST_SCALE", "1"))  # (os itself is a module: refused as such)


def test_standard_library_code_has_the_globals_it_reads_guarded(monkeypatch):
    # os.getenv reads os.environ on the caller's behalf: an unguarded read of state that changes
    jf = jacc.jacobian(_scaled_by_environment)
    x = np.array([1.0, 2.0])
    for scale in ("1", "1", "1", "1", "7", "7"):
        monkeypatch.setenv("JACC_TEST_SCALE", scale)
        np.testing.assert_allclose(jf(x), np.eye(2) * float(scale), rtol=1e-14)
    assert "environ" in jf.cache.why_traced, jf.cache.why_traced


def test_retrace_false_compares_a_masked_arguments_mask():
    jf = jacc.jacobian(lambda x, c: x * c.sum(), retrace=False)
    x = np.array([0.3, 0.6])
    c = np.ma.array([1.0, 2.0], mask=[False, False])
    for _ in range(3):
        np.testing.assert_allclose(jf(x, c), np.eye(2) * 3.0, rtol=1e-14)
    c[1] = np.ma.masked  # (the data stay as they were)
    np.testing.assert_allclose(jf(x, c), np.eye(2) * 1.0, rtol=1e-14)
    np.testing.assert_allclose(jf(x, c.data), np.eye(2) * 3.0, rtol=1e-14)  # a plain array is not the masked one


@contextlib.contextmanager
def _doubling():
    yield 2.0


def _scaled_in_context(x):
    with _doubling() as s:  # contextlib's code reads its own classes: identity-guarded, it still skips
        return x * s


def _scaled_by_a_generator(x):
    return x * Random(0).random()  # a standard-library class whose code calls C with state (seeding)


def test_standard_library_classes_are_guarded_by_identity_and_their_code_still_checked():
    x = np.array([1.0, 2.0])
    jf = jacc.jacobian(_scaled_in_context)
    for _ in range(5):
        np.testing.assert_allclose(jf(x), np.eye(2) * 2.0, rtol=1e-14)
    assert jf.cache.skipped == 3, jf.cache.why_traced
    jr = jacc.jacobian(_scaled_by_a_generator)
    for _ in range(5):
        np.testing.assert_allclose(jr(x), np.eye(2) * Random(0).random(), rtol=1e-14)
    assert jr.cache.skipped == 0 and "seed" in jr.cache.why_traced, jr.cache.why_traced


ORDERED = {"a": 1.0, "b": 2.0}


def _first_of_ordered(x):
    return np.sin(x) * next(iter(ORDERED.values()))  # (insertion order decides)


def test_a_dicts_order_is_part_of_its_value(monkeypatch):
    x = np.array([0.3, 0.7])
    jf = jacc.jacobian(_first_of_ordered)
    for order in ("ab", "ab", "ab", "ab", "ba", "ba"):
        monkeypatch.setitem(globals(), "ORDERED", {k: {"a": 1.0, "b": 2.0}[k] for k in order})
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x)) * (1.0 if order == "ab" else 2.0), rtol=1e-14)
    ORDERED.pop("b")
    ORDERED["b"] = 2.0  # (in place: the same dict, its order back to a, b)
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x)), rtol=1e-14)
    for retrace in (True, False):  # a dict argument, and keyword arguments given in another order
        jd = jacc.jacobian(lambda x, d: np.sin(x) * next(iter(d.values())), retrace=retrace)
        jk = jacc.jacobian(lambda x, **kw: np.sin(x) * next(iter(kw.values())), retrace=retrace)
        for first in (1.0, 1.0, 1.0, 1.0, 2.0):
            d = {"a": 1.0, "b": 2.0} if first == 1.0 else {"b": 2.0, "a": 1.0}
            np.testing.assert_allclose(jd(x, d), np.diag(np.cos(x)) * first, rtol=1e-14)
            np.testing.assert_allclose(jk(x, **d), np.diag(np.cos(x)) * first, rtol=1e-14)


WEIGHTS_MADE = []


@functools.cache
def _weights():
    WEIGHTS_MADE.append(1)
    return np.ones(2)


def test_a_cached_helper_keeps_f_running():
    # a cache hit runs no code: the array it returns, changed in place, would go unseen
    x = np.array([0.3, 0.7])
    jf = jacc.jacobian(lambda x: np.sin(x) * _weights())
    for scale in (1.0, 1.0, 1.0, 1.0, 5.0):
        _weights()[0] = scale
        np.testing.assert_allclose(jf(x)[0, 0], np.cos(0.3) * scale, rtol=1e-14)
    assert jf.cache.skipped == 0 and "cached function" in jf.cache.why_traced, jf.cache.why_traced


def test_a_path_taken_by_a_formatted_value_is_value_dependent():
    jf = jacc.jacobian(lambda x: x * 2.0 if f"{x[0]:.1f}" < "1.0" else x * 3.0)
    for first, slope in ((0.3, 2.0), (0.3, 2.0), (0.3, 2.0), (0.3, 2.0), (1.3, 3.0)):
        np.testing.assert_allclose(jf(np.array([first, 0.7])), np.eye(2) * slope, rtol=1e-14)

    def logs(x):
        with values_only():  # (values read on purpose: the trace stays general)
            assert f"{x:.3f}" == "1.000"
        return x * 2.0
    assert not jacc.trace(logs, 1.0).meta.get("value_dependent")


class _TimedOnCollection:
    def __del__(self):
        time.perf_counter()  # (not pure: had f called it, f would have to run at every call)


def _times_collections(phase, info):
    time.perf_counter()  # (as Hypothesis's gc callback does, at the start and end of every collection)


def test_what_the_garbage_collector_runs_during_a_watch_is_not_the_watched_codes():
    # a collection runs where memory says, with its finalizers and gc.callbacks: Hypothesis's, which
    # times every collection, kept f running at random ("it calls perf_counter", in two test runs of four)
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # (a collection at nearly every allocation)
    gc.callbacks.insert(0, _times_collections)
    gc.callbacks.append(_times_collections)
    try:
        with watch() as w:
            garbage = _TimedOnCollection()
            garbage.itself = garbage  # (a cycle: only the collector frees it)
            del garbage
            made = [[[] for _ in range(3)] for _ in range(3)]  # (allocations: a collection runs the finalizer)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(_times_collections)
        gc.callbacks.remove(_times_collections)
    assert w.problem is None and made
    with watch() as w:  # (the same call made by the watched code itself is seen)
        time.perf_counter()
    assert w.problem == "it calls perf_counter"


def _by_type(x, c):
    return x * 2.0 if isinstance(c, float) else x * 3.0  # np.float64 is a float; a 0-d array is not


@pytest.mark.parametrize("first, then, slopes", [
    (np.float64(1.0), np.array(1.0), (2.0, 3.0)), (np.array(1.0), np.float64(1.0), (3.0, 2.0)),
    ([np.float64(1.0)], [np.array(1.0)], (2.0, 3.0))], ids=["scalar-then-0d", "0d-then-scalar", "in-a-list"])
def test_a_numpy_scalar_and_a_0d_array_of_the_same_bits_are_different_arguments(first, then, slopes):
    """The guard kept a NumPy scalar as a 0-d array and took either for it: f was skipped and the
    first slope returned for the second kind."""
    f = (lambda x, c: _by_type(x, c[0])) if isinstance(first, list) else _by_type
    x = np.array([0.5, 1.5])
    for retrace in (True, False):
        jf = jacc.jacobian(f, retrace=retrace)
        for _ in range(3):
            np.testing.assert_array_equal(np.diag(jf(x, first)), slopes[0])
        np.testing.assert_array_equal(np.diag(jf(x, then)), slopes[1])


def test_dictionary_keys_equal_in_value_but_not_in_type_are_different_arguments():
    def f(x, d):
        return x * (2.0 if isinstance(next(iter(d)), bool) else 3.0)

    x = np.array([0.5, 1.5])
    for retrace in (True, False):
        jf = jacc.jacobian(f, retrace=retrace)
        for _ in range(3):
            np.testing.assert_array_equal(np.diag(jf(x, {1: 1.0})), 3.0)
        np.testing.assert_array_equal(np.diag(jf(x, {True: 1.0})), 2.0)


def test_an_object_array_whose_entries_change_in_place_is_seen():
    c = np.empty(1, object)
    c[0] = [2.0]
    x = np.array([0.5, 1.5])
    for retrace in (True, False):
        jf = jacc.jacobian(lambda x, c: x * c[0][0], retrace=retrace)
        c[0][0] = 2.0
        for _ in range(3):
            np.testing.assert_array_equal(np.diag(jf(x, c)), 2.0)
        c[0][0] = 5.0  # the list inside changes; the array holds the same object
        np.testing.assert_array_equal(np.diag(jf(x, c)), 5.0)


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_retrace_false_runs_an_f_that_changes_an_argument_it_is_not_differentiated_in(backend):
    # the copy that later calls are compared with is of c as f got it: after f's c += 1, the same c
    # (now 2) was taken for the traced one (1), and the first call's Jacobian came back
    def f(x, c):
        c += 1.0
        return x * c
    jf = jacc.jacobian(f, retrace=False, backend=backend)
    c, mine = np.ones(2), np.ones(2)
    for _ in range(3):
        f(np.ones(2), mine)
        assert np.array_equal(np.diag(jf(np.ones(2), c)), mine)
        assert np.array_equal(c, mine)  # f's change happens, as in NumPy
    jg = jacc.jacobian(f, retrace=False, backend=backend)
    jg(np.ones(2), np.ones(2))
    assert np.array_equal(np.diag(jg(np.ones(2), np.full(2, 2.0))), [3.0, 3.0])


_Data = __import__("collections").namedtuple("_Data", "w s")


@pytest.mark.parametrize("make", [
    _Data,
    lambda w, s: __import__("collections").OrderedDict(w=w, s=s),
    lambda w, s: __import__("collections").defaultdict(list, w=w, s=s),
])
def test_retrace_false_sees_an_array_changed_in_place_inside_a_namedtuple_or_dict_subclass(make):
    d = make(np.ones(2), np.zeros(2))

    def f(x, d):
        w, s = (d.w, d.s) if hasattr(d, "_fields") else (d["w"], d["s"])
        return x * w + s
    jf = jacc.jacobian(f, retrace=False)
    w = d.w if hasattr(d, "_fields") else d["w"]
    for k in (1.0, 2.0, 3.0):
        w[0] = k
        assert jf(np.ones(2), d)[0, 0] == k
    assert same(make(np.ones(2), np.zeros(2)), snapshot(make(np.ones(2), np.zeros(2))))
    assert not same(make(np.ones(2), np.ones(2)), snapshot(make(np.ones(2), np.zeros(2))))


def _cholesky_or_solve(x):
    a = np.array([[1.0, x[0]], [x[0], 1.0]])
    b = np.array([x[1], 1.0])
    try:
        c = np.linalg.cholesky(a)
        return np.linalg.solve(c.T, np.linalg.solve(c, b)) + 1.0
    except np.linalg.LinAlgError:  # not positive definite: another formula, twice the slope
        return np.linalg.solve(a, b) * 2.0


@pytest.mark.parametrize("backend", ["auto", "numpy", "c", "interpret"])
@pytest.mark.parametrize("points", [[[1.5, 0.3], [0.5, 0.3], [-0.2, 2.0], [1.7, 0.1]],
                                    [[0.5, 0.3], [1.5, 0.3], [-0.2, 2.0], [0.5, 0.3]]])
def test_retrace_false_follows_an_error_that_f_catches(backend, points):
    # a first call that caught the error made a trace that depends on values (the other branch's
    # plan was reused); a later call whose program raised it raised, though f catches it
    jf = jacc.jacobian(_cholesky_or_solve, retrace=False, backend=backend)
    for x in map(np.array, points):
        np.testing.assert_allclose(jf(x), fd_jacobian(_cholesky_or_solve, [x], 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("make", [np.random.default_rng, np.random.RandomState])
def test_retrace_false_runs_an_f_that_draws_from_a_generator_it_is_given(make):
    # f advances the generator it is given (a running state): the next call's draws are new ones,
    # where the generator compared by identity had the first call's Jacobian come back
    def f(x, rng):
        return x * rng.standard_normal(3)
    jf = jacc.jacobian(f, retrace=False)
    rng = make(0)
    for _ in range(3):
        want = np.diag(copy.deepcopy(rng).standard_normal(3))  # (the draws this call makes)
        np.testing.assert_array_equal(jf(np.ones(3), rng), want)


def test_setting_the_shape_of_a_traced_array_is_refused_by_name():
    with pytest.raises(jacc.UnsupportedOperationError, match=r"x\.shape ="):
        jacc.jacobian(lambda mu: np.random.default_rng(0).multivariate_normal(mu, np.eye(3)))(np.zeros(3))


BIG = np.linspace(0.0, 1.0, 1_000_000)  # 8 MB, read by f at every shape


def test_structures_of_one_jacobian_share_the_copies_of_what_f_reads():
    """Each structure's guards copied the arrays f reads: a 40 MB global read at 10 argument
    shapes was held 10 times (found by a hunt); they now share one copy while its bits hold."""
    import tracemalloc

    def f(x):
        return np.sin(x) * BIG[: x.shape[0]].sum()

    jf = jacc.jacobian(f)
    tracemalloc.start()
    try:
        for n in range(2, 12):
            for _ in range(3):  # traced, watched, then f skipped
                np.testing.assert_allclose(jf(np.ones(n)), np.diag(np.cos(np.ones(n)) * BIG[:n].sum()))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * BIG.nbytes, held
    assert jf.cache.skipped >= 10
    BIG[:5] += 1.0  # changed in place: every structure sees it
    try:
        for n in (2, 5, 11):
            np.testing.assert_allclose(jf(np.ones(n)), np.diag(np.cos(np.ones(n)) * BIG[:n].sum()))
    finally:
        BIG[:5] -= 1.0


def test_structures_of_one_jacobian_share_their_constants():
    """A constant operand (A @ …) was copied into each structure's graph: 10 argument shapes held
    10 copies of A; they share one while A keeps its bits, and a changed A is a new constant."""
    import tracemalloc

    A = np.linspace(-1.0, 1.0, 1_000_000).reshape(1000, 1000) / 1000

    def f(x):
        return np.tanh(A @ np.resize(x, 1000))[:3]

    def want(x):
        t = np.tanh(A[:3] @ np.resize(x, 1000))
        return (1 - t ** 2)[:, None] * (A[:3] @ np.eye(x.shape[0])[np.arange(1000) % x.shape[0]])

    jf = jacc.jacobian(f, retrace=False)
    tracemalloc.start()
    try:
        for n in range(2, 12):
            jf(np.ones(n))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * A.nbytes, held
    x = np.linspace(0.1, 0.5, 4)
    np.testing.assert_allclose(jf(x), want(x), rtol=1e-12)
    A[0, :] *= 2.0  # retrace=False compares the constants' values: a new constant, planned anew
    jf2 = jacc.jacobian(f, retrace=False)
    np.testing.assert_allclose(jf2(x), want(x), rtol=1e-12)


def test_numpy_functions_imported_by_name_are_guarded_as_numpy_is(tmp_path):
    # from numpy import mean: the global holds a dispatcher (not a ufunc nor a Python function),
    # which the guards refused, so f ran at every call (found by a hunt: a conv1d through
    # sliding_window_view 10x slower than np.lib.stride_tricks.sliding_window_view)
    import io

    from numpy import einsum, mean, save
    from numpy.lib.stride_tricks import sliding_window_view
    from numpy.linalg import norm

    ns = {"mean": mean, "einsum": einsum, "swv": sliding_window_view, "norm": norm, "np": np, "save": save,
          "buf": io.BytesIO()}
    exec("def f(x):\n    return swv(x, 2).sum() * mean(x) * norm(x) + einsum('i,i->i', x, x)\n"
         "def g(x):\n    save(buf, np.ones(2))\n    return np.sin(x)\n", ns)
    x = np.array([0.5, 1.0, 2.0])
    jf = jacc.jacobian(ns["f"])
    for _ in range(4):
        np.testing.assert_allclose(jf(x), jacc.jacobian(ns["f"], retrace="always")(x), rtol=1e-14)
    assert jf.cache.skipped == 2 and jf.cache.why_traced is None
    jg = jacc.jacobian(ns["g"])
    for k in range(3):
        jg(x)
        assert ns["buf"].tell() == 144 * (k + 1)  # saved at every call: f runs
    assert jg.cache.skipped == 0 and "save" in jg.cache.why_traced


W3 = np.array([[0.5, -1.0, 0.3], [0.2, 0.7, -0.4], [1.1, 0.1, 0.6]])


def _by_mode(x, mode, scale=1, train=True):
    y = np.tanh(W3 @ x) if mode == "tanh" else np.sin(W3 @ x)
    return y * scale * (0.5 if train else 1.0)


def _by_mode_closed_form(x, mode, scale=1, train=True):
    d = 1 - np.tanh(W3 @ x) ** 2 if mode == "tanh" else np.cos(W3 @ x)
    return d[:, None] * W3 * scale * (0.5 if train else 1.0)


@pytest.mark.parametrize("calls", [
    [("tanh",), ("sin",)],
    [("tanh", 1), ("tanh", 2)],  # one structure, other constants
    [("sin", 3, False), ("sin", 3, True), ("tanh", 3, True)],
], ids=["str flag", "int flag", "three combinations"])
def test_flags_that_alternate_skip_f_each(calls):
    """A flag argument that alternates between values (mode="tanh"/"sin", an int, train=True/False)
    made every call trace f, each value's guards failing the other's (found by a hunt: 142 us a call
    against 15 for one value); each combination now keeps a skip of its own."""
    jf, x = jacc.jacobian(_by_mode), np.array([0.3, -0.2, 0.9])
    for i in range(8 * len(calls)):
        args = calls[i % len(calls)]
        np.testing.assert_allclose(jf(x + i * 0.01, *args), _by_mode_closed_form(x + i * 0.01, *args), rtol=1e-12)
    assert jf.cache.skipped >= 4 * len(calls)


def test_an_int_that_changes_at_every_call_keys_no_skip_of_its_own():
    """A counter is a flag of new values only: past a few values they share the shape's key (and
    its verdict), so f is not watched again at every call."""
    jf, x = jacc.jacobian(_by_mode), np.array([0.3, -0.2, 0.9])
    for i in range(30):
        np.testing.assert_allclose(jf(x, "sin", i), _by_mode_closed_form(x, "sin", i), rtol=1e-12)
    assert jf.cache.why_traced == "what it reads changed at every call"


def test_f_that_copies_what_it_reads_with_the_copy_module_is_skipped():
    """copy.copy and copy.deepcopy kept f running (the copy module was not among the pure ones, and
    deepcopy calls id: hunt BF); what they copy is still guarded where f reads it."""
    params = {"w": np.arange(3.0), "b": [1.0, 2.0]}

    def f(x):
        q = copy.deepcopy(params)
        y = copy.copy(x)
        y[0] = 5.0 * y[1]
        return np.sin(y) * q["w"] + q["b"][1]

    jf = jacc.jacobian(f)
    for k in range(5):
        x = np.array([0.1, 0.4, 0.9]) + 0.1 * k
        np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    params["w"][2] = 7.0  # changed in place: seen through the deep copy's guard on params
    x = np.array([0.3, 0.2, 0.5])
    np.testing.assert_allclose(jf(x), fd_jacobian(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_f_calling_a_jacobian_function_runs_and_says_so_plainly():
    """The reason named jacc's internals ("the variable 'data_args' of _jacobian.<locals>.jf", hunt BG)."""
    inner = jacc.jacobian(lambda c: np.sin(c) * c.sum())

    def outer(x, c):
        return inner(c) @ x

    jf = jacc.jacobian(outer)
    for k in range(4):
        c = np.linspace(0.0, 1.0, 3) + k
        np.testing.assert_allclose(jf(np.ones(3) * k, c), inner(c), rtol=1e-12)
    assert jf.cache.skipped == 0
    assert jf.cache.why_traced == "it calls a function that jacc.jacobian made (whose caches change as it runs)"


def test_user_code_that_copy_or_a_distance_calls_is_watched():
    """Hunt BI: copy's __deepcopy__ dispatch (when copy was trusted) and cdist's metric held in a
    namedtuple ran user code unwatched: what it read was not guarded, so a later call was stale."""
    import collections

    import scipy.spatial.distance as ssd

    scale = [2.0]

    class Pair(collections.namedtuple("Pair", "a b")):
        def __deepcopy__(self, memo):
            return Pair(self.a * scale[0], self.b)

    pair = Pair(1.0, 2.0)

    def f(x):
        return x * copy.deepcopy(pair).a

    x = np.array([0.3, -0.7])
    jf = jacc.jacobian(f)
    for _ in range(4):
        np.testing.assert_allclose(np.diag(jf(x)), [2.0, 2.0])
    scale[0] = 5.0
    np.testing.assert_allclose(np.diag(jf(x)), [5.0, 5.0])

    Config = collections.namedtuple("Config", "metric")
    k = [1.0]
    config = Config(lambda u, v: k[0] * ((u - v) ** 2).sum())
    Y = np.array([[0.0, 1.0]])

    def g(x):
        return ssd.cdist(x[None, :], Y, config.metric)[0]

    jg = jacc.jacobian(g)
    for _ in range(4):
        np.testing.assert_allclose(jg(x), [2 * (x - Y[0])])
    assert jg.cache.skipped >= 1
    k[0] = 3.0
    np.testing.assert_allclose(jg(x), [6 * (x - Y[0])])


# --- objects of the user's own classes (records): compared by their attributes and their classes'

GAIN = 2.0


class _Layer:
    def __init__(self, W):
        self.W = W


class _Base:
    def scale(self):
        return self.lam


class _Model(_Base):
    offset = 1.0

    def __init__(self):
        self.X = np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]])
        self.lam = 0.5
        self.layer = _Layer(np.array([1.0, -2.0]))
        self.act = np.tanh

    @property
    def gain(self):
        return GAIN  # (a global read inside a property: guarded where it runs)

    def scale(self):
        return super().scale() * 2.0

    def helper(self, z, c=np.array([1.0, 1.0])):  # noqa: B008 (a default changed in place, on purpose)
        return z * c

    def loss(self, w):
        r = self.X @ (w * self.layer.W) - self.offset
        return 0.5 * r @ r * self.gain + self.scale() * np.sum(self.helper(self.act(w)))

    def __call__(self, w):
        return self.loss(w)


def _model_gradient(m, w):
    r = m.X @ (w * m.layer.W) - m.offset
    return (m.X.T @ r) * m.layer.W * GAIN + 2 * m.lam * (1 - np.tanh(w) ** 2) * np.array([1.0, 1.0]) * \
        m.helper.__defaults__[0] if m.act is np.tanh else None


@pytest.mark.parametrize("call", ["method", "object called"])
def test_a_method_of_a_users_object_skips_f_and_sees_every_change(call):
    """``jacobian(model.loss)`` (or of a callable model) read ``self``'s attributes: "f is not a plain
    function", f ran at every call (194 against about 20 us skipping). Now the object is compared by
    its attributes (nested objects too) and its classes' (methods by identity, constants by value)."""
    global GAIN
    m = _Model()
    jf = jacc.jacobian(m.loss if call == "method" else m)
    w = np.array([0.3, -0.4])

    def check():
        np.testing.assert_allclose(jf(w), _model_gradient(m, w), rtol=1e-12)

    for _ in range(4):
        check()
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    m.X[0, 0] = 7.0  # an array attribute refilled
    check()
    m.lam = 0.25  # an attribute rebound (read through super().scale())
    check()
    m.layer.W[:] = [0.5, 3.0]  # a nested object's array
    check()
    m.helper.__defaults__[0][:] = [2.0, 0.5]  # a method's default, changed in place
    check()
    _Model.offset = 2.0  # a class constant
    try:
        check()
        GAIN = 3.0  # a global a property reads
        check()
    finally:
        _Model.offset, GAIN = 1.0, 2.0
        m.helper.__defaults__[0][:] = 1.0
    for _ in range(2):
        check()
    m.act = np.sin  # a function attribute replaced
    np.testing.assert_allclose(jf(w), fd_jacobian(m.loss, [w], 0), rtol=1e-6, atol=1e-8)


def test_a_replaced_method_and_an_object_changed_by_f_are_seen():
    class Counter:
        def __init__(self):
            self.k, self.calls = 2.0, 0

        def f(self, x):
            self.calls += 1  # (f changes its object: f must run at every call)
            return np.sin(x) * self.k

    class Scaled:
        k = 2.0

        def part(self, x):
            return np.sin(x) * self.k

        def f(self, x):
            return self.part(x)

    x = np.array([0.1, 0.2])
    c = Counter()
    jc = jacc.jacobian(c.f)
    for _ in range(4):
        np.testing.assert_allclose(jc(x), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    assert jc.cache.skipped == 0 and "STORE_ATTR" in jc.cache.why_traced and c.calls == 4
    s = Scaled()
    js = jacc.jacobian(s.f)
    for _ in range(4):
        np.testing.assert_allclose(js(x), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    assert js.cache.skipped >= 2
    Scaled.part = lambda self, x: np.cos(x) * self.k  # a method replaced on the class
    np.testing.assert_allclose(js(x), np.diag(-np.sin(x) * 2.0), rtol=1e-14)


def test_a_dataclass_of_data_global_or_passed_skips_f():
    import dataclasses

    @dataclasses.dataclass
    class Data:
        X: np.ndarray
        y: np.ndarray

    global DATA
    DATA = Data(np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]]), np.array([1.0, 0.0, 2.0]))

    def loss(w):
        r = DATA.X @ w - DATA.y
        return 0.5 * r @ r

    def loss_of(w, d):
        r = d.X @ w - d.y
        return 0.5 * r @ r

    w = np.array([0.2, -0.1])
    for jf, args in ((jacc.jacobian(loss), ()), (jacc.jacobian(loss_of, argnums=0), (DATA,))):
        for _ in range(4):
            np.testing.assert_allclose(jf(w, *args), DATA.X.T @ (DATA.X @ w - DATA.y), rtol=1e-14)
        assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    DATA.y[1] = 5.0
    np.testing.assert_allclose(jacc.jacobian(loss)(w), DATA.X.T @ (DATA.X @ w - DATA.y), rtol=1e-14)
    jf = jacc.jacobian(loss)
    for _ in range(4):
        jf(w)
    DATA = Data(DATA.X * 2.0, DATA.y)  # the global rebound
    np.testing.assert_allclose(jf(w), DATA.X.T @ (DATA.X @ w - DATA.y), rtol=1e-14)


def test_an_object_that_holds_itself_or_nests_deep_keeps_f_running():
    class Node:
        def __init__(self, k, parent=None):
            self.k, self.parent = k, parent

    ring = Node(2.0)
    ring.parent = ring
    chain = Node(2.0)
    for _ in range(40):
        chain = Node(2.0, chain)
    x = np.array([0.1, 0.2])
    for node in ring, chain:
        jf = jacc.jacobian(lambda x, n: np.sin(x) * n.k, argnums=0)
        for _ in range(3):
            np.testing.assert_allclose(jf(x, node), np.diag(np.cos(x) * 2.0), rtol=1e-14)
        assert jf.cache.skipped == 0 and "Node" in jf.cache.why_traced


def _bases_case():
    class B1:
        def s(self):
            return 1.0

    class B2:
        def s(self):
            return 5.0

    class C(B1):
        def loss(self, x):
            return x ** 2 * self.s()

    return C().loss, lambda: setattr(C, "__bases__", (B2,)), 5.0


def _class_held_object_case():
    class Cfg:
        def scale(self, c=np.array([1.0, 1.0])):  # noqa: B008 (changed in place, on purpose)
            return c

    class Model:
        cfg = Cfg()  # (an object held by the class, whose method's default changes)

        def loss(self, x):
            return x ** 2 * self.cfg.scale()

    return Model().loss, lambda: Cfg.scale.__defaults__[0].fill(5.0), 5.0


def _class_held_functions_case():
    k = [1.0]

    def hook(z):
        return z * k[0]

    class Model:
        hooks = [hook]

        def loss(self, x):
            return self.hooks[0](x ** 2)

    return Model().loss, lambda: k.__setitem__(0, 5.0), 5.0


def _dunder_case():
    class Op:
        __mul__ = staticmethod(lambda o: o * 1.0)

        def loss(self, x):
            return self * (x ** 2)

    return Op().loss, lambda: setattr(Op, "__mul__", staticmethod(lambda o: o * 5.0)), 5.0


def _wrapped_static_case():
    K = np.array([1.0])

    class Model:
        scale = staticmethod(functools.partial(lambda z, c: z * c, c=K))

        def loss(self, x):
            return self.scale(x ** 2)

    return Model().loss, lambda: K.fill(5.0), 5.0


def _cached_method_case():
    G = np.array([1.0])

    class Q:
        @functools.cache  # noqa: B019 (the pattern under test)
        def scale(self):
            return G * 1.0

        def loss(self, x):
            return x ** 2 * self.scale()

    q = Q()
    q.scale()
    G.fill(5.0)  # (the cache holds 1 until it is cleared)
    return q.loss, Q.scale.cache_clear, 5.0


@pytest.mark.parametrize("case", [_bases_case, _class_held_object_case, _class_held_functions_case, _dunder_case,
                                  _wrapped_static_case, _cached_method_case],
                         ids=["bases reassigned", "object held by the class", "functions held by the class",
                              "a dunder static method replaced", "a static method wrapping a partial",
                              "a functools.cache method"])
def test_what_a_users_class_holds_is_guarded(case):
    """Hunt BN: each of these returned the Jacobian of the old f after the change (``2x``, not ``10x``)."""
    f, change, scale = case()
    x = np.array([0.3, 0.7])
    np.testing.assert_allclose(_after_change(f, change, x), np.diag(2 * x * scale), rtol=1e-14)


def _after_change(f: Callable, change: Callable, x: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
    """``jacobian(f)`` at ``x`` after five calls (calls skip ``f`` from the third: each equal to
    ``before`` where given) and then ``change()``."""
    jf = jacc.jacobian(f)
    for _ in range(5):
        J = jf(x)
        if before is not None:
            np.testing.assert_allclose(J, before, rtol=1e-14)
    change()
    return jf(x)


def test_an_abstract_base_class_model_skips_f_and_sees_changes():
    import abc

    class Base(abc.ABC):  # noqa: B024 (registration is what is tested)
        @abc.abstractmethod
        def loss(self, w): ...

    class Quadratic(Base):
        def __init__(self):
            self.A = np.array([[2.0, 0.0], [0.0, 3.0]])

        def loss(self, w):
            return 0.5 * w @ self.A @ w

    m = Quadratic()
    jf = jacc.jacobian(m.loss)
    w = np.array([0.3, -0.4])
    for _ in range(4):
        np.testing.assert_allclose(jf(w), m.A @ w, rtol=1e-14)
    assert jf.cache.skipped >= 2 and jf.cache.why_traced is None
    m.A[1, 1] = 7.0
    np.testing.assert_allclose(jf(w), m.A @ w, rtol=1e-14)


def test_a_partial_of_a_method_guards_both_its_arguments_and_the_object():
    class Model:
        def __init__(self):
            self.k = 2.0

        def loss(self, x, c):
            return np.sin(x) * self.k * c[0]

    m, c = Model(), [1.0]
    jf = jacc.jacobian(functools.partial(m.loss, c=c))
    x = np.array([0.1, 0.2])
    for _ in range(4):
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * 2.0), rtol=1e-14)
    assert jf.cache.skipped >= 2
    c[0] = 3.0  # the partial's argument
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * 6.0), rtol=1e-14)
    m.k = 1.0  # the object
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * 3.0), rtol=1e-14)


def test_an_attribute_rebound_to_an_equal_value_keeps_skipping():
    class Model:
        def __init__(self):
            self.k, self.W = 2.0, np.array([1.0, 3.0])

        def loss(self, x):
            return np.sin(x) * self.W * self.k

    m = Model()
    jf = jacc.jacobian(m.loss)
    x = np.array([0.1, 0.2])
    for _ in range(4):
        jf(x)
    skipped = jf.cache.skipped
    for _ in range(3):
        m.k, m.W = float(str(m.k)), m.W.copy()  # (new objects, equal values: the quick test fails, the copy decides)
        np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * m.W * 2.0), rtol=1e-14)
    assert jf.cache.skipped == skipped + 3


class _Scaled(typing.NamedTuple):
    a: float

    def scale(self, x):
        return x * self.a


class _Param(float):
    pass


def _namedtuple_method_case():
    p = _Scaled(2.0)
    original = _Scaled.scale

    def change():
        _Scaled.scale = lambda self, x: x * self.a * 5.0

    return (lambda x: p.scale(x)), change, lambda: setattr(_Scaled, "scale", original)


def _namedtuple_attribute_case():
    class Q(collections.namedtuple("Q0", "a")):
        pass

    q = Q(2.0)
    q.k = 1.0
    return (lambda x: x * q.a * q.k), lambda: setattr(q, "k", 5.0), None


def _number_subclass_case():
    c = _Param(2.0)
    c.k = 1.0
    return (lambda x: x * c * c.k), lambda: setattr(c, "k", 5.0), None


def _class_cell_case():
    class K:
        k = 2.0

    __class__ = K  # (a variable of that name, not Python's own cell for super())

    def f(x):
        return x * __class__.k

    return f, lambda: setattr(K, "k", 10.0), None


def _abc_register_case():
    import abc

    class Base(abc.ABC):  # noqa: B024 (registration is what is tested)
        pass

    class Peer:
        pass

    class Model(Base):
        def __init__(self):
            self.peer = Peer()

        def loss(self, x):
            return x * (10.0 if isinstance(self.peer, Base) else 2.0)

    return Model().loss, lambda: Base.register(Peer), None


@pytest.mark.parametrize("case", [_namedtuple_method_case, _namedtuple_attribute_case, _number_subclass_case,
                                  _class_cell_case, _abc_register_case],
                         ids=["a namedtuple's method replaced", "a namedtuple subclass's attribute",
                              "a float subclass's attribute", "a variable named __class__",
                              "a class registered with an ABC"])
def test_what_namedtuples_number_subclasses_and_abcs_hold_is_guarded(case):
    """Hunt BO: each gave the old Jacobian (2, not 10, times the identity) after the change."""
    f, change, undo = case()
    try:
        np.testing.assert_allclose(_after_change(f, change, np.array([0.3, 0.7]), np.eye(2) * 2.0), np.eye(2) * 10.0,
                                   rtol=1e-14)
    finally:
        if undo:
            undo()


class _Mode(enum.IntEnum):
    A = 1

    def scale(self):
        return 2.0


class _MyFloat(np.float64):
    pass


def _enum_member_case():
    member = _Mode.A
    original = _Mode.scale

    def change():
        _Mode.scale = lambda self: 10.0

    return (lambda x: x * member.scale()), change, lambda: setattr(_Mode, "scale", original)


def _numpy_scalar_subclass_case():
    c = _MyFloat(2.0)
    c.k = 1.0
    return (lambda x: x * c * c.k), lambda: setattr(c, "k", 5.0), None


@pytest.mark.parametrize("case", [_enum_member_case, _numpy_scalar_subclass_case],
                         ids=["an IntEnum's method replaced", "a np.float64 subclass's attribute"])
def test_enum_members_and_numpy_scalar_subclasses_keep_f_running(case):
    """Hunt BP: an enum member and a subclass of np.float64 were kept as plain values (an int's, a
    NumPy scalar's), their class's methods and their attributes unseen: the old Jacobian."""
    test_what_namedtuples_number_subclasses_and_abcs_hold_is_guarded(case)


def test_a_batch_of_namedtuples_checks_their_class_once():
    """Hunt BP: 50 namedtuples of one class checked the class 50 times (147 -> 508 us a check)."""
    from jacc.guards import Kept

    Pair = collections.namedtuple("Pair", "a b")
    batch = [Pair(np.ones(3) * i, float(i)) for i in range(50)]
    kept = Kept(batch)
    assert kept.holds(batch) and list(kept.classes) == [Pair]
    batch[7].a[1] = -1.0
    assert not kept.holds(batch)


@pytest.mark.parametrize("n", [3, 600, 5000, 9000])  # kept as bytes (up to 64 KiB) and as a copy beyond
@pytest.mark.parametrize("how", ["refilled", "reshaped", "retyped", "closure"])
def test_an_array_attribute_changed_in_place_is_seen_at_every_size(n, how):
    class Model:
        def __init__(self):
            self.c = np.linspace(0.5, 1.5, 2 * n)

        def loss(self, x):
            return np.sum(self.c.ravel(order="F")[:2] * x ** 2)  # (c's shape decides which entries)

    m = Model()
    c = m.c
    f = m.loss
    if how == "closure":
        def f(x):
            return np.sum(c.ravel(order="F")[:2] * x ** 2)
    x = np.array([0.3, -0.7])
    before = 2 * c[:2] * x

    def change():
        if how in ("refilled", "closure"):
            c[:2] = [3.0, 5.0]
        elif how == "reshaped":  # the same bytes in another shape: f reads other entries
            c.shape = (2, n)
        else:  # the same bytes read as other numbers
            c.dtype = np.int64

    got = _after_change(f, change, x, before)
    np.testing.assert_allclose(got, 2 * np.asarray(c.ravel(order="F")[:2], dtype=float) * x, rtol=1e-14)


def test_the_jax_backend_sees_a_change_between_skipping_calls():
    # a change seen by the guards of a JAX program (a dispatch before the check, tried, discarded its run)
    pytest.importorskip("jax")
    A = np.random.default_rng(3).standard_normal((200, 150))

    def f(w):
        return np.sum((A @ w) ** 2)

    jf = jacc.jacobian(f, backend="jax")
    w = np.linspace(-1.0, 1.0, 150)
    for _ in range(5):
        np.testing.assert_allclose(jf(w), 2 * A.T @ (A @ w), rtol=1e-12)
    # (what runs is measured at the first call: under load the scalar code may win; the guards are the same)
    assert jf.cache.skipped >= 2 and jf.ran in ("jax", "scalar")
    A[0] *= 3.0
    np.testing.assert_allclose(jf(w), 2 * A.T @ (A @ w), rtol=1e-12)
    np.testing.assert_allclose(jf(w), 2 * A.T @ (A @ w), rtol=1e-12)


def test_the_last_arrays_only_structure_still_follows_guards_shapes_and_other_arguments():
    """Calls with NumPy arrays alone find the structure they skipped f with last by the arguments'
    types and shapes (api's ``arrays`` slot), without working out its key again: what f reads, an
    argument it is not differentiated in, and a new shape still decide as on the keyed path."""
    K = np.array([2.0, -1.0])

    def f(x, y, c):
        return np.sin(x) * K[0] + y ** 2 * K[1] + c * x

    def want(x, y, c):
        return np.cos(x) * K[0] + c, 2.0 * y * K[1]

    jf = jacc.jacobian(f, argnums=(0, 1))
    c = np.array(0.5)
    for k in range(6):  # 0-d arrays, then vectors, then 0-d again: each shape its own structure
        shape = () if k % 3 != 1 else (3,)
        x, y = np.full(shape, 0.1 * k + 0.2), np.full(shape, 0.3 - 0.05 * k)
        for a, b in zip(jf(x, y, c), want(x, y, c)):
            np.testing.assert_allclose(np.diagonal(a) if shape else a, b, rtol=1e-13)
    skipped = jf.cache.skipped
    x, y = np.array(0.7), np.array(-0.4)
    for _ in range(3):
        for a, b in zip(jf(x, y, c), want(x, y, c)):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    assert jf.cache.skipped == skipped + 3
    K[0] = 5.0  # what f reads changed in place
    for a, b in zip(jf(x, y, c), want(x, y, c)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    c2 = np.array(-3.0)  # another value of an argument not differentiated
    for _ in range(3):
        for a, b in zip(jf(x, y, c2), want(x, y, c2)):
            np.testing.assert_allclose(a, b, rtol=1e-13)
        for a, b in zip(jf(x, y, c), want(x, y, c)):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    out = jf(x, y, c)
    assert type(out[0]) is np.ndarray and out[0].shape == ()


_SCALE = [2.0]


def _scaled(a, k=_SCALE):  # (np.frompyfunc's function: its defaults are state f reads)
    return a * k[0]


_SCALED = np.frompyfunc(_scaled, 1, 1)
_BIN, _TXT = "", ""  # (the paths, as strings: set by the test before f's first call)


def _via_frompyfunc(x):
    return x * float(_SCALED(1.0))


def _via_memmap(x):
    return x * np.array(np.memmap(_BIN, dtype=np.float64, mode="r"))


def _via_fileio(x):
    return x * float(b"".join(FileIO(_TXT)))


def _via_decimal(x):
    return x * float(Decimal(1) / Decimal(3))


def _via_printoptions(x):
    return x * float(np.array2string(np.array(1 / 3))[:6])


def _via_clock(x):
    return x * (1.0 + float(np.datetime64("now", "s").astype(np.int64) % 2))


_WHEN = "NOW"  # (hunt CL: the clock's name reached np.datetime64 from a global, in capitals)


def _via_clock_named_elsewhere(x, unit="s"):
    return x * (1.0 + float(np.datetime64(_WHEN, unit).astype(np.int64) % 2))


@pytest.mark.parametrize("f, change", [
    (_via_frompyfunc, lambda: _SCALE.__setitem__(0, 5.0)),
    (_via_memmap, lambda: np.array([5.0, 7.0]).tofile(_BIN)),
    (_via_fileio, lambda: open(_TXT, "w").write("5.0")),
    (_via_decimal, lambda: setattr(__import__("decimal").getcontext(), "prec", 2)),
    (_via_printoptions, lambda: np.set_printoptions(precision=2)),
    (_via_clock, lambda: time.sleep(1.05)),
    (_via_clock_named_elsewhere, lambda: time.sleep(1.05)),
], ids=["frompyfunc", "memmap", "FileIO", "decimal", "printoptions", "datetime64-now", "datetime64-global"])
def test_state_read_out_of_the_hooks_sight_keeps_f_running(f, change, tmp_path):
    """Hunt CF: each of these read state that changed between calls while f was skipped (the Jacobian
    of the first call): a frompyfunc ufunc's Python function, a file read by np.memmap (which runs as
    memmap.__new__) or by iterating io.FileIO in C, decimal's context, the print options, the clock."""
    import decimal
    global _BIN, _TXT
    _BIN, _TXT = str(tmp_path / "a.bin"), str(tmp_path / "a.txt")
    np.array([2.0, 3.0]).tofile(_BIN)
    open(_TXT, "w").write("2.0")
    x = np.array([0.3, 0.7])
    jf = jacc.jacobian(f)
    try:
        with decimal.localcontext(), np.printoptions():
            for _ in range(4):
                jf(x)
            change()
            before, got, after = np.diag(f(np.ones(2))), jf(x), np.diag(f(np.ones(2)))
            assert np.allclose(got, before, rtol=1e-12) or np.allclose(got, after, rtol=1e-12)  # (the clock's
            assert jf.cache.skipped == 0  # second may turn between the calls)
    finally:
        _SCALE[0] = 2.0


def test_a_string_now_that_reaches_no_clock_keeps_calls_skipping_f():
    """Hunt CL: the clock check first matched any "now" or "today" string in f's code, so ordinary
    code lost its skipping; it now looks for numpy.datetime64 itself."""
    def f(x, when="today"):
        label = "now"
        return x * len(label) * (2.0 if when == "today" else 1.0)

    jf = jacc.jacobian(f)
    for _ in range(5):
        np.testing.assert_allclose(jf(np.ones(2)), 6.0 * np.eye(2))
    assert jf.cache.skipped == 3
