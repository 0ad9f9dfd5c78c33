"""Fault injection before the start: parties that fail before they connect (a damaged build, a
port in use, an unwritable output folder, a bad input, an edited frame bound), a forged abort
before start, and `veil local --heartbeat-timeout` reaching its parties. Part of
tests/fault_cases.py's matrix (its `cases()` appends these)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable

from veil_cli import VEIL, parties_toml, ports_of

from veil.runtime.announce import early_abort_frame

EARLY = "failed before starting"
CANNOT_START = "that it cannot start"   # the log line of a party that failed before starting


def damage_build(run, how: str, target: str = "alice.bc") -> Path:
    """A copy of the small build with one file damaged: truncated, or one bit flipped where it
    matters (a bytecode byte, or the manifest's recorded program hash)."""
    build = run.root / "build"
    shutil.copytree(run.builds.small, build)
    path = build / target
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif target == "manifest.json":
        at = data.index(b'"hash": "') + len(b'"hash": "')
        data[at] ^= 0x01
    else:
        data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    return build


def damaged(how: str, target: str = "alice.bc", tls: bool = False) -> Callable:
    """alice's copy of the build is damaged, the others' are intact: alice stops at load."""
    def inject(run) -> None:
        build = damage_build(run, how, target)
        config = parties_toml(run.root / "parties.toml", tls_dir=run.builds.keys if tls else None)
        run.fault_when("alice", CANNOT_START)
        run.start("alice", build, config)
        run.start_all(run.builds.small, config, parties=["bob", "carol"])
    return inject


def edited_frame_bound(run) -> None:
    """alice's manifest allows messages a thousand times larger: it loads, the peers refuse it."""
    build = run.root / "build"
    shutil.copytree(run.builds.small, build)
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["cost"]["max_message_bytes"] *= 1000
    (build / "manifest.json").write_text(json.dumps(manifest, indent=1))
    config = parties_toml(run.root / "parties.toml")
    run.fault()
    run.start("alice", build, config)
    run.start_all(run.builds.small, config, parties=["bob", "carol"])


def forged_abort(run) -> None:
    """With TLS: carol's certificate sends alice and bob an abort before start in bob's name (and
    a stranger without a certificate tries too); both are dropped, the session completes."""
    config = parties_toml(run.root / "parties.toml", tls_dir=run.builds.keys)
    ports = ports_of(config)
    run.start_all(run.builds.small, config, parties=["alice", "bob"])
    keys = run.builds.keys
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(keys / "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(keys / "carol.pem"), str(keys / "carol.key"))
    for victim in ("alice", "bob"):
        _send_tls(ctx, ports[victim], early_abort_frame("bob" if victim == "alice" else "alice", "forged"))
    run.fault()
    run.start("carol", run.builds.small, config)


def _send_tls(ctx: ssl.SSLContext, port: int, frame: bytes) -> None:
    """Connect over TLS (retrying while the party starts), send one frame, read what comes back."""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                    ctx.wrap_socket(raw, server_hostname="x") as s:
                s.sendall(frame)
                try:
                    s.recv(4096)
                except OSError:
                    pass
                return
        except (ssl.SSLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"could not reach port {port} over TLS")


def local_frozen_party(heartbeat: float) -> Callable:
    """`veil local --heartbeat-timeout`: bob's process is SIGSTOPped once connected; veil local
    must fail naming bob's silence (so the option reached the parties)."""
    def inject(run) -> None:
        out = run.root / "out" / "local"
        cmd = [*VEIL, "local", str(run.builds.long), "--quiet", "--output-dir", str(out),
               "--heartbeat-timeout", str(heartbeat), "--connect-timeout", "20"]
        run.spawn("local", cmd)
        bob = _child_with(run.procs["local"].pid, "--party bob", 30)
        _wait_established(bob, 2, 30)
        time.sleep(1.0)    # the handshakes complete: bob is in the mesh, computing
        _signal(bob, signal.SIGSTOP)
        run.fault()

        def unfreeze() -> None:
            _signal(bob, signal.SIGKILL)
            _signal(bob, signal.SIGCONT)
        timer = threading.Timer(60, unfreeze)
        timer.daemon = True
        timer.start()
        run.cleanup.append(unfreeze)
    return inject


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _child_with(pid: int, text: str, timeout: float) -> int:
    """The child process of `pid` whose command line contains `text`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for c in _children(pid):
            try:
                if text in Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return c
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no child of {pid} runs {text!r}")


def _wait_established(pid: int, n: int, timeout: float) -> None:
    """Until process `pid` holds `n` established TCP connections."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _established(pid) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not connect to {n} peers")


def _established(pid: int) -> int:
    """How many established TCP connections process `pid` holds (from /proc)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    except OSError:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "01" and cols[9] in inodes:
                count += 1
    return count


def setup_cases(Case, relay: float, alone: float, heartbeat: float, grace: float) -> list:
    """The cases of this module, as fault_cases.Case records."""
    bc = ("alice " + EARLY, "alice.bc")
    return [
        Case("a truncated bytecode file", damaged("truncated"), {"alice": "alice.bc", "*": bc},
             {"alice": alone, "*": relay}),
        Case("a bit-flipped bytecode file", damaged("flipped"), {"alice": "alice.bc", "*": bc},
             {"alice": alone, "*": relay}),
        Case("a bit-flipped bytecode file (TLS)", damaged("flipped", tls=True), {"alice": "alice.bc", "*": bc},
             {"alice": alone, "*": relay}),
        Case("a truncated manifest", damaged("truncated", "manifest.json"),
             {"alice": "unreadable build", "*": ("alice " + EARLY, "unreadable build")}, {"alice": alone, "*": relay}),
        Case("a bit-flipped manifest", damaged("flipped", "manifest.json"),
             {"alice": "manifest.json was modified", "*": ("alice " + EARLY, "manifest.json was modified")},
             {"alice": alone, "*": relay}),
        Case("an edited frame bound", edited_frame_bound, {"*": "largest message allowed"}, {"*": relay}),
        Case("a forged abort before start (TLS)", forged_abort, {"*": ""}, {"*": 20}, success=True, codes=(0,)),
        Case("veil local --heartbeat-timeout", local_frozen_party(heartbeat),
             {"local": ("heard nothing from bob", f"for {heartbeat:g} s")}, {"local": heartbeat + relay + grace},
             codes=(1,), parties=("local",)),
    ]
