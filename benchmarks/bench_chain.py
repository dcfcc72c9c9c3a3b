"""Benchmark jacc.chain.matrix_chain_order against numpy's multi_dot ordering.

Run as ``python benchmarks/bench_chain.py``; ``run(out=print)`` returns the
figures as a dict (for a ``jacc bench`` command).
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]


def _load_chain() -> Any:
    try:
        from jacc import chain

        return chain
    except Exception:
        if str(_ROOT) not in sys.path:
            sys.path.insert(0, str(_ROOT))
        try:
            from jacc import chain

            return chain
        except Exception:  # package not assembled: load the file alone
            spec = importlib.util.spec_from_file_location(
                "jacc_chain_standalone", _ROOT / "jacc" / "chain.py"
            )
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
            return mod


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run(
    out: Callable[[str], Any] = print, n: int = 300, n_large: int = 1000, repeats: int = 3
) -> dict:
    """Time the chain DP; print one line per size and return the figures."""
    chain = _load_chain()
    dims = [int(x) for x in np.random.default_rng(0).integers(1, 101, n + 1)]
    t_jacc, res = _median_time(lambda: chain.matrix_chain_order(dims), repeats)
    fig: dict = {"n": n, "jacc_s": t_jacc, "cost": res.cost}

    np_fn = chain.numpy_chain_order_fn()
    if np_fn is None:
        out(f"chain DP n={n}: jacc {t_jacc:.3f} s, numpy order routine unavailable")
        fig.update(numpy_s=None, ratio=None, same_cost=None)
    else:
        stubs = [np.broadcast_to(np.int8(0), (dims[i], dims[i + 1])) for i in range(n)]
        t_np, s = _median_time(lambda: np_fn(stubs), repeats)
        np_cost = chain.bracket_cost(chain.split_to_bracket(np.asarray(s)), dims)
        same = np_cost == res.cost
        fig.update(numpy_s=t_np, ratio=t_np / t_jacc, same_cost=same)
        out(
            f"chain DP n={n}: jacc {t_jacc:.3f} s, numpy {t_np:.2f} s, "
            f"ratio {t_np / t_jacc:.1f}x, same cost: {same}"
        )

    dims_l = [int(x) for x in np.random.default_rng(0).integers(1, 101, n_large + 1)]
    t_large, res_l = _median_time(lambda: chain.matrix_chain_order(dims_l), repeats)
    fig.update(n_large=n_large, jacc_large_s=t_large, cost_large=res_l.cost)
    out(f"chain DP n={n_large}: jacc {t_large:.3f} s (cost {res_l.cost})")
    return fig


if __name__ == "__main__":
    run()
