"""The built-in functions of LANGUAGE.md §5 and §7, lowered to IR ops by the builder."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import ast
from .errors import NameErr, ShapeErr, TypeErr, UnsupportedErr, closest
from .ir import InputDecl, Op, OutputDecl, Value
from .types import PUBLIC, SECRET, Type, join_dtype, join_vis, owner, private

if TYPE_CHECKING:
    from .build import Builder, Scope


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


def _shape_arg(x: Any, span) -> tuple[int, ...]:
    if isinstance(x, int) and not isinstance(x, bool):
        return (x,)
    if isinstance(x, (tuple, list)) and all(isinstance(i, int) and not isinstance(i, bool) for i in x):
        if any(i < 0 for i in x):
            raise ShapeErr(f"a shape has non-negative dims, got {tuple(x)}", span)
        return tuple(x)
    raise TypeErr("a shape is a tuple of compile-time ints, like (N, 16)", span)


def _dtype_arg(node: ast.Node | None, default: str, span) -> str:
    if node is None:
        return default
    name = node.id if isinstance(node, ast.Name) else node.value if isinstance(node, ast.Str) else None
    if name not in ("fix", "int", "bool"):
        raise TypeErr("dtype is one of fix, int, bool", span)
    return name


def _party_list(b: "Builder", node: ast.Node, scope) -> list[str]:
    items = node.items if isinstance(node, (ast.ListExpr, ast.TupleExpr)) else [node]
    return [b.party_arg(i, scope) for i in items]


def _axis(x: Any, ndim: int, span) -> int | None:
    if x is None:
        return None
    if not isinstance(x, int) or isinstance(x, bool):
        raise TypeErr("axis must be a compile-time int", span)
    if not -ndim <= x < max(ndim, 1):
        raise ShapeErr(f"axis {x} is out of range for {ndim} dimensions", span)
    return x % max(ndim, 1)


def call_builtin(b: "Builder", name: str, e: ast.Call, scope: "Scope") -> Any:
    fn = BUILTIN_IMPLS.get(name)
    if fn is None:
        raise UnsupportedErr(f"{name}() is not supported yet", e.span)
    return fn(b, e, scope)


def call_method(b: "Builder", name: str, base: Any, e: ast.Call, scope: "Scope") -> Any:
    if name == "reshape":
        dims = [b.expr(a, scope) for a in e.args]
        shape = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
        return b.reshape(b.tensor(base, e.span), _shape_arg(shape, e.span), e.span)
    raise UnsupportedErr(f".{name}() is not supported", e.span)


# ---- inputs, sharing, outputs ------------------------------------------------------------
def _input(b, e, scope):
    a = Args(b, "input", e, scope, ["party", "name", "shape", "dtype", "default", "head"], 3,
             raw=("party", "dtype"))
    party = b.party_arg(a.get("party"), scope)
    name = a.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeErr("an input's name is a string such as \"x\"", a.span("name"))
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    dtype = _dtype_arg(a.get("dtype"), "fix", a.span("dtype"))
    default = a.get("default")
    if default is not None and not isinstance(default, str):
        raise TypeErr("default= names a file, relative to the program's folder", a.span("default"))
    if b.loop_depth:
        raise UnsupportedErr("input() inside a loop is not supported", e.span, "read inputs at the top level")
    for d in b.prog.inputs:
        if d.party == party and d.name == name:
            raise NameErr(f"{party} already has an input named {name!r}", e.span)
    b.prog.inputs.append(InputDecl(party, name, shape, dtype, default, bool(a.get("head", False))))
    scale = b.frac_bits if dtype == "fix" else 0
    return b.emit("input", [], Type(private(party), dtype, shape, scale), e.span,
                  party=party, name=name, dtype=dtype)


def _secret(b, e, scope):
    a = Args(b, "secret", e, scope, ["x"], 1)
    return b.promote(b.tensor(a.get("x"), e.span), SECRET, e.span)


def _reveal(b, e, scope):
    a = Args(b, "reveal", e, scope, ["x", "to"], 1, raw=("to",))
    x = b.tensor(a.get("x"), e.span)
    if a.get("to") is not None:
        party = b.party_arg(a.get("to"), scope)
        if x.type.vis == PUBLIC or x.type.vis == private(party):
            return x
        x = b.lift(x, SECRET, e.span)
        return b.emit("reveal_to", [x], x.type.with_(vis=private(party)), e.span, party=party)
    if x.type.vis == PUBLIC:
        return x
    x = b.lift(x, SECRET, e.span)
    return b.emit("reveal", [x], x.type.with_(vis=PUBLIC), e.span)


def _output(b, e, scope):
    a = Args(b, "output", e, scope, ["x", "name", "to"], 1, raw=("to",))
    x = b.tensor(a.get("x"), e.span)
    name = a.get("name")
    if name is None:
        node = a.nodes["x"]
        if not isinstance(node, ast.Name):
            raise TypeErr("output() of an expression needs a name", e.span, 'output(expr, "name", to=alice)')
        name = node.id
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeErr("an output's name is an identifier-like string", a.span("name"))
    to = _party_list(b, a.get("to"), scope) if a.get("to") is not None else list(b.prog.parties)
    if b.loop_depth:
        raise UnsupportedErr("output() inside a loop is not supported", e.span, "output after the loop")
    for o in b.prog.outputs:
        if o.name == name and set(o.to) & set(to):
            raise NameErr(f"two outputs named {name!r} go to the same party", e.span)
    x = b.trunc(x, e.span)
    b.prog.outputs.append(OutputDecl(name, to, x.type.shape, x.type.dtype))
    b.block.ops.append(Op("output", [], [x], {"name": name, "to": to, "dtype": x.type.dtype,
                                              "scale": x.type.scale}, e.span))
    return None


# ---- constructors ------------------------------------------------------------------------
def _fill(value: float):
    def impl(b, e, scope):
        a = Args(b, e.func.id, e, scope, ["shape", "dtype"], 1, raw=("dtype",))
        shape = _shape_arg(a.get("shape"), a.span("shape"))
        dtype = _dtype_arg(a.get("dtype"), "fix", a.span("dtype"))
        return b.const(np.full(shape, value), dtype, e.span)
    return impl


def _full(b, e, scope):
    a = Args(b, "full", e, scope, ["shape", "value", "dtype"], 2, raw=("dtype",))
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    v = a.get("value")
    if isinstance(v, Value):
        return b.bcast(v, shape, e.span)
    default = "int" if isinstance(v, int) and not isinstance(v, bool) else "bool" if isinstance(v, bool) else "fix"
    return b.const(np.full(shape, v), _dtype_arg(a.get("dtype"), default, a.span("dtype")), e.span)


def _arange(b, e, scope):
    a = Args(b, "arange", e, scope, ["start", "stop", "step", "dtype"], 1, raw=("dtype",))
    args = [a.get(k) for k in ("start", "stop", "step") if a.get(k) is not None]
    arr = np.arange(*args)
    default = "int" if np.issubdtype(arr.dtype, np.integer) else "fix"
    return b.const(arr, _dtype_arg(a.get("dtype"), default, a.span("dtype")), e.span)


def _eye(b, e, scope):
    a = Args(b, "eye", e, scope, ["n", "dtype"], 1, raw=("dtype",))
    return b.const(np.eye(a.get("n")), _dtype_arg(a.get("dtype"), "fix", a.span("dtype")), e.span)


# ---- shape ops ---------------------------------------------------------------------------
def _join(b, xs: list[Value], span) -> list[Value]:
    """Bring tensors to one visibility, dtype and scale so they can be concatenated."""
    vis = xs[0].type.vis
    dtype = xs[0].type.dtype
    for x in xs[1:]:
        vis, dtype = join_vis(vis, x.type.vis), join_dtype(dtype, x.type.dtype) if x.type.dtype != dtype else dtype
    xs = [b.trunc(x, span) for x in xs]
    scale = b.frac_bits if dtype == "fix" else 0
    out = []
    for x in xs:
        x = b.as_dtype_scale(x, dtype, scale, span) if x.type.dtype != dtype or x.type.scale != scale else x
        out.append(b.promote(x, vis, span) if vis == SECRET else x)
    return out


def _concat(b, e, scope):
    a = Args(b, "concat", e, scope, ["xs", "axis"], 1)
    xs = a.get("xs")
    if not isinstance(xs, (tuple, list)) or not xs:
        raise TypeErr("concat takes a list of tensors: concat([a, b], axis=1)", e.span)
    xs = _join(b, [b.tensor(x, e.span) for x in xs], e.span)
    nd = len(xs[0].type.shape)
    axis = _axis(a.get("axis", 0), nd, a.span("axis"))
    for x in xs[1:]:
        s0, s1 = list(xs[0].type.shape), list(x.type.shape)
        if len(s1) != nd or s0[:axis] + s0[axis + 1:] != s1[:axis] + s1[axis + 1:]:
            raise ShapeErr(f"concat along axis {axis}: shapes {xs[0].type.shape} and {x.type.shape} differ "
                           f"off that axis", e.span)
    shape = list(xs[0].type.shape)
    shape[axis] = sum(x.type.shape[axis] for x in xs)
    return b.emit("concat", xs, xs[0].type.with_(shape=tuple(shape)), e.span, axis=axis)


def _stack(b, e, scope):
    a = Args(b, "stack", e, scope, ["xs", "axis"], 1)
    xs = a.get("xs")
    if not isinstance(xs, (tuple, list)) or not xs:
        raise TypeErr("stack takes a list of tensors", e.span)
    xs = _join(b, [b.tensor(x, e.span) for x in xs], e.span)
    for x in xs[1:]:
        if x.type.shape != xs[0].type.shape:
            raise ShapeErr(f"stack needs equal shapes, got {xs[0].type.shape} and {x.type.shape}", e.span)
    nd = len(xs[0].type.shape) + 1
    axis = _axis(a.get("axis", 0), nd, a.span("axis"))
    shape = list(xs[0].type.shape)
    shape.insert(axis, len(xs))
    return b.emit("stack", xs, xs[0].type.with_(shape=tuple(shape)), e.span, axis=axis)


def _reshape(b, e, scope):
    a = Args(b, "reshape", e, scope, ["x", "shape"], 2)
    return b.reshape(b.tensor(a.get("x"), e.span), _shape_arg(a.get("shape"), a.span("shape")), e.span)


def _transpose(b, e, scope):
    a = Args(b, "transpose", e, scope, ["x"], 1)
    x = b.tensor(a.get("x"), e.span)
    if len(x.type.shape) < 2:
        return x
    return b.emit("transpose", [x], x.type.with_(shape=tuple(reversed(x.type.shape))), e.span)


def _broadcast_to(b, e, scope):
    a = Args(b, "broadcast_to", e, scope, ["x", "shape"], 2)
    x = b.tensor(a.get("x"), e.span)
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    try:
        np.broadcast_shapes(x.type.shape, shape)
        if np.broadcast_shapes(x.type.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ShapeErr(f"cannot broadcast {x.type.shape} to {shape}", e.span) from None
    return b.bcast(x, shape, e.span)


# ---- reductions and products -------------------------------------------------------------
def _sum(b, e, scope):
    a = Args(b, "sum", e, scope, ["x", "axis"], 1)
    x = a.get("x")
    if isinstance(x, (list, tuple)) and not any(isinstance(i, Value) for i in x):
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
    a = Args(b, e.func.id, e, scope, ["a", "b"], 2)
    return b.binop("@", a.get("a"), a.get("b"), e.span)


def _outer(b, e, scope):
    a = Args(b, "outer", e, scope, ["a", "b"], 2)
    x, y = b.tensor(a.get("a"), e.span), b.tensor(a.get("b"), e.span)
    x = b.reshape(x, (x.type.size, 1), e.span)
    y = b.reshape(y, (1, y.type.size), e.span)
    return b.binop("@", x, y, e.span)


def _len(b, e, scope):
    a = Args(b, "len", e, scope, ["x"], 1)
    x = a.get("x")
    if isinstance(x, Value):
        if not x.type.shape:
            raise TypeErr("len() of a scalar", e.span)
        return x.type.shape[0]
    if isinstance(x, (tuple, list, str)):
        return len(x)
    raise TypeErr("len() takes a tensor or a tuple", e.span)


def _cast(kind: str):
    def impl(b, e, scope):
        a = Args(b, kind, e, scope, ["x"], 1)
        x = a.get("x")
        if not isinstance(x, Value):
            try:
                return int(x) if kind == "int" else float(x)
            except (TypeError, ValueError):
                raise TypeErr(f"{kind}() of {x!r}", e.span) from None
        if kind == "float":
            return b.as_dtype_scale(b.trunc(x, e.span), "fix", b.frac_bits, e.span)
        if x.type.dtype == "fix":
            raise UnsupportedErr("int() of a fix tensor is not supported yet", e.span)
        return b.retag(x, "int", e.span)
    return impl


def _compile_time_only(name: str):
    def impl(b, e, scope):
        vals = [b.expr(x, scope) for x in e.args]
        if any(isinstance(v, Value) for v in vals):
            raise UnsupportedErr(f"{name}() of tensors is not supported yet", e.span)
        fn = {"abs": abs, "min": min, "max": max}[name]
        return fn(*vals)
    return impl


BUILTIN_IMPLS = {
    "input": _input, "secret": _secret, "reveal": _reveal, "output": _output,
    "zeros": _fill(0.0), "ones": _fill(1.0), "full": _full, "arange": _arange, "eye": _eye,
    "concat": _concat, "stack": _stack, "reshape": _reshape, "transpose": _transpose,
    "broadcast_to": _broadcast_to, "sum": _sum, "mean": _mean, "matmul": _matmul, "dot": _matmul,
    "outer": _outer, "len": _len, "int": _cast("int"), "float": _cast("float"),
    "abs": _compile_time_only("abs"), "min": _compile_time_only("min"), "max": _compile_time_only("max"),
}
