"""Numeric built-ins: reductions (sum, mean, min, max), products (matmul, dot, outer), casts,
where and abs."""
from __future__ import annotations

from typing import Any

from veil.runtime.diagnostics import ShapeErr, TypeErr
from ..ir import Value
from ..types import Type, join_dtype, join_vis
from .args import Args, _axis, _describe


def _sum(b, e, scope):
    a = Args(b, "sum", e, scope, ["x", "axis"], 1)
    x = a.get("x")
    if isinstance(x, (list, tuple)) and not any(isinstance(i, Value) for i in x) and a.get("axis") is None:
        if all(isinstance(i, (int, float, bool)) for i in x):
            return sum(x)
    x = b.tensor(x, e.span)
    return _reduce_sum(b, x, a.get("axis"), a.span("axis"), e.span)


def _reduce_sum(b, x: Value, axis: Any, axis_span, span) -> Value:
    nd = len(x.type.shape)
    ax = _axis(axis, nd, axis_span)
    shape = () if ax is None else tuple(d for i, d in enumerate(x.type.shape) if i != ax)
    dtype = "int" if x.type.dtype == "bool" else x.type.dtype
    return b.emit("sum", [x], x.type.with_(shape=shape, dtype=dtype), span, axis=ax)


def _mean(b, e, scope):
    a = Args(b, "mean", e, scope, ["x", "axis"], 1)
    x = b.tensor(a.get("x"), e.span)
    nd = len(x.type.shape)
    ax = _axis(a.get("axis"), nd, a.span("axis"))
    n = x.type.size if ax is None else x.type.shape[ax]
    if n == 0:
        raise ShapeErr("mean of an empty tensor", e.span)
    s = _reduce_sum(b, x, a.get("axis"), a.span("axis"), e.span)
    return b.binop("*", s, 1.0 / n, e.span)


def _matmul(b, e, scope):
    a = Args(b, "matmul", e, scope, ["a", "b"], 2)
    return b.binop("@", b.tensor(a.get("a"), e.span), b.tensor(a.get("b"), e.span), e.span)


def _dot(b, e, scope):
    a = Args(b, "dot", e, scope, ["a", "b"], 2)
    x, y = b.tensor(a.get("a"), e.span), b.tensor(a.get("b"), e.span)
    if not x.type.shape or not y.type.shape:
        return b.binop("*", x, y, e.span)  # numpy: dot with a scalar multiplies
    return b.binop("@", x, y, e.span)


def _outer(b, e, scope):
    a = Args(b, "outer", e, scope, ["a", "b"], 2)
    x, y = b.tensor(a.get("a"), e.span), b.tensor(a.get("b"), e.span)
    x = b.reshape(x, (x.type.size, 1), e.span)
    y = b.reshape(y, (1, y.type.size), e.span)
    return b.binop("@", x, y, e.span)


def _cast(kind: str):
    def impl(b, e, scope):
        a = Args(b, kind, e, scope, ["x"], 1)
        x = a.get("x")
        if not isinstance(x, Value):
            if isinstance(x, (list, tuple)):
                x = b.tensor(x, e.span)
            else:
                if not isinstance(x, (int, float, bool)):
                    raise TypeErr(f"{kind}() takes a number or a tensor, got {_describe(x)}", e.span)
                try:
                    return int(x) if kind == "int" else float(x)
                except (OverflowError, ValueError):
                    raise TypeErr(f"{kind}() of {x!r}", e.span) from None
        if kind == "float":
            return b.as_dtype_scale(b.trunc(x, e.span), "fix", b.frac_bits, e.span)
        if x.type.dtype == "fix":
            x = b.trunc(x, e.span)
            return b.emit("toint", [x], x.type.with_(dtype="int", scale=0), e.span, bits=x.type.scale)
        return b.retag(x, "int", e.span)
    return impl


