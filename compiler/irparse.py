"""Read the IR text of irtext.py back into a Program; every malformed line is a SyntaxErr at its spot.

    program   := header* block
    header    := ("program" | "protocol") STRING | ("parties" | "compute") LIST
               | ("protocol_args" | "params") DICT | ("frac_bits" | "next_id") INT
               | ("input" | "output") (NAME "=" value)*
    block     := "body" ["(" def ("," def)* ")"] "{" (op | "yield(" refs ")")* "}"
    op        := [def ("," def)* "="] NAME "(" refs ")" (NAME "=" value)* ["@" span ("→" span)*] [block]
    def       := "%" INT ":" type          type := vis [KIND "-shared"] DTYPE ["@" INT] "[" dims "]"
    span      := file ":" INT ":" INT ["-" INT ":" INT]
    value     := INT | FLOAT | STRING | None | True | False | inf | nan | "[" ... "]" | "(" ... ")"
               | "{" value ":" value ... "}" | DTYPE "(" value ")" | "array(" DTYPE "," tuple "," (list | "hex" STRING) ")"
"""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from veil.runtime.diagnostics import Span, SyntaxErr, register_source
from .ir import Block, InputDecl, Op, OutputDecl, Program, Value
from .types import SHARE_KINDS, Type

HINT = "IR text is what `veil compile --emit-ir` prints; see docs/cli.md"
_NAME = re.compile(r"[A-Za-z_]\w*")
_INT = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf\b|nan\b)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TYPE = re.compile(r"(public|secret|private\([A-Za-z_]\w*\))(?:\s+([A-Za-z_]\w*)-shared)?\s+"
                   r"([A-Za-z_]\w*)(?:@(-?\d+))?\[(scalar|\d+(?:x\d+)*)\]")
_FILE = re.compile(r"[\w./<>+~-]+")
_YIELD = re.compile(r"yield\s*\(")
_BODY = re.compile(r"body\b")
_ID = re.compile(r"\d+")
_INT_LIST = re.compile(r"\[\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\]")
DTYPES = ("fix", "int", "bool")


class Cursor:
    """One line of IR text and a position in it; errors point at that position."""

    def __init__(self, text: str, file: str, lineno: int):
        self.s, self.file, self.lineno, self.i = text, file, lineno, 0

    def span(self, at: int | None = None) -> Span:
        """The span of one character: at `at`, or at the current position."""
        col = (self.i if at is None else at) + 1
        return Span(self.file, self.lineno, col, self.lineno, col + 1)

    def pos(self) -> int:
        """The position of the next thing on the line (after blanks)."""
        self.ws()
        return self.i

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def peek(self, lit: str) -> bool:
        self.ws()
        return self.s.startswith(lit, self.i)

    def take(self, lit: str) -> bool:
        if self.peek(lit):
            self.i += len(lit)
            return True
        return False

    def expect(self, lit: str, what: str | None = None) -> None:
        if not self.take(lit):
            raise SyntaxErr(f"expected {what or repr(lit)}, found {self.rest()}", self.span(), HINT)

    def match(self, rx: re.Pattern) -> re.Match | None:
        self.ws()
        m = rx.match(self.s, self.i)
        if m:
            self.i = m.end()
        return m

    def need(self, rx: re.Pattern, what: str) -> re.Match:
        m = self.match(rx)
        if m is None:
            raise SyntaxErr(f"expected {what}, found {self.rest()}", self.span(), HINT)
        return m

    def rest(self) -> str:
        self.ws()
        if self.i >= len(self.s) or self.s[self.i] == "#":
            return "the end of the line"
        return repr(self.s[self.i:self.i + 20])

    def done(self) -> bool:
        self.ws()
        return self.i >= len(self.s) or self.s[self.i] == "#"

    def end(self) -> None:
        if not self.done():
            raise SyntaxErr(f"unexpected {self.rest()}", self.span(), HINT)


