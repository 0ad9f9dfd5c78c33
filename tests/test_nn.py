"""stdlib/nn.mpc: every layer's forward pass and gradient against float numpy (hand-written
gradients in tests/nn_reference.py, themselves checked by finite differences), on random inputs,
in emulation and in MPC under rep3 and dealer2; and the im2col/col2im gathers' adjointness."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import nn_reference as ref
from veil.runtime import api
from veil.runtime.ops import col2im_any, im2col_any

DEALER = "dealer2(alice, bob, dealer=carol)"
PROTOCOLS = [None, DEALER]
HEAD = "import nn\nparty alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
UNIT = 2.0 ** -16


@lru_cache(maxsize=None)
def _compiled(src: str, protocol: str | None):
    return api.compile(src, protocol=protocol, file="nn_test.mpc")


def _run(src: str, inputs: dict, protocol: str | None, mpc: bool) -> dict:
    c = _compiled(src, protocol)
    out = api.run(c, inputs) if mpc else api.emulate(c, inputs)
    return out["alice"]


def _fixed(a: np.ndarray) -> np.ndarray:
    return np.round(a / UNIT) * UNIT


def _close(got: np.ndarray, want: np.ndarray, tol: float, name: str) -> None:
    assert got.shape == want.shape, name
    err = np.max(np.abs(got - want)) if want.size else 0.0
    assert err <= tol * max(1.0, np.max(np.abs(want))), f"{name}: max error {err}"


# ---- the gathers --------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w,k,stride,pads", [(6, 7, 3, 1, (0, 0, 0, 0)), (7, 7, 3, 2, (1, 1, 0, 1)),
                                               (5, 8, 2, 2, (0, 1, 1, 1)), (4, 4, 1, 1, (0, 0, 0, 0))])
def test_col2im_is_the_adjoint_of_im2col(h, w, k, stride, pads):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, h, w))
    cols = im2col_any(x, k, k, stride, pads)
    y = rng.normal(size=cols.shape)
    assert np.isclose(np.sum(cols * y), np.sum(x * col2im_any(y, x.shape, k, k, stride, pads)))


def test_the_reference_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    r = rng.normal(size=ref.conv2d(x, w, b, 2, "same").shape)
    dx, dw, db = ref.conv2d_backward(x, w, r, 2, "same")
    np.testing.assert_allclose(dx, ref.numeric_grad(lambda v: np.sum(ref.conv2d(v, w, b, 2, "same") * r), x),
                               atol=1e-6)
    np.testing.assert_allclose(dw, ref.numeric_grad(lambda v: np.sum(ref.conv2d(x, v, b, 2, "same") * r), w),
                               atol=1e-6)
    np.testing.assert_allclose(db, ref.numeric_grad(lambda v: np.sum(ref.conv2d(x, w, v, 2, "same") * r), b),
                               atol=1e-6)
    z, y = rng.normal(size=(4, 5)), np.eye(5)[rng.integers(0, 5, 4)]
    np.testing.assert_allclose((ref.softmax(z) - y) / 4, ref.numeric_grad(lambda v: ref.cross_entropy(v, y), z),
                               atol=1e-6)
    p = rng.normal(size=(2, 3, 4, 4))
    d = rng.normal(size=(2, 3, 2, 2))
    for back, fwd in ((ref.maxpool_backward, lambda v: ref.windows(v, 2).max(-1)),
                      (ref.avgpool_backward, lambda v: ref.windows(v, 2).mean(-1))):
        np.testing.assert_allclose(back(p, d, 2), ref.numeric_grad(lambda v: np.sum(fwd(v) * d), p), atol=1e-6)


# ---- dense and relu -----------------------------------------------------------------------------

DENSE = HEAD + '''x = input(alice, "x", shape=(6, 5))
w = input(bob, "w", shape=(5, 4))
b = input(bob, "b", shape=(4,))
dy = input(bob, "dy", shape=(6, 4))
h = nn.dense(x, w, b)
output(h, "y", to=alice)
dx, dw, db = nn.dense_backward(x, w, dy)
output(dx, "dx", to=alice)
output(dw, "dw", to=alice)
output(db, "db", to=alice)
output(nn.relu(h), "r", to=alice)
output(nn.relu_backward(h, dy), "dr", to=alice)
output(nn.flatten(x.reshape((6, 1, 5))), "flat", to=alice)
'''


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mpc", [False, True], ids=["emulate", "mpc"])
def test_dense_and_relu_with_their_gradients(protocol, mpc):
    rng = np.random.default_rng(11)
    x, w, b, dy = (_fixed(rng.normal(size=s)) for s in ((6, 5), (5, 4), (4,), (6, 4)))
    got = _run(DENSE, {"alice": {"x": x}, "bob": {"w": w, "b": b, "dy": dy}}, protocol, mpc)
    h = x @ w + b
    _close(got["y"], h, 1e-4, "y")
    _close(got["dx"], dy @ w.T, 1e-4, "dx")
    _close(got["dw"], x.T @ dy, 1e-4, "dw")
    _close(got["db"], dy.sum(0), 1e-4, "db")
    hv = got["y"]  # relu's comparison sees the fixed-point h: ties at 0 follow it
    np.testing.assert_array_equal(got["r"], np.maximum(hv, 0))
    np.testing.assert_array_equal(got["dr"], np.where(hv > 0, _fixed(dy), 0))
    np.testing.assert_array_equal(got["flat"], x)


# ---- convolution --------------------------------------------------------------------------------

def _conv_program(shape, wshape, stride, padding) -> str:
    y = ref.conv2d(np.zeros(shape), np.zeros(wshape), np.zeros(wshape[0]), stride, padding)
    pad = f'"{padding}"' if isinstance(padding, str) else padding
    return HEAD + f'''x = input(alice, "x", shape={shape})
w = input(bob, "w", shape={wshape})
b = input(bob, "b", shape=({wshape[0]},))
dy = input(bob, "dy", shape={y.shape})
output(nn.conv2d(x, w, b, {stride}, {pad}), "y", to=alice)
dx, dw, db = nn.conv2d_backward(x, w, dy, stride={stride}, padding={pad})
output(dx, "dx", to=alice)
output(dw, "dw", to=alice)
output(db, "db", to=alice)
dw1, db1 = nn.conv2d_backward_weights(x, w, dy, {stride}, {pad})
output(dw1 - dw, "same_dw", to=alice)
'''


CONV_CASES = [((2, 1, 8, 8), (3, 1, 5, 5), 1, "valid"), ((2, 2, 7, 7), (3, 2, 3, 3), 2, "same"),
              ((1, 2, 6, 6), (2, 2, 5, 5), 2, "same"), ((2, 3, 5, 6), (2, 3, 3, 3), 1, 1)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mpc", [False, True], ids=["emulate", "mpc"])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_and_its_gradient(protocol, mpc, case):
    shape, wshape, stride, padding = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = _fixed(rng.normal(size=shape)), _fixed(rng.normal(size=wshape) * 0.3), _fixed(rng.normal(size=wshape[0]))
    y = ref.conv2d(x, w, b, stride, padding)
    dy = _fixed(rng.normal(size=y.shape))
    got = _run(_conv_program(shape, wshape, stride, padding),
               {"alice": {"x": x}, "bob": {"w": w, "b": b, "dy": dy}}, protocol, mpc)
    dx, dw, db = ref.conv2d_backward(x, w, dy, stride, padding)
    _close(got["y"], y, 2e-4, "y")
    _close(got["dx"], dx, 2e-4, "dx")
    _close(got["dw"], dw, 2e-4, "dw")
    _close(got["db"], db, 1e-4, "db")
    assert np.all(got["same_dw"] == 0)


# ---- pooling ------------------------------------------------------------------------------------

POOL = HEAD + '''x = input(alice, "x", shape=(2, 3, 4, 6))
dy = input(bob, "dy", shape=(2, 3, 2, 3))
output(nn.maxpool2d(x, 2), "mp", to=alice)
output(nn.maxpool2d_backward(x, dy, 2), "dmp", to=alice)
output(nn.avgpool2d(x, 2), "ap", to=alice)
output(nn.avgpool2d_backward(x, dy, 2), "dap", to=alice)
'''


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mpc", [False, True], ids=["emulate", "mpc"])
def test_pools_and_their_gradients_with_ties(protocol, mpc):
    rng = np.random.default_rng(5)
    x = _fixed(rng.normal(size=(2, 3, 4, 6)))
    x[0, 0] = 0.0                       # whole windows tied (a blank MNIST border): the first wins
    x[1, 2, 0:2, 0:2] = [[1.0, 2.0], [2.0, 0.5]]
    dy = _fixed(rng.normal(size=(2, 3, 2, 3)))
    got = _run(POOL, {"alice": {"x": x}, "bob": {"dy": dy}}, protocol, mpc)
    np.testing.assert_array_equal(got["mp"], ref.windows(x, 2).max(-1))
    np.testing.assert_array_equal(got["dmp"], ref.maxpool_backward(x, dy, 2))
    _close(got["ap"], ref.windows(x, 2).mean(-1), 1e-4, "ap")
    _close(got["dap"], ref.avgpool_backward(x, dy, 2), 1e-4, "dap")


# ---- loss and metrics ---------------------------------------------------------------------------

LOSS = HEAD + '''z = input(alice, "z", shape=(8, 10))
labels = input(bob, "labels", shape=(8,), dtype=int)
y = nn.one_hot(labels, 10)
output(y, "y", to=alice)
output(nn.softmax_cross_entropy(z, y), "loss", to=alice)
output(nn.softmax_cross_entropy_backward(z, y), "dz", to=alice)
output(nn.accuracy(z, y), "acc", to=alice)
'''


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mpc", [False, True], ids=["emulate", "mpc"])
def test_softmax_cross_entropy_its_gradient_one_hot_and_accuracy(protocol, mpc):
    rng = np.random.default_rng(9)
    z = _fixed(rng.normal(size=(8, 10)) * 3)
    labels = rng.integers(0, 10, 8)
    labels[:3] = z[:3].argmax(axis=1)   # some rows right, so the accuracy is not 0
    got = _run(LOSS, {"alice": {"z": z}, "bob": {"labels": labels}}, protocol, mpc)
    y = np.eye(10)[labels]
    np.testing.assert_array_equal(got["y"], y)
    assert abs(float(got["loss"]) - ref.cross_entropy(z, y)) < 3e-3
    _close(got["dz"], (ref.softmax(z) - y) / 8, 2e-4, "dz")
    assert float(got["acc"]) == pytest.approx(np.mean(z.argmax(1) == labels), abs=UNIT)


def test_the_input_gradient_nobody_reads_is_not_computed():
    """dense_backward's dx, left unused, costs nothing: the same program as with the weights-only
    variant, multiplication for multiplication."""
    body = '''x = input(alice, "x", shape=(16, 8))
w = input(bob, "w", shape=(8, 4))
dy = input(bob, "dy", shape=(16, 4))
'''
    full = api.compile(HEAD + body + "dx, dw, db = nn.dense_backward(x, w, dy)\noutput(dw, to=alice)\n"
                       "output(db, to=alice)\n")
    part = api.compile(HEAD + body + "dw, db = nn.dense_backward_weights(x, dy)\noutput(dw, to=alice)\n"
                       "output(db, to=alice)\n")
    assert full.cost.as_dict()["multiplications"] == part.cost.as_dict()["multiplications"]
