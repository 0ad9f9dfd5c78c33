"""Plain float64 numpy training of the MNIST programs, for the accuracy harness (accuracy.py).

Each model here is the numpy twin of one `programs/mnist_*.mpc`: the same layers, the same
initial weights (drawn by veil.runtime.randomness from the same seeds), the same batch order
(one public permutation of the batches per epoch), the same optimizer formulas and
hyper-parameters, and the same treatment of the last partial batch (dropped). Only the number
format differs: float64 here, fixed point in MPC.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from veil.runtime.randomness import public_permutations, public_uniform

Array = np.ndarray


def read_idx(path: str | Path) -> Array:
    """An MNIST IDX file (gzipped or not) as a numpy array of its declared shape."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# ---- layers ------------------------------------------------------------------------------------

def relu(z: Array) -> Array:
    """max(z, 0)."""
    return np.maximum(z, 0.0)


def softmax(z: Array) -> Array:
    """Row-wise softmax, shifted by the row max for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: Array) -> Array:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def _pads(size: int, k: int, stride: int, padding: str | int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) with TensorFlow's rules for "same" and "valid"."""
    if padding == "valid":
        return 0, 0, (size - k) // stride + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        return total // 2, total - total // 2, out
    p = int(padding)
    return p, p, (size + 2 * p - k) // stride + 1


def im2col(x: Array, k: int, stride: int, padding: str | int) -> tuple[Array, int, int]:
    """(B*OH*OW, C*k*k) patches of x (B, C, H, W), with the output height and width."""
    b, c, h, w = x.shape
    t, bo, oh = _pads(h, k, stride, padding)
    l, r, ow = _pads(w, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    cols = np.empty((b, oh, ow, c, k, k), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride].transpose(0, 2, 3, 1)
    return cols.reshape(b * oh * ow, c * k * k), oh, ow


def col2im(cols: Array, shape: tuple[int, ...], k: int, stride: int, padding: str | int) -> Array:
    """The adjoint of im2col: patches summed back onto an image of `shape`."""
    b, c, h, w = shape
    t, bo, oh = _pads(h, k, stride, padding)
    l, r, ow = _pads(w, k, stride, padding)
    xp = np.zeros((b, c, h + t + bo, w + l + r))
    cols = cols.reshape(b, oh, ow, c, k, k)
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, t:t + h, l:l + w]


def maxpool(x: Array, s: int) -> Array:
    """Non-overlapping s x s max pooling of (B, C, H, W)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // s, s, w // s, s).max(axis=(3, 5))


def maxpool_backward(x: Array, dy: Array, s: int) -> Array:
    """dy routed to the first maximum of each window."""
    b, c, h, w = x.shape
    win = x.reshape(b, c, h // s, s, w // s, s).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // s, w // s, s * s)
    mask = np.zeros_like(win)
    np.put_along_axis(mask, win.argmax(axis=-1)[..., None], 1.0, axis=-1)
    dx = mask * dy[..., None]
    return dx.reshape(b, c, h // s, w // s, s, s).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


# ---- models ------------------------------------------------------------------------------------

@dataclass
class Dense:
    """x @ w + b."""
    w: Array
    b: Array

    def forward(self, x: Array) -> Array:
        self.x = x
        return x @ self.w + self.b

    def backward(self, dy: Array) -> tuple[Array, list[Array]]:
        return dy @ self.w.T, [self.x.T @ dy, dy.sum(axis=0)]

    def params(self) -> list[Array]:
        return [self.w, self.b]


@dataclass
class Conv:
    """A k x k convolution with F filters, as im2col times a (C*k*k, F) matrix."""
    w: Array          # (F, C, k, k)
    b: Array          # (F,)
    stride: int = 1
    padding: str | int = "valid"

    def forward(self, x: Array) -> Array:
        f, c, k, _ = self.w.shape
        self.shape = x.shape
        self.cols, oh, ow = im2col(x, k, self.stride, self.padding)
        out = self.cols @ self.w.reshape(f, -1).T + self.b
        return out.reshape(x.shape[0], oh, ow, f).transpose(0, 3, 1, 2)

    def backward(self, dy: Array) -> tuple[Array, list[Array]]:
        f, c, k, _ = self.w.shape
        d = dy.transpose(0, 2, 3, 1).reshape(-1, f)
        dw = (d.T @ self.cols).reshape(self.w.shape)
        dx = col2im(d @ self.w.reshape(f, -1), self.shape, k, self.stride, self.padding)
        return dx, [dw, d.sum(axis=0)]

    def params(self) -> list[Array]:
        return [self.w, self.b]


class Relu:
    def forward(self, x: Array) -> Array:
        self.x = x
        return relu(x)

    def backward(self, dy: Array) -> tuple[Array, list[Array]]:
        return dy * (self.x > 0), []

    def params(self) -> list[Array]:
        return []


@dataclass
class MaxPool:
    s: int

    def forward(self, x: Array) -> Array:
        self.x = x
        return maxpool(x, self.s)

    def backward(self, dy: Array) -> tuple[Array, list[Array]]:
        return maxpool_backward(self.x, dy, self.s), []

    def params(self) -> list[Array]:
        return []


class Flatten:
    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Array) -> tuple[Array, list[Array]]:
        return dy.reshape(self.shape), []

    def params(self) -> list[Array]:
        return []


def glorot(seed: int, shape: tuple[int, ...], fan_in: int, fan_out: int) -> Array:
    """Glorot-uniform weights, drawn exactly as nn.glorot_uniform(shape, fan_in, fan_out, seed)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return public_uniform(seed, shape, -a, a)


