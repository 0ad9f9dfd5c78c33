"""rep3: 3-party replicated secret sharing over Z_2^64 (ABY3 family), semi-honest, honest majority.

Compute party Pi (i = 0, 1, 2) holds the pair ``(x_i, x_{i+1})`` (indices mod 3) of uint64 arrays
with x = x0 + x1 + x2 mod 2^64. Kernels are generators (see ``base``); each ``yield`` is one round.
Inside a kernel every array is handled flat (1-D) and reshaped on the way out, so 0-d values never
degrade into numpy scalars (whose arithmetic warns on wrap-around). The security argument is in
docs/security.md.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, KernelSpec, Protocol, kernel, links
from veil.runtime.inplace import same_shapes, sole, writable
from veil.runtime.ring import asring
from veil.runtime.ring import matmul2  # one pass of the C kernel where built, else numpy

U64 = np.uint64
Share = tuple[np.ndarray, np.ndarray]

# PRG stream numbers. Within one kernel every independent draw under the same key has its own.
S_ALPHA = 0          # mul/matmul: the zero sharing added to z_i; reveal_to an outsider: likewise
S_SHARE = 0          # share: the component known to the owner and its predecessor
S_OWN0, S_OWN1 = 0, 1  # share from an input party: its private draws of x0, x1

# The opened value is offset by 2^62 (rep3_fused.OFFSET), so z + 2^62 lies in [0, 2^63) for |z| < 2^62.
MAX_BITS = 62


# ---- small helpers --------------------------------------------------------------------------

_U64 = np.dtype(U64)


def _flat(a: Any) -> np.ndarray:
    """A 1-D uint64 view (or copy) of a ring tensor."""
    if type(a) is np.ndarray and a.dtype is _U64 and a.ndim == 1 and a.flags.c_contiguous:
        return a  # already one: no new view
    return np.ascontiguousarray(a, dtype=U64).reshape(-1)


def _roles(ctx: Context) -> tuple[int, str, str]:
    """My compute index, my successor and my predecessor."""
    if ctx.ring is None:
        raise ValueError(f"party {ctx.party!r} is not a compute party of rep3")
    return ctx.ring


def _zero_share(ctx: Context, stream: int, n: int) -> np.ndarray:
    """My part of a fresh 3-out-of-3 sharing of zero: rand(next) - rand(prev), drawn in one call."""
    _, nxt, prv = _roles(ctx)
    drawn = ctx.rand_rows(((nxt, stream), (prv, stream)), n)
    return drawn[0] - drawn[1]


def _components(x: Share) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The two components of a share, flat, with their common shape."""
    a, b = x
    if type(a) is np.ndarray and type(b) is np.ndarray:  # the usual case: no np.shape dispatch
        shape, other = a.shape, b.shape
    else:
        shape, other = np.shape(a), np.shape(b)
    if other != shape:
        raise ValueError(f"malformed rep3 share: component shapes {shape} and {other}")
    return _flat(a), _flat(b), shape


def _sum(*xs: np.ndarray) -> np.ndarray:
    """The ring sum of equally-sized flat arrays."""
    out = np.array(xs[0], dtype=U64, copy=True)
    for v in xs[1:]:
        np.add(out, v, out=out)
    return out


def _check_bits(bits: int) -> int:
    """Truncation amounts the protocol supports (its 2^62 offset leaves room for up to 62)."""
    if not isinstance(bits, (int, np.integer)) or not 0 <= bits <= MAX_BITS:
        raise ValueError(f"truncation by {bits!r} bits: must be an int in [0, {MAX_BITS}]")
    return int(bits)


# ---- declared costs (rounds, elements sent, PRG words drawn per party), beside the kernels ----

KERNELS: dict[str, KernelSpec] = {}


def _each(compute: list[str], k: int) -> dict[str, int]:
    return {p: k for p in compute}


def _product_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """mul/matmul: one reshare round, n elements each to its predecessor; a zero sharing drawn
    (2n words each)."""
    ring = tuple((p, compute[i - 1]) for i, p in enumerate(compute))
    return Cost(1, _each(compute, n), _each(compute, 2 * n), links(ring))


def _local_product_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """mul_add/matmul_add: the additive share stays local."""
    return Cost(0, _each(compute, 0), _each(compute, 0))


def _reveal_cost(compute: list[str], n: int, **_: Any) -> Cost:
    return Cost(1, _each(compute, n), _each(compute, 0))


# ---- products -------------------------------------------------------------------------------

