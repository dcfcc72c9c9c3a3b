"""Linear algebra: solve, inverse, determinants, norms and factorisations.

Factorisations are primitives with closed-form partials (dense within one matrix; the batch axes
of a stack ``(..., M, N)`` stay diagonal pairs, so ``describe()`` reads ``diag B ⊗ dense``); a
Cholesky factor, eigendecomposition, SVD or QR larger than ``DENSE_PARTIAL_MAX`` records its
derivative as a network of products instead (:func:`_factored_cholesky`, :func:`_factored_eigh`,
:func:`_eigh_values`, :func:`_factored_svd`, :func:`_svd_values_of`, :func:`_factored_qr`). Norms,
``pinv`` and ``lstsq`` are compositions of them.
Assumptions, as for every AD system:

* ``eigh``/``eigvalsh`` read one triangle (``UPLO``, lower by default) and assume distinct
  eigenvalues (the eigenvector partials divide by λⱼ − λᵢ: a Jacobian that meets such a division
  at eigenvalues equal to within :data:`TIE_RTOL` is refused, see :func:`_note_ties`; eigenvectors
  of the simple ones keep theirs); ``cholesky`` reads the lower triangle
  (``upper=True``: the upper one). Perturbing an entry of the read triangle off the diagonal
  perturbs the symmetric matrix in both places; the other triangle has derivative 0.
* ``eig``/``eigvals`` trace where the eigenvalues are real at the traced point (NumPy then returns
  real arrays; a complex one is refused, and the trace is value-dependent): dλₖ = (V⁻¹ dA V)ₖₖ,
  unit eigenvectors with NumPy's signs, distinct eigenvalues assumed.
* ``svd`` assumes distinct non-zero singular values; ``qr`` a full-rank matrix; ``pinv``/``lstsq``
  a full-rank matrix (a rank-deficient one is refused at the traced point), and go through QR,
  so their error grows with the condition number as NumPy's does, not with its square.
"""

from __future__ import annotations

import math
import warnings
from collections import namedtuple
from typing import Any

import numpy as np

from .. import factorise, lazy
from .. import ops as O
from ..graph import BOOL, PARAMS, _leaf
from ..ops import Op, ShapeError, register
from ..structure import Jac
from ..trace import (
    TieWarning,
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _axes_of,
    _int,
    _reduce,
    _tape_of,
    _user_stacklevel,
    call_site,
    implements,
)
from . import case
from .gathers import _value

EighResult = namedtuple("EighResult", "eigenvalues eigenvectors")
QRResult = namedtuple("QRResult", "Q R")
SVDResult = namedtuple("SVDResult", "U S Vh")
SlogdetResult = namedtuple("SlogdetResult", "sign logabsdet")


# -- shapes and the batched partial ------------------------------------------------------------


def _matrix(s, what: str, square: bool = False) -> tuple[int, int]:
    """The core ``(M, N)`` of a matrix or stack of matrices, checked."""
    if len(s) < 2:
        raise ShapeError(f"{what} needs a matrix or a stack of matrices (..., M, N), got shape {tuple(s)}")
    if square and s[-1] != s[-2]:
        raise ShapeError(f"{what} needs square matrices, got shape {tuple(s)}")
    return s[-2], s[-1]


def _core(a, what: str) -> tuple[int, int]:
    """``_matrix`` for a handler: the error names the function and the call site."""
    try:
        return _matrix(np.shape(a) if not isinstance(a, Tracer) else a.shape, what)
    except ShapeError as e:
        raise TraceError(f"{e} (at {call_site()})") from None


def _stack_labels(ctx: O.Ctx) -> tuple[int, int, list[int], list[int]]:
    """(batch axes, output axes, pairing, value labels) of ∂out/∂a for an op applied to each
    matrix of a stack: batch axes are diagonal pairs, the out core and in core axes carry values."""
    nb, m = len(ctx.shapes[0]) - 2, len(ctx.out_shape)
    return nb, m, list(range(nb)) + [-1, -1], list(range(m)) + [m + nb, m + nb + 1]


def _batched(ctx: O.Ctx, fn) -> Jac:
    """∂out/∂a of an op applied to each matrix of a stack (see :func:`_stack_labels`); ``fn()``
    returns values over batch + out core + in core axes."""
    out, s = ctx.out_shape, ctx.shapes[0]
    nb, _, pair, vl = _stack_labels(ctx)

    def quiet():  # at a repeated eigen/singular value the partials are inf/NaN by design: no warnings
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn()
    return Jac(out, s, pair, vl, ctx.val(quiet, tuple(out) + tuple(s[nb:])))


