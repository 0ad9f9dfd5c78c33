"""Kernels every protocol shares: moving a clear value from one party to another."""
from __future__ import annotations

import numpy as np

from .base import Context, Cost, Exchange, KernelSpec


def send(ctx: Context, x: np.ndarray | None, *, src: str, dst: str, shape: tuple[int, ...]):
    """`src` sends its clear value to `dst` (an output of a public or private value)."""
    if ctx.party == src:
        yield Exchange(send={dst: [np.ascontiguousarray(x)]})
        return None
    got = yield Exchange(expect={src: 1})
    return got[src][0].reshape(shape)


def _send_cost(compute: list[str], n: int, *, src: str, dst: str, shape=()) -> Cost:
    return Cost(1, {src: n})


SEND = KernelSpec(send, lambda compute, *, src, dst, shape=(): {src, dst}, _send_cost)
