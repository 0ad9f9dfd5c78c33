"""The lowering keeps truncations pending where an elementwise product takes them
(compiler/pending.py), and the scheduler starts kernels later where that shortens the critical
path (compiler/schedule.py): fewer rounds waited on, the same results as float numpy and the
emulator, and nothing changes for a protocol that declares no pending kernels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veil.runtime import api
from veil_cli import shaped_growth, veil

CHAIN = """party alice, bob, carol
protocol {protocol}
param T = 3
x = secret(input(alice, "x", shape=(5,)))
w = secret(input(bob, "w", shape=(5,)))
y = x
for i in range(T):
    z = y * w
    y = {step}
output(y, to=alice)
"""
X = np.array([0.9, 1.0, 1.1, 0.95, 1.05])
W = np.array([0.9, 1.0, 0.95, 0.99, 0.92])


def _program(tmp_path: Path, step: str, protocol: str = "rep3(alice, bob, carol)") -> Path:
    path = tmp_path / "chain.mpc"
    path.write_text(CHAIN.format(protocol=protocol, step=step))
    return path


def _lowered(path: Path) -> str:
    got = veil("compile", str(path), "--emit-lowered", cwd=path.parent, timeout=120)
    assert got.code == 0, got.err
    return got.out


def _clear(step) -> np.ndarray:
    y = X.copy()
    for _ in range(3):
        y = step(y * W, y)
    return y


@pytest.mark.parametrize("step, clear, per_trip, counts", [
    # z kept for its square, the square kept for its product with w: one round waited per product
    ("(z * z) * w", lambda z, y: z * z * W, (6, 4), {"keep=True": 2, "mul_trunc_pending": 2, "finish(": 0}),
    # z also feeds a sum, so it is finished beside the product
    ("z * w + z", lambda z, y: z * W + z, (4, 3), {"keep=True": 1, "mul_trunc_pending": 1, "finish(": 1}),
    # both operands of the last product pending (the cubic's z^2 * (c z))
    ("(z * z) * (z * w)", lambda z, y: (z * z) * (z * W), (6, 4), {"both=True": 1, "finish(": 0}),
    # through linear ops: z + x and 0.5 z stay pending, and so do their truncations
    ("((z + x) * (0.5 * z)) * (0.75 * (z + x))", lambda z, y: ((z + X) * (0.5 * z)) * (0.75 * (z + X)), (7, 5),
     {"= trunc_pending(": 2, "both=True": 2, "finish(": 0}),
])
def test_products_take_pending_truncations(tmp_path: Path, step, clear, per_trip, counts):
    _check_chain(_program(tmp_path, step), clear, per_trip, counts, 2e-4)


def _check_chain(path: Path, clear, per_trip: tuple[int, int], counts: dict[str, int], atol: float) -> None:
    """The chain's lowered loop has `counts` of each kernel text, per_trip (scheduled, critical)
    rounds, and a run matches float numpy and the emulator."""
    text = _lowered(path)
    loop = text[text.index("loop %"):]
    for k, n in counts.items():
        assert loop.count(k) == n, (k, text)
    c = api.compile(path)
    loop = c.manifest["cost"]["loops"][0]
    assert (loop["rounds"], loop["critical_rounds"]) == per_trip
    inputs = {"alice": {"x": X}, "bob": {"w": W}}
    got = c.run(inputs)["alice"]["y"]
    want = _clear(clear)
    assert np.allclose(got, want, rtol=2e-3, atol=atol), (got, want)
    assert np.allclose(got, c.emulate(inputs)["alice"]["y"], rtol=2e-3, atol=atol)


DEALER2 = "dealer2(alice, bob, dealer=carol)"


@pytest.mark.parametrize("step, clear, per_trip, counts", [
    # z kept for its square; the square meets the sharing w, so it is not kept
    ("(z * z) * w", lambda z, y: z * z * W, (6, 5), {"keep=True": 1, "mul_trunc_pending": 1, "finish(": 0}),
    # two squares in a row, no Beaver round after z's; z is finished for the sum (no round)
    ("(z * z) * (z * z) - z", lambda z, y: (z * z) * (z * z) - z, (6, 4),
     {"keep=True": 2, "mul_trunc_pending": 2, "finish(": 1}),
    # through public linear ops
    ("((z + 0.25) * (0.5 * z)) * (0.75 * (z - 1.0))", lambda z, y: ((z + 0.25) * (0.5 * z)) * (0.75 * (z - 1.0)),
     (7, 5), {"both=True": 2, "mul_trunc_pending": 2}),
    # a sum with a sharing defined earlier: the truncation takes it in (addend), so the sum is pending
    ("(z + x) * (z + x)", lambda z, y: (z + X) * (z + X), (4, 3), {"addend_sign=1": 1, "mul_trunc_pending": 1}),
    ("(z - x) * (z - x)", lambda z, y: (z - X) * (z - X), (4, 3), {"addend_sign=-1": 1, "mul_trunc_pending": 1}),
    # one addend a kernel: the second sum stays a local op, and its square a Beaver one
    ("x + (z + x)", lambda z, y: X + (z + X), (2, 2), {"addend_sign=1": 1}),
    # x - z is not taken in (z would need negating), and a sum with a later kernel's output is not
    # (the merged kernel would start later): Beaver squares
    ("(x - z) * (x - z)", lambda z, y: (X - z) * (X - z), (4, 4), {"addend": 0, "mul_trunc_pending": 0}),
    ("(z + z * w) * z", lambda z, y: (z + z * W) * z, (6, 6), {"addend": 0, "mul_trunc_pending": 0}),
])
def test_dealer2_products_of_pending_values_skip_the_beaver_round(tmp_path: Path, step, clear, per_trip, counts):
    """dealer2 declares pending values that meet public values only: a square or a product of two
    of them waits on its truncation's round alone (the dealer's round before it is sent ahead)."""
    _check_chain(_program(tmp_path, step, DEALER2), clear, per_trip, counts, 3e-4)


def test_the_lr_step_keeps_the_forward_product_and_the_cubic_pending():
    """logreg_mnist: x @ w + b kept (no finish: its square and both linear terms take it), z^2
    and c z kept, their product taking both; test_latency pins the step at 6 rounds waited on."""
    text = _lowered(Path(__file__).resolve().parents[1] / "programs" / "bench" / "logreg_mnist.mpc")
    assert text.count("keep=True") == 3 and text.count("= trunc_pending(") == 2
    assert "both=True" in text and "finish(" not in text


def test_a_shaped_run_waits_on_the_pending_chain_critical_rounds(tmp_path: Path):
    """Under --rtt the run grows by about the critical rounds x RTT/2, well short of the schedule's:
    P2's dealing rounds are there before P0 and P1 need them (the margin, 8 of the 16 rounds
    saved, is 1.2 s for the few milliseconds of CPU this program takes)."""
    rtt = 0.3
    path = _program(tmp_path, "(z * z) * w").read_text().replace("param T = 3", "param T = 8")
    (tmp_path / "chain.mpc").write_text(path)
    np.savetxt(tmp_path / "x.csv", X)
    np.savetxt(tmp_path / "w.csv", W)
    grew, cost, _ = shaped_growth(tmp_path, "chain.mpc", ["alice.x=x.csv", "bob.w=w.csv"], rtt)
    critical, scheduled = cost["critical_rounds"], cost["rounds"]
    assert scheduled - critical == 16
    assert grew >= 0.75 * (critical - 1) * rtt / 2, (grew, critical)
    assert grew < (scheduled - 8) * rtt / 2, (grew, critical, scheduled)


def _expressions(depth: int):
    """Random elementwise expressions of z (a truncated product), x and w (sharings) and public
    constants: sums, differences, products, scalings and negations, as text and as a float function."""
    leaves = st.sampled_from([("z", lambda z: z), ("x", lambda z: X), ("w", lambda z: W), ("0.75", lambda z: 0.75 + 0 * z),
                              ("(0.5 * z)", lambda z: 0.5 * z), ("(-z)", lambda z: -z)])
    if depth == 0:
        return leaves

    def combine(pair):
        (a, fa), (b, fb), op = pair
        return {"+": (f"({a} + {b})", lambda z: fa(z) + fb(z)), "-": (f"({a} - {b})", lambda z: fa(z) - fb(z)),
                "*": (f"({a} * {b})", lambda z: fa(z) * fb(z))}[op]
    sub = _expressions(depth - 1)
    return st.one_of(leaves, st.tuples(sub, sub, st.sampled_from("+-*")).map(combine))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_expressions(3).filter(lambda e: any(v in e[0] for v in "zxw")),  # a vector, not a scalar
       st.sampled_from(["rep3(alice, bob, carol)", DEALER2]))
def test_random_chains_match_float_numpy_and_the_emulator(tmp_path: Path, expr, protocol):
    """Whatever the pass keeps pending, finishes or takes into a truncation (`addend`), the run
    gives what float numpy and the emulator give, and never waits on more rounds than the schedule."""
    text, clear = expr
    path = _program(tmp_path, text, protocol)
    c = api.compile(path)
    loop = c.manifest["cost"]["loops"][0]
    assert loop["critical_rounds"] <= loop["rounds"]
    inputs = {"alice": {"x": X}, "bob": {"w": W}}
    got = c.run(inputs)["alice"]["y"]
    want = _clear(lambda z, y: clear(z))
    assert np.allclose(got, want, rtol=5e-3, atol=2e-3), (text, got, want)
    assert np.allclose(got, c.emulate(inputs)["alice"]["y"], rtol=5e-3, atol=2e-3), text
