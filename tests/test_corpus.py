"""Every Pod template of real public manifests (../shared/corpus), injected, must pass the
API server's checks, keep its owner's data and be idempotent — in native and legacy mode."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.config import load_config_file
from webhook.mutate import review

from corpus import as_pod, corpus_workloads
from engine_support import (
    BASE_CONFIG,
    apply,
    decoded_patch,
    lost_user_data,
    op_paths_allowed,
    pod_review,
    server_answer_differs,
)
from k8s_checks import LATEST_SCHEMA, pod_errors

CONFIG = load_config_file(BASE_CONFIG)
WORKLOADS = corpus_workloads()
MODES = {"native": {}, "legacy": {"sidecar-injector.io/native-sidecar": "false"},
         "everything": {"sidecar-injector.io/profiles": "agent,proxy,logging,jvm",
                        "sidecar-injector.io/share-process-namespace": "true",
                        "sidecar-injector.io/warmup-seconds": "120"}}


@pytest.mark.skipif(not WORKLOADS, reason="../shared/corpus not present: the real-manifest corpus lives beside the project")
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize(("ident", "workload", "ref"), WORKLOADS, ids=[w[0] for w in WORKLOADS])
def test_corpus_pod_injects_cleanly(ident: str, workload: dict[str, Any], ref: Any, mode: str) -> None:
    pod = as_pod(workload, ref)
    meta = pod.setdefault("metadata", {})
    meta.setdefault("annotations", {}).update(MODES[mode])
    if ref.owner_kind:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": ref.owner_kind, "name": ref.name or "x", "uid": "u"}]
    original = copy.deepcopy(pod)
    body = pod_review(pod, "corpus", ref.namespace or "corpus")
    outcome = review(body, CONFIG)
    assert pod == original
    assert not server_answer_differs(body, CONFIG, outcome)
    ops = decoded_patch(outcome)
    if ops is None:
        # Only a hostNetwork Pod or one already carrying every piece is left alone.
        assert outcome.reason in ("host-network", "nothing-to-add"), outcome.message
        return
    patched = apply(pod, ops)
    assert op_paths_allowed(ops) == []
    assert list(lost_user_data(pod, patched)) == []
    # Some manifests use fields newer than 1.30 (pod-level resources...): judge each
    # version only where the user's own Pod passes it; the newest must always pass.
    versions = [v for v in ("1.30", LATEST_SCHEMA) if v == LATEST_SCHEMA or not pod_errors(original, v)]
    assert [e for v in versions for e in pod_errors(patched, v)] == []
    again = review(pod_review(patched, "corpus", ref.namespace or "corpus"), CONFIG)
    assert again.reason == "already-injected"
