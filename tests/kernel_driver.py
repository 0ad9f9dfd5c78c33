"""Test-only driver: runs one protocol kernel at every participant in-process, round by round.

It routes each party's ``send`` arrays to their peers, checks every party receives exactly what it
``expect``s, and holds the kernel to its declared ``cost`` (rounds, elements sent and PRG words
drawn per party).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.runtime.prg import PRG
from veil.runtime.protocols.base import Context, Exchange, PRGSource, Protocol

U64 = np.uint64
COMPUTE = ["carol", "alice", "bob"]  # deliberately not in sorted order
INPUT_PARTY = "dave"
PARTIES = COMPUTE + [INPUT_PARTY]

_ops = itertools.count(1)


def make_keys(parties: list[str], seed: int = 0) -> dict[str, dict[str | None, bytes]]:
    """Matching pairwise key dicts for every party, derived from a seed (never for deployment)."""

    def key(*names: str) -> bytes:
        return hashlib.sha256(f"veil-test|{seed}|{'|'.join(names)}".encode()).digest()[:16]

    return {
        p: {q: key(*sorted((p, q))) for q in parties if q != p} | {None: key("private", p)}
        for p in parties
    }


def make_prgs(parties: list[str], seed: int = 0) -> dict[str, PRG]:
    """One PRG per party, with consistent pairwise keys."""
    return {p: PRG(k) for p, k in make_keys(parties, seed).items()}


class RecordingPRG(PRGSource):
    """A PRG that remembers every draw's (peer, op, stream, shape), to audit stream use."""

    def __init__(self, inner: PRGSource):
        self.inner = inner
        self.draws: list[tuple[str | None, tuple[int, int], int, tuple[int, ...]]] = []
        self.calls = 0  # calls a kernel made (a bulk draw is one, however many rows it has)
        self._bulk = False

    def draw(self, peer, op, stream, shape):
        self.calls += not self._bulk
        self.draws.append((peer, op, stream, tuple(shape)))
        return self.inner.draw(peer, op, stream, shape)

    def draw_rows(self, op, rows, n):
        self.calls += 1
        self._bulk = True
        try:
            return super().draw_rows(op, rows, n)  # one recorded draw per row
        finally:
            self._bulk = False


@dataclass
class Trace:
    """What happened in one kernel run: rounds and elements each party sent, and what it received."""

    rounds: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, list[dict[str, list[np.ndarray]]]] = field(default_factory=dict)
    draws: dict[str, list[tuple]] = field(default_factory=dict)  # party -> (peer, op, stream, shape)
    prg_calls: dict[str, int] = field(default_factory=dict)  # party -> calls to its PRG
    links: list[frozenset[tuple[str, str]]] = field(default_factory=list)  # (sender, receiver) per round
    n: int = 0


def _size(result: Any) -> int | None:
    """Elements of a kernel's output (a clear array or a share tuple), None if no output."""
    if result is None:
        return None
    if not isinstance(result, (tuple, np.ndarray)) and isinstance(getattr(result, "shape", None), tuple):
        return math.prod(result.shape)  # a share held in another form (rep3_pending.Pending)
    if isinstance(result, tuple):
        sizes = {np.asarray(r).size for r in result}
        assert len(sizes) == 1, f"share components differ in size: {sizes}"
        return sizes.pop()
    return np.asarray(result).size


def _check_round(exchanges: dict[str, Exchange], active: set[str]) -> None:
    """Every array sent goes to a running peer that expects exactly that many from the sender."""
    for p, ex in exchanges.items():
        for q, arrays in ex.send.items():
            assert q != p, f"{p} sends to itself"
            assert q in active, f"{p} sends to {q}, which is not running this kernel"
            for a in arrays:
                assert isinstance(a, np.ndarray) and a.dtype == U64, f"{p}->{q}: not a uint64 array"
        for q, k in ex.expect.items():
            assert q in active, f"{p} expects from {q}, which is not running this kernel"
    for p, ex in exchanges.items():
        for q in active - {p}:
            sent = len(exchanges[q].send.get(p, [])) if q in exchanges else 0
            want = ex.expect.get(q, 0)
            assert sent == want, f"{p} expects {want} arrays from {q}, which sends {sent}"