def _mT(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _read_lower(K: np.ndarray) -> np.ndarray:
    """The partial w.r.t. a matrix of which only the lower triangle is read, from ``K`` (the
    derivative formula applied to each unit matrix Eᵢⱼ, last two axes i, j): an entry below the
    diagonal stands for both Sᵢⱼ and Sⱼᵢ of the symmetric matrix read, one above is unused."""
    n = K.shape[-1]
    return (K + _mT(K)) * np.tril(np.ones((n, n)), -1) + K * np.eye(n)


def _read(K: np.ndarray, uplo: str) -> np.ndarray:
    return _read_lower(K) if uplo == "L" else _mT(_read_lower(_mT(K)))


def _reg(name, evaluate, shape, partial, doc, params=()):
    """A factorisation of one matrix (or stack) as an op."""
    register(Op(name, evaluate, shape, partial, 1, doc, params=tuple(params), factorises=True))


def _same_shape(what, square=True):
    def shape(s, p):
        _matrix(s[0], what, square)
        return tuple(s[0])
    return shape


# -- determinants and the inverse (batched) ------------------------------------------------------


def _det_partial(i, ctx):
    # ∂det/∂A = adj(A)ᵀ, exact at singular matrices too (factorise.det_gradient)
    return _batched(ctx, lambda: lazy.apply(factorise.det_gradient, ctx.args[0]))


def _scalar_shape(what):
    def shape(s, p):
        _matrix(s[0], what, True)
        return tuple(s[0][:-2])
    return shape


_reg("det", lambda a, p: lazy.asarray(factorise.det(a[0])), _scalar_shape("det"), _det_partial,
     "linalg.det of a matrix or stack (partial: the adjugate, also at singular matrices)")
_reg("logabsdet", lambda a, p: lazy.asarray(factorise.slogdet(a[0])[1]), _scalar_shape("slogdet"),
     lambda i, c: _batched(c, lambda: _mT(factorise.inv(c.args[0]))),
     "log|det A| (second result of linalg.slogdet), matrices or stacks")
register(Op("slogdet_sign", lambda a, p: lazy.asarray(factorise.slogdet(a[0])[0]), _scalar_shape("slogdet"),
            lambda i, c: None, 1, "sign of det A (first result of linalg.slogdet); derivative zero",
            frozenset({0}), factorises=True))
def _inv_partial(i: int, ctx: O.Ctx) -> Jac:
    """∂(A⁻¹)_ij/∂A_kl = −(A⁻¹)_ik (A⁻¹)_lj per matrix of the stack: two factors, so a product
    with it costs O(n³) instead of the O(n⁴) of the multiplied-out tensor."""
    out, s = ctx.out_shape, ctx.shapes[0]
    nb, m, pair, vl = _stack_labels(ctx)
    batch = list(range(nb))
    factors = [batch + [nb, m + nb], batch + [m + nb + 1, nb + 1]]
    fvals = ctx.vals((lambda: -ctx.out, tuple(out)), (lambda: ctx.out, tuple(out)))
    return Jac(out, s, pair, vl, factors=factors, fvalues=fvals)


_reg("inv", lambda a, p: factorise.inv(a[0]), _same_shape("inv"), _inv_partial,
     "linalg.inv of a matrix or stack")


@implements(np.linalg.solve)
def _solve(a, b):
    """One matrix: the ``solve`` op; a stack (or a stacked right-hand side): A⁻¹ @ b, whose matmul
    keeps the batch axes diagonal. NumPy 2's rule: b is a vector only when it is 1-d."""
    if np.ndim(a) == 2 and np.ndim(b) in (1, 2):
        return _tape_of(a, b).record("solve", [a, b])
    _core(a, "numpy.linalg.solve")
    return (np.linalg.inv(a) if isinstance(a, Tracer) else np.linalg.inv(np.asarray(a))) @ b


@implements(np.linalg.inv)
def _inv(a):
    return _tape_of(a).record("inv", [a])


@implements(np.linalg.det)
def _det(a):
    return _tape_of(a).record("det", [a])


@implements(np.linalg.slogdet)
def _slogdet(a):
    tape = _tape_of(a)
    return SlogdetResult(tape.record("slogdet_sign", [a]), tape.record("logabsdet", [a]))


# -- Cholesky -------------------------------------------------------------------------------------


def _cholesky_partial(i, ctx):
    # dL = L·Φ(L⁻¹ dA L⁻ᵀ), Φ: the strict lower triangle plus half the diagonal
    def values():
        L = ctx.out
        n = L.shape[-1]
        Li = np.linalg.inv(L)
        phi = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
        K = np.einsum("...ap,pb,...pi,...bj->...abij", L, phi, Li, Li, optimize=True)
        return _read_lower(K)
    return _batched(ctx, values)


_reg("cholesky", lambda a, p: np.linalg.cholesky(a[0]), _same_shape("cholesky"), _cholesky_partial,
     "linalg.cholesky: the lower factor; reads the lower triangle")


def _swap(x):
    """The last two axes swapped (a free transpose)."""
    n = x.ndim
    return x.transpose(list(range(n - 2)) + [n - 1, n - 2])


register(Op("cholesky_value", lambda a, p: np.linalg.cholesky(a[0]), _same_shape("cholesky"), lambda i, ctx: None,
            1, "cholesky's value alone (no edge): a large factor pairs it with its derivative network",
            frozenset({0}), factorises=True))

register(Op("inv_lower_value", lambda a, p: lazy.apply(factorise.inv_lower, a[0]), _same_shape("inv_lower_value"),
            lambda i, ctx: None, 1, "the inverse of a lower-triangular matrix, held (no edge): L⁻¹ in a "
            "Cholesky factor's derivative network", frozenset({0}), factorises=True))

def _triangular_solve_shape(s, p):
    n = _matrix(s[0], "solve_triangular_value", True)[0]
    if len(s[0]) != 2 or len(s[1]) not in (1, 2) or s[1][0] != n:
        raise ShapeError(f"solve_triangular_value needs an n×n matrix and an (n,) or (n, k) right-hand side, "
                         f"got {tuple(s[0])} and {tuple(s[1])}")
    return tuple(s[1])


register(Op("solve_triangular_value",
            lambda a, p: lazy.apply(factorise.solve_triangular, a[0], a[1], lower=p.get("lower", True)),
            _triangular_solve_shape, lambda i, ctx: None, 2, "T⁻¹b for the lower (lower=false: upper) triangle T "
            "of a matrix, held (no edge): its derivative is a network (see triangular_solve)", frozenset({0, 1}),
            params=("lower",), factorises=True))
PARAMS["solve_triangular_value"] = {"lower": (BOOL, False)}


def triangular_solve(t, b, lower: bool):
    """T⁻¹b for a triangular ``t`` (its other triangle zero, as a traced ``tril``/``triu`` makes it):
    the value by LAPACK's trtrs (n² per right-hand side), the derivative dx = T⁻¹(db − dT·x) as a
    network of products with T⁻¹ held (trtri, n³/3 once per call). ``np.linalg.solve`` of the same
    matrix would factorise it (2n³/3) and invert the factors for the partials."""
    tape = _tape_of(t, b)
    x = tape.record("solve_triangular_value", [t, b], {"lower": bool(lower)})
    if not isinstance(t, Tracer):
        t = np.asarray(t, dtype=float)
        ti = np.linalg.inv(t)
    else:
        ti = tape.record("inv_lower_value", [t]) if lower else _swap(tape.record("inv_lower_value", [_swap(t)]))
    with tape.derivative_network(*[a for a in (t, b) if isinstance(a, Tracer)]):
        dx = ti @ (b - t @ x)
    return tape.record("value_from", [x, dx])


#: Cholesky factors, eigenvectors, singular vectors and QR factors of matrices larger than this
#: record their derivative as a network of products (see _factored_cholesky and its siblings)
#: instead of one dense partial of n⁴ values.
DENSE_PARTIAL_MAX = 6


def _symmetric_read(a, lower: bool = True):
    """The symmetric matrix that ``a``'s lower (or upper) triangle stands for, as traced maps."""
    if lower:
        return np.tril(a) + _swap(np.tril(a, -1))
    return np.triu(a) + _swap(np.triu(a, 1))


def _factored_cholesky(a):
    """The lower Cholesky factor of ``a`` (n > DENSE_PARTIAL_MAX). Its partial
    dL = L·Φ(L⁻¹ dS L⁻ᵀ) (S: the symmetric matrix the lower triangle stands for; Φ: the strict
    lower triangle plus half the diagonal) is a dense n⁴ array, n⁴ multiplications per adjoint
    row. Recorded instead as that formula with L and L⁻¹ held (values of a vertex with no edge,
    so constants to the derivative): three products with Kronecker partials, 3n³ per adjoint
    row. The value stays NumPy's (``cholesky_value``); ``value_from`` takes the derivative from
    the network, whose own value (L/2) is never used."""
    tape = _tape_of(a)
    n = a.shape[-1]
    L = tape.record("cholesky_value", [a])
    Li = tape.record("inv_lower_value", [L])
    phi = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    with tape.derivative_network(a):
        dL = L @ ((Li @ _symmetric_read(a) @ _swap(Li)) * phi)
    return tape.record("value_from", [L, dL])


@implements(np.linalg.cholesky)
def _cholesky(a, /, *, upper=False):
    if upper:  # Uᵀ is the lower factor of Aᵀ, whose lower triangle is A's upper one
        return _swap(_cholesky(_swap(a)))
    tape = _tape_of(a)
    tape.note_domain("numpy.linalg.cholesky")  # (scalar code gives NaN where NumPy raises: f runs then)
    if np.shape(a)[-1] > DENSE_PARTIAL_MAX:
        return _factored_cholesky(a)
    return tape.record("cholesky", [a])


# -- symmetric eigenproblems ---------------------------------------------------------------------


def _uplo(p) -> str:
    return p.get("uplo", "L")


def _eigh(a, p):
    # shared within a call (a Lazy stand-in passes through as np.linalg.eigh, which the generated
    # program swaps for the same)
    return factorise.eigh(a, UPLO=_uplo(p))


#: Eigenvalues this close (relative to their 2-norm) are one repeated eigenvalue: a
#: repeated one computed in floating point (I + 0.3·ones) differs by rounding, and 1/(rounding) made
#: finite nonsense of the eigenvectors' partial where an exact tie made it NaN
TIE_RTOL = 1e-10


def _tie_scale(x):
    """What :data:`TIE_RTOL` is relative to: the 2-norm of the values along the last axis (every
    backend's spelling: torch's max of an axis is a pair)."""
    return np.sqrt(np.sum(x * x, axis=-1))


def _inverse_gaps(x, ties: bool = False):
    """Fₚ_q = 1/(x_q − xₚ) off the diagonal of the last axis pair, 0 on it (arrays, lazy
    stand-ins or traced values; equal entries give inf, as the derivative does). ``ties``: NaN
    between entries equal to within :data:`TIE_RTOL` (see :func:`_note_ties`)."""
    eye = np.eye(x.shape[-1], dtype=bool)
    gaps = x[..., None, :] - x[..., :, None]
    with np.errstate(divide="ignore"):
        F = np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, gaps))
    if ties:
        scale = _tie_scale(x)[..., None, None]
        F = np.where(~eye & (np.abs(gaps) <= TIE_RTOL * scale), np.nan, F)
    return F


