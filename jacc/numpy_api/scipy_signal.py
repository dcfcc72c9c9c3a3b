"""``scipy.signal`` of traced arrays: filters, smoothing, detrending and resampling as linear maps,
and convolutions as gathered windows times a kernel.

While ``f`` runs on traced arguments these functions are replaced on the ``scipy.signal`` module
(see :func:`jacc.constructors.swap_during_traces`):

- **Linear in the signal** (``lfilter``, ``filtfilt``, ``sosfilt``, ``sosfiltfilt``,
  ``savgol_filter``, ``detrend``, ``decimate``, ``resample``, ``resample_poly``): with its other
  arguments constant, each is an affine map of the signal along ``axis``, y = y(0) + x·M. y(0)
  is SciPy's result for a zero signal and the matrix M is SciPy's own: its function applied to the
  rows of an identity matrix, less its value at zero. So every option (``padtype``,
  ``method='gust'``, ``mode``, ``window``, ``zi`` …) means what it means to SciPy, and the map
  holds at every point with the same constants (later calls skip ``f``); values are anchored to
  SciPy's (:func:`jacc.numpy_api.implicit.anchored`).
  ``zi=`` gives ``zf`` with the same map; a traced ``zi`` or filter coefficients are refused by
  name. The map costs n² per signal of length n, so it suits signals up to some thousands.
- **Convolutions** (``convolve``, ``correlate``, ``fftconvolve``, ``oaconvolve``, ``convolve2d``,
  ``correlate2d``): either or both inputs traced, any number of dimensions, modes ``'full'``,
  ``'same'`` and ``'valid'``. Recorded as one gather of the larger input's windows and a product
  with the smaller one (SciPy's value, this derivative: :func:`jacc.numpy_api.implicit.anchored`).
  ``axes=`` of the FFT convolutions and ``boundary`` other than zero fill are refused by name.
- **Positions from values** (``find_peaks``, ``argrelmax``/``argrelmin``/``argrelextrema``): read
  at the traced point, as ``np.nonzero``; ``find_peaks``' heights, thresholds and prominences are
  traced expressions of x at those positions. ``deconvolve`` by a constant divisor: two linear maps.
- **Refused by name**, with what to write instead: the spectral estimators, ``hilbert``,
  ``peak_widths``, ``peak_prominences``, ``wiener``, ``order_filter`` (SciPy's own code would fail
  deep inside, or on a Cython type check, naming none of them).

>>> import numpy as np, scipy.signal, jacc
>>> b, a = scipy.signal.butter(2, 0.3)
>>> J = jacc.jacobian(lambda x: scipy.signal.lfilter(b, a, x))(np.zeros(6))
>>> bool(np.allclose(J[:, 0], scipy.signal.lfilter(b, a, np.eye(6)[0])))  # the impulse response
True
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, routed, swap_during_traces
from ..trace import Tracer, UnsupportedOperationError, call_site
from . import case, gathers, implicit


def _refuse(what: str, why: str) -> None:
    raise UnsupportedOperationError(f"scipy.signal.{what} at {call_site()}: {why}")


def _constants(what: str, p: dict, traced: tuple[str, ...]) -> None:
    for k, v in p.items():
        if k not in traced and _holds_tracer(v):
            _refuse(what, f"{k} must be a constant" + (f" (only {' and '.join(traced)} may be traced)" if traced else
                                                      " (the positions are read from values; no argument is traced)"))


def _array(x: Any) -> Any:
    return np.asarray(x) if _holds_tracer(x) else np.asarray(x, dtype=float)


def _plain(x: Any) -> np.ndarray:
    return np.asarray(x.value if isinstance(x, Tracer) else x, dtype=float)


# -- linear in the signal ------------------------------------------------------------------------

def _linear(what: str, signal: str, state: int | None = None, refused: Callable[[dict], str | None] = None):
    """The replacement of a function affine in ``p[signal]`` along ``p['axis']``; ``state``: its
    ``zi`` carries that many leading axes before the signal's (0 for lfilter, 1 for sosfilt's
    sections), and ``zf`` is returned beside the result when ``zi`` is given."""
    def run(original, bound):
        p = dict(bound.arguments)
        _constants(what, p, (signal,))
        why = refused and refused(p)
        if why:
            _refuse(what, why)
        x = _array(p[signal])
        x0 = _plain(x)
        if x0.ndim == 0:
            raise ValueError(f"{signal} must have at least one axis (scipy.signal.{what} at {call_site()})")
        ax = p["axis"] % x0.ndim
        n = x0.shape[ax]
        out0 = original(**{**p, signal: x0})
        with_state = state is not None and p.get("zi") is not None
        basis = {**p, "axis": -1}
        if with_state:  # the identity's zi: zeros with n for the signal's other axes
            zi = np.shape(p["zi"])
            basis["zi"] = np.zeros(zi[:state] + (n, zi[state + ax]))
        # y = y(0) + x·M: the response to a zero signal (cval, zi, …) and SciPy's own function of an
        # identity, constants that are the same at every point (so a later call's trace is the same
        # structure, and skips f), then anchored to SciPy's value at this point
        moved = np.moveaxis(x, ax, -1)
        y0 = out0[0] if isinstance(out0, tuple) else out0
        at_zero = original(**{**p, signal: np.zeros_like(x0)})
        rows = original(**{**basis, signal: np.eye(n)})
        zero = original(**{**basis, signal: np.zeros((1, n)),
                           **({"zi": basis["zi"][..., :1, :]} if with_state else {})})
        M = np.asarray(rows[0] if isinstance(rows, tuple) else rows) - np.asarray(
            zero[0] if isinstance(zero, tuple) else zero)
        y = implicit.anchored(y0, np.asarray(at_zero[0] if isinstance(at_zero, tuple) else at_zero)
                              + np.moveaxis(moved @ M, -1, ax))
        if not isinstance(out0, tuple):
            return y
        if not with_state:  # resample's new sample points: constants
            return (y, *out0[1:])
        Z = np.asarray(rows[1]) - np.asarray(zero[1])  # lead + (n, K): each sample's effect on zf
        dz = np.tensordot(moved, Z, axes=([-1], [state]))  # batch + lead + (K,)
        batch = moved.ndim - 1
        dz = np.moveaxis(dz, list(range(batch, batch + state)), list(range(state)))
        return y, implicit.anchored(out0[1], np.asarray(at_zero[1]) + np.moveaxis(dz, -1, state + ax))
    return run


def _resample_poly_padding(p: dict) -> str | None:
    if p["padtype"] in ("median", "maximum", "minimum"):
        return f"padtype={p['padtype']!r} is not linear in x; 'constant', 'mean', 'line' and np.pad's modes are"
    return None


# -- convolutions --------------------------------------------------------------------------------

def _windows(shape: tuple[int, ...], kernel: tuple[int, ...]) -> np.ndarray:
    """Flat indices into the zero-padded input (padded by kernel − 1 on each side): entry
    [i, j] is the window position j of full output i, so full = padded.ravel()[index] @ flip(k).ravel()."""
    padded = [s + 2 * (k - 1) for s, k in zip(shape, kernel)]
    strides = np.cumprod([1] + padded[::-1][:-1])[::-1]
    out = [s + k - 1 for s, k in zip(shape, kernel)]
    d = len(shape)
    index = np.zeros([1] * (2 * d), dtype=np.intp)
    for axis, (o, k, stride) in enumerate(zip(out, kernel, strides)):
        pos = np.arange(o)[:, None] + np.arange(k)[None, :]
        view = [1] * (2 * d)
        view[axis], view[d + axis] = o, k
        index = index + stride * pos.reshape(view)
    return index.reshape(int(np.prod(out)), int(np.prod(kernel)))


def _full(a: Any, b: Any) -> Any:
    """The full convolution of ``a`` and ``b`` (same number of dimensions): the larger one's windows
    gathered, times the smaller one reversed."""
    if np.size(b) > np.size(a):
        a, b = b, a
    sa, sb = np.shape(a), np.shape(b)
    padded = np.pad(a, [(k - 1, k - 1) for k in sb])
    flipped = np.flip(b) if np.ndim(b) else b
    out = np.reshape(padded, (-1,))[_windows(sa, sb)] @ np.reshape(flipped, (-1,))
    return np.reshape(out, tuple(s + k - 1 for s, k in zip(sa, sb)))


def _cropped(full: Any, s1: tuple, s2: tuple, mode: str, what: str, late: bool = False) -> Any:
    """SciPy's ``mode`` of the ``full`` result: centred, rounding the start up where ``late``
    (correlate2d's 'same' does, the others round down)."""
    if mode == "full":
        return full
    if mode == "same":
        shape = s1
    elif mode == "valid":
        if not (all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))):
            raise ValueError(f"for 'valid' mode, one input must be at least as large as the other in every "
                             f"dimension, got {s1} and {s2} (scipy.signal.{what} at {call_site()})")
        shape = tuple(abs(a - b) + 1 for a, b in zip(s1, s2))
    else:
        raise ValueError(f"mode must be 'full', 'same' or 'valid', not {mode!r} (scipy.signal.{what} at "
                         f"{call_site()})")
    start = [(f - s + late) // 2 for f, s in zip(np.shape(full), shape)]
    return full[tuple(slice(b, b + s) for b, s in zip(start, shape))]


def _convolution(what: str, correlate: bool, two_d: bool = False):
    def run(original, bound):
        p = dict(bound.arguments)
        if p.get("axes") is not None:
            _refuse(what, "axes= is not recorded for traced arrays; convolve over all axes, or use convolve along "
                          "each slice")
        if two_d and (p["boundary"] not in ("fill", "fil", "pad") or p["fillvalue"] != 0):
            _refuse(what, f"only boundary='fill' with fillvalue=0 is recorded, not boundary={p['boundary']!r}, "
                          f"fillvalue={p['fillvalue']!r}")
        a, b = _array(p["in1"]), _array(p["in2"])
        if np.ndim(a) != np.ndim(b) or (two_d and np.ndim(a) != 2):
            raise ValueError(f"in1 and in2 should have the same dimensionality{' (2)' if two_d else ''}, got shapes "
                             f"{np.shape(a)} and {np.shape(b)} (scipy.signal.{what} at {call_site()})")
        if 0 in np.shape(a) or 0 in np.shape(b):
            return original(**{**p, "in1": _plain(a), "in2": _plain(b)})
        kernel = (np.flip(b) if np.ndim(b) else b) if correlate else b
        traced = _cropped(_full(a, kernel), np.shape(a), np.shape(b), p["mode"], what, late=correlate and two_d)
        return implicit.anchored(original(**{**p, "in1": _plain(a), "in2": _plain(b)}), traced)
    return run


def _deconvolve(original, bound):
    """Quotient and remainder of a division by a constant divisor: both linear in the signal, their
    maps SciPy's own results for the rows of an identity (n calls at the trace, for any point)."""
    p = dict(bound.arguments)
    _constants("deconvolve", p, ("signal",))
    x = _array(p["signal"])
    x0 = _plain(x)
    q0, r0 = original(x0, p["divisor"])  # (SciPy raises for a signal of more than one axis)
    if x0.size < np.size(p["divisor"]):  # SciPy's answer for a short signal: no quotient, the signal left
        return q0, implicit.anchored(r0, x)
    parts = [original(e, p["divisor"]) for e in np.eye(x0.size)]
    Q, R = (np.array([part[k] for part in parts]) for k in (0, 1))
    return implicit.anchored(q0, x @ Q), implicit.anchored(r0, x @ R)


_LINEAR = {
    "lfilter": _linear("lfilter", "x", state=0),
    "filtfilt": _linear("filtfilt", "x"),
    "sosfilt": _linear("sosfilt", "x", state=1),
    "sosfiltfilt": _linear("sosfiltfilt", "x"),
    "savgol_filter": _linear("savgol_filter", "x"),
    "detrend": _linear("detrend", "data",
                       refused=lambda p: "overwrite_data=True is not recorded" if p["overwrite_data"] else None),
    "decimate": _linear("decimate", "x"),
    "resample": _linear("resample", "x"),
    "resample_poly": _linear("resample_poly", "x", refused=_resample_poly_padding),
    "upfirdn": _linear("upfirdn", "x"),
    "deconvolve": _deconvolve,  # (two results, no axis: maps of its own)
}
_CONVOLUTIONS = {
    "convolve": _convolution("convolve", False), "correlate": _convolution("correlate", True),
    "fftconvolve": _convolution("fftconvolve", False), "oaconvolve": _convolution("oaconvolve", False),
    "convolve2d": _convolution("convolve2d", False, two_d=True),
    "correlate2d": _convolution("correlate2d", True, two_d=True),
}

# -- positions found from values ---------------------------------------------------------------

def _extrema(what: str):
    """``argrelmax``/``argrelmin``/``argrelextrema``: SciPy's indices at the traced point (constants;
    the trace is value-dependent, as ``np.nonzero``'s)."""
    def run(original, bound):
        p = dict(bound.arguments)
        data = p.pop("data")
        _constants(what, p, ())
        return original(gathers._value(data, f"scipy.signal.{what}"), **p)
    return run


#: find_peaks' properties that are values of x, as traced expressions of x and the properties
#: that are positions (constants)
_PEAK_VALUES: dict[str, Callable[[Any, dict], Any]] = {
    "peak_heights": lambda x, q: x[q["peaks"]],
    "left_thresholds": lambda x, q: x[q["peaks"]] - x[q["peaks"] - 1],
    "right_thresholds": lambda x, q: x[q["peaks"]] - x[q["peaks"] + 1],
    "prominences": lambda x, q: x[q["peaks"]] - np.maximum(x[q["left_bases"]], x[q["right_bases"]]),
}


def _find_peaks(original, bound):
    p = dict(bound.arguments)
    x = p.pop("x")
    _constants("find_peaks", p, ())
    peaks, props = original(gathers._value(x, "scipy.signal.find_peaks"), **p)
    x = _array(x)
    out = {}
    for k, v in props.items():
        if k in _PEAK_VALUES:
            out[k] = _PEAK_VALUES[k](x, {"peaks": peaks, **props})
        elif np.asarray(v).dtype.kind in "iu":  # bases, plateau edges and sizes: positions
            out[k] = v
        else:
            _refuse("find_peaks", f"its property {k!r} (width=) is interpolated from x and not traced; the "
                    "peaks' positions, heights, thresholds and prominences are (or measure the width on "
                    "x's values with scipy.signal.peak_widths outside f)")
    return peaks, out


_SPECTRA = ("compute the spectrum with np.fft.rfft of windowed segments, e.g. "
            "np.abs(np.fft.rfft(sliding_window_view(x, n)[::step] * window, axis=-1)) ** 2, which jacc traces")
#: scipy.signal functions that take a signal and are not recorded: each refuses a traced argument
#: by its own name (SciPy's code would otherwise fail deep inside, or on a Cython type check)
_REFUSED = {
    **{n: f"scipy.signal.{n} is not supported for traced arrays; {_SPECTRA}"
       for n in ("welch", "periodogram", "csd", "coherence", "spectrogram", "stft", "istft", "lombscargle",
                 "czt", "zoom_fft")},
    **{n: f"scipy.signal.{n} gives a complex analytic signal, which jacc does not trace; build it from "
          "np.fft.fft(x) (doubling the positive frequencies) and take np.real/np.imag parts, or use "
          "np.abs of that" for n in ("hilbert", "hilbert2")},
    "peak_widths": "scipy.signal.peak_widths is not supported for traced arrays; call it on values outside f",
    "peak_prominences": "scipy.signal.peak_prominences is not supported for traced arrays; find_peaks(x, "
                        "prominence=0) returns traced prominences",
    "find_peaks_cwt": "scipy.signal.find_peaks_cwt is not supported for traced arrays; use find_peaks",
    "wiener": "scipy.signal.wiener is not supported for traced arrays (its noise estimate is a local "
              "variance); write it with np.lib.stride_tricks.sliding_window_view",
    "order_filter": "scipy.signal.order_filter is not supported for traced arrays; np.sort over "
                    "sliding_window_view(x, n) picks the same ranks and is traced",
}


def _refusal(name: str):
    def run(original, *args, **kwargs):
        raise UnsupportedOperationError(f"{_REFUSED[name]} (at {call_site()})")
    return run


_POSITIONS = {"argrelmax": _extrema("argrelmax"), "argrelmin": _extrema("argrelmin"),
              "argrelextrema": _extrema("argrelextrema"), "find_peaks": _find_peaks}
swap_during_traces("scipy.signal", {**{n: replacement(run) for n, run in {**_LINEAR, **_CONVOLUTIONS,
                                                                          **_POSITIONS}.items()},
                                    **{n: routed(_refusal(n)) for n in _REFUSED}}, eager=True)


def supported() -> list[str]:
    """The ``scipy.signal`` functions a trace records."""
    return [f"scipy.signal.{n}" for n in (*_LINEAR, *_CONVOLUTIONS, *_POSITIONS)]


# -- examples (the coverage page and its tests; central differences of SciPy, and JAX's
# convolutions and detrend, are the references) --------------------------------------------------

def _ss(xp):
    if xp is np:
        import scipy.signal as ss
    else:
        import jax.scipy.signal as ss
    return ss


_BA = ([0.2, 0.3, 0.1], [1.0, -0.5, 0.2])
_SOS = np.array([[0.2, 0.4, 0.2, 1.0, -0.3, 0.1], [1.0, -1.0, 0.0, 1.0, -0.2, 0.0]])
_MAPS = frozenset({"I ⊗ dense", "dense", "identity", "select", "embed", "reshape", "I"})

case("scipy.signal.lfilter", lambda xp: lambda x: _ss(xp).lfilter(*_BA, x), lambda r: (r.normal(size=8),),
     jax=False, structures=_MAPS,
     note="any filter with constant coefficients: y₀ + (x − x₀)·M, M SciPy's filter of an identity matrix")
case("scipy.signal.lfilter", lambda xp: lambda x: xp.concatenate(_ss(xp).lfilter(*_BA, x, zi=[0.5, -1.0])),
     lambda r: (r.normal(size=6),), jax=False, variant="zi", note="zi= gives zf, with the same map")
case("scipy.signal.filtfilt", lambda xp: lambda x: _ss(xp).filtfilt(*_BA, x, axis=0),
     lambda r: (r.normal(size=(12, 2)),), jax=False, note="along axis=; padtype=, method='gust' as SciPy")
case("scipy.signal.sosfilt", lambda xp: lambda x: _ss(xp).sosfilt(_SOS, x), lambda r: (r.normal(size=(2, 7)),),
     jax=False)
case("scipy.signal.sosfiltfilt", lambda xp: lambda x: _ss(xp).sosfiltfilt(_SOS, x), lambda r: (r.normal(size=15),),
     jax=False)
case("scipy.signal.savgol_filter", lambda xp: lambda x: _ss(xp).savgol_filter(x, 5, 2), lambda r: (r.normal(size=9),),
     jax=False)
case("scipy.signal.detrend", lambda xp: lambda x: _ss(xp).detrend(x), lambda r: (r.normal(size=7),))
case("scipy.signal.decimate", lambda xp: lambda x: _ss(xp).decimate(x, 2), lambda r: (r.normal(size=40),), jax=False)
case("scipy.signal.resample", lambda xp: lambda x: _ss(xp).resample(x, 5), lambda r: (r.normal(size=8),), jax=False)
case("scipy.signal.resample_poly", lambda xp: lambda x: _ss(xp).resample_poly(x, 3, 2), lambda r: (r.normal(size=8),),
     jax=False)
case("scipy.signal.upfirdn", lambda xp: lambda x: _ss(np).upfirdn([1.0, 2.0, 1.0], x, up=2, down=3),
     lambda r: (r.normal(size=9),), jax=False, note="linear in x, as the filters above")
case("scipy.signal.deconvolve", lambda xp: lambda x: np.concatenate(_ss(np).deconvolve(x, np.array([1.0, 0.5]))),
     lambda r: (r.normal(size=6),), jax=False, note="quotient and remainder by a constant divisor, linear in x")
case("scipy.signal.find_peaks", lambda xp: lambda x: (lambda pk: x[pk[0]] + pk[1]["prominences"])(
     _ss(np).find_peaks(x, prominence=0.0)), lambda r: (r.normal(size=12),), jax=False,
     note="positions read at the traced point; heights, thresholds and prominences traced; width= refused")
case("scipy.signal.argrelmax", lambda xp: lambda x: x[_ss(np).argrelmax(x)] * 2.0, lambda r: (r.normal(size=12),),
     jax=False, note="argrelmin and argrelextrema too: positions read at the traced point")
case("scipy.signal.convolve", lambda xp: lambda a, b: _ss(xp).convolve(a, b, mode="same"),
     lambda r: (r.normal(size=(4, 5)), r.normal(size=(2, 3))), argnums=(0, 1),
     note="the larger input's windows gathered, times the smaller one reversed; 'full', 'same', 'valid'")
case("scipy.signal.correlate", lambda xp: lambda a, b: _ss(xp).correlate(a, b, mode="valid"),
     lambda r: (r.normal(size=7), r.normal(size=3)), argnums=(0, 1))
case("scipy.signal.fftconvolve", lambda xp: lambda a, b: _ss(xp).fftconvolve(a, b),
     lambda r: (r.normal(size=6), r.normal(size=4)), argnums=(0, 1), note="axes= refused")
case("scipy.signal.oaconvolve", lambda xp: lambda a: _ss(np).oaconvolve(a, np.array([0.5, 1.0, -0.5])),
     lambda r: (r.normal(size=6),), jax=False)
case("scipy.signal.convolve2d", lambda xp: lambda a, b: _ss(xp).convolve2d(a, b, mode="valid"),
     lambda r: (r.normal(size=(5, 4)), r.normal(size=(2, 2))), argnums=(0, 1), note="boundary='fill', fillvalue=0")
case("scipy.signal.correlate2d", lambda xp: lambda a, b: _ss(xp).correlate2d(a, b),
     lambda r: (r.normal(size=(3, 4)), r.normal(size=(2, 3))), argnums=(0, 1))
