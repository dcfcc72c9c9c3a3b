"""The primitive table: for each op its evaluation, shape rule and local partials.

Every partial rule returns a :class:`~jacc.structure.Jac` whose *structure* depends only on shapes
and parameters (so graphs can be planned without values) and whose values are filled in when the
context carries argument values. Elementwise ops are rows of data tables; the rest are small
functions registered by name.

>>> OPS["tanh"].evaluate([np.zeros(2)], {})
array([0., 0.])
>>> sorted(OPS)[:5]
['abs', 'abstract', 'add', 'airy_ai', 'airy_aip']
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import factorise, lazy
from . import structure as S
from .indexing import as_index_array
from .structure import Jac, Shape


class ShapeError(ValueError):
    """Argument shapes that an op cannot combine."""


@dataclass
class Ctx:
    """What a partial rule sees: argument shapes, parameters and (when numeric) values."""

    shapes: list[Shape]
    out_shape: Shape
    params: dict
    args: list[np.ndarray | None]
    out: np.ndarray | None = None
    numeric: bool = False
    dtype: Any = np.float64

    def val(self, fn: Callable[[], Any], shape: Shape) -> np.ndarray | None:
        """``fn()`` broadcast to ``shape`` when numeric, else ``None``."""
        if not self.numeric:
            return None
        v = np.broadcast_to(lazy.asarray(fn(), dtype=self.dtype), shape)
        if not shape:  # (ascontiguousarray would make a 0-d array 1-d)
            return v.copy()
        return lazy.apply(np.ascontiguousarray, v)


    def vals(self, *parts: tuple[Callable[[], Any], Shape]) -> tuple | None:
        """The value of each ``(fn, shape)`` factor (see :meth:`val`) when numeric, else ``None``."""
        return None if not self.numeric else tuple(self.val(fn, shape) for fn, shape in parts)


@dataclass(frozen=True)
class Op:
    """One primitive. ``partial(i, ctx)`` is ∂out/∂arg_i (``None``: identically zero)."""

    name: str
    evaluate: Callable[[list, dict], np.ndarray]
    shape: Callable[[list[Shape], dict], Shape]
    partial: Callable[[int, Ctx], Jac | None]
    arity: int | None  # None: variadic
    doc: str = ""
    nondiff: frozenset = field(default_factory=frozenset)
    params: tuple[str, ...] = ()  # the parameter names the op accepts
    constant: frozenset = field(default_factory=frozenset)  # arguments that must be constants (no derivative)
    #: a factorisation of its first argument, an n × n matrix or a stack of them: about n scalar
    #: operations per entry of that matrix at the scalar level, whatever the result's size
    factorises: bool = False


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    OPS[op.name] = op
    return op


# -- elementwise ------------------------------------------------------------------------------


def _broadcast_shape(shapes: list[Shape], params: dict) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {', '.join(map(str, shapes))} cannot be broadcast together") from None


def _ew(ctx: Ctx, i: int, spec: Any, fn: Callable[[], Any] | None = None) -> Jac:
    """Elementwise partial w.r.t. argument ``i``.

    ``spec`` says what the value array varies along: ``"unit"`` (no values: 0/1 structure;
    ``"-unit"`` the same times exactly −1),
    ``"scalar"``, ``"out"`` (the output's shape) or an argument index (that argument's shape).
    """
    out, s = ctx.out_shape, ctx.shapes[i]
    m = len(out)
    off = m - len(s)
    pair = [off + k if s[k] == out[off + k] else -1 for k in range(len(s))]
    if spec in ("unit", "-unit"):
        return Jac(out, s, pair, neg=spec == "-unit")
    vshape: Shape = () if spec == "scalar" else out if spec == "out" else ctx.shapes[spec]
    voff = m - len(vshape)
    keep = [k for k, n in enumerate(vshape) if n != 1]
    vl = [voff + k for k in keep]
    vals = ctx.val(fn, vshape)
    if vals is not None:
        vals = vals.reshape([vshape[k] for k in keep])
    return Jac(out, s, pair, vl, vals)


# Elementwise rules are data: Python expressions over the argument x (or a, b) and the result y,
# turned into NumPy functions here and into scalar `math` functions by the plan compiler
# (jacc.compile), so both read the same formulas.
# name: (result, derivative, what the derivative's values vary along)
UNARY: dict[str, tuple[str, str | None, str]] = {
    "neg": ("-x", "-1.0", "-unit"),
    "exp": ("exp(x)", "y", "out"),
    "expm1": ("expm1(x)", "y + 1.0", "out"),
    "log": ("log(x)", "1.0 / x", "out"),
    "log1p": ("log1p(x)", "1.0 / (1.0 + x)", "out"),
    "sin": ("sin(x)", "cos(x)", "out"),
    "cos": ("cos(x)", "-sin(x)", "out"),
    "tan": ("tan(x)", "1.0 + y * y", "out"),
    "tanh": ("tanh(x)", "1.0 - y * y", "out"),
    "sinh": ("sinh(x)", "cosh(x)", "out"),
    "cosh": ("cosh(x)", "sinh(x)", "out"),
    "arctan": ("arctan(x)", "1.0 / (1.0 + x * x)", "out"),
    "arcsin": ("arcsin(x)", "1.0 / sqrt((1.0 - x) * (1.0 + x))", "out"),
    "arccos": ("arccos(x)", "-1.0 / sqrt((1.0 - x) * (1.0 + x))", "out"),
    "sqrt": ("sqrt(x)", "0.5 / y", "out"),
    "square": ("x * x", "2.0 * x", "out"),
    "reciprocal": ("1.0 / x", "-y * y", "out"),
    "abs": ("abs(x)", "sign(x)", "out"),
    "identity": ("x + 0.0", "1.0", "unit"),
    # the same value under a second vertex name: the tracer gives a repeated argument of a
    # non-elementwise op one (X @ X, np.outer(x, x)), so each use keeps its own structured edge
    "alias": ("x", "1.0", "unit"),
    "exp2": ("exp2(x)", "0.6931471805599453 * y", "out"),
    "log2": ("log2(x)", "1.4426950408889634 / x", "out"),
    "log10": ("log10(x)", "0.4342944819032518 / x", "out"),
    "cbrt": ("cbrt(x)", "1.0 / (3.0 * y * y)", "out"),
    "deg2rad": ("x * 0.017453292519943295", "0.017453292519943295", "scalar"),  # x·(π/180), as NumPy
    "rad2deg": ("x * 57.29577951308232", "57.29577951308232", "scalar"),
    "sinc": ("sinc(x)", "sincgrad(x, y)", "out"),
    "arcsinh": ("arcsinh(x)", "1.0 / hypot(x, 1.0)", "out"),
    "arccosh": ("arccosh(x)", "1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0))", "out"),
    "arctanh": ("arctanh(x)", "1.0 / ((1.0 - x) * (1.0 + x))", "out"),
    # SciPy's special functions (scipy.special ufuncs; the array versions import SciPy on first use)
    "expit": ("1.0 / (1.0 + exp(-x))", "y / (1.0 + exp(x))", "out"),  # y·(1−y) without cancellation
    "logit": ("log(x / (1.0 - x))", "1.0 / (x * (1.0 - x))", "out"),
    "erf": ("erf(x)", "1.1283791670955126 * exp(-x * x)", "out"),  # 2/√π
    "erfc": ("erfc(x)", "-1.1283791670955126 * exp(-x * x)", "out"),
    "ndtr": ("ndtr(x)", "0.3989422804014327 * exp(-0.5 * x * x)", "out"),  # 1/√(2π)
    "log_ndtr": ("log_ndtr(x)", "lndtrgrad(x, y)", "out"),  # φ/Φ
    "gammaln": ("gammaln(x)", "digamma(x)", "out"),
    "log_expit": ("log_expit(x)", "1.0 / (1.0 + exp(x))", "out"),  # 1 − expit(x) without cancellation
    "erfinv": ("erfinv(x)", "0.886226925452758 * exp(y * y)", "out"),  # √π/2·e^(y²)
    "ndtri": ("ndtri(x)", "2.5066282746310002 * exp(0.5 * y * y)", "out"),  # √(2π)·e^(y²/2)
    "gamma": ("gamma(x)", "y * digamma(x)", "out"),
    "psi": ("digamma(x)", "zeta(2.0, x)", "out"),  # scipy.special.digamma is the ufunc named psi; ψ′ = ζ(2, x)
    "entr": ("entr(x)", "-(log(x) + 1.0)", "out"),
    "i0": ("i0(x)", "i1(x)", "out"),
    "i1": ("i1(x)", "i1grad(x, y)", "out"),
    "i0e": ("i0e(x)", "i1e(x) - sign(x) * y", "out"),  # e^(−|x|)·I₀(x)
    "i1e": ("i1e(x)", "i1egrad(x, y)", "out"),  # e^(−|x|)·I₁(x)
    "cosm1": ("cosm1(x)", "-sin(x)", "out"),  # cos(x) − 1 without cancellation near 0
    "erfcx": ("erfcx(x)", "2.0 * x * y - 1.1283791670955126", "out"),  # e^(x²)·erfc(x); 2/√π
    "dawsn": ("dawsn(x)", "1.0 - 2.0 * x * y", "out"),
    "exp1": ("exp1(x)", "-exp(-x) / x", "out"),
    "expi": ("expi(x)", "exp(x) / x", "out"),
    "rgamma": ("rgamma(x)", "rgammagrad(x, y)", "out"),  # 1/Γ(x)
    "loggamma": ("loggamma(x)", "digamma(x)", "out"),  # (real arguments: log Γ, NaN below 0 as SciPy)
    "j0": ("j0(x)", "-j1(x)", "out"),
    "j1": ("j1(x)", "j1grad(x, y)", "out"),
    "y0": ("y0(x)", "-y1(x)", "out"),
    "y1": ("y1(x)", "y0(x) - y / x", "out"),
    "k0": ("k0(x)", "-k1(x)", "out"),
    "k1": ("k1(x)", "-k0(x) - y / x", "out"),
    "gammasgn": ("gammasgn(x)", None, "zero"),
    "spence": ("spence(x)", "spencegrad(x)", "out"),  # dilogarithm ∫₁ˣ log t/(1 − t) dt
    "ellipk": ("ellipk(x)", "ellipkgrad(x, y)", "out"),  # complete elliptic integrals of parameter m = x
    "ellipe": ("ellipe(x)", "ellipegrad(x, y)", "out"),
    "erfi": ("erfi(x)", "1.1283791670955126 * exp(x * x)", "out"),  # −i·erf(ix); 2/√π
    "erfcinv": ("erfcinv(x)", "-0.886226925452758 * exp(y * y)", "out"),  # −√π/2·e^(y²)
    "exprel": ("exprel(x)", "exprelgrad(x, y)", "out"),  # (eˣ − 1)/x
    # the outputs of SciPy's tuple-valued ufuncs, one op each (fresnel, sici, airy)
    "fresnel_s": ("fresnel_s(x)", "sin(1.5707963267948966 * x * x)", "out"),  # S′ = sin(πx²/2)
    "fresnel_c": ("fresnel_c(x)", "cos(1.5707963267948966 * x * x)", "out"),
    "sici_si": ("sici_si(x)", "sinc(0.3183098861837907 * x)", "out"),  # Si′ = sin(x)/x, 1 at 0
    "sici_ci": ("sici_ci(x)", "cos(x) / x", "out"),  # (SciPy's Ci(|x|) for x < 0: the same slope)
    "airy_ai": ("airy_ai(x)", "airy_aip(x)", "out"),
    "airy_aip": ("airy_aip(x)", "x * airy_ai(x)", "out"),  # Airy's equation: y″ = x·y
    "airy_bi": ("airy_bi(x)", "airy_bip(x)", "out"),
    "airy_bip": ("airy_bip(x)", "x * airy_bi(x)", "out"),
    # the real branches of Lambert's W (k = 0 from −1/e on, k = −1 on [−1/e, 0); NaN elsewhere):
    # W·e^W = x, so W′ = e^(−W)/(1 + W) on either branch (1 at 0, ∞ at −1/e)
    "lambertw": ("lambertw(x)", "lambertwslope(x, y, 1.0)", "out"),
    "lambertw_m1": ("lambertw_m1(x)", "lambertwslope(x, y, -1.0)", "out"),
    # Kolmogorov's limiting survival function and its inverse: the slope SciPy's own (kolmogp)
    "kolmogorov": ("kolmogorov(x)", "kolmogp(x)", "out"),
    "kolmogi": ("kolmogi(x)", "1.0 / kolmogp(y)", "out"),
    # piecewise constant: spec "zero" records no edge at all (the Jacobian is exactly 0 there)
    "sign": ("sign(x)", None, "zero"),
    "floor": ("floor(x)", None, "zero"),
    "ceil": ("ceil(x)", None, "zero"),
    "trunc": ("trunc(x)", None, "zero"),
    "rint": ("rint(x)", None, "zero"),
    # a recorded mask's negation and the predicates of values (jacc.masks): masks are vertices of
    # 0.0 and 1.0 (written without inf, which C and the scalar code would need a name for)
    "logical_not": ("(x == 0) * 1.0", None, "zero"),
    "isnan": ("(x != x) * 1.0", None, "zero"),
    "isfinite": ("(abs(x) <= 1.7976931348623157e308) * 1.0", None, "zero"),
    "isinf": ("(abs(x) > 1.7976931348623157e308) * 1.0", None, "zero"),
}

# name: (result, ((spec, ∂/∂a), (spec, ∂/∂b))); spec "unit" means the derivative is exactly 1
# ("-unit" exactly −1; the formula is then only for the scalar compiler),
# a rule None that the argument has no edge (a zero derivative), a rule CONSTANT that the
# derivative is not implemented, so the argument must be a constant (a shape parameter)
CONSTANT = ("constant", None)
#: SciPy's orthogonal polynomials recorded (of a constant degree, differentiable in the point)
ORTHOGONAL = ("eval_legendre", "eval_chebyt", "eval_chebyu", "eval_chebyc", "eval_chebys", "eval_sh_legendre",
              "eval_sh_chebyt", "eval_sh_chebyu", "eval_laguerre", "eval_hermite", "eval_hermitenorm",
              "eval_gegenbauer", "eval_genlaguerre", "eval_jacobi")
SPHERICAL = ("jn", "yn", "in")  # the spherical Bessel functions recorded (not kn: see jacc.numpy_api.ufuncs)
BINARY: dict[str, tuple[str, tuple]] = {
    "add": ("a + b", (("unit", None), ("unit", None))),
    "sub": ("a - b", (("unit", None), ("-unit", "-1.0"))),
    "mul": ("a * b", ((1, "b"), (0, "a"))),
    "div": ("a / b", ((1, "1.0 / b"), ("out", "-y / b"))),
    "pow": ("power(a, b)", (("out", "powgrad(a, b)"), ("out", "log(nonzero(a)) * y"))),
    "maximum": ("maximum(a, b)", (("out", "tie(a, b)"), ("out", "tie(b, a)"))),
    "minimum": ("minimum(a, b)", (("out", "tie(b, a)"), ("out", "tie(a, b)"))),
    "fmax": ("fmax(a, b)", (("out", "ftie(a, b)"), ("out", "ftie(b, a)"))),
    "fmin": ("fmin(a, b)", (("out", "ftie(-a, -b)"), ("out", "ftie(-b, -a)"))),
    # b/(a² + b²) as b/h/h, h = hypot(a, b): a² + b² underflows at 1e-200 (inf) and overflows at 1e200 (0)
    "arctan2": ("arctan2(a, b)", (("out", "b / hypot(a, b) / hypot(a, b)"), ("out", "-a / hypot(a, b) / hypot(a, b)"))),
    "hypot": ("hypot(a, b)", (("out", "a / nonzero(y)"), ("out", "b / nonzero(y)"))),
    # expit(a − b), not exp(a − y): y rounds to max(a, b) at large a = b (1e16: 1.0 each, not 0.5)
    "logaddexp": ("logaddexp(a, b)", (("out", "1.0 / (1.0 + exp(b - a))"), ("out", "1.0 / (1.0 + exp(a - b))"))),
    "logaddexp2": ("logaddexp2(a, b)", (("out", "1.0 / (1.0 + exp2(b - a))"), ("out", "1.0 / (1.0 + exp2(a - b))"))),
    # y = a − n·b with an integer n, so ∂y/∂b = −n = (y − a)/b, rounded: exact where a/b is not
    "fmod": ("fmod(a, b)", (("unit", None), ("out", "rint((y - a) / b)"))),
    "remainder": ("remainder(a, b)", (("unit", None), ("out", "rint((y - a) / b)"))),
    # a rule None: no edge (the argument only picks a sign or a branch)
    "copysign": ("copysign(a, b)", (("out", "sign(a) * copysign(1.0, b)"), None)),
    "heaviside": ("heaviside(a, b)", (None, ("out", "(a == 0) * 1.0"))),
    "floor_divide": ("floor_divide(a, b)", (None, None)),
    # comparisons and logic, recorded where a mask selects values (jacc.masks): 1.0 where true,
    # 0.0 where false, so the graph stays float and every backend reads the same formula
    "less": ("(a < b) * 1.0", (None, None)),
    "less_equal": ("(a <= b) * 1.0", (None, None)),
    "greater": ("(a > b) * 1.0", (None, None)),
    "greater_equal": ("(a >= b) * 1.0", (None, None)),
    "equal": ("(a == b) * 1.0", (None, None)),
    "not_equal": ("(a != b) * 1.0", (None, None)),
    "logical_and": ("(a != 0) * (b != 0) * 1.0", (None, None)),
    "logical_or": ("((a != 0) + (b != 0) != 0) * 1.0", (None, None)),
    "logical_xor": ("((a != 0) != (b != 0)) * 1.0", (None, None)),
    "xlogy": ("xlogy(a, b)", (("out", "log(b)"), ("out", "a / b"))),
    "xlog1py": ("xlog1py(a, b)", (("out", "log1p(b)"), ("out", "a / (1.0 + b)"))),
    "rel_entr": ("rel_entr(a, b)", (("out", "logratio(a, b) + 1.0"), ("out", "-a / b"))),
    "betaln": ("betaln(a, b)", (("out", "digamma(a) - digamma(a + b)"), ("out", "digamma(b) - digamma(a + b)"))),
    "kl_div": ("kl_div(a, b)", (("out", "logratio(a, b)"), ("out", "1.0 - a / b"))),  # a·log(a/b) − a + b
    # Owen's T(h, a): ∂h = −φ(h)·erf(ah/√2)/2, ∂a = e^(−h²(1+a²)/2) / (2π(1 + a²))
    "owens_t": ("owens_t(a, b)", (("out", "-0.19947114020071635 * exp(-0.5 * a * a) * erf(0.7071067811865476 * a * b)"),
                                  ("out", "exp(-0.5 * a * a * (1.0 + b * b)) / (6.283185307179586 * (1.0 + b * b))"))),
    # Struve functions of a constant order a in b (DLMF 11.4.23–26): H_a′ = ½(H_(a−1) − H_(a+1) + t),
    # L_a′ = ½(L_(a−1) + L_(a+1) + t), with t = (b/2)^a/(√π·Γ(a + 3/2))
    "struve": ("struve(a, b)", (CONSTANT, ("out", "struveslope(a, b, -1.0)"))),
    "modstruve": ("modstruve(a, b)", (CONSTANT, ("out", "struveslope(a, b, 1.0)"))),
    # Jacobi's elliptic functions of u = a for a constant parameter m = b (scipy.special.ellipj's four
    # outputs, one op each): sn′ = cn·dn, cn′ = −sn·dn, dn′ = −m·sn·cn, and the amplitude φ′ = dn (DLMF 22.13.1–3)
    "ellipj_sn": ("ellipj_sn(a, b)", (("out", "ellipj_cn(a, b) * ellipj_dn(a, b)"), CONSTANT)),
    "ellipj_cn": ("ellipj_cn(a, b)", (("out", "-ellipj_sn(a, b) * ellipj_dn(a, b)"), CONSTANT)),
    "ellipj_dn": ("ellipj_dn(a, b)", (("out", "-b * ellipj_sn(a, b) * ellipj_cn(a, b)"), CONSTANT)),
    "ellipj_ph": ("ellipj_ph(a, b)", (("out", "ellipj_dn(a, b)"), CONSTANT)),
    # Hurwitz's ζ(s, q) of a constant s in q: −s·ζ(s + 1, q) (scipy.special.zeta with two arguments)
    "zeta": ("zeta(a, b)", (CONSTANT, ("out", "-a * zeta(a + 1.0, b) + 0.0 * y"))),  # (NaN where SciPy's ζ is)
    # incomplete elliptic integrals F(φ|m), E(φ|m) in the amplitude φ (m, the parameter, constant)
    "ellipkinc": ("ellipkinc(a, b)", (("out", "1.0 / sqrt(1.0 - b * sin(a) * sin(a))"), CONSTANT)),
    "ellipeinc": ("ellipeinc(a, b)", (("out", "sqrt(1.0 - b * sin(a) * sin(a))"), CONSTANT)),
    # orthogonal polynomials of a constant degree a at b (SciPy's, real degrees too, through
    # hypergeometric functions), by the classical derivative identities (DLMF 18.9.19–23):
    # C_n^(λ)′ = 2λ·C_(n−1)^(λ+1), so P_n′ = C_(n−1)^(3/2) and U_n′ = 2·C_(n−1)^(2); T_n′ = n·U_(n−1);
    # L_n′ = −L_(n−1)^(1); H_n′ = 2n·H_(n−1), He_n′ = n·He_(n−1); degree −1 is SciPy's 0
    "eval_legendre": ("eval_legendre(a, b)", (CONSTANT, ("out", "eval_gegenbauer(a - 1.0, 1.5, b)"))),
    "eval_chebyt": ("eval_chebyt(a, b)", (CONSTANT, ("out", "a * eval_chebyu(a - 1.0, b)"))),
    "eval_chebyu": ("eval_chebyu(a, b)", (CONSTANT, ("out", "2.0 * eval_gegenbauer(a - 1.0, 2.0, b)"))),
    # C_n(x) = 2·T_n(x/2), S_n(x) = U_n(x/2), and the shifted ones of 2x − 1
    "eval_chebyc": ("eval_chebyc(a, b)", (CONSTANT, ("out", "a * eval_chebyu(a - 1.0, 0.5 * b)"))),
    "eval_chebys": ("eval_chebys(a, b)", (CONSTANT, ("out", "eval_gegenbauer(a - 1.0, 2.0, 0.5 * b)"))),
    "eval_sh_legendre": ("eval_sh_legendre(a, b)",
                         (CONSTANT, ("out", "2.0 * eval_gegenbauer(a - 1.0, 1.5, 2.0 * b - 1.0)"))),
    "eval_sh_chebyt": ("eval_sh_chebyt(a, b)", (CONSTANT, ("out", "2.0 * a * eval_chebyu(a - 1.0, 2.0 * b - 1.0)"))),
    "eval_sh_chebyu": ("eval_sh_chebyu(a, b)",
                       (CONSTANT, ("out", "4.0 * eval_gegenbauer(a - 1.0, 2.0, 2.0 * b - 1.0)"))),
    "eval_laguerre": ("eval_laguerre(a, b)", (CONSTANT, ("out", "-eval_genlaguerre(a - 1.0, 1.0, b)"))),
    "eval_hermite": ("eval_hermite(a, b)", (CONSTANT, ("out", "2.0 * a * eval_hermite(maximum(a - 1.0, 0.0), b)"))),
    "eval_hermitenorm": ("eval_hermitenorm(a, b)",
                         (CONSTANT, ("out", "a * eval_hermitenorm(maximum(a - 1.0, 0.0), b)"))),
    # the generalized exponential integral E_n(b) of a constant n: E_n′ = −E_(n−1), E_0 = e^(−b)/b
    "expn": ("expn(a, b)", (CONSTANT, ("out", "expnslope(a, b)"))),
    # the confluent limit function ₀F₁(; a; b): in b, ₀F₁(; a + 1; b)/a
    "hyp0f1": ("hyp0f1(a, b)", (CONSTANT, ("out", "hyp0f1(a + 1.0, b) / a"))),
    # spherical Bessel functions of integer order n (a constant) in z, their slopes SciPy's own
    **{f"spherical_{k}": (f"spherical_{k}(a, b)", (CONSTANT, ("out", f"spherical_{k}d(a, b)"))) for k in SPHERICAL},
    # Huber's loss of b with threshold a: b²/2 inside |b| ≤ a, a·(|b| − a/2) outside
    "huber": ("huber(a, b)", (("out", "huberdelta(a, b)"), ("out", "minimum(maximum(b, -a), a)"))),
    "pseudo_huber": ("pseudo_huber(a, b)", (("out", "2.0 * a * (y / (a * a)) - b * b / (a * (1.0 + y / (a * a)))"),
                                            ("out", "b / (1.0 + y / (a * a))"))),
    "beta": ("beta(a, b)", (("out", "y * (digamma(a) - digamma(a + b))"),
                            ("out", "y * (digamma(b) - digamma(a + b))"))),
    # the rising factorial Γ(a + b)/Γ(a)
    "poch": ("poch(a, b)", (("out", "y * (digamma(a + b) - digamma(a))"), ("out", "y * digamma(a + b)"))),
    # distribution functions: the regularized incomplete gamma functions P(a, b), Q(a, b) and the χ²
    # (a degrees of freedom: P(a/2, b/2)), in both arguments (in b a density, in a gammaincda), and
    # Student's t (a degrees of freedom, a constant) in its point b
    "gammainc": ("gammainc(a, b)", (("out", "gammaincda(a, b)"), ("out", "gammadensity(a, b)"))),
    "gammaincc": ("gammaincc(a, b)", (("out", "-gammaincda(a, b)"), ("out", "-gammadensity(a, b)"))),
    "chdtr": ("chdtr(a, b)", (("out", "0.5 * gammaincda(0.5 * a, 0.5 * b)"),
                              ("out", "0.5 * gammadensity(0.5 * a, 0.5 * b)"))),
    "chdtrc": ("chdtrc(a, b)", (("out", "-0.5 * gammaincda(0.5 * a, 0.5 * b)"),
                                ("out", "-0.5 * gammadensity(0.5 * a, 0.5 * b)"))),
    "stdtr": ("stdtr(a, b)", (("out", "stdtrdf(a, b)"), ("out", "tdensity(a, b)"))),
    # the Poisson distribution function of floor(a) in its mean b: Q(floor(a) + 1, b), and its complement
    "pdtr": ("pdtr(a, b)", (CONSTANT, ("out", "-gammadensity(floor(a) + 1.0, b)"))),
    "pdtrc": ("pdtrc(a, b)", (CONSTANT, ("out", "gammadensity(floor(a) + 1.0, b)"))),
    "polygamma": ("polygamma(a, b)", (CONSTANT, ("out", "polygamma(a + 1.0, b)"))),  # ψ⁽ᵃ⁾(b), order a constant
    # quantiles: in the probability b the inverse's derivative is 1/density at it, in the shape
    # parameter a −(∂P/∂a)/(∂P/∂x) there (for P and for Q = 1 − P alike); stdtrit's a a constant
    "gammaincinv": ("gammaincinv(a, b)", (("out", "-gammaincda(a, y) / gammadensity(a, y)"),
                                          ("out", "1.0 / gammadensity(a, y)"))),
    "gammainccinv": ("gammainccinv(a, b)", (("out", "-gammaincda(a, y) / gammadensity(a, y)"),
                                            ("out", "-1.0 / gammadensity(a, y)"))),
    "chdtri": ("chdtri(a, b)", (("out", "-gammaincda(0.5 * a, 0.5 * y) / gammadensity(0.5 * a, 0.5 * y)"),
                                ("out", "-2.0 / gammadensity(0.5 * a, 0.5 * y)"))),  # of chdtrc
    "stdtrit": ("stdtrit(a, b)", (("out", "-stdtrdf(a, y) / tdensity(a, y)"), ("out", "1.0 / tdensity(a, y)"))),
    # Bessel functions of a constant real order a at b, and their exponentially scaled forms
    # (jve, yve equal jv, yv at real b; ive = iv·e^(−|b|), kve = kv·e^b): the recurrences
    # J′ = (J_{a−1} − J_{a+1})/2, Y likewise, I′ = (I_{a−1} + I_{a+1})/2, K′ = −(K_{a−1} + K_{a+1})/2
    "jv": ("jv(a, b)", (CONSTANT, ("out", "0.5 * (jv(a - 1.0, b) - jv(a + 1.0, b))"))),
    "yv": ("yv(a, b)", (CONSTANT, ("out", "0.5 * (yv(a - 1.0, b) - yv(a + 1.0, b))"))),
    "iv": ("iv(a, b)", (CONSTANT, ("out", "0.5 * (iv(a - 1.0, b) + iv(a + 1.0, b))"))),
    "kv": ("kv(a, b)", (CONSTANT, ("out", "-0.5 * (kv(a - 1.0, b) + kv(a + 1.0, b))"))),
    "jve": ("jve(a, b)", (CONSTANT, ("out", "0.5 * (jve(a - 1.0, b) - jve(a + 1.0, b))"))),
    "yve": ("yve(a, b)", (CONSTANT, ("out", "0.5 * (yve(a - 1.0, b) - yve(a + 1.0, b))"))),
    "ive": ("ive(a, b)", (CONSTANT, ("out", "0.5 * (ive(a - 1.0, b) + ive(a + 1.0, b)) - sign(b) * y"))),
    "kve": ("kve(a, b)", (CONSTANT, ("out", "y - 0.5 * (kve(a - 1.0, b) + kve(a + 1.0, b))"))),
    # binomial coefficient Γ(a + 1)/(Γ(b + 1)·Γ(a − b + 1)) of real a, b
    "binom": ("binom(a, b)", (("out", "y * (digamma(a + 1.0) - digamma(a - b + 1.0))"),
                              ("out", "y * (digamma(a - b + 1.0) - digamma(b + 1.0))"))),
    "powm1": ("powm1(a, b)", (("out", "powgrad(a, b)"), ("out", "log(nonzero(a)) * (y + 1.0)"))),  # aᵇ − 1
    # Box–Cox transforms (aᵇ − 1)/b and ((1 + a)ᵇ − 1)/b (log a, log1p a at b = 0)
    "boxcox": ("boxcox(a, b)", (("out", "power(a, b - 1.0)"), ("out", "boxcoxgrad(log(a), b, y)"))),
    "boxcox1p": ("boxcox1p(a, b)", (("out", "power(1.0 + a, b - 1.0)"), ("out", "boxcoxgrad(log1p(a), b, y)"))),
    # their inverses (1 + b·a)^(1/b) and that − 1 (e^a, e^a − 1 at b = 0)
    "inv_boxcox": ("inv_boxcox(a, b)", (("out", "y / (1.0 + b * a)"), ("out", "y * invboxcoxgrad(a, b)"))),
    "inv_boxcox1p": ("inv_boxcox1p(a, b)", (("out", "(y + 1.0) / (1.0 + b * a)"),
                                            ("out", "(y + 1.0) * invboxcoxgrad(a, b)"))),
}

# Elementwise ops of three arguments, as BINARY: the beta family's distribution functions of the
# point c: the regularized incomplete beta function I_c(a, b), its complement, their inverses and
# the F distribution (a, b degrees of freedom) with its quantile, in all three arguments (in a
# and b by the continued fraction's derivatives, _betaincd)
TERNARY: dict[str, tuple[str, tuple]] = {
    "betainc": ("betainc(a, b, c)", (("out", "betaincda(a, b, c)"), ("out", "betaincdb(a, b, c)"),
                                     ("out", "betadensity(a, b, c)"))),
    "betaincc": ("betaincc(a, b, c)", (("out", "-betaincda(a, b, c)"), ("out", "-betaincdb(a, b, c)"),
                                       ("out", "-betadensity(a, b, c)"))),
    # (in a shape parameter: −(∂I/∂a)/(∂I/∂x) at the quantile, for I and its complement alike)
    "betaincinv": ("betaincinv(a, b, c)", (("out", "-betaincda(a, b, y) / betadensity(a, b, y)"),
                                           ("out", "-betaincdb(a, b, y) / betadensity(a, b, y)"),
                                           ("out", "1.0 / betadensity(a, b, y)"))),
    "betainccinv": ("betainccinv(a, b, c)", (("out", "-betaincda(a, b, y) / betadensity(a, b, y)"),
                                             ("out", "-betaincdb(a, b, y) / betadensity(a, b, y)"),
                                             ("out", "-1.0 / betadensity(a, b, y)"))),
    "fdtr": ("fdtr(a, b, c)", (("out", "fdtrd(a, b, c, 0)"), ("out", "fdtrd(a, b, c, 1)"),
                               ("out", "fdensity(a, b, c)"))),
    # the gamma distribution function of rate a and shape b at c, P(b, a·c), and its complement
    "gdtr": ("gdtr(a, b, c)", (("out", "c * gammadensity(b, a * c)"), ("out", "gammaincda(b, a * c)"),
                               ("out", "a * gammadensity(b, a * c)"))),
    "gdtrc": ("gdtrc(a, b, c)", (("out", "-c * gammadensity(b, a * c)"), ("out", "-gammaincda(b, a * c)"),
                                 ("out", "-a * gammadensity(b, a * c)"))),
    # the associated Legendre function P_b^a(c) of constant order a and degree b (Ferrers' kind,
    # SciPy's phase): (1 − c²)·P′ = (b + 1)·c·P − (b − a + 1)·P_(b+1)^a (DLMF 14.10.5)
    "lpmv": ("lpmv(a, b, c)", (CONSTANT, CONSTANT, ("out", "((b + 1.0) * c * y - (b - a + 1.0) * lpmv(a, b + 1.0, c)) "
                                                            "/ (1.0 - c * c)"))),
    "fdtrc": ("fdtrc(a, b, c)", (("out", "-fdtrd(a, b, c, 0)"), ("out", "-fdtrd(a, b, c, 1)"),
                                 ("out", "-fdensity(a, b, c)"))),
    "fdtri": ("fdtri(a, b, c)", (("out", "-fdtrd(a, b, y, 0) / fdensity(a, b, y)"),
                                 ("out", "-fdtrd(a, b, y, 1) / fdensity(a, b, y)"),
                                 ("out", "1.0 / fdensity(a, b, y)"))),  # of fdtr
    # the binomial (b trials) and negative binomial (b successes) distribution functions of floor(a)
    # in the probability c: I_(1−c)(b − k, k + 1) and I_c(b, k + 1), and their complements (SciPy
    # truncates a and b to integers)
    "bdtr": ("bdtr(a, b, c)", (CONSTANT, CONSTANT, ("out", "-binomslope(a, floor(b), c)"))),
    "bdtrc": ("bdtrc(a, b, c)", (CONSTANT, CONSTANT, ("out", "binomslope(a, floor(b), c)"))),
    "nbdtr": ("nbdtr(a, b, c)", (CONSTANT, CONSTANT, ("out", "betadensity(floor(b), floor(a) + 1.0, c)"))),
    "nbdtrc": ("nbdtrc(a, b, c)", (CONSTANT, CONSTANT, ("out", "-betadensity(floor(b), floor(a) + 1.0, c)"))),
    # Gegenbauer and generalized Laguerre polynomials of a constant degree a and parameter b at c
    # (DLMF 18.9.19, 18.9.23), and Kummer's ₁F₁(a; b; c) in c: (a/b)·₁F₁(a + 1; b + 1; c) (DLMF 13.3.15)
    "eval_gegenbauer": ("eval_gegenbauer(a, b, c)",
                        (CONSTANT, CONSTANT, ("out", "2.0 * b * eval_gegenbauer(a - 1.0, b + 1.0, c)"))),
    "eval_genlaguerre": ("eval_genlaguerre(a, b, c)",
                         (CONSTANT, CONSTANT, ("out", "-eval_genlaguerre(a - 1.0, b + 1.0, c)"))),
    "hyp1f1": ("hyp1f1(a, b, c)", (CONSTANT, CONSTANT, ("out", "a / b * hyp1f1(a + 1.0, b + 1.0, c)"))),
}

# Elementwise ops of four arguments, as BINARY: Jacobi polynomials of a constant degree a and
# parameters b, c at d, P_n^(α,β)′ = ½(n + α + β + 1)·P_(n−1)^(α+1,β+1) (DLMF 18.9.15)
QUATERNARY: dict[str, tuple[str, tuple]] = {
    "eval_jacobi": ("eval_jacobi(a, b, c, d)", (CONSTANT, CONSTANT, CONSTANT, (
        "out", "jacobislope(a, b, c, d)"))),
}

#: the ops of recorded masks (jacc.masks): comparisons and logic, 1.0 for true and 0.0 for false
MASK_OPS = frozenset(["less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "logical_and",
                      "logical_or", "logical_xor", "logical_not", "isnan", "isfinite", "isinf"])

#: every elementwise op of several arguments: name → (primal, rules, the formulas' argument names)
ELEMENTWISE = {**{n: (f, r, "a, b") for n, (f, r) in BINARY.items()},
               **{n: (f, r, "a, b, c") for n, (f, r) in TERNARY.items()},
               **{n: (f, r, "a, b, c, d") for n, (f, r) in QUATERNARY.items()}}


def _tie(a, b):
    """∂max(a, b)/∂a: 1 where a wins, ½ on ties (symmetric), 0 elsewhere."""
    return (a > b) + 0.5 * (a == b)


# The pow rules follow JAX at a = 0: ∂aᵇ/∂a is 0 where b = 0 (aᵇ ≡ 1 there; b·a^(b−1) would be
# 0·∞), and ∂aᵇ/∂b = log(a)·aᵇ is 0 at a = 0, b > 0 (aᵇ → 0 faster than log a → −∞).
def _powgrad(a, b):
    """∂aᵇ/∂a = b·a^(b−1), exactly 0 where b = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, b * np.power(a, b - 1.0))


