"""The expansion layer: composite operations rewritten, once for every protocol, into the
primitives the protocols implement (as SPU's hal layer sits above its kernels).

It runs after the optimizer and before the lowering, and `veil emulate` runs its output, so the
emulator computes every approximation exactly as the protocols do. An op is expanded unless the
program's protocol declares a kernel for it (`Protocol.native`); what an expansion produces is
expanded again, down to primitives. To add one: a function decorated `@expansion("opcode")` that
emits the replacement through an `Emitter` and returns the value standing for the op's result.

    a < b          = msb(a - b)             (exact while |a - b| < 2^63: the documented range)
    a <= b         = 1 - msb(b - a)         a == b = 1 - msb(a - b) - msb(b - a), ...
    a & b, a | b   = a * b, a + b - a * b   (secret bools are 0/1)
    b2a(x)         = sum of 2^i bitinject(x, i) over the 64 bits, all in one batch
    where(c, a, b) = b + c * (a - b)        (c is 0 or 1: a product without truncation)
    abs(x)         = where(x < 0, -x, x)
    max(a, b)      = where(a < b, b, a)     min(a, b) = where(a < b, a, b)
    max(x, axis)   = a tree over adjacent pairs: ceil(log2 n) comparison layers (argmax alike)
    sort(x)        = Batcher's odd-even merge network, every layer one batched compare-exchange
Comparisons, boolean ops, argmax and sort of clear values stay single clear ops (`secret_only`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from veil.runtime.diagnostics import Span
from veil.runtime.ring import asring

from .capabilities import Capabilities, secret_ins
from .ir import Block, Op, Program, Value
from .passes.offsets import msb_offsets
from .passes.util import clone
from .types import PUBLIC, Type, join_vis

Rule = Callable[["Emitter", Op], Value]
EXPANSIONS: dict[str, Rule] = {}
SECRET_ONLY: set[str] = set()  # expanded only with a secret operand; clear values compute directly


def expansion(opcode: str, secret_only: bool = False) -> Callable[[Rule], Rule]:
    """Register the expansion of an opcode."""
    def register(rule: Rule) -> Rule:
        EXPANSIONS[opcode] = rule
        if secret_only:
            SECRET_ONLY.add(opcode)
        return rule
    return register


class Emitter:
    """Collects the ops that replace one composite op, each keeping the op's span."""

    def __init__(self, prog: Program, span: Span | None, uniform: dict[int, int] | None = None):
        self.prog, self.span, self.ops = prog, span, []
        self.uniform = uniform if uniform is not None else {}

    def constant(self, v: Value) -> int | None:
        """The one ring word every element of v holds, when v is a public constant (or its sharing)."""
        return self.uniform.get(v.id)

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

    def one(self) -> Value:
        return self.emit("const", [], Type(PUBLIC, "bool", (), 0), value=asring(np.ones((), np.int64)))

    def sign_of_difference(self, a: Value, b: Value) -> Value:
        """msb(a - b): 1 exactly where a < b, for operands whose difference stays in range."""
        shape = tuple(np.broadcast_shapes(a.type.shape, b.type.shape))
        vis = join_vis(a.type.vis, b.type.vis)
        diff = self.emit("sub", [self.bcast(a, shape), self.bcast(b, shape)], a.type.with_(vis=vis, shape=shape))
        return self.emit("msb", [diff], Type(vis, "bool", shape, 0))

    def not_(self, c: Value, t: Type) -> Value:
        return self.emit("sub", [self.one(), c], t)

    def where(self, c: Value, a: Value, b: Value, t: Type) -> Value:
        return self.emit("where", [c, a, b], t)

    def slice(self, v: Value, axis: int, start: int, stop: int) -> Value:
        key = [["s", 0, d, 1] for d in v.type.shape]
        key[axis] = ["s", start, stop, 1]
        shape = list(v.type.shape)
        shape[axis] = stop - start
        return self.emit("slice", [v], v.type.with_(shape=tuple(shape)), key=key)


