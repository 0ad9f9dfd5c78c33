"""Benchmark: secure comparisons and what is built on them, three local processes over TCP.

Prints rounds, bytes each party sends, and seconds (median of several runs, the slowest party's
measured time) for 10^6 comparisons, max and argmax of 1000, sort of 1000, and a 2x2 max-pool
over 10^6 x 4 elements, under rep3 and dealer2. Run with `python programs/bench_nonlinear.py
[--repeats N] [--only NAME]` after `pip install -e .`.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

from veil.runtime import api

HEAD = "party alice, bob, carol\n"
CASES = {  # name -> (elements, expression of the secret x)
    "compare 10^6": (1_000_000, "x < 0.5"),
    "max 1000": (1000, "max(x)"),
    "argmax 1000": (1000, "argmax(x)"),
    "sort 1000": (1000, "sort(x)"),
    "maxpool 2x2 over 10^6 x 4": ((1_000_000, 4), "max(x, axis=1)"),
    "relu 10^6": (1_000_000, "where(x > 0.0, x, 0.0)"),
}
PROTOCOLS = {"rep3": None, "dealer2": "dealer2(alice, bob, dealer=carol)"}


def source(shape, expr: str) -> str:
    """x shared from alice's input, the case's function of it revealed to alice."""
    return HEAD + f'x = secret(input(alice, "x", shape={shape!r}))\noutput(reveal({expr}), "y", to=alice)\n'


def measure(name: str, protocol: str | None, repeats: int) -> dict:
    shape, expr = CASES[name]
    shape = shape if isinstance(shape, tuple) else (shape,)
    c = api.compile(source(shape, expr), protocol=protocol, file="bench.mpc")
    x = np.random.default_rng(0).uniform(-100, 100, shape)
    seconds = []
    for _ in range(repeats):
        out = api.run(c, {"alice": {"x": x}}, processes=True, timeout=600)
        seconds.append(max(s["seconds"] for s in out.stats.values()))
    return {"rounds": c.cost.rounds, "bytes": c.cost.bytes_sent, "seconds": statistics.median(seconds),
            "comparisons": c.cost.comparisons}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="run only the cases whose name contains this")
    args = ap.parse_args()
    print(f"{'case':<28}{'protocol':<9}{'rounds':>7}{'comparisons':>13}{'MB sent a/b/c':>22}{'seconds':>10}")
    for name in CASES:
        if args.only and args.only not in name:
            continue
        for proto, spec in PROTOCOLS.items():
            r = measure(name, spec, args.repeats)
            mb = "/".join(f"{b / 1e6:.1f}" for b in r["bytes"].values())
            print(f"{name:<28}{proto:<9}{r['rounds']:>7}{r['comparisons']:>13,}{mb:>22}{r['seconds']:>10.3f}",
                  flush=True)
    print(f"seconds: median of {args.repeats} runs of the slowest party's measured run time (inputs excluded)")


if __name__ == "__main__":
    main()
