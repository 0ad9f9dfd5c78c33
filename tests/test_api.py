"""The Python API (runtime/api.py): compile from a path or text, emulate, run in process and as
processes, inputs checked with errors naming party and input, cost/IR/build dir, and @program."""
from __future__ import annotations

import asyncio
import inspect
import json
import os
import pathlib

import numpy as np
import pytest

from veil.runtime.session import load_build
from veil.runtime.diagnostics import InputDataError, NameErr, SyntaxErr, UnsupportedErr, UsageErr, VeilError
from veil.runtime import api
from veil.runtime.api import program

HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"
DOT = HEAD + ('param N = 4\nx = input(alice, "x", shape=(N,))\ny = input(bob, "y", shape=(N,))\n'
              'output(sum(x * y), "dot", to=[alice, carol])\noutput(x + 1.0, "x1", to=bob)\n')
REPO = pathlib.Path(__file__).resolve().parents[1]


def dot_inputs(n: int = 4) -> dict:
    return {"alice": {"x": np.arange(n, dtype=float) / 4}, "bob": {"y": np.linspace(-1, 1, n)}}


# ---- compiling -------------------------------------------------------------------------------
def test_compile_text_path_and_pathlib_give_the_same_program(tmp_path):
    f = tmp_path / "dot.mpc"
    f.write_text(DOT)
    from_text = api.compile(DOT, file=str(f))
    assert api.compile(str(f)).files == from_text.files
    assert api.compile(f).files == from_text.files
    assert isinstance(from_text, api.Compiled)
    assert from_text.manifest["parties"] == ["alice", "bob", "carol"]


def test_params_frac_bits_protocol_and_optimize_reach_the_compiler():
    c = api.compile(DOT, {"N": 6})
    assert c.manifest["params"] == {"N": 6}
    assert c.manifest["inputs"]["alice"][0]["shape"] == [6]
    assert api.compile(DOT, {"N": "6"}).files == c.files  # strings as with -D
    assert api.compile(DOT, frac_bits=12).manifest["frac_bits"] == 12
    swapped = api.compile(DOT, protocol="rep3(carol, bob, alice)")
    assert swapped.manifest["compute"] == ["carol", "bob", "alice"]
    unoptimized = api.compile(DOT, optimize=False)
    assert unoptimized.cost.multiplications == 4  # four elementwise products, summed
    assert c.cost.multiplications <= 4  # the optimizer may fuse sum(x * y) into a dot product
    with pytest.raises(UsageErr, match="no param NN"):
        api.compile(DOT, {"NN": 3})
    with pytest.raises(UsageErr, match="frac-bits"):
        api.compile(DOT, frac_bits=40)
    with pytest.raises(UsageErr, match="param N: expected"):
        api.compile(DOT, {"N": [1, 2]})


def test_a_missing_program_file_is_a_usage_error_not_a_syntax_error():
    with pytest.raises(UsageErr, match="no such program file: nowhere.mpc"):
        api.compile("nowhere.mpc")
    with pytest.raises(UsageErr):
        api.compile(pathlib.Path("nowhere/else.mpc"))


def test_compile_errors_name_the_file_line_and_column():
    with pytest.raises(NameErr) as info:
        api.compile(HEAD + "y = xx + 1\n", file="mine.mpc")
    assert info.value.format().startswith("mine.mpc:3:5: error: name 'xx' is not defined")


def test_cost_ir_and_saved_build_dir(tmp_path):
    c = api.compile(DOT)
    cost = c.cost.as_dict()
    assert cost["multiplications"] >= 1 and cost["rounds"] > 0
    assert set(cost["bytes_sent"]) == {"alice", "bob", "carol"}
    json.dumps(cost)
    text = c.ir()
    assert text == c.ir_text() and "input" in text and "output" in text
    where = c.save(tmp_path / "build")
    manifest, files = load_build(where)
    assert manifest["hash"] == c.manifest["hash"] and files == c.files
    assert sorted(os.listdir(where)) == ["alice.bc", "bob.bc", "carol.bc", "manifest.json"]


