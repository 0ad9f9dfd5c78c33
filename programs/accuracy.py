"""Accuracy harness: train each MNIST program in MPC (`veil local`, three processes) and in plain
numpy with identical hyper-parameters, initial weights and batch order; print both accuracies,
the training time, seconds per batch, and the rounds and bytes of one batch.

    python programs/accuracy.py --data DIR [--only mnist_network_a:sgd] [--epochs 5] [--n 60000]
        [--n-test 10000] [--protocol "dealer2(alice, bob, dealer=carol)"] [--markdown] [--plain-only] [--emulate]

DIR holds the four MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), e.g. from http://yann.lecun.com/exdb/mnist/.
Rounds and bytes per batch come from the compiler's cost model: the difference between the
program compiled for two epochs and for one, divided by the batches of an epoch.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import plain_training  # noqa: E402

FILES = {"alice.x": "train-images-idx3-ubyte.gz", "alice.y": "train-labels-idx1-ubyte.gz",
         "bob.x_test": "t10k-images-idx3-ubyte.gz", "bob.y_test": "t10k-labels-idx1-ubyte.gz"}

# (program, optimizer, learning rate): the settings of docs/ml.md's table.
RUNS = [("mnist_logreg", "sgd", 0.1), ("mnist_logreg", "amsgrad", 0.001), ("mnist_logreg", "adam", 0.001),
        ("mnist_network_a", "sgd", 0.2), ("mnist_network_a", "adam", 0.001),
        ("mnist_network_b", "sgd", 0.1), ("mnist_network_c", "sgd", 0.1), ("mnist_network_d", "sgd", 0.1)]


@dataclass
class Row:
    program: str
    opt: str
    lr: float
    epochs: int
    plain_acc: float
    plain_s_batch: float
    mpc_acc: float | None = None
    mpc_seconds: float | None = None
    mpc_s_batch: float | None = None
    rounds_batch: float | None = None
    bytes_batch: float | None = None


def _veil(*args: str) -> subprocess.CompletedProcess:
    """Run the veil CLI of this interpreter's environment, failing loudly."""
    proc = subprocess.run([sys.executable, "-m", "veil.runtime.cli", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"veil {' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _defines(params: dict) -> list[str]:
    return [a for k, v in params.items() for a in ("-D", f"{k}={v}")]


def per_batch_cost(program: Path, params: dict, protocol: list[str]) -> tuple[float, float]:
    """(rounds, bytes summed over parties) of one batch: cost(2 epochs) - cost(1 epoch), per batch."""
    costs = []
    with tempfile.TemporaryDirectory() as d:
        for epochs in (1, 2):
            p = dict(params, EPOCHS=epochs)
            out = _veil("compile", str(program), "--json", "-o", f"{d}/b{epochs}", *_defines(p), *protocol).stdout
            j = json.loads(out)
            costs.append((j["rounds"], sum(j["bytes_sent"].values())))
    nb = params["N"] // params["BATCH"]
    return (costs[1][0] - costs[0][0]) / nb, (costs[1][1] - costs[0][1]) / nb


def run_mpc(program: Path, params: dict, data: Path, protocol: list[str], emulate: bool = False
            ) -> tuple[float, float]:
    """(test accuracy, wall seconds) of one `veil local` run (or `veil emulate`: the same
    fixed-point arithmetic in clear, for networks whose MPC run does not fit the time at hand)."""
    inputs = [a for k, f in FILES.items() for a in ("--input", f"{k}={data / f}")]
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        if emulate:
            _veil("emulate", str(program), *_defines(params), *inputs, "--output-dir", out)
        else:
            _veil("local", str(program), *_defines(params), *inputs, *protocol, "--output-dir", out, "--quiet")
        seconds = time.perf_counter() - start
        return float(np.load(Path(out) / "alice" / "accuracy.npy")), seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="folder with the four MNIST IDX files")
    ap.add_argument("--only", action="append", default=[], help="PROGRAM or PROGRAM:OPT (repeatable)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--plain-only", action="store_true", help="skip MPC (numpy and cost model only)")
    ap.add_argument("--emulate", action="store_true",
                    help="veil emulate instead of veil local: the MPC accuracy without its time")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    missing = [f for f in FILES.values() if not (a.data / f).exists()]
    if missing:
        raise SystemExit(f"--data {a.data}: missing {', '.join(missing)}")
    x, y = (plain_training.read_idx(a.data / FILES[k])[:a.n] for k in ("alice.x", "alice.y"))
    xt, yt = (plain_training.read_idx(a.data / FILES[k])[:a.n_test] for k in ("bob.x_test", "bob.y_test"))
    protocol = ["--protocol", a.protocol] if a.protocol else []
    rows = []
    for prog, opt, lr in RUNS:
        if a.only and prog not in a.only and f"{prog}:{opt}" not in a.only:
            continue
        params = {"N": a.n, "N_TEST": a.n_test, "EPOCHS": a.epochs, "BATCH": a.batch, "OPT": opt, "LR": lr}
        plain = plain_training.TRAINERS[prog](x, y, xt, yt, epochs=a.epochs, batch=a.batch, opt=opt, lr=lr, seed=1)
        row = Row(prog, opt, lr, a.epochs, plain.accuracy, plain.seconds / plain.batches)
        path = HERE / f"{prog}.mpc"
        row.rounds_batch, row.bytes_batch = per_batch_cost(path, params, protocol)
        if not a.plain_only:
            row.mpc_acc, seconds = run_mpc(path, params, a.data, protocol, a.emulate)
            if not a.emulate:
                row.mpc_seconds, row.mpc_s_batch = seconds, seconds / plain.batches
        rows.append(row)
        print(_format([row], a.markdown, header=len(rows) == 1, emulated=a.emulate), flush=True)


def _format(rows: list[Row], markdown: bool, header: bool, emulated: bool = False) -> str:
    """The table rows (and the header for the first)."""
    cols = ["program", "opt", "lr", "epochs", "plain acc", "emulated acc" if emulated else "MPC acc", "MPC s", "MPC s/batch",
            "plain s/batch", "rounds/batch", "MB/batch"]
    fmt = lambda v, p="{:.4f}": "-" if v is None else p.format(v)  # noqa: E731
    lines = []
    if header:
        lines.append(("| " + " | ".join(cols) + " |") if markdown else "  ".join(f"{c:>14}" for c in cols))
        if markdown:
            lines.append("|" + "---|" * len(cols))
    for r in rows:
        vals = [r.program, r.opt, f"{r.lr:g}", str(r.epochs), fmt(r.plain_acc), fmt(r.mpc_acc),
                fmt(r.mpc_seconds, "{:.1f}"), fmt(r.mpc_s_batch, "{:.3f}"), fmt(r.plain_s_batch, "{:.5f}"),
                fmt(r.rounds_batch, "{:.0f}"), fmt(None if r.bytes_batch is None else r.bytes_batch / 1e6, "{:.2f}")]
        lines.append(("| " + " | ".join(vals) + " |") if markdown else "  ".join(f"{v:>14}" for v in vals))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
