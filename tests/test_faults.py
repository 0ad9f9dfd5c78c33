"""The fault-injection suite: real `veil run` processes over loopback, one fault each (see
tests/fault_cases.py). Every party must end within its bound with exit status 1 or 2, name the
right party and reason, and leave no output file — or, for strangers, the session completes."""
from __future__ import annotations

from pathlib import Path

import pytest

from fault_cases import cases, build_all, problems, run_cases

CASES = cases()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every case, run a few at a time (the whole suite costs about one slow case per worker)."""
    root = tmp_path_factory.mktemp("faults")
    builds = build_all(root)
    return run_cases(root, builds, CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case, runs):
    run = runs[case.name]
    assert set(run.ends) >= set(case.parties), run.ends
    assert problems(case, run) == []
