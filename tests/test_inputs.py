"""Reading inputs (every format, every refusal) and writing outputs atomically."""
from __future__ import annotations

import gzip
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference import shared_data_dir
from veil.runtime.diagnostics import InputDataError, RuntimeFailure
from veil.runtime import inputs
from veil.runtime.inputs import commit_outputs, load_input, write_output_atomic


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def refused(path, shape, dtype="fix", **kw) -> str:
    """The message of the InputDataError loading must raise; checks it names who and where."""
    with pytest.raises(InputDataError) as info:
        load_input(str(path), shape, dtype, party="alice", name="x", **kw)
    msg = info.value.message
    assert "alice" in msg and "'x'" in msg and str(path) in msg, msg
    assert info.value.exit_status == 1
    return msg


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes for `arr` (big-endian header and data)."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dt).tobytes()


# ---------------------------------------------------------------------------------------- CSV


def test_csv_plain(tmp_path):
    p = write(tmp_path / "a.csv", "1,2.5,-3\n4,5e-1,6\n")
    got = load_input(p, (2, 3), "fix")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[1, 2.5, -3], [4, 0.5, 6]])


def test_csv_header_row_is_skipped(tmp_path):
    p = write(tmp_path / "a.csv", "age,income\n1,2\n3,4\n")
    np.testing.assert_array_equal(load_input(p, (2, 2), "fix"), [[1, 2], [3, 4]])


def test_csv_crlf_bom_blank_lines_and_spaces(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"\xef\xbb\xbf 1 , 2\r\n\r\n3,4\r\n\r\n")
    np.testing.assert_array_equal(load_input(str(p), (2, 2), "fix"), [[1, 2], [3, 4]])


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_csv_one_column_fits_vector_or_column(tmp_path, shape):
    p = write(tmp_path / "a.csv", "1\n0\n1\n")
    got = load_input(p, shape, "int")
    assert got.shape == shape and got.dtype == np.int64
    assert got.reshape(-1).tolist() == [1, 0, 1]


def test_csv_one_row_fits_vector(tmp_path):
    p = write(tmp_path / "a.csv", "1,2,3\n")
    assert load_input(p, (3,), "fix").tolist() == [1.0, 2.0, 3.0]


def test_csv_scalar(tmp_path):
    p = write(tmp_path / "a.csv", "0.25\n")
    got = load_input(p, (), "fix")
    assert got.shape == () and got == 0.25


def test_csv_head_takes_first_rows(tmp_path):
    p = write(tmp_path / "a.csv", "1,2\n3,4\n5,6\nnot,numbers,at all\n")
    np.testing.assert_array_equal(load_input(p, (2, 2), "fix", head=True), [[1, 2], [3, 4]])


def test_csv_gzipped(tmp_path):
    p = tmp_path / "a.csv.gz"
    p.write_bytes(gzip.compress(b"1,2\n3,4\n"))
    np.testing.assert_array_equal(load_input(str(p), (2, 2), "fix"), [[1, 2], [3, 4]])


def test_csv_int_and_bool(tmp_path):
    p = write(tmp_path / "a.csv", "1,-2\n3.0,4611686018427387903\n")
    got = load_input(p, (2, 2), "int")
    assert got.dtype == np.int64 and got[1, 1] == 2**62 - 1 and got[1, 0] == 3
    b = write(tmp_path / "b.csv", "1,0\n0.0,1\n")
    got = load_input(b, (2, 2), "bool")
    assert got.dtype == np.bool_ and got.tolist() == [[True, False], [False, True]]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.floats(-32767, 32767, allow_nan=False)))
def test_csv_round_trip(tmp_path, arr):
    p = tmp_path / "rt.csv"
    p.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in arr) + "\n")
    np.testing.assert_array_equal(load_input(str(p), arr.shape, "fix"), arr)


# ----------------------------------------------------------------------------------- npy, IDX


def test_npy_formats(tmp_path):
    arr = np.arange(12, dtype=np.int32).reshape(4, 3)
    np.save(tmp_path / "a.npy", arr)
    got = load_input(str(tmp_path / "a.npy"), (4, 3), "fix")
    assert got.dtype == np.float64 and np.array_equal(got, arr)
    got = load_input(str(tmp_path / "a.npy"), (2, 3), "int", head=True)
    assert got.dtype == np.int64 and np.array_equal(got, arr[:2])
    assert load_input(str(tmp_path / "a.npy"), (4, 1, 3), "int").shape == (4, 1, 3)
    np.save(tmp_path / "b.npy", np.array([True, False]))
    assert load_input(str(tmp_path / "b.npy"), (2,), "bool").tolist() == [True, False]
    np.save(tmp_path / "s.npy", np.float64(2.5))
    assert load_input(str(tmp_path / "s.npy"), (), "fix") == 2.5