def _operands(b, xs: list, span) -> list[Value]:
    """Bring tensors to one visibility, dtype and scale for an elementwise op (bools count as ints)."""
    vs = [b.tensor(x, span) for x in xs]
    vis = vs[0].type.vis
    for v in vs[1:]:
        vis = join_vis(vis, v.type.vis)
    dtype = "int"
    for v in vs:
        dtype = join_dtype(dtype, v.type.dtype)
    if all(v.type.dtype == "bool" for v in vs):
        dtype = "bool"
    scale = b.frac_bits if dtype == "fix" else 0
    out = []
    for v in vs:
        v = b.lift(b.trunc(v, span), vis, span)
        if v.type.dtype != dtype or v.type.scale != scale:
            v = b.as_dtype_scale(v, dtype, scale, span)
        out.append(v)
    return out


def _where(b, e, scope):
    a = Args(b, "where", e, scope, ["c", "a", "b"], 3)
    c = a.get("c")
    if not isinstance(c, Value):
        if isinstance(c, (bool, int, float)):
            return a.get("a") if c else a.get("b")
        c = b.tensor(c, a.span("c"))
    if c.type.dtype != "bool":
        raise TypeErr(f"where()'s condition must be bool, got {c.type.dtype}", a.span("c"),
                      "compare first, e.g. where(x > 0, x, 0.0)")
    x, y = _operands(b, [a.get("a"), a.get("b")], e.span)
    from ..builder.values import _broadcast
    shape = _broadcast(_broadcast(c.type.shape, x.type.shape, e.span), y.type.shape, e.span)
    vis = join_vis(c.type.vis, x.type.vis)
    c, x, y = (b.lift(v, vis, e.span) for v in (c, x, y))
    return b.emit("where", [c, x, y], Type(vis, x.type.dtype, shape, x.type.scale), e.span)


def _abs(b, e, scope):
    a = Args(b, "abs", e, scope, ["x"], 1)
    x = a.get("x")
    if isinstance(x, (int, float)):
        return abs(x)
    (x,) = _operands(b, [x], e.span)
    if x.type.dtype == "bool":
        return x
    return b.emit("abs", [x], x.type, e.span)


def _extremum(name: str):
    def impl(b, e, scope):
        if e.kwargs and any(k.name != "axis" for k in e.kwargs):
            bad = next(k for k in e.kwargs if k.name != "axis")
            raise TypeErr(f"{name}() has no keyword {bad.name!r}", bad.span, "its keyword is axis=")
        vals = [b.expr(x, scope) for x in e.args]
        axis_node = next((k for k in e.kwargs if k.name == "axis"), None)
        if not vals:
            raise TypeErr(f"{name}() takes at least one argument", e.span)
        if len(vals) == 1:
            x = vals[0]
            if not isinstance(x, Value) and axis_node is None:
                if isinstance(x, (list, tuple)) and x and all(isinstance(i, (int, float, bool)) for i in x):
                    return (min if name == "min" else max)(x)
                if isinstance(x, (int, float, bool)):
                    return x
            (x,) = _operands(b, [x], e.span)
            ax = _axis(b.expr(axis_node.value, scope) if axis_node else None, len(x.type.shape),
                       axis_node.span if axis_node else e.span)
            if x.type.size == 0 or (ax is not None and x.type.shape[ax] == 0):
                raise ShapeErr(f"{name}() of an empty tensor", e.span)
            shape = () if ax is None else tuple(d for i, d in enumerate(x.type.shape) if i != ax)
            return b.emit("r" + name, [x], x.type.with_(shape=shape), e.span, axis=ax)
        if axis_node is not None:
            raise TypeErr(f"{name}(a, b, ...) is elementwise and takes no axis", axis_node.span)
        if not any(isinstance(v, Value) for v in vals):
            if all(isinstance(v, (int, float, bool)) for v in vals):
                return (min if name == "min" else max)(vals)
        xs = _operands(b, vals, e.span)
        from ..builder.values import _broadcast
        out = xs[0]
        for y in xs[1:]:
            shape = _broadcast(out.type.shape, y.type.shape, e.span)
            out = b.emit("minimum" if name == "min" else "maximum", [out, y], out.type.with_(shape=shape), e.span)
        return out
    return impl
