"""WAN emulation for the party mesh: every message on a link arrives half a round-trip time after
it left, and a link carries at most `bandwidth` bits per second, so a wide-area deployment's
timing (e.g. 40 ms RTT, 352 Mbit/s) can be reproduced on one machine.

The sender shapes: a message's transfer starts when the link is free (messages queue behind each
other), takes `wire bytes * 8 / bandwidth` seconds, and the message is handed to the peer (its
socket, or its inbox in process) one-way-delay seconds after the transfer ends. Order on a link is
kept. `send` does not wait for the delivery: like a socket it returns once the bytes are queued,
so the caller may reuse its arrays (the shaped link keeps its own copy).
"""
from __future__ import annotations

import asyncio
import inspect
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from veil.runtime.diagnostics import UsageErr

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_BANDWIDTH_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
                    "bps": 1.0, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}


def _split(text: str, units: dict[str, float]) -> tuple[float, float] | None:
    """(number, unit factor) of '40ms'-like text, or None if it is not one."""
    m = re.fullmatch(rf"\s*({_NUMBER})\s*([a-z]+)\s*", text.lower())
    if m is None or m.group(3) not in units:
        return None
    return float(m.group(1)), units[m.group(3)]


def parse_duration(text: str, flag: str = "--rtt") -> float:
    """Seconds from '40ms', '0.04s' or '500us'; a UsageErr naming the flag otherwise."""
    parsed = _split(text, _DURATION_UNITS)
    if parsed is None:
        raise UsageErr(f"{flag} {text}: expected a duration with a unit", None,
                       "e.g. 40ms, 0.04s or 500us")
    return parsed[0] * parsed[1]


def parse_bandwidth(text: str, flag: str = "--bandwidth") -> float:
    """Bits per second from '352mbit', '1gbit', '100kbit' (decimal prefixes; 'mbps' = 'mbit')."""
    parsed = _split(text, _BANDWIDTH_UNITS)
    if parsed is None:
        raise UsageErr(f"{flag} {text}: expected a rate in bits per second with a unit", None,
                       "e.g. 352mbit, 1gbit or 100kbit (decimal prefixes)")
    value = parsed[0] * parsed[1]
    if value <= 0:
        raise UsageErr(f"{flag} {text}: the bandwidth must be positive")
    return value


@dataclass(frozen=True)
class LinkShape:
    """One link's emulated round-trip time (seconds) and bandwidth (bits/s; None: unlimited)."""

    rtt: float = 0.0
    bandwidth: float | None = None

    def __post_init__(self) -> None:
        if self.rtt < 0 or (self.bandwidth is not None and self.bandwidth <= 0):
            raise ValueError(f"bad link shape: rtt {self.rtt}, bandwidth {self.bandwidth}")

    @property
    def one_way(self) -> float:
        """The delay from the end of a transfer to the delivery."""
        return self.rtt / 2

    def transfer_seconds(self, nbytes: int) -> float:
        """How long the link is busy carrying `nbytes` bytes."""
        return 0.0 if self.bandwidth is None else 8.0 * nbytes / self.bandwidth

    def cli_args(self) -> list[str]:
        """The `veil run` options that recreate this shape (for `veil local`'s children)."""
        args = ["--rtt", f"{self.rtt!r}s"]
        if self.bandwidth is not None:
            args += ["--bandwidth", f"{self.bandwidth!r}bit"]
        return args


def shape_from_args(rtt: str | None, bandwidth: str | None) -> LinkShape | None:
    """The LinkShape of --rtt/--bandwidth command-line values, or None when neither is given."""
    if rtt is None and bandwidth is None:
        return None
    return LinkShape(parse_duration(rtt) if rtt is not None else 0.0,
                     parse_bandwidth(bandwidth) if bandwidth is not None else None)


Deliver = Callable[[], "Awaitable[Any] | None"]


class ShapedLink:
    """One direction of one link: messages wait their transfer and delay, then are delivered in order."""

    def __init__(self, shape: LinkShape):
        self.shape = shape
        self._free_at = 0.0
        self._queue: deque[tuple[float, Deliver]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None

    def submit(self, nbytes: int, deliver: Deliver) -> None:
        """Queue one message of `nbytes` wire bytes; `deliver()` hands it over when it is due."""
        loop = asyncio.get_running_loop()
        start = max(loop.time(), self._free_at)
        self._free_at = start + self.shape.transfer_seconds(nbytes)
        self._queue.append((self._free_at + self.shape.one_way, deliver))
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = loop.create_task(self._pump())

    async def _pump(self) -> None:
        """Deliver queued messages at their due times, never early."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            due, deliver = self._queue[0]
            while (left := due - loop.time()) > 0:  # timers may fire a little early: wait again
                await asyncio.sleep(left)
            self._queue.popleft()
            result = deliver()
            if inspect.isawaitable(result):
                await result

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued has been delivered (or the timeout passed)."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass

    async def stop(self) -> None:
        """Drop whatever is still queued and end the pump."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
