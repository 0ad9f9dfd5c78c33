"""`veil keygen` output, the mutual-TLS contexts, and the mesh over TLS refusing wrong certificates."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import stat

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from veil.runtime.diagnostics import NetworkError, UsageErr
from veil.runtime import net, tls

PARTIES = ["alice", "bob", "carol"]
HELLO = {"veil": 1, "program": "abc123", "session": "s"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two independent deployments' keys: 'main' and 'other' (a different CA)."""
    main = tmp_path_factory.mktemp("keys")
    other = tmp_path_factory.mktemp("other")
    tls.keygen(PARTIES, str(main))
    tls.keygen(PARTIES, str(other))
    return main, other


def load(path) -> x509.Certificate:
    with open(path, "rb") as fh:
        return x509.load_pem_x509_certificate(fh.read())


def test_keygen_files_names_and_modes(keys):
    main, _ = keys
    names = sorted(os.listdir(main))
    assert names == sorted(["ca.pem", "ca.key"] + [f"{p}.{e}" for p in PARTIES for e in ("pem", "key")])
    for name in names:
        mode = stat.S_IMODE(os.stat(main / name).st_mode)
        if name.endswith(".key"):
            assert mode == 0o600, name
    ca = load(main / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for p in PARTIES:
        cert = load(main / f"{p}.pem")
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == p
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == {p, "localhost"}
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"


def test_keygen_deployments_have_distinct_cas(keys):
    main, other = keys
    with pytest.raises(Exception):
        load(other / "alice.pem").verify_directly_issued_by(load(main / "ca.pem"))


@pytest.mark.parametrize("parties, needle", [([], "at least one"), (["a/b"], "bad party name"),
                                             (["ca"], "'ca'"), (["x", "x"], "twice"), ([""], "bad party")])
def test_keygen_refuses_bad_names(tmp_path, parties, needle):
    with pytest.raises(UsageErr, match=needle):
        tls.keygen(parties, str(tmp_path))


def paths(d, who, ca_dir=None):
    return str((ca_dir or d) / "ca.pem"), str(d / f"{who}.pem"), str(d / f"{who}.key")


def test_contexts_are_mutual_tls(keys):
    main, _ = keys
    server, client = tls.contexts(*paths(main, "alice"))
    for ctx in (server, client):
        assert ctx.verify_mode.name == "CERT_REQUIRED"
        assert not ctx.check_hostname
        assert ctx.minimum_version.name in ("TLSv1_2", "TLSv1_3")


def test_context_errors_name_the_file(keys, tmp_path):
    main, other = keys
    ca, cert, key = paths(main, "alice")
    with pytest.raises(UsageErr, match="not found: .*nope.pem"):
        tls.server_context(ca, str(tmp_path / "nope.pem"), key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(UsageErr, match="garbage.pem is not a PEM CA certificate"):
        tls.client_context(str(garbage), cert, key)
    with pytest.raises(UsageErr, match="garbage.pem is not a PEM private key"):
        tls.client_context(ca, cert, str(garbage))
    with pytest.raises(UsageErr, match="does not belong to the certificate"):
        tls.client_context(ca, cert, str(other / "alice.key"))


def test_cert_common_name():
    assert tls.cert_common_name({"subject": ((("countryName", "NL"),), (("commonName", "bob"),))}) == "bob"
    assert tls.cert_common_name({}) is None
    assert tls.cert_common_name(None) is None


async def _mesh(contexts: dict, parties=PARTIES, timeout=4.0):
    addrs = {p: ("127.0.0.1", port) for p, port in zip(parties, net.free_ports(len(parties)))}

    async def one(p):
        server, client = contexts[p]
        return await net.connect_mesh(p, [q for q in parties if q != p], addrs, HELLO,
                                      connect_timeout=timeout, ssl_server=server, ssl_client=client)

    res = await asyncio.gather(*(one(p) for p in parties), return_exceptions=True)
    return dict(zip(parties, res)), addrs


async def _close(res):
    await asyncio.gather(*(m.close() for m in res.values() if isinstance(m, net.Mesh)))


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_three_party_mesh_over_mutual_tls(keys, use_uvloop):
    main, _ = keys

    async def main_():
        res, _ = await _mesh({p: tls.contexts(*paths(main, p)) for p in PARTIES})
        for m in res.values():
            assert isinstance(m, net.Mesh), m
            for w in m._writers.values():
                assert w.get_extra_info("sslcontext") is not None
        big = np.arange(1_000_000, dtype=np.uint64)

        async def party(m):
            return await m.exchange({q: [big + ord(m.me[0]), np.zeros((0, 2))] for q in m.peers}, m.peers)

        got = await asyncio.gather(*(party(m) for m in res.values()))
        for received in got:
            for sender, (a, e) in received.items():
                assert np.array_equal(a, big + ord(sender[0]))
                assert e.shape == (0, 2)
        want = big.copy()
        await res["alice"].send("carol", [big])    # the sender may reuse its buffer once send returns
        big[:] = 0
        assert np.array_equal((await res["carol"].recv("alice"))[0], want)
        await _close(res)

    net.run(main_(), use_uvloop=use_uvloop)


def test_certificate_from_another_ca_is_refused_on_both_sides(keys):
    """bob brings another deployment's keys: alice (who dials bob) refuses it at once; for bob the
    connection is a stranger's (logged and dropped), and its timeout says what was dropped."""
    main, other = keys
    ctxs = {"alice": tls.contexts(*paths(main, "alice")), "bob": tls.contexts(*paths(other, "bob"))}
    res, addrs = net.run(_mesh(ctxs, ["alice", "bob"], timeout=2.0))
    a, b = res["alice"], res["bob"]
    assert isinstance(a, NetworkError) and isinstance(b, NetworkError)
    assert a.message.startswith(f"alice refused the TLS certificate of bob at 127.0.0.1:{addrs['bob'][1]}")
    assert "keygen" in a.hint
    assert b.message.startswith("alice did not connect to bob")
    assert "dropped meanwhile" in b.hint and "refused bob's certificate" in b.hint


def test_dialler_with_certificate_from_another_ca_is_refused(keys):
    """alice trusts the right CA but presents a foreign certificate: bob drops it as a stranger,
    alice hears that her certificate was refused."""
    main, other = keys
    ctxs = {"alice": tls.contexts(*paths(other, "alice", ca_dir=main)), "bob": tls.contexts(*paths(main, "bob"))}
    res, _ = net.run(_mesh(ctxs, ["alice", "bob"], timeout=2.0))
    a, b = res["alice"], res["bob"]
    assert isinstance(b, NetworkError) and b.message.startswith("alice did not connect to bob")
    assert "its TLS certificate was refused" in b.hint
    assert isinstance(a, NetworkError) and "refused alice's certificate" in a.message, a.message


@pytest.mark.parametrize("impostor, stolen", [("bob", "carol"), ("alice", "bob")])
def test_certificate_naming_another_party_is_refused(keys, impostor, stolen):
    """A valid certificate for the wrong party: the impostor is refused and told why; the honest
    party stays up for the real one (here it times out, naming whom it waits for)."""
    main, _ = keys
    ctxs = {p: tls.contexts(*paths(main, p)) for p in ("alice", "bob")}
    ctxs[impostor] = tls.contexts(*paths(main, stolen))
    res, addrs = net.run(_mesh(ctxs, ["alice", "bob"], timeout=2.0))
    honest = "alice" if impostor == "bob" else "bob"
    assert isinstance(res[impostor], NetworkError) and isinstance(res[honest], NetworkError)
    if impostor == "bob":    # alice dials the impostor and checks its certificate before saying anything
        want = (f"alice refused the party at 127.0.0.1:{addrs['bob'][1]}: expected bob there, but its TLS "
                f"certificate is issued to 'carol'")
        assert res["alice"].message.startswith(want) and res["bob"].message.startswith(want)
    else:                    # bob, listening, refuses the dialler claiming to be alice with bob's certificate
        want = "bob refused alice: its TLS certificate is issued to 'bob', not 'alice'"
        assert res["alice"].message.startswith(want)
        assert res["bob"].message.startswith("alice did not connect to bob")
        assert "claims to be alice with the certificate of 'bob'" in res["bob"].hint


def test_tls_and_plain_parties_do_not_mix(keys):
    main, _ = keys
    ctxs = {"alice": (None, None), "bob": tls.contexts(*paths(main, "bob"))}
    res, _ = net.run(_mesh(ctxs, ["alice", "bob"], timeout=2.0))
    assert isinstance(res["alice"], NetworkError) and "closed the connection during the handshake" in res["alice"].message
    assert isinstance(res["bob"], NetworkError) and res["bob"].message.startswith("alice did not connect to bob")
    assert "TLS handshake failed" in res["bob"].hint


def test_plaintext_off_loopback_needs_insecure(tmp_path, capsys):
    from veil.runtime.config import load_parties, transport_security

    path = tmp_path / "p.toml"
    path.write_text('[parties]\nalice = "127.0.0.1:5000"\nbob = "10.0.0.2:5000"\n')
    config = load_parties(str(path))
    with pytest.raises(UsageErr) as info:
        transport_security(config, "alice")
    assert "bob at 10.0.0.2:5000 is not on this machine" in info.value.message and "keygen" in info.value.hint
    assert transport_security(config, "alice", insecure=True) is False
    assert "warning: alice runs with --insecure" in capsys.readouterr().err
    path.write_text('[parties]\nalice = "127.0.0.1:5000"\nbob = "localhost:5001"\n')
    assert transport_security(load_parties(str(path)), "alice") is False


def test_keygen_certificates_are_valid_for_a_year(keys):
    main, _ = keys
    cert = load(main / "bob.pem")
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 365 <= days <= 366
