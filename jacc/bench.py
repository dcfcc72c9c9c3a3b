"""``jacc bench``: plan quality and execution speed on the literature suite (:mod:`jacc.suite`).

For every problem :func:`run` traces the NumPy function, plans it with every strategy and
records, per problem:

* **plan quality** — multiplications of each strategy, the best, its improvement over
  min(forward, reverse, markowitz) in %, whether the best is a proven optimum, planning seconds,
  and AlphaGrad's published improvement for the problems it reports (Lohoff & Neftci 2024);
* **correctness** — every strategy's executed Jacobian against central finite differences of
  the NumPy function (all columns at size ``small``; at size ``full`` only the best plan, along
  random directions, to keep the run short), with the largest difference and a pass flag;
* **execution** (``baselines=True``) — wall time of the best plan's :meth:`~jacc.Plan.execute`
  against ``jax.jacfwd``/``jax.jacrev`` (jitted, CPU, float64) and ``torch.func.jacfwd``/
  ``jacrev`` (float64) on the same function, as ratios measured in the same run, and the
  largest difference between the Jacobians. A missing package or a baseline that would not fit
  in memory is reported as skipped *with its reason*, never silently.

jax, torch and matplotlib are optional (``pip install 'jacc[bench]'``) and only imported when
asked for.

>>> r = run(["lion"], ["forward", "reverse"], progress=False)
>>> r.rows[0]["best_mults"], r.rows[0]["correct"]
(12, True)
"""

from __future__ import annotations

import csv
import datetime
import functools
import inspect
import io
import math
import os
import platform
import statistics
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import allocator, ccode, machine, suite, vecmath
from .compile import CompileError
from .eliminate import Problem
from .fileio import dumps_json
from .plan import Plan
from .plan import plan as make_plan
from .scalarize import element_name
from .strategies import STRATEGIES, lookup
from .strategies.optimal import SearchSizeError
from .trace import trace

__all__ = ["run", "BenchResult", "ALPHAGRAD", "BASELINES"]

#: AlphaGrad's improvement (%) of its best order over min(forward, reverse, Markowitz).
ALPHAGRAD = {"roeflux": 12.0, "robotarm": 20.0, "heart": 14.0, "propane": 2.0, "blackscholes": 11.0}
ALPHAGRAD_SOURCE = ("J. Lohoff, E. Neftci, 'Optimizing automatic differentiation with deep "
                    "reinforcement learning', NeurIPS 2024 (arXiv:2406.05027)")
#: The strategies the improvement is measured against.
REFERENCE = ("forward", "reverse", "markowitz")
#: Execution baselines, in table order.
BASELINES = ("jax_fwd", "jax_rev", "torch_fwd", "torch_rev")
INSTALL_HINT = "pip install 'jacc[bench]'"

RTOL = 1e-5             # finite-difference check: |J - J_fd| <= RTOL * max|J_fd| + ATOL
ATOL = 1e-9
FD_STEP = 6e-6          # ~ eps^(1/3): balances truncation and rounding of central differences
FD_DIRECTIONS = 4       # random directions for the full-size check of the best plan
ANNEAL_PER_VERTEX = 0.4  # seconds of annealing per eliminable vertex (capped by the budget)
ANNEAL_MOVES_PER_VERTEX = 200  # anneal's schedule length here (its default, 400 moves, suits auto's 1 s)
AUTO_SECONDS = 5.0      # time target of a searching strategy without a default
BASELINE_MEMORY = 2e9   # bytes of tangents/cotangents above which a jac{fwd,rev} is skipped
TIME_CAP = 20.0         # seconds of repeats per timed call at most (repeats shrink above it)
MIN_TOTAL = 0.25        # seconds of repeats per timed call at least (fast calls repeat more)

_SEARCH_ORDER = {"optimal": 0, "anneal": 2, "auto": 3}  # searching strategies run last, in this order


# -- problems ------------------------------------------------------------------------------------


