"""Precision stated in the program (`precision F`, overridden by --frac-bits, recorded in the
manifest), the emulator's underflow warning, and the protocol aliases aby3 and pond."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from veil.compiler import driver
from veil.compiler.emulate import emulate
from veil.runtime import api
from veil.runtime.fixedpoint import encode
from veil.runtime.diagnostics import SyntaxErr, TypeErr, UsageErr

from veil_cli import veil

HEAD = "party alice, bob, carol\n"
PROG = HEAD + "param FRAC = 20\nprecision FRAC\nx = input(alice, 'x', shape=(3,))\ny = x * 0.5\noutput(y, to=alice)\n"


def test_the_program_states_its_precision():
    assert driver.front_end(PROG, "p.mpc").frac_bits == 20
    assert driver.front_end(PROG, "p.mpc", {"FRAC": "24"}).frac_bits == 24
    assert driver.front_end(HEAD + "precision 12\n", "p.mpc").frac_bits == 12
    assert driver.front_end(HEAD, "p.mpc").frac_bits == 16  # the default


def test_frac_bits_overrides_the_programs_precision_and_the_manifest_records_it():
    c = api.compile(PROG, frac_bits=12)
    assert c.prog.frac_bits == 12 and c.manifest["frac_bits"] == 12
    assert api.compile(PROG).manifest["frac_bits"] == 20
    out = api.run(api.compile(PROG), {"alice": {"x": np.array([1.0, 2.0, 2.0 ** -19])}})
    assert out["alice"]["y"].tolist() == [0.5, 1.0, 2.0 ** -20]  # 20 fractional bits in MPC too


@pytest.mark.parametrize("src, text", [
    ("precision 40\n", "between 8 and 30"),
    ("precision 4\n", "between 8 and 30"),
    ("precision 1.5\n", "compile-time int"),
    ("precision 20\nprecision 20\n", "declared twice"),
    ("x = zeros((2,))\nprecision 20\n", "before any computation"),
    ("def f():\n    precision 20\n    return 1\ny = f()\n", "top-level line"),
])
def test_nonsense_precision_is_a_positioned_error(src, text):
    with pytest.raises(TypeErr, match=text) as info:
        driver.front_end(HEAD + src, "p.mpc")
    assert info.value.span.file == "p.mpc" and info.value.span.line >= 2


def test_precision_from_a_param_override_is_checked():
    with pytest.raises(TypeErr, match="precision 50") as info:
        driver.front_end(PROG, "p.mpc", {"FRAC": "50"})
    assert (info.value.span.line, info.value.span.col) == (3, 11)


def test_precision_is_a_reserved_word():
    with pytest.raises(SyntaxErr, match="declaration word") as info:
        driver.front_end(HEAD + "precision = 3\n", "p.mpc")
    assert (info.value.span.line, info.value.span.col) == (2, 1)


def test_cli_precision_and_override(tmp_path):
    (tmp_path / "p.mpc").write_text(PROG)
    for extra, want in (([], 20), (["--frac-bits", "12"], 12), (["--frac-bits", "16"], 16)):
        done = veil("compile", "p.mpc", "-o", "b", *extra, cwd=tmp_path)
        assert done.code == 0, done.err
        assert json.loads((tmp_path / "b" / "manifest.json").read_text())["frac_bits"] == want
    bad = veil("compile", "p.mpc", "-D", "FRAC=31", cwd=tmp_path)
    assert bad.code == 2 and "p.mpc:3:11" in bad.err and "between 8 and 30" in bad.err


UNDERFLOW = HEAD + """param FRAC = 8
precision FRAC
g = input(alice, "g", shape=(100,))
w = zeros((100,))
for i in range(3):
    w = w - 0.01 * (g * 0.5)
