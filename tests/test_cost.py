"""The cost report of optimized programs: round batching, truncation counts, and never worse than
-O0 on the example programs, with the same results (emulated and run as MPC)."""
from __future__ import annotations


import numpy as np
import pytest

from veil.runtime import api

HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
ULP = 2.0 ** -16


def secrets(n: int, shape: str = "(8,)") -> str:
    """n secret inputs a0..a{n-1}, spread over the three parties."""
    parties = ["alice", "bob", "carol"]
    return "".join(f'a{i} = secret(input({parties[i % 3]}, "a{i}", shape={shape}))\n' for i in range(n))


def cost(src: str, optimize: bool = True, params=None):
    return api.compile(HEAD + src, params, optimize=optimize).cost


def test_independent_products_share_their_rounds():
    one = cost(secrets(2) + "p = a0 * a1\noutput(p, to=alice)\n")
    k = cost(secrets(6) + "".join(f"p{i} = a{i} * a{(i + 1) % 6}\noutput(p{i}, to=alice)\n" for i in range(6)))
    assert k.rounds == one.rounds
    assert k.multiplications == 6 * one.multiplications


def test_dependent_products_cost_at_most_their_number_of_rounds():
    base = cost(secrets(2) + "output(a0, to=alice)\n")
    one = cost(secrets(2) + "p = a0 * a1\noutput(p, to=alice)\n")
    four = cost(secrets(2) + "p = a0 * a1\np = p * a1\np = p * a0\np = p * a1\noutput(p, to=alice)\n")
    per_product = one.rounds - base.rounds
    assert per_product >= 1
    assert four.rounds - base.rounds <= 4 * per_product


def test_a_dot_product_truncates_once_and_stays_fused():
    src = secrets(2, "(50,)") + "s = sum(a0 * a1)\noutput(s, to=alice)\n"
    opt, naive = cost(src), cost(src, optimize=False)
    assert naive.truncations == 50 and opt.truncations == 1
    assert opt.rounds <= naive.rounds
    assert sum(opt.bytes_sent.values()) < sum(naive.bytes_sent.values())


def test_matmul_truncates_each_output_element_once():
    src = (HEAD + 'a = secret(input(alice, "a", shape=(4, 5)))\nb = secret(input(bob, "b", shape=(5, 3)))\n'
           "c = a @ b\noutput(c, to=alice)\n")
    c = api.compile(src).cost
    assert c.truncations == 12 and c.multiplications == 12


def test_a_sum_of_products_truncates_once_per_element():
    n = 16
    src = (HEAD + "".join(f'{v} = secret(input({p}, "{v}", shape=({n},)))\n'
                          for v, p in (("a", "alice"), ("b", "bob"), ("c", "carol")))
           + "d = a * b + c * a - b * c\noutput(d, to=alice)\n")
    opt, naive = api.compile(src).cost, api.compile(src, optimize=False).cost
    assert naive.truncations == 3 * n and opt.truncations == n
    assert opt.multiplications == naive.multiplications == 3 * n
    assert sum(opt.bytes_sent.values()) < sum(naive.bytes_sent.values())
    # no price in rounds: the products stay in additive shares until their one truncation
    assert opt.rounds == naive.rounds


def test_scaling_by_a_public_integer_is_free():
    c = api.compile(HEAD + secrets(1) + "b = a0 * 3\nc = 2 * b\noutput(c, to=alice)\n")
    assert c.cost.multiplications == 0 and c.cost.truncations == 0
    muls = [op for op in c.prog.body.ops if op.opcode == "mul"]
    assert muls and all(op.ins[1].type.dtype == "int" for op in muls)
    assert not any(op.opcode == "trunc" for op in c.prog.body.ops)


def test_duplicate_work_is_computed_once():
    src = secrets(2) + "p = a0 * a1\nq = a1 * a0\nr = a0 * a1 + 0.0\noutput(p + q + r, 'o', to=alice)\n"
    opt, naive = cost(src), cost(src, optimize=False)
    assert opt.multiplications == 8 and naive.multiplications == 24
    assert opt.rounds <= naive.rounds


# ---- the example programs ------------------------------------------------------------------
SMALL = {
    "programs/fraud_detection.mpc": {"N": 64, "EPOCHS": 1, "BATCH": 32},
    "programs/bench/logreg_mnist.mpc": {"N": 8, "EPOCHS": 1, "BATCH": 4},
    "programs/bench/mlp_mnist.mpc": {"N": 4, "EPOCHS": 1, "BATCH": 4},
}


