"""NumPy's linear algebra on scalar-level arrays (``trace(..., scalarize=True)``).

LAPACK does not run on object arrays, so ``np.linalg.solve``, ``inv``, ``det``, ``slogdet`` and
``cholesky`` are written here as the sums, products, quotients and square roots they are made
of, as CasADi's SX graphs spell them: Gaussian elimination and Cholesky–Banachiewicz, element by
element, with the scalar rules' constant folding (a structural zero costs nothing).

Gaussian elimination picks each pivot row by the largest magnitude *at the traced values*
(partial pivoting, as LAPACK). The graph then computes the same function (A⁻¹b is A⁻¹b whatever
the row order) wherever its pivots are nonzero, but the choice was read from values, so the
trace is marked value-dependent and is traced again at new inputs. 1×1 and 2×2 systems and
inverses use Cramer's rule, determinants up to 3×3 their expansion, and 3×3 and 4×4 systems and
inverses the same pivots chosen by recorded masks and ``where`` instead: they read no values.
Leading dimensions are batches, as in NumPy.

>>> import numpy as np
>>> from jacc.trace import trace
>>> g = trace(lambda A: np.linalg.det(A), np.array([[2.0, 1.0], [1.0, 3.0]]), scalarize=True)
>>> float(g.evaluate({v: x for v, x in zip(g.inputs, [2.0, 1.0, 1.0, 3.0])})[g.outputs[0]])
5.0
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np

__all__ = ["FUNCTIONS"]


def _value(x: Any) -> float:
    return x.value if hasattr(x, "value") and not isinstance(x, np.ndarray) else float(x)


def _sqrt(x: Any) -> Any:
    return math.sqrt(x) if isinstance(x, float) else np.sqrt(x)


def _log(x: Any) -> Any:
    return math.log(x) if isinstance(x, float) else np.log(x)


def _rows(a: np.ndarray) -> list[list]:
    return [[x if not isinstance(x, (int, np.number)) else float(x) for x in row] for row in a]


def _square(name: str, a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=object)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError(
            f"{name}: the last 2 dimensions of the array must be square (got shape {a.shape})")
    return a


def _note(a: np.ndarray, what: str) -> None:
    """Mark the trace value-dependent (pivots chosen from values)."""
    for x in a.reshape(-1):
        if hasattr(x, "t"):
            x.t.tape.note_value_dependence(what)
            return


def _eliminate(m: list[list], rhs: list[list]) -> int:
    """Row-reduce ``m`` to upper-triangular form in place, applying the same row operations to
    ``rhs``; returns the permutation's sign."""
    n, sign = len(m), 1
    for j in range(n):
        p = max(range(j, n), key=lambda i: abs(_value(m[i][j])))
        if _value(m[p][j]) == 0.0:
            raise np.linalg.LinAlgError("Singular matrix")
        if p != j:
            m[j], m[p], rhs[j], rhs[p], sign = m[p], m[j], rhs[p], rhs[j], -sign
        for i in range(j + 1, n):
            if isinstance(m[i][j], float) and m[i][j] == 0.0:
                continue  # nothing to cancel: a structural zero stays free
            f = m[i][j] / m[j][j]
            for c in range(j + 1, n):
                m[i][c] = m[i][c] - f * m[j][c]
            rhs[i] = [r - f * q for r, q in zip(rhs[i], rhs[j])]
            m[i][j] = 0.0
    return sign


def _tape(rows: list[list]) -> Any:
    """The tape of the first traced scalar among ``rows`` (None: all constants)."""
    return next((x.t.tape for row in rows for x in row if hasattr(x, "t")), None)


def _recorded(tape: Any, op: str, *args: Any) -> Any:
    from .scalarize import Scalar

    return Scalar(tape.record(op, [x.t if hasattr(x, "t") else float(x) for x in args]))


def _checked(pivot: Any, scale: Any, factor: float, tape: Any) -> Any:
    """``pivot``, or 0 where it is within ``factor``·ε of ``scale``: the code this makes then divides
    by zero, its non-finite result runs ``f`` (``jacc.api``: the ops of ``program.RAISE_WHEN_SINGULAR``),
    and NumPy's LAPACK answers — it raises at an exactly zero pivot of its own, which rounding puts
    anywhere in that band for these formulas, and gives its own huge values elsewhere."""
    if tape is None or not (hasattr(pivot, "t") or hasattr(scale, "t")):
        return pivot if abs(float(pivot)) > factor * _EPS * float(scale) else 0.0
    ok = _recorded(tape, "greater", abs(pivot), scale * (factor * _EPS))
    return _recorded(tape, "where", ok, pivot, 0.0)


_EPS = float(np.finfo(np.float64).eps)


