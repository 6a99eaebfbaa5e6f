"""Auto-TLS's plan, step by step on a simulated clock: renewals keep the caBundle, a CA rotation
never lets a replica serve a leaf the bundle does not hold, and the old CA leaves only when
every replica serves the new one."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography import x509

from webhook import pki
from webhook.cluster.tls_state import (
    TlsSettings,
    TlsState,
    bundle,
    dump,
    issuer_id,
    key_id,
    parse,
    plan,
    renew_at,
    servable,
    trusted,
)

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
SETTINGS = TlsSettings(dns_names=("sidecar-injector.sidecar-injector.svc",), ip_addresses=("127.0.0.1",),
                       ca_lifetime=dt.timedelta(minutes=90), cert_lifetime=dt.timedelta(minutes=30),
                       propagation_seconds=10)


def _step(state: TlsState, now: dt.datetime, webhook: bytes | None = None,
          replicas: list[str] | None = None) -> tuple[TlsState, str | None]:
    new, action = plan(state, now, SETTINGS, webhook, replicas)
    # What is written is what is read back: the Secret round trip loses nothing.
    data, annotations = dump(new)
    assert dump(parse(data, annotations)) == (data, annotations)
    return new, action


def _fresh() -> TlsState:
    state, action = _step(TlsState(), T0)
    assert action == "created a CA and a serving certificate"
    return state


def test_the_first_pair_is_served_only_once_the_webhook_configuration_holds_its_ca() -> None:
    """A replica serving a leaf the API server cannot verify yet would be ready, get reviews and
    fail every one with 'x509: certificate signed by unknown authority'."""
    state = _fresh()
    assert not servable(state)
    other = pki.cert_pem(pki.generate_ca(now=T0)[1])
    for held in (None, b"", other, other + bundle(state)):  # unknown, a fresh install, the CLI's CA, more
        assert _step(state, T0, webhook=held) == (state, None)
    confirmed, action = _step(state, T0, webhook=bundle(state))
    assert action == "the webhook configuration holds the bundle"
    assert servable(confirmed) and confirmed.leaf == state.leaf and bundle(confirmed) == bundle(state)
    assert _step(confirmed, T0, webhook=bundle(state)) == (confirmed, None)
    # A renewal keeps the bundle, so the renewed pair is served at once.
    renewed, _ = _step(confirmed, renew_at(state.leaf.cert, 2 / 3), webhook=bundle(state))
    assert servable(renewed) and renewed.leaf != state.leaf


def test_a_first_plan_makes_a_ca_and_a_serving_pair_for_the_service() -> None:
    state = _fresh()
    leaf = state.leaf.cert
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sidecar-injector.sidecar-injector.svc"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert issuer_id(leaf) == key_id(state.ca.cert)
    assert bundle(state) == pki.cert_pem(state.ca.cert)
    assert trusted(pki.cert_pem(leaf), state)
    assert leaf.not_valid_after_utc == T0 + dt.timedelta(minutes=30)
    assert _step(state, T0 + dt.timedelta(minutes=1)) == (state, None)  # nothing to do


def test_the_serving_pair_is_renewed_at_two_thirds_of_its_life_from_the_same_ca() -> None:
    state = _fresh()
    due = renew_at(state.leaf.cert, 2 / 3)
    assert due == T0 + dt.timedelta(minutes=20)
    assert _step(state, due - dt.timedelta(seconds=1))[1] is None
    renewed, action = _step(state, due)
    assert action.startswith("renewed the serving certificate")
    assert renewed.ca == state.ca and bundle(renewed) == bundle(state)  # the caBundle stays
    assert renewed.leaf.cert.serial_number != state.leaf.cert.serial_number


def test_a_ca_rotation_keeps_every_served_leaf_in_the_bundle() -> None:
    state = _fresh()
    old_ca = state.ca.cert
    now = renew_at(old_ca, 2 / 3)  # 60 minutes in; the leaf was renewed on the way in a real run
    state, action = _step(state, now)
    assert action == "CA rotation started: a new CA joins the bundle"
    assert bundle(state) == pki.cert_pem(old_ca) + pki.cert_pem(state.next_ca.cert)
    # Phase 1: the serving pair may not move to the new CA before the API server trusts it.
    assert _step(state, now + dt.timedelta(minutes=5), webhook=None)[1] is None
    assert _step(state, now + dt.timedelta(minutes=5), webhook=pki.cert_pem(old_ca))[1] is None
    assert not servable(state)  # replicas keep the pair they serve
    state, action = _step(state, now, webhook=bundle(state))
    assert action == "the webhook configuration holds the bundle"
    assert servable(state) and state.bundle_confirmed_at is None
    state, action = _step(state, now, webhook=bundle(state))
    assert action == "the webhook configuration holds the new CA"
    assert servable(state)
    assert _step(state, now + dt.timedelta(seconds=9), webhook=bundle(state))[1] is None
    before = state
    state, action = _step(state, now + dt.timedelta(seconds=10), webhook=bundle(before))
    assert action == "serving a certificate from the new CA"
    assert issuer_id(state.leaf.cert) == key_id(before.next_ca.cert)
    assert bundle(state) == bundle(before)  # phase 2: both CAs, old first
    assert trusted(pki.cert_pem(state.leaf.cert), state) and trusted(pki.cert_pem(before.leaf.cert), state)
    assert servable(state)  # the bundle did not change: the new CA's pair is served at once
    # Phase 2: the old CA stays while any replica still serves a leaf of it (or is unknown).
    later = now + dt.timedelta(seconds=20)
    assert _step(state, later, replicas=None)[1] is None
    assert _step(state, later, replicas=[key_id(old_ca), key_id(state.ca.cert)])[1] is None
    state, action = _step(state, later, replicas=[key_id(state.ca.cert)] * 2)
    assert action == "every replica serves the new CA: the old one left the bundle"
    assert bundle(state) == pki.cert_pem(state.ca.cert)
    assert not trusted(pki.cert_pem(before.leaf.cert), state)
    assert _step(state, later, webhook=bundle(state))[1] == "the webhook configuration holds the bundle"


def test_the_old_ca_leaves_the_bundle_when_it_expires_even_if_a_replica_lags() -> None:
    state = _fresh()
    state = TlsState(ca=state.ca, leaf=state.leaf, previous_ca=pki.generate_ca(lifetime=dt.timedelta(minutes=1),
                                                                               now=T0)[1])
    assert _step(state, T0 + dt.timedelta(minutes=2), replicas=["someone-else"])[0].previous_ca is None


@pytest.mark.parametrize("damage", ["missing", "garbage", "mismatched", "expired"])
def test_an_unusable_ca_is_replaced(damage: str) -> None:
    state = _fresh()
    data, annotations = dump(state)
    if damage == "missing":
        del data["ca.key"]
    elif damage == "garbage":
        data["ca.crt"] = b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    elif damage == "mismatched":
        data["ca.key"] = pki.key_pem(pki.generate_ca()[0])
    now = T0 + (dt.timedelta(hours=2) if damage == "expired" else dt.timedelta(minutes=1))
    new, action = _step(parse(data, annotations), now)
    assert action == "created a CA and a serving certificate"
    assert new.ca.cert != state.ca.cert


def test_a_leaf_with_other_names_or_another_issuer_is_reissued() -> None:
    state = _fresh()
    other = TlsSettings(dns_names=("elsewhere.svc",), ip_addresses=(), ca_lifetime=SETTINGS.ca_lifetime,
                        cert_lifetime=SETTINGS.cert_lifetime)
    moved, action = plan(state, T0, other, None, None)
    assert action == "renewed the serving certificate (the serving certificate's names differ from the Service's)"
    foreign_key, foreign = pki.generate_ca(now=T0)
    key, leaf = pki.generate_serving_cert(foreign_key, foreign, ["x"], [], now=T0)
    stray = TlsState(ca=state.ca, leaf=type(state.leaf)(leaf, key))
    assert _step(stray, T0)[1] == "renewed the serving certificate (the serving certificate is not from the current CA)"


def test_the_bundle_verifies_the_served_chain_as_a_tls_client_would() -> None:
    """What the API server does with the caBundle: verify the leaf's signature and names."""
    state = _fresh()
    context = ssl.create_default_context(cadata=bundle(state).decode())
    assert context.cert_store_stats()["x509_ca"] == 1
