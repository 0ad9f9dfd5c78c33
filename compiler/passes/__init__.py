"""Optimization passes: each a function from IR to IR, with no hidden state (docs/optimizer.md)."""
from __future__ import annotations

from ..ir import Program
from .balance import balance_constants
from .cse import cse
from .dce import dce
from .distribute import distribute_constants
from .fold import fold
from .owner import compute_at_owner
from .simplify import simplify
from .truncation import dot_products, place_truncations
from .util import op_count

__all__ = ["optimize", "fold", "simplify", "cse", "balance_constants", "distribute_constants", "compute_at_owner", "dot_products", "place_truncations", "dce", "PIPELINE"]

PIPELINE = (fold, simplify, dot_products, cse, balance_constants, distribute_constants, compute_at_owner, dce, place_truncations, dce)
MAX_ROUNDS = 4  # the pipeline reaches its fixpoint in one or two rounds on real programs


def optimize(prog: Program) -> Program:
    """The default pipeline (`-O0` skips it), repeated while it still removes ops."""
    for _ in range(MAX_ROUNDS):
        before = op_count(prog.body)
        for p in PIPELINE:
            prog = p(prog)
        if op_count(prog.body) >= before:
            break
    return prog
