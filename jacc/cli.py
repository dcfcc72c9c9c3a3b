"""The ``jacc`` command: compare, plan, render, trace, run, bench.

Every command prints a table by default (``--format json|csv`` for machines); bad input gives one
line ``jacc: error: …`` on stderr and exit status 2; files are written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import time
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from . import examples, progress
from .costmodel import NAMED, CostModel, CostModelError
from .eliminate import OrderError, Problem, accumulate, price
from .fileio import dumps_json, write_atomic
from .graph import GraphError, load, read_numbers
from .plan import ValueDependenceWarning, elsewhere, plan
from .strategies import STRATEGIES, UnknownStrategyError

DEFAULT_COMPARE = ("forward", "reverse", "chain", "optimal", "markowitz")


class UsageError(Exception):
    """Bad command-line input: reported in one line with exit status 2."""


# -- output helpers -----------------------------------------------------------------------------


def table(rows: list[dict], columns: Sequence[str], fmt: str, title: str | None = None) -> str:
    """Rows as an aligned text table, JSON (list of objects) or CSV."""
    if fmt == "json":
        return dumps_json(rows, indent=1, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    right = [all(_numeric(r.get(c)) for r in rows) for c in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if rt else v.ljust(w) for v, w, rt in zip(vals, widths, right)).rstrip()

    out = ([title] if title else []) + [line(columns), line(["-" * w for w in widths])]
    return "\n".join(out + [line(r) for r in cells])


def _numeric(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) or x is None


def _cell(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _emit(text: str, out: str | None) -> None:
    if out:
        write_atomic(out, text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text)


# -- the lecture's chain ------------------------------------------------------------------------

MONOMIALS = [(a, b) for a in range(5) for b in range(3)]


def formula(order: list[str], structure: str, at: tuple[int, int] | None = None) -> str | None:
    """The multiplication count of ``order`` on the N, P chain as a polynomial in N and P,
    fitted exactly on small sizes and checked on others (``None`` when no such polynomial fits;
    ``at``: see :func:`fit_formula`)."""

    def cost(n, p):
        prob = Problem.from_graph(examples.np_chain(n, p, structure))
        return price(prob, order)[1]

    return fit_formula(cost, at)


def fit_formula(cost: Callable[[int, int], int], at: tuple[int, int] | None = None) -> str | None:
    """``cost(N, P)`` as a polynomial in N and P (see :func:`formula`), or ``None``; marked
    "(N ≥ 2)" where it does not give ``cost`` at the sizes ``at`` (N, P) shown beside it.

    >>> fit_formula(lambda n, p: n**4 + 2 * n * n * p)
    'N⁴ + 2N²P'
    """
    pts = [(n, p) for n in range(2, 8) for p in range(1, 5)]  # N = 1 is degenerate (1×1 "matrices")
    A = np.array([[n**a * p**b for a, b in MONOMIALS] for n, p in pts], float)
    y = np.array([cost(n, p) for n, p in pts], float)
    coef = np.rint(np.linalg.lstsq(A, y, rcond=None)[0]).astype(int)

    def value(n: int, p: int) -> int:
        return sum(int(c) * n**a * p**b for c, (a, b) in zip(coef, MONOMIALS))

    for n, p in [(9, 7), (13, 2), (20, 5)]:
        if value(n, p) != cost(n, p):
            return None
    suffix = " (N ≥ 2)" if at is not None and value(*at) != cost(*at) else ""  # (N = 1: 1×1 products)
    sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    terms = []
    for c, (a, b) in sorted(zip(coef, MONOMIALS), key=lambda t: (-t[1][0], -t[1][1])):
        if c == 0:
            continue
        mono = (f"N{str(a).translate(sup)}" if a > 1 else "N" if a == 1 else "") + \
               (f"P{str(b).translate(sup)}" if b > 1 else "P" if b == 1 else "")
        terms.append((str(c) if c != 1 or not mono else "") + mono)
    return (" + ".join(terms) or "0") + suffix


def bracketing(problem: Problem, order: list[str], names: dict[tuple, str]) -> str | None:
    """The bracketing an elimination order performs on a chain graph (``None`` elsewhere)."""
    path = [problem.wrt[0]] if len(problem.wrt) == 1 else None
    succ: dict = {}
    for u, v in problem.edges:
        succ.setdefault(u, []).append(v)
    while path and path[-1] in succ:
        nxt = succ[path[-1]]
        if len(nxt) != 1:
            return None
        path.append(nxt[0])
    if not path or len(path) != len(problem.eliminable) + 2:
        return None
    w = path[::-1]  # output first, as the product is written
    exprs = [names.get((w[t + 1], w[t]), f"∂{w[t]}/∂{w[t + 1]}") for t in range(len(w) - 1)]
    bounds = w[1:-1]  # vertex between exprs[i] and exprs[i+1]
    for v in order:
        i = bounds.index(v)
        exprs[i:i + 2] = [f"({exprs[i]}·{exprs[i + 1]})"]
        bounds.pop(i)
    text = exprs[0]
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


def _strategies(arg: str | None, default: Sequence[str]) -> list[str]:
    names = [s.strip().lower() for s in arg.split(",")] if arg else list(default)
    if names == ["all"]:
        return sorted(STRATEGIES)
    for s in names:
        if s not in STRATEGIES:
            raise UsageError(f"unknown strategy {s!r}; valid: {', '.join(sorted(STRATEGIES))}, or 'all'")
    return names


def cmd_compare(args) -> int:
    if args.N < 1 or args.P < 1:
        raise UsageError(f"--N and --P must be positive integers, got N={args.N}, P={args.P}")
    g = examples.np_chain(args.N, args.P, args.structure)
    prob = Problem.from_graph(g)
    names = {("theta", "D"): "∂D/∂θ", ("D", "K"): "∂K/∂D", ("K", "L"): "∂L/∂K"}
    rows = []
    for s in _strategies(args.strategies, DEFAULT_COMPARE):
        p = plan(g, s)
        rows.append({"strategy": s, "bracketing": bracketing(prob, p.order, names), "mults": p.mults,
                     "formula": formula(p.order, args.structure, (args.N, args.P)), "peak_bytes": p.peak_bytes,
                     "order": " → ".join(p.order), "optimal": p.optimal})
    if args.matrix_free:
        rows += matrix_free_rows(args.structure, args.N, args.P, names)
    best = min(r["mults"] for r in rows)
    for r in rows:
        r["x_best"] = r["mults"] / best if best else 1.0
    title = (f"L = f(K(D(θ))), f: R^(N×N)→R, K: R^(N×N)→R^(N×N), D: R^P→R^(N×N); N={args.N}, P={args.P}, "
             f"∂K/∂D {args.structure}")
    cols = ["strategy", "bracketing", "mults", "formula", "peak_bytes", "x_best"]
    if args.run:
        _compare_run(args, rows)
        cols += ["run_mults", "seconds", "max_rel_diff"]
    if args.format == "json":
        _emit(dumps_json({"N": args.N, "P": args.P, "structure": args.structure, "rows": rows},
                         indent=1, ensure_ascii=False), args.out)
    else:
        text = table(rows, cols, args.format, title if args.format == "table" else None)
        if args.format == "table" and args.run:
            text += ("\nrun: the concrete instance L = ½yᵀK⁻¹y + ½log det K with "
                     + {"dense": "K = M·exp(−D/2)·Mᵀ/N + I", "elementwise": "K = exp(−D/2) + 0.1·I",
                        "kronecker": "K = M·D·Mᵀ/N + N·I"}[args.structure]
                     + ", D_ij = Σ_p θ_p (x_ip − x_jp)², traced by jacc; run_mults counts that graph")
        if args.format == "table" and args.matrix_free:
            text += ("\nmf-*: matrix-free, every factor only as products with vectors, each costing the "
                     "factor's nonzeros (M ⊗ M: its two matrix products, 2N³); tangent[..]/adjoint[..] sweep "
                     "those factors")
        _emit(text, args.out)
    return 0


def _matrix_free_chain(structure: str, N: int, P: int) -> tuple[list[int], list[int]]:
    """dims of ∂L/∂K · ∂K/∂D · ∂D/∂θ and the cost of one product of each with a vector: its
    nonzeros (a matrix-vector product multiplies each stored entry once)."""
    k = {"dense": N**4, "elementwise": N * N, "kronecker": 2 * N**3}[structure]  # M⊗M: (M·V)·Mᵀ
    return [1, N * N, N * N, P], [N * N, k, N * N * P]


def matrix_free_rows(structure: str, N: int, P: int, names: dict[tuple, str]) -> list[dict]:
    """The tangent sweep, the adjoint sweep and the optimal matrix-free plan as compare rows.

    >>> [r["mults"] for r in matrix_free_rows("dense", 10, 3, {})]
    [31200, 10400, 10400]
    """
    from .matrix_free import matrix_free_chain_order

    labels = [names.get(e, "") for e in (("K", "L"), ("D", "K"), ("theta", "D"))]

    def cost(mode: str, n: int, p: int) -> int:
        dims, c = _matrix_free_chain(structure, n, p)
        if mode == "tangent":  # one sweep per column of ∂L/∂θ
            return dims[-1] * sum(c)
        if mode == "adjoint":  # one sweep per row
            return dims[0] * sum(c)
        return matrix_free_chain_order(dims, c, c).cost

    dims, c = _matrix_free_chain(structure, N, P)
    plans = {"tangent": f"tangent[{'·'.join(labels)}]", "adjoint": f"adjoint[{'·'.join(labels)}]",
             "both": matrix_free_chain_order(dims, c, c).plan.compact(labels)}
    rows = []
    for mode, name in (("tangent", "mf-tangent"), ("adjoint", "mf-adjoint"), ("both", "mf-optimal")):
        rows.append({"strategy": name, "bracketing": plans[mode], "mults": cost(mode, N, P),
                     "formula": fit_formula(lambda n, p: cost(mode, n, p), (N, P)), "peak_bytes": None,
                     "order": None, "optimal": True if mode == "both" else None})
    return rows


def _compare_run(args, rows: list[dict]) -> None:
    from .trace import trace

    L, theta = examples.np_chain_instance(args.N, args.P, args.structure)
    g = trace(L, theta)
    prob = Problem.from_graph(g)
    values = g.evaluate({"theta": theta})
    ref = None
    for r in rows:
        if r["order"] is None:  # a matrix-free row: priced, not an elimination order to run
            r["run_mults"] = r["seconds"] = r["max_rel_diff"] = None
            continue
        p = plan(g, r["strategy"])
        t0 = time.perf_counter()
        acc = accumulate(prob, values, p.order)
        r["seconds"] = time.perf_counter() - t0
        r["run_mults"] = acc.mults
        J = acc.blocks[g.outputs[0], "theta"]
        ref = J if ref is None else ref
        r["max_rel_diff"] = float(np.max(np.abs(J - ref)) / max(np.max(np.abs(ref)), 1e-300))


# -- graph files --------------------------------------------------------------------------------


def _plan_options(args) -> dict:
    opts: dict = {}
    if getattr(args, "time_limit", None) is not None:
        opts["time_limit"] = args.time_limit
    if getattr(args, "seed", None) is not None:
        opts["seed"] = args.seed
    if getattr(args, "max_iters", None) is not None:
        if args.max_iters < 0:  # (checked whether or not the strategy anneals: auto may not)
            raise UsageError(f"--max-iters must be a count of moves (0 or more), not {args.max_iters}")
        opts["max_iters"] = args.max_iters
    return opts


def _names(text: str | None, option: str) -> list[str] | None:
    """``--wrt``/``--of``'s comma-separated vertex names (None: not given); an empty name or one
    given twice is refused rather than dropped."""
    if text is None:
        return None
    names = text.split(",")
    if "" in names:
        raise UsageError(f"{option} {text!r} holds an empty name: give vertex names separated by commas")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{option} names {', '.join(map(repr, twice))} twice; give each once")
    return names


def _cost_model(args, default: str = "mults") -> CostModel:
    obj: Any = getattr(args, "objective", None) or default
    if obj not in NAMED:
        try:
            obj = {k: float(v) for k, v in (part.split("=") for part in obj.split(","))}
        except ValueError:
            raise UsageError(f"--objective must be mults, memory, time or e.g. mults=1,memory=0.01, "
                             f"not {obj!r}") from None
    return CostModel(obj, getattr(args, "memory_limit", None))


def _registry(elimination: str) -> dict:
    """The strategies of one kind of elimination (vertex strategies serve edges and faces too)."""
    if elimination == "vertex":
        return STRATEGIES
    from .edgeplan import _KINDS

    return {**STRATEGIES, **_KINDS[elimination].strategies}


def _accepts(strategy: str, option: str, elimination: str = "vertex") -> bool:
    import inspect

    fn = _registry(elimination).get(strategy)
    if fn is None:
        return False
    params = inspect.signature(fn).parameters
    # (the edge and face strategies take their time limit among **options)
    return option in params or (option == "time_limit" and any(p.kind is p.VAR_KEYWORD for p in params.values()))


def _plan_for(g, strategy: str, args, objective: str = "mults"):
    elimination = getattr(args, "elimination", "vertex")
    opts = {k: v for k, v in _plan_options(args).items() if _accepts(strategy, k, elimination)}
    return plan(g, strategy, wrt=_names(args.wrt, "--wrt"), of=_names(args.of, "--of"),
                cost_model=_cost_model(args, objective),
                elimination=elimination, **opts)


def cmd_plan(args) -> int:
    g = load(args.graph)
    if args.strategy.lower() != "all":
        p = _plan_for(g, args.strategy.lower(), args)
        if args.elimination != "vertex" and args.format != "table":
            rows = [{"step": n, "move": p.describe_step(s), "mults": s.mults, "fill_in": len(s.fill_in),
                     "added_to": len(s.absorbed)} for n, s in enumerate(p.steps, 1)]
            text = (json.dumps({"strategy": p.strategy, "elimination": p.elimination, "mults": p.mults,
                                "optimal": p.optimal, "lower_bound": p.lower_bound, "steps": rows})
                    if args.format == "json" else table(rows, list(rows[0]) if rows else ["step"], "csv"))
            _emit(text, args.out)
        elif args.format == "json":
            _emit(p.to_json(), args.out)
        elif args.format == "csv":
            _emit(table([{"step": n, "vertex": s.vertex, "mults": s.mults, "fill_in": len(s.fill_in),
                          "produced_bytes": s.produced_bytes, "live_bytes": s.live_bytes, "peak_bytes": s.peak_bytes}
                         for n, s in enumerate(p.steps, 1)],
                        ["step", "vertex", "mults", "fill_in", "produced_bytes", "live_bytes", "peak_bytes"], "csv"),
                  args.out)
        else:
            _emit(str(p), args.out)
        return 0
    rows = []
    for s in sorted(_registry(args.elimination)):
        try:
            p = _plan_for(g, s, args)
        except (ValueError, CostModelError, TimeoutError) as e:  # e.g. too large for 'optimal', or face
            # greedy cut by --time-limit with no sequence to complete: say so, keep going
            rows.append({"strategy": s, "note": str(e).split(";")[0] or "stopped by the time limit"})
            continue
        rows.append({"strategy": p.strategy, "mults": p.mults, "flops": p.flops,
                     "peak_bytes": getattr(p, "peak_bytes", None),
                     "plan_seconds": p.planning_seconds, "optimal": p.optimal, "note": ""})
    best = min((r["mults"] for r in rows if "mults" in r), default=None)
    for r in rows:
        if "mults" in r:
            r["x_best"] = r["mults"] / best if best else 1.0
    cols = ["strategy", "mults", "flops", "peak_bytes", "plan_seconds", "optimal", "x_best", "note"]
    _emit(table(rows, cols, args.format, f"{g.name}: {len(Problem.from_graph(g).eliminable)} eliminable vertices"),
          args.out)
    return 0


def cmd_render(args) -> int:
    from .render import chain_tree, render, write

    g = load(args.graph)
    p = _plan_for(g, args.strategy.lower(), args) if args.strategy else None
    if args.steps and p is None:
        raise UsageError("--steps needs --strategy: the pictures show the plan's elimination steps")
    if args.tree:
        if p is None:
            raise UsageError("--tree needs --strategy (e.g. --strategy chain)")
        d = chain_tree(p)
        if d is None:
            raise UsageError(f"--tree: graph {g.name!r} is not a chain (one path from input to output)")
        written = [write(d, args.output)]
    else:
        written = render(g, p, args.output, steps_dir=args.steps, fmt=args.fmt)
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return 0


def parse_at(text: str, g) -> dict[str, np.ndarray]:
    """``x1=2,x2=5`` or ``x=[1,2,3],A=@A.npy,x[0]=-1`` → input arrays (checked against the graph).

    Grammar: ``NAME=VALUE`` pairs separated by commas. A NAME is everything up to its ``=``
    (vertex names never hold ``=``, ``,`` or ``@``, so ``x[0]``, ``layer-1.w`` and ``θ`` work). A
    VALUE is a number (``inf``, ``-inf``, ``nan`` included), a JSON list running to its matching
    ``]``, or ``@FILE`` (``.npy``, or ``.npz`` holding one array or one named like the input)
    running to the next ``,NAME=`` of an input, so a path may hold commas."""
    out: dict[str, np.ndarray] = {}
    for name, raw in _at_pairs(text, g.inputs):
        if name not in g.inputs:
            raise UsageError(f"--at: {name!r} is not an input of {g.name!r}; its inputs are {', '.join(g.inputs)}")
        if name in out:
            raise UsageError(f"--at: input {name!r} is given twice; give each input once")
        out[name] = _at_file(name, raw[1:]) if raw.startswith("@") else _at_literal(name, raw)
    missing = [x for x in g.inputs if x not in out]
    if missing:
        raise UsageError(f"--at must give every input of {g.name!r} ({', '.join(g.inputs)}); missing {missing}")
    for x in g.inputs:
        if out[x].shape != g.shape(x):
            raise UsageError(f"--at {x}: shape {out[x].shape}, the graph expects {g.shape(x)}")
    return out


def _at_pairs(text: str, inputs: Sequence[str]) -> list[tuple[str, str]]:
    """Split ``--at`` text into (name, raw value) pairs by the grammar of :func:`parse_at`."""
    pairs, pos = [], 0
    while True:
        eq = text.find("=", pos)
        name = text[pos:eq].strip() if eq >= 0 else ""
        if not name:
            raise UsageError(f"--at must look like name=value,name=value (e.g. x1=2,x2=5), got {text!r}")
        end = _value_end(text, eq + 1, inputs, name)
        pairs.append((name, text[eq + 1:end].strip()))
        if end >= len(text):
            return pairs
        pos = end + 1


def _value_end(text: str, start: int, inputs: Sequence[str], name: str) -> int:
    """Where the value that starts at ``start`` ends: at the comma after it, or the text's end."""
    body = text[start:].lstrip()
    begin = len(text) - len(body)
    if body.startswith("@"):  # a path: up to the next ",NAME=" that names an input
        cuts = [c for c in range(begin, len(text)) if text[c] == ","
                and any(text[c + 1:].lstrip().startswith(f"{x}=") for x in inputs)]
        return cuts[0] if cuts else len(text)
    if body.startswith("["):
        depth = 0
        for k in range(begin, len(text)):
            depth += {"[": 1, "]": -1}.get(text[k], 0)
            if depth == 0:
                after = text[k + 1:].lstrip()
                if after and not after.startswith(","):
                    raise UsageError(f"--at {name}: unexpected {after[:20]!r} after the list; separate pairs with ','")
                return len(text) - len(after)
        raise UsageError(f"--at {name}: the list has no closing ']'")
    comma = text.find(",", start)
    return comma if comma >= 0 else len(text)


