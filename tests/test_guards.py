"""By default ``jacobian`` may skip running ``f`` once two traced calls showed that running it cannot
be observed (jacc.guards); every case here checks the result against the closed form at each call,
and whether ``f`` was skipped (``jf.cache.skipped``) or why not (``jf.cache.why_traced``)."""

import functools
import math
import sys

import numpy as np
import pytest

import jacc
from jacc.guards import guards_for, same, snapshot, watch

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
    jp = jacc.jacobian(functools.partial(lambda x, c: np.sin(x) * c, c=c))
    calls(jp, x3)
    assert jp.cache.skipped == 2
    c[0] = 9.0  # the partial's bound argument changed in place
    np.testing.assert_allclose(jp(x3), np.diag(np.cos(x3) * c), rtol=1e-14)


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


def test_an_object_argument_and_value_dependent_code_are_not_skipped():
    box = Box()
    jf = jacc.jacobian(reads_attribute, argnums=0)
    x = np.array([0.1, 0.2])
    for _ in range(3):
        jf(x, box)
    assert jf.cache.skipped == 0 and "Box" in jf.cache.why_traced
    box.k = 5.0
    np.testing.assert_allclose(jf(x, box), np.diag(np.cos(x) * 5.0), rtol=1e-14)

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
