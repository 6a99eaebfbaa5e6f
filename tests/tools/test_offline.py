"""Offline injection (`sidecar-injector inject` / `explain`): every workload kind, formats,
idempotence, explanations, and the Istio lesson: each golden case and each corpus template
runs through both the offline path and the webhook path, and both must give the same Pod."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.config import Config, example_config, load_config_file
from webhook.mutate import review
from webhook.tools.cli import main
from webhook.tools.documents import DocumentError, dump_documents, load_documents
from webhook.tools.explain import explain_documents, format_reports
from webhook.tools.offline import inject_documents, with_kubernetes_version
from webhook.workloads import OWNER_KINDS, POD_TEMPLATE_PATHS, iter_pod_templates, replace_template

from corpus import as_pod, corpus_files
from engine_support import BASE_CONFIG, apply, case_config, case_names, decoded_patch, load_review
from k8s_checks import LATEST_SCHEMA, pod_errors

REPO = Path(__file__).resolve().parents[2]
STATUS = "sidecar-injector.io/status"
EXAMPLE = example_config()
GOLDEN = load_config_file(BASE_CONFIG)


# -- builders --------------------------------------------------------------------------------


def _template(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {"app": "web"}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


def _workload(kind: str, name: str = "web", template: dict[str, Any] | None = None,
              namespace: str | None = None) -> dict[str, Any]:
    template = template or _template()
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, **template["metadata"]}, "spec": template["spec"]}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    api = "batch/v1" if kind == "Job" else "v1" if kind == "ReplicationController" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {"template": template}}


def _review_body(pod: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "namespace": namespace, "object": pod}}


def _webhook_pod(template: dict[str, Any], owner_kind: str, namespace: str, config: Config) -> dict[str, Any] | None:
    """The webhook path: the Pod a controller creates from the template, reviewed, patch applied."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": copy.deepcopy(template.get("metadata") or {}),
           "spec": copy.deepcopy(template["spec"])}
    if owner_kind:
        pod["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": owner_kind, "name": "x", "uid": "u"}]
    ops = decoded_patch(review(_review_body(pod, namespace), config))
    if ops is None:
        return None
    patched = apply(pod, ops)
    patched["metadata"].pop("ownerReferences", None)
    return patched


def _workload_of(doc: dict[str, Any], ref: Any) -> dict[str, Any]:
    node: Any = doc
    for key in ref.path[: len(ref.path) - len(POD_TEMPLATE_PATHS[ref.kind])]:
        node = node[key]
    workload: dict[str, Any] = node
    return workload


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", *args], check=False, input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=REPO)


# -- every kind, Lists, pass-through ------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(POD_TEMPLATE_PATHS))
def test_every_workload_kind_is_injected_like_the_webhook_injects_its_pods(kind: str) -> None:
    doc = _workload(kind, namespace="shop")
    original = copy.deepcopy(doc)
    result = inject_documents([doc], EXAMPLE)
    assert doc == original, "the input must not be modified"
    [report] = result.reports
    assert (report.kind, report.name, report.namespace, report.decision) == (kind, "web", "shop", "injected")
    [out] = result.documents
    [ref] = iter_pod_templates(out)
    template = ref.template
    assert STATUS in template["metadata"]["annotations"]
    assert [c["name"] for c in template["spec"]["initContainers"]] == ["proxy"]
    assert "ownerReferences" not in template["metadata"]
    # Only the template changed: putting the original one back gives the input.
    [original_ref] = iter_pod_templates(original)
    assert replace_template(out, ref.path, original_ref.template) == original
    # The webhook path, on the Pod a controller would create, gives the same metadata and spec.
    expected = _webhook_pod(original_ref.template, OWNER_KINDS[kind], "shop", EXAMPLE)
    assert expected is not None
    assert template["metadata"] == expected["metadata"]
    assert template["spec"] == expected["spec"]


def test_list_items_are_injected_and_other_items_kept() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    doc = {"apiVersion": "v1", "kind": "List", "items": [service, _workload("Deployment"), _workload("Pod", "p")]}
    result = inject_documents([doc], EXAMPLE)
    assert [(r.workload, r.path, r.decision) for r in result.reports] == [
        ("Deployment/web", ("items", 1, "spec", "template"), "injected"),
        ("Pod/p", ("items", 2), "injected"),
    ]
    items = result.documents[0]["items"]
    assert items[0] == service
    assert STATUS in items[1]["spec"]["template"]["metadata"]["annotations"]
    assert STATUS in items[2]["metadata"]["annotations"]


