"""Golden tests of the compiler's diagnostics (LANGUAGE.md §10): for each user mistake the error
class, the message, the span (line:col), the hint, and exit status 2; several independent mistakes
reported together; the real CLI shows file:line:col and a caret, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from veil.compiler import driver
from veil.runtime.diagnostics import (AssertErr, ErrorList, NameErr, ShapeErr, SyntaxErr, TypeErr, UnsupportedErr,
                                  UsageErr, VeilError)
from veil.runtime import api

HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
X = 'x = input(alice, "x", shape=(3,))\n'  # line 3 after HEAD


def compile_error(src: str, params=None, *, head: bool = True, **kw) -> VeilError:
    with pytest.raises(VeilError) as info:
        driver.compile_source((HEAD if head else "") + src, "prog.mpc", params, **kw)
    return info.value


# (source after HEAD, class, message fragment, line, col, hint fragment)
GOLDEN = [
    # unknown name, with the nearest suggestion
    (X + "y = xx + 1\n", NameErr, "name 'xx' is not defined", 4, 5, "did you mean x?"),
    (X + "y = zeroes((3,))\n", NameErr, "name 'zeroes' is not defined", 4, 5, "did you mean zeros?"),
    # a condition that depends on a run-time value points to where()
    (X + "if x[0] > 0.0:\n    y = x\n", TypeErr, "`if` condition must be known at compile time", 4, 4,
     "where(c, a, b)"),
    # recursion
    ("def f(a):\n    return f(a)\ny = f(1)\n", TypeErr, "recursion: f calls itself", 4, 12, "write the recursion as a loop"),
    # wrong arity, unknown keyword, missing argument
    ("def f(a):\n    return a\ny = f(1, 2)\n", TypeErr, "f() takes 1 arguments, got 2", 5, 5, None),
    ("def f(a):\n    return a\ny = f(1, b=2)\n", TypeErr, "f() has no parameter 'b'", 5, 10, "its parameters: a"),
    ("def f(a, bb=1):\n    return a\ny = f(1, b=2)\n", TypeErr, "has no parameter 'b'", 5, 10, "did you mean bb?"),
    ("def f(a):\n    return a\ny = f()\n", TypeErr, "f() is missing argument 'a'", 5, 5, None),
    (X + "y = sum(x, axes=0)\n", TypeErr, "sum() has no keyword 'axes'", 4, 12, "did you mean axis?"),
    # unknown party
    ('x = input(dave, "x", shape=(3,))\n', NameErr, "unknown party 'dave'", 3, 11, "declare it with `party`"),
    (X + "output(x, to=alise)\n", NameErr, "unknown party 'alise'", 4, 14, "did you mean alice?"),
    # shape mismatch shows both shapes
    (X + "y = x + zeros((4,))\n", ShapeErr, "shapes (3,) and (4,) do not broadcast", 4, 5, "reshape/broadcast_to"),
    ("y = zeros((3, 2)) @ zeros((3, 2))\n", ShapeErr, "matmul shapes (3, 2) and (3, 2) do not match", 3, 5,
     "inner dimensions"),
    # slice length depending on the loop variable
    ("x = zeros((8, 2))\nfor i in range(4):\n    y = x[i:2 * i]\n", TypeErr,
     "slice's length depends on the loop variable", 5, 11, "known at compile time"),
    # loop-carried shape / dtype change points at the assignment
    ("x = zeros((3,))\nfor i in range(4):\n    x = zeros((4,))\n", TypeErr,
     "loop-carried 'x' changes from fix[3] to fix[4]", 5, 5, "keeps its shape and dtype"),
    (X + "acc = 0\nfor i in range(3):\n    acc = acc + x[i]\n", TypeErr,
     "loop-carried 'acc' changes from int[] to fix[]", 6, 5, "0.0 instead of 0"),
    # missing module / missing name in a module
    ("from nosuchmodule import f\n", NameErr, "no module named 'nosuchmodule'", 3, 1, "standard library"),
    ("from ml import sigmoidd\n", NameErr, "module ml has no 'sigmoidd'", 3, 1, "did you mean sigmoid?"),
    # a name defined only inside a loop, used after it
    ("for i in range(3):\n    t = i * 2\nu = t + 1\n", NameErr,
     "'t' is assigned only inside the loop at line 3", 5, 5, "before the loop"),
    ("for i in range(3):\n    pass\nu = i\n", NameErr, "the loop variable 'i' exists only inside its loop", 5, 5,
     None),
    # assignment to a subscript
    (X + "x[0] = 1.0\n", UnsupportedErr, "cannot assign to a subscript", 4, 1, "tensors are immutable"
     if False else "where(mask, new, old)"),
    (X + "x[0] += 1.0\n", UnsupportedErr, "cannot assign to a subscript", 4, 1, "concat"),
    # input / output in a loop
    ("for i in range(3):\n    x = input(alice, \"x\", shape=(3,))\n", UnsupportedErr,
     "input() inside a loop is not supported", 4, 9, "top level"),
    (X + "for i in range(3):\n    output(x, to=alice)\n    output(x, to=alice)\n", NameErr,
     "two outputs named 'x' go to the same party", 6, 5, None),  # one history per name
    # protocol arity, unknown party in the protocol
    ("protocol rep3(alice, bob)\n", TypeErr, "the protocol is declared twice", 3, 1, None),
    # more
    (X + "y = x ** -1\n", TypeErr, "`**` takes a non-negative int exponent", 4, 5, "sqrt/exp/log"),
    (X + "y = x[5]\n", ShapeErr, "index 5 is out of range for axis 0 of size 3", 4, 7, None),
    (X + "y = x[x > 0.0]\n", TypeErr, "cannot index by a private(alice) bool[3]", 4, 7, "where(c, a, b)"),
    (X + "y = x.foo\n", NameErr, "tensors have no attribute 'foo'", 4, 5, None),
    (X + "a, b = x\n", TypeErr, "cannot unpack", 4, 1, "must be a tuple"),
    (X + "y = x and x\n", TypeErr, "`and` works on compile-time values only", 4, 5, "use & and |"),
    ("def f(x):\n    for i in range(2):\n        return x\ny = f(1.0)\n", UnsupportedErr,
     "`return` inside a loop is not supported", 5, 9, "return after the loop"),
    ("return 1\n", TypeErr, "`return` outside a function", 3, 1, None),
    ("assert 1 > 2, \"too small\"\n", AssertErr, "assertion failed: too small", 3, 1, None),
    ("y = 10 ** 100\n", TypeErr, "does not fit in 64 bits", 3, 5, None),
    ("y = zeros((100000, 100000, 100000))\n", ShapeErr, "is too large", 3, 11, None),
    ("y = 1 / 0\n", TypeErr, "division by zero", 3, 5, None),
    ("break\n", NameErr, "`break` is not part of the veil language", 3, 1, "where(c, a, b)"),
    ("for i in range(2.5):\n    pass\n", TypeErr, "range() takes 1 to 3 compile-time ints", 3, 10, "params or literals"),
    ("x = zeros((2,))\nfor v in x:\n    pass\n", UnsupportedErr, "a for loop runs over range(...)", 4, 10,
     "for i in range(n)"),
]


@pytest.mark.parametrize("src, cls, message, line, col, hint", GOLDEN,
                         ids=[g[2][:40] for g in GOLDEN])
def test_golden_diagnostic(src, cls, message, line, col, hint):
    err = compile_error(src)
    if isinstance(err, ErrorList):
        err = err.errors[0]
    assert type(err) is cls, err.format()
    assert message in err.message
    assert (err.span.line, err.span.col) == (line, col), err.format()
    if hint is not None:
        assert err.hint and hint in err.hint
    assert err.exit_status == 2
    text = err.format()
    head = text.split(": error: ")[0].split(" → ")  # a call chain, outermost call first
    assert head[-1] == f"prog.mpc:{line}:{col}" and all(h.startswith("prog.mpc:") for h in head)
    lines = text.splitlines()
    assert lines[2].strip().startswith("^") and lines[2].index("^") == 4 + col - 1


@pytest.mark.parametrize("src, message, line, col, hint", [
    ("party alice, bob\nprotocol rep3(alice, bob)\n", "protocol rep3 takes 3 parties, got 2", 2, 1, "rep3(p0, p1, p2)"),
    ("party a, b, c\nprotocol rep3(a, b, d)\n", "unknown party 'd'", 2, 21, "declare it with `party`"),
    ("party a, b, c\nprotocol rep4(a, b, c)\n", "unknown protocol 'rep4'", 2, 1, "did you mean rep3?"),
    ("party a, b, c\nprotocol rep3(a, a, c)\n", "a party appears twice", 2, 1, None),
    ("party a, b\n", "rep3, the default protocol, needs 3 compute parties", 1, 1, None),
    ("x = 1\n", "the program declares no parties", 1, 1, "party alice, bob, carol"),
])
def test_protocol_and_party_diagnostics(src, message, line, col, hint):
    err = compile_error(src, head=False)
    assert message in err.message and (err.span.line, err.span.col) == (line, col)
    if hint:
        assert hint in err.hint
    assert err.exit_status == 2


def test_unknown_define_and_bad_protocol_spec_are_usage_errors():
    err = compile_error("param EPOCHS = 3\n", {"EPOCH": "2"})
    assert isinstance(err, UsageErr) and "-D EPOCH: the program has no param EPOCH" in err.message
    assert "did you mean EPOCHS?" in err.hint and err.exit_status == 2
    err = compile_error("param N = 3\n", {"N": "three"})
    assert isinstance(err, UsageErr) and "-D N=three: expected an int" in err.message
    for spec, fragment in [("rep3", "expected NAME(party, ...)"), ("rep3(alice, bob)", "takes 3 parties"),
                           ("rep3(alice, bob, dave)", "unknown party 'dave'"), ("spdz(a, b)", "unknown protocol"),
                           ("rep3(alice, 1b, carol)", "is not a party name"),
                           ("dealer2(alice, bob)", "needs a dealer")]:
        err = compile_error("x = 1\n", protocol=spec)
        assert isinstance(err, UsageErr), (spec, err.format())
        assert fragment in err.message and spec in err.message and err.exit_status == 2
    err = compile_error("x = 1\n", frac_bits=40)
    assert isinstance(err, UsageErr) and "--frac-bits 40" in err.message


def test_protocol_override_applies_without_a_protocol_line():
    prog = driver.front_end("party a, b, c, d\nx = 1\n", "p.mpc", protocol="rep3(b, c, d)")
    assert prog.compute == ["b", "c", "d"]


def test_several_syntax_errors_are_reported_together():
    err = compile_error("x = 1 +\ny = (2, \nz = 3\nw = $\nv = 4\n", head=False)
    assert isinstance(err, ErrorList)
    lines = [e.span.line for e in err.errors]
    assert lines[0] == 1 and 4 in lines
    assert all(isinstance(e, SyntaxErr) for e in err.errors)
    text = err.format()
    assert text.count("error:") == len(err.errors) >= 2


@pytest.mark.parametrize("src, message, line, col, hint", [
    ("if x\n    y = 1\n", "unexpected end of line", 1, 5, "ends with ':'"),
    ("for i in range(3):\n    x = 1\n  y = 2\n", "indentation matches no enclosing block", 3, 3, "consistently"),
    ("x = 1\n    y = 2\n", "unexpected indentation", 2, 5, "after a line ending in ':'"),
    ("def f(x):\nreturn x\n", "expected an indented block", 2, 1, "indented"),
    ("x = 'abc\n", "unterminated string", 1, 5, "same quote"),
    ("x = $\n", "unexpected character '$'", 1, 5, "subset of Python"),
    ("x = (1, 2\n", "something is not closed", 1, 9, None),
    ("while x:\n    pass\n", "`while` is not part of the veil language", 1, 1, "for i in range(n)"),
    ("x = lambda y: y\n", "`lambda` is not part of the veil language", 1, 5, "def"),
    ("x = 1 if y else 2\n", "`if` is not part of the veil language", 1, 7, "where(c, x, y)"),
    ("x = y = 1\n", "unexpected '='", 1, 7, "chained assignments"),
    ("f(a=1, 2)\n", "positional argument after a keyword argument", 1, 8, "positional arguments first"),
    ("x = a)\n", "unexpected ')'", 1, 6, None),
])
def test_syntax_diagnostics(src, message, line, col, hint):
    err = compile_error(src, head=False)
    if isinstance(err, ErrorList):
        err = err.errors[0]
    assert isinstance(err, SyntaxErr), err.format()
    assert message in err.message, err.format()
    assert (err.span.line, err.span.col) == (line, col), err.format()
    if hint:
        assert hint in err.hint
    assert err.format().startswith(f"prog.mpc:{line}:{col}: error:")


def test_independent_build_errors_are_reported_together_without_cascades():
    src = X + "y = xx + 1\nz = y * 2\nw = qq\nv = x + zeros((4,))\nu = v + z\n"
    err = compile_error(src)
    assert isinstance(err, ErrorList)
    assert [(e.span.line, type(e)) for e in err.errors] == [(4, NameErr), (6, NameErr), (7, ShapeErr)]
    assert "did you mean x?" in err.format()


def test_nesting_too_deep_is_an_error_not_a_crash():
    err = compile_error("y = " + "-" * 5000 + "1\n")
    assert "nested too deeply" in err.message and err.exit_status == 2
    try:  # deep parentheses either compile or are refused; never a crash
        driver.compile_source(HEAD + "y = " + "(" * 3000 + "1" + ")" * 3000 + "\n", "p.mpc")
    except VeilError as err:
        assert err.exit_status == 2


def test_unreadable_program_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.mpc"
    bad.write_bytes(b"\xff\xfe\x00x = 1\n")
    with pytest.raises(UsageErr, match="cannot read the program"):
        driver.compile_file(str(bad))


def test_cli_shows_location_caret_and_exit_2_without_traceback(tmp_path):
    prog = tmp_path / "oops.mpc"
    prog.write_text(HEAD + X + "y = xx * 2.0\nw = x @ zeros((4, 1))\noutput(w, to=alice)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-m", "veil.runtime.cli", "compile", str(prog), "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert f"{prog}:4:5: error: name 'xx' is not defined" in r.stderr
    assert f"{prog}:5:5: error: matmul shapes (3,) and (4, 1) do not match" in r.stderr
    assert "\n        ^^\n" in r.stderr  # the caret under `xx`
    assert "hint: did you mean x?" in r.stderr


def test_cli_unsupported_secret_op_compile_refuses_with_line(tmp_path):
    prog = tmp_path / "cmp.mpc"
    prog.write_text(HEAD + X + 'y = input(bob, "y", shape=(3,))\nm = int(x + y)\noutput(m, to=alice)\n')
    r = subprocess.run([sys.executable, "-m", "veil.runtime.cli", "compile", str(prog), "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{prog}:5:5: error: int() of a fix value on secret values is not yet supported by the rep3 protocol" \
        in r.stderr


def test_api_compile_errors_are_veil_errors():
    with pytest.raises(NameErr):
        api.compile(HEAD + "y = nope\n")


def test_error_inside_an_imported_function_names_the_chain_of_calls(tmp_path):
    (tmp_path / "m.mpc").write_text("def f(x):\n    return x @ x\n\n\ndef g(x):\n    return f(x) + 1\n")
    prog = tmp_path / "u.mpc"
    prog.write_text('from m import g\nparty alice, bob, carol\nx = input(alice, "x", (3, 2))\n'
                    'y = g(x)\noutput(y, to=alice)\n')
    with pytest.raises(ShapeErr) as info:
        driver.compile_file(str(prog))
    head = info.value.format().split(": error: ")[0]
    assert head == f"{prog}:4:5 → {tmp_path / 'm.mpc'}:6:12 → {tmp_path / 'm.mpc'}:2:12"
    assert [s.line for s in info.value.span.chain()] == [4, 6, 2]
