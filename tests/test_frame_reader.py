"""The mesh's incoming side (runtime/frame_reader.py) and its small-message send path."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from veil.runtime import framing, net
from veil.runtime.frame_reader import FrameReader

from test_net import close_all, mesh_all, sample_arrays


class FakeMesh:
    """What a FrameReader calls on its mesh, recorded."""

    def __init__(self, max_payload: int = framing.DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self._seen: dict[str, float] = {}
        self.frames: list = []
        self.failures: list[BaseException] = []

    def _frame(self, peer, header, arrays, payload, wire) -> bool:
        self.frames.append((header, arrays, payload, wire))
        return isinstance(header, dict) and header.get("t") == "bye"

    def _read_failed(self, peer, exc) -> None:
        self.failures.append(exc)


class Inner(asyncio.Protocol):
    """Stands in for the stream protocol the reader passes writing and closing events to."""

    def __init__(self):
        self.events: list[str] = []

    def eof_received(self):
        self.events.append("eof")
        return True

    def connection_lost(self, exc):
        self.events.append("lost")


def feed(chunks: list[bytes], mesh: FakeMesh) -> FrameReader:
    async def main():
        r = FrameReader(mesh, "bob", Inner())
        for c in chunks:
            r.feed(c)
        return r
    return asyncio.run(main())


def split(data: bytes, rng: np.random.Generator) -> list[bytes]:
    """The bytes in random pieces (some a single byte), as TCP may deliver them."""
    cuts = sorted(set(rng.integers(0, len(data) + 1, size=max(len(data) // 3, 1)).tolist()))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@pytest.mark.parametrize("seed", range(5))
def test_frames_cut_anywhere_come_out_whole_and_in_order(seed):
    rng = np.random.default_rng(seed)
    messages = [sample_arrays(p) for p in ("alice", "bob", "carol")]
    wire = b""
    for arrays in messages:
        head, bufs, _ = framing.pack_message(arrays)
        wire += head + b"".join(bytes(b) for b in bufs)
    wire += framing.control_frame({"t": "hb"})
    mesh = FakeMesh()
    feed(split(wire, rng), mesh)
    assert not mesh.failures
    assert len(mesh.frames) == 4 and mesh.frames[3][0] == {"t": "hb"} and mesh.frames[3][1] is None
    for (header, got, payload, _), want in zip(mesh.frames, messages):
        assert payload == sum(a.nbytes for a in want)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == np.ascontiguousarray(w).tobytes()
            assert not g.flags.writeable


def test_nothing_is_read_after_goodbye_or_garbage():
    one = framing.pack_message([np.arange(3, dtype=np.uint64)])
    msg = one[0] + b"".join(bytes(b) for b in one[1])
    mesh = FakeMesh()
    r = feed([msg + framing.control_frame({"t": "bye"}) + msg], mesh)
    assert len(mesh.frames) == 2 and r.ended.done() and not mesh.failures
    mesh = FakeMesh()
    feed([(1 << 40).to_bytes(8, "little") + msg], mesh)
    assert mesh.frames == [] and isinstance(mesh.failures[0], framing.Malformed)


def test_a_message_over_the_bound_is_refused_from_its_header():
    head, bufs, _ = framing.pack_message([np.zeros(1000, dtype=np.uint64)])
    mesh = FakeMesh(max_payload=100)
    feed([head], mesh)  # the payload never comes: the header alone is refused
    assert mesh.frames == [] and "more than the 100" in str(mesh.failures[0])


def test_a_lost_connection_is_reported_once_and_passed_on():
    async def main():
        mesh, inner = FakeMesh(), Inner()
        r = FrameReader(mesh, "bob", inner)
        r.eof_received()
        r.connection_lost(None)
        return mesh, inner
    mesh, inner = asyncio.run(main())
    assert len(mesh.failures) == 1 and isinstance(mesh.failures[0], asyncio.IncompleteReadError)
    assert inner.events == ["eof", "lost"]


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_small_sends_are_copies_the_sender_may_reuse(use_uvloop):
    """A small message goes out without a wait: it must be a copy, so reusing the array is safe."""

    async def main():
        meshes = await mesh_all(["alice", "bob"])
        x = np.array([7], dtype=np.uint64)
        for k in range(50):
            x[0] = k
            await meshes["alice"].send("bob", [x])
        x[0] = 999
        got = [int((await meshes["bob"].recv("alice"))[0][0]) for _ in range(50)]
        assert got == list(range(50))
        await close_all(meshes)

    net.run(main(), use_uvloop=use_uvloop)


# -- big payloads read in place (get_buffer / buffer_updated, as a transport drives the reader)


def wire_of(frames: list) -> bytes:
    """The bytes of data messages (lists of arrays) and control frames (dicts) in a row."""
    out = b""
    for f in frames:
        if isinstance(f, dict):
            out += framing.control_frame(f)
        else:
            head, bufs, _ = framing.pack_message(f)
            out += head + b"".join(bytes(b) for b in bufs)
    return out


def drive(r: FrameReader, data: bytes, pieces: list[int]) -> None:
    """Hand `data` to the reader the way a transport does: each read fills at most the buffer the
    reader gives and at most the next piece's size; a big payload's buffer must end at the payload's end."""
    data = memoryview(data)
    k = 0
    while data:
        room = r.get_buffer(-1)
        assert len(room) > 0  # uvloop treats an empty buffer as a fatal error
        if r.payload is not None:
            assert len(room) == len(r.payload) - r.filled  # nothing past the payload goes in it
        n = min(len(room), pieces[k % len(pieces)], len(data))
        room[:n] = data[:n]
        data = data[n:]
        k += 1
        r.buffer_updated(n)


