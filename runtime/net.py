"""Networking between parties: a full mesh of TCP (optionally mutual-TLS) connections.

One connection per pair of parties; of each pair, the party whose name sorts first dials, the
other listens, so parties may start in any order. A handshake checks that both sides run the same
protocol version, program and session, and (with TLS) that the certificate names the party.

Wire format: every frame is an 8-byte little-endian length, then a msgpack header of that many
bytes. A data message's header is a list of ``[dtype str, shape, nbytes]`` and is followed by
the arrays' raw bytes; a control frame's header is a dict with a ``"t"`` key (hello, ok, error,
abort, bye). A background task per peer reads continuously, so a peer's sends never stall on
our compute, and an abort or a lost peer wakes every pending ``recv``.

Arrays returned by ``recv`` are read-only views of the received bytes (no extra copy); ``send``
returns once the data is handed to the OS, so the caller may then reuse its arrays.
"""
from __future__ import annotations

import asyncio
import errno
import math
import socket
import ssl
import struct
from typing import Any, Awaitable, Coroutine, Iterable, TypeVar

import msgpack
import numpy as np

from veil.runtime.diagnostics import NetworkError, UsageErr
from veil.runtime.tls import cert_common_name

T = TypeVar("T")

_LEN = struct.Struct("<Q")
STREAM_LIMIT = 1 << 24          # StreamReader buffer before reading pauses (messages are tens of MB)
MAX_HEADER = 1 << 24            # a header bigger than this is garbage, not a message
CLOSE_GRACE = 0.5               # seconds close() waits for peers to say goodbye too

_HELLO_LABELS = {
    "veil": ("protocol version", "both must run the same veil version"),
    "program": ("program hash", "both must run the same compiled program"),
    "session": ("session id", "both must be started for the same session"),
}

Arrays = list[np.ndarray]


# ---------------------------------------------------------------------------------------------
# event loop helpers


def _uvloop_factory():
    """uvloop's loop constructor, or None when uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def install_event_loop_policy() -> bool:
    """Make asyncio use uvloop when it is installed (faster sockets); True if it did."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """Run a coroutine on a fresh loop (uvloop if available) without touching the global policy."""
    factory = _uvloop_factory() if use_uvloop else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports the OS considers free right now (for tests and `veil local`)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _secs(t: float) -> str:
    """A timeout for messages: 60.0 -> '60', 1.5 -> '1.5'."""
    return f"{t:g}"


# ---------------------------------------------------------------------------------------------
# framing


class _Malformed(Exception):
    """Bytes on the wire that are not a veil frame."""


def _control(obj: dict[str, Any]) -> bytes:
    """One control frame: length prefix and msgpack dict."""
    packed = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(packed)) + packed


def _pack(arrays: Iterable[Any]) -> tuple[bytes, list[memoryview], int]:
    """(length prefix + header, raw buffers, payload bytes) for one data message, copying nothing
    unless an array is not C-contiguous."""
    meta: list[list[Any]] = []
    bufs: list[memoryview] = []
    payload = 0
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"cannot send an array of dtype {a.dtype}: only plain numeric arrays travel")
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        meta.append([a.dtype.str, list(a.shape), a.nbytes])
        if a.nbytes:
            bufs.append(memoryview(a.reshape(-1).view(np.uint8)))
            payload += a.nbytes
    header = msgpack.packb(meta, use_bin_type=True)
    return _LEN.pack(len(header)) + header, bufs, payload


def _entry(entry: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate one [dtype, shape, nbytes] header entry."""
    if not (isinstance(entry, list) and len(entry) == 3):
        raise _Malformed("bad array header")
    dt, shape, nbytes = entry
    try:
        dtype = np.dtype(dt)
    except TypeError:
        raise _Malformed(f"unknown dtype {dt!r}") from None
    if dtype.hasobject:
        raise _Malformed("object arrays are not accepted")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise _Malformed(f"bad shape {shape!r}")
    if not isinstance(nbytes, int) or nbytes != dtype.itemsize * math.prod(shape):
        raise _Malformed(f"size {nbytes!r} does not match dtype {dtype} and shape {shape}")
    return dtype, tuple(shape), nbytes


