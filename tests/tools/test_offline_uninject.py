"""`sidecar-injector uninject`: every workload kind `inject` handles, and every corpus file, comes
back as it was; templates without our status pass through; the command line reads and writes
like `inject` and warns on stderr."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from webhook.config import example_config
from webhook.tools.cli import main
from webhook.tools.documents import load_documents
from webhook.tools.offline import inject_documents, uninject_documents
from webhook.workloads import POD_TEMPLATE_PATHS

from corpus import corpus_files
from test_offline import _template, _workload

EXAMPLE = example_config()
CORPUS = corpus_files()


@pytest.mark.parametrize("kind", sorted(POD_TEMPLATE_PATHS))
def test_every_workload_kind_round_trips(kind: str) -> None:
    doc = _workload(kind, namespace="shop", template=_template(terminationGracePeriodSeconds=10))
    injected = inject_documents([copy.deepcopy(doc)], EXAMPLE).documents
    assert injected != [doc]
    documents, reports = uninject_documents(injected, EXAMPLE)
    assert documents == [doc]
    assert [(r.workload, r.changed, r.warnings) for r in reports] == [(f"{kind}/web", True, ())]


def test_templates_without_our_status_pass_through() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    docs = [service, _workload("Deployment")]
    documents, reports = uninject_documents(copy.deepcopy(docs), EXAMPLE)
    assert documents == docs and [r.changed for r in reports] == [False]


@pytest.mark.skipif(not CORPUS, reason="../shared/corpus not present")
@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_file_round_trips(path: Path) -> None:
    docs, _ = load_documents(path.read_text(encoding="utf-8"))
    documents, reports = uninject_documents(inject_documents(copy.deepcopy(docs), EXAMPLE).documents, EXAMPLE)
    assert documents == docs
    assert all(r.warnings == () for r in reports)


def test_cli_uninject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _workload("Deployment", namespace="shop")
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(doc))
    assert main(["inject", "-f", str(source)]) == 0
    injected = tmp_path / "injected.yaml"
    injected.write_text(capsys.readouterr().out)
    changed = yaml.safe_load(injected.read_text())
    changed["spec"]["template"]["spec"]["initContainers"] = []  # another tool took our sidecar away
    injected.write_text(yaml.safe_dump(changed))
    assert main(["uninject", "-f", str(injected)]) == 0
    captured = capsys.readouterr()
    out = yaml.safe_load(captured.out)
    assert "initContainers" not in out["spec"]["template"]["spec"]  # the list injection created
    assert out["spec"]["template"]["metadata"] == doc["spec"]["template"]["metadata"]
    assert "Deployment/web: sidecar proxy was already removed" in captured.err
