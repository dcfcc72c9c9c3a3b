"""``scipy.linalg`` of traced arrays: solve, Cholesky, LU, triangular solves, inverse, determinant,
eigh, QR, RQ, SVD, orth, null_space, norm, lstsq, pinv, pinvh, the polar decomposition, the matrix
exponential, its Fréchet derivative, logarithm, square root and fractional powers, the
trigonometric and hyperbolic matrix functions (from real exponentials), Sylvester and Lyapunov
equations, banded and Toeplitz solves and the special matrices (toeplitz, hankel, circulant,
block_diag), recorded as the NumPy functions that compute the same thing.

SciPy's functions are not dispatched to ``__array_function__``; while ``f`` runs on traced
arguments they are replaced on the ``scipy.linalg`` module (see
:func:`jacc.constructors.swap_during_traces`), and a call with a traced argument goes to the
NumPy equivalent. SciPy's conventions are kept: ``cholesky`` and ``cho_factor`` give the *upper*
factor unless ``lower=True`` and read only that triangle, ``solve`` with ``assume_a='pos'`` or
``'sym'`` reads the triangle ``lower`` names, ``qr``'s default mode is ``'full'``. ``cho_factor``
returns the clean triangular factor (SciPy leaves other values in the unused triangle, which no
SciPy function reads). Refused with a message: generalized eigenproblems (``eigh(a, b)``), pivoted
QR, ``schur``, SciPy's complex ``eig``/``eigvals``, and a ``logm``, ``sqrtm`` or
``fractional_matrix_power`` that is complex."""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case, implicit
from .gathers import _value
from .linalg import _symmetric_read, triangular_solve


def _swapped(impl: Callable) -> Callable[[Callable], Callable]:
    """Calls with a traced argument go to ``impl`` with SciPy's arguments by name (defaults filled in)."""
    return replacement(lambda original, bound: impl(**bound.arguments))


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.linalg.{what} at {call_site()}: {why}")


def _triangle(a, lower: bool, unit: bool = False):
    """The triangle of ``a`` that SciPy reads (its diagonal all ones with ``unit``)."""
    t = np.tril(a, -1 if unit else 0) if lower else np.triu(a, 1 if unit else 0)
    return t + np.eye(np.shape(a)[-1]) if unit else t


_GENERAL = (None, "gen", "general")
_SYMMETRIC = ("sym", "symmetric", "her", "hermitian", "pos", "positive definite")
_POSITIVE = ("pos", "positive definite")


def _positive_definite(m):
    """``m``, which SciPy's positive-definite routines (posv, potri) refuse where it is not
    positive definite: its Cholesky factor's log-determinant is then not finite (NumPy's
    factorisation raises at the traced point; the float code's gives NaN), and a recorded mask
    makes the derivative NaN, so a later call that skips ``f`` runs it, and it raises."""
    logdet = np.sum(np.log(np.diagonal(np.linalg.cholesky(m), axis1=-2, axis2=-1)), axis=-1)
    return m * np.where(np.isfinite(logdet[..., None, None]), 1.0, np.nan)


def _solve(a, b, lower, assume_a, transposed, **_):
    if assume_a in _GENERAL:
        m = a
    elif assume_a in _SYMMETRIC:
        m = _symmetric_read(a, lower)
        m = _positive_definite(m) if assume_a in _POSITIVE else m
    elif assume_a == "diagonal":
        d = np.diagonal(a, axis1=-2, axis2=-1)
        return b / (d if np.ndim(b) == 1 else d[:, None])
    elif assume_a in ("upper triangular", "lower triangular"):
        m = _triangle(a, assume_a == "lower triangular")
    else:
        _refuse("solve", f"assume_a={assume_a!r} is not supported for traced arrays; 'gen', 'sym', 'her', "
                "'pos', 'diagonal' and the triangular ones are")
    return np.linalg.solve(np.swapaxes(m, -1, -2) if transposed else m, b)


def _cholesky(a, lower, **_):
    return np.linalg.cholesky(a, upper=not lower)


def _cho_factor(a, lower, **_):
    return np.linalg.cholesky(a, upper=not lower), lower


def _by_triangle(t, b, lower: bool):
    """T⁻¹b for a triangular ``t``: trtrs and a derivative network (see ``triangular_solve``) for
    a matrix and a vector or matrix of right-hand sides; NumPy's solve for stacks."""
    if np.ndim(t) == 2 and np.ndim(b) in (1, 2):
        return triangular_solve(t, b, lower)
    return np.linalg.solve(t, b)


def _cho_solve(c_and_lower, b, **_):
    c, lower = c_and_lower
    low = _triangle(c, True) if lower else np.swapaxes(_triangle(c, False), -1, -2)
    return _by_triangle(np.swapaxes(low, -1, -2), _by_triangle(low, b, True), False)


def _solve_triangular(a, b, trans, lower, unit_diagonal, **_):
    t = _triangle(a, lower, unit_diagonal)
    if trans in (1, 2, "T", "C"):
        t, lower = np.swapaxes(t, -1, -2), not lower
    elif trans not in (0, "N"):
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}")
    return _by_triangle(t, b, lower)


def _inv(a, assume_a=None, lower=False, **_):
    if assume_a in _GENERAL:
        return np.linalg.inv(a)
    if assume_a in _SYMMETRIC:
        m = _symmetric_read(a, lower)
        return np.linalg.inv(_positive_definite(m) if assume_a in _POSITIVE else m)
    _refuse("inv", f"assume_a={assume_a!r} is not supported for traced arrays; 'gen', 'sym' and 'pos' are")


def _subset(what: str, subset_by_index, subset_by_value, b, type, driver):
    if b is not None or type != 1:
        _refuse(what, "the generalized eigenproblem (b=) is not supported; solve it as the standard one of "
                "L⁻¹ a L⁻ᵀ with L = cholesky(b)")
    if subset_by_value is not None:
        _refuse(what, "subset_by_value= picks eigenvalues by value; use subset_by_index= or slice the result")
    if subset_by_index is None:
        return slice(None)
    lo, hi = subset_by_index
    return slice(int(lo), int(hi) + 1)


def _eigh(a, b, lower, eigvals_only, type, subset_by_index, subset_by_value, driver, **_):
    pick = _subset("eigh", subset_by_index, subset_by_value, b, type, driver)
    if eigvals_only:
        return np.linalg.eigvalsh(a, UPLO="L" if lower else "U")[..., pick]
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return w[..., pick], v[..., pick]


def _eigvalsh(a, b, lower, type, subset_by_index, subset_by_value, driver, **_):
    pick = _subset("eigvalsh", subset_by_index, subset_by_value, b, type, driver)
    return np.linalg.eigvalsh(a, UPLO="L" if lower else "U")[..., pick]


