"""Lower the IR for a protocol, batch communication into rounds, and project it onto each party.

Three steps:
1. lower: each IR op becomes a local instruction (run by the parties that hold its value) or a
   protocol kernel (communication), with mul+trunc fused where the protocol offers it;
2. schedule: within a block, every kernel starts as soon as its inputs are ready, so all kernels
   at the same communication depth share one round — one message per pair of parties;
3. project: each party keeps only what it runs, and drops what it never needs.
The cost report is computed from the kernels' declared costs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from veil.runtime.diagnostics import TypeErr, UnsupportedErr
from veil.runtime.ops import OPS
from veil.runtime.protocols import get_protocol
from veil.runtime.protocols.base import Cost, KernelSpec
from veil.runtime.protocols.common import SEND

from veil.runtime.bytecode import position
from veil.runtime.diagnostics import Span, source_line

from .capabilities import Capabilities, secret_ins
from .history import loop_name
from .ir import Block, Op, Program, Value
from .project import kernel_rounds, project, value_types
from .regalloc import allocate
from .rounds import fused_inputs, fusion, ready_times
from .schedule import Round, flat_rounds, schedule
from .latency import critical_rounds
from .masks import MaskSite, hoist_masks
from .pending import keep_pending, pending_values
from .types import PUBLIC, SECRET, owner


@dataclass(eq=False)
class Instr:
    """A protocol-level instruction, before projection onto parties."""

    kind: str  # op | kernel | loop | output
    name: str
    out: Value | None
    ins: list[Value]
    attrs: dict[str, Any]
    pos: Span | None  # source position with its call chain
    execs: frozenset[str]
    sec: list[bool] = field(default_factory=list)
    spec: KernelSpec | None = None
    cost: Cost | None = None
    iid: int = 0
    loop: "LoopInfo | None" = None
    start: int = 0
    done: int = 0


@dataclass
class LoopInfo:
    trips: int
    start: int
    step: int
    ivar: Value
    params: list[Value]
    inits: list[Value]
    results: list[Value]
    outs: list[Value]
    body: list  # scheduled: Instr or Round
    rounds: int = 0  # per iteration
    name: str = ""  # the loop variable's name in the source


@dataclass
class CostReport:
    rounds: int = 0
    party_rounds: dict[str, int] = field(default_factory=dict)  # rounds each party takes part in
    critical_rounds: int = 0  # the one-way delays the slowest party waits through (compiler/latency.py)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    multiplications: int = 0
    truncations: int = 0
    comparisons: int = 0
    loops: list[dict] = field(default_factory=list)
    calls: dict[str, dict] = field(default_factory=dict)  # per call of a function: rounds, executions
    max_message_bytes: int = 0  # a bound on one message of one round (the runtime refuses larger frames)
    peak_memory: dict[str, int] = field(default_factory=dict)  # bytes of live values, per party

    def add(self, other: "CostReport", times: int = 1) -> None:
        self.rounds += other.rounds * times
        for p, r in other.party_rounds.items():
            self.party_rounds[p] = self.party_rounds.get(p, 0) + r * times
        for p, b in other.bytes_sent.items():
            self.bytes_sent[p] = self.bytes_sent.get(p, 0) + b * times
        self.multiplications += other.multiplications * times
        self.truncations += other.truncations * times
        self.comparisons += other.comparisons * times
        self.max_message_bytes = max(self.max_message_bytes, other.max_message_bytes)
        for site, c in other.calls.items():
            mine = self.calls.setdefault(site, {"call": c["call"], "at": site, "rounds": 0, "times": 0})
            mine["rounds"] += c["rounds"] * times
            mine["times"] += c["times"] * times

    def as_dict(self) -> dict:
        return {"rounds": self.rounds, "critical_rounds": self.critical_rounds, "party_rounds": dict(sorted(self.party_rounds.items())),
                "bytes_sent": dict(sorted(self.bytes_sent.items())),
                "multiplications": self.multiplications, "truncations": self.truncations,
                "comparisons": self.comparisons, "loops": self.loops,
                "calls": sorted(self.calls.values(), key=lambda c: c["at"]),
                "max_message_bytes": self.max_message_bytes,
                "peak_memory_bytes": dict(sorted(self.peak_memory.items()))}


class Lowering:
    """Turns a program's IR into scheduled protocol instructions."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.caps = Capabilities.of(prog)
        self.protocol = self.caps.protocol
        self.compute = list(prog.compute)
        self.all = frozenset(prog.parties)
        self.avail: dict[int, frozenset[str]] = {}
        self.next_iid = 0
        self.uses: dict[int, int] = {}
        self.additive: set[int] = set()  # values held as additive (3-out-of-3) shares
        self.call_names: dict[str, str] = {}  # call site -> the function name written there
        self.defined_in: dict[int, list[Instr]] = {}  # value id -> the instruction list of its block
        self.delivered: dict[tuple[int, str], Value] = {}  # (public value, party) -> its copy there
        self.nest: list[tuple[list[Instr], int]] = []  # the blocks being lowered, outermost first, and their trips
        self.masks = MaskSite(self.caps, self.uses, self.home, lambda v: prog.new_value(v.type), self.kernel,
                              lambda name, out, ins, attrs, pos, sec: Instr(
                                  "op", name, out, ins, attrs, pos, frozenset(self.compute), sec=sec))

    def where(self, op: Op) -> Span | None:
        """The source position an instruction keeps: file, line, column and the call chain (and,
        for the cost report, the name called at the chain's outermost call site)."""
        pos = position(op.span)
        if pos is not None and pos.caller is not None:
            site = str(pos.chain()[0])
            if site not in self.call_names:
                self.call_names[site] = call_name(op.span.chain()[0])
        return pos

    # ---- who holds what ----------------------------------------------------------------------
    def holders(self, v: Value) -> frozenset[str]:
        if v.type.vis == SECRET:
            return frozenset(self.compute)
        p = owner(v.type.vis)
        if p is not None:
            return frozenset([p])
        return self.avail.get(v.id, self.all)

    def kernel(self, name: str, out: Value | None, ins: list[Value], attrs: dict, pos: Span | None,
               spec: KernelSpec | None = None) -> Instr:
        spec = spec or self.protocol.kernels[name]
        n = (out.type.size if out is not None else ins[0].type.size)
        cost = spec.cost(self.compute, n, sizes=[v.type.size for v in ins], **attrs)
        self.next_iid += 1
        return Instr("kernel", name, out, ins, attrs, pos, frozenset(spec.participants(self.compute, **attrs)),
                     spec=spec, cost=cost, iid=self.next_iid)

    def local(self, name: str, out: Value | None, ins: list[Value], attrs: dict, pos: Span | None,
              execs: frozenset[str]) -> Instr:
        return Instr("op", name, out, ins, attrs, pos, execs, sec=[v.type.vis == SECRET for v in ins])

    # ---- step 1: lowering --------------------------------------------------------------------
    def count_uses(self, block: Block) -> None:
        for op in block.ops:
            for v in op.ins:
                self.uses[v.id] = self.uses.get(v.id, 0) + 1
            if op.body is not None:
                self.count_uses(op.body)
                for v in op.body.results:
                    self.uses[v.id] = self.uses.get(v.id, 0) + 1

    def home(self, v: Value) -> tuple[list[Instr], int] | None:
        """The instruction list of the enclosing block that defines v, and the trips of the loops
        between it and the block being lowered (None: v is the current block's own)."""
        lst = self.defined_in.get(v.id)
        if lst is None or lst is self.nest[-1][0]:
            return None
        trips = 1
        for outer, t in reversed(self.nest):
            if outer is lst:
                return lst, trips
            trips *= t
        return None

    def lower_block(self, block: Block, trips: int = 1) -> list[Instr]:
        out: list[Instr] = []
        self.nest.append((out, trips))
        try:
            self._lower_into(out, block)
        finally:
            self.nest.pop()
        return out

    def _lower_into(self, out: list[Instr], block: Block) -> None:
        fusable: dict[int, Op] = {}
        for op in block.ops:
            if self.caps.kernel_of(op) is not None:
                fusable[op.out.id] = op
        fused: set[int] = set()
        ready = ready_times(block, self.uses, self.caps)
        for op in block.ops:
            if self.caps.kernel_of(op) is not None and fusion(op, fusable, self.uses, self.caps, ready) is not None:
                fused.add(op.ins[0].id)
        region = self.additive_regions(block, fused)
        for v in block.params:
            self.defined_in[v.id] = out
        for op in block.ops:
            if op.outs and op.out.id in fused:
                continue
            if op.outs and op.out.id in region:
                out.extend(self.lower_additive(op, region))
            else:
                out.extend(self.lower_op(op, fusable, fused))
            for v in op.outs:
                self.defined_in[v.id] = out
        keep_pending(out, self.caps, self.uses, lambda v: self.prog.new_value(v.type), self.kernel)
        if len(self.nest) > 1:
            hoist_masks(out, self.masks)

    def deliver(self, v: Value, party: str, pos: Span | None) -> Value:
        """A public value a party does not hold yet (e.g. a `reveal(x)` an input-only party
        computes with), sent to it once, right after the value is defined (so, outside the loops
        that only read it): only the parties that use a public value receive it."""
        key = (v.id, party)
        if key not in self.delivered:
            holders = self.holders(v)
            sender = min(holders, key=lambda p: (p not in self.compute, self.compute.index(p)
                                                 if p in self.compute else 0, p))
            copy = self.prog.new_value(v.type.with_(vis=f"private({party})"))
            self.defined_in[v.id].append(self.kernel(SEND.name, copy, [v], {"src": sender, "dst": party,
                                                                         "shape": list(v.type.shape)}, pos, spec=SEND))
            self.delivered[key] = copy
        return self.delivered[key]

    # ---- sums of products, truncated once: products stay in additive form --------------------
    def additive_regions(self, block: Block, fused: set[int]) -> dict[int, Op]:
        """Ops (by output id) computed on additive shares: each secret `trunc` whose input is a
        linear combination of secret products read nowhere else. The products skip their reshare
        round and the truncation runs on the additive shares (ops ending in the trunc itself)."""
        if self.caps.additive_trunc is None:
            return {}
        producer = {op.out.id: op for op in block.ops if op.outs}
        region: dict[int, Op] = {}
        for op in block.ops:
            if op.opcode != "trunc" or op.out.type.vis != SECRET or op.ins[0].id in fused:
                continue
            found: dict[int, Op] = {}
            if self._collect(op.ins[0], producer, found, fused) and \
                    any(self._additive_product(o) for o in found.values()):
                region.update(found)
                region[op.out.id] = op
        return region

    def _collect(self, v: Value, producer: dict[int, Op], found: dict[int, Op], fused: set[int]) -> bool:
        """Whether v can be computed additively; fills `found` with the ops that then are."""
        op = producer.get(v.id)
        if op is None or self.uses.get(v.id) != 1 or v.type.vis != SECRET or \
                (op.ins and op.ins[0].id in fused):
            return True  # a leaf: a replicated value (or a fused kernel's result), converted locally
        if self._additive_product(op):
            found[v.id] = op
            return True
        d = OPS[op.opcode]
        if d.linear or (d.bilinear and len(secret_ins(op)) == 1):
            found[v.id] = op
            return all(self._collect(x, producer, found, fused) for x in op.ins if x.type.vis == SECRET)
        return True

    def _additive_product(self, op: Op) -> bool:
        """A product of two secrets that the protocol can keep in additive shares."""
        return self.caps.kernel_of(op) is not None and self.caps.additive(op.opcode) is not None

    def lower_additive(self, op: Op, region: dict[int, Op]) -> list[Instr]:
        pos = self.where(op)
        compute = frozenset(self.compute)
        if self._additive_product(op):
            self.additive.add(op.out.id)  # a product of two replicated sharings, kept additive
            return [self.kernel(self.caps.additive(op.opcode), op.out, op.ins, {}, pos)]
        pre: list[Instr] = []
        ins = []
        for v in op.ins:
            if v.type.vis == SECRET and v.id not in self.additive:  # a replicated operand joins additively
                a = self.prog.new_value(v.type)
                pre.append(Instr("op", "to_additive", a, [v], {}, pos, compute, sec=[1]))
                self.additive.add(a.id)
                v = a
            ins.append(v)
        if op.opcode == "trunc":  # the region ends in its one truncation, on the additive shares
            return pre + [self.kernel(self.caps.additive_trunc, op.out, ins, dict(op.attrs), pos)]
        self.additive.add(op.out.id)
        sec = [2 if v.id in self.additive else 0 for v in ins]
        return pre + [Instr("op", op.opcode, op.out, ins, dict(op.attrs), pos, compute, sec=sec)]

    def lower_op(self, op: Op, fusable: dict[int, Op], fused: set[int]) -> list[Instr]:
        pos = self.where(op)
        code = op.opcode
        if code == "loop":
            return [self.lower_loop(op, pos)]
        if code == "output":
            return self.lower_output(op, pos)
        if code == "input":
            return [self.local("input", op.out, [], dict(op.attrs), pos, frozenset([op.attrs["party"]]))]
        if code == "const":
            self.avail[op.out.id] = self.all
            return [self.local("const", op.out, [], dict(op.attrs), pos, self.all)]
        if code == "reveal":
            self.avail[op.out.id] = frozenset(self.compute)
        name = self.caps.kernel_of(op)
        if name is not None:
            src = fusable.get(op.ins[0].id)
            if src is not None and src.out.id in fused:
                fusion = self.caps.fused(src.opcode, code)
                return [self.kernel(fusion, op.out, fused_inputs(src, op), self.caps.kernel_attrs(fusion, op, op.out),
                                    pos)]
            return [self.kernel(name, op.out, op.ins, self.caps.kernel_attrs(name, op, op.out), pos)]
        if not self.caps.computes(op):
            raise self.refused(op, "`veil emulate` runs it in clear; for MPC, reveal the operands to a party "
                               "first (reveal(x, to=alice))")
        # a local op, run where its result lives
        execs = self.holders(op.out)
        if op.out.type.vis == PUBLIC:
            execs = self.all
            for v in op.ins:
                execs = execs & self.holders(v)
            self.avail[op.out.id] = execs
        else:
            ins = list(op.ins)
            for k, v in enumerate(ins):
                if v.type.vis == PUBLIC and len(execs) == 1 and not execs <= self.holders(v) and \
                        v.id in self.defined_in:
                    ins[k] = self.deliver(v, next(iter(execs)), pos)
                elif v.type.vis != SECRET and not execs <= self.holders(v):
                    raise TypeErr(f"a {v.type.vis} value is used where {', '.join(sorted(execs))} cannot see it",
                                  op.span, "output or reveal it to that party first")
            return [self.local(code, op.out, ins, dict(op.attrs), pos, execs)]
        return [self.local(code, op.out, op.ins, dict(op.attrs), pos, execs)]

    def refused(self, op: Op, hint: str) -> UnsupportedErr:
        """The error for an op the protocol cannot compute, naming the protocol and the position."""
        where = f" (line {op.span.where()})" if op.span else ""
        return UnsupportedErr(self.caps.refusal(op) + where, op.span, hint)

    def lower_output(self, op: Op, pos: Span | None) -> list[Instr]:
        v = op.ins[0]
        res: list[Instr] = []
        for q in op.attrs["to"]:
            src = v
            if v.type.vis == SECRET:
                src = self.prog.new_value(v.type.with_(vis=f"private({q})"))
                reveal = Op("reveal_to", [src], [v], {"party": q}, op.span)
                name = self.caps.kernel_of(reveal)
                if name is None:
                    raise self.refused(reveal, "output a number computed from it (e.g. one bit of it)")
                res.append(self.kernel(name, src, [v], self.caps.kernel_attrs(name, reveal, src), pos))
            elif q not in self.holders(v):
                sender = owner(v.type.vis) or sorted(self.holders(v), key=self.compute.index)[0]
                src = self.prog.new_value(v.type.with_(vis=f"private({q})"))
                res.append(self.kernel(SEND.name, src, [v], {"src": sender, "dst": q,
                                                          "shape": list(v.type.shape)}, pos, spec=SEND))
            res.append(Instr("output", op.attrs["name"], None, [src],
                             {"dtype": op.attrs["dtype"], "scale": op.attrs["scale"]}, pos, frozenset([q])))
        return res

    def lower_loop(self, op: Op, pos: Span | None) -> Instr:
        body = op.body
        self.avail[body.params[0].id] = self.all
        for p, init in zip(body.params[1:], op.ins):
            if p.type.vis == PUBLIC:
                self.avail[p.id] = self.holders(init)
        instrs = self.lower_carried(body, op.attrs["trips"])
        results = self.own_results(body, instrs, pos)
        for o, r in zip(op.outs, results):
            if o.type.vis == PUBLIC:
                self.avail[o.id] = self.holders(r)
        info = LoopInfo(op.attrs["trips"], op.attrs["start"], op.attrs["step"], body.params[0],
                        body.params[1:], list(op.ins), results, list(op.outs), [],
                        name=loop_name(op.span))
        info.body, info.rounds = schedule(instrs)
        execs = frozenset().union(*[i.execs for i in instrs]) if instrs else frozenset()
        return Instr("loop", "loop", None, list(op.ins), {}, pos, execs, loop=info)

    def own_results(self, body: Block, instrs: list[Instr], pos: Span | None) -> list[Value]:
        """The body's results, each a value of the body: one defined before the loop (`y = x` in
        it) gets a copy (`retag`) at the end of the body, as the registers a trip hands to the next
        are the body's own."""
        inside = {v.id for v in body.params} | {v.id for o in body.ops for v in o.outs}
        results = []
        for r in body.results:
            if r.id not in inside:
                copy = self.prog.new_value(r.type)
                instrs.append(self.local("retag", copy, [r], {}, pos, self.holders(r)))
                r = copy
            results.append(r)
        return results

    def lower_carried(self, body: Block, trips: int) -> list[Instr]:
        """A loop body, lowered again while a public loop-carried value is held by parties that do
        not hold its next value (an input-only party that only receives a copy of a reveal): those
        parties then get the value delivered in each trip instead of carrying it."""
        while True:
            known = {id(lst) for lst in self.defined_in.values()}
            before = dict(self.delivered)
            instrs = self.lower_block(body, trips)
            narrowed = False
            for p, r in zip(body.params[1:], body.results):
                if p.type.vis == PUBLIC and not self.holders(p) <= self.holders(r):
                    self.avail[p.id] = self.holders(p) & self.holders(r)
                    narrowed = True
            if not narrowed:
                return instrs
            self.delivered = {k: c for k, c in self.delivered.items()
                              if k in before or id(self.defined_in[k[0]]) in known}


