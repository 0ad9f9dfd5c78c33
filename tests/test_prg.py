"""The AES-CTR PRG: consistent at both key holders, independent per (op, stream), statistically sane."""
from __future__ import annotations

import asyncio
import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kernel_driver import assert_balanced_bits, make_keys, make_prgs
from veil.runtime.diagnostics import NetworkError
from veil.runtime.prg import PRG, agree_keys, counter_block

PARTIES = ["carol", "alice", "bob", "dave"]


def test_both_holders_draw_the_same_words():
    prgs = make_prgs(PARTIES, seed=3)
    for a in PARTIES:
        for b in PARTIES:
            if a != b:
                x = prgs[a].draw(b, (7, 1), 2, (3, 5))
                y = prgs[b].draw(a, (7, 1), 2, (3, 5))
                assert x.dtype == np.uint64 and x.shape == (3, 5)
                assert np.array_equal(x, y)


def test_every_address_is_its_own_stream():
    prg = make_prgs(PARTIES, seed=3)["alice"]
    base = prg.draw("bob", (7, 1), 2, (64,))
    for peer, op, stream in [("bob", (8, 1), 2), ("bob", (7, 2), 2), ("bob", (7, 1), 3),
                             ("carol", (7, 1), 2), (None, (7, 1), 2)]:
        other = prg.draw(peer, op, stream, (64,))
        assert not np.any(other == base), (peer, op, stream)
    assert np.array_equal(prg.draw("bob", (7, 1), 2, (64,)), base)  # deterministic


def test_private_keys_differ_between_parties():
    prgs = make_prgs(PARTIES, seed=3)
    draws = [prgs[p].draw(None, (1, 0), 0, (8,)).tobytes() for p in PARTIES]
    assert len(set(draws)) == len(PARTIES)


def test_known_answer_counter_layout():
    """Word k is half of AES_key(instr | instance | stream | block) with the block counter from 0."""
    key = bytes(range(16))
    prg = PRG({"bob": key})
    op, stream = (0xDEADBEEF, 0xABCDEF012345), 0x7E57
    got = prg.draw("bob", op, stream, (6,))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    head = (op[0] << 96) | (op[1] << 48) | (stream << 32)
    blocks = b"".join(ecb.update((head | j).to_bytes(16, "big")) for j in range(3))
    assert np.array_equal(got, np.frombuffer(blocks, dtype="<u8"))
    assert counter_block(op, stream) == head.to_bytes(16, "big")


def test_shorter_draw_is_a_prefix_and_shapes_work():
    prg = make_prgs(PARTIES)["bob"]
    long = prg.draw("alice", (2, 9), 1, (101,))
    assert np.array_equal(prg.draw("alice", (2, 9), 1, (7,)), long[:7])
    assert np.array_equal(prg.draw("alice", (2, 9), 1, (4, 25)).reshape(-1), long[:100])
    scalar = prg.draw("alice", (2, 9), 1, ())
    assert scalar.shape == () and scalar == long[0]
    assert prg.draw("alice", (2, 9), 1, (0,)).shape == (0,)
    assert prg.draw("alice", (2, 9), 1, (3, 0, 2)).shape == (3, 0, 2)
    out = prg.draw("alice", (2, 9), 1, (5,))
    out += np.uint64(1)  # kernels may update draws in place
    assert np.array_equal(out, long[:5] + np.uint64(1))


@pytest.mark.parametrize("op,stream", [((1 << 32, 0), 0), ((-1, 0), 0), ((0, 1 << 48), 0),
                                       ((0, -1), 0), ((0, 0), 1 << 16), ((0, 0), -1)])
def test_field_ranges_are_validated(op, stream):
    prg = make_prgs(PARTIES)["bob"]
    with pytest.raises(ValueError):
        prg.draw("alice", op, stream, (2,))


def test_largest_fields_are_accepted():
    prg = make_prgs(PARTIES)["bob"]
    assert prg.draw("alice", ((1 << 32) - 1, (1 << 48) - 1), (1 << 16) - 1, (3,)).shape == (3,)


def test_bad_keys_and_peers_are_refused():
    with pytest.raises(ValueError):
        PRG({"bob": bytes(15)})
    prg = make_prgs(PARTIES)["bob"]
    with pytest.raises(ValueError):
        prg.draw("mallory", (0, 0), 0, (1,))
    with pytest.raises(ValueError):
        prg.draw("alice", (0, 0), 0, (1 << 34,))  # beyond the 32-bit block counter


def test_bit_balance_per_position():
    words = make_prgs(PARTIES, seed=11)["alice"].draw("carol", (5, 5), 0, (100_000,))
    assert_balanced_bits(words, sigmas=5.0)


def test_byte_histogram_chi_square():
    data = make_prgs(PARTIES, seed=12)["alice"].draw(None, (5, 6), 0, (100_000,)).view(np.uint8)
    hist = np.bincount(data, minlength=256)
    expected = data.size / 256
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    # 255 degrees of freedom: mean 255, sd sqrt(510) ~ 22.6; accept within about 6 sd.
    assert 120 < chi2 < 390, chi2


