"""Fault injection over real `veil run` processes on loopback: each case breaks one thing and
records how every party ended (exit status, stderr, seconds from the fault to its exit).

Used by tests/test_faults.py (which asserts each case's bounds and messages) and by
programs/fault_matrix.py (which prints the time-to-abort table).
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from veil_cli import FRAUD, PARTIES, VEIL, npy_files, parties_toml, ports_of  # noqa: E402

from veil.runtime.announce import ANNOUNCE_WITHIN, early_abort_frame  # noqa: E402
from veil.runtime.framing import control_frame  # noqa: E402
from veil.runtime.local import GRACE_SECONDS  # noqa: E402
from veil.runtime.tls import keygen  # noqa: E402

CONNECT = 4.0          # --connect-timeout of every case
HEARTBEAT = 2.0        # --heartbeat-timeout of the SIGSTOP case
RELAY_BOUND = 5.0      # seconds from the fault to every party's exit, when the fault can be told
LOAD_SLACK = 6.0       # extra seconds allowed under load (2 busy cores, python start-up included)
ALONE = 3.0            # a party that stops by itself before connecting (includes its start-up)
ANNOUNCING = ANNOUNCE_WITHIN + 1.0     # a party that failed before starting, from its log line to its exit
CANNOT_START = "that it cannot start"   # the log line of a party that failed before starting


@dataclass
class End:
    """How one party ended: exit status, stderr, seconds after the fault (while running: when)."""

    code: int
    err: str
    after: float


@dataclass
class Case:
    """One fault: how to inject it, and what every party must then do."""

    name: str
    inject: Callable[["Run"], None]
    want: dict[str, str | tuple[str, ...]]   # party -> text(s) its stderr must contain ('*': every party)
    bound: dict[str, float]         # party -> seconds after the fault ('*': every party)
    success: bool = False           # strangers: the session must complete
    codes: tuple[int, ...] = (1, 2)
    parties: tuple[str, ...] = ("alice", "bob")   # processes that must have ended (been started)

    def wanted(self, party: str) -> tuple[str, ...]:
        w = self.want.get(party, self.want.get("*", ""))
        return (w,) if isinstance(w, str) else w

    def limit(self, party: str) -> float:
        return self.bound.get(party, self.bound.get("*", RELAY_BOUND)) + LOAD_SLACK


@dataclass
class Builds:
    small: Path
    other: Path
    long: Path
    keys: Path
    other_keys: Path


@dataclass
class Run:
    """One case's folder, processes and the moment of its fault."""

    root: Path
    builds: Builds
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    fault_at: float = 0.0
    ends: dict[str, End] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    stamps: dict[str, list[tuple[float, str]]] = field(default_factory=dict)   # (when read, line)
    fault_line: tuple[str, str] | None = None   # (party, text): the fault is when it logged that
    readers: list[threading.Thread] = field(default_factory=list)
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def start(self, party: str, build: Path, config: Path, *extra: str, name: str | None = None) -> None:
        """Start `veil run` for a party (outputs in out/<party>)."""
        cmd = [*VEIL, "run", str(build), "--party", party, "--config", str(config), "--output-dir",
               f"out/{party}", "--connect-timeout", str(CONNECT), *extra]
        self.spawn(name or party, cmd)

    def spawn(self, key: str, cmd: list[str]) -> None:
        """Start any veil command, its stderr collected under `key`."""
        p = self.procs[key] = subprocess.Popen(cmd, cwd=self.root, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, text=True)
        self.lines[key], self.stamps[key] = [], []

        def read() -> None:
            for line in iter(p.stderr.readline, ""):
                self.stamps[key].append((time.monotonic(), line))
                self.lines[key].append(line)
        self.readers.append(threading.Thread(target=read, daemon=True))
        self.readers[-1].start()

    def await_line(self, text: str, parties=PARTIES, timeout: float = 30.0) -> None:
        """Wait until every party's stderr has a line containing `text` (e.g. 'connected to')."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(any(text in ln for ln in self.lines.get(p, [])) for p in parties):
                return
            time.sleep(0.02)
        raise AssertionError(f"not every party of {parties} logged {text!r}: {self.lines}")

    def start_all(self, build: Path, config: Path, *extra: str, parties=PARTIES) -> None:
        for p in parties:
            self.start(p, build, config, *extra)

    def fault(self) -> None:
        """Mark now as the moment of the fault (bounds count from here)."""
        self.fault_at = time.monotonic()

    def fault_when(self, party: str, text: str) -> None:
        """The fault is the moment `party` logs `text` (a party that finds its own fault at
        start-up: its python start-up is then not counted); until then, now."""
        self.fault()
        self.fault_line = (party, text)

    def wait(self, timeout: float = 40.0) -> None:
        """Wait for every process, recording when each ended; kill stragglers."""
        pending = dict(self.procs)
        end = time.monotonic() + timeout
        while pending and time.monotonic() < end:
            for k, p in list(pending.items()):
                if p.poll() is not None:
                    self.ends[k] = End(p.returncode, "", time.monotonic())
                    del pending[k]
            time.sleep(0.02)
        for k, p in pending.items():
            p.kill()
            p.wait()
            self.ends[k] = End(p.returncode, "", float("inf"))
        for t in self.readers:
            t.join(5)
        if self.fault_line is not None:
            party, text = self.fault_line
            self.fault_at = next((t for t, ln in self.stamps.get(party, []) if text in ln), self.fault_at)
        for end in self.ends.values():
            end.after -= self.fault_at
        for k in self.ends:
            self.ends[k].err = "".join(self.lines[k])
        for fn in self.cleanup:
            fn()


def build_all(root: Path) -> Builds:
    """The builds and keys the cases share (compiled in parallel)."""
    jobs = {"small": ["-D", "N=256", "-D", "EPOCHS=1"], "other": ["-D", "N=512", "-D", "EPOCHS=1"],
            "long": ["-D", "N=2048", "-D", "EPOCHS=30"]}
    procs = {k: subprocess.Popen([*VEIL, "compile", str(FRAUD), *d, "-o", str(root / k)], cwd=root,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k, d in jobs.items()}
    keygen(PARTIES, str(root / "keys"))
    keygen(PARTIES, str(root / "other_keys"))
    for k, p in procs.items():
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"compile {k}: {err}"
    return Builds(root / "small", root / "other", root / "long", root / "keys", root / "other_keys")


# ---- the injections --------------------------------------------------------------------------

def _kill_at_random_round(seed: int) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        rng = random.Random(seed)
        config = parties_toml(run.root / "parties.toml")
        run.start_all(run.builds.long, config)
        run.await_line("connected to")
        time.sleep(rng.uniform(0.0, 1.5))   # computing: a random round of a run that takes much longer
        victim = PARTIES[seed % 3]
        run.procs[victim].send_signal(signal.SIGKILL)
        run.fault()
    return inject


def _never_starts(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    run.fault()
    run.start_all(run.builds.small, config, parties=["alice", "bob"])


def _kill_while_connecting(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    run.start_all(run.builds.small, config, parties=["alice", "bob"])
    run.await_line("authenticated", ["alice", "bob"])   # connected to each other, both waiting for carol
    run.procs["alice"].send_signal(signal.SIGKILL)
    run.fault()


def _other_program(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    run.fault()
    run.start_all(run.builds.small, config, parties=["alice", "bob"])
    run.start("carol", run.builds.other, config)


def _other_session(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    run.fault()
    run.start_all(run.builds.small, config, parties=["alice", "bob"])
    run.start("carol", run.builds.small, config, "--session", "another")


def _other_ca(run: Run) -> None:
    ports = None
    config = parties_toml(run.root / "parties.toml", tls_dir=run.builds.keys)
    ports = list(ports_of(config).values())
    foreign = parties_toml(run.root / "foreign.toml", ports, tls_dir=run.builds.other_keys)
    run.fault()
    run.start_all(run.builds.small, config, parties=["alice", "bob"])
    run.start("carol", run.builds.small, foreign)


def _claims_another_name(run: Run) -> None:
    """carol's certificate, started as bob (the real bob is not running)."""
    config = parties_toml(run.root / "parties.toml", tls_dir=run.builds.keys)
    text = config.read_text().replace("{party}.pem", "carol.pem").replace("{party}.key", "carol.key")
    impostor = run.root / "impostor.toml"
    impostor.write_text(text)
    run.fault()
    run.start("alice", run.builds.small, config)
    run.start("carol", run.builds.small, config)
    run.start("bob", run.builds.small, impostor)


