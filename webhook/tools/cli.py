"""Command line: serve | certs | manifests | replay | inject | uninject | explain | report.

This module is the command line's surface: every command, flag and environment variable,
and ``main``, which parses and dispatches to ``webhook.tools.commands``. Every `serve` option
can also come from an environment variable (the flag wins), which is how the Deployment and
local shells configure the same binary. Failures print one line to stderr and exit 1; usage
errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from webhook.kubeversion import KubeVersion
from webhook.server.app import DEFAULT_MAX_BODY_BYTES
from webhook.server.logging_setup import LEVELS

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


def _kube_version(text: str) -> KubeVersion:
    try:
        return KubeVersion.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        "kubernetesVersion), e.g. 1.29, or auto: read from the cluster", metavar="X.Y")
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
    _cluster_options(serve, environ)


def _duration(text: str) -> float:
    """Seconds, or a number with s, m, h or d (90s, 15m, 720h, 365d)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        value = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 720h or 365d") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive duration")
    return value


def _env_flag(parser: argparse.ArgumentParser, environ: Mapping[str, str], flag: str, help: str) -> None:
    """An on/off option; SIDECAR_INJECTOR_<FLAG>=true (or 1, yes) turns it on too."""
    env = ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()
    default = environ.get(env, "").strip().lower() in ("1", "true", "yes")
    parser.add_argument(flag, action="store_true", default=default, help=f"{help} [env {env}=true; default: off]")


def _cluster_options(serve: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The cluster-aware features: each talks to the Kubernetes API (in-cluster credentials, else
    KUBECONFIG) in the background, none on a review's path; each needs the RBAC of
    manifests/overlays/cluster-aware."""
    group = serve.add_argument_group("cluster-aware features (off unless asked for; see README)")

    def opt(flag: str, default: object, help: str, **kwargs: object) -> None:
        _add_env_option(group, environ, flag, default, help, **kwargs)  # type: ignore[arg-type]

    _env_flag(group, environ, "--auto-tls", "make and rotate the CA and serving certificate: one replica (holding "  # type: ignore[arg-type]
              "a Lease) keeps them in a Secret and writes the caBundle into the webhook configuration, every "
              "replica serves them from --cert-dir; /readyz fails until they are loaded")
    opt("--auto-tls-secret", "sidecar-injector-auto-tls", "the Secret auto-TLS keeps its CA and serving pair in",
        metavar="NAME")
    opt("--auto-tls-webhook-configuration", "sidecar-injector", "the MutatingWebhookConfiguration whose webhooks "
        "get the caBundle", metavar="NAME")
    opt("--auto-tls-service", "sidecar-injector", "the Service the API server calls (the serving certificate's "
        "names: NAME, NAME.NAMESPACE, NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.cluster.local)", metavar="NAME")
    group.add_argument("--auto-tls-host", action="append", default=[], metavar="HOST",
                       help="another name or IP address for the serving certificate (repeatable)")
    opt("--auto-tls-ca-lifetime", "365d", "the CA's life; it is rotated, with an overlap, at two thirds of it",
        type=_duration, metavar="DURATION")
    opt("--auto-tls-cert-lifetime", "30d", "the serving certificate's life; renewed at two thirds of it",
        type=_duration, metavar="DURATION")
    opt("--auto-tls-propagation-seconds", 10.0, "after the webhook configuration holds a new CA, wait this long "
        "before serving a certificate from it (the API server's cache)", type=_seconds, metavar="SECONDS")
    opt("--lease-duration", 15.0, "seconds a leader's Lease lasts without renewal (another replica takes over "
        "after it)", type=_positive_seconds, metavar="SECONDS")
    _env_flag(group, environ, "--events", "emit an Event for every decision (Injected, InjectionSkipped, "  # type: ignore[arg-type]
              "InjectionDenied, InjectionFailed) on the Pod's controller, from a bounded queue")
    _env_flag(group, environ, "--namespace-defaults", "a namespace's sidecar-injector.io annotations are "  # type: ignore[arg-type]
              "defaults for its Pods (read from a watched cache)")
    opt("--cluster-namespace", None, "the namespace of the webhook's own Lease and Secret (default: POD_NAMESPACE, "
        "the service account's, or sidecar-injector)", metavar="NS")
    opt("--version-interval", 300.0, "seconds between reads of the API server's and the Nodes' versions "
        "(kubernetesVersion: auto)", type=_positive_seconds, metavar="SECONDS")


def version() -> str:
    """The installed package's version (a checkout run without installing says so)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sidecar-injector")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog=PROG, description="Kubernetes mutating admission webhook that injects "
                                     "sidecars, start/stop order, probes and pod info into Pods.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
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
    manifests.add_argument("--kubernetes-version", type=_kube_version, metavar="X.Y",
                           help="the oldest API server of the cluster, e.g. 1.20: the manifests use only what it "
                                "knows and the webhook emits only Pod fields it knows (default: 1.30 and newer)")

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
    """What `inject`, `uninject` and `explain` share: the manifests, and the config the webhook would use."""
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
    uninject = sub.add_parser("uninject", help="take injection out of the Pod templates of manifests "
                              "(like istioctl x kube-uninject)",
                              description="Write the manifests with what injection added to each Pod template "
                              "taken away, by what its sidecar-injector.io/status annotation records: sidecars, init "
                              "containers, volumes, what was added to the application containers (mounts, hooks, "
                              "probes), the grace period as it was, the status itself. Templates without it are "
                              "written unchanged. With the config that injected them (--config), what was changed "
                              "since is left in place; warnings go to stderr as KIND/NAME: TEXT.")
    _offline_options(uninject)
    explain = sub.add_parser("explain", help="say why each Pod template would (not) be injected, and what it gets",
                             description="For each Pod template: the decision and its reason, the warnings, and "
                             "what injection adds (sidecars, init containers, volumes, drain, grace period).")
    _offline_options(explain)
    explain.add_argument("-o", "--output", choices=("text", "json"), default="text",
                         help="text for people, json for machines (default: %(default)s)")
    report = sub.add_parser("report", help="list stale, missing and tampered sidecars in the cluster",
                            description="For the namespaces that opted in (or one), grouped by owner: Pods injected "
                            "with an older config (stale), Pods that should carry a sidecar and do not (missing), "
                            "and Pods whose injected containers were removed or changed (tampered). Reads through "
                            "the Kubernetes API (KUBECONFIG or in-cluster credentials). Exit status 1 when any Pod "
                            "is missing its sidecar, or when the report cannot be made.")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", metavar="NS", help="only this namespace")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="every namespace labelled sidecar-injector.io/inject=enabled (the default)")
    report.add_argument("-o", "--output", choices=("table", "json"), default="table",
                        help="table for people, json for machines (default: %(default)s)")
    report.add_argument("--config", type=Path, metavar="FILE",
                        help="compare with this config instead of the webhook's ConfigMap")
    report.add_argument("--kubernetes-version", metavar="X.Y",
                        help="the version injection targets, or auto (default: what the webhook's Deployment says)")
    report.add_argument("--cluster-namespace", default="sidecar-injector", metavar="NS",
                        help="the webhook's namespace, holding its ConfigMap and Deployment (default: %(default)s)")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse and dispatch; returns the exit code (2 for usage errors, via argparse's SystemExit)."""
    parser = build_parser(environ)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command != "serve":
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from webhook.tools.commands import COMMANDS  # what each command needs is imported when it runs

    return COMMANDS[args.command](args)
