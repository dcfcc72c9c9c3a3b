"""``scipy.spatial.distance``'s ``cdist``, ``pdist``, ``squareform`` and the distances of one pair of
vectors (``euclidean(u, v)``, ``minkowski(u, v, p)``, …) of traced arrays.

SciPy computes distances in compiled code, which cannot see traced values; while ``f`` runs on
traced arguments these functions are replaced on their module (see
:func:`jacc.constructors.swap_during_traces`), and a call with a traced argument is recorded as
NumPy arithmetic on the pairs of rows: ``cdist`` over every pair, ``pdist`` over the pairs
``i < j`` in SciPy's condensed order. Metrics: ``'euclidean'``, ``'sqeuclidean'``,
``'cityblock'``, ``'minkowski'`` (``p=``), ``'chebyshev'``, ``'cosine'``, ``'correlation'``, ``'braycurtis'``,
``'seuclidean'`` (``V=``), ``'mahalanobis'`` (``VI=``), weights ``w=`` where SciPy takes them,
and a Python function of two rows. Defaults SciPy computes from the data (``V``, ``VI``) are
computed the same way, from the traced rows.

A Euclidean distance of zero (a point with itself, ``cdist(X, X)``'s diagonal) has no derivative;
there the trace gives the derivative 0 (a subgradient) rather than NaN, reading the distances'
values to find the zeros (the trace is then value-dependent).

>>> import numpy as np, jacc, scipy.spatial.distance as dist
>>> jacc.jacobian(lambda x: dist.pdist(x.reshape(2, 2)))(np.array([0.0, 0.0, 3.0, 4.0]))
array([[-0.6, -0.8,  0.6,  0.8]])
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from ..constructors import routed, swap_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case


def _root(s):
    """``sqrt(s)`` of squared distances, with the derivative 0 where a distance is zero (see above)."""
    if not isinstance(s, Tracer):
        return np.sqrt(s)
    zero = s == 0  # (a recorded mask: a later call with a distance of zero, unseen here, takes it too)
    return np.where(zero, 0.0, np.sqrt(np.where(zero, 1.0, s)))


def _euclidean(d, w=None, **_):
    return _root(np.sum(d * d if w is None else w * d * d, axis=-1))


def _minkowski(d, p=2.0, w=None, **_):
    if p == 2:
        return _euclidean(d, w)
    a = np.abs(d)
    if np.isinf(p):
        if w is not None:
            raise UnsupportedOperationError(f"scipy.spatial.distance with metric 'minkowski', p=inf and w= at "
                                            f"{call_site()} is not recorded; leave out the weights")
        return np.max(a, axis=-1)
    return np.sum(a ** p if w is None else w * a ** p, axis=-1) ** (1.0 / p)


def _cosine(u, v, w=None):
    w = 1.0 if w is None else w
    return 1.0 - np.sum(w * u * v, axis=-1) / np.sqrt(np.sum(w * u * u, axis=-1) * np.sum(w * v * v, axis=-1))


def _centred(x, w):
    if w is None:
        return x - np.mean(x, axis=-1, keepdims=True)
    return x - np.sum(w * x, axis=-1, keepdims=True) / np.sum(w)


#: metric -> (what it reads: "d" the rows' difference, "uv" both rows, "d+data" the difference and
#: a function giving every row (for SciPy's data-derived default), the formula)
_METRICS: dict[str, tuple[str, Callable]] = {
    "euclidean": ("d", _euclidean),
    "sqeuclidean": ("d", lambda d, w=None, **_: np.sum(d * d if w is None else w * d * d, axis=-1)),
    "cityblock": ("d", lambda d, w=None, **_: np.sum(np.abs(d) if w is None else w * np.abs(d), axis=-1)),
    "minkowski": ("d", _minkowski),
    "chebyshev": ("d", lambda d, **_: np.max(np.abs(d), axis=-1)),
    "cosine": ("uv", lambda u, v, w=None, **_: _cosine(u, v, w)),
    "correlation": ("uv", lambda u, v, w=None, **_: _cosine(_centred(u, w), _centred(v, w), w)),
    "braycurtis": ("uv", lambda u, v, w=None, **_: np.sum(np.abs(u - v) if w is None else w * np.abs(u - v), axis=-1)
                   / np.sum(np.abs(u + v) if w is None else w * np.abs(u + v), axis=-1)),
    "seuclidean": ("d+data", lambda d, data, V=None, **_: _root(
        np.sum(d * d / (np.var(data(), axis=0, ddof=1) if V is None else V), axis=-1))),
    "mahalanobis": ("d+data", lambda d, data, VI=None, **_: _root(np.einsum(
        "...i,ij,...j->...", d, np.linalg.inv(np.cov(np.transpose(data()))).T if VI is None else VI, d))),
}
_ALIASES = {"euclid": "euclidean", "eu": "euclidean", "e": "euclidean", "sqe": "sqeuclidean",
            "sqeuclid": "sqeuclidean", "cblock": "cityblock", "manhattan": "cityblock",
            "cityblock": "cityblock", "taxicab": "cityblock", "mi": "minkowski", "pnorm": "minkowski",
            "cos": "cosine", "chebychev": "chebyshev", "cheby": "chebyshev", "ch": "chebyshev",
            "chebyshev": "chebyshev", "mahalanobis": "mahalanobis", "mahal": "mahalanobis",
            "correlation": "correlation", "co": "correlation", "se": "seuclidean", "bc": "braycurtis"}


def _distances(what: str, A, B, i: np.ndarray, j: np.ndarray, metric: Any, kwargs: dict, data) -> Any:
    """``metric`` between rows ``A[i]`` and ``B[j]`` (a vector, one entry per pair)."""
    if kwargs.get("out") is not None:
        raise UnsupportedOperationError(f"scipy.spatial.distance.{what} at {call_site()}: out= cannot hold "
                                        "traced distances; use the result")
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    if callable(metric):
        if not len(i):
            return np.zeros(0)
        return np.stack([metric(A[a], B[b], **kwargs) for a, b in zip(i, j)])
    name = _ALIASES.get(str(metric).lower(), str(metric).lower())
    if name not in _METRICS:
        raise UnsupportedOperationError(
            f"scipy.spatial.distance.{what} with metric={metric!r} at {call_site()} is not recorded for traced "
            f"arrays; metrics recorded: {', '.join(sorted(_METRICS))}, or a Python function of two rows")
    reads, formula = _METRICS[name]
    known = set(inspect.signature(formula).parameters) - {"d", "u", "v", "data", "_"}
    extra = set(kwargs) - known
    if extra:
        raise UnsupportedOperationError(f"scipy.spatial.distance.{what} with metric {name!r} at {call_site()}: "
                                        f"keyword(s) {sorted(extra)} not supported (it takes {sorted(known)})")
    u, v = A[i], B[j]
    if reads == "uv":
        return formula(u, v, **kwargs)
    if reads == "d+data":
        return formula(u - v, data, **kwargs)  # (data(): every row, where a default needs them)
    return formula(u - v, **kwargs)


def _rows(X, what: str, name: str):
    x = X if isinstance(X, Tracer) else np.asarray(X, dtype=float)  # (a list holding traced rows stacks)
    if np.ndim(x) != 2:
        raise ValueError(f"{name} must be a 2-dimensional array, got shape {np.shape(x)} "
                         f"(scipy.spatial.distance.{what} at {call_site()})")
    return x


def _cdist(XA, XB, metric="euclidean", **kwargs):
    A, B = _rows(XA, "cdist", "XA"), _rows(XB, "cdist", "XB")
    if np.shape(A)[1] != np.shape(B)[1]:
        raise ValueError(f"XA and XB must have the same number of columns, got {np.shape(A)[1]} and "
                         f"{np.shape(B)[1]} (scipy.spatial.distance.cdist at {call_site()})")
    ma, mb = np.shape(A)[0], np.shape(B)[0]
    i, j = np.repeat(np.arange(ma), mb), np.tile(np.arange(mb), ma)
    d = _distances("cdist", A, B, i, j, metric, kwargs, lambda: np.concatenate([A, B]))
    return np.reshape(d, (ma, mb))


def _pdist(X, metric="euclidean", **kwargs):
    A = _rows(X, "pdist", "X")
    i, j = np.triu_indices(np.shape(A)[0], 1)
    return _distances("pdist", A, A, i, j, metric, kwargs, lambda: A)


def _squareform(X, force="no", checks=True):
    n = np.ndim(X)
    if force == "tomatrix" or (force == "no" and n == 1):
        k = np.shape(X)[0]
        m = int(round((1 + np.sqrt(1 + 8 * k)) / 2))
        if m * (m - 1) // 2 != k:
            raise ValueError(f"incompatible vector size {k}: it must be a binomial coefficient n choose 2 "
                             f"(scipy.spatial.distance.squareform at {call_site()})")
        i, j = np.triu_indices(m, 1)
        upper = np.zeros((m, m), dtype=np.intp)
        upper[i, j] = upper[j, i] = np.arange(1, k + 1)  # 0: the diagonal, a zero
        return np.concatenate([np.zeros(1), X])[upper]
    m = np.shape(X)[0]
    if n != 2 or np.shape(X)[1] != m:
        raise ValueError(f"squareform expects a condensed vector or a square matrix, got shape {np.shape(X)} "
                         f"(scipy.spatial.distance.squareform at {call_site()})")
    if checks:  # SciPy's validation (values read, as SciPy does; the result does not depend on them)
        if isinstance(X, Tracer):  # (every call checks them: f runs)
            X.tape.note_value_dependence("scipy.spatial.distance.squareform's checks of a matrix")
        v = np.asarray(X.value if isinstance(X, Tracer) else X)
        if not np.array_equal(v, v.T) or np.any(np.diag(v) != 0):
            raise ValueError(f"the distance matrix must be symmetric with a zero diagonal (scipy.spatial.distance."
                             f"squareform at {call_site()}); pass checks=False to skip the check")
    return X[np.triu_indices(m, 1)]


def _pair(name: str) -> Callable:
    """SciPy's distance function ``name`` of two vectors (``euclidean(u, v)``, ``minkowski(u, v, p)``):
    the metric's formula on the one pair, its arguments bound by SciPy's own signature."""
    def distance(original, *args, **kwargs):
        bound = inspect.signature(original).bind(*args, **kwargs)
        options = dict(bound.arguments)
        u, v = (_vector(options.pop(k), name, k) for k in ("u", "v"))
        if np.shape(u) != np.shape(v):
            raise ValueError(f"u and v must have the same length, got {np.shape(u)[0]} and {np.shape(v)[0]} "
                             f"(scipy.spatial.distance.{name} at {call_site()})")
        metric = name
        if name == "correlation" and not options.pop("centered", True):
            metric = "cosine"  # (SciPy's centered=False: the cosine distance)
        options = {k: w for k, w in options.items() if w is not None}
        one = np.zeros(1, dtype=np.intp)
        d = _distances(name, u[None, :], v[None, :], one, one, metric, options, lambda: _no_default(name))
        return d[0]
    return distance


def _no_default(name: str):
    what = {"seuclidean": "V (the variances)", "mahalanobis": "VI (the inverse covariance)"}[name]
    raise TypeError(f"scipy.spatial.distance.{name} of one pair needs {what} (at {call_site()})")


def _vector(x, name: str, arg: str):
    x = x if isinstance(x, Tracer) else np.asarray(x, dtype=float)
    if np.ndim(x) > 1:  # (SciPy squeezes a single row or column, and refuses the rest)
        x = np.squeeze(x)
    if np.ndim(x) != 1:
        raise ValueError(f"{arg} must be 1-dimensional, got shape {np.shape(x)} "
                         f"(scipy.spatial.distance.{name} at {call_site()})")
    return x


_IMPLEMENTED = {"cdist": _cdist, "pdist": _pdist, "squareform": _squareform}
#: SciPy's functions of one pair of vectors
_PAIRS = ("euclidean", "sqeuclidean", "cityblock", "minkowski", "chebyshev", "cosine", "correlation",
          "braycurtis", "seuclidean", "mahalanobis")
swap_during_traces("scipy.spatial.distance", {
    **{n: routed(lambda _original, *args, f=f, **kwargs: f(*args, **kwargs)) for n, f in _IMPLEMENTED.items()},
    **{n: routed(_pair(n)) for n in _PAIRS}})


def supported() -> list[str]:
    """The ``scipy.spatial.distance`` functions a trace records."""
    return [f"scipy.spatial.distance.{n}" for n in (*_IMPLEMENTED, *_PAIRS)]


# -- examples (the coverage page and its tests; finite differences of SciPy are the reference) ---


def _dist(xp):
    import scipy.spatial.distance as dist

    return dist


def _x(r, shape):
    return r.normal(size=shape)


for _metric in ("euclidean", "sqeuclidean", "cityblock", "chebyshev", "cosine", "correlation"):
    case("scipy.spatial.distance.cdist", lambda xp, m=_metric: lambda a, b: _dist(xp).cdist(a, b, m),
         lambda r: (_x(r, (3, 2)), _x(r, (4, 2))), argnums=(0, 1), jax=False, variant=_metric)
case("scipy.spatial.distance.cdist", lambda xp: lambda a, b: _dist(xp).cdist(a, b, "minkowski", p=3.0),
     lambda r: (_x(r, (3, 2)), _x(r, (4, 2))), argnums=(0, 1), jax=False, variant="minkowski p=3")
case("scipy.spatial.distance.cdist", lambda xp: lambda a: _dist(xp).cdist(a, a, "mahalanobis"),
     lambda r: (_x(r, (5, 2)),), jax=False, variant="mahalanobis",
     note="VI from the rows, as SciPy; the diagonal's zero distances get the derivative 0")
case("scipy.spatial.distance.pdist", lambda xp: lambda a: _dist(xp).pdist(a), lambda r: (_x(r, (4, 3)),), jax=False)
for _metric in _PAIRS:
    case(f"scipy.spatial.distance.{_metric}", lambda xp, m=_metric: lambda a, b: getattr(_dist(xp), m)(
        a, b, *{"minkowski": (3.0,), "seuclidean": (np.array([1.0, 2.0, 0.5]),),
                "mahalanobis": (np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]]),)}.get(m, ())),
         lambda r: (_x(r, (3,)), _x(r, (3,))), argnums=(0, 1), jax=False)
case("scipy.spatial.distance.squareform", lambda xp: lambda v: _dist(xp).squareform(v), lambda r: (_x(r, (6,)),),
     jax=False, note="condensed to square (the diagonal zero) and back")
