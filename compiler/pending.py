"""Truncations left pending: a truncating kernel whose output reaches an elementwise product or a
truncation stops after its first round, and those kernels take the pending output (the protocol's
`pending_kernels` variants), also through linear ops on the way (`pending_local`: a sum with a
sharing where the protocol's `pending_mixed` allows it, a product with a public value). A `finish`
gives the sharing to the other consumers. The taker's round then runs beside the finish instead
of after it (rep3: the truncation's round 2, runtime/protocols/rep3_pending.py), or without the
Beaver round a product of sharings needs (dealer2, runtime/protocols/dealer2_pending.py), so a
chain of products with truncations waits on one round per product. Where sharings cannot join a
pending value, a truncation's output plus a sharing is first rewritten as the truncation of the
sum (the kernel's `addend`), so that a bias does not end the chain.

A step on one block's lowered instructions; it asks the protocol's declarations
(compiler/capabilities.py) and never names a protocol.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from veil.runtime.bytecode import PENDING

from .capabilities import Capabilities
from .ir import Value
from .schedule import Round, flat_rounds
from .types import PUBLIC, SECRET


def keep_pending(items: list, caps: Capabilities, uses: dict[int, int], new_value: Callable[[Value], Value],
                 kernel: Callable[..., object]) -> None:
    """Rewrite `items` (one block's instructions) in place. `uses`: each value's uses in the IR (to
    tell whether anything but the takers reads it); `new_value(v)`: a fresh value of v's type;
    `kernel(name, out, ins, attrs, pos)`: a costed kernel instruction."""
    if caps.pending_finish is None:
        return
    if not caps.pending_mixed:
        _absorb_sums(items, caps, uses, kernel)
    root = _derived(items, caps)  # value id -> the kept truncation it is a linear function of
    takers = {k for k, it in enumerate(items) if _takes(it, caps, root)}
    kept = {root[v.id] for k in takers for v in items[k].ins if v.id in root}
    if not kept:
        return
    outs = {it.out.id: it.out for it in items if it.out is not None}
    pend = {vid: new_value(outs[vid]) for vid, r in root.items() if r in kept}
    taken: dict[int, int] = {}
    for k in takers:
        for v in items[k].ins:
            taken[v.id] = taken.get(v.id, 0) + (v.id in pend)
    closure = {k for k, it in enumerate(items) if it.kind == "op" and it.out is not None and it.out.id in pend
               and root[it.out.id] != it.out.id}
    for k in closure:
        for v in items[k].ins:
            taken[v.id] = taken.get(v.id, 0) + (v.id in pend)
    needed = _needed(items, closure, {vid for vid in pend if uses.get(vid, 0) > taken.get(vid, 0)}, pend)
    out: list = []
    for k, it in enumerate(items):
        if k in closure:
            if it.out.id in needed:
                out.append(it)
            out.append(replace(it, out=pend[it.out.id], ins=[pend.get(v.id, v) for v in it.ins],
                               sec=[PENDING if v.id in pend else int(v.type.vis == SECRET) for v in it.ins]))
            continue
        if k in takers and any(v.id in pend for v in it.ins):
            it = _taker(it, caps, pend, kernel)
        if it.kind == "kernel" and it.out is not None and it.out.id in kept:
            v = it.out
            out.append(kernel(it.name, pend[v.id], list(it.ins), {**it.attrs, "keep": True}, it.pos))
            if v.id in needed:
                out.append(kernel(caps.pending_finish, v, [pend[v.id]], {}, it.pos))
        else:
            out.append(it)
    items[:] = out


def _absorb_sums(items: list, caps: Capabilities, uses: dict[int, int], kernel: Callable[..., object]) -> None:
    """Where a sharing cannot join a pending value, a truncation's output plus (or minus) a
    sharing s becomes the truncation of its input plus s * 2^bits, exactly the same value
    (floor((a + s 2^m) / 2^m) = floor(a / 2^m) + s), computed by the kernel (its `addend`
    operand), so the sum is pending itself: a bias added to a product before a square. Only where
    the truncation's output has no other reader and s is defined before it (nothing waits longer)."""
    defined = {it.out.id: k for k, it in enumerate(items) if it.out is not None}
    for k, it in enumerate(items):
        if it.kind != "op" or it.name not in ("add", "sub") or len(it.ins) != 2 or it.out.type.vis != SECRET:
            continue
        for j, v in enumerate(it.ins):
            other = it.ins[1 - j]
            at = defined.get(v.id)
            if at is None or (it.name == "sub" and j == 1) or other.type.vis != SECRET or other.id == v.id \
                    or not (other.type.scale == v.type.scale == it.out.type.scale and other.type.kind == v.type.kind):
                continue
            src = items[at]
            if src is None or src.kind != "kernel" or not caps.takes_addend(src.name) or "addend_sign" in src.attrs \
                    or uses.get(v.id) != 1 \
                    or v.type.shape != it.out.type.shape or _waits_on_kernel(items, defined, other, at) \
                    or any(_kept(items, defined, u, caps) for u in src.ins):
                continue
            attrs = {**src.attrs, "addend_sign": -1 if it.name == "sub" else 1}
            items[k] = kernel(src.name, it.out, [*src.ins, other], attrs, src.pos)
            items[at] = None
            break
    items[:] = [it for it in items if it is not None]


def _kept(items: list, defined: dict[int, int], v: Value, caps: Capabilities) -> bool:
    """Whether v is a keepable kernel's output: its reader may take it pending, which comes first."""
    k = defined.get(v.id)
    return k is not None and items[k] is not None and items[k].kind == "kernel" and caps.keeps(items[k].name)


def _waits_on_kernel(items: list, defined: dict[int, int], v: Value, at: int) -> bool:
    """Whether v depends on a kernel placed after items[at] (through local ops): then the merged
    kernel would start later than the truncation did."""
    todo, seen = [v], set()
    while todo:
        u = todo.pop()
        k = defined.get(u.id)
        if k is None or k < at or u.id in seen:
            continue
        seen.add(u.id)
        if items[k] is None or items[k].kind != "op":
            return True
        todo.extend(items[k].ins)
    return False


def pending_values(items: list, out: set[int] | None = None) -> set[int]:
    """The ids of the pending values in scheduled code (kept outputs, pending linear ops), for the
    register allocator: a pending value holds three arrays per share component."""
    out = set() if out is None else out
    for it in flat_rounds(items):
        if isinstance(it, Round):
            continue
        if it.out is not None and (it.attrs.get("keep") or PENDING in (it.sec or ())):
            out.add(it.out.id)
        if it.loop is not None:
            pending_values(it.loop.body, out)
    return out


def _derived(items: list, caps: Capabilities) -> dict[int, int]:
    """Values that are a keepable truncation's output or a pending-preserving linear op of exactly
    one such value (the op's other operands public, or sharings where the protocol allows and the
    op is not a product): id -> root."""
    root: dict[int, int] = {}
    for it in items:
        if it.out is None:
            continue
        if it.kind == "kernel" and caps.keeps(it.name):
            root[it.out.id] = it.out.id
        elif it.kind == "op" and caps.pending_local(it.name) and it.ins:
            roots = [root[v.id] for v in it.ins if v.id in root]
            shapes = all(v.type.shape == it.out.type.shape for v in it.ins if v.id in root)
            others = [v.type.vis for v in it.ins if v.id not in root]
            plain = all(vis == PUBLIC or (vis == SECRET and it.name != "mul" and caps.pending_mixed) for vis in others)
            if len(roots) == 1 and shapes and plain and it.out.type.vis == SECRET:
                root[it.out.id] = roots[0]
    return root


def _takes(it: object, caps: Capabilities, root: dict[int, int]) -> bool:
    """A kernel with a pending variant, elementwise, with a pending operand (every operand, where
    the protocol's pending values do not meet sharings)."""
    if it.kind != "kernel" or caps.pending_kernel(it.name) is None or it.out is None or "addend_sign" in it.attrs:
        return False
    if any(v.type.shape != it.out.type.shape for v in it.ins):
        return False
    if not caps.pending_mixed:  # every operand pending (a square, or two pending values)
        return all(v.id in root for v in it.ins)
    return any(v.id in root for v in it.ins)


def _needed(items: list, closure: set[int], read: set[int], pend: dict[int, Value]) -> set[int]:
    """The pending values whose sharing something else reads, and what computing it needs: a
    linear op kept as it was needs its own operands as sharings too."""
    ops = {items[k].out.id: items[k] for k in closure}
    needed: set[int] = set()
    todo = list(read)
    while todo:
        vid = todo.pop()
        if vid in needed:
            continue
        needed.add(vid)
        if vid in ops:
            todo.extend(v.id for v in ops[vid].ins if v.id in pend)
    return needed


def _taker(it: object, caps: Capabilities, pend: dict[int, Value], kernel: Callable[..., object]) -> object:
    """The kernel's pending variant; a product's pending operand first (the product commutes)."""
    ins = list(it.ins)
    if len(ins) == 2 and ins[0].id not in pend:
        ins.reverse()
    both = len(ins) == 2 and ins[1].id in pend and ins[1].id != ins[0].id
    attrs = {**it.attrs, "both": True} if both else dict(it.attrs)
    return kernel(caps.pending_kernel(it.name), it.out, [pend.get(v.id, v) for v in ins], attrs, it.pos)
