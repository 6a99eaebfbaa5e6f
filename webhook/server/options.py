"""What `serve` is told (``ServeOptions``, picklable for the workers) and loading what it
names: the config file with the flags that override it, and the certificate pair. A problem
is a ``StartupError`` of one line naming the file (or flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webhook.config import Config, example_config, load_config_file, override
from webhook.errors import ConfigError
from webhook.interface import ClusterFactory
from webhook.pki import TLS_CERT, TLS_KEY
from webhook.server.app import DEFAULT_MAX_BODY_BYTES
from webhook.server.connections import REQUEST_TIMEOUT_SECONDS
from webhook.server.review_cache import DEFAULT_ENTRIES
from webhook.server.tls import ReloadingContext

# Concurrent connections/requests per worker unless --max-connections says otherwise (the runner's bounds).
LIMIT_CONCURRENCY = 256


class StartupError(Exception):
    """The server cannot start; the message is one line naming the file (or flag) and the problem."""


@dataclass(frozen=True)
class ServeOptions:
    """Everything `serve` is told on its command line (picklable: workers receive a copy)."""

    host: str = "0.0.0.0"
    port: int = 8443
    cert_dir: Path = Path("certs")
    config_file: Path | None = None
    log_level: str = "info"
    workers: int = 1
    kubernetes_version: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    reload_interval: float = 2.0
    drain_seconds: float = 5.0
    client_ca: Path | None = None
    deadline_seconds: float | None = None  # None: the config's deadlineSeconds
    header_timeout: float = REQUEST_TIMEOUT_SECONDS
    max_connections: int = LIMIT_CONCURRENCY
    health_port: int | None = None  # None: probes and metrics on the main port only
    review_cache: int = DEFAULT_ENTRIES  # answers kept per worker for identical reviews; 0: off
    # The cluster-aware features (auto-TLS, Events, namespace defaults, the detected version):
    # a picklable factory the command line builds from webhook.cluster, called in each worker.
    cluster: ClusterFactory | None = None

    @property
    def cert_file(self) -> Path:
        return self.cert_dir / TLS_CERT

    @property
    def key_file(self) -> Path:
        return self.cert_dir / TLS_KEY


def one_line(error: BaseException) -> str:
    """Config errors list one problem per line; a startup failure must be a single stderr line."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def load_config(options: ServeOptions) -> Config:
    """The config file (or the built-in example), with --kubernetes-version and
    --deadline-seconds applied on top (so a reloaded file keeps them too)."""
    config = load_config_file(options.config_file) if options.config_file else example_config()
    overrides = (("kubernetesVersion", options.kubernetes_version or None, "--kubernetes-version"),
                 ("deadlineSeconds", options.deadline_seconds, "--deadline-seconds"))
    for key, value, flag in overrides:
        config = override(config, key, value, flag)
    return config


def load_tls(options: ServeOptions) -> ReloadingContext:
    try:
        return ReloadingContext(options.cert_file, options.key_file, options.client_ca)
    except ConfigError as error:
        raise StartupError(one_line(error)) from None
    except OSError as error:
        raise StartupError(f"{error.filename or options.cert_dir}: cannot read ({error.strerror})") from None
