"""What the optimizer buys, per ONE training step, and what compiling costs.

For each training program: rounds, bytes sent per party, multiplications and truncations of one
step (the cost of EPOCHS=2 minus EPOCHS=1 with one batch per epoch, so sharing the inputs and
revealing the model are left out), with -O0 and with the optimizer; and the compile time (median
of 5, default params, optimizer on).

    python programs/bench_compile.py
"""
from __future__ import annotations

import os
import statistics
import sys
import time

from veil.runtime import api

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = [
    ("fraud detection (N=128, 32 features)", "fraud_detection.mpc", {"N": 128, "BATCH": 128}),
    ("logreg MNIST 784->10, batch 128", "bench/logreg_mnist.mpc", {"N": 128, "BATCH": 128}),
    ("MLP MNIST 784-128-128-10, batch 128", "bench/mlp_mnist.mpc", {"N": 128, "BATCH": 128}),
]
FIELDS = ("rounds", "bytes/party", "mults", "truncs")


def step_cost(path: str, params: dict, optimize: bool) -> dict[str, object]:
    """One training step's cost: two epochs of one batch minus one."""
    one = api.compile(path, {**params, "EPOCHS": 1}, optimize=optimize).cost
    two = api.compile(path, {**params, "EPOCHS": 2}, optimize=optimize).cost
    sent = {p: two.bytes_sent[p] - one.bytes_sent[p] for p in two.bytes_sent}
    return {"rounds": two.rounds - one.rounds,
            "bytes/party": "/".join(f"{sent[p] // 1024}k" for p in sorted(sent)),
            "mults": two.multiplications - one.multiplications,
            "truncs": two.truncations - one.truncations}


def compile_seconds(path: str, runs: int = 5) -> float:
    """Median wall time of compiling with the default params."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        api.compile(path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    rows = []
    for title, name, params in PROGRAMS:
        path = os.path.join(HERE, name)
        naive, opt = step_cost(path, params, False), step_cost(path, params, True)
        rows.append((title, naive, opt, compile_seconds(path)))
    head = f"{'program (one step)':<40} {'':>4} " + " ".join(f"{f:>22}" for f in FIELDS) + f" {'compile':>9}"
    print(head)
    print("-" * len(head))
    for title, naive, opt, secs in rows:
        for tag, c in (("-O0", naive), ("-O", opt)):
            cells = " ".join(f"{str(c[f]):>22}" for f in FIELDS)
            tail = f"{secs:>8.3f}s" if tag == "-O" else ""
            print(f"{title if tag == '-O0' else '':<40} {tag:>4} {cells} {tail:>9}")
    print("bytes/party: kibibytes each compute party sends (alice/bob/carol); compile: median of 5, "
          "default params, optimizer on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
