"""RFC 6902 JSON patch from the original Pod to the injected one, in linear time.

A general diff (jsonpatch.make_patch) is quadratic-ish and was most of the CPU per review.
Injection only adds keys, inserts list items and raises a few scalars, so this diff walks
both trees once: untouched subtrees are shared objects (inject() copies on write) and are
skipped by identity. Anything it does not expect (a removed key, a list that is not the
original plus insertions) still yields a correct patch, by replacing that value whole.
jsonpatch.make_patch stays the oracle in the property tests.
"""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """JSON Pointer escaping (RFC 6901): '~' first, then '/'."""
    return token.replace("~", "~0").replace("/", "~1")


def _same_item(old: Any, new: Any) -> bool:
    """List items correspond when equal, or when both are objects with the same name."""
    if old is new or old == new:
        return True
    return (
        isinstance(old, dict)
        and isinstance(new, dict)
        and "name" in old
        and old.get("name") == new.get("name")
    )


def _diff(old: Any, new: Any, path: str, ops: list[Op]) -> None:
    if old is new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in new.items():
            if key in old:
                prior = old[key]
                if prior is not value:  # shared (untouched) subtrees: no path to build
                    _diff(prior, value, f"{path}/{escape(key)}", ops)
            else:
                ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
        return
    if isinstance(old, list) and isinstance(new, list):
        if _diff_list(old, new, path, ops):
            return
    if type(old) is not type(new) or old != new:
        ops.append({"op": "replace", "path": path, "value": new})


def _diff_list(old: list[Any], new: list[Any], path: str, ops: list[Op]) -> bool:
    """Diff lists where new is old with insertions and in-place changes; False if not so."""
    if len(new) < len(old):
        return False
    pending: list[Op] = []
    i = 0
    for j, item in enumerate(new):
        if i < len(old) and _same_item(old[i], item):
            if old[i] is not item:
                _diff(old[i], item, f"{path}/{j}", pending)
            i += 1
        else:
            pending.append({"op": "add", "path": f"{path}/{j}", "value": item})
    if i < len(old):
        return False
    ops.extend(pending)
    return True


def make_patch(old: dict[str, Any], new: dict[str, Any]) -> list[Op]:
    """The ops that turn `old` into `new`, in application order."""
    ops: list[Op] = []
    _diff(old, new, "", ops)
    return ops
