"""Shape functions: reshapes, transposes, joins and splits. All are index maps, recorded as free
(0-multiplication) selections, embeddings or reshapes, never as dense products."""

from __future__ import annotations

from . import FREE, case


def _x(r, shape=(2, 3, 4)):
    return r.normal(size=shape)


case("numpy.reshape", lambda xp: lambda x: xp.reshape(x, (4, 6)), lambda r: (_x(r),), structures=FREE)
case("numpy.ravel", lambda xp: xp.ravel, lambda r: (_x(r),), structures=FREE)
case("numpy.transpose", lambda xp: lambda x: xp.transpose(x, (2, 0, 1)), lambda r: (_x(r),), structures=FREE)
case("numpy.moveaxis", lambda xp: lambda x: xp.moveaxis(x, -1, 0), lambda r: (_x(r),), structures=FREE)
case("numpy.squeeze", lambda xp: lambda x: xp.squeeze(x, axis=1), lambda r: (_x(r, (3, 1, 2)),), structures=FREE)
case("numpy.broadcast_to", lambda xp: lambda x: xp.broadcast_to(x, (5, 3, 4)), lambda r: (_x(r, (3, 1)),),
     structures=FREE)
case("numpy.concatenate", lambda xp: lambda a, b: xp.concatenate([a, b], axis=-1),
     lambda r: (_x(r, (2, 3)), _x(r, (2, 4))), argnums=(0, 1), structures=FREE)
case("numpy.stack", lambda xp: lambda a, b: xp.stack([a, b], axis=1), lambda r: (_x(r, (2, 3)), _x(r, (2, 3))),
     argnums=(0, 1), structures=FREE)
case("numpy.copy", lambda xp: xp.copy, lambda r: (_x(r),), structures=FREE)
case("numpy.real", lambda xp: xp.real, lambda r: (_x(r),), structures=FREE)
