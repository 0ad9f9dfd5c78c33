"""WAN emulation: --rtt/--bandwidth parsing, shaped links that never deliver early and keep order,
and real `veil run` processes whose rounds each cost at least half the emulated round trip."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from veil.runtime.diagnostics import UsageErr
from veil.runtime.mesh import make_local_meshes
from veil.runtime.shaping import LinkShape, ShapedLink, parse_bandwidth, parse_duration, shape_from_args
from veil_cli import measured_stats, veil

ROUNDS_PROGRAM = """party alice, bob, carol
protocol rep3(alice, bob, carol)
param R = 8
x = input(alice, "x", shape=(4,))
w = input(bob, "w", shape=(4,))
y = x * w
for i in range(R):
    y = y * w
output(y, to=alice)
"""


@pytest.mark.parametrize("text, seconds", [("40ms", 0.04), ("0.04s", 0.04), ("500us", 5e-4), (" 2 S ", 2.0),
                                           ("1e-3s", 1e-3), ("0ms", 0.0), (".5ms", 5e-4)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, bits", [("352mbit", 352e6), ("1gbit", 1e9), ("100kbit", 1e5), ("8bit", 8.0),
                                        ("352Mbps", 352e6), ("2.5gbit", 2.5e9)])
def test_bandwidths(text, bits):
    assert parse_bandwidth(text) == pytest.approx(bits)


@pytest.mark.parametrize("text", ["40", "ms", "-40ms", "40 minutes", "forty ms", "40ms5", ""])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(UsageErr, match="--rtt"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["352", "352mb", "0mbit", "-1gbit", "fast"])
def test_bad_bandwidths_are_usage_errors(text):
    with pytest.raises(UsageErr, match="--bandwidth"):
        parse_bandwidth(text)


def test_shape_round_trips_through_the_command_line():
    shape = shape_from_args("40ms", "352mbit")
    assert shape == LinkShape(0.04, 352e6) and shape.one_way == pytest.approx(0.02)
    args = shape.cli_args()
    assert shape_from_args(args[1], args[3]) == shape
    assert shape_from_args(None, None) is None
    assert shape_from_args("10ms", None) == LinkShape(0.01, None)
    assert shape.transfer_seconds(44_000_000) == pytest.approx(1.0)


def test_shaped_link_is_never_early_and_keeps_order():
    """Each message is due after its paced transfer plus the one-way delay; later ones queue."""
    shape = LinkShape(rtt=0.02, bandwidth=8e5)  # 100 kB/s: 2 kB take 20 ms

    async def main():
        loop = asyncio.get_running_loop()
        link = ShapedLink(shape)
        sent_at = loop.time()
        arrived: list[tuple[int, float]] = []
        for i in range(4):
            link.submit(2000, lambda i=i: arrived.append((i, loop.time())))
        await link.flush()
        await link.stop()
        return sent_at, arrived

    sent_at, arrived = asyncio.run(main())
    assert [i for i, _ in arrived] == [0, 1, 2, 3]
    for i, t in arrived:
        assert t - sent_at >= (i + 1) * 0.02 + 0.01  # transfer of i + 1 messages, then half the RTT


def test_in_process_mesh_delays_rounds():
    """LocalMesh with a shape: a ping-pong of R round trips takes at least R x RTT."""
    rounds, rtt = 5, 0.02

    async def main():
        meshes = make_local_meshes(["a", "b"])
        for m in meshes.values():
            m.shape(LinkShape(rtt=rtt))

        async def ping():
            for k in range(rounds):
                await meshes["a"].send("b", [np.array([k], np.uint64)])
                assert int((await meshes["a"].recv("b"))[0][0]) == k

        async def pong():
            for _ in range(rounds):
                got = await meshes["b"].recv("a")
                await meshes["b"].send("a", [np.array(got[0])])

        t0 = time.monotonic()
        await asyncio.gather(ping(), pong())
        took = time.monotonic() - t0
        await asyncio.gather(*(m.close() for m in meshes.values()))
        return took

    assert asyncio.run(main()) >= rounds * rtt


def test_real_processes_pay_half_a_round_trip_per_round(tmp_path: Path):
    """A run of R rounds under --rtt takes at least R x RTT/2 of wall-clock time, and the slowest
    party's own run (measured from its connected mesh, so process start-up is not in it) about
    (R - 1) x RTT/2 longer than unshaped: a party that starts its run late finds its first messages
    waiting, hence a quarter of slack. Not every party waits in every round (rep3's truncation
    dealer sends in the first of its two rounds only), so the bound is the slowest party's."""
    rtt = 0.3
    (tmp_path / "rounds.mpc").write_text(ROUNDS_PROGRAM)
    (tmp_path / "ones.csv").write_text("1.0\n1.0\n1.0\n1.0\n")
    common = ["local", "rounds.mpc", "--input", "alice.x=ones.csv", "--input", "bob.w=ones.csv", "--stats"]
    plain = veil(*common, cwd=tmp_path, timeout=120)
    t1 = time.monotonic()
    shaped = veil(*common, "--rtt", f"{int(rtt * 1000)}ms", "--bandwidth", "352mbit", cwd=tmp_path, timeout=120)
    t2 = time.monotonic()
    assert plain.code == 0, plain.err
    assert shaped.code == 0, shaped.err
    before, after = measured_stats(plain.out, plain.err), measured_stats(shaped.out, shaped.err)
    assert {p: r["rounds"] for p, r in after.items()} == {p: r["rounds"] for p, r in before.items()}
    manifest = json.loads((tmp_path / "build" / "rounds" / "manifest.json").read_text())
    critical = manifest["cost"]["critical_rounds"]
    assert critical >= 8
    assert t2 - t1 >= critical * rtt / 2
    slowest_plain = max(r["seconds"] for r in before.values())
    slowest_shaped = max(r["seconds"] for r in after.values())
    assert slowest_shaped - slowest_plain >= 0.75 * (critical - 1) * rtt / 2, (after, before)
    assert "alice.y [4] = [1. 1. 1. 1.]" in shaped.out


def test_bad_flag_values_fail_before_anything_runs(tmp_path: Path):
    (tmp_path / "rounds.mpc").write_text(ROUNDS_PROGRAM)
    done = veil("local", "rounds.mpc", "--rtt", "40", cwd=tmp_path)
    assert done.code == 2 and "--rtt 40" in done.err and "40ms" in done.err and "Traceback" not in done.err
    assert not (tmp_path / "build").exists()
    done = veil("run", "nowhere", "--party", "alice", "--config", "x.toml", "--bandwidth", "fast", cwd=tmp_path)
    assert done.code == 2 and "--bandwidth fast" in done.err
