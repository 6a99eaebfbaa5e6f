"""Copies of JSON trees, fast: config-derived parts every review needs a fresh copy of."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import orjson

from webhook import quantity

Obj = dict[str, Any]

_ATOMS = frozenset({str, int, float, bool, type(None)})


def is_map(value: Any) -> bool:
    """isinstance(value, Mapping), with the exact-dict case first: the ABC check costs ten times
    more, and a review makes dozens of these checks."""
    return type(value) is dict or isinstance(value, Mapping)


def copy_tree(value: Any) -> Any:
    """A deep copy of a JSON tree (config templates, parts of Pods): what copy.deepcopy gives
    for dicts, lists and scalars, without its memo and dispatch (several times faster; it was
    the largest single cost of a review). Any other type still goes through copy.deepcopy."""
    cls = type(value)
    if cls is dict:
        return {key: item if type(item) in _ATOMS else copy_tree(item) for key, item in value.items()}
    if cls is list:
        return [item if type(item) in _ATOMS else copy_tree(item) for item in value]
    if cls in _ATOMS:
        return value
    return copy.deepcopy(value)


def pure_json(value: Any) -> bool:
    """Only dicts with string keys, lists, str, int (64-bit), float, bool and None: what
    orjson gives back exactly as it was given."""
    cls = type(value)
    if cls is dict:
        return all(type(k) is str and pure_json(v) for k, v in value.items())
    if cls is list:
        return all(pure_json(v) for v in value)
    if cls is int:
        return -(2**63) <= value < 2**64
    if cls is float:
        return math.isfinite(value)
    return cls in _ATOMS


class Template:
    """A config-derived JSON tree that every review needs a fresh copy of: kept serialised,
    since orjson.loads builds a copy about 3x faster than walking the tree (any tree orjson
    would not give back exactly falls back to copy_tree)."""

    __slots__ = ("value", "_blob")

    def __init__(self, value: Obj) -> None:
        self.value = value
        self._blob = orjson.dumps(value) if pure_json(value) else None

    def copy(self) -> Obj:
        return orjson.loads(self._blob) if self._blob is not None else copy_tree(self.value)


# Where a Pod holds quantities, which the API server writes back canonical (0.5Gi as 512Mi, 1000m
# as 1): a container's resources.requests and .limits (and a volume claim template's), emptyDir's sizeLimit.
_QUANTITY_MAPS = frozenset({"requests", "limits"})
_QUANTITY_KEYS = frozenset({"sizeLimit"})


def _in_order(actual: list[Any], expected: list[Any]) -> bool:
    """Every expected object held by an object of ``actual``, in the same order, with others
    between or after them: the API server appends to lists of objects (the service-account token
    mount its admission plugin adds to every container, our injected sidecar included)."""
    items = iter(actual)
    return all(any(contains(candidate, item) for candidate in items) for item in expected)


def contains(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` holds all of ``expected``: every key of a mapping (more may be there,
    such as the fields the API server defaults), a list of objects each in order (more may be
    there, such as the token mount it adds), other lists item by item, quantities by value (the
    API server canonicalises them), other values equal."""
    cls = type(expected)
    if cls in _ATOMS:
        return type(actual) is cls and actual == expected
    if type(actual) is cls and actual == expected:  # a part no one touched: compared in C, at once
        return True
    if cls is list:
        if type(actual) is not list:
            return False
        if expected and all(is_map(item) for item in expected):
            return _in_order(actual, expected)
        return len(actual) == len(expected) and all(map(contains, actual, expected))
    if not is_map(expected):
        return type(actual) is cls and actual == expected
    if not is_map(actual):
        return False
    for key, value in expected.items():
        if key not in actual:
            return False
        held = actual[key]
        if key in _QUANTITY_MAPS and is_map(value):
            if not (is_map(held) and all(name in held and quantity.same(held[name], amount)
                                         for name, amount in value.items())):
                return False
        elif key in _QUANTITY_KEYS:
            if not quantity.same(held, value):
                return False
        elif not contains(held, value):
            return False
    return True
