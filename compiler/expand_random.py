"""The expansion of a secret random tensor (`random`: uniform in [0, 1) at `bits` fractional
bits, known to nobody), once for every protocol:

    each compute party p draws d_p uniform in [0, 2^bits) privately (`draw`) and shares it;
    s = sum of the shares, in [0, k 2^bits) for k compute parties;
    u = s - 2^bits * #{j in 1..k-1 : s >= j 2^bits}   (= s mod 2^bits; one batch of k-1 comparisons)

u is uniform as soon as one contribution is (adding an independent value mod 2^bits keeps it
uniform), so no party, alone, learns anything about it. Which parties compute comes from the
protocol's declaration (Capabilities), never from its name.
"""
from __future__ import annotations

import numpy as np

from veil.runtime.ring import asring

from .capabilities import Capabilities
from .expand import Emitter, expansion
from .ir import Op, Value
from .types import PUBLIC, SECRET, Type, private


@expansion("random")
def _random(em: Emitter, op: Op) -> Value:
    shape, bits = tuple(op.out.type.shape), int(op.attrs["bits"])
    parties = Capabilities.of(em.prog).compute
    total: Value | None = None
    for p in parties:
        mine = em.emit("draw", [], Type(private(p), "int", shape, 0), party=p, shape=list(shape), bits=bits)
        shared = em.emit("share", [mine], Type(SECRET, "int", shape, 0), owner=p)
        total = shared if total is None else em.emit("add", [total, shared], shared.type)
    assert total is not None, "a protocol without compute parties"
    wraps = len(parties) - 1
    if wraps:
        total = em.emit("sub", [total, _wrapped(em, total, bits, wraps)], total.type)
    return em.emit("retag", [total], op.out.type)


def _wrapped(em: Emitter, s: Value, bits: int, wraps: int) -> Value:
    """2^bits times the number of thresholds j 2^bits (j = 1..wraps) that s reaches, compared at once."""
    shape = tuple(s.type.shape)
    many = (wraps,) + shape
    thresholds = np.arange(1, wraps + 1, dtype=np.int64).reshape((wraps,) + (1,) * len(shape)) << np.int64(bits)
    limit = em.emit("const", [], Type(PUBLIC, "int", thresholds.shape, 0), value=asring(thresholds))
    reached = em.emit("ge", [em.bcast(s, many), em.bcast(limit, many)], Type(SECRET, "bool", many, 0))
    count = em.emit("sum", [reached], Type(SECRET, "int", shape, 0), axis=0)
    unit = em.emit("const", [], Type(PUBLIC, "int", (), 0), value=asring(np.int64(1) << np.int64(bits)))
    return em.emit("mul", [count, unit], count.type)
