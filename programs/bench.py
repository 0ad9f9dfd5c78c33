"""The benchmark suite: rounds, bytes and seconds per unit of work for veil's canonical workloads,
three real `veil run` processes over localhost TCP, on the bare loopback (LAN) and under the
runtime's WAN emulation (40 ms RTT, 352 Mbit/s by default).

Each workload is a program with a loop of T trips (one trip = one unit: a training step, a
matmul, ...). It runs at two trip counts and a unit's cost is the difference divided by the trips
added, so input sharing, set-up and outputs cancel out. Seconds are each run's slowest party's VM
time (the time from its first to its last instruction), medians of several runs; rounds are the
schedule's (the most any party stepped through, measured), critical the one-way delays the slowest
party waits through (the compiler's latency model, compiler/latency.py: a party that expects
nothing in a round does not wait in it); bytes are what all parties sent together. Every run's
measured rounds and bytes must equal the compiler's prediction, or the suite stops.

Run: `python programs/bench.py [--repeats N] [--only NAME ...] [--no-wan] [--markdown]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from veil.runtime import api
from veil.runtime.local import failure_summary, run_all, save_inputs

HERE = Path(__file__).resolve().parent
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"

MATMUL = HEAD + """param T = 1
x = secret(input(alice, "x", shape=(128, 784)))
w = secret(input(bob, "w", shape=(784, 128)))
acc = zeros((128, 128))
for i in range(T):
    acc = acc + x @ w
output(acc, to=alice)
"""

MULS = HEAD + """param T = 1
a = secret(input(alice, "a", shape=(1000000,)))
b = secret(input(bob, "b", shape=(1000000,)))
acc = zeros((1000000,))
for i in range(T):
    acc = acc + a * b
output(sum(acc), "total", to=alice)
"""

def _repeated(n: int, expr: str) -> str:
    """T times an order function of a secret vector of n elements (kept alive by a running sum)."""
    return HEAD + f"""param T = 1
x = secret(input(alice, "x", shape=({n},)))
acc = zeros(({n},))
for i in range(T):
    acc = acc + {expr}
output(sum(acc), "total", to=alice)
"""


COMPARE = _repeated(1_000_000, "(x < 0.5)")
SORT = _repeated(1000, "sort(x)")
MAX = _repeated(1000, "max(x)")

BARE = HEAD + """param T = 1
a = secret(input(alice, "a", shape=(1,), dtype=int))
acc = secret(input(bob, "b", shape=(1,), dtype=int))
for i in range(T):
    acc = acc * a
