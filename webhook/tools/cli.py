"""Command line: serve | certs | manifests | replay | inject | explain.

Every `serve` option can also come from an environment variable (the flag wins), which is how
the Deployment and local shells configure the same binary. Failures print one line to stderr
and exit 1; usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.server.app import DEFAULT_MAX_BODY_BYTES
from webhook.server.logging_setup import LEVELS, setup_logging

if TYPE_CHECKING:
    from webhook.config import Config

PROG = "sidecar-injector"
ENV_PREFIX = "SIDECAR_INJECTOR_"
DEFAULT_URL = "https://127.0.0.1:8443/mutate"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative integer")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return value


def _level(text: str) -> str:
    if text.lower() not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LEVELS)}")
    return text.lower()


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative number of seconds")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _add_env_option(parser: argparse.ArgumentParser, environ: Mapping[str, str], flag: str, default: object,
                    help: str, **kwargs: object) -> None:
    """An option whose default comes from SIDECAR_INJECTOR_<FLAG>; --help names both."""
    env = ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()
    shown = "built-in example config" if flag == "--config" else ("none" if default is None else default)
    value = environ.get(env, default)
    parser.add_argument(flag, default=value, help=f"{help} [env {env}; default: {shown}]", **kwargs)  # type: ignore[arg-type]


def _serve_parser(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run the webhook server (HTTPS)",
                           description="Run the admission webhook: POST /mutate, GET /healthz, /readyz, /metrics.")

    def opt(flag: str, default: object, help: str, **kwargs: object) -> None:
        _add_env_option(serve, environ, flag, default, help, **kwargs)

    opt("--host", "0.0.0.0", "address to listen on", metavar="ADDR")
    opt("--port", 8443, "port to listen on", type=_port, metavar="PORT")
    opt("--cert-dir", "./certs", "directory with tls.crt and tls.key (development certificates are generated "
        "there when both are missing); changes are picked up without a restart", metavar="DIR")
    opt("--config", None, "injection config YAML; changes are picked up without a restart", metavar="FILE")
    opt("--log-level", "info", f"log level: {', '.join(LEVELS)}", type=_level, metavar="LEVEL")
    opt("--workers", 1, "worker processes sharing the port", type=_positive_int, metavar="N")
    opt("--kubernetes-version", None, "oldest API server version served (overrides the config's "
        "kubernetesVersion), e.g. 1.29", metavar="X.Y")
    opt("--max-body-bytes", DEFAULT_MAX_BODY_BYTES, "largest accepted request body; larger ones get 413",
        type=_positive_int, metavar="BYTES")
    opt("--reload-interval", 2.0, "seconds between checks of the certificate and config files",
        type=_seconds, metavar="SECONDS")
    opt("--drain-seconds", 5.0, "after SIGTERM, fail /readyz but keep serving this long before stopping",
        type=_seconds, metavar="SECONDS")
    opt("--client-ca", None, "require client certificates signed by this CA bundle (mutual TLS); the kubelet's "
        "probes have none, so pair it with --health-port", metavar="FILE")
    opt("--deadline-seconds", None, "answer every review within this time, by the config's onError policy if "
        "need be (overrides the config's deadlineSeconds, 2 unless set; keep it under the webhook's "
        "timeoutSeconds)", type=_positive_seconds, metavar="SECONDS")
    opt("--header-timeout", 10.0, "a request (TLS handshake, headers and body) must arrive within this time; "
        "slower clients get 408 and are disconnected", type=_positive_seconds, metavar="SECONDS")
    opt("--max-connections", 256, "concurrent connections/requests per worker; beyond it requests get 503 "
        "at once", type=_positive_int, metavar="N")
    opt("--health-port", None, "also serve /healthz, /readyz and /metrics (only) over plain HTTP on this port, "
        "for probes that cannot present a client certificate; off unless set", type=_port, metavar="PORT")
    opt("--review-cache", 512, "answers kept per worker for reviews identical, in every field the answer "
        "depends on, but for their uid (the Pods of one ReplicaSet or Job); 0 turns the cache off",
        type=_non_negative_int, metavar="N")
    serve.add_argument("--no-review-cache", dest="review_cache", action="store_const", const=0,
                       help="same as --review-cache 0")


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog=PROG, description="Kubernetes mutating admission webhook that injects "
                                     "sidecars, start/stop order, probes and pod info into Pods.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub, environ)

    certs = sub.add_parser("certs", help="generate a CA and serving certificate; print the caBundle",
                           description="Write ca.crt, ca.key, tls.crt and tls.key to --out and print the base64 "
                           "caBundle for the MutatingWebhookConfiguration on stdout.")
    certs.add_argument("--service", default="sidecar-injector", help="Service name (default: %(default)s)")
    certs.add_argument("--namespace", default="sidecar-injector", help="its namespace (default: %(default)s)")
    certs.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    certs.add_argument("--host", action="append", default=[], metavar="NAME_OR_IP",
                       help="extra DNS name or IP for the serving certificate (repeatable)")

    manifests = sub.add_parser("manifests", help="print the install manifests with certificates filled in",
                               description="Print the manifests/ base as YAML with the caBundle, the TLS Secret "
                               "and, optionally, the config, image and failurePolicy replaced.")
    manifests.add_argument("--cert-dir", required=True, type=Path, metavar="DIR",
                           help="directory with ca.crt, tls.crt, tls.key (from `sidecar-injector certs`)")
    manifests.add_argument("--config", type=Path, metavar="FILE", help="injection config YAML for the ConfigMap")
    manifests.add_argument("--image", metavar="IMAGE", help="webhook container image")
    manifests.add_argument("--failure-policy", choices=("Fail", "Ignore"), help="failurePolicy of the webhook")

    replay = sub.add_parser("replay", help="POST every *.review.json under DIR to a running webhook",
                            description="Print each fixture's decision, warnings and decoded patch; "
                            "exit 1 if any request fails.")
    replay.add_argument("dir", nargs="?", default=Path("tests/fixtures"), type=Path, metavar="DIR",
                        help="directory searched recursively (default: %(default)s)")
    replay.add_argument("--url", default=DEFAULT_URL, help="webhook URL (default: %(default)s)")
    replay.add_argument("--cacert", type=Path, default=Path(environ.get("CACERT", "certs/ca.crt")),
                        metavar="FILE", help="CA to trust (default: $CACERT or certs/ca.crt)")
    _offline_parsers(sub)
    return parser


def _offline_options(parser: argparse.ArgumentParser) -> None:
    """What `inject` and `explain` share: the manifests, and the config the webhook would use."""
    parser.add_argument("-f", "--filename", required=True, metavar="FILE",
                        help="manifests to read, YAML (multi-document) or JSON; - reads stdin")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="injection config YAML (default: the built-in example config)")
    parser.add_argument("--kubernetes-version", metavar="X.Y",
                        help="oldest API server version served (overrides the config's kubernetesVersion), e.g. 1.29")
    parser.add_argument("-n", "--namespace", default="default", metavar="NS",
                        help="namespace of workloads that name none (default: %(default)s)")


def _offline_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    inject = sub.add_parser("inject", help="inject the Pod templates of manifests offline (like istioctl kube-inject)",
                            description="Write the manifests with every Pod template injected as the webhook would "
                            "inject its Pods; other objects pass through. JSON in gives JSON out, YAML gives YAML. "
                            "Warnings go to stderr as KIND/NAME: TEXT. A template the webhook would deny is written "
                            "unchanged, its error printed, and the exit code is 1.")
    _offline_options(inject)
    inject.add_argument("--explain", action="store_true",
                        help="also print the explanation of each decision (as `explain` does) to stderr")
    explain = sub.add_parser("explain", help="say why each Pod template would (not) be injected, and what it gets",
                             description="For each Pod template: the decision and its reason, the warnings, and "
                             "what injection adds (sidecars, init containers, volumes, drain, grace period).")
    _offline_options(explain)
    explain.add_argument("-o", "--output", choices=("text", "json"), default="text",
                         help="text for people, json for machines (default: %(default)s)")


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
    )
    try:
        return run(options)
    except StartupError as error:
        return fail(str(error))


def cmd_certs(args: argparse.Namespace) -> int:
    from webhook.errors import ConfigError
    from webhook.server.certs import write_bundle

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
                         failure_policy=args.failure_policy)
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
    from webhook.tools.offline import DocumentError, load_documents, with_kubernetes_version

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
    from webhook.tools.offline import dump_documents, format_reports, inject_documents

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


def cmd_explain(args: argparse.Namespace) -> int:
    from webhook.tools.offline import explain_documents

    loaded = _offline_input(args)
    if isinstance(loaded, int):
        return loaded
    docs, _, config = loaded
    sys.stdout.write(explain_documents(docs, config, args.namespace, args.output))
    return 0


COMMANDS = {"serve": cmd_serve, "certs": cmd_certs, "manifests": cmd_manifests, "replay": cmd_replay,
            "inject": cmd_inject, "explain": cmd_explain}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse and dispatch; returns the exit code (2 for usage errors, via argparse's SystemExit)."""
    parser = build_parser(environ)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command != "serve":
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return COMMANDS[args.command](args)