def mnist_inputs(rng, n: int, mlp: bool) -> dict:
    """MNIST-shaped random data: pixels in [0, 1], one-hot labels, small initial weights."""
    labels = np.eye(10)[rng.integers(0, 10, size=n)]
    alice = {"images": rng.random((n, 784))}
    if mlp:
        for name, shape in (("w1", (784, 128)), ("w2", (128, 128)), ("w3", (128, 10))):
            alice[name] = rng.uniform(-1, 1, size=shape) / np.sqrt(shape[0])
    return {"alice": alice, "bob": {"labels": labels}}


def inputs_for(path: str, rng) -> dict:
    if "fraud" in path:
        return {}  # the bundled data (head=True takes the first N rows)
    return mnist_inputs(rng, SMALL[path]["N"], "mlp" in path)


@pytest.mark.parametrize("path", list(SMALL))
def test_optimized_example_never_costs_more(path):
    for params in (SMALL[path], None):
        opt, naive = api.compile(path, params).cost, api.compile(path, params, optimize=False).cost
        assert opt.rounds <= naive.rounds
        assert opt.truncations <= naive.truncations
        assert opt.multiplications <= naive.multiplications
        for p in naive.bytes_sent:
            assert opt.bytes_sent[p] <= naive.bytes_sent[p]


@pytest.mark.parametrize("path", list(SMALL))
def test_optimized_example_emulates_like_unoptimized(path, rng):
    inputs = inputs_for(path, rng)
    opt = api.emulate(api.compile(path, SMALL[path]), inputs)
    naive = api.emulate(api.compile(path, SMALL[path], optimize=False), inputs)
    for party, outs in naive.items():
        assert outs.keys() == opt[party].keys()
        for name, v in outs.items():
            assert np.all(np.abs(opt[party][name] - v) <= 64 * ULP * (1 + np.abs(v))), (party, name)
    assert any(outs for outs in opt.values())


def sigmoid_poly3(z):
    return 0.5 + 0.15012 * z - 0.0015930 * z ** 3


def numpy_training(path: str, inputs: dict) -> dict:
    """The MNIST programs' training in float64, for comparison."""
    x, y = inputs["alice"]["images"], inputs["bob"]["labels"]
    p = SMALL[path]
    steps = [(e, i) for e in range(p["EPOCHS"]) for i in range(p["N"] // p["BATCH"])]
    B = p["BATCH"]
    if "logreg" in path:
        w, b, lr = np.zeros((784, 10)), np.zeros(10), 0.1
        for _e, i in steps:
            xi, yi = x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]
            g = sigmoid_poly3(xi @ w + b) - yi
            w, b = w - lr / B * (xi.T @ g), b - lr / B * g.sum(axis=0)
        return {"w": w, "b": b}
    a = inputs["alice"]
    w1, w2, w3, lr = a["w1"], a["w2"], a["w3"], 0.01
    b1, b2, b3 = np.zeros(128), np.zeros(128), np.zeros(10)
    for _e, i in steps:
        xi, yi = x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]
        z1 = xi @ w1 + b1
        h1 = z1 * z1
        z2 = h1 @ w2 + b2
        h2 = z2 * z2
        d3 = (h2 @ w3 + b3 - yi) * (2.0 / B)
        d2 = (d3 @ w3.T) * (2 * z2)
        d1 = (d2 @ w2.T) * (2 * z1)
        w3, b3 = w3 - lr * (h2.T @ d3), b3 - lr * d3.sum(axis=0)
        w2, b2 = w2 - lr * (h1.T @ d2), b2 - lr * d2.sum(axis=0)
        w1, b1 = w1 - lr * (xi.T @ d1), b1 - lr * d1.sum(axis=0)
    return {"w1": w1, "w2": w2, "w3": w3, "b1": b1, "b2": b2, "b3": b3}