output(acc, to=alice)
"""


@dataclass
class Workload:
    """A program, its trip-count param, the two trip counts, and its input arrays."""

    name: str
    unit: str
    program: str | Path
    param: str
    trips: tuple[int, int]
    inputs: Callable[[np.random.Generator], dict[str, dict[str, np.ndarray]]]
    params: dict[str, int] = field(default_factory=dict)
    per: int = 1  # trips of the param per unit (network A: N grows by BATCH rows per step)
    protocol: str | None = None  # the program's protocol line overridden (e.g. the LR step under dealer2)
    # On LAN a short unit is measured over more trips, so that one scheduling hiccup of a few ms
    # (two shared cores, three processes) is a small part of the difference (default: trips).
    lan_trips: tuple[int, int] | None = None


def _mnist_inputs(g: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """MNIST-shaped data for the largest N of the network-A workload (the programs read head=True)."""
    return {"alice": {"x": g.integers(0, 256, (640, 28, 28)).astype(np.float64), "y": g.integers(0, 10, 640)},
            "bob": {"x_test": g.integers(0, 256, (16, 28, 28)).astype(np.float64), "y_test": g.integers(0, 10, 16)}}


def _lr_inputs(g: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    labels = np.eye(10)[g.integers(0, 10, 128)]
    return {"alice": {"images": g.random((128, 784))}, "bob": {"labels": labels}}


WORKLOADS = [
    Workload("LR step 128x784", "step", HERE / "bench" / "logreg_mnist.mpc", "EPOCHS", (1, 5), _lr_inputs,
             {"N": 128, "BATCH": 128}, lan_trips=(1, 41)),
    Workload("LR step 128x784, dealer2", "step", HERE / "bench" / "logreg_mnist.mpc", "EPOCHS", (1, 5), _lr_inputs,
             {"N": 128, "BATCH": 128}, lan_trips=(1, 41), protocol="dealer2(alice, bob, dealer=carol)"),
    Workload("fraud step", "step", HERE / "fraud_detection.mpc", "EPOCHS", (1, 5), lambda g: {},
             {"N": 128, "BATCH": 128}, lan_trips=(1, 41)),
    Workload("fraud step, dealer2", "step", HERE / "fraud_detection.mpc", "EPOCHS", (1, 5), lambda g: {},
             {"N": 128, "BATCH": 128}, lan_trips=(1, 41), protocol="dealer2(alice, bob, dealer=carol)"),
    Workload("matmul 128x784x128", "matmul", MATMUL, "T", (1, 5),
             lambda g: {"alice": {"x": g.uniform(-1, 1, (128, 784)) / 28}, "bob": {"w": g.uniform(-1, 1, (784, 128)) / 28}},
             lan_trips=(1, 41)),
    Workload("10^6 multiplications", "10^6 mul", MULS, "T", (1, 5),
             lambda g: {"alice": {"a": g.uniform(-1, 1, 10**6)}, "bob": {"b": g.uniform(-1, 1, 10**6)}},
             lan_trips=(1, 11)),
    Workload("10^6 comparisons", "10^6 cmp", COMPARE, "T", (1, 3), lambda g: {"alice": {"x": g.uniform(-1, 1, 10**6)}},
             lan_trips=(1, 6)),
    Workload("sort 1000", "sort", SORT, "T", (1, 3), lambda g: {"alice": {"x": g.uniform(-100, 100, 1000)}},
             lan_trips=(1, 6)),
    Workload("max 1000", "max", MAX, "T", (1, 5), lambda g: {"alice": {"x": g.uniform(-100, 100, 1000)}},
             lan_trips=(1, 21)),
    Workload("network A step (sgd)", "step", HERE / "mnist_network_a.mpc", "N", (128, 640), _mnist_inputs,
             {"EPOCHS": 1, "BATCH": 128, "N_TEST": 16}, per=128),
    Workload("network A step (sgd), dealer2", "step", HERE / "mnist_network_a.mpc", "N", (128, 640), _mnist_inputs,
             {"EPOCHS": 1, "BATCH": 128, "N_TEST": 16}, per=128, protocol="dealer2(alice, bob, dealer=carol)"),
    Workload("bare 1-element round", "round", BARE, "T", (10, 110),
             lambda g: {"alice": {"a": np.ones(1, np.int64)}, "bob": {"b": np.ones(1, np.int64)}},
             lan_trips=(10, 2010)),
]


@dataclass
class Measured:
    """One run: critical-path rounds, bytes of all parties, the slowest party's seconds, per party."""

    rounds: int
    bytes: int
    seconds: float
    party_seconds: dict[str, float]


def run_once(build: str, manifest: dict, inputs: dict, out: str, extra: list[str]) -> Measured:
    """One run of every party as its own process; checks the measurement against the prediction."""
    runs = run_all(build, manifest["parties"], inputs, out, **({"extra_args": extra} if extra else {}))
    if any(r.code != 0 for r in runs):
        raise failure_summary(runs)
    cost = manifest["cost"]
    for r in runs:
        s = r.stats or {}
        want = (cost["party_rounds"].get(r.party, 0), cost["bytes_sent"].get(r.party, 0))
        if (s.get("rounds"), s.get("bytes_sent")) != want:
            raise SystemExit(f"{manifest['program']}: {r.party} measured {s.get('rounds')} rounds, "
                             f"{s.get('bytes_sent')} bytes; the compiler predicted {want[0]}, {want[1]}")
    stats = {r.party: r.stats or {} for r in runs}
    return Measured(max(s["rounds"] for s in stats.values()), sum(s["bytes_sent"] for s in stats.values()),
                    max(s["seconds"] for s in stats.values()), {p: s["seconds"] for p, s in stats.items()})


def _build(w: Workload, trips: int, tmp: str) -> tuple[str, dict]:
    """The workload compiled with `trips` trips: (build folder, manifest)."""
    c = api.compile(w.program, dict(w.params, **{w.param: trips}), protocol=w.protocol)
    return c.save(os.path.join(tmp, f"build-{trips}")), c.manifest


@dataclass
class Row:
    """A unit's cost, from the difference of two trip counts."""

    rounds: float
    bytes: float
    seconds: float
    party_seconds: dict[str, float]
    critical: float = 0.0  # rounds on the critical path per unit (the compiler's, compiler/latency.py)


