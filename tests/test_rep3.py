"""rep3 kernels: exact ring results, truncation error in {0, +1}, uniform views, declared costs."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from kernel_driver import (COMPUTE, INPUT_PARTY, PARTIES, assert_balanced_bits, assert_fresh_paired_streams, make_prgs,
                           open_value, run_kernel, run_kernel_traced, share_value)
from veil.runtime.protocols import rep3, rep3_fused
from veil.runtime.protocols.base import Context, Cost, KernelSpec, links
from veil.runtime.protocols.rep3 import Rep3
from veil.runtime.ring import signed, trunc as clear_trunc

U64 = np.uint64
P = Rep3()
RNG = np.random.default_rng(20240917)
LIMIT = 1 << 62


def ring(values) -> np.ndarray:
    """Python/numpy ints (any sign) as ring elements."""
    return np.asarray(np.asarray(values, dtype=object) % (1 << 64), dtype=U64)


def rand_ring(shape) -> np.ndarray:
    return RNG.integers(0, 2**64, size=shape, dtype=U64)


def rand_signed(shape, bound: int) -> np.ndarray:
    """Uniform signed values in (-bound, bound), as ring elements."""
    return RNG.integers(-bound + 1, bound, size=shape, dtype=np.int64).view(U64)


def secret_inputs(*values: np.ndarray) -> dict[str, tuple]:
    """Fresh random sharings of each value, as the driver's per-party input tuples."""
    shared = [share_value(v, rng=RNG) for v in values]
    return {p: tuple(s[p] for s in shared) for p in COMPUTE}


def public_like_inputs(*values: np.ndarray) -> dict[str, tuple]:
    """The sharing from_public makes (x0 = v, x1 = x2 = 0): the kernel alone must mask the views."""
    out = {}
    for i, p in enumerate(COMPUTE):
        ctx = Context(p, COMPUTE, None)
        out[p] = tuple(P.from_public(ctx, v) for v in values)
    return out


def trunc_error(result: np.ndarray, x: np.ndarray, m: int) -> np.ndarray:
    """result - floor(x / 2^m) on the signed reading."""
    return signed(result - clear_trunc(x, m))


# ---- exact ring results -----------------------------------------------------------------------

def test_mul_wraps_like_the_ring():
    edge = ring([0, 1, -1, 2**63, 2**63 - 1, 2**32, -(2**32), 3])
    x = np.concatenate([edge, rand_ring(1000)])
    y = np.concatenate([edge[::-1], rand_ring(1000)])
    out = run_kernel(P, "mul", secret_inputs(x, y), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_value(out), x * y)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(U64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)), st.data())
def test_mul_any_shape(x, data):
    y = data.draw(hnp.arrays(U64, x.shape))
    out = run_kernel(P, "mul", secret_inputs(x, y), {}, PARTIES, COMPUTE)
    assert out[COMPUTE[0]][0].shape == x.shape
    assert np.array_equal(open_value(out), np.asarray(x * y, dtype=U64))


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((1, 1), (1, 1)), ((5, 7), (7, 1)), ((2, 0), (0, 3))])
def test_matmul_exact(shapes):
    a, b = rand_ring(shapes[0]), rand_ring(shapes[1])
    a.flat[:1] = U64(2**64 - 1)
    out = run_kernel(P, "matmul", secret_inputs(a, b), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_value(out), np.matmul(a, b))


@pytest.mark.parametrize("shapes", [((784, 128), (128, 10)), ((9, 130), (130, 13)), ((1, 5), (5, 3))])
def test_matmul_of_transposed_views_is_exact(shapes):
    """x.T @ g with x.T a view, as the VM's transpose leaves it (the backward product)."""
    a, b = rand_ring(shapes[0][::-1]).T, rand_ring(shapes[1])
    shares = secret_inputs(a, b)
    views = {p: ((x[0].T.copy().T, x[1].T.copy().T), y) for p, (x, y) in shares.items()}  # column by column
    assert all(not x[0].flags.c_contiguous for x, _y in views.values()) or min(shapes[0]) == 1
    out = run_kernel(P, "matmul", views, {}, PARTIES, COMPUTE)
    assert np.array_equal(open_value(out), np.matmul(a, b))


def test_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError):
        run_kernel(P, "matmul", secret_inputs(rand_ring((2, 3)), rand_ring((2, 3))), {}, PARTIES, COMPUTE)


