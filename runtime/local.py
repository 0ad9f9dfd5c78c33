"""`veil local`: every party of a program on this machine, each its own process, over localhost TCP.

The parties write their outputs into a hidden staging folder inside the output folder; only when
every party succeeded are the files moved to `OUT/<party>/<name>.npy`, so a failed run leaves no
output files at all (not even those of the parties that finished). A party that fails tells its
peers (the session sends an abort), so they stop by themselves; a party still running
`GRACE_SECONDS` after another failed is stopped. Children also die with `veil local` itself.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from veil.runtime.diagnostics import RuntimeFailure, UsageErr, VeilError

from .announce import ANNOUNCE_WITHIN
from .net import free_ports

# after a failure, how long the others get to stop on their own: a party that failed before
# starting may still be telling a peer that has not started listening yet
GRACE_SECONDS = ANNOUNCE_WITHIN + 3.0
POLL_SECONDS = 0.02
STAGING_PREFIX = ".veil-staging-"   # + the pid of the `veil local` that owns it


@dataclass
class PartyRun:
    party: str
    code: int
    stderr: str
    stats: dict | None
    stopped: bool = False   # True when veil local had to stop it


def write_config(parties: list[str], folder: str) -> str:
    """A parties file with a free localhost port per party."""
    ports = free_ports(len(parties))
    path = os.path.join(folder, "parties.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[parties]\n")
        for p, port in zip(parties, ports):
            fh.write(f'{p} = "127.0.0.1:{port}"\n')
    return path


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM when `veil local` dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def save_inputs(folder: str, arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, str]]:
    """Each party's input arrays as .npy files in folder: {party: {name: path}}, for run_all."""
    paths: dict[str, dict[str, str]] = {}
    for party, named in arrays.items():
        for name, arr in named.items():
            path = os.path.join(folder, f"{party}.{name}.npy")
            np.save(path, arr)
            paths.setdefault(party, {})[name] = path
    return paths


def run_all(build_dir: str, parties: list[str], inputs: dict[str, dict[str, str]], out_dir: str, *,
            timeout: float = 3600.0, connect_timeout: float = 30.0,
            io_timeout: float | None = None, heartbeat_timeout: float | None = None,
            extra_args: list[str] | None = None, per_party_args: dict[str, list[str]] | None = None,
            follow: Callable[[str, dict], None] | None = None) -> list[PartyRun]:
    """Start one `veil run` per party and wait; outputs reach out_dir only if every party succeeded.

    `heartbeat_timeout`: each party's --heartbeat-timeout (None: veil run's default);
    `extra_args` go to every party's `veil run` (e.g. LinkShape.cli_args() for WAN emulation),
    `per_party_args[party]` to that party's only (e.g. its --trace file); `follow(party, event)`
    gets each event line a party prints as it comes (runtime/progress.py: live values, progress)."""
    session = secrets.token_hex(8)
    created = not os.path.exists(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    runs: list[PartyRun] = []
    clean_stale_staging(out_dir)
    staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="veil-local-") as tmp:
            config = write_config(parties, tmp)
            procs: dict[str, subprocess.Popen] = {}
            readers: dict[str, _Reader] = {}
            try:
                for p in parties:
                    cmd = _party_command(build_dir, p, config, session, staging, inputs.get(p, {}),
                                         connect_timeout, io_timeout, heartbeat_timeout)
                    cmd += list(extra_args or []) + list((per_party_args or {}).get(p, []))
                    procs[p] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
                    readers[p] = _Reader(p, procs[p], follow)
                runs = _wait(procs, readers, timeout)
            finally:
                _stop(procs.values())   # only does anything if we got here by an exception
        read_stats(runs)
        if all(r.code == 0 for r in runs):
            _publish(staging, out_dir, parties)
        return runs
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not (runs and all(r.code == 0 for r in runs)):
            _remove_if_empty(out_dir)


def clean_stale_staging(out_dir: str) -> list[str]:
    """Remove staging folders left by a `veil local` that no longer runs (SIGKILLed, power cut):
    each is named after its owner's pid. Returns what was removed."""
    removed = []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return removed
    for name in names:
        pid = name[len(STAGING_PREFIX):].split("-", 1)[0] if name.startswith(STAGING_PREFIX) else ""
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
        removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_if_empty(folder: str) -> None:
    """Remove a folder this run created, unless something is in it."""
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _party_command(build_dir: str, party: str, config: str, session: str, staging: str,
                   inputs: dict[str, str], connect_timeout: float, io_timeout: float | None,
                   heartbeat_timeout: float | None = None) -> list[str]:
    """The `veil run` command line of one party (with --stats: its stats line goes to read_stats)."""
    cmd = [sys.executable, "-m", "veil.runtime.cli", "run", build_dir, "--party", party, "--config", config,
           "--output-dir", os.path.join(staging, party), "--session", session,
           "--connect-timeout", str(connect_timeout), "--stats"]
    if io_timeout is not None:
        cmd += ["--timeout", str(io_timeout)]
    if heartbeat_timeout is not None:
        cmd += ["--heartbeat-timeout", str(heartbeat_timeout)]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={os.path.abspath(path)}"]
    return cmd


