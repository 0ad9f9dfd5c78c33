"""The round model shared by the optimizer and the lowering: when each value of a block is ready,
and which producer-consumer pairs run as one fused kernel.

Each op takes the rounds its protocol kernel declares; local ops take none; loops are barriers.
A kernel whose only reader is a kernel the protocol can fuse it with (trunc(mul), mul(msb, d)) is
fused, unless the fused kernel would finish later than the two in turn: a fused kernel waits for
all of its operands, so mul(msb(x), d) with d ready after x is better as msb, then mul.
"""
from __future__ import annotations

from .capabilities import Capabilities
from .ir import Block, Op, Value


def fused_inputs(producer: Op, consumer: Op) -> list[Value]:
    """A fused kernel's operands: the producer's, then the consumer's others (the producer's result
    is the consumer's first operand, read nowhere else): trunc(mul(a, b)) -> (a, b), mul(msb(x), d)
    -> (x, d)."""
    return list(producer.ins) + list(consumer.ins[1:])


def fusion(op: Op, defs: dict[int, Op], uses: dict[int, int], caps: Capabilities,
           ready: dict[int, int]) -> str | None:
    """The fused kernel computing op together with the kernel only op reads, if the protocol offers
    one and it is ready no later than the two kernels in turn."""
    src = defs.get(op.ins[0].id) if op.ins else None
    if src is None or uses.get(src.out.id) != 1 or caps.kernel_of(src) is None or caps.kernel_of(op) is None:
        return None
    kernel = caps.fused(src.opcode, op.opcode)
    if kernel is None:
        return None
    together = _at(ready, fused_inputs(src, op)) + caps.rounds(kernel, op)
    first = _at(ready, src.ins) + caps.rounds(caps.kernel_of(src), src)
    apart = max(first, _at(ready, op.ins[1:])) + caps.rounds(caps.kernel_of(op), op)
    return kernel if together <= apart else None


def _at(ready: dict[int, int], values: list[Value]) -> int:
    return max((ready.get(v.id, 0) for v in values), default=0)


def ready_times(block: Block, uses: dict[int, int], caps: Capabilities) -> dict[int, int]:
    """Round at which each value of the block is available, as the lowering schedules it."""
    ready: dict[int, int] = {}
    done: dict[int, int] = {}  # values of earlier segments: complete before the current one starts
    defs: dict[int, Op] = {}
    for op in block.ops:
        if op.body is not None:
            done.update(ready)
            ready = {}
            continue
        start = _at(ready, op.ins)
        kernel = caps.kernel_of(op)
        t = start
        if kernel is not None:
            fused = fusion(op, defs, uses, caps, ready)
            if fused is not None:  # the fused kernel starts when all its operands are ready
                start = _at(ready, fused_inputs(defs[op.ins[0].id], op))
                kernel = fused
            t = start + caps.rounds(kernel, op)
        for v in op.outs:
            ready[v.id] = t
            defs[v.id] = op
    done.update(ready)
    return done
