"""Elementwise math: NumPy's float ufuncs (and SciPy's special ufuncs when SciPy is present).

Their partials are diagonal (``diag``) or, for a broadcast operand, a diagonal times a sum map.
"""

from __future__ import annotations

from . import case


def _pos(r, shape=(3, 4)):
    return r.uniform(0.2, 0.9, size=shape)


def _unary(name, make=_pos, **kw):
    case(f"numpy.{name}", lambda xp, n=name: getattr(xp, n), lambda r: (make(r),),
         structures={"diag", "scaled identity"}, **kw)


for _n in ["exp", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arctan", "arcsin",
           "arccos", "sqrt", "square", "reciprocal", "negative", "absolute"]:
    _unary(_n)
case("numpy.positive", lambda xp: xp.positive, lambda r: (_pos(r),), structures={"identity"})

for _n in ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum"]:
    case(f"numpy.{_n}", lambda xp, n=_n: getattr(xp, n), lambda r: (_pos(r), _pos(r) + 1.0), argnums=(0, 1))
    case(f"numpy.{_n}", lambda xp, n=_n: getattr(xp, n), lambda r: (_pos(r, (2, 1, 3)), _pos(r, (4, 1))),
         argnums=(0, 1), variant="broadcast")
