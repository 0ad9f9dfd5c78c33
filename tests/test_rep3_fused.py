"""The fused truncation formulas (C and numpy paths) against the plain formulas, and the bulk PRG
draw against separate draws."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_driver import PARTIES, RecordingPRG, make_keys, make_prgs
from veil.cffi_kernels import aes
from veil.runtime.prg import PRG
from veil.runtime.protocols import rep3_fused as fused
from veil.runtime.protocols.base import Context

U64 = np.uint64
LOW63, TOP, OFFSET = U64((1 << 63) - 1), U64(63), U64(1 << 62)
PATHS = [False] + ([True] if fused.HAVE_C else [])


def words(rng: np.random.Generator, k: int, n: int) -> list[np.ndarray]:
    return [rng.integers(0, 2**64, n, dtype=U64, endpoint=False) for _ in range(k)]


@pytest.fixture(params=PATHS, ids=lambda c: "c" if c else "numpy")
def path(request, monkeypatch):
    monkeypatch.setattr(fused, "use_c", request.param)
    return request.param


@pytest.mark.parametrize("n", [0, 1, 3, 1000, 4097])
def test_open_mask_is_the_plain_formula(path, n):
    rng = np.random.default_rng(n)
    xa, xb, ya, yb, z, rn = words(rng, 6, n)
    prod = xa * (ya + yb) + xb * ya
    assert np.array_equal(fused.open_mask((xa, xb, ya, yb), rn), prod + rn)
    assert np.array_equal(fused.open_mask((z,), rn), z + rn)
    assert np.array_equal(z, words(np.random.default_rng(n), 5, n)[4])  # inputs left untouched


def plain_f(r63b: np.ndarray, m: int) -> np.ndarray:
    """The dealer's f by the plain formula: r63b's low 8 f_bytes(m) bits, packed into words."""
    f = np.zeros(fused.f_words(r63b.size, m), U64)
    f.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[fused.f_bytes(m)])[:r63b.size] = r63b
    return f


@pytest.mark.parametrize("m", [0, 1, 16, 17, 32, 33, 37, 62])
def test_trunc_parts_are_the_plain_formulas(path, m):
    rng = np.random.default_rng(m)
    n = 2001
    s, g, h, a, b, t = words(rng, 6, n)
    c = s + g + h + OFFSET
    c63, cl, k = c >> TOP, (c & LOW63) >> U64(m), U64(1 << (63 - m))
    sgn = U64(1) - U64(2) * c63
    want0 = cl + c63 * k - U64(1 << (62 - m)) - b + a * sgn * k - t
    assert np.array_equal(fused.trunc_p0(s, g, h, a, b, t, m), want0)
    # P1's v1 = r63b*sgn*K - rlb - q, here from the dealer's e and f for r63b = a, rlb = b
    e, f = a * k - b, plain_f(a, m)
    assert np.array_equal(fused.trunc_p1(s, g, h, e, f, t, m), a * sgn * k - b - t)
    zero = np.zeros(n, U64)  # absent operands (None) read as zeros
    assert np.array_equal(fused.trunc_p1(s, g, None, e, f, None, m), fused.trunc_p1(s, g, zero, e, f, zero, m))
    for r, extra in ((s + g, ()), (s + g + h, (h,))):  # the mask with and without the dealer's rc
        r63b, rlb = (r >> TOP) - a, ((r & LOW63) >> U64(m)) - b
        got_e, got_f = fused.trunc_deal(s, g, a, b, m, *extra)
        assert np.array_equal(got_e, r63b * k - rlb) and np.array_equal(got_f, plain_f(r63b, m))


@pytest.mark.parametrize("n", [1, 3, 5, 1001])
def test_the_packed_f_is_padded_with_zeros(path, n):
    """The words after f's last element are sent too: they must be zeros, not stale memory."""
    for m in (9, 20, 40):
        junk = [np.full(4 * n + 8, 0xA5A5A5A5A5A5A5A5, U64) for _ in range(8)]  # stale heap words
        del junk
        ra, rb, a, b = words(np.random.default_rng(n), 4, n)
        _, f = fused.trunc_deal(ra, rb, a, b, m)
        assert not f.view(np.uint8)[n * fused.f_bytes(m):].any(), m


