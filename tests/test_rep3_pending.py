"""rep3's pending truncations (runtime/protocols/rep3_pending.py): a truncation stopped after
round 1, finished later or taken by a product, gives what the two-round kernels give (floor or
floor + 1 of the exact value), keeps every view uniform, and costs what it declares (the driver
checks rounds, words, draws and links of every run)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_driver import COMPUTE, PARTIES, assert_balanced_bits, open_value, run_kernel, run_kernel_traced
from test_rep3 import P, rand_signed, ring, secret_inputs, trunc_error, trunc_values
from veil.runtime.ops import OPS

U64 = np.uint64
F = 16


def kept(kernel: str, values: list[np.ndarray], bits: int) -> dict:
    """Each party's pending output of a truncating kernel run with keep=True."""
    return run_kernel(P, kernel, secret_inputs(*values), {"bits": bits, "keep": True}, PARTIES, COMPUTE)


def finished(pending: dict) -> np.ndarray:
    return open_value(run_kernel(P, "finish", {p: (pending[p],) for p in COMPUTE}, {}, PARTIES, COMPUTE))


def shared(values: np.ndarray) -> dict:
    """Each compute party's rep3 share of values."""
    return {p: got[0] for p, got in secret_inputs(values).items() if p in COMPUTE}


def product(x: dict, y: dict, bits: int, **attrs) -> dict:
    return run_kernel(P, "mul_trunc_pending", {p: (x[p], y[p]) for p in COMPUTE}, {"bits": bits, **attrs},
                      PARTIES, COMPUTE)


@pytest.mark.parametrize("m", [1, 16, 32, 61])
def test_a_kept_truncation_finished_is_the_truncation(m):
    x = trunc_values(m)[:5000]
    assert set(np.unique(trunc_error(finished(kept("trunc", [x], m)), x, m))) <= {0, 1}


@pytest.mark.parametrize("kernel", ["mul_trunc", "trunc_add"])
def test_every_truncating_kernel_can_keep(kernel):
    n = 3000
    x, y = rand_signed(n, 2**31), rand_signed(n, 2**31)
    values, exact = ([x, y], x * y) if kernel == "mul_trunc" else ([x * y], x * y)
    if kernel == "trunc_add":  # an additive sharing: any three words summing to the value
        a, b = rand_signed(n, 2**63), rand_signed(n, 2**63)
        out = run_kernel(P, kernel, dict(zip(COMPUTE, [(a,), (b,), (exact - a - b,)])) | {PARTIES[-1]: ()},
                         {"bits": F, "keep": True}, PARTIES, COMPUTE)
    else:
        out = kept(kernel, values, F)
    assert set(np.unique(trunc_error(finished(out), exact, F))) <= {0, 1}


def test_matmul_trunc_can_keep():
    x, y = rand_signed((6, 5), 2**20), rand_signed((5, 4), 2**20)
    out = kept("matmul_trunc", [x, y], F)
    assert out[COMPUTE[0]].shape == (6, 4)
    assert set(np.unique(trunc_error(finished(out), x @ y, F))) <= {0, 1}


def _exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * b  # the ring product of the opened operands: what the kernel must truncate


@pytest.mark.parametrize("case", ["square", "sharing", "both"])
@pytest.mark.parametrize("keep", [False, True])
def test_a_product_takes_a_pending_operand(case, keep):
    """x kept pending (values opened afterwards to know the exact operand), times itself, a
    sharing, or another pending value: floor or floor + 1 of the exact product."""
    n = 4000
    x = kept("mul_trunc", [rand_signed(n, 2**23), rand_signed(n, 2**23)], F)  # |x| < 2^30
    xv = finished(x)
    if case == "square":
        y, yv, attrs = x, xv, {}
    elif case == "sharing":
        yv = rand_signed(n, 2**31)
        y, attrs = shared(yv), {}
    else:
        y = kept("trunc", [rand_signed(n, 2**47)], F)
        yv, attrs = finished(y), {"both": True}
    out = product(x, y, F, keep=keep, **attrs)
    got = finished(out) if keep else open_value(out)
    assert set(np.unique(trunc_error(got, _exact_product(xv, yv), F))) <= {0, 1}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=6), st.booleans())
def test_pending_products_match_float_numpy(values, both):
    """A chain as the cubic sigmoid runs it: z kept, z^2 kept, z^2 * (c z) with c z kept too."""
    z = np.array(values)
    zr = ring([int(round(v * 2**F)) for v in z])
    zk = kept("trunc", [zr * U64(1 << F)], F)          # z at scale 2^F, left pending
    sq = product(zk, zk, F, keep=True)                  # z^2, pending
    cz = kept("trunc", [zr * U64(3 << F)], F) if both else None  # 3 z, pending
    out = product(sq, cz, F, both=True) if both else product(sq, zk, F, both=True)
    got = np.asarray(open_value(out)).astype(np.int64) / 2**F
    want = z ** 3 * (3 if both else 1)
    assert np.allclose(got, want, atol=1e-2 * (1 + np.abs(want) * 1e-3)), (got, want)