def _cross(x: Share, y: Share, prod: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """My 3-out-of-3 additive share of x*y: x_i*(y_i + y_{i+1}) + x_{i+1}*y_i (not re-randomized)."""
    xa, xb = x
    ya, yb = y
    return asring(prod(xa, ya + yb) + prod(xb, ya))


def _factors(x: Share, y: Share) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """The flat components of two equally shaped factors, and their shape."""
    xa, xb, shape = _components(x)
    ya, yb, yshape = _components(y)
    if yshape != shape:
        raise ValueError(f"rep3 mul needs equal shapes, got {shape} and {yshape}")
    return xa, xb, ya, yb, shape


def _mul_share(x: Share, y: Share) -> tuple[np.ndarray, tuple[int, ...]]:
    """Elementwise product share, flat, and the output shape."""
    xa, xb, ya, yb, shape = _factors(x, y)
    return _cross((xa, xb), (ya, yb), np.multiply), shape


def _matmul_share(ctx: Context, x: Share, y: Share) -> tuple[np.ndarray, tuple[int, ...]]:
    """My additive share of the matrix product x @ y, flat, and the output shape.

    The nine products x_a y_b are split so that P0 needs one matrix product and P1, P2 two each
    (five, not six: the parties share two cores here, so the total is what counts; no split gives
    every party one, since over Z_2^64 two single-product parties would both put an odd weight on
    the diagonal term they share). P0: (x0 + x1)(y0 + y1); P1: x1 y2 + x2 (y1 + y2); P2: x2 y0 + x0 y2.
    The share is re-randomized (reshare's or the truncation's zero sharing) before it is sent."""
    xa, xb = (np.asarray(c, dtype=U64) for c in x)
    ya, yb = (np.asarray(c, dtype=U64) for c in y)
    if xa.ndim != 2 or ya.ndim != 2 or xa.shape[1] != ya.shape[0]:
        raise ValueError(f"rep3 matmul needs 2-D operands (m,k)@(k,n), got {xa.shape} and {ya.shape}")
    i = _roles(ctx)[0]
    if i == 0:
        z = matmul2(np.add(xa, xb), ya, b1x=yb)
    elif i == 1:
        z = matmul2(xa, yb, xb, ya, b2x=yb)
    else:
        z = matmul2(xa, yb, xb, ya)
    return z.reshape(-1), z.shape


def _reshare(ctx: Context, z: np.ndarray, shape: tuple[int, ...]) -> KernelGen:
    """From my additive share z_i to the replicated pair: send z_i + alpha_i back, get z_{i+1}."""
    i, nxt, prv = _roles(ctx)
    z = z + _zero_share(ctx, S_ALPHA, z.size)
    got = yield Exchange(send={prv: [z]}, expect={nxt: 1})
    return z.reshape(shape), np.asarray(got[nxt][0], dtype=U64).reshape(shape)


@kernel(KERNELS, _product_cost, counts=("multiplications",))
def mul(ctx: Context, x: Share, y: Share, **_: Any) -> KernelGen:
    """Elementwise product of two secrets (no truncation): 1 round, n elements per party."""
    z, shape = _mul_share(x, y)
    return (yield from _reshare(ctx, z, shape))


@kernel(KERNELS, _product_cost, counts=("multiplications",))
def matmul(ctx: Context, x: Share, y: Share, **_: Any) -> KernelGen:
    """Ring matrix product of two 2-D secrets (no truncation): 1 round, n elements per party."""
    z, shape = _matmul_share(ctx, x, y)
    return (yield from _reshare(ctx, z, shape))


@kernel(KERNELS, _local_product_cost, counts=("multiplications",))
def mul_add(ctx: Context, x: Share, y: Share, **_: Any) -> KernelGen:
    """My additive (3-out-of-3) share of x*y, kept local: no round. It is only ever combined
    linearly and then truncated by trunc_add, which re-randomizes before anything is sent."""
    z, shape = _mul_share(x, y)
    return z.reshape(shape)
    yield  # a kernel without a round  # noqa: unreachable


@kernel(KERNELS, _local_product_cost, counts=("multiplications",))
def matmul_add(ctx: Context, x: Share, y: Share, **_: Any) -> KernelGen:
    """My additive share of a matrix product, kept local (see mul_add)."""
    z, shape = _matmul_share(ctx, x, y)
    return z.reshape(shape)
    yield  # noqa: unreachable


def _shaped(pair: tuple[np.ndarray, np.ndarray], shape: tuple[int, ...]) -> Share:
    return asring(pair[0]).reshape(shape), asring(pair[1]).reshape(shape)


# ---- input and output -----------------------------------------------------------------------

def _share_participants(compute: list[str], owner: str, **_: Any) -> set[str]:
    return set(compute) | {owner}


def _share_cost(compute: list[str], n: int, owner: str, **_: Any) -> Cost:
    """From a compute party: it sends one component (n); from an input party: 3 pairs (6n)."""
    if owner in compute:
        j = compute.index(owner)
        return Cost(1, {p: (n if p == owner else 0) for p in compute},
                    {p: (n if p in (owner, compute[(j - 1) % 3]) else 0) for p in compute})
    return Cost(1, {owner: 6 * n} | _each(compute, 0), {owner: 2 * n} | _each(compute, 0))


def _reveal_to_participants(compute: list[str], party: str, **_: Any) -> set[str]:
    if party in compute:
        return {party, compute[(compute.index(party) - 1) % 3]}
    return set(compute) | {party}


def _reveal_to_cost(compute: list[str], n: int, party: str, **_: Any) -> Cost:
    """To a compute party: its predecessor sends its missing component; to an outsider: every
    compute party sends a re-randomized component (a zero sharing, 2n words each)."""
    if party in compute:
        sender = compute[(compute.index(party) - 1) % 3]
        return Cost(1, {sender: n, party: 0}, {sender: 0, party: 0})
    return Cost(1, _each(compute, n) | {party: 0}, _each(compute, 2 * n) | {party: 0})


@kernel(KERNELS, _share_cost, participants=_share_participants, shaped=True)
def share(ctx: Context, x: np.ndarray | None, owner: str, shape: tuple[int, ...]) -> KernelGen:
    """The owner's clear x becomes a sharing; 1 round."""
    shape = tuple(int(d) for d in shape)
    if ctx.party == owner and np.shape(x) != shape:
        raise ValueError(f"share: value of shape {np.shape(x)} declared as {shape}")
    if owner in ctx.compute:
        return (yield from _share_from_compute(ctx, x, owner, shape))
    return (yield from _share_from_input_party(ctx, x, owner, shape))


def _share_from_compute(ctx: Context, x: np.ndarray | None, owner: str, shape: tuple[int, ...]) -> KernelGen:
    """Owner Pi: x_i known to P_{i-1} and Pi, x_{i-1} = 0, x_{i+1} = x - x_i sent to P_{i+1}."""
    i, nxt, prv = _roles(ctx)
    j = ctx.compute.index(owner)
    n = math.prod(shape)
    zeros = np.zeros(shape, dtype=U64)
    if i == j:
        xj = ctx.rand(prv, S_SHARE, (n,))
        xn = _flat(x) - xj
        yield Exchange(send={nxt: [xn]})
        return xj.reshape(shape), xn.reshape(shape)
    if i == (j - 1) % 3:
        xj = ctx.rand(owner, S_SHARE, (n,))
        yield Exchange()
        return zeros, xj.reshape(shape)
    got = yield Exchange(expect={owner: 1})
    return asring(got[owner][0]).reshape(shape), zeros


def _share_from_input_party(ctx: Context, x: np.ndarray | None, owner: str, shape: tuple[int, ...]) -> KernelGen:
    """An input party draws x0, x1 privately, x2 = x - x0 - x1, and sends each Pi its pair."""
    n = math.prod(shape)
    if ctx.party != owner:
        got = yield Exchange(expect={owner: 2})
        return _shaped(tuple(got[owner]), shape)
    x0 = ctx.rand(None, S_OWN0, (n,))
    x1 = ctx.rand(None, S_OWN1, (n,))
    parts = [x0, x1, _flat(x) - x0 - x1]
    yield Exchange(send={p: [parts[k], parts[(k + 1) % 3]] for k, p in enumerate(ctx.compute)})
    return None


@kernel(KERNELS, _reveal_cost)
def reveal(ctx: Context, x: Share) -> KernelGen:
    """Open a secret to every compute party: Pi sends x_i to P_{i+1}; 1 round, n each."""
    _, nxt, prv = _roles(ctx)
    a, b, shape = _components(x)
    got = yield Exchange(send={nxt: [a]}, expect={prv: 1})
    return _sum(a, b, got[prv][0]).reshape(shape)


@kernel(KERNELS, _reveal_to_cost, participants=_reveal_to_participants, shaped=True)
def reveal_to(ctx: Context, x: Share | None, party: str, shape: tuple[int, ...]) -> KernelGen:
    """Open a secret to one party only; 1 round. Others get None."""
    shape = tuple(int(d) for d in shape)
    if party in ctx.compute:
        j = ctx.compute.index(party)
        a, b, _ = _components(x)
        if ctx.index == j:
            prv = ctx.party_at(j - 1)
            got = yield Exchange(expect={prv: 1})
            return _sum(a, b, got[prv][0]).reshape(shape)
        yield Exchange(send={party: [a]})
        return None
    if ctx.party == party:
        got = yield Exchange(expect={p: 1 for p in ctx.compute})
        return _sum(*(got[p][0] for p in ctx.compute)).reshape(shape)
    # The outsider sees all three components: re-randomize them so they say nothing but x.
    a, _, _ = _components(x)
    yield Exchange(send={party: [a + _zero_share(ctx, S_ALPHA, a.size)]})
    return None


def _owned(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A fresh ring array of `shape` holding a (broadcast where it is smaller)."""
    a = asring(a)
    return np.array(a if a.shape == shape else np.broadcast_to(a, shape), copy=True)


def _plus(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A fresh ring array a + c, of their broadcast shape (the sum is new: no copy of it)."""
    return asring(np.add(asring(a), c))


class Rep3(Protocol):
    """The rep3 plug-in: a share is the pair (x_i, x_{i+1}) at compute party Pi."""

    name = "rep3"
    positional = 3
    share_words = 2
    share_kinds = ("arith", "bool")
    kernels = KERNELS
    native = {"share": "share", "reveal": "reveal", "reveal_to": "reveal_to", "mul": "mul", "matmul": "matmul",
              "trunc": "trunc", "msb": "msb", "a2b": "a2b", "bitinject": "bitinject",
              "msb_at": "msb_at", "msb_at_mul": "msb_at_mul"}
    fusions = {("mul", "trunc"): "mul_trunc", ("matmul", "trunc"): "matmul_trunc", ("msb", "mul"): "msb_mul"}
    additive = {"mul": "mul_add", "matmul": "matmul_add"}
    additive_trunc = "trunc_add"
    keep = ("trunc", "mul_trunc", "matmul_trunc", "trunc_add", "mul_trunc_pending", "trunc_pending")
    pending_kernels = {"mul_trunc": "mul_trunc_pending", "trunc": "trunc_pending"}
    pending_ops = ("add", "sub", "neg", "mul")
    pending_finish = "finish"

    def map(self, fn: Callable[..., np.ndarray], *shares: Share) -> Share:
        """A linear op applies to each of the two components alike."""
        if len(shares) == 1:  # the common arities without generators: this runs per local op
            (a, b), = shares
            return asring(fn(a)), asring(fn(b))
        if len(shares) == 2:
            (a, b), (c, d) = shares
            return asring(fn(a, c)), asring(fn(b, d))
        return (asring(fn(*(s[0] for s in shares))), asring(fn(*(s[1] for s in shares))))

    def map_into(self, ufunc: np.ufunc, k: int, shares: list[Share]) -> Share | None:
        """ufunc component by component, into shares[k]'s two arrays when they are its alone."""
        if not sole(shares, k):
            return None
        target = shares[k]
        if type(target) is not tuple or len(target) != 2 or not (sole(target, 0) and sole(target, 1)):
            return None
        a, b = target
        shape = a.shape
        if not (writable(a, shape) and writable(b, shape)
                and all(same_shapes(s, shape) for s in shares)):
            return None
        return ufunc(*(s[0] for s in shares), out=a), ufunc(*(s[1] for s in shares), out=b)

    def add_public(self, ctx: Context, x: Share, c: np.ndarray) -> Share:
        """c joins x0, which P0 holds first and P2 second."""
        a, b = x
        shape = np.broadcast_shapes(np.shape(a), np.shape(c))
        i = ctx.index
        return (_plus(a, c) if i == 0 else _owned(a, shape)), (_plus(b, c) if i == 2 else _owned(b, shape))

    def from_public(self, ctx: Context, c: np.ndarray) -> Share:
        """x0 = c, x1 = x2 = 0: P0 holds (c, 0), P1 (0, 0), P2 (0, c)."""
        c = np.array(c, dtype=U64, copy=True)
        zeros = np.zeros_like(c)
        if ctx.index == 0:
            return c, zeros
        if ctx.index == 2:
            return zeros, c
        return zeros, zeros.copy()

    def pending_local(self, ctx: Context, opcode: str, args: list, pending: list[bool], secret: list[bool]) -> Any:
        """A linear op on a truncation's pending output (rep3_pending.local)."""
        return rep3_pending.local(ctx.index, opcode, args, pending, secret)

    def to_additive(self, ctx: Context, x: Share) -> np.ndarray:
        """My additive share of a replicated secret: its first component."""
        return x[0]

    def add_public_additive(self, ctx: Context, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """z + c on additive shares: P0 adds c; everyone takes the broadcast shape."""
        shape = np.broadcast_shapes(np.shape(z), np.shape(c))
        z = asring(np.broadcast_to(z, shape))
        return asring(z + c) if ctx.index == 0 else np.array(z, copy=True)


from veil.runtime.protocols import rep3_trunc  # noqa: E402,F401  (registers trunc, mul_trunc, matmul_trunc, trunc_add)
from veil.runtime.protocols import rep3_bool  # noqa: E402,F401  (registers msb, a2b, bitinject)
from veil.runtime.protocols import rep3_pending  # noqa: E402,F401  (registers finish, mul_trunc_pending, trunc_pending)
