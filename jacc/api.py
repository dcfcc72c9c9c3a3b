"""``jacc.jacobian``: trace, choose an elimination order, execute, assemble (like ``jax.jacobian``).

>>> import numpy as np
>>> f = lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2)
>>> np.round(jacobian(f, argnums=(0, 1))(2.0, 5.0), 3)
array([5.5  , 1.716])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .eliminate import Problem, accumulate
from .graph import Graph
from .trace import trace


def _check_finite(name: str, x: np.ndarray, policy: str) -> None:
    if policy == "propagate" or np.all(np.isfinite(x)):
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0]) if x.ndim else ()
    raise ValueError(f"argument {name!r} has a non-finite value {x[bad]} at index {bad}; "
                     "pass nonfinite='propagate' to let NaN/inf flow into the Jacobian")


def _order(strategy: Any, problem: Problem, graph: Graph) -> list[str]:
    from .strategies import resolve_order

    return resolve_order(strategy, problem)


def jacobian(f: Callable, argnums: int | Sequence[int] = 0, strategy: Any = "forward", *,
             dtype=None, nonfinite: str = "raise") -> Callable:
    """A function computing the Jacobian of ``f`` w.r.t. the arguments ``argnums``.

    The Jacobian of an output of shape ``S`` w.r.t. an input of shape ``T`` has shape ``S + T``.
    Several ``argnums`` give a tuple per output; a tuple of outputs gives a tuple of those.
    ``strategy`` is a strategy name (``"forward"``, ``"reverse"``, …) or an explicit list of
    vertex names to eliminate in order. Arrays are float64 unless ``dtype=np.float32`` is asked
    for. Non-finite arguments raise ``ValueError`` unless ``nonfinite="propagate"``.

    >>> import numpy as np
    >>> J = jacobian(lambda x: np.tanh(x) * 2.0)(np.zeros(3))
    >>> J.shape, float(J[0, 0]), float(J[0, 1])
    ((3, 3), 2.0, 0.0)
    """
    if nonfinite not in ("raise", "propagate"):
        raise ValueError(f"nonfinite must be 'raise' or 'propagate', not {nonfinite!r}")
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float type, not {dt}")

    def jf(*args, **kwargs):
        graph = trace(f, *args, argnums=nums, dtype=dt, **kwargs)
        inputs = {name: np.asarray(args[i] if i >= 0 else args[len(args) + i], dtype=dt)
                  for name, i in zip(graph.inputs, nums)}
        for name, x in inputs.items():
            _check_finite(name, x, nonfinite)
        problem = Problem.from_graph(graph)
        order = _order(strategy, problem, graph)
        values = graph.evaluate(inputs, dtype=dt)
        with np.errstate(all="ignore" if nonfinite == "propagate" else "warn"):
            acc = accumulate(problem, values, order, dt)
        jf.last = acc
        per_out = []
        for y in graph.outputs:
            blocks = tuple(acc.blocks[y, x] for x in graph.inputs)
            per_out.append(blocks[0] if single else blocks)
        return tuple(per_out) if graph.meta.get("output_tuple") else per_out[0]

    jf.last = None
    return jf