@pytest.mark.parametrize("owner", COMPUTE)
@pytest.mark.parametrize("shape", [(), (0,), (17,), (3, 4)])
def test_share_from_compute_party(owner, shape):
    x = rand_ring(shape)
    inputs = {p: (x if p == owner else None,) for p in COMPUTE}
    out = run_kernel(P, "share", inputs, {"owner": owner, "shape": shape}, PARTIES, COMPUTE)
    assert set(out) == set(COMPUTE)
    assert out[COMPUTE[0]][0].shape == shape
    assert np.array_equal(open_value(out), x)


@pytest.mark.parametrize("shape", [(), (9,), (2, 3)])
def test_share_from_input_party(shape):
    x = rand_ring(shape)
    inputs = {p: (x if p == INPUT_PARTY else None,) for p in PARTIES}
    out = run_kernel(P, "share", inputs, {"owner": INPUT_PARTY, "shape": shape}, PARTIES, COMPUTE)
    assert out[INPUT_PARTY] is None
    assert np.array_equal(open_value({p: out[p] for p in COMPUTE}), x)


def test_share_rejects_a_wrong_shape():
    inputs = {p: (rand_ring((3,)) if p == COMPUTE[1] else None,) for p in COMPUTE}
    with pytest.raises(ValueError):
        run_kernel(P, "share", inputs, {"owner": COMPUTE[1], "shape": (4,)}, PARTIES, COMPUTE)


@pytest.mark.parametrize("shape", [(), (25,), (4, 5)])
def test_reveal(shape):
    x = rand_ring(shape)
    out = run_kernel(P, "reveal", secret_inputs(x), {}, PARTIES, COMPUTE)
    for p in COMPUTE:
        assert out[p].shape == shape and np.array_equal(out[p], x)


@pytest.mark.parametrize("receiver", COMPUTE + [INPUT_PARTY])
def test_reveal_to(receiver):
    x = rand_ring((6, 2))
    inputs = secret_inputs(x)
    inputs[INPUT_PARTY] = (None,)
    out = run_kernel(P, "reveal_to", inputs, {"party": receiver, "shape": (6, 2)}, PARTIES, COMPUTE)
    assert np.array_equal(out[receiver], x)
    assert all(v is None for p, v in out.items() if p != receiver)
    expected = {receiver, COMPUTE[(COMPUTE.index(receiver) - 1) % 3]} if receiver in COMPUTE \
        else set(PARTIES)
    assert set(out) == expected


# ---- truncation ---------------------------------------------------------------------------

def trunc_values(m: int) -> np.ndarray:
    """Random |x| < 2^62 of every magnitude, plus the edges of the documented range."""
    n = 20_000
    mags = (rand_ring(n) >> RNG.integers(1, 64, size=n).astype(U64)) & U64(LIMIT - 1)
    sign = RNG.integers(0, 2, size=n).astype(bool)
    rand = np.where(sign, U64(0) - mags, mags)
    edges = ring([LIMIT - 1, -(LIMIT - 1), LIMIT - 2**m, -(LIMIT - 2**m), 0, 1, -1, 2**m, -(2**m),
                  2**m - 1, -(2**m - 1), 2**m + 1, -(2**m + 1), 2**61, -(2**61)])
    return np.concatenate([edges, rand])


@pytest.mark.parametrize("m", [16, 32])
def test_trunc_error_is_zero_or_one(m):
    x = trunc_values(m)
    out = run_kernel(P, "trunc", secret_inputs(x), {"bits": m}, PARTIES, COMPUTE)
    err = trunc_error(open_value(out), x, m)
    assert set(np.unique(err)) <= {0, 1}, np.unique(err)


@pytest.mark.parametrize("m", [0, 1, 40, 62])
def test_trunc_extreme_shifts(m):
    x = trunc_values(max(m, 1))[:3000]
    out = run_kernel(P, "trunc", secret_inputs(x), {"bits": m}, PARTIES, COMPUTE)
    err = trunc_error(open_value(out), x, m)
    assert set(np.unique(err)) <= ({0} if m == 0 else {0, 1})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(LIMIT - 1), LIMIT - 1), min_size=1, max_size=8),
       st.sampled_from([16, 32]))
def test_trunc_hypothesis(values, m):
    x = ring(values)
    out = run_kernel(P, "trunc", secret_inputs(x), {"bits": m}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), x, m))) <= {0, 1}


