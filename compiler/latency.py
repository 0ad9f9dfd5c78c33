"""Rounds on the critical path: how many one-way message delays each party waits through.

The schedule's rounds are global (every party steps through each one), but a party that expects
nothing in a round does not wait in it. What it waits for is set by who sends to whom: each
kernel declares its rounds' links (`Cost.links`, all-to-all among its participants if it does
not), a round bundles the links of the kernels in flight, and each party keeps a clock, as the
runtime runs it: a message leaves at its sender's clock and a receiver's clock becomes at least
the sender's plus one. The program's critical-path rounds are the largest clock at the end.

rep3's dealer (P2) receives nothing in its truncations and DCF comparisons, so its clock stays
behind and what it sends for the next kernel is there before P0 and P1 need it: a comparison or
a truncation of a sharing right after such a kernel waits on one round, not two.
"""
from __future__ import annotations

from typing import Any

from .schedule import Round

Clock = dict[str, int]
EXACT_TRIPS = 4096  # a loop that has not settled is simulated trip by trip up to this many


def critical_rounds(items: list, parties: list[str]) -> tuple[int, dict[int, int]]:
    """(rounds on the critical path of the whole run, rounds per trip of each loop by its line)."""
    clock = {p: 0 for p in parties}
    per_trip: dict[int, int] = {}
    _run(items, clock, per_trip)
    return max(clock.values(), default=0), per_trip


def _run(items: list, clock: Clock, per_trip: dict[int, int]) -> None:
    for it in items:
        if isinstance(it, Round):
            _round(it, clock)
        elif getattr(it, "kind", None) == "loop":
            _loop(it, clock, per_trip)


def _round(rnd: Round, clock: Clock) -> None:
    """Every sender's message leaves at its clock; each receiver waits for the latest one."""
    before = dict(clock)
    for src, dst in _links(rnd):
        if src in before and dst in clock:
            clock[dst] = max(clock[dst], before[src] + 1)


def _links(rnd: Round) -> set[tuple[str, str]]:
    """The (sender, receiver) pairs of a round: each kernel in flight's links for its round."""
    out: set[tuple[str, str]] = set()
    for k in rnd.kernels:
        j = rnd.at - k.start
        declared = k.cost.links if k.cost is not None else None
        if declared is not None:  # Cost checks it has one entry per round
            out |= declared[j]
        else:
            out |= {(a, b) for a in k.execs for b in k.execs if a != b}
    return out


def _loop(it: Any, clock: Clock, per_trip: dict[int, int]) -> None:
    """The body trip by trip; once a trip moves every clock by the same amount as the trip before,
    every later trip does too (the body's effect commutes with adding a constant to all clocks)."""
    trips, body = it.loop.trips, it.loop.body
    line = it.pos.line if it.pos is not None else 0
    last: Clock | None = None
    inc: Clock = {}
    done = 0
    while done < trips:
        before = dict(clock)
        _run(body, clock, per_trip)
        done += 1
        inc = {p: clock[p] - before[p] for p in clock}
        if (last == inc and len(set(inc.values())) <= 1) or done >= EXACT_TRIPS:
            for p in clock:  # settled (or too long to follow: the last trip's increments, repeated)
                clock[p] += inc[p] * (trips - done)
            break
        last = inc
    per_trip[line] = max(inc.values(), default=0)
