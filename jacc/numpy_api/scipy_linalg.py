"""``scipy.linalg`` of traced arrays: solve, Cholesky, triangular solves, inverse, determinant,
eigh, QR, SVD, norm, lstsq and pinv, recorded as the NumPy functions that compute the same thing.

SciPy's functions are not dispatched to ``__array_function__``; while ``f`` runs on traced
arguments they are replaced on the ``scipy.linalg`` module (see
:func:`jacc.constructors.swap_during_traces`), and a call with a traced argument goes to the
NumPy equivalent. SciPy's conventions are kept: ``cholesky`` and ``cho_factor`` give the *upper*
factor unless ``lower=True`` and read only that triangle, ``solve`` with ``assume_a='pos'`` or
``'sym'`` reads the triangle ``lower`` names, ``qr``'s default mode is ``'full'``. ``cho_factor``
returns the clean triangular factor (SciPy leaves other values in the unused triangle, which no
SciPy function reads). Refused with a message: generalized eigenproblems (``eigh(a, b)``), pivoted
QR, ``lu``/``lu_factor``, ``expm``, ``sqrtm``, ``logm``, ``schur`` and SciPy's complex ``eig``/``eigvals``."""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..constructors import _holds_tracer, swap_during_traces
from ..trace import UnsupportedOperationError, call_site
from . import case
from .linalg import _symmetric_read, triangular_solve


def _swapped(impl: Callable) -> Callable[[Callable], Callable]:
    """A maker for :func:`swap_during_traces`: calls with a traced argument go to ``impl`` with
    SciPy's own arguments bound by name (defaults filled in), the rest to SciPy."""
    def make(original: Callable) -> Callable:
        sig = inspect.signature(original)

        def call(*args, **kwargs):
            if not (any(map(_holds_tracer, args)) or any(map(_holds_tracer, kwargs.values()))):
                return original(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return impl(**bound.arguments)
        call.__name__, call.__doc__, call.__wrapped__ = original.__name__, original.__doc__, original
        return call
    return make


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.linalg.{what} at {call_site()}: {why}")


def _triangle(a, lower: bool, unit: bool = False):
    """The triangle of ``a`` that SciPy reads (its diagonal all ones with ``unit``)."""
    t = np.tril(a, -1 if unit else 0) if lower else np.triu(a, 1 if unit else 0)
    return t + np.eye(np.shape(a)[-1]) if unit else t


_GENERAL = (None, "gen", "general")
_SYMMETRIC = ("sym", "symmetric", "her", "hermitian", "pos", "positive definite")


def _solve(a, b, lower, assume_a, transposed, **_):
    if assume_a in _GENERAL:
        m = a
    elif assume_a in _SYMMETRIC:
        m = _symmetric_read(a, lower)
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
        return np.linalg.inv(_symmetric_read(a, lower))
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
    return np.linalg.lstsq(a, b, rcond=cond)


def _pinv(a, atol, rtol, return_rank, **_):
    if atol not in (None, 0, 0.0):
        _refuse("pinv", "atol= is not supported for traced arrays; use rtol=")
    p = np.linalg.pinv(a, rcond=np.finfo(float).eps * max(np.shape(a)[-2:]) if rtol is None else rtol)
    return (p, min(np.shape(a)[-2:])) if return_rank else p


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
    "lstsq": _lstsq, "pinv": _pinv,
}
_REFUSED = {  # (the likeliest only: every name swapped costs a trace that needs the swaps a little)
    "lu_factor": "pivoted LU factors are not recorded; use scipy.linalg.solve",
    "lu": "pivoted LU factors are not recorded; use scipy.linalg.solve",
    "expm": "the matrix exponential is not recorded for traced arrays",
    "sqrtm": "the matrix square root is not recorded for traced arrays (for a symmetric positive definite "
             "matrix: w, v = scipy.linalg.eigh(a); v @ np.diag(np.sqrt(w)) @ v.T)",
    "logm": "the matrix logarithm is not recorded for traced arrays (for a symmetric positive definite "
            "matrix: w, v = scipy.linalg.eigh(a); v @ np.diag(np.log(w)) @ v.T)",
    "schur": "the Schur decomposition is not recorded for traced arrays",
    "eig": "SciPy's eig returns complex arrays, which a trace does not hold; np.linalg.eig returns real "
           "ones where the eigenvalues are real, and is recorded",
    "eigvals": "SciPy's eigvals returns complex arrays, which a trace does not hold; np.linalg.eigvals "
               "returns real ones where the eigenvalues are real, and is recorded",
}

swap_during_traces("scipy.linalg", {**{n: _swapped(f) for n, f in _IMPLEMENTED.items()},
                                    **{n: _swapped(_refusal(n, why)) for n, why in _REFUSED.items()}})


def supported() -> list[str]:
    """The ``scipy.linalg`` functions a trace records."""
    return [f"scipy.linalg.{n}" for n in _IMPLEMENTED]


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
     note="mode='full' (SciPy's default), 'economic' or 'r'")
case("scipy.linalg.svd", lambda xp: lambda a: _sl(xp).svd(a, compute_uv=False), lambda r: (_x(r, (4, 3)),))