def _malformed_input(run: Run) -> None:
    rows = (FRAUD.parent / "data" / "bob.csv").read_text().splitlines()[:300]
    cells = rows[7].split(",")
    cells[3] = "1.2.3"
    rows[7] = ",".join(cells)
    (run.root / "bad.csv").write_text("\n".join(rows) + "\n")
    config = parties_toml(run.root / "parties.toml")
    run.fault_when("bob", CANNOT_START)
    run.start_all(run.builds.small, config, parties=["alice", "carol"])
    run.start("bob", run.builds.small, config, "--input", f"data={run.root / 'bad.csv'}")


def _port_in_use(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports_of(config)["carol"]))
    blocker.listen()
    run.cleanup.append(blocker.close)
    run.fault_when("carol", CANNOT_START)
    run.start_all(run.builds.small, config)


def _duplicate_addresses(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    port = ports_of(config)["alice"]
    config.write_text(config.read_text().replace(f'carol = "127.0.0.1:{ports_of(config)["carol"]}"',
                                                 f'carol = "127.0.0.1:{port}"'))
    run.fault()
    run.start_all(run.builds.small, config)


def _sigstop(run: Run) -> None:
    config = parties_toml(run.root / "parties.toml")
    run.start_all(run.builds.long, config, "--heartbeat-timeout", str(HEARTBEAT))
    run.await_line("connected to")
    time.sleep(0.5)
    run.procs["bob"].send_signal(signal.SIGSTOP)
    run.fault()

    def unfreeze() -> None:
        p = run.procs["bob"]
        if p.poll() is None:
            p.kill()
            p.send_signal(signal.SIGCONT)
    threading.Timer(HEARTBEAT + RELAY_BOUND + LOAD_SLACK + 1, unfreeze).start()


def _unwritable_output(run: Run) -> None:
    (run.root / "out").mkdir()
    (run.root / "out" / "alice").write_text("a file where alice's output folder should be\n")
    config = parties_toml(run.root / "parties.toml")
    run.fault_when("alice", CANNOT_START)
    run.start_all(run.builds.small, config)


# ---- strangers -------------------------------------------------------------------------------

def _poke(port: int, payload: bytes | None, hold: float = 0.0, read: bool = False) -> bytes:
    """Connect to a party's port as a stranger: send payload (None: nothing), maybe read, close."""
    end = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            if time.monotonic() > end:
                return b""
            time.sleep(0.05)
    got = b""
    with s:
        if payload:
            s.sendall(payload)
        if read:
            try:
                got = s.recv(4096)
            except OSError:
                pass
        time.sleep(hold)
    return got


def _strangers(tls: bool) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        config = parties_toml(run.root / "parties.toml", tls_dir=run.builds.keys if tls else None)
        ports = ports_of(config)
        # strangers are the fault here, not a slow start: carol starts after the pokes, and a loaded
        # machine may take seconds to start a party, so the wait for her is not the cases' usual 4 s
        patient = ("--connect-timeout", "20")
        run.start_all(run.builds.small, config, *patient, parties=["alice", "bob"])
        hello = control_frame({"t": "hello", "hello": {"party": "mallory", "veil": 1, "program": "x"}})
        pokes = [(None, 0.0, False), (b"GET / HTTP/1.0\r\n\r\n" * 4, 0.0, False),
                 (struct.pack("<Q", 4 << 30), 0.3, False), (hello, 0.0, True), (os.urandom(300), 0.0, False),
                 (early_abort_frame("mallory", "a stranger's abort"), 0.0, True)]
        silent = threading.Thread(target=_poke, args=(ports["bob"], None, 6.0), daemon=True)
        silent.start()  # a connection that never speaks, open while the parties connect
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda a: _poke(ports[a[0]], *a[1]),
                          [(p, k) for p in ("alice", "bob") for k in pokes]))
        run.fault()
        run.start("carol", run.builds.small, config, *patient)
    return inject


