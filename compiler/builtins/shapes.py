"""Built-ins that rearrange tensors: concat, stack, reshape, transpose, broadcast_to, len."""
from __future__ import annotations

import numpy as np

from veil.runtime.diagnostics import ShapeErr, TypeErr
from ..ir import Value
from ..types import SECRET, join_dtype, join_vis
from .args import Args, _axis, _describe, _shape_arg


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