def _tied(w: Tracer) -> bool:
    """Whether the traced point's eigenvalues or singular values ``w`` (sorted, either way) hold a
    repeated one (within :data:`TIE_RTOL`)."""
    values = np.sort(np.asarray(w.value), axis=-1)  # (eig's are in NumPy's order, unsorted)
    scale = _tie_scale(values)[..., None]
    return values.shape[-1] > 1 and bool(np.any(np.abs(np.diff(values, axis=-1)) <= TIE_RTOL * scale))


#: what a repeated value leaves without a derivative, and what has one there: by decomposition
_TIE_ADVICE = {
    "eigen": "A function that does not depend on the basis (a Gaussian density through eigh: a frozen "
             "scipy.stats.multivariate_normal, or one with allow_singular=True) has a derivative there: compute "
             "it without eigh (np.linalg.cholesky, slogdet, solve)",
    "singular ": "The singular values alone (np.linalg.svd(a, compute_uv=False)) have a derivative there, and "
                 "so does a function of the vectors' spaces computed without svd (a projection by solve or qr)"}


def _note_ties(w: Tracer, what: str, kind: str = "eigen") -> bool:
    """Refuse (if the Jacobian meets it: :meth:`~jacc.trace.Tape.note_nonfinite`) eigenvectors or
    (``kind="singular "``) singular vectors at a repeated value of the traced point's ``w``, where
    they have no derivative; whether there is one."""
    w.tape.note_domain(what)  # (a later call that skips f and meets a tie runs f: ties are a property of values)
    values = np.asarray(w.value)
    tied = _tied(w)
    if tied:
        w.tape.note_nonfinite(
            f"{what} at {call_site()}: the matrix has a repeated {kind}value ({kind}values "
            f"{np.round(values, 12)}), where its {kind}vectors are no function of it (any basis of their space is "
            f"one) and have no derivative; jacc differentiates {kind}vectors of distinct {kind}values. "
            + _TIE_ADVICE[kind])
    return tied


def _note_split_ties(w: Tracer, what: str, kind: str = "eigen") -> None:
    """:func:`_note_ties` for a decomposition whose vectors' partial is a network (large matrices),
    whose sum meets 1/gap where rounding split a tie: finite and wrong, so a warning too."""
    if _note_ties(w, what, kind):
        warnings.warn(
            f"{what} at {call_site()}: the matrix has a repeated {kind}value (equal to within {TIE_RTOL:g}, "
            f"relative), where its {kind}vectors are no function of it and have no derivative; a Jacobian that "
            "depends on them, even through a function of their space alone, is wrong here (the partial divides by "
            f"the rounding between the equal {kind}values); the other {kind}vectors keep their derivative. "
            + _TIE_ADVICE[kind], TieWarning, stacklevel=_user_stacklevel())


def _eigvals_partial(i, ctx):
    # dλₖ = vₖᵀ dS vₖ
    def values():
        v = _eigh(ctx.args[0], ctx.params)[1]
        return _read(np.einsum("...ik,...jk->...kij", v, v), _uplo(ctx.params))
    return _batched(ctx, values)


def _eigvecs_partial(i, ctx):
    # dV = V (F ∘ Vᵀ dS V), Fₚ_q = 1/(λ_q − λₚ) off the diagonal (distinct eigenvalues assumed)
    def values():
        w, v = _eigh(ctx.args[0], ctx.params)
        K = np.einsum("...ap,...pb,...ip,...jb->...abij", v, _inverse_gaps(w, ties=True), v, v, optimize=True)
        return _read(K, _uplo(ctx.params))
    return _batched(ctx, values)


def _eigvals_shape(s, p):
    _matrix(s[0], "eigh", True)
    return tuple(s[0][:-1])


_reg("eigh_values", lambda a, p: _eigh(a[0], p)[0], _eigvals_shape, _eigvals_partial,
     "eigenvalues of a symmetric matrix (ascending), reading the triangle uplo", ["uplo"])
_reg("eigh_vectors", lambda a, p: _eigh(a[0], p)[1], _same_shape("eigh"), _eigvecs_partial,
     "eigenvectors of a symmetric matrix (columns, NumPy's signs), reading the triangle uplo", ["uplo"])
PARAMS["eigh_values"] = PARAMS["eigh_vectors"] = {
    "uplo": (_leaf('"L" or "U" (the triangle read)', "str", lambda v: v in ("L", "U")), False)}


