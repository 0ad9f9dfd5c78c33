"""Rounds on the critical path (compiler/latency.py): rep3's dealer runs ahead, so a comparison or
a truncation of a sharing right after a truncation waits on one round; real shaped runs wait
through that many one-way delays and not the schedule's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.compiler.latency import critical_rounds
from veil.compiler.schedule import Round
from veil.runtime import api
from veil.runtime.protocols.base import Cost, links
from veil_cli import shaped_growth

ROOT = Path(__file__).resolve().parents[1]

CHAIN = """party alice, bob, carol
protocol {protocol}
param T = 8
x = input(alice, "x", shape=(4,))
w = secret(input(bob, "w", shape=(4,)))
y = secret(x)
for i in range(T):
    z = y * w
    y = where(z > 0.0, z, 0.0)
output(y, to=alice)
"""


def _loop(cost: dict, line: int) -> dict:
    return next(lp for lp in cost["loops"] if lp["line"] == line)


def _compile(tmp_path: Path, protocol: str, **params) -> dict:
    (tmp_path / "chain.mpc").write_text(CHAIN.format(protocol=protocol))
    return api.compile(tmp_path / "chain.mpc", params).manifest["cost"]


def test_a_comparison_after_a_truncation_waits_one_round(tmp_path: Path):
    """mul_trunc (2 rounds) then the ramp's DCF comparison (2 scheduled, 1 waited on): 3 a trip."""
    cost = _compile(tmp_path, "rep3(alice, bob, carol)")
    trip = _loop(cost, 7)
    assert (trip["rounds"], trip["critical_rounds"]) == (4, 3)
    assert cost["critical_rounds"] == cost["rounds"] - 8  # one round less in each of the 8 trips


def test_dealer2_critical_path_is_never_longer_than_its_schedule(tmp_path: Path):
    cost = _compile(tmp_path, "dealer2(alice, bob, dealer=carol)")
    assert 0 < cost["critical_rounds"] <= cost["rounds"]


@pytest.mark.parametrize("program, protocol, scheduled, critical", [
    ("fraud_detection.mpc", None, 8, 6),      # matmul_trunc 2, sigmoid's DCF 1, its trunc 1, matmul_trunc 2
    ("bench/logreg_mnist.mpc", None, 8, 6),   # four products in a row, each waiting on one round but the last
    ("fraud_detection.mpc", "dealer2(alice, bob, dealer=carol)", 6, 6),
    # matmul_trunc 2 (the bias taken in), z^2 and z^2 (c z) 1 each (dealing rounds ahead), matmul_trunc 2
    ("bench/logreg_mnist.mpc", "dealer2(alice, bob, dealer=carol)", 8, 6),
])
def test_canonical_steps(program, protocol, scheduled, critical):
    cost = api.compile(ROOT / "programs" / program, {"EPOCHS": 1} if "fraud" in program else {},
                       protocol=protocol).manifest["cost"]
    step = max(cost["loops"], key=lambda lp: lp["trips"])  # the innermost loop: one step a trip
    assert (step["rounds"], step["critical_rounds"]) == (scheduled, critical)


class _K:
    """A scheduled kernel as latency.py reads it: its start round, participants and cost."""

    def __init__(self, start: int, execs: set[str], cost: Cost):
        self.start, self.execs, self.cost = start, frozenset(execs), cost


def test_clocks_follow_the_links():
    """A dealer that only sends stays at 0; the pair it feeds waits one round for it, then one
    for each other; undeclared links are all-to-all."""
    dealt = Cost(2, {}, links=links((("c", "a"), ("c", "b")), (("a", "b"), ("b", "a"))))
    k = _K(0, {"a", "b", "c"}, dealt)
    assert critical_rounds([Round(frozenset("abc"), [], [k], 0), Round(frozenset("abc"), [], [k], 1)],
                           ["a", "b", "c"])[0] == 2
    plain = _K(0, {"a", "b", "c"}, Cost(1, {}))
    clock = critical_rounds([Round(frozenset("abc"), [], [plain], 0)] * 3, ["a", "b", "c"])[0]
    assert clock == 3
    with pytest.raises(ValueError, match="declares links for 1"):
        Cost(2, {}, links=links((("c", "a"),)))
    only_c = Cost(1, {}, links=links((("c", "a"),)))
    assert critical_rounds([Round(frozenset("abc"), [], [_K(0, {"a", "c"}, only_c)], 0)] * 5, list("abc"))[0] == 1


def test_shaped_runs_wait_on_the_critical_rounds_not_the_schedule(tmp_path: Path):
    """Under --rtt the slowest party's run grows by about the critical rounds x RTT/2: at least
    (critical - 1) x RTT/2, and short of the schedule's count by most of the 8 rounds saved (the
    margin, 3 of them, is 0.45 s for the few milliseconds of CPU this program takes)."""
    rtt = 0.3
    (tmp_path / "chain.mpc").write_text(CHAIN.format(protocol="rep3(alice, bob, carol)"))
    (tmp_path / "x.csv").write_text("1.0\n-2.0\n3.0\n0.5\n")
    (tmp_path / "w.csv").write_text("1.5\n1.0\n-1.0\n2.0\n")
    grew, cost, out = shaped_growth(tmp_path, "chain.mpc", ["alice.x=x.csv", "bob.w=w.csv"], rtt)
    critical, scheduled = cost["critical_rounds"], cost["rounds"]
    assert scheduled - critical == 8
    assert grew >= 0.75 * (critical - 1) * rtt / 2, (grew, critical)
    assert grew < (scheduled - 5) * rtt / 2, (grew, critical, scheduled)
    assert "alice.y [4]" in out
