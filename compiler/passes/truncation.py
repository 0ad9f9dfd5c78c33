"""Lazy truncation placement: truncate sums of double-scale products once, not each product.

The builder truncates right after every double-scale product. This pass moves truncations later
through linear ops, so several truncations become one:
  trunc(a) + trunc(b)  ->  trunc(a + b)        (same bits; each trunc read only there)
  sum(trunc(x))        ->  trunc(sum(x))
  trunc(a) + c         ->  trunc(a + (c << bits))   (as part of a bigger saving only)
and through neg, slice, dslice, concat, stack, transpose and reshape. A group is moved only if the
truncated elements strictly decrease, and no step may enlarge the tensor, so the result never has
more truncations than the naive placement. Anything else that reads a pending value (products,
comparisons, outputs, share/reveal, loop results, ops in another block) gets it truncated.

A full sum of an elementwise product of two secrets, sum(trunc(a * b)), becomes a (1,n)@(n,1)
matrix product: its truncation is fused with the multiplication into one 2-round kernel.

Range: the deferred value has the double scale; the protocols truncate exactly within one unit
for magnitudes below 2^62, so a sum of double-scale products must stay below 2^62 (docs/optimizer.md).
"""
from __future__ import annotations

from veil.runtime.ops import OPS

from ..capabilities import Capabilities
from ..rounds import fusion, ready_times
from ..ir import Block, Op, Program, Value
from ..types import SECRET
from .util import clone, use_counts


def place_truncations(prog: Program) -> Program:
    """Dot products as matrix products, then truncations moved as late as saves work."""
    prog = dot_products(prog)
    _sink(prog, prog.body, use_counts(prog.body), Capabilities.of(prog))
    return prog


def dot_products(prog: Program) -> Program:
    """sum(trunc(a * b)) of two secrets as a fused (1,n)@(n,1) product (run before CSE, which
    could otherwise give a * b a second reader)."""
    prog = clone(prog)
    _dots(prog, prog.body, use_counts(prog.body))
    return prog


# ---- sum(a * b) over two secrets: one fused matrix product ----------------------------------
def _dots(prog: Program, block: Block, uses: dict[int, int]) -> None:
    defs = {op.out.id: op for op in block.ops if len(op.outs) == 1}
    dead: set[int] = set()
    ops: list[Op] = []
    for op in block.ops:
        if op.body is not None:
            _dots(prog, op.body, uses)
        found = _dot_pattern(op, defs, uses)
        if found is None:
            ops.append(op)
            continue
        t, m = found
        dead.update((t.out.id, m.out.id))
        ops.extend(_as_matmul(prog, op, t, m))
    block.ops = [op for op in ops if not (len(op.outs) == 1 and op.out.id in dead)]


def _dot_pattern(op: Op, defs: dict[int, Op], uses: dict[int, int]) -> tuple[Op, Op] | None:
    if op.opcode != "sum" or op.attrs.get("axis") is not None or op.out.type.vis != SECRET:
        return None
    t = defs.get(op.ins[0].id)
    if t is None or t.opcode != "trunc" or uses.get(t.out.id) != 1:
        return None
    m = defs.get(t.ins[0].id)
    if m is None or m.opcode != "mul" or uses.get(m.out.id) != 1 or len(m.ins) != 2:
        return None
    a, b = m.ins
    if a.type.vis != SECRET or b.type.vis != SECRET or not (a.type.shape == b.type.shape == m.out.type.shape):
        return None
    if op.out.type != t.out.type.with_(shape=()):
        return None
    return t, m


def _as_matmul(prog: Program, s: Op, t: Op, m: Op) -> list[Op]:
    n = m.out.type.size
    a, b = m.ins
    ops: list[Op] = []

    def reshape(v: Value, shape: tuple[int, ...]) -> Value:
        if v.type.shape == shape:
            return v
        out = prog.new_value(v.type.with_(shape=shape))
        ops.append(Op("reshape", [out], [v], {"shape": shape}, s.span))
        return out

    a2, b2 = reshape(a, (1, n)), reshape(b, (n, 1))
    mm = prog.new_value(m.out.type.with_(shape=(1, 1)))
    ops.append(Op("matmul", [mm], [a2, b2], {}, m.span))
    tt = prog.new_value(t.out.type.with_(shape=(1, 1)))
    ops.append(Op("trunc", [tt], [mm], dict(t.attrs), t.span))
    ops.append(Op("reshape", [s.out], [tt], {"shape": ()}, s.span))
    return ops


# ---- sinking truncations ---------------------------------------------------------------------
def _positions(op: Op) -> list[int]:
    """The inputs that carry the data (a dslice's start is an index)."""
    return OPS[op.opcode].data_operands(len(op.ins))


