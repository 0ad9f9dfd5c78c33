"""Reading a peer's frames as its bytes arrive, without a task per connection or copies of big payloads.

After the handshake the mesh takes over the connection's incoming side. The reader is an
`asyncio.BufferedProtocol`: the transport reads the socket straight into a buffer the reader
hands out (`get_buffer`), and `buffer_updated` cuts complete frames off it and gives them to the
mesh at once, so a message wakes only the coroutine waiting for it. Headers and small payloads
land in one reusable scratch buffer and are copied out once; a big payload (its size is in its
header) gets a buffer of its own, of exactly its size, which the transport fills directly (no copy
at all), and its arrays become read-only views of it. Everything about writing and closing stays
with the stream's own protocol (`writer.drain()`, `wait_closed()`), to which those calls are passed on.
"""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from .framing import _LEN, MAX_HEADER, Arrays, Malformed, _layout

SCRATCH = 1 << 18       # bytes of the reusable buffer for headers and small payloads
DIRECT = 1 << 16        # a payload from this size up is read straight into a buffer of its own


def views(data: Any, entries: list) -> Arrays:
    """The message's arrays as views of its (read-only) payload buffer, in header order."""
    arrays: Arrays = []
    offset = 0
    for dtype, shape, nbytes in entries:
        a = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
        arrays.append(a if len(shape) == 1 else a.reshape(shape))
        offset += nbytes
    return arrays


