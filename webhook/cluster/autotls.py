"""`--auto-tls`: the webhook makes and rotates its own CA and serving pair, like Vault's injector,
without its outages.

- The replica holding the Lease (``leader``) is the only writer: it keeps the state in one
  Secret and writes its caBundle into every webhook of the MutatingWebhookConfiguration,
  taking one step of ``tls_state.plan`` per check (renewal at two thirds of a certificate's
  life, CA rotation with an overlap). Losing the Lease (a killed process) hands the writing
  over within the Lease's duration.
- Every replica watches the Secret and writes the serving pair into its --cert-dir, where the
  server's certificate reloader picks it up (no restart), and reports on a Lease of its own
  which CA issued the leaf it serves, so the leader drops an old CA only when nobody serves it.
- /readyz fails until the server serves a leaf of a CA in the bundle (a development placeholder
  is served until then); a replica installs the Secret's pair only once the leader has seen the
  webhook configuration hold the Secret's bundle, so a ready replica is one the API server can
  verify.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from lightkube import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.admissionregistration_v1 import MutatingWebhookConfiguration
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from webhook import pki
from webhook.cluster.client import Cluster
from webhook.cluster.leader import LeaderElector
from webhook.cluster.tls_state import TlsSettings, TlsState, bundle, dump, issuer_id, parse, plan, servable, trusted

log = logging.getLogger("webhook.cluster.autotls")
FEATURE = "auto-tls"
REPLICA_LABEL = "sidecar-injector.io/auto-tls-replica-of"
SERVING_ISSUER = "sidecar-injector.io/serving-issuer"


@dataclass(frozen=True)
class AutoTlsOptions:
    secret: str = "sidecar-injector-auto-tls"
    webhook_configuration: str = "sidecar-injector"
    service: str = "sidecar-injector"
    extra_hosts: tuple[str, ...] = ()
    ca_lifetime: dt.timedelta = dt.timedelta(days=365)
    cert_lifetime: dt.timedelta = dt.timedelta(days=30)
    propagation_seconds: float = 10.0
    lease_duration_seconds: float = 15.0


def _decode(secret: Secret) -> tuple[dict[str, bytes], dict[str, str]]:
    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    return data, dict((secret.metadata.annotations if secret.metadata else None) or {})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AutoTls:
    def __init__(self, cluster: Cluster, options: AutoTlsOptions, cert_dir: Path,
                 serving_certificate: Callable[[], bytes | None]) -> None:
        self.cluster = cluster
        self.options = options
        self.cert_dir = cert_dir
        self.serving_certificate = serving_certificate
        hosts = [*pki.service_dns_names(options.service, cluster.namespace), *options.extra_hosts]
        dns_names, ips = pki.split_hosts(hosts)
        self.settings = TlsSettings(tuple(dns_names), tuple(ips), options.ca_lifetime, options.cert_lifetime,
                                    propagation_seconds=options.propagation_seconds)
        self.state = TlsState()  # the Secret as last read by this replica
        self.configuration_missing = False  # the leader found no webhook configuration (warned once)
        self.elector = LeaderElector(cluster, f"{options.secret}-leader",
                                     duration_seconds=options.lease_duration_seconds,
                                     renew_seconds=max(1.0, options.lease_duration_seconds / 3),
                                     retry_seconds=max(1.0, options.lease_duration_seconds / 7))
        self.replica_lease = "sidecar-injector-replica-" + hashlib.sha256(cluster.identity.encode()).hexdigest()[:12]
        # Checks often enough that a renewal due at two thirds of the shortest life is never late.
        self.check_seconds = max(1.0, min(30.0, options.cert_lifetime.total_seconds() / 20))

    # -- every replica ---------------------------------------------------------------------------

    def not_ready_reasons(self) -> list[str]:
        if trusted(self.serving_certificate(), self.state):
            return []
        return [f"auto-tls: waiting for a serving certificate from Secret {self.cluster.namespace}/{self.options.secret}"
                f" (served once MutatingWebhookConfiguration {self.options.webhook_configuration} holds its CA)"]

    def _install(self, secret: Secret) -> None:
        self.state = parse(*_decode(secret))
        leaf = self.state.leaf
        if leaf is None or not servable(self.state):
            return  # keep serving what we have until the webhook configuration holds this bundle
        cert, key = pki.cert_pem(leaf.cert), pki.key_pem(leaf.key)
        current = self.cert_dir / pki.TLS_CERT
        if current.is_file() and current.read_bytes() == cert:
            return
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        # Key first, then certificate: the reloader keeps the old pair while they do not match.
        pki.atomic_write(self.cert_dir / pki.TLS_KEY, key, 0o600)
        pki.atomic_write(current, cert, 0o644)
        (self.cert_dir / pki.CA_CERT).write_bytes(bundle(self.state))
        log.info("serving pair from the Secret written", extra={"fields": {
            "secret": self.options.secret, "serial": f"{leaf.cert.serial_number:x}",
            "not_after": leaf.cert.not_valid_after_utc.isoformat()}})

    async def _read_secret(self) -> Secret | None:
        return await self.cluster.guarded(
            FEATURE, f"get Secret {self.cluster.namespace}/{self.options.secret}",
            self._get(Secret, self.options.secret, namespace=self.cluster.namespace))

    async def _get(self, resource: type, name: str, namespace: str | None = None) -> object:
        try:
            return await self.cluster.client.get(resource, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return _MISSING
            raise

    async def watch_secret(self) -> None:
        """Follow the Secret as it changes (a watch that ends or fails is started again)."""
        while True:
            await self.cluster.guarded(FEATURE, f"watch Secret {self.cluster.namespace}/{self.options.secret}",
                                       self._watch_once())
            await asyncio.sleep(self.check_seconds)

    async def _watch_once(self) -> None:
        async for _, secret in self.cluster.client.watch(
                Secret, namespace=self.cluster.namespace, fields={"metadata.name": self.options.secret}):
            self._install(secret)

    async def poll_secret(self) -> None:
        """Read the Secret on every check too: a watch can miss an event."""
        while True:
            secret = await self._read_secret()
            if isinstance(secret, Secret):
                self._install(secret)
            await asyncio.sleep(self.check_seconds)

    async def report_serving(self) -> None:
        """Keep a Lease of our own saying which CA issued the leaf this replica serves."""
        while True:
            issuer = ""
            served = self.serving_certificate()
            if served is not None:
                try:
                    issuer = issuer_id(x509.load_pem_x509_certificate(served)) or ""
                except ValueError:
                    issuer = ""
            await self.cluster.guarded(FEATURE, "update its replica Lease", self._renew_replica(issuer))
            await asyncio.sleep(self.elector.renew)

    async def _renew_replica(self, issuer: str) -> None:
        client, namespace = self.cluster.client, self.cluster.namespace
        now = _now()
        lease = Lease(metadata=ObjectMeta(name=self.replica_lease, namespace=namespace,
                                          labels={REPLICA_LABEL: self.options.secret},
                                          annotations={SERVING_ISSUER: issuer}),
                      spec=LeaseSpec(holderIdentity=self.cluster.identity, renewTime=now,
                                     leaseDurationSeconds=int(self.options.lease_duration_seconds)))
        found = await self._get(Lease, self.replica_lease, namespace=namespace)
        if found is _MISSING:
            await client.create(lease)
        else:
            lease.metadata.resourceVersion = found.metadata.resourceVersion  # type: ignore[attr-defined]
            await client.replace(lease)

    async def _replica_issuers(self) -> list[str] | None:
        """The issuer each live replica reports (None: the list could not be read)."""
        leases = await self.cluster.guarded(FEATURE, "list the replica Leases", self._list_replicas())
        if leases is None:
            return None
        now = _now()
        live = []
        for lease in leases:
            spec = lease.spec or LeaseSpec()
            age = (now - spec.renewTime).total_seconds() if spec.renewTime else float("inf")
            duration = spec.leaseDurationSeconds or self.options.lease_duration_seconds
            # Generous: three durations, so a replica on a node whose clock lags still counts.
            if age < 3 * duration:
                live.append((lease.metadata.annotations or {}).get(SERVING_ISSUER, ""))
            elif age > 20 * duration:  # a killed replica's: nobody renews it any more
                await self.cluster.guarded(FEATURE, "delete a dead replica's Lease", self.cluster.client.delete(
                    Lease, lease.metadata.name, namespace=self.cluster.namespace))
        return live

    async def _list_replicas(self) -> list[Lease]:
        return [lease async for lease in self.cluster.client.list(
            Lease, namespace=self.cluster.namespace, labels={REPLICA_LABEL: self.options.secret})]

    async def stop(self) -> None:
        await self.elector.release()
        await self.cluster.guarded(FEATURE, "delete its replica Lease", self.cluster.client.delete(
            Lease, self.replica_lease, namespace=self.cluster.namespace))

    # -- the leader ------------------------------------------------------------------------------

    async def lead(self) -> None:
        """While leading: one plan step per check, written to the Secret, the bundle to the webhooks."""
        while True:
            await self.elector.became_leader.wait()
            if self.elector.is_leader:
                await self.cluster.guarded(FEATURE, "keep the certificates", self._check())
            # The pair not servable yet (it waits for the webhook configuration to hold the bundle,
            # which kubectl may apply after the Deployment): look again soon, not a period later.
            await asyncio.sleep(self.check_seconds if servable(self.state) else min(self.check_seconds, 1.0))

    async def _webhook_bundle(self) -> tuple[MutatingWebhookConfiguration | None, bytes | None]:
        found = await self._get(MutatingWebhookConfiguration, self.options.webhook_configuration)
        if found is _MISSING:
            if not self.configuration_missing:  # once, not on every look while it is missing
                log.warning("no MutatingWebhookConfiguration to write the caBundle into: no replica serves "
                            "the Secret's certificate until it exists", extra={"fields": {"name": self.options.webhook_configuration}})
            self.configuration_missing = True
            return None, None
        self.configuration_missing = False
        bundles = {(hook.clientConfig.caBundle or "") for hook in found.webhooks or []}  # type: ignore[attr-defined]
        value = base64.b64decode(bundles.pop()) if len(bundles) == 1 else None
        return found, value  # type: ignore[return-value]

    async def _check(self) -> None:
        for _ in range(MAX_STEPS):
            if not self.elector.is_leader:
                return
            secret = await self._get(Secret, self.options.secret, namespace=self.cluster.namespace)
            state = TlsState() if secret is _MISSING else parse(*_decode(secret))  # type: ignore[arg-type]
            configuration, held = await self._webhook_bundle()
            if configuration is not None and held != bundle(state) and state.ca is not None:
                await self._write_bundle(configuration, bundle(state))
                held = bundle(state)
            new, action = plan(state, _now(), self.settings, held, await self._replica_issuers())
            if action is None:
                return
            if not self.elector.is_leader:
                return  # leadership lapsed while we worked: the next leader will redo this step
            await self._write_secret(secret, new)
            log.info(f"auto-tls: {action}", extra={"fields": {"secret": self.options.secret}})

    async def _write_secret(self, existing: object, state: TlsState) -> None:
        data, annotations = dump(state)
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        meta = ObjectMeta(name=self.options.secret, namespace=self.cluster.namespace, annotations=annotations,
                          labels={"app.kubernetes.io/name": "sidecar-injector", "app.kubernetes.io/part-of":
                                  "sidecar-injector"})
        if existing is _MISSING:
            await self.cluster.client.create(Secret(metadata=meta, type="kubernetes.io/tls", data=encoded))
        else:
            meta.resourceVersion = existing.metadata.resourceVersion  # type: ignore[attr-defined]
            await self.cluster.client.replace(Secret(metadata=meta, type="kubernetes.io/tls", data=encoded))
        self._install(Secret(metadata=meta, type="kubernetes.io/tls", data=encoded))

    async def _write_bundle(self, configuration: MutatingWebhookConfiguration, pem: bytes) -> None:
        value = base64.b64encode(pem).decode()
        ops = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": value}
               for i in range(len(configuration.webhooks or []))]
        await self.cluster.client.patch(MutatingWebhookConfiguration, self.options.webhook_configuration, ops,
                                        patch_type=PatchType.JSON)
        log.info("caBundle written to the webhook configuration", extra={"fields": {
            "name": self.options.webhook_configuration, "cas": pem.count(b"BEGIN CERTIFICATE")}})


_MISSING = object()
MAX_STEPS = 4  # plan steps per check: a fresh start takes two (the CA and pair; the bundle, confirmed); a rotation one each
