"""TLS context hardening and certificate hot reload, exercised against a real asyncio TLS server."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhook import pki as certs
from webhook.errors import ConfigError
from webhook.pki import CertBundle
from webhook.server.tls import TLS_CIPHERS, ReloadingContext, build_server_context

from tls_support import client_certificate

TIMEOUT = 5.0


class EchoServer:
    """A line-echo asyncio TLS server on 127.0.0.1, run on its own loop thread like the webhook's."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self._ctx = ctx
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.port = 0

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except OSError:  # peers vanish without close_notify; that is not a test failure
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            del self._handlers[task]

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._echo, "127.0.0.1", 0, ssl=self._ctx)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            await server.wait_closed()
            # Closing the transport ends a handler's readline(); cancelling a stream handler instead
            # makes Python 3.11's asyncio log a spurious error.
            for writer in self._handlers.values():
                writer.close()
            if self._handlers:
                await asyncio.wait(list(self._handlers), timeout=TIMEOUT)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        """Run a coroutine (e.g. ReloadingContext.watch) on the server's loop."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        assert self._ready.wait(TIMEOUT), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()


@contextmanager
def connect(port: int, ctx: ssl.SSLContext, server_hostname: str | None) -> Iterator[ssl.SSLSocket]:
    """Blocking TLS client; server_hostname None or an IP literal means no SNI is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            yield tls


def roundtrip(tls: ssl.SSLSocket, payload: bytes = b"ping\n") -> None:
    tls.sendall(payload)
    got = b""
    while not got.endswith(b"\n"):
        chunk = tls.recv(64)
        if not chunk:
            raise ConnectionAbortedError("server closed the connection")
        got += chunk
    assert got == payload


def serial_of(tls: ssl.SSLSocket) -> int:
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def client_ctx(bundle: CertBundle, *, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=bundle.ca_cert)
    ctx.check_hostname = check_hostname
    return ctx


def assert_refused(port: int, ctx: ssl.SSLContext, server_hostname: str | None) -> Exception:
    """The server must end the connection before any application data is echoed."""
    with pytest.raises((ssl.SSLError, ConnectionError)) as info:
        with connect(port, ctx, server_hostname) as tls:
            roundtrip(tls)
    return info.value


# Every way a client can reach the server: SNI by name, IP without SNI (verified), no name at all.
ADDRESSINGS = [("localhost", True), ("127.0.0.1", True), (None, False)]


@pytest.fixture
def bundle(tmp_path: Path) -> CertBundle:
    return certs.write_bundle(tmp_path / "certs", None, None, [])


def test_context_settings(bundle: CertBundle) -> None:
    ctx = build_server_context(bundle.tls_cert, bundle.tls_key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    for flag in (ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION, ssl.OP_SINGLE_ECDH_USE, ssl.OP_SINGLE_DH_USE):
        assert ctx.options & flag == flag
    assert ctx.verify_mode == ssl.CERT_NONE
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12, TLS_CIPHERS
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe" and cipher["aead"], cipher["name"]


@pytest.mark.parametrize(("hostname", "check_hostname"), ADDRESSINGS)
def test_handshake(bundle: CertBundle, hostname: str | None, check_hostname: bool) -> None:
    with EchoServer(ReloadingContext(bundle.tls_cert, bundle.tls_key).context) as srv:
        with connect(srv.port, client_ctx(bundle, check_hostname=check_hostname), hostname) as tls:
            roundtrip(tls)
            assert tls.version() == "TLSv1.3"
            assert serial_of(tls) == file_serial(bundle.tls_cert)


def test_tls12_client_gets_ecdhe_aead(bundle: CertBundle) -> None:
    client = client_ctx(bundle)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with EchoServer(build_server_context(bundle.tls_cert, bundle.tls_key)) as srv:
        with connect(srv.port, client, "localhost") as tls:
            roundtrip(tls)
            name, version, _ = tls.cipher()  # type: ignore[misc]
            assert version == "TLSv1.2"
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)