def arg_names(problem: suite.Problem) -> list[str]:
    """The problem function's input names, in signature order (``xp`` excluded)."""
    return [n for n, p in inspect.signature(problem.fn).parameters.items()
            if n != "xp" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def trace_problem(problem: suite.Problem, inputs: dict[str, np.ndarray]):
    """Trace ``problem.fn`` at ``inputs``; graph inputs carry the function's parameter names."""
    names = arg_names(problem)
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ValueError(f"problem {problem.name!r}: make_inputs() lacks {missing}")
    return trace(problem.fn, *[inputs[n] for n in names], xp=np)


LEVELS = ("array", "scalar")
SCALAR_MAX_VERTICES = 2000  # larger scalar-level graphs (networks) are benchmarked at array level


class Traced:
    """A problem traced at one level, with the feed for its graph inputs and a way back.

    At level ``"array"`` the graph's inputs are the function's arguments. At level ``"scalar"``
    (the AD literature's graphs: :func:`jacc.trace` with ``scalarize=True``) every input element
    is a scalar input ``x[i]``, ``A[i][j]``, … and every output element a scalar output;
    :meth:`jacobian` reassembles ``{input: array of shape out_shape + in_shape}`` either way.
    Where the scalar level is refused (e.g. linalg, which has no scalar rules) or its graph has
    more than ``SCALAR_MAX_VERTICES`` vertices (the networks: the literature's scalar graphs have
    tens to hundreds), the array level is used and :attr:`note` says why.
    """

    def __init__(self, problem: suite.Problem, inputs: dict[str, np.ndarray], level: str = "array"):
        self.names = arg_names(problem)
        self.out_shape = tuple(problem.out_shape)
        self.level, self.note = "array", None
        g = None
        if level == "scalar":
            try:
                g = trace(problem.fn, *[inputs[n] for n in self.names], xp=np, scalarize=True)
                self.level = "scalar"
            except (ValueError, TypeError, NotImplementedError) as e:
                self.note = f"no scalar-level trace ({e}); traced at array level"
            if g is not None and len(g.nx) > SCALAR_MAX_VERTICES:
                self.note = (f"the scalar-level graph has {len(g.nx):,} vertices (> {SCALAR_MAX_VERTICES:,}); "
                             "traced at array level")
                g, self.level = None, "array"
        if g is None:
            g = trace_problem(problem, inputs)
        self.graph = g
        self.feed: dict[str, np.ndarray] = {}
        self.pieces: dict[str, list[str]] = {}  # input -> its graph inputs, in C order
        self.in_shapes: dict[str, tuple] = {}
        for n in self.names:
            x = np.asarray(inputs[n], dtype=np.float64)
            self.in_shapes[n] = x.shape
            self.pieces[n] = [n] if self.level == "array" else [element_name(n, i) for i in np.ndindex(x.shape)]
            for gi, v in zip(self.pieces[n], [x] if self.level == "array" else x.reshape(-1)):
                if gi not in g.inputs:
                    raise ValueError(f"traced graph has no input {gi!r}; inputs: {g.inputs}")
                self.feed[gi] = v

    def jacobian(self, blocks: dict) -> dict[str, np.ndarray]:
        """``{input name: Jacobian of shape out_shape + input shape}`` from a plan's blocks."""
        g = self.graph
        J = {}
        for n, parts in self.pieces.items():
            if self.level == "array":
                J[n] = np.asarray(blocks[g.outputs[0], n], dtype=np.float64).reshape(
                    self.out_shape + g.shape(n))
                continue
            flat = np.array([[float(blocks[o, gi]) for gi in parts] for o in g.outputs])
            J[n] = flat.reshape(self.out_shape + self.in_shapes[n])
        return J


# -- finite differences ---------------------------------------------------------------------------


def _steps(x: np.ndarray) -> np.ndarray:
    return FD_STEP * np.maximum(1.0, np.abs(x))


def fd_jacobian(problem: suite.Problem, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Central finite differences, one column per input element: ``{input: out_shape + in_shape}``."""
    out = {}
    for name, x in inputs.items():
        x = np.asarray(x, dtype=np.float64)
        h = _steps(x)
        cols = []
        for i in range(x.size):
            xp_, xm = x.copy(), x.copy()
            xp_.flat[i] += h.flat[i]
            xm.flat[i] -= h.flat[i]
            fp = np.asarray(problem.fn(**{**inputs, name: xp_}, xp=np), dtype=np.float64)
            fm = np.asarray(problem.fn(**{**inputs, name: xm}, xp=np), dtype=np.float64)
            cols.append((fp - fm) / (xp_.flat[i] - xm.flat[i]))
        j = np.stack(cols, axis=-1) if cols else np.zeros(problem.out_shape + (0,))
        out[name] = j.reshape(tuple(problem.out_shape) + x.shape)
    return out


def _check_full(problem, inputs, J: dict[str, np.ndarray], seed=0) -> dict:
    """Compare J·v with central differences of f along a few random directions v."""
    rng = np.random.default_rng(seed)
    worst, scale = 0.0, 0.0
    for _ in range(FD_DIRECTIONS):
        v = {n: rng.standard_normal(np.shape(x)) * np.maximum(1.0, np.abs(x)) for n, x in inputs.items()}
        jv = sum(np.tensordot(J[n], v[n], axes=np.ndim(inputs[n])) for n in inputs)
        fp = problem.fn(**{n: x + FD_STEP * v[n] for n, x in inputs.items()}, xp=np)
        fm = problem.fn(**{n: x - FD_STEP * v[n] for n, x in inputs.items()}, xp=np)
        fd = (np.asarray(fp) - np.asarray(fm)) / (2 * FD_STEP)
        worst = max(worst, float(np.max(np.abs(jv - fd), initial=0.0)))
        scale = max(scale, float(np.max(np.abs(fd), initial=0.0)))
    tol = RTOL * scale + ATOL
    return {"reference": f"central FD along {FD_DIRECTIONS} random directions", "max_abs_diff": worst,
            "tol": tol, "ok": bool(np.isfinite(worst) and worst <= tol)}


def _compare(J: dict[str, np.ndarray], fd: dict[str, np.ndarray]) -> dict:
    worst, scale = 0.0, 0.0
    for n, ref in fd.items():
        worst = max(worst, float(np.max(np.abs(J[n] - ref), initial=0.0)))
        scale = max(scale, float(np.max(np.abs(ref), initial=0.0)))
    tol = RTOL * scale + ATOL
    return {"reference": "central FD, every column", "max_abs_diff": worst, "tol": tol,
            "ok": bool(np.isfinite(worst) and worst <= tol)}


# -- baselines ------------------------------------------------------------------------------------


def _load_jax():
    try:
        import jax
        import jax.numpy as jnp
    except Exception as e:  # ImportError, or a broken install
        return None, None, f"jax not installed: {INSTALL_HINT} ({type(e).__name__}: {e})"
    jax.config.update("jax_enable_x64", True)
    # With async CPU dispatch, a small jitted call takes 4 or 40 µs on a 2-core machine depending on
    # whether XLA's worker thread is awake; synchronous dispatch is the steady fast mode.
    try:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    except (AttributeError, KeyError):  # older JAX: no such option
        pass
    return jax, jnp, None


def _load_torch():
    try:
        import torch
        import torch.func  # noqa: F401
    except Exception as e:
        return None, f"torch not installed: {INSTALL_HINT} ({type(e).__name__}: {e})"
    return torch, None


class TorchNamespace:
    """The slice of the NumPy namespace the suite uses, mapped onto torch (float64)."""

    _UNARY = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "sinh", "cosh", "sqrt",
              "square", "abs", "sign", "arctan", "arcsin", "arccos")

    def __init__(self, torch):
        self._t = torch
        for name in self._UNARY:
            setattr(self, name, getattr(torch, name))
        self.float64 = torch.float64
        self.linalg = types.SimpleNamespace(solve=torch.linalg.solve, slogdet=torch.linalg.slogdet,
                                            inv=torch.linalg.inv, det=torch.linalg.det)

    def _as(self, x, like=None):
        t = self._t
        if isinstance(x, t.Tensor):
            return x
        return t.as_tensor(x, dtype=t.float64 if like is None else like.dtype)

    def asarray(self, x, dtype=None):
        return self._as(x)

    def _reduce(self, fn_all, fn_dim, x, axis, keepdims):
        x = self._as(x)
        if axis is None:
            r = fn_all(x)
            return r.reshape((1,) * x.ndim) if keepdims else r
        return fn_dim(x, dim=axis, keepdim=keepdims)

    def sum(self, x, axis=None, keepdims=False):
        return self._reduce(self._t.sum, self._t.sum, x, axis, keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self._reduce(self._t.mean, self._t.mean, x, axis, keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self._reduce(self._t.amax, self._t.amax, x, axis, keepdims)

    def min(self, x, axis=None, keepdims=False):
        return self._reduce(self._t.amin, self._t.amin, x, axis, keepdims)

    def maximum(self, a, b):
        a, b = self._pair(a, b)
        return self._t.maximum(a, b)

    def minimum(self, a, b):
        a, b = self._pair(a, b)
        return self._t.minimum(a, b)

    def where(self, c, a, b):
        a, b = self._pair(a, b)
        return self._t.where(self._as(c) if not isinstance(c, self._t.Tensor) else c, a, b)

    def _pair(self, a, b):
        like = a if isinstance(a, self._t.Tensor) else b if isinstance(b, self._t.Tensor) else None
        return self._as(a, like), self._as(b, like)

    def stack(self, xs, axis=0):
        return self._t.stack([self._as(x) for x in xs], dim=axis)

    def concatenate(self, xs, axis=0):
        return self._t.cat([self._as(x) for x in xs], dim=axis)

    def reshape(self, x, shape):
        return self._as(x).reshape(shape)

    def matmul(self, a, b):
        return self._as(a) @ self._as(b)

    def dot(self, a, b):
        return self.matmul(a, b)

    def power(self, a, b):
        return self._as(a) ** b

    def transpose(self, x, axes=None):
        x = self._as(x)
        return x.permute(*(reversed(range(x.ndim)) if axes is None else axes))

    def trace(self, x):
        return self._t.trace(self._as(x))


def rebind_constants(fn: Callable, convert: Callable[[np.ndarray], Any]) -> Callable:
    """A copy of ``fn`` whose closed-over NumPy arrays (also inside lists, tuples, dicts and
    nested closures) are replaced by ``convert(array)`` — e.g. torch tensors, since torch will not
    mix ``ndarray @ Tensor``."""
    seen: dict[int, Any] = {}

    def conv(obj):
        if isinstance(obj, np.ndarray):
            return convert(obj)
        if isinstance(obj, tuple):
            return tuple(conv(o) for o in obj)
        if isinstance(obj, list):
            return [conv(o) for o in obj]
        if isinstance(obj, dict):
            return {k: conv(v) for k, v in obj.items()}
        if isinstance(obj, types.FunctionType) and obj.__closure__:
            return func(obj)
        return obj

    def func(f):
        if id(f) in seen:
            return seen[id(f)]
        cells = []
        for c in f.__closure__ or ():
            try:
                cells.append(types.CellType(conv(c.cell_contents)))
            except ValueError:  # an empty cell
                cells.append(types.CellType())
        g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                               tuple(cells) if f.__closure__ else None)
        g.__kwdefaults__ = f.__kwdefaults__
        seen[id(f)] = g
        return g

    return func(fn)


#: rounds in which the timed columns of one problem take turns, each column's calls split evenly
#: between them: on a shared machine whose speed drifts by 2× over tens of seconds, columns timed
#: one after another compared different machines (lecture_f's ratio to JAX read 1.69× in one stop's
#: run and 0.81× in the next's first)
ROUNDS = 10


class _Timing:
    """One column's timed calls, run in turns with the problem's other columns (:class:`_Turns`);
    its median (``seconds``) is known once they have run."""

    def __init__(self, fn: Callable[[], Any], n: int):
        self.fn, self.n, self.times = fn, n, []
        self.error: Exception | None = None  # a timed call raised: the column reports that, not a time

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)


@dataclass
class _Quotient:
    """``a / b`` of two timings, one of them a :class:`_Timing` yet to run (see :func:`_resolved`)."""

    a: Any
    b: Any


@dataclass
class _Late:
    """What a column reports once its timed calls have run (``fn()``: e.g. the route a Jacobian
    took, which may change to C during them)."""

    fn: Callable[[], Any]


class _Failed(Exception):
    """A timing whose calls raised (its :attr:`_Timing.error`)."""


class _Turns:
    """The timed columns of one problem: registered by :func:`_median_time` while :data:`_TURNS`
    holds this, then run by :meth:`run` in :data:`ROUNDS` alternating rounds."""

    def __init__(self):
        self.columns: list[_Timing] = []

    def run(self, rounds: int = ROUNDS) -> Any:
        """Run the rounds; the last call's result (each column's is let go at once, as it may be a
        large Jacobian)."""
        out = None
        for r in range(rounds):
            for c in self.columns:
                for _ in range(c.n * (r + 1) // rounds - c.n * r // rounds):
                    if c.error is not None:
                        break
                    out = None
                    t = time.perf_counter()
                    try:
                        out = c.fn()
                    except Exception as e:  # report, do not hide (and the other columns go on)
                        c.error = e
                        break
                    c.times.append(time.perf_counter() - t)
        self.columns = []  # (the functions and what they hold go)
        return out


_TURNS: list[_Turns | None] = [None]


def _over(a: Any, b: Any) -> Any:
    """``a / b`` (inf for ``b`` = 0), or the :class:`_Quotient` of timings still to run."""
    if isinstance(a, _Timing) or isinstance(b, _Timing):
        return _Quotient(a, b)
    return a / b if b > 0 else float("inf")


def _value(v: Any) -> Any:
    """A timing's median, a quotient's or a late report's value, or ``v``; :class:`_Failed` for a
    timing whose calls raised."""
    if isinstance(v, _Timing):
        if v.error is not None:
            raise _Failed(f"{type(v.error).__name__}: {v.error}")
        return v.seconds
    if isinstance(v, _Quotient):
        return _over(_value(v.a), _value(v.b))
    return v.fn() if isinstance(v, _Late) else v


def _resolved(d: Any) -> Any:
    """``d`` with every :class:`_Timing`, :class:`_Quotient` and :class:`_Late` replaced by its value
    (dicts changed in place, recursively). A column whose own timed calls raised becomes
    ``{"error": …}``, as one that raised at once; a quotient of such a timing is dropped."""
    if not isinstance(d, dict):
        return _value(d)
    for k in list(d):
        v = d[k]
        if isinstance(v, dict):
            _resolved(v)
            continue
        try:
            d[k] = _value(v)
        except _Failed as e:
            if isinstance(v, _Timing):
                d.clear()
                d["error"] = str(e)
                return d
            del d[k]
    return d


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, int, float, Any]:
    """(median seconds after one warm-up, repeats done, warm-up seconds, last result).

    The repeat count is set by a second call, not the warm-up, which may compile: calls faster
    than ``MIN_TOTAL / repeats`` are repeated until about ``MIN_TOTAL`` seconds (at most 1,000
    times), calls slower than ``TIME_CAP / repeats`` fewer times (at least once). Every column
    (jacc and baselines alike) is timed this way. While :data:`_TURNS` holds a :class:`_Turns`,
    the repeats wait for its rounds, and the median returned is their :class:`_Timing`.
    """
    t = time.perf_counter()
    out = fn()
    warm = time.perf_counter() - t
    t = time.perf_counter()
    out = fn()
    per = time.perf_counter() - t
    n = repeats
    if per > 0:
        n = max(n, min(1000, int(MIN_TOTAL / per)))
        n = max(1, min(n, int(TIME_CAP / per)))
    timing = _Timing(fn, n)
    turns = _TURNS[0]
    if turns is not None:
        turns.columns.append(timing)
        return timing, n, warm, out
    turns = _Turns()
    turns.columns.append(timing)
    out = turns.run(1)
    if timing.error is not None:  # (timed at once: the caller's own handler sees the error, as before turns)
        raise timing.error
    return timing.seconds, n, warm, out


def _max_diff(J: dict[str, np.ndarray], names, jac: Sequence[Any]) -> float:
    return max(float(np.max(np.abs(J[n] - np.asarray(j, dtype=np.float64)), initial=0.0))
               for n, j in zip(names, jac))


def _graph_sizes(graph) -> tuple[int, int]:
    """(largest vertex size, total scalar size of all vertices)."""
    sizes = [math.prod(graph.shape(v)) for v in graph.nx.nodes]
    return max(sizes, default=1), sum(sizes)


def _memory_skip(kind: str, n_dir: int, largest: int) -> str | None:
    need = 8.0 * n_dir * largest
    if need <= BASELINE_MEMORY:
        return None
    what = "tangents" if kind == "fwd" else "cotangents"
    return (f"skipped: {n_dir:,} {what} through a {largest:,}-element intermediate need "
            f"~{need / 1e9:.1f} GB (> {BASELINE_MEMORY / 1e9:.0f} GB limit)")


_XLA_SKIP = "skipped: XLA's buffers"


def _xla_memory_skip(kind: str, jitted, args) -> tuple[str | None, float]:
    """The reason to skip a jitted JAX baseline whose compiled buffers (XLA's own count: temporaries
    and result) exceed :data:`BASELINE_MEMORY`, else None; and the seconds its tracing and
    compiling took, which the first call then does not repeat (so they count in its time). The
    graph's largest vertex misses what XLA holds at once: ``jax.jacfwd`` of the suite's matrix
    functions at N = 120 needs 5.0 GB, three times the estimate, and the run peaked at 16.7 GB
    with PyTorch's twin beside it."""
    t0 = time.perf_counter()
    try:
        m = jitted.lower(*args).compile().memory_analysis()
        need = m.temp_size_in_bytes + m.output_size_in_bytes
    except Exception:  # (no analysis on this backend or version: the estimate stands)
        return None, time.perf_counter() - t0
    took = time.perf_counter() - t0
    if need <= BASELINE_MEMORY:
        return None, took
    return f"{_XLA_SKIP} for jax.jac{kind} need {need / 1e9:.1f} GB (> {BASELINE_MEMORY / 1e9:.0f} GB limit)", took


def _run_baselines(problem, inputs, names, J, graph, repeats, jacc_s) -> dict:
    res: dict[str, dict] = {}
    largest, _ = _graph_sizes(graph)
    n_in, n_out = problem.n_in, problem.n_out
    argnums = tuple(range(len(names)))

    jax, jnp, why = _load_jax()
    if jax is None:
        res["jax_fwd"] = res["jax_rev"] = {"skipped": why}
    else:
        def fj(*a):
            return problem.fn(**dict(zip(names, a)), xp=jnp)

        args = [jnp.asarray(inputs[n]) for n in names]
        for kind, jac in (("fwd", jax.jacfwd), ("rev", jax.jacrev)):
            key = f"jax_{kind}"
            skip = _memory_skip(kind, n_in if kind == "fwd" else n_out, largest)
            if skip:
                res[key] = {"skipped": skip}
                continue
            jf = jax.jit(jac(fj, argnums=argnums))
            skip, compiling = _xla_memory_skip(kind, jf, args)
            if skip:
                res[key] = {"skipped": skip}
                continue
            try:
                med, n, warm, out = _median_time(lambda jf=jf: jax.block_until_ready(jf(*args)), repeats)
            except Exception as e:
                res[key] = {"error": f"{type(e).__name__}: {e}"}
                continue
            res[key] = {"seconds": med, "repeats": n, "first_call_seconds": compiling + warm,
                        "max_diff": _max_diff(J, names, out)}

    torch, why = _load_torch()
    if torch is None:
        res["torch_fwd"] = res["torch_rev"] = {"skipped": why}
    else:
        ns = TorchNamespace(torch)
        fn_t = rebind_constants(problem.fn, lambda a: torch.as_tensor(a, dtype=torch.float64))

        def ft(*a):
            return fn_t(**dict(zip(names, a)), xp=ns)

        targs = [torch.as_tensor(np.asarray(inputs[n], dtype=np.float64)) for n in names]
        for kind, jac in (("fwd", torch.func.jacfwd), ("rev", torch.func.jacrev)):
            key = f"torch_{kind}"
            skip = _memory_skip(kind, n_in if kind == "fwd" else n_out, largest)
            jax_skip = res.get(f"jax_{kind}", {}).get("skipped", "")
            if not skip and jax_skip.startswith(_XLA_SKIP):  # the same tangents or cotangents, batched alike
                skip = f"skipped, as jax {kind}: {jax_skip.removeprefix('skipped: ')}"
            if skip:
                res[key] = {"skipped": skip}
                continue
            jf = jac(ft, argnums=argnums)

            def call(jf=jf):  # (its calls may run later, in turns with other columns': no_grad per call)
                with torch.no_grad():
                    return jf(*targs)
            try:
                med, n, warm, out = _median_time(call, repeats)
            except Exception as e:
                res[key] = {"error": f"{type(e).__name__}: {e}"}
                continue
            res[key] = {"seconds": med, "repeats": n, "first_call_seconds": warm,
                        "max_diff": _max_diff(J, names, [o.detach().numpy() for o in out])}

    for r in res.values():
        if "seconds" in r:
            r["ratio"] = _over(r["seconds"], jacc_s)
    return res


def _quietest_cpus(cpus: list[int], n: int, wait: float = 0.2) -> list[int]:
    """The ``n`` CPUs of ``cpus`` that were idle the longest over ``wait`` seconds (Linux)."""
    def idle() -> dict[int, int]:
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0].startswith("cpu") and parts[0] != "cpu":
                    out[int(parts[0][3:])] = int(parts[4]) + int(parts[5])  # idle + iowait
        return out

    try:
        a = idle()
        time.sleep(wait)
        b = idle()
        return sorted(cpus, key=lambda c: -(b.get(c, 0) - a.get(c, 0)))[:n]
    except (OSError, ValueError, IndexError):
        return cpus[:n]


