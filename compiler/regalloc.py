"""Register allocation by liveness on one party's code: registers are reused once their value is
dead, large dead values are freed at once, and the party's peak memory is computed."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from veil.runtime.bytecode import Free, Instr, KernelInstr, Loop, Recv

FREE_BYTES = 4096  # values at least this large are released right after their last use


@dataclass
class Liveness:
    """Where each virtual register is defined and last read, in half-step positions."""

    define: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    pos: int = 0

    def d(self, r: int | None, at: float) -> None:
        if r is not None:
            self.define.setdefault(r, at)
            self.last.setdefault(r, at)

    def u(self, r: int | None, at: float) -> None:
        if r is not None:
            self.last[r] = max(self.last.get(r, at), at)


def liveness(code: list[Instr], live: Liveness | None = None, rounds: dict[int, int] | None = None) -> Liveness:
    """Def and last-use positions; values used inside a loop stay live to the loop's end; a
    kernel's result register stays reserved until the `recv` that completes it (`rounds`: the
    kernel's rounds, by result register)."""
    live = live or Liveness()
    rounds = rounds or {}
    pending: list[list[int]] = []  # [result register, rounds still to go]
    for ins in code:
        live.pos += 1
        p = live.pos
        if isinstance(ins, Recv):
            for item in pending:
                item[1] -= 1
                if item[1] == 0:
                    live.u(item[0], p)
            pending = [item for item in pending if item[1] > 0]
            continue
        if isinstance(ins, KernelInstr) and ins.out is not None and rounds.get(ins.out, 0) > 0:
            pending.append([ins.out, rounds[ins.out]])
        if isinstance(ins, Loop):
            _loop_liveness(ins, live, rounds, p)
            continue
        for r in ins.reads():
            live.u(r, p)
        for r in ins.writes():
            live.d(r, p + 0.5)
    return live


def _loop_liveness(ins: Loop, live: Liveness, rounds: dict[int, int], p: int) -> None:
    """A loop's registers: its inits read at entry, params defined, results read and outs
    defined at its end, and every outer value read inside kept live to the end."""
    for r in ins.inits:
        live.u(r, p)
    live.d(ins.ivar, p + 0.5)
    for r in ins.params:
        live.d(r, p + 0.5)
    inner = Liveness(live.define, live.last, live.pos)
    outer_defined = set(live.define)
    liveness(list(ins.body), inner, rounds)
    live.pos = inner.pos + 1
    end = live.pos
    for r in ins.results:
        live.u(r, end)
    for r in list(live.last):  # read in every iteration: live through the whole loop
        if r in outer_defined and live.define[r] < p and p <= live.last[r] <= end:
            live.last[r] = end
    for r in ins.outs:
        live.d(r, end + 0.5)


def assign(live: Liveness) -> dict[int, int]:
    """Linear scan: each value takes the lowest register whose value has died."""
    order = sorted(live.define, key=lambda r: (live.define[r], r))
    active: list[tuple[float, int, int]] = []  # (last use, phys, virt)
    free: list[int] = []
    mapping: dict[int, int] = {}
    nxt = 0
    for r in order:
        at = live.define[r]
        still = []
        for end, phys, v in active:
            if end < at:
                free.append(phys)
            else:
                still.append((end, phys, v))
        active = still
        if free:
            free.sort()
            phys = free.pop(0)
        else:
            phys, nxt = nxt, nxt + 1
        mapping[r] = phys
        active.append((live.last[r], phys, r))
    return mapping


def peak_bytes(live: Liveness, sizes: dict[int, int]) -> int:
    """The largest total size of values alive at once (what the party must hold in memory)."""
    events = []
    for r, at in live.define.items():
        events.append((at, sizes.get(r, 0)))
        events.append((live.last[r] + 0.25, -sizes.get(r, 0)))
    events.sort()
    cur = peak = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return peak


def allocate(code: list[Instr], sizes: dict[int, int], rounds: dict[int, int] | None = None
             ) -> tuple[list[Instr], int, int]:
    """(code with physical registers and frees, number of registers, peak live bytes)."""
    live = liveness(code, rounds=rounds)
    m = assign(live)
    dying: dict[float, list[int]] = {}
    for r, end in live.last.items():
        if sizes.get(r, 0) >= FREE_BYTES and end > live.define[r]:
            dying.setdefault(end, []).append(r)
    out = _emit(code, m, dying, [0])
    return out, (max(m.values()) + 1 if m else 0), peak_bytes(live, sizes)


def _emit(code: list[Instr], m: dict[int, int], dying: dict[float, list[int]], counter: list[int]
          ) -> list[Instr]:
    """Rewrite to physical registers; after an op or kernel that last reads a large value, free it
    (never a register the same instruction writes; loops free nothing at their edges)."""
    out: list[Instr] = []
    for ins in code:
        counter[0] += 1
        p = counter[0]
        if isinstance(ins, Loop):
            body = _emit(list(ins.body), m, dying, counter)
            counter[0] += 1
            out.append(replace(ins.renamed(m), body=tuple(body)))
            continue
        out.append(ins.renamed(m))
        regs = {m[r] for r in dying.get(p, [])} - {m[d] for d in ins.writes()}
        if regs:
            out.append(Free(tuple(sorted(regs))))
    return out
