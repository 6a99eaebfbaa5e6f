"""webhook/annotations.py: strict parsing of the user API (README "The user API")."""

from __future__ import annotations

import pytest

from webhook import annotations as ann
from webhook.errors import AnnotationError, Denied

PROFILES = {"proxy": object(), "logging": object(), "agent": object()}


def _error(call, *args) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        call(*args)
    return info.value


# --------------------------------------------------------------------------- parse_bool


@pytest.mark.parametrize(
    "value, expected",
    [("true", True), ("false", False), ("TRUE", True), ("False", False), ("tRuE", True),
     (" true ", True), ("\tfalse\n", False), (True, True), (False, False)],
)
def test_parse_bool_accepts_any_case_and_surrounding_blanks(value: object, expected: bool) -> None:
    assert ann.parse_bool(ann.PODINFO, value) is expected


@pytest.mark.parametrize("value", ["", " ", "yes", "no", "1", "0", "on", "t", "truee", "tru e", "\u200btrue"])
def test_parse_bool_rejects_anything_else(value: str) -> None:
    error = _error(ann.parse_bool, ann.PODINFO, value)
    assert isinstance(error, Denied)
    assert error.reason == "invalid-annotation" and error.code == 400
    assert error.annotation == ann.PODINFO
    assert error.value == value
    text = str(error)
    assert ann.PODINFO in text
    assert repr(value) in text  # the value exactly as given, blanks and all
    assert "true" in text and "false" in text  # the allowed values


def test_parse_bool_message_keeps_the_label_marker() -> None:
    text = str(_error(ann.parse_bool, ann.INJECT + " (label)", "maybe"))
    assert text.startswith(f"annotation {ann.INJECT} (label)='maybe' is invalid")


# --------------------------------------------------------------------------- parse_seconds


@pytest.mark.parametrize(
    "value, expected",
    [("0", 0), ("1", 1), ("3600", 3600), (" 7 ", 7), ("\t30\n", 30), ("007", 7), (15, 15)],
)
def test_parse_seconds_accepts_whole_seconds_in_range(value: object, expected: int) -> None:
    assert ann.parse_seconds(ann.DRAIN_SECONDS, value) == expected


@pytest.mark.parametrize(
    "value",
    ["3601", "-1", "+5", "5s", "1.5", "1e3", "", " ", "five", "0x10", "1_000", "5 5",
     "\uff15",  # FULLWIDTH DIGIT FIVE: isdigit() is true, but it is not a decimal digit we accept
     "\u0663",  # ARABIC-INDIC DIGIT THREE
     "\u00b2",  # SUPERSCRIPT TWO (isdigit() true, int() fails)
     "99999999999999999999"],
)
def test_parse_seconds_rejects_everything_else(value: str) -> None:
    error = _error(ann.parse_seconds, ann.WARMUP_SECONDS, value)
    assert error.annotation == ann.WARMUP_SECONDS and error.value == value
    text = str(error)
    assert ann.WARMUP_SECONDS in text and repr(value) in text
    assert "0 to 3600" in text


def test_parse_seconds_rejects_a_huge_number_as_an_annotation_error() -> None:
    value = "9" * 5000
    error = _error(ann.parse_seconds, ann.DRAIN_SECONDS, value)
    assert error.annotation == ann.DRAIN_SECONDS


# --------------------------------------------------------------------------- parse_profiles


@pytest.mark.parametrize(
    "value, expected",
    [
        ("proxy", ("proxy",)),
        ("proxy,logging", ("proxy", "logging")),
        ("logging,proxy", ("logging", "proxy")),  # order kept, not sorted
        (" proxy , logging ", ("proxy", "logging")),
        ("proxy,,logging,", ("proxy", "logging")),  # blank items skipped
        ("proxy,logging,proxy", ("proxy", "logging")),  # deduplicated, first occurrence wins
        ("agent,agent,agent", ("agent",)),
    ],
)
def test_parse_profiles(value: str, expected: tuple[str, ...]) -> None:
    assert ann.parse_profiles(ann.PROFILES, value, PROFILES) == expected


def test_unknown_profile_names_it_and_lists_the_configured_ones_sorted() -> None:
    error = _error(ann.parse_profiles, ann.PROFILES, "proxy,Proxy", PROFILES)
    assert error.annotation == ann.PROFILES and error.value == "proxy,Proxy"
    text = str(error)
    assert "unknown profile 'Proxy'" in text  # names are case sensitive
    assert "configured profiles: agent, logging, proxy" in text
    assert ann.PROFILES in text and "'proxy,Proxy'" in text


def test_unknown_profile_with_nothing_configured() -> None:
    text = str(_error(ann.parse_profiles, ann.PROFILES, "proxy", {}))
    assert "configured profiles: none are configured" in text


@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_empty_profile_list_asks_for_a_profile_and_points_at_opt_out(value: str) -> None:
    error = _error(ann.parse_profiles, ann.PROFILES, value, PROFILES)
    text = str(error)
    assert "name at least one profile" in text
    assert f'{ann.INJECT}: "false"' in text  # how to opt out instead
    assert error.value == value