def _qr(a, mode, pivoting, **_):
    if pivoting:
        _refuse("qr", "pivoting=True chooses columns by their values; use pivoting=False")
    if mode == "raw":
        _refuse("qr", "mode='raw' returns LAPACK's Householder vectors; use 'economic', 'full' or 'r'")
    if mode == "economic":
        return np.linalg.qr(a, mode="reduced")
    if mode == "r":  # SciPy's R is the complete one, M × N (zero rows below a tall matrix's), in a 1-tuple
        r = np.linalg.qr(a, mode="r")
        m, n = np.shape(a)[-2:]
        return (np.concatenate([r, np.zeros(np.shape(a)[:-2] + (m - n, n))], axis=-2) if m > n else r,)
    m, n = np.shape(a)[-2:]
    if m > n:
        _refuse("qr", f"mode='full' (SciPy's default) of a {m}×{n} matrix: the extra columns of Q are not unique, "
                "so they have no derivative; use mode='economic', or mode='r' for R alone")
    return np.linalg.qr(a, mode="complete")


def _svd(a, full_matrices, compute_uv, **_):
    return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


def _lstsq(a, b, cond, **_):
    x, residues, rank, sv = np.linalg.lstsq(a, b, rcond=cond)
    if np.ndim(b) == 1 and np.shape(residues) == (1,):  # SciPy's residue of a vector b is a number, NumPy's (1,)
        residues = np.reshape(residues, ())
    return x, residues, rank, sv


def _pinv(a, atol, rtol, return_rank, **_):
    if atol not in (None, 0, 0.0):
        _refuse("pinv", "atol= is not supported for traced arrays; use rtol=")
    p = np.linalg.pinv(a, rcond=np.finfo(float).eps * max(np.shape(a)[-2:]) if rtol is None else rtol)
    return (p, min(np.shape(a)[-2:])) if return_rank else p


# Scaling and squaring with Padé approximants, after Higham (2005), "The scaling and squaring method
# for the matrix exponential revisited", SIAM J. Matrix Anal. Appl. 26(4): the largest 1-norm each
# degree m serves to double precision (his Table 2.3); above θ13 the matrix is halved s times and
# the approximant squared s times. Recorded op by op, so the derivative is that of the
# approximant, which Al-Mohy and Higham (2009) show is as accurate as the exponential itself.
_THETA = {3: 1.495585217958292e-2, 5: 2.539398330063230e-1, 7: 9.504178996162932e-1,
          9: 2.097847961257068e0, 13: 5.371920351148152e0}


def _pade(m: int) -> list[float]:
    """The degree-m Padé numerator's coefficients b_j = (2m − j)! / (j! (m − j)!)."""
    return [float(math.factorial(2 * m - j) // (math.factorial(j) * math.factorial(m - j))) for j in range(m + 1)]


def _expm(A, **_):
    a = np.asarray(A) if not _holds_tracer(A) else A
    n = np.shape(a)[-1]
    if np.ndim(a) < 2 or np.shape(a)[-2] != n:
        raise ValueError(f"expected a square matrix (or a stack of them), got shape {np.shape(a)} (scipy.linalg.expm "
                         f"at {call_site()})")
    norm = float(np.abs(_value(a, "scipy.linalg.expm's choice of degree and scaling")).sum(axis=-2).max(initial=0.0))
    m = next((d for d in (3, 5, 7, 9) if norm <= _THETA[d]), 13)
    s = max(0, math.ceil(math.log2(norm / _THETA[13]))) if m == 13 else 0
    if s:
        a = a * 2.0 ** -s
    b = _pade(m)
    eye = np.eye(n)
    powers = [eye, a @ a]  # I, A², A⁴, A⁶ as needed
    top = 6 if m == 13 else m - 1
    while 2 * (len(powers) - 1) < top:
        powers.append(powers[-1] @ powers[1])
    if m == 13:
        A2, A4, A6 = powers[1], powers[2], powers[3]
        u = a @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2) + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)
        v = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 + b[0] * eye
    else:
        u = a @ sum(b[2 * k + 1] * p for k, p in enumerate(powers))
        v = sum(b[2 * k] * p for k, p in enumerate(powers))
    r = np.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r


# Sylvester and Lyapunov equations as one linear system of order n·m in the unknown's entries, in
# C order: vec(A·X) = (A ⊗ I)·vec(X), vec(X·B) = (I ⊗ Bᵀ)·vec(X). That costs O((nm)³) where SciPy's
# Bartels–Stewart costs O(n³ + m³), so it suits the small systems of control and filtering code.
def _kron_solve(M, q, shape):
    return np.reshape(np.linalg.solve(M, np.reshape(q, (-1,))), shape)


def _square(a, what: str, name: str) -> tuple:
    shape = np.shape(a)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {shape} (scipy.linalg.{what} at {call_site()})")
    return shape


def _solve_sylvester(a, b, q, **_):
    (n, _), (m, _) = _square(a, "solve_sylvester", "a"), _square(b, "solve_sylvester", "b")
    if np.shape(q) != (n, m):
        raise ValueError(f"q must have shape {(n, m)}, got {np.shape(q)} (scipy.linalg.solve_sylvester at "
                         f"{call_site()})")
    return _kron_solve(np.kron(a, np.eye(m)) + np.kron(np.eye(n), np.transpose(b)), q, (n, m))


def _solve_continuous_lyapunov(a, q, **_):
    return _solve_sylvester(a, np.transpose(a), q)  # A·X + X·Aᵀ = Q


def _solve_discrete_lyapunov(a, q, method=None, **_):
    n = _square(a, "solve_discrete_lyapunov", "a")[0]  # A·X·Aᵀ − X + Q = 0
    return _kron_solve(np.eye(n * n) - np.kron(a, a), q, (n, n))


def _sqrtm(A, **_):
    """The principal square root: SciPy's at the traced point, X₀, then one Newton step
    X₀ + S(X₀ X + X X₀ = A − X₀²) recorded with X₀ constant, so the derivative is the Sylvester
    solve X dX + dX X = dA that differentiating X² = A gives. X₀ is read from the traced values:
    the trace is value-dependent."""
    import scipy.linalg

    a = A if _holds_tracer(A) else np.asarray(A)
    _square(a, "sqrtm", "A")
    x0 = scipy.linalg.sqrtm(_value(a, "scipy.linalg.sqrtm's root at the traced point"))
    x0 = _real_result(x0, "sqrtm", "the matrix has a negative real eigenvalue")
    return x0 + _solve_sylvester(x0, x0, a - x0 @ x0)


def _matrix(A, what: str):
    a = A if _holds_tracer(A) else np.asarray(A, dtype=float)
    _square(a, what, "A")
    return a


def _blocks(a, b, c, d):
    return np.concatenate([np.concatenate([a, b], axis=1), np.concatenate([c, d], axis=1)], axis=0)


def _cos_sin(a):
    """cos A and sin A from one real exponential: exp([[0, A], [−A, 0]]) = [[cos A, sin A], [−sin A, cos A]]
    (the block matrix is J ⊗ A with J² = −I)."""
    n = np.shape(a)[0]
    zero = np.zeros((n, n))
    e = _expm(_blocks(zero, a, -a, zero))
    return e[:n, :n], e[:n, n:]


