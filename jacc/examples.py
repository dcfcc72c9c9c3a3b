"""Builders for the lecture's example graphs (the literature suite lives in :mod:`jacc.suite`).

* :func:`lecture_f` — f(x1, x2) = ln x1 + x1·x2 − sin x2 (Baydin et al. 2018, the lecture's
  forward/reverse trace example, evaluated at (2, 5));
* :func:`single_layer` — tanh(A x + b);
* :func:`three_layer` — a 3-layer tanh network with squared loss;
* :func:`np_chain` — the lecture's L = f(K(D(θ))) with f: R^{N×N}→R, K: R^{N×N}→R^{N×N},
  D: R^P→R^{N×N}, as an abstract planning graph with declared partial structures.

>>> g = np_chain(10, 3)
>>> [g.partial(u, v).describe() for u, v in g.nx.edges]
['dense 100×3', 'dense 100×100', 'dense 1×100']
"""

from __future__ import annotations

import os

import numpy as np

from .graph import Graph
from .trace import trace

LECTURE_POINT = {"x1": 2.0, "x2": 5.0}


def lecture_f_fn(x1, x2):
    """The lecture's f(x1, x2) = ln x1 + x1·x2 − sin x2."""
    return np.log(x1) + x1 * x2 - np.sin(x2)


def lecture_f() -> Graph:
    """The lecture's graph, vertices numbered as on its slides (v1 = ln v₋₁ … v5 = v4 − v3)."""
    g = Graph("lecture_f")
    g.add_input("x1", ())
    g.add_input("x2", ())
    g.add_node("v1", "log", ["x1"])
    g.add_node("v2", "mul", ["x1", "x2"])
    g.add_node("v3", "sin", ["x2"])
    g.add_node("v4", "add", ["v1", "v2"])
    g.add_node("v5", "sub", ["v4", "v3"])
    g.set_outputs(["v5"])
    return g


def lion() -> Graph:
    """The "lion" graph from angel/OpenAD's examples: t1 = x1/x2, t2 = cos t1,
    y = (exp t2, 3.14·t2, sin t2, t2·t1). Optimal vertex elimination: 12 multiplications."""
    g = Graph("lion")
    g.add_input("x1", ())
    g.add_input("x2", ())
    g.add_node("t1", "div", ["x1", "x2"])
    g.add_node("t2", "cos", ["t1"])
    g.add_node("y1", "exp", ["t2"])
    g.add_node("y2", "mul", [3.14, "t2"])
    g.add_node("y3", "sin", ["t2"])
    g.add_node("y4", "mul", ["t2", "t1"])
    g.set_outputs(["y1", "y2", "y3", "y4"])
    return g


def single_layer(n_in: int = 4, n_out: int = 3) -> Graph:
    """tanh(A x + b) with inputs A (n_out×n_in), x (n_in), b (n_out)."""

    def layer(A, x, b):
        return np.tanh(A @ x + b)

    g = trace(layer, np.zeros((n_out, n_in)), np.zeros(n_in), np.zeros(n_out))
    g.name = "single_layer"
    return g


def three_layer(widths: tuple[int, ...] = (4, 8, 8, 2), seed: int = 0) -> Graph:
    """0.5·‖W3 tanh(W2 tanh(W1 x + b1) + b2) + b3 − y‖² with a fixed target y."""
    y = np.random.default_rng(seed).standard_normal(widths[-1]).round(3)

    def net(x, W1, b1, W2, b2, W3, b3):
        h1 = np.tanh(W1 @ x + b1)
        h2 = np.tanh(W2 @ h1 + b2)
        r = W3 @ h2 + b3 - y
        return 0.5 * np.sum(r * r)

    shapes = [(widths[0],)]
    for a, b in zip(widths[:-1], widths[1:]):
        shapes += [(b, a), (b,)]
    g = trace(net, *[np.zeros(s) for s in shapes])
    g.name = "three_layer"
    return g


#: Structures of ∂K/∂D in the N, P example.
STRUCTURES = ("dense", "elementwise", "kronecker")


def np_chain(N: int, P: int, structure: str = "dense") -> Graph:
    """The lecture's chain θ → D → K → L as an abstract graph.

    ``structure`` is the structure of ∂K/∂D: ``"dense"`` (as the lecture prices it),
    ``"elementwise"`` (K = k(D) applied entrywise, e.g. a squared-exponential kernel) or
    ``"kronecker"`` (K = M·D·Mᵀ, so ∂K/∂D = M ⊗ M, kept as its two N×N factors).
    """
    if N < 1 or P < 1:
        raise ValueError(f"N and P must be positive, got N={N}, P={P}")
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, not {structure!r}")
    g = Graph(f"np_chain_N{N}_P{P}_{structure}")
    g.add_input("theta", (P,))
    g.add_node("D", "abstract", ["theta"], {"partials": ["dense"]}, (N, N))
    g.add_node("K", "abstract", ["D"], {"partials": [structure]}, (N, N))
    g.add_node("L", "abstract", ["K"], {"partials": ["dense"]}, ())
    g.set_outputs(["L"])
    return g