def test_the_front_end_emulates_what_the_protocol_cannot_run_yet():
    src = HEAD + ('a = input(alice, "a", shape=(3,))\nb = input(bob, "b", shape=(3,))\n'
                  'output(where(a < b, a, b) + int(a + b), "m", to=carol)\n')
    prog = api.front_end(src)
    inputs = {"alice": {"a": [1.0, 5.0, 3.0]}, "bob": {"b": [2.0, 2.0, 2.0]}}
    assert api.emulate(prog, inputs)["carol"]["m"].tolist() == [4.0, 9.0, 7.0]
    assert api.emulate(src, inputs)["carol"]["m"].tolist() == [4.0, 9.0, 7.0]  # text: the front end only
    with pytest.raises(UnsupportedErr, match="rep3"):
        api.compile(src)
    with pytest.raises(UsageErr, match="compiled already"):
        api.emulate(prog, inputs, params={"N": 2})


# ---- emulating and running -------------------------------------------------------------------
def test_emulate_and_run_agree_with_numpy():
    c = api.compile(DOT)
    inputs = dot_inputs()
    want = inputs["alice"]["x"] @ inputs["bob"]["y"]
    emu = api.emulate(c, inputs)
    mpc = api.run(c, inputs)
    for out in (emu, mpc, c.emulate(inputs), c.run(inputs)):
        assert set(out) == {"alice", "bob", "carol"}
        assert set(out["alice"]) == {"dot"} and set(out["bob"]) == {"x1"}
        assert out["carol"]["dot"] == pytest.approx(want, abs=1e-3)
        np.testing.assert_allclose(out["bob"]["x1"], inputs["alice"]["x"] + 1, atol=1e-4)
        assert out["bob"]["x1"].dtype == np.float64
    assert emu.stats == {}
    assert mpc.stats["alice"]["rounds"] == c.cost.party_rounds["alice"]
    assert mpc.stats["bob"]["bytes_sent"] == c.cost.bytes_sent["bob"]


def test_run_and_emulate_compile_a_path_or_text_on_the_way():
    out = api.emulate(DOT, dot_inputs(6), params={"N": 6})
    assert out["alice"]["dot"] == pytest.approx(np.arange(6) / 4 @ np.linspace(-1, 1, 6), abs=1e-3)
    with pytest.raises(UsageErr, match="params apply when compiling"):
        api.run(api.compile(DOT), dot_inputs(), params={"N": 6})


def test_int_and_bool_inputs_and_outputs_keep_their_dtype():
    c = api.compile(HEAD + 'k = input(alice, "k", shape=(3,), dtype=int)\nb = input(bob, "b", shape=(2,), dtype=bool)\n'
                    'output(k * 2, "k2", to=carol)\noutput(b, to=carol)\n')
    inputs = {"alice": {"k": [1, -2, 3]}, "bob": {"b": np.array([True, False])}}
    for out in (api.emulate(c, inputs), api.run(c, inputs)):
        assert out["carol"]["k2"].dtype == np.int64 and out["carol"]["k2"].tolist() == [2, -4, 6]
        assert out["carol"]["b"].dtype == bool and out["carol"]["b"].tolist() == [True, False]


def test_run_as_processes_over_localhost_tcp():
    c = api.compile(DOT)
    out = api.run(c, dot_inputs(), processes=True)
    inputs = dot_inputs()
    assert out["alice"]["dot"] == pytest.approx(inputs["alice"]["x"] @ inputs["bob"]["y"], abs=1e-3)
    np.testing.assert_allclose(out["bob"]["x1"], inputs["alice"]["x"] + 1, atol=1e-4)
    assert out["carol"].keys() == {"dot"}
    assert out.stats["carol"]["bytes_sent"] == c.cost.bytes_sent["carol"]


def test_run_works_inside_a_running_event_loop():
    """Jupyter runs cells inside an event loop; asyncio.run alone would refuse."""
    c = api.compile(DOT)

    async def cell():
        return api.run(c, dot_inputs())

    out = asyncio.run(cell())
    assert out["alice"]["dot"] == pytest.approx(api.emulate(c, dot_inputs())["alice"]["dot"], abs=1e-3)


