"""The operation registry (runtime/ops.py) and the protocols' declarations: every op has clear
semantics, a shape and dtype rule that agree with them, and under every protocol a lowering, an
expansion, or a refusal that names the protocol and the line; every op of every shipped program
obeys its rules."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from veil.compiler import driver
from veil.compiler.capabilities import Capabilities
from veil.compiler.expand import EXPANSIONS, expand
from veil.compiler.ir import Block, InputDecl, Op, OutputDecl, Program, walk
from veil.compiler.types import PUBLIC, SECRET, Type, private
from veil.runtime import api
from veil.runtime.diagnostics import Span, UnsupportedErr
from veil.runtime.ops import OPS
from veil.runtime.protocols import PROTOCOLS
from veil.runtime.ring import asring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRUCTURAL = {"input", "output", "loop"}  # the VM and the emulator run these themselves
SPAN = Span("t.mpc", 7, 3)

# One sample use of each op: operand (shape, dtype, scale) and attributes.
FIX = ((3, 4), "fix", 16)
INT = ((3, 4), "int", 0)
BOOL = ((3, 4), "bool", 0)
SAMPLES: dict[str, tuple[list, dict]] = {
    "const": ([], {"value": asring(np.arange(12, dtype=np.int64).reshape(3, 4))}),
    "share": ([FIX], {"owner": "alice"}), "from_public": ([FIX], {}), "reveal": ([FIX], {}),
    "reveal_to": ([FIX], {"party": "bob"}), "retag": ([INT], {}),
    "add": ([FIX, FIX], {}), "sub": ([FIX, FIX], {}), "neg": ([FIX], {}), "lshift": ([FIX], {"bits": 3}),
    "sum": ([FIX], {"axis": 1}), "transpose": ([FIX], {}), "reshape": ([FIX], {"shape": (2, 6)}),
    "broadcast": ([((1, 4), "fix", 16)], {"shape": (3, 4)}),
    "slice": ([FIX], {"key": [["s", 0, 2, 1], ["i", 1]]}),
    "dslice": ([FIX, ((), "int", 0)], {"axis": 0, "length": 2, "step": 1}),
    "concat": ([FIX, FIX], {"axis": 0}), "stack": ([FIX, FIX], {"axis": 1}),
    "mul": ([FIX, FIX], {}), "matmul": ([FIX, ((4, 2), "fix", 16)], {}), "trunc": ([FIX], {"bits": 16}),
    "bitand": ([BOOL, BOOL], {}), "bitor": ([BOOL, BOOL], {}), "bitnot": ([BOOL], {}),
    "where": ([BOOL, FIX, FIX], {}), "abs": ([FIX], {}), "maximum": ([FIX, FIX], {}),
    "minimum": ([FIX, FIX], {}), "rmax": ([FIX], {"axis": 0}), "rmin": ([FIX], {}),
    "floordiv": ([INT, INT], {}), "mod": ([INT, INT], {}), "div": ([FIX, FIX], {"bits": 16}),
    "toint": ([FIX], {"bits": 16}),
    "argmax": ([FIX], {"axis": 1}), "argmin": ([FIX], {}), "sort": ([FIX], {"axis": 1}),
    "take": ([FIX], {"index": np.array([2, 0, 1]), "axis": 0}),
    "im2col": ([((1, 2, 3, 4), "fix", 16)], {"kh": 2, "kw": 2, "stride": 1, "pads": [0, 0, 0, 1]}),
    "col2im": ([((8, 8), "fix", 16)], {"image": [1, 2, 3, 4], "kh": 2, "kw": 2, "stride": 1, "pads": [0, 0, 0, 1]}),
    "msb": ([FIX], {}), "a2b": ([INT], {}), "bitinject": ([INT], {"bit": 2}),  # bitinject's and b2a's operand: a2b's
    "b2a": ([INT], {}),
    "msb_at": ([((3, 1), "fix", 16)], {"shape": (3, 4), "sign": -1, "offsets": asring(np.arange(4, dtype=np.int64) - 2)}),
    "msb_at_mul": ([((3, 1), "fix", 16)], {"shape": (3, 4), "sign": -1, "offsets": asring(np.arange(4, dtype=np.int64)),
                                           "dsign": 1, "doffsets": asring(np.arange(4, dtype=np.int64) - 5)}),
    **{c: ([FIX, FIX], {}) for c in ("lt", "le", "gt", "ge", "eq", "ne")},
    "draw": ([], {"party": "alice", "shape": (3, 4), "bits": 16}), "random": ([], {"shape": (3, 4), "bits": 16}),
}
RANDOM = {"draw", "random"}  # fresh random values: MPC and emulation agree on their range, not their values


def _operand(rng: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    if dtype == "bool":
        return asring(rng.integers(0, 2, shape))
    if shape == ():
        return asring(np.int64(1))
    return asring(rng.integers(1, 50, shape) * (1 if dtype == "int" else 1 << 10))


def test_every_registered_op_has_a_sample():
    assert set(SAMPLES) | STRUCTURAL == set(OPS)


@pytest.mark.parametrize("name", sorted(set(OPS) - STRUCTURAL))
def test_clear_semantics_agree_with_the_shape_and_dtype_rules(name):
    d = OPS[name]
    operands, attrs = SAMPLES[name]
    assert d.clear is not None and d.describe
    assert d.arity is None or d.arity == len(operands)
    assert {a.rstrip("?") for a in d.attrs} >= set(attrs)
    rng = np.random.default_rng(1)
    args = [_operand(rng, s, t) for s, t, _ in operands]
    out = d.clear(*args, **attrs)
    assert out.dtype == np.uint64
    assert d.shape([s for s, _, _ in operands], **attrs) == out.shape
    assert d.dtype([t for _, t, _ in operands], **attrs) in ("fix", "int", "bool", None)


def _program(name: str, protocol: type, direct: bool = False) -> Program:
    """alice's operands, secret-shared (a share's stays hers; from_public's and an index are
    public constants), through the op, to an output. a2b's boolean result is checked through
    bitinject of one bit (`direct`: output as it is, which must be refused)."""
    compute = ["alice", "bob", "carol"]
    prog = Program(file="t.mpc", parties=compute + ["dave"], protocol=protocol.name, compute=compute,
                   protocol_args={}, params={}, frac_bits=16, body=Block())
    operands, attrs = SAMPLES[name]
    ins = []
    for i, (shape, dtype, scale) in enumerate(operands):
        if i in OPS[name].index_operands or name == "from_public":
            v = prog.new_value(Type(PUBLIC, dtype, shape, scale))
            prog.body.ops.append(Op("const", [v], [], {"value": asring(np.ones(shape, np.int64))}, SPAN))
            ins.append(v)
            continue
        t = Type(private("alice"), dtype, shape, scale)
        v = prog.new_value(t)
        prog.body.ops.append(Op("input", [v], [], {"party": "alice", "name": f"x{i}", "dtype": dtype}, SPAN))
        prog.inputs.append(InputDecl("alice", f"x{i}", shape, dtype, None, False))
        if name != "share":
            s = prog.new_value(t.with_(vis=SECRET))
            prog.body.ops.append(Op("share", [s], [v], {"owner": "alice"}, SPAN))
            v = s
        if name in ("bitinject", "b2a"):  # takes a boolean sharing
            b = prog.new_value(v.type.with_(kind="bool"))
            prog.body.ops.append(Op("a2b", [b], [v], {}, SPAN))
            v = b
        ins.append(v)
    d = OPS[name]
    vis = {"const": PUBLIC, "reveal": PUBLIC, "reveal_to": private("bob"), "draw": private("alice")}.get(name, SECRET)
    shape = d.shape([v.type.shape for v in ins], **attrs)
    dtype = d.dtype([v.type.dtype for v in ins], **attrs) or "fix"
    scale = 16 if dtype == "fix" else 0
    out = prog.new_value(Type(vis, dtype, shape, scale, "bool" if name == "a2b" else "arith"))
    prog.body.ops.append(Op(name, [out], ins, dict(attrs), SPAN))
    if name == "a2b" and not direct:
        bit, dtype, scale = prog.new_value(Type(vis, "bool", shape, 0)), "bool", 0
        prog.body.ops.append(Op("bitinject", [bit], [out], {"bit": 2}, SPAN))
        out = bit
    receiver = "bob" if name == "reveal_to" else "alice"
    prog.body.ops.append(Op("output", [], [out], {"name": "z", "to": [receiver], "dtype": dtype, "scale": scale},
                            SPAN))
    prog.outputs.append(OutputDecl("z", [receiver], shape, dtype))
    return prog


def _inputs(name: str) -> dict:
    """Values for alice's operands: small, nonzero (divisors), exactly representable."""
    rng = np.random.default_rng(3)
    values = {}
    for i, (shape, dtype, _) in enumerate(SAMPLES[name][0]):
        if i in OPS[name].index_operands or name == "from_public":
            continue  # public constants
        if dtype == "bool":
            values[f"x{i}"] = rng.integers(0, 2, shape).astype(bool)
        elif dtype == "int":
            values[f"x{i}"] = rng.integers(1, 9, shape)
        else:
            values[f"x{i}"] = rng.integers(-64, 64, shape) / 8 + (i + 1) / 4
    return {"alice": values}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("name", sorted(set(OPS) - STRUCTURAL))
