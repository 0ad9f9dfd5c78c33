"""dealer2 (Pond): two computing parties with additive shares and a dealer of correlated randomness.
Kernels are checked exactly and statistically through the kernel driver (which also holds them to
their declared costs); whole programs against the emulator and numpy."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_driver import COMPUTE, INPUT_PARTY, PARTIES, assert_balanced_bits, run_kernel, run_kernel_traced
from veil.runtime import api
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.ring import signed, trunc as clear_trunc

P = Dealer2()
P0, P1, DEALER = COMPUTE
RNG = np.random.default_rng(11)


def rand_ring(shape) -> np.ndarray:
    return RNG.integers(0, 2**64, size=shape, dtype=np.uint64)


def shares_of(*values: np.ndarray) -> dict[str, tuple]:
    """Additive shares for P0/P1 (random split) and the dealer's all-zero placeholder."""
    out: dict[str, list] = {P0: [], P1: [], DEALER: []}
    for x in values:
        r = rand_ring(x.shape)
        out[P0].append(x - r)
        out[P1].append(r)
        out[DEALER].append(np.zeros_like(x))
    return {p: tuple(v) for p, v in out.items()}


def opened(results: dict) -> np.ndarray:
    assert not np.any(results[DEALER]), "the dealer's placeholder share must stay zero"
    return results[P0] + results[P1]


def test_mul_and_matmul_are_exact_in_the_ring():
    x, y = rand_ring((50,)), rand_ring((50,))
    out = run_kernel(P, "mul", shares_of(x, y), {}, PARTIES, COMPUTE)
    assert np.array_equal(opened(out), x * y)
    a, b = rand_ring((7, 5)), rand_ring((5, 3))
    out = run_kernel(P, "matmul", shares_of(a, b), {}, PARTIES, COMPUTE)
    assert np.array_equal(opened(out), np.matmul(a, b))


@pytest.mark.parametrize("m", [16, 32])
def test_truncation_is_floor_or_floor_plus_one_and_its_view_is_masked(m):
    x = RNG.integers(-(2**61), 2**61, size=20_000).astype(np.int64).view(np.uint64)
    x[:4] = np.array([2**62 - 1, -(2**62 - 1), 0, -1], dtype=np.int64).view(np.uint64)
    out, trace = run_kernel_traced(P, "trunc", shares_of(x), {"bits": m}, PARTIES, COMPUTE)
    err = signed(opened(out)) - signed(clear_trunc(x, m))
    assert set(np.unique(err)) <= {0, 1}
    zero = np.zeros(20_000, dtype=np.uint64)  # a constant secret: what each party receives is uniform
    _, trace = run_kernel_traced(P, "trunc", shares_of(zero), {"bits": m}, PARTIES, COMPUTE)
    for party in (P0, P1):
        for per_round in trace.received[party]:
            for arrays in per_round.values():
                for a in arrays:
                    assert_balanced_bits(np.asarray(a, dtype=np.uint64))


def test_mul_trunc_and_the_dealer_sees_nothing():
    x = RNG.integers(-(2**30), 2**30, size=2000).astype(np.int64).view(np.uint64)
    y = RNG.integers(-(2**30), 2**30, size=2000).astype(np.int64).view(np.uint64)
    out, trace = run_kernel_traced(P, "mul_trunc", shares_of(x, y), {"bits": 16},
                                   PARTIES, COMPUTE)
    assert set(np.unique(signed(opened(out)) - signed(clear_trunc(x * y, 16)))) <= {0, 1}
    assert all(not per_round for per_round in trace.received[DEALER])  # the dealer only sends


@pytest.mark.parametrize("kernel, calls", [("mul", 1), ("trunc", 1), ("mul_trunc", 2)])
def test_elementwise_kernels_draw_once_per_round(kernel, calls):
    """Each party's words for a Beaver product or a truncation, under all its keys, in one call."""
    x, y = rand_ring((40,)) >> np.uint64(34), rand_ring((40,)) >> np.uint64(34)
    inputs = shares_of(x) if kernel == "trunc" else shares_of(x, y)
    _, trace = run_kernel_traced(P, kernel, inputs, {} if kernel == "mul" else {"bits": 8}, PARTIES, COMPUTE)
    assert trace.prg_calls == {p: calls for p in COMPUTE}, trace.prg_calls


