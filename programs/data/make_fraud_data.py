"""Make veil's bundled sample data: a synthetic, vertically split fraud data set.

alice.csv: 7000 rows x 16 features (alice, the bank), no header.
bob.csv:   7000 rows x 17 columns: the 0/1 label (1 = fraud), then 16 features (bob), no header.
Row i of both files is the same customer. The layout is that of the tf-encrypted example files
(/work/shared/data/fraud); the numbers are made up here.

Features are roughly standardized (|v| < 8): correlated Gaussian scores, heavy-tailed amounts
(log-normal, standardized), counts (Poisson, standardized) and 0/1 flags. The label is drawn from
a logistic model over all 32 features, tuned so that about 53% of rows are 1 (as in the seed) and
logistic regression reaches about 80% training accuracy.

Deterministic: numpy's default_rng with a fixed seed, values written with 5 significant digits,
so running it twice gives byte-identical files. Usage: python make_fraud_data.py [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20_240_611
ROWS = 7000
FEATURES = 16  # per party
BIAS = 0.3  # sets the share of label 1 near the seed's 53%
SIGNAL = 2.5  # standard deviation of the true logit: sets how learnable the label is


def _gaussian_block(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k correlated standard-normal scores (a random one-factor-plus-noise mix)."""
    loading = rng.uniform(0.2, 0.7, size=k)
    factor = rng.standard_normal((n, 1))
    noise = rng.standard_normal((n, k))
    return factor * loading + noise * np.sqrt(1.0 - loading**2)


def _standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column."""
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _features(rng: np.random.Generator, n: int) -> np.ndarray:
    """One party's 16 columns: 9 scores, 3 amounts, 2 counts, 2 flags."""
    scores = _gaussian_block(rng, n, 9)
    amounts = _standardize(rng.lognormal(mean=0.0, sigma=0.4, size=(n, 3)))
    amounts = amounts + 0.3 * scores[:, :3]
    counts = _standardize(rng.poisson(lam=(2.0, 5.0), size=(n, 2)).astype(np.float64))
    flags = (rng.random((n, 2)) < (0.15, 0.4)).astype(np.float64)
    return np.clip(np.hstack([scores, amounts, counts, flags]), -7.5, 7.5)


def _labels(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """0/1 labels from a logistic model over every feature."""
    w = rng.standard_normal(x.shape[1]) * rng.uniform(0.2, 1.0, size=x.shape[1])
    z = _standardize(x) @ w
    z = SIGNAL * z / z.std() + BIAS
    p = 1.0 / (1.0 + np.exp(-z))
    return (rng.random(len(z)) < p).astype(np.int64)


def generate(rows: int = ROWS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """alice's (rows, 16) features and bob's (rows, 17) label-then-features table."""
    rng = np.random.default_rng(seed)
    alice = _features(rng, rows)
    bob = _features(rng, rows)
    label = _labels(rng, np.hstack([alice, bob]))
    return alice, np.hstack([label[:, None].astype(np.float64), bob])


def _cell(v: float) -> str:
    """A number with 5 significant digits, never in exponent notation."""
    if v == 0.0:
        return "0"
    return np.format_float_positional(v, precision=5, unique=False, fractional=False, trim="-")


def write_csv(path: Path, table: np.ndarray, int_first: bool = False) -> None:
    """Plain CSV: no header, LF line endings, trailing newline; an optional integer first column."""
    lines = []
    for row in table:
        cells = [_cell(float(v)) for v in row]
        if int_first:
            cells[0] = str(int(row[0]))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def main(out_dir: str | None = None) -> None:
    """Write alice.csv and bob.csv into out_dir (default: this script's folder)."""
    out = Path(out_dir) if out_dir else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    alice, bob = generate()
    write_csv(out / "alice.csv", alice)
    write_csv(out / "bob.csv", bob, int_first=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