def _check_uplo(what: str, UPLO) -> dict:
    UPLO = UPLO.upper() if isinstance(UPLO, str) else UPLO  # (as NumPy: 'u' is 'U')
    if UPLO not in ("L", "U"):
        raise TraceError(f"{what} at {call_site()}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return {} if UPLO == "L" else {"uplo": "U"}


def _eigh_values(a, params: dict, v: Any = None):
    """The eigenvalues of ``a``; above DENSE_PARTIAL_MAX their partial dλₖ = vₖᵀ dS vₖ is recorded as
    that formula with V held (``v``: the eigenvectors' held vertex, recorded here if not given): an
    adjoint V·diag(λ̄)·Vᵀ, 2n³, where the dense partial held n³ values and passed over them several
    times (eigvalsh at n = 120: 8 ms a call, 7x jax.jacrev's)."""
    tape = _tape_of(a)
    w = tape.record("eigh_values", [a], params)
    if np.shape(a)[-1] <= DENSE_PARTIAL_MAX:
        return w
    vh = tape.unary("hold", tape.record("eigh_vectors", [a], params)) if v is None else v
    with tape.derivative_network(a):
        dw = np.sum(vh * (_symmetric_read(a, params.get("uplo", "L") == "L") @ vh), axis=-2)
    return tape.record("value_from", [w, dw])


def _svd_values_of(a, held: tuple | None = None):
    """The singular values of ``a``; above DENSE_PARTIAL_MAX their partial dσₖ = uₖᵀ dA vₖ is
    recorded as that formula with U and V held (``held``: the values' vertex and the held U and Vh
    of :func:`_factored_svd`, else recorded here), as :func:`_eigh_values`. The values are then the
    full decomposition's, as the vectors' (one SVD a call, not two), within rounding of NumPy's
    values-only ones."""
    tape = _tape_of(a)
    if held is not None:
        s, uh, vhh = held
    elif max(np.shape(a)[-2:]) <= DENSE_PARTIAL_MAX or 0 in np.shape(a)[-2:]:
        return tape.record("svd_values", [a])
    else:
        s = tape.record("svd_values", [a], _WITH_VECTORS)
        uh, vhh = tape.unary("hold", tape.record("svd_u", [a])), tape.unary("hold", tape.record("svd_vh", [a]))
    with tape.derivative_network(a):
        ds = np.sum(uh * (a @ _swap(vhh)), axis=-2)
    return tape.record("value_from", [s, ds])


def _factored_eigh(a, params: dict) -> EighResult:
    """eigh of ``a`` (n > DENSE_PARTIAL_MAX). The eigenvectors' partial dV = V·(F ∘ Vᵀ dS V)
    (Fₚ_q = 1/(λ_q − λₚ) off the diagonal, 0 on it) is a dense n⁴ array; recorded instead as that
    formula with V and F held (``hold``: values the derivative treats as constants), it costs 3n³
    per adjoint row. The eigenvalues keep their n³ partial; the vectors' values stay NumPy's
    (``value_from``: the network's own value is never used)."""
    tape = _tape_of(a)
    v = tape.record("eigh_vectors", [a], params)
    vh = tape.unary("hold", v)
    w = _eigh_values(a, params, vh)
    _note_split_ties(w, "numpy.linalg.eigh")
    F = _inverse_gaps(tape.unary("hold", w))
    with tape.derivative_network(a):
        dV = vh @ (F * (_swap(vh) @ _symmetric_read(a, params.get("uplo", "L") == "L") @ vh))
    return EighResult(w, tape.record("value_from", [v, dV]))


@implements(np.linalg.eigh)
def _eigh_fn(a, UPLO="L"):
    params = _check_uplo("numpy.linalg.eigh", UPLO)
    if np.shape(a)[-1] > DENSE_PARTIAL_MAX:
        return _factored_eigh(a, params)
    tape = _tape_of(a)
    w = tape.record("eigh_values", [a], params)
    _note_ties(w, "numpy.linalg.eigh")
    return EighResult(w, tape.record("eigh_vectors", [a], params))


@implements(np.linalg.eigvalsh)
def _eigvalsh(a, UPLO="L"):
    return _eigh_values(a, _check_uplo("numpy.linalg.eigvalsh", UPLO))


# -- singular value decomposition (reduced) ------------------------------------------------------


def _svd(a):
    return factorise.svd(a, full_matrices=False)  # shared within a call, as _eigh


def _svd_values_partial(i, ctx):
    # dσₖ = uₖᵀ dA vₖ
    def values():
        u, _, vh = _svd(ctx.args[0])
        return np.einsum("...ik,...kj->...kij", u, vh)
    return _batched(ctx, values)


def _svd_pieces(a):
    """U, s, V, F (Fₚ_q = 1/(s_q² − sₚ²) off the diagonal) and the projectors I − UUᵀ, I − VVᵀ."""
    u, s, vh = _svd(a)
    v = _mT(vh)
    F = _inverse_gaps(s ** 2, ties=True)  # (NaN at a tie: a later call that meets one runs f, which refuses)
    pu = np.eye(u.shape[-2]) - u @ _mT(u)
    pv = np.eye(v.shape[-2]) - v @ _mT(v)
    return u, s, v, F, pu, pv


def _svd_u_partial(i, ctx):
    # dU = U (F ∘ [P S + S Pᵀ]) + (I − UUᵀ) dA V S⁻¹ with P = Uᵀ dA V
    def values():
        u, s, v, F, pu, _ = _svd_pieces(ctx.args[0])
        e = dict(optimize=True)
        du = (np.einsum("...ap,...pb,...ip,...jb,...b->...abij", u, F, u, v, s, **e)
              + np.einsum("...ap,...pb,...ib,...jp,...p->...abij", u, F, u, v, s, **e))
        if u.shape[-2] == u.shape[-1]:  # (U square: I − UUᵀ is 0, and its rounding over a zero s was NaN or
            return du                   # nonsense, where U has a derivative: hunt BL)
        return du + np.einsum("...ai,...jb,...b->...abij", pu, v, 1.0 / s, **e)
    return _batched(ctx, values)


def _svd_vh_partial(i, ctx):
    # dV = V (F ∘ [S P + Pᵀ S]) + (I − VVᵀ) dAᵀ U S⁻¹; Vh = Vᵀ
    def values():
        u, s, v, F, _, pv = _svd_pieces(ctx.args[0])
        e = dict(optimize=True)
        dv = (np.einsum("...ap,...pb,...ip,...jb,...p->...abij", v, F, u, v, s, **e)
              + np.einsum("...ap,...pb,...ib,...jp,...b->...abij", v, F, u, v, s, **e))
        if v.shape[-2] != v.shape[-1]:  # (V square: I − VVᵀ is 0, as U's above)
            dv = dv + np.einsum("...aj,...ib,...b->...abij", pv, u, 1.0 / s, **e)
        return np.swapaxes(dv, -3, -4)
    return _batched(ctx, values)


def _svd_shape(part):
    def shape(s, p):
        m, n = _matrix(s[0], "svd")
        k = min(m, n)
        return tuple(s[0][:-2]) + {"S": (k,), "U": (m, k), "Vh": (k, n)}[part]
    return shape


def _svd_values(a, p):
    # with_vectors: the values of the decomposition the vectors come from (shared, and NumPy's
    # svd(a)[1] bit for bit); else NumPy's cheaper values-only call
    return _svd(a[0])[1] if p.get("with_vectors") else np.linalg.svd(a[0], compute_uv=False)


_reg("svd_values", _svd_values, _svd_shape("S"), _svd_values_partial,
     "singular values (descending) of a matrix or stack; with_vectors: those of the full decomposition",
     ["with_vectors"])
PARAMS["svd_values"] = {"with_vectors": (BOOL, False)}
_reg("svd_u", lambda a, p: _svd(a[0])[0], _svd_shape("U"), _svd_u_partial,
     "left singular vectors of the reduced SVD (NumPy's signs; distinct singular values assumed)")
_reg("svd_vh", lambda a, p: _svd(a[0])[2], _svd_shape("Vh"), _svd_vh_partial,
     "right singular vectors (rows) of the reduced SVD (NumPy's signs; distinct singular values assumed)")


_WITH_VECTORS = {"with_vectors": True}


def _factored_svd(a) -> "SVDResult":
    """The reduced SVD of ``a`` (a side longer than DENSE_PARTIAL_MAX). The singular vectors'
    partials (dense, m·k·m·n and k·n·m·n values) are recorded instead as their formulas with U,
    s and V held: with P = Uᵀ dA V and Fₚ_q = 1/(s_q² − sₚ²) off the diagonal,
    dU = U (F ∘ [P S + S Pᵀ]) + (I − UUᵀ) dA V S⁻¹ and dV = V (F ∘ [S P + Pᵀ S]) + (I − VVᵀ) dAᵀ U S⁻¹,
    each a few products of held matrices with dA. The values stay NumPy's (``value_from``)."""
    tape = _tape_of(a)
    u, s, vh = tape.record("svd_u", [a]), tape.record("svd_values", [a], _WITH_VECTORS), tape.record("svd_vh", [a])
    _note_split_ties(s, "numpy.linalg.svd", "singular ")
    uh, sh, vhh = tape.unary("hold", u), tape.unary("hold", s), tape.unary("hold", vh)
    s = _svd_values_of(a, (s, uh, vhh))
    v = _swap(vhh)
    m, n = a.shape[-2:]
    F = _inverse_gaps(sh * sh)
    row, col = sh[..., None, :], sh[..., :, None]  # P·S scales P's columns, S·P its rows
    # (U or V square: its projector I − UUᵀ is 0, and left out, as in _svd_u_partial)
    pu, vs = (np.eye(m) - uh @ _swap(uh), v / row) if m > min(m, n) else (None, None)
    pv, us = (np.eye(n) - v @ vhh, uh / row) if n > min(m, n) else (None, None)
    with tape.derivative_network(a):
        P = _swap(uh) @ a @ v
        Pt = _swap(P)
        du = uh @ (F * (P * row + col * Pt))
        dv = v @ (F * (col * P + Pt * row))
        if pu is not None:
            du = du + pu @ a @ vs
        if pv is not None:
            dv = dv + pv @ _swap(a) @ us
        dv = _swap(dv)
    return SVDResult(tape.record("value_from", [u, du]), s, tape.record("value_from", [vh, dv]))


@implements(np.linalg.svd)
def _svd_fn(a, full_matrices=True, compute_uv=True, hermitian=False):
    tape = _tape_of(a)
    if hermitian:
        raise UnsupportedOperationError(
            f"numpy.linalg.svd with hermitian=True at {call_site()}: it reads one triangle through eigh; "
            "call it without hermitian= (or use numpy.linalg.eigh)")
    if not compute_uv:
        return _svd_values_of(a)
    m, n = _core(a, "numpy.linalg.svd")
    if full_matrices and m != n:
        raise UnsupportedOperationError(
            f"numpy.linalg.svd with full_matrices=True of a {m}×{n} matrix at {call_site()}: the extra "
            "singular vectors are not unique, so they have no derivative; pass full_matrices=False")
    if max(m, n) > DENSE_PARTIAL_MAX:
        return _factored_svd(a)
    s = tape.record("svd_values", [a], _WITH_VECTORS)
    _note_ties(s, "numpy.linalg.svd", "singular ")  # (hunt BJ: NaN and inf came back, where eigh refuses)
    return SVDResult(tape.record("svd_u", [a]), s, tape.record("svd_vh", [a]))


if hasattr(np.linalg, "svdvals"):
    @implements(np.linalg.svdvals)
    def _svdvals(x, /):
        return _svd_values_of(x)


# -- QR (reduced) -----------------------------------------------------------------------------------


def _qr_of(a):
    return factorise.qr(a)  # shared within a call, as _eigh


def _qr_pieces(a):
    q, r = _qr_of(a)
    n = r.shape[-1]
    ri = _swap(lazy.apply(factorise.inv_lower, _swap(r)))  # R⁻¹ = ((Rᵀ)⁻¹)ᵀ: a triangular inverse
    return q, r, ri, np.triu(np.ones((n, n))), np.triu(np.ones((n, n)), 1)


# With X = Qᵀ dA R⁻¹ and Y = triu(X) + tril(X, −1)ᵀ (X less its antisymmetric part Qᵀ dQ):
# dR = Y R and dQ = dA R⁻¹ − Q Y (tall or square A of full rank).
def _qr_r_partial(i, ctx):
    def values():
        q, r, ri, u, su = _qr_pieces(ctx.args[0])
        e = dict(optimize=True)
        return (np.einsum("aq,...ia,...jq,...qb->...abij", u, q, ri, r, **e)
                + np.einsum("aq,...iq,...ja,...qb->...abij", su, q, ri, r, **e))
    return _batched(ctx, values)


def _qr_q_partial(i, ctx):
    def values():
        q, r, ri, u, su = _qr_pieces(ctx.args[0])
        e = dict(optimize=True)
        m = q.shape[-2]
        return (np.einsum("ai,...jb->...abij", np.eye(m), ri, **e)
                - np.einsum("...ap,pb,...ip,...jb->...abij", q, u, q, ri, **e)
                - np.einsum("...ap,pb,...ib,...jp->...abij", q, su, q, ri, **e))
    return _batched(ctx, values)


def _qr_shape(part):
    def shape(s, p):
        m, n = _matrix(s[0], "qr")
        if m < n:
            raise ShapeError(f"qr op needs M ≥ N, got shape {tuple(s[0])} (numpy.linalg.qr of a wide matrix "
                             "is recorded from the square block)")
        return tuple(s[0][:-2]) + ((m, n) if part == "Q" else (n, n))
    return shape


_reg("qr_q", lambda a, p: _qr_of(a[0])[0], _qr_shape("Q"), _qr_q_partial,
     "Q of the reduced QR of a tall matrix (NumPy's signs)")
_reg("qr_r", lambda a, p: _qr_of(a[0])[1], _qr_shape("R"), _qr_r_partial,
     "R of the reduced QR of a tall matrix (NumPy's signs)")


def _factored_qr(a) -> QRResult:
    """The reduced QR of a tall or square ``a`` (a side longer than DENSE_PARTIAL_MAX). Q's and R's
    partials (dense, m·n·m·n and n²·m·n values) are recorded instead as their formulas with Q, R
    and R⁻¹ held: with B = dA R⁻¹, X = Qᵀ B and Y = triu(X) + tril(X, −1)ᵀ, dR = Y R and
    dQ = B − Q Y, about 3mn² + n³ multiplications per adjoint row. The values stay NumPy's
    (``value_from``)."""
    tape = _tape_of(a)
    q, r = tape.record("qr_q", [a]), tape.record("qr_r", [a])
    qh, rh = tape.unary("hold", q), tape.unary("hold", r)
    ri = _swap(tape.record("inv_lower_value", [_swap(rh)]))  # R⁻¹ = (Rᵀ)⁻ᵀ: a triangular inverse
    qt = _swap(qh)
    with tape.derivative_network(a):
        B = a @ ri
        X = qt @ B
        Y = np.triu(X) + _swap(np.tril(X, -1))
        dQ, dR = B - qh @ Y, Y @ rh
    return QRResult(tape.record("value_from", [q, dQ]), tape.record("value_from", [r, dR]))


def _qr_parts(a) -> QRResult:
    """Q and R of a tall or square traced matrix: a network above DENSE_PARTIAL_MAX columns or rows."""
    if max(a.shape[-2:]) > DENSE_PARTIAL_MAX:
        return _factored_qr(a)
    tape = _tape_of(a)
    return QRResult(tape.record("qr_q", [a]), tape.record("qr_r", [a]))


@implements(np.linalg.qr)
def _qr(a, mode="reduced"):
    m, n = _core(a, "numpy.linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise UnsupportedOperationError(
            f"numpy.linalg.qr with mode={mode!r} at {call_site()}: the Householder form is not "
            "recorded; use mode='reduced', 'complete' (M ≤ N) or 'r'")
    if mode == "complete" and m > n:
        raise UnsupportedOperationError(
            f"numpy.linalg.qr with mode='complete' of a {m}×{n} matrix at {call_site()}: the extra "
            "columns of Q are not unique, so they have no derivative; use mode='reduced'")
    if m < n:  # Householder QR of [X Y] is the QR of the square block X, and R = [R_X, Qᵀ Y]
        q, r = _qr_parts(a[..., :, :m])
        r = np.concatenate([r, _swap(q) @ a[..., :, m:]], axis=-1)
    elif mode == "r" and max(m, n) <= DENSE_PARTIAL_MAX:  # R alone: no Q vertex
        return _tape_of(a).record("qr_r", [a])
    else:
        q, r = _qr_parts(a)
    return r if mode == "r" else QRResult(q, r)


# -- pseudo-inverse and least squares (full rank) ------------------------------------------------


def _full_rank(what: str, s: np.ndarray, cutoff) -> int:
    """The rank of a matrix with singular values ``s`` (its traced value's); a rank-deficient
    matrix is refused (its pinv jumps there)."""
    k = s.shape[-1]
    small = s <= np.asarray(cutoff)[..., None] * s[..., :1]
    if np.any(small):
        raise UnsupportedOperationError(
            f"{what} at {call_site()}: the matrix is rank-deficient at the traced point (singular values "
            "at or below the cutoff), where the pseudo-inverse is not differentiable; jacc records "
            "full-rank matrices only")
    return k


def _nan_where_rank_deficient(what: str, a, s, cutoff):
    """``a``, NaN wherever its (traced) singular values ``s`` reach the cutoff, by a recorded mask:
    a later call that skips ``f`` then meets NaN blocks and runs ``f``, whose trace refuses the
    matrix (:func:`_full_rank`), where the compiled QR route gave a finite Jacobian of 1e30."""
    ok = s[..., -1:, None] > np.asarray(cutoff)[..., None, None] * s[..., :1, None]
    a.tape.note_domain(what)
    return np.where(ok, a, np.nan)


def _solve_by_qr(a, b=None):
    """pinv(a) @ b (b = None: pinv(a)) for a full-rank traced matrix, through the reduced QR of
    a (tall) or of aᵀ (wide): R⁻¹Qᵀb, or Q R⁻ᵀ b. Its error grows with cond(a), as NumPy's SVD
    route does; the normal equations (AᵀA)⁻¹Aᵀ square it and were wrong in the fourth digit at
    cond 10⁷. No distinct singular values are needed (unlike V S⁻¹ Uᵀ): QR's derivative only
    asks for full rank."""
    if a.shape[-2] >= a.shape[-1]:
        q, r = np.linalg.qr(a)
        return np.linalg.solve(r, _swap(q) if b is None else _swap(q) @ b)
    q, r = np.linalg.qr(_swap(a))
    if b is None:
        return _swap(np.linalg.solve(r, _swap(q)))
    return q @ np.linalg.solve(_swap(r), b)


@implements(np.linalg.pinv)
def _pinv(a, rcond=None, hermitian=False, *, rtol=None):
    if hermitian:
        raise UnsupportedOperationError(
            f"numpy.linalg.pinv with hermitian=True at {call_site()}: call it without hermitian=")
    m, n = _core(a, "numpy.linalg.pinv")
    cutoff = rcond if rcond is not None else rtol if rtol is not None else max(m, n) * np.finfo(float).eps
    sv = a.tape.record("svd_values", [a])
    _full_rank("numpy.linalg.pinv", sv.value, cutoff)
    return _solve_by_qr(_nan_where_rank_deficient("numpy.linalg.pinv", a, sv, cutoff))


@implements(np.linalg.lstsq)
def _lstsq(a, b, rcond=None):
    if np.ndim(a) != 2 or np.ndim(b) not in (1, 2) or np.shape(b)[0] != np.shape(a)[0]:
        raise TraceError(f"numpy.linalg.lstsq at {call_site()}: needs a (M, N) matrix and a (M,) or (M, K) "
                         f"right-hand side, got {np.shape(a)} and {np.shape(b)}")
    m, n = np.shape(a)
    cutoff = np.finfo(float).eps * max(m, n) if rcond is None else rcond
    if isinstance(a, Tracer):
        s = a.tape.record("svd_values", [a])  # (its value is the rank check's: one SVD, not two)
        rank = _full_rank("numpy.linalg.lstsq", s.value, cutoff)
        x = _solve_by_qr(_nan_where_rank_deficient("numpy.linalg.lstsq", a, s, cutoff), b)
    else:
        s = np.linalg.svd(a, compute_uv=False)
        rank = int(np.sum(s > cutoff * s[0]))
        if rank < min(m, n):
            raise UnsupportedOperationError(f"numpy.linalg.lstsq at {call_site()}: the matrix is rank-deficient")
        x = np.linalg.pinv(a) @ b
    if m > n:
        res = np.sum(np.square(a @ x - b), axis=0)
        res = res.reshape(1) if np.ndim(b) == 1 else res
    else:
        res = np.empty((0,))
    return x, res, np.int32(rank), s


@implements(np.linalg.tensorinv)
def _tensorinv(a, ind=2):
    """The inverse of ``a`` read as a matrix (first ``ind`` axes against the rest): reshape, inv, reshape."""
    ind = _int(ind, "ind")
    front, back = a.shape[:ind], a.shape[ind:]
    if ind <= 0 or math.prod(front) != math.prod(back):
        raise TraceError(f"numpy.linalg.tensorinv at {call_site()}: ind={ind} does not split shape {a.shape} "
                         "into two parts of equal size")
    return np.linalg.inv(a.reshape(math.prod(front), -1)).reshape(back + front)


@implements(np.linalg.tensorsolve)
def _tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b, as NumPy does it: move ``axes`` last, reshape, solve."""
    n = np.ndim(a)
    if axes is not None:
        order = [k for k in range(n) if k not in [_int(x, "axes") % n for x in axes]]
        a = np.transpose(a, order + [_int(x, "axes") % n for x in axes])
    shape = np.shape(a)[np.ndim(b):]
    size = math.prod(shape)
    if math.prod(np.shape(a)[:np.ndim(b)]) != size or np.shape(a)[:np.ndim(b)] != np.shape(b):
        raise TraceError(f"numpy.linalg.tensorsolve at {call_site()}: a of shape {np.shape(a)} does not fit b "
                         f"of shape {np.shape(b)} as a square system")
    return np.linalg.solve(np.reshape(a, (size, size)), np.reshape(b, (size,))).reshape(shape)


def _refusal(func, why: str):
    """Register a handler that only explains why ``func`` is not recorded."""
    def refuse(*args, **kwargs):
        raise UnsupportedOperationError(f"numpy.linalg.{func.__name__} at {call_site()}: {why}")
    refuse.refusal = True
    implements(func)(refuse)


# -- eigenvalues of a general matrix, where they are real ---------------------------------------
# With V the eigenvectors (unit columns, NumPy's) and W = V⁻¹: dλₖ = (W dA V)ₖₖ, and the vectors'
# dV = V (F ∘ W dA V) less each column's component along itself (they keep unit length), with
# Fₚ_q = 1/(λ_q − λₚ) off the diagonal (distinct eigenvalues assumed, as for eigh). V⁻¹ comes from
# V's shared LU (jacc.factorise), so the two partials factorise V once.


def _eig(a):
    w, v = factorise.eig(a)
    return np.real(w), np.real(v)  # (NumPy's are real already where the spectrum is; JAX's complex)


def _eig_values_partial(i, ctx):
    def values():
        v = _eig(ctx.args[0])[1]
        return np.einsum("...ki,...jk->...kij", factorise.inv(v), v)
    return _batched(ctx, values)


def _eig_vectors_partial(i, ctx):
    def values():
        w, v = _eig(ctx.args[0])
        # (ties=True: a tie split by rounding is NaN, refused by _note_ties, not 1/(rounding): hunt CL)
        raw = np.einsum("...ap,...pb,...pi,...jb->...abij", v, _inverse_gaps(w, ties=True), factorise.inv(v), v,
                        optimize=True)
        along = np.einsum("...cb,...cbij->...bij", v, raw)
        return raw - v[..., :, :, None, None] * along[..., None, :, :, :]
    return _batched(ctx, values)


_reg("eig_values", lambda a, p: _eig(a[0])[0], _eigvals_shape, _eig_values_partial,
     "eigenvalues of a general matrix whose spectrum is real (NumPy's order)")
_reg("eig_vectors", lambda a, p: _eig(a[0])[1], _same_shape("eig"), _eig_vectors_partial,
     "unit eigenvectors (columns, NumPy's signs) of a general matrix whose spectrum is real")
EigResult = type(np.linalg.eig(np.eye(1)))


def _real_spectrum(a, what: str) -> None:
    """Refuse a matrix with a complex eigenvalue at the traced point; mark the trace
    value-dependent (another point may have one)."""
    value = a.value if isinstance(a, Tracer) else np.asarray(a)
    if np.iscomplexobj(np.linalg.eigvals(value)):
        raise UnsupportedOperationError(
            f"numpy.linalg.{what} at {call_site()}: the matrix has complex eigenvalues at the traced point, and jacc "
            "traces real arrays (a matrix whose eigenvalues are all real is supported; a symmetric one: use eigh)")
    if isinstance(a, Tracer):
        a.tape.note_value_dependence(f"numpy.linalg.{what} (its eigenvalues are real at the traced point)")


@implements(np.linalg.eig)
def _eig_handler(a):
    _core(a, "numpy.linalg.eig")
    _real_spectrum(a, "eig")
    tape = _tape_of(a)
    w = tape.record("eig_values", [a])
    _note_ties(w, "numpy.linalg.eig")  # (hunt CH: NaN and inf came back at a repeated eigenvalue)
    return EigResult(w, tape.record("eig_vectors", [a]))


@implements(np.linalg.eigvals)
def _eigvals_handler(a):
    _core(a, "numpy.linalg.eigvals")
    _real_spectrum(a, "eigvals")
    return _tape_of(a).record("eig_values", [a])


@implements(np.linalg.matrix_rank)
def _matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """NumPy's rank of the matrix at the traced point: an integer, piecewise constant in the matrix (no
    derivative to record), read as ``np.argmax`` is, so the trace holds where the rank is the same."""
    what = "numpy.linalg.matrix_rank"
    kw = {} if rtol is None else {"rtol": _value(rtol, what)}
    return np.linalg.matrix_rank(_value(A, what), None if tol is None else _value(tol, what), hermitian, **kw)


@implements(np.linalg.cond)
def _cond(x, p=None):
    """σ_max/σ_min for p = None, 2 (−2: the inverse ratio); else ‖x‖ₚ·‖x⁻¹‖ₚ."""
    _core(x, "numpy.linalg.cond")
    if p in (None, 2, -2):
        s = _svd_values_of(x)
        big, small = s[..., 0], s[..., -1]
        return big / small if p != -2 else small / big
    return np.linalg.norm(x, ord=p, axis=(-2, -1)) * np.linalg.norm(np.linalg.inv(x), ord=p, axis=(-2, -1))


# -- norms (compositions) --------------------------------------------------------------------------


def _vector_norm(x, ord, axis, keepdims, what="numpy.linalg.norm"):
    """‖x‖_ord over ``axis`` (None, an int or a tuple): every axis named is one vector."""
    if isinstance(ord, str):
        raise TraceError(f"{what} at {call_site()}: ord={ord!r} is a matrix norm; vector norms take numbers")
    if ord is None or ord == 2:
        return np.sqrt(_reduce("sum", np.square(x), axis, keepdims))
    if ord == 0:
        raise UnsupportedOperationError(
            f"{what} with ord=0 at {call_site()}: it counts the non-zero entries, an integer with no "
            "derivative; count them outside the traced function")
    a = np.abs(x)
    if ord == np.inf:
        return _reduce("amax", a, axis, keepdims)
    if ord == -np.inf:
        return _reduce("amin", a, axis, keepdims)
    if ord == 1:
        return _reduce("sum", a, axis, keepdims)
    p = float(ord)
    return _reduce("sum", a ** p, axis, keepdims) ** (1.0 / p)


def _matrix_norm(x, ord, r, c, keepdims, what="numpy.linalg.norm"):
    """The matrix norm ``ord`` of the matrices spanning axes ``r`` (rows) and ``c`` (columns)."""
    if ord in (None, "fro"):
        return np.sqrt(_reduce("sum", np.square(x), [r, c], keepdims))
    if ord in (1, -1, np.inf, -np.inf):  # max/min over one axis of the absolute sums over the other
        total, pick = (r, c) if ord in (1, -1) else (c, r)
        sums = _reduce("sum", np.abs(x), total, keepdims)
        pick = pick if keepdims or pick < total else pick - 1
        empty = ord > 0 and not np.shape(sums)[pick]  # (NumPy's norm of an empty matrix is 0 there)
        return _reduce("sum" if empty else "amax" if ord > 0 else "amin", sums, pick, keepdims)
    if ord in (2, -2, "nuc"):  # from the singular values of the matrices moved to the last two axes
        order = [k for k in range(x.ndim) if k not in (r, c)] + [r, c]
        xt = x if order == list(range(x.ndim)) else x.transpose(order)
        s = _svd_values_of(xt)
        if ord == 2 and not s.shape[-1]:  # (an empty matrix: NumPy's 2-norm is 0)
            ord = "nuc"
        out = s[..., 0] if ord == 2 else s[..., -1] if ord == -2 else np.sum(s, axis=-1)
        return out.reshape([1 if k in (r, c) else n for k, n in enumerate(x.shape)]) if keepdims else out
    raise TraceError(f"{what} at {call_site()}: invalid norm order {ord!r} for matrices")


@implements(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):
    keepdims = bool(keepdims)
    if axis is None:
        if ord is None:  # the 2-norm of every entry, whatever the shape
            return _vector_norm(x, None, None, keepdims)
        if x.ndim not in (1, 2):
            raise TraceError(f"numpy.linalg.norm at {call_site()}: ord={ord!r} needs a vector or a matrix "
                             f"(or axis=), got {x.ndim} dimensions")
        axis = tuple(range(x.ndim))
    axes = _axes_of(axis, x.ndim, "numpy.linalg.norm")
    named = [_int(k, "axis") % x.ndim for k in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    if len(named) == 1:
        return _vector_norm(x, ord, named[0], keepdims)
    if len(named) != 2 or len(axes) != 2:
        raise TraceError(f"numpy.linalg.norm at {call_site()}: axis must name one or two distinct axes, got {axis!r}")
    return _matrix_norm(x, ord, named[0], named[1], keepdims)


if hasattr(np.linalg, "vector_norm"):
    @implements(np.linalg.vector_norm)
    def _vector_norm_fn(x, /, *, axis=None, keepdims=False, ord=2):
        return _vector_norm(x, ord, axis, bool(keepdims), "numpy.linalg.vector_norm")

    @implements(np.linalg.matrix_norm)
    def _matrix_norm_fn(x, /, *, keepdims=False, ord="fro"):
        _core(x, "numpy.linalg.matrix_norm")
        return _matrix_norm(x, ord, x.ndim - 2, x.ndim - 1, bool(keepdims), "numpy.linalg.matrix_norm")


# -- examples ---------------------------------------------------------------------------------------


def spd(r, n=4, batch=()):
    """A well-conditioned symmetric positive definite matrix (or stack)."""
    a = r.normal(size=batch + (n, n))
    return a @ _mT(a) + n * np.eye(n)


def _sym(xp, a):
    """The symmetric part: what JAX's eigh/cholesky read (NumPy reads one triangle)."""
    return (a + xp.swapaxes(a, -1, -2)) / 2


