"""Each optimization pass alone, on IR written by hand: golden IR text before/after, and the
emulator's results on random inputs unchanged (exactly, or within truncation error)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from veil.compiler.emulate import emulate
from veil.compiler.ir import Block, Op, Program, Value, walk
from veil.compiler.irtext import format_program
from veil.compiler.passes import cse, dce, dot_products, fold, optimize, place_truncations, simplify
from veil.compiler.types import PUBLIC, SECRET, Type
from veil.runtime.ring import asring, signed

F = 16


class IR:
    """A tiny builder for hand-written IR (independent of the language front end)."""

    def __init__(self) -> None:
        self.prog = Program(file="t.mpc", parties=["alice", "bob", "carol"], protocol="rep3",
                            compute=["alice", "bob", "carol"], protocol_args={}, params={}, frac_bits=F,
                            body=Block())
        self.block = self.prog.body

    def op(self, code: str, ins: list[Value], t: Type, **attrs) -> Value:
        v = self.prog.new_value(t)
        self.block.ops.append(Op(code, [v], list(ins), attrs))
        return v

    def input(self, party: str, name: str, shape: tuple, secret: bool = True) -> Value:
        v = self.op("input", [], Type(f"private({party})", "fix", shape, F), party=party, name=name, dtype="fix")
        return self.op("share", [v], v.type.with_(vis=SECRET), owner=party) if secret else v

    def const(self, x, dtype: str = "fix", scale: int = F, shape: tuple | None = None) -> Value:
        arr = np.asarray(x, dtype=np.float64)
        ring = np.round(arr * 2.0 ** scale).astype(np.int64).view(np.uint64) if dtype == "fix" else \
            arr.astype(np.int64).view(np.uint64)
        return self.op("const", [], Type(PUBLIC, dtype, arr.shape, scale if dtype == "fix" else 0),
                       value=np.array(ring))

    def mul(self, a: Value, b: Value) -> Value:
        """A fix product and the builder's naive truncation right after it."""
        vis = SECRET if SECRET in (a.type.vis, b.type.vis) else a.type.vis
        m = self.op("mul", [a, b], Type(vis, "fix", a.type.shape, a.type.scale + b.type.scale))
        return self.op("trunc", [m], m.type.with_(scale=F), bits=m.type.scale - F)

    def bin(self, code: str, a: Value, b: Value) -> Value:
        vis = SECRET if SECRET in (a.type.vis, b.type.vis) else a.type.vis
        return self.op(code, [a, b], a.type.with_(vis=vis))

    def output(self, v: Value, name: str) -> None:
        self.block.ops.append(Op("output", [], [v], {"name": name, "to": ["alice"], "dtype": v.type.dtype,
                                                     "scale": v.type.scale}))

    def loop(self, trips: int, inits: list[Value], body: Callable[..., list[Value]]) -> list[Value]:
        outer = self.block
        ivar = self.prog.new_value(Type(PUBLIC, "int", (), 0))
        params = [self.prog.new_value(v.type) for v in inits]
        self.block = Block(params=[ivar, *params])
        self.block.results = list(body(ivar, *params))
        inner, self.block = self.block, outer
        outs = [self.prog.new_value(v.type) for v in inits]
        outer.ops.append(Op("loop", outs, list(inits), {"trips": trips, "start": 0, "step": 1}, None, inner))
        return outs


def text(prog: Program) -> str:
    """The IR text of the body (without the header lines and the `body {` braces)."""
    lines = format_program(prog).splitlines()
    return "\n".join(line[2:] for line in lines[lines.index("body {") + 1:-1])


def random_inputs(prog: Program, rng, scale: float = 1.0) -> dict:
    out = {}
    for op in walk(prog.body):
        if op.opcode == "input":
            x = rng.normal(size=op.out.type.shape) * scale
            out[(op.attrs["party"], op.attrs["name"])] = asring(np.round(x * 2 ** F).astype(np.int64))
    return out