# ---- inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("inputs, fragment", [
    ({"alce": {"x": [1, 2, 3, 4]}}, "no party 'alce'"),
    ({"alice": {"z": [1, 2, 3, 4]}}, "party alice: the program has no input named 'z'"),
    ({"alice": {"x": [1, 2, 3]}, "bob": {"y": [1, 2, 3, 4]}}, "party alice, input 'x', array inputs['alice']['x']: "
                                                             "wrong shape: expected (4,)"),
    ({"alice": {"x": [1, 2, 3, 4]}}, "party bob, input 'y': no value given and the program names no default"),
    ({"alice": {"x": ["a", "b", "c", "d"]}, "bob": {"y": [0, 0, 0, 0]}}, "party alice, input 'x': expected numbers"),
    ({"alice": {"x": [1, 2, np.nan, 4]}, "bob": {"y": [0, 0, 0, 0]}}, "not a finite number"),
    ({"alice": {"x": [1, 2, 3, 1e6]}, "bob": {"y": [0, 0, 0, 0]}}, "out of range"),
    ({"alice": [1, 2, 3, 4]}, "inputs['alice'] must be a dict"),
    ([("alice", 1)], "inputs must be a dict"),
])
def test_bad_inputs_name_the_party_and_the_input(inputs, fragment):
    c = api.compile(DOT)
    for fn in (api.emulate, api.run):
        with pytest.raises(InputDataError) as info:
            fn(c, inputs)
        assert fragment in info.value.format()


def test_a_near_miss_gets_a_did_you_mean():
    c = api.compile(DOT)
    with pytest.raises(InputDataError) as info:
        api.run(c, {"alice": {"xx": [0] * 4}})
    assert info.value.hint == "did you mean x?"
    with pytest.raises(InputDataError) as info:
        api.run(c, {"bob": {"y": [0] * 4}})
    assert "pass inputs={'alice': {'x': array of shape (4,)}}" in info.value.format()


def test_inputs_from_files_and_from_the_programs_defaults(tmp_path):
    (tmp_path / "y.csv").write_text("1,2,3,4\n")
    np.save(tmp_path / "x.npy", np.array([0.5, 0.5, 0.5, 0.5]))
    src = DOT.replace('shape=(N,))\ny', 'shape=(N,), default="x.npy")\ny')
    prog = tmp_path / "dot.mpc"
    prog.write_text(src)
    c = api.compile(prog)
    out = api.run(c, {"bob": {"y": str(tmp_path / "y.csv")}})
    assert out["alice"]["dot"] == pytest.approx(5.0, abs=1e-3)
    out = api.emulate(c, {"alice": {"x": [1, 1, 1, 1]}, "bob": {"y": tmp_path / "y.csv"}})
    assert out["alice"]["dot"] == pytest.approx(10.0, abs=1e-3)
    with pytest.raises(InputDataError, match="file not found") as info:
        api.run(c, {"bob": {"y": "missing.csv"}})
    assert "--input" not in info.value.format()


# ---- @program --------------------------------------------------------------------------------
@program(parties=["alice", "bob", "carol"], protocol="rep3(alice, bob, carol)", params={"N": 8})
def inner(N):
    """The dot product of alice's and bob's vectors, for alice."""
    x = input(alice, "x", shape=(N,))  # noqa: F821 (veil names, never run by Python)
    y = input(bob, "y", shape=(N,))  # noqa: F821
    output(sum(x * y), "dot", to=alice)  # noqa: F821


@program(parties="alice, bob, carol")
def scaled(N=3, LR=0.5, STEPS=2):
    x = input(alice, "x", shape=(N,))  # noqa: F821
    for i in range(STEPS):
        x = x * LR
    output(x, to=bob)  # noqa: F821


@program(parties=["alice", "bob", "carol"])
def broken(N=4):
    x = input(alice, "x", shape=(N,))  # noqa: F821
    y = xx + 1  # noqa: F821
    output(y, to=alice)  # noqa: F821


@program(parties=["alice", "bob", "carol"], protocol="rep3(alice, bob, dave)")
def bad_protocol():
    x = input(alice, "x", shape=(3,))  # noqa: F821
    output(x, to=alice)  # noqa: F821


def line_of(fn, needle: str) -> int:
    """The .py line holding `needle` inside fn's source."""
    lines, first = inspect.getsourcelines(inspect.unwrap(fn))
    return first + next(i for i, text in enumerate(lines) if needle in text)


def test_decorated_function_runs_emulates_and_reports_cost():
    x, y = np.linspace(0, 1, 8), np.linspace(1, -1, 8)
    inputs = {"alice": {"x": x}, "bob": {"y": y}}
    for out in (inner.run(inputs), inner.emulate(inputs)):
        assert out["alice"]["dot"] == pytest.approx(x @ y, abs=1e-3)
    assert inner.compiled.manifest["params"] == {"N": 8}
    assert inner.compile(optimize=False).cost.as_dict()["multiplications"] == 8
    assert "input" in inner.ir()
    assert inner.__doc__.startswith("The dot product")
    assert inner.compiled is inner.compiled  # compiled once