def check(frames: list, mesh: FakeMesh) -> None:
    """What the mesh got is `frames`, whole and in order, arrays read-only."""
    assert not mesh.failures
    assert len(mesh.frames) == len(frames)
    for (header, got, payload, wire), want in zip(mesh.frames, frames):
        if isinstance(want, dict):
            assert header == want and got is None
            continue
        assert payload == sum(np.asarray(a).nbytes for a in want) and wire == len(wire_of([want]))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == np.ascontiguousarray(w).tobytes()
            assert not g.flags.writeable


def sample_frames(rng: np.random.Generator) -> list:
    """Small and big messages, a header longer than the scratch buffer, control frames."""
    many = [rng.integers(0, 255, size=3, dtype=np.uint8) for _ in range(40)]  # a long header
    tiny = [[np.array([k], np.uint8)] for k in range(12)]  # more than a scratch buffer of them
    return [sample_arrays("bob"), [rng.integers(0, 2**63, size=40, dtype=np.uint64)], {"t": "hb"}, *tiny,
            [rng.integers(0, 2**63, size=25, dtype=np.uint64), np.arange(3, dtype=np.int8)], many,
            [np.zeros(0, dtype=np.uint64)], {"t": "hb"}, *tiny]


@pytest.mark.parametrize("scratch", [64, 200])
def test_big_payloads_split_at_every_boundary_arrive_intact(monkeypatch, scratch):
    """With a tiny scratch buffer and direct-read threshold, every two-piece cut of the stream, and
    byte-by-byte delivery, give the same frames (small path, direct path, a scratch buffer that
    compacts and grows)."""
    monkeypatch.setattr("veil.runtime.frame_reader.SCRATCH", scratch)
    monkeypatch.setattr("veil.runtime.frame_reader.DIRECT", 32)
    frames = sample_frames(np.random.default_rng(1))
    data = wire_of(frames)

    async def main():
        for cut in range(len(data) + 1):
            mesh = FakeMesh()
            r = FrameReader(mesh, "bob", Inner())
            drive(r, data[:cut], [len(data)])
            drive(r, data[cut:], [len(data)])
            check(frames, mesh)
        for pieces in ([1], [7, 1, 300], [64]):
            mesh = FakeMesh()
            drive(FrameReader(mesh, "bob", Inner()), data, pieces)
            check(frames, mesh)

    asyncio.run(main())


@pytest.mark.parametrize("seed", range(3))
def test_a_big_payload_is_read_into_its_own_buffer(seed):
    """At the real sizes: a multi-MB message in random reads is delivered as views of the buffer the
    transport filled (no copy), and a later message does not overwrite an earlier one."""
    rng = np.random.default_rng(seed)
    first = [rng.integers(0, 2**63, size=300_000, dtype=np.uint64), rng.random((5, 7))]
    second = [rng.integers(0, 2**63, size=200_000, dtype=np.uint64)]
    frames = [[np.arange(2, dtype=np.uint64)], first, {"t": "hb"}, second]
    data = wire_of(frames)
    pieces = rng.integers(1, 300_000, size=50).tolist()

    async def main():
        mesh = FakeMesh()
        r = FrameReader(mesh, "bob", Inner())
        buffers = []
        orig = r.get_buffer

        def get_buffer(hint):
            room = orig(hint)
            if r.payload is not None and (not buffers or buffers[-1] is not r.payload):
                buffers.append(r.payload)
            return room

        r.get_buffer = get_buffer
        drive(r, data, pieces)
        check(frames, mesh)
        assert len(buffers) == 2
        assert np.shares_memory(mesh.frames[1][1][0], buffers[0])
        assert np.shares_memory(mesh.frames[3][1][0], buffers[1])

    asyncio.run(main())


