"""Build the typed IR from the syntax tree: the entry point (the Builder itself is compiler/builder/)."""
from __future__ import annotations

from typing import Any

from veil.runtime.diagnostics import Span, UnsupportedErr, UsageErr
from .builder import (POISON, Builder, Function, Module, Party, Scope, _broadcast, _through_call,
                      coerce_param, describe, parse_protocol_spec, scope_set)
from .ir import Program
from .parser import parse

__all__ = ["Builder", "Function", "Module", "POISON", "Party", "Scope", "_broadcast",
           "_through_call", "build", "coerce_param", "describe", "parse_protocol_spec", "scope_set"]


def build(text: str, file: str, params: dict[str, Any] | None = None, frac_bits: int | None = None,
          protocol: str | None = None) -> Program:
    """Source text to typed IR; `frac_bits` (--frac-bits) overrides the program's `precision` line,
    None keeps it (16 when the program has none)."""
    if frac_bits is not None and (not isinstance(frac_bits, int) or isinstance(frac_bits, bool) or
                                  not 1 <= frac_bits <= 30):
        raise UsageErr(f"--frac-bits {frac_bits}: choose between 1 and 30", None,
                       "16 (the default) suits values up to about 32768 in magnitude")
    if protocol is not None:
        parse_protocol_spec(protocol)  # a malformed --protocol is reported even if the program has none
    try:
        tree = parse(text, file)
        return Builder(file, params or {}, frac_bits, protocol).build_program(tree)
    except RecursionError:
        raise UnsupportedErr("the program is nested too deeply for the compiler", Span(file, 1, 1),
                             "split deeply nested expressions into several assignments") from None
