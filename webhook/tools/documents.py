"""Manifests as text in and out: JSON (one value or a stream) or multi-document YAML, read for
offline injection and written back in the same format."""

from __future__ import annotations

import json
from typing import Any

import yaml

FORMATS = ("json", "yaml")


class DocumentError(ValueError):
    """The input is neither JSON nor YAML; the message says where parsing stopped."""


def _json_stream(text: str) -> list[Any]:
    """One or more concatenated JSON values (what `kubectl get -o json` and friends print)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def load_documents(text: str) -> tuple[list[Any], str]:
    """Parse JSON (one value or a stream) or multi-document YAML; return (documents, format).

    Text starting with `{` or `[` is JSON, unless only YAML can read it (a flow mapping).
    Empty YAML documents (a stray `---`) are dropped: there is nothing in them to write back.
    """
    if text.lstrip().startswith(("{", "[")):
        try:
            return _json_stream(text), "json"
        except json.JSONDecodeError as json_error:
            try:
                return [doc for doc in yaml.safe_load_all(text) if doc is not None], "yaml"
            except yaml.YAMLError:
                raise DocumentError(f"not valid JSON: {json_error}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None], "yaml"
    except yaml.YAMLError as error:
        raise DocumentError(f"not valid YAML: {error}") from None


class _Dumper(yaml.SafeDumper):
    """Never write anchors: shared objects are repeated, as `kubectl` would print them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_documents(docs: list[Any], fmt: str) -> str:
    """JSON (one value, or one per line-separated block) or YAML documents joined by `---`."""
    if fmt == "json":
        return "".join(json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for doc in docs)
    if fmt == "yaml":
        # An unbounded width keeps long values (the status annotation) on one line.
        return "---\n".join(
            yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1) for doc in docs
        )
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
