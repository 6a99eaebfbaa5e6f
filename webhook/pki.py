"""CA and serving-certificate generation, so a cluster or a dev box needs no openssl/cfssl step.

The API server only talks to webhooks over TLS and pins the CA through the webhook's
``caBundle``; this module produces that CA, a serving certificate with the right SANs,
and the base64 bundle, and writes them so a hot-reloading server never sees half a file.
`serve` makes development certificates with it at start (``ensure_dev_certs``), the `certs`
command a bundle for a cluster.

It is one concept a little over 300 lines: issuing, writing and renewing share the file
names, the key encoding and the CA checks, and most of the length is the two certificate
builders spelling out every KeyUsage bit (an explicit ``False`` is what an auditor reads).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.errors import ConfigError

log = logging.getLogger("webhook.certs")

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

# Backdate notBefore so a node whose clock lags a little still accepts a fresh cert.
CLOCK_SKEW = dt.timedelta(minutes=5)

# Key types a CA loaded from disk may have; anything else cannot sign our leaf certificates.
_ISSUER_KEY_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


@dataclass(frozen=True)
class CertBundle:
    """Where a generated CA/serving pair was written, plus the caBundle value for the webhook config."""

    ca_cert: Path
    ca_key: Path
    tls_cert: Path
    tls_key: Path
    ca_bundle_b64: str


def _new_key() -> ec.EllipticCurvePrivateKey:
    """P-256: fast to generate, accepted by every Kubernetes API server and Go TLS stack."""
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    """EdDSA signs without a separate digest; everything else gets SHA-256."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _validity(days: int, lifetime: dt.timedelta | None, what: str) -> dt.timedelta:
    if lifetime is not None:
        if lifetime <= dt.timedelta(0):
            raise ConfigError(f"{what} lifetime {lifetime} is invalid: must be positive")
        return lifetime
    if days <= 0:
        raise ConfigError(f"{what} validity days={days} is invalid: must be a positive number of days")
    return dt.timedelta(days=days)


