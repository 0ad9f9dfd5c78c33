"""msb and msb_mul through the DCF (runtime/protocols/fss_msb.py) under rep3 and dealer2: exact at
and around the FSS_MAX threshold (the carry circuit above it), held to the declared costs by the
kernel driver, every received array uniform, and the dealer receiving nothing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kernel_driver import COMPUTE, PARTIES, run_kernel, run_kernel_traced
from test_boolean import (EDGES, PROTOCOLS, arith_inputs, assert_views_uniform, mul_inputs, open_arith, rand_ring,
                          top_byte_chi2, values, views)
from veil.runtime.protocols import dealer2_bool, fss_msb, rep3_bool
from veil.runtime.protocols.base import Context

U64 = np.uint64
FSS_MAX = fss_msb.FSS_MAX


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("n", [1, 64, FSS_MAX, FSS_MAX + 1])
def test_msb_at_and_around_the_threshold(proto, n):
    x = values(n)[:n]
    out = run_kernel(PROTOCOLS[proto], "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), x >> U64(63))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("n", [1, 300, FSS_MAX, FSS_MAX + 1])
def test_msb_mul_at_and_around_the_threshold(proto, n):
    x, d = values(n)[:n], rand_ring(n)
    out = run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), (x >> U64(63)) * d)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_edges_against_each_other(proto):
    """x = 0, -1, +-2^62, +-2^63 ... times every edge d: one DCF kernel of 121 elements."""
    x, d = (a.reshape(-1) for a in np.meshgrid(EDGES, EDGES))
    out = run_kernel(PROTOCOLS[proto], "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), x >> U64(63))
    out = run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), np.where(x >> U64(63) == 1, d, U64(0)))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_repeated_runs_of_one_value_are_exact(proto):
    """Fresh masks every call: the same x (near the sign boundary) stays exact over many runs."""
    x = np.array([0, 2**64 - 1, 2**63, 2**63 - 1, 1], dtype=U64)
    for seed in range(12):
        out = run_kernel(PROTOCOLS[proto], "msb", arith_inputs(proto, x), {}, PARTIES, COMPUTE, seed=seed)
        assert np.array_equal(open_arith(proto, out), x >> U64(63)), seed


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_rounds_drop_below_the_threshold_only(proto):
    spec = PROTOCOLS[proto].kernels
    small = 2 if proto == "rep3" else 1
    for kernel in ("msb", "msb_mul"):
        assert spec[kernel].cost(COMPUTE, FSS_MAX).rounds == small
        assert spec[kernel].cost(COMPUTE, FSS_MAX + 1).rounds == 7
    # the keys: 63 levels of a 2-word seed (carrying one control bit) and the payload's words, the
    # final words, and the other control bit packed
    assert fss_msb.key_words(1, times=False) == 63 * 3 + 1 + 1
    assert fss_msb.key_words(64, times=True) == 64 * (63 * 4 + 2) + 63


def test_rep3_dealer_receives_nothing_and_evaluators_one_array_each_round():
    _, trace = run_kernel_traced(PROTOCOLS["rep3"], "msb_mul", mul_inputs("rep3", rand_ring(50), rand_ring(50)), {},
                                 PARTIES, COMPUTE)
    p0, p1, p2 = COMPUTE
    assert all(not got for got in trace.received[p2])  # P2 deals, as it does the truncations
    assert [sorted(g) for g in trace.received[p0]] == [[p2], [p1]]
    assert [sorted(g) for g in trace.received[p1]] == [[p2], [p0]]


N_FSS_VIEW = FSS_MAX
SECRETS = {"zeros": np.zeros(N_FSS_VIEW, U64), "ones": np.full(N_FSS_VIEW, 2**64 - 1, U64),
           "min": np.full(N_FSS_VIEW, 2**63, U64)}


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb", "msb_mul"])
@pytest.mark.parametrize("secret", SECRETS)
def test_every_received_array_is_uniform(proto, kernel, secret):
    """c = x + r, f = d - b, the re-sharing and the keys' correction words, with x and d shared as
    from_public shares them (so only the kernel's masks hide them)."""
    assert_views_uniform(views(proto, kernel, SECRETS[secret], public_like=True))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kernel", ["msb", "msb_mul"])
def test_views_are_distributed_alike_for_different_secrets(proto, kernel):
    a = views(proto, kernel, SECRETS["zeros"], public_like=True)
    b = views(proto, kernel, rand_ring(N_FSS_VIEW), public_like=True)
    assert a.keys() == b.keys()
    checked = 0
    for key in a:
        u, v = np.asarray(a[key], U64), np.asarray(b[key], U64)
        if u.size >= 4096:  # the correction words
            assert top_byte_chi2(u, v) < 255 + 7 * math.sqrt(510), key
            checked += 1
    assert checked


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_view_check_catches_an_unmasked_opening(proto, monkeypatch):
    """The mask r drawn (the declared draws hold) but zero: c = x opens to the evaluators."""
    stream = rep3_bool.S_FR if proto == "rep3" else dealer2_bool.S_FR
    real = Context.rand
    monkeypatch.setattr(Context, "rand", lambda self, peer, s, shape: real(self, peer, s, shape) * U64(s != stream))
    with pytest.raises(AssertionError, match="non-uniform"):
        assert_views_uniform(views(proto, "msb", SECRETS["zeros"], public_like=True))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_view_check_catches_an_unmasked_operand(proto, monkeypatch):
    """d's mask drawn but zero: f = d opens."""
    streams = (rep3_bool.S_FB,) if proto == "rep3" else (dealer2_bool.S_B0, dealer2_bool.S_B1)
    real = Context.rand
    monkeypatch.setattr(Context, "rand",
                        lambda self, peer, s, shape: real(self, peer, s, shape) * U64(s not in streams))
    with pytest.raises(AssertionError, match="non-uniform"):
        assert_views_uniform(views(proto, "msb_mul", SECRETS["ones"], public_like=True))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_the_numpy_fallback_runs_the_kernels_exactly(proto, monkeypatch):
    """Without the C kernels (not built, or no AES-NI) the DCF runs in numpy, with the same costs."""
    from veil.runtime.protocols import dcf
    monkeypatch.setattr(dcf, "HAVE_NATIVE", False)
    x, d = values(60)[:60], rand_ring(60)
    out = run_kernel(PROTOCOLS[proto], "msb_mul", mul_inputs(proto, x, d), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_arith(proto, out), (x >> U64(63)) * d)
