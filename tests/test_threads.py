"""One ``jacobian`` called from several threads: each call's result is its own arguments' (traced
calls take turns; calls that skip ``f`` run side by side)."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import jacc


class _Model:
    __slots__ = ("W",)  # (no __dict__: not a record that guards compare, jacc.guards._record)

    def __init__(self):
        self.W = np.arange(1.0, 6.0)


MODEL = _Model()


def _scaled(x):
    return np.sin(x) * MODEL.W  # a slotted object's attribute: f runs at every call that reaches it


def test_overlapping_first_calls_keep_their_own_verdicts(monkeypatch):
    # the shape-(5,) call reads a slotted object's attribute, so f runs at every such call; its first call
    # held the watch's verdict in a cell that the shape-(2,) call, run in between, overwrote with its
    # own guards, so later calls skipped f and missed the attribute's change
    def f(x):
        return _scaled(x) if x.shape == (5,) else np.cos(x) * 2.0

    jf = jacc.jacobian(f)
    waiting, other_done = threading.Event(), threading.Event()
    real = jacc.api.Runner.prepare

    def prepare(self, plan, *args, **kwargs):  # (between the first call's trace and its verdict)
        if plan.graph.shape(plan.graph.inputs[0]) == (5,) and not other_done.is_set():
            waiting.set()
            other_done.wait(1.0)  # the other call runs now, if it may
        return real(self, plan, *args, **kwargs)

    monkeypatch.setattr(jacc.api.Runner, "prepare", prepare)
    first = threading.Thread(target=jf, args=(np.zeros(5),))
    first.start()
    assert waiting.wait(10.0)
    np.testing.assert_array_equal(jf(np.zeros(2)), np.diag(-np.sin(np.zeros(2)) * 2.0))
    other_done.set()
    first.join()
    for _ in range(3):
        np.testing.assert_array_equal(jf(np.zeros(5)), np.diag(MODEL.W))
    monkeypatch.setattr(MODEL, "W", np.full(5, 10.0))
    np.testing.assert_array_equal(jf(np.zeros(5)), np.diag(MODEL.W))
    assert jf.cache.skipped == 0


def test_many_threads_mixed_shapes_and_backends_get_their_own_jacobians():
    def f(x):
        return np.tanh(x) * np.sum(x**2)

    def exact(x):
        t = np.tanh(x)
        return np.diag((1 - t**2) * np.sum(x**2)) + np.outer(t, 2 * x)

    rng = np.random.default_rng(0)
    points = [rng.standard_normal(n) for n in (3, 4, 3, 5, 4, 3) * 6]
    for backend in ("auto", "numpy", "interpret"):
        for retrace in (True, False):
            jf = jacc.jacobian(f, backend=backend, retrace=retrace)
            with ThreadPoolExecutor(4) as pool:
                got = list(pool.map(jf, points))
            for x, J in zip(points, got):
                np.testing.assert_allclose(J, exact(x), rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_a_thread_traces_computes_its_jacobians():
    """A child forked while another thread held a traced call's lock waited for it forever (found
    by a hunt: a multiprocessing worker forked beside a busy thread)."""
    import multiprocessing
    import warnings

    inside, go_on = threading.Event(), threading.Event()

    def f(x):
        if threading.current_thread().name == "tracer":  # (that thread waits inside its trace)
            inside.set()
            go_on.wait(30)
        return np.tanh(x) * np.sum(x ** 2)

    jf = jacc.jacobian(f)
    th = threading.Thread(target=jf, args=(np.ones(3),), name="tracer", daemon=True)
    th.start()
    assert inside.wait(30)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (fork in a process with threads)
        p = ctx.Process(target=lambda: q.put(jf(np.full(4, 0.2)).shape))
        p.start()
    try:
        assert q.get(timeout=60) == (4, 4)
    finally:
        go_on.set()
        p.join(10)
        if p.is_alive():
            p.kill()
        th.join(30)
