"""Linear algebra: solve, inverse, determinants, norms and factorisations."""

from __future__ import annotations

import numpy as np

from . import case


def spd(r, n=4):
    """A well-conditioned symmetric positive definite matrix."""
    a = r.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


case("numpy.linalg.solve", lambda xp: xp.linalg.solve, lambda r: (spd(r), r.normal(size=4)), argnums=(0, 1))
case("numpy.linalg.inv", lambda xp: xp.linalg.inv, lambda r: (spd(r),))
case("numpy.linalg.slogdet", lambda xp: lambda a: xp.linalg.slogdet(a)[1], lambda r: (spd(r),))
case("numpy.linalg.norm", lambda xp: xp.linalg.norm, lambda r: (r.normal(size=5),))
