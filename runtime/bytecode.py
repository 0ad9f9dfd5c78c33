"""The bytecode format, defined once: the compiler emits through it, the runtime decodes through it.

A party's bytecode file is msgpack of {"veil": VERSION, "party": name, "code": [instr, ...]}.
Instructions are lists whose first element names their kind:

  ["op", opcode, out, [ins], {attrs}, [secret flags of ins], line]    local, no communication
      (flag 0: clear; 1: a protocol sharing; 2: additive shares, one array per party)
  ["kernel", name, iid, out, [ins], {attrs}, line]                      start a protocol kernel
  ["send"]                                                              a round's one message per peer
  ["recv"]                                                              ... and one from each peer
  ["loop", trips, start, step, ivar, [params], [inits], [results], [outs], [body], line]
      (in the file, trips/start/step travel as one 24-byte field, so the size never depends on them)
  ["output", name, reg, dtype, scale, line]                             deliver a value here
  ["free", [regs]]                                                      drop dead large values

`iid` is the kernel's program-wide instruction id; with a per-instruction run counter it keys the
kernel's randomness, so every party draws the same streams. numpy arrays in attrs are encoded as
{"nd": [dtype, shape, bytes]}, tuples as lists. Encoding is deterministic (sorted attr keys).
"""
from __future__ import annotations

import hashlib
import struct
from typing import Any

import msgpack
import numpy as np

VERSION = 2  # 2: rounds split into send/recv, free
KINDS = ("op", "kernel", "send", "recv", "loop", "output", "free")


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


_LOOP_HEAD = struct.Struct(">qqq")


def _pack_loops(code: list) -> list:
    """Loop bounds as one fixed-width field, so a program's size does not depend on its trip counts."""
    out = []
    for ins in code:
        if ins[0] == "loop":
            ins = ["loop", _LOOP_HEAD.pack(*ins[1:4]), *ins[4:9], _pack_loops(ins[9]), ins[10]]
        out.append(ins)
    return out


def _unpack_loops(code: list) -> list:
    out = []
    for ins in code:
        if ins[0] == "loop":
            ins = ["loop", *_LOOP_HEAD.unpack(ins[1]), *ins[2:7], _unpack_loops(ins[7]), ins[8]]
        out.append(ins)
    return out


def encode(party: str, code: list) -> bytes:
    """One party's bytecode file."""
    return msgpack.packb(_canonical({"veil": VERSION, "party": party, "code": _pack_loops(code)}),
                         default=_default, use_bin_type=True)


def decode(data: bytes) -> dict:
    """Read a bytecode file; refuses another format version."""
    obj = msgpack.unpackb(data, object_hook=_hook, raw=False, strict_map_key=False)
    if not isinstance(obj, dict) or obj.get("veil") != VERSION:
        found = obj.get("veil") if isinstance(obj, dict) else "?"
        raise ValueError(f"bytecode format version {found}, this veil reads version {VERSION}: recompile")
    obj["code"] = _unpack_loops(obj["code"])
    return obj


def program_hash(files: dict[str, bytes], core: dict) -> str:
    """The hash parties compare at the handshake: every party's bytecode and the manifest's core."""
    h = hashlib.sha256()
    h.update(msgpack.packb(_canonical(core), default=_default, use_bin_type=True))
    for party in sorted(files):
        h.update(party.encode() + b"\0" + hashlib.sha256(files[party]).digest())
    return h.hexdigest()


def disassemble(code: list, indent: str = "") -> list[str]:
    """Readable text of a party's instructions (`veil inspect`)."""
    out = []
    for ins in code:
        kind = ins[0]
        if kind == "op":
            _, opcode, dst, srcs, attrs, sec, line = ins
            args = ", ".join(("s" if s else "") + f"r{r}" for r, s in zip(srcs, sec))
            at = " ".join(f"{k}={_short(v)}" for k, v in attrs.items())
            out.append(f"{indent}r{dst} = {opcode}({args}) {at}".rstrip() + f"    ; line {line}")
        elif kind == "kernel":
            _, name, iid, dst, srcs, attrs, line = ins
            at = " ".join(f"{k}={_short(v)}" for k, v in attrs.items())
            lhs = f"r{dst} = " if dst is not None else ""
            out.append(f"{indent}{lhs}kernel.{name}#{iid}({', '.join(f'r{r}' for r in srcs)}) {at}".rstrip()
                       + f"    ; line {line}")
        elif kind == "send":
            out.append(f"{indent}-- send --")
        elif kind == "recv":
            out.append(f"{indent}-- recv --")
        elif kind == "loop":
            _, trips, start, step, ivar, params, inits, results, outs, body, line = ins
            out.append(f"{indent}loop r{ivar} in range({start}, {start + trips * step}, {step}) "
                       f"carry {params} <- {inits}    ; line {line}")
            out.extend(disassemble(body, indent + "    "))
            out.append(f"{indent}end loop: {outs} <- {results}")
        elif kind == "free":
            out.append(f"{indent}free {', '.join(f'r{r}' for r in ins[1])}")
        elif kind == "output":
            _, name, reg, dtype, scale, line = ins
            out.append(f"{indent}output {name} = r{reg} ({dtype})    ; line {line}")
    return out


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<{v.dtype} {list(v.shape)}>" if v.size > 4 else str(v.astype(np.int64).tolist())
    return repr(v)
