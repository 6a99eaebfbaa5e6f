"""Hardened server SSL context plus certificate hot reload, so rotating a Secret needs no restart.

Reload design: the server gets one *outer* context that never changes. Its ``sni_callback``
(which OpenSSL runs for every ClientHello, with ``server_name=None`` when the client sends no
SNI, e.g. when it dials an IP) points the new connection at the newest *inner* context, built
and validated off to the side. Swapping is a single reference assignment, so:

* a broken or half-written pair never touches anything live (``load_cert_chain`` on a live
  context would leave it holding the new cert with no usable key if the key failed to load);
* there is no window where a concurrent handshake sees the new cert with the old key;
* connections already established keep the SSL object (and cert) they were created with.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from webhook.errors import ConfigError
from webhook.pki import spki

log = logging.getLogger("webhook.tls")

# TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only. TLS 1.3 suites are all AEAD already.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

_FileSig = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


def _refuse_password() -> bytes:
    """Stop OpenSSL from prompting on a terminal for an encrypted key; we only support plain keys."""
    raise ConfigError("private key is encrypted; an unencrypted PEM key is required")


def _diagnose(cert_file: Path, key_file: Path) -> str:
    """Explain why OpenSSL rejected the pair; messages name files, never key contents."""
    try:
        cert_pem = cert_file.read_bytes()
    except OSError as exc:
        return f"{cert_file}: cannot read certificate ({exc.strerror or type(exc).__name__})"
    try:
        key_pem = key_file.read_bytes()
    except OSError as exc:
        return f"{key_file}: cannot read private key ({exc.strerror or type(exc).__name__})"
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        return f"{cert_file}: no valid PEM certificate found"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return f"{key_file}: private key is encrypted; an unencrypted PEM key is required"
    except (ValueError, UnsupportedAlgorithm):
        return f"{key_file}: not a valid PEM private key"
    if spki(key.public_key()) != spki(cert.public_key()):
        return f"{key_file}: private key does not match certificate {cert_file}"
    return f"{cert_file}/{key_file}: rejected by OpenSSL"


def build_server_context(cert_file: Path, key_file: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server context with TLS >= 1.2, ECDHE+AEAD only, no compression or renegotiation.

    With client_ca, clients must present a certificate signed by that CA (mutual TLS).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS_CIPHERS)
    ctx.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_NO_RENEGOTIATION
        | ssl.OP_SINGLE_DH_USE
        | ssl.OP_SINGLE_ECDH_USE
        | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_refuse_password)
    except ConfigError as exc:
        raise ConfigError(f"{key_file}: {exc}") from None
    except (OSError, ValueError):  # ssl.SSLError is an OSError; neither carries key bytes, but stay terse
        raise ConfigError(f"cannot load TLS certificate/key: {_diagnose(cert_file, key_file)}") from None
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=client_ca)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{client_ca}: cannot load client CA bundle ({exc})") from None
    return ctx


def _signature(cert_file: Path, key_file: Path) -> tuple[_FileSig, _FileSig]:
    """Identity of the pair on disk; os.stat follows the Secret volume's ``..data`` symlink swap."""
    sigs: list[_FileSig] = []
    for path in (cert_file, key_file):
        st = os.stat(path)
        sigs.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return sigs[0], sigs[1]


def _read(path: Path) -> bytes | None:
    """The certificate file just loaded (what the server now serves, for metrics and auto-TLS)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


class ReloadingContext:
    """Serve the newest valid cert/key pair through one SSLContext object that never changes."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca: Path | None = None) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca = client_ca
        self._lock = threading.Lock()
        try:
            sig = _signature(cert_file, key_file)
        except OSError as exc:
            raise ConfigError(f"{exc.filename}: cannot read TLS file ({exc.strerror})") from None
        # The outer context carries the same settings (ciphers, versions and verify mode are copied
        # from it when a connection is created) and the initial pair as a fallback.
        self._outer = build_server_context(cert_file, key_file, client_ca)
        self._inner = build_server_context(cert_file, key_file, client_ca)
        self.certificate_pem = _read(cert_file)
        self._loaded_sig = sig
        self._failed_sig: tuple[_FileSig, _FileSig] | None = None
        self._warned_missing = False
        self._outer.sni_callback = self._select_context

    @property
    def context(self) -> ssl.SSLContext:
        """The context to hand to the server; it stays the same object across reloads."""
        return self._outer

    @property
    def current(self) -> ssl.SSLContext:
        """The context new handshakes are switched to (the newest pair that loaded cleanly)."""
        return self._inner

    def _select_context(
        self, ssl_obj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, outer: ssl.SSLContext
    ) -> None:
        """Runs inside the handshake for every ClientHello (SNI or not); must never raise."""
        inner = self._inner
        if ssl_obj.context is not inner:
            ssl_obj.context = inner

    def check(self) -> bool:
        """Reload if the files changed; True only when a new pair is now served.

        A pair that fails to load (half-written, key not matching cert, garbage) is skipped with
        one warning per on-disk change and the previous pair keeps serving.
        """
        with self._lock:
            try:
                sig = _signature(self.cert_file, self.key_file)
            except OSError as exc:
                if not self._warned_missing:
                    log.warning(
                        "TLS file %s unavailable (%s); keeping the current certificate", exc.filename, exc.strerror
                    )
                    self._warned_missing = True
                return False
            self._warned_missing = False
            if sig == self._loaded_sig or sig == self._failed_sig:
                return False
            try:
                # Signature is taken before loading: if the files change mid-load, the next check reloads.
                inner = build_server_context(self.cert_file, self.key_file, self.client_ca)
            except ConfigError as exc:
                log.warning("not reloading TLS certificate, keeping the current one: %s", exc)
                self._failed_sig = sig
                return False
            self._inner = inner
            self.certificate_pem = _read(self.cert_file)
            self._loaded_sig = sig
            self._failed_sig = None
            log.info("reloaded TLS certificate from %s", self.cert_file)
            return True

    async def watch(self, interval: float = 1.0) -> None:
        """Poll for changes until cancelled; polling works on every volume type, unlike inotify."""
        while True:
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a watcher that dies silently would stop rotation for good
                log.exception("TLS reload check failed")
            await asyncio.sleep(interval)
