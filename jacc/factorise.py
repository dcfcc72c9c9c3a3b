"""One LU factorisation per matrix and call, shared by ``solve``, ``inv``, ``slogdet`` and ``det``
(and one ``eigh``, ``svd`` or ``qr`` per matrix, shared by its values, vectors and partials).

NumPy factorises its argument again in each of these. A Jacobian call of
``y @ solve(K, y) + slogdet(K)[1]`` evaluates ``solve`` and ``slogdet`` in the primal (the trace)
and ``K⁻¹`` in the partials (the program): three ``getrf`` calls on one ``K``, where one serves
all. Inside :func:`sharing` the factorisation of a matrix is kept, keyed by the array object, until
the outermost ``sharing`` block ends; jacc's traced ops and generated programs call the functions
below, so the trace and the program share it. Outside such a block nothing is kept.

Only square 2-D float arrays are factorised here (SciPy's LAPACK wrappers), and only inside
:func:`sharing`; stacks, other dtypes, calls outside a block, or a missing SciPy go to NumPy unchanged.

SciPy's wheels carry their own OpenBLAS beside NumPy's. Two thread pools alternating on the same
cores make each wait for the other's spinning workers: a 120×120 ``X @ Xᵀ`` followed by ``getrf``
and ``getrs`` took 7.8 ms instead of 0.3 ms on a 2-core machine. So while a block factorises, SciPy's
pool runs on one thread (``threadpoolctl``) where it is a different library from NumPy's; its
setting is restored when the last block in the process ends. Without ``threadpoolctl`` that cannot
be checked, and NumPy answers everything. Results are those of the same LAPACK routines NumPy uses
(``getrf``, ``getrs``; ``inv`` by ``getri`` from the factors), and singular matrices behave as in
NumPy: ``solve``/``inv`` raise ``LinAlgError("Singular matrix")``, ``slogdet`` is ``(0, -inf)``,
``det`` is 0.

>>> import numpy as np
>>> K = np.array([[4.0, 1.0], [1.0, 3.0]])
>>> before = factorisations()
>>> with sharing():
...     x = solve(K, np.ones(2))
...     s, logdet = slogdet(K)
>>> factorisations() - before, bool(np.isclose(logdet, np.log(11.0))), np.round(x, 4)
(1, True, array([0.1818, 0.2727]))
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from . import locks

_local = threading.local()
_made = [0]  # shared factorisations (LU, eigh, svd, qr) since import (for tests and the docstring above)

try:
    from scipy.linalg import lapack as _lapack
except ImportError:  # pragma: no cover - SciPy is a dependency, but keep NumPy's path working
    _lapack = None

# per dtype char: (getrf, getrs, getri, getri's workspace query), SciPy's raw LAPACK wrappers
_ROUTINES = {} if _lapack is None else {
    "d": (_lapack.dgetrf, _lapack.dgetrs, _lapack.dgetri, _lapack.dgetri_lwork),
    "f": (_lapack.sgetrf, _lapack.sgetrs, _lapack.sgetri, _lapack.sgetri_lwork)}
_LWORK: dict[tuple[str, int], int] = {}  # getri's optimal workspace per (dtype char, n)

_SLOGDET = type(np.linalg.slogdet(np.eye(1)))  # NumPy's (sign, logabsdet) named tuple


class _Pool:
    """SciPy's BLAS thread pools that are not NumPy's, held at one thread while any block factorises.

    Found once per process (threadpoolctl scans the loaded libraries: a few ms). ``usable`` is
    False where the pools cannot be inspected; then SciPy's LAPACK is not used at all.
    """

    def __init__(self) -> None:
        self.lock, self.users, self.saved = locks.lock(), 0, []
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self.usable, self.foreign = False, []
            return
        import os
        numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
        blas = ThreadpoolController().select(user_api="blas").lib_controllers
        self.usable = True
        self.foreign = [c for c in blas if not os.path.abspath(c.filepath).startswith(numpy_dir)]
        if len(blas) < 2:  # one BLAS in the process: NumPy and SciPy share its pool
            self.foreign = []

    def acquire(self) -> None:
        with self.lock:
            self.users += 1
            if self.users == 1:
                self.saved = [(c, c.get_num_threads()) for c in self.foreign]
                for c, n in self.saved:
                    if n > 1:
                        c.set_num_threads(1)

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                for c, n in self.saved:
                    c.set_num_threads(n)
                self.saved = []


_pool: _Pool | None = None


class _LU:
    __slots__ = ("a", "lu", "piv", "singular", "routines")

    def __init__(self, a: np.ndarray):
        self.routines = _ROUTINES[a.dtype.char]
        getrf = self.routines[0]
        self.a = a
        self.lu, self.piv, info = getrf(a)
        self.singular = info > 0  # an exact zero pivot, where NumPy says "Singular matrix"

    def solve(self, b: np.ndarray, trans: int = 0) -> np.ndarray:
        """``a⁻¹b``, or ``a⁻ᵀb`` with ``trans=1``: two triangular solves on the kept factors."""
        if self.singular:
            raise np.linalg.LinAlgError("Singular matrix")
        x, info = self.routines[1](self.lu, self.piv, b, trans=trans)
        return x

    def inverse(self) -> np.ndarray:
        """``a⁻¹`` by ``getri`` from the factors: 4n³/3 flops where solving against I takes 2n³
        (n = 120, one thread: 129 µs against 214 µs)."""
        if self.singular:
            raise np.linalg.LinAlgError("Singular matrix")
        _, _, getri, query = self.routines
        key = (self.a.dtype.char, self.a.shape[0])
        lwork = _LWORK.get(key)
        if lwork is None:
            lwork = _LWORK[key] = max(1, int(query(self.a.shape[0])[0]))
        x, info = getri(self.lu, self.piv, lwork=lwork)
        return x

    def parity(self) -> float:
        """The sign of the row permutation: −1 for an odd number of row swaps."""
        return -1.0 if np.count_nonzero(self.piv != np.arange(self.piv.size)) % 2 else 1.0


class sharing:
    """Keep factorisations until the outermost ``with sharing():`` ends (nesting is free)."""

    __slots__ = ("outer",)

    def __enter__(self) -> "sharing":
        self.outer = getattr(_local, "memo", None) is not None
        if not self.outer:
            _local.memo, _local.pinned = {}, False
        return self

    def __exit__(self, *exc) -> None:
        if not self.outer:
            _local.memo = None
            if _local.pinned:
                _local.pinned = False
                _pool.release()


def factorisations() -> int:
    """How many shared factorisations (LU, and kept ``eigh``, ``svd`` and ``qr`` decompositions)
    this process has computed (a counter for tests)."""
    return _made[0]


#: Matrices of at most this order are factorised without holding SciPy's pool at one thread:
#: OpenBLAS runs getrf/getrs below 10,000 entries, and its level-3 routines below 262,144
#: multiply-adds, on one thread anyway, and holding the pool costs about 5 µs per call (the thread
#: counts read and set twice: np.linalg.solve of a 5×5 matrix in a compiled plan, 23 µs a call)
UNPINNED_ORDER = 32


def _pinned(n: int = UNPINNED_ORDER + 1) -> bool:
    """Inside a :class:`sharing` block, with SciPy's pool held at one thread (held here on first
    use) for a matrix of order ``n`` above :data:`UNPINNED_ORDER`; False outside one (nothing would
    be shared: NumPy's own routine, on NumPy's pool) or where the pools cannot be inspected."""
    if getattr(_local, "memo", None) is None:
        return False
    if n <= UNPINNED_ORDER:
        return True
    if not _local.pinned:
        global _pool
        if _pool is None:
            _pool = _Pool()
        if not _pool.usable:
            return False
        _pool.acquire()
        _local.pinned = True
    return True


def _kept(fn: Any, a: Any, **kw) -> Any:
    """``fn(a, **kw)``, kept inside :class:`sharing` until its outermost block ends, keyed by the
    array object (LU factorisations, eigh, svd and qr); computed afresh outside a block."""
    memo = getattr(_local, "memo", None)
    if memo is None or type(a) is not np.ndarray:
        return fn(a, **kw)
    key = (fn.__name__, id(a), tuple(sorted(kw.items())))
    found = memo.get(key)
    if found is None or found[0] is not a:
        found = memo[key] = (a, fn(a, **kw))  # a kept alive: its id stays its own
        _made[0] += 1
    return found[1]


def _factor(a: Any) -> _LU | None:
    """The LU factorisation of ``a``, shared inside :class:`sharing`; None where NumPy should answer:
    outside a block, not a square 2-D float32/float64 ndarray, no SciPy or no threadpoolctl."""
    if type(a) is not np.ndarray or a.ndim != 2 or a.shape[0] != a.shape[1] or a.dtype.char not in _ROUTINES \
            or a.shape[0] == 0:
        return None
    return _kept(_LU, a) if _pinned(a.shape[0]) else None


def solve(a: Any, b: Any) -> Any:
    """``np.linalg.solve(a, b)`` (b a vector or a matrix of right-hand sides)."""
    ok = type(a) is np.ndarray and type(b) is np.ndarray and b.ndim in (1, 2) and b.dtype == a.dtype
    f = _factor(a) if ok else None
    return np.linalg.solve(a, b) if f is None else f.solve(b)


def inv(a: Any) -> Any:
    """``np.linalg.inv(a)``."""
    f = _factor(a)
    return np.linalg.inv(a) if f is None else f.inverse()


def inverse_along(a: Any, x: Any, axis: int, transposed: bool, negate: bool) -> Any:
    """±a⁻¹ (``transposed``: ±a⁻ᵀ) applied to ``axis`` of ``x``, that axis first in the result:
    ``einsum('ca,c...->a...', ±inv(a), x)`` for ``transposed``, ``einsum('ac,c...->a...', ...)``
    otherwise. Programs write a product with an inverse this way: the solve on the shared LU costs
    2n² per column, where ``inv`` costs 4n³/3 before its product (n = 120: 129 µs a call).

    >>> a, x = np.array([[4.0, 1.0], [2.0, 3.0]]), np.arange(6.0).reshape(3, 2)
    >>> bool(np.allclose(inverse_along(a, x, 1, True, True), -np.linalg.inv(a).T @ x.T))
    True
    """
    moved = np.moveaxis(x, axis, 0)
    rest = moved.shape[1:]
    columns = moved.reshape(moved.shape[0], -1)
    f = _factor(a) if type(x) is np.ndarray and x.dtype == a.dtype else None
    out = np.linalg.solve(a.T if transposed else a, columns) if f is None else f.solve(columns, int(transposed))
    if negate:
        np.negative(out, out=out)
    return out.reshape((a.shape[0],) + rest)


def slogdet(a: Any) -> Any:
    """``np.linalg.slogdet(a)``: ``(sign, log|det a|)``."""
    f = _factor(a)
    if f is None:
        return np.linalg.slogdet(a)
    if f.singular:
        return np.linalg.slogdet(np.zeros((1, 1), dtype=a.dtype))  # NumPy's (0, -inf)
    d = np.diagonal(f.lu)
    sign = np.prod(np.sign(d)) * f.parity()
    return _SLOGDET(sign.astype(d.dtype), np.sum(np.log(np.abs(d))))


def det(a: Any) -> Any:
    """``np.linalg.det(a)``."""
    f = _factor(a)
    return np.linalg.det(a) if f is None else np.prod(np.diagonal(f.lu)) * f.parity()


def inv_lower(a: Any) -> Any:
    """``np.linalg.inv`` of a lower-triangular matrix: LAPACK's trtri (n³/3 flops) inside a
    :class:`sharing` block, where the LU route takes 2n³; NumPy's ``inv`` elsewhere and for stacks."""
    if (type(a) is np.ndarray and a.ndim == 2 and a.dtype.char in _ROUTINES and a.shape[0]
            and _pinned(a.shape[0])):
        x, info = (_lapack.dtrtri if a.dtype.char == "d" else _lapack.strtri)(a, lower=1)
        if info == 0:
            return np.tril(x)
    return np.linalg.inv(a)


