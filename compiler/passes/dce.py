"""Dead-code elimination: drop pure ops nobody reads, loop-carried values nobody needs, idle loops.

Effects are kept: `output`, `input` (the runtime still checks the party's file), and secret ops
the program's protocol cannot compute as they stand (so errors do not depend on -O).
A loop-carried value is dead when its result after the loop is unused and nothing live inside the
body reads it; a loop left with no live carried value and no effect goes.
A carried value the body passes through unchanged is replaced by its initial value.
"""
from __future__ import annotations

from ..capabilities import Capabilities
from ..ir import Block, Op, Program, Value
from ..types import SECRET
from .util import clone, pure, rename_inputs, resolve


def dce(prog: Program) -> Program:
    """Remove what does not contribute to an effect."""
    prog = clone(prog)
    repl: dict[int, Value] = {}
    _forward_invariants(prog.body, repl)
    _sweep(prog.body, set(), Capabilities.of(prog))
    return prog


def _forward_invariants(block: Block, repl: dict[int, Value]) -> None:
    """A carried value whose body result is its own parameter is the initial value throughout."""
    for op in block.ops:
        rename_inputs(op, repl)
        if op.body is None:
            continue
        body = op.body
        keep = []
        for i, (p, r) in enumerate(zip(body.params[1:], body.results)):
            if r is p and op.ins[i].type == p.type:
                repl[p.id] = op.ins[i]
                repl[op.outs[i].id] = op.ins[i]
            else:
                keep.append(i)
        if len(keep) != len(body.results):
            _drop_carried(op, keep)
        _forward_invariants(body, repl)
        body.results = [resolve(repl, v) for v in body.results]


def _drop_carried(op: Op, keep: list[int]) -> None:
    body = op.body
    body.params = [body.params[0]] + [body.params[1 + i] for i in keep]
    body.results = [body.results[i] for i in keep]
    op.ins = [op.ins[i] for i in keep]
    op.outs = [op.outs[i] for i in keep]


def _is_effect(op: Op, caps: Capabilities) -> bool:
    """Effects, and secret ops the protocol cannot compute as they stand (kept so the lowering
    still reports them whatever the optimization level)."""
    if op.body is None and not pure(op):
        return True
    return any(v.type.vis == SECRET for v in op.outs) and not caps.computes(op)


def _scan(block: Block, live: set[int], caps: Capabilities) -> bool:
    """Liveness without changing anything: `live` (values needed after the block) gains what the
    block's needed ops read. Returns whether the block holds an effect."""
    effect = False
    for op in reversed(block.ops):
        if op.opcode == "loop":
            needed, loop_effect, reads = _loop_needs(op, live, caps)
            if needed or loop_effect:
                effect = effect or loop_effect
                live.update(v.id for i, v in enumerate(op.ins) if i in needed)
                live.update(reads)
            continue
        if _is_effect(op, caps) or any(v.id in live for v in op.outs):
            effect = effect or _is_effect(op, caps)
            live.update(v.id for v in op.ins)
    return effect


def _loop_needs(op: Op, live: set[int], caps: Capabilities) -> tuple[set[int], bool, set[int]]:
    """The carried positions a loop must keep (to a fixpoint through its body), whether its body
    has an effect, and the outer values the kept body reads."""
    body = op.body
    needed = {i for i, o in enumerate(op.outs) if o.id in live}
    while True:
        inner = {body.results[i].id for i in needed}
        effect = _scan(body, inner, caps)
        more = {i for i, p in enumerate(body.params[1:]) if p.id in inner} - needed
        if not more:
            break
        needed |= more
    own = {p.id for p in body.params}
    return needed, effect, {v for v in inner if v not in own}


def _sweep(block: Block, live: set[int], caps: Capabilities) -> None:
    """Backward pass that drops what `_scan` finds dead; `live` gains what the kept ops read."""
    kept: list[Op] = []
    for op in reversed(block.ops):
        if op.opcode == "loop":
            needed, effect, reads = _loop_needs(op, live, caps)
            if not needed and not effect:
                continue
            _drop_carried(op, sorted(needed))
            _sweep(op.body, {v.id for v in op.body.results}, caps)
            live.update(v.id for v in op.ins)
            live.update(reads)
            kept.append(op)
            continue
        if _is_effect(op, caps) or any(v.id in live for v in op.outs):
            kept.append(op)
            live.update(v.id for v in op.ins)
    kept.reverse()
    block.ops = kept
