"""Build the typed IR from the syntax tree: names, calls (inlined), loops, visibility, dtype, shape."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from . import ast
from veil.runtime.diagnostics import (AssertErr, ErrorList, NameErr, ShapeErr, Span, SyntaxErr, TypeErr, UnsupportedErr, UsageErr, VeilError,
                     closest)
from .ir import Block, InputDecl, Op, OutputDecl, Program, Value
from .protocol_line import ProtocolLineError, compute_parties
from .parser import parse
from .types import PUBLIC, SECRET, Type, join_dtype, join_vis, owner, private

DTYPES = ("fix", "int", "bool")
MAX_CONST_ELEMENTS = 1 << 24  # a public constant is stored in the bytecode
MAX_ELEMENTS = 1 << 40  # any tensor's element count
INT_LIMIT = 1 << 63  # compile-time ints must fit the 64-bit ring


class Poison:
    """What a name is bound to after the statement defining it failed (stops cascading errors)."""


POISON = Poison()


class _Poisoned(Exception):
    """A statement used a name whose definition already failed: skip it silently."""


@dataclass
class Function:
    node: ast.FunctionDef
    scope: "Scope"


@dataclass
class Module:
    name: str
    scope: "Scope"


@dataclass
class Party:
    name: str


@dataclass
class Scope:
    names: dict[str, Any] = field(default_factory=dict)
    parent: "Scope | None" = None
    gone: dict[str, tuple[Span, bool]] = field(default_factory=dict)  # names that lived only in a loop

    def gone_at(self, name: str) -> tuple[Span, bool] | None:
        """Where the loop is that defined `name` only inside its body, if any."""
        s: Scope | None = self
        while s is not None:
            if name in s.gone:
                return s.gone[name]
            s = s.parent
        return None

    def lookup(self, name: str) -> Any:
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        raise KeyError(name)

    def known(self) -> list[str]:
        out, s = [], self
        while s is not None:
            out.extend(s.names)
            s = s.parent
        return out


class _Return(Exception):
    def __init__(self, value: Any):
        self.value = value


BUILTINS = ["input", "secret", "reveal", "output", "zeros", "ones", "full", "arange", "eye", "concat",
            "stack", "reshape", "transpose", "broadcast_to", "sum", "mean", "matmul", "dot", "outer",
            "len", "int", "float", "range", "abs", "min", "max", "where", "fix", "bool"]


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


def _broadcast(a: tuple, b: tuple, span: Span) -> tuple:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ShapeErr(f"shapes {a} and {b} do not broadcast", span,
                       "make the shapes equal, or use reshape/broadcast_to") from None


class Builder:
    """Walks a module's statements and appends typed IR ops to the current block."""

    def __init__(self, file: str, params: dict[str, Any], frac_bits: int, protocol_override: str | None):
        self.file = file
        self.overrides = dict(params)
        self.frac_bits = frac_bits
        self.protocol_override = protocol_override
        self.prog = Program(file=file, parties=[], protocol="rep3", compute=[], protocol_args={},
                            params={}, frac_bits=frac_bits, body=Block())
        self.block = self.prog.body
        self.affine: dict[int, tuple[dict[int, int], int]] = {}
        self.loop_ranges: dict[int, tuple[int, int]] = {}
        self.call_stack: list[str] = []
        self.call_sites: list[Span] = []  # where each function being inlined was called, chained
        self.modules: dict[str, Module] = {}
        self.loop_depth = 0
        self.protocol_span: Span | None = None
        self.shared: dict[int, tuple[Block, Value]] = {}
        self.block_stack: list[Block] = []
        self.errors: list[VeilError] = []
        self.fn_loop_depth: list[int] = []

    def open_blocks(self) -> list[Block]:
        """The block being built and the blocks enclosing it (their values are visible here)."""
        return self.block_stack + [self.block]

    # ---- emitting ------------------------------------------------------------------------
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
        return v

    # ---- program structure ---------------------------------------------------------------
    def build_program(self, module: ast.Module) -> Program:
        scope = Scope(dict(), None)
        self.run_block(module.body, scope, top=True)
        if not self.prog.parties:
            raise TypeErr("the program declares no parties", Span(self.file, 1, 1),
                          "start with a line such as: party alice, bob, carol")
        if not self.prog.compute:
            if self.protocol_override:
                name, args, kwargs = parse_protocol_spec(self.protocol_override)
                self.set_protocol(name, args, kwargs, None, cli=True)
            elif len(self.prog.parties) < 3:
                raise TypeErr(f"rep3, the default protocol, needs 3 compute parties; the program declares "
                              f"{len(self.prog.parties)}", Span(self.file, 1, 1),
                              "declare three parties: party alice, bob, carol")
            else:
                self.set_protocol("rep3", self.prog.parties[:3], {}, Span(self.file, 1, 1))
        unknown = set(self.overrides) - set(self.prog.params)
        if unknown:
            name = sorted(unknown)[0]
            near = closest(name, list(self.prog.params))
            raise UsageErr(f"-D {name}: the program has no param {name}", None,
                           f"did you mean {near}?" if near else
                           f"its params are: {', '.join(self.prog.params) or 'none'}")
        return self.prog

    def set_protocol(self, name: str, args: list[str], kwargs: dict[str, str], span: Span | None,
                     cli: bool = False) -> None:
        """Check and record the protocol; `cli` errors (from --protocol) are usage errors."""
        where = f"--protocol {self.protocol_override!r}: " if cli else ""

        def fail(cls, msg: str, hint: str | None) -> VeilError:
            return UsageErr(where + msg, None, hint) if cli else cls(msg, span, hint)

        try:
            compute = compute_parties(name, args, kwargs)
        except ProtocolLineError as err:
            raise fail(UsageErr if err.kind == "usage" else TypeErr, err.message, err.hint) from None
        for p in compute:
            if p not in self.prog.parties:
                near = closest(p, self.prog.parties)
                raise fail(NameErr, f"unknown party {p!r} in protocol",
                           f"did you mean {near}?" if near else
                           f"the program's parties: {', '.join(self.prog.parties) or 'none yet'}")
        if len(set(compute)) != len(compute):
            raise fail(TypeErr, "a party appears twice in the protocol", "name each compute party once")
        self.prog.protocol, self.prog.compute, self.prog.protocol_args = name, compute, kwargs

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

    # ---- statements ----------------------------------------------------------------------
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
            if not isinstance(value, (int, float, bool)):
                raise TypeErr("a param must be a literal int, float or bool", s.value.span)
            if s.name in self.overrides:
                value = coerce_param(s.name, self.overrides[s.name], type(value))
            self.prog.params[s.name] = value
            scope.names[s.name] = value
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

    def load_module(self, name: str, span: Span) -> Module:
        if name in self.modules:
            return self.modules[name]
        rel = name.replace(".", os.sep) + ".mpc"
        local = os.path.join(os.path.dirname(os.path.abspath(self.file)), rel)
        if os.path.exists(local):
            path, text = local, open(local, encoding="utf-8").read()
        else:
            res = resources.files("veil.stdlib").joinpath(rel)
            if not res.is_file():
                raise NameErr(f"no module named {name!r}", span,
                              "modules are looked up beside the program, then in veil's standard library (ml)")
            path, text = f"<stdlib>/{rel}", res.read_text(encoding="utf-8")
        tree = parse(text, path)
        mod = Module(name, Scope())
        self.modules[name] = mod
        for s in tree.body:
            if isinstance(s, (ast.PartyDecl, ast.ProtocolDecl, ast.ParamDecl)):
                raise TypeErr("a module may hold functions and constants only", s.span)
            self.stmt(s, mod.scope, top=False)
        return mod

    # ---- loops ---------------------------------------------------------------------------
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

    # ---- visibility changes --------------------------------------------------------------
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

    # ---- expressions ---------------------------------------------------------------------
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
                if e.id in BUILTINS:
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
        near = closest(e.id, [n for n in scope.known() if not n.startswith("_")] + BUILTINS)
        return NameErr(f"name {e.id!r} is not defined", e.span,
                       f"did you mean {near}?" if near else "define it first, or import it (from ml import ...)")

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
        """x / y by a run-time value: a fix quotient (exact in clear; not yet in MPC when secret)."""
        vis = join_vis(x.type.vis, y.type.vis)
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
            return self.emit("mod", [x, y], Type(vis, dtype, shape, scale), span)
        q = self.emit("floordiv", [x, y], Type(vis, "int", shape, 0), span)
        return self.as_dtype_scale(q, dtype, scale, span)

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

    def bcast(self, v: Value, shape: tuple, span: Span) -> Value:
        if v.type.shape == shape:
            return v
        return self.emit("broadcast", [v], v.type.with_(shape=shape), span, shape=shape)

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

    # ---- indexing ------------------------------------------------------------------------
    def subscript(self, e: ast.Subscript, scope: Scope) -> Any:
        base = self.expr(e.value, scope)
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
        v = x
        for axis, (start, length, step, drop) in dynamic:
            dshape = list(v.type.shape)
            dshape[axis] = length
            v = self.emit("dslice", [v, start], v.type.with_(shape=tuple(dshape)), e.span,
                          axis=axis, length=length, step=step)
            static[axis] = ("i", 0) if drop else ("s", 0, length, 1)
        if all(s[0] == "s" and s[1:] == (0, d, 1) for s, d in zip(static, v.type.shape)):
            return v
        res_shape = tuple(len(range(s[1], s[2], s[3])) for s in static if s[0] == "s")
        # a negative step's stop of -1 means "past index 0", which numpy spells None
        key = [list(s[:2]) + [None if s[2] < 0 else s[2], s[3]] if s[0] == "s" else list(s) for s in static]
        return self.emit("slice", [v], v.type.with_(shape=res_shape), e.span, key=key)

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
        raise TypeErr("a slice bound computed at run time must be a loop variable times a constant plus a "
                      "constant (like i * B + c)", span, "a slice's start and length must follow the loop "
                      "variable linearly; its length must be known at compile time")

    def _affine_range(self, aff):
        lo = hi = aff[1]
        for var, c in aff[0].items():
            a, b = self.loop_ranges[var]
            lo += min(c * a, c * b)
            hi += max(c * a, c * b)
        return lo, hi

    # ---- calls ---------------------------------------------------------------------------
    def call(self, e: ast.Call, scope: Scope) -> Any:
        f = self.expr(e.func, scope)
        if isinstance(f, Function):
            return self.inline(f, e, scope)
        if isinstance(f, tuple) and f and f[0] == "builtin":
            from .builtins import call_builtin
            return call_builtin(self, f[1], e, scope)
        if isinstance(f, tuple) and f and f[0] == "method":
            from .builtins import call_method
            return call_method(self, f[1], f[2], e, scope)
        raise TypeErr(f"{describe(f)} is not callable", e.func.span)

    def inline(self, f: Function, e: ast.Call, scope: Scope) -> Any:
        node = f.node
        if node.name in self.call_stack:
            raise TypeErr(f"recursion: {node.name} calls itself (via {' -> '.join(self.call_stack)})", e.span,
                          "calls are inlined at compile time; write the recursion as a loop")
        names = [p.name for p in node.params]
        if len(e.args) > len(names):
            raise TypeErr(f"{node.name}() takes {len(names)} arguments, got {len(e.args)}", e.span)
        bound: dict[str, Any] = {}
        for p, a in zip(names, e.args):
            bound[p] = self.expr(a, scope)
        for k in e.kwargs:
            if k.name not in names:
                near = closest(k.name, names)
                raise TypeErr(f"{node.name}() has no parameter {k.name!r}", k.span,
                              f"did you mean {near}?" if near else f"its parameters: {', '.join(names)}")
            if k.name in bound:
                raise TypeErr(f"{node.name}() got {k.name!r} twice", k.span)
            bound[k.name] = self.expr(k.value, scope)
        inner = Scope({}, f.scope)
        for p in node.params:
            if p.name in bound:
                inner.names[p.name] = bound[p.name]
            elif p.default is not None:
                inner.names[p.name] = self.expr(p.default, f.scope)
            else:
                raise TypeErr(f"{node.name}() is missing argument {p.name!r}", e.span)
        self.call_stack.append(node.name)
        self.call_sites.append(self.at(e.span))
        self.fn_loop_depth.append(self.loop_depth)
        try:
            self.run_block(node.body, inner)
        except _Return as r:
            return r.value
        except VeilError as err:
            raise _through_call(err, self.call_sites[-1]) from None
        finally:
            self.call_stack.pop()
            self.call_sites.pop()
            self.fn_loop_depth.pop()
        return None


