"""Parse .mpc source into the syntax tree of compiler.ast, with file:line:col spans."""
from __future__ import annotations

import ast as pyast
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from . import ast
from .errors import ErrorList, Span, SyntaxErr, VeilError, register_source


class _VeilIndenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("veil.compiler").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", postlex=_VeilIndenter(), propagate_positions=True,
                maybe_placeholders=True)


_TOKEN_NAMES = {
    "_NEWLINE": "end of line", "_INDENT": "indented block", "_DEDENT": "end of block",
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "$END": "end of file",
}


def _expected(tokens: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(t, t.lower()) for t in tokens})
    if len(names) > 6:
        return ""
    return "expected " + ", ".join(names)


def _syntax_error(err: UnexpectedInput, file: str) -> SyntaxErr:
    """Turn lark's exception into a user-facing error with a span and a hint."""
    line, col = getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1
    span = Span(file, line, col, line, col + 1)
    if isinstance(err, UnexpectedCharacters):
        return SyntaxErr(f"unexpected character {err.char!r}", span,
                         "veil programs use a subset of Python syntax (LANGUAGE.md)")
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "_INDENT":
            return SyntaxErr("unexpected indentation", span, "indent only after a line ending in ':'")
        if tok.type == "_DEDENT" or tok.type == "$END":
            return SyntaxErr("unexpected end of block", span, _expected(err.expected) or None)
        text = str(tok.value).strip() or tok.type
        hint = _expected(err.expected) or None
        if "COLON" in err.expected and tok.type == "_NEWLINE":
            hint = "a block statement (for, if, def) ends with ':'"
        return SyntaxErr(f"unexpected {text!r}", Span(file, tok.line, tok.column, tok.end_line or tok.line,
                                                    tok.end_column or tok.column + 1), hint)
    return SyntaxErr("invalid syntax", span)


def _span_of(file: str, meta) -> Span:
    if getattr(meta, "empty", True):
        return Span(file, 1, 1, 1, 2)
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)


