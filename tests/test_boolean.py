"""Boolean sharing and the conversions (msb, a2b, bitinject) under rep3 and dealer2: exact for
every value and shape, held to their declared costs by the kernel driver, and what each party
receives uniform and independent of the secret."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_driver import COMPUTE, PARTIES, assert_balanced_bits, assert_fresh_paired_streams, open_value, run_kernel, run_kernel_traced, share_value
from veil.runtime.protocols import boolean, rep3_bool
from veil.runtime.protocols.base import Context
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.protocols.dealer2_bool import S_B0, S_B1, S_DEALT
from veil.runtime.protocols.rep3 import Rep3

U64 = np.uint64
RNG = np.random.default_rng(8)
PROTOCOLS = {"rep3": Rep3(), "dealer2": Dealer2()}
EDGES = np.array([0, 1, -1, -2**63, 2**63 - 1, 2**62, -2**62, 2, -2, 2**62 - 1, -(2**62) - 1],
                 dtype=object) % (1 << 64)
EDGES = EDGES.astype(U64)


def rand_ring(shape) -> np.ndarray:
    return RNG.integers(0, 2**64, size=shape, dtype=U64)


def values(n: int) -> np.ndarray:
    """The edge values, then random words of every magnitude and sign."""
    mags = rand_ring(n) >> RNG.integers(0, 64, size=n).astype(U64)
    rand = np.where(RNG.integers(0, 2, size=n).astype(bool), U64(0) - mags, mags)
    return np.concatenate([EDGES, rand])


def arith_inputs(proto: str, x: np.ndarray) -> dict[str, tuple]:
    """Fresh random arithmetic shares of x in the protocol's format."""
    if proto == "rep3":
        sh = share_value(x, rng=RNG)
        return {p: (sh[p],) for p in COMPUTE}
    r = rand_ring(x.shape)
    return {COMPUTE[0]: (x - r,), COMPUTE[1]: (r,), COMPUTE[2]: (np.zeros_like(x),)}


def bool_inputs(proto: str, x: np.ndarray) -> dict[str, tuple]:
    """Fresh random XOR shares of x: replicated (rep3), or P0/P1 with the dealer's zeros."""
    if proto == "rep3":
        b0, b1 = rand_ring(x.shape), rand_ring(x.shape)
        parts = [b0, b1, x ^ b0 ^ b1]
        return {p: ((parts[i], parts[(i + 1) % 3]),) for i, p in enumerate(COMPUTE)}
    r = rand_ring(x.shape)
    return {COMPUTE[0]: (x ^ r,), COMPUTE[1]: (r,), COMPUTE[2]: (np.zeros_like(x),)}


def mul_inputs(proto: str, x: np.ndarray, d: np.ndarray) -> dict[str, tuple]:
    """msb_mul's operands: fresh arithmetic shares of x and of d."""
    a, b = arith_inputs(proto, x), arith_inputs(proto, d)
    return {p: a[p] + b[p] for p in COMPUTE}


def open_arith(proto: str, out: dict) -> np.ndarray:
    if proto == "rep3":
        return open_value(out)
    assert not np.any(out[COMPUTE[2]]), "the dealer's placeholder must stay zero"
    return out[COMPUTE[0]] + out[COMPUTE[1]]


def open_bool(proto: str, out: dict) -> np.ndarray:
    """The XOR of the shares, after checking a replicated sharing's copies agree."""
    if proto == "rep3":
        comps = [out[p][0] for p in COMPUTE]
        for i, p in enumerate(COMPUTE):
            assert np.array_equal(out[p][1], comps[(i + 1) % 3]), f"{p}'s second part is inconsistent"
        return comps[0] ^ comps[1] ^ comps[2]
    assert not np.any(out[COMPUTE[2]]), "the dealer's placeholder must stay zero"
    return out[COMPUTE[0]] ^ out[COMPUTE[1]]


