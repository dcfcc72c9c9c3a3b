"""backend="c": the scalar route's float code built by the C compiler (jacc.ccode)."""

import ctypes
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacc
from jacc import ccode, examples, suite
from jacc.compile import MATH_NAMES, CompileError
from jacc.ops import ELEMENTWISE, NUMPY_NAMES, UNARY, formula
from jacc.program import BackendError

pytestmark = pytest.mark.skipif(ccode.compiler() is None, reason="no C compiler (cc) on this machine")

FUNCTIONS = {**ccode.LIBM, **{k: f"h_{k}" for k in ccode.HELPERS}}
POINTS = [0.0, -0.0, 0.3, -0.7, 1.0, -1.0, 2.5, -3.25, 1e-9, 40.0, -800.0, 1e300, math.inf, -math.inf, math.nan]


def _formulas():
    """(label, text, parameters) of every op formula the translation writes in C."""
    out = []
    for name, (primal, deriv, _) in UNARY.items():
        out += [(f"{name}", primal, "x")] + ([(f"d{name}", deriv, "x, y")] if deriv else [])
    for name, (primal, rules, params) in ELEMENTWISE.items():
        out.append((name, primal, params))
        out += [(f"d{name}/{i}", r[1], params + ", y") for i, r in enumerate(rules) if r and r[1]]
    kept = []
    for label, text, params in out:
        try:
            ccode.expression(text, FUNCTIONS)
        except CompileError:
            continue
        kept.append((label, text, params))
    return kept


def test_every_translated_formula_gives_numpys_values_at_awkward_points():
    # Each op formula with a C twin, evaluated by C at zeros of both signs, ±1, large, tiny,
    # ±inf and NaN, against the array formula NumPy runs (the executor's): equal, NaN where NumPy
    # says NaN. Where Python's math agrees with NumPy the float code and C agree bit for bit.
    kept = _formulas()
    assert len(kept) >= 100  # the elementary functions: exp … hypot, logaddexp, xlogy, their rules
    args = ["x", "y", "z"]
    body = []
    for k, (_, text, params) in enumerate(kept):
        names = [p.strip() for p in params.split(",")]
        sub = ", ".join(f"const double {ccode.c_name(n)} = in[{i}];" for i, n in enumerate(names))
        body.append(f"    {{ {sub.replace(', const', '; const')} out[{k}] = {ccode.expression(text, FUNCTIONS)}; }}")
    src = ccode.PRELUDE + "void table(const double *in, double *out, double *w)\n{\n" + "\n".join(body) + "\n}\n"
    fn = ccode.build(src, "table")
    out, inp = np.zeros(len(kept)), np.zeros(3)
    exact = 0
    for a in POINTS:
        for b in POINTS[::3]:
            inp[:] = [a, b, 0.7]
            fn(inp.ctypes.data, out.ctypes.data, inp.ctypes.data)
            for k, (label, text, params) in enumerate(kept):
                xs = [inp[i] for i in range(len(params.split(",")))]
                with np.errstate(all="ignore"):
                    ref = float(formula(text, params, NUMPY_NAMES)(*map(np.float64, xs)))
                got = out[k]
                assert (math.isnan(ref) and math.isnan(got)) or got == pytest.approx(ref, rel=1e-13, abs=1e-300), \
                    (label, text, xs, got, ref)
                try:
                    py = float(formula(text, params, MATH_NAMES)(*map(float, xs)))
                except (ValueError, ZeroDivisionError, OverflowError):  # the float code's fallback
                    continue
                if not (math.isnan(py) and math.isnan(got)):
                    assert np.float64(py).tobytes() == np.float64(got).tobytes(), (label, xs, got, py)
                exact += 1
    assert exact > 1000
    del args


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10 ** 6), n_in=st.integers(1, 3), n_inner=st.integers(1, 14), n_out=st.integers(1, 3))
def test_random_graphs_give_the_float_codes_bits(seed, n_in, n_inner, n_out):
    g = examples.random_graph(n_in, n_inner, n_out, seed=seed)
    p = jacc.plan(g, "markowitz")
    fast, native = p.compile("scalar"), p.compile("c")
    assert native.mults == p.mults
    xs = np.random.default_rng(seed + 1).uniform(-1.5, 1.5, n_in).tolist()
    try:
        ref = fast.raw(*xs)
    except (ValueError, ZeroDivisionError, OverflowError):
        ref = {k: float(v) for k, v in p.execute(*xs).items()}
    got = native(*xs)
    assert got.keys() == ref.keys()
    for k in ref:
        assert np.float64(got[k]).tobytes() == np.float64(ref[k]).tobytes() or (
            math.isnan(got[k]) and math.isnan(ref[k])), k


