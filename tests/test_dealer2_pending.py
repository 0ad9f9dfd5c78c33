"""dealer2's pending truncations (runtime/protocols/dealer2_pending.py): a truncation kept with
its public part, finished with no round or taken by a product of pending values without a Beaver
round, gives floor or floor + 1 of the exact value, keeps every view uniform, and costs what it
declares (the driver checks rounds, words, draws and links of every run)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_driver import COMPUTE, PARTIES, assert_balanced_bits, assert_fresh_paired_streams, run_kernel, \
    run_kernel_traced
from test_dealer2 import P, opened, rand_ring, shares_of
from veil.runtime.protocols import dealer2_pending
from veil.runtime.ops import OPS
from veil.runtime.ring import signed, trunc as clear_trunc

U64 = np.uint64
F = 16
P0, P1, DEALER = COMPUTE
RNG = np.random.default_rng(23)


def rand_signed(n: int, bound: int) -> np.ndarray:
    return RNG.integers(-bound, bound, size=n).astype(np.int64).view(U64)


def trunc_error(got: np.ndarray, exact: np.ndarray, m: int) -> np.ndarray:
    return signed(got) - signed(clear_trunc(exact, m))


def kept(kernel: str, values: list[np.ndarray], bits: int = F) -> dict:
    """Each party's pending output of a truncating kernel run with keep=True."""
    return run_kernel(P, kernel, shares_of(*values), {"bits": bits, "keep": True}, PARTIES, COMPUTE)


def finished(pending: dict) -> np.ndarray:
    return opened(run_kernel(P, "finish", {p: (pending[p],) for p in COMPUTE}, {}, PARTIES, COMPUTE))


def product(x: dict, y: dict, bits: int = F, **attrs) -> dict:
    return run_kernel(P, "mul_trunc_pending", {p: (x[p], y[p]) for p in COMPUTE}, {"bits": bits, **attrs},
                      PARTIES, COMPUTE)


@pytest.mark.parametrize("m", [1, 16, 32, 61])
def test_a_kept_truncation_finished_is_the_truncation(m):
    x = rand_signed(5000, 2**61)
    out = kept("trunc", [x], m)
    assert all(isinstance(out[p], dealer2_pending.Pending) for p in COMPUTE)
    assert set(np.unique(trunc_error(finished(out), x, m))) <= {0, 1}


def test_the_product_kernels_can_keep():
    x, y = rand_signed(3000, 2**31), rand_signed(3000, 2**31)
    assert set(np.unique(trunc_error(finished(kept("mul_trunc", [x, y])), x * y, F))) <= {0, 1}
    a, b = rand_signed(30, 2**20).reshape(6, 5), rand_signed(20, 2**20).reshape(5, 4)
    out = kept("matmul_trunc", [a, b])
    assert out[P0].shape == (6, 4)
    assert set(np.unique(trunc_error(finished(out), a @ b, F))) <= {0, 1}


def test_the_pending_parts_add_up_to_the_output():
    """pub + K + s J is the output: the openers' pub and s agree, and the dealer's K and J with them."""
    x = kept("trunc", [rand_signed(2000, 2**50)])
    k, j = x[DEALER].kj
    assert np.array_equal(x[P0].pub, x[P1].pub) and np.array_equal(x[P0].s, x[P1].s)
    assert np.array_equal(x[P0].pub + k + x[P0].s * j, finished(x))


@pytest.mark.parametrize("case", ["square", "both", "same root"])
@pytest.mark.parametrize("keep", [False, True])
def test_a_product_of_pending_values_is_floor_or_floor_plus_one(case, keep):
    n = 4000
    x = kept("mul_trunc", [rand_signed(n, 2**23), rand_signed(n, 2**23)])  # |x| < 2^31
    xv = finished(x)
    if case == "square":
        y, attrs = x, {}
    elif case == "both":
        y, attrs = kept("trunc", [rand_signed(n, 2**47)]), {"both": True}
    else:  # another value derived from the same truncation: 3 x + 5
        y = {p: dealer2_pending.local(i, "add", [dealer2_pending.local(i, "mul", [x[p], U64(3)], [True, False],
                                                                      [True, False]), U64(5)],
                                       [True, False], [True, False]) for i, p in enumerate(COMPUTE)}
        attrs = {"both": True}
    yv = finished(y)
    out = product(x, y, keep=keep, **attrs)
    got = finished(out) if keep else opened(out)
    assert set(np.unique(trunc_error(got, xv * yv, F))) <= {0, 1}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=6), st.booleans())
def test_pending_products_match_float_numpy(values, both):
    """The cubic's chain: z kept, z^2 kept, z^2 * (c z) (or z^2 * z) with both operands pending."""
    z = np.array(values)
    zr = np.array([int(round(v * 2**F)) for v in z], dtype=np.int64).view(U64)
    zk = kept("trunc", [zr * U64(1 << F)])
    sq = product(zk, zk, keep=True)
    other = kept("trunc", [zr * U64(3 << F)]) if both else zk
    got = signed(opened(product(sq, other, both=True))) / 2**F
    want = z ** 3 * (3 if both else 1)
    assert np.allclose(got, want, atol=1e-2 * (1 + np.abs(want) * 1e-3)), (got, want)


def test_a_product_with_a_sharing_is_refused():
    x = kept("trunc", [rand_signed(10, 2**40)])
    with pytest.raises(ValueError, match="pending value times itself"):
        product(x, shares_of(rand_signed(10, 2**20)), F)


