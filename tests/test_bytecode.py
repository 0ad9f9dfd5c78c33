"""The bytecode records: they survive the file, keep their source positions with the call chain,
and every run-time failure (a local op, a kernel at start or after a round) names that chain."""
from __future__ import annotations

import asyncio
import dataclasses
import re

import msgpack
import numpy as np
import pytest

from veil.runtime import api, bytecode as bc
from veil.runtime.diagnostics import NetworkError, RuntimeFailure, Span
from veil.runtime.protocols import get_protocol
from veil.runtime.protocols.base import Context

MODULE = '"""A helper module."""\n\n\ndef f(a, b):\n    return reshape(a * b, (2, 2))\n'
PROGRAM = ('party alice, bob, carol\nprotocol rep3(alice, bob, carol)\nfrom m import f\n'
           'x = secret(input(alice, "x", shape=(4,)))\ny = secret(input(bob, "y", shape=(4,)))\n'
           'z = f(x, y)\noutput(z, to=[alice, bob, carol])\n')
CALL = "u.mpc:6:5"  # the user's line that calls f
RESHAPE = "m.mpc:5:12"  # reshape(...) inside f
PRODUCT = "m.mpc:5:20"  # a * b inside f
INPUTS = {"alice": {"x": np.arange(4.0)}, "bob": {"y": np.ones(4)}}


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "m.mpc").write_text(MODULE)
    (tmp_path / "u.mpc").write_text(PROGRAM)
    return api.compile(str(tmp_path / "u.mpc"))


def walk(code):
    for ins in code:
        yield ins
        if isinstance(ins, bc.Loop):
            yield from walk(ins.body)


def test_every_record_survives_the_file_with_its_chain():
    call = Span("u.mpc", 27, 13)
    inner = Span("ml.mpc", 13, 5, caller=call)
    body = (bc.OpInstr("add", 5, (3, 4), {}, (1, 0), inner), bc.Free((4,)))
    code = [bc.OpInstr("const", 1, (), {"value": np.arange(6, dtype=np.uint64).reshape(2, 3)}, (), call),
            bc.KernelInstr("mul_trunc", 7, 2, (1, None), {"bits": 16, "shapes": [[2, 3], [2, 3]]}, inner),
            bc.Send(), bc.Recv(),
            bc.Loop(2**40, -5, 3, 3, (4,), (2,), (5,), (6,), body, call),
            bc.Output("y", 6, "fix", 16, None)]
    data = bc.encode("bob", code)
    assert bc.encode("bob", code) == data  # deterministic
    back = bc.decode(data)
    assert back["party"] == "bob"
    got = back["code"]
    assert [type(i) for i in got] == [type(i) for i in code]
    np.testing.assert_array_equal(got[0].attrs["value"], code[0].attrs["value"])
    assert got[1:4] == code[1:4] and got[4] == code[4] and got[5] == code[5]
    assert got[1].pos.where() == "u.mpc:27:13 → ml.mpc:13:5"
    assert got[4].body[0].pos.caller is got[0].pos  # one table row per distinct position
    assert len(msgpack.unpackb(data)["positions"]) == 2


def test_another_format_version_is_refused():
    old = msgpack.packb({"veil": 4, "party": "bob", "code": []})  # before the masked flag
    with pytest.raises(ValueError, match="version 4, this veil reads version 5: recompile"):
        bc.decode(old)


def test_instructions_keep_file_line_column_and_the_call_chain(prog):
    code = list(walk(bc.decode(prog.files["bob"])["code"]))
    assert _product(prog).pos.where() == f"{CALL} → {PRODUCT}"
    assert {i.pos.where() for i in code if isinstance(i, bc.KernelInstr) and i.name == "share"} == \
        {"u.mpc:4:5", "u.mpc:5:5"}
    text = "\n".join(bc.disassemble(bc.decode(prog.files["bob"])["code"]))
    assert f"; {CALL} → {PRODUCT}" in text


def test_the_bytecode_does_not_depend_on_where_the_program_was_compiled(tmp_path):
    builds = []
    for d in (tmp_path / "one", tmp_path / "two" / "deeper"):
        d.mkdir(parents=True)
        (d / "m.mpc").write_text(MODULE)
        (d / "u.mpc").write_text(PROGRAM)
        builds.append(api.compile(str(d / "u.mpc")).files)
    assert builds[0] == builds[1]


