"""Tests for the benchmark problem suite ``jacc.suite`` (NumPy only)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def _load_suite():
    try:
        from jacc import suite as mod  # type: ignore[import-not-found]
        return mod
    except Exception:  # package not importable (yet): load the file directly
        path = Path(__file__).resolve().parents[1] / "jacc" / "suite.py"
        spec = importlib.util.spec_from_file_location("jacc_suite_standalone", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # needed by dataclasses
        spec.loader.exec_module(mod)
        return mod


suite = _load_suite()
NAMES = suite.names()
EXPECTED = {"lion", "propane", "heart", "roeflux", "robotarm", "blackscholes",
            "mlp", "attention", "bottleneck", "gp_nll", "lecture_f",
            "gp_kernel", "inv_apply", "regression", "logdet_llt", "trace_quadratic", "sandwich"}

# The traceable vocabulary promised by the suite (xp-level functions).
_ALLOWED = ["exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "sqrt",
            "square", "abs", "maximum", "minimum", "where", "matmul", "dot",
            "sum", "mean", "max", "transpose", "concatenate", "stack", "trace"]
RESTRICTED_XP = SimpleNamespace(
    **{n: getattr(np, n) for n in _ALLOWED},
    linalg=SimpleNamespace(solve=np.linalg.solve, inv=np.linalg.inv,
                           slogdet=np.linalg.slogdet),
)


def _flatten(inputs: dict[str, np.ndarray]):
    """Flat vector of all inputs plus a function rebuilding the dict."""
    keys = list(inputs)
    shapes = [inputs[k].shape for k in keys]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = np.concatenate([np.ravel(inputs[k]) for k in keys])

    def unflatten(v: np.ndarray) -> dict[str, np.ndarray]:
        out, i = {}, 0
        for k, s, n in zip(keys, shapes, sizes):
            out[k] = v[i:i + n].reshape(s)
            i += n
        return out

    return flat, unflatten


def fd_jacobian(problem, inputs, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian (n_out x n_in) of problem.fn at inputs."""
    x0, unflatten = _flatten(inputs)
    cols = []
    for j in range(x0.size):
        e = np.zeros_like(x0)
        e[j] = h
        fp = np.ravel(problem.fn(**unflatten(x0 + e), xp=np))
        fm = np.ravel(problem.fn(**unflatten(x0 - e), xp=np))
        cols.append((fp - fm) / (2 * h))
    return np.stack(cols, axis=1)


# ---------------------------------------------------------------- generic

def test_registry():
    assert set(NAMES) == EXPECTED
    assert all(n == n.lower() for n in suite.PROBLEMS)
    assert suite.get("LION").name == "lion"
    with pytest.raises(KeyError):
        suite.get("nope")
    with pytest.raises(ValueError):
        suite.get("lion", "huge")


@pytest.mark.parametrize("name", NAMES)
def test_small_evaluates(name):
    p = suite.get(name, "small")
    assert p.name == name and p.description and p.citation
    inputs = p.make_inputs(seed=0)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64
               for v in inputs.values())
    y = np.asarray(p.fn(**inputs, xp=np))
    assert y.shape == p.out_shape
    assert y.dtype == np.float64
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_inputs(name):
    p = suite.get(name)
    a, b = p.make_inputs(seed=3), p.make_inputs(seed=3)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(np.asarray(p.evaluate()), np.asarray(p.evaluate()))


