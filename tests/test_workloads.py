"""webhook.workloads: finding Pod templates in every workload kind, Lists, and writing them back."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from webhook.workloads import OWNER_KINDS, POD_TEMPLATE_PATHS, PodTemplateRef, iter_pod_templates, replace_template


def _template(app: str) -> dict:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": f"{app}:1"}]}}


def _workload(kind: str, name: str = "w", namespace: str | None = "ns") -> dict:
    meta: dict = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _template(name)["spec"]}
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": _template(name)}}},
        }
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {"replicas": 1, "template": _template(name)}}


EXPECTED = {
    # kind: (path, owner_kind)
    "Pod": ((), ""),
    "Deployment": (("spec", "template"), "ReplicaSet"),
    "StatefulSet": (("spec", "template"), "StatefulSet"),
    "DaemonSet": (("spec", "template"), "DaemonSet"),
    "ReplicaSet": (("spec", "template"), "ReplicaSet"),
    "ReplicationController": (("spec", "template"), "ReplicationController"),
    "Job": (("spec", "template"), "Job"),
    "CronJob": (("spec", "jobTemplate", "spec", "template"), "Job"),
}


def test_constants_cover_every_kind() -> None:
    assert set(POD_TEMPLATE_PATHS) == set(EXPECTED) == set(OWNER_KINDS)
    for kind, (path, owner) in EXPECTED.items():
        assert POD_TEMPLATE_PATHS[kind] == path
        assert OWNER_KINDS[kind] == owner


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_kind_yields_its_template(kind: str) -> None:
    obj = _workload(kind, name="web", namespace="shop")
    refs = list(iter_pod_templates(obj))
    path, owner = EXPECTED[kind]
    assert len(refs) == 1
    ref = refs[0]
    assert (ref.kind, ref.name, ref.namespace, ref.path, ref.owner_kind) == (kind, "web", "shop", path, owner)
    node = obj
    for key in path:
        node = node[key]
    assert ref.template is node  # the very dict, so callers can read it in place
    assert ref.template["spec"]["containers"][0]["image"] == "web:1"


def test_pod_template_is_the_pod_itself() -> None:
    pod = _workload("Pod")
    (ref,) = iter_pod_templates(pod)
    assert ref.template is pod and ref.path == ()


def test_missing_name_and_namespace_are_empty_strings() -> None:
    obj = _workload("Deployment", namespace=None)
    del obj["metadata"]["name"]
    (ref,) = iter_pod_templates(obj)
    assert (ref.name, ref.namespace) == ("", "")
    obj.pop("metadata")
    (ref,) = iter_pod_templates(obj)
    assert (ref.name, ref.namespace) == ("", "")


def test_ref_is_frozen() -> None:
    (ref,) = iter_pod_templates(_workload("Job"))
    assert isinstance(ref, PodTemplateRef)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.kind = "Pod"  # type: ignore[misc]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        "Deployment",
        42,
        ["kind", "Pod"],
        {},
        {"kind": ""},
        {"kind": None, "spec": {"template": _template("x")}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"template": "x"}},
        {"apiVersion": "v1", "kind": "PodTemplate", "template": _template("x")},
        {"apiVersion": "example.com/v1", "kind": "Rollout", "spec": {"template": _template("x")}},
    ],
    ids=repr,
)
def test_non_workloads_yield_nothing(obj: object) -> None:
    assert list(iter_pod_templates(obj)) == []


@pytest.mark.parametrize(
    "obj",
    [
        {"kind": "Deployment", "metadata": {"name": "d"}},
        {"kind": "Deployment", "spec": None},
        {"kind": "Deployment", "spec": {"template": None}},
        {"kind": "Deployment", "spec": {"template": "not a dict"}},
        {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {}}}},
        {"kind": "CronJob", "spec": {"jobTemplate": []}},
    ],
    ids=repr,
)
def test_workloads_without_a_template_yield_nothing(obj: dict) -> None:
    assert list(iter_pod_templates(obj)) == []


def test_list_recurses_into_items_with_paths() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            _workload("Deployment", name="a"),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}},
            _workload("CronJob", name="b"),
            "junk",
            _workload("Pod", name="c"),
        ],
    }
    refs = list(iter_pod_templates(obj))
    assert [(r.kind, r.name, r.path) for r in refs] == [
        ("Deployment", "a", ("items", 0, "spec", "template")),
        ("CronJob", "b", ("items", 2, "spec", "jobTemplate", "spec", "template")),
        ("Pod", "c", ("items", 4)),
    ]
    for ref in refs:
        node = obj
        for key in ref.path:
            node = node[key]
        assert node is ref.template


def test_nested_and_typed_lists() -> None:
    inner = {"apiVersion": "v1", "kind": "List", "items": [_workload("DaemonSet", name="ds")]}
    typed = {"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [_workload("Deployment", name="d")]}
    obj = {"apiVersion": "v1", "kind": "List", "items": [inner, typed]}
    assert [(r.kind, r.path) for r in iter_pod_templates(obj)] == [
        ("DaemonSet", ("items", 0, "items", 0, "spec", "template")),
        ("Deployment", ("items", 1, "items", 0, "spec", "template")),
    ]


@pytest.mark.parametrize("items", [None, {}, "x", []])
def test_list_without_items_yields_nothing(items: object) -> None:
    assert list(iter_pod_templates({"kind": "List", "items": items})) == []


def test_iteration_does_not_mutate() -> None:
    obj = {"kind": "List", "items": [_workload(k) for k in EXPECTED]}
    before = copy.deepcopy(obj)
    assert len(list(iter_pod_templates(obj))) == len(EXPECTED)
    assert obj == before


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_replace_template_returns_new_object(kind: str) -> None:
    obj = _workload(kind)
    before = copy.deepcopy(obj)
    (ref,) = iter_pod_templates(obj)
    new = copy.deepcopy(ref.template)
    new["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    new_before = copy.deepcopy(new)

    result = replace_template(obj, ref.path, new)

    assert obj == before, "input object was mutated"
    assert new == new_before, "new template was mutated"
    (out,) = iter_pod_templates(result)
    assert out.template == new
    assert out.template is not new, "result shares the new template with the caller"
    assert [c["name"] for c in out.template["spec"]["containers"]] == [ref.template["spec"]["containers"][0]["name"], "sidecar"]
    # everything outside the template is preserved
    assert result["metadata"] == obj["metadata"] and result["kind"] == kind


def test_replace_template_inside_list() -> None:
    obj = {"kind": "List", "items": [_workload("Deployment", name="a"), _workload("Job", name="b")]}
    before = copy.deepcopy(obj)
    refs = list(iter_pod_templates(obj))
    result = obj
    for ref in refs:
        new = copy.deepcopy(ref.template)
        new["metadata"]["annotations"] = {"injected": "true"}
        result = replace_template(result, ref.path, new)
    assert obj == before
    assert [r.template["metadata"]["annotations"] for r in iter_pod_templates(result)] == [{"injected": "true"}] * 2


def test_replace_template_shares_nothing_with_input() -> None:
    obj = _workload("Deployment")
    (ref,) = iter_pod_templates(obj)
    result = replace_template(obj, ref.path, ref.template)
    result["metadata"]["labels"] = {"changed": "yes"}
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert "labels" not in obj["metadata"]
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "w:1"


@pytest.mark.parametrize("path", [("spec", "nope"), ("spec", "template", "x", "y"), ("items", 3), ("metadata", 0)])
def test_replace_template_rejects_missing_paths(path: tuple) -> None:
    obj = _workload("Deployment")
    before = copy.deepcopy(obj)
    with pytest.raises(KeyError):
        replace_template(obj, path, _template("x"))
    assert obj == before
