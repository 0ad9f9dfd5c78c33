"""Order built-ins: argmax, argmin and sort. Each emits one op; on secret values the expansion
layer turns it into a comparison tree (argmax, argmin) or a sorting network (sort)."""
from __future__ import annotations

from veil.runtime.diagnostics import ShapeErr, TypeErr
from ..types import Type
from .args import Args, _axis
from .numeric import _operands


def _arg_extremum(name: str):
    def impl(b, e, scope):
        a = Args(b, name, e, scope, ["x", "axis"], 1)
        (x,) = _operands(b, [a.get("x")], e.span)
        ax = _axis(a.get("axis"), len(x.type.shape), a.span("axis"))
        if x.type.size == 0 or (ax is not None and x.type.shape[ax] == 0):
            raise ShapeErr(f"{name}() of an empty tensor", e.span)
        shape = () if ax is None else tuple(d for i, d in enumerate(x.type.shape) if i != ax)
        return b.emit(name, [x], Type(x.type.vis, "int", shape, 0), e.span, axis=ax)
    return impl


def _sort(b, e, scope):
    a = Args(b, "sort", e, scope, ["x", "axis"], 1)
    (x,) = _operands(b, [a.get("x")], e.span)
    if not x.type.shape:
        raise TypeErr("sort() of a scalar", e.span, "sort a tensor with at least one axis")
    axis = a.get("axis")
    ax = _axis(-1 if axis is None else axis, len(x.type.shape), a.span("axis"))
    return b.emit("sort", [x], x.type, e.span, axis=ax)


ORDER = {"argmax": _arg_extremum("argmax"), "argmin": _arg_extremum("argmin"), "sort": _sort}
