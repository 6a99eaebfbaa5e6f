"""Offline injection: manifests in, injected manifests and per-template reports out (pure).

`sidecar-injector inject` and `explain` use this module, like `istioctl kube-inject`. Each
Pod template is wrapped in the AdmissionReview the API server would send for a Pod created
from it and answered by `mutate.review`, the webhook's own handler: the offline and the
webhook paths cannot drift apart because there is only one path. Only the template's
metadata and spec are written back (for a bare Pod, the whole Pod). Reading and writing the
manifests is ``documents``'s, reading back what was added ``additions``', the report text
``explain``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.config import Config, override
from webhook.mutate import Outcome, clip_warning, review
from webhook.policy import PodContext, owner_kinds
from webhook.tools.additions import Additions, additions
from webhook.uninject import read_status, reinjected, uninject
from webhook.workloads import Path, PodTemplateRef, iter_pod_templates, replace_template

DEFAULT_NAMESPACE = "default"

# What a controller puts in ownerReferences, so the policy sees a Job's Pods as a Job's.
_OWNER_API_VERSIONS = {"Job": "batch/v1", "ReplicationController": "v1"}
# Who creates the Pods of a template at run time (the review's userInfo). A bare Pod's
# creator is whoever applies it, which offline cannot know: its review carries no userInfo.
_CONTROLLER_USERS = {
    "ReplicaSet": "replicaset-controller",
    "ReplicationController": "replication-controller",
    "StatefulSet": "statefulset-controller",
    "DaemonSet": "daemon-set-controller",
    "Job": "job-controller",
}


def with_kubernetes_version(config: Config, version: str | None) -> Config:
    """The config with --kubernetes-version laid over it (as `serve` does); ConfigError if invalid."""
    return override(config, "kubernetesVersion", version or None, "--kubernetes-version")


# -- reports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateReport:
    """The decision for one Pod template, with what a user needs to act on it."""

    document: int
    kind: str
    name: str
    namespace: str
    path: Path
    decision: str  # injected | skipped | denied | error (the config's onError answered)
    reason: str
    message: str
    allowed: bool = True
    """False when the API server would refuse the Pod (a denial, or an error under onError: deny)."""
    profiles: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    added: Additions | None = None
    problems: tuple[str, ...] = ()
    """A denial's every reason, one message each."""

    @property
    def workload(self) -> str:
        return f"{self.kind}/{self.name or '(unnamed)'}"


@dataclass(frozen=True)
class OfflineResult:
    """The documents to write (unchanged where nothing was injected) and one report per template."""

    documents: list[Any]
    reports: list[TemplateReport]

    @property
    def denied(self) -> list[TemplateReport]:
        return [r for r in self.reports if not r.allowed]


# -- the engine path ------------------------------------------------------------------------


