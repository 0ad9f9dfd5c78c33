"""The Python API: compile a program, emulate it, or run it with every party, from numpy arrays."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from veil.compiler.driver import Compiled, compile_file, compile_source, write_build
from veil.compiler.emulate import emulate as _emulate_ir

from . import fixedpoint
from .inprocess import encode_inputs, run_inprocess

Arrays = dict[str, dict[str, Any]]


def compile(program: str, params: dict[str, Any] | None = None, *, file: str = "<string>",
            frac_bits: int = 16, protocol: str | None = None, optimize: bool = True) -> Compiled:
    """Compile a .mpc path, or program text (then `file` names it in errors and anchors imports)."""
    if program.endswith(".mpc") and "\n" not in program and os.path.exists(program):
        return compile_file(program, params, frac_bits=frac_bits, protocol=protocol, optimize_ir=optimize)
    return compile_source(program, file, params, frac_bits=frac_bits, protocol=protocol, optimize_ir=optimize)


def emulate(c: Compiled, inputs: Arrays | None = None) -> Arrays:
    """Run in clear with the protocols' fixed-point semantics: {party: {output: array}}."""
    enc = encode_inputs(c.manifest, inputs or {})
    ring = {(p, n): v for p, d in enc.items() for n, v in d.items()}
    outs = _emulate_ir(c.prog, ring)
    return {p: {n: _decode(c, n, v) for n, v in d.items()} for p, d in outs.items()}


def _decode(c: Compiled, name: str, ring: np.ndarray) -> np.ndarray:
    dtype = next(o.dtype for o in c.prog.outputs if o.name == name)
    return fixedpoint.decode(ring, dtype, c.prog.frac_bits if dtype == "fix" else 0)


def run(c: Compiled, inputs: Arrays | None = None, *, processes: bool = False) -> Arrays:
    """Run the MPC with every party: in this process (default) or as processes over localhost TCP."""
    if not processes:
        results = run_inprocess(c.manifest, c.files, inputs or {})
        return {p: r.outputs for p, r in results.items()}
    from veil.compiler.errors import RuntimeFailure

    from .local import failure_summary, run_all

    with tempfile.TemporaryDirectory(prefix="veil-run-") as tmp:
        build_dir = os.path.join(tmp, "build")
        write_build(c, build_dir)
        paths: dict[str, dict[str, str]] = {}
        for party, named in (inputs or {}).items():
            for name, arr in named.items():
                path = os.path.join(tmp, f"{party}.{name}.npy")
                np.save(path, np.asarray(arr))
                paths.setdefault(party, {})[name] = path
        out_dir = os.path.join(tmp, "out")
        runs = run_all(build_dir, c.prog.parties, paths, out_dir)
        if any(r.code != 0 for r in runs):
            raise failure_summary(runs)
        result: Arrays = {}
        for party in c.prog.parties:
            result[party] = {}
            for o in c.manifest["outputs"].get(party, []):
                result[party][o["name"]] = np.load(os.path.join(out_dir, party, o["name"] + ".npy"))
        if not result:
            raise RuntimeFailure("no outputs")
        return result