@expansion("lt", secret_only=True)
def _lt(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.sign_of_difference(a, b)


@expansion("gt", secret_only=True)
def _gt(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.sign_of_difference(b, a)


@expansion("le", secret_only=True)
def _le(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.not_(em.sign_of_difference(b, a), op.out.type)


@expansion("ge", secret_only=True)
def _ge(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.not_(em.sign_of_difference(a, b), op.out.type)


@expansion("ne", secret_only=True)
def _ne(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    return em.emit("add", [em.sign_of_difference(a, b), em.sign_of_difference(b, a)], op.out.type)


@expansion("eq", secret_only=True)
def _eq(em: Emitter, op: Op) -> Value:
    a, b = op.ins
    ne = em.emit("add", [em.sign_of_difference(a, b), em.sign_of_difference(b, a)], op.out.type)
    return em.not_(ne, op.out.type)


@expansion("bitand", secret_only=True)
def _and(em: Emitter, op: Op) -> Value:
    a, b = (em.bcast(v, op.out.type.shape) for v in op.ins)
    return em.emit("mul", [a, b], op.out.type)


@expansion("bitor", secret_only=True)
def _or(em: Emitter, op: Op) -> Value:
    a, b = (em.bcast(v, op.out.type.shape) for v in op.ins)
    both = em.emit("mul", [a, b], op.out.type)
    either = em.emit("add", [a, b], op.out.type)
    return em.emit("sub", [either, both], op.out.type)


@expansion("bitnot", secret_only=True)
def _not(em: Emitter, op: Op) -> Value:
    return em.not_(op.ins[0], op.out.type)


@expansion("b2a", secret_only=True)
def _b2a(em: Emitter, op: Op) -> Value:
    """A boolean sharing as a number: the 64 bit injections (one batch) weighted by 2^i."""
    (x,) = op.ins
    t = op.out.type
    bits = [em.emit("bitinject", [x], Type(t.vis, "bool", t.shape, 0), bit=i) for i in range(64)]
    total = em.emit("retag", [bits[0]], t)
    for i, b in enumerate(bits[1:], 1):
        weight = em.emit("const", [], Type(PUBLIC, "int", (), 0), value=asring(np.int64(1) << np.int64(i)))
        total = em.emit("add", [total, em.emit("mul", [b, weight], t)], t)
    return total


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


# ---- the pass --------------------------------------------------------------------------------

def expand(prog: Program) -> Program:
    """Every composite op the protocol does not compute natively, rewritten into primitives."""
    prog = clone(prog)
    _expand_block(prog, prog.body, Capabilities.of(prog), {})
    return msb_offsets(prog)  # comparisons with many public thresholds share their masks


# Ops that keep a tensor whose elements all hold one word uniform (a constant divisor, ...).
_KEEPS_UNIFORM = {"from_public", "broadcast", "reshape", "retag", "transpose", "slice"}


def _note_uniform(op: Op, uniform: dict[int, int]) -> None:
    if op.opcode == "const":
        flat = np.asarray(op.attrs["value"]).reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            uniform[op.out.id] = int(flat[0])
    elif op.opcode in _KEEPS_UNIFORM and op.ins and op.ins[0].id in uniform:
        uniform[op.out.id] = uniform[op.ins[0].id]


def _expand_block(prog: Program, block: Block, caps: Capabilities, uniform: dict[int, int]) -> None:
    ops: list[Op] = []
    for op in block.ops:
        if op.body is not None:
            _expand_block(prog, op.body, caps, uniform)
            ops.append(op)
        else:
            _note_uniform(op, uniform)
            ops.extend(_expand_op(prog, op, caps, uniform))
    block.ops = ops


def _expand_op(prog: Program, op: Op, caps: Capabilities, uniform: dict[int, int]) -> list[Op]:
    rule = EXPANSIONS.get(op.opcode)
    if rule is None or caps.kernel_of(op) is not None:
        return [op]
    if op.opcode in SECRET_ONLY and not secret_ins(op):
        return [op]
    em = Emitter(prog, op.span, uniform)
    result = rule(em, op)
    if result is None:  # the rule does not apply to these operands (the lowering decides)
        return [op]
    last = em.ops[-1]
    if result is not last.out or result.type != op.out.type:
        raise AssertionError(f"expansion of {op.opcode} must end in its result of type {op.out.type}")
    last.outs = [op.out]  # the expansion's last op defines the original result
    out: list[Op] = []
    for new in em.ops:
        _note_uniform(new, uniform)
        out.extend(_expand_op(prog, new, caps, uniform))
    return out


from . import expand_division, expand_order, expand_random  # noqa: E402,F401  (register their expansions)
