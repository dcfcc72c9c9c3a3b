"""The ``jacc`` command."""

from __future__ import annotations

import argparse
import sys

from . import examples
from .eliminate import Problem, price


def _compare(args) -> int:
    g = examples.np_chain(args.N, args.P, args.structure)
    prob = Problem.from_graph(g)
    rows = []
    for name, order in (("forward", prob.eliminable), ("reverse", prob.eliminable[::-1])):
        _, mults, peak = price(prob, order)
        rows.append((name, mults, peak))
    best = min(r[1] for r in rows)
    print(f"L = f(K(D(θ))), N={args.N}, P={args.P}, ∂K/∂D {args.structure}")
    print(f"{'ordering':<10} {'mults':>14} {'peak bytes':>12} {'× best':>8}")
    for name, mults, peak in rows:
        print(f"{name:<10} {mults:>14,} {peak:>12,} {mults / best:>8.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jacc", description="Jacobian-accumulation compiler.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="compare accumulation orders on the lecture's N, P chain")
    c.add_argument("--N", type=int, default=10)
    c.add_argument("--P", type=int, default=3)
    c.add_argument("--structure", choices=["dense", "elementwise"], default="dense")
    c.set_defaults(func=_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
