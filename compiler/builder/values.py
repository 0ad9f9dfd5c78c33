"""Making and converting values: constants, emitting ops, visibility promotion, dtype and scale
changes, broadcasting and reshaping."""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.diagnostics import ShapeErr, Span, TypeErr
from ..ir import Op, Value
from ..limits import INT_LIMIT, MAX_CONST_ELEMENTS
from ..types import PUBLIC, SECRET, Type, owner
from .scope import describe


def _broadcast(a: tuple, b: tuple, span: Span) -> tuple:
    """The shape two shapes broadcast to (numpy's rule), or a ShapeErr at `span`."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ShapeErr(f"shapes {a} and {b} do not broadcast", span,
                       "make the shapes equal, or use reshape/broadcast_to") from None


class Values:
    """Builder methods that make values and convert them to the type an op needs."""

    def emit(self, opcode: str, ins: list[Value], t: Type, span: Span | None, **attrs) -> Value:
        v = self.prog.new_value(t)
        self.block.ops.append(Op(opcode, [v], list(ins), attrs, self.at(span)))
        return v

    def at(self, span: Span | None) -> Span | None:
        """A span inside an inlined function, chained to the user's line that called it."""
        if span is None or not self.call_sites:
            return span
        return span.called_from(self.call_sites[-1])

    def scalar_factor(self, v: float, span: Span) -> Value:
        """A public fix scalar to multiply by, with up to F extra fractional bits so small factors
        (1/n, learning rates, polynomial coefficients) keep ~16 significant bits; the product's
        truncation removes them again."""
        F = self.frac_bits
        extra = 0 if v == 0 else int(min(F, max(0, np.floor(-np.log2(abs(v))))))
        return self.const(v, "fix", span, scale=F + extra)

    def const(self, value: Any, dtype: str | None, span: Span, vis: str = PUBLIC, scale: int | None = None) -> Value:
        try:
            arr = np.asarray(value)
        except (ValueError, OverflowError):
            arr = np.asarray(None)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeErr("not a numeric constant: a tensor literal is a list of numbers with a regular "
                          "shape, each fitting in 64 bits", span)
        if arr.size > MAX_CONST_ELEMENTS:
            raise ShapeErr(f"a public constant of {arr.size} elements is too large (limit {MAX_CONST_ELEMENTS})",
                           span, "build large tensors from inputs, or broadcast a small constant")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise TypeErr("a constant is infinite or not a number", span)
        if arr.dtype.kind == "u" and np.any(arr >= INT_LIMIT):
            raise TypeErr("a constant does not fit in a 64-bit int", span)
        if dtype == "fix" and np.any(np.abs(arr.astype(np.float64)) * 2.0 ** (scale or self.frac_bits) >= 2.0 ** 63):
            raise TypeErr(f"the constant {float(np.max(np.abs(arr))):g} is out of the fixed-point range "
                          f"(|v| < 2^{63 - (scale or self.frac_bits)})", span, "scale it down, or lower --frac-bits")
        if dtype is None:
            dtype = "bool" if arr.dtype == bool else ("int" if np.issubdtype(arr.dtype, np.integer) else "fix")
        F = self.frac_bits
        if dtype == "fix":
            scale = F if scale is None else scale
            ring = np.round(arr.astype(np.float64) * 2.0 ** scale).astype(np.int64).view(np.uint64)
        else:
            ring = arr.astype(np.int64).view(np.uint64)
            scale = 0
        t = Type(vis, dtype, tuple(arr.shape), scale)
        v = self.emit("const", [], t, span, value=np.array(ring, copy=True))
        if dtype == "int" and arr.ndim == 0:
            self.affine[v.id] = ({}, int(arr))
        if dtype == "int" and arr.size and vis == PUBLIC:
            self.int_ranges[v.id] = (int(arr.min()), int(arr.max()))
        return v

    def promote(self, v: Value, vis: str, span: Span | None) -> Value:
        """Raise a value's visibility: public/private -> secret shares, public -> private.
        A value is shared once: later uses in this block or nested ones reuse the shares."""
        if v.type.vis == vis:
            return v
        if vis == SECRET:
            cached = self.shared.get(v.id)
            if cached is not None and any(cached[0] is b for b in self.open_blocks()):
                return cached[1]
            src = owner(v.type.vis)
            if src is None:
                out = self.emit("from_public", [v], v.type.with_(vis=SECRET), span)
            else:
                out = self.emit("share", [v], v.type.with_(vis=SECRET), span, owner=src)
            self.shared[v.id] = (self.block, out)
            return out
        if v.type.vis == PUBLIC and owner(vis):
            return v  # a public value is known to every party already
        raise TypeErr(f"cannot turn a {v.type.vis} value into {vis}", span)

    def tensor(self, x: Any, span: Span, dtype: str | None = None) -> Value:
        """A Value for x, materializing compile-time numbers and lists as public constants."""
        if isinstance(x, Value):
            return x
        if isinstance(x, (int, float, bool, list, tuple)) and not isinstance(x, str):
            try:
                return self.const(x, dtype, span)
            except (TypeErr, ValueError):
                pass
        raise TypeErr(f"expected a tensor, got {describe(x)}", span)

    def as_dtype_scale(self, v: Value, dtype: str, scale: int, span: Span) -> Value:
        """Convert int/bool to fix (shift by F) or align a fix value's scale upwards."""
        if v.type.dtype == dtype and v.type.scale == scale:
            return v
        if scale < v.type.scale:
            raise TypeErr("internal: cannot lower a scale without truncation", span)
        if scale == v.type.scale:
            return self.retag(v, dtype, span)
        return self.emit("lshift", [v], v.type.with_(dtype=dtype, scale=scale), span, bits=scale - v.type.scale)

    def retag(self, v: Value, dtype: str, span: Span) -> Value:
        if v.type.dtype == dtype:
            return v
        return self.emit("retag", [v], v.type.with_(dtype=dtype), span)

    def lift(self, v: Value, vis: str, span: Span) -> Value:
        """Bring an operand to the visibility an op runs at (shares only what must be shared)."""
        if vis == SECRET and v.type.vis != PUBLIC:
            return self.promote(v, SECRET, span)
        return v

    def trunc(self, v: Value, span: Span) -> Value:
        """A fix product has double scale: truncate back to F (placement optimized later)."""
        F = self.frac_bits
        if v.type.dtype != "fix" or v.type.scale == F:
            return v
        return self.emit("trunc", [v], v.type.with_(scale=F), span, bits=v.type.scale - F)

    def bcast(self, v: Value, shape: tuple, span: Span) -> Value:
        if v.type.shape == shape:
            return v
        return self.emit("broadcast", [v], v.type.with_(shape=shape), span, shape=shape)

    def reshape(self, v: Value, shape: tuple, span: Span) -> Value:
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            if known == 0 or v.type.size % known:
                raise ShapeErr(f"cannot reshape {v.type.shape} into {shape}", span)
            shape = tuple(v.type.size // known if s == -1 else s for s in shape)
        if int(np.prod(shape)) != v.type.size:
            raise ShapeErr(f"cannot reshape {v.type.shape} ({v.type.size} elements) into {shape}", span)
        if shape == v.type.shape:
            return v
        return self.emit("reshape", [v], v.type.with_(shape=shape), span, shape=shape)
