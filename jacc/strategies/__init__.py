"""Elimination strategies, registered by lowercase name.

Every strategy has one signature, ``fn(problem, cost_model, **options)``, and returns an
elimination order of ``problem.eliminable`` or a :class:`Result` (order plus notes and whether
it is a proven optimum). A strategy argument may also be an explicit order.

>>> sorted(STRATEGIES)[:3]
['anneal', 'auto', 'chain']
"""

from __future__ import annotations

import collections
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..costmodel import CostModel
from ..eliminate import SCALAR, Problem, forward_order, reverse_order


@dataclass
class Result:
    """What a strategy may return instead of a bare order."""

    order: list[str]
    info: dict = field(default_factory=dict)
    optimal: bool | None = None
    name: str | None = None
    #: edge and face strategies: the moves' (steps, multiplications), priced as they were made
    priced: tuple | None = field(default=None, repr=False, compare=False)


STRATEGIES: dict[str, Callable[..., Any]] = {}


class UnknownStrategyError(ValueError):
    """A strategy name that is not registered."""


def register(name: str, fn: Callable[..., Any] | None = None):
    """Register ``fn`` under ``name`` (usable as a decorator)."""

    def deco(f):
        STRATEGIES[name.lower()] = f
        return f

    return deco(fn) if fn is not None else deco


def no_options(name: str, options: dict, kind: str = "", takes: Sequence[str] = ()) -> None:
    """Reject options a strategy does not take (``options``: those left once it took its own,
    ``takes``; ``kind``: e.g. "edge" for the edge and face strategies' messages)."""
    if options:
        what = f"{kind + ' ' if kind else ''}strategy {name!r}"
        if takes:
            raise TypeError(f"{what} takes {', '.join(takes)}; got unknown {sorted(options)}")
        raise TypeError(f"{what} takes no options, got {sorted(options)}")


