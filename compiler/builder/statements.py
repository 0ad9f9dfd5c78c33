"""Statements: blocks (with error recovery by poisoning), assignment, if, for loops and their
carried values, assert, return, the header lines and imports."""
from __future__ import annotations

from typing import Any

from .. import ast
from veil.runtime.diagnostics import (AssertErr, ErrorList, NameErr, Span, TypeErr, UnsupportedErr, UsageErr,
                                      VeilError, closest)
from ..ir import Block, Op, Value
from ..limits import INT_LIMIT
from ..types import PUBLIC, SECRET, Type, join_vis
from .header import coerce_param, parse_protocol_spec
from .scope import POISON, Function, Party, Scope, _has, _Poisoned, _Return, describe, scope_set


def _assigned_names(stmts: list[ast.Node]) -> list[str]:
    """Names a block of statements assigns, in order of first assignment (for loop-carried values)."""
    out: list[str] = []

    def add(n: str) -> None:
        if n not in out:
            out.append(n)

    for s in stmts:
        if isinstance(s, ast.Assign):
            for t in s.targets:
                if isinstance(t, ast.Name):
                    add(t.id)
                elif isinstance(t, ast.TupleExpr):
                    for it in t.items:
                        if isinstance(it, ast.Name):
                            add(it.id)
        elif isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):
            add(s.target.id)
        elif isinstance(s, ast.For):
            for n in _assigned_names(s.body):
                add(n)
        elif isinstance(s, ast.If):
            for n in _assigned_names(s.body) + _assigned_names(s.orelse):
                add(n)
    return out


def _assignment_span(stmts: list[ast.Node], name: str) -> Span | None:
    """The span of the last statement in a block (or nested blocks) that assigns `name`."""
    found = None
    for s in stmts:
        if isinstance(s, (ast.For, ast.If)):
            inner = _assignment_span(s.body + (s.orelse if isinstance(s, ast.If) else []), name)
            found = inner or found
        elif name in _assigned_names([s]):
            found = s.span
    return found


def _flat_targets(targets: list[ast.Node]) -> list[ast.Node]:
    """The individual targets of `a = ...` or `a, b = ...`."""
    out: list[ast.Node] = []
    for t in targets:
        out.extend(t.items if isinstance(t, ast.TupleExpr) else [t])
    return out


def _check_target(t: ast.Node) -> None:
    """Only names can be assigned: tensors are immutable values."""
    if isinstance(t, ast.Name):
        return
    if isinstance(t, ast.Subscript):
        raise UnsupportedErr("cannot assign to a subscript: tensors are immutable", t.span,
                             "build a new tensor instead, e.g. with concat([...]) or where(mask, new, old)")
    if isinstance(t, ast.Attribute):
        raise UnsupportedErr(f"cannot assign to the attribute .{t.attr}", t.span, "assign to a plain name")
    raise UnsupportedErr("this cannot be assigned to", t.span, "the left of `=` is a name, or names separated by commas")


