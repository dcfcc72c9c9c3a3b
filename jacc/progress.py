"""One-line progress reports of long searches, redrawn in place on stderr.

Off unless asked for: a strategy's ``progress=True``, or :func:`shown` around the call. The
command line turns it on when stderr is a terminal, so ``jacc plan --strategy optimal
--time-limit 60`` says what the search has reached while it runs; a library call stays silent.

>>> import io
>>> out = io.StringIO()
>>> line = Line(True, every=0.0, stream=out)
>>> line.show("optimal  1.0 s of 10 s")
>>> line.close()
>>> out.getvalue()
'\\roptimal  1.0 s of 10 s\\n'
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, TextIO

_ON: ContextVar[bool] = ContextVar("jacc_progress", default=False)


@contextmanager
def shown(on: bool = True) -> Iterator[None]:
    """Within this block, strategies whose ``progress`` option is left at ``None`` report."""
    token = _ON.set(on)
    try:
        yield
    finally:
        _ON.reset(token)


def enabled(progress: bool | None = None) -> bool:
    """A strategy's ``progress`` option: ``None`` follows :func:`shown`."""
    return _ON.get() if progress is None else bool(progress)


class Line:
    """A status line redrawn at most every ``every`` seconds (a line that grew shorter is padded
    out); :meth:`close` ends it with a newline when anything was drawn."""

    def __init__(self, on: bool, every: float = 0.25, stream: TextIO | None = None):
        self.on, self.every, self.stream = on, every, stream
        self.last, self.width, self.drawn = float("-inf"), 0, False

    def show(self, text: str, force: bool = False) -> None:
        if not self.on:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        out = self.stream or sys.stderr
        out.write("\r" + text + " " * max(0, self.width - len(text)))
        out.flush()
        self.width, self.drawn = len(text), True

    def close(self) -> None:
        if self.drawn:
            (self.stream or sys.stderr).write("\n")
            self.drawn = False


class SearchLine:
    """An exact search's status line: ``name``, time spent of ``time_limit``, states (``unit``)
    expanded, the best cost known and the proven lower bound. ``progress`` is the strategy's
    option (see :func:`enabled`). As a context manager it gives the reporter to call with those
    figures, or None when the line is off, and ends the line on leaving."""

    def __init__(self, name: str, progress: bool | None, time_limit: float, unit: str = "states"):
        self.name, self.line, self.limit, self.unit = name, Line(enabled(progress)), time_limit, unit
        self.t0 = time.perf_counter()

    def __enter__(self) -> "SearchLine | None":
        if not self.line.on:
            return None
        self(0, float("inf"), None)  # drawn at once: the first report may be a while coming
        return self

    def __exit__(self, *exc) -> None:
        self.line.close()

    def __call__(self, explored: int, best: float, lower: float | None) -> None:
        cost = "—" if best == float("inf") else f"{best:,.0f}"
        self.line.show(f"{self.name}  {time.perf_counter() - self.t0:.1f} s of {self.limit:g} s  ·  {explored:,} "
                       f"{self.unit}  ·  best {cost}" + ("" if lower is None else f"  ·  lower bound {lower:,.0f}"))