# --------------------------------------------------------------------------- parse_overrides


def test_no_annotations_means_nothing_overridden() -> None:
    assert ann.parse_overrides({}, {}, PROFILES) == ann.Overrides()


def test_every_annotation_is_read() -> None:
    overrides = ann.parse_overrides(
        {
            ann.INJECT: "true",
            ann.PROFILES: "logging,proxy",
            ann.NATIVE_SIDECAR: "FALSE",
            ann.HOLD_APPLICATION: "false",
            ann.DRAIN_SECONDS: "12",
            ann.SHARE_PROCESS_NAMESPACE: "True",
            ann.PODINFO: "false",
            ann.PROBES: "true",
            ann.WARMUP_SECONDS: "90",
            ann.STATUS: "{}",  # written by the webhook; not an override
            "team": "x",
        },
        {},
        PROFILES,
    )
    assert overrides == ann.Overrides(
        inject=True, profiles=("logging", "proxy"), native_sidecar=False, hold_application=False,
        drain_seconds=12, share_process_namespace=True, podinfo=False, probes=True, warmup_seconds=90,
    )


@pytest.mark.parametrize(
    "labels, annotations, expected",
    [
        ({ann.INJECT: "false"}, {}, False),
        ({ann.INJECT: "True"}, {}, True),
        ({}, {ann.INJECT: "false"}, False),
        ({ann.INJECT: "false"}, {ann.INJECT: "true"}, True),  # the annotation wins
        ({ann.INJECT: "true"}, {ann.INJECT: "false"}, False),
        ({"other": "false"}, {}, None),
    ],
)
def test_inject_label_and_annotation_precedence(labels: dict, annotations: dict, expected: bool | None) -> None:
    assert ann.parse_overrides(annotations, labels, PROFILES).inject is expected


def test_invalid_label_is_named_as_a_label() -> None:
    error = _error(ann.parse_overrides, {}, {ann.INJECT: "maybe"}, PROFILES)
    assert error.annotation == ann.INJECT + " (label)"
    assert error.value == "maybe"


def test_only_the_inject_switch_is_read_from_labels() -> None:
    overrides = ann.parse_overrides({}, {ann.DRAIN_SECONDS: "nonsense", ann.PODINFO: "x"}, PROFILES)
    assert overrides == ann.Overrides()


def test_first_invalid_annotation_raises_with_its_own_name() -> None:
    error = _error(ann.parse_overrides, {ann.DRAIN_SECONDS: "5", ann.WARMUP_SECONDS: "soon"}, {}, PROFILES)
    assert error.annotation == ann.WARMUP_SECONDS and error.value == "soon"


# --------------------------------------------------------------------------- unknown_annotations and names


def test_unknown_annotations_are_our_prefixed_typos_sorted() -> None:
    annotations = {
        ann.PREFIX + "drain-second": "5",
        ann.PREFIX + "Podinfo": "true",  # keys are case sensitive
        ann.PREFIX + "": "x",
        ann.DRAIN_SECONDS: "5",
        ann.STATUS: "{}",
        "example.com/sidecar-injector.io/inject": "x",  # not our prefix at the start
        "other.sidecar-injector.io/x": "x",
        "sidecar-injector.io.extra/x": "x",
        "team": "a",
    }
    assert ann.unknown_annotations(annotations) == [
        ann.PREFIX, ann.PREFIX + "Podinfo", ann.PREFIX + "drain-second",
    ]


def test_every_known_annotation_is_in_the_readme_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name in ann.KNOWN:
        assert f"`{name}`" in readme, name
    assert ann.unknown_annotations({name: "" for name in ann.KNOWN}) == []


@pytest.mark.parametrize(
    "name, ok",
    [("proxy", True), ("a", True), ("p-1", True), ("1p", True), ("a" * 40, True), ("a" * 41, False),
     ("Proxy", False), ("-p", False), ("p-", False), ("p_1", False), ("p.1", False), ("", False),
     ("pr\u00f6xy", False)],
)
def test_is_profile_name(name: str, ok: bool) -> None:
    assert ann.is_profile_name(name) is ok


def test_is_profile_name_rejects_a_trailing_newline() -> None:
    # `$` in a Python regex also matches before a final "\n"; the name must still be refused.
    assert ann.is_profile_name("proxy\n") is False


def test_every_invalid_annotation_is_named_not_only_the_first() -> None:
    overrides, errors = ann.read_overrides(
        {ann.DRAIN_SECONDS: "soon", ann.PODINFO: "yes", ann.PROBES: "true"}, {}, PROFILES)
    assert [(e.annotation, e.value) for e in errors] == [(ann.DRAIN_SECONDS, "soon"), (ann.PODINFO, "yes")]
    assert overrides == ann.Overrides(probes=True)  # an invalid one counts as not set
    with pytest.raises(Denied) as info:
        ann.parse_overrides({ann.DRAIN_SECONDS: "soon", ann.PODINFO: "yes"}, {}, PROFILES)
    message = str(info.value)
    assert message.startswith("2 problems: ") and "'soon'" in message and "'yes'" in message
    assert info.value.code == 400 and info.value.reason == "invalid-annotation"
