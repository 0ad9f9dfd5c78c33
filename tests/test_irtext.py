"""The text IR is lossless: every program printed with --emit-ir parses back to a program that
prints the same and compiles to the same bytecode; golden pass tests read and write it; malformed
text is a SyntaxErr at its .ir line; --emit-lowered marks the rounds the cost report counts.

Regenerate the golden files with: python tests/test_irtext.py --write-golden
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from veil.compiler import driver
from veil.compiler.emulate import emulate
from veil.compiler.ir import Program, walk
from veil.compiler.irtext import format_program, parse_program
from veil.compiler.lowered_text import format_lowered
from veil.compiler.passes import cse, dce, fold, place_truncations, simplify
from veil.compiler.types import PUBLIC, SECRET
from veil.runtime.diagnostics import SyntaxErr, UnsupportedErr, UsageErr

sys.path.insert(0, str(Path(__file__).parent))
from test_passes import IR  # noqa: E402  (the hand-written IR builder of the pass tests)
from veil_cli import FRAUD, ROOT, veil  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
HEAD4 = "party alice, bob, carol, dave\nprotocol rep3(alice, bob, carol)\n"
DEALER2 = "party alice, bob, carol, dave\nprotocol dealer2(alice, bob, dealer=carol)\n"


def outs(names: str, to: str = "alice") -> str:
    return "".join(f"output({n}, to={to})\n" for n in names.split())


# ---- programs from the other tests (test_language, test_mpc, test_cost, test_dealer2) -------------
SNIPPETS: dict[str, str] = {
    "int_bool_arith": HEAD + 'i = input(alice, "i", shape=(3, 4), dtype=int)\nj = input(bob, "j", shape=(3, 4), dtype=int)\n'
    'm = input(carol, "m", shape=(3, 4), dtype=bool)\nx = input(alice, "x", shape=(3, 4))\n'
    's = i + j\np = i * j\nq = i * m\nr = x * m + i\nk = sum(m)\nt = i @ j.T\nn = -i\n' + outs("s p q r k t n"),
    "private_compare": HEAD + 'x = input(alice, "x", shape=(5,))\nm = x > 0.25\nc = where(m, x, -x)\nk = abs(x)\n'
    + outs("m c k"),
    "params_if": HEAD + 'param N = 4\nparam S = 0.5\nparam FLAG = True\nx = input(alice, "x", shape=(N,))\n'
    'if FLAG:\n    y = x * S\nelse:\n    y = x\noutput(y, to=alice)\n',
    "input_only_party": HEAD4 + 'd = input(dave, "d", shape=(4, 3))\na = input(alice, "a", shape=(4, 3))\n'
    'p = (a * 2.0 + 1.0) @ a.T\nq = sum(a, axis=0) / 3\nr = a[1:3, ::2]\ne = d + a\n'
    'output(p, to=alice)\noutput(q, to=alice)\noutput(r, to=alice)\noutput(e, to=dave)\n',
    "reveal_forms": HEAD + 'x = input(alice, "x", shape=(3,))\ns = secret(x)\nc = reveal(s * 2.0)\nd = reveal(s, to=bob)\n'
    'output(c, "twice")\noutput(d, to=[bob, carol])\n',
    "loops_every_range": HEAD + 'param B = 4\nx = input(alice, "x", shape=(12, 3))\nacc = zeros((4, 3))\n'
    "for i in range(3):\n    acc += x[i * B:(i + 1) * B]\n"
    "row = zeros((3,))\nfor j in range(1, 12, 3):\n    row = row + x[j]\n"
    "back = zeros((3,))\nfor j in range(11, -1, -4):\n    back = back * 0.5 + x[j]\n"
    "col = zeros((12,))\nfor k in range(3):\n    col = col + x[:, k] * k\n"
    "tot = 0.0\nfor a in range(2):\n    for b in range(3):\n        tot = tot + x[a * 3 + b, b]\n"
    "cnt = 0\nfor a in range(5):\n    cnt += a\n" + outs("acc row back col tot cnt"),
    "loop_visibility": HEAD + 'a = input(alice, "a", shape=(3,))\nb = input(bob, "b", shape=(3,))\n'
    "p = zeros((3,))\nfor i in range(2):\n    p = p + a\n"
    "s = a * 1.0\nfor i in range(2):\n    for j in range(2):\n        s = s + b * 0.5\n" + outs("p s"),
    "private_arith": HEAD + 'x = input(alice, "x", shape=(4, 3))\ni = input(alice, "i", shape=(4, 3), dtype=int)\n'
    'j = input(alice, "j", shape=(4, 3), dtype=int)\n'
    "a = x / 4\nb = -x + x * x - 1\nc = i // j\nd = i % j\ne = i // 3\nf = i % -3\ng = x ** 2\n"
    "h = i ** 3\nk = x ** 0\nm = (-7) // 2 + 7 % -3 + 2 ** 5\nn = x @ x.T\no = x // 0.5\np = x % 0.75\n"
    + outs("a b c d e f g h k m n o p"),
    "indexing": HEAD + 'x = input(alice, "x", shape=(5, 6))\ns = secret(x)\n'
    "a = s[2]\nb = s[1:4]\nc = s[:, 3]\nd = s[-1]\ne = s[-3:, -2]\nf = s[::2, 1::3]\ng = s[::-1, 4:0:-2]\n"
    "h = s[1, 2]\nr = zeros((6,))\nfor i in range(5):\n    r = r + s[i]\n"
    "q = zeros((5,))\nfor i in range(1, 6, 2):\n    q = q + s[:, i]\nt = s.shape[1] + len(s)\n" + outs("a b c d e f g h r q t"),
    "builtins_concat": HEAD + 'x = input(alice, "x", shape=(3, 4))\ny = input(bob, "y", shape=(3, 4))\n'
    "a = full((3, 4), 2.5) * x\nb = arange(4) * x\nc = eye(3) @ x\nd = stack([x[0], y[1]], axis=1)\n"
    "e = reshape(x, (4, 3))\nf = transpose(x)\ng = broadcast_to(y[:, 1:2], (3, 4))\nh = matmul(x, y.T)\n"
    "k = dot(x[0], y[0])\nm = outer(x[0], y[:, 0])\nn = concat([x, y], axis=0)\no = mean(y, axis=1)\n"
    "p = sum(x)\nq = x.reshape(2, 6)\nr = float(arange(3))\nt = ones((2,), dtype=int) * len(x)\n"
    "u = zeros((2, 2), dtype=bool)\nv = arange(1, 2, 0.25)\nw = x.T @ y\nz = [1.5, 2.0] * x[:, :2]\n"
    + outs("a b c d e f g h k m n o p q r t u v w z"),
    "every_arith_kind": HEAD4 + 'a = input(alice, "a", shape=(6, 4))\nb = input(bob, "b", shape=(4, 3))\n'
    'd = input(dave, "d", shape=(6, 4))\nc = a @ b\ne = a * d - 0.5 * a + d\nf = sum(e * e, axis=0)\n'
    'g = mean(a.T @ d)\nh = -a[2:5, 1:3] ** 2\ns = secret(a)\nk = s * s + s * s\n'
    'output(c, to=alice)\noutput(e, to=[bob, dave])\noutput(f, to=carol)\noutput(g)\noutput(h, to=dave)\n'
    'output(k, to=alice)\n',
    "training_dslice": HEAD + 'from ml import sigmoid\nparam B = 16\nx = input(alice, "x", shape=(64, 3))\n'
    'y = input(bob, "y", shape=(64, 1))\nw = zeros((3, 1))\nb = 0.0\n'
    'for e in range(2):\n    for i in range(64 // B):\n        xi = x[i * B:(i + 1) * B]\n'
    '        g = sigmoid(xi @ w + b) - y[i * B:(i + 1) * B]\n        w -= 0.1 * (xi.T @ g)\n'
    '        b -= 0.1 * sum(g)\noutput(w, to=alice)\noutput(b, to=alice)\n',
    "reveal_private_compare": HEAD + 'a = input(alice, "a", shape=(5,))\ns = secret(a) * 2\np = reveal(s)\n'
    'q = reveal(s, to=bob)\npos = mean(q > 0)\noutput(p, to=carol)\noutput(pos, to=bob)\n',
    "additive_sums": HEAD + 'a = secret(input(alice, "a", shape=(6, 3)))\nb = secret(input(bob, "b", shape=(6, 3)))\n'
    'c = 0.75 - sum(a * b, axis=0)\nd = sum(a * a, axis=1) - 1.25 + sum(b, axis=1)\n'
    'e = sum(b * b, axis=0) + 0.5\nf = 2.0 + sum(a[0:2] * b[2:4], axis=0) - a[5]\n' + outs("c d e f"),
    "input_party_loop": HEAD4 + 'a = secret(input(alice, "a", shape=(4,)))\nd = input(dave, "d", shape=(3, 4))\n'
    'acc = a\nfor i in range(3):\n    acc = acc + d[i] * 2\noutput(acc, to=dave)\n',
    "sum_of_products": HEAD + "".join(f'{v} = secret(input({p}, "{v}", shape=(16,)))\n'
                                      for v, p in (("a", "alice"), ("b", "bob"), ("c", "carol")))
    + "d = a * b + c * a - b * c\noutput(d, to=alice)\n",
    "duplicate_work": HEAD + "".join(f'a{i} = secret(input({p}, "a{i}", shape=(8,)))\n' for i, p in enumerate(["alice", "bob"]))
    + "p = a0 * a1\nq = a1 * a0\nr = a0 * a1 + 0.0\noutput(p + q + r, 'o', to=alice)\n",
    "public_scaling": HEAD + 'a0 = secret(input(alice, "a0", shape=(8,)))\nb = a0 * 3\nc = 2 * b\noutput(c, to=alice)\n',
    "compile_time_folding": HEAD + "param N = 10\nk = N // 3 + N % 3 + 2 ** 3 + abs(-2) + max(1, 4) + min([5, 6]) + int(2.7)\n"
    "t = (1, 2) + (3,)\nok = (N > 5) and not (N < 0) or False\nf = float(N) / 4\nx = zeros((k,)) + f\n"
    "assert ok and t[2] == 3 and len(t) == 3\noutput(x, to=alice)\n",
    "dealer2_program": DEALER2 + 'a = input(alice, "a", shape=(6, 4))\nb = input(bob, "b", shape=(4, 3))\n'
    'd = input(dave, "d", shape=(6, 4))\nc = a @ b\ne = a * d - 0.5 * a + d\n'
    'f = sum(e * e, axis=0)\ns = secret(a)\nk = s * s + s * s\np = reveal(s * 2)\n'
    'output(c, to=alice)\noutput(e, to=[bob, dave])\noutput(f, to=carol)\noutput(k, to=alice)\noutput(p, to=bob)\n',
    "dealer2_loop": DEALER2 + 'x = secret(input(alice, "x", shape=(8, 2)))\nw = zeros((2, 1))\n'
    'for i in range(4):\n    w = w + 0.5 * (x[i * 2:(i + 1) * 2].T @ x[i * 2:(i + 1) * 2, 0:1])\noutput(w, to=bob)\n',
}
# programs only the emulator runs (secure comparisons): the front end's text must still round-trip
EMULATE_ONLY: dict[str, str] = {
    "secret_comparisons": HEAD + 'x = input(alice, "x", shape=(4, 5))\ny = input(bob, "y", shape=(4, 5))\n'
    'i = input(alice, "i", shape=(5,), dtype=int)\nj = input(bob, "j", shape=(5,), dtype=int)\n'
    "lt = x < y\nle = x <= 0.1\ngt = x > y\neq = i == j\nne = i != 2\nan = (x > 0) & (y > 0)\n"
    "nt = ~(x > y)\nw = where(x > y, x, y * 2.0)\nab = abs(x - y)\nmx = max(x, y)\nrn = min(y, axis=0)\n"
    "fd = i // j\ndv = x / (abs(y) + 1.0)\nti = int(x * 4.0)\n" + outs("lt le gt eq ne an nt w ab mx rn fd dv ti"),
}
PROGRAM_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "programs").glob("*.mpc"))


IMG, ROW, ONE = "v.reshape((1, 1, 2, 2))", "v.reshape((1, 4))", "v[0:1]"
LAYER_ARGS = {  # the layers of ml and nn, optim's updates: shapes that fit a value of 4 elements
    "maxpool2d_mask": f"{IMG}, 2", "conv2d": f"{IMG}, {IMG}, {ONE}",
    "dense": f"{ROW}, v.reshape((4, 1)), {ONE}", "dense_backward": f"{ROW}, v.reshape((4, 1)), v[0:1].reshape((1, 1))",
    "dense_backward_weights": f"{ROW}, v[0:1].reshape((1, 1))", "relu_backward": "v, v",
    "conv2d_backward": f"{IMG}, {IMG}, v[0:1].reshape((1, 1, 1, 1))",
    "conv2d_backward_weights": f"{IMG}, {IMG}, v[0:1].reshape((1, 1, 1, 1))",
    "maxpool2d_backward": f"{IMG}, v[0:1].reshape((1, 1, 1, 1)), 2",
    "avgpool2d_backward": f"{IMG}, v[0:1].reshape((1, 1, 1, 1)), 2", "flatten": "v.reshape((2, 2))",
    "softmax_cross_entropy": "v.reshape((2, 2)), v.reshape((2, 2))",
    "softmax_cross_entropy_backward": "v.reshape((2, 2)), v.reshape((2, 2))",
    "accuracy": "v.reshape((2, 2)), v.reshape((2, 2))", "one_hot": "v, 4",
    "sgd": "v, v, 0.1", "momentum": "v, v, v, 0.1", "adam": "v, v * 0.01, v, v * v, 3, 0.1",
    "amsgrad": "v, v * 0.01, v, v * v, v * v, 3, 0.1",
    "glorot_uniform": "(2, 2), 2, 2, 7", "he_normal": "(2, 2), 2, 7", "state": "v",
    "update": '"adam", v, v * 0.01, v, v * v, v * v, 3, 0.1',
}
TUPLES = {"dense_backward", "dense_backward_weights", "conv2d_backward", "conv2d_backward_weights", "momentum",
          "adam", "amsgrad", "state", "update"}


def stdlib_program(secret: bool) -> str:
    """A program calling every function of every stdlib module on one value."""
    lines = [HEAD, 'x = input(alice, "x", shape=(4,))\n', "v = secret(x)\n" if secret else "v = x\n"]
    for mod in sorted((ROOT / "stdlib").glob("*.mpc")):
        lines.append(f"import {mod.stem}\n")
        for name in re.findall(r"^def ([a-z]\w*)\(", mod.read_text(encoding="utf-8"), re.M):  # public ones
            args = {"maxpool2d": "v.reshape((1, 1, 2, 2)), 2", "avgpool2d": "v.reshape((1, 1, 2, 2)), 2",
                    "divide": "v, v + 2.0", **LAYER_ARGS}.get(name, "v")  # pools: (N, C, H, W), k
            pick = "[0]" if name in TUPLES else ""
            lines.append(f'output({mod.stem}.{name}({args}){pick}, "{mod.stem}_{name}", to=alice)\n')
    return "".join(lines)


def assert_round_trip(c: driver.Compiled) -> None:
    """The IR text parses to a program that prints the same and compiles to the same bytes."""
    text = c.ir_text()
    prog = parse_program(text, "round-trip.ir")
    assert format_program(prog) == text
    again = driver.back_end(prog)
    assert again.files.keys() == c.files.keys()
    for party, data in c.files.items():
        assert again.files[party] == data, party
    assert again.manifest["hash"] == c.manifest["hash"]
    assert again.cost.as_dict() == c.cost.as_dict()
    assert format_program(prog) == text  # the back end left the program as it was


@pytest.mark.parametrize("path", PROGRAM_FILES)
@pytest.mark.parametrize("optimize", [True, False])
def test_every_example_program_round_trips(path, optimize, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert_round_trip(driver.compile_file(path, optimize=optimize))


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_test_programs_round_trip(name):
    assert_round_trip(driver.compile_source(SNIPPETS[name], f"{name}.mpc"))


def test_unoptimized_programs_round_trip():
    for name in ("loops_every_range", "training_dslice", "dealer2_program"):
        assert_round_trip(driver.compile_source(SNIPPETS[name], f"{name}.mpc", optimize=False))


def test_every_stdlib_function_round_trips_with_its_own_file():
    c = driver.compile_source(stdlib_program(secret=False), "lib.mpc")
    assert_round_trip(c)
    assert any(op.span and op.span.file.endswith("ml.mpc") and op.span.caller for op in walk(c.prog.body))
    assert "ml.mpc:" in c.ir_text() and "lib.mpc:" in c.ir_text() and " → " in c.ir_text()
    assert_round_trip(driver.compile_source(stdlib_program(secret=True), "lib.mpc"))  # comparisons in MPC
    prog = driver.front_end(stdlib_program(secret=True), "lib.mpc")
    assert_emulates_alike(prog, {("alice", "x"): np.arange(4, dtype=np.uint64) << np.uint64(14)})


def assert_emulates_alike(prog: Program, ring_inputs: dict) -> None:
    """The parsed front-end program prints the same and emulates to the same ring values."""
    text = format_program(prog)
    parsed = parse_program(text, "emulated.ir")
    assert format_program(parsed) == text
    a, b = emulate(prog, ring_inputs, check_overflow=False), emulate(parsed, ring_inputs, check_overflow=False)
    assert a.keys() == b.keys()
    for party in a:
        for name in a[party]:
            assert np.array_equal(a[party][name], b[party][name]), (party, name)


def test_emulation_only_programs_round_trip():
    rng = np.random.default_rng(3)
    for name, src in EMULATE_ONLY.items():
        prog = driver.front_end(src, f"{name}.mpc")
        ring = {(d.party, d.name): rng.integers(1, 2**20, size=d.shape).astype(np.uint64) for d in prog.inputs}
        assert_emulates_alike(prog, ring)


def test_values_of_every_attribute_type_round_trip():
    from veil.compiler.irparse import Cursor, parse_value
    from veil.compiler.irtext import format_value

    values = [0, -7, 2**64 - 1, 1.0, -0.0, 1e-05, 1.5e300, float("inf"), float("-inf"), 0.1 + 0.2, True, False,
              None, "", 'a "quoted" \\ line\n', "ünïcode", [], (), (1,), [1, (2, 3)], {"k": [1, 2], "n": None},
              {1: "one"}, np.uint64(5), np.float64(2.5),
              np.arange(6, dtype=np.uint64).reshape(2, 3), np.array(3, dtype=np.int64), np.zeros((0, 2), np.int64),
              np.array([True, False]), np.array([0.5, -1.25, np.inf]), np.array([2**64 - 1], dtype=np.uint64)]
    for v in values:
        text = format_value(v)
        got = parse_value(Cursor(text, "v.ir", 1))
        assert format_value(got) == text and type(got) is type(v), (v, text, got)
        if isinstance(v, np.ndarray):
            assert got.dtype == v.dtype and got.shape == v.shape and np.array_equal(got, v)
    assert "<" not in format_value(np.arange(100, dtype=np.uint64))  # never `<100 values>`


# ---- golden pass tests ---------------------------------------------------------------------------
def _fold_case() -> Program:
    b = IR()
    x = b.input("alice", "x", (3,))
    s = b.bin("add", b.const([2, 2, 2], "int"), b.const([3, 3, 3], "int"))
    b.output(b.bin("mul", x, b.bin("mul", s, b.const([2, 2, 2], "int"))), "y")
    return b.prog


def _cse_case() -> Program:
    b = IR()
    xa = b.input("alice", "x", (4,), secret=False)
    y = b.input("bob", "y", (4,))
    s1 = b.op("share", [xa], xa.type.with_(vis=SECRET), owner="alice")
    s2 = b.op("share", [xa], xa.type.with_(vis=SECRET), owner="alice")
    b.output(b.bin("add", b.mul(s1, y), b.mul(y, s2)), "z")
    return b.prog


def _cse_loop_case() -> Program:
    b = IR()
    x = b.input("alice", "x", (3, 2))
    xt = b.op("transpose", [x], x.type.with_(shape=(2, 3)))

    def body(i, acc):
        t1 = b.op("transpose", [x], x.type.with_(shape=(2, 3)))
        t2, t3 = b.op("neg", [acc], acc.type), b.op("neg", [acc], acc.type)
        return [b.bin("add", b.bin("add", t2, t3), b.op("transpose", [t1], x.type))]

    (r,) = b.loop(2, [x], body)
    b.output(r, "r")
    b.output(xt, "xt")
    return b.prog


def _dce_case() -> Program:
    b = IR()
    x = b.input("alice", "x", (2,))
    b.input("bob", "unused", (2,), secret=False)
    b.mul(x, x)
    b.op("reveal", [x], x.type.with_(vis=PUBLIC))
    c = b.const([1.0, 1.0])
    b.op("frobnicate", [c], c.type)
    b.output(b.bin("add", x, x), "y")
    return b.prog


def _simplify_case() -> Program:
    b = IR()
    x = b.input("alice", "x", (2, 3))
    one, zero = b.const(np.ones((2, 3)), "int"), b.const(np.zeros((2, 3)))
    v = b.bin("sub", b.bin("add", zero, b.bin("add", b.op("mul", [x, one], x.type), zero)), zero)
    v = b.op("neg", [b.op("neg", [v], v.type)], v.type)
    v = b.op("reshape", [b.op("transpose", [b.op("transpose", [v], v.type.with_(shape=(3, 2)))], v.type)],
             v.type, shape=(2, 3))
    b.output(b.mul(v, b.const(1.0)), "v")
    return b.prog


def _truncation_case() -> Program:
    b = IR()
    x, y, z = (b.input(p, n, (5,)) for p, n in (("alice", "x"), ("bob", "y"), ("carol", "z")))
    b.output(b.bin("sub", b.bin("add", b.mul(x, y), b.mul(z, x)), b.mul(y, z)), "v")
    return b.prog


CASES: dict[str, tuple[Callable[[], Program], Callable[[Program], Program]]] = {
    "fold": (_fold_case, fold),
    "cse": (_cse_case, cse),
    "cse_loop": (_cse_loop_case, cse),
    "dce": (_dce_case, dce),
    "simplify": (_simplify_case, lambda p: dce(simplify(p))),
    "place_truncations": (_truncation_case, place_truncations),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_pass(name):
    build, run = CASES[name]
    before = (GOLDEN / f"{name}.before.ir").read_text(encoding="utf-8")
    after = (GOLDEN / f"{name}.after.ir").read_text(encoding="utf-8")
    assert format_program(build()) == before, "stale golden: python tests/test_irtext.py --write-golden"
    prog = parse_program(before, f"{name}.before.ir")
    assert format_program(run(prog)) == after
    assert format_program(prog) == before  # the pass did not touch its input


def write_golden() -> None:
    """Write tests/golden/<case>.before.ir (the hand-written IR) and .after.ir (the pass's result)."""
    GOLDEN.mkdir(exist_ok=True)
    for name, (build, run) in CASES.items():
        before = format_program(build())
        (GOLDEN / f"{name}.before.ir").write_text(before, encoding="utf-8")
        after = format_program(run(parse_program(before, f"{name}.before.ir")))
        (GOLDEN / f"{name}.after.ir").write_text(after, encoding="utf-8")
        print(f"wrote {GOLDEN / name}.before.ir, .after.ir")


# ---- malformed text ------------------------------------------------------------------------------
def _good_text() -> str:
    return driver.compile_source(SNIPPETS["training_dslice"], "t.mpc").ir_text()


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


CORRUPTIONS: list[tuple[str, Callable[[str], tuple[str, str]], str]] = [
    # (name, corrupt(text) -> (new text, a fragment of the line that is wrong), message fragment)
    ("unknown dtype", lambda t: (t.replace(" fix@16[64x3]", " fux@16[64x3]", 1), "fux@16"),
     "unknown dtype 'fux'"),
    ("missing paren", lambda t: (t.replace("= trunc(%", "= trunc %", 1), "= trunc %"), "'(' after trunc"),
    ("undefined value", lambda t: (re.sub(r"trunc\(%\d+\)", "trunc(%9999)", t, count=1), "trunc(%9999)"),
     "%9999 is used before it is defined"),
    ("defined twice", lambda t: (t.replace("%2: ", "%1: ", 1), "%1: private(bob)"), "%1 is defined twice"),
    ("bad attribute value", lambda t: (t.replace("bits=16", "bits=@16", 1), "bits=@16"), "expected a value"),
    ("bad header", lambda t: (t.replace("frac_bits 16", "frac_bits sixteen", 1), "frac_bits sixteen"),
     "unknown value 'sixteen'"),
    ("header type", lambda t: (t.replace("frac_bits 16", 'frac_bits "16"', 1), "frac_bits"), "frac_bits takes an integer"),
    ("unknown header", lambda t: (t.replace("next_id", "nxt_id", 1), "nxt_id"), "unknown header keyword"),
    ("array size", lambda t: (re.sub(r"array\(uint64, \(\), \[(\d+)\]\)", r"array(uint64, (2,), [\1])", t, count=1),
                              "array(uint64, (2,)"), "holds 2"),
    ("bad span", lambda t: (re.sub(r"@ t\.mpc:(\d+):", r"@ t.mpc:\1x:", t, count=1), "x:"), "expected ':'"),
    ("garbage op", lambda t: (t.replace("body {\n", "body {\n  ??\n", 1), "??"), "expected an opcode"),
    ("unclosed string", lambda t: (t.replace('owner="alice"', 'owner="alice', 1), 'owner="alice'), "closed on its line"),
]


@pytest.mark.parametrize("name, corrupt, fragment", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_malformed_ir_is_a_syntax_error_at_its_line(name, corrupt, fragment):
    good = _good_text()
    bad, needle = corrupt(good)
    assert bad != good, name
    with pytest.raises(SyntaxErr) as info:
        parse_program(bad, "bad.ir")
    err = info.value
    assert err.span.file == "bad.ir" and err.span.line == _line_of(bad, needle), (err.format(), needle)
    assert fragment in err.message, err.message
    assert err.format().startswith(f"bad.ir:{err.span.line}:{err.span.col}: error:")


def test_truncated_and_headless_ir_are_syntax_errors():
    good = _good_text()
    for bad, line in ((good[: good.rindex("}")], len(good[: good.rindex("}")].splitlines())),
                      (good[good.index("body {"):], 1), ("", 1), (good + "extra\n", len(good.splitlines()) + 1)):
        with pytest.raises(SyntaxErr) as info:
            parse_program(bad, "bad.ir")
        assert info.value.span.file == "bad.ir" and info.value.span.line == line, info.value.format()


# ---- --emit-lowered ------------------------------------------------------------------------------
def lowered_blocks(text: str) -> list[dict]:
    """The blocks of --emit-lowered text: markers counted per block, loops with their trips and rounds."""
    top = {"markers": 0, "loops": [], "trips": 1, "rounds": None}
    stack, blocks = [top], [top]
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("--- round "):
            stack[-1]["markers"] += 1
        elif s.startswith("loop ") and s.endswith("{"):
            m = re.search(r": (\d+) trips x (\d+) rounds per iteration", s)
            blk = {"markers": 0, "loops": [], "trips": int(m.group(1)), "rounds": int(m.group(2))}
            stack[-1]["loops"].append(blk)
            stack.append(blk)
            blocks.append(blk)
        elif s.startswith("} ->"):
            stack.pop()
    assert len(stack) == 1
    return blocks


def rounds_of(blk: dict) -> int:
    return blk["markers"] + sum(inner["trips"] * rounds_of(inner) for inner in blk["loops"])


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
def test_emit_lowered_marks_the_rounds_of_the_cost_report(protocol, monkeypatch):
    monkeypatch.chdir(ROOT)
    c = driver.compile_file("programs/fraud_detection.mpc", {"N": "256", "EPOCHS": "2"}, protocol=protocol)
    text = format_lowered(c.prog)
    blocks = lowered_blocks(text)
    assert rounds_of(blocks[0]) == c.cost.rounds
    assert f"{c.cost.rounds} rounds scheduled, {c.cost.critical_rounds} on the critical path" in text.splitlines()[0]
    loops = blocks[1:]
    assert [(b["trips"], rounds_of(b)) for b in loops] == [(lp["trips"], lp["rounds"]) for lp in c.cost.loops]
    assert all(b["rounds"] == rounds_of(b) for b in loops)
    compute = ", ".join(sorted(c.prog.compute))
    assert f"--- round 1: {compute} ---" in text
    assert re.search(r"kernel %\d+: secret fix@16\[\d+x1\] = (mul|matmul)_trunc\(.*cost 1 round", text) or \
        re.search(r"kernel .*(trunc|matmul).*cost \d rounds?, bytes sent: ", text)
    assert format_lowered(c.prog) == text  # printing lowers a copy: the program is unchanged
    assert_round_trip(c)


# ---- the command line ----------------------------------------------------------------------------
def test_cli_compiles_its_emitted_ir_to_the_same_bytecode(tmp_path):
    defines = ("-D", "N=256", "-D", "EPOCHS=1")
    one = veil("compile", FRAUD, *defines, "-o", "b1", "--emit-ir", cwd=tmp_path)
    assert one.code == 0, one.err
    (tmp_path / "p.ir").write_text(one.out, encoding="utf-8")
    two = veil("compile", "p.ir", "-o", "b2", "--emit-ir", cwd=tmp_path)
    assert two.code == 0, two.err
    assert two.out == one.out
    bc = sorted(p.name for p in (tmp_path / "b1").glob("*.bc"))
    assert bc == ["alice.bc", "bob.bc", "carol.bc"]
    for name in bc:
        assert (tmp_path / "b1" / name).read_bytes() == (tmp_path / "b2" / name).read_bytes(), name
    import json
    m1, m2 = (json.loads((tmp_path / b / "manifest.json").read_text()) for b in ("b1", "b2"))
    assert m1 == m2
    refused = veil("compile", "p.ir", "-D", "N=8", "-o", "b3", cwd=tmp_path)
    assert refused.code == 2 and "p.ir is IR text: -D cannot apply" in refused.err
    (tmp_path / "bad.ir").write_text(one.out.replace("frac_bits 16", "frac_bits x"), encoding="utf-8")
    bad = veil("compile", "bad.ir", cwd=tmp_path)
    line = _line_of(one.out, "frac_bits 16")
    assert bad.code == 2 and bad.err.startswith(f"bad.ir:{line}:11: error:") and "Traceback" not in bad.err
    emu = [veil("emulate", p, *d, "--output-dir", o, cwd=tmp_path)
           for p, d, o in ((FRAUD, defines, "e1"), ("p.ir", (), "e2"))]
    assert all(e.code == 0 for e in emu), [e.err for e in emu]
    assert emu[0].out == emu[1].out.replace("e2", "e1")
    low = veil("compile", "p.ir", "-o", "b4", "--emit-lowered", cwd=tmp_path)
    assert low.code == 0 and low.out.count("--- round ") > 0 and "kernel " in low.out


def test_api_compiles_ir_files_and_refuses_settings_for_them(tmp_path):
    from veil.runtime import api

    c = api.compile(SNIPPETS["input_only_party"])
    path = tmp_path / "p.ir"
    path.write_text(c.ir(), encoding="utf-8")
    again = api.compile(str(path))
    assert again.files == c.files and again.manifest["hash"] == c.manifest["hash"]
    with pytest.raises(UsageErr, match="IR text"):
        api.compile(path, {"N": 3})


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-golden"]:
        write_golden()
    else:
        sys.exit("usage: python tests/test_irtext.py --write-golden")
