"""Benchmark of the share conversions: msb and a2b of 1, 1000 and 10^6 elements under rep3 and
dealer2, all parties in one process (tests/kernel_driver.py, which also checks each run against
its declared rounds, traffic and randomness). Prints rounds, bytes each party sends, and seconds
(median of the runs; the parties run one after another, so this is their summed compute time,
with no network).

    python programs/bench_boolean.py [--runs 5] [--sizes 1,1000,1000000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from kernel_driver import COMPUTE, PARTIES, run_kernel_traced, share_value  # noqa: E402

from veil.runtime.protocols.dealer2 import Dealer2  # noqa: E402
from veil.runtime.protocols.rep3 import Rep3  # noqa: E402

U64 = np.uint64


def inputs(proto: str, x: np.ndarray, rng: np.random.Generator) -> dict[str, tuple]:
    """Random arithmetic shares of x in the protocol's format."""
    if proto == "rep3":
        sh = share_value(x, rng=rng)
        return {p: (sh[p],) for p in COMPUTE}
    r = rng.integers(0, 2**64, size=x.shape, dtype=U64)
    return {COMPUTE[0]: (x - r,), COMPUTE[1]: (r,), COMPUTE[2]: (np.zeros_like(x),)}


def measure(proto: str, kernel: str, n: int, runs: int) -> tuple[int, dict[str, int], float]:
    """Rounds, bytes sent per party, median seconds of `runs` runs."""
    p = {"rep3": Rep3(), "dealer2": Dealer2()}[proto]
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2**64, size=n, dtype=U64)
    times, trace = [], None
    for _ in range(runs):
        ins = inputs(proto, x, rng)
        t0 = time.perf_counter()
        _, trace = run_kernel_traced(p, kernel, ins, {}, PARTIES, COMPUTE)
        times.append(time.perf_counter() - t0)
    rounds = max(trace.rounds.values())
    return rounds, {q: 8 * trace.sent[q] for q in COMPUTE}, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1,1000,1000000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'protocol':8} {'kernel':6} {'n':>9} {'rounds':>6} {'bytes P0':>12} {'bytes P1':>12} "
          f"{'bytes P2/D':>12} {'seconds':>9}")
    for proto in ("rep3", "dealer2"):
        for kernel in ("msb", "a2b"):
            for n in sizes:
                rounds, sent, secs = measure(proto, kernel, n, args.runs)
                b = [sent[q] for q in COMPUTE]
                print(f"{proto:8} {kernel:6} {n:>9} {rounds:>6} {b[0]:>12,} {b[1]:>12,} {b[2]:>12,} {secs:>9.4f}")


if __name__ == "__main__":
    main()
