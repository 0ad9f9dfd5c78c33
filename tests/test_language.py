"""Every construct of LANGUAGE.md §2-§9, compared with numpy: in clear through the emulator, and
through the in-process MPC for what rep3 computes today."""
from __future__ import annotations

import numpy as np
import pytest

from veil.compiler import driver
from veil.compiler.emulate import OverflowWarning
from veil.runtime.diagnostics import UnsupportedErr
from veil.compiler.ir import walk
from veil.runtime import api

HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
TOL = 2e-3


def emulate(src: str, inputs: dict, params=None, frac_bits: int = 16, file: str = "lang.mpc") -> dict:
    """Run the front end only (as `veil emulate` does) and emulate in clear."""
    prog = driver.front_end(HEAD + src, file, params, frac_bits=frac_bits)
    return api.emulate(prog, inputs)


def both(src: str, inputs: dict, params=None) -> tuple[dict, dict]:
    """The emulator's and the MPC's outputs of one program."""
    c = api.compile(HEAD + src, params)
    return api.emulate(c, inputs), api.run(c, inputs)


def outputs_for(names: list[str], to: str = "alice") -> str:
    return "".join(f"output({n}, to={to})\n" for n in names)


def check(out: dict, expected: dict, tol: float = TOL) -> None:
    for name, want in expected.items():
        got = out[name]
        assert np.shape(got) == np.shape(want), (name, np.shape(got), np.shape(want))
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), atol=tol,
                                   err_msg=name)


# ---- §2-§5: parties, params, inputs of every dtype, visibility ---------------------------------
def test_int_and_bool_inputs_end_to_end_in_mpc(rng):
    I = rng.integers(-1000, 1000, size=(3, 4))
    J = rng.integers(-1000, 1000, size=(3, 4))
    M = rng.random((3, 4)) > 0.5
    X = rng.normal(size=(3, 4))
    src = ('i = input(alice, "i", shape=(3, 4), dtype=int)\nj = input(bob, "j", shape=(3, 4), dtype=int)\n'
           'm = input(carol, "m", shape=(3, 4), dtype=bool)\nx = input(alice, "x", shape=(3, 4))\n'
           's = i + j\np = i * j\nq = i * m\nr = x * m + i\nk = sum(m)\nt = i @ j.T\nn = -i\n'
           + outputs_for(["s", "p", "q", "r", "k", "t", "n"]))
    inputs = {"alice": {"i": I, "x": X}, "bob": {"j": J}, "carol": {"m": M}}
    exp = {"s": I + J, "p": I * J, "q": I * M, "r": X * M + I, "k": M.sum(), "t": I @ J.T, "n": -I}
    emu, mpc = both(src, inputs)
    check(emu["alice"], exp)
    check(mpc["alice"], exp)
    assert mpc["alice"]["p"].dtype == np.int64 and emu["alice"]["s"].dtype == np.int64
    np.testing.assert_array_equal(mpc["alice"]["t"], I @ J.T)  # exact: ints are not truncated


def test_bool_output_and_private_comparison_runs_in_mpc(rng):
    X = rng.normal(size=(5,))
    src = 'x = input(alice, "x", shape=(5,))\nm = x > 0.25\nc = where(m, x, -x)\nk = abs(x)\n' \
          'output(m, to=alice)\noutput(c, to=alice)\noutput(k, to=alice)\n'
    emu, mpc = both(src, {"alice": {"x": X}})
    for out in (emu, mpc):
        assert out["alice"]["m"].dtype == bool
        np.testing.assert_array_equal(out["alice"]["m"], X > 0.25)
        check(out["alice"], {"c": np.where(X > 0.25, X, -X), "k": np.abs(X)})


