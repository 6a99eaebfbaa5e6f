"""RFC 6902 JSON Patch pieces the injection builder writes its ops with.

inject() records each change as the op that makes it, so no diff of the original and the
injected Pod is needed (a general diff such as jsonpatch.make_patch was most of a review's
CPU; even a linear one walked both trees). jsonpatch's RFC implementation applies every
patch in the tests and must give exactly the injected Pod.
"""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """JSON Pointer escaping (RFC 6901): '~' first, then '/'."""
    return token.replace("~", "~0").replace("/", "~1")


def add(path: str, value: Any) -> Op:
    return {"op": "add", "path": path, "value": value}


def grown(path: str, exists: bool, start: int, items: list[Any], whole: list[Any]) -> list[Op]:
    """The ops that put ``items`` into the list at ``path`` from index ``start`` on (0: in front;
    its old length: at the end), one op per item; or, when the Pod had no such list, one op
    adding ``whole``, the list as it now is."""
    if not exists:
        return [add(path, whole)]
    return [add(f"{path}/{start + k}", item) for k, item in enumerate(items)]
