"""The C ring matmul must equal A @ B mod 2^64 exactly, on every shape and layout, with or without C."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from veil.cffi_kernels import aes, ring
from veil.runtime.protocols import rep3_fused

MOD = 1 << 64
EDGE = [0, 1, 2, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 63) + 1, MOD - 2, MOD - 1]

needs_c = pytest.mark.skipif(not ring.HAVE_C, reason="C kernels not built (no compiler at install time)")


def exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Reference product with Python's unbounded ints, reduced mod 2^64 at the end."""
    m, k = a.shape
    n = b.shape[1]
    al = [[int(x) for x in row] for row in a]
    bl = [[int(x) for x in row] for row in b]
    out = [[sum(al[i][p] * bl[p][j] for p in range(k)) % MOD for j in range(n)] for i in range(m)]
    return np.array(out, dtype=np.uint64).reshape(m, n)


def rand(rng: np.random.Generator, shape: tuple[int, ...], near_top: bool = False) -> np.ndarray:
    """Uniform uint64, or values clustered by 2^63 and 2^64 - 1 where carries are largest."""
    x = rng.integers(0, MOD, size=shape, dtype=np.uint64, endpoint=False)
    if near_top:
        base = rng.choice(np.array([1 << 63, MOD - 1, (1 << 63) - 1], dtype=np.uint64), size=shape)
        x = base - (x & np.uint64(0xFF))
    return x


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def test_c_kernels_built_when_required() -> None:
    """CI sets VEIL_REQUIRE_KERNELS=1 so a silently skipped optional build is caught, and a stale
    one whose truncation formulas take other arguments (rep3_fused would fall back to numpy) or
    that lacks the bulk keystream (the PRG would draw row by row)."""
    if os.environ.get("VEIL_REQUIRE_KERNELS") == "1":
        assert ring.HAVE_C and rep3_fused.HAVE_C and aes._has_rows()


@needs_c
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (4, 9, 8), (5, 4, 9), (9, 13, 2), (7, 3, 1), (1, 6, 11)])
@pytest.mark.parametrize("near_top", [False, True])
def test_c_matches_python_ints(rng: np.random.Generator, shape: tuple[int, int, int], near_top: bool) -> None:
    m, k, n = shape
    a, b = rand(rng, (m, k), near_top), rand(rng, (k, n), near_top)
    assert np.array_equal(ring.matmul_c(a, b), exact(a, b))


@needs_c
def test_edge_values_all_pairs() -> None:
    """Every pair of edge values meets in some product term, in both the tiled and the dot path."""
    e = np.array(EDGE, dtype=np.uint64)
    a = np.stack([e, e[::-1], np.roll(e, 3), np.full_like(e, MOD - 1)])
    b = np.stack([e, np.roll(e, 1), np.roll(e, 5), e[::-1], np.full_like(e, 1 << 63)] * 2, axis=1)
    for bb in (b, np.ascontiguousarray(b[:, :3])):  # 10 output columns -> tiled path; 3 -> dot path
        assert np.array_equal(ring.matmul_c(a, bb), exact(a, bb))


@needs_c
@pytest.mark.parametrize(
    "shape",
    [(128, 784, 128), (128, 32, 1), (32, 128, 1), (5, 300, 7), (1, 784, 128), (130, 257, 259), (3, 1, 600), (70, 2, 2)],
)
def test_c_matches_numpy_large(rng: np.random.Generator, shape: tuple[int, int, int]) -> None:
    """Shapes that cross every tile boundary (4 rows, 256 columns, 128 deep) and the dot threshold."""
    m, k, n = shape
    a, b = rand(rng, (m, k)), rand(rng, (k, n), near_top=True)
    assert np.array_equal(ring.matmul_c(a, b), a @ b)


@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0), (1, 0, 1), (300, 0, 300)])
def test_empty_shapes(shape: tuple[int, int, int]) -> None:
    m, k, n = shape
    a = np.ones((m, k), dtype=np.uint64)
    b = np.ones((k, n), dtype=np.uint64)
    out = ring.matmul(a, b)
    assert out.shape == (m, n) and out.dtype == np.uint64
    assert not out.any()
    if ring.HAVE_C:
        assert not ring.matmul_c(a, b).any()


