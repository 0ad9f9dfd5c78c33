"""`veil local`: every party of a program on this machine, each its own process, over localhost TCP."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from veil.compiler.errors import RuntimeFailure, UsageErr


@dataclass
class PartyRun:
    party: str
    code: int
    stderr: str
    stats: dict | None


def free_ports(n: int) -> list[int]:
    """Ports the OS says are free now (bound then released)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def write_config(parties: list[str], folder: str) -> str:
    """A parties file with a free localhost port per party."""
    ports = free_ports(len(parties))
    path = os.path.join(folder, "parties.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[parties]\n")
        for p, port in zip(parties, ports):
            fh.write(f'{p} = "127.0.0.1:{port}"\n')
    return path


def run_all(build_dir: str, parties: list[str], inputs: dict[str, dict[str, str]], out_dir: str, *,
            timeout: float = 3600.0, connect_timeout: float = 30.0) -> list[PartyRun]:
    """Start one `veil run` per party; if one fails, the others are told (and stopped if they linger)."""
    session = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="veil-local-") as tmp:
        config = write_config(parties, tmp)
        procs = {}
        for p in parties:
            cmd = [sys.executable, "-m", "veil.runtime.cli", "run", build_dir, "--party", p, "--config", config,
                   "--output-dir", os.path.join(out_dir, p), "--session", session,
                   "--connect-timeout", str(connect_timeout), "--stats-json", os.path.join(tmp, f"{p}.stats")]
            for name, path in inputs.get(p, {}).items():
                cmd += ["--input", f"{name}={os.path.abspath(path)}"]
            procs[p] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        runs = _wait(procs, timeout)
        for r in runs:
            path = os.path.join(tmp, f"{r.party}.stats")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    r.stats = json.load(fh)
        return runs


def _wait(procs: dict[str, subprocess.Popen], timeout: float) -> list[PartyRun]:
    deadline = time.monotonic() + timeout
    failed_at = None
    while any(p.poll() is None for p in procs.values()):
        now = time.monotonic()
        if failed_at is None and any(p.poll() not in (None, 0) for p in procs.values()):
            failed_at = now
        # a failed party has told its peers; give them a moment to stop on their own, then stop them
        if now > deadline or (failed_at is not None and now - failed_at > 15.0):
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
            break
        time.sleep(0.05)
    runs = []
    for party, p in procs.items():
        try:
            _out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            _out, err = p.communicate()
        runs.append(PartyRun(party, p.returncode, err or "", None))
    return runs


def split_inputs(pairs: list[str], parties: list[str]) -> dict[str, dict[str, str]]:
    """--input PARTY.NAME=PATH options, grouped by party."""
    out: dict[str, dict[str, str]] = {}
    for item in pairs:
        key, sep, path = item.partition("=")
        party, dot, name = key.partition(".")
        if not sep or not dot or not name or not path:
            raise UsageErr(f"--input {item}: expected PARTY.NAME=PATH", None, "e.g. --input alice.x=alice.csv")
        if party not in parties:
            raise UsageErr(f"--input {item}: unknown party {party!r}", None, f"parties: {', '.join(parties)}")
        out.setdefault(party, {})[name] = path
    return out


def failure_summary(runs: list[PartyRun]) -> RuntimeFailure:
    """One error that says what each failing party reported."""
    lines = []
    for r in runs:
        if r.code != 0:
            msg = r.stderr.strip().splitlines()
            text = "\n    ".join(msg[-6:]) if msg else f"exit status {r.code}"
            lines.append(f"{r.party}: {text}")
    return RuntimeFailure("the run failed; every party was stopped:\n  " + "\n  ".join(lines))
