"""The syntax tree of a .mpc program: plain dataclasses, each with the span it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

from veil.runtime.diagnostics import Span


@dataclass
class Node:
    span: Span


# ---- expressions -------------------------------------------------------------------------
@dataclass
class Name(Node):
    id: str


@dataclass
class Num(Node):
    value: int | float


@dataclass
class Bool(Node):
    value: bool


@dataclass
class Str(Node):
    value: str


@dataclass
class BinOp(Node):
    op: str  # + - * @ / // % ** & |
    left: Node
    right: Node


@dataclass
class Unary(Node):
    op: str  # - + ~ not
    operand: Node


@dataclass
class Compare(Node):
    op: str  # < <= > >= == !=
    left: Node
    right: Node


@dataclass
class Logic(Node):
    op: str  # and / or (compile-time values only)
    left: Node
    right: Node


@dataclass
class Keyword(Node):
    name: str
    value: Node


@dataclass
class Call(Node):
    func: Node
    args: list[Node]
    kwargs: list[Keyword]


@dataclass
class Attribute(Node):
    value: Node
    attr: str


@dataclass
class Slice(Node):
    lo: Node | None
    hi: Node | None
    step: Node | None


@dataclass
class Subscript(Node):
    value: Node
    index: list[Node]  # each an expression or a Slice


@dataclass
class TupleExpr(Node):
    items: list[Node]


@dataclass
class ListExpr(Node):
    items: list[Node]


# ---- statements --------------------------------------------------------------------------
@dataclass
class PartyDecl(Node):
    names: list[Name]


@dataclass
class ProtocolDecl(Node):
    name: str
    args: list[Node]
    kwargs: list[Keyword]


@dataclass
class ParamDecl(Node):
    name: str
    value: Node


@dataclass
class PrecisionDecl(Node):
    value: Node  # the fractional bits: an int literal or a param's name


@dataclass
class Assign(Node):
    targets: list[Node]  # one Name, or several for tuple unpacking
    value: Node


@dataclass
class AugAssign(Node):
    target: Node
    op: str  # + - *
    value: Node


@dataclass
class ExprStmt(Node):
    value: Node


@dataclass
class For(Node):
    var: Name
    iter: Node
    body: list[Node]


@dataclass
class If(Node):
    cond: Node
    body: list[Node]
    orelse: list[Node]


@dataclass
class Param(Node):
    name: str
    default: Node | None


@dataclass
class FunctionDef(Node):
    name: str
    params: list[Param]
    body: list[Node]
    file: str = ""


@dataclass
class Return(Node):
    value: Node | None


@dataclass
class Assert(Node):
    cond: Node
    msg: Node | None


@dataclass
class Import(Node):
    module: str
    alias: str | None


@dataclass
class FromImport(Node):
    module: str
    names: list[tuple[str, str | None]]


@dataclass
class Pass(Node):
    pass


@dataclass
class Module(Node):
    file: str
    body: list[Node] = field(default_factory=list)