_BLOCKS = {"diag ⊗ dense"}  # a stack of matrices: one dense block per matrix, never one big dense map
case("numpy.linalg.solve", lambda xp: xp.linalg.solve, lambda r: (spd(r), r.normal(size=4)), argnums=(0, 1))
case("numpy.linalg.solve", lambda xp: xp.linalg.solve, lambda r: (spd(r, 3, (2,)), r.normal(size=(2, 3, 2))),
     argnums=(0, 1), variant="stack")
case("numpy.linalg.solve", lambda xp: xp.linalg.solve, lambda r: (spd(r, 3, (2,)), r.normal(size=3)),
     argnums=(0, 1), variant="stack, vector b", jax=False)
case("numpy.linalg.inv", lambda xp: xp.linalg.inv, lambda r: (spd(r),))
case("numpy.linalg.inv", lambda xp: xp.linalg.inv, lambda r: (spd(r, 3, (2,)),), variant="stack",
     structures=frozenset({"diag ⊗ dense as factors"}))
case("numpy.linalg.slogdet", lambda xp: lambda a: xp.linalg.slogdet(a)[1], lambda r: (spd(r),))
case("numpy.linalg.slogdet", lambda xp: lambda a: xp.linalg.slogdet(a)[1], lambda r: (r.normal(size=(2, 3, 3)),),
     variant="stack", structures=_BLOCKS, jax=False)
