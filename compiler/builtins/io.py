"""Built-ins that move data between parties: input, secret, reveal, output."""
from __future__ import annotations

from .. import ast
from veil.runtime.diagnostics import NameErr, TypeErr, UnsupportedErr
from ..ir import InputDecl, Op, OutputDecl
from ..types import PUBLIC, SECRET, Type, private
from .args import Args, _dtype_arg, _party_list, _shape_arg


def _input(b, e, scope):
    a = Args(b, "input", e, scope, ["party", "name", "shape", "dtype", "default", "head"], 3,
             raw=("party", "dtype"))
    party = b.party_arg(a.get("party"), scope)
    name = a.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeErr("an input's name is a string such as \"x\"", a.span("name"))
    shape = _shape_arg(a.get("shape"), a.span("shape"))
    dtype = _dtype_arg(a.get("dtype"), "fix", a.span("dtype"))
    default = a.get("default")
    if default is not None and not isinstance(default, str):
        raise TypeErr("default= names a file, relative to the program's folder", a.span("default"))
    if b.loop_depth:
        raise UnsupportedErr("input() inside a loop is not supported", e.span, "read inputs at the top level")
    for d in b.prog.inputs:
        if d.party == party and d.name == name:
            raise NameErr(f"{party} already has an input named {name!r}", e.span)
    b.prog.inputs.append(InputDecl(party, name, shape, dtype, default, bool(a.get("head", False))))
    scale = b.frac_bits if dtype == "fix" else 0
    return b.emit("input", [], Type(private(party), dtype, shape, scale), e.span,
                  party=party, name=name, dtype=dtype)


def _secret(b, e, scope):
    a = Args(b, "secret", e, scope, ["x"], 1)
    return b.promote(b.tensor(a.get("x"), e.span), SECRET, e.span)


def _reveal(b, e, scope):
    a = Args(b, "reveal", e, scope, ["x", "to"], 1, raw=("to",))
    x = b.tensor(a.get("x"), e.span)
    if a.get("to") is not None:
        party = b.party_arg(a.get("to"), scope)
        if x.type.vis == PUBLIC or x.type.vis == private(party):
            return x
        x = b.lift(x, SECRET, e.span)
        return b.emit("reveal_to", [x], x.type.with_(vis=private(party)), e.span, party=party)
    if x.type.vis == PUBLIC:
        return x
    x = b.lift(x, SECRET, e.span)
    return b.emit("reveal", [x], x.type.with_(vis=PUBLIC), e.span)


def _output(b, e, scope):
    a = Args(b, "output", e, scope, ["x", "name", "to"], 1, raw=("to",))
    x = b.tensor(a.get("x"), e.span)
    name = a.get("name")
    if name is None:
        node = a.nodes["x"]
        if not isinstance(node, ast.Name):
            raise TypeErr("output() of an expression needs a name", e.span, 'output(expr, "name", to=alice)')
        name = node.id
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeErr("an output's name is an identifier-like string", a.span("name"))
    to = _party_list(b, a.get("to"), scope) if a.get("to") is not None else list(b.prog.parties)
    x = b.trunc(x, e.span)
    if not b.loop_depth:  # a history (an output in a loop body, built once per try) is declared by history.py
        for o in b.prog.outputs:
            if o.name == name and set(o.to) & set(to):
                raise NameErr(f"two outputs named {name!r} go to the same party", e.span)
        b.prog.outputs.append(OutputDecl(name, to, x.type.shape, x.type.dtype))
    b.block.ops.append(Op("output", [], [x], {"name": name, "to": to, "dtype": x.type.dtype,
                                              "scale": x.type.scale}, e.span))
    return None
