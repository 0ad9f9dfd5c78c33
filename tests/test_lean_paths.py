"""The per-call fast paths of the runtime's hot loop give what the general paths give: asring on
arrays already uint64, rep3's add_public, and the VM's per-instruction plans against `local`."""
from __future__ import annotations

import numpy as np
import pytest

from veil.runtime.bytecode import OpInstr
from veil.runtime.diagnostics import RuntimeFailure
from veil.runtime.protocols.base import Context
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.protocols.rep3 import Rep3
from veil.runtime.ring import asring
from veil.runtime.vm import VM

U64 = np.uint64
PARTIES = ["alice", "bob", "carol"]


def _old_asring(x):
    return np.asarray(x).astype(U64, copy=False).reshape(np.shape(x))


@pytest.mark.parametrize("x", [np.arange(6, dtype=U64).reshape(2, 3), np.array(7, dtype=U64),
                               np.arange(6, dtype=U64).reshape(2, 3).T, np.array([-1, 2], dtype=np.int64),
                               np.uint64(5), [1, 2, 3], np.arange(3, dtype=">u8"), 3])
def test_asring_is_the_general_conversion(x):
    got, want = asring(x), _old_asring(x)
    assert type(got) is np.ndarray and got.dtype == U64 and got.shape == want.shape
    assert np.array_equal(got, want)
    if type(x) is np.ndarray and x.dtype == np.dtype(U64) and x.dtype.isnative:
        assert got is x  # already a ring array: no new view


def _rand(rng, shape):
    return rng.integers(0, 2**64, shape, dtype=U64, endpoint=False)


@pytest.mark.parametrize("xs, cs", [((4, 3), (4, 3)), ((4, 3), (3,)), ((3,), (4, 3)), ((), (2,)), ((2,), ())])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_rep3_add_public_is_the_broadcast_sum_in_fresh_arrays(xs, cs, index):
    rng = np.random.default_rng(len(xs) * 10 + len(cs) + index)
    a, b, c = _rand(rng, xs), _rand(rng, xs), _rand(rng, cs)
    shape = np.broadcast_shapes(xs, cs)
    ctx = Context(PARTIES[index], PARTIES, None)  # type: ignore[arg-type]
    got = Rep3().add_public(ctx, (a, b), c)
    wa, wb = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    want = (wa + c if index == 0 else wa, wb + c if index == 2 else wb)
    for g, w, src in zip(got, want, (a, b)):
        assert type(g) is np.ndarray and g.dtype == U64 and g.shape == shape and np.array_equal(g, w)
        assert g.flags.writeable and not np.shares_memory(g, src) and not np.shares_memory(g, c)


@pytest.mark.parametrize("xs, cs", [((4, 3), (4, 3)), ((4, 3), (3,)), ((3,), (4, 3)), ((), (2,))])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_dealer2_add_public_is_the_broadcast_sum_in_a_fresh_array(xs, cs, index):
    rng = np.random.default_rng(len(xs) * 10 + len(cs) + index)
    x, c = _rand(rng, xs), _rand(rng, cs)
    shape = np.broadcast_shapes(xs, cs)
    got = Dealer2().add_public(Context(PARTIES[index], PARTIES, None), x, c)  # type: ignore[arg-type]
    want = np.broadcast_to(x, shape) + c if index == 0 else np.broadcast_to(x, shape)
    assert type(got) is np.ndarray and got.dtype == U64 and got.shape == shape and np.array_equal(got, want)
    assert got.flags.writeable and not np.shares_memory(got, x) and not np.shares_memory(got, c)


def _vm(protocol, party: str) -> VM:
    return VM(party, protocol, Context(party, PARTIES, None), mesh=None, inputs={"x": np.arange(3, dtype=U64)})  # type: ignore[arg-type]


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)