output(w, to=alice)
"""


def _warnings(frac: int) -> str:
    prog = driver.front_end(UNDERFLOW, "u.mpc", {"FRAC": str(frac)})
    g = np.random.default_rng(0).uniform(0.2, 0.6, 100)
    ring = np.round(g * 2.0 ** frac).astype(np.int64).view(np.uint64)
    err = io.StringIO()
    emulate(prog, {("alice", "g"): ring}, underflow=err)
    return err.getvalue()


def test_underflowing_updates_warn_once_per_position_with_a_count():
    text = _warnings(8)
    lines = [ln for ln in text.splitlines() if ln.startswith("warning")]
    assert len(lines) == 1, text
    assert "u.mpc:7:13" in lines[0] and "3 of 3 executions" in lines[0] and "8 fractional bits" in lines[0]
    assert "precision" in text and "--frac-bits" in text


def test_enough_precision_does_not_warn():
    assert _warnings(20) == ""


def test_underflow_warning_names_the_call_chain():
    src = HEAD + "precision 8\ndef step(w, g):\n    return w - 0.001 * g\n" \
        "g = input(alice, 'g', shape=(10,))\nw = step(zeros((10,)), g)\noutput(w, to=alice)\n"
    prog = driver.front_end(src, "c.mpc")
    err = io.StringIO()
    emulate(prog, {("alice", "g"): np.full(10, 100, np.uint64)}, underflow=err)
    assert "c.mpc:6:5 → c.mpc:4:16" in err.getvalue(), err.getvalue()


def test_veil_emulate_prints_the_warning(tmp_path):
    (tmp_path / "u.mpc").write_text(UNDERFLOW)
    np.save(tmp_path / "g.npy", np.full(100, 0.3))
    done = veil("emulate", "u.mpc", "--input", "alice.g=g.npy", cwd=tmp_path)
    assert done.code == 0 and "fixed-point underflow at u.mpc:7:13" in done.err
    quiet = veil("emulate", "u.mpc", "--input", "alice.g=g.npy", "--frac-bits", "20", cwd=tmp_path)
    assert quiet.code == 0 and "underflow" not in quiet.err


# ---- protocol aliases -------------------------------------------------------------------------
@pytest.mark.parametrize("line, name, compute", [
    ("aby3(alice, bob, carol)", "rep3", ["alice", "bob", "carol"]),
    ("pond(alice, bob, dealer=carol)", "dealer2", ["alice", "bob", "carol"]),
    ("pond(bob, alice, carol)", "dealer2", ["bob", "alice", "carol"]),
    ("dealer2(alice, bob, carol)", "dealer2", ["alice", "bob", "carol"]),
])
def test_aliases_in_programs_and_on_the_command_line(line, name, compute):
    src = HEAD + "x = input(alice, 'x', shape=(2,))\ny = secret(x) * x\noutput(y, to=bob)\n"
    for c in (api.compile(HEAD + f"protocol {line}\n" + src[len(HEAD):]), api.compile(src, protocol=line)):
        assert c.manifest["protocol"] == name and c.manifest["compute"] == compute
        out = api.run(c, {"alice": {"x": np.array([1.5, -2.0])}})
        assert out["bob"]["y"].tolist() == [2.25, 4.0]


@pytest.mark.parametrize("spec, text", [
    ("pond(alice, bob)", "pond (= dealer2) needs a dealer"),
    ("aby3(alice, bob)", "aby3 (= rep3) takes 3 parties"),
    ("abx3(alice, bob, carol)", "did you mean aby3"),
])
def test_alias_errors_name_what_the_user_wrote(spec, text):
    with pytest.raises(UsageErr, match=text.replace("(", r"\(").replace(")", r"\)")):
        api.compile(HEAD + "x = 1\n", protocol=spec)


@pytest.mark.parametrize("frac_bits, warns", [(16, True), (24, False)])
def test_updates_left_with_a_few_significant_bits_warn(frac_bits, warns):
    """Not zero but coarse: 3e-5 * g with g ~ 1 is 2 units at 16 fractional bits (one significant
    bit), 500 units at 24: the first warns, the second does not; an exact zero never counts."""
    src = HEAD + "g = input(alice, 'g', shape=(100,))\nw = zeros((100,)) - 0.00003 * g\noutput(w, to=alice)\n"
    prog = driver.front_end(src, "k.mpc", frac_bits=frac_bits)
    g = np.r_[np.linspace(0.5, 1.5, 60), np.zeros(40)]
    err = io.StringIO()
    emulate(prog, {("alice", "g"): encode(g, "fix", frac_bits)}, underflow=err)
    assert ("fixed-point underflow at k.mpc" in err.getvalue()) == warns, err.getvalue()