@pytest.mark.parametrize("name", NAMES)
def test_restricted_namespace(name):
    """Only the traceable xp vocabulary is used."""
    p = suite.get(name)
    inputs = p.make_inputs()
    np.testing.assert_allclose(np.asarray(p.fn(**inputs, xp=RESTRICTED_XP)),
                               np.asarray(p.fn(**inputs, xp=np)), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_full_size_shapes(name):
    p = suite.get(name, "full")
    assert p.size == "full"
    y = np.asarray(p.evaluate())
    assert y.shape == p.out_shape
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", NAMES)
def test_fd_jacobian_finite_and_smooth(name):
    p = suite.get(name)
    inputs = p.make_inputs()
    J = fd_jacobian(p, inputs, 1e-6)
    assert J.shape == (p.n_out, p.n_in)
    assert np.all(np.isfinite(J))
    J2 = fd_jacobian(p, inputs, 1e-5)  # smooth => both steps agree
    np.testing.assert_allclose(J, J2, rtol=1e-4, atol=1e-6 * (1 + np.abs(J).max()))


# ---------------------------------------------------------------- values

def test_lecture_f_value():
    p = suite.get("lecture_f")
    y = float(p.evaluate())
    assert y == pytest.approx(math.log(2) + 10 - math.sin(5), rel=1e-14)
    assert y == pytest.approx(11.652071, abs=1e-6)
    J = fd_jacobian(p, p.make_inputs())
    np.testing.assert_allclose(J[0], [1 / 2 + 5, 2 - math.cos(5)], rtol=1e-8)


def test_lion_direct():
    p = suite.get("lion")
    x = p.make_inputs(seed=5)["x"]
    t1 = x[0] / x[1]
    t2 = math.cos(t1)
    np.testing.assert_allclose(p.fn(x=x), [math.exp(t2), 3.14 * t2, math.sin(t2), t2 * t1],
                               rtol=1e-14)


def _bs_exact(S, K, r, sig, T):
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    d1 = (math.log(S / K) + (r + 0.5 * sig ** 2) * T) / (sig * math.sqrt(T))
    d2 = d1 - sig * math.sqrt(T)
    disc = K * math.exp(-r * T)
    return [S * Phi(d1) - disc * Phi(d2), Phi(d1), S * pdf(d1) * math.sqrt(T),
            T * disc * Phi(d2), -S * pdf(d1) * sig / (2 * math.sqrt(T)) - r * disc * Phi(d2)]


def test_blackscholes_against_erf():
    p = suite.get("blackscholes")
    inp = p.make_inputs()
    inp["S"] = np.concatenate([inp["S"][:5], [100.0, 100.0, 60.0]])
    inp["K"] = np.concatenate([inp["K"][:5], [100.0, 80.0, 100.0]])
    out = p.fn(**inp)
    err = suite.PHI_TANH_MAX_ABS_ERR
    for b in range(out.shape[1]):
        S, K, r, sig, T = (float(inp[k][b]) for k in ("S", "K", "r", "sigma", "T"))
        ref = _bs_exact(S, K, r, sig, T)
        disc = K * math.exp(-r * T)
        tol = [(S + disc) * err, err, 1e-12 * abs(ref[2]), T * disc * err,
               r * disc * err + 1e-12 * abs(ref[4])]
        for k in range(5):
            assert abs(out[k, b] - ref[k]) <= tol[k] + 1e-12, (b, k)
    # delta is close to dPrice/dS of the approximate price
    J = fd_jacobian(p, inp)
    B = out.shape[1]
    np.testing.assert_allclose(np.diag(J[:B, :B]), out[1], atol=2e-3)


def test_phi_tanh_error_bound():
    z = np.linspace(-8, 8, 4001)
    exact = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z])
    err = np.abs(suite.norm_cdf_tanh(z) - exact).max()
    assert 1e-4 < err <= suite.PHI_TANH_MAX_ABS_ERR


def test_gp_nll_against_cholesky():
    p = suite.get("gp_nll")
    X, y, noise = p.constants["X"], p.constants["y"], p.constants["noise"]
    theta = p.make_inputs(seed=1)["theta"]
    n = X.shape[0]
    D = np.zeros((n, n))
    for d in range(X.shape[1]):
        D += theta[d] * (X[:, d:d + 1] - X[:, d:d + 1].T) ** 2
    K = np.exp(-0.5 * D) + noise * np.eye(n)
    L = np.linalg.cholesky(K)
    a = np.linalg.solve(L.T, np.linalg.solve(L, y))
    ref = 0.5 * y @ a + np.log(np.diag(L)).sum()
    assert float(p.fn(theta=theta)) == pytest.approx(ref, rel=1e-12)


def test_propane_start_point():
    p = suite.get("propane")
    x = p.make_inputs()["x"]
    f = p.fn(x=x)
    assert x[0] == 5.0 and x[10] == 20.0
    assert x[4] == pytest.approx(0.05 * 0.193)
    assert f[0] == pytest.approx(x[0] + x[3] - 3)
    assert f[3] == pytest.approx(2 * x[2] + x[8] - 40)
    assert f[10] == pytest.approx(x[10] - x[:10].sum())
    assert f[7] == pytest.approx(1.799e-5 * x[0] - x[3] * x[7] * 40 / x[10])
    J = fd_jacobian(p, {"x": x})
    assert np.allclose(J[10, :10], -1) and J[10, 10] == pytest.approx(1)


def test_heart_complex_identity():
    """f(2k+1) + i f(2k+2) = (a+ic)(t+iv)^k + (b+id)(u+iw)^k - sigma (k=0..3)."""
    p = suite.get("heart")
    sig = p.constants["sigma"]
    x = np.random.default_rng(0).standard_normal(8)
    a, b, c, d, t, u, v, w = x
    f = p.fn(x=x)
    for k in range(4):
        z = (a + 1j * c) * (t + 1j * v) ** k + (b + 1j * d) * (u + 1j * w) ** k
        assert f[2 * k] == pytest.approx(z.real - sig[2 * k], abs=1e-12)
        assert f[2 * k + 1] == pytest.approx(z.imag - sig[2 * k + 1], abs=1e-12)


