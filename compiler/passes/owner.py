"""Arithmetic on one party's data alone happens at that party, before its value is shared.

A private value that is shared and then only scaled, truncated, sliced or summed costs a protocol
kernel for each of those steps on the sharing (a secret truncation is 2 rounds), although its owner
could compute them in clear:

  op(share(p), public...)   ->  share(op(p, public...))     p private(P), op arithmetic

for a pure linear or bilinear op, or a truncation, whose data operands are shares of P's values or
public. Each share must be read by the op alone and sit in the op's block (a share before a loop
stays there, not once per trip), and the op may not have more elements than the shares it reads
(the owner never sends more than before). The result is ready no later: one sharing round after p
instead of one plus the op's rounds, and in clear a truncation is an exact floor (within the
secret one's unit of error). Most such ops are the compiler's own: the labels' scaling in a
gradient step (`c * y` after `distribute_constants`) becomes bob's own product and floor.

Comparisons and order functions stay on the sharing: `secret(x)` shares now (LANGUAGE.md §5),
and a program that wants `sort(x)` at x's owner writes it on the private x.
"""
from __future__ import annotations

import numpy as np

from veil.runtime.ops import OPS

from ..capabilities import Capabilities
from ..ir import Block, Op, Program
from ..types import PUBLIC, SECRET, owner, private
from .util import pure, rewrite_blocks


def compute_at_owner(prog: Program) -> Program:
    """Move each share of private data past the ops that only its owner's data feeds."""
    return rewrite_blocks(prog, _block)


def _block(prog: Program, block: Block, uses: dict[int, int], consts: dict[int, np.ndarray],
           caps: Capabilities) -> None:
    """One pass over the block in order, so a share moves on through a chain of such ops."""
    shares: dict[int, Op] = {}  # this block's shares of private values, by result id
    ops: list[Op] = []
    for op in block.ops:
        moved = _move(prog, op, shares, uses)
        ops.extend([op] if moved is None else moved)
        last = ops[-1]
        if last.opcode == "share" and owner(last.ins[0].type.vis) is not None:
            shares[last.out.id] = last
    block.ops = ops  # a share left unread goes in dce


def _move(prog: Program, op: Op, shares: dict[int, Op], uses: dict[int, int]) -> list[Op] | None:
    """[op on the owner's values, the share of its result] when op qualifies (module doc); else None."""
    d = OPS.get(op.opcode)
    if d is None or not pure(op) or d.identity or len(op.outs) != 1 or op.out.type.vis != SECRET:
        return None
    if not (d.linear or d.bilinear or op.opcode == "trunc"):
        return None
    party, inputs, read = None, [], 0
    for k, v in enumerate(op.ins):
        share = shares.get(v.id)
        if v.type.vis == PUBLIC or k in d.index_operands:
            inputs.append(v)
        elif share is None or uses.get(v.id) != 1 or party not in (None, share.attrs["owner"]):
            return None
        else:
            party = share.attrs["owner"]
            inputs.append(share.ins[0])
            read += v.type.size
    if party is None or op.out.type.size > read:
        return None
    clear = prog.new_value(op.out.type.with_(vis=private(party)))
    for v in op.ins:
        if v.id in shares:
            uses[v.id] = 0
    uses[clear.id] = 1
    return [Op(op.opcode, [clear], inputs, dict(op.attrs), op.span),
            Op("share", [op.out], [clear], {"owner": party}, op.span)]
