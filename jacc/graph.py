"""The IR: a linearised computational graph over :class:`networkx.DiGraph`.

Vertices are array variables (``shape``, ``op``, role); an edge ``u → v`` carries the partial
∂v/∂u, whose structure comes from the op table and whose values appear when the graph is
evaluated at a point. Constants live in the op's argument list, not as vertices.

>>> g = Graph("demo")
>>> _ = g.add_input("x", (3,))
>>> _ = g.add_node("y", "tanh", ["x"])
>>> g.set_outputs(["y"])
>>> g.partial("x", "y").describe()
'diag 3'
>>> g.evaluate({"x": np.zeros(3)})["y"]
array([0., 0., 0.])
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import networkx as nx
import numpy as np

from . import structure as S
from .fileio import write_atomic
from .ops import OPS, Ctx, ShapeError, infer_shape
from .structure import Jac, Shape

FORMAT = "jacc-graph"
VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]*$")


class GraphError(ValueError):
    """An invalid graph or graph file; the message names the file, node and fix."""


@dataclass(frozen=True)
class Const:
    """A constant argument folded into an op (not a vertex)."""

    value: np.ndarray

    def __repr__(self) -> str:
        return f"Const(shape={self.value.shape})"


Arg = str | Const


class Graph:
    """A computational graph whose edges carry structured partial Jacobians."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.nx = nx.DiGraph()
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.meta: dict[str, Any] = {}
        self._order: dict[str, int] = {}
        self._partials: dict[tuple[str, str], Jac] = {}
        self._topo: tuple | None = None  # ((vertices, edges), order)

    # -- building -------------------------------------------------------------------------------
    def _new_vertex(self, name: str, **data) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise GraphError(f"vertex name {name!r} is not valid: start with a letter or '_', then letters, "
                             "digits, '_', '.', '-', '[' or ']'")
        if name in self.nx:
            raise GraphError(f"duplicate vertex name {name!r}: every vertex needs its own name")
        self.nx.add_node(name, **data)
        self._order[name] = len(self._order)

    def add_input(self, name: str, shape: Iterable[int]) -> str:
        """Declare an input variable."""
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise GraphError(f"input {name!r} has a negative dimension in {shape}")
        self._new_vertex(name, op="input", shape=shape, args=[], params={})
        self.inputs.append(name)
        return name

    def add_node(self, name: str, op: str, args: list[Any], params: dict | None = None,
                 shape: Iterable[int] | None = None) -> str:
        """Add ``name = op(*args, **params)``; strings in ``args`` name vertices."""
        if op not in OPS:
            raise GraphError(f"node {name!r}: unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
        params = dict(params or {})
        if op == "abstract" and shape is not None:
            params.setdefault("shape", list(shape))
        cargs: list[Arg] = []
        for a in args:
            if isinstance(a, str):
                if a not in self.nx:
                    raise GraphError(f"node {name!r}: argument {a!r} is not a defined vertex "
                                     "(define it earlier or fix the name)")
                cargs.append(a)
            else:
                cargs.append(a if isinstance(a, Const) else Const(np.asarray(a)))
        try:
            out = infer_shape(op, [self._arg_shape(a) for a in cargs], params)
        except ShapeError as e:
            raise GraphError(f"node {name!r} ({op}): {e}") from None
        if shape is not None and tuple(shape) != out:
            raise GraphError(f"node {name!r} ({op}): declared shape {tuple(shape)} but arguments give {out}")
        self._new_vertex(name, op=op, shape=out, args=cargs, params=params)
        for pos, a in enumerate(cargs):
            if isinstance(a, str) and pos not in OPS[op].nondiff:
                if self.nx.has_edge(a, name):
                    self.nx.edges[a, name]["positions"].append(pos)
                else:
                    self.nx.add_edge(a, name, positions=[pos])
        return name

    def set_outputs(self, names: Iterable[str]) -> None:
        names = list(names)
        for n in names:
            if n not in self.nx:
                raise GraphError(f"output {n!r} is not a vertex of graph {self.name!r}")
        if len(set(names)) != len(names):
            raise GraphError(f"outputs {names} name a vertex twice")
        self.outputs = names

    def _arg_shape(self, a: Arg) -> Shape:
        return self.nx.nodes[a]["shape"] if isinstance(a, str) else tuple(np.shape(a.value))

    # -- queries --------------------------------------------------------------------------------
    def shape(self, v: str) -> Shape:
        return self.nx.nodes[v]["shape"]

    def op(self, v: str) -> str:
        return self.nx.nodes[v]["op"]

    def role(self, v: str) -> str:
        """``input``, ``output`` or ``intermediate``."""
        if v in self.inputs:
            return "input"
        return "output" if v in self.outputs else "intermediate"

    @property
    def intermediates(self) -> list[str]:
        return [v for v in self.topological_order() if self.role(v) == "intermediate"]

    def topological_order(self) -> list[str]:
        """Vertices in a deterministic topological order (insertion order breaks ties).

        Cached while the graph keeps its vertex and edge counts: :meth:`evaluate` needs it on
        every call."""
        size = (self.nx.number_of_nodes(), self.nx.number_of_edges())
        if self._topo is None or self._topo[0] != size:
            self._topo = (size, list(nx.lexicographical_topological_sort(self.nx, key=self._order.__getitem__)))
        return list(self._topo[1])

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.inputs)} inputs, {len(self.outputs)} outputs, "
                f"{len(self)} vertices, {self.nx.number_of_edges()} edges)")

    # -- partials -------------------------------------------------------------------------------
    def _ctx(self, v: str, values: Mapping[str, np.ndarray] | None, dtype=np.float64) -> Ctx:
        d = self.nx.nodes[v]
        args = [a.value if isinstance(a, Const) else (values[a] if values is not None else None)
                for a in d["args"]]
        return Ctx([self._arg_shape(a) for a in d["args"]], d["shape"], d["params"], args,
                   values[v] if values is not None else None, values is not None, dtype)

    def _edge_partial(self, u: str, v: str, ctx: Ctx) -> Jac:
        rule = OPS[self.op(v)].partial
        total = None
        for pos in self.nx.edges[u, v]["positions"]:
            j = rule(pos, ctx)
            if j is not None:
                total = j if total is None else S.add(total, j)
        return total if total is not None else S.Jac(self.shape(v), self.shape(u), None, (),
                                                      None if not ctx.numeric else np.zeros(()))

    def partial(self, u: str, v: str) -> Jac:
        """The symbolic partial ∂v/∂u (structure and value shape, no values)."""
        key = (u, v)
        if key not in self._partials:
            if not self.nx.has_edge(u, v):
                raise GraphError(f"there is no edge {u!r} → {v!r}")
            self._partials[key] = self._edge_partial(u, v, self._ctx(v, None))
        return self._partials[key]

    def linearise(self, values: Mapping[str, np.ndarray], edges: Iterable[tuple[str, str]] | None = None,
                  dtype=np.float64) -> dict[tuple[str, str], Jac]:
        """Numeric partials at the point ``values`` (from :meth:`evaluate`)."""
        out = {}
        ctxs: dict[str, Ctx] = {}
        for u, v in (self.nx.edges if edges is None else edges):
            if v not in ctxs:
                ctxs[v] = self._ctx(v, values, dtype)
            out[u, v] = self._edge_partial(u, v, ctxs[v])
        return out

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, inputs: Mapping[str, Any], dtype=np.float64) -> dict[str, np.ndarray]:
        """Values of every vertex at the given inputs (by name)."""
        vals: dict[str, np.ndarray] = {}
        for name in self.inputs:
            if name not in inputs:
                raise GraphError(f"graph {self.name!r} needs input {name!r} (shape {self.shape(name)})")
            x = np.asarray(inputs[name], dtype=dtype)
            if x.shape != self.shape(name):
                raise GraphError(f"input {name!r} has shape {x.shape}, graph {self.name!r} expects "
                                 f"{self.shape(name)}")
            vals[name] = x
        extra = set(inputs) - set(self.inputs)
        if extra:
            raise GraphError(f"graph {self.name!r} has no input(s) {sorted(extra)}; inputs are {self.inputs}")
        for v in self.topological_order():
            if v in vals:
                continue
            d = self.nx.nodes[v]
            args = [a.value if isinstance(a, Const) else vals[a] for a in d["args"]]
            with np.errstate(all="ignore"):
                vals[v] = np.asarray(OPS[d["op"]].evaluate(args, d["params"]), dtype=dtype)
        return vals

    # -- checks and copies ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check acyclicity, names, shapes and outputs; raise :class:`GraphError`."""
        if not nx.is_directed_acyclic_graph(self.nx):
            cyc = nx.find_cycle(self.nx)
            raise GraphError(f"graph {self.name!r} has a cycle through {[u for u, _ in cyc]}")
        if not self.outputs:
            raise GraphError(f"graph {self.name!r} declares no outputs")
        for v in self.topological_order():
            d = self.nx.nodes[v]
            if d["op"] == "input":
                continue
            try:
                s = infer_shape(d["op"], [self._arg_shape(a) for a in d["args"]], d["params"])
            except ShapeError as e:
                raise GraphError(f"node {v!r} ({d['op']}): {e}") from None
            if s != d["shape"]:
                raise GraphError(f"node {v!r}: stored shape {d['shape']} but arguments give {s}")

    def copy(self) -> "Graph":
        g = Graph(self.name)
        g.nx = self.nx.copy()
        for u, v in g.nx.edges:
            g.nx.edges[u, v]["positions"] = list(self.nx.edges[u, v]["positions"])
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g.meta = dict(self.meta)
        g._order = dict(self._order)
        return g

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        nodes = []
        for v in self.topological_order():
            d = self.nx.nodes[v]
            if d["op"] == "input":
                continue
            params = {k: p for k, p in d["params"].items() if not (d["op"] == "abstract" and k == "shape")}
            nodes.append({"name": v, "op": d["op"], "args": [_arg_json(a) for a in d["args"]],
                          "params": params, "shape": list(d["shape"])})
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "inputs": [{"name": n, "shape": list(self.shape(n))} for n in self.inputs],
                "nodes": nodes, "outputs": list(self.outputs),
                **({"meta": self.meta} if self.meta else {})}

    def to_json(self) -> str:
        """JSON text: one line per input and node, so files diff well."""
        d = self.to_dict()
        lines = ["{"]
        keys = list(d)
        for n, key in enumerate(keys):
            val = d[key]
            end = "," if n < len(keys) - 1 else ""
            if isinstance(val, list) and val and isinstance(val[0], dict):
                items = ",\n".join(f"  {json.dumps(x)}" for x in val)
                lines.append(f' "{key}": [\n{items}\n ]{end}')
            else:
                lines.append(f" {json.dumps(key)}: {json.dumps(val)}{end}")
        return "\n".join(lines + ["}"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the graph as JSON (atomically: a temporary file renamed into place)."""
        write_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "Graph":
        return _from_dict(data, source)


def _arg_json(a: Arg):
    if isinstance(a, str):
        return a
    v = a.value
    return {"const": v.tolist(), "dtype": "bool" if v.dtype == bool else "float"}


def _from_dict(data: Any, src: str) -> Graph:
    def fail(where: str, msg: str) -> GraphError:
        return GraphError(f"{src}: {where}: {msg}")

    if not isinstance(data, dict):
        raise fail("top level", "expected a JSON object with 'format', 'inputs', 'nodes', 'outputs'")
    if data.get("format") != FORMAT:
        raise fail("format", f"expected \"format\": \"{FORMAT}\", got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise fail("version", f"this jacc reads version {VERSION}, file has {data.get('version')!r}")
    g = Graph(str(data.get("name", os.path.basename(src))))
    for key in ("inputs", "nodes", "outputs"):
        if not isinstance(data.get(key), list):
            raise fail(key, f"'{key}' must be a list")
    for i, inp in enumerate(data["inputs"]):
        where = f"input #{i}"
        if not isinstance(inp, dict) or "name" not in inp or "shape" not in inp:
            raise fail(where, "each input needs 'name' and 'shape', e.g. {\"name\": \"x\", \"shape\": [3]}")
        if not _is_shape(inp["shape"]):
            raise fail(f"input {inp['name']!r}", f"shape {inp['shape']!r} must be a list of non-negative ints")
        try:
            g.add_input(inp["name"], inp["shape"])
        except GraphError as e:
            raise fail(f"input {inp.get('name')!r}", str(e)) from None
    defined = set(g.inputs) | {n.get("name") for n in data["nodes"] if isinstance(n, dict)}
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "name" not in node or "op" not in node:
            raise fail(f"node #{i}", "each node needs 'name', 'op' and 'args'")
        name = node["name"]
        where = f"node {name!r}"
        if node["op"] not in OPS or node["op"] == "input":
            raise fail(where, f"unknown op {node['op']!r}; known ops: {', '.join(sorted(OPS))}")
        args = []
        for a in node.get("args", []):
            if isinstance(a, str):
                if a not in g.nx:
                    hint = ("it is defined later: order nodes so arguments come first (a cycle?)"
                            if a in defined else "no input or node has that name")
                    raise fail(where, f"argument {a!r} is not defined: {hint}")
                args.append(a)
            elif isinstance(a, dict) and "const" in a:
                try:
                    val = np.asarray(a["const"], dtype=bool if a.get("dtype") == "bool" else float)
                except (TypeError, ValueError):
                    raise fail(where, "a constant must be a number or nested list of numbers") from None
                if val.dtype != bool and not np.all(np.isfinite(val)):
                    raise fail(where, "constant contains NaN or infinity; use finite numbers")
                args.append(Const(val))
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                if not math.isfinite(a):
                    raise fail(where, "constant contains NaN or infinity; use finite numbers")
                args.append(Const(np.asarray(float(a))))
            else:
                raise fail(where, f"argument {a!r} must be a vertex name or {{\"const\": ...}}")
        shape = node.get("shape")
        if shape is not None and not _is_shape(shape):
            raise fail(where, f"shape {shape!r} must be a list of non-negative ints")
        try:
            g.add_node(name, node["op"], args, node.get("params") or {}, shape)
        except GraphError as e:
            msg = re.sub(rf"^node {re.escape(repr(name))}( \(\w+\))?: ", "", str(e))
            raise fail(f"{where} ({node['op']})", msg) from None
        except (KeyError, TypeError) as e:
            raise fail(where, f"bad or missing parameter {e} for op {node['op']!r}") from None
    try:
        g.set_outputs(data["outputs"])
    except GraphError as e:
        raise fail("outputs", str(e)) from None
    if not g.outputs:
        raise fail("outputs", "list at least one output vertex")
    g.meta = dict(data.get("meta") or {})
    return g


def _is_shape(s: Any) -> bool:
    return isinstance(s, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in s)


def load(path: str | os.PathLike) -> Graph:
    """Read a graph file written by :meth:`Graph.save` (JSON; never evaluated or unpickled)."""
    src = os.fspath(path)
    try:
        with open(src) as fh:
            text = fh.read()
    except OSError as e:
        raise GraphError(f"{src}: cannot read: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphError(f"{src}: line {e.lineno}: not valid JSON ({e.msg})") from None
    return _from_dict(data, src)
