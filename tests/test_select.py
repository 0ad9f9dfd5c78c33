"""A comparison and the selection it drives in the rounds of the comparison alone (the msb_mul
fusion): ReLU, max trees and sorting networks cost no round for the multiplication by the bit, and
stay exact against numpy and the emulator under both protocols."""
from __future__ import annotations

import math

import numpy as np
import pytest

from veil.compiler.expand_order import merge_network
from veil.compiler.lower import scheduled
from veil.compiler.schedule import flat_rounds
from veil.runtime import api
from veil.runtime.protocols import get_protocol

PROTOCOLS = {"rep3": None, "dealer2": "dealer2(alice, bob, dealer=carol)"}
HEAD = "party alice, bob, carol\n"
SRC = 'x = secret(input(alice, "x", shape=({n},)))\noutput(reveal({f}), "r", to=alice)\n'
UNIT = 2.0 ** -16


def _cost(protocol: str | None, n: int, f: str):
    return api.compile(HEAD + SRC.format(n=n, f=f), protocol=protocol).cost


def _comparison_rounds(name: str) -> int:
    """The declared rounds of one comparison (msb) under the protocol."""
    return get_protocol(name).kernels["msb"].cost(["a", "b", "c"], 1).rounds


@pytest.mark.parametrize("name", PROTOCOLS)
def test_relu_takes_the_rounds_of_one_comparison(name):
    proto = PROTOCOLS[name]
    base = _cost(proto, 1000, "x").rounds
    relu = _cost(proto, 1000, "where(x > 0.0, x, 0.0)")
    assert relu.rounds - base == _comparison_rounds(name)
    assert relu.rounds == _cost(proto, 1000, "x < 0.5").rounds
    assert relu.comparisons == 1000 and relu.multiplications == 1000  # the fused kernel counts both


@pytest.mark.parametrize("name", PROTOCOLS)
def test_max_of_1000_takes_ten_comparisons(name):
    proto = PROTOCOLS[name]
    layers = math.ceil(math.log2(1000))
    assert _cost(proto, 1000, "max(x)").rounds - _cost(proto, 1000, "x").rounds == layers * _comparison_rounds(name)
    assert layers * _comparison_rounds(name) <= 70


@pytest.mark.parametrize("name", PROTOCOLS)
def test_sort_of_1000_takes_the_network_depth_times_one_comparison(name):
    proto = PROTOCOLS[name]
    depth = len(merge_network(1000))
    got = _cost(proto, 1000, "sort(x)").rounds - _cost(proto, 1000, "x").rounds
    assert got == depth * _comparison_rounds(name)


SELECT = HEAD + '''x = secret(input(alice, "x", shape=(40,)))
y = secret(input(bob, "y", shape=(40,)))
output(where(x > 0.0, x, 0.0), "relu", to=alice)
output(where(x < y, x * y, y), "prod", to=alice)
output((x < 1.0) * y, "bit_first", to=alice)
output(y * (x < 2.0), "bit_second", to=alice)
output((x < -1.0) & (y < 0.5), "both", to=alice)
output(where(x > 0.0, x, 0.0) * y, "scaled", to=alice)
'''