def _sink(prog: Program, block: Block, uses: dict[int, int], caps: Capabilities) -> None:
    for op in block.ops:
        if op.body is not None:
            _sink(prog, op.body, uses, caps)
    state: dict[int, tuple[int, int]] = {}  # value id -> (bits, truncated elements it stands for)
    plan: dict[int, tuple[list[int], int, int]] = {}  # op out id -> (pending positions, bits, leaves)
    for op in block.ops:
        if op.body is not None:
            state = {}  # never move a truncation across a loop (loops are scheduling barriers)
            continue
        if len(op.outs) != 1:
            continue
        if op.opcode == "trunc":
            state[op.out.id] = (op.attrs["bits"], op.out.type.size)
        elif OPS[op.opcode].linear and op.out.type.dtype == "fix":
            step = _candidate(op, state, uses)
            if step is not None:
                pend, bits, leaves = step
                state[op.out.id] = (bits, leaves)
                plan[op.out.id] = (pend, bits, leaves)
    absorbed = {op.ins[i].id for op in block.ops if len(op.outs) == 1 and op.out.id in plan
                for i in plan[op.out.id][0]}
    defs = {op.out.id: op for op in block.ops if len(op.outs) == 1}
    ready = ready_times(block, uses, caps)
    roots = [vid for vid, (_pend, _bits, leaves) in plan.items()
             if vid not in absorbed and leaves > defs[vid].out.type.size
             and _lazy_ready(vid, plan, defs, ready, uses, caps) <= ready[vid] + MAX_DELAY]
    if roots:
        _rewrite(prog, block, plan, roots)


# ---- the round model used to decide (compiler/rounds.py) -----------------------------------
# A product whose truncation moves past single-use linear ops stays in additive shares (the
# lowering's sums-of-products), so the moved truncation costs no extra round; allow at most one
# for the cases the lowering cannot keep additive.
MAX_DELAY = 1


def _lazy_ready(vid: int, plan: dict, defs: dict[int, Op], ready: dict[int, int], uses: dict[int, int],
                caps: Capabilities) -> int:
    """When the root's value would be available with its truncation moved to it."""
    op = defs[vid]
    moved = Op("trunc", [op.out], [op.out], {"bits": plan[vid][1]}, op.span)
    kernel = caps.kernel_of(moved)
    return _raw_ready(vid, plan, defs, ready, uses, caps) + (caps.rounds(kernel, moved) if kernel else 0)


def _raw_ready(vid: int, plan: dict, defs: dict[int, Op], ready: dict[int, int], uses: dict[int, int],
               caps: Capabilities) -> int:
    op = defs[vid]
    if vid not in plan:  # a truncation that disappears: its input, unfused
        if fusion(op, defs, uses, caps, ready) is not None:  # kept as additive shares up to the moved truncation
            return max((ready.get(v.id, 0) for v in defs[op.ins[0].id].ins), default=0)
        return ready.get(op.ins[0].id, 0)
    pend = plan[vid][0]
    times = [_raw_ready(op.ins[i].id, plan, defs, ready, uses, caps) if i in pend else ready.get(op.ins[i].id, 0)
             for i in _positions(op)]
    return max(times, default=0)


def _candidate(op: Op, state: dict, uses: dict[int, int]) -> tuple[list[int], int, int] | None:
    """(pending positions, bits, truncated elements) if op can compute on untruncated inputs."""
    pos = _positions(op)
    pend = [i for i in pos if op.ins[i].id in state and uses.get(op.ins[i].id) == 1]
    if not pend:
        return None
    bits = {state[op.ins[i].id][0] for i in pend}
    if len(bits) != 1:
        return None
    if len(pend) != len(pos) and not OPS[op.opcode].linear:
        return None
    if any(op.ins[i].type.scale != op.out.type.scale for i in pos):
        return None
    if op.out.type.size > sum(op.ins[i].type.size for i in pend):
        return None
    return pend, bits.pop(), sum(state[op.ins[i].id][1] for i in pend)


def _rewrite(prog: Program, block: Block, plan: dict, roots: list[int]) -> None:
    defs = {op.out.id: op for op in block.ops if len(op.outs) == 1}
    moved: set[int] = set()  # ops computed on untruncated values (by out id)
    leaves: set[int] = set()  # truncations that disappear
    todo = list(roots)
    while todo:
        vid = todo.pop()
        if vid in plan:
            moved.add(vid)
            todo.extend(defs[vid].ins[i].id for i in plan[vid][0])
        else:
            leaves.add(vid)
    root_set = set(roots)
    raw: dict[int, Value] = {}
    ops: list[Op] = []
    for op in block.ops:
        vid = op.out.id if len(op.outs) == 1 else None
        if vid in leaves:
            raw[vid] = op.ins[0]
            continue
        if vid not in moved:
            ops.append(op)
            continue
        pend, bits, _leaves = plan[vid]
        ins = list(op.ins)
        for i in _positions(op):
            if i in pend:
                ins[i] = raw[op.ins[i].id]
            else:
                up = prog.new_value(op.ins[i].type.with_(scale=op.ins[i].type.scale + bits))
                ops.append(Op("lshift", [up], [op.ins[i]], {"bits": bits}, op.span))
                ins[i] = up
        out = prog.new_value(op.out.type.with_(scale=op.out.type.scale + bits))
        ops.append(Op(op.opcode, [out], ins, dict(op.attrs), op.span))
        if vid in root_set:
            ops.append(Op("trunc", [op.out], [out], {"bits": bits}, op.span))
        else:
            raw[vid] = out
    block.ops = ops
