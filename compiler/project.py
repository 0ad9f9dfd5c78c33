"""Projection onto a party: each party keeps only the instructions it runs, and drops what it
never needs; also the value sizes and kernel rounds register allocation reads."""
from __future__ import annotations

from typing import TYPE_CHECKING

from veil.runtime import bytecode as bc

from .ir import Value
from .schedule import Round, flat_rounds
from .types import SECRET, owner

if TYPE_CHECKING:
    from .lower import Instr


def project(items: list, party: str, compute: frozenset[str]) -> list[bc.Instr]:
    """The bytecode instructions `party` runs, with what it never needs removed."""
    code, _live = _project(items, party, set(), compute)
    return code


def _project(items: list, party: str, live_out: set[int], compute: frozenset[str]) -> tuple[list, set[int]]:
    live = set(live_out)
    out: list = []
    for it in reversed(items):
        if isinstance(it, Round):
            overlap, live = _project(it.overlap, party, live, compute)
            if party in it.parties:
                out.append(bc.Recv())
                out.extend(reversed(overlap))
                out.append(bc.Send())
            else:
                out.extend(reversed(overlap))
            continue
        if it.kind == "loop":
            enc, live = _project_loop(it, party, live, compute)
            if enc is not None:
                out.append(enc)
            continue
        if party not in it.execs:
            continue
        needed = it.kind in ("kernel", "output") or it.name == "input" or \
            (it.out is not None and it.out.id in live)
        if not needed:
            continue
        if it.out is not None:
            live.discard(it.out.id)
        mine = [v for v in it.ins if _holds(party, v, it, compute)]
        live.update(v.id for v in mine)
        out.append(_encode(it, party, compute))
    out.reverse()
    return out, live


def _holds(party: str, v: Value, it: Instr, compute: frozenset[str]) -> bool:
    """Whether `party` supplies input v to instruction it (kernels get None for inputs it lacks)."""
    if it.kind != "kernel":
        return True
    if "src" in it.attrs and "dst" in it.attrs:  # a send: only its source holds the value
        return party == it.attrs["src"]
    if v.type.vis == SECRET:
        return party in compute
    o = owner(v.type.vis)
    return o is None or o == party


def _encode(it: Instr, party: str, compute: frozenset[str]) -> bc.Instr:
    """The bytecode record of one instruction as `party` runs it."""
    if it.kind == "op":
        return bc.OpInstr(it.name, it.out.id, tuple(v.id for v in it.ins), it.attrs, tuple(int(s) for s in it.sec),
                          it.pos)
    if it.kind == "kernel":
        ins = tuple(v.id if _holds(party, v, it, compute) else None for v in it.ins)
        return bc.KernelInstr(it.name, it.iid, it.out.id if it.out is not None else None, ins, it.attrs, it.pos)
    return bc.Output(it.name, it.ins[0].id, it.attrs["dtype"], it.attrs["scale"], it.pos)


def _project_loop(it: Instr, party: str, live: set[int], compute: frozenset[str]) -> tuple[bc.Loop | None, set[int]]:
    lp = it.loop
    held = [i for i, p in enumerate(lp.params) if party in _value_holders(p, it, compute)]
    while True:  # a public value the party only receives a copy of (a reveal sent to it) is not carried
        body, body_in = _project(lp.body, party, {lp.results[i].id for i in held}, compute)
        made = _defined(body) | {lp.params[i].id for i in held}
        kept = [i for i in held if lp.results[i].id in made]
        if kept == held:
            break
        held = kept
    if not body:
        return None, live
    params = [lp.params[i].id for i in held]
    live = (live - {lp.outs[i].id for i in held}) | {lp.inits[i].id for i in held}
    defined_inside = {lp.ivar.id, *params}
    live |= {v for v in body_in if v not in defined_inside}
    enc = bc.Loop(lp.trips, lp.start, lp.step, lp.ivar.id, tuple(params), tuple(lp.inits[i].id for i in held),
                  tuple(lp.results[i].id for i in held), tuple(lp.outs[i].id for i in held), tuple(body), it.pos,
                  lp.name)
    return enc, live


def _defined(code: list) -> set[int]:
    """The registers a projected body writes (loops: their final results)."""
    out: set[int] = set()
    for ins in code:
        if isinstance(ins, bc.Loop):
            out.update(ins.outs)
        elif isinstance(ins, (bc.OpInstr, bc.KernelInstr)) and ins.out is not None:
            out.add(ins.out)
    return out


def _value_holders(v: Value, it: Instr, compute: frozenset[str]) -> frozenset[str]:
    """Who holds a loop-carried value: the compute parties (secret), its owner, or the loop's runners."""
    if v.type.vis == SECRET:
        return compute
    o = owner(v.type.vis)
    return frozenset([o]) if o else it.execs


def value_types(items: list, out: dict[int, Value] | None = None) -> dict[int, Value]:
    """Every value the scheduled code mentions, by id (for sizes in register allocation)."""

    out = {} if out is None else out
    for it in flat_rounds(items):
        if isinstance(it, Round):
            continue
        for v in it.ins + ([it.out] if it.out is not None else []):
            out[v.id] = v
        if it.loop is not None:
            lp = it.loop
            for v in [lp.ivar, *lp.params, *lp.results, *lp.outs]:
                out[v.id] = v
            value_types(lp.body, out)
    return out


def kernel_rounds(items: list, out: dict[int, int] | None = None) -> dict[int, int]:
    """Each kernel's rounds, by result id: its result register is written that many rounds later."""

    out = {} if out is None else out
    for it in flat_rounds(items):
        if isinstance(it, Round):
            continue
        if it.kind == "kernel" and it.out is not None:
            out[it.out.id] = it.cost.rounds
        if it.loop is not None:
            kernel_rounds(it.loop.body, out)
    return out
