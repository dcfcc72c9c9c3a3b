"""``auto``: pick a strategy by problem size, within a time limit that bounds all of it.

| problem                    | main search                                                      |
|----------------------------|------------------------------------------------------------------|
| one chain                  | ``chain``: the exact matrix-chain DP when its a-priori estimate  |
|                            | (n³ time, n² memory) fits the time left, else Markowitz          |
| n ≤ 20 eliminable vertices | ``optimal`` for what is left of ``time_limit``; exact when it ends|
| 20 < n ≤ 2,000             | ``anneal`` capped at 0.6·``time_limit`` (starts from the best    |
|                            | heuristic, polished by exact windows; polishes its result too)   |
| n > 2,000                  | ``window``: best heuristic polished by exact windows of 12       |
|                            | eliminations for at most ``time_limit`` / 2                      |

On a graph of scalars over 2,000 vertices made of copies of a few independent groups (a batch at
scalar level; the ``mults`` objective, which lets groups be searched apart), n counts one group of
each class of copies, which is what the decomposed searches search
(:func:`~jacc.strategies.searched_size`): 1,000 Black–Scholes options are searched as the 44
vertices of one option.

The reverse and forward orders run first (the one likely cheaper first, by output against input
sizes; it may use half of the time left, the other a third), then Markowitz, then the main search;
on a batch of copies the search comes straight after the first of them, since it takes less time
than pricing one more order of the whole graph (Markowitz last). Whatever does not finish by the deadline is
dropped. With ``payoff_calls`` (``jacc.jacobian``
passes 100,000), the main search and the bound below also stop when the plan is cheap
(:func:`search_time`): they may take what the best order known costs to run that many times at
about a nanosecond per multiplication (less the bytes every order holds at the start, under an
objective that counts memory), at least 0.05 s. The 17-vertex graph of ``np.polydiv``
then plans in about 0.1 s instead of the whole second, for an order of 33 multiplications that the
search improves to 25. On graphs of scalars searched by ``anneal``, what
is left of the time (at most ``BOUND_SHARE`` of ``time_limit``) goes to the exact search's lower
bound (:func:`~jacc.strategies.optimal.lower_bound`), reported as ``info["lower bound"]``; the plan
is proven optimal when its cost meets it (the heart dipole at scalar level does, at once). ``auto``
returns the best of those that finished (:meth:`CostModel.pick`: fewest mults, ties and
near-ties broken by peak memory, and never an order whose peak exceeds the memory available
when another fits), so it is never worse than any of them but to save memory. The whole call,
baselines and set-up included, ends within ``time_limit`` (plus the final pricing of the chosen
order); the info lists what ran (``tried``).
"""

from __future__ import annotations

from .. import budget
from ..costmodel import CostModel, MemoryLimitError
from ..eliminate import Problem
from . import Result, best_of, naive_first, positive, positive_int, register, searched_size
from .chain import segments
from .greedy import extra_starts
from .optimal import _fallback

EXACT_MAX = 20
ANNEAL_MAX = 2000
BASELINE_SHARES = (0.5, 0.33)  # of the time left: the likely cheaper mode, then the other
ANNEAL_SHARE = 0.6  # of time_limit: the baselines run first and usually take far less
BOUND_SHARE = 0.25  # of time_limit, at most: a proven lower bound for anneal's result
MULT_SECONDS = 1e-9  # a multiplication in compiled code, roughly: what a saved one is worth
SEARCH_MIN = 0.05  # seconds the main search may always take, however cheap the plan


def is_chain(problem: Problem) -> bool:
    """One input, one output, every eliminable vertex on a single path between them."""
    if len(problem.wrt) != 1 or len(problem.of) != 1:
        return False
    segs = segments(problem)
    return len(segs) == 1 and len(segs[0]) - 2 == len(problem.eliminable)


def main_search(problem: Problem, time_limit: float, seed: int, n: int | None = None) -> tuple[str, dict]:
    """The size table of the module docstring: (strategy, options); ``n``: the vertices the search
    would search (default: every eliminable one; on a batch of copies fewer, see :func:`searched`)."""
    n = len(problem.eliminable) if n is None else n
    if is_chain(problem):
        return "chain", {"time_limit": time_limit}
    if n <= EXACT_MAX:
        return "optimal", {"time_limit": time_limit}
    if n <= ANNEAL_MAX:
        return "anneal", {"time_limit": time_limit * ANNEAL_SHARE, "seed": seed}
    return "window", {"time_limit": time_limit / 2}


def searched(problem: Problem, cost_model: CostModel) -> int:
    """How many vertices a decomposed search would search on a graph over ``ANNEAL_MAX`` vertices
    (:func:`~jacc.strategies.searched_size`: one group of each class of copies), or all the
    eliminable ones when finding that out does not fit the planning deadline (on 10⁵ vertices it
    takes about a second) or the graph is smaller."""
    n = len(problem.eliminable)
    if n <= ANNEAL_MAX or budget.expired():
        return n
    try:
        return searched_size(problem, cost_model)
    except budget.TimeUp:
        return n


