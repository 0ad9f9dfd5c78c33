"""Masks opened once for loop-invariant operands (compiler/masks.py, runtime/masked.py, dealer2's
`mask`): the opened x - a is uniform whatever x is, products taking a masked operand are exact
and open only the other operand (the driver holds each kernel to its declared words, draws and
links), and a program whose loop reads the same secret (its slices, its transpose) opens it once,
computes what the emulator does and sends what the compiler predicts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_driver import COMPUTE, PARTIES, assert_balanced_bits, run_kernel, run_kernel_traced
from test_dealer2 import P, opened, rand_ring, shares_of
from veil.compiler.lower import Lowering, scheduled
from veil.compiler.schedule import Round, flat_rounds
from veil.runtime import api
from veil.runtime.masked import Masked
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.ring import signed, trunc as clear_trunc

U64 = np.uint64
P0, P1, DEALER = COMPUTE
DEALER2 = "dealer2(alice, bob, dealer=carol)"


def masked(x: np.ndarray) -> dict:
    """Each party's Masked x from the mask kernel (cost-checked by the driver)."""
    return run_kernel(P, "mask", shares_of(x), {}, PARTIES, COMPUTE)


def test_the_mask_opens_x_minus_a_and_the_dealer_keeps_a():
    x = rand_ring((300,))
    m = masked(x)
    assert np.array_equal(m[P0].e, m[P1].e) and m[DEALER].e is None
    assert np.array_equal(m[P0].a + m[P1].a, m[DEALER].a)
    assert np.array_equal(m[P0].e + m[DEALER].a, x)


@pytest.mark.parametrize("value", [0, 1, 2**63])
def test_what_the_mask_opens_is_uniform_whatever_x_is(value):
    x = np.full(4000, value, dtype=U64)
    first, second = masked(x)[P0].e, masked(x)[P0].e
    assert_balanced_bits(first, what="x - a")
    assert not np.array_equal(first, second), "two masks of the same value must differ"


def _with(m: dict, y: np.ndarray, masked_first: bool) -> dict:
    """Kernel inputs: the masked value and shares of y, in either order."""
    ys = shares_of(y)
    return {p: (m[p], ys[p][0]) if masked_first else (ys[p][0], m[p]) for p in COMPUTE}


@pytest.mark.parametrize("first", [True, False])
def test_products_with_a_masked_operand_are_exact_and_open_only_the_other(first):
    x, y = rand_ring((6, 5)), rand_ring((6, 5))
    m = masked(x)
    out, trace = run_kernel_traced(P, "mul", _with(m, y, first), {"masked": (0,) if first else (1,)},
                                   PARTIES, COMPUTE)
    assert np.array_equal(opened(out), x * y)
    assert trace.sent[P0] == y.size  # only y - b travels (the driver checks the declared cost too)


def test_a_masked_value_serves_many_products_each_with_a_fresh_triple():
    """The same mask under two matrix products of its transpose and a slice: exact both times, and
    what each product opens is uniform although x and the mask are the same."""
    x = rand_ring((8, 4))
    m = masked(x)
    xt = {p: m[p].map(lambda a: np.transpose(a)) for p in COMPUTE}
    for y in (rand_ring((8, 3)), np.zeros((8, 3), dtype=U64)):
        out, trace = run_kernel_traced(P, "matmul", _with(xt, y, True), {"masked": (0,)}, PARTIES, COMPUTE)
        assert np.array_equal(opened(out), (x.T @ y).astype(U64))
    rows = {p: m[p].map(lambda a: a[2:5]) for p in COMPUTE}
    big = np.zeros((4, 2000), dtype=U64)
    out, trace = run_kernel_traced(P, "matmul", _with(rows, big, True), {"masked": (0,)}, PARTIES, COMPUTE)
    assert not np.any(opened(out))
    assert_balanced_bits(trace.received[P1][0][P0][0], what="w - b opened against a reused mask")


def test_both_operands_masked_open_nothing_between_the_parties():
    x, y = rand_ring((5, 4)), rand_ring((4, 3))
    mx, my = masked(x), masked(y)
    out, trace = run_kernel_traced(P, "matmul", {p: (mx[p], my[p]) for p in COMPUTE}, {"masked": (0, 1)},
                                   PARTIES, COMPUTE)
    assert np.array_equal(opened(out), (x @ y).astype(U64))
    assert trace.sent[P0] == trace.sent[P1] == 0


@pytest.mark.parametrize("kernel", ["mul_trunc", "matmul_trunc"])
def test_truncating_products_take_a_masked_operand(kernel):
    rng = np.random.default_rng(5)
    x = rng.integers(-2**20, 2**20, (7, 7)).astype(np.int64).view(U64)
    y = rng.integers(-2**20, 2**20, (7, 7)).astype(np.int64).view(U64)
    out = run_kernel(P, kernel, _with(masked(x), y, True), {"bits": 16, "masked": (0,)}, PARTIES, COMPUTE)
    exact = (x * y if kernel == "mul_trunc" else x @ y).astype(U64)
    assert set(np.unique(signed(opened(out)) - signed(clear_trunc(exact, 16)))) <= {0, 1}


# ---- the compiler's rewrite --------------------------------------------------------------------