def test_npy_gzipped(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(2))
    (tmp_path / "a.npy.gz").write_bytes(gzip.compress((tmp_path / "a.npy").read_bytes()))
    np.testing.assert_array_equal(load_input(str(tmp_path / "a.npy.gz"), (2, 2), "fix"), np.eye(2))


@pytest.mark.parametrize(
    "fname", ["t-labels-idx1-ubyte", "t.idx", "t-images.idx3-ubyte.gz", "t-ubyte.gz"]
)
def test_idx_names_and_gzip(tmp_path, fname):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(arr)
    (tmp_path / fname).write_bytes(gzip.compress(data) if fname.endswith(".gz") else data)
    got = load_input(str(tmp_path / fname), (2, 3, 4), "fix")
    np.testing.assert_array_equal(got, arr)
    path = str(tmp_path / fname)
    np.testing.assert_array_equal(load_input(path, (2, 12), "int"), arr.reshape(2, 12))
    np.testing.assert_array_equal(load_input(path, (1, 3, 4), "fix", head=True), arr[:1])


@pytest.mark.parametrize("code", [0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_idx_other_element_types(tmp_path, code):
    arr = np.array([[-3, 1], [2, 0]])
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr, code))
    np.testing.assert_array_equal(load_input(str(tmp_path / "a.idx"), (2, 2), "fix"), arr)


# ---------------------------------------------------------------------------------- refusals


def test_missing_file(tmp_path):
    msg = refused(tmp_path / "nope.csv", (2,))
    assert "not found" in msg


def test_directory(tmp_path):
    assert "directory" in refused(tmp_path, (2,))


def test_unknown_format(tmp_path):
    p = write(tmp_path / "a.xlsx", "1,2\n")
    assert "unknown file format '.xlsx'" in refused(p, (2,))


def test_non_numeric_cell_gives_row_and_column(tmp_path):
    p = write(tmp_path / "a.csv", "1,2,3\n4,abc,6\n")
    msg = refused(p, (2, 3))
    assert "row 2, column 2" in msg and "'abc' is not a number" in msg


def test_empty_cell_counts_header_line(tmp_path):
    p = write(tmp_path / "a.csv", "a,b\n1,2\n3,\n")
    msg = refused(p, (2, 2))
    assert "row 3, column 2" in msg and "empty cell" in msg


def test_ragged_rows(tmp_path):
    p = write(tmp_path / "a.csv", "1,2\n3,4\n5,6,7\n")
    msg = refused(p, (3, 2))
    assert "ragged" in msg and "row 3 has 3 columns" in msg and "row 1 has 2" in msg


def test_wrong_shape_says_expected_and_found(tmp_path):
    p = write(tmp_path / "a.csv", "1,2\n3,4\n5,6\n")
    msg = refused(p, (3, 3))
    assert "expected (3, 3)" in msg and "found 3 rows x 2 columns" in msg
    with pytest.raises(InputDataError) as info:
        load_input(p, (2, 2), "fix", party="alice", name="x")
    assert "head=True" in (info.value.hint or "")
    np.save(tmp_path / "a.npy", np.zeros((4, 5)))
    assert "expected (4, 4), found shape (4, 5)" in refused(tmp_path / "a.npy", (4, 4))


def test_head_with_too_few_rows(tmp_path):
    p = write(tmp_path / "a.csv", "1,2\n3,4\n")
    assert "at least 5 rows" in refused(p, (5, 2), head=True)
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    assert "at least 5 rows" in refused(tmp_path / "a.npy", (5, 2), head=True)


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf"])
def test_not_finite(tmp_path, cell):
    p = write(tmp_path / "a.csv", f"1,2\n3,{cell}\n")
    msg = refused(p, (2, 2))
    assert "row 2, column 2" in msg and "not a finite number" in msg


