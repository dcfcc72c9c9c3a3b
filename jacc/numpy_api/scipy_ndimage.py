"""``scipy.ndimage`` on traced arrays: linear filters, rank filters and interpolation along axes,
each recorded as NumPy ops whose partials stay index maps, diagonals and small per-axis blocks
(no dense n × n matrix).

While ``f`` runs on traced arguments these functions are replaced on the ``scipy.ndimage`` module
(see :func:`jacc.constructors.swap_during_traces`):

* **Linear filters** — ``correlate1d``, ``convolve1d``, ``correlate``, ``convolve``,
  ``gaussian_filter1d``, ``gaussian_filter``, ``uniform_filter1d``, ``uniform_filter``, ``sobel``,
  ``prewitt``, ``laplace``: one-dimensional correlations, or one n-dimensional one, of the input
  padded as SciPy's ``mode`` extends it (``reflect``, ``mirror``, ``nearest``, ``wrap``, ``constant``
  with ``cval``, and their ``grid-`` names), as a weighted sum of shifted slices. The weights of a
  Gaussian or uniform filter are SciPy's own: its filter applied to a unit impulse, so ``sigma``,
  ``order``, ``truncate``, ``radius``, ``size`` and ``origin`` mean what they mean to SciPy. One
  product per weight and entry.
* **Rank filters** — ``maximum_filter``, ``minimum_filter``, ``median_filter``, ``rank_filter``,
  ``percentile_filter``, ``maximum_filter1d``, ``minimum_filter1d``: the windows of the padded input
  stacked along a new axis (one slice per footprint position), then ``min``, ``max`` or the
  ``rank``-th entry of ``sort`` along it, with SciPy's rank rules (a median of an even window is its
  upper middle entry; a percentile's rank is ⌊count·q/100⌋). The partial picks one input entry
  per output entry. ``generic_filter`` hands its Python function each window of those (a 1-d
  array, as SciPy does), traced once per output entry.
* **Interpolation along each axis** — ``shift``, ``zoom``, ``affine_transform`` with a diagonal
  matrix (a scale per axis), ``spline_filter``, ``spline_filter1d``: linear in the input and
  separable, so along axis k the output is A_k times the input along k. A_k is SciPy's own 1-D
  function applied to each unit impulse (every ``order``, ``mode``, ``prefilter`` and ``grid_mode``
  as SciPy means it; ``cval`` adds SciPy's constant). A banded A_k (at most 8 entries per row: no
  spline prefilter) is recorded as gathers times weights, a prefiltered one as one product along
  the axis. ``rotate``, ``map_coordinates``, ``geometric_transform`` and a rotating or shearing
  ``affine_transform`` mix the axes and are refused by name.

SciPy first sees every call's arguments (on an all-zero input), so bad arguments raise SciPy's own
errors. ``output=`` (an array to write into, or a dtype other than float64) is refused by name; call
the function for its result. Parameters other than the input (and correlate's weights) must be
constants.

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
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case

_PAD = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect", "nearest": "edge",
        "wrap": "wrap", "grid-wrap": "wrap", "constant": "constant", "grid-constant": "constant"}


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.ndimage.{what} at {call_site()}: {why}")


def _check(what: str, p: dict) -> None:
    out = p.get("output")
    if out is not None and not (isinstance(out, (type, np.dtype, str)) and np.dtype(out) == np.float64):
        _refuse(what, "output= (an array written in place, or a dtype other than float64) is not recorded; "
                      "use the filter's result")
    modes = p.get("mode", "reflect")
    for mode in (modes if isinstance(modes, (list, tuple)) else [modes]):
        if mode not in _PAD:
            _refuse(what, f"mode={mode!r} is not recorded; {', '.join(map(repr, _PAD))} are")


def _per_axis(value: Any, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) else [value] * n


def _pad_axes(x: Any, pads: list[tuple[int, int]], modes: list[str], cval: float) -> Any:
    """``x`` extended by ``pads[k]`` entries along each axis ``k`` as ``modes[k]`` extends it."""
    for axis, (pad, mode) in enumerate(zip(pads, modes)):
        if pad != (0, 0):
            width = [(0, 0)] * np.ndim(x)
            width[axis] = pad
            extra = {"constant_values": cval} if _PAD[mode] == "constant" else {}
            x = np.pad(x, width, mode=_PAD[mode], **extra)
    return x


def _padded(x: Any, sizes: tuple, modes: list[str], cval: float, origins: list[int]) -> Any:
    """``x`` padded for a window of ``sizes`` centred at size//2 + origin along each axis."""
    lefts = [k // 2 + o for k, o in zip(sizes, origins)]
    return _pad_axes(x, [(a, k - 1 - a) for a, k in zip(lefts, sizes)], modes, cval)


def _shifted(padded: Any, at: tuple, shape: tuple) -> Any:
    """The slice of ``padded`` of ``shape`` starting at offset ``at``: the window entry ``at`` of
    every output."""
    return padded[tuple(slice(j, j + n) for j, n in zip(at, shape))]


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
    pads = [(0, 0)] * np.ndim(x)
    pads[axis] = (left, size - 1 - left)
    padded = _pad_axes(x, pads, [mode] * np.ndim(x), cval)
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
    one_d = _scipy("gaussian_filter1d")
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
    w = np.asarray(w, dtype=float)  # (a list too; traced weights stay traced)
    shape = np.shape(w)
    if len(shape) != np.ndim(x):
        raise ValueError(f"the weights have {len(shape)} dimensions where the input has {np.ndim(x)} "
                         f"(scipy.ndimage at {call_site()})")
    padded = _padded(x, shape, [mode] * len(shape), cval, origins)
    plain = None if _holds_tracer(w) else np.asarray(w, dtype=float)
    out = None
    for at in np.ndindex(*shape):
        if plain is not None and plain[at] == 0.0:
            continue
        term = _shifted(padded, at, np.shape(x)) * w[at]
        out = term if out is None else out + term
    return x * 0.0 if out is None else out


def _correlate(original, p):
    if not isinstance(p["mode"], str):
        _refuse("correlate", "a mode per axis is not recorded for the n-dimensional correlation")
    return _correlate_nd(p["input"], p["weights"], p["mode"], p["cval"],
                         _per_axis(p["origin"], np.ndim(p["weights"])))


def _convolve(original, p):
    w = np.asarray(p["weights"], dtype=float)
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
        for name in ("sigma", "size", "origin", "truncate", "radius", "order", "cval", "footprint", "rank",
                     "percentile", "shift", "zoom", "matrix", "offset", "output_shape"):
            if _holds_tracer(p.get(name)):
                _refuse(what, f"{name} must be a constant (only the input, and correlate's weights, may be traced)")
        return run(original, p)
    return checked


# -- rank filters: the rank-th smallest entry of each window ----------------------------------------

def _footprint(x: Any, p: dict) -> np.ndarray:
    """The filter's footprint over every axis of ``x`` (size-1 along axes that ``axes`` leaves out)."""
    nd = np.ndim(x)
    axes = _axes(x, p.get("axes"))
    if p.get("footprint") is not None:
        fp = np.asarray(p["footprint"], dtype=bool)
    else:
        fp = np.ones([int(s) for s in _per_axis(p["size"], len(axes))], dtype=bool)
    full = [1] * nd
    for a, k in zip(axes, fp.shape):
        full[a] = k
    return fp.reshape(full)


def _windows(x: Any, fp: np.ndarray, modes: list[str], cval: float, origins: list[int]) -> Any:
    """The entries of each window as axis 0: one shifted slice of the padded input per footprint
    position (C order, as SciPy counts them)."""
    x = np.asarray(x)
    padded = _padded(x, fp.shape, modes, cval, origins)
    return np.stack([_shifted(padded, at, np.shape(x)) for at in zip(*np.nonzero(fp))])


def _scipys(original: Callable, p: dict) -> np.ndarray:
    """SciPy's result for an all-zero input with these arguments: SciPy checks them (and raises as
    it would), and it gives the output's shape and the constant an extension by ``cval`` adds."""
    return original(np.zeros(np.shape(p["input"])), **{k: v for k, v in p.items() if k != "input"})


def _window_stack(p: dict) -> Any:
    """The entries of each window of a footprint filter's input as axis 0 (:func:`_windows`), with
    its footprint, modes and origins over the axes ``axes`` names."""
    x = p["input"]
    fp = _footprint(x, p)
    axes = _axes(x, p.get("axes"))
    modes, origins = ["reflect"] * np.ndim(x), [0] * np.ndim(x)
    for a, m, o in zip(axes, _per_axis(p["mode"], len(axes)), _per_axis(p["origin"], len(axes))):
        modes[a], origins[a] = m, int(o)
    return _windows(x, fp, modes, p["cval"], origins)


def _generic_filter(original, p):
    """``generic_filter``: SciPy hands ``function`` each window's entries (the footprint's, in C
    order) as a 1-d array and writes its number into the output; here each window of the traced
    input, so ``function`` is traced once per output entry (a Python callable; a LowLevelCallable
    is compiled code, refused)."""
    fn = p["function"]
    if not callable(fn) or type(fn).__name__ == "LowLevelCallable":
        _refuse("generic_filter", "its function is compiled code (a LowLevelCallable), which a trace cannot follow; "
                "pass a Python function of the window's 1-d array")
    _scipys(original, dict(p, function=lambda w, *a, **k: 0.0))
    stack = _window_stack(p)
    count, shape = np.shape(stack)[0], np.shape(p["input"])
    windows = np.reshape(np.moveaxis(stack, 0, -1), (-1, count))
    extra, keywords = tuple(p["extra_arguments"] or ()), dict(p["extra_keywords"] or {})

    def number(r):  # (SciPy converts each result to one float, and raises for anything else)
        if isinstance(r, Tracer) or (isinstance(r, (float, int, np.floating, np.integer)) and not isinstance(r, bool)):
            if np.ndim(r) == 0:
                return r
        raise TypeError(f"scipy.ndimage.generic_filter at {call_site()}: its function must return one real number "
                        "per window, not " + (f"an array of shape {np.shape(r)}" if np.ndim(r) else type(r).__name__))
    return np.reshape(np.stack([number(fn(windows[i], *extra, **keywords)) for i in range(np.shape(windows)[0])])
                      * 1.0, shape)


def _rank_filter(pick: Callable[[int, dict], int], checked: bool = False) -> Callable:
    """A filter taking the ``pick(count, p)``-th smallest entry of each window (of ``count``
    entries); ``checked``: SciPy has already seen the arguments."""
    def run(original, p):
        if not checked:
            _scipys(original, p)
        stack = _window_stack(p)
        count = np.shape(stack)[0]
        r = pick(count, p)
        if r == 0:
            return np.min(stack, axis=0)
        if r == count - 1:
            return np.max(stack, axis=0)
        return np.sort(stack, axis=0)[r]
    return run


def _rank_of(count: int, p: dict) -> int:
    r = int(p["rank"])
    return r + count if r < 0 else r


def _percentile_rank(count: int, p: dict) -> int:  # SciPy's rule: the floor of count·percentile/100
    q = float(p["percentile"])
    q = q + 100.0 if q < 0 else q
    return min(int(count * q / 100.0), count - 1)


def _filter1d(pick: Callable[[int], int]) -> Callable:
    """maximum_filter1d and minimum_filter1d: the n-dimensional filter with a footprint along ``axis``."""
    def run(original, p):
        _scipys(original, p)
        axis = p["axis"] % np.ndim(p["input"])
        return _rank_filter(pick, checked=True)(original, dict(p, footprint=None, axes=(axis,)))
    return run


# -- interpolation along each axis: shift, zoom, a diagonal affine_transform, the spline filters -----
# Each is linear in the input and separable: along axis k the output is A_k @ (the input along k),
# and with cval ≠ 0 plus a constant. A_k comes from SciPy itself, as its 1-D function's response to
# each unit impulse, so every order, mode and prefilter setting means what it means to SciPy.

_MATRICES: dict = {}
_TAPS = 8  # at most this many entries per row: gathers and weights, else one dense product


def _axis_matrix(one_d: Callable, n: int, key: tuple) -> np.ndarray:
    """The matrix of the linear 1-D map ``one_d`` on length-``n`` vectors (remembered per ``key``)."""
    if key not in _MATRICES:
        cols = []
        for j in range(n):
            impulse = np.zeros(n)
            impulse[j] = 1.0
            cols.append(np.asarray(one_d(impulse), dtype=float))
        if len(_MATRICES) > 256:
            _MATRICES.clear()
        _MATRICES[key] = np.stack(cols, axis=1) if cols else np.zeros((0, 0))
    return _MATRICES[key]


def _along(x: Any, axis: int, a: np.ndarray) -> Any:
    """``a`` applied along ``axis`` of ``x``: a few gathers times weights where ``a`` has few
    entries per row (partials: index maps and diagonals), else a product with ``a``."""
    if a.shape[0] == a.shape[1] and np.array_equal(a, np.eye(a.shape[0])):
        return x
    per_row = np.count_nonzero(a, axis=1)
    if a.size and per_row.max() <= _TAPS:
        order = np.argsort(a == 0, axis=1, kind="stable")[:, :per_row.max()]  # each row's nonzeros first
        weights = np.take_along_axis(a, order, axis=1)
        shape = [1] * np.ndim(x)
        shape[axis] = a.shape[0]
        out = None
        for t in range(order.shape[1]):
            term = np.take(x, order[:, t], axis=axis) * weights[:, t].reshape(shape)
            out = term if out is None else out + term
        return out
    return np.moveaxis(np.tensordot(a, x, axes=(1, axis)), 0, axis)


def _separable(one_d: Callable[[dict, int], Callable], name: str) -> Callable:
    """A linear separable interpolation: ``one_d(p, k)`` is SciPy's 1-D map along axis ``k``."""
    def run(original, p):
        x = p["input"]
        x = np.asarray(x) if _holds_tracer(x) else np.asarray(x, dtype=float)
        kept = {k: v for k, v in p.items() if k != "input"}
        expected = _scipys(original, p)
        out = x
        for k, n in enumerate(np.shape(x)):
            fn = one_d(p, k)
            key = (name, n, k, repr(sorted((a, repr(v)) for a, v in kept.items())))
            out = _along(out, k, _axis_matrix(fn, n, key))
        if np.shape(out) != np.shape(expected):  # (a guard: the 1-D maps must give SciPy's shape)
            _refuse(name, f"the output shape {np.shape(out)} differs from SciPy's {np.shape(expected)}")
        if p.get("cval", 0.0) != 0.0 and np.any(expected):  # the constant the extension adds
            out = out + expected
        return out
    return run


def _scipy(name: str) -> Callable:
    """SciPy's own ``scipy.ndimage.name`` (not jacc's replacement while a trace runs)."""
    import scipy.ndimage

    f = getattr(scipy.ndimage, name)
    return getattr(f, "__wrapped__", f)


def _shift_1d(p: dict, k: int) -> Callable:
    s = _per_axis(p["shift"], np.ndim(p["input"]))[k]
    return lambda e: _scipy("shift")(e, s, order=p["order"], mode=p["mode"], cval=0.0, prefilter=p["prefilter"])


def _zoom_1d(p: dict, k: int) -> Callable:
    z = _per_axis(p["zoom"], np.ndim(p["input"]))[k]
    return lambda e: _scipy("zoom")(e, z, order=p["order"], mode=p["mode"], cval=0.0, prefilter=p["prefilter"],
                                         grid_mode=p["grid_mode"])


def _affine_1d(p: dict, k: int) -> Callable:
    nd_ = np.ndim(p["input"])
    m = np.asarray(p["matrix"], dtype=float)
    scale = m[k] if m.ndim == 1 else m[k, k]
    offset = _per_axis(p["offset"], nd_)[k]
    size = (np.shape(p["input"]) if p["output_shape"] is None else tuple(p["output_shape"]))[k]
    return lambda e: _scipy("affine_transform")(e, [scale], offset, output_shape=(size,), order=p["order"],
                                                     mode=p["mode"], cval=0.0, prefilter=p["prefilter"])


def _spline_1d(p: dict, k: int) -> Callable:
    axes = range(np.ndim(p["input"])) if "axis" not in p else [p["axis"] % np.ndim(p["input"])]
    if k not in axes or p["order"] in (0, 1):
        return lambda e: e
    return lambda e: _scipy("spline_filter1d")(e, p["order"], mode=p["mode"])


def _affine(original, p):
    m = np.asarray(p["matrix"])
    if _holds_tracer(p["matrix"]) or _holds_tracer(p["offset"]):
        _refuse("affine_transform", "matrix and offset must be constants (only the input may be traced)")
    if not (m.ndim == 1 or (m.ndim == 2 and m.shape[0] == m.shape[1] == np.ndim(p["input"])
                            and np.count_nonzero(m - np.diag(np.diagonal(m))) == 0)):
        _refuse("affine_transform", "only a diagonal matrix (a scale per axis) is recorded; a rotation or shear "
                                    "mixes the axes")
    return _separable(_affine_1d, "affine_transform")(original, p)


def _spline(original, p):  # (an output dtype other than float64 is refused by _check)
    return _separable(_spline_1d, "spline_filter")(original, dict(p, output=None))


def _not_recorded(what: str) -> Callable:
    def run(original, p):
        _refuse(what, "its coordinates mix the axes, which is not recorded; shift, zoom and affine_transform "
                      "with a diagonal matrix are")
    return run


_FILTERS = {
    "correlate1d": _correlate1d_call, "convolve1d": _convolve1d_call, "correlate": _correlate,
    "convolve": _convolve, "gaussian_filter1d": _gaussian_filter1d, "gaussian_filter": _gaussian_filter,
    "uniform_filter1d": _uniform_filter1d, "uniform_filter": _uniform_filter,
    "sobel": _edges([1.0, 2.0, 1.0]), "prewitt": _edges([1.0, 1.0, 1.0]), "laplace": _laplace,
    "maximum_filter": _rank_filter(lambda n, p: n - 1), "minimum_filter": _rank_filter(lambda n, p: 0),
    "median_filter": _rank_filter(lambda n, p: n // 2), "rank_filter": _rank_filter(_rank_of),
    "percentile_filter": _rank_filter(_percentile_rank),
    "maximum_filter1d": _filter1d(lambda n, p: n - 1), "minimum_filter1d": _filter1d(lambda n, p: 0),
    "shift": _separable(_shift_1d, "shift"), "zoom": _separable(_zoom_1d, "zoom"), "affine_transform": _affine,
    "spline_filter": _spline, "spline_filter1d": _spline, "generic_filter": _generic_filter,
}
_REFUSED = {n: _not_recorded(n) for n in ("map_coordinates", "rotate", "geometric_transform")}  # (by name)
swap_during_traces("scipy.ndimage", {n: replacement(_checked(n, run)) for n, run in (_FILTERS | _REFUSED).items()},
                   eager=True)


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
case("scipy.ndimage.generic_filter", lambda xp: lambda x: _nd().generic_filter(x, lambda w: np.sum(w * w[::-1]), 3),
     lambda r: (r.normal(size=(4, 5)),), jax=False,
     note="a Python function of each window (its entries in the footprint's C order), traced once per output entry")
case("scipy.ndimage.uniform_filter1d", lambda xp: lambda x: _nd().uniform_filter1d(x, 4, mode="nearest"),
     lambda r: (r.normal(size=9),), jax=False)
case("scipy.ndimage.correlate", lambda xp: lambda x, w: _nd().correlate(x, w, mode="wrap"),
     lambda r: (r.normal(size=(5, 4)), r.normal(size=(3, 2))), argnums=(0, 1), jax=False,
     note="traced weights too (a product of the two)")
case("scipy.ndimage.median_filter", lambda xp: lambda x: _nd().median_filter(x, 3, mode="nearest"),
     lambda r: (r.normal(size=(6, 5)),), jax=False,
     note="the windows of the padded input stacked along a new axis, then the middle entry of sort along it")
case("scipy.ndimage.maximum_filter", lambda xp: lambda x: _nd().maximum_filter(x, (3, 2)),
     lambda r: (r.normal(size=(6, 5)),), jax=False)
case("scipy.ndimage.shift", lambda xp: lambda x: _nd().shift(x, (0.5, -1.25), order=1),
     lambda r: (r.normal(size=(6, 5)),), jax=False,
     note="separable: along each axis, SciPy's 1-D map as a matrix (its response to unit impulses), "
          "recorded as gathers times weights, or one product where a spline prefilter makes it dense")
case("scipy.ndimage.zoom", lambda xp: lambda x: _nd().zoom(x, 1.5),
     lambda r: (r.normal(size=(4, 5)),), jax=False)
case("scipy.ndimage.sobel", lambda xp: lambda x: _nd().sobel(x, axis=0, mode="mirror"),
     lambda r: (r.normal(size=(5, 6)),), jax=False)