def shape_of(proto: str, out: dict) -> tuple:
    v = out[COMPUTE[0]]
    return np.shape(v[0] if proto == "rep3" else v)


KERNELS = ["msb", "msb_mul", "a2b", "bitinject"]


def kernel_inputs(proto: str, kernel: str, x: np.ndarray) -> dict[str, tuple]:
    """Fresh shares of the kernel's operands (msb_mul: x times the same secret)."""
    if kernel == "bitinject":
        return bool_inputs(proto, x)
    return mul_inputs(proto, x, x) if kernel == "msb_mul" else arith_inputs(proto, x)


# ---- exact results ---------------------------------------------------------------------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_msb_is_the_sign_bit_of_every_value(proto):
    x = values(20_000)
    out = run_kernel(PROTOCOLS[proto], "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), x >> U64(63))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_msb_mul_is_the_sign_bit_times_the_operand_for_every_value(proto):
    x = values(20_000)
    for d in (values(20_000)[::-1].copy(), rand_ring(x.size), np.full(x.size, 2**64 - 1, U64)):
        out = run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
        assert np.array_equal(open_arith(proto, out), (x >> U64(63)) * d)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_msb_mul_of_edge_values_against_each_other(proto):
    x, d = np.meshgrid(EDGES, EDGES)
    x, d = x.reshape(-1), d.reshape(-1)
    out = run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), np.where(x >> U64(63) == 1, d, U64(0)))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_msb_mul_refuses_operands_of_different_shapes(proto):
    with pytest.raises(ValueError, match="equal shapes"):
        run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, rand_ring(4), rand_ring(3)), {}, PARTIES, COMPUTE)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_a2b_opens_to_the_same_word(proto):
    x = values(20_000)
    out = run_kernel(PROTOCOLS[proto], "a2b", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_bool(proto, out), x)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_bitinject_of_every_bit_position(proto):
    x = values(300)
    shares = bool_inputs(proto, x)
    for bit in range(64):
        out = run_kernel(PROTOCOLS[proto], "bitinject", shares, {"bit": bit}, PARTIES, COMPUTE)
        assert np.array_equal(open_arith(proto, out), (x >> U64(bit)) & U64(1)), bit


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_a2b_then_bitinject_recovers_each_bit(proto):
    x = values(200)
    out = run_kernel(PROTOCOLS[proto], "a2b", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    for bit in (0, 1, 31, 62, 63):
        got = run_kernel(PROTOCOLS[proto], "bitinject", {p: (out[p],) for p in COMPUTE}, {"bit": bit},
                         PARTIES, COMPUTE)
        assert np.array_equal(open_arith(proto, got), (x >> U64(bit)) & U64(1)), bit


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (2, 0)])
def test_every_shape(proto, shape):
    x = rand_ring(shape)
    p = PROTOCOLS[proto]
    out = run_kernel(p, "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert shape_of(proto, out) == shape and np.array_equal(open_arith(proto, out), x >> U64(63))
    out = run_kernel(p, "a2b", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert shape_of(proto, out) == shape and np.array_equal(open_bool(proto, out), x)
    out = run_kernel(p, "bitinject", bool_inputs(proto, x), {"bit": 5}, PARTIES, COMPUTE)
    assert shape_of(proto, out) == shape and np.array_equal(open_arith(proto, out), (x >> U64(5)) & U64(1))
    d = rand_ring(shape)
    out = run_kernel(p, "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
    assert shape_of(proto, out) == shape and np.array_equal(open_arith(proto, out), (x >> U64(63)) * d)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=9), st.sampled_from(sorted(PROTOCOLS)),
       st.integers(0, 63))
def test_hypothesis(ints, proto, bit):
    x = (np.array(ints, dtype=object) % (1 << 64)).astype(U64)
    p = PROTOCOLS[proto]
    assert np.array_equal(open_arith(proto, run_kernel(p, "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE)),
                          x >> U64(63))
    b = run_kernel(p, "a2b", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_bool(proto, b), x)
    got = run_kernel(p, "bitinject", {q: (b[q],) for q in COMPUTE}, {"bit": bit}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, got), (x >> U64(bit)) & U64(1))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("bit", [-1, 64, 1.5])
def test_bitinject_refuses_a_bad_bit(proto, bit):
    with pytest.raises(ValueError):
        run_kernel(PROTOCOLS[proto], "bitinject", bool_inputs(proto, rand_ring(3)), {"bit": bit}, PARTIES, COMPUTE)


# ---- the circuit itself ----------------------------------------------------------------------

def test_pack_bits_round_trips():
    for n in (0, 1, 63, 64, 65, 1000):
        bits = RNG.integers(0, 2, size=n).astype(U64)
        words = boolean.pack_bits(bits)
        assert words.size == boolean.words_for_bits(n)
        assert np.array_equal(boolean.unpack_bits(words, n), bits)


def test_layers_dealt_bits_are_disjoint_and_fill_one_word_for_the_tree():
    assert boolean.slots(boolean.TREE) == 1 and boolean.slots(boolean.SKLANSKY) == 5
    used = [L.bits() for L in boolean.TREE]
    assert sum(bin(b).count("1") for b in used) == bin(int(np.bitwise_or.reduce(np.array(used, U64)))).count("1")


# ---- declared costs --------------------------------------------------------------------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_declarations(proto):
    p = PROTOCOLS[proto]
    assert {"msb", "a2b", "bitinject"} <= set(p.native) and p.share_kinds == ("arith", "bool")
    assert p.kernels["msb"].counts == ("comparisons",)
    for n in (1, 1000, 10**6):
        assert p.kernels["msb"].cost(COMPUTE, n).rounds <= 8
    assert p.kernels["bitinject"].cost(COMPUTE, 10, bit=3).rounds <= 2
    assert p.fusions[("msb", "mul")] == "msb_mul"
    assert p.kernels["msb_mul"].counts == ("comparisons", "multiplications")
    for n in (1, 1000, 10**6):  # the selection costs no round of its own
        assert p.kernels["msb_mul"].cost(COMPUTE, n).rounds == p.kernels["msb"].cost(COMPUTE, n).rounds


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_each_draw_is_a_fresh_stream_drawn_by_both_key_holders(proto, kernel):
    x = rand_ring(70)
    inputs = kernel_inputs(proto, kernel, x)
    _, trace = run_kernel_traced(PROTOCOLS[proto], kernel, inputs, {"bit": 4} if kernel == "bitinject" else {},
                                 PARTIES, COMPUTE)
    assert_fresh_paired_streams(trace)


# ---- what each party sees --------------------------------------------------------------------

N_VIEW = 1 << 16  # packed one-bit messages then fill 1024 words
SECRETS = {"zeros": np.zeros(N_VIEW, U64), "ones": np.full(N_VIEW, 2**64 - 1, U64),
           "min": np.full(N_VIEW, 2**63, U64)}


def views(proto: str, kernel: str, x: np.ndarray, public_like: bool = False) -> dict[tuple, np.ndarray]:
    """Every array a party received in one run: (party, round, sender, index) -> array."""
    inputs = kernel_inputs(proto, kernel, x)
    if public_like:  # the sharing from_public makes: the kernel alone must hide the value
        inputs = _public_like(proto, x)
        if kernel == "msb_mul":  # both operands so
            inputs = {p: inputs[p] + inputs[p] for p in inputs}
    attrs = {"bit": 63} if kernel == "bitinject" else {}
    _, trace = run_kernel_traced(PROTOCOLS[proto], kernel, inputs, attrs, PARTIES, COMPUTE)
    return {(p, r, q, i): a for p, rounds in trace.received.items() for r, got in enumerate(rounds)
            for q, arrays in got.items() for i, a in enumerate(arrays)}


def _public_like(proto: str, x: np.ndarray) -> dict[str, tuple]:
    """The sharing from_public makes (the first part is x, the others zero), for either kind."""
    zero = np.zeros_like(x)
    if proto == "rep3":
        return {COMPUTE[0]: ((x, zero),), COMPUTE[1]: ((zero, zero),), COMPUTE[2]: ((zero, x),)}
    return {COMPUTE[0]: (x,), COMPUTE[1]: (zero,), COMPUTE[2]: (zero,)}


def assert_views_uniform(seen: dict[tuple, np.ndarray]) -> None:
    assert seen
    for (p, r, q, i), a in seen.items():
        assert_balanced_bits(a, what=f"array #{i} {p} got from {q} in round {r + 1}")


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("secret", SECRETS)
def test_every_received_array_is_uniform(proto, kernel, secret):
    assert_views_uniform(views(proto, kernel, SECRETS[secret], public_like=True))


def top_byte_chi2(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample chi-square of the top-byte histograms (255 degrees of freedom)."""
    ha = np.bincount((a >> U64(56)).astype(np.int64), minlength=256)
    hb = np.bincount((b >> U64(56)).astype(np.int64), minlength=256)
    tot = ha + hb
    return float((((ha - hb) ** 2)[tot > 0] / tot[tot > 0]).sum())


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_views_are_distributed_alike_for_different_secrets(proto, kernel):
    a = views(proto, kernel, SECRETS["zeros"], public_like=True)
    b = views(proto, kernel, rand_ring(N_VIEW), public_like=True)
    assert a.keys() == b.keys()
    for key in a:
        u, v = np.asarray(a[key], U64), np.asarray(b[key], U64)
        if u.size >= 4096:  # the chi-square needs a few samples per byte value
            assert top_byte_chi2(u, v) < 255 + 7 * math.sqrt(510), key


def test_the_dealer_receives_nothing_in_dealer2():
    for kernel in KERNELS:
        seen = views("dealer2", kernel, rand_ring(100))
        assert not [k for k in seen if k[0] == COMPUTE[2]], kernel


def test_view_check_catches_a_missing_rerandomization(monkeypatch):
    real = rep3_bool._zero_share  # still draws (the declared cost holds) but adds nothing
    monkeypatch.setattr(rep3_bool, "_zero_share", lambda ctx, stream, n: real(ctx, stream, n) * U64(0))
    with pytest.raises(AssertionError, match="non-uniform"):
        assert_views_uniform(views("rep3", "msb", SECRETS["zeros"], public_like=True))


def test_view_check_catches_unmasked_dealt_products(monkeypatch):
    real = Context.rand

    def rand(self, peer, stream, shape):  # P0's part of the products drawn but set to zero
        out = real(self, peer, stream, shape)
        return out * U64(0) if stream == S_DEALT and self.index in (0, 2) else out

    monkeypatch.setattr(Context, "rand", rand)
    with pytest.raises(AssertionError, match="non-uniform"):
        assert_views_uniform(views("dealer2", "msb", SECRETS["zeros"]))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_view_check_catches_an_unrandomized_product_in_msb_mul(proto, monkeypatch):
    if proto == "rep3":  # the zero sharing of r * d drawn but not added
        real = rep3_bool._zero_share
        monkeypatch.setattr(rep3_bool, "_zero_share",
                            lambda ctx, stream, n: real(ctx, stream, n) * U64(stream != rep3_bool.S_RDZ))
    else:  # d's mask drawn but zero: d - b opens d
        real = Context.rand
        monkeypatch.setattr(Context, "rand", lambda self, peer, stream, shape: real(self, peer, stream, shape)
                            * U64(stream not in (S_B0, S_B1)))
    with pytest.raises(AssertionError, match="non-uniform"):
        assert_views_uniform(views(proto, "msb_mul", SECRETS["ones"], public_like=True))
