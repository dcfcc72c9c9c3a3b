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
from typing import Iterator, Sequence

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


def chunks(items: Sequence, size: int = 4096) -> Iterator[Sequence]:
    """``items`` in slices of ``size``, the deadline checked before each (:class:`TimeUp` past
    it): a loop of microsecond steps over 10⁵ edges honours the deadline at no per-step cost.

    >>> [list(c) for c in chunks(range(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    for start in range(0, len(items), size):
        check()
        yield items[start:start + size]


#: About how often (seconds) a :class:`Ticker` looks at the clock.
LOOK_EVERY = 0.001


class Ticker:
    """Cheap periodic check for hot loops: looks at the clock about every ``LOOK_EVERY``
    seconds, and at most every ``every`` calls. The stride between looks at most doubles per look
    and drops to what the calls' measured time allows, so a loop whose steps each price a product
    looks at every step, and one of microsecond steps every ``every``."""

    __slots__ = ("every", "step", "n", "end", "last")

    def __init__(self, every: int = 64):
        self.every, self.step, self.n, self.end, self.last = every, 1, 0, _DEADLINE.get(), now()

    def __call__(self) -> None:
        self.n += 1
        if self.n >= self.step:
            t = now()
            if t > self.end:
                raise TimeUp
            per_call = (t - self.last) / self.n
            fits = int(LOOK_EVERY / per_call) if per_call > 0 else self.every
            self.step = max(1, min(2 * self.step, self.every, fits))
            self.n, self.last = 0, t
