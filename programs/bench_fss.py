"""Benchmark of the comparisons (msb, msb_mul) on the DCF path against the carry circuit: rounds,
bytes each party sends and each party's CPU milliseconds per call, all parties in one process
(tests/kernel_driver.py, which also holds each run to its declared costs; no network).

    python programs/bench_fss.py [--runs 5] [--sizes 128,1024,2048]
    python programs/bench_fss.py --lan [--protocol dealer2] [--runs 3] [--sizes ...]   # real processes
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from kernel_driver import COMPUTE, PARTIES, run_kernel_traced  # noqa: E402

from bench_boolean import inputs  # noqa: E402  (programs/: random shares in each protocol's format)
from veil.runtime.protocols import fss_msb  # noqa: E402
from veil.runtime.protocols.dealer2 import Dealer2  # noqa: E402
from veil.runtime.protocols.rep3 import Rep3  # noqa: E402

U64 = np.uint64


def timed(fn: Callable, clock: dict[str, float]) -> Callable:
    """The kernel `fn` with each party's time inside it added to clock[party]."""
    def run(ctx: Any, *args: Any, **kw: Any):
        gen, value = fn(ctx, *args, **kw), None
        while True:
            t0 = time.perf_counter()
            try:
                ex = gen.send(value)
            except StopIteration as stop:
                clock[ctx.party] += time.perf_counter() - t0
                return stop.value
            clock[ctx.party] += time.perf_counter() - t0
            value = yield ex
    return run


def measure(proto: str, kernel: str, n: int, runs: int, fss: bool) -> tuple[int, list[int], list[float]]:
    """Rounds, bytes sent per party, median CPU ms per party."""
    base = {"rep3": Rep3(), "dealer2": Dealer2()}[proto]
    clocks = []
    saved = fss_msb.FSS_MAX
    fss_msb.FSS_MAX = max(n, saved) if fss else -1
    try:
        rng = np.random.default_rng(n)
        x = rng.integers(0, 2**64, size=n, dtype=U64)
        for _ in range(runs):
            clock = {p: 0.0 for p in COMPUTE}
            spec = base.kernels[kernel]
            proto_t = SimpleNamespace(kernels={kernel: dataclasses.replace(spec, fn=timed(spec.fn, clock))})
            ins = inputs(proto, x, rng)
            if kernel == "msb_mul":
                d = inputs(proto, rng.integers(0, 2**64, size=n, dtype=U64), rng)
                ins = {p: ins[p] + d[p] for p in COMPUTE}
            _, trace = run_kernel_traced(proto_t, kernel, ins, {}, PARTIES, COMPUTE)
            clocks.append(clock)
    finally:
        fss_msb.FSS_MAX = saved
    ms = [1e3 * statistics.median(c[p] for c in clocks) for p in COMPUTE]
    return max(trace.rounds.values()), [8 * trace.sent[p] for p in COMPUTE], ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="128,1024,2048")
    ap.add_argument("--lan", action="store_true", help="time relu of n elements in three processes instead")
    ap.add_argument("--protocol", default="rep3", choices=("rep3", "dealer2"))
    args = ap.parse_args()
    if args.lan:
        lan([int(s) for s in args.sizes.split(",")], args.runs, args.protocol)
        return
    print(f"{'protocol':8} {'kernel':8} {'path':7} {'n':>5} {'rounds':>6} {'bytes P0':>11} {'bytes P1':>11} "
          f"{'bytes P2/D':>11} {'ms P0':>7} {'ms P1':>7} {'ms P2/D':>7}")
    for proto in ("rep3", "dealer2"):
        for kernel in ("msb", "msb_mul"):
            for n in (int(s) for s in args.sizes.split(",")):
                for fss in (False, True):
                    rounds, sent, ms = measure(proto, kernel, n, args.runs, fss)
                    print(f"{proto:8} {kernel:8} {'dcf' if fss else 'circuit':7} {n:>5} {rounds:>6} "
                          + " ".join(f"{b:>11,}" for b in sent) + " " + " ".join(f"{t:>7.2f}" for t in ms))



def lan(sizes: list[int], repeats: int, protocol: str) -> None:
    """Seconds per comparison-and-selection (relu) of n elements, three `veil run` processes over
    127.0.0.1 (programs/bench.py's method). Which path runs is fss_msb.FSS_MAX in the source
    file, which the party processes import: run once as is and once with FSS_MAX = -1."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench  # noqa: E402  (programs/bench.py)
    head = bench.HEAD if protocol == "rep3" else bench.HEAD.replace("rep3(alice, bob, carol)",
                                                                    "dealer2(alice, bob, dealer=carol)")
    print(f"FSS_MAX = {fss_msb.FSS_MAX}, {protocol}")
    print(f"{'n':>6} {'rounds':>6} {'bytes (all)':>12} {'ms/unit':>8}")
    for n in sizes:
        src = bench._repeated(n, "where(x > 0.0, x, 0.0)").replace(bench.HEAD, head)
        w = bench.Workload(f"relu {n}", "relu", src, "T", (1, 5),
                           lambda g, n=n: {"alice": {"x": g.uniform(-1, 1, n)}})
        row = bench.per_unit(w, [], repeats)
        print(f"{n:>6} {row.rounds:>6.0f} {row.bytes:>12,.0f} {1e3 * row.seconds:>8.2f}")


if __name__ == "__main__":
    main()
