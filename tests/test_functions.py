"""stdlib/ml.mpc's functions against numpy, in emulation (the same fixed-point steps the protocols
run): Hypothesis draws arrays of many values per example over each function's domain, edge values
always included (0, +-1 unit, the domain's limits, the octave and knot boundaries, ties), and every
error must stay within the documented bound (docs/functions.md). A relative bound rel is met when
|got - exact| <= max(rel * |exact|, 4 * 2^-16). The emulator raises OverflowWarning if any value
leaves the fixed-point range, so each passing case also shows the computation stays in range."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from veil.runtime import api

UNIT = 2.0 ** -16
N = 256                      # values per example: one compiled program per function and shape
LIMIT = 32767.0              # the largest fix input (|v| < 2^15)
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@lru_cache(maxsize=None)
def _program(call: str, shape: tuple[int, ...]):
    """A program applying `call` (e.g. "ml.exp(s)") to a secret input of `shape`, front end only."""
    src = (f'import ml\nparty alice, bob, carol\nx = input(alice, "x", shape={shape})\n'
           f's = secret(x)\noutput({call}, "y", to=alice)\n')
    return api.front_end(src)


def fixed(values) -> np.ndarray:
    """Values on the fixed-point grid: what the program's input holds."""
    return np.round(np.asarray(values, dtype=np.float64) / UNIT) * UNIT


def apply(call: str, x: np.ndarray) -> np.ndarray:
    out = api.emulate(_program(call, x.shape), {"alice": {"x": x}})
    return out["alice"]["y"]


def values(edges: list[float], draws: list[float]) -> np.ndarray:
    """N values: the edge values first, then the drawn ones, cycled to fill the array."""
    pool = list(edges) + list(draws)
    return fixed(np.resize(np.array(pool, dtype=np.float64), N))


def pm(xs: list[float]) -> list[float]:
    """Each value, its neighbours one unit away, and their negatives."""
    near = [v + d for v in xs for d in (-UNIT, 0.0, UNIT)]
    return near + [-v for v in near]


def check(got: np.ndarray, exact: np.ndarray, x: np.ndarray, *, abs_tol: float = 0.0, rel: float = 0.0) -> None:
    bound = np.maximum(rel * np.abs(exact), 4 * UNIT) if rel else np.full(exact.shape, abs_tol)
    err = np.abs(got - exact)
    worst = int(np.argmax(err - bound))
    assert np.all(err <= bound), f"x = {x.flat[worst]!r}: got {got.flat[worst]!r}, exact {exact.flat[worst]!r}"


def floats(lo: float, hi: float, log: bool = False):
    """Draws from [lo, hi], log-uniform for a positive domain spanning decades."""
    if log:
        return st.floats(np.log(lo), np.log(hi)).map(np.exp)
    return st.floats(lo, hi, allow_nan=False)


MANY = dict(min_size=1, max_size=N)

# ---- sigmoid ----------------------------------------------------------------------------------

SIG_KNOTS = [0.87890625, 1.6171875, 2.42578125, 3.52734375, 5.73828125]


@SETTINGS
@given(st.lists(floats(-60.0, 60.0), **MANY))
def test_sigmoid_default_within_5e3_bounded_and_exact_far_out(draws: list[float]) -> None:
    x = values(pm([0.0, 50.0, 16.0, LIMIT, *SIG_KNOTS]), draws)
    y = apply("ml.sigmoid(s)", x)
    check(y, _sigmoid(x), x, abs_tol=3.3e-3)
    assert np.all((y >= 0.0) & (y <= 1.0))
    assert np.all(y[x >= SIG_KNOTS[-1]] == 1.0) and np.all(y[x <= -SIG_KNOTS[-1]] == 0.0)


def test_sigmoid_default_is_monotone_on_every_value_near_the_knots_and_symmetric() -> None:
    grid = fixed(np.concatenate([np.arange(-6.0, 6.0, UNIT * 4), [-LIMIT, -1000.0, 1000.0, LIMIT]]))
    grid = np.sort(grid)
    y = apply("ml.sigmoid(s)", grid)
    assert np.all(np.diff(y) >= 0.0)
    mirrored = apply("ml.sigmoid(s)", -grid)
    assert np.max(np.abs(y + mirrored - 1.0)) <= 4 * UNIT


@SETTINGS
@given(st.lists(floats(-30.0, 30.0), **MANY))
def test_sigmoid_precise_within_1e3(draws: list[float]) -> None:
    x = values(pm([0.0, 30.0, 16.0, 100.0, LIMIT]), draws)
    y = apply("ml.sigmoid_precise(s)", x)
    check(y, _sigmoid(x), x, abs_tol=2e-4)
    assert np.all((y >= 0.0) & (y <= 1.0))