def test_a_local_op_failure_names_the_party_and_the_chain(prog):
    """A reshape to an impossible shape (crafted bytecode) fails inside numpy at every compute party."""
    def crafted(code):
        return [dataclasses.replace(i, attrs={"shape": [3]})
                if isinstance(i, bc.OpInstr) and i.opcode == "reshape" else i for i in code]
    files = {p: bc.encode(p, crafted(bc.decode(b)["code"])) for p, b in prog.files.items()}
    assert files != prog.files
    with pytest.raises(RuntimeFailure) as info:
        api.run(dataclasses.replace(prog, files=files), INPUTS)
    expected = rf"(alice|bob|carol) failed at {CALL} → {RESHAPE} \(reshape\): .*size 4 into shape \(3,\)"
    assert re.search(expected, info.value.message), info.value.message


def _product(prog) -> bc.KernelInstr:
    """The kernel that computes f's product (its name depends on the fusions the protocol offers)."""
    code = walk(bc.decode(prog.files["bob"])["code"])
    return next(i for i in code if isinstance(i, bc.KernelInstr) and i.pos.where().endswith(PRODUCT))


def _patch_product(prog, monkeypatch, fn) -> str:
    kernels = get_protocol("rep3").kernels
    name = _product(prog).name
    monkeypatch.setitem(kernels, name, dataclasses.replace(kernels[name], fn=fn(kernels[name].fn)))
    return name


def test_a_kernel_failing_at_start_names_the_party_and_the_chain(prog, monkeypatch):
    def fn(real):
        def failing(ctx, *args, **kw):
            if ctx.party == "bob":
                raise ValueError("boom at start")
            return real(ctx, *args, **kw)
        return failing
    name = _patch_product(prog, monkeypatch, fn)
    with pytest.raises(RuntimeFailure) as info:
        api.run(prog, INPUTS)
    assert f"bob failed at {CALL} → {PRODUCT} (kernel {name}): boom at start" in info.value.message


def test_a_kernel_failing_when_resumed_names_the_party_and_the_chain(prog, monkeypatch):
    def fn(real):
        def failing(ctx, *args, **kw):
            gen = real(ctx, *args, **kw)
            ex = next(gen)
            while True:
                got = yield ex
                if ctx.party == "bob":
                    raise ZeroDivisionError("boom after a round")
                try:
                    ex = gen.send(got)
                except StopIteration as stop:
                    return stop.value
        return failing
    name = _patch_product(prog, monkeypatch, fn)
    with pytest.raises(RuntimeFailure) as info:
        api.run(prog, INPUTS)
    assert f"bob failed at {CALL} → {PRODUCT} (kernel {name}): boom after a round" in info.value.message


def test_an_emulated_overflow_inside_an_imported_function_names_the_calling_line(tmp_path):
    (tmp_path / "m.mpc").write_text('"""Powers."""\n\n\ndef cube(a):\n    return a * a * a\n')
    (tmp_path / "u.mpc").write_text('party alice, bob, carol\nprotocol rep3(alice, bob, carol)\nfrom m import cube\n'
                                    'x = secret(input(alice, "x", shape=(4,)))\ny = cube(x)\noutput(y, to=alice)\n')
    c = api.front_end(str(tmp_path / "u.mpc"))
    with pytest.raises(RuntimeFailure) as info:
        api.emulate(c, {"alice": {"x": np.full(4, 3e4)}})
    assert type(info.value).__name__ == "OverflowWarning"
    assert re.search(r"overflow at \S*u\.mpc:5:5 → \S*m\.mpc:5:12: ", info.value.message), info.value.message


class _LostMesh:
    """A mesh whose peer is gone: every send and receive fails."""

    async def send(self, peer, arrays):
        raise NetworkError(f"lost the connection to {peer}")

    async def send_all(self, messages):
        for peer, arrays in messages.items():
            await self.send(peer, arrays)

    async def recv(self, peer):
        raise NetworkError(f"lost the connection to {peer}")


def test_a_network_error_names_the_positions_of_the_kernels_in_flight(prog):
    from kernel_driver import make_prgs
    from veil.runtime.vm import VM

    ctx = Context("bob", prog.manifest["compute"], make_prgs(prog.manifest["parties"])["bob"])
    vm = VM("bob", get_protocol("rep3"), ctx, _LostMesh(), {"y": np.zeros(4, dtype=np.uint64)})
    with pytest.raises(NetworkError) as info:
        asyncio.run(vm.run(bc.decode(prog.files["bob"])["code"]))
    assert info.value.message.startswith("lost the connection to ")
    assert info.value.message.endswith(" (while running u.mpc:4:5, u.mpc:5:5)"), info.value.message