def per_unit(w: Workload, extra: list[str], repeats: int, trips: tuple[int, int]) -> Row:
    """The cost of one unit of `w` under the given network arguments, from runs at the two trip
    counts: they alternate (so a change in the machine's load hits both alike) and each pair's
    difference counts once; the medians of those differences are reported."""
    lo, hi = trips
    k = (hi - lo) / w.per
    pairs: list[tuple[Measured, Measured]] = []
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        builds = [_build(w, lo, tmp), _build(w, hi, tmp)]
        inputs = save_inputs(tmp, w.inputs(np.random.default_rng(0)))
        for i in range(repeats):
            a, b = (run_once(build, manifest, inputs, os.path.join(tmp, f"out-{j}-{i}"), extra)
                    for j, (build, manifest) in enumerate(builds))
            pairs.append((a, b))

    def med(f: Callable[[Measured], float]) -> float:
        return statistics.median((f(b) - f(a)) / k for a, b in pairs)

    a0, b0 = pairs[0]
    critical = (builds[1][1]["cost"]["critical_rounds"] - builds[0][1]["cost"]["critical_rounds"]) / k
    return Row((b0.rounds - a0.rounds) / k, (b0.bytes - a0.bytes) / k, med(lambda m: m.seconds),
               {p: med(lambda m, p=p: m.party_seconds[p]) for p in a0.party_seconds}, critical)


NOISE = "noise"  # a median difference at or below zero: the runs' spread exceeded the unit's cost


def _seconds(s: float) -> str:
    """Seconds in the unit that reads best: ms below one second (never a figure at or below zero)."""
    if s <= 0:
        return NOISE
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s"


def table(rows: list[tuple[str, str, Row | None, Row | None]], markdown: bool) -> str:
    """The suite's one table."""
    head = ["benchmark", "unit", "rounds/unit", "critical/unit", "bytes/unit (all parties)", "LAN s/unit",
            "WAN s/unit"]
    body = []
    for name, unit, lan, wan in rows:
        if lan is None:
            body.append([name, unit, "n/a", "n/a", "n/a", "n/a", "n/a"])
            continue
        body.append([name, unit, f"{lan.rounds:g}", f"{lan.critical:g}", f"{lan.bytes:,.0f}", _seconds(lan.seconds),
                     _seconds(wan.seconds) if wan is not None else "-"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [fmt.format(*r) for r in body])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen workloads on LAN (and WAN) and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per trip count (medians)")
    ap.add_argument("--only", nargs="+", metavar="WORD", help="workloads whose name contains a WORD")
    ap.add_argument("--no-wan", action="store_true", help="skip the WAN emulation")
    ap.add_argument("--rtt", default="40ms")
    ap.add_argument("--bandwidth", default="352mbit")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (docs/perf.md)")
    args = ap.parse_args(argv)
    wan_args: list[str] = []
    if not args.no_wan:
        from veil.runtime.shaping import shape_from_args

        wan_args = shape_from_args(args.rtt, args.bandwidth).cli_args()
    chosen = [w for w in WORKLOADS if not args.only or any(s.lower() in w.name.lower() for s in args.only)]
    rows: list[tuple[str, str, Row | None, Row | None]] = []
    bare: Row | None = None
    for w in chosen:
        print(f"running {w.name} ...", file=sys.stderr, flush=True)
        lan = per_unit(w, [], args.repeats, w.lan_trips or w.trips)
        far = None if args.no_wan else per_unit(w, wan_args, args.repeats, w.trips)
        rows.append((w.name, w.unit, lan, far))
        if w.unit == "round":
            bare = lan
    wan_note = "no WAN runs" if args.no_wan else f"WAN = --rtt {args.rtt} --bandwidth {args.bandwidth}"
    print(f"three processes on 127.0.0.1; {wan_note}; medians of {args.repeats} alternating run pairs")
    print(table(rows, args.markdown))
    if any(r is not None and r.seconds <= 0 for _n, _u, *both in rows for r in both):
        print(f"{NOISE}: the machine's spread exceeded that unit's cost in these runs; rerun it with more --repeats")
    if bare is not None:
        each = ", ".join(f"{p} {_seconds(s / max(bare.rounds, 1))}" for p, s in bare.party_seconds.items())
        print(f"bare 1-element round, per party: {each}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