class _Threads:
    """Run numpy's BLAS (via threadpoolctl), torch and XLA on ``n`` threads; restore after.

    XLA (jax ≥ 0.4.30) has no working thread-count flag, so with baselines the process is pinned
    to the ``n`` quietest CPUs (``os.sched_setaffinity``) while the run lasts; threads XLA
    creates meanwhile stay on them. What was applied is recorded in ``meta['threads']``.
    """

    def __init__(self, n: int | None, baselines: bool):
        self.n, self.baselines, self.applied, self._undo = n, baselines, {}, []

    def __enter__(self):
        if self.n is None:
            self.applied["policy"] = "library defaults"
            return self
        n = self.n
        self.applied["policy"] = f"{n} thread(s) for numpy's BLAS, torch and XLA"
        try:
            from threadpoolctl import threadpool_limits
            lim = threadpool_limits(limits=n)
            self._undo.append(lim.restore_original_limits)
            self.applied["numpy BLAS"] = n
        except ImportError:
            self.applied["numpy BLAS"] = "not limited (pip install threadpoolctl)"
        if self.baselines:
            torch, _ = _load_torch()
            if torch is not None:
                before = torch.get_num_threads()
                torch.set_num_threads(n)
                self._undo.append(lambda: torch.set_num_threads(before))
                self.applied["torch"] = n
            if hasattr(os, "sched_setaffinity"):
                allowed = sorted(os.sched_getaffinity(0))
                if n < len(allowed):
                    cpus = _quietest_cpus(allowed, n)
                    os.sched_setaffinity(0, cpus)
                    self._undo.append(lambda: os.sched_setaffinity(0, allowed))
                    self.applied["pinned to CPUs"] = cpus
                    if sys.modules.get("jax") is not None:
                        self.applied["jax"] = "not limited (jax was imported before the run)"
            else:
                self.applied["jax"] = "not limited (no sched_setaffinity on this platform)"
        return self

    def __exit__(self, *exc):
        for f in reversed(self._undo):
            f()
        return False


