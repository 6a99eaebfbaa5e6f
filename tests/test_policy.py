"""webhook/policy.py: decide() (every branch, in README's order); and webhook/settings.py's resolve() (how profiles merge), reached through decide()."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook import annotations as ann
from webhook.config import Config, PodInfo, Probes, parse_config
from webhook.errors import AnnotationError, LimitExceeded, ProfileNotAllowed, RequesterNotAllowed
from webhook.policy import Decision, PodContext, decide, owner_kinds, runs_to_completion
from webhook.settings import resolve

SHOP = PodContext(namespace="shop")

PROFILES: dict[str, Any] = {
    "proxy": {
        "containers": [{"name": "proxy", "image": "example.com/proxy:1",
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 9901}, "periodSeconds": 1}}],
        "nativeSidecar": True,
        "holdApplication": True,
        "drainSeconds": 5,
        "terminationGracePeriodSeconds": 30,
        "sidecarShutdownSeconds": 5,
        "podinfo": {"enabled": True, "mountPath": "/etc/podinfo"},
    },
    "logging": {
        "containers": [{"name": "log-shipper", "image": "example.com/fluent-bit:3"}],
        "nativeSidecar": False,
        "holdApplication": False,
        "drainSeconds": 2,
        "sidecarShutdownSeconds": 10,
        "terminationGracePeriodSeconds": 60,
        "shareProcessNamespace": True,
        "podinfo": {"enabled": True, "mountPath": "/etc/loginfo", "volumeName": "loginfo"},
    },
    "jvm": {
        "probes": {"enabled": True, "startupPeriodSeconds": 5, "readiness": {"periodSeconds": 7}},
        "warmupSeconds": 90,
        "holdApplication": False,
    },
    "internal": {
        "containers": [{"name": "vault-agent", "image": "example.com/vault:1"}],
        "namespaces": {"allow": ["platform-*"], "deny": ["platform-sandbox"]},
    },
}


def make_config(**keys: Any) -> Config:
    data: dict[str, Any] = {"defaultProfiles": ["proxy"], "profiles": copy.deepcopy(PROFILES)}
    data.update(keys)
    return parse_config(data, "test")


CONFIG = make_config()


def make_pod(annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "labels": {"app": "web", **(labels or {})}}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec},
    }


def injected(pod: dict[str, Any], context: PodContext = SHOP, config: Config = CONFIG) -> Decision:
    before = copy.deepcopy(pod)
    decision = decide(pod, context, config)
    assert pod == before, "decide() modified the Pod"
    assert decision.inject and decision.reason == "injected" and decision.settings is not None, decision
    return decision


def skipped(pod: dict[str, Any], reason: str, context: PodContext = SHOP, config: Config = CONFIG) -> Decision:
    decision = decide(pod, context, config)
    assert not decision.inject and decision.settings is None, decision
    assert decision.reason == reason, decision
    return decision


# --------------------------------------------------------------------------- malformed Pods


def _with(path: tuple[Any, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    pod = make_pod(initContainers=[{"name": "init", "image": "busybox"}])
    target: Any = pod
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return pod


@pytest.mark.parametrize(
    "pod, problem",
    [
        (_with(("metadata",), []), "metadata is not an object"),
        (_with(("metadata",), None), "metadata is not an object"),
        (_with(("metadata",), "web"), "metadata is not an object"),
        (_with(("metadata", "annotations"), {"team": 1}), "metadata.annotations is not a map of strings"),
        (_with(("metadata", "annotations"), {ann.DRAIN_SECONDS: 5}), "metadata.annotations is not a map of strings"),
        (_with(("metadata", "annotations"), None), "metadata.annotations is not a map of strings"),
        (_with(("metadata", "annotations"), ["a"]), "metadata.annotations is not a map of strings"),
        (_with(("metadata", "labels"), {"app": True}), "metadata.labels is not a map of strings"),
        (_with(("spec",), None, delete=True), "spec is missing or not an object"),
        (_with(("spec",), []), "spec is missing or not an object"),
        (_with(("spec", "containers"), []), "spec.containers is empty"),
        (_with(("spec", "containers"), None, delete=True), "spec.containers is empty"),
        (_with(("spec", "containers"), {"name": "app"}), "spec.containers is not a list"),
        (_with(("spec", "containers"), "app"), "spec.containers is not a list"),
        (_with(("spec", "containers"), [{"image": "x"}]), "spec.containers[0] is not an object with a name"),
        (_with(("spec", "containers"), ["app"]), "spec.containers[0] is not an object with a name"),
        (_with(("spec", "containers"), [{"name": 7}]), "spec.containers[0] is not an object with a name"),
        (_with(("spec", "initContainers"), None), "spec.initContainers is not a list"),
        (_with(("spec", "initContainers"), [{"name": "i"}, None]), "spec.initContainers[1] is not an object with a name"),
        (_with(("spec", "ephemeralContainers"), [{"name": None}]),
         "spec.ephemeralContainers[0] is not an object with a name"),
        (_with(("spec", "volumes"), {"name": "v"}), "spec.volumes is not a list"),
        (_with(("spec", "volumes"), [{"emptyDir": {}}]), "spec.volumes[0] is not an object with a name"),
        (_with(("spec", "containers", 0, "lifecycle"), "preStop"), "spec.containers[0].lifecycle is not an object"),
        (_with(("spec", "containers", 0, "readinessProbe"), []), "spec.containers[0].readinessProbe is not an object"),
        (_with(("spec", "containers", 0, "livenessProbe"), None), "spec.containers[0].livenessProbe is not an object"),
        (_with(("spec", "initContainers", 0, "startupProbe"), 1), "spec.initContainers[0].startupProbe is not an object"),
        (_with(("spec", "containers", 0, "env"), {"A": "b"}), "spec.containers[0].env is not a list of objects"),
        (_with(("spec", "containers", 0, "volumeMounts"), ["data"]),
         "spec.containers[0].volumeMounts is not a list of objects"),
        (_with(("spec", "containers", 0, "ports"), [8080]), "spec.containers[0].ports is not a list of objects"),
        (_with(("spec", "containers", 0, "ports"), None), "spec.containers[0].ports is not a list of objects"),
        (_with(("spec", "terminationGracePeriodSeconds"), 60.0), "spec.terminationGracePeriodSeconds is not an integer"),
        (_with(("spec", "terminationGracePeriodSeconds"), "90"), "spec.terminationGracePeriodSeconds is not an integer"),
        (_with(("spec", "terminationGracePeriodSeconds"), True), "spec.terminationGracePeriodSeconds is not an integer"),
    ],
)
def test_malformed_pods_are_skipped_with_the_problem_named(pod: dict[str, Any], problem: str) -> None:
    decision = skipped(pod, "malformed-pod")
    assert decision.message == problem
    assert decision.warnings == (f"not injected: {problem}",)


def test_shape_is_checked_before_anything_else() -> None:
    pod = _with(("spec", "containers"), [])
    pod["metadata"]["annotations"] = {ann.INJECT: "nonsense", ann.DRAIN_SECONDS: "x"}
    skipped(pod, "malformed-pod")


def test_missing_metadata_is_fine() -> None:
    pod = make_pod()
    del pod["metadata"]
    injected(pod)


# --------------------------------------------------------------------------- opt-out and status


@pytest.mark.parametrize("value", ["false", "FALSE", " False "])
def test_opt_out_by_annotation(value: str) -> None:
    decision = skipped(make_pod({ann.INJECT: value}), "opted-out")
    assert decision.message == f'the Pod sets annotation {ann.INJECT}: "false"'
    assert decision.warnings == (f"not injected: {decision.message}",)  # every skip says why


def test_opt_out_by_label() -> None:
    decision = skipped(make_pod(labels={ann.INJECT: "false"}), "opted-out")
    assert decision.message == f'the Pod has label {ann.INJECT}: "false"'


def test_opted_out_pods_are_never_denied_over_other_annotations() -> None:
    annotations = {ann.INJECT: "false", ann.DRAIN_SECONDS: "soon", ann.PROFILES: "ghost"}
    skipped(make_pod(annotations), "opted-out", config=make_config(requesters={"enabled": True, "onMismatch": "deny"}),
            context=PodContext(namespace="shop", username="alice"))
    skipped(make_pod({ann.PROFILES: "ghost"}, labels={ann.INJECT: "false"}), "opted-out")


def test_annotation_true_overrides_label_false() -> None:
    injected(make_pod({ann.INJECT: "true"}, labels={ann.INJECT: "false"}))


def test_annotation_false_wins_over_label_true() -> None:
    decision = skipped(make_pod({ann.INJECT: "false"}, labels={ann.INJECT: "true"}), "opted-out")
    assert "annotation" in decision.message


def test_invalid_inject_annotation_is_denied() -> None:
    with pytest.raises(AnnotationError) as info:
        decide(make_pod({ann.INJECT: "no"}), SHOP, CONFIG)
    assert info.value.annotation == ann.INJECT and info.value.value == "no"


def test_invalid_inject_label_is_denied_naming_the_label() -> None:
    with pytest.raises(AnnotationError) as info:
        decide(make_pod(labels={ann.INJECT: "disabled"}), SHOP, CONFIG)
    assert info.value.annotation == ann.INJECT + " (label)"


def test_already_injected() -> None:
    decision = skipped(make_pod({ann.STATUS: "{}"}), "already-injected")
    assert decision.message == f"the Pod already carries {ann.STATUS}"


def test_already_injected_is_not_denied_over_other_annotations() -> None:
    skipped(make_pod({ann.STATUS: "", ann.DRAIN_SECONDS: "soon", ann.PROFILES: "ghost"}), "already-injected")


def test_already_injected_is_reported_before_anything_else() -> None:
    skipped(make_pod({ann.STATUS: "{}", ann.INJECT: "false"}), "already-injected")
    skipped(make_pod({ann.STATUS: "{}", ann.INJECT: "nope"}), "already-injected")  # not denied


# --------------------------------------------------------------------------- annotations that deny


@pytest.mark.parametrize(
    "annotations, name",
    [
        ({ann.DRAIN_SECONDS: "3601"}, ann.DRAIN_SECONDS),
        ({ann.WARMUP_SECONDS: "5s"}, ann.WARMUP_SECONDS),
        ({ann.PODINFO: "yes"}, ann.PODINFO),
        ({ann.PROFILES: "proxy,ghost"}, ann.PROFILES),
        ({ann.PROFILES: ""}, ann.PROFILES),
    ],
)
def test_unreadable_annotations_deny(annotations: dict[str, str], name: str) -> None:
    with pytest.raises(AnnotationError) as info:
        decide(make_pod(annotations), SHOP, CONFIG)
    assert info.value.annotation == name and info.value.code == 400


def test_unknown_annotations_warn() -> None:
    decision = injected(make_pod({ann.PREFIX + "drain-second": "5", ann.PREFIX + "podInfo": "true"}))
    assert decision.warnings[:2] == (
        f"unknown annotation {ann.PREFIX}drain-second ignored (check its spelling)",
        f"unknown annotation {ann.PREFIX}podInfo ignored (check its spelling)",
    )


def test_injected_decision_names_the_profiles() -> None:
    decision = injected(make_pod({ann.PROFILES: "logging,proxy"}))
    assert decision.message == "injecting profiles logging, proxy"
    assert [name for name, _ in decision.settings.profiles] == ["logging", "proxy"]


# --------------------------------------------------------------------------- hostNetwork


def test_host_network_is_skipped_with_a_warning() -> None:
    decision = skipped(make_pod(hostNetwork=True), "host-network")
    assert ann.INJECT in decision.message and "hostNetwork" in decision.message
    assert decision.warnings == (f"not injected: {decision.message}",)


def test_host_network_skip_keeps_unknown_annotation_warnings() -> None:
    decision = skipped(make_pod({ann.PREFIX + "typo": "x"}, hostNetwork=True), "host-network")
    assert len(decision.warnings) == 2 and "typo" in decision.warnings[0]


def test_host_network_forced_by_the_pod() -> None:
    injected(make_pod({ann.INJECT: "TRUE"}, hostNetwork=True))


def test_host_network_label_true_forces_too() -> None:
    # the label is the same switch (annotation wins only when both are present)
    injected(make_pod(labels={ann.INJECT: "true"}, hostNetwork=True))


def test_host_network_injected_when_configured() -> None:
    injected(make_pod(hostNetwork=True), config=make_config(injectHostNetwork=True))


def test_host_network_false_is_an_ordinary_pod() -> None:
    injected(make_pod(hostNetwork=False))


def test_host_network_pod_with_an_unreadable_annotation_is_denied() -> None:
    # README: step 4 (deny) comes before step 5 (hostNetwork skip).
    with pytest.raises(AnnotationError):
        decide(make_pod({ann.PODINFO: "maybe"}, hostNetwork=True), SHOP, CONFIG)


# --------------------------------------------------------------------------- profiles and namespaces


def test_no_profiles_selected() -> None:
    decision = skipped(make_pod(), "no-profiles", config=make_config(defaultProfiles=[]))
    assert decision.message == f"no profiles selected: no {ann.PROFILES} annotation and no defaultProfiles"


def test_explicit_profiles_are_used_even_without_defaults() -> None:
    injected(make_pod({ann.PROFILES: "logging"}), config=make_config(defaultProfiles=[]))


@pytest.mark.parametrize("namespace", ["platform-a", "platform-"])
def test_restricted_profile_allowed_in_its_namespaces(namespace: str) -> None:
    injected(make_pod({ann.PROFILES: "internal"}), context=PodContext(namespace=namespace))


@pytest.mark.parametrize(
    "namespace, shown", [("shop", "shop"), ("platform-sandbox", "platform-sandbox"), ("", "(none)")]
)
def test_explicit_profile_denied_names_profile_and_namespace(namespace: str, shown: str) -> None:
    with pytest.raises(ProfileNotAllowed) as info:
        decide(make_pod({ann.PROFILES: "proxy,internal"}), PodContext(namespace=namespace), CONFIG)
    assert str(info.value) == f"profile internal may not be used in namespace {shown}"
    assert info.value.code == 403 and info.value.reason == "profile-not-allowed"


def test_default_profile_not_allowed_is_left_out_with_a_warning() -> None:
    config = make_config(defaultProfiles=["internal", "proxy"])
    decision = injected(make_pod(), config=config)
    assert [name for name, _ in decision.settings.profiles] == ["proxy"]
    assert "default profile internal is not allowed in namespace shop; left out" in decision.warnings


def test_when_every_default_profile_is_left_out_nothing_is_injected() -> None:
    config = make_config(defaultProfiles=["internal"])
    decision = skipped(make_pod(), "no-profiles", config=config)
    assert decision.message == "no default profile is allowed in namespace shop"
    assert decision.warnings == (
        "default profile internal is not allowed in namespace shop; left out",
        "not injected: no default profile is allowed in namespace shop",
    )


# --------------------------------------------------------------------------- requesters


REQUESTERS_ON = {"enabled": True}
CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


@pytest.mark.parametrize("on_mismatch", ["allow", "deny"])
@pytest.mark.parametrize(
    "username, groups",
    [(CONTROLLER, ()), ("system:kube-controller-manager", ()), ("alice", ("system:authenticated", "system:masters"))],
)
def test_permitted_requesters_are_injected(username: str, groups: tuple[str, ...], on_mismatch: str) -> None:
    config = make_config(requesters={**REQUESTERS_ON, "onMismatch": on_mismatch})
    injected(make_pod(), PodContext(namespace="shop", username=username, groups=groups), config)


def test_other_requester_with_on_mismatch_allow_is_skipped_with_a_warning() -> None:
    config = make_config(requesters={**REQUESTERS_ON, "onMismatch": "allow"})
    context = PodContext(namespace="shop", username="alice", groups=("system:authenticated",))
    decision = skipped(make_pod(), "requester-not-allowed", context, config)
    assert decision.message == "requester alice may not trigger sidecar injection"
    assert decision.warnings == ("not injected: requester alice may not trigger sidecar injection",)


def test_other_requester_with_on_mismatch_deny_is_denied() -> None:
    config = make_config(requesters={**REQUESTERS_ON, "onMismatch": "deny"})
    with pytest.raises(RequesterNotAllowed) as info:
        decide(make_pod(), PodContext(namespace="shop", username="alice"), config)
    assert str(info.value) == "requester alice may not trigger sidecar injection"
    assert info.value.code == 403 and info.value.reason == "requester-not-allowed"


def test_empty_username_is_checked() -> None:
    config = make_config(requesters={**REQUESTERS_ON, "onMismatch": "deny"})
    with pytest.raises(RequesterNotAllowed):
        decide(make_pod(), PodContext(namespace="shop", username=""), config)


def test_unknown_requester_offline_is_not_checked() -> None:
    config = make_config(requesters={**REQUESTERS_ON, "onMismatch": "deny"})
    injected(make_pod(), PodContext(namespace="shop", username=None), config)


def test_requesters_disabled_lets_anyone_through() -> None:
    injected(make_pod(), PodContext(namespace="shop", username="alice"))


# --------------------------------------------------------------------------- maxContainers


def test_max_containers_counts_containers_and_init_containers() -> None:
    config = make_config(limits={"maxContainers": 2})
    injected(make_pod(initContainers=[{"name": "init", "image": "busybox"}]), config=config)
    pod = make_pod(initContainers=[{"name": "init", "image": "busybox"}])
    pod["spec"]["containers"].append({"name": "web", "image": "nginx"})
    with pytest.raises(LimitExceeded) as info:
        decide(pod, SHOP, config)
    assert info.value.reason == "too-many-containers"
    assert str(info.value) == "the Pod has 3 containers, over the limit of 2"


def test_max_containers_is_not_checked_for_opted_out_pods() -> None:
    config = make_config(limits={"maxContainers": 1})
    pod = make_pod({ann.INJECT: "false"})
    pod["spec"]["containers"].append({"name": "web", "image": "nginx"})
    skipped(pod, "opted-out", config=config)


# --------------------------------------------------------------------------- resolve(): merging profiles


def _settings(annotations: dict[str, str] | None = None, config: Config = CONFIG, context: PodContext = SHOP,
              **spec: Any):
    decision = injected(make_pod(annotations, **spec), context, config)
    return decision.settings, decision.warnings


def test_single_profile_settings() -> None:
    settings, warnings = _settings()
    assert warnings == ()
    assert settings.native is True and settings.hold_application is True
    assert settings.drain_seconds == 5 and settings.shutdown_seconds == 5
    assert settings.min_grace_seconds == 30 and settings.share_process_namespace is False
    assert settings.podinfo == PodInfo(enabled=True, mountPath="/etc/podinfo")
    assert settings.probes is None and settings.warmup_seconds == 0
    assert settings.sleep_action is True and settings.config_hash == CONFIG.config_hash


def test_several_profiles_merge_any_max_all() -> None:
    settings, _ = _settings({ann.PROFILES: "logging,proxy,jvm"})
    assert settings.native is False  # native only if every profile allows it (logging does not)
    assert settings.hold_application is True  # any (proxy)
    assert settings.share_process_namespace is True  # any (logging)
    assert settings.drain_seconds == 5  # max(2, 5, 0)
    assert settings.shutdown_seconds == 10  # max(10, 5, 5)
    assert settings.min_grace_seconds == 60  # max(60, 30); jvm sets none
    assert settings.warmup_seconds == 90  # max
    assert settings.probes == make_config().profiles["jvm"].probes  # the one profile that enables probes
    # podinfo: on if any profile asks; the first enabling profile (in selection order) gives its settings
    assert settings.podinfo is not None and settings.podinfo.volumeName == "loginfo"


def test_podinfo_comes_from_the_first_selected_profile_that_enables_it() -> None:
    settings, _ = _settings({ann.PROFILES: "proxy,logging"})
    assert settings.podinfo is not None and settings.podinfo.mountPath == "/etc/podinfo"


def test_no_grace_in_any_profile_means_none() -> None:
    settings, _ = _settings({ann.PROFILES: "jvm"})
    assert settings.min_grace_seconds is None and settings.podinfo is None


def test_annotations_override_the_merged_profile_settings() -> None:
    settings, _ = _settings({
        ann.PROFILES: "logging,proxy",
        ann.NATIVE_SIDECAR: "true",
        ann.HOLD_APPLICATION: "false",
        ann.DRAIN_SECONDS: "0",
        ann.SHARE_PROCESS_NAMESPACE: "false",
        ann.PODINFO: "false",
        ann.PROBES: "true",
        ann.WARMUP_SECONDS: "3600",
    })
    assert settings.native is True and settings.hold_application is False
    assert settings.drain_seconds == 0 and settings.share_process_namespace is False
    assert settings.podinfo is None
    assert settings.probes == Probes(enabled=True)  # no profile enables probes: the defaults
    assert settings.warmup_seconds == 3600


def test_podinfo_forced_on_without_a_profile_that_enables_it_uses_defaults() -> None:
    settings, _ = _settings({ann.PROFILES: "jvm", ann.PODINFO: "true"})
    assert settings.podinfo == PodInfo(enabled=True)


def test_probes_forced_off() -> None:
    settings, _ = _settings({ann.PROFILES: "jvm", ann.PROBES: "false"})
    assert settings.probes is None and settings.warmup_seconds == 90


# --------------------------------------------------------------------------- run-to-completion Pods


JOB_OWNER = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u", "controller": True}


def _job_pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    pod = make_pod(annotations, restartPolicy="Never")
    pod["metadata"]["ownerReferences"] = [JOB_OWNER]
    return pod


@pytest.mark.parametrize(
    "spec, owners, finite",
    [
        ({}, (), False),
        ({"restartPolicy": "Always"}, (), False),
        ({"restartPolicy": "Never"}, (), True),
        ({"restartPolicy": "OnFailure"}, (), True),
        ({}, ("Job",), True),
        ({"restartPolicy": "Always"}, ("ReplicaSet", "Job"), True),
        ({}, ("CronJob",), False),  # a CronJob owns Jobs, not Pods
    ],
)
def test_runs_to_completion(spec: dict[str, Any], owners: tuple[str, ...], finite: bool) -> None:
    assert runs_to_completion(make_pod(**spec), PodContext(owner_kinds=owners)) is finite


def test_owner_kinds() -> None:
    pod = make_pod()
    pod["metadata"]["ownerReferences"] = [JOB_OWNER, {"kind": ""}, "junk", {"name": "x"}, {"kind": "ReplicaSet"}]
    assert owner_kinds(pod) == ("Job", "ReplicaSet")
    assert owner_kinds({"metadata": {"ownerReferences": "Job"}}) == ()
    assert owner_kinds({"metadata": None}) == ()


@pytest.mark.parametrize("restart_policy", ["Never", "OnFailure"])
def test_finite_pods_get_native_sidecars_even_when_a_profile_prefers_legacy(restart_policy: str) -> None:
    settings, warnings = _settings({ann.PROFILES: "logging"}, restartPolicy=restart_policy)
    assert settings.native is True and warnings == ()


def test_job_owned_pods_get_native_sidecars() -> None:
    pod = make_pod({ann.PROFILES: "logging"})
    pod["metadata"]["ownerReferences"] = [JOB_OWNER]
    decision = injected(pod, PodContext(namespace="shop", owner_kinds=("Job",)))
    assert decision.settings.native is True


def test_forcing_legacy_on_a_job_works_but_warns() -> None:
    pod = _job_pod({ann.NATIVE_SIDECAR: "false"})
    decision = injected(pod, PodContext(namespace="shop", owner_kinds=owner_kinds(pod)))
    assert decision.settings.native is False
    assert decision.warnings == ("legacy sidecars keep this run-to-completion Pod (Job) from ever completing",)


# --------------------------------------------------------------------------- Kubernetes version


def test_below_1_29_sidecars_are_legacy() -> None:
    settings, warnings = _settings(config=make_config(kubernetesVersion="1.28"))
    assert settings.native is False and settings.sleep_action is False
    # The operator chose the version: a profile's default preference is downgraded silently,
    # only an explicit request (annotation) or a Job gets a warning.
    assert warnings == ()


def test_below_1_29_an_explicit_native_request_is_downgraded_with_a_warning() -> None:
    settings, warnings = _settings({ann.NATIVE_SIDECAR: "true"}, config=make_config(kubernetesVersion="v1.28.9"))
    assert settings.native is False
    assert warnings == ("native sidecars need Kubernetes 1.29+ (configured 1.28); injected as legacy containers",)


def _run_to_completion_config(policy: str | None, version: str = "1.27") -> Config:
    profiles = copy.deepcopy(PROFILES)
    if policy is not None:
        profiles["proxy"]["runToCompletion"] = policy
    return make_config(kubernetesVersion=version, profiles=profiles)


JOB = PodContext(namespace="shop", owner_kinds=("Job",))


def test_below_1_29_a_job_is_not_injected_by_default() -> None:
    """A legacy sidecar would keep the Job from completing: the default runToCompletion is skip."""
    decision = skipped(_job_pod(), "run-to-completion", JOB, _run_to_completion_config(None))
    assert decision.warnings == ("not injected: a legacy sidecar would keep this run-to-completion Pod from "
                                 "completing (no native sidecars on 1.27)",)


def test_below_1_29_a_job_gets_both_warnings_when_its_profile_injects_anyway() -> None:
    decision = injected(_job_pod(), JOB, _run_to_completion_config("inject"))
    assert decision.settings.native is False
    assert decision.warnings == (
        "native sidecars need Kubernetes 1.29+ (configured 1.27); injected as legacy containers",
        "legacy sidecars keep this run-to-completion Pod (Job) from ever completing",
    )


def test_below_1_29_a_job_is_denied_by_a_profile_it_may_not_run_without() -> None:
    from webhook.errors import RunToCompletionDenied

    with pytest.raises(RunToCompletionDenied, match=r"profile proxy is required \(runToCompletion: deny\), but on "
                                                    r"Kubernetes 1.27 its sidecars can only be legacy containers"):
        decide(_job_pod(), JOB, _run_to_completion_config("deny"))


@pytest.mark.parametrize("policy", ["skip", "inject", "deny"])
def test_run_to_completion_policy_is_not_asked_where_it_cannot_matter(policy: str) -> None:
    """From 1.29 the sidecar is native and exits with the Job; a long-running Pod is not asked;
    a Pod that forces legacy sidecars with the annotation made its own choice (with a warning)."""
    assert injected(_job_pod(), JOB, _run_to_completion_config(policy, "1.29")).settings.native is True
    assert injected(make_pod(), SHOP, _run_to_completion_config(policy)).settings.native is False
    forced = injected(_job_pod({"sidecar-injector.io/native-sidecar": "false"}), JOB,
                      _run_to_completion_config(policy))
    assert "legacy sidecars keep this run-to-completion Pod (Job) from ever completing" in forced.warnings


def test_a_job_keeps_its_profiles_without_sidecars_and_those_that_inject() -> None:
    profiles = copy.deepcopy(PROFILES)
    config = make_config(kubernetesVersion="1.27", profiles=profiles)
    pod = _job_pod({"sidecar-injector.io/profiles": "proxy,jvm"})
    decision = injected(pod, JOB, config)
    assert [name for name, _ in decision.settings.profiles] == ["jvm"]
    assert "profile proxy left out: a legacy sidecar would keep this run-to-completion Pod running" in decision.warnings


@pytest.mark.parametrize("version, native, sleep", [("1.29", True, False), ("1.30", True, True), ("1.33", True, True)])
def test_version_gates_reach_the_settings(version: str, native: bool, sleep: bool) -> None:
    settings, _ = _settings(config=make_config(kubernetesVersion=version))
    assert settings.native is native and settings.sleep_action is sleep


def test_resolve_directly() -> None:
    profiles = (("proxy", CONFIG.profiles["proxy"]), ("jvm", CONFIG.profiles["jvm"]))
    settings, warnings = resolve(profiles, ann.Overrides(drain_seconds=9), False, CONFIG)
    assert warnings == []
    assert settings.profiles == profiles and settings.drain_seconds == 9 and settings.warmup_seconds == 90


def test_repeated_default_profile_is_selected_once() -> None:
    from webhook.errors import ConfigError

    try:
        config = make_config(defaultProfiles=["proxy", "proxy"])
    except ConfigError:
        return  # refusing the config is a fine answer too
    decision = injected(make_pod(), config=config)
    assert [name for name, _ in decision.settings.profiles] == ["proxy"]


def test_every_problem_is_named_in_one_message_within_bounds() -> None:
    from webhook.errors import MAX_MESSAGE_CHARS, Problems, problems_of

    with pytest.raises(Problems) as info:
        decide(make_pod({ann.DRAIN_SECONDS: "x", ann.WARMUP_SECONDS: "y", ann.PODINFO: "z"}), SHOP, CONFIG)
    assert len(problems_of(info.value)) == 3
    assert all(f"={value!r}" in str(info.value) for value in ("x", "y", "z"))
    many = {ann.PREFIX + name: "v" * 200 for name in ("podinfo", "probes", "native-sidecar", "hold-application",
                                                      "share-process-namespace", "drain-seconds", "warmup-seconds")}
    with pytest.raises(Problems) as info:
        decide(make_pod(many), SHOP, CONFIG)
    message = str(info.value)
    assert len(message) <= MAX_MESSAGE_CHARS and message.startswith("7 problems: ")
    assert message.endswith(" more") and message.count("is invalid") < 7  # the rest are counted


def test_an_unreadable_inject_switch_is_denied_with_the_other_problems() -> None:
    from webhook.errors import Problems

    with pytest.raises(Problems) as info:
        decide(make_pod({ann.INJECT: "no", ann.PODINFO: "z"}), SHOP, CONFIG)
    assert [e.annotation for e in info.value.errors] == [ann.INJECT, ann.PODINFO]


def test_target_containers_must_be_the_pods() -> None:
    pod = make_pod({ann.CONTAINERS: "app, app,"})
    assert injected(pod).settings.target_containers == frozenset({"app"})
    with pytest.raises(AnnotationError) as info:
        decide(make_pod({ann.CONTAINERS: "app,worker"}), SHOP, CONFIG)
    assert info.value.annotation == ann.CONTAINERS and "its containers: app" in str(info.value)
    for bad in ("", " , ", "App", "a_b"):
        with pytest.raises(AnnotationError):
            decide(make_pod({ann.CONTAINERS: bad}), SHOP, CONFIG)
