"""Benchmark: the C ring matmul and the float64-BLAS limb product (the fallback without C) against
numpy's (non-BLAS) uint64 matmul, medians of several runs.

Run with `python programs/bench_kernels.py [--repeats N] [--cpu]` after `pip install -e .`.  The BLAS
column depends on which OpenBLAS kernel numpy runs: the header line names it (OPENBLAS_CORETYPE,
where set, pins an older, slower one).

A second table is the secret products the suite runs (`matmul 128x784x128`, the LR step's and
network A's, transposed operands as the views the VM's `transpose` leaves): one `matmul_trunc`
kernel of rep3 (and of dealer2), the three parties in one process, each party's own steps timed in
thread CPU (its local work without the transport), medians after warm-up kernels, freed memory
kept for reuse as in a party process (`--secret-only` prints only this table).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

from veil.cffi_kernels import ring
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.protocols.rep3 import Rep3
from veil.runtime.ring import retain_freed_memory

from bench_trunc import COMPUTE, kernel_cpu


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


# The secret products of the suite's workloads: matmul 128x784x128; the LR step's xi @ w and
# xi.T @ g; network A's forward products and backward x.T @ dy (a.T) and dy @ w.T (b.T).
KERNEL_SHAPES: list[tuple[str, tuple[int, int, int], str]] = [
    ("rep3", (128, 784, 128), ""),
    ("dealer2", (128, 784, 128), ""),
    ("rep3", (128, 784, 10), ""),
    ("rep3", (784, 128, 10), "a.T"),
    ("rep3", (784, 128, 128), "a.T"),
    ("rep3", (128, 128, 128), "a.T"),
    ("rep3", (128, 128, 10), "a.T"),
    ("rep3", (128, 128, 128), "b.T"),
    ("rep3", (128, 10, 128), "b.T"),
]


CLOCK: Callable[[], float] = time.perf_counter  # --cpu: time.thread_time


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median time in milliseconds (wall, or this thread's CPU with --cpu), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
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


def bench_two_products(m: int, k: int, n: int, repeats: int, rng: np.random.Generator) -> tuple[float, float]:
    """(ms of x_a (y_a + y_b) + x_b y_a by two matmul() calls and numpy sums, ms by one matmul2)."""
    def words(*shape: int) -> np.ndarray:
        return rng.integers(0, 1 << 64, size=shape, dtype=np.uint64, endpoint=False)
    xa, xb, ya, yb = words(m, k), words(m, k), words(k, n), words(k, n)
    if not np.array_equal(ring.matmul2(xa, ya, xb, ya, b1x=yb), xa @ (ya + yb) + xb @ ya):
        raise SystemExit(f"matmul2 disagrees with numpy on {m}x{k}@{k}x{n}")
    two = median_ms(lambda: ring.matmul(xa, ya + yb) + ring.matmul(xb, ya), repeats)
    return two, median_ms(lambda: ring.matmul2(xa, ya, xb, ya, b1x=yb), repeats)


def _operands(protocol: str, m: int, k: int, n: int, g: np.random.Generator,
              layout: str = "") -> dict[str, tuple[Any, Any]]:
    """Random shares of an m x k and a k x n secret at every party (rep3 pairs, dealer2 arrays);
    layout "a.T" or "b.T" makes that operand a transposed view, as the VM's `transpose` leaves it."""
    def words(*shape: int) -> np.ndarray:
        return g.integers(0, 1 << 64, size=shape, dtype=np.uint64, endpoint=False)

    def secret(rows: int, cols: int, view: bool) -> np.ndarray:
        return words(cols, rows).T if view else words(rows, cols)
    xs = [secret(m, k, layout == "a.T") for _ in range(3)]
    ys = [secret(k, n, layout == "b.T") for _ in range(3)]
    if protocol == "rep3":
        return {p: ((xs[i], xs[(i + 1) % 3]), (ys[i], ys[(i + 1) % 3])) for i, p in enumerate(COMPUTE)}
    return {p: (xs[i], ys[i]) if i < 2 else (np.zeros((m, k), np.uint64), np.zeros((k, n), np.uint64))
            for i, p in enumerate(COMPUTE)}


def kernel_cpu_ms(protocol: str, shape: tuple[int, int, int], repeats: int, warmup: int = 2,
                  layout: str = "") -> dict[str, float]:
    """Median per-party thread-CPU ms of one matmul_trunc (bits 16), the parties stepped in turn;
    layout as in _operands."""
    kernels = (Rep3 if protocol == "rep3" else Dealer2)().kernels
    operands = _operands(protocol, *shape, np.random.default_rng(2), layout)
    return kernel_cpu(kernels, "matmul_trunc", operands, repeats, warmup, instr=5, bits=16)


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


def kernel_tables(repeats: int) -> None:
    """The single products (numpy, limbs, C) and the two-product share, timed per call."""
    rng = np.random.default_rng(0)
    print(blas_line())
    header = f"{'shape':>22}  {'numpy ms':>10}  {'limbs ms':>10}  {'C ms':>10}  {'speed-up':>8}  {'matmul() ms':>11}"
    print(header)
    print("-" * len(header))
    for m, k, n in SHAPES:
        t_np, t_limbs, t_c, t_auto = bench_shape(m, k, n, repeats, rng)
        shape = f"{m}x{k} @ {k}x{n}"
        print(f"{shape:>22}  {t_np:>10.4f}  {t_limbs:>10.4f}  {t_c:>10.4f}  {t_np / t_c:>7.1f}x  {t_auto:>11.4f}")
    print(f"\n{'two products x_a (y_a + y_b) + x_b y_a':>40}  {'matmul() x2 ms':>14}  {'matmul2 ms':>10}")
    for m, k, n in ((128, 784, 128), (784, 128, 128), (128, 128, 10)):
        two, one = bench_two_products(m, k, n, repeats, rng)
        print(f"{f'{m}x{k} @ {k}x{n}':>40}  {two:>14.4f}  {one:>10.4f}")


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when the kernels are not built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per shape (median reported)")
    parser.add_argument("--cpu", action="store_true",
                        help="time this thread's CPU instead of wall time (steadier on a loaded machine; "
                             "undercounts the limbs' multi-threaded BLAS)")
    parser.add_argument("--secret-only", action="store_true", help="only the matmul_trunc table")
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu:
        CLOCK = time.thread_time
    if not ring.HAVE_C:
        print("C kernels are not built: run `pip install -e .` with a C compiler available.", file=sys.stderr)
        return 1
    retain_freed_memory()  # as a party process does: big scratch arrays do not page-fault per call
    if not args.secret_only:
        kernel_tables(args.repeats)
    print(f"\nmatmul_trunc per-party thread CPU ms (median of {args.repeats}); total = what the three "
          "parties need of the cores; a.T / b.T: that operand is a transposed view")
    print(f"{'protocol':10}{'product':>26}" + "".join(f"{p:>8}" for p in COMPUTE) + f"{'total':>8}")
    for protocol, (m, k, n), layout in KERNEL_SHAPES:
        ms = kernel_cpu_ms(protocol, (m, k, n), args.repeats, layout=layout)
        product = f"{m}x{k} @ {k}x{n}" + (f" ({layout})" if layout else "")
        print(f"{protocol:10}{product:>26}" + "".join(f"{ms[p]:8.2f}" for p in COMPUTE) + f"{sum(ms.values()):8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