def test_trunc_of_a_public_sharing_and_a_scalar():
    x = ring(-(5 << 20) - 3)
    out = run_kernel(P, "trunc", public_like_inputs(x), {"bits": 16}, PARTIES, COMPUTE)
    assert out[COMPUTE[0]][0].shape == ()
    assert int(trunc_error(open_value(out), x, 16)) in (0, 1)


@pytest.mark.parametrize("bits", [-1, 63, 1.5])
def test_trunc_refuses_bad_bit_counts(bits):
    with pytest.raises(ValueError):
        run_kernel(P, "trunc", secret_inputs(rand_ring(3)), {"bits": bits}, PARTIES, COMPUTE)


@pytest.mark.parametrize("m", [16, 32])
def test_mul_trunc(m):
    n = 20_000
    x = np.concatenate([ring([2**31 - 1, -(2**31 - 1), 2**31 - 1, 3 << 16]), rand_signed(n, 2**31)])
    y = np.concatenate([ring([2**31 - 1, 2**31 - 1, -(2**31 - 1), -(9 << 14)]), rand_signed(n, 2**31)])
    out = run_kernel(P, "mul_trunc", secret_inputs(x, y), {"bits": m}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), x * y, m))) <= {0, 1}


def test_mul_trunc_fixed_point():
    f = 16
    x, y = ring([int(1.5 * 2**f), int(-2.25 * 2**f)]), ring([int(-2.25 * 2**f), int(-2.25 * 2**f)])
    out = open_value(run_kernel(P, "mul_trunc", secret_inputs(x, y), {"bits": f}, PARTIES, COMPUTE))
    want = np.array([-3.375, 5.0625]) * 2**f
    assert np.all(np.abs(signed(out) - want) <= 1)


@pytest.mark.parametrize("m", [16, 32])
def test_matmul_trunc(m):
    a, b = rand_signed((40, 8), 2**29), rand_signed((8, 30), 2**29)
    a[0, :] = ring([2**29 - 1] * 8)
    b[:, 0] = ring([-(2**29 - 1)] * 8)
    out = run_kernel(P, "matmul_trunc", secret_inputs(a, b), {"bits": m}, PARTIES, COMPUTE)
    res = open_value(out)
    assert res.shape == (40, 30)
    assert set(np.unique(trunc_error(res, np.matmul(a, b), m))) <= {0, 1}


@pytest.mark.parametrize("m", [16, 32])
def test_trunc_rounds_probabilistically(m):
    n = 40_000
    k = rand_signed(n, 2**(61 - m))
    base = k << U64(m)
    for frac, p_up in [(0, 0.0), (2**(m - 1), 0.5), (2**(m - 2), 0.25), (3 * 2**(m - 2), 0.75)]:
        x = base + U64(frac)
        err = trunc_error(open_value(run_kernel(P, "trunc", secret_inputs(x), {"bits": m},
                                                 PARTIES, COMPUTE)), x, m)
        up = err.mean()
        assert abs(up - p_up) <= 6 * math.sqrt(max(p_up * (1 - p_up), 1e-12) / n), (frac, up)


# ---- what each party sees -------------------------------------------------------------------

def received_arrays(trace) -> list[tuple[str, int, str, np.ndarray]]:
    """Every array any party received: (party, round, sender, array)."""
    return [(p, r, q, a) for p, rounds in trace.received.items() for r, got in enumerate(rounds)
            for q, arrays in got.items() for a in arrays]


def all_views_uniform(kernel: str, inputs: dict, attrs: dict) -> None:
    _, trace = run_kernel_traced(P, kernel, inputs, attrs, PARTIES, COMPUTE)
    views = received_arrays(trace)
    assert views
    for p, r, q, a in views:
        assert_balanced_bits(a, what=f"{kernel}: what {p} got from {q} in round {r + 1}")


@pytest.mark.parametrize("kernel,values,attrs", [
    ("mul", [np.full(20_000, 3, U64), np.full(20_000, 5, U64)], {}),
    ("matmul", [np.full((100, 10), 3, U64), np.full((10, 200), 5, U64)], {}),
    ("trunc", [np.full(20_000, 7 << 20, U64)], {"bits": 16}),
    ("mul_trunc", [np.full(20_000, 3 << 16, U64), np.full(20_000, 5 << 16, U64)], {"bits": 16}),
    ("matmul_trunc", [np.full((100, 10), 3, U64), np.full((10, 200), 5, U64)], {"bits": 32}),
])
def test_views_are_uniform_even_for_public_like_inputs(kernel, values, attrs):
    all_views_uniform(kernel, public_like_inputs(*values), attrs)


