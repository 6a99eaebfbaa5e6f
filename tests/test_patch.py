"""webhook/patch.py: JSON Pointer escaping (the ops themselves are tested with inject())."""

from __future__ import annotations

import jsonpatch
import pytest

from webhook.patch import escape


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
