"""Compile a plan on a scalar graph into one straight-line Python function.

On graphs of scalars the executor's per-edge bookkeeping costs far more than the arithmetic.
Since the structure of every edge is known before any value is (see ``ScalarAlgebra``), the
whole computation — primal values, local partials and the plan's eliminations — unrolls into
straight-line code over Python floats: one line per multiplication the plan counts. The
formulas are the op table's own (:data:`jacc.ops.UNARY`, :data:`jacc.ops.BINARY`,
:data:`jacc.ops.TERNARY`) evaluated with :mod:`math`. Where ``math`` refuses a value
(``log(-1)``, division by zero, overflow) the compiled function falls back to the plan's ordinary
executor, so results keep NumPy's NaN/inf semantics.

>>> from jacc import examples, plan
>>> f = compile_plan(plan(examples.lecture_f(), "reverse"))
>>> {k: round(v, 3) for k, v in f(2.0, 5.0).items()}
{('v5', 'x1'): 5.5, ('v5', 'x2'): 1.716}
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .graph import Graph, GraphError
from .ops import (
    _COMPONENTS,
    _SPHERICAL_HELPERS,
    ELEMENTWISE,
    NUMPY_NAMES,
    ORTHOGONAL,
    UNARY,
    _boxcoxgrad,
    _ellipegrad,
    _ellipkgrad,
    _ftie,
    _gammadensity,
    _huberdelta,
    _i1egrad,
    _invboxcoxgrad,
    _j1grad,
    _polygamma,
    _spencegrad,
    _tdensity,
    _tie,
    formula,
)

if TYPE_CHECKING:
    from .plan import Plan

# The scalar twins of ops.NUMPY_NAMES. They must agree with NumPy at NaN and ±inf too (sign(nan)
# is nan; maximum/minimum propagate NaN from either side, where Python's max/min depend on the
# argument order); where `math` raises instead, the compiled function falls back to the executor.


def _sign(x: float) -> float:
    return x if x != x else float((x > 0) - (x < 0))


def _maximum(a: float, b: float) -> float:
    return a + b if a != a or b != b else (a if a >= b else b)


def _minimum(a: float, b: float) -> float:
    return a + b if a != a or b != b else (a if a <= b else b)


def _powgrad(a: float, b: float) -> float:
    return 0.0 if b == 0 else b * math.pow(a, b - 1.0)


def _finite(*xs: float) -> None:
    """Raise (so the compiled function falls back to the executor) unless every x is finite: for
    helpers whose Python twin differs from NumPy at NaN/±inf."""
    if not all(math.isfinite(x) for x in xs):
        raise ValueError("non-finite argument")


def _rounder(fn: Callable) -> Callable:
    """floor/ceil/trunc/rint as floats with NumPy's signed zeros (the result has x's sign)."""
    return lambda x: x if not math.isfinite(x) else math.copysign(float(fn(x)), x)


def _fmax(a: float, b: float) -> float:
    return b if a != a else a if b != b else (a if a >= b else b)


def _fmin(a: float, b: float) -> float:
    return b if a != a else a if b != b else (a if a <= b else b)


def _sinc(x: float) -> float:
    return 1.0 if x == 0 else math.sin(math.pi * x) / (math.pi * x)


def _sincgrad(x: float, y: float) -> float:
    t = math.pi * x
    if abs(t) < 0.1:  # the Taylor series, as ops._sincgrad
        t2 = t * t
        return math.pi * t * (-1 / 3 + t2 * (1 / 30 + t2 * (-1 / 840 + t2 / 45360)))
    return (math.cos(t) - y) / x


def _lndtrgrad(x: float, y: float) -> float:
    if x < -40.0:  # the Mills ratio's series, as ops._lndtrgrad
        u = 1.0 / (x * x)
        return -x / (1.0 + u * (-1.0 + u * (3.0 + u * (-15.0 + u * (105.0 + u * (-945.0 + u * 10395.0))))))
    try:
        return 0.3989422804014327 * math.exp(-0.5 * x * x - y)
    except OverflowError:
        return math.inf


def _logaddexp(a: float, b: float) -> float:
    """NumPy's npy_logaddexp, step for step."""
    if a == b:
        return a + 0.6931471805599453
    d = a - b
    return a + math.log1p(math.exp(-d)) if d > 0 else b + math.log1p(math.exp(d)) if d <= 0 else d