@pytest.mark.parametrize("owner", [P0, P1, DEALER, INPUT_PARTY])
def test_share_from_anyone_and_reveal(owner):
    x = rand_ring((9,))
    inputs = {p: (x if p == owner else None,) for p in PARTIES}
    out = run_kernel(P, "share", inputs, {"owner": owner, "shape": (9,)}, PARTIES, COMPUTE)
    assert np.array_equal(opened(out), x)
    shares = {p: (out[p],) for p in COMPUTE}
    revealed = run_kernel(P, "reveal", shares, {}, PARTIES, COMPUTE)
    assert all(np.array_equal(revealed[p], x) for p in COMPUTE)
    for receiver in (P0, DEALER, INPUT_PARTY):
        got = run_kernel(P, "reveal_to", {**shares, INPUT_PARTY: (None,)}, {"party": receiver, "shape": (9,)},
                         PARTIES, COMPUTE)
        assert np.array_equal(got[receiver], x)


HEAD = "party alice, bob, carol, dave\nprotocol dealer2(alice, bob, dealer=carol)\n"


def test_whole_programs_match_the_emulator_and_numpy(rng):
    A, B, D = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=(6, 4))
    src = HEAD + ('a = input(alice, "a", shape=(6, 4))\nb = input(bob, "b", shape=(4, 3))\n'
                  'd = input(dave, "d", shape=(6, 4))\nc = a @ b\ne = a * d - 0.5 * a + d\n'
                  'f = sum(e * e, axis=0)\ns = secret(a)\nk = s * s + s * s\np = reveal(s * 2)\n'
                  'output(c, to=alice)\noutput(e, to=[bob, dave])\noutput(f, to=carol)\noutput(k, to=alice)\n'
                  'output(p, to=bob)\n')
    c = api.compile(src)
    inputs = {"alice": {"a": A}, "bob": {"b": B}, "dave": {"d": D}}
    emu, mpc = api.emulate(c, inputs), api.run(c, inputs)
    for party, outs in emu.items():
        for name, v in outs.items():
            assert np.all(np.abs(mpc[party][name] - v) <= 8 * 2.0 ** -16 * (1 + np.abs(v))), (party, name)
    np.testing.assert_allclose(mpc["alice"]["c"], A @ B, atol=1e-3)
    np.testing.assert_allclose(mpc["dave"]["e"], A * D - 0.5 * A + D, atol=1e-3)
    np.testing.assert_allclose(mpc["bob"]["p"], 2 * A, atol=1e-4)


def test_fraud_program_under_dealer2_measures_what_the_compiler_predicts():
    c = api.compile("programs/fraud_detection.mpc", {"N": 512, "EPOCHS": 1},
                    protocol="dealer2(alice, bob, dealer=carol)")
    out, emu = api.run(c), api.emulate(c)
    np.testing.assert_allclose(out["alice"]["w"], emu["alice"]["w"], atol=2e-3)
    for party, stats in out.stats.items():
        assert stats["rounds"] == c.cost.party_rounds[party]
        assert stats["bytes_sent"] == c.cost.bytes_sent[party]


@pytest.mark.parametrize("shapes", [((128, 784), (784, 128)), ((9, 130), (130, 13))])
def test_matmul_exact_through_the_c_kernel(shapes):
    """e (b_i [+ f]) + a_i f as one C call: shapes on and off its tiles, wrap-around values."""
    a, b = rand_ring(shapes[0]), rand_ring(shapes[1])
    a[-1, :] = np.uint64(2**64 - 1)
    out = run_kernel(P, "matmul", shares_of(a, b), {}, PARTIES, COMPUTE)
    assert np.array_equal(opened(out), np.matmul(a, b))
