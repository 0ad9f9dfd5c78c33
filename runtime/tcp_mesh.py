"""The party mesh over TCP (optionally TLS): per-peer frame readers, heartbeats, relayed aborts,
and the final all-done exchange. A small message (up to 64 KiB) is copied and written straight to
the transport with no wait; a big one, or a link whose backlog passed 1 MiB, waits for the OS.

Connections join the mesh one by one as veil.runtime.connect authenticates them (`attach`), so an
abort or a lost link during set-up is seen at once and relayed like one during the run. Every link
carries a heartbeat frame every `heartbeat_timeout / 4` seconds (at most 5 s); a peer from which
nothing at all arrived for `heartbeat_timeout` seconds (frozen, SIGSTOPped, cut off) fails the mesh
naming it. A party that was itself busy (its event loop late) forgives its peers for that tick:
their frames are waiting unread in the socket, not missing.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import numpy as np

from veil.runtime.diagnostics import NetworkError

from .framing import (Arrays, Malformed, close_writer, control_frame, failure_reason, log, message_head,
                      pack_message, secs, small_frame)
from .frame_reader import FrameReader
from .mesh import MeshBase, PeerAborted, _fresh

CLOSE_GRACE = 0.5               # seconds close() waits for peers to say goodbye too
HEARTBEAT_TIMEOUT = 30.0        # default seconds of silence after which a peer counts as lost
SMALL_MESSAGE = 1 << 16         # wire bytes up to which a message is copied and written without a wait
BACKLOG = 1 << 20               # buffered bytes on a link above which a small send waits (back-pressure)
MAX_REASON = 4000               # characters of an abort reason that travel (control frames are small)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class PeerSilent(NetworkError):
    """Nothing, not even a heartbeat, arrived from a peer for the heartbeat timeout."""


def heartbeat_interval(timeout: float) -> float:
    """How often heartbeats go out: four per timeout, at most every 5 s."""
    return max(min(timeout / 4.0, 5.0), 0.02)


class Mesh(MeshBase):
    """Authenticated connections to the peers, attached one by one during set-up."""

    def __init__(self, me: str, peers: list[str], io_timeout: float | None,
                 heartbeat_timeout: float | None = HEARTBEAT_TIMEOUT, logger: Callable[[str], None] = log):
        super().__init__(me, sorted(peers), io_timeout)
        self.heartbeat_timeout = heartbeat_timeout
        self.log = logger
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._transports: dict[str, asyncio.WriteTransport] = {}  # the writers' transports (small sends)
        self._tls: dict[str, bool] = {}
        self._readers: dict[str, asyncio.Future] = {}  # per peer: done once its frames stop being read
        self._seen: dict[str, float] = {}
        self._done_from: set[str] = set()
        self._settled = asyncio.Event()    # every peer said done, or the mesh failed
        self.failed = asyncio.Event()      # the mesh failed (the connector waits on this too)
        self._beat = asyncio.ensure_future(self._heartbeat()) if heartbeat_timeout else None

    @property
    def attached(self) -> list[str]:
        """The peers connected so far."""
        return sorted(self._writers)

    def attach(self, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Add an authenticated connection: its frames are read (and its failures seen) from now on."""
        self._check_peer(peer)
        self._writers[peer] = writer
        self._transports[peer] = writer.transport
        # TLS streams encrypt a copy (see send); asyncio's SSL transport never resumes a writer
        # paused at a zero high-water mark, so only plain TCP gets one
        self._tls[peer] = writer.get_extra_info("ssl_object") is not None
        if not self._tls[peer]:
            # drain() then waits until everything was handed to the OS: the caller may reuse arrays
            writer.transport.set_write_buffer_limits(high=0)
        self._seen[peer] = asyncio.get_running_loop().time()
        self._readers[peer] = FrameReader.take_over(self, peer, reader, writer).ended

    def _fail(self, exc: NetworkError) -> None:
        """Record the first failure, wake every waiter (recv, finish, the connector)."""
        super()._fail(exc)
        self.failed.set()
        self._settled.set()

    # -- reading

    def _frame(self, peer: str, header: Any, arrays: Arrays | None, payload: int, wire: int) -> bool:
        """One frame from `peer` (called by its FrameReader); True when the peer said goodbye."""
        if arrays is not None:
            if self._failure is None:
                self._deliver(peer, arrays, payload, wire)
            return False
        return self._control(peer, header)

    def _throttle(self, peer: str, full: bool) -> None:
        """Stop reading the peer's socket while our inbox from it is full: TCP then holds its sends
        back (its drain waits). Its heartbeats wait in the socket too, so its silence is not
        counted meanwhile."""
        transport = self._transports.get(peer)
        if transport is None or transport.is_closing():
            return
        if full:
            transport.pause_reading()
        else:
            self._seen[peer] = asyncio.get_running_loop().time()
            transport.resume_reading()

    def _read_failed(self, peer: str, exc: BaseException) -> None:
        """The peer's stream broke: a malformed frame, or the connection ended without a goodbye."""
        if isinstance(exc, Malformed):
            self._fail(NetworkError(f"{self.me} received a malformed message from {peer}: {exc}"))
        elif not self._closed:
            self._fail(NetworkError(f"{self.me} lost the connection to {peer} ({failure_reason(exc)})"))

    def _control(self, peer: str, header: dict) -> bool:
        """Act on one control frame; True when the peer said goodbye."""
        kind = header.get("t")
        if kind == "hb":
            return False
        if kind == "done":
            self._done_from.add(peer)
            if self._done_from >= set(self.peers):
                self._settled.set()
            return False
        if kind == "abort":
            origin = header.get("origin")
            self._fail(PeerAborted(origin if isinstance(origin, str) else peer, str(header.get("reason", "")), via=peer,
                                   early=header.get("early") is True))
            return False
        if kind == "error":
            self._fail(NetworkError(str(header.get("msg", f"{peer} reported an error"))))
            return False
        if kind == "bye":
            self._peer_gone(peer, NetworkError(f"{self.me} lost the connection to {peer} (peer closed)"))
            return True
        raise Malformed(f"unknown control frame {kind!r}")

    # -- liveness

    async def _heartbeat(self) -> None:
        """Send a heartbeat on every link each interval; fail the mesh on a peer silent too long."""
        assert self.heartbeat_timeout
        loop = asyncio.get_running_loop()
        interval = heartbeat_interval(self.heartbeat_timeout)
        frame = control_frame({"t": "hb"})
        last = loop.time()
        while self._failure is None and not self._closed:
            await asyncio.sleep(interval)
            now = loop.time()
            stalled, last = now - last > 2 * interval, now
            for peer, w in list(self._writers.items()):
                if peer not in self._gone and not w.transport.is_closing():
                    try:
                        w.write(frame)
                    except (OSError, RuntimeError):
                        pass
            if stalled:  # we were busy: what the peers sent is waiting unread, give the readers a turn
                for peer in self._seen:
                    self._seen[peer] = now
                continue
            self._check_silence(now)

    def _check_silence(self, now: float) -> None:
        """Fail the mesh, naming the peer, if one has been silent for the heartbeat timeout."""
        assert self.heartbeat_timeout
        for peer, seen in sorted(self._seen.items()):
            if peer in self._gone or peer in self._full or now - seen <= self.heartbeat_timeout:
                continue
            t = secs(self.heartbeat_timeout)
            self.log(f"{self.me}: nothing from {peer} for {t} s (heartbeat timeout)")
            self._fail(PeerSilent(
                f"{self.me} heard nothing from {peer} for {t} s (heartbeat timeout): "
                f"{peer} is frozen, stopped or cut off",
                hint="a slower machine or network needs a larger --heartbeat-timeout"))
            return

    # -- sending

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Send one message; returns when the bytes are with the OS or copied (arrays may then be
        reused). A small message is written straight to the transport, without a wait, unless the
        link's backlog is large (back-pressure); a big one waits until the OS has it all."""
        if self._put_out(peer, arrays):
            await self._drain(peer)

    async def send_all(self, messages: dict[str, Arrays]) -> None:
        """One message to each peer: every link gets its bytes before any wait, so big messages to
        two peers travel at once (one after the other, the second waited for the first's reader)."""
        waits = [peer for peer, arrays in messages.items() if self._put_out(peer, arrays)]
        for peer in waits:
            await self._drain(peer)

    def _put_out(self, peer: str, arrays: Arrays) -> bool:
        """Hand one message to its link without waiting; True if the caller must drain the link
        before the arrays are reused or more is sent (a big message, a closing or backlogged link)."""
        self._check_sendable(peer)
        known = message_head(arrays)
        if known is None:  # not all plain ndarrays
            arrays = [np.asarray(a) for a in arrays]
            known = message_head(arrays)
            assert known is not None
        head, payload = known
        wire = len(head) + payload
        wait = False
        if self._links:  # the link keeps a copy: the caller may reuse its arrays
            data = small_frame(head, arrays)
            self._links[peer].submit(wire, lambda: self._write_shaped(peer, data))
        elif wire <= SMALL_MESSAGE:
            transport = self._transports[peer]
            self._write_now(peer, small_frame(head, arrays))  # a copy: no wait needed
            wait = transport.is_closing() or transport.get_write_buffer_size() > BACKLOG
        else:
            _, bufs, _ = pack_message(arrays)  # views of the arrays: no copy (TCP), see _write
            self._write_nowait(peer, head, bufs)
            wait = True
        self._count_sent(peer, payload, wire)
        return wait

    async def _write_shaped(self, peer: str, data: bytes) -> None:
        """A shaped message's delivery: write it now; a failure fails the mesh (nobody awaits it)."""
        if self._failure is not None or self._closed:
            return
        try:
            await self._write(peer, data, [])
        except NetworkError:
            pass  # already recorded by _write: the next send or recv raises it

    def _write_now(self, peer: str, data: bytes) -> None:
        """Hand bytes the caller no longer owns to the transport (it sends at once or buffers them)."""
        try:
            self._transports[peer].write(data)
        except (OSError, RuntimeError) as err:
            self._lost(peer, err)

    def _lost(self, peer: str, err: BaseException) -> None:
        """A write failed: the mesh fails naming the link, and the sender gets the error."""
        self._fail(NetworkError(f"{self.me} lost the connection to {peer} ({failure_reason(err)})"))
        raise _fresh(self._failure) from None  # type: ignore[arg-type]

    async def _write(self, peer: str, head: bytes, bufs: list[memoryview]) -> None:
        """Hand one (big) message to the OS and wait until it has all of it."""
        self._write_nowait(peer, head, bufs)
        await self._drain(peer)

    def _write_nowait(self, peer: str, head: bytes, bufs: list[memoryview]) -> None:
        """Hand one message to the transport; until a drain returns, it may still read `bufs`."""
        if self._tls[peer]:
            self._write_now(peer, b"".join([head, *bufs]))  # a copy: the SSL layer keeps what it is given
            return
        try:
            self._writers[peer].writelines([head, *bufs])
        except (OSError, RuntimeError) as err:
            self._lost(peer, err)

    async def _drain(self, peer: str) -> None:
        """Wait until the link's buffer is with the OS, failing the mesh on an error or the io timeout."""
        try:
            await asyncio.wait_for(self._writers[peer].drain(), self.io_timeout)
        except TimeoutError:
            exc = NetworkError(f"{self.me} could not send to {peer} within {secs(self.io_timeout or 0)} s (io timeout)")
            self._fail(exc)
            raise _fresh(exc) from None
        except (OSError, RuntimeError) as err:
            self._lost(peer, err)

    async def finish(self) -> None:
        """The all-done exchange: tell every peer this party finished the program and wait until
        each said the same (so outputs are written by all parties or by none)."""
        for peer in self.peers:
            self._check_sendable(peer)
        await self._broadcast(control_frame({"t": "done"}))
        try:
            await asyncio.wait_for(self._settled.wait(), self.io_timeout)
        except TimeoutError:
            missing = ", ".join(sorted(set(self.peers) - self._done_from))
            self._fail(NetworkError(f"{self.me} finished, but {missing} did not within {secs(self.io_timeout or 0)} s"))
        if self._failure is not None:
            raise _fresh(self._failure)

    # -- closing

    async def _broadcast(self, frame: bytes) -> None:
        """Write a control frame to every peer still connected, ignoring dead ones."""
        for peer, w in self._writers.items():
            if peer in self._gone or w.transport.is_closing():
                continue
            try:
                w.write(frame)
            except (OSError, RuntimeError):
                pass
        drains = [asyncio.ensure_future(w.drain()) for w in self._writers.values() if not w.transport.is_closing()]
        if drains:
            done, pending = await asyncio.wait(drains, timeout=CLOSE_GRACE)
            for task in pending:
                task.cancel()
            for task in done:  # a link lost meanwhile is expected here: retrieved, not reported
                task.exception()

    async def _shutdown(self, frame: bytes) -> None:
        """Send a last frame, give peers a moment to finish, then close everything."""
        await self._broadcast(frame)
        self._closed = True
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        await self._stop_links()
        readers = [t for t in self._readers.values() if not t.done()]
        if readers:
            await asyncio.wait(readers, timeout=CLOSE_GRACE)
        for w in self._writers.values():
            close_writer(w)
        for t in self._readers.values():
            t.cancel()
        await asyncio.gather(*self._readers.values(), return_exceptions=True)
        closers = [asyncio.ensure_future(w.wait_closed()) for w in self._writers.values()]
        if closers:
            done, pending = await asyncio.wait(closers, timeout=CLOSE_GRACE)
            for t in pending:
                t.cancel()
            for t in done:
                t.exception()  # consumed: a reset while closing is no news

    async def close(self) -> None:
        """Say goodbye to every peer and close the connections."""
        if self._closed:
            return
        if self._failure is None:
            await self._flush_links()  # a shaped message still in flight must arrive before the bye
        await self._shutdown(control_frame({"t": "bye", "party": self.me}))

    async def abort(self, reason: str) -> None:
        """Tell every peer we are stopping, then close. A failure that came from another party is
        relayed with that party as its origin, so everyone names the party that failed first."""
        if self._closed:
            return
        first = self._failure
        origin, early = self.me, False
        if isinstance(first, PeerAborted):
            origin, reason, early = first.origin, first.reason, first.early
        self._fail(NetworkError(f"{self.me} aborted: {reason}"))
        frame = {"t": "abort", "party": self.me, "origin": origin, "reason": reason[:MAX_REASON], "early": early}
        await self._shutdown(control_frame(frame))
