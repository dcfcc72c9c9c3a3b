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
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import networkx as nx
import numpy as np

from . import structure as S
from .costmodel import NAMED
from .fileio import plain_json, write_atomic
from .ops import ABSTRACT_STRUCTURES, OPS, Ctx, ShapeError, infer_shape
from .structure import Jac, Shape

FORMAT = "jacc-graph"
VERSION = 1
NAME_PUNCT = "_.-[]"  # besides letters, digits and marks of any script; '@' is kept for sinks


def valid_name(name: Any) -> bool:
    """Identifier-like in any script (``x1``, ``θ``, ``x[0]``, ``layer-2.w``), in NFC form so
    that two names that look alike are also equal."""
    return (isinstance(name, str) and name != "" and (name[0] == "_" or unicodedata.category(name[0])[0] == "L")
            and all(c in NAME_PUNCT or unicodedata.category(c)[0] in "LMN" for c in name)
            and unicodedata.is_normalized("NFC", name))


# op → (parameter, extra): its axes must lie in [-(ndim + extra), ndim + extra) for the first
# argument's ndim (NumPy refuses the others; wrapping them around would change the meaning)
AXIS_PARAMS = {"sum": ("axis", 0), "mean": ("axis", 0), "amax": ("axis", 0), "amin": ("axis", 0),
               "transpose": ("axes", 0), "concatenate": ("axis", 0), "stack": ("axis", 1)}
