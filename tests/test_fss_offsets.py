"""msb_at and msb_at_mul (one DCF key per element of a secret base, evaluated at several public
offsets; runtime/protocols/fss_msb.py) under rep3 and dealer2: exact against the registry's clear
semantics on random bases and offsets near the thresholds and near +-2^62, both signs, both the
DCF path and (base above FSS_MAX) the circuit path; held to the declared costs by the kernel
driver; every received array uniform; and the compiler's rewrite (compiler/passes/offsets.py)
firing on ml.sigmoid and not where the base is not smaller."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kernel_driver import COMPUTE, PARTIES, assert_balanced_bits, assert_fresh_paired_streams, run_kernel, run_kernel_traced
from test_boolean import PROTOCOLS, arith_inputs, open_arith, rand_ring
from veil.runtime.ops import clear
from veil.runtime.protocols import dcf, fss_msb
from veil.runtime.protocols.base import Context

U64 = np.uint64
SIGNS = (1, -1)


def _ring(values) -> np.ndarray:
    return (np.asarray(values, dtype=object) % (1 << 64)).astype(U64)


def _base_near(offsets: np.ndarray, rows: int, sign: int, rng: np.random.Generator) -> np.ndarray:
    """Base values that put sign * base + offset at -2, -1, 0, 1, 2 or far away, and near +-2^62."""
    pick = rng.integers(0, offsets.size, size=rows)
    delta = rng.choice([-2, -1, 0, 1, 2, 2**62, -(2**62), 2**62 - 1, -(2**62) + 1], size=rows)
    target = (delta.astype(object) - offsets[pick].astype(np.int64).astype(object)) * sign
    return _ring(target).reshape(rows, 1)


def _run(proto: str, kernel: str, base: np.ndarray, attrs: dict, seed: int = 0) -> np.ndarray:
    out = run_kernel(PROTOCOLS[proto], kernel, arith_inputs(proto, base), attrs, PARTIES, COMPUTE, seed=seed)
    return open_arith(proto, out).reshape(attrs["shape"])


def _attrs(kernel: str, shape: tuple, sign: int, offsets: np.ndarray, rng: np.random.Generator) -> dict:
    attrs = {"shape": shape, "sign": sign, "offsets": offsets}
    if kernel == "msb_at_mul":
        attrs |= {"dsign": int(rng.choice(SIGNS)), "doffsets": rand_ring((shape[-1],)) >> U64(rng.integers(0, 64))}
    return attrs


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb_at", "msb_at_mul"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 40), k=st.integers(1, 12), sign=st.sampled_from(SIGNS), seed=st.integers(0, 2**32 - 1),
       circuit=st.booleans())
def test_matches_the_clear_semantics(proto, kernel, rows, k, sign, seed, circuit, monkeypatch):
    """Near every threshold and near +-2^62, both paths (the circuit's by a small FSS_MAX)."""
    monkeypatch.setattr(fss_msb, "FSS_MAX", rows - 1 if circuit else 1024)
    rng = np.random.default_rng(seed)
    offsets = _ring(rng.integers(-2**40, 2**40, size=k))
    base = _base_near(offsets, rows, sign, rng)
    attrs = _attrs(kernel, (rows, k), sign, offsets, rng)
    assert np.array_equal(_run(proto, kernel, base, attrs, seed % 7), clear(kernel, base, **attrs))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb_at", "msb_at_mul"])
def test_rank_extension_and_full_offsets(proto, kernel):
    """A base of shape (k,) against offsets of the full (m, k) shape (every point its own)."""
    rng = np.random.default_rng(3)
    base, offsets = rand_ring((9,)), rand_ring((5, 9))
    attrs = _attrs(kernel, (5, 9), -1, offsets, rng)
    assert np.array_equal(_run(proto, kernel, base, attrs), clear(kernel, base, **attrs))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_costs_one_key_per_base_element(proto):
    """The DCF path's keys scale with the base, its rounds stay msb's; above FSS_MAX the circuit's."""
    spec = PROTOCOLS[proto].kernels
    fss_rounds = 2 if proto == "rep3" else 1
    small = spec["msb_at"].cost(COMPUTE, 1280, sizes=[128])
    whole = spec["msb"].cost(COMPUTE, 1280)
    per_key = spec["msb"].cost(COMPUTE, 128)
    assert small.rounds == fss_rounds and whole.rounds == 7
    dealer = COMPUTE[2]  # rep3: P2 deals; dealer2: the dealer
    assert small.sent[dealer] == per_key.sent[dealer]  # the same keys as 128 comparisons
    big = spec["msb_at_mul"].cost(COMPUTE, 2 * (fss_msb.FSS_MAX + 1), sizes=[fss_msb.FSS_MAX + 1])
    assert big == spec["msb_mul"].cost(COMPUTE, 2 * (fss_msb.FSS_MAX + 1))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_sign_must_be_one_or_minus_one(proto):
    with pytest.raises(ValueError, match="sign"):
        _run(proto, "msb_at", rand_ring((3, 1)), {"shape": (3, 2), "sign": 2, "offsets": rand_ring((2,))})


def _views(proto: str, kernel: str, base: np.ndarray) -> dict:
    """Every received array, with the base shared as from_public shares it (its first part the
    value, the others zero), so the kernel's own masks alone must hide it."""
    zero = np.zeros_like(base)
    if proto == "rep3":
        inputs = {COMPUTE[0]: ((base, zero),), COMPUTE[1]: ((zero, zero),), COMPUTE[2]: ((zero, base),)}
    else:
        inputs = {COMPUTE[0]: (base,), COMPUTE[1]: (zero,), COMPUTE[2]: (zero,)}
    attrs = _attrs(kernel, (base.shape[0], 8), -1, rand_ring((8,)), np.random.default_rng(1))
    _, trace = run_kernel_traced(PROTOCOLS[proto], kernel, inputs, attrs, PARTIES, COMPUTE)
    return {(p, r, q, i): a for p, rounds in trace.received.items() for r, got in enumerate(rounds)
            for q, arrays in got.items() for i, a in enumerate(arrays)}


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb_at", "msb_at_mul"])
@pytest.mark.parametrize("secret", ["zeros", "ones", "min"])
def test_every_received_array_is_uniform(proto, kernel, secret):
    fill = {"zeros": 0, "ones": 2**64 - 1, "min": 2**63}[secret]
    seen = _views(proto, kernel, np.full((512, 1), fill, U64))
    assert seen
    for key, a in seen.items():
        assert_balanced_bits(a, what=str(key))
    if proto == "dealer2":
        assert not [key for key in seen if key[0] == COMPUTE[2]], "the dealer receives nothing"


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_view_check_catches_an_unmasked_opening(proto, monkeypatch):
    """The mask r drawn but zero: c = z opens, and the uniformity check sees it."""
    from veil.runtime.protocols import dealer2_bool, rep3_bool
    stream = rep3_bool.S_FR if proto == "rep3" else dealer2_bool.S_FR
    real = Context.rand
    monkeypatch.setattr(Context, "rand", lambda self, peer, s, shape: real(self, peer, s, shape) * U64(s != stream))
    seen = _views(proto, "msb_at", np.zeros((512, 1), U64))
    with pytest.raises(AssertionError, match="bit position"):
        for a in seen.values():
            assert_balanced_bits(np.asarray(a, U64))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb_at", "msb_at_mul"])
@pytest.mark.parametrize("fss_max", [1024, 2])
def test_each_stream_is_drawn_once_and_alike_by_both_key_holders(proto, kernel, fss_max, monkeypatch):
    """No party reuses a (key, stream) in a call; both ends of a pairwise key draw the same shapes."""
    monkeypatch.setattr(fss_msb, "FSS_MAX", fss_max)
    attrs = _attrs(kernel, (6, 4), 1, rand_ring((4,)), np.random.default_rng(2))
    _, trace = run_kernel_traced(PROTOCOLS[proto], kernel, arith_inputs(proto, rand_ring((6, 1))), attrs,
                                 PARTIES, COMPUTE)
    assert_fresh_paired_streams(trace)


def _at_reference(party, seed, words, c, at, f, b_part) -> np.ndarray:
    """evaluate_at as k separate evaluations of all keys, the j-th at each key's j-th point."""
    out = np.empty(at.n, dtype=U64)
    for pos in at.order.T:
        fj = None if f is None else f + at.doff[pos]
        out[pos] = fss_msb.evaluate(party, seed, words, c + at.off[pos], fj, b_part)
    return out


@pytest.mark.parametrize("native_at", [False, True] if dcf.HAVE_NATIVE_AT else [False])
@pytest.mark.parametrize("times", [False, True])
@pytest.mark.parametrize("base_shape,shape", [((6, 1), (6, 10)), ((4,), (5, 4)), ((1,), (3,)), ((7, 1), (7, 1))])
def test_evaluate_at_equals_one_evaluation_per_point(native_at, times, base_shape, shape, monkeypatch):
    """The shared-prefix kernel (or the numpy loop) gives each evaluator the words of the per-point
    evaluations, for column and row broadcasts, k = 1, offsets near each other and near 2^63."""
    monkeypatch.setattr(dcf, "HAVE_NATIVE_AT", native_at)
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    n_a = int(np.prod(base_shape))
    r, b = rand_ring((n_a,)), rand_ring((n_a,)) if times else None
    seeds = [rand_ring((n_a, 2)), rand_ring((n_a, 2))]
    words = fss_msb.deal(r, seeds[0], seeds[1], b)
    near = rng.integers(-2**19, 2**19, size=shape[-1]).astype(np.int64).astype(U64)
    near[: shape[-1] // 3] = U64(2**63) + near[: shape[-1] // 3]      # across the 63-bit wrap
    offsets = near if len(base_shape) == 2 else near.reshape(-1)[: shape[-1]]
    at = fss_msb.At.of(base_shape, shape, offsets, rand_ring((shape[-1],)) if times else None)
    c = rand_ring((n_a,))
    c[0] = U64(2**63 - 3)
    f = rand_ring((n_a,)) if times else None
    for party in (0, 1):
        part = None if b is None else (b if party == 0 else np.zeros(n_a, U64))
        got = fss_msb.evaluate_at(party, seeds[party], words, c, at, f, part)
        assert np.array_equal(got, _at_reference(party, seeds[party], words, c, at, f, part))
