"""What each command does: serve, certs, manifests, replay, inject, uninject, explain.

The flags and environment variables are ``webhook.tools.cli``'s; each command here gets the
parsed arguments and returns the exit code, and imports what only it needs when it runs.
Failures print one line to stderr (``fail``) and exit 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.server.logging_setup import setup_logging
from webhook.tools.cli import PROG

if TYPE_CHECKING:
    from webhook.config import Config


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.server.options import ServeOptions, StartupError
    from webhook.server.runner import run

    setup_logging(args.log_level)
    options = ServeOptions(
        host=args.host,
        port=args.port,
        cert_dir=Path(args.cert_dir),
        config_file=Path(args.config) if args.config else None,
        log_level=args.log_level,
        workers=args.workers,
        kubernetes_version=args.kubernetes_version or None,
        max_body_bytes=args.max_body_bytes,
        reload_interval=args.reload_interval,
        drain_seconds=args.drain_seconds,
        client_ca=Path(args.client_ca) if args.client_ca else None,
        deadline_seconds=args.deadline_seconds,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
        health_port=args.health_port,
        review_cache=int(args.review_cache),
        cluster=cluster_factory(args),
    )
    try:
        return run(options)
    except StartupError as error:
        return fail(str(error))


def cluster_factory(args: argparse.Namespace) -> Any:
    """The cluster-aware features asked for, as the server's factory; None when none is (then the
    webhook never talks to the API server and needs no RBAC)."""
    auto_version = args.kubernetes_version == "auto"
    if args.config and not auto_version:
        from webhook.config import load_config_file
        from webhook.errors import ConfigError

        try:
            auto_version = load_config_file(Path(args.config)).auto_version
        except (ConfigError, OSError):
            pass  # the server reports it, naming the file
    if not (args.auto_tls or args.events or args.namespace_defaults or auto_version):
        return None
    import datetime as dt

    from webhook.cluster.autotls import AutoTlsOptions
    from webhook.cluster.runtime import ClusterOptions, factory

    auto_tls = AutoTlsOptions(
        secret=args.auto_tls_secret, webhook_configuration=args.auto_tls_webhook_configuration,
        service=args.auto_tls_service, extra_hosts=tuple(args.auto_tls_host),
        ca_lifetime=dt.timedelta(seconds=args.auto_tls_ca_lifetime),
        cert_lifetime=dt.timedelta(seconds=args.auto_tls_cert_lifetime),
        propagation_seconds=args.auto_tls_propagation_seconds, lease_duration_seconds=args.lease_duration,
    ) if args.auto_tls else None
    return factory(ClusterOptions(cert_dir=Path(args.cert_dir), namespace=args.cluster_namespace or None,
                                  auto_tls=auto_tls, events=args.events, namespace_defaults=args.namespace_defaults,
                                  version_interval_seconds=args.version_interval))


def cmd_certs(args: argparse.Namespace) -> int:
    from webhook.errors import ConfigError
    from webhook.pki import write_bundle

    try:
        bundle = write_bundle(args.out, args.service, args.namespace, args.host)
    except (ConfigError, OSError) as error:
        return fail(f"{args.out}: {error}")
    for path in (bundle.ca_cert, bundle.ca_key, bundle.tls_cert, bundle.tls_key):
        print(f"wrote {path}", file=sys.stderr)
    print(f"caBundle for {args.service}.{args.namespace}.svc (stdout):", file=sys.stderr)
    print(bundle.ca_bundle_b64)
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    from webhook.config import load_config_file
    from webhook.errors import ConfigError
    from webhook.tools.render import ManifestError, dump_yaml, load_base_manifests, render

    try:
        ca, crt, key = ((args.cert_dir / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key"))
    except OSError as error:
        return fail(f"{error.filename}: cannot read ({error.strerror}); create it with `{PROG} certs --out DIR`")
    config_text = None
    if args.config is not None:
        try:
            load_config_file(args.config)
        except ConfigError as error:
            return fail(str(error).replace("\n", "; "))
        config_text = args.config.read_text(encoding="utf-8")
    try:
        objects = render(load_base_manifests(), ca, crt, key, config_yaml=config_text, image=args.image,
                         failure_policy=args.failure_policy, kubernetes_version=args.kubernetes_version)
    except ManifestError as error:
        return fail(str(error))
    sys.stdout.write(dump_yaml(objects))
    return 0


def describe_reply(name: str, status: int, body: bytes) -> tuple[bool, list[str]]:
    """Readable summary of one webhook answer (same shape as scripts/replay.sh); ok is False on errors."""
    lines = [f"== {name}  HTTP {status}"]
    try:
        data = json.loads(body)
    except ValueError:
        return False, [*lines, f"  error: response is not JSON: {body[:200]!r}"]
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        return False, [*lines, f"  error: {data.get('error', data) if isinstance(data, dict) else data}"]
    response = data["response"]
    lines.append(f"  uid: {response.get('uid')}  apiVersion: {data.get('apiVersion')}")
    audit = response.get("auditAnnotations") or {}
    if response.get("allowed"):
        detail = ", ".join(f"{k}={v}" for k, v in audit.items())
        lines.append("  decision: allowed" + (f" ({detail})" if detail else ""))
    else:
        lines.append(f"  decision: denied: {(response.get('status') or {}).get('message', '')}")
    warnings = response.get("warnings") or []
    lines.append(f"  warnings: {len(warnings) or 'none'}")
    lines += [f"    - {w}" for w in warnings]
    if response.get("patch"):
        patch = json.loads(base64.b64decode(response["patch"]))
        lines.append(f"  patch ({response.get('patchType')}, {len(patch)} operations):")
        lines += ["    " + line for line in json.dumps(patch, indent=2).splitlines()]
    else:
        lines.append("  patch: none")
    return True, lines


def cmd_replay(args: argparse.Namespace) -> int:
    files = sorted(args.dir.rglob("*.review.json"))
    if not files:
        return fail(f"{args.dir}: no *.review.json files found")
    try:
        context = ssl.create_default_context(cafile=str(args.cacert))
    except OSError as error:
        return fail(f"{args.cacert}: cannot load CA ({error.strerror or error})")
    failures = 0
    for path in files:
        request = urllib.request.Request(args.url, data=path.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            failures += 1
            print(f"== {path.relative_to(args.dir)}\n  error: {getattr(error, 'reason', error)}")
            continue
        ok, lines = describe_reply(str(path.relative_to(args.dir)), status, body)
        failures += not ok
        print("\n".join(lines))
    print(f"{len(files)} reviews, {failures} failed", file=sys.stderr)
    return 1 if failures else 0


def _offline_input(args: argparse.Namespace) -> tuple[list[Any], str, Config] | int:
    """The parsed documents, their format and the config; or the exit code of a failure."""
    from webhook.config import example_config, load_config_file
    from webhook.errors import ConfigError
    from webhook.tools.documents import DocumentError, load_documents
    from webhook.tools.offline import with_kubernetes_version

    source = "stdin" if args.filename == "-" else args.filename
    try:
        text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text(encoding="utf-8")
        docs, fmt = load_documents(text)
    except OSError as error:
        return fail(f"{source}: cannot read ({error.strerror or error})")
    except UnicodeDecodeError:
        return fail(f"{source}: not UTF-8 text")
    except DocumentError as error:
        return fail(f"{source}: {' '.join(str(error).split())}")
    try:
        config = load_config_file(args.config) if args.config else example_config()
        config = with_kubernetes_version(config, args.kubernetes_version)
    except ConfigError as error:
        return fail(str(error).replace("\n", "; "))
    return docs, fmt, config


def cmd_inject(args: argparse.Namespace) -> int:
    from webhook.tools.documents import dump_documents
    from webhook.tools.explain import format_reports
    from webhook.tools.offline import inject_documents

    loaded = _offline_input(args)
    if isinstance(loaded, int):
        return loaded
    docs, fmt, config = loaded
    result = inject_documents(docs, config, args.namespace)
    sys.stdout.write(dump_documents(result.documents, fmt))
    if args.explain:
        sys.stderr.write(format_reports(result.reports))
    else:
        for report in result.reports:
            for warning in report.warnings:
                print(f"{report.workload}: {warning}", file=sys.stderr)
            if report.allowed and report.decision != "injected" and report.reason != "already-injected":
                print(f"{report.workload}: {report.decision}: {report.message}", file=sys.stderr)
    for report in result.denied:
        fail(f"{report.workload}: {report.message}")
    return 1 if result.denied else 0


def cmd_uninject(args: argparse.Namespace) -> int:
    from webhook.tools.documents import dump_documents
    from webhook.tools.offline import uninject_documents

    loaded = _offline_input(args)
    if isinstance(loaded, int):
        return loaded
    docs, fmt, config = loaded
    documents, reports = uninject_documents(docs, config, args.namespace)
    sys.stdout.write(dump_documents(documents, fmt))
    for report in reports:
        for warning in report.warnings:
            print(f"{report.workload}: {warning}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from webhook.tools.explain import explain_documents

    loaded = _offline_input(args)
    if isinstance(loaded, int):
        return loaded
    docs, _, config = loaded
    sys.stdout.write(explain_documents(docs, config, args.namespace, args.output))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import asyncio

    import httpx2
    from lightkube import ApiError
    from lightkube import ConfigError as KubeConfigError
    from prometheus_client import CollectorRegistry

    from webhook.cluster.client import connect
    from webhook.cluster.metrics import create_cluster_metrics
    from webhook.cluster.report import gather, webhook_config, with_detected_version
    from webhook.config import load_config_file, override
    from webhook.errors import ConfigError

    async def run() -> Any:
        cluster = connect(args.cluster_namespace, create_cluster_metrics(CollectorRegistry()))
        try:
            if args.config is not None:
                config = override(load_config_file(args.config), "kubernetesVersion", args.kubernetes_version,
                                  "--kubernetes-version")
                config = await with_detected_version(cluster, config)
            else:
                config = await webhook_config(cluster, args.kubernetes_version)
            return await gather(cluster, config, args.namespace)
        finally:
            await cluster.client.close()

    try:
        report = asyncio.run(run())
    except (ConfigError, KubeConfigError, OSError) as error:
        return fail(str(error).replace("\n", "; "))
    except ApiError as error:
        return fail(f"the Kubernetes API refused: {error.status.message}")
    except httpx2.HTTPError as error:
        return fail(f"the Kubernetes API cannot be reached: {error}")
    if args.output == "json":
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(report.as_table())
    return 1 if report.totals().get("missing", 0) else 0


COMMANDS = {"serve": cmd_serve, "certs": cmd_certs, "manifests": cmd_manifests, "replay": cmd_replay,
            "inject": cmd_inject, "uninject": cmd_uninject, "explain": cmd_explain, "report": cmd_report}