def np_chain_instance(N: int, P: int, structure: str = "dense", seed: int = 0):
    """A concrete L(θ) = f(K(D(θ))) to execute the lecture's orderings on.

    D(θ)_ij = Σ_p θ_p (x_ip − x_jp)² for fixed points x ∈ R^{N×P} (linear in θ);
    K = exp(−D/2) + 0.1·I, a squared-exponential kernel, so ∂K/∂D is elementwise; with
    ``structure="dense"`` K = M exp(−D/2) Mᵀ / N + I mixes every entry (M fixed), so ∂K/∂D is
    dense; with ``"kronecker"`` K = M D Mᵀ / N + N·I (∂K/∂D = M ⊗ M / N); f(K) = ½ yᵀK⁻¹y +
    ½ log det K, the Gaussian-process negative log likelihood.
    Returns ``(L, theta0)``.

    >>> L, theta = np_chain_instance(4, 2)
    >>> float(L(theta)) > 0
    True
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    y = rng.standard_normal(N)
    diff2 = (X[:, None, :] - X[None, :, :]) ** 2
    M = rng.standard_normal((N, N))
    eye = np.eye(N)

    def L(theta):
        D = diff2 @ theta
        E = np.exp(-0.5 * D)
        if structure == "kronecker":
            K = (M @ D @ M.T) / N + N * eye
        else:
            K = (M @ E @ M.T) / N + eye if structure == "dense" else E + 0.1 * eye
        return 0.5 * y @ np.linalg.solve(K, y) + 0.5 * np.linalg.slogdet(K)[1]

    return L, np.linspace(0.5, 1.5, P)


SCALAR_OPS = (("mul", 2), ("add", 2), ("sin", 1), ("exp", 1), ("sub", 2), ("tanh", 1))


def random_graph(n_inputs: int, n_inner: int, n_outputs: int, seed: int = 0, *, width: int = 0,
                 fan_in: int = 8, p_far: float = 0.25) -> Graph:
    """A random DAG of scalar ops (``width=0``) or of length-``width`` vectors.

    Each new vertex applies an op to earlier vertices: with probability ``1 − p_far`` one of
    the ``fan_in`` most recent ones (so graphs have locality, as traced programs do), else any. Vector graphs mix
    elementwise ops with dense maps (``matmul`` by a constant matrix) and ``sum`` broadcasts.

    >>> g = random_graph(3, 10, 2, seed=1)
    >>> len(g.inputs), len(g.outputs), len(g.intermediates)
    (3, 2, 10)
    """
    rng = np.random.default_rng(seed)
    g = Graph(f"random_{'scalar' if not width else f'vec{width}'}_{n_inputs}_{n_inner}_{n_outputs}_s{seed}")
    shape = (width,) if width else ()
    names = [g.add_input(f"x{i}", shape) for i in range(n_inputs)]
    mats = [rng.standard_normal((width, width)).round(2) for _ in range(3)] if width else []
    total = n_inner + n_outputs
    for t in range(total):
        def pick() -> str:
            if rng.random() >= p_far:
                return names[-1 - int(rng.integers(0, min(fan_in, len(names))))]
            return names[int(rng.integers(0, len(names)))]

        name = f"v{t + 1}"
        r = rng.random()
        if width and r < 0.2:
            g.add_node(name, "matmul", [mats[int(rng.integers(0, 3))], pick()])
        elif width and r < 0.25:
            g.add_node(f"{name}s", "sum", [pick()], {"axis": None, "keepdims": True})
            g.add_node(name, "mul", [f"{name}s", pick()])
        else:
            op, arity = SCALAR_OPS[int(rng.integers(0, len(SCALAR_OPS)))]
            args = [pick() for _ in range(arity)]
            if arity == 2 and args[0] == args[1] and len(names) > 1:
                args[1] = names[-1] if args[0] != names[-1] else names[-2]
            g.add_node(name, op, args)
        names.append(name)
    g.set_outputs(names[-n_outputs:])
    return g


BUILDERS = {
    "lecture_f": lecture_f,
    "lion": lion,
    "single_layer": single_layer,
    "three_layer": three_layer,
    "np_chain": lambda: np_chain(10, 3),
    "np_chain_elementwise": lambda: np_chain(10, 3, "elementwise"),
}


def write_all(folder: str) -> list[str]:
    """Write every example graph to ``folder`` as ``NAME.json``; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, build in BUILDERS.items():
        path = os.path.join(folder, f"{name}.json")
        build().save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # regenerate graphs/: python -m jacc.examples graphs
    import sys

    for p in write_all(sys.argv[1] if len(sys.argv) > 1 else "graphs"):
        print(p)
