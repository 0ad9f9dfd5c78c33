"""The bytecode format, defined once: the compiler emits these records, the runtime decodes them.

A party's program is a list of instruction records:

  OpInstr      a local op, no communication (secret flag per input: 0 clear, 1 a protocol
               sharing, 2 additive shares, one array per party, 3 a truncation left pending,
               4 a secret opened under a mask)
  KernelInstr  start a protocol kernel; `iid` is its program-wide id, which with a per-instruction
               run counter keys the kernel's randomness, so every party draws the same streams
  Send, Recv   a round's one message to each peer, and one from each peer
  Loop         a counted loop with carried registers and a body
  Output       deliver a register's value here (inside a loop: one row of a history output)
  Free         drop dead large values

Every instruction but Send, Recv and Free keeps its source position: a Span (file base name,
line, column) whose `caller` chain leads up to the user's line that called the function.

A file is msgpack of {"veil": VERSION, "party": name, "files": [file names], "positions":
[[file index, line, col, caller index or None], ...], "code": [instr, ...]}; each instruction is a
list [tag, fields...] with its position as an index into "positions". A loop's trips, start and
step travel as one 24-byte field, so the size never depends on them; a loop's variable name, when
known, is one more field at its end. numpy arrays in attrs are
{"nd": [dtype, shape, bytes]}, tuples lists; attr keys are sorted, so encoding is deterministic.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, replace
from typing import Any, Union

import msgpack
import numpy as np

from .diagnostics import Span

VERSION = 5  # 3: typed records, source positions with their call chains; 4: the pending flag; 5: masked
ADDITIVE = 2  # an OpInstr operand's secret flag: additive shares, one array per party
PENDING = 3   # ... a truncation's output left pending (compiler/pending.py)
MASKED = 4    # ... a secret opened once under a mask (compiler/masks.py, runtime/masked.py)


@dataclass(frozen=True, slots=True)
class OpInstr:
    """A local operation: `out = opcode(*ins, **attrs)`."""

    opcode: str
    out: int
    ins: tuple[int, ...]
    attrs: dict[str, Any]
    sec: tuple[int, ...]
    pos: Span | None = None

    def reads(self) -> tuple[int, ...]:
        return self.ins

    def writes(self) -> tuple[int, ...]:
        return (self.out,)

    def renamed(self, m: dict[int, int]) -> "OpInstr":
        return replace(self, out=m[self.out], ins=tuple(m[r] for r in self.ins))


@dataclass(frozen=True, slots=True)
class KernelInstr:
    """Start a protocol kernel; an input is None where this party does not supply it."""

    name: str
    iid: int
    out: int | None
    ins: tuple[int | None, ...]
    attrs: dict[str, Any]
    pos: Span | None = None

    def reads(self) -> tuple[int, ...]:
        return tuple(r for r in self.ins if r is not None)

    def writes(self) -> tuple[int, ...]:
        return () if self.out is None else (self.out,)

    def renamed(self, m: dict[int, int]) -> "KernelInstr":
        return replace(self, out=None if self.out is None else m.get(self.out),
                       ins=tuple(None if r is None else m[r] for r in self.ins))


@dataclass(frozen=True, slots=True)
class Send:
    """A round's first half: one message to each peer, bundling every kernel in flight."""

    def reads(self) -> tuple[int, ...]:
        return ()

    def writes(self) -> tuple[int, ...]:
        return ()

    def renamed(self, m: dict[int, int]) -> "Send":
        return self


@dataclass(frozen=True, slots=True)
class Recv:
    """A round's second half: one message from each peer; the kernels in flight resume."""

    def reads(self) -> tuple[int, ...]:
        return ()

    def writes(self) -> tuple[int, ...]:
        return ()

    def renamed(self, m: dict[int, int]) -> "Recv":
        return self