def test_out_of_range_fix(tmp_path):
    p = write(tmp_path / "a.csv", "1,2\n-40000,4\n")
    msg = refused(p, (2, 2))
    assert "row 2, column 1" in msg and "-40000" in msg and "out of range" in msg and "32768" in msg
    q = write(tmp_path / "b.csv", "1,2\n3000,4\n")
    assert load_input(q, (2, 2), "fix")[1, 0] == 3000  # fine at F=16 ...
    msg = refused(q, (2, 2), frac_bits=20)  # ... too large at F=20 (bound 2048)
    assert "3000" in msg and "2048" in msg


def test_out_of_range_npy_position(tmp_path):
    arr = np.zeros((3, 4))
    arr[2, 1] = 1e6
    np.save(tmp_path / "a.npy", arr)
    msg = refused(tmp_path / "a.npy", (3, 4))
    assert "index (2, 1)" in msg and "1000000" in msg


def test_int_must_be_whole_and_in_range(tmp_path):
    p = write(tmp_path / "a.csv", "1,2.5\n")
    msg = refused(p, (1, 2), "int")
    assert "row 1, column 2" in msg and "2.5" in msg and "whole number" in msg
    q = write(tmp_path / "b.csv", "1,4611686018427387904\n")
    assert "out of range" in refused(q, (1, 2), "int")


def test_bool_must_be_zero_or_one(tmp_path):
    p = write(tmp_path / "a.csv", "1\n0\n2\n")
    msg = refused(p, (3,), "bool")
    assert "row 3, column 1" in msg and "not 0 or 1" in msg


def test_empty_and_header_only_and_binary_csv(tmp_path):
    assert "empty" in refused(write(tmp_path / "a.csv", "\n\n"), (1,))
    assert "header row but no data" in refused(write(tmp_path / "b.csv", "a,b\n"), (1, 2))
    (tmp_path / "c.csv").write_bytes(b"\xff\xfe\x00\x01")
    assert "not a text file" in refused(tmp_path / "c.csv", (1,))


def test_bad_npy_files(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"hello")
    assert "not a .npy file" in refused(tmp_path / "a.npy", (1,))
    np.save(tmp_path / "b.npy", np.array(["a", "b"]))
    assert "not numbers" in refused(tmp_path / "b.npy", (2,))
    np.save(tmp_path / "c.npy", np.array([1, "x"], dtype=object))
    assert "not a plain numeric" in refused(tmp_path / "c.npy", (2,))


def test_bad_idx_files(tmp_path):
    (tmp_path / "a.idx").write_bytes(b"\x12\x34\x56\x78")
    assert "not an IDX file" in refused(tmp_path / "a.idx", (1,))
    good = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    (tmp_path / "b.idx").write_bytes(good[:-1])
    assert "cut short" in refused(tmp_path / "b.idx", (2, 3))
    (tmp_path / "c.idx").write_bytes(good + b"\x00")
    assert "past the data" in refused(tmp_path / "c.idx", (2, 3))
    (tmp_path / "d-ubyte.gz").write_bytes(gzip.compress(good)[:-6])
    assert "gzip" in refused(tmp_path / "d-ubyte.gz", (2, 3))


def test_head_needs_a_dimension(tmp_path):
    assert "head=True" in refused(write(tmp_path / "a.csv", "1\n"), (), head=True)


def test_message_without_party_or_name_still_names_the_file(tmp_path):
    with pytest.raises(InputDataError) as info:
        load_input(str(tmp_path / "gone.npy"), (1,), "fix")
    assert str(tmp_path / "gone.npy") in info.value.message


# --------------------------------------------------------------------------- the shared data


def test_seed_fraud_files_load():
    fraud = shared_data_dir() / "fraud"
    bob = str(fraud / "bobTrainFileWithLabel.csv")
    data = load_input(bob, (7000, 17), "fix", party="bob", name="data")
    xa = load_input(str(fraud / "aliceTrainFile.csv"), (7000, 16), "fix", party="alice", name="x")
    assert xa.shape == (7000, 16) and data.shape == (7000, 17)
    assert data[0, :3].tolist() == [1.0, 0.8690000000000001, -0.635]  # the file's own reprs
    assert abs(data[:, 0].mean() - 3716 / 7000) < 1e-12
    np.testing.assert_array_equal(data[:, 13:17], xa[:, 0:4])  # the documented overlap


