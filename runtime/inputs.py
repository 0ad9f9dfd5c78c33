"""Reading a party's input files and writing its outputs (LANGUAGE.md §5).

Inputs are checked before any communication: shape, dtype, finiteness and range (the range rule is
`fixedpoint.max_abs`). Every problem is an InputDataError naming the party, the input, the file and
exactly what is wrong, with the row and column for CSV files.

Formats, chosen by the file name (a trailing `.gz` is allowed on any of them):
    .csv                 comma-separated numbers; no header, or one header row of names
    .npy                 a plain numeric numpy array
    .idx / *-ubyte       MNIST-style IDX (big-endian magic 0x0000TTNN, NN dims, then the data)

Shapes: the file's shape must equal the declared one, where a row may also be flattened or
unflattened — (N,) and (N, 1) match, (N, 28, 28) and (N, 784) match — and a one-row CSV
matches a declared vector (K,). A scalar shape () takes a file holding a single number.
With head=True the first shape[0] rows of a longer file are taken.

Outputs are written atomically: temp files in the destination folder, then renames.
"""
from __future__ import annotations

import gzip
import itertools
import math
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import IO, Callable

import numpy as np

from veil.runtime.diagnostics import InputDataError, RuntimeFailure
from veil.runtime import fixedpoint

FORMATS = ".csv, .npy, or MNIST IDX (.idx, *-ubyte), each optionally gzipped (.gz)"
_IDX_NAME = re.compile(r"(\.idx\d*(-ubyte)?|[-.]ubyte)$", re.IGNORECASE)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"

Locate = Callable[[tuple[int, ...]], str]


class _Ctx:
    """Who and what is being read, so every error can say so."""

    def __init__(self, path: str, party: str, name: str):
        self.path = path
        self.party = party
        self.name = name

    def fail(self, problem: str, hint: str | None = None) -> InputDataError:
        """An error whose message names the party, the input, the file and the problem."""
        who = f"party {self.party}, " if self.party else ""
        what = f"input {self.name!r}" if self.name else "input"
        return InputDataError(f"{who}{what}, file {self.path}: {problem}", hint=hint)


