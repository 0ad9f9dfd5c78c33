"""When a local op may write its result into an operand's arrays: the proof that nobody else sees them.

The VM drops a dying operand's register before the op (runtime/vm.py), so if the operand list is
then the only holder of the share, and the share the only holder of each component array, no
register, loop state, history, pending kernel, view or send in flight can observe the change.
The counts are CPython's reference counts, compared with what the same access pattern shows for an
object held by one container alone (measured once, here, not assumed).
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

_U64 = np.dtype(np.uint64)


def _refs(holder: Any, k: int) -> int:
    """The reference count of holder[k] as seen through this access pattern."""
    x = holder[k]
    return sys.getrefcount(x)


_SOLE = _refs([object()], 0)  # an object that one list alone holds


def sole(holder: Any, k: int) -> bool:
    """True when holder[k] is referenced by `holder` and nothing else."""
    return _refs(holder, k) == _SOLE


def writable(a: Any, shape: tuple[int, ...]) -> bool:
    """True for a ring array of `shape` that owns its memory and may be written (not a view of
    another array, not a read-only received buffer)."""
    return (type(a) is np.ndarray and a.dtype is _U64 and a.shape == shape and a.flags.owndata
            and a.flags.writeable and a.flags.aligned)


def same_shapes(arrays: Any, shape: tuple[int, ...]) -> bool:
    """True when every array has `shape` (an in-place ufunc may not broadcast its output)."""
    return all(np.shape(a) == shape for a in arrays)