@pytest.mark.parametrize("path", ["programs/bench/logreg_mnist.mpc", "programs/bench/mlp_mnist.mpc"])
def test_mnist_programs_train_like_numpy(path, rng):
    inputs = inputs_for(path, rng)
    got = api.emulate(api.compile(path, SMALL[path]), inputs)["alice"]
    want = numpy_training(path, inputs)
    assert got.keys() == want.keys()
    for name, v in want.items():
        np.testing.assert_allclose(got[name], v, atol=2e-3, err_msg=name)
    # the updates themselves, which are small for the network, agree too
    key, init = ("w", 0.0) if "w" in want else ("w3", inputs["alice"]["w3"])
    step = want[key] - init
    assert np.abs(step).max() > 1e-3
    np.testing.assert_allclose(got[key] - init, step, atol=0.1 * np.abs(step).max())


@pytest.mark.parametrize("path", ["programs/bench/logreg_mnist.mpc", "programs/fraud_detection.mpc"])
def test_optimized_example_runs_like_its_emulation(path, rng):
    c = api.compile(path, SMALL[path])
    inputs = inputs_for(path, rng)
    emu, mpc = api.emulate(c, inputs), api.run(c, inputs)
    for party, outs in emu.items():
        for name, v in outs.items():
            assert np.all(np.abs(mpc[party][name] - v) <= 64 * ULP * (1 + np.abs(v))), (party, name)


def test_lazy_truncation_runs_like_its_emulation(rng):
    src = (HEAD + secrets(3, "(6,)") + "d = a0 * a1 + a2 * a0 - a1 * a2\ns = sum(a0 * a1)\n"
           "e = sum(a0 * a0 * 0.25, axis=0)\noutput(d, to=alice)\noutput(s, to=bob)\noutput(e, to=carol)\n")
    c = api.compile(src)
    inputs = {p: {f"a{i}": rng.normal(size=6)} for i, p in enumerate(["alice", "bob", "carol"])}
    emu, mpc = api.emulate(c, inputs), api.run(c, inputs)
    for party, outs in emu.items():
        for name, v in outs.items():
            assert np.all(np.abs(mpc[party][name] - v) <= 8 * ULP * (1 + np.abs(v))), (party, name)
    a = [inputs[p][f"a{i}"] for i, p in enumerate(["alice", "bob", "carol"])]
    np.testing.assert_allclose(mpc["alice"]["d"], a[0] * a[1] + a[2] * a[0] - a[1] * a[2], atol=1e-3)
    np.testing.assert_allclose(mpc["bob"]["s"], np.sum(a[0] * a[1]), atol=1e-3)


def test_power_of_two_scaling_costs_no_truncation_of_its_own():
    """(LR / BATCH) * (x.T @ g) with LR/BATCH = 2^-8: one matmul truncated by 24 bits, not 16 then 8+16."""
    src = (HEAD + 'a = secret(input(alice, "a", shape=(8, 4)))\nb = secret(input(bob, "b", shape=(8, 1)))\n'
           'c = (0.5 / 128) * (a.T @ b)\noutput(c, to=alice)\n')
    opt, naive = api.compile(src), api.compile(src, optimize=False)
    assert naive.cost.truncations == 8 and opt.cost.truncations == 4
    # the naive second truncation takes the first one pending (rep3's trunc_pending): 1 round more
    assert opt.cost.rounds == naive.cost.rounds - 1
    rng = np.random.default_rng(5)
    inputs = {"alice": {"a": rng.normal(size=(8, 4))}, "bob": {"b": rng.normal(size=(8, 1))}}
    want = (inputs["alice"]["a"].T @ inputs["bob"]["b"]) / 256
    for c in (opt, naive):
        np.testing.assert_allclose(api.run(c, inputs)["alice"]["c"], want, atol=3 * 2.0 ** -16)


def test_the_cost_report_gives_the_rounds_of_each_function_call():
    src = (secrets(2) + "def f(v):\n    return v * v * v\n\n\n"
           "acc = a0\nfor i in range(5):\n    acc = f(acc) + a1\noutput(f(a0), \"y\", to=alice)\noutput(acc, to=alice)\n")
    c = cost(src).as_dict()
    calls = {d["at"]: d for d in c["calls"]}
    inside, outside = calls["<string>:11:11"], calls["<string>:12:8"]
    assert inside["call"] == outside["call"] == "f"
    assert (inside["times"], outside["times"]) == (5, 1)
    assert inside["rounds"] == 5 * outside["rounds"] and outside["rounds"] >= 2  # two products in sequence
    assert inside["rounds"] <= c["rounds"]
