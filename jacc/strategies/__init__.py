"""Elimination strategies, registered by lowercase name.

Every strategy has one signature, ``fn(problem, cost_model, **options)``, and returns an
elimination order of ``problem.eliminable`` or a :class:`Result` (order plus notes and whether
it is a proven optimum). A strategy argument may also be an explicit order.

>>> sorted(STRATEGIES)[:3]
['anneal', 'auto', 'chain']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..costmodel import CostModel
from ..eliminate import Problem, forward_order, reverse_order


@dataclass
class Result:
    """What a strategy may return instead of a bare order."""

    order: list[str]
    info: dict = field(default_factory=dict)
    optimal: bool | None = None
    name: str | None = None


STRATEGIES: dict[str, Callable[..., Any]] = {}


class UnknownStrategyError(ValueError):
    """A strategy name that is not registered."""


def register(name: str, fn: Callable[..., Any] | None = None):
    """Register ``fn`` under ``name`` (usable as a decorator)."""

    def deco(f):
        STRATEGIES[name.lower()] = f
        return f

    return deco(fn) if fn is not None else deco


def no_options(name: str, options: dict) -> None:
    """Reject options given to a strategy that takes none."""
    if options:
        raise TypeError(f"strategy {name!r} takes no options, got {sorted(options)}")


def positive(name: str, value: Any) -> None:
    """Check a positive number option (e.g. ``time_limit``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def best_of(problem: Problem, cost_model: CostModel, candidates) -> tuple | None:
    """Run ``(name, options)`` candidates; the best ``(score, order, name, info, optimal)`` whose
    order fits the memory limit, or ``None``."""
    from ..costmodel import MemoryLimitError
    from ..eliminate import price

    best = None
    for name, kw in candidates:
        try:
            order, _, info, optimal = run_strategy(name, problem, cost_model, **kw)
        except MemoryLimitError:
            continue
        _, mults, peak = price(problem, order)
        if not cost_model.fits(peak):
            continue
        s = cost_model.score(mults, peak)
        if best is None or s < best[0]:
            best = (s, order, name, info, optimal)
    return best


HEURISTICS = ("forward", "reverse", "markowitz", "min-fill", "relative-markowitz")


@register("forward")
def forward(problem: Problem, cost_model: CostModel, **options) -> list[str]:
    """Topological order: forward (tangent) accumulation."""
    no_options("forward", options)
    return forward_order(problem)


@register("reverse")
def reverse(problem: Problem, cost_model: CostModel, **options) -> list[str]:
    """Reverse topological order: reverse (adjoint) accumulation."""
    no_options("reverse", options)
    return reverse_order(problem)


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
        out = lookup(strategy)(problem, cm, **options)
        if isinstance(out, Result):
            return problem.check_order(out.order), out.name or strategy.lower(), out.info, out.optimal
        return problem.check_order(out), strategy.lower(), {}, None
    if isinstance(strategy, (list, tuple)):
        if options:
            raise TypeError(f"an explicit order takes no options, got {sorted(options)}")
        return problem.check_order(strategy), "explicit", {}, None
    raise TypeError(f"strategy must be a name, a list of vertex names or a Plan, not {type(strategy).__name__}")


# register the rest (import order = registration order)
from . import anneal, auto, chain, greedy, optimal  # noqa: E402, F401