def _masked_eliminate(m: list[list], rhs: list[list]) -> int:
    """:func:`_eliminate` with the pivots chosen as LAPACK chooses them (the largest magnitude, the
    first of equal ones) by recorded masks instead of values: each row below is compared with the
    pivot row so far (``greater``) and the two swapped by recorded ``where`` selections, so the
    code picks its pivots at every call and the trace holds at every point. Returns 1 (the
    permutation's sign is not tracked: ``det`` expands or eliminates by values)."""
    n, tape = len(m), _tape(m + rhs)
    scale = sum(abs(x) for row in m for x in row)  # (|LAPACK's pivot − this one| ≤ a few n·ε·max|a|)
    for j in range(n):
        for i in range(j + 1, n):
            a, b = m[i][j], m[j][j]
            if not hasattr(a, "t") and not hasattr(b, "t"):
                swap = abs(float(a)) > abs(float(b))
            else:
                swap = _recorded(tape, "greater", abs(a), abs(b))
            if swap is False:
                continue
            for rows in (m, rhs):
                for c in range(len(rows[j])):
                    x, y = rows[j][c], rows[i][c]
                    if swap is True:
                        rows[j][c], rows[i][c] = y, x
                    elif x is not y and (hasattr(x, "t") or hasattr(y, "t") or float(x) != float(y)):
                        rows[j][c] = _recorded(tape, "where", swap, y, x)
                        rows[i][c] = _recorded(tape, "where", swap, x, y)
        m[j][j] = _checked(m[j][j], scale, 32.0 * n, tape)
        if _value(m[j][j]) == 0.0:  # (read only to refuse, as LAPACK's zero pivot)
            raise np.linalg.LinAlgError("Singular matrix")
        for i in range(j + 1, n):
            if isinstance(m[i][j], float) and m[i][j] == 0.0:
                continue
            f = m[i][j] / m[j][j]
            for c in range(j + 1, n):
                m[i][c] = m[i][c] - f * m[j][c]
            rhs[i] = [r - f * q for r, q in zip(rhs[i], rhs[j])]
            m[i][j] = 0.0
    return 1


def _solve2(a: np.ndarray, b: np.ndarray, eliminate: Callable = _eliminate) -> np.ndarray:
    """One system A X = B (B of shape (n, k))."""
    m, rhs = _rows(a), _rows(b)
    eliminate(m, rhs)
    n, k = len(m), b.shape[1]
    x = [[0.0] * k for _ in range(n)]
    for i in reversed(range(n)):
        for c in range(k):
            s = rhs[i][c]
            for j in range(i + 1, n):
                s = s - m[i][j] * x[j][c]
            x[i][c] = s / m[i][i]
    out = np.empty((n, k), dtype=object)
    out[...] = x
    return out


def _batched(fn: Callable, a: np.ndarray, *rest: np.ndarray, tail: int = 2) -> np.ndarray:
    """``fn`` on every matrix of the leading (batch) dimensions of ``a`` (and of ``rest``)."""
    if a.ndim == 2:
        return fn(a, *rest)
    batch = a.shape[:-2]
    first = None
    out = None
    for idx in np.ndindex(batch):
        r = fn(a[idx], *(x[idx] for x in rest))
        if first is None:
            first = np.asarray(r, dtype=object)
            out = np.empty(batch + first.shape, dtype=object)
        out[idx] = r
    return out


#: Orders up to which ``solve`` and ``inv`` use Cramer's rule (no pivot: nothing read from values,
#: so the scalar route and traced-once calls can take them), ``det`` its expansion, and ``solve``
#: and ``inv`` pivots chosen by recorded masks (:func:`_masked_eliminate`)
CRAMER_MAX, EXPANSION_MAX, MASKED_PIVOTS_MAX = 2, 3, 4


def _one_solve(n: int) -> Callable:
    """How ``solve`` and ``inv`` solve one system of order ``n``."""
    if n <= CRAMER_MAX:
        return _cramer
    if n <= MASKED_PIVOTS_MAX:
        return lambda m, b: _solve2(m, b, _masked_eliminate)
    return _solve2


def _det_expanded(m: np.ndarray) -> Any:
    """The determinant of a 1×1, 2×2 or 3×3 matrix as its polynomial in the entries."""
    r = _rows(m)
    if len(r) == 1:
        return r[0][0]
    if len(r) == 2:
        return r[0][0] * r[1][1] - r[0][1] * r[1][0]
    return (r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]))