def test_long_code_is_cut_into_functions_that_share_values_through_the_workspace(monkeypatch):
    g = examples.random_graph(3, 40, 3, seed=7)
    p = jacc.plan(g, "reverse")
    xs = [0.3, -0.4, 1.1]
    whole = p.compile("c")
    monkeypatch.setattr(ccode, "CHUNK", 5)
    cut = p.compile("c")
    assert cut.source.count("__attribute__((noinline))") > 5 and "w[" in cut.source
    assert "w[" not in whole.source
    assert cut(*xs) == whole(*xs) == {k: float(v) for k, v in p.compile("scalar").raw(*xs).items()}


@pytest.mark.parametrize("name", ["lecture_f", "lion", "propane", "heart", "roeflux", "robotarm", "blackscholes"])
@pytest.mark.parametrize("retrace", [True, False])
def test_jacobian_with_backend_c_runs_c_and_equals_the_float_code(name, retrace):
    p = suite.get(name, "small")
    inp = p.make_inputs(0)
    args = list(inp.values())
    nums = tuple(range(len(args)))

    def f(*a):
        return p.fn(*a, xp=np)

    jc = jacc.jacobian(f, argnums=nums, backend="c", retrace=retrace)
    js = jacc.jacobian(f, argnums=nums, retrace=retrace)
    jn = jacc.jacobian(f, argnums=nums, backend="numpy")
    for seed in (0, 1):
        xs = list(p.make_inputs(seed).values())
        got, ref, arr = jc(*xs), js(*xs), jn(*xs)
        assert jc.ran == "c"
        for a, b, c in zip(got, ref, arr):
            assert a.shape == c.shape and a.dtype == np.float64
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-14)
            if js.ran == "scalar" and js.plan.order == jc.plan.order:  # the same statements: the same bits
                assert np.array_equal(a, b)


def test_what_c_cannot_write_runs_as_before():
    # gammaln has no C twin here: the float code or the program runs, with the right numbers
    from scipy.special import gammaln

    jf = jacc.jacobian(lambda x: gammaln(x) * np.sin(x), backend="c", retrace=False)
    x = np.array([1.5, 2.5, 3.5])
    J = jf(x)
    assert jf.ran in ("scalar", "numpy")
    h = 1e-6
    fd = [(gammaln(x[i] + h) * np.sin(x[i] + h) - gammaln(x[i] - h) * np.sin(x[i] - h)) / (2 * h) for i in range(3)]
    np.testing.assert_allclose(np.diag(J), fd, rtol=1e-7)
    # a graph of arrays too large for the scalar route runs the NumPy program
    big = jacc.jacobian(lambda x: np.tanh(x).sum(), backend="c", retrace=False)
    big(np.ones(5000))
    assert big.ran == "numpy"


def test_a_missing_compiler_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(BackendError, match="needs a C compiler.*CC"):
        jacc.jacobian(np.sin, backend="c")
    with pytest.raises(CompileError, match="scalars"):
        jacc.plan(examples.single_layer(), "reverse").compile("c")


def test_a_built_library_is_reused_from_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    monkeypatch.setattr(ccode, "_loaded", {})
    p = jacc.plan(examples.lecture_f(), "reverse")
    first = p.compile("c")
    assert len(list((tmp_path / "c").glob("*.so"))) == 1
    monkeypatch.setattr(ccode, "_loaded", {})

    def refuse(*a, **k):
        raise AssertionError("built again")

    monkeypatch.setattr(ccode.subprocess, "run", refuse)
    again = p.compile("c")
    assert again(2.0, 5.0) == first(2.0, 5.0) == pytest.approx({("v5", "x1"): 5.5, ("v5", "x2"): 1.716}, abs=1e-3)
    assert isinstance(again.native.fn, ctypes._CFuncPtr)


