"""Reading a built-in's arguments: the signature check, and compile-time shapes, dtypes, axes, parties."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ast
from veil.runtime.diagnostics import ShapeErr, TypeErr, closest
from ..limits import MAX_CONST_ELEMENTS, MAX_ELEMENTS

if TYPE_CHECKING:
    from ..builder import Builder, Scope


class Args:
    """A call's evaluated arguments, checked against a builtin's signature."""

    def __init__(self, b: "Builder", name: str, e: ast.Call, scope: "Scope", params: list[str],
                 required: int, raw: tuple[str, ...] = ()):
        self.e, self.name = e, name
        if len(e.args) > len(params):
            raise TypeErr(f"{name}() takes at most {len(params)} positional arguments, got {len(e.args)}", e.span)
        self.values: dict[str, Any] = {}
        self.nodes: dict[str, ast.Node] = {}
        for p, a in zip(params, e.args):
            self.nodes[p] = a
        for k in e.kwargs:
            if k.name not in params:
                near = closest(k.name, params)
                raise TypeErr(f"{name}() has no keyword {k.name!r}", k.span,
                              f"did you mean {near}?" if near else f"its arguments: {', '.join(params)}")
            if k.name in self.nodes:
                raise TypeErr(f"{name}() got {k.name!r} twice", k.span)
            self.nodes[k.name] = k.value
        for p in params[:required]:
            if p not in self.nodes:
                raise TypeErr(f"{name}() is missing argument {p!r}", e.span)
        for p, n in self.nodes.items():
            if p in raw:
                self.values[p] = n
            else:
                self.values[p] = b.expr(n, scope)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def span(self, key: str):
        return self.nodes[key].span if key in self.nodes else self.e.span


def _const_size(shape: tuple, span) -> None:
    """A materialized public constant must stay small: it is stored in the bytecode."""
    n = 1
    for d in shape:
        n *= d
    if n > MAX_CONST_ELEMENTS:
        raise ShapeErr(f"a public constant of {n} elements is too large (limit {MAX_CONST_ELEMENTS})", span,
                       "build large tensors from inputs, or broadcast a small constant")


def _shape_arg(x: Any, span, infer: bool = False) -> tuple[int, ...]:
    """A compile-time shape; with `infer` (reshape) one dim may be -1, numpy's 'the rest'."""
    if isinstance(x, int) and not isinstance(x, bool):
        x = (x,)
    if isinstance(x, (tuple, list)) and all(isinstance(i, int) and not isinstance(i, bool) for i in x):
        if infer and list(x).count(-1) == 1:
            rest = [i for i in x if i != -1]
            if any(i < 0 for i in rest):
                raise ShapeErr(f"a shape has non-negative dims (and at most one -1), got {tuple(x)}", span)
            return tuple(x)
        if any(i < 0 for i in x):
            raise ShapeErr(f"a shape has non-negative dims, got {tuple(x)}", span)
        if len(x) > 32 or int(np.prod([float(i) for i in x])) > MAX_ELEMENTS:
            raise ShapeErr(f"the shape {tuple(x)} is too large (at most 32 axes and 2^40 elements)", span)
        return tuple(x)
    raise TypeErr(f"a shape is a tuple of compile-time ints, like (N, 16), got {_describe(x)}", span)


def _dtype_arg(node: ast.Node | None, default: str, span) -> str:
    if node is None:
        return default
    name = node.id if isinstance(node, ast.Name) else node.value if isinstance(node, ast.Str) else None
    if name == "float":
        name = "fix"
    if name not in ("fix", "int", "bool"):
        raise TypeErr("dtype is one of fix, int, bool", span, "e.g. dtype=int")
    return name


def _party_list(b: "Builder", node: ast.Node, scope) -> list[str]:
    items = node.items if isinstance(node, (ast.ListExpr, ast.TupleExpr)) else [node]
    return [b.party_arg(i, scope) for i in items]


def _axis(x: Any, ndim: int, span) -> int | None:
    if x is None:
        return None
    if not isinstance(x, int) or isinstance(x, bool):
        raise TypeErr(f"axis must be a compile-time int, got {_describe(x)}", span)
    if not -ndim <= x < ndim:
        raise ShapeErr(f"axis {x} is out of range for {ndim} dimensions", span,
                       "a scalar has no axes" if ndim == 0 else f"axes run from {-ndim} to {ndim - 1}")
    return x % ndim


def _describe(x: Any) -> str:
    """The builder's describe(), imported at call time: the builder imports this package."""
    from ..builder.scope import describe
    return describe(x)
