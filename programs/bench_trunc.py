"""Per-party CPU cost of one product+truncation kernel (`mul_trunc`) on 10^6 elements, rep3 and
dealer2, with the three parties in one process: each party's generator is driven round by round and
only its own steps are timed (thread CPU time), so the figure is the kernel's local work without
the transport. Like a party process, it retains freed memory (veil.runtime.ring.retain_freed_memory)
unless `--malloc-default`. Medians of several kernels, after warm-up trips (fresh 8 MB arrays page-fault).

Run: `python programs/bench_trunc.py [--n N] [--repeats R] [--numpy]` (`--numpy`: the numpy
fallback of the fused formulas instead of the C pass; `VEIL_NO_VAES=1`: AES-NI without VAES).
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from typing import Any

import numpy as np

from veil.runtime.prg import PRG
from veil.runtime.protocols.base import Context
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.protocols.rep3 import Rep3

U64 = np.uint64
COMPUTE = ["p0", "p1", "p2"]


def party_prgs() -> dict[str, PRG]:
    """Consistent pairwise keys for the three parties (benchmark only: fixed keys)."""
    def key(*names: str) -> bytes:
        return hashlib.sha256("|".join(("bench",) + names).encode()).digest()[:16]
    return {p: PRG({q: key(*sorted((p, q))) for q in COMPUTE if q != p} | {None: key(p)}) for p in COMPUTE}


def _operands(protocol: str, n: int, g: np.random.Generator) -> dict[str, tuple[Any, Any]]:
    """Random shares of two secrets at every party (rep3 pairs or dealer2 single arrays)."""
    comps = [[g.integers(0, 2**64, n, dtype=U64, endpoint=False) for _ in range(3)] for _ in range(2)]
    if protocol == "rep3":
        return {p: tuple((c[i], c[(i + 1) % 3]) for c in comps) for i, p in enumerate(COMPUTE)}
    return {p: tuple(c[i] if i < 2 else np.zeros(n, U64) for c in comps) for i, p in enumerate(COMPUTE)}


def run_kernel(kernels: dict, name: str, operands: dict, prgs: dict, op: tuple[int, int],
               cpu: dict[str, float], **attrs: Any) -> None:
    """One kernel `name` at the three parties, stepped in turn; adds each party's thread CPU
    seconds to `cpu`."""
    gens = {}
    for p in COMPUTE:
        ctx = Context(p, COMPUTE, prgs[p])
        ctx.op = op
        gens[p] = kernels[name].fn(ctx, *operands[p], **attrs)
    pending: dict[str, Any] = {p: None for p in COMPUTE}
    while gens:
        exchanges = {}
        for p, gen in list(gens.items()):
            t = time.thread_time()
            try:
                exchanges[p] = gen.send(pending[p])
            except StopIteration:
                del gens[p]
            cpu[p] += time.thread_time() - t
        for p, ex in exchanges.items():
            pending[p] = {q: list(exchanges[q].send.get(p, [])) for q in ex.expect}


def kernel_cpu(kernels: dict, name: str, operands: dict, repeats: int, warmup: int, instr: int = 3,
               **attrs: Any) -> dict[str, float]:
    """Median per-party thread-CPU milliseconds of one kernel `name`, after `warmup` runs."""
    prgs = party_prgs()
    samples: dict[str, list[float]] = {p: [] for p in COMPUTE}
    for trip in range(warmup + repeats):
        cpu = {p: 0.0 for p in COMPUTE}
        run_kernel(kernels, name, operands, prgs, (instr, trip), cpu, **attrs)
        if trip >= warmup:
            for p in COMPUTE:
                samples[p].append(1000 * cpu[p])
    return {p: statistics.median(v) for p, v in samples.items()}


def measure(protocol: str, n: int, repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median per-party CPU milliseconds of one mul_trunc of n elements."""
    kernels = (Rep3 if protocol == "rep3" else Dealer2)().kernels
    return kernel_cpu(kernels, "mul_trunc", _operands(protocol, n, np.random.default_rng(1)), repeats, warmup,
                      bits=16)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--numpy", action="store_true", help="the numpy fallback of the fused formulas")
    ap.add_argument("--malloc-default", action="store_true",
                    help="glibc's default malloc thresholds (a party process retains freed memory)")
    args = ap.parse_args(argv)
    retained = False
    if not args.malloc_default:
        try:
            from veil.runtime.ring import retain_freed_memory
            retained = retain_freed_memory()
        except ImportError:  # a checkout from before the setting: it always ran with the defaults
            pass
    try:
        from veil.runtime.protocols import rep3_fused
        rep3_fused.use_c = rep3_fused.HAVE_C and not args.numpy
        path = "C" if rep3_fused.use_c else "numpy"
    except ImportError:  # a checkout from before the fused formulas
        path = "unfused"
    print(f"mul_trunc on {args.n:,} elements, per-party CPU ms (median of {args.repeats}), formulas: {path}, "
          f"freed memory {'retained' if retained else 'returned (malloc defaults)'}")
    print(f"{'protocol':10}" + "".join(f"{p:>10}" for p in COMPUTE) + f"{'max':>10}")
    for protocol in ("rep3", "dealer2"):
        ms = measure(protocol, args.n, args.repeats)
        print(f"{protocol:10}" + "".join(f"{ms[p]:10.1f}" for p in COMPUTE) + f"{max(ms.values()):10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