def _nonzero(a):
    """``a`` with zeros replaced by 1 (so log(a) is 0 there and log(a)·aᵇ is 0, not 0·∞)."""
    return np.where(a == 0, 1.0, a)


def _ftie(a, b):
    """∂fmax(a, b)/∂a: as :func:`_tie`, and 1 where only b is NaN (fmax ignores a NaN)."""
    return (a > b) + 0.5 * (a == b) + (b != b) * (a == a)


def _lndtrgrad(x, y):
    """∂log_ndtr(x)/∂x = φ(x)/Φ(x): e^(−x²/2 − y)/√(2π), whose exponent cancels for very negative
    x (relative error ½x²·ε: 5e-9 at −10⁴, 1.9 at −10⁸, inf past −10¹⁰), and there the Mills ratio's
    series t/(1 − u + 3u² − 15u³ + …), t = −x, u = 1/x² (its truncation is below 1e-15 past −40)."""
    x = lazy.asarray(x, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        near = 0.3989422804014327 * np.exp(-0.5 * x * x - y)
        u = 1.0 / (x * x)
        far = -x / (1.0 + u * (-1.0 + u * (3.0 + u * (-15.0 + u * (105.0 + u * (-945.0 + u * 10395.0))))))
    return np.where(x < -40.0, far, near)


def _sincgrad(x, y):
    """∂sinc(x)/∂x = (cos πx − sinc x)/x, by its Taylor series where that cancels (|πx| < 0.1)."""
    t = np.pi * lazy.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        far = (np.cos(t) - y) / x
    t2 = t * t
    near = np.pi * t * (-1 / 3 + t2 * (1 / 30 + t2 * (-1 / 840 + t2 / 45360)))
    return np.where(np.abs(t) < 0.1, near, far)


def _xlogy(a, b, log=np.log):
    """a·log(b), 0 where a = 0 (unless b is NaN), as scipy.special.xlogy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == 0) & (b == b), 0.0, a * log(b))


#: the smallest normal float64: a ratio below it has lost digits (SciPy's rel_entr then logs a and b apart)
_TINY = 2.2250738585072014e-308


def _logratio(a, b, xp=np):
    """log(a/b) for a, b > 0 as SciPy's ``rel_entr`` computes it: log1p((a − b)/b) where a/b is in
    (0.5, 2), log(a) − log(b) where a/b over- or underflows, else log(a/b) (the plain quotient gave
    inf for rel_entr's slope at (2, 1e-310), and 33 % off near a = b: hunt CJ)."""
    with np.errstate(all="ignore"):
        r = a / b
        return xp.where((r > 0.5) & (r < 2.0), xp.log1p((a - b) / b),
                        xp.where((r > _TINY) & (r < np.inf), xp.log(r), xp.log(a) - xp.log(b)))


logratio = lazy.portable(_logratio)


def _special(name: str, fallback: Callable | None = None) -> Callable:
    """scipy.special.<name> on arrays, imported on first use; SciPy is optional, so without it
    ``fallback`` (a scalar function) runs elementwise, or an ImportError names the op."""
    def fn(*xs):
        try:
            import scipy.special as sp
        except ImportError:
            if fallback is None:
                raise ImportError(f"the op {name!r} needs SciPy (pip install scipy)") from None
            return np.vectorize(fallback, otypes=[float])(*xs)
        return getattr(sp, name)(*xs)
    fn.__name__ = name
    return fn


def _i1grad(x, y):
    """I₁′(x) = I₀(x) − I₁(x)/x, and ½ at x = 0."""
    return np.where(x == 0, 0.5, np.i0(x) - y / _nonzero(x))


def _rgammagrad(x, y):
    """(1/Γ)′(x) = −ψ(x)/Γ(x), and (−1)ⁿ·n! at Γ's poles x = −n, where 1/Γ is 0 and ψ infinite (the
    product was 0·∞ = NaN there)."""
    pole = (x <= 0) & (x == np.floor(x))
    n = np.where(pole, -x, 0.0)
    at_pole = np.where(np.mod(n, 2) == 0, 1.0, -1.0) * np.exp(_special("gammaln")(n + 1.0))  # (n! as
    # exp(log Γ): PyTorch, which lowers these helpers, has lgamma and no gamma)
    return np.where(pole, at_pole, -y * _special("digamma")(np.where(pole, 1.0, x)))


def _polygamma(n, x):
    """ψ⁽ⁿ⁾(x) = (−1)ⁿ⁺¹·n!·ζ(n + 1, x) for n ≥ 1, ψ(x) for n = 0: SciPy's polygamma from its ufuncs
    alone (its own function converts its arguments to plain arrays, which a program cannot lower)."""
    sp = _scipy_special()
    n = lazy.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(n == 0, sp.psi(x), (-1.0) ** (n + 1.0) * sp.gamma(n + 1.0) * sp.zeta(n + 1.0, x))


def _expnslope(n, x):
    """E_n′(x) = −E_(n−1)(x), −e^(−x)·(1 + x)/x² for n = 0 (E_0(x) = e^(−x)/x), NaN below (SciPy's E_n)."""
    sp = _scipy_special()
    n = lazy.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(n >= 1.0, -sp.expn(np.maximum(n - 1.0, 0.0), x),
                        np.where(n < 0.0, np.nan, -np.exp(-x) * (1.0 + x) / (x * x)))  # (SciPy: NaN below 0)


def _struveslope(v, z, sign):
    """The slope in z of Struve's H_v (``sign`` −1) or the modified L_v (+1): ½(F_(v−1) ± F_(v+1) +
    (z/2)^v/(√π·Γ(v + 3/2))) (DLMF 11.4.23–26)."""
    sp = _scipy_special()
    f = sp.struve if sign < 0 else sp.modstruve
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slope = 0.5 * (f(v - 1.0, z) + sign * f(v + 1.0, z)
                       + np.power(0.5 * z, v) / (1.7724538509055159 * sp.gamma(v + 1.5)))
    # (order −1 at 0: F_(−2)(0) and the power term are infinities that cancel; F_(−1) is even there)
    return np.where((z == 0.0) & (v == -1.0), 0.0, slope)


#: where Lambert's W has its branch point, −1/e (the float nearest it): both real branches start
#: there; and −1/e less that float (x + 1/e = (x − that float) − this keeps its digits near −1/e)
LAMBERT_BRANCH_POINT = -0.36787944117144233
_LAMBERT_BRANCH_REST = 1.2428753672788363e-17


def lambert_real(x: Any, branch: int) -> Any:
    """Where Lambert's W of branch ``branch`` (0 or −1) is real at ``x``: from −1/e on, and on
    branch −1 below 0 (False at NaN)."""
    with np.errstate(invalid="ignore"):
        return (x >= LAMBERT_BRANCH_POINT) & ((x < 0.0) if branch else True)


def _lambertw(branch: int) -> Callable:
    """The real branch ``branch`` (0 or −1) of SciPy's Lambert W as real numbers, NaN where SciPy's
    value is complex (below −1/e, and on branch −1 from 0 up); one statement of a program."""
    def fn(x):
        sp = _scipy_special()
        inside = lambert_real(x, branch)
        return np.where(inside, sp.lambertw(np.where(inside, x, -0.25), branch).real, np.nan)
    fn.__name__ = "lambertw_m1" if branch else "lambertw"
    return lazy.recordable(fn)


def _lambertwslope(x, y, side):
    """W′ = e^(−W)/(1 + W) on a real branch (``side`` +1: k = 0, −1: k = −1), and near the branch
    point −1/e the derivative of W's series in p = ±√(2(e·x + 1)) (Corless et al. 1996, eq. 4.22):
    W = −1 + p − p²/3 + 11p³/72 − 43p⁴/540 + 769p⁵/17280, dp/dx = e/p. There 1 + W is about p and
    SciPy's W itself loses digits (1e-5 relative within 1e-9 of −1/e), which the quotient multiplied."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # (x + 1/e with 1/e in two parts: x − (−1/e)'s float is exact near it, so t keeps its digits)
        t = 2.0 * math.e * ((x - LAMBERT_BRANCH_POINT) - _LAMBERT_BRANCH_REST)
        p = side * np.sqrt(np.maximum(t, 0.0))
        series = math.e / p * (1.0 + p * (-2.0 / 3.0 + p * (11.0 / 24.0 + p * (-43.0 / 135.0 + p * 769.0 / 3456.0))))
        return np.where(np.abs(t) < 1e-4, series, np.exp(-y) / (1.0 + y))


def _kolmogp(x):
    """kolmogorov′(x): SciPy's own (its private ufunc; where that is gone, kstwobign's density negated)."""
    own = getattr(getattr(_scipy_special(), "_ufuncs", None), "_kolmogp", None)
    if own is not None:
        return own(x)
    from scipy.stats import kstwobign
    return -kstwobign.pdf(x)


def _jacobislope(n, a, b, x):
    """P_n^(a,b)′(x) = ½(n + a + b + 1)·P_(n−1)^(a+1,b+1)(x), and 0 at degree 0 (where SciPy's degree
    −1 is NaN at x = −1, not the identity's 0)."""
    jacobi = NUMPY_NAMES["eval_jacobi"]  # (SciPy's, whole degrees as integers: _counts)
    n = lazy.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(n == 0, 0.0, 0.5 * (n + a + b + 1.0) * jacobi(n - 1.0, a + 1.0, b + 1.0, x))


def _j1grad(x, y):
    """J₁′(x) = J₀(x) − J₁(x)/x, and ½ at x = 0."""
    return np.where(x == 0, 0.5, _special("j0")(x) - y / _nonzero(x))


def _huberdelta(a, b):
    """∂huber(δ, r)/∂δ: 0 inside |r| ≤ δ, |r| − δ outside (NaN for δ < 0, where huber is inf)."""
    return np.where(a < 0, np.nan, np.where(np.abs(b) <= a, 0.0, np.abs(b) - a))


def _gammadensity(a, x):
    """∂P(a, x)/∂x = x^(a−1)·e^(−x)/Γ(a) (NaN for x < 0, as P itself)."""
    sp = _scipy_special()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(x < 0, np.nan, np.exp(sp.xlogy(a - 1.0, x) - x - sp.gammaln(a)))


@lazy.recordable  # (a loop to convergence: one statement of a program, run on its arrays)
def _gammaincda(a, x):
    """∂P(a, x)/∂a of the regularized lower incomplete gamma function, by differentiating its
    series (x < a + 1) or Legendre's continued fraction for Q = 1 − P (Lentz's method) term by
    term with respect to a (as Numerical Recipes' gser/gcf compute P and Q): about 1e-14 relative."""
    sp = _scipy_special()
    a, x = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(x, dtype=float))
    out = np.full(a.shape, np.nan)
    ok = (a > 0) & (x >= 0) & np.isfinite(a)
    out[ok & ((x == 0) | np.isinf(x))] = 0.0  # P is 0 or 1 whatever a is
    eps, tiny = 1e-17, 1e-300
    series = ok & (x > 0) & np.isfinite(x) & (x < a + 1.0)
    if series.any():
        av, xv = a[series], x[series]
        term, total, dtotal, r = np.ones_like(av), np.ones_like(av), np.zeros_like(av), np.zeros_like(av)
        live = np.ones(av.shape, bool)
        for n in range(1, 100000):  # t_n = t_{n−1}·x/(a + n); its log-derivative r_n = r_{n−1} − 1/(a + n)
            term = np.where(live, term * xv / (av + n), 0.0)
            r = r - 1.0 / (av + n)
            total, dtotal = total + term, dtotal + term * r
            live = live & ((term > eps * total) | (np.abs(term * r) > eps * np.abs(dtotal)))
            if not live.any():
                break
        scale = np.exp(sp.xlogy(av, xv) - xv - sp.gammaln(av + 1.0))
        out[series] = scale * (total * (np.log(xv) - sp.digamma(av + 1.0)) + dtotal)
    fraction = ok & np.isfinite(x) & (x >= a + 1.0)
    if fraction.any():
        av, xv = a[fraction], x[fraction]
        b = xv + 1.0 - av  # db/da = −1 at every step
        c, dc = np.full_like(av, 1.0 / tiny), np.zeros_like(av)
        d, dd = 1.0 / b, 1.0 / (b * b)
        h, dh = d.copy(), dd.copy()
        live = np.ones(av.shape, bool)
        for i in range(1, 100000):
            an, dan = -i * (i - av), float(i)
            b = b + 2.0
            den = an * d + b
            den = np.where(np.abs(den) < tiny, tiny, den)
            d_new = 1.0 / den
            dd = -d_new * d_new * (dan * d + an * dd - 1.0)
            d = d_new
            c_new = b + an / c
            c_new = np.where(np.abs(c_new) < tiny, tiny, c_new)
            dc = -1.0 + dan / c - an * dc / c / c
            c = c_new
            step, dstep = d * c, dd * c + d * dc
            h, dh = np.where(live, h * step, h), np.where(live, dh * step + h * dstep, dh)
            # (the derivative converges on its own: where a is an integer the fraction ends, its derivative not)
            live = live & ((np.abs(step - 1.0) > eps) | (np.abs(h * dstep) > eps * np.abs(dh)))
            if not live.any():
                break
        scale = np.exp(sp.xlogy(av, xv) - xv - sp.gammaln(av))
        out[fraction] = -scale * (h * (np.log(xv) - sp.digamma(av)) + dh)  # ∂P/∂a = −∂Q/∂a
    return out


def _betafraction(a, b, x):
    """The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz) with its
    derivatives in a and b carried along: (h, ∂h/∂a, ∂h/∂b)."""
    tiny, eps = 1e-300, 1e-17

    def guard(v):
        return np.where(np.abs(v) < tiny, tiny, v)

    d = guard(1.0 - (a + b) * x / (a + 1.0))
    d_a, d_b = -x * (1.0 - b) / (a + 1.0) ** 2, -x / (a + 1.0)
    d, d_a, d_b = 1.0 / d, -d_a / (d * d), -d_b / (d * d)
    c, c_a, c_b = np.ones_like(d), np.zeros_like(d), np.zeros_like(d)
    h, h_a, h_b = d.copy(), d_a.copy(), d_b.copy()
    live = np.ones(d.shape, bool)
    for m in range(1, 100000):
        for even in (True, False):
            if even:  # m(b − m)x / ((a − 1 + 2m)(a + 2m))
                p, q = a - 1.0 + 2 * m, a + 2.0 * m
                aa = m * (b - m) * x / (p * q)
                aa_a, aa_b = -aa * (1.0 / p + 1.0 / q), m * x / (p * q)
            else:  # −(a + m)(a + b + m)x / ((a + 2m)(a + 1 + 2m))
                p, q = a + 2.0 * m, a + 1.0 + 2 * m
                aa = -(a + m) * (a + b + m) * x / (p * q)
                aa_a = aa * (1.0 / (a + m) + 1.0 / (a + b + m) - 1.0 / p - 1.0 / q)
                aa_b = aa / (a + b + m)
            den = guard(1.0 + aa * d)  # d ← 1/(1 + aa·d)
            den_a, den_b = aa_a * d + aa * d_a, aa_b * d + aa * d_b
            d, d_a, d_b = 1.0 / den, -den_a / (den * den), -den_b / (den * den)
            cn = guard(1.0 + aa / c)  # c ← 1 + aa/c
            c_a, c_b = aa_a / c - aa * c_a / (c * c), aa_b / c - aa * c_b / (c * c)
            c = cn
            step = d * c
            step_a, step_b = d_a * c + d * c_a, d_b * c + d * c_b
            h, h_a, h_b = (np.where(live, h * step, h), np.where(live, h_a * step + h * step_a, h_a),
                           np.where(live, h_b * step + h * step_b, h_b))
        live = live & ((np.abs(step - 1.0) > eps) | (np.abs(h * step_a) > eps * np.abs(h_a))
                       | (np.abs(h * step_b) > eps * np.abs(h_b)))
        if not live.any():
            break
    return h, h_a, h_b


def _betaincd(a, b, x):
    """(∂I_x(a, b)/∂a, ∂I_x(a, b)/∂b) of the regularized incomplete beta function: its continued
    fraction differentiated term by term (on 1 − I_(1−x)(b, a) where x > (a + 1)/(a + b + 2),
    where it converges faster)."""
    sp = _scipy_special()
    a, b, x = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (a, b, x)])
    da, db = np.full(a.shape, np.nan), np.full(a.shape, np.nan)
    ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b) & (x >= 0) & (x <= 1)
    ends = ok & ((x == 0) | (x == 1))
    da[ends], db[ends] = 0.0, 0.0
    inner = ok & (x > 0) & (x < 1)
    flip = x > (a + 1.0) / (a + b + 2.0)
    for swapped in (False, True):
        pick = inner & (flip == swapped)
        if not pick.any():
            continue
        # I_x(p, q) with (p, q, y) = (a, b, x), or 1 − I_(1−x)(b, a)
        p, q, y = (b[pick], a[pick], 1.0 - x[pick]) if swapped else (a[pick], b[pick], x[pick])
        h, h_p, h_q = _betafraction(p, q, y)
        front = np.exp(sp.xlogy(p, y) + sp.xlog1py(q, -y) - sp.betaln(p, q)) / p
        psi = sp.digamma(p + q)
        lp = np.log(y) - sp.digamma(p) + psi - 1.0 / p  # ∂ log front / ∂p
        lq = np.log1p(-y) - sp.digamma(q) + psi
        dp, dq = front * (h * lp + h_p), front * (h * lq + h_q)
        if swapped:
            da[pick], db[pick] = -dq, -dp
        else:
            da[pick], db[pick] = dp, dq
    return da, db


