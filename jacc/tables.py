"""The lecture's evaluation-trace tables: forward primal, forward tangent and reverse adjoint.

Vertices are renamed with the lecture's numbering (:func:`numbering`: the n inputs become
v₋ₙ₊₁ … v₀, the rest v₁, v₂, … in topological order) and every row reads
``lhs = formula = value``, e.g. ``v₁ = ln v₋₁ = 0.693``. Formulas come from small per-op
templates (:data:`PRIMAL`, :data:`PARTIAL`) with a generic fallback (``op(args; params)`` for the
primal, ``∂v/∂u · u̇`` and ``v̄ ∂v/∂u`` for the derivatives); the *numbers* of the derivative
traces come from jacc's own numeric partials (:meth:`Graph.linearise`), never from the
templates, so a table is also a check of the op table.

Array vertices: the tables generalise rather than refuse. Values are printed compactly on one
line as nested lists (``[[0, 0.2], [0.6, 1]]``, long axes summarised with …); the tangent seed
is ẋ = 𝟙 (an array of ones, or the ``seed`` you pass) and the adjoint seed is ȳ = 𝟙, so the
adjoint trace then holds the gradient of ``sum(y)`` and the tangent trace the directional
derivative along 𝟙. Elementwise templates are
used for the reverse trace only where no broadcasting sums are hidden (argument shape equals
result shape); elsewhere the generic ``v̄ ∂v/∂u`` form is shown. Only graphs with ``abstract``
(planning-only) vertices are refused, since they cannot be evaluated.

Accented names are Unicode NFC (``ẋ1`` uses the precomposed ẋ, ``v̇₁`` a combining dot);
``ascii=True`` gives ``v-1``, ``x1_dot``, ``v5_bar`` and ``*``/``-`` instead.

>>> from jacc.examples import lecture_f
>>> print(primal_trace(lecture_f(), {"x1": 2, "x2": 5}).format())
Forward Primal Trace of lecture_f at x1 = 2, x2 = 5
v₋₁ = x1       = 2
v₀  = x2       = 5
───────────────────────
v₁  = ln v₋₁   = 0.693
v₂  = v₋₁ × v₀ = 10
v₃  = sin v₀   = -0.959
v₄  = v₁ + v₂  = 10.693
v₅  = v₄ − v₃  = 11.652
───────────────────────
y   = v₅       = 11.652
>>> adjoint_trace(lecture_f(), [2, 5]).rows[-2:]
[('x̄1', 'v̄₋₁', 5.5), ('x̄2', 'v̄₀', 1.7163378145367738)]
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import networkx as nx
import numpy as np

from . import structure as S
from .graph import Const, Graph
from .ops import OPS

__all__ = ["Table", "numbering", "primal_trace", "tangent_trace", "adjoint_trace", "PRIMAL", "PARTIAL"]

Value = float | np.ndarray

# -- templates --------------------------------------------------------------------------------

#: op name → primal formula; ``{0}``, ``{1}``, … are the (numbered) arguments.
PRIMAL: dict[str, str] = {
    "log": "ln {0}", "exp": "exp {0}", "expm1": "exp {0} − 1", "log1p": "ln(1 + {0})",
    "sin": "sin {0}", "cos": "cos {0}", "tan": "tan {0}", "tanh": "tanh {0}", "sinh": "sinh {0}",
    "cosh": "cosh {0}", "arctan": "arctan {0}", "arcsin": "arcsin {0}", "arccos": "arccos {0}",
    "sqrt": "√{0}", "square": "{0}²", "reciprocal": "1 / {0}", "abs": "|{0}|", "neg": "−{0}",
    "identity": "{0}",
    "add": "{0} + {1}", "sub": "{0} − {1}", "mul": "{0} × {1}", "div": "{0} / {1}", "pow": "{0}^{1}",
    "maximum": "max({0}, {1})", "minimum": "min({0}, {1})",
    "matmul": "{0} @ {1}", "sum": "Σ {0}", "mean": "mean {0}", "transpose": "{0}ᵀ",
    "where": "where({0}, {1}, {2})",
}

#: op name → one ``(sign, term)`` per argument position: the local partial applied to a carried
#: derivative ``{t}`` (the argument's tangent going forward, the result's adjoint going back);
#: ``{y}`` is the result itself. Elementwise ops only: these read the same in both directions.
PARTIAL: dict[str, list[tuple[str, str]]] = {
    "log": [("+", "{t} / {0}")],
    "exp": [("+", "{t} × exp {0}")],
    "expm1": [("+", "{t} × exp {0}")],
    "log1p": [("+", "{t} / (1 + {0})")],
    "sin": [("+", "{t} × cos {0}")],
    "cos": [("−", "{t} × sin {0}")],
    "tan": [("+", "{t} × (1 + {y}²)")],
    "tanh": [("+", "{t} × (1 − {y}²)")],
    "sinh": [("+", "{t} × cosh {0}")],
    "cosh": [("+", "{t} × sinh {0}")],
    "arctan": [("+", "{t} / (1 + {0}²)")],
    "arcsin": [("+", "{t} / √(1 − {0}²)")],
    "arccos": [("−", "{t} / √(1 − {0}²)")],
    "sqrt": [("+", "{t} / (2 × {y})")],
    "square": [("+", "{t} × 2 × {0}")],
    "reciprocal": [("−", "{t} / {0}²")],
    "abs": [("+", "{t} × sign {0}")],
    "neg": [("−", "{t}")],
    "identity": [("+", "{t}")],
    "add": [("+", "{t}"), ("+", "{t}")],
    "sub": [("+", "{t}"), ("−", "{t}")],
    "mul": [("+", "{t} × {1}"), ("+", "{t} × {0}")],
    "div": [("+", "{t} / {1}"), ("−", "{t} × {0} / {1}²")],
    "pow": [("+", "{t} × {1} × {0}^({1} − 1)"), ("+", "{t} × ln {0} × {y}")],
    "gram_join": [("+", "{t}"), ("+", "{t}")],
}

#: Tangent terms of (multi)linear non-elementwise ops; the reverse trace uses the generic form.
FORWARD_ONLY: dict[str, list[tuple[str, str]]] = {
    "matmul": [("+", "{t} @ {1}"), ("+", "{0} @ {t}")],
    "matmul_hold_a": [("+", "{t} @ {1}"), ("+", "{0} @ {t}")],  # (only the unheld position is read)
    "matmul_hold_b": [("+", "{t} @ {1}"), ("+", "{0} @ {t}")],
    "sum": [("+", "Σ {t}")],
    "mean": [("+", "mean {t}")],
    "transpose": [("+", "{t}ᵀ")],
}

_TANGENT_FALLBACK = "∂{y}/∂{u} · {t}"
_ADJOINT_GENERIC = "{t} ∂{y}/∂{u}"

_ASCII = [("×", "*"), ("−", "-"), ("√", "sqrt"), ("²", "^2"), ("Σ ", "sum "), ("∂", "d"), ("·", "*"),
          ("ᵀ", ".T"), ("ln(", "log("), ("ln ", "log ")]
_SUB = str.maketrans("-0123456789", "₋₀₁₂₃₄₅₆₇₈₉")
_DOT, _BAR = "\u0307", "\u0304"
TITLES = {"primal": "Forward Primal Trace", "tangent": "Forward Tangent (Derivative) Trace",
          "adjoint": "Reverse Adjoint (Derivative) Trace"}


def _ascii_text(s: str) -> str:
    for a, b in _ASCII:
        s = s.replace(a, b)
    return s


# -- numbers ----------------------------------------------------------------------------------


def _num(x: float, digits: int | None = 3, minus: str = "-") -> str:
    """``x`` with ``digits`` decimals and trailing zeros dropped (11.652, 5.5, 10)."""
    x = float(x)
    if not math.isfinite(x):
        return str(x).replace("-", minus)
    if digits is None:
        s = repr(x)
        s = s[:-2] if s.endswith(".0") else s
    elif x != 0 and (abs(x) < 10.0 ** -digits or abs(x) >= 1e12):
        s = f"{x:.{max(digits, 1)}g}"
    else:
        s = f"{x:.{digits}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
    return s.replace("-", minus)


def _value_text(v: Value, digits: int | None, ascii: bool = False, edge: int = 3) -> str:
    """A scalar as :func:`_num`; an array as one line of nested lists, long axes summarised."""
    if np.ndim(v) == 0:
        return _num(float(v), digits)
    a = np.asarray(v)
    n = a.shape[0]
    idx = list(range(n)) if n <= 2 * edge + 1 else [*range(edge), None, *range(n - edge, n)]
    gap = "..." if ascii else "…"
    return "[" + ", ".join(gap if i is None else _value_text(a[i], digits, ascii, edge) for i in idx) + "]"


def _value_json(v: Value, digits: int | None) -> Any:
    a = np.asarray(v, dtype=float)
    if digits is not None:
        a = np.round(a, digits)
    a = np.where(np.isfinite(a), a, np.nan)
    out = a.tolist()
    return _nan_to_none(out)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, list):
        return [_nan_to_none(y) for y in x]
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


# -- the table --------------------------------------------------------------------------------


def _width(s: str) -> int:
    """Display width: combining marks (the dot and bar accents) take no column."""
    return sum(0 if unicodedata.combining(c) else 1 for c in s)


def _pad(s: str, n: int) -> str:
    return s + " " * (n - _width(s))


@dataclass
class Table:
    """An evaluation trace: rows ``(lhs, formula, value)``, with rules drawn before the row
    indices in ``rules`` (the lecture's lines between inputs, body and outputs).

    >>> t = Table("demo", [("v₀", "x", 2.0), ("v₁", "v₀ × v₀", 4.0)], rules=(1,))
    >>> print(t.format())
    demo
    v₀ = x       = 2
    ────────────────
    v₁ = v₀ × v₀ = 4
    >>> t.format("csv").splitlines()[1]
    'v₀,x,2'
    """

    title: str
    rows: list[tuple[str, str, Value]]
    rules: tuple[int, ...] = ()
    ascii: bool = False
    meta: dict = field(default_factory=dict)

    def value(self, lhs: str) -> Value:
        """The value of the last row whose left-hand side is ``lhs``."""
        for row in reversed(self.rows):
            if row[0] == lhs:
                return row[2]
        raise KeyError(f"no row {lhs!r} in table {self.title!r}; rows: {', '.join(r[0] for r in self.rows)}")

    def format(self, fmt: str = "table", digits: int | None = 3) -> str:
        """The table as aligned text (``"table"``), ``"json"`` (a list of objects with ``lhs``,
        ``formula``, ``value``; arrays as nested lists, non-finite values as null) or ``"csv"``.
        ``digits`` is the number of decimals shown (``None``: full precision)."""
        if fmt == "json":
            return json.dumps([{"lhs": l, "formula": f, "value": _value_json(v, digits)} for l, f, v in self.rows],
                              ensure_ascii=False)
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["lhs", "formula", "value"])
            for l, f, v in self.rows:
                w.writerow([l, f, _value_text(v, digits, self.ascii)])
            return buf.getvalue()
        if fmt != "table":
            raise ValueError(f"unknown table format {fmt!r}; use 'table', 'json' or 'csv'")
        vals = [_value_text(v, digits, self.ascii) for _, _, v in self.rows]
        wl = max((_width(r[0]) for r in self.rows), default=0)
        wf = max((_width(r[1]) for r in self.rows), default=0)
        lines = [f"{_pad(l, wl)} = {_pad(f, wf)} = {v}" for (l, f, _), v in zip(self.rows, vals)]
        width = max([_width(s) for s in lines] + [1])
        rule = ("-" if self.ascii else "─") * width
        out = [self.title] if self.title else []
        for i, line in enumerate(lines):
            if i in self.rules and 0 < i:
                out.append(rule)
            out.append(line)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


# -- naming -----------------------------------------------------------------------------------


def _vname(k: int, ascii: bool) -> str:
    return f"v{k}" if ascii else "v" + str(k).translate(_SUB)


def numbering(graph: Graph, ascii: bool = False) -> dict[str, str]:
    """The lecture's names: inputs v₋ₙ₊₁ … v₀ in input order, then v₁, v₂, … in topological order.

    >>> from jacc.examples import lecture_f
    >>> numbering(lecture_f())
    {'x1': 'v₋₁', 'x2': 'v₀', 'v1': 'v₁', 'v2': 'v₂', 'v3': 'v₃', 'v4': 'v₄', 'v5': 'v₅'}
    >>> numbering(lecture_f(), ascii=True)["x1"]
    'v-1'
    """
    n = len(graph.inputs)
    names = {x: _vname(i - n + 1, ascii) for i, x in enumerate(graph.inputs)}
    k = 0
    for v in graph.topological_order():
        if v not in names:
            k += 1
            names[v] = _vname(k, ascii)
    return names


def _mark(name: str, kind: str, ascii: bool) -> str:
    """``name`` with a dot (tangent) or bar (adjoint) over its leading letter run's last letter."""
    if ascii:
        return f"{name}_{kind}"
    m = re.match(r"[A-Za-z]+", name)
    pos = m.end() if m else 1
    return unicodedata.normalize("NFC", name[:pos] + (_DOT if kind == "dot" else _BAR) + name[pos:])


def _output_labels(graph: Graph) -> dict[str, str]:
    if len(graph.outputs) == 1:
        return {graph.outputs[0]: "y"}
    return {y: f"y{i + 1}" for i, y in enumerate(graph.outputs)}


def _const_text(c: Const, ascii: bool) -> str:
    minus = "-" if ascii else "−"
    v = np.asarray(c.value)
    if v.ndim == 0:
        s = f"{float(v):.6g}".replace("-", minus)
        return f"({s})" if s.startswith(minus) else s
    if v.size <= 4:
        s = np.array2string(v.astype(float), precision=6, floatmode="maxprec", separator=", ")
        return s.replace("-", minus)
    return "const[" + ("x" if ascii else "×").join(map(str, v.shape)) + "]"


def _arg_texts(graph: Graph, v: str, names: Mapping[str, str], ascii: bool) -> list[str]:
    return [names[a] if isinstance(a, str) else _const_text(a, ascii) for a in graph.nx.nodes[v]["args"]]


def _tpl(s: str, ascii: bool) -> str:
    return _ascii_text(s) if ascii else s


_DEFAULT_PARAMS = {"axis": None, "keepdims": False}


def _params(d: Mapping) -> dict:
    """The node's parameters without the defaults (so a full ``sum`` reads ``Σ v``)."""
    return {k: p for k, p in d["params"].items() if not (k in _DEFAULT_PARAMS and p == _DEFAULT_PARAMS[k])}


def _index_text(index: list) -> str:
    """A stored getitem index as NumPy source: ``[["slice", None, 2, None]]`` → ``:2``."""
    parts = []
    for item in index:
        kind = item[0]
        if kind == "int":
            parts.append(str(item[1]))
        elif kind == "slice":
            a, b, c = ("" if x is None else str(x) for x in item[1:4])
            parts.append(f"{a}:{b}" + (f":{c}" if c else ""))
        elif kind == "new":
            parts.append("None")
        else:
            arr = np.asarray(item[1])
            parts.append(str(arr.tolist()) if arr.size <= 4 else f"<{arr.size} indices>")
    return ", ".join(parts)


def _primal_formula(graph: Graph, v: str, names: Mapping[str, str], ascii: bool) -> str:
    d = graph.nx.nodes[v]
    args = _arg_texts(graph, v, names, ascii)
    params = _params(d)
    if d["op"] == "getitem" and args:
        return f"{args[0]}[{_index_text(d['params']['index'])}]"
    if not params and d["op"] in PRIMAL:
        try:
            return _tpl(PRIMAL[d["op"]], ascii).format(*args)
        except (IndexError, KeyError):
            pass
    ptext = "; " + ", ".join(f"{k}={p}" for k, p in params.items()) if params else ""
    return f"{d['op']}({', '.join(args)}{ptext})"


def _local(graph: Graph, v: str, pos: int, names: Mapping[str, str], t: str, reverse: bool,
           ascii: bool) -> tuple[str, str]:
    """``(sign, term)``: the carried derivative ``t`` through ∂v/∂(argument ``pos``)."""
    d = graph.nx.nodes[v]
    u = d["args"][pos]
    spec = None
    if d["op"] == "getitem" and not reverse:
        return "+", f"{t}[{_index_text(d['params']['index'])}]"
    if d["op"] == "pow" and pos == 0 and isinstance(d["args"][1], Const) and d["args"][1].value.ndim == 0:
        k = float(d["args"][1].value)  # a constant exponent: d(x^k) = k x^(k−1)
        e = _const_text(Const(np.asarray(k - 1.0)), ascii)
        a0, k_text = names[u], _const_text(d["args"][1], ascii)
        mul = " * " if ascii else " × "
        return "+", (f"{t}{mul}{k_text}" if k == 1 else f"{t}{mul}{k_text}{mul}{a0}" + ("" if k == 2 else f"^{e}"))
    if not _params(d):
        if d["op"] in PARTIAL and (not reverse or graph.shape(u) == graph.shape(v)):
            spec = PARTIAL[d["op"]]
        elif d["op"] in FORWARD_ONLY and not reverse:
            spec = FORWARD_ONLY[d["op"]]
    if spec is not None and pos < len(spec):
        sign, tpl = spec[pos]
        if reverse and tpl == "{t}":  # the lecture writes v̄₅ × 1 and v̄₅ × (−1)
            tpl, sign = ("{t} × 1" if sign == "+" else "{t} × (−1)"), "+"
        try:
            text = _tpl(tpl, ascii).format(*_arg_texts(graph, v, names, ascii), t=t, y=names[v])
            return sign, text.replace(" × 1 / ", " / ").replace(" * 1 / ", " / ")  # d(1/x)
        except (IndexError, KeyError):
            pass
    generic = _ADJOINT_GENERIC if reverse else _TANGENT_FALLBACK
    return "+", _tpl(generic, ascii).format(t=t, y=names[v], u=names[u])


def _join(terms: Sequence[tuple[str, str]], ascii: bool) -> str:
    minus = "-" if ascii else "−"
    if not terms:
        return "0"
    out = []
    for i, (sign, text) in enumerate(terms):
        if i == 0:
            out.append(text if sign == "+" else minus + text)
        else:
            out.append((" + " if sign == "+" else f" {minus} ") + text)
    return "".join(out)


def _diff_positions(graph: Graph, v: str) -> list[tuple[int, str]]:
    d = graph.nx.nodes[v]
    if d["op"] not in OPS:  # an input
        return []
    nondiff = OPS[d["op"]].nondiff
    return [(p, a) for p, a in enumerate(d["args"]) if isinstance(a, str) and p not in nondiff]


# -- evaluation helpers -----------------------------------------------------------------------


def _evaluate(graph: Graph, inputs: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
    abstract = [v for v in graph.nx if graph.op(v) == "abstract"]
    if abstract:
        raise ValueError(f"graph {graph.name!r} has abstract (planning-only) vertices {abstract[:3]}: "
                         "trace tables need a graph that can be evaluated")
    if not isinstance(inputs, Mapping):
        inputs = list(inputs) if not np.isscalar(inputs) else [inputs]
        if len(inputs) != len(graph.inputs):
            raise ValueError(f"graph {graph.name!r} takes {len(graph.inputs)} input(s) "
                             f"({', '.join(graph.inputs)}), got {len(inputs)} value(s)")
        inputs = dict(zip(graph.inputs, inputs))
    return graph.evaluate(inputs)


def _plain(a: np.ndarray) -> Value:
    a = np.asarray(a, dtype=float)
    return float(a) if a.shape == () else a


def _point(graph: Graph, vals: Mapping[str, np.ndarray], ascii: bool) -> str:
    if all(graph.shape(x) == () for x in graph.inputs):
        minus = "-" if ascii else "−"
        return " at " + ", ".join(f"{x} = {float(vals[x]):.6g}".replace("-", minus) for x in graph.inputs)
    return ""


def _push(J: S.Jac, t: np.ndarray) -> np.ndarray:
    """J · t for a tangent ``t`` of shape J.in_shape."""
    T = S.dense(J.in_shape, (), np.asarray(t, dtype=float))
    return S.product(J, T)[0].to_dense().reshape(J.out_shape)


def _pull(b: np.ndarray, J: S.Jac) -> np.ndarray:
    """b · J for an adjoint ``b`` of shape J.out_shape."""
    B = S.dense((), J.out_shape, np.asarray(b, dtype=float))
    return S.product(B, J)[0].to_dense().reshape(J.in_shape)


def _seed(shape: tuple, seed: Any, what: str) -> np.ndarray:
    s = np.ones(shape) if seed is None else np.asarray(seed, dtype=float)
    if s.shape != shape:
        try:
            s = np.broadcast_to(s, shape).copy()
        except ValueError:
            raise ValueError(f"{what} seed has shape {s.shape}, expected {shape}") from None
    return s


def _pick(graph: Graph, name: str | int, pool: list[str], what: str) -> str:
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if -len(pool) <= int(name) < len(pool):
            return pool[int(name)]
    elif name in pool:
        return name
    kind = "inputs" if what == "wrt" else "outputs"
    raise ValueError(f"{what}={name!r} is not one of the {kind} of graph {graph.name!r}; "
                     f"valid {kind}: {', '.join(pool)}")


# -- the three traces -------------------------------------------------------------------------


def primal_trace(graph: Graph, inputs: Mapping[str, Any] | Sequence[Any], *, ascii: bool = False) -> Table:
    """The forward primal trace: ``v₋₁ = x1 = 2`` …, ``v₁ = ln v₋₁ = 0.693`` …, ``y = v₅ = 11.652``.

    ``inputs`` maps input names to values (or lists them in input order).

    >>> from jacc.examples import lecture_f
    >>> t = primal_trace(lecture_f(), [2, 5], ascii=True)
    >>> t.rows[2], t.rows[-1][:2]
    (('v1', 'log v-1', 0.6931471805599453), ('y', 'v5'))
    """
    vals = _evaluate(graph, inputs)
    names = numbering(graph, ascii)
    rows = [(names[x], x, _plain(vals[x])) for x in graph.inputs]
    body = [(names[v], _primal_formula(graph, v, names, ascii), _plain(vals[v]))
            for v in graph.topological_order() if v not in graph.inputs]
    outs = [(lab, names[y], _plain(vals[y])) for y, lab in _output_labels(graph).items()]
    n = len(rows)
    return Table(f"{TITLES['primal']} of {graph.name}{_point(graph, vals, ascii)}", rows + body + outs,
                 (n, n + len(body)), ascii, {"kind": "primal", "names": names})


def tangent_trace(graph: Graph, inputs: Mapping[str, Any] | Sequence[Any], wrt: str | int, *,
                  seed: Any = None, ascii: bool = False) -> Table:
    """The forward tangent trace seeded with ẋ = 1 for input ``wrt`` and 0 for the others.

    Each row is v̇ = Σ ∂v/∂u · u̇ over the arguments u, with the numbers from the graph's numeric
    partials. ``seed`` (default 1, or ones for an array input) is the tangent of ``wrt``.

    >>> from jacc.examples import lecture_f
    >>> t = tangent_trace(lecture_f(), [2, 5], "x1")
    >>> t.rows[3], t.rows[-1]
    (('v̇₂', 'v̇₋₁ × v₀ + v̇₀ × v₋₁', 5.0), ('ẏ', 'v̇₅', 5.5))
    """
    wrt = _pick(graph, wrt, graph.inputs, "wrt")
    vals = _evaluate(graph, inputs)
    names = numbering(graph, ascii)
    partials = graph.linearise(vals)
    dot = {x: (_seed(graph.shape(x), seed, "tangent") if x == wrt else np.zeros(graph.shape(x)))
           for x in graph.inputs}
    rows = [(_mark(names[x], "dot", ascii), _mark(x, "dot", ascii), _plain(dot[x])) for x in graph.inputs]
    body = []
    for v in graph.topological_order():
        if v in graph.inputs:
            continue
        terms = [_local(graph, v, p, names, _mark(names[a], "dot", ascii), False, ascii)
                 for p, a in _diff_positions(graph, v)]
        total = np.zeros(graph.shape(v))
        for u in graph.nx.predecessors(v):
            total = total + _push(partials[u, v], dot[u])
        dot[v] = total
        body.append((_mark(names[v], "dot", ascii), _join(terms, ascii), _plain(total)))
    outs = [(_mark(lab, "dot", ascii), _mark(names[y], "dot", ascii), _plain(dot[y]))
            for y, lab in _output_labels(graph).items()]
    n = len(rows)
    title = f"{TITLES['tangent']} of {graph.name} w.r.t. {wrt}{_point(graph, vals, ascii)}"
    return Table(title, rows + body + outs, (n, n + len(body)), ascii,
                 {"kind": "tangent", "names": names, "wrt": wrt})


def adjoint_trace(graph: Graph, inputs: Mapping[str, Any] | Sequence[Any], output: str | int | None = None, *,
                  style: str = "summed", bottom_up: bool = False, seed: Any = None,
                  ascii: bool = False) -> Table:
    """The reverse adjoint trace: seed ȳ = 1, then the vertices in reverse topological order.

    ``style="summed"`` gives one row per vertex, v̄ᵤ = Σ v̄ᵥ ∂v/∂u over its consumers v (in the
    order reverse mode pushes them); ``style="increments"`` gives the lecture's one row per edge,
    ``v̄₀ = v̄₀ + v̄₂ ∂v₂/∂v₀ = v̄₀ + v̄₂ × v₋₁`` with running totals. Rows run in execution order
    (seed first, x̄ last); ``bottom_up=True`` reverses them as the lecture's slide does (it is read
    upwards). ``output`` may be omitted when the graph has one output; ``seed`` is ȳ (default 1).
    Only ancestors of the output get rows; inputs it does not depend on get x̄ = 0.

    >>> from jacc.examples import lecture_f
    >>> t = adjoint_trace(lecture_f(), [2, 5])
    >>> [r[:2] for r in t.rows[5:7]]
    [('v̄₀', 'v̄₃ × cos v₀ + v̄₂ × v₋₁'), ('v̄₋₁', 'v̄₂ × v₀ + v̄₁ / v₋₁')]
    """
    if style not in ("summed", "increments"):
        raise ValueError(f"style must be 'summed' or 'increments', not {style!r}")
    if output is None:
        if len(graph.outputs) != 1:
            raise ValueError(f"graph {graph.name!r} has {len(graph.outputs)} outputs; pick one with output= "
                             "(--output on the command line), "
                             f"one of: {', '.join(graph.outputs)}")
        output = graph.outputs[0]
    y = _pick(graph, output, graph.outputs, "output")
    vals = _evaluate(graph, inputs)
    names = numbering(graph, ascii)
    partials = graph.linearise(vals)
    ylab = _output_labels(graph)[y]
    bar = {v: np.zeros(graph.shape(v)) for v in graph.nx}
    bar[y] = _seed(graph.shape(y), seed, "adjoint")
    B = {v: _mark(names[v], "bar", ascii) for v in graph.nx}
    seed_rows = [(B[y], _mark(ylab, "bar", ascii), _plain(bar[y]))]
    live = nx.ancestors(graph.nx, y) | {y}
    order = [v for v in reversed(graph.topological_order()) if v in live]
    body: list[tuple[str, str, Value]] = []
    touched = {y}
    if style == "summed":
        pushed: dict[str, list[tuple[str, str]]] = {v: [] for v in live}
        for v in order:
            if v != y:
                body.append((B[v], _join(pushed[v], ascii), _plain(bar[v])))
            for p, u in _diff_positions(graph, v):
                pushed[u].append(_local(graph, v, p, names, B[v], True, ascii))
            for u in graph.nx.predecessors(v):
                bar[u] = bar[u] + _pull(bar[v], partials[u, v])
    else:
        plus, minus = " + ", (" - " if ascii else " − ")
        for v in order:
            by_arg: dict[str, list[tuple[str, str]]] = {}
            for p, u in _diff_positions(graph, v):
                by_arg.setdefault(u, []).append(_local(graph, v, p, names, B[v], True, ascii))
            for u, terms in by_arg.items():
                generic = _tpl(_ADJOINT_GENERIC, ascii).format(t=B[v], y=names[v], u=names[u])
                concrete = _join(terms, ascii)
                if u in touched:
                    neg = concrete.startswith(("−", "-"))
                    concrete = B[u] + (minus + concrete[1:] if neg else plus + concrete)
                    generic = B[u] + plus + generic
                text = generic if concrete == generic else f"{generic} = {concrete}"
                bar[u] = bar[u] + _pull(bar[v], partials[u, v])
                touched.add(u)
                body.append((B[u], text, _plain(bar[u])))
    for x in graph.inputs:  # inputs the output does not depend on
        if x not in live:
            body.append((B[x], "0", _plain(bar[x])))
    outs = [(_mark(x, "bar", ascii), B[x], _plain(bar[x])) for x in graph.inputs]
    rows = seed_rows + body + outs
    rules = (1, 1 + len(body))
    if bottom_up:  # the slide's layout: x̄ rows on top (in input order), then the body upwards
        rows = outs + (seed_rows + body)[::-1]
        rules = (len(outs), len(outs) + len(body))
    title = f"{TITLES['adjoint']} of {graph.name} for output {y}{_point(graph, vals, ascii)}"
    return Table(title, rows, rules, ascii, {"kind": "adjoint", "names": names, "output": y, "style": style})