def _pod_for(ref: PodTemplateRef) -> dict[str, Any]:
    """The Pod a controller would create from the template, as the webhook would receive it."""
    if ref.kind == "Pod":
        return ref.template
    metadata = ref.template.get("metadata")
    metadata = {} if metadata is None else metadata  # null means absent, as the API server decodes it
    owners = metadata.get("ownerReferences", []) if isinstance(metadata, Mapping) else None
    if ref.owner_kind and isinstance(owners, list):  # else malformed: the policy says so
        owner = {"apiVersion": _OWNER_API_VERSIONS.get(ref.owner_kind, "apps/v1"), "kind": ref.owner_kind,
                 "name": ref.name or "offline", "uid": "offline", "controller": True}
        metadata = {**metadata, "ownerReferences": [*owners, owner]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": ref.template.get("spec")}


def _review_body(ref: PodTemplateRef, pod: Mapping[str, Any], namespace: str, uid: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": namespace,
        "object": pod,
    }
    controller = _CONTROLLER_USERS.get(ref.owner_kind)
    if controller is not None:
        request["userInfo"] = {
            "username": f"system:serviceaccount:kube-system:{controller}",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _template_from(ref: PodTemplateRef, patched: dict[str, Any]) -> dict[str, Any]:
    """Write back only metadata and spec, without the ownerReference added for the review."""
    if ref.kind == "Pod":
        return patched
    metadata = dict(patched.get("metadata") or {})
    original = ref.template.get("metadata") or {}
    if "ownerReferences" in original:
        metadata["ownerReferences"] = original["ownerReferences"]
    else:
        metadata.pop("ownerReferences", None)
    return {**ref.template, "metadata": metadata, "spec": patched["spec"]}


def _display_name(ref: PodTemplateRef) -> str:
    if ref.name or ref.kind != "Pod":
        return ref.name
    generate = (ref.template.get("metadata") or {}).get("generateName")
    return f"{generate}*" if isinstance(generate, str) and generate else ""


def inject_documents(docs: list[Any], config: Config, namespace: str = DEFAULT_NAMESPACE) -> OfflineResult:
    """Inject every Pod template of every document, as the webhook would inject its Pods.

    `namespace` is used for templates whose workload names none. The input is not modified.
    """
    out: list[Any] = []
    reports: list[TemplateReport] = []
    for index, doc in enumerate(docs):
        result = doc
        for ref in list(iter_pod_templates(doc)):
            ns = ref.namespace or namespace
            pod = _pod_for(ref)
            outcome = review(_review_body(ref, pod, ns, f"offline-{index}-{len(reports)}"), config)
            added = None
            if outcome.decision == "injected" and outcome.patched_pod is not None:
                result = replace_template(result, ref.path, _template_from(ref, outcome.patched_pod))
                added = additions(pod, outcome.patched_pod)
            reports.append(_report(index, ref, ns, outcome, added))
        out.append(result)
    return OfflineResult(out, reports)


def _report(index: int, ref: PodTemplateRef, namespace: str, outcome: Outcome, added: Additions | None) -> TemplateReport:
    # The skip message often repeats as a warning (so kubectl shows it); say it once here.
    # The decision line already says why it was skipped; don't repeat it as a warning.
    said = {clip_warning(outcome.message), clip_warning(f"not injected: {outcome.message}")}
    warnings = tuple(w for w in outcome.warnings if w not in said)
    allowed = outcome.review["response"]["allowed"] is True
    return TemplateReport(index, ref.kind, _display_name(ref), namespace, ref.path, outcome.decision,
                          outcome.reason, outcome.message, allowed, outcome.profiles, warnings, added,
                          outcome.problems)


@dataclass(frozen=True)
class UninjectReport:
    """What uninject did to one Pod template: whether it carried our status, and what it left."""

    document: int
    kind: str
    name: str
    changed: bool
    warnings: tuple[str, ...] = ()

    @property
    def workload(self) -> str:
        return f"{self.kind}/{self.name or '(unnamed)'}"


def created(pod: Mapping[str, Any]) -> list[str]:
    """What the status annotation says injection created (metadata.annotations, spec lists)."""
    status = read_status(pod)
    return list(status.get("created") or ()) if status is not None else []


def uninject_documents(docs: list[Any], config: Config,
                       namespace: str = DEFAULT_NAMESPACE) -> tuple[list[Any], list[UninjectReport]]:
    """Take injection out of every Pod template that carries our status, by what it records.

    What someone changed since is left in place with a warning when ``config`` is the one that
    injected it (the status's config hash); else every recorded piece is taken away by name."""
    out: list[Any] = []
    reports: list[UninjectReport] = []
    for index, doc in enumerate(docs):
        result = doc
        for ref in list(iter_pod_templates(doc)):
            pod = _pod_for(ref)
            context = PodContext(namespace=ref.namespace or namespace, owner_kinds=owner_kinds(pod))
            undone = uninject(pod, reinjected(pod, context, config))
            if undone.changed:
                template = _template_from(ref, undone.pod)
                if ref.kind != "Pod" and template.get("metadata") == {} and "metadata.annotations" in created(pod):
                    del template["metadata"]  # the review's Pod had metadata only for its ownerReference
                result = replace_template(result, ref.path, template)
            reports.append(UninjectReport(index, ref.kind, _display_name(ref), undone.changed, tuple(undone.warnings)))
        out.append(result)
    return out, reports
