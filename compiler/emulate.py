"""`veil emulate`: run the IR in clear with exactly the protocols' fixed-point semantics (the oracle)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from veil.runtime.ops import OPS
from veil.runtime.randomness import emulation_rng, private_draw
from veil.runtime.ring import asring, signed

from veil.runtime.diagnostics import RuntimeFailure
from .ir import Block, Op, Program

OVERFLOW_BOUND = 1 << 62  # beyond this a truncation's input leaves the documented range
INT_BOUND = 1 << 63  # an int result beyond this has wrapped around the 64-bit ring


class OverflowWarning(RuntimeFailure):
    """A fixed-point value left the range in which the protocols compute exactly."""


class EmulationError(RuntimeFailure):
    """The program fails on these inputs in clear (e.g. a division by zero)."""


@dataclass
class _Run:
    """One emulation's state: its inputs and outputs, the checks asked for, the generator secret
    random draws come from, and the underflows seen (per source position)."""

    inputs: dict[tuple[str, str], np.ndarray]
    outputs: dict[str, dict[str, np.ndarray]]
    check: bool
    rng: np.random.Generator
    underflow: "Underflows | None"


COARSE_UNITS = 16  # a tensor whose typical element is below 16 units holds fewer than 4 significant bits


@dataclass
class Underflows:
    """Truncations whose result underflows for most elements of a tensor: most of those whose exact
    value is not 0 become 0, or their median magnitude is below COARSE_UNITS units (fewer than 4
    significant bits left): gradients or updates that vanish or keep almost no precision (a small
    learning rate times small gradients, say; exact zeros, e.g. a weight gradient where an input
    pixel is always 0, do not count)."""

    seen: dict[str, list] = field(default_factory=dict)  # position -> [times, executions, worst share, F, n]

    def record(self, op: Op, exact: np.ndarray | None, out: np.ndarray) -> None:
        """Count one execution of a truncation, and its underflow if most of the tensor vanished."""
        key = _where(op)
        entry = self.seen.setdefault(key, [0, 0, 0.0, op.out.type.scale, int(out.size)])
        entry[1] += 1
        if exact is None:
            return
        nonzero = np.abs(exact[exact != 0])
        lost = float(np.count_nonzero((out == 0) & (exact != 0))) / max(1, nonzero.size)
        if lost > 0.5 or (nonzero.size and float(np.median(nonzero)) < COARSE_UNITS):
            entry[0] += 1
            entry[2] = max(entry[2], lost)

    def report(self, stream: TextIO) -> int:
        """One warning per position that underflowed, with how often; returns how many positions."""
        bad = [(k, e) for k, e in self.seen.items() if e[0]]
        for where, (times, runs, worst, F, n) in bad:
            stream.write(f"warning: fixed-point underflow at {where}: at {F} fractional bits most of the {n} "
                         f"elements of a product round to 0 or keep fewer than 4 significant bits (up to "
                         f"{worst:.0%} of the nonzero ones became 0; {times} of {runs} executions)\n")
        if bad:
            more = min(30, max(20, bad[0][1][3] + 4))
            stream.write(f"  hint: gradients or updates vanish; state more precision in the program, e.g. "
                         f"`precision {more}`, or pass --frac-bits {more}\n")
        return len(bad)


def emulate(prog: Program, inputs: dict[tuple[str, str], np.ndarray], *, check_overflow: bool = True,
            seed: int | None = None, underflow: TextIO | None | bool = True
            ) -> dict[str, dict[str, np.ndarray]]:
    """Run the program; inputs are ring-encoded arrays keyed by (party, name). Returns
    {party: {output name: ring array}} with the receivers of each output (an output inside loops
    is a history: its rows, shaped by the trips). Secret random numbers come from `seed` (else
    $VEIL_EMULATE_SEED, else fresh entropy). Underflowing truncations are reported at the end to
    `underflow` (True: stderr; None or False: not checked)."""
    stream = sys.stderr if underflow is True else underflow or None
    run = _Run(inputs, {p: {} for p in prog.parties}, check_overflow, emulation_rng(seed),
               Underflows() if stream is not None else None)
    try:
        with np.errstate(over="ignore"):
            _run(prog.body, {}, run)
    finally:
        if run.underflow is not None:
            run.underflow.report(stream)
    for named in run.outputs.values():
        for name, got in named.items():
            if isinstance(got, _History):
                named[name] = np.stack(got.rows).reshape(got.trips + np.shape(got.rows[0]))
    return run.outputs


class _History:
    """The rows of an output inside loops, in iteration order."""

    def __init__(self, trips: tuple[int, ...]):
        self.trips, self.rows = trips, []


def _run(block: Block, env: dict[int, Any], run: _Run, trips: tuple[int, ...] = ()) -> None:
    inputs, outputs, check = run.inputs, run.outputs, run.check
    for op in block.ops:
        code = op.opcode
        args = [env[v.id] for v in op.ins]
        if code == "const":
            env[op.out.id] = op.attrs["value"]
        elif code == "draw":
            env[op.out.id] = private_draw(op.attrs["shape"], op.attrs["bits"], run.rng)
        elif code == "input":
            env[op.out.id] = inputs[(op.attrs["party"], op.attrs["name"])]
        elif OPS[code].identity:
            env[op.out.id] = args[0]
        elif code == "output" and trips:
            for p in op.attrs["to"]:
                outputs[p].setdefault(op.attrs["name"], _History(trips)).rows.append(args[0])
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
                _run(body, env, run, trips + (op.attrs["trips"],))
                state = [env[r.id] for r in body.results]
            for o, v in zip(op.outs, state):
                env[o.id] = v
        else:
            if code == "trunc" and check:
                _check_range(args[0], op)
            spec = OPS[code]
            if spec.divides and np.any(np.asarray(args[1]) == 0):
                raise EmulationError(f"division by zero at {_where(op)}", op.span,
                                     "the divisor is 0 for some element on these inputs")
            out = spec.clear(*args, **op.attrs)
            if check and spec.shadow is not None and op.outs and op.out.type.dtype in ("fix", "int"):
                _check_wrap(spec.shadow, args, op)
            if code == "trunc" and run.underflow is not None and op.out.type.dtype == "fix" and _user_level(op):
                coarse = out.size and float(np.median(np.abs(signed(out)))) < COARSE_UNITS
                run.underflow.record(op, spec.shadow(*args, **op.attrs) if coarse else None, out)
            env[op.out.id] = out


def _user_level(op: Op) -> bool:
    """Whether an underflow here can be a vanishing gradient or update: not inside the stdlib's
    math functions (ml.mpc), whose tiny terms vanish by design (a polynomial's t^4 beside 1,
    exp of a large negative number) within their documented error."""
    return op.span is None or op.span.file != "<stdlib>/ml.mpc"


def _where(op: Op) -> str:
    """The op's call chain, `u.mpc:27:13 → m.mpc:13:5`, outermost first."""
    return op.span.where() if op.span else "an unknown position"


