"""Optimization passes: each a function from IR to IR, with no hidden state."""
from __future__ import annotations

from ..ir import Program


def optimize(prog: Program) -> Program:
    """The default pipeline (`-O0` skips it)."""
    return prog
