"""Round scheduling: within a block every kernel starts as soon as its inputs are ready, so all
kernels at the same communication depth share one round (one message per pair of parties)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lower import Instr


@dataclass(eq=False)
class Round:
    """One exchange; `parties` are those with a kernel in flight across it. It is emitted as a
    `send` and a `recv`, with the round's independent local work (`overlap`) between them."""

    parties: frozenset[str]
    overlap: list = field(default_factory=list)
    kernels: list = field(default_factory=list)  # the kernels in flight across it (for the cost report)
    at: int = 0  # its index in its segment: a kernel in flight is in its round `at - start`


def schedule(instrs: list[Instr]) -> tuple[list, int]:
    """Order a block's instructions with Round markers, each kernel as early as its inputs allow.
    Loops are barriers: what comes before completes first. Returns (items, rounds)."""
    items: list = []
    total = 0
    segment: list[Instr] = []
    for ins in instrs + [None]:
        if ins is None or ins.kind == "loop":
            seg_items, seg_rounds = _schedule_segment(segment)
            items.extend(seg_items)
            total += seg_rounds
            segment = []
            if ins is not None:
                items.append(ins)
                total += ins.loop.rounds * ins.loop.trips
        else:
            segment.append(ins)
    return items, total


def _schedule_segment(instrs: list[Instr]) -> tuple[list, int]:
    ready: dict[int, int] = {}
    for ins in instrs:
        start = max((ready.get(v.id, 0) for v in ins.ins), default=0)
        rounds = ins.cost.rounds if ins.kind == "kernel" else 0
        ins.start, ins.done = start, start + rounds
        if ins.out is not None:
            ready[ins.out.id] = ins.done
    horizon = max((i.done for i in instrs), default=0)
    items: list = []
    for t in range(horizon + 1):
        group = [i for i in instrs if i.start == t]
        if t == horizon:
            items.extend(group)
            break
        feeding = _feeding_kernels(group)
        items.extend(i for i in group if i in feeding)
        inflight = [i for i in instrs if i.kind == "kernel" and i.start <= t < i.done]
        parties = frozenset().union(*[i.execs for i in inflight]) if inflight else frozenset()
        items.append(Round(parties, [i for i in group if i not in feeding], inflight, t))
    return items, horizon


def _feeding_kernels(group: list[Instr]) -> set[Instr]:
    """The kernels starting now and the local work they wait for; the rest can overlap the wire."""
    producer = {i.out.id: i for i in group if i.out is not None}
    need: set[Instr] = set()
    todo = [i for i in group if i.kind == "kernel"]
    while todo:
        ins = todo.pop()
        if ins in need:
            continue
        need.add(ins)
        todo.extend(producer[v.id] for v in ins.ins if v.id in producer)
    return need


def flat_rounds(items: list) -> list:
    """Items with each round's overlapped local work listed after it."""
    out = []
    for it in items:
        out.append(it)
        if isinstance(it, Round):
            out.extend(it.overlap)
    return out
