"""Benchmark problem suite for Jacobian accumulation.

Every problem is plain NumPy-style code that takes its array namespace as the
keyword argument ``xp`` (default :mod:`numpy`), so the same function runs under
NumPy, ``jax.numpy``, a torch-like namespace, or jacc's tracer.  The functions
restrict themselves to a small, traceable vocabulary:

* ``+ - * / **``, unary minus;
* ``xp.exp log log1p expm1 sin cos tan tanh sqrt square abs maximum minimum``;
* ``@``, ``xp.sum/mean/max(..., axis=...)``, ``reshape``, ``.T``, constant
  integer/slice indexing, ``xp.stack``, ``xp.concatenate``;
* ``xp.linalg.solve`` and ``xp.linalg.slogdet``.

No in-place assignment, no ``xp.array`` of computed values, no Python control
flow on computed values.  Constants are NumPy arrays or Python floats created
with ``np`` (never ``xp``) and closed over by ``fn``.

Usage::

    p = get("propane")                 # size "small" (default) or "full"
    inputs = p.make_inputs(seed=0)     # dict of named float64 arrays
    y = p.fn(**inputs, xp=np)          # output of shape p.out_shape

``PROBLEMS`` maps each lowercase name to its factory ``size -> Problem``;
constants are only generated when a factory is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Problem", "PROBLEMS", "get", "names", "PHI_TANH_MAX_ABS_ERR"]

Array = Any  # an array of whatever namespace ``xp`` is
Inputs = dict[str, np.ndarray]

SIZES = ("small", "full")


@dataclass(frozen=True)
class Problem:
    """One benchmark instance.

    ``fn(**make_inputs(seed), xp=np)`` evaluates the problem; ``out_shape`` is
    the shape of its output; ``constants`` exposes the closed-over data (for
    tests and reference implementations).
    """

    name: str
    fn: Callable[..., Array]
    make_inputs: Callable[..., Inputs]
    description: str
    citation: str
    out_shape: tuple[int, ...]
    size: str = "small"
    constants: dict[str, Any] = field(default_factory=dict)
    #: A hand-written NumPy Jacobian in the optimal order, where one is known: ``hand(**inputs)``
    #: returns ``{input name: Jacobian}`` (the practical limit a compiled plan is measured against).
    hand: Callable[..., dict[str, np.ndarray]] | None = None

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the named inputs."""
        return {k: v.shape for k, v in self.make_inputs(0).items()}

    @property
    def n_in(self) -> int:
        """Total number of scalar inputs."""
        return sum(int(np.prod(s)) for s in self.input_shapes().values())

    @property
    def n_out(self) -> int:
        """Total number of scalar outputs."""
        return int(np.prod(self.out_shape))

    def evaluate(self, seed: int = 0, xp: Any = np) -> Array:
        """Evaluate ``fn`` at ``make_inputs(seed)``."""
        return self.fn(**self.make_inputs(seed), xp=xp)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")


# --------------------------------------------------------------------------
# 1. lion
# --------------------------------------------------------------------------

def lion(x: Array, xp: Any = np) -> Array:
    """OpenAD/angel "lion" example, R^2 -> R^4.

    t1 = x1/x2, t2 = cos t1, y = (exp t2, 3.14 t2, sin t2, t2 t1).
    """
    x1 = x[0]
    x2 = x[1]
    t1 = x1 / x2
    t2 = xp.cos(t1)
    return xp.stack([xp.exp(t2), 3.14 * t2, xp.sin(t2), t2 * t1])


def _make_lion(size: str) -> Problem:
    def make_inputs(seed: int = 0) -> Inputs:
        return {"x": _rng(seed).uniform(0.5, 2.0, 2)}

    return Problem(
        "lion", lion, make_inputs,
        "Small scalar chain with shared intermediates t1, t2 (2 -> 4).",
        "'lion' example of the angel Jacobian-accumulation library (U. Naumann, "
        "P. Gottschling) used by OpenAD (J. Utke et al., ACM TOMS 34(4), 2008).",
        (4,), size)


# --------------------------------------------------------------------------
# 2. propane (MINPACK-2, full formulation)
# --------------------------------------------------------------------------

_PROPANE_K = (1.930e-1, 2.597e-3, 3.448e-3, 1.799e-5, 2.155e-4, 3.846e-5)
_PROPANE_R = 10.0
_PROPANE_P = 40.0


