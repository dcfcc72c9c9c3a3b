"""Compile a plan on a scalar graph into one straight-line Python function.

On graphs of scalars the executor's per-edge bookkeeping costs far more than the arithmetic.
Since the structure of every edge is known before any value is (see ``ScalarAlgebra``), the
whole computation — primal values, local partials and the plan's eliminations — unrolls into
straight-line code over Python floats: one line per multiplication the plan counts. The
formulas are the op table's own (:data:`jacc.ops.UNARY`, :data:`jacc.ops.BINARY`) evaluated
with :mod:`math`. Where ``math`` refuses a value (``log(-1)``, division by zero, overflow) the
compiled function falls back to the plan's ordinary executor, so results keep NumPy's
NaN/inf semantics.

>>> from jacc import examples, plan
>>> f = compile_plan(plan(examples.lecture_f(), "reverse"))
>>> {k: round(v, 3) for k, v in f(2.0, 5.0).items()}
{('v5', 'x1'): 5.5, ('v5', 'x2'): 1.716}
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from .ops import BINARY, UNARY, _tie, formula

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


MATH_NAMES = {"exp": math.exp, "expm1": math.expm1, "log": math.log, "log1p": math.log1p, "sin": math.sin,
              "cos": math.cos, "tan": math.tan, "tanh": math.tanh, "sinh": math.sinh, "cosh": math.cosh,
              "arctan": math.atan, "arcsin": math.asin, "arccos": math.acos, "sqrt": math.sqrt,
              "sign": _sign, "abs": abs, "power": math.pow, "maximum": _maximum, "minimum": _minimum,
              "tie": _tie, "powgrad": _powgrad, "nonzero": lambda a: 1.0 if a == 0 else a}

FALLBACK = (ValueError, ZeroDivisionError, OverflowError)


class CompileError(NotImplementedError):
    """The plan cannot be compiled (array vertices or an op without a scalar formula)."""


def compile_plan(plan: "Plan") -> Callable[..., dict]:
    """A function of the graph's inputs (positional, in ``graph.inputs`` order) returning
    ``{(output, input): float}`` — the same as ``plan.execute`` on a scalar graph."""
    g, problem = plan.graph, plan.problem
    heads = {v for _, v in problem.edges}
    needed = set(heads)
    stack = list(heads)
    while stack:  # every vertex whose value a partial needs
        for u in g.nx.predecessors(stack.pop()):
            if u not in needed:
                needed.add(u)
                stack.append(u)
    # the result's blocks too: an input or output off every path still needs its array shape
    if any(g.shape(v) != () for v in needed | set(problem.wrt) | set(problem.of)):
        raise CompileError("compile: only graphs whose vertices are all scalars (use plan.execute, "
                           "or trace with scalarize=True)")
    names: dict = {}
    env: dict = {}
    lines: list[str] = []

    def var(v: str) -> str:
        return names.setdefault(v, f"v{len(names)}")

    def const(c) -> str:
        key = f"c{len(env)}"
        env[key] = float(c.value)
        return key

    def arg_text(a) -> str:
        return var(a) if isinstance(a, str) else const(a)

    arg_texts: dict[str, list[str]] = {}  # once per vertex: constants get one name each
    for v in g.topological_order():
        d = g.nx.nodes[v]
        if d["op"] == "input" or v not in needed:
            continue
        args = arg_texts[v] = [arg_text(a) for a in d["args"]]
        env[f"F_{var(v)}"] = _primal(d["op"], d["params"])
        lines.append(f"{var(v)} = F_{var(v)}({', '.join(args)})")
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
                if a is None or b is None:
                    prod = b if a is None else a
                else:
                    prod = f"t{count}"
                    lines.append(f"{prod} = {a} * {b}")
                    count += 1
                old = succ.setdefault(i, {}).get(o, "missing")
                new = prod if old == "missing" else _sum([old, prod], lines, f"s{k}_{len(lines)}")
                succ[i][o] = new
                pred.setdefault(o, {})[i] = new
    result = []
    for y in problem.of:
        for x in problem.wrt:
            e = succ.get(x, {}).get(problem.out_key[y], "missing")
            result.append(f"({y!r}, {x!r}): {'0.0' if e == 'missing' else '1.0' if e is None else e}")
    params = ", ".join(var(x) for x in g.inputs)
    src = f"def jacobian({params}):\n    " + "\n    ".join(lines + ["return {" + ", ".join(result) + "}"])
    code = {"__builtins__": {"float": float}, **env}
    exec(compile(src, f"<jacc plan {plan.strategy}>", "exec"), code)  # noqa: S102 - our own generated code
    fast = code["jacobian"]

    def jacobian(*args: float) -> dict:
        try:
            return fast(*[float(a) for a in args])
        except FALLBACK:
            return {k: float(v) for k, v in plan.execute(*args).items()}

    jacobian.source = src
    jacobian.mults = count
    return jacobian


def _primal(op: str, params: dict) -> Callable:
    if op in UNARY:
        return formula(UNARY[op][0], "x", MATH_NAMES)
    if op in BINARY:
        return formula(BINARY[op][0], "a, b", MATH_NAMES)
    if op == "where":
        return lambda m, a, b: a if m else b
    if op == "constant":
        value = float(params["value"])
        return lambda: value
    raise CompileError(f"compile: op {op!r} has no scalar formula; use plan.execute")


def _partial(op: str, pos: int, args: list[str], out: str, env: dict) -> str | None:
    """An expression for ∂out/∂arg_pos (its derivative function goes into ``env``), or ``None``
    for a structural 1."""
    if op in UNARY:
        _, deriv, spec = UNARY[op]
        if spec == "unit":
            return None
        key = f"D_{op}"
        env.setdefault(key, formula(deriv, "x, y", MATH_NAMES))
        return f"{key}({args[0]}, {out})"
    if op in BINARY:
        spec, deriv = BINARY[op][1][pos]
        if spec == "unit":
            return None
        key = f"D_{op}_{pos}"
        env.setdefault(key, formula(deriv, "a, b, y", MATH_NAMES))
        return f"{key}({args[0]}, {args[1]}, {out})"
    if op == "where":
        return f"(1.0 if {args[0]} else 0.0)" if pos == 1 else f"(0.0 if {args[0]} else 1.0)"
    raise CompileError(f"compile: op {op!r} has no scalar formula; use plan.execute")


def _sum(terms: list, lines: list[str], name: str) -> str | None:
    """Emit the sum of edge terms (``None`` = 1) and return its name (a lone ``None`` stays 1)."""
    if len(terms) == 1:
        t = terms[0]
        if t is None or t.isidentifier():
            return t
        lines.append(f"{name} = {t}")
        return name
    lines.append(f"{name} = " + " + ".join("1.0" if t is None else t for t in terms))
    return name