def test_decorated_params_defaults_and_overrides():
    out = scaled.emulate({"alice": {"x": [1.0, 2.0, 4.0]}})
    np.testing.assert_allclose(out["bob"]["x"], [0.25, 0.5, 1.0])
    out = scaled.run({"alice": {"x": [1.0, 2.0, 4.0, 8.0]}}, params={"N": 4, "LR": 2, "STEPS": 3})
    np.testing.assert_allclose(out["bob"]["x"], [8.0, 16.0, 32.0, 64.0], atol=1e-3)
    assert scaled.compile({"N": 5}).manifest["inputs"]["alice"][0]["shape"] == [5]
    with pytest.raises(UsageErr, match="no param M"):
        scaled.compile({"M": 5})


def test_decorated_program_lines_are_the_py_files_lines():
    loop_line = line_of(scaled, "for i in range(STEPS)")
    assert [lp["line"] for lp in scaled.cost.as_dict()["loops"]] == [loop_line]
    py = pathlib.Path(__file__).read_text().splitlines()
    src = scaled.source.splitlines()
    for n in range(loop_line - 1, loop_line + 3):  # the body, verbatim, at its own line numbers
        assert src[n - 1] == py[n - 1]


def test_calling_a_decorated_function_says_to_use_run_or_emulate():
    with pytest.raises(UsageErr) as info:
        inner(8)
    text = info.value.format()
    assert "not a Python function" in text and "inner.run(inputs)" in text and "inner.emulate(inputs)" in text


def test_errors_in_the_body_point_at_the_py_line_and_column():
    with pytest.raises(NameErr) as info:
        broken.compiled
    err = info.value
    assert err.span.file == inspect.getsourcefile(test_api_module_marker)
    assert err.span.line == line_of(broken, "xx + 1")
    assert err.span.col == 9
    text = err.format()
    assert "    y = xx + 1" in text and "did you mean x?" in text
    assert text.splitlines()[2].index("^") == text.splitlines()[1].index("xx")


def test_errors_in_the_decorator_arguments_point_at_the_decorator():
    with pytest.raises(NameErr, match="unknown party 'dave'") as info:
        bad_protocol.compile()
    assert info.value.span.line == line_of(bad_protocol, "@program")
    assert "rep3(alice, bob, dave)" in info.value.format()


def test_syntax_errors_in_a_nested_function_keep_their_columns():
    def make():
        @program(parties=["alice", "bob", "carol"])
        def comprehension():
            x = [i for i in range(3)]  # noqa: F841
        return comprehension

    f = make()
    with pytest.raises(VeilError) as info:
        f.compiled
    errors = getattr(info.value, "errors", [info.value])
    assert isinstance(errors[0], SyntaxErr)
    assert errors[0].span.line == line_of(f, "[i for i")
    assert errors[0].span.col == 20  # `for`, in the file's own columns


def test_a_one_line_function_keeps_its_columns():
    @program(parties=["alice", "bob", "carol"])
    def one(): output(zeros((2,)) + nope, "z")  # noqa: E704, F821

    with pytest.raises(NameErr) as info:
        one.compiled
    text = pathlib.Path(__file__).read_text().splitlines()[info.value.span.line - 1]
    assert text[info.value.span.col - 1:].startswith("nope")


def test_decorator_mistakes_are_usage_errors():
    with pytest.raises(UsageErr, match="parameter 'N' of f has no value"):
        @program(parties=["alice", "bob", "carol"])
        def f(N):
            pass
    with pytest.raises(UsageErr, match=r"\*args"):
        @program(parties=["alice", "bob", "carol"])
        def g(*sizes):
            pass
    with pytest.raises(UsageErr, match="listed twice"):
        program(parties=["alice", "alice"])
    with pytest.raises(UsageErr, match="identifiers"):
        program(parties=["al ice"])
    with pytest.raises(UsageErr, match="finite int, float or bool"):
        @program(parties=["alice", "bob", "carol"], params={"LR": float("inf")})
        def h():
            pass


def test_a_method_like_function_in_a_class_compiles():
    class Models:
        @program(parties=["alice", "bob", "carol"], params={"LR": 0.25})
        def step(N=2):
            w = input(alice, "w", shape=(N,))  # noqa: F821
            output(w * LR, "w2", to=alice)  # noqa: F821

    out = Models.step.emulate({"alice": {"w": [4.0, 8.0]}})
    np.testing.assert_allclose(out["alice"]["w2"], [1.0, 2.0])


def test_api_module_marker():
    """Used above to find this file's path as inspect sees it."""
