"""Random numbers: public seeded values equal plain numpy's (runtime/randomness.py); secret uniform
and normal tensors have the right distribution in emulation and under both protocols, and one
party's contribution alone says nothing about the result; seeded permutations drive a batch
order that indexes and slices private and secret data, as numpy does."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from veil.compiler import driver, emulate as emulator
from veil.compiler.ir import walk
from veil.runtime import api
from veil.runtime.diagnostics import ShapeErr, TypeErr
from veil.runtime.randomness import public_normal, public_permutations, public_uniform

HEAD = "party alice, bob, carol\n"
DEALER = 'pond(alice, bob, dealer=carol)'


def _emulate(src: str, seed: int | None = None, **kw) -> dict:
    prog = driver.front_end(HEAD + src, "r.mpc", **kw)
    return emulate_ring(prog, seed)


def emulate_ring(prog, seed):
    """Emulate a program without inputs, decoding its outputs (the api's decoding)."""
    outs = emulator.emulate(prog, {}, seed=seed)
    return {p: {n: np.asarray(api._decode(prog, p, n, v)) for n, v in named.items()} for p, named in outs.items()}


def test_public_seeded_values_are_numpys():
    a = (6.0 / (784 + 128)) ** 0.5
    src = ("a = (6.0 / (784 + 128)) ** 0.5\n"
           "w = random_uniform((30, 4), -a, a, seed=7)\noutput(w, to=alice)\n"
           "z = random_normal((50,), mean=1.0, std=2.0, seed=3)\noutput(z, to=alice)\n"
           "o = permutations(3, 9, seed=11)\noutput(o, to=alice)\n")
    got = _emulate(src)
    np.testing.assert_allclose(got["alice"]["w"], public_uniform(7, (30, 4), -a, a), atol=2 ** -16)
    np.testing.assert_allclose(got["alice"]["z"], public_normal(3, (50,), 1.0, 2.0), atol=2 ** -16)
    assert got["alice"]["o"].tolist() == public_permutations(11, 3, 9).tolist()
    assert all(sorted(row) == list(range(9)) for row in got["alice"]["o"].tolist())
    rows = public_permutations(11, 3, 9)
    assert len({tuple(r) for r in rows}) == 3  # independent rows, not one repeated
    np.testing.assert_array_equal(public_uniform(7, (3,)), np.random.default_rng(7).uniform(0, 1, 3))


def test_public_random_is_a_compile_time_constant():
    prog = driver.front_end(HEAD + "w = random_uniform((3,), seed=1)\noutput(w, to=alice)\n", "r.mpc")
    assert "draw" not in {op.opcode for op in walk(prog.body)}


@pytest.mark.parametrize("src, err, text", [
    ("w = random_uniform((3,), seed=-1)\n", TypeErr, "non-negative compile-time int"),
    ("w = random_uniform((3,), 1.0, 0.5)\n", TypeErr, "low < high"),
    ("w = random_normal((3,), std=-1.0)\n", TypeErr, "must not be negative"),
    ("o = permutations(2, 5)\n", TypeErr, "needs seed=S"),
    ("x = input(alice, 'x', shape=())\nw = random_uniform((3,), x, 2.0)\n", TypeErr, "compile-time number"),
    ("w = random_uniform((3,), sed=1)\n", TypeErr, "did you mean seed"),
])
def test_bad_random_arguments_are_positioned_errors(src, err, text):
    with pytest.raises(err, match=text) as info:
        driver.front_end(HEAD + src, "r.mpc")
    assert info.value.span is not None and info.value.span.line >= 2


UNIFORM = "u = random_uniform((N,), LOW, HIGH)\noutput(u, to=alice)\n"
NORMAL = "z = random_normal((N,), mean=MEAN, std=STD)\noutput(z, to=alice)\n"
PARAMS = "param N = 4000\nparam LOW = -0.5\nparam HIGH = 1.5\nparam MEAN = 1.0\nparam STD = 0.25\n"


def _check_uniform(u: np.ndarray, low: float, high: float) -> None:
    assert u.min() >= low and u.max() < high
    assert stats.kstest((u - low) / (high - low), "uniform").pvalue > 1e-4
    counts = np.histogram(u, bins=20, range=(low, high))[0]
    assert stats.chisquare(counts).pvalue > 1e-4


def _check_normal(z: np.ndarray, mean: float, std: float) -> None:
    n = z.size
    assert abs(z.mean() - mean) < 5 * std / np.sqrt(n)
    assert abs(z.std() / std - 1) < 0.06
    assert stats.kstest((z - mean) / std, "norm").pvalue > 1e-4  # Irwin-Hall(12) passes at this size
    assert np.abs(z - mean).max() <= 6 * std + 1e-3


def test_secret_uniform_and_normal_in_emulation():
    out = _emulate(PARAMS + UNIFORM + NORMAL, seed=5)["alice"]
    _check_uniform(out["u"], -0.5, 1.5)
    _check_normal(out["z"], 1.0, 0.25)


def test_emulation_is_reproducible_with_a_seed():
    one, two, other = (_emulate(PARAMS + UNIFORM, seed=s)["alice"]["u"] for s in (9, 9, 10))
    assert np.array_equal(one, two) and not np.array_equal(one, other)


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_secret_uniform_and_normal_in_mpc(protocol):
    c = api.compile(HEAD + PARAMS + UNIFORM + NORMAL, protocol=protocol)
    out = api.run(c)["alice"]
    _check_uniform(out["u"], -0.5, 1.5)
    _check_normal(out["z"], 1.0, 0.25)
    again = api.run(c)["alice"]["u"]
    assert not np.array_equal(out["u"], again)  # fresh randomness on every run
    assert c.cost.comparisons > 0 and c.cost.rounds > 0  # the wrap-around comparisons are in --stats


def test_one_contribution_alone_is_independent_of_the_result(monkeypatch):
    """With every other party's draw fixed, the result follows alice's draw uniformly; with alice's
    draw fixed (two different ways), the result is uniform all the same, uncorrelated with it."""
    prog = driver.front_end(HEAD + "param N = 4000\n" + "u = random_uniform((N,))\noutput(u, to=alice)\n", "r.mpc")
    draws = [op for op in walk(prog.body) if op.opcode == "draw"]
    assert [op.attrs["party"] for op in draws] == ["alice", "bob", "carol"]
    F, n = prog.frac_bits, 4000
    rng = np.random.default_rng(1)

    def run_with(fixed: dict[int, np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        seen: list[np.ndarray] = []

        def draw(shape, bits, _rng):
            k = len(seen) % 3
            seen.append(fixed[k] if k in fixed else rng.integers(0, 1 << bits, size=tuple(shape), dtype=np.uint64))
            return seen[-1]
        monkeypatch.setattr(emulator, "private_draw", draw)
        return seen, emulate_ring(prog, None)["alice"]["u"]

    top = np.full(n, (1 << F) - 1, np.uint64)
    _, u = run_with({1: top, 2: top})  # bob and carol draw the largest value; alice alone is random
    _check_uniform(u, 0.0, 1.0)
    for alice in (np.zeros(n, np.uint64), rng.integers(0, 1 << F, n, dtype=np.uint64)):
        seen, u = run_with({0: alice})
        _check_uniform(u, 0.0, 1.0)
        assert abs(np.corrcoef(alice.astype(float) + rng.normal(0, 1e-9, n), u)[0, 1]) < 0.07
    seen, u = run_with({})
    for mine in seen:
        assert abs(np.corrcoef(mine.astype(float), u)[0, 1]) < 0.07
    total = sum(int(x[0]) for x in seen)
    assert u[0] == (total % (1 << F)) / 2 ** F  # the sum of the contributions, wrapped once per threshold


def test_secret_random_inside_a_loop_draws_fresh_values():
    src = ("param N = 200\nacc = zeros((3, N))\nfor i in range(3):\n"
           "    acc = acc + 0.0\n    acc = concat([acc[1:], reshape(random_uniform((N,)), (1, N))])\n"
           "output(acc, to=alice)\n")
    rows = _emulate(src, seed=1)["alice"]["acc"]
    assert not np.array_equal(rows[0], rows[1]) and not np.array_equal(rows[1], rows[2])


BATCHES = """
param N = 12
param B = 3
param EPOCHS = 2
param SEED = 5
x = input(alice, "x", shape=(N, 2))
xs = secret(x)
order = permutations(EPOCHS, N // B, seed=SEED)
fixed = [2, 0, 3, 1]
acc = zeros((B, 2))
acc2 = zeros((B, 2))
acc3 = zeros((B, 2))
for epoch in range(EPOCHS):
    for i in range(N // B):
        j = order[epoch, i]
        acc = acc * 0.5 + x[j * B:(j + 1) * B]
        acc2 = acc2 * 0.5 + xs[j * B:(j + 1) * B]
        k = fixed[i]
        m = (i * 3 + epoch) % 4
        acc3 = acc3 + xs[k * B:k * B + B] * (epoch + 1) + x[m * B:(m + 1) * B]
output(acc, to=alice)
output(acc2, to=alice)
output(acc3, to=bob)
"""


def _batches_numpy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order, fixed = public_permutations(5, 2, 4), [2, 0, 3, 1]
    acc, acc3 = np.zeros((3, 2)), np.zeros((3, 2))
    for epoch in range(2):
        for i in range(4):
            j, k, m = order[epoch, i], fixed[i], (i * 3 + epoch) % 4
            acc = acc * 0.5 + x[j * 3:(j + 1) * 3]
            acc3 = acc3 + x[k * 3:k * 3 + 3] * (epoch + 1) + x[m * 3:(m + 1) * 3]
    return acc, acc3


@pytest.mark.parametrize("protocol", [None, DEALER])
def test_batches_in_a_permuted_order_match_numpy(protocol):
    x = np.random.default_rng(2).integers(-40, 40, (12, 2)) / 8
    acc, acc3 = _batches_numpy(x)
    c = api.compile(HEAD + BATCHES, protocol=protocol)
    for out in (api.emulate(c, {"alice": {"x": x}}), api.run(c, {"alice": {"x": x}})):
        np.testing.assert_allclose(out["alice"]["acc"], acc, atol=1e-3)
        np.testing.assert_allclose(out["alice"]["acc2"], acc, atol=1e-3)
        np.testing.assert_allclose(out["bob"]["acc3"], acc3, atol=1e-3)


def test_batches_in_a_permuted_order_with_veil_local(tmp_path):
    from veil_cli import veil
    x = np.random.default_rng(3).integers(-40, 40, (12, 2)) / 8
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "b.mpc").write_text(HEAD + BATCHES)
    done = veil("local", "b.mpc", "--input", "alice.x=x.npy", "--output-dir", "out", cwd=tmp_path, timeout=120)
    assert done.code == 0, done.err
    acc, acc3 = _batches_numpy(x)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "alice" / "acc2.npy"), acc, atol=1e-3)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "bob" / "acc3.npy"), acc3, atol=1e-3)


@pytest.mark.parametrize("body, err, text", [
    ("    j = order[0, i]\n    y = x[j * 4:(j + 1) * 4]\n", ShapeErr, "runs out of bounds"),
    ("    j = order[0, i]\n    y = x[j:2 * j]\n", TypeErr, "length depends"),
    ("    j = reveal(secret(x))[i]\n    y = x[j:j + 1]\n", TypeErr, "times a constant plus a constant"),
])
def test_run_time_slices_are_checked_at_compile_time(body, err, text):
    src = ("x = input(alice, 'x', shape=(12,), dtype=int)\norder = permutations(1, 4, seed=1)\n"
           "for i in range(4):\n" + body)
    with pytest.raises(err, match=text):
        driver.front_end(HEAD + src, "r.mpc")


def test_a_literal_list_indexed_by_a_loop_variable():
    src = "order = [2, 0, 1]\nacc = 0\nfor i in range(3):\n    acc = acc * 10 + order[i]\noutput(acc, to=alice)\n"
    assert _emulate(src)["alice"]["acc"].tolist() == 201
