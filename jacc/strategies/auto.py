"""``auto``: pick a strategy by problem size, within a time target.

| eliminable vertices n      | what runs                                                        |
|----------------------------|------------------------------------------------------------------|
| the problem is one chain   | ``chain`` (exact matrix-chain DP)                                |
| n ≤ 20                     | ``optimal`` with ``time_limit`` (default 5 s); exact when it ends |
| 20 < n ≤ 2,000             | ``anneal`` for ``time_limit`` / 5 s (starts from the best         |
|                            | heuristic, polished by exact windows; polishes its result too)    |
| n > 2,000                  | ``window``: best heuristic polished by exact windows of 12        |
|                            | eliminations for ``time_limit`` / 2 s                             |

Whatever runs, ``auto`` returns the cheapest of its result and the forward, reverse and
Markowitz orders, so it is never worse than any of them.
"""

from __future__ import annotations

from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Problem
from . import Result, best_of, positive, register
from .chain import segments

EXACT_MAX = 20
ANNEAL_MAX = 2000


@register("auto")
def auto(problem: Problem, cost_model: CostModel, *, time_limit: float = 5.0, seed: int = 0) -> Result:
    """Choose by size (see the module docstring); never worse than forward/reverse/markowitz."""
    positive("time_limit", time_limit)
    n = len(problem.eliminable)
    segs = segments(problem)
    if len(segs) == 1 and len(segs[0]) - 2 == n and len(problem.wrt) == 1 and len(problem.of) == 1:
        main, opts = "chain", {}
    elif n <= EXACT_MAX:
        main, opts = "optimal", {"time_limit": time_limit}
    elif n <= ANNEAL_MAX:
        main, opts = "anneal", {"time_limit": time_limit / 5, "seed": seed}
    else:
        main, opts = "window", {"time_limit": time_limit / 2}
    candidates = [(main, opts)] + [(s, {}) for s in ("forward", "reverse", "markowitz") if s != main]
    best = best_of(problem, cost_model, candidates)
    if best is None:
        raise MemoryLimitError(f"auto: no strategy found an order within the memory limit of "
                               f"{cost_model.memory_limit:,} bytes; raise memory_limit")
    _, order, name, info, optimal = best
    return Result(order, {"chose": name, **info}, optimal, name=f"auto→{name}")
