"""webhook/config/: the config model, its validation rules and their messages (README "Configuration")."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from webhook.config import (
    DEFAULT_REQUESTERS,
    Config,
    Namespaces,
    Requesters,
    example_config,
    example_config_text,
    load_config_file,
    load_config_text,
    parse_config,
)
from webhook.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
SIDECAR = {"name": "side", "image": "example.com/side:1"}


def profile(**keys: Any) -> dict[str, Any]:
    return {"containers": [dict(SIDECAR)], **keys}


def config_error(data: Any, source: str = "test.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source)
    text = str(info.value)
    assert text.startswith(f"{source}: "), text  # every message names the source
    return text


# --------------------------------------------------------------------------- what must load


def test_example_config_loads() -> None:
    config = example_config()
    assert config.defaultProfiles == ["proxy"]
    assert set(config.profiles) >= {"proxy", "logging"}
    assert str(config.kube_version) == "1.30"
    assert config.onError == "allow" and config.requesters.enabled is False
    assert load_config_text(example_config_text()) == config


def _model_keys(model: type) -> set[str]:
    return set(model.model_fields)


def test_example_config_documents_every_top_level_and_profile_key() -> None:
    from webhook.config import Profile

    text = example_config_text()
    missing = sorted(key for key in _model_keys(Config) | _model_keys(Profile) if not re.search(rf"\b{key}:", text))
    assert missing == []


def _readme_config_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    snippets = [b for b in blocks if b.startswith("defaultProfiles:")]
    assert len(snippets) == 1, "README's Configuration section should have one config snippet"
    return snippets[0]


def _fill_placeholders(value: Any, example: Any) -> Any:
    """README writes `[...]` for elided lists; take those from the example config."""
    if value == ["..."]:
        assert example is not None, "README elides a value the example config does not have"
        return copy.deepcopy(example)
    if isinstance(value, dict):
        example = example if isinstance(example, dict) else {}
        return {k: _fill_placeholders(v, example.get(k)) for k, v in value.items()}
    return value


def test_readme_config_snippet_loads() -> None:
    snippet = yaml.safe_load(_readme_config_snippet())
    example = yaml.safe_load(example_config_text())
    filled = _fill_placeholders(snippet, example)
    config = parse_config(filled, "README")
    proxy = config.profiles["proxy"]
    # The values README shows are the ones the model reads (nothing silently dropped or renamed).
    assert proxy.probes.liveness is None and proxy.probes.startupPeriodSeconds == 2
    assert proxy.podinfo.enabled and proxy.podinfo.mountPath == "/etc/podinfo"
    assert proxy.serviceAccountToken is not None and proxy.serviceAccountToken.audience == "proxy"
    assert proxy.terminationGracePeriodSeconds == 30 and proxy.sidecarShutdownSeconds == 5


def test_empty_document_is_an_empty_config() -> None:
    config = load_config_text("")
    assert config.profiles == {} and config.defaultProfiles == []
    assert parse_config(None) == config


def test_defaults() -> None:
    config = parse_config({})
    assert config.kubernetesVersion == "1.30" and config.onError == "allow" and config.deadlineSeconds == 2.0
    assert config.limits.maxContainers == 100 and config.limits.maxPatchBytes == 1024 * 1024
    assert config.requesters == Requesters() and config.requesters.usernames == DEFAULT_REQUESTERS
    assert config.requesters.groups == ["system:masters"] and config.requesters.onMismatch == "allow"


def test_config_is_frozen() -> None:
    config = parse_config({"profiles": {"p": profile()}})
    with pytest.raises(ValidationError, match="frozen"):
        config.onError = "deny"  # type: ignore[misc]


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    "data, path",
    [
        ({"colour": "blue"}, "colour"),
        ({"profiles": {"p": profile(colour="blue")}}, "profiles.p.colour"),
        ({"profiles": {"p": profile(podinfo={"enabled": True, "colour": "blue"})}}, "profiles.p.podinfo.colour"),
        ({"profiles": {"p": profile(probes={"colour": "blue"})}}, "profiles.p.probes.colour"),
        ({"profiles": {"p": profile(probes={"readiness": {"colour": "blue"}})}}, "profiles.p.probes.readiness.colour"),
        ({"profiles": {"p": profile(probes={"liveness": {"colour": "blue"}})}}, "profiles.p.probes.liveness.colour"),
        ({"profiles": {"p": profile(serviceAccountToken={"audience": "a", "colour": "blue"})}},
         "profiles.p.serviceAccountToken.colour"),
        ({"profiles": {"p": profile(namespaces={"colour": "blue"})}}, "profiles.p.namespaces.colour"),
        ({"requesters": {"colour": "blue"}}, "requesters.colour"),
        ({"limits": {"colour": "blue"}}, "limits.colour"),
    ],
)
def test_unknown_keys_are_errors_at_every_level(data: dict[str, Any], path: str) -> None:
    text = config_error(data)
    assert f"test.yaml: {path}: unknown key" in text
    assert '(got "blue")' in text


def test_unknown_key_message_says_which_keys_are_allowed() -> None:
    text = config_error({"profiles": {"p": profile(drainSecond=5)}})
    assert "drainSeconds" in text


def test_several_errors_are_all_reported_one_per_line() -> None:
    text = config_error({"colour": 1, "onError": "ignore"})
    lines = text.splitlines()
    assert len(lines) == 2 and all(line.startswith("test.yaml: ") for line in lines)


def test_top_level_must_be_a_mapping() -> None:
    assert config_error([1, 2]) == "test.yaml: the config must be a mapping, got list"
    assert config_error("text") == "test.yaml: the config must be a mapping, got str"


def test_long_values_are_shortened_in_messages() -> None:
    text = config_error({"colour": "x" * 500})
    assert "x" * 80 not in text and text.endswith('...)')
    assert "allowed here: defaultProfiles, profiles" in text


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["Side", "side_car", "side.car", "-side", "side-", "a" * 64, "", 5, None])
def test_sidecar_names_must_be_dns_labels(name: Any) -> None:
    container = {"name": name, "image": "i"} if name is not None else {"image": "i"}
    text = config_error({"profiles": {"p": {"containers": [container]}}})
    assert "profiles.p.containers: containers[0].name" in text
    assert repr(name) in text and "must be a DNS label" in text


def test_init_container_names_must_be_dns_labels() -> None:
    text = config_error({"profiles": {"p": {"initContainers": [{"name": "Init", "image": "i"}]}}})
    assert "profiles.p.initContainers: initContainers[0].name 'Init' must be a DNS label" in text


def test_a_63_character_name_is_fine() -> None:
    parse_config({"profiles": {"p": {"containers": [{"name": "a" * 63, "image": "i"}]}}})


@pytest.mark.parametrize(
    "data",
    [
        {"profiles": {"p": {"containers": [{"name": "side\n", "image": "i"}]}}},
        {"profiles": {"p": profile(volumes=[{"name": "v\n", "emptyDir": {}}])}},
        {"profiles": {"p\n": profile()}},
    ],
    ids=["container", "volume", "profile"],
)
def test_names_with_a_trailing_newline_are_rejected(data: dict[str, Any]) -> None:
    config_error(data)


@pytest.mark.parametrize("container", [{"name": "side"}, {"name": "side", "image": "  "}, {"name": "side", "image": 5}])
def test_sidecars_need_an_image(container: dict[str, Any]) -> None:
    text = config_error({"profiles": {"p": {"containers": [container]}}})
    assert "containers[0] (side) needs an image" in text


def test_a_container_must_be_an_object() -> None:
    assert "profiles.p.containers.0: Input should be a valid dictionary" in config_error(
        {"profiles": {"p": {"containers": ["side"]}}}
    )


@pytest.mark.parametrize("name", ["Data", "data_1", "a" * 64, None])
def test_volume_names_must_be_dns_labels(name: Any) -> None:
    volume = {"name": name, "emptyDir": {}} if name is not None else {"emptyDir": {}}
    text = config_error({"profiles": {"p": profile(volumes=[volume])}})
    assert f"profiles.p.volumes: volumes[0].name {name!r} must be a DNS label" in text


def test_volumes_need_a_source() -> None:
    text = config_error({"profiles": {"p": profile(volumes=[{"name": "data"}])}})
    assert "volumes[0] (data) needs exactly one source such as emptyDir or configMap" in text


@pytest.mark.parametrize("name", ["Proxy", "my_profile", "a" * 41, "-p", "p.q"])
def test_profile_names_must_be_short_dns_labels(name: str) -> None:
    text = config_error({"profiles": {name: profile()}})
    assert f"test.yaml: profiles: profile name {name!r} must be a DNS label of at most 40 characters" in text


def test_a_40_character_profile_name_is_fine() -> None:
    parse_config({"profiles": {"a" * 40: profile()}})


# --------------------------------------------------------------------------- references inside a profile


def test_duplicate_container_names_in_a_profile() -> None:
    text = config_error({"profiles": {"p": {"containers": [SIDECAR, {"name": "b", "image": "i"}, SIDECAR]}}})
    assert "profiles.p: container names must be unique within a profile; repeated: side" in text


def test_duplicate_names_across_init_containers_and_sidecars() -> None:
    text = config_error({"profiles": {"p": {"containers": [SIDECAR], "initContainers": [SIDECAR]}}})
    assert "repeated: side" in text


def test_same_container_name_in_two_profiles_is_allowed() -> None:
    # Only within a profile; across profiles the injector reports the clash at admission time.
    parse_config({"profiles": {"p": profile(), "q": profile()}})


@pytest.mark.parametrize("key", ["containers", "initContainers"])
def test_a_request_above_its_limit_in_a_profile_is_a_config_error(key: str) -> None:
    container = {**SIDECAR, "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "100m"}}}
    text = config_error({"profiles": {"p": {key: [container]}}})
    assert f"profiles.p.{key}: {key}[0] (side).resources: the cpu request 500m exceeds its limit 100m" in text


def test_requests_and_limits_compare_as_values_and_non_quantities_are_left_to_the_api_server() -> None:
    resources = {"requests": {"cpu": "1000m", "memory": "x", "memory2": 1}, "limits": {"cpu": 1, "memory": "1Mi",
                                                                                        "memory2": "1Ki"}}
    parse_config({"profiles": {"p": {"containers": [{**SIDECAR, "resources": resources}]}}})


def test_duplicate_volume_names_in_a_profile() -> None:
    volumes = [{"name": "v", "emptyDir": {}}, {"name": "v", "configMap": {"name": "c"}}]
    text = config_error({"profiles": {"p": profile(volumes=volumes)}})
    assert "profiles.p: volume names must be unique within a profile" in text


@pytest.mark.parametrize(
    "keys, where",
    [
        ({"containers": [{**SIDECAR, "volumeMounts": [{"name": "missing", "mountPath": "/m"}]}]}, "side.volumeMounts"),
        ({"volumeMounts": {"side": [{"name": "missing", "mountPath": "/m"}]}}, "volumeMounts.side"),
        ({"appVolumeMounts": [{"name": "missing", "mountPath": "/m"}]}, "appVolumeMounts"),
        ({"initContainers": [{"name": "init", "image": "i", "volumeMounts": [{"name": "missing", "mountPath": "/m"}]}]},
         "init.volumeMounts"),
    ],
)
def test_mounts_must_name_a_volume_of_the_profile(keys: dict[str, Any], where: str) -> None:
    data = {"containers": [SIDECAR], "volumes": [{"name": "data", "emptyDir": {}}], **keys}
    text = config_error({"profiles": {"p": data}})
    assert f"profiles.p: {where}: mount 'missing' names no volume of this profile" in text
    assert "the profile has: data" in text


def test_mount_of_a_volume_another_profile_declares_is_still_an_error() -> None:
    data = {
        "profiles": {
            "a": profile(volumes=[{"name": "shared", "emptyDir": {}}]),
            "b": {"containers": [{"name": "b", "image": "i", "volumeMounts": [{"name": "shared", "mountPath": "/s"}]}]},
        }
    }
    assert "the profile has: none" in config_error(data)


@pytest.mark.parametrize("mount", [{"name": "data"}, {"mountPath": "/d"}, {"name": "", "mountPath": "/d"}])
def test_mounts_need_a_name_and_a_mount_path(mount: Any) -> None:
    data = profile(volumes=[{"name": "data", "emptyDir": {}}], appVolumeMounts=[mount])
    assert "appVolumeMounts[0] must be an object with name and mountPath as text" in config_error({"profiles": {"p": data}})


def test_a_mount_must_be_an_object() -> None:
    data = profile(volumes=[{"name": "data", "emptyDir": {}}], appVolumeMounts=["data"])
    assert 'profiles.p.appVolumeMounts.0: Input should be a valid dictionary (got "data")' in config_error(
        {"profiles": {"p": data}}
    )


@pytest.mark.parametrize(
    "data",
    [
        profile(volumes=[{"name": "v", "emptyDir": {}}], appVolumeMounts=[{"name": ["v"], "mountPath": "/v"}]),
        {"containers": [{**SIDECAR, "volumeMounts": 5}]},
    ],
    ids=["unhashable-mount-name", "volumeMounts-not-a-list"],
)
def test_malformed_mounts_are_config_errors(data: dict[str, Any]) -> None:
    config_error({"profiles": {"p": data}})


def test_volume_mounts_for_a_container_the_profile_does_not_have() -> None:
    text = config_error({"profiles": {"p": profile(volumeMounts={"ghost": []})}})
    assert "profiles.p: volumeMounts names containers the profile does not have: ghost" in text


def test_volume_mounts_may_name_an_init_container() -> None:
    data = {
        "initContainers": [{"name": "init", "image": "i"}],
        "volumes": [{"name": "v", "emptyDir": {}}],
        "volumeMounts": {"init": [{"name": "v", "mountPath": "/v"}]},
    }
    parse_config({"profiles": {"p": data}})


# --------------------------------------------------------------------------- fields the webhook owns


def test_restart_policy_on_a_sidecar() -> None:
    text = config_error({"profiles": {"p": {"containers": [{**SIDECAR, "restartPolicy": "Always"}]}}})
    assert "profiles.p.containers: containers[0] (side) may not set restartPolicy: the webhook sets it" in text


@pytest.mark.parametrize("key", ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "restartPolicy"])
def test_plain_init_containers_cannot_have_probes_lifecycle_or_restart_policy(key: str) -> None:
    init = {"name": "init", "image": "i", key: {} if key != "restartPolicy" else "Always"}
    text = config_error({"profiles": {"p": {"initContainers": [init]}}})
    assert f"initContainers[0] (init) may not set {key}: plain init containers cannot have it" in text


def test_sidecars_may_have_probes_and_lifecycle() -> None:
    side = {**SIDECAR, "readinessProbe": {"tcpSocket": {"port": 1}}, "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}
    parse_config({"profiles": {"p": {"containers": [side]}}})


# --------------------------------------------------------------------------- numbers and enums


@pytest.mark.parametrize(
    "keys, path, allowed, shown",
    [
        ({"drainSeconds": 3601}, "profiles.p.drainSeconds", "less than or equal to 3600", "3601"),
        ({"drainSeconds": -1}, "profiles.p.drainSeconds", "greater than or equal to 0", "-1"),
        ({"warmupSeconds": 3601}, "profiles.p.warmupSeconds", "less than or equal to 3600", "3601"),
        ({"sidecarShutdownSeconds": 3601}, "profiles.p.sidecarShutdownSeconds", "less than or equal to 3600", "3601"),
        ({"terminationGracePeriodSeconds": -1}, "profiles.p.terminationGracePeriodSeconds",
         "greater than or equal to 0", "-1"),
        ({"serviceAccountToken": {"audience": "a", "expirationSeconds": 599}},
         "profiles.p.serviceAccountToken.expirationSeconds", "greater than or equal to 600", "599"),
        ({"serviceAccountToken": {"audience": "a", "expirationSeconds": 2**32 + 1}},
         "profiles.p.serviceAccountToken.expirationSeconds", "less than or equal to 4294967296", str(2**32 + 1)),
        ({"serviceAccountToken": {"audience": ""}}, "profiles.p.serviceAccountToken.audience",
         "at least 1 character", '""'),
        ({"probes": {"startupPeriodSeconds": 61}}, "profiles.p.probes.startupPeriodSeconds",
         "less than or equal to 60", "61"),
        ({"probes": {"readiness": {"periodSeconds": 0}}}, "profiles.p.probes.readiness.periodSeconds",
         "greater than or equal to 1", "0"),
        ({"drainSeconds": "soon"}, "profiles.p.drainSeconds", "valid integer", '"soon"'),
    ],
)
def test_number_bounds_name_path_value_and_allowed_range(
    keys: dict[str, Any], path: str, allowed: str, shown: str
) -> None:
    text = config_error({"profiles": {"p": profile(**keys)}})
    assert f"test.yaml: {path}: " in text and allowed in text
    assert f"(got {shown})" in text


@pytest.mark.parametrize("keys", [{"drainSeconds": 3600}, {"drainSeconds": 0},
                                  {"serviceAccountToken": {"audience": "a", "expirationSeconds": 600}}])
def test_bounds_are_inclusive(keys: dict[str, Any]) -> None:
    parse_config({"profiles": {"p": profile(**keys)}})


def test_service_account_token_needs_an_audience() -> None:
    assert "profiles.p.serviceAccountToken.audience: Field required" in config_error(
        {"profiles": {"p": profile(serviceAccountToken={})}}
    )


def test_empty_wait_command() -> None:
    text = config_error({"profiles": {"p": profile(waitCommand=[])}})
    assert "profiles.p.waitCommand: waitCommand must not be empty; leave it out instead (got [])" in text


@pytest.mark.parametrize(
    "data, path, allowed",
    [
        ({"onError": "ignore"}, "onError", "'allow' or 'deny'"),
        ({"deadlineSeconds": 0}, "deadlineSeconds", "greater than 0"),
        ({"deadlineSeconds": 31}, "deadlineSeconds", "less than or equal to 30"),
        ({"requesters": {"onMismatch": "warn"}}, "requesters.onMismatch", "'allow' or 'deny'"),
        ({"requesters": {"enabled": "sometimes"}}, "requesters.enabled", "valid boolean"),
        ({"requesters": {"usernames": "system:admin"}}, "requesters.usernames", "valid list"),
        ({"limits": {"maxContainers": 0}}, "limits.maxContainers", "greater than or equal to 1"),
        ({"limits": {"maxPatchBytes": 1023}}, "limits.maxPatchBytes", "greater than or equal to 1024"),
        ({"injectHostNetwork": "perhaps"}, "injectHostNetwork", "valid boolean"),
    ],
)
def test_top_level_keys_name_path_and_allowed(data: dict[str, Any], path: str, allowed: str) -> None:
    text = config_error(data)
    assert f"test.yaml: {path}: " in text and allowed in text


def test_requesters_limits_on_error_and_deadline_load() -> None:
    config = parse_config(
        {
            "onError": "deny",
            "deadlineSeconds": 0.5,
            "requesters": {"enabled": True, "usernames": ["system:serviceaccount:*:ci"], "groups": [],
                           "onMismatch": "deny"},
            "limits": {"maxContainers": 1, "maxPatchBytes": 1024},
        }
    )
    assert config.onError == "deny" and config.deadlineSeconds == 0.5
    assert config.requesters.enabled and config.requesters.onMismatch == "deny"
    assert config.limits.maxContainers == 1 and config.limits.maxPatchBytes == 1024


# --------------------------------------------------------------------------- defaultProfiles and version


def test_default_profiles_must_exist() -> None:
    text = config_error({"defaultProfiles": ["proxy", "ghost"], "profiles": {"proxy": profile(), "b": profile()}})
    assert "test.yaml: (top level): defaultProfiles names 'ghost', which is not under profiles (configured: b, proxy)" in text


def test_default_profiles_with_no_profiles_at_all() -> None:
    assert "(configured: none)" in config_error({"defaultProfiles": ["proxy"]})


@pytest.mark.parametrize(
    "text, minor",
    [("1.30", 30), ("v1.31.2", 31), ("v1.29.3-eks-1", 29), ("1.20", 20), ("1.28.0", 28), ("v1.30.1+k3s1", 30)],
)
def test_kubernetes_version_forms(text: str, minor: int) -> None:
    config = parse_config({"kubernetesVersion": text})
    assert config.kubernetesVersion == text
    assert (config.kube_version.major, config.kube_version.minor) == (1, minor)


@pytest.mark.parametrize(
    "text, expected",
    [("1.19", "older than the oldest supported version 1.20"), ("latest", "is not a Kubernetes version"),
     ("1", "is not a Kubernetes version"), ("", "is not a Kubernetes version"),
     ("1.30.2.1", "is not a Kubernetes version"), ("one.thirty", "is not a Kubernetes version")],
)
def test_kubernetes_version_errors(text: str, expected: str) -> None:
    message = config_error({"kubernetesVersion": text})
    assert message.startswith("test.yaml: kubernetesVersion: ")
    assert repr(text) in message and expected in message


def test_unquoted_yaml_version_is_not_silently_misread() -> None:
    # YAML reads `1.30` as the float 1.3; it must not pass as some other version.
    with pytest.raises(ConfigError) as info:
        load_config_text("kubernetesVersion: 1.30\n", "c.yaml")
    assert "c.yaml: kubernetesVersion" in str(info.value)


# --------------------------------------------------------------------------- files


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"{path}: cannot read config")
    assert "No such file" in str(info.value)


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read config")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("profiles: {proxy: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"{path}: not valid YAML")


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("onError: maybe\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config_file(str(path))
    assert str(info.value).startswith(f"{path}: onError: ")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"defaultProfiles: [caf\xe9]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(path) in str(info.value)


def test_load_config_file_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(example_config_text(), encoding="utf-8")
    assert load_config_file(path) == example_config()


# --------------------------------------------------------------------------- config_hash


def test_config_hash_is_short_hex_and_stable() -> None:
    first, second = example_config(), example_config()
    assert re.fullmatch(r"[0-9a-f]{16}", first.config_hash)
    assert first.config_hash == second.config_hash


def test_config_hash_ignores_key_order_and_comments() -> None:
    a = parse_config({"onError": "deny", "profiles": {"p": profile(drainSeconds=3)}})
    b = load_config_text("# comment\nprofiles:\n  p: {drainSeconds: 3, containers: [{image: example.com/side:1, name: side}]}\n"
                         "onError: deny\n")
    assert a.config_hash == b.config_hash


@pytest.mark.parametrize(
    "change",
    [
        {"onError": "deny"},
        {"kubernetesVersion": "1.29"},
        {"profiles": {"p": profile(drainSeconds=4)}},
        {"profiles": {"p": {"containers": [{**SIDECAR, "image": "example.com/side:2"}]}}},
        {"limits": {"maxContainers": 5}},
        {"requesters": {"enabled": True}},
    ],
)
def test_config_hash_changes_with_the_config(change: dict[str, Any]) -> None:
    base = {"profiles": {"p": profile(drainSeconds=3)}}
    assert parse_config(base).config_hash != parse_config({**base, **change}).config_hash


# --------------------------------------------------------------------------- Namespaces and Requesters


@pytest.mark.parametrize(
    "allow, deny, namespace, expected",
    [
        ([], [], "anything", True),
        ([], [], "", True),
        (["shop"], [], "shop", True),
        (["shop"], [], "shop-2", False),
        (["team-*"], [], "team-a", True),
        (["team-*"], [], "team", False),
        (["team-?"], [], "team-ab", False),
        (["Shop"], [], "shop", False),  # case sensitive
        (["*"], ["kube-*"], "kube-system", False),
        (["*"], ["kube-*"], "default", True),
        (["kube-system"], ["kube-system"], "kube-system", False),  # deny wins
        ([], ["prod"], "prod", False),
        ([], ["prod"], "dev", True),
    ],
)
def test_namespaces_permits(allow: list[str], deny: list[str], namespace: str, expected: bool) -> None:
    assert Namespaces(allow=allow, deny=deny).permits(namespace) is expected


@pytest.mark.parametrize(
    "username, groups, expected",
    [
        ("system:serviceaccount:kube-system:replicaset-controller", [], True),
        ("system:serviceaccount:kube-system:job-controller", [], True),
        ("system:kube-controller-manager", [], True),
        ("alice", ["system:authenticated"], False),
        ("alice", ["system:authenticated", "system:masters"], True),
        ("system:serviceaccount:shop:replicaset-controller", [], False),
        ("", [], False),
    ],
)
def test_default_requesters(username: str, groups: list[str], expected: bool) -> None:
    assert Requesters().permits(username, groups) is expected


def test_requester_wildcards() -> None:
    requesters = Requesters(usernames=["system:serviceaccount:*:deployer", "ci-?"], groups=["team-*"])
    assert requesters.permits("system:serviceaccount:shop:deployer", [])
    assert requesters.permits("ci-1", [])
    assert not requesters.permits("ci-10", [])
    assert requesters.permits("bob", ["x", "team-shop"])
    assert not requesters.permits("bob", ["teams"])
    assert not Requesters(usernames=[], groups=[]).permits("system:kube-controller-manager", ["system:masters"])


# --------------------------------------------------------------------------- a config that loads must inject valid Pods


def _inject_with(profile_data: dict[str, Any]) -> list[str]:
    """Load a one-profile config and inject a minimal Pod; [] when the config is refused or the Pod is valid."""
    from webhook.mutate import review

    from k8s_checks import pod_errors

    try:
        config = parse_config({"defaultProfiles": ["p"], "profiles": {"p": profile_data}}, "test.yaml")
    except ConfigError:
        return []
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
                        "namespace": "shop", "object": pod}}
    outcome = review(body, config)
    if outcome.reason == "internal-error":
        return [outcome.message]
    assert outcome.patched_pod is not None, outcome
    return pod_errors(outcome.patched_pod, "1.30")


def _gap(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason="BUG: config accepts " + reason)


@pytest.mark.parametrize(
    "profile_data",
    [
        pytest.param(profile(), id="baseline"),
        pytest.param(profile(podinfo={"enabled": True, "volumeName": "Pod_Info"}), id="podinfo-volumeName"),
        pytest.param(profile(serviceAccountToken={"audience": "a", "volumeName": "Tok_en"}), id="token-volumeName"),
        pytest.param(profile(serviceAccountToken={"audience": "a", "path": "../escape"}), id="token-path"),
        pytest.param(profile(serviceAccountToken={"audience": "a", "mountPath": ""}), id="token-mountPath"),
        pytest.param({"containers": [{**SIDECAR, "ports": "9901"}]}, id="container-schema"),
        pytest.param(profile(volumes=[{"name": "v", "emptyDir": {}, "configMap": {"name": "c"}}]), id="two-sources"),
        pytest.param({"containers": [{**SIDECAR, "readinessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": "fast"}}]},
                     id="probe-period-internal-error"),
        pytest.param({"containers": [{**SIDECAR, "readinessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 0.5}}]},
                     id="probe-period-zero-division"),
    ],
)
def test_a_config_that_loads_yields_valid_pods(profile_data: dict[str, Any]) -> None:
    assert _inject_with(profile_data) == []
