"""MPC runs of whole programs, all parties in one event loop: results equal the emulator's within
the documented truncation error, and numpy's within fixed-point precision."""
from __future__ import annotations

import numpy as np
import pytest

from veil.runtime import api, bytecode

HEAD = "party alice, bob, carol, dave\nprotocol rep3(alice, bob, carol)\n"
ULP = 2.0 ** -16


def both(src: str, inputs: dict, params=None):
    c = api.compile(HEAD + src, params)
    return c, api.emulate(c, inputs), api.run(c, inputs)


def close_to_emulator(emu: dict, mpc: dict, ulps: float = 8):
    for party, outs in emu.items():
        for name, v in outs.items():
            # each truncation may round up by one unit; products amplify earlier ones by the operand's size
            bound = ulps * ULP * (1 + np.abs(v))
            assert np.all(np.abs(mpc[party][name] - v) <= bound), f"{party}.{name}"


def test_arithmetic_of_every_kind(rng):
    A, B, D = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=(6, 4))
    src = ('a = input(alice, "a", shape=(6, 4))\nb = input(bob, "b", shape=(4, 3))\nd = input(dave, "d", shape=(6, 4))\n'
           'c = a @ b\ne = a * d - 0.5 * a + d\nf = sum(e * e, axis=0)\ng = mean(a.T @ d)\nh = -a[2:5, 1:3] ** 2\n'
           's = secret(a)\nk = s * s + s * s\n'
           'output(c, to=alice)\noutput(e, to=[bob, dave])\noutput(f, to=carol)\noutput(g)\noutput(h, to=dave)\n'
           'output(k, to=alice)\n')
    inputs = {"alice": {"a": A}, "bob": {"b": B}, "dave": {"d": D}}
    c, emu, mpc = both(src, inputs)
    close_to_emulator(emu, mpc)
    tol = 1e-3
    np.testing.assert_allclose(mpc["alice"]["c"], A @ B, atol=tol)
    np.testing.assert_allclose(mpc["dave"]["e"], A * D - 0.5 * A + D, atol=tol)
    np.testing.assert_allclose(mpc["carol"]["f"], ((A * D - 0.5 * A + D) ** 2).sum(axis=0), atol=5e-3)
    np.testing.assert_allclose(mpc["bob"]["g"], (A.T @ D).mean(), atol=tol)
    np.testing.assert_allclose(mpc["dave"]["h"], -A[2:5, 1:3] ** 2, atol=tol)
    np.testing.assert_allclose(mpc["alice"]["k"], 2 * A * A, atol=tol)
    assert set(mpc["dave"]) == {"e", "g", "h"} and set(mpc["carol"]) == {"f", "g"}


def test_training_loop_with_dynamic_slices(rng):
    X, y = rng.normal(size=(64, 3)), (rng.random((64, 1)) > 0.5).astype(float)
    src = ('from ml import sigmoid_poly3_wide as sigmoid\nparam B = 16\nx = input(alice, "x", shape=(64, 3))\n'
           'y = input(bob, "y", shape=(64, 1))\nw = zeros((3, 1))\nb = 0.0\n'
           'for e in range(2):\n    for i in range(64 // B):\n        xi = x[i * B:(i + 1) * B]\n'
           '        g = sigmoid(xi @ w + b) - y[i * B:(i + 1) * B]\n        w -= 0.1 * (xi.T @ g)\n'
           '        b -= 0.1 * sum(g)\noutput(w, to=alice)\noutput(b, to=alice)\n')
    c, emu, mpc = both(src, {"alice": {"x": X}, "bob": {"y": y}})
    close_to_emulator(emu, mpc, ulps=64)
    w, b = np.zeros((3, 1)), 0.0
    for _ in range(2):
        for i in range(4):
            xi = X[i * 16:(i + 1) * 16]
            z = xi @ w + b
            g = 0.5 + 0.084249 * z - 0.00024719 * z ** 3 - y[i * 16:(i + 1) * 16]
            w -= 0.1 * xi.T @ g
            b -= 0.1 * g.sum()
    np.testing.assert_allclose(mpc["alice"]["w"], w, atol=2e-3)


def test_reveal_and_private_compare(rng):
    A = rng.normal(size=(5,))
    src = ('a = input(alice, "a", shape=(5,))\ns = secret(a) * 2\np = reveal(s)\nq = reveal(s, to=bob)\n'
           'pos = mean(q > 0)\noutput(p, to=carol)\noutput(pos, to=bob)\n')
    c, emu, mpc = both(src, {"alice": {"a": A}})
    np.testing.assert_allclose(mpc["carol"]["p"], 2 * A, atol=1e-4)
    assert mpc["bob"]["pos"] == pytest.approx((A > 0).mean(), abs=1e-3)


def test_measured_rounds_and_bytes_equal_the_prediction(rng):
    c = api.compile("programs/fraud_detection.mpc", {"N": "256", "EPOCHS": "1"})
    out = api.run(c)
    for party, stats in out.stats.items():
        assert stats["rounds"] == c.cost.party_rounds[party]
        assert stats["bytes_sent"] == c.cost.bytes_sent[party]
    assert max(c.cost.party_rounds.values()) == c.cost.rounds


def test_sums_of_products_with_public_terms_in_additive_form(rng):
    """Products kept in additive shares combine with public and replicated terms on either side."""
    A, B = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    src = ('a = secret(input(alice, "a", shape=(6, 3)))\nb = secret(input(bob, "b", shape=(6, 3)))\n'
           'c = 0.75 - sum(a * b, axis=0)\nd = sum(a * a, axis=1) - 1.25 + sum(b, axis=1)\n'
           'e = sum(b * b, axis=0) + 0.5\nf = 2.0 + sum(a[0:2] * b[2:4], axis=0) - a[5]\n'
           'output(c, to=alice)\noutput(d, to=alice)\noutput(e, to=alice)\noutput(f, to=alice)\n')
    c, emu, mpc = both(src, {"alice": {"a": A}, "bob": {"b": B}})
    assert sum(isinstance(ins, bytecode.KernelInstr) and ins.name == "trunc_add" for ins in _code(c, "bob")) == 4
    close_to_emulator(emu, mpc)
    out = mpc["alice"]
    np.testing.assert_allclose(out["c"], 0.75 - (A * B).sum(axis=0), atol=1e-3)
    np.testing.assert_allclose(out["d"], (A * A).sum(axis=1) - 1.25 + B.sum(axis=1), atol=1e-3)
    np.testing.assert_allclose(out["e"], (B * B).sum(axis=0) + 0.5, atol=1e-3)
    np.testing.assert_allclose(out["f"], 2.0 + (A[0:2] * B[2:4]).sum(axis=0) - A[5], atol=1e-3)


def _code(c, party):
    def flat(code):
        for ins in code:
            yield ins
            if isinstance(ins, bytecode.Loop):
                yield from flat(ins.body)
    return list(flat(bytecode.decode(c.files[party])["code"]))


def test_an_input_party_sharing_inside_a_loop_does_not_carry_secret_values():
    """dave shares a row per iteration; the secret accumulator is carried by the compute parties only."""
    src = ('a = secret(input(alice, "a", shape=(4,)))\nd = input(dave, "d", shape=(3, 4))\nacc = a\n'
           'for i in range(3):\n    acc = acc + d[i] * 2\noutput(acc, to=dave)\n')
    A, D = np.arange(4.0), np.arange(12.0).reshape(3, 4)
    c, emu, mpc = both(src, {"alice": {"a": A}, "dave": {"d": D}})
    np.testing.assert_allclose(mpc["dave"]["acc"], A + 2 * D.sum(axis=0), atol=1e-4)