def test_params_defines_and_frac_bits(rng):
    src = 'param N = 4\nparam S = 0.5\nparam FLAG = True\nx = input(alice, "x", shape=(N,))\n' \
          'if FLAG:\n    y = x * S\nelse:\n    y = x\noutput(y, to=alice)\n'
    X = rng.normal(size=(6,))
    out = emulate(src, {"alice": {"x": X}}, {"N": "6", "S": "0.25", "FLAG": "false"})
    check(out["alice"], {"y": X})
    out = emulate(src, {"alice": {"x": X}}, {"N": "6", "S": "0.25"}, frac_bits=24)
    check(out["alice"], {"y": X * 0.25}, tol=1e-6)
    c = api.compile(HEAD + src, {"N": 6}, frac_bits=12)
    assert c.prog.frac_bits == 12 and c.manifest["frac_bits"] == 12


def test_private_ops_cost_nothing_and_input_only_party(rng):
    src = ("party alice, bob, carol, dave\nprotocol rep3(alice, bob, carol)\n"
           'd = input(dave, "d", shape=(4, 3))\na = input(alice, "a", shape=(4, 3))\n'
           'p = (a * 2.0 + 1.0) @ a.T\nq = sum(a, axis=0) / 3\nr = a[1:3, ::2]\n'
           'output(p, to=alice)\noutput(q, to=alice)\noutput(r, to=alice)\n')
    c = api.compile(src)
    assert c.cost.rounds == 0 and sum(c.cost.bytes_sent.values()) == 0
    assert c.cost.multiplications == 0
    A, D = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    out = api.run(c, {"alice": {"a": A}, "dave": {"d": D}})
    check(out["alice"], {"p": (A * 2 + 1) @ A.T, "q": A.sum(0) / 3, "r": A[1:3, ::2]})
    # dave only supplies data: combining it with alice's makes it secret, dave computes nothing
    src2 = src.replace("output(p, to=alice)", "e = d + a\noutput(e, to=dave)")
    c2 = api.compile(src2)
    out2 = api.run(c2, {"alice": {"a": A}, "dave": {"d": D}})
    check(out2["dave"], {"e": D + A})
    assert c2.cost.rounds > 0


def test_secret_reveal_and_output_forms(rng):
    X = rng.normal(size=(3,))
    src = 'x = input(alice, "x", shape=(3,))\ns = secret(x)\nc = reveal(s * 2.0)\nd = reveal(s, to=bob)\n' \
          'output(c, "twice")\noutput(d, to=[bob, carol])\n'
    emu, mpc = both(src, {"alice": {"x": X}})
    for out in (emu, mpc):
        for p in ("alice", "bob", "carol"):
            check(out[p], {"twice": 2 * X})
        check(out["bob"], {"d": X})
        assert "d" not in out["alice"]


# ---- §6: statements --------------------------------------------------------------------------
def test_functions_defaults_keywords_tuples_imports_and_augmented(rng, tmp_path):
    (tmp_path / "helpers.mpc").write_text('"""A local module."""\n\n'
                                          "def affine(x, a=2.0, b=0.5):\n    return a * x + b\n\n"
                                          "def split(x):\n    return x[0], x[1:]\n")
    prog = tmp_path / "main.mpc"
    prog.write_text(HEAD + "import helpers\nfrom helpers import split as sp\nfrom ml import sigmoid\n"
                    'x = input(alice, "x", shape=(4,))\n'
                    "y = helpers.affine(x)\nz = helpers.affine(x, b=-1.0, a=3.0)\nh, t = sp(x)\n"
                    "w = x\nw += 1.0\nw -= 0.5\nw *= 2.0\ng = sigmoid(x)\nassert len(t) == 3, \"shape\"\n"
                    "pass\n" + outputs_for(["y", "z", "h", "t", "w", "g"]))
    X = rng.normal(size=(4,))
    c = api.compile(str(prog))
    out = api.run(c, {"alice": {"x": X}})["alice"]
    check(out, {"y": 2 * X + 0.5, "z": 3 * X - 1, "h": X[0], "t": X[1:], "w": (X + 0.5) * 2})
    assert np.all(np.abs(out["g"] - 1 / (1 + np.exp(-X))) < 0.25)