class Statements:
    """Builder methods that run statements and blocks."""

    def run_block(self, stmts: list[ast.Node], scope: Scope, top: bool = False) -> None:
        """Run statements; at the top level a failing statement is recorded and skipped (the names
        it defines are poisoned) so that independent mistakes are reported together."""
        if not top:
            for s in stmts:
                self.stmt(s, scope, top)
            return
        for s in stmts:
            try:
                self.stmt(s, scope, top)
            except _Poisoned:
                self.poison(s, scope)
            except UsageErr:
                raise
            except VeilError as err:
                self.errors.extend(err.errors if isinstance(err, ErrorList) else [err])
                if len(self.errors) >= 20:
                    break
                self.poison(s, scope)
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else ErrorList(self.errors)

    def poison(self, s: ast.Node, scope: Scope) -> None:
        """Bind what a failed statement would have defined, so its uses stay quiet."""
        names = _assigned_names([s])
        if isinstance(s, ast.For):
            names.append(s.var.id)
        elif isinstance(s, ast.ParamDecl):
            names.append(s.name)
        elif isinstance(s, ast.FromImport):
            names.extend(alias or name for name, alias in s.names)
        elif isinstance(s, ast.Import):
            names.append(s.alias or s.module.split(".")[-1])
        for n in names:
            scope.names[n] = POISON

    def stmt(self, s: ast.Node, scope: Scope, top: bool) -> None:
        if isinstance(s, ast.PartyDecl):
            for n in s.names:
                if n.id in self.prog.parties:
                    raise NameErr(f"party {n.id} declared twice", n.span)
                self.prog.parties.append(n.id)
                scope.names[n.id] = Party(n.id)
        elif isinstance(s, ast.ProtocolDecl):
            self.protocol_span = s.span
            args = [self.party_arg(a, scope) for a in s.args]
            kwargs = {k.name: self.party_arg(k.value, scope) for k in s.kwargs}
            spec = self.protocol_override
            if self.prog.compute:
                raise TypeErr("the protocol is declared twice", s.span, "keep one `protocol` line")
            if spec:
                name, args, kwargs = parse_protocol_spec(spec)
                self.set_protocol(name, args, kwargs, None, cli=True)
            else:
                self.set_protocol(s.name, args, kwargs, s.span)
        elif isinstance(s, ast.ParamDecl):
            value = self.expr(s.value, scope)
            if not isinstance(value, (int, float, bool, str)):
                raise TypeErr("a param must be a literal int, float, bool or string", s.value.span)
            if s.name in self.overrides:
                value = coerce_param(s.name, self.overrides[s.name], type(value))
            self.prog.params[s.name] = value
            scope.names[s.name] = value
        elif isinstance(s, ast.PrecisionDecl):
            if self.call_stack or self.loop_depth or s.span.file != self.file:
                raise TypeErr("`precision` is a top-level line of the program itself", s.span,
                              "put it with the party, protocol and param lines")
            self.set_precision(self.expr(s.value, scope), s.span, s.value.span, not self.prog.body.ops)
        elif isinstance(s, ast.Assign):
            for t in _flat_targets(s.targets):
                _check_target(t)
            value = self.expr(s.value, scope)
            self.assign(s.targets, value, scope, s.span)
        elif isinstance(s, ast.AugAssign):
            _check_target(s.target)
            cur = self.expr(s.target, scope)
            rhs = self.expr(s.value, scope)
            scope_set(scope, s.target.id, self.binop(s.op, cur, rhs, s.span))
        elif isinstance(s, ast.ExprStmt):
            if isinstance(s.value, ast.Str):
                return  # docstring
            self.expr(s.value, scope)
        elif isinstance(s, ast.For):
            self.for_loop(s, scope)
        elif isinstance(s, ast.If):
            cond = self.expr(s.cond, scope)
            if isinstance(cond, Value):
                what = "a secret" if cond.type.vis == SECRET else f"a {cond.type.vis}"
                raise TypeErr(f"an `if` condition must be known at compile time, but this is {what} value "
                              "computed at run time", s.cond.span,
                              "to choose between values computed at run time use where(c, a, b)")
            self.run_block(s.body if self.truth(cond, s.cond.span) else s.orelse, scope)
        elif isinstance(s, ast.FunctionDef):
            scope.names[s.name] = Function(s, scope)
        elif isinstance(s, ast.Return):
            if not self.call_stack:
                raise TypeErr("`return` outside a function", s.span, "return belongs in a def body")
            if self.loop_depth > self.fn_loop_depth[-1]:
                raise UnsupportedErr("`return` inside a loop is not supported", s.span,
                                     "a loop body runs as one compiled block: assign the result and return "
                                     "after the loop")
            raise _Return(None if s.value is None else self.expr(s.value, scope))
        elif isinstance(s, ast.Assert):
            cond = self.expr(s.cond, scope)
            if isinstance(cond, Value):
                raise TypeErr("`assert` needs a condition known at compile time", s.cond.span,
                              "assert checks params and shapes; run-time values cannot stop the computation")
            if not self.truth(cond, s.cond.span):
                msg = self.expr(s.msg, scope) if s.msg is not None else "assertion failed"
                raise AssertErr(f"assertion failed: {msg}", s.span, "the program's own check failed")
        elif isinstance(s, ast.Import):
            mod = self.load_module(s.module, s.span)
            scope.names[s.alias or s.module.split(".")[-1]] = mod
        elif isinstance(s, ast.FromImport):
            mod = self.load_module(s.module, s.span)
            for name, alias in s.names:
                if name not in mod.scope.names:
                    near = closest(name, list(mod.scope.names))
                    raise NameErr(f"module {s.module} has no {name!r}", s.span,
                                  f"did you mean {near}?" if near else None)
                scope.names[alias or name] = mod.scope.names[name]
        elif isinstance(s, ast.Pass):
            return
        else:
            raise UnsupportedErr(f"unsupported statement {type(s).__name__}", s.span)

    def truth(self, cond: Any, span: Span) -> bool:
        """The truth of a compile-time condition (a number, bool, string or tuple)."""
        if isinstance(cond, (int, float, bool, str, tuple, list)):
            return bool(cond)
        raise TypeErr(f"a condition must be a compile-time value, got {describe(cond)}", span)

    def party_arg(self, node: ast.Node, scope: Scope) -> str:
        if isinstance(node, ast.Name):
            try:
                v = scope.lookup(node.id)
            except KeyError:
                v = None
            if isinstance(v, Party):
                return v.name
            near = closest(node.id, self.prog.parties)
            raise NameErr(f"unknown party {node.id!r}", node.span,
                          f"did you mean {near}?" if near else "declare it with `party`")
        raise TypeErr("expected a party name", node.span)

    def assign(self, targets: list[ast.Node], value: Any, scope: Scope, span: Span) -> None:
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            if value is None:
                raise TypeErr(f"the right-hand side has no value to assign to {targets[0].id!r}", span,
                              "a function without `return e` (or output()) gives nothing")
            scope_set(scope, targets[0].id, value)
            return
        names = targets[0].items if len(targets) == 1 and isinstance(targets[0], ast.TupleExpr) else targets
        if not isinstance(value, tuple):
            raise TypeErr(f"cannot unpack {describe(value)} into {len(names)} names", span,
                          "the right-hand side must be a tuple, e.g. a function returning `a, b`")
        if len(value) != len(names):
            raise TypeErr(f"cannot unpack {len(value)} values into {len(names)} names", span,
                          "use as many names on the left as there are values on the right")
        for t, v in zip(names, value):
            if not isinstance(t, ast.Name):
                raise UnsupportedErr("assignment targets must be names", t.span,
                                     "tensors are immutable: build a new one with concat or where")
            scope_set(scope, t.id, v)

    def for_loop(self, s: ast.For, scope: Scope) -> None:
        it = s.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"):
            raise UnsupportedErr("a for loop runs over range(...)", it.span, "write: for i in range(n):")
        if it.kwargs:
            raise TypeErr("range() takes no keyword arguments", it.kwargs[0].span)
        bounds = [self.expr(a, scope) for a in it.args]
        if not bounds or len(bounds) > 3 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise TypeErr("range() takes 1 to 3 compile-time ints", it.span,
                          "loop bounds must be params or literals")
        if any(abs(b) >= INT_LIMIT for b in bounds):
            raise TypeErr("range() bounds must fit in 64 bits", it.span)
        rng = range(*bounds)
        if rng.step == 0:
            raise TypeErr("range() step must not be zero", it.span)
        start, step, trips = rng.start, rng.step, len(rng)
        carried = [n for n in _assigned_names(s.body) if n != s.var.id and _has(scope, n)]
        inits = []
        for n in carried:
            v = scope.lookup(n)
            if v is POISON:
                raise _Poisoned()
            if isinstance(v, (int, float, bool)):
                v = self.const(v, None, s.span)
            if not isinstance(v, Value):
                raise TypeErr(f"{n!r} is {describe(v)} before the loop and is assigned in its body", s.span,
                              "only tensors and numbers can be carried from one iteration to the next; "
                              "use another name inside the loop")
            v = self.trunc(v, s.span)
            inits.append(v)
        vis = [v.type.vis for v in inits]
        for _attempt in range(2 * len(carried) + 2):
            body, results = self.build_body(s, scope, carried, inits, vis, start, step, trips)
            new_vis = [join_vis(a, r.type.vis) for a, r in zip(vis, results)]
            if new_vis == vis:
                break
            vis = new_vis
        outer = self.block
        init_vals = [self.promote(v, vv, s.span) for v, vv in zip(inits, vis)]
        outs = [self.prog.new_value(p.type) for p in body.params[1:]]
        outer.ops.append(Op("loop", outs, init_vals, {"trips": trips, "start": start, "step": step},
                            s.span, body))
        for n, o in zip(carried, outs):
            scope_set(scope, n, o)
        for n in _assigned_names(s.body) + [s.var.id]:
            if n not in carried and not _has(scope, n):
                scope.gone[n] = (s.span, n == s.var.id)

    def build_body(self, s, scope, carried, inits, vis, start, step, trips):
        saved = self.block
        self.block_stack.append(saved)
        self.block = Block()
        ivar = self.prog.new_value(Type(PUBLIC, "int", (), 0))
        lo, hi = start, start + step * (trips - 1)
        self.affine[ivar.id] = ({ivar.id: 1}, 0)
        self.loop_ranges[ivar.id] = (min(lo, hi), max(lo, hi))
        params = [ivar]
        inner = Scope({s.var.id: ivar}, scope)
        for n, v, vv in zip(carried, inits, vis):
            p = self.prog.new_value(v.type.with_(vis=vv))
            params.append(p)
            inner.names[n] = p
        self.loop_depth += 1
        try:
            self.run_block(s.body, inner)
            results = self.body_results(s, inner, carried, params)
        finally:
            self.loop_depth -= 1
            body_ops = self.block.ops
            self.block = self.block_stack.pop()
        return Block(body_ops, params, results), results

    def body_results(self, s: ast.For, inner: Scope, carried: list[str], params: list[Value]) -> list[Value]:
        """Each carried name's value at the end of the body, checked against its value before."""
        results = []
        for n, p in zip(carried, params[1:]):
            r = inner.names.get(n, p)
            if r is POISON:
                raise _Poisoned()
            if isinstance(r, (int, float, bool)):
                r = self.const(r, p.type.dtype, s.span)
            if not isinstance(r, Value):
                raise TypeErr(f"loop-carried {n!r} becomes {describe(r)} in the loop body", s.span,
                              "a value carried from one iteration to the next must stay a tensor")
            if r.type.shape != p.type.shape or r.type.dtype != p.type.dtype:
                hint = "a value carried from one iteration to the next keeps its shape and dtype"
                if r.type.shape == p.type.shape and (p.type.dtype, r.type.dtype) == ("int", "fix"):
                    hint = f"start {n!r} as a fix value before the loop, e.g. 0.0 instead of 0"
                raise TypeErr(f"loop-carried {n!r} changes from {p.type.dtype}{list(p.type.shape)} to "
                              f"{r.type.dtype}{list(r.type.shape)} in the loop body",
                              _assignment_span(s.body, n) or s.span, hint)
            if r.type.scale != p.type.scale:
                r = self.trunc(r, s.span)
            results.append(self.promote(r, join_vis(p.type.vis, r.type.vis), s.span))
        return results
