"""The distribute pass: a public factor after a truncated value moves into the value's terms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_passes import IR, random_inputs, same_results, text
import veil.compiler.passes as passes
from veil.compiler.passes import dce, distribute_constants
from veil.compiler.emulate import emulate
from veil.compiler.types import Type
from veil.runtime import api
from veil.runtime.ring import signed

DEALER = "dealer2(alice, bob, dealer=carol)"
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"

STEP = HEAD + """x = secret(input(alice, "x", shape=(16, 32)))
y = secret(input(bob, "y", shape=(16, 1)))
w = secret(input(alice, "w", shape=(32, 1)))
b = secret(input(alice, "b", shape=(1,)))
u = x @ w + b
p = 0.5 + 0.15012 * u - 0.0015930 * (u * u * u)
g = p - y
w2 = w - (0.1 / 16) * (x.T @ g)
b2 = b - (0.1 / 16) * sum(g, axis=0)
output(w2, to=alice)
output(b2, to=alice)
"""


def _step_inputs(rng) -> dict:
    return {"alice": {"x": rng.uniform(0, 1, (16, 32)), "w": rng.uniform(-0.3, 0.3, (32, 1)),
                      "b": rng.uniform(-1, 1, (1,))},
            "bob": {"y": rng.integers(0, 2, (16, 1)).astype(np.float64)}}


def _step_float(inp: dict) -> tuple[np.ndarray, np.ndarray]:
    x, w, b, y = inp["alice"]["x"], inp["alice"]["w"], inp["alice"]["b"], inp["bob"]["y"]
    u = x @ w + b
    g = 0.5 + 0.15012 * u - 0.0015930 * u ** 3 - y
    return w - 0.1 / 16 * (x.T @ g), b - 0.1 / 16 * g.sum(axis=0)


def _without_pass(monkeypatch) -> None:
    monkeypatch.setattr(passes, "PIPELINE", tuple(p for p in passes.PIPELINE if p is not distribute_constants))


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_a_gradient_steps_learning_rate_leaves_the_critical_path(protocol, monkeypatch):
    fast = api.compile(STEP, file="step.mpc", protocol=protocol)
    _without_pass(monkeypatch)
    slow = api.compile(STEP, file="step.mpc", protocol=protocol)
    one = api.compile(STEP.replace("w2 = w - (0.1 / 16) * (x.T @ g)", "w2 = w - 0.5 * (x.T @ g)")
                      .replace("b2 = b - (0.1 / 16) * sum", "b2 = b - 0.5 * sum"), file="step.mpc", protocol=protocol)
    rounds = slow.cost.rounds - one.cost.rounds       # what c's truncated product costs after the matmul
    assert rounds > 0 and slow.cost.rounds - fast.cost.rounds == rounds
    # the 32x1 truncation after the matmul is replaced by one of the 16x1 labels: fewer elements
    assert fast.cost.truncations < slow.cost.truncations
    assert sum(fast.cost.bytes_sent.values()) < sum(slow.cost.bytes_sent.values())


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_the_distributed_step_computes_the_step(protocol):
    rng = np.random.default_rng(11)
    inp = _step_inputs(rng)
    c = api.compile(STEP, file="step.mpc", protocol=protocol)
    got = api.run(c, inp)["alice"]
    want_w, want_b = _step_float(inp)
    assert np.max(np.abs(got["w2"] - want_w)) < 16 * 2.0 ** -16
    assert np.max(np.abs(got["b2"] - want_b)) < 16 * 2.0 ** -16
    emulated = api.emulate(c, inp)["alice"]
    assert np.max(np.abs(got["w2"] - emulated["w2"])) <= 4 * 2.0 ** -16


def _ir_step(coef: float, coef_scale: int, late_term: bool = False):
    """trunc(trunc(a @ g) * c) with g = k * v - y: the constant term k * v (or, late_term, v * v)."""
    b = IR()
    a = b.input("alice", "a", (8, 6))
    v = b.input("alice", "v", (6, 1))
    y = b.input("bob", "y", (6, 1))
    term = b.mul(v, v) if late_term else b.mul(v, b.const(0.3, scale=18))
    g = b.bin("sub", term, y)
    m = b.op("matmul", [a, g], Type("secret", "fix", (8, 1), 32))
    t = b.op("trunc", [m], m.type.with_(scale=16), bits=16)
    b.output(b.mul(t, b.const(coef, scale=coef_scale)), "out")
    return b


def test_the_factor_merges_into_the_terms_constant(rng):
    b = _ir_step(0.01, 22)
    after = dce(distribute_constants(b.prog))
    lines = text(after).splitlines()
    assert sum("trunc(" in line for line in lines) == 3  # the term's, the label's, the matmul's
    last = lines[-2]                                      # c's own product and truncation are gone:
    assert "matmul" in lines[-3] and "trunc(" in last and "bits=22" in last   # 16 + 22 - (22 - 6)
    merged = [op.out for op in after.body.ops if op.opcode == "const" and op.out.type.scale == 24]
    assert len(merged) == 1 and f"mul(%4, {merged[0]})" in text(after)  # c merged into 0.3
    same_results(b.prog, after, rng, ulps=3)


def test_nothing_moves_when_it_would_not_be_earlier(rng):
    late = _ir_step(0.01, 22, late_term=True)    # v * v has no constant: c would need a truncation of
    assert text(distribute_constants(late.prog)) == text(late.prog)   # its own, as late as c's
    big = _ir_step(3.0, 16)                      # |c| >= 1: magnitudes would grow
    assert text(distribute_constants(big.prog)) == text(big.prog)


@settings(max_examples=25, deadline=None)
@given(coef=st.floats(1e-4, 0.9), sign=st.sampled_from([-1.0, 1.0]), seed=st.integers(0, 2**31))
def test_distributed_factors_stay_within_the_truncation_error(coef, sign, seed):
    """Each truncation is off by at most a unit of its own scale: the scaled term's and the labels'
    (at 2^-(F+e), |c| 2^e > 1/2) reach the result through |a|, like g's own unit did before."""
    extra = int(np.floor(-np.log2(coef)))
    b = _ir_step(sign * coef, 16 + extra)
    after = distribute_constants(b.prog)
    assert text(after) != text(b.prog)
    inputs = random_inputs(b.prog, np.random.default_rng(seed))
    a = signed(inputs[("alice", "a")]).astype(np.float64) / 2 ** 16
    naive, moved = (signed(emulate(p, inputs)["alice"]["out"]).astype(np.int64) for p in (b.prog, after))
    bound = 3 * np.abs(a).sum(axis=1, keepdims=True) + 3
    assert np.all(np.abs(naive - moved) <= bound)
