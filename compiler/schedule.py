"""Round scheduling: within a block every kernel starts as soon as its inputs are ready, so all
kernels at the same communication depth share one round (one message per pair of parties); then
kernels with room to spare start later where that shortens the critical path."""
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
    horizon = _place(instrs, {})
    _later_where_it_waits_less(instrs, horizon)
    return _rounds(instrs, horizon), horizon


def _place(instrs: list[Instr], floor: dict[int, int]) -> int:
    """Each instruction's start: as soon as its inputs are ready, or at its floor (by position)
    if that is later. Returns the segment's rounds."""
    ready: dict[int, int] = {}
    for k, ins in enumerate(instrs):
        start = max([ready.get(v.id, 0) for v in ins.ins] + [floor.get(k, 0)])
        rounds = ins.cost.rounds if ins.kind == "kernel" else 0
        ins.start, ins.done = start, start + rounds
        if ins.out is not None:
            ready[ins.out.id] = ins.done
    return max((i.done for i in instrs), default=0)


LATE_KERNELS = 400  # segments with more kernels keep the as-soon-as-possible placement
LATE_ROUNDS = 4     # how much later a kernel may start than its inputs allow


def _later_where_it_waits_less(instrs: list[Instr], horizon: int) -> None:
    """Places the instructions at start floors that lower the rounds on the critical path
    (compiler/latency.py) without adding rounds. A kernel whose first round has one sender (a truncation its dealer opens) and that
    starts as soon as it can may put its exchange in a round where the other parties would
    otherwise wait for nothing; started later, it shares a round with an exchange they wait for
    anyway. Greedy, last kernel first: each is tried up to LATE_ROUNDS rounds later and kept at the
    latest start that waits no longer (an equal move may let an earlier kernel's move help)."""
    from .latency import critical_rounds
    kernels = [k for k, i in enumerate(instrs) if i.kind == "kernel"]
    if len(kernels) > LATE_KERNELS:
        return
    parties = sorted(frozenset().union(*[instrs[k].execs for k in kernels])) if kernels else []

    def waits(floor: dict[int, int]) -> int | None:
        if _place(instrs, floor) != horizon:
            return None
        return critical_rounds(_rounds(instrs, horizon), parties)[0]

    floor: dict[int, int] = {}
    best = waits(floor)
    for k in reversed(kernels):
        first, choice = instrs[k].start, floor
        for later in range(1, LATE_ROUNDS + 1):  # a move that waits no longer may enable the next
            trial = {**floor, k: first + later}
            got = waits(trial)
            if got is None:
                break
            if got <= best:
                choice, best = trial, got
        floor = choice
        _place(instrs, floor)


def _rounds(instrs: list[Instr], horizon: int) -> list:
    """The placed instructions with their Round markers."""
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
    return items


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
