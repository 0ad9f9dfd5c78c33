"""The IR: SSA tensor ops in blocks, with structured loops, typed values and source spans."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from veil.runtime.diagnostics import Span
from .types import Type


@dataclass(eq=False)
class Value:
    """An SSA value: defined once, by one op or as a block parameter."""

    id: int
    type: Type

    def __repr__(self) -> str:
        return f"%{self.id}"


@dataclass(eq=False)
class Op:
    """One tensor operation. `body` is set for `loop` only."""

    opcode: str
    outs: list[Value]
    ins: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None
    body: "Block | None" = None

    @property
    def out(self) -> Value:
        return self.outs[0]


@dataclass(eq=False)
class Block:
    """A sequence of ops; a loop body also has parameters (loop variable, carried values) and results."""

    ops: list[Op] = field(default_factory=list)
    params: list[Value] = field(default_factory=list)
    results: list[Value] = field(default_factory=list)


@dataclass
class InputDecl:
    party: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    default: str | None
    head: bool


@dataclass
class OutputDecl:
    name: str
    to: list[str]
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Program:
    """A whole compiled program: who takes part, how, and its top-level block."""

    file: str
    parties: list[str]
    protocol: str
    compute: list[str]
    protocol_args: dict[str, str]
    params: dict[str, Any]
    frac_bits: int
    body: Block
    inputs: list[InputDecl] = field(default_factory=list)
    outputs: list[OutputDecl] = field(default_factory=list)
    next_id: int = 0

    def new_value(self, t: Type) -> Value:
        self.next_id += 1
        return Value(self.next_id, t)


def walk(block: Block) -> Iterator[Op]:
    """Every op in a block and its nested loop bodies, in program order."""
    for op in block.ops:
        yield op
        if op.body is not None:
            yield from walk(op.body)
