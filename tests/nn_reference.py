"""Plain float numpy layers and their hand-written gradients (what stdlib/nn.mpc must compute),
and a finite-difference check that keeps the hand-written gradients honest."""
from __future__ import annotations

from typing import Callable

import numpy as np


def pads(n: int, k: int, stride: int, padding) -> tuple[int, int]:
    """TensorFlow's padding along one axis: "valid", "same" or an int on both sides."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((-(-n // stride) - 1) * stride + k - n, 0)
        return total // 2, total - total // 2
    return padding, padding


def _padded(x: np.ndarray, kh: int, kw: int, stride: int, padding) -> tuple[np.ndarray, tuple, int, int]:
    t, b = pads(x.shape[2], kh, stride, padding)
    left, right = pads(x.shape[3], kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, right)))
    oh = (xp.shape[2] - kh) // stride + 1
    ow = (xp.shape[3] - kw) // stride + 1
    return xp, (t, b, left, right), oh, ow


def conv2d(x, w, b, stride=1, padding=0):
    """Direct convolution, window by window (no im2col: an independent formulation)."""
    f, _, kh, kw = w.shape
    xp, _, oh, ow = _padded(x, kh, kw, stride, padding)
    y = np.zeros((x.shape[0], f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("ncij,fcij->nf", win, w) + b
    return y


def conv2d_backward(x, w, dy, stride=1, padding=0):
    """(dx, dw, db) of conv2d, accumulated window by window."""
    f, _, kh, kw = w.shape
    xp, (t, _, left, _), oh, ow = _padded(x, kh, kw, stride, padding)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(oh):
        for j in range(ow):
            sl = (slice(None), slice(None), slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw))
            dw += np.einsum("nf,ncij->fcij", dy[:, :, i, j], xp[sl])
            dxp[sl] += np.einsum("nf,fcij->ncij", dy[:, :, i, j], w)
    dx = dxp[:, :, t:t + x.shape[2], left:left + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def windows(x, k):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // k, w // k, k * k)


def unwindows(t, shape, k):
    n, c, h, w = shape
    return t.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def maxpool_backward(x, dy, k):
    win = windows(x, k)
    mask = np.eye(k * k)[win.argmax(axis=-1)]
    return unwindows(mask * dy[..., None], x.shape, k)


def avgpool_backward(x, dy, k):
    return unwindows(np.repeat(dy[..., None] / (k * k), k * k, axis=-1), x.shape, k)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(z, y):
    s = z - z.max(axis=-1, keepdims=True)
    return float(np.mean(np.log(np.exp(s).sum(axis=-1)) - (y * s).sum(axis=-1)))


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of a scalar function, element by element."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g
