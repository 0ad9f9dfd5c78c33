"""stdlib/optim.mpc: each optimizer's updates over several steps against float numpy (Keras's
formulas, on the same fixed-point gradients), in emulation and in MPC under rep3 and dealer2; and
a least-squares problem whose loss each optimizer drives down."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from veil.runtime import api

DEALER = "dealer2(alice, bob, dealer=carol)"
UNIT = 2.0 ** -16
STEPS = 6
N = 40
LR = 0.01

UPDATES = f'''import optim
party alice, bob, carol
protocol rep3(alice, bob, carol)
w0 = input(alice, "w", shape=({N},))
gs = input(bob, "g", shape=({STEPS}, {N}))
ws = secret(w0)
wm = secret(w0)
vm = zeros(({N},))
wa = secret(w0)
ma = zeros(({N},))
va = zeros(({N},))
wg = secret(w0)
mg = zeros(({N},))
vg = zeros(({N},))
vh = zeros(({N},))
for e in range(2):
    for i in range({STEPS // 2}):
        g = gs[e * {STEPS // 2} + i]
        t = e * {STEPS // 2} + i + 1
        ws = optim.sgd(ws, g, {LR})
        wm, vm = optim.momentum(wm, g, vm, {LR}, beta=0.8)
        wa, ma, va = optim.adam(wa, g, ma, va, t, {LR})
        wg, mg, vg, vh = optim.amsgrad(wg, g, mg, vg, vh, t, {LR}, beta1=0.8, beta2=0.99)
output(ws, to=alice)
output(wm, to=alice)
output(wa, to=alice)
output(wg, to=alice)
'''


def _fixed(a):
    return np.round(np.asarray(a) / UNIT) * UNIT


def _numpy(w, grads):
    """Keras's sgd, momentum (v = beta v + g; w -= lr v), adam and amsgrad."""
    out = {}
    x = w.copy()
    for g in grads:
        x = x - LR * g
    out["ws"] = x
    x, v = w.copy(), np.zeros_like(w)
    for g in grads:
        v = 0.8 * v + g
        x = x - LR * v
    out["wm"] = x
    for name, b1, b2, ams in (("wa", 0.9, 0.999, False), ("wg", 0.8, 0.99, True)):
        x, m, v, vh = w.copy(), np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
        for t, g in enumerate(grads, 1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vh = np.maximum(vh, v)
            lr = LR * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            x = x - lr * m / (np.sqrt(vh if ams else v) + 1e-8)
        out[name] = x
    return out


@lru_cache(maxsize=None)
def _compiled(src, protocol):
    return api.compile(src, protocol=protocol, file="optim_test.mpc")


@pytest.mark.parametrize("protocol", [None, DEALER])
@pytest.mark.parametrize("mpc", [False, True], ids=["emulate", "mpc"])
def test_each_optimizer_follows_numpy_for_several_steps(protocol, mpc):
    rng = np.random.default_rng(21)
    w = _fixed(rng.normal(size=N))
    # gradients from 1e-3 to 0.2 (the documented range at scale 1024), signs mixed, some steady
    mag = np.logspace(-3, np.log10(0.05), N)
    grads = _fixed(rng.normal(size=(STEPS, N)) * mag + mag * (np.arange(N) % 3 == 0))
    inputs = {"alice": {"w": w}, "bob": {"g": grads}}
    c = _compiled(UPDATES, protocol)
    got = (api.run(c, inputs) if mpc else api.emulate(c, inputs))["alice"]
    want = _numpy(w, grads)
    for name in ("ws", "wm"):
        np.testing.assert_allclose(got[name], want[name], atol=4 * STEPS * UNIT, err_msg=name)
    for name in ("wa", "wg"):
        moved = np.abs(want[name] - w)
        err = np.abs(got[name] - want[name])
        # Adam moves each weight by about lr a step: within 1 % of the move (and a few units)
        assert np.all(err <= 0.01 * moved + 8 * UNIT), (name, np.max(err / (moved + UNIT)))


LSQ = '''import optim
party alice, bob, carol
protocol rep3(alice, bob, carol)
param OPT = 2
param STEPS = 30
x = input(alice, "x", shape=(32, 4))
y = input(bob, "y", shape=(32, 1))
w = zeros((4, 1))
m = zeros((4, 1))
v = zeros((4, 1))
vh = zeros((4, 1))
for i in range(STEPS):
    r = x @ w - y
    g = (x.T @ r) * (1.0 / 32)
    if OPT == 0:
        w = optim.sgd(w, g, 0.1)
    elif OPT == 1:
        w, m = optim.momentum(w, g, m, 0.05)
    elif OPT == 2:
        w, m, v = optim.adam(w, g, m, v, i + 1, 0.1, scale=16.0)
    else:
        w, m, v, vh = optim.amsgrad(w, g, m, v, vh, i + 1, 0.1, scale=16.0)
output(w, to=alice)
'''


OPTS = ["sgd", "momentum", "adam", "amsgrad"]


@pytest.mark.parametrize("opt", OPTS)
def test_a_least_squares_loss_falls_with_each_optimizer(opt):
    rng = np.random.default_rng(4)
    x = _fixed(rng.normal(size=(32, 4)))
    truth = np.array([[0.5], [-1.0], [0.25], [1.5]])
    y = _fixed(x @ truth + 0.01 * rng.normal(size=(32, 1)))
    inputs = {"alice": {"x": x}, "bob": {"y": y}}
    src = LSQ.replace("param OPT = 2", f"param OPT = {OPTS.index(opt)}")
    emu = api.emulate(api.front_end(src), inputs)["alice"]
    mpc = api.run(_compiled(src, DEALER if opt in ("adam", "momentum") else None), inputs)["alice"]
    for got in (emu, mpc):
        w = np.asarray(got["w"])
        final = float(np.mean((x @ w - y) ** 2))
        start = float(np.mean(y ** 2))
        assert final < 0.05 * start, (opt, start, final)


def test_update_runs_the_optimizer_its_string_names():
    """optim.update(OPT, ...) equals the optimizer it names, step for step; an unknown name is a
    compile error."""
    from veil.runtime.diagnostics import VeilError
    src = '''import optim
party alice, bob, carol
protocol rep3(alice, bob, carol)
param OPT = "sgd"
w0 = input(alice, "w", shape=(8,))
gs = input(bob, "g", shape=(4, 8))
w = secret(w0)
m, v, h = optim.state(w)
u = secret(w0)
um = zeros((8,))
uv = zeros((8,))
uh = zeros((8,))
for i in range(4):
    w, m, v, h = optim.update(OPT, w, gs[i], m, v, h, i + 1, 0.05)
    if OPT == "sgd":
        u = optim.sgd(u, gs[i], 0.05)
    elif OPT == "momentum":
        u, um = optim.momentum(u, gs[i], um, 0.05)
    elif OPT == "adam":
        u, um, uv = optim.adam(u, gs[i], um, uv, i + 1, 0.05)
    else:
        u, um, uv, uh = optim.amsgrad(u, gs[i], um, uv, uh, i + 1, 0.05)
output(w, to=alice)
output(u, to=alice)
'''
    rng = np.random.default_rng(3)
    inputs = {"alice": {"w": rng.normal(size=8)}, "bob": {"g": rng.normal(size=(4, 8)) * 0.05}}
    for opt in ("sgd", "momentum", "adam", "amsgrad"):
        out = api.emulate(api.front_end(src, {"OPT": opt}), inputs)["alice"]
        np.testing.assert_array_equal(out["w"], out["u"], err_msg=opt)
        assert np.abs(out["w"] - inputs["alice"]["w"]).max() > 0.01, opt   # it moved
    with pytest.raises(VeilError, match="sgd, momentum, adam, amsgrad"):
        api.front_end(src, {"OPT": "rmsprop"})


def test_glorot_uniform_seeded_is_numpys_and_secret_is_in_range():
    from veil.runtime.randomness import public_uniform
    src = '''import nn
party alice, bob, carol
protocol rep3(alice, bob, carol)
p = nn.glorot_uniform((30, 20), 30, 20, 7)
s = nn.glorot_uniform((30, 20), 30, 20)
output(p, to=alice)
output(s, to=alice)
'''
    a = (6.0 / 50) ** 0.5
    out = api.emulate(api.front_end(src), {})["alice"]
    np.testing.assert_allclose(out["p"], public_uniform(7, (30, 20), -a, a), atol=2 * UNIT)
    assert np.abs(out["s"]).max() <= a and out["s"].std() > 0.8 * a / 3 ** 0.5
    assert np.abs(out["s"] - out["p"]).max() > 0.01    # not the seeded values
