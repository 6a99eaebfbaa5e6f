"""Discovery of the shared corpus of real public manifests (../shared/corpus), for tests.

The corpus lives outside the repository (beside it, in shared/), so tests that use it
must skip when it is absent; see ``require_corpus``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from webhook.workloads import POD_TEMPLATE_PATHS, PodTemplateRef, iter_pod_templates

CORPUS_DIR: Path = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def corpus_files() -> list[Path]:
    """The manifest files of the corpus, sorted by name; empty when the corpus is absent."""
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def load_documents(path: Path) -> list[Any]:
    """Every non-empty document of a manifest file (JSON, or YAML with one or more documents)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def corpus_workloads() -> list[tuple[str, dict[str, Any], PodTemplateRef]]:
    """Every workload in the corpus (List items included) as ``("file#index", workload, ref)``.

    Each workload carries exactly one Pod template, so the index counts both.
    """
    found: list[tuple[str, dict[str, Any], PodTemplateRef]] = []
    for path in corpus_files():
        index = 0
        for doc in load_documents(path):
            for ref in iter_pod_templates(doc):
                found.append((f"{path.name}#{index}", _workload_of(doc, ref), ref))
                index += 1
    return found


def corpus_pod_templates() -> list[tuple[str, PodTemplateRef]]:
    """Every Pod template in the corpus as ``("file#index", ref)``; index counts templates in the file."""
    return [(ident, ref) for ident, _, ref in corpus_workloads()]


def _workload_of(doc: Any, ref: PodTemplateRef) -> dict[str, Any]:
    """The object inside ``doc`` that carries ``ref`` (``doc`` itself unless it is a List)."""
    depth = len(ref.path) - len(POD_TEMPLATE_PATHS[ref.kind])
    node = doc
    for key in ref.path[:depth]:
        node = node[key]
    return node


def as_pod(workload: dict[str, Any], ref: PodTemplateRef) -> dict[str, Any]:
    """The Pod a controller would create from ``ref``: apiVersion v1, kind Pod, the template's metadata and spec.

    A StatefulSet's Pods also get one volume per ``spec.volumeClaimTemplates`` entry (the
    controller adds them, claim ``<template>-<set>-<ordinal>``); without those, mounts of the
    claims name no volume and the Pod is rightly invalid. Nothing is shared with the input.
    """
    template = copy.deepcopy(ref.template)
    if ref.kind == "Pod":
        return template
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata") or {},
        "spec": template.get("spec"),
    }
    spec = pod["spec"]
    claims = (workload.get("spec") or {}).get("volumeClaimTemplates") if ref.kind == "StatefulSet" else None
    if isinstance(spec, dict) and claims:
        names = [(c.get("metadata") or {}).get("name") for c in claims]
        kept = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        spec["volumes"] = [
            {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{ref.name}-0"}} for name in names
        ] + kept
    return pod


def require_corpus() -> None:
    """Skip the calling test when the shared corpus is not beside the repository."""
    import pytest

    if not corpus_files():
        pytest.skip(f"../shared/corpus not present: no manifests found in {CORPUS_DIR}")
