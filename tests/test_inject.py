"""webhook/inject.py: targeted cases the golden fixtures do not isolate.

Every injection here goes through `run()`, which also checks what must hold for all of them:
the input Pod and the config are never modified, the patch applies, and the API server
(k8s_checks.pod_errors) accepts the produced Pod.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import jsonpatch
import pytest
import yaml

from webhook import annotations as ann
from webhook.config import Config, load_config_text, parse_config
from webhook.errors import ConfigError
from webhook.inject import Injection, inject
from webhook.policy import PodContext, decide

from k8s_checks import pod_errors

CONFIG_TEXT = """
defaultProfiles: [proxy]
kubernetesVersion: "1.30"
profiles:
  proxy:
    containers:
      - name: proxy
        image: example.com/proxy:1
        ports: [{name: admin, containerPort: 9901}]
        readinessProbe: {httpGet: {path: /ready, port: 9901}, periodSeconds: 1}
        resources: {requests: {cpu: 50m, memory: 64Mi}}
    volumes: [{name: proxy-config, configMap: {name: proxy-config}}]
    volumeMounts: {proxy: [{name: proxy-config, mountPath: /etc/envoy}]}
    waitCommand: [sh, -c, "until wget -qO- http://127.0.0.1:9901/ready; do sleep 1; done"]
    drainSeconds: 5
    terminationGracePeriodSeconds: 30
    sidecarShutdownSeconds: 5
    podinfo: {enabled: true, mountPath: /etc/podinfo}
    serviceAccountToken: {audience: proxy, expirationSeconds: 3600, mountPath: /var/run/secrets/tokens}
  logging:
    containers:
      - {name: log-a, image: example.com/log:1}
      - {name: log-b, image: example.com/log:1, env: [{name: POD_NAME, value: custom}]}
    volumes: [{name: app-logs, emptyDir: {}}]
    appVolumeMounts: [{name: app-logs, mountPath: /var/log/app}]
    waitCommand: [sh, -c, "true"]
    nativeSidecar: false
  agent:
    initContainers:
      - {name: agent-init, image: "busybox:1.36", command: [sh, -c, "echo ok > /agent/ready"]}
    containers:
      - name: agent
        image: example.com/agent:1
        readinessProbe:
          exec: {command: [cat, /agent/ready]}
          periodSeconds: 7
          timeoutSeconds: 3
          initialDelaySeconds: 4
          successThreshold: 2
          failureThreshold: 9
    volumes: [{name: agent-data, emptyDir: {}}]
    volumeMounts:
      agent-init: [{name: agent-data, mountPath: /agent}]
      agent: [{name: agent-data, mountPath: /agent}]
  tcp:
    containers:
      - {name: tcp-side, image: example.com/t:1, readinessProbe: {tcpSocket: {port: 7000}}}
  grpc:
    containers:
      - {name: grpc-side, image: example.com/g:1, readinessProbe: {grpc: {port: 9000}, periodSeconds: 13}}
  quiet:
    containers:
      - {name: quiet, image: example.com/q:1}
    holdApplication: false
  unready:
    containers:
      - {name: unready, image: example.com/u:1}
  own-startup:
    containers:
      - name: own-startup
        image: example.com/o:1
        readinessProbe: {tcpSocket: {port: 1}}
        startupProbe: {tcpSocket: {port: 1}, failureThreshold: 5}
        lifecycle: {postStart: {exec: {command: ["true"]}}, preStop: {exec: {command: ["true"]}}}
    waitCommand: [sh, -c, "true"]
  no-wait:
    containers:
      - {name: no-wait, image: example.com/n:1}
  shared-a:
    containers: [{name: side-a, image: example.com/a:1}]
    volumes: [{name: shared, emptyDir: {}}]
    holdApplication: false
  shared-b:
    containers: [{name: side-b, image: example.com/b:1}]
    volumes: [{name: shared, emptyDir: {medium: Memory}}]
    holdApplication: false
  jvm:
    probes:
      enabled: true
      readiness: {periodSeconds: 7, timeoutSeconds: 2, failureThreshold: 4}
      liveness: {initialDelaySeconds: 3, periodSeconds: 11, timeoutSeconds: 2, failureThreshold: 3}
      startupPeriodSeconds: 5
    warmupSeconds: 90
    holdApplication: false
  ready-only:
    probes: {enabled: true}
    holdApplication: false
  slow:
    warmupSeconds: 61
    holdApplication: false
  grace:
    terminationGracePeriodSeconds: 60
    holdApplication: false
  share:
    shareProcessNamespace: true
    holdApplication: false
