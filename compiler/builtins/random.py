"""Random numbers: random_uniform and random_normal (public and reproducible with a seed, secret
and known to nobody without one), and permutations (public seeded shuffles). The generators are
runtime/randomness.py's, so a numpy reference imports the same public values."""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.diagnostics import TypeErr
from veil.runtime.randomness import public_normal, public_permutations, public_uniform
from ..ir import Value
from ..types import SECRET, Type
from .args import Args, _const_size, _describe, _shape_arg

IRWIN_HALL_TERMS = 12  # a secret normal is the sum of 12 secret uniforms, less 6: variance 1, |z| <= 6


def _number(a: Args, key: str, default: float) -> float:
    """A compile-time number argument (a literal, a param, arithmetic on them)."""
    v = a.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeErr(f"{a.name}()'s {key} is a compile-time number, got {_describe(v)}", a.span(key),
                      "compute it from params and shapes, e.g. (6.0 / (n_in + n_out)) ** 0.5")
    if not np.isfinite(v):
        raise TypeErr(f"{a.name}()'s {key} must be finite", a.span(key))
    return float(v)


def _seed(a: Args, required: bool = False) -> int | None:
    """The public seed: a non-negative compile-time int, or None (secret random numbers)."""
    s = a.get("seed")
    if s is None:
        if required:
            raise TypeErr(f"{a.name}() needs seed=S, a compile-time int", a.e.span,
                          "e.g. permutations(EPOCHS, N // BATCH, seed=SEED) with `param SEED = 1`")
        return None
    if isinstance(s, bool) or not isinstance(s, int) or s < 0:
        raise TypeErr(f"{a.name}()'s seed is a non-negative compile-time int, got {_describe(s)}", a.span("seed"),
                      "a param such as `param SEED = 1`; a seed computed at run time is not supported")
    return s


def _secret_uniform01(b, shape: tuple, span) -> Value:
    """A secret fix tensor uniform in [0, 1) on the 2^-F grid (compiler/expand_random.py)."""
    F = b.frac_bits
    return b.emit("random", [], Type(SECRET, "fix", shape, F), span, shape=list(shape), bits=F)


def _affine(b, u: Value, scale: float, offset: float, span) -> Value:
    """offset + scale * u, skipping the product or the sum when they change nothing."""
    v = u if scale == 1.0 else b.trunc(b.binop("*", u, scale, span), span)
    return v if offset == 0.0 else b.binop("+", v, offset, span)


def _random_uniform(b, e, scope) -> Any:
    a = Args(b, "random_uniform", e, scope, ["shape", "low", "high", "seed"], 1)
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    low, high = _number(a, "low", 0.0), _number(a, "high", 1.0)
    if not low < high:
        raise TypeErr(f"random_uniform() needs low < high, got [{low:g}, {high:g})", e.span)
    seed = _seed(a)
    if seed is not None:
        _const_size(shape, e.span)
        return b.const(public_uniform(seed, shape, low, high), "fix", e.span)
    return _affine(b, _secret_uniform01(b, shape, e.span), high - low, low, e.span)


def _random_normal(b, e, scope) -> Any:
    a = Args(b, "random_normal", e, scope, ["shape", "mean", "std", "seed"], 1)
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    mean, std = _number(a, "mean", 0.0), _number(a, "std", 1.0)
    if std < 0:
        raise TypeErr(f"random_normal()'s std must not be negative, got {std:g}", a.span("std"))
    seed = _seed(a)
    if seed is not None:
        _const_size(shape, e.span)
        return b.const(public_normal(seed, shape, mean, std), "fix", e.span)
    terms = _secret_uniform01(b, (IRWIN_HALL_TERMS,) + shape, e.span)
    total = b.emit("sum", [terms], terms.type.with_(shape=shape), e.span, axis=0)
    return _affine(b, total, std, mean - std * IRWIN_HALL_TERMS / 2, e.span)


def _permutations(b, e, scope) -> Any:
    a = Args(b, "permutations", e, scope, ["count", "n", "seed"], 2)
    count, n = a.get("count"), a.get("n")
    for key, v in (("count", count), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise TypeErr(f"permutations()'s {key} is a non-negative compile-time int, got {_describe(v)}",
                          a.span(key), "e.g. permutations(EPOCHS, N // BATCH, seed=SEED)")
    seed = _seed(a, required=True)
    _const_size((count, n), e.span)
    return b.const(public_permutations(seed, count, n), "int", e.span)


RANDOM = {"random_uniform": _random_uniform, "random_normal": _random_normal, "permutations": _permutations}