# ---- cost ------------------------------------------------------------------------------------
def cost_of(items: list, parties: list[str], names: dict[str, str]) -> CostReport:
    """Whole-run figures from the kernels' declared costs (loop bodies times their trips)."""
    rep = CostReport(bytes_sent={p: 0 for p in parties}, party_rounds={p: 0 for p in parties})
    for it in flat_rounds(items):
        if isinstance(it, Round):
            rep.rounds += 1
            for p in it.parties:
                rep.party_rounds[p] += 1
            bound = sum(max(k.cost.bytes_sent.values(), default=0) for k in it.kernels)
            rep.max_message_bytes = max(rep.max_message_bytes, bound)
            for site in {s for s in map(call_site, it.kernels) if s is not None}:
                rep.calls.setdefault(site, {"call": names.get(site, "?"), "at": site, "rounds": 0, "times": 1})
                rep.calls[site]["rounds"] += 1
        elif it.kind == "kernel":
            for p, b in it.cost.bytes_sent.items():
                rep.bytes_sent[p] = rep.bytes_sent.get(p, 0) + b
            n = it.out.type.size if it.out is not None else 0
            for counter in it.spec.counts:
                setattr(rep, counter, getattr(rep, counter) + n)
        elif it.kind == "loop":
            inner = cost_of(it.loop.body, parties, names)
            lp = {"line": it.pos.line if it.pos else 0, "trips": it.loop.trips, "rounds": inner.rounds}
            rep.loops.append(lp)
            loops = inner.loops
            inner.loops = []
            rep.add(inner, it.loop.trips)
            rep.loops.extend(loops)
    return rep


