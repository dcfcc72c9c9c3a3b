"""Elementwise math: NumPy's float ufuncs (and SciPy's special ufuncs when SciPy is present).

Every function here is a row of the op tables :data:`jacc.ops.UNARY` / :data:`jacc.ops.BINARY`
(so the compiled scalar path runs it too) or an alias of one. Partials are diagonal (``diag``),
a scaled identity, or, for a broadcast operand, a diagonal times a sum map. Piecewise-constant
functions (``floor``, ``sign``, ``round`` …) record no edge at all: their Jacobian is exactly zero
and costs nothing. SciPy's special functions reach the tracer through ``__array_ufunc__`` like
NumPy's own ufuncs.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np

from ..constructors import swap_during_traces
from ..ops import _COMPONENTS, BINARY, OPS, ORTHOGONAL, QUATERNARY, SPHERICAL, TERNARY, UNARY, lambert_real
from ..trace import (
    _UFUNCS,
    TraceError,
    Tracer,
    UnsupportedOperationError,
    _int,
    _refuse,
    _tape_of,
    array_result,
    call_site,
    implements,
    implements_ufunc,
)
from . import case
from .gathers import _value

# ufunc name → op, where they differ (np.mod is np.remainder: its ufunc is named "remainder")
ALIASES = {"radians": "deg2rad", "degrees": "rad2deg", "float_power": "pow", "fabs": "abs"}

# table rows that are no ufunc of NumPy or SciPy (operators, functions, or a ufunc of another name)
# (and the outputs of SciPy's tuple-valued ufuncs and its spherical Bessel functions, recorded below)
_NOT_UFUNCS = {"neg", "identity", "alias", "abs", "sub", "mul", "div", "pow", "sinc", *_COMPONENTS,
               *(f"spherical_{k}" for k in SPHERICAL), "lambertw", "lambertw_m1"}


def _refuse_where(k: int, bad: Callable[[np.ndarray], np.ndarray], why: str) -> Callable[[str, tuple], None]:
    """A check of constant argument ``k``: refused, saying ``why``, where ``bad`` holds for an entry."""
    def check(op: str, xs: tuple) -> None:
        with np.errstate(invalid="ignore"):
            if np.any(bad(np.asarray(xs[k], dtype=float))):
                raise UnsupportedOperationError(f"scipy.special.{op} at {call_site()}: {why}")
    return check


#: ops whose constant arguments are recorded only where the derivative rules hold
_CONSTANTS_CHECKED = {
    **{n: _refuse_where(0, lambda d: d < 0, "a negative degree is not recorded (SciPy reflects it to another "
                                             "polynomial; the derivative identities hold for degrees ≥ 0)")
       for n in ORTHOGONAL},
    "hyp1f1": _refuse_where(1, lambda b: b <= 0, "b ≤ 0 is not recorded (SciPy's ₁F₁ loses accuracy there, "
                                                 "and its derivative (a/b)·₁F₁(a + 1; b + 1; x) with it)"),
}


def _record(op: str, shown: str | None = None):
    """Record ``op``, refusing a traced argument where it has no partial (named as
    ``scipy.special.<shown>``, the function called: ``op`` by default)."""
    constant = sorted(OPS[op].constant)
    if not constant:
        return lambda tape, *xs: tape.record(op, list(xs))
    checked = _CONSTANTS_CHECKED.get(op)

    def record(tape, *xs):
        for k in constant:
            if isinstance(xs[k], Tracer):
                raise UnsupportedOperationError(
                    f"scipy.special.{shown or op} at {call_site()}: its derivative with respect to its "
                    f"{('first', 'second', 'third', 'fourth')[k]} argument (a count, shape parameter or order) is not "
                    "recorded; pass a constant there (the other arguments may be traced)")
        if checked is not None:
            checked(op, xs)
        return tape.record(op, list(xs))
    return record


for _name in [n for n in {**UNARY, **BINARY, **TERNARY, **QUATERNARY} if n not in _NOT_UFUNCS and n not in _UFUNCS]:
    implements_ufunc(_name)(_record(_name))
for _name, _op in ALIASES.items():
    implements_ufunc(_name)(_record(_op))


_record_lpmv = _record("lpmv")


@implements_ufunc("lpmv")
def _lpmv(tape, m, v, x):
    """``lpmv(m, v, x)`` in x: its slope divides by 1 − x², so at x = ±1 (a finite limit for
    m = 0 or 2, infinite for others) it is not computed, and a Jacobian that meets it is refused."""
    out = _record_lpmv(tape, m, v, x)
    if isinstance(x, Tracer):
        x.tape.note_domain("scipy.special.lpmv")  # (a later call at ±1 runs f, which says so)
        if np.any(np.abs(np.asarray(x.value)) == 1.0):
            x.tape.note_nonfinite(
                f"scipy.special.lpmv at {call_site()}: its derivative at x = ±1 is not computed (the rule "
                "(1 − x²)·P′ = (ν + 1)·x·P − (ν − m + 1)·P_(ν+1) divides by 0 there); for m = 0 use "
                "scipy.special.eval_legendre (an integer degree), or differentiate at |x| < 1")
    return out


# scipy.special.zeta is Python code calling a private ufunc: Hurwitz's ζ(s, q) (recorded in q, s a
# constant), or Riemann's ζ(s) (one argument), whose slope in s SciPy does not compute
implements_ufunc("_zeta")(_record("zeta"))


@implements_ufunc("_riemann_zeta")
def _riemann_zeta(tape, s):
    raise UnsupportedOperationError(
        f"scipy.special.zeta(s) of a traced s (Riemann's ζ) at {call_site()}: its derivative has no closed form "
        "that SciPy computes, so it is not recorded; Hurwitz's zeta(s, q) is recorded in q (s a constant)")


@implements_ufunc("_lambertw")
def _lambert_w(tape, z, k, tol):
    """``scipy.special.lambertw(z, k, tol)`` of a real traced z on a real branch (k = 0 from −1/e
    on, k = −1 on [−1/e, 0)): that branch's op, as a complex value with a zero imaginary part
    (SciPy's dtype), so ``.real`` and ``np.real`` take it; elsewhere W is complex and refused."""
    where = f"scipy.special.lambertw at {call_site()}"
    if any(isinstance(a, Tracer) for a in (k, tol)):
        raise UnsupportedOperationError(f"{where}: the branch k and tolerance tol must be constants")
    k = np.asarray(k)
    if k.ndim or int(k) not in (0, -1):
        raise UnsupportedOperationError(f"{where}: only the real branches k = 0 and k = −1 are recorded, not k = {k}")
    if tol != 1e-8:
        raise UnsupportedOperationError(f"{where}: only SciPy's default tolerance (1e-8) is recorded, not tol={tol!r}")
    if not isinstance(z, Tracer) or np.asarray(z.value).dtype.kind == "c":
        raise UnsupportedOperationError(f"{where}: a complex z is not recorded (pass a real one)")
    if not np.all(lambert_real(z.value, int(k)) | np.isnan(z.value)):
        raise UnsupportedOperationError(
            f"{where}: W is complex at this point ({'z < −1/e' if not int(k) else 'z outside [−1/e, 0)'} for "
            f"k = {int(k)}), which a trace does not hold; the real branches are recorded")
    z.tape.note_domain("scipy.special.lambertw")  # (a later point outside: f runs, and the trace says so)
    return tape.record("lambertw_m1" if int(k) else "lambertw", [z]) + 0j


# scipy.stats' private quantile ufuncs, as the public functions they equal
@implements_ufunc("_beta_ppf")
def _beta_ppf(tape, q, a, b):
    return _record("betaincinv")(tape, a, b, q)


# the (negative) binomial distribution functions of k = floor(x) for real n (k and n constants), as
# incomplete beta functions: binomial I_(1−p)(n − k, k + 1) = 1 − I_p(k + 1, n − k), negative I_p(n, k + 1)
@implements_ufunc("_binom_cdf")
def _binom_cdf(tape, k, n, p):
    return _record("betaincc")(tape, np.floor(k) + 1.0, n - np.floor(k), p)


@implements_ufunc("_binom_sf")
def _binom_sf(tape, k, n, p):
    return _record("betainc")(tape, np.floor(k) + 1.0, n - np.floor(k), p)


@implements_ufunc("_nbinom_cdf")
def _nbinom_cdf(tape, k, n, p):
    return _record("betainc")(tape, n, np.floor(k) + 1.0, p)


@implements_ufunc("_nbinom_sf")
def _nbinom_sf(tape, k, n, p):
    return _record("betaincc")(tape, n, np.floor(k) + 1.0, p)



# their probability mass functions, as SciPy's own logpmf formulas exponentiated
@implements_ufunc("_binom_pmf")
def _binom_pmf(tape, x, n, p):
    """choose(n, k)·p^k·(1 − p)^(n − k) for k = floor(x)."""
    import scipy.special as sp

    k = np.floor(x)
    return np.exp(sp.gammaln(n + 1.0) - sp.gammaln(k + 1.0) - sp.gammaln(n - k + 1.0)
                  + sp.xlogy(k, p) + sp.xlog1py(n - k, -p))


@implements_ufunc("_nbinom_pmf")
def _nbinom_pmf(tape, x, n, p):
    """choose(k + n − 1, n − 1)·p^n·(1 − p)^k for k = x."""
    import scipy.special as sp

    return np.exp(sp.gammaln(n + x) - sp.gammaln(x + 1.0) - sp.gammaln(n) + n * np.log(p) + sp.xlog1py(x, -p))


@implements_ufunc("_beta_pdf")
def _beta_pdf(tape, x, a, b):
    """x^(a−1)·(1 − x)^(b−1)/B(a, b), differentiable in x, a and b."""
    import scipy.special as sp

    return np.exp(sp.xlogy(a - 1.0, x) + sp.xlog1py(b - 1.0, -x) - sp.betaln(a, b))


@implements_ufunc("_cauchy_ppf")
def _cauchy_ppf(tape, q, loc, scale):
    return loc + scale * np.tan(np.pi * (q - 0.5))


@implements_ufunc("_cauchy_isf")
def _cauchy_isf(tape, q, loc, scale):
    return loc + scale * np.tan(np.pi * (0.5 - q))


def _polygamma(original):
    """``scipy.special.polygamma(n, x)`` is Python code that converts its arguments to plain
    arrays: for a traced ``x`` (the order ``n`` a constant) it is recorded as its op."""
    record = _record("polygamma")  # (refuses a traced order)

    def polygamma(n, x):
        if not isinstance(x, Tracer) and not isinstance(n, Tracer):
            return original(n, x)
        return record(_tape_of(n, x), n if isinstance(n, Tracer) else np.asarray(n, dtype=float), x)
    return polygamma


def _multigammaln(original):
    """``scipy.special.multigammaln(a, d)``, Python code converting its argument: for a traced
    ``a`` (``d`` a constant) it is d(d − 1)/4·log π + Σ_j gammaln(a − j/2), as SciPy computes it."""
    gammaln = _record("gammaln")

    def multigammaln(a, d):
        if not isinstance(a, Tracer):
            return original(a, d)
        if isinstance(d, Tracer) or np.ndim(d) or int(d) != d or d < 1:
            raise UnsupportedOperationError(f"scipy.special.multigammaln at {call_site()}: the dimension d must "
                                            f"be a constant positive integer, not {d!r}")
        d = int(d)
        if np.any(a.value <= 0.5 * (d - 1)):  # SciPy's domain check (it reads values too)
            raise ValueError(f"condition a > 0.5 * (d-1) ({0.5 * (d - 1)}) not met (scipy.special.multigammaln at "
                             f"{call_site()})")
        a.tape.note_domain("scipy.special.multigammaln")  # (NaN outside: a later call runs f, which raises)
        a = np.where(a > 0.5 * (d - 1), a, np.nan)
        return d * (d - 1) / 4.0 * np.log(np.pi) + sum(gammaln(a.tape, a - j / 2.0) for j in range(d))
    return multigammaln


def _counting(name: str) -> Callable[[Callable], Callable]:
    """``scipy.special.comb`` or ``perm`` with exact=False, Python code that writes into the array
    it converted the arguments to: SciPy's formula (``binom``, or ``poch``), 0 outside k ≤ N, N ≥ 0,
    k ≥ 0 (comb with repetition: C(N + k − 1, k), 1 at k = 0), by a traced mask. exact=True: SciPy's
    integer count of the values (a constant, as SciPy's ``int(N)`` reads them)."""
    def make(original):
        def counting(N, k, exact=False, **options):
            if not (isinstance(N, Tracer) or isinstance(k, Tracer)):
                return original(N, k, exact=exact, **options)
            if exact:  # an integer count: piecewise constant, read at the traced point (as int() reads it)
                read = (_value(v, f"scipy.special.{name}'s exact count") for v in (N, k))
                return original(*(v.item() if np.ndim(v) == 0 else v for v in read), exact=True, **options)
            import scipy.special as sp

            N, k = (v if isinstance(v, Tracer) else np.asarray(v, dtype=float) for v in (N, k))
            if name == "comb" and options.get("repetition", False):
                # (SciPy's 1 at k = 0 is binom(N − 1, 0): the formula's own value, and its slope in k)
                return sp.binom(N + k - 1, k)
            inside = (k <= N) & (N >= 0) & (k >= 0)
            # outside, the formula runs at (N, k) = (2, 1): its slope there is finite, so the 0 SciPy
            # writes has derivative 0 (binom's slope at its zeros, k > N, is 0·∞)
            N, k = np.where(inside, N, 2.0), np.where(inside, k, 1.0)
            return np.where(inside, sp.binom(N, k) if name == "comb" else sp.poch(N - k + 1, k), 0.0)
        return counting
    return make


#: scipy.special's Python functions recorded while a trace runs (see supported_functions)
SWAPPED = ("multigammaln", "comb", "perm")
swap_during_traces("scipy.special", {"polygamma": _polygamma, "multigammaln": _multigammaln,
                                     "comb": _counting("comb"), "perm": _counting("perm")})


def _outputs(ufunc: str, ops: list[str]) -> None:
    """SciPy's tuple-valued ``ufunc`` (fresnel, sici, airy, ellipj): one op per output."""
    records = [_record(op, ufunc) for op in ops]
    implements_ufunc(ufunc)(lambda tape, *xs: tuple(record(tape, *xs) for record in records))


_BY_UFUNC: dict[str, list[str]] = {}
for _op, (_ufunc, _) in _COMPONENTS.items():  # (listed in output order)
    _BY_UFUNC.setdefault(_ufunc, []).append(_op)
for _ufunc, _ops in _BY_UFUNC.items():
    _outputs(_ufunc, _ops)


def _spherical_bessel(kind: str) -> None:
    """``scipy.special.spherical_<kind>(n, z)`` calls the private ufunc ``_spherical_<kind>`` (or,
    with ``derivative=True``, ``_spherical_<kind>_d``): for a traced ``z`` (the order ``n`` a
    constant) the first is recorded as its op; the second is refused. (Not ``spherical_kn``: for
    negative z SciPy's wrapper recomputes it in complex numbers, which a trace does not hold.)"""
    record = _record(f"spherical_{kind}")

    @implements_ufunc(f"_spherical_{kind}")
    def spherical(tape, n, z):
        return record(tape, n if isinstance(n, Tracer) else np.asarray(n, dtype=float), z)

    @implements_ufunc(f"_spherical_{kind}_d")
    def refused(tape, n, z):
        raise UnsupportedOperationError(
            f"scipy.special.spherical_{kind} with derivative=True at {call_site()}: the derivative of a traced z "
            "is not recorded; differentiate the function itself (derivative=False)")


for _k in SPHERICAL:
    _spherical_bessel(_k)
#: SciPy's Python functions recorded through the private ufuncs they call (for supported_functions)
WRAPPED = (*(f"spherical_{k}" for k in SPHERICAL), "lambertw")


@implements_ufunc("divmod")
def _divmod(tape, a, b):
    """divmod(a, b) = (floor_divide, remainder): two ops, the first without edges."""
    return tape.record("floor_divide", [a, b]), tape.record("remainder", [a, b])


def _times_pow2(tape, x, e: np.ndarray):
    """``x·2^e`` for constant integers ``e``: a product with the power of two, which is exact
    (as ``ldexp``) wherever ``2^e`` is a normal float; beyond that range two such factors, exact
    unless the first product leaves the normal range."""
    e = np.asarray(e, dtype=np.int64)
    first = np.clip(e, -1022, 1023)
    y = tape.record("mul", [x, np.ldexp(1.0, first)])
    rest = np.clip(e - first, -1022, 1023)
    return tape.record("mul", [y, np.ldexp(1.0, rest)]) if rest.any() else y


@implements_ufunc("ldexp")
def _ldexp(tape, x, e):
    """``x·2^e`` (the exponents ``e`` constant integers): a product with a constant."""
    if isinstance(e, Tracer):
        raise TraceError(f"numpy.ldexp at {call_site()}: the exponents are traced; they must be constant integers")
    if np.asarray(e).dtype.kind not in "iu":
        return np.ldexp(np.zeros(np.shape(x)), e)  # NumPy's own error for float exponents
    return _times_pow2(tape, x, e)


@implements_ufunc("frexp")
def _frexp(tape, x):
    """``(m, e)`` with ``x = m·2^e``: the exponents are read from the traced value (the trace is
    value-dependent) and returned as constants; the mantissa is ``x·2^−e``, of slope ``2^−e``."""
    x.tape.note_value_dependence("numpy.frexp (its exponents)")
    e = np.frexp(x.value)[1]
    return _times_pow2(tape, x, -e), e


@implements_ufunc("modf")
def _modf(tape, x):
    """``(x − trunc(x), trunc(x))``: the fractional part has slope 1, the integral part none.
    (NumPy's fractional part is −0.0 at negative integers and 0.0 at ±inf; this one 0.0 and NaN.)"""
    whole = tape.record("trunc", [x])
    return tape.record("sub", [x, whole]), whole


@implements(np.sinc)
def _sinc(x):
    return _tape_of(x).record("sinc", [x])


@implements(np.i0)
def _i0(x):
    return array_result(_tape_of(x).record("i0", [x]), x)  # NumPy's own values; the slope I₁ needs SciPy


@implements(np.fix)
def _fix(x, out=None):
    _refuse("numpy.fix", out=out)
    return _tape_of(x).record("trunc", [x])  # rounding towards zero is trunc


@implements(np.round, np.around, method="round")
def _round(a, decimals=0, out=None):
    """Round half to even at ``decimals`` digits, computed as NumPy does (scale, rint, unscale);
    the rint leaves no edge, so the Jacobian is exactly zero."""
    _refuse("numpy.round", out=out)
    d = _int(decimals, "decimals")
    tape = _tape_of(a)
    if d == 0:
        return tape.record("rint", [a])
    scale = 10.0 ** abs(d)
    if d > 0:
        return tape.record("div", [tape.record("rint", [tape.record("mul", [a, scale])]), scale])
    return tape.record("mul", [tape.record("rint", [tape.record("div", [a, scale])]), scale])


# operators: x % y, x // y and divmod(x, y) on traced values (NumPy's ufuncs, as for ndarrays)
def _operator(op: str, reverse: bool):
    def method(self, other):
        if not isinstance(other, (Tracer, np.ndarray, float, int, np.floating, np.integer)):
            return NotImplemented
        args = [other, self] if reverse else [self, other]
        if op == "divmod":
            return _divmod(self.tape, *args)
        return self.tape.record(op, args)
    return method


for _dunder, _op in [("mod", "remainder"), ("floordiv", "floor_divide"), ("divmod", "divmod")]:
    setattr(Tracer, f"__{_dunder}__", _operator(_op, False))
    setattr(Tracer, f"__r{_dunder}__", _operator(_op, True))

# -- examples ---------------------------------------------------------------------------------


def _pos(r, shape=(3, 4)):
    return r.uniform(0.2, 0.9, size=shape)


def _sym(r, shape=(3, 4)):
    """Values of both signs, away from 0 (|x| in [0.3, 2])."""
    return r.uniform(0.3, 2.0, size=shape) * r.choice([-1.0, 1.0], size=shape)


def _offgrid(r, shape=(3, 4)):
    """Values away from integers and half-integers (kinks of floor/round/…)."""
    return r.integers(-3, 4, size=shape) + r.uniform(0.1, 0.4, size=shape) * r.choice([1.0, 2.0], size=shape)


DIAG = {"diag", "scaled identity", "scalar", "−identity", "−1"}  # (−identity: negation, exactly −1)
EW = DIAG | {"identity"}  # elementwise partials of equal shapes (identity: a derivative exactly 1)
BROADCAST = EW | {"diag ⊗ dense", "I ⊗ ones", "−I ⊗ ones", "I ⊗ const", "I ⊗ dense"}  # a broadcast operand: a sum map
NONE: frozenset = frozenset()  # no edge at all: a zero Jacobian


def _unary(name, make=_pos, structures=DIAG, **kw):
    case(f"numpy.{name}", lambda xp, n=name: getattr(xp, n), lambda r: (make(r),), structures=structures, **kw)


for _n in ["exp", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arctan", "arcsin",
           "arccos", "sqrt", "square", "reciprocal", "negative", "absolute", "exp2", "log2", "log10",
           "deg2rad", "rad2deg", "radians", "degrees", "arcsinh", "arctanh"]:
    _unary(_n)
_unary("cbrt", _sym)
_unary("sinc", _sym)
_unary("arcsinh", _sym, variant="negative")
_unary("arccosh", lambda r: 1.0 + _pos(r) * 3)
case("numpy.sinc", lambda xp: xp.sinc, lambda r: (np.array([1e-9, -0.01, 0.02, 0.5, 1.0, -2.5]),),
     variant="near 0", structures=DIAG, jax=False,
     note="near 0 by its Taylor series (JAX's derivative cancels to 0 at x = 1e-9; the true one is −π²x/3)")
case("numpy.positive", lambda xp: xp.positive, lambda r: (_pos(r),), structures={"identity"})
case("numpy.reciprocal", lambda xp: xp.reciprocal, lambda r: (_sym(r),), structures=DIAG, variant="negative")
case("numpy.exp2", lambda xp: xp.exp2, lambda r: (_sym(r, (5,)) * 3,), structures=DIAG, variant="vector")
case("numpy.log10", lambda xp: xp.log10, lambda r: (np.float64(3.7),), structures=DIAG, variant="scalar")

# zero slope: no edge, so the Jacobian is exactly zero (JAX's too)
ZERO = "zero slope: no edge (an exactly zero Jacobian)"
for _n in ["sign", "floor", "ceil", "trunc", "rint", "round", "around"]:
    _unary(_n, _offgrid, NONE, note=ZERO)
_unary("fix", _offgrid, NONE, jax=False, note=ZERO + "; jax.numpy has no fix (it is trunc)")
case("numpy.round", lambda xp: lambda x: xp.round(x, 2) * x, lambda r: (_offgrid(r) / 7,), variant="decimals=2",
     structures=DIAG, note=ZERO)
# decimals ≠ 0 scales first (as NumPy does): that scaling is a dead end, never on a path to the output
case("numpy.round", lambda xp: lambda x: xp.round(x, decimals=-1), lambda r: (_offgrid(r) * 10 + 3,),
     variant="decimals=-1", structures=DIAG)
case("ndarray.round", lambda xp: lambda x: x.round(1), lambda r: (_offgrid(r) / 3,), structures=DIAG)


def _binary(name, make_a=_pos, make_b=lambda r, s=(3, 4): _pos(r, s) + 1.0, **kw):
    """Three variants: equal shapes, broadcasting, and a Python-float second operand."""
    fn = lambda xp, n=name: getattr(xp, n)  # noqa: E731
    case(f"numpy.{name}", fn, lambda r: (make_a(r), make_b(r)), argnums=(0, 1), structures=EW, **kw)
    case(f"numpy.{name}", fn, lambda r: (make_a(r, (2, 1, 3)), make_b(r, (4, 1))), argnums=(0, 1),
         variant="broadcast", structures=BROADCAST, **kw)
    case(f"numpy.{name}", lambda xp, n=name: lambda a: getattr(xp, n)(a, 1.7), lambda r: (make_a(r, (5,)),),
         variant="scalar operand", structures=EW, **kw)


def _b(lo, hi):
    return lambda r, shape=(3, 4): r.uniform(lo, hi, size=shape)


for _n in ["add", "subtract", "multiply", "divide", "true_divide", "power", "float_power", "maximum", "minimum",
           "fmax", "fmin", "hypot", "logaddexp", "logaddexp2"]:
    _binary(_n)
_binary("arctan2", lambda r, s=(3, 4): _sym(r, s), lambda r, s=(3, 4): _sym(r, s))
_binary("fmod", lambda r, s=(3, 4): _sym(r, s) * 3, _b(0.7, 1.3), note="∂/∂b = −n for a − n·b, n rounded")
_binary("remainder", lambda r, s=(3, 4): _sym(r, s) * 3, lambda r, s=(3, 4): _sym(r, s) / 1.5)
case("numpy.remainder", lambda xp: xp.mod, lambda r: (_sym(r) * 3, _b(0.7, 1.3)(r, (4,))), argnums=(0, 1),
     variant="np.mod")
_binary("copysign", lambda r, s=(3, 4): _sym(r, s), lambda r, s=(3, 4): _sym(r, s))
_binary("floor_divide", lambda r, s=(3, 4): _sym(r, s) * 3, _b(0.7, 1.3), note=ZERO)
_binary("heaviside", lambda r, s=(3, 4): _sym(r, s), _pos)
case("numpy.heaviside", lambda xp: xp.heaviside, lambda r: (np.array([-1.0, 0.0, 2.0, 0.0]), _pos(r, (4,))),
     argnums=(1,), variant="at 0", structures=DIAG, note="∂/∂x2 is 1 where x1 = 0; no edge from x1")
# operators and divmod
case("numpy.remainder", lambda xp: lambda a, b: a % b, lambda r: (_sym(r) * 3, _b(0.7, 1.3)(r)), argnums=(0, 1),
     variant="a % b")
case("numpy.floor_divide", lambda xp: lambda a, b: (a // b) * a + 2.0 // b, lambda r: (_sym(r) * 3, _b(0.7, 1.3)(r)),
     argnums=(0, 1), variant="a // b")
case("numpy.ldexp", lambda xp: lambda x: xp.ldexp(x, np.array([3, -2, 0, 1])), lambda r: (_sym(r),),
     structures=DIAG, note="a product with the constant 2^e (the exponents must be constant integers)")
case("numpy.frexp", lambda xp: lambda x: xp.frexp(x)[0] * 3.0, lambda r: (_sym(r) * 40,), structures=DIAG,
     note="the exponents are read at the traced point (value-dependent); the mantissa's slope is 2^−e")
case("numpy.modf", lambda xp: lambda x: xp.modf(x)[0] + 2.0 * xp.modf(x)[1], lambda r: (_offgrid(r),),
     structures=EW, note="fractional part x − trunc(x): slope 1; integral part: no edge")
case("numpy.fabs", lambda xp: xp.fabs, lambda r: (_sym(r),), structures=DIAG)
case("numpy.divmod", lambda xp: lambda a, b: xp.divmod(a, b)[1] + xp.divmod(a, b)[0] * b,
     lambda r: (_sym(r) * 3, _b(0.7, 1.3)(r, (4,))), argnums=(0, 1))

# SciPy's special ufuncs (they dispatch through __array_ufunc__); examples only where SciPy is
if importlib.util.find_spec("scipy") is not None:
    def _special(xp):
        if xp is np:
            import scipy.special as sp
        else:
            import jax.scipy.special as sp
        return sp

    def _sp(name, make=_pos, argnums=(0,), **kw):
        """A case of scipy.special.<name>; ``make`` returns the argument (or, binary, the tuple)."""
        mk = make if len(argnums) > 1 else (lambda r, m=make: (m(r),))
        case(f"scipy.special.{name}", lambda xp, n=name: getattr(_special(xp), n), mk, argnums=argnums, **kw)

    _sp("expit", _sym, structures=DIAG)
    _sp("expit", lambda r: np.array([-40.0, -3.0, 0.0, 3.0, 40.0]), variant="tails")
    _sp("logit", structures=DIAG)
    _sp("erf", _sym, structures=DIAG)
    _sp("erfc", _sym, structures=DIAG)
    _sp("ndtr", _sym, structures=DIAG)
    _sp("log_ndtr", _sym, structures=DIAG)
    _sp("log_ndtr", lambda r: np.array([-30.0, -8.0, 0.0, 8.0]), variant="tails", jax=False,
        note="φ/Φ as exp(−x²/2 − log Φ), and past x = −40 by the Mills ratio's series: 1e-13 accurate "
             "at −30 (JAX: 1.6e-10), 1e-16 at −1e8 (the exponential form: 0.9)")
    _sp("gammaln", lambda r: _pos(r) * 5, structures=DIAG)
    _sp("gammaln", lambda r: np.array([-2.5, -0.5, 0.3, 7.0]), variant="negative")
    _sp("xlogy", lambda r: (_sym(r), _pos(r) + 0.5), argnums=(0, 1))
    _sp("xlogy", lambda r: (np.array([0.0, 1.5, 0.0]), _pos(r, (2, 1)) + 0.5), argnums=(0, 1), variant="x = 0")
    _sp("xlog1py", lambda r: (_sym(r, (2, 1, 3)), _pos(r, (4, 1))), argnums=(0, 1), variant="broadcast")
    _sp("xlog1py", lambda r: (_sym(r), _pos(r) - 0.1), argnums=(0, 1))
    _sp("log_expit", _sym, structures=DIAG, jax=False, note="jax.scipy.special has no log_expit")
    _sp("log_expit", lambda r: np.array([-40.0, -3.0, 0.0, 3.0, 40.0]), variant="tails", jax=False)
    _sp("erfinv", lambda r: _sym(r) / 2.2, structures=DIAG)
    _sp("ndtri", structures=DIAG)
    _sp("gamma", lambda r: _sym(r) * 2.0, structures=DIAG)
    _sp("digamma", lambda r: _pos(r) * 4.0, structures=DIAG)
    _sp("entr", structures=DIAG)
    _sp("rel_entr", lambda r: (_pos(r), _pos(r) + 0.3), argnums=(0, 1))
    _sp("betaln", lambda r: (_pos(r) * 3.0, _pos(r, (4,)) + 1.0), argnums=(0, 1), variant="broadcast")
    _sp("i0", _sym, structures=DIAG)
    _sp("i1", lambda r: np.concatenate([_sym(r, (5,)) * 3.0, [0.0]]), structures=DIAG, note="I₁′(0) = ½")
    _sp("i0e", lambda r: np.concatenate([_sym(r, (5,)) * 3.0, [0.0]]), structures=DIAG)
    _sp("i1e", lambda r: np.concatenate([_sym(r, (5,)) * 3.0, [0.0]]), structures=DIAG, note="½ at 0")
    _sp("cosm1", lambda r: np.concatenate([_sym(r, (5,)), [1e-9]]), structures=DIAG, jax=False,
        note="jax.scipy.special has no cosm1")
    _sp("poch", lambda r: (_pos(r) * 3.0, _pos(r, (4,)) - 0.7), argnums=(0, 1), variant="broadcast")
    for _n, _mk in (("erfcx", _sym), ("dawsn", _sym), ("exp1", _pos), ("expi", _sym), ("rgamma", _sym),
                    ("loggamma", _pos), ("j0", _sym), ("j1", lambda r: np.concatenate([_sym(r, (5,)) * 3.0, [0.0]])),
                    ("y0", _pos), ("y1", _pos), ("k0", _pos), ("k1", _pos), ("gammasgn", _sym)):
        _sp(_n, _mk, structures=DIAG | {"zero"} if _n == "gammasgn" else DIAG,
            jax=_n not in ("rgamma", "j0", "j1", "y0", "y1", "k0", "k1"),
            note="jax.scipy.special lacks it" if _n in ("rgamma", "j0", "j1", "y0", "y1", "k0", "k1") else "")
    _sp("kl_div", lambda r: (_pos(r), _pos(r) + 0.3), argnums=(0, 1))
    _sp("erfi", _sym, structures=DIAG, jax=False, note="jax.scipy.special lacks it")
    _sp("erfcinv", lambda r: _pos(r) * 1.6 + 0.05, structures=DIAG, jax=False, note="jax.scipy.special lacks it")
    _sp("exprel", lambda r: np.array([-2.0, -0.003, 0.0, 1e-5, 0.004, 1.5]), structures=DIAG, jax=False,
        note="½ at 0 (a series near 0); jax.scipy.special lacks it")
    _sp("owens_t", lambda r: (_sym(r, (3, 1)) * 2.0, _sym(r) * 3.0), argnums=(0, 1))
    for _n, _mk, _note in (
            ("fresnel", _sym, "S and C, each its own op: S′ = sin(πx²/2), C′ = cos(πx²/2)"),
            ("sici", _sym, "Si and Ci, each its own op: Si′ = sin(x)/x (1 at 0), Ci′ = cos(x)/x (SciPy's Ci(|x|) "
             "below 0)"),
            ("airy", _sym, "Ai, Ai′, Bi and Bi′, each its own op, their slopes from Airy's equation y″ = x·y")):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda x: xp.stack(getattr(_special(xp), n)(x)),
             lambda r, m=_mk: (m(r),), structures=DIAG | {"embed"}, jax=False,
             note=_note + "; jax.scipy.special lacks it")
    for _k, _mk in zip(SPHERICAL, (_sym, _pos, _sym)):
        case(f"scipy.special.spherical_{_k}", lambda xp, k=_k: lambda x: getattr(_special(xp), f"spherical_{k}")(
            np.array([0, 1, 2, 3]), x), lambda r, m=_mk: (m(r),), jax=False,
             note="in z, the integer order a constant (negative z by SciPy's reflection); derivative=True refused "
                  "(JAX lacks it)")
    case("scipy.special.ellipj", lambda xp: lambda u: xp.stack(_special(xp).ellipj(u, np.array([[0.3], [0.9]]))),
         lambda r: (_sym(r, (4,)) * 2.0,), jax=False,
         note="sn, cn, dn and the amplitude φ in u, each its own op (sn′ = cn·dn, cn′ = −sn·dn, dn′ = −m·sn·cn, "
              "φ′ = dn); the parameter m must be a constant; jax.scipy.special lacks it")
    for _n in ("ellipkinc", "ellipeinc"):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda phi, m: getattr(_special(xp), n)(phi, m),
             lambda r: (_sym(r) * 1.5, np.array([0.3, -0.5, 0.9, 0.0])), argnums=(0,), structures=DIAG,
             jax=False, note="in the amplitude φ (the parameter m constant); jax.scipy.special lacks it")
    _sp("huber", lambda r: (_pos(r, (3, 1)), _sym(r) * 2.0), argnums=(0, 1), jax=False,
        note="b²/2 inside |b| ≤ a, a·(|b| − a/2) outside")
    _sp("pseudo_huber", lambda r: (_pos(r, (3, 1)), _sym(r) * 2.0), argnums=(0, 1), jax=False)
    _sp("beta", lambda r: (_pos(r) * 3.0, _pos(r, (4,)) + 1.0), argnums=(0, 1), variant="broadcast")

    def _in_point(name, make, note, jax=True, variant=""):
        """A case of scipy.special.<name>(shape, x) differentiated in x alone."""
        case(f"scipy.special.{name}", lambda xp, n=name: lambda a, x: getattr(_special(xp), n)(a, x), make,
             argnums=(1,), structures=DIAG | {"diag ⊗ dense"}, note=note, jax=jax, variant=variant)

    for _n in ("gammainc", "gammaincc", "chdtr", "chdtrc"):
        _in_point(_n, lambda r: (np.array([[0.7], [2.5], [4.0]]), _pos(r, (6,)) * 3.0),
                  "in the point: the density", jax=_n.startswith("gamma"))
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda a, x: getattr(_special(xp), n)(a, x),
             lambda r: (_pos(r, (3, 1)) * 5.0, _pos(r, (4,)) * 6.0), argnums=(0, 1), variant="in the shape too",
             jax=_n == "gammainc", note="in the shape parameter: the series or continued fraction differentiated "
                                        "term by term (about 1e-14 relative)")
    for _n in ("eval_legendre", "eval_chebyt", "eval_chebyu", "eval_chebyc", "eval_chebys", "eval_sh_legendre",
               "eval_sh_chebyt", "eval_sh_chebyu", "eval_laguerre", "eval_hermite", "eval_hermitenorm"):
        _in_point(_n, lambda r: ([[0], [1], [4]], _sym(r, (5,)) * 0.45 + 0.5),  # (integer degrees: Hermite's)
                  "in the point, by the classical derivative identities; the degree must be a constant", jax=False)
    _in_point("eval_legendre", lambda r: (np.array([[2.5]]), _sym(r, (5,)) * 0.9), "", jax=False,
              variant="a real degree")
    for _n in ("eval_gegenbauer", "eval_genlaguerre", "hyp1f1"):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda x: getattr(_special(xp), n)(np.array([[0.0], [1.0], [3.5]]),
                                                                                        0.7, x),
             lambda r: (_sym(r, (5,)) * 0.9,), structures=DIAG | {"diag ⊗ dense"}, jax=_n == "hyp1f1",
             note="in the point; the degree (or a) and the parameter must be constants")
    case("scipy.special.eval_jacobi", lambda xp: lambda x: _special(xp).eval_jacobi([[0], [1], [4]], 0.7, 1.5, x),
         lambda r: (_sym(r, (5,)) * 0.9,), structures=DIAG | {"diag ⊗ dense"}, jax=False,
         note="in the point; the degree and parameters must be constants")
    _in_point("expn", lambda r: (np.array([[0], [1], [3]]), _pos(r, (5,))), "in the point: −E_(n−1)", jax=False)
    for _n in ("struve", "modstruve"):
        _in_point(_n, lambda r: (np.array([[0.0], [1.5], [-0.5]]), _pos(r, (5,)) * 4.0),
                  "in the point, by the order recurrence (DLMF 11.4.23–26); the order must be a constant", jax=False)
    case("scipy.special.zeta", lambda xp: lambda q: _special(xp).zeta(np.array([[2.0], [3.5]]), q),
         lambda r: (_pos(r, (5,)) * 3.0,), structures=DIAG | {"diag ⊗ dense"}, jax=False,
         note="Hurwitz's ζ(s, q) in q: −s·ζ(s + 1, q), s a constant; Riemann's zeta(s) of a traced s is refused "
              "(no closed-form slope)")
    _sp("kolmogorov", lambda r: _pos(r, (5,)) * 2.0, structures=DIAG, jax=False, note="its slope SciPy's own")
    case("scipy.special.lambertw", lambda xp: lambda x: xp.real(_special(xp).lambertw(x)),
         lambda r: (np.concatenate([_pos(r, (3,)) * 0.4 - 0.36, [0.0], _pos(r, (3,)) * 5.0]),), jax=False,
         note="the real branches (k = 0 from −1/e on, k = −1 on [−1/e, 0)): W′ = e^(−W)/(1 + W), near −1/e by "
              "W's series; a complex W "
              "(other branches, z below −1/e) is refused; jax.scipy.special lacks it")
    case("scipy.special.lambertw", lambda xp: lambda x: _special(xp).lambertw(x, -1).real,
         lambda r: (-_pos(r, (4,)) * 0.4,), jax=False, variant="k = −1")
    _sp("kolmogi", lambda r: _pos(r, (5,)), structures=DIAG, jax=False, note="1/kolmogorov′ at the result")
    for _n in ("gdtr", "gdtrc"):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda x: getattr(_special(xp), n)(1.7, 2.3, x),
             lambda r: (_pos(r, (5,)) * 3.0,), structures=DIAG, jax=False,
             note="the gamma distribution function of rate a and shape b: P(b, a·x)")
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda a, b, x: getattr(_special(xp), n)(a, b, x),
             lambda r: (_pos(r, (3, 1)) * 2.0, _pos(r, (4,)) * 3.0, _pos(r) * 2.0), argnums=(0, 1, 2),
             variant="in the rate and shape too", jax=False)
    case("scipy.special.lpmv", lambda xp: lambda x: _special(xp).lpmv(np.array([[0], [1], [2]]), 2.5, x),
         lambda r: (_sym(r, (5,)) * 0.45,), structures=DIAG | {"diag ⊗ dense"}, jax=False,
         note="in x, the order and degree constants: (1 − x²)P′ = (ν + 1)xP − (ν − m + 1)P_(ν+1) (DLMF 14.10.5); "
              "refused at x = ±1")
    _in_point("hyp0f1", lambda r: (np.array([[0.5], [2.0]]), _sym(r, (5,)) * 2.0), "in the point", jax=False)
    _in_point("polygamma", lambda r: (np.array([[0], [1], [3]]), _pos(r, (5,)) * 2.0),
              "in the point; the order n must be a constant")
    for _n in ("jv", "yv", "iv", "kv", "jve", "yve", "ive", "kve"):
        _in_point(_n, lambda r: (np.array([[0.0], [1.0], [2.5]]), _pos(r, (5,)) * 4.0 + 0.2),
                  "in the point, by the order recurrence; the order must be a constant", jax=False)
    _in_point("stdtr", lambda r: (np.array([[1.5], [4.0]]), _sym(r, (5,)) * 2.0), "in the point: the density",
              jax=False)
    for _n, _mk in (("stdtr", lambda r: (_pos(r, (3, 1)) * 6.0, _sym(r, (4,)) * 2.0)),
                    ("stdtrit", lambda r: (_pos(r, (3, 1)) * 6.0, _pos(r, (4,))))):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda a, x: getattr(_special(xp), n)(a, x), _mk,
             argnums=(0, 1), variant="in the degrees of freedom too", jax=False,
             note="in ν: through the incomplete beta function's derivative in its shape parameter")
    for _n, _a in (("gammaincinv", 2.5), ("gammainccinv", 0.7), ("chdtri", 3.0), ("stdtrit", 4.0)):
        _in_point(_n, lambda r, a=_a: (np.array([[a], [1.7]]), _pos(r, (5,))),
                  "a quantile: 1/density there", jax=False)
    for _n in ("gammaincinv", "gammainccinv", "chdtri"):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda a, q: getattr(_special(xp), n)(a, q),
             lambda r: (_pos(r, (3, 1)) * 5.0, _pos(r, (4,))), argnums=(0, 1), variant="in the shape too", jax=False,
             note="in the shape parameter: −(∂P/∂a)/(∂P/∂x) at the quantile")
    _in_point("pdtr", lambda r: (np.array([[0.0], [2.0], [5.0]]), _pos(r, (4,)) * 3.0),
              "the Poisson distribution function of floor(k) in its mean; k must be a constant", jax=False)
    _in_point("pdtrc", lambda r: (np.array([[0.0], [2.0], [5.0]]), _pos(r, (4,)) * 3.0), "", jax=False)
    for _n, _ab, _scale, _note in (
            ("betainc", (2.0, 3.5), 0.45, "the regularized incomplete beta function: in x the beta density"),
            ("betaincc", (0.7, 2.0), 0.45, ""),
            ("betaincinv", (2.0, 3.5), 0.45, "a quantile: 1/density there"),
            ("betainccinv", (0.7, 2.0), 0.45, ""),
            ("fdtr", (3.0, 5.0), 2.0, "the F distribution function: in x the F density"),
            ("fdtrc", (3.0, 5.0), 2.0, ""), ("fdtri", (3.0, 5.0), 0.45, "a quantile: 1/density there"),
            ("bdtr", (3, 10), 0.45, "binomial: in p, the counts k and n must be constants (SciPy truncates them)"),
            ("bdtrc", (3, 10), 0.45, ""), ("nbdtr", (3, 4), 0.45, "negative binomial: in p"),
            ("nbdtrc", (3, 4), 0.45, "")):
        case(f"scipy.special.{_n}", lambda xp, n=_n, ab=_ab: lambda x: getattr(_special(xp), n)(*ab, x),
             lambda r, s=_scale: (_pos(r, (5,)) * s,), structures=DIAG, note=_note,
             jax=_n == "betainc")
    for _n in ("betainc", "betaincc", "betaincinv", "betainccinv", "fdtr", "fdtrc", "fdtri"):
        case(f"scipy.special.{_n}", lambda xp, n=_n: lambda a, b, x: getattr(_special(xp), n)(a, b, x),
             lambda r: (_pos(r, (3, 1)) * 4.0, _pos(r, (4,)) * 3.0, _pos(r)), argnums=(0, 1, 2),
             variant="in the shape parameters too", jax=False,
             note="in a and b: the continued fraction differentiated term by term (about 1e-14 relative)")
    _sp("spence", lambda r: np.concatenate([_pos(r, (3,)), _pos(r, (3,)) + 2.2]), structures=DIAG)
    _sp("spence", lambda r: np.array([0.5, 1.0, 1.5, 2.0]), structures=DIAG, variant="1 to 2", jax=False,
        note="log(x)/(1 − x), −1 at 1 (JAX's slope is NaN on (1, 2])")
    _sp("ellipk", lambda r: np.concatenate([_sym(r, (5,)) * 0.45, [0.0, 1e-5]]), structures=DIAG, jax=False,
        note="(E − (1 − m)K)/(2m(1 − m)); its series near m = 0")
    _sp("ellipe", lambda r: np.concatenate([_sym(r, (5,)) * 0.45, [0.0, 1e-5]]), structures=DIAG, jax=False,
        note="(E − K)/(2m); its series near m = 0")
    _sp("binom", lambda r: (_pos(r) * 8.0 + 3.0, _pos(r, (4,)) * 2.0), argnums=(0, 1), jax=False,
        variant="broadcast")
    _sp("powm1", lambda r: (_pos(r) * 2.0, _sym(r, (4,))), argnums=(0, 1), jax=False, variant="broadcast")
    for _n in ("boxcox", "boxcox1p"):
        _sp(_n, lambda r: (_pos(r, (4, 3)) * 2.0, np.array([-0.4, 1e-3, 0.8])), argnums=(0, 1), variant="broadcast")
        _sp(_n, lambda r: (_pos(r, (3, 1)) * 2.0, np.array([0.0, 1e-7, 0.5])), argnums=(0, 1), variant="λ near 0",
            jax=False, note="∂/∂λ by its series where |λ·log x| < 10⁻⁴, log(x)²/2 at λ = 0, as central "
            "differences (JAX's is 0 at λ = 0 and loses digits near it)")
        _sp(f"inv_{_n}", lambda r: (_pos(r) * 2.0, np.array([-0.4, 0.0, 1e-7, 0.8])), argnums=(0, 1),
            variant="broadcast", jax=False, note="∂/∂λ by its series where |λy| < 10⁻⁴")
    case("scipy.special.multigammaln", lambda xp: lambda a: _special(xp).multigammaln(a, 3),
         lambda r: (_pos(r, (4,)) + 1.5,), note="d(d − 1)/4·log π + Σ gammaln(a − j/2); d a constant")
    case("scipy.special.comb", lambda xp: lambda n: _special(np).comb(n + 4.0, 2.5), lambda r: (_pos(r, (4,)),),
         jax=False, note="exact=False: binom(N, k), 0 outside 0 ≤ k ≤ N; with repetition C(N + k − 1, k)")
    case("scipy.special.perm", lambda xp: lambda n: _special(np).perm(n + 4.0, 2.5), lambda r: (_pos(r, (4,)),),
         jax=False, note="exact=False: poch(N − k + 1, k), 0 outside 0 ≤ k ≤ N")
case("numpy.i0", lambda xp: xp.i0, lambda r: (_sym(r) * 3.0,), structures=DIAG,
     note="NumPy's values; its slope I₁ is SciPy's (needs SciPy)")
