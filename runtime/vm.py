"""The virtual machine: runs one party's bytecode, local ops in numpy, kernels round by round."""
from __future__ import annotations

import asyncio
import functools
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .bytecode import ADDITIVE, MASKED, PENDING, Free, Instr, KernelInstr, Loop, OpInstr, Output, Recv, Send, where
from .diagnostics import NetworkError, RuntimeFailure, Span
from .masked import masked_local
from .protocols.base import Context, Exchange, Protocol
from .protocols.common import COMMON
from .ops import OPS


_SPECIAL = frozenset({"const", "input", "retag", "from_public", "to_additive"})  # `local` handles these itself
# Liveness hook: a local op of at least this many element steps (an add: ~10-13 ms here) runs in a
# worker thread, and the loop gets a turn between instructions at least this often, so heartbeats go
# out during long steps. Shorter ops stay on the loop's thread: like a kernel's C passes they hold it for
# milliseconds, and handing a 10^6-element add to a thread made the suite's 10^6 multiplications
# slower (docs/perf.md, "Local ops on the loop's thread").
OFFLOAD_WORK = 1 << 24
YIELD_SECONDS = 0.05
INPLACE_ELEMENTS = 1 << 15  # an add or sub of a dying secret this large writes into its arrays


def _clone(ctx: Context) -> Context:
    """A shallow copy of a kernel's context (what copy.copy does, without its generic machinery)."""
    new = object.__new__(type(ctx))
    new.__dict__.update(ctx.__dict__)
    return new


def _ring_int(v: int) -> np.ndarray:
    """A Python int as a 0-d ring array (two's complement), as asring(np.int64(v)) gives it."""
    return np.array(v & 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64)


def _elements(x: Any) -> int:
    """How many ring elements a register holds (an array, or a tuple of shares)."""
    if isinstance(x, np.ndarray):
        return x.size
    if isinstance(x, (tuple, list)):
        return sum(_elements(v) for v in x)
    return 0


def _columns(x: Any) -> int:
    """The last dimension of a register's value (of a share's first component), 1 for a vector."""
    while isinstance(x, (tuple, list)) and x:
        x = x[0]
    return x.shape[-1] if isinstance(x, np.ndarray) and x.ndim >= 2 else 1


def work(opcode: str, operands: list[Any]) -> int:
    """A local op's element steps, for the offload decision: a matrix product's multiply-adds (its
    first operand's elements times the second's columns), else its operands' elements."""
    if opcode == "matmul" and len(operands) == 2:
        return _elements(operands[0]) * _columns(operands[1])
    return sum(_elements(x) for x in operands)

