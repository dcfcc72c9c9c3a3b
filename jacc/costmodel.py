"""The cost model: what a plan minimises and the memory it may use.

``mults`` counts scalar multiplications (fused multiply-adds), as the lecture and the AD
literature do; ``flops = 2 · mults``. Memory is the bytes of live Jacobian values (8 per stored
float64 value; pure 0/1 structures such as identities store nothing), measured after each step.

>>> CostModel().score(1000, 64)
1000.0
>>> CostModel({"mults": 1.0, "memory": 0.5}).score(1000, 64)
1032.0
>>> CostModel("time").score(1000, 64)  # what jacobian minimises: 8 stored float64 values count 8
1008.0
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


class CostModelError(ValueError):
    """A bad objective or memory limit."""


class MemoryLimitError(CostModelError):
    """No elimination order fits the memory limit."""


OBJECTIVES = ("mults", "memory")
#: Named objectives and their weights on (mults, peak bytes). ``time`` counts each value held at
#: the peak (8 bytes of float64) like one multiplication: storing a value costs at least the write,
#: so a plan that holds n⁴ values to save n³ multiplications is not the faster one.
NAMED = {"mults": (1.0, 0.0), "memory": (0.0, 1.0), "time": (1.0, 1.0 / 8)}

#: Scores within this fraction of the best count as a near-tie ...
NEAR_TIE = 0.01
#: ... and a near-tied plan is preferred only when it needs at most 1/MEMORY_GAIN of the memory
#: (exact ties always go to the smaller peak).
MEMORY_GAIN = 2


def _proc_bytes(path: str, key: str) -> int | None:
    """The ``key:  N kB`` line of a Linux ``/proc`` file, in bytes (``None`` where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int | None:
    """Bytes of memory the system can give now (``MemAvailable``), or ``None`` when unknown."""
    found = _proc_bytes("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def peak_resident_bytes() -> int | None:
    """This process's peak resident memory so far, in bytes (``None`` where unknown). Linux's
    ``VmHWM`` first: ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a process started from a
    large one (a test worker, a notebook) would report its parent's peak as its own."""
    found = _proc_bytes("/proc/self/status", "VmHWM")
    if found is not None:
        return found
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


@dataclass(frozen=True)
class CostModel:
    """``objective``: ``"mults"`` (default), ``"memory"`` (peak live bytes), ``"time"`` (mults
    plus one per float64 value held at the peak: :func:`jacc.jacobian`'s default), or a weighted
    combination ``{"mults": a, "memory": b}`` scoring ``a·mults + b·peak_bytes``.
    ``memory_limit``: the most bytes of live Jacobians a plan may hold (``None``: no limit).
    ``value_bytes``: the bytes of one value where the plan runs (4 for ``dtype=np.float32``):
    pricing counts float64 values (8 bytes each), the limit and the memory available are compared
    with :meth:`held` of that.

    >>> CostModel(memory_limit=6_000_000, value_bytes=4).fits(8_000_000)  # 4 MB of float32
    True
    """

    objective: Any = "mults"
    memory_limit: int | None = None
    value_bytes: int = 8

    def __post_init__(self):
        w = self.weights  # validates
        if self.memory_limit is not None:
            if isinstance(self.memory_limit, bool) or not isinstance(self.memory_limit, (int, float)) \
                    or not math.isfinite(self.memory_limit) or self.memory_limit <= 0:
                raise CostModelError(f"memory_limit must be a positive number of bytes, not {self.memory_limit!r}")
        if self.value_bytes not in (2, 4, 8, 10, 12, 16):
            raise CostModelError(f"value_bytes must be a float type's itemsize (2, 4, 8, …), not {self.value_bytes!r}")
        del w

    @property
    def weights(self) -> tuple[float, float]:
        """(weight of mults, weight of peak bytes)."""
        o = self.objective
        if isinstance(o, str) and o in NAMED:
            return NAMED[o]
        if isinstance(o, Mapping):
            bad = set(o) - set(OBJECTIVES)
            if bad:
                raise CostModelError(f"unknown objective term(s) {sorted(bad)}; use {list(OBJECTIVES)}")
            a, b = float(o.get("mults", 0.0)), float(o.get("memory", 0.0))
            if a < 0 or b < 0 or not (a or b) or not (math.isfinite(a) and math.isfinite(b)):
                raise CostModelError(f"objective weights must be finite, non-negative and not all zero: {dict(o)}")
            return a, b
        raise CostModelError(f"unknown objective {o!r}; use 'mults', 'memory', 'time' or {{'mults': a, 'memory': b}}")

    @property
    def name(self) -> str:
        return self.objective if isinstance(self.objective, str) else \
            " + ".join(f"{v:g}·{k}" for k, v in self.objective.items())

    def score(self, mults: int, peak_bytes: int) -> float:
        a, b = self.weights
        return a * mults + b * peak_bytes

    def held(self, priced_bytes: int) -> int:
        """The bytes that ``priced_bytes`` (float64 values, as pricing counts) take in ``value_bytes``."""
        return priced_bytes if self.value_bytes == 8 else priced_bytes * self.value_bytes // 8

    def fits(self, live_bytes: int) -> bool:
        return self.memory_limit is None or self.held(live_bytes) <= self.memory_limit

    def pick(self, priced: Sequence[tuple[int, int]], available: int | None = None) -> int | None:
        """Index of the plan to take among priced ``(mults, peak bytes)`` candidates.

        1. only candidates within ``memory_limit``; of those, only the ones whose peak fits the
           ``available`` memory when any does (default: what the system has free now);
        2. the best score wins, but ties go to the smaller peak (for the memory objective, to
           fewer mults), and a near-tie (score within ``NEAR_TIE``) wins when it needs at most
           1/``MEMORY_GAIN`` of the best one's memory.
        """
        ok = [n for n, (_, peak) in enumerate(priced) if self.fits(peak)]
        if not ok:
            return None
        available = available_memory() if available is None else available
        if available is not None and any(self.held(priced[n][1]) <= available for n in ok):
            ok = [n for n in ok if self.held(priced[n][1]) <= available]
        score = {n: self.score(*priced[n]) for n in ok}
        best = min(ok, key=lambda n: (score[n], n))
        other = 1 if self.weights[1] == 0 else 0  # the term the objective ignores breaks ties
        tied = [n for n in ok if score[n] == score[best]]
        best = min(tied, key=lambda n: (priced[n][other], n))
        near = [n for n in ok if score[n] <= score[best] * (1 + NEAR_TIE)
                and priced[n][1] * MEMORY_GAIN <= priced[best][1]]
        return min(near, key=lambda n: (priced[n][1], score[n], n)) if near else best

    @classmethod
    def coerce(cls, cost_model: "CostModel | None" = None, objective: Any = None,
               memory_limit: int | None = None, default: str = "mults") -> "CostModel":
        if cost_model is not None:
            if objective is not None or memory_limit is not None:
                raise CostModelError("give either cost_model= or objective=/memory_limit=, not both")
            if not isinstance(cost_model, CostModel):
                raise CostModelError(f"cost_model must be a jacc.CostModel, not {type(cost_model).__name__}")
            return cost_model
        return cls(default if objective is None else objective, memory_limit)


def human_bytes(n: float) -> str:
    """``n`` bytes in B, KB, MB or GB (powers of 1,000).

    >>> human_bytes(10_000_000), human_bytes(512), human_bytes(3.2e12)
    ('10.0 MB', '512 B', '3,200.0 GB')
    """
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"
