"""`veil emulate`: run the IR in clear with exactly the protocols' fixed-point semantics (the oracle)."""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.ring import LOCAL, asring, signed

from .errors import RuntimeFailure
from .ir import Block, Program

# Ops that change who knows a value but not the value itself.
IDENTITY = {"share", "from_public", "reveal", "reveal_to", "retag"}
OVERFLOW_BOUND = 1 << 62  # beyond this a truncation's input leaves the documented range


class OverflowWarning(RuntimeFailure):
    """A fixed-point value left the range in which the protocols compute exactly."""


def emulate(prog: Program, inputs: dict[tuple[str, str], np.ndarray], *, check_overflow: bool = True
            ) -> dict[str, dict[str, np.ndarray]]:
    """Run the program; inputs are ring-encoded arrays keyed by (party, name). Returns
    {party: {output name: ring array}} with the receivers of each output."""
    env: dict[int, np.ndarray] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {p: {} for p in prog.parties}
    with np.errstate(over="ignore"):
        _run(prog.body, env, inputs, outputs, check_overflow)
    return outputs


def _run(block: Block, env: dict[int, Any], inputs, outputs, check: bool) -> None:
    for op in block.ops:
        code = op.opcode
        args = [env[v.id] for v in op.ins]
        if code == "const":
            env[op.out.id] = op.attrs["value"]
        elif code == "input":
            env[op.out.id] = inputs[(op.attrs["party"], op.attrs["name"])]
        elif code in IDENTITY:
            env[op.out.id] = args[0]
        elif code == "output":
            for p in op.attrs["to"]:
                outputs[p][op.attrs["name"]] = args[0]
        elif code == "loop":
            body = op.body
            state = list(args)
            for k in range(op.attrs["trips"]):
                env[body.params[0].id] = asring(np.int64(op.attrs["start"] + k * op.attrs["step"]))
                for p, v in zip(body.params[1:], state):
                    env[p.id] = v
                _run(body, env, inputs, outputs, check)
                state = [env[r.id] for r in body.results]
            for o, v in zip(op.outs, state):
                env[o.id] = v
        else:
            if code == "trunc" and check:
                _check_range(args[0], op)
            attrs = {k: v for k, v in op.attrs.items()}
            env[op.out.id] = LOCAL[code](*args, **attrs)


def _check_range(x: np.ndarray, op) -> None:
    """Report a product whose magnitude leaves the range where truncation is exact within one unit."""
    s = signed(x)
    if s.size and (s.max() >= OVERFLOW_BOUND or s.min() < -OVERFLOW_BOUND):
        line = f"line {op.span.line}" if op.span else "unknown line"
        raise OverflowWarning(f"fixed-point overflow at {line}: a product reached magnitude "
                              f"2^{np.log2(float(np.abs(s.astype(np.float64)).max())):.1f} (the limit is 2^62 at "
                              "double scale)", op.span, "scale the data down or lower --frac-bits")