#: ``jacc.jacobian`` backends the execution table can time; ``-once`` is ``retrace=False``. ``auto``
#: is jacobian's defaults (backend and strategy ``"auto"``: what a user gets, the scalar route of
#: small graphs included) and ``jax`` the same with ``backend="jax"``; ``numpy`` and ``interpret``
#: run the best plan's order; ``c`` is the defaults with ``backend="c"`` (scalar code built by the C
#: compiler where the scalar route applies, else the NumPy program). ``jax-arrays-once`` is
#: ``jax-once`` called as the JAX baselines are, with ``jax.Array`` arguments (the Jacobian then
#: stays on JAX's device: timed until it is ready).
TIMED_BACKENDS = ("auto", "numpy", "jax", "torch", "c", "interpret", "auto-once", "numpy-once", "jax-once",
                  "torch-once", "c-once", "jax-arrays-once")


def _time_backend(problem, inputs, names, best: Plan, backend: str, repeats: int, J_ref: dict) -> dict:
    """Median wall time of a whole ``jacc.jacobian(..., backend=…)`` call (trace, compiled plan,
    result), after a first call that plans and lowers: with strategy ``"auto"`` for ``auto``, ``jax``
    and ``torch`` (what a user calling ``jacobian`` gets), with the best plan's order for ``numpy``
    and ``interpret``. A ``-once`` backend is the same with ``retrace=False`` (the compiled program
    alone, primal included)."""
    from .api import jacobian
    from .program import BackendError

    f = functools.partial(problem.fn, xp=np)
    args = [inputs[n] for n in names]
    nums = tuple(range(len(args)))
    name, _, once = backend.partition("-")
    ready = None
    if "arrays" in once:  # jax.Array arguments, as the JAX baselines get them
        jax, jnp, why = _load_jax()
        if jax is None:
            return {"skipped": why}
        args, ready = [jnp.asarray(a) for a in args], jax.block_until_ready
    try:
        strategy = "auto" if name in ("auto", "jax", "torch", "c") else list(best.order)
        jf = jacobian(f, argnums=nums, strategy=strategy, backend=name, retrace=not once)
        t = time.perf_counter()
        jf(*args)
        first = time.perf_counter() - t
        med, n, _, out = _median_time((lambda: ready(jf(*args))) if ready else (lambda: jf(*args)), repeats)
    except BackendError as e:
        return {"skipped": str(e)}
    except Exception as e:  # report, do not hide
        return {"error": f"{type(e).__name__}: {e}"}
    found = {"seconds": med, "repeats": n, "first_call_seconds": first, "ran": _Late(lambda: jf.ran),  # (after
            # its timed calls: a structure's code may be built as C during them)
            "strategy": _Late(lambda: jf.plan.strategy + (" scalar" if jf.ran in ("scalar", "c") and name != "numpy"
                                                          else "")),
            "mults": _Late(lambda: jf.plan.mults), "max_diff": _max_diff(J_ref, names, list(out))}
    return found if _TURNS[0] is not None else _resolved(found)


def _time_compiled(plan: Plan, tr: "Traced", repeats: int, ex: dict, backend: str = "scalar") -> dict:
    """Time :meth:`Plan.compile` (straight-line code for all-scalar graphs, as Python floats or,
    with ``backend="c"``, built as C) where it applies."""
    try:
        f = plan.compile(backend)
    except CompileError as e:  # array vertices or an op without a scalar formula (or a C twin)
        return {"skipped": f"{type(e).__name__}: {str(e).split(' (')[0]}"}
    args = [float(tr.feed[n]) for n in tr.graph.inputs]
    med, n, warm, out = _median_time(lambda: f(*args), repeats)
    J = tr.jacobian({k: np.asarray(v) for k, v in out.items()})
    ref = tr.jacobian(plan.execute(**tr.feed))
    return {"seconds": med, "repeats": n, "first_call_seconds": warm,
            "max_diff_vs_execute": max(float(np.max(np.abs(J[k] - ref[k]), initial=0.0)) for k in J)}