# ---- values ------------------------------------------------------------------------------------
def parse_value(c: Cursor) -> Any:
    """One attribute value (the forms irtext.format_value prints)."""
    start = c.pos()
    if c.peek('"'):
        return json.loads(c.need(_STRING, 'a "string" closed on its line').group())
    if c.take("["):
        return _items(c, "]")
    if c.take("("):
        return tuple(_items(c, ")"))
    if c.take("{"):
        return _dict(c)
    m = c.match(_NUMBER)
    if m:
        text = m.group()
        return float(text) if any(ch in text for ch in ".eEn") else int(text)
    m = c.match(_NAME)
    if m is None:
        raise SyntaxErr(f"expected a value, found {c.rest()}", c.span(), HINT)
    word = m.group()
    if word in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[word]
    if word == "array":
        return _array(c)
    dtype = _numpy_dtype(c, word, start)
    c.expect("(")
    value = parse_value(c)
    c.expect(")")
    return dtype.type(value)


def _items(c: Cursor, close: str) -> list:
    out: list = []
    while not c.take(close):
        out.append(parse_value(c))
        if not c.take(","):
            c.expect(close, f"',' or {close!r}")
            break
    return out


def _dict(c: Cursor) -> dict:
    out: dict = {}
    while not c.take("}"):
        key = parse_value(c)
        c.expect(":")
        out[key] = parse_value(c)
        if not c.take(","):
            c.expect("}", "',' or '}'")
            break
    return out


def _numpy_dtype(c: Cursor, word: str, at: int) -> np.dtype:
    try:
        return np.dtype(word)
    except TypeError:
        raise SyntaxErr(f"unknown value {word!r}", c.span(at), HINT) from None


def _array(c: Cursor) -> np.ndarray:
    """`array(DTYPE, (shape), [values])` or `array(DTYPE, (shape), hex "bytes")`."""
    c.expect("(")
    at = c.pos()
    dtype = _numpy_dtype(c, c.need(_NAME, "a numpy dtype").group(), at)
    c.expect(",")
    at = c.pos()
    shape = parse_value(c)
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SyntaxErr("an array's shape is a tuple of sizes, e.g. (2, 3)", c.span(at), HINT)
    c.expect(",")
    at = c.pos()
    if c.take("hex"):
        try:
            flat = np.frombuffer(bytes.fromhex(json.loads(c.need(_STRING, "a hex string").group())),
                                 dtype=dtype.newbyteorder("<")).astype(dtype)
        except ValueError as err:
            raise SyntaxErr(f"bad array bytes ({err})", c.span(at), HINT) from None
    else:
        m = c.match(_INT_LIST)
        if m is None:
            raise SyntaxErr(f"expected the array's values [..] or hex \"..\", found {c.rest()}", c.span(), HINT)
        try:
            flat = np.array([int(x) for x in (m.group(1) or "").split(",") if x.strip()], dtype=dtype)
        except OverflowError as err:
            raise SyntaxErr(f"an array value does not fit {dtype} ({err})", c.span(at), HINT) from None
    c.expect(")")
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise SyntaxErr(f"the array has {flat.size} values but its shape {shape} holds "
                      f"{int(np.prod(shape, dtype=np.int64))}", c.span(at), HINT)
    return flat.reshape(shape)


# ---- types and spans ---------------------------------------------------------------------------
def parse_type(c: Cursor) -> Type:
    at = c.pos()
    m = c.need(_TYPE, "a type such as secret fix@16[3x4]")
    vis, kind, dtype, scale, dims = m.groups()
    if dtype not in DTYPES:
        raise SyntaxErr(f"unknown dtype {dtype!r} (one of {', '.join(DTYPES)})", c.span(at), HINT)
    kind = kind or "arith"
    if kind not in SHARE_KINDS:
        raise SyntaxErr(f"unknown share kind {kind!r} (one of {', '.join(SHARE_KINDS)})", c.span(at), HINT)
    shape = () if dims == "scalar" else tuple(int(d) for d in dims.split("x"))
    return Type(vis, dtype, shape, int(scale or 0), kind)