def call_site(it: Instr) -> str | None:
    """Where the user's code called the function this instruction comes from, if any."""
    if it.pos is None or it.pos.caller is None:
        return None
    return str(it.pos.chain()[0])


def call_name(site: Span) -> str:
    """The called name as written at a call site (`sigmoid`, `ml.sigmoid`), read from the source."""
    text = source_line(site) or ""
    m = re.match(r"[A-Za-z_][\w.]*", text[site.col - 1:])
    return m.group(0) if m else "?"


def scheduled(prog: Program, low: Lowering | None = None) -> tuple[list, int]:
    """The program lowered for its protocol and batched into rounds: (items, rounds). `prog` is
    left as it was: the lowering's new values are numbered past prog.next_id, which is restored,
    so the program prints (and its IR text compiles) the same afterwards."""
    low = low or Lowering(prog)
    next_id = prog.next_id
    try:
        low.count_uses(prog.body)
        return schedule(low.lower_block(prog.body))
    finally:
        prog.next_id = next_id


def lower(prog: Program) -> tuple[dict[str, list], CostReport]:
    """Per-party bytecode instruction lists (registers allocated) and the program's cost report."""
    low = Lowering(prog)
    items, _rounds = scheduled(prog, low)
    report = cost_of(items, prog.parties, low.call_names)
    report.critical_rounds, per_trip = critical_rounds(items, prog.parties)
    for lp in report.loops:
        lp["critical_rounds"] = per_trip.get(lp["line"], lp["rounds"])
    compute = frozenset(prog.compute)
    values = value_types(items)
    rounds = kernel_rounds(items)
    words = get_protocol(prog.protocol).share_words
    pending = pending_values(items)  # three arrays per component (compiler/pending.py)
    arrays = {i: 3 for i in pending} | {i: 2 for i in low.masks.values}  # a masked value: e and a (compiler/masks.py)
    code = {}
    for p in prog.parties:
        sizes = {i: v.type.size * 8 * (words * arrays.get(i, 1) if v.type.vis == SECRET and p in compute else 1)
                 for i, v in values.items()}
        code[p], _nregs, report.peak_memory[p] = allocate(project(items, p, compute), sizes, rounds)
    return code, report