def propane(x: Array, xp: Any = np) -> Array:
    """MINPACK-2 combustion of propane, full formulation (11 -> 11).

    With R = 10, p = 40, K5..K10 = 1.930e-1, 2.597e-3, 3.448e-3, 1.799e-5,
    2.155e-4, 3.846e-5 and s = p/x11::

        f1  = x1 + x4 - 3
        f2  = 2x1 + x2 + x4 + x7 + x8 + x9 + 2x10 - R
        f3  = 2x2 + 2x5 + x6 + x7 - 8
        f4  = 2x3 + x9 - 4R
        f5  = K5 x2 x4 - x1 x5
        f6  = K6 sqrt(x2 x4) - sqrt(x1) x6 sqrt(s)
        f7  = K7 sqrt(x1 x2) - sqrt(x4) x7 sqrt(s)
        f8  = K8 x1 - x4 x8 s
        f9  = K9 x1 sqrt(x3) - x4 x9 sqrt(s)
        f10 = K10 x1^2 - x4^2 x10 s
        f11 = x11 - (x1 + ... + x10)

    Meintjes & Morgan (1990); Averick, Carter, Moré & Xue (1992), MINPACK-2.
    """
    k5, k6, k7, k8, k9, k10 = _PROPANE_K
    R = _PROPANE_R
    x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11 = (x[i] for i in range(11))
    s = _PROPANE_P / x11
    sq_s = xp.sqrt(s)
    return xp.stack([
        x1 + x4 - 3.0,
        2.0 * x1 + x2 + x4 + x7 + x8 + x9 + 2.0 * x10 - R,
        2.0 * x2 + 2.0 * x5 + x6 + x7 - 8.0,
        2.0 * x3 + x9 - 4.0 * R,
        k5 * x2 * x4 - x1 * x5,
        k6 * xp.sqrt(x2 * x4) - xp.sqrt(x1) * x6 * sq_s,
        k7 * xp.sqrt(x1 * x2) - xp.sqrt(x4) * x7 * sq_s,
        k8 * x1 - x4 * x8 * s,
        k9 * x1 * xp.sqrt(x3) - x4 * x9 * sq_s,
        k10 * x1 ** 2 - x4 ** 2 * x10 * s,
        x11 - xp.sum(x[:10]),
    ])


def propane_start() -> np.ndarray:
    """MINPACK-2 standard starting point of the propane problem."""
    k5, k6, k7, k8, k9, k10 = _PROPANE_K
    p = _PROPANE_P
    sp = math.sqrt(p)
    return np.array([5.0, 2.5, 5.0, 0.1, 0.05 * k5, k6 / sp, 50.0 * k7 / sp,
                     1e3 * k8 / p, 500.0 * k9 / sp, 5e4 * k10 / p, 20.0])


def _make_propane(size: str) -> Problem:
    def make_inputs(seed: int = 0) -> Inputs:
        return {"x": propane_start()}

    return Problem(
        "propane", propane, make_inputs,
        "Chemical equilibrium of propane combustion in air (11 -> 11), sparse "
        "Jacobian with one dense row (f11) and one dense column (x11 via p/x11).",
        "B. M. Averick, R. G. Carter, J. J. Moré, G.-L. Xue, 'The MINPACK-2 test "
        "problem collection', ANL/MCS-P153-0692, 1992 (problem CPF); K. Meintjes, "
        "A. P. Morgan, ACM TOMS 16(2):143-151, 1990.",
        (11,), size, {"K5..K10": _PROPANE_K, "R": _PROPANE_R, "p": _PROPANE_P})


# --------------------------------------------------------------------------
# 3. heart (MINPACK-2 human heart dipole)
# --------------------------------------------------------------------------

# Measured sums (sigma_mx, sigma_my, sigma_A, ..., sigma_F) for the five
# experiments of Dennis, Gay & Vu; version 1 (experiment 791129) is default.
_HEART_SIGMAS = {
    1: (0.485, -0.0019, -0.0581, 0.015, 0.105, 0.0406, 0.167, -0.399),
    2: (-0.69, -0.044, -1.57, -1.31, -2.65, 2.0, -12.6, 9.48),
    3: (-0.816, -0.017, -1.826, -0.754, -4.839, -3.259, -14.023, 15.467),
    4: (-0.809, -0.021, -2.04, -0.614, -6.903, -2.934, -26.328, 18.639),
    5: (-0.807, -0.021, -2.379, -0.364, -10.541, -1.961, -51.551, 21.053),
}
_HEART_STARTS = {
    1: (0.299, 0.186, -0.0273, 0.0254, -0.474, 0.474, -0.0892, 0.0892),
    2: (-0.3, -0.39, 0.3, -0.344, -1.2, 2.69, 1.59, -1.5),
    3: (-0.041, -0.775, 0.03, -0.047, -2.565, 2.565, -0.754, 0.754),
    4: (-0.056, -0.753, 0.026, -0.047, -2.991, 2.991, -0.568, 0.568),
    5: (-0.074, -0.733, 0.013, -0.034, -3.632, 3.632, -0.289, 0.289),
}