def load_input(
    path: str,
    shape: tuple[int, ...],
    dtype: str,
    *,
    head: bool = False,
    party: str = "",
    name: str = "",
    frac_bits: int = 16,
) -> np.ndarray:
    """Read, check and return one input: float64 (fix), int64 (int) or bool, of exactly `shape`."""
    fixedpoint._check_dtype(dtype)
    ctx = _Ctx(str(path), party, name)
    shape = tuple(int(d) for d in shape)
    if head and not shape:
        raise ctx.fail("head=True needs a declared shape with at least one dimension")
    p = Path(path)
    if not p.exists():
        raise ctx.fail("file not found", hint=_missing_hint(party, name))
    if p.is_dir():
        raise ctx.fail("is a directory, not a data file")
    rows = shape[0] if head else None
    kind = _format_of(p)
    try:
        if kind == "csv":
            arr, locate = _read_csv(p, ctx, rows, dtype)
        elif kind == "npy":
            arr, locate = _read_npy(p, ctx, rows), _index_locator
        elif kind == "idx":
            arr, locate = _read_idx(p, ctx, rows), _index_locator
        else:
            raise ctx.fail(f"unknown file format {p.suffix or '(no extension)'!r}; use {FORMATS}")
    except OSError as exc:
        raise ctx.fail(f"cannot read the file: {exc.strerror or exc}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ctx.fail(f"the gzip data is damaged or cut short ({exc})") from None
    fitted = _fit_shape(arr, shape, head, ctx, kind)
    _check_values(arr, dtype, frac_bits, ctx, locate)  # in the file's layout, for exact positions
    return _convert(fitted, dtype)


def _missing_hint(party: str, name: str) -> str:
    """How to supply the file, in the command line's own words."""
    if party and name:
        return (
            f"give the file with --input {party}.{name}=PATH "
            f"(or --input {name}=PATH in `veil run`)"
        )
    return "check the path"


def _format_of(p: Path) -> str:
    """'csv', 'npy', 'idx' or '' from the file name (a trailing .gz is looked through)."""
    fname = p.name.lower()
    if fname.endswith(".gz"):
        fname = fname[:-3]
    if fname.endswith(".csv"):
        return "csv"
    if fname.endswith(".npy"):
        return "npy"
    if _IDX_NAME.search(fname):
        return "idx"
    return ""


def _open_binary(p: Path) -> IO[bytes]:
    """The file's bytes, decompressed on the fly when it is gzip (sniffed by magic, not name)."""
    with open(p, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(p, "rb") if magic == _GZIP_MAGIC else open(p, "rb")


# ---------------------------------------------------------------------------------------------- CSV


def _is_number(cell: str) -> bool:
    """Whether a CSV cell reads as a float (so a header row can be told from a data row)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(p: Path, ctx: _Ctx, rows: int | None, dtype: str) -> tuple[np.ndarray, Locate]:
    """Parse comma-separated numbers quickly with numpy, finding the exact cell when one is bad."""
    with _open_binary(p) as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.fail(f"not a text file (byte {exc.start} is not UTF-8)") from None
    lines = [(no, ln) for no, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise ctx.fail("the file is empty")
    _check_separator(lines[:3], ctx)
    cells = [ln.split(",") for _, ln in lines]
    if not any(_is_number(c) for c in cells[0]):
        lines, cells = lines[1:], cells[1:]  # one header row of names
        if not lines:
            raise ctx.fail("the file has a header row but no data")
    if rows is not None:
        if len(lines) < rows:
            raise ctx.fail(f"expected at least {rows} rows (head=True), found {len(lines)}")
        lines, cells = lines[:rows], cells[:rows]
    line_no = [no for no, _ in lines]
    _check_ragged(cells, line_no, ctx)
    flat = list(itertools.chain.from_iterable(cells))
    arr = _parse_cells(flat, dtype)
    if arr is None:
        _raise_bad_cell(cells, line_no, ctx)
    arr = arr.reshape(len(cells), len(cells[0]))

    def locate(idx: tuple[int, ...]) -> str:
        r = idx[0] if idx else 0
        c = idx[1] if len(idx) > 1 else 0
        return f"row {line_no[r]}, column {c + 1}"

    return arr, locate


def _check_separator(first: list[tuple[int, str]], ctx: _Ctx) -> None:
    """A file whose rows are separated by something other than commas is named as such (read as
    CSV, each row would be one bad cell, or a header row would be dropped silently)."""
    if any("," in ln for _, ln in first):
        return
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if all(sep in ln for _, ln in first):
            raise ctx.fail(f"values are separated by {name}, not commas (row {first[0][0]})",
                           f"veil reads comma-separated files: convert it, e.g. tr '{sep}' ','" if sep != "\t"
                           else "veil reads comma-separated files: convert it, e.g. tr '\\t' ','")


def _check_ragged(cells: list[list[str]], line_no: list[int], ctx: _Ctx) -> None:
    """Every row must have as many columns as the first one."""
    width = len(cells[0])
    for i, row in enumerate(cells):
        if len(row) != width:
            raise ctx.fail(
                f"ragged rows: row {line_no[i]} has {len(row)} columns but row {line_no[0]} "
                f"has {width}"
            )


def _parse_cells(flat: list[str], dtype: str) -> np.ndarray | None:
    """All cells as numbers (exact int64 for int inputs where possible); None if one is bad."""
    if dtype == "int":
        try:
            return np.array(flat, dtype=np.int64)
        except (ValueError, OverflowError):
            pass
    try:
        floats = np.array(flat, dtype=np.float64)
    except ValueError:
        return None
    return _exact_ints(floats, flat) if dtype == "int" else floats


def _exact_ints(floats: np.ndarray, flat: list[str]) -> np.ndarray:
    """Whole numbers as exact int64 (re-reading cells beyond float precision); else the floats."""
    if not np.all(np.isfinite(floats)) or np.any(floats != np.floor(floats)):
        return floats  # the value checks will say which cell is wrong
    big = np.flatnonzero(np.abs(floats) >= 2.0**53)
    exact = {}
    for i in big:
        cell = flat[i].strip()
        try:
            value = int(cell)
        except ValueError:
            value = int(float(cell))
        if not -(2**63) <= value < 2**63:
            return floats  # out of range: reported by the value checks
        exact[i] = value
    ints = floats.astype(np.int64)
    for i, value in exact.items():
        ints[i] = value
    return ints


def _raise_bad_cell(cells: list[list[str]], line_no: list[int], ctx: _Ctx) -> None:
    """Find the first cell that is not a number and say where it is."""
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if not _is_number(cell):
                shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                raise ctx.fail(f"row {line_no[i]}, column {j + 1}: {shown} is not a number")
    raise ctx.fail("the file holds something that is not a number")


# ---------------------------------------------------------------------------------------- npy, IDX


def _index_locator(idx: tuple[int, ...]) -> str:
    """A numpy-style position for binary formats."""
    return f"at index {tuple(int(i) for i in idx)}"


def _read_npy(p: Path, ctx: _Ctx, rows: int | None) -> np.ndarray:
    """A plain numeric .npy array (never pickles); only the head rows are read when asked."""
    with _open_binary(p) as fh:
        gz = isinstance(fh, gzip.GzipFile)
        if fh.read(6) != b"\x93NUMPY":
            raise ctx.fail("not a .npy file (it does not start with the NumPy magic bytes)")
    try:
        if gz:
            with gzip.open(p, "rb") as fh:
                arr = np.load(fh, allow_pickle=False)
        else:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ctx.fail(f"not a plain numeric .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        kind = getattr(arr, "dtype", type(arr))
        raise ctx.fail(f"the .npy array holds {kind} values, not numbers")
    if rows is not None:
        arr = _take_head(arr, rows, ctx)
    return np.array(arr)


def _take_head(arr: np.ndarray, rows: int, ctx: _Ctx) -> np.ndarray:
    """The first `rows` rows of a longer array."""
    if arr.ndim == 0 or arr.shape[0] < rows:
        found = arr.shape[0] if arr.ndim else "a scalar"
        raise ctx.fail(f"expected at least {rows} rows (head=True), found {found}")
    return arr[:rows]


def _read_idx(p: Path, ctx: _Ctx, rows: int | None) -> np.ndarray:
    """An MNIST-style IDX file; with head=True only the needed bytes are decompressed."""
    with _open_binary(p) as fh:
        header = fh.read(4)
        if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] not in _IDX_TYPES:
            raise ctx.fail(f"not an IDX file (magic bytes {header.hex() or 'missing'})")
        ndim = header[3]
        dims_raw = fh.read(4 * ndim)
        if len(dims_raw) < 4 * ndim:
            raise ctx.fail("the IDX header is cut short")
        dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
        dt = np.dtype(_IDX_TYPES[header[2]])
        if rows is not None:
            if ndim == 0 or dims[0] < rows:
                found = dims[0] if ndim else 0
                raise ctx.fail(f"expected at least {rows} rows (head=True), found {found}")
            dims = (rows,) + dims[1:]
        want = math.prod(dims) * dt.itemsize
        data = fh.read(want)
        if len(data) < want:
            raise ctx.fail(f"the IDX data is cut short: {len(data)} of {want} bytes")
        if rows is None and fh.read(1):
            raise ctx.fail("the IDX file has bytes past the data its header declares")
    return np.frombuffer(data, dtype=dt).reshape(dims).astype(dt.newbyteorder("="))


# ------------------------------------------------------------------------------- shape and values


def _fit_shape(
    arr: np.ndarray, shape: tuple[int, ...], head: bool, ctx: _Ctx, kind: str
) -> np.ndarray:
    """The array in the declared shape, or an error saying expected vs found."""
    if arr.shape == shape:
        return arr
    if not shape and arr.size == 1:
        return arr.reshape(())
    if shape and arr.ndim >= 1 and arr.shape[0] == shape[0]:
        if math.prod(arr.shape[1:]) == math.prod(shape[1:]):
            return arr.reshape(shape)
    if kind == "csv" and len(shape) == 1 and arr.shape == (1, shape[0]):
        return arr.reshape(shape)
    if kind == "csv" and arr.ndim == 2:
        found = f"{arr.shape[0]} rows x {arr.shape[1]} columns"
    else:
        found = f"shape {arr.shape}"
    hint = None
    if shape and arr.ndim and arr.shape[0] > shape[0] and not head:
        hint = "use input(..., head=True) to take the first rows of a longer file"
    raise ctx.fail(f"wrong shape: expected {shape}, found {found}", hint=hint)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True in a mask."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _check_values(arr: np.ndarray, dtype: str, frac_bits: int, ctx: _Ctx, locate: Locate) -> None:
    """Finite, in range, and whole or 0/1 where the dtype asks for it."""
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            at = _first(bad)
            raise ctx.fail(f"{locate(at)}: value {arr[at]} is not a finite number")
    if dtype == "bool":
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            at = _first(bad)
            raise ctx.fail(f"{locate(at)}: value {arr[at]} is not 0 or 1 (the input is bool)")
        return
    if dtype == "int" and arr.dtype.kind == "f":
        bad = arr != np.floor(arr)
        if bad.any():
            at = _first(bad)
            problem = f"value {arr[at]} is not a whole number (the input is int)"
            raise ctx.fail(f"{locate(at)}: {problem}")
    limit = fixedpoint.max_abs(dtype, frac_bits)
    bad = _out_of_range(arr, limit)
    if bad.any():
        at = _first(bad)
        rule = f"|v| < 2^{int(math.log2(limit))} = {limit:g}"
        if dtype == "fix":
            rule += f" for fix with {frac_bits} fractional bits"
        raise ctx.fail(f"{locate(at)}: value {arr[at]} is out of range ({rule})")


def _out_of_range(arr: np.ndarray, limit: float) -> np.ndarray:
    """|v| >= limit, compared exactly for integer data (floats round 2^62 - 1 up to 2^62)."""
    if arr.dtype.kind in "iu" and limit == int(limit) and limit <= 2.0**62:
        bound = int(limit)
        if arr.dtype.kind == "u":
            return arr >= np.uint64(bound)
        return (arr >= np.int64(bound)) | (arr <= np.int64(-bound))
    return np.abs(arr.astype(np.float64)) >= limit


def _convert(arr: np.ndarray, dtype: str) -> np.ndarray:
    """The clear representation: float64 for fix, int64 for int, bool for bool."""
    if dtype == "bool":
        return arr != 0
    if dtype == "int":
        return arr.astype(np.int64)
    return arr.astype(np.float64)


# ------------------------------------------------------------------------------------------ outputs


def _write_temp(path: Path, array: np.ndarray) -> Path:
    """Write the array as .npy to a hidden temp file beside `path`; return the temp's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(Path(tmp))
        raise
    return Path(tmp)


def _unlink_quietly(path: Path) -> None:
    """Remove a file if it is there; cleanup must never mask the real error."""
    try:
        path.unlink()
    except OSError:
        pass


def write_output_atomic(path: str, array: np.ndarray) -> None:
    """Write one .npy so readers see the old file or the whole new one, never a torn one."""
    commit_outputs({path: array})


def commit_outputs(files: dict[str, np.ndarray]) -> None:
    """Write every output, or none: all temp files first, then all renames; clean up on failure."""
    temps: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for dest, array in files.items():
            dest_p = Path(dest)
            temps.append((_write_temp(dest_p, array), dest_p))
        for tmp, dest_p in temps:
            os.replace(tmp, dest_p)
            placed.append(dest_p)
    except BaseException as exc:
        for tmp, _ in temps:
            _unlink_quietly(tmp)
        for dest_p in placed:
            _unlink_quietly(dest_p)
        if isinstance(exc, OSError):
            where = exc.filename or "an output file"
            raise RuntimeFailure(
                f"cannot write output {where}: {exc.strerror or exc}; no output files were written"
            ) from exc
        raise
