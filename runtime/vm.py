"""The virtual machine: runs one party's bytecode, local ops in numpy, kernels round by round."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.runtime.diagnostics import NetworkError, RuntimeFailure

from .protocols.base import Context, Exchange, Protocol
from .protocols.common import COMMON
from .ops import OPS
from .ring import asring


ADDITIVE = 2  # the secret flag of an operand held in additive form (see bytecode.py)


@dataclass
class Stats:
    """What one party measured: rounds it took part in, bytes it sent, seconds."""

    rounds: int = 0
    bytes_sent: int = 0
    messages: int = 0
    seconds: float = 0.0
    kernels: int = 0


@dataclass
class _Pending:
    gen: Any
    out: int | None
    exchange: Exchange
    line: int
    name: str


@dataclass
class VM:
    party: str
    protocol: Protocol
    ctx: Context
    mesh: Any
    inputs: dict[str, np.ndarray]
    regs: dict[int, Any] = field(default_factory=dict)
    outputs: dict[str, tuple[np.ndarray, str, int]] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    runs: dict[int, int] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    line: int = 0

    async def run(self, code: list) -> dict[str, tuple[np.ndarray, str, int]]:
        """Execute the whole program; returns {output name: (ring array, dtype, scale)}."""
        t0 = time.perf_counter()
        with np.errstate(over="ignore"):
            await self.block(code)
        if self.pending:
            raise RuntimeFailure(f"internal: {len(self.pending)} kernels never completed at {self.party}")
        self.stats.seconds = time.perf_counter() - t0
        return self.outputs

    async def block(self, code: list) -> None:
        for ins in code:
            kind = ins[0]
            if kind == "op":
                self.op(ins)
            elif kind == "kernel":
                self.start_kernel(ins)
            elif kind == "send":
                await self.send()
            elif kind == "recv":
                await self.recv()
            elif kind == "loop":
                await self.loop(ins)
            elif kind == "free":
                for r in ins[1]:
                    self.regs.pop(r, None)
            elif kind == "output":
                _, name, reg, dtype, scale, line = ins
                self.outputs[name] = (self.regs[reg], dtype, scale)
            else:
                raise RuntimeFailure(f"internal: unknown instruction {kind!r}")

    async def loop(self, ins: list) -> None:
        _, trips, start, step, ivar, params, inits, results, outs, body, line = ins
        state = [self.regs[r] for r in inits]
        for k in range(trips):
            self.regs[ivar] = asring(np.int64(start + k * step))
            for p, v in zip(params, state):
                self.regs[p] = v
            await self.block(body)
            state = [self.regs[r] for r in results]
        for o, v in zip(outs, state):
            self.regs[o] = v

    # ---- local operations ------------------------------------------------------------------
    def op(self, ins: list) -> None:
        _, opcode, out, srcs, attrs, sec, line = ins
        self.line = line
        args = [self.regs[r] for r in srcs]
        try:
            self.regs[out] = self.local(opcode, args, attrs, sec)
        except RuntimeFailure:
            raise
        except Exception as exc:  # a bug or a data-dependent failure: name where it happened
            raise RuntimeFailure(f"{self.party} failed at line {line} ({opcode}): {exc}") from exc

    def local(self, opcode: str, args: list, attrs: dict, sec: list[bool]) -> Any:
        P, ctx = self.protocol, self.ctx
        if opcode == "const":
            return attrs["value"]
        if opcode == "input":
            return self.inputs[attrs["name"]]
        if opcode == "retag":
            return args[0]
        if opcode == "from_public":
            return P.from_public(ctx, args[0])
        if opcode == "to_additive":
            return P.to_additive(ctx, args[0])
        fn = OPS[opcode].clear
        if not any(sec):
            return fn(*args, **attrs)
        if ADDITIVE in sec:  # additive shares: one array per party, linear ops apply directly
            if opcode in ("add", "sub") and not all(sec):
                x, y = args
                if sec[0]:  # additive +/- public
                    return P.add_public_additive(ctx, x, OPS["neg"].clear(y) if opcode == "sub" else y)
                return P.add_public_additive(ctx, OPS["neg"].clear(y) if opcode == "sub" else y, x)  # public +/- additive
            return fn(*args, **attrs)
        if opcode in ("add", "sub") and not all(sec):
            x, y = args
            if opcode == "add":
                return P.add_public(ctx, x, y) if sec[0] else P.add_public(ctx, y, x)
            if sec[0]:
                return P.add_public(ctx, x, OPS["neg"].clear(y))
            return P.add_public(ctx, P.map(OPS["neg"].clear, y), x)
        if opcode in ("mul", "matmul", "dslice") and not all(sec):
            k = sec.index(True)
            other = args[1 - k]
            if k == 0:
                return P.map(lambda s: fn(s, other, **attrs), args[0])
            return P.map(lambda s: fn(other, s, **attrs), args[1])
        if not all(sec):
            raise RuntimeFailure(f"internal: {opcode} mixes secret and public operands")
        return P.map(lambda *s: fn(*s, **attrs), *args)

    # ---- kernels and rounds ----------------------------------------------------------------
    def start_kernel(self, ins: list) -> None:
        _, name, iid, out, srcs, attrs, line = ins
        self.line = line
        spec = self.protocol.kernels.get(name) or COMMON[name]
        run = self.runs.get(iid, 0)
        self.runs[iid] = run + 1
        ctx = copy.copy(self.ctx)  # each kernel keeps its own op id across its rounds
        ctx.op = (iid, run)
        args = [self.regs[r] if r is not None else None for r in srcs]
        kw = {k: (tuple(v) if k == "shape" else v) for k, v in attrs.items()}
        gen = spec.fn(ctx, *args, **kw)
        self.stats.kernels += 1
        try:
            ex = next(gen)
        except StopIteration as stop:
            self._finish(out, stop.value)
            return
        self.pending.append(_Pending(gen, out, ex, line, name))

    def _finish(self, out: int | None, value: Any) -> None:
        if out is not None and value is not None:
            self.regs[out] = value

    async def send(self) -> None:
        """A round's first half: ONE message to each peer, bundling every kernel in flight."""
        sends: dict[str, list[np.ndarray]] = {}
        for p in self.pending:
            for peer, arrays in p.exchange.send.items():
                sends.setdefault(peer, []).extend(arrays)
        try:
            for peer, arrays in sends.items():
                if arrays:
                    await self.mesh.send(peer, arrays)
                    self.stats.messages += 1
        except NetworkError as err:
            raise self._at_pending_lines(err) from None

    def _at_pending_lines(self, err: NetworkError) -> NetworkError:
        """The network error, naming the source lines of the kernels in flight."""
        where = ", ".join(sorted({str(p.line) for p in self.pending}))
        return NetworkError(f"{err.message} (while running line {where})")

    async def recv(self) -> None:
        """A round's second half: one message from each peer; every kernel in flight resumes."""
        expects: dict[str, int] = {}
        for p in self.pending:
            for peer, n in p.exchange.expect.items():
                expects[peer] = expects.get(peer, 0) + n
        try:
            received = {}
            for peer, n in expects.items():
                if n:
                    got = await self.mesh.recv(peer)
                    if len(got) != n:
                        raise NetworkError(f"{self.party} expected {n} arrays from {peer}, got {len(got)}: "
                                           "the parties are not running the same program")
                    received[peer] = got
        except NetworkError as err:
            raise self._at_pending_lines(err) from None
        self.stats.rounds += 1
        offsets = {peer: 0 for peer in received}
        still: list[_Pending] = []
        for p in self.pending:
            mine = {}
            for peer, n in p.exchange.expect.items():
                o = offsets[peer] if peer in offsets else 0
                mine[peer] = received[peer][o:o + n] if n else []
                if n:
                    offsets[peer] = o + n
            try:
                p.exchange = p.gen.send(mine)
                still.append(p)
            except StopIteration as stop:
                self._finish(p.out, stop.value)
        self.pending = still
