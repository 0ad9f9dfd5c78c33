"""A secret opened once under a mask, for products that reuse it (compiler/masks.py).

A Beaver product opens x - a for a fresh mask a every time. When x does not change across a
loop's trips (the training data), a protocol that declares a `mask_kernel` opens e = x - a once,
before the loop, and every product inside takes the pair (e, a_i) instead of x: its triple reuses
a (the dealer keeps it) with a fresh b each time, so each trip opens only the other operand
(SecureML's reuse of the masked data matrix). The value is the same at every party in shape: the
computing parties hold e and their share a_i of the mask, the dealer the whole mask a (e absent).

Structural linear ops (slicing by the loop variable, transposing, reshaping) apply to e and a
alike: L(x) - L(a) = L(e), so the mirrored chain stays a masked value of L(x) under the mask L(a).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True, slots=True)
class Masked:
    """e = x - a (opened; None at the dealer) and this party's part of the mask a."""

    e: np.ndarray | None
    a: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.a)

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> "Masked":
        """The same linear op on both parts."""
        return Masked(None if self.e is None else fn(self.e), fn(self.a))


def masked_local(fn: Callable[..., np.ndarray], args: list[Any], masked: list[bool]) -> Masked:
    """A local op whose one data operand is masked (the others public, e.g. a slice's start)."""
    k = masked.index(True)
    if masked.count(True) != 1:
        raise ValueError("a masked op takes exactly one masked operand")

    def one(part: np.ndarray) -> np.ndarray:
        return fn(*args[:k], part, *args[k + 1:])
    return args[k].map(one)
