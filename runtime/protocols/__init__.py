"""Protocol plug-ins, by name: each module declares what its protocol can do (see base.Protocol)."""
from __future__ import annotations

from .base import Protocol
from .dealer2 import Dealer2
from .rep3 import Rep3

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Rep3, Dealer2)}
DEFAULT = Rep3  # a program without a protocol line (LANGUAGE.md §2)
# Other names for the same protocols, as TF Encrypted users know them (ABY3, Pond).
ALIASES: dict[str, str] = {"aby3": Rep3.name, "pond": Dealer2.name}


def canonical(name: str) -> str:
    """A protocol's own name for `name` or its alias (unknown names come back unchanged)."""
    return ALIASES.get(name, name)


def get_protocol(name: str) -> Protocol:
    """The protocol implementation named in a program."""
    return PROTOCOLS[canonical(name)]()
