"""Truncations left pending: a truncating kernel whose output feeds an elementwise product stops
after its first round, the product takes the pending output (the protocol's `pending_mul`
variant), and a `finish` (the truncation's round 2) gives the sharing to the other consumers. The
product's round then runs beside the finish instead of after it, so a chain of products with
truncations waits on one round per product (runtime/protocols/rep3_pending.py).

A step on one block's lowered instructions; it asks the protocol's declarations
(compiler/capabilities.py) and never names a protocol.
"""
from __future__ import annotations

from typing import Callable

from .capabilities import Capabilities
from .ir import Value


def keep_pending(items: list, caps: Capabilities, uses: dict[int, int], new_value: Callable[[Value], Value],
                 kernel: Callable[..., object]) -> None:
    """Rewrite `items` (one block's instructions) in place. `uses`: each value's uses in the IR (if
    the products do not take them all, a finish is needed); `new_value(v)`: a fresh value of v's
    type; `kernel(name, out, ins, attrs, pos)`: a costed kernel instruction."""
    if caps.pending_finish is None:
        return
    products: dict[int, list[int]] = {}  # value id -> positions of the products that take it
    for k, it in enumerate(items):
        if it.kind == "kernel" and caps.pending_mul(it.name) is not None and _elementwise(it):
            for v in {v.id for v in it.ins}:
                products.setdefault(v, []).append(k)
    kept: dict[int, Value] = {}  # value id -> its pending value
    plain = sorted({k for ks in products.values() for k in ks})  # the products' positions
    finishes: list[tuple[int, object]] = []
    for k, it in enumerate(items):
        if it.kind != "kernel" or it.out is None or not caps.keeps(it.name) or it.out.id not in products:
            continue
        v = it.out
        kept[v.id] = new_value(v)
        items[k] = kernel(it.name, kept[v.id], list(it.ins), {**it.attrs, "keep": True}, it.pos)
        taken = sum(1 for c in products[v.id] for u in items[c].ins if u.id == v.id)
        if uses.get(v.id, 0) > taken:
            finishes.append((k, kernel(caps.pending_finish, v, [kept[v.id]], {}, it.pos)))
    for c in plain:
        use = items[c]  # the product, itself kept pending if a product takes it
        a, b = use.ins
        if a.id not in kept and b.id not in kept:
            continue
        if a.id not in kept:
            a, b = b, a  # the pending operand first (the product commutes)
        ins = [kept[a.id], kept.get(b.id, b)]
        both = b.id in kept and b.id != a.id
        items[c] = kernel(caps.pending_mul(use.name), use.out, ins, {**use.attrs, "both": both}, use.pos)
    for k, fin in reversed(finishes):
        items.insert(k + 1, fin)


def _elementwise(use: object) -> bool:
    """A product of two operands of its output's shape (no broadcasting)."""
    a, b = use.ins
    return a.type.shape == b.type.shape == use.out.type.shape
