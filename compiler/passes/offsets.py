"""One sign bit per public threshold, one mask per secret element: msb of a broadcast secret plus
public offsets becomes `msb_at` (and the product of two such, `msb_at_mul`).

`past = x.reshape((n, 1)) - knots; where(past > 0, past, 0)` expands to msb(0 - past) and
mul(msb, past - 0): each compares a broadcast of x (n elements) with k public offsets. The
protocols open x + r once and evaluate one comparison key per element of x at its k points
(docs/security.md, "One mask, many thresholds"), instead of n*k keys. This pass runs after the
expansion layer (msb only exists there) and asks the protocol's capabilities whether the kernels
exist; it rewrites only when the base has fewer elements than the result.

The chain it looks through, from the msb's operand back to the base: add and sub with one public
operand whose value the compiler knows (constants, and broadcasts, reshapes and sums of them),
neg, retag, broadcast, and reshape before any broadcast. The result is
`sign * broadcast_to(reshape(base, base_shape), shape) + offsets`, offsets computed here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from veil.runtime.ops import OPS
from veil.runtime.ring import U64, asring

from ..capabilities import Capabilities
from ..ir import Block, Op, Program, Value
from ..types import PUBLIC, SECRET
from .dce import dce
from .util import clone, use_counts

# public ops whose value the pass evaluates when every operand's value is known
_FOLDABLE = {"const", "broadcast", "reshape", "add", "sub", "neg", "retag", "from_public"}


@dataclass(frozen=True)
class Affine:
    """v = sign * broadcast_to(reshape(base, base_shape), offsets.shape) + offsets."""

    base: Value
    base_shape: tuple[int, ...]
    sign: int
    offsets: np.ndarray

    @property
    def broadcast(self) -> bool:
        return tuple(self.offsets.shape) != tuple(self.base_shape)


class _Program:
    """Every op of the program by the value it defines, and the public values it can evaluate."""

    def __init__(self, prog: Program):
        self.defs: dict[int, Op] = {}
        self.known: dict[int, np.ndarray | None] = {}
        self._index(prog.body)

    def _index(self, block: Block) -> None:
        for op in block.ops:
            for v in op.outs:
                self.defs[v.id] = op
            if op.body is not None:
                self._index(op.body)

    def value(self, v: Value) -> np.ndarray | None:
        """The ring value of a public v computed from constants only, else None."""
        if v.id in self.known:
            return self.known[v.id]
        op = self.defs.get(v.id)
        out = None
        if v.type.vis == PUBLIC and op is not None and op.opcode in _FOLDABLE and len(op.outs) == 1:
            ins = [self.value(x) for x in op.ins]
            if all(x is not None for x in ins):
                out = asring(np.asarray(OPS[op.opcode].clear(*ins, **op.attrs)))
        self.known[v.id] = out
        return out

    def affine(self, v: Value) -> Affine:
        """v as an affine function of the deepest base the chain allows (v itself at worst)."""
        here = Affine(v, tuple(v.type.shape), 1, np.zeros(v.type.shape, dtype=U64))
        op = self.defs.get(v.id)
        if op is None or v.type.vis != SECRET or len(op.outs) != 1:
            return here
        shape = tuple(op.out.type.shape)
        if op.opcode in ("add", "sub") and len(op.ins) == 2:
            secret = [i for i, x in enumerate(op.ins) if x.type.vis == SECRET]
            if len(secret) != 1:
                return here
            s = secret[0]
            c = self.value(op.ins[1 - s])
            if c is None:
                return here
            inner = self.affine(op.ins[s])
            off = np.broadcast_to(inner.offsets, shape)
            if op.opcode == "add":
                return Affine(inner.base, inner.base_shape, inner.sign, asring(off + c))
            if s == 0:
                return Affine(inner.base, inner.base_shape, inner.sign, asring(off - c))
            return Affine(inner.base, inner.base_shape, -inner.sign, asring(c - off))
        if op.opcode == "neg":
            inner = self.affine(op.ins[0])
            return Affine(inner.base, inner.base_shape, -inner.sign, asring(U64(0) - inner.offsets))
        if op.opcode == "retag":
            return self.affine(op.ins[0])
        if op.opcode == "broadcast":
            inner = self.affine(op.ins[0])
            return Affine(inner.base, inner.base_shape, inner.sign, asring(np.broadcast_to(inner.offsets, shape)))
        if op.opcode == "reshape":
            inner = self.affine(op.ins[0])
            if inner.broadcast:
                return here
            return Affine(inner.base, shape, inner.sign, asring(inner.offsets.reshape(shape)))
        return here


def compact(offsets: np.ndarray) -> np.ndarray:
    """The smallest array of the same rank that broadcasts back to `offsets` (constant axes kept as 1)."""
    out = np.asarray(offsets, dtype=U64)
    for axis in range(out.ndim):
        first = np.take(out, [0], axis=axis)
        if np.array_equal(np.broadcast_to(first, out.shape), out):
            out = first
    return np.ascontiguousarray(out)


def msb_offsets(prog: Program) -> Program:
    """msb(sign * broadcast(base) + public) as msb_at(base), and its product with another such
    function of the same base as msb_at_mul(base), where the protocol has the kernels."""
    prog = clone(prog)
    caps = Capabilities.of(prog)
    if "msb_at" not in caps.protocol.native:
        return prog
    info = _Program(prog)
    uses = use_counts(prog.body)
    if _rewrite_block(prog, prog.body, info, uses, caps):
        prog = dce(prog)
    return prog


def _rewrite_block(prog: Program, block: Block, info: _Program, uses: dict[int, int], caps: Capabilities) -> bool:
    changed = False
    at: dict[int, tuple[Affine, Op]] = {}  # msb_at results: their base function and op
    ops: list[Op] = []
    for op in block.ops:
        if op.body is not None:
            changed |= _rewrite_block(prog, op.body, info, uses, caps)
            ops.append(op)
            continue
        new = None
        if op.opcode == "msb" and op.ins[0].type.vis == SECRET:
            new = _msb_at(prog, op, info, caps)
            if new is not None:
                at[op.out.id] = (info.affine(op.ins[0]), new[-1])
        elif op.opcode == "mul":
            new = _msb_at_mul(prog, op, info, uses, caps, at)
        if new is None:
            ops.append(op)
        else:
            ops.extend(new)
            changed = True
    block.ops = ops
    return changed


def _base_operand(prog: Program, f: Affine, span) -> tuple[list[Op], Value]:
    """The base reshaped to the shape it broadcasts from (no op when it already has it)."""
    if tuple(f.base.type.shape) == f.base_shape:
        return [], f.base
    v = prog.new_value(f.base.type.with_(shape=f.base_shape))
    return [Op("reshape", [v], [f.base], {"shape": f.base_shape}, span)], v


def _msb_at(prog: Program, op: Op, info: _Program, caps: Capabilities) -> list[Op] | None:
    f = info.affine(op.ins[0])
    if f.base.type.size >= op.out.type.size or f.base.type.vis != SECRET:
        return None
    pre, base = _base_operand(prog, f, op.span)
    new = Op("msb_at", [op.out], [base], {"shape": tuple(op.out.type.shape), "sign": f.sign,
                                         "offsets": compact(f.offsets)}, op.span)
    if caps.kernel_of(new) is None:
        return None
    return pre + [new]


def _msb_at_mul(prog: Program, op: Op, info: _Program, uses: dict[int, int], caps: Capabilities,
                at: dict[int, tuple[Affine, Op]]) -> list[Op] | None:
    """mul(msb_at(base), d) for d = dsign * broadcast(base) + doffsets, the msb read only here."""
    if "msb_at_mul" not in caps.protocol.native:
        return None
    for m, d in ((0, 1), (1, 0)):
        bit = op.ins[m]
        if bit.id not in at or uses.get(bit.id) != 1 or op.ins[d].type.vis != SECRET:
            continue
        f, first = at[bit.id]
        g = info.affine(op.ins[d])
        if g.base is not f.base or g.base_shape != f.base_shape or tuple(g.offsets.shape) != tuple(op.out.type.shape):
            continue
        if tuple(op.out.type.shape) != tuple(first.attrs["shape"]):
            continue
        new = Op("msb_at_mul", [op.out], list(first.ins), {**first.attrs, "dsign": g.sign,
                                                          "doffsets": compact(g.offsets)}, op.span)
        if caps.kernel_of(new) is not None:
            return [new]
    return None