def test_balance_check_catches_a_bias():
    words = make_prgs(PARTIES, seed=11)["alice"].draw("carol", (5, 5), 0, (100_000,))
    with pytest.raises(AssertionError):
        assert_balanced_bits(words | np.uint64(1 << 40))  # bit 40 stuck at one


class FakeMesh:
    """In-process queues between parties, one per direction, like an authenticated channel."""

    def __init__(self, parties: list[str]):
        self.queues = {(a, b): asyncio.Queue() for a in parties for b in parties if a != b}

    def endpoint(self, me: str) -> "Endpoint":
        return Endpoint(self, me)


class Endpoint:
    def __init__(self, mesh: FakeMesh, me: str):
        self.mesh, self.me = mesh, me

    async def send(self, peer: str, arrays: list[np.ndarray]) -> None:
        await self.mesh.queues[(self.me, peer)].put([np.array(a, copy=True) for a in arrays])

    async def recv(self, peer: str) -> list[np.ndarray]:
        return await self.mesh.queues[(peer, self.me)].get()


def test_agree_keys_over_a_mesh():
    async def main():
        mesh = FakeMesh(PARTIES)
        prgs = await asyncio.gather(*(agree_keys(p, PARTIES, mesh.endpoint(p)) for p in PARTIES))
        return dict(zip(PARTIES, prgs)), mesh

    prgs, mesh = asyncio.run(main())
    assert all(q.empty() for q in mesh.queues.values())  # every key sent was consumed
    for a in PARTIES:
        assert prgs[a].peers == (set(PARTIES) - {a}) | {None}
        for b in PARTIES:
            if a != b:
                assert np.array_equal(prgs[a].draw(b, (1, 2), 3, (4,)), prgs[b].draw(a, (1, 2), 3, (4,)))
    pair_words = {prgs[a].draw(b, (1, 2), 3, (4,)).tobytes() for a in PARTIES for b in PARTIES if a < b}
    private = {prgs[p].draw(None, (1, 2), 3, (4,)).tobytes() for p in PARTIES}
    assert len(pair_words) == 6 and len(private) == 4 and not pair_words & private


def test_agree_keys_is_a_start_barrier():
    """No party leaves the key agreement (and starts its VM) before every peer has reached it, not
    even alice, who makes all her keys and receives none; the run's seconds then exclude the
    peers' start-up (issue 11: a 1-trip run's start skew of up to 150 ms moved the suite's units)."""
    async def main():
        mesh = FakeMesh(PARTIES)
        early = [asyncio.ensure_future(agree_keys(p, PARTIES, mesh.endpoint(p))) for p in PARTIES[:-1]]
        await asyncio.sleep(0.05)
        waiting = [not t.done() for t in early]
        late = await asyncio.wait_for(agree_keys(PARTIES[-1], PARTIES, mesh.endpoint(PARTIES[-1])), 10)
        first = await asyncio.wait_for(asyncio.gather(*early), 10)
        return waiting, [*first, late], mesh

    waiting, prgs, mesh = asyncio.run(main())
    assert waiting == [True] * (len(PARTIES) - 1)
    assert all(q.empty() for q in mesh.queues.values())
    assert all(prg.peers == (set(PARTIES) - {p}) | {None} for p, prg in zip(PARTIES, prgs))


class _ScriptedMesh:
    """A peer that says one thing: records what it is sent."""

    def __init__(self, says: list[np.ndarray]):
        self.says, self.sent = says, []

    async def send(self, peer, arrays):
        self.sent.append((peer, [np.asarray(a) for a in arrays]))

    async def recv(self, peer):
        return self.says


def test_agree_keys_ignores_me_in_peer_list_and_refuses_malformed_keys():
    bad_key = _ScriptedMesh([np.zeros(8, np.uint8)])
    with pytest.raises(NetworkError, match="malformed randomness key"):
        asyncio.run(agree_keys("bob", ["alice", "bob"], bad_key))
    assert [(p, [a.size for a in m]) for p, m in bad_key.sent] == [("alice", [0])]  # bob's ready message only
    with pytest.raises(NetworkError, match="malformed ready message"):
        asyncio.run(agree_keys("alice", ["bob"], _ScriptedMesh([np.zeros(16, np.uint8)])))


def test_make_keys_is_consistent():
    keys = make_keys(PARTIES, seed=1)
    assert keys["alice"]["bob"] == keys["bob"]["alice"]
    assert keys["alice"][None] != keys["bob"][None]


from veil.cffi_kernels import aes as aes_kernel  # noqa: E402
from veil.runtime import prg as prg_module  # noqa: E402

PATHS = [False] + ([True] if aes_kernel.HAVE_AESNI else [])
# Word counts on both sides of every threshold: one AES block, the ECB scratch, the zero cache.
SIZES = [0, 1, 2, 3, 31, 32, 33, 511, 512, 513, 1000, 4097, 100_001]


