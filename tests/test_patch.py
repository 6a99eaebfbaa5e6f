"""webhook/patch.py: the linear-time RFC 6902 diff. Every patch here is applied with jsonpatch
(the RFC implementation) to prove it turns the old document into the new one."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from webhook.patch import escape, make_patch


def check(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """make_patch(old, new) applied to old gives new, exactly (types included); old is untouched."""
    before = copy.deepcopy(old)
    ops = make_patch(old, new)
    assert old == before, "make_patch modified its input"
    json.dumps(ops)  # ops are plain JSON
    result = jsonpatch.apply_patch(old, ops, in_place=False)
    assert json.dumps(result, sort_keys=True) == json.dumps(new, sort_keys=True)
    assert result == new
    return ops


# --------------------------------------------------------------------------- JSON Pointer escaping


@pytest.mark.parametrize(
    "token, escaped",
    [("plain", "plain"), ("a/b", "a~1b"), ("a~b", "a~0b"), ("~1", "~01"), ("/~", "~1~0"), ("~/", "~0~1"),
     ("", ""), ("~~//", "~0~0~1~1")],
)
def test_escape(token: str, escaped: str) -> None:
    assert escape(token) == escaped


def test_keys_with_slash_and_tilde_are_escaped_in_paths() -> None:
    old = {"metadata": {"annotations": {"example.com/owner": "a/b~c"}}}
    new = {"metadata": {"annotations": {
        "example.com/owner": "a/b~c",
        "sidecar-injector.io/status": "{}",
        "odd~key/~1": "x",
        "": "empty key",
    }}}
    ops = check(old, new)
    paths = sorted(op["path"] for op in ops)
    assert paths == [
        "/metadata/annotations/",
        "/metadata/annotations/odd~0key~1~01",
        "/metadata/annotations/sidecar-injector.io~1status",
    ]


def test_changed_value_under_an_escaped_key() -> None:
    old = {"a/b": {"c~d": 1}}
    new = {"a/b": {"c~d": 2}}
    assert check(old, new) == [{"op": "replace", "path": "/a~1b/c~0d", "value": 2}]


def test_removed_key_with_special_characters() -> None:
    old = {"x": {"a/b": 1, "c~d": 2, "keep": 3}}
    new = {"x": {"keep": 3}}
    ops = check(old, new)
    assert sorted(op["path"] for op in ops) == ["/x/a~1b", "/x/c~0d"]
    assert {op["op"] for op in ops} == {"remove"}


# --------------------------------------------------------------------------- identity and equality


def test_identical_object_gives_no_ops() -> None:
    doc = {"spec": {"containers": [{"name": "a"}]}}
    assert make_patch(doc, doc) == []


def test_equal_copies_give_no_ops() -> None:
    doc = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 1}]}], "n": 1.5}}
    assert make_patch(doc, copy.deepcopy(doc)) == []


def test_shared_subtrees_are_skipped_by_identity() -> None:
    class Exploding(dict):
        def __eq__(self, other: object) -> bool:  # would be called if the subtree were compared
            raise AssertionError("shared subtree was compared instead of skipped")

        __hash__ = None  # type: ignore[assignment]

    shared = Exploding(big=list(range(10)))
    old = {"spec": {"shared": shared, "n": 1}}
    new = {"spec": {"shared": shared, "n": 2}}
    assert make_patch(old, new) == [{"op": "replace", "path": "/spec/n", "value": 2}]


# --------------------------------------------------------------------------- lists


@pytest.mark.parametrize(
    "old_list, new_list, expected_adds",
    [
        (["b", "c"], ["a", "b", "c"], ["/l/0"]),  # front
        (["a", "c"], ["a", "b", "c"], ["/l/1"]),  # middle
        (["a", "b"], ["a", "b", "c"], ["/l/2"]),  # end (index == length)
        ([], ["a", "b"], ["/l/0", "/l/1"]),  # into an empty list
        (["b", "d"], ["a", "b", "c", "d", "e"], ["/l/0", "/l/2", "/l/4"]),  # everywhere at once
        (["x"], ["n1", "n2", "x", "n3"], ["/l/0", "/l/1", "/l/3"]),
    ],
)
def test_insertions(old_list: list[str], new_list: list[str], expected_adds: list[str]) -> None:
    ops = check({"l": old_list}, {"l": new_list})
    assert [op["op"] for op in ops] == ["add"] * len(expected_adds)
    assert [op["path"] for op in ops] == expected_adds


def test_insert_named_objects_before_existing_ones() -> None:
    """What native injection does: sidecars go before the Pod's own init containers."""
    old = {"spec": {"initContainers": [{"name": "own", "image": "i"}]}}
    new = {"spec": {"initContainers": [{"name": "pre", "image": "p"}, {"name": "side", "image": "s"},
                                       {"name": "own", "image": "i"}]}}
    ops = check(old, new)
    assert [op["path"] for op in ops] == ["/spec/initContainers/0", "/spec/initContainers/1"]