@pytest.mark.parametrize("case", ["square", "both"])
def test_pending_products_leave_views_uniform(case):
    """What P1 receives from the dealer (the dealt parts, masked by P0's words), what P0 and P1
    send each other, and each opener's output share have balanced bits, for fixed secrets; the
    dealer receives nothing."""
    n = 20_000
    x = kept("trunc", [np.full(n, 7 << 32, U64)])
    y = x if case == "square" else kept("trunc", [np.full(n, 3 << 32, U64)])
    out, trace = run_kernel_traced(P, "mul_trunc_pending", {p: (x[p], y[p]) for p in COMPUTE},
                                   {"bits": F, **({"both": True} if case == "both" else {})}, PARTIES, COMPUTE)
    assert not any(arrays for got in trace.received[DEALER] for arrays in got.values())
    for k, word in enumerate(trace.received[P1][0][DEALER]):
        assert_balanced_bits(word, what=f"dealt part {k} to P1")
    for me, other in ((P0, P1), (P1, P0)):
        assert_balanced_bits(trace.received[me][1][other][0], what=f"{other}'s opening to {me}")
    for p in (P0, P1):
        assert_balanced_bits(out[p], what=f"{p}'s output share")
    assert_fresh_paired_streams(trace)


def test_the_view_check_sees_an_unmasked_dealt_part(monkeypatch):
    """The dealer sending P1 its parts without P0's shares taken off (zero shares) would show P1
    products of the dealer's masks: the check above must see it."""
    from veil.runtime.protocols.base import Context
    real = Context.rand_rows
    monkeypatch.setattr(Context, "rand_rows", lambda self, rows, n: [np.zeros_like(r) for r in real(self, rows, n)]
                        if rows and rows[0][1] == dealer2_pending.S_D[0] else real(self, rows, n))
    n = 20_000
    x = kept("trunc", [np.full(n, 7 << 32, U64)])
    _, trace = run_kernel_traced(P, "mul_trunc_pending", {p: (x[p], x[p]) for p in COMPUTE}, {"bits": F},
                                 PARTIES, COMPUTE)
    with pytest.raises(AssertionError, match="non-uniform"):
        for word in trace.received[P1][0][DEALER]:
            assert_balanced_bits(word, what="dealt part")


def _local(opcode: str, args: dict, pending: list[bool], secret: list[bool]) -> dict:
    return {p: dealer2_pending.local(i, opcode, args[p], pending, secret) for i, p in enumerate(COMPUTE)}


@pytest.mark.parametrize("opcode, order, kind", [
    ("add", "xy", "public"), ("add", "yx", "public"), ("sub", "xy", "public"), ("sub", "yx", "public"),
    ("mul", "xy", "public"), ("mul", "yx", "scalar"), ("neg", "x", ""),
])
def test_public_linear_ops_keep_a_value_pending(opcode, order, kind):
    """Each op on a pending x, then finish: exactly the ring result on the finished x; the
    product kernel still takes the result."""
    n = 500
    x = kept("trunc", [rand_signed(n, 2**40)])
    xv = finished(x)
    yv = rand_signed(n, 2**20) if kind == "public" else np.asarray(rand_signed(1, 2**10)[0])
    operands = {"x": (x, True), "y": ({p: yv for p in COMPUTE}, False)}
    args = {p: [operands[c][0][p] for c in order] for p in COMPUTE}
    out = _local(opcode, args, [operands[c][1] for c in order], [operands[c][1] for c in order])
    want = OPS[opcode].clear(*[{"x": xv, "y": yv}[c] for c in order])  # the registry's semantics
    assert np.array_equal(finished(out), want)
    assert all(out[p] is not x[p] and out[p].shape == x[p].shape for p in COMPUTE)
    if opcode != "mul":  # keep the product's range: x * (x op y)
        got = opened(product(x, out, both=True))
        assert set(np.unique(trunc_error(got, xv * want, F))) <= {0, 1}


def test_a_pending_value_and_a_sharing_are_refused_as_a_local_op():
    x = kept("trunc", [rand_signed(10, 2**40)])
    y = shares_of(rand_signed(10, 2**20))
    with pytest.raises(ValueError, match="sharing"):
        _local("add", {p: [x[p], y[p][0]] for p in COMPUTE}, [True, False], [True, True])


@pytest.mark.parametrize("kernel", ["trunc", "mul_trunc", "matmul_trunc"])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_truncation_takes_an_addend_exactly(kernel, sign):
    """trunc(z + sign * s * 2^m) = trunc(z) + sign * s exactly, up to the truncation's own {0, 1}:
    a sum with a sharing moved into the kernel, so that it is pending too (compiler/pending.py)."""
    if kernel == "matmul_trunc":
        x, y = rand_signed(40, 2**20).reshape(8, 5), rand_signed(15, 2**20).reshape(5, 3)
        z, s = x @ y, rand_signed(3, 2**30)  # broadcast over the rows, as a bias is
        values = [x, y, s]
    else:
        x, y = rand_signed(3000, 2**23), rand_signed(3000, 2**23)
        z, s = x * y, rand_signed(3000, 2**30)
        values = [z, s] if kernel == "trunc" else [x, y, s]
    out = run_kernel(P, kernel, shares_of(*values), {"bits": F, "keep": True, "addend_sign": sign}, PARTIES, COMPUTE)
    want = signed(clear_trunc(z, F)) + sign * signed(np.broadcast_to(s, z.shape))
    assert set(np.unique(signed(finished(out)) - want)) <= {0, 1}
