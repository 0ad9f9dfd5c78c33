"""Make the sample data of secure_aggregation.mpc: three data owners' rows for logistic regression.

federated/owner{1,2,3}.csv: 200 rows each, 10 standardized features then a 0/1 label, no header.
The owners' feature distributions differ (each has its own shift and scale, as real federated
data does); the label follows one logistic model shared by all, so the averaged gradients of the
three owners train one model that fits all three. Deterministic (fixed seed, 6 decimals), so
running it twice gives byte-identical files. Usage: python make_federated_data.py [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20_261_201
ROWS = 200
FEATURES = 10
OWNERS = 3


def make(rng: np.random.Generator) -> list[np.ndarray]:
    """The owners' (ROWS, FEATURES + 1) tables."""
    truth = rng.normal(size=FEATURES) * 1.5
    tables = []
    for _ in range(OWNERS):
        shift, scale = rng.normal(size=FEATURES) * 0.5, rng.uniform(0.7, 1.3, size=FEATURES)
        x = rng.normal(size=(ROWS, FEATURES)) * scale + shift
        p = 1.0 / (1.0 + np.exp(-(x @ truth - shift @ truth)))
        tables.append(np.c_[x, (rng.random(ROWS) < p).astype(float)])
    return tables


def main(out: str | None = None) -> None:
    folder = Path(out) if out else Path(__file__).resolve().parent / "federated"
    folder.mkdir(parents=True, exist_ok=True)
    for k, table in enumerate(make(np.random.default_rng(SEED)), start=1):
        np.savetxt(folder / f"owner{k}.csv", table, delimiter=",", fmt="%.6f")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
