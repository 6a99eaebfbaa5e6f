"""webhook/patch.py: JSON Pointer escaping and list ops (inject()'s ops are tested with inject())."""

from __future__ import annotations

import jsonpatch
import pytest

from webhook.patch import escape, grown

# --------------------------------------------------------------------------- JSON Pointer escaping


@pytest.mark.parametrize(
    "token, escaped",
    [("plain", "plain"), ("a/b", "a~1b"), ("a~b", "a~0b"), ("~1", "~01"), ("/~", "~1~0"), ("~/", "~0~1"),
     ("", ""), ("~~//", "~0~0~1~1")],
)
def test_escape(token: str, escaped: str) -> None:
    assert escape(token) == escaped


@pytest.mark.parametrize("key", ["sidecar-injector.io/status", "a~b", "~1/~0"])
def test_an_escaped_key_is_the_key_jsonpatch_writes(key: str) -> None:
    patched = jsonpatch.apply_patch({"m": {}}, [{"op": "add", "path": f"/m/{escape(key)}", "value": 1}])
    assert patched == {"m": {key: 1}}


@pytest.mark.parametrize(("before", "start", "items"), [
    (["a", "b"], 0, ["x", "y"]),  # in front
    (["a", "b"], 2, ["x", "y"]),  # at the end
    ([], 0, ["x"]),  # an empty list that exists
])
def test_grown_lists_apply(before: list[str], start: int, items: list[str]) -> None:
    whole = before[:start] + items + before[start:]
    ops = grown("/l", True, start, items, whole)
    assert jsonpatch.apply_patch({"l": before}, ops) == {"l": whole}


def test_a_list_the_document_lacks_is_added_whole() -> None:
    assert grown("/l", False, 0, ["x"], ["x"]) == [{"op": "add", "path": "/l", "value": ["x"]}]

