"""The documentation's examples run: every ```python block of docs/api.md (in order, sharing names,
each as its own .py file so @program can read its source), and every ```mpc block of
docs/language.md, a complete program compiled and emulated on small generated inputs."""
from __future__ import annotations

import ast
import pathlib
import re
import runpy

import numpy as np
import pytest

from veil.compiler import driver
from veil.runtime import api

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w[\w-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def blocks(doc: str, lang: str) -> list[tuple[int, str]]:
    """(line, code) of each fenced block of that language in docs/<doc>."""
    path = ROOT / "docs" / doc
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == lang]


def test_api_md_examples_run(tmp_path, monkeypatch):
    found = blocks("api.md", "python")
    assert len(found) >= 10
    monkeypatch.chdir(ROOT)  # examples name programs/... relative to the repository
    names: dict = {}
    for i, (line, code) in enumerate(found):
        path = tmp_path / f"api.md.block-{i}.py"
        path.write_text(code, encoding="utf-8")
        try:
            names = runpy.run_path(str(path), init_globals=names, run_name=f"api_md_block_{i}")
        except Exception as err:
            raise AssertionError(f"docs/api.md, the block at line {line} fails: {err}") from err


def sample_inputs(manifest: dict, rng: np.random.Generator) -> dict:
    """Small values for every input without a default: fix in [-1, 1], int in [-5, 5], bool."""
    out: dict = {}
    for party, decls in manifest["inputs"].items():
        for d in decls:
            if f"{party}.{d['name']}" in manifest.get("defaults", {}):
                continue
            shape = tuple(d["shape"])
            value = {"fix": lambda: rng.uniform(-1, 1, shape), "int": lambda: rng.integers(-5, 6, shape),
                     "bool": lambda: rng.random(shape) < 0.5}[d["dtype"]]()
            out.setdefault(party, {})[d["name"]] = value
    return out


LANGUAGE = blocks("language.md", "mpc")


@pytest.mark.parametrize("line, code", LANGUAGE, ids=[f"line{n}" for n, _ in LANGUAGE])
def test_language_md_programs_compile_and_emulate(line, code, monkeypatch):
    monkeypatch.chdir(ROOT)
    padded = "\n" * (line - 1) + code  # errors then name the line of docs/language.md itself
    prog = api.front_end(padded, file=str(ROOT / "docs" / "language.md"))
    out = api.emulate(prog, sample_inputs(driver.declarations(prog), np.random.default_rng(line)))
    assert set(out) == set(prog.parties)
    assert any(out.values()) or not prog.outputs


# ---- the error catalogue of docs/language.md -------------------------------------------------
ERROR_CLASSES = {"SyntaxErr", "NameErr", "TypeErr", "ShapeErr", "AssertErr", "UnsupportedErr", "UsageErr",
                 "OverflowWarning", "EmulationError", "RuntimeFailure", "InputDataError"}
BEGIN, END = "<!-- errors:begin (generated: python tests/test_docs.py --write-errors) -->", "<!-- errors:end -->"


def _template(node: ast.AST) -> str:
    """A message or hint expression as text, with {name} for what is filled in at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            else:
                v = part.value  # type: ignore[attr-defined]
                name = v.id if isinstance(v, ast.Name) else v.attr if isinstance(v, ast.Attribute) else "…"
                quote = "'" if part.conversion == ord("r") else ""  # type: ignore[attr-defined]
                out.append(quote + "{" + name + "}" + quote)
        return "".join(out)
    if isinstance(node, ast.IfExp):
        a, b = _template(node.body), _template(node.orelse)
        return a if not b or b == "(varies)" else f"{a} — or — {b}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    if isinstance(node, ast.Constant) and node.value is None:
        return ""
    if isinstance(node, ast.Name):
        return "{" + node.id + "}"
    return "(varies)"


def error_catalogue() -> list[tuple[str, str, str, str]]:
    """(source file, error class, message, hint) of every error the compiler raises, in source order."""
    seen, rows = set(), []
    for path in sorted((ROOT / "compiler").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERROR_CLASSES):
                continue
            if not node.args:
                continue
            msg = _template(node.args[0])
            hint_node = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "hint"), None)
            hint = _template(hint_node) if hint_node is not None else ""
            key = (node.func.id, msg, hint)
            if len(re.sub(r"\{[^}]*\}|\(varies\)|\W", "", msg)) >= 3 and key not in seen:
                seen.add(key)
                rows.append((str(path.relative_to(ROOT)), node.func.id, msg, hint))
    return rows


def catalogue_markdown() -> str:
    """The catalogue as markdown tables, one per compiler file."""
    out: list[str] = []
    current = None
    for file, kind, msg, hint in error_catalogue():
        if file != current:
            current = file
            out += ["", f"**{file}**", "", "| error | message | hint |", "|---|---|---|"]
        cell = [s.replace("|", "\\|").replace("\n", " ") for s in (msg, hint)]
        out.append(f"| {kind} | {cell[0]} | {cell[1]} |")
    return "\n".join(out).strip() + "\n"


def write_catalogue() -> None:
    """Replace the generated part of docs/language.md's Errors section."""
    path = ROOT / "docs" / "language.md"
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{catalogue_markdown()}{END}{tail}", encoding="utf-8")


def test_language_md_lists_every_compiler_error():
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    documented = text.split(BEGIN)[1].split(END)[0]
    missing = [m for _, _, m, _ in error_catalogue() if m.replace("|", "\\|").replace("\n", " ") not in documented]
    assert not missing, (f"{len(missing)} compiler errors are not in docs/language.md, e.g. {missing[0]!r}; "
                         "regenerate with: python tests/test_docs.py --write-errors")


if __name__ == "__main__":
    import sys

    if "--write-errors" in sys.argv:
        write_catalogue()


def test_tutorial_shows_the_shipped_fraud_program():
    """docs/tutorial.md's program is programs/fraud_detection.mpc as shipped (minus its docstring)."""
    (_, code), = blocks("tutorial.md", "python")[:1]
    shipped = (ROOT / "programs" / "fraud_detection.mpc").read_text(encoding="utf-8")
    assert code.strip() in shipped, "docs/tutorial.md's program differs from programs/fraud_detection.mpc"