def make_heart(version: int = 1) -> Callable[..., Array]:
    """Human heart dipole residual for one of the five MINPACK-2 data sets.

    With x = (a, b, c, d, t, u, v, w) and measured sums sigma::

        f1 = a + b - s_mx
        f2 = c + d - s_my
        f3 = t a + u b - v c - w d - s_A
        f4 = v a + w b + t c + u d - s_B
        f5 = a(t^2 - v^2) - 2 c t v + b(u^2 - w^2) - 2 d u w - s_C
        f6 = c(t^2 - v^2) + 2 a t v + d(u^2 - w^2) + 2 b u w - s_D
        f7 = a t(t^2 - 3v^2) + c v(v^2 - 3t^2) + b u(u^2 - 3w^2)
             + d w(w^2 - 3u^2) - s_E
        f8 = c t(t^2 - 3v^2) - a v(v^2 - 3t^2) + d u(u^2 - 3w^2)
             - b w(w^2 - 3u^2) - s_F
    """
    smx, smy, sa, sb, sc, sd, se, sf = _HEART_SIGMAS[version]

    def heart(x: Array, xp: Any = np) -> Array:
        a, b, c, d, t, u, v, w = (x[i] for i in range(8))
        tt, vv, uu, ww = t * t, v * v, u * u, w * w
        tsvs, usws = tt - vv, uu - ww
        ts3vs, vs3ts = tt - 3.0 * vv, vv - 3.0 * tt
        us3ws, ws3us = uu - 3.0 * ww, ww - 3.0 * uu
        return xp.stack([
            a + b - smx,
            c + d - smy,
            t * a + u * b - v * c - w * d - sa,
            v * a + w * b + t * c + u * d - sb,
            a * tsvs - 2.0 * c * t * v + b * usws - 2.0 * d * u * w - sc,
            c * tsvs + 2.0 * a * t * v + d * usws + 2.0 * b * u * w - sd,
            a * t * ts3vs + c * v * vs3ts + b * u * us3ws + d * w * ws3us - se,
            c * t * ts3vs - a * v * vs3ts + d * u * us3ws - b * w * ws3us - sf,
        ])

    heart.__doc__ = make_heart.__doc__
    return heart


def _make_heart(size: str, version: int = 1) -> Problem:
    def make_inputs(seed: int = 0) -> Inputs:
        return {"x": np.array(_HEART_STARTS[version], dtype=np.float64)}

    return Problem(
        "heart", make_heart(version), make_inputs,
        "Human heart dipole: 8 polynomial equations (degree <= 4) in 8 unknowns "
        f"(MINPACK-2 version DHHD{version}), dense Jacobian with many shared "
        "subexpressions.",
        "Averick, Carter, Moré, Xue, 'The MINPACK-2 test problem collection', "
        "ANL/MCS-P153-0692, 1992 (problem HHD); J. E. Dennis, D. M. Gay, P. A. Vu, "
        "'A new nonlinear equations test problem', Rice Univ. TR 83-16, 1985; "
        "C. V. Nelson, B. C. Hodgkin, IEEE Trans. Biomed. Eng. 28, 1981.",
        (8,), size, {"sigma": _HEART_SIGMAS[version], "version": version})


# --------------------------------------------------------------------------
# 4. roeflux
# --------------------------------------------------------------------------

GAMMA = 1.4


def euler_flux(q: Array, gamma: float = GAMMA, xp: Any = np) -> Array:
    """Physical 1-D Euler flux of conserved q = (rho, rho u, E)."""
    rho, m, E = q[0], q[1], q[2]
    u = m / rho
    p = (gamma - 1.0) * (E - 0.5 * m * u)
    return xp.stack([m, m * u + p, u * (E + p)])


def roeflux(ql: Array, qr: Array, xp: Any = np) -> Array:
    """Roe (1981) approximate Riemann flux for the 1-D Euler equations.

    q = (rho, rho u, E), p = (gamma-1)(E - rho u^2/2), H = (E + p)/rho.
    Roe averages (w = sqrt(rho)): u^ = (wl ul + wr ur)/(wl + wr), same for
    H^; c^ = sqrt((gamma-1)(H^ - u^^2/2)), rho^ = wl wr.  Wave strengths
    a1,3 = (dp -+ rho^ c^ du)/(2 c^2), a2 = drho - dp/c^2; eigenvalues
    u^-c^, u^, u^+c^ with eigenvectors (1, u^-c^, H^-u^c^), (1, u^, u^^2/2),
    (1, u^+c^, H^+u^c^).  F = (F(ql) + F(qr))/2 - 1/2 sum_k |lam_k| a_k r_k.
    No entropy fix (|lam| is plain ``xp.abs``).  Works elementwise, so ql,
    qr may be (3,) or (3, M) for M interfaces.
    """
    g = GAMMA
    rl, ml, El = ql[0], ql[1], ql[2]
    rr, mr, Er = qr[0], qr[1], qr[2]
    ul, ur = ml / rl, mr / rr
    pl = (g - 1.0) * (El - 0.5 * ml * ul)
    pr = (g - 1.0) * (Er - 0.5 * mr * ur)
    Hl, Hr = (El + pl) / rl, (Er + pr) / rr
    wl, wr = xp.sqrt(rl), xp.sqrt(rr)
    ws = wl + wr
    u = (wl * ul + wr * ur) / ws
    H = (wl * Hl + wr * Hr) / ws
    c2 = (g - 1.0) * (H - 0.5 * u * u)
    c = xp.sqrt(c2)
    rho = wl * wr
    drho, du, dp = rr - rl, ur - ul, pr - pl
    a1 = (dp - rho * c * du) / (2.0 * c2)
    a2 = drho - dp / c2
    a3 = (dp + rho * c * du) / (2.0 * c2)
    s1 = xp.abs(u - c) * a1
    s2 = xp.abs(u) * a2
    s3 = xp.abs(u + c) * a3
    diss0 = s1 + s2 + s3
    diss1 = s1 * (u - c) + s2 * u + s3 * (u + c)
    diss2 = s1 * (H - u * c) + s2 * (0.5 * u * u) + s3 * (H + u * c)
    return xp.stack([
        0.5 * (ml + mr) - 0.5 * diss0,
        0.5 * (ml * ul + pl + mr * ur + pr) - 0.5 * diss1,
        0.5 * (ul * (El + pl) + ur * (Er + pr)) - 0.5 * diss2,
    ])


