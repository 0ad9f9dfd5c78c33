"""The Builder: its state, and the checks on a whole program once its statements have run."""
from __future__ import annotations

from typing import Any

from .. import ast
from veil.runtime.diagnostics import Span, TypeErr, UsageErr, VeilError, closest
from veil.runtime.protocols import DEFAULT
from ..ir import Block, Program, Value
from .calls import Calls
from .expressions import Expressions
from .header import DEFAULT_FRAC_BITS, Header, Precision, parse_protocol_spec
from .indexing import Indexing
from .scope import Module, Scope
from .statements import Statements
from .values import Values


class Builder(Header, Precision, Statements, Calls, Expressions, Indexing, Values):
    """Walks a module's statements and appends typed IR ops to the current block."""

    def __init__(self, file: str, params: dict[str, Any], frac_bits: int | None, protocol_override: str | None):
        self.file = file
        self.overrides = dict(params)
        self.frac_bits_override = frac_bits  # --frac-bits: wins over the program's `precision` line
        frac_bits = DEFAULT_FRAC_BITS if frac_bits is None else frac_bits
        self.frac_bits = frac_bits
        self.precision_span: Span | None = None
        self.protocol_override = protocol_override
        self.prog = Program(file=file, parties=[], protocol=DEFAULT.name, compute=[], protocol_args={},
                            params={}, frac_bits=frac_bits, body=Block())
        self.block = self.prog.body
        self.affine: dict[int, tuple[dict[int, int], int]] = {}
        self.loop_ranges: dict[int, tuple[int, int]] = {}  # affine variables' bounds (loop variables, ...)
        self.int_ranges: dict[int, tuple[int, int]] = {}  # public int constants' (and their elements') bounds
        self.call_stack: list[str] = []
        self.call_sites: list[Span] = []  # where each function being inlined was called, chained
        self.modules: dict[str, Module] = {}
        self.loop_depth = 0
        self.protocol_span: Span | None = None
        self.shared: dict[int, tuple[Block, Value]] = {}
        self.block_stack: list[Block] = []
        self.errors: list[VeilError] = []
        self.fn_loop_depth: list[int] = []

    def open_blocks(self) -> list[Block]:
        """The block being built and the blocks enclosing it (their values are visible here)."""
        return self.block_stack + [self.block]

    def build_program(self, module: ast.Module) -> Program:
        scope = Scope(dict(), None)
        self.run_block(module.body, scope, top=True)
        if not self.prog.parties:
            raise TypeErr("the program declares no parties", Span(self.file, 1, 1),
                          "start with a line such as: party alice, bob, carol")
        if not self.prog.compute:
            if self.protocol_override:
                name, args, kwargs = parse_protocol_spec(self.protocol_override)
                self.set_protocol(name, args, kwargs, None, cli=True)
            elif len(self.prog.parties) < DEFAULT.positional:
                raise TypeErr(f"{DEFAULT.name}, the default protocol, needs {DEFAULT.positional} compute parties; "
                              f"the program declares {len(self.prog.parties)}", Span(self.file, 1, 1),
                              "declare three parties: party alice, bob, carol")
            else:
                self.set_protocol(DEFAULT.name, self.prog.parties[:DEFAULT.positional], {}, Span(self.file, 1, 1))
        unknown = set(self.overrides) - set(self.prog.params)
        if unknown:
            name = sorted(unknown)[0]
            near = closest(name, list(self.prog.params))
            raise UsageErr(f"-D {name}: the program has no param {name}", None,
                           f"did you mean {near}?" if near else
                           f"its params are: {', '.join(self.prog.params) or 'none'}")
        return self.prog
