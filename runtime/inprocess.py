"""Every party of a compiled program inside one event loop, over in-memory channels (for tests and
the Python API); the same VM, kernels and messages as over TCP, without the sockets."""
from __future__ import annotations

import asyncio

import numpy as np

from . import bytecode
from .net import make_local_meshes
from .session import PartyResult, execute


async def run_parties(manifest: dict, files: dict[str, bytes], inputs: dict[str, dict[str, np.ndarray]]
                      ) -> dict[str, PartyResult]:
    """Run all parties concurrently in this loop."""
    meshes = make_local_meshes(manifest["parties"])

    async def one(p: str) -> PartyResult:
        try:
            return await execute(manifest, bytecode.decode(files[p])["code"], p, meshes[p], inputs.get(p, {}))
        except BaseException as err:  # tell the others, so nobody waits for a dead party
            await meshes[p].abort(f"{p} failed: {err}")
            raise

    results = await asyncio.gather(*(one(p) for p in manifest["parties"]))
    return dict(zip(manifest["parties"], results))
