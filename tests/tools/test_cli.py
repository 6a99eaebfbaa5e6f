"""The command line: certificate generation, manifests, help text and usage errors."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from webhook.tools.cli import build_parser, main

from conftest import REPO, make_certs, run_cli

SERVE_ENV_VARS = [
    "SIDECAR_INJECTOR_HOST",
    "SIDECAR_INJECTOR_PORT",
    "SIDECAR_INJECTOR_CERT_DIR",
    "SIDECAR_INJECTOR_CONFIG",
    "SIDECAR_INJECTOR_LOG_LEVEL",
    "SIDECAR_INJECTOR_WORKERS",
    "SIDECAR_INJECTOR_KUBERNETES_VERSION",
    "SIDECAR_INJECTOR_MAX_BODY_BYTES",
    "SIDECAR_INJECTOR_RELOAD_INTERVAL",
    "SIDECAR_INJECTOR_DRAIN_SECONDS",
    "SIDECAR_INJECTOR_CLIENT_CA",
    "SIDECAR_INJECTOR_DEADLINE_SECONDS",
    "SIDECAR_INJECTOR_HEADER_TIMEOUT",
    "SIDECAR_INJECTOR_MAX_CONNECTIONS",
    "SIDECAR_INJECTOR_HEALTH_PORT",
]


def test_certs_writes_the_bundle_and_prints_the_ca_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["certs", "--service", "inj", "--namespace", "sys", "--out", str(out), "--host", "inj.example.com"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == base64.b64encode((out / "ca.crt").read_bytes()).decode()
    assert "tls.key" in captured.err
    for name in ("ca.crt", "ca.key", "tls.crt", "tls.key"):
        assert (out / name).is_file()
    for key in ("ca.key", "tls.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert {"inj.sys.svc", "inj.example.com"} <= set(names)


def test_serve_help_lists_every_env_var() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # undo argparse's line wrapping
    for name in SERVE_ENV_VARS:
        assert name in text


def test_env_vars_set_defaults_and_flags_win() -> None:
    environ = {"SIDECAR_INJECTOR_PORT": "9443", "SIDECAR_INJECTOR_CONFIG": "/etc/x.yaml",
               "SIDECAR_INJECTOR_DRAIN_SECONDS": "1.5"}
    args = build_parser(environ).parse_args(["serve"])
    assert (args.port, args.config, args.drain_seconds) == (9443, "/etc/x.yaml", 1.5)
    assert build_parser(environ).parse_args(["serve", "--port", "10443"]).port == 10443
    defaults = build_parser({}).parse_args(["serve"])
    assert (defaults.host, defaults.port, defaults.cert_dir, defaults.config) == ("0.0.0.0", 8443, "./certs", None)
    assert (defaults.workers, defaults.max_body_bytes, defaults.reload_interval) == (1, 3145728, 2.0)


@pytest.mark.parametrize(
    "argv, environ",
    [
        ([], {}),
        (["serve", "--bogus"], {}),
        (["serve", "--port", "https"], {}),
        (["serve", "--port", "99999"], {}),
        (["serve", "--workers", "0"], {}),
        (["serve", "--log-level", "loud"], {}),
        (["serve"], {"SIDECAR_INJECTOR_PORT": "https"}),
        (["certs"], {}),
        (["manifests", "--cert-dir", "x", "--failure-policy", "Sometimes"], {}),
    ],
)
def test_usage_errors_exit_2(argv: list[str], environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, environ=environ) == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_flag_exits_2_from_the_console() -> None:
    result = run_cli("serve", "--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_manifests_fill_the_ca_bundle_and_the_tls_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_certs(tmp_path)
    assert main(["manifests", "--cert-dir", str(tmp_path), "--failure-policy", "Ignore"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    (webhook_config,) = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    ca_bundle = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    for hook in webhook_config["webhooks"]:
        assert hook["clientConfig"]["caBundle"] == ca_bundle
        assert hook["failurePolicy"] == "Ignore"
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert base64.b64decode(secret["data"]["tls.crt"]) == (tmp_path / "tls.crt").read_bytes()


def test_manifests_without_certificates_is_a_one_line_error(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifests", "--cert-dir", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ca.crt" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sidecar-injector {version('sidecar-injector')}\n"


def test_the_kubectl_plugin_is_the_same_command() -> None:
    import tomllib
    from importlib.metadata import entry_points

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-sidecar_injector"] == scripts["sidecar-injector"] == "webhook.tools.cli:main"
    installed = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert installed.get("kubectl-sidecar_injector") == "webhook.tools.cli:main"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_runs_the_plugin(tmp_path: Path) -> None:
    from importlib.metadata import version

    bin_dir = Path(sys.executable).parent
    plugin = bin_dir / "kubectl-sidecar_injector"
    if not plugin.exists():
        pytest.skip(f"{plugin} is not installed (pip install the package)")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(["kubectl", "sidecar-injector", "--version"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, f"sidecar-injector {version('sidecar-injector')}\n"), done.stderr
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: nginx}]}\n")
    done = subprocess.run(["kubectl", "sidecar-injector", "inject", "-f", str(pod)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0 and "sidecar-injector.io/status" in done.stdout, done.stderr


def test_cluster_aware_flags_build_a_picklable_factory(tmp_path: Path) -> None:
    """Off unless asked for; the factory reaches spawned workers, so it must pickle."""
    import datetime as dt
    import pickle

    from webhook.tools.commands import cluster_factory

    parser = build_parser({})
    assert cluster_factory(parser.parse_args(["serve"])) is None
    args = parser.parse_args(["serve", "--auto-tls", "--events", "--auto-tls-cert-lifetime", "90m",
                              "--auto-tls-host", "127.0.0.1", "--cert-dir", str(tmp_path)])
    factory = cluster_factory(args)
    options = pickle.loads(pickle.dumps(factory)).args[0]
    assert options.events and not options.namespace_defaults
    assert options.auto_tls.cert_lifetime == dt.timedelta(minutes=90)
    assert options.auto_tls.extra_hosts == ("127.0.0.1",)
    assert options.cert_dir == tmp_path
    from_env = build_parser({"SIDECAR_INJECTOR_NAMESPACE_DEFAULTS": "true"}).parse_args(["serve"])
    assert cluster_factory(from_env).args[0].namespace_defaults
    assert cluster_factory(parser.parse_args(["serve", "--kubernetes-version", "auto"])) is not None


def test_durations_are_checked() -> None:
    assert main(["serve", "--auto-tls-ca-lifetime", "soon"]) == 2
    assert main(["serve", "--auto-tls-cert-lifetime", "0s"]) == 2
