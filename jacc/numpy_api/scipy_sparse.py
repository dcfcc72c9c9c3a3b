"""A constant ``scipy.sparse`` matrix times a traced array: ``S @ x``, ``S.dot(x)``, ``x @ S``
(and ``S * x`` for the ``spmatrix`` classes, whose ``*`` is the matrix product).

SciPy multiplies in compiled code, which cannot see traced values; while ``f`` runs on traced
arguments the sparse base class's product dispatch is replaced (see
:func:`jacc.constructors.swap_method_during_traces`), and a product with a traced operand is
recorded as the product with the matrix made dense. jacc's partials have no sparse structure yet:
a gather of the entries' columns, the entries and a sum into rows compose to a dense block anyway
(for a 2,000-point Laplacian that route took a 1.8 s first call and a 6,000 × 6,000
intermediate, the dense constant 0.34 s). So the matrix's m·n values must fit: above
:data:`MAX_DENSE` entries the product is refused with its size. The result is a dense array, as
SciPy's. ``scipy.sparse.linalg.spsolve`` with a constant sparse matrix is the dense solve, and
``expm_multiply(A, B)`` is ``expm(A) @ B``. A sparse matrix built from traced values
(``csr_array((x, (i, j)))``) is not supported.

>>> import numpy as np, jacc, scipy.sparse as sparse
>>> S = sparse.csr_array(np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]]))
>>> jacc.jacobian(lambda x: S @ (x ** 2))(np.array([1.0, 2.0, 3.0]))
array([[ 4.,  0.,  6.],
       [ 0., 12.,  0.]])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces, swap_method_during_traces
from ..trace import UnsupportedOperationError, _sparse, call_site
from . import case

_BASE = "scipy.sparse._base:_spbase"


#: The most entries a sparse matrix may have made dense (2.5·10⁷: 200 MB of float64)
MAX_DENSE = 25_000_000


def _dense(a: Any, what: str) -> Any:
    """A constant sparse matrix as a dense array, within :data:`MAX_DENSE` entries (anything else
    as it is); ``what`` names the call in the refusal."""
    if not _sparse(a):
        return a
    m, n = a.shape
    if m * n > MAX_DENSE:
        raise UnsupportedOperationError(
            f"{what.format(f'a sparse {m:,}×{n:,} matrix')} at {call_site()}: jacc records it with the matrix "
            f"dense ({m * n * 8 / 1e9:.1f} GB; at most {MAX_DENSE:,} entries), having no sparse partials yet")
    return a.toarray().astype(float, copy=False)


def sparse_times(s: Any, x: Any) -> Any:
    """``s @ x`` for a constant sparse matrix ``s`` (m × n) and a traced ``x`` of shape (n,) or (n, k)."""
    m, n = s.shape
    if np.ndim(x) not in (1, 2) or np.shape(x)[0] != n:
        raise ValueError(f"dimension mismatch at {call_site()}: a sparse {m}×{n} matrix times an array of "
                         f"shape {np.shape(x)}")
    return _dense(s, "{} times a traced array") @ x


def _matmul(original: Callable) -> Callable:
    def dispatch(self, other):
        if not _holds_tracer(other):
            return original(self, other)
        return sparse_times(self, other)
    return dispatch


def _rmatmul(original: Callable) -> Callable:
    def dispatch(self, other):
        if not _holds_tracer(other):
            return original(self, other)
        if np.ndim(other) == 1:
            return sparse_times(self.transpose(), other)  # x @ S = Sᵀ x
        return np.swapaxes(sparse_times(self.transpose(), np.swapaxes(other, -1, -2)), -1, -2)
    return dispatch


swap_method_during_traces(_BASE, "_matmul_dispatch", _matmul)
swap_method_during_traces(_BASE, "_rmatmul_dispatch", _rmatmul)


def _spsolve(original, bound):
    """``spsolve(A, b)``: the dense solve (SciPy's sparse LU's value to rounding)."""
    p = bound.arguments
    return np.linalg.solve(_dense(p["A"], "scipy.sparse.linalg.spsolve of {} and a traced array"), p["b"])


def _expm_multiply(original, bound):
    """``expm_multiply(A, B)``: ``expm(A) @ B``, the exponential SciPy's (a constant ``A``) or
    jacc's traced one (a traced dense ``A``); time points (``start=``…) are refused by name."""
    p = bound.arguments
    if any(p[k] is not None for k in ("start", "stop", "num", "endpoint")):
        raise UnsupportedOperationError(
            f"scipy.sparse.linalg.expm_multiply with start=/stop=/num= at {call_site()}: only the plain product "
            "expm(A) @ B is recorded; call it once per time point t with t * A")
    a = _dense(p["A"], "scipy.sparse.linalg.expm_multiply of {} and a traced array")
    import scipy.linalg

    return scipy.linalg.expm(a) @ p["B"]  # (scipy.linalg's replacement while a trace runs)