@lazy.recordable
def _betaincda(a, b, x):
    """∂I_x(a, b)/∂a."""
    return _betaincd(a, b, x)[0]


@lazy.recordable
def _betaincdb(a, b, x):
    """∂I_x(a, b)/∂b."""
    return _betaincd(a, b, x)[1]


@lazy.recordable
def _fdtrd(m, n, x, which: int):
    """∂fdtr(m, n, x)/∂m (``which`` 0) or ∂/∂n (1): fdtr = I_w(m/2, n/2) with w = m·x/(m·x + n)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = m * x + n
        w = m * x / d
        da, db = _betaincd(0.5 * m, 0.5 * n, w)
        slope = _betadensity(0.5 * m, 0.5 * n, w)
        return 0.5 * da + slope * x * n / (d * d) if which == 0 else 0.5 * db - slope * m * x / (d * d)


@lazy.recordable
def _stdtrdf(df, t):
    """∂stdtr(ν, t)/∂ν: stdtr = 1 − I_z(ν/2, ½)/2 for t > 0 (I_z(ν/2, ½)/2 below), z = ν/(ν + t²)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = df + t * t
        z = df / s
        da, _ = _betaincd(0.5 * df, 0.5, z)
        inner = 0.5 * da + _betadensity(0.5 * df, 0.5, z) * t * t / (s * s)
        # (ν past STDTR_NORMAL_DF: the limit, 0; the slope there is of order t⁴φ(t)/ν², where the
        # incomplete beta function's derivative in its shape parameter cancels to inf or NaN)
        return np.where((t == 0) | (df > STDTR_NORMAL_DF), 0.0, -0.5 * np.sign(t) * inner)


