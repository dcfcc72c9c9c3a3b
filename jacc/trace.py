"""The NumPy tracer: run a Python function on traced arrays and record a :class:`Graph`.

Traced arrays carry their current value (so ordinary control flow runs) and implement NumPy's
operator, ``__array_ufunc__`` and ``__array_function__`` protocols, so plain NumPy code records
itself. Closed-over arrays become constants.

>>> import numpy as np
>>> g = trace(lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2), 2.0, 5.0)
>>> [g.op(v) for v in g.intermediates]
['log', 'mul', 'add', 'sin']
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Callable

import numpy as np

from .graph import Graph, GraphError
from .ops import OPS, ShapeError

_HERE = os.path.dirname(os.path.abspath(__file__))
_NUMPY = os.path.dirname(os.path.abspath(np.__file__))


class UnsupportedOperationError(TypeError):
    """A NumPy function or method the tracer cannot record."""


class TraceError(ValueError):
    """A recorded op got arguments it cannot take (e.g. shapes that do not fit)."""


def call_site() -> str:
    """``file:line`` of the innermost frame outside jacc and NumPy."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_HERE) and not fn.startswith(_NUMPY):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


class Tape:
    """Records ops into a graph while evaluating them."""

    def __init__(self, name: str, dtype=np.float64):
        self.graph = Graph(name)
        self.dtype = dtype
        self.count = 0
        self.value_dependent: list[str] = []

    def input(self, name: str, value: Any) -> "Tracer":
        value = np.asarray(value, dtype=self.dtype)
        self.graph.add_input(name, value.shape)
        return Tracer(self, name, value)

    def record(self, op: str, args: list, params: dict | None = None) -> "Tracer":
        params = params or {}
        gargs = []
        args = [a.whole() if isinstance(a, _Split) else a for a in args]
        for a in args:
            if isinstance(a, Tracer):
                if a.tape is not self:
                    raise UnsupportedOperationError(
                        f"a traced array from another trace was used at {call_site()} "
                        "(nested jacc traces are not supported)")
                gargs.append(a.name)
            else:
                gargs.append(np.asarray(a) if np.asarray(a).dtype == bool else np.asarray(a, dtype=self.dtype))
        self.count += 1
        name = f"v{self.count}"
        try:
            self.graph.add_node(name, op, gargs, params)
        except GraphError as e:
            msg = str(e).split(": ", 1)[-1]
            raise TraceError(f"{op} at {call_site()}: {msg}") from None
        vals = [a.value if isinstance(a, Tracer) else g for a, g in zip(args, gargs)]
        with np.errstate(all="ignore"):
            value = np.asarray(OPS[op].evaluate(vals, params), dtype=self.dtype)
        return Tracer(self, name, value)

    def note_value_dependence(self, what: str) -> None:
        self.value_dependent.append(f"{what} at {call_site()}")


def _unsupported(what: str) -> UnsupportedOperationError:
    names = sorted(set(_UFUNCS) | {f.__name__ for f in _FUNCTIONS})
    return UnsupportedOperationError(
        f"{what} is not supported by jacc's tracer (called at {call_site()}). "
        f"Supported NumPy functions: {', '.join(names)}; operators + - * / ** @, unary -, abs, "
        "indexing with constant indices, and .T/.reshape/.transpose/.sum/.mean/.max/.min/.dot.")


def _concretisation(what: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"{what} of a traced value at {call_site()} would turn it into a constant, so its derivative "
        "would be lost; keep it an array (e.g. x.sum() instead of float(x.sum()))")


def _index_params(index: Any, ndim: int) -> list:
    if not isinstance(index, tuple):
        index = (index,)
    n_axes = sum(1 for i in index if i is not None and i is not Ellipsis
                 and not (isinstance(i, np.ndarray) and i.dtype == bool))
    out: list = []
    for item in index:
        if item is Ellipsis:
            out += [["slice", None, None, None]] * (ndim - n_axes)
        elif item is None:
            out.append(["new"])
        elif isinstance(item, slice):
            for part in (item.start, item.stop, item.step):
                if isinstance(part, Tracer):
                    raise _unsupported("slicing with traced bounds")
            out.append(["slice", item.start, item.stop, item.step])
        elif isinstance(item, (int, np.integer)):
            out.append(["int", int(item)])
        elif isinstance(item, Tracer):
            raise _unsupported("indexing with a traced array")
        else:
            arr = np.asarray(item)
            if arr.dtype.kind not in "biu":
                raise UnsupportedOperationError(f"index {item!r} at {call_site()} is not an int, slice or "
                                                "integer/boolean array")
            out.append(["array", arr.tolist()])
    return out


