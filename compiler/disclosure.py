"""The disclosure report (`veil compile --disclosure`): for each party, exactly what it learns —
every output and every reveal, with shape and source position, times the loop trips it runs in —
and what leaves it as shares, with sizes. Every other message a party receives is uniformly
random (docs/security.md), so this is the whole of what the program discloses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from veil.runtime.bytecode import where
from veil.runtime.protocols import get_protocol
from veil.runtime.protocols.common import SEND

from veil.runtime.diagnostics import Span

from .capabilities import Capabilities
from .ir import Block, Op, Program, Value, walk
from .lower import Instr, scheduled
from .schedule import Round
from .types import SECRET, owner


@dataclass
class Item:
    """One disclosed value: what, its type, where in the source, and how many times per run."""

    what: str
    type: str
    at: str
    times: int
    bytes: int = 0


@dataclass
class Disclosure:
    learns: dict[str, list[Item]] = field(default_factory=dict)
    shares: dict[str, list[Item]] = field(default_factory=dict)
    revealed: dict[int, str] = field(default_factory=dict)  # public reveal result id -> its position


def disclosure(prog: Program) -> Disclosure:
    """What each party of the program learns and sends as shares, from its lowered program."""
    items, _ = scheduled(prog)
    native = {kernel: opcode for opcode, kernel in get_protocol(prog.protocol).native.items()}
    report = Disclosure({p: [] for p in prog.parties}, {p: [] for p in prog.parties})
    names: dict[int, str] = {}
    _walk(items, 1, native, prog, report, names, _output_sources(items, set()))
    return report


def _output_sources(items: list, found: set[int]) -> set[int]:
    """The values outputs deliver: the lowering's reveal or send for an output is reported once,
    as the output."""
    for it in items:
        if isinstance(it, Round):
            _output_sources(it.overlap, found)
        elif it.kind == "loop":
            _output_sources(it.loop.body, found)
        elif it.kind == "output":
            found.add(it.ins[0].id)
    return found


def _source(name: str) -> str:
    """The inputs a named value comes from (`input bob.data`)."""
    return name.split(" from ", 1)[-1]


def _describe(v: Value) -> str:
    t = v.type
    dims = "x".join(str(d) for d in t.shape) or "scalar"
    return f"{t.dtype}[{dims}]"


def _walk(items: list, times: int, native: dict[str, str], prog: Program, report: Disclosure,
          names: dict[int, str], delivered: set[int]) -> None:
    for it in items:
        if isinstance(it, Round):
            _walk(it.overlap, times, native, prog, report, names, delivered)
        elif it.kind == "loop":
            _walk(it.loop.body, times * it.loop.trips, native, prog, report, names, delivered)
        else:
            _note(it, times, native, prog, report, names, delivered)


def _note(it: Instr, times: int, native: dict[str, str], prog: Program, report: Disclosure,
          names: dict[int, str], delivered: set[int]) -> None:
    at = where(it.pos)
    if it.kind == "op" and it.name == "input":
        names[it.out.id] = f"input {it.attrs['party']}.{it.attrs['name']}"
    elif it.kind == "op" and it.out is not None:
        sources = sorted({_source(names[v.id]) for v in it.ins if v.id in names})
        if sources:
            names[it.out.id] = f"a value computed from {', '.join(sources)}"
    if it.kind == "output":
        party = owner(it.ins[0].type.vis) or next(iter(it.execs))  # a public value: where it is output
        report.learns[party].append(Item(f"output {it.name}", _describe(it.ins[0]), at, times))
    if it.kind != "kernel":
        return
    op = native.get(it.name)
    if op == "share":
        who = it.attrs["owner"]
        what = names.get(it.ins[0].id, "a value it computed")
        report.shares[who].append(Item(what, _describe(it.out), at, times, it.cost.bytes_sent.get(who, 0) * times))
    elif op == "reveal":
        report.revealed[it.out.id] = at
        for p in prog.compute:
            report.learns[p].append(Item("reveal", _describe(it.out), at, times))
    elif op == "reveal_to" and it.out.id not in delivered:
        report.learns[it.attrs["party"]].append(Item("reveal", _describe(it.out), at, times))
    elif it.spec is SEND and it.ins[0].id in report.revealed:  # a public reveal an input-only party uses
        report.learns[it.attrs["dst"]].append(Item(f"reveal (sent by {it.attrs['src']})", _describe(it.out),
                                                   report.revealed[it.ins[0].id], times))
    elif it.spec is SEND and it.out.id not in delivered:
        report.learns[it.attrs["dst"]].append(Item(f"a value from {it.attrs['src']}", _describe(it.out), at, times))


def format_disclosure(d: Disclosure) -> str:
    """The report as text, party by party."""
    lines = ["what each party learns (everything else it receives is uniformly random):"]
    for party, items in d.learns.items():
        lines.append(f"  {party}:" + ("" if items else " nothing"))
        for i in items:
            again = f", {i.times:,} times" if i.times > 1 else ""
            lines.append(f"    {i.what} {i.type} at {i.at}{again}")
    lines.append("what leaves each party as shares:")
    for party, items in d.shares.items():
        lines.append(f"  {party}:" + ("" if items else " nothing"))
        for i in items:
            again = f" in all, {i.times:,} times" if i.times > 1 else ""
            lines.append(f"    {i.what} {i.type} at {i.at}: {i.bytes:,} bytes{again}")
    return "\n".join(lines) + "\n"


# ---- a compile-time note: an input-only party's whole raw input secret-shared ------------------
NOTE_BYTES = 1_000_000  # below this, sharing a raw input whole is the cheap, intended thing


@dataclass
class Note:
    """A compile-time note with its source position (printed `file:line:col: note: ...`)."""

    span: Span | None
    message: str

    def format(self) -> str:
        return f"{self.span}: note: {self.message}" if self.span is not None else f"note: {self.message}"


def raw_input_notes(prog: Program) -> list[Note]:
    """A note for each input of a party outside the protocol that enters a share op whole (not
    reduced in clear first) and costs its owner at least NOTE_BYTES: nobody ships 96 MB of raw
    data by accident where they meant to share a gradient."""
    caps = Capabilities.of(prog)
    inputs = {op.out.id: op for op in walk(prog.body) if op.opcode == "input"
              and op.attrs["party"] not in prog.compute}
    notes = []
    for op, times in _ops_with_trips(prog.body, 1):
        src = inputs.get(op.ins[0].id) if op.ins else None
        kernel = caps.kernel_of(op)
        if src is None or op.out.type.vis != SECRET or kernel is None:
            continue
        party, t = src.attrs["party"], src.out.type
        cost = caps.cost(kernel, t.size, [t.size], caps.kernel_attrs(kernel, op, op.out))
        sent = cost.bytes_sent.get(party, 0) * times
        if sent < NOTE_BYTES:
            continue
        dims = "x".join(str(d) for d in t.shape) or "scalar"
        notes.append(Note(src.span, f"{party}'s whole input {src.attrs['name']!r} ({dims} {t.dtype}) is "
                          f"secret-shared at {op.span}: {party} sends {human_bytes(sent)}; to learn from "
                          f"it, compute in clear at {party} (e.g. a gradient, from a revealed model) and "
                          "share only the result"))
    return notes


def _ops_with_trips(block: Block, times: int) -> Iterator[tuple[Op, int]]:
    """Every op with how many times it runs (the trips of its enclosing loops)."""
    for op in block.ops:
        if op.body is not None:
            yield from _ops_with_trips(op.body, times * op.attrs["trips"])
        else:
            yield op, times


def human_bytes(n: int) -> str:
    """`96 MB`, `37 KB`, `512 bytes` (decimal units)."""
    for unit, size in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} bytes"
