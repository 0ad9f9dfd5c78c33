"""The parties file (`veil run --config`): where each party listens, and optional TLS key paths.

Two shapes are read. TOML::

    [parties]
    alice = "10.0.0.1:5000"
    bob   = "10.0.0.2:5000"

    [tls]                      # optional; {party} is replaced by the party's name
    ca   = "keys/ca.pem"
    cert = "keys/{party}.pem"
    key  = "keys/{party}.key"

or TF Encrypted's JSON shape ``{"alice": "host:port", ...}`` (a JSON object with the TOML layout,
``{"parties": {...}, "tls": {...}}``, is accepted too). Relative paths resolve against the folder
of the parties file.
"""
from __future__ import annotations

import ipaddress
import json
import os
import sys
import tomllib
from dataclasses import dataclass
from typing import Any, Iterable

from veil.runtime.diagnostics import UsageErr, closest

_TLS_KEYS = ("ca", "cert", "key")
_TOP_KEYS = ("parties", "tls")


@dataclass(frozen=True)
class TLSPaths:
    """Path templates for the CA certificate and each party's certificate and key."""

    ca: str
    cert: str
    key: str
    base_dir: str = "."

    def for_party(self, name: str) -> tuple[str, str, str]:
        """(ca, cert, key) paths for `name`, with {party} filled in and made absolute."""
        return tuple(self._resolve(t, name) for t in (self.ca, self.cert, self.key))  # type: ignore[return-value]

    def _resolve(self, template: str, name: str) -> str:
        """Fill in {party} and anchor a relative path at the parties file's folder."""
        path = os.path.expanduser(template.replace("{party}", name))
        if not os.path.isabs(path):
            path = os.path.join(self.base_dir, path)
        return os.path.normpath(path)


@dataclass
class PartiesConfig:
    """Every party's listening address, and the TLS paths if the deployment uses TLS."""

    addresses: dict[str, tuple[str, int]]
    tls: TLSPaths | None = None
    path: str = "<parties>"

    def for_party(self, name: str) -> tuple[str, str, str]:
        """(ca, cert, key) for `name`; a usage error if the file has no [tls] table."""
        if self.tls is None:
            raise UsageErr(f"{self.path}: no [tls] table, so there are no certificates for {name!r}")
        self.address(name)
        return self.tls.for_party(name)

    def address(self, name: str) -> tuple[str, int]:
        """(host, port) of `name`; a usage error naming the file if the party is not listed."""
        try:
            return self.addresses[name]
        except KeyError:
            raise _missing(self.path, name, list(self.addresses)) from None

    def require(self, parties: Iterable[str]) -> None:
        """Check that every party of the program has an address in this file."""
        for name in parties:
            self.address(name)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (names other than localhost are not)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(config: PartiesConfig, party: str, insecure: bool = False) -> bool:
    """Whether `party` must use mutual TLS: with a [tls] table always; without one, plaintext is
    allowed only when every party is on loopback, or with --insecure (which warns)."""
    if config.tls is not None:
        return True
    remote = [(p, h, port) for p, (h, port) in config.addresses.items() if not is_loopback(h)]
    if not remote:
        return False
    p, h, port = remote[0]
    if not insecure:
        raise UsageErr(
            f"{config.path}: {p} at {h}:{port} is not on this machine, and the file has no [tls] table: "
            "veil will not run unauthenticated and unencrypted across machines",
            hint="make certificates with `veil keygen --parties ...` and add a [tls] table "
                 "(see docs/deployment.md), or pass --insecure on a network you trust completely")
    print(f"veil: warning: {party} runs with --insecure: its connections to {', '.join(q for q, _, _ in remote)} "
          "are neither encrypted nor authenticated; anyone on the network can read the shares and take a "
          "party's place", file=sys.stderr, flush=True)
    return False


def _missing(path: str, name: str, known: list[str]) -> UsageErr:
    """The error for a party that the parties file does not list."""
    hint = None
    guess = closest(name, known)
    if guess:
        hint = f"did you mean {guess!r}?"
    listed = ", ".join(known) if known else "none"
    return UsageErr(f"{path}: no address for party {name!r} (the file lists: {listed})", hint=hint)


