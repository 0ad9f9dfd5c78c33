"""The distributed comparison function (runtime/protocols/dcf.py): the two evaluations sum to
offset + beta [x < alpha] for every input width, payload width and edge input, the correction
words travel as ring words, and what both evaluators see (the correction words) is balanced and
uncorrelated with alpha."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_driver import assert_balanced_bits, bit_counts
from veil.runtime.protocols import dcf

U64 = np.uint64
RNG = np.random.default_rng(11)


def rand(shape) -> np.ndarray:
    return RNG.integers(0, 2**64, size=shape, dtype=U64)


def below(n_bits: int, shape) -> np.ndarray:
    """Uniform n_bits-bit words."""
    return rand(shape) >> U64(64 - n_bits)


def keys(alpha: np.ndarray, beta: np.ndarray, n_bits: int, offset: np.ndarray | None = None):
    n = alpha.size
    s0, s1 = rand((n, 2)), rand((n, 2))
    return s0, s1, dcf.gen(alpha, beta, s0, s1, n_bits, offset)


def shared(s0, s1, cw, x, n_bits) -> np.ndarray:
    return dcf.evaluate(0, s0, cw, x, n_bits) + dcf.evaluate(1, s1, cw, x, n_bits)


def edges(alpha: np.ndarray, n_bits: int) -> list[np.ndarray]:
    """x = alpha, alpha +- 1, 0 and 2^n_bits - 1 (wrapped into n_bits bits), for each key."""
    top = U64((1 << n_bits) - 1) if n_bits < 64 else U64(2**64 - 1)
    n = alpha.size
    return [alpha, (alpha + U64(1)) & top, (alpha - U64(1)) & top, np.zeros(n, U64), np.full(n, top, U64)]


@pytest.mark.parametrize("n_bits", [1, 2, 3, 7, 31, 32, 62, 63, 64])
@pytest.mark.parametrize("w", [1, 2, 3])
def test_the_evaluations_sum_to_the_comparison(n_bits, w):
    n = 400
    alpha, beta, offset = below(n_bits, n), rand((n, w)), rand((n, w))
    s0, s1, cw = keys(alpha, beta, n_bits, offset)
    for x in edges(alpha, n_bits) + [below(n_bits, n)]:
        want = offset + beta * (x < alpha)[:, None]
        assert np.array_equal(shared(s0, s1, cw, x, n_bits), want)
    s0, s1, cw = keys(alpha, beta, n_bits)  # no offset: f itself
    x = below(n_bits, n)
    assert np.array_equal(shared(s0, s1, cw, x, n_bits), beta * (x < alpha)[:, None])


def test_extreme_alphas():
    for n_bits in (1, 5, 63, 64):
        top = (1 << n_bits) - 1
        alpha = np.array([0, top, 1, top - 1 if top > 1 else 0], dtype=U64)
        beta = rand((4, 1))
        s0, s1, cw = keys(alpha, beta, n_bits)
        for x in edges(alpha, n_bits):
            assert np.array_equal(shared(s0, s1, cw, x, n_bits), beta * (x < alpha)[:, None]), n_bits


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.integers(1, 3), st.data())
def test_hypothesis(n_bits, w, data):
    n = data.draw(st.integers(1, 6))
    word = st.integers(0, (1 << n_bits) - 1)
    alpha = np.array(data.draw(st.lists(word, min_size=n, max_size=n)), dtype=U64)
    x = np.array(data.draw(st.lists(word, min_size=n, max_size=n)), dtype=U64)
    ring = st.integers(0, 2**64 - 1)
    beta = np.array(data.draw(st.lists(ring, min_size=n * w, max_size=n * w)), dtype=U64).reshape(n, w)
    offset = np.array(data.draw(st.lists(ring, min_size=n * w, max_size=n * w)), dtype=U64).reshape(n, w)
    s0, s1, cw = keys(alpha, beta, n_bits, offset)
    for probe in [x] + edges(alpha, n_bits):
        assert np.array_equal(shared(s0, s1, cw, probe, n_bits), offset + beta * (probe < alpha)[:, None])


def test_correction_words_round_trip_as_ring_words():
    for n, n_bits, w in [(1, 63, 1), (37, 63, 2), (64, 1, 1), (5, 64, 3), (0, 63, 1)]:
        alpha = below(n_bits, n)
        s0, s1, cw = keys(alpha, rand((n, w)), n_bits)
        words = cw.pack()
        assert words.dtype == U64 and words.size == dcf.cw_words(n, n_bits, w)
        back = dcf.CorrectionWords.unpack(words, n, n_bits, w)
        x = below(n_bits, n)
        assert np.array_equal(shared(s0, s1, back, x, n_bits), shared(s0, s1, cw, x, n_bits))
    with pytest.raises(ValueError, match="correction words"):
        dcf.CorrectionWords.unpack(np.zeros(5, U64), 3, 63, 1)


@pytest.mark.parametrize("n_bits", [0, 65])
def test_refuses_a_bad_width(n_bits):
    with pytest.raises(ValueError, match="1..64"):
        dcf.gen(np.zeros(1, U64), np.zeros((1, 1), U64), rand((1, 2)), rand((1, 2)), n_bits)


def test_one_evaluation_alone_is_not_the_answer():
    """Each key's output is masked by the PRG: a share alone is balanced whatever f is."""
    n = 4096
    alpha = np.full(n, 5, U64)
    s0, s1, cw = keys(alpha, np.ones((n, 1), U64), 63)
    for b, s in ((0, s0), (1, s1)):
        assert_balanced_bits(dcf.evaluate(b, s, cw, np.zeros(n, U64), 63)[:, 0])


