"""Shared test helpers: where the real public data lives, and scikit-learn's reference model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def shared_data_dir() -> Path:
    """`../shared/data` beside the checkout; skips the calling test where it is absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"the shared public data folder {path} is not present beside the checkout")
    return path


def sklearn_accuracy(xa: np.ndarray, data: np.ndarray) -> tuple[float, np.ndarray, float]:
    """scikit-learn's logistic regression on concat([xa, data[:, 1:]]) with labels data[:, 0].

    Returns the training accuracy, the coefficients (shape (features,)) and the intercept, as the
    yardstick veil's trained model is compared with.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.hstack([np.asarray(xa, dtype=np.float64), np.asarray(data, dtype=np.float64)[:, 1:]])
    y = np.asarray(data)[:, 0].astype(np.int64)
    model = LogisticRegression(max_iter=2000).fit(x, y)
    return float(model.score(x, y)), model.coef_.reshape(-1), float(model.intercept_[0])
