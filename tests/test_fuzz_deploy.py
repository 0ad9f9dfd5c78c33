"""Fuzzing what a deployment reads: a build directory (truncated and bit-flipped bytecode and
manifest) and the parties file. Every damage ends in a usage error (exit 2) with a message, never
a traceback and never a run."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from veil.compiler import driver
from veil.runtime.config import load_parties
from veil.runtime.diagnostics import UsageErr
from veil.runtime.handshake import hello_mismatch
from veil.runtime.session import hello, load_build_dir
from veil_cli import FRAUD, veil

SEEDS = range(60)
UNHASHED = {"defaults", "source_dir", "cost"}   # manifest keys the program hash does not cover


def _refused_by_peers(was: dict, now: dict) -> bool:
    """Whether an intact party's handshake refuses a party that loaded the edited manifest."""
    return hello_mismatch("bob", hello(was, "bob", "s"), hello(now, "alice", "s"), "alice") is not None


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "fraud"
    driver.write_build(driver.compile_file(str(FRAUD), {"N": "256", "EPOCHS": "1"}), str(out))
    return out


def _damage(data: bytes, rng: random.Random) -> bytes:
    """A truncation, one to eight bit flips, or both."""
    out = bytearray(data)
    kind = rng.choice(["truncate", "flip", "both"])
    if kind in ("flip", "both"):
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    if kind in ("truncate", "both"):
        out = out[: rng.randrange(len(out))]
    return bytes(out)


@pytest.mark.parametrize("target", ["alice.bc", "manifest.json"])
def test_damaged_build_files_are_refused_with_a_message(build, tmp_path, target):
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    original = (build / target).read_bytes()
    for seed in SEEDS:
        damaged = _damage(original, random.Random(seed))
        if damaged == original:
            continue
        (copy / target).write_bytes(damaged)
        try:
            load_build_dir(str(copy))
        except UsageErr as err:
            assert err.exit_status == 2
            assert err.message, seed
            continue
        # loaded: only a manifest edit outside what the program hash covers may pass (input defaults,
        # source folder, the cost report), never one of the bytecode or of the program's core; and
        # one that changes the frame bound is refused by the intact peers at the handshake
        assert target == "manifest.json", seed
        was, now = json.loads(original), json.loads(damaged)
        assert {k for k in was if now.get(k) != was[k]} <= UNHASHED, seed
        bound_changed = was["cost"]["max_message_bytes"] != now["cost"]["max_message_bytes"]
        assert _refused_by_peers(was, now) == bound_changed, seed


def test_an_edited_frame_bound_never_passes_silently(build, tmp_path):
    """Every bit flip in the digits of cost.max_message_bytes (or the key's removal): refused at
    load, or the intact peers refuse the handshake naming the frame bound."""
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    original = (build / "manifest.json").read_bytes()
    was = json.loads(original)
    key = b'"max_message_bytes": '
    start = original.index(key) + len(key)
    end = start + len(str(was["cost"]["max_message_bytes"]))
    variants = [original[:i] + bytes([original[i] ^ (1 << b)]) + original[i + 1:]
                for i in range(start, end) for b in range(8)]
    variants.append(original.replace(key, b'"max_message_byte": '))
    loaded = 0
    for damaged in variants:
        (copy / "manifest.json").write_bytes(damaged)
        try:
            manifest, _ = load_build_dir(str(copy))
        except UsageErr as err:
            assert err.message
            continue
        loaded += 1
        assert manifest["cost"]["max_message_bytes"] != was["cost"]["max_message_bytes"]
        problem = hello_mismatch("bob", hello(was, "bob", "s"), hello(manifest, "alice", "s"), "alice")
        assert problem and "largest message allowed" in problem, problem
    assert loaded > 0   # some flips give another valid number: those are what the handshake catches


@pytest.mark.parametrize("command", ["run", "inspect"])
def test_damaged_build_through_the_command_line(build, tmp_path, command):
    for seed, target in [(1, "alice.bc"), (2, "manifest.json"), (3, "bob.bc")]:
        copy = tmp_path / f"b{seed}"
        shutil.copytree(build, copy)
        (copy / target).write_bytes(_damage((build / target).read_bytes(), random.Random(seed)))
        (tmp_path / "p.toml").write_text('[parties]\nalice = "127.0.0.1:1"\nbob = "127.0.0.1:2"\ncarol = "127.0.0.1:3"\n')
        args = [command, copy] + (["--party", "alice", "--config", tmp_path / "p.toml"] if command == "run" else [])
        done = veil(*args, cwd=tmp_path, timeout=30)
        assert done.code == 2, done.err
        assert "Traceback" not in done.err and "\nerror:" in "\n" + done.err, done.err


PARTIES_FILES = {
    "duplicate address": ('[parties]\nalice = "127.0.0.1:5000"\nbob = "127.0.0.1:5000"\ncarol = "127.0.0.1:5002"\n',
                          "same address"),
    "unknown party": ('[parties]\nalice = "127.0.0.1:5000"\nbob = "127.0.0.1:5001"\ncarl = "127.0.0.1:5002"\n',
                      "no address for party 'carol'"),
    "port zero": ('[parties]\nalice = "127.0.0.1:0"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n',
                  "outside 1..65535"),
    "port too big": ('[parties]\nalice = "127.0.0.1:70000"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n',
                     "outside 1..65535"),
    "port not a number": ('[parties]\nalice = "127.0.0.1:http"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n',
                          "bad address"),
    "no port": ('[parties]\nalice = "127.0.0.1"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n', "bad address"),
    "bad toml": ('[parties\nalice = "127.0.0.1:5000"\n', "not valid TOML"),
    "number address": ('[parties]\nalice = 5000\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n', "bad address"),
    "tls typo": ('[parties]\nalice = "127.0.0.1:5000"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5002"\n'
                 '[tls]\nca = "ca.pem"\ncert = "{party}.pem"\nkee = "{party}.key"\n', "unknown key 'kee'"),
}


@pytest.mark.parametrize("name", sorted(PARTIES_FILES))
def test_bad_parties_files(tmp_path, name):
    text, needle = PARTIES_FILES[name]
    path = tmp_path / "parties.toml"
    path.write_text(text)
    with pytest.raises(UsageErr) as info:
        load_parties(str(path), ["alice", "bob", "carol"])
    assert needle in info.value.message, info.value.message


def test_random_parties_files_end_in_a_message(tmp_path):
    """Random edits of a good parties file: it loads, or fails with a usage error."""
    good = '[parties]\nalice = "127.0.0.1:5000"\nbob = "[::1]:5001"\ncarol = "10.0.0.3:5002"\n'
    rng = random.Random(7)
    alphabet = '[]":=.\n ab1'
    path = tmp_path / "parties.toml"
    for _ in range(300):
        text = list(good)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(text))
            op = rng.choice(["del", "ins", "sub"])
            if op == "del":
                del text[i]
            elif op == "ins":
                text.insert(i, rng.choice(alphabet))
            else:
                text[i] = rng.choice(alphabet)
        path.write_text("".join(text))
        try:
            load_parties(str(path), ["alice", "bob", "carol"])
        except UsageErr as err:
            assert err.message