def _logaddexp2(a: float, b: float) -> float:
    if a == b:
        return a + 1.0
    d = a - b
    return (a + 1.4426950408889634 * math.log1p(2.0 ** -d) if d > 0
            else b + 1.4426950408889634 * math.log1p(2.0 ** d) if d <= 0 else d)


def _remainder(a: float, b: float) -> float:
    _finite(a, b)  # Python's % is NumPy's remainder on finite floats
    return a % b


def _floor_divide(a: float, b: float) -> float:
    _finite(a, b)
    return a // b


def _heaviside(a: float, b: float) -> float:
    return a if a != a else 0.0 if a < 0 else 1.0 if a > 0 else b


def _where(m: float, a: float, b: float) -> float:
    return a if m else b


def _xlogy(a: float, b: float, log: Callable = math.log) -> float:
    return 0.0 if a == 0 and b == b else a * log(b)


def _ndtr(x: float) -> float:
    """scipy.special.ndtr's algorithm with math.erf/erfc."""
    t = x * 0.7071067811865476
    if abs(t) < 0.7071067811865476:
        return 0.5 + 0.5 * math.erf(t)
    y = 0.5 * math.erfc(abs(t))
    return 1.0 - y if t > 0 else y


def _log_ndtr(x: float) -> float:
    """log Φ(x): log1p(−Φ(−x)) on the right; below −30 SciPy's asymptotic series, as Φ nears
    the subnormals (from −37.5 on erfc keeps a few bits: the derivative φ/Φ was 9 % off at −38.47)."""
    if x > 0:
        return math.log1p(-0.5 * math.erfc(x * 0.7071067811865476))
    if x < -30.0:
        from scipy.special import log_ndtr  # only log_ndtr's graphs get here, and those came from SciPy

        return float(log_ndtr(x))
    return math.log(0.5 * math.erfc(-x * 0.7071067811865476))


def _lgamma(x: float) -> float:
    if x == -math.inf:  # math.lgamma says +inf, scipy.special.gammaln −inf: let the executor decide
        raise ValueError("lgamma(-inf)")
    return math.lgamma(x)


def _digamma(x: float) -> float:
    from scipy.special import digamma  # only gammaln's graphs get here, and those came from SciPy

    return float(digamma(x))


def _scipy(name: str, *first: Any) -> Callable:
    """scipy.special.<name> of floats, imported on first use (only graphs traced from SciPy's
    functions reach it)."""
    def fn(*xs: float) -> float:
        import scipy.special as sp

        return float(getattr(sp, name)(*first, *xs))
    return fn


