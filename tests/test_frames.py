"""Bounded resources: a frame announcing more than the program can send is refused before a byte
of its payload is read; control frames are small; the compiler's bound on one message covers every
message the program really sends."""
from __future__ import annotations

import asyncio

import msgpack
import numpy as np
import pytest

from veil.runtime import api, framing
from veil.runtime.session import message_limit


def _read(data: bytes, **kw):
    async def main():
        reader = asyncio.StreamReader()
        reader.feed_data(data)  # no payload follows: a refusal must not wait for it
        reader.feed_eof()
        return await framing.read_frame(reader, **kw)
    return asyncio.run(main())


def _header(entries) -> bytes:
    packed = msgpack.packb(entries)
    return len(packed).to_bytes(8, "little") + packed


def test_a_4_gib_frame_is_refused_from_its_header_alone():
    announce = _header([["<u8", [1 << 29], 1 << 32]])  # 4 GiB of uint64
    with pytest.raises(framing.Malformed, match="4,294,967,296 bytes, more than the 1,000"):
        _read(announce, max_payload=1000)
    with pytest.raises(framing.Malformed, match="more than"):
        _read(announce)  # the default bound (1 GiB) before the program's is known


def test_a_message_within_the_bound_is_read():
    head, bufs, payload = framing.pack_message([np.arange(10, dtype=np.uint64)])
    _, arrays, got, _ = _read(head + b"".join(bytes(b) for b in bufs), max_payload=80)
    assert got == payload == 80 and arrays[0].tolist() == list(range(10))


def test_control_frames_are_small():
    big = framing.control_frame({"t": "hello", "pad": "x" * (framing.MAX_CONTROL + 1)})

    async def main():
        reader = asyncio.StreamReader()
        reader.feed_data(big)
        reader.feed_eof()
        return await framing.read_control(reader)
    with pytest.raises(framing.Malformed, match="a header of"):
        asyncio.run(main())


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
def test_the_message_bound_covers_every_message_sent(protocol, monkeypatch):
    """Every program run by the suite runs under its bound; here the largest messages are checked
    directly against it: input sharing, products, comparisons and outputs."""
    src = ('party alice, bob, carol\nx = secret(input(alice, "x", shape=(300, 7)))\n'
           'y = secret(input(bob, "y", shape=(7, 20)))\nz = x @ y\nm = max(z, axis=1)\n'
           'output(where(z > 0.0, z, 0.0), "r", to=alice)\noutput(m, to=bob)\n')
    c = api.compile(src, protocol=protocol)
    bound = c.cost.max_message_bytes
    seen = []
    original = framing.pack_message

    def spy(arrays):
        head, bufs, payload = original(arrays)
        seen.append(payload)
        return head, bufs, payload
    monkeypatch.setattr("veil.runtime.mesh.pack_message", spy)
    rng = np.random.default_rng(0)
    api.run(c, {"alice": {"x": rng.normal(size=(300, 7))}, "bob": {"y": rng.normal(size=(7, 20))}},
            processes=False)
    assert seen and max(seen) <= bound < message_limit({"cost": {"max_message_bytes": bound}})
