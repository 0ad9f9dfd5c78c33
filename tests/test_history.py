"""History outputs: a value output or revealed (and named) inside loops is kept with one row per
iteration, in MPC as in the emulator, printed live at its receivers, and declared in the manifest."""
from __future__ import annotations

import re

import numpy as np
import pytest

from veil.runtime import api
from veil.runtime.diagnostics import NameErr
from veil_cli import veil

PROGRAM = """\
party alice, bob, carol, dave
protocol rep3(alice, bob, carol)
param E = 2
param B = 3
x = input(dave, "x", shape=(4,))
s = secret(x)
acc = 0.0
for epoch in range(E):
    for batch in range(B):
        acc = acc + sum(s * s) * 0.5
        loss = reveal(acc, to=alice)
        output(s * acc, "vec", to=[bob, dave])
    pub = reveal(acc)
output(acc, to=alice)
"""
X = np.array([1.0, 2.0, 0.5, -1.0])


def _expected() -> dict[str, np.ndarray]:
    acc = np.cumsum(np.full(6, 0.5 * np.sum(X * X))).reshape(2, 3)
    return {"loss": acc, "pub": acc[:, -1], "vec": acc[..., None] * X}


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
def test_histories_have_one_row_per_iteration_in_mpc_and_emulation(protocol):
    c = api.compile(PROGRAM, protocol=protocol)
    outs = c.manifest["outputs"]
    assert {o["name"]: o["shape"] for o in outs["alice"]} == {"acc": [], "loss": [2, 3], "pub": [2]}
    assert {o["name"]: o["shape"] for o in outs["dave"]} == {"vec": [2, 3, 4]}
    compute = ["alice", "bob", "carol"]
    assert [p for p in c.manifest["parties"] if any(o["name"] == "pub" for o in outs[p])] == compute
    inputs = {"dave": {"x": X}}
    clear, mpc = api.emulate(c, inputs), api.run(c, inputs)
    want = _expected()
    for party, name in [("alice", "loss"), ("alice", "pub"), ("bob", "vec"), ("dave", "vec"), ("carol", "pub")]:
        assert mpc[party][name].shape == clear[party][name].shape == want[name].shape
        np.testing.assert_allclose(clear[party][name], want[name], atol=1e-3)
        np.testing.assert_allclose(mpc[party][name], clear[party][name], atol=1e-3)


def _names(src: str) -> dict[str, list[str]]:
    c = api.compile(src)
    return {p: sorted(o["name"] for o in outs) for p, outs in c.manifest["outputs"].items()}


HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\ns = secret(input(alice, \"x\", shape=(20,)))\n"


def test_which_reveals_become_histories():
    src = HEAD + """\
def peek(v):
    seen = reveal(v, to=bob)
    return seen
acc = 0.0
for i in range(3):
    acc = acc + sum(s)
    small = reveal(acc, to=bob)
    big = reveal(s * acc, to=bob)
    twice = reveal(acc, to=carol) * 2.0
    inner = peek(acc)
    out = small + big[0] + twice + inner
output(acc, to=alice)
"""
    # small: named, 1 element. big: 20 elements (data, not a figure). twice: the reveal is not
    # what the name holds. inner: revealed inside a function.
    assert _names(src) == {"alice": ["acc"], "bob": ["small"], "carol": []}


def test_a_reveal_named_like_an_output_takes_its_line():
    src = HEAD + "acc = 0.0\nfor i in range(2):\n    acc = acc + sum(s)\n    acc2 = reveal(acc, to=alice)\n" \
                 "output(acc, \"acc2\", to=alice)\n"
    assert _names(src)["alice"] == ["acc2", "acc2_7"]


def test_two_histories_with_one_name_are_refused_with_the_line():
    src = HEAD + "for i in range(2):\n    output(sum(s), \"t\", to=alice)\n    output(sum(s) * 2.0, \"t\", to=alice)\n"
    with pytest.raises(NameErr) as info:
        api.compile(src)
    assert "two outputs named 't'" in str(info.value) and info.value.span.line == 6


def test_the_ir_text_keeps_histories(tmp_path):
    c = api.compile(PROGRAM)
    path = tmp_path / "p.ir"
    path.write_text(c.ir_text())
    again = api.compile(str(path))
    assert again.manifest["hash"] == c.manifest["hash"]
    assert again.manifest["outputs"] == c.manifest["outputs"]


def _write(tmp_path):
    (tmp_path / "hist.mpc").write_text(PROGRAM)
    (tmp_path / "x.csv").write_text(",".join(map(str, X)) + "\n")


LIVE = re.compile(r"^\[(\w+)\] epoch (\d)/2(?: batch (\d)/3)?: (\w+) = (.+)$")


def test_veil_local_prints_live_values_and_writes_history_files(tmp_path):
    _write(tmp_path)
    done = veil("local", "hist.mpc", "--input", "dave.x=x.csv", cwd=tmp_path, timeout=120)
    assert done.code == 0, done.err
    live = [LIVE.match(ln) for ln in done.out.splitlines() if ln.startswith("[")]
    assert all(live) and len(live) == 6 + 12 + 6  # loss, vec twice, pub three times
    assert "[alice] epoch 1/2 batch 1/3: loss = 3.125" in done.out
    assert "[dave] epoch 2/2 batch 3/3: vec = [18.75, 37.5, 9.375, -18.75]" in done.out
    assert "[carol] epoch 2/2: pub = 18.75" in done.out
    want = _expected()
    for party, name in [("alice", "loss"), ("bob", "vec"), ("carol", "pub")]:
        got = np.load(tmp_path / "out" / "hist" / party / f"{name}.npy")
        np.testing.assert_allclose(got, want[name], atol=1e-3)
    assert "elapsed" not in done.err  # not a terminal: no progress line
    em = veil("emulate", "hist.mpc", "--input", "dave.x=x.csv", cwd=tmp_path)
    assert em.code == 0, em.err
    for party, name in [("alice", "loss"), ("dave", "vec"), ("bob", "pub")]:
        a = np.load(tmp_path / "out" / "hist-emulated" / party / f"{name}.npy")
        b = np.load(tmp_path / "out" / "hist" / party / f"{name}.npy")
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-3)


def test_quiet_prints_no_live_values_and_a_failed_run_leaves_no_history(tmp_path):
    _write(tmp_path)
    done = veil("local", "hist.mpc", "--input", "dave.x=x.csv", "--quiet", cwd=tmp_path, timeout=120)
    assert done.code == 0, done.err
    assert not any(ln.startswith("[") for ln in done.out.splitlines())
    assert (tmp_path / "out" / "hist" / "alice" / "loss.npy").exists()
    (tmp_path / "bad.csv").write_text("1,2,3\n")  # three values where four are declared
    failed = veil("local", "hist.mpc", "--input", "dave.x=bad.csv", "--output-dir", "o2", cwd=tmp_path,
                  timeout=120)
    assert failed.code == 1
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").rglob("*.npy"))