def test_correction_words_are_balanced_and_independent_of_alpha():
    n, n_bits = 4096, 63
    for alpha in (np.zeros(n, U64), np.full(n, 2**63 - 1, U64), below(n_bits, n)):
        _, _, cw = keys(alpha, np.ones((n, 1), U64), n_bits, np.zeros((n, 1), U64))
        assert not np.any(cw.s[..., 0] & U64(1))  # a seed's low bit is its control bit, cleared
        assert_balanced_bits(cw.s[..., 1].reshape(-1))
        low = bit_counts(cw.s[..., 0].reshape(-1))[1:]
        half = cw.s[..., 0].size / 2
        assert np.all(np.abs(low - half) < 6 * np.sqrt(half / 2)), "a seed bit is unbalanced"
        assert_balanced_bits(cw.v.reshape(-1))
        assert_balanced_bits(cw.final.reshape(-1))
        bits = (alpha[None, :] >> np.arange(n_bits - 1, -1, -1, dtype=U64)[:, None]) & U64(1)
        for side in (0, 1):
            t = cw.t[:, side, :]
            total = t.size
            assert abs(int(t.sum()) - total / 2) < 6 * np.sqrt(total / 4), (side, "unbalanced")
            agree = int((t == bits).sum())  # t_CW agrees with alpha's bit about half the time
            assert abs(agree - total / 2) < 6 * np.sqrt(total / 4), (side, "correlated with alpha")


def test_the_prg_is_fixed_key_mmo():
    """H(z) = AES_K(z) ^ z block by block, the same for any batch shape."""
    z = rand((9, 3, 2))
    whole = dcf.mmo(z)
    parts = np.stack([dcf.mmo(z[i]) for i in range(9)])
    assert np.array_equal(whole, parts) and not np.array_equal(whole, z)
    assert np.array_equal(dcf.mmo(np.zeros((1, 2), U64)) ^ dcf.mmo(np.zeros((1, 2), U64)), np.zeros((1, 2), U64))