MIN_ARGS = {"concatenate": 1, "stack": 1, "einsum": 1}


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
        if not valid_name(name):
            nfc = isinstance(name, str) and unicodedata.normalize("NFC", name)
            raise GraphError(f"vertex name {name!r} is not valid: " + (
                f"write it in Unicode NFC form ({nfc!r})" if nfc and valid_name(nfc) else
                "start with a letter (of any script) or '_', then letters, digits, '_', '.', '-', '[' or ']'"))
        if name in self.nx:
            raise GraphError(f"duplicate vertex name {name!r}: every vertex needs its own name")
        self.nx.add_node(name, **data)
        self._order[name] = len(self._order)

    def add_input(self, name: str, shape: Iterable[int]) -> str:
        """Declare an input variable."""
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise GraphError(f"input {name!r} has a negative dimension in {shape}")
        _check_size(f"input {name!r}", shape)
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
        for k in OPS[op].constant:
            if k < len(cargs) and isinstance(cargs[k], str):
                raise GraphError(f"node {name!r} ({op}): argument {k} ({cargs[k]!r}) must be a constant, not a "
                                 "vertex: the derivative with respect to it is not implemented")
        shapes = [self._arg_shape(a) for a in cargs]
        try:
            _check_arguments(op, shapes, params)
            out = infer_shape(op, shapes, params)
        except ShapeError as e:
            raise GraphError(f"node {name!r} ({op}): {e}") from None
        except (KeyError, TypeError, IndexError, ValueError, ArithmeticError) as e:  # params of the wrong kind
            raise GraphError(f"node {name!r} ({op}): parameters {_clip_text(params)} do not fit this op "
                             f"({type(e).__name__}: {e}); see the parameter table in docs/graph-format.md") from None
        _check_size(f"node {name!r} ({op})", out)
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

    def remove_last(self, name: str) -> None:
        """Remove the vertex ``name`` added last (with its edges): a tracer's step whose evaluation
        raised, which ``f`` may catch and go on."""
        if next(reversed(self._order), None) != name:
            raise GraphError(f"remove_last: {name!r} is not the vertex added last")
        self.nx.remove_node(name)
        del self._order[name]

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
            rank = self._order
            order = sorted(self.nx, key=rank.__getitem__)
            # add_node only refers to earlier vertices, so insertion order is normally topological
            # already (and then it is what the lexicographic sort would return), in linear time
            if not all(rank[u] < rank[v] for u, nbrs in self.nx.adjacency() for v in nbrs):
                order = list(nx.lexicographical_topological_sort(self.nx, key=rank.__getitem__))
            self._topo = (size, order)
        return list(self._topo[1])

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.inputs)} inputs, {len(self.outputs)} outputs, "
                f"{len(self)} vertices, {self.nx.number_of_edges()} edges)")

    # -- partials -------------------------------------------------------------------------------
    def _ctx(self, v: str, values: Mapping[str, np.ndarray] | None, dtype=np.float64,
             consts: Callable | None = None) -> Ctx:
        d = self.nx.nodes[v]
        args = [(a.value if consts is None else consts(v, i, a.value)) if isinstance(a, Const)
                else (values[a] if values is not None else None) for i, a in enumerate(d["args"])]
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

    def scalar_vertices(self) -> set[str]:
        """The vertices of shape ``()`` (one pass over NetworkX's node dict)."""
        return {v for v, d in self.nx._node.items() if d["shape"] == ()}

    @staticmethod
    def _kind_of(v: str, d: dict, scalar: set) -> tuple | None:
        """:meth:`partials`' key parts of scalar vertex ``v`` (attributes ``d``): its op, its
        arguments (a vertex name, or a constant's bytes, which never equal a name) and its params;
        None where an argument is no scalar or a parameter cannot be a key."""
        if v not in scalar:
            return None
        args = []
        for a in d["args"]:
            if type(a) is str:
                if a not in scalar:
                    return None
                args.append(a)
            elif a.value.shape == ():
                args.append(a.value.tobytes())
            else:
                return None
        params = tuple(d["params"].items())
        try:
            hash(params)
        except TypeError:  # a parameter that cannot be a key: built on its own
            return None
        return d["op"], tuple(args), params

    def partials(self, edges: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Jac]:
        """:meth:`partial` of many edges. A scalar graph of 10⁵ vertices has a few dozen kinds
        of edge (op, position, constants): each kind's partial is built once and shared (they
        are read-only), which makes setting up its pricing several times faster."""
        known, kinds, out = self._partials, {}, {}
        nodes = self.nx._node  # (NetworkX's own dicts: a NodeView or AtlasView lookup per edge costs more)
        adj = self.nx._succ
        scalar = self.scalar_vertices()
        # per head vertex of scalars only: (op, its arguments — a vertex name, or a constant's bytes —,
        # params), what an edge's kind shares with the other edges into it; None: no kind
        heads: dict = {}
        for u, v in edges:
            j = known.get((u, v))
            if j is None:
                head = heads.get(v, heads)
                if head is heads:
                    head = heads[v] = self._kind_of(v, nodes[v], scalar)
                kind = None
                if head is not None:
                    op, args, params = head
                    at = tuple(a == u if type(a) is str else a for a in args)
                    kind = (op, tuple(adj[u][v]["positions"]), at, params)
                    j = kinds.get(kind)
                if j is None:
                    j = self.partial(u, v)  # (built and kept in ``known``)
                    if kind is not None:
                        kinds[kind] = j
                else:
                    known[u, v] = j
            out[u, v] = j
        return out

    def linearise(self, values: Mapping[str, np.ndarray], edges: Iterable[tuple[str, str]] | None = None,
                  dtype=np.float64, consts: Callable | None = None) -> dict[tuple[str, str], Jac]:
        """Numeric partials at the point ``values`` (from :meth:`evaluate`). ``consts(vertex,
        position, value)``, when given, supplies each constant argument in place of its value."""
        out = {}
        ctxs: dict[str, Ctx] = {}
        for u, v in (self.nx.edges if edges is None else edges):
            if v not in ctxs:
                ctxs[v] = self._ctx(v, values, dtype, consts)
            out[u, v] = self._edge_partial(u, v, ctxs[v])
        return out

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, inputs: Mapping[str, Any], dtype=np.float64) -> dict[str, np.ndarray]:
        """Values of every vertex at the given inputs (by name)."""
        vals: dict[str, np.ndarray] = {}
        for name in self.inputs:
            if name not in inputs:
                raise GraphError(f"graph {self.name!r} needs input {name!r} (shape {self.shape(name)})")
            x = np.asarray(inputs[name])
            check_real(x.dtype, f"input {name!r}")  # (a cast dropped an imaginary part, read bools and strings)
            x = x.astype(dtype, copy=False)
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
            params = plain_json({k: p for k, p in d["params"].items() if not (d["op"] == "abstract" and k == "shape")})
            nodes.append({"name": v, "op": d["op"], "args": [_arg_json(a) for a in d["args"]],
                          "params": params, "shape": list(d["shape"])})
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "inputs": [{"name": n, "shape": list(self.shape(n))} for n in self.inputs],
                "nodes": nodes, "outputs": list(self.outputs),
                **({"meta": plain_json(_file_meta(self.meta))} if self.meta else {})}

    def to_json(self) -> str:
        """JSON text: one line per input and node, so files diff well."""
        d = self.to_dict()
        lines = ["{"]
        keys = list(d)
        for n, key in enumerate(keys):
            val = d[key]
            end = "," if n < len(keys) - 1 else ""
            if isinstance(val, list) and val and isinstance(val[0], dict):
                items = ",\n".join(f"  {json.dumps(x, allow_nan=False)}" for x in val)
                lines.append(f' "{key}": [\n{items}\n ]{end}')
            else:
                lines.append(f" {json.dumps(key)}: {json.dumps(val, allow_nan=False)}{end}")
        return "\n".join(lines + ["}"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the graph as JSON (atomically: a temporary file renamed into place)."""
        write_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "Graph":
        return _from_dict(data, source)


#: ops whose evaluation checks what a shape rule cannot see — their constant positions (distinct,
#: in range, integers), knots and breaks in order: a file is checked by running them once on zeros,
#: so it is refused at loading, naming the node, not at its first run
_CHECKED_BY_RUNNING = frozenset({"put", "gather", "scatter_add", "interp", "ppoly"})
_DRY_RUN_MAX = 1 << 20  # entries of zeros made for one such check, at most (else it waits for the run)


def _dry_run(g: "Graph", name: str) -> str | None:
    """Why node ``name`` cannot run whatever its inputs (see :data:`_CHECKED_BY_RUNNING`), else None."""
    d = g.nx.nodes[name]
    if d["op"] not in _CHECKED_BY_RUNNING:
        return None
    shapes = [g._arg_shape(a) for a in d["args"]]
    if sum(math.prod(s) for s in shapes) > _DRY_RUN_MAX:
        return None
    args = [a.value if isinstance(a, Const) else np.zeros(s) for a, s in zip(d["args"], shapes)]
    try:
        with np.errstate(all="ignore"):
            OPS[d["op"]].evaluate(args, d["params"])
    except (ValueError, IndexError, TypeError) as e:
        return str(e)
    return None


def _check_arguments(op: str, shapes: list[Shape], params: dict) -> None:
    """Argument count and axis ranges, which the op's shape rule takes for granted."""
    if len(shapes) < MIN_ARGS.get(op, 0):
        raise ShapeError(f"{op} needs at least {MIN_ARGS[op]} argument(s), got {len(shapes)}")
    if op not in AXIS_PARAMS or params.get(AXIS_PARAMS[op][0]) is None:
        return
    key, extra = AXIS_PARAMS[op]
    n = len(shapes[0]) + extra
    given = params[key]
    axes = [given] if not isinstance(given, (list, tuple)) else list(given)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ShapeError(f"{key} {given!r} must be an integer or a list of integers")
        if not n:
            raise ShapeError(f"{key} {a} is out of range: the argument has no axes")
        if not -n <= a < n:
            raise ShapeError(f"{key} {a} is out of range for {n} axes (use {-n} … {n - 1})")
    if len({int(a) % n for a in axes}) != len(axes):
        raise ShapeError(f"{key} {given!r} repeats an axis")


def _check_size(where: str, shape: Shape) -> None:
    if len(shape) > MAX_DIMS or math.prod(shape) > MAX_ELEMENTS:
        raise GraphError(f"{where}: shape {shape} is larger than jacc handles (at most {MAX_DIMS} axes and "
                         f"{MAX_ELEMENTS:,} elements per vertex)")


def _clip_text(x: Any, n: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= n else text[:n - 3] + "..."


def _arg_json(a: Arg):
    if isinstance(a, str):
        return a
    v = a.value
    d = {"const": plain_json(v.tolist()), "dtype": "bool" if v.dtype == bool else "float"}
    if v.size == 0:  # nested lists lose the axes after an empty one: [[], []] for (2, 0, 3)
        d["shape"] = list(v.shape)
    return d


# -- the file schema ----------------------------------------------------------------------------
# Every field of a graph file with its JSON type and range, in one place. `_from_dict` reads the
# whole document through these specs before it builds anything, so a bad value fails with one
# line that names the file, the place and what to write instead, rather than surfacing later as
# a crash, a wrap-around or a NaN. JSON has no NaN or infinity: jacc writes non-finite numbers as
# the strings "inf", "-inf" and "nan" and reads them back (bare NaN/Infinity tokens are refused).

MAX_DIMS = 32  # NumPy allows 64 axes; einsum letters and readable shapes run out long before
MAX_ELEMENTS = 2 ** 53  # per vertex: sizes stay exact in floats and far from int64 overflow
MAX_INT = 2 ** 63 - 1  # index and slice bounds: what NumPy's intp holds
NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class _Bad(Exception):
    """A schema violation at ``path`` (a tuple of keys and indices); internal to this module."""

    def __init__(self, path: tuple, msg: str):
        super().__init__(msg)
        self.path, self.msg = path, msg


@dataclass(frozen=True)
class Spec:
    """One JSON type: ``what`` names it in messages (so it doubles as the fix), ``kinds`` are the
    JSON kinds it takes, and ``read(value, path)`` checks a value and returns it decoded."""

    what: str
    kinds: frozenset
    read: Callable[[Any, tuple], Any]


def _kind(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return "null" if v is None else "bool"
    for t, k in ((int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "object")):
        if isinstance(v, t):
            return k
    return type(v).__name__


def _show(v: Any) -> str:
    """A value as the message shows it: short, and never huge (ints of any size included)."""
    k = _kind(v)
    if k in ("null", "bool"):
        return json.dumps(v)
    if k == "int" and abs(v) >= 10 ** 18:
        return f"an integer of {len(str(abs(v)))} digits" if v.bit_length() < 10_000 else "a huge integer"
    if k in ("list", "object"):
        return "an empty list" if v == [] else "a list" if k == "list" else "an object"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(spec: Spec, v: Any, path: tuple) -> _Bad:
    return _Bad(path, f"expected {spec.what}, got {_show(v)}")


def _leaf(what: str, kinds: str, ok: Callable[[Any], bool], decode: Callable = lambda v: v) -> Spec:
    def read(v, path):
        if _kind(v) not in spec.kinds or not ok(v):
            raise _fail(spec, v, path)
        return decode(v)
    spec = Spec(what, frozenset(kinds.split()), read)
    return spec


def _int(lo: int, hi: int, what: str) -> Spec:
    return _leaf(what, "int", lambda v: lo <= v <= hi)


def _float_ok(v) -> bool:
    if isinstance(v, str):
        return v in NONFINITE
    return abs(v) <= 2 ** 1023 if isinstance(v, int) else math.isfinite(v)


NULL = _leaf("null", "null", lambda v: True)
BOOL = _leaf("true or false", "bool", lambda v: True)
STR = _leaf("a string", "str", lambda v: True)
OBJECT = _leaf("an object", "object", lambda v: True)
NUMBER = _leaf('a finite number, or "inf", "-inf" or "nan" (JSON has no NaN or infinity)', "int float str",
               _float_ok, lambda v: NONFINITE[v] if isinstance(v, str) else float(v))


def _either(what: str, *specs: Spec) -> Spec:
    """The first of ``specs`` that takes the value's JSON kind reads it (so nested errors point
    inside it); a value of no listed kind fails with ``what``."""
    def read(v, path):
        for s in specs:
            if _kind(v) in s.kinds:
                return s.read(v, path)
        raise _fail(spec, v, path)
    spec = Spec(what, frozenset().union(*(s.kinds for s in specs)), read)
    return spec


def optional(s: Spec) -> Spec:
    return _either(f"{s.what} or null", NULL, s)


def _list(item: Spec, what: str, lo: int = 0, hi: int | None = None, check: Callable | None = None) -> Spec:
    """A list of ``item``s, ``lo`` to ``hi`` long; ``check(items)`` returns a problem or ``None``."""
    def read(v, path):
        if not isinstance(v, list) or len(v) < lo or (hi is not None and len(v) > hi):
            raise _fail(spec, v, path)
        out = [item.read(x, path + (i,)) for i, x in enumerate(v)]
        problem = check(out) if check else None
        if problem:
            raise _Bad(path, f"{problem}; expected {what}")
        return out
    spec = Spec(what, frozenset({"list"}), read)
    return spec


def _size_problem(dims: list[int]) -> str | None:
    n = math.prod(dims)
    return f"{' × '.join(map(str, dims))} is {n:,} elements, more than the {MAX_ELEMENTS:,} jacc handles" \
        if n > MAX_ELEMENTS else None


DIM = _int(0, MAX_ELEMENTS, "a size (an integer from 0 to 2⁵³)")
SHAPE = _list(DIM, f"a shape: a list of at most {MAX_DIMS} sizes (integers ≥ 0), e.g. [3, 4]", 0, MAX_DIMS,
              _size_problem)


def _array(leaf: Spec, what: str) -> Spec:
    """A number or a rectangular nested list of ``leaf`` values (at most MAX_DIMS deep)."""
    def shape_of(v, path, depth) -> tuple:
        if not isinstance(v, list):
            return ()
        if depth >= MAX_DIMS:
            raise _Bad(path, f"nested more than {MAX_DIMS} lists deep; expected {what}")
        inner = [shape_of(x, path + (i,), depth + 1) for i, x in enumerate(v)]
        if any(s != inner[0] for s in inner):
            raise _Bad(path, f"rows of different lengths; expected {what} with equal-length rows")
        return (len(v),) + (inner[0] if inner else ())

    def decode(v, path):
        return [decode(x, path + (i,)) for i, x in enumerate(v)] if isinstance(v, list) else leaf.read(v, path)

    def read(v, path):
        if _kind(v) not in spec.kinds:
            raise _fail(spec, v, path)
        shape_of(v, path, 0)
        return decode(v, path)
    spec = Spec(what, leaf.kinds | {"list"}, read)
    return spec


NUMBERS = _array(NUMBER, 'a number or a nested list of numbers (non-finite ones as "inf", "-inf", "nan")')
BOOLS = _array(BOOL, "true, false or a nested list of them")
AXIS = _int(-MAX_DIMS - 1, MAX_DIMS, "an axis (a small integer; negative counts from the end)")


def _einsum_problem(spec: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z ]*(,[A-Za-z ]*)*->[A-Za-z ]*", spec):
        return "letters only, operands separated by ',', and an explicit output after '->'"
    ins, out = spec.replace(" ", "").split("->")
    missing = sorted(set(out) - set(ins))
    if missing or len(set(out)) != len(out):
        return f"output label {missing[0]!r} is in no operand" if missing else "an output label is repeated"
    return None


EINSUM = _leaf('an einsum spec with an explicit output, e.g. "ij,j->i"', "str", lambda v: not _einsum_problem(v))
INT64 = _int(-MAX_INT, MAX_INT, "an integer")
INDEX_ARRAY = _either("a list of integers or of true/false (an index array)",
                      _array(_either("integers or booleans", INT64, BOOL), "a nested list of integers or booleans"))
SLICE_PART = optional(INT64)
SLICE_STEP = optional(_leaf("a non-zero integer", "int", lambda v: v != 0 and abs(v) <= MAX_INT))

# getitem index items: kind → the specs of the parts after the kind
INDEX_ITEMS: dict[str, tuple[Spec, ...]] = {
    "int": (INT64,),
    "slice": (SLICE_PART, SLICE_PART, SLICE_STEP),
    "new": (),
    "array": (INDEX_ARRAY,),
}
ITEM_WHAT = '["int", i], ["slice", start, stop, step], ["new"] or ["array", [...]]'


def _index_item(v, path):
    parts = INDEX_ITEMS.get(v[0]) if isinstance(v, list) and v and isinstance(v[0], str) else None
    if parts is None or len(v) != 1 + len(parts):
        raise _Bad(path, f"expected an index item {ITEM_WHAT}, got {_show(v)}")
    out = [v[0]] + [s.read(x, path + (i + 1,)) for i, (s, x) in enumerate(zip(parts, v[1:]))]
    if v[0] == "array" and not isinstance(v[1], list):
        raise _Bad(path + (1,), "expected a list (an index array), got a number; use [\"int\", i] for one index")
    return out


INDEX = _list(Spec("an index item", frozenset({"list"}), _index_item), f"a list of index items {ITEM_WHAT}", 0,
              MAX_DIMS)
AXES = _either("an axis, a list of axes, or null (every axis)", NULL, AXIS, _list(AXIS, "a list of axes", 0, MAX_DIMS))
PARTIALS = _list(_leaf(f"a partial structure ({', '.join(ABSTRACT_STRUCTURES)})", "str",
                       lambda v: v in ABSTRACT_STRUCTURES), "a list with one partial structure per argument")
RESHAPE = _list(_int(-1, MAX_ELEMENTS, "a size, or -1 for the rest"), "a target shape such as [2, -1]", 0,
                MAX_DIMS, lambda dims: "more than one -1" if dims.count(-1) > 1 else None)

# op → parameter → (spec, required). Every op's parameters, and only those, are listed here.
_REDUCE = {"axis": (AXES, False), "keepdims": (BOOL, False)}
PARAMS: dict[str, dict[str, tuple[Spec, bool]]] = {
    "sum": _REDUCE, "mean": _REDUCE, "amax": _REDUCE, "amin": _REDUCE,
    "reshape": {"shape": (RESHAPE, True)},
    "transpose": {"axes": (optional(_list(AXIS, "a permutation of the axes, e.g. [1, 0]", 0, MAX_DIMS)), False)},
    "broadcast_to": {"shape": (SHAPE, True)},
    "clip": {"lo": (optional(NUMBERS), False), "hi": (optional(NUMBERS), False)},
    "einsum": {"spec": (EINSUM, True)},
    "getitem": {"index": (INDEX, True)},
    "concatenate": {"axis": (AXIS, False)},
    "stack": {"axis": (AXIS, False)},
    "constant": {"value": (NUMBERS, True), "shape": (SHAPE, False)},
    "abstract": {"partials": (PARTIALS, True), "shape": (SHAPE, False)},
    "lanes": {"axes": (_int(1, MAX_DIMS, "the number of the mask's axes"), True)},
}


def _object(fields: dict[str, tuple[Spec, bool]], what: str, extra: bool = False) -> Spec:
    """An object with these fields. Unknown ones are refused (a misspelt field must not silently
    fall back to a default) unless ``extra``; those are then dropped."""
    def read(v, path):
        if not isinstance(v, dict):
            raise _fail(spec, v, path)
        for k in v:
            if k not in fields and not extra:
                known = ", ".join(fields) or "none"
                raise _Bad(path + (k,), f"unknown field; the fields here are {known}")
        out = {}
        for k, (s, required) in fields.items():  # in table order: "format" is checked first
            if k in v:
                out[k] = s.read(v[k], path + (k,))
            elif required:
                raise _Bad(path + (k,), f"missing; expected {s.what}")
        return out
    spec = Spec(what, frozenset({"object"}), read)
    return spec


PARAM_SPECS = {op: _object(fields, f"the parameters of {op}") for op, fields in PARAMS.items()}
NO_PARAMS = _object({}, "an empty object (this op takes no parameters)")


def _const(v, path):
    bool_ = isinstance(v, dict) and v.get("dtype") == "bool"
    fields = {"const": (BOOLS if bool_ else NUMBERS, True),
              "dtype": (_leaf('"float" or "bool"', "str", lambda d: d in ("float", "bool")), False),
              "shape": (SHAPE, False)}
    d = _object(fields, '{"const": ..., "dtype": "float"}').read(v, path)
    return Const(_shaped(np.array(d["const"], dtype=bool if bool_ else float), d.get("shape"), path))


def _shaped(a: np.ndarray, shape: Any, path: str) -> np.ndarray:
    """``a`` in the written ``shape`` (an empty constant's: its nested lists do not say it)."""
    if shape is None:
        return a
    if a.size != 0 or math.prod(shape) != 0:
        raise _Bad(path, f'"shape" {list(shape)} is given for an empty constant only; this one holds {a.size} value(s)')
    return a.reshape(shape)


NAME = _leaf("a vertex name (a string)", "str", lambda v: True)
ARG = _either('a vertex name, a number, or {"const": ...}', NAME,
              _leaf('a finite number (JSON has no NaN or infinity: write {"const": "nan"}, "inf" or "-inf")',
                    "int float", _float_ok, lambda v: Const(np.array(float(v)))),
              Spec('{"const": ...}', frozenset({"object"}), _const))
def _op(v, path):
    if not isinstance(v, str) or v not in OPS or v == "input":
        known = ", ".join(sorted(set(OPS) - {"input"}))
        got = f"unknown op {v!r}" if isinstance(v, str) else f"expected an op name (a string), got {_show(v)}"
        raise _Bad(path, f"{got}; known ops: {known}")
    return v


OP = Spec("an op name", frozenset({"str"}), _op)
INPUT = _object({"name": (NAME, True), "shape": (SHAPE, True)}, 'an input {"name": "x", "shape": [3]}')
NODE = _object({"name": (NAME, True), "op": (OP, True), "args": (_list(ARG, "a list of arguments"), False),
                "params": (OBJECT, False), "shape": (optional(SHAPE), False)},
               'a node {"name": ..., "op": ..., "args": [...]}')
TOP = {"format": (_leaf(f'"{FORMAT}"', "str", lambda v: v == FORMAT), True),
       "version": (_leaf(f"{VERSION} (the version this jacc reads)", "int", lambda v: v == VERSION), True),
       "name": (STR, False), "inputs": (_list(INPUT, "a list of inputs"), True),
       "nodes": (_list(NODE, "a list of nodes"), True),
       "outputs": (_list(NAME, "a non-empty list of vertex names", 1), True), "meta": (OBJECT, False)}
FILE = _object(TOP, 'a JSON object with "format", "version", "inputs", "nodes" and "outputs"')
HEADER = _object({k: TOP[k] for k in ("format", "version")}, "", extra=True)


def plan_schema(fmt: str) -> Spec:
    """The fields of a plan file (``Plan.to_json``) that ``Plan.from_json`` reads; its other
    fields (the summary figures, the steps) are recomputed from these, so they are not read."""
    weights = _object({"mults": (NUMBER, False), "memory": (NUMBER, False)},
                      'weights such as {"mults": 1, "memory": 0.01}')
    objective = _either('"mults", "memory", "time" or weights such as {"mults": 1, "memory": 0.01}',
                        _leaf('"mults", "memory" or "time"', "str", lambda v: v in NAMED), weights)
    limit = optional(_leaf("a positive number of bytes", "int float", lambda v: _float_ok(v) and v > 0))
    names = _list(NAME, "a list of vertex names")
    return _object({
        "format": (_leaf(f'"{fmt}"', "str", lambda v: v == fmt), True),
        "version": (_leaf("1 (the version this jacc reads)", "int", lambda v: v == 1), False),
        "strategy": (STR, True), "order": (names, True), "wrt": (names, True), "of": (names, True),
        "mults": (_int(0, 2 ** 256, "a multiplication count (an integer ≥ 0)"), True),
        "cost_model": (_object({"objective": (objective, False), "memory_limit": (limit, False),
                                "value_bytes": (_leaf("the bytes of a value: 2, 4, 8 or 16", "int",
                                                      lambda v: v in (2, 4, 8, 10, 12, 16)), False)},
                               'a cost model {"objective": "mults", "memory_limit": null}'), False),
        "info": (OBJECT, False), "optimal": (optional(BOOL), False), "graph": (OBJECT, True),
        "planning_seconds": (_leaf("a number of seconds ≥ 0", "int float", lambda v: _float_ok(v) and v >= 0), False),
    }, f'a plan: a JSON object with "format": "{fmt}", "order", "wrt", "of", "mults" and "graph"', extra=True)


def _read_params(node: dict, path: tuple) -> dict:
    op = node["op"]
    if op not in PARAM_SPECS and op in PARAMS:  # an entry added later (jacc.numpy_api's ops)
        PARAM_SPECS[op] = _object(PARAMS[op], f"the parameters of {op}")
    params = PARAM_SPECS.get(op, NO_PARAMS).read(node.get("params") or {}, path + ("params",))
    if node["op"] == "abstract" and node.get("shape") is None and "shape" not in params:
        raise _Bad(path + ("shape",), "missing; an abstract node needs its shape, e.g. \"shape\": [3]")
    return params


def _where(data: Any, path: tuple) -> str:
    """``input 'x'``, ``node 'v2'`` (or ``node #3`` while its name is unreadable) and the field path."""
    head, rest = (), path
    if path[:1] in (("inputs",), ("nodes",)) and len(path) > 1 and isinstance(path[1], int):
        head, rest = path[:1], path[1:]
        item = data[head[0]][rest[0]] if isinstance(data, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        what = "input" if head[0] == "inputs" else "node"
        head = (f"{what} {name!r}" if isinstance(name, str) and rest[1:] != ("name",) else f"{what} #{rest[0]}",)
        rest = rest[1:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    return ": ".join(x for x in (head[0] if head else "", field) if x) or "top level"


def check_real(dtype: np.dtype, what: str) -> None:
    """Refuse a differentiated argument whose ``dtype`` is no real number (complex, boolean,
    object): a cast would drop an imaginary part or read booleans as numbers."""
    if dtype.kind not in "fiu":
        hint = (" (NumPy makes object arrays of Python integers beyond 64 bits and of mixed objects: pass "
                "np.asarray(x, dtype=float))" if dtype.kind == "O" else "")
        raise TypeError(f"{what} must be a real float array, got dtype {dtype}{hint}")


class TracedPoint:
    """The inputs a trace that depends on values was recorded at (``graph.meta["traced_at"]``):
    running the graph elsewhere warns (:func:`jacc.plan.warn_if_elsewhere`); a file keeps
    :meth:`digest`, a fingerprint of their bits."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def holds(self, values: dict[str, Any]) -> bool:
        """Whether ``values`` are these inputs, bit for bit as float64 (NaN included)."""
        return all(np.array_equal(np.asarray(values[x], dtype=float), np.asarray(v, dtype=float), equal_nan=True)
                   for x, v in self.values.items())

    def digest(self) -> str:
        return point_digest(self.values)

    def __repr__(self) -> str:
        return f"TracedPoint({self.digest()!r})"


def point_digest(values: dict[str, Any]) -> str:
    """A short fingerprint of input values (their float64 bits, by name), as a file keeps a
    :class:`TracedPoint`."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(values):
        a = np.ascontiguousarray(values[name], dtype=np.float64)
        h.update(f"{name}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _file_meta(meta: dict) -> dict:
    """``meta`` as a file keeps it: a nested argument's or result's containers (Python objects, which
    ``jacobian`` reads to shape its result) are left out, their leaves being the file's vertices
    (``p.x``, ``out[1]``), and a nested result is marked as a tuple of its leaves."""
    from .pytrees import TreeSpec

    kept = {k: v for k, v in meta.items() if k != "input_groups"}
    if isinstance(kept.get("output_tuple"), TreeSpec):
        kept["output_tuple"] = True
    if isinstance(kept.get("traced_at"), TracedPoint):
        kept["traced_at"] = kept["traced_at"].digest()
    return kept


def read_numbers(data: Any) -> np.ndarray:
    """A number or nested list of numbers as JSON holds them ("inf", "-inf" and "nan" as strings)
    → a float array; ``ValueError`` saying what is wrong otherwise."""
    try:
        return np.asarray(NUMBERS.read(data, ()), dtype=float)
    except _Bad as e:
        raise ValueError(e.msg) from None


def read_schema(spec: Spec, data: Any, src: str, path: tuple = ()) -> Any:
    """``spec.read(data)`` with violations as :class:`GraphError` naming ``src`` and the place."""
    try:
        return spec.read(data, path)
    except _Bad as e:
        raise GraphError(f"{src}: {_where(data, e.path)}: {e.msg}") from None


def _from_dict(data: Any, src: str) -> Graph:
    def fail(where: str, msg: str) -> GraphError:
        return GraphError(f"{src}: {where}: {msg}")

    if isinstance(data, dict):  # a foreign file should hear about its format before anything else
        read_schema(HEADER, data, src)
    doc = read_schema(FILE, data, src)
    for i, node in enumerate(doc["nodes"]):
        node["params"] = _node_params(data, node, src, i)
    g = Graph(doc.get("name", os.path.basename(src)))
    for inp in doc["inputs"]:
        try:
            g.add_input(inp["name"], inp["shape"])
        except GraphError as e:
            raise fail(f"input {inp['name']!r}", str(e)) from None
    defined = set(g.inputs) | {n["name"] for n in doc["nodes"]}
    for node in doc["nodes"]:
        name, op = node["name"], node["op"]
        where = f"node {name!r}"
        for a in node.get("args", []):
            if isinstance(a, str) and a not in g.nx:
                hint = ("it is defined later: order nodes so arguments come first (a cycle?)"
                        if a in defined else "no input or node has that name")
                raise fail(where, f"argument {a!r} is not defined: {hint}")
        try:
            g.add_node(name, op, node.get("args", []), node["params"], node.get("shape"))
        except GraphError as e:
            msg = re.sub(rf"^node {re.escape(repr(name))}( \(\w+\))?: ", "", str(e))
            raise fail(f"{where} ({op})", msg) from None
        why = _dry_run(g, name)
        if why:
            raise fail(f"{where} ({op})", why)
    try:
        g.set_outputs(doc["outputs"])
    except GraphError as e:
        raise fail("outputs", str(e)) from None
    g.meta = _checked_meta(dict(doc.get("meta") or {}), g, fail)
    return g


def _checked_meta(meta: dict, g: Graph, fail: Callable[[str, str], GraphError]) -> dict:
    """A file's ``meta`` with the keys jacc reads checked (the rest are kept as they are): a wrong
    type had surfaced as a TypeError inside ``jacc run`` (hunt CI)."""
    for key in ("value_dependent", "math_domain"):
        if key in meta and not (isinstance(meta[key], list) and all(isinstance(x, str) for x in meta[key])):
            raise fail(f"meta.{key}", "must be a list of strings (the places where the trace read a value)")
    if "traced_at" in meta and not isinstance(meta["traced_at"], str):
        raise fail("meta.traced_at", "must be a string (the fingerprint of the inputs the trace was made at)")
    if "output_tuple" in meta and not isinstance(meta["output_tuple"], bool):
        raise fail("meta.output_tuple", "must be true or false")
    if "lanes" in meta and (type(meta["lanes"]) is not int or meta["lanes"] < 0):
        raise fail("meta.lanes", "must be a count (a non-negative integer)")
    if "index_bounds" in meta and not isinstance(meta["index_bounds"], list):
        raise fail("meta.index_bounds", "must be a list")
    if "one_hot" in meta:
        pairs = meta["one_hot"]
        ok = isinstance(pairs, dict) and all(
            m in g.nx and isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0] in g.nx
            and type(v[1]) is int and v[1] > 0 for m, v in pairs.items())
        if not ok:
            raise fail("meta.one_hot", 'must map a mask vertex to [its labels vertex, the class count], '
                       'e.g. {"m": ["y", 10]}, naming vertices of this graph')
        meta["one_hot"] = {m: tuple(v) for m, v in pairs.items()}
    return meta


def _node_params(data: Any, node: dict, src: str, i: int) -> dict:
    """Node ``i``'s parameters read by its op's entry in :data:`PARAMS`."""
    try:
        return _read_params(node, ("nodes", i))
    except _Bad as e:
        raise GraphError(f"{src}: {_where(data, e.path)}: {e.msg}") from None


def _no_duplicates(pairs: list) -> dict:
    """``json`` keeps the last of repeated keys without a word; a graph file must not repeat one."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Bad((), f"key {twice!r} appears twice in one object; keep one")
    return out


def load(path: str | os.PathLike) -> Graph:
    """Read a graph file written by :meth:`Graph.save` (JSON; never evaluated or unpickled)."""
    src = os.fspath(path)
    try:
        with open(src, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise GraphError(f"{src}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise GraphError(f"{src}: not UTF-8 text (byte {e.start}); save the file as UTF-8 JSON") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise GraphError(f"{src}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except _Bad as e:
        raise GraphError(f"{src}: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of over 4,300 digits; lists nested 10⁵ deep
        what = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise GraphError(f"{src}: not readable as JSON: {what}") from None
    return _from_dict(data, src)
