"""webhook/kubeversion.py: which Kubernetes versions are read, how they order, and the field gates."""

from __future__ import annotations

import pytest

from webhook.kubeversion import DEFAULT_KUBERNETES_VERSION, OLDEST_SUPPORTED, KubeVersion


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.30", (1, 30)),
        ("v1.30", (1, 30)),
        ("1.30.2", (1, 30)),
        ("v1.30.2", (1, 30)),
        ("v1.29.3-eks-1", (1, 29)),
        ("v1.31.2+k3s1", (1, 31)),
        ("1.28.15-gke.1234000", (1, 28)),
        (" 1.30 ", (1, 30)),
        ("1.030", (1, 30)),
        ("1.20", (1, 20)),
        ("1.100", (1, 100)),
        ("2.0", (2, 0)),
    ],
)
def test_parse_forms(text: str, expected: tuple[int, int]) -> None:
    version = KubeVersion.parse(text)
    assert (version.major, version.minor) == expected
    assert str(version) == f"{expected[0]}.{expected[1]}"


@pytest.mark.parametrize(
    "text",
    ["", "1", "v1", "1.", ".30", "1.x", "latest", "stable", "V1.30", "1.30.2.1", "1,30", "1.30 2", "v 1.30",
     "1.30.x", "version 1.30"],
)
def test_parse_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError) as info:
        KubeVersion.parse(text)
    assert repr(text) in str(info.value)
    assert "expected MAJOR.MINOR such as 1.30" in str(info.value)


@pytest.mark.parametrize("text", ["1.19", "v1.19.16", "1.0", "0.99", "1.2"])
def test_parse_rejects_versions_older_than_1_20(text: str) -> None:
    with pytest.raises(ValueError) as info:
        KubeVersion.parse(text)
    assert str(info.value) == f"{text!r} is older than the oldest supported version 1.20"
    assert OLDEST_SUPPORTED == (1, 20)


def test_parse_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        KubeVersion.parse("\uff11.\uff13\uff10")


def test_ordering_is_numeric_not_lexicographic() -> None:
    versions = [KubeVersion.parse(t) for t in ("1.100", "1.29", "2.0", "1.30", "1.20")]
    assert sorted(versions) == [KubeVersion(1, 20), KubeVersion(1, 29), KubeVersion(1, 30), KubeVersion(1, 100),
                                KubeVersion(2, 0)]
    assert KubeVersion(1, 9) < KubeVersion(1, 10)
    assert KubeVersion.parse("v1.30.9") == KubeVersion.parse("1.30.0") == KubeVersion(1, 30)
    assert len({KubeVersion.parse("1.30"), KubeVersion.parse("v1.30.1")}) == 1  # hashable, patch ignored


def test_at_least() -> None:
    version = KubeVersion(1, 30)
    assert version.at_least(1, 30) and version.at_least(1, 29) and version.at_least(0, 99)
    assert not version.at_least(1, 31) and not version.at_least(2, 0)
    assert KubeVersion(2, 0).at_least(1, 99)


@pytest.mark.parametrize(
    "text, native, sleep",
    [
        ("1.20", False, False),
        ("1.28", False, False),
        ("v1.28.15", False, False),
        ("1.29", True, False),
        ("v1.29.3-eks-1", True, False),
        ("1.30", True, True),
        ("1.31", True, True),
        ("2.0", True, True),
    ],
)
def test_gates(text: str, native: bool, sleep: bool) -> None:
    version = KubeVersion.parse(text)
    assert version.native_sidecars is native
    assert version.sleep_action is sleep


def test_default_version_is_the_target_and_has_every_feature() -> None:
    version = KubeVersion.parse(DEFAULT_KUBERNETES_VERSION)
    assert version == KubeVersion(1, 30)
    assert version.native_sidecars and version.sleep_action


def test_versions_are_immutable() -> None:
    version = KubeVersion(1, 30)
    with pytest.raises(AttributeError):
        version.minor = 31  # type: ignore[misc]