def _cramer(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A X = B (B of shape (n, k), n ≤ 2) by Cramer's rule: forward stable at these orders
    (N. J. Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §1.10.1). A matrix
    singular at the traced values raises as LAPACK does (its value read only to refuse)."""
    r, rhs = _rows(m), _rows(b)
    d = _det_expanded(m)
    if len(r) == 2:  # a numerically singular matrix divides by 0 (below)
        d = _checked(d, abs(r[0][0] * r[1][1]) + abs(r[0][1] * r[1][0]), 8.0, _tape(r + rhs))
    if _value(d) == 0.0:
        raise np.linalg.LinAlgError("Singular matrix")
    if len(r) == 1:
        x = [[c / d for c in rhs[0]]]
    else:
        x = [[(r[1][1] * b0 - r[0][1] * b1) / d for b0, b1 in zip(*rhs)],
             [(r[0][0] * b1 - r[1][0] * b0) / d for b0, b1 in zip(*rhs)]]
    out = np.empty(b.shape, dtype=object)
    out[...] = x
    return out


def solve(a: Any, b: Any) -> np.ndarray:
    """``np.linalg.solve``: b is a vector when it is 1-D (NumPy ≥ 2's rule), else stacked matrices."""
    a = _square("solve", a)
    b = np.asarray(b, dtype=object)
    one = _one_solve(a.shape[-1])
    if one is _solve2:
        _note(a, "pivot choice of np.linalg.solve at scalar level")
    if b.ndim == 1:
        if b.shape[0] != a.shape[-1]:
            raise ValueError(f"solve: b has {b.shape[0]} rows, the matrix {a.shape[-1]}")
        return _batched(lambda m: one(m, b[:, None])[:, 0], a)
    if b.shape[-2] != a.shape[-1]:
        raise ValueError(f"solve: b has {b.shape[-2]} rows, the matrix {a.shape[-1]}")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    return _batched(one, a, b)


def inv(a: Any) -> np.ndarray:
    """``np.linalg.inv`` as the solve of A X = I."""
    a = _square("inv", a)
    one = _one_solve(a.shape[-1])
    if one is _solve2:
        _note(a, "pivot choice of np.linalg.inv at scalar level")
    eye = np.eye(a.shape[-1]).astype(object)
    return _batched(lambda m: one(m, eye), a)


def _triangular(m: np.ndarray, what: str) -> tuple[list, int]:
    """The pivots of ``m`` and the row exchanges' sign. A matrix singular at the traced values is
    refused: det is 0 there, but its derivative (the adjugate) need not be, and elimination cannot
    give it."""
    rows = _rows(m)
    try:
        sign = _eliminate(rows, [[] for _ in rows])
    except np.linalg.LinAlgError:
        from .trace import UnsupportedOperationError

        raise UnsupportedOperationError(
            f"np.linalg.{what} at scalar level: the matrix is singular at the traced values, where elimination "
            "cannot give the derivative (the adjugate); trace without scalarize=True") from None
    return [rows[i][i] for i in range(len(rows))], sign


def det(a: Any) -> Any:
    """``np.linalg.det``: the pivots' product, signed by the row exchanges."""
    a = _square("det", a)
    if a.shape[-1] <= EXPANSION_MAX:
        return _batched(_det_expanded, a)
    _note(a, "pivot choice of np.linalg.det at scalar level")

    def one(m):
        diag, sign = _triangular(m, "det")
        out = float(sign)
        for d in diag:
            out = out * d
        return out
    return _batched(one, a)


def slogdet(a: Any):
    """``np.linalg.slogdet``: (sign, Σ log|pivot|); the sign is read from values (a constant)."""
    a = _square("slogdet", a)
    _note(a, "pivot choice of np.linalg.slogdet at scalar level")

    def one(m):
        diag, sign = _triangular(m, "slogdet")
        total = 0.0
        for d in diag:
            sign *= 1 if _value(d) > 0 else -1
            total = total + _log(abs(d))
        return float(sign), total
    if a.ndim == 2:
        return _SlogdetResult(*one(a))
    signs, logs = np.empty(a.shape[:-2]), np.empty(a.shape[:-2], dtype=object)
    for idx in np.ndindex(a.shape[:-2]):
        signs[idx], logs[idx] = one(a[idx])
    return _SlogdetResult(signs, logs)


class _SlogdetResult(NamedTuple):
    """(sign, logabsdet), with NumPy's names."""

    sign: Any
    logabsdet: Any


def cholesky(a: Any, /, *, upper: bool = False) -> np.ndarray:
    """``np.linalg.cholesky`` (Cholesky–Banachiewicz, row by row; ``upper`` as NumPy ≥ 2)."""
    a = _square("cholesky", a)

    def one(m):
        rows, n = _rows(m), m.shape[0]
        low = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1):
                s = rows[i][j]
                for k in range(j):
                    s = s - low[i][k] * low[j][k]
                if i == j:
                    if not _value(s) > 0.0:
                        raise np.linalg.LinAlgError("Matrix is not positive definite")
                    low[i][i] = _sqrt(s)
                else:
                    low[i][j] = s / low[j][j]
        out = np.empty((n, n), dtype=object)
        out[...] = low
        return out
    if upper:  # LAPACK's 'U' reads the upper triangle: the lower factor of the transpose, transposed
        return np.swapaxes(_batched(one, np.swapaxes(a, -1, -2)), -1, -2)
    return _batched(one, a)


#: NumPy functions → their scalar-level forms (looked up by ``ScalarArray.__array_function__``)
FUNCTIONS: dict = {np.linalg.solve: solve, np.linalg.inv: inv, np.linalg.det: det,
                   np.linalg.slogdet: slogdet, np.linalg.cholesky: cholesky}
