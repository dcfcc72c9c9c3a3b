"""Elimination strategies, registered by lowercase name.

Every strategy has the signature ``fn(problem, **options) -> list[str]`` (an elimination order
of ``problem.eliminable``). A strategy argument may also be an explicit order.

>>> sorted(STRATEGIES)[:2]
['forward', 'reverse']
"""

from __future__ import annotations

from typing import Any, Callable

from ..eliminate import Problem, forward_order, reverse_order

STRATEGIES: dict[str, Callable[..., list[str]]] = {}


class UnknownStrategyError(ValueError):
    """A strategy name that is not registered."""


def register(name: str, fn: Callable[..., list[str]] | None = None):
    """Register ``fn`` under ``name`` (usable as a decorator)."""

    def deco(f):
        STRATEGIES[name.lower()] = f
        return f

    return deco(fn) if fn is not None else deco


register("forward", lambda problem, **kw: forward_order(problem))
register("reverse", lambda problem, **kw: reverse_order(problem))


def resolve_order(strategy: Any, problem: Problem, **options) -> list[str]:
    """The elimination order for a strategy name or an explicit list of vertex names."""
    if isinstance(strategy, str):
        fn = STRATEGIES.get(strategy.lower())
        if fn is None:
            raise UnknownStrategyError(
                f"unknown strategy {strategy!r}; valid strategies: {', '.join(sorted(STRATEGIES))} "
                "(or a list of vertex names)")
        return problem.check_order(fn(problem, **options))
    if isinstance(strategy, (list, tuple)):
        return problem.check_order(strategy)
    raise TypeError(f"strategy must be a name or a list of vertex names, not {type(strategy).__name__}")