def test_an_outside_receiver_sees_a_fresh_sharing():
    x = np.full(20_000, 12345, U64)
    inputs = public_like_inputs(x) | {INPUT_PARTY: (None,)}
    all_views_uniform("reveal_to", inputs, {"party": INPUT_PARTY, "shape": x.shape})


@pytest.mark.parametrize("kernel,who", [("trunc", "dealer"), ("mul_trunc", "dealer"), ("mul_trunc", "openers")])
def test_view_check_catches_a_missing_mask(monkeypatch, kernel, who):
    """Drop the dealer's private mask on what it opens, or P0's and P1's masks on theirs (still
    drawn, so the declared cost holds, but adding nothing): the receivers' views are no longer
    uniform. trunc of a sharing opens through the dealer alone, so only its mask is there to drop."""
    real = rep3_fused.open_mask

    def fake(product, r):
        by_dealer = sys._getframe(1).f_code.co_name in ("_trunc_p2", "_trunc_share_p2")  # noqa: SLF001
        return real(product, np.zeros_like(r) if by_dealer == (who == "dealer") else r)
    monkeypatch.setattr(rep3_fused, "open_mask", fake)
    values = {"trunc": [np.full(20_000, 7 << 20, U64)],
              "mul_trunc": [np.full(20_000, 3 << 16, U64), np.full(20_000, 5 << 16, U64)]}[kernel]
    with pytest.raises(AssertionError, match="non-uniform"):
        all_views_uniform(kernel, public_like_inputs(*values), {"bits": 16})


def output_pairs_uniform(kernel: str, inputs: dict, attrs: dict) -> None:
    """Each party's two output components, and their sum (the value minus the component it lacks),
    have balanced bits: the pair a party holds says nothing of the value."""
    out = run_kernel(P, kernel, inputs, attrs, PARTIES, COMPUTE)
    for p in COMPUTE:
        a, b = (np.asarray(c, dtype=U64).reshape(-1) for c in out[p])
        for what, v in (("first component", a), ("second component", b), ("components' sum", a + b)):
            assert_balanced_bits(v, what=f"{kernel}: {p}'s {what}")


@pytest.mark.parametrize("kernel,values,attrs", [
    ("trunc", [np.full(20_000, 7 << 20, U64)], {"bits": 16}),
    ("mul_trunc", [np.full(20_000, 3 << 16, U64), np.full(20_000, 5 << 16, U64)], {"bits": 16}),
    ("matmul_trunc", [np.full((100, 10), 3, U64), np.full((10, 200), 5, U64)], {"bits": 32}),
])
def test_truncation_outputs_are_fresh_sharings(kernel, values, attrs):
    output_pairs_uniform(kernel, public_like_inputs(*values), attrs)


@pytest.mark.parametrize("who", [0, 1])
def test_output_check_catches_a_missing_output_mask(monkeypatch, who):
    """An opener leaving its output mask (P0's t, from k02, or P1's q, from k12) out of its round-2
    message on the elements it opens first (who = 0) or second (who = 1) makes a party's pair
    reveal the value: the check above must see it."""
    if who == 0:
        real = rep3_fused.trunc_p0
        monkeypatch.setattr(rep3_fused, "trunc_p0", lambda s, g1, g2, a, b, t, m, **kw: real(s, g1, g2, a, b, None, m, **kw))
    else:
        real = rep3_fused.trunc_p1
        monkeypatch.setattr(rep3_fused, "trunc_p1", lambda s, g0, z2, e, f, q, m, **kw: real(s, g0, z2, e, f, None, m, **kw))
    with pytest.raises(AssertionError, match="non-uniform"):
        output_pairs_uniform("trunc", public_like_inputs(np.full(20_000, 7 << 20, U64)), {"bits": 16})


