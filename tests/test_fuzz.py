"""Fuzzing the front end with Hypothesis: mutated example programs and generated small programs.
The compiler may only ever raise VeilError (never another exception) and must never hang."""
from __future__ import annotations

import glob
import os
import re
import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.compiler import driver
from veil.runtime.diagnostics import VeilError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
RICH = HEAD + '''param N = 4
x = input(alice, "x", shape=(4, 3))
y = input(bob, "y", shape=(4, 3), dtype=int)
m = x > 0.5
z = where(m, x, y) + abs(x) - max(x, axis=0)
for i in range(N):
    z = z + x[i] * 2.0
w = z[1:3, ::2] // 2 % 3
def f(a, b=1):
    return a * b, a - b
p, q = f(x, b=3)
output(p, to=alice)
output(w, "ww", to=[alice, bob])
'''
SOURCES = [open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(ROOT, "programs", "*.mpc")))]
SOURCES += [open(os.path.join(ROOT, "stdlib", "ml.mpc"), encoding="utf-8").read(), RICH]
TOKEN = re.compile(r"\s+|\w+|.", re.S)
SETTINGS = settings(max_examples=120, deadline=4000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a compile that takes too long."""
    def fire(*_):
        raise TimeoutError(f"the compiler took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def compiles_or_veil_error(src: str, lower: bool) -> None:
    """The property: a VeilError (formattable) or success; anything else propagates and fails."""
    params = {"N": "64"} if re.search(r"^param N\b", src, re.M) else None
    with time_limit(10):
        try:
            (driver.compile_source if lower else driver.front_end)(src, "fuzz.mpc", params)
        except VeilError as err:
            assert err.format()
            assert err.exit_status in (1, 2)


@st.composite
def mutated(draw) -> str:
    """An example program with a few characters or tokens deleted, duplicated or swapped."""
    src = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        by_token = draw(st.booleans())
        parts = TOKEN.findall(src) if by_token else list(src)
        if not parts:
            break
        i = draw(st.integers(0, len(parts) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap"]))
        if kind == "delete":
            del parts[i]
        elif kind == "duplicate":
            parts.insert(i, parts[draw(st.integers(0, len(parts) - 1))])
        else:
            j = draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
        src = "".join(parts)
    return src


LITERALS = ["0", "1", "2", "-1", "0.5", "1e3", "True", "(4, 3)", "(3,)", "()", "[1, 2, 3]", "[[1.0], [2.0]]",
            '"s"', "N", "100000000000", "1e999"]
NAMES = ["x", "y", "m", "s", "t", "N", "i", "alice", "zeros", "range", "ml"]
FUNCS = ["zeros", "ones", "full", "arange", "eye", "concat", "stack", "reshape", "transpose", "broadcast_to",
         "sum", "mean", "matmul", "dot", "outer", "where", "abs", "min", "max", "len", "int", "float", "secret",
         "reveal", "f"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "<", ">=", "==", "!=", "and", "or"]
INDICES = ["0", "-1", "i", "1:3", ":", "::2", "::-1", "i * 2:(i + 1) * 2", "i:2 * i", "5", "1.5", "m", "2:0:-1"]


def expressions() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(LITERALS + NAMES)

    def grow(inner):
        args = st.lists(inner, max_size=3).map(", ".join)
        kw = st.sampled_from(["", ", axis=0", ", axis=-1", ", dtype=int", ", shape=(2, 6)", ", zz=1"])
        return st.one_of(
            st.tuples(inner, st.sampled_from(BINOPS), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["-", "~", "not "]), inner).map("".join),
            st.tuples(st.sampled_from(FUNCS), args, kw).map(lambda t: f"{t[0]}({t[1]}{t[2] if t[1] else ''})"),
            st.tuples(inner, st.lists(st.sampled_from(INDICES), min_size=1, max_size=2))
            .map(lambda t: f"{t[0]}[{', '.join(t[1])}]"),
            st.tuples(inner, st.sampled_from(["T", "shape", "reshape(12)", "ndim", "foo"])).map(".".join),
        )
    return st.recursive(leaf, grow, max_leaves=8)


def statements() -> st.SearchStrategy[str]:
    e = expressions()
    simple = st.one_of(
        st.tuples(st.sampled_from(["a", "b", "x", "s", "i"]), e).map(lambda t: f"{t[0]} = {t[1]}\n"),
        st.tuples(st.sampled_from(["a", "x", "s"]), st.sampled_from(["+=", "-=", "*="]), e)
        .map(lambda t: f"{t[0]} {t[1]} {t[2]}\n"),
        e.map(lambda x: f"a, b = {x}\n"),
        st.tuples(e, st.sampled_from(["alice", "[alice, bob]", "dave"])).map(lambda t: f"output({t[0]}, \"o\", to={t[1]})\n"),
        e.map(lambda x: f"assert {x}, \"m\"\n"),
    )
    indented = simple.map(lambda s: "    " + s)
    block = st.lists(indented, min_size=1, max_size=3).map("".join)
    compound = st.one_of(
        st.tuples(st.sampled_from(["3", "N", "1, 4, 2", "0", "2.0"]), block).map(lambda t: f"for i in range({t[0]}):\n{t[1]}"),
        st.tuples(e, block, block).map(lambda t: f"if {t[0]}:\n{t[1]}else:\n{t[2]}"),
        st.tuples(block, e).map(lambda t: f"def f(p, q=1.0):\n{t[0]}    return {t[1]}\n"),
    )
    return st.one_of(simple, compound)


GENERATED_HEAD = (HEAD + "param N = 4\n" + 'x = input(alice, "x", shape=(4, 3))\n'
                  'y = input(bob, "y", shape=(4, 3), dtype=int)\nm = input(carol, "m", shape=(3,), dtype=bool)\n'
                  "s = secret(x)\nt = (2, 3)\n")


@SETTINGS
@given(src=mutated(), lower=st.booleans())
def test_mutated_programs_only_raise_veil_errors(src, lower):
    compiles_or_veil_error(src, lower)


@SETTINGS
@given(body=st.lists(statements(), min_size=1, max_size=5).map("".join), lower=st.booleans())
def test_generated_programs_only_raise_veil_errors(body, lower):
    compiles_or_veil_error(GENERATED_HEAD + body, lower)


@pytest.mark.parametrize("src", [
    "", "\n", "party", "party a, b, c\nprotocol rep3(a, b, c)\nx = " + "[" * 500 + "1" + "]" * 500 + "\n",
    "party a, b, c\nx = " + "not " * 3000 + "1\n", "x = )\n", "def f(\n", "\t\tx = 1\n", "x = 1 \\\n",
    "party a, b, c\nfor i in range(10 ** 12):\n    pass\n", "party a, b, c\nx = 2 ** 2 ** 2 ** 2 ** 2 ** 2\n",
    "party a, b, c\nx = 9 ** 9 ** 9\n", "party a, b, c\nx = eye(100000)\n", "\x00\x01", "x = '\\N{bad}'\n",
])
def test_pathological_sources(src):
    compiles_or_veil_error(src, lower=True)
