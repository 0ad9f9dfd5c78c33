"""The progress line: shown for long loops on a terminal (rewritten in place with \\r), by one party
under `veil local`; nothing under --quiet or when stderr is not a terminal."""
from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time

import numpy as np

from veil.runtime.bytecode import Loop
from veil.runtime.progress import PROGRESS_AFTER, Follower, LocalFollow, Terminal, clock, fraction, label, show
from veil_cli import VEIL


def _loop(name: str, trips: int) -> Loop:
    return Loop(trips, 0, 1, 0, (), (), (), (), (), None, name)


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_line_names_the_loops_and_estimates_the_time_left():
    epoch, batch = _loop("epoch", 5), _loop("batch", 10)
    lines: list[str] = []
    now = _Clock()
    f = Follower("alice", None, lines.append, now)
    f.iteration([[epoch, 0]])
    now.t += PROGRESS_AFTER / 2
    f.iteration([[epoch, 0], [batch, 5]])
    assert lines == []  # a short run shows nothing
    now.t = 100.0 + 12.0
    f.iteration([[epoch, 2], [batch, 4]])  # 2/5 + 4/50 = 48 % done after 12 s
    assert lines == ["epoch 3/5 batch 5/10  0:12 elapsed, ~0:13 left"]
    now.t += 0.01
    f.iteration([[epoch, 2], [batch, 5]])
    assert len(lines) == 1  # redrawn at most a few times a second
    f.iteration([])  # the loop ended: its line is taken away
    assert lines[-1] == ""


def test_helpers():
    assert fraction([[_loop("e", 4), 1], [_loop("b", 2), 1]]) == 0.375
    assert label([[_loop("", 3), 0]]) == "loop 1/3"
    assert [clock(s) for s in (7, 754, 3723)] == ["0:07", "12:34", "1:02:03"]
    assert show(np.float64(0.23171), "fix") == "0.2317"
    assert show(np.array([1, 2]), "int") == "[1, 2]"
    assert show(np.array(True), "bool") == "true"
    assert show(np.arange(12.0).reshape(3, 4), "fix") == "fix[3x4] mean 5.5, min 0, max 11"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_rewrites_the_line_in_place_and_lifts_it_for_a_value():
    out, err = io.StringIO(), _Tty()
    t = Terminal(out, err)
    t.progress("epoch 1/2")
    t.line("[alice] epoch 1/2: loss = 1")
    t.progress("epoch 2/2")
    t.progress("")
    assert out.getvalue() == "[alice] epoch 1/2: loss = 1\n"
    assert err.getvalue() == "\repoch 1/2\r\x1b[K\repoch 1/2\r\x1b[K\repoch 2/2\r\x1b[K"


def test_veil_local_asks_one_party_for_its_progress():
    lf = LocalFollow(["dave", "alice", "bob", "carol"], ["alice", "bob", "carol"], False, Terminal(io.StringIO(), _Tty()))
    assert lf.args == {"dave": ["--events", "values"], "alice": ["--events", "all"],
                       "bob": ["--events", "values"], "carol": ["--events", "values"]}
    piped = LocalFollow(["alice", "bob"], ["alice", "bob"], False, Terminal(io.StringIO(), io.StringIO()))
    assert piped.args["alice"] == ["--events", "values"]  # not a terminal: nobody sends progress
    quiet = LocalFollow(["alice", "bob"], ["alice", "bob"], True)
    assert quiet.args == {"alice": ["--quiet"], "bob": ["--quiet"]}


# A loop far longer than any test waits: each run is stopped (SIGTERM, which `veil local` passes
# to every party) once it has shown what it shows, so the test does not depend on how fast the
# machine is (2,000 steps once outlasted PROGRESS_AFTER here and ended within it in CI).
LONG = """\
party alice, bob, carol
protocol rep3(alice, bob, carol)
param T = 1000000
s = secret(input(alice, "x", shape=(4,)))
acc = s
for step in range(T):
    acc = acc * 0.999 + s * s * 0.0001
output(acc, to=alice)
"""


def _run_on_pty(args: list[str], cwd, *, until: bytes | None = None, seconds: float = 120) -> tuple[str, float]:
    """Run veil with stderr on a pseudo-terminal until `until` shows or `seconds` pass, then stop it.

    Returns what the terminal showed and the seconds it took to show `until`."""
    master, slave = pty.openpty()
    started = time.monotonic()
    p = subprocess.Popen([*VEIL, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    try:
        while time.monotonic() < started + seconds and not (until and until in seen):
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every writer closed the terminal
                    break
                seen += chunk
            elif p.poll() is not None:
                break
        took = time.monotonic() - started
        assert p.poll() is None, f"veil ended on its own ({p.returncode}): {seen.decode(errors='replace')}"
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait(30)
        os.close(master)
    return seen.decode(errors="replace"), took


def test_progress_appears_on_a_terminal_and_not_through_a_pipe_or_under_quiet(tmp_path):
    (tmp_path / "long.mpc").write_text(LONG)
    (tmp_path / "x.csv").write_text("1,2,0.5,-1\n")
    args = ["local", "long.mpc", "--input", "alice.x=x.csv"]
    shown, took = _run_on_pty(args, tmp_path, until=b" elapsed")
    assert "\rstep " in shown and "/1000000  " in shown and " elapsed" in shown, shown
    assert took > PROGRESS_AFTER
    # the same run, watched twice as long as the line took to appear on the terminal
    quiet, _ = _run_on_pty(args + ["--quiet"], tmp_path, seconds=2 * took)
    assert "elapsed" not in quiet
    piped = subprocess.Popen([*VEIL, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2 * took)
        assert piped.poll() is None, "the piped run ended on its own"
    finally:
        piped.terminate()
        _, err = piped.communicate(timeout=30)
    assert "elapsed" not in err and "\r" not in err, err


def test_veil_run_follows_on_its_own_console(monkeypatch):
    from veil.runtime.progress import follower_for_run

    monkeypatch.setattr("sys.stderr", _Tty())
    on_tty = follower_for_run("alice", quiet=False, events=None)
    assert on_tty.values is not None and on_tty.progress is not None
    assert follower_for_run("alice", quiet=True, events=None) is None
    monkeypatch.setattr("sys.stderr", io.StringIO())
    piped = follower_for_run("alice", quiet=False, events=None)
    assert piped.values is not None and piped.progress is None  # live values are results: still printed
    events = follower_for_run("alice", quiet=False, events="all")
    events.progress("step 3/9")
    import sys
    assert sys.stderr.getvalue() == 'veil-event {"progress": "step 3/9"}\n'