def _at_literal(name: str, raw: str) -> np.ndarray:
    try:
        data = json.loads(re.sub(r'(?<!")(-?\b(?:inf|nan)\b)', r'"\1"', raw))  # bare inf/nan → JSON strings
        return read_numbers(data)
    except (ValueError, RecursionError):  # not JSON, over-long digits, deep nesting, or not numbers
        raise UsageError(f"--at {name}={raw[:40]!r}: not a number or a JSON list of numbers "
                         "(e.g. 2, -1.5, inf, [1, 2] or [[1, 0], [0, 1]])") from None


def _digits(text: str) -> int:
    """``--digits``: a whole number of decimal places, 0 to 17."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 17:
        raise argparse.ArgumentTypeError(f"must be a whole number of decimal places from 0 to 17, not {text!r}")
    return n


def _at_file(name: str, path: str) -> np.ndarray:
    if not path:
        raise UsageError(f"--at {name}=@: name a .npy or .npz file after '@'")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - NumPy reports bad files as OSError, ValueError, EOFError, BadZipFile…
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if "pickle" in reason:  # (NumPy's reading of any file that is not .npy or .npz: its advice does not apply)
            reason = "its contents are not in NumPy's .npy or .npz format"
        raise UsageError(f"--at {name}: cannot read {path}: {reason}; give a .npy or .npz file") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            key = name if name in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise UsageError(f"--at {name}: {path} holds arrays {keys or 'none'}; store one array, or one "
                                 f"named {name!r}")
            loaded = loaded[key]
    if loaded.dtype.kind not in "iuf":
        raise UsageError(f"--at {name}: {path} holds {loaded.dtype} values; jacc needs real numbers")
    return np.asarray(loaded, dtype=float)


def cmd_trace(args) -> int:
    from . import tables

    g = load(args.graph)
    at = parse_at(args.at, g)
    modes = [args.mode] if args.mode else ["primal", "forward", "reverse"]
    parts = []
    for mode in modes:
        if mode == "primal":
            t = tables.primal_trace(g, at, ascii=args.ascii)
        elif mode == "forward":
            t = tables.tangent_trace(g, at, args.wrt or g.inputs[0], ascii=args.ascii)
        else:
            t = tables.adjoint_trace(g, at, args.output, ascii=args.ascii)
        parts.append(t.format(args.format, digits=args.digits))
    if args.format == "json":
        _emit(json.dumps([json.loads(p) for p in parts], indent=1, ensure_ascii=False), args.out)
    else:
        _emit("\n\n".join(parts), args.out)
    return 0


def _compiled(p, backend: str):
    """``p.compile(backend)``, its refusal said as the command line's fix (the API's names another)."""
    from .compile import CompileError
    from .program import TooLongForXLA

    try:
        return p.compile(backend)
    except (CompileError, TooLongForXLA) as e:
        why = re.sub(r"\s*\(use plan\.execute.*?\)|;? the NumPy program runs", "", str(e).splitlines()[0])
        raise UsageError(f"--backend {backend}: {why}; run it with --backend numpy or --backend interpret") from None


def cmd_run(args) -> int:
    g = load(args.graph)
    at = parse_at(args.at, g)
    # it runs the plan, as jacobian does (edge and face plans price multiplications alone)
    vertex = getattr(args, "elimination", "vertex") == "vertex"
    p = _plan_for(g, args.strategy.lower(), args, "time" if vertex else "mults")
    from .api import check_fits

    check_fits(p, g, False, args.memory_limit, cli=True)  # the dense blocks too, before anything is allocated
    values = g.evaluate(at)
    message = elsewhere(g, values)
    if message is not None:  # (said once, as the CLI says things; not again as the plan's warning)
        print(f"jacc: warning: {message}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValueDependenceWarning)
        blocks = (p.execute(**at) if args.backend == "interpret"
                  else {k: np.asarray(J) for k, J in _compiled(p, args.backend)(*[at[x] for x in g.inputs]).items()})
    if args.output:
        ext = os.path.splitext(args.output)[1]
        buf = io.BytesIO()
        if ext == ".npy":
            if len(blocks) != 1:
                raise UsageError(f"{len(blocks)} Jacobian blocks: write .npz (one array per output/input pair)")
            np.save(buf, next(iter(blocks.values())))
        elif ext == ".npz":
            named: dict[str, tuple[str, str]] = {}
            for y, x in blocks:
                other = named.setdefault(f"d{y}_d{x}", (y, x))
                if other != (y, x):
                    raise UsageError(f"the blocks ∂{other[0]}/∂{other[1]} and ∂{y}/∂{x} would both be stored as "
                                     f"'d{y}_d{x}' in {args.output}: write them to two files with --of/--wrt, or "
                                     "use --format json")
            np.savez(buf, **{key: blocks[yx] for key, yx in named.items()})
        else:
            raise UsageError(f"-o must end in .npy or .npz, got {args.output!r}")
        write_atomic(args.output, buf.getvalue())
        print(f"wrote {args.output} ({p.mults:,} mults, strategy {p.strategy})", file=sys.stderr)
        return 0
    if args.format == "json":  # (standard JSON: non-finite entries as "nan", "inf", "-inf", as graph files)
        print(dumps_json({"outputs": {y: values[y] for y in p.of},
                          "jacobian": {f"d{y}/d{x}": J for (y, x), J in blocks.items()},
                          "mults": p.mults, "strategy": p.strategy}, indent=1, ensure_ascii=False))
        return 0
    with np.printoptions(precision=6, linewidth=100):  # (not suppress=True: 1e-7 printed as 0.)
        for y in p.of:
            print(f"{y} = {values[y]}")
        for (y, x), J in blocks.items():
            print(f"∂{y}/∂{x} (shape {J.shape}) =\n{J}")
    print(f"# {p.mults:,} mults, strategy {p.strategy}")
    return 0


def cmd_bench(args) -> int:
    if args.planning:
        from . import perf

        perf.run(quick=args.size == "small")
        return 0
    if args.sparse:
        from . import scale

        scale.run(args.size)
        return 0
    from . import bench, machine

    advice = machine.blas_advice()
    if advice:
        print(f"note: {advice}", file=sys.stderr)
    res = bench.run(problems=args.problems.split(",") if args.problems else None,
                    strategies=_strategies(args.strategies, sorted(STRATEGIES)) if args.strategies else None,
                    size=args.size, baselines=args.baselines, budget=args.budget, level=args.level,
                    repeats=args.repeats,
                    backends=args.backends.split(",") if args.backends else None)
    _emit(res.format(args.format), args.out)
    if args.plot:
        res.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# -- parser -------------------------------------------------------------------------------------

EXAMPLES = {
    "compare": """examples:
  jacc compare --N 10 --P 3                       # lecture: forward 30,300 vs reverse 10,300 mults
  jacc compare --N 10 --P 3 --structure elementwise --format json
  jacc compare --N 20 --P 5 --run                 # also execute every ordering and time it
  jacc compare --matrix-free                      # add tangent/adjoint sweeps and the optimal matrix-free plan""",
    "plan": """examples:
  jacc plan graphs/three_layer.json               # the auto plan's report
  jacc plan graphs/three_layer.json --strategy all
  jacc plan graphs/np_chain.json --strategy optimal --format json -o plan.json""",
    "render": """examples:
  jacc render graphs/lecture_f.json -o lecture.svg
  jacc render graphs/three_layer.json -o net.png --strategy markowitz --steps steps/
  jacc render graphs/np_chain.json -o tree.svg --strategy chain --tree""",
    "trace": """examples:
  jacc trace graphs/lecture_f.json --at x1=2,x2=5
  jacc trace graphs/lecture_f.json --at x1=2,x2=5 --mode forward --wrt x1
  jacc trace graphs/lecture_f.json --at x1=2,x2=5 --mode reverse""",
    "run": """examples:
  jacc run graphs/lecture_f.json --at x1=2,x2=5
  jacc run graphs/lecture_f.json --at x1=2,x2=5 --backend numpy   # the plan as one generated program
  jacc run graphs/single_layer.json --at A=@A.npy,x=[1,2,3,4],b=[0,0,0] -o J.npz""",
    "bench": """examples:
  jacc bench --size small --format table
  jacc bench --size full --baselines --format table --plot bench.svg
  jacc bench --level scalar --problems lion,roeflux,heart
  jacc bench --planning                           # planner speed: chain DP, markowitz, optimal
  jacc bench --sparse --size full                 # sparse=True over 10⁶ interfaces: time, peak memory""",
}