def primitive_to_conserved(rho: np.ndarray, u: np.ndarray, p: np.ndarray,
                           gamma: float = GAMMA) -> np.ndarray:
    """(rho, u, p) -> (rho, rho u, E) stacked on axis 0 (NumPy only)."""
    return np.stack([rho, rho * u, p / (gamma - 1.0) + 0.5 * rho * u * u])


def _make_roeflux(size: str) -> Problem:
    m = 1 if size == "small" else 1000

    def make_inputs(seed: int = 0) -> Inputs:
        rng = _rng(seed)
        jit = rng.uniform(-0.05, 0.05, (6, m))
        # Sod-like states with nonzero velocities (no |lambda| kinks).
        ql = primitive_to_conserved(1.0 + jit[0], 0.75 + jit[1], 1.0 + jit[2])
        qr = primitive_to_conserved(0.125 * (1 + jit[3]), 0.3 + jit[4],
                                    0.1 * (1 + jit[5]))
        if size == "small":
            ql, qr = ql[:, 0], qr[:, 0]
        return {"ql": ql, "qr": qr}

    return Problem(
        "roeflux", roeflux, make_inputs,
        "Roe interface flux (6 -> 3); 'full' is batched over 1000 independent "
        "interfaces, giving a block-diagonal (3M x 6M) Jacobian.",
        "P. L. Roe, 'Approximate Riemann solvers, parameter vectors, and "
        "difference schemes', J. Comput. Phys. 43:357-372, 1981; as AD benchmark: "
        "Forth, Tadjouddine, Pryce, Reid, ACM TOMS 30(3), 2004.",
        (3,) if size == "small" else (3, m), size, {"gamma": GAMMA})


# --------------------------------------------------------------------------
# 5. robotarm
# --------------------------------------------------------------------------

# PUMA 560 standard DH table (d, a, alpha) per joint, metres/radians, as in
# Corke's Robotics Toolbox model after Armstrong, Khatib & Burdick (1986).
PUMA560_DH = (
    (0.0, 0.0, math.pi / 2),
    (0.0, 0.4318, 0.0),
    (0.15005, 0.0203, -math.pi / 2),
    (0.4318, 0.0, math.pi / 2),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.0, 0.0),
)


def _clean(v: float) -> float:
    return 0.0 if abs(v) < 1e-12 else float(v)


def dh_parts(d: float, a: float, alpha: float) -> tuple[np.ndarray, ...]:
    """Constant 4x4 matrices (C, S, K) with DH(theta) = cos C + sin S + K.

    DH(theta) = Rot_z(theta) Trans_z(d) Trans_x(a) Rot_x(alpha)
      = [[c, -s ca,  s sa, a c],
         [s,  c ca, -c sa, a s],
         [0,  sa,    ca,   d  ],
         [0,  0,     0,    1  ]].
    """
    ca, sa = _clean(math.cos(alpha)), _clean(math.sin(alpha))
    C = np.array([[1, 0, 0, a], [0, ca, -sa, 0], [0, 0, 0, 0], [0, 0, 0, 0]], float)
    S = np.array([[0, -ca, sa, 0], [1, 0, 0, a], [0, 0, 0, 0], [0, 0, 0, 0]], float)
    K = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, sa, ca, d], [0, 0, 0, 1]], float)
    return C, S, K


def make_robotarm(dh: tuple[tuple[float, float, float], ...] = PUMA560_DH
                  ) -> Callable[..., Array]:
    """Forward kinematics q (6,) -> (position (3), rotation row-major (9)).

    T = prod_i DH_i(q_i) with DH_i(q) = cos(q) C_i + sin(q) S_i + K_i (the
    standard DH matrix written as an affine combination of constant
    matrices, which avoids stacking traced and constant entries).
    """
    parts = [dh_parts(*row) for row in dh]

    def robotarm(q: Array, xp: Any = np) -> Array:
        T = None
        for i, (C, S, K) in enumerate(parts):
            A = xp.cos(q[i]) * C + xp.sin(q[i]) * S + K
            T = A if T is None else T @ A
        return xp.concatenate([T[:3, 3], T[:3, :3].reshape(9)])

    robotarm.__doc__ = make_robotarm.__doc__
    return robotarm


