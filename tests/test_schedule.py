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
    kinds = [ins[0] if ins[0] != "op" else ins[1] for ins in code]
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


def _regs(ins: list) -> list[int]:
    kind = ins[0]
    if kind == "op":
        return [ins[2], *ins[3]]
    if kind == "kernel":
        return [r for r in [ins[3], *ins[4]] if r is not None]
    if kind == "output":
        return [ins[2]]
    if kind == "loop":
        return [ins[4], *ins[5], *ins[6], *ins[7], *ins[8]] + [r for sub in ins[9] for r in _regs(sub)]
    return []


def test_a_kernel_result_a_party_never_reads_keeps_its_register_until_written():
    """A kernel writes its result rounds after it starts: even unread, its register is not handed
    to a value defined meanwhile (that value would be overwritten)."""
    from veil.compiler.regalloc import allocate

    code = [["op", "input", 1, [], {}, [], 1], ["op", "input", 2, [], {}, [], 1],
            ["kernel", "mul_trunc", 1, 10, [1, 2], {}, 2],  # its result is never read here
            ["op", "const", 11, [], {}, [], 3],
            ["send"], ["recv"], ["send"], ["recv"],
            ["output", "y", 11, "fix", 16, 4]]
    out, _nregs, _peak = allocate(code, {}, {10: 2})
    kernel = next(ins for ins in out if ins[0] == "kernel")
    const = next(ins for ins in out if ins[0] == "op" and ins[1] == "const")
    assert kernel[3] != const[2]