def cases() -> list[Case]:
    """Every fault, with what each party must say and how soon it must end."""
    late = CONNECT + RELAY_BOUND
    out = [Case(f"kill at a random round (seed {s})", _kill_at_random_round(s),
                {"*": f"connection to {PARTIES[s % 3]}"}, {"*": RELAY_BOUND, PARTIES[s % 3]: 0.5}, codes=(1, -9))
           for s in (1, 2, 3)]
    out += [
        Case("a party never starts", _never_starts, {"*": "carol"}, {"*": late}),
        Case("a party killed while connecting", _kill_while_connecting, {"bob": "lost the connection to alice"},
             {"bob": RELAY_BOUND, "alice": 0.5}, codes=(1, -9)),
        Case("a party with another program", _other_program, {"*": "program hash differs"}, {"*": RELAY_BOUND}),
        Case("a party with another session", _other_session, {"*": "session id differs"}, {"*": RELAY_BOUND}),
        Case("a certificate from another CA", _other_ca, {"alice": "certificate of carol", "bob": "carol",
                                                          "carol": "certificate"},
             {"alice": RELAY_BOUND, "bob": RELAY_BOUND, "carol": late}),
        Case("a party claiming another's name", _claims_another_name, {"*": "issued to 'carol'"},
             {"*": RELAY_BOUND}),
        Case("a malformed input", _malformed_input, {"bob": "bad.csv", "*": ("bob failed before starting", "bad.csv")},
             {"bob": ANNOUNCING, "*": RELAY_BOUND}),
        Case("a port in use", _port_in_use,
             {"carol": "already in use", "*": ("carol failed before starting", "already in use")},
             {"carol": ANNOUNCING, "*": RELAY_BOUND}),
        Case("duplicate addresses", _duplicate_addresses, {"*": "same address"}, {"*": ALONE}, codes=(2,)),
        Case("a SIGSTOPped peer", _sigstop, {"*": "heard nothing from bob"}, {"*": HEARTBEAT + RELAY_BOUND, "bob": 30}, codes=(1, -9)),
        Case("an unwritable output dir", _unwritable_output,
             {"alice": "--output-dir", "*": ("alice failed before starting", "--output-dir")},
             {"alice": ANNOUNCING, "*": RELAY_BOUND}),
        Case("strangers (plaintext)", _strangers(False), {"*": ""}, {"*": 20}, success=True, codes=(0,)),
        Case("strangers (TLS)", _strangers(True), {"*": ""}, {"*": 20}, success=True, codes=(0,)),
    ]
    from fault_cases_setup import setup_cases

    out += setup_cases(Case, RELAY_BOUND, ANNOUNCING, HEARTBEAT, GRACE_SECONDS)
    return out