def test_mnist_idx_files_load():
    mnist = shared_data_dir() / "mnist"
    labels = load_input(str(mnist / "t10k-labels-idx1-ubyte.gz"), (10000,), "int")
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    images = load_input(str(mnist / "t10k-images-idx3-ubyte.gz"), (10000, 28, 28), "fix")
    assert images.shape == (10000, 28, 28) and images.min() == 0 and images.max() == 255
    flat = load_input(str(mnist / "t10k-images-idx3-ubyte.gz"), (10000, 784), "fix")
    np.testing.assert_array_equal(flat, images.reshape(10000, 784))
    head = load_input(str(mnist / "train-images-idx3-ubyte.gz"), (100, 784), "fix", head=True)
    assert head.shape == (100, 784)
    train_labels = load_input(str(mnist / "train-labels-idx1-ubyte.gz"), (100, 1), "int", head=True)
    assert train_labels[:5, 0].tolist() == [5, 0, 4, 1, 9]


def test_mnist_wrong_shape_is_refused():
    mnist = shared_data_dir() / "mnist"
    msg = refused(mnist / "t10k-labels-idx1-ubyte.gz", (60000,))
    assert "expected (60000,), found shape (10000,)" in msg


# ---------------------------------------------------------------------------------- outputs


def test_write_output_atomic(tmp_path):
    dest = tmp_path / "out" / "w.npy"
    write_output_atomic(str(dest), np.arange(3, dtype=np.int64))
    got = np.load(dest)
    assert got.dtype == np.int64 and got.tolist() == [0, 1, 2]
    write_output_atomic(str(dest), np.array([True]))
    assert np.load(dest).dtype == np.bool_
    assert sorted(os.listdir(dest.parent)) == ["w.npy"]


def test_commit_outputs_writes_all(tmp_path):
    commit_outputs({str(tmp_path / "a.npy"): np.zeros(2), str(tmp_path / "b.npy"): np.ones((2, 2))})
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "b.npy"]
    assert np.load(tmp_path / "b.npy").shape == (2, 2)


def test_failed_write_leaves_nothing(tmp_path):
    bad = np.array([object()], dtype=object)  # np.save refuses it without pickling
    with pytest.raises(ValueError):
        commit_outputs({str(tmp_path / "a.npy"): np.zeros(2), str(tmp_path / "b.npy"): bad})
    assert os.listdir(tmp_path) == []


def test_failed_rename_leaves_nothing(tmp_path):
    (tmp_path / "c.npy").mkdir()  # a directory where an output should go: the rename fails
    files = {str(tmp_path / "a.npy"): np.zeros(2), str(tmp_path / "c.npy"): np.ones(2)}
    with pytest.raises(RuntimeFailure) as info:
        commit_outputs(files)
    assert "c.npy" in info.value.message
    assert os.listdir(tmp_path) == ["c.npy"] and os.listdir(tmp_path / "c.npy") == []


def test_failed_rename_midway_is_rolled_back(tmp_path, monkeypatch):
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(inputs.os, "replace", flaky)
    files = {str(tmp_path / n): np.zeros(1) for n in ("a.npy", "b.npy", "c.npy")}
    with pytest.raises(RuntimeFailure) as info:
        commit_outputs(files)
    assert "No space left" in info.value.message
    assert os.listdir(tmp_path) == []


def test_int_range_is_checked_exactly(tmp_path):
    np.save(tmp_path / "ok.npy", np.array([2**62 - 1, -(2**62) + 1], dtype=np.int64))
    assert load_input(str(tmp_path / "ok.npy"), (2,), "int").tolist() == [2**62 - 1, -(2**62) + 1]
    np.save(tmp_path / "big.npy", np.array([0, -(2**62)], dtype=np.int64))
    assert "index (1,)" in refused(tmp_path / "big.npy", (2,), "int")
    np.save(tmp_path / "u.npy", np.array([2**63], dtype=np.uint64))
    assert "out of range" in refused(tmp_path / "u.npy", (1,), "int")


@pytest.mark.parametrize("sep, name", [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_with_another_separator_says_so(tmp_path, sep, name):
    p = tmp_path / "x.csv"
    p.write_text("a{0}b{0}c\n1{0}2{0}3\n4{0}5{0}6\n".format(sep))
    with pytest.raises(InputDataError, match=f"separated by {name}, not commas"):
        load_input(str(p), (2, 3), "fix", party="alice", name="x")
