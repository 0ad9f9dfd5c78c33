"""The expansion layer: composite operations rewritten, once for every protocol, into the
primitives the protocols implement (as SPU's hal layer sits above its kernels).

It runs after the optimizer and before the lowering, and `veil emulate` runs its output, so the
emulator computes every approximation exactly as the protocols do. An op is expanded unless the
program's protocol declares a kernel for it (`Protocol.native`); what an expansion produces is
expanded again, down to primitives. To add one: a function decorated `@expansion("opcode")` that
emits the replacement through an `Emitter` and returns the value standing for the op's result.

    where(c, a, b) = b + c * (a - b)        (c is 0 or 1: a product without truncation)
    abs(x)         = where(x < 0, -x, x)
    max(a, b)      = where(a < b, b, a)     min(a, b) = where(a < b, a, b)
    max(x, axis)   = a tree of elementwise max over halves: ceil(log2 n) comparison layers
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from veil.runtime.diagnostics import Span
from veil.runtime.ring import asring

from .capabilities import Capabilities
from .ir import Block, Op, Program, Value
from .passes.util import clone
from .types import PUBLIC, Type, join_vis

Rule = Callable[["Emitter", Op], Value]
EXPANSIONS: dict[str, Rule] = {}


def expansion(opcode: str) -> Callable[[Rule], Rule]:
    """Register the expansion of an opcode."""
    def register(rule: Rule) -> Rule:
        EXPANSIONS[opcode] = rule
        return rule
    return register


class Emitter:
    """Collects the ops that replace one composite op, each keeping the op's span."""

    def __init__(self, prog: Program, span: Span | None):
        self.prog, self.span, self.ops = prog, span, []

    def emit(self, opcode: str, ins: list[Value], t: Type, **attrs: Any) -> Value:
        v = self.prog.new_value(t)
        self.ops.append(Op(opcode, [v], list(ins), attrs, self.span))
        return v

    def zero(self, like: Type) -> Value:
        """A public scalar 0 of `like`'s dtype and scale."""
        return self.emit("const", [], Type(PUBLIC, like.dtype, (), like.scale), value=asring(np.zeros((), np.int64)))

    def bcast(self, v: Value, shape: tuple[int, ...]) -> Value:
        if v.type.shape == tuple(shape):
            return v
        return self.emit("broadcast", [v], v.type.with_(shape=tuple(shape)), shape=tuple(shape))

    def less(self, a: Value, b: Value) -> Value:
        shape = tuple(np.broadcast_shapes(a.type.shape, b.type.shape))
        return self.emit("lt", [a, b], Type(join_vis(a.type.vis, b.type.vis), "bool", shape, 0))

    def where(self, c: Value, a: Value, b: Value, t: Type) -> Value:
        return self.emit("where", [c, a, b], t)

    def slice(self, v: Value, axis: int, start: int, stop: int) -> Value:
        key = [["s", 0, d, 1] for d in v.type.shape]
        key[axis] = ["s", start, stop, 1]
        shape = list(v.type.shape)
        shape[axis] = stop - start
        return self.emit("slice", [v], v.type.with_(shape=tuple(shape)), key=key)


@expansion("where")
def _where(em: Emitter, op: Op) -> Value:
    t = op.out.type
    c, a, b = (em.bcast(v, t.shape) for v in op.ins)
    diff = em.emit("sub", [a, b], t.with_(vis=join_vis(a.type.vis, b.type.vis)))
    picked = em.emit("mul", [c, diff], t.with_(vis=join_vis(c.type.vis, diff.type.vis)))
    return em.emit("add", [b, picked], t)


@expansion("abs")
def _abs(em: Emitter, op: Op) -> Value:
    (x,) = op.ins
    neg = em.emit("neg", [x], x.type)
    return em.where(em.less(x, em.zero(x.type)), neg, x, op.out.type)


@expansion("maximum")
def _maximum(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.where(em.less(a, b), b, a, op.out.type)


@expansion("minimum")
def _minimum(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.where(em.less(a, b), a, b, op.out.type)


def _tree(em: Emitter, op: Op, pick: str) -> Value:
    """Reduce along an axis (all elements for axis None) by pairing halves, layer by layer."""
    (x,) = op.ins
    axis = op.attrs.get("axis")
    if axis is None:
        x = em.emit("reshape", [x], x.type.with_(shape=(x.type.size,)), shape=(x.type.size,))
        axis = 0
    while x.type.shape[axis] > 1:
        n = x.type.shape[axis]
        half = n // 2
        lo, hi = em.slice(x, axis, 0, half), em.slice(x, axis, half, 2 * half)
        layer = em.emit(pick, [lo, hi], lo.type)
        if n % 2:
            rest = em.slice(x, axis, 2 * half, n)
            shape = list(layer.type.shape)
            shape[axis] += 1
            layer = em.emit("concat", [layer, rest], layer.type.with_(shape=tuple(shape)), axis=axis)
        x = layer
    return em.emit("reshape", [x], op.out.type, shape=op.out.type.shape)


@expansion("rmax")
def _rmax(em: Emitter, op: Op) -> Value:
    return _tree(em, op, "maximum")


@expansion("rmin")
def _rmin(em: Emitter, op: Op) -> Value:
    return _tree(em, op, "minimum")


# ---- the pass --------------------------------------------------------------------------------

def expand(prog: Program) -> Program:
    """Every composite op the protocol does not compute natively, rewritten into primitives."""
    prog = clone(prog)
    _expand_block(prog, prog.body, Capabilities.of(prog))
    return prog


def _expand_block(prog: Program, block: Block, caps: Capabilities) -> None:
    ops: list[Op] = []
    for op in block.ops:
        if op.body is not None:
            _expand_block(prog, op.body, caps)
            ops.append(op)
        else:
            ops.extend(_expand_op(prog, op, caps))
    block.ops = ops


def _expand_op(prog: Program, op: Op, caps: Capabilities) -> list[Op]:
    rule = EXPANSIONS.get(op.opcode)
    if rule is None or caps.kernel_of(op) is not None:
        return [op]
    em = Emitter(prog, op.span)
    result = rule(em, op)
    last = em.ops[-1]
    if result is not last.out or result.type != op.out.type:
        raise AssertionError(f"expansion of {op.opcode} must end in its result of type {op.out.type}")
    last.outs = [op.out]  # the expansion's last op defines the original result
    out: list[Op] = []
    for new in em.ops:
        out.extend(_expand_op(prog, new, caps))
    return out
