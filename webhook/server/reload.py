"""Certificate and config hot reload: a poll loop in each worker's event loop, so a rotated
Secret or an updated ConfigMap is served without a restart. A changed file that does not
load is rejected (and counted) while the one in use keeps serving."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from webhook.errors import ConfigError
from webhook.pki import not_after
from webhook.server.app import ServiceState
from webhook.server.metrics import Metrics, set_config_hash
from webhook.server.options import ServeOptions, load_config, one_line
from webhook.server.tls import ReloadingContext

log = logging.getLogger("webhook.server")


def file_signature(*paths: Path) -> tuple[tuple[int, int, int], ...] | None:
    """(mtime, size, inode) per file, following symlinks: a Secret/ConfigMap volume swaps ``..data``."""
    try:
        return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (os.stat(p) for p in paths))
    except OSError:
        return None


class ConfigReloader:
    """Swap in a changed config file if it is valid; otherwise keep the one in use (and say so once)."""

    def __init__(self, options: ServeOptions, state: ServiceState, loaded: object) -> None:
        """``loaded``: the file's signature taken *before* the config in ``state`` was read."""
        assert options.config_file is not None
        self.options = options
        self.path = options.config_file
        self.state = state
        self._loaded = loaded
        self._rejected: object = None

    def check(self) -> None:
        signature = file_signature(self.path)
        if signature is None or signature in (self._loaded, self._rejected):
            return
        metrics = self.state.metrics
        try:
            config = load_config(self.options)
        except ConfigError as error:
            self._rejected = signature
            metrics.config_reloads.labels(result="error").inc()
            log.warning("config change rejected, keeping the current config",
                        extra={"fields": {"file": str(self.path), "error": one_line(error),
                                          "config_hash": self.state.config.config_hash}})
            return
        old_hash = self.state.config.config_hash
        config = self.state.set_config(config)
        self._loaded, self._rejected = signature, None
        metrics.config_reloads.labels(result="success").inc()
        set_config_hash(metrics, config.config_hash, old_hash)
        log.info("config reloaded", extra={"fields": {"file": str(self.path), "config_hash": config.config_hash,
                                                      "previous_hash": old_hash}})


class CertificateReloader:
    """Drive ReloadingContext.check and count the outcome of each on-disk change."""

    def __init__(self, tls: ReloadingContext, metrics: Metrics) -> None:
        self.tls = tls
        self.metrics = metrics
        self._seen = file_signature(tls.cert_file, tls.key_file)
        self._expiry()

    def _expiry(self) -> None:
        expires = not_after(self.tls.certificate_pem)
        if expires is not None:
            self.metrics.certificate_expiry.set(expires.timestamp())

    def check(self) -> None:
        signature = file_signature(self.tls.cert_file, self.tls.key_file)
        if self.tls.check():
            self.metrics.certificate_reloads.labels(result="success").inc()
            self._expiry()
        elif signature is not None and signature != self._seen:
            # Changed on disk but not loadable (tls.py logged why); the previous pair keeps serving.
            self.metrics.certificate_reloads.labels(result="error").inc()
        self._seen = signature


async def poll(interval: float, checks: list[Callable[[], None]]) -> None:
    """Polling works on every volume type (inotify misses Secret symlink swaps on some)."""
    while True:
        await asyncio.sleep(interval)
        for check in checks:
            try:
                check()
            except Exception:  # a dead watcher would silently stop all future reloads
                log.exception("reload check failed")
