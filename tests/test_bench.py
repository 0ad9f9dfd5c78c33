"""The benchmark suite's table (programs/bench.py): a unit whose median difference is at or
below zero prints as `noise`, never as a figure."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "programs"))

import bench  # noqa: E402


def test_a_non_positive_median_prints_as_noise():
    assert bench._seconds(-0.005) == bench._seconds(0.0) == bench.NOISE
    assert bench._seconds(0.0021) == "2.10 ms" and bench._seconds(1.5) == "1.500 s"
    row = bench.Row(7, 8, -0.005, {"alice": -0.005}, 7)
    text = bench.table([("10^6 comparisons", "10^6 cmp", row, None)], markdown=True)
    assert "| noise |" in text and "-5.00" not in text
