"""A public factor goes to the operand of a product that is ready first.

The builder multiplies left to right, so `c * (x * x * x)` (a polynomial's term) is three products
in a row, each followed by its truncation: the constant's product waits for the cube. Written as
`(x * x) * (x * c)` the constant's truncation runs while `x * x` is computed, and the term is one
truncated product shorter on the critical path. This pass makes that rewrite:

  trunc(trunc(a * b, p) * c, q)  ->  trunc(a * trunc(b * c, p), q)     (b ready before a)

for a public fix constant c and a secret product a * b (elementwise, or a matrix product when b is
no larger than the product, so the constant's truncation never handles more elements). The
truncation amounts stay the same, so the result has the original scale.

Range: the builder gives a factor c of magnitude below 1 exactly `e = floor(-log2 |c|)` extra
fractional bits, so c carries an integer in [2^F, 2^(F+1)). Then b * c, truncated by p, has the
magnitude of b (times at most 2), and a * trunc(b * c) has that of the original second product
trunc(a * b) * c: no intermediate grows beyond what the original placement computed. The rewrite
is made only when that holds (|c| * 2^(scale(c) - p) <= 2).
Precision: each truncation is still off by at most one unit of its own scale; the constant's unit is
2^-(F+e), so its error reaches the result multiplied by |a|, i.e. |a * c| units of 2^-F instead of
|c| — a cubic's coefficient (|c| ~ 2^-9, |a| = x^2 < 64) keeps it below 1/8 unit.
"""
from __future__ import annotations

import numpy as np

from ..capabilities import Capabilities
from ..ir import Block, Op, Program, Value
from ..rounds import ready_times
from ..types import PUBLIC, SECRET
from .util import rewrite_blocks

MAX_GROWTH = 2.0   # b * c truncated may be at most this many times b in magnitude


def balance_constants(prog: Program) -> Program:
    """Move public factors onto the earlier operand of the product they scale, where that is shorter."""
    return rewrite_blocks(prog, _balance)


def _balance(prog: Program, block: Block, uses: dict[int, int], consts: dict[int, np.ndarray],
             caps: Capabilities) -> None:
    defs = {op.out.id: op for op in block.ops if len(op.outs) == 1}
    ready = ready_times(block, uses, caps)
    out: list[Op] = []
    dead: set[int] = set()
    for op in block.ops:
        found = _pattern(op, defs, uses, consts, ready)
        if found is None:
            out.append(op)
            continue
        scaled, inner_trunc, product, early, const = found
        dead.update((scaled.out.id, inner_trunc.out.id, product.out.id))
        out.extend(_rewritten(prog, op, scaled, inner_trunc, product, early, const))
    block.ops = [op for op in out if not (len(op.outs) == 1 and op.out.id in dead)]


def _pattern(op: Op, defs: dict[int, Op], uses: dict[int, int], consts: dict[int, np.ndarray],
             ready: dict[int, int]) -> tuple[Op, Op, Op, int, Value] | None:
    """(c's product, the inner truncation, the secret product, position of the early operand, c)
    when `op` is trunc(trunc(a * b, p) * c, q) worth rewriting."""
    if op.opcode != "trunc" or op.out.type.vis != SECRET:
        return None
    scaled = _single(defs, uses, op.ins[0], "mul")
    if scaled is None or len(scaled.ins) != 2:
        return None
    for k in (0, 1):
        const, inner = scaled.ins[k], scaled.ins[1 - k]
        if const.id in consts and const.type.vis == PUBLIC and const.type.dtype == "fix":
            break
    else:
        return None
    inner_trunc = _single(defs, uses, inner, "trunc")
    if inner_trunc is None:
        return None
    product = _single(defs, uses, inner_trunc.ins[0], "mul", "matmul")
    if product is None or len(product.ins) != 2 or any(v.type.vis != SECRET for v in product.ins):
        return None
    a, b = product.ins
    if a.id == b.id or ready.get(a.id, 0) == ready.get(b.id, 0):
        return None
    early = 0 if ready.get(a.id, 0) < ready.get(b.id, 0) else 1
    e = product.ins[early]
    if product.opcode == "matmul" and (const.type.shape != () or e.type.size > inner.type.size):
        return None
    if product.opcode == "mul" and (e.type.shape != inner.type.shape or
                                    const.type.shape not in ((), inner.type.shape)):
        return None
    c = np.abs(consts[const.id].view(np.int64).astype(np.float64)).max() / 2.0 ** const.type.scale
    if c * 2.0 ** (const.type.scale - inner_trunc.attrs["bits"]) > MAX_GROWTH:
        return None
    return scaled, inner_trunc, product, early, const


def _single(defs: dict[int, Op], uses: dict[int, int], v: Value, *opcodes: str) -> Op | None:
    """The op defining v, if it has one of the opcodes and v is read only once."""
    op = defs.get(v.id)
    if op is None or op.opcode not in opcodes or uses.get(v.id) != 1:
        return None
    return op


def _rewritten(prog: Program, root: Op, scaled: Op, inner_trunc: Op, product: Op, early: int,
               const: Value) -> list[Op]:
    """trunc(a * trunc(b * c, p), q) with the original truncation amounts and output value."""
    b = product.ins[early]
    p = inner_trunc.attrs["bits"]
    raw = prog.new_value(b.type.with_(scale=b.type.scale + const.type.scale))
    scaled_b = prog.new_value(b.type.with_(scale=b.type.scale + const.type.scale - p))
    ins = list(product.ins)
    ins[early] = scaled_b
    new_product = prog.new_value(scaled.out.type)
    return [
        Op("mul", [raw], [b, const], {}, scaled.span),
        Op("trunc", [scaled_b], [raw], dict(inner_trunc.attrs), inner_trunc.span),
        Op(product.opcode, [new_product], ins, dict(product.attrs), product.span),
        Op("trunc", list(root.outs), [new_product], dict(root.attrs), root.span),
    ]