@pytest.mark.parametrize("name", PROTOCOLS)
def test_fused_selections_are_exact(name):
    c = api.compile(SELECT, protocol=PROTOCOLS[name], file="select.mpc")
    rng = np.random.default_rng(3)
    x = np.round(rng.uniform(-20, 20, 40) / UNIT) * UNIT
    y = np.round(rng.uniform(-20, 20, 40) / UNIT) * UNIT
    x[:4], y[:4] = [0.0, UNIT, -UNIT, 2.0], [0.0, 0.0, 0.0, 2.0]
    ins = {"alice": {"x": x}, "bob": {"y": y}}
    mpc, emu = api.run(c, ins)["alice"], api.emulate(c, ins)["alice"]
    for key in ("relu", "bit_first", "bit_second", "both"):  # no truncation: exact
        np.testing.assert_array_equal(mpc[key], emu[key], err_msg=key)
    for key in ("prod", "scaled"):  # one truncation each, off by at most a unit in MPC
        assert np.all(np.abs(mpc[key] - emu[key]) <= UNIT), key
    np.testing.assert_array_equal(mpc["relu"], np.maximum(x, 0.0))
    np.testing.assert_array_equal(mpc["bit_first"], np.where(x < 1.0, y, 0.0))
    np.testing.assert_array_equal(mpc["bit_second"], np.where(x < 2.0, y, 0.0))
    np.testing.assert_array_equal(mpc["both"], (x < -1.0) & (y < 0.5))
    kernels = _kernel_names(c)
    # relu and bit_first fuse; y * (x < 2.0) has the bit second. rep3 (msb 2 rounds, mul 1): prod's
    # x * y and both's y < 0.5 are ready after x's comparison could start, so msb then mul finishes
    # before a fused kernel that waits for them (compiler/rounds.py). dealer2 (msb and msb_mul 1
    # round, like mul): fused finishes no later, so those two selections fuse as well.
    fused, alone = {"rep3": (2, 4), "dealer2": (4, 2)}[name]
    assert kernels.count("msb_mul") == fused and kernels.count("msb") == alone, kernels
    assert np.all(np.abs(mpc["scaled"] - np.maximum(x, 0.0) * y) <= 2 * UNIT)
    assert np.all(np.abs(mpc["prod"] - np.where(x < y, x * y, y)) <= 2 * UNIT)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_fused_relu_over_tcp_costs_what_was_declared(name):
    c = api.compile(HEAD + SRC.format(n=64, f="where(x > 0.0, x, 0.0)"), protocol=PROTOCOLS[name])
    x = np.round(np.random.default_rng(5).uniform(-9, 9, 64) / UNIT) * UNIT
    out = api.run(c, {"alice": {"x": x}}, processes=True, timeout=120)
    np.testing.assert_array_equal(out["alice"]["r"], np.maximum(x, 0.0))
    for party in ("alice", "bob", "carol"):
        assert out.stats[party]["rounds"] == c.cost.party_rounds[party]
        assert out.stats[party]["bytes_sent"] == c.cost.bytes_sent[party]


def _kernel_names(c) -> list[str]:
    """The kernels of a compiled program, as the lowering schedules them."""
    items, _ = scheduled(c.prog)
    return [it.name for it in flat_rounds(items) if getattr(it, "kind", None) == "kernel"]


# A product by a sign bit inside a sum of products truncated once: the fused kernel's result is a
# leaf of the additive region (its comparison is never computed on its own).
FUSED_IN_A_SUM = """program "fused_region.ir"
parties ["alice", "bob", "carol"]
protocol "rep3"
compute ["alice", "bob", "carol"]
protocol_args {}
params {}
frac_bits 16
next_id 23
input party="alice" name="x" shape=(4,) dtype="fix" default=None head=False
input party="bob" name="y" shape=(4,) dtype="fix" default=None head=False
output name="r" to=["alice"] shape=(4,) dtype="fix"
body {
  %1: private(alice) fix@16[4] = input() party="alice" name="x" dtype="fix"
  %2: secret fix@16[4] = share(%1) owner="alice"
  %3: private(bob) fix@16[4] = input() party="bob" name="y" dtype="fix"
  %4: secret fix@16[4] = share(%3) owner="bob"
  %5: secret fix@32[4] = mul(%2, %4)
  %7: public fix@16[scalar] = const() value=array(uint64, (), [0])
  %16: public fix@16[4] = broadcast(%7) shape=(4,)
  %17: secret fix@16[4] = sub(%16, %2)
  %8: secret bool[4] = msb(%17)
  %22: secret fix@32[4] = mul(%4, %2)
  %21: secret fix@32[4] = mul(%8, %22)
  %15: secret fix@32[4] = add(%5, %21)
  %13: secret fix@16[4] = trunc(%15) bits=16
  %14: public fix@16[4] = reveal(%13)
  output(%14) name="r" to=["alice"] dtype="fix" scale=16
}
"""


def test_a_fused_selection_inside_a_sum_of_products_truncated_once(tmp_path):
    path = tmp_path / "fused_region.ir"
    path.write_text(FUSED_IN_A_SUM)
    c = api.compile(str(path))
    assert "msb_mul" in _kernel_names(c) and "trunc_add" in _kernel_names(c)
    x, y = np.array([1.5, -2.0, 3.25, -0.5]), np.array([2.0, 3.0, -1.0, 4.0])
    ins = {"alice": {"x": x}, "bob": {"y": y}}
    got = api.run(c, ins)["alice"]["r"]
    np.testing.assert_array_equal(got, api.emulate(c, ins)["alice"]["r"])
    np.testing.assert_array_equal(got, x * y + (x > 0) * y * x)
