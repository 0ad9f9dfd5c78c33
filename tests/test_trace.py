"""--trace: each party's Chrome-trace JSON loads, its spans are well formed and placed (source
positions, sends and waits inside their rounds), and it has exactly one span per measured round."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np

from veil.runtime import api, bytecode
from veil.runtime.api_inputs import encode_inputs, load_inputs
from veil.runtime.mesh import make_local_meshes
from veil.runtime.session import execute
from veil.runtime.trace import TracedVM, trace_path_for
from veil.runtime.vm import VM
from veil_cli import PARTIES, veil

PROGRAM = """party alice, bob, carol
protocol rep3(alice, bob, carol)
param R = 3
x = input(alice, "x", shape=(8, 4))
w = input(bob, "w", shape=(4, 1))
h = x @ w
for i in range(R):
    h = h * h + 0.5 * h
output(h, to=alice)
output(sum(h), "total", to=bob)
"""
POS = re.compile(r"^[^ :]+:\d+:\d+")


def check_trace(doc: dict, party: str, rounds: int) -> None:
    """The checks every party's file must pass; `rounds` is what the party measured."""
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    names = [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert len(names) == 1 and names[0]["args"]["name"] == party
    pid = names[0]["pid"]
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all(e["pid"] == pid and isinstance(e["tid"], int) for e in spans)
    assert all(isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and isinstance(e["name"], str) for e in spans)
    by_cat: dict[str, list[dict]] = {}
    for e in spans:
        by_cat.setdefault(e["cat"], []).append(e)
    assert set(by_cat) <= {"round", "kernel", "op", "send", "wait"}
    round_spans = by_cat.get("round", [])
    assert len(round_spans) == rounds == doc["otherData"]["rounds"]
    assert [e["args"]["round"] for e in round_spans] == list(range(1, rounds + 1))
    for a, b in zip(round_spans, round_spans[1:]):  # in order, never overlapping
        assert a["ts"] + a["dur"] <= b["ts"] + 1e-3
    for e in by_cat.get("kernel", []) + by_cat.get("op", []):
        assert POS.search(e["args"]["pos"]), e
    assert len(by_cat.get("wait", [])) == rounds
    for e in by_cat.get("wait", []) + by_cat.get("send", []):  # inside some round
        assert any(r["ts"] - 1e-3 <= e["ts"] and e["ts"] + e["dur"] <= r["ts"] + r["dur"] + 1e-3 for r in round_spans), e


def test_trace_path_inserts_the_party():
    assert trace_path_for("/t/trace.json", "alice") == "/t/trace.alice.json"
    assert trace_path_for("/t/run", "bob") == "/t/run.bob.json"


def test_in_process_trace_has_one_span_per_round(tmp_path: Path, rng):
    c = api.compile(PROGRAM)
    inputs = encode_inputs(c.manifest, load_inputs(c.manifest, {"alice": {"x": rng.normal(size=(8, 4)) / 4},
                                                                 "bob": {"w": rng.normal(size=(4, 1)) / 4}}))

    async def main():
        meshes = make_local_meshes(c.manifest["parties"])
        return await asyncio.gather(*(
            execute(c.manifest, bytecode.decode(c.files[p])["code"], p, meshes[p], inputs.get(p, {}),
                    trace=str(tmp_path / f"{p}.json"))
            for p in c.manifest["parties"]))

    results = dict(zip(c.manifest["parties"], asyncio.run(main())))
    for p, r in results.items():
        assert r.stats.rounds == c.manifest["cost"]["party_rounds"][p] > 0
        check_trace(json.loads((tmp_path / f"{p}.json").read_text()), p, r.stats.rounds)
    plain = api.run(c, {"alice": {"x": np.zeros((8, 4))}, "bob": {"w": np.zeros((4, 1))}})
    assert plain.stats["alice"]["rounds"] == results["alice"].stats.rounds  # tracing changes no round


def test_untraced_runs_use_the_plain_vm(monkeypatch):
    """No --trace, no tracing code on the path: execute builds the VM itself, not the subclass."""
    built: list[type] = []
    original = VM.__init__

    def spy(self, *a, **kw):
        built.append(type(self))
        original(self, *a, **kw)

    monkeypatch.setattr(VM, "__init__", spy)
    c = api.compile(PROGRAM)
    api.run(c, {"alice": {"x": np.zeros((8, 4))}, "bob": {"w": np.zeros((4, 1))}})
    assert built and all(t is VM for t in built) and TracedVM not in built


def test_veil_local_writes_one_trace_per_party(tmp_path: Path):
    (tmp_path / "prog.mpc").write_text(PROGRAM)
    np.savetxt(tmp_path / "x.csv", np.full((8, 4), 0.25), delimiter=",")
    np.savetxt(tmp_path / "w.csv", np.full((4, 1), 0.5), delimiter=",")
    done = veil("local", "prog.mpc", "--input", "alice.x=x.csv", "--input", "bob.w=w.csv", "--stats",
                "--trace", "traces/run.json", cwd=tmp_path, timeout=120)
    assert done.code == 0, done.err
    measured = {}
    for line in done.out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in PARTIES:
            measured.setdefault(parts[0], int(parts[1]))
    assert set(measured) == set(PARTIES)
    for p in PARTIES:
        doc = json.loads((tmp_path / "traces" / f"run.{p}.json").read_text())
        check_trace(doc, p, measured[p])
        assert doc["otherData"]["program"] == "prog.mpc"


def test_unwritable_trace_is_a_clear_failure(tmp_path: Path):
    """A trace path under a plain file: each party says so; no traceback."""
    (tmp_path / "prog.mpc").write_text(PROGRAM)
    np.savetxt(tmp_path / "x.csv", np.full((8, 4), 0.25), delimiter=",")
    np.savetxt(tmp_path / "w.csv", np.full((4, 1), 0.5), delimiter=",")
    (tmp_path / "blocker").write_text("a file, not a folder")
    done = veil("local", "prog.mpc", "--input", "alice.x=x.csv", "--input", "bob.w=w.csv",
                "--trace", "blocker/run.json", cwd=tmp_path, timeout=120)
    assert done.code == 1 and "cannot write its trace file" in done.err and "Traceback" not in done.err