@pytest.mark.parametrize("kernel,values,attrs", [
    ("trunc", [rand_signed(50, 2**40)], {"bits": 16}),
    ("mul_trunc", [rand_signed(50, 2**20), rand_signed(50, 2**20)], {"bits": 16}),
    ("matmul_trunc", [rand_signed((5, 4), 2**20), rand_signed((4, 3), 2**20)], {"bits": 16}),
])
def test_the_dealer_receives_nothing_and_round_two_is_between_the_openers(kernel, values, attrs):
    """docs/security.md's claim: P2 gets no array in either round, and in round 2 P0 and P1 hear
    only from each other."""
    _, trace = run_kernel_traced(P, kernel, secret_inputs(*values), attrs, PARTIES, COMPUTE)
    p0, p1, p2 = COMPUTE
    assert not any(arrays for got in trace.received[p2] for arrays in got.values())
    for me, other in ((p0, p1), (p1, p0)):
        assert {q: len(arrays) for q, arrays in trace.received[me][1].items()} == {other: 1}


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_the_dealer_sends_each_opener_half_of_its_words(n):
    """P2's round-1 words: its masked share to both, and each opener's dealt words for the half
    of the elements the other opens first (one element apart at most, f padded per half)."""
    x = rand_signed(n, 2**40)
    out, trace = run_kernel_traced(P, "trunc", secret_inputs(x), {"bits": 16}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), x, 16))) <= {0, 1}
    p0, p1, p2 = COMPUTE
    sizes = {p: [a.size for a in trace.received[p][0][p2]] for p in (p0, p1)}
    assert sizes[p0][0] == sizes[p1][0] == n  # z2 + rC
    assert sizes[p0][1] == n - n // 2 and sizes[p1][1] == n // 2  # e: P0's for the second half
    assert abs(sum(sizes[p0]) - sum(sizes[p1])) <= 2


@pytest.mark.parametrize("z", [0, 2**61, -(2**61)])
def test_trunc_opened_value_is_uniform(z):
    """c = z + r + 2^62, which P0 and P1 both learn, looks uniform whatever z is: opened from
    additive shares (mul_trunc by 1: every party sends) and from a sharing (trunc: P2 alone)."""
    x = ring(np.full(20_000, z, dtype=object))
    one = np.ones(20_000, dtype=U64)
    p0, p1, p2 = COMPUTE
    _, trace = run_kernel_traced(P, "mul_trunc", public_like_inputs(x, one), {"bits": 16}, PARTIES, COMPUTE)
    r0, r1 = trace.received[p0][0], trace.received[p1][0]
    c = r0[p2][0] + r0[p1][0] + r1[p0][0] + U64(LIMIT)  # z2 + (z1 + rB) + (z0 + rA) + 2^62
    assert np.array_equal(r1[p2][0], r0[p2][0])  # both see the same z2
    assert_balanced_bits(c)
    _, trace = run_kernel_traced(P, "trunc", public_like_inputs(x), {"bits": 16}, PARTIES, COMPUTE)
    g0, g1 = trace.received[p0][0][p2][0], trace.received[p1][0][p2][0]  # x2 + r = r, x0 + r = x + r
    assert np.array_equal(g0 + x, g1)  # P0 adds its x0 + x1 = x, P1 its x1 + x2 = 0: the same c
    assert_balanced_bits(g1 + U64(LIMIT))
    assert_balanced_bits(g0)


