"""The compute_at_owner pass: arithmetic on one party's shared data (scaling, truncation, sums)
happens at its owner before the share; comparisons stay on the sharing (compiler/passes/owner.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import veil.compiler.passes as passes
from veil.compiler.passes import compute_at_owner
from veil.runtime import api

DEALER = "dealer2(alice, bob, dealer=carol)"
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"

SCALED = HEAD + """x = secret(input(alice, "x", shape=(8, 4)))
y = input(bob, "y", shape=(8, 4))
z = x - 0.3 * secret(y)
output(z, to=alice)
"""


def _without_pass(monkeypatch) -> None:
    monkeypatch.setattr(passes, "PIPELINE", tuple(p for p in passes.PIPELINE if p is not compute_at_owner))


def _ir_lines(c: api.Compiled, opcode: str) -> list[str]:
    return [line for line in c.ir().splitlines() if f"= {opcode}(" in line]


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_a_private_scaling_is_the_owners_floor_then_one_share(protocol, monkeypatch):
    fast = api.compile(SCALED, file="s.mpc", protocol=protocol)
    truncs = _ir_lines(fast, "trunc")
    assert len(truncs) == 1 and "private(bob)" in truncs[0]
    shares = _ir_lines(fast, "share")
    assert any('owner="bob"' in s and "fix@16[8x4]" in s for s in shares)
    _without_pass(monkeypatch)
    slow = api.compile(SCALED, file="s.mpc", protocol=protocol)
    assert "secret" in _ir_lines(slow, "trunc")[0]
    assert fast.cost.rounds < slow.cost.rounds
    assert sum(fast.cost.bytes_sent.values()) < sum(slow.cost.bytes_sent.values())


@pytest.mark.parametrize("protocol", [None, DEALER])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(-0.99, 0.99).filter(lambda v: abs(v) > 1e-3))
def test_the_moved_ops_compute_the_same_values(protocol, seed, c):
    rng = np.random.default_rng(seed)
    src = SCALED.replace("0.3", repr(c))
    comp = api.compile(src, file="s.mpc", protocol=protocol)
    inp = {"alice": {"x": rng.uniform(-50, 50, (8, 4))}, "bob": {"y": rng.uniform(-50, 50, (8, 4))}}
    got = api.run(comp, inp)["alice"]["z"]
    want = inp["alice"]["x"] - c * inp["bob"]["y"]
    e = int(np.floor(-np.log2(abs(c))))                 # the constant carries 16 + e bits
    # the inputs' encoding (half a unit each, y's scaled by c), the floor (one unit), the constant's rounding
    bound = 2.0 ** -17 * (1 + abs(c)) + 2.0 ** -16 + 50 * 2.0 ** -(17 + e)
    assert np.max(np.abs(got - want)) <= bound + 1e-9
    assert np.max(np.abs(got - api.emulate(comp, inp)["alice"]["z"])) <= 2.0 ** -16


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_a_chain_of_arithmetic_runs_at_the_owner_and_its_comparison_on_the_sharing(protocol):
    src = HEAD + """y = input(bob, "y", shape=(6,))
x = secret(input(alice, "x", shape=(6,)))
t = (secret(y) * 0.25 + 1.0) < 0.5
z = where(t, x, 0.0 - x) + t * x
output(z, to=alice)
output(t, to=alice)
"""
    comp = api.compile(src, file="s.mpc", protocol=protocol)
    assert "private(bob) fix" in _ir_lines(comp, "add")[0]        # the scaling and the shift, at bob
    assert "secret bool" in _ir_lines(comp, "msb")[0] and comp.cost.comparisons == 6   # secret(x) shares now
    y, x = np.array([-3.0, -2.1, -1.9, 0.0, 2.0, -10.0]), np.arange(6.0)
    got = api.run(comp, {"bob": {"y": y}, "alice": {"x": x}})["alice"]
    t = y * 0.25 + 1.0 < 0.5
    assert list(got["t"]) == list(t)
    assert np.array_equal(got["z"], np.where(t, x, -x) + t * x)


@pytest.mark.parametrize("f", ["sort(s)", "max(s)", "s < 0.5", "where(s > 0.0, s, 0.0)"])
def test_comparisons_and_order_functions_stay_on_the_sharing(f):
    src = HEAD + 'y = input(bob, "y", shape=(6,))\ns = secret(y)\nz = ' + f + "\noutput(z, to=alice)\n"
    comp = api.compile(src, file="s.mpc")
    assert comp.cost.comparisons > 0, comp.ir()


@pytest.mark.parametrize("body, why", [
    ("s = secret(y)\nz = s * 0.5 + s * 0.25\noutput(z, to=alice)", "the share has two readers"),
    ("s = secret(y)\nw = s * 0.5\nz = s + secret(input(alice, \"a\", shape=(6,)))\noutput(w, to=alice)\n"
     "output(z, to=alice)", "one of the share's readers needs alice's data"),
    ("s = secret(y)\nz = broadcast_to(s, (4, 6))\noutput(z, to=alice)", "the result is larger than the data shared"),
])
def test_what_stays_shared_first(body, why):
    src = HEAD + 'y = input(bob, "y", shape=(6,))\n' + body + "\n"
    comp = api.compile(src, file="s.mpc")
    first = next(line for line in comp.ir().splitlines() if "= share(" in line and 'owner="bob"' in line)
    assert "[6]" in first, why


def test_a_share_before_a_loop_stays_before_it():
    src = HEAD + """y = input(bob, "y", shape=(4, 3))
s = secret(y)
acc = secret(input(alice, "a", shape=(3,)))
for i in range(4):
    acc = acc + s[i] * 0.5
output(acc, to=alice)
"""
    comp = api.compile(src, file="s.mpc")
    body = comp.ir().split("body(", 1)[1]
    assert "= share(" not in body and "secret fix" in next(l for l in body.splitlines() if "= trunc(" in l or "bits=" in l)
    got = api.run(comp, {"bob": {"y": np.arange(12.0).reshape(4, 3)}, "alice": {"a": np.zeros(3)}})["alice"]["acc"]
    assert np.allclose(got, np.arange(12.0).reshape(4, 3).sum(axis=0) * 0.5, atol=4 * 2.0 ** -16)


def test_two_owners_data_are_not_combined_at_either():
    src = HEAD + """a = input(alice, "a", shape=(5,))
b = input(bob, "b", shape=(5,))
z = secret(a) + secret(b)
output(z, to=carol)
"""
    comp = api.compile(src, file="s.mpc")
    assert len(_ir_lines(comp, "share")) == 2 and "secret" in _ir_lines(comp, "add")[0]
