"""Expressions: names, literals, operators (arithmetic, comparison, logic, unary) and attributes."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ast
from veil.runtime.diagnostics import NameErr, ShapeErr, Span, TypeErr, UnsupportedErr, closest
from ..builtins import BUILTIN_IMPLS
from ..ir import Value
from ..limits import INT_LIMIT
from ..types import PUBLIC, SECRET, Type, join_dtype, join_vis
from .scope import POISON, Module, Scope, _is_int_const, _Poisoned, describe
from .values import _broadcast


class Expressions:
    """Builder methods that evaluate expressions to compile-time values or IR values."""

    def expr(self, e: ast.Node, scope: Scope) -> Any:
        if isinstance(e, ast.Num):
            return e.value
        if isinstance(e, ast.Bool):
            return e.value
        if isinstance(e, ast.Str):
            return e.value
        if isinstance(e, ast.Name):
            try:
                v = scope.lookup(e.id)
            except KeyError:
                if e.id in BUILTIN_IMPLS:
                    return ("builtin", e.id)
                raise self.undefined(e, scope) from None
            if v is POISON:
                raise _Poisoned()
            return v
        if isinstance(e, (ast.TupleExpr, ast.ListExpr)):
            items = [self.expr(i, scope) for i in e.items]
            if isinstance(e, ast.ListExpr) and items and all(isinstance(i, (int, float, bool, list)) for i in items):
                return list(items)
            return tuple(items)
        if isinstance(e, ast.BinOp):
            return self.binop(e.op, self.expr(e.left, scope), self.expr(e.right, scope), e.span)
        if isinstance(e, ast.Unary):
            x = self.expr(e.operand, scope)
            return self.unary(e.op, x, e.span)
        if isinstance(e, ast.Compare):
            return self.compare(e.op, self.expr(e.left, scope), self.expr(e.right, scope), e.span)
        if isinstance(e, ast.Logic):
            a = self.expr(e.left, scope)
            if isinstance(a, Value):
                raise TypeErr(f"`{e.op}` works on compile-time values only", e.span, "use & and | on bools")
            if (e.op == "and" and not a) or (e.op == "or" and a):
                return a
            b = self.expr(e.right, scope)
            if isinstance(b, Value):
                raise TypeErr(f"`{e.op}` works on compile-time values only", e.span, "use & and | on bools")
            return b
        if isinstance(e, ast.Call):
            return self.call(e, scope)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, scope)
        if isinstance(e, ast.Subscript):
            return self.subscript(e, scope)
        raise UnsupportedErr(f"unsupported expression {type(e).__name__}", e.span)

    def undefined(self, e: ast.Name, scope: Scope) -> NameErr:
        """The error for an unknown name: a loop-local name used after its loop, or a typo."""
        gone = scope.gone_at(e.id)
        if gone is not None:
            loop, is_var = gone
            if is_var:
                return NameErr(f"the loop variable {e.id!r} exists only inside its loop (line {loop.line})",
                               e.span, "use the last value explicitly, e.g. a param or a literal")
            return NameErr(f"{e.id!r} is assigned only inside the loop at line {loop.line}, so it does not "
                           "exist after it", e.span,
                           f"to carry it out of the loop, give {e.id!r} a value of the same shape before the "
                           "loop (e.g. zeros(...))")
        if e.id in ("break", "continue", "None", "pass"):
            hint = {"None": "veil has no None: use a number, or leave the argument out"}.get(
                e.id, "a loop always runs all its iterations; select results with where(c, a, b)")
            return NameErr(f"`{e.id}` is not part of the veil language", e.span, hint)
        near = closest(e.id, [n for n in scope.known() if not n.startswith("_")] + list(BUILTIN_IMPLS))
        return NameErr(f"name {e.id!r} is not defined", e.span,
                       f"did you mean {near}?" if near else "define it first, or import it (from ml import ...)")

    def binop(self, op: str, a: Any, b: Any, span: Span) -> Any:
        if not isinstance(a, Value) and not isinstance(b, Value):
            return self.fold_binop(op, a, b, span)
        for x in (a, b):
            if not isinstance(x, (Value, int, float, bool, list, tuple)):
                raise TypeErr(f"cannot apply {op} to {describe(x)}", span)
        if op in ("+", "-", "*", "@"):
            if op == "*" and (_is_int_const(a) or _is_int_const(b)):
                return self.scale_by_int(a, b, span)
            if op == "*" and (isinstance(a, float) or isinstance(b, float)):
                x, v = (a, b) if isinstance(b, float) else (b, a)
                return self.arith("*", self.tensor(x, span), self.scalar_factor(v, span), span)
            x, y = self.tensor(a, span), self.tensor(b, span)
            return self.arith(op, x, y, span)
        if op == "/":
            if isinstance(b, Value):
                return self.divide(self.tensor(a, span), b, span)
            if not isinstance(b, (int, float)) or isinstance(b, bool):
                raise TypeErr(f"cannot divide by {describe(b)}", span)
            if b == 0:
                raise TypeErr("division by zero", span)
            return self.binop("*", a, 1.0 / float(b), span)
        if op in ("//", "%"):
            return self.floordiv_mod(op, self.tensor(a, span), self.tensor(b, span), span)
        if op == "**":
            if isinstance(b, Value):
                raise TypeErr("`**` takes an exponent known at compile time", span,
                              "the exponent must be a non-negative int literal or param")
            if not (isinstance(b, int) and not isinstance(b, bool) and b >= 0):
                raise TypeErr(f"`**` takes a non-negative int exponent, got {b!r}", span,
                              "for roots and real powers use sqrt/exp/log from ml")
            x = self.tensor(a, span)
            if b == 0:
                one = self.const(1, "int" if x.type.dtype == "bool" else x.type.dtype, span)
                return self.bcast(one, x.type.shape, span)
            if b > 1 << 16:
                raise TypeErr(f"exponent {b} is too large", span)
            result, base, e = None, x, b
            while e:
                if e & 1:
                    result = base if result is None else self.arith("*", result, base, span)
                e >>= 1
                if e:
                    base = self.arith("*", base, base, span)
            return result
        if op in ("&", "|"):
            x, y = self.tensor(a, span), self.tensor(b, span)
            if x.type.dtype != "bool" or y.type.dtype != "bool":
                raise TypeErr(f"`{op}` works on bools, got {x.type.dtype} and {y.type.dtype}", span,
                              "compare first, e.g. (x > 0) & (y < 1)")
            vis = join_vis(x.type.vis, y.type.vis)
            x, y = self.lift(x, vis, span), self.lift(y, vis, span)
            shape = _broadcast(x.type.shape, y.type.shape, span)
            return self.emit("bitand" if op == "&" else "bitor", [x, y], Type(vis, "bool", shape, 0), span)
        raise UnsupportedErr(f"operator {op} is not supported", span)

    def divide(self, x: Value, y: Value, span: Span) -> Value:
        """x / y by a run-time value: a fix quotient, exact where one party (or everyone) knows both;
        a secret quotient is the standard library's divide: x times the reciprocal of y
        (docs/functions.md)."""
        vis = join_vis(x.type.vis, y.type.vis)
        if vis == SECRET:
            return self.call_library("ml", "divide", [x, y], span)
        x, y = self.lift(self.trunc(x, span), vis, span), self.lift(self.trunc(y, span), vis, span)
        F = self.frac_bits
        x, y = self.as_dtype_scale(x, "fix", F, span), self.as_dtype_scale(y, "fix", F, span)
        shape = _broadcast(x.type.shape, y.type.shape, span)
        return self.emit("div", [x, y], Type(vis, "fix", shape, F), span, bits=F)

    def floordiv_mod(self, op: str, x: Value, y: Value, span: Span) -> Value:
        """numpy's // and % (floor semantics, also for negatives); fix operands give fix."""
        dtype = join_dtype(x.type.dtype, y.type.dtype)
        vis = join_vis(x.type.vis, y.type.vis)
        x, y = self.lift(self.trunc(x, span), vis, span), self.lift(self.trunc(y, span), vis, span)
        scale = self.frac_bits if dtype == "fix" else 0
        x, y = self.as_dtype_scale(x, dtype, scale, span), self.as_dtype_scale(y, dtype, scale, span)
        shape = _broadcast(x.type.shape, y.type.shape, span)
        if op == "%":
            out = self.emit("mod", [x, y], Type(vis, dtype, shape, scale), span)
        else:
            out = self.emit("floordiv", [x, y], Type(vis, "int", shape, 0), span)
        self.bound_quotient(op, x, y, out)
        return out if op == "%" else self.as_dtype_scale(out, dtype, scale, span)

    def bound_quotient(self, op: str, x: Value, y: Value, out: Value) -> None:
        """i % k lies in [0, k - 1] and i // k in [lo // k, hi // k] for a bounded index i and a
        positive constant k: both may index (and start slices) like a loop variable."""
        k = self.affine.get(y.id)
        if out.type.vis != PUBLIC or out.type.dtype != "int" or out.type.shape != () or \
                k is None or k[0] or k[1] <= 0:
            return
        k = k[1]
        if op == "%":
            self.bounded_index(out, 0, k - 1)
        elif x.id in self.affine:
            lo, hi = self._affine_range(self.affine[x.id])
            self.bounded_index(out, lo // k, hi // k)

    def fold_binop(self, op: str, a: Any, b: Any, span: Span) -> Any:
        """Evaluate an operator on compile-time values, as Python would."""
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            if op == "+" and isinstance(a, tuple) and isinstance(b, tuple):
                return a + b
            return self.binop(op, self.tensor(a, span), self.tensor(b, span), span)
        num = (int, float, bool)
        if not isinstance(a, num) or not isinstance(b, num):
            if op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            raise TypeErr(f"cannot apply {op} to {describe(a)} and {describe(b)}", span)
        if op == "**" and isinstance(a, (int, float)) and isinstance(b, int) and abs(b) > 4096 and abs(a) > 1:
            raise TypeErr(f"{a!r} ** {b!r} is out of range", span)
        import operator as o
        fn = {"+": o.add, "-": o.sub, "*": o.mul, "/": o.truediv, "//": o.floordiv, "%": o.mod,
              "**": o.pow, "&": o.and_, "|": o.or_, "@": None}.get(op)
        if fn is None:
            raise TypeErr(f"`{op}` needs tensors, got {describe(a)} and {describe(b)}", span)
        try:
            out = fn(a, b)
        except ZeroDivisionError:
            raise TypeErr("division by zero", span) from None
        except (TypeError, ValueError, OverflowError):
            raise TypeErr(f"cannot apply {op} to {describe(a)} and {describe(b)}", span) from None
        if isinstance(out, complex):
            raise TypeErr(f"{a!r} {op} {b!r} is not a real number", span)
        if isinstance(out, int) and not isinstance(out, bool) and abs(out) >= INT_LIMIT:
            raise TypeErr(f"the compile-time int {a!r} {op} {b!r} does not fit in 64 bits", span)
        if isinstance(out, float) and not np.isfinite(out):
            raise TypeErr(f"the compile-time value {a!r} {op} {b!r} is not finite", span)
        return out

    def scale_by_int(self, a: Any, b: Any, span: Span) -> Value:
        """A product with a public integer is no multiplication: no truncation either."""
        x, k = (a, b) if _is_int_const(b) else (b, a)
        x = self.tensor(x, span)
        kv = self.const(k, "int", span)
        t = x.type.with_(dtype="int" if x.type.dtype == "bool" else x.type.dtype)
        out = self.emit("mul", [x, kv], t, span)
        if x.id in self.affine and x.type.vis == PUBLIC:
            c, k0 = self.affine[x.id]
            self.affine[out.id] = ({i: k * v for i, v in c.items()}, k * k0)
        return out

    def arith(self, op: str, x: Value, y: Value, span: Span) -> Value:
        vis = join_vis(x.type.vis, y.type.vis)
        dtype = join_dtype(x.type.dtype, y.type.dtype)
        x, y = self.lift(x, vis, span), self.lift(y, vis, span)
        if op == "@":
            return self.matmul(x, y, vis, dtype, span)
        shape = _broadcast(x.type.shape, y.type.shape, span)
        if vis == SECRET:  # each share component must take the result's shape
            x = self.bcast(x, shape, span) if x.type.vis == SECRET else x
            y = self.bcast(y, shape, span) if y.type.vis == SECRET else y
        if op == "*":
            scale = x.type.scale + y.type.scale
            out = self.emit("mul", [x, y], Type(vis, dtype, shape, scale), span)
            return self.trunc(out, span)
        F = self.frac_bits if dtype == "fix" else 0
        x, y = self.as_dtype_scale(x, dtype, F, span), self.as_dtype_scale(y, dtype, F, span)
        out = self.emit("add" if op == "+" else "sub", [x, y], Type(vis, dtype, shape, F), span)
        if vis == PUBLIC and x.id in self.affine and y.id in self.affine:
            (cx, kx), (cy, ky) = self.affine[x.id], self.affine[y.id]
            sign = 1 if op == "+" else -1
            c = dict(cx)
            for i, v in cy.items():
                c[i] = c.get(i, 0) + sign * v
            self.affine[out.id] = ({i: v for i, v in c.items() if v}, kx + sign * ky)
        return out

    def matmul(self, x: Value, y: Value, vis: str, dtype: str, span: Span) -> Value:
        xs, ys = x.type.shape, y.type.shape
        if len(xs) not in (1, 2) or len(ys) not in (1, 2):
            raise ShapeErr(f"@ takes 1-D or 2-D tensors, got shapes {xs} and {ys}", span)
        x2 = x if len(xs) == 2 else self.reshape(x, (1, xs[0]), span)
        y2 = y if len(ys) == 2 else self.reshape(y, (ys[0], 1), span)
        if x2.type.shape[1] != y2.type.shape[0]:
            raise ShapeErr(f"matmul shapes {xs} and {ys} do not match: {x2.type.shape[1]} != {y2.type.shape[0]}",
                           span, "the inner dimensions must be equal; transpose with .T?")
        shape = (x2.type.shape[0], y2.type.shape[1])
        if x.type.dtype == "bool":
            x2 = self.retag(x2, "int", span)
        if y.type.dtype == "bool":
            y2 = self.retag(y2, "int", span)
        out = self.emit("matmul", [x2, y2], Type(vis, dtype, shape, x2.type.scale + y2.type.scale), span)
        out = self.trunc(out, span)
        final = tuple([shape[0]] if len(xs) == 2 else []) + tuple([shape[1]] if len(ys) == 2 else [])
        return out if final == shape else self.reshape(out, final, span)

    def unary(self, op: str, x: Any, span: Span) -> Any:
        if not isinstance(x, Value):
            if isinstance(x, list):
                return self.unary(op, self.tensor(x, span), span)
            if op == "not":
                return not self.truth(x, span)
            if not isinstance(x, (int, float, bool)):
                raise TypeErr(f"cannot apply unary {op} to {describe(x)}", span)
            if op == "-":
                return -x
            if op == "+":
                return x
            if op == "~":
                if isinstance(x, bool):
                    return not x
                if isinstance(x, int):
                    return ~x
                raise TypeErr("~ works on bools", span)
        if op == "not":
            raise TypeErr("`not` works on compile-time values only", span, "use ~ on bool tensors")
        if op == "+":
            return x
        if op == "~":
            if x.type.dtype != "bool":
                raise TypeErr(f"~ works on bools, got {x.type.dtype}", span, "compare first, e.g. ~(x > 0)")
            return self.emit("bitnot", [x], x.type, span)
        t = x.type.with_(dtype="int") if x.type.dtype == "bool" else x.type
        out = self.emit("neg", [x], t, span)
        if x.id in self.affine:
            c, k = self.affine[x.id]
            self.affine[out.id] = ({i: -v for i, v in c.items()}, -k)
        return out

    def compare(self, op: str, a: Any, b: Any, span: Span) -> Any:
        if not isinstance(a, Value) and not isinstance(b, Value):
            import operator as o
            if not (isinstance(a, (int, float, bool, str, tuple)) and isinstance(b, (int, float, bool, str, tuple))):
                if not (isinstance(a, list) or isinstance(b, list)):
                    raise TypeErr(f"cannot compare {describe(a)} and {describe(b)}", span)
                a, b = self.tensor(a, span), self.tensor(b, span)
            else:
                try:
                    return {"<": o.lt, "<=": o.le, ">": o.gt, ">=": o.ge, "==": o.eq, "!=": o.ne}[op](a, b)
                except TypeError:
                    raise TypeErr(f"cannot compare {describe(a)} and {describe(b)}", span) from None
        x, y = self.tensor(a, span), self.tensor(b, span)
        vis = join_vis(x.type.vis, y.type.vis)
        x, y = self.lift(self.trunc(x, span), vis, span), self.lift(self.trunc(y, span), vis, span)
        dtype = join_dtype(x.type.dtype, y.type.dtype)
        scale = self.frac_bits if dtype == "fix" else 0
        x, y = self.as_dtype_scale(x, dtype, scale, span), self.as_dtype_scale(y, dtype, scale, span)
        shape = _broadcast(x.type.shape, y.type.shape, span)
        code = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}[op]
        return self.emit(code, [x, y], Type(vis, "bool", shape, 0), span)

    def attribute(self, e: ast.Attribute, scope: Scope) -> Any:
        base = self.expr(e.value, scope)
        if isinstance(base, Module):
            if e.attr not in base.scope.names:
                near = closest(e.attr, list(base.scope.names))
                raise NameErr(f"module {base.name} has no {e.attr!r}", e.span,
                              f"did you mean {near}?" if near else None)
            return base.scope.names[e.attr]
        if e.attr == "shape":
            if isinstance(base, Value):
                return base.type.shape
            if isinstance(base, (int, float, bool, list, tuple)):
                return tuple(self.tensor(base, e.span).type.shape)
        if e.attr == "T":
            v = self.tensor(base, e.span)
            if len(v.type.shape) < 2:
                return v
            return self.emit("transpose", [v], v.type.with_(shape=tuple(reversed(v.type.shape))), e.span)
        if e.attr == "reshape":
            return ("method", "reshape", base)
        if e.attr in ("ndim", "size") and isinstance(base, Value):
            return len(base.type.shape) if e.attr == "ndim" else base.type.size
        if not isinstance(base, (Value, int, float, bool, list, tuple)):
            raise NameErr(f"{describe(base)} has no attribute {e.attr!r}", e.span)
        near = closest(e.attr, ["T", "shape", "reshape", "ndim", "size"])
        raise NameErr(f"tensors have no attribute {e.attr!r}", e.span,
                      f"did you mean .{near}?" if near else "known: .T, .shape, .ndim, .size, .reshape(...)")
