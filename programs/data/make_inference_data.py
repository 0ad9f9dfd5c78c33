"""Make the sample data of private_inference.mpc: a trained network A and a client's images.

inference/w1.npy ... b3.npy: network A (784-128-128-10) trained in plain numpy (float32 files)
on synthetic 28x28 "digits": ten classes, each a fixed pattern of a few bright strokes, drawn
with random shifts, stroke strengths and noise. inference/images.npy: 200 new such images
(uint8 pixels, shape (200, 28, 28), as an MNIST IDX file holds them) and inference/labels.npy
their classes, which only the tests read. With real data, the model owner passes the weights
that mnist_network_a.mpc outputs and the client an MNIST IDX file. Deterministic (fixed seed).
Usage: python make_inference_data.py [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from plain_training import Dense, Optimizer, Relu, step  # noqa: E402

SEED = 20_261_202
TRAIN, TEST = 4000, 200


def templates(rng: np.random.Generator) -> np.ndarray:
    """Ten 28x28 patterns in [0, 1], each three random strokes (lines between random points)."""
    out = np.zeros((10, 28, 28))
    t = np.linspace(0.0, 1.0, 40)
    for c in range(10):
        for _ in range(3):
            (r0, c0), (r1, c1) = rng.uniform(5, 22, size=(2, 2))
            rows, cols = np.round(r0 + (r1 - r0) * t).astype(int), np.round(c0 + (c1 - c0) * t).astype(int)
            out[c, rows, cols] = 1.0
            out[c, np.minimum(rows + 1, 27), cols] = 1.0
    return out


def draw(rng: np.random.Generator, pats: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8) and their labels: a pattern shifted by up to 2 pixels, scaled, noised."""
    labels = rng.integers(0, 10, size=n)
    imgs = np.empty((n, 28, 28))
    for i, c in enumerate(labels):
        dr, dc = rng.integers(-2, 3, size=2)
        imgs[i] = np.roll(pats[c], (dr, dc), axis=(0, 1)) * rng.uniform(150, 255)
    imgs += rng.normal(0, 30, size=imgs.shape)
    return np.clip(imgs, 0, 255).astype(np.uint8), labels


def train(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> list[Dense]:
    """Network A by sgd (lr 0.2, batch 128, 3 epochs), Glorot-uniform initial weights."""
    sizes = [(784, 128), (128, 128), (128, 10)]
    dense = [Dense(rng.uniform(-1, 1, s) * np.sqrt(6.0 / sum(s)), np.zeros(s[1])) for s in sizes]
    layers = [dense[0], Relu(), dense[1], Relu(), dense[2]]
    opt, xs, onehot = Optimizer("sgd", 0.2), x.reshape(len(x), 784) / 255.0, np.eye(10)[y]
    for _ in range(3):
        for j in range(len(x) // 128):
            step(layers, opt, xs[j * 128:(j + 1) * 128], onehot[j * 128:(j + 1) * 128], 1)
    return dense


def main(out: str | None = None) -> None:
    folder = Path(out) if out else Path(__file__).resolve().parent / "inference"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pats = templates(rng)
    x, y = draw(rng, pats, TRAIN)
    dense = train(rng, x, y)
    for k, layer in enumerate(dense, start=1):
        np.save(folder / f"w{k}.npy", layer.w.astype(np.float32))
        np.save(folder / f"b{k}.npy", layer.b.astype(np.float32))
    images, labels = draw(rng, pats, TEST)
    np.save(folder / "images.npy", images)
    np.save(folder / "labels.npy", labels)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