def test_the_array_program_gives_way_to_c_once_its_calls_have_paid_for_the_build(monkeypatch, tmp_path):
    # hunt BH: 30 Jacobi sweeps on 5×5: the float code lost the first call's race to the array
    # program (and C, past AUTO_LINES, is not built at a first call), so the program ran for good at
    # 450 µs a call where C takes 50 µs. Now C is built once the calls have taken as long as the build
    import time

    from jacc import unroll

    monkeypatch.setenv("JACC_CACHE", str(tmp_path))

    def f(A, b):
        D = np.diag(A)
        R, x = A - np.diag(D), np.zeros_like(b)
        for _ in range(30):
            x = (b - R @ x) / D
        return x

    slow, call = [True], unroll.Unrolled.__call__

    def timed_slow(self, xs):  # (the float code loses the race, by a margin that C would make up)
        if slow[0]:
            time.sleep(1e-3)
        return call(self, xs)
    monkeypatch.setattr(unroll.Unrolled, "__call__", timed_slow)
    monkeypatch.setattr(ccode, "BUILD_SECONDS_PER_LINE", 1e-8)  # (a build paid for at once)
    rng = np.random.default_rng(0)
    args = [(rng.normal(size=(5, 5)) * 0.3 + 4 * np.eye(5), rng.normal(size=5)) for _ in range(3)]
    want = [jacc.jacobian(f, argnums=(0, 1), backend="interpret")(*a) for a in args]
    jf = jacc.jacobian(f, argnums=(0, 1))
    ran = []
    for k in range(12):
        got = jf(*args[k % 3])
        slow[0] = False
        ran.append(jf.ran)
        for g, w in zip(got, want[k % 3]):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    assert ran[0] == "numpy" and ran[-1] == "c", ran


def test_auto_traced_once_builds_long_float_code_as_c_unless_told_not_to(monkeypatch):
    # the robot arm's float code takes ~15 µs a call, its C ~3 µs: auto keeps C (a 5× margin,
    # against the 1.25× it asks for); JACC_NO_C keeps the compiler out, and retrace=True never
    # calls it (the trace costs far more than the code)
    p = suite.get("robotarm", "small")
    x = list(p.make_inputs(0).values())

    def f(*a):
        return p.fn(*a, xp=np)

    nums = tuple(range(len(x)))
    once = jacc.jacobian(f, argnums=nums, retrace=False)
    ref = once(*x)
    assert once.ran == "c"
    every = jacc.jacobian(f, argnums=nums)
    every(*x)
    assert every.ran == "scalar"
    monkeypatch.setenv("JACC_NO_C", "1")
    floats = jacc.jacobian(f, argnums=nums, retrace=False)
    for a, b in zip(floats(*x), ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert floats.ran == "scalar"


# (jax costs 10 s here, jit measurements included; torch runs the same choice in 4 s)
@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.slow), "torch"])
def test_jax_and_torch_traced_once_run_small_graphs_as_c_where_faster(monkeypatch, backend):
    # a small graph's scalar route is host code under every backend: traced once, its C is kept
    # where it measures faster, as under "auto" (the robot arm: an array graph's scalar route;
    # _long_scalar: an all-scalar graph); JACC_NO_C keeps the float code
    pytest.importorskip(backend)
    p = suite.get("robotarm", "small")
    x = list(p.make_inputs(0).values())
    nums = tuple(range(len(x)))

    def f(*a):
        return p.fn(*a, xp=np)

    ref = jacc.jacobian(f, argnums=nums, compile=False)(*x)
    xs = (0.3, 0.5, 0.7)
    ref_s = jacc.jacobian(_long_scalar, argnums=(0, 1, 2), compile=False)(*xs)
    for no_c in (False, True):
        if no_c:
            monkeypatch.setenv("JACC_NO_C", "1")
        arm = jacc.jacobian(f, argnums=nums, retrace=False, backend=backend)
        sums = jacc.jacobian(_long_scalar, argnums=(0, 1, 2), retrace=False, backend=backend)
        for _ in range(2):
            for a, b in zip(arm(*x), ref):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(sums(*xs), ref_s, rtol=1e-12)
        if no_c:  # (the floats, or under jax the same code jitted where that measured faster)
            assert arm.ran in ("scalar", backend) and sums.ran in ("scalar", backend)
        else:
            assert (arm.ran, sums.ran) == ("c", "c")