@pytest.mark.parametrize("bad, needle", [
    ([["<u8", [1000], 8]], "does not match"),
    ([["<u8", [20_000], 160_000], ["O", [1], 8]], "object arrays"),
    ([["<u8", [20_000], 160_000], "x"], "bad array header"),
])
def test_a_malformed_big_header_is_refused_and_nothing_more_is_read(bad, needle):
    import msgpack
    packed = msgpack.packb(bad, use_bin_type=True)
    data = framing._LEN.pack(len(packed)) + packed + bytes(200_000) + wire_of([{"t": "hb"}])

    async def main():
        mesh = FakeMesh()
        r = FrameReader(mesh, "bob", Inner())
        drive(r, data, [4096])
        assert mesh.frames == [] and len(mesh.failures) == 1
        assert isinstance(mesh.failures[0], framing.Malformed) and needle in str(mesh.failures[0])
        assert r.ended.done()

    asyncio.run(main())


def test_a_big_message_over_the_bound_is_refused_before_its_payload_is_read():
    head, _, _ = framing.pack_message([np.zeros((1 << 17) + 1, dtype=np.uint64)])

    async def main():
        mesh = FakeMesh(max_payload=1 << 20)
        r = FrameReader(mesh, "bob", Inner())
        drive(r, head, [len(head)])
        assert r.payload is None and "more than the 1,048,576" in str(mesh.failures[0])
        drive(r, bytes(100_000), [65536])  # what still arrives is dropped
        assert mesh.frames == [] and len(mesh.failures) == 1

    asyncio.run(main())


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_big_sends_in_a_row_survive_the_sender_reusing_its_array(use_uvloop):
    """Big messages go out without a joined copy: send returns only once the OS has the bytes, so
    overwriting the array after each send must not change what the peer gets."""

    async def main():
        meshes = await mesh_all(["alice", "bob"])
        x = np.empty(3_000_000 // 8, dtype=np.uint64)

        async def sender():
            for k in range(4):
                x[:] = k
                await meshes["alice"].send("bob", [x, np.array([k])])
            x[:] = 99

        async def receiver():
            return [await meshes["bob"].recv("alice") for _ in range(4)]

        _, got = await asyncio.gather(sender(), receiver())
        for k, (a, tag) in enumerate(got):
            assert int(tag[0]) == k and (a == k).all() and not a.flags.writeable
        await close_all(meshes)

    net.run(main(), use_uvloop=use_uvloop)


# -- the io timeout: one watchdog timer per mesh, each wait with its own deadline


def test_every_wait_gets_its_own_io_timeout_under_one_timer():
    """A wait after a satisfied one, and waits on two peers at once, each time out at their own
    deadline; a cancelled wait leaves no deadline behind that could cut a later wait short."""
    from veil.runtime.diagnostics import NetworkError
    from veil.runtime.mesh import make_local_meshes

    async def main():
        m = make_local_meshes(["alice", "bob", "carol"], io_timeout=1.0)
        loop = asyncio.get_running_loop()
        alice = m["alice"]
        # a cancelled wait, then a wait that starts later and gets its message after the first
        # wait's deadline but before its own
        first = asyncio.ensure_future(alice.recv("bob"))
        await asyncio.sleep(0.05)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0.6)
        loop.call_later(0.6, lambda: asyncio.ensure_future(m["bob"].send("alice", [np.arange(2)])))
        (got,) = await alice.recv("bob")  # its deadline is 1.0 s after it started, not the first's
        assert got.tolist() == [0, 1]
        # two peers at once, after a satisfied wait: both time out, each naming its peer
        t0 = loop.time()
        res = await asyncio.gather(alice.recv("bob"), alice.recv("carol"), return_exceptions=True)
        assert loop.time() - t0 >= 1.0 - 0.05
        assert [type(r) for r in res] == [NetworkError, NetworkError]
        assert "from bob within 1 s" in res[0].message and "from carol within 1 s" in res[1].message
        assert alice._watch is None  # nothing waits: the timer is not re-armed

    asyncio.run(main())