"""

CONFIG = load_config_text(CONFIG_TEXT, "test_inject")
SHOP = PodContext(namespace="shop")


def config_with(**keys: Any) -> Config:
    data = yaml.safe_load(CONFIG_TEXT)
    data.update(keys)
    return parse_config(data, "test_inject")


def make_pod(annotations: dict[str, str] | None = None, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "labels": {"app": "web"}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": list(containers) or [{"name": "app", "image": "nginx:1.27"}], **spec},
    }


def run(pod: dict[str, Any], config: Config = CONFIG, context: PodContext = SHOP,
        versions: tuple[str, ...] = ("1.30",)) -> Injection:
    """Decide and inject; check the invariants every injection must keep."""
    assert pod_errors(pod, versions[0]) == [], "the test's input Pod itself is invalid"
    pod_before = copy.deepcopy(pod)
    config_before = config.model_dump()
    decision = decide(pod, context, config)
    assert decision.inject and decision.settings is not None, decision
    result = inject(pod, decision.settings)
    assert pod == pod_before, "inject() modified the input Pod"
    assert config.model_dump() == config_before, "inject() modified the config"
    result.warnings = [*decision.warnings, *result.warnings]
    if result.changed:
        assert jsonpatch.apply_patch(pod, result.ops, in_place=False) == result.pod
        for version in versions:
            assert pod_errors(result.pod, version) == [], version
        # Nothing in the output is shared with the config (a later edit of one would change the other).
        assert_no_shared_objects(result.pod, config)
    return result


def _ids(value: Any, into: set[int]) -> None:
    if isinstance(value, (dict, list)):
        into.add(id(value))
        for item in value.values() if isinstance(value, dict) else value:
            _ids(item, into)


def assert_no_shared_objects(pod: dict[str, Any], config: Config) -> None:
    config_ids: set[int] = set()
    for profile in config.profiles.values():
        for key in ("containers", "initContainers", "volumes", "appVolumeMounts", "volumeMounts", "waitCommand"):
            _ids(getattr(profile, key), config_ids)
    pod_ids: set[int] = set()
    _ids(pod, pod_ids)
    assert not (config_ids & pod_ids), "the injected Pod shares objects with the config"


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    for item in spec.get("initContainers", []) + spec["containers"]:
        if item["name"] == name:
            return item
    raise KeyError(name)


def status(result: Injection) -> dict[str, Any]:
    return json.loads(result.pod["metadata"]["annotations"][ann.STATUS])


RICH_APP = {
    "name": "app",
    "image": "nginx:1.27",
    "ports": [{"containerPort": 8080}],
    "env": [{"name": "MODE", "value": "prod"}],
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    "lifecycle": {"postStart": {"exec": {"command": ["true"]}}},
    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
}


def rich_pod(annotations: dict[str, str]) -> dict[str, Any]:
    return make_pod(
        annotations,
        copy.deepcopy(RICH_APP),
        {"name": "worker", "image": "example.com/w:1", "ports": [{"containerPort": 53, "protocol": "UDP"}]},
        initContainers=[{"name": "migrate", "image": "example.com/m:1"}],
        volumes=[{"name": "data", "emptyDir": {}}],
        terminationGracePeriodSeconds=10,
    )


# --------------------------------------------------------------------------- purity


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {ann.PROFILES: "proxy,logging,agent"},
        {ann.PROFILES: "proxy,logging", ann.NATIVE_SIDECAR: "false"},
        {ann.PROFILES: "jvm,proxy", ann.WARMUP_SECONDS: "120"},
        {ann.PROFILES: "tcp,grpc,unready,quiet,own-startup"},
        {ann.PROFILES: "tcp,grpc,unready,quiet,own-startup,no-wait", ann.NATIVE_SIDECAR: "false"},
        {ann.PROFILES: "share,grace", ann.DRAIN_SECONDS: "100", ann.PODINFO: "true", ann.PROBES: "true"},
        {ann.PROFILES: "shared-a,shared-b"},
        {ann.PROFILES: "ready-only,slow"},
    ],
    ids=["default", "three-profiles", "legacy", "jvm", "native-variants", "legacy-variants", "pod-level",
         "shared-volume", "probes"],
)
def test_input_pod_and_config_are_never_modified(annotations: dict[str, str]) -> None:
    result = run(rich_pod(annotations))
    assert result.changed


def test_input_pod_not_modified_on_a_1_29_cluster() -> None:
    pod = rich_pod({ann.PROFILES: "proxy,logging", ann.NATIVE_SIDECAR: "false"})
    run(pod, config_with(kubernetesVersion="1.29"), versions=("1.29", "1.30"))


def test_output_is_independent_of_the_input() -> None:
    pod = rich_pod({ann.PROFILES: "proxy,logging"})
    result = run(pod)
    snapshot = copy.deepcopy(pod)
    # Editing the copied parts of the output must not reach the input.
    result.pod["metadata"]["annotations"]["x"] = "y"
    container(result.pod, "app")["volumeMounts"].append({"name": "z", "mountPath": "/z"})
    result.pod["spec"]["volumes"].append({"name": "z", "emptyDir": {}})
    result.pod["spec"]["containers"].append({"name": "z", "image": "z"})
    assert pod == snapshot


# --------------------------------------------------------------------------- copy-on-write


def test_untouched_parts_are_the_same_objects() -> None:
    keeps_hook = {"name": "hooked", "image": "example.com/h:1",
                  "lifecycle": {"preStop": {"exec": {"command": ["drain"]}}}}
    plain = {"name": "plain", "image": "example.com/p:1"}
    own_init = {"name": "migrate", "image": "example.com/m:1"}
    volume = {"name": "data", "emptyDir": {}}
    pod = make_pod({ann.PROFILES: "quiet", ann.DRAIN_SECONDS: "5"}, keeps_hook, plain,
                   initContainers=[own_init], volumes=[volume])
    result = run(pod)
    spec = result.pod["spec"]
    assert spec["containers"][0] is keeps_hook  # keeps its own preStop: nothing to change
    assert spec["containers"][1] is not plain  # drained: copied, not changed in place
    assert spec["containers"][1]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert "lifecycle" not in plain
    assert spec["initContainers"][-1] is own_init
    assert spec["volumes"] is pod["spec"]["volumes"]  # quiet adds no volume
    assert result.pod["metadata"]["labels"] is pod["metadata"]["labels"]
    assert result.pod is not pod and spec is not pod["spec"]
    assert result.warnings == ["container hooked keeps its own preStop hook; no drain added"]


def test_unchanged_app_containers_are_shared_when_nothing_applies_to_them() -> None:
    app = {"name": "app", "image": "nginx:1.27"}
    pod = make_pod({ann.PROFILES: "quiet", ann.DRAIN_SECONDS: "0"}, app)
    result = run(pod)
    assert result.pod["spec"]["containers"] == [app]
    assert result.pod["spec"]["containers"][0] is app
    assert result.pod["spec"]["containers"] is not pod["spec"]["containers"]


def test_touched_containers_share_their_untouched_fields() -> None:
    pod = rich_pod({ann.PROFILES: "proxy"})
    app_in = pod["spec"]["containers"][0]
    app_out = container(run(pod).pod, "app")
    assert app_out is not app_in
    assert app_out["env"] is app_in["env"]
    assert app_out["readinessProbe"] is app_in["readinessProbe"]
    assert app_out["volumeMounts"] is not app_in["volumeMounts"]  # grew: a new list
    assert app_out["volumeMounts"][0] is app_in["volumeMounts"][0]


def test_nothing_to_add_returns_an_unchanged_copy() -> None:
    first = run(make_pod({ann.PROFILES: "quiet"}))
    again = copy.deepcopy(first.pod)
    del again["metadata"]["annotations"][ann.STATUS]
    decision = decide(again, SHOP, CONFIG)
    result = inject(again, decision.settings)
    assert result.changed is False and result.pod == again and result.pod is not again
    assert ann.STATUS not in result.pod["metadata"]["annotations"]


# --------------------------------------------------------------------------- clashes


@pytest.mark.parametrize("where", ["containers", "initContainers", "ephemeralContainers"])
def test_sidecar_name_already_in_the_pod(where: str) -> None:
    theirs = {"name": "proxy", "image": "example.com/mine:1"}
    pod = make_pod({ann.PROFILES: "proxy"})
    if where == "containers":
        pod["spec"]["containers"].append(theirs)
    elif where == "initContainers":
        pod["spec"]["initContainers"] = [theirs]
    else:
        pod["spec"]["ephemeralContainers"] = [{**theirs, "targetContainerName": "app"}]
    if where == "ephemeralContainers":
        # The API server refuses ephemeral containers on create; the webhook must still not clash.
        before = copy.deepcopy(pod)
        decision = decide(pod, SHOP, CONFIG)
        result = inject(pod, decision.settings)
        assert pod == before
    else:
        result = run(pod)
    assert "sidecar proxy not injected: the Pod already has a container named proxy" in result.warnings
    assert status(result)["containers"] == []
    # No sidecar of that profile, so no token volume either (nobody would mount it).
    assert "proxy-token" not in status(result)["volumes"]
    names = [c["name"] for c in result.pod["spec"]["containers"] + result.pod["spec"].get("initContainers", [])]
    assert names.count("proxy") == (0 if where == "ephemeralContainers" else 1)


def test_existing_container_named_like_a_sidecar_is_not_treated_as_an_application() -> None:
    theirs = {"name": "proxy", "image": "example.com/mine:1"}
    pod = make_pod({ann.PROFILES: "proxy"}, {"name": "app", "image": "nginx:1.27"}, theirs)
    result = run(pod)
    assert container(result.pod, "proxy") is theirs  # no drain, no podinfo mount
    assert "lifecycle" in container(result.pod, "app")


def test_init_container_name_clash() -> None:
    pod = make_pod({ann.PROFILES: "agent"}, initContainers=[{"name": "agent-init", "image": "busybox"}])
    result = run(pod)
    assert "init container agent-init not injected: the Pod already has a container named agent-init" in result.warnings
    assert status(result)["initContainers"] == [] and status(result)["containers"] == ["agent"]


def test_two_profiles_with_the_same_sidecar_name() -> None:
    config = config_with(profiles={
        **yaml.safe_load(CONFIG_TEXT)["profiles"],
        "twin": {"containers": [{"name": "proxy", "image": "example.com/twin:1"}]},
    })
    result = run(make_pod({ann.PROFILES: "proxy,twin"}), config)
    assert "sidecar proxy of profile twin not injected: profile proxy brings a container named proxy" in result.warnings
    assert container(result.pod, "proxy")["image"] == "example.com/proxy:1"  # the first profile's


def test_volume_name_clash_keeps_the_pods_volume() -> None:
    theirs = {"name": "proxy-config", "configMap": {"name": "my-own"}}
    pod = make_pod({ann.PROFILES: "proxy"}, volumes=[theirs])
    result = run(pod)
    assert result.warnings == ["volume proxy-config not added: the Pod already has a volume by that name"]
    volumes = [v for v in result.pod["spec"]["volumes"] if v["name"] == "proxy-config"]
    assert volumes == [theirs]
    assert "proxy-config" not in status(result)["volumes"]
    # the sidecar still mounts it: the piece is treated as already there
    assert {"name": "proxy-config", "mountPath": "/etc/envoy"} in container(result.pod, "proxy")["volumeMounts"]


def test_volume_clash_is_warned_once_when_two_profiles_bring_it() -> None:
    pod = make_pod({ann.PROFILES: "shared-a,shared-b"}, volumes=[{"name": "shared", "hostPath": {"path": "/x"}}])
    result = run(pod)
    assert result.warnings == ["volume shared not added: the Pod already has a volume by that name"]
    assert [v["name"] for v in result.pod["spec"]["volumes"]] == ["shared"]


def test_two_profiles_with_the_same_volume_add_it_once() -> None:
    result = run(make_pod({ann.PROFILES: "shared-a,shared-b"}))
    shared = [v for v in result.pod["spec"]["volumes"] if v["name"] == "shared"]
    assert shared == [{"name": "shared", "emptyDir": {}}]  # the first profile's
    assert status(result)["volumes"].count("shared") == 1


def test_mount_path_clash_in_an_application_container() -> None:
    app = {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "own", "mountPath": "/var/log/app"}]}
    pod = make_pod({ann.PROFILES: "logging", ann.PODINFO: "false"}, app, volumes=[{"name": "own", "emptyDir": {}}])
    result = run(pod)
    assert "container app: /var/log/app already mounted, app-logs not mounted there" in result.warnings
    assert container(result.pod, "app") == app


def test_container_whose_mounts_all_clash_is_shared() -> None:
    app = {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "own", "mountPath": "/var/log/app"}]}
    pod = make_pod({ann.PROFILES: "logging", ann.PODINFO: "false"}, app, volumes=[{"name": "own", "emptyDir": {}}])
    assert container(run(pod).pod, "app") is app


def test_same_volume_at_another_path_is_still_mounted() -> None:
    app = {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "app-logs", "mountPath": "/elsewhere"}]}
    pod = make_pod({ann.PROFILES: "logging", ann.PODINFO: "false"}, app, volumes=[{"name": "app-logs", "emptyDir": {}}])
    result = run(pod)
    assert container(result.pod, "app")["volumeMounts"] == [
        {"name": "app-logs", "mountPath": "/elsewhere"}, {"name": "app-logs", "mountPath": "/var/log/app"},
    ]


def test_sidecar_env_already_set_by_the_profile_is_kept() -> None:
    result = run(make_pod({ann.PROFILES: "logging,proxy"}))
    env = container(result.pod, "log-b")["env"]
    assert env[0] == {"name": "POD_NAME", "value": "custom"}
    assert [e["name"] for e in env] == ["POD_NAME", "POD_NAMESPACE", "POD_IP", "NODE_NAME"]
    assert [e["name"] for e in container(result.pod, "log-a")["env"]] == [
        "POD_NAME", "POD_NAMESPACE", "POD_IP", "NODE_NAME"]


def test_podinfo_env_can_be_turned_off() -> None:
    config = config_with(profiles={
        **yaml.safe_load(CONFIG_TEXT)["profiles"],
        "noenv": {"containers": [{"name": "noenv", "image": "example.com/n:1"}],
                  "podinfo": {"enabled": True, "env": False}},
    })
    result = run(make_pod({ann.PROFILES: "noenv"}), config)
    assert "env" not in container(result.pod, "noenv")
    assert {"name": "podinfo", "mountPath": "/etc/podinfo", "readOnly": True} in container(result.pod, "noenv")["volumeMounts"]


def test_token_is_mounted_into_its_profiles_sidecars_only() -> None:
    result = run(make_pod({ann.PROFILES: "proxy,logging"}))
    token_mount = {"name": "proxy-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True}
    assert token_mount in container(result.pod, "proxy")["volumeMounts"]
    for name in ("log-a", "log-b", "app"):
        assert all(m["name"] != "proxy-token" for m in container(result.pod, name).get("volumeMounts", []))
    token = next(v for v in result.pod["spec"]["volumes"] if v["name"] == "proxy-token")
    assert token["projected"]["sources"] == [
        {"serviceAccountToken": {"audience": "proxy", "expirationSeconds": 3600, "path": "token"}}]


# --------------------------------------------------------------------------- legacy mode


def test_wait_command_goes_on_the_last_sidecar_of_each_profile_only() -> None:
    result = run(make_pod({ann.PROFILES: "logging,proxy", ann.NATIVE_SIDECAR: "false"}))
    names = [c["name"] for c in result.pod["spec"]["containers"]]
    assert names == ["log-a", "log-b", "proxy", "app"]
    assert "postStart" not in container(result.pod, "log-a").get("lifecycle", {})
    assert container(result.pod, "log-b")["lifecycle"]["postStart"] == {"exec": {"command": ["sh", "-c", "true"]}}
    assert container(result.pod, "proxy")["lifecycle"]["postStart"]["exec"]["command"][0] == "sh"
    assert "initContainers" not in result.pod["spec"]


def test_wait_command_moves_to_the_last_sidecar_actually_injected() -> None:
    pod = make_pod({ann.PROFILES: "logging"}, {"name": "app", "image": "nginx"}, {"name": "log-b", "image": "mine"})
    result = run(pod)
    assert container(result.pod, "log-a")["lifecycle"]["postStart"] == {"exec": {"command": ["sh", "-c", "true"]}}


def test_legacy_sidecars_outlive_the_drain() -> None:
    result = run(make_pod({ann.PROFILES: "proxy", ann.NATIVE_SIDECAR: "false", ann.DRAIN_SECONDS: "7"}))
    assert container(result.pod, "proxy")["lifecycle"]["preStop"] == {"sleep": {"seconds": 12}}  # 7 + 5
    assert container(result.pod, "app")["lifecycle"]["preStop"] == {"sleep": {"seconds": 7}}
    assert "restartPolicy" not in container(result.pod, "proxy")
    assert "startupProbe" not in container(result.pod, "proxy")


def test_legacy_without_drain_adds_no_sidecar_pre_stop() -> None:
    result = run(make_pod({ann.PROFILES: "logging", ann.DRAIN_SECONDS: "0", ann.HOLD_APPLICATION: "false"}))
    assert "lifecycle" not in container(result.pod, "log-a") and "lifecycle" not in container(result.pod, "log-b")


def test_legacy_without_wait_command_warns() -> None:
    result = run(make_pod({ann.PROFILES: "no-wait", ann.NATIVE_SIDECAR: "false"}))
    assert "legacy sidecar no-wait: no waitCommand, the application may start before it" in result.warnings


def test_legacy_keeps_the_sidecars_own_hooks() -> None:
    result = run(make_pod({ann.PROFILES: "own-startup", ann.NATIVE_SIDECAR: "false", ann.DRAIN_SECONDS: "3"}))
    assert container(result.pod, "own-startup")["lifecycle"] == {
        "postStart": {"exec": {"command": ["true"]}}, "preStop": {"exec": {"command": ["true"]}}}


def test_legacy_hold_off_adds_no_post_start() -> None:
    result = run(make_pod({ann.PROFILES: "proxy", ann.NATIVE_SIDECAR: "false", ann.HOLD_APPLICATION: "false"}))
    assert "postStart" not in container(result.pod, "proxy")["lifecycle"]


# --------------------------------------------------------------------------- native startupProbe


@pytest.mark.parametrize(
    "profile, handler, period, extra",
    [
        ("proxy", {"httpGet": {"path": "/ready", "port": 9901}}, 1, {}),
        ("agent", {"exec": {"command": ["cat", "/agent/ready"]}}, 7, {"timeoutSeconds": 3}),
        ("tcp", {"tcpSocket": {"port": 7000}}, 10, {}),  # periodSeconds unset: Kubernetes' default 10
        ("grpc", {"grpc": {"port": 9000}}, 13, {}),
    ],
)
def test_native_startup_probe_is_derived_from_the_readiness_probe(
    profile: str, handler: dict[str, Any], period: int, extra: dict[str, Any]
) -> None:
    result = run(make_pod({ann.PROFILES: profile}))
    sidecar = result.pod["spec"]["initContainers"][-1]
    assert sidecar["restartPolicy"] == "Always"
    probe = sidecar["startupProbe"]
    threshold = probe.pop("failureThreshold")
    assert probe == {**handler, "periodSeconds": period, **extra}
    # covers the 120 s budget, and not by more than one period
    assert threshold * period >= 120 and (threshold - 1) * period < 120
    assert threshold == max(1, math.ceil(120 / period))
    # successThreshold and initialDelaySeconds are not copied (startup probes need successThreshold 1)
    assert "successThreshold" not in probe and "initialDelaySeconds" not in probe
    # the readinessProbe itself is left as the profile wrote it
    assert sidecar["readinessProbe"] == CONFIG.profiles[profile].containers[0]["readinessProbe"]
    assert sidecar["startupProbe"] is not sidecar["readinessProbe"]


def test_derived_startup_probe_does_not_share_the_readiness_handler() -> None:
    sidecar = container(run(make_pod({ann.PROFILES: "agent"})).pod, "agent")
    assert sidecar["startupProbe"]["exec"] is not sidecar["readinessProbe"]["exec"]


def test_native_sidecar_without_readiness_probe_warns() -> None:
    result = run(make_pod({ann.PROFILES: "unready"}))
    assert "startupProbe" not in container(result.pod, "unready")
    assert "sidecar unready has no readinessProbe: the application may start before it is ready" in result.warnings


def test_native_sidecar_without_hold_gets_no_startup_probe_and_no_warning() -> None:
    result = run(make_pod({ann.PROFILES: "proxy", ann.HOLD_APPLICATION: "false"}))
    assert "startupProbe" not in container(result.pod, "proxy")
    result = run(make_pod({ann.PROFILES: "quiet"}))
    assert result.warnings == []


def test_native_sidecar_keeps_its_own_startup_probe() -> None:
    result = run(make_pod({ann.PROFILES: "own-startup"}))
    assert container(result.pod, "own-startup")["startupProbe"] == {"tcpSocket": {"port": 1}, "failureThreshold": 5}


def test_native_order_profile_init_then_sidecars_then_own_init() -> None:
    pod = make_pod({ann.PROFILES: "proxy,agent"}, initContainers=[{"name": "migrate", "image": "m"}])
    result = run(pod)
    assert [c["name"] for c in result.pod["spec"]["initContainers"]] == ["agent-init", "proxy", "agent", "migrate"]
    assert "restartPolicy" not in result.pod["spec"]["initContainers"][0]
    assert "restartPolicy" not in result.pod["spec"]["initContainers"][-1]


# --------------------------------------------------------------------------- probes


def test_udp_only_ports_get_no_probe() -> None:
    app = {"name": "dns", "image": "coredns", "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                        {"containerPort": 9, "protocol": "SCTP"}]}
    result = run(make_pod({ann.PROFILES: "ready-only"}, app))
    assert "readinessProbe" not in container(result.pod, "dns")
    assert "container dns declares no TCP containerPort; no readinessProbe added" in result.warnings


def test_probe_uses_the_first_tcp_port() -> None:
    app = {"name": "app", "image": "x", "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 8080},
                                                  {"containerPort": 8081, "protocol": "TCP"}]}
    result = run(make_pod({ann.PROFILES: "jvm"}, app))
    out = container(result.pod, "app")
    assert out["readinessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 7, "timeoutSeconds": 2,
                                     "failureThreshold": 4}
    assert out["livenessProbe"] == {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3, "periodSeconds": 11,
                                    "timeoutSeconds": 2, "failureThreshold": 3}


def test_liveness_only_when_the_profile_configures_one() -> None:
    app = {"name": "app", "image": "x", "ports": [{"containerPort": 8080}]}
    out = container(run(make_pod({ann.PROFILES: "ready-only"}, app)).pod, "app")
    assert out["readinessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 5, "timeoutSeconds": 1,
                                     "failureThreshold": 3}
    assert "livenessProbe" not in out and "startupProbe" not in out


def test_existing_probes_are_never_touched() -> None:
    readiness = {"httpGet": {"path": "/r", "port": 8080}, "periodSeconds": 3}
    liveness = {"exec": {"command": ["ok"]}, "failureThreshold": 9}
    startup = {"tcpSocket": {"port": 8080}, "failureThreshold": 100}
    app = {"name": "app", "image": "x", "ports": [{"containerPort": 8080}], "readinessProbe": readiness,
           "livenessProbe": liveness, "startupProbe": startup}
    result = run(make_pod({ann.PROFILES: "jvm"}, app))
    assert container(result.pod, "app") is app
    assert result.warnings == []


def test_probes_on_legacy_sidecars_already_in_the_pod_are_not_added() -> None:
    pod = make_pod({ann.PROFILES: "proxy,jvm"}, {"name": "app", "image": "x"},
                   {"name": "proxy", "image": "example.com/mine:1", "ports": [{"containerPort": 9901}]})
    result = run(pod)
    assert container(result.pod, "proxy") is pod["spec"]["containers"][1]


# --------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize(
    "app, handler",
    [
        ({"livenessProbe": {"exec": {"command": ["alive"]}}, "readinessProbe": {"httpGet": {"path": "/r", "port": 80}},
          "ports": [{"containerPort": 80}]}, {"exec": {"command": ["alive"]}}),
        ({"readinessProbe": {"httpGet": {"path": "/r", "port": 80}}, "ports": [{"containerPort": 80}]},
         {"httpGet": {"path": "/r", "port": 80}}),
        ({"readinessProbe": {"grpc": {"port": 81}}}, {"grpc": {"port": 81}}),
        ({"ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 82}]}, {"tcpSocket": {"port": 82}}),
    ],
    ids=["liveness-first", "then-readiness", "readiness-without-port", "then-tcp-port"],
)
def test_warmup_handler_choice(app: dict[str, Any], handler: dict[str, Any]) -> None:
    app = {"name": "app", "image": "x", **app}
    result = run(make_pod({ann.PROFILES: "slow"}, app))
    probe = container(result.pod, "app")["startupProbe"]
    assert probe == {**handler, "periodSeconds": 2, "failureThreshold": 31}  # ceil(61 / 2)
    for key in ("livenessProbe", "readinessProbe"):
        if key in app:
            assert all(probe[h] is not app[key].get(h) for h in handler)  # copied, not shared


def test_warmup_covers_the_budget_with_the_profiles_period() -> None:
    app = {"name": "app", "image": "x", "ports": [{"containerPort": 80}]}
    probe = container(run(make_pod({ann.PROFILES: "jvm", ann.WARMUP_SECONDS: "91"}, app)).pod, "app")["startupProbe"]
    assert probe["periodSeconds"] == 5 and probe["failureThreshold"] == 19
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 91


def test_warmup_without_port_or_probe_warns() -> None:
    result = run(make_pod({ann.PROFILES: "slow"}))
    assert "startupProbe" not in container(result.pod, "app")
    assert "container app: no port or probe to build a warm-up startupProbe from" in result.warnings


def test_warmup_keeps_an_existing_startup_probe_silently() -> None:
    app = {"name": "app", "image": "x", "startupProbe": {"exec": {"command": ["s"]}}}
    result = run(make_pod({ann.PROFILES: "slow", ann.DRAIN_SECONDS: "0"}, app))
    assert container(result.pod, "app") is app and result.warnings == []


# --------------------------------------------------------------------------- grace period


@pytest.mark.parametrize(
    "annotations, own, expected, warned",
    [
        ({ann.PROFILES: "proxy"}, None, None, False),  # needs 30 = the default: not written
        ({ann.PROFILES: "proxy"}, 30, 30, False),
        ({ann.PROFILES: "proxy"}, 120, 120, False),  # never lowered
        ({ann.PROFILES: "proxy"}, 10, 30, True),
        ({ann.PROFILES: "proxy"}, 0, 30, True),
        ({ann.PROFILES: "grace"}, None, 60, False),  # raised above the default; the user had not set it
        ({ann.PROFILES: "proxy", ann.DRAIN_SECONDS: "100"}, None, 105, False),  # drain + shutdown
        ({ann.PROFILES: "proxy", ann.DRAIN_SECONDS: "100"}, 45, 105, True),
        ({ann.PROFILES: "quiet", ann.DRAIN_SECONDS: "0"}, 1, 1, False),  # nothing needs more
    ],
)
def test_grace_period(annotations: dict[str, str], own: int | None, expected: int | None, warned: bool) -> None:
    spec = {} if own is None else {"terminationGracePeriodSeconds": own}
    result = run(make_pod(annotations, **spec))
    assert result.pod["spec"].get("terminationGracePeriodSeconds") == expected
    message = f"terminationGracePeriodSeconds raised from {own} to {expected} to cover drain and shutdown"
    assert (message in result.warnings) is warned
    assert not any("terminationGracePeriodSeconds" in w for w in result.warnings if w != message)


# --------------------------------------------------------------------------- Kubernetes 1.29: exec sleep


def test_exec_sleep_below_1_30_with_a_warning() -> None:
    config = config_with(kubernetesVersion="1.29")
    pod = make_pod({ann.PROFILES: "proxy,logging", ann.NATIVE_SIDECAR: "false"},
                   {"name": "app", "image": "x"}, {"name": "web", "image": "y"})
    result = run(pod, config, versions=("1.29", "1.30"))
    assert container(result.pod, "app")["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    # legacy sidecars: drain (max 5) + shutdown (max 5)
    for name in ("proxy", "log-a", "log-b"):
        assert container(result.pod, name)["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "10"]}}
    assert result.warnings[-1] == (
        "drain runs `sleep` in the image (no sleep action before Kubernetes 1.30): proxy, log-a, log-b, app, web")
    assert all(set(c["lifecycle"]["preStop"]) == {"exec"} for c in result.pod["spec"]["containers"])


def test_native_sidecars_at_1_29_need_no_sleep() -> None:
    result = run(make_pod({ann.PROFILES: "proxy"}), config_with(kubernetesVersion="1.29"), versions=("1.29", "1.30"))
    assert result.warnings == ["drain runs `sleep` in the image (no sleep action before Kubernetes 1.30): app"]
    assert "lifecycle" not in container(result.pod, "proxy")


def test_no_drain_no_sleep_warning_at_1_29() -> None:
    result = run(make_pod({ann.PROFILES: "proxy", ann.DRAIN_SECONDS: "0"}), config_with(kubernetesVersion="1.29"),
                 versions=("1.29", "1.30"))
    assert not any("sleep" in w for w in result.warnings)


def test_legacy_pods_for_1_28_pass_the_oldest_schema() -> None:
    result = run(make_pod({ann.PROFILES: "proxy,agent,logging"}), config_with(kubernetesVersion="1.28"),
                 versions=("1.28", "1.25", "1.30"))
    assert "restartPolicy" not in json.dumps(result.pod["spec"].get("initContainers", []))


# --------------------------------------------------------------------------- pod level


def test_share_process_namespace() -> None:
    assert run(make_pod({ann.PROFILES: "share"})).pod["spec"]["shareProcessNamespace"] is True
    result = run(make_pod({ann.PROFILES: "share"}, shareProcessNamespace=False))
    assert result.pod["spec"]["shareProcessNamespace"] is False
    assert "the Pod sets shareProcessNamespace: false; left as it is" in result.warnings
    result = run(make_pod({ann.PROFILES: "share"}, hostPID=True))
    assert "shareProcessNamespace" not in result.pod["spec"]
    assert "shareProcessNamespace not set: the Pod uses hostPID, which forbids it" in result.warnings
    assert run(make_pod({ann.PROFILES: "share"}, shareProcessNamespace=True)).warnings == []


POD_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


def test_pod_level_resources_are_shared_by_injected_containers() -> None:
    profiles = yaml.safe_load(CONFIG_TEXT)["profiles"]
    profiles["budget"] = {
        "initContainers": [{"name": "prep", "image": "busybox",
                            "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "20m"}}}],
        "containers": [
            {"name": "side-1", "image": "s", "resources": {"requests": {"cpu": "50m", "memory": "64Mi",
                                                                        "ephemeral-storage": "1Gi"},
                                                           "limits": {"memory": "128Mi"}}},
            {"name": "side-2", "image": "s", "resources": {"limits": {"cpu": "100m"}}},
        ],
        "holdApplication": False,
    }
    config = config_with(kubernetesVersion="1.34", profiles=profiles)
    pod = make_pod({ann.PROFILES: "budget"}, {"name": "app", "image": "x"}, resources=POD_RESOURCES)
    result = run(pod, config, versions=("1.34",))
    assert container(result.pod, "side-1")["resources"] == {"requests": {"ephemeral-storage": "1Gi"}}
    assert "resources" not in container(result.pod, "side-2")
    assert "resources" not in container(result.pod, "prep")
    warning = "the Pod sets pod-level resources; injected containers share them (cpu, memory)"
    assert result.warnings.count(warning) == 1
    # the config's containers keep their own resources
    assert config.profiles["budget"].containers[0]["resources"]["requests"]["cpu"] == "50m"


def test_without_pod_level_resources_sidecars_keep_theirs() -> None:
    result = run(make_pod({ann.PROFILES: "proxy"}))
    assert container(result.pod, "proxy")["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}}
    assert not any("pod-level" in w for w in result.warnings)


def test_pod_level_resources_for_other_resources_leave_sidecars_alone() -> None:
    pod = make_pod({ann.PROFILES: "proxy"}, resources={"limits": {"memory": "1Gi"}})
    result = run(pod, config_with(kubernetesVersion="1.34"), versions=("1.34",))
    assert container(result.pod, "proxy")["resources"] == {"requests": {"cpu": "50m"}}


# --------------------------------------------------------------------------- status record


def test_status_record() -> None:
    result = run(make_pod({ann.PROFILES: "agent,proxy"}))
    assert status(result) == {
        "version": 1,
        "profiles": ["agent", "proxy"],
        "native": True,
        "initContainers": ["agent-init"],
        "containers": ["agent", "proxy"],
        "volumes": ["agent-data", "proxy-config", "podinfo", "proxy-token"],
        "configHash": CONFIG.config_hash,
        # what was added to what the Pod had, so that uninject takes exactly that away
        "appContainers": {"app": {"volumeMounts": ["/etc/podinfo"], "created": ["volumeMounts", "lifecycle"],
                                  "lifecycle": ["preStop"]}},
        "created": ["spec.volumes", "spec.initContainers"],
    }
    assert result.status == status(result)
    raw = result.pod["metadata"]["annotations"][ann.STATUS]
    assert " " not in raw  # compact


def test_status_records_the_grace_period_and_process_namespace_it_set() -> None:
    result = run(make_pod({ann.PROFILES: "proxy", ann.SHARE_PROCESS_NAMESPACE: "true"}, terminationGracePeriodSeconds=3))
    assert status(result)["terminationGracePeriodSeconds"] == {"original": 3, "set": 30}
    assert status(result)["shareProcessNamespace"] is True
    bare = run({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    assert status(bare)["created"][-2:] == ["metadata", "metadata.annotations"]


def test_status_annotation_keeps_the_pods_other_annotations() -> None:
    pod = make_pod({ann.PROFILES: "proxy", "example.com/owner": "a/b~c"})
    result = run(pod)
    annotations = result.pod["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "a/b~c" and annotations[ann.PROFILES] == "proxy"
    assert annotations is not pod["metadata"]["annotations"]


def test_sidecar_token_mount_left_out_is_reported() -> None:
    data = {"defaultProfiles": ["p"], "profiles": {"p": {
        "containers": [{"name": "side", "image": "example.com/s:1",
                        "volumeMounts": [{"name": "mine", "mountPath": "/var/run/secrets/tokens"}]}],
        "volumes": [{"name": "mine", "emptyDir": {}}],
        "holdApplication": False,
        "serviceAccountToken": {"audience": "a"},
    }}}
    try:
        config = parse_config(data)
    except ConfigError:
        return  # refusing the config is a fine answer too
    result = run(make_pod(), config)
    mounts = container(result.pod, "side")["volumeMounts"]
    assert any(m["name"] == "p-token" for m in mounts) or any("token" in w or "/var/run/secrets/tokens" in w
                                                               for w in result.warnings)


# --------------------------------------------------------------------------- the ops inject() records


def _paths(result: Injection) -> list[str]:
    return [f"{op['op']} {op['path']}" for op in result.ops]


def test_ops_add_whole_lists_where_the_pod_has_none() -> None:
    pod = make_pod()
    del pod["metadata"]["labels"]
    result = run(pod)
    assert _paths(result) == [
        "add /metadata/annotations", "add /spec/initContainers", "add /spec/containers/0/volumeMounts",
        "add /spec/containers/0/lifecycle", "add /spec/volumes"]  # the default 30 s grace already suffices


def test_ops_insert_into_and_append_to_the_pods_own_lists() -> None:
    app = {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "data", "mountPath": "/data"}],
           "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}
    pod = make_pod({"team": "a"}, app, initContainers=[{"name": "migrate", "image": "m:1"}],
                   volumes=[{"name": "data", "emptyDir": {}}], terminationGracePeriodSeconds=5)
    result = run(pod)
    assert _paths(result) == [
        "add /metadata/annotations/sidecar-injector.io~1status", "add /spec/initContainers/0",
        "add /spec/containers/0/volumeMounts/1", "add /spec/containers/0/lifecycle/preStop",
        "add /spec/volumes/1", "add /spec/volumes/2", "add /spec/volumes/3",
        "replace /spec/terminationGracePeriodSeconds"]


def test_ops_on_application_containers_follow_legacy_sidecars_inserted_before_them() -> None:
    pod = make_pod({ann.PROFILES: "logging"}, {"name": "app", "image": "a:1"}, {"name": "web", "image": "w:1"})
    result = run(pod)
    assert _paths(result) == [
        "add /metadata/annotations/sidecar-injector.io~1status",
        "add /spec/containers/0", "add /spec/containers/1",  # the legacy sidecars, in front
        "add /spec/containers/2/volumeMounts", "add /spec/containers/3/volumeMounts",  # app, web: shifted by two
        "add /spec/volumes"]


def test_ops_replace_a_status_annotation_already_there() -> None:
    """decide() skips such Pods; inject() called on its own still gives a patch that applies."""
    pod = make_pod({ann.STATUS: "{}"})
    result = inject(pod, decide(make_pod(), SHOP, CONFIG).settings)  # type: ignore[arg-type]
    assert result.ops[0] == {"op": "replace", "path": "/metadata/annotations/sidecar-injector.io~1status",
                             "value": result.pod["metadata"]["annotations"][ann.STATUS]}
    assert jsonpatch.apply_patch(pod, result.ops, in_place=False) == result.pod


def test_ops_add_metadata_to_a_pod_without_any() -> None:
    pod = make_pod()
    del pod["metadata"]
    result = inject(pod, decide(make_pod(), SHOP, CONFIG).settings)  # type: ignore[arg-type]
    assert result.ops[0]["path"] == "/metadata"
    assert jsonpatch.apply_patch(pod, result.ops, in_place=False) == result.pod


@pytest.mark.parametrize("key", ["volumes", "initContainers"])
def test_ops_replace_a_list_that_is_null_when_inject_is_called_on_its_own(key: str) -> None:
    """decide() skips such Pods as malformed; inject() on its own still gives ops that apply."""
    pod = make_pod(**{key: None})
    result = inject(pod, decide(make_pod(), SHOP, CONFIG).settings)  # type: ignore[arg-type]
    assert f"add /spec/{key}" in _paths(result)
    assert jsonpatch.apply_patch(pod, result.ops, in_place=False) == result.pod



@pytest.mark.parametrize("resources", [5, {"requests": 5}, {"limits": "x"}, {"requests": ["cpu"]}, {}])
def test_pod_level_resources_of_another_shape_are_no_internal_error(resources: Any) -> None:
    # {"requests": 5} was a TypeError: an internal error (the API server refuses such a Pod anyway).
    pod = make_pod({ann.PROFILES: "proxy"})
    pod["spec"]["resources"] = resources
    decision = decide(pod, SHOP, CONFIG)
    assert decision.settings is not None
    assert status(inject(pod, decision.settings))["containers"] == ["proxy"]
