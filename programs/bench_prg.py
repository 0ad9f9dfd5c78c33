"""Benchmark: PRG draws (veil.runtime.prg: the AES-NI kernel, and its `cryptography` fallback)
against one fresh AES-CTR cipher object per draw, the implementation they replaced; medians.

Run with `python programs/bench_prg.py [--repeats N]`.
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench_kernels import median_ms  # the scripts sit side by side in programs/
from veil.cffi_kernels import aes
from veil.runtime.prg import PRG, counter_block

SIZES = [1, 128, 1024, 4096, 4097, 100_000, 1_000_000]
KEY = bytes(range(16))


def reference_draw(key: bytes, op: tuple[int, int], stream: int, n: int) -> np.ndarray:
    """One CTR cipher object per draw over a fresh zero buffer: the old, obvious way."""
    out = np.empty(n + 2, dtype="<u8")
    if n:
        enc = Cipher(algorithms.AES(key), modes.CTR(counter_block(op, stream))).encryptor()
        enc.update_into(np.zeros(8 * n, dtype=np.uint8), out.view(np.uint8))
    return out[:n]


def median_us(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in microseconds after one warm-up call."""
    return median_ms(fn, repeats) * 1e3


def main(argv: list[str] | None = None) -> int:
    """Print the table; fail if a draw differs from the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=51, help="timed draws per size (median reported)")
    args = parser.parse_args(argv)
    prg = PRG({"bob": KEY})
    fallback = PRG({"bob": KEY}, native=False)
    print(f"AES-NI kernel: {'yes' if aes.HAVE_AESNI else 'no (veil column = fallback)'}")
    print(f"{'words':>10}  {'reference us':>13}  {'fallback us':>12}  {'veil us':>10}  {'speed-up':>8}")
    for i, n in enumerate(SIZES):
        op = (i + 1, 7)
        ref = reference_draw(KEY, op, 3, n)
        for p in (prg, fallback):
            if not np.array_equal(p.draw("bob", op, 3, (n,)), ref):
                raise SystemExit(f"draw of {n} words differs from the reference")
        reps = args.repeats if n < 100_000 else max(5, args.repeats // 5)
        t_ref = median_us(lambda: reference_draw(KEY, op, 3, n), reps)
        t_fb = median_us(lambda: fallback.draw("bob", op, 3, (n,)), reps)
        t_new = median_us(lambda: prg.draw("bob", op, 3, (n,)), reps)
        print(f"{n:>10}  {t_ref:>13.1f}  {t_fb:>12.1f}  {t_new:>10.1f}  {t_ref / t_new:>7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
