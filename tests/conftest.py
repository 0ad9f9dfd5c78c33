"""Shared test helpers: compile program text, run it in every mode, compare."""
from __future__ import annotations

import numpy as np
import pytest

from veil.runtime import api


def compile_text(src: str, params=None, **kw):
    return api.compile(src, params, **kw)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