case("numpy.linalg.det", lambda xp: xp.linalg.det, lambda r: (r.normal(size=(4, 4)),))
case("numpy.linalg.det", lambda xp: xp.linalg.det, lambda r: (r.normal(size=(3, 2, 2)),), variant="stack",
     structures=_BLOCKS)

_TRI = "reads the lower triangle (NumPy); JAX reads the symmetric part, so its cross-check uses symmetric inputs"
case("numpy.linalg.cholesky", lambda xp: xp.linalg.cholesky, lambda r: (spd(r),), jax=False, note=_TRI)
case("numpy.linalg.cholesky", lambda xp: lambda a: xp.linalg.cholesky(_sym(xp, a)), lambda r: (spd(r, 3, (2,)),),
     variant="symmetric stack")
case("numpy.linalg.cholesky", lambda xp: lambda a: xp.linalg.cholesky(a, upper=True), lambda r: (spd(r, 3),),
     jax=False, variant="upper")
case("numpy.linalg.cholesky", lambda xp: lambda a: xp.linalg.cholesky(_sym(xp, a)),
     lambda r: (spd(r, DENSE_PARTIAL_MAX + 2),), variant="large: a network of products")

_EIG = "distinct eigenvalues assumed; " + _TRI
case("numpy.linalg.eigvalsh", lambda xp: xp.linalg.eigvalsh, lambda r: (r.normal(size=(4, 4)),), jax=False,
     note=_EIG)