def _cosh_sinh(a):
    plus, minus = _expm(a), _expm(-a)
    return 0.5 * (plus + minus), 0.5 * (plus - minus)


def _trigonometric(name: str, pair: Callable, part: str) -> Callable:
    """SciPy's ``name`` from ``pair`` (cos and sin, or cosh and sinh): its first, its second, or
    the tangent, first⁻¹·second (SciPy's order)."""
    def fn(A, **_):
        c, s = pair(_matrix(A, name))
        return c if part == "first" else s if part == "second" else np.linalg.solve(c, s)
    return fn


_TRIGONOMETRIC = {f"{stem}{suffix}m": _trigonometric(f"{stem}{suffix}m", pair, part)
                  for suffix, pair in (("", _cos_sin), ("h", _cosh_sinh))
                  for stem, part in (("cos", "first"), ("sin", "second"), ("tan", "tangent"))}


def _expm_frechet(A, E, method=None, compute_expm=True, **_):
    """exp(A) and its Fréchet derivative L(A, E) from exp([[A, E], [0, A]]) = [[exp A, L], [0, exp A]]
    (Higham, *Functions of Matrices*, 2008, Thm 3.6)."""
    a, e = _matrix(A, "expm_frechet"), E if _holds_tracer(E) else np.asarray(E, dtype=float)
    if np.shape(e) != np.shape(a):
        raise ValueError(f"E must have A's shape {np.shape(a)}, got {np.shape(e)} (scipy.linalg.expm_frechet at "
                         f"{call_site()})")
    n = np.shape(a)[0]
    big = _expm(_blocks(a, e, np.zeros((n, n)), a))
    return (big[:n, :n], big[:n, n:]) if compute_expm else big[:n, n:]


def _real_result(x0, what: str, why: str):
    """SciPy's result as a real array, refused where it is complex."""
    if np.iscomplexobj(x0):
        if np.abs(x0.imag).max(initial=0.0) > 1e-12 * max(np.abs(x0).max(initial=0.0), 1.0):
            _refuse(what, f"{why}, so the result is complex, which a trace does not hold")
        x0 = x0.real
    return np.asarray(x0, dtype=float)


def _log(a, what: str):
    """SciPy's logarithm at the traced point, L₀, as the root of exp(L) = A (jacc.numpy_api.implicit):
    the derivative solves dA = L_exp(L₀, dL), the exponential's Fréchet derivative inverted."""
    import scipy.linalg

    a0 = _value(a, f"scipy.linalg.{what}'s logarithm at the traced point")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        l0 = scipy.linalg.logm(a0)
    l0 = _real_result(l0, what, "the matrix has a negative real eigenvalue")
    n = l0.shape[0]
    return implicit.root(lambda z: _expm(np.reshape(z, (n, n))) - a, l0, f"scipy.linalg.{what}",
                         "eigenvalues whose logarithms differ by a multiple of 2πi?")


def _logm(A, disp=True, **_):
    a = _matrix(A, "logm")
    out = _log(a, "logm")
    if disp:
        return out
    import scipy.linalg

    return out, scipy.linalg.logm(_value(a, "scipy.linalg.logm's error estimate"), disp=False)[1]


def _fractional_matrix_power(A, t, **_):
    """A^t: SciPy's value, with the derivative of exp(t · log A) (of A^t by products for an integer t)."""
    import scipy.linalg

    if _holds_tracer(t):
        _refuse("fractional_matrix_power", "the power t must be a constant (only A may be traced)")
    a = _matrix(A, "fractional_matrix_power")
    t = float(t)
    if t == int(t):
        return np.linalg.matrix_power(a, int(t))
    x0 = scipy.linalg.fractional_matrix_power(_value(a, "scipy.linalg.fractional_matrix_power"), t)
    x0 = _real_result(x0, "fractional_matrix_power", "the matrix has a negative real eigenvalue")
    return implicit.anchored(x0, _expm(t * _log(a, "fractional_matrix_power")))


def _permutation(piv) -> np.ndarray:
    """LAPACK's row interchanges (row i swapped with row piv[i], in turn) as the row order p with
    A[p] = L·U."""
    p = np.arange(len(piv))
    for i, j in enumerate(piv):
        p[i], p[j] = p[j], p[i]
    return p


def _lu_packed(a, what: str):
    """The packed factor ``L − I + U`` of ``A[p] = L·U`` and the pivots: SciPy's factors at the
    traced point, LU₀, then one Newton step recorded with them constant,
    LU₀ + L₀·stril(F) + triu(F)·U₀ with F = L₀⁻¹ (A − A₀)[p] U₀⁻¹. Its value is LU₀ (the step is
    exactly zero there) and its derivative the LU factors' (differentiating A[p] = L·U), whose
    pivots, read from the traced values, make the trace value-dependent."""
    import scipy.linalg

    a0 = _value(a, f"scipy.linalg.{what}'s pivoting at the traced point")
    if a0.ndim != 2 or a0.shape[0] != a0.shape[1]:
        _refuse(what, f"only square matrices are recorded, got shape {a0.shape}")
    with warnings.catch_warnings():  # a singular matrix is refused below, in jacc's words
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        lu0, piv = scipy.linalg.lu_factor(a0)
    p = _permutation(piv)
    n = len(p)
    l0, u0 = np.tril(lu0, -1) + np.eye(n), np.triu(lu0)
    if not np.all(np.diagonal(u0)):
        _refuse(what, "the matrix is singular at the traced point, so its factors have no derivative")
    f = np.linalg.inv(l0) @ (a[p] - a0[p]) @ np.linalg.inv(u0)
    return lu0 + l0 @ np.tril(f, -1) + np.triu(f) @ u0, piv, p


def _lu_factor(a, **_):
    a = a if _holds_tracer(a) else np.asarray(a, dtype=float)
    lu, piv, _ = _lu_packed(a, "lu_factor")
    lu.tape.factored[lu.name] = (a, piv)
    return lu, piv


def _lu_solve(lu_and_piv, b, trans, **_):
    lu, piv = lu_and_piv
    if _holds_tracer(piv):
        _refuse("lu_solve", "the pivots must be the integers lu_factor returned, not traced values")
    if trans not in (0, 1, 2):  # (SciPy's getrs takes these only)
        raise ValueError(f"trans must be 0, 1 or 2, not {trans!r} (scipy.linalg.lu_solve at {call_site()})")
    t = trans != 0
    source = lu.tape.factored.get(lu.name) if _holds_tracer(lu) else None
    if source is not None and np.array_equal(source[1], piv):  # lu_factor's own: one solve with its matrix
        a = source[0]
        return np.linalg.solve(np.swapaxes(a, -1, -2) if t else a, b)
    lu = lu if _holds_tracer(lu) else np.asarray(lu, dtype=float)
    p = _permutation(np.asarray(piv))
    low, up = _triangle(lu, True, unit=True), _triangle(lu, False)
    if not t:  # A = Pᵀ·L·U: x = U⁻¹ L⁻¹ b[p]
        return _by_triangle(up, _by_triangle(low, b[p], True), False)
    w = _by_triangle(np.swapaxes(low, -1, -2), _by_triangle(np.swapaxes(up, -1, -2), b, True), False)
    return w[np.argsort(p)]  # Aᵀ = Uᵀ·Lᵀ·P: x[p] = L⁻ᵀ U⁻ᵀ b


