"""Scheduling and memory: rounds batched, local work overlapping the wire, registers reused."""
from __future__ import annotations

import numpy as np

from veil.runtime import api, bytecode

HEAD = "party alice, bob, carol\nprotocol rep3(alice, bob, carol)\n"


def code_of(c, party: str) -> list:
    return bytecode.decode(c.files[party])["code"]


def test_independent_local_work_runs_between_send_and_recv():
    src = HEAD + ('a = secret(input(alice, "a", shape=(64,)))\nb = secret(input(bob, "b", shape=(64,)))\n'
                  'p = input(carol, "p", shape=(64,))\nc = a * b\nq = p * p + p\n'
                  'output(c, to=alice)\noutput(q, to=carol)\n')
    code = code_of(api.compile(src), "carol")
    kinds = [ins.opcode if isinstance(ins, bytecode.OpInstr) else bytecode.TAGS[type(ins)] for ins in code]
    # carol's private arithmetic does not wait for the product's messages: it sits inside a round
    first_send = kinds.index("send")
    first_recv = kinds.index("recv")
    between = kinds[first_send + 1:first_recv]
    assert "mul" in between and "add" in between, kinds


def test_registers_are_reused_and_memory_is_bounded_by_live_values():
    def prog(k: int) -> str:
        body = "".join(f"    x{i + 1} = x{i} * 3 - x{i} * 2 + 0.25\n" for i in range(k))
        return HEAD + ('x0 = secret(input(alice, "a", shape=(1000,)))\nfor t in range(3):\n' + body +
                       f"    x0 = x{k}\noutput(x0, to=alice)\n")
    short, long = api.compile(prog(5)), api.compile(prog(60))
    for party in ("alice", "bob"):
        regs = {r for ins in code_of(long, party) for r in _regs(ins)}
        assert len(regs) <= 8, sorted(regs)  # 60 temporaries, a handful of registers
        assert long.cost.peak_memory[party] == short.cost.peak_memory[party]
    a = np.arange(1000) / 1000
    out = api.run(long, {"alice": {"a": a}})
    emu = api.emulate(long, {"alice": {"a": a}})
    np.testing.assert_array_equal(out["alice"]["x0"], emu["alice"]["x0"])  # only exact local ops
    np.testing.assert_allclose(out["alice"]["x0"], a + 3 * 60 * 0.25, atol=1e-4)


def _regs(ins: bytecode.Instr) -> list[int]:
    if isinstance(ins, bytecode.Loop):
        inner = [r for sub in ins.body for r in _regs(sub)]
        return [ins.ivar, *ins.params, *ins.inits, *ins.results, *ins.outs, *inner]
    return [*ins.reads(), *ins.writes()]


def test_a_kernel_result_a_party_never_reads_keeps_its_register_until_written():
    """A kernel writes its result rounds after it starts: even unread, its register is not handed
    to a value defined meanwhile (that value would be overwritten)."""
    from veil.compiler.regalloc import allocate

    bc = bytecode
    code = [bc.OpInstr("input", 1, (), {}, ()), bc.OpInstr("input", 2, (), {}, ()),
            bc.KernelInstr("mul_trunc", 1, 10, (1, 2), {}),  # its result is never read here
            bc.OpInstr("const", 11, (), {}, ()),
            bc.Send(), bc.Recv(), bc.Send(), bc.Recv(),
            bc.Output("y", 11, "fix", 16)]
    out, _nregs, _peak = allocate(code, {}, {10: 2})
    kernel = next(ins for ins in out if isinstance(ins, bc.KernelInstr))
    const = next(ins for ins in out if isinstance(ins, bc.OpInstr) and ins.opcode == "const")
    assert kernel.out != const.out