def test_degenerate_shapes(rng: np.random.Generator) -> None:
    for m, k, n in [(1, 1, 1), (1, 50, 1), (1, 50, 60), (60, 50, 1), (60, 1, 60), (1, 1, 3000)]:
        a, b = rand(rng, (m, k), True), rand(rng, (k, n))
        assert np.array_equal(ring.matmul(a, b), a @ b)


def test_non_contiguous_inputs(rng: np.random.Generator) -> None:
    at = rand(rng, (70, 40))  # a is the transposed view: shape (40, 70), Fortran order
    b_big = rand(rng, (140, 90), True)
    a, b = at.T, b_big[::2, 1::3]
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    assert np.array_equal(ring.matmul(a, b), np.ascontiguousarray(a) @ np.ascontiguousarray(b))


def test_int64_inputs_wrap_like_uint64(rng: np.random.Generator) -> None:
    a = rand(rng, (20, 30), True)
    b = rand(rng, (30, 40))
    expected = a @ b
    out = ring.matmul(a.view(np.int64), b.view(np.int64))
    assert out.dtype == np.uint64
    assert np.array_equal(out, expected)
    assert np.array_equal(ring.matmul(a, b.view(np.int64)), expected)
    small = np.array([[-1, 2], [3, -(1 << 63)]], dtype=np.int64)
    assert np.array_equal(ring.matmul(small, small), exact(small.view(np.uint64), small.view(np.uint64)))


def test_inputs_left_untouched(rng: np.random.Generator) -> None:
    a, b = rand(rng, (64, 64)), rand(rng, (64, 64))
    a0, b0 = a.copy(), b.copy()
    out = ring.matmul(a, b)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)
    assert not np.shares_memory(out, a) and not np.shares_memory(out, b)


def test_read_only_inputs(rng: np.random.Generator) -> None:
    a, b = rand(rng, (40, 50)), rand(rng, (50, 60))
    a.flags.writeable = False
    b.flags.writeable = False
    assert np.array_equal(ring.matmul(a, b), a @ b)