#: ν beyond which stdtr's slope in ν is taken as its limit, 0: it is below 10⁻¹⁵ there, where the formula
#: loses it to rounding (2·10⁻¹⁶ for 10⁻¹⁹ at 10⁹; inf and NaN from 10²⁰ on, found by a hunt)
STDTR_NORMAL_DF = 1e7


def _tdensity(df, t):
    """∂stdtr(ν, t)/∂t: Student's t density with ν degrees of freedom, 1/(√ν·B(ν/2, ½))·(1 + t²/ν)^−(ν+1)/2
    (by ``betaln``: the Γ ratio by two ``gammaln`` cancelled, 2·10⁻⁴ off at ν = 10¹², the density
    10⁻⁹ at 10¹⁶; found by a hunt); at ν = ∞ the normal density, its limit."""
    sp = _scipy_special()
    with np.errstate(invalid="ignore", over="ignore"):
        normal = df == np.inf
        nu = np.where(normal, 1.0, df)
        d = np.exp(-0.5 * np.log(nu) - sp.betaln(0.5 * nu, 0.5) - 0.5 * (nu + 1.0) * np.log1p(t * t / nu))
        return np.where(normal, np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi), d)


def _betadensity(a, b, x):
    """∂I_x(a, b)/∂x = x^(a−1)·(1 − x)^(b−1)/B(a, b): the beta density (NaN outside [0, 1])."""
    sp = _scipy_special()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inside = (x >= 0) & (x <= 1)
        return np.where(inside, np.exp(sp.xlogy(a - 1.0, x) + sp.xlog1py(b - 1.0, -x) - sp.betaln(a, b)), np.nan)