def test_multi_document_yaml_keeps_other_kinds_and_order() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {when: "2024-01-01", mode: "on", octal: "0755"}
---
# a comment, and an empty document next
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {template: {spec: {containers: [{name: not-a-pod}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: nginx}]}
---
just a string
"""
    docs, fmt = load_documents(text)
    assert fmt == "yaml" and len(docs) == 4
    result = inject_documents(docs, EXAMPLE)
    assert [r.workload for r in result.reports] == ["Deployment/web"]
    out = dump_documents(result.documents, fmt)
    assert out.count("\n---\n") == 3 and not out.startswith("---")
    again, _ = load_documents(out)
    assert again[0] == docs[0] and again[1] == docs[1] and again[3] == docs[3]
    assert again[0]["data"] == {"when": "2024-01-01", "mode": "on", "octal": "0755"}  # strings stay strings
    assert again[2] == result.documents[2]
    assert "&id" not in out and "*id" not in out  # no YAML anchors, even for shared objects


def test_json_in_json_out_and_json_streams() -> None:
    pod = _workload("Pod", "p")
    docs, fmt = load_documents(json.dumps(pod))
    assert (docs, fmt) == ([pod], "json")
    out = dump_documents(inject_documents(docs, EXAMPLE).documents, fmt)
    assert STATUS in json.loads(out)["metadata"]["annotations"]
    stream = json.dumps(pod) + "\n" + json.dumps(_workload("Job", "j"), indent=1)
    docs, fmt = load_documents(stream)
    assert fmt == "json" and [d["kind"] for d in docs] == ["Pod", "Job"]
    again, _ = load_documents(dump_documents(docs, "json"))
    assert again == docs


def test_unreadable_input_is_a_clear_error() -> None:
    with pytest.raises(DocumentError, match="not valid JSON"):
        load_documents('{"kind": "Pod",')
    with pytest.raises(DocumentError, match="not valid YAML"):
        load_documents("kind: Pod\n  bad: [indent")
    assert load_documents("") == ([], "yaml")
    assert load_documents("{kind: Pod, metadata: {name: p}}")[1] == "yaml"  # flow mapping: YAML, not JSON


@pytest.mark.parametrize("metadata", ["not-a-map", None, {"ownerReferences": "odd"}])
def test_odd_template_metadata_is_judged_by_the_policy_not_a_crash(metadata: Any) -> None:
    template = {"metadata": metadata, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    doc = _workload("Job", template=template)
    result = inject_documents([doc], EXAMPLE)
    [report] = result.reports
    if metadata == "not-a-map":
        assert (report.reason, result.documents) == ("malformed-pod", [doc])
    else:
        assert report.decision == "injected"
        written = result.documents[0]["spec"]["template"]["metadata"]
        assert written.get("ownerReferences") == (metadata or {}).get("ownerReferences")


# -- run-to-completion owners, versions, idempotence -------------------------------------------


@pytest.mark.parametrize(("kind", "native"), [("Job", True), ("CronJob", True), ("Deployment", False)])
def test_job_and_cronjob_templates_get_native_sidecars(kind: str, native: bool) -> None:
    """The golden config's logging profile is legacy; only the owner (a Job) makes it native.

    The template sets no restartPolicy, so the owner kind alone decides."""
    template = _template({"sidecar-injector.io/profiles": "logging"})
    result = inject_documents([_workload(kind, template=template)], GOLDEN)
    [ref] = iter_pod_templates(result.documents[0])
    spec = ref.template["spec"]
    if native:
        assert [(c["name"], c["restartPolicy"]) for c in spec["initContainers"]] == [("log-shipper", "Always")]
        assert [c["name"] for c in spec["containers"]] == ["app"]
    else:
        assert "initContainers" not in spec
        assert [c["name"] for c in spec["containers"]] == ["log-shipper", "app"]
    assert result.reports[0].added is not None and result.reports[0].added.native is native


def test_kubernetes_version_override() -> None:
    old = with_kubernetes_version(EXAMPLE, "1.28")
    assert with_kubernetes_version(EXAMPLE, None) is EXAMPLE
    job = _workload("Job", "j", _template(restartPolicy="Never"))
    result = inject_documents([_workload("Deployment"), job], old)
    [web] = iter_pod_templates(result.documents[0])
    assert [c["name"] for c in web.template["spec"]["containers"]] == ["proxy", "app"]  # legacy before 1.29
    # A legacy sidecar would keep the Job from completing: its profile's runToCompletion (skip) applies.
    assert result.documents[1] == job
    assert result.reports[1].reason == "run-to-completion"


def test_injecting_the_output_again_changes_nothing() -> None:
    docs = [_workload(kind) for kind in sorted(POD_TEMPLATE_PATHS)]
    first = inject_documents(docs, EXAMPLE)
    second = inject_documents(first.documents, EXAMPLE)
    assert second.documents == first.documents
    assert {r.reason for r in second.reports} == {"already-injected"}
    text = dump_documents(first.documents, "yaml")
    assert dump_documents(inject_documents(load_documents(text)[0], EXAMPLE).documents, "yaml") == text


def test_denied_template_is_reported_and_left_unchanged() -> None:
    bad = _workload("Deployment", "bad", _template({"sidecar-injector.io/drain-seconds": "abc"}))
    result = inject_documents([bad, _workload("Pod", "good")], EXAMPLE)
    assert [(r.workload, r.decision, r.allowed) for r in result.reports] == [
        ("Deployment/bad", "denied", False), ("Pod/good", "injected", True)]
    assert result.documents[0] == bad
    assert [r.workload for r in result.denied] == ["Deployment/bad"]
    assert "sidecar-injector.io/drain-seconds" in result.denied[0].message


# -- explain ------------------------------------------------------------------------------------


def _explain_docs() -> list[dict[str, Any]]:
    return [
        _workload("Deployment", "web", _template(terminationGracePeriodSeconds=10), namespace="shop"),
        _workload("Pod", "out", _template({"sidecar-injector.io/inject": "false"})),
        _workload("DaemonSet", "agent", _template(hostNetwork=True)),
        _workload("Job", "bad", _template({"sidecar-injector.io/drain-seconds": "abc"}, restartPolicy="Never")),
    ]


def test_explain_text_answers_why() -> None:
    text = explain_documents(_explain_docs(), EXAMPLE)
    blocks = text.split("\n\n")
    injected, opted_out, host_network, denied, note = blocks
    assert injected.splitlines()[0] == "Deployment/web (namespace shop): injected — profiles proxy"
    assert "  warning: terminationGracePeriodSeconds raised from 10 to 30 to cover drain and shutdown" in injected
    for line in ("  sidecars: proxy (native: initContainers with restartPolicy Always)",
                 "  init containers: none",
                 "  volumes: proxy-config, podinfo, proxy-token",
                 "  application app: mounts /etc/podinfo; preStop sleep 5s (drain)",
                 "  sidecar proxy: startupProbe; the application starts once it passes",
                 "  terminationGracePeriodSeconds: raised from 10s to 30s (covers drain and shutdown)"):
        assert line in injected.splitlines()
    assert opted_out == ('Pod/out (namespace default): skipped — the Pod sets annotation '
                         'sidecar-injector.io/inject: "false"')
    assert host_network.startswith("DaemonSet/agent (namespace default): skipped — hostNetwork Pod (sidecar ports would clash")
    assert "warning" not in host_network  # the reason is said once, not repeated as a warning
    assert denied == ("Job/bad (namespace default): denied — annotation sidecar-injector.io/drain-seconds='abc' "
                      "is invalid: allowed values are whole seconds from 0 to 3600")
    assert note.startswith("note: these answers assume the namespace is labelled sidecar-injector.io/inject=enabled")


def test_explain_names_every_problem() -> None:
    docs = [_workload("Pod", "bad", _template({"sidecar-injector.io/drain-seconds": "abc",
                                               "sidecar-injector.io/podinfo": "maybe"}))]
    block = explain_documents(docs, EXAMPLE).split("\n\n")[0].splitlines()
    assert block[0] == "Pod/bad (namespace default): denied — 2 problems"
    assert block[1].startswith("  problem: annotation sidecar-injector.io/drain-seconds='abc' is invalid")
    assert block[2].startswith("  problem: annotation sidecar-injector.io/podinfo='maybe' is invalid")
    data = json.loads(explain_documents(docs, EXAMPLE, fmt="json"))["templates"][0]
    assert len(data["problems"]) == 2 and data["message"].startswith("2 problems: ")


def test_explain_json_for_machines() -> None:
    data = json.loads(explain_documents(_explain_docs(), EXAMPLE, fmt="json"))
    templates = data["templates"]
    assert [(t["workload"], t["decision"], t["reason"], t["allowed"]) for t in templates] == [
        ("Deployment/web", "injected", "injected", True),
        ("Pod/out", "skipped", "opted-out", True),
        ("DaemonSet/agent", "skipped", "host-network", True),
        ("Job/bad", "denied", "invalid-annotation", False),
    ]
    web = templates[0]
    assert web["path"] == ["spec", "template"] and web["namespace"] == "shop" and web["profiles"] == ["proxy"]
    assert web["added"]["sidecars"] == ["proxy"] and web["added"]["native"] is True
    assert web["added"]["grace_seconds"] == [10, 30]
    assert templates[1]["added"] is None
    assert format_reports([]) == "no Pod templates found\n"


def test_explain_legacy_and_shared_process_namespace() -> None:
    template = _template({"sidecar-injector.io/native-sidecar": "false",
                          "sidecar-injector.io/share-process-namespace": "true"})
    text = explain_documents([_workload("StatefulSet", "db", template)], EXAMPLE)
    lines = text.splitlines()
    assert "  sidecars: proxy (legacy: first in spec.containers)" in lines
    assert "  shareProcessNamespace: true (set)" in lines
    assert any(line.startswith("  sidecar proxy: postStart exec sh -c until wget") for line in lines)
    assert "  sidecar proxy: preStop sleep 10s; keeps it up while the application drains" in lines


# -- both paths on every golden case -------------------------------------------------------------

# Pods created by these controllers are wrapped back into a workload of this kind.
WRAPPERS = {"Job": "Job", "ReplicaSet": "Deployment", "StatefulSet": "StatefulSet", "DaemonSet": "DaemonSet"}
POD_CREATE_CASES = [
    case for case in case_names()
    if load_review(case)["request"].get("kind", {}).get("kind") == "Pod"
    and load_review(case)["request"].get("operation") == "CREATE"
    and not load_review(case)["request"].get("subResource")
]


def _requesters_enabled(config: Config) -> bool:
    # The fixture's userInfo is an input the offline path does not have (a bare Pod's creator
    # is whoever applies it), so the requester check cannot be compared.
    return bool(config.model_dump().get("requesters", {}).get("enabled"))


def test_golden_pod_create_cases_exist() -> None:
    assert len(POD_CREATE_CASES) >= 30


@pytest.mark.parametrize("case", POD_CREATE_CASES)
def test_offline_path_gives_the_webhook_pod(case: str) -> None:
    body, config = load_review(case), case_config(case)
    if _requesters_enabled(config):
        pytest.skip("requester checks need the review's userInfo, which offline manifests do not carry")
    request = body["request"]
    pod = request["object"]
    outcome = review(body, config)
    result = inject_documents([pod], config, request["namespace"])
    [report] = result.reports
    assert (report.decision, report.reason) == (outcome.decision, outcome.reason)
    assert set(report.warnings) <= set(outcome.warnings)
    ops = decoded_patch(outcome)
    assert result.documents == [apply(pod, ops) if ops is not None else pod]


@pytest.mark.parametrize("case", [c for c in POD_CREATE_CASES if (load_review(c)["request"]["object"].get(
    "metadata", {}).get("ownerReferences") or [{}])[0].get("kind") in WRAPPERS])
def test_offline_workload_template_gives_the_webhook_pod(case: str) -> None:
    """The controller-created Pods of the goldens, wrapped back into their workload.

    No requester skip here: offline reviews of a workload's template carry its controller's
    identity, as the goldens' controller-created Pods do."""
    body, config = load_review(case), case_config(case)
    request = body["request"]
    pod = request["object"]
    owner = pod["metadata"]["ownerReferences"][0]
    per_pod = ("name", "generateName", "namespace", "ownerReferences", "uid")
    template = {"metadata": {k: v for k, v in pod["metadata"].items() if k not in per_pod}, "spec": pod["spec"]}
    workload = _workload(WRAPPERS[owner["kind"]], owner["name"], template, request["namespace"])
    result = inject_documents([workload], config)
    outcome = review(body, config)
    assert result.reports[0].decision == outcome.decision
    [ref] = iter_pod_templates(result.documents[0])
    expected = apply(pod, decoded_patch(outcome) or [])
    assert ref.template["spec"] == expected["spec"]
    assert ref.template["metadata"] == {k: v for k, v in expected["metadata"].items() if k not in per_pod}


# -- the command line ----------------------------------------------------------------------------


def _manifest_file(tmp_path: Path) -> tuple[Path, list[Any]]:
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
            _workload("Deployment", "web", _template(terminationGracePeriodSeconds=10)),
            _workload("CronJob", "nightly", _template(restartPolicy="OnFailure"))]
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path, docs