def same_results(before: Program, after: Program, rng, ulps: int = 0, trials: int = 3) -> None:
    """Both programs give the same outputs on random inputs (within `ulps` units of 2^-F)."""
    for _ in range(trials):
        inputs = random_inputs(before, rng)
        a, b = emulate(before, inputs)["alice"], emulate(after, inputs)["alice"]
        assert a.keys() == b.keys()
        for k in a:
            diff = np.abs(signed(a[k]).astype(np.int64) - signed(b[k]).astype(np.int64))
            assert diff.max(initial=0) <= ulps, (k, diff.max())


def opcodes(prog: Program) -> list[str]:
    return [op.opcode for op in walk(prog.body)]


# ---- fold ----------------------------------------------------------------------------------
def test_fold_computes_public_constants_and_dedupes(rng):
    b = IR()
    x = b.input("alice", "x", (3,))
    two = b.const([2, 2, 2], "int")
    three = b.const([3, 3, 3], "int")
    s = b.bin("add", two, three)
    again = b.const([2, 2, 2], "int")
    t = b.bin("mul", s, again)
    y = b.bin("mul", x, t)
    b.output(y, "y")
    before = b.prog
    after = fold(before)
    assert text(after) == """\
%1: private(alice) fix@16[3] = input() party="alice" name="x" dtype="fix"
%2: secret fix@16[3] = share(%1) owner="alice"
%3: public int[3] = const() value=array(uint64, (3,), [2, 2, 2])
%4: public int[3] = const() value=array(uint64, (3,), [3, 3, 3])
%5: public int[3] = const() value=array(uint64, (3,), [5, 5, 5])
%7: public int[3] = const() value=array(uint64, (3,), [10, 10, 10])
%8: secret fix@16[3] = mul(%2, %7)
output(%8) name="y" to=["alice"] dtype="fix" scale=16"""
    assert "add" in opcodes(before)  # the input program is left untouched
    same_results(before, after, rng)


def test_fold_uses_the_emulators_ring_semantics(rng):
    b = IR()
    x = b.const([2.5, -3.25])
    sq = b.op("mul", [x, x], x.type.with_(scale=2 * F))
    tr = b.op("trunc", [sq], x.type, bits=F)
    neg = b.op("neg", [tr], x.type)
    b.output(neg, "n")
    after = dce(fold(b.prog))
    assert opcodes(after) == ["const", "output"]
    same_results(b.prog, after, rng, trials=1)


def test_fold_leaves_what_the_emulator_would_report_to_run_time():
    b = IR()
    big = b.const(2.0 ** 40)
    sq = b.op("mul", [big, big], big.type.with_(scale=2 * F))  # overflows: reported when run
    b.output(b.op("trunc", [sq], big.type, bits=F), "v")
    zero = b.const(0, "int")
    b.output(b.op("floordiv", [b.const(7, "int"), zero], zero.type), "d")
    after = fold(b.prog)
    assert "mul" in opcodes(after) and "floordiv" in opcodes(after)


def test_fold_leaves_secret_and_unknown_ops_alone():
    b = IR()
    c = b.const([1.0, 2.0])
    s = b.op("from_public", [c], c.type.with_(vis=SECRET))
    u = b.op("frobnicate", [c], c.type)
    b.output(s, "s")
    b.output(u, "u")
    assert opcodes(fold(b.prog)) == ["const", "from_public", "frobnicate", "output", "output"]


def test_fold_does_not_blow_up_constants():
    b = IR()
    c = b.const(1.0)
    big = b.op("broadcast", [c], c.type.with_(shape=(100, 100)), shape=(100, 100))
    b.output(big, "b")
    assert "broadcast" in opcodes(fold(b.prog))


def test_fold_dedupes_into_loop_bodies(rng):
    b = IR()
    x = b.input("alice", "x", (2,))
    b.const([0.5, 0.5])

    def body(i, acc):
        k = b.const([0.5, 0.5])
        return [b.bin("add", acc, k)]

    (r,) = b.loop(3, [x], body)
    b.output(r, "r")
    after = fold(b.prog)
    loop = next(op for op in after.body.ops if op.opcode == "loop")
    assert [op.opcode for op in loop.body.ops] == ["add"]
    same_results(b.prog, after, rng)