def test_every_op_is_lowered_expanded_or_refused_by_name_under_every_protocol(name, protocol):
    proto = PROTOCOLS[protocol]
    prog = _program(name, proto)
    caps = Capabilities.of(prog)
    op = next(o for o in prog.body.ops if o.opcode == name)
    how = "kernel" if caps.kernel_of(op) else "local" if not caps.needs_kernel(op) else \
        "expansion" if name in EXPANSIONS else "refused"
    try:
        compiled = driver.back_end(expand(prog))
    except UnsupportedErr as err:
        assert how in ("expansion", "refused"), f"{name}: {how}, yet refused: {err.message}"
        assert f"by the {protocol} protocol" in err.message and "t.mpc:7:3" in err.message, err.message
        assert err.span == SPAN
        return
    assert how != "refused", f"{name}: neither a kernel, local, nor an expansion, yet lowered"
    ins = _inputs(name)
    receiver = "bob" if name == "reveal_to" else "alice"
    got, want = api.run(compiled, ins)[receiver]["z"], api.emulate(compiled, ins)[receiver]["z"]
    if name in RANDOM:
        top = 2 ** 16 if name == "draw" else 1.0
        for z in (np.asarray(got, np.float64), np.asarray(want, np.float64)):
            assert z.shape == (3, 4) and z.min() >= 0 and z.max() < top and len(np.unique(z)) > 6
        return
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), atol=2 ** -15)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_a_boolean_sharing_is_not_output_as_it_is(protocol):
    with pytest.raises(UnsupportedErr, match=f"by the {protocol} protocol"):
        driver.back_end(expand(_program("a2b", PROTOCOLS[protocol], direct=True)))


