"""Visibility a federated user can predict: a public reveal reaches the input-only parties that
compute with it (and only them), and a note warns when a data owner's whole raw input is shared."""
from __future__ import annotations

import numpy as np
import pytest

from veil.compiler.disclosure import disclosure, human_bytes, raw_input_notes
from veil.runtime import api
from veil_cli import veil

# Secure aggregation in miniature: dave and erin own data and compute gradients in clear from the
# revealed model; they share only the gradients; p0 learns the model, dave his last gradient.
AGGREGATION = """\
party p0, p1, p2, dave, erin
protocol rep3(p0, p1, p2)
param T = 4
xd = input(dave, "x", shape=(16, 3))
yd = input(dave, "y", shape=(16, 1))
xe = input(erin, "x", shape=(16, 3))
ye = input(erin, "y", shape=(16, 1))
w = zeros((3, 1))
g = zeros((3, 1))
for t in range(T):
    wp = reveal(w)
    g = xd.T @ (xd @ wp - yd)
    ge = xe.T @ (xe @ wp - ye)
    w = w - 0.02 * (secret(g) + secret(ge))
output(w, to=p0)
output(g, to=dave)
"""
PROTOCOLS = [None, "dealer2(p0, p1, dealer=p2)"]


def _data(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    true = np.array([[0.5], [-1.0], [0.25]])
    out = {}
    for p in ("dave", "erin"):
        x = rng.normal(size=(16, 3))
        out[p] = {"x": x, "y": x @ true}
    return out


def _plain(inputs: dict) -> np.ndarray:
    w = np.zeros((3, 1))
    for _ in range(4):
        grads = [d["x"].T @ (d["x"] @ w - d["y"]) for d in inputs.values()]
        w = w - 0.02 * sum(grads)
    return w


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_input_only_parties_train_in_clear_on_a_revealed_model(protocol):
    c = api.compile(AGGREGATION, protocol=protocol)
    inputs = _data(7)
    clear = api.emulate(c, inputs)
    mpc = api.run(c, inputs)
    np.testing.assert_allclose(mpc["p0"]["w"], clear["p0"]["w"], atol=1e-3)
    np.testing.assert_allclose(mpc["dave"]["g"], clear["dave"]["g"], atol=1e-2)
    np.testing.assert_allclose(clear["p0"]["w"], _plain(inputs), atol=1e-2)


def test_the_revealed_model_goes_only_to_the_parties_that_use_it():
    src = AGGREGATION.replace("    ge = xe.T @ (xe @ wp - ye)\n", "    ge = xe.T @ (xe @ w0 - ye)\n") \
                     .replace("g = zeros((3, 1))\n", "g = zeros((3, 1))\nw0 = ones((3, 1))\n")
    d = disclosure(api.compile(src).prog)
    dave = [(i.what, i.type, i.times) for i in d.learns["dave"]]
    assert ("reveal (sent by p0)", "fix[3x1]", 4) in dave
    assert not any(i.what.startswith("reveal") for i in d.learns["erin"])  # erin never reads wp
    for p in ("dave", "erin"):  # the owners send their gradients' shares, never their data
        assert [(i.type, i.times) for i in d.shares[p]] == [("fix[3x1]", 4)]
        assert all("computed from" in i.what for i in d.shares[p])


def test_the_revealed_model_is_sent_once_outside_the_loops_that_only_read_it():
    src = """\
party p0, p1, p2, dave
protocol rep3(p0, p1, p2)
xd = input(dave, "x", shape=(4, 2))
m = reveal(secret(ones((2, 1))) * 3.0)
acc = zeros((4, 1))
for t in range(5):
    acc = acc + xd @ m
output(acc, to=dave)
"""
    c = api.compile(src)
    d = disclosure(c.prog)
    assert [(i.what, i.times) for i in d.learns["dave"] if i.what.startswith("reveal")] == \
        [("reveal (sent by p0)", 1)]
    x = np.arange(8.0).reshape(4, 2)
    np.testing.assert_allclose(api.run(c, {"dave": {"x": x}})["dave"]["acc"], 5 * x @ np.full((2, 1), 3.0),
                               atol=1e-3)


BIG = """\
party p0, p1, p2, dave
protocol rep3(p0, p1, p2)
xd = input(dave, "x", shape=(600, 784))
{body}
"""


def test_a_note_names_a_whole_raw_input_shared_with_its_size(tmp_path):
    prog = tmp_path / "big.mpc"
    # s meets p0's weights, so it is shared whole (a sum alone would be computed at dave first)
    prog.write_text(BIG.format(body="s = secret(xd)\nw = secret(input(p0, \"w\", shape=(784, 1)))\n"
                                    "output(sum(s @ w), \"t\", to=p0)"))
    notes = raw_input_notes(api.front_end(str(prog)))
    assert len(notes) == 1
    assert (notes[0].span.line, notes[0].span.col) == (3, 6)
    words = api.compile(str(prog)).cost.bytes_sent["dave"]
    assert human_bytes(words) in notes[0].message and "'x'" in notes[0].message and "600x784" in notes[0].message
    done = veil("compile", str(prog), "-o", str(tmp_path / "b"), cwd=tmp_path)
    assert done.code == 0
    line = next(ln for ln in done.err.splitlines() if "note:" in ln)
    assert line.startswith(f"{prog}:3:6: note: dave's whole input 'x' (600x784 fix) is secret-shared")
    assert "compute in clear at dave" in line


def test_no_note_when_the_input_is_reduced_in_clear_first(tmp_path):
    prog = tmp_path / "small.mpc"
    prog.write_text(BIG.format(body="g = xd.T @ xd[:, 0:1]\noutput(sum(secret(g)), \"t\", to=p0)"))
    assert raw_input_notes(api.front_end(str(prog))) == []
    done = veil("compile", str(prog), "-o", str(tmp_path / "b"), cwd=tmp_path)
    assert done.code == 0 and "note:" not in done.err


def test_human_bytes():
    assert [human_bytes(n) for n in (512, 37_632, 96_000_000, 3_760_000)] == \
        ["512 bytes", "38 KB", "96 MB", "3.8 MB"]


def test_no_note_when_the_optimizer_reduces_the_shared_input_at_its_owner():
    """sum(secret(xd)) is computed at dave (passes/owner.py): he sends 48 bytes (shares of one
    number), not the 22.6 MB of sharing the whole input."""
    c = api.compile(BIG.format(body='output(sum(secret(xd)), "t", to=p0)'))
    assert raw_input_notes(c.prog) == [] and c.cost.bytes_sent["dave"] <= 64