def _counts(name: str, *which: int) -> Callable:
    """scipy.special.<name> with the arguments ``which`` (counts, recorded as floats) passed as
    integers where they all are, so SciPy takes its integer loop rather than the deprecated one."""
    fn = _special(name)

    def counted(*xs):
        xs = list(xs)
        for i in which:
            x = np.asarray(xs[i])
            if x.dtype.kind == "f" and np.all(np.isfinite(x)) and np.all(x == np.trunc(x)):
                xs[i] = x.astype(np.int64)
        return fn(*xs)
    counted.__name__ = name
    return counted


def _binomslope(k, n, p):
    """−∂bdtr(k, n, p)/∂p = n·C(n − 1, k)·p^k·(1 − p)^(n−1−k) for 0 ≤ k < n (k = floor(k)), else 0."""
    k = np.floor(k)
    with np.errstate(invalid="ignore"):
        inside = (k >= 0) & (k < n)
        return np.where(inside, _betadensity(np.where(inside, n - k, 1.0), k + 1.0, 1.0 - p), 0.0)


def _fdensity(m, n, x):
    """∂fdtr(m, n, x)/∂x: the F density, the beta density at w = m·x/(m·x + n) times dw/dx."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = m * x + n
        return np.where(x < 0, np.nan, _betadensity(0.5 * m, 0.5 * n, m * x / d) * m * n / (d * d))


def _spencegrad(x):
    """spence′(x) = log(x)/(1 − x), and −1 at x = 1 (NaN below 0, as spence)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 1.0, -1.0, np.log(x) / (1.0 - np.where(x == 1.0, 0.0, x)))


# K(m) = π/2·Σ cₙmⁿ and E(m) = −π/2·Σ cₙmⁿ/(2n − 1) with cₙ = ((2n)!/(4ⁿ n!²))²: their slopes near
# m = 0 from the series, where the closed forms below cancel
_K_SLOPE = (0.25, 2 * 9 / 64, 3 * 25 / 256, 4 * 1225 / 16384, 5 * 3969 / 65536)
_E_SLOPE = (-0.25, -2 * 3 / 64, -3 * 5 / 256, -4 * 175 / 16384, -5 * 441 / 65536)


def _series(coefficients, m):
    return 0.5 * np.pi * sum(c * m ** k for k, c in enumerate(coefficients))


