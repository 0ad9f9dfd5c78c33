"""The balance pass: a public factor moves to the product's operand that is ready first."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_passes import IR, random_inputs, same_results, text
from veil.compiler.emulate import emulate
from veil.compiler.passes import balance_constants
from veil.compiler.types import Type
from veil.runtime import api
from veil.runtime.ring import signed

DEALER = "dealer2(alice, bob, dealer=carol)"
HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"


def _cubic_ir(coef: float, coef_scale: int):
    """c * (x * x * x) as the builder writes it: three truncated products in a row."""
    b = IR()
    x = b.input("alice", "x", (6,))
    cube = b.mul(b.mul(x, x), x)
    c = b.const(coef, scale=coef_scale)
    b.output(b.mul(cube, c), "y")
    return b


def test_the_constant_moves_to_the_early_operand(rng):
    b = _cubic_ir(-0.0015930, 25)
    after = balance_constants(b.prog)
    assert text(after).splitlines()[2:] == [
        "%3: secret fix@32[6] = mul(%2, %2)",
        "%4: secret fix@16[6] = trunc(%3) bits=16",
        "%7: public fix@25[scalar] = const() value=array(uint64, (), [18446744073709498164])",
        "%10: secret fix@41[6] = mul(%2, %7)",        # x * c, while x * x is computed
        "%11: secret fix@25[6] = trunc(%10) bits=16",  # c's extra bits kept
        "%12: secret fix@41[6] = mul(%4, %11)",
        "%9: secret fix@16[6] = trunc(%12) bits=25",   # the original output value and truncation
        'output(%9) name="y" to=["alice"] dtype="fix" scale=16',
    ]
    same_results(b.prog, after, rng, ulps=2)


@settings(max_examples=25, deadline=None)
@given(coef=st.floats(1e-4, 0.9), sign=st.sampled_from([-1.0, 1.0]), seed=st.integers(0, 2**31))
def test_rewritten_polynomial_terms_stay_within_the_stated_error(coef, sign, seed):
    """The moved truncation's unit error reaches the result times |x * x * c| (docs/optimizer.md)."""
    extra = int(np.floor(-np.log2(coef)))
    b = _cubic_ir(sign * coef, 16 + extra)
    after = balance_constants(b.prog)
    assert "mul(%2, %7)" in text(after)
    inputs = random_inputs(b.prog, np.random.default_rng(seed))
    x = signed(next(iter(inputs.values()))).astype(np.float64) / 2 ** 16
    naive, moved = (signed(emulate(p, inputs)["alice"]["y"]).astype(np.int64) for p in (b.prog, after))
    assert np.all(np.abs(naive - moved) <= x * x * coef + 3)


def test_large_constants_equal_readiness_and_wide_matmul_operands_stay(rng):
    big = _cubic_ir(3.0, 16)            # |c| * 2^(scale - bits) = 3: the moved product would grow
    assert text(balance_constants(big.prog)) == text(big.prog)
    b = IR()
    x, y = b.input("alice", "x", (4,)), b.input("bob", "y", (4,))
    b.output(b.mul(b.mul(x, y), b.const(0.3, scale=17)), "v")   # both operands ready together
    assert text(balance_constants(b.prog)) == text(b.prog)
    b = IR()
    a = b.input("alice", "a", (64, 8))
    g = b.mul(b.input("bob", "g", (8, 2)), b.input("carol", "h", (8, 2)))   # ready later than a
    m = b.op("matmul", [a, g], Type("secret", "fix", (64, 2), 32))
    t = b.op("trunc", [m], m.type.with_(scale=16), bits=16)
    b.output(b.mul(t, b.const(0.01, scale=22)), "v")     # a (512 elements) > the product (128)
    assert text(balance_constants(b.prog)) == text(b.prog)


CUBIC = HEAD + """x = secret(input(alice, "x", shape=(50,)))
y = 0.5 + 0.15012 * x - 0.0015930 * (x * x * x)
output(y, to=alice)
"""


def test_a_cubic_term_is_one_truncated_product_shorter():
    fast = api.compile(CUBIC, file="cubic.mpc")
    slow = api.compile(CUBIC, file="cubic.mpc", optimize=False)
    # rep3: a truncated product taking a pending operand is one round waited on (and scheduled)
    assert (slow.cost.rounds - fast.cost.rounds, slow.cost.critical_rounds - fast.cost.critical_rounds) == (1, 1)
    assert fast.cost.truncations == slow.cost.truncations


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_the_balanced_cubic_under_both_protocols(protocol):
    x = np.random.default_rng(7).uniform(-8, 8, 50)
    c = api.compile(CUBIC, file="cubic.mpc", protocol=protocol)
    got = api.run(c, {"alice": {"x": x}})["alice"]["y"]
    want = 0.5 + 0.15012 * x - 0.0015930 * x ** 3
    assert np.max(np.abs(got - want)) < 8 * 2.0 ** -16
    emulated = api.emulate(c, {"alice": {"x": x}})["alice"]["y"]
    assert np.max(np.abs(got - emulated)) <= 4 * 2.0 ** -16


SELECT = HEAD + """x = secret(input(alice, "x", shape=(20,)))
y = secret(input(bob, "y", shape=(20,)))
z = where(x > 0.0, y * y, 0.0)
output(z, to=alice)
"""


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_a_selection_of_a_late_value_is_not_fused_with_its_comparison(protocol):
    """msb_mul waits for all its operands: with y * y ready 2 rounds after x (the truncation),
    rep3's comparison alone (2 rounds) then the product is 1 round earlier than the fused kernel.
    dealer2's comparison, its product and the fused kernel take 1 round each, so both orders end
    together and the fused kernel is kept: 2 rounds more than selecting y."""
    c = api.compile(SELECT, file="select.mpc", protocol=protocol)
    early = api.compile(SELECT.replace("y * y", "y"), file="select.mpc", protocol=protocol)
    assert c.cost.rounds - early.cost.rounds == {None: 1, DEALER: 2}[protocol]
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, 20), rng.uniform(-2, 2, 20)
    got = api.run(c, {"alice": {"x": x}, "bob": {"y": y}})["alice"]["z"]
    assert np.max(np.abs(got - np.where(x > 0, y * y, 0.0))) <= 2 * 2.0 ** -16