def dense(seed: int, n_in: int, n_out: int) -> Dense:
    return Dense(glorot(seed, (n_in, n_out), n_in, n_out), np.zeros(n_out))


def conv(seed: int, f: int, c: int, k: int, stride: int = 1, padding: str | int = "valid") -> Conv:
    return Conv(glorot(seed, (f, c, k, k), c * k * k, f * k * k), np.zeros(f), stride, padding)


def network(name: str, seed: int) -> list:
    """The layers of network A, B, C or D; layer k's weights are drawn from seed + k."""
    if name == "a":
        return [dense(seed + 1, 784, 128), Relu(), dense(seed + 2, 128, 128), Relu(), dense(seed + 3, 128, 10)]
    if name == "b":
        return [conv(seed + 1, 16, 1, 5), MaxPool(2), Relu(), conv(seed + 2, 16, 16, 5), MaxPool(2), Relu(),
                Flatten(), dense(seed + 3, 256, 100), Relu(), dense(seed + 4, 100, 10)]
    if name == "c":
        return [conv(seed + 1, 20, 1, 5), MaxPool(2), Relu(), conv(seed + 2, 50, 20, 5), MaxPool(2), Relu(),
                Flatten(), dense(seed + 3, 800, 500), Relu(), dense(seed + 4, 500, 10)]
    if name == "d":
        return [conv(seed + 1, 5, 1, 5, 2, "same"), Relu(), Flatten(), dense(seed + 2, 980, 100), Relu(),
                dense(seed + 3, 100, 10)]
    raise ValueError(f"unknown network {name!r}")


# ---- optimizers --------------------------------------------------------------------------------

@dataclass
class Optimizer:
    """sgd, momentum, adam or amsgrad with the formulas of stdlib/optim.mpc, in float64."""
    kind: str
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    state: dict = field(default_factory=dict)

    def step(self, key: int, w: Array, g: Array, t: int) -> None:
        """Update w in place with its gradient g at step t (1-based)."""
        if self.kind == "sgd":
            w -= self.lr * g
            return
        if self.kind == "momentum":
            v = self.state.setdefault(key, np.zeros_like(w))
            v *= self.beta1
            v += g
            w -= self.lr * v
            return
        m, v, vh = self.state.setdefault(key, (np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)))
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        if self.kind == "amsgrad":
            np.maximum(vh, v, out=vh)
            v = vh
        elif self.kind != "adam":
            raise ValueError(f"unknown optimizer {self.kind!r}")
        mhat = m / (1 - self.beta1 ** t)
        vhat = v / (1 - self.beta2 ** t)
        w -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