# ---- cse -----------------------------------------------------------------------------------
def test_cse_merges_equal_pure_ops_including_commuted_and_communication(rng):
    b = IR()
    xa = b.input("alice", "x", (4,), secret=False)
    y = b.input("bob", "y", (4,))
    s1 = b.op("share", [xa], xa.type.with_(vis=SECRET), owner="alice")
    s2 = b.op("share", [xa], xa.type.with_(vis=SECRET), owner="alice")
    p = b.mul(s1, y)
    q = b.mul(y, s2)
    b.output(b.bin("add", p, q), "z")
    after = cse(b.prog)
    assert text(after) == """\
%1: private(alice) fix@16[4] = input() party="alice" name="x" dtype="fix"
%2: private(bob) fix@16[4] = input() party="bob" name="y" dtype="fix"
%3: secret fix@16[4] = share(%2) owner="bob"
%4: secret fix@16[4] = share(%1) owner="alice"
%6: secret fix@32[4] = mul(%4, %3)
%7: secret fix@16[4] = trunc(%6) bits=16
%10: secret fix@16[4] = add(%7, %7)
output(%10) name="z" to=["alice"] dtype="fix" scale=16"""
    same_results(b.prog, after, rng)


def test_cse_reuses_outer_values_inside_loops_but_never_hoists(rng):
    b = IR()
    x = b.input("alice", "x", (3, 2))
    xt = b.op("transpose", [x], x.type.with_(shape=(2, 3)))

    def body(i, acc):
        t1 = b.op("transpose", [x], x.type.with_(shape=(2, 3)))  # same as the outer one: reused
        t2 = b.op("neg", [acc], acc.type)
        t3 = b.op("neg", [acc], acc.type)  # depends on the loop: merged inside only
        return [b.bin("add", b.bin("add", t2, t3), b.op("transpose", [t1], x.type))]

    (r,) = b.loop(2, [x], body)
    b.output(r, "r")
    b.output(xt, "xt")
    after = cse(b.prog)
    loop = next(op for op in after.body.ops if op.opcode == "loop")
    assert [op.opcode for op in loop.body.ops] == ["neg", "add", "transpose", "add"]
    assert loop.body.ops[2].ins[0] is xt
    assert [op.opcode for op in after.body.ops] == ["input", "share", "transpose", "loop", "output", "output"]
    same_results(b.prog, after, rng)


def test_cse_keeps_distinct_types_and_effects_apart():
    b = IR()
    c = b.const([1, 2], "int")
    r1 = b.op("retag", [c], c.type.with_(dtype="fix"))
    r2 = b.op("retag", [c], c.type.with_(dtype="bool"))
    u1 = b.op("frobnicate", [c], c.type)
    u2 = b.op("frobnicate", [c], c.type)
    for n, v in enumerate([r1, r2, u1, u2]):
        b.output(v, f"o{n}")
    assert opcodes(cse(b.prog)).count("retag") == 2
    assert opcodes(cse(b.prog)).count("frobnicate") == 2


