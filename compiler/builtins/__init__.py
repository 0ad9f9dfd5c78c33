"""The built-in functions of LANGUAGE.md §5 and §7, lowered to IR ops by the builder.

BUILTIN_IMPLS below is the one table of built-in names. The implementations live by concern:
  io.py            input, secret, reveal, output
  constructors.py  zeros, ones, full, arange, eye
  shapes.py        concat, stack, reshape, transpose, broadcast_to, len
  numeric.py       sum, mean, matmul, dot, outer, int, float, abs, min, max, where
  order.py         argmax, argmin, sort
  random.py        random_uniform, random_normal, permutations
  conv.py          im2col, col2im, conv_size (convolution gathers)
  args.py          reading a call's arguments (signature, shapes, dtypes, axes, parties)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .. import ast
from veil.runtime.diagnostics import UnsupportedErr
from .args import _shape_arg
from .conv import CONV
from .constructors import _arange, _eye, _fill, _full
from .io import _input, _output, _reveal, _secret
from .numeric import _abs, _cast, _dot, _extremum, _matmul, _mean, _outer, _sum, _where
from .order import ORDER
from .random import RANDOM
from .shapes import _broadcast_to, _concat, _len, _reshape, _stack, _transpose

if TYPE_CHECKING:
    from ..builder import Builder, Scope


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


# Every built-in name; None marks a name with no call of its own (range is loop syntax, fix and bool
# are dtype names), so calling it is reported as not supported.
BUILTIN_IMPLS: dict[str, Callable[..., Any] | None] = {
    "input": _input, "secret": _secret, "reveal": _reveal, "output": _output,
    "zeros": _fill(0.0), "ones": _fill(1.0), "full": _full, "arange": _arange, "eye": _eye,
    "concat": _concat, "stack": _stack, "reshape": _reshape, "transpose": _transpose,
    "broadcast_to": _broadcast_to, "sum": _sum, "mean": _mean, "matmul": _matmul, "dot": _dot,
    "outer": _outer, "len": _len, "int": _cast("int"), "float": _cast("float"), "range": None,
    "abs": _abs, "min": _extremum("min"), "max": _extremum("max"), "where": _where, "fix": None, "bool": None,
    **ORDER, **RANDOM, **CONV,
}