def _make_robotarm(size: str) -> Problem:
    def make_inputs(seed: int = 0) -> Inputs:
        return {"q": _rng(seed).uniform(-math.pi / 2, math.pi / 2, 6)}

    return Problem(
        "robotarm", make_robotarm(), make_inputs,
        "PUMA 560 forward kinematics (6 -> 12): chain of six 4x4 products; "
        "dense 12x6 Jacobian from a chain of matrix products (association-"
        "order choices, as in matrix-chain bracketing).",
        "J. Denavit, R. S. Hartenberg, J. Appl. Mech. 22:215-221, 1955; PUMA 560 "
        "standard DH table from P. I. Corke, 'A Robotics Toolbox for MATLAB', "
        "IEEE Robot. Autom. Mag. 3(1):24-32, 1996 (after Armstrong, Khatib, "
        "Burdick, ICRA 1986).",
        (12,), size, {"dh": PUMA560_DH})


# --------------------------------------------------------------------------
# 6. blackscholes
# --------------------------------------------------------------------------

#: max |Phi(x) - Phi_tanh(x)| over the real line (attained near |x| = 2.59).
PHI_TANH_MAX_ABS_ERR = 1.8e-4
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def norm_cdf_tanh(x: Array, xp: Any = np) -> Array:
    """Phi(x) ~ 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), |err| < 1.8e-4."""
    return 0.5 * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


def blackscholes(S: Array, K: Array, r: Array, sigma: Array, T: Array,
                 xp: Any = np) -> Array:
    """European call price and Greeks, (B,)x5 -> (5, B).

    d1 = (ln(S/K) + (r + sigma^2/2) T) / (sigma sqrt T), d2 = d1 - sigma sqrt T,
    rows: price = S Phi(d1) - K e^{-rT} Phi(d2); delta = Phi(d1);
    vega = S phi(d1) sqrt T; rho = K T e^{-rT} Phi(d2);
    theta = -S phi(d1) sigma / (2 sqrt T) - r K e^{-rT} Phi(d2)  (= dC/dt,
    per year).  phi is the exact normal pdf; Phi is the tanh approximation
    :func:`norm_cdf_tanh` (|error| < 1.8e-4), so rows 1..4 are the analytic
    Greek formulas, not exact derivatives of row 0.
    """
    sqT = xp.sqrt(T)
    vol = sigma * sqT
    d1 = (xp.log(S / K) + (r + 0.5 * sigma * sigma) * T) / vol
    d2 = d1 - vol
    N1 = norm_cdf_tanh(d1, xp)
    N2 = norm_cdf_tanh(d2, xp)
    pdf1 = _INV_SQRT_2PI * xp.exp(-0.5 * d1 * d1)
    disc = K * xp.exp(-r * T)
    price = S * N1 - disc * N2
    vega = S * pdf1 * sqT
    rho = T * disc * N2
    theta = -S * pdf1 * sigma / (2.0 * sqT) - r * disc * N2
    return xp.stack([price, N1, vega, rho, theta])


def _make_blackscholes(size: str) -> Problem:
    b = 8 if size == "small" else 1000

    def make_inputs(seed: int = 0) -> Inputs:
        rng = _rng(seed)
        return {
            "S": rng.uniform(80.0, 120.0, b),
            "K": rng.uniform(90.0, 110.0, b),
            "r": rng.uniform(0.0, 0.05, b),
            "sigma": rng.uniform(0.1, 0.5, b),
            "T": rng.uniform(0.25, 2.0, b),
        }

    return Problem(
        "blackscholes", blackscholes, make_inputs,
        f"Black-Scholes call price + delta, vega, rho, theta for B={b} options "
        "(5B -> 5B); Jacobian is 5x5 block-diagonal-per-option (after permutation).",
        "F. Black, M. Scholes, J. Polit. Econ. 81(3):637-654, 1973; logistic/tanh "
        "CDF approximation: E. Page, Appl. Statist. 26(1):75-76, 1977 (also used "
        "by Hendrycks & Gimpel, 'GELUs', arXiv:1606.08415).",
        (5, b), size, {"phi_max_abs_err": PHI_TANH_MAX_ABS_ERR})


# --------------------------------------------------------------------------
# 7. mlp
# --------------------------------------------------------------------------

def mlp_unpack(theta: Array, widths: tuple[int, ...]) -> list[tuple[Array, Array]]:
    """Split a flat parameter vector into [(W (in x out), b (out,)), ...]."""
    layers, k = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        W = theta[k:k + n_in * n_out].reshape(n_in, n_out)
        k += n_in * n_out
        layers.append((W, theta[k:k + n_out]))
        k += n_out
    return layers