def test_cli_inject_file_yaml(tmp_path: Path) -> None:
    path, docs = _manifest_file(tmp_path)
    done = _cli("inject", "-f", str(path))
    assert done.returncode == 0, done.stderr
    out = list(yaml.safe_load_all(done.stdout))
    assert out == inject_documents(docs, EXAMPLE).documents
    assert out[0] == docs[0]
    assert "Deployment/web: terminationGracePeriodSeconds raised from 10 to 30" in done.stderr


def test_cli_inject_stdin_json_with_options() -> None:
    doc = _workload("Job", "j", _template(restartPolicy="Never"))
    done = _cli("inject", "-f", "-", "--kubernetes-version", "1.28", "--namespace", "batch", stdin=json.dumps(doc))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == doc
    assert "Job/j: skipped: a legacy sidecar would keep this run-to-completion Pod from completing" in done.stderr
    done = _cli("inject", "-f", "-", "--kubernetes-version", "1.29", "--namespace", "batch", stdin=json.dumps(doc))
    out = json.loads(done.stdout)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["initContainers"]] == ["proxy"]


def test_cli_inject_denied_exits_1_and_still_writes_everything(tmp_path: Path) -> None:
    bad = _workload("Pod", "bad", _template({"sidecar-injector.io/drain-seconds": "abc"}))
    out_opted = _workload("Pod", "out", _template({"sidecar-injector.io/inject": "false"}))
    docs = [bad, _workload("Deployment", "web"), out_opted]
    path = tmp_path / "app.json"
    path.write_text("\n".join(json.dumps(d) for d in docs))
    done = _cli("inject", "-f", str(path))
    assert done.returncode == 1
    assert "sidecar-injector: error: Pod/bad: annotation sidecar-injector.io/drain-seconds='abc' is invalid" in done.stderr
    assert 'Pod/out: skipped: the Pod sets annotation sidecar-injector.io/inject: "false"' in done.stderr
    out, fmt = load_documents(done.stdout)
    assert fmt == "json" and out[0] == bad and out[2] == out_opted
    assert STATUS in out[1]["spec"]["template"]["metadata"]["annotations"]