inv_lower.portable = lambda a, xp: xp.linalg.inv(a)  # the jax and torch backends' form


def solve_triangular(t: Any, b: Any, lower: bool = True) -> Any:
    """T⁻¹b for the lower (or upper) triangle T of ``t``: LAPACK's trtrs (n² per right-hand side)
    inside a :class:`sharing` block, where the LU route takes 2n³/3; NumPy's solve elsewhere."""
    if (type(t) is np.ndarray and t.ndim == 2 and t.dtype.char in _ROUTINES and t.shape[0]
            and type(b) is np.ndarray and b.ndim in (1, 2) and b.dtype == t.dtype and _pinned(t.shape[0])):
        x, info = (_lapack.dtrtrs if t.dtype.char == "d" else _lapack.strtrs)(t, b, lower=int(lower))
        if info == 0:
            return x
    return np.linalg.solve(np.tril(t) if lower else np.triu(t), b)


solve_triangular.portable = lambda t, b, lower=True, xp=np: xp.linalg.solve(xp.tril(t) if lower else xp.triu(t), b)

#: An LU pivot smaller than this fraction of the largest sends :func:`det_gradient` to the SVD
#: form: det(a)·a⁻ᵀ loses about (largest/smallest pivot)·ε of its relative accuracy.
PIVOT_RATIO = 1e-8