def _time_scalar_call(p: suite.Problem, inputs: dict, names: list[str], plan: Plan, repeats: int) -> dict:
    """A whole ``jacobian(f, retrace=False)(x1, x2, …)`` call with Python floats against the plan's
    compiled scalar function alone (issue: a whole call within 3× of the compiled function)."""
    try:
        compiled = plan.compile("scalar")
    except CompileError as e:
        return {"skipped": f"{type(e).__name__}: {str(e).split(' (')[0]}"}
    from .api import jacobian

    xs = [float(inputs[n]) for n in names]
    jf = jacobian(p.fn, argnums=tuple(range(len(xs))), strategy=plan.order, retrace=False)
    jf(*xs)
    med, n, _, _ = _median_time(lambda: jf(*xs), repeats)
    cmed, _, _, _ = _median_time(lambda: compiled(*xs), repeats)
    return {"seconds": med, "repeats": n, "compiled_seconds": cmed, "ratio": _over(med, cmed)}


# -- the run --------------------------------------------------------------------------------------


def _accepts(name: str) -> dict[str, Any]:
    """The keyword options strategy ``name`` takes, with their defaults."""
    try:
        params = inspect.signature(lookup(name)).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}


def _searches(name: str) -> bool:
    return "time_limit" in _accepts(name)


def _options(name: str, n_elim: int, budget: float, spent: float, searches_left: int) -> dict:
    """Options for one strategy: a share of what is left of the per-problem budget."""
    acc = _accepts(name)
    opts: dict[str, Any] = {}
    if "time_limit" in acc:
        remaining = max(budget - spent, 0.05)
        if name == "optimal":
            share = 0.5 * remaining
        elif name == "anneal":
            share = min(ANNEAL_PER_VERTEX * max(n_elim, 1), 0.8 * remaining)
            opts["max_iters"] = ANNEAL_MOVES_PER_VERTEX * max(n_elim, 1)
        else:
            default = acc["time_limit"] if isinstance(acc["time_limit"], (int, float)) else AUTO_SECONDS
            share = min(float(default), remaining / max(searches_left, 1))
        opts["time_limit"] = max(0.05, share)
    if "seed" in acc:
        opts["seed"] = 0
    if "progress" in acc:
        opts["progress"] = False
    return opts


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.width, self.k = enabled, total, 0, 0

    def show(self, k: int, problem: str, what: str) -> None:
        if not self.enabled:
            return
        n = int(24 * k / max(self.total, 1))
        text = f"bench [{'#' * n}{'.' * (24 - n)}] {k}/{self.total} {problem}: {what}"
        self.width = max(self.width, len(text))
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()

    def tick(self, problem: str, what: str) -> None:
        self.show(self.k, problem, what)
        self.k += 1

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _versions(baselines: bool) -> dict:
    v = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        from . import __version__ as jv
        v["jacc"] = jv
    except ImportError:  # pragma: no cover
        pass
    if baselines:
        jax, _, why = _load_jax()
        v["jax"] = why if jax is None else jax.__version__ + (
            "" if getattr(jax.config, "jax_cpu_enable_async_dispatch", True) else " (synchronous CPU dispatch)")
        torch, why = _load_torch()
        v["torch"] = torch.__version__ if torch else why
    return v