@pytest.mark.parametrize(
    "a, b, exc",
    [
        (np.ones((2, 3), np.uint64), np.ones((4, 2), np.uint64), ValueError),
        (np.ones(3, np.uint64), np.ones((3, 2), np.uint64), ValueError),
        (np.ones((2, 2, 2), np.uint64), np.ones((2, 2), np.uint64), ValueError),
        (np.ones((2, 2), np.float64), np.ones((2, 2), np.uint64), TypeError),
        (np.ones((2, 2), np.int32), np.ones((2, 2), np.uint64), TypeError),
    ],
)
def test_bad_inputs_rejected(a: np.ndarray, b: np.ndarray, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        ring.matmul(a, b)


def test_small_products_use_numpy_large_use_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size threshold picks the faster implementation without changing the answer."""
    calls: list[str] = []
    monkeypatch.setattr(ring, "matmul_numpy", lambda a, b: calls.append("np") or np.matmul(a, b))
    monkeypatch.setattr(ring, "matmul_c", lambda a, b: calls.append("c") or np.matmul(a, b))
    monkeypatch.setattr(ring, "HAVE_C", True)
    ring.matmul(np.ones((2, 2), np.uint64), np.ones((2, 2), np.uint64))
    ring.matmul(np.ones((64, 64), np.uint64), np.ones((64, 64), np.uint64))
    assert calls == ["np", "c"]


def test_fallback_same_answer_and_warns_once(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = rand(rng, (50, 60), True), rand(rng, (60, 70), True)
    expected = exact(a[:6, :7], b[:7, :5])
    monkeypatch.setattr(ring, "HAVE_C", False)
    monkeypatch.setattr(ring, "_warned", False)
    monkeypatch.setattr(ring, "matmul_c", lambda a, b: pytest.fail("C path used without C"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out1 = ring.matmul(a, b)
        out2 = ring.matmul(a[:6, :7], b[:7, :5])
        out3 = ring.matmul(a.view(np.int64), b)
    fallback = [w for w in caught if issubclass(w.category, RuntimeWarning) and "pip install" in str(w.message)]
    assert len(fallback) == 1
    assert fallback[0].filename == __file__  # points at the caller, not at ring.py
    assert np.array_equal(out1, a @ b) and np.array_equal(out3, out1)
    assert np.array_equal(out2, expected)


@needs_c
@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 9),
    k=st.integers(0, 9),
    n=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
    edge=st.booleans(),
)
def test_hypothesis_c_equals_exact(m: int, k: int, n: int, seed: int, edge: bool) -> None:
    g = np.random.default_rng(seed)
    if edge:
        e = np.array(EDGE, dtype=np.uint64)
        a, b = g.choice(e, size=(m, k)), g.choice(e, size=(k, n))
    else:
        a, b = rand(g, (m, k)), rand(g, (k, n))
    assert np.array_equal(ring.matmul_c(a, b), exact(a, b))
    assert np.array_equal(ring.matmul(a, b), exact(a, b))


def test_module_without_compiled_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh copy of ring.py imported while _ring is missing really falls back (and warns once)."""
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, "veil.cffi_kernels._ring", None)  # makes the import fail
    spec = importlib.util.spec_from_file_location("_ring_without_c", ring.__file__)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.HAVE_C is False
    a = np.array([[MOD - 1, 1 << 63], [3, 5]], dtype=np.uint64)
    with pytest.warns(RuntimeWarning, match="pip install -e"):
        assert np.array_equal(mod.matmul(a, a), exact(a, a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(mod.matmul(a, a), exact(a, a))  # no second warning


IMPLS = ["limbs"] + (["c"] if ring.HAVE_C else [])


def _impl(name: str):
    """The named exact product (C kernel or float64 BLAS on limbs)."""
    return {"c": ring.matmul_c, "limbs": ring.matmul_limbs}[name]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("k", [1, 63, 512, 784, 2048, 2049, 5000])
def test_depths_exact_on_full_range(rng: np.random.Generator, impl: str, k: int) -> None:
    """Depths across the C kernel's 256-deep passes and the limbs' 2^11 exact-sum bound."""
    m, n = 6, 9
    a, b = rand(rng, (m, k)), rand(rng, (k, n), near_top=True)
    assert np.array_equal(_impl(impl)(a, b), exact(a, b))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("k", [1, 63, 512, 784, 5000])
def test_extreme_values(impl: str, k: int) -> None:
    """All zeros, and all 2^64 - 1 (every limb at its extreme), on the register-tiled shapes."""
    m, n = 8, 12
    zeros = np.zeros((m, k), np.uint64), np.zeros((k, n), np.uint64)
    assert not _impl(impl)(*zeros).any()
    top_a, top_b = np.full((m, k), MOD - 1, np.uint64), np.full((k, n), MOD - 1, np.uint64)
    assert np.array_equal(_impl(impl)(top_a, top_b), np.full((m, n), k % MOD, np.uint64))  # (-1)(-1)k
    half = np.full((k, n), 1 << 63, np.uint64)
    assert np.array_equal(_impl(impl)(top_a, half), exact(top_a[:1, :], half[:, :1]).repeat(m, 0).repeat(n, 1))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(128, 784, 128), (5, 300, 7), (130, 257, 259), (4, 4, 4), (7, 600, 13)])
def test_tiled_shapes_match_numpy(rng: np.random.Generator, impl: str, shape: tuple[int, int, int]) -> None:
    """Shapes on and off the 4x4 register tiles and the 256-deep passes."""
    m, k, n = shape
    a, b = rand(rng, (m, k), near_top=True), rand(rng, (k, n))
    assert np.array_equal(_impl(impl)(a, b), a @ b)


