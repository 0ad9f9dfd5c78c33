"""The party mesh: connecting in any order, bit-exact messages, counters, and clear failures."""
from __future__ import annotations

import asyncio
import gc
import json
import socket
import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from veil.runtime.diagnostics import NetworkError, UsageErr
from veil.runtime import framing, net
from veil.runtime import mesh as net_mesh

PARTIES = ["alice", "bob", "carol"]
HELLO = {"veil": 1, "program": "3fa2c0ffee0123456789abcdef", "session": "s-1"}


def addresses(parties=PARTIES) -> dict[str, tuple[str, int]]:
    """Every party on localhost, on ports the OS says are free."""
    return {p: ("127.0.0.1", port) for p, port in zip(parties, net.free_ports(len(parties)))}


async def start(party, parties, addrs, hello=HELLO, delay=0.0, **kw):
    """One party joining the mesh, optionally late."""
    if delay:
        await asyncio.sleep(delay)
    kw.setdefault("connect_timeout", 6.0)
    return await net.connect_mesh(party, [p for p in parties if p != party], addrs, hello, **kw)


async def mesh_all(parties=PARTIES, addrs=None, hellos=None, delays=None, **kw):
    """Every party's connect_mesh concurrently; exceptions are returned, not raised."""
    addrs = addrs or addresses(parties)
    hellos = hellos or {}
    delays = delays or {}
    jobs = [start(p, parties, addrs, hellos.get(p, HELLO), delays.get(p, 0.0), **kw) for p in parties]
    return dict(zip(parties, await asyncio.gather(*jobs, return_exceptions=True)))


async def close_all(meshes):
    await asyncio.gather(*(m.close() for m in meshes.values() if isinstance(m, net.MeshBase)))


