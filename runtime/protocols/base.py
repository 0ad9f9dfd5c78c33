"""The one interface every protocol plug-in implements, and the cost declarations the compiler reads.

A protocol *kernel* is a generator function. It runs at one party and talks to its peers in
rounds: each ``yield Exchange(...)`` is one communication round, after which the runtime sends
the kernel's ``send`` arrays (bundled with every other kernel active in the same round into ONE
message per peer), receives, and resumes the kernel with ``{peer: [arrays]}`` holding exactly
``expect[peer]`` arrays from each peer. The kernel's ``return`` value is its result.

Values a kernel sees: public/private values are numpy ``uint64`` arrays holding the ring
encoding (two's complement; fix values scaled by 2**F). Secret values are protocol-specific share
objects (rep3: a tuple ``(x_i, x_next)`` of uint64 arrays).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator

import numpy as np

Arrays = list[np.ndarray]
KernelGen = Generator["Exchange", dict[str, Arrays], Any]


@dataclass
class Exchange:
    """One round: arrays to send to each peer, and how many arrays to expect from each."""

    send: dict[str, Arrays] = field(default_factory=dict)
    expect: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Cost:
    """A kernel's declared cost for an output of `n` elements: rounds, ring elements (8 bytes each)
    each party sends, and words of correlated randomness each party draws from its PRG streams."""

    rounds: int
    sent: dict[str, int]
    draws: dict[str, int] = field(default_factory=dict, compare=False)
    # who sends to whom in each round, (sender, receiver) pairs; None: every participant to every
    # other. compiler/latency.py follows the links to count the rounds each party waits on.
    links: tuple[frozenset[tuple[str, str]], ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.links is not None and len(self.links) != self.rounds:
            raise ValueError(f"a cost of {self.rounds} rounds declares links for {len(self.links)}")

    @property
    def bytes_sent(self) -> dict[str, int]:
        return {p: 8 * e for p, e in self.sent.items()}


def links(*rounds: tuple[tuple[str, str], ...]) -> tuple[frozenset[tuple[str, str]], ...]:
    """A Cost's `links`, one tuple of (sender, receiver) pairs per round."""
    return tuple(frozenset(r) for r in rounds)


def dealt_first(base: Cost, dealer: str, receiver: str, masker: str, sent: int, drawn: int) -> Cost:
    """`base` after one round in which `dealer` alone sends `receiver` `sent` words, each masked
    by (or less) a word that `masker` draws with it (`drawn` words each): a pending product."""
    words = dict(base.sent)
    words[dealer] += sent
    draws = dict(base.draws)
    draws[masker] += drawn
    draws[dealer] += drawn
    return Cost(base.rounds + 1, words, draws, links(((dealer, receiver),)) + (base.links or ()))


class Context:
    """What a kernel knows about where it runs: its party, the parties, randomness for this call."""

    def __init__(self, party: str, compute: list[str], prg: "PRGSource"):
        self.party = party
        self.compute = compute
        self.index = compute.index(party) if party in compute else None
        # (my index, my successor, my predecessor) on the ring of compute parties; None outside it
        self.ring: tuple[int, str, str] | None = None if self.index is None else (
            self.index, compute[(self.index + 1) % len(compute)], compute[(self.index - 1) % len(compute)])
        self.prg = prg
        self.op: tuple[int, int] = (0, 0)  # (instruction id, instance) of the running kernel

    def rand(self, peer: str | None, stream: int, shape: tuple[int, ...]) -> np.ndarray:
        """uint64 randomness known to me and `peer` (None: to me alone), unique to this call."""
        return self.prg.draw(peer, self.op, stream, shape)

    def rand_many(self, peer: str | None, streams: tuple[int, ...], n: int) -> list[np.ndarray]:
        """Rows of n words, row r exactly rand(peer, streams[r], (n,)), drawn at once."""
        return self.prg.draw_many(peer, self.op, streams, n)

    def rand_rows(self, rows: tuple[tuple[str | None, int], ...], n: int) -> list[np.ndarray]:
        """Rows of n words, row r exactly rand(*rows[r], (n,)): draws under several keys (peer,
        stream) at once."""
        return self.prg.draw_rows(self.op, rows, n)

    def party_at(self, i: int) -> str:
        """The compute party at (cyclic) position i."""
        return self.compute[i % len(self.compute)]