def mlp_num_params(widths: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def make_mlp_loss(X: np.ndarray, y: np.ndarray, widths: tuple[int, ...]
                  ) -> Callable[..., Array]:
    """theta -> mean((net(X) - y)^2) for a tanh MLP (linear last layer)."""

    def mlp(theta: Array, xp: Any = np) -> Array:
        layers = mlp_unpack(theta, widths)
        h = X
        for W, b in layers[:-1]:
            h = xp.tanh(h @ W + b)
        W, b = layers[-1]
        return xp.mean((h @ W + b - y) ** 2)

    mlp.__doc__ = make_mlp_loss.__doc__
    return mlp


def _make_mlp(size: str) -> Problem:
    widths = (8, 16, 16, 1) if size == "small" else (8, 128, 128, 1)
    n = 32 if size == "small" else 256
    rng = _rng(1234)
    X = rng.standard_normal((n, widths[0]))
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2])[:, None]

    def make_inputs(seed: int = 0) -> Inputs:
        r = _rng(seed)
        parts = []
        for a, b in zip(widths[:-1], widths[1:]):
            parts += [r.standard_normal(a * b) / math.sqrt(a), np.zeros(b)]
        return {"theta": np.concatenate(parts)}

    return Problem(
        "mlp", make_mlp_loss(X, y, widths), make_inputs,
        f"MSE loss of a tanh MLP {widths} on N={n} fixed samples, "
        f"{mlp_num_params(widths)} parameters -> scalar (gradient: reverse mode wins).",
        "Standard multilayer perceptron regression loss (e.g. Goodfellow, "
        "Bengio, Courville, 'Deep Learning', MIT Press 2016, ch. 6).",
        (), size, {"X": X, "y": y, "widths": widths})


# --------------------------------------------------------------------------
# 8. attention
# --------------------------------------------------------------------------

def make_attention(Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray
                   ) -> Callable[..., Array]:
    """X (T, d) -> tanh(X + softmax(X Wq (X Wk)^T / sqrt d) X Wv)."""
    scale = 1.0 / math.sqrt(Wq.shape[0])

    def attention(X: Array, xp: Any = np) -> Array:
        Q, Kx, V = X @ Wq, X @ Wk, X @ Wv
        S = (Q @ Kx.T) * scale
        E = xp.exp(S - xp.max(S, axis=-1, keepdims=True))
        A = E / xp.sum(E, axis=-1, keepdims=True)
        return xp.tanh(X + A @ V)

    attention.__doc__ = make_attention.__doc__
    return attention


def _make_attention(size: str) -> Problem:
    t, d = (4, 8) if size == "small" else (16, 64)
    rng = _rng(4321)
    Wq, Wk, Wv = (rng.standard_normal((d, d)) / math.sqrt(d) for _ in range(3))

    def make_inputs(seed: int = 0) -> Inputs:
        return {"X": _rng(seed).standard_normal((t, d))}

    return Problem(
        "attention", make_attention(Wq, Wk, Wv), make_inputs,
        f"Single-head self-attention block with residual and tanh, X ({t}x{d}) "
        "-> (T x d); dense Jacobian with Kronecker-like structure.",
        "A. Vaswani et al., 'Attention is all you need', NeurIPS 2017.",
        (t, d), size, {"Wq": Wq, "Wk": Wk, "Wv": Wv})


# --------------------------------------------------------------------------
# 9. bottleneck
# --------------------------------------------------------------------------

def make_bottleneck(W1: np.ndarray, W2: np.ndarray, W3: np.ndarray,
                    W4: np.ndarray) -> Callable[..., Array]:
    """x (n,) -> W4 tanh(W3 tanh(W2 tanh(W1 x)))  (widths n, n, k, n, n)."""

    def bottleneck(x: Array, xp: Any = np) -> Array:
        h = xp.tanh(W1 @ x)
        h = xp.tanh(W2 @ h)
        h = xp.tanh(W3 @ h)
        return W4 @ h

    bottleneck.__doc__ = make_bottleneck.__doc__
    return bottleneck


def _make_bottleneck(size: str) -> Problem:
    n, k = (50, 5) if size == "small" else (1000, 10)
    rng = _rng(2024)
    W1 = rng.standard_normal((n, n)) / math.sqrt(n)
    W2 = rng.standard_normal((k, n)) / math.sqrt(n)
    W3 = rng.standard_normal((n, k)) / math.sqrt(k)
    W4 = rng.standard_normal((n, n)) / math.sqrt(n)

    def make_inputs(seed: int = 0) -> Inputs:
        return {"x": _rng(seed).standard_normal(n)}

    return Problem(
        "bottleneck", make_bottleneck(W1, W2, W3, W4), make_inputs,
        f"Autoencoder-like net R^{n} -> R^{n} through a width-{k} bottleneck; "
        f"the Jacobian has rank <= {k}, so accumulating through the bottleneck "
        "(cross-country order) beats pure forward/reverse.",
        "Bottleneck example for optimal Jacobian accumulation, cf. U. Naumann, "
        "'Optimal Jacobian accumulation is NP-complete', Math. Prog. 112, 2008; "
        "A. Griewank, A. Walther, 'Evaluating Derivatives', SIAM 2008, ch. 9-10.",
        (n,), size, {"W1": W1, "W2": W2, "W3": W3, "W4": W4}, _bottleneck_hand(W1, W2, W3, W4))