def adjugate_by_svd(a: Any, xp: Any = np) -> Any:
    """adj(a)ᵀ = det(U)·det(Vh)·U·diag(∏_{j≠i} sⱼ)·Vh for a matrix or a stack, exact at singular
    matrices too; ``xp`` is the array namespace (NumPy, ``jax.numpy`` or ``torch``)."""
    u, s, vh = xp.linalg.svd(a)
    one = xp.ones_like(s[..., :1])
    left = xp.cumprod(xp.concatenate([one, s[..., :-1]], -1), -1)
    right = xp.flip(xp.cumprod(xp.concatenate([one, xp.flip(s, (-1,))[..., :-1]], -1), -1), (-1,))
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return sign[..., None, None] * ((u * (left * right)[..., None, :]) @ vh)


def det_gradient(a: Any) -> Any:
    """∂det(a)/∂a = adj(a)ᵀ. From the shared LU, det(a)·a⁻ᵀ, when its pivots are well away from
    zero (one getri on the factors ``det`` made); otherwise, and for stacks, by the SVD
    (:func:`adjugate_by_svd`), which is exact at singular matrices but costs several times more."""
    f = _factor(a)
    if f is not None and not f.singular:
        d = np.diagonal(f.lu)
        m = np.abs(d) / _equilibrated(a, f.piv)
        if m.min() > PIVOT_RATIO * m.max():
            return (np.prod(d) * f.parity()) * f.inverse().T
    bad = ~np.isfinite(a).all(axis=(-2, -1))
    if bad.any():  # NaN where a matrix is not finite (nonfinite="propagate"): its SVD raised LinAlgError
        out = adjugate_by_svd(np.where(bad[..., None, None], 0.0, a))
        out[bad] = np.nan
        return out
    return adjugate_by_svd(a)


