"""History outputs: following a training run. A value output inside a loop, or a small value
revealed and named inside one (`l = reveal(loss, to=alice)`), is kept with one row per iteration
(`OUT/<party>/<name>.npy` of shape (outer trips, inner trips, ..., *shape)) and shown live at its
receivers. This pass runs on the built IR, before the optimizer (which would drop an unread reveal):
it adds the `output` of each such reveal and gives every history its full shape in the
declarations (manifest, IR text). Loops keep their variable's name for the live lines."""
from __future__ import annotations

import re

from veil.runtime.diagnostics import NameErr, Span, source_line

from .ir import Block, Op, OutputDecl, Program
from .types import PUBLIC, owner

HISTORY_ELEMENTS = 16  # a reveal this small is a figure to follow (a loss, an accuracy); larger ones are data
_ASSIGNED = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*$")
_REST = re.compile(r"^\s*(#.*)?$")
_FOR = re.compile(r"\s*for\s+([A-Za-z_]\w*)\s+in\b")


def follow(prog: Program) -> Program:
    """Add the outputs of named small reveals in loops and the full shapes of all histories."""
    _block(prog, prog.body, ())
    return prog


def _block(prog: Program, block: Block, trips: tuple[int, ...]) -> None:
    ops: list[Op] = []
    for op in block.ops:
        ops.append(op)
        if op.body is not None:
            _block(prog, op.body, trips + (op.attrs["trips"],))
        elif trips and op.opcode == "output":
            _declare(prog, op, op.attrs["name"], op.attrs["to"], trips)
        elif trips and op.opcode in ("reveal", "reveal_to"):
            ops.extend(_reveal_output(prog, op, trips))
    block.ops = ops


def _reveal_output(prog: Program, op: Op, trips: tuple[int, ...]) -> list[Op]:
    """The ops that keep a named small reveal as a history (none for other reveals)."""
    v = op.out
    name = revealed_name(op.span)
    if name is None or v.type.size > HISTORY_ELEMENTS:
        return []
    to = list(prog.compute) if v.type.vis == PUBLIC else [owner(v.type.vis)]
    if _taken(prog, name, to):
        name = f"{name}_{op.span.line}"
    added: list[Op] = []
    if v.type.dtype == "fix" and v.type.scale != prog.frac_bits:
        t = prog.new_value(v.type.with_(scale=prog.frac_bits))
        added.append(Op("trunc", [t], [v], {"bits": v.type.scale - prog.frac_bits}, op.span))
        v = t
    added.append(Op("output", [], [v], {"name": name, "to": to, "dtype": v.type.dtype, "scale": v.type.scale},
                    op.span))
    _declare(prog, added[-1], name, to, trips)
    return added


def _taken(prog: Program, name: str, to: list[str]) -> bool:
    return any(d.name == name and set(d.to) & set(to) for d in prog.outputs)


def _declare(prog: Program, op: Op, name: str, to: list[str], trips: tuple[int, ...]) -> None:
    """Declare a history output with its full shape (the loops' trips, then the value's)."""
    if _taken(prog, name, to):
        raise NameErr(f"two outputs named {name!r} go to the same party", op.span)
    v = op.ins[0]
    prog.outputs.append(OutputDecl(name, list(to), trips + tuple(v.type.shape), v.type.dtype))


def revealed_name(span: Span | None) -> str | None:
    """NAME in `NAME = reveal(...)` written in the program itself (not inside a function)."""
    if span is None or span.caller is not None:
        return None
    text = source_line(span)
    if not text or span.end_line != span.line or not _REST.match(text[span.end_col - 1:]):
        return None  # the reveal is not the whole right-hand side (`x = reveal(a) * 2`)
    m = _ASSIGNED.match(text[:span.col - 1])
    return m.group(1) if m else None


def loop_name(span: Span | None) -> str:
    """The loop variable of `for NAME in range(...)` at span, read from the source ("" if unknown)."""
    text = source_line(span) if span is not None else None
    m = _FOR.match(text[span.col - 1:]) if text else None
    return m.group(1) if m else ""