def test_limb_split_recombines(rng: np.random.Generator) -> None:
    """The balanced limbs are small enough for exact float sums and rebuild x modulo 2^64."""
    x = np.concatenate([rand(rng, (1000,)), np.array(EDGE, np.uint64)])
    l0, l1, l2 = ring.limbs.split(x)
    assert np.abs(l0).max() <= 1 << 21 and np.abs(l1).max() <= 1 << 21 and np.abs(l2).max() <= 1 << 19
    back = [int(a) + (int(b) << 22) + (int(c) << 44) for a, b, c in zip(l0, l1, l2)]
    assert [v % MOD for v in back] == [int(v) for v in x]


def test_fallback_uses_limbs_for_large_products(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without C, large products take the BLAS limb path, small ones numpy's loop; same answers."""
    calls: list[str] = []
    monkeypatch.setattr(ring, "HAVE_C", False)
    monkeypatch.setattr(ring, "_warned", True)
    real_limbs = ring.matmul_limbs
    monkeypatch.setattr(ring, "matmul_limbs", lambda a, b: calls.append("limbs") or real_limbs(a, b))
    monkeypatch.setattr(ring, "matmul_numpy", lambda a, b: calls.append("np") or np.matmul(a, b))
    big_a, big_b = rand(rng, (128, 784)), rand(rng, (784, 128), True)
    assert np.array_equal(ring.matmul(big_a, big_b), big_a @ big_b)
    small_a = rand(rng, (1000, 784))
    assert np.array_equal(ring.matmul(small_a, big_b[:, :1]), small_a @ big_b[:, :1])
    assert calls == ["limbs", "np"]


# ---- the two-product kernel (rep3's and dealer2's secret matmul) -------------------------------

@pytest.fixture(params=["avx2", "portable"])
def c_path(request: pytest.FixtureRequest):
    """Each C path in turn (the portable loops are forced off AVX2 CPUs' default)."""
    if not ring.HAVE_C:
        pytest.skip("C kernels not built (no compiler at install time)")
    was = ring.avx2_path()
    if request.param == "avx2" and not was:
        pytest.skip("this CPU has no AVX2")
    ring.avx2_path(request.param == "avx2")
    yield request.param
    ring.avx2_path(was)


def _terms(g: np.random.Generator, m: int, k: int, n: int, near_top: bool) -> list[np.ndarray]:
    """A1, B1, B1x, A2, B2, B2x of matching shapes."""
    return [rand(g, s, near_top) for s in ((m, k), (k, n), (k, n), (m, k), (k, n), (k, n))]


def _reference(a1, b1, b1x, a2, b2, b2x) -> np.ndarray:
    """numpy's wrapping matmul of the summed operands."""
    z = a1 @ (b1 if b1x is None else b1 + b1x)
    return z if a2 is None else z + a2 @ (b2 if b2x is None else b2 + b2x)


MATMUL2_SHAPES = [(128, 784, 128), (1, 1, 1), (5, 7, 9), (3, 300, 5), (130, 513, 131), (4, 4, 4),
                  (7, 1, 8), (64, 257, 10), (2, 0, 9), (9, 3, 1), (1, 784, 128)]


@pytest.mark.parametrize("shape", MATMUL2_SHAPES)
@pytest.mark.parametrize("near_top", [False, True])
def test_matmul2_c_paths_equal_numpy(rng: np.random.Generator, c_path: str, shape: tuple[int, int, int],
                                     near_top: bool) -> None:
    """Every combination of the optional parts, on and off the tiles, with wrap-around values."""
    a1, b1, b1x, a2, b2, b2x = _terms(rng, *shape, near_top)
    for combo in ((None, None, None, None), (b1x, None, None, None), (None, a2, b2, None),
                  (b1x, a2, b2, None), (None, a2, b2, b2x), (b1x, a2, b2, b2x)):
        x1, y2, z2, x2 = combo
        got = ring.matmul2_c(a1, b1, x1, y2, z2, x2)
        assert np.array_equal(got, _reference(a1, b1, x1, y2, z2, x2)), (shape, [c is not None for c in combo])
    assert np.array_equal(ring.matmul_c(a1, b1), a1 @ b1)


@given(m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 12), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_hypothesis_matmul2_equals_exact(m: int, k: int, n: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    e = np.array(EDGE, dtype=np.uint64)
    a1, a2 = g.choice(e, size=(m, k)), g.choice(e, size=(m, k))
    b1, b1x, b2 = (g.choice(e, size=(k, n)) for _ in range(3))
    want = (exact(a1, (b1 + b1x).reshape(k, n)).astype(object) + exact(a2, b2).astype(object)) % MOD
    assert np.array_equal(ring.matmul2(a1, b1, a2, b2, b1x=b1x), want.astype(np.uint64))


def test_matmul2_fallback_and_checks(rng: np.random.Generator) -> None:
    """The wrapper's numpy path (small or without C) agrees with the C kernel; bad shapes fail early."""
    a1, b1, b1x, a2, b2, b2x = _terms(rng, 40, 60, 30, True)
    want = _reference(a1, b1, b1x, a2, b2, b2x)
    assert np.array_equal(ring.matmul2_reference(a1, b1, b1x, a2, b2, b2x), want)
    assert np.array_equal(ring.matmul2(a1.view(np.int64), b1[:, :], a2, b2, b1x=b1x, b2x=b2x), want)
    assert np.array_equal(ring.matmul2(a1, np.asfortranarray(b1), a2, b2, b1x=b1x, b2x=b2x), want)
    with pytest.raises(ValueError, match="B2x"):
        ring.matmul2(a1, b1, a2, b2, b2x=b2x[:-1])
    with pytest.raises(ValueError, match="A2"):
        ring.matmul2(a1, b1, a2[:, :-1], b2)
    with pytest.raises(ValueError, match="without A2"):
        ring.matmul2(a1, b1, None, b2)
    with pytest.raises(ValueError, match="mismatch"):
        ring.matmul2(a1, b1[:-1])


def test_runtime_matmul2_without_kernels(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """veil.runtime.ring.matmul2's own numpy fallback (no kernels package) gives the same words."""
    from veil.runtime import ring as runtime_ring

    a1, b1, b1x, a2, b2, b2x = _terms(rng, 12, 50, 9, True)
    want = runtime_ring.matmul2(a1, b1, a2, b2, b1x=b1x, b2x=b2x)
    monkeypatch.setattr(runtime_ring, "_ring_matmul2", None)
    assert np.array_equal(runtime_ring.matmul2(a1, b1, a2, b2, b1x=b1x, b2x=b2x), want)
    assert np.array_equal(runtime_ring.matmul2(a1, b1), a1 @ b1)
    assert np.array_equal(want, _reference(a1, b1, b1x, a2, b2, b2x))


@pytest.mark.parametrize("shape", [(128, 784, 128), (5, 300, 7), (130, 257, 259)])
def test_portable_single_product_equals_avx2(rng: np.random.Generator, c_path: str,
                                             shape: tuple[int, int, int]) -> None:
    m, k, n = shape
    a, b = rand(rng, (m, k), near_top=True), rand(rng, (k, n))
    assert np.array_equal(ring.matmul_c(a, b), a @ b)


# ---- operands as views: transposed, sliced, reversed (read in place by the C kernel) -----------

def _as_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """The same matrix as a view of another memory layout (the values are x's)."""
    rows, cols = x.shape
    if layout == "c":
        return x
    if layout == "t":  # a transposed view, as the VM's `transpose` leaves it
        return np.ascontiguousarray(x.T).T
    if layout == "slice":  # every other row and column of a larger buffer, at an offset
        big = np.zeros((2 * rows + 1, 2 * cols + 3), dtype=np.uint64)
        big[1::2, 3::2] = x
        return big[1::2, 3::2]
    if layout == "reversed":  # negative strides
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    if layout == "t-slice":  # a slice of a transposed buffer
        big = np.zeros((cols + 2, 2 * rows + 1), dtype=np.uint64)
        big[1:cols + 1, 0:2 * rows:2] = x.T
        return big[1:cols + 1, 0:2 * rows:2].T
    raise AssertionError(layout)


LAYOUTS = ["c", "t", "slice", "reversed", "t-slice"]
VIEW_SHAPES = [(784, 128, 10), (128, 128, 10), (9, 13, 5), (5, 13, 9), (6, 6, 6), (1, 7, 5), (7, 1, 5),
               (7, 5, 1), (2, 0, 9), (0, 4, 5), (4, 5, 0), (130, 257, 131)]


@pytest.mark.parametrize("shape", VIEW_SHAPES)
@pytest.mark.parametrize("a_layout", ["c", "t", "slice", "reversed"])
@pytest.mark.parametrize("b_layout", ["c", "t", "t-slice"])
def test_matmul2_views_equal_numpy(rng: np.random.Generator, c_path: str, shape: tuple[int, int, int],
                                   a_layout: str, b_layout: str) -> None:
    """Every C path (the transposed problem for column-wise A, the copy, the in-place reads) on views,
    with wrap-around values, each combination of the optional parts, mixed layouts in one call."""
    terms = _terms(rng, *shape, True)
    a1, a2 = (_as_layout(x, a_layout) for x in (terms[0], terms[3]))
    b1, b1x, b2, b2x = (_as_layout(x, b_layout) for x in (terms[1], terms[2], terms[4], terms[5]))
    for combo in ((None, None, None, None), (b1x, None, None, None), (b1x, a2, b2, None),
                  (None, a2, b2, b2x), (b1x, a2, b2, b2x), (terms[2], terms[3], b2, terms[5])):
        x1, y2, z2, x2 = combo
        want = _reference(*(None if t is None else np.ascontiguousarray(t) for t in (a1, b1, x1, y2, z2, x2)))
        assert np.array_equal(ring.matmul2_c(a1, b1, x1, y2, z2, x2), want), (shape, a_layout, b_layout)
        args = dict(b1x=x1, b2x=x2)
        assert np.array_equal(ring.matmul2(a1, b1, y2, z2, **args), want)
        assert np.array_equal(ring.matmul2_reference(a1, b1, x1, y2, z2, x2), want)


def test_matmul2_views_without_c(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback (no C kernel: numpy or limbs per product) on the same views."""
    monkeypatch.setattr(ring, "HAVE_C", False)
    monkeypatch.setattr(ring, "_warned", True)
    for shape in ((784, 128, 10), (64, 70, 64), (5, 13, 9)):
        terms = _terms(rng, *shape, True)
        a1, a2 = (_as_layout(x, "t") for x in (terms[0], terms[3]))
        b1, b1x, b2 = (_as_layout(x, "t-slice") for x in (terms[1], terms[2], terms[4]))
        want = _reference(*(np.ascontiguousarray(t) for t in (a1, b1, b1x, a2, b2)), None)
        assert np.array_equal(ring.matmul2(a1, b1, a2, b2, b1x=b1x), want)


def test_matmul2_unaligned_and_odd_strides(rng: np.random.Generator) -> None:
    """Operands whose address or strides are not whole words are copied, not handed to C as is."""
    a, b = rand(rng, (40, 30), True), rand(rng, (30, 20), True)
    raw = np.zeros(a.size * 8 + 8, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.uint64, count=a.size, offset=4).reshape(a.shape)
    unaligned[...] = a
    assert not unaligned.flags.aligned and ring._operand(unaligned, None, "A").flags.aligned
    assert np.array_equal(ring.matmul2(unaligned, b), a @ b)
    odd = np.lib.stride_tricks.as_strided(unaligned, shape=(30, 30), strides=(36, 8), writeable=False)
    assert ring._operand(odd, None, "A").flags.c_contiguous
    assert np.array_equal(ring.matmul2(odd, b), np.ascontiguousarray(odd) @ b)