class PRGSource:
    """Interface of the runtime's cryptographic randomness (see veil.runtime.prg)."""

    def draw(self, peer: str | None, op: tuple[int, int], stream: int, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def draw_many(self, peer: str | None, op: tuple[int, int], streams: tuple[int, ...], n: int) -> list[np.ndarray]:
        """Row r: draw(peer, op, streams[r], (n,)). One draw per stream here; sources override it."""
        return self.draw_rows(op, tuple((peer, s) for s in streams), n)

    def draw_rows(self, op: tuple[int, int], rows: tuple[tuple[str | None, int], ...], n: int) -> list[np.ndarray]:
        """Row r: draw(rows[r][0], op, rows[r][1], (n,)). One draw per row here; sources override it."""
        return [self.draw(peer, op, stream, (n,)) for peer, stream in rows]


def all_compute(compute: list[str], **_: Any) -> set[str]:
    """Participants of a kernel that every compute party runs."""
    return set(compute)


@dataclass(frozen=True)
class KernelSpec:
    """A protocol kernel: its code, who takes part, its declared cost, and what the cost report
    counts it as. `cost(compute, n, sizes=[operand sizes], **attrs)` gives rounds, elements sent
    and randomness drawn per party for an output of n elements."""

    fn: Callable[..., KernelGen]
    participants: Callable[..., set[str]]  # (compute, **attrs) -> parties that run it
    cost: Callable[..., Cost]
    counts: tuple[str, ...] = ()           # cost-report counters it adds n to ("multiplications", ...)
    shaped: bool = False                   # it takes the output shape as attribute `shape`
    name: str = ""                         # its name in the bytecode


def kernel(table: dict[str, KernelSpec], cost: Callable[..., Cost], *,
           participants: Callable[..., set[str]] = all_compute, counts: tuple[str, ...] = (),
           shaped: bool = False, name: str | None = None) -> Callable[[Callable[..., KernelGen]], Callable]:
    """Declare a kernel beside its code: `@kernel(KERNELS, cost=...)` above the generator."""
    def declare(fn: Callable[..., KernelGen]) -> Callable[..., KernelGen]:
        table[name or fn.__name__] = KernelSpec(fn, participants, cost, counts, shaped, name or fn.__name__)
        return fn
    return declare


class Protocol:
    """A protocol plug-in: what it can do (declared as data), its share representation, local
    linear ops on shares, and its communicating kernels."""

    name: str = ""
    positional: int = 3               # compute parties named in order: rep3(p0, p1, p2)
    keywords: tuple[str, ...] = ()    # named roles, all required: dealer2(p0, p1, dealer=p2)
    share_words: int = 1              # ring words a compute party holds per secret element
    share_kinds: tuple[str, ...] = ("arith",)
    kernels: dict[str, KernelSpec] = {}
    native: dict[str, str] = {}       # IR opcode with secret operands -> the kernel computing it
    fusions: dict[tuple[str, str], str] = {}  # (producer, consumer) -> one kernel for both
    additive: dict[str, str] = {}     # sums of products kept additive: product opcode -> kernel ...
    additive_trunc: str | None = None  # ... and the kernel truncating such a sum once
    keep: tuple[str, ...] = ()         # truncating kernels that can stop after round 1 (keep=True) ...
    pending_kernels: dict[str, str] = {}  # ... the kernels taking such an output: kernel -> variant ...
    pending_ops: tuple[str, ...] = ()     # ... the linear ops keeping it pending (mul: by a public) ...
    pending_mixed: bool = True         # ... whether a sharing may join it (a sum, a product's other operand) ...
    pending_addend: tuple[str, ...] = ()  # ... (if not) truncating kernels adding a sharing to their input ...
    pending_finish: str | None = None  # ... and the kernel finishing it into a sharing
    mask_kernel: str | None = None    # opens a loop-invariant secret once under a mask (runtime/masked.py) ...
    maskable: tuple[str, ...] = ()     # ... for these kernels to take in its place (compiler/masks.py)

    @classmethod
    def compute_parties(cls, args: list[str], kwargs: dict[str, str]) -> list[str]:
        """The compute parties in protocol order, from the protocol line's arguments."""
        return list(args) + [kwargs[k] for k in cls.keywords]

    @classmethod
    def usage(cls) -> str:
        """How a protocol line names this protocol's parties."""
        names = [f"p{i}" for i in range(cls.positional)]
        names += [f"{k}=p{cls.positional + i}" for i, k in enumerate(cls.keywords)]
        return f"{cls.name}({', '.join(names)})"

    # ---- local (communication-free) operations on shares -------------------------------
    def map(self, fn: Callable[..., np.ndarray], *shares: Any) -> Any:
        """Apply a linear, structural numpy function to every share component alike."""
        raise NotImplementedError

    def map_into(self, ufunc: np.ufunc, k: int, shares: list[Any]) -> Any:
        """ufunc over the shares' components (as `map`), written into shares[k]'s arrays when
        runtime.inplace proves nothing else holds them; None when it cannot (compute afresh)."""
        return None

    def add_public(self, ctx: Context, x: Any, c: np.ndarray) -> Any:
        """x + c for a secret x and a public (ring-encoded) c."""
        raise NotImplementedError

    def from_public(self, ctx: Context, c: np.ndarray) -> Any:
        """A sharing of a public value known to every compute party, without communication."""
        raise NotImplementedError

    def pending_local(self, ctx: Context, opcode: str, args: list, pending: list[bool], secret: list[bool]) -> Any:
        """A linear op with a pending operand (a protocol declaring `pending_ops` computes it)."""
        raise NotImplementedError

    def to_additive(self, ctx: Context, x: Any) -> np.ndarray:
        """My share of x in additive form (for sums of products truncated once)."""
        raise NotImplementedError

    def add_public_additive(self, ctx: Context, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """z + c for an additively shared z and a public c."""
        raise NotImplementedError

    def mul_public(self, x: Any, c: np.ndarray) -> Any:
        """x * c for a secret x and a public (ring-encoded) c; no truncation."""
        raise NotImplementedError