def run(problems: Sequence[str] | None = None, strategies: Sequence[str] | None = None, *,
        size: str = "small", baselines: bool = False, budget: float = 60.0, repeats: int = 5,
        out: str | os.PathLike | None = None, progress: bool | None = None,
        threads: int | None = 1, level: str = "array",
        backends: Sequence[str] | None = None) -> "BenchResult":
    """Benchmark ``strategies`` (default: all registered) on suite ``problems`` (default: all).

    ``budget`` bounds the search seconds per problem. Strategies that take a ``time_limit`` run
    after the others: ``optimal`` gets half of what is left, ``anneal`` ``ANNEAL_MOVES_PER_VERTEX``
    moves per eliminable vertex capped at ``ANNEAL_PER_VERTEX`` s each (at most 80 % of what is
    left), any other (``window``, ``auto``) its
    own default time limit, at most an equal share of what is left; the Markowitz reference of
    min(forward, reverse, Markowitz), when ``markowitz`` is not run, has the whole budget (a note says
    where it stopped early). ``repeats`` timed runs follow one warm-up
    (fewer when one call exceeds ``TIME_CAP / repeats`` s). ``out``: a path rewritten with the
    JSON results after every problem (a checkpoint of long runs). ``progress``: a one-line
    progress display on stderr (default: when stderr is a terminal). ``threads``: numpy's BLAS,
    torch and XLA run with this many threads during the run (``None``: library defaults); one
    thread keeps timings comparable and stable on a shared machine. ``level``: ``"array"`` traces
    the functions as written; ``"scalar"`` traces the AD literature's scalar graphs (vector inputs
    split into scalars, stacked scalar outputs split; see :class:`Traced`) where possible.
    ``backends``: the :func:`jacc.jacobian` backends timed with ``baselines`` (default: ``auto``
    and ``auto-once``, the jax and torch pairs and ``jax-arrays-once`` when installed and ``c-once``
    where there is a C compiler; see :data:`TIMED_BACKENDS`);
    each is the whole user-facing call (trace, compiled plan, result)
    with the best plan's order, at level ``"array"``.
    """
    names = list(suite.names()) if problems is None else [p.lower() for p in problems]
    unknown = [p for p in names if p not in suite.PROBLEMS]
    if unknown:
        raise ValueError(f"unknown problem(s) {unknown}; known: {', '.join(suite.names())}")
    if strategies is None:
        strats = list(REFERENCE) + [s for s in STRATEGIES if s not in REFERENCE]
    else:
        strats = [s.lower() for s in strategies]
    for s in strats:
        lookup(s)  # raises UnknownStrategyError listing the valid names
    if not strats:
        raise ValueError("no strategies to run")
    if size not in suite.SIZES:
        raise ValueError(f"size must be one of {suite.SIZES}, got {size!r}")
    if not budget > 0:
        raise ValueError(f"budget must be a positive number of seconds, not {budget!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, not {repeats!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    if backends is None:
        backends = (["auto", "auto-once"]
                    + (["jax", "jax-once", "jax-arrays-once"] if baselines and _load_jax()[0] is not None else [])
                    + (["torch", "torch-once"] if baselines and _load_torch()[0] is not None else [])
                    + (["c-once"] if baselines and ccode.compiler() is not None else []))
    backends = [b.lower() for b in backends]
    bad = [b for b in backends if b not in TIMED_BACKENDS]
    if bad:
        raise ValueError(f"unknown backend(s) {bad}; choose from {', '.join(TIMED_BACKENDS)}")

    allocator.tune()  # before anything is timed, so the baselines run under the same malloc settings
    with _Threads(threads, baselines) as th:
        return _run(names, strats, size, baselines, budget, repeats, out, progress, level, th.applied,
                    backends)


def _run(names, strats, size, baselines, budget, repeats, out, progress, level, threads,
         backends=("auto",)) -> "BenchResult":
    result = BenchResult([], size=size, strategies=strats, baselines=baselines, meta={
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": machine.cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "blas": machine.blas_summary(), "blas_advice": machine.blas_advice(), "vector_math": vecmath.summary(),
        "versions": _versions(baselines), "size": size, "level": level, "budget_s": budget, "repeats": repeats,
        "rtol": RTOL, "threads": threads, "alphagrad_source": ALPHAGRAD_SOURCE, "backends": list(backends),
        "malloc": "jacc.allocator: heap only, trim 512 MiB" if allocator.tuned() else "system defaults"})
    per_problem = len(strats) + 2 + (1 if baselines else 0)  # trace, strategies, check, timing
    bar = _Progress(sys.stderr.isatty() if progress is None else bool(progress), len(names) * per_problem)
    t_run = time.perf_counter()
    for pname in names:
        row = _bench_problem(pname, strats, size, baselines, budget, repeats,
                             lambda what, pname=pname: bar.tick(pname, what), level, backends)
        result.rows.append(row)
        if out is not None:
            with open(out, "w") as f:
                f.write(result.format("json"))
    bar.show(bar.total, "all", "done")
    bar.done()
    result.meta["wall_seconds"] = time.perf_counter() - t_run
    return result


def _time_columns(p: suite.Problem, inputs: dict, tr: "Traced", g, best: Plan, best_s: str, feed: dict,
                  backends: Sequence[str], repeats: int, ex: dict) -> None:
    """Warm up every execution column of problem ``p`` into ``ex`` (their repeats wait for the
    problem's turns, see :class:`_Turns`)."""
    med, n, warm, blocks = _median_time(lambda: best.execute(**feed), repeats)
    ex["jacc_interpret"] = {"seconds": med, "repeats": n, "first_call_seconds": warm}
    J_ref = tr.jacobian(blocks)
    for b in backends:
        ex[f"jacc_{b}"] = (_time_backend(p, inputs, tr.names, best, b, repeats, J_ref) if tr.level == "array"
                           else {"skipped": "jacobian backends are timed at level array"})
    main = next((ex[k] for k in ("jacc_auto", "jacc_numpy") if "seconds" in ex.get(k, {})), None)
    # (neither timed: the executor stands in, its plan cell marked so — the column was read as jacobian's)
    ex["jacc"] = dict(main) if main is not None else dict(ex["jacc_interpret"], strategy=best_s, executor=True)
    ex.update(_run_baselines(p, inputs, tr.names, J_ref, g, repeats, ex["jacc"]["seconds"]))
    ex["jacc_compiled"] = _time_compiled(best, tr, repeats, ex) if tr.level == "scalar" else {}
    ex["jacc_c_compiled"] = (_time_compiled(best, tr, repeats, ex, "c")
                             if tr.level == "scalar" and ccode.compiler() is not None else {})
    if tr.level == "array" and all(np.ndim(inputs[n]) == 0 for n in tr.names):
        ex["scalar_call"] = _time_scalar_call(p, inputs, tr.names, best, repeats)
    if p.hand is not None and tr.level == "array":  # the practical limit: hand-written optimal NumPy
        hmed, hn, _, hJ = _median_time(lambda: p.hand(**inputs), repeats)
        ex["hand_numpy"] = {"seconds": hmed, "repeats": hn, "max_diff": _max_diff(J_ref, tr.names,
                            [hJ[n] for n in tr.names]), "jacobian_over_hand": _over(ex["jacc"]["seconds"], hmed)}


def _bench_problem(pname, strats, size, baselines, budget, repeats, show, level="array",
                   backends=("auto",)) -> dict:
    p = suite.get(pname, size)
    inputs = {k: np.asarray(v, dtype=np.float64) for k, v in p.make_inputs(0).items()}
    row: dict[str, Any] = {"problem": pname, "size": size, "n_in": p.n_in, "n_out": p.n_out,
                           "citation": p.citation, "notes": [], "mults": {}, "plan_seconds": {},
                           "proven_optimal": {}, "chose": {}, "skipped": {}, "errors": {}, "checks": {}}
    show("trace")
    t = time.perf_counter()
    try:
        tr = Traced(p, inputs, level)
    except Exception as e:  # report, do not hide
        row["errors"]["trace"] = f"{type(e).__name__}: {e}"
        row["correct"] = False
        return row
    row["trace_seconds"] = time.perf_counter() - t
    g, feed = tr.graph, tr.feed
    row["level"] = tr.level
    if tr.note:
        row["notes"].append(tr.note)
    if g.meta.get("value_dependent"):
        row["notes"].append(f"trace is value-dependent: {g.meta['value_dependent']}")
    prob = Problem.from_graph(g)
    row["eliminable"] = n_elim = len(prob.eliminable)

    plans: dict[str, Plan] = {}
    spent = 0.0
    ordered = sorted(strats, key=lambda s: (_searches(s), _SEARCH_ORDER.get(s, 1)))
    for k, s in enumerate(ordered):
        show(s)
        opts = _options(s, n_elim, budget, spent, sum(_searches(x) for x in ordered[k:]))
        t = time.perf_counter()
        try:
            pl = make_plan(g, s, **opts)
        except SearchSizeError:
            limit = opts.get("max_vertices", _accepts(s).get("max_vertices", "its limit"))
            row["skipped"][s] = (f"SearchSizeError: {n_elim} eliminable vertices > max_vertices={limit} "
                                 "(the exact search visits up to 2^n sets)")
            continue
        except Exception as e:
            row["errors"][s] = f"{type(e).__name__}: {e}"
            continue
        finally:
            spent += time.perf_counter() - t
        plans[s] = pl
        row["mults"][s] = pl.mults
        row["plan_seconds"][s] = pl.planning_seconds
        row["proven_optimal"][s] = pl.optimal
        if pl.strategy != s:
            row["chose"][s] = pl.strategy
        if pl.info.get("stopped early"):
            row["notes"].append(f"{s}: {pl.info['stopped early']}")
    row["search_seconds"] = spent

    # reference: min(forward, reverse, markowitz) — priced even when not among the strategies run
    any_plan = next(iter(plans.values()), None)
    ref = {}
    if any_plan is not None:
        ref = {"forward": any_plan.forward_mults, "reverse": any_plan.reverse_mults}
        if "markowitz" in plans:
            ref["markowitz"] = row["mults"]["markowitz"]
        else:  # (within the problem's budget: greedy pricing of long loops takes minutes)
            mkw = make_plan(g, "markowitz", time_limit=budget)
            ref["markowitz"] = mkw.mults
            if mkw.info.get("stopped early"):
                row["notes"].append(f"markowitz (reference): {mkw.info['stopped early']}")
    row["reference_mults"] = ref
    row["baseline_mults"] = base = min(ref.values()) if ref else None
    if plans:
        best_s = min(plans, key=lambda s: (plans[s].mults, plans[s].peak_bytes, strats.index(s)))  # ties: less memory
        best = plans[best_s]
        row["best_strategy"], row["best_mults"] = best_s, best.mults
        row["improvement_pct"] = 100.0 * (base - best.mults) / base if base else 0.0
        row["optimal"] = (True if any(pl.optimal is True for pl in plans.values())
                          else False if "optimal" in plans else None)
        # the best proven lower bound: an optimum's cost, or what a stopped exact search proved
        bounds = [pl.mults for pl in plans.values() if pl.optimal] + [
            pl.info["lower bound"] for pl in plans.values() if isinstance(pl.info.get("lower bound"), int)]
        row["lower_bound"] = max(bounds) if bounds else None
        if row["lower_bound"] == best.mults:  # the best order meets a proven bound: it is optimal
            row["optimal"] = True
    else:
        best_s = best = None
        row["best_strategy"] = row["best_mults"] = row["improvement_pct"] = row["optimal"] = None
        row["lower_bound"] = None
    row["alphagrad_pct"] = ALPHAGRAD.get(pname)

    # correctness
    show("checking")
    best_J = None
    if size == "small":
        fd = fd_jacobian(p, inputs)
        for s, pl in plans.items():
            try:
                J = tr.jacobian(pl.execute(**feed))
            except Exception as e:
                row["checks"][s] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                continue
            if s == best_s:
                best_J = J
            row["checks"][s] = _compare(J, fd)
    elif best is not None:
        try:
            best_J = tr.jacobian(best.execute(**feed))
            row["checks"][best_s] = _check_full(p, inputs, best_J)
        except Exception as e:
            row["checks"][best_s] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        for s in plans:
            if s != best_s:
                row["checks"][s] = {"ok": None, "reference": "not checked at size full (best plan only)"}
    checked = [c["ok"] for c in row["checks"].values() if c.get("ok") is not None]
    row["correct"] = bool(checked) and all(checked) and not row["errors"]

    # execution
    if baselines:
        show("timing")
        ex: dict[str, Any] = {}
        if best is None or best_J is None:
            ex["jacc"] = {"error": "no executable plan"}
        else:
            turns = _TURNS[0] = _Turns()  # (every column warmed up first, then all timed in turns)
            try:
                _time_columns(p, inputs, tr, g, best, best_s, feed, backends, repeats, ex)
            finally:
                _TURNS[0] = None
            turns.run()
            _resolved(ex)
            timed = {k: v["seconds"] for k, v in ex.items() if k in BASELINES and "seconds" in v}
            if timed and "seconds" in ex["jacc"]:
                fastest = min(timed, key=timed.get)
                ex["best_baseline"] = fastest
                ex["speedup_vs_best_baseline"] = timed[fastest] / ex["jacc"]["seconds"]
                for k in ("jacc_compiled", "jacc_c_compiled", "jacc_interpret", *(f"jacc_{b}" for b in backends)):
                    if "seconds" in ex.get(k, {}):
                        ex[k]["speedup_vs_best_baseline"] = timed[fastest] / ex[k]["seconds"]
            diffs = [v["max_diff"] for k, v in ex.items() if k in BASELINES and "max_diff" in v]
            ex["max_diff"] = max(diffs) if diffs else None
        row["execution"] = ex
    return row


# -- results ---------------------------------------------------------------------------------------


_SHORT = {"relative-markowitz": "rel-mkw", "markowitz": "mkw", "min-fill": "min-fill"}


def _fmt_int(x) -> str:
    return "—" if x is None else f"{x:,}"


def _fmt_ratio(r: dict | None) -> str:
    if not r:
        return "—"
    if "ratio" in r:
        return f"{r['ratio']:.3g}×"
    return "skip" if "skipped" in r else "ERR"


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys; lists joined with " | "."""
    if isinstance(d, dict):
        flat: dict[str, Any] = {}
        for k, v in d.items():
            flat.update(_flatten(v, f"{prefix}{k}."))
        return flat
    if isinstance(d, list):
        d = " | ".join(str(x) for x in d)
    return {prefix[:-1]: d}


def _render(headers: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i])
                                            for i, c in enumerate(cells)) + " |"
    sep = "|" + "|".join("-" * (x + 2) if i == 0 else "-" * (x + 1) + ":" for i, x in enumerate(w)) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


@dataclass
class BenchResult:
    """The rows of one :func:`run` (one dict per problem) with table/JSON/CSV output and a plot."""

    rows: list[dict]
    size: str = "small"
    strategies: list[str] = field(default_factory=list)
    baselines: bool = False
    meta: dict = field(default_factory=dict)

    def format(self, fmt: str = "table") -> str:
        """``"table"`` (Markdown tables + notes), ``"json"`` or ``"csv"`` (one line per problem)."""
        if fmt == "json":
            return dumps_json({"meta": self.meta, "strategies": self.strategies, "rows": self.rows},
                              indent=1)
        if fmt == "csv":
            return self._csv()
        if fmt == "table":
            return self._table()
        raise ValueError(f"format must be 'table', 'json' or 'csv', not {fmt!r}")

    # -- tables ----------------------------------------------------------------------------------
    def plan_table(self) -> str:
        strats = self.strategies
        scalar = self.meta.get("level") == "scalar"
        headers = (["problem"] + (["level"] if scalar else []) + ["n→m", "elim"] + [_SHORT.get(s, s) for s in strats]
                   + ["best", "impr %", "AlphaGrad %", "optimal?", "bound", "plan s", "check"])
        body = []
        for r in self.rows:
            cells = [r["problem"], f"{r['n_in']}→{r['n_out']}", str(r.get("eliminable", "—"))]
            if scalar:
                cells.insert(1, r.get("level", "—"))
            for s in strats:
                cells.append("skip" if s in r["skipped"] else "ERR" if s in r["errors"]
                             else _fmt_int(r["mults"].get(s)))
            best = r.get("best_mults")
            cells.append("—" if best is None else f"{best:,} ({_SHORT.get(r['best_strategy'], r['best_strategy'])})")
            imp = r.get("improvement_pct")
            cells.append("—" if imp is None else f"{imp:.1f}")
            ag = r.get("alphagrad_pct")
            cells.append("" if ag is None else f"{ag:g}")
            opt = r.get("optimal")
            cells.append("yes" if opt else "no" if opt is False else "n/a")
            lb = r.get("lower_bound")  # a bound of 0 below a positive cost says nothing: not shown
            cells.append("—" if lb is None or (lb == 0 and best) else f"{lb:,}" if opt else
                         f"{lb:,} (gap {100 * (best - lb) / best:.0f} %)")
            cells.append(f"{r.get('search_seconds', 0.0):.2f}")
            cells.append(_check_cell(r))
            body.append(cells)
        return _render(headers, body)

    def execution_table(self) -> str:
        def timed(key: str) -> bool:
            return any("seconds" in ((r.get("execution") or {}).get(key) or {}) for r in self.rows)

        extra = [(k, label) for k, label in (("jacc_auto-once", "traced once"), ("jacc_numpy", "numpy, best order"),
                                             ("jacc_numpy-once", "numpy once, best order"), ("jacc_jax", "jax backend"),
                                             ("jacc_jax-once", "jax, traced once"), ("jacc_torch", "torch backend"),
                                             ("jacc_torch-once", "torch, traced once"), ("jacc_c", "c backend"),
                                             ("jacc_c-once", "c, traced once"),
                                             ("jacc_jax-arrays-once", "jax, jax.Array args, once"),
                                             ("jacc_interpret", "executor"),
                                             ("jacc_compiled", "scalar compiled"), ("jacc_c_compiled", "C compiled"))
                 if timed(k)]
        headers = ["problem", "jacc plan", "jacobian s", "jax fwd", "jax rev", "torch fwd", "torch rev",
                   "vs best", "max |ΔJ|"]
        for _, label in extra:
            headers += [f"{label} s", "vs best"]
        body = []
        for r in self.rows:
            ex = r.get("execution") or {}
            j = ex.get("jacc", {})
            cells = [r["problem"], _SHORT.get(j.get("strategy"), j.get("strategy") or "—")
                     + (" (executor)" if j.get("executor") else ""),
                     f"{j['seconds']:.3g}" if "seconds" in j else "ERR"]
            cells += [_fmt_ratio(ex.get(k)) for k in BASELINES]
            sp = ex.get("speedup_vs_best_baseline")
            cells.append("—" if sp is None else f"{sp:.3g}× ({ex['best_baseline'].replace('_', ' ')})")
            md = ex.get("max_diff")
            cells.append("—" if md is None else f"{md:.1e}")
            for k, _ in extra:
                c = ex.get(k) or {}
                cells.append(f"{c['seconds']:.3g}" if "seconds" in c else "—")
                cs = c.get("speedup_vs_best_baseline")
                cells.append("—" if cs is None else f"{cs:.3g}×")
            body.append(cells)
        return _render(headers, body)

    def speedup_summary(self) -> list[str]:
        """Geometric mean and minimum of each timed jacc column's speed-up over the best baseline."""
        out = []
        for k, label in (("jacc_auto", "jacobian (defaults)"), ("jacc_auto-once", "jacobian, retrace=False"),
                         ("jacc_numpy", "jacobian, backend numpy, best plan's order"),
                         ("jacc_numpy-once", "jacobian, backend numpy, best plan's order, retrace=False"),
                         ("jacc_jax", "jacobian, backend jax"),
                         ("jacc_jax-once", "jacobian, backend jax, retrace=False"),
                         ("jacc_torch", "jacobian, backend torch"),
                         ("jacc_torch-once", "jacobian, backend torch, retrace=False"),
                         ("jacc_c", "jacobian, backend c"), ("jacc_c-once", "jacobian, backend c, retrace=False"),
                         ("jacc_jax-arrays-once", "jacobian, backend jax, retrace=False, jax.Array arguments"),
                         ("jacc_interpret", "executor")):
            sp = {r["problem"]: ((r.get("execution") or {}).get(k) or {}).get("speedup_vs_best_baseline")
                  for r in self.rows}
            sp = {p: v for p, v in sp.items() if v}
            if sp:
                worst = min(sp, key=sp.get)
                gm = math.exp(statistics.fmean(math.log(v) for v in sp.values()))
                out.append(f"{label}: geometric mean {gm:.3g}× the best baseline over {len(sp)} problems, "
                           f"lowest {sp[worst]:.3g}× ({worst})")
        return out

    def first_calls(self) -> list[str]:
        """One line: each problem's first ``jacobian`` call (tracing, planning and lowering included)
        beside the faster first call of jitted JAX (``jax.jit`` compiling included), in this
        process, and on how many problems jacc's is the faster. (PyTorch's eager ``torch.func``
        compiles nothing, so its first call is an ordinary call.)"""
        cells, faster, n = [], 0, 0
        for r in self.rows:
            ex = r.get("execution") or {}
            mine = (ex.get("jacc_auto") or {}).get("first_call_seconds")
            theirs = [(v["first_call_seconds"], k) for k in ("jax_fwd", "jax_rev")
                      if "first_call_seconds" in (v := ex.get(k) or {})]
            if mine is None or not theirs:
                continue
            t, who = min(theirs)
            n += 1
            faster += mine < t
            cells.append(f"{r['problem']} {mine:.2g} s ({t:.2g} s, {who.replace('_', ' ')})")
        if not cells:
            return []
        return [f"first call of jacobian (defaults; tracing, planning and lowering included) against jitted "
                f"JAX's faster first call (compiling included), in this process: faster on {faster} of "
                f"{n} problems — " + ", ".join(cells)]

    def notes(self) -> list[str]:
        out = []
        if self.meta.get("blas_advice"):
            out.append(f"machine: {self.meta['blas_advice']}")
        for r in self.rows:
            p = r["problem"]
            for s, why in r["skipped"].items():
                out.append(f"{p}: {s} skipped — {why}")
            for s, err in r["errors"].items():
                out.append(f"{p}: {s} FAILED — {err}")
            for s, c in r["checks"].items():
                if c.get("ok") is False:
                    detail = c.get("error") or (f"max |J − J_ref| = {c['max_abs_diff']:.3g} > tol "
                                                f"{c['tol']:.3g} ({c['reference']})")
                    out.append(f"{p}: {s} Jacobian check FAILED — {detail}")
            for n in r["notes"]:
                out.append(f"{p}: {n}")
            seen = set()
            for k in BASELINES:
                v = (r.get("execution") or {}).get(k) or {}
                for kind in ("skipped", "error"):
                    if kind in v and (kind, v[kind]) not in seen:
                        seen.add((kind, v[kind]))
                        who = [b for b in BASELINES if ((r.get("execution") or {}).get(b) or {}).get(kind) == v[kind]]
                        out.append(f"{p}: {', '.join(w.replace('_', ' ') for w in who)} "
                                   f"{'skipped' if kind == 'skipped' else 'FAILED'} — {v[kind]}")
            ex = r.get("execution") or {}
            call = ex.get("scalar_call") or {}
            if "ratio" in call:
                out.append(f"{p}: a whole jacobian(f, retrace=False)(x1, …) call with Python floats takes "
                           f"{call['seconds'] * 1e6:.3g} µs, the compiled plan alone "
                           f"{call['compiled_seconds'] * 1e6:.3g} µs ({call['ratio']:.2g}×)")
            hand = ex.get("hand_numpy")
            if hand:
                out.append(f"{p}: hand-written optimal NumPy takes {hand['seconds']:.3g} s; jacobian takes "
                           f"{hand['jacobian_over_hand']:.3g}× that (max |ΔJ| {hand['max_diff']:.1e})")
        untimed = [r["problem"] for r in self.rows if "skipped" in ((r.get("execution") or {}).get("jacc_auto") or {})]
        if untimed:
            out.append(f"jacobian backends are timed at level array only: for {', '.join(untimed)} the jacobian "
                       "column shows the executor")
        chose = [f"{r['problem']} {c}" for r in self.rows for c in r["chose"].values()]
        if chose:
            out.append("what the meta-strategies ran: " + ", ".join(chose))
        return out

    def _table(self) -> str:
        m = self.meta
        v = m.get("versions", {})
        head = (f"jacc bench — size {self.size}, level {m.get('level', 'array')}, {m.get('date', '')}, "
                f"{m.get('cpu', '')} ({m.get('cores', '?')} cores, malloc {m.get('malloc', '?')}, "
                f"BLAS {m.get('blas', '?')}, vector math {m.get('vector_math', '?')}); "
                + ", ".join(f"{k} {x}" for k, x in v.items()))
        parts = [head, "", "Plan quality (scalar multiplications; impr % = best vs min(forward, reverse, "
                 "markowitz); AlphaGrad % from Lohoff & Neftci 2024):", "", self.plan_table()]
        if self.baselines:
            parts += ["", "Execution (jacobian: median s of a whole jacc.jacobian(f, argnums=all) call with its "
                      "defaults, backend and strategy 'auto' (jacc plan: what ran; 'scalar': the scalar route of small "
                      "graphs; '(executor)': --backends named neither auto nor numpy, and the interpreted plan "
                      "stands in); numpy, best order: backend='numpy' with the best plan's order; baseline columns: "
                      "baseline time / jacobian time, > 1 means jacc is "
                      "faster; traced once: jacobian(retrace=False), f traced at the first call only "
                      "(jax.jit semantics); "
                      "jax backend: jacobian(backend='jax'); executor: the interpreted Plan.execute(); "
                      "c: jacobian(backend='c'); scalar compiled and C compiled: Plan.compile('scalar') and "
                      "Plan.compile('c') at level scalar, the generated function alone):", "",
                      self.execution_table(), ""]
            parts += [f"- {line}" for line in self.speedup_summary() + self.first_calls()]
        notes = self.notes()
        if notes:
            parts += ["", "Notes:"] + [f"- {n}" for n in notes]
        return "\n".join(parts) + "\n"

    def _csv(self) -> str:
        flat = []
        for r in self.rows:
            d = {k: v for k, v in r.items() if k != "citation"}
            flat.append(_flatten(d))
        cols: list[str] = []
        for f in flat:
            for k in f:
                if k not in cols:
                    cols.append(k)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for f in flat:
            w.writerow({k: _csv_cell(v) for k, v in f.items()})
        return buf.getvalue()

    # -- plot ------------------------------------------------------------------------------------
    def plot(self, path: str | os.PathLike) -> None:
        """Bars of multiplications per strategy per problem, normalised to min(forward, reverse,
        markowitz); log scale when the bars span more than 10×. SVG/PNG/PDF by extension."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise RuntimeError("plotting needs matplotlib: pip install matplotlib "
                               f"(or {INSTALL_HINT})") from None
        rows = [r for r in self.rows if r.get("baseline_mults")]
        strats = self.strategies
        fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.2))
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / max(len(strats), 1)
        vals_all = []
        for k, s in enumerate(strats):
            xs, ys = [], []
            for i, r in enumerate(rows):
                m = r["mults"].get(s)
                if m is not None:
                    xs.append(i + (k - (len(strats) - 1) / 2) * width)
                    ys.append(m / r["baseline_mults"])
            vals_all += ys
            ax.bar(xs, ys, width, label=s)
        if vals_all and max(vals_all) / max(min(v for v in vals_all if v > 0), 1e-300) > 10:
            ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        for i, r in enumerate(rows):
            if r.get("alphagrad_pct") is not None:
                ax.plot([i - 0.4, i + 0.4], [1 - r["alphagrad_pct"] / 100] * 2, color="red", linewidth=1.5,
                        label="AlphaGrad (Lohoff & Neftci 2024)" if i == next(
                            j for j, q in enumerate(rows) if q.get("alphagrad_pct") is not None) else None)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["problem"] for r in rows], rotation=30, ha="right")
        ax.set_ylabel("mults / min(forward, reverse, markowitz)")
        ax.set_title(f"jacc bench, size {self.size}")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.fspath(path))


def _check_cell(r: dict) -> str:
    """``ok 11/11 (3e-10)``: checks passed / strategies checked (largest |J − J_FD|);
    at size full only the best plan is checked (``ok best``)."""
    checks = r["checks"]
    if r["errors"].get("trace"):
        return "TRACE FAILED"
    bad = [s for s, c in checks.items() if c.get("ok") is False]
    if bad:
        return "FAIL " + ",".join(_SHORT.get(s, s) for s in bad)
    done = [c for c in checks.values() if c.get("ok")]
    if not done:
        return "not checked"
    worst = max(c["max_abs_diff"] for c in done)
    if any(c.get("ok") is None for c in checks.values()):
        return f"ok best ({worst:.0e})"
    return f"ok {len(done)}/{len(checks)} ({worst:.0e})"


def _csv_cell(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
