"""The built-in functions of LANGUAGE.md §5 and §7, lowered to IR ops by the builder."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import ast
from veil.runtime.diagnostics import NameErr, ShapeErr, TypeErr, UnsupportedErr, closest
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


MAX_ELEMENTS = 1 << 40
MAX_CONST_ELEMENTS = 1 << 24


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


def call_builtin(b: "Builder", name: str, e: ast.Call, scope: "Scope") -> Any:
    fn = BUILTIN_IMPLS.get(name)
    if fn is None:
        raise UnsupportedErr(f"{name}() is not supported yet", e.span)
    return fn(b, e, scope)


def call_method(b: "Builder", name: str, base: Any, e: ast.Call, scope: "Scope") -> Any:
    if name == "reshape":
        dims = [b.expr(a, scope) for a in e.args]
        shape = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
        return b.reshape(b.tensor(base, e.span), _shape_arg(shape, e.span, infer=True), e.span)
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
def _filled(b, shape: tuple, value: Any, dtype: str, span) -> Value:
    """A public constant tensor of one value: a scalar constant broadcast (small bytecode)."""
    return b.bcast(b.const(value, dtype, span), shape, span)


def _fill(value: float):
    def impl(b, e, scope):
        a = Args(b, e.func.id, e, scope, ["shape", "dtype"], 1, raw=("dtype",))
        shape = _shape_arg(a.get("shape"), a.span("shape"))
        dtype = _dtype_arg(a.get("dtype"), "fix", a.span("dtype"))
        return _filled(b, shape, value, dtype, e.span)
    return impl


def _full(b, e, scope):
    a = Args(b, "full", e, scope, ["shape", "value", "dtype"], 2, raw=("dtype",))
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    v = a.get("value")
    if isinstance(v, Value):
        if a.get("dtype") is not None:
            raise TypeErr("full() of a tensor value takes no dtype", a.span("dtype"))
        from .build import _broadcast
        if _broadcast(v.type.shape, shape, e.span) != shape:
            raise ShapeErr(f"cannot fill shape {shape} with a value of shape {v.type.shape}", e.span)
        return b.bcast(v, shape, e.span)
    if not isinstance(v, (int, float, bool)):
        raise TypeErr(f"full()'s value is a number or a tensor, got {_describe(v)}", a.span("value"))
    default = "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "fix"
    return _filled(b, shape, v, _dtype_arg(a.get("dtype"), default, a.span("dtype")), e.span)


def _arange(b, e, scope):
    a = Args(b, "arange", e, scope, ["start", "stop", "step", "dtype"], 1, raw=("dtype",))
    args = [a.get(k) for k in ("start", "stop", "step") if a.get(k) is not None]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in args):
        raise TypeErr("arange() takes compile-time numbers", e.span, "e.g. arange(N) or arange(0, 1, 0.1)")
    if len(args) == 3 and args[2] == 0:
        raise TypeErr("arange() step must not be zero", a.span("step"))
    n = np.ceil((args[1] - args[0]) / args[2]) if len(args) == 3 else (args[1] - args[0] if len(args) == 2 else args[0])
    if not np.isfinite(n) or n > MAX_CONST_ELEMENTS:
        raise ShapeErr(f"arange() is too long (a public constant has at most {MAX_CONST_ELEMENTS} elements)", e.span)
    arr = np.arange(*args)
    default = "int" if np.issubdtype(arr.dtype, np.integer) else "fix"
    return b.const(arr, _dtype_arg(a.get("dtype"), default, a.span("dtype")), e.span)


def _eye(b, e, scope):
    a = Args(b, "eye", e, scope, ["n", "m", "dtype"], 1, raw=("dtype",))
    n, m = a.get("n"), a.get("m", a.get("n"))
    _const_size(_shape_arg((n, m), e.span), e.span)
    return b.const(np.eye(n, m), _dtype_arg(a.get("dtype"), "fix", a.span("dtype")), e.span)


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


def _tensor_list(b, e, scope, name: str) -> tuple[Args, list[Value]]:
    """The arguments of concat/stack: a non-empty list of tensors, brought to one type."""
    a = Args(b, name, e, scope, ["xs", "axis"], 1)
    xs = a.get("xs")
    if not isinstance(xs, (tuple, list)) or not xs:
        raise TypeErr(f"{name} takes a list of tensors: {name}([a, b], axis=0)", e.span)
    return a, _join(b, [b.tensor(x, e.span) for x in xs], e.span)


def _concat(b, e, scope):
    a, xs = _tensor_list(b, e, scope, "concat")
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
    a, xs = _tensor_list(b, e, scope, "stack")
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
    return b.reshape(b.tensor(a.get("x"), e.span), _shape_arg(a.get("shape"), a.span("shape"), infer=True), e.span)


def _transpose(b, e, scope):
    a = Args(b, "transpose", e, scope, ["x", "axes"], 1)
    x = b.tensor(a.get("x"), e.span)
    nd = len(x.type.shape)
    axes = a.get("axes")
    if axes is not None:
        if not isinstance(axes, (tuple, list)) or sorted(_axis(i, nd, a.span("axes")) for i in axes) != list(range(nd)):
            raise ShapeErr(f"transpose axes {axes!r} are not a permutation of the {nd} axes", a.span("axes"))
        axes = [i % nd for i in axes]
        if axes == list(range(nd)):
            return x
        shape = tuple(x.type.shape[i] for i in axes)
        return b.emit("transpose", [x], x.type.with_(shape=shape), e.span, axes=axes)
    if nd < 2:
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


def _len(b, e, scope):
    a = Args(b, "len", e, scope, ["x"], 1)
    x = a.get("x")
    if isinstance(x, Value):
        if not x.type.shape:
            raise TypeErr("len() of a scalar", e.span, "a scalar has shape (); len() needs at least one axis")
        return x.type.shape[0]
    if isinstance(x, (tuple, list, str)):
        return len(x)
    raise TypeErr(f"len() takes a tensor or a tuple, got {_describe(x)}", e.span)


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


def _describe(x: Any) -> str:
    from .build import describe
    return describe(x)


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
    from .build import _broadcast
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
        from .build import _broadcast
        out = xs[0]
        for y in xs[1:]:
            shape = _broadcast(out.type.shape, y.type.shape, e.span)
            out = b.emit("minimum" if name == "min" else "maximum", [out, y], out.type.with_(shape=shape), e.span)
        return out
    return impl


BUILTIN_IMPLS = {
    "input": _input, "secret": _secret, "reveal": _reveal, "output": _output,
    "zeros": _fill(0.0), "ones": _fill(1.0), "full": _full, "arange": _arange, "eye": _eye,
    "concat": _concat, "stack": _stack, "reshape": _reshape, "transpose": _transpose,
    "broadcast_to": _broadcast_to, "sum": _sum, "mean": _mean, "matmul": _matmul, "dot": _dot,
    "outer": _outer, "len": _len, "int": _cast("int"), "float": _cast("float"),
    "abs": _abs, "min": _extremum("min"), "max": _extremum("max"), "where": _where,
}