def test_program_directory_shadows_the_stdlib(tmp_path):
    (tmp_path / "ml.mpc").write_text("def sigmoid(x):\n    return x * 0.0 + 7.0\n")
    prog = tmp_path / "p.mpc"
    prog.write_text(HEAD + 'from ml import sigmoid\nx = input(alice, "x", shape=(2,))\ny = sigmoid(x)\n'
                    "output(y, to=alice)\n")
    out = api.emulate(api.compile(str(prog)), {"alice": {"x": np.zeros(2)}})
    check(out["alice"], {"y": np.full(2, 7.0)})


def test_loops_every_range_form_and_carried_values(rng):
    X = rng.normal(size=(12, 3))
    src = ('param B = 4\nx = input(alice, "x", shape=(12, 3))\nacc = zeros((4, 3))\n'
           "for i in range(3):\n    acc += x[i * B:(i + 1) * B]\n"
           "row = zeros((3,))\nfor j in range(1, 12, 3):\n    row = row + x[j]\n"
           "back = zeros((3,))\nfor j in range(11, -1, -4):\n    back = back * 0.5 + x[j]\n"
           "col = zeros((12,))\nfor k in range(3):\n    col = col + x[:, k] * k\n"
           "tot = 0.0\nfor a in range(2):\n    for b in range(3):\n        tot = tot + x[a * 3 + b, b]\n"
           "cnt = 0\nfor a in range(5):\n    cnt += a\n"
           + outputs_for(["acc", "row", "back", "col", "tot", "cnt"]))
    back = np.zeros(3)
    for j in range(11, -1, -4):
        back = back * 0.5 + X[j]
    tot = sum(X[a * 3 + b, b] for a in range(2) for b in range(3))
    exp = {"acc": X.reshape(3, 4, 3).sum(0), "row": X[1::3].sum(0), "back": back,
           "col": X @ np.arange(3.0), "tot": tot, "cnt": 10}
    emu, mpc = both(src, {"alice": {"x": X}})
    check(emu["alice"], exp)
    check(mpc["alice"], exp)


def test_loop_carried_visibility_is_promoted(rng):
    """A public accumulator meeting private data becomes private; private meeting another party's
    data becomes secret, also across nested loops; the initial value is shared before the loop."""
    A, B = rng.normal(size=(3,)), rng.normal(size=(3,))
    src = ('a = input(alice, "a", shape=(3,))\nb = input(bob, "b", shape=(3,))\n'
           "p = zeros((3,))\nfor i in range(2):\n    p = p + a\n"
           "s = a * 1.0\nfor i in range(2):\n    for j in range(2):\n        s = s + b * 0.5\n"
           "output(p, to=alice)\noutput(s, to=alice)\n")
    c = api.compile(HEAD + src, optimize=False)
    loops = [op for op in c.prog.body.ops if op.opcode == "loop"]
    assert loops[0].outs[0].type.vis == "private(alice)"
    assert loops[1].outs[0].type.vis == "secret"
    assert loops[1].ins[0].type.vis == "secret"  # private(alice) init shared before the loop
    inner = next(op for op in loops[1].body.ops if op.opcode == "loop")
    assert inner.outs[0].type.vis == "secret"
    out = api.run(c, {"alice": {"a": A}, "bob": {"b": B}})
    check(out["alice"], {"p": 2 * A, "s": A + 2 * B})


def test_if_elif_else_on_compile_time_values():
    src = ("param MODE = 2\nif MODE == 1:\n    v = 1.0\nelif MODE == 2 and not False:\n    v = 2.0\nelse:\n"
           "    v = 3.0\nx = zeros((2,)) + v\noutput(x, to=alice)\n")
    for mode, want in ((1, 1.0), (2, 2.0), (7, 3.0)):
        check(emulate(src, {}, {"MODE": str(mode)})["alice"], {"x": np.full(2, want)})