def _check_range(x: np.ndarray, op: Op) -> None:
    """Report a product whose magnitude leaves the range where truncation is exact within one unit."""
    s = signed(x)
    if s.size and (s.max() >= OVERFLOW_BOUND or s.min() < -OVERFLOW_BOUND):
        raise OverflowWarning(f"fixed-point overflow at {_where(op)}: a product reached magnitude "
                              f"2^{np.log2(float(np.abs(s.astype(np.float64)).max())):.1f} (the limit is 2^62 at "
                              "double scale)", op.span, "scale the data down or lower --frac-bits")


def _check_wrap(shadow, args: list[np.ndarray], op: Op) -> None:
    """Report an addition or multiplication whose exact result left the ring (it wrapped)."""
    t = op.out.type
    bound = float(OVERFLOW_BOUND if t.dtype == "fix" else INT_BOUND)
    exact = shadow(*args, **op.attrs)
    if not exact.size:
        return
    peak = float(np.max(np.abs(exact)))
    if peak < bound or (t.dtype != "fix" and float(np.max(exact)) < bound and float(np.min(exact)) >= -bound):
        return  # ints span [-2^63, 2^63)
    if t.dtype == "fix":
        value = peak / 2.0 ** t.scale
        raise OverflowWarning(f"fixed-point overflow at {_where(op)}: a value reached {value:.4g}, beyond "
                              f"the ring's range at {t.scale} fractional bits (|x| < 2^{62 - t.scale})", op.span,
                              "scale the data down or lower --frac-bits")
    raise OverflowWarning(f"integer overflow at {_where(op)}: a value reached {peak:.4g}, beyond the 64-bit "
                          "range (|x| < 2^63)", op.span, "int arithmetic wraps around at 2^64 in MPC")