def _through_call(err: VeilError, site: Span) -> VeilError:
    """An error inside an inlined function, its span chained to the (chained) call `site`; an
    error already chained (by a deeper call, or raised at an op's chained span) is left alone."""
    subs = getattr(err, "errors", None) or [err]
    for sub in subs:
        if sub.span is not None and not getattr(sub, "chained", False):
            if sub.span.caller is None:
                sub.span = sub.span.called_from(site)
            sub.chained = True
    err.span = subs[0].span
    return err


def _has(scope: Scope, name: str) -> bool:
    try:
        scope.lookup(name)
        return True
    except KeyError:
        return False


def scope_set(scope: Scope, name: str, value: Any) -> None:
    """Assign in the innermost scope (Python's rule inside functions and loop bodies)."""
    scope.names[name] = value


def _is_int_const(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def describe(x: Any) -> str:
    if isinstance(x, Value):
        return f"a {x.type}"
    if isinstance(x, Function):
        return f"function {x.node.name}"
    if isinstance(x, Module):
        return f"module {x.name}"
    if isinstance(x, Party):
        return f"party {x.name}"
    return f"{type(x).__name__} {x!r}"


def coerce_param(name: str, raw: Any, kind: type) -> Any:
    """Read a -D NAME=VALUE override as the param's own type."""
    if not isinstance(raw, str):  # from the Python API: the value must already be of that type
        if isinstance(raw, bool) != (kind is bool) or not isinstance(raw, (int, float)) or \
                (kind is int and not isinstance(raw, int)):
            raise UsageErr(f"param {name}={raw!r}: expected {'an' if kind is int else 'a'} {kind.__name__}")
        return kind(raw)
    try:
        if kind is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        return kind(raw)
    except ValueError:
        raise UsageErr(f"-D {name}={raw}: expected {'an' if kind is int else 'a'} {kind.__name__}") from None


def parse_protocol_spec(spec: str) -> tuple[str, list[str], dict[str, str]]:
    """Parse --protocol "rep3(a, b, c)" or "dealer2(a, b, dealer=c)"."""
    import re

    example = 'e.g. --protocol "rep3(alice, bob, carol)"'
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", spec or "")
    if not m:
        raise UsageErr(f"--protocol {spec!r}: expected NAME(party, ...)", None, example)
    args, kwargs = [], {}
    parts = [p.strip() for p in m.group(2).split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    for part in parts:
        k, sep, v = (x.strip() for x in part.partition("="))
        name = v if sep else k
        if not name.isidentifier() or (sep and not k.isidentifier()):
            raise UsageErr(f"--protocol {spec!r}: {part!r} is not a party name", None, example)
        if sep:
            if k in kwargs:
                raise UsageErr(f"--protocol {spec!r}: {k}= given twice", None, example)
            kwargs[k] = v
        else:
            if kwargs:
                raise UsageErr(f"--protocol {spec!r}: a party after a keyword", None, example)
            args.append(k)
    return m.group(1), args, kwargs


def build(text: str, file: str, params: dict[str, Any] | None = None, frac_bits: int = 16,
          protocol: str | None = None) -> Program:
    """Source text to typed IR."""
    if not isinstance(frac_bits, int) or isinstance(frac_bits, bool) or not 1 <= frac_bits <= 30:
        raise UsageErr(f"--frac-bits {frac_bits}: choose between 1 and 30", None,
                       "16 (the default) suits values up to about 32768 in magnitude")
    if protocol is not None:
        parse_protocol_spec(protocol)  # a malformed --protocol is reported even if the program has none
    try:
        tree = parse(text, file)
        return Builder(file, params or {}, frac_bits, protocol).build_program(tree)
    except RecursionError:
        raise UnsupportedErr("the program is nested too deeply for the compiler", Span(file, 1, 1),
                             "split deeply nested expressions into several assignments") from None