@pytest.mark.parametrize("m", [0, 5, 16, 17, 32, 33, 62])
def test_p1_reads_only_e_and_the_low_m_bits_of_its_top_bit_part(path, m):
    """The dealer's e and f give P1 the same v1 as r63b and rlb in full, for every c, so the
    smaller message changes no output; f carries at least m bits and fewer than 64 when m <= 32."""
    n = 4099
    s, g, r63b, rlb, q = words(np.random.default_rng(100 + m), 5, n)
    k = U64(1 << (63 - m))
    sgn = U64(1) - U64(2) * ((s + g + OFFSET) >> TOP)
    e, f = r63b * k - rlb, plain_f(r63b, m)
    assert np.array_equal(fused.trunc_p1(s, g, None, e, f, q, m), r63b * sgn * k - rlb - q)
    assert 8 * fused.f_bytes(m) >= m and (fused.f_bytes(m) < 8 or m > 32)
    assert fused.f_words(n, m) == -(-n * fused.f_bytes(m) // 8)


def test_c_and_numpy_give_the_same_words(monkeypatch):
    if not fused.HAVE_C:
        pytest.skip("the C kernels are not built here")
    ops = words(np.random.default_rng(5), 8, 30_001)
    out = {}
    for c in (True, False):
        monkeypatch.setattr(fused, "use_c", c)
        e, f = fused.trunc_deal(*ops[:4], 21, ops[4])
        out[c] = [fused.open_mask(tuple(ops[:4]), ops[4]), fused.open_mask((ops[0],), ops[1]),
                  *fused.trunc_deal(*ops[:4], 21), e, f, fused.trunc_p0(*ops[:6], 13),
                  fused.trunc_p1(*ops[2:5], e, f, ops[7], 21), fused.trunc_p1(*ops[2:5], ops[5], ops[6], None, 50)]
    assert len(out[True]) == 9
    assert all(np.array_equal(a, b) for a, b in zip(out[True], out[False]))


@pytest.mark.parametrize("n", [0, 1, 5, 1000])
def test_opener_formulas_write_into_a_slice_when_asked(path, n):
    """out= puts the same words where the caller asks (a slice of the message being built), and
    leaves the rest of the buffer alone; a wrong out is refused."""
    s, g, z, a, b, t = words(np.random.default_rng(n + 3), 6, n)
    e, f = fused.trunc_deal(a, b, t, z, 16)
    for fn, args in ((fused.trunc_p0, (s, g, z, a, b, t)), (fused.trunc_p1, (s, g, z, e, f, t))):
        buf = np.full(n + 4, 7, U64)
        got = fn(*args, 16, out=buf[2:n + 2])
        assert np.array_equal(buf[2:n + 2], fn(*args, 16)) and got.base is buf
        assert (buf[:2] == 7).all() and (buf[n + 2:] == 7).all()
        with pytest.raises(ValueError, match="contiguous uint64"):
            fn(*args, 16, out=np.zeros(2 * n + 2, U64)[::2][:n + 1])


def test_operands_of_other_sizes_are_refused(path):
    a = np.zeros(4, U64)
    with pytest.raises(ValueError, match="4 elements, expected 5"):
        fused.open_mask((a,), np.zeros(5, U64))


def test_unaligned_and_strided_operands_are_handled(path):
    rng = np.random.default_rng(9)
    z, rn = words(rng, 2, 100)
    raw = np.zeros(8 * 100 + 1, np.uint8)[1:].view(U64)  # a misaligned buffer, like one off the wire
    raw[:] = z
    strided = np.repeat(rn, 2)[::2]
    assert np.array_equal(fused.open_mask((raw,), strided), z + rn)


@pytest.mark.parametrize("native", [False] + ([True] if aes.HAVE_AESNI else []))
@pytest.mark.parametrize("n", [1, 2, 7, 600, 100_001])
def test_bulk_draw_equals_separate_draws(native, n):
    keys = make_keys(PARTIES, seed=4)["alice"]
    prg = PRG(keys, native=native)
    for peer in (None, "bob"):
        got = prg.draw_many(peer, (3, 8), (1, 6, 0, 65535), n)
        assert [(row.shape, row.dtype) for row in got] == [((n,), U64)] * 4
        for row, stream in zip(got, (1, 6, 0, 65535)):
            assert np.array_equal(row, prg.draw(peer, (3, 8), stream, (n,)))


def test_bulk_draw_agrees_between_key_holders_and_audits_as_separate_draws():
    prgs = make_prgs(PARTIES, seed=6)
    a = prgs["alice"].draw_many("bob", (2, 2), (4, 5), 50)
    assert np.array_equal(a, prgs["bob"].draw_many("alice", (2, 2), (4, 5), 50))
    rec = RecordingPRG(prgs["alice"])
    ctx = Context("alice", ["alice", "bob", "carol"], rec)
    ctx.op = (2, 2)
    assert np.array_equal(ctx.rand_many("bob", (4, 5), 50), a)  # the default: one draw per stream
    assert rec.draws == [("bob", (2, 2), 4, (50,)), ("bob", (2, 2), 5, (50,))]


def test_bulk_draw_refuses_repeated_streams_and_unknown_peers():
    prg = make_prgs(PARTIES, seed=7)["alice"]
    with pytest.raises(ValueError, match="repeat"):
        prg.draw_many("bob", (1, 1), (2, 2), 10)
    with pytest.raises(ValueError, match="no randomness key"):
        prg.draw_many("mallory", (1, 1), (2,), 10)


ROWS = ((None, 1), ("bob", 6), ("bob", 0), ("carol", 0), (None, 0), ("carol", 65535), ("bob", 3))


@pytest.mark.parametrize("native", [False] + ([True] if aes.HAVE_AESNI else []))
@pytest.mark.parametrize("n", [1, 2, 7, 600, 100_001])
def test_rows_under_several_keys_equal_separate_draws(native, n):
    """draw_rows: each row is the draw of its own (key, stream), keys interleaved in any order and
    one stream number under several keys; the same words with the C table or without AES-NI."""
    prg = PRG(make_keys(PARTIES, seed=5)["alice"], native=native)
    got = prg.draw_rows((3, 8), ROWS, n)
    assert [(row.shape, row.dtype) for row in got] == [((n,), U64)] * len(ROWS)
    for row, (peer, stream) in zip(got, ROWS):
        assert np.array_equal(row, prg.draw(peer, (3, 8), stream, (n,))), (peer, stream)
    again = prg.draw_rows((3, 8), [list(r) for r in reversed(ROWS)], n)  # a list of lists: the same rows
    assert all(np.array_equal(a, b) for a, b in zip(again, got[::-1]))


def test_rows_agree_between_key_holders_and_audit_as_separate_draws():
    prgs = make_prgs(PARTIES, seed=8)
    a = prgs["alice"].draw_rows((4, 1), (("bob", 2), ("carol", 2)), 40)
    assert np.array_equal(a[0], prgs["bob"].draw("alice", (4, 1), 2, (40,)))
    assert np.array_equal(a[1], prgs["carol"].draw("alice", (4, 1), 2, (40,)))
    rec = RecordingPRG(prgs["alice"])
    ctx = Context("alice", ["alice", "bob", "carol"], rec)
    ctx.op = (4, 1)
    assert np.array_equal(ctx.rand_rows((("bob", 2), ("carol", 2)), 40), a)  # the default: a draw per row
    assert rec.draws == [("bob", (4, 1), 2, (40,)), ("carol", (4, 1), 2, (40,))]


@pytest.mark.parametrize("native", [False] + ([True] if aes.HAVE_AESNI else []))
def test_rows_match_the_reference_cipher(native):
    from test_prg import reference_draw
    keys = {"bob": bytes(range(40, 56)), "carol": bytes(range(7, 23)), None: bytes(16)}
    prg = PRG(keys, native=native)
    rows = (("carol", 9), ("bob", 9), (None, 3), ("bob", 3))
    for n in (1, 16, 17, 33, 1001):
        got = prg.draw_rows((77, 5), rows, n)
        for row, (peer, stream) in zip(got, rows):
            assert np.array_equal(row, reference_draw(keys[peer], (77, 5), stream, n)), (peer, stream, n)


def test_rows_refuse_repeats_unknown_keys_and_streams_out_of_range():
    prg = make_prgs(PARTIES, seed=7)["alice"]
    for _ in range(2):  # a refused plan is never remembered as good
        with pytest.raises(ValueError, match="repeat"):
            prg.draw_rows((1, 1), (("bob", 2), ("carol", 2), ("bob", 2)), 10)
        with pytest.raises(ValueError, match="no randomness key"):
            prg.draw_rows((1, 1), (("bob", 2), ("mallory", 2)), 10)
        with pytest.raises(ValueError, match="outside"):
            prg.draw_rows((1, 1), (("bob", 1 << 16),), 10)
    assert [row.shape for row in prg.draw_rows((1, 1), (("bob", 2),), 0)] == [(0,)]


def test_rows_of_a_large_draw_are_arrays_of_their_own():
    """Past aes.SHARED_BLOCK_BYTES every row has its own buffer (none keeps the others alive, none
    passes glibc's mmap threshold as one block of all rows would); below it they share one."""
    prg = make_prgs(PARTIES, seed=3)["alice"]
    for n, shared in ((1000, True), (999, True), (aes.SHARED_BLOCK_BYTES // 8 + 2, False),
                      (aes.SHARED_BLOCK_BYTES // 8 + 3, False)):
        rows = prg.draw_rows((2, 9), (("bob", 1), (None, 1), ("carol", 4)), n)
        bases = {id(r if r.base is None else r.base) for r in rows}  # the buffer each row lives in
        assert (len(bases) == 1) == shared, n
        for row, (peer, stream) in zip(rows, (("bob", 1), (None, 1), ("carol", 4))):
            assert np.array_equal(row, prg.draw(peer, (2, 9), stream, (n,)))


@pytest.mark.parametrize("n", [1, 2048, 5000])
def test_absent_operands_read_as_zero(path, n):
    """dealer2's truncation passes None for the terms it lacks; C reads them chunk by chunk."""
    s, g, a, b, t = words(np.random.default_rng(n), 5, n)
    zero = np.zeros(n, U64)
    assert np.array_equal(fused.trunc_p0(s, g, None, a, b, None, 9), fused.trunc_p0(s, g, zero, a, b, zero, 9))
    f = plain_f(a, 9)
    assert np.array_equal(fused.trunc_p1(s, g, None, b, f, None, 9), fused.trunc_p1(s, g, zero, b, f, zero, 9))
    assert np.array_equal(fused.trunc_p1(s, g, None, b, f, t, 9), fused.trunc_p1(s, g, zero, b, f, t, 9))


@pytest.mark.parametrize("native", [False] + ([True] if aes.HAVE_AESNI else []))
def test_bulk_draw_matches_the_reference_cipher(native):
    """Against `cryptography`'s AES-CTR, at sizes around the 8- and 16-block trips of the C paths."""
    from test_prg import reference_draw
    key = bytes(range(40, 56))
    prg = PRG({"bob": key}, native=native)
    for n in (1, 15, 16, 17, 31, 32, 33, 63, 65, 1001):
        got = prg.draw_many("bob", (77, 5), (9, 3), n)
        assert np.array_equal(got[0], reference_draw(key, (77, 5), 9, n)), n
        assert np.array_equal(got[1], reference_draw(key, (77, 5), 3, n)), n


def _awkward(a: np.ndarray, kind: str) -> np.ndarray:
    """The same words as a, in a layout the fast path must not take: strided, unaligned, 2-D,
    big-endian, or signed."""
    if kind == "strided":
        return np.repeat(a, 2)[::2]
    if kind == "unaligned":
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        raw[:] = a.view(np.uint8)
        return raw.view(U64)
    if kind == "2-d":
        return a.reshape(-1, 1)
    if kind == "big-endian":
        return a.astype(">u8")
    return a.view(np.int64)


@pytest.mark.parametrize("kind", ["strided", "unaligned", "2-d", "big-endian", "signed"])
def test_fast_operand_path_equals_the_checked_one(path, kind):
    """Flat contiguous uint64 operands skip np.require; any other layout is converted first, and
    both give the same words."""
    n = 513
    ops = words(np.random.default_rng(11), 9, n)
    odd = [_awkward(a, kind) for a in ops]
    if kind == "unaligned":
        assert not odd[0].flags.aligned
    f = plain_f(ops[6], 40)
    want = [fused.open_mask(tuple(ops[:4]), ops[4]), fused.open_mask((ops[0],), ops[1]),
            *fused.trunc_deal(*ops[:4], 7, ops[4]), fused.trunc_p0(*ops[:6], 13),
            fused.trunc_p1(*ops[2:6], f, ops[7], 40)]
    got = [fused.open_mask(tuple(odd[:4]), odd[4]), fused.open_mask((odd[0],), odd[1]),
           *fused.trunc_deal(*odd[:4], 7, odd[4]), fused.trunc_p0(*odd[:6], 13),
           fused.trunc_p1(*odd[2:6], _awkward(f, kind), odd[7], 40)]
    assert all(np.array_equal(a, b) for a, b in zip(want, got))
    a = ops[0]
    assert fused._u64(a) is a and fused._check(n, a)[0] is a  # noqa: SLF001 -- no copy, no new view
    assert fused._u64(odd[0]) is not odd[0] or kind == "2-d"  # noqa: SLF001


def test_a_wrong_size_is_refused_on_the_fast_path_too(path):
    a, b = np.zeros(4, U64), np.zeros(5, U64)
    for bad in ((a, a, b), (a, b, a), (b, a, a)):
        with pytest.raises(ValueError, match="elements, expected"):
            fused.trunc_p1(bad[0], bad[1], None, bad[2], a, None, 3)


@pytest.mark.parametrize("native", [False] + ([True] if aes.HAVE_AESNI else []))
def test_bulk_draw_remembers_checked_streams_without_changing_words(native):
    """draw_many checks a stream tuple once; later calls (a tuple, a list, numpy ints) draw the
    same words as separate draws, at the ends of the address ranges too."""
    prg = PRG(make_keys(PARTIES, seed=9)["alice"], native=native)
    for op in ((0, 0), ((1 << 32) - 1, (1 << 48) - 1), (5, 1 << 47)):
        for streams in ((65535, 0, 7), [65535, 0, 7], tuple(np.array([65535, 0, 7])), (3,)):
            got = prg.draw_many("bob", op, streams, 33)
            for row, s in zip(got, streams):
                assert np.array_equal(row, prg.draw("bob", op, int(s), (33,))), (op, streams)
    for _ in range(2):  # a refused tuple is never remembered as good
        with pytest.raises(ValueError, match="repeat"):
            prg.draw_many("bob", (1, 1), (4, 4), 3)
        with pytest.raises(ValueError, match="outside"):
            prg.draw_many("bob", (1, 1), (1, 1 << 16), 3)
    with pytest.raises(ValueError, match="outside"):
        prg.draw_many("bob", (1 << 32, 0), (1,), 3)