def _tls11_client(bundle: CertBundle) -> ssl.SSLContext:
    client = client_ctx(bundle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 is deprecated, on purpose here
        client.minimum_version = ssl.TLSVersion.TLSv1_1
        client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    return client


def test_tls11_client_refused(bundle: CertBundle) -> None:
    try:
        client = _tls11_client(bundle)
    except (ssl.SSLError, ValueError) as exc:
        pytest.skip(f"local OpenSSL cannot build a TLS 1.1 client: {exc}")

    # Control: prove this client really speaks TLS 1.1, so a refusal below is the server's doing.
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(bundle.tls_cert, bundle.tls_key)
    with EchoServer(permissive) as control:
        try:
            with connect(control.port, client, "localhost") as tls:
                roundtrip(tls)
                assert tls.version() == "TLSv1.1"
        except (ssl.SSLError, ConnectionError) as exc:
            pytest.skip(f"local OpenSSL cannot complete a TLS 1.1 handshake at all: {exc}")

    with EchoServer(ReloadingContext(bundle.tls_cert, bundle.tls_key).context) as srv:
        err = assert_refused(srv.port, client, "localhost")
    # asyncio drops the connection without flushing OpenSSL's protocol_version alert, so the client may
    # see either that alert or a bare EOF; the control above shows the refusal is the server's.
    assert isinstance(err, ssl.SSLError)


@pytest.mark.parametrize(
    "ciphers",
    ["ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA", "AES128-SHA:AES128-SHA256"],
    ids=["ecdhe-cbc", "rsa-kx"],
)
def test_tls12_weak_cipher_refused(bundle: CertBundle, ciphers: str) -> None:
    client = client_ctx(bundle)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers(ciphers)
    with EchoServer(ReloadingContext(bundle.tls_cert, bundle.tls_key).context) as srv:
        err = assert_refused(srv.port, client, "localhost")
    assert isinstance(err, ssl.SSLError)


def test_cbc_cipher_accepted_by_python_default_but_not_by_us(bundle: CertBundle) -> None:
    """Shows the refusal above comes from TLS_CIPHERS, not from the client being unusable."""
    client = client_ctx(bundle)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    default = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    default.load_cert_chain(bundle.tls_cert, bundle.tls_key)
    with EchoServer(default) as control:
        try:
            with connect(control.port, client, "localhost") as tls:
                roundtrip(tls)
        except ssl.SSLError as exc:
            pytest.skip(f"this Python/OpenSSL does not allow CBC suites by default either: {exc}")
    with EchoServer(build_server_context(bundle.tls_cert, bundle.tls_key)) as srv:
        assert_refused(srv.port, client, "localhost")


def test_rotation_with_check(bundle: CertBundle) -> None:
    reloading = ReloadingContext(bundle.tls_cert, bundle.tls_key)
    served = reloading.context
    old_serial = file_serial(bundle.tls_cert)
    assert reloading.check() is False  # nothing changed yet

    with EchoServer(served) as srv, connect(srv.port, client_ctx(bundle), "localhost") as before:
        roundtrip(before)
        assert serial_of(before) == old_serial

        certs.renew_serving_cert(bundle.tls_cert.parent)
        new_serial = file_serial(bundle.tls_cert)
        assert new_serial != old_serial
        assert reloading.check() is True
        assert reloading.check() is False
        assert reloading.context is served

        for hostname, check_hostname in ADDRESSINGS:
            with connect(srv.port, client_ctx(bundle, check_hostname=check_hostname), hostname) as after:
                roundtrip(after)
                assert serial_of(after) == new_serial, hostname
        tls12 = client_ctx(bundle, check_hostname=False)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with connect(srv.port, tls12, None) as after:
            roundtrip(after)
            assert after.version() == "TLSv1.2" and serial_of(after) == new_serial

        # The connection made before rotation keeps working, on its original certificate.
        roundtrip(before, b"still here\n")
        assert serial_of(before) == old_serial


def test_rotation_with_watch(bundle: CertBundle) -> None:
    reloading = ReloadingContext(bundle.tls_cert, bundle.tls_key)
    with EchoServer(reloading.context) as srv:
        watcher = srv.submit(reloading.watch(interval=0.02))
        certs.renew_serving_cert(bundle.tls_cert.parent)
        new_serial = file_serial(bundle.tls_cert)
        deadline = time.monotonic() + TIMEOUT
        while True:
            with connect(srv.port, client_ctx(bundle, check_hostname=False), None) as tls:
                roundtrip(tls)
                if serial_of(tls) == new_serial:
                    break
            assert time.monotonic() < deadline, "watch() did not pick up the renewed certificate"
            time.sleep(0.02)
        assert not watcher.done()
        watcher.cancel()


def _garbage_key() -> bytes:
    return b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END PRIVATE KEY-----\n"


def _foreign_key(tmp_path: Path) -> bytes:
    other = certs.write_bundle(tmp_path / "other", None, None, [])
    return other.tls_key.read_bytes()


@pytest.mark.parametrize("broken", ["garbage", "mismatch"])
def test_broken_pair_keeps_old_cert(
    bundle: CertBundle, tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    reloading = ReloadingContext(bundle.tls_cert, bundle.tls_key)
    old_serial = file_serial(bundle.tls_cert)
    bad = _garbage_key() if broken == "garbage" else _foreign_key(tmp_path)
    caplog.set_level(logging.INFO, logger="webhook.tls")

    with EchoServer(reloading.context) as srv:
        bundle.tls_key.write_bytes(bad)  # in place, like a half-finished copy
        assert reloading.check() is False
        assert reloading.check() is False
        warnings_logged = [r for r in caplog.records if r.name == "webhook.tls" and r.levelno == logging.WARNING]
        assert len(warnings_logged) == 1, warnings_logged
        message = warnings_logged[0].getMessage()
        assert str(bundle.tls_key) in message
        assert "PRIVATE KEY" not in message and "c2VjcmV0" not in message
        if broken == "mismatch":
            assert "does not match" in message

        for hostname, check_hostname in ADDRESSINGS:
            with connect(srv.port, client_ctx(bundle, check_hostname=check_hostname), hostname) as tls:
                roundtrip(tls)
                assert serial_of(tls) == old_serial

        # A good pair written afterwards is picked up normally.
        certs.renew_serving_cert(bundle.tls_cert.parent)
        assert reloading.check() is True
        with connect(srv.port, client_ctx(bundle), "localhost") as tls:
            assert serial_of(tls) == file_serial(bundle.tls_cert)


def test_missing_pair_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls.crt"):
        ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")


def test_missing_files_keep_old_cert(bundle: CertBundle, caplog: pytest.LogCaptureFixture) -> None:
    reloading = ReloadingContext(bundle.tls_cert, bundle.tls_key)
    old_serial = file_serial(bundle.tls_cert)
    bundle.tls_cert.unlink()
    assert reloading.check() is False
    assert reloading.check() is False
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    with EchoServer(reloading.context) as srv, connect(srv.port, client_ctx(bundle), "localhost") as tls:
        assert serial_of(tls) == old_serial


def test_secret_volume_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes updates Secret volumes by re-pointing ``..data``; the file paths never change."""
    mount = tmp_path / "mount"
    mount.mkdir()
    first = certs.write_bundle(mount / "..2024_01", None, None, [])
    (mount / "..data").symlink_to("..2024_01")
    for name in ("tls.crt", "tls.key"):
        (mount / name).symlink_to(f"..data/{name}")
    reloading = ReloadingContext(mount / "tls.crt", mount / "tls.key")

    second = mount / "..2024_02"
    second.mkdir()
    for name in ("ca.crt", "ca.key", "tls.crt", "tls.key"):
        (second / name).write_bytes((first.ca_cert.parent / name).read_bytes())
    certs.renew_serving_cert(second)
    (mount / "..data_tmp").symlink_to("..2024_02")
    (mount / "..data_tmp").replace(mount / "..data")

    assert reloading.check() is True
    with EchoServer(reloading.context) as srv, connect(srv.port, client_ctx(first), "localhost") as tls:
        assert serial_of(tls) == file_serial(second / "tls.crt")


def test_build_server_context_errors(bundle: CertBundle, tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(ConfigError, match="nope.crt"):
        build_server_context(missing, bundle.tls_key)

    bad_cert = tmp_path / "bad.crt"
    bad_cert.write_text("not a cert")
    with pytest.raises(ConfigError, match="bad.crt.*no valid PEM certificate"):
        build_server_context(bad_cert, bundle.tls_key)

    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(_garbage_key())
    with pytest.raises(ConfigError, match="garbage.key") as info:
        build_server_context(bundle.tls_cert, garbage)
    assert "c2VjcmV0" not in str(info.value) and info.value.__cause__ is None

    foreign = tmp_path / "foreign.key"
    foreign.write_bytes(_foreign_key(tmp_path))
    with pytest.raises(ConfigError, match="foreign.key.*does not match") as info:
        build_server_context(bundle.tls_cert, foreign)
    assert "PRIVATE KEY" not in str(info.value)

    # Encrypted keys must fail fast instead of OpenSSL prompting on the terminal.
    key = serialization.load_pem_private_key(bundle.tls_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(ConfigError, match="encrypted.key.*encrypted"):
        build_server_context(bundle.tls_cert, encrypted)

    with pytest.raises(ConfigError, match="nope-ca.crt"):
        build_server_context(bundle.tls_cert, bundle.tls_key, client_ca=tmp_path / "nope-ca.crt")


# --- mutual TLS -----------------------------------------------------------------------------


@pytest.fixture
def client_ca(tmp_path: Path) -> tuple[Path, tuple[Path, Path]]:
    """A client CA (separate from the serving CA) plus one client pair it signed."""
    ca_key, ca = certs.generate_ca("test-client-ca")
    ca_path = tmp_path / "client-ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_path, client_certificate(ca_key, ca, tmp_path / "client")


@pytest.mark.parametrize("max_version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_mtls(
    bundle: CertBundle, tmp_path: Path, client_ca: tuple[Path, tuple[Path, Path]], max_version: ssl.TLSVersion
) -> None:
    ca_path, (client_crt, client_key) = client_ca
    reloading = ReloadingContext(bundle.tls_cert, bundle.tls_key, client_ca=ca_path)
    assert reloading.context.verify_mode == ssl.CERT_REQUIRED

    def make_client(check_hostname: bool, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
        ctx = client_ctx(bundle, check_hostname=check_hostname)
        ctx.maximum_version = max_version
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx

    # A client cert from the wrong CA (the serving CA) must be refused too.
    serving_ca_key = serialization.load_pem_private_key(bundle.ca_key.read_bytes(), password=None)
    assert isinstance(serving_ca_key, ec.EllipticCurvePrivateKey)
    serving_ca = x509.load_pem_x509_certificate(bundle.ca_cert.read_bytes())
    wrong = client_certificate(serving_ca_key, serving_ca, tmp_path / "wrong")

    with EchoServer(reloading.context) as srv:
        for rotate in (False, True):
            if rotate:  # the CA check must survive the context switch done for reloads
                certs.renew_serving_cert(bundle.tls_cert.parent)
                assert reloading.check() is True
            for hostname, check_hostname in ADDRESSINGS:
                assert_refused(srv.port, make_client(check_hostname, None), hostname)
                assert_refused(srv.port, make_client(check_hostname, wrong), hostname)
                with connect(srv.port, make_client(check_hostname, (client_crt, client_key)), hostname) as tls:
                    roundtrip(tls)
                    assert serial_of(tls) == file_serial(bundle.tls_cert)
