"""The fixed-point rule: encode/decode round trips, two's complement, and the input range."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from veil.runtime.fixedpoint import decode, encode, max_abs

F = 16


def fix_arrays(frac_bits: int):
    """Float arrays within the input range for `frac_bits`."""
    bound = max_abs("fix", frac_bits)
    elems = st.floats(-bound, bound, exclude_min=True, exclude_max=True, allow_nan=False)
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)
    return hnp.arrays(np.float64, shapes, elements=elems)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30).flatmap(lambda f: st.tuples(st.just(f), fix_arrays(f))))
def test_fix_round_trip_error_at_most_half_a_unit(case) -> None:
    frac_bits, values = case
    ring = encode(values, "fix", frac_bits)
    assert ring.dtype == np.uint64 and ring.shape == values.shape
    back = decode(ring, "fix", frac_bits)
    assert back.dtype == np.float64 and back.shape == values.shape
    assert np.all(np.abs(back - values) <= 2.0 ** -frac_bits / 2)


@given(
    hnp.arrays(
        np.int64,
        hnp.array_shapes(min_dims=0, max_dims=2),
        elements=st.integers(-(2**62) + 1, 2**62 - 1),
    )
)
def test_int_round_trip_is_exact(values) -> None:
    back = decode(encode(values, "int", F), "int", F)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, values)


@given(hnp.arrays(np.int64, st.integers(0, 20), elements=st.integers(-(2**40), 2**40)))
def test_fix_encoding_is_additive_in_the_ring(values) -> None:
    """Whole numbers encode exactly, so ring sums decode to clear sums (wrap-around included)."""
    ring = encode(values.astype(np.float64), "fix", F)
    total = np.sum(ring, dtype=np.uint64)
    assert decode(total, "fix", F) == float(values.sum())


def test_negative_values_are_twos_complement() -> None:
    assert encode(np.array(-1.0), "fix", F) == np.uint64(2**64 - 2**16)
    assert encode(np.array([-1]), "int", F)[0] == np.uint64(2**64 - 1)
    assert encode(np.array(-0.5), "fix", 1) == np.uint64(2**64 - 1)
    assert decode(np.array([2**64 - 2**15], dtype=np.uint64), "fix", F)[0] == -0.5
    assert decode(np.array([2**63], dtype=np.uint64), "int", F)[0] == -(2**63)


def test_encode_rounds_to_nearest() -> None:
    unit = 2.0**-F
    ring = encode(np.array([0.4 * unit, 0.6 * unit, -0.6 * unit, 3.25]), "fix", F)
    np.testing.assert_array_equal(ring.view(np.int64), [0, 1, -1, 3 * 2**16 + 2**14])


def test_bool_and_int_encodings() -> None:
    np.testing.assert_array_equal(encode(np.array([True, False]), "bool", F), [1, 0])
    np.testing.assert_array_equal(encode(np.array([0.0, 2.0]), "bool", F), [0, 1])
    bools = decode(np.array([0, 1], dtype=np.uint64), "bool", F)
    np.testing.assert_array_equal(bools, [False, True])
    np.testing.assert_array_equal(encode(np.array([3.0, -4.0]), "int", F).view(np.int64), [3, -4])
    assert decode(np.uint64(5), "int", F).dtype == np.int64


def test_max_abs_rule() -> None:
    assert max_abs("fix", 16) == 32768.0
    assert max_abs("fix", 0) == 2.0**31
    assert max_abs("fix", 30) == 2.0
    assert max_abs("int", 16) == 2.0**62
    assert max_abs("bool", 16) == 1.0
    for f in range(31):  # two in-range inputs multiply to below 2^62 at double scale
        assert max_abs("fix", f) ** 2 * 2.0 ** (2 * f) <= 2.0**62


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        encode(np.array([1.5]), "int", F)
    with pytest.raises(ValueError):
        encode(np.array([np.nan]), "fix", F)
    with pytest.raises(ValueError):
        encode(np.array([2.0**50]), "fix", F)
    with pytest.raises(ValueError):
        encode(np.array([1.0]), "float", F)
    with pytest.raises(ValueError):
        max_abs("fix", 31)
    with pytest.raises(ValueError):
        decode(np.array([1], dtype=np.uint64), "fix", -1)
