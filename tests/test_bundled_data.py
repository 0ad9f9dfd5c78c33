"""The sample fraud data shipped in programs/data: reproducible, loadable, and learnable."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from reference import sklearn_accuracy
from veil.runtime.inputs import load_input

DATA = Path(__file__).resolve().parents[1] / "programs" / "data"


def _generator():
    """The generator script imported as a module (it lives with the data, not in the package)."""
    spec = importlib.util.spec_from_file_location("make_fraud_data", DATA / "make_fraud_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundled() -> tuple[np.ndarray, np.ndarray]:
    """The two bundled files, loaded the way a party's runtime loads them."""
    xa = load_input(str(DATA / "alice.csv"), (7000, 16), "fix", party="alice", name="x")
    data = load_input(str(DATA / "bob.csv"), (7000, 17), "fix", party="bob", name="data")
    return xa, data


def test_generator_is_deterministic(tmp_path: Path) -> None:
    _generator().main(str(tmp_path))
    for fname in ("alice.csv", "bob.csv"):
        assert (tmp_path / fname).read_bytes() == (DATA / fname).read_bytes(), fname


def test_layout_matches_the_seed() -> None:
    alice = (DATA / "alice.csv").read_text().splitlines()
    bob = (DATA / "bob.csv").read_text().splitlines()
    assert len(alice) == len(bob) == 7000
    assert (DATA / "bob.csv").read_bytes().endswith(b"\n")
    assert b"\r" not in (DATA / "alice.csv").read_bytes()
    assert all(line.split(",")[0] in ("0", "1") for line in bob)
    assert not any(c in alice[0] for c in "eE")  # no exponent notation, no header


def test_bundled_files_load_with_declared_shapes(bundled) -> None:
    xa, data = bundled
    assert xa.shape == (7000, 16) and xa.dtype == np.float64
    assert data.shape == (7000, 17)
    assert set(np.unique(data[:, 0])) == {0.0, 1.0}
    assert np.abs(xa).max() < 8 and np.abs(data[:, 1:]).max() < 8


def test_features_are_roughly_standardized(bundled) -> None:
    xa, data = bundled
    x = np.hstack([xa, data[:, 1:]])
    continuous = np.ones(32, dtype=bool)
    continuous[[14, 15, 30, 31]] = False  # 0/1 flags
    assert np.all(np.abs(x[:, continuous].mean(axis=0)) < 0.1)
    assert np.all(np.abs(x[:, continuous].std(axis=0) - 1.0) < 0.1)


def test_class_balance_like_the_seed(bundled) -> None:
    _, data = bundled
    assert 0.50 <= data[:, 0].mean() <= 0.56  # the seed has 53.1% ones


def test_logistic_regression_reaches_designed_accuracy(bundled) -> None:
    xa, data = bundled
    accuracy, coef, intercept = sklearn_accuracy(xa, data)
    assert 0.79 <= accuracy <= 0.86
    assert coef.shape == (32,) and np.isfinite(intercept)
    # the label depends on both parties' data, so neither can learn it alone
    assert np.count_nonzero(np.abs(coef[:16]) > 0.05) >= 8
    assert np.count_nonzero(np.abs(coef[16:]) > 0.05) >= 8
    bob_alone, _, _ = sklearn_accuracy(np.zeros((7000, 0)), data)
    assert bob_alone < accuracy - 0.05
