"""Parse .mpc source into the syntax tree of compiler.ast, with file:line:col spans."""
from __future__ import annotations

import ast as pyast
import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from . import ast
from veil.runtime.diagnostics import ErrorList, Span, SyntaxErr, VeilError, register_source


class _IndentProblem(LarkError):
    """An indentation mistake found by the indenter, with the line and column it is on."""

    def __init__(self, message: str, line: int, col: int, hint: str):
        super().__init__(message)
        self.message, self.line, self.col, self.hint = message, line, col, hint


class _VeilIndenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token: Token):
        """Like lark's, but a dedent to an unknown column is a positioned error."""
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise _IndentProblem("this line's indentation matches no enclosing block",
                                 token.end_line or token.line, len(indent_str) + 1,
                                 "indent each block consistently, e.g. by 4 spaces")

    def _process(self, stream):
        """Like lark's, tolerating a stray closing bracket (the parser reports it)."""
        token = None
        for token in stream:
            if token.type == self.NL_type:
                yield from self.handle_NL(token)
            else:
                yield token
            if token.type in self.OPEN_PAREN_types:
                self.paren_level += 1
            elif token.type in self.CLOSE_PAREN_types and self.paren_level > 0:
                self.paren_level -= 1
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", token) if token else Token(self.DEDENT_type, "")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("veil.compiler").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", postlex=_VeilIndenter(), propagate_positions=True,
                maybe_placeholders=True)


_TOKEN_NAMES = {
    "_NEWLINE": "end of line", "_INDENT": "indented block", "_DEDENT": "end of block",
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "$END": "end of file",
    "AUGOP": "'+=' (or -=, *=)", "LONG_STRING": "a string", "DOT": "'.'",
}

# Python words that are not veil, with what to write instead.
_NOT_VEIL = {
    "while": "loops are `for i in range(n)` with a compile-time n",
    "break": "a loop always runs all its iterations; select results with where(c, a, b)",
    "continue": "a loop always runs all its iterations; select results with where(c, a, b)",
    "class": "veil has functions (def) but no classes",
    "lambda": "define a function with def",
    "try": "veil has no exceptions",
    "except": "veil has no exceptions",
    "raise": "use assert on compile-time conditions",
    "with": "veil has no `with` statement",
    "del": "names cannot be deleted; just stop using them",
    "global": "functions read enclosing names directly; return new values instead of assigning them",
    "nonlocal": "functions read enclosing names directly; return new values instead of assigning them",
    "yield": "functions return values with return",
    "if": "`x if c else y` is not supported: use where(c, x, y), or an if statement on compile-time values",
    "else": "`x if c else y` is not supported: use where(c, x, y), or an if statement on compile-time values",
    "is": "compare values with == and !=",
    "in": "`in` only appears in `for i in range(...)`",
    "async": "veil has no async code",
    "await": "veil has no async code",
}


_STATEMENT_WORDS = {"while", "class", "try", "except", "raise", "with", "del", "global", "nonlocal", "yield",
                    "async", "await"}


_DECLARATION_WORDS = {"party": "party alice, bob, carol", "protocol": "protocol rep3(alice, bob, carol)",
                      "param": "param N = 100", "precision": "precision 20"}


def _expected(tokens: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(t, t.lower()) for t in tokens})
    if len(names) > 6:
        return ""
    return "expected " + ", ".join(names)


