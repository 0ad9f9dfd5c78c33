"""Abort before start, in one process: a party that cannot start tells the others, who stop at once
naming it and its reason; the same frame from a stranger (an unknown name, or with TLS another
party's certificate) is dropped and the mesh still forms. (Real processes: tests/test_faults.py.)"""
from __future__ import annotations

import asyncio
import time

import pytest

from veil.runtime import net, tls
from veil.runtime.announce import announce_failure
from veil.runtime.diagnostics import NetworkError

PARTIES = ["alice", "bob", "carol"]
HELLO = {"veil": 1, "program": "c0ffee", "session": "s"}


def _addresses() -> dict[str, tuple[str, int]]:
    return {p: ("127.0.0.1", port) for p, port in zip(PARTIES, net.free_ports(3))}


async def _connect(party: str, addrs, ctx=(None, None), timeout: float = 8.0):
    return await net.connect_mesh(party, [p for p in PARTIES if p != party], addrs, HELLO, connect_timeout=timeout,
                                  ssl_server=ctx[0], ssl_client=ctx[1], logger=lambda _: None)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    tls.keygen(PARTIES, str(folder))
    return folder


def _ctx(folder, who: str):
    return tls.contexts(str(folder / "ca.pem"), str(folder / f"{who}.pem"), str(folder / f"{who}.key"))


@pytest.mark.parametrize("secure", [False, True])
def test_the_others_stop_at_once_naming_the_party_and_its_reason(keys, secure):
    addrs = _addresses()
    ctx = {p: _ctx(keys, p) if secure else (None, None) for p in PARTIES}

    async def main():
        others = [asyncio.ensure_future(_connect(p, addrs, ctx[p])) for p in ("bob", "carol")]
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        told = await announce_failure("alice", PARTIES, addrs, "alice.bc is corrupted", ctx["alice"][1],
                                      logger=lambda _: None)
        res = await asyncio.gather(*others, return_exceptions=True)
        return told, res, time.monotonic() - t0

    told, res, took = asyncio.run(main())
    assert told == ["bob", "carol"]
    for r in res:
        assert isinstance(r, NetworkError), r
        assert r.message.startswith("alice failed before starting: alice.bc is corrupted"), r.message
    assert took < 5.0   # the connect timeout is 8 s: they did not wait for it


def test_a_strangers_abort_is_dropped(keys):
    """Plaintext: an unknown party's abort. TLS: carol's certificate sending one in alice's name."""
    async def run(secure: bool):
        addrs = _addresses()
        ctx = {p: _ctx(keys, p) if secure else (None, None) for p in PARTIES}
        meshes = [asyncio.ensure_future(_connect(p, addrs, ctx[p])) for p in ("alice", "bob")]
        await asyncio.sleep(0.3)
        if secure:
            told = await announce_failure("alice", ["bob"], addrs, "forged", ctx["carol"][1], within=1.0,
                                          logger=lambda _: None)
        else:
            told = await announce_failure("mallory", ["alice", "bob"], {**addrs, "mallory": ("127.0.0.1", 1)},
                                          "forged", within=1.0, logger=lambda _: None)
        assert told == []
        meshes.append(asyncio.ensure_future(_connect("carol", addrs, ctx["carol"])))
        res = await asyncio.gather(*meshes, return_exceptions=True)
        for m in res:
            assert isinstance(m, net.Mesh), m
        await asyncio.gather(*(m.close() for m in res))

    asyncio.run(run(False))
    asyncio.run(run(True))


def test_nobody_listening_costs_the_failing_party_at_most_the_window():
    addrs = _addresses()
    t0 = time.monotonic()
    told = asyncio.run(announce_failure("alice", PARTIES, addrs, "x", within=0.5, logger=lambda _: None))
    assert told == [] and time.monotonic() - t0 < 2.0


def test_a_peer_that_relays_spares_the_failing_party_its_dialling():
    """bob, already connected to carol, answers that he relays the news to her: alice stops
    dialling carol (here at an address where nobody listens) at once instead of for the window."""
    addrs = _addresses()

    async def main():
        others = [asyncio.ensure_future(_connect(p, addrs)) for p in ("bob", "carol")]
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        wrong = {**addrs, "carol": ("127.0.0.1", net.free_ports(1)[0])}
        told = await announce_failure("alice", PARTIES, wrong, "alice.bc is corrupted", within=10.0,
                                      logger=lambda _: None)
        took = time.monotonic() - t0
        return told, await asyncio.gather(*others, return_exceptions=True), took

    told, res, took = asyncio.run(main())
    assert told == ["bob", "carol"] and took < 3.0, (told, took)
    assert res[1].message == "alice failed before starting: alice.bc is corrupted (relayed by bob)", res[1].message


def test_a_peer_reports_whom_it_reached_while_lingering():
    """bob is told before carol is up; he goes on connecting, reaches carol and relays the news, then
    reports her to alice, who stops dialling carol (at an address where nobody listens) then, not at
    the end of her 10 s window."""
    addrs = _addresses()

    async def main():
        bob = asyncio.ensure_future(_connect("bob", addrs))
        await asyncio.sleep(0.3)
        wrong = {**addrs, "carol": ("127.0.0.1", net.free_ports(1)[0])}
        t0 = time.monotonic()
        told = asyncio.ensure_future(announce_failure("alice", PARTIES, wrong, "no input", within=10.0,
                                                      logger=lambda _: None))
        await asyncio.sleep(0.5)
        carol = asyncio.ensure_future(_connect("carol", addrs))
        told = await told
        took = time.monotonic() - t0
        return told, await asyncio.gather(bob, carol, return_exceptions=True), took

    told, res, took = asyncio.run(main())
    assert told == ["bob", "carol"] and took < 5.0, (told, took)
    assert res[1].message == "alice failed before starting: no input (relayed by bob)", res[1].message


def test_a_handshake_under_way_when_the_news_arrives_is_finished_and_told():
    """alice's handshake with carol is one answer short when bob's abort before start reaches
    carol: carol waits for that answer while lingering, attaches alice and relays bob's news to
    her, instead of closing a connection alice already counts as made (she would only see it end)."""
    from veil.runtime.framing import control_frame, read_control

    addrs = _addresses()

    async def main():
        carol = asyncio.ensure_future(_connect("carol", addrs))
        await asyncio.sleep(0.3)
        reader, writer = await asyncio.open_connection(*addrs["carol"])
        writer.write(control_frame({"t": "hello", "hello": dict(HELLO, party="alice")}))
        reply = await read_control(reader)
        assert reply.get("t") == "hello" and not reply.get("verdict")
        wrong = {**addrs, "alice": ("127.0.0.1", net.free_ports(1)[0])}   # bob tells carol only
        await announce_failure("bob", PARTIES, wrong, "no input", within=0.5, logger=lambda _: None)
        await asyncio.sleep(0.3)
        writer.write(control_frame({"t": "ok"}))      # alice's last word: she is attached now
        frame = await asyncio.wait_for(read_control(reader), 5.0)
        while frame.get("t") == "hb":
            frame = await asyncio.wait_for(read_control(reader), 5.0)
        writer.close()
        return frame, await asyncio.gather(carol, return_exceptions=True)

    frame, res = asyncio.run(main())
    assert frame.get("t") == "abort" and frame.get("origin") == "bob" and frame.get("early") is True, frame
    assert res[0].message == "bob failed before starting: no input", res[0].message
