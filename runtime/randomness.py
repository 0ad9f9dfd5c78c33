"""Random numbers for programs, defined once: the public seeded generators (plain numpy, so a
numpy reference trainer imports exactly the values a program's `random_uniform(..., seed=S)`,
`random_normal(..., seed=S)` and `permutations(..., seed=S)` hold) and the private draw each
compute party contributes to a secret random tensor (the OS CSPRNG; the emulator passes a
seedable generator instead, for reproducible emulation)."""
from __future__ import annotations

import os

import numpy as np

EMULATE_SEED_ENV = "VEIL_EMULATE_SEED"  # an int: `veil emulate` draws secret random numbers from it


def _shape(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def public_uniform(seed: int, shape, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Floats uniform in [low, high), the same for everyone who knows the seed."""
    return np.random.default_rng(seed).uniform(low, high, size=_shape(shape))


def public_normal(seed: int, shape, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Floats from N(mean, std^2), the same for everyone who knows the seed."""
    return np.random.default_rng(seed).normal(mean, std, size=_shape(shape))


def public_permutations(seed: int, count: int, n: int) -> np.ndarray:
    """`count` independent permutations of range(n), one per row, as int64 (count, n)."""
    rng = np.random.default_rng(seed)
    out = np.empty((int(count), int(n)), dtype=np.int64)
    for row in out:
        row[:] = rng.permutation(int(n))
    return out


def private_draw(shape, bits: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Ring words uniform in [0, 2^bits): from the OS CSPRNG, or from `rng` when emulating."""
    shape = _shape(shape)
    if rng is not None:
        return rng.integers(0, 1 << bits, size=shape, dtype=np.uint64)
    n = int(np.prod(shape, dtype=np.int64))
    words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) if n else np.zeros(0, dtype=np.uint64)
    return (words >> np.uint64(64 - bits)).reshape(shape) if bits else np.zeros(shape, dtype=np.uint64)


def emulation_rng(seed: int | None = None) -> np.random.Generator:
    """The generator `veil emulate` draws from: `seed`, else $VEIL_EMULATE_SEED, else fresh entropy."""
    if seed is None:
        raw = os.environ.get(EMULATE_SEED_ENV, "").strip()
        seed = int(raw) if raw.lstrip("-").isdigit() else None
    return np.random.default_rng(None if seed is None else abs(seed))