def search_time(score: float | None, payoff_calls: int | None) -> float:
    """Seconds a search may spend past the baselines when the best order known scores ``score``:
    what running that order ``payoff_calls`` times costs at ``MULT_SECONDS`` per unit of score
    (at least ``SEARCH_MIN``), since no search can save more than the whole score. Unlimited
    when ``payoff_calls`` is ``None`` or nothing is priced yet.

    >>> search_time(33, 100_000), search_time(20_000, 100_000), search_time(33, None)
    (0.05, 2.0, inf)
    """
    if payoff_calls is None or score is None:
        return float("inf")
    return max(SEARCH_MIN, score * payoff_calls * MULT_SECONDS)


@register("auto")
def auto(problem: Problem, cost_model: CostModel, *, time_limit: float = 5.0, seed: int = 0,
         payoff_calls: int | None = None) -> Result:
    """Choose by size (see the module docstring); never worse than forward/reverse/markowitz.

    With ``payoff_calls``, the search after the baselines stops at :func:`search_time` of the
    best score they reach: one that could save at most a few dozen multiplications is not worth
    a second of a first call (``jacc.jacobian`` passes ``payoff_calls=100_000``)."""
    positive("time_limit", time_limit)
    if payoff_calls is not None:
        positive_int("payoff_calls", payoff_calls)
    n, size = len(problem.eliminable), searched(problem, cost_model)
    main, opts = main_search(problem, time_limit, seed, size)
    baselines = [(mode, {}, share) for mode, share in zip(naive_first(problem), BASELINE_SHARES)]

    limits: list[str] = []  # the pay-off cap on the search, where it binds
    # no order holds less than the partials at the start: that part of a score no search can save
    floor = cost_model.score(0, problem.eliminator().live_bytes) if payoff_calls and cost_model.weights[1] else 0.0

    def capped(score):
        cap = search_time(None if score is None else score - floor, payoff_calls)
        if cap < opts["time_limit"]:
            limits.append(f"{cap:g} s (what {payoff_calls:,} runs of the best order so far could save, "
                          "see payoff_calls)")
        return main, {**opts, "time_limit": min(opts["time_limit"], cap)}, 1.0

    # On a chain the chain strategy is linear-time when its DP does not fit, so it goes first,
    # and its order is priced even past the deadline: every order of a chain prices in the same
    # linear time, and the plan would price the fallback order anyway.
    markowitz = ("markowitz", {}, 1.0)
    if main == "chain":
        candidates = [(main, opts, 1.0, True)] + baselines + [markowitz]
    elif size < n:
        # a batch of copies: the search covers one group of each class (copies), in less time than
        # pricing another order of the whole graph takes, so it comes straight after the first baseline
        candidates = baselines[:1] + [capped] + baselines[1:] + [markowitz]
    else:  # Markowitz before the search (milliseconds; the search's own start prices it again from
        # the cache): a search that took the whole limit left it unrun, and auto returned forward's 28
        # where Markowitz finds 21; a graph of many independent groups, searched one by one in time
        # shares too small for their own heuristics (1,000 Black–Scholes options at scalar level),
        # gets Markowitz's order: 88,000 multiplications where it got reverse's 125,000
        candidates = baselines + [markowitz, capped]
    candidates += [(name, kw, 1.0) for name, kw in extra_starts(problem, cost_model)]
    log: list[str] = []
    unpriced: list = []
    stopped: list = []
    with budget.within(time_limit):
        best = best_of(problem, cost_model, candidates, log=log, unpriced=unpriced, timed_out=stopped)
        bound = _bound(problem, cost_model, best, main, min(time_limit, search_time(best and best[0], payoff_calls)))
    if best is None:
        if stopped:
            return _fallback(problem, "auto", {"tried": "; ".join(log)}, unpriced)
        raise MemoryLimitError(f"auto: no strategy found an order within the memory limit of "
                               f"{cost_model.memory_limit:,} bytes; raise memory_limit")
    _, order, name, info, optimal, _ = best
    info = {"chose": name, **info, "tried": "; ".join(log)}
    if limits:
        info["search limit"] = limits[0]
    if bound is not None:
        info["lower bound"] = bound
        optimal = optimal or bound >= best[0]  # the mults objective: the score is the mults
    return Result(order, info, optimal, name=f"auto→{name}")


def _bound(problem: Problem, cost_model: CostModel, best, main: str, time_limit: float) -> int | None:
    """A proven lower bound on the mults for anneal's problems of scalars (None elsewhere, or when
    no time is left or the objective is not mults)."""
    from .optimal import lower_bound

    if best is None or main != "anneal" or not problem.scalar or cost_model.weights != (1.0, 0.0):
        return None
    share = min(budget.left(), BOUND_SHARE * time_limit)
    if share < 0.01:
        return None
    try:
        return lower_bound(problem, cost_model, time_limit=share)[0]
    except budget.TimeUp:
        return None
