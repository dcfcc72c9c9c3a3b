"""Planning budgets: one deadline that every step of planning checks.

A strategy given ``time_limit`` opens ``within(time_limit)``; everything that runs inside —
heuristic baselines, pricing, greedy loops, searches — checks the same deadline (the earliest
of all enclosing ones) and raises :class:`TimeUp` when it has passed. The strategy that opened
the budget catches it and returns the best order found so far, so a time limit bounds the whole
planning call rather than only its main loop.

>>> with within(60):
...     left() > 59
True
>>> left() == float("inf")
True
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

INF = float("inf")
_DEADLINE: ContextVar[float] = ContextVar("jacc_deadline", default=INF)


class TimeUp(Exception):
    """The planning deadline passed (caught by the strategy that set it; never reaches users)."""


def now() -> float:
    return time.perf_counter()


def deadline() -> float:
    """The current deadline (``perf_counter`` seconds; ``inf`` when unbounded)."""
    return _DEADLINE.get()


def left() -> float:
    """Seconds left before the current deadline."""
    return _DEADLINE.get() - now()


def expired() -> bool:
    return now() > _DEADLINE.get()


def check() -> None:
    """Raise :class:`TimeUp` when the current deadline has passed."""
    if now() > _DEADLINE.get():
        raise TimeUp


@contextmanager
def within(seconds: float = INF, *, until: float = INF):
    """Run the block under a deadline ``seconds`` from now (or at ``until``); an enclosing
    deadline that comes earlier still wins. Yields the effective deadline."""
    d = min(_DEADLINE.get(), now() + seconds, until)
    token = _DEADLINE.set(d)
    try:
        yield d
    finally:
        _DEADLINE.reset(token)


@contextmanager
def lifted():
    """Run the block with no deadline at all: for work that must finish, such as pricing the
    order a strategy has already chosen."""
    token = _DEADLINE.set(INF)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class Ticker:
    """Cheap periodic check for hot loops: looks at the clock every ``every`` calls."""

    __slots__ = ("every", "n", "end")

    def __init__(self, every: int = 64):
        self.every, self.n, self.end = every, 0, _DEADLINE.get()

    def __call__(self) -> None:
        self.n += 1
        if self.n >= self.every:
            self.n = 0
            if now() > self.end:
                raise TimeUp