def test_roeflux_properties():
    q = suite.primitive_to_conserved(np.array(1.0), np.array(0.4), np.array(1.0))
    np.testing.assert_allclose(suite.roeflux(q, q), suite.euler_flux(q), rtol=1e-14)
    # all waves move right (supersonic): Roe flux = upwind flux F(ql), and left
    ql = suite.primitive_to_conserved(np.array(1.0), np.array(3.0), np.array(1.0))
    qr = suite.primitive_to_conserved(np.array(0.8), np.array(2.7), np.array(0.7))
    np.testing.assert_allclose(suite.roeflux(ql, qr), suite.euler_flux(ql), rtol=1e-12)
    ml, mr = ql * [1.0, -1.0, 1.0], qr * [1.0, -1.0, 1.0]  # mirrored: all waves left
    np.testing.assert_allclose(suite.roeflux(ml, mr), suite.euler_flux(mr), rtol=1e-12)


def test_roeflux_batched_matches_single():
    full = suite.get("roeflux", "full")
    inp = full.make_inputs()
    Y = full.fn(**inp)
    for j in (0, 17, 999):
        np.testing.assert_allclose(Y[:, j], suite.roeflux(inp["ql"][:, j], inp["qr"][:, j]),
                                   rtol=1e-14)


def _dh(theta, d, a, alpha):
    ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct], [st, ct * ca, -ct * sa, a * st],
                     [0, sa, ca, d], [0, 0, 0, 1]])


def test_robotarm_kinematics():
    p = suite.get("robotarm")
    y0 = p.fn(q=np.zeros(6))
    np.testing.assert_allclose(y0[:3], [0.4521, -0.15005, 0.4318], atol=1e-12)
    q = p.make_inputs(seed=2)["q"]
    T = np.eye(4)
    for qi, row in zip(q, suite.PUMA560_DH):
        T = T @ _dh(qi, *row)
    y = p.fn(q=q)
    np.testing.assert_allclose(y[:3], T[:3, 3], atol=1e-12)
    R = y[3:].reshape(3, 3)
    np.testing.assert_allclose(R, T[:3, :3], atol=1e-12)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_mlp_direct():
    p = suite.get("mlp")
    X, y, widths = p.constants["X"], p.constants["y"], p.constants["widths"]
    theta = p.make_inputs(seed=1)["theta"]
    assert theta.size == suite.mlp_num_params(widths) == 433
    h, k = X, 0
    for i, (m, n) in enumerate(zip(widths[:-1], widths[1:])):
        W = theta[k:k + m * n].reshape(m, n)
        b = theta[k + m * n:k + m * n + n]
        k += m * n + n
        h = h @ W + b
        if i < len(widths) - 2:
            h = np.tanh(h)
    assert float(p.fn(theta=theta)) == pytest.approx(np.mean((h - y) ** 2), rel=1e-12)


def test_attention_direct():
    p = suite.get("attention")
    c = p.constants
    X = p.make_inputs(seed=1)["X"]
    S = (X @ c["Wq"]) @ (X @ c["Wk"]).T / math.sqrt(X.shape[1])
    A = np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p.fn(X=X), np.tanh(X + A @ X @ c["Wv"]), rtol=1e-12)


def test_trace_quadratic_gradient_is_the_cookbook_formula():
    p = suite.get("trace_quadratic")
    A, X = p.constants["A"], p.make_inputs(seed=1)["X"]
    assert float(p.fn(X=X)) == pytest.approx(float(np.sum(X * (A @ X))), rel=1e-12)
    np.testing.assert_allclose(fd_jacobian(p, {"X": X}).reshape(X.shape), (A + A.T) @ X, rtol=1e-6, atol=1e-8)


def test_bottleneck_direct_and_low_rank():
    p = suite.get("bottleneck")
    c = p.constants
    x = p.make_inputs(seed=1)["x"]
    ref = c["W4"] @ np.tanh(c["W3"] @ np.tanh(c["W2"] @ np.tanh(c["W1"] @ x)))
    np.testing.assert_allclose(p.fn(x=x), ref, rtol=1e-12)
    s = np.linalg.svd(fd_jacobian(p, {"x": x}), compute_uv=False)
    k = c["W2"].shape[0]
    assert s[k] < 1e-6 * s[0]  # rank <= k through the bottleneck


def test_hand_written_jacobians_match_finite_differences():
    for name in NAMES:
        p = suite.get(name)
        if p.hand is None:
            continue
        inputs = p.make_inputs()
        J = np.concatenate([np.asarray(v).reshape(p.n_out, -1) for v in p.hand(**inputs).values()], axis=1)
        np.testing.assert_allclose(J, fd_jacobian(p, inputs), rtol=1e-6, atol=1e-8)
    assert suite.get("bottleneck").hand is not None