def _lu(a, permute_l, p_indices, **_):
    a = a if _holds_tracer(a) else np.asarray(a, dtype=float)
    lu, _, p = _lu_packed(a, "lu")
    low, up = _triangle(lu, True, unit=True), _triangle(lu, False)
    back = np.argsort(p).astype(np.int32)  # A = L[back]·U, SciPy's row indices
    if permute_l:
        return low[back], up
    if p_indices:
        return back, low, up
    return np.eye(len(p))[back], low, up


def _polar(a, side, **_):
    """A = U·P (side 'right') or P·U ('left') from the SVD A = W·Σ·Vᵀ: U = W·Vᵀ, P = V·Σ·Vᵀ or
    W·Σ·Wᵀ, as SciPy computes them; differentiable where the singular values are distinct."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', not {side!r} (scipy.linalg.polar at {call_site()})")
    if np.ndim(a) != 2:
        raise ValueError(f"expected a matrix, got shape {np.shape(a)} (scipy.linalg.polar at {call_site()})")
    w, s, vh = np.linalg.svd(a, full_matrices=False)
    if side == "right":
        return w @ vh, (np.transpose(vh) * s) @ vh
    return w @ vh, (w * s) @ np.transpose(w)


_BATCHES: dict[str, bool] = {}


def _batches(name: str) -> bool:
    """Whether this SciPy's ``scipy.linalg.<name>`` takes N-D input as a batch of 1-D ones (SciPy
    1.17's toeplitz and circulant) rather than flattening it (earlier versions; hankel still)."""
    if name not in _BATCHES:
        import scipy.linalg as sl

        fn = getattr(sl, name)
        fn = getattr(fn, "__wrapped__", fn)  # (SciPy's own, also while a trace swapped it)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _BATCHES[name] = np.ndim(fn(np.ones((2, 3)))) == 3
    return _BATCHES[name]


def _toeplitz(c, r, **_):
    if (np.ndim(c) > 1 or np.ndim(r) > 1) and _batches("toeplitz"):
        c = np.atleast_1d(c)
        r = c.conjugate() if r is None else np.atleast_1d(r)
        batch = np.broadcast_shapes(np.shape(c)[:-1], np.shape(r)[:-1])
        c, r = np.broadcast_to(c, batch + np.shape(c)[-1:]), np.broadcast_to(r, batch + np.shape(r)[-1:])
    else:
        c = np.ravel(c)
        r = c.conjugate() if r is None else np.ravel(r)
    n, m = np.shape(c)[-1], np.shape(r)[-1]
    values = np.concatenate([r[..., :0:-1], c], axis=-1)  # r reversed (its first entry left out), then c
    rows, cols = np.ogrid[:n, :m]
    return values[..., m - 1 + rows - cols]


def _hankel(c, r, **_):
    c = np.ravel(c)
    r = np.zeros_like(c) if r is None else np.ravel(r)
    values = np.concatenate([c, r[1:]])
    rows, cols = np.ogrid[:np.shape(c)[0], :np.shape(r)[0]]
    return values[rows + cols]


def _circulant(c, **_):
    c = np.atleast_1d(c) if np.ndim(c) > 1 and _batches("circulant") else np.ravel(c)
    n = np.shape(c)[-1]
    rows, cols = np.ogrid[:n, :n]
    return c[..., (rows - cols) % n]