CASES = [  # opcode, attrs, sec (1 secret, 0 public, 2 additive), operand shapes
    ("add", {}, (0, 0), [(3,), (3,)]), ("add", {}, (1, 1), [(2, 3), (2, 3)]), ("add", {}, (1, 0), [(3,), (3,)]),
    ("add", {}, (0, 1), [(2, 3), (3,)]), ("sub", {}, (1, 0), [(3,), (3,)]), ("sub", {}, (0, 1), [(3,), (3,)]),
    ("mul", {}, (1, 0), [(3,), (3,)]), ("mul", {}, (0, 1), [(3,), (3,)]), ("neg", {}, (1,), [(4,)]),
    ("sum", {"axis": 0}, (1,), [(2, 3)]), ("transpose", {"axes": None}, (1,), [(2, 3)]),
    ("reshape", {"shape": (3, 2)}, (1,), [(2, 3)]), ("broadcast", {"shape": (2, 3)}, (0,), [(3,)]),
    ("lshift", {"bits": 3}, (1,), [(3,)]), ("concat", {"axis": 0}, (1, 1, 1), [(2,), (3,), (1,)]),
    ("add", {}, (2, 2), [(3,), (3,)]), ("add", {}, (2, 0), [(3,), (3,)]), ("sub", {}, (0, 2), [(3,), (3,)]),
    ("matmul", {}, (1, 0), [(2, 3), (3, 2)]), ("const", {"value": np.arange(2, dtype=U64)}, (), []),
    ("input", {"name": "x", "party": "alice", "dtype": "int"}, (), []), ("retag", {}, (1,), [(3,)]),
    ("from_public", {}, (0,), [(3,)]), ("to_additive", {}, (1,), [(3,)]),
]


@pytest.mark.parametrize("protocol", [Rep3(), Dealer2()], ids=["rep3", "dealer2"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}{c[2]}" for c in CASES])
def test_vm_plan_equals_local(protocol, case):
    opcode, attrs, sec, shapes = case
    rng = np.random.default_rng(abs(hash((opcode, sec))) % 1000)
    for party in PARTIES:
        vm = _vm(protocol, party)
        args = []
        for s, shape in zip(sec, shapes):
            if s == 1 and isinstance(protocol, Rep3):
                args.append((_rand(rng, shape), _rand(rng, shape)))
            else:
                args.append(_rand(rng, shape))
        ins = OpInstr(opcode, 99, tuple(range(len(args))), attrs, sec)
        vm.regs.update(enumerate(args))
        want = vm.local(opcode, list(args), attrs, sec)
        vm.op(ins)
        vm.op(ins)  # the second run uses the remembered plan
        assert _same(vm.regs[99], want), (opcode, sec, party)
        assert vm._plans[id(ins)][0] is ins  # noqa: SLF001


def test_vm_plan_failure_names_the_instruction():
    vm = _vm(Rep3(), "alice")
    vm.regs[0] = np.zeros(3, U64)
    with pytest.raises(RuntimeFailure, match="alice failed .*nosuchop"):
        vm.op(OpInstr("nosuchop", 1, (0,), {}, (0,)))


@pytest.mark.parametrize("opcode, shapes, offloaded", [
    ("add", [(10**6,), (10**6,)], False),            # the suite's 10^6 add stays on the loop's thread
    ("add", [(1 << 22,), (1 << 22,)], True),         # 2^24 element steps: ~15 ms, to a worker thread
    ("sum", [(1 << 23,)], True),
    ("matmul", [(64, 784), (784, 128)], False),      # 12.8M multiply-adds (two components): ~2 ms in C
    ("matmul", [(512, 512), (512, 512)], True),      # 268M: seconds in numpy's loop
])
def test_only_long_local_ops_go_to_a_worker_thread(opcode, shapes, offloaded):
    """The liveness offload is decided by an op's work (a matrix product's multiply-adds), so a
    matrix product of 0.5 M-element operands goes to a thread and a 10^6-element add does not."""
    vm = _vm(Rep3(), "alice")
    for r, shape in enumerate(shapes):
        vm.regs[r] = (np.zeros(shape, dtype=U64), np.zeros(shape, dtype=U64))
    ins = OpInstr(opcode, 9, tuple(range(len(shapes))), {"axis": None} if opcode == "sum" else {}, (1,) * len(shapes))
    assert vm._prepared(ins)[2] is offloaded