def _equilibrated(a: np.ndarray, piv: np.ndarray) -> np.ndarray:
    """The scale of each LU pivot of ``a`` (pivot rows ``piv``, LAPACK's swaps): its row's largest
    magnitude times its column's largest in the rows so scaled (LAPACK's dgeequ), so the pivots'
    ratio tells a nearly singular matrix from one with rows or columns of very different sizes (rows
    scaled by 1e8 … 1e-8 sent det's gradient to the SVD, 10⁴ times less accurate there)."""
    rows = np.abs(a).max(axis=1)
    rows[rows == 0] = 1.0
    cols = (np.abs(a) / rows[:, None]).max(axis=0)
    cols[cols == 0] = 1.0
    order = np.arange(a.shape[0])
    for i, p in enumerate(piv):  # (getrf's 0-based row swaps, applied in turn)
        order[i], order[p] = order[p], order[i]
    return rows[order] * cols


det_gradient.portable = adjugate_by_svd  # what the jax and torch backends run (no value branches there)

def eigh(a: Any, UPLO: str = "L") -> Any:
    """``np.linalg.eigh(a, UPLO)``, shared: the eigenvalue and eigenvector ops and the
    eigenvalues' partial each ask for it, so a call decomposed one matrix three times."""
    return _kept(np.linalg.eigh, a, UPLO=UPLO)


def eig(a: Any) -> Any:
    """``np.linalg.eig(a)``, shared as :func:`eigh` (values, vectors and both partials)."""
    return _kept(np.linalg.eig, a)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False) -> Any:
    """``np.linalg.svd``, shared when it computes vectors: U's and Vh's ops and the singular
    values' partial each ask for the same reduced decomposition. (The values alone,
    ``compute_uv=False``, are NumPy's own cheaper call, not kept.)"""
    if not compute_uv:
        return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=False, hermitian=hermitian)
    return _kept(np.linalg.svd, a, full_matrices=full_matrices, hermitian=hermitian)


def qr(a: Any, mode: str = "reduced") -> Any:
    """``np.linalg.qr(a, mode)``, shared as :func:`eigh`: Q's op, R's op and the partials of both
    ask for the same factorisation."""
    return _kept(np.linalg.qr, a, mode=mode)


#: NumPy's functions and their sharing replacements (the program generator swaps them in)
REPLACES = {np.linalg.solve: solve, np.linalg.inv: inv, np.linalg.slogdet: slogdet, np.linalg.det: det,
            np.linalg.eigh: eigh, np.linalg.eig: eig, np.linalg.svd: svd, np.linalg.qr: qr}
