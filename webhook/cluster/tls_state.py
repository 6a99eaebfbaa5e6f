"""Auto-TLS's state and its one-step plan: pure, so every rotation path is tested without a cluster.

The state lives in one Secret (``parse`` / ``dump``): the CA that signs the serving pair, the
serving pair, and during a CA rotation the next CA (phase 1) or the previous one (phase 2).
The webhook configuration's caBundle (``bundle``) always holds every CA a replica may be
serving a leaf of, so the API server never meets a certificate it cannot verify:

0. a replica serves the Secret's pair only once the leader has seen the webhook configuration
   hold the Secret's bundle (``servable``: the bundle's digest, recorded in an annotation), so
   on a fresh start no replica is ready before the API server can verify it (it would be sent
   reviews and fail them with "unknown authority"); the Secret, of type kubernetes.io/tls,
   always holds a pair;
1. steady: the serving pair is renewed at ``renew_fraction`` of its life (two thirds), from the
   same CA, so the caBundle does not change;
2. at two thirds of the CA's life a next CA is made and added to the bundle (old + new); once
   the leader has seen the webhook configuration hold that bundle, it waits
   ``propagation_seconds`` more (the API server's informer), then
3. issues the serving pair from the new CA (the old CA stays in the bundle as "previous"), and
4. drops the old CA from the bundle once every live replica reports serving a leaf of the new one.

``plan`` takes one step at a time; the leader calls it on every check and writes what changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from webhook import pki

CONFIRMED_ANNOTATION = "sidecar-injector.io/bundle-confirmed-at"
HELD_ANNOTATION = "sidecar-injector.io/webhook-bundle-sha256"
KEYS = {"ca": ("ca.crt", "ca.key"), "leaf": ("tls.crt", "tls.key"), "next_ca": ("ca-next.crt", "ca-next.key")}
PREVIOUS_CA = "ca-previous.crt"
BUNDLE = "ca-bundle.crt"


@dataclass(frozen=True)
class Pair:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


@dataclass(frozen=True)
class TlsSettings:
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    ca_lifetime: dt.timedelta = dt.timedelta(days=365)
    cert_lifetime: dt.timedelta = dt.timedelta(days=30)
    renew_fraction: float = 2 / 3
    propagation_seconds: float = 10.0


@dataclass(frozen=True)
class TlsState:
    ca: Pair | None = None
    leaf: Pair | None = None
    next_ca: Pair | None = None
    previous_ca: x509.Certificate | None = None
    bundle_confirmed_at: dt.datetime | None = None
    held_bundle: str | None = None  # digest of the bundle the webhook configuration was seen to hold


def key_id(cert: x509.Certificate) -> str:
    """A CA's subject key identifier, hex (what its leaves carry as authority key identifier)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest.hex()  # type: ignore[arg-type]


def issuer_id(leaf: x509.Certificate) -> str | None:
    """The key identifier of the CA that issued a leaf (its authority key identifier), hex."""
    try:
        value = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None
    return value.hex() if value else None


def renew_at(cert: x509.Certificate, fraction: float) -> dt.datetime:
    """When ``fraction`` of the certificate's intended life has passed (its notBefore is backdated)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if end - start > pki.CLOCK_SKEW:
        start += pki.CLOCK_SKEW
    return start + (end - start) * fraction


def _pair(data: dict[str, bytes], cert_key: str, key_key: str) -> Pair | None:
    try:
        cert = x509.load_pem_x509_certificate(data[cert_key])
        key = serialization.load_pem_private_key(data[key_key], password=None)
    except (KeyError, ValueError, TypeError):
        return None
    if pki.spki(key.public_key()) != pki.spki(cert.public_key()):
        return None
    return Pair(cert, key)  # type: ignore[arg-type]


def parse(data: dict[str, bytes], annotations: dict[str, str]) -> TlsState:
    """The Secret's data (decoded) and annotations; unreadable parts read as absent."""
    previous = None
    if PREVIOUS_CA in data:
        try:
            previous = x509.load_pem_x509_certificate(data[PREVIOUS_CA])
        except ValueError:
            previous = None
    confirmed = None
    if CONFIRMED_ANNOTATION in annotations:
        try:
            confirmed = dt.datetime.fromisoformat(annotations[CONFIRMED_ANNOTATION])
        except ValueError:
            confirmed = None
    return TlsState(ca=_pair(data, *KEYS["ca"]), leaf=_pair(data, *KEYS["leaf"]),
                    next_ca=_pair(data, *KEYS["next_ca"]), previous_ca=previous, bundle_confirmed_at=confirmed,
                    held_bundle=annotations.get(HELD_ANNOTATION) or None)


def bundle(state: TlsState) -> bytes:
    """The caBundle: previous (phase 2), current, next (phase 1) CAs, PEM."""
    certs = [state.previous_ca, state.ca.cert if state.ca else None, state.next_ca.cert if state.next_ca else None]
    return b"".join(pki.cert_pem(cert) for cert in certs if cert is not None)


def bundle_digest(state: TlsState) -> str:
    return hashlib.sha256(bundle(state)).hexdigest()