def _cancelling(small, near, closed: Callable[[Any], Any], value, stand_in: float):
    """``near`` where ``small``, else ``closed(value)``: a closed form that cancels (or divides by
    zero) near a point, and a series there; ``closed`` sees ``stand_in`` in place of the small values."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        far = closed(np.where(small, stand_in, value))
    return np.where(small, near, far)


def _ellipkgrad(m, y):
    """K′(m) = (E(m) − (1 − m)·K(m)) / (2m(1 − m)); the series where |m| < 10⁻³."""
    sp = _scipy_special()
    return _cancelling(np.abs(m) < 1e-3, _series(_K_SLOPE, m),
                       lambda s: (sp.ellipe(s) - (1.0 - s) * y) / (2.0 * s * (1.0 - s)), m, 0.5)


def _ellipegrad(m, y):
    """E′(m) = (E(m) − K(m)) / (2m); the series where |m| < 10⁻³."""
    sp = _scipy_special()
    return _cancelling(np.abs(m) < 1e-3, _series(_E_SLOPE, m), lambda s: (y - sp.ellipk(s)) / (2.0 * s), m, 0.5)


def _boxcoxgrad(log, lam, y):
    """∂/∂λ of (e^(λ·L) − 1)/λ with L = log(x): (e^(λL)·L − y)/λ, and L²/2 + λL³/3 + λ²L⁴/8 where
    |λL| < 10⁻⁴ (the difference cancels there)."""
    return _cancelling(np.abs(lam * log) < 1e-4, log * log * (0.5 + lam * log / 3.0 + lam * lam * log * log / 8.0),
                       lambda s: (np.where((log == -np.inf) & (s > 0), 0.0, np.exp(s * log) * log) - y) / s,
                       lam, 1.0)  # (x = 0, L = −∞: e^(λL)·L → 0 for λ > 0, where the product was 0·∞)


def _invboxcoxgrad(y, lam):
    """∂ log((1 + λy)^(1/λ))/∂λ = (y/(1 + λy) − log1p(λy)/λ)/λ, and its series
    −y²/2 + 2λy³/3 − 3λ²y⁴/4 where |λy| < 10⁻⁴ (the difference cancels there)."""
    return _cancelling(np.abs(lam * y) < 1e-4, y * y * (-0.5 + lam * y * (2.0 / 3.0 - 0.75 * lam * y)),
                       lambda s: (y / (1.0 + s * y) - np.log1p(s * y) / s) / s, lam, 1.0)


def _scipy_special():
    try:
        import scipy.special as sp
    except ImportError:
        raise ImportError("the incomplete gamma and Student-t ops need SciPy (pip install scipy)") from None
    return sp


def _exprelgrad(x, y):
    """exprel′(x) = (eˣ − exprel(x))/x, and its Taylor series ½ + x/3 + x²/8 + x³/30 + x⁴/144 + x⁵/840
    where |x| < 0.01 (the difference cancels there; the series' next term is below 2e-16)."""
    small = np.abs(x) < 0.01
    xs = np.where(small, 1.0, x)
    series = 0.5 + x * (1.0 / 3.0 + x * (0.125 + x * (1.0 / 30.0 + x * (1.0 / 144.0 + x / 840.0))))
    return np.where(small, series, (np.exp(xs) - y) / xs)


def _component(name: str, k: int) -> Callable:
    """Output ``k`` of SciPy's tuple-valued ufunc ``name`` (fresnel, sici, airy, ellipj)."""
    def fn(*xs):
        return _special(name)(*xs)[k]
    fn.__name__ = f"{name}_{k}"
    return fn


def _spherical(kind: str, derivative: bool = False) -> Callable:
    """scipy.special.spherical_<kind>(n, z), the orders ``n`` recorded as floats (SciPy casts them
    to integers itself); one statement of a program (it converts its arguments)."""
    def fn(n, z):
        import scipy.special as sp

        with np.errstate(invalid="ignore"):  # (a NaN order: NaN, as SciPy, without its cast warning)
            return getattr(sp, f"spherical_{kind}")(n, z, derivative=derivative)
    fn.__name__ = f"spherical_{kind}{'d' if derivative else ''}"
    return lazy.recordable(fn)


_SPHERICAL_HELPERS = {f"spherical_{k}{'d' * d}": _spherical(k, bool(d)) for k in SPHERICAL for d in (0, 1)}
#: op -> (SciPy's tuple-valued ufunc, the output it is)
_COMPONENTS = {"fresnel_s": ("fresnel", 0), "fresnel_c": ("fresnel", 1), "sici_si": ("sici", 0),
               "sici_ci": ("sici", 1), "airy_ai": ("airy", 0), "airy_aip": ("airy", 1), "airy_bi": ("airy", 2),
               "airy_bip": ("airy", 3), "ellipj_sn": ("ellipj", 0), "ellipj_cn": ("ellipj", 1),
               "ellipj_dn": ("ellipj", 2), "ellipj_ph": ("ellipj", 3)}


def _i1egrad(x, y):
    """(e^(−|x|)·I₁)′ = i0e(x) − i1e(x)/x − sign(x)·i1e(x), and ½ at x = 0."""
    return np.where(x == 0, 0.5, _special("i0e")(x) - y / _nonzero(x) - np.sign(x) * y)


NUMPY_NAMES = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "sin": np.sin,
               "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
               "arctan": np.arctan, "arcsin": np.arcsin, "arccos": np.arccos, "sqrt": np.sqrt,
               "sign": np.sign, "abs": np.abs, "power": np.power, "maximum": np.maximum,
               "minimum": np.minimum, "tie": _tie, "powgrad": _powgrad, "nonzero": _nonzero,
               "exp2": np.exp2, "log2": np.log2, "log10": np.log10, "cbrt": np.cbrt, "sinc": np.sinc,
               "sincgrad": _sincgrad, "lndtrgrad": _lndtrgrad, "hypot": np.hypot, "arcsinh": np.arcsinh,
               "arccosh": np.arccosh,
               "arctanh": np.arctanh, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "rint": np.rint,
               "fmax": np.fmax, "fmin": np.fmin, "ftie": _ftie, "arctan2": np.arctan2,
               "logaddexp": np.logaddexp, "logaddexp2": np.logaddexp2, "fmod": np.fmod,
               "remainder": np.remainder, "floor_divide": np.floor_divide, "copysign": np.copysign,
               "heaviside": np.heaviside, "xlogy": _xlogy,
               "xlog1py": lambda a, b: _xlogy(a, b, np.log1p), "erf": _special("erf", math.erf),
               "erfc": _special("erfc", math.erfc), "ndtr": _special("ndtr"),
               "log_ndtr": _special("log_ndtr"), "gammaln": _special("gammaln"),
               "digamma": _special("digamma"), "zeta": _special("zeta"), "log_expit": _special("log_expit"),
               "erfinv": _special("erfinv"), "ndtri": _special("ndtri"), "gamma": _special("gamma", math.gamma),
               "entr": _special("entr"), "rel_entr": _special("rel_entr"), "logratio": logratio,
               "betaln": _special("betaln"),
               "i0": np.i0, "i1": _special("i1"), "i1grad": _i1grad, "i0e": _special("i0e"),
               "i1e": _special("i1e"), "i1egrad": _i1egrad, "cosm1": _special("cosm1"), "poch": _special("poch"),
               "gammainc": _special("gammainc"), "gammaincc": _special("gammaincc"), "chdtr": _special("chdtr"),
               "chdtrc": _special("chdtrc"), "stdtr": _special("stdtr"), "gammadensity": _gammadensity,
               "tdensity": _tdensity, "j1grad": _j1grad, "huberdelta": _huberdelta,
               **{n: _special(n) for n in ("erfcx", "dawsn", "exp1", "expi", "rgamma", "loggamma", "j0", "j1",
                                           "y0", "y1", "k0", "k1", "gammasgn", "kl_div", "huber", "pseudo_huber",
                                           "beta", "spence", "ellipk", "ellipe", "gammaincinv", "gammainccinv",
                                           "chdtri", "stdtrit", "binom", "powm1", "boxcox", "boxcox1p",
                                           "inv_boxcox", "inv_boxcox1p", "jv", "yv", "iv", "kv", "jve", "yve",
                                           "ive", "kve", "betainc", "betaincc", "betaincinv", "betainccinv",
                                           "fdtr", "fdtrc", "fdtri", "erfi", "erfcinv", "exprel", "owens_t",
                                           "ellipkinc", "ellipeinc")},
               "exprelgrad": _exprelgrad, "rgammagrad": _rgammagrad,
               **{n: _component(*c) for n, c in _COMPONENTS.items()},
               **_SPHERICAL_HELPERS,
               "bdtr": _counts("bdtr", 1), "bdtrc": _counts("bdtrc", 1), "nbdtr": _counts("nbdtr", 0, 1),
               "nbdtrc": _counts("nbdtrc", 0, 1),
               "betadensity": _betadensity, "fdensity": _fdensity, "binomslope": _binomslope,
               "gammaincda": _gammaincda, "betaincda": _betaincda, "betaincdb": _betaincdb,
               "fdtrd": _fdtrd, "stdtrdf": _stdtrdf,
               **{n: _special(n) for n in ("pdtr", "pdtrc")},
               "polygamma": _polygamma, "expnslope": _expnslope, "jacobislope": _jacobislope,
               "struveslope": _struveslope, "kolmogp": _kolmogp, "lambertw": _lambertw(0), "lambertw_m1": _lambertw(-1),
               "lambertwslope": _lambertwslope,
               **{n: _special(n) for n in ("struve", "modstruve", "kolmogorov", "kolmogi", "gdtr", "gdtrc", "lpmv")},
               # (an integral degree as an integer: SciPy's own loop for it, exact where its float-degree one
               # differs by 2e-7 at degree 50 and gives NaN at degree −1, where the identities meet 0)
               **{n: _counts(n, 0) for n in ORTHOGONAL},
               "expn": _special("expn"), "hyp0f1": _special("hyp0f1"), "hyp1f1": _special("hyp1f1"),
               "spencegrad": _spencegrad, "ellipkgrad": _ellipkgrad,
               "ellipegrad": _ellipegrad, "boxcoxgrad": _boxcoxgrad, "invboxcoxgrad": _invboxcoxgrad}


def formula(expr: str, params: str, names: dict) -> Callable:
    """A function of ``params`` computing ``expr`` (one of the constant formulas above) with the
    functions in ``names``; never applied to text from files."""
    return eval(f"lambda {params}: {expr}", {"__builtins__": {}, **names})  # noqa: S307


def _unary_op(name: str, primal: str, deriv: str, spec: str) -> Op:
    fn, d = formula(primal, "x", NUMPY_NAMES), deriv and formula(deriv, "x, y", NUMPY_NAMES)

    def partial(i: int, ctx: Ctx) -> Jac | None:
        return None if d is None else _ew(ctx, i, spec, lambda: d(ctx.args[0], ctx.out))

    def evaluate(a: list, p: dict) -> Any:
        x = a[0]
        return fn(x if type(x) is np.ndarray else lazy.asarray(x))  # (asarray keeps an ndarray)

    return Op(name, evaluate, lambda s, p: tuple(s[0]), partial, 1,
              f"elementwise {name}: {primal}" + ("; derivative zero" if spec == "zero" else ""),
              frozenset({0}) if spec == "zero" else frozenset())


def _elementwise_op(name: str, primal: str, rules: tuple, args: str) -> Op:
    fn = formula(primal, args, NUMPY_NAMES)
    ds = [spec_d and spec_d[1] and formula(spec_d[1], args + ", y", NUMPY_NAMES) for spec_d in rules]

    def partial(i: int, ctx: Ctx) -> Jac | None:
        d = ds[i]
        if rules[i] is None:
            return None
        if rules[i] is CONSTANT:
            raise NotImplementedError(f"{name}: the derivative with respect to argument {i} is not "
                                      "implemented; it must be a constant")
        return _ew(ctx, i, rules[i][0], d and (lambda: d(*ctx.args, ctx.out)))

    def evaluate(a: list, p: dict) -> Any:
        return fn(*[x if type(x) is np.ndarray else lazy.asarray(x) for x in a])  # (asarray keeps an ndarray)

    constant = frozenset(i for i, r in enumerate(rules) if r is CONSTANT)
    return Op(name, evaluate, _broadcast_shape, partial, len(rules),
              f"elementwise {primal} with broadcasting" + ("; derivative zero" if rules == (None, None) else "")
              + "".join(f"; argument {i} a constant" for i in sorted(constant)),
              frozenset(i for i, r in enumerate(rules) if r is None), constant=constant)


for _n, (_f, _d, _s) in UNARY.items():
    register(_unary_op(_n, _f, _d, _s))
for _n, (_f, _r, _a) in ELEMENTWISE.items():
    register(_elementwise_op(_n, _f, _r, _a))


def _where_partial(i: int, ctx: Ctx) -> Jac:
    mask = ctx.args[0]
    # (as NumPy reads the mask, nonzero is true: a graph file's float mask weighted the partial by its values)
    return _ew(ctx, i, "out", lambda: lazy.asarray(mask, bool) if i == 1 else ~lazy.asarray(mask, bool))


register(Op("where", lambda a, p: np.where(lazy.asarray(a[0], bool), a[1], a[2]), _broadcast_shape,
            _where_partial, 3, "where(mask, x, y): a constant mask, or a recorded one (jacc.masks)", frozenset({0})))


def _lanes_value(m, x, c, axes: int, xp=np):
    """``where(m, x, r)``: ``r`` the first row ``m`` selects (``c`` where it selects none); ``m``
    spans ``x``'s first ``axes`` axes, with an axis of length 1 for each other one."""
    if xp is np:  # (a few µs of calls fewer: this runs at every call of a piecewise function)
        flat = m.reshape(-1)
        first = flat.argmax()
        if not flat[first]:
            return np.where(m, x, c)
        return np.where(m, x, x.flat[first] if axes == x.ndim else x.reshape((flat.size,) + x.shape[axes:])[first])
    n = math.prod(x.shape[:axes])
    flat = xp.reshape(m, (n,))
    first = xp.argmax(flat) if xp.__name__ != "torch" else xp.argmax(flat.to(xp.uint8))  # (torch: none of bools)
    row = xp.reshape(x, (n,) + tuple(x.shape[axes:]))[first]
    return xp.where(m, x, xp.where(flat[first], row, c))


lanes_value = lazy.portable(_lanes_value)


def _lanes_shape(shapes, params):
    m, x, c, k = tuple(shapes[0]), tuple(shapes[1]), tuple(shapes[2]), params.get("axes")
    if not isinstance(k, int) or not 0 < k <= len(x) or m != x[:k] + (1,) * (len(x) - k) or c not in (x[k:], ()):
        raise ShapeError(f"lanes needs a mask of x's first 'axes' axes (then axes of length 1) and a fill of a "
                         f"row's shape, got mask {m}, x {x}, fill {c}, axes {k!r}")
    return x


# Selections by a traced mask kept at full shape (jacc.lanes): outside the mask, every entry takes
# the first selected row's value, found at each call, so the elementwise steps that follow repeat a
# computation of the selection there; the fill is held (no edge), as where's partial is the mask
register(Op("lanes", lambda a, p: lazy.asarray(lanes_value(lazy.asarray(a[0], bool), a[1], a[2], p["axes"])),
            _lanes_shape, lambda i, ctx: _where_partial(i, ctx) if i == 1 else None, 3,
            "where(mask, x, r) with r the first row the mask selects (the constant fill where it selects none)",
            frozenset({0, 2}), ("axes",)))


def _bound(params: dict, key: str) -> np.ndarray | None:
    """A clip bound: ``None``, a number or a (nested) list that broadcasts to the argument."""
    b = params.get(key)
    return None if b is None else np.asarray(b, dtype=float)


def _clip_shape(shapes, params):
    for key in ("lo", "hi"):
        b = _bound(params, key)
        if b is not None and _broadcast_shape([shapes[0], b.shape], params) != tuple(shapes[0]):
            raise ShapeError(f"clip bound {key!r} of shape {b.shape} does not broadcast to {tuple(shapes[0])}")
    return tuple(shapes[0])


