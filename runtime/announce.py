"""Abort before start: a party that fails during set-up tells its peers why before it exits.

A damaged build, a port in use, an unwritable output folder or a bad input file stop a party
before it has connected, so no mesh exists to relay its failure. It still knows its name, the
parties file and its TLS identity: it dials every peer's listening address (for a few seconds at
most) and sends one control frame, {"t": "abort-before-start", "party", "reason"}. The receiver
(veil.runtime.connect) accepts it only from an authenticated party — with TLS the certificate
must name that party — and stops with "<party> failed before starting: <reason>". It answers
"ok", and once it has gone on connecting for a moment, names every peer it is connected to: it
relays the news to them, so the failing party stops dialling those (they may have stopped). The frame
carries no program data, so no program hash needs to be exchanged first. On plaintext loopback
anyone on the machine could send it, the same limit plaintext has for the hello itself.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Callable

from veil.runtime.tls import cert_common_name

from .framing import Malformed, close_writer, control_frame, log, read_control
from .tcp_mesh import MAX_REASON

EARLY_ABORT = "abort-before-start"
ANNOUNCE_WITHIN = 10.0    # seconds a failing party spends telling its peers (ends once all are told): peers on
                          # busy machines may need several seconds to start listening
_BROKEN = (asyncio.IncompleteReadError, OSError, TimeoutError, Malformed)


def early_abort_frame(me: str, reason: str) -> bytes:
    """The frame a party that cannot start sends each peer."""
    return control_frame({"t": EARLY_ABORT, "party": me, "reason": reason[:MAX_REASON]})


async def announce_failure(me: str, peers: list[str], addresses: dict[str, tuple[str, int]], reason: str,
                           ssl_client: ssl.SSLContext | None = None, within: float = ANNOUNCE_WITHIN,
                           logger: Callable[[str], None] = log) -> list[str]:
    """Tell every peer reachable within `within` seconds that `me` failed before starting;
    returns the peers told (directly, or by one that relays it to them)."""
    targets = sorted(p for p in set(peers) if p != me and p in addresses)
    if not targets:
        return []
    logger(f"{me}: telling {', '.join(targets)} that it cannot start")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    frame = early_abort_frame(me, reason)
    tasks = {asyncio.ensure_future(_tell(me, p, addresses[p], frame, ssl_client, deadline)): p for p in targets}
    pending, told, stopped = set(tasks), [], []
    while pending:
        done, pending = await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0),
                                           return_when=asyncio.FIRST_COMPLETED)
        if not done:
            break
        for t in done:
            relays = t.result()
            if relays is None:
                continue
            told.append(tasks[t])
            for other in [o for o in pending if tasks[o] in relays]:   # it relays to them: stop dialling
                pending.discard(other)
                stopped.append(other)
                told.append(tasks[other])
    for t in (*pending, *stopped):
        t.cancel()
    await asyncio.gather(*pending, *stopped, return_exceptions=True)
    return sorted(told)


async def _tell(me: str, peer: str, address: tuple[str, int], frame: bytes, ssl_client: ssl.SSLContext | None,
                deadline: float) -> list[str] | None:
    """Dial `peer` until the deadline, check its certificate, send the frame, await its answer;
    returns the peers it said it relays the news to (None: not told)."""
    loop = asyncio.get_running_loop()
    host, port = address
    delay = 0.02
    while (left := deadline - loop.time()) > 0:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=ssl_client, server_hostname=peer if ssl_client else None,
                ssl_handshake_timeout=left if ssl_client else None), left)
        except ssl.SSLError:
            return None    # it refused our certificate (or we its): it cannot believe us
        except (OSError, TimeoutError):
            await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
            delay = min(delay * 2, 0.1)   # a late peer may be up only briefly
            continue
        try:
            if ssl_client is not None and cert_common_name(writer.get_extra_info("peercert")) != peer:
                return None    # not the party we meant: tell it nothing
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), max(deadline - loop.time(), 0.1))
            # its answer (or its close) means the frame was read before we go away
            answer = await asyncio.wait_for(read_control(reader), max(deadline - loop.time(), 0.1))
            if answer.get("t") != "ok":
                return None
            try:   # once it has lingered, it says which peers it relays the news to
                later = await asyncio.wait_for(read_control(reader), max(deadline - loop.time(), 0.1))
            except _BROKEN:
                return []
            relays = later.get("relays") if later.get("t") == "relays" else None
            return [r for r in relays if isinstance(r, str)] if isinstance(relays, list) else []
        except _BROKEN:
            return None
        finally:
            close_writer(writer)
    return None