@dataclass(frozen=True, slots=True)
class Loop:
    """`for ivar in range(start, start + trips * step, step)`, carrying params (from inits, then
    from results); the final results land in outs."""

    trips: int
    start: int
    step: int
    ivar: int
    params: tuple[int, ...]
    inits: tuple[int, ...]
    results: tuple[int, ...]
    outs: tuple[int, ...]
    body: tuple["Instr", ...]
    pos: Span | None = None
    name: str = ""  # the loop variable's name in the source, for live values and the progress line

    def reads(self) -> tuple[int, ...]:
        return self.inits

    def writes(self) -> tuple[int, ...]:
        return self.outs

    def renamed(self, m: dict[int, int]) -> "Loop":
        """The loop's own registers renamed (its body is left to the caller)."""
        def rn(regs: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(m[r] for r in regs)
        return replace(self, ivar=m[self.ivar], params=rn(self.params), inits=rn(self.inits),
                       results=rn(self.results), outs=rn(self.outs))


@dataclass(frozen=True, slots=True)
class Output:
    """Deliver register `reg` as output `name` (decoded with dtype and scale)."""

    name: str
    reg: int
    dtype: str
    scale: int
    pos: Span | None = None

    def reads(self) -> tuple[int, ...]:
        return (self.reg,)

    def writes(self) -> tuple[int, ...]:
        return ()

    def renamed(self, m: dict[int, int]) -> "Output":
        return replace(self, reg=m[self.reg])


@dataclass(frozen=True, slots=True)
class Free:
    """Drop dead large values."""

    regs: tuple[int, ...]

    def reads(self) -> tuple[int, ...]:
        return ()

    def writes(self) -> tuple[int, ...]:
        return ()

    def renamed(self, m: dict[int, int]) -> "Free":
        return replace(self, regs=tuple(m[r] for r in self.regs))


Instr = Union[OpInstr, KernelInstr, Send, Recv, Loop, Output, Free]
TAGS: dict[type, str] = {OpInstr: "op", KernelInstr: "kernel", Send: "send", Recv: "recv", Loop: "loop",
                         Output: "output", Free: "free"}
_CLASSES = {tag: cls for cls, tag in TAGS.items()}
_LOOP_HEAD = struct.Struct(">qqq")


def position(span: Span | None) -> Span | None:
    """What an instruction keeps of a span: file base name, line, column, and the call chain
    (base names keep the bytecode independent of where the program was compiled)."""
    if span is None:
        return None
    return Span(os.path.basename(span.file), span.line, span.col, caller=position(span.caller))


# ---- encoding ------------------------------------------------------------------------------------
class _Positions:
    """The file's position table: each distinct position once, its caller before it."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.index: dict[Span, int] = {}
        self.rows: list[list] = []

    def add(self, pos: Span | None) -> int | None:
        if pos is None:
            return None
        if pos not in self.index:
            caller = self.add(pos.caller)
            f = self.files.setdefault(pos.file, len(self.files))
            self.index[pos] = len(self.rows)
            self.rows.append([f, pos.line, pos.col, caller])
        return self.index[pos]


def _enc(ins: Instr, table: _Positions) -> list:
    tag = TAGS[type(ins)]
    if isinstance(ins, Loop):
        return [tag, _LOOP_HEAD.pack(ins.trips, ins.start, ins.step), ins.ivar, list(ins.params),
                list(ins.inits), list(ins.results), list(ins.outs), [_enc(b, table) for b in ins.body],
                table.add(ins.pos)] + ([ins.name] if ins.name else [])
    if isinstance(ins, OpInstr):
        return [tag, ins.opcode, ins.out, list(ins.ins), ins.attrs, list(ins.sec), table.add(ins.pos)]
    if isinstance(ins, KernelInstr):
        return [tag, ins.name, ins.iid, ins.out, list(ins.ins), ins.attrs, table.add(ins.pos)]
    if isinstance(ins, Output):
        return [tag, ins.name, ins.reg, ins.dtype, ins.scale, table.add(ins.pos)]
    if isinstance(ins, Free):
        return [tag, list(ins.regs)]
    return [tag]


def _dec(raw: list, pos: list[Span]) -> Instr:
    cls = _CLASSES.get(raw[0])
    if cls is None:
        raise ValueError(f"unknown bytecode instruction {raw[0]!r}")
    def at(i: int | None) -> Span | None:
        return None if i is None else pos[i]
    if cls is Loop:
        _, head, ivar, params, inits, results, outs, body, p, *name = raw
        return Loop(*_LOOP_HEAD.unpack(head), ivar, tuple(params), tuple(inits), tuple(results), tuple(outs),
                    tuple(_dec(b, pos) for b in body), at(p), name[0] if name else "")
    if cls is OpInstr:
        _, opcode, out, ins, attrs, sec, p = raw
        return OpInstr(opcode, out, tuple(ins), attrs, tuple(sec), at(p))
    if cls is KernelInstr:
        _, name, iid, out, ins, attrs, p = raw
        return KernelInstr(name, iid, out, tuple(ins), attrs, at(p))
    if cls is Output:
        _, name, reg, dtype, scale, p = raw
        return Output(name, reg, dtype, scale, at(p))
    if cls is Free:
        return Free(tuple(raw[1]))
    return cls()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"nd": [obj.dtype.str, list(obj.shape), obj.tobytes()]}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in bytecode")


def _hook(obj: dict) -> Any:
    if len(obj) == 1 and "nd" in obj:
        dt, shape, raw = obj["nd"]
        return np.frombuffer(raw, dtype=np.dtype(dt)).reshape(shape).copy()
    return obj


def _canonical(x: Any) -> Any:
    """Sort dict keys recursively and turn tuples into lists, for byte-identical output."""
    if isinstance(x, dict):
        return {k: _canonical(x[k]) for k in sorted(x)}
    if isinstance(x, (list, tuple)):
        return [_canonical(i) for i in x]
    return x


def encode(party: str, code: list[Instr]) -> bytes:
    """One party's bytecode file."""
    table = _Positions()
    body = [_enc(ins, table) for ins in code]
    files = sorted(table.files, key=table.files.__getitem__)
    obj = {"veil": VERSION, "party": party, "files": files, "positions": table.rows, "code": body}
    return msgpack.packb(_canonical(obj), default=_default, use_bin_type=True)


def decode(data: bytes) -> dict:
    """Read a bytecode file ({"party", "code": [records]}); refuses another format version."""
    obj = msgpack.unpackb(data, object_hook=_hook, raw=False, strict_map_key=False)
    if not isinstance(obj, dict) or obj.get("veil") != VERSION:
        found = obj.get("veil") if isinstance(obj, dict) else "?"
        raise ValueError(f"bytecode format version {found}, this veil reads version {VERSION}: recompile")
    pos: list[Span] = []
    for f, line, col, caller in obj.pop("positions"):
        pos.append(Span(obj["files"][f], line, col, caller=None if caller is None else pos[caller]))
    obj["code"] = [_dec(raw, pos) for raw in obj["code"]]
    return obj


# The manifest entries the program hash covers (with every party's bytecode): what the parties run.
CORE_KEYS = ("program", "parties", "protocol", "compute", "frac_bits", "params", "inputs", "outputs")


def file_digest(data: bytes) -> str:
    """A bytecode file's SHA-256, as the manifest records it (so a load names the damaged file)."""
    return hashlib.sha256(data).hexdigest()


def program_hash(files: dict[str, bytes], core: dict) -> str:
    """The hash parties compare at the handshake: every party's bytecode and the manifest's core."""
    h = hashlib.sha256()
    h.update(msgpack.packb(_canonical(core), default=_default, use_bin_type=True))
    for party in sorted(files):
        h.update(party.encode() + b"\0" + hashlib.sha256(files[party]).digest())
    return h.hexdigest()


# ---- reading ---------------------------------------------------------------------------------------
def where(pos: Span | None) -> str:
    """`fraud.mpc:27:13 → ml.mpc:13:5`, or a stand-in when the position is unknown."""
    return pos.where() if pos is not None else "an unknown position"


def disassemble(code: list[Instr], indent: str = "") -> list[str]:
    """Readable text of a party's instructions (`veil inspect`)."""
    out = []
    for ins in code:
        at = f"    ; {where(ins.pos)}" if getattr(ins, "pos", None) is not None else ""
        if isinstance(ins, OpInstr):
            args = ", ".join(("s" if s else "") + f"r{r}" for r, s in zip(ins.ins, ins.sec))
            out.append(f"{indent}r{ins.out} = {ins.opcode}({args}) {_attrs(ins.attrs)}".rstrip() + at)
        elif isinstance(ins, KernelInstr):
            lhs = f"r{ins.out} = " if ins.out is not None else ""
            args = ", ".join(f"r{r}" for r in ins.ins)
            out.append(f"{indent}{lhs}kernel.{ins.name}#{ins.iid}({args}) {_attrs(ins.attrs)}".rstrip() + at)
        elif isinstance(ins, Send):
            out.append(f"{indent}-- send --")
        elif isinstance(ins, Recv):
            out.append(f"{indent}-- recv --")
        elif isinstance(ins, Loop):
            stop = ins.start + ins.trips * ins.step
            named = f" ({ins.name})" if ins.name else ""
            out.append(f"{indent}loop r{ins.ivar}{named} in range({ins.start}, {stop}, {ins.step}) "
                       f"carry {list(ins.params)} <- {list(ins.inits)}" + at)
            out.extend(disassemble(list(ins.body), indent + "    "))
            out.append(f"{indent}end loop: {list(ins.outs)} <- {list(ins.results)}")
        elif isinstance(ins, Free):
            out.append(f"{indent}free {', '.join(f'r{r}' for r in ins.regs)}")
        elif isinstance(ins, Output):
            out.append(f"{indent}output {ins.name} = r{ins.reg} ({ins.dtype})" + at)
    return out


def _attrs(attrs: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in attrs.items())


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<{v.dtype} {list(v.shape)}>" if v.size > 4 else str(v.astype(np.int64).tolist())
    return repr(v)
