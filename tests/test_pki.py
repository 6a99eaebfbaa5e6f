"""Certificate generation: SANs, chain, file modes and the caBundle value the API server needs."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from webhook import pki as certs
from webhook.errors import ConfigError


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _verify(ca: x509.Certificate, leaf: x509.Certificate, name: x509.GeneralName) -> None:
    """Full path validation (signature, validity, EKU, SAN match) the way a TLS client does it."""
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    verifier.verify(leaf, [])


def test_service_dns_names() -> None:
    assert certs.service_dns_names("inj", "sys") == [
        "inj",
        "inj.sys",
        "inj.sys.svc",
        "inj.sys.svc.cluster.local",
    ]


def test_write_bundle_sans_chain_and_modes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bundle = certs.write_bundle(out, "inj", "sys", ["10.1.2.3", "inj.example.com", "fd00::1", "localhost"])

    assert {p.name for p in out.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    ca, leaf = _load(bundle.ca_cert), _load(bundle.tls_cert)
    dns, ips = _sans(leaf)
    assert dns == [*certs.service_dns_names("inj", "sys"), "localhost", "inj.example.com"]
    assert ips == ["127.0.0.1", "::1", "10.1.2.3", "fd00::1"]
    cn = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "inj"

    leaf.verify_directly_issued_by(ca)
    for name in (
        x509.DNSName("inj.sys.svc"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
    ):
        _verify(ca, leaf, name)

    for key in (bundle.ca_key, bundle.tls_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert base64.b64decode(bundle.ca_bundle_b64) == bundle.ca_cert.read_bytes()


def test_ca_and_leaf_extensions() -> None:
    ca_key, ca = certs.generate_ca()
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    _, leaf = certs.generate_serving_cert(ca_key, ca, ["svc.ns.svc"], ["192.0.2.7"], days=10)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = leaf.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=9) < lifetime <= dt.timedelta(days=10)


def test_without_service_only_local_names(tmp_path: Path) -> None:
    bundle = certs.write_bundle(tmp_path, None, None, [])
    assert _sans(_load(bundle.tls_cert)) == (["localhost"], ["127.0.0.1", "::1"])


def test_service_without_namespace_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        certs.write_bundle(tmp_path, "inj", None, [])


def test_ensure_dev_certs_generates_once(tmp_path: Path) -> None:
    cert_dir = tmp_path / "nested" / "certs"
    ca_path = certs.ensure_dev_certs(cert_dir)
    assert ca_path == cert_dir / "ca.crt"
    before = (cert_dir / "tls.crt").read_bytes()
    assert _sans(_load(cert_dir / "tls.crt")) == (["localhost"], ["127.0.0.1", "::1"])
    _load(cert_dir / "tls.crt").verify_directly_issued_by(_load(ca_path))

    assert certs.ensure_dev_certs(cert_dir) is None
    assert (cert_dir / "tls.crt").read_bytes() == before


def test_ensure_dev_certs_regenerates_when_key_missing(tmp_path: Path) -> None:
    certs.ensure_dev_certs(tmp_path)
    (tmp_path / "tls.key").unlink()
    assert certs.ensure_dev_certs(tmp_path) == tmp_path / "ca.crt"
    assert (tmp_path / "tls.key").is_file()


def test_renew_keeps_ca_and_sans_with_new_serial(tmp_path: Path) -> None:
    bundle = certs.write_bundle(tmp_path, "inj", "sys", ["10.0.0.9"])
    old = _load(bundle.tls_cert)
    ca_before = bundle.ca_cert.read_bytes()

    renewed = certs.renew_serving_cert(tmp_path)
    new = _load(renewed.tls_cert)
    assert new.serial_number != old.serial_number
    assert _sans(new) == _sans(old)
    assert renewed.ca_bundle_b64 == bundle.ca_bundle_b64
    assert bundle.ca_cert.read_bytes() == ca_before
    new.verify_directly_issued_by(_load(bundle.ca_cert))
    assert stat.S_IMODE(renewed.tls_key.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_renew_with_explicit_sans(tmp_path: Path) -> None:
    certs.write_bundle(tmp_path, None, None, [])
    renewed = certs.renew_serving_cert(tmp_path, dns_names=["a.example"], ip_addresses=["192.0.2.1"])
    assert _sans(_load(renewed.tls_cert)) == (["a.example"], ["192.0.2.1"])


def test_renew_rejects_mismatched_ca_key_without_leaking_it(tmp_path: Path) -> None:
    certs.write_bundle(tmp_path, None, None, [])
    other = tmp_path / "other"
    certs.write_bundle(other, None, None, [])
    foreign_key = (other / "ca.key").read_bytes()
    (tmp_path / "ca.key").write_bytes(foreign_key)
    with pytest.raises(ConfigError, match="does not match") as info:
        certs.renew_serving_cert(tmp_path)
    assert b"PRIVATE KEY" not in str(info.value).encode()
