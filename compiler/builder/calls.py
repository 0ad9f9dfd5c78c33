"""Calls: user functions (inlined, with the chain of call sites kept on spans), module imports,
and dispatch to the built-ins."""
from __future__ import annotations

import os
from importlib import resources
from typing import Any

from .. import ast
from veil.runtime.diagnostics import NameErr, Span, TypeErr, VeilError, closest
from ..builtins import call_builtin, call_method
from ..parser import parse
from .scope import Function, Module, Scope, _Return, describe


class Calls:
    """Builder methods that call functions and load modules."""

    def call(self, e: ast.Call, scope: Scope) -> Any:
        f = self.expr(e.func, scope)
        if isinstance(f, Function):
            return self.inline(f, e, scope)
        if isinstance(f, tuple) and f and f[0] == "builtin":
            return call_builtin(self, f[1], e, scope)
        if isinstance(f, tuple) and f and f[0] == "method":
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
        return self.enter(f, bound, e.span)

    def call_library(self, module: str, name: str, args: list[Any], span: Span) -> Any:
        """Call a function of a library module on values the builder holds (e.g. `/` by a secret
        calls ml.reciprocal), inlined like a call written at `span`."""
        f = self.load_module(module, span).scope.names.get(name)
        if not isinstance(f, Function):
            raise NameErr(f"module {module} has no function {name!r}", span)
        return self.enter(f, dict(zip([p.name for p in f.node.params], args)), span)

    def enter(self, f: Function, bound: dict[str, Any], span: Span) -> Any:
        """Run a function's body with its parameters bound (defaults for the rest)."""
        node = f.node
        inner = Scope({}, f.scope)
        for p in node.params:
            if p.name in bound:
                inner.names[p.name] = bound[p.name]
            elif p.default is not None:
                inner.names[p.name] = self.expr(p.default, f.scope)
            else:
                raise TypeErr(f"{node.name}() is missing argument {p.name!r}", span)
        self.call_stack.append(node.name)
        self.call_sites.append(self.at(span))
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
