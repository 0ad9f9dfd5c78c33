"""What travels on a party-to-party stream: control frames and array messages, and their checks.

Every frame is an 8-byte little-endian length, then a msgpack header of that many bytes. A data
message's header is a list of ``[dtype str, shape, nbytes]`` and is followed by the arrays' raw
bytes; a control frame's header is a dict with a ``"t"`` key (hello, ok, error, abort, bye).
Bytes that are not such a frame raise `Malformed`, never a crash or an object array.

The connection set-up (veil.runtime.connect) and the mesh (veil.runtime.mesh) both read and
write frames, and both name a failed stream the same way: that is here too (`failure_reason`,
`close_writer`, `secs`).
"""
from __future__ import annotations

import asyncio
import math
import ssl
import struct
import sys
from typing import Any, Iterable

import msgpack
import numpy as np

_LEN = struct.Struct("<Q")
STREAM_LIMIT = 1 << 24          # StreamReader buffer before reading pauses (messages are tens of MB)
MAX_HEADER = 1 << 24            # a header bigger than this is garbage, not a message
MAX_CONTROL = 1 << 16           # control frames (hello, abort, ...) are small
DEFAULT_MAX_PAYLOAD = 1 << 30   # a message's arrays, until the program's own bound is known
LAYOUT_CACHE = 4096             # distinct message layouts remembered (each side)

Arrays = list[np.ndarray]


class Malformed(Exception):
    """Bytes on the wire that are not a veil frame."""


def control_frame(obj: dict[str, Any]) -> bytes:
    """One control frame: length prefix and msgpack dict."""
    packed = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(packed)) + packed


def pack_message(arrays: Iterable[Any]) -> tuple[bytes, list[memoryview], int]:
    """(length prefix + header, raw buffers, payload bytes) for one data message, copying nothing
    unless an array is not C-contiguous."""
    meta: list[list[Any]] = []
    bufs: list[memoryview] = []
    payload = 0
    for a in arrays:
        if type(a) is not np.ndarray:
            a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"cannot send an array of dtype {a.dtype}: only plain numeric arrays travel")
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        n = a.nbytes
        meta.append([a.dtype.str, list(a.shape), n])
        if n:
            bufs.append(memoryview(a).cast("B"))
            payload += n
    header = msgpack.packb(meta, use_bin_type=True)
    return _LEN.pack(len(header)) + header, bufs, payload


_HEADS: dict[tuple, tuple[bytes, int]] = {}  # (dtype, shape) of each array -> (length prefix + header, payload)


def message_head(arrays: Arrays) -> tuple[bytes, int] | None:
    """(length prefix + header, payload bytes) of a message of plain ndarrays, cached by their
    dtypes and shapes (a loop sends the same layout every trip); None for anything else."""
    key = tuple([(a.dtype, a.shape) if type(a) is np.ndarray else None for a in arrays])
    hit = _HEADS.get(key)
    if hit is None:
        if None in key:
            return None
        head, _, payload = pack_message(arrays)
        hit = (head, payload)
        if len(_HEADS) < LAYOUT_CACHE:
            _HEADS[key] = hit
    return hit


def small_frame(head: bytes, arrays: Arrays) -> bytes:
    """A whole data message as one bytes object: its header and a C-order copy of each array."""
    return head + b"".join([a.tobytes() for a in arrays])


def _entry(entry: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate one [dtype, shape, nbytes] header entry."""
    if not (isinstance(entry, list) and len(entry) == 3):
        raise Malformed("bad array header")
    dt, shape, nbytes = entry
    try:
        dtype = np.dtype(dt)
    except TypeError:
        raise Malformed(f"unknown dtype {dt!r}") from None
    if dtype.hasobject:
        raise Malformed("object arrays are not accepted")
    if dtype.itemsize == 0:
        raise Malformed(f"dtype {dtype} has no size")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise Malformed(f"bad shape {shape!r}")
    if not isinstance(nbytes, int) or nbytes != dtype.itemsize * math.prod(shape):
        raise Malformed(f"size {nbytes!r} does not match dtype {dtype} and shape {shape}")
    return dtype, tuple(shape), nbytes


Layout = tuple[list, list[tuple[np.dtype, tuple[int, ...], int]], int]
_LAYOUTS: dict[bytes, Layout] = {}  # a message header's bytes -> its checked layout (rounds repeat them)


def _layout(raw: bytes) -> Any:
    """The decoded header, and for a data message its checked entries and payload size (cached:
    a loop sends the same layout every trip; the check depends on the bytes alone)."""
    hit = _LAYOUTS.get(raw)
    if hit is not None:
        return hit
    try:
        header = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise Malformed(f"undecodable header ({exc})") from None
    if isinstance(header, dict):
        return header
    if not isinstance(header, list):
        raise Malformed("a header that is neither a message nor a control frame")
    entries = [_entry(entry) for entry in header]
    layout = (header, entries, sum(nbytes for _, _, nbytes in entries))
    if len(_LAYOUTS) < LAYOUT_CACHE:
        _LAYOUTS[raw] = layout
    return layout


async def read_frame(reader: asyncio.StreamReader, max_payload: int = DEFAULT_MAX_PAYLOAD,
                     max_header: int = MAX_HEADER) -> tuple[Any, Arrays | None, int, int]:
    """One frame: (header, arrays or None for control frames, payload bytes, wire bytes).

    The arrays are read-only views of one buffer of received bytes (no extra copy)."""
    (n,) = _LEN.unpack(await reader.readexactly(8))
    if n > max_header:
        raise Malformed(f"a header of {n} bytes")
    layout = _layout(await reader.readexactly(n))
    if isinstance(layout, dict):
        return layout, None, 0, 8 + n
    header, entries, total = layout
    if total > max_payload:  # refused before a byte of it is read
        raise Malformed(f"a message of {total:,} bytes, more than the {max_payload:,} this program can send")
    data = await reader.readexactly(total) if total else b""
    arrays: Arrays = []
    offset = 0
    for dtype, shape, nbytes in entries:
        arrays.append(np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset).reshape(shape))
        offset += nbytes
    return header, arrays, total, 8 + n + total


async def read_control(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame, which must be a control frame (during the handshake)."""
    header, arrays, _, _ = await read_frame(reader, max_payload=0, max_header=MAX_CONTROL)
    if arrays is not None or not isinstance(header.get("t"), str):
        raise Malformed("a data message during the handshake")
    return header


# ---------------------------------------------------------------------------------------------
# closing streams and naming their failures


def failure_reason(exc: BaseException) -> str:
    """A short human reason for a socket or TLS exception."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return "peer closed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream, ignoring a transport that is already gone."""
    try:
        writer.close()
    except (OSError, RuntimeError):
        pass


def secs(t: float) -> str:
    """A timeout for messages: 60.0 -> '60', 1.5 -> '1.5'."""
    return f"{t:g}"


def log(line: str) -> None:
    """One line of a party's log (stderr): strangers dropped, peers awaited, heartbeats missed."""
    print(f"veil: {line}", file=sys.stderr, flush=True)
