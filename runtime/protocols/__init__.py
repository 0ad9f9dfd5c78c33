"""Protocol plug-ins, by name."""
from __future__ import annotations

from .base import Protocol


def get_protocol(name: str) -> Protocol:
    """The protocol implementation named in a program (rep3 first; dealer2 later)."""
    if name == "rep3":
        from .rep3 import Rep3

        return Rep3()
    raise KeyError(name)
