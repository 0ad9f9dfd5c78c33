"""A public factor after a truncated value moves back into the terms that made the value.

A gradient step ends `w -= c * (x.T @ g)` with c = LR / BATCH: the product's truncation, then c's
product and its own truncation, one after the other once g is known. But g is a sum of terms
that mostly end in a product with a public constant (a polynomial sigmoid's 0.5 + c1 u - c3 u^3)
or are ready early (the labels). Scaling those terms by c instead takes the last truncation off
the critical path:

  trunc(T * c, q)   ->  trunc(T', q + e - scale(c))        T' = c * T, at scale(T) + e

with e = floor(-log2 |c|), so T' carries |c| 2^e <= 1 times T's integer and the result has its
original scale. T' is built from T's definition, recursively:

- a linear op (add, sub, neg, sum, transpose, broadcast, slices, ...): the same op of its scaled
  operands; a public constant operand becomes the constant times c;
- a truncation, a selection's branches: the same op of the scaled operand(s);
- a product a * b: a times the scaled b, where b is a public constant (c merges into it: no new
  truncation) or a secret scaled in turn (the cheapest choice);
- any other secret v: a new truncation trunc(v * c, scale(c) - e) (the labels, ready early).

A trunc of the result that follows a new truncation merges into it (floor of a floor is one floor).
The rewrite is kept only when the round model (compiler/rounds.py) says the result is ready
earlier (or as early, reusing values an earlier rewrite scaled: c * sum(g) after c * (x.T @ g)),
and its new truncations handle no more elements than the one it removes. Range: every new intermediate carries at most its original's integer magnitude (c's
factor |c| 2^e <= 1, merged constants likewise), so nothing grows beyond what the original
computed. Precision: each truncation is off by at most one unit of its own scale; the scaled
terms are at e more fractional bits, so their errors shrink with the value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.runtime.ops import OPS
from veil.runtime.ring import signed

from ..capabilities import Capabilities
from ..ir import Block, Op, Program, Value
from ..rounds import ready_times
from ..types import PUBLIC, SECRET
from .util import rewrite_blocks, use_counts


def distribute_constants(prog: Program) -> Program:
    """Scale the terms of a truncated value by the public factor applied to it, where that is faster."""
    return rewrite_blocks(prog, _block)


def _block(prog: Program, block: Block, uses: dict[int, int], consts: dict[int, np.ndarray],
           caps: Capabilities) -> None:
    """Every root of one block, in order (uses: the program's; this pass counts the block's own)."""
    memo: dict[tuple, tuple[Value, int] | None] = {}
    local, defs = _local_uses(block), _defs(block)
    i = 0
    while i < len(block.ops):
        found = _root(block.ops[i], defs, local, consts)
        moved = None if found is None else _try(prog, block, i, found, local, consts, caps, memo)
        if moved is not None:  # the block changed: count again
            local, defs = _local_uses(block), _defs(block)
        i = i + 1 if moved is None else moved


def _defs(block: Block) -> dict[int, Op]:
    return {o.out.id: o for o in block.ops if len(o.outs) == 1}


def _local_uses(block: Block) -> dict[int, int]:
    """Reads of each value within the block, its own results included (what fusion looks at)."""
    uses = use_counts(block)
    for v in block.results:
        uses[v.id] = uses.get(v.id, 0) + 1
    return uses


@dataclass
class _Factor:
    """The factor being moved: its ring value, float value, scale and extra bits e."""

    const: Value
    ring: np.ndarray
    value: float
    e: int

    @property
    def key(self) -> tuple:
        return (self.ring.tobytes(), self.const.type.scale, self.e)


def _root(op: Op, defs: dict[int, Op], uses: dict[int, int],
          consts: dict[int, np.ndarray]) -> tuple[Op, Value, _Factor] | None:
    """(c's product, the scaled value T, the factor) when `op` is trunc(T * c, q) for a public scalar
    fix constant 0 < |c| < 1 and a secret fix T that nothing else reads."""
    if op.opcode != "trunc" or op.out.type.vis != SECRET or op.out.type.dtype != "fix":
        return None
    scaled = defs.get(op.ins[0].id)
    if scaled is None or scaled.opcode != "mul" or uses.get(scaled.out.id) != 1:
        return None
    for k in (0, 1):
        c, t = scaled.ins[k], scaled.ins[1 - k]
        if c.id in consts and c.type.vis == PUBLIC and c.type.dtype == "fix" and c.type.shape == ():
            break
    else:
        return None
    if t.type.vis != SECRET or t.type.dtype != "fix" or uses.get(t.id) != 1 or t.id not in defs:
        return None
    ring = consts[c.id]
    value = float(signed(ring)) / 2.0 ** c.type.scale
    if value == 0.0 or abs(value) >= 1.0:
        return None
    e = int(math.floor(-math.log2(abs(value))))
    if op.attrs["bits"] + e - c.type.scale < 0:
        return None
    return scaled, t, _Factor(c, ring, value, e)


@dataclass
class _Build:
    """What a rewrite reads (the block's definitions and constants) and the ops it creates, in order."""

    prog: Program
    defs: dict[int, Op]
    consts: dict[int, np.ndarray]
    span: Any
    ops: list[Op] = field(default_factory=list)

    def emit(self, opcode: str, ins: list[Value], t, attrs: dict, span) -> Value:
        out = self.prog.new_value(t)
        self.ops.append(Op(opcode, [out], ins, attrs, span))
        return out


def _try(prog: Program, block: Block, at: int, found: tuple[Op, Value, _Factor], uses: dict[int, int],
         consts: dict[int, np.ndarray], caps: Capabilities, memo: dict[tuple, tuple[Value, int] | None]) -> int | None:
    """Rewrite the root at `at` if its result is then ready earlier: the index after the rewrite, or
    None (the block and the memo as they were)."""
    root = block.ops[at]
    scaled, t, factor = found
    before, saved = list(block.ops), dict(memo)
    old = ready_times(block, uses, caps)
    build = _Build(prog, _defs(block), consts, scaled.span)
    got = _scale(build, t, factor, memo)
    if got is not None and got[1] <= root.out.type.size:
        bits = root.attrs["bits"] + factor.e - factor.const.type.scale
        _finish(build, got[0], bits, root, memo)
        block.ops = [o for o in block.ops[:at] if o is not scaled] + build.ops + block.ops[at + 1:]
        new, was = ready_times(block, _local_uses(block), caps).get(root.out.id, 0), old.get(root.out.id, 0)
        if new < was or (new == was and got[1] == 0 and sum(o.opcode == "trunc" for o in build.ops) <= 1):
            _commit(memo, saved, build.ops, root)  # earlier, or as early reusing terms scaled before
            return at + len(build.ops) - 1
    block.ops = before
    memo.clear()
    memo.update(saved)
    return None


def _commit(memo: dict, saved: dict, ops: list[Op], root: Op) -> None:
    """Keep the scaled values the accepted rewrite uses, free for later roots; forget the others."""
    live = {v.id for v in root.outs}
    for op in reversed(ops):
        if any(v.id in live for v in op.outs):
            live.update(v.id for v in op.ins)
    for key in [k for k in memo if k not in saved]:
        got = memo[key]
        if got is not None and got[0].id in live:
            memo[key] = (got[0], 0)
        else:
            del memo[key]


def _finish(build: _Build, value: Value, bits: int, root: Op, memo: dict) -> None:
    """Give root's output from the scaled value: its truncation merged into a trunc the rewrite
    created (floor of a floor is one floor), or a new one."""
    producer = next((o for o in build.ops if o.outs[0] is value), None)
    private = producer is not None and not any(value in o.ins for o in build.ops)
    for k in [k for k, got in memo.items() if got is not None and got[0] is value]:
        del memo[k]
    if private and producer.opcode == "trunc":
        producer.outs = list(root.outs)
        producer.attrs = {"bits": producer.attrs["bits"] + bits}
        producer.span = root.span
    elif private and bits == 0:
        producer.outs = list(root.outs)
    else:
        build.ops.append(Op("trunc", list(root.outs), [value], {"bits": bits}, root.span))


def _scale(b: _Build, v: Value, f: _Factor, memo: dict) -> tuple[Value, int] | None:
    """c * v at scale(v) + e, and the elements its new truncations handle (none if an earlier
    rewrite built it); None if it cannot be made (a public value that is not a constant, an int)."""
    key = (v.id,) + f.key
    if key not in memo:
        memo[key] = _scale_new(b, v, f, memo)
    return memo[key]


def _scale_new(b: _Build, v: Value, f: _Factor, memo: dict) -> tuple[Value, int] | None:
    if v.type.dtype != "fix":
        return None
    if v.id in b.consts:
        return _scaled_const(b, v, f), 0
    op = b.defs.get(v.id)
    got = None
    if op is not None and len(op.outs) == 1 and op.body is None:
        d = OPS.get(op.opcode)
        if op.opcode in ("mul", "matmul"):
            got = _scaled_product(b, op, f, memo)
        elif op.opcode == "where":          # c * where(s, x, y) = where(s, c x, c y)
            got = _scaled_operands(b, op, f, memo, (1, 2))
        elif op.opcode == "trunc" or (d is not None and d.linear and op.opcode != "retag"):
            got = _scaled_operands(b, op, f, memo, None)
    if got is not None:
        return got
    if v.type.vis != SECRET:
        return None
    return _new_trunc(b, v, f), v.type.size


def _scaled_const(b: _Build, v: Value, f: _Factor) -> Value:
    """A public constant times c, exactly rounded at e more fractional bits."""
    real = signed(b.consts[v.id]).astype(np.float64) / 2.0 ** v.type.scale
    scale = v.type.scale + f.e
    ring = np.asarray(np.round(real * f.value * 2.0 ** scale)).astype(np.int64).astype(np.uint64)
    out = b.emit("const", [], v.type.with_(scale=scale), {"value": ring}, b.span)
    b.consts[out.id] = ring
    return out


def _scaled_operands(b: _Build, op: Op, f: _Factor, memo: dict,
                     which: tuple[int, ...] | None) -> tuple[Value, int] | None:
    """The same op of its scaled data operands (all but index operands, or `which`): a linear op,
    a truncation (floor(c x / 2^t) is c floor(x / 2^t) to a unit), a selection's branches."""
    keep = OPS[op.opcode].index_operands if which is None else tuple(k for k in range(len(op.ins)) if k not in which)
    ins, cost = [], 0
    for k, v in enumerate(op.ins):
        if k in keep:
            ins.append(v)
            continue
        got = _scale(b, v, f, memo)
        if got is None:
            return None
        ins.append(got[0])
        cost += got[1]
    return b.emit(op.opcode, ins, op.out.type.with_(scale=op.out.type.scale + f.e), dict(op.attrs), op.span), cost


def _scaled_product(b: _Build, op: Op, f: _Factor, memo: dict) -> tuple[Value, int] | None:
    """a * b with c moved onto one factor: the cheapest that works, a constant first."""
    order = sorted((0, 1), key=lambda k: (op.ins[k].id not in b.consts, op.ins[k].type.size))
    best: tuple[Value, int] | None = None
    for k in order:
        got = _scale(b, op.ins[k], f, memo)
        if got is None:
            continue
        ins = list(op.ins)
        ins[k] = got[0]
        out = b.emit(op.opcode, ins, op.out.type.with_(scale=op.out.type.scale + f.e), dict(op.attrs), op.span)
        if best is None or got[1] < best[1]:
            best = (out, got[1])
        if got[1] == 0:
            break
    return best


def _new_trunc(b: _Build, v: Value, f: _Factor) -> Value:
    """trunc(v * c, scale(c) - e): a secret term scaled with a truncation of its own."""
    raw = b.emit("mul", [v, f.const], v.type.with_(scale=v.type.scale + f.const.type.scale), {}, b.span)
    return b.emit("trunc", [raw], v.type.with_(scale=v.type.scale + f.e), {"bits": f.const.type.scale - f.e}, b.span)