# ---- dce -----------------------------------------------------------------------------------
def test_dce_drops_unused_pure_ops_but_keeps_inputs_and_effects(rng):
    b = IR()
    x = b.input("alice", "x", (2,))
    b.input("bob", "unused", (2,), secret=False)
    b.mul(x, x)  # unused product: its kernels go
    b.op("reveal", [x], x.type.with_(vis=PUBLIC))  # unused reveal: goes
    c = b.const([1.0, 1.0])
    b.op("frobnicate", [c], c.type)  # unknown: kept
    b.output(b.bin("add", x, x), "y")
    after = dce(b.prog)
    assert text(after) == """\
%1: private(alice) fix@16[2] = input() party="alice" name="x" dtype="fix"
%2: secret fix@16[2] = share(%1) owner="alice"
%3: private(bob) fix@16[2] = input() party="bob" name="unused" dtype="fix"
%7: public fix@16[2] = const() value=array(uint64, (2,), [65536, 65536])
%8: public fix@16[2] = frobnicate(%7)
%9: secret fix@16[2] = add(%2, %2)
output(%9) name="y" to=["alice"] dtype="fix" scale=16"""
    b.block.ops = [op for op in b.block.ops if op.opcode != "frobnicate"]  # the emulator cannot run it
    after.body.ops = [op for op in after.body.ops if op.opcode != "frobnicate"]
    same_results(b.prog, after, rng)


def test_dce_keeps_secret_ops_the_protocol_cannot_compute():
    b = IR()
    x = b.input("alice", "x", (2,))
    b.op("lt", [x, x], x.type.with_(dtype="bool", scale=0))
    b.output(x, "x")
    assert "lt" in opcodes(dce(b.prog))


def test_dce_drops_dead_carried_values_and_idle_loops(rng):
    b = IR()
    x = b.input("alice", "x", (2,))
    y = b.input("bob", "y", (2,))

    def body(i, live, dead, same):
        return [b.bin("add", live, same), b.mul(dead, dead), same]

    live, _dead, same = b.loop(3, [x, y, x], body)

    def idle(i, acc):
        return [b.mul(acc, acc)]

    b.loop(5, [y], idle)
    b.output(live, "live")
    b.output(same, "same")
    after = dce(b.prog)
    loops = [op for op in after.body.ops if op.opcode == "loop"]
    assert len(loops) == 1
    (loop,) = loops
    assert len(loop.ins) == len(loop.outs) == len(loop.body.results) == 1 and len(loop.body.params) == 2
    assert [op.opcode for op in loop.body.ops] == ["add"]
    assert loop.body.ops[0].ins[1] is x  # the unchanged carried value became its initial value
    same_results(b.prog, after, rng)


def test_dce_keeps_carried_values_read_by_live_ones(rng):
    b = IR()
    x = b.input("alice", "x", (2,))

    def body(i, a, c):
        return [b.bin("add", a, c), b.bin("add", c, c)]

    a, _c = b.loop(3, [x, x], body)
    b.output(a, "a")
    after = dce(b.prog)
    loop = next(op for op in after.body.ops if op.opcode == "loop")
    assert len(loop.outs) == 2
    same_results(b.prog, after, rng)


# ---- simplify ------------------------------------------------------------------------------
def test_simplify_identities(rng):
    b = IR()
    x = b.input("alice", "x", (2, 3))
    one = b.const(np.ones((2, 3)), "int")
    zero = b.const(np.zeros((2, 3)))
    v = b.op("mul", [x, one], x.type)  # x * 1
    v = b.bin("add", v, zero)  # + 0
    v = b.bin("add", zero, v)  # 0 +
    v = b.bin("sub", v, zero)  # - 0
    v = b.op("neg", [b.op("neg", [v], v.type)], v.type)
    t = b.op("transpose", [v], v.type.with_(shape=(3, 2)))
    v = b.op("transpose", [t], v.type)
    v = b.op("reshape", [v], v.type, shape=(2, 3))
    v = b.op("broadcast", [v], v.type, shape=(2, 3))
    onef = b.const(1.0)
    v = b.mul(v, onef)  # trunc(v * 1.0) is v
    b.output(v, "v")
    r = b.op("reshape", [b.op("reshape", [x], x.type.with_(shape=(6,)), shape=(6,))], x.type.with_(shape=(3, 2)),
             shape=(3, 2))
    b.output(r, "r")
    n = b.bin("sub", zero, x)
    b.output(n, "n")
    after = dce(simplify(b.prog))
    assert text(after) == """\
%1: private(alice) fix@16[2x3] = input() party="alice" name="x" dtype="fix"
%2: secret fix@16[2x3] = share(%1) owner="alice"
output(%2) name="v" to=["alice"] dtype="fix" scale=16
%19: secret fix@16[3x2] = reshape(%2) shape=(3, 2)
output(%19) name="r" to=["alice"] dtype="fix" scale=16
%20: secret fix@16[2x3] = neg(%2)
output(%20) name="n" to=["alice"] dtype="fix" scale=16"""
    same_results(b.prog, after, rng)


