"""Offline injection: manifests in, injected manifests and per-template reports out (pure).

`sidecar-injector inject` and `explain` use this module, like `istioctl kube-inject`. Each
Pod template is wrapped in the AdmissionReview the API server would send for a Pod created
from it and answered by `mutate.review`, the webhook's own handler: the offline and the
webhook paths cannot drift apart because there is only one path. Only the template's
metadata and spec are written back (for a bare Pod, the whole Pod).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from webhook.annotations import NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, STATUS
from webhook.config import Config, override
from webhook.mutate import Outcome, clip_warning, review
from webhook.workloads import Path, PodTemplateRef, iter_pod_templates, replace_template

DEFAULT_NAMESPACE = "default"
FORMATS = ("json", "yaml")

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


class DocumentError(ValueError):
    """The input is neither JSON nor YAML; the message says where parsing stopped."""


# -- reading and writing --------------------------------------------------------------------


def _json_stream(text: str) -> list[Any]:
    """One or more concatenated JSON values (what `kubectl get -o json` and friends print)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def load_documents(text: str) -> tuple[list[Any], str]:
    """Parse JSON (one value or a stream) or multi-document YAML; return (documents, format).

    Text starting with `{` or `[` is JSON, unless only YAML can read it (a flow mapping).
    Empty YAML documents (a stray `---`) are dropped: there is nothing in them to write back.
    """
    if text.lstrip().startswith(("{", "[")):
        try:
            return _json_stream(text), "json"
        except json.JSONDecodeError as json_error:
            try:
                return [doc for doc in yaml.safe_load_all(text) if doc is not None], "yaml"
            except yaml.YAMLError:
                raise DocumentError(f"not valid JSON: {json_error}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None], "yaml"
    except yaml.YAMLError as error:
        raise DocumentError(f"not valid YAML: {error}") from None


class _Dumper(yaml.SafeDumper):
    """Never write anchors: shared objects are repeated, as `kubectl` would print them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_documents(docs: list[Any], fmt: str) -> str:
    """JSON (one value, or one per line-separated block) or YAML documents joined by `---`."""
    if fmt == "json":
        return "".join(json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for doc in docs)
    if fmt == "yaml":
        # An unbounded width keeps long values (the status annotation) on one line.
        return "---\n".join(
            yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1) for doc in docs
        )
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def with_kubernetes_version(config: Config, version: str | None) -> Config:
    """The config with --kubernetes-version laid over it (as `serve` does); ConfigError if invalid."""
    return override(config, "kubernetesVersion", version or None, "--kubernetes-version")


# -- reports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Additions:
    """What injection added to one template, read back from the result (the `explain` summary)."""

    native: bool
    sidecars: tuple[str, ...]
    init_containers: tuple[str, ...]
    volumes: tuple[str, ...]
    application: tuple[str, ...]
    """Per application container: mounts, drain hook and probes added, e.g. "app: preStop sleep 5s"."""
    sidecar_hooks: tuple[str, ...]
    """What holds the application until a sidecar is ready, or keeps it alive while draining."""
    grace_seconds: tuple[int | None, int | None]
    """terminationGracePeriodSeconds before and after (None: not set, the server's 30 applies)."""
    share_process_namespace: bool


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
                          outcome.reason, outcome.message, allowed, outcome.profiles, warnings, added)


# -- what was added -------------------------------------------------------------------------


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {i["name"]: i for i in items if isinstance(i, Mapping) and isinstance(i.get("name"), str)}


def _handler(hook: Any) -> str:
    if isinstance(hook, Mapping) and isinstance(hook.get("sleep"), Mapping):
        return f"sleep {hook['sleep'].get('seconds')}s"
    if isinstance(hook, Mapping) and isinstance(hook.get("exec"), Mapping):
        return "exec " + " ".join(str(part) for part in hook["exec"].get("command") or [])
    return "hook"


def _lifecycle(container: Mapping[str, Any]) -> Mapping[str, Any]:
    lifecycle = container.get("lifecycle")
    return lifecycle if isinstance(lifecycle, Mapping) else {}


def _app_changes(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    changes: list[str] = []
    paths_before = {m.get("mountPath") for m in before.get("volumeMounts") or [] if isinstance(m, Mapping)}
    mounted = [m["mountPath"] for m in after.get("volumeMounts") or []
               if isinstance(m, Mapping) and m.get("mountPath") not in paths_before]
    if mounted:
        changes.append("mounts " + ", ".join(mounted))
    if "preStop" in _lifecycle(after) and "preStop" not in _lifecycle(before):
        changes.append(f"preStop {_handler(_lifecycle(after)['preStop'])} (drain)")
    changes += [probe for probe in ("readinessProbe", "livenessProbe", "startupProbe")
                if probe in after and probe not in before]
    return f"{name}: {'; '.join(changes)}" if changes else None


def _sidecar_hooks(name: str, native: bool, after: Mapping[str, Any]) -> list[str]:
    hooks: list[str] = []
    if native and "startupProbe" in after:
        hooks.append(f"{name}: startupProbe; the application starts once it passes")
    post_start, pre_stop = _lifecycle(after).get("postStart"), _lifecycle(after).get("preStop")
    if not native and post_start is not None:
        hooks.append(f"{name}: postStart {_handler(post_start)}; the application starts once it returns")
    if not native and pre_stop is not None:
        hooks.append(f"{name}: preStop {_handler(pre_stop)}; keeps it up while the application drains")
    return hooks


def additions(pod: Mapping[str, Any], patched: Mapping[str, Any]) -> Additions:
    """Read what was added from the status annotation and the before/after Pods."""
    status = json.loads(patched["metadata"]["annotations"][STATUS])
    spec_before, spec_after = pod.get("spec") or {}, patched.get("spec") or {}
    native = bool(status.get("native"))
    sidecar_names = set(status.get("containers", []))
    before = _by_name(spec_before.get("containers"))
    injected = {**_by_name(spec_after.get("initContainers")), **_by_name(spec_after.get("containers"))}
    application = [
        change
        for name, container in _by_name(spec_after.get("containers")).items()
        if name not in sidecar_names and (change := _app_changes(name, before.get(name, {}), container))
    ]
    hooks = [hook for name in status.get("containers", []) if name in injected
             for hook in _sidecar_hooks(name, native, injected[name])]
    grace = (spec_before.get("terminationGracePeriodSeconds"), spec_after.get("terminationGracePeriodSeconds"))
    return Additions(
        native=native,
        sidecars=tuple(status.get("containers", [])),
        init_containers=tuple(status.get("initContainers", [])),
        volumes=tuple(status.get("volumes", [])),
        application=tuple(application),
        sidecar_hooks=tuple(hooks),
        grace_seconds=grace,
        share_process_namespace=spec_after.get("shareProcessNamespace") is True
        and spec_before.get("shareProcessNamespace") is not True,
    )


# -- explain --------------------------------------------------------------------------------

NAMESPACE_NOTE = (
    f"note: these answers assume the namespace is labelled {NAMESPACE_LABEL}={NAMESPACE_LABEL_VALUE}; "
    "the API server never sends Pods of other namespaces to the webhook"
)


def _grace_line(before: int | None, after: int | None) -> str:
    if before == after:
        return f"{after}s (unchanged)" if after is not None else "not set (the server's default 30s applies)"
    return f"raised from {before if before is not None else 'default 30'}s to {after}s (covers drain and shutdown)"


def _summary_lines(added: Additions) -> list[str]:
    mode = ("native: initContainers with restartPolicy Always" if added.native
            else "legacy: first in spec.containers")
    lines = [
        f"sidecars: {', '.join(added.sidecars) or 'none'} ({mode})",
        f"init containers: {', '.join(added.init_containers) or 'none'}",
        f"volumes: {', '.join(added.volumes) or 'none'}",
    ]
    lines += [f"application {change}" for change in added.application]
    lines += [f"sidecar {hook}" for hook in added.sidecar_hooks]
    lines.append(f"terminationGracePeriodSeconds: {_grace_line(*added.grace_seconds)}")
    if added.share_process_namespace:
        lines.append("shareProcessNamespace: true (set)")
    return lines


def explain_report(report: TemplateReport) -> str:
    """One block: `Kind/name (namespace ns): decision — why`, the warnings, then what is added."""
    detail = f"profiles {', '.join(report.profiles)}" if report.decision == "injected" else report.message
    lines = [f"{report.workload} (namespace {report.namespace}): {report.decision} — {detail}"]
    lines += [f"  warning: {warning}" for warning in report.warnings]
    if report.added is not None:
        lines += [f"  {line}" for line in _summary_lines(report.added)]
    return "\n".join(lines)


def report_data(report: TemplateReport) -> dict[str, Any]:
    """A report as plain JSON data (`explain --output json`)."""
    data = asdict(report)
    data["path"] = list(report.path)
    data["workload"] = report.workload
    return data


def format_reports(reports: list[TemplateReport], fmt: str = "text") -> str:
    """Every report, as text blocks (with the namespace note) or as one JSON document."""
    if fmt == "json":
        return json.dumps({"templates": [report_data(r) for r in reports]}, indent=2, ensure_ascii=False) + "\n"
    if fmt != "text":
        raise ValueError(f"format must be text or json, got {fmt!r}")
    if not reports:
        return "no Pod templates found\n"
    return "\n\n".join(explain_report(r) for r in reports) + "\n\n" + NAMESPACE_NOTE + "\n"


def explain_documents(docs: list[Any], config: Config, namespace: str = DEFAULT_NAMESPACE, fmt: str = "text") -> str:
    """Why each Pod template would (not) be injected, and what it would get."""
    return format_reports(inject_documents(docs, config, namespace).reports, fmt)
