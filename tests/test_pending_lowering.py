"""The lowering keeps truncations pending where an elementwise product takes them
(compiler/pending.py), and the scheduler starts kernels later where that shortens the critical
path (compiler/schedule.py): fewer rounds waited on, the same results as float numpy and the
emulator, and nothing changes for a protocol that declares no pending kernels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veil.runtime import api
from veil_cli import veil

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


@pytest.mark.parametrize("step, clear, per_trip, kernels", [
    # z kept for its square, the square kept for its product with w: one round waited per product
    ("(z * z) * w", lambda z, y: z * z * W, (6, 4), ["mul_trunc(%6, %4) bits=16 keep=True",
                                                      "mul_trunc_pending", "keep=True both=False"]),
    # z also feeds a sum, so it is finished beside the product
    ("z * w + z", lambda z, y: z * W + z, (4, 3), ["finish(", "mul_trunc_pending"]),
    # both operands of the last product pending (the cubic's z^2 * (c z))
    ("(z * z) * (z * w)", lambda z, y: (z * z) * (z * W), (6, 4), ["both=True"]),
])
def test_products_take_pending_truncations(tmp_path: Path, step, clear, per_trip, kernels):
    path = _program(tmp_path, step)
    text = _lowered(path)
    for k in kernels:
        assert k in text, text
    c = api.compile(path)
    loop = c.manifest["cost"]["loops"][0]
    assert (loop["rounds"], loop["critical_rounds"]) == per_trip
    inputs = {"alice": {"x": X}, "bob": {"w": W}}
    got = c.run(inputs)["alice"]["y"]
    want = _clear(clear)
    assert np.allclose(got, want, rtol=2e-3, atol=2e-4), (got, want)
    assert np.allclose(got, c.emulate(inputs)["alice"]["y"], rtol=2e-3, atol=2e-4)


def test_dealer2_declares_no_pending_kernels(tmp_path: Path):
    text = _lowered(_program(tmp_path, "(z * z) * w", "dealer2(alice, bob, dealer=carol)"))
    assert "keep=" not in text and "pending" not in text and "finish(" not in text


def test_the_cubic_waits_one_round_less_in_the_lr_step():
    """logreg_mnist's cubic: z^2 and c z kept, their product taking both; trunc(a z) started a
    round later so its exchange shares a round with the product's opening."""
    text = _lowered(Path(__file__).resolve().parents[1] / "programs" / "bench" / "logreg_mnist.mpc")
    assert "both=True" in text
    assert text.count("keep=True") == 2
