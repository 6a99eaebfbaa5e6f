"""The server and the cluster code through webhook.interface: namespace defaults and the detected
version reach the review, readiness includes the cluster's reasons, a change the cluster reports
is taken at once (cached answers forgotten). A ClusterView of the test's own stands in for
webhook.cluster (which the e2e suite runs against a real API server)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson

from webhook.config import load_config_file, override
from webhook.kubeversion import KubeVersion
from webhook.server.app import ServiceState, WebhookApp, create_routes
from webhook.server.metrics import create_metrics
from webhook.server.review_cache import ReviewCache

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config_file(ROOT / "bench" / "config.yaml")
TYPICAL: dict[str, Any] = orjson.loads((ROOT / "bench" / "fixtures" / "typical.review.json").read_bytes())


class View:
    """What webhook.cluster.runtime.ClusterRuntime answers, from memory."""

    def __init__(self) -> None:
        self.observer = None
        self.defaults: dict[str, dict[str, str]] = {}
        self.synced = True
        self.version: KubeVersion | None = None
        self.reasons: list[str] = []

    def namespace_defaults(self, namespace: str) -> tuple[Mapping[str, str] | None, bool]:
        return (self.defaults.get(namespace), False) if self.synced else (None, True)

    def kubernetes_version(self) -> KubeVersion | None:
        return self.version

    def not_ready_reasons(self) -> list[str]:
        return self.reasons

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _body(uid: str) -> bytes:
    review = copy.deepcopy(TYPICAL)
    review["request"]["uid"] = uid
    return orjson.dumps(review)


def _post(state: ServiceState, *bodies: bytes) -> list[dict[str, Any]]:
    async def send_all() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=WebhookApp(state))
        async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
            return [(await client.post("/mutate", content=b, headers={"content-type": "application/json"})).json()
                    for b in bodies]
    return asyncio.run(send_all())


def _state(view: View, config: Any = CONFIG, cache: ReviewCache | None = None) -> ServiceState:
    state = ServiceState(config=config, metrics=create_metrics(), certificate_loaded=True, cluster=view,
                         review_cache=cache)
    state.set_config(config)
    return state


def _patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    import base64

    return json.loads(base64.b64decode(response["response"]["patch"]))


def _drain(response: dict[str, Any]) -> Any:
    return [op["value"] for op in _patch(response) if op["path"].endswith("/lifecycle/preStop")
            or op["path"].endswith("/lifecycle")]


def test_a_namespaces_defaults_reach_the_review() -> None:
    view = View()
    namespace = json.loads(_body("u"))["request"]["namespace"]
    view.defaults[namespace] = {"sidecar-injector.io/drain-seconds": "13"}
    [response] = _post(_state(view), _body("uid-1"))
    assert "13" in json.dumps(_drain(response))


def test_while_namespaces_load_a_warning_says_the_profiles_apply() -> None:
    view = View()
    view.synced = False
    [response] = _post(_state(view), _body("uid-1"))
    assert "namespace defaults are not loaded yet: the profiles' settings apply" in response["response"]["warnings"]


def test_a_change_the_cluster_reports_forgets_cached_answers() -> None:
    view = View()
    namespace = json.loads(_body("u"))["request"]["namespace"]
    state = _state(view, cache=ReviewCache(8))
    before = _post(state, *(_body(f"uid-{n}") for n in range(3)))
    assert len(state.review_cache) == 1
    view.defaults[namespace] = {"sidecar-injector.io/drain-seconds": "13"}
    state.set_config(state.loaded_config)  # what ServerView.changed() does
    [after] = _post(state, _body("uid-9"))
    assert "13" in json.dumps(_drain(after)) and "13" not in json.dumps(_drain(before[2]))


def test_kubernetes_version_auto_takes_the_detected_version_or_the_fallback() -> None:
    auto = override(override(CONFIG, "kubernetesVersion", "auto", "test"), "kubernetesVersionFallback", "1.28", "test")
    view = View()
    state = _state(view, auto)
    assert str(state.config.kube_version) == "1.28" and state.loaded_config is auto
    view.version = KubeVersion(1, 31)
    state.set_config(auto)
    assert str(state.config.kube_version) == "1.31"
    assert state.config.config_hash != CONFIG.config_hash
    pinned = _state(view, CONFIG)
    assert pinned.config is CONFIG, "a pinned version is not replaced by the detected one"


def test_readiness_includes_the_cluster_code_reasons() -> None:
    view = View()
    view.reasons = ["auto-tls: waiting for a serving certificate from Secret ns/name"]
    state = _state(view)

    async def readyz() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_routes(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as client:
            return await client.get("/readyz")

    response = asyncio.run(readyz())
    assert response.status_code == 503
    assert "auto-tls: waiting for a serving certificate" in response.text
    view.reasons = []
    assert asyncio.run(readyz()).status_code == 200
