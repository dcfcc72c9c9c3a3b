"""Indexing, masks and value-dependent selections: getitem, where, clip, sort and friends. A
value-dependent one fixes its permutation or mask at each call's trace."""

from __future__ import annotations

import numpy as np

from . import FREE, case


def _x(r, shape=(3, 4)):
    return r.normal(size=shape)


case("ndarray.__getitem__", lambda xp: lambda x: x[1:, ::2], lambda r: (_x(r),), structures=FREE)
case("numpy.where", lambda xp: lambda a, b: xp.where(np.array([True, False, True, False]), a, b),
     lambda r: (_x(r), _x(r)), argnums=(0, 1))
case("numpy.clip", lambda xp: lambda x: xp.clip(x, -0.5, 0.5), lambda r: (_x(r),))
