"""Protocol plug-ins, by name."""
from __future__ import annotations

from .base import Protocol


def get_protocol(name: str) -> Protocol:
    """The protocol implementation named in a program."""
    if name == "rep3":
        from .rep3 import Rep3

        return Rep3()
    if name == "dealer2":
        from .dealer2 import Dealer2

        return Dealer2()
    raise KeyError(name)