class _Reader(threading.Thread):
    """Reads one party's stderr as it comes: event lines go to `follow` at once, the rest is kept."""

    def __init__(self, party: str, proc: subprocess.Popen, follow: Callable[[str, dict], None] | None):
        super().__init__(daemon=True)
        self.party, self.proc, self.follow = party, proc, follow
        self.kept: list[str] = []
        self.start()

    def run(self) -> None:
        from .progress import parse_event

        for line in self.proc.stderr:
            event = parse_event(line)
            if event is None:
                self.kept.append(line)
            elif self.follow is not None:
                self.follow(self.party, event)

    def text(self) -> str:
        self.join(timeout=10)
        return "".join(self.kept)


def _wait(procs: dict[str, subprocess.Popen], readers: dict[str, "_Reader"], timeout: float) -> list[PartyRun]:
    """Wait for every party; once one failed, give the others GRACE_SECONDS, then stop them."""
    deadline = time.monotonic() + timeout
    failed_at = None
    stopped: set[str] = set()
    while any(p.poll() is None for p in procs.values()):
        now = time.monotonic()
        if failed_at is None and any(p.poll() not in (None, 0) for p in procs.values()):
            failed_at = now
        if now > deadline or (failed_at is not None and now - failed_at > GRACE_SECONDS):
            stopped = {name for name, p in procs.items() if p.poll() is None}
            _stop(procs.values())
            break
        time.sleep(POLL_SECONDS)
    runs = []
    for party, p in procs.items():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        runs.append(PartyRun(party, p.returncode, readers[party].text(), None, stopped=party in stopped))
    return runs


def _stop(procs) -> None:
    """Terminate every process still running, then kill those that ignore it."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    end = time.monotonic() + 2.0
    for p in alive:
        try:
            p.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_stats(runs: list[PartyRun]) -> None:
    """Attach each party's measured stats: the JSON line `veil run --stats` prints on stderr
    ({"party": ..., "rounds": ..., ...}), which is then taken out of the party's stderr."""
    for r in runs:
        kept = []
        for line in r.stderr.splitlines(keepends=True):
            found = _stats_line(line, r.party)
            if found is None:
                kept.append(line)
            else:
                r.stats = found
        r.stderr = "".join(kept)


def _stats_line(line: str, party: str) -> dict | None:
    """The stats in one line of a party's stderr, or None if the line is something else."""
    if not line.startswith('{"'):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("party") == party else None


def _publish(staging: str, out_dir: str, parties: list[str]) -> None:
    """Move every party's staged outputs to out_dir/<party>/ (each file by an atomic rename)."""
    for p in parties:
        src = os.path.join(staging, p)
        if not os.path.isdir(src):
            continue
        dest = os.path.join(out_dir, p)
        os.makedirs(dest, exist_ok=True)
        for name in sorted(os.listdir(src)):
            os.replace(os.path.join(src, name), os.path.join(dest, name))


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


def check_input_names(groups: dict[str, dict[str, str]], manifest: dict) -> None:
    """Refuse --input PARTY.NAME for a NAME the party does not have, before starting anyone."""
    for party, named in groups.items():
        known = [d["name"] for d in manifest["inputs"].get(party, [])]
        for name in named:
            if name not in known:
                raise UsageErr(f"--input {party}.{name}: {party} has no input named {name!r}", None,
                               f"{party}'s inputs: {', '.join(known) or 'none'}")


def _describe(r: PartyRun) -> str:
    """What one failed party said, or why it has nothing to say."""
    if r.stopped:
        return f"still running {GRACE_SECONDS:g} s after another party failed; stopped by veil local"
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip() and not _is_log(ln)]
    if lines:
        return "\n    ".join(lines[-12:])
    if r.code < 0:
        try:
            name = signal.Signals(-r.code).name
        except ValueError:
            name = f"signal {-r.code}"
        return f"killed by {name}"
    return f"exit status {r.code}"


def _is_log(line: str) -> bool:
    """A party's progress log line (authenticated, connected, waiting ...): not part of its error."""
    return line.startswith("veil: ") and not line.startswith("veil: warning")


def failure_summary(runs: list[PartyRun]) -> VeilError:
    """One error that says what each failing party reported (exit 2 if all failed on usage)."""
    failed = [r for r in runs if r.code != 0]
    lines = [f"{r.party}: {_describe(r)}" for r in failed]
    message = "the run failed; every party was stopped:\n  " + "\n  ".join(lines)
    if failed and all(r.code == 2 for r in failed):
        return UsageErr(message)
    return RuntimeFailure(message)