def _clip_partial(i: int, ctx: Ctx) -> Jac:
    lo, hi = _bound(ctx.params, "lo"), _bound(ctx.params, "hi")

    def inside():  # the bounds count as inside: the derivative is 1 on [lo, hi] (see conventions)
        x = ctx.args[0]
        ok = np.ones(np.shape(x), bool)
        if lo is not None:
            ok = ok & (x >= lo)
        if hi is not None:
            ok = ok & (x <= hi)
        return ok

    return _ew(ctx, i, "out", inside)


def _clip_eval(a, p):
    lo, hi = _bound(p, "lo"), _bound(p, "hi")
    x = lazy.asarray(a[0])
    return x if lo is None and hi is None else np.clip(x, lo, hi)


register(Op("clip", _clip_eval, _clip_shape, _clip_partial, 1,
            "clip(x, lo, hi) with constant bounds", params=("lo", "hi")))


def _broadcast_to_shape(shapes, params):
    target = tuple(params["shape"])
    if _broadcast_shape([shapes[0], target], params) != target:
        raise ShapeError(f"cannot broadcast {shapes[0]} to {target}")
    return target


register(Op("broadcast_to", lambda a, p: np.broadcast_to(a[0], tuple(p["shape"])).copy(),
            _broadcast_to_shape, lambda i, c: _ew(c, i, "unit"), 1, "broadcast_to(x, shape)",
            params=("shape",)))


# -- reductions -------------------------------------------------------------------------------


def _axes(params: dict, ndim: int) -> tuple[int, ...]:
    ax = params.get("axis")
    if ax is None:
        return tuple(range(ndim))
    ax = (ax,) if isinstance(ax, (int, np.integer)) else tuple(ax)
    out = []
    for a in ax:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for an array with {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _reduce_shape(shapes, params):
    s = shapes[0]
    ax = _axes(params, len(s))
    if params.get("keepdims"):
        return tuple(1 if k in ax else n for k, n in enumerate(s))
    return tuple(n for k, n in enumerate(s) if k not in ax)


def _reduce_pairs(ctx: Ctx) -> list[int]:
    s = ctx.shapes[0]
    ax = _axes(ctx.params, len(s))
    pair, j = [], 0
    for k in range(len(s)):
        if k in ax:
            pair.append(-1)
            j += bool(ctx.params.get("keepdims"))
        else:
            pair.append(j)
            j += 1
    return pair


def _sum_partial(i, ctx):
    return Jac(ctx.out_shape, ctx.shapes[0], _reduce_pairs(ctx))


def _mean_partial(i, ctx):
    s = ctx.shapes[0]
    n = math.prod(s[k] for k in _axes(ctx.params, len(s)))
    return Jac(ctx.out_shape, s, _reduce_pairs(ctx), (), np.asarray(1.0 / max(n, 1), ctx.dtype))


def _extreme_partial(i, ctx):
    s = ctx.shapes[0]
    j = Jac(ctx.out_shape, s, _reduce_pairs(ctx))
    vl = [j.in_label(k) for k in range(len(s))]

    def onehot():
        x = ctx.args[0]
        ax = _axes(ctx.params, len(s))
        hit = x == np.expand_dims(ctx.out, ax) if not ctx.params.get("keepdims") else x == ctx.out
        return hit / np.sum(hit, axis=ax, keepdims=True)

    return Jac(ctx.out_shape, s, j.pair, vl, ctx.val(onehot, s))


def _extreme_shape(shapes, params):
    s = shapes[0]
    if any(s[k] == 0 for k in _axes(params, len(s))):
        raise ShapeError(f"max/min over an empty axis of shape {s} has no value (NumPy needs initial=)")
    return _reduce_shape(shapes, params)


def _reduce(name, fn, shape, partial, doc):
    def evaluate(a, p):
        ax = _axes(p, np.ndim(a[0]))
        return lazy.asarray(fn(a[0], axis=ax, keepdims=bool(p.get("keepdims"))))

    register(Op(name, evaluate, shape, partial, 1, doc, params=("axis", "keepdims")))


_reduce("sum", np.sum, _reduce_shape, _sum_partial, "sum over axes")
_reduce("mean", np.mean, _reduce_shape, _mean_partial, "mean over axes")
_reduce("amax", np.max, _extreme_shape, _extreme_partial, "max over axes (ties share the derivative)")
_reduce("amin", np.min, _extreme_shape, _extreme_partial, "min over axes (ties share the derivative)")


# -- einsum family ------------------------------------------------------------------------------


def einsum_partial(i: int, ctx: Ctx, subs: Sequence[Sequence], out_sub: Sequence) -> Jac:
    """∂/∂operand_i of an einsum whose operands carry labels ``subs`` and output ``out_sub``.

    Labels shared by operand ``i`` and the output become diagonal pairs; the other operands
    form the value array (so ∂(A@x)/∂A is ``I ⊗ xᵀ`` and a batch axis stays diagonal).
    """
    out = ctx.out_shape
    m = len(out)
    si = list(subs[i])
    shape_i = ctx.shapes[i]
    pos_out = {lab: j for j, lab in enumerate(out_sub)}
    pair, jl = [], {}
    for k, lab in enumerate(si):
        j = pos_out.get(lab, -1)
        if j >= 0 and out[j] == shape_i[k] and lab not in jl:
            pair.append(j)
            jl[lab] = j
        else:
            pair.append(-1)
            jl.setdefault(lab, m + k)
    for lab, j in pos_out.items():
        jl.setdefault(lab, j)
    others = [t for t in range(len(subs)) if t != i]
    other_labels = {lab for t in others for lab in subs[t]}
    if not others:
        return Jac(out, shape_i, pair)
    vsub = [lab for lab in list(out_sub) + si if lab in other_labels and lab in jl]
    vsub = list(dict.fromkeys(vsub))
    vl = [jl[lab] for lab in vsub]
    j = Jac(out, shape_i, pair)
    vshape = tuple(j.size_of(lab) for lab in vl)

    def values():
        table = {lab: n for n, lab in enumerate(dict.fromkeys([x for s in subs for x in s]))}
        ops = []
        for t in others:
            ops += [ctx.args[t], [table[x] for x in subs[t]]]
        return np.einsum(*ops, [table[x] for x in vsub], optimize=len(others) > 1)

    return Jac(out, shape_i, pair, vl, ctx.val(values, vshape))


def _matmul_subs(sa: Shape, sb: Shape) -> tuple[list, list, list, Shape]:
    """einsum labels for ``a @ b`` with NumPy's vector and batch-broadcasting rules."""
    if len(sa) == 0 or len(sb) == 0:
        raise ShapeError("matmul does not take scalars; use *")
    if sa[-1] != sb[-2 if len(sb) > 1 else -1]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align (inner sizes differ)")
    av, bv = len(sa) == 1, len(sb) == 1
    ba, bb = sa[:-2], sb[:-2]
    batch = tuple(np.broadcast_shapes(ba, bb)) if not (av or bv) else (ba if bv else bb)
    nb = len(batch)

    def blabels(s: Shape, tag: str) -> list:
        off = nb - len(s)
        return [("b", off + t) if n == batch[off + t] else (tag, t) for t, n in enumerate(s)]

    a = (blabels(ba, "fa") + ["n"] if not av else []) + ["k"]
    b = ["k"] + ([] if bv else ["m"])
    if not bv:
        b = blabels(bb, "fb") + b
    outl = [("b", t) for t in range(nb)] + ([] if av else ["n"]) + ([] if bv else ["m"])
    out = batch + (() if av else (sa[-2],)) + (() if bv else (sb[-1],))
    return a, b, outl, out


def _matmul_shape(shapes, params):
    try:
        return _matmul_subs(shapes[0], shapes[1])[3]
    except ValueError as e:
        raise ShapeError(str(e)) from None


def _matmul_partial(i, ctx):
    a, b, outl, _ = _matmul_subs(ctx.shapes[0], ctx.shapes[1])
    return einsum_partial(i, ctx, [a, b], outl)


register(Op("matmul", lambda a, p: np.matmul(a[0], a[1]), _matmul_shape, _matmul_partial, 2,
            "a @ b: vectors, matrices and broadcast batches"))

# A Gram product M = A·Aᵀ has dM = dA·Aᵀ + (dA·Aᵀ)ᵀ, so its adjoint is (M̄ + M̄ᵀ)·A: one product
# where a plain matmul with A on both sides needs two. The tracer records A @ A.T as
# Q = A @ Aᵀ with the transposed operand held (no edge from it), and M = gram_join(Q, Qᵀ), whose
# value is Q and whose derivative is dQ + dQᵀ; elimination then adds M̄ + M̄ᵀ (no products)
# before the one product with A. Aᵀ·A holds the first operand instead.
for _held in (0, 1):
    register(Op(f"matmul_hold_{'ab'[_held]}", lambda a, p: np.matmul(a[0], a[1]), _matmul_shape,
                _matmul_partial, 2, f"a @ b with {'ab'[_held]} held constant (one side of a Gram product)",
                nondiff=frozenset({_held})))
register(Op("hold", lambda a, p: a[0], lambda s, p: s[0], lambda i, ctx: None, 1,
            "the value of x, held: no edge, so the derivative treats it as a constant", nondiff=frozenset({0})))
def _same_shapes(s, p):
    if tuple(s[0]) != tuple(s[1]):
        raise ShapeError(f"its two arguments must have one shape, got {tuple(s[0])} and {tuple(s[1])}")
    return s[0]


register(Op("value_from", lambda a, p: a[0], _same_shapes, lambda i, ctx: S.identity(ctx.out_shape), 2,
            "the value of the first argument with the derivative of the second (same shape and the "
            "same function of the inputs, computed another way)", nondiff=frozenset({0})))
register(Op("gram_join", lambda a, p: a[0], _same_shapes, lambda i, ctx: S.identity(ctx.out_shape), 2,
            "a Gram product from its two halves: the value of the first (= the second), "
            "the derivative of both"))


def _parse_einsum(spec: str, nargs: int) -> tuple[list[str], str]:
    if "..." in spec:
        raise ShapeError("einsum with '...' is not supported; name every axis")
    if "->" not in spec:
        raise ShapeError("einsum needs an explicit output, e.g. 'ij,j->i'")
    ins, out = spec.replace(" ", "").split("->")
    subs = ins.split(",")
    if len(subs) != nargs:
        raise ShapeError(f"einsum '{spec}' names {len(subs)} operands but got {nargs}")
    for s in subs:
        if len(set(s)) != len(s):
            raise ShapeError(f"einsum operand '{s}' repeats a label (diagonals are not supported)")
    return subs, out


def _einsum_shape(shapes, params):
    subs, out = _parse_einsum(params["spec"], len(shapes))
    size: dict = {}
    for s, shp in zip(subs, shapes):
        if len(s) != len(shp):
            raise ShapeError(f"einsum operand '{s}' has shape {shp}")
        for lab, n in zip(s, shp):
            if size.setdefault(lab, n) != n:
                raise ShapeError(f"einsum label '{lab}' has sizes {size[lab]} and {n}")
    return tuple(size[lab] for lab in out)


def _einsum_partial(i, ctx):
    subs, out = _parse_einsum(ctx.params["spec"], len(ctx.shapes))
    return einsum_partial(i, ctx, [list(s) for s in subs], list(out))


register(Op("einsum", lambda a, p: np.einsum(p["spec"], *a), _einsum_shape, _einsum_partial, None,
            "einsum with explicit output and no repeated labels", params=("spec",)))


# -- shape manipulation -----------------------------------------------------------------------


def _reshape_shape(shapes, params):
    s, target = shapes[0], list(params["shape"])
    if target.count(-1) == 1:
        rest = math.prod(n for n in target if n != -1)
        if rest == 0 or math.prod(s) % rest:
            raise ShapeError(f"cannot reshape {s} to {tuple(params['shape'])}")
        target[target.index(-1)] = math.prod(s) // rest
    if math.prod(target) != math.prod(s) or any(n < 0 for n in target):
        raise ShapeError(f"cannot reshape {s} to {tuple(params['shape'])}")
    return tuple(target)


register(Op("reshape", lambda a, p: np.reshape(a[0], p["shape"]), _reshape_shape,
            lambda i, c: S.reshape_map(c.out_shape, c.shapes[0]), 1, "reshape (C order)",
            params=("shape",)))


def _perm(params, ndim):
    axes = params.get("axes")
    axes = list(range(ndim))[::-1] if axes is None else [a % ndim for a in axes]
    if sorted(axes) != list(range(ndim)):
        raise ShapeError(f"axes {params.get('axes')} are not a permutation of {ndim} axes")
    return axes


def _transpose_partial(i, ctx):
    axes = _perm(ctx.params, len(ctx.shapes[0]))
    pair = [0] * len(axes)
    for j, k in enumerate(axes):
        pair[k] = j
    return Jac(ctx.out_shape, ctx.shapes[0], pair)


register(Op("transpose", lambda a, p: np.transpose(a[0], _perm(p, np.ndim(a[0]))),
            lambda s, p: tuple(s[0][k] for k in _perm(p, len(s[0]))), _transpose_partial, 1,
            "transpose / .T (a permutation: stays an identity structure)", params=("axes",)))


# Indices are stored as JSON-friendly lists: ["int", i], ["slice", a, b, c], ["new"], ["array", …].
def index_to_numpy(index: list) -> tuple:
    out = []
    for item in index:
        kind = item[0]
        if kind == "int":
            out.append(int(item[1]))
        elif kind == "slice":
            out.append(slice(item[1], item[2], item[3]))
        elif kind == "new":
            out.append(None)
        elif kind == "array":
            out.append(as_index_array(item[1]))
        else:
            raise ShapeError(f"unknown index item {item!r}")
    return tuple(out)


def _getitem_shape(shapes, params):
    """Computed from sizes (jacc.indexing): a shape rule must never allocate the operand."""
    from .indexing import index_shape

    try:
        return index_shape(shapes[0], [_index_item(it) for it in params["index"]])
    except (IndexError, ValueError, TypeError) as e:
        text = repr(params["index"])
        raise ShapeError(f"index {text if len(text) < 80 else text[:77] + '...'} does not fit shape "
                         f"{shapes[0]}: {e}") from None


def _index_item(item) -> list:
    """One index item checked for its kind and length (a bad one is a ValueError, not a crash)."""
    parts = {"int": 2, "slice": 4, "new": 1, "array": 2}
    if not isinstance(item, (list, tuple)) or not item or parts.get(item[0]) != len(item):
        raise ValueError(f"unknown index item {item!r}")
    return list(item)


def _basic(index: list) -> bool:
    return all(item[0] != "array" for item in index)


def _getitem_partial(i, ctx):
    s, out = ctx.shapes[0], ctx.out_shape
    index = ctx.params["index"]
    covered = sum(it[0] != "new" and not _is_mask(it) for it in index) + sum(
        np.ndim(it[1]) for it in index if _is_mask(it))
    full = list(index) + [["slice", None, None, None]] * (len(s) - covered)
    if _basic(index):
        return S.selection(out, s, full)
    # an advanced index: a lazy gather (whole-axis slices stay diagonal), never a one-hot product
    pair = _advanced_pairs(full, s, len(out))
    return S.take_selection(out, s, pair, _gather_positions(full, s, out, pair) if ctx.numeric else None,
                            _index_key(full, s))


def _index_key(index: list, s: Shape) -> str:
    """A digest of an index and the operand's shape: equal for equal gathers, in pricing too."""
    h = hashlib.blake2b(repr(tuple(s)).encode(), digest_size=16)
    for item in index:
        if item[0] == "array":
            a = np.ascontiguousarray(as_index_array(item[1]))
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(item).encode())
    return h.hexdigest()