# ---- §7: expressions -------------------------------------------------------------------------
def test_arithmetic_division_floor_mod_and_powers(rng):
    X = rng.normal(size=(4, 3))
    I = rng.integers(-40, 40, size=(4, 3))
    J = rng.integers(1, 7, size=(4, 3)) * rng.choice([-1, 1], size=(4, 3))
    src = ('x = input(alice, "x", shape=(4, 3))\ni = input(alice, "i", shape=(4, 3), dtype=int)\n'
           'j = input(alice, "j", shape=(4, 3), dtype=int)\n'
           "a = x / 4\nb = -x + x * x - 1\nc = i // j\nd = i % j\ne = i // 3\nf = i % -3\ng = x ** 2\n"
           "h = i ** 3\nk = x ** 0\nm = (-7) // 2 + 7 % -3 + 2 ** 5\nn = x @ x.T\no = x // 0.5\np = x % 0.75\n"
           + outputs_for(list("abcdefghkmnop")))
    exp = {"a": X / 4, "b": -X + X * X - 1, "c": I // J, "d": I % J, "e": I // 3, "f": I % -3, "g": X ** 2,
           "h": I ** 3, "k": np.ones((4, 3)), "m": (-7) // 2 + 7 % -3 + 2 ** 5, "n": X @ X.T, "o": X // 0.5,
           "p": X % 0.75}
    out = emulate(src, {"alice": {"x": X, "i": I, "j": J}})["alice"]
    check(out, exp)
    np.testing.assert_array_equal(out["c"], I // J)  # exact, numpy floor semantics
    np.testing.assert_array_equal(out["d"], I % J)
    mpc = api.run(api.compile(HEAD + src), {"alice": {"x": X, "i": I, "j": J}})["alice"]  # private: runs
    np.testing.assert_array_equal(mpc["c"], I // J)
    check(mpc, exp)


def test_every_indexing_form(rng):
    X = rng.normal(size=(5, 6))
    src = ('x = input(alice, "x", shape=(5, 6))\ns = secret(x)\n'
           "a = s[2]\nb = s[1:4]\nc = s[:, 3]\nd = s[-1]\ne = s[-3:, -2]\nf = s[::2, 1::3]\ng = s[::-1, 4:0:-2]\n"
           "h = s[1, 2]\nr = zeros((6,))\nfor i in range(5):\n    r = r + s[i]\n"
           "q = zeros((5,))\nfor i in range(1, 6, 2):\n    q = q + s[:, i]\nt = s.shape[1] + len(s)\n"
           + outputs_for(list("abcdefghrqt")))
    exp = {"a": X[2], "b": X[1:4], "c": X[:, 3], "d": X[-1], "e": X[-3:, -2], "f": X[::2, 1::3],
           "g": X[::-1, 4:0:-2], "h": X[1, 2], "r": X.sum(0), "q": X[:, 1::2].sum(1), "t": 11}
    emu, mpc = both(src, {"alice": {"x": X}})
    check(emu["alice"], exp)
    check(mpc["alice"], exp)


def test_builtins_match_numpy(rng):
    X, Y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    src = ('x = input(alice, "x", shape=(3, 4))\ny = input(bob, "y", shape=(3, 4))\n'
           "a = full((3, 4), 2.5) * x\nb = arange(4) * x\nc = eye(3) @ x\nd = stack([x[0], y[1]], axis=1)\n"
           "e = reshape(x, (4, 3))\nf = transpose(x)\ng = broadcast_to(y[:, 1:2], (3, 4))\nh = matmul(x, y.T)\n"
           "k = dot(x[0], y[0])\nm = outer(x[0], y[:, 0])\nn = concat([x, y], axis=0)\no = mean(y, axis=1)\n"
           "p = sum(x)\nq = x.reshape(2, 6)\nr = float(arange(3))\nt = ones((2,), dtype=int) * len(x)\n"
           "u = zeros((2, 2), dtype=bool)\nv = arange(1, 2, 0.25)\nw = x.T @ y\nz = [1.5, 2.0] * x[:, :2]\n"
           + outputs_for(list("abcdefghkmnopqrtuvwz")))
    exp = {"a": 2.5 * X, "b": np.arange(4) * X, "c": X, "d": np.stack([X[0], Y[1]], 1), "e": X.reshape(4, 3),
           "f": X.T, "g": np.broadcast_to(Y[:, 1:2], (3, 4)), "h": X @ Y.T, "k": X[0] @ Y[0],
           "m": np.outer(X[0], Y[:, 0]), "n": np.concatenate([X, Y]), "o": Y.mean(1), "p": X.sum(),
           "q": X.reshape(2, 6), "r": np.arange(3.0), "t": np.full(2, 3), "u": np.zeros((2, 2), bool),
           "v": np.arange(1, 2, 0.25), "w": X.T @ Y, "z": np.array([1.5, 2.0]) * X[:, :2]}
    emu, mpc = both(src, {"alice": {"x": X}, "bob": {"y": Y}})
    check(emu["alice"], exp)
    check(mpc["alice"], exp)


def test_secret_comparisons_logic_and_selection_in_emulation(rng):
    X, Y = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    I, J = rng.integers(-30, 30, size=(5,)), rng.integers(1, 6, size=(5,))
    src = ('x = input(alice, "x", shape=(4, 5))\ny = input(bob, "y", shape=(4, 5))\n'
           'i = input(alice, "i", shape=(5,), dtype=int)\nj = input(bob, "j", shape=(5,), dtype=int)\n'
           "lt = x < y\nle = x <= 0.1\ngt = x > y\nge = y >= x\neq = i == j\nne = i != 2\n"
           "an = (x > 0) & (y > 0)\nor_ = (x > 0) | (y > 0)\nnt = ~(x > y)\nw = where(x > y, x, y * 2.0)\n"
           "ab = abs(x - y)\nmx = max(x, y)\nmn = min(x, y, 0.0)\nrx = max(x)\nrn = min(y, axis=0)\n"
           "ry = max(x - y, axis=1)\nfd = i // j\nmd = i % j\ndv = x / (abs(y) + 1.0)\nti = int(x * 4.0)\n"
           "cnt = sum(x > y)\n"
           + outputs_for(["lt", "le", "gt", "ge", "eq", "ne", "an", "or_", "nt", "w", "ab", "mx", "mn", "rx",
                          "rn", "ry", "fd", "md", "dv", "ti", "cnt"]))
    exp = {"lt": X < Y, "le": X <= 0.1, "gt": X > Y, "ge": Y >= X, "eq": I == J, "ne": I != 2,
           "an": (X > 0) & (Y > 0), "or_": (X > 0) | (Y > 0), "nt": ~(X > Y), "w": np.where(X > Y, X, 2 * Y),
           "ab": np.abs(X - Y), "mx": np.maximum(X, Y), "mn": np.minimum(np.minimum(X, Y), 0), "rx": X.max(),
           "rn": Y.min(0), "ry": (X - Y).max(1), "fd": I // J, "md": I % J, "dv": X / (np.abs(Y) + 1),
           "ti": (X * 4).astype(int), "cnt": (X > Y).sum()}
    out = emulate(src, {"alice": {"x": X, "i": I}, "bob": {"y": Y, "j": J}})["alice"]
    check(out, exp)
    assert out["lt"].dtype == bool and out["fd"].dtype == np.int64


@pytest.mark.parametrize("expr, what", [
    # comparisons and what is built on them run in MPC (tests/test_nonlinear.py); these do not
    ("int(x + y)", "int() of a fix value"), ("x // y", "`//`"), ("x % (x + y)", "`%`"),
])
def test_secret_nonlinear_ops_are_refused_by_the_protocol_lowering(expr, what):
    src = ('x = input(alice, "x", shape=(3,))\ny = input(bob, "y", shape=(3,))\nv = ' + expr + "\n"
           "output(v, to=alice)\n")
    with pytest.raises(UnsupportedErr) as info:
        api.compile(HEAD + src, file="cmp.mpc")
    err = info.value
    assert "not yet supported by the rep3 protocol" in err.message and what in err.message
    assert err.span.file == "cmp.mpc" and err.span.line == 5 and "(line cmp.mpc:5:" in err.message
    assert "veil emulate" in err.hint
    driver.front_end(HEAD + src, "cmp.mpc")  # the emulator accepts it


def test_compile_time_expressions_fold():
    src = ("param N = 10\nk = N // 3 + N % 3 + 2 ** 3 + abs(-2) + max(1, 4) + min([5, 6]) + int(2.7)\n"
           "t = (1, 2) + (3,)\nok = (N > 5) and not (N < 0) or False\nf = float(N) / 4\nx = zeros((k,)) + f\n"
           "assert ok and t[2] == 3 and len(t) == 3\noutput(x, to=alice)\n")
    out = emulate(src, {})["alice"]
    check(out, {"x": np.full(3 + 1 + 8 + 2 + 4 + 5 + 2, 2.5)})


def test_zeros_of_large_shape_compile_small():
    c = api.compile(HEAD + 'x = input(alice, "x", shape=(2000, 2000))\ny = x + zeros((2000, 2000))\n'
                    "output(y, to=alice)\n")
    assert all(len(b) < 100_000 for b in c.files.values())


# ---- §9: fixed-point overflow in the emulator -------------------------------------------------
def test_emulator_reports_fix_product_overflow_with_the_line():
    src = 'x = input(alice, "x", shape=(4,))\ns = secret(x)\ny = s * 100.0\nz = y * y\noutput(z, to=alice)\n'
    with pytest.raises(OverflowWarning) as info:
        emulate(src, {"alice": {"x": np.full(4, 3.0e4)}}, file="ovf.mpc")
    assert info.value.span.line == 6 and "overflow at ovf.mpc:6:5:" in info.value.message
    assert "fixed-point overflow" in info.value.message and info.value.exit_status == 1
    emulate(src, {"alice": {"x": np.full(4, 3.0)}})  # in range: fine


def test_emulator_reports_int_sum_overflow_with_the_line():
    src = 'x = input(alice, "x", shape=(4,), dtype=int)\ny = sum(x)\noutput(y, to=alice)\n'
    with pytest.raises(OverflowWarning) as info:
        emulate(src, {"alice": {"x": np.full(4, 2**62 - 1)}})
    assert info.value.span.line == 4 and "integer overflow" in info.value.message


def test_emulator_reports_fix_addition_overflow():
    src = 'x = input(alice, "x", shape=(2,))\ny = x * 65536\nz = y * 65536\nw = z + z\noutput(w, to=alice)\n'
    with pytest.raises(OverflowWarning) as info:
        emulate(src, {"alice": {"x": np.full(2, 30000.0)}})
    assert "fixed-point overflow" in info.value.message and info.value.span.line in (4, 5, 6)


def test_emulator_reports_division_by_zero_with_the_line():
    from veil.compiler.emulate import EmulationError
    src = 'i = input(alice, "i", shape=(2,), dtype=int)\nj = i // i\noutput(j, to=alice)\n'
    with pytest.raises(EmulationError) as info:
        emulate(src, {"alice": {"i": np.array([1, 0])}})
    assert info.value.span.line == 4 and "division by zero" in info.value.message


def test_new_ops_are_defined_once_in_the_registry():
    from veil.runtime.ops import OPS
    prog = driver.front_end(HEAD + 'x = input(alice, "x", shape=(3,))\ny = input(bob, "y", shape=(3,))\n'
                            "z = where(x < y, abs(x), max(x, y)) + min(y) + x // y + x % y + x / y\n"
                            "output(z, to=alice)\n", "ops.mpc")
    for op in walk(prog.body):
        assert op.opcode in OPS and (OPS[op.opcode].clear is not None or op.opcode in ("input", "output",
                                                                                         "loop")), op.opcode


def test_reshape_infers_one_dimension():
    import numpy as np
    from veil.runtime import api
    src = ('party a, b, c\nprotocol rep3(a, b, c)\nx = input(a, "x", shape=(6,))\n'
           'y = reshape(x, (-1, 2))\nz = secret(x).reshape(3, -1)\noutput(y, to=a)\noutput(z, to=a)\n')
    c = api.compile(src)
    x = np.arange(6.0)
    for out in (api.emulate(c, {"a": {"x": x}}), api.run(c, {"a": {"x": x}})):
        np.testing.assert_allclose(out["a"]["y"], x.reshape(-1, 2))
        np.testing.assert_allclose(out["a"]["z"], x.reshape(3, -1))


def test_api_params_must_have_the_params_type():
    import pytest
    from veil.runtime.diagnostics import UsageErr
    from veil.runtime import api
    src = "party a, b, c\nprotocol rep3(a, b, c)\nparam N = 4\nparam LR = 0.5\nx = zeros((N,))\noutput(x, to=a)\n"
    for bad in ({"N": 2.5}, {"N": True}, {"LR": "fast"}):
        with pytest.raises(UsageErr):
            api.compile(src, bad)
    assert api.compile(src, {"N": 3, "LR": 1}).prog.params == {"N": 3, "LR": 1.0}


@pytest.mark.parametrize("protocol", [None, "dealer2(alice, bob, dealer=carol)"])
def test_expanded_ops_run_in_mpc_with_clear_conditions(protocol):
    """where() with a private or public condition, and abs/min/max of clear values, are expanded
    into arithmetic (compiler/expand.py) that every protocol computes."""
    import numpy as np
    src = ('x = input(alice, "x", shape=(5,))\ny = input(bob, "y", shape=(5,))\n'
           'sx = secret(x)\nsy = secret(y)\n'
           'a = where(x > 0.0, sx, sy)\n'                      # a private condition on secrets
           'b = where(arange(5) > 2, sx * 2.0, sy)\n'         # a public condition
           'c = abs(x) + max(x) + min(y, axis=0) + max(x, 0.5)\n'  # clear values, at their owner
           'output(a, to=alice)\noutput(b, to=alice)\noutput(reveal(secret(c)), "c", to=alice)\n')
    c = api.compile(HEAD + src, file="exp.mpc", protocol=protocol)
    assert not {"where", "abs", "maximum", "minimum", "rmax", "rmin"} & {op.opcode for op in walk(c.prog.body)}
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-4, 4, 5), rng.uniform(-4, 4, 5)
    x[0], y[1] = 0.0, 0.0  # ties with the condition's threshold
    ins = {"alice": {"x": x}, "bob": {"y": y}}
    want = {"a": np.where(x > 0, x, y), "b": np.where(np.arange(5) > 2, 2 * x, y),
            "c": np.abs(x) + x.max() + y.min() + np.maximum(x, 0.5)}
    for out in (api.emulate(c, ins), api.run(c, ins)):
        for k, v in want.items():
            np.testing.assert_allclose(out["alice"][k], v, atol=4e-5)


def test_string_params_choose_at_compile_time(rng):
    """A string param (e.g. OPT = "sgd") is a compile-time value: -D OPT=adam picks another branch."""
    import pytest
    from veil.runtime.diagnostics import UsageErr
    src = 'param OPT = "sgd"\nx = input(alice, "x", shape=(3,))\n' \
          'if OPT == "adam":\n    y = x * 2\nelif OPT == "sgd":\n    y = x * 3\nelse:\n    y = x\noutput(y, to=alice)\n'
    X = rng.normal(size=(3,))
    check(emulate(src, {"alice": {"x": X}})["alice"], {"y": 3 * X})
    check(emulate(src, {"alice": {"x": X}}, {"OPT": "adam"})["alice"], {"y": 2 * X})
    check(emulate(src, {"alice": {"x": X}}, {"OPT": "momentum"})["alice"], {"y": X})
    with pytest.raises(UsageErr):
        api.compile(HEAD + src, {"OPT": 3})
