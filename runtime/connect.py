"""Setting up the party mesh: listen, dial, wrap in TLS, authenticate, handshake, refuse strangers.

One connection per pair of parties; of each pair, the party whose name sorts first dials, the
other listens, so parties may start in any order. The handshake, in order:

1. (TLS) the dialler checks that the listener's certificate names the party it dialled;
2. the dialler sends its hello (party, version, program hash, session);
3. the listener authenticates it: the hello must name a party that dials this one and (TLS) the
   certificate must name that same party. Anything else — a failed TLS handshake, garbage, a
   4 GiB header, an unknown party, a silent or bare connection — is a *stranger*: logged and
   dropped, and told nothing about this party. Only then does the listener send its own hello with
   its verdict on the dialler's, and the dialler answers with its verdict.

A refusal between authenticated parties (another program, session or version) stops both, each
saying who refused whom and why. Each authenticated connection joins the mesh at once
(veil.runtime.tcp_mesh), so a failure during set-up — ours or a peer's — is relayed to every peer
already connected: nobody waits for the connect timeout to learn that another party stopped.
A party that fails before it could connect (here: its port is taken) sends each peer an
authenticated "abort before start" (veil.runtime.announce), which the peer's listener accepts
from a party of this program — with TLS, only over that party's certificate.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Any, Callable

from veil.runtime.diagnostics import NetworkError, UsageErr
from veil.runtime.tls import cert_common_name

from .announce import EARLY_ABORT, announce_failure
from .framing import (DEFAULT_MAX_PAYLOAD, STREAM_LIMIT, Malformed, close_writer, control_frame, failure_reason,
                      log, read_control, secs)
from .handshake import SAME_CA, early_failure, hello_mismatch, tls_error
from .listener import Listener
from .mesh import PeerAborted
from .tcp_mesh import HEARTBEAT_TIMEOUT, Mesh

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

STRANGER_TIMEOUT = 10.0   # seconds an incoming connection has to complete TLS and say hello
WAIT_LOG_EVERY = 5.0      # seconds between "waiting for ..." lines while peers are missing
LINGER = 3.0              # after failing to connect: seconds to go on connecting, so late peers hear why
_BROKEN = (asyncio.IncompleteReadError, OSError, TimeoutError, Malformed)


async def connect_mesh(
    me: str,
    peers: list[str],
    addresses: dict[str, tuple[str, int]],
    hello: dict[str, Any],
    *,
    connect_timeout: float = 60.0,
    io_timeout: float | None = 600.0,
    heartbeat_timeout: float | None = HEARTBEAT_TIMEOUT,
    ssl_server: ssl.SSLContext | None = None,
    ssl_client: ssl.SSLContext | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    mesh: Mesh | None = None,
    logger: Callable[[str], None] = log,
) -> Mesh:
    """Listen on my address, dial the peers that sort after me, accept those that sort before,
    handshake with each, and return the mesh. On a failure every peer already connected is told
    (so it stops too) and NetworkError names the party that failed first. `mesh`: a Mesh made
    beforehand (so a signal handler can abort it while connecting)."""
    peers = sorted({p for p in peers if p != me})
    for p in [me, *peers]:
        if p not in addresses:
            raise UsageErr(f"no address for party {p!r}")
    if (ssl_server is None) != (ssl_client is None):
        raise ValueError("pass both ssl_server and ssl_client, or neither")
    if mesh is None:
        mesh = Mesh(me, peers, io_timeout, heartbeat_timeout, logger)
    mesh.max_payload = max_payload
    connector = _Connector(me, peers, addresses, dict(hello, party=me), connect_timeout, ssl_server, ssl_client,
                           mesh, logger)
    try:
        await connector.run()
    except ListenError as err:   # we never listened: the peers hear it from an abort before start
        await connector.close()
        await announce_failure(me, peers, addresses, err.message, ssl_client, logger=logger)
        await mesh.abort(err.message)
        raise
    except NetworkError as err:
        first = mesh._failure
        if isinstance(first, PeerAborted) and first.early:
            connector.no_wait.add(first.origin)   # it is not coming: no lingering for it
        await connector.linger(LINGER)
        await connector.report_relays()
        await connector.close()
        await mesh.abort(err.message)
        if isinstance(first, PeerAborted):
            raise NetworkError(first.message, hint=first.hint) from None
        raise
    except BaseException:
        await connector.close()
        await mesh.abort(f"{me} stopped while connecting")
        raise
    await connector.close()
    logger(f"{me}: connected to {', '.join(peers)} " + ("over mutual TLS" if ssl_client else "in plaintext"))
    return mesh


class _Stranger(Exception):
    """An incoming connection that did not authenticate as a party of this session."""


class ListenError(NetworkError):
    """This party cannot listen on its own address (so it never connects)."""


class _EarlyAbort(Exception):
    """An authenticated party's word that it failed before starting."""

    def __init__(self, party: str, reason: str):
        super().__init__(party, reason)
        self.party, self.reason = party, reason


