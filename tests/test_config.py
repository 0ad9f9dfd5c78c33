"""The parties file: TOML and TF Encrypted JSON, TLS path templates, and errors naming the file."""
from __future__ import annotations

import json
import os

import pytest

from veil.runtime.diagnostics import UsageErr
from veil.runtime.config import PartiesConfig, TLSPaths, load_parties, parse_address

TOML = """
[parties]
alice = "127.0.0.1:5000"
bob = "10.0.0.2:5001"
carol = "carol.example.org:5002"

[tls]
ca = "keys/ca.pem"
cert = "keys/{party}.pem"
key = "/etc/veil/{party}.key"
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_toml_addresses_and_tls_paths(tmp_path):
    path = write(tmp_path, "parties.toml", TOML)
    cfg = load_parties(path, ["alice", "bob", "carol"])
    assert isinstance(cfg, PartiesConfig)
    assert cfg.addresses == {
        "alice": ("127.0.0.1", 5000),
        "bob": ("10.0.0.2", 5001),
        "carol": ("carol.example.org", 5002),
    }
    assert isinstance(cfg.tls, TLSPaths)
    ca, cert, key = cfg.for_party("bob")
    assert ca == str(tmp_path / "keys" / "ca.pem")          # relative: next to the parties file
    assert cert == str(tmp_path / "keys" / "bob.pem")       # {party} filled in
    assert key == "/etc/veil/bob.key"                       # absolute stays


def test_relative_paths_resolve_against_the_file_not_the_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "deploy"
    sub.mkdir()
    write(sub, "p.toml", TOML)
    monkeypatch.chdir(tmp_path)
    cfg = load_parties(os.path.join("deploy", "p.toml"))
    assert cfg.for_party("alice")[1] == str(sub / "keys" / "alice.pem")


def test_tf_encrypted_json_shape(tmp_path):
    path = write(tmp_path, "config.json", json.dumps({"server0": "localhost:4440", "server1": "localhost:4441"}))
    cfg = load_parties(path)
    assert cfg.addresses == {"server0": ("localhost", 4440), "server1": ("localhost", 4441)}
    assert cfg.tls is None
    with pytest.raises(UsageErr, match="no \\[tls\\] table"):
        cfg.for_party("server0")


def test_json_with_the_toml_layout_and_sniffing_without_suffix(tmp_path):
    data = {"parties": {"a": "[::1]:7000"}, "tls": {"ca": "ca.pem", "cert": "{party}.pem", "key": "{party}.key"}}
    cfg = load_parties(write(tmp_path, "parties", json.dumps(data)))
    assert cfg.addresses == {"a": ("::1", 7000)}
    assert cfg.for_party("a")[2] == str(tmp_path / "a.key")
    cfg = load_parties(write(tmp_path, "parties.conf", '[parties]\na = "h:1"\n'))
    assert cfg.addresses == {"a": ("h", 1)}


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:", ":5000", "host:port", "host:0", "host:70000",
                                   "a:b:5000", "[::1]5000", "[::1]", 5000, "h:-1"])
def test_bad_addresses(tmp_path, value):
    path = write(tmp_path, "p.toml", f"[parties]\nalice = {json.dumps(value)}\n")
    with pytest.raises(UsageErr) as info:
        load_parties(path)
    assert path in info.value.message and "'alice'" in info.value.message


def test_parse_address_forms():
    assert parse_address("h:1") == ("h", 1)
    assert parse_address(" 10.1.2.3:65535 ") == ("10.1.2.3", 65535)
    assert parse_address("[fe80::1]:80") == ("fe80::1", 80)


def test_missing_file_and_bad_syntax(tmp_path):
    with pytest.raises(UsageErr, match="parties file not found: .*nope.toml"):
        load_parties(str(tmp_path / "nope.toml"))
    with pytest.raises(UsageErr, match="is a folder"):
        load_parties(str(tmp_path))
    bad_toml = write(tmp_path, "bad.toml", "[parties\nalice = 1")
    with pytest.raises(UsageErr, match="bad.toml: not valid TOML"):
        load_parties(bad_toml)
    bad_json = write(tmp_path, "bad.json", '{"alice": "h:1",}')
    with pytest.raises(UsageErr, match="bad.json: not valid JSON"):
        load_parties(bad_json)
    with pytest.raises(UsageErr, match="expected a JSON object"):
        load_parties(write(tmp_path, "list.json", '["h:1"]'))


def test_missing_party_is_named_with_a_hint(tmp_path):
    path = write(tmp_path, "p.toml", TOML)
    with pytest.raises(UsageErr) as info:
        load_parties(path, ["alice", "bobb"])
    assert path in info.value.message and "'bobb'" in info.value.message
    assert info.value.hint == "did you mean 'bob'?"
    cfg = load_parties(path)
    with pytest.raises(UsageErr, match="no address for party 'dave'"):
        cfg.address("dave")
    with pytest.raises(UsageErr, match="no address for party 'dave'"):
        cfg.for_party("dave")


def test_structure_errors(tmp_path):
    with pytest.raises(UsageErr, match="no \\[parties\\] table"):
        load_parties(write(tmp_path, "a.toml", '[tls]\nca="x"\ncert="y"\nkey="z"\n'))
    with pytest.raises(UsageErr) as info:
        load_parties(write(tmp_path, "b.toml", '[partys]\na = "h:1"\n'))
    assert "unknown table 'partys'" in info.value.message and info.value.hint == "did you mean 'parties'?"
    with pytest.raises(UsageErr, match="lacks key"):
        load_parties(write(tmp_path, "c.toml", '[parties]\na = "h:1"\n[tls]\nca="x"\ncert="y"\n'))
    with pytest.raises(UsageErr) as info:
        load_parties(write(tmp_path, "d.toml", '[parties]\na = "h:1"\n[tls]\nca="x"\ncert="y"\nkey="z"\ncerts="w"\n'))
    assert "unknown key 'certs' in [tls]" in info.value.message
    with pytest.raises(UsageErr, match="must map each party"):
        load_parties(write(tmp_path, "e.toml", "[parties]\n"))
    with pytest.raises(UsageErr, match="must be a file path"):
        load_parties(write(tmp_path, "f.toml", '[parties]\na = "h:1"\n[tls]\nca=1\ncert="y"\nkey="z"\n'))


def test_two_parties_on_one_address_are_refused(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[parties]\nalice = "127.0.0.1:5000"\nbob = "127.0.0.1:5001"\ncarol = "127.0.0.1:5000"\n')
    with pytest.raises(UsageErr, match="'alice' and 'carol' have the same address"):
        load_parties(str(path))
