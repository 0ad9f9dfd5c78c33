"""Setting up the party mesh: listen, dial, wrap in TLS, handshake, and refuse the wrong peers.

One connection per pair of parties; of each pair, the party whose name sorts first dials, the
other listens, so parties may start in any order. The handshake swaps hellos and then verdicts:
both sides must run the same protocol version, program and session, and (with TLS) the
certificate must name the party. Each refusal says who refused whom and why, on both sides, so a
misconfigured run stops with one clear line instead of a hang. The result is a veil.runtime.mesh.Mesh.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Any

from veil.runtime.diagnostics import NetworkError, UsageErr
from veil.runtime.tls import cert_common_name

from .framing import STREAM_LIMIT, Malformed, close_writer, control_frame, failure_reason, read_control, secs
from .listener import Listener
from .mesh import Mesh

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

_HELLO_LABELS = {
    "veil": ("protocol version", "both must run the same veil version"),
    "program": ("program hash", "both must run the same compiled program"),
    "session": ("session id", "both must be started for the same session"),
}
_SAME_CA = "every party's certificate must come from the same `veil keygen` (same ca.pem)"
_HANDSHAKE_BROKEN = (asyncio.IncompleteReadError, OSError, TimeoutError, Malformed)


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


class _Stray(Exception):
    """An incoming connection that never identified itself as a party; dropped quietly."""


class _Connector:
    """The state of establishing one party's connections."""

    def __init__(
        self,
        me: str,
        peers: list[str],
        addresses: dict[str, tuple[str, int]],
        hello: dict[str, Any],
        timeout: float,
        ssl_server: ssl.SSLContext | None,
        ssl_client: ssl.SSLContext | None,
    ):
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
        self.conns: dict[str, Streams] = {}

    def remaining(self) -> float:
        """Seconds left before the connect timeout."""
        return max(0.0, self.deadline - self.loop.time())

    @property
    def tls(self) -> bool:
        return self.ssl_client is not None

    async def run(self) -> dict[str, Streams]:
        """Every connection, or the first error (after closing whatever was opened)."""
        server = await self._listen()
        tasks = [asyncio.ensure_future(self._dial(p)) for p in self.outgoing]
        tasks += [asyncio.ensure_future(self._wait_incoming(p)) for p in self.incoming]
        try:
            await self._wait_all(tasks)
            return dict(self.conns)
        except BaseException:
            await self._drop(tasks)
            raise
        finally:
            await server.aclose()
            if self.fatal.done():
                self.fatal.exception()  # mark retrieved
            else:
                self.fatal.cancel()

    async def _wait_all(self, tasks: list[asyncio.Future]) -> None:
        """Wait for every dial and accept; raise the first failure, or a fatal one from a stranger."""
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending | {self.fatal}, return_when=asyncio.FIRST_COMPLETED)
            if self.fatal.done():
                raise self.fatal.exception()  # type: ignore[misc]
            pending.discard(self.fatal)
            for t in done:
                t.result()

    async def _drop(self, tasks: list[asyncio.Future]) -> None:
        """Cancel the dials and accepts still running and close every stream opened so far."""
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, w in self.conns.values():
            close_writer(w)
        for fut in self.arrived.values():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                close_writer(fut.result()[1])

    async def _listen(self) -> Listener:
        """Start listening on my own address, with a clear error if it is taken."""
        host, port = self.addresses[self.me]
        try:
            return await Listener.open(host, port, self._on_accept)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise NetworkError(
                    f"{self.me} cannot listen on {host}:{port}: that address is already in use",
                    hint="is another veil run (or another program) using the port? choose another in the parties file",
                ) from None
            raise NetworkError(f"{self.me} cannot listen on {host}:{port}: {failure_reason(exc)}") from None

    # -- dialling

    async def _dial(self, peer: str) -> None:
        """Connect to `peer`, then handshake."""
        host, port = self.addresses[peer]
        where = f"{host}:{port}"
        reader, writer = await self._open(peer, host, port, where)
        try:
            await self._handshake(reader, writer, peer, where)
        except BaseException:
            close_writer(writer)
            raise
        self.conns[peer] = (reader, writer)

    async def _open(self, peer: str, host: str, port: int, where: str) -> Streams:
        """Streams to `peer` (TLS-wrapped if configured), retrying until the deadline while it is not up."""
        delay = 0.02
        last: BaseException | None = None
        while True:
            left = self.remaining()
            if left <= 0:
                hint = f"last attempt: {failure_reason(last)}; " if last else ""
                raise NetworkError(
                    f"{self.me} could not reach {peer} at {where} within {secs(self.timeout)} s",
                    hint=hint + f"is {peer} running, with the same parties file?",
                )
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, limit=STREAM_LIMIT, ssl=self.ssl_client,
                        server_hostname=peer if self.tls else None,
                        ssl_handshake_timeout=left if self.tls else None,
                    ),
                    left,
                )
            except ssl.SSLError as exc:
                raise self._tls_error(f"{peer} at {where}", exc) from None
            except (OSError, TimeoutError) as exc:
                last = exc
                await asyncio.sleep(min(delay, self.remaining()))
                delay = min(delay * 2, 0.25)

    # -- accepting

    async def _wait_incoming(self, peer: str) -> None:
        """Wait until `peer` has dialled in and passed the handshake."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.shield(self.arrived[peer]), self.remaining())
        except TimeoutError:
            host, port = self.addresses[self.me]
            raise NetworkError(
                f"{peer} did not connect to {self.me} at {host}:{port} within {secs(self.timeout)} s",
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
        except BaseException as exc:
            if writer is not None:
                close_writer(writer)
            if isinstance(exc, NetworkError):
                if not self.fatal.done():
                    self.fatal.set_exception(exc)  # a refused party stops this party's connecting
            elif not isinstance(exc, (_Stray, *_HANDSHAKE_BROKEN)):
                raise  # cancelled (or a bug)
        finally:
            if writer is None:
                conn.close()

    async def _wrap_accepted(self, conn: socket.socket, src: str) -> Streams:
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
        except (ssl.SSLEOFError, ConnectionError):
            raise NetworkError(
                f"the party connecting to {self.me} from {src} broke off the TLS handshake: "
                f"it most likely refused {self.me}'s certificate",
                hint=_SAME_CA,
            ) from None
        except ssl.SSLError as exc:
            raise self._tls_error(
                f"the party connecting from {src}", exc,
                hint="do all parties use [tls] with certificates from the same `veil keygen`?",
            ) from None
        return reader, asyncio.StreamWriter(transport, protocol, reader, self.loop)

    def _tls_error(self, who: str, exc: ssl.SSLError, hint: str | None = None) -> NetworkError:
        """A failed TLS handshake with `who`: a refused certificate says so, other failures say why."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            return NetworkError(f"{self.me} refused the TLS certificate of {who}: {failure_reason(exc)}", hint=_SAME_CA)
        return NetworkError(f"TLS handshake of {self.me} with {who} failed: {failure_reason(exc)}", hint=hint)

    # -- the handshake

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, expected: str | None, where: str
    ) -> str:
        """Swap hellos, check them, swap verdicts; returns the peer's name or raises NetworkError."""
        writer.write(control_frame({"t": "hello", "hello": self.hello}))
        theirs = await self._their_hello(reader, expected, where)
        peer = str(theirs.get("party"))
        problem = self._problem(theirs, expected, where, writer)
        await self._swap_verdicts(reader, writer, peer, problem, where)
        return peer

    async def _their_hello(self, reader: asyncio.StreamReader, expected: str | None, where: str) -> dict[str, Any]:
        """The peer's hello; an incoming connection (expected None) that sends none is a _Stray."""
        try:
            first = await asyncio.wait_for(read_control(reader), self.remaining())
        except _HANDSHAKE_BROKEN as exc:
            if expected is None:
                raise _Stray() from None
            raise self._early_failure(expected, where, exc) from None
        if first.get("t") == "error":
            raise NetworkError(str(first.get("msg")))
        theirs = first.get("hello")
        if first.get("t") != "hello" or not isinstance(theirs, dict):
            if expected is None:
                raise _Stray()
            raise NetworkError(f"{self.me} got no veil handshake from {expected} (is it a veil party?)")
        return theirs

    async def _swap_verdicts(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str, problem: str | None, where: str
    ) -> None:
        """Send our verdict on the peer, read its verdict on us; NetworkError unless both accept."""
        writer.write(control_frame({"t": "error", "msg": problem} if problem else {"t": "ok"}))
        try:
            answer = await asyncio.wait_for(read_control(reader), min(self.remaining(), 5.0) if problem else self.remaining())
        except _HANDSHAKE_BROKEN as exc:
            if problem:
                raise NetworkError(problem) from None
            raise self._early_failure(peer, where, exc) from None
        if problem:
            raise NetworkError(problem)
        if answer.get("t") == "error":
            raise NetworkError(str(answer.get("msg")))
        if answer.get("t") != "ok":
            raise NetworkError(f"{self.me} got an unexpected handshake reply from {peer}")

    def _early_failure(self, peer: str, where: str, exc: BaseException) -> NetworkError:
        """The error for a dialled peer that hung up or failed during the handshake."""
        if isinstance(exc, ssl.SSLError):
            return NetworkError(
                f"{peer} at {where} rejected the TLS certificate of {self.me}: {failure_reason(exc)}", hint=_SAME_CA
            )
        if isinstance(exc, TimeoutError):
            return NetworkError(f"{peer} at {where} did not complete the handshake with {self.me} within {secs(self.timeout)} s")
        if isinstance(exc, Malformed):
            return NetworkError(f"{self.me} got no veil handshake from {peer} at {where} (is it a veil party?)")
        if self.tls:
            return NetworkError(
                f"{peer} at {where} closed the connection during the TLS handshake with {self.me}: "
                f"it most likely refused {self.me}'s certificate",
                hint=_SAME_CA,
            )
        return NetworkError(f"{peer} at {where} closed the connection during the handshake with {self.me}")

    # -- the refusal checks

    def _problem(self, theirs: dict[str, Any], expected: str | None, where: str, writer: asyncio.StreamWriter) -> str | None:
        """Why we refuse this peer, or None if we accept it."""
        party = theirs.get("party")
        if not isinstance(party, str):
            return f"{self.me} refused the connection at {where}: its handshake names no party"
        return (
            self._identity_problem(party, expected, where)
            or self._certificate_problem(party, writer)
            or self._hello_mismatch(theirs, party)
        )

    def _identity_problem(self, party: str, expected: str | None, where: str) -> str | None:
        """A dialled peer that is not the party we dialled, or a caller that may not call us."""
        me = self.me
        if expected is not None:
            if party != expected:
                return f"{me} refused the party at {where}: expected {expected} there, but {party} answered (check the parties file)"
            return None
        if party not in self.peers:
            return f"{me} refused a connection from {party!r} at {where}: not a party of this program (parties: {', '.join(sorted([me, *self.peers]))})"
        if party not in self.arrived:
            return f"{me} refused {party}: {me} dials {party}, not the other way round (do both use the same party names?)"
        if self.arrived[party].done():
            return f"{me} refused a second connection from {party} (at {where})"
        return None

    def _certificate_problem(self, party: str, writer: asyncio.StreamWriter) -> str | None:
        """With TLS: a certificate issued to another name than the party's."""
        if not self.tls:
            return None
        cn = cert_common_name(writer.get_extra_info("peercert"))
        if cn == party:
            return None
        return (
            f"{self.me} refused {party}: its TLS certificate is issued to {cn!r}, not {party!r} "
            f"(each party must use its own certificate from `veil keygen`)"
        )

    def _hello_mismatch(self, theirs: dict[str, Any], party: str) -> str | None:
        """The first setting (version, program, session, ...) on which the two hellos differ."""
        me = self.me
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
