"""Kernels every protocol shares: moving a clear value from one party to another."""
from __future__ import annotations

import numpy as np

from .base import Context, Cost, Exchange, KernelSpec, kernel

COMMON: dict[str, KernelSpec] = {}


def _send_cost(compute: list[str], n: int, *, src: str, dst: str, **_: object) -> Cost:
    return Cost(1, {src: n, dst: 0}, {src: 0, dst: 0})


@kernel(COMMON, _send_cost, participants=lambda compute, *, src, dst, **_: {src, dst}, shaped=True)
def send(ctx: Context, x: np.ndarray | None, *, src: str, dst: str, shape: tuple[int, ...]):
    """`src` sends its clear value to `dst` (an output of a public or private value)."""
    if ctx.party == src:
        yield Exchange(send={dst: [np.ascontiguousarray(x)]})
        return None
    got = yield Exchange(expect={src: 1})
    return got[src][0].reshape(shape)


SEND = COMMON["send"]