def top_byte_chi2(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample chi-square of the top-byte histograms (255 degrees of freedom)."""
    ha = np.bincount((a >> U64(56)).astype(np.int64), minlength=256)
    hb = np.bincount((b >> U64(56)).astype(np.int64), minlength=256)
    tot = ha + hb
    return float((((ha - hb) ** 2)[tot > 0] / tot[tot > 0]).sum())


@pytest.mark.parametrize("owner", [COMPUTE[0], COMPUTE[2], INPUT_PARTY])
def test_shares_of_a_constant_are_uniform_and_hide_it(owner):
    n = 40_000
    comps = {}
    for secret in (0, 2**63 + 12345):
        x = np.full(n, secret, U64)
        inputs = {p: (x if p == owner else None,) for p in PARTIES}
        out = run_kernel(P, "share", inputs, {"owner": owner, "shape": (n,)}, PARTIES, COMPUTE)
        comps[secret] = out
    for p in COMPUTE:
        if p == owner:
            continue
        # the component a non-owner holds that depends on the secret (the other may be the zero)
        a = comps[0][p][0] if comps[0][p][0].any() else comps[0][p][1]
        b = comps[2**63 + 12345][p][0] if comps[2**63 + 12345][p][0].any() else comps[2**63 + 12345][p][1]
        assert_balanced_bits(a)
        assert_balanced_bits(b)
        assert top_byte_chi2(a, b) < 255 + 7 * math.sqrt(510)


# ---- randomness use ----------------------------------------------------------------------------

def kernel_cases() -> list[tuple[str, dict, dict]]:
    """One small call of every kernel variant: (kernel, inputs, attrs)."""
    x, y = rand_signed(6, 2**20), rand_signed(6, 2**20)
    a, b = rand_signed((2, 3), 2**20), rand_signed((3, 4), 2**20)
    cases = [("mul", secret_inputs(x, y), {}), ("matmul", secret_inputs(a, b), {}),
             ("trunc", secret_inputs(x), {"bits": 8}), ("mul_trunc", secret_inputs(x, y), {"bits": 8}),
             ("matmul_trunc", secret_inputs(a, b), {"bits": 8}), ("reveal", secret_inputs(x), {})]
    for owner in COMPUTE + [INPUT_PARTY]:
        inputs = {p: (x if p == owner else None,) for p in PARTIES}
        cases.append(("share", inputs, {"owner": owner, "shape": x.shape}))
        inputs = secret_inputs(x) | {INPUT_PARTY: (None,)}
        cases.append(("reveal_to", inputs, {"party": owner, "shape": x.shape}))
    return cases


@pytest.mark.parametrize("case", range(len(kernel_cases())))
def test_each_draw_is_a_fresh_stream_drawn_by_both_key_holders(case):
    """No party reuses a (key, stream) within a call, and both ends of a pairwise key draw alike
    (a party's private draws, such as the truncation dealer's mask rC, have no other end)."""
    kernel, inputs, attrs = kernel_cases()[case]
    _, trace = run_kernel_traced(P, kernel, inputs, attrs, PARTIES, COMPUTE)
    assert all(len({op for _, op, _, _ in draws}) <= 1 for draws in trace.draws.values())
    assert_fresh_paired_streams(trace)


@pytest.mark.parametrize("kernel", ["mul", "matmul", "trunc", "mul_trunc", "matmul_trunc"])
def test_products_and_truncations_make_one_prg_call_per_party(kernel):
    """All of a party's randomness for a product or a truncation, under however many keys (the
    dealer's: its private key, k02 and k12), comes from one bulk draw."""
    case = next(c for c in kernel_cases() if c[0] == kernel)
    _, trace = run_kernel_traced(P, *case, PARTIES, COMPUTE)
    assert trace.prg_calls == {p: 1 for p in COMPUTE}, trace.prg_calls
    assert all(len(d) > 1 for d in trace.draws.values())  # ... of several rows


@pytest.mark.parametrize("kernel", ["mul", "trunc", "mul_trunc"])
def test_a_share_with_components_of_different_shapes_is_refused(kernel):
    """Arrays (the fast path) and lists (np.shape's) alike."""
    ctx = Context("alice", COMPUTE, make_prgs(PARTIES)["alice"])
    good = (np.zeros(3, np.uint64), np.zeros(3, np.uint64))
    for bad in ((np.zeros(3, np.uint64), np.zeros(4, np.uint64)), ([0, 0, 0], [0, 0])):
        args = (bad, good) if kernel != "trunc" else (bad,)
        attrs = {} if kernel == "mul" else {"bits": 4}
        with pytest.raises(ValueError, match="malformed rep3 share"):
            next(rep3.KERNELS[kernel].fn(ctx, *args, **attrs))


# ---- costs and local operations ---------------------------------------------------------------

def test_declared_costs():
    c0, c1, c2 = COMPUTE
    k = P.kernels
    for name in ("trunc", "mul_trunc", "matmul_trunc", "trunc_add"):  # P2's f: 2, 4 or 8 bytes an element,
        for bits, f in ((16, 4), (17, 6), (32, 6), (33, 10), (62, 10)):  # each half of 5 packed on its own
            opener = 10 if name == "trunc" else 20  # trunc of a sharing: the openers send in round 2 only
            assert k[name].cost(COMPUTE, 10, bits=bits) == Cost(2, {c0: opener, c1: opener, c2: 30 + f})
    for name in ("mul_add", "matmul_add"):
        assert k[name].cost(COMPUTE, 10) == Cost(0, {c0: 0, c1: 0, c2: 0})
    for name in ("mul", "matmul", "reveal"):
        assert k[name].cost(COMPUTE, 10) == Cost(1, {c0: 10, c1: 10, c2: 10})
    assert k["share"].cost(COMPUTE, 10, owner=c1, shape=(10,)) == Cost(1, {c0: 0, c1: 10, c2: 0})
    assert k["share"].cost(COMPUTE, 10, owner="dave", shape=(10,)) == \
        Cost(1, {c0: 0, c1: 0, c2: 0, "dave": 60})
    assert k["reveal_to"].cost(COMPUTE, 10, party=c0, shape=(10,)) == Cost(1, {c2: 10, c0: 0})
    assert k["reveal_to"].cost(COMPUTE, 10, party="dave", shape=(10,)) == \
        Cost(1, {c0: 10, c1: 10, c2: 10, "dave": 0})
    assert set(k) == {"share", "reveal", "reveal_to", "mul", "matmul", "trunc", "mul_trunc", "matmul_trunc",
                      "mul_add", "matmul_add", "trunc_add", "msb", "msb_mul", "a2b", "bitinject",
                      "msb_at", "msb_at_mul", "finish", "mul_trunc_pending", "trunc_pending"}
    assert k["finish"].cost(COMPUTE, 10) == Cost(1, {c0: 10, c1: 10, c2: 0})
    assert k["trunc"].cost(COMPUTE, 10, bits=16, keep=True).rounds == 1
    assert k["mul_trunc_pending"].cost(COMPUTE, 10, bits=16).rounds == 3  # P2's deal, then mul_trunc's two
    assert k["trunc_pending"].cost(COMPUTE, 10, bits=16) == k["trunc_add"].cost(COMPUTE, 10, bits=16)


def test_driver_holds_kernels_to_their_declared_cost():
    class Lying(Rep3):
        kernels = dict(Rep3.kernels)

    spec = Rep3.kernels["mul"]
    Lying.kernels["mul"] = KernelSpec(spec.fn, spec.participants,
                                      lambda compute, n, **_: Cost(1, {p: 2 * n for p in compute}))
    Lying.kernels["trunc"] = KernelSpec(Rep3.kernels["trunc"].fn, Rep3.kernels["trunc"].participants,
                                        lambda compute, n, **_: Cost(1, {p: 0 for p in compute}))
    real = Rep3.kernels["reveal"]
    Lying.kernels["reveal"] = KernelSpec(real.fn, real.participants,  # draws no randomness, declares some
                                         lambda compute, n, **_: Cost(1, {p: n for p in compute},
                                                                      {p: n for p in compute}))
    real = Rep3.kernels["matmul"]  # right counts, but claims everyone sends to its successor
    Lying.kernels["matmul"] = KernelSpec(real.fn, real.participants, lambda compute, n, **_: Cost(
        1, {p: n for p in compute}, {p: 2 * n for p in compute},
        links(tuple((p, compute[(i + 1) % 3]) for i, p in enumerate(compute)))))
    x = rand_ring(4)
    with pytest.raises(AssertionError, match="sent"):
        run_kernel(Lying(), "mul", secret_inputs(x, x), {}, PARTIES, COMPUTE)
    m = rand_ring((2, 2))
    run_kernel(Rep3(), "matmul", secret_inputs(m, m), {}, PARTIES, COMPUTE)
    with pytest.raises(AssertionError, match="links"):
        run_kernel(Lying(), "matmul", secret_inputs(m, m), {}, PARTIES, COMPUTE)
    with pytest.raises(AssertionError, match="rounds"):
        run_kernel(Lying(), "trunc", secret_inputs(x), {"bits": 3}, PARTIES, COMPUTE)
    with pytest.raises(AssertionError, match="randomness"):
        run_kernel(Lying(), "reveal", secret_inputs(x), {}, PARTIES, COMPUTE)


def test_repeated_calls_use_fresh_randomness():
    x = np.zeros(8, U64)
    a = run_kernel(P, "mul", public_like_inputs(x, x), {}, PARTIES, COMPUTE)
    b = run_kernel(P, "mul", public_like_inputs(x, x), {}, PARTIES, COMPUTE)
    assert not np.array_equal(a[COMPUTE[0]][0], b[COMPUTE[0]][0])


def ctxs() -> dict[str, Context]:
    prgs = make_prgs(PARTIES)
    return {p: Context(p, COMPUTE, prgs[p]) for p in COMPUTE}


def test_from_public_add_public_and_map():
    c = ring([5, -7, 2**63])
    d = ring([-1, 10, 3])
    cx = ctxs()
    shares = {p: P.from_public(cx[p], c) for p in COMPUTE}
    assert np.array_equal(open_value(shares), c)
    x = rand_ring(3)
    sx = share_value(x, rng=RNG)
    assert np.array_equal(open_value({p: P.add_public(cx[p], sx[p], d) for p in COMPUTE}), x + d)
    assert np.array_equal(open_value({p: P.map(lambda a: a * d, sx[p]) for p in COMPUTE}), x * d)
    summed = {p: P.map(lambda a, b: a - b, sx[p], shares[p]) for p in COMPUTE}
    assert np.array_equal(open_value(summed), x - c)
    # a public row broadcast onto a secret matrix
    m = rand_ring((2, 3))
    sm = share_value(m, rng=RNG)
    assert np.array_equal(open_value({p: P.add_public(cx[p], sm[p], d) for p in COMPUTE}), m + d)
    s3 = share_value(ring(3), rng=RNG)
    scalar = {p: P.map(lambda a: a * ring(2**63), s3[p]) for p in COMPUTE}
    assert open_value(scalar).shape == () and int(open_value(scalar)) == 2**63


def test_protocol_identity():
    assert P.name == "rep3" and P.positional == 3 and P.usage() == "rep3(p0, p1, p2)"


@pytest.mark.parametrize("m", [16, 32])
def test_sum_of_products_in_additive_shares_truncated_once(m):
    """mul_add keeps each party's additive share (no round); local sums; trunc_add opens it once."""
    n = 5000
    x, y, u, v = (rand_signed(n, 2**30) for _ in range(4))
    zx = run_kernel(P, "mul_add", secret_inputs(x, y), {}, PARTIES, COMPUTE)
    zu = run_kernel(P, "mul_add", secret_inputs(u, v), {}, PARTIES, COMPUTE)
    summed = {p: ((zx[p] + zu[p]).astype(np.uint64),) for p in COMPUTE}
    total = sum(zx[p] for p in COMPUTE) + sum(zu[p] for p in COMPUTE)  # the additive shares open to x*y + u*v
    assert np.array_equal(total.astype(np.uint64), (x * y + u * v).astype(np.uint64))
    out, trace = run_kernel_traced(P, "trunc_add", summed, {"bits": m}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), x * y + u * v, m))) <= {0, 1}
    assert all(r == 2 for r in trace.rounds.values())
    for party in COMPUTE:  # what each party receives is uniformly masked
        for per_round in trace.received[party]:
            for arrays in per_round.values():
                for a in arrays:
                    assert_balanced_bits(np.asarray(a, dtype=np.uint64))