# ---- training ----------------------------------------------------------------------------------

@dataclass
class Result:
    accuracy: float
    losses: list[float]
    seconds: float
    batches: int


def _batches(n: int, batch: int, epochs: int, seed: int):
    """(epoch, step t, batch index) in the programs' order: a public permutation per epoch."""
    nb = n // batch
    order = public_permutations(seed, epochs, nb)
    t = 0
    for e in range(epochs):
        for i in range(nb):
            t += 1
            yield e, t, int(order[e, i])


def step(layers: list, opt: Optimizer, xb: Array, yb: Array, t: int) -> float:
    """One training step of a network on a batch with softmax cross-entropy; returns its loss."""
    h = xb
    for layer in layers:
        h = layer.forward(h)
    p = softmax(h)
    d = (p - yb) / len(xb)
    for k, layer in reversed(list(enumerate(layers))):
        d, grads = layer.backward(d)
        for n, (w, g) in enumerate(zip(layer.params(), grads)):
            opt.step(2 * k + n, w, g, t)
    return float(-np.mean(np.sum(yb * np.log(np.maximum(p, 1e-12)), axis=1)))


def train_network(name: str, x: Array, y: Array, xt: Array, yt: Array, *, epochs: int, batch: int,
                  opt: str, lr: float, seed: int) -> Result:
    """Train network `name` on (x, y) and score it on (xt, yt), as the .mpc program does."""
    import time
    conv_net = name != "a"
    prep = (lambda a: a.reshape(len(a), 1, 28, 28) / 255.0) if conv_net else (lambda a: a.reshape(len(a), 784) / 255.0)
    xs, xts = prep(x.astype(np.float64)), prep(xt.astype(np.float64))
    onehot = np.eye(10)[y]
    layers, o = network(name, seed), Optimizer(opt, lr)
    start = time.perf_counter()
    losses = [step(layers, o, xs[j * batch:(j + 1) * batch], onehot[j * batch:(j + 1) * batch], t)
              for _, t, j in _batches(len(x), batch, epochs, seed)]
    seconds = time.perf_counter() - start
    h = xts
    for layer in layers:
        h = layer.forward(h)
    return Result(float(np.mean(h.argmax(axis=1) == yt)), losses, seconds, len(losses))


def train_logreg(x: Array, y: Array, xt: Array, yt: Array, *, epochs: int, batch: int, opt: str, lr: float,
                 seed: int) -> Result:
    """Small digits (0-4) against large (5-9) by logistic regression, as mnist_logreg.mpc does."""
    import time
    xs, xts = x.reshape(len(x), 784) / 255.0, xt.reshape(len(xt), 784) / 255.0
    labels = (y >= 5).astype(np.float64).reshape(-1, 1)
    w, b, o = np.zeros((784, 1)), np.zeros(1), Optimizer(opt, lr)
    losses, start = [], time.perf_counter()
    for _, t, j in _batches(len(x), batch, epochs, seed):
        xb, yb = xs[j * batch:(j + 1) * batch], labels[j * batch:(j + 1) * batch]
        p = sigmoid(xb @ w + b)
        losses.append(float(-np.mean(yb * np.log(np.maximum(p, 1e-12)) + (1 - yb) * np.log(np.maximum(1 - p, 1e-12)))))
        g = (p - yb) / batch
        o.step(0, w, xb.T @ g, t)
        o.step(1, b, g.sum(axis=0), t)
    seconds = time.perf_counter() - start
    return Result(float(np.mean(((xts @ w + b) > 0).ravel() == (yt >= 5))), losses, seconds, len(losses))


TRAINERS: dict[str, Callable[..., Result]] = {
    "mnist_logreg": train_logreg,
    **{f"mnist_network_{n}": (lambda *a, _n=n, **k: train_network(_n, *a, **k)) for n in "abcd"},
}
