"""User-facing errors: every mistake a user can make is a VeilError carrying a source span."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Where in a source file something came from (1-based line and column)."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0
    caller: "Span | None" = None  # the call site, when this span lies inside an inlined function

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def chain(self) -> list["Span"]:
        """The spans from the user's outermost call down to this one."""
        out: list[Span] = []
        s: Span | None = self
        while s is not None:
            out.append(s)
            s = s.caller
        return out[::-1]

    def where(self) -> str:
        """`user.mpc:27:13 → ml.mpc:13:5`: the call chain, outermost first."""
        return " → ".join(str(s) for s in self.chain())

    def called_from(self, site: "Span | None") -> "Span":
        """This span seen through a call at `site` (appended below site's own chain)."""
        if site is None:
            return self
        inner = self.caller.called_from(site) if self.caller is not None else site
        return Span(self.file, self.line, self.col, self.end_line, self.end_col, inner)


_SOURCES: dict[str, str] = {}


def register_source(file: str, text: str) -> None:
    """Remember a file's text so errors can quote the offending line."""
    _SOURCES[file] = text


def source_line(span: Span) -> str | None:
    """The text of the span's line, if the file is known (bytecode keeps base names: a source
    registered under a full path with that base name is found too)."""
    text = _SOURCES.get(span.file)
    if text is None:
        same = [t for f, t in _SOURCES.items() if os.path.basename(f) == span.file]
        text = same[0] if len(same) == 1 else None
    if text is None:
        try:
            with open(span.file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


class VeilError(Exception):
    """A mistake in the user's program, command or data; shown without a traceback."""

    kind = "error"
    exit_status = 2

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def format(self) -> str:
        """The message as a compiler prints it: location, line, caret, hint."""
        head = f"{self.span.where()}: " if self.span else ""
        out = [f"{head}{self.kind}: {self.message}"]
        if self.span:
            text = source_line(self.span)
            if text is not None:
                col = max(1, self.span.col)
                width = 1
                if self.span.end_line == self.span.line and self.span.end_col > col:
                    width = self.span.end_col - col
                text = text.replace("\t", " ")  # one column per character, so the caret lines up
                start = max(0, col - 60) if len(text) > 120 else 0
                shown = text[start:start + 120]
                out.append("    " + ("..." if start else "") + shown + ("..." if start + 120 < len(text) else ""))
                out.append("    " + " " * (col - 1 - start + (3 if start else 0)) + "^" * max(1, min(width, 120)))
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


class ErrorList(VeilError):
    """Several independent errors found in one pass, reported together."""

    def __init__(self, errors: list[VeilError]):
        super().__init__(errors[0].message, errors[0].span, errors[0].hint)
        self.errors = errors

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


class SyntaxErr(VeilError):
    """The source does not parse."""


class NameErr(VeilError):
    """A name is not defined."""


class TypeErr(VeilError):
    """Visibility, dtype or shape rules are broken."""


class ShapeErr(TypeErr):
    """Shapes do not match or broadcast."""


class AssertErr(VeilError):
    """A program's own `assert` on compile-time values failed."""


class UnsupportedErr(VeilError):
    """A construct the language or the chosen protocol does not (yet) support."""


class UsageErr(VeilError):
    """A bad command line: unknown option value, unknown -D name, bad --protocol spec."""


class RuntimeFailure(VeilError):
    """A failure while running: a peer lost, bad input data, a timeout."""

    exit_status = 1


class InputDataError(RuntimeFailure):
    """A party's input file is missing, malformed, of the wrong shape or out of range."""


class NetworkError(RuntimeFailure):
    """A peer could not be reached, went away, or refused the handshake."""


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like `name`, for 'did you mean' hints."""
    import difflib

    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return found[0] if found else None
