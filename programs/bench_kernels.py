"""Benchmark: the C ring matmul and the float64-BLAS limb product (the fallback without C) against
numpy's (non-BLAS) uint64 matmul, medians of several runs.

Run with `python programs/bench_kernels.py [--repeats N]` after `pip install -e .`.  The BLAS
column depends on which OpenBLAS kernel numpy runs: the header line names it (OPENBLAS_CORETYPE,
where set, pins an older, slower one).
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


def bench_shape(m: int, k: int, n: int, repeats: int, rng: np.random.Generator) -> tuple[float, ...]:
    """(numpy ms, limbs ms, C ms, matmul() ms) for one shape; checks the answers agree first."""
    a = rng.integers(0, 1 << 64, size=(m, k), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 1 << 64, size=(k, n), dtype=np.uint64, endpoint=False)
    expected = a @ b
    for name, f in (("C kernel", ring.matmul_c), ("limb product", ring.matmul_limbs)):
        if not np.array_equal(f(a, b), expected):
            raise SystemExit(f"{name} disagrees with numpy on {m}x{k}@{k}x{n}")
    # Tiny products take microseconds: repeat them inside each timed run so the clock resolves them.
    inner = max(1, 200_000 // max(1, m * k * n))

    def loop(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(inner):
                f(a, b)

        return run

    t_np = median_ms(loop(np.matmul), repeats) / inner
    t_limbs = median_ms(loop(ring.matmul_limbs), repeats) / inner
    t_c = median_ms(loop(ring.matmul_c), repeats) / inner
    t_auto = median_ms(loop(ring.matmul), repeats) / inner
    return t_np, t_limbs, t_c, t_auto


def blas_line() -> str:
    """Which BLAS numpy's float64 matmul runs, and how many threads it may use."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: unknown (threadpoolctl not installed)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "BLAS: none found"
    i = libs[0]
    return f"BLAS: {i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, {i.get('num_threads')} threads"


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when the kernels are not built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per shape (median reported)")
    args = parser.parse_args(argv)
    if not ring.HAVE_C:
        print("C kernels are not built: run `pip install -e .` with a C compiler available.", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    print(blas_line())
    header = f"{'shape':>22}  {'numpy ms':>10}  {'limbs ms':>10}  {'C ms':>10}  {'speed-up':>8}  {'matmul() ms':>11}"
    print(header)
    print("-" * len(header))
    for m, k, n in SHAPES:
        t_np, t_limbs, t_c, t_auto = bench_shape(m, k, n, args.repeats, rng)
        shape = f"{m}x{k} @ {k}x{n}"
        print(f"{shape:>22}  {t_np:>10.4f}  {t_limbs:>10.4f}  {t_c:>10.4f}  {t_np / t_c:>7.1f}x  {t_auto:>11.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
