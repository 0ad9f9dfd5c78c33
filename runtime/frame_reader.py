"""Reading a peer's frames as its bytes arrive, without a task per connection.

After the handshake the mesh takes over the connection's incoming side: the transport hands each
chunk straight to `FrameReader.data_received`, which cuts complete frames out of its buffer and
gives them to the mesh at once, so a message wakes only the coroutine waiting for it (a read-loop
task would cost an extra event-loop turn per message). Everything about writing and closing stays
with the stream's own protocol (`writer.drain()`, `wait_closed()`), to which those calls are passed on.
"""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from .framing import _LEN, MAX_HEADER, Arrays, Malformed, _layout


class FrameReader(asyncio.Protocol):
    """The receiving side of one authenticated connection: frames parsed and handed to the mesh."""

    def __init__(self, mesh: Any, peer: str, inner: asyncio.BaseProtocol):
        self.mesh = mesh
        self.peer = peer
        self.inner = inner                   # the StreamReaderProtocol: writing and closing
        self.buf = bytearray()
        self.pending: tuple[int, Any] | None = None   # a data message's (header end, layout) awaiting its payload
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
        if leftover:
            me.data_received(leftover)
        if reader.exception() is not None:
            me._end(reader.exception())
        elif reader.at_eof():
            me._end(asyncio.IncompleteReadError(b"", None))
        return me

    # -- what the transport calls

    def data_received(self, data: bytes) -> None:
        if self.ended.done():
            return
        self.buf += data
        self.mesh._seen[self.peer] = self.loop.time()  # noqa: SLF001 -- liveness: something arrived
        try:
            while self._one_frame():
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
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- frames

    def _one_frame(self) -> bool:
        """Cut one complete frame off the buffer and hand it over; False when none is complete."""
        buf = self.buf
        if self.pending is None:
            if len(buf) < 8:
                return False
            (n,) = _LEN.unpack_from(buf)
            if n > MAX_HEADER:
                raise Malformed(f"a header of {n} bytes")
            if len(buf) < 8 + n:
                return False
            layout = _layout(bytes(buf[8:8 + n]))
            if isinstance(layout, dict):
                del buf[:8 + n]
                if self.mesh._frame(self.peer, layout, None, 0, 8 + n):  # noqa: SLF001
                    self._finish()
                return not self.ended.done()
            total = layout[2]
            limit = self.mesh.max_payload
            if total > limit:  # refused before a byte of it is read
                raise Malformed(f"a message of {total:,} bytes, more than the {limit:,} this program can send")
            self.pending = (8 + n, layout)
        start, (header, entries, total) = self.pending
        if len(buf) < start + total:
            return False
        data = bytes(buf[start:start + total])
        del buf[:start + total]
        self.pending = None
        arrays: Arrays = []
        offset = 0
        for dtype, shape, nbytes in entries:
            arrays.append(np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize,
                                        offset=offset).reshape(shape))
            offset += nbytes
        self.mesh._frame(self.peer, header, arrays, total, start + total)  # noqa: SLF001
        return True

    def _finish(self) -> None:
        """The peer said goodbye: nothing more is read."""
        if not self.ended.done():
            self.ended.set_result(None)
        self.buf.clear()

    def _end(self, exc: BaseException) -> None:
        """The stream broke (or ended without a goodbye): the mesh hears why, once."""
        if self.ended.done():
            return
        self._finish()
        self.mesh._read_failed(self.peer, exc)  # noqa: SLF001
