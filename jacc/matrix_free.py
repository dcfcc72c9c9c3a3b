"""Matrix-free Jacobian chain products: the cheapest mix of accumulation and tangent/adjoint modes.

The chain ``A0 @ A1 @ ... @ A{n-1}`` has ``A_i`` of shape ``(dims[i], dims[i+1])`` (as in
:func:`jacc.chain.matrix_chain_order`), but a factor need not be available as a matrix: all we
may have is its tangent model (``A_i @ v`` for ``tangent_costs[i]`` multiplications) and its
adjoint model (``w @ A_i`` for ``adjoint_costs[i]``).  This is the *matrix-free Jacobian chain
product* problem (U. Naumann, *The Art of Differentiating Computer Programs*, SIAM 2012; the
dense special case, Jacobian chain bracketing, is discussed with the NP-completeness of optimal
Jacobian accumulation in U. Naumann, "Optimal Jacobian accumulation is NP-complete",
Math. Prog. 112, 2008).

Let ``T(i, j) = sum(tangent_costs[i..j])`` and ``S(i, j) = sum(adjoint_costs[i..j])`` (prefix
sums) and ``d = dims``.  The cheapest way ``C(i, j)`` to obtain the segment ``A_i ... A_j``
*accumulated* (as a dense matrix) is the minimum of

* pure tangent mode, one sweep per column:            ``d[j+1] * T(i, j)``
* pure adjoint mode, one sweep per row:               ``d[i] * S(i, j)``
* and, for every split ``i <= k < j``,

  - dense product of both parts accumulated:  ``C(i, k) + C(k+1, j) + d[i] * d[k+1] * d[j+1]``
  - tangents of the accumulated right part pushed through the matrix-free left part:
    ``C(k+1, j) + d[j+1] * T(i, k)``
  - adjoints of the accumulated left part pulled through the matrix-free right part:
    ``C(i, k) + d[i] * S(k+1, j)``

(the part used matrix-free costs nothing beyond its propagation; the other part must itself be
accumulated).  A single factor (``i == j``) is obtained by its tangent or adjoint mode; pass
``accumulated`` when some factors are already stored as matrices.  The DP takes O(n^3) time in
exact Python ints.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from .chain import _check_dims

__all__ = ["MatrixFreeResult", "Step", "matrix_free_chain_order"]

#: Step modes and how each reads in a plan.
MODES = {
    "given": "given as a matrix",
    "tangent": "tangent mode",
    "adjoint": "adjoint mode",
    "dense": "dense product",
    "tangent-through": "tangents of the right part through the left",
    "adjoint-through": "adjoints of the left part through the right",
}


@dataclass(frozen=True)
class Step:
    """One step of a plan: segment ``lo..hi`` obtained by ``mode``; ``cost`` excludes the parts.

    ``parts`` are the accumulated sub-segments the step consumes (none, one or two).

    >>> print(Step(0, 1, "adjoint", 12))
    A0..A1  adjoint mode  12
    """

    lo: int
    hi: int
    mode: str
    cost: int
    parts: Tuple["Step", ...] = ()

    @property
    def total(self) -> int:
        """This step's cost plus its parts' totals."""
        return self.cost + sum(p.total for p in self.parts)

    def label(self) -> str:
        """``Ai`` or ``Ai..Aj``."""
        return f"A{self.lo}" if self.lo == self.hi else f"A{self.lo}..A{self.hi}"

    def lines(self, depth: int = 0) -> list[str]:
        """The parts first (they run first), then this step, indented by depth."""
        out = [line for p in self.parts for line in p.lines(depth + 1)]
        return out + [f"{'  ' * depth}{self.label()}  {MODES[self.mode]}  {self.cost:,}"]

    def compact(self, names: Optional[Sequence[str]] = None) -> str:
        """The plan on one line: ``tangent[..]``/``adjoint[..]`` for matrix-free sweeps over
        the factors inside, ``·`` for products, ``(..)`` around accumulated parts.

        >>> Step(0, 1, "adjoint-through", 3, (Step(0, 0, "tangent", 2),)).compact("XY")
        '(tangent[X])·adjoint[Y]'
        """
        def seg(lo: int, hi: int) -> str:
            return "·".join(f"A{i}" if names is None else str(names[i]) for i in range(lo, hi + 1))

        if self.mode in ("tangent", "adjoint", "given"):
            return seg(self.lo, self.hi) if self.mode == "given" else f"{self.mode}[{seg(self.lo, self.hi)}]"
        parts = [f"({p.compact(names)})" for p in self.parts]
        if self.mode == "dense":
            return "·".join(parts)
        if self.mode == "tangent-through":
            return f"tangent[{seg(self.lo, self.parts[0].lo - 1)}]·{parts[0]}"
        return f"{parts[0]}·adjoint[{seg(self.parts[0].hi + 1, self.hi)}]"

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class MatrixFreeResult:
    """The optimal matrix-free plan: ``cost`` (exact int) and ``plan`` (a :class:`Step` tree).

    >>> r = matrix_free_chain_order([1, 4, 4], [16, 16], [16, 16])
    >>> r.cost
    32
    >>> print(r)
    A0..A1  adjoint mode  32
    total 32
    """

    cost: int
    plan: Step

    def __str__(self) -> str:
        return f"{self.plan}\ntotal {self.cost:,}"


# ----------------------------------------------------------------- validation


def _check_costs(costs: Sequence[int], name: str, n: int) -> list[int]:
    """Validate one per-matrix cost list (n non-negative ints); errors name the argument.

    >>> _check_costs([1, 0], "tangent_costs", 2)
    [1, 0]
    """
    try:
        items = list(costs)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints, got {costs!r}") from None
    if len(items) != n:
        raise ValueError(f"{name} has {len(items)} entries, expected {n} (one per matrix)")
    for idx, x in enumerate(items):
        # bool is an Integral, but True as a cost is surely a mistake
        if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0:
            raise ValueError(f"{name}[{idx}] = {x!r} must be a non-negative integer")
    return [int(x) for x in items]


def _prefix(costs: list[int]) -> list[int]:
    """Prefix sums: ``p[j+1] - p[i]`` is the sum of ``costs[i..j]``.

    >>> _prefix([1, 2, 3])
    [0, 1, 3, 6]
    """
    out = [0]
    for c in costs:
        out.append(out[-1] + c)
    return out


# ------------------------------------------------------------------------ DP


def _leaf(i: int, d: list[int], t: list[int], a: list[int], given: Optional[list[int]]) -> Step:
    """Cheapest way to have matrix i accumulated (ties: tangent, adjoint, given).

    >>> _leaf(0, [2, 3], [5], [5], None)
    Step(lo=0, hi=0, mode='adjoint', cost=10, parts=())
    """
    options = [Step(i, i, "tangent", d[i + 1] * t[i]), Step(i, i, "adjoint", d[i] * a[i])]
    if given is not None:
        options.append(Step(i, i, "given", given[i]))
    return min(options, key=lambda s: s.cost)  # min keeps the first of equals


def _segment(i: int, j: int, d: list[int], pt: list[int], pa: list[int],
             best: dict, total: dict) -> Step:
    """Cheapest plan for ``i..j`` (i < j) given the optimal plans of all shorter segments.

    Pure modes are listed first so that they win ties (the simpler plan).

    >>> best = {(0, 0): Step(0, 0, "given", 0), (1, 1): Step(1, 1, "given", 0)}
    >>> _segment(0, 1, [2, 3, 2], [0, 9, 18], [0, 9, 18], best, {(0, 0): 0, (1, 1): 0}).mode
    'dense'
    """
    tan, adj = pt[j + 1] - pt[i], pa[j + 1] - pa[i]
    top = [(d[j + 1] * tan, Step(i, j, "tangent", d[j + 1] * tan)),
           (d[i] * adj, Step(i, j, "adjoint", d[i] * adj))]
    for k in range(i, j):
        left, right = best[i, k], best[k + 1, j]
        lt, rt = total[i, k], total[k + 1, j]  # a table: Step.total would walk the trees
        c = d[j + 1] * (pt[k + 1] - pt[i])
        top.append((rt + c, Step(i, j, "tangent-through", c, (right,))))
        c = d[i] * (pa[j + 1] - pa[k + 1])
        top.append((lt + c, Step(i, j, "adjoint-through", c, (left,))))
        c = d[i] * d[k + 1] * d[j + 1]
        top.append((lt + rt + c, Step(i, j, "dense", c, (left, right))))
    cost, step = min(top, key=lambda x: x[0])
    total[i, j] = cost
    return step


def matrix_free_chain_order(dims: Sequence[int], tangent_costs: Sequence[int],
                            adjoint_costs: Sequence[int],
                            accumulated: Optional[Sequence[int]] = None) -> MatrixFreeResult:
    """Cheapest way to accumulate a chain whose factors offer tangent and adjoint products.

    ``tangent_costs[i]`` / ``adjoint_costs[i]``: multiplications of one product of matrix i
    with a vector from the right / left.  ``accumulated[i]`` (optional): the cost of having
    matrix i as a matrix otherwise (0 when it is stored); without it a factor is accumulated
    by its own tangent or adjoint mode.  See the module docstring for the recurrence.

    >>> matrix_free_chain_order([1, 100, 100, 3], [100, 10**4, 300], [100, 10**4, 300]).cost
    10400
    """
    d = _check_dims(dims)
    n = len(d) - 1
    t = _check_costs(tangent_costs, "tangent_costs", n)
    a = _check_costs(adjoint_costs, "adjoint_costs", n)
    given = None if accumulated is None else _check_costs(accumulated, "accumulated", n)
    pt, pa = _prefix(t), _prefix(a)
    best: dict = {(i, i): _leaf(i, d, t, a, given) for i in range(n)}
    total = {key: s.cost for key, s in best.items()}
    for length in range(1, n):
        for i in range(n - length):
            best[i, i + length] = _segment(i, i + length, d, pt, pa, best, total)
    return MatrixFreeResult(total[0, n - 1], best[0, n - 1])