def load_parties(path: str, parties: Iterable[str] | None = None) -> PartiesConfig:
    """Read a parties file (TOML or TF Encrypted JSON); with `parties`, check each is listed."""
    text = _read(path)
    data = _parse(path, text)
    if _is_flat_json(data):
        data = {"parties": data}
    _check_top_keys(path, data)
    addresses = _addresses(path, data.get("parties"))
    tls = _tls(path, data.get("tls"))
    config = PartiesConfig(addresses=addresses, tls=tls, path=path)
    if parties is not None:
        config.require(parties)
    return config


def _read(path: str) -> str:
    """The file's text, or a usage error saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise UsageErr(f"parties file not found: {path}") from None
    except IsADirectoryError:
        raise UsageErr(f"parties file {path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageErr(f"cannot read parties file {path}: {exc}") from None


def _parse(path: str, text: str) -> dict[str, Any]:
    """TOML or JSON by the file's suffix, or by its first character when the suffix says neither."""
    suffix = os.path.splitext(path)[1].lower()
    as_json = suffix == ".json" or (suffix != ".toml" and text.lstrip().startswith("{"))
    if as_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageErr(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        if not isinstance(data, dict):
            raise UsageErr(f'{path}: expected a JSON object like {{"alice": "host:port", ...}}')
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageErr(f"{path}: not valid TOML: {exc}") from None


def _is_flat_json(data: dict[str, Any]) -> bool:
    """True for TF Encrypted's shape: every value is a "host:port" string."""
    return bool(data) and "parties" not in data and all(isinstance(v, str) for v in data.values())


def _check_top_keys(path: str, data: dict[str, Any]) -> None:
    """Refuse unknown top-level tables, which are usually typos."""
    for key in data:
        if key not in _TOP_KEYS:
            guess = closest(key, list(_TOP_KEYS))
            raise UsageErr(
                f"{path}: unknown table {key!r} (expected [parties] and optionally [tls])",
                hint=f"did you mean {guess!r}?" if guess else None,
            )


def _addresses(path: str, table: Any) -> dict[str, tuple[str, int]]:
    """Every party's (host, port) from the [parties] table."""
    if table is None:
        raise UsageErr(f'{path}: no [parties] table; write e.g. [parties] alice = "127.0.0.1:5000"')
    if not isinstance(table, dict) or not table:
        raise UsageErr(f'{path}: [parties] must map each party to "host:port"')
    out: dict[str, tuple[str, int]] = {}
    for name, value in table.items():
        out[name] = parse_address(value, where=f"{path}: party {name!r}")
        twin = next((other for other, addr in out.items() if other != name and addr == out[name]), None)
        if twin is not None:
            raise UsageErr(f"{path}: parties {twin!r} and {name!r} have the same address {value!r}",
                           hint="each party listens on its own host:port")
    return out


def parse_address(value: Any, where: str = "address") -> tuple[str, int]:
    """"host:port" or "[v6]:port" -> (host, port), with a usage error for anything else."""
    bad = f'{where} has a bad address {value!r}: expected "host:port", e.g. "127.0.0.1:5000"'
    if not isinstance(value, str):
        raise UsageErr(bad)
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageErr(bad)
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise UsageErr(bad)
    if not host or not port_text.isdigit():
        raise UsageErr(bad)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise UsageErr(f"{where} has port {port}, outside 1..65535")
    return host, port


def _tls(path: str, table: Any) -> TLSPaths | None:
    """The [tls] table's three path templates, anchored at the parties file's folder."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageErr(f"{path}: [tls] must be a table with ca, cert and key")
    for key in table:
        if key not in _TLS_KEYS:
            guess = closest(key, list(_TLS_KEYS))
            raise UsageErr(
                f"{path}: unknown key {key!r} in [tls] (expected ca, cert, key)",
                hint=f"did you mean {guess!r}?" if guess else None,
            )
    missing = [k for k in _TLS_KEYS if k not in table]
    if missing:
        raise UsageErr(f"{path}: [tls] lacks {', '.join(missing)} (it needs ca, cert and key)")
    for key in _TLS_KEYS:
        if not isinstance(table[key], str) or not table[key]:
            raise UsageErr(f"{path}: [tls] {key} must be a file path")
    base = os.path.dirname(os.path.abspath(path))
    return TLSPaths(ca=table["ca"], cert=table["cert"], key=table["key"], base_dir=base)
