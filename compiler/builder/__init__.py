"""The Builder, which walks the syntax tree and appends typed IR ops; one mixin per concern.

  program.py      the Builder class: its state, and the checks on a whole program
  statements.py   blocks and error recovery, assignment, if, for loops and carried values, assert, return
  expressions.py  names, literals, operators and attributes
  indexing.py     subscripts and slices, static and by a loop variable
  calls.py        user functions (inlined), module imports, dispatch to the built-ins (compiler/builtins/)
  values.py       constants, emitting ops, visibility/dtype/scale conversions, broadcasting
  header.py       the protocol line, --protocol and -D parsing
  scope.py        what names are bound to: Scope, Function, Module, Party, poison
The entry point build() is in compiler/build.py.
"""
from .calls import _through_call
from .header import coerce_param, parse_protocol_spec
from .program import Builder
from .scope import POISON, Function, Module, Party, Scope, describe, scope_set
from .values import _broadcast

__all__ = ["Builder", "Function", "Module", "POISON", "Party", "Scope", "_broadcast",
           "_through_call", "coerce_param", "describe", "parse_protocol_spec", "scope_set"]
