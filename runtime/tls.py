"""`veil keygen` and the mutual-TLS contexts the parties connect with.

keygen makes one CA and, per party, a certificate whose common name is the party's name. The
mesh checks that name against the party it expects (see veil.runtime.connect), so hostname checks
are off: a party is who its certificate says, wherever it runs.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from veil.runtime.diagnostics import UsageErr

VALID_DAYS = 365           # a year: long enough to deploy, short enough to rotate
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def keygen(parties: list[str], out_dir: str) -> None:
    """Write ca.pem/ca.key and <party>.pem/<party>.key for every party into out_dir."""
    _check_party_names(parties)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UsageErr(f"cannot create key folder {out_dir}: {exc}") from None
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    _write_key(os.path.join(out_dir, "ca.key"), ca_key)
    _write_cert(os.path.join(out_dir, "ca.pem"), ca_cert)
    for party in parties:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _party_certificate(party, key, ca_key, ca_cert)
        _write_key(os.path.join(out_dir, f"{party}.key"), key)
        _write_cert(os.path.join(out_dir, f"{party}.pem"), cert)


def _check_party_names(parties: list[str]) -> None:
    """Party names become file names and certificate names: keep them plain and distinct."""
    if not parties:
        raise UsageErr("keygen needs at least one party, e.g. --parties alice,bob,carol")
    seen: set[str] = set()
    for p in parties:
        if not _NAME_RE.match(p):
            raise UsageErr(f"bad party name {p!r} for keygen: use letters, digits, '_', '-' and '.'")
        if p == "ca":
            raise UsageErr("a party cannot be called 'ca': keygen writes the CA to ca.pem/ca.key")
        if p in seen:
            raise UsageErr(f"party {p!r} is listed twice")
        seen.add(p)


def _validity() -> tuple[_dt.datetime, _dt.datetime]:
    """From an hour ago (clock skew between machines) to a year from now."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now - _dt.timedelta(hours=1), now + _dt.timedelta(days=VALID_DAYS)


def _ca_certificate(ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed CA certificate that may sign party certificates only."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veil CA")])
    start, end = _validity()
    public = ca_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _party_certificate(
    party: str, key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> x509.Certificate:
    """A certificate for one party, usable as TLS server and client, CN = the party's name."""
    start, end = _validity()
    san = x509.SubjectAlternativeName(
        [x509.DNSName(party), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (mode 0600)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o600)  # the file may have existed with a wider mode
    except OSError as exc:
        raise UsageErr(f"cannot write key file {path}: {exc}") from None


def _write_cert(path: str, cert: x509.Certificate) -> None:
    """Write a certificate (public; mode 0644)."""
    try:
        with open(path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise UsageErr(f"cannot write certificate file {path}: {exc}") from None


def server_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """The listening side of mutual TLS: present our certificate, require one signed by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(ctx, ca, cert, key)
    return ctx


def client_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """The dialling side of mutual TLS; the peer's name is checked against its CN by the mesh."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    _configure(ctx, ca, cert, key)
    return ctx


def contexts(ca: str, cert: str, key: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for one party, e.g. from PartiesConfig.for_party(name)."""
    return server_context(ca, cert, key), client_context(ca, cert, key)


def _configure(ctx: ssl.SSLContext, ca: str, cert: str, key: str) -> None:
    """Shared settings: TLS >= 1.2, certificates required both ways, our chain, the CA."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    _check_cert_file(ca, "CA certificate")
    _check_cert_file(cert, "certificate")
    _check_key_file(key)
    try:
        ctx.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        raise UsageErr(f"cannot use CA certificate {ca}: {exc}") from None
    try:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise UsageErr(f"the key {key} does not belong to the certificate {cert}") from None
        raise UsageErr(f"cannot use certificate {cert} with key {key}: {exc}") from None
    except OSError as exc:
        raise UsageErr(f"cannot read certificate {cert} or key {key}: {exc}") from None


def _read_file(path: str, what: str) -> bytes:
    """A file's bytes, or a usage error naming the file."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise UsageErr(f"TLS {what} file not found: {path}", hint="make keys with `veil keygen`") from None
    except OSError as exc:
        raise UsageErr(f"cannot read TLS {what} file {path}: {exc}") from None


def _check_cert_file(path: str, what: str) -> None:
    """Parse a PEM certificate up front so a bad file is named, not reported as a bare SSL error."""
    data = _read_file(path, what)
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise UsageErr(f"{path} is not a PEM {what}: {exc}") from None


def _check_key_file(path: str) -> None:
    """Parse a PEM private key up front so a bad or encrypted key file is named."""
    data = _read_file(path, "key")
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageErr(f"{path} is an encrypted private key; veil needs an unencrypted one") from None
    except ValueError as exc:
        raise UsageErr(f"{path} is not a PEM private key: {exc}") from None


def cert_common_name(peercert: dict | None) -> str | None:
    """The commonName in a certificate as returned by SSLSocket.getpeercert()."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                return value
    return None
