"""Subscripts: tuple indexing, static slices, and dynamic slices by a run-time public int: an
affine function of loop variables and of "bounded" ints (an element of a public int constant
such as a permutations() table, or a loop variable's % and //), whose range is known at compile
time so a slice's bounds are checked before the program runs."""
from __future__ import annotations

from typing import Any

from .. import ast
from veil.runtime.diagnostics import ShapeErr, Span, TypeErr
from ..ir import Value
from ..types import PUBLIC
from .scope import Scope, _is_int_const, describe


class Indexing:
    """Builder methods for x[...]: static slices and dynamic slices by a loop variable."""

    def subscript(self, e: ast.Subscript, scope: Scope) -> Any:
        base = self.expr(e.value, scope)
        if isinstance(base, (tuple, list)) and not isinstance(base, Value) and self._runtime_index(e, scope):
            base = self.tensor(base, e.span)  # a literal list (of numbers) indexed by a loop variable
        if isinstance(base, (tuple, list)) and not isinstance(base, Value):
            if len(e.index) != 1:
                raise TypeErr("a tuple takes one index", e.span)
            idx = e.index[0]
            if isinstance(idx, ast.Slice):
                parts = [None if n is None else self.expr(n, scope) for n in (idx.lo, idx.hi, idx.step)]
                if not all(p is None or _is_int_const(p) for p in parts) or parts[2] == 0:
                    raise TypeErr("a tuple's slice bounds are compile-time ints (and the step is not 0)", idx.span)
                return base[slice(*parts)]
            i = self.expr(idx, scope)
            if not _is_int_const(i):
                raise TypeErr("a tuple index must be a compile-time int", idx.span)
            try:
                return base[i]
            except IndexError:
                raise TypeErr(f"index {i} out of range for a tuple of {len(base)}", idx.span) from None
        x = self.tensor(base, e.span)
        shape = x.type.shape
        if len(e.index) > len(shape):
            raise ShapeErr(f"too many indices ({len(e.index)}) for a tensor of shape {shape}", e.span)
        static: list = []
        dynamic: list = []
        for axis, idx in enumerate(e.index):
            dim = shape[axis]
            if isinstance(idx, ast.Slice):
                parts = [None if n is None else self.expr(n, scope) for n in (idx.lo, idx.hi, idx.step)]
                if any(isinstance(p, Value) for p in parts):
                    for p in parts:
                        if isinstance(p, Value):
                            self.check_index_value(p, idx.span)
                    dynamic.append((axis, self.dynamic_slice(parts, dim, idx.span, scope)))
                    static.append(("s", None, None, None))
                    continue
                for p in parts:
                    if p is not None and not _is_int_const(p):
                        raise TypeErr(f"slice bounds must be ints, got {describe(p)}", idx.span,
                                      "use int(...) or // to get an int bound")
                if parts[2] == 0:
                    raise TypeErr("a slice step must not be zero", idx.span)
                sl = slice(*parts)
                static.append(("s",) + sl.indices(dim))
            else:
                i = self.expr(idx, scope)
                if isinstance(i, Value):
                    self.check_index_value(i, idx.span)
                    dynamic.append((axis, self.dynamic_slice([i, self.binop("+", i, 1, idx.span), None],
                                                             dim, idx.span, scope, drop=True)))
                    static.append(("s", None, None, None))
                    continue
                if not _is_int_const(i):
                    raise TypeErr(f"an index must be an int, got {describe(i)}", idx.span,
                                  "indices are public ints: literals, params, loop variables")
                if not -dim <= i < dim:
                    raise ShapeErr(f"index {i} is out of range for axis {axis} of size {dim}", idx.span)
                static.append(("i", i % dim))
        static.extend(("s", 0, d, 1) for d in shape[len(e.index):])
        return self.keep_range(x, self.emit_subscript(x, static, dynamic, e.span))

    def emit_subscript(self, x: Value, static: list, dynamic: list, span: Span) -> Value:
        """The dslice ops (one per run-time index) and the one static slice of a subscript."""
        v = x
        for axis, (start, length, step, drop) in dynamic:
            dshape = list(v.type.shape)
            dshape[axis] = length
            v = self.emit("dslice", [v, start], v.type.with_(shape=tuple(dshape)), span,
                          axis=axis, length=length, step=step)
            static[axis] = ("i", 0) if drop else ("s", 0, length, 1)
        if all(s[0] == "s" and s[1:] == (0, d, 1) for s, d in zip(static, v.type.shape)):
            return v
        res_shape = tuple(len(range(s[1], s[2], s[3])) for s in static if s[0] == "s")
        # a negative step's stop of -1 means "past index 0", which numpy spells None
        key = [list(s[:2]) + [None if s[2] < 0 else s[2], s[3]] if s[0] == "s" else list(s) for s in static]
        return self.emit("slice", [v], v.type.with_(shape=res_shape), span, key=key)

    def _runtime_index(self, e: ast.Subscript, scope: Scope) -> bool:
        """Whether a subscript's index is computed at run time (a loop variable, say)."""
        for idx in e.index:
            parts = [idx.lo, idx.hi, idx.step] if isinstance(idx, ast.Slice) else [idx]
            if any(p is not None and isinstance(self.expr(p, scope), Value) for p in parts):
                return True
        return False

    def keep_range(self, x: Value, v: Value) -> Value:
        """Elements of a public int tensor with known bounds keep them; a scalar one becomes a
        bounded index (it may start a slice: x[j * B:(j + 1) * B])."""
        known = self.int_ranges.get(x.id)
        if known is not None and v.type.vis == PUBLIC and v.type.dtype == "int":
            self.int_ranges[v.id] = known
            if v.type.shape == () and v.id not in self.affine:
                self.bounded_index(v, *known)
        return v

    def bounded_index(self, v: Value, lo: int, hi: int) -> None:
        """A run-time public int scalar known to lie in [lo, hi]: a variable of affine indices."""
        self.affine[v.id] = ({v.id: 1}, 0)
        self.loop_ranges[v.id] = (lo, hi)

    def check_index_value(self, i: Value, span: Span) -> None:
        """A run-time index must be a public int scalar (a loop variable's affine function)."""
        if i.type.vis != PUBLIC or i.type.dtype != "int" or i.type.shape != ():
            raise TypeErr(f"cannot index by a {i.type}: indices are public int scalars", span,
                          "index by literals, params or loop variables; to pick values by a condition "
                          "use where(c, a, b)")

    def dynamic_slice(self, parts, dim, span, scope, drop=False):
        lo, hi, step = parts
        step = 1 if step is None else step
        if isinstance(step, Value) or not _is_int_const(step) or step <= 0:
            raise TypeErr("a slice by a loop variable needs a positive compile-time step", span)
        lo = 0 if lo is None else lo
        if hi is None:
            raise TypeErr("a slice by a loop variable needs both bounds", span,
                          "write x[i * B:(i + 1) * B]")
        if (lo is not None and not isinstance(lo, (int, Value))) or isinstance(lo, bool) or \
                not isinstance(hi, (int, Value)) or isinstance(hi, bool):
            raise TypeErr("slice bounds must be ints", span)
        alo, ahi = self._affine_of(lo, span), self._affine_of(hi, span)
        diff = {i: ahi[0].get(i, 0) - alo[0].get(i, 0) for i in set(alo[0]) | set(ahi[0])}
        if any(diff.values()):
            raise TypeErr("this slice's length depends on the loop variable", span,
                          "a slice's length must be known at compile time, e.g. x[i * B:(i + 1) * B]")
        width = ahi[1] - alo[1]
        length = max(0, -(-width // step))
        smin, smax = self._affine_range(alo)
        if smin < 0 or smax + (length - 1) * step >= dim and length > 0:
            raise ShapeErr(f"this slice runs out of bounds: start goes from {smin} to {smax}, length {length}, "
                           f"axis size {dim}", span, "check the loop's range against the tensor's shape")
        start = lo if isinstance(lo, Value) else self.const(lo, "int", span)
        return (start, length, step, drop)

    def _affine_of(self, v, span):
        if isinstance(v, int):
            return ({}, v)
        if isinstance(v, Value) and v.id in self.affine:
            return self.affine[v.id]
        raise TypeErr("a slice bound computed at run time must be a loop variable (or an element of a public "
                      "int constant, e.g. order[epoch, i]) times a constant plus a constant (like j * B + c)", span,
                      "a slice's start must have bounds known at compile time and its length must be a constant")

    def _affine_range(self, aff):
        lo = hi = aff[1]
        for var, c in aff[0].items():
            a, b = self.loop_ranges[var]
            lo += min(c * a, c * b)
            hi += max(c * a, c * b)
        return lo, hi