async def _read_frame(reader: asyncio.StreamReader) -> tuple[Any, Arrays | None, int, int]:
    """One frame: (header, arrays or None for control frames, payload bytes, wire bytes)."""
    (n,) = _LEN.unpack(await reader.readexactly(8))
    if n > MAX_HEADER:
        raise _Malformed(f"a header of {n} bytes")
    try:
        header = msgpack.unpackb(await reader.readexactly(n), raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise _Malformed(f"undecodable header ({exc})") from None
    if isinstance(header, dict):
        return header, None, 0, 8 + n
    if not isinstance(header, list):
        raise _Malformed("a header that is neither a message nor a control frame")
    arrays: Arrays = []
    payload = 0
    for entry in header:
        dtype, shape, nbytes = _entry(entry)
        data = await reader.readexactly(nbytes) if nbytes else b""
        arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape))
        payload += nbytes
    return header, arrays, payload, 8 + n + payload


async def _read_control(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame, which must be a control frame (during the handshake)."""
    header, arrays, _, _ = await _read_frame(reader)
    if arrays is not None or not isinstance(header.get("t"), str):
        raise _Malformed("a data message during the handshake")
    return header


def _reason(exc: BaseException) -> str:
    """A short human reason for a socket or TLS exception."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return "peer closed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream, ignoring a transport that is already gone."""
    try:
        writer.close()
    except (OSError, RuntimeError):
        pass


# ---------------------------------------------------------------------------------------------
# the mesh interface shared by the TCP and in-process implementations


class _MeshBase:
    """Per-peer inboxes, failure propagation, recv/exchange and the traffic counters."""

    def __init__(self, me: str, peers: list[str], io_timeout: float | None):
        self.me = me
        self.peers = list(peers)
        self.io_timeout = io_timeout
        self._inbox: dict[str, asyncio.Queue] = {p: asyncio.Queue() for p in self.peers}
        self._gone: dict[str, NetworkError] = {}
        self._failure: NetworkError | None = None
        self._closed = False
        self.bytes_sent = dict.fromkeys(self.peers, 0)          # payload bytes (sum of nbytes)
        self.wire_bytes_sent = dict.fromkeys(self.peers, 0)     # incl. length prefix and header
        self.messages_sent = dict.fromkeys(self.peers, 0)
        self.bytes_received = dict.fromkeys(self.peers, 0)
        self.wire_bytes_received = dict.fromkeys(self.peers, 0)
        self.messages_received = dict.fromkeys(self.peers, 0)

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

    def _fail(self, exc: NetworkError) -> None:
        """Record the first mesh-wide failure and wake every pending recv."""
        if self._failure is None:
            self._failure = exc
            for q in self._inbox.values():
                q.put_nowait(exc)

    def _peer_gone(self, peer: str, exc: NetworkError) -> None:
        """The peer closed cleanly: later recvs from it fail once its queued messages are read."""
        if peer not in self._gone:
            self._gone[peer] = exc
            self._inbox[peer].put_nowait(exc)

    def _deliver(self, peer: str, arrays: Arrays, payload: int, wire: int) -> None:
        """A message from `peer` arrived: count it and queue it."""
        self.bytes_received[peer] += payload
        self.wire_bytes_received[peer] += wire
        self.messages_received[peer] += 1
        self._inbox[peer].put_nowait(arrays)

    def _count_sent(self, peer: str, payload: int, wire: int) -> None:
        """Count one message sent to `peer`."""
        self.bytes_sent[peer] += payload
        self.wire_bytes_sent[peer] += wire
        self.messages_sent[peer] += 1

    @property
    def failure(self) -> NetworkError | None:
        """The error that stopped this mesh, if one did."""
        return self._failure

    # -- the public interface

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Send one message (a list of arrays) to `peer`."""
        raise NotImplementedError

    async def close(self) -> None:
        """Say goodbye to every peer and close the connections."""
        raise NotImplementedError

    async def abort(self, reason: str) -> None:
        """Tell every peer we are stopping (they raise NetworkError), then close."""
        raise NotImplementedError

    async def recv(self, peer: str) -> Arrays:
        """The next message from `peer`; NetworkError if the peer is lost, aborted or silent too long."""
        self._check_usable(peer)
        q = self._inbox[peer]
        if q.empty():
            if peer in self._gone:
                raise _fresh(self._gone[peer])
            try:
                if self.io_timeout is None:
                    item = await q.get()
                else:
                    item = await asyncio.wait_for(q.get(), self.io_timeout)
            except TimeoutError:
                raise NetworkError(
                    f"{self.me} got no message from {peer} within {_secs(self.io_timeout or 0)} s (io timeout)"
                ) from None
        else:
            item = q.get_nowait()
        if isinstance(item, NetworkError):
            raise _fresh(self._failure or item)
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
# the TCP mesh


class Mesh(_MeshBase):
    """Connections to every peer after a successful handshake."""

    def __init__(
        self,
        me: str,
        conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]],
        io_timeout: float | None,
    ):
        super().__init__(me, sorted(conns), io_timeout)
        self._writers = {p: w for p, (_, w) in conns.items()}
        # TLS streams encrypt a copy (see send); asyncio's SSL transport never resumes a writer
        # paused at a zero high-water mark, so only plain TCP gets one
        self._tls = {p: w.get_extra_info("ssl_object") is not None for p, w in self._writers.items()}
        for p, w in self._writers.items():
            if not self._tls[p]:
                # drain() then waits until everything was handed to the OS: the caller may reuse arrays
                w.transport.set_write_buffer_limits(high=0)
        self._readers = {p: asyncio.ensure_future(self._read_loop(p, r)) for p, (r, _) in conns.items()}

    async def _read_loop(self, peer: str, reader: asyncio.StreamReader) -> None:
        """Read frames from `peer` until it says bye or the connection ends."""
        try:
            while True:
                header, arrays, payload, wire = await _read_frame(reader)
                if arrays is not None:
                    if self._failure is None:
                        self._deliver(peer, arrays, payload, wire)
                    continue
                kind = header.get("t")
                if kind == "abort":
                    self._fail(NetworkError(f"{peer} aborted: {header.get('reason', '')}"))
                elif kind == "error":
                    self._fail(NetworkError(str(header.get("msg", f"{peer} reported an error"))))
                elif kind == "bye":
                    self._peer_gone(peer, NetworkError(f"{self.me} lost the connection to {peer} (peer closed)"))
                    return
                else:
                    raise _Malformed(f"unknown control frame {kind!r}")
        except _Malformed as exc:
            self._fail(NetworkError(f"{self.me} received a malformed message from {peer}: {exc}"))
        except (asyncio.IncompleteReadError, OSError) as exc:  # ssl.SSLError is an OSError
            if not self._closed:
                self._fail(NetworkError(f"{self.me} lost the connection to {peer} ({_reason(exc)})"))

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Send one message; returns when the bytes are with the OS (arrays may then be reused)."""
        self._check_usable(peer)
        if peer in self._gone:
            raise _fresh(self._gone[peer])
        head, bufs, payload = _pack(arrays)
        writer = self._writers[peer]
        try:
            if self._tls[peer]:
                writer.write(b"".join([head, *bufs]))  # a copy: the SSL layer keeps what it is given
            else:
                writer.writelines([head, *bufs])
            if self.io_timeout is None:
                await writer.drain()
            else:
                await asyncio.wait_for(writer.drain(), self.io_timeout)
        except TimeoutError:
            exc = NetworkError(f"{self.me} could not send to {peer} within {_secs(self.io_timeout or 0)} s (io timeout)")
            self._fail(exc)
            raise _fresh(exc) from None
        except (OSError, RuntimeError) as err:
            self._fail(NetworkError(f"{self.me} lost the connection to {peer} ({_reason(err)})"))
            raise _fresh(self._failure) from None  # type: ignore[arg-type]
        self._count_sent(peer, payload, len(head) + payload)

    async def _broadcast(self, frame: bytes) -> None:
        """Write a control frame to every peer still connected, ignoring dead ones."""
        for peer, w in self._writers.items():
            if peer in self._gone or w.transport.is_closing():
                continue
            try:
                w.write(frame)
            except (OSError, RuntimeError):
                pass
        drains = [w.drain() for w in self._writers.values() if not w.transport.is_closing()]
        if drains:
            await asyncio.wait([asyncio.ensure_future(d) for d in drains], timeout=CLOSE_GRACE)

    async def _shutdown(self, frame: bytes) -> None:
        """Send a last frame, give peers a moment to finish, then close everything."""
        await self._broadcast(frame)
        self._closed = True
        readers = [t for t in self._readers.values() if not t.done()]
        if readers:
            await asyncio.wait(readers, timeout=CLOSE_GRACE)
        for w in self._writers.values():
            _close_writer(w)
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
        await self._shutdown(_control({"t": "bye", "party": self.me}))

    async def abort(self, reason: str) -> None:
        """Tell every peer we are stopping, so they raise NetworkError('<me> aborted: ...'), then close."""
        if self._closed:
            return
        self._fail(NetworkError(f"{self.me} aborted: {reason}"))
        await self._shutdown(_control({"t": "abort", "party": self.me, "reason": reason}))


# ---------------------------------------------------------------------------------------------
# connecting


async def connect_mesh(
    me: str,
    peers: list[str],
    addresses: dict[str, tuple[str, int]],
    hello: dict[str, Any],
    *,
    connect_timeout: float = 60.0,
    io_timeout: float | None = 600.0,
    ssl_server: ssl.SSLContext | None = None,
    ssl_client: ssl.SSLContext | None = None,
) -> Mesh:
    """Listen on my address, dial the peers that sort after me, accept those that sort before,
    handshake with each, and return the mesh (NetworkError if any of it fails in time)."""
    peers = sorted({p for p in peers if p != me})
    for p in [me, *peers]:
        if p not in addresses:
            raise UsageErr(f"no address for party {p!r}")
    if (ssl_server is None) != (ssl_client is None):
        raise ValueError("pass both ssl_server and ssl_client, or neither")
    connector = _Connector(me, peers, addresses, dict(hello, party=me), connect_timeout, ssl_server, ssl_client)
    conns = await connector.run()
    return Mesh(me, conns, io_timeout)


class _Listener:
    """Listening sockets whose accepted connections go to a coroutine (no TLS done for us)."""

    def __init__(self, socks: list[socket.socket], on_accept):
        self.socks = socks
        self.on_accept = on_accept
        self.handlers: set[asyncio.Task] = set()
        self.tasks = [asyncio.ensure_future(self._accept_loop(s)) for s in socks]

    @classmethod
    async def open(cls, host: str, port: int, on_accept) -> "_Listener":
        """Bind every address `host` resolves to (OSError if one cannot be bound)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        socks: list[socket.socket] = []
        try:
            for family, kind, proto, _, addr in dict.fromkeys(infos):
                s = socket.socket(family, kind, proto)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(addr)
                s.listen(64)
                s.setblocking(False)
        except BaseException:
            for s in socks:
                s.close()
            raise
        return cls(socks, on_accept)

    async def _accept_loop(self, sock: socket.socket) -> None:
        """Accept forever, each connection handled in its own task."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except OSError:
                await asyncio.sleep(0.01)  # e.g. too many open files: try again shortly
                continue
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.ensure_future(self.on_accept(conn, addr))
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)

    async def aclose(self) -> None:
        """Stop accepting, drop connections still being handled, and release the ports."""
        tasks = [*self.tasks, *self.handlers]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in self.socks:
            s.close()


class _Stray(Exception):
    """An incoming connection that never identified itself as a party; dropped quietly."""


class _Connector:
    """The state of establishing one party's connections."""

    def __init__(self, me, peers, addresses, hello, timeout, ssl_server, ssl_client):
        self.loop = asyncio.get_running_loop()
        self.me = me
        self.peers = peers
        self.addresses = addresses
        self.hello = hello
        self.timeout = timeout
        self.deadline = self.loop.time() + timeout
        self.ssl_server = ssl_server
        self.ssl_client = ssl_client
        self.incoming = [p for p in peers if p < me]
        self.outgoing = [p for p in peers if p > me]
        self.arrived: dict[str, asyncio.Future] = {p: self.loop.create_future() for p in self.incoming}
        self.fatal: asyncio.Future = self.loop.create_future()
        self.conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    def remaining(self) -> float:
        """Seconds left before the connect timeout."""
        return max(0.0, self.deadline - self.loop.time())

    @property
    def tls(self) -> bool:
        return self.ssl_client is not None

    async def run(self) -> dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """Every connection, or the first error (after closing whatever was opened)."""
        server = await self._listen()
        tasks = [asyncio.ensure_future(self._dial(p)) for p in self.outgoing]
        tasks += [asyncio.ensure_future(self._wait_incoming(p)) for p in self.incoming]
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending | {self.fatal}, return_when=asyncio.FIRST_COMPLETED)
                if self.fatal.done():
                    raise self.fatal.exception()  # type: ignore[misc]
                pending.discard(self.fatal)
                for t in done:
                    t.result()
            return dict(self.conns)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, w in self.conns.values():
                _close_writer(w)
            for fut in self.arrived.values():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    _close_writer(fut.result()[1])
            raise
        finally:
            await server.aclose()
            if self.fatal.done():
                self.fatal.exception()  # mark retrieved
            else:
                self.fatal.cancel()

    async def _listen(self) -> "_Listener":
        """Start listening on my own address, with a clear error if it is taken."""
        host, port = self.addresses[self.me]
        try:
            return await _Listener.open(host, port, self._on_accept)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise NetworkError(
                    f"{self.me} cannot listen on {host}:{port}: that address is already in use",
                    hint="is another veil run (or another program) using the port? choose another in the parties file",
                ) from None
            raise NetworkError(f"{self.me} cannot listen on {host}:{port}: {_reason(exc)}") from None

    # -- dialling

    async def _dial(self, peer: str) -> None:
        """Connect to `peer`, retrying until the deadline, then handshake."""
        host, port = self.addresses[peer]
        where = f"{host}:{port}"
        delay = 0.02
        last: BaseException | None = None
        while True:
            left = self.remaining()
            if left <= 0:
                hint = f"last attempt: {_reason(last)}; " if last else ""
                raise NetworkError(
                    f"{self.me} could not reach {peer} at {where} within {_secs(self.timeout)} s",
                    hint=hint + f"is {peer} running, with the same parties file?",
                )
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, limit=STREAM_LIMIT, ssl=self.ssl_client,
                        server_hostname=peer if self.tls else None,
                        ssl_handshake_timeout=left if self.tls else None,
                    ),
                    left,
                )
                break
            except ssl.SSLCertVerificationError as exc:
                raise NetworkError(
                    f"{self.me} refused the TLS certificate of {peer} at {where}: {_reason(exc)}",
                    hint="every party's certificate must come from the same `veil keygen` (same ca.pem)",
                ) from None
            except ssl.SSLError as exc:
                raise NetworkError(f"TLS handshake of {self.me} with {peer} at {where} failed: {_reason(exc)}") from None
            except (OSError, TimeoutError) as exc:
                last = exc
                await asyncio.sleep(min(delay, self.remaining()))
                delay = min(delay * 2, 0.25)
        try:
            await self._handshake(reader, writer, peer, where)
        except BaseException:
            _close_writer(writer)
            raise
        self.conns[peer] = (reader, writer)

    # -- accepting

    async def _wait_incoming(self, peer: str) -> None:
        """Wait until `peer` has dialled in and passed the handshake."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.shield(self.arrived[peer]), self.remaining())
        except TimeoutError:
            host, port = self.addresses[self.me]
            raise NetworkError(
                f"{peer} did not connect to {self.me} at {host}:{port} within {_secs(self.timeout)} s",
                hint=f"is {peer} running, with the same parties file?",
            ) from None
        self.conns[peer] = (reader, writer)

    async def _on_accept(self, conn: socket.socket, addr: Any) -> None:
        """Handle one incoming connection: TLS, handshake, hand over to the waiting party slot."""
        src = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        writer = None
        try:
            reader, writer = await self._wrap_accepted(conn, src)
            peer = await self._handshake(reader, writer, None, src)
            fut = self.arrived[peer]
            if fut.done():
                raise NetworkError(f"{self.me} refused a second connection from {peer} (at {src})")
            fut.set_result((reader, writer))
        except NetworkError as exc:
            if writer is not None:
                _close_writer(writer)
            if not self.fatal.done():
                self.fatal.set_exception(exc)
        except (_Stray, _Malformed, asyncio.IncompleteReadError, OSError, TimeoutError):
            if writer is not None:
                _close_writer(writer)
        except asyncio.CancelledError:
            if writer is not None:
                _close_writer(writer)
            raise
        finally:
            if writer is None:
                conn.close()

    async def _wrap_accepted(self, conn: socket.socket, src: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over an accepted socket; with TLS, the handshake's failure becomes a clear error.

        (asyncio.start_server would swallow a failed server-side TLS handshake into the loop's log,
        and StreamWriter.start_tls loses a ClientHello that arrived before it was called.)"""
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        kwargs: dict[str, Any] = {}
        if self.ssl_server is not None:
            kwargs = {"ssl": self.ssl_server, "ssl_handshake_timeout": max(self.remaining(), 0.1)}
        try:
            transport, _ = await asyncio.wait_for(
                self.loop.connect_accepted_socket(lambda: protocol, conn, **kwargs), max(self.remaining(), 0.1)
            )
        except ssl.SSLCertVerificationError as exc:
            raise NetworkError(
                f"{self.me} refused the TLS certificate of the party connecting from {src}: {_reason(exc)}",
                hint="every party's certificate must come from the same `veil keygen` (same ca.pem)",
            ) from None
        except (ssl.SSLEOFError, ConnectionError):
            raise NetworkError(
                f"the party connecting to {self.me} from {src} broke off the TLS handshake: "
                f"it most likely refused {self.me}'s certificate",
                hint="every party's certificate must come from the same `veil keygen` (same ca.pem)",
            ) from None
        except ssl.SSLError as exc:
            raise NetworkError(
                f"TLS handshake of {self.me} with the party connecting from {src} failed: {_reason(exc)}",
                hint="do all parties use [tls] with certificates from the same `veil keygen`?",
            ) from None
        return reader, asyncio.StreamWriter(transport, protocol, reader, self.loop)

    # -- the handshake

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, expected: str | None, where: str
    ) -> str:
        """Swap hellos, check them, swap verdicts; returns the peer's name or raises NetworkError."""
        who = expected or f"the party connecting from {where}"
        writer.write(_control({"t": "hello", "hello": self.hello}))
        try:
            first = await asyncio.wait_for(_read_control(reader), self.remaining())
        except (asyncio.IncompleteReadError, OSError, TimeoutError, _Malformed) as exc:
            if expected is None:
                raise _Stray() from None
            raise self._early_failure(expected, where, exc) from None
        if first.get("t") == "error":
            raise NetworkError(str(first.get("msg")))
        theirs = first.get("hello")
        if first.get("t") != "hello" or not isinstance(theirs, dict):
            if expected is None:
                raise _Stray()
            raise NetworkError(f"{self.me} got no veil handshake from {who} (is it a veil party?)")
        peer = theirs.get("party")
        problem = self._problem(theirs, expected, where, writer)
        verdict = {"t": "error", "msg": problem} if problem else {"t": "ok"}
        writer.write(_control(verdict))
        try:
            answer = await asyncio.wait_for(_read_control(reader), min(self.remaining(), 5.0) if problem else self.remaining())
        except (asyncio.IncompleteReadError, OSError, TimeoutError, _Malformed) as exc:
            if problem:
                raise NetworkError(problem) from None
            raise self._early_failure(str(peer), where, exc) from None
        if problem:
            raise NetworkError(problem)
        if answer.get("t") == "error":
            raise NetworkError(str(answer.get("msg")))
        if answer.get("t") != "ok":
            raise NetworkError(f"{self.me} got an unexpected handshake reply from {peer}")
        return str(peer)

    def _early_failure(self, peer: str, where: str, exc: BaseException) -> NetworkError:
        """The error for a dialled peer that hung up or failed during the handshake."""
        if isinstance(exc, ssl.SSLError):
            return NetworkError(
                f"{peer} at {where} rejected the TLS certificate of {self.me}: {_reason(exc)}",
                hint="every party's certificate must come from the same `veil keygen` (same ca.pem)",
            )
        if isinstance(exc, TimeoutError):
            return NetworkError(f"{peer} at {where} did not complete the handshake with {self.me} within {_secs(self.timeout)} s")
        if isinstance(exc, _Malformed):
            return NetworkError(f"{self.me} got no veil handshake from {peer} at {where} (is it a veil party?)")
        if self.tls:
            return NetworkError(
                f"{peer} at {where} closed the connection during the TLS handshake with {self.me}: "
                f"it most likely refused {self.me}'s certificate",
                hint="every party's certificate must come from the same `veil keygen` (same ca.pem)",
            )
        return NetworkError(f"{peer} at {where} closed the connection during the handshake with {self.me}")

    def _problem(self, theirs: dict[str, Any], expected: str | None, where: str, writer) -> str | None:
        """Why we refuse this peer, or None if we accept it."""
        me = self.me
        party = theirs.get("party")
        if not isinstance(party, str):
            return f"{me} refused the connection at {where}: its handshake names no party"
        if expected is not None and party != expected:
            return f"{me} refused the party at {where}: expected {expected} there, but {party} answered (check the parties file)"
        if expected is None:
            if party not in self.peers:
                return f"{me} refused a connection from {party!r} at {where}: not a party of this program (parties: {', '.join(sorted([me, *self.peers]))})"
            if party not in self.arrived:
                return f"{me} refused {party}: {me} dials {party}, not the other way round (do both use the same party names?)"
            if self.arrived[party].done():
                return f"{me} refused a second connection from {party} (at {where})"
        if self.tls:
            cn = cert_common_name(writer.get_extra_info("peercert"))
            if cn != party:
                return (
                    f"{me} refused {party}: its TLS certificate is issued to {cn!r}, not {party!r} "
                    f"(each party must use its own certificate from `veil keygen`)"
                )
        for key in sorted((set(self.hello) | set(theirs)) - {"party"}):
            mine, other = self.hello.get(key), theirs.get(key)
            if mine != other:
                label, advice = _HELLO_LABELS.get(key, (repr(key), "both must be started with the same settings"))
                a, b = _show_pair(mine, other)
                return f"{me} refused {party}: {label} differs ({me} has {a}, {party} has {b}): {advice}"
        return None


