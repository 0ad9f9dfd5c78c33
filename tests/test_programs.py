"""The shipped programs: each runs with `veil local programs/NAME.mpc` and no other argument on its
bundled data (the MNIST ones take the real files: tests/test_mnist.py), under its own protocol and
under dealer2 with its own compute parties, with the results of the emulator and of plain numpy;
secure aggregation discloses only what its header says."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from veil.compiler import driver
from veil.compiler.disclosure import disclosure
from veil_cli import veil

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "programs"
DATA = PROGRAMS / "data"
SHIPPED = sorted(p.name for p in PROGRAMS.glob("*.mpc") if not p.name.startswith("mnist_"))
DEALER = {"secure_aggregation.mpc": "dealer2(server1, server2, dealer=server3)",
          "private_inference.mpc": "dealer2(model_owner, client, dealer=server)",
          "fraud_detection.mpc": "dealer2(alice, bob, dealer=carol)"}


def _load(out: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: {f.stem: np.load(f) for f in p.glob("*.npy")} for p in out.iterdir() if p.is_dir()}


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_program_has_a_dealer2_spelling():
    assert set(SHIPPED) == set(DEALER), "add the program's dealer2 line to DEALER"


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "fraud_detection.mpc"])  # fraud: test_fraud.py
def test_runs_with_no_argument_under_both_protocols_as_emulated(name, tmp_path):
    runs = {}
    for label, extra in (("own", []), ("dealer2", ["--protocol", DEALER[name]])):
        done = veil("local", str(PROGRAMS / name), *extra, "--output-dir", str(tmp_path / label), "--quiet",
                    cwd=tmp_path, timeout=240)
        assert done.code == 0, done.err[-2000:]
        runs[label] = _load(tmp_path / label)
    done = veil("emulate", str(PROGRAMS / name), "--output-dir", str(tmp_path / "emu"), cwd=tmp_path, timeout=240)
    assert done.code == 0, done.err[-2000:]
    emu = _load(tmp_path / "emu")
    for label, got in runs.items():
        assert got.keys() == emu.keys(), label
        for party, outs in emu.items():
            assert got[party].keys() == outs.keys(), (label, party)
            for k, v in outs.items():
                np.testing.assert_allclose(got[party][k], v, atol=2e-3, err_msg=f"{label} {party}.{k}")


def test_secure_aggregation_trains_what_plain_federated_averaging_trains(tmp_path):
    _module(DATA / "make_federated_data.py").main(str(tmp_path / "gen"))
    for k in (1, 2, 3):
        assert (tmp_path / "gen" / f"owner{k}.csv").read_bytes() == (DATA / "federated" / f"owner{k}.csv").read_bytes()
    tables = [np.loadtxt(DATA / "federated" / f"owner{k}.csv", delimiter=",") for k in (1, 2, 3)]
    w = np.zeros((11, 1))
    means = []
    for _ in range(30):
        grads = []
        for t in tables:
            x = np.c_[t[:, :10], np.ones(len(t))]
            grads.append(x.T @ (1 / (1 + np.exp(-(x @ w))) - t[:, 10:]) / len(t))
        means.append(sum(grads) / 3)
        w = w - 1.0 * means[-1]
    done = veil("local", str(PROGRAMS / "secure_aggregation.mpc"), "--output-dir", str(tmp_path / "o"), "--quiet",
                cwd=tmp_path, timeout=240)
    assert done.code == 0, done.err[-2000:]
    out = _load(tmp_path / "o")["model_owner"]
    np.testing.assert_allclose(out["model"], w, atol=0.03)      # ml.sigmoid is within 3.3e-3 of the logistic
    np.testing.assert_allclose(out["mean"], np.stack(means), atol=0.01)
    assert 0.8 < float(out["accuracy"]) <= 1.0


def test_secure_aggregation_owners_share_only_gradients_and_the_model_owner_learns_only_the_mean():
    path = PROGRAMS / "secure_aggregation.mpc"
    prog = driver.front_end(path.read_text(), str(path))
    d = disclosure(prog)
    for owner in ("owner1", "owner2", "owner3"):
        shares = d.shares[owner]
        # each round: its gradient (11 numbers); at the end: its count of right answers. Never its rows.
        assert sorted((i.type, i.times) for i in shares) == [("fix[11x1]", 30), ("int[scalar]", 1)], shares
        assert all(i.type == "fix[11x1]" for i in d.learns[owner]), d.learns[owner]   # only the model
    learned = {i.what for i in d.learns["model_owner"] if i.what.startswith("output")}
    assert learned == {"output mean", "output model", "output accuracy"}, d.learns["model_owner"]
    for server in ("server1", "server2", "server3"):
        assert d.shares[server] == []
        assert all(i.type == "fix[11x1]" for i in d.learns[server]), d.learns[server]   # the public model only


def test_private_inference_predicts_what_numpy_predicts_and_only_the_client_learns(tmp_path):
    folder = DATA / "inference"
    _module(DATA / "make_inference_data.py").main(str(tmp_path / "gen"))
    for f in ("w1", "b3", "images"):
        np.testing.assert_allclose(np.load(tmp_path / "gen" / f"{f}.npy"), np.load(folder / f"{f}.npy"), atol=1e-5)
    done = veil("local", str(PROGRAMS / "private_inference.mpc"), "--output-dir", str(tmp_path / "o"), "--quiet",
                cwd=tmp_path, timeout=240)
    assert done.code == 0, done.err[-2000:]
    out = _load(tmp_path / "o")
    assert set(out) == {"client"} and set(out["client"]) == {"predictions"}
    w = {k: np.load(folder / f"{k}.npy").astype(np.float64) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
    x = np.load(folder / "images.npy").reshape(-1, 784) / 255.0
    h = np.maximum(x @ w["w1"] + w["b1"], 0)
    h = np.maximum(h @ w["w2"] + w["b2"], 0)
    logits = h @ w["w3"] + w["b3"]
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-2          # fixed point may flip a near tie
    np.testing.assert_array_equal(out["client"]["predictions"][clear], logits.argmax(axis=1)[clear])
    assert np.mean(out["client"]["predictions"] == np.load(folder / "labels.npy")) > 0.9
