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
            r.data_received(c)
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
