"""The IR as text that parses back to the same program (`veil compile --emit-ir`, `veil compile X.ir`).

A program prints as a header (one `keyword value` line per Program field, one `input`/`output`
line per declaration) and a `body { ... }` with one op per line:

    %5: secret fix@16[128x1] = matmul(%3, %4) bits=16  @ prog.mpc:24:13-24:30

Attributes keep their Python type and order (ints, floats by repr, strings as JSON, None, bools,
[lists] apart from (tuples,), {dicts}, numpy arrays with dtype, shape and every value); a span
lists the call chain outermost first, as `Span.where()` does. A loop's body follows its op line as
`body(%params) { ... yield(%results) }`. `#` starts a comment. The grammar is in irparse.py.
"""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from veil.runtime.diagnostics import Span
from .ir import Block, InputDecl, Op, OutputDecl, Program, Value
from .irparse import parse_program  # noqa: F401  (the other half of this module's contract)
from .types import ARITH, Type

_BARE_FILE = re.compile(r"[\w./<>+~-]+")
CHAIN = " → "  # between the spans of a call chain, outermost first


def format_program(prog: Program) -> str:
    """The whole program as text; `parse_program` gives it back unchanged."""
    lines = [f"program {_str(prog.file)}",
             f"parties {format_value(list(prog.parties))}",
             f"protocol {_str(prog.protocol)}",
             f"compute {format_value(list(prog.compute))}",
             f"protocol_args {format_value(prog.protocol_args)}",
             f"params {format_value(prog.params)}",
             f"frac_bits {prog.frac_bits}",
             f"next_id {prog.next_id}"]
    lines += [_fmt_input(d) for d in prog.inputs]
    lines += [_fmt_output(d) for d in prog.outputs]
    lines += _fmt_block("body", prog.body, "", with_yield=bool(prog.body.results))
    return "\n".join(lines) + "\n"


def _fmt_input(d: InputDecl) -> str:
    return "input " + _pairs({"party": d.party, "name": d.name, "shape": tuple(d.shape), "dtype": d.dtype,
                              "default": d.default, "head": d.head})


def _fmt_output(d: OutputDecl) -> str:
    return "output " + _pairs({"name": d.name, "to": list(d.to), "shape": tuple(d.shape), "dtype": d.dtype})


def _pairs(attrs: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in attrs.items())


def _fmt_block(head: str, block: Block, indent: str, with_yield: bool) -> list[str]:
    """`head(params) {`, the ops one level deeper, `yield(results)`, `}`."""
    params = f"({', '.join(_fmt_def(v) for v in block.params)})" if block.params else ""
    lines = [f"{indent}{head}{params} {{"]
    for op in block.ops:
        lines.extend(format_op(op, indent + "  "))
    if with_yield:
        lines.append(f"{indent}  yield({', '.join(_ref(v) for v in block.results)})")
    lines.append(f"{indent}}}")
    return lines


def format_op(op: Op, indent: str = "") -> list[str]:
    """One op as a line (and its loop body, if any, as the lines after it)."""
    lhs = f"{', '.join(_fmt_def(v) for v in op.outs)} = " if op.outs else ""
    attrs = f" {_pairs(op.attrs)}" if op.attrs else ""
    where = f"  @ {format_span(op.span)}" if op.span is not None else ""
    lines = [f"{indent}{lhs}{op.opcode}({', '.join(_ref(v) for v in op.ins)}){attrs}{where}"]
    if op.body is not None:
        lines.extend(_fmt_block("body", op.body, indent + "  ", with_yield=True))
    return lines


def _ref(v: Value) -> str:
    return f"%{v.id}"


def _fmt_def(v: Value) -> str:
    return f"%{v.id}: {format_type(v.type)}"


def format_type(t: Type) -> str:
    """`secret fix@16[128x1]`, `private(alice) int[scalar]`, `secret bool-shared int[3]`."""
    kind = "" if t.kind == ARITH else f" {t.kind}-shared"
    scale = f"@{t.scale}" if t.dtype == "fix" or t.scale else ""
    dims = "x".join(str(d) for d in t.shape) or "scalar"
    return f"{t.vis}{kind} {t.dtype}{scale}[{dims}]"


def format_span(span: Span) -> str:
    """The call chain down to the span, outermost first: `u.mpc:4:5-4:9 → ml.mpc:6:12-6:20`."""
    return CHAIN.join(_fmt_one_span(s) for s in span.chain())


def _fmt_one_span(s: Span) -> str:
    end = f"-{s.end_line}:{s.end_col}" if (s.end_line, s.end_col) != (0, 0) else ""
    return f"{_file(s.file)}:{s.line}:{s.col}{end}"


def _file(name: str) -> str:
    """A file name bare when it reads back unambiguously, else as a JSON string."""
    if _BARE_FILE.fullmatch(name) and "->" not in name and not name.startswith('"'):
        return name
    return _str(name)


def _str(s: str) -> str:
    return json.dumps(s)


def format_value(v: Any) -> str:
    """An attribute value as text that reads back to an equal value of the same type."""
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, np.ndarray):
        return _fmt_array(v)
    if isinstance(v, np.generic):
        return f"{v.dtype.name}({format_value(v.item())})"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, tuple):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{format_value(k)}: {format_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"the IR text has no form for an attribute of type {type(v).__name__}: {v!r}")


def _fmt_array(a: np.ndarray) -> str:
    """`array(uint64, (2, 2), [1, 2, 3, 4])`; other than integers and bools, the bytes in hex."""
    if a.dtype.kind not in "biufc":
        raise TypeError(f"the IR text has no form for a numpy array of {a.dtype}")
    shape = format_value(tuple(int(d) for d in a.shape))
    if a.dtype.kind in "biu":
        body = "[" + ", ".join(str(int(x)) for x in a.reshape(-1).tolist()) + "]"
    else:
        body = 'hex "' + np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes().hex() + '"'
    return f"array({a.dtype.name}, {shape}, {body})"
