"""``scipy.fft`` on traced arrays: its discrete Fourier transforms are NumPy's (``np.fft``, recorded
by :mod:`jacc.numpy_api.complexes`) with the same ``n`` or ``s``, ``axis`` or ``axes`` and ``norm``.
``overwrite_x`` and ``workers`` change no value and are ignored; a ``plan`` is refused. The cosine
and sine transforms (``dct``, ``dst`` and their n-d and inverse forms) are not recorded and are
refused by name (SciPy's own ran on traced values and failed on ``ndarray.flags``).

While ``f`` runs on traced arguments these functions are replaced on the ``scipy.fft`` module (see
:func:`jacc.constructors.swap_during_traces`); on values that are not traced they are SciPy's own.

>>> import numpy as np, scipy.fft, jacc
>>> x = np.array([0.5, -1.0, 2.0, 0.25])
>>> J = jacc.jacobian(lambda x: np.abs(scipy.fft.rfft(x, norm="ortho")) ** 2)(x)
>>> bool(np.allclose(J, jacc.jacobian(lambda x: np.abs(np.fft.rfft(x, norm="ortho")) ** 2)(x), rtol=1e-14))
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..constructors import _holds_tracer, replacement, swap_during_traces
from ..trace import UnsupportedOperationError, call_site
from . import case
from .complexes import Complex

_FOURIER = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn",
            "rfftn", "irfftn")
_TRIGONOMETRIC = ("dct", "idct", "dst", "idst", "dctn", "idctn", "dstn", "idstn")


def _as_numpy(name: str) -> Callable:
    def run(original, bound):
        p = dict(bound.arguments)
        if not (_holds_tracer(p["x"]) or isinstance(p["x"], Complex)):  # (values: SciPy's own, bit for bit)
            return original(*bound.args, **bound.kwargs)
        if p.pop("plan", None) is not None:
            raise UnsupportedOperationError(f"scipy.fft.{name} with plan= at {call_site()}: a precomputed plan is "
                                            "not recorded; leave it out (the transform is the same)")
        p.pop("overwrite_x", None)
        p.pop("workers", None)
        if "axes" in p and p["axes"] is None and p.get("s") is not None:  # SciPy's: the last len(s) axes
            p["axes"] = tuple(range(-len(p["s"]), 0))  # (NumPy's deprecated rule took the first)
        return getattr(np.fft, name)(p.pop("x"), **p)
    return run


def _refused(name: str) -> Callable:
    def run(original, bound):
        raise UnsupportedOperationError(
            f"scipy.fft.{name} at {call_site()}: the cosine and sine transforms are not recorded for traced "
            "arrays; the Fourier transforms (fft, rfft, …) are, and a DCT can be written with one (Makhoul's "
            "reordering)")
    return run


# (always: a traced complex value, the input of an inverse transform, holds no Tracer itself)
swap_during_traces("scipy.fft", {**{n: replacement(_as_numpy(n), always=True) for n in _FOURIER},
                                 **{n: replacement(_refused(n)) for n in _TRIGONOMETRIC}}, eager=True)


def supported() -> list[str]:
    """The ``scipy.fft`` functions a trace records."""
    return [f"scipy.fft.{n}" for n in _FOURIER]


# -- examples (the coverage page and its tests; central differences of SciPy are the reference) --

def _sf():
    import scipy.fft as sf
    return sf


case("scipy.fft.rfft", lambda xp: lambda x: np.abs(_sf().rfft(x, n=10, norm="ortho")) ** 2,
     lambda r: (r.normal(size=8),), jax=False, note="NumPy's rfft: real and imaginary parts as real arrays")
case("scipy.fft.fft2", lambda xp: lambda x: _sf().fft2(x, axes=(0, 1), workers=2).real,
     lambda r: (r.normal(size=(4, 3)),), jax=False, note="as np.fft.fft2 (workers ignored)")
case("scipy.fft.irfftn", lambda xp: lambda x: _sf().irfftn(_sf().rfftn(x, axes=(1, 2)), s=x.shape[1:]),
     lambda r: (r.normal(size=(2, 4, 6)),), jax=False, note="as np.fft.irfftn; s without axes: the last len(s) axes")
