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
    """A kernel's declared cost for an output of `n` elements: rounds and elements sent per party."""

    rounds: int
    sent: dict[str, int]  # party name -> ring elements (8 bytes each) that party sends

    @property
    def bytes_sent(self) -> dict[str, int]:
        return {p: 8 * e for p, e in self.sent.items()}


class Context:
    """What a kernel knows about where it runs: its party, the parties, randomness for this call."""

    def __init__(self, party: str, compute: list[str], prg: "PRGSource"):
        self.party = party
        self.compute = compute
        self.index = compute.index(party) if party in compute else None
        self.prg = prg
        self.op: tuple[int, int] = (0, 0)  # (instruction id, instance) of the running kernel

    def rand(self, peer: str | None, stream: int, shape: tuple[int, ...]) -> np.ndarray:
        """uint64 randomness known to me and `peer` (None: to me alone), unique to this call."""
        return self.prg.draw(peer, self.op, stream, shape)

    def party_at(self, i: int) -> str:
        """The compute party at (cyclic) position i."""
        return self.compute[i % len(self.compute)]


class PRGSource:
    """Interface of the runtime's cryptographic randomness (see veil.runtime.prg)."""

    def draw(self, peer: str | None, op: tuple[int, int], stream: int, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class KernelSpec:
    """A protocol kernel: its code, who takes part, and its declared cost."""

    fn: Callable[..., KernelGen]
    participants: Callable[..., set[str]]  # (compute, **attrs) -> parties that run it
    cost: Callable[..., Cost]              # (compute, n, **attrs) -> Cost


class Protocol:
    """A protocol plug-in: share representation, local linear ops, and communicating kernels."""

    name: str = ""
    n_compute: int = 0
    share_words: int = 1  # ring words a compute party holds per secret element
    kernels: dict[str, KernelSpec] = {}

    # ---- local (communication-free) operations on shares -------------------------------
    def map(self, fn: Callable[..., np.ndarray], *shares: Any) -> Any:
        """Apply a linear, structural numpy function to every share component alike."""
        raise NotImplementedError

    def add_public(self, ctx: Context, x: Any, c: np.ndarray) -> Any:
        """x + c for a secret x and a public (ring-encoded) c."""
        raise NotImplementedError

    def from_public(self, ctx: Context, c: np.ndarray) -> Any:
        """A sharing of a public value known to every compute party, without communication."""
        raise NotImplementedError

    def to_additive(self, ctx: Context, x: Any) -> np.ndarray:
        """My share of x in additive form (for sums of products truncated once)."""
        raise NotImplementedError

    def add_public_additive(self, ctx: Context, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """z + c for an additively shared z and a public c."""
        raise NotImplementedError

    def zeros_like_public(self, ctx: Context, c: np.ndarray) -> Any:
        """Old name of `from_public`, kept so existing callers keep working."""
        return self.from_public(ctx, c)

    def mul_public(self, x: Any, c: np.ndarray) -> Any:
        """x * c for a secret x and a public (ring-encoded) c; no truncation."""
        raise NotImplementedError
