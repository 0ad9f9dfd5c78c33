"""Networking between parties: the entry points, and running them on a (uv)loop.

The network layer is split by concern: veil.runtime.framing (what travels on a stream),
veil.runtime.connect (listening, dialling, TLS and the handshake: `connect_mesh`) and
veil.runtime.mesh (send/recv, failures, and the in-process `LocalMesh`), veil.runtime.tcp_mesh
(the connected TCP mesh: heartbeats, relayed aborts, the all-done exchange). This module
keeps the names the rest of veil imports in one place, and the event-loop helpers they run on.
"""
from __future__ import annotations

import asyncio
import socket
from types import ModuleType
from typing import Any, Coroutine, TypeVar

from .connect import connect_mesh
from .mesh import LocalMesh, MeshBase, make_local_meshes
from .tcp_mesh import Mesh

__all__ = [
    "LocalMesh", "Mesh", "MeshBase", "connect_mesh", "free_ports", "install_event_loop_policy",
    "make_local_meshes", "run",
]

T = TypeVar("T")


def _uvloop() -> ModuleType | None:
    """The uvloop module, or None when it is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def install_event_loop_policy() -> bool:
    """Make asyncio use uvloop when it is installed (faster sockets); True if it did."""
    uvloop = _uvloop()
    if uvloop is None:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """Run a coroutine on a fresh loop (uvloop if available) without touching the global policy."""
    uvloop = _uvloop() if use_uvloop else None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(main)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports the OS considers free right now (for tests and `veil local`)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
