"""The party mesh once connected: per-peer mailboxes, send/recv/exchange, failure and shutdown.

`Mesh` (veil.runtime.tcp_mesh) runs over the TCP (optionally TLS) streams that veil.runtime.connect
sets up; `LocalMesh`
gives the same interface to parties running as tasks in one event loop (tests and the Python
API). Both share `MeshBase`: one inbox per peer, the first failure wakes every pending ``recv``,
and the traffic counters the VM and the tests read.

Each TCP peer's bytes are parsed as they arrive (veil.runtime.frame_reader), so a peer's sends
never stall on our compute. Arrays returned by ``recv`` are read-only; ``send`` returns once the
data is handed to the OS or copied, so the caller may then reuse its arrays. A ``recv`` waits on one
future, not a task, under one watchdog timer per mesh (the io timeout). `shape(LinkShape)` turns on WAN emulation (veil.runtime.shaping):
each message is then delivered half an RTT after its paced transfer ends.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Iterable

import numpy as np

from veil.runtime.diagnostics import NetworkError

from .framing import DEFAULT_MAX_PAYLOAD, Arrays, pack_message, secs
from .shaping import LinkShape, ShapedLink

INBOX_BYTES = 256 << 20  # unread bytes from one peer before its sends are held back (see _throttle)


class MeshBase:
    """Per-peer inboxes, failure propagation, recv/exchange and the traffic counters."""

    def __init__(self, me: str, peers: list[str], io_timeout: float | None):
        self.me = me
        self.peers = list(peers)
        self.io_timeout = io_timeout
        self.max_payload = DEFAULT_MAX_PAYLOAD  # narrowed to the program's largest message once known
        self._inbox: dict[str, deque] = {p: deque() for p in self.peers}  # messages, then maybe an error
        self._waiter: dict[str, asyncio.Future] = {}  # the recv waiting on each empty inbox
        self._due: dict[str, float] = {}              # ... and when its io timeout ends
        self._watch: asyncio.TimerHandle | None = None  # the one timer for every wait's io timeout
        self._gone: dict[str, NetworkError] = {}
        self._failure: NetworkError | None = None
        self._closed = False
        self.bytes_sent = dict.fromkeys(self.peers, 0)          # payload bytes (sum of nbytes)
        self.wire_bytes_sent = dict.fromkeys(self.peers, 0)     # incl. length prefix and header
        self.messages_sent = dict.fromkeys(self.peers, 0)
        self.bytes_received = dict.fromkeys(self.peers, 0)
        self.wire_bytes_received = dict.fromkeys(self.peers, 0)
        self.messages_received = dict.fromkeys(self.peers, 0)
        self._links: dict[str, ShapedLink] = {}  # WAN emulation, per peer (empty: off)
        # a peer that runs ahead (rep3's dealer waits for nothing in its truncations and comparisons)
        # is held back once INBOX_BYTES of its messages wait here unread: see _throttle
        self._queued = dict.fromkeys(self.peers, 0)
        self._sizes: dict[str, deque] = {p: deque() for p in self.peers}
        self._full: set[str] = set()

    def shape(self, shape: LinkShape | None) -> None:
        """Emulate a wide-area link to every peer from now on (None: off)."""
        self._links = {} if shape is None else {p: ShapedLink(shape) for p in self.peers}

    async def _flush_links(self) -> None:
        """Deliver every shaped message still in flight (before saying goodbye)."""
        for link in self._links.values():
            await link.flush(self.io_timeout)

    async def _stop_links(self) -> None:
        """Drop shaped messages still in flight (on abort, or once everything is closed)."""
        for link in self._links.values():
            await link.stop()

    # -- bookkeeping

    def _check_peer(self, peer: str) -> None:
        """A programming error, not a user error: the peer is not part of this mesh."""
        if peer not in self._inbox:
            raise KeyError(f"{peer!r} is not a peer of {self.me} (peers: {', '.join(self.peers)})")

    def _check_usable(self, peer: str) -> None:
        """Raise the failure that stops traffic with `peer`, if any."""
        self._check_peer(peer)
        if self._failure is not None:
            raise _fresh(self._failure)
        if self._closed:
            raise NetworkError(f"{self.me} already closed its connections")

    def _check_sendable(self, peer: str) -> None:
        """Raise why nothing can be sent to `peer` (a failure, or the peer said goodbye), if so."""
        if self._failure is None and not self._closed and peer in self._inbox and peer not in self._gone:
            return  # the common case, in one test
        self._check_usable(peer)
        if peer in self._gone:
            raise _fresh(self._gone[peer])

    def _fail(self, exc: NetworkError) -> None:
        """Record the first mesh-wide failure and wake every pending recv."""
        if self._failure is None:
            self._failure = exc
            for peer in self.peers:
                self._put(peer, exc)

    def _peer_gone(self, peer: str, exc: NetworkError) -> None:
        """The peer closed cleanly: later recvs from it fail once its queued messages are read."""
        if peer not in self._gone:
            self._gone[peer] = exc
            self._put(peer, exc)

    def _deliver(self, peer: str, arrays: Arrays, payload: int, wire: int) -> None:
        """A message from `peer` arrived: count it and queue it."""
        self.bytes_received[peer] += payload
        self.wire_bytes_received[peer] += wire
        self.messages_received[peer] += 1
        self._inbox[peer].append(arrays)  # what _put does, inline: this runs once per message
        self._sizes[peer].append(payload)
        queued = self._queued[peer] = self._queued[peer] + payload
        if queued > INBOX_BYTES and peer not in self._full:
            self._full.add(peer)
            self._throttle(peer, True)
        waiter = self._waiter.pop(peer, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _throttle(self, peer: str, full: bool) -> None:
        """Stop taking `peer`'s messages while its unread ones fill INBOX_BYTES (full), or take them
        again once half of that is read; the transport holds the peer's sends back meanwhile."""

    def _put(self, peer: str, item: Arrays | NetworkError) -> None:
        """Queue a message (or the error that ends the inbox) and wake the recv waiting for it."""
        self._inbox[peer].append(item)
        waiter = self._waiter.pop(peer, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _watchdog(self) -> None:
        """The io timeout's timer fired: expire the waits past their deadline and sleep until the
        earliest remaining one (deadlines only move later, so the timer never fires too late)."""
        self._watch = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        nxt = None
        for peer, waiter in list(self._waiter.items()):
            if waiter.done():
                continue
            due = self._due[peer]
            if due <= now:
                waiter.set_exception(TimeoutError())
            elif nxt is None or due < nxt:
                nxt = due
        if nxt is not None:
            self._watch = loop.call_at(nxt, self._watchdog)

    def _count_sent(self, peer: str, payload: int, wire: int) -> None:
        """Count one message sent to `peer`."""
        self.bytes_sent[peer] += payload
        self.wire_bytes_sent[peer] += wire
        self.messages_sent[peer] += 1

    # -- the public interface

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Send one message (a list of arrays) to `peer`."""
        raise NotImplementedError

    async def send_all(self, messages: dict[str, Arrays]) -> None:
        """One message to each of several peers (a round's sends); a transport that can overlap
        them overrides this."""
        for peer, arrays in messages.items():
            await self.send(peer, arrays)

    async def close(self) -> None:
        """Say goodbye to every peer and close the connections."""
        raise NotImplementedError

    async def abort(self, reason: str) -> None:
        """Tell every peer we are stopping (they raise NetworkError), then close."""
        raise NotImplementedError

    async def recv(self, peer: str) -> Arrays:
        """The next message from `peer`; NetworkError if the peer is lost, aborted or silent too long."""
        if self._failure is not None or self._closed or peer not in self._inbox:
            self._check_usable(peer)
        box = self._inbox[peer]
        if not box:
            if peer in self._gone:
                raise _fresh(self._gone[peer])
            # wait on one future, no task (a cancelled wait leaves the inbox untouched, so no message
            # is lost); the io timeout is one watchdog timer per mesh: a wait only records its deadline
            loop = asyncio.get_running_loop()
            waiter = self._waiter[peer] = loop.create_future()
            if self.io_timeout is not None:
                self._due[peer] = due = loop.time() + self.io_timeout
                if self._watch is None:
                    self._watch = loop.call_at(due, self._watchdog)
            try:
                await waiter
            except TimeoutError:
                raise NetworkError(
                    f"{self.me} got no message from {peer} within {secs(self.io_timeout or 0)} s (io timeout)"
                ) from None
            finally:
                if self._waiter.get(peer) is waiter:
                    del self._waiter[peer]
        item = box.popleft()
        if isinstance(item, NetworkError):
            raise _fresh(self._failure or item)
        self._queued[peer] -= self._sizes[peer].popleft()
        if peer in self._full and self._queued[peer] <= INBOX_BYTES // 2:
            self._full.discard(peer)
            self._throttle(peer, False)
        if self._failure is not None:
            raise _fresh(self._failure)
        return item

    async def exchange(self, kv: dict[str, Arrays], expect: Iterable[str]) -> dict[str, Arrays]:
        """One round: send every message in kv, receive one message from each expected peer."""
        expect = list(expect)
        jobs: list[Awaitable[Any]] = [self.send(p, a) for p, a in kv.items()]
        jobs += [self.recv(p) for p in expect]
        results = await _gather_or_cancel(jobs)
        return dict(zip(expect, results[len(kv):]))

    def stats(self) -> dict[str, dict[str, int]]:
        """All traffic counters, per peer."""
        return {
            "bytes_sent": dict(self.bytes_sent),
            "wire_bytes_sent": dict(self.wire_bytes_sent),
            "messages_sent": dict(self.messages_sent),
            "bytes_received": dict(self.bytes_received),
            "wire_bytes_received": dict(self.wire_bytes_received),
            "messages_received": dict(self.messages_received),
        }


class PeerAborted(NetworkError):
    """A peer stopped the session: `origin` is the party that failed first, `reason` its words
    (relayed unchanged by the parties in between, so every party names the root cause)."""

    def __init__(self, origin: str, reason: str, via: str | None = None, early: bool = False):
        relayed = f" (relayed by {via})" if via and via != origin else ""
        what = "failed before starting" if early else "aborted"
        super().__init__(f"{origin} {what}: {reason}{relayed}")
        self.origin = origin
        self.reason = reason
        self.early = early  # it failed before it connected (its abort before start)


def _fresh(exc: NetworkError) -> NetworkError:
    """A new exception with the same message, so repeated raises do not pile up tracebacks."""
    return NetworkError(exc.message, hint=exc.hint)


async def _gather_or_cancel(jobs: list[Awaitable[Any]]) -> list[Any]:
    """Run jobs concurrently; on the first failure cancel the rest (so no recv steals a message)."""
    if not jobs:
        return []
    if len(jobs) == 1:
        return [await jobs[0]]
    tasks = [asyncio.ensure_future(j) for j in jobs]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    if pending:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]


# ---------------------------------------------------------------------------------------------
# the in-process mesh for fast tests


class LocalMesh(MeshBase):
    """The same interface as Mesh, for parties running as tasks in one event loop."""

    def __init__(self, me: str, peers: list[str], io_timeout: float | None = 600.0):
        super().__init__(me, peers, io_timeout)
        self._others: dict[str, LocalMesh] = {}
        self._room: dict[str, asyncio.Event] = {p: asyncio.Event() for p in self.peers}  # set: p may send
        for e in self._room.values():
            e.set()

    def _throttle(self, peer: str, full: bool) -> None:
        """The peer's next send waits while our inbox from it is full."""
        if full:
            self._room[peer].clear()
        else:
            self._room[peer].set()

    def _fail(self, exc: NetworkError) -> None:
        super()._fail(exc)
        for e in self._room.values():  # a sender held back must see the failure, not wait on
            e.set()

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Copy the arrays into the peer's inbox (read-only, like the TCP mesh delivers them)."""
        self._check_sendable(peer)
        arrays = list(arrays)
        head, _, payload = pack_message(arrays)
        copies = []
        for a in arrays:
            c = np.array(a, copy=True, order="C")
            c.setflags(write=False)
            copies.append(c)
        other = self._others[peer]
        room = other._room[self.me]
        if not room.is_set():
            await room.wait()
            self._check_sendable(peer)
        wire = len(head) + payload
        if self._links:
            self._links[peer].submit(wire, lambda: self._hand_over(other, copies, payload, wire))
        else:
            self._hand_over(other, copies, payload, wire)
        self._count_sent(peer, payload, wire)
        await asyncio.sleep(0)

    def _hand_over(self, other: "LocalMesh", copies: Arrays, payload: int, wire: int) -> None:
        """Put a message in the peer's inbox, unless the peer has closed."""
        if not other._closed:
            other._deliver(self.me, copies, payload, wire)

    async def close(self) -> None:
        """Mark closed; peers' later recvs from us fail as with a closed connection."""
        if self._closed:
            return
        if self._failure is None:
            await self._flush_links()
        await self._stop_links()
        self._closed = True
        for e in self._room.values():
            e.set()
        for other in self._others.values():
            other._peer_gone(self.me, NetworkError(f"{other.me} lost the connection to {self.me} (peer closed)"))

    async def abort(self, reason: str) -> None:
        """Fail every peer with '<me> aborted: <reason>', then close."""
        if self._closed:
            return
        exc = NetworkError(f"{self.me} aborted: {reason}")
        self._fail(exc)
        for other in self._others.values():
            if not other._closed:
                other._fail(NetworkError(exc.message))
        await self.close()


def make_local_meshes(parties: list[str], io_timeout: float | None = 600.0) -> dict[str, LocalMesh]:
    """One LocalMesh per party, all wired to each other."""
    meshes = {p: LocalMesh(p, [q for q in parties if q != p], io_timeout) for p in parties}
    for p, m in meshes.items():
        m._others = {q: meshes[q] for q in parties if q != p}
    return meshes