def positive(name: str, value: Any) -> None:
    """Check a positive number option (e.g. ``time_limit``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def positive_int(name: str, value: Any) -> None:
    """Check a positive integer option (e.g. ``max_states``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def best_of(problem: Problem, cost_model: CostModel, candidates, *, share: float = 1.0,
            log: list | None = None, unpriced: list | None = None,
            timed_out: list | None = None) -> tuple | None:
    """Run ``(name, options)`` candidates and price them; ``(score, order, name, info, optimal, peak)`` of
    the one :meth:`CostModel.pick` takes (ties broken by memory), or ``None`` when none fits.

    Runs under the current planning deadline: a candidate that is still running when it passes
    is dropped, and each candidate may use at most ``share`` of the time left when it starts
    (a candidate ``(name, options, share)`` sets its own), so one slow baseline cannot starve the
    rest. A candidate ``(name, options, share, True)`` that finds an order before any other is
    priced is priced in full even past the deadline. A callable candidate is called when its
    turn comes, with the best score priced so far (``None`` if none), and returns such a tuple.
    Option-less heuristics are run once per problem and cost model (``auto`` and the searches it
    calls share them). ``log`` collects one line per candidate; ``unpriced`` the ``(name,
    order)`` of candidates that found an order but ran out of time pricing it; ``timed_out`` the
    names of all candidates their time share stopped (so ``None`` with an empty ``timed_out``
    means none fits the memory limit)."""
    from contextlib import nullcontext

    from .. import budget
    from ..costmodel import MemoryLimitError
    from ..eliminate import price

    found: list = []
    bounded: list[int] = []  # the candidates whose peak is an upper bound (summed over groups, by_parts)
    log = [] if log is None else log
    for entry in candidates:
        if callable(entry):  # decided when reached, from the best score priced so far
            k = cost_model.pick([f[0] for f in found]) if found else None
            entry = entry(None if k is None else cost_model.score(*found[k][0]))
        name, kw, *own = entry
        order = None
        must_price = own[1:] == [True] and not found  # (see the docstring)
        free = _priced_already(name, kw, problem)  # (forward or reverse, priced while measuring)
        must_price = must_price or free
        if budget.expired() and not must_price:  # (not even a fork of the set-up)
            log.append(f"{name}: not run, the time limit had passed")
            if timed_out is not None:
                timed_out.append(name)
            continue
        parts = None
        try:
            with budget.lifted() if free else budget.within(budget.left() * (own[0] if own else share)):
                order, _, info, optimal = _run_cached(name, problem, cost_model, kw)
                parts = by_parts(problem, order)  # (a decomposed search's order: its sums serve, unpriced)
                if parts is not None:
                    steps, (mults, peak) = None, parts
                else:  # a "must price" candidate, when nothing is priced yet, is priced in full even
                    # past the deadline: the plan will price that order anyway (see ``auto``)
                    with budget.lifted() if must_price else nullcontext():
                        steps, mults, peak = price(problem, order)
        except MemoryLimitError:
            log.append(f"{name}: over the memory limit")
            continue
        except budget.TimeUp:
            log.append(f"{name}: stopped by the time limit" + (" while pricing its order" if order else ""))
            if order is not None and unpriced is not None:
                unpriced.append((name, order))
            if timed_out is not None:
                timed_out.append(name)
            continue
        log.append(f"{name}: {mults:,} mults, peak {'≤ ' if parts else ''}{peak:,} B"
                   + (" (summed over its groups)" if parts else "")
                   + (f" ({info['method']})" if "method" in info else ""))
        if parts:
            bounded.append(len(found))
        found.append(((mults, peak), order, name, info, optimal, steps))
        k = cost_model.pick([f[0] for f in found])
        for n, f in enumerate(found):  # keep only the current choice's steps (memory stays O(n))
            if n != k and f[5] is not None:
                found[n] = f[:5] + (None,)
    k = cost_model.pick([f[0] for f in found])
    if k is None:
        return None
    for n in bounded:  # a peak only bounded decides nothing: price the ties in full, where time allows
        f = found[n]
        if n != k and cost_model.score(*f[0]) == cost_model.score(*found[k][0]):
            try:
                _, mults, peak = price(problem, f[1])  # (its steps stay remembered by price)
            except budget.TimeUp:
                continue
            found[n] = ((mults, peak),) + f[1:5] + (None,)
            k = cost_model.pick([f[0] for f in found])
    # an equally good candidate that carries a proof of optimality is the more useful answer
    k = next((n for n, f in enumerate(found) if f[0] == found[k][0] and f[4]), k)
    (mults, peak), order, name, info, optimal, steps = found[k]
    if steps is not None:  # the plan built from this choice re-uses its priced steps
        problem._priced = (tuple(order), steps, mults, peak)
    return cost_model.score(mults, peak), order, name, info, optimal, peak


def _priced_already(name: str, kw: dict, problem: Problem) -> bool:
    """Whether ``name`` is forward or reverse order and that order is the one the problem priced
    last (:func:`~jacc.eliminate.pricing_seconds` prices one when it can): taking it costs nothing."""
    if kw or name not in ("forward", "reverse"):
        return False
    return problem.priced((forward_order if name == "forward" else reverse_order)(problem))


def _run_cached(name: str, problem: Problem, cost_model: CostModel, kw: dict):
    if kw or name not in HEURISTICS:
        return run_strategy(name, problem, cost_model, **kw)
    cache = problem.__dict__.setdefault("_heuristic_runs", {})
    key = (name, repr(cost_model.objective), cost_model.memory_limit, cost_model.value_bytes)
    if key not in cache:
        cache[key] = run_strategy(name, problem, cost_model)
    return cache[key]


HEURISTICS = ("forward", "reverse", "markowitz", "min-fill", "relative-markowitz")


def naive_first(problem: Problem) -> tuple[str, str]:
    """("reverse", "forward") or the other way round: the mode likely cheaper first. Forward
    costs grow with the input sizes, reverse with the output sizes; trying the likely winner
    first matters when a deadline may stop the second."""
    if "_naive" not in problem.__dict__:  # (restrictions to groups share it: same inputs and outputs)
        g = problem.graph
        n_in = sum(math.prod(g.shape(x)) for x in problem.wrt)
        n_out = sum(math.prod(g.shape(y)) for y in problem.of)
        problem._naive = ("reverse", "forward") if n_out <= n_in else ("forward", "reverse")
    return problem._naive


def naive_rest(problem: Problem, done: list[str]) -> tuple[list[str], str]:
    """The vertices not in ``done`` in the likely cheaper naive mode (:func:`naive_first`), and
    that mode: what a heuristic cut short by its deadline leaves, ordered without search."""
    mode = naive_first(problem)[0]
    chosen = set(done)
    left = [v for v in problem.eliminable if v not in chosen]  # (topological)
    return (left[::-1] if mode == "reverse" else left), mode


@register("forward")
def forward(problem: Problem, cost_model: CostModel, *, time_limit: float | None = None) -> list[str]:
    """Topological order: forward (tangent) accumulation. (``time_limit`` is accepted, as by every
    strategy; listing the order takes microseconds per vertex.)"""
    if time_limit is not None:
        positive("time_limit", time_limit)
    return forward_order(problem)


@register("reverse")
def reverse(problem: Problem, cost_model: CostModel, *, time_limit: float | None = None) -> list[str]:
    """Reverse topological order: reverse (adjoint) accumulation. (``time_limit``: as ``forward``.)"""
    if time_limit is not None:
        positive("time_limit", time_limit)
    return reverse_order(problem)


def _check_options(name: str, fn: Callable[..., Any], options: dict) -> None:
    """One message for an option ``fn`` does not take, naming those it does."""
    if not options:
        return
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return  # (it checks them itself)
    takes = sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise TypeError(f"strategy {name!r} takes no option {', '.join(map(repr, unknown))}; "
                        + (f"its options: {', '.join(takes)}" if takes else "it takes none"))


def lookup(name: str) -> Callable[..., Any]:
    fn = STRATEGIES.get(name.lower())
    if fn is None:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; valid strategies: {', '.join(sorted(STRATEGIES))} "
            "(or a list of vertex names, or a Plan)")
    return fn