def _long_scalar(a, b, c):
    s = 0.0
    for k in range(60):
        s = s + np.sin(a * k + b) * np.exp(-c * k / 60.0) + a * b / (1.0 + c * c + k)
    return s


def test_all_scalar_functions_run_as_c_and_a_changing_constant_builds_nothing_new(monkeypatch, tmp_path):
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    xs = (0.3, 0.5, 0.7)
    ref = jacc.jacobian(_long_scalar, argnums=(0, 1, 2), compile=False)(*xs)
    for backend, retrace in [("c", True), ("c", False), ("auto", False)]:
        jf = jacc.jacobian(_long_scalar, argnums=(0, 1, 2), backend=backend, retrace=retrace)
        for _ in range(2):
            got = jf(*xs)
            assert jf.ran == "c", (backend, retrace)
            np.testing.assert_allclose(got, ref, rtol=1e-12)
    builds = len(list((tmp_path / "c").glob("*.so")))
    scale = [1.0]
    jf = jacc.jacobian(lambda x: np.sin(x) * scale[0] + x ** 3, backend="c")
    for k in range(4):  # the closure's constant differs at every call: the float code, no build
        scale[0] = 1.0 + k
        assert float(jf(0.4)) == pytest.approx(np.cos(0.4) * scale[0] + 3 * 0.4 ** 2, rel=1e-13)
    assert len(list((tmp_path / "c").glob("*.so"))) <= builds + 1


def test_threads_sharing_a_c_jacobian_get_their_own_answers():
    # Native's argument and result buffers are shared: its lock keeps calls apart
    from concurrent.futures import ThreadPoolExecutor

    jf = jacc.jacobian(_long_scalar, argnums=(0, 1, 2), backend="c", retrace=False)
    points = [(0.1 * k, 0.5, 0.2 + 0.01 * k) for k in range(8)]
    want = [np.array(jf(*x)) for x in points]
    assert jf.ran == "c"

    def work(k):
        return all(np.array_equal(np.array(jf(*points[(k + i) % 8])), want[(k + i) % 8]) for i in range(300))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(8)))


