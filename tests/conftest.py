import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _c_libraries_in_a_temporary_folder(tmp_path_factory):
    """backend="c" builds into this run's own folder, not the user's ~/.cache/jacc."""
    mp = pytest.MonkeyPatch()
    mp.setenv("JACC_CACHE", str(tmp_path_factory.mktemp("jacc-cache")))
    yield
    mp.undo()


def in_a_fresh_process(code: str, **kwargs) -> subprocess.CompletedProcess:
    """``code`` run by this Python in a process of its own (its imports and module state fresh),
    its output captured as text; ``kwargs`` go to ``subprocess.run`` (``check=True``, say)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, **kwargs)


def fd_jacobian(f, args, argnum, eps=1e-6):
    """Central finite differences of f w.r.t. args[argnum] (Jacobian shape out + in)."""
    args = [np.array(a, dtype=float) if isinstance(a, (np.ndarray, float)) else a for a in args]
    x = args[argnum]
    y0 = np.asarray(f(*args))
    J = np.zeros(y0.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        ap, am = list(args), list(args)
        ap[argnum], am[argnum] = xp, xm
        d = (np.asarray(f(*ap)) - np.asarray(f(*am))) / (2 * eps)
        J[(Ellipsis,) + idx] = d
    return J


def dense_chain(dims):
    """A graph x → v1 → … → y whose links are dense dims[i]×dims[i+1] (multi_dot convention)."""
    import jacc

    g = jacc.Graph("chain")
    n = len(dims) - 1
    g.add_input("x", (dims[-1],))
    prev = "x"
    for t in range(n):
        name = "y" if t == n - 1 else f"v{t + 1}"
        g.add_node(name, "abstract", [prev], {"partials": ["dense"]}, (dims[-2 - t],))
        prev = name
    g.set_outputs(["y"])
    return g


# -- random structured Jacobians (shared by the structure and sparse tests) --------------------


def random_shape(rng, max_ndim=2):
    """A shape of 0..max_ndim axes of sizes 1..3."""
    nd = int(rng.integers(0, max_ndim + 1))
    return tuple(int(x) for x in rng.choice([1, 2, 3], size=nd))


def random_jac(rng, out_shape, in_shape, unit_ok=True, pair_p=0.5, zeros=0.0):
    """A labelled Jac: random diagonal pairs (each with probability ``pair_p``), random value
    labels, unit (no values, 0/1 or −1) one time in five when ``unit_ok``; a ``zeros`` fraction of the values
    set to exactly 0 (stored entries all the same)."""
    from jacc import structure as S

    m = len(out_shape)
    pair = [-1] * len(in_shape)
    free_out = list(range(m))
    rng.shuffle(free_out)
    for k, s in enumerate(in_shape):
        cands = [j for j in free_out if out_shape[j] == s]
        if cands and rng.random() < pair_p:
            pair[k] = cands[0]
            free_out.remove(cands[0])
    j = S.Jac(out_shape, in_shape, pair)
    if unit_ok and rng.random() < 0.2:  # a 0/1 map, or an exact −1 one (the partial of −x)
        return S.Jac(out_shape, in_shape, pair, neg=True) if rng.random() < 0.5 else j
    vl = [lab for lab in j.labels if rng.random() < 0.7]
    rng.shuffle(vl)
    vals = rng.standard_normal([j.size_of(lab) for lab in vl])
    if zeros:
        vals[rng.random(vals.shape) < zeros] = 0.0
    return S.Jac(out_shape, in_shape, pair, vl, vals)


def random_index(rng, shape):
    """A basic index for ``shape`` in jacc's form: ints, slices (steps ±1, 2) and new axes."""
    index = []
    for n in shape:
        r = rng.random()
        if r < 0.3:
            index.append(["int", int(rng.integers(-n, n))])
        elif r < 0.6:
            a, b = sorted(int(x) for x in rng.integers(0, n + 1, 2))
            step = int(rng.choice([1, 1, 2, -1]))
            index.append(["slice", a if step > 0 else b, (b if step > 0 else a) if a != b else None, step])
        else:
            index.append(["slice", None, None, None])
        if rng.random() < 0.15:
            index.append(["new"])
    return index


def random_selection(rng):
    """(input shape u, a random basic index, the selected shape v)."""
    from jacc.ops import index_to_numpy

    u = tuple(int(x) for x in rng.choice([1, 2, 3, 4], size=int(rng.integers(1, 4))))
    index = random_index(rng, u)
    return u, index, np.empty(u)[index_to_numpy(index)].shape


def hide_module(monkeypatch, top: str) -> None:
    """Make ``import top`` (and its submodules) fail for the rest of the test, as if not installed."""
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == top or name.startswith(top + "."):
            raise ImportError(f"no {top} here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)


def peak_memory(fn):
    """``fn()`` and the peak of the memory Python and NumPy allocated while it ran (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_one_trace_serves(f, x, points, value_rtol):
    """``f``'s trace at ``x`` is not value-dependent and serves every point: its values equal
    ``f``'s (to ``value_rtol``), and ``jacobian(f, retrace=False)``, traced at ``x`` only, agrees
    with central differences and with the interpreted executor at each point."""
    import jacc

    g = jacc.trace(f, x)
    assert not g.meta.get("value_dependent"), g.meta.get("value_dependent")
    for p in points:
        np.testing.assert_allclose(g.evaluate({g.inputs[0]: p})[g.outputs[0]], f(p), rtol=value_rtol, atol=0)
    jf = jacc.jacobian(f, retrace=False)  # the first point's trace, at every point
    ji = jacc.jacobian(f, compile=False)
    jf(x)
    for p in points:
        J = jf(p)
        np.testing.assert_allclose(J, fd_jacobian(f, [p], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(J, ji(p), rtol=1e-13, atol=1e-15)


def assert_later_calls_raise(f, good, bad, error, match, backends=("auto", "numpy", "c")):
    """A call at ``bad`` raises ``error`` (matching ``match``) as ``f``'s trace does there, also when
    earlier calls at ``good`` let later ones skip ``f`` (and under ``retrace=False``); the next call at
    ``good`` gives the first call's Jacobian again."""
    import jacc

    for backend in backends:
        for retrace in (True, False):
            jf = jacc.jacobian(f, backend=backend, retrace=retrace)
            for _ in range(3):
                first = jf(good)
            with pytest.raises(error, match=match):
                jf(bad)
            np.testing.assert_array_equal(jf(good), first)
