"""``scipy.ndimage``'s linear filters of traced arrays: correlations with constant (or traced)
weights, recorded as NumPy's ``pad`` and a weighted sum of shifted slices, so their partials stay
index maps and diagonals (no dense n × n matrix).

While ``f`` runs on traced arguments ``correlate1d``, ``convolve1d``, ``correlate``, ``convolve``,
``gaussian_filter1d``, ``gaussian_filter``, ``uniform_filter1d``, ``uniform_filter``, ``sobel``,
``prewitt`` and ``laplace`` are replaced on the ``scipy.ndimage`` module (see
:func:`jacc.constructors.swap_during_traces`). Each is a sequence of one-dimensional
correlations, or one n-dimensional one, of the input padded as SciPy's ``mode`` extends it
(``reflect``, ``mirror``, ``nearest``, ``wrap``, ``constant`` with ``cval``, and their ``grid-``
names). The weights of a Gaussian or uniform filter are SciPy's own: its filter applied to a unit
impulse, so ``sigma``, ``order``, ``truncate``, ``radius``, ``size`` and ``origin`` mean what they
mean to SciPy. A filter costs one product per weight and entry. ``output=`` (an array to write
into) is refused by name; call the filter for its result.

>>> import numpy as np, scipy.ndimage, jacc
>>> J = jacc.jacobian(lambda x: scipy.ndimage.gaussian_filter1d(x, 1.0))(np.zeros(12))
>>> impulse = np.zeros(12)
>>> impulse[5] = 1.0
>>> bool(np.allclose(J[:, 5], scipy.ndimage.gaussian_filter1d(impulse, 1.0), rtol=1e-14, atol=1e-16))
True
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces
from ..trace import UnsupportedOperationError, call_site
from . import case

_PAD = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect", "nearest": "edge",
        "wrap": "wrap", "grid-wrap": "wrap", "constant": "constant", "grid-constant": "constant"}


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.ndimage.{what} at {call_site()}: {why}")


def _check(what: str, p: dict) -> None:
    if p.get("output") is not None:
        _refuse(what, "output= (an array written in place) is not recorded; use the filter's result")
    modes = p.get("mode", "reflect")
    for mode in (modes if isinstance(modes, (list, tuple)) else [modes]):
        if mode not in _PAD:
            _refuse(what, f"mode={mode!r} is not recorded; {', '.join(map(repr, _PAD))} are")


def _per_axis(value: Any, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) else [value] * n


def _correlate1d(x: Any, weights: Any, axis: int, mode: str, cval: float, origin: int = 0) -> Any:
    """SciPy's correlate1d: out[i] = Σⱼ w[j]·x[i + j − len(w)//2 − origin], x extended by ``mode``."""
    x = np.asarray(x) if _holds_tracer(x) else np.asarray(x, dtype=float)
    w = weights if _holds_tracer(weights) else np.asarray(weights, dtype=float)
    size = np.shape(w)[0]
    axis = axis % np.ndim(x)
    n = np.shape(x)[axis]
    if size == 0 or not -(size // 2) <= origin <= (size - 1) // 2:
        raise ValueError(f"invalid origin {origin} for {size} weights (scipy.ndimage at {call_site()})")
    left = size // 2 + origin
    pad = [(0, 0)] * np.ndim(x)
    pad[axis] = (left, size - 1 - left)
    extra = {"constant_values": cval} if _PAD[mode] == "constant" else {}
    padded = np.pad(x, pad, mode=_PAD[mode], **extra)
    out = None
    plain = np.asarray(w) if not _holds_tracer(w) else None
    for j in range(size):
        if plain is not None and plain[j] == 0.0:
            continue
        term = padded[(slice(None),) * axis + (slice(j, j + n),)] * w[j]
        out = term if out is None else out + term
    return x * 0.0 if out is None else out


def _weights(one_d: Callable, reach: int) -> np.ndarray:
    """The correlation weights of SciPy's 1-D filter ``one_d`` (of an array): its response to a unit
    impulse, reversed, trimmed to its support, over ``reach`` entries either side."""
    impulse = np.zeros(2 * reach + 1)
    impulse[reach] = 1.0
    w = np.asarray(one_d(impulse), dtype=float)[::-1]
    nonzero = np.flatnonzero(w)
    half = reach if not len(nonzero) else max(reach - nonzero[0], nonzero[-1] - reach)
    return w[reach - half:reach + half + 1]


def _reach(sigma: float, truncate: float, radius: Any) -> int:
    return int(radius) if radius is not None else int(truncate * float(sigma) + 0.5)


def _axes(x: Any, axes: Any) -> list[int]:
    nd = np.ndim(x)
    return list(range(nd)) if axes is None else [a % nd for a in (axes if isinstance(axes, (list, tuple)) else [axes])]


def _gaussian_filter1d(original, p):
    reach = _reach(p["sigma"], p["truncate"], p.get("radius"))
    w = _weights(lambda i: original(i, p["sigma"], order=p["order"], mode="constant", truncate=p["truncate"],
                                    radius=p.get("radius")), reach)
    return _correlate1d(p["input"], w, p["axis"], p["mode"], p["cval"])


def _gaussian_filter(original, p):
    import scipy.ndimage

    one_d = scipy.ndimage.gaussian_filter1d
    one_d = getattr(one_d, "__wrapped__", one_d)  # (SciPy's, under jacc's replacement)
    x = p["input"]
    axes = _axes(x, p.get("axes"))
    sigmas, orders = _per_axis(p["sigma"], len(axes)), _per_axis(p["order"], len(axes))
    modes, radii = _per_axis(p["mode"], len(axes)), _per_axis(p.get("radius"), len(axes))
    for axis, s, o, m, r in zip(axes, sigmas, orders, modes, radii):
        if s > 1e-15:  # (SciPy skips axes with a zero sigma)
            reach = _reach(s, p["truncate"], r)
            w = _weights(lambda i: one_d(i, s, order=o, mode="constant", truncate=p["truncate"], radius=r), reach)
            x = _correlate1d(x, w, axis, m, p["cval"])
    return x


def _uniform(size: int, origin: int) -> np.ndarray:
    return np.full(int(size), 1.0 / int(size)), int(origin)


def _uniform_filter1d(original, p):
    w, origin = _uniform(p["size"], p["origin"])
    return _correlate1d(p["input"], w, p["axis"], p["mode"], p["cval"], origin)


def _uniform_filter(original, p):
    x = p["input"]
    axes = _axes(x, p.get("axes"))
    for axis, s, m, o in zip(axes, _per_axis(p["size"], len(axes)), _per_axis(p["mode"], len(axes)),
                             _per_axis(p["origin"], len(axes))):
        if int(s) > 1:
            w, origin = _uniform(s, o)
            x = _correlate1d(x, w, axis, m, p["cval"], origin)
    return x


def _correlate1d_call(original, p):
    return _correlate1d(p["input"], p["weights"], p["axis"], p["mode"], p["cval"], p["origin"])


def _convolve1d_call(original, p):  # SciPy: correlate with the weights reversed and the origin negated
    w = p["weights"]
    size = np.shape(w)[0]
    origin = -p["origin"] - (1 if size % 2 == 0 else 0)
    return _correlate1d(p["input"], w[::-1], p["axis"], p["mode"], p["cval"], origin)


def _correlate_nd(x: Any, w: Any, mode: str, cval: float, origins: list[int]) -> Any:
    """The n-dimensional correlation: one shifted slice of the padded input per weight."""
    x = np.asarray(x) if _holds_tracer(x) else np.asarray(x, dtype=float)
    shape = np.shape(w)
    if len(shape) != np.ndim(x):
        raise ValueError(f"the weights have {len(shape)} dimensions where the input has {np.ndim(x)} "
                         f"(scipy.ndimage at {call_site()})")
    lefts = [k // 2 + o for k, o in zip(shape, origins)]
    extra = {"constant_values": cval} if _PAD[mode] == "constant" else {}
    padded = np.pad(x, [(a, k - 1 - a) for a, k in zip(lefts, shape)], mode=_PAD[mode], **extra)
    plain = None if _holds_tracer(w) else np.asarray(w, dtype=float)
    out = None
    for at in np.ndindex(*shape):
        if plain is not None and plain[at] == 0.0:
            continue
        term = padded[tuple(slice(j, j + n) for j, n in zip(at, np.shape(x)))] * w[at]
        out = term if out is None else out + term
    return x * 0.0 if out is None else out


def _correlate(original, p):
    if not isinstance(p["mode"], str):
        _refuse("correlate", "a mode per axis is not recorded for the n-dimensional correlation")
    return _correlate_nd(p["input"], p["weights"], p["mode"], p["cval"],
                         _per_axis(p["origin"], np.ndim(p["weights"])))


def _convolve(original, p):
    w = p["weights"]
    flipped = w[tuple(slice(None, None, -1) for _ in range(np.ndim(w)))]
    origins = [-o - (1 if k % 2 == 0 else 0) for o, k in zip(_per_axis(p["origin"], np.ndim(w)), np.shape(w))]
    if not isinstance(p["mode"], str):
        _refuse("convolve", "a mode per axis is not recorded for the n-dimensional convolution")
    return _correlate_nd(p["input"], flipped, p["mode"], p["cval"], origins)


def _edges(smooth: list[float]) -> Callable:
    """sobel and prewitt: a central difference along ``axis``, ``smooth`` along the others."""
    def run(original, p):
        x = p["input"]
        axis = p["axis"] % np.ndim(x)
        modes = _per_axis(p["mode"], np.ndim(x))
        x = _correlate1d(x, [-1.0, 0.0, 1.0], axis, modes[axis], p["cval"])
        for other in range(np.ndim(x)):
            if other != axis:
                x = _correlate1d(x, smooth, other, modes[other], p["cval"])
        return x
    return run


def _laplace(original, p):
    x = p["input"]
    modes = _per_axis(p["mode"], np.ndim(x))
    out = None
    for axis in range(np.ndim(x)):
        term = _correlate1d(x, [1.0, -2.0, 1.0], axis, modes[axis], p["cval"])
        out = term if out is None else out + term
    return out


def _checked(what: str, run: Callable) -> Callable:
    """``run`` with SciPy's arguments by name, after refusing what is not recorded."""
    def checked(original, bound):
        p = dict(bound.arguments)
        _check(what, p)
        for name in ("sigma", "size", "origin", "truncate", "radius", "order", "cval"):
            if _holds_tracer(p.get(name)):
                _refuse(what, f"{name} must be a constant (only the input, and correlate's weights, may be traced)")
        return run(original, p)
    return checked


_FILTERS = {
    "correlate1d": _correlate1d_call, "convolve1d": _convolve1d_call, "correlate": _correlate,
    "convolve": _convolve, "gaussian_filter1d": _gaussian_filter1d, "gaussian_filter": _gaussian_filter,
    "uniform_filter1d": _uniform_filter1d, "uniform_filter": _uniform_filter,
    "sobel": _edges([1.0, 2.0, 1.0]), "prewitt": _edges([1.0, 1.0, 1.0]), "laplace": _laplace,
}
swap_during_traces("scipy.ndimage", {n: replacement(_checked(n, run)) for n, run in _FILTERS.items()}, eager=True)


def supported() -> list[str]:
    """The ``scipy.ndimage`` functions a trace records."""
    return [f"scipy.ndimage.{n}" for n in _FILTERS]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _nd():
    import scipy.ndimage as nd
    return nd


_INDEX_MAPS = frozenset({"select", "embed", "identity", "scaled identity"})  # a filter's partials: no products


case("scipy.ndimage.gaussian_filter", lambda xp: lambda x: _nd().gaussian_filter(x, (1.0, 0.7)),
     lambda r: (r.normal(size=(6, 5)),), jax=False, structures=_INDEX_MAPS,
     note="separable: per axis, np.pad as SciPy's mode extends the input, then a weighted sum of shifted slices "
          "(SciPy's own weights, from its filter of an impulse)")
case("scipy.ndimage.uniform_filter1d", lambda xp: lambda x: _nd().uniform_filter1d(x, 4, mode="nearest"),
     lambda r: (r.normal(size=9),), jax=False)
case("scipy.ndimage.correlate", lambda xp: lambda x, w: _nd().correlate(x, w, mode="wrap"),
     lambda r: (r.normal(size=(5, 4)), r.normal(size=(3, 2))), argnums=(0, 1), jax=False,
     note="traced weights too (a product of the two)")
case("scipy.ndimage.sobel", lambda xp: lambda x: _nd().sobel(x, axis=0, mode="mirror"),
     lambda r: (r.normal(size=(5, 6)),), jax=False)