def test_cli_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(_explain_docs()))
    assert main(["explain", "-f", str(path)]) == 0
    assert capsys.readouterr().out == explain_documents(_explain_docs(), EXAMPLE)
    assert main(["explain", "-f", str(path), "--output", "json", "-n", "shop"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["namespace"] for t in data["templates"]] == ["shop"] * 4
    assert main(["inject", "-f", str(path), "--explain"]) == 1  # the denied Job still fails inject
    captured = capsys.readouterr()
    assert "Deployment/web (namespace shop): injected — profiles proxy" in captured.err
    assert "sidecar-injector: error: Job/bad: annotation sidecar-injector.io/drain-seconds='abc'" in captured.err
    assert len(list(yaml.safe_load_all(captured.out))) == 4


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": ')
    assert main(["explain", "-f", str(bad)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    path, _ = _manifest_file(tmp_path)
    assert main(["inject", "-f", str(path), "--kubernetes-version", "banana"]) == 1
    assert "--kubernetes-version" in capsys.readouterr().err
    config = tmp_path / "config.yaml"
    config.write_text("defaultProfiles: [nope]\n")
    assert main(["inject", "-f", str(path), "--config", str(config)]) == 1
    assert "nope" in capsys.readouterr().err


# -- the corpus of real manifests ----------------------------------------------------------------

CORPUS = corpus_files()


@pytest.mark.skipif(not CORPUS, reason="../shared/corpus not present: the real-manifest corpus lives beside the project")
@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_file_injects_offline(path: Path) -> None:
    docs, fmt = load_documents(path.read_text(encoding="utf-8"))
    result = inject_documents(docs, EXAMPLE)
    assert result.denied == []
    injected = {(r.document, r.path) for r in result.reports if r.decision == "injected"}
    for index, (before, after) in enumerate(zip(docs, result.documents, strict=True)):
        originals = {ref.path: ref for ref in iter_pod_templates(before)}
        for ref in iter_pod_templates(after):
            if (index, ref.path) not in injected:
                assert ref.template == originals[ref.path].template
                continue
            # Judged as the Pod a controller creates (the workload's own apiVersion may be a
            # removed one such as batch/v1beta1, which no schema has any more).
            assert pod_errors(as_pod(_workload_of(after, ref), ref), LATEST_SCHEMA) == []
            original = originals[ref.path]
            expected = _webhook_pod(original.template, original.owner_kind, original.namespace or "default", EXAMPLE)
            assert expected is not None
            assert ref.template["spec"] == expected["spec"]
            if ref.kind != "Pod":
                assert ref.template["metadata"] == expected["metadata"]
    assert load_documents(dump_documents(result.documents, fmt))[0] == result.documents
    assert inject_documents(result.documents, EXAMPLE).documents == result.documents