def test_the_cubics_keep_their_names_and_formulas() -> None:
    x = fixed(np.linspace(-8.0, 8.0, N))
    check(apply("ml.sigmoid_poly3(s)", x), 0.5 + 0.15012 * x - 0.0015930 * x ** 3, x, abs_tol=1e-3)
    check(apply("ml.sigmoid_poly3_wide(s)", x), 0.5 + 0.084249 * x - 0.00024719 * x ** 3, x, abs_tol=1e-3)


# ---- exp and log ------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(floats(-10.0, 8.0), **MANY))
def test_exp_within_1e2_relative_on_its_domain(draws: list[float]) -> None:
    x = np.clip(values(pm([0.0, 1.0, 5.0, 8.0, 10.0]), draws), -10.0, 8.0)
    check(apply("ml.exp(s)", x), np.exp(x), x, rel=5e-3)


def test_exp_saturates_outside_its_domain_and_stays_in_range() -> None:
    x = fixed([-LIMIT, -1000.0, -16.0 - UNIT, -16.0, -12.0, 10.39, 10.5, 100.0, LIMIT, 0.0])
    y = apply("ml.exp(s)", x)
    assert np.all(y[:4] <= 4 * UNIT) and np.all(y >= 0.0)
    check(y[4:6], np.exp(x[4:6]), x[4:6], rel=5e-3)
    assert np.all(y[6:9] == y[5]) and y[9] == 1.0


def _octaves(base: float, lo: int, hi: int) -> list[float]:
    """The powers base^k, k in [lo, hi], and their neighbours one unit away."""
    return [base ** k + d for k in range(lo, hi + 1) for d in (-UNIT, 0.0, UNIT) if base ** k + d > 0]


@SETTINGS
@given(st.lists(floats(0.01, 10000.0, log=True), **MANY))
def test_log_within_5e3_absolute(draws: list[float]) -> None:
    x = values([0.01, 10000.0, 1.0] + _octaves(2.0, -6, 13), draws)
    x = x[(x >= 0.01) & (x <= 10000.0)]
    check(apply("ml.log(s)", np.resize(x, N)), np.log(np.resize(x, N)), np.resize(x, N), abs_tol=1.5e-3)


# ---- reciprocal, sqrt, rsqrt ------------------------------------------------------------------

@SETTINGS
@given(st.lists(floats(0.01, 1000.0, log=True), **MANY))
def test_reciprocal_within_1e3_relative(draws: list[float]) -> None:
    x = values([0.01, 1000.0, 1.0] + _octaves(2.0, -6, 9), draws)
    x = np.resize(x[(x >= 0.01) & (x <= 1000.0)], N)
    check(apply("ml.reciprocal(s)", x), 1.0 / x, x, rel=1e-3)


@SETTINGS
@given(st.lists(floats(UNIT, LIMIT, log=True), **MANY))
def test_sqrt_and_rsqrt_within_1e3_relative_on_every_positive_value(draws: list[float]) -> None:
    x = values([UNIT, 2 * UNIT, 0.01, 10000.0, LIMIT] + _octaves(4.0, -7, 7), draws)
    check(apply("ml.sqrt(s)", x), np.sqrt(x), x, rel=1e-3)
    check(apply("ml.rsqrt(s)", x), 1.0 / np.sqrt(x), x, rel=1e-3)


def test_sqrt_of_zero_is_zero() -> None:
    y = apply("ml.sqrt(s)", fixed([0.0, 4.0]))
    assert y[0] == 0.0 and abs(y[1] - 2.0) <= 2e-3


# ---- softmax ----------------------------------------------------------------------------------

def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@SETTINGS
@given(st.lists(floats(-20.0, 20.0), min_size=1, max_size=64 * 8), st.integers(0, 7))
def test_softmax_within_1e3_along_either_axis_with_ties(draws: list[float], tied: int) -> None:
    x = fixed(np.resize(np.array(draws + [20.0, -20.0, 0.0, UNIT, -UNIT]), (64, 8)))
    x[tied] = x[tied, 0]                          # a row of equal entries
    x[(tied + 1) % 64, :2] = 20.0                 # two tied maxima, the rest anything
    x[(tied + 2) % 64] = [20.0] + [-20.0] * 7     # the widest spread
    for axis in (-1, 0):
        y = apply(f"ml.softmax(s, axis={axis})", x)
        check(y, _softmax(x, axis), x, abs_tol=1e-3)


def test_softmax_of_wide_rows_stays_in_range() -> None:
    x = fixed(np.array([[LIMIT, -LIMIT, 0.0, 1.0], [-LIMIT, -LIMIT, -LIMIT, -LIMIT]]))
    y = apply("ml.softmax(s)", x)
    check(y, _softmax(x, -1), x, abs_tol=1e-3)


