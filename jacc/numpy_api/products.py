"""Products: dot, matmul, einsum and the products built on them."""

from __future__ import annotations

from . import case


def _x(r, shape):
    return r.normal(size=shape)


case("numpy.matmul", lambda xp: xp.matmul, lambda r: (_x(r, (3, 4)), _x(r, (4, 2))), argnums=(0, 1))
case("numpy.matmul", lambda xp: xp.matmul, lambda r: (_x(r, (2, 3, 4)), _x(r, (4,))), argnums=(0, 1),
     variant="batched @ vector")
case("numpy.dot", lambda xp: xp.dot, lambda r: (_x(r, (3, 4)), _x(r, (4,))), argnums=(0, 1))
case("numpy.einsum", lambda xp: lambda a, b: xp.einsum("ij,jk->ik", a, b), lambda r: (_x(r, (3, 4)), _x(r, (4, 2))),
     argnums=(0, 1))
