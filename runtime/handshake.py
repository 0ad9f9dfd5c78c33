"""The words of the handshake's refusals: which setting differs, and what a broken handshake means.

Shared by both ends of veil.runtime.connect, so a refusal reads the same on the party that refused
and on the party refused.
"""
from __future__ import annotations

import ssl
from typing import Any

from veil.runtime.diagnostics import NetworkError

from .framing import Malformed, failure_reason, secs

_HELLO_LABELS = {
    "veil": ("protocol version", "both must run the same veil version"),
    "program": ("program hash", "both must run the same compiled program"),
    "session": ("session id", "both must be started for the same session"),
    "frame_bound": ("largest message allowed (from manifest.json's cost.max_message_bytes)",
                    "one party's manifest.json was edited: copy the same build folder to everyone"),
}
SAME_CA = "every party's certificate must come from the same `veil keygen` (same ca.pem)"


def hello_mismatch(me: str, mine: dict[str, Any], theirs: dict[str, Any], party: str) -> str | None:
    """The first setting (version, program, session, then the rest) on which the two hellos differ
    (another program has another frame bound too: the program is what to report)."""
    keys = (set(mine) | set(theirs)) - {"party"}
    for key in [k for k in _HELLO_LABELS if k in keys] + sorted(keys - set(_HELLO_LABELS)):
        a, b = mine.get(key), theirs.get(key)
        if a != b:
            label, advice = _HELLO_LABELS.get(key, (repr(key), "both must be started with the same settings"))
            x, y = _show_pair(a, b)
            return f"{me} refused {party}: {label} differs ({me} has {x}, {party} has {y}): {advice}"
    return None


def tls_error(me: str, who: str, exc: ssl.SSLError, hint: str | None = None) -> NetworkError:
    """A failed TLS handshake with `who`: a refused certificate says so, other failures say why."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return NetworkError(f"{me} refused the TLS certificate of {who}: {failure_reason(exc)}", hint=SAME_CA)
    return NetworkError(f"TLS handshake of {me} with {who} failed: {failure_reason(exc)}",
                        hint=hint or "do all parties use [tls] with certificates from the same `veil keygen`?")


def early_failure(me: str, peer: str, where: str, exc: BaseException, tls: bool, timeout: float) -> NetworkError:
    """The error for a peer that hung up or failed during the handshake."""
    if isinstance(exc, ssl.SSLError):
        return NetworkError(f"{peer} at {where} rejected the TLS certificate of {me}: {failure_reason(exc)}",
                            hint=SAME_CA)
    if isinstance(exc, TimeoutError):
        return NetworkError(f"{peer} at {where} did not complete the handshake with {me} within {secs(timeout)} s")
    if isinstance(exc, Malformed):
        return NetworkError(f"{me} got no veil handshake from {peer} at {where} (is it a veil party?)")
    if tls:
        return NetworkError(
            f"{peer} at {where} closed the connection during the TLS handshake with {me}: "
            f"it most likely refused {me}'s certificate",
            hint=SAME_CA,
        )
    return NetworkError(f"{peer} at {where} closed the connection during the handshake with {me}")


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
