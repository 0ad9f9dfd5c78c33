"""Expansions of the order operations: max/min/argmax/argmin as comparison trees over adjacent
pairs (so ties resolve to the first index, as numpy's), and sort as Batcher's odd-even merge
network — each network layer ONE batched compare-exchange, so a sort's rounds are its depth times
one comparison's."""
from __future__ import annotations

import numpy as np

from veil.runtime.ring import asring

from .expand import Emitter, expansion
from .ir import Op, Value
from .types import PUBLIC, Type, join_vis


def _flat(em: Emitter, x: Value, axis: int | None) -> tuple[Value, int]:
    """x and the axis to reduce along (a reduction over everything runs on the flattened x)."""
    if axis is None:
        n = x.type.size
        return em.emit("reshape", [x], x.type.with_(shape=(n,)), shape=(n,)), 0
    return x, axis


def _step(em: Emitter, v: Value, axis: int, start: int, stop: int, step: int) -> Value:
    key = [["s", 0, d, 1] for d in v.type.shape]
    key[axis] = ["s", start, stop, step]
    shape = list(v.type.shape)
    shape[axis] = len(range(start, stop, step))
    return em.emit("slice", [v], v.type.with_(shape=tuple(shape)), key=key)


def _concat(em: Emitter, parts: list[Value], axis: int) -> Value:
    shape = list(parts[0].type.shape)
    shape[axis] = sum(p.type.shape[axis] for p in parts)
    return em.emit("concat", parts, parts[0].type.with_(shape=tuple(shape)), axis=axis)


def _tree(em: Emitter, values: list[Value], axis: int, take_second) -> list[Value]:
    """Reduce tensors together along `axis` by layers of adjacent pairs; `take_second(first,
    second)` says where the second element of a pair wins (values[0] is the one compared)."""
    while values[0].type.shape[axis] > 1:
        n = values[0].type.shape[axis]
        even = 2 * (n // 2)
        firsts = [_step(em, v, axis, 0, even, 2) for v in values]
        seconds = [_step(em, v, axis, 1, even, 2) for v in values]
        c = take_second(firsts[0], seconds[0])
        layer = [em.where(c, s, f, f.type.with_(vis=join_vis(c.type.vis, f.type.vis))) for f, s in zip(firsts, seconds)]
        if n % 2:
            layer = [_concat(em, [lv, _step(em, v, axis, even, n, 1)], axis) for lv, v in zip(layer, values)]
        values = layer
    return values


def _reduced(em: Emitter, v: Value, t: Type) -> Value:
    return em.emit("reshape", [v], t, shape=t.shape)


@expansion("rmax")
def _rmax(em: Emitter, op: Op) -> Value:
    x, axis = _flat(em, op.ins[0], op.attrs.get("axis"))
    (best,) = _tree(em, [x], axis, lambda f, s: em.less(f, s))
    return _reduced(em, best, op.out.type)


@expansion("rmin")
def _rmin(em: Emitter, op: Op) -> Value:
    x, axis = _flat(em, op.ins[0], op.attrs.get("axis"))
    (best,) = _tree(em, [x], axis, lambda f, s: em.less(s, f))
    return _reduced(em, best, op.out.type)


def _positions(em: Emitter, x: Value, axis: int) -> Value:
    """The index along `axis` of every element of x, as a public int tensor."""
    n = x.type.shape[axis]
    shape = [1] * len(x.type.shape)
    shape[axis] = n
    idx = em.emit("const", [], Type(PUBLIC, "int", tuple(shape), 0),
                  value=asring(np.arange(n, dtype=np.int64).reshape(shape)))
    return em.bcast(idx, x.type.shape)


def _arg(em: Emitter, op: Op, second_wins) -> Value:
    x, axis = _flat(em, op.ins[0], op.attrs.get("axis"))
    _, idx = _tree(em, [x, _positions(em, x, axis)], axis, second_wins)
    return _reduced(em, idx, op.out.type)


@expansion("argmax", secret_only=True)
def _argmax(em: Emitter, op: Op) -> Value:
    return _arg(em, op, lambda f, s: em.less(f, s))


@expansion("argmin", secret_only=True)
def _argmin(em: Emitter, op: Op) -> Value:
    return _arg(em, op, lambda f, s: em.less(s, f))


def merge_network(n: int) -> list[list[tuple[int, int]]]:
    """Batcher's merge-exchange sort (Knuth 5.2.2 M) for n keys: layers of disjoint pairs (i, j),
    i < j, after which position i holds the smaller key."""
    if n < 2:
        return []
    t = (n - 1).bit_length()
    layers = []
    p = 1 << (t - 1)
    while p > 0:
        q, r, d = 1 << (t - 1), 0, p
        while d > 0:
            layer = [(i, i + d) for i in range(n - d) if i & p == r]
            if layer:
                layers.append(layer)
            d, q, r = q - p, q >> 1, p
        p >>= 1
    return layers


def _take(em: Emitter, v: Value, index: list[int], axis: int) -> Value:
    shape = list(v.type.shape)
    shape[axis] = len(index)
    return em.emit("take", [v], v.type.with_(shape=tuple(shape)), index=np.array(index, dtype=np.int64),
                   axis=axis)


@expansion("sort", secret_only=True)
def _sort(em: Emitter, op: Op) -> Value:
    x, axis = op.ins[0], op.attrs["axis"]
    n = x.type.shape[axis]
    for layer in merge_network(n):
        first = [i for i, _ in layer]
        second = [j for _, j in layer]
        rest = sorted(set(range(n)) - set(first) - set(second))
        a, b = _take(em, x, first, axis), _take(em, x, second, axis)
        low = em.where(em.less(b, a), b, a, a.type)
        both = em.emit("add", [a, b], a.type)
        high = em.emit("sub", [both, low], a.type)
        parts = [low, high] + ([_take(em, x, rest, axis)] if rest else [])
        order = np.argsort(np.array(first + second + rest))
        x = _take(em, _concat(em, parts, axis), order.tolist(), axis)
    return em.emit("reshape", [x], op.out.type, shape=op.out.type.shape)