def _bottleneck_hand(W1, W2, W3, W4) -> Callable[..., dict[str, np.ndarray]]:
    """J = W4·D3·W3·D2·W2·D1·W1 bracketed through the bottleneck: [(W4·D3)·W3]·[D2·(W2·D1)·W1],
    3n²k multiplications (plus the diagonal scalings)."""
    def hand(x: np.ndarray) -> dict[str, np.ndarray]:
        h1 = np.tanh(W1 @ x)
        h2 = np.tanh(W2 @ h1)
        h3 = np.tanh(W3 @ h2)
        left = (W4 * (1 - h3 * h3)) @ W3
        right = ((1 - h2 * h2)[:, None] * (W2 * (1 - h1 * h1))) @ W1
        return {"x": left @ right}
    return hand


# --------------------------------------------------------------------------
# 10. gp_nll
# --------------------------------------------------------------------------

def make_gp_nll(X: np.ndarray, y: np.ndarray, noise: float
                ) -> Callable[..., Array]:
    """theta (P,) -> 0.5 y^T K^{-1} y + 0.5 log det K, composed as f(K(D(theta))).

    D(theta)_ij = sum_d (X_id - X_jd)^2 theta_d (linear in theta),
    K = exp(-D/2) + noise I (elementwise exp).
    """
    n, p = X.shape
    sqdiff = ((X[:, None, :] - X[None, :, :]) ** 2).reshape(n * n, p)
    eye = noise * np.eye(n)

    def gp_nll(theta: Array, xp: Any = np) -> Array:
        D = (sqdiff @ theta).reshape(n, n)
        K = xp.exp(-0.5 * D) + eye
        alpha = xp.linalg.solve(K, y)
        return 0.5 * (y @ alpha) + 0.5 * xp.linalg.slogdet(K)[1]

    gp_nll.__doc__ = make_gp_nll.__doc__
    return gp_nll


def _make_gp_nll(size: str) -> Problem:
    n, p = (10, 3) if size == "small" else (100, 3)
    noise = 0.1
    rng = _rng(777)
    X = rng.uniform(0.0, 3.0, (n, p))
    y = np.sin(X.sum(axis=1)) + 0.1 * rng.standard_normal(n)

    def make_inputs(seed: int = 0) -> Inputs:
        return {"theta": _rng(seed).uniform(0.5, 2.0, p)}

    return Problem(
        "gp_nll", make_gp_nll(X, y, noise), make_inputs,
        f"GP negative log likelihood L = f(K(D(theta))), R^{p} -> R^{{{n}x{n}}} "
        "-> R^{n x n} -> R: tiny input, huge intermediates, scalar output.",
        "C. E. Rasmussen, C. K. I. Williams, 'Gaussian Processes for Machine "
        "Learning', MIT Press 2006, eq. (2.30)/(5.8) (constant n/2 log 2pi dropped).",
        (), size, {"X": X, "y": y, "noise": noise})


# --------------------------------------------------------------------------
# 11. lecture_f
# --------------------------------------------------------------------------

def lecture_f(x1: Array, x2: Array, xp: Any = np) -> Array:
    """f(x1, x2) = ln x1 + x1 x2 - sin x2; f(2, 5) = 11.652071..."""
    return xp.log(x1) + x1 * x2 - xp.sin(x2)


def _make_lecture_f(size: str) -> Problem:
    def make_inputs(seed: int = 0) -> Inputs:
        return {"x1": np.asarray(2.0), "x2": np.asarray(5.0)}

    return Problem(
        "lecture_f", lecture_f, make_inputs,
        "Textbook two-input scalar example (2 -> 1).",
        "A. G. Baydin, B. A. Pearlmutter, A. A. Radul, J. M. Siskind, 'Automatic "
        "differentiation in machine learning: a survey', JMLR 18(153), 2018, "
        "Fig. 1 / Tables 2-3.",
        (), size)


# --------------------------------------------------------------------------
# 12-16. matrix calculus: functions of one matrix whose partials are Kronecker products
# --------------------------------------------------------------------------

_MATRIX_N = {"small": 5, "full": 120}
_MATRIX_CITE = ("K. B. Petersen, M. S. Pedersen, 'The Matrix Cookbook', 2012, sec. 2 "
                "(derivatives of inverses, determinants and traces)")