def test_protocols_declare_existing_kernels_only():
    for proto in PROTOCOLS.values():
        named = set(proto.native.values()) | set(proto.fusions.values()) | set(proto.additive.values())
        named |= {proto.additive_trunc} - {None}
        assert named <= set(proto.kernels), proto.name
        assert set(proto.native) <= set(OPS) and {c for pair in proto.fusions for c in pair} <= set(OPS)
        assert set(proto.share_kinds) <= {"arith", "bool"}
        for spec in proto.kernels.values():
            assert set(spec.counts) <= {"multiplications", "truncations", "comparisons"}


PROGRAMS = sorted(glob.glob(os.path.join(ROOT, "programs", "*.mpc")))


@pytest.mark.parametrize("path", PROGRAMS, ids=os.path.basename)
def test_every_op_of_the_shipped_programs_obeys_its_rules(path):
    for optimize in (True, False):
        prog = driver.load_program(path, optimize=optimize)
        for op in walk(prog.body):
            d = OPS[op.opcode]
            if op.opcode in STRUCTURAL:
                continue
            assert d.shape([v.type.shape for v in op.ins], **op.attrs) == op.out.type.shape, op.opcode
            want = d.dtype([v.type.dtype for v in op.ins], **op.attrs)
            assert want in (None, op.out.type.dtype), (op.opcode, want, op.out.type)
