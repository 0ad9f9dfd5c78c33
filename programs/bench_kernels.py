"""Benchmark: the C ring matmul against numpy's (non-BLAS) uint64 matmul, medians of several runs.

Run with `python programs/bench_kernels.py [--repeats N]` after `pip install -e .`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import numpy as np

from veil.cffi_kernels import ring

SHAPES: list[tuple[int, int, int]] = [
    (128, 784, 128),
    (784, 128, 128),
    (128, 128, 10),
    (256, 256, 256),
    (1, 784, 128),
    (1000, 784, 1),
    (128, 32, 1),
    (32, 128, 1),
    (16, 16, 16),
    (4, 4, 4),
]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_shape(m: int, k: int, n: int, repeats: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(numpy ms, C ms, matmul() ms) for one shape; checks the answers agree first."""
    a = rng.integers(0, 1 << 64, size=(m, k), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 1 << 64, size=(k, n), dtype=np.uint64, endpoint=False)
    if not np.array_equal(ring.matmul_c(a, b), a @ b):
        raise SystemExit(f"C kernel disagrees with numpy on {m}x{k}@{k}x{n}")
    # Tiny products take microseconds: repeat them inside each timed run so the clock resolves them.
    inner = max(1, 200_000 // max(1, m * k * n))

    def loop(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(inner):
                f(a, b)

        return run

    t_np = median_ms(loop(np.matmul), repeats) / inner
    t_c = median_ms(loop(ring.matmul_c), repeats) / inner
    t_auto = median_ms(loop(ring.matmul), repeats) / inner
    return t_np, t_c, t_auto


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when the kernels are not built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per shape (median reported)")
    args = parser.parse_args(argv)
    if not ring.HAVE_C:
        print("C kernels are not built: run `pip install -e .` with a C compiler available.", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    header = f"{'shape':>22}  {'numpy ms':>10}  {'C ms':>10}  {'speed-up':>8}  {'matmul() ms':>11}"
    print(header)
    print("-" * len(header))
    for m, k, n in SHAPES:
        t_np, t_c, t_auto = bench_shape(m, k, n, args.repeats, rng)
        shape = f"{m}x{k} @ {k}x{n}"
        print(f"{shape:>22}  {t_np:>10.4f}  {t_c:>10.4f}  {t_np / t_c:>7.1f}x  {t_auto:>11.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
