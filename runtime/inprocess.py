"""Every party of a compiled program inside one event loop, over in-memory channels (for tests and
the Python API); the same VM, kernels and messages as over TCP, without the sockets."""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from . import bytecode, fixedpoint
from .session import PartyResult, execute


def encode_inputs(manifest: dict, arrays: dict[str, dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """{party: {name: clear array}} -> ring-encoded inputs, checked against the declared shapes."""
    from .inputs import load_input
    import os
    import tempfile

    F = manifest["frac_bits"]
    out: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="veil-in-") as tmp:
        for party, decls in manifest["inputs"].items():
            out[party] = {}
            for d in decls:
                if d["name"] not in arrays.get(party, {}):
                    default = manifest.get("defaults", {}).get(f"{party}.{d['name']}")
                    if default is None:
                        raise KeyError(f"no value for input {party}.{d['name']}")
                    path = os.path.join(manifest["source_dir"], default)
                else:
                    path = os.path.join(tmp, f"{party}.{d['name']}.npy")
                    np.save(path, np.asarray(arrays[party][d["name"]]))
                arr = load_input(path, tuple(d["shape"]), d["dtype"], head=d["head"], party=party,
                                 name=d["name"], frac_bits=F)
                out[party][d["name"]] = fixedpoint.encode(arr, d["dtype"], F)
    return out


async def run_parties(manifest: dict, files: dict[str, bytes], inputs: dict[str, dict[str, np.ndarray]]
                      ) -> dict[str, PartyResult]:
    """Run all parties concurrently in this loop."""
    from .net import make_local_meshes

    meshes = make_local_meshes(manifest["parties"])

    async def one(p: str) -> PartyResult:
        try:
            return await execute(manifest, bytecode.decode(files[p])["code"], p, meshes[p], inputs.get(p, {}))
        except BaseException as err:  # tell the others, so nobody waits for a dead party
            await meshes[p].abort(f"{p} failed: {err}")
            raise

    results = await asyncio.gather(*(one(p) for p in manifest["parties"]))
    return dict(zip(manifest["parties"], results))


def run_inprocess(manifest: dict, files: dict[str, bytes], arrays: dict[str, dict[str, Any]]
                  ) -> dict[str, PartyResult]:
    """Clear inputs in, {party: PartyResult} out."""
    return asyncio.run(run_parties(manifest, files, encode_inputs(manifest, arrays)))
