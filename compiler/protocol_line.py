"""The protocol line (`protocol rep3(alice, bob, carol)` or --protocol): checked against the
plug-ins' own declarations (name, positional parties, named roles), so a new protocol needs no
change here."""
from __future__ import annotations

from veil.runtime.diagnostics import closest
from veil.runtime.protocols import PROTOCOLS


class ProtocolLineError(Exception):
    """What is wrong with a protocol line: the error kind ("usage" or "type"), message and hint."""

    def __init__(self, kind: str, message: str, hint: str | None):
        super().__init__(message)
        self.kind, self.message, self.hint = kind, message, hint


def _usages() -> str:
    return " or ".join(p.usage() for p in PROTOCOLS.values())


def compute_parties(name: str, args: list[str], kwargs: dict[str, str]) -> list[str]:
    """The compute parties, in protocol order, of a protocol line; ProtocolLineError if it is wrong."""
    proto = PROTOCOLS.get(name)
    if proto is None:
        near = closest(name, list(PROTOCOLS))
        raise ProtocolLineError("usage", f"unknown protocol {name!r}", f"did you mean {near}?" if near else
                                f"known protocols: {', '.join(PROTOCOLS)}")
    for k in kwargs:
        if k not in proto.keywords:
            raise ProtocolLineError("type", f"protocol {name} has no keyword {k!r}", _usages())
    if len(args) != proto.positional:
        raise ProtocolLineError("type", f"protocol {name} takes {proto.positional} parties, got {len(args)}",
                                _usages())
    for k in proto.keywords:
        if k not in kwargs:
            raise ProtocolLineError("type", f"protocol {name} needs a {k}", proto.usage())
    return proto.compute_parties(args, kwargs)