def test_code_longer_than_the_bound_is_refused_before_building(monkeypatch):
    p = jacc.plan(examples.random_graph(3, 40, 3, seed=7), "reverse")
    monkeypatch.setattr(ccode.subprocess, "run", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(CompileError, match="lines of scalar code"):
        ccode.compile_native(p, max_lines=3)


def test_the_line_limit_counts_the_entries_returned():
    # tanh(x) * x.sum(): few statements, but every entry of a dense Jacobian is a line of C (400
    # numbers: 160,000 lines, which gcc took a minute to build under backend="auto")
    from jacc.unroll import unroll

    x = np.linspace(-2.0, 2.0, 40)
    g = jacc.trace(lambda x: np.tanh(x) * x.sum(), x)
    u = unroll(g, g.evaluate({"x": x}), "reverse")
    statements = len(u.compiled.flat_parts[1])
    assert statements < 1000 < 40 * 40
    with pytest.raises(CompileError, match="lines of scalar code"):
        u.use_c(1000)


def test_long_arguments_reach_c_as_arrays(monkeypatch):
    # 20 + 20 inputs: copied into C's buffer as arrays (jacc.unroll.ARRAY_INPUTS), no lists made
    from jacc.unroll import ARRAY_INPUTS, Unrolled

    def f(x, y):
        return np.where(x > y, x * y, np.sin(x - y)) + np.floor(x) * y
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert x.size >= ARRAY_INPUTS
    jf = jacc.jacobian(f, argnums=(0, 1), backend="c", retrace=False)
    jf(x, y)
    monkeypatch.setattr(Unrolled, "run_lists", None)  # (a call that made lists would fail)
    ref = jacc.jacobian(f, argnums=(0, 1), backend="interpret")
    for _ in range(3):
        x, y = rng.normal(size=20), rng.normal(size=20) * 2
        for got, want in zip(jf(x, y), ref(x, y)):
            np.testing.assert_array_equal(got, want)
        assert jf.ran == "c"
    x[7] = np.nan  # the finiteness check of arrays: the argument named
    with pytest.raises(ValueError, match="'x'"):
        jf(x, y)
    x[7] = x[8] = 1.5e308  # a sum that overflows is no non-finite entry
    with np.errstate(over="ignore"):
        assert np.isinf(x.sum())
    for got, want in zip(jf(x, y), ref(x, y)):
        np.testing.assert_array_equal(got, want)


def test_optimisation_level_follows_the_length_and_quick_builds(monkeypatch, tmp_path):
    assert [ccode._level("x;\n" * n, False) for n in (10, ccode.O2_LINES + 1, ccode.O1_LINES + 1)] == \
        ["-O2", "-O1", "-O0"]
    assert ccode._level("x;\n", True) == "-O0"
    # "auto" builds its long code at -O0 (the Lorenz system's 73,000 lines: 2.3 s, at -O1 9.3 s);
    # the same source at two levels is two libraries, with the same results
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    monkeypatch.setattr(ccode, "_loaded", {})
    monkeypatch.setattr(ccode, "AUTO_O2_LINES", 3)
    levels, run = [], ccode.subprocess.run

    def recorded(cmd, *a, **k):
        levels.append(next(c for c in cmd if c.startswith("-O")))
        return run(cmd, *a, **k)
    monkeypatch.setattr(ccode.subprocess, "run", recorded)
    p = jacc.plan(examples.random_graph(3, 40, 3, seed=7), "reverse")
    quick, full = ccode.compile_native(p, quick=True), ccode.compile_native(p)
    assert levels == ["-O0", "-O2"] and len(list((tmp_path / "c").glob("*.so"))) == 2
    assert quick(0.3, -0.7, 1.1) == full(0.3, -0.7, 1.1) == p.compile("scalar")(0.3, -0.7, 1.1)


def test_the_library_cache_keeps_the_most_recently_used(tmp_path):
    import os

    from jacc.ccode import _prune

    for k in range(10):
        p = tmp_path / f"{k:02d}.so"
        p.write_bytes(b"")
        os.utime(p, (1_000_000 + k, 1_000_000 + k))
    (tmp_path / "keep.c").write_text("")  # (not a library)
    assert _prune(tmp_path, limit=12) == 0
    assert _prune(tmp_path, limit=8) == 4  # down to 3/4 of the limit: the six most recent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["04.so", "05.so", "06.so", "07.so", "08.so", "09.so",
                                                          "keep.c"]


def test_a_library_nothing_holds_is_unloaded(monkeypatch, tmp_path):
    # a process making a closure per call kept every library it loaded (mapped, with its handle):
    # 300 closures held 300 libraries; a library goes once its last function does
    import gc
    import os
    import weakref

    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    monkeypatch.setattr(ccode, "_loaded", weakref.WeakValueDictionary())

    def mapped() -> int:
        with open("/proc/self/maps") as fh:
            return sum(str(tmp_path) in line for line in fh)

    for i in range(8):
        c = float(i)
        jf = jacc.jacobian(lambda x: np.sin(c * x[0]) * x[1] + c, backend="c")
        np.testing.assert_allclose(jf(np.array([0.5, 2.0])), [c * np.cos(0.5 * c) * 2.0, np.sin(0.5 * c)])
        del jf
        gc.collect()
        assert len(ccode._loaded) <= 1
    assert len(list((tmp_path / "c").glob("*.so"))) == 8
    if os.path.exists("/proc/self/maps"):
        assert mapped() <= 8  # (one library's segments; all eight: 40)


def test_auto_builds_all_but_short_code_quickly(monkeypatch, tmp_path):
    # gcc -O2 took 3.3 s over the 3,800 statements of sin(x) * x.sum() at 57 numbers, a first call
    # of 3.4 s to save 2 µs a call over -O0 (0.17 s); "auto" builds code past 300 statements at -O0
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    levels, run = [], ccode.subprocess.run

    def recorded(cmd, *a, **k):
        levels.append((next(c for c in cmd if c.startswith("-O")), open(cmd[-2]).read().count("\n")))
        return run(cmd, *a, **k)
    monkeypatch.setattr(ccode.subprocess, "run", recorded)
    monkeypatch.setattr(ccode, "WORTH", 0.0)  # (C is tried whatever the float code measures)
    x = np.linspace(0.1, 1.0, 40)
    jf = jacc.jacobian(lambda x: np.sin(x) * x.sum())
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None], rtol=1e-14)
    assert levels and all(level == "-O0" and lines > ccode.AUTO_O2_LINES for level, lines in levels), levels
    levels.clear()
    jf = jacc.jacobian(lambda x: np.sin(x) * x.sum(), backend="c")  # asked for: optimised
    np.testing.assert_allclose(jf(x), np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None], rtol=1e-14)
    assert [level for level, _ in levels] == ["-O2"]


