"""Common-subexpression elimination: a pure op equal to an earlier one reuses its result.

Scopes follow the IR's: a loop body sees the values computed before the loop in the blocks that
enclose it, so a recomputation inside a loop body can reuse them; nothing is hoisted out of a loop.
Communication kernels (share, reveal, ...) are pure here too: sharing one value twice is one share.
"""
from __future__ import annotations

from ..ir import Block, Program, Value
from .util import clone, op_key, rename_inputs, resolve


def cse(prog: Program) -> Program:
    """Replace every pure op that repeats an available equal op by that op's result."""
    prog = clone(prog)
    repl: dict[int, Value] = {}
    _cse_block(prog.body, [{}], repl)
    return prog


def _cse_block(block: Block, scopes: list[dict], repl: dict[int, Value]) -> None:
    kept = []
    for op in block.ops:
        rename_inputs(op, repl)
        if op.body is not None:
            _cse_block(op.body, scopes + [{}], repl)
            kept.append(op)
            continue
        key = op_key(op)
        if key is not None:
            same = next((s[key] for s in reversed(scopes) if key in s), None)
            if same is not None:
                repl[op.out.id] = same
                continue
            scopes[-1][key] = op.out
        kept.append(op)
    block.ops = kept
    block.results = [resolve(repl, v) for v in block.results]