case("numpy.linalg.eigvalsh", lambda xp: lambda a: xp.linalg.eigvalsh(_sym(xp, a), UPLO="U"),
     lambda r: (r.normal(size=(2, 3, 3)),), variant="UPLO='U' symmetric stack")
def _real_spectrum_matrix(r, n=4):
    """A non-symmetric matrix with distinct real eigenvalues: S D S⁻¹."""
    s = r.normal(size=(n, n)) + 2 * np.eye(n)
    return s @ np.diag(np.arange(1.0, n + 1) + r.uniform(0, 0.3, n)) @ np.linalg.inv(s)


case("numpy.linalg.eigvals", lambda xp: lambda a: xp.linalg.eigvals(a) if xp is np else xp.real(xp.linalg.eigvals(a)),
     lambda r: (_real_spectrum_matrix(r),), jax=False,
     note="a matrix whose eigenvalues are real at the traced point (value-dependent; complex ones are refused)")
case("numpy.linalg.eig", lambda xp: lambda a: xp.linalg.eig(a)[1] ** 2, lambda r: (_real_spectrum_matrix(r, 3),),
     jax=False, note="unit eigenvectors (NumPy's); distinct real eigenvalues assumed: a Jacobian through "
     "eigenvectors of a repeated eigenvalue (to 1e-10 relative) is refused")
