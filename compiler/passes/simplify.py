"""Algebraic simplification: identities that make an op a copy of one of its inputs.

x*1, x+0, 0+x, x-0, trunc(x*1.0) (the constant one at the truncated scale), neg(neg(x)),
transpose(transpose(x)), reshape(reshape(x)) (one reshape), reshape/broadcast to the same shape, shifts and
truncations by zero bits; trunc(x * 2^j, b) is trunc(x, b - j) (a learning rate of 2^-k costs no
product and no truncation of its own) and trunc(trunc(x, a), b) is trunc(x, a + b). A rewrite applies only when the replacement has exactly the op's type
(visibility, dtype, shape and scale), so no broadcast or conversion is ever lost.
"""
from __future__ import annotations

import numpy as np

from ..ir import Block, Op, Program, Value
from .util import clone, const_values, rename_inputs, resolve, use_counts


def simplify(prog: Program) -> Program:
    """Apply the identities until none applies."""
    prog = clone(prog)
    consts = const_values(prog.body)
    repl: dict[int, Value] = {}
    _simplify_block(prog.body, consts, {}, repl, use_counts(prog.body))
    return prog


def _simplify_block(block: Block, consts: dict[int, np.ndarray], defs: dict[int, Op],
                    repl: dict[int, Value], uses: dict[int, int]) -> None:
    kept: list[Op] = []
    for op in block.ops:
        rename_inputs(op, repl)
        if op.body is not None:
            _simplify_block(op.body, consts, defs, repl, uses)
            kept.append(op)
            continue
        same = _identity(op, consts, defs)
        if same is not None and same.type == op.out.type:
            repl[op.out.id] = same
            continue
        new = _rewrite(op, consts, defs, uses)
        if new is not None:
            op = new
        for v in op.outs:
            defs[v.id] = op
        kept.append(op)
    block.ops = kept
    block.results = [resolve(repl, v) for v in block.results]


def _all(consts: dict[int, np.ndarray], v: Value, ring: int) -> bool:
    """Whether v is a constant whose every element is the ring value `ring`."""
    c = consts.get(v.id)
    return c is not None and bool(np.all(np.asarray(c) == np.uint64(ring)))


def _identity(op: Op, consts: dict[int, np.ndarray], defs: dict[int, Op]) -> Value | None:
    """The input that op merely copies, if any (its type is checked by the caller)."""
    code, ins = op.opcode, op.ins
    if code == "mul" and len(ins) == 2:
        for x, c in ((ins[0], ins[1]), (ins[1], ins[0])):
            if c.type.scale == 0 and _all(consts, c, 1):
                return x
    if code in ("add", "sub") and len(ins) == 2 and _all(consts, ins[1], 0):
        return ins[0]
    if code == "add" and len(ins) == 2 and _all(consts, ins[0], 0):
        return ins[1]
    if code in ("lshift", "trunc") and op.attrs.get("bits") == 0:
        return ins[0]
    if code in ("reshape", "broadcast") and ins[0].type.shape == op.out.type.shape:
        return ins[0]
    src = defs.get(ins[0].id) if ins else None
    if src is None:
        return None
    if code == "neg" and src.opcode == "neg":
        return src.ins[0]
    if code == "transpose" and src.opcode == "transpose" and not op.attrs and not src.attrs:
        return src.ins[0]
    if code == "reshape" and src.opcode == "reshape" and src.ins[0].type.shape == op.out.type.shape:
        return src.ins[0]
    if code == "trunc" and src.opcode == "mul" and len(src.ins) == 2:
        bits = op.attrs.get("bits")
        for x, c in ((src.ins[0], src.ins[1]), (src.ins[1], src.ins[0])):
            if c.type.scale == bits and _all(consts, c, 1 << bits):
                return x
    return None


def _rewrite(op: Op, consts: dict[int, np.ndarray], defs: dict[int, Op], uses: dict[int, int]) -> Op | None:
    """0 - x is neg(x) when the types allow it; reshape(reshape(x)) is one reshape; a truncation of
    a product with a power of two truncates fewer bits instead; two truncations in a row are one."""
    if op.opcode == "sub" and _all(consts, op.ins[0], 0) and op.ins[1].type == op.out.type:
        return Op("neg", list(op.outs), [op.ins[1]], {}, op.span)
    src = defs.get(op.ins[0].id) if op.ins else None
    if op.opcode == "reshape" and src is not None and src.opcode == "reshape":
        return Op("reshape", list(op.outs), [src.ins[0]], dict(op.attrs), op.span)
    if op.opcode == "trunc" and src is not None:
        bits = op.attrs["bits"]
        if src.opcode == "mul" and len(src.ins) == 2:  # (x * 2^j) >> bits == x >> (bits - j)
            for x, c in ((src.ins[0], src.ins[1]), (src.ins[1], src.ins[0])):
                j = _power_of_two(consts, c)
                if j is not None and 0 < j < bits and x.type.vis == src.out.type.vis and x.type.shape == op.out.type.shape:
                    return Op("trunc", list(op.outs), [x], {"bits": bits - j}, op.span)
        if src.opcode == "trunc" and uses.get(src.out.id) == 1:  # floor(floor(x/2^a)/2^b) == floor(x/2^(a+b))
            return Op("trunc", list(op.outs), [src.ins[0]], {"bits": bits + src.attrs["bits"]}, op.span)
    return None


def _power_of_two(consts: dict[int, np.ndarray], v: Value) -> int | None:
    """j if v is a positive scalar constant equal to 2^j in the ring."""
    c = consts.get(v.id)
    if c is None or np.size(c) != 1:
        return None
    k = int(np.asarray(c).reshape(-1)[0])
    if k <= 0 or k >= 1 << 62 or k & (k - 1):
        return None
    return k.bit_length() - 1