# Who follows the run (live values, the progress line: runtime/progress.py), set by `veil run`;
# None (the API, tests) prints nothing. A follower has `iteration(loops)` and `value(name, loops, ring,
# dtype, scale)`, where loops is [[Loop, k], ...] outermost first, k the iteration running.
FOLLOW: ContextVar[Any] = ContextVar("veil_follow", default=None)


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
    pos: Span | None
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
    follow: Any = field(default_factory=FOLLOW.get)
    loops: list[list] = field(default_factory=list)  # [[Loop, iteration], ...] running, outermost first
    histories: dict[str, tuple[list, tuple[int, ...], str, int]] = field(default_factory=dict)
    _yielded: float = 0.0
    _kernels: dict[int, tuple[Any, dict[str, Any]]] = field(default_factory=dict)  # iid -> (spec, attrs)
    _plans: dict[int, tuple[OpInstr, Callable[[list], Any], bool, int | None]] = field(default_factory=dict)  # id(ins) -> _prepared's
    _dying: dict[int, frozenset[int]] = field(default_factory=dict)  # id(op) -> operand registers that die at it
    _scanned: dict[int, Any] = field(default_factory=dict)  # id(block) -> block, once _dying has its ops

    async def run(self, code: list[Instr]) -> dict[str, tuple[np.ndarray, str, int]]:
        """Execute the whole program; returns {output name: (ring array, dtype, scale)}."""
        t0 = time.perf_counter()
        with np.errstate(over="ignore"):
            await self.block(code)
        if self.pending:
            raise RuntimeFailure(f"internal: {len(self.pending)} kernels never completed at {self.party}")
        for name, (rows, trips, dtype, scale) in self.histories.items():
            self.outputs[name] = (np.stack(rows).reshape(trips + np.shape(rows[0])), dtype, scale)
        self.stats.seconds = time.perf_counter() - t0
        return self.outputs

    async def block(self, code: list[Instr] | tuple[Instr, ...]) -> None:
        if self._scanned.get(id(code)) is not code:
            self._scan(code)
        clock = time.perf_counter
        for ins in code:
            if clock() - self._yielded > YIELD_SECONDS:
                await asyncio.sleep(0)
                self._yielded = clock()
            match ins:  # the instructions of every round first
                case KernelInstr():
                    self.start_kernel(ins)
                case Send():
                    await self.send()
                case Recv():
                    await self.recv()
                case OpInstr():
                    if self._prepared(ins)[2]:
                        await asyncio.to_thread(self.op, ins)
                    else:
                        self.op(ins)
                case Loop():
                    await self.loop(ins)
                case Free():
                    for r in ins.regs:
                        self.regs.pop(r, None)
                case Output() if self.loops:
                    self.history(ins)
                case Output():
                    self.outputs[ins.name] = (self.regs[ins.reg], ins.dtype, ins.scale)
                case _:
                    raise RuntimeFailure(f"internal: unknown instruction {ins!r}")

    def _scan(self, code: list[Instr] | tuple[Instr, ...]) -> None:
        """Which operand registers die at each local op of a block: those the Free right after it
        releases, and the one it overwrites (the compiler's liveness, as regalloc emitted it)."""
        for ins, nxt in zip(code, [*code[1:], None]):
            if isinstance(ins, OpInstr):
                freed = set(nxt.regs) if isinstance(nxt, Free) else set()
                self._dying[id(ins)] = frozenset(r for r in ins.ins if r in freed or r == ins.out)
        self._scanned[id(code)] = code

    async def loop(self, ins: Loop) -> None:
        state = [self.regs[r] for r in ins.inits]
        here = [ins, 0]
        self.loops.append(here)
        carried = [r for r in ins.results if r not in ins.params]
        for k in range(ins.trips):
            here[1] = k
            if self.follow is not None:
                self.follow.iteration(self.loops)
            if k:  # last trip's results now live in the params alone (an in-place op may check)
                for r in carried:
                    self.regs.pop(r, None)
            self.regs[ins.ivar] = _ring_int(ins.start + k * ins.step)
            self.regs.update(zip(ins.params, state))
            state = None  # no local name holds a carried value while the body runs
            await self.block(ins.body)
            state = [self.regs[r] for r in ins.results]
        self.loops.pop()
        if self.follow is not None:
            self.follow.iteration(self.loops)
        for o, v in zip(ins.outs, state):
            self.regs[o] = v

    def history(self, ins: Output) -> None:
        """An output inside loops: one row of its history (shape: the loops' trips, then the value's)."""
        value = self.regs[ins.reg]
        trips = tuple(lp.trips for lp, _k in self.loops)
        self.histories.setdefault(ins.name, ([], trips, ins.dtype, ins.scale))[0].append(value)
        if self.follow is not None:
            self.follow.value(ins.name, self.loops, value, ins.dtype, ins.scale)

    # ---- local operations ------------------------------------------------------------------
    def op(self, ins: OpInstr) -> None:
        regs = self.regs
        _, plan, _, into = self._prepared(ins)
        args = [regs[r] for r in ins.ins]
        try:
            if into is None:
                regs[ins.out] = plan(args)
                return
            del regs[ins.ins[into]]  # it dies here: args may now be its only holder
            out = self.protocol.map_into(OPS[ins.opcode].ufunc, into, args)
            regs[ins.out] = plan(args) if out is None else out
        except RuntimeFailure:
            raise
        except Exception as exc:  # a bug or a data-dependent failure: name where it happened
            raise self._failed(ins.pos, ins.opcode, exc) from exc

    def _failed(self, pos: Span | None, what: str, exc: Exception) -> RuntimeFailure:
        """`bob failed at fraud.mpc:27:13 → ml.mpc:13:5 (kernel mul_trunc): ...`"""
        return RuntimeFailure(f"{self.party} failed at {where(pos)} ({what}): {exc}")

    def _prepared(self, ins: OpInstr) -> tuple[OpInstr, Callable[[list], Any], bool, int | None]:
        """What a local instruction's runs share, decided at its first: how `local` computes it,
        whether it goes to a worker thread (its `work`), and which dying operand it may write its
        result into (a register's shape is the same on every run, being its value's static type)."""
        known = self._plans.get(id(ins))
        if known is None or known[0] is not ins:  # first run (an id may be reused by a new instruction)
            operands = [self.regs.get(r) for r in ins.ins]
            big = work(ins.opcode, operands) >= OFFLOAD_WORK
            known = self._plans[id(ins)] = (ins, self._plan(ins.opcode, ins.attrs, ins.sec), big,
                                            self._into(ins, operands))
        return known

    def _into(self, ins: OpInstr, operands: list[Any]) -> int | None:
        """The operand an add or sub of large secrets may compute into: one that dies at it and
        appears once (the protocol still checks, every run, that nothing else holds its arrays)."""
        spec = OPS.get(ins.opcode)
        if spec is None or spec.ufunc is None or not ins.sec or any(s != 1 for s in ins.sec):
            return None
        dying = self._dying.get(id(ins), frozenset())
        for k, r in enumerate(ins.ins):
            if r in dying and ins.ins.count(r) == 1 and _elements(operands[k]) >= INPLACE_ELEMENTS:
                return k
        return None

    def _plan(self, opcode: str, attrs: dict, sec: tuple[int, ...]) -> Callable[[list], Any]:
        """`local` for one instruction as a function of its operands: the common cases (all operands
        public, or all secret and not additive) call the op directly; the rest go through `local`."""
        spec = OPS.get(opcode)
        if MASKED in sec:
            clear = functools.partial(spec.clear, **attrs) if attrs else spec.clear
            return lambda args: masked_local(clear, args, [s == MASKED for s in sec])
        if PENDING in sec:
            pending, secret = [s == PENDING for s in sec], [s == 1 for s in sec]
            return lambda args: self.protocol.pending_local(self.ctx, opcode, args, pending, secret)
        if opcode in _SPECIAL or spec is None or spec.clear is None or (any(sec) and (ADDITIVE in sec or not all(sec))):
            return lambda args: self.local(opcode, args, attrs, sec)
        call = functools.partial(spec.clear, **attrs) if attrs else spec.clear
        if not any(sec):
            return lambda args: call(*args)
        share_map = self.protocol.map
        return lambda args: share_map(call, *args)

    def local(self, opcode: str, args: list, attrs: dict, sec: tuple[int, ...]) -> Any:
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
    def start_kernel(self, ins: KernelInstr) -> None:
        known = self._kernels.get(ins.iid)
        if known is None:  # what never changes between a kernel instruction's runs, looked up once
            spec = self.protocol.kernels.get(ins.name) or COMMON[ins.name]
            known = self._kernels[ins.iid] = (spec, {k: (tuple(v) if k == "shape" else v) for k, v in ins.attrs.items()})
        spec, kw = known
        run = self.runs.get(ins.iid, 0)
        self.runs[ins.iid] = run + 1
        ctx = _clone(self.ctx)  # each kernel keeps its own op id across its rounds
        ctx.op = (ins.iid, run)
        args = [self.regs[r] if r is not None else None for r in ins.ins]
        self.stats.kernels += 1
        try:
            gen = spec.fn(ctx, *args, **kw)
            ex = next(gen)
        except StopIteration as stop:
            self._finish(ins.out, stop.value)
            return
        except RuntimeFailure:
            raise
        except Exception as exc:
            raise self._failed(ins.pos, f"kernel {ins.name}", exc) from exc
        self.pending.append(_Pending(gen, ins.out, ex, ins.pos, ins.name))

    def _finish(self, out: int | None, value: Any) -> None:
        if out is not None and value is not None:
            self.regs[out] = value

    async def send(self) -> None:
        """A round's first half: ONE message to each peer, bundling every kernel in flight."""
        if len(self.pending) == 1:
            sends = self.pending[0].exchange.send
        else:
            sends = {}
            for p in self.pending:
                for peer, arrays in p.exchange.send.items():
                    sends.setdefault(peer, []).extend(arrays)
        messages = {peer: arrays for peer, arrays in sends.items() if arrays}
        try:
            await self.mesh.send_all(messages)
            self.stats.messages += len(messages)
        except NetworkError as err:
            raise self._at_pending(err) from None

    def _at_pending(self, err: NetworkError) -> NetworkError:
        """The network error, naming the source positions of the kernels in flight."""
        at = ", ".join(sorted({where(p.pos) for p in self.pending}))
        return NetworkError(f"{err.message} (while running {at})")

    async def recv(self) -> None:
        """A round's second half: one message from each peer; every kernel in flight resumes."""
        if len(self.pending) == 1:  # one kernel in flight: its messages are the whole round's
            p = self.pending[0]
            received = await self._receive(p.exchange.expect)
            self.stats.rounds += 1
            if not self._step(p, received):
                self.pending = []
            return
        expects: dict[str, int] = {}
        for p in self.pending:
            for peer, n in p.exchange.expect.items():
                expects[peer] = expects.get(peer, 0) + n
        received = await self._receive(expects)
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
            if self._step(p, mine):
                still.append(p)
        self.pending = still

    async def _receive(self, expects: dict[str, int]) -> dict[str, list[np.ndarray]]:
        """The waiting part of a round: the expected message from each peer, checked for size
        (an empty list for a peer nothing is expected from)."""
        received: dict[str, list[np.ndarray]] = {}
        try:
            for peer, n in expects.items():
                if n:
                    got = await self.mesh.recv(peer)
                    if len(got) != n:
                        raise NetworkError(f"{self.party} expected {n} arrays from {peer}, got {len(got)}: "
                                           "the parties are not running the same program")
                    received[peer] = got
                else:
                    received[peer] = []
        except NetworkError as err:
            raise self._at_pending(err) from None
        return received

    def _step(self, p: _Pending, mine: dict[str, list[np.ndarray]]) -> bool:
        """Resume one kernel with its share of the round's messages; False once it has finished."""
        try:
            p.exchange = p.gen.send(mine)
            return True
        except StopIteration as stop:
            self._finish(p.out, stop.value)
            return False
        except RuntimeFailure:
            raise
        except Exception as exc:
            raise self._failed(p.pos, f"kernel {p.name}", exc) from exc