def test_simplify_keeps_ops_that_change_the_type():
    b = IR()
    x = b.input("alice", "x", (3,))
    zero = b.const(np.zeros((2, 3)))
    y = b.op("add", [zero, x], x.type.with_(shape=(2, 3)))  # broadcasts x: not a copy
    b.output(y, "y")
    assert "add" in opcodes(simplify(b.prog))


# ---- truncation placement ------------------------------------------------------------------
def test_sum_of_products_truncates_once(rng):
    b = IR()
    x, y, z = (b.input(p, n, (5,)) for p, n in (("alice", "x"), ("bob", "y"), ("carol", "z")))
    v = b.bin("sub", b.bin("add", b.mul(x, y), b.mul(z, x)), b.mul(y, z))
    b.output(v, "v")
    after = place_truncations(b.prog)
    assert text(after) == """\
%1: private(alice) fix@16[5] = input() party="alice" name="x" dtype="fix"
%2: secret fix@16[5] = share(%1) owner="alice"
%3: private(bob) fix@16[5] = input() party="bob" name="y" dtype="fix"
%4: secret fix@16[5] = share(%3) owner="bob"
%5: private(carol) fix@16[5] = input() party="carol" name="z" dtype="fix"
%6: secret fix@16[5] = share(%5) owner="carol"
%7: secret fix@32[5] = mul(%2, %4)
%9: secret fix@32[5] = mul(%6, %2)
%15: secret fix@32[5] = add(%7, %9)
%12: secret fix@32[5] = mul(%4, %6)
%16: secret fix@32[5] = sub(%15, %12)
%14: secret fix@16[5] = trunc(%16) bits=16
output(%14) name="v" to=["alice"] dtype="fix" scale=16"""
    same_results(b.prog, after, rng, ulps=2)


def test_truncations_move_through_shape_ops_and_reductions(rng):
    b = IR()
    x = b.input("alice", "x", (4, 3))
    y = b.input("bob", "y", (4, 3), secret=False)  # private: its truncation is local
    p = b.mul(x, x)
    q = b.op("transpose", [p], p.type.with_(shape=(3, 4)))
    r = b.op("slice", [q], q.type.with_(shape=(2, 4)), key=[["s", 0, 2, 1], ["s", 0, 4, 1]])
    s = b.op("sum", [r], r.type.with_(shape=(4,)), axis=0)
    b.output(s, "s")
    t = b.op("sum", [b.mul(y, y)], y.type.with_(shape=(3,)), axis=0)
    b.output(t, "t")
    after = place_truncations(b.prog)
    truncs = [op for op in walk(after.body) if op.opcode == "trunc"]
    assert [op.out.type.size for op in truncs] == [4, 3]
    assert [op.ins[0].type.scale for op in truncs] == [32, 32]
    same_results(b.prog, after, rng, ulps=12)


def test_a_full_dot_product_becomes_one_fused_matrix_product(rng):
    b = IR()
    x, y = b.input("alice", "x", (6,)), b.input("bob", "y", (6,))
    s = b.op("sum", [b.mul(x, y)], x.type.with_(shape=()), axis=None)
    b.output(s, "s")
    after = dot_products(b.prog)
    assert [op.opcode for op in after.body.ops[4:]] == ["reshape", "reshape", "matmul", "trunc", "reshape", "output"]
    same_results(b.prog, after, rng, ulps=6)