@pytest.mark.parametrize("shapes", [((128, 784), (784, 128)), ((9, 130), (130, 13)), ((33, 5), (5, 66))])
def test_matmul_exact_through_the_c_kernel(shapes):
    """Shapes big enough for the C kernel, on and off its 4x4 tiles, with wrap-around values."""
    a, b = rand_ring(shapes[0]), rand_ring(shapes[1])
    a[0, :] = U64(2**64 - 1)
    b[:, -1] = U64(2**63)
    out = run_kernel(P, "matmul", secret_inputs(a, b), {}, PARTIES, COMPUTE)
    assert np.array_equal(open_value(out), np.matmul(a, b))


def test_matmul_additive_shares_sum_to_the_product():
    """The three parties' local shares (P0 one matrix product, P1 and P2 two) add up to x @ y."""
    x, y = rand_ring((20, 70)), rand_ring((70, 11))
    xs, ys = share_value(x, rng=RNG), share_value(y, rng=RNG)
    total = np.zeros((20, 11), U64)
    for i, p in enumerate(COMPUTE):
        ctx = Context(p, COMPUTE, make_prgs(PARTIES)[p])
        z, shape = rep3._matmul_share(ctx, xs[p], ys[p])
        assert shape == (20, 11)
        total += z.reshape(shape)
    assert np.array_equal(total, x @ y)


def test_matmul_trunc_through_the_c_kernel():
    a, b = rand_signed((24, 100), 2**26), rand_signed((100, 17), 2**26)
    out = run_kernel(P, "matmul_trunc", secret_inputs(a, b), {"bits": 16}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), np.matmul(a, b), 16))) <= {0, 1}