class Tracer:
    """A traced array: holds its current value and its vertex name in the tape's graph."""

    __array_priority__ = 1000

    def __init__(self, tape: Tape, name: str, value: np.ndarray):
        self.tape, self.name, self.value = tape, name, value

    # -- array attributes -----------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)
    dtype = property(lambda self: self.value.dtype)
    T = property(lambda self: self.transpose())

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Tracer({self.name}, shape={self.shape})"

    def __array__(self, dtype=None, copy=None):
        raise UnsupportedOperationError(
            f"a traced array was converted to a plain NumPy array at {call_site()} (e.g. by np.array"
            "([...]) or np.asarray); build arrays from traced values with np.stack or np.concatenate")

    # value-dependent conversions: allowed, but the trace is then only valid at this point
    def _concrete(self, what: str):
        self.tape.note_value_dependence(what)
        return self.value

    def __bool__(self) -> bool:
        return bool(self._concrete("bool() of a traced value"))

    def __float__(self) -> float:
        raise _concretisation("float()")

    def __int__(self) -> int:
        raise _concretisation("int()")

    def _compare(self, other, fn, what):
        other = other.value if isinstance(other, Tracer) else other
        return fn(self._concrete(f"comparison '{what}'"), other)

    __lt__ = lambda s, o: s._compare(o, np.less, "<")  # noqa: E731
    __le__ = lambda s, o: s._compare(o, np.less_equal, "<=")  # noqa: E731
    __gt__ = lambda s, o: s._compare(o, np.greater, ">")  # noqa: E731
    __ge__ = lambda s, o: s._compare(o, np.greater_equal, ">=")  # noqa: E731

    # -- operators ------------------------------------------------------------------------------
    def _bin(self, op, other, reverse=False):
        args = [other, self] if reverse else [self, other]
        return self.tape.record(op, args)

    __add__ = lambda s, o: s._bin("add", o)  # noqa: E731
    __radd__ = lambda s, o: s._bin("add", o, True)  # noqa: E731
    __sub__ = lambda s, o: s._bin("sub", o)  # noqa: E731
    __rsub__ = lambda s, o: s._bin("sub", o, True)  # noqa: E731
    __mul__ = lambda s, o: s._bin("mul", o)  # noqa: E731
    __rmul__ = lambda s, o: s._bin("mul", o, True)  # noqa: E731
    __truediv__ = lambda s, o: s._bin("div", o)  # noqa: E731
    __rtruediv__ = lambda s, o: s._bin("div", o, True)  # noqa: E731
    __matmul__ = lambda s, o: s._bin("matmul", o)  # noqa: E731
    __rmatmul__ = lambda s, o: s._bin("matmul", o, True)  # noqa: E731

    def __pow__(self, other):
        if not isinstance(other, Tracer) and np.ndim(other) == 0 and float(other) == 2.0:
            return self.tape.record("square", [self])
        return self._bin("pow", other)

    def __rpow__(self, other):
        return self._bin("pow", other, True)

    def __neg__(self):
        return self.tape.record("neg", [self])

    def __pos__(self):
        return self

    def __abs__(self):
        return self.tape.record("abs", [self])

    def __getitem__(self, index):
        return self.tape.record("getitem", [self], {"index": _index_params(index, self.ndim)})

    # -- methods --------------------------------------------------------------------------------
    def reshape(self, *shape, order="C"):
        if order != "C":
            raise _unsupported(f"reshape with order={order!r}")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self.tape.record("reshape", [self], {"shape": [int(n) for n in shape]})

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return self.tape.record("transpose", [self], {"axes": list(axes) if axes else None})

    def sum(self, axis=None, keepdims=False):
        return _reduce("sum", self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _reduce("mean", self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _reduce("amax", self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return _reduce("amin", self, axis, keepdims)

    def dot(self, other):
        return _dot(self, other)

    def ravel(self):
        return self.reshape(-1)

    flatten = ravel

    def squeeze(self, axis=None):
        return _squeeze(self, axis)

    # -- NumPy protocols ------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if method != "__call__" or kwargs or name not in _UFUNCS:
            what = f"numpy.{name}" + ("" if method == "__call__" else f".{method}")
            if kwargs:
                what += f" with keyword(s) {sorted(kwargs)}"
            raise _unsupported(what)
        return _UFUNCS[name](self.tape, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is None:
            mod = getattr(func, "__module__", "numpy") or "numpy"
            raise _unsupported(f"{mod}.{func.__name__}")
        return handler(*args, **kwargs)


def _tape_of(*xs) -> Tape:
    for x in xs:
        if isinstance(x, (Tracer, _Split)):
            return x.tape
        if isinstance(x, (list, tuple)):
            for y in x:
                if isinstance(y, (Tracer, _Split)):
                    return y.tape
    raise TypeError("no traced argument")


def _reduce(op, x, axis=None, keepdims=False, **kw):
    if kw.get("out") is not None or kw.get("dtype") is not None or kw.get("where") is not None:
        raise _unsupported(f"numpy {op} with out/dtype/where")
    if not isinstance(x, Tracer):
        return getattr(np, op)(x, axis=axis, keepdims=keepdims)
    axis = list(axis) if isinstance(axis, tuple) else axis
    return x.tape.record(op, [x], {"axis": axis, "keepdims": bool(keepdims)})


def _nd(x) -> int:
    return x.ndim if isinstance(x, Tracer) else np.ndim(x)


def _dot(a, b):
    if _nd(a) == 0 or _nd(b) == 0:
        return _tape_of(a, b).record("mul", [a, b])
    if _nd(a) > 2 or _nd(b) > 2:
        raise _unsupported("numpy.dot of arrays with more than 2 dimensions (use matmul or einsum)")
    return _tape_of(a, b).record("matmul", [a, b])


def _squeeze(x, axis=None):
    shape = x.shape
    axes = range(len(shape)) if axis is None else ([axis] if isinstance(axis, int) else axis)
    drop = {a % len(shape) for a in axes if shape[a] == 1}
    return _tape_of(x).record("reshape", [x], {"shape": [n for k, n in enumerate(shape) if k not in drop]})


def _unary(op):
    return lambda tape, x: tape.record(op, [x])


def _binary(op):
    return lambda tape, x, y: tape.record(op, [x, y])


_UFUNCS: dict[str, Callable] = {
    **{name: _unary(name) for name in
       ["exp", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arctan",
        "arcsin", "arccos", "sqrt", "square", "reciprocal"]},
    "negative": _unary("neg"), "absolute": _unary("abs"), "positive": lambda tape, x: x,
    "add": _binary("add"), "subtract": _binary("sub"), "multiply": _binary("mul"),
    "divide": _binary("div"), "true_divide": _binary("div"), "power": _binary("pow"),
    "maximum": _binary("maximum"), "minimum": _binary("minimum"), "matmul": _binary("matmul"),
}


def _where(cond, x=None, y=None):
    if x is None or y is None:
        raise _unsupported("numpy.where with one argument")
    if isinstance(cond, Tracer):
        raise UnsupportedOperationError(
            f"numpy.where with a traced condition at {call_site()}: compare first (x > 0), which "
            "fixes the mask at the traced point")
    return _tape_of(x, y).record("where", [np.asarray(cond, bool), x, y])


def _concatenate(arrays, axis=0, **kw):
    return _tape_of(arrays).record("concatenate", list(arrays), {"axis": int(axis)})


def _stack(arrays, axis=0, **kw):
    return _tape_of(arrays).record("stack", list(arrays), {"axis": int(axis)})


def _einsum(spec, *operands, **kw):
    if not isinstance(spec, str):
        raise _unsupported("numpy.einsum in sublist form")
    return _tape_of(*operands).record("einsum", list(operands), {"spec": spec})


def _slogdet(a):
    tape = _tape_of(a)
    return tape.record("slogdet_sign", [a]), tape.record("logabsdet", [a])


def _norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro") or (ord == 2 and np.ndim(x) != 1):
        raise _unsupported(f"numpy.linalg.norm with ord={ord!r}")
    return np.sqrt(_reduce("sum", x * x, axis, keepdims))


def _clip(x, a_min=None, a_max=None, **kw):
    lo = kw.pop("min", a_min)
    hi = kw.pop("max", a_max)
    if isinstance(lo, Tracer) or isinstance(hi, Tracer):
        raise _unsupported("numpy.clip with traced bounds")
    return _tape_of(x).record("clip", [x], {"lo": None if lo is None else float(lo),
                                             "hi": None if hi is None else float(hi)})


def _broadcast_to(x, shape, **kw):
    shape = [shape] if isinstance(shape, int) else list(shape)
    return _tape_of(x).record("broadcast_to", [x], {"shape": shape})


def _transpose(x, axes=None):
    return x.transpose(*(axes or ()))


def _moveaxis(x, source, destination):
    order = [n for n in range(x.ndim) if n != source % x.ndim]
    order.insert(destination % x.ndim, source % x.ndim)
    return x.transpose(order)


_FUNCTIONS: dict[Callable, Callable] = {
    np.sum: lambda x, axis=None, keepdims=False, **kw: _reduce("sum", x, axis, keepdims, **kw),
    np.mean: lambda x, axis=None, keepdims=False, **kw: _reduce("mean", x, axis, keepdims, **kw),
    np.max: lambda x, axis=None, keepdims=False, **kw: _reduce("amax", x, axis, keepdims, **kw),
    np.min: lambda x, axis=None, keepdims=False, **kw: _reduce("amin", x, axis, keepdims, **kw),
    np.dot: _dot,
    np.ndim: lambda x: x.ndim,
    np.shape: lambda x: x.shape,
    np.size: lambda x, axis=None: x.size if axis is None else x.shape[axis],
    np.matmul: lambda a, b: _tape_of(a, b).record("matmul", [a, b]),
    np.reshape: lambda x, shape, order="C", **kw: x.reshape(shape, order=order),
    np.transpose: _transpose,
    np.moveaxis: _moveaxis,
    np.ravel: lambda x, order="C": x.reshape(-1, order=order),
    np.squeeze: _squeeze,
    np.where: _where,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.einsum: _einsum,
    np.broadcast_to: _broadcast_to,
    np.clip: _clip,
    np.linalg.solve: lambda a, b: _tape_of(a, b).record("solve", [a, b]),
    np.linalg.inv: lambda a: _tape_of(a).record("inv", [a]),
    np.linalg.slogdet: _slogdet,
    np.linalg.norm: _norm,
}
for _alias in ("amax", "amin"):
    if hasattr(np, _alias) and getattr(np, _alias) not in _FUNCTIONS:
        _FUNCTIONS[getattr(np, _alias)] = _FUNCTIONS[np.max if _alias == "amax" else np.min]


class _Split:
    """A vector input traced as separate scalar vertices: ``x[i]`` *is* the i-th scalar vertex,
    so code that unpacks a vector costs no gather. Any other use stacks the scalars once."""

    __array_priority__ = 1000

    def __init__(self, tape: Tape, items: list[Tracer]):
        self.tape, self.items, self._whole = tape, items, None

    shape = property(lambda self: (len(self.items),))
    ndim = 1
    size = property(lambda self: len(self.items))
    dtype = property(lambda self: self.tape.dtype)

    def whole(self) -> Tracer:
        if self._whole is None:
            self._whole = self.tape.record("stack", self.items, {"axis": 0})
        return self._whole

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.items[int(index)]
        if isinstance(index, slice) and self.items[index]:
            return self.tape.record("stack", self.items[index], {"axis": 0})
        return self.whole()[index]

    def __getattr__(self, name):
        return getattr(self.whole(), name)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return getattr(ufunc, method)(*[_unsplit(i) for i in inputs], **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return func(*[_unsplit(a) for a in args], **{k: _unsplit(v) for k, v in kwargs.items()})


def _unsplit(x):
    if isinstance(x, _Split):
        return x.whole()
    if isinstance(x, (list, tuple)):
        return type(x)(_unsplit(y) for y in x)
    return x


for _op in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "matmul", "rmatmul",
            "pow", "rpow", "neg", "pos", "abs", "lt", "le", "gt", "ge"):
    setattr(_Split, f"__{_op}__", lambda self, *a, _n=f"__{_op}__": getattr(self.whole(), _n)(*a))


def supported_functions() -> list[str]:
    """Names of the NumPy functions and ufuncs the tracer records."""
    return sorted(set(_UFUNCS) | {f.__name__ for f in _FUNCTIONS})


def _is_array_like(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (float, np.floating)):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def trace(f: Callable, *args, argnums: int | tuple[int, ...] | None = None, dtype=np.float64,
          scalarize: bool = False, **kwargs) -> Graph:
    """Record ``f(*args, **kwargs)`` as a :class:`Graph`.

    Inputs are the positional arguments ``argnums`` (default: every float array or float
    argument), named after ``f``'s parameters; other arguments are constants. Outputs are the
    returned array(s). ``graph.meta['value_dependent']`` lists any place where the trace looked
    at a value (``if x > 0``), which makes the graph valid at this point only.

    ``scalarize=True`` records the graph at the scalar level used by the AD literature: each
    vector input becomes scalar inputs ``x[0]``, ``x[1]``, … (indexing them costs nothing), and
    an output built by stacking scalars becomes separate scalar outputs.

    >>> import numpy as np
    >>> g = trace(lambda A, x: np.tanh(A @ x), np.ones((2, 3)), np.ones(3))
    >>> g.inputs, [g.shape(o) for o in g.outputs]
    (['A', 'x'], [(2,)])
    """
    names = _param_names(f, len(args))
    if argnums is None:
        argnums = tuple(i for i, a in enumerate(args) if _is_array_like(a))
        if not argnums:
            raise TypeError("trace: no float array arguments to differentiate; pass argnums=")
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in argnums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {i} is out of range for {len(args)} positional argument(s)")
    argnums = tuple(i % len(args) for i in argnums)
    tape = Tape(getattr(f, "__name__", "f").replace("<lambda>", "lambda"), dtype)
    targs = list(args)
    for i in argnums:
        a = np.asarray(args[i])
        if a.dtype.kind not in "fiu":
            raise TypeError(f"argument {names[i]!r} must be a real float array, got dtype {a.dtype}")
        if scalarize and a.ndim == 1:
            targs[i] = _Split(tape, [tape.input(f"{names[i]}[{j}]", a[j]) for j in range(a.shape[0])])
        elif scalarize and a.ndim > 1:
            raise ValueError(f"scalarize splits vectors only; argument {names[i]!r} has shape {a.shape}")
        else:
            targs[i] = tape.input(names[i], a)
    result = f(*targs, **kwargs)
    outs = result if isinstance(result, (tuple, list)) else (result,)
    outs = [_unsplit(r) for r in outs]
    if scalarize:
        outs = [y for r in outs for y in _unstack(tape.graph, r)]
    seen: set[str] = set()
    out_names = []
    for k, r in enumerate(outs):
        if not isinstance(r, Tracer):
            try:
                val = np.asarray(r, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"output {k} of {tape.graph.name} is {type(r).__name__}, not an array") from None
            r = tape.record("constant", [], {"value": val.tolist()})
        elif r.name in tape.graph.inputs or r.name in seen:
            r = tape.record("identity", [r])
        seen.add(r.name)
        out_names.append(r.name)
    tape.graph.set_outputs(out_names)
    tape.graph.meta["output_tuple"] = isinstance(result, (tuple, list))
    if tape.value_dependent:
        tape.graph.meta["value_dependent"] = tape.value_dependent
    return tape.graph


def _unstack(g: Graph, r: Any) -> list:
    """The scalar pieces of an output that stacks scalars, else ``[r]``."""
    if isinstance(r, Tracer) and g.op(r.name) == "stack":
        d = g.nx.nodes[r.name]
        if d["params"].get("axis", 0) == 0 and all(isinstance(a, str) and g.shape(a) == () for a in d["args"]):
            return [_Named(r.tape, a) for a in d["args"]]
    return [r]


class _Named(Tracer):
    """A tracer standing for an existing vertex (its value is not needed after tracing)."""

    def __init__(self, tape: Tape, name: str):
        super().__init__(tape, name, np.zeros(()))


def _param_names(f: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return [f"x{i}" for i in range(n)]
    names: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}{i}" for i in range(n - len(names))]
    names += [f"x{i}" for i in range(len(names), n)]
    return names[:n]


__all__ = ["trace", "Tracer", "UnsupportedOperationError", "TraceError", "ShapeError",
           "supported_functions"]