def test_a_library_that_does_not_load_is_built_again(monkeypatch, tmp_path):
    # a .so cut short (a full disk) or removed by another process's pruning raised OSError at every
    # later call (found by a hunt)
    from conftest import in_a_fresh_process

    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    code = ("import jacc; from jacc import examples\n"
            "print(sorted(jacc.plan(examples.lecture_f(), 'reverse').compile('c')(2.0, 5.0).values()))")
    want = in_a_fresh_process(code, check=True).stdout
    for lib in (tmp_path / "c").glob("*.so"):
        lib.write_bytes(b"\x7fELF cut short")
    again = in_a_fresh_process(code)
    assert again.returncode == 0 and again.stdout == want, again.stderr[-500:]


def test_a_library_cut_short_or_of_another_source_is_built_again(monkeypatch, tmp_path):
    # a library cut short past its ELF header killed the process (SIGBUS inside dlopen), and one
    # copied over another's name ran the other function: a silent wrong Jacobian (hunt BG). Each
    # library ends in a seal of its source digest and bytes, checked before it is loaded
    from conftest import in_a_fresh_process

    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    code = ("import jacc, numpy as np\n"
            "jf = jacc.jacobian(lambda x: np.sin({c} * x[0]) * x[1], backend='c')\n"
            "J = jf(np.array([0.5, 2.0]))\n"
            "print(jf.ran, J.tolist())")

    def run(c):
        return in_a_fresh_process(code.format(c=c), check=True).stdout.split(maxsplit=1)

    two, three = run(2.0), run(3.0)
    assert two[0] == three[0] == "c" and two != three
    libs = sorted((tmp_path / "c").glob("*.so"), key=lambda p: p.stat().st_mtime)
    assert len(libs) == 2 and all(p.read_bytes().endswith(ccode._SEAL) for p in libs)
    libs[0].write_bytes(libs[1].read_bytes())  # c = 3's library under c = 2's name
    assert run(2.0) == two
    data = libs[0].read_bytes()
    libs[0].write_bytes(data[:len(data) // 2])  # cut short, its ELF header whole
    assert run(2.0) == two
    assert ccode._sealed(libs[0], libs[0].stem) and not ccode._sealed(libs[0], libs[1].stem)


def test_a_bad_library_in_a_cache_that_cannot_be_changed_is_passed_by(monkeypatch, tmp_path):
    # a read-only cache (shared, or built elsewhere) holding a library that does not load: the
    # unlink meant to clear it raised OSError out of every call (hunt BG); a folder in its place too
    monkeypatch.setenv("JACC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ccode.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(ccode, "_loaded", {})
    p = jacc.plan(examples.lecture_f(), "reverse")
    want = p.compile("c")(2.0, 5.0)
    (lib,) = (tmp_path / "cache" / "c").glob("*.so")
    lib.unlink()
    lib.mkdir()  # (unlink refuses a folder, as a read-only file system refuses any file)
    monkeypatch.setattr(ccode, "_loaded", {})
    assert p.compile("c")(2.0, 5.0) == want
    assert (tmp_path / f"jacc-c-{os.getuid()}" / lib.name).is_file()


def test_a_killed_builds_leftovers_are_removed_later(tmp_path):
    import time

    old = time.time() - 3 * ccode.BUILD_TIMEOUT
    for name in ("part-x1.c", "part-x1.so", "part-new.c", "0123.so"):
        (tmp_path / name).write_bytes(b"")
    for name in ("part-x1.c", "part-x1.so", "0123.so"):
        os.utime(tmp_path / name, (old, old))
    assert ccode._prune(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0123.so", "part-new.c"]


def test_the_temporary_fallback_folder_is_private(monkeypatch, tmp_path):
    # where $JACC_CACHE is not writable, libraries go to $TMPDIR/jacc-c-<uid>: a folder others may
    # write into is not used (a planted library would run as this user; found by a hunt)
    import os

    monkeypatch.setattr(ccode.tempfile, "gettempdir", lambda: str(tmp_path))
    folder = tmp_path / f"jacc-c-{os.getuid()}"
    assert ccode._private_folder(folder) and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)
    assert not ccode._private_folder(folder)


def test_cc_may_carry_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", f"{ccode.shutil.which('cc')} -std=c99")
    assert ccode.compiler().endswith(" -std=c99")
    jf = jacc.jacobian(lambda x: np.sin(x) * x[0], backend="c")
    np.testing.assert_allclose(jf(np.array([0.5, 1.0])), [[np.sin(0.5) + 0.5 * np.cos(0.5), 0.0],
                                                          [np.sin(1.0), np.cos(1.0) * 0.5]])
    assert jf.ran == "c"


def test_float_code_too_long_to_build_at_the_first_call_is_built_once_its_calls_have_paid(monkeypatch, tmp_path):
    """An LSTM of 20 steps ran its scalar route as float code for good (785 µs a call, JAX's 67 µs):
    past ccode.AUTO_LINES the first call builds no C. Its calls now build it once they have taken
    as long as the build would (jacc.api._Once.run_tiered), and keep it where it is faster."""
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    p = suite.get("robotarm", "small")
    x = list(p.make_inputs(0).values())
    nums = tuple(range(len(x)))
    ref = jacc.jacobian(p.fn, argnums=nums, backend="interpret")(*x)
    monkeypatch.setattr(ccode, "AUTO_LINES", 20)  # (its code: several hundred lines)
    monkeypatch.setattr(ccode, "MARGIN", 1e9)  # (C kept whatever it measures)
    monkeypatch.setattr(ccode, "BUILD_SECONDS_PER_LINE", 1e-12)  # (paid at once)
    jf = jacc.jacobian(p.fn, argnums=nums)
    kinds = []
    for _ in range(6):
        for a, b in zip(jf(*x), ref):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        kinds.append(jf.ran)
    assert kinds[0] == "scalar" and kinds[-1] == "c", kinds
    monkeypatch.setattr(ccode, "BUILD_SECONDS_PER_LINE", 1e3)  # (a build that never pays: floats stay)
    jf = jacc.jacobian(p.fn, argnums=nums)
    for _ in range(6):
        jf(*x)
    assert jf.ran == "scalar"


def test_structures_sharing_tiered_code_build_it_once_and_say_what_runs(monkeypatch, tmp_path):
    """Two skips of one structure (a flag alternating) share its scalar code: the second's tier
    built C again, timed C against C and dropped it while the first said "c" (found by a hunt)."""
    monkeypatch.setenv("JACC_CACHE", str(tmp_path))
    monkeypatch.setattr(ccode, "AUTO_LINES", 5)
    monkeypatch.setattr(ccode, "MARGIN", 1e9)
    monkeypatch.setattr(ccode, "BUILD_SECONDS_PER_LINE", 1e-12)
    from jacc.unroll import Unrolled

    builds, use_c = [], Unrolled.use_c

    def counted(self, *a, **k):
        builds.append(1)
        return use_c(self, *a, **k)
    monkeypatch.setattr(Unrolled, "use_c", counted)

    def f(x, exact):  # (the flag changes nothing traced: one structure, a skip per flag value)
        scale = 1.0 if exact else 1.0
        return (np.sin(x) * np.cos(x[::-1]) + x ** 3) * scale
    x = np.linspace(0.1, 1.0, 6)
    jf = jacc.jacobian(f)
    kinds = []
    for k in range(12):
        training = bool(k % 2)
        J = jf(x + 0.01 * k, training)
        xk = x + 0.01 * k
        want = np.diag(np.cos(xk) * np.cos(xk[::-1]) + 3 * xk ** 2) + np.diag(np.sin(xk) * np.sin(xk[::-1]))[:, ::-1] * -1
        np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-15)
        kinds.append(jf.ran)
    # (use_c: refused as too long at the first call, then the one tiered build)
    assert kinds[-4:] == ["c"] * 4 and len(builds) == 2, (kinds, len(builds))
