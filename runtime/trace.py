"""A per-party timeline of a run as Chrome-trace JSON (open it in Perfetto or chrome://tracing):
every round, kernel step, local op, send and wait is a span with its source position.

Tracing is a VM subclass (`TracedVM`), so a run without --trace executes the plain VM and pays
nothing. Spans are kept as tuples while running and turned into JSON once, at the end. Timestamps
are wall-clock microseconds (measured with perf_counter from one anchor), so the files of parties
on one machine line up when loaded together.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .bytecode import KernelInstr, OpInstr
from .diagnostics import Span
from .vm import VM, _Pending

_Event = tuple[str, str, float, float, Any, dict | None]  # name, category, start, end, pos, args


class Tracer:
    """Collects one party's spans and writes them as a Chrome-trace file."""

    def __init__(self, party: str, pid: int):
        self.party = party
        self.pid = pid
        self.events: list[_Event] = []
        self._wall0 = time.time() * 1e6
        self._perf0 = time.perf_counter()
        self._where: dict[int, str] = {}

    def add(self, name: str, cat: str, t0: float, t1: float, pos: Span | None = None,
            args: dict | None = None) -> None:
        """One span from perf_counter time t0 to t1."""
        self.events.append((name, cat, t0, t1, pos, args))

    def where(self, pos: Span | None) -> str | None:
        """`file:line:col` (with the call chain), computed once per position."""
        if pos is None:
            return None
        key = id(pos)
        text = self._where.get(key)
        if text is None:
            text = self._where[key] = pos.where()
        return text

    def chrome_events(self) -> list[dict[str, Any]]:
        """The spans as Chrome-trace complete events ("ph": "X", ts and dur in microseconds)."""
        out: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": self.pid, "tid": 0, "args": {"name": self.party}},
            {"name": "thread_name", "ph": "M", "pid": self.pid, "tid": 0, "args": {"name": "vm"}},
        ]
        for name, cat, t0, t1, pos, args in self.events:
            a = dict(args or {})
            at = self.where(pos)
            if at is not None:
                a["pos"] = at
            out.append({"name": name, "cat": cat, "ph": "X", "pid": self.pid, "tid": 0,
                        "ts": round(self._wall0 + (t0 - self._perf0) * 1e6, 3),
                        "dur": round(max(0.0, t1 - t0) * 1e6, 3), "args": a})
        return out

    def write(self, path: str, **other: Any) -> None:
        """The trace file (atomically: a temp file, then a rename)."""
        doc = {"traceEvents": self.chrome_events(), "displayTimeUnit": "ms",
               "otherData": dict(other, party=self.party)}
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)


def trace_path_for(path: str, party: str) -> str:
    """`veil local --trace trace.json`: alice's file is trace.alice.json."""
    root, ext = os.path.splitext(os.path.abspath(path))
    return f"{root}.{party}{ext or '.json'}"


@dataclass
class TracedVM(VM):
    """The VM with every step timed into a Tracer."""

    tracer: Tracer = field(default=None)  # type: ignore[assignment]
    _round_t0: float | None = None

    def op(self, ins: OpInstr) -> None:
        t0 = time.perf_counter()
        try:
            super().op(ins)
        finally:
            self.tracer.add(ins.opcode, "op", t0, time.perf_counter(), ins.pos)

    def start_kernel(self, ins: KernelInstr) -> None:
        t0 = time.perf_counter()
        try:
            super().start_kernel(ins)
        finally:
            self.tracer.add(ins.name, "kernel", t0, time.perf_counter(), ins.pos, {"step": 0})

    async def send(self) -> None:
        t0 = time.perf_counter()
        if self._round_t0 is None:
            self._round_t0 = t0
        before = sum(self.mesh.bytes_sent.values())
        try:
            await super().send()
        finally:
            sent = sum(self.mesh.bytes_sent.values()) - before
            self.tracer.add("send", "send", t0, time.perf_counter(), None, {"bytes": sent})

    async def recv(self) -> None:
        t0 = time.perf_counter()
        start = self._round_t0 if self._round_t0 is not None else t0
        at = sorted({w for w in (self.tracer.where(p.pos) for p in self.pending) if w is not None})
        number = self.stats.rounds + 1
        await super().recv()
        self._round_t0 = None
        self.tracer.add(f"round {number}", "round", start, time.perf_counter(), None,
                        {"round": number, "kernels": at})

    async def _receive(self, expects: dict[str, int]) -> dict:
        t0 = time.perf_counter()
        try:
            return await super()._receive(expects)
        finally:
            self.tracer.add("wait", "wait", t0, time.perf_counter(), None,
                            {"from": sorted(p for p, n in expects.items() if n)})

    def _step(self, p: _Pending, mine: dict) -> bool:
        t0 = time.perf_counter()
        try:
            return super()._step(p, mine)
        finally:
            self.tracer.add(p.name, "kernel", t0, time.perf_counter(), p.pos, {"round": self.stats.rounds})
