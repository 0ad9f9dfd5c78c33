"""The scheduled protocol program as text (`veil compile --emit-lowered`): what each round carries.

Every instruction is a local op or a protocol kernel, with its operands, attributes, the parties
that execute it and, for a kernel, its declared cost. A `--- round N: parties ---` marker closes
the round that carries the kernels listed above it (since the previous marker); the local work
that runs while those messages are on the wire follows the marker, marked `~`. A loop shows its
trips and rounds per iteration, its body's rounds numbered from 1.
"""
from __future__ import annotations

from .ir import Program, Value
from .irtext import format_type, format_value
from .lower import Instr, scheduled
from .latency import critical_rounds
from .schedule import Round


def format_lowered(prog: Program) -> str:
    """The scheduled program of `prog`, one instruction per line, rounds marked."""
    items, rounds = scheduled(prog)
    critical, _ = critical_rounds(items, list(prog.parties))
    head = [f"# {prog.file}: {prog.protocol}({', '.join(prog.compute)}), {rounds} rounds scheduled, "
            f"{critical} on the critical path (compiler/latency.py)",
            "# a kernel's cost: its rounds and the bytes each party sends; `~` marks local work that "
            "overlaps the round above"]
    return "\n".join(head + _items(items, "")) + "\n"


def _items(items: list, indent: str) -> list[str]:
    lines: list[str] = []
    n = 0
    for it in items:
        if isinstance(it, Round):
            n += 1
            who = ", ".join(sorted(it.parties)) or "nobody"
            lines.append(f"{indent}--- round {n}: {who} ---")
            lines.extend(f"{indent}~ {_instr(i)}" for i in it.overlap)
        elif it.kind == "loop":
            lp = it.loop
            carried = ", ".join(f"{_v(p)}={_v(i)}" for p, i in zip(lp.params, lp.inits))
            lines.append(f"{indent}loop {_v(lp.ivar)} in range({lp.start}, "
                         f"{lp.start + lp.trips * lp.step}, {lp.step}): {lp.trips} trips x {lp.rounds} "
                         f"rounds per iteration, carrying ({carried})  {_where(it)} {{")
            lines.extend(_items(lp.body, indent + "    "))
            res = ", ".join(f"{_v(o)}={_v(r)}" for o, r in zip(lp.outs, lp.results))
            lines.append(f"{indent}}} -> ({res})")
        else:
            lines.append(indent + _instr(it))
    return lines


def _instr(it: Instr) -> str:
    ins = ", ".join(_v(v) for v in it.ins)
    attrs = "".join(f" {k}={format_value(v)}" for k, v in it.attrs.items())
    lhs = f"{_v(it.out)}: {format_type(it.out.type)} = " if it.out is not None else ""
    who = ", ".join(sorted(it.execs))
    if it.kind == "output":
        return f"output {it.name}({ins}){attrs}  on {who}  {_where(it)}"
    cost = ""
    if it.kind == "kernel":
        sent = ", ".join(f"{p} {b}" for p, b in sorted(it.cost.bytes_sent.items()) if b) or "nothing"
        cost = f"  cost {it.cost.rounds} round{'s' if it.cost.rounds != 1 else ''}, bytes sent: {sent}"
    return f"{it.kind:<6} {lhs}{it.name}({ins}){attrs}  on {who}{cost}  {_where(it)}"


def _v(v: Value) -> str:
    return f"%{v.id}"


def _where(it: Instr) -> str:
    return f"@ {it.pos.where()}" if it.pos is not None else "@ ?"
