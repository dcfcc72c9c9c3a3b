"""``jacc.jacobian``: trace, choose an elimination order, execute, assemble (like ``jax.jacobian``).

>>> import numpy as np
>>> f = lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2)
>>> np.round(jacobian(f, argnums=(0, 1))(2.0, 5.0), 3)
array([5.5  , 1.716])
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from .costmodel import CostModel
from .eliminate import Problem, accumulate
from .trace import trace


def _check_finite(name: str, x: np.ndarray, policy: str) -> None:
    if policy == "propagate" or np.all(np.isfinite(x)):
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0]) if x.ndim else ()
    raise ValueError(f"argument {name!r} has a non-finite value {x[bad]} at index {bad}; "
                     "pass nonfinite='propagate' to let NaN/inf flow into the Jacobian")


def _compiled(plan):
    from .compile import CompileError

    try:
        return plan.compile()
    except CompileError:
        return None


class _Cache:
    """Traces and plans per argument signature; value-dependent traces are never reused."""

    def __init__(self, limit: int = 32):
        self.entries: dict = {}
        self.limit = limit
        self.hits = self.misses = self.retraces = 0

    @staticmethod
    def key(args: tuple, kwargs: dict, nums: tuple, dt) -> Any:
        parts: list = [dt.str]
        for i, a in enumerate(args):
            if i in nums:
                x = np.asarray(a)
                parts.append(("arg", x.shape, x.dtype.str))
            else:
                parts.append(("const", _fingerprint(a)))
        for k in sorted(kwargs):
            parts.append((k, _fingerprint(kwargs[k])))
        try:
            hash(tuple(parts))
        except TypeError:
            return None
        return tuple(parts)

    def put(self, key, value) -> None:
        if key is None:
            return
        if len(self.entries) >= self.limit:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value


def _fingerprint(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return ("ndarray", a.shape, a.dtype.str, hash(a.tobytes()))
    if isinstance(a, (list, tuple)):
        return tuple(_fingerprint(x) for x in a)
    return a


def jacobian(f: Callable, argnums: int | Sequence[int] = 0, strategy: Any = "auto", *,
             dtype=None, nonfinite: str = "raise", cache: bool = True, compile: bool = True,
             cost_model: CostModel | None = None,
             objective: Any = None, memory_limit: int | None = None, **strategy_options) -> Callable:
    """A function computing the Jacobian of ``f`` w.r.t. the arguments ``argnums``.

    The Jacobian of an output of shape ``S`` w.r.t. an input of shape ``T`` has shape ``S + T``.
    Several ``argnums`` give a tuple per output; a tuple of outputs gives a tuple of those.
    ``strategy`` is a strategy name (``"auto"``, ``"forward"``, ``"reverse"``, ``"markowitz"``,
    … see ``jacc.STRATEGIES``), an explicit list of vertex names, or a :class:`~jacc.Plan`;
    ``strategy_options`` go to the strategy (``auto`` gets ``time_limit=1.0`` unless given);
    ``cost_model`` (or ``objective=``/``memory_limit=``) is what the plan minimises. Arrays are float64
    unless ``dtype=np.float32`` is asked for. Non-finite arguments raise ``ValueError`` unless
    ``nonfinite="propagate"``.

    The trace and the plan are cached per argument shapes/dtypes (and the values of the
    non-differentiated arguments), so repeated calls pay only evaluation and accumulation. A
    trace that looked at a value (``if x > 0``) is re-traced on every call. When every vertex is
    a scalar the plan runs compiled (:meth:`~jacc.Plan.compile`; ``compile=False`` to use the
    executor). The returned function has ``.plan`` (the last call's :class:`~jacc.Plan`), ``.last``
    (the executor's :class:`~jacc.Accumulation`, ``None`` when compiled) and ``.cache``.

    >>> import numpy as np
    >>> jf = jacobian(lambda x: np.tanh(x) * 2.0)
    >>> J = jf(np.zeros(3))
    >>> J.shape, float(J[0, 0]), float(J[0, 1])
    ((3, 3), 2.0, 0.0)
    """
    from .plan import Plan, build
    from .strategies import run_strategy

    if nonfinite not in ("raise", "propagate"):
        raise ValueError(f"nonfinite must be 'raise' or 'propagate', not {nonfinite!r}")
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type, not {dt}")
    store = _Cache()
    cm = CostModel.coerce(cost_model, objective, memory_limit)
    if strategy == "auto":  # planning happens on the first call: keep its latency modest
        strategy_options.setdefault("time_limit", 1.0)

    def prepare(args, kwargs):
        key = store.key(args, kwargs, tuple(i % len(args) for i in nums), dt) if cache and args else None
        hit = store.entries.get(key) if key is not None else None
        if hit is not None:
            store.hits += 1
            return hit
        graph = trace(f, *args, argnums=nums, dtype=dt, **kwargs)
        problem = Problem.from_graph(graph)
        t0 = time.perf_counter()
        if isinstance(strategy, Plan):
            order, name, info, optimal = strategy.order, strategy.strategy, strategy.info, strategy.optimal
        else:
            order, name, info, optimal = run_strategy(strategy, problem, cm, **strategy_options)
        plan = build(problem, order, name, cm, info, time.perf_counter() - t0, optimal)
        entry = (graph, problem, plan, _compiled(plan) if compile and dt == np.float64 else None)
        if graph.meta.get("value_dependent"):
            store.retraces += 1
        else:
            store.misses += 1
            store.put(key, entry)
        return entry

    def jf(*args, **kwargs):
        graph, problem, plan, fast = prepare(args, kwargs)
        inputs = {name: np.asarray(args[i], dtype=dt) for name, i in zip(graph.inputs, nums)}
        for name, x in inputs.items():
            _check_finite(name, x, nonfinite)
        if fast is not None:  # all-scalar graph: the compiled straight-line plan
            found = {k: np.asarray(v, dtype=dt) for k, v in fast(*[inputs[x] for x in graph.inputs]).items()}
            jf.plan, jf.last = plan, None
        else:
            values = graph.evaluate(inputs, dtype=dt)
            with np.errstate(all="ignore" if nonfinite == "propagate" else "warn"):
                acc = accumulate(problem, values, plan.order, dt)
            jf.plan, jf.last = plan, acc
            found = acc.blocks
        per_out = []
        for y in graph.outputs:
            blocks = tuple(found[y, x] for x in graph.inputs)
            per_out.append(blocks[0] if single else blocks)
        return tuple(per_out) if graph.meta.get("output_tuple") else per_out[0]

    jf.plan = jf.last = None
    jf.cache = store
    return jf
