"""`veil compile`: source to a build directory (manifest.json + one bytecode file per party)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from veil.runtime import bytecode

from .build import build
from .expand import expand
from .emulate import emulate  # noqa: F401  (re-exported for the API)
from .ir import Program, format_program
from .lower import CostReport, lower
from .passes import optimize


@dataclass
class Compiled:
    """A compiled program in memory: the IR, each party's bytecode, the manifest and the cost."""

    prog: Program
    files: dict[str, bytes]
    manifest: dict[str, Any]
    cost: CostReport
    compile_seconds: float

    def ir_text(self) -> str:
        return format_program(self.prog)


def compile_source(text: str, file: str, params: dict[str, Any] | None = None, *, frac_bits: int = 16,
                   protocol: str | None = None, optimize_ir: bool = True, lower_ir: bool = True) -> Compiled:
    """Compile source text; raises VeilError for every user mistake. With lower_ir=False (what
    `veil emulate` needs) the protocol lowering is skipped: no bytecode, an empty cost report, and
    constructs the protocol cannot run yet (secure comparisons, ...) are accepted."""
    t0 = time.perf_counter()
    prog = build(text, file, params, frac_bits, protocol)
    if optimize_ir:
        prog = optimize(prog)
    prog = expand(prog)
    if not lower_ir:
        cost = CostReport(bytes_sent={p: 0 for p in prog.parties}, party_rounds={p: 0 for p in prog.parties})
        return Compiled(prog, {}, make_manifest(prog, {}, cost), cost, time.perf_counter() - t0)
    code, cost = lower(prog)
    files = {p: bytecode.encode(p, code[p]) for p in prog.parties}
    manifest = make_manifest(prog, files, cost)
    return Compiled(prog, files, manifest, cost, time.perf_counter() - t0)


def compile_file(path: str, params: dict[str, Any] | None = None, **kw) -> Compiled:
    """Compile a .mpc file (same keywords as compile_source)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as err:
        from veil.runtime.diagnostics import UsageErr
        raise UsageErr(f"{path}: cannot read the program ({err.__class__.__name__}: "
                       f"{getattr(err, 'strerror', None) or err})", None,
                       "a .mpc program is a UTF-8 text file") from None
    return compile_source(text, path, params, **kw)


def make_manifest(prog: Program, files: dict[str, bytes], cost: CostReport) -> dict[str, Any]:
    core = {
        "program": os.path.basename(prog.file),
        "parties": prog.parties,
        "protocol": prog.protocol,
        "compute": prog.compute,
        "frac_bits": prog.frac_bits,
        "params": prog.params,
        "inputs": {p: [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype, "head": i.head}
                       for i in prog.inputs if i.party == p] for p in prog.parties},
        "outputs": {p: [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype}
                        for o in prog.outputs if p in o.to] for p in prog.parties},
    }
    defaults = {f"{i.party}.{i.name}": i.default for i in prog.inputs if i.default}
    return {
        "veil": bytecode.VERSION,
        **core,
        "hash": bytecode.program_hash(files, core),
        "files": {p: f"{p}.bc" for p in prog.parties},
        "source_dir": os.path.dirname(os.path.abspath(prog.file)),
        "defaults": defaults,
        "cost": cost.as_dict(),
    }


def write_build(c: Compiled, out_dir: str) -> None:
    """Write the build directory (bytecode first, the manifest last, each atomically)."""
    os.makedirs(out_dir, exist_ok=True)
    for party, data in c.files.items():
        _atomic_write(os.path.join(out_dir, f"{party}.bc"), data)
    _atomic_write(os.path.join(out_dir, "manifest.json"),
                  (json.dumps(c.manifest, indent=2, sort_keys=True) + "\n").encode())


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