case("numpy.linalg.eigh", lambda xp: lambda a: xp.linalg.eigh(a)[1], lambda r: (r.normal(size=(4, 4)),),
     jax=False, note=_EIG + "; eigenvector signs are NumPy's (JAX is compared on sign-free functions); a Jacobian "
     "through eigenvectors of a repeated eigenvalue (to 1e-10 relative) is refused")
case("numpy.linalg.eigh", lambda xp: lambda a: xp.linalg.eigh(a, UPLO="U")[1], lambda r: (r.normal(size=(3, 3)),),
     jax=False, variant="UPLO='U' vectors")
case("numpy.linalg.eigh", lambda xp: lambda a: xp.linalg.eigh(_sym(xp, a))[1] ** 2,
     lambda r: (r.normal(size=(2, 3, 3)),), variant="squared vectors, symmetric stack")
case("numpy.linalg.eigh", lambda xp: lambda a: xp.linalg.eigh(_sym(xp, a))[1] ** 2,
     lambda r: (r.normal(size=(DENSE_PARTIAL_MAX + 2,) * 2),), variant="large, squared vectors: a network of products")

_SVD = "distinct non-zero singular values assumed; vector signs are NumPy's"
case("numpy.linalg.svd", lambda xp: lambda a: xp.linalg.svd(a, compute_uv=False), lambda r: (r.normal(size=(4, 3)),))
case("numpy.linalg.svd", lambda xp: lambda a: xp.linalg.svd(a, full_matrices=False)[0],
     lambda r: (r.normal(size=(4, 3)),), note=_SVD, variant="U, tall")
case("numpy.linalg.svd", lambda xp: lambda a: xp.linalg.svd(a, full_matrices=False)[2],
     lambda r: (r.normal(size=(3, 5)),), variant="Vh, wide")
case("numpy.linalg.svd", lambda xp: lambda a: xp.linalg.svd(a)[0] * xp.linalg.svd(a)[2],
     lambda r: (r.normal(size=(2, 3, 3)),), variant="U*Vh, square stack")
case("numpy.linalg.svd", lambda xp: lambda a: xp.linalg.svd(a, full_matrices=False)[0] ** 2,
     lambda r: (r.normal(size=(DENSE_PARTIAL_MAX + 3, DENSE_PARTIAL_MAX + 1)),), note=_SVD,
     variant="large, squared U: a network of products")
case("numpy.linalg.svdvals", lambda xp: xp.linalg.svdvals, lambda r: (r.normal(size=(2, 3, 4)),),
     structures=_BLOCKS)

case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a)[0], lambda r: (r.normal(size=(4, 3)),),
     note="full rank assumed; NumPy's signs (R's diagonal may be negative)")
case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a)[1], lambda r: (r.normal(size=(2, 3, 3)),),
     variant="R, square stack")
case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a, mode="r"), lambda r: (r.normal(size=(3, 5)),),
     variant="mode='r', wide")
case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a, mode="r"), lambda r: (r.normal(size=(4, 2)),),
     variant="mode='r', tall", jax=False)
case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a, mode="complete")[0], lambda r: (r.normal(size=(3, 4)),),
     variant="mode='complete' Q, wide", jax=False)
case("numpy.linalg.qr", lambda xp: lambda a: xp.linalg.qr(a)[0] * xp.linalg.qr(a)[1][0],
     lambda r: (r.normal(size=(DENSE_PARTIAL_MAX + 3, DENSE_PARTIAL_MAX + 1)),),
     variant="large, Q times R's first row: a network of products")

case("numpy.linalg.cond", lambda xp: xp.linalg.cond, lambda r: (r.normal(size=(3, 3)),))
case("numpy.linalg.cond", lambda xp: lambda x: xp.linalg.cond(x, -2), lambda r: (r.normal(size=(2, 4, 3)),),
     variant="p=-2, tall stack")
case("numpy.linalg.cond", lambda xp: lambda x: xp.linalg.cond(x, "fro"), lambda r: (spd(r, 3),), variant="p='fro'",
     jax=False)
case("numpy.linalg.cond", lambda xp: lambda x: xp.linalg.cond(x, np.inf), lambda r: (spd(r, 3),), variant="p=inf")
case("numpy.linalg.matrix_rank", lambda xp: lambda a: a[:, :int(xp.linalg.matrix_rank(a[:, :2]))] * 2.0,
     lambda r: (r.normal(size=(3, 3)),), jax=False,
     note="NumPy's rank at the traced point, read as argmax is (piecewise constant: no derivative); JAX's rank is "
          "a traced integer, which cannot size a slice")
case("numpy.linalg.tensorinv", lambda xp: lambda a: xp.linalg.tensorinv(a, ind=1),
     lambda r: (spd(r, 4).reshape(4, 2, 2),))
case("numpy.linalg.tensorsolve", lambda xp: lambda a, b: xp.linalg.tensorsolve(a, b, axes=(0,)),
     lambda r: (np.moveaxis(spd(r, 6).reshape(2, 3, 2, 3), 2, 0), r.normal(size=(2, 3))), argnums=(0, 1))
case("numpy.linalg.pinv", lambda xp: xp.linalg.pinv, lambda r: (r.normal(size=(4, 3)),),
     note="full rank assumed (a rank-deficient matrix is refused)")
case("numpy.linalg.pinv", lambda xp: xp.linalg.pinv, lambda r: (r.normal(size=(2, 2, 3)),), variant="wide stack",
     jax=False)
case("numpy.linalg.lstsq", lambda xp: lambda a, b: xp.linalg.lstsq(a, b)[0],
     lambda r: (r.normal(size=(5, 3)), r.normal(size=5)), argnums=(0, 1), note="full rank assumed")
case("numpy.linalg.lstsq", lambda xp: lambda a, b: xp.linalg.lstsq(a, b)[1],
     lambda r: (r.normal(size=(5, 3)), r.normal(size=(5, 2))), argnums=(0, 1), variant="residuals")

# JAX is asked about some orders only: each JAX check costs ~1 s, finite differences check them all
for _o in [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1.5]:
    case("numpy.linalg.norm", lambda xp, o=_o: lambda x: xp.linalg.norm(x, ord=o), lambda r: (r.normal(size=5),),
         variant=f"vector ord={_o}", jax=_o in (1, np.inf, -1.5))
case("numpy.linalg.norm", lambda xp: xp.linalg.norm, lambda r: (r.normal(size=(2, 3, 2)),), variant="3-d, ord=None",
     jax=False)
case("numpy.linalg.norm", lambda xp: lambda x: xp.linalg.norm(x, ord=1, axis=-1, keepdims=True),
     lambda r: (r.normal(size=(3, 4)),), variant="ord=1, axis=-1, keepdims", jax=False)
for _o in [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]:
    case("numpy.linalg.norm", lambda xp, o=_o: lambda x: xp.linalg.norm(x, ord=o), lambda r: (r.normal(size=(4, 3)),),
         variant=f"matrix ord={_o}", jax=_o in ("nuc", -2, np.inf))
case("numpy.linalg.norm", lambda xp: lambda x: xp.linalg.norm(x, ord=2, axis=(2, 0), keepdims=True),
     lambda r: (r.normal(size=(3, 2, 4)),), variant="ord=2, axis=(2, 0), keepdims")
case("numpy.linalg.norm", lambda xp: lambda x: xp.linalg.norm(x, ord=-np.inf, axis=(0, -1)),
     lambda r: (r.normal(size=(3, 2, 4)),), variant="ord=-inf, axis=(0, -1)", jax=False)
case("numpy.linalg.vector_norm", lambda xp: lambda x: xp.linalg.vector_norm(x, ord=3, axis=(0, 2)),
     lambda r: (r.normal(size=(3, 2, 4)),))
case("numpy.linalg.matrix_norm", lambda xp: lambda x: xp.linalg.matrix_norm(x, ord="nuc", keepdims=True),
     lambda r: (r.normal(size=(2, 3, 4)),))