def _log_expit(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _entr(x: float) -> float:
    return -x * math.log(x) if x > 0 else 0.0 if x == 0 else x if x != x else -math.inf


def _logratio(a: float, b: float) -> float:
    """log(a/b) as SciPy's rel_entr computes it (see jacc.ops's twin): log(0) raises, and the array
    formula answers."""
    r = a / b
    if 0.5 < r < 2.0:
        return math.log1p((a - b) / b)
    return math.log(r) if 2.2250738585072014e-308 < r < math.inf else math.log(a) - math.log(b)


def _rel_entr(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    if a > 0 and b > 0:
        return a * _logratio(a, b)
    return 0.0 if a == 0 and b >= 0 else math.inf


def _i1grad(x: float, y: float) -> float:
    return 0.5 if x == 0 else _scipy("i0")(x) - y / x


def _as_float(fn: Callable) -> Callable:
    return lambda *xs: float(fn(*xs))


# (math.exp2 and math.cbrt are Python 3.11; the fallbacks serve 3.10)
MATH_NAMES = {"exp": math.exp, "expm1": math.expm1, "log": math.log, "log1p": math.log1p, "sin": math.sin,
              "cos": math.cos, "tan": math.tan, "tanh": math.tanh, "sinh": math.sinh, "cosh": math.cosh,
              "arctan": math.atan, "arcsin": math.asin, "arccos": math.acos, "sqrt": math.sqrt,
              "sign": _sign, "abs": abs, "power": math.pow, "maximum": _maximum, "minimum": _minimum,
              "tie": _tie, "powgrad": _powgrad, "nonzero": lambda a: 1.0 if a == 0 else a,
              "exp2": getattr(math, "exp2", lambda x: 2.0 ** x), "log2": math.log2, "log10": math.log10,
              "cbrt": getattr(math, "cbrt", lambda x: math.copysign(abs(x) ** (1 / 3), x)), "sinc": _sinc,
              "sincgrad": _sincgrad, "lndtrgrad": _lndtrgrad, "hypot": math.hypot, "arcsinh": math.asinh,
              "arccosh": math.acosh,
              "arctanh": math.atanh, "floor": _rounder(math.floor), "ceil": _rounder(math.ceil),
              "trunc": _rounder(math.trunc), "rint": _rounder(round), "fmax": _fmax, "fmin": _fmin,
              "ftie": _ftie, "arctan2": math.atan2, "logaddexp": _logaddexp, "logaddexp2": _logaddexp2,
              "fmod": math.fmod, "remainder": _remainder, "floor_divide": _floor_divide,
              "copysign": math.copysign, "heaviside": _heaviside, "xlogy": _xlogy, "where": _where,
              "xlog1py": lambda a, b: _xlogy(a, b, math.log1p), "erf": math.erf, "erfc": math.erfc,
              "ndtr": _ndtr, "log_ndtr": _log_ndtr, "gammaln": _lgamma, "digamma": _digamma,
              "zeta": _scipy("zeta"), "log_expit": _log_expit, "erfinv": _scipy("erfinv"),
              "ndtri": _scipy("ndtri"), "gamma": _scipy("gamma"), "entr": _entr, "rel_entr": _rel_entr,
              "logratio": _logratio,
              "betaln": _scipy("betaln"), "i0": _scipy("i0"), "i1": _scipy("i1"), "i1grad": _i1grad,
              "i0e": _scipy("i0e"), "i1e": _scipy("i1e"), "i1egrad": _as_float(_i1egrad), "cosm1": _scipy("cosm1"),
              "poch": _scipy("poch"), "gammainc": _scipy("gammainc"), "gammaincc": _scipy("gammaincc"),
              "chdtr": _scipy("chdtr"), "chdtrc": _scipy("chdtrc"), "stdtr": _scipy("stdtr"),
              # (rare ops: their array formulas on floats, so both paths agree at NaN and ±inf)
              "gammadensity": _as_float(_gammadensity), "tdensity": _as_float(_tdensity),
              "j1grad": _as_float(_j1grad), "huberdelta": _as_float(_huberdelta),
              "polygamma": _as_float(_polygamma), "spencegrad": _as_float(_spencegrad),
              "ellipkgrad": _as_float(_ellipkgrad), "ellipegrad": _as_float(_ellipegrad),
              "boxcoxgrad": _as_float(_boxcoxgrad), "invboxcoxgrad": _as_float(_invboxcoxgrad),
              **{n: _as_float(NUMPY_NAMES[n]) for n in ("exprelgrad", "rgammagrad", *_COMPONENTS, *_SPHERICAL_HELPERS)},
              **{n: _scipy(n) for n in ("erfcx", "dawsn", "exp1", "expi", "rgamma", "loggamma", "j0", "j1", "y0",
                                        "y1", "k0", "k1", "gammasgn", "kl_div", "huber", "pseudo_huber", "beta",
                                        "spence", "ellipk", "ellipe", "gammaincinv", "gammainccinv", "chdtri",
                                        "stdtrit", "binom", "powm1", "boxcox", "boxcox1p", "inv_boxcox",
                                        "inv_boxcox1p", "jv", "yv", "iv", "kv", "jve", "yve", "ive", "kve",
                                        "betainc", "betaincc", "betaincinv", "betainccinv", "fdtr", "fdtrc",
                                        "fdtri", "erfi", "erfcinv", "exprel", "owens_t", "ellipkinc", "ellipeinc")},
              "pdtr": _scipy("pdtr"), "pdtrc": _scipy("pdtrc"),
              **{n: _as_float(NUMPY_NAMES[n]) for n in (*ORTHOGONAL, "expn", "expnslope", "jacobislope", "hyp0f1",
                                                         "hyp1f1", "struve", "modstruve", "struveslope", "kolmogorov",
                                                         "kolmogi", "kolmogp", "gdtr", "gdtrc", "lpmv",
                                                         "lambertw", "lambertw_m1", "lambertwslope")},
              # the array helpers on floats (bdtr's counts as integers, as the array path passes them)
              **{n: _as_float(NUMPY_NAMES[n]) for n in ("bdtr", "bdtrc", "nbdtr", "nbdtrc", "betadensity", "fdensity",
                                                         "binomslope", "gammaincda", "betaincda", "betaincdb",
                                                         "fdtrd", "stdtrdf")}}

FALLBACK = (ValueError, ZeroDivisionError, OverflowError)


class CompileError(NotImplementedError):
    """The plan cannot be compiled (array vertices or an op without a scalar formula)."""


def compile_plan(plan: "Plan", entries_only: bool = False) -> Callable[..., dict]:
    """A function of the graph's inputs (positional, in ``graph.inputs`` order) returning
    ``{(output, input): float}`` — the same as ``plan.execute`` on a scalar graph.
    ``entries_only``: for callers of :func:`flat` or :func:`flat_subset` alone, the dict-returning
    code is compiled only if called (a dense result of 200 × 200 entries, nearly all structural
    zeros, is 40,000 dict items: 0.3 s of Python's compiler at the first call of ``jacobian``)."""
    g, problem = plan.graph, plan.problem
    # every vertex whose value a partial needs, through every argument (an argument without an
    # edge, e.g. floor's, still feeds the value)
    needed = _with_arguments(g, {v for _, v in problem.edges})
    # the result's blocks too: an input or output off every path still needs its array shape
    if any(g.shape(v) != () for v in needed | set(problem.wrt) | set(problem.of)):
        raise CompileError("compile: only graphs whose vertices are all scalars (use plan.execute, "
                           "or trace with scalarize=True)")
    lines, env, var, arg_texts = _primal_lines(g, needed)
    # local partials: a name per edge, or None for a structural 1
    edge: dict = {}
    for u, v in problem.edges:
        terms = [_partial(g.op(v), pos, arg_texts[v], var(v), env) for pos in g.nx.edges[u, v]["positions"]]
        edge[u, v] = _sum(terms, lines, f"d_{var(u)}_{var(v)}")
    for y, s in problem.extra:
        edge[y, s] = None
    # the plan's eliminations, unrolled
    succ: dict = {}
    pred: dict = {}
    for (u, v), e in edge.items():
        succ.setdefault(u, {})[v] = e
        pred.setdefault(v, {})[u] = e
    count = 0
    for k, w in enumerate(plan.order):
        ins, outs = pred.pop(w, {}), succ.pop(w, {})
        for i in ins:
            del succ[i][w]
        for o in outs:
            del pred[o][w]
        for i, b in ins.items():
            for o, a in outs.items():
                prod, n = _times(a, b, lines, f"t{k}_{len(lines)}")
                count += n
                old = succ.setdefault(i, {}).get(o, "missing")
                new = prod if old == "missing" else _sum([old, prod], lines, f"s{k}_{len(lines)}")
                succ[i][o] = new
                pred.setdefault(o, {})[i] = new
    keys, exprs = [], []
    for y in problem.of:
        for x in problem.wrt:
            e = succ.get(x, {}).get(problem.out_key[y], "missing")
            keys.append((y, x))
            exprs.append("0.0" if e == "missing" else "1.0" if e is None else e)
    params = ", ".join(var(x) for x in g.inputs)
    lines = _live(lines, exprs)

    def define() -> Callable:
        result = "{" + ", ".join(f"{k!r}: {e}" for k, e in zip(keys, exprs)) + "}"
        return _define("jacobian", params, lines, result, env, plan.strategy)
    fast = _on_first_call(define) if entries_only else define()

    def jacobian(*args: float) -> dict:
        floats = float_args(g.inputs, args)
        try:
            return fast(*floats)
        except FALLBACK:  # a math domain error: the same code with NumPy's NaN/inf semantics
            return dict(zip(keys, map(float, flat_fallback(jacobian, floats))))

    if not entries_only:
        jacobian.source = fast.source
    jacobian.mults, jacobian.plan = count, plan
    jacobian.raw = fast  # floats in, no fallback: for callers that convert and catch FALLBACK
    # the same code returning a tuple, row-major over (of, wrt), compiled on first use (flat())
    jacobian.flat_parts = (params, lines, _tuple_text(exprs), env, plan.strategy)
    jacobian.flat_exprs, jacobian.flat_keys = exprs, keys  # per entry: its expression, its (output, input)
    return jacobian


def compile_values(graph: Graph) -> Callable[..., tuple]:
    """The outputs of an all-scalar ``graph`` as straight-line float code: a function of its
    inputs (floats, in ``graph.inputs`` order) returning their values as a tuple of floats in
    ``graph.outputs`` order, with Python's ``math`` semantics (the caller catches
    :data:`FALLBACK`). What :func:`jacc.value_and_jacobian` returns beside the scalar route's
    Jacobian, whose code computes no outputs. Raises :class:`CompileError` where a vertex is an
    array or an op has no float formula.

    >>> from jacc import examples
    >>> [round(v, 3) for v in compile_values(examples.lecture_f())(2.0, 5.0)]
    [11.652]
    """
    needed = _with_arguments(graph, set(graph.outputs))
    if any(graph.shape(v) != () for v in needed | set(graph.inputs)):
        raise CompileError("compile_values: only graphs whose vertices are all scalars")
    lines, env, var, _ = _primal_lines(graph, needed)
    outs = [var(y) for y in graph.outputs]
    params = ", ".join(var(x) for x in graph.inputs)
    values = _define("values", params, lines, _tuple_text(outs), env, "values")
    # (as compile_plan's flat code: jacc.ccode.Native builds it as C)
    values.flat_parts, values.flat_exprs = (params, lines, _tuple_text(outs), env, "values"), outs
    return values


def _with_arguments(g: Graph, vertices: set) -> set:
    """``vertices`` and every vertex they read, directly or not."""
    needed, stack = set(vertices), list(vertices)
    while stack:
        for u in (a for a in g.nx.nodes[stack.pop()]["args"] if isinstance(a, str)):
            if u not in needed:
                needed.add(u)
                stack.append(u)
    return needed


def _primal_lines(g: Graph, needed: set) -> tuple[list[str], dict, Callable[[str], str], dict]:
    """Float statements evaluating the ``needed`` vertices of ``g`` in order: the lines, their
    globals, the vertex-to-name map and each vertex's argument texts."""
    names: dict = {}
    env: dict = {}
    lines: list[str] = []

    def var(v: str) -> str:
        return names.setdefault(v, f"v{len(names)}")

    def const(c) -> str:
        if np.ndim(c.value):  # (np.interp's knots, an einsum's constant vector: the array route's)
            raise CompileError(f"compile: a constant of shape {np.shape(c.value)} is no float")
        value = float(c.value)
        if math.isfinite(value):  # repr round-trips a float exactly; a literal beats a global lookup
            return f"({value!r})"
        key = f"c{len(env)}"
        env[key] = value
        return key

    def arg_text(a) -> str:
        return var(a) if isinstance(a, str) else const(a)

    arg_texts: dict[str, list[str]] = {}  # once per vertex: constants get one name each
    for v in g.topological_order():
        d = g.nx.nodes[v]
        if d["op"] == "input" or v not in needed:
            continue
        args = arg_texts[v] = [arg_text(a) for a in d["args"]]
        text = _inline_primal(d["op"], args)
        if text is None:
            env[f"F_{var(v)}"] = _primal(d["op"], d["params"])
            text = f"F_{var(v)}({', '.join(args)})"
        lines.append(f"{var(v)} = {text}")
    return lines, env, var, arg_texts


def float_args(inputs: list[str], args: tuple) -> list[float]:
    """The positional arguments of a compiled scalar plan as floats, one per input in order; a wrong
    count or a string is a ``TypeError`` naming the inputs (not the generated code's parameters).

    >>> float_args(["x1", "x2"], (2, 5.0))
    [2.0, 5.0]
    """
    if len(args) != len(inputs):
        raise TypeError(f"plan takes {len(inputs)} inputs {inputs}, got {len(args)}")
    def shaped(name: str, shape: tuple) -> GraphError:
        return GraphError(f"input {name!r} has shape {shape}, this plan's graph expects ()")

    for name, a in zip(inputs, args):
        if isinstance(a, (str, bytes, bool, np.bool_, complex, np.complexfloating)):
            raise TypeError(f"input {name!r} must be a real number, not {type(a).__name__} {a!r}")
        if type(a) is np.ndarray and a.ndim:  # (NumPy may read a one-element array as its number)
            raise shaped(name, a.shape)
    try:
        return [float(a) for a in args]
    except (TypeError, ValueError):  # a list or a tuple: the graph's inputs are scalars
        for name, a in zip(inputs, args):
            if np.shape(a) != ():
                raise shaped(name, np.shape(a)) from None
        raise


_NAME = re.compile(r"[A-Za-z_]\w*")


def _live(lines: list[str], exprs: list[str]) -> list[str]:
    """The statements the result ``exprs`` read, directly or not (each statement assigns a new
    name once; the primal's outputs, for one, are computed by none of the Jacobian's terms)."""
    live = {n for e in exprs for n in _NAME.findall(e)}
    kept = []
    for line in reversed(lines):
        target, expr = line.split(" = ", 1)
        if target in live:
            kept.append(line)
            live.update(_NAME.findall(expr))
    return kept[::-1]


def _define(name: str, params: str, lines: list[str], result: str, env: dict, label: str) -> Callable:
    src = f"def {name}({params}):\n    " + "\n    ".join(lines + [f"return {result}"])
    code = {"__builtins__": {"float": float}, **env}
    exec(compile(src, f"<jacc plan {label}>", "exec"), code)  # noqa: S102 - our own generated code
    fn = code[name]
    fn.source = src
    return fn


def _on_first_call(define: Callable[[], Callable]) -> Callable:
    """A function that calls what ``define()`` returns, defined at its first call."""
    made: list[Callable] = []

    def call(*args):
        if not made:
            made.append(define())
        return made[0](*args)
    return call


def flat(jacobian: Callable) -> Callable:
    """``jacobian.raw`` returning a tuple of floats instead of a dict: every ``(output, input)``
    entry, outputs major, in the order of the plan's ``of`` and ``wrt`` (no fallback: the caller
    catches :data:`FALLBACK`).

    >>> from jacc import examples, plan
    >>> f = compile_plan(plan(examples.lecture_f(), "reverse"))
    >>> [round(v, 3) for v in flat(f)(2.0, 5.0)]
    [5.5, 1.716]
    """
    fn = getattr(jacobian, "flat_fn", None)
    if fn is None:
        fn = jacobian.flat_fn = _define("jacobian_flat", *jacobian.flat_parts)
    return fn


def flat_numpy(jacobian: Callable) -> Callable:
    """:func:`flat`'s code with NumPy's semantics: its formulas over NumPy's functions and the
    inputs as ``np.float64`` (``log(0)`` is −inf, ``1/0`` inf, no exception), for the calls where
    Python's ``math`` raises. These ran the executor on the scalar-level plan: 1.75 ms a call
    against 7 µs (``log(x)`` at a zero entry, found by a hunt).

    >>> from jacc import examples, plan
    >>> f = compile_plan(plan(examples.lecture_f(), "reverse"))
    >>> [round(float(v), 3) for v in flat_numpy(f)(2.0, 5.0)]
    [5.5, 1.716]
    """
    fn = getattr(jacobian, "flat_numpy_fn", None)
    if fn is None:
        params, lines, result, env, label = jacobian.flat_parts
        names = {**MATH_NAMES, **NUMPY_NAMES}  # (jacc's float helpers where NumPy has no twin: where, …)
        env = {k: formula(*v.spec, names) if hasattr(v, "spec") else v for k, v in env.items()}
        code = _define("jacobian_flat", params, lines, result, env, label)

        def fn(*floats):
            with np.errstate(all="ignore"):
                return code(*map(np.float64, floats))
        jacobian.flat_numpy_fn = fn
    return fn


def flat_fallback(jacobian: Callable, floats: Sequence[float]) -> tuple:
    """Every entry, in :func:`flat`'s order, where the float code raised (a math domain error):
    :func:`flat_numpy`'s, else (a helper of jacc's own that raises on floats too) the executor's."""
    try:
        return tuple(flat_numpy(jacobian)(*floats))
    except FALLBACK:
        found = jacobian.plan.execute(*floats)
        return tuple(float(found[k]) for k in jacobian.flat_keys)


def flat_constants(jacobian: Callable) -> list[float | None]:
    """Per entry of :func:`flat`'s tuple: its value where the code makes it a constant (a
    structural 0 or ±1, a constant partial), else None.

    >>> from jacc import examples, plan
    >>> flat_constants(compile_plan(plan(examples.lecture_f(), "reverse")))
    [None, None]
    """
    kept = getattr(jacobian, "flat_consts", None)  # (the scalar route and its C build both ask)
    if kept is not None:
        return kept
    _, lines, _, _, _ = jacobian.flat_parts
    literal = {}
    for line in lines:
        target, expr = line.split(" = ", 1)
        value = _literal(expr)
        if value is not None:
            literal[target] = value
    out: list[float | None] = []
    for e in jacobian.flat_exprs:
        sign, name = (-1.0, e[1:]) if e[0] == "-" and e[1:].isidentifier() else (1.0, e)
        value = literal.get(name) if name.isidentifier() else _literal(name)
        out.append(None if value is None else sign * value)
    jacobian.flat_consts = out
    return out


def _literal(expr: str) -> float | None:
    """The value of a float literal such as ``(2.0)`` or ``-1.0``, else None."""
    text = expr.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    try:
        return float(text)
    except ValueError:
        return None


def flat_subset(jacobian: Callable, keep: Sequence[int]) -> Callable:
    """:func:`flat`'s code returning only the entries ``keep`` (and computing only what they
    need)."""
    return _define("jacobian_flat", *_parts(jacobian, keep))


def _parts(jacobian: Callable, keep: Sequence[int] | None) -> tuple:
    """``jacobian.flat_parts`` cut down to the entries ``keep`` (all where None)."""
    params, lines, result, env, label = jacobian.flat_parts
    if keep is not None:
        exprs = [jacobian.flat_exprs[i] for i in keep]
        lines, result = _live(lines, exprs), _tuple_text(exprs)
    return params, lines, result, env, label


def _tuple_text(exprs: list[str]) -> str:
    return "(" + "".join(e + ", " for e in exprs) + ")"


_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+\.?\d*(?:e[+-]?\d+)?|\S")


def _inline(expr: str, params: str, args: list[str]) -> str | None:
    """``expr`` with its parameters replaced by ``args`` when it is plain arithmetic (the same
    float operations as calling its formula, without the call), else None."""
    names = dict(zip(params.split(", "), args))
    out = []
    for t in _TOKEN.findall(expr):
        if t[0].isalpha() or t[0] == "_":
            if t not in names:  # a function or a keyword: keep the formula's own function
                return None
            out.append(names[t])
        else:
            out.append(t)
    return out[0] if len(out) == 1 else "(" + "".join(out) + ")"


def _inline_primal(op: str, args: list[str]) -> str | None:
    if op in UNARY:
        return _inline(UNARY[op][0], "x", args)
    if op in ELEMENTWISE:
        return _inline(ELEMENTWISE[op][0], ELEMENTWISE[op][2], args)
    return None


def _formula(expr: str, params: str) -> Callable:
    """``formula`` over :data:`MATH_NAMES`, remembering its text (``.spec``) so that the same
    code can be built over another namespace (:func:`retarget`)."""
    fn = formula(expr, params, MATH_NAMES)
    fn.spec = (expr, params)
    return fn


def retarget(jacobian: Callable, names: dict, keep: Sequence[int] | None = None) -> Callable:
    """The tuple-returning code of ``jacobian`` (see :func:`flat`; only the entries ``keep``
    where given, as :func:`flat_subset`) with every formula built over ``names`` instead of
    :mod:`math` (e.g. ``jax.numpy``'s functions, to run under ``jax.jit``). Raises ``NameError``
    at the first call where a formula needs a function ``names`` lacks."""
    params, lines, result, env, label = _parts(jacobian, keep)
    env = {k: formula(*v.spec, names) if hasattr(v, "spec") else v for k, v in env.items()}
    return _define("jacobian_flat", params, lines, result, env, label)


def _primal(op: str, params: dict) -> Callable:
    if op in UNARY:
        return _formula(UNARY[op][0], "x")
    if op in ELEMENTWISE:
        return _formula(ELEMENTWISE[op][0], ELEMENTWISE[op][2])
    if op == "where":
        return _formula("where(m, a, b)", "m, a, b")
    if op == "hold":  # (a value without its edge: jacc.lanes' fills at the scalar level)
        return _formula("x", "x")
    if op == "constant":
        value = float(params["value"])
        return lambda: value
    raise CompileError(f"compile: op {op!r} has no scalar formula; use plan.execute")


def _partial(op: str, pos: int, args: list[str], out: str, env: dict) -> str | None:
    """An expression for ∂out/∂arg_pos (its derivative function goes into ``env``), ``None``
    for a structural 1 or ``MINUS`` for a structural −1."""
    if op in UNARY:
        _, deriv, spec = UNARY[op]
        if spec in _UNITS:
            return _UNITS[spec]
        text = _inline(deriv, "x, y", [args[0], out])
        if text is not None:
            return text
        key = f"D_{op}"
        env.setdefault(key, _formula(deriv, "x, y"))
        return f"{key}({args[0]}, {out})"
    if op in ELEMENTWISE:
        _, rules, names = ELEMENTWISE[op]
        spec, deriv = rules[pos]
        if spec in _UNITS:
            return _UNITS[spec]
        text = _inline(deriv, names + ", y", [*args, out])
        if text is not None:
            return text
        key = f"D_{op}_{pos}"
        env.setdefault(key, _formula(deriv, names + ", y"))
        return f"{key}({', '.join(args)}, {out})"
    if op == "where":  # (a mask is a constant, or a recorded one: 1.0 or 0.0)
        return f"(({args[0]}) != 0) * 1.0" if pos == 1 else f"(({args[0]}) == 0) * 1.0"
    raise CompileError(f"compile: op {op!r} has no scalar formula; use plan.execute")


MINUS = "-1.0"  # a structural −1 edge (the scalar algebra's class 2)
_UNITS = {"unit": None, "-unit": MINUS}


def _sum(terms: list, lines: list[str], name: str) -> str | None:
    """Emit the sum of edge terms (``None`` = 1, ``MINUS`` = −1, ``"-x"`` = −x) and return its
    name (a lone structural ±1 or name stays itself). A negated term is subtracted: ``a - x`` is
    bit for bit ``a + (-x)``, one operation fewer."""
    if len(terms) == 1:
        t = terms[0]
        if t is None or t == MINUS or _is_term(t):
            return t
        lines.append(f"{name} = {t}")
        return name
    if len(terms) == 2 and _negated(terms[0]) and not _negated(terms[1]):
        terms = terms[::-1]  # b - x, not -x + b: the same bits (addition commutes), no negation
    text = ""
    for t in terms:
        neg = _negated(t)
        body = "1.0" if t is None or t == MINUS else t[1:] if neg else f"({t})"
        text += ("-" if neg else "") + body if not text else (" - " if neg else " + ") + body
    lines.append(f"{name} = {text}")
    return name


def _is_term(t: str) -> bool:
    """A name, or a negated name (``"-x"``: the sign is carried, not computed)."""
    return t.isidentifier() or (t[0] == "-" and t[1:].isidentifier())


def _negated(t: str | None) -> bool:
    return t == MINUS or (t is not None and t[0] == "-" and _is_term(t))


def _neg(t: str | None) -> str | None:
    """−t for a unit or a (negated) name, without emitting a statement."""
    if t is None or t == MINUS:
        return MINUS if t is None else None
    return t[1:] if t[0] == "-" else "-" + t


def _times(a: str | None, b: str | None, lines: list[str], name: str) -> tuple[str | None, int]:
    """The product of two edge terms and its multiplication count (±1 factors are free; signs
    are carried to where the term is used: ``(-x) * y`` is bit for bit ``-(x * y)``)."""
    unit = (None, MINUS)
    if a in unit and b in unit:
        return (None if a == b else MINUS), 0
    if a in unit or b in unit:
        x = b if a in unit else a
        return (x if MINUS not in (a, b) else _neg(x)), 0
    neg = (a[0] == "-") != (b[0] == "-")
    lines.append(f"{name} = {a.lstrip('-')} * {b.lstrip('-')}")
    return ("-" + name if neg else name), 1