def sample_arrays(party: str, big: bool = False) -> list[np.ndarray]:
    """Arrays of many dtypes and shapes, including empty, 0-d, non-contiguous and big-endian."""
    rng = np.random.default_rng(sum(map(ord, party)))
    arrays = [
        rng.integers(0, 2**64 - 1, size=(4, 5), dtype=np.uint64, endpoint=True),
        rng.integers(-128, 127, size=7, dtype=np.int8),
        np.array([np.nan, -0.0, np.inf, 1.5], dtype=np.float64),
        rng.random((3, 4), dtype=np.float32).T,                   # not C-contiguous
        np.zeros((0,), dtype=np.uint64),
        np.zeros((3, 0, 2), dtype=np.int32),
        np.array(7, dtype=np.uint16),                             # 0-d
        rng.integers(0, 2, size=9).astype(bool),
        np.arange(6, dtype=">i4").reshape(2, 3),                  # big-endian
    ]
    if big:
        arrays.append(rng.integers(0, 2**63, size=20_000_000 // 8, dtype=np.uint64))
    return arrays


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Bit-exact: same count, dtype, shape and bytes."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert g.shape == w.shape
        assert np.ascontiguousarray(g).tobytes() == np.ascontiguousarray(w).tobytes()


def wire_size(arrays) -> int:
    """What a data frame costs on the wire: length prefix, msgpack header, payload."""
    meta = [[np.asarray(a).dtype.str, list(np.shape(a)), np.asarray(a).nbytes] for a in arrays]
    return 8 + len(msgpack.packb(meta, use_bin_type=True)) + sum(np.asarray(a).nbytes for a in arrays)


async def all_to_all(meshes, big_from=None):
    """Every party sends its sample arrays to every other; returns what each received."""

    async def party(m):
        out = {q: sample_arrays(m.me, big=(m.me == big_from)) for q in m.peers}
        return await m.exchange(out, m.peers)

    got = await asyncio.gather(*(party(m) for m in meshes.values()))
    return dict(zip(meshes, got))


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "late, use_uvloop",
    [("alice", True), ("bob", True), ("carol", True), ("alice", False)],
)
def test_three_parties_any_start_order_bit_exact(late, use_uvloop):
    """One party starts 1.2 s after the others; everything still arrives bit-exact."""

    async def main():
        delays = {p: (1.2 if p == late else 0.05 * i) for i, p in enumerate(PARTIES)}
        meshes = await mesh_all(delays=delays)
        for m in meshes.values():
            assert isinstance(m, net.Mesh), m
        got = await all_to_all(meshes, big_from="bob" if late == "alice" else None)
        for me, received in got.items():
            assert sorted(received) == [p for p in PARTIES if p != me]
            for sender, arrays in received.items():
                assert_same(arrays, sample_arrays(sender, big=(sender == "bob" and late == "alice")))
        await close_all(meshes)

    net.run(main(), use_uvloop=use_uvloop)


def test_counters_and_message_order():
    """bytes_sent counts payload, wire bytes add the framing; messages keep their order."""

    async def main():
        meshes = await mesh_all(["alice", "bob"])
        a, b = meshes["alice"], meshes["bob"]
        msgs = [[np.arange(i + 1, dtype=np.uint64), np.zeros((2, i), np.int8)] for i in range(5)]
        for m in msgs:
            await a.send("bob", m)
        for m in msgs:
            assert_same(await b.recv("alice"), m)
        assert a.messages_sent == {"bob": 5}
        assert a.bytes_sent == {"bob": sum(x.nbytes for m in msgs for x in m)}
        assert a.wire_bytes_sent == {"bob": sum(wire_size(m) for m in msgs)}
        assert b.messages_received == {"alice": 5}
        assert b.bytes_received["alice"] == a.bytes_sent["bob"]
        assert b.wire_bytes_received["alice"] == a.wire_bytes_sent["bob"]
        assert b.messages_sent == {"alice": 0} and b.bytes_sent == {"alice": 0}
        await a.send("bob", [])                     # an empty message is still one message
        assert await b.recv("alice") == []
        assert a.messages_sent["bob"] == 6
        await close_all(meshes)

    net.run(main())


@pytest.mark.parametrize("transport", ["tcp", "in-process"])
def test_a_peer_that_runs_ahead_is_held_back(monkeypatch, transport):
    """A sender whose messages wait unread past INBOX_BYTES blocks in send (rep3's dealer runs ahead
    of the openers: without this it could queue a whole training's messages at them); the
    receiver still gets every message, in order, and the sender goes on as it reads."""
    monkeypatch.setattr(net_mesh, "INBOX_BYTES", 2 << 20)
    n, size = 120, 1 << 17  # 120 messages of 1 MB, the inbox bound 2 MB

    async def main():
        if transport == "tcp":
            meshes = await mesh_all(["alice", "bob"])
        else:
            meshes = net.make_local_meshes(["alice", "bob"])
        a, b = meshes["alice"], meshes["bob"]
        sent = 0

        async def sender():
            nonlocal sent
            for k in range(n):
                await a.send("bob", [np.full(size, k, np.uint64)])
                sent += 1

        task = asyncio.ensure_future(sender())
        await asyncio.sleep(1.0)
        held_at = sent
        queued = b._queued["alice"]  # noqa: SLF001
        for k in range(n):
            got = await b.recv("alice")
            assert got[0].size == size and int(got[0][0]) == k and int(got[0][-1]) == k
        await task
        await close_all(meshes)
        return held_at, queued

    held_at, queued = net.run(main())
    assert held_at < n // 2, held_at  # held back (TCP's socket buffers take a few MB more)
    assert queued <= (2 << 20) + (1 << 20)


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_received_arrays_are_read_only_and_sender_may_reuse_its_buffer(use_uvloop):
    """send returns once the data is with the OS: mutating the array afterwards changes nothing."""

    async def main():
        meshes = await mesh_all(["alice", "bob"])
        big = np.arange(8_000_000 // 8, dtype=np.uint64)
        want = big.copy()
        await meshes["alice"].send("bob", [big])
        big[:] = 0
        (got,) = await meshes["bob"].recv("alice")
        assert np.array_equal(got, want)
        with pytest.raises(ValueError):
            got[0] = 1
        await close_all(meshes)

    net.run(main(), use_uvloop=use_uvloop)


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_send_all_puts_every_big_message_on_its_link_before_waiting(use_uvloop):
    """A round's big messages travel at once: carol gets hers while bob is not reading his, and
    the arrays may be reused once send_all returns."""

    async def main():
        meshes = await mesh_all()
        a = meshes["alice"]
        to_bob = np.arange(40_000_000 // 8, dtype=np.uint64)
        to_carol = to_bob[::-1].copy()
        want_bob, want_carol = to_bob.copy(), to_carol.copy()
        bob_link = meshes["bob"]._transports["alice"]
        bob_link.pause_reading()  # 40 MB cannot all be with the OS until bob reads
        sending = asyncio.ensure_future(a.send_all({"bob": [to_bob], "carol": [to_carol]}))
        (got_carol,) = await asyncio.wait_for(meshes["carol"].recv("alice"), 10.0)
        assert np.array_equal(got_carol, want_carol)
        assert not sending.done()  # still waiting for bob's link
        bob_link.resume_reading()
        await asyncio.wait_for(sending, 10.0)
        to_bob[:] = 0
        (got_bob,) = await meshes["bob"].recv("alice")
        assert np.array_equal(got_bob, want_bob)
        assert a.messages_sent == {"bob": 1, "carol": 1}
        await close_all(meshes)

    net.run(main(), use_uvloop=use_uvloop)


@pytest.mark.parametrize(
    "key, label, mine, theirs",
    [
        ("program", "program hash", "3fa2c0ffee0123456789abcdef", "91c0deadbeef0123456789abcd"),
        ("session", "session id", "run-1", "run-2"),
        ("veil", "protocol version", 1, 2),
    ],
)
def test_handshake_mismatch_named_on_both_sides(key, label, mine, theirs):
    async def main():
        hellos = {"alice": dict(HELLO, **{key: mine}), "bob": dict(HELLO, **{key: theirs})}
        return await mesh_all(["alice", "bob"], hellos=hellos)

    t0 = time.monotonic()
    res = net.run(main())
    assert time.monotonic() - t0 < 3
    for me, peer in (("alice", "bob"), ("bob", "alice")):
        err = res[me]
        assert isinstance(err, NetworkError), err
        assert f"{me} refused {peer}: {label} differs" in err.message
        shown = {"alice": str(mine)[:12], "bob": str(theirs)[:12]}
        assert f"{me} has {shown[me]}" in err.message and f"{peer} has {shown[peer]}" in err.message
        assert err.exit_status == 1


def test_wrong_party_at_address_refused_on_both_sides():
    """alice's file says bob is where carol listens: alice refuses, and carol hears why."""

    async def main():
        addrs = addresses()
        alice_view = dict(addrs, bob=addrs["carol"])
        a = start("alice", ["alice", "bob"], alice_view, connect_timeout=3)
        c = start("carol", ["alice", "carol"], addrs, connect_timeout=3)
        return await asyncio.gather(a, c, return_exceptions=True)

    a, c = net.run(main())
    for err in (a, c):
        assert isinstance(err, NetworkError), err
        assert "expected bob there, but carol answered" in err.message


def test_peer_never_starts_times_out_on_both_roles():
    """The dialler and the listener each give up within the connect timeout, naming the peer."""

    async def main():
        addrs = addresses()
        t0 = time.monotonic()
        # alice dials bob (never started); carol waits for bob to dial her (never happens)
        res = await asyncio.gather(
            start("alice", ["alice", "bob"], addrs, connect_timeout=1.5),
            start("carol", ["bob", "carol"], addrs, connect_timeout=1.5),
            return_exceptions=True,
        )
        return res, time.monotonic() - t0, addrs

    (a, c), elapsed, addrs = net.run(main())
    assert 1.4 < elapsed < 3.0
    assert isinstance(a, NetworkError)
    assert a.message == f"alice could not reach bob at 127.0.0.1:{addrs['bob'][1]} within 1.5 s"
    assert isinstance(c, NetworkError)
    assert c.message == f"bob did not connect to carol at 127.0.0.1:{addrs['carol'][1]} within 1.5 s"


def test_port_in_use_is_a_clear_error():
    async def main():
        addrs = addresses(["alice", "bob"])
        blocker = socket.socket()
        blocker.bind(addrs["alice"])
        blocker.listen()
        try:
            return await start("alice", ["alice", "bob"], addrs, connect_timeout=1), addrs
        except NetworkError as exc:
            return exc, addrs
        finally:
            blocker.close()

    err, addrs = net.run(main())
    assert isinstance(err, NetworkError)
    assert err.message.startswith(f"alice cannot listen on 127.0.0.1:{addrs['alice'][1]}")
    assert "in use" in err.message


def test_stray_connection_does_not_break_the_mesh():
    """Garbage arriving on a party's port before the real peer is dropped quietly."""

    async def main():
        addrs = addresses(["alice", "bob"])
        bob = asyncio.ensure_future(start("bob", ["alice", "bob"], addrs))
        await asyncio.sleep(0.2)
        _, w = await asyncio.open_connection(*addrs["bob"])
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        await w.drain()
        w.close()
        alice = await start("alice", ["alice", "bob"], addrs)
        bob = await bob
        await alice.send("bob", [np.arange(3)])
        assert_same(await bob.recv("alice"), [np.arange(3)])
        await close_all({"a": alice, "b": bob})

    net.run(main())


def test_io_timeout_names_peer():
    async def main():
        meshes = await mesh_all(["alice", "bob"], io_timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(NetworkError) as info:
            await meshes["alice"].recv("bob")
        assert time.monotonic() - t0 < 1.5
        assert info.value.message == "alice got no message from bob within 0.3 s (io timeout)"
        await close_all(meshes)

    net.run(main())


def test_clean_close_delivers_pending_then_reports_peer_closed():
    async def main():
        meshes = await mesh_all(["alice", "bob"])
        a, b = meshes["alice"], meshes["bob"]
        await b.send("alice", [np.arange(4)])
        await b.close()
        assert_same(await a.recv("bob"), [np.arange(4)])
        with pytest.raises(NetworkError) as info:
            await a.recv("bob")
        assert info.value.message == "alice lost the connection to bob (peer closed)"
        with pytest.raises(NetworkError):
            await a.send("bob", [np.arange(2)])
        await a.close()

    net.run(main())


def test_abort_reaches_every_party_and_wakes_pending_recvs():
    async def main():
        meshes = await mesh_all()
        a, b, c = meshes["alice"], meshes["bob"], meshes["carol"]
        waits = [asyncio.ensure_future(b.recv("carol")), asyncio.ensure_future(c.recv("bob"))]
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await a.abort("input x.csv row 3 is not a number")
        res = await asyncio.gather(*waits, return_exceptions=True)
        assert time.monotonic() - t0 < 2
        for err in res:
            assert isinstance(err, NetworkError)
            assert err.message == "alice aborted: input x.csv row 3 is not a number"
        with pytest.raises(NetworkError, match="alice aborted"):
            await b.recv("alice")
        with pytest.raises(NetworkError, match="alice aborted"):
            await b.send("carol", [np.arange(1)])
        await close_all(meshes)

    net.run(main())


def test_connection_reset_mid_run_fails_fast():
    """A hard drop (RST) of one link wakes a recv waiting on a different peer too."""

    async def main():
        meshes = await mesh_all(io_timeout=30)
        a, b = meshes["alice"], meshes["bob"]
        pending = asyncio.ensure_future(a.recv("bob"))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        meshes["carol"]._writers["alice"].transport.abort()
        with pytest.raises(NetworkError) as info:
            await pending
        assert time.monotonic() - t0 < 2
        assert info.value.message.startswith("alice lost the connection to carol")
        await close_all(meshes)

    net.run(main())


_CRASHER = r"""
import asyncio, json, os, sys
import numpy as np
from veil.runtime import net
addrs = {k: tuple(v) for k, v in json.loads(sys.argv[1]).items()}
async def main():
    m = await net.connect_mesh("carol", ["alice", "bob"], addrs, json.loads(sys.argv[2]), connect_timeout=10)
    await m.send("alice", [np.arange(5, dtype=np.uint64)])
    await asyncio.sleep(0.2)
    os._exit(3)          # die without a goodbye, as a crash would
net.run(main())
"""


def test_peer_process_dies_mid_run_others_fail_fast():
    async def main():
        addrs = addresses()
        proc = subprocess.Popen([sys.executable, "-c", _CRASHER, json.dumps(addrs), json.dumps(HELLO)])
        try:
            a, b = await asyncio.gather(
                start("alice", PARTIES, addrs, connect_timeout=15, io_timeout=30),
                start("bob", PARTIES, addrs, connect_timeout=15, io_timeout=30),
            )
            assert_same(await a.recv("carol"), [np.arange(5, dtype=np.uint64)])
            t0 = time.monotonic()
            res = await asyncio.gather(a.recv("carol"), b.recv("alice"), return_exceptions=True)
            assert time.monotonic() - t0 < 3
            assert res[0].message == "alice lost the connection to carol (peer closed)"
            assert res[1].message.startswith("bob lost the connection to carol")
            await close_all({"a": a, "b": b})
        finally:
            assert proc.wait(timeout=10) == 3

    net.run(main())


# -------------------------------------------------------------------------------------------- LocalMesh


async def _scenario(meshes):
    """A little protocol run: pairwise sends, exchanges and a broadcast; returns results + stats."""
    out = {}

    async def party(m):
        got = []
        for rnd in range(3):
            kv = {q: [np.full((rnd + 1, 2), ord(m.me[0]) + rnd, dtype=np.uint64), np.zeros(0, np.int8)] for q in m.peers}
            got.append(await m.exchange(kv, m.peers))
        if m.me == "alice":
            await m.send("bob", [np.arange(3)])
        if m.me == "bob":
            got.append({"alice": await m.recv("alice")})
        res = await m.exchange({}, [])
        assert res == {}
        out[m.me] = got

    await asyncio.gather(*(party(m) for m in meshes.values()))
    return out, {p: m.stats() for p, m in meshes.items()}


def test_local_mesh_matches_tcp_mesh():
    async def main():
        local = net.make_local_meshes(PARTIES)
        lres, lstats = await _scenario(local)
        tcp = await mesh_all()
        tres, tstats = await _scenario(tcp)
        await close_all(tcp)
        return lres, lstats, tres, tstats

    lres, lstats, tres, tstats = net.run(main())
    assert lstats == tstats
    for p in PARTIES:
        assert len(lres[p]) == len(tres[p])
        for lr, tr in zip(lres[p], tres[p]):
            assert sorted(lr) == sorted(tr)
            for q in lr:
                assert_same(lr[q], tr[q])
                assert all(not x.flags.writeable for x in lr[q] + tr[q])


def test_local_mesh_failures_match_tcp_wording():
    async def main():
        m = net.make_local_meshes(PARTIES, io_timeout=0.2)
        with pytest.raises(NetworkError) as info:
            await m["alice"].recv("bob")
        assert info.value.message == "alice got no message from bob within 0.2 s (io timeout)"
        await m["bob"].send("alice", [np.arange(2)])
        await m["bob"].close()
        assert_same(await m["alice"].recv("bob"), [np.arange(2)])
        with pytest.raises(NetworkError) as info:
            await m["alice"].recv("bob")
        assert info.value.message == "alice lost the connection to bob (peer closed)"
        pending = asyncio.ensure_future(m["alice"].recv("carol"))
        await asyncio.sleep(0)
        await m["carol"].abort("out of memory")
        with pytest.raises(NetworkError) as info:
            await pending
        assert info.value.message == "carol aborted: out of memory"
        with pytest.raises(KeyError):
            await m["alice"].recv("mallory")

    net.run(main())


def test_exchange_failure_cancels_the_other_receives():
    """When one receive in a round fails, the others do not linger and steal later messages."""

    async def main():
        m = net.make_local_meshes(PARTIES, io_timeout=5)
        await m["carol"].close()
        with pytest.raises(NetworkError, match="lost the connection to carol"):
            await m["alice"].exchange({}, ["bob", "carol"])
        await m["bob"].send("alice", [np.arange(3)])
        assert_same(await m["alice"].recv("bob"), [np.arange(3)])

    net.run(main())


# -------------------------------------------------------------------------------------------- framing


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        hnp.arrays(
            dtype=st.one_of(hnp.integer_dtypes(endianness="="), hnp.floating_dtypes(endianness="="),
                            hnp.unsigned_integer_dtypes(endianness=">"), st.just(np.dtype(bool))),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        ),
        max_size=5,
    )
)
def test_frame_roundtrip(arrays):
    """Whatever arrays go in come out of the framing bit-exact, with the declared wire size."""

    async def main():
        head, bufs, payload = framing.pack_message(arrays)
        reader = asyncio.StreamReader()
        reader.feed_data(head + b"".join(bytes(b) for b in bufs))
        reader.feed_eof()
        header, got, got_payload, wire = await framing.read_frame(reader)
        assert got_payload == payload == sum(a.nbytes for a in arrays)
        assert wire == len(head) + payload == wire_size(arrays)
        return got

    assert_same(asyncio.run(main()), arrays)


def test_malformed_frames_are_rejected():
    async def read(data: bytes):
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await framing.read_frame(reader)

    def frame(header) -> bytes:
        packed = msgpack.packb(header)
        return len(packed).to_bytes(8, "little") + packed

    for bad in ([["<u8", [2], 8]], [["O", [1], 8]], [["nope", [1], 1]], [["<u8", [-1], 8]], 5):
        with pytest.raises(framing.Malformed):
            asyncio.run(read(frame(bad)))
    with pytest.raises(framing.Malformed):
        asyncio.run(read((1 << 40).to_bytes(8, "little")))
    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(read(frame([["<u8", [2], 16]]) + b"\0" * 7))
    with pytest.raises(TypeError):
        framing.pack_message([np.array([object()])])


def test_missing_address_is_usage_error():
    async def main():
        await net.connect_mesh("alice", ["bob"], {"alice": ("127.0.0.1", 1)}, HELLO)

    with pytest.raises(UsageErr, match="'bob'"):
        net.run(main())


def test_install_event_loop_policy():
    old = asyncio.get_event_loop_policy()
    try:
        used = net.install_event_loop_policy()
        if used:
            import uvloop

            assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
    finally:
        asyncio.set_event_loop_policy(old)


def test_strangers_during_set_up_are_dropped_and_told_nothing(monkeypatch):
    """Garbage, a 4 GiB header, an unknown hello, a bare connect and a silent connection reach bob
    before alice: each is dropped (logged), the unknown hello hears no program hash, the mesh forms."""
    from veil.runtime import connect

    monkeypatch.setattr(connect, "STRANGER_TIMEOUT", 0.3)
    logged: list[str] = []

    async def main():
        addrs = addresses(["alice", "bob"])
        bob = asyncio.ensure_future(start("bob", ["alice", "bob"], addrs, logger=logged.append))
        await asyncio.sleep(0.2)
        replies = []
        for payload in (b"", b"\x00" * 3 + b"garbage", (4 << 30).to_bytes(8, "little"),
                        framing.control_frame({"t": "hello", "hello": {"party": "mallory"}}), None):
            r, w = await asyncio.open_connection(*addrs["bob"])
            if payload is None:           # silent: says nothing until bob times it out
                replies.append(await asyncio.wait_for(r.read(), 3))
                continue
            w.write(payload)
            await w.drain()
            replies.append(await asyncio.wait_for(r.read(), 3))
            w.close()
        alice = await start("alice", ["alice", "bob"], addrs)
        bob = await bob
        await alice.send("bob", [np.arange(3)])
        assert_same(await bob.recv("alice"), [np.arange(3)])
        await close_all({"a": alice, "b": bob})
        return replies

    replies = net.run(main())
    assert all(HELLO["program"].encode() not in r and b"s-1" not in r for r in replies)
    assert b"not a party of this program" in replies[3]
    drops = [ln for ln in logged if "dropped a connection" in ln]
    assert len(drops) == 5, logged
    assert any("no veil hello within 0.3 s" in ln for ln in drops)
    assert any("not a veil frame" in ln for ln in drops)


def test_heartbeat_names_a_silent_peer():
    """A peer that stops sending anything (here: its heartbeat task stopped) is named within the timeout."""

    async def main():
        meshes = await mesh_all(["alice", "bob"], heartbeat_timeout=0.4)
        meshes["bob"]._beat.cancel()
        t0 = time.monotonic()
        with pytest.raises(NetworkError) as info:
            await meshes["alice"].recv("bob")
        elapsed = time.monotonic() - t0
        await close_all(meshes)
        return info.value, elapsed

    err, elapsed = net.run(main())
    assert "alice heard nothing from bob for 0.4 s (heartbeat timeout)" in err.message
    assert elapsed < 2.0


def test_heartbeats_flow_while_a_party_computes():
    """A party busy in a long local step (in a worker thread, as the VM runs large ops) still beats."""

    async def main():
        meshes = await mesh_all(["alice", "bob"], heartbeat_timeout=0.4)
        await asyncio.to_thread(time.sleep, 1.5)   # bob 'computes' for longer than the timeout
        await meshes["bob"].send("alice", [np.arange(2)])
        got = await meshes["alice"].recv("bob")
        await close_all(meshes)
        return got

    assert_same(net.run(main()), [np.arange(2)])


def test_set_up_failure_is_relayed_to_connected_peers():
    """carol runs another program: alice and bob, already connected, both name the mismatch."""

    async def main():
        hellos = {"carol": dict(HELLO, program="0000another")}
        return await mesh_all(hellos=hellos, delays={"carol": 0.5})

    res = net.run(main())
    for p in PARTIES:
        assert isinstance(res[p], NetworkError), res[p]
        assert "program hash differs" in res[p].message, res[p].message


def test_a_link_lost_while_saying_goodbye_prints_nothing():
    """The closing broadcast waits on every link's drain: one that fails (a peer gone meanwhile) is
    expected and must not surface later as asyncio's "Task exception was never retrieved"."""

    class LostWriter:
        def __init__(self, real):
            self.transport = real.transport

        def write(self, data):
            pass

        async def drain(self):
            raise ConnectionResetError("Connection lost")

    async def main():
        reported = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reported.append(ctx))
        meshes = await mesh_all(io_timeout=30)
        a = meshes["alice"]
        real = a._writers["bob"]
        a._writers["bob"] = LostWriter(real)
        await a._broadcast(b"")
        a._writers["bob"] = real
        await close_all(meshes)
        gc.collect()
        await asyncio.sleep(0)
        assert reported == []

    net.run(main())