def test_both_must_match_the_operands():
    x = kept("trunc", [rand_signed(10, 2**40)], F)
    with pytest.raises(ValueError, match="both"):
        product(x, kept("trunc", [rand_signed(10, 2**40)], F), F)


@pytest.mark.parametrize("case", ["square", "sharing", "both"])
def test_pending_products_leave_views_uniform(case):
    """What P1 receives from P2 (the dealt parts, masked under k02), what P0 and P1 send each
    other, and each party's output pair have balanced bits, for a fixed secret."""
    n = 20_000
    x = kept("trunc", [np.full(n, 7 << 32, U64)], F)
    y = x if case == "square" else shared(np.full(n, 5 << 16, U64)) if case == "sharing" else \
        kept("trunc", [np.full(n, 3 << 32, U64)], F)
    attrs = {"both": True} if case == "both" else {}
    out, trace = run_kernel_traced(P, "mul_trunc_pending", {p: (x[p], y[p]) for p in COMPUTE},
                                   {"bits": F, **attrs}, PARTIES, COMPUTE)
    p0, p1, p2 = COMPUTE
    assert not any(arrays for got in trace.received[p2] for arrays in got.values())
    for k, word in enumerate(trace.received[p1][0][p2]):
        assert_balanced_bits(word, what=f"dealt part {k} to P1")
    for me, other in ((p0, p1), (p1, p0)):
        for word in trace.received[me][1][other]:
            assert_balanced_bits(word, what=f"{other}'s opening to {me}")
    for p in COMPUTE:
        a, b = (np.asarray(c, dtype=U64).reshape(-1) for c in out[p])
        for what, v in (("first", a), ("second", b), ("sum", a + b)):
            assert_balanced_bits(v, what=f"{p}'s {what} component")


def test_the_view_check_sees_an_unmasked_dealt_part(monkeypatch):
    """P2 dealing P1 its parts without P0's masks (zero masks) would show P1 a function of P2's
    secrets: the check above must see it."""
    from veil.runtime.protocols.base import Context
    real = Context.rand_rows
    monkeypatch.setattr(Context, "rand_rows", lambda self, rows, n: [np.zeros_like(r) for r in real(self, rows, n)]
                        if len(rows) == 2 and rows[0][1] == 10 else real(self, rows, n))
    n = 20_000
    x = kept("trunc", [np.full(n, 7 << 32, U64)], F)
    _, trace = run_kernel_traced(P, "mul_trunc_pending", {p: (x[p], x[p]) for p in COMPUTE}, {"bits": F},
                                 PARTIES, COMPUTE)
    with pytest.raises(AssertionError, match="non-uniform"):
        for word in trace.received[COMPUTE[1]][0][COMPUTE[2]]:
            assert_balanced_bits(word, what="dealt part")


@pytest.mark.parametrize("m", [1, 16, 40])
def test_a_pending_value_truncates_as_an_additive_sharing(m):
    x = kept("mul_trunc", [rand_signed(3000, 2**31), rand_signed(3000, 2**31)], F)
    out = run_kernel(P, "trunc_pending", {p: (x[p],) for p in COMPUTE}, {"bits": m}, PARTIES, COMPUTE)
    assert set(np.unique(trunc_error(open_value(out), finished(x), m))) <= {0, 1}


def _local(opcode: str, args: dict, pending: list[bool], secret: list[bool]) -> dict:
    from veil.runtime.protocols import rep3_pending
    return {p: rep3_pending.local(i, opcode, args[p], pending, secret) for i, p in enumerate(COMPUTE)}


@pytest.mark.parametrize("opcode, order, kind", [
    ("add", "xy", "sharing"), ("add", "yx", "sharing"), ("sub", "xy", "sharing"), ("sub", "yx", "sharing"),
    ("add", "xy", "public"), ("sub", "yx", "public"), ("mul", "xy", "public"), ("mul", "yx", "scalar"),
    ("neg", "x", ""),
])
def test_linear_ops_keep_a_value_pending(opcode, order, kind):
    """Each op on a pending x, then finish: exactly the ring result on the finished x."""
    n = 500
    x = kept("trunc", [rand_signed(n, 2**50)], F)
    xv = finished(x)
    yv = rand_signed(n, 2**40) if kind != "scalar" else np.asarray(rand_signed(1, 2**20)[0])
    y = shared(yv) if kind == "sharing" else {p: yv for p in COMPUTE}
    operands = {"x": (x, True, True), "y": (y, False, kind == "sharing")}
    args = {p: [operands[c][0][p] for c in order] for p in COMPUTE}
    out = _local(opcode, args, [operands[c][1] for c in order], [operands[c][2] for c in order])
    want = OPS[opcode].clear(*[{"x": xv, "y": yv}[c] for c in order])  # the registry's semantics
    assert np.array_equal(finished(out), want)
    assert all(out[p] is not x[p] and out[p].shape == x[p].shape for p in COMPUTE)


def test_a_pending_value_times_a_secret_is_refused():
    x = kept("trunc", [rand_signed(10, 2**40)], F)
    y = shared(rand_signed(10, 2**20))
    with pytest.raises(ValueError, match="kernel"):
        _local("mul", {p: [x[p], y[p]] for p in COMPUTE}, [True, False], [True, True])
