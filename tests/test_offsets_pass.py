"""The offsets pass (compiler/passes/offsets.py): msb of a broadcast secret plus public offsets
becomes msb_at (with its product by another such function of the same base, msb_at_mul) on
ml.sigmoid and on comparisons with a row of thresholds of either sign, and nowhere the base is
not smaller than the result; MPC equals the emulator and numpy under both protocols, on both
kernel paths, and every party measures the rounds and bytes the compiler predicts."""
from __future__ import annotations

import numpy as np
import pytest

from veil.compiler.ir import walk
from veil.runtime import api
from veil.runtime.protocols import fss_msb

PROTOCOLS = [None, "dealer2(alice, bob, dealer=carol)"]
HEAD = "party alice, bob, carol\n"
N = 40
KNOTS = [-1.5, -0.25, 0.0, 0.75, 2.0]

SIGMOID = HEAD + f'''from ml import sigmoid
x = secret(input(alice, "x", shape=({N},)))
output(sigmoid(x), "s", to=alice)
'''
THRESHOLDS = HEAD + f'''x = secret(input(alice, "x", shape=({N},)))
past = x.reshape(({N}, 1)) - {KNOTS}
output(past > 1.0, "gt", to=alice)
output(past < 0.0, "lt", to=alice)
output(where(past > 0.0, past, 0.0), "ramp", to=alice)
'''
SAME_SIZE = HEAD + f'''x = secret(input(alice, "x", shape=({N},)))
output(x < 0.5, "lt", to=alice)
output(where(x > 0.0, x, 0.0), "relu", to=alice)
'''


def _opcodes(src: str, protocol: str | None) -> list[str]:
    return [op.opcode for op in walk(api.front_end(src, protocol=protocol, file="t.mpc").body)]


def _inputs() -> dict:
    rng = np.random.default_rng(5)
    x = np.concatenate([np.array(KNOTS), np.array(KNOTS) + 2.0 ** -16, np.array(KNOTS) - 2.0 ** -16,
                        rng.uniform(-8, 8, N - 3 * len(KNOTS))])
    return {"alice": {"x": x}}


def _run(src: str, protocol: str | None) -> tuple[dict, dict]:
    """MPC and emulator outputs, after checking every party measured the compiler's prediction."""
    c = api.compile(src, protocol=protocol, file="t.mpc")
    out = api.run(c, _inputs())
    cost = c.manifest["cost"]
    for party, s in out.stats.items():
        assert (s["rounds"], s["bytes_sent"]) == (cost["party_rounds"].get(party, 0),
                                                   cost["bytes_sent"].get(party, 0)), party
    return out["alice"], api.emulate(c, _inputs())["alice"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_rewrite_fires_on_ml_sigmoid(protocol):
    ops = _opcodes(SIGMOID, protocol)
    assert "msb_at_mul" in ops and "msb" not in ops and "msb_at" not in ops


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_both_signs_and_the_product(protocol):
    ops = _opcodes(THRESHOLDS, protocol)
    assert ops.count("msb_at") == 2 and ops.count("msb_at_mul") == 1 and "msb" not in ops


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_rewrite_when_the_base_is_not_smaller(protocol):
    ops = _opcodes(SAME_SIZE, protocol)
    assert "msb_at" not in ops and "msb_at_mul" not in ops and "msb" in ops


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("circuit", [False, True])
def test_mpc_matches_the_emulator_and_numpy(protocol, circuit, monkeypatch):
    if circuit:  # a base above FSS_MAX: the kernels compute y and take the carry circuit
        monkeypatch.setattr(fss_msb, "FSS_MAX", N - 1)
    mpc, emu = _run(THRESHOLDS, protocol)
    past = _inputs()["alice"]["x"].reshape(N, 1) - np.array(KNOTS)
    for name in ("gt", "lt", "ramp"):
        assert np.array_equal(mpc[name], emu[name]), name
    assert np.array_equal(mpc["gt"], past > 1) and np.array_equal(mpc["lt"], past < 0)
    assert np.allclose(mpc["ramp"], np.maximum(past, 0), atol=2.0 ** -16)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigmoid_matches_the_emulator_and_the_logistic_function(protocol):
    mpc, emu = _run(SIGMOID, protocol)
    assert np.max(np.abs(mpc["s"] - emu["s"])) <= 2.0 ** -16  # the truncation: at most one unit off
    assert np.max(np.abs(mpc["s"] - 1 / (1 + np.exp(-_inputs()["alice"]["x"])))) < 4e-3


def test_fraud_step_rounds_drop():
    """The fraud step (BATCH = 128 rows, 10 knots): 128 keys, not 1280, so the DCF path: 8 rounds
    per step in rep3 (13 with the circuit), 6 in dealer2 (12)."""
    per_step = {}
    for protocol, want in ((None, 8), ("dealer2(alice, bob, dealer=carol)", 6)):
        r = [api.compile("programs/fraud_detection.mpc", params={"EPOCHS": e}, protocol=protocol)
             .manifest["cost"]["rounds"] for e in (1, 2)]
        per_step[protocol] = (r[1] - r[0]) / (7000 // 128)
        assert per_step[protocol] == want, per_step