# ---- relu and pooling: exact -----------------------------------------------------------------

@SETTINGS
@given(st.lists(floats(-LIMIT, LIMIT), **MANY))
def test_relu_and_its_gradient_are_exact(draws: list[float]) -> None:
    x = values(pm([0.0, 1.0, LIMIT - UNIT]), draws)
    assert np.array_equal(apply("ml.relu(s)", x), np.maximum(x, 0.0))
    assert np.array_equal(apply("ml.relu_grad(s)", x), (x > 0).astype(np.float64))


def _pools(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n, c, h, w = x.shape
    tiles = x.reshape(n, c, h // k, k, w // k, k)
    return tiles.max(axis=(3, 5)), tiles.mean(axis=(3, 5))


@SETTINGS
@given(st.lists(floats(-1000.0, 1000.0), min_size=1, max_size=2 * 3 * 6 * 6), st.sampled_from([2, 3]))
def test_pooling_max_exact_with_ties_and_mean_within_a_truncation(draws: list[float], k: int) -> None:
    x = fixed(np.resize(np.array(draws), (2, 3, 6, 6)))
    x[0, 0, :k, :k] = x[0, 0, 0, 0]               # a window of ties
    x[1, 2] = -LIMIT + 1                          # a channel at the range's edge
    want_max, want_mean = _pools(x, k)
    assert np.array_equal(apply(f"ml.maxpool2d(s, {k})", x), want_max)
    check(apply(f"ml.avgpool2d(s, {k})", x), want_mean, want_mean, abs_tol=2 * UNIT + 2.0 ** -17 * np.abs(want_mean).max())


def test_pooling_rejects_a_window_that_does_not_divide_the_image() -> None:
    from veil.runtime.diagnostics import VeilError
    with pytest.raises(VeilError, match="must divide"):
        _program("ml.maxpool2d(s, 4)", (1, 1, 6, 6))


# ---- the same functions in MPC, under both protocols -----------------------------------------

MPC_CASES = [  # call, domain values, exact, bound
    ("ml.sigmoid(s)", np.linspace(-50, 50, 64), _sigmoid, {"abs_tol": 5e-3}),
    ("ml.sigmoid_precise(s)", np.linspace(-30, 30, 64), _sigmoid, {"abs_tol": 1e-3}),
    ("ml.exp(s)", np.linspace(-10, 8, 64), np.exp, {"rel": 1e-2}),
    ("ml.log(s)", np.geomspace(0.01, 10000, 64), np.log, {"abs_tol": 5e-3}),
    ("ml.reciprocal(s)", np.geomspace(0.01, 1000, 64), lambda v: 1 / v, {"rel": 1e-3}),
    ("ml.sqrt(s)", np.geomspace(0.01, 10000, 64), np.sqrt, {"rel": 1e-3}),
    ("ml.rsqrt(s)", np.geomspace(0.01, 10000, 64), lambda v: 1 / np.sqrt(v), {"rel": 1e-3}),
    ("ml.relu(s)", np.linspace(-1000, 1000, 64), lambda v: np.maximum(v, 0), {"abs_tol": 0.0}),
    ("ml.relu_grad(s)", np.concatenate([[0.0, UNIT, -UNIT], np.linspace(-5, 5, 61)]),
     lambda v: (v > 0).astype(float), {"abs_tol": 0.0}),
]


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
@pytest.mark.parametrize("call, grid, exact, bound", MPC_CASES, ids=[c[0] for c in MPC_CASES])
def test_functions_in_mpc_meet_their_bounds(call, grid, exact, bound, protocol):
    x = fixed(grid)
    src = (f'import ml\nparty alice, bob, carol\nx = input(alice, "x", shape=({x.size},))\n'
           f's = secret(x)\noutput({call}, "y", to=alice)\n')
    got = api.run(api.compile(src, protocol=protocol), {"alice": {"x": x}})["alice"]["y"]
    check(got, exact(x), x, **bound)


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
def test_softmax_and_pooling_in_mpc(protocol):
    rng = np.random.default_rng(2)
    x = fixed(rng.uniform(-20, 20, (4, 8)))
    src = ('import ml\nparty alice, bob, carol\nx = input(alice, "x", shape=(4, 8))\ns = secret(x)\n'
           'output(ml.softmax(s), "p", to=alice)\noutput(ml.maxpool2d(s.reshape((1, 2, 4, 4)), 2), "m", to=alice)\n')
    out = api.run(api.compile(src, protocol=protocol), {"alice": {"x": x}})["alice"]
    check(out["p"], _softmax(x, -1), x, abs_tol=1e-3)
    want = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out["m"], want)
