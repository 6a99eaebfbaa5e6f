"""The install manifests as a given Kubernetes version knows them.

The base in `manifests/` targets Kubernetes >= 1.30. An older API server rejects fields it
does not know when `kubectl apply` validates (or, worse, drops them silently), so for an
older cluster the objects are rewritten to what it has, keeping what they mean where that
can be said another way:

- webhook `matchConditions` (CEL, GA in 1.30): each `request.namespace != "NAME"` condition
  becomes a `kubernetes.io/metadata.name NotIn [...]` term of the namespaceSelector (the API
  server sets that label on every namespace since 1.21; on 1.20 our own Namespace carries it
  explicitly, and kube-system must be labelled by hand, as README says);
- the Deployment's preStop `sleep` action (1.30) becomes an exec of the image's python3;
- the PodDisruptionBudget's `unhealthyPodEvictionPolicy` (on by default since 1.27) is left
  out, and below 1.21 the PDB is `policy/v1beta1`;
- the webhook is started with `--kubernetes-version X.Y` (over the config's 1.30), so it
  emits only Pod fields that cluster knows (legacy sidecars below 1.29, exec drains below 1.30),
  unless it is told a version already (`--kubernetes-version=auto` of the cluster-aware overlay).

`for_version()` is pure. `manifests/overlays/kubernetes-*` do the same with kustomize
components, and tests check that both give the same objects.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from webhook.kubeversion import KubeVersion

NAME_LABEL = "kubernetes.io/metadata.name"
FLAG = "--kubernetes-version"
_NAMESPACE_CONDITION = re.compile(r'\s*request\.namespace\s*!=\s*"([a-z0-9]([-a-z0-9]*[a-z0-9])?)"\s*')
_PYTHON_SLEEP = "import time; time.sleep({seconds})"


class VersionError(ValueError):
    """The manifests hold something the target version cannot express; the message says what."""


def for_version(objects: list[dict[str, Any]], version: KubeVersion) -> list[dict[str, Any]]:
    """Copies of `objects` that `version`'s API server accepts with the same meaning."""
    result = []
    for original in objects:
        obj = copy.deepcopy(original)
        kind = obj.get("kind")
        if kind == "MutatingWebhookConfiguration" and not version.match_conditions:
            for webhook in obj.get("webhooks") or []:
                _conditions_to_selector(webhook)
        elif kind == "Namespace" and not version.namespace_name_label:
            labels = obj.setdefault("metadata", {}).setdefault("labels", {})
            labels.setdefault(NAME_LABEL, obj["metadata"].get("name"))
        elif kind == "Deployment" and not version.sleep_action:
            for container in _pod_spec(obj).get("containers") or []:
                _sleep_to_exec(container)
                args = container.setdefault("args", [])
                if not any(arg == FLAG or arg.startswith(FLAG + "=") for arg in args):  # auto, or the user's own
                    args.extend([FLAG, str(version)])
        elif kind == "PodDisruptionBudget":
            if not version.pdb_unhealthy_pod_eviction_policy:
                obj.get("spec", {}).pop("unhealthyPodEvictionPolicy", None)
            if not version.pdb_policy_v1:
                obj["apiVersion"] = "policy/v1beta1"
        result.append(obj)
    return result


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def _conditions_to_selector(webhook: dict[str, Any]) -> None:
    conditions = webhook.pop("matchConditions", None) or []
    excluded = []
    for condition in conditions:
        match = _NAMESPACE_CONDITION.fullmatch(condition.get("expression", ""))
        if match is None:
            raise VersionError(
                f"webhook {webhook.get('name')}: matchCondition {condition.get('name')!r} "
                f"({condition.get('expression')!r}) needs CEL (Kubernetes 1.30); only "
                '`request.namespace != "NAME"` can be expressed as a namespaceSelector before it')
        excluded.append(match.group(1))
    if not excluded:
        return
    selector = webhook.setdefault("namespaceSelector", {})
    selector.setdefault("matchExpressions", []).append({"key": NAME_LABEL, "operator": "NotIn", "values": excluded})


def _sleep_to_exec(container: dict[str, Any]) -> None:
    for hook in (container.get("lifecycle") or {}).values():
        if isinstance(hook, dict) and "sleep" in hook:
            seconds = int(hook.pop("sleep")["seconds"])
            hook["exec"] = {"command": ["python3", "-c", _PYTHON_SLEEP.format(seconds=seconds)]}


# -- the supported versions, as README's table shows them -------------------------------------------

NEWEST_TESTED = KubeVersion(1, 37)
# The lowest version of each manifests/overlays/kubernetes-X.Y range, newest first; from 1.30 on
# the base itself (None).
OVERLAYS = (KubeVersion(1, 30), KubeVersion(1, 29), KubeVersion(1, 27), KubeVersion(1, 21), KubeVersion(1, 20))
# kubernetes-validate ships the official schemas from this version on.
FIRST_SCHEMA = KubeVersion(1, 25)


def supported_versions() -> list[KubeVersion]:
    oldest = KubeVersion.parse("1.20")
    return [KubeVersion(1, minor) for minor in range(oldest.minor, NEWEST_TESTED.minor + 1)]


def overlay_for(version: KubeVersion) -> str | None:
    """The overlay directory name for `version`, None for the base (1.30 and newer)."""
    low = next(low for low in OVERLAYS if version >= low)
    return None if low == OVERLAYS[0] else f"kubernetes-{low}"


def support_table() -> str:
    """README's table of supported versions (a test keeps README equal to this)."""
    rows = ["| Kubernetes | install | sidecars injected | drains injected | namespace exclusion | PodDisruptionBudget "
            "| checked by |",
            "|---|---|---|---|---|---|---|"]
    for version in supported_versions():
        overlay = overlay_for(version)
        install = f"`overlays/{overlay}`" if overlay else "`manifests/` (the base)"
        sidecars = "native" if version.native_sidecars else "legacy"
        drain = "`sleep` action" if version.sleep_action else "`exec` sleep"
        if version.match_conditions:
            exclusion = "matchConditions"
        elif version.namespace_name_label:
            exclusion = "namespaceSelector"
        else:
            exclusion = "namespaceSelector (label kube-system by hand)"
        pdb = "policy/v1" if version.pdb_policy_v1 else "policy/v1beta1"
        if version.pdb_policy_v1 and not version.pdb_unhealthy_pod_eviction_policy:
            pdb += ", no unhealthyPodEvictionPolicy"
        if version >= FIRST_SCHEMA:
            checked = "schema (strict)"
        elif version.namespace_name_label:
            checked = f"same objects as {FIRST_SCHEMA}"
        else:
            checked = "local cluster: server dry-run, e2e"
        rows.append(f"| {version} | {install} | {sidecars} | {drain} | {exclusion} | {pdb} | {checked} |")
    return "\n".join(rows) + "\n"