def _plan_args(p: argparse.ArgumentParser, default: str | None = "auto", objective: str = "mults",
               runs: bool = False) -> None:
    p.add_argument("--strategy", default=default, help=f"strategy name (default {default}): "
                   + ", ".join(sorted(STRATEGIES)))
    p.add_argument("--wrt", help="comma-separated inputs to differentiate with respect to (default: all)")
    p.add_argument("--of", help="comma-separated outputs to differentiate (default: all)")
    p.add_argument("--objective", help=f"mults, memory, time (mults + one per value held at the peak), or weights "
                   f"like mults=1,memory=0.01 (default {objective})")
    p.add_argument("--memory-limit", type=int, help="bytes of live Jacobians the plan may hold"
                   + ("; the dense Jacobian it returns must fit too" if runs else ""))
    p.add_argument("--time-limit", type=float, help="seconds for optimal/anneal/auto searches")
    p.add_argument("--seed", type=int, help="seed for randomised strategies")
    p.add_argument("--max-iters", type=int, help="moves for anneal (default 400; the same seed gives the same "
                   "order on any machine unless --time-limit cuts the run short)")
    p.add_argument("--elimination", choices=["vertex", "edge", "face"], default="vertex",
                   help="eliminate vertices (default), single edges or faces (Naumann); edge and face plans "
                   "take forward, reverse, greedy, optimal, auto, or any vertex strategy's order")


