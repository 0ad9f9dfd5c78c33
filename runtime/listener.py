"""Listening sockets that hand each accepted connection, still raw, to a coroutine.

veil.runtime.connect wraps accepted sockets in TLS itself: asyncio.start_server would swallow a
failed server-side TLS handshake into the loop's log, where no party could report it.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable

OnAccept = Callable[[socket.socket, Any], Awaitable[None]]


class Listener:
    """Listening sockets whose accepted connections go to a coroutine (no TLS done for us)."""

    def __init__(self, socks: list[socket.socket], on_accept: OnAccept):
        self.socks = socks
        self.on_accept = on_accept
        self.handlers: set[asyncio.Task] = set()
        self.tasks = [asyncio.ensure_future(self._accept_loop(s)) for s in socks]

    @classmethod
    async def open(cls, host: str, port: int, on_accept: OnAccept) -> "Listener":
        """Bind every address `host` resolves to (OSError if one cannot be bound)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        socks: list[socket.socket] = []
        try:
            for family, kind, proto, _, addr in dict.fromkeys(infos):
                s = socket.socket(family, kind, proto)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(addr)
                s.listen(64)
                s.setblocking(False)
        except BaseException:
            for s in socks:
                s.close()
            raise
        return cls(socks, on_accept)

    async def _accept_loop(self, sock: socket.socket) -> None:
        """Accept forever, each connection handled in its own task."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except OSError:
                await asyncio.sleep(0.01)  # e.g. too many open files: try again shortly
                continue
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.ensure_future(self.on_accept(conn, addr))
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)

    async def aclose(self) -> None:
        """Stop accepting, drop connections still being handled, and release the ports."""
        tasks = [*self.tasks, *self.handlers]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in self.socks:
            s.close()