def run_kernel_traced(protocol: Protocol, kernel: str, inputs: dict[str, tuple], attrs: dict,
                      parties: list[str], compute: list[str], seed: int = 0,
                      op: tuple[int, int] | None = None) -> tuple[dict[str, Any], Trace]:
    """Run a kernel at its participants; return each one's result and the run's trace."""
    spec = protocol.kernels[kernel]
    active = spec.participants(compute, **attrs)
    assert active <= set(parties), f"participants {active} not among {parties}"
    prgs = make_prgs(parties, seed)
    op = op if op is not None else (next(_ops), 0)
    recorders = {p: RecordingPRG(prgs[p]) for p in active}
    gens = {}
    for p in sorted(active):
        ctx = Context(p, compute, recorders[p])
        ctx.op = op
        gens[p] = spec.fn(ctx, *inputs[p], **attrs)
    trace = Trace(rounds={p: 0 for p in active}, sent={p: 0 for p in active},
                  received={p: [] for p in active}, draws={p: recorders[p].draws for p in active})
    results: dict[str, Any] = {}
    pending: dict[str, Any] = {p: None for p in active}  # value to resume each generator with
    while gens:
        exchanges: dict[str, Exchange] = {}
        for p, g in list(gens.items()):
            try:
                ex = g.send(pending[p])
            except StopIteration as stop:
                results[p] = stop.value
                del gens[p]
                continue
            assert isinstance(ex, Exchange), f"{p} yielded {type(ex)}"
            exchanges[p] = ex
        if not exchanges:
            break
        _check_round(exchanges, active)
        trace.links.append(frozenset((q, p) for q, ex in exchanges.items() for p, arrays in ex.send.items() if arrays))
        for p, ex in exchanges.items():
            trace.rounds[p] += 1
            trace.sent[p] += sum(a.size for arrays in ex.send.values() for a in arrays)
        for p, ex in exchanges.items():
            got = {q: [a.copy() for a in exchanges[q].send.get(p, [])] for q in ex.expect}
            for arrays in got.values():
                for a in arrays:
                    a.flags.writeable = False  # like buffers off the wire
            trace.received[p].append(got)
            pending[p] = got
    trace.prg_calls = {p: recorders[p].calls for p in active}
    sizes = {s for s in map(_size, results.values()) if s is not None}
    assert len(sizes) <= 1, f"parties disagree on the output size: {sizes}"
    trace.n = sizes.pop() if sizes else 0
    cost = spec.cost(compute, trace.n, sizes=operand_sizes(inputs, active), **attrs)
    assert set(cost.sent) == active, f"cost declares {set(cost.sent)}, participants are {active}"
    assert trace.rounds == {p: cost.rounds for p in active}, f"rounds {trace.rounds} != declared {cost.rounds}"
    assert trace.sent == cost.sent, f"sent {trace.sent} != declared {cost.sent}"
    if cost.links is not None:  # the rounds compiler/latency.py follows are the ones that happen
        assert tuple(trace.links) == cost.links, f"links {trace.links} != declared {cost.links}"
    drawn = {p: sum(math.prod(shape) for *_, shape in trace.draws[p]) for p in active}
    assert drawn == cost.draws, f"randomness drawn {drawn} != declared {cost.draws}"
    return results, trace


def operand_sizes(inputs: dict[str, tuple], active: set[str]) -> list[int]:
    """Elements of each kernel operand, from whichever participant holds it."""
    arity = max(len(inputs[p]) for p in active)
    sizes = []
    for i in range(arity):
        held = [inputs[p][i] for p in sorted(active) if i < len(inputs[p]) and inputs[p][i] is not None]
        sizes.append(_size(held[0]) if held else 0)
    return sizes


def run_kernel(protocol: Protocol, kernel: str, inputs: dict[str, tuple], attrs: dict,
               parties: list[str], compute: list[str], **kw: Any) -> dict[str, Any]:
    """Run a kernel at its participants and return each one's result (cost-checked)."""
    return run_kernel_traced(protocol, kernel, inputs, attrs, parties, compute, **kw)[0]


def share_value(x: np.ndarray, compute: list[str] = COMPUTE,
                rng: np.random.Generator | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random rep3 shares of a clear ring tensor (test data only: numpy randomness)."""
    rng = rng if rng is not None else np.random.default_rng()
    x = np.asarray(x, dtype=U64)
    x0 = rng.integers(0, 2**64, size=x.shape, dtype=U64, endpoint=False)
    x1 = rng.integers(0, 2**64, size=x.shape, dtype=U64, endpoint=False)
    x2 = x - x0 - x1
    comps = [x0, x1, np.asarray(x2, dtype=U64)]
    return {p: (comps[i], comps[(i + 1) % 3]) for i, p in enumerate(compute)}


def open_value(shares: dict[str, tuple[np.ndarray, np.ndarray]], compute: list[str] = COMPUTE) -> np.ndarray:
    """The clear value of rep3 shares, after checking the replicated components agree."""
    comps = [np.asarray(shares[p][0], dtype=U64) for p in compute]
    for i, p in enumerate(compute):
        nxt = np.asarray(shares[p][1], dtype=U64)
        assert np.array_equal(nxt, comps[(i + 1) % 3]), f"{p}'s second component is inconsistent"
    total = comps[0].copy()
    np.add(total, comps[1], out=total, casting="unsafe")
    np.add(total, comps[2], out=total, casting="unsafe")
    return total


def bit_counts(words: np.ndarray) -> np.ndarray:
    """Ones per bit position (0 = least significant) over a flat uint64 array."""
    bits = np.unpackbits(words.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    return bits.sum(axis=0)


def assert_balanced_bits(words: np.ndarray, sigmas: float = 6.0, what: str = "the array") -> None:
    """Every bit position is 1 in about half of the words (binomial, within `sigmas`); a failure
    names `what` was checked."""
    words = np.asarray(words, dtype=np.uint64).reshape(-1)
    n = words.size
    dev = np.abs(bit_counts(words) - n / 2) / (math.sqrt(n) / 2)
    assert dev.max() < sigmas, f"{what} is non-uniform: bit position {int(dev.argmax())} off by {dev.max():.1f} sigma"


def assert_fresh_paired_streams(trace: Any) -> None:
    """No party draws a (key, stream) twice in a call, and both ends of a pairwise key draw the same
    streams with the same shapes (so their words agree and are never reused)."""
    streams = {}
    for p, draws in trace.draws.items():
        keys = [(peer, stream) for peer, _, stream, _ in draws]
        assert len(keys) == len(set(keys)), f"{p} draws a stream twice: {keys}"
        streams[p] = {(peer, stream, shape) for peer, _, stream, shape in draws}
    for p in streams:
        for q in streams:
            if p != q:
                mine = {(s, sh) for peer, s, sh in streams[p] if peer == q}
                theirs = {(s, sh) for peer, s, sh in streams[q] if peer == p}
                assert mine == theirs, f"{p} and {q} draw different streams of their key: {mine} vs {theirs}"