def _matrix_problem(name: str, size: str, build: Callable[[int, np.random.Generator], tuple],
                    description: str, n: int | None = None) -> Problem:
    """A function of one matrix input ``X``; ``build(n, rng)`` returns (fn, X0, out_shape, constants)."""
    n = n or _MATRIX_N[size]
    fn, x0, out_shape, consts = build(n, _rng(1200 + len(name)))

    def make_inputs(seed: int = 0) -> Inputs:
        return {"X": x0 + 0.01 * _rng(seed).standard_normal(x0.shape)}

    return Problem(name, fn, make_inputs, description.format(n=n), _MATRIX_CITE, out_shape, size, consts)


def _gp_kernel(n, rng):
    M, y = rng.standard_normal((n, n)), rng.standard_normal(n)

    def gp_kernel(X: Array, xp: Any = np) -> Array:
        return y @ xp.linalg.solve(X, y) + xp.linalg.slogdet(X)[1]

    return gp_kernel, M @ M.T / n + np.eye(n), (), {"y": y}


def _inv_apply(n, rng):
    M, c = rng.standard_normal((n, n)), rng.standard_normal(n)

    def inv_apply(X: Array, xp: Any = np) -> Array:
        return xp.linalg.inv(X) @ c

    return inv_apply, M @ M.T / n + np.eye(n), (n,), {"c": c}


def _regression(n, rng):
    A, T = rng.standard_normal((2 * n, n)), rng.standard_normal((2 * n, n))

    def regression(X: Array, xp: Any = np) -> Array:
        return xp.sum((A @ X - T) ** 2)

    return regression, rng.standard_normal((n, n)) / n, (), {"A": A, "T": T}


def _logdet_llt(n, rng):
    eye = np.eye(n)

    def logdet_llt(X: Array, xp: Any = np) -> Array:
        return xp.linalg.slogdet(X @ X.T + eye)[1]

    return logdet_llt, rng.standard_normal((n, n)) / np.sqrt(n), (), {}


def _trace_quadratic(n, rng):
    A = rng.standard_normal((n, n)) / n

    def trace_quadratic(X: Array, xp: Any = np) -> Array:
        return xp.trace(X.T @ A @ X)

    return trace_quadratic, rng.standard_normal((n, n)) / np.sqrt(n), (), {"A": A}


def _sandwich(n, rng):
    A, B = rng.standard_normal((n, n)) / n, rng.standard_normal((n, n)) / n

    def sandwich(X: Array, xp: Any = np) -> Array:
        return A @ X @ B

    return sandwich, rng.standard_normal((n, n)), (n, n), {"A": A, "B": B}


def _make_gp_kernel(size: str) -> Problem:
    return _matrix_problem("gp_kernel", size, _gp_kernel,
                           "yᵀK⁻¹y + log det K with respect to the {n}×{n} kernel matrix K = X")


def _make_inv_apply(size: str) -> Problem:
    return _matrix_problem("inv_apply", size, _inv_apply, "X⁻¹c with respect to the {n}×{n} matrix X")


def _make_regression(size: str) -> Problem:
    return _matrix_problem("regression", size, _regression,
                           "least squares ‖A·X − T‖² with respect to the {n}×{n} weight matrix X")


def _make_logdet_llt(size: str) -> Problem:
    return _matrix_problem("logdet_llt", size, _logdet_llt, "log det(X·Xᵀ + I) with respect to the {n}×{n} factor X")


def _make_trace_quadratic(size: str) -> Problem:
    return _matrix_problem("trace_quadratic", size, _trace_quadratic,
                           "tr(Xᵀ·A·X) with respect to the {n}×{n} matrix X")


def _make_sandwich(size: str) -> Problem:
    # the Jacobian has n⁴ entries: 50 keeps it at 50 MB
    return _matrix_problem("sandwich", size, _sandwich, "A·X·B with respect to the {n}×{n} matrix X",
                           None if size == "small" else 50)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

PROBLEMS: dict[str, Callable[[str], Problem]] = {
    "lion": _make_lion,
    "propane": _make_propane,
    "heart": _make_heart,
    "roeflux": _make_roeflux,
    "robotarm": _make_robotarm,
    "blackscholes": _make_blackscholes,
    "mlp": _make_mlp,
    "attention": _make_attention,
    "bottleneck": _make_bottleneck,
    "gp_nll": _make_gp_nll,
    "lecture_f": _make_lecture_f,
    "gp_kernel": _make_gp_kernel,
    "inv_apply": _make_inv_apply,
    "regression": _make_regression,
    "logdet_llt": _make_logdet_llt,
    "trace_quadratic": _make_trace_quadratic,
    "sandwich": _make_sandwich,
}


def names() -> list[str]:
    """All problem names, in registry order."""
    return list(PROBLEMS)


def get(name: str, size: str = "small") -> Problem:
    """Build problem ``name`` at ``size`` ("small" or "full")."""
    _check_size(size)
    try:
        factory = PROBLEMS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known: {names()}") from None
    return factory(size)
