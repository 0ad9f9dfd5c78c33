"""Protocol plug-ins, by name: each module declares what its protocol can do (see base.Protocol)."""
from __future__ import annotations

from .base import Protocol
from .dealer2 import Dealer2
from .rep3 import Rep3

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Rep3, Dealer2)}
DEFAULT = Rep3  # a program without a protocol line (LANGUAGE.md §2)


def get_protocol(name: str) -> Protocol:
    """The protocol implementation named in a program."""
    return PROTOCOLS[name]()