def generate_ca(
    common_name: str = "sidecar-injector-ca", days: int = 3650, lifetime: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Create a self-signed CA that may only sign leaf certificates (pathLen 0); ``lifetime``
    (auto-TLS, which renews at a fraction of it) takes precedence over ``days``, and ``now``
    (its plans are pure, time included) over the clock."""
    validity = _validity(days, lifetime, "CA")
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = now or _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )
    return key, cert


def split_hosts(hosts: list[str]) -> tuple[list[str], list[str]]:
    """Classify host strings into (dns_names, ip_addresses), dropping duplicates but keeping order."""
    dns_names: list[str] = []
    ips: list[str] = []
    for raw in hosts:
        host = raw.strip()
        if not host:
            raise ConfigError(f"host {raw!r} is invalid: must be a DNS name or an IP address")
        try:
            ip = str(ipaddress.ip_address(host))
        except ValueError:
            if host not in dns_names:
                dns_names.append(host)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns_names, ips


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """Prefer the CA's own SKI so AKI matches it byte for byte, even for CAs made elsewhere."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def generate_serving_cert(
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
    dns_names: list[str],
    ip_addresses: list[str],
    days: int = 365,
    lifetime: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Issue a TLS server certificate for exactly the given SANs, never outliving its CA."""
    if not dns_names and not ip_addresses:
        raise ConfigError("serving certificate needs at least one DNS name or IP address")
    validity = _validity(days, lifetime, "serving cert")
    try:
        ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as exc:
        raise ConfigError(f"ip_addresses: {exc}") from None
    key = _new_key()
    now = now or _now()
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    common_name = dns_names[0] if dns_names else str(ips[0])
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .sign(ca_key, _hash_for(ca_key))
    )
    return key, cert


def not_after(cert_pem: bytes | None) -> dt.datetime | None:
    """When the (first) certificate in a PEM expires; None if it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc if cert_pem else None
    except ValueError:
        return None


def service_dns_names(service: str, namespace: str) -> list[str]:
    """Every name the API server (or a pod) may use to reach a ClusterIP Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write via a same-dir temp file and rename, so readers see the old file or the new one, never half.

    The temp file is created with its final mode, so a key is never world-readable, not even briefly.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_serving_pair(out_dir: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    """Key first, then cert: a watcher that catches the gap sees a mismatch and keeps the old pair."""
    atomic_write(out_dir / TLS_KEY, key_pem(key), 0o600)
    atomic_write(out_dir / TLS_CERT, cert_pem(cert), 0o644)


def _bundle(out_dir: Path) -> CertBundle:
    ca_pem = (out_dir / CA_CERT).read_bytes()
    return CertBundle(
        ca_cert=out_dir / CA_CERT,
        ca_key=out_dir / CA_KEY,
        tls_cert=out_dir / TLS_CERT,
        tls_key=out_dir / TLS_KEY,
        ca_bundle_b64=base64.b64encode(ca_pem).decode("ascii"),
    )


def write_bundle(
    out_dir: Path,
    service: str | None,
    namespace: str | None,
    extra_hosts: list[str],
    *,
    ca_days: int = 3650,
    days: int = 365,
) -> CertBundle:
    """Generate a fresh CA and serving pair into out_dir (ca.crt, ca.key, tls.crt, tls.key)."""
    hosts: list[str] = []
    if service:
        if not namespace:
            raise ConfigError(f"service={service!r} needs a namespace to build its in-cluster DNS names")
        hosts += service_dns_names(service, namespace)
    hosts += list(LOCAL_HOSTS) + list(extra_hosts)
    dns_names, ips = split_hosts(hosts)
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = generate_ca(days=ca_days)
    key, cert = generate_serving_cert(ca_key, ca_cert, dns_names, ips, days=days)
    atomic_write(out_dir / CA_KEY, key_pem(ca_key), 0o600)
    atomic_write(out_dir / CA_CERT, cert_pem(ca_cert), 0o644)
    _write_serving_pair(out_dir, key, cert)
    return _bundle(out_dir)


def ensure_dev_certs(cert_dir: Path) -> Path | None:
    """Make `serve` work out of the box locally; returns ca.crt when it generated, None when certs existed."""
    if (cert_dir / TLS_CERT).is_file() and (cert_dir / TLS_KEY).is_file():
        return None
    bundle = write_bundle(cert_dir, None, None, [])
    log.warning("generated a development CA and serving certificate in %s (trust %s)", cert_dir, bundle.ca_cert)
    return bundle.ca_cert


def _load_ca(cert_dir: Path) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    """Read and cross-check ca.key/ca.crt; errors name the file but never echo key bytes."""
    ca_cert_path, ca_key_path = cert_dir / CA_CERT, cert_dir / CA_KEY
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{ca_cert_path}: cannot load CA certificate ({type(exc).__name__})") from None
    try:
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"{ca_key_path}: cannot load CA private key (unreadable, encrypted or not PEM: {type(exc).__name__})"
        ) from None
    if not isinstance(ca_key, _ISSUER_KEY_TYPES):
        raise ConfigError(f"{ca_key_path}: key type {type(ca_key).__name__} cannot sign certificates")
    if spki(ca_key.public_key()) != spki(ca_cert.public_key()):
        raise ConfigError(f"{ca_key_path}: private key does not match {ca_cert_path}")
    return ca_key, ca_cert


def spki(public_key: object) -> bytes:
    """DER SubjectPublicKeyInfo, a representation-independent way to compare public keys."""
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _current_sans(tls_cert: Path) -> tuple[list[str], list[str]] | None:
    """SANs of the certificate being replaced, so a rotation keeps serving the same names."""
    try:
        cert = x509.load_pem_x509_certificate(tls_cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def renew_serving_cert(
    cert_dir: Path,
    dns_names: list[str] | None = None,
    ip_addresses: list[str] | None = None,
    days: int = 365,
) -> CertBundle:
    """Re-issue tls.crt/tls.key from the CA already in cert_dir, to rotate without touching caBundle.

    SANs default to those of the current tls.crt (or the localhost set if it is unreadable).
    """
    ca_key, ca_cert = _load_ca(cert_dir)
    if dns_names is None and ip_addresses is None:
        current = _current_sans(cert_dir / TLS_CERT)
        dns_names, ip_addresses = current if current else split_hosts(list(LOCAL_HOSTS))
    key, cert = generate_serving_cert(ca_key, ca_cert, list(dns_names or []), list(ip_addresses or []), days=days)
    _write_serving_pair(cert_dir, key, cert)
    log.info("renewed serving certificate in %s (serial %x)", cert_dir, cert.serial_number)
    return _bundle(cert_dir)
