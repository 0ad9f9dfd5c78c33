"""Local adds and subs write into a dying operand's arrays only when nothing else can see them:
the proof (runtime/inplace.py), and whole programs against the emulator where a dying value is
also held by a history, a view's base or another register."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from veil.runtime import api
from veil.runtime.inplace import same_shapes, sole, writable
from veil.runtime.protocols.dealer2 import Dealer2
from veil.runtime.protocols.rep3 import Rep3

U64 = np.uint64
N = 40_000  # above the VM's INPLACE_ELEMENTS
PROTOCOLS = ["rep3(alice, bob, carol)", "dealer2(alice, bob, dealer=carol)"]


def test_sole_sees_every_other_holder():
    a = np.zeros(4, dtype=U64)
    assert not sole([a], 0)  # the name `a` holds it too
    held = [np.zeros(4, dtype=U64)]
    assert sole(held, 0)
    other = [held[0]]
    assert not sole(held, 0)  # a second list
    del other
    assert sole(held, 0)
    view = held[0][1:]
    assert not sole(held, 0)  # a view keeps its base
    del view
    assert sole(held, 0)


def test_writable_only_for_owned_ring_arrays_of_the_shape():
    a = np.zeros((3, 4), dtype=U64)
    assert writable(a, (3, 4))
    assert not writable(a, (4, 3))
    assert not writable(a.T, (4, 3))  # a view
    assert not writable(a[:2], (2, 4))
    ro = np.zeros(4, dtype=U64)
    ro.flags.writeable = False
    assert not writable(ro, (4,))
    assert not writable(np.zeros(4, dtype=np.int64), (4,))
    assert not writable(np.frombuffer(bytearray(32), dtype=U64), (4,))  # memory it does not own
    assert same_shapes([a, a], (3, 4)) and not same_shapes([a, np.zeros(4, dtype=U64)], (3, 4))


def _rand(rng, n):
    return rng.integers(-1000, 1000, n, dtype=np.int64)


@pytest.fixture
def into_counts(monkeypatch):
    """How often each protocol computed into an operand (True) or declined (False)."""
    counts = collections.Counter()
    for cls in (Rep3, Dealer2):
        original = cls.map_into

        def spy(self, ufunc, k, shares, _original=original):
            out = _original(self, ufunc, k, shares)
            counts[out is not None] += 1
            return out

        monkeypatch.setattr(cls, "map_into", spy)
    return counts


def _program(protocol: str, body: str, after: str = "") -> str:
    return f"""party alice, bob, carol
protocol {protocol}
param T = 3
a = secret(input(alice, "a", shape=({N},), dtype=int))
b = secret(input(bob, "b", shape=({N},), dtype=int))
acc = secret(input(alice, "c", shape=({N},), dtype=int))
for i in range(T):
{body}
{after}
"""


def _check(src: str) -> None:
    rng = np.random.default_rng(7)
    inputs = {"alice": {"a": _rand(rng, N), "c": _rand(rng, N)}, "bob": {"b": _rand(rng, N)}}
    want, got = api.emulate(src, inputs), api.run(src, inputs)
    for party, outs in want.items():
        for name, value in outs.items():
            assert np.array_equal(got[party][name], value), (party, name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_loops_accumulator_is_summed_in_place(protocol, into_counts):
    _check(_program(protocol, "    acc = acc + a * b\n    acc = acc - b", "output(acc, to=alice)"))
    assert into_counts[True] >= 3 * 2 * (3 - 1)  # every party, both ops, every trip after the first


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_value_another_register_holds_is_never_overwritten(protocol, into_counts):
    """On the first trip the loop's carried acc is also `start`, which is read after the loop: the
    add's operand dies in the body, but its arrays are not the body's alone."""
    body = "    acc = acc + a * b"
    src = _program(protocol, body, "output(start, to=alice)\noutput(acc, to=alice)")
    src = src.replace("for i in range(T):", "start = acc + b\nacc = start\nfor i in range(T):")
    _check(src)
    assert into_counts[False] >= 3  # declined on the first trip, at every party


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_view_of_a_live_value_is_never_overwritten(protocol, into_counts):
    """A dying reshape is a view of m's arrays, and m is read after it."""
    body = ("    m = a * b\n"
            "    w = reshape(m, (200, 200)) + reshape(acc, (200, 200))\n"
            "    acc = reshape(w, (40000,)) + m")
    _check(_program(protocol, body, "output(acc, to=alice)"))