def _after_header_without_block(text: str, line: int) -> bool:
    """Whether `line` follows a line ending in ':' without being indented deeper than it."""
    lines = text.splitlines()
    if not 2 <= line <= len(lines):
        return False
    prev = next((ln for ln in reversed(lines[:line - 1]) if ln.strip() and not ln.strip().startswith("#")), None)
    if prev is None or not prev.split("#")[0].rstrip().endswith(":"):
        return False
    here = lines[line - 1]
    return len(here) - len(here.lstrip()) <= len(prev) - len(prev.lstrip())


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _syntax_error(err: Exception, file: str, text: str) -> SyntaxErr:
    """Turn lark's exception into a user-facing error with a span and a hint."""
    if isinstance(err, _IndentProblem):
        return SyntaxErr(err.message, Span(file, err.line, err.col, err.line, err.col + 1), err.hint)
    line, col = getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1
    if line < 1:
        line, col = max(1, len(text.splitlines())), 1
    span = Span(file, line, col, line, col + 1)
    if isinstance(err, UnexpectedCharacters):
        if err.char in "'\"":
            return SyntaxErr("unterminated string", span,
                             "close it with the same quote on this line (a string over several lines uses \"\"\")")
        if err.char == "\t" or err.char.isspace():
            return SyntaxErr("unexpected whitespace character", span, "indent with spaces")
        return SyntaxErr(f"unexpected character {err.char!r}", span,
                         "veil programs use a subset of Python syntax (LANGUAGE.md)")
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "_INDENT":
            line = (tok.end_line or tok.line or 1)
            ind = len(_line_text(text, line)) - len(_line_text(text, line).lstrip())
            return SyntaxErr("unexpected indentation", Span(file, line, ind + 1, line, ind + 2),
                             "indent only the lines of a block, after a line ending in ':'")
        if _after_header_without_block(text, tok.line or line):
            here = _line_text(text, tok.line or line)
            ind = len(here) - len(here.lstrip())
            return SyntaxErr("expected an indented block", Span(file, tok.line or line, ind + 1, tok.line or line, ind + 2),
                             "the lines of a block after `:` are indented, e.g. by 4 spaces")
        if "_INDENT" in err.expected and tok.type not in ("_NEWLINE",):
            tspan = Span(file, tok.line or line, tok.column or 1, tok.line or line, (tok.column or 1) + 1)
            return SyntaxErr("expected an indented block", tspan,
                             "the lines of a block after `:` are indented, e.g. by 4 spaces")
        if tok.type in ("_DEDENT", "$END"):
            return SyntaxErr("unexpected end of input: something is not closed", span,
                             _expected(err.expected) or "check for an unclosed '(' or '['")
        shown = _TOKEN_NAMES.get(tok.type) if tok.type.startswith("_") else None
        text_tok = shown or repr(str(tok.value).strip() or tok.type)
        tspan = Span(file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)
        words = list(re.finditer(r"[A-Za-z_]\w*", _line_text(text, tok.line)))
        if words and words[0].group() in _STATEMENT_WORDS:
            w = words[0]
            return SyntaxErr(f"`{w.group()}` is not part of the veil language",
                             Span(file, tok.line, w.start() + 1, tok.line, w.end() + 1), _NOT_VEIL[w.group()])
        if words and words[0].group() in _DECLARATION_WORDS and tok.type == "EQUAL":
            w = words[0]
            return SyntaxErr(f"`{w.group()}` is a declaration word and cannot be assigned to",
                             Span(file, tok.line, w.start() + 1, tok.line, w.end() + 1),
                             f"choose another name; `{w.group()}` starts a {w.group()} line, e.g. "
                             f"{_DECLARATION_WORDS[w.group()]}")
        if str(tok.value) in _NOT_VEIL:
            return SyntaxErr(f"`{tok.value}` is not part of the veil language", tspan, _NOT_VEIL[str(tok.value)])
        if any(w.group() == "lambda" for w in words):
            w = next(w for w in words if w.group() == "lambda")
            return SyntaxErr("`lambda` is not part of the veil language",
                             Span(file, tok.line, w.start() + 1, tok.line, w.end() + 1), _NOT_VEIL["lambda"])
        hint = _expected(err.expected) or None
        if "COLON" in err.expected and tok.type == "_NEWLINE":
            hint = "a block statement (for, if, elif, else, def) ends with ':'"
        elif tok.type == "EQUAL" and "COMMA" in err.expected:
            hint = "one `=` per assignment: chained assignments (a = b = 1) are not supported"
        return SyntaxErr(f"unexpected {text_tok}", tspan, hint)
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

    @v_args(meta=True)
    def precision_stmt(self, meta, items):
        return ast.PrecisionDecl(self._s(meta), items[0])

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
        try:
            return ast.Str(self._s(meta), pyast.literal_eval(str(items[0])))
        except (SyntaxError, ValueError):
            raise SyntaxErr("invalid string literal", self._s(meta), "check its escape sequences (\\n, \\\\, ...)") from None

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


def _blank_statement(text: str, line: int) -> str | None:
    """The text with line `line` neutralized, so parsing can go on and find later mistakes; None if
    that changes nothing. A block header becomes `if True:` so its body still parses."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    old = lines[line - 1]
    indent = old[:len(old) - len(old.lstrip())]
    nxt = next((ln for ln in lines[line:] if ln.strip() and not ln.strip().startswith("#")), "")
    nxt_indent = len(nxt) - len(nxt.lstrip())
    new = indent + "if True:" if nxt and nxt_indent > len(indent.expandtabs(8)) else ""
    if new == old:
        return None
    lines[line - 1] = new
    return "\n".join(lines)


MAX_SYNTAX_ERRORS = 10


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse a whole program; raises SyntaxErr (or ErrorList) with file:line:col. After a mistake
    the offending line is blanked out and parsing resumes, so independent mistakes are reported
    together (one per line)."""
    register_source(file, text)
    if not text.endswith("\n"):
        text += "\n"
    errors: list[VeilError] = []
    work = text
    tree = None
    while True:
        try:
            tree = _lark().parse(work)
            break
        except (UnexpectedInput, _IndentProblem) as err:
            e = _syntax_error(err, file, text)
        except RecursionError:
            e = SyntaxErr("the program is nested too deeply", Span(file, 1, 1),
                          "split deeply nested expressions into several assignments")
        except (LarkError, AssertionError, IndexError) as err:  # lark can fail oddly on strange input
            e = SyntaxErr(f"invalid syntax ({type(err).__name__})", Span(file, 1, 1))
        errors.append(e)
        nxt = _blank_statement(work, e.span.line) if e.span else None
        if nxt is None or len(errors) >= MAX_SYNTAX_ERRORS or \
                (len(errors) > 1 and errors[-2].span == e.span):
            break
        work = nxt
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorList(errors)
    try:
        return _ToAst(file).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, VeilError):
            raise err.orig_exc from None
        if isinstance(err.orig_exc, RecursionError):
            raise SyntaxErr("the program is nested too deeply", Span(file, 1, 1),
                            "split deeply nested expressions into several assignments") from None
        raise SyntaxErr(f"invalid syntax ({type(err.orig_exc).__name__})", Span(file, 1, 1)) from None
    except RecursionError:
        raise SyntaxErr("the program is nested too deeply", Span(file, 1, 1),
                        "split deeply nested expressions into several assignments") from None