def run_case(case: Case, root: Path, builds: Builds) -> Run:
    """Inject one fault in a fresh folder and wait for every party."""
    root.mkdir(parents=True, exist_ok=True)
    run = Run(root, builds)
    try:
        case.inject(run)
    finally:
        run.wait()
    return run


def run_cases(root: Path, builds: Builds, chosen: list[Case] | None = None, workers: int = 4) -> dict[str, Run]:
    """Every case, a few at a time, each in its own folder."""
    chosen = chosen or cases()
    with ThreadPoolExecutor(workers) as pool:
        runs = pool.map(lambda ic: run_case(ic[1], root / f"case{ic[0]}", builds), enumerate(chosen))
        return {c.name: r for c, r in zip(chosen, runs)}


def problems(case: Case, run: Run) -> list[str]:
    """Everything wrong with how the parties ended (empty: the case passed)."""
    found = []
    for party, end in run.ends.items():
        if end.code not in case.codes:
            found.append(f"{party} exited {end.code}: {end.err.strip()[-400:]}")
        if end.after > case.limit(party):
            found.append(f"{party} ended {end.after:.1f} s after the fault (bound {case.limit(party):.1f} s)")
        if "Traceback" in end.err:
            found.append(f"{party} printed a traceback: {end.err[-400:]}")
        for text in case.wanted(party):
            if end.code not in (0, -9) and text not in end.err:
                found.append(f"{party}'s message lacks {text!r}: {end.err.strip()[-400:]}")
    outputs = npy_files(run.root)
    if case.success and len(outputs) < 2:
        found.append(f"the session did not complete: outputs {outputs}")
    if not case.success and outputs:
        found.append(f"output files left: {outputs}")
    return found
