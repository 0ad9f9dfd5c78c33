"""Masks opened once for loop-invariant operands: a Beaver product inside a loop opens x - a for a
fresh a on every trip, although x (the training data, a slice of it, its transpose) does not
change. Where the protocol declares a `mask_kernel`, a secret defined outside the loop that such
products read is opened once under a mask before the loop, and the products take the masked
value instead (the protocol's `maskable` kernels, with `masked` naming the operand), so each trip
opens only the other operand. Slices, transposes and reshapes between the value and the product
are mirrored on the masked value (runtime/masked.py); the originals go when nothing else reads them.

A step on one loop body's lowered instructions; it asks the protocol's declarations
(compiler/capabilities.py) and never names a protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from veil.runtime.bytecode import MASKED
from veil.runtime.ops import OPS

from .capabilities import Capabilities
from .ir import Value
from .types import PUBLIC, SECRET

Home = Callable[[Value], "tuple[list, int] | None"]  # outer value -> (its block's list, trips between)


@dataclass
class MaskSite:
    """What a body's rewrite needs from the lowering."""

    caps: Capabilities
    uses: dict[int, int]                  # each value's uses in the IR
    home: Home
    new_value: Callable[[Value], Value]
    kernel: Callable[..., object]         # (name, out, ins, attrs, pos) -> a costed kernel instruction
    op: Callable[..., object]             # (name, out, ins, attrs, pos, sec) -> a local instruction
    masks: dict[int, tuple[list, Value]] = field(default_factory=dict)  # outer value id -> (the list holding
    # its mask kernel, the masked value): one mask per value, unless that block is lowered again
    values: set[int] = field(default_factory=set)          # every masked value's id (two arrays a party)


def hoist_masks(items: list, site: MaskSite) -> None:
    """Rewrite one loop body's instructions in place (see the module docstring)."""
    if site.caps.mask_kernel is None:
        return
    defined = {it.out.id: k for k, it in enumerate(items) if it.out is not None}
    uses_of: dict[int, tuple[Value, list[tuple[int, int, list[int]]]]] = {}  # root id -> (root, [(kernel, operand, chain)])
    for k, it in enumerate(items):
        if it.kind != "kernel" or not site.caps.takes_masked(it.name):
            continue
        for j in range(min(2, len(it.ins))):
            found = _chain(items, defined, it.ins[j], site)
            if found is not None:
                root, chain = found
                uses_of.setdefault(root.id, (root, []))[1].append((k, j, chain))
    mirrored: dict[int, Value] = {}
    after: dict[int, list] = {}
    rewired: dict[int, dict[int, Value]] = {}
    for rid, (root, found) in uses_of.items():
        home = site.home(root)
        if home is None or (site.masks.get(rid, (None,))[0] is not home[0] and len(found) * home[1] < 2):
            continue  # opened once either way: a mask would only add its round
        mask = _mask_of(root, home[0], items[found[0][0]].pos, site)
        for k, j, chain in found:
            value = mask
            for at in chain:
                value = _mirror(items[at], value, at, mirrored, after, site)
            rewired.setdefault(k, {})[j] = value
    if not rewired:
        return
    lost: dict[int, int] = {}
    for k, by in rewired.items():
        it = items[k]
        ins = [by.get(j, v) for j, v in enumerate(it.ins)]
        for j in by:
            lost[it.ins[j].id] = lost.get(it.ins[j].id, 0) + 1
        items[k] = site.kernel(it.name, it.out, ins, {**it.attrs, "masked": tuple(sorted(by))}, it.pos)
    dead = _dead(items, set(after), lost, site.uses)
    out: list = []
    for k, it in enumerate(items):
        if k not in dead:
            out.append(it)
        out.extend(after.get(k, []))
    items[:] = out


def _chain(items: list, defined: dict[int, int], v: Value, site: MaskSite) -> tuple[Value, list[int]] | None:
    """(root, positions of the ops from it to v) when v is a mirrorable image of a secret defined
    outside this body; None otherwise."""
    chain: list[int] = []
    while v.id in defined:
        at = defined[v.id]
        it = items[at]
        data = _data_operand(it)
        if data is None:
            return None
        chain.append(at)
        v = data
    if v.type.vis != SECRET or v.type.kind != "arith" or site.home(v) is None:
        return None
    return v, chain[::-1]


def _data_operand(it: object) -> Value | None:
    """The one secret operand of a linear local op that applies to a masked value's parts alike
    (its other operands public indices: a slice's start), or None."""
    if it.kind != "op" or it.out is None or it.out.type.vis != SECRET or it.name not in OPS:
        return None
    spec = OPS[it.name]
    if not spec.linear or any(s not in (0, 1) for s in it.sec):
        return None
    data = [v for j, v in enumerate(it.ins) if j not in spec.index_operands]
    index = [v for j, v in enumerate(it.ins) if j in spec.index_operands]
    if len(data) != 1 or data[0].type.vis != SECRET or any(v.type.vis != PUBLIC for v in index):
        return None
    return data[0]


def _mask_of(root: Value, outer: list, pos: object, site: MaskSite) -> Value:
    """The root's masked value, its mask kernel placed at the end of the root's block so far (just
    before the loop being lowered, at the first product's position); one per root for the program."""
    held = site.masks.get(root.id)
    if held is not None and held[0] is outer:
        return held[1]
    known = site.new_value(root)
    site.masks[root.id] = (outer, known)
    site.values.add(known.id)
    outer.append(site.kernel(site.caps.mask_kernel, known, [root], {}, pos))
    if held is None:  # the mask reads the value (once, however often its block is lowered)
        site.uses[root.id] = site.uses.get(root.id, 0) + 1
    return known


def _mirror(it: object, value: Value, at: int, mirrored: dict[int, Value], after: dict[int, list],
            site: MaskSite) -> Value:
    """The op at `at` applied to a masked operand, placed right after it (once per body)."""
    if it.out.id in mirrored:
        return mirrored[it.out.id]
    spec = OPS[it.name]
    out = mirrored[it.out.id] = site.new_value(it.out)
    site.values.add(out.id)
    ins = [value if j not in spec.index_operands else v for j, v in enumerate(it.ins)]
    sec = [MASKED if j not in spec.index_operands else 0 for j in range(len(it.ins))]
    after.setdefault(at, []).append(site.op(it.name, out, ins, dict(it.attrs), it.pos, sec))
    return out


def _dead(items: list, chain_ops: set[int], lost: dict[int, int], uses: dict[int, int]) -> set[int]:
    """The mirrored ops' originals that nothing reads any more (every IR use of their output was a
    read the masked values took over)."""
    dead: set[int] = set()
    changed = True
    while changed:
        changed = False
        for k in chain_ops - dead:
            it = items[k]
            if uses.get(it.out.id, 0) - lost.get(it.out.id, 0) <= 0:
                dead.add(k)
                for v in it.ins:
                    lost[v.id] = lost.get(v.id, 0) + 1
                changed = True
    return dead