def _block_diag(arrs, **_):
    blocks = [np.atleast_2d(a if _holds_tracer(a) else np.asarray(a, dtype=float)) for a in arrs]
    if not blocks:
        return np.empty((1, 0))
    width = sum(np.shape(b)[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        h, w = np.shape(b)
        rows.append(np.concatenate([np.zeros((h, left)), b, np.zeros((h, width - left - w))], axis=1))
        left += w
    return np.concatenate(rows, axis=0)


def _from_bands(ab, rows: np.ndarray, cols: np.ndarray, n: int):
    """The n × n matrix whose entry (i, j) is ``ab[rows[i, j], cols[i, j]]`` where ``rows`` is in
    range, 0 elsewhere: one gather of ``ab`` with a zero appended (an index map, no products)."""
    k = np.shape(ab)[0]
    inside = (rows >= 0) & (rows < k)
    flat = np.where(inside, np.clip(rows, 0, k - 1) * n + cols, k * n)
    return np.concatenate([np.reshape(ab, (-1,)), np.zeros(1)])[flat]


def _banded(ab, what: str):
    ab = ab if _holds_tracer(ab) else np.asarray(ab, dtype=float)
    if np.ndim(ab) != 2:
        raise ValueError(f"ab must be a 2-d array of bands, got shape {np.shape(ab)} (scipy.linalg.{what} at "
                         f"{call_site()})")
    return ab


def _with_scipys_value(original: Callable, bound, traced, refuses: str | None = None):
    """``traced`` with the value of SciPy's own call on the arguments' values. ``refuses``: what
    SciPy refuses that the traced form computes (a matrix that is not positive definite): the
    trace depends on values, so every call runs ``f`` and SciPy's call, which raises there."""
    if refuses is not None and isinstance(traced, Tracer):
        traced.tape.note_value_dependence(refuses)

    def plain(v):
        return tuple(map(plain, v)) if isinstance(v, tuple) else (v.value if _holds_tracer(v) else v)
    # (positionally, in order: SciPy's array-API wrapper takes its arrays so)
    return implicit.anchored(original(*[plain(v) for v in bound.arguments.values()]), traced)


def _solve_banded(original, bound):
    """The band matrix a[i, j] = ab[u + i − j, j] gathered into a dense one and solved (O(n³):
    systems up to some thousands), with SciPy's value."""
    p = bound.arguments
    (l, u), ab = p["l_and_u"], _banded(p["ab"], "solve_banded")
    if _holds_tracer(l) or _holds_tracer(u):
        _refuse("solve_banded", "the band widths (l, u) must be constant integers")
    if np.shape(ab)[0] != l + u + 1:
        raise ValueError(f"invalid values for the number of lower and upper diagonals: l+u+1 ({l + u + 1}) does not "
                         f"equal ab.shape[0] ({np.shape(ab)[0]}) (scipy.linalg.solve_banded at {call_site()})")
    n = np.shape(ab)[1]
    i, j = np.indices((n, n))
    return _with_scipys_value(original, bound, np.linalg.solve(_from_bands(ab, u + i - j, j, n), p["b"]))


def _solveh_banded(original, bound):
    """The symmetric band matrix (upper form a[i, j] = ab[u + i − j, j] for i ≤ j, lower form
    a[i, j] = ab[i − j, j] for i ≥ j, mirrored) gathered and solved, with SciPy's value."""
    p = bound.arguments
    ab = _banded(p["ab"], "solveh_banded")
    k, n = np.shape(ab)
    i, j = np.indices((n, n))
    lo, hi = np.minimum(i, j), np.maximum(i, j)  # read the stored triangle for both halves
    rows, cols = (hi - lo, lo) if p["lower"] else (k - 1 + lo - hi, hi)
    return _with_scipys_value(original, bound, np.linalg.solve(_from_bands(ab, rows, cols, n), p["b"]),
                              "scipy.linalg.solveh_banded (it refuses a matrix that is not positive definite)")


def _solve_toeplitz(original, bound):
    """The Toeplitz matrix of (c, r) built (a gather) and solved densely, with SciPy's value
    (SciPy's Levinson recursion costs O(n²), this O(n³))."""
    p = bound.arguments
    c_or_cr, b = p["c_or_cr"], p["b"]
    c, r = c_or_cr if isinstance(c_or_cr, tuple) else (c_or_cr, None)
    return _with_scipys_value(original, bound, np.linalg.solve(_toeplitz(c, r), b),
                              "scipy.linalg.solve_toeplitz (Levinson's recursion refuses a singular leading minor)")


def _matmul_toeplitz(original, bound):
    p = bound.arguments
    c_or_cr = p["c_or_cr"]
    c, r = c_or_cr if isinstance(c_or_cr, tuple) else (c_or_cr, None)
    return _with_scipys_value(original, bound, _toeplitz(c, r) @ p["x"])


def _matrix_shape(a, what: str) -> tuple[int, int]:
    """``a``'s shape, which must be a matrix's (SciPy's error otherwise, naming the call)."""
    if np.ndim(a) != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {np.shape(a)} (scipy.linalg.{what} at {call_site()})")
    return np.shape(a)


def _rq(original, bound):
    """A = R·Q from the QR decomposition of B = (P·A)ᵀ, P the row reversal: B = Q₁R₁ gives
    A = (P·R₁ᵀ·P)(P·Q₁ᵀ). LAPACK's own RQ picks other signs for some of R's diagonal, so those
    are taken from SciPy's result at the traced point (constants while the diagonal is nonzero),
    and so is the value; the derivative is QR's."""
    p = bound.arguments
    a, mode = p["a"], p["mode"]
    m, n = _matrix_shape(a, "rq")
    if mode not in ("full", "r", "economic"):
        raise ValueError(f"mode argument must be one of ['full', 'r', 'economic'], not {mode!r} "
                         f"(scipy.linalg.rq at {call_site()})")
    if mode == "full" and m < n:
        _refuse("rq", f"mode='full' (SciPy's default) of a {m}×{n} matrix: the extra rows of Q are not unique, so "
                "they have no derivative; use mode='economic', or mode='r' for R alone")
    q1, r1 = np.linalg.qr(a[::-1].T, mode="reduced")
    r, q = r1.T[::-1, ::-1], q1.T[::-1]  # m×k and k×n, k = min(m, n)
    k = min(m, n)
    want = original(_value(a, "scipy.linalg.rq"), mode=mode)
    theirs = want if mode == "r" else want[0]  # R: its triangle in the last k rows and columns
    rows, cols = np.arange(m - k, m), np.arange(k)
    d = np.sign(theirs[rows, np.shape(theirs)[1] - k + cols]) * np.sign(r.value[rows, cols])
    r, q = r * d, d[:, None] * q
    if mode == "r":
        return implicit.anchored(want, np.concatenate([np.zeros((m, n - m)), r], axis=1) if m < n else r)
    return implicit.anchored(want[0], r), implicit.anchored(want[1], q)


def _orth(original, bound):
    """The left singular vectors of a full-rank matrix from the traced SVD, each column's sign and
    the value SciPy's. The basis is unique, so differentiable, while the singular values are
    distinct; a rank-deficient matrix is refused (its result changes shape nearby)."""
    p = bound.arguments
    a = p["A"]
    _matrix_shape(a, "orth")
    value = _value(a, "scipy.linalg.orth")
    theirs = original(value, p["rcond"])
    num = np.shape(theirs)[1]
    u0, s, _ = np.linalg.svd(value, full_matrices=False)
    if num < min(np.shape(a)):
        _refuse("orth", f"the matrix has rank {num} < {min(np.shape(a))} (singular values {s}): almost every "
                "nearby matrix has full rank, so orth's result changes shape and has no derivative")
    if num > 1 and np.min(np.diff(s[:num]) / -s[0]) < 1e-8:
        _refuse("orth", f"the matrix has repeated singular values {s[:num]}: its orthonormal basis is not unique, so "
                "it has no derivative")
    u = np.linalg.svd(a, full_matrices=False)[0][:, :num]
    signs = np.sign(np.sum(theirs * u0[:, :num], axis=0))
    return implicit.anchored(theirs, u * signs)


def _care_residual(x, a, b, q, r, e, s):
    """AᵀXE + EᵀXA − (EᵀXB + S)·R⁻¹·(BᵀXE + Sᵀ) + Q (E = I, S = 0 where not given): SciPy's equation,
    written as it is, X never transposed (so its derivative in a general X is the Lyapunov operator)."""
    at, bt, et = np.transpose(a), np.transpose(b), None if e is None else np.transpose(e)
    xe, ex = (x, x) if e is None else (x @ e, et @ x)
    st = 0.0 if s is None else np.transpose(s)
    return at @ xe + ex @ a - (ex @ b + (0.0 if s is None else s)) @ np.linalg.solve(r, bt @ xe + st) + q


def _dare_residual(x, a, b, q, r, e, s):
    """AᵀXA − EᵀXE − (AᵀXB + S)·(R + BᵀXB)⁻¹·(BᵀXA + Sᵀ) + Q (E = I, S = 0 where not given)."""
    at, bt = np.transpose(a), np.transpose(b)
    held = x if e is None else np.transpose(e) @ x @ e
    cross, st = at @ x @ b + (0.0 if s is None else s), 0.0 if s is None else np.transpose(s)
    return at @ x @ a - held - cross @ np.linalg.solve(r + bt @ x @ b, bt @ x @ a + st) + q


def _riccati(name: str, residual: Callable) -> Callable:
    """SciPy's solution X of an algebraic Riccati equation at the traced point, differentiated by the
    implicit function theorem on the equation's residual (:func:`implicit.root`: one Newton step
    recorded with X constant, so the value stays SciPy's and the derivative solves the equation's
    linearisation, a Lyapunov equation of the closed loop). The trace is value-dependent."""
    def run(original, bound):
        p = dict(bound.arguments)
        names = ("a", "b", "q", "r", "e", "s")
        given = {k: None if p[k] is None else np.asarray(p[k], dtype=float) for k in names}  # (traced: a tracer)
        x0 = original(**{k: v if v is None else _value(v, f"scipy.linalg.{name}'s solution at the traced point")
                         for k, v in given.items()}, balanced=p["balanced"])
        n = np.shape(x0)[0]
        return np.reshape(implicit.root(lambda z: np.reshape(residual(np.reshape(z, (n, n)), *given.values()), n * n),
                                        np.reshape(x0, n * n), f"scipy.linalg.{name}",
                                        "no stabilising solution, or one that is not unique?"), (n, n))
    return run


def _tridiagonal_eigen(original, bound):
    """``eigh_tridiagonal`` / ``eigvalsh_tridiagonal`` (every eigenvalue): the symmetric tridiagonal
    matrix built from d and e and differentiated as ``np.linalg.eigh`` of it (distinct eigenvalues),
    with SciPy's values, each eigenvector's sign SciPy's."""
    p = dict(bound.arguments)
    name = "eigvalsh_tridiagonal" if "eigvals_only" not in p else "eigh_tridiagonal"
    if p.get("select", "a") != "a":
        _refuse(name, "select='v' or 'i' picks eigenvalues by their values, which is not recorded; call it with "
                "select='a' (every eigenvalue) and index the result")
    d, e = (v if _holds_tracer(v) else np.asarray(v, dtype=float) for v in (p["d"], p["e"]))
    if np.ndim(d) != 1 or np.ndim(e) != 1 or np.shape(e)[0] != np.shape(d)[0] - 1:
        raise ValueError(f"d must be a 1-d array of n values and e one of n - 1, got shapes {np.shape(d)} and "
                         f"{np.shape(e)} (scipy.linalg.{name} at {call_site()})")
    p["d"], p["e"] = (v.value if isinstance(v, Tracer) else v for v in (d, e))
    theirs = original(**p)
    t = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    if name == "eigvalsh_tridiagonal" or p["eigvals_only"]:
        return implicit.anchored(theirs, np.linalg.eigvalsh(t))
    w, v = np.linalg.eigh(t)
    signs = np.sign(np.sum(theirs[1] * v.value, axis=0))
    return implicit.anchored(theirs[0], w), implicit.anchored(theirs[1], v * signs)


def _null_space(original, bound):
    """SciPy's null space of a full-rank matrix, anchored to V − A⁺(A·V): its value SciPy's, its
    derivative −A⁺·dA·V, exact where the null space is one vector (unique up to SciPy's sign). A
    null space of two or more vectors has no unique basis, so no derivative: refused, naming the
    projector onto it, which has one."""
    p = bound.arguments
    a = p["A"]
    m, n = _matrix_shape(a, "null_space")
    theirs = original(_value(a, "scipy.linalg.null_space"), p["rcond"])
    if theirs.shape[1] != n - min(m, n):
        _refuse("null_space", f"the {m}×{n} matrix has rank {n - theirs.shape[1]} < {min(m, n)}: almost every nearby "
                "matrix has full rank, so the null space changes dimension and has no derivative")
    if theirs.shape[1] > 1:
        _refuse("null_space", f"the null space has {theirs.shape[1]} dimensions, and its basis is not unique (any "
                "rotation of it is one), so it has no derivative; the projector onto it, I − pinv(A) @ A, has one")
    if theirs.shape[1] == 0:
        return theirs
    return implicit.anchored(theirs, theirs - a.T @ np.linalg.solve(a @ a.T, a @ theirs))


def _pinvh(a, atol, rtol, lower, return_rank, **_):
    """The pseudo-inverse of the symmetric matrix ``a``'s triangle stands for (full rank, as pinv)."""
    return _pinv(_symmetric_read(a, lower), atol, rtol, return_rank)


def _refusal(name: str, why: str) -> Callable:
    def refuse(**_):
        _refuse(name, why)
    return refuse


_IMPLEMENTED = {
    "solve": _solve, "cholesky": _cholesky, "cho_factor": _cho_factor, "cho_solve": _cho_solve,
    "solve_triangular": _solve_triangular, "inv": _inv, "det": lambda a, **_: np.linalg.det(a),
    "eigh": _eigh, "eigvalsh": _eigvalsh, "qr": _qr, "svd": _svd,
    "svdvals": lambda a, **_: np.linalg.svd(a, compute_uv=False),
    "norm": lambda a, ord, axis, keepdims, **_: np.linalg.norm(a, ord, axis, keepdims),
    "lstsq": _lstsq, "pinv": _pinv, "pinvh": _pinvh, "expm": _expm, "toeplitz": _toeplitz, "hankel": _hankel,
    "circulant": _circulant, "block_diag": _block_diag, "solve_sylvester": _solve_sylvester,
    "solve_continuous_lyapunov": _solve_continuous_lyapunov, "solve_lyapunov": _solve_continuous_lyapunov,
    "solve_discrete_lyapunov": _solve_discrete_lyapunov, "sqrtm": _sqrtm,
    "lu_factor": _lu_factor, "lu_solve": _lu_solve, "lu": _lu, "polar": _polar,
    **_TRIGONOMETRIC, "expm_frechet": _expm_frechet, "logm": _logm, "fractional_matrix_power": _fractional_matrix_power,
}
_REFUSED = {  # (the likeliest only: every name swapped costs a trace that needs the swaps a little)
    "hessenberg": "the Hessenberg decomposition is not recorded for traced arrays (its reflectors' signs are "
                  "LAPACK's choice); np.linalg.qr and np.linalg.eigh are",
    "ldl": "the LDLᵀ factorisation (Bunch–Kaufman pivoting) is not recorded for traced arrays; np.linalg.cholesky, "
           "scipy.linalg.lu_factor and np.linalg.slogdet are",
    "funm": "funm applies a Python function through the complex Schur form (Parlett's recurrence), which a "
            "trace does not hold; use expm, logm, sqrtm, cosm, sinm, tanm, coshm, sinhm, tanhm, "
            "fractional_matrix_power (recorded), or for a symmetric matrix V @ np.diag(func(w)) @ V.T with "
            "w, V = np.linalg.eigh(A)",
    "schur": "the Schur decomposition is not recorded for traced arrays",
    "eig": "SciPy's eig returns complex arrays, which a trace does not hold; np.linalg.eig returns real "
           "ones where the eigenvalues are real, and is recorded",
    "eigvals": "SciPy's eigvals returns complex arrays, which a trace does not hold; np.linalg.eigvals "
               "returns real ones where the eigenvalues are real, and is recorded",
}

_WITH_VALUES = {"eigh_tridiagonal": _tridiagonal_eigen, "eigvalsh_tridiagonal": _tridiagonal_eigen,
                "solve_continuous_are": _riccati("solve_continuous_are", _care_residual),
                "solve_discrete_are": _riccati("solve_discrete_are", _dare_residual),
                "solve_banded": _solve_banded, "solveh_banded": _solveh_banded, "solve_toeplitz": _solve_toeplitz,
                "matmul_toeplitz": _matmul_toeplitz, "rq": _rq, "orth": _orth, "null_space": _null_space}

swap_during_traces("scipy.linalg", {**{n: _swapped(f) for n, f in _IMPLEMENTED.items()},
                                    **{n: replacement(run) for n, run in _WITH_VALUES.items()},
                                    **{n: _swapped(_refusal(n, why)) for n, why in _REFUSED.items()}})


# (convolution_matrix calls toeplitz by the name its module holds; its other builders write into
# np.zeros, which jacc.trace.SERVED_LIBRARIES serves)
swap_during_traces("scipy.linalg._special_matrices", {"toeplitz": _swapped(_toeplitz)})


def supported() -> list[str]:
    """The ``scipy.linalg`` functions a trace records."""
    return [f"scipy.linalg.{n}" for n in (*_IMPLEMENTED, *_WITH_VALUES)]


# -- examples (the coverage page and its tests; JAX's own scipy.linalg is the reference) ---------


def _sl(xp):
    if xp is np:
        import scipy.linalg as sl
    else:
        import jax.scipy.linalg as sl
    return sl


def _spd(r, n=4):
    m = r.normal(size=(n, n))
    return m @ m.T / n + np.eye(n)


def _x(r, shape=(4,)):
    return r.normal(size=shape)


case("scipy.linalg.solve", lambda xp: lambda a, b: _sl(xp).solve(a, b), lambda r: (_spd(r), _x(r)), argnums=(0, 1))
case("scipy.linalg.solve", lambda xp: lambda a, b: _sl(xp).solve(a, b, assume_a="pos", lower=True),
     lambda r: (_spd(r), _x(r, (4, 2))), argnums=(0, 1), variant="assume_a='pos'", jax=False,
     note="assume_a='sym'/'pos' read the triangle lower= names, as SciPy (JAX symmetrizes instead)")
case("scipy.linalg.cholesky", lambda xp: lambda a: _sl(xp).cholesky(a), lambda r: (_spd(r),), jax=False,
     note="the upper factor unless lower=True, read from that triangle, as SciPy")
case("scipy.linalg.cho_factor", lambda xp: lambda a, b: _sl(xp).cho_solve(_sl(xp).cho_factor(a, lower=True), b),
     lambda r: (_spd(r), _x(r)), argnums=(0, 1), jax=False, note="with cho_solve; the factor's unused triangle is zero")
case("scipy.linalg.solve_triangular", lambda xp: lambda a, b: _sl(xp).solve_triangular(a, b, trans="T", lower=True),
     lambda r: (_spd(r), _x(r)), argnums=(0, 1))
case("scipy.linalg.inv", lambda xp: lambda a: _sl(xp).inv(a), lambda r: (_spd(r),))
case("scipy.linalg.det", lambda xp: lambda a: _sl(xp).det(a), lambda r: (_spd(r),))
case("scipy.linalg.eigh", lambda xp: lambda a: _sl(xp).eigh(a, eigvals_only=True), lambda r: (_spd(r),), jax=False,
     note="distinct eigenvalues; the lower triangle read (lower=False: the upper), as numpy.linalg.eigh")
case("scipy.linalg.qr", lambda xp: lambda a: _sl(xp).qr(a, mode="economic")[1], lambda r: (_x(r, (5, 3)),),
     note="mode='full' (SciPy's default; refused for a tall matrix, whose extra columns of Q are not unique), "
          "'economic' or 'r'")
case("scipy.linalg.rq", lambda xp: lambda a: xp.concatenate(_sl(xp).rq(a)), lambda r: (_x(r, (4, 4)),), jax=False,
     note="from the QR decomposition of the flipped transpose, with SciPy's signs and value; mode='full' "
          "(SciPy's default; refused for a wide matrix, whose extra rows of Q are not unique), 'economic' "
          "or 'r' (JAX has no rq)")
case("scipy.linalg.rq", lambda xp: lambda a: _sl(xp).rq(a, mode="economic")[1], lambda r: (_x(r, (3, 5)),),
     jax=False, variant="economic, wide")
case("scipy.linalg.rq", lambda xp: lambda a: _sl(xp).rq(a, mode="r"), lambda r: (_x(r, (5, 3)),), jax=False,
     variant="r, tall")
case("scipy.linalg.orth", lambda xp: lambda a: _sl(xp).orth(a), lambda r: (_x(r, (5, 3)),), jax=False,
     note="left singular vectors of a full-rank matrix from the SVD, with SciPy's signs and value; a rank-deficient "
          "matrix or repeated singular values are refused (JAX has no orth)")
case("scipy.linalg.null_space", lambda xp: lambda a: _sl(xp).null_space(a) * a[0, 0], lambda r: (_x(r, (3, 4)),),
     jax=False, note="SciPy's null space (value and sign), differentiated as −pinv(A)·dA·V; a rank-deficient matrix "
     "or a null space of two or more dimensions (no unique basis) is refused (JAX has no null_space)")
case("scipy.linalg.pinvh", lambda xp: lambda a: _sl(xp).pinvh(a) if xp is np else xp.linalg.pinv(
     xp.tril(a) + xp.tril(a, -1).T), lambda r: (_x(r, (4, 4)),),
     note="the pseudo-inverse of the symmetric matrix the lower triangle stands for; full rank, as pinv")
case("scipy.linalg.svd", lambda xp: lambda a: _sl(xp).svd(a, compute_uv=False), lambda r: (_x(r, (4, 3)),))
case("scipy.linalg.expm", lambda xp: lambda a: _sl(xp).expm(a), lambda r: (_x(r, (4, 4)),),
     note="Higham's scaling and squaring, recorded op by op (its degree and scaling read at the traced point)")
case("scipy.linalg.expm", lambda xp: lambda a: _sl(xp).expm(a), lambda r: (8.0 * _x(r, (3, 3)),), variant="scaled",
     note="a norm above θ13: halved s times, then squared s times")
case("scipy.linalg.lu_factor", lambda xp: lambda a, b: _sl(xp).lu_solve(_sl(xp).lu_factor(a), b),
     lambda r: (_x(r, (4, 4)), _x(r)), argnums=(0, 1), variant="with lu_solve",
     note="lu_solve of lu_factor's own result is one solve with the matrix")
case("scipy.linalg.lu_factor", lambda xp: lambda a: _sl(xp).lu_factor(a)[0], lambda r: (_x(r, (4, 4)),),
     note="SciPy's factors at the traced point and a Newton step recorded (exact derivative; the pivots "
          "make the trace value-dependent); square matrices")
_PIV = np.array([3, 1, 2, 3], dtype=np.int32)
case("scipy.linalg.lu_solve", lambda xp: lambda lu, b: _sl(xp).lu_solve((lu, _PIV), b, trans=1),
     lambda r: (_x(r, (4, 4)) + 4 * np.eye(4), _x(r)), argnums=(0, 1), note="of any factors: triangular solves")
case("scipy.linalg.lu", lambda xp: lambda a: _sl(xp).lu(a)[1] + _sl(xp).lu(a)[2], lambda r: (_x(r, (4, 4)),),
     note="p, l, u; permute_l= and p_indices= as SciPy")
case("scipy.linalg.polar", lambda xp: lambda a: xp.concatenate(_sl(xp).polar(a)), lambda r: (_x(r, (4, 3)),),
     jax=False, note="U and P from the SVD, as SciPy; distinct singular values (JAX's QDWH iteration has no "
                     "reverse-mode derivative)")
case("scipy.linalg.polar", lambda xp: lambda a: _sl(xp).polar(a, side="left")[1], lambda r: (_x(r, (3, 4)),),
     variant="side='left'", jax=False)
case("scipy.linalg.toeplitz", lambda xp: lambda c, r: _sl(xp).toeplitz(c, r), lambda r: (_x(r, (3,)), _x(r)),
     argnums=(0, 1))
case("scipy.linalg.hankel", lambda xp: lambda c, r: _sl(xp).hankel(c, r), lambda r: (_x(r, (3,)), _x(r)),
     argnums=(0, 1))
case("scipy.linalg.circulant", lambda xp: lambda c: _sl(xp).circulant(c), lambda r: (_x(r),))
case("scipy.linalg.block_diag", lambda xp: lambda a, b: _sl(xp).block_diag(a, b, xp.ones((1, 2))),
     lambda r: (_x(r, (2, 3)), _x(r, (2, 2))), argnums=(0, 1))
case("scipy.linalg.solve_sylvester", lambda xp: lambda a, q: _sl(xp).solve_sylvester(a, a.T, q),
     lambda r: (_spd(r, 3), _x(r, (3, 3))), argnums=(0, 1), jax=False,
     note="one linear system of order n·m (Kronecker form); JAX's has no derivative (its Schur form)")
case("scipy.linalg.solve_continuous_lyapunov", lambda xp: lambda a, q: _sl(xp).solve_continuous_lyapunov(-a, q),
     lambda r: (_spd(r, 3), _x(r, (3, 3))), argnums=(0, 1), jax=False)
case("scipy.linalg.solve_discrete_lyapunov", lambda xp: lambda a, q: _sl(xp).solve_discrete_lyapunov(0.3 * a, q),
     lambda r: (_x(r, (3, 3)), _x(r, (3, 3))), argnums=(0, 1), jax=False)
case("scipy.linalg.solve_continuous_are",
     lambda xp: lambda a, q: _sl(xp).solve_continuous_are(a, np.array([[1.0], [0.5], [-0.3]]), q @ q.T, np.eye(1)),
     lambda r: (_x(r, (3, 3)), _spd(r, 3)), argnums=(0, 1), jax=False,
     note="SciPy's solution, differentiated by the implicit function theorem (one Newton step recorded); "
          "JAX has none")
case("scipy.linalg.solve_discrete_are",
     lambda xp: lambda a, r_: _sl(xp).solve_discrete_are(0.5 * a, np.array([[1.0], [0.5], [-0.3]]), np.eye(3),
                                                         r_ @ r_.T + np.eye(1)),
     lambda r: (_x(r, (3, 3)), _x(r, (1, 1))), argnums=(0, 1), jax=False,
     note="as solve_continuous_are")
case("scipy.linalg.eigh_tridiagonal", lambda xp: lambda d, e: _sl(np).eigh_tridiagonal(d, e)[1],
     lambda r: (_x(r, (4,)), _x(r, (3,))), argnums=(0, 1), jax=False,
     note="np.linalg.eigh of the tridiagonal matrix, SciPy's values and signs; select='a' only")
case("scipy.linalg.sqrtm", lambda xp: lambda a: _sl(xp).sqrtm(a), lambda r: (_spd(r, 3) + 0.3 * _x(r, (3, 3)),),
     jax=False, note="SciPy's root, then a Newton step recorded (derivative: the Sylvester solve); JAX has none")
case("scipy.linalg.cosm", lambda xp: lambda a: _sl(xp).cosm(a), lambda r: (_x(r, (3, 3)),), jax=False,
     note="cos A and sin A from one real exponential exp([[0, A], [−A, 0]]); JAX has none")
case("scipy.linalg.sinm", lambda xp: lambda a: _sl(xp).sinm(a), lambda r: (_x(r, (3, 3)),), jax=False)
case("scipy.linalg.tanm", lambda xp: lambda a: _sl(xp).tanm(a), lambda r: (0.5 * _x(r, (3, 3)),), jax=False,
     note="cos(A)⁻¹ sin(A), as SciPy")
case("scipy.linalg.coshm", lambda xp: lambda a: _sl(xp).coshm(a), lambda r: (_x(r, (3, 3)),), jax=False,
     note="(exp A ± exp −A) / 2")
case("scipy.linalg.sinhm", lambda xp: lambda a: _sl(xp).sinhm(a), lambda r: (_x(r, (3, 3)),), jax=False)
case("scipy.linalg.tanhm", lambda xp: lambda a: _sl(xp).tanhm(a), lambda r: (_x(r, (3, 3)),), jax=False)
case("scipy.linalg.expm_frechet", lambda xp: lambda a, e: _sl(xp).expm_frechet(a, e, compute_expm=False),
     lambda r: (_x(r, (3, 3)), _x(r, (3, 3))), argnums=(0, 1),
     note="from exp([[A, E], [0, A]]) = [[exp A, L(A, E)], [0, exp A]]")
case("scipy.linalg.logm", lambda xp: lambda a: _sl(xp).logm(a), lambda r: (_spd(r, 3) + 0.3 * _x(r, (3, 3)),),
     jax=False, note="SciPy's logarithm as the root of exp(L) = A (implicit differentiation; O(n⁶) for the "
                     "exponential's n²×n² Jacobian, so small matrices); a complex logarithm is refused")
case("scipy.linalg.fractional_matrix_power", lambda xp: lambda a: _sl(xp).fractional_matrix_power(a, 0.37),
     lambda r: (_spd(r, 3),), jax=False,
     note="SciPy's value with the derivative of exp(t · log A); an integer t: matrix_power")
case("scipy.linalg.solve_banded", lambda xp: lambda ab, b: _sl(xp).solve_banded((1, 1), ab, b),
     lambda r: (_x(r, (3, 5)) + 4.0 * (np.arange(3) == 1)[:, None], _x(r, (5,))), argnums=(0, 1), jax=False,
     note="the band gathered into a dense matrix and solved (O(n³)), with SciPy's value")
case("scipy.linalg.solveh_banded", lambda xp: lambda ab, b: _sl(xp).solveh_banded(ab, b, lower=True),
     lambda r: (np.stack([4.0 + _x(r, (5,)) ** 2, _x(r, (5,))]), _x(r, (5,))), argnums=(0, 1), jax=False)
case("scipy.linalg.solve_toeplitz", lambda xp: lambda c, b: _sl(xp).solve_toeplitz(c, b),
     lambda r: (_x(r, (4,)) + 4.0 * (np.arange(4) == 0), _x(r, (4,))), argnums=(0, 1), jax=False,
     note="the Toeplitz matrix gathered and solved (O(n³) where SciPy's Levinson recursion is O(n²))")
case("scipy.linalg.matmul_toeplitz", lambda xp: lambda c, r, x: _sl(xp).matmul_toeplitz((c, r), x),
     lambda r: (_x(r, (4,)), _x(r, (3,)), _x(r, (3, 2))), argnums=(0, 1, 2), jax=False)