def _is_mask(item: list) -> bool:
    return item[0] == "array" and as_index_array(item[1]).dtype == bool


def _advanced_pairs(index: list, s: Shape, nout: int) -> list[int]:
    """Per input axis, the output axis a whole-axis slice passes it to (-1: gathered), by NumPy's
    rule: the broadcast index axes replace the advanced items when those are adjacent, else go first."""
    kinds = ["adv" if it[0] in ("array", "int") else it[0] for it in index]
    adv = [t for t, kd in enumerate(kinds) if kd == "adv"]
    nbasic = sum(kd in ("slice", "new") for kd in kinds)
    nbatch = nout - nbasic
    apart = adv != list(range(adv[0], adv[-1] + 1))
    pair, j, k = [-1] * len(s), nbatch if apart else 0, 0
    for t, it in enumerate(index):
        if not apart and t == adv[0]:
            j += nbatch
        if kinds[t] == "new":
            j += 1
        elif kinds[t] == "slice":
            if range(*slice(it[1], it[2], it[3]).indices(s[k])) == range(s[k]):
                pair[k] = j
            j += 1
            k += 1
        else:
            k += np.ndim(it[1]) if _is_mask(it) else 1
    return pair


def _gather_positions(index: list, s: Shape, out: Shape, pair: list[int]) -> np.ndarray:
    """Flat positions (over the gathered input axes) that the gathered output axes read. Built
    from broadcast coordinate views: it allocates the output's size, never the operand's."""
    reduced = tuple(1 if p >= 0 else n for p, n in zip(pair, s))
    np_index = index_to_numpy(index)
    kept = [j for j in range(len(out)) if j not in pair]
    coords = []
    for k in (k for k, p in enumerate(pair) if p < 0):
        axis = np.arange(s[k]).reshape([s[k] if t == k else 1 for t in range(len(s))])
        c = np.broadcast_to(axis, reduced)[np_index]
        coords.append(c.reshape([out[j] for j in kept]))
    return np.ravel_multi_index(coords, [s[k] for k, p in enumerate(pair) if p < 0])


register(Op("getitem", lambda a, p: lazy.apply(np.array, a[0][index_to_numpy(p["index"])]), _getitem_shape,
            _getitem_partial, 1, "indexing and slicing with constant indices", params=("index",)))


def _concat_shape(shapes, params):
    ax = params.get("axis", 0)
    base = shapes[0]
    if not base:
        raise ShapeError("cannot concatenate scalars; use stack")
    ax %= len(base)
    for s in shapes[1:]:
        if len(s) != len(base) or any(a != b for t, (a, b) in enumerate(zip(s, base)) if t != ax):
            raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {ax}")
    return tuple(sum(s[ax] for s in shapes) if t == ax else n for t, n in enumerate(base))


def _concat_partial(i, ctx):
    s = ctx.shapes[i]
    ax = ctx.params.get("axis", 0) % len(s)
    off = sum(sh[ax] for sh in ctx.shapes[:i])
    index = [["slice", None, None, None]] * len(s)
    index[ax] = ["slice", off, off + s[ax], 1]
    return S.embedding(ctx.out_shape, s, index)


register(Op("concatenate", lambda a, p: np.concatenate(a, axis=p.get("axis", 0)), _concat_shape,
            _concat_partial, None, "concatenate along an axis", params=("axis",)))


def _stack_shape(shapes, params):
    if any(s != shapes[0] for s in shapes):
        raise ShapeError(f"stack needs equal shapes, got {shapes}")
    ax = params.get("axis", 0) % (len(shapes[0]) + 1)
    return shapes[0][:ax] + (len(shapes),) + shapes[0][ax:]


def _stack_partial(i, ctx):
    s = ctx.shapes[i]
    ax = ctx.params.get("axis", 0) % (len(s) + 1)
    index = [["slice", None, None, None]] * len(ctx.out_shape)
    index[ax] = ["int", i]
    return S.embedding(ctx.out_shape, s, index)


register(Op("stack", lambda a, p: np.stack(a, axis=p.get("axis", 0)), _stack_shape, _stack_partial,
            None, "stack along a new axis", params=("axis",)))


# -- linear algebra -----------------------------------------------------------------------------


def _square(s: Shape, what: str) -> int:
    if len(s) != 2 or s[0] != s[1]:
        raise ShapeError(f"{what} needs a square matrix, got shape {s} (batched matrices are not supported)")
    return s[0]


def _solve_shape(shapes, params):
    n = _square(shapes[0], "solve")
    b = shapes[1]
    if len(b) not in (1, 2) or b[0] != n:
        raise ShapeError(f"solve: right-hand side of shape {b} does not fit a {n}×{n} matrix")
    return tuple(b)


def _solve_partial(i, ctx):
    n = ctx.shapes[0][0]
    out = ctx.out_shape
    m = len(out)

    def ainv():
        return factorise.inv(ctx.args[0])  # the primal's factorisation, where one is kept

    if i == 1:  # dx/db = A⁻¹ on the row axis, identity on columns
        pair = [-1] + ([1] if m == 2 else [])
        return Jac(out, ctx.shapes[1], pair, [0, m], ctx.val(ainv, (n, n)))
    # dx_i/dA_jl = -A⁻¹_ij x_l  (x = solution, columns c kept): two factors, never multiplied out
    # unless an operation other than a product needs the array
    neg = (lambda: -ainv(), (n, n))
    if m == 1:
        vl, factors, parts = [0, 1, 2], [(0, 1), (2,)], [neg, (lambda: ctx.out, (n,))]
    else:
        vl, factors, parts = [0, 2, 3, 1], [(0, 2), (3, 1)], [neg, (lambda: ctx.out, tuple(out))]
    return Jac(out, ctx.shapes[0], None, vl, factors=factors, fvalues=ctx.vals(*parts))


register(Op("solve", lambda a, p: factorise.solve(a[0], a[1]), _solve_shape, _solve_partial, 2,
            "linalg.solve(A, b) for one square A", factorises=True))


# linalg.inv, slogdet and the factorisations: jacc/numpy_api/linalg.py (batched)


# -- constants and abstract ops -----------------------------------------------------------------

def _constant_value(p: dict) -> np.ndarray:
    """A ``constant`` vertex's value; ``shape`` is given for an empty one, whose lists lose axes."""
    v = np.asarray(p["value"], float)
    return v.reshape(p["shape"]) if "shape" in p else v


register(Op("constant", lambda a, p: _constant_value(p), lambda s, p: _constant_value(p).shape,
            lambda i, c: None, 0, "a constant output (derivative zero)", params=("value", "shape")))

ABSTRACT_STRUCTURES = ("dense", "elementwise", "identity", "sum", "broadcast", "kronecker")


def _abstract_partial(i, ctx):
    kind = ctx.params["partials"][i]
    out, s = ctx.out_shape, ctx.shapes[i]
    if kind == "dense":
        return S.dense(out, s)
    if kind == "elementwise":
        return S.diagonal(out)
    if kind == "identity":
        return S.identity(out)
    if kind == "kronecker":  # K = A·X·Bᵀ: ∂K_ij/∂X_ab = A_ia·B_jb, stored as its two factors
        return Jac(out, s, None, [0, 1, 2, 3], factors=[(0, 2), (1, 3)])
    return Jac(out, s)  # sum / broadcast: all-ones structure


def _abstract_shape(shapes, params):
    out = tuple(params["shape"])
    kinds = params.get("partials")
    if not isinstance(kinds, list) or len(kinds) != len(shapes):
        raise ShapeError(f"abstract op needs one partial structure per argument ({len(shapes)})")
    for k, s in zip(kinds, shapes):
        if k not in ABSTRACT_STRUCTURES:
            raise ShapeError(f"unknown partial structure {k!r}; use one of {', '.join(ABSTRACT_STRUCTURES)}")
        if k in ("elementwise", "identity") and tuple(s) != out:
            raise ShapeError(f"an {k} partial needs equal shapes, got {tuple(s)} → {out}")
        if k == "sum" and out != ():
            raise ShapeError("a 'sum' partial needs a scalar output")
        if k == "broadcast" and tuple(s) != ():
            raise ShapeError("a 'broadcast' partial needs a scalar argument")
        if k == "kronecker" and (len(s) != 2 or len(out) != 2):
            raise ShapeError(f"a 'kronecker' partial maps a matrix to a matrix, got {tuple(s)} → {out}")
    return out


def _abstract_eval(a, p):
    raise NotImplementedError("abstract ops declare partial structures for planning only; "
                              "they cannot be evaluated")


register(Op("abstract", _abstract_eval, _abstract_shape, _abstract_partial, None,
            "planning-only op with declared shape and partial structures", params=("partials", "shape")))


def infer_shape(op: str, shapes: list[Shape], params: dict) -> Shape:
    """The output shape, raising :class:`ShapeError` for bad arguments."""
    o = OPS[op]
    if o.arity is not None and len(shapes) != o.arity:
        raise ShapeError(f"{op} takes {o.arity} argument(s), got {len(shapes)}")
    unknown = sorted(set(params) - set(o.params))
    if unknown:
        raise ShapeError(f"unknown parameter(s) {unknown} for {op}; it takes "
                         + (", ".join(o.params) if o.params else "no parameters"))
    return tuple(int(n) for n in o.shape([tuple(s) for s in shapes], params))


def partials_add_compactly(op: str, shapes: list[Shape], params: dict, positions: Sequence[int]) -> bool:
    """Whether one argument's partials at ``positions`` of ``op`` add up to a partial that stores
    no more values than they do apart (true for elementwise ops: diagonals add to a diagonal;
    false for ∂(X@X)/∂X, whose two Kronecker-structured terms add to a dense N⁴ array).

    >>> partials_add_compactly("mul", [(3,), (3,)], {}, [0, 1])
    True
    >>> partials_add_compactly("matmul", [(3, 3), (3, 3)], {}, [0, 1])
    False
    """
    ctx = Ctx(list(shapes), infer_shape(op, list(shapes), params), params, [None] * len(shapes))
    parts = [j for j in (OPS[op].partial(p, ctx) for p in positions) if j is not None]
    if len(parts) < 2:
        return True
    with S.pricing():
        total = parts[0]
        for j in parts[1:]:
            total = S.add(total, j)
    return total.value_size <= sum(j.value_size for j in parts)
