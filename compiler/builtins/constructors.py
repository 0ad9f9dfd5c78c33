"""Built-ins that make public constant tensors: zeros, ones, full, arange, eye."""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.diagnostics import ShapeErr, TypeErr
from ..ir import Value
from ..limits import MAX_CONST_ELEMENTS
from .args import Args, _const_size, _describe, _dtype_arg, _shape_arg


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
        from ..builder.values import _broadcast
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