def test_truncations_stay_where_single_scale_is_needed(rng):
    b = IR()
    x, y = b.input("alice", "x", (3,)), b.input("bob", "y", (3,))
    p, q = b.mul(x, y), b.mul(y, y)
    b.output(p, "p")  # p is also an output: its truncation stays
    s = b.bin("add", p, q)
    b.output(b.mul(s, s), "ss")  # a product needs single scale
    shared = b.op("reveal", [b.bin("add", b.mul(x, x), b.mul(x, y))], x.type.with_(vis=PUBLIC))
    b.output(shared, "r")  # reveal reads the (merged) sum's truncated value

    def body(i, acc):
        return [b.bin("add", b.mul(acc, x), b.mul(acc, y))]  # truncated inside, result carried

    (lp,) = b.loop(2, [x], body)
    b.output(lp, "lp")
    after = place_truncations(b.prog)
    assert "lshift" not in opcodes(after)  # no gain in lifting p's truncated value
    loop = next(op for op in after.body.ops if op.opcode == "loop")
    assert [op.opcode for op in loop.body.ops] == ["mul", "mul", "add", "trunc"]
    assert loop.body.results[0] is loop.body.ops[-1].out
    assert sum(op.opcode == "trunc" for op in walk(after.body)) == \
        sum(op.opcode == "trunc" for op in walk(b.prog.body)) - 2
    same_results(b.prog, after, rng, ulps=4)


def test_mismatched_bits_are_not_merged():
    b = IR()
    x = b.input("alice", "x", (3,))
    c1, c2 = b.const(0.25, scale=F + 2), b.const(0.001, scale=F + 9)
    v = b.bin("add", b.mul(x, c1), b.mul(x, c2))
    b.output(v, "v")
    assert text(place_truncations(b.prog)) == text(b.prog)


# ---- the pipeline ---------------------------------------------------------------------------
def test_optimize_is_a_function_of_its_input(rng):
    b = IR()
    x, y = b.input("alice", "x", (4,)), b.input("bob", "y", (4,))
    two = b.bin("add", b.const(1, "int"), b.const(1, "int"))
    v = b.bin("add", b.mul(x, y), b.mul(y, x))
    b.output(b.op("mul", [v, two], v.type), "v")
    before = format_program(b.prog)
    first, second = optimize(b.prog), optimize(b.prog)
    assert format_program(b.prog) == before
    assert format_program(first) == format_program(second)
    assert opcodes(first).count("trunc") == 1 and opcodes(first).count("mul") == 2
    same_results(b.prog, first, rng, ulps=2)


@pytest.mark.parametrize("seed", range(3))
def test_optimize_preserves_random_straight_line_programs(seed):
    """Random mixes of products and linear ops: optimized outputs equal within truncation error."""
    rng = np.random.default_rng(seed)
    b = IR()
    vals = [b.input("alice", "a", (3,)), b.input("bob", "b", (3,)), b.input("carol", "c", (3,), secret=False)]
    for _ in range(12):
        k = rng.integers(0, 5)
        x, y = (vals[i] for i in rng.integers(0, len(vals), size=2))
        if k == 0:
            vals.append(b.mul(x, y))
        elif k == 1:
            vals.append(b.bin("add", x, y))
        elif k == 2:
            vals.append(b.bin("sub", x, y))
        elif k == 3:
            vals.append(b.op("neg", [x], x.type))
        else:
            vals.append(b.mul(x, b.const(0.5)))
    for n, v in enumerate(vals[-3:]):
        b.output(v, f"o{n}")
    after = optimize(b.prog)
    assert opcodes(after).count("trunc") <= opcodes(b.prog).count("trunc")
    for _ in range(3):
        inputs = random_inputs(b.prog, rng, scale=0.5)
        a, c = emulate(b.prog, inputs)["alice"], emulate(after, inputs)["alice"]
        for k in a:
            x, y = signed(a[k]).astype(np.float64) / 2 ** F, signed(c[k]).astype(np.float64) / 2 ** F
            assert np.all(np.abs(x - y) <= 64 * 2.0 ** -F * (1 + np.abs(x))), k
