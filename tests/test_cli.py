"""The `veil` command line (LANGUAGE.md §11), run as real subprocesses on 127.0.0.1."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from veil.runtime.net import free_ports
from veil_cli import FRAUD, PARTIES, Procs, compile_fraud, parties_toml, run_parties, veil

N, EPOCHS = 256, 1
DEFINES = (f"N={N}", f"EPOCHS={EPOCHS}")


def _line_of(prefix: str) -> int:
    """The line of the fraud program that starts (after indentation) with `prefix`."""
    lines = Path(FRAUD).read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.strip().startswith(prefix))


FOR_EPOCH, FOR_BATCH = _line_of("for epoch"), _line_of("for i in")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """A small build of the fraud program and its emulated outputs, shared by the run tests."""
    root = tmp_path_factory.mktemp("small")
    build = compile_fraud(root, "build", *DEFINES)
    done = veil("emulate", FRAUD, "-D", DEFINES[0], "-D", DEFINES[1], "--output-dir", "emu", cwd=root)
    assert done.code == 0, done.err
    return {"build": build, "emu": root / "emu", "manifest": json.loads((build / "manifest.json").read_text())}


def assert_trained(out: Path, small: dict) -> None:
    """Every party's outputs are there and alice's model is the emulator's, within truncation error."""
    w = np.load(out / "alice" / "w.npy")
    assert w.shape == (32, 1)
    tol = 6 * (N // 128) * EPOCHS * 2.0 ** -16   # see test_fraud.weight_tolerance
    np.testing.assert_allclose(w, np.load(small["emu"] / "alice" / "w.npy"), rtol=0, atol=tol)
    assert float(np.load(out / "alice" / "accuracy.npy")) == float(np.load(out / "bob" / "accuracy.npy"))
    assert not (out / "carol").exists()  # carol receives nothing


# ---- compile ---------------------------------------------------------------------------------

def test_compile_json_prints_only_the_cost_object(tmp_path: Path) -> None:
    done = veil("compile", FRAUD, "-D", "N=1024", "-D", "EPOCHS=3", "--json", "-o", "b", cwd=tmp_path)
    assert done.code == 0, done.err
    cost = json.loads(done.out)          # the whole of stdout is one JSON object
    assert isinstance(cost, dict)
    assert isinstance(cost["rounds"], int) and cost["rounds"] > 0
    assert set(cost["bytes_sent"]) == set(PARTIES)
    assert all(isinstance(v, int) and v > 0 for v in cost["bytes_sent"].values())
    for key in ("multiplications", "truncations", "comparisons"):
        assert isinstance(cost[key], int) and cost[key] >= 0
    assert cost["multiplications"] > 0 and cost["truncations"] > 0
    loops = {lp["line"]: lp for lp in cost["loops"]}
    epoch, batch = FOR_EPOCH, FOR_BATCH
    assert set(loops) == {epoch, batch}               # `for epoch` and `for i` in the program
    assert loops[epoch]["trips"] == 3 and loops[batch]["trips"] == 1024 // 128
    assert all(isinstance(lp["rounds"], int) and lp["rounds"] > 0 for lp in cost["loops"])
    assert loops[epoch]["rounds"] >= loops[batch]["trips"] * loops[batch]["rounds"]
    assert cost["rounds"] >= loops[epoch]["trips"] * loops[epoch]["rounds"]
    assert cost["comparisons"] > 0  # the default sigmoid is piecewise
    assert (tmp_path / "b" / "manifest.json").exists()


def test_compile_stats_emit_ir_and_O0(tmp_path: Path) -> None:
    with Procs(tmp_path) as procs:
        procs.start("stats", "compile", FRAUD, "-D", "N=512", "--stats", "-o", "b1")
        procs.start("ir", "compile", FRAUD, "-D", "N=512", "--emit-ir", "-o", "b2")
        procs.start("O0", "compile", FRAUD, "-D", "N=512", "--emit-ir", "-O0", "-o", "b3")
        res = procs.finish_all(60)
    for r in res.values():
        assert r.code == 0, r.err
    table = res["stats"].out
    for label in ("rounds", "bytes sent alice", "bytes sent bob", "bytes sent carol", "multiplications",
                  "truncations", "comparisons", f"loop at line {FOR_EPOCH}: 20 trips", f"loop at line {FOR_BATCH}: 4 trips"):
        assert label in table, table
    for key in ("ir", "O0"):
        ir = res[key].out
        assert "loop(" in ir and "input()" in ir and "trunc" in ir, ir[:500]
        assert (tmp_path / ("b2" if key == "ir" else "b3") / "carol.bc").exists()
    n_ops = {k: len(re.findall(r"^\s*%\d+", res[k].out, re.M)) for k in ("ir", "O0")}
    assert n_ops["O0"] >= n_ops["ir"] > 10


def test_compile_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mpc"
    bad.write_text("party alice, bob, carol\nprotocol rep3(alice, bob, carol)\nx = undefined_name + 1\n")
    done = veil("compile", bad, cwd=tmp_path)
    assert done.code == 2
    assert "bad.mpc:3" in done.err and "Traceback" not in done.err
    done = veil("compile", "nope.mpc", cwd=tmp_path)
    assert done.code == 2 and "nope.mpc" in done.err


# ---- inspect, keygen ------------------------------------------------------------------------

def test_inspect_prints_one_partys_bytecode(small: dict, tmp_path: Path) -> None:
    done = veil("inspect", small["build"], "--party", "carol", cwd=tmp_path)
    assert done.code == 0, done.err
    assert done.out.startswith("== carol (")
    assert "== alice" not in done.out and "kernel." in done.out and "loop" in done.out
    assert re.search(r"; fraud_detection\.mpc:\d+:\d+", done.out)
    every = veil("inspect", small["build"], cwd=tmp_path)
    assert every.code == 0 and all(f"== {p} (" in every.out for p in PARTIES)


def test_keygen(tmp_path: Path) -> None:
    done = veil("keygen", "--parties", "alice,bob,carol", "-o", "keys", cwd=tmp_path)
    assert done.code == 0, done.err
    names = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert names == sorted(["ca.key", "ca.pem"] + [f"{p}.{e}" for p in PARTIES for e in ("key", "pem")])
    assert (tmp_path / "keys" / "alice.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert veil("keygen", "--parties", "alice", cwd=tmp_path).code == 2


# ---- running -------------------------------------------------------------------------------

def test_run_by_hand_in_any_order_with_toml(small: dict, tmp_path: Path) -> None:
    config = parties_toml(tmp_path / "parties.toml")
    with Procs(tmp_path) as procs:
        run_parties(procs, small["build"], config, "--connect-timeout", "20", parties=["carol", "alice"])
        time.sleep(1.0)  # bob starts a second late: the others wait for him
        run_parties(procs, small["build"], config, "--connect-timeout", "20", parties=["bob"])
        res = procs.finish_all(60)
    for p, r in res.items():
        assert r.code == 0, f"{p}: {r.err}"
    assert "alice: wrote out/alice/w.npy" in res["alice"].out
    assert res["carol"].out == ""
    assert_trained(tmp_path / "out", small)


def test_run_with_tf_encrypted_json_config(small: dict, tmp_path: Path) -> None:
    ports = free_ports(3)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({p: f"127.0.0.1:{port}" for p, port in zip(PARTIES, ports)}))
    with Procs(tmp_path) as procs:
        run_parties(procs, small["build"], config, "--connect-timeout", "20")
        res = procs.finish_all(60)
    assert all(r.code == 0 for r in res.values()), {p: r.err for p, r in res.items()}
    assert_trained(tmp_path / "out", small)


def test_run_over_tls(small: dict, tmp_path: Path) -> None:
    assert veil("keygen", "--parties", "alice,bob,carol", "-o", "keys", cwd=tmp_path).code == 0
    config = parties_toml(tmp_path / "parties.toml", tls_dir=tmp_path / "keys")
    with Procs(tmp_path) as procs:
        run_parties(procs, small["build"], config, "--connect-timeout", "20")
        res = procs.finish_all(60)
    assert all(r.code == 0 for r in res.values()), {p: r.err for p, r in res.items()}
    assert_trained(tmp_path / "out", small)


def test_local_stats_measure_what_the_compiler_predicts(small: dict, tmp_path: Path) -> None:
    done = veil("local", small["build"], "--stats", "--output-dir", "out", cwd=tmp_path)
    assert done.code == 0, done.err
    assert "alice.w [32, 1] = [" in done.out
    measured_part, predicted_part = done.out.split("measured", 1)[1].split("predicted by the compiler", 1)
    row = re.compile(r"^\s+(alice|bob|carol)\s+(\d+)\s+([\d,]+)", re.M)
    measured = {p: (int(r), int(b.replace(",", ""))) for p, r, b in row.findall(measured_part)}
    predicted = {p: (int(r), int(b.replace(",", ""))) for p, r, b in row.findall(predicted_part)}
    cost = small["manifest"]["cost"]
    expected = {p: (cost["party_rounds"][p], cost["bytes_sent"][p]) for p in PARTIES}
    assert measured == expected
    assert predicted == expected
    assert f"rounds: {cost['rounds']} scheduled, {cost['critical_rounds']} on the critical path" in done.out
    assert_trained(tmp_path / "out", small)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="counts threads through Linux's /proc on a machine with 2+ cores")
@pytest.mark.parametrize("given, threads", [(None, 1), ("2", 2)])
def test_a_veil_process_starts_no_blas_threads_unless_asked(given, threads) -> None:
    """The CLI keeps OpenBLAS to the calling thread (its pool only spin-waits in a party
    process); an explicit OPENBLAS_NUM_THREADS is the user's and wins."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = "import os, veil.runtime.cli, numpy; print(len(os.listdir('/proc/self/task')))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == threads