@pytest.mark.skipif(not dcf.HAVE_NATIVE, reason="the C kernels are not built here, or this CPU lacks AES-NI")
@pytest.mark.parametrize("n_bits", [1, 2, 17, 63, 64])
@pytest.mark.parametrize("w", [1, 2, 3, 4])
def test_the_c_kernel_agrees_with_numpy_word_for_word(n_bits, w):
    for n in (0, 1, 3, 130):  # groups of 2 and 4 keys in C, and their tails
        alpha, beta, offset = below(n_bits, n), rand((n, w)), rand((n, w))
        s0, s1 = rand((n, 2)), rand((n, 2))
        a = dcf.gen(alpha, beta, s0, s1, n_bits, offset, native=False)
        b = dcf.gen(alpha, beta, s0, s1, n_bits, offset, native=True)
        for field in ("s", "v", "t", "final"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        packed = dcf.gen_packed(alpha, beta, s0, s1, n_bits, offset, native=True)
        assert np.array_equal(a.pack(), b.pack()) and np.array_equal(packed, a.pack())
        assert np.array_equal(dcf.gen_packed(alpha, beta, s0, s1, n_bits, offset, native=False), packed)
        x = below(n_bits, n)
        for party, seed in ((0, s0), (1, s1)):
            assert np.array_equal(dcf.evaluate_packed(party, seed, packed, x, n_bits, w, native=True),
                                  dcf.evaluate_packed(party, seed, packed, x, n_bits, w, native=False))
        for x in edges(alpha, n_bits) + [below(n_bits, n)]:
            for party, seed in ((0, s0), (1, s1)):
                assert np.array_equal(dcf.evaluate(party, seed, a, x, n_bits, native=False),
                                      dcf.evaluate(party, seed, a, x, n_bits, native=True))


def test_a_wide_payload_falls_back_to_numpy():
    n, w = 3, dcf.MAX_NATIVE_W + 1
    alpha, beta = below(63, n), rand((n, w))
    s0, s1, cw = keys(alpha, beta, 63)
    assert np.array_equal(shared(s0, s1, cw, alpha - U64(1), 63), beta)
    with pytest.raises(ValueError, match="not available"):
        dcf.gen(alpha, beta, s0, s1, 63, native=True)


# ---- one key at k points (evaluate_at_packed) ----------------------------------------------------

NATIVE_AT = [False] + ([True] if dcf.HAVE_NATIVE_AT else [])


def awkward_points(n: int, k: int, n_bits: int) -> np.ndarray:
    """(n, k) points near a random centre per key: repeats, neighbours, the top bit flipped, and
    (through the wrap of the n_bits-bit ring) both ends of the range, in shuffled order."""
    top = (1 << n_bits) - 1 if n_bits < 64 else 2**64 - 1
    centre = below(n_bits, (n, 1))
    centre[: n // 3] = U64(top)                          # these wrap around 2^n_bits below
    step = RNG.integers(-3, 4, size=(n, k)).astype(np.int64).astype(U64)
    x = (centre + step) & U64(top)
    flip = RNG.random((n, k)) < 0.2
    x[flip] ^= U64(1 << (n_bits - 1))
    far = RNG.random((n, k)) < 0.1
    x[far] = below(n_bits, int(far.sum()))
    return np.take_along_axis(x, RNG.permuted(np.tile(np.arange(k), (n, 1)), axis=1), axis=1)


def one_at_a_time(b: int, seed, words, x: np.ndarray, n_bits: int, w: int) -> np.ndarray:
    """The reference: k separate evaluations of every key (the numpy path's)."""
    cols = [dcf.evaluate_packed(b, seed, words, x[:, j], n_bits, w, native=False) for j in range(x.shape[1])]
    return np.stack(cols, axis=1) if cols else np.empty((x.shape[0], 0, w), U64)


@pytest.mark.parametrize("native", NATIVE_AT)
@pytest.mark.parametrize("n_bits", [1, 2, 8, 63, 64])
@pytest.mark.parametrize("w", [1, 2, 3])
@pytest.mark.parametrize("n,k", [(0, 4), (1, 1), (5, 0), (9, 1), (13, 7), (4, 40)])
def test_evaluate_at_equals_repeated_evaluations(native, n_bits, w, n, k):
    alpha, beta, offset = below(n_bits, n), rand((n, w)), rand((n, w))
    s0, s1 = rand((n, 2)), rand((n, 2))
    words = dcf.gen_packed(alpha, beta, s0, s1, n_bits, offset)
    x = awkward_points(n, k, n_bits) if n else np.empty((0, k), U64)
    got = [dcf.evaluate_at_packed(b, s, words, x, n_bits, w, native=native) for b, s in ((0, s0), (1, s1))]
    for b, s in ((0, s0), (1, s1)):
        assert got[b].shape == (n, k, w)
        assert np.array_equal(got[b], one_at_a_time(b, s, words, x, n_bits, w))
    assert np.array_equal(got[0] + got[1], offset[:, None, :] + beta[:, None, :] * (x < alpha[:, None])[..., None])


@pytest.mark.parametrize("native", NATIVE_AT)
def test_evaluate_at_sorted_equal_adjacent_and_top_bit_points(native):
    """Hand-picked rows: all equal, consecutive, one apart in the top bit only, both ends of 63 bits."""
    n_bits, top = 63, (1 << 63) - 1
    rows = [[5, 5, 5, 5], [7, 8, 9, 6], [3, 3 | 1 << 62, 3, 1 << 62], [top, 0, top - 1, 1]]
    x = np.array(rows, dtype=U64)
    alpha = np.array([5, 8, 1 << 62, 1], dtype=U64)
    beta = rand((4, 2))
    s0, s1 = rand((4, 2)), rand((4, 2))
    words = dcf.gen_packed(alpha, beta, s0, s1, n_bits)
    for b, s in ((0, s0), (1, s1)):
        assert np.array_equal(dcf.evaluate_at_packed(b, s, words, x, n_bits, 2, native=native),
                              one_at_a_time(b, s, words, x, n_bits, 2))


@pytest.mark.skipif(not dcf.HAVE_NATIVE_AT, reason="the C DCF kernels are not built here")
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 64), st.integers(1, 2), st.data())
def test_evaluate_at_c_and_numpy_agree(n_bits, w, data):
    n, k = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 9))
    word = st.integers(0, (1 << n_bits) - 1)
    x = np.array(data.draw(st.lists(word, min_size=n * k, max_size=n * k)), dtype=U64).reshape(n, k)
    alpha = np.array(data.draw(st.lists(word, min_size=n, max_size=n)), dtype=U64)
    beta, s0 = rand((n, w)), rand((n, 2))
    words = dcf.gen_packed(alpha, beta, s0, rand((n, 2)), n_bits)
    assert np.array_equal(dcf.evaluate_at_packed(0, s0, words, x, n_bits, w, native=True),
                          dcf.evaluate_at_packed(0, s0, words, x, n_bits, w, native=False))


def test_evaluate_at_reads_only_the_low_bits_and_checks_shapes():
    """Points above 2^n_bits are read modulo 2^n_bits like evaluate's; a flat x or short words fail."""
    n_bits, n, k = 20, 3, 5
    alpha, s0 = below(n_bits, n), rand((n, 2))
    words = dcf.gen_packed(alpha, rand((n, 1)), s0, rand((n, 2)), n_bits)
    x = below(n_bits, (n, k))
    high = x | (rand((n, k)) << U64(n_bits))
    for native in NATIVE_AT:
        assert np.array_equal(dcf.evaluate_at_packed(0, s0, words, high, n_bits, 1, native=native),
                              dcf.evaluate_at_packed(0, s0, words, x, n_bits, 1, native=native))
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        dcf.evaluate_at_packed(0, s0, words, x.reshape(-1), n_bits, 1)
    with pytest.raises(ValueError, match="correction words"):
        dcf.evaluate_at_packed(0, s0, words[:-1], x, n_bits, 1)