class _Connector:
    """The state of establishing one party's connections."""

    def __init__(self, me: str, peers: list[str], addresses: dict[str, tuple[str, int]], hello: dict[str, Any],
                 timeout: float, ssl_server: ssl.SSLContext | None, ssl_client: ssl.SSLContext | None,
                 mesh: Mesh, logger: Callable[[str], None]):
        self.loop = asyncio.get_running_loop()
        self.me, self.peers, self.addresses, self.hello = me, peers, addresses, hello
        self.timeout = timeout
        self.deadline = self.loop.time() + timeout
        self.ssl_server, self.ssl_client = ssl_server, ssl_client
        self.mesh = mesh
        self.log = logger
        self.incoming = [p for p in peers if p < me]
        self.outgoing = [p for p in peers if p > me]
        self.arrived: dict[str, asyncio.Future] = {p: self.loop.create_future() for p in self.incoming}
        self.fatal: asyncio.Future = self.loop.create_future()
        self.strangers: list[str] = []   # what each dropped connection did, for the timeout's hint
        self.server: Listener | None = None
        self.tasks: list[asyncio.Future] = []
        self.task_peer: dict[asyncio.Future, str] = {}
        # peers lingering need not wait for: they failed before starting, or their handshake with us
        # ended in a refusal either side (they heard why); a handshake still running is waited for
        self.no_wait: set[str] = set()
        # parties that told us they failed before starting: their connection stays open until we
        # can say which peers we relayed it to (report_relays), so they stop dialling those
        self.informants: list[tuple[str, asyncio.StreamWriter]] = []
        self.waiting: asyncio.Future | None = None

    def remaining(self) -> float:
        """Seconds left before the connect timeout."""
        return max(0.0, self.deadline - self.loop.time())

    @property
    def tls(self) -> bool:
        return self.ssl_client is not None

    async def run(self) -> None:
        """Every connection attached to the mesh, or the first error (then call linger and close)."""
        self.server = await self._listen()
        self.task_peer = {asyncio.ensure_future(self._dial(p)): p for p in self.outgoing}
        self.task_peer.update({asyncio.ensure_future(self._wait_incoming(p)): p for p in self.incoming})
        self.tasks = list(self.task_peer)
        self.waiting = asyncio.ensure_future(self._log_waiting())
        await self._wait_all(self.tasks)

    async def linger(self, seconds: float) -> None:
        """After a failure: go on connecting for a moment, so that peers not yet connected are
        attached and hear why this party stops (they would otherwise wait for their connect timeout)."""
        pending = [t for t, p in self.task_peer.items() if not t.done() and p not in self.no_wait]
        seconds = min(seconds, self.remaining())
        if pending and seconds > 0:
            await asyncio.wait(pending, timeout=seconds)

    async def report_relays(self) -> None:
        """Tell each party that failed before starting which peers hear it from us (all connected
        ones, once lingering is over), then close its connection."""
        for party, writer in self.informants:
            try:
                writer.write(control_frame({"t": "relays", "relays": [p for p in self.mesh.attached if p != party]}))
            except (OSError, RuntimeError):
                continue
            await _drain_briefly(writer)
        self._drop_informants()

    def _drop_informants(self) -> None:
        for _, writer in self.informants:
            close_writer(writer)
        self.informants = []

    async def close(self) -> None:
        """Stop dialling, accepting and logging."""
        self._drop_informants()
        jobs = [t for t in (*self.tasks, self.waiting) if t is not None]
        for t in jobs:
            t.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if self.server is not None:
            await self.server.aclose()
            self.server = None
        if self.fatal.done():
            if not self.fatal.cancelled():
                self.fatal.exception()  # mark retrieved
        else:
            self.fatal.cancel()

    async def _wait_all(self, tasks: list[asyncio.Future]) -> None:
        """Wait for every dial and accept; raise the first failure, a refused peer's or the mesh's."""
        failed = asyncio.ensure_future(self.mesh.failed.wait())
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending | {self.fatal, failed}, return_when=asyncio.FIRST_COMPLETED)
                if self.mesh._failure is not None:
                    raise NetworkError(self.mesh._failure.message, hint=self.mesh._failure.hint)
                if self.fatal.done():
                    raise self.fatal.exception()  # type: ignore[misc]
                pending -= {self.fatal, failed}
                for t in done:
                    t.result()
        finally:
            failed.cancel()

    async def _log_waiting(self) -> None:
        """Every few seconds, say whom this party still waits for."""
        while True:
            await asyncio.sleep(WAIT_LOG_EVERY)
            missing = [p for p in self.peers if p not in self.mesh.attached]
            if missing:
                left = secs(round(self.remaining()))
                self.log(f"{self.me}: waiting for {', '.join(missing)} (giving up in {left} s)")

    async def _listen(self) -> Listener:
        """Start listening on my own address, with a clear error if it is taken."""
        host, port = self.addresses[self.me]
        try:
            return await Listener.open(host, port, self._on_accept)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(
                    f"{self.me} cannot listen on {host}:{port}: that address is already in use",
                    hint="is another veil run (or another program) using the port? choose another in the parties file",
                ) from None
            raise ListenError(f"{self.me} cannot listen on {host}:{port}: {failure_reason(exc)}") from None

    def _stranger_hint(self, hint: str) -> str:
        """The timeout's hint, with the last dropped connection (often the missing party, misconfigured)."""
        if not self.strangers:
            return hint
        return (f"{hint}; {len(self.strangers)} connection(s) to {self.me} were dropped meanwhile, the last: "
                f"{self.strangers[-1]}")

    # -- dialling

    async def _dial(self, peer: str) -> None:
        """Connect to `peer`, authenticate it, handshake, attach."""
        host, port = self.addresses[peer]
        where = f"{host}:{port}"
        reader, writer = await self._open(peer, host, port, where)
        try:
            await self._dial_handshake(reader, writer, peer, where)
        except BaseException:
            close_writer(writer)
            raise
        self.mesh.attach(peer, reader, writer)
        self.log(f"{self.me}: authenticated {peer} at {where}")

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
                    hint=self._stranger_hint(hint + f"is {peer} running, with the same parties file?"),
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
                raise tls_error(self.me, f"{peer} at {where}", exc) from None
            except (OSError, TimeoutError) as exc:
                last = exc
                await asyncio.sleep(min(delay, self.remaining()))
                delay = min(delay * 2, 0.25)

    async def _dial_handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              peer: str, where: str) -> None:
        """Check the listener's certificate, send our hello, read its hello and verdict, answer."""
        if self.tls:
            cn = cert_common_name(writer.get_extra_info("peercert"))
            if cn != peer:
                msg = (f"{self.me} refused the party at {where}: expected {peer} there, but its TLS certificate "
                       f"is issued to {cn!r} (check the parties file and each party's certificate)")
                writer.write(control_frame({"t": "refused", "msg": msg}))
                self.no_wait.add(peer)
                raise NetworkError(msg)
        writer.write(control_frame({"t": "hello", "hello": self.hello}))
        try:
            reply = await asyncio.wait_for(read_control(reader), self.remaining())
        except _BROKEN as exc:
            raise early_failure(self.me, peer, where, exc, self.tls, self.timeout) from None
        if reply.get("t") == "refused":
            self.no_wait.add(peer)
            msg = reply.get("msg")
            raise NetworkError(str(msg) if msg else f"{peer} at {where} refused {self.me}")
        theirs = reply.get("hello")
        if reply.get("t") != "hello" or not isinstance(theirs, dict):
            raise NetworkError(f"{self.me} got no veil handshake from {peer} at {where} (is it a veil party?)")
        party = theirs.get("party")
        problem = None
        if party != peer:
            problem = f"{self.me} refused the party at {where}: expected {peer} there, but {party} answered (check the parties file)"
        problem = problem or hello_mismatch(self.me, self.hello, theirs, peer)
        writer.write(control_frame({"t": "error", "msg": problem} if problem else {"t": "ok"}))
        verdict = reply.get("verdict")
        if problem or verdict:
            self.no_wait.add(peer)
        if problem:
            await _drain_briefly(writer)
            raise NetworkError(problem)
        if verdict:
            raise NetworkError(str(verdict))

    # -- accepting

    async def _wait_incoming(self, peer: str) -> None:
        """Wait until `peer` has dialled in and passed the handshake."""
        try:
            await asyncio.wait_for(asyncio.shield(self.arrived[peer]), self.remaining())
        except TimeoutError:
            host, port = self.addresses[self.me]
            raise NetworkError(
                f"{peer} did not connect to {self.me} at {host}:{port} within {secs(self.timeout)} s",
                hint=self._stranger_hint(f"is {peer} running, with the same parties file?"),
            ) from None

    async def _on_accept(self, conn: socket.socket, addr: Any) -> None:
        """One incoming connection: authenticate it, or drop it as a stranger (never fatal)."""
        src = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        writer = None
        try:
            reader, writer = await self._wrap_accepted(conn, src)
            peer = await self._accept_handshake(reader, writer, src)
            self.mesh.attach(peer, reader, writer)
            self.arrived[peer].set_result(None)
            self.log(f"{self.me}: authenticated {peer} from {src}")
        except _EarlyAbort as ab:
            self.no_wait.add(ab.party)   # nothing to wait for: it is not coming
            self.log(f"{self.me}: {ab.party} failed before starting: {ab.reason}")
            self.mesh._fail(PeerAborted(ab.party, ab.reason, early=True))
            if writer is not None:
                self.informants.append((ab.party, writer))
        except _Stranger as why:
            self.strangers.append(f"{src} {why}")
            self.log(f"{self.me}: dropped a connection from {src}: {why}")
            if writer is not None:
                close_writer(writer)
        except NetworkError as exc:  # an authenticated peer refused us, or we refused it
            if writer is not None:
                close_writer(writer)
            if not self.fatal.done():
                self.fatal.set_exception(exc)
        except BaseException:
            if writer is not None:
                close_writer(writer)
            raise  # cancelled (or a bug)
        finally:
            if writer is None:
                conn.close()

    async def _wrap_accepted(self, conn: socket.socket, src: str) -> Streams:
        """Streams over an accepted socket; a failed TLS handshake makes it a stranger.

        (asyncio.start_server would swallow a failed server-side TLS handshake into the loop's log,
        and StreamWriter.start_tls loses a ClientHello that arrived before it was called.)"""
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        limit = max(min(self.remaining(), STRANGER_TIMEOUT), 0.1)
        kwargs: dict[str, Any] = {}
        if self.ssl_server is not None:
            kwargs = {"ssl": self.ssl_server, "ssl_handshake_timeout": limit}
        try:
            transport, _ = await asyncio.wait_for(
                self.loop.connect_accepted_socket(lambda: protocol, conn, **kwargs), limit)
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
            if isinstance(exc, ssl.SSLCertVerificationError) or "certificate" in str(exc).lower():
                raise _Stranger(f"its TLS certificate was refused ({failure_reason(exc)}): "
                                f"{SAME_CA}") from None
            if isinstance(exc, (ssl.SSLEOFError, ConnectionError)):
                raise _Stranger(f"it broke off the TLS handshake: most likely it refused {self.me}'s certificate "
                                f"({SAME_CA})") from None
            raise _Stranger(f"the TLS handshake failed ({failure_reason(exc)})") from None
        return reader, asyncio.StreamWriter(transport, protocol, reader, self.loop)

    async def _accept_handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, src: str) -> str:
        """Authenticate the dialler, then send our hello and verdict and read its verdict."""
        party, theirs = await self._authenticate(reader, writer, src)
        problem = hello_mismatch(self.me, self.hello, theirs, party)
        writer.write(control_frame({"t": "hello", "hello": self.hello, "verdict": problem}))
        if problem:
            self.no_wait.add(party)
            await _drain_briefly(writer)
            raise NetworkError(problem)
        try:   # lingering waits for this answer: the dialler attaches as soon as it has sent it
            answer = await asyncio.wait_for(read_control(reader), self.remaining())
        except _BROKEN as exc:
            self.no_wait.add(party)
            raise early_failure(self.me, party, src, exc, self.tls, self.timeout) from None
        if answer.get("t") != "ok":
            self.no_wait.add(party)
        if answer.get("t") == "error":
            raise NetworkError(str(answer.get("msg")))
        if answer.get("t") != "ok":
            raise NetworkError(f"{self.me} got an unexpected handshake reply from {party}")
        if self.arrived[party].done():
            raise _Stranger(f"a second connection from {party}")
        return party

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            src: str) -> tuple[str, dict[str, Any]]:
        """The dialler's name and hello, if it is a party that dials us (and its certificate says
        so); otherwise _Stranger, having told it only why it was refused."""
        try:
            first = await asyncio.wait_for(read_control(reader), max(min(self.remaining(), STRANGER_TIMEOUT), 0.1))
        except TimeoutError:
            raise _Stranger(f"it sent no veil hello within {secs(STRANGER_TIMEOUT)} s") from None
        except asyncio.IncompleteReadError as exc:
            raise _Stranger("it closed without a word" if not exc.partial else "it sent a partial frame and closed") from None
        except Malformed as exc:
            raise _Stranger(f"it sent bytes that are not a veil frame ({exc})") from None
        except OSError as exc:
            raise _Stranger(f"the connection failed ({failure_reason(exc)})") from None
        if first.get("t") == EARLY_ABORT:
            raise self._early_abort(first, writer)
        if first.get("t") == "refused" and self.tls:
            cn = cert_common_name(writer.get_extra_info("peercert"))
            if cn in self.arrived:  # a party of the deployment, by its certificate, refused our certificate
                self.no_wait.add(cn)
                raise NetworkError(str(first.get("msg") or f"{cn} refused {self.me}"))
        theirs = first.get("hello")
        party = theirs.get("party") if isinstance(theirs, dict) else None
        if first.get("t") != "hello" or not isinstance(party, str):
            raise _Stranger(f"it sent a {first.get('t')!r} frame, not a veil hello")
        if party not in self.arrived:
            why = "not a party of this program" if party not in self.peers else f"{self.me} dials {party}, not the other way round"
            self._refuse(writer, f"{self.me} accepts no connection from {party!r}: {why}")
            raise _Stranger(f"its hello names {party!r}: {why}")
        if self.tls:
            cn = cert_common_name(writer.get_extra_info("peercert"))
            if cn != party:
                msg = (f"{self.me} refused {party}: its TLS certificate is issued to {cn!r}, not {party!r} "
                       f"(each party must use its own certificate from `veil keygen`)")
                self._refuse(writer, msg)
                raise _Stranger(f"it claims to be {party} with the certificate of {cn!r}")
        if self.arrived[party].done():
            self._refuse(writer, f"{self.me} is already connected to {party}")
            raise _Stranger(f"a second connection claiming to be {party}")
        return party, theirs

    def _early_abort(self, frame: dict[str, Any], writer: asyncio.StreamWriter) -> Exception:
        """An abort before start, believed only from a party of this program (with TLS: over its
        own certificate); from anyone else it is a stranger's."""
        party, reason = frame.get("party"), frame.get("reason")
        if not isinstance(party, str) or party not in self.peers or not isinstance(reason, str):
            return _Stranger(f"it sent an abort before start for {party!r}, not a party of this program")
        if self.tls:
            cn = cert_common_name(writer.get_extra_info("peercert"))
            if cn != party:
                return _Stranger(f"it sent an abort before start in the name of {party} "
                                 f"with the certificate of {cn!r}")
        try:   # which peers hear it relayed follows once lingering is over (report_relays)
            writer.write(control_frame({"t": "ok"}))
        except (OSError, RuntimeError):
            pass
        return _EarlyAbort(party, reason)

    @staticmethod
    def _refuse(writer: asyncio.StreamWriter, msg: str) -> None:
        """Tell a refused dialler why (never anything about this party's program or session)."""
        try:
            writer.write(control_frame({"t": "refused", "msg": msg}))
        except (OSError, RuntimeError):
            pass


async def _drain_briefly(writer: asyncio.StreamWriter) -> None:
    """Give a last frame (a refusal) a moment to leave before the connection closes."""
    try:
        await asyncio.wait_for(writer.drain(), 1.0)
    except (OSError, RuntimeError, TimeoutError):
        pass
