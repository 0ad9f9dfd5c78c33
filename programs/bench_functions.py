"""The table of docs/functions.md: for each function of stdlib/ml.mpc its method, its domain, the
maximum absolute and relative error measured in emulation over a dense grid of the domain, and
the rounds and bytes per element it costs under rep3 and dealer2 (the compiler's cost report of a
program applying it to n secret elements, less that of the same program without the call).

    python programs/bench_functions.py [--n 1000] [--grid 20001]

A relative target rel is met when |got - exact| <= max(rel |exact|, 4 * 2^-16), so the relative
error is measured where rel |exact| >= 4 * 2^-16 (below, 16 fractional bits hold no relative
precision), and only for functions with a relative target. A protocol that cannot
lower the function yet (secure comparisons not merged) prints "refused" instead of a cost."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np

from veil.runtime import api
from veil.runtime.diagnostics import VeilError

UNIT = 2.0 ** -16
PROTOCOLS = {"rep3": "rep3(alice, bob, carol)", "dealer2": "dealer2(alice, bob, dealer=carol)"}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Case:
    """One function: how it is called, its method, domain and the numpy reference."""

    call: str
    method: str
    lo: float
    hi: float
    exact: Callable[[np.ndarray], np.ndarray]
    target: str               # the documented bound: "abs 5e-3" or "rel 1e-3"
    log_grid: bool = False
    row: int = 0              # > 0: the function works on rows of this length (softmax)
    pool: int = 0             # > 0: a k x k pool of (N, 1, k, k) tensors

    @property
    def expr(self) -> str:
        return f"ml.{self.call}(s, {self.pool})" if self.pool else f"ml.{self.call}(s)"

    def shape(self, n: int) -> tuple[int, ...]:
        if self.pool:
            return (n // self.pool ** 2, 1, self.pool, self.pool)
        return (n // self.row, self.row) if self.row else (n,)

    @property
    def rel(self) -> float:
        kind, value = self.target.split()
        return float(value) if kind == "rel" else 0.0


CASES = [
    Case("sigmoid", "default = sigmoid_pwl: 9 linear segments, 10 comparisons", -50, 50, _sigmoid, "abs 5e-3"),
    Case("sigmoid_precise", "1/(1+exp(-|x|)) mirrored; 3 comparisons", -30, 30, _sigmoid, "abs 1e-3"),
    Case("sigmoid_poly3", "cubic fit on [-8, 8]", -8, 8, _sigmoid, "abs 0.12"),
    Case("sigmoid_poly3_wide", "cubic fit on [-16, 16]", -16, 16, _sigmoid, "abs 0.22"),
    Case("exp", "clamp (2 comparisons); exp(x/16) degree 5, squared 4 times", -10, 8, np.exp, "rel 1e-2"),
    Case("log", "2^e by 20 comparisons; cubic on [1, 2)", 0.01, 10000, np.log, "abs 5e-3", log_grid=True),
    Case("reciprocal", "2^e by 16 comparisons; 2 Newton steps", 0.01, 1000, lambda x: 1 / x, "rel 1e-3", log_grid=True),
    Case("sqrt", "4^e by 15 comparisons; 2 Newton steps (rsqrt)", 0.01, 10000, np.sqrt, "rel 1e-3", log_grid=True),
    Case("rsqrt", "4^e by 15 comparisons; 2 Newton steps", 0.01, 10000, lambda x: 1 / np.sqrt(x), "rel 1e-3",
         log_grid=True),
    Case("softmax", "max tree, clip at -16, exp, reciprocal of the sum", -20, 20, _softmax_rows, "abs 1e-3", row=10),
    Case("maxpool2d", "max tree over each window: 2 comparison layers", -1000, 1000,
         lambda x: x.max(axis=(2, 3), keepdims=True), "abs 0", pool=2),
    Case("avgpool2d", "sum, times 1/k^2: no comparison", -1000, 1000,
         lambda x: x.mean(axis=(2, 3), keepdims=True), "abs 3e-5", pool=2),
    Case("relu", "where(x > 0, x, 0): 1 comparison", -1000, 1000, lambda x: np.maximum(x, 0), "abs 0"),
    Case("relu_grad", "x > 0: 1 comparison", -1000, 1000, lambda x: (x > 0).astype(float), "abs 0"),
]


def source(expr: str, shape: tuple[int, ...], with_call: bool = True) -> str:
    body = expr if with_call else "s"
    return (f'import ml\nparty alice, bob, carol\nx = input(alice, "x", shape={shape})\n'
            f's = secret(x)\noutput({body}, "y", to=alice)\n')


def grid(case: Case, points: int) -> np.ndarray:
    """A dense grid of the domain on the fixed-point grid, shaped as the function takes it."""
    xs = np.geomspace(case.lo, case.hi, points) if case.log_grid else np.linspace(case.lo, case.hi, points)
    if case.row or case.pool:
        rng = np.random.default_rng(0)
        xs = rng.uniform(case.lo, case.hi, case.shape(points))
    return np.round(xs / UNIT) * UNIT


def errors(case: Case, points: int) -> tuple[float, float]:
    """Maximum absolute error, and relative error where the relative target binds, over the grid."""
    x = grid(case, points)
    got = api.emulate(source(case.expr, x.shape), {"alice": {"x": x}})["alice"]["y"]
    exact = case.exact(x).reshape(got.shape)
    err = np.abs(got - exact)
    big = case.rel * np.abs(exact) >= 4 * UNIT
    return float(err.max()), float((err[big] / np.abs(exact[big])).max()) if big.any() else float("nan")


def cost_per_element(case: Case, n: int, protocol: str) -> tuple[float, float] | None:
    """(rounds, bytes per input element summed over the parties) of the call, or None if refused."""
    shape = case.shape(n)
    try:
        with_call = api.compile(source(case.expr, shape), protocol=protocol).cost.as_dict()
    except VeilError:
        return None
    base = api.compile(source(case.expr, shape, with_call=False), protocol=protocol).cost.as_dict()
    sent = sum(with_call["bytes_sent"].values()) - sum(base["bytes_sent"].values())
    return with_call["rounds"] - base["rounds"], sent / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="elements in the costed program")
    ap.add_argument("--grid", type=int, default=20001, help="points of the accuracy grid")
    args = ap.parse_args()
    cols = ["function", "method", "domain", "target", "max abs err", "max rel err"]
    cols += [f"{p} {what}" for p in PROTOCOLS for what in ("rounds", "B/elem")]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for case in CASES:
        abs_err, rel_err = errors(case, args.grid)
        cells = [f"`{case.call}`", case.method, f"[{case.lo:g}, {case.hi:g}]", case.target,
                 f"{abs_err:.2e}", "-" if np.isnan(rel_err) else f"{rel_err:.2e}"]
        for spec in PROTOCOLS.values():
            cost = cost_per_element(case, args.n, spec)
            cells += ["refused", "refused"] if cost is None else [f"{cost[0]}", f"{cost[1]:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
