"""Helpers shared by the optimization passes: copying IR, counting uses, keys for equal ops."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from veil.runtime.ops import OPS

from ..capabilities import Capabilities
from ..ir import Block, Op, Program, Value

def pure(op: Op) -> bool:
    """Whether the op's result depends on its inputs and attributes only, with no effect (registry);
    an opcode nobody registered is left alone by every pass."""
    d = OPS.get(op.opcode)
    return d is not None and d.pure and op.body is None


def clone_block(block: Block) -> Block:
    """A copy of a block with new Op objects (Values and attribute arrays are shared, never mutated)."""
    ops = [Op(op.opcode, list(op.outs), list(op.ins), dict(op.attrs), op.span,
              clone_block(op.body) if op.body is not None else None) for op in block.ops]
    return Block(ops, list(block.params), list(block.results))


def clone(prog: Program) -> Program:
    """A copy of the program that a pass may rewrite without touching its input."""
    return dataclasses.replace(prog, body=clone_block(prog.body))


def use_counts(block: Block, counts: dict[int, int] | None = None) -> dict[int, int]:
    """How often each value is read: as an op input anywhere, or as a loop body's result."""
    counts = {} if counts is None else counts
    for op in block.ops:
        for v in op.ins:
            counts[v.id] = counts.get(v.id, 0) + 1
        if op.body is not None:
            use_counts(op.body, counts)
            for v in op.body.results:
                counts[v.id] = counts.get(v.id, 0) + 1
    return counts


def resolve(repl: dict[int, Value], v: Value) -> Value:
    """Follow a replacement chain to the value that stands for v now."""
    while v.id in repl:
        v = repl[v.id]
    return v


def rename_inputs(op: Op, repl: dict[int, Value]) -> None:
    """Point an op's inputs at their replacements."""
    if repl:
        op.ins = [resolve(repl, v) for v in op.ins]


def freeze(x: Any) -> Any:
    """A hashable stand-in for an attribute value (arrays by dtype, shape and bytes)."""
    if isinstance(x, np.ndarray):
        return ("nd", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, (list, tuple)):
        return ("seq", tuple(freeze(i) for i in x))
    if isinstance(x, dict):
        return ("map", tuple(sorted((k, freeze(v)) for k, v in x.items())))
    if isinstance(x, np.generic):
        return x.item()
    hash(x)
    return x


def op_key(op: Op) -> tuple | None:
    """Two pure ops with equal keys compute the same values; None if the op has no usable key."""
    if not pure(op) or len(op.outs) != 1:
        return None
    ids = [v.id for v in op.ins]
    if OPS[op.opcode].commutative and len(ids) == 2 and op.ins[0].type == op.ins[1].type:
        ids.sort()
    try:
        attrs = freeze(op.attrs)
    except TypeError:
        return None
    return (op.opcode, tuple(ids), attrs, tuple(v.type for v in op.outs))


def const_values(block: Block, out: dict[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
    """The ring value of every `const` in the program, by value id."""
    out = {} if out is None else out
    for op in block.ops:
        if op.opcode == "const":
            out[op.out.id] = op.attrs["value"]
        if op.body is not None:
            const_values(op.body, out)
    return out


def op_count(block: Block) -> int:
    """How many ops a block holds, nested bodies included."""
    return sum(1 + (op_count(op.body) if op.body is not None else 0) for op in block.ops)


BlockRewrite = Callable[[Program, Block, dict[int, int], dict[int, np.ndarray], Capabilities], None]


def rewrite_blocks(prog: Program, rewrite: BlockRewrite) -> Program:
    """A copy of the program with `rewrite(prog, block, uses, consts, caps)` applied to every block,
    loop bodies before the block that holds them (for passes that rewrite a block in place)."""
    prog = clone(prog)
    caps = Capabilities.of(prog)
    uses, consts = use_counts(prog.body), const_values(prog.body)

    def visit(block: Block) -> None:
        for op in block.ops:
            if op.body is not None:
                visit(op.body)
        rewrite(prog, block, uses, consts, caps)
    visit(prog.body)
    return prog