def reference_draw(key: bytes, op: tuple[int, int], stream: int, n: int) -> np.ndarray:
    """The obvious implementation: a fresh AES-CTR cipher per draw over n words of zeros."""
    head = ((op[0] << 96) | (op[1] << 48) | (stream << 32)).to_bytes(16, "big")
    enc = Cipher(algorithms.AES(key), modes.CTR(head)).encryptor()
    return np.frombuffer(enc.update(bytes(8 * n + (8 * n) % 16)), dtype="<u8")[:n].astype(np.uint64)


@pytest.mark.parametrize("native", PATHS)
def test_draws_match_the_reference_on_every_path(native):
    key = bytes(range(7, 23))
    prg = PRG({"bob": key}, native=native)
    g = np.random.default_rng(5)
    for n in SIZES:
        for op, stream in [((0, 0), 0), (((1 << 32) - 1, (1 << 48) - 1), (1 << 16) - 1),
                           ((int(g.integers(1 << 32)), int(g.integers(1 << 48))), int(g.integers(1 << 16)))]:
            got = prg.draw("bob", op, stream, (n,))
            assert np.array_equal(got, reference_draw(key, op, stream, n)), (native, n, op, stream)


def test_native_and_fallback_agree_across_parties():
    """A party with AES-NI and one without must still draw the same pairwise words."""
    if not aes_kernel.HAVE_AESNI:
        pytest.skip("AES-NI kernel not available")
    keys = make_keys(PARTIES, seed=9)
    fast = PRG(keys["alice"], native=True)
    slow = PRG(keys["bob"], native=False)
    for n in SIZES:
        assert np.array_equal(fast.draw("bob", (4, n), 1, (n,)), slow.draw("alice", (4, n), 1, (n,)))


@pytest.mark.parametrize("native", PATHS)
def test_neighbouring_addresses_never_share_a_block(native):
    """Distinct (op, stream) addresses use disjoint counter ranges, so (AES being a permutation) no
    16-byte keystream block may appear twice across them, even for draws of 2^16 blocks."""
    prg = PRG({"bob": bytes(16)}, native=native)
    addresses = [((9, 1), 0), ((9, 1), 1), ((9, 2), 0), ((10, 1), 0), ((9, 0), (1 << 16) - 1),
                 ((8, (1 << 48) - 1), (1 << 16) - 1)]
    blocks = [prg.draw("bob", op, stream, (1 << 17,)).view("V16") for op, stream in addresses]
    everything = np.concatenate(blocks)
    assert np.unique(everything).size == everything.size


@pytest.mark.parametrize("native", PATHS)
def test_earlier_draws_survive_later_ones(native):
    """Scratch buffers are reused between draws: a result must never alias them."""
    prg = PRG({"bob": bytes(16)}, native=native)
    first = prg.draw("bob", (1, 1), 0, (64,))
    kept = first.copy()
    first_big = prg.draw("bob", (1, 2), 0, (5000,))
    first_big += np.uint64(3)  # kernels update draws in place
    for i in range(3):
        prg.draw("bob", (2, i), 0, (64,))
        prg.draw("bob", (3, i), 0, (5000,))
    assert np.array_equal(first, kept)
    assert np.array_equal(prg.draw("bob", (1, 2), 0, (5000,)) + np.uint64(3), first_big)


def test_native_flag_is_checked(monkeypatch):
    monkeypatch.setattr(prg_module._aes, "HAVE_AESNI", False)
    with pytest.raises(ValueError):
        PRG({"bob": bytes(16)}, native=True)
    assert np.array_equal(PRG({"bob": bytes(16)}).draw("bob", (1, 1), 0, (9,)), reference_draw(bytes(16), (1, 1), 0, 9))


def test_large_draws_beyond_the_zero_cache(monkeypatch):
    monkeypatch.setattr(prg_module, "ZEROS_CACHE_BYTES", 1 << 12)
    prg = PRG({"bob": bytes(16)}, native=False)
    assert np.array_equal(prg.draw("bob", (1, 1), 0, (3000,)), reference_draw(bytes(16), (1, 1), 0, 3000))
    assert prg._zeros.size <= 1 << 12


@pytest.mark.skipif(not aes_kernel.HAVE_AESNI, reason="AES-NI kernel not available")
def test_the_path_without_vaes_draws_the_same_words():
    """The C kernel picks VAES at run time where the CPU has it; VEIL_NO_VAES=1 forces the plain
    AES-NI loop, which must give the reference's words too (other machines run it)."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np, sys; from veil.runtime.prg import PRG; "
            "p = PRG({'bob': bytes(range(7, 23))}, native=True); "
            "sys.stdout.write(np.concatenate([p.draw('bob', (3, 9), 5, (n,)) for n in (1, 33, 4097, 100001)]).tobytes().hex())")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VEIL_NO_VAES": "1"},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    want = np.concatenate([reference_draw(bytes(range(7, 23)), (3, 9), 5, n) for n in (1, 33, 4097, 100001)])
    assert np.array_equal(np.frombuffer(bytes.fromhex(out), dtype=np.uint64), want)
