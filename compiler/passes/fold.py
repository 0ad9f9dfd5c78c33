"""Constant folding: public ops on constants become constants; identical constants become one."""
from __future__ import annotations

import numpy as np

from veil.runtime.ring import asring

from ..emulate import emulate
from ..ir import Block, Op, Program, Value
from ..types import PUBLIC
from .util import clone, freeze, pure, rename_inputs, resolve

# A folded constant may grow past its inputs (broadcast, concat) only up to this many elements:
# constants travel in every party's bytecode.
MAX_GROWTH = 64


def fold(prog: Program) -> Program:
    """Evaluate public ops whose inputs are all constants, exactly as the emulator would."""
    prog = clone(prog)
    repl: dict[int, Value] = {}
    _fold_block(prog.body, {}, [{}], repl)
    prog.body.results = [resolve(repl, v) for v in prog.body.results]
    return prog


def _fold_block(block: Block, values: dict[int, np.ndarray], scopes: list[dict], repl: dict[int, Value]) -> None:
    ops: list[Op] = []
    for op in block.ops:
        rename_inputs(op, repl)
        if op.body is not None:
            _fold_block(op.body, values, scopes + [{}], repl)
            op.body.results = [resolve(repl, v) for v in op.body.results]
            ops.append(op)
            continue
        folded = _evaluate(op, values)
        if folded is not None:
            op = Op("const", [op.out], [], {"value": folded}, op.span)
        if op.opcode == "const":
            key = (op.out.type, freeze(op.attrs["value"]))
            same = next((s[key] for s in reversed(scopes) if key in s), None)
            if same is not None:
                repl[op.out.id] = same
                continue
            scopes[-1][key] = op.out
            values[op.out.id] = op.attrs["value"]
        ops.append(op)
    block.ops = ops


def _evaluate(op: Op, values: dict[int, np.ndarray]) -> np.ndarray | None:
    """The value of a public op on constants, or None when it is not one, would bloat the code,
    or would fail in the emulator (overflow, division by zero: left to be reported at run time)."""
    code = op.opcode
    if code == "const" or not pure(op) or len(op.outs) != 1 or not op.ins:
        return None
    if op.out.type.vis != PUBLIC or any(v.id not in values for v in op.ins):
        return None
    size = op.out.type.size
    if size > MAX_GROWTH and size > max(int(np.size(values[v.id])) for v in op.ins):
        return None
    return _run_alone(op, values)


def _run_alone(op: Op, values: dict[int, np.ndarray]) -> np.ndarray | None:
    """Run one op through the emulator itself, so folding has exactly its semantics and checks."""
    ops = [Op("const", [v], [], {"value": values[v.id]}) for v in op.ins]
    ops.append(Op(op.opcode, list(op.outs), list(op.ins), dict(op.attrs), op.span))
    ops.append(Op("output", [], [op.out], {"name": "v", "to": ["p"]}))
    mini = Program(file="", parties=["p"], protocol="", compute=[], protocol_args={}, params={},
                   frac_bits=0, body=Block(ops))
    try:
        with np.errstate(all="ignore"):
            result = emulate(mini, {})["p"]["v"]
    except Exception:  # noqa: BLE001 - whatever fails here fails again, with its message, at run time
        return None
    result = np.array(asring(result), copy=True)
    if result.shape != op.out.type.shape:
        return None
    return result
