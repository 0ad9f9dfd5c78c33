"""`veil compile`: source to a build directory (manifest.json + one bytecode file per party)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from veil.runtime import bytecode
from veil.runtime.diagnostics import UsageErr

from .build import build
from .emulate import emulate  # noqa: F401  (re-exported for the API)
from .expand import expand
from .history import follow
from .ir import Program
from .irtext import format_program, parse_program
from .lower import CostReport, lower
from .passes import optimize as optimize_program


@dataclass
class Compiled:
    """A compiled program in memory: the IR, each party's bytecode, the manifest and the cost."""

    prog: Program
    files: dict[str, bytes]
    manifest: dict[str, Any]
    cost: CostReport
    compile_seconds: float

    def ir_text(self) -> str:
        """The optimized IR as text (what `veil compile --emit-ir` prints and `veil compile X.ir` reads)."""
        return format_program(self.prog)


def front_end(text: str, file: str, params: dict[str, Any] | None = None, *, frac_bits: int | None = None,
              protocol: str | None = None, optimize: bool = True) -> Program:
    """Source text to the optimized and expanded IR: what `veil emulate` runs (constructs the
    protocol cannot run yet are accepted here) and `--emit-ir` prints. `optimize=False` is -O0.
    `frac_bits` (--frac-bits) overrides the program's `precision` line; None keeps it."""
    prog = follow(build(text, file, params, frac_bits, protocol))  # history outputs, before DCE
    prog = optimize_program(prog) if optimize else prog
    return expand(prog)


def back_end(prog: Program, started: float | None = None) -> Compiled:
    """The IR to each party's bytecode, the manifest and the cost report. Composite ops left in
    hand-written IR text are expanded first (a no-op on the front end's output); the lowering
    leaves `prog` as it was. `started` is when compiling began."""
    t0 = time.perf_counter() if started is None else started
    prog = expand(prog)
    code, cost = lower(prog)
    files = {p: bytecode.encode(p, code[p]) for p in prog.parties}
    return Compiled(prog, files, make_manifest(prog, files, cost), cost, time.perf_counter() - t0)


def compile_source(text: str, file: str, params: dict[str, Any] | None = None, *, frac_bits: int | None = None,
                   protocol: str | None = None, optimize: bool = True) -> Compiled:
    """Compile source text (front end, then back end); raises VeilError for every user mistake."""
    t0 = time.perf_counter()
    prog = front_end(text, file, params, frac_bits=frac_bits, protocol=protocol, optimize=optimize)
    return back_end(prog, t0)


def read_text(path: str) -> str:
    """A program file's text, or a UsageErr that says why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageErr(f"{path}: cannot read the program ({err.__class__.__name__}: "
                       f"{getattr(err, 'strerror', None) or err})", None,
                       "a .mpc program or .ir file is a UTF-8 text file") from None


def is_ir(path: str) -> bool:
    """Whether a path names IR text (`--emit-ir` output) rather than a .mpc program."""
    return path.endswith(".ir")


def load_program(path: str, params: dict[str, Any] | None = None, **kw: Any) -> Program:
    """A .mpc file through the front end (keywords as front_end), or a .ir file parsed as it is."""
    text = read_text(path)
    if is_ir(path):
        return parse_program(text, path)
    return front_end(text, path, params, **kw)


def compile_file(path: str, params: dict[str, Any] | None = None, **kw: Any) -> Compiled:
    """Compile a .mpc file (same keywords as compile_source) or a .ir file (no keywords apply)."""
    t0 = time.perf_counter()
    if is_ir(path) and (params or kw):
        raise UsageErr(f"{path} is IR text: params, frac_bits, protocol and optimize were fixed "
                       "when it was made", None, "pass them when compiling the .mpc program")
    return back_end(load_program(path, params, **kw), t0)


def make_manifest(prog: Program, files: dict[str, bytes], cost: CostReport) -> dict[str, Any]:
    """What a build directory's manifest.json holds: parties, declarations, hash, cost."""
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
    assert tuple(core) == bytecode.CORE_KEYS  # the runtime recomputes the hash from these
    defaults = {f"{i.party}.{i.name}": i.default for i in prog.inputs if i.default}
    return {
        "veil": bytecode.VERSION,
        **core,
        "hash": bytecode.program_hash(files, core),
        "files": {p: f"{p}.bc" for p in prog.parties},
        "sha256": {p: bytecode.file_digest(data) for p, data in files.items()},
        "source_dir": os.path.dirname(os.path.abspath(prog.file)),
        "defaults": defaults,
        "cost": cost.as_dict(),
    }


def declarations(prog: Program) -> dict[str, Any]:
    """The manifest of a program that is not lowered (no bytecode, no cost): what emulating it
    needs to read inputs and print outputs."""
    cost = CostReport(bytes_sent={p: 0 for p in prog.parties}, party_rounds={p: 0 for p in prog.parties})
    return make_manifest(prog, {}, cost)


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