def run_strategy(strategy: Any, problem: Problem, cost_model: CostModel | None = None,
                 **options) -> tuple[list[str], str, dict, bool | None]:
    """(order, strategy name, notes, proven optimal?) for a name or an explicit order."""
    cm = cost_model or CostModel()
    if isinstance(strategy, str):
        split = _by_components(strategy.lower(), problem, cm, options)
        if split is not None:
            return problem.check_order(split.order), split.name, split.info, split.optimal
        fn = lookup(strategy)
        _check_options(strategy.lower(), fn, options)
        out = fn(problem, cm, **options)
        if isinstance(out, Result):
            return problem.check_order(out.order), out.name or strategy.lower(), out.info, out.optimal
        return problem.check_order(out), strategy.lower(), {}, None
    if isinstance(strategy, (list, tuple)):
        if options:
            raise TypeError(f"an explicit order takes no options, got {sorted(options)}")
        return problem.check_order(strategy), "explicit", {}, None
    raise TypeError(f"strategy must be a name, a list of vertex names or a Plan, not {type(strategy).__name__}")


#: searches that run once per independent group of vertices (:meth:`Problem.components`). (Not
#: the greedy heuristics: group by group their orders cost the same multiplications but hold other
#: partials at once, and a heuristic's order must fit a memory limit set to its own peak.)
DECOMPOSED = ("optimal", "anneal", "window")
#: a class of copies gets the default moves of its members, at most this many times one search's
COPIES_MOVES = 8
#: a group of at most this many eliminable vertices is searched exactly whatever the search (6! = 720
#: orders at most; ``anneal`` spent 25 ms on each of the 100 three-vertex groups of ``np.stack`` over
#: 100 slice sums, where the exact search proves each optimum in about a millisecond)
SMALL_GROUP = 6
#: the groups a decomposed search summed its order's totals over are priced even past the deadline
#: when they hold at most this many vertices together (one search move prices as many)
PARTS_PAST_DEADLINE = 5_000