class FrameReader(asyncio.BufferedProtocol):
    """The receiving side of one authenticated connection: frames parsed and handed to the mesh."""

    def __init__(self, mesh: Any, peer: str, inner: asyncio.BaseProtocol):
        self.mesh = mesh
        self.peer = peer
        self.inner = inner                   # the StreamReaderProtocol: writing and closing
        self.scratch = bytearray(SCRATCH)
        self.view = memoryview(self.scratch)
        self.start = 0                       # scratch[start:end] holds bytes not yet cut into frames
        self.end = 0
        self.pending: tuple[int, Any] | None = None   # a data message's (header end, layout) awaiting its payload
        self.payload: np.ndarray | None = None        # a big payload being read in place ...
        self.filled = 0                               # ... and how much of it has arrived
        self.loop = asyncio.get_running_loop()
        self.ended = self.loop.create_future()       # set once nothing more is read (bye, error, closed)

    @classmethod
    def take_over(cls, mesh: Any, peer: str, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> "FrameReader":
        """Move the connection's reading from its StreamReader (after the handshake) to a FrameReader,
        bytes already buffered there first."""
        transport = writer.transport
        me = cls(mesh, peer, transport.get_protocol())
        leftover = bytes(reader._buffer)  # noqa: SLF001 -- the handshake's reader hands over what it holds
        reader._buffer.clear()            # noqa: SLF001
        transport.set_protocol(me)
        if reader._paused:                # noqa: SLF001 -- it paused on a full buffer: we read on
            reader._paused = False        # noqa: SLF001
            transport.resume_reading()
        me.feed(leftover)
        if reader.exception() is not None:
            me._end(reader.exception())
        elif reader.at_eof():
            me._end(asyncio.IncompleteReadError(b"", None))
        return me

    def feed(self, data: bytes) -> None:
        """Take bytes that did not come through get_buffer (the handshake's leftovers, tests)."""
        data = memoryview(data)
        while data:
            room = self.get_buffer(len(data))
            n = min(len(room), len(data))
            room[:n] = data[:n]
            data = data[n:]
            self.buffer_updated(n)

    # -- what the transport calls

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the next bytes go: the rest of a big payload, else the scratch buffer's free end."""
        if self.payload is not None:
            return self.payload.data[self.filled:]
        if self.end == len(self.scratch):
            self._room(len(self.scratch) - self.start + 1)
        return self.view[self.end:]

    def buffer_updated(self, nbytes: int) -> None:
        self.mesh._seen[self.peer] = self.loop.time()  # noqa: SLF001 -- liveness: something arrived
        if self.ended.done():
            self.start = self.end = 0  # after a goodbye or an error the bytes are dropped
            return
        try:
            if self.payload is not None:
                self.filled += nbytes
                if self.filled < len(self.payload):
                    return
                self._deliver_big()
            else:
                self.end += nbytes
            while self.start < self.end and self._one_frame():
                pass
        except Malformed as exc:
            self._end(exc)

    def eof_received(self) -> bool | None:
        self._end(asyncio.IncompleteReadError(b"", None))
        return self.inner.eof_received()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc if exc is not None else asyncio.IncompleteReadError(b"", None))
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        self.inner.resume_writing()  # type: ignore[attr-defined]

    # -- frames

    def _room(self, need: int) -> None:
        """Make the scratch buffer hold `need` bytes from its unread start: move them to the
        front, or to a bigger buffer if it is too small (a long header; the old one is not resized,
        as the transport may still hold a view of it)."""
        kept = self.end - self.start
        if need > len(self.scratch):
            bigger = bytearray(need)
            bigger[:kept] = self.view[self.start:self.end]
            self.scratch, self.view = bigger, memoryview(bigger)
        elif self.start:
            self.view[:kept] = self.view[self.start:self.end]
        self.start, self.end = 0, kept

    def _one_frame(self) -> bool:
        """Cut one complete frame off the scratch buffer and hand it over; False when none is complete."""
        start, have = self.start, self.end - self.start
        if self.pending is None:
            if have < 8:
                return self._wait(8)
            (n,) = _LEN.unpack_from(self.view, start)
            if n > MAX_HEADER:
                raise Malformed(f"a header of {n} bytes")
            if have < 8 + n:
                return self._wait(8 + n)
            layout = _layout(bytes(self.view[start + 8:start + 8 + n]))
            if isinstance(layout, dict):
                self._consumed(8 + n)
                if self.mesh._frame(self.peer, layout, None, 0, 8 + n):  # noqa: SLF001
                    self._finish()
                return not self.ended.done()
            total = layout[2]
            limit = self.mesh.max_payload
            if total > limit:  # refused before a byte of it is read
                raise Malformed(f"a message of {total:,} bytes, more than the {limit:,} this program can send")
            self.pending = (8 + n, layout)
        head, (header, entries, total) = self.pending
        if total >= DIRECT and have < head + total:
            self._start_big(head, total)
            return False
        if have < head + total:
            return self._wait(head + total)
        data = bytes(self.view[start + head:start + head + total])
        self.start = start = start + head + total
        if start == self.end:
            self.start = self.end = 0
        self.pending = None
        self.mesh._frame(self.peer, header, views(data, entries), total, head + total)  # noqa: SLF001
        return True

    def _wait(self, need: int) -> bool:
        """A frame needs `need` bytes from the unread start: make room for them, read on."""
        if self.start + need > len(self.scratch):
            self._room(need)
        return False

    def _consumed(self, n: int) -> None:
        """The first n unread bytes were cut off; an emptied scratch buffer starts over at its front."""
        self.start += n
        if self.start == self.end:
            self.start = self.end = 0

    def _start_big(self, head: int, total: int) -> None:
        """Give a big payload its own buffer; what of it already arrived moves there, the rest is
        read into it by the transport."""
        self.payload = np.empty(total, dtype=np.uint8)
        begin = self.start + head
        got = self.end - begin
        self.payload.data[:got] = self.view[begin:self.end]
        self.filled = got
        self.start = self.end = 0

    def _deliver_big(self) -> None:
        """A big payload is complete: its arrays (views of its buffer) go to the mesh."""
        payload, self.payload = self.payload, None
        assert payload is not None and self.pending is not None
        head, (header, entries, total) = self.pending
        self.pending = None
        payload.flags.writeable = False  # so are its views: received arrays are read-only
        self.mesh._frame(self.peer, header, views(payload, entries), total, head + total)  # noqa: SLF001

    def _finish(self) -> None:
        """The peer said goodbye: nothing more is read."""
        if not self.ended.done():
            self.ended.set_result(None)
        self.start = self.end = 0
        self.payload = None

    def _end(self, exc: BaseException) -> None:
        """The stream broke (or ended without a goodbye): the mesh hears why, once."""
        if self.ended.done():
            return
        self._finish()
        self.mesh._read_failed(self.peer, exc)  # noqa: SLF001
