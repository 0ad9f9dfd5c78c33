"""Helpers for tests that run the real `veil` command line as subprocesses on 127.0.0.1.

Every call has a timeout, every started process is killed when the test ends, and
`leftover_processes` finds any process still running in a test's folder (Linux /proc).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.runtime.net import free_ports

ROOT = Path(__file__).resolve().parents[1]
FRAUD = ROOT / "programs" / "fraud_detection.mpc"
DATA = ROOT / "programs" / "data"
VEIL = [sys.executable, "-m", "veil.runtime.cli"]
PARTIES = ["alice", "bob", "carol"]


@dataclass
class Done:
    """A finished veil process: exit status, output, and how long it ran."""

    code: int
    out: str
    err: str
    seconds: float


def veil(*args: str, cwd: Path, timeout: float = 60.0) -> Done:
    """Run one veil command to completion (fails the test if it hangs)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([*VEIL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"veil {' '.join(map(str, args))} did not finish within {timeout} s: {exc.stderr}")
    return Done(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


class Procs:
    """Background veil processes of one test, all killed when the `with` block ends."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> "Procs":
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.communicate()

    def start(self, key: str, *args: str) -> subprocess.Popen:
        """Start `veil ARGS...` in the background under a name."""
        self.procs[key] = subprocess.Popen([*VEIL, *map(str, args)], cwd=self.cwd, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
        self.started[key] = time.monotonic()
        return self.procs[key]

    def finish(self, key: str, timeout: float = 60.0) -> Done:
        """Wait for one process; fails the test (after killing everything) if it hangs."""
        p = self.procs[key]
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.__exit__()
            pytest.fail(f"{key} ({' '.join(p.args[3:])}) did not finish within {timeout} s")
        return Done(p.returncode, out, err, time.monotonic() - self.started[key])

    def finish_all(self, timeout: float = 60.0) -> dict[str, Done]:
        """Wait for every process started so far."""
        return {k: self.finish(k, timeout) for k in list(self.procs)}


def measured_stats(out: str, err: str = "") -> dict[str, dict]:
    """Per-party measured rows (rounds, seconds) of `veil local --stats`, parsed from its table."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in PARTIES and "predicted" not in line:
            rows.setdefault(parts[0], {"rounds": int(parts[1]), "seconds": float(parts[3])})
    assert set(rows) == set(PARTIES), out + err
    return rows


def shaped_growth(cwd: Path, program: str, inputs: list[str], rtt: float) -> tuple[float, dict, str]:
    """`veil local program --stats` plain and under --rtt: how much longer the slowest party ran
    shaped, the build's cost report (critical_rounds, rounds) and the shaped run's output."""
    common = ["local", program, *[a for i in inputs for a in ("--input", i)], "--stats"]
    plain = veil(*common, cwd=cwd, timeout=120)
    shaped = veil(*common, "--rtt", f"{int(rtt * 1000)}ms", cwd=cwd, timeout=180)
    assert plain.code == 0 and shaped.code == 0, plain.err + shaped.err
    cost = json.loads((cwd / "build" / Path(program).stem / "manifest.json").read_text())["cost"]
    grew = (max(r["seconds"] for r in measured_stats(shaped.out, shaped.err).values())
            - max(r["seconds"] for r in measured_stats(plain.out, plain.err).values()))
    return grew, cost, shaped.out


def parties_toml(path: Path, ports: list[int] | None = None, tls_dir: Path | None = None) -> Path:
    """A TOML parties file on 127.0.0.1 (fresh free ports unless given), with an optional [tls] table."""
    ports = ports or free_ports(len(PARTIES))
    lines = ["[parties]"] + [f'{p} = "127.0.0.1:{port}"' for p, port in zip(PARTIES, ports)]
    if tls_dir is not None:
        lines += ["", "[tls]", f'ca = "{tls_dir}/ca.pem"', f'cert = "{tls_dir}/{{party}}.pem"',
                  f'key = "{tls_dir}/{{party}}.key"']
    path.write_text("\n".join(lines) + "\n")
    return path


def ports_of(config: Path) -> dict[str, int]:
    """The port of each party in a TOML parties file written by parties_toml."""
    import tomllib

    table = tomllib.loads(config.read_text())["parties"]
    return {p: int(addr.rsplit(":", 1)[1]) for p, addr in table.items()}


def compile_fraud(cwd: Path, out: str, *defines: str) -> Path:
    """Compile the fraud program with -D NAME=VALUE defines into cwd/out."""
    args = ["compile", FRAUD, "-o", out]
    for d in defines:
        args += ["-D", d]
    done = veil(*args, cwd=cwd)
    assert done.code == 0, done.err
    return cwd / out


def run_parties(procs: Procs, build: Path, config: Path, *extra: str, parties=PARTIES, prefix: str = "",
                out: str = "out") -> None:
    """Start `veil run` for the given parties (outputs in out/<party>)."""
    for p in parties:
        procs.start(prefix + p, "run", build, "--party", p, "--config", config, "--output-dir", f"{out}/{p}", *extra)


def npy_files(folder: Path) -> list[Path]:
    """Every .npy file under a folder (output files a failed run must not leave)."""
    return sorted(folder.rglob("*.npy")) if folder.exists() else []


def leftover_processes(folder: Path) -> list[str]:
    """Processes (other than this one) whose working directory is inside `folder` (Linux only)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    root = str(folder.resolve())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and (cwd == root or cwd.startswith(root + os.sep)):
            found.append(f"{entry.name}: {cmd}")
    return found


def assert_all_stopped(folder: Path, within: float = 3.0) -> None:
    """No process is left running in the test's folder (allowing a moment for exits in flight)."""
    end = time.monotonic() + within
    while (left := leftover_processes(folder)) and time.monotonic() < end:
        time.sleep(0.05)
    assert not left, f"processes still running: {left}"
