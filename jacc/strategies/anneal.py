"""``anneal``: seeded simulated annealing over elimination orders.

Starts from the best heuristic order (forward, reverse, Markowitz, min-fill, relative
Markowitz) polished by exact windows, then repeatedly moves one vertex to another position of the order (every
permutation is a valid vertex-elimination order), accepting a worse order with probability
exp(−Δ/(T·score)) under a geometric cooling schedule driven by the move count (``max_iters``,
default ``DEFAULT_ITERS``). The best order seen is then polished by exact searches over windows
of consecutive eliminations (``optimal.polish``, run until nothing improves), so the result is
never worse than the start. One seed gives one order on every machine: ``time_limit`` (the
heuristic start included) and ``polish_time`` (the two polishes together, default no cap but
the time limit) are only caps, and the info's ``stopped early`` says which one cut the run, in
which case the order depends on the machine's speed. ``progress=True`` draws a progress bar on
stderr (``None``, the default, draws it where :func:`jacc.progress.shown` asks: the command line
does when stderr is a terminal).
"""

from __future__ import annotations

import math
import numbers
import random
import time

from .. import budget
from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Problem
from ..progress import Line
from ..progress import enabled as progress_enabled
from . import Result, positive, register
from .optimal import _fallback, _heuristic_bound, polish


def _evaluate(problem: Problem, order: list[str], cm: CostModel, start: int, snaps: list, every: int):
    """Score of ``order``, re-using eliminator snapshots taken before position ``start``."""
    k = min(start // every, len(snaps) - 1)
    base = snaps[k]
    e = base.fork()
    new_snaps = snaps[:k + 1]
    tick = budget.Ticker(32)
    for pos in range(k * every, len(order)):
        tick()
        if pos and pos % every == 0 and pos // every == len(new_snaps):
            new_snaps.append(e.fork())
        if not cm.fits(e.eliminate(order[pos]).peak_bytes):
            return None, e, new_snaps
    return cm.score(e.mults, e.peak_bytes), e, new_snaps


class _Bar:
    """anneal's progress: the share of its moves made and the best score so far."""

    def __init__(self, enabled: bool):
        self.line = Line(enabled)

    def update(self, frac: float, best: float) -> None:
        n = int(30 * min(frac, 1.0))
        self.line.show(f"anneal [{'#' * n}{'.' * (30 - n)}] {100 * min(frac, 1):3.0f}%  best {best:,.0f}", frac >= 1)
        if frac >= 1:
            self.line.close()


#: Default number of moves: enough to improve mid-size graphs, few enough to finish in about a
#: second there; the time limit is only a cap (results are machine-independent when it is not hit).
DEFAULT_ITERS = 400


@register("anneal")
def anneal(problem: Problem, cost_model: CostModel, *, time_limit: float = 10.0, max_iters: int | None = None,
           seed: int = 0, t_start: float = 0.05, t_end: float = 1e-4, progress: bool | None = None,
           polish_time: float | None = None) -> Result:
    """Simulated annealing over orders (see the module docstring)."""
    positive("time_limit", time_limit)
    if polish_time is not None and (isinstance(polish_time, bool) or not isinstance(polish_time, (int, float))
                                    or polish_time < 0):
        raise ValueError(f"polish_time must be a non-negative number of seconds, not {polish_time!r}")
    if max_iters is not None and (isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 0):
        raise ValueError(f"max_iters must be a non-negative int or None, not {max_iters!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an int (the same seed gives the same order on every machine), not {seed!r}")
    if not 0 < t_end <= t_start:
        raise ValueError(f"need 0 < t_end <= t_start, got t_start={t_start}, t_end={t_end}")
    iters = DEFAULT_ITERS if max_iters is None else max_iters
    with budget.within(time_limit):
        try:
            bound = _heuristic_bound(problem, cost_model)
        except budget.TimeUp:
            return _fallback(problem, "anneal", {"seed": seed})
        if bound is None:
            raise MemoryLimitError("anneal: no heuristic order fits the memory limit to start from; "
                                   "raise memory_limit")
        return _anneal(problem, cost_model, bound, iters, seed, (t_start, t_end), progress, polish_time)


def _anneal(problem: Problem, cost_model: CostModel, bound, iters: int, seed: int, temps, progress,
            polish_time: float | None) -> Result:
    score0, order, start_name, _ = bound
    t_start, t_end = temps
    cuts: list[str] = []

    def polished(order: list[str], share: float) -> tuple[list[str], int]:
        # a polish may use ``share`` of the time left (of polish_time when that is given)
        stats: dict = {}
        left = max(0.0, budget.left())
        cap = left * share if polish_time is None else min(left, polish_time / 2)
        new, saved = polish(problem, order, cost_model, deadline=time.perf_counter() + cap, stats=stats)
        if not stats["converged"]:
            cuts.append(f"window polish cut after {stats['windows']} windows by "
                        + ("the time limit" if polish_time is None or cap < polish_time / 2 else "polish_time"))
        return new, saved

    order, saved0 = polished(order, 0.5)
    if saved0:
        start_name += f" + window polish (−{saved0:,})"
    n = len(order)
    info = {"start": f"{start_name} ({score0:,.0f})", "seed": seed}
    if n < 2:
        return Result(order, info | {"iterations": 0})
    rng = random.Random(seed)
    every = max(1, int(math.sqrt(n)))
    snaps = [problem.eliminator()]
    try:
        cur, _, snaps = _evaluate(problem, order, cost_model, 0, snaps, every)
    except budget.TimeUp:
        return Result(order, info | {"iterations": 0, "stopped early": "time limit reached while scoring the start"})
    best, best_order = cur, list(order)
    bar = _Bar(progress_enabled(progress))
    # Keep time for the final polish inside the deadline.
    stop = budget.deadline() - max(0.0, budget.left()) / 4
    it = accepted = 0
    while it < iters:
        if time.perf_counter() > stop:
            cuts.append(f"time limit reached after {it} of {iters} moves")
            break
        frac = it / iters  # the schedule depends on the move count only: same seed, same result
        temp = t_start * (t_end / t_start) ** frac
        a, b = rng.randrange(n), rng.randrange(n)
        if a == b:
            continue
        cand = list(order)
        cand.insert(b, cand.pop(a))
        it += 1
        try:
            s, _, cand_snaps = _evaluate(problem, cand, cost_model, min(a, b), snaps, every)
        except budget.TimeUp:
            cuts.append(f"time limit reached after {it} of {iters} moves")
            break
        if s is None:
            continue
        if s <= cur or rng.random() < math.exp(-(s - cur) / (temp * max(cur, 1.0))):
            order, cur, snaps = cand, s, cand_snaps
            accepted += 1
            if s < best:
                best, best_order = s, list(cand)
        bar.update(frac, best)
    bar.update(1.0, best)
    best_order, saved = polished(best_order, 1.0)
    best -= saved
    if cuts:  # then the result depends on the machine's speed: say so
        info["stopped early"] = "; ".join(cuts)
    info |= {"iterations": it, "accepted": accepted, "window polish saved": saved,
             "improvement over start": f"{100 * (1 - best / score0):.1f}%" if score0 else "0%"}
    return Result(best_order, info)