def _by_components(name: str, problem: Problem, cm: CostModel, options: dict) -> Result | None:
    """Run the search ``name`` on each independent group of vertices, with a share of the time
    (and of ``max_iters``) by group size, and join the orders: the optimum is the sum of the
    groups' optima, so searching them apart is exact and far smaller than searching the product
    of their state spaces. Groups that are copies of one another (a batch of the same option at
    scalar level, :func:`alike`) are searched once, with the time of them all, and the order is
    carried over to the copies. ``None`` when it does not apply (one group; a memory objective or
    limit, which couple the groups through the live bytes)."""
    if name not in DECOMPOSED or not _apart(cm):
        return None

    from .. import budget

    fn = lookup(name)
    limit = options.get("time_limit", inspect.signature(fn).parameters["time_limit"].default)
    positive("time_limit", limit)  # (as the search itself would, before the groups are searched)
    if budget.expired():  # (not even the groups: on 10⁵ vertices finding them takes a few tenths of a second)
        return _unsearched(name, problem)
    with budget.within(limit) as deadline:
        try:
            groups, subs, classes = copies(problem)
        except budget.TimeUp:
            return _unsearched(name, problem)
        if len(groups) < 2:
            return None
        total = len(problem.eliminable)
        orders: dict[int, list[str]] = {}  # group index → its order
        proven, bounds, notes, explored, roots = True, [], [], 0, []
        naive_first(problem)  # (computed once, for every group)
        skipped = 0
        for n, members in enumerate(classes):
            sub, count = subs[members[0]], len(members)
            left = deadline - budget.now()
            if left <= 0:  # the deadline passed: the rest go in the likely cheaper naive mode, unsearched
                skipped = len(classes) - n
                proven = False
                bounds.append(0 if name == "optimal" else None)  # (an unsearched group: ≥ 0 is all that is proven)
                roots.append(0)
                break
            size = len(sub.eliminable) * count
            share = dict(options, time_limit=max(left * size / total, 1e-3))
            total -= size
            if options.get("max_iters"):
                share["max_iters"] = max(1, options["max_iters"] * size // len(problem.eliminable))
            elif name == "anneal" and "max_iters" not in options and count > 1:  # the moves its copies
                # would have made, up to COPIES_MOVES times one search's (beyond that the time limit would
                # cut them, and the order would depend on the machine's speed)
                from .anneal import DEFAULT_ITERS

                share["max_iters"] = DEFAULT_ITERS * min(count, COPIES_MOVES)
            if name != "optimal" and len(sub.eliminable) <= SMALL_GROUP:  # exact, and sooner than a search
                r = lookup("optimal")(sub, cm, time_limit=share["time_limit"])
            else:
                r = fn(sub, cm, **share)
            r = r if isinstance(r, Result) else Result(r)
            _carry(subs, members, sub.check_order(r.order), orders)
            proven = proven and bool(r.optimal)
            for key, acc in (("lower bound", bounds), ("root bound", roots)):
                b = r.info.get(key)
                acc.append(b * count if isinstance(b, int) else b)
            notes += [f"{v}" for k, v in r.info.items() if k == "stopped early"]
            explored += r.info.get("sets explored", 0)
    for members in classes[len(classes) - skipped:]:  # each unsearched class: its first group's naive
        _carry(subs, members, naive_rest(subs[members[0]], [])[0], orders)  # order, carried over too
    order = [v for m in range(len(groups)) for v in orders[m]]
    _sum_parts(problem, order, [(subs[c[0]], orders[c[0]], len(c)) for c in classes])
    sizes = collections.Counter(len(g) for g in groups)
    info: dict = {"independent groups": f"{len(groups)} (sizes "
                  + ", ".join(f"{s} ×{c:,}" if c > 1 else f"{s}" for s, c in sorted(sizes.items())) + "), "
                  + (f"{len(classes)} distinct up to relabelling, each searched once and its order carried "
                     "over to its copies" if len(classes) < len(groups) else "searched one by one")}
    if all(isinstance(b, int) for b in bounds):
        info["lower bound"] = sum(bounds)
    if name == "optimal":
        from ..eliminate import price
        from .optimal import _gap

        info["sets explored"] = explored
        if "lower bound" in info and all(isinstance(b, int) for b in roots):
            info["root bound"] = sum(roots)
            known = by_parts(problem, order)
            with budget.lifted():
                cost = known[0] if known else price(problem, order)[1]
            info["gap"] = _gap(cost, info["lower bound"], info["root bound"])
    if notes:
        info["stopped early"] = f"in {len(notes)} of {len(classes)} searches: {notes[0]}"
    if skipped:
        unsearched = sum(len(c) for c in classes[len(classes) - skipped:])
        info["stopped early"] = (f"time limit reached after {len(groups) - unsearched} of {len(groups)} groups; the "
                                 f"other {unsearched} are in {naive_first(problem)[0]} order, unsearched"
                                 + (f" (and {info['stopped early']})" if notes else ""))
    # (another search proves its order optimal where every group was small enough to search exactly)
    return Result(order, info, proven if name == "optimal" else proven or None, name)


def _carry(subs: list[Problem], members: list[int], order: list[str], orders: dict[int, list[str]]) -> None:
    """``order`` of the group ``members[0]``, carried over position by position to every group of
    its class of copies (:func:`alike`) into ``orders``."""
    where = {v: i for i, v in enumerate(subs[members[0]].eliminable)}
    steps = [where[v] for v in order]
    for m in members:
        orders[m] = [subs[m].eliminable[i] for i in steps]


def _sum_parts(problem: Problem, order: list[str], parts: list[tuple[Problem, list[str], int]]) -> None:
    """Keep the totals of ``order``, joined from independent groups, as the sum over ``parts``
    (``(group, its order, how many copies)``): its multiplications exactly (each copy costs what its
    class's searched group costs) and an upper bound on its peak bytes (each group's peak, as if all
    were live at once, plus the partials in no group, :func:`_loose_bytes`). :func:`best_of` takes
    them instead of pricing the whole order, which on a 10⁵-vertex batch takes longer than the
    search. Past the planning deadline only where the groups priced have at most
    :data:`PARTS_PAST_DEADLINE` vertices (milliseconds)."""
    from contextlib import nullcontext

    from .. import budget
    from ..eliminate import totals

    small = sum(len(sub.eliminable) for sub, _, _ in parts) <= PARTS_PAST_DEADLINE
    try:
        with budget.lifted() if small else nullcontext():
            mults, peak = 0, _loose_bytes(problem)
            for sub, sub_order, count in parts:
                m, p = totals(sub, sub_order)
                mults, peak = mults + m * count, peak + p * count
    except budget.TimeUp:
        return
    problem.__dict__.setdefault("_by_parts", {})[tuple(order)] = (mults, peak)


def _loose_bytes(problem: Problem) -> int:
    """The bytes of the partials that join no eliminable vertex (input to output): in no group,
    live from start to end. (One pass over the edges, kept on the problem.)"""
    if "_loose" not in problem.__dict__:
        elim = set(problem.eliminable)
        alg, of = problem.pricing_algebra()
        problem._loose = sum(alg.nbytes(of(j)) for (u, v), j in problem.symbolic_edges().items()
                             if u not in elim and v not in elim)
    return problem._loose


def by_parts(problem: Problem, order: Sequence[str]) -> tuple[int, int] | None:
    """``(mults, peak bytes at most)`` of ``order`` where a decomposed search summed them over its
    groups (:func:`_sum_parts`); else None."""
    return problem.__dict__.get("_by_parts", {}).get(tuple(order))


def _apart(cm: CostModel) -> bool:
    """Whether independent groups may be searched apart: multiplications alone, no memory limit (live
    bytes couple the groups)."""
    return cm.weights == (1.0, 0.0) and cm.memory_limit is None


def copies(problem: Problem) -> tuple[list[list[str]], list[Problem], list[list[int]]]:
    """``(groups, their restrictions, classes of copies)`` of ``problem``: :meth:`Problem.components`,
    :meth:`Problem.restrict_all` and :func:`alike`, computed once per problem (``auto`` sizes its
    search by them, and the decomposed search it runs uses them again)."""
    if "_copies" not in problem.__dict__:  # (each step honours the planning deadline: TimeUp past it)
        from .. import budget

        groups = problem.components()
        budget.check()
        subs = problem.restrict_all(groups) if len(groups) > 1 else [problem]
        budget.check()
        problem._copies = groups, subs, alike(problem, subs) if len(groups) > 1 else [[0]]
    return problem._copies


def searched_size(problem: Problem, cost_model: CostModel) -> int:
    """How many vertices a decomposed search (:data:`DECOMPOSED`) searches on ``problem``: one
    group of each class of copies (:func:`copies`), where the cost model lets the groups be
    searched apart; else all the eliminable vertices. (1,000 Black–Scholes options at scalar level:
    44 of 44,000.)"""
    if not _apart(cost_model):
        return len(problem.eliminable)
    groups, subs, classes = copies(problem)
    return sum(len(subs[c[0]].eliminable) for c in classes)


def alike(problem: Problem, subs: Sequence[Problem]) -> list[list[int]]:
    """The groups of :meth:`Problem.components` (as ``subs``, their restrictions) sorted into
    classes of copies: the same edges between the same positions, the same kind of partial on
    each (exactly 1, exactly −1, a value), so one group's order, carried over position by
    position, costs the same in each (a batch of 1,000 Black–Scholes options at scalar level is
    one class). Positions: a group's own vertices in topological order, its end points in the
    order its edges meet them. Only graphs of scalars are compared (an array partial's cost
    depends on more than its kind); elsewhere each group is its own class. Classes come in the
    order of their first members."""
    if not problem.scalar:
        return [[n] for n in range(len(subs))]
    from .. import budget

    edges = problem.symbolic_edges()
    classes: dict = {}
    tick = budget.Ticker(16)
    for n, sub in enumerate(subs):
        tick()
        where = {v: i for i, v in enumerate(sub.eliminable)}
        ends: dict = {}

        def at(v):  # (an end point: numbered after the group's own vertices, as met)
            i = where.get(v)
            return i if i is not None else ~ends.setdefault(v, len(ends))

        key = (len(where), tuple((at(u), at(v), SCALAR.of(edges[u, v])) for u, v in sub.edges),
               tuple(at(y) for y, _ in sub.extra))
        classes.setdefault(key, []).append(n)
    return list(classes.values())


def _unsearched(name: str, problem: Problem) -> Result:
    """A search's answer when its deadline passed before it began: the likely cheaper naive order,
    which :func:`jacc.plan.choose` has priced already where it could."""
    order, mode = naive_rest(problem, [])
    info = {"stopped early": f"time limit reached before the search began; {mode} order, unsearched"}
    if name == "optimal":
        info["lower bound"] = 0
    return Result(order, info, False if name == "optimal" else None, name)


# register the rest (import order = registration order)
from . import anneal, auto, chain, greedy, optimal  # noqa: E402, F401