def parse_span(c: Cursor) -> Span:
    """`file:line:col[-end_line:end_col]`, several joined by `→` (or `->`), outermost first."""
    span: Span | None = None
    while True:
        file = json.loads(c.need(_STRING, "a string").group()) if c.peek('"') else \
            c.need(_FILE, "a file name").group()
        c.expect(":")
        line = int(c.need(_INT, "a line number").group())
        c.expect(":")
        col = int(c.need(_INT, "a column").group())
        end_line = end_col = 0
        if not c.peek("->") and c.take("-"):
            end_line = int(c.need(_INT, "an end line").group())
            c.expect(":")
            end_col = int(c.need(_INT, "an end column").group())
        span = Span(file, line, col, end_line, end_col, span)
        if not (c.take("→") or c.take("->")):
            return span


# ---- the program -------------------------------------------------------------------------------
class Parser:
    """Reads a program line by line, keeping every value it defines so uses find their definition."""

    def __init__(self, text: str, file: str):
        self.lines = text.splitlines()
        self.file = file
        self.n = 0
        self.values: dict[int, Value] = {}

    def next_line(self) -> Cursor | None:
        """The next line with something on it, or None at the end."""
        while self.n < len(self.lines):
            self.n += 1
            c = Cursor(self.lines[self.n - 1], self.file, self.n)
            if not c.done():
                return c
        return None

    def eof_error(self, what: str) -> SyntaxErr:
        line = max(1, len(self.lines))
        return SyntaxErr(f"the IR text ends before {what}", Span(self.file, line, 1, line, 2), HINT)

    def program(self) -> Program:
        fields: dict[str, Any] = {}
        inputs: list[InputDecl] = []
        outputs: list[OutputDecl] = []
        while True:
            c = self.next_line()
            if c is None:
                raise self.eof_error("the program's `body {`")
            at = c.pos()
            word = c.need(_NAME, "a header keyword or `body {`").group()
            if word == "body":
                break
            if word in ("input", "output"):
                (inputs if word == "input" else outputs).append(self.decl(c, word, at))
            elif word in HEADER_FIELDS:
                if word in fields:
                    raise SyntaxErr(f"{word} is given twice", c.span(at), HINT)
                fields[word] = self.header_value(c, word)
            else:
                raise SyntaxErr(f"unknown header keyword {word!r}", c.span(at), HINT)
            c.end()
        missing = [k for k in HEADER_FIELDS if k not in fields]
        if missing:
            raise SyntaxErr(f"the header lacks {', '.join(missing)}", c.span(at), HINT)
        body = self.block(c, top=True)
        if self.next_line() is not None:
            raise SyntaxErr("text after the program's body", Cursor("", self.file, self.n).span(), HINT)
        prog = Program(fields["program"], fields["parties"], fields["protocol"], fields["compute"],
                       fields["protocol_args"], fields["params"], fields["frac_bits"], body,
                       inputs, outputs, fields["next_id"])
        if prog.next_id < max(self.values, default=0):
            raise SyntaxErr(f"next_id {prog.next_id} is below the largest value id %{max(self.values)}",
                            Span(self.file, 1, 1, 1, 2), HINT)
        return prog

    def header_value(self, c: Cursor, word: str) -> Any:
        at = c.pos()
        value = parse_value(c)
        want = HEADER_FIELDS[word]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if ok and want is list:
            ok = all(isinstance(x, str) for x in value)
        if not ok:
            raise SyntaxErr(f"{word} takes {HEADER_WHAT[want]}", c.span(at), HINT)
        return value

    def decl(self, c: Cursor, word: str, at: int) -> InputDecl | OutputDecl:
        attrs = self.attrs(c)
        cls, keys = (InputDecl, INPUT_KEYS) if word == "input" else (OutputDecl, OUTPUT_KEYS)
        if list(attrs) != keys:
            raise SyntaxErr(f"an {word} line has {' '.join(k + '=' for k in keys)} in that order",
                            c.span(at), HINT)
        return cls(**attrs)

    def attrs(self, c: Cursor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while not c.done() and not c.peek("@") and not c.peek("{"):
            at = c.pos()
            key = c.need(_NAME, "an attribute name").group()
            if key in out:
                raise SyntaxErr(f"attribute {key} is given twice", c.span(at), HINT)
            c.expect("=", f"'=' after {key}")
            out[key] = parse_value(c)
        return out

    def block(self, c: Cursor, top: bool = False) -> Block:
        """A block whose `body` keyword was just read on line c."""
        params = []
        if c.take("("):
            while not c.take(")"):
                params.append(self.define(c))
                if not c.take(","):
                    c.expect(")", "',' or ')'")
                    break
        c.expect("{", "'{' to open the block")
        c.end()
        block = Block(params=params)
        while True:
            c = self.next_line()
            if c is None:
                raise self.eof_error("the '}' that closes a block")
            if c.take("}"):
                c.end()
                return block
            if c.match(_YIELD):
                block.results = self.refs(c)
                c.end()
                c = self.next_line()
                if c is None:
                    raise self.eof_error("the '}' after yield")
                c.expect("}", "'}' after yield")
                c.end()
                return block
            block.ops.append(self.op(c))

    def op(self, c: Cursor) -> Op:
        outs = []
        if c.peek("%"):
            while True:
                outs.append(self.define(c))
                if not c.take(","):
                    break
            c.expect("=", "'=' after the results")
        opcode = c.need(_NAME, "an opcode").group()
        c.expect("(", f"'(' after {opcode}")
        ins = self.refs(c)
        attrs = self.attrs(c)
        span = parse_span(c) if c.take("@") else None
        c.end()
        op = Op(opcode, outs, ins, attrs, span)
        if self.n < len(self.lines):
            save = self.n
            nxt = self.next_line()
            if nxt is not None and nxt.match(_BODY):
                op.body = self.block(nxt)
            else:
                self.n = save
        return op

    def define(self, c: Cursor) -> Value:
        at = c.pos()
        c.expect("%", "a value %N")
        vid = int(c.need(_ID, "a value number").group())
        c.expect(":", f"':' and the type of %{vid}")
        if vid in self.values:
            raise SyntaxErr(f"%{vid} is defined twice", c.span(at), HINT)
        v = Value(vid, parse_type(c))
        self.values[vid] = v
        return v

    def refs(self, c: Cursor) -> list[Value]:
        """Value uses up to the closing ')' (the '(' already read)."""
        out = []
        while not c.take(")"):
            at = c.pos()
            c.expect("%", "a value %N or ')'")
            vid = int(c.need(_ID, "a value number").group())
            if vid not in self.values:
                raise SyntaxErr(f"%{vid} is used before it is defined", c.span(at), HINT)
            out.append(self.values[vid])
            if not c.take(","):
                c.expect(")", "',' or ')'")
                break
        return out


HEADER_FIELDS: dict[str, type] = {"program": str, "parties": list, "protocol": str, "compute": list,
                                  "protocol_args": dict, "params": dict, "frac_bits": int, "next_id": int}
HEADER_WHAT = {str: "a string", list: "a list of strings", dict: "a {dict}", int: "an integer"}
INPUT_KEYS = ["party", "name", "shape", "dtype", "default", "head"]
OUTPUT_KEYS = ["name", "to", "shape", "dtype"]


def parse_program(text: str, file: str) -> Program:
    """The Program an IR text describes; a SyntaxErr names the .ir line and column of a mistake."""
    register_source(file, text)
    return Parser(text, file).program()
