"""Reductions and scans: sums, means, extremes, moments, products, cumulative sums."""

from __future__ import annotations

from . import case


def _x(r, shape=(3, 4)):
    return r.uniform(0.5, 1.5, size=shape)


for _n in ["sum", "mean", "max", "min", "var", "std", "prod", "cumsum"]:
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x, axis=-1), lambda r: (_x(r),))
    case(f"numpy.{_n}", lambda xp, n=_n: lambda x: getattr(xp, n)(x), lambda r: (_x(r),), variant="all axes")
