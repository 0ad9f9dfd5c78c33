"""What names are bound to while building: scopes, functions, modules, parties, the poison marker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import ast
from veil.runtime.diagnostics import Span
from ..ir import Value


class Poison:
    """What a name is bound to after the statement defining it failed (stops cascading errors)."""


POISON = Poison()


class _Poisoned(Exception):
    """A statement used a name whose definition already failed: skip it silently."""


@dataclass
class Function:
    node: ast.FunctionDef
    scope: "Scope"


@dataclass
class Module:
    name: str
    scope: "Scope"


@dataclass
class Party:
    name: str


@dataclass
class Scope:
    names: dict[str, Any] = field(default_factory=dict)
    parent: "Scope | None" = None
    gone: dict[str, tuple[Span, bool]] = field(default_factory=dict)  # names that lived only in a loop

    def gone_at(self, name: str) -> tuple[Span, bool] | None:
        """Where the loop is that defined `name` only inside its body, if any."""
        s: Scope | None = self
        while s is not None:
            if name in s.gone:
                return s.gone[name]
            s = s.parent
        return None

    def lookup(self, name: str) -> Any:
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        raise KeyError(name)

    def known(self) -> list[str]:
        out, s = [], self
        while s is not None:
            out.extend(s.names)
            s = s.parent
        return out


class _Return(Exception):
    def __init__(self, value: Any):
        self.value = value


def _has(scope: Scope, name: str) -> bool:
    try:
        scope.lookup(name)
        return True
    except KeyError:
        return False


def scope_set(scope: Scope, name: str, value: Any) -> None:
    """Assign in the innermost scope (Python's rule inside functions and loop bodies)."""
    scope.names[name] = value


def _is_int_const(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def describe(x: Any) -> str:
    if isinstance(x, Value):
        return f"a {x.type}"
    if isinstance(x, Function):
        return f"function {x.node.name}"
    if isinstance(x, Module):
        return f"module {x.name}"
    if isinstance(x, Party):
        return f"party {x.name}"
    return f"{type(x).__name__} {x!r}"