STEPS = """party alice, bob, carol
protocol {protocol}
param T = 4
x = secret(input(alice, "x", shape=(8, 5)))
w = secret(input(bob, "w", shape=(5, 3)))
for i in range(T):
    xi = x[i * 2:(i + 1) * 2]
    g = xi @ w
    w = w - 0.25 * (xi.T @ g)
output(w, to=alice)
"""


def _items(src: str) -> list:
    c = api.compile(src)
    return list(flat_rounds(scheduled(c.prog, Lowering(c.prog))[0])), c


def _kernels(items: list, inside: bool | None = None) -> list:
    out = []
    for it in items:
        if isinstance(it, Round):
            continue
        if it.kind == "kernel" and inside is not True:
            out.append(it)
        if it.kind == "loop" and inside is not False:
            out.extend(_kernels(list(flat_rounds(it.loop.body)), None))
    return out


def test_a_loop_invariant_operand_is_masked_once_before_the_loop():
    items, c = _items(STEPS.format(protocol=DEALER2))
    outside = [k.name for k in _kernels(items, inside=False)]
    assert outside.count("mask") == 1
    body = _kernels(items, inside=True)
    assert [k.attrs.get("masked") for k in body if k.name == "matmul_trunc"] == [(0,), (0,)]
    assert "mask" not in [k.name for k in body]


def test_masking_saves_the_openings_of_x_every_trip(monkeypatch):
    """Per trip the forward and the backward product each opened a 2x5 slice of x at alice and at
    bob; with the mask they open only w and g."""
    def per_trip() -> dict:
        cost = {t: api.compile(STEPS.format(protocol=DEALER2), {"T": t}).cost for t in (3, 4)}
        return {p: cost[4].bytes_sent[p] - cost[3].bytes_sent[p] for p in ("alice", "bob", "carol")}
    masked_trip = per_trip()
    monkeypatch.setattr(Dealer2, "mask_kernel", None)
    plain_trip = per_trip()
    assert {p: plain_trip[p] - masked_trip[p] for p in masked_trip} == {"alice": 2 * 10 * 8, "bob": 2 * 10 * 8,
                                                                      "carol": 0}


@pytest.mark.parametrize("trips, masks", [(1, 0), (2, 1)])
def test_a_value_opened_once_anyway_gets_no_mask(trips, masks):
    """One product in one trip: a mask would only add its round; two trips open x twice."""
    src = STEPS.format(protocol=DEALER2).replace("param T = 4", f"param T = {trips}")
    src = src[:src.index("    xi =")] + "    w = w + 0.25 * (x[0:5, 0:5] @ w)\noutput(w, to=alice)\n"
    items, _c = _items(src)
    assert [k.name for k in _kernels(items)].count("mask") == masks


def test_protocols_without_a_mask_kernel_are_left_alone():
    items, _c = _items(STEPS.format(protocol="rep3(alice, bob, carol)"))
    assert "mask" not in [k.name for k in _kernels(items)]


def test_a_masked_program_matches_the_emulator_and_measures_its_prediction():
    rng = np.random.default_rng(9)
    c = api.compile(STEPS.format(protocol=DEALER2))
    inputs = {"alice": {"x": rng.uniform(-1, 1, (8, 5))}, "bob": {"w": rng.uniform(-1, 1, (5, 3))}}
    out, emu = api.run(c, inputs), api.emulate(c, inputs)
    np.testing.assert_allclose(out["alice"]["w"], emu["alice"]["w"], atol=1e-3)
    for party, stats in out.stats.items():
        assert stats["rounds"] == c.cost.party_rounds[party]
        assert stats["bytes_sent"] == c.cost.bytes_sent[party]


LOOPS = """party alice, bob, carol
protocol dealer2(alice, bob, dealer=carol)
param T = {trips}
x = secret(input(alice, "x", shape=(6, 4)))
v = secret(input(bob, "v", shape=(4, 4)))
acc = zeros({acc})
for i in range(T):
    {line}
output(acc, to=alice)
"""

LINES = {
    "matmul of a slice by the loop variable": ("(3, 4)", "acc = acc + x[i:i + 3] @ v"),
    "matmul of a transpose": ("(4, 4)", "acc = acc + x.T @ x[0:6, 0:4] * 0.5"),
    "the invariant on the right": ("(6, 6)", "acc = acc * 0.5 + (acc[0:6, 0:4] + 0.25) @ x.T"),
    "elementwise with a carried value": ("(6, 4)", "acc = acc * 0.5 + x * (acc + 0.5)"),
    "reshaped, both operands invariant": ("(2, 3)", "acc = acc + x[0:4].reshape((2, 8)) @ x.reshape((8, 3))"),
}


@settings(max_examples=12, deadline=None)
@given(case=st.sampled_from(sorted(LINES)), trips=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_random_masked_loops_match_the_emulator(case, trips, seed):
    acc, line = LINES[case]
    src = LOOPS.format(trips=trips, acc=acc, line=line)
    rng = np.random.default_rng(seed)
    inputs = {"alice": {"x": rng.uniform(-1, 1, (6, 4))}, "bob": {"v": rng.uniform(-1, 1, (4, 4))}}
    c = api.compile(src)
    out, emu = api.run(c, inputs), api.emulate(c, inputs)
    np.testing.assert_allclose(out["alice"]["acc"], emu["alice"]["acc"], atol=2e-3)