def _fmt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("-o", "--out", help="write the output to this file (atomically) instead of stdout")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (a command's parser names it: "jacc run: …")
        raise UsageError(message if self.prog == "jacc" else f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jacc", description="jacc — plan and run the cheapest Jacobian accumulation.",
                epilog="run 'jacc COMMAND --help' for a command's options and examples")
    p.add_argument("--version", action="version", version="jacc " + __import__("jacc").__version__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help: str, fn: Callable) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        c.set_defaults(func=fn)
        return c

    c = add("compare", "compare accumulation orderings on the lecture's L = f(K(D(θ)))", cmd_compare)
    c.add_argument("--N", type=int, default=10, help="K and D are N×N (default 10)")
    c.add_argument("--P", type=int, default=3, help="θ has P entries (default 3)")
    c.add_argument("--structure", choices=list(examples.STRUCTURES), default="dense",
                   help="∂K/∂D dense (as the lecture prices it), elementwise (diagonal) or kronecker "
                   "(K = M·D·Mᵀ: M ⊗ M kept as two factors)")
    c.add_argument("--strategies", help=f"comma-separated (default {','.join(DEFAULT_COMPARE)}) or 'all'")
    c.add_argument("--run", action="store_true", help="execute every ordering on a concrete GP likelihood")
    c.add_argument("--matrix-free", action="store_true",
                   help="add tangent, adjoint and optimal matrix-free plans (factors only as products with vectors)")
    _fmt(c)

    c = add("plan", "plan a graph file: the report, or a table of all strategies", cmd_plan)
    c.add_argument("graph", help="graph file (JSON)")
    _plan_args(c)
    _fmt(c)

    c = add("render", "draw a graph file (and a plan) with Graphviz", cmd_render)
    c.add_argument("graph", help="graph file (JSON)")
    c.add_argument("-o", "--output", required=True, help="picture to write: .svg, .png, .pdf or .dot")
    c.add_argument("--fmt", choices=["svg", "png", "pdf", "dot"], help="format (default: from the extension)")
    c.add_argument("--steps", metavar="DIR", help="also write one picture per elimination step to DIR")
    c.add_argument("--tree", action="store_true", help="draw the chain plan's bracketing tree instead")
    _plan_args(c, default=None)

    c = add("trace", "print the lecture's evaluation traces (primal, tangent, adjoint)", cmd_trace)
    c.add_argument("graph", help="graph file (JSON)")
    c.add_argument("--at", required=True, help="input values, e.g. x1=2,x2=5")
    c.add_argument("--mode", choices=["primal", "forward", "reverse"], help="one table (default: all three)")
    c.add_argument("--wrt", help="input to seed the forward tangent with (default: the first)")
    c.add_argument("--output", help="output to seed the reverse adjoint with (default: the only one)")
    c.add_argument("--digits", type=_digits, default=3, help="decimal places (default 3)")
    c.add_argument("--ascii", action="store_true", help="v-1, x1_dot … instead of v₋₁, ẋ1")
    _fmt(c)

    c = add("run", "evaluate a graph file's Jacobian at given inputs", cmd_run)
    c.add_argument("graph", help="graph file (JSON)")
    c.add_argument("--at", required=True, help="input values, e.g. x1=2,x2=5 or x=[1,2],A=@A.npy")
    c.add_argument("-o", "--output", help="save the Jacobian: .npy (one block) or .npz (all blocks)")
    c.add_argument("--format", choices=["table", "json"], default="table")
    c.add_argument("--backend", choices=["interpret", "numpy", "jax", "torch", "scalar", "c"], default="interpret",
                   help="run the plan on the executor (default), or compiled: one NumPy, jax.jit or PyTorch "
                   "program, or straight-line float code (scalar; all-scalar graphs), or that code built by the C "
                   "compiler (c)")
    _plan_args(c, objective="time", runs=True)

    c = add("bench", "benchmark plan quality and speed on the literature suite", cmd_bench)
    c.add_argument("--problems", help="comma-separated problem names (default: all)")
    c.add_argument("--strategies", help="comma-separated strategies (default: all)")
    c.add_argument("--size", choices=["small", "full"], default="small")
    c.add_argument("--baselines", action="store_true", help="also time jax.jacfwd/jacrev and torch.func")
    c.add_argument("--budget", type=float, default=60.0, help="seconds of search per problem (default 60)")
    c.add_argument("--level", choices=["array", "scalar"], default="array",
                   help="trace problems as array code (default) or at the scalar level of the AD literature "
                   "(vector inputs split into scalars; scalar plans also run compiled)")
    c.add_argument("--repeats", type=int, default=5, help="timing repeats for --baselines (default 5)")
    c.add_argument("--backends", help="jacobian backends timed with --baselines, comma-separated: auto (jacobian's "
                   "defaults), jax, torch and c (the defaults with that backend), numpy, interpret (the best plan's "
                   "order), auto-once, numpy-once, jax-once, torch-once, c-once (-once: retrace=False; default: "
                   "auto and auto-once, the jax and torch pairs when installed, c-once with a C compiler)")
    c.add_argument("--plot", help="save a bar chart (SVG/PNG; needs matplotlib)")
    c.add_argument("--planning", action="store_true", help="benchmark the planners instead: chain DP vs "
                   "numpy, markowitz on random graphs, optimal (--size full: 10⁴/10⁵ vertices and 15/20 "
                   "eliminable, ~2 min; small: quick sizes); prints figures, ignores --format/-o")
    c.add_argument("--sparse", action="store_true", help="benchmark sparse=True at scale instead: the Roe flux "
                   "over 10⁶ interfaces (--size full, ~15 s, 2 GB; small: 10⁴) in a fresh process, first call, "
                   "later calls and peak memory against the 2 GiB target; ignores --format/-o")
    _fmt(c)
    return p


ERRORS = (UsageError, GraphError, OrderError, CostModelError, UnknownStrategyError, ValueError,
          NotImplementedError, RuntimeError, OSError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        with progress.shown(sys.stderr.isatty()):  # long searches report on a terminal
            return args.func(args)
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    except BrokenPipeError:  # e.g. `jacc plan … | head`: the reader left, nothing to report
        return 0
    except ERRORS as e:
        text = (f"{e.strerror}{'' if e.filename is None else f': {e.filename}'}"
                if isinstance(e, OSError) and e.strerror else str(e))
        msg = text.splitlines()[0] if text else type(e).__name__  # (not "[Errno 21] cannot write …")
        print(f"jacc: error: {msg}", file=sys.stderr)
        return 2
    except MemoryError as e:  # e.g. evaluating a graph whose vertices hold 10¹² numbers
        what = (str(e).splitlines() or ["an allocation failed"])[0]
        command = f"jacc {argv[0]}" if argv else "jacc"
        print(f"jacc: error: {command} needs more memory than is available: {what}; use smaller shapes or a "
              "machine with more memory ('jacc plan' prices a graph without evaluating it)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jacc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