class _ToAst(Transformer):
    """Builds compiler.ast nodes from lark's parse tree."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _s(self, meta) -> Span:
        return _span_of(self.file, meta)

    # statements
    @v_args(meta=True)
    def start(self, meta, items):
        return ast.Module(self._s(meta), self.file, [i for i in items if isinstance(i, ast.Node)])

    @v_args(meta=True)
    def party_stmt(self, meta, names):
        return ast.PartyDecl(self._s(meta), [ast.Name(_tok_span(self.file, n), str(n)) for n in names])

    @v_args(meta=True)
    def protocol_stmt(self, meta, items):
        name, args = items
        pos, kw = self._split_args(args or [])
        return ast.ProtocolDecl(self._s(meta), str(name), pos, kw)

    @v_args(meta=True)
    def param_stmt(self, meta, items):
        return ast.ParamDecl(self._s(meta), str(items[0]), items[1])

    def targets(self, items):
        return list(items)

    def testlist(self, items):
        first, last = items[0].span, items[-1].span
        return ast.TupleExpr(Span(self.file, first.line, first.col, last.end_line, last.end_col), list(items))

    @v_args(meta=True)
    def assign(self, meta, items):
        return ast.Assign(self._s(meta), items[0], items[1])

    @v_args(meta=True)
    def aug_assign(self, meta, items):
        target, op, value = items
        return ast.AugAssign(self._s(meta), target, str(op)[:-1], value)

    @v_args(meta=True)
    def expr_stmt(self, meta, items):
        return ast.ExprStmt(self._s(meta), items[0])

    @v_args(meta=True)
    def return_stmt(self, meta, items):
        return ast.Return(self._s(meta), items[0])

    @v_args(meta=True)
    def pass_stmt(self, meta, items):
        return ast.Pass(self._s(meta))

    @v_args(meta=True)
    def assert_stmt(self, meta, items):
        return ast.Assert(self._s(meta), items[0], items[1])

    def dotted_name(self, items):
        return ".".join(str(i) for i in items)

    @v_args(meta=True)
    def import_stmt(self, meta, items):
        return ast.Import(self._s(meta), items[0], str(items[1]) if items[1] else None)

    def import_as(self, items):
        return (str(items[0]), str(items[1]) if items[1] else None)

    def import_names(self, items):
        return list(items)

    @v_args(meta=True)
    def from_import(self, meta, items):
        return ast.FromImport(self._s(meta), items[0], items[1])

    def suite(self, items):
        return [i for i in items if isinstance(i, ast.Node)]

    @v_args(meta=True)
    def for_stmt(self, meta, items):
        var, it, body = items
        return ast.For(self._s(meta), ast.Name(_tok_span(self.file, var), str(var)), it, body)

    def elifs(self, items):
        return [(items[i], items[i + 1]) for i in range(0, len(items), 2)]

    @v_args(meta=True)
    def if_stmt(self, meta, items):
        cond, body, elifs, orelse = items
        tail = orelse or []
        for c, b in reversed(elifs):
            tail = [ast.If(c.span, c, b, tail)]
        return ast.If(self._s(meta), cond, body, tail)

    @v_args(meta=True)
    def parameter(self, meta, items):
        return ast.Param(self._s(meta), str(items[0]), items[1])

    def parameters(self, items):
        return list(items)

    @v_args(meta=True)
    def funcdef(self, meta, items):
        name, params, body = items
        return ast.FunctionDef(self._s(meta), str(name), params or [], body, self.file)

    # expressions
    @v_args(meta=True)
    def name(self, meta, items):
        return ast.Name(self._s(meta), str(items[0]))

    @v_args(meta=True)
    def number(self, meta, items):
        text = str(items[0]).replace("_", "")
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Num(self._s(meta), value)

    @v_args(meta=True)
    def string(self, meta, items):
        return ast.Str(self._s(meta), pyast.literal_eval(str(items[0])))

    @v_args(meta=True)
    def true(self, meta, items):
        return ast.Bool(self._s(meta), True)

    @v_args(meta=True)
    def false(self, meta, items):
        return ast.Bool(self._s(meta), False)

    @v_args(meta=True)
    def tuple(self, meta, items):
        return ast.TupleExpr(self._s(meta), [i for i in items if i is not None])

    @v_args(meta=True)
    def list(self, meta, items):
        return ast.ListExpr(self._s(meta), [i for i in items if i is not None])

    @v_args(meta=True)
    def binop(self, meta, items):
        return ast.BinOp(self._s(meta), str(items[1]), items[0], items[2])

    @v_args(meta=True)
    def pow_op(self, meta, items):
        return ast.BinOp(self._s(meta), "**", items[0], items[2])

    @v_args(meta=True)
    def bitor_op(self, meta, items):
        return ast.BinOp(self._s(meta), "|", items[0], items[1])

    @v_args(meta=True)
    def bitand_op(self, meta, items):
        return ast.BinOp(self._s(meta), "&", items[0], items[1])

    @v_args(meta=True)
    def unary(self, meta, items):
        return ast.Unary(self._s(meta), str(items[0]), items[1])

    @v_args(meta=True)
    def not_op(self, meta, items):
        return ast.Unary(self._s(meta), "not", items[0])

    @v_args(meta=True)
    def and_op(self, meta, items):
        return ast.Logic(self._s(meta), "and", items[0], items[1])

    @v_args(meta=True)
    def or_op(self, meta, items):
        return ast.Logic(self._s(meta), "or", items[0], items[1])

    @v_args(meta=True)
    def compare(self, meta, items):
        return ast.Compare(self._s(meta), str(items[1]), items[0], items[2])

    @v_args(meta=True)
    def kwarg(self, meta, items):
        return ast.Keyword(self._s(meta), str(items[0]), items[1])

    def arguments(self, items):
        return list(items)

    def _split_args(self, args):
        pos = [a for a in args if not isinstance(a, ast.Keyword)]
        kw = [a for a in args if isinstance(a, ast.Keyword)]
        for a in args[args.index(kw[0]):] if kw else []:
            if not isinstance(a, ast.Keyword):
                raise SyntaxErr("positional argument after a keyword argument", a.span,
                                "put positional arguments first")
        return pos, kw

    @v_args(meta=True)
    def call(self, meta, items):
        func, args = items
        pos, kw = self._split_args(args or [])
        return ast.Call(self._s(meta), func, pos, kw)

    @v_args(meta=True)
    def attribute(self, meta, items):
        return ast.Attribute(self._s(meta), items[0], str(items[1]))

    def subscripts(self, items):
        return list(items)

    @v_args(meta=True)
    def subscript(self, meta, items):
        return ast.Subscript(self._s(meta), items[0], items[1])

    @v_args(meta=True)
    def slice(self, meta, items):
        return ast.Slice(self._s(meta), *items)


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse a whole program; raises SyntaxErr (or ErrorList) with file:line:col."""
    register_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    errors: list[VeilError] = []

    def recover(err: UnexpectedInput) -> bool:
        errors.append(_syntax_error(err, file))
        return len(errors) < 20 and isinstance(err, UnexpectedToken) and err.token.type != "$END"

    try:
        tree = _lark().parse(text, on_error=recover)
    except UnexpectedInput as err:
        if not errors or (errors[-1].span and errors[-1].span.line != getattr(err, "line", 0)):
            errors.append(_syntax_error(err, file))
        tree = None
    except Exception as err:  # lark can fail oddly after recovery; the first error is what matters
        if not errors:
            errors.append(SyntaxErr(f"invalid syntax ({type(err).__name__})", Span(file, 1, 1)))
        tree = None
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorList(errors)
    try:
        return _ToAst(file).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, VeilError):
            raise err.orig_exc from None
        raise
