"""Following a run (docs/cli.md): each row of a history output printed live at its receiver as it
arrives, and a progress line for long loops, rewritten in place on a terminal.

`veil run` prints on its own console (`Terminal`); under `veil local` each party sends the same
lines to the parent as events on stderr (`EVENT` + JSON), and the parent prints them."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Callable, TextIO

import numpy as np

from . import fixedpoint

PROGRESS_AFTER = 1.0  # seconds a top-level loop runs before its progress line appears
REDRAW = 0.25         # at most this often
EVENT = "veil-event "  # a line of a party's stderr that `veil local` follows rather than reports
SHOWN = 8             # arrays with more elements are summarized


def label(loops: list) -> str:
    """`epoch 2/5 batch 17/468`: each running loop's variable, iteration (from 1) and trips."""
    return " ".join(f"{lp.name or 'loop'} {k + 1}/{lp.trips}" for lp, k in loops)


def show(value: np.ndarray, dtype: str) -> str:
    """A value in one short line: a number, a few numbers, or a summary of many."""
    a = np.asarray(value)
    fmt = (lambda x: f"{x:.4g}") if dtype == "fix" else (lambda x: str(x).lower() if dtype == "bool" else str(x))
    if a.ndim == 0:
        return fmt(a.item())
    if a.size <= SHOWN:
        return "[" + ", ".join(fmt(x) for x in a.ravel().tolist()) + "]"
    dims = "x".join(map(str, a.shape))
    f = a.astype(np.float64)
    return f"{dtype}[{dims}] mean {f.mean():.4g}, min {f.min():.4g}, max {f.max():.4g}"


def clock(seconds: float) -> str:
    """`0:07`, `12:34`, `1:02:03`."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def fraction(loops: list) -> float:
    """The share of the outermost loop done when the running iterations start."""
    done, width = 0.0, 1.0
    for lp, k in loops:
        width /= max(lp.trips, 1)
        done += k * width
    return done


class Follower:
    """What the VM tells while it runs (runtime/vm.py FOLLOW): live values and loop progress,
    passed as text to `values` and `progress` (either may be None: not shown)."""

    def __init__(self, party: str, values: Callable[[str], None] | None, progress: Callable[[str], None] | None,
                 now: Callable[[], float] = time.monotonic):
        self.party, self.values, self.progress, self.now = party, values, progress, now
        self.started = 0.0
        self.drawn = -1.0
        self.shown = False

    def iteration(self, loops: list) -> None:
        """At each iteration's start (and a loop's end): the progress line, when it is due."""
        if self.progress is None:
            return
        t = self.now()
        if not loops or (len(loops) == 1 and loops[0][1] == 0):
            if self.shown:  # a top-level loop ended or begins: its line goes
                self.progress("")
                self.shown = False
            self.started = t
            if not loops:
                return
        elapsed = t - self.started
        if elapsed < PROGRESS_AFTER or t - self.drawn < REDRAW:
            return
        done = fraction(loops)
        left = f", ~{clock(elapsed * (1 - done) / done)} left" if done > 0 else ""
        self.progress(f"{label(loops)}  {clock(elapsed)} elapsed{left}")
        self.drawn, self.shown = t, True

    def value(self, name: str, loops: list, ring: np.ndarray, dtype: str, scale: int) -> None:
        """One row of a history output arrived: `[alice] epoch 2/5 batch 17/468: loss = 0.2317`."""
        if self.values is not None:
            text = show(fixedpoint.decode(ring, dtype, scale), dtype)
            self.values(f"[{self.party}] {label(loops)}: {name} = {text}")


class Terminal:
    """A console: value lines on stdout; the progress line on stderr, rewritten in place with
    `\\r` (only when stderr is a terminal), taken away while a value line is printed."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.status = ""
        self.lock = threading.Lock()

    @staticmethod
    def on_tty(err: TextIO | None = None) -> bool:
        err = err or sys.stderr
        return hasattr(err, "isatty") and err.isatty()

    def line(self, text: str) -> None:
        with self.lock:
            self._erase()
            print(text, file=self.out, flush=True)
            self._draw()

    def progress(self, text: str) -> None:
        with self.lock:
            self._erase()
            self.status = text
            self._draw()

    def _erase(self) -> None:
        if self.status:
            self.err.write("\r\x1b[K")
            self.err.flush()

    def _draw(self) -> None:
        if self.status:
            self.err.write("\r" + self.status)
            self.err.flush()


def event_sink(kind: str, err: TextIO | None = None) -> Callable[[str], None]:
    """A party under `veil local`: each line as an event on stderr for the parent to print."""
    def send(text: str) -> None:
        stream = err or sys.stderr
        stream.write(EVENT + json.dumps({kind: text}) + "\n")
        stream.flush()
    return send


def follower_for_run(party: str, *, quiet: bool, events: str | None) -> Follower | None:
    """`veil run`'s follower: on its own console, or (`--events values|all`, from `veil local`)
    as events; nothing under --quiet."""
    if quiet:
        return None
    if events is not None:
        return Follower(party, event_sink("live"), event_sink("progress") if events == "all" else None)
    term = Terminal()
    return Follower(party, term.line, term.progress if Terminal.on_tty() else None)


def parse_event(line: str) -> dict[str, Any] | None:
    """An event line of a party's stderr, or None for any other line."""
    if not line.startswith(EVENT):
        return None
    try:
        data = json.loads(line[len(EVENT):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class LocalFollow:
    """`veil local`: every party sends its live values, one party (the first compute party) its
    progress; the parent prints them on its console (nothing under --quiet)."""

    def __init__(self, parties: list[str], compute: list[str], quiet: bool, term: Terminal | None = None):
        self.quiet = quiet
        self.term = term or Terminal()
        self.shows_progress = Terminal.on_tty(self.term.err)
        self.leader = next((p for p in compute if p in parties), parties[0])
        self.args = {p: ["--quiet"] if quiet else ["--events", "all" if p == self.leader and self.shows_progress
                                                   else "values"] for p in parties}

    def __call__(self, party: str, event: dict) -> None:
        if "live" in event:
            self.term.line(str(event["live"]))
        elif "progress" in event and party == self.leader and self.shows_progress:
            self.term.progress(str(event["progress"]))

    def finish(self) -> None:
        self.term.progress("")