def servable(state: TlsState) -> bool:
    """Whether replicas may serve the state's pair: the webhook configuration was seen holding
    exactly this bundle (a bundle that changed since is confirmed again before a new pair is
    served; replicas keep serving the pair they have meanwhile)."""
    return state.leaf is not None and state.held_bundle == bundle_digest(state)


def dump(state: TlsState) -> tuple[dict[str, bytes], dict[str, str]]:
    """The Secret's data and annotations for a state."""
    data: dict[str, bytes] = {}
    for attribute, (cert_key, key_key) in KEYS.items():
        pair: Pair | None = getattr(state, attribute)
        if pair is not None:
            data[cert_key] = pki.cert_pem(pair.cert)
            data[key_key] = pki.key_pem(pair.key)
    if state.previous_ca is not None:
        data[PREVIOUS_CA] = pki.cert_pem(state.previous_ca)
    data[BUNDLE] = bundle(state)
    annotations = {}
    if state.bundle_confirmed_at is not None:
        annotations[CONFIRMED_ANNOTATION] = state.bundle_confirmed_at.isoformat()
    if state.held_bundle is not None:
        annotations[HELD_ANNOTATION] = state.held_bundle
    return data, annotations


def _new_ca(settings: TlsSettings, now: dt.datetime) -> Pair:
    key, cert = pki.generate_ca("sidecar-injector-auto-tls-ca", lifetime=settings.ca_lifetime, now=now)
    return Pair(cert, key)


def _new_leaf(ca: Pair, settings: TlsSettings, now: dt.datetime) -> Pair:
    key, cert = pki.generate_serving_cert(ca.key, ca.cert, list(settings.dns_names), list(settings.ip_addresses),
                                          lifetime=settings.cert_lifetime, now=now)
    return Pair(cert, key)


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def _leaf_problem(state: TlsState, now: dt.datetime, settings: TlsSettings) -> str | None:
    leaf, ca = state.leaf, state.ca
    assert ca is not None
    if leaf is None:
        return "no serving certificate"
    if issuer_id(leaf.cert) != key_id(ca.cert):
        return "the serving certificate is not from the current CA"
    if _sans(leaf.cert) != (set(settings.dns_names), set(settings.ip_addresses)):
        return "the serving certificate's names differ from the Service's"
    if now >= renew_at(leaf.cert, settings.renew_fraction):
        return "the serving certificate is due for renewal"
    return None


def plan(state: TlsState, now: dt.datetime, settings: TlsSettings, webhook_bundle: bytes | None,
         replica_issuers: list[str] | None) -> tuple[TlsState, str | None]:
    """One step: the next state and what was done (None: nothing to do).

    ``webhook_bundle``: the caBundle the webhook configuration holds now (None: unknown);
    ``replica_issuers``: the issuer key id of the leaf each live replica serves (None: unknown).
    """
    ca = state.ca
    if ca is None or now >= ca.cert.not_valid_after_utc:
        ca = _new_ca(settings, now)
        return TlsState(ca=ca, leaf=_new_leaf(ca, settings, now)), "created a CA and a serving certificate"
    if webhook_bundle == bundle(state) and state.held_bundle != bundle_digest(state):
        return replace(state, held_bundle=bundle_digest(state)), "the webhook configuration holds the bundle"
    if state.next_ca is not None:
        if state.bundle_confirmed_at is None:
            if webhook_bundle == bundle(state):
                return replace(state, bundle_confirmed_at=now), "the webhook configuration holds the new CA"
            return state, None
        if (now - state.bundle_confirmed_at).total_seconds() < settings.propagation_seconds:
            return state, None
        new = state.next_ca
        # The bundle stays (old and new CA), and so does its confirmation.
        return (TlsState(ca=new, leaf=_new_leaf(new, settings, now), previous_ca=ca.cert,
                         held_bundle=state.held_bundle), "serving a certificate from the new CA")
    if state.previous_ca is not None:
        if now >= state.previous_ca.not_valid_after_utc or (
                replica_issuers is not None and all(i == key_id(ca.cert) for i in replica_issuers)):
            return replace(state, previous_ca=None), "every replica serves the new CA: the old one left the bundle"
    elif now >= renew_at(ca.cert, settings.renew_fraction):
        return replace(state, next_ca=_new_ca(settings, now)), "CA rotation started: a new CA joins the bundle"
    problem = _leaf_problem(state, now, settings)
    if problem is not None:
        return replace(state, leaf=_new_leaf(ca, settings, now)), f"renewed the serving certificate ({problem})"
    return state, None


def trusted(serving_pem: bytes | None, state: TlsState) -> bool:
    """Whether a served leaf comes from a CA in the bundle (so the API server accepts it)."""
    if serving_pem is None:
        return False
    try:
        leaf = x509.load_pem_x509_certificate(serving_pem)
    except ValueError:
        return False
    cas = [c for c in (state.previous_ca, state.ca and state.ca.cert, state.next_ca and state.next_ca.cert) if c]
    return issuer_id(leaf) in {key_id(c) for c in cas}
