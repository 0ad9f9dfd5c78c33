"""A corrupted or edited build never runs: every bytecode file is checked against the digest the
compiler recorded and the program hash is recomputed at load, before any connection; each damage
ends in a usage error (exit 2) naming the file, never a traceback."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from veil.compiler import driver
from veil.runtime.diagnostics import UsageErr
from veil.runtime.session import load_build_dir
from veil_cli import FRAUD, veil


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "fraud"
    driver.write_build(driver.compile_file(str(FRAUD), {"N": "256", "EPOCHS": "1"}), str(out))
    return out


def _copy(build: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(build, dst)
    return dst


def test_an_intact_build_loads(build: Path):
    manifest, files = load_build_dir(str(build))
    assert set(files) == set(manifest["parties"])


@pytest.mark.parametrize("where", [0, 17, -5])
def test_a_flipped_bit_in_a_bytecode_file_is_refused_naming_it(build, tmp_path, where):
    b = _copy(build, tmp_path)
    data = bytearray((b / "alice.bc").read_bytes())
    data[where] ^= 0x04
    (b / "alice.bc").write_bytes(bytes(data))
    with pytest.raises(UsageErr, match=r"alice\.bc is corrupted or was modified"):
        load_build_dir(str(b))


def test_a_truncated_bytecode_file_is_refused(build, tmp_path):
    b = _copy(build, tmp_path)
    (b / "bob.bc").write_bytes((b / "bob.bc").read_bytes()[:100])
    with pytest.raises(UsageErr, match=r"bob\.bc is corrupted"):
        load_build_dir(str(b))


@pytest.mark.parametrize("edit", [lambda m: m.update(frac_bits=12), lambda m: m["params"].update(LR=4.0),
                                  lambda m: m.update(protocol="dealer2")])
def test_an_edited_manifest_is_refused(build, tmp_path, edit):
    b = _copy(build, tmp_path)
    manifest = json.loads((b / "manifest.json").read_text())
    edit(manifest)
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UsageErr, match=r"manifest\.json was modified"):
        load_build_dir(str(b))


@pytest.mark.parametrize("text", ["", "[1, 2]", "{", '{"veil": 3}'])
def test_a_malformed_manifest_is_a_usage_error(build, tmp_path, text):
    b = _copy(build, tmp_path)
    (b / "manifest.json").write_text(text)
    with pytest.raises(UsageErr, match="unreadable build"):
        load_build_dir(str(b))


def test_veil_run_and_inspect_stop_before_connecting_with_exit_2(build, tmp_path):
    b = _copy(build, tmp_path)
    data = bytearray((b / "carol.bc").read_bytes())
    data[len(data) // 2] ^= 0x01
    (b / "carol.bc").write_bytes(bytes(data))
    for args in (("run", str(b), "--party", "alice", "--config", "nowhere.toml"), ("inspect", str(b))):
        done = veil(*args, cwd=tmp_path, timeout=60)
        assert done.code == 2, done.err
        assert "carol.bc is corrupted or was modified" in done.err and "Traceback" not in done.err


def test_an_unwritable_output_directory_stops_the_party_before_it_connects(build, tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    done = veil("run", str(build), "--party", "alice", "--config", "nowhere.toml",
                "--output-dir", str(blocked / "out"), cwd=tmp_path, timeout=60)
    assert done.code == 2 and "--output-dir" in done.err and "cannot write there" in done.err, done.err
    assert "Traceback" not in done.err