# eager: SciPy's expm_multiply meets int() of a traced A before any conversion that would retry
swap_during_traces("scipy.sparse.linalg", {"spsolve": replacement(_spsolve),
                                           "expm_multiply": replacement(_expm_multiply)}, eager=True)


def supported() -> list[str]:
    """The ``scipy.sparse`` functions a trace records."""
    return ["scipy.sparse.linalg.spsolve", "scipy.sparse.linalg.expm_multiply"]


def _laplacian(n: int) -> Any:
    import scipy.sparse as sparse

    return sparse.diags([np.ones(n - 1), -2.0 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="csr")


def _eye(n: int) -> Any:
    import scipy.sparse as sparse

    return sparse.eye(n, format="csr")


def _sparse_linalg(xp, dense: bool) -> Any:
    """scipy.sparse.linalg, or for JAX's cross-check (dense matrices) an object with its solve."""
    if not dense:
        import scipy.sparse.linalg as sla

        return sla
    import types

    return types.SimpleNamespace(spsolve=xp.linalg.solve)


def _sparse_case(xp, f: Callable) -> Callable:
    return f if xp is np else (lambda *a: f(*a, dense=True))  # (JAX's cross-check: the dense matrix)


case("scipy.sparse.csr_array.__matmul__",
     lambda xp: _sparse_case(xp, lambda x, dense=False: (_laplacian(6).toarray() if dense else _laplacian(6))
                             @ xp.sin(x) + x ** 3),
     lambda r: (r.standard_normal(6),), note="a constant sparse matrix times a traced array (1-D or 2-D, "
     "either side), recorded with the matrix dense (at most 2.5·10⁷ entries; no sparse partials yet)")
case("scipy.sparse.linalg.spsolve",
     lambda xp: _sparse_case(xp, lambda b, dense=False: _sparse_linalg(xp, dense).spsolve(
         _laplacian(5).toarray() - 3.0 * np.eye(5) if dense else _laplacian(5) - 3.0 * _eye(5), b ** 2)),
     lambda r: (r.standard_normal(5),), note="a constant sparse matrix and a traced right-hand side: the dense "
     "solve (SciPy's value to rounding; at most 2.5·10⁷ entries)")
case("scipy.sparse.linalg.expm_multiply",
     lambda xp: _sparse_case(xp, lambda b, dense=False: _sparse_linalg(xp, dense).expm_multiply(
         (_laplacian(4).toarray() if dense else _laplacian(4)) * 0.3, xp.sin(b))),
     lambda r: (r.standard_normal((4, 2)),), jax=False, note="expm(A) @ B, A constant (SciPy's exponential) or "
     "traced and dense (jacc's); time points refused (JAX has no expm_multiply)")
case("scipy.sparse.csr_array.__matmul__",
     lambda xp: _sparse_case(xp, lambda x, dense=False: xp.tanh(x) @ (_laplacian(4).toarray() if dense
                                                                       else _laplacian(4)) @ x.T),
     lambda r: (r.standard_normal((3, 4)),), variant="x @ S @ xᵀ")