def _show_pair(a: Any, b: Any) -> tuple[str, str]:
    """Two differing values, long strings shortened to just past where they differ."""
    if isinstance(a, str) and isinstance(b, str) and max(len(a), len(b)) > 16:
        common = 0
        for x, y in zip(a, b):
            if x != y:
                break
            common += 1
        n = max(12, common + 4)
        return (a[:n] + ".." if len(a) > n else a), (b[:n] + ".." if len(b) > n else b)
    return (a if isinstance(a, str) else repr(a)), (b if isinstance(b, str) else repr(b))


# ---------------------------------------------------------------------------------------------
# the in-process mesh for fast tests


class LocalMesh(_MeshBase):
    """The same interface as Mesh, for parties running as tasks in one event loop."""

    def __init__(self, me: str, peers: list[str], io_timeout: float | None = 600.0):
        super().__init__(me, peers, io_timeout)
        self._others: dict[str, LocalMesh] = {}

    async def send(self, peer: str, arrays: Arrays) -> None:
        """Copy the arrays into the peer's inbox (read-only, like the TCP mesh delivers them)."""
        self._check_usable(peer)
        if peer in self._gone:
            raise _fresh(self._gone[peer])
        arrays = list(arrays)
        head, _, payload = _pack(arrays)
        copies = []
        for a in arrays:
            c = np.array(a, copy=True, order="C")
            c.setflags(write=False)
            copies.append(c)
        other = self._others[peer]
        if not other._closed:
            other._deliver(self.me, copies, payload, len(head) + payload)
        self._count_sent(peer, payload, len(head) + payload)
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Mark closed; peers' later recvs from us fail as with a closed connection."""
        if self._closed:
            return
        self._closed = True
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