def test_nested_change_inside_a_matched_item_after_an_insertion() -> None:
    """The matched item's ops must use its index in the new list (after the inserts before it)."""
    old = {"containers": [{"name": "app", "image": "a"}, {"name": "web", "image": "w"}]}
    new = {"containers": [
        {"name": "side", "image": "s"},
        {"name": "app", "image": "a", "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}},
        {"name": "web", "image": "w", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
    ]}
    ops = check(old, new)
    assert ops == [
        {"op": "add", "path": "/containers/0", "value": {"name": "side", "image": "s"}},
        {"op": "add", "path": "/containers/1/lifecycle", "value": {"preStop": {"sleep": {"seconds": 5}}}},
        {"op": "add", "path": "/containers/2/volumeMounts", "value": [{"name": "v", "mountPath": "/v"}]},
    ]


def test_deeply_nested_list_growth() -> None:
    old = {"c": [{"name": "app", "volumeMounts": [{"name": "a", "mountPath": "/a"}], "env": [{"name": "X"}]}]}
    new = {"c": [{"name": "app", "volumeMounts": [{"name": "a", "mountPath": "/a"}, {"name": "p", "mountPath": "/p"}],
                  "env": [{"name": "X"}]}]}
    assert check(old, new) == [{"op": "add", "path": "/c/0/volumeMounts/1", "value": {"name": "p", "mountPath": "/p"}}]


def test_item_changed_in_place_by_name() -> None:
    old = {"c": [{"name": "a", "v": 1}, {"name": "b", "v": 1}]}
    new = {"c": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}
    assert check(old, new) == [{"op": "replace", "path": "/c/1/v", "value": 2}]


def test_unnamed_changed_item_is_inserted_then_the_list_falls_back() -> None:
    old = {"c": [{"v": 1}]}
    new = {"c": [{"v": 2}]}
    ops = check(old, new)
    assert ops == [{"op": "replace", "path": "/c", "value": [{"v": 2}]}]


@pytest.mark.parametrize(
    "old_list, new_list",
    [
        (["a", "b", "c"], ["a", "c"]),  # shrinks
        (["a", "b"], []),  # emptied
        (["a", "b"], ["b", "a"]),  # reordered
        (["a", "b"], ["a", "x"]),  # replaced item
        ([{"name": "a"}, {"name": "b"}], [{"name": "b"}, {"name": "a"}, {"name": "c"}]),  # reordered + grown
    ],
)
def test_lists_that_are_not_insertions_are_replaced_whole(old_list: list[Any], new_list: list[Any]) -> None:
    ops = check({"l": old_list}, {"l": new_list})
    assert ops == [{"op": "replace", "path": "/l", "value": new_list}]


def test_fallback_discards_ops_already_planned_for_that_list() -> None:
    old = {"l": [{"name": "a", "v": 1}, {"name": "b"}]}
    new = {"l": [{"name": "a", "v": 2}]}  # a changed in place, then b is gone
    assert check(old, new) == [{"op": "replace", "path": "/l", "value": new["l"]}]


def test_duplicate_names_still_give_a_correct_patch() -> None:
    old = {"l": [{"name": "a", "v": 1}]}
    new = {"l": [{"name": "a", "v": 2}, {"name": "a", "v": 1}]}
    check(old, new)


def test_list_of_lists() -> None:
    check({"l": [[1], [2]]}, {"l": [[0], [1], [2, 3]]})


# --------------------------------------------------------------------------- types and removals


@pytest.mark.parametrize(
    "old_value, new_value",
    [(1, True), (True, 1), (0, False), (1, 1.0), (1.0, 1), ("1", 1), (None, 0), (0, None), ({}, []), ([], {}),
     ({"a": 1}, "a"), ([1], "1"), (False, None)],
)
def test_type_changes_are_replaced(old_value: Any, new_value: Any) -> None:
    ops = check({"k": old_value}, {"k": new_value})
    assert ops == [{"op": "replace", "path": "/k", "value": new_value}]


@pytest.mark.parametrize("old_value, new_value", [([1], [True]), ([1.0], [1]), ([{"name": "a", "n": 1}], [{"name": "a", "n": True}])])
def test_type_changes_inside_lists_are_seen(old_value: Any, new_value: Any) -> None:
    ops = check({"k": old_value}, {"k": new_value})
    assert ops and all(op["op"] == "replace" for op in ops)


def test_removed_and_added_keys_together() -> None:
    old = {"spec": {"a": 1, "b": {"c": 2}, "d": [1]}}
    new = {"spec": {"b": {"c": 2, "e": 3}, "f": None}}
    ops = check(old, new)
    assert {(op["op"], op["path"]) for op in ops} == {
        ("remove", "/spec/a"), ("remove", "/spec/d"), ("add", "/spec/b/e"), ("add", "/spec/f"),
    }


def test_top_level_key_added_and_removed() -> None:
    check({"a": 1}, {"b": 2})
    check({}, {"spec": {"containers": []}})
    check({"spec": {}}, {})


def test_ops_apply_in_order_with_jsonpatch_on_an_injection_shaped_change() -> None:
    """Adds at the front of containers, nested changes to shifted items, new keys and a raised scalar."""
    old = {
        "metadata": {"name": "web", "annotations": {"a/b": "x"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "a", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "web", "image": "w", "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}},
            ],
            "initContainers": [{"name": "own", "image": "o"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 10,
        },
    }
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["sidecar-injector.io/status"] = "{}"
    new["spec"]["containers"].insert(0, {"name": "log", "image": "l"})
    new["spec"]["containers"][1]["volumeMounts"].append({"name": "podinfo", "mountPath": "/etc/podinfo"})
    new["spec"]["containers"][2]["lifecycle"]["preStop"] = {"sleep": {"seconds": 5}}
    new["spec"]["initContainers"][:0] = [{"name": "init", "image": "i"}, {"name": "proxy", "image": "p",
                                                                         "restartPolicy": "Always"}]
    new["spec"]["volumes"].append({"name": "podinfo", "downwardAPI": {"items": []}})
    new["spec"]["terminationGracePeriodSeconds"] = 30
    new["spec"]["shareProcessNamespace"] = True
    ops = check(old, new)
    assert {op["op"] for op in ops} == {"add", "replace"}
    assert {"op": "replace", "path": "/spec/terminationGracePeriodSeconds", "value": 30} in ops
    # Ops applied one by one, each on the result of the previous, reach the target too.
    doc = copy.deepcopy(old)
    for op in ops:
        doc = jsonpatch.apply_patch(doc, [op], in_place=False)
    assert doc == new

