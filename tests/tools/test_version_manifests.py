"""The install manifests for every supported Kubernetes version (webhook/tools/version_manifests.py,
manifests/overlays/kubernetes-*, manifests/components/*, README's table).

Each rendering passes kubernetes-validate (strict) for its own version where the package ships
that schema; 1.20 is checked against a real 1.20 API server by the e2e suite
(tests/e2e/test_install_manifests.py); the versions in between without a schema render the same
objects as the oldest version with one, but for the version flag.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from webhook.config import load_config_text
from webhook.kubeversion import KubeVersion
from webhook.tools.render import load_base_manifests, render
from webhook.tools.version_manifests import (
    FIRST_SCHEMA,
    NAME_LABEL,
    OVERLAYS,
    VersionError,
    for_version,
    overlay_for,
    support_table,
    supported_versions,
)

from test_manifests import MANIFESTS, _container, _kustomize, _one, _test_pki, _validate, _webhook

OVERLAY_DIR = MANIFESTS / "overlays"

README = Path(__file__).resolve().parents[2] / "README.md"
SCHEMAS = set(kubernetes_validate.utils.all_versions())


def _schema(version: KubeVersion) -> str | None:
    name = f"{version}.0"
    return name if name in SCHEMAS else None


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return load_base_manifests(MANIFESTS)


def _rendered(base: list[dict], version: KubeVersion) -> list[dict]:
    return render(base, *_test_pki(), kubernetes_version=version)


def _without_version_flag(objects: list[dict]) -> list[dict]:
    objects = copy.deepcopy(objects)
    container = _container(objects)
    args = container["args"]
    at = args.index("--kubernetes-version")
    del args[at:at + 2]
    return objects


@pytest.mark.parametrize("version", supported_versions(), ids=str)
def test_every_supported_version_renders_valid_manifests(base: list[dict], version: KubeVersion) -> None:
    objects = _rendered(base, version)
    schema = _schema(version)
    if schema is not None:
        for obj in objects:
            _validate(obj, schema)
    elif version.namespace_name_label:
        # No schema shipped: the same objects as the oldest version that has one, but the flag.
        assert _without_version_flag(objects) == _without_version_flag(_rendered(base, FIRST_SCHEMA))
    else:
        assert version == KubeVersion(1, 20)  # checked by a real 1.20 API server in the e2e suite


def test_the_schemas_the_table_claims_are_shipped() -> None:
    for version in supported_versions():
        assert (_schema(version) is not None) == (version >= FIRST_SCHEMA), version


@pytest.mark.parametrize("version", supported_versions(), ids=str)
def test_what_each_version_gets(base: list[dict], version: KubeVersion) -> None:
    objects = _rendered(base, version)
    webhook = _webhook(objects)
    container = _container(objects)
    pdb = _one(objects, "PodDisruptionBudget")
    if version.match_conditions:
        assert objects == render(base, *_test_pki()), "1.30 and newer install the base as it is"
        return
    assert "matchConditions" not in webhook
    assert {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "sidecar-injector"]} in \
        webhook["namespaceSelector"]["matchExpressions"]
    assert webhook["namespaceSelector"]["matchLabels"] == {"sidecar-injector.io/inject": "enabled"}
    assert container["lifecycle"]["preStop"] == {"exec": {"command": ["python3", "-c", "import time; time.sleep(5)"]}}
    assert container["args"][-2:] == ["--kubernetes-version", str(version)]
    assert pdb["apiVersion"] == ("policy/v1" if version >= KubeVersion(1, 21) else "policy/v1beta1")
    assert ("unhealthyPodEvictionPolicy" in pdb["spec"]) == (version >= KubeVersion(1, 27))
    namespace = _one(objects, "Namespace")["metadata"]["labels"]
    assert (NAME_LABEL in namespace) == (version < KubeVersion(1, 21))


def test_the_server_flag_sets_the_injection_version(base: list[dict]) -> None:
    """The flag overrides the ConfigMap's kubernetesVersion: on 1.20 the webhook injects legacy sidecars."""
    from webhook.server.options import ServeOptions, load_config

    objects = _rendered(base, KubeVersion(1, 20))
    args = _container(objects)["args"]
    config_text = _one(objects, "ConfigMap")["data"]["config.yaml"]
    assert load_config_text(config_text).kube_version == KubeVersion(1, 30)
    config_file = Path(args[args.index("--config") + 1]).name
    assert config_file == "config.yaml"
    options = ServeOptions(kubernetes_version=args[args.index("--kubernetes-version") + 1])
    assert load_config(options).kube_version == KubeVersion(1, 20)


def test_a_condition_without_a_selector_equivalent_is_refused(base: list[dict]) -> None:
    objects = copy.deepcopy(base)
    _webhook(objects)["matchConditions"].append({"name": "no-dry-run", "expression": "!request.dryRun"})
    with pytest.raises(VersionError, match="matchCondition 'no-dry-run'.*needs CEL"):
        for_version(objects, KubeVersion(1, 29))


def test_for_version_does_not_change_its_input(base: list[dict]) -> None:
    before = copy.deepcopy(base)
    for_version(base, KubeVersion(1, 20))
    assert base == before


@pytest.mark.parametrize("low", [v for v in OVERLAYS if not v.match_conditions], ids=str)
def test_overlay_equals_the_rendered_version(base: list[dict], low: KubeVersion) -> None:
    """`kubectl apply -k manifests/overlays/kubernetes-X.Y` and `manifests --kubernetes-version X.Y`
    install the same objects."""
    built = _kustomize(OVERLAY_DIR / f"kubernetes-{low}")
    expected = for_version(base, low)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert {key(o): o for o in built} == {key(o): o for o in expected}


def test_each_version_names_its_overlay() -> None:
    names = {overlay_for(v) for v in supported_versions()}
    assert names == {None} | {path.name for path in OVERLAY_DIR.glob("kubernetes-*")}
    assert overlay_for(KubeVersion(1, 28)) == "kubernetes-1.27"
    assert overlay_for(KubeVersion(1, 29)) == "kubernetes-1.29"
    assert overlay_for(KubeVersion(1, 31)) is None


def _readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- versions:begin -->\n(.*?)<!-- versions:end -->", text, re.S)
    assert match, "README.md has no <!-- versions:begin --> ... <!-- versions:end --> table"
    return match.group(1)


def test_readme_table_is_the_supported_versions() -> None:
    assert _readme_table() == support_table()


def _kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objects]


def test_kinds_and_order_do_not_change(base: list[dict]) -> None:
    for version in supported_versions():
        assert _kinds(for_version(base, version)) == _kinds(base)
