"""The operations pack (issue 14, part 5): manifests/components/monitoring (a ServiceMonitor, a
PrometheusRule, the Grafana dashboard and the plain-HTTP metrics port they scrape), the overlay
manifests/overlays/monitoring (the base with it) and manifests/components/monitoring-tls.

* The overlay builds with `kubectl kustomize`; every object of a kind kubernetes-validate has a
  schema for passes it, strictly, for 1.30 and the newest version it ships. The Prometheus
  Operator's ServiceMonitor and PrometheusRule are custom resources (no schema there): they are
  checked field by field here, after the operator's CRDs.
* Every PromQL expression of the rules and the dashboard parses with promql-parser (PyPI: the
  Python bindings of the Rust promql-parser crate, kept by the GreptimeDB team; it knows
  Prometheus' functions and their arity), with Grafana's variables substituted first.
* Every metric the rules and the dashboard name is one the server exports: the names are read
  from a running server's /metrics, scraped through its --health-port as the ServiceMonitor
  does, after reviews that make the labelled series exist (injected, skipped, denied, an onError
  answer, a malformed request, a rejected config). The cluster-aware instruments
  (webhook/cluster/metrics.py) exist only while their features run, which needs an API server:
  their names are those `create_cluster_metrics` registers, rendered by `generate_latest`. The
  other metrics are Prometheus', kube-state-metrics' and the API server's, listed in
  EXTERNAL_METRICS. Label matchers on our metrics must name labels the instruments have (or a
  scrape's target labels), and the annotations' `$labels.X` labels the expression keeps.
* With promtool installed (Debian's prometheus package ships it), `promtool check rules` and the
  cases of monitoring-alerts.promtool.yaml, which pin when each alert fires.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from webhook.cluster.metrics import create_cluster_metrics
from webhook.config import load_config_text
from webhook.server.answers import DEADLINE_REASON
from webhook.server.metrics import create_metrics
from webhook.tools.cli import build_parser
from webhook.tools.render import load_base_manifests

from conftest import GOLDEN_CONFIG, free_port, load_review, start_server
from test_manifests import (
    MANIFESTS,
    NS,
    OVERLAYS,
    VERSIONS,
    _container,
    _key,
    _kubectl,
    _kustomize,
    _one,
    _validate,
)

ROOT = MANIFESTS.parent
COMPONENT = MANIFESTS / "components" / "monitoring"
DASHBOARD_FILE = COMPONENT / "dashboards" / "sidecar-injector.json"
PROMTOOL_CASES = Path(__file__).with_name("monitoring-alerts.promtool.yaml")
WEBHOOK_NAME = "inject.sidecar-injector.io"
METRICS_PORT = 8081

# The Prometheus Operator's kinds: custom resources kubernetes-validate has no schema for.
OPERATOR_GROUP = "monitoring.coreos.com"
CRD_GROUPS = (OPERATOR_GROUP, "cert-manager.io")

# Metrics the rules and the dashboard name that our server does not export, by who does. Every
# entry must be used (the test fails on a stale one), and none may be ours.
EXTERNAL_METRICS = {
    "up": "Prometheus, one series per scraped target",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "apiserver_admission_webhook_rejection_count": "kube-apiserver",
    "apiserver_admission_webhook_fail_open_count": "kube-apiserver, since 1.24",
    "apiserver_admission_webhook_request_total": "kube-apiserver, since 1.23",
    "apiserver_admission_webhook_admission_duration_seconds_bucket": "kube-apiserver",
}

# The labels a ServiceMonitor scrape attaches to every series (the Prometheus Operator's
# relabelling); a scraped label of the same name is kept as exported_<name> (honorLabels false).
TARGET_LABELS = frozenset({"namespace", "job", "pod", "instance", "service", "endpoint", "container"})

SEVERITIES = ("critical", "warning", "info")
# Prometheus' duration syntax (model.ParseDuration), which the operator's CRD also enforces.
DURATION = re.compile(r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")

# The Prometheus Operator's ServiceMonitor fields this pack may use (its CRD has more).
SERVICE_MONITOR_SPEC = {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels"}
ENDPOINT_FIELDS = {"port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                   "honorTimestamps", "tlsConfig", "relabelings", "metricRelabelings", "followRedirects"}
TLS_FIELDS = {"ca", "cert", "keySecret", "serverName"}  # never insecureSkipVerify
RULE_FIELDS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
GROUP_FIELDS = {"name", "interval", "rules", "limit", "partial_response_strategy"}


# --------------------------------------------------------------------------- building


@pytest.fixture(scope="module")
def built() -> list[dict]:
    return _kustomize(OVERLAYS / "monitoring")


@pytest.fixture(scope="module")
def base_built() -> list[dict]:
    return _kustomize(MANIFESTS)


@pytest.fixture(scope="module")
def unbuilt() -> list[dict]:
    """The base and the component's objects as the files hold them, without kustomize: the rules'
    and the dashboard's checks need no kubectl (test_kustomize_leaves_the_rules_as_they_are)."""
    objs = load_base_manifests(MANIFESTS)
    for name in ("servicemonitor.yaml", "prometheusrule.yaml"):
        objs += [d for d in yaml.safe_load_all((COMPONENT / name).read_text()) if d is not None]
    return objs


def _build_combined(tmp_path: Path, resource: Path, *components: Path) -> list[dict]:
    """An overlay of one's own in tmp_path (kustomize takes relative paths only)."""
    spec = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [os.path.relpath(resource, tmp_path)],
            "components": [os.path.relpath(c, tmp_path) for c in components]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    result = subprocess.run([_kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def _rule_groups(objs: list[dict]) -> list[dict]:
    return _one(objs, "PrometheusRule", "sidecar-injector")["spec"]["groups"]


def _alerts(objs: list[dict]) -> list[dict]:
    return [rule for group in _rule_groups(objs) for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


# --------------------------------------------------------------------------- the overlay


def test_overlay_is_the_base_with_the_component() -> None:
    spec = yaml.safe_load((OVERLAYS / "monitoring" / "kustomization.yaml").read_text())
    assert spec["resources"] == ["../../base"]
    assert spec["components"] == ["../../components/monitoring"]


@pytest.mark.parametrize("version", VERSIONS)
def test_overlay_builds_and_passes_schema(built: list[dict], version: str) -> None:
    kinds = {o["kind"] for o in built}
    assert {"ServiceMonitor", "PrometheusRule", "Deployment", "Service", "MutatingWebhookConfiguration"} <= kinds
    for obj in built:
        if obj["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue  # custom resources: checked field by field below
        _validate(obj, version)


def test_kustomize_leaves_the_rules_as_they_are(built: list[dict], unbuilt: list[dict]) -> None:
    for kind in ("PrometheusRule", "ServiceMonitor"):
        assert _one(built, kind, "sidecar-injector") == _one(unbuilt, kind, "sidecar-injector"), kind


def test_overlay_changes_the_base_only_by_the_metrics_port(built: list[dict], base_built: list[dict]) -> None:
    """The webhook's Service and Deployment gain the metrics port (and --health-port); the probes,
    and every other object of the base, are unchanged."""
    added = {_key(o) for o in built} - {_key(o) for o in base_built}
    assert added == {("ServiceMonitor", NS, "sidecar-injector"), ("PrometheusRule", NS, "sidecar-injector"),
                     ("ConfigMap", NS, "sidecar-injector-dashboard")}
    reverted = copy.deepcopy([o for o in built if _key(o) not in added])
    container = _container(reverted)
    assert container["args"][-1] == f"--health-port={METRICS_PORT}"
    assert container["ports"][-1] == {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    del container["args"][-1], container["ports"][-1]
    service = _one(reverted, "Service", "sidecar-injector")
    assert service["spec"]["ports"][-1] == {"name": "metrics", "protocol": "TCP", "port": METRICS_PORT,
                                            "targetPort": "metrics"}
    del service["spec"]["ports"][-1]
    assert {_key(o): o for o in reverted} == {_key(o): o for o in base_built}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _container(built)[probe]["httpGet"]["port"] == "https", "the probes stay on the HTTPS port"


def test_deployment_arguments_are_serves_and_open_the_metrics_port(built: list[dict]) -> None:
    args = build_parser({}).parse_args(["serve", *_container(built)["args"]])
    assert args.health_port == METRICS_PORT


def test_service_monitor_scrapes_the_metrics_port_of_the_webhooks_service(built: list[dict]) -> None:
    monitor = _one(built, "ServiceMonitor", "sidecar-injector")
    assert monitor["apiVersion"] == f"{OPERATOR_GROUP}/v1"
    assert monitor["metadata"]["namespace"] == NS
    assert monitor["metadata"]["labels"]["release"] == "prometheus", "what kube-prometheus-stack selects by"
    spec = monitor["spec"]
    assert set(spec) <= SERVICE_MONITOR_SPEC and {"selector", "endpoints"} <= set(spec)
    assert "namespaceSelector" not in spec, "the ServiceMonitor's own namespace: follows a namespace transformer"
    wanted = spec["selector"]["matchLabels"].items()
    services = [o for o in built if o["kind"] == "Service"
                and all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted)]
    assert [s["metadata"]["name"] for s in services] == ["sidecar-injector"], "selects the webhook's Service only"
    ports = {p["name"]: p for p in services[0]["spec"]["ports"]}
    container_ports = {p["name"]: p["containerPort"] for p in _container(built)["ports"]}
    [endpoint] = spec["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"
    assert container_ports[ports[endpoint["port"]]["targetPort"]] == METRICS_PORT, "the --health-port listener"
    assert endpoint.get("honorLabels") is False, "exported_namespace in the rules relies on it"
    assert "insecureSkipVerify" not in json.dumps(monitor)


def test_monitoring_tls_scrapes_https_verifying_cert_managers_ca(tmp_path: Path) -> None:
    built = _build_combined(tmp_path, OVERLAYS / "cert-manager", COMPONENT, MANIFESTS / "components" / "monitoring-tls")
    for obj in built:
        if obj["apiVersion"].split("/")[0] not in CRD_GROUPS:
            _validate(obj, VERSIONS[-1])
    [endpoint] = _one(built, "ServiceMonitor", "sidecar-injector")["spec"]["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS and set(endpoint["tlsConfig"]) <= TLS_FIELDS
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    service_ports = {p["name"] for p in _one(built, "Service", "sidecar-injector")["spec"]["ports"]}
    assert endpoint["port"] in service_ports and endpoint["port"] == "https"
    serving = _one(built, "Certificate", "sidecar-injector")["spec"]
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": serving["secretName"], "key": "ca.crt"}}
    assert endpoint["tlsConfig"]["serverName"] in serving["dnsNames"], "Prometheus dials Pod IPs"
    assert "insecureSkipVerify" not in json.dumps(endpoint)


def test_component_combines_with_the_cluster_aware_overlay(tmp_path: Path) -> None:
    from webhook.tools.commands import cluster_factory

    built = _build_combined(tmp_path, OVERLAYS / "cluster-aware", COMPONENT)
    for version in VERSIONS:
        for obj in built:
            if obj["apiVersion"].split("/")[0] not in CRD_GROUPS:
                _validate(obj, version)
    args = build_parser({}).parse_args(["serve", *_container(built)["args"]])
    assert args.health_port == METRICS_PORT and cluster_factory(args).args[0].auto_tls is not None
    assert _one(built, "ServiceMonitor", "sidecar-injector")["spec"]["endpoints"][0]["scheme"] == "http"


# --------------------------------------------------------------------------- the rules


def test_prometheus_rule_structure(unbuilt: list[dict]) -> None:
    rule = _one(unbuilt, "PrometheusRule", "sidecar-injector")
    assert rule["apiVersion"] == f"{OPERATOR_GROUP}/v1"
    assert rule["metadata"]["namespace"] == NS
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert set(rule["spec"]) == {"groups"}
    groups = _rule_groups(unbuilt)
    assert len({g["name"] for g in groups}) == len(groups)
    names = []
    for group in groups:
        assert set(group) <= GROUP_FIELDS and group["rules"], group["name"]
        for alert in group["rules"]:
            name = alert.get("alert")
            assert set(alert) <= RULE_FIELDS and name and re.fullmatch(r"SidecarInjector[A-Z][A-Za-z0-9]+", name), alert
            names.append(name)
            assert isinstance(alert["expr"], str) and alert["expr"].strip(), name
            assert isinstance(alert["for"], str) and DURATION.match(alert["for"]), name
            promql_parser.parse_duration(alert["for"])
            assert alert["labels"]["severity"] in SEVERITIES, name
            assert set(alert["labels"]) == {"severity"}, name
            notes = alert["annotations"]
            assert {"summary", "description", "runbook_url"} <= set(notes), name
            assert all(isinstance(v, str) and v.strip() for v in notes.values()), name
            assert "$labels." in notes["summary"] + notes["description"], f"{name}: say which namespace, pod..."
            assert "\n" not in notes["summary"], name
    assert len(set(names)) == len(names), "alert names are unique"


def test_the_alerts_the_issue_asks_for(unbuilt: list[dict]) -> None:
    by_name = {a["alert"]: a for a in _alerts(unbuilt)}
    assert 'decision="error"' in by_name["SidecarInjectorReviewErrors"]["expr"]
    assert "histogram_quantile(0.99," in by_name["SidecarInjectorSlowReviews"]["expr"]
    assert "sidecar_injector_certificate_expiry_timestamp_seconds - time() < 7 * 24 * 3600" in \
        by_name["SidecarInjectorCertificateExpiringSoon"]["expr"]
    assert "kube_deployment_status_replicas_available" in by_name["SidecarInjectorNoReadyReplica"]["expr"]
    for name in ("SidecarInjectorOnErrorAnswers", "SidecarInjectorDown", "SidecarInjectorClusterAPIErrors",
                 "SidecarInjectorEventsDropped", "SidecarInjectorNamespaceDefaultsInvalid",
                 "SidecarInjectorConfigReloadFailed", "SidecarInjectorCertificateReloadFailed"):
        assert name in by_name
    # The latency thresholds sit under the deadline (config default 2 s) and the webhook's timeout.
    hook = _one(unbuilt, "MutatingWebhookConfiguration", "sidecar-injector")["webhooks"][0]
    deadline = load_config_text(_one(unbuilt, "ConfigMap", "sidecar-injector-config")["data"]["config.yaml"],
                                "config.yaml").deadlineSeconds
    for name in ("SidecarInjectorSlowReviews", "SidecarInjectorReviewsNearDeadline"):
        threshold = float(by_name[name]["expr"].rsplit(">", 1)[1])
        assert threshold < deadline < hook["timeoutSeconds"], name


def _on_error_reasons_in_the_code() -> set[str]:
    """The reasons a review is answered by the onError policy with: the limits' (LimitExceeded),
    the literal ones passed to on_error, and the deadline's."""
    reasons = {DEADLINE_REASON}
    for path in (ROOT / "webhook").rglob("*.py"):
        text = path.read_text()
        reasons |= set(re.findall(r'LimitExceeded\(\s*"([a-z-]+)"', text))
        reasons |= set(re.findall(r'\bon_error\([^()]*?"([a-z-]+)"', text))
    return reasons


def test_on_error_alert_lists_every_on_error_reason(unbuilt: list[dict]) -> None:
    expr = next(a["expr"] for a in _alerts(unbuilt) if a["alert"] == "SidecarInjectorOnErrorAnswers")
    listed = set()
    for selector in _selectors(promql_parser.parse(expr)):
        for label, op, value in selector.matchers:
            if label == "reason":
                assert op == "=~"
                listed.add(frozenset(value.split("|")))
    assert listed == {frozenset(_on_error_reasons_in_the_code())}
    assert {"deadline-exceeded", "internal-error", "too-many-containers", "patch-too-large"} <= set(next(iter(listed)))


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            found.add(re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return found


def test_every_alert_has_a_runbook_entry_and_every_entry_an_alert(unbuilt: list[dict]) -> None:
    runbooks = set()
    for alert in _alerts(unbuilt):
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert (ROOT / path).is_file(), alert["alert"]
        assert anchor in _anchors((ROOT / path).read_text()), f"{alert['alert']}: no heading #{anchor} in {path}"
        assert anchor == alert["alert"].lower()
        runbooks.add(path)
    [runbook] = runbooks
    headings = {a for a in _anchors((ROOT / runbook).read_text()) if a.startswith("sidecarinjector")}
    assert headings == {a["alert"].lower() for a in _alerts(unbuilt)}


# --------------------------------------------------------------------------- the dashboard


def test_dashboard_configmap_is_the_file(built: list[dict]) -> None:
    config_map = _one(built, "ConfigMap", "sidecar-injector-dashboard")
    assert config_map["metadata"]["namespace"] == NS
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1", "the Grafana sidecar's default label"
    assert json.loads(config_map["data"]["sidecar-injector.json"]) == _dashboard()


def test_dashboard_structure() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] == "sidecar-injector" and dashboard["title"]
    assert "id" not in dashboard or dashboard["id"] is None, "an exported id would clash on import"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids, titles, cells = set(), set(), set()
    for panel in _panels(dashboard):
        assert panel["id"] not in ids and panel["title"] not in titles, panel["title"]
        ids.add(panel["id"])
        titles.add(panel["title"])
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "gauge", "bargauge", "state-timeline"}
        assert panel.get("description"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip(), panel["title"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    names = {s.name for use in _dashboard_uses(_dashboard()) for s in _selectors(promql_parser.parse(use.expr))}
    assert {"sidecar_injector_reviews_total", "sidecar_injector_review_duration_seconds_bucket",
            "sidecar_injector_review_cache_total", "sidecar_injector_config_info",
            "sidecar_injector_certificate_expiry_timestamp_seconds", "sidecar_injector_leader",
            "sidecar_injector_events_total", "sidecar_injector_cluster_api_errors_total",
            "sidecar_injector_namespace_defaults_invalid", "sidecar_injector_kubernetes_version_info"} <= names
    exprs = " ".join(use.expr for use in _dashboard_uses(_dashboard()))
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


# --------------------------------------------------------------------------- PromQL and metric names


@dataclass(frozen=True)
class Use:
    """A PromQL expression and where it is (an alert, a panel's target, a template variable)."""

    where: str
    expr: str
    labels_in_text: tuple[str, ...] = ()  # $labels.X the alert's annotations use
    extra_labels: tuple[tuple[str, str], ...] = ()  # (metric, label) a label_values() query reads


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]


_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _selectors(node: Any) -> list[Selector]:
    found: list[Selector] = []

    def visit(n: Any) -> None:
        if isinstance(n, promql_parser.VectorSelector):
            matchers = tuple((m.name, _MATCH_OPS[str(m.op).rsplit(".", 1)[-1]], m.value) for m in n.matchers.matchers)
            name = n.name or next((v for k, op, v in matchers if k == "__name__" and op == "="), None)
            found.append(Selector(name, tuple(m for m in matchers if m[0] != "__name__")))

    promql_parser.walk(node, visit)
    return found


GRAFANA_DURATIONS = {"__rate_interval", "__interval", "__range"}


def grafana_to_promql(expr: str) -> str:
    """Grafana's variables as PromQL would see them once Grafana has substituted them."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: "5m" if m.group(1) in GRAFANA_DURATIONS else "x", expr)


def _rule_uses(rule_objects: list[dict]) -> list[Use]:
    uses = []
    for alert in _alerts(rule_objects):
        text = " ".join(alert["annotations"].values())
        uses.append(Use(f"alert {alert['alert']}", alert["expr"], tuple(re.findall(r"\$labels\.(\w+)", text))))
    return uses


def _dashboard_uses(dashboard: dict[str, Any]) -> list[Use]:
    uses = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            uses.append(Use(f"panel {panel['title']!r} {target['refId']}", grafana_to_promql(target["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, f"variable {variable['name']}: a label_values(selector, label) query"
        selector = grafana_to_promql(match.group(1))
        metric = _selectors(promql_parser.parse(selector))[0].name
        uses.append(Use(f"variable {variable['name']}", selector, extra_labels=((str(metric), match.group(2)),)))
    return uses


def _series_names(exposition: str) -> set[str]:
    """Every series name an exposition has or, for a family without samples yet, can have."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
                "info": ("_info",), "stateset": ("",), "gauge": ("",), "unknown": ("",)}
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def _instrument_labels() -> dict[str, frozenset[str]]:
    """Label names of our series, from the instruments themselves (prometheus_client has no public
    accessor for the label names of a family without children; _labelnames is where it keeps them)."""
    server = create_metrics()
    cluster = create_cluster_metrics(CollectorRegistry())
    labels: dict[str, frozenset[str]] = {}
    for holder in (server, cluster):
        for item in fields(holder):
            metric = getattr(holder, item.name)
            if not isinstance(metric, MetricWrapperBase):
                continue
            names = frozenset(metric._labelnames)
            kind = metric._type
            if kind == "counter":
                labels[f"{metric._name}_total"] = names
            elif kind == "histogram":
                for suffix in ("_count", "_sum"):
                    labels[metric._name + suffix] = names
                labels[f"{metric._name}_bucket"] = names | {"le"}
            else:
                labels[metric._name] = names
    return labels


def unknown_names(uses: list[Use], exported: set[str], labels: dict[str, frozenset[str]]) -> list[str]:
    """What the expressions name that nobody exports: a metric neither in ``exported`` nor in
    EXTERNAL_METRICS, a label matcher or label_values() label our metric does not have, an
    annotation's $labels.X the expression does not keep."""
    problems = []
    for use in uses:
        try:
            tree = promql_parser.parse(use.expr)
        except ValueError as error:
            problems.append(f"{use.where}: does not parse: {error}")
            continue
        for selector in _selectors(tree):
            if selector.name is None:
                problems.append(f"{use.where}: a selector without a metric name")
            elif selector.name in EXTERNAL_METRICS:
                continue
            elif selector.name not in exported:
                problems.append(f"{use.where}: {selector.name} is exported by no server of ours "
                                f"(and is not in EXTERNAL_METRICS)")
            else:
                allowed = _allowed_labels(labels.get(selector.name, frozenset()))
                for label, _op, _value in selector.matchers:
                    if label not in allowed:
                        problems.append(f"{use.where}: {selector.name} has no label {label}")
        for metric, label in use.extra_labels:
            if metric not in EXTERNAL_METRICS and label not in _allowed_labels(labels.get(metric, frozenset())):
                problems.append(f"{use.where}: {metric} has no label {label}")
        if use.labels_in_text:
            kept = output_labels(tree, labels)
            for label in use.labels_in_text:
                if kept is not None and label not in kept:
                    problems.append(f"{use.where}: the annotations use $labels.{label}, the expression keeps "
                                    f"only {sorted(kept)}")
    return problems


def _allowed_labels(own: frozenset[str]) -> frozenset[str]:
    return own | TARGET_LABELS | {f"exported_{label}" for label in own & TARGET_LABELS}


def output_labels(node: Any, labels: dict[str, frozenset[str]]) -> frozenset[str] | None:
    """The labels the series an expression returns can carry; None where that is not known (a
    metric of someone else's). An approximation good for alert expressions: a binary operation
    keeps its left side's labels unless that side is a scalar, `or` either side's."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        name = node.name
        if name in EXTERNAL_METRICS or name not in labels:
            return None
        return _allowed_labels(labels[name])
    if kind == "MatrixSelector":
        return output_labels(node.vector_selector, labels)
    if kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        return output_labels(node.expr, labels)
    if kind in ("NumberLiteral", "StringLiteral"):
        return frozenset()
    if kind == "AggregateExpr":
        modifier = node.modifier
        if modifier is None:
            return frozenset()
        if str(modifier.type).endswith("By"):
            return frozenset(modifier.labels)
        inner = output_labels(node.expr, labels)
        return None if inner is None else inner - set(modifier.labels)
    if kind == "Call":
        name = node.func.name
        if name == "absent":
            return frozenset(k for k, op, _ in _selectors(node.args[0])[0].matchers if op == "=")
        if name in ("time", "vector", "scalar"):
            return frozenset()
        vectors = [a for a in node.args if type(a).__name__ not in ("NumberLiteral", "StringLiteral")]
        inner = output_labels(vectors[0], labels)
        return None if inner is None else inner - {"le"} if name == "histogram_quantile" else inner
    if kind == "BinaryExpr":
        left, right = output_labels(node.lhs, labels), output_labels(node.rhs, labels)
        if str(node.op) == "or":
            return None if left is None or right is None else left | right
        return left if left is None or left or str(node.op) in ("and", "unless") else right
    raise AssertionError(f"unexpected PromQL node {kind}")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> str:
    """/metrics of a real server, through its --health-port, after reviews of each kind."""
    workdir = tmp_path_factory.mktemp("monitoring-server")
    config = yaml.safe_load(GOLDEN_CONFIG.read_text())
    config["limits"] = {"maxContainers": 3}  # tests/fixtures/too-many-containers has 4: an onError answer
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    health_port = free_port()
    server = start_server(workdir, "--health-port", str(health_port), config=config_file)
    try:
        client = server.client()
        for case in ("pod-basic", "pod-basic", "opt-out-annotation", "unknown-profile", "too-many-containers"):
            assert client.post("/mutate", json=load_review(case)).status_code == 200, case
        assert client.post("/mutate", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
        config_file.write_text("defaultProfiles: [unclosed\n")  # rejected on reload, the old config stays
        metrics_url = f"http://127.0.0.1:{health_port}/metrics"
        deadline = time.monotonic() + 10
        while 'sidecar_injector_config_reloads_total{result="error"}' not in (text := httpx.get(metrics_url).text):
            assert time.monotonic() < deadline, "the invalid config was not rejected within 10 s"
            time.sleep(0.1)
    finally:
        server.stop()
    return text


@pytest.fixture(scope="module")
def exported(scraped: str) -> set[str]:
    registry = CollectorRegistry()
    create_cluster_metrics(registry)
    return _series_names(scraped) | _series_names(generate_latest(registry).decode())


def test_the_running_server_exports_the_labelled_series(scraped: str) -> None:
    samples = {(s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(scraped)
               for s in f.samples}
    for decision, reason in (("injected", "injected"), ("skipped", "opted-out"), ("denied", "invalid-annotation"),
                             ("error", "too-many-containers"), ("error", "malformed-json")):
        assert ("sidecar_injector_reviews_total", (("decision", decision), ("reason", reason))) in samples
    assert ("sidecar_injector_config_reloads_total", (("result", "error"),)) in samples
    assert any(name == "sidecar_injector_certificate_expiry_timestamp_seconds" for name, _ in samples)
    assert any(name == "sidecar_injector_review_duration_seconds_bucket" for name, _ in samples)


def test_every_expression_parses(unbuilt: list[dict]) -> None:
    for use in _rule_uses(unbuilt) + _dashboard_uses(_dashboard()):
        promql_parser.parse(use.expr)


def test_every_metric_the_rules_and_the_dashboard_name_is_exported(unbuilt: list[dict], exported: set[str]) -> None:
    uses = _rule_uses(unbuilt) + _dashboard_uses(_dashboard())
    assert unknown_names(uses, exported, _instrument_labels()) == []
    ours = {s.name for use in uses for s in _selectors(promql_parser.parse(use.expr))}
    assert set(EXTERNAL_METRICS) <= ours, f"stale EXTERNAL_METRICS: {sorted(set(EXTERNAL_METRICS) - ours)}"
    assert not any(name.startswith("sidecar_injector_") for name in EXTERNAL_METRICS)
    assert not set(EXTERNAL_METRICS) & exported


def test_the_check_reports_what_nobody_exports(unbuilt: list[dict], exported: set[str]) -> None:
    labels = _instrument_labels()
    rules = copy.deepcopy(unbuilt)
    alert = next(a for a in _alerts(rules) if a["alert"] == "SidecarInjectorReviewErrors")
    alert["expr"] = alert["expr"].replace("sidecar_injector_reviews_total{", "sidecar_injector_review_total{", 1)
    alert = next(a for a in _alerts(rules) if a["alert"] == "SidecarInjectorCertificateExpiringSoon")
    alert["annotations"]["summary"] += " {{ $labels.reason }}"
    dashboard = _dashboard()
    target = next(p for p in _panels(dashboard) if p["title"] == "Config in use")["targets"][0]
    target["expr"] = target["expr"].replace("sidecar_injector_config_info{", "sidecar_injector_config_hash{")
    target = next(p for p in _panels(dashboard) if p["title"] == "Events by result")["targets"][0]
    target["expr"] = target["expr"].replace("sidecar_injector_events_total{",
                                            'sidecar_injector_events_total{reslt="x", ')
    dashboard["templating"]["list"][1]["query"]["query"] = "label_values(sidecar_injector_config_info, hsh)"
    problems = unknown_names(_rule_uses(rules) + _dashboard_uses(dashboard), exported, labels)
    assert len(problems) == 5, problems
    for expected in ("alert SidecarInjectorReviewErrors: sidecar_injector_review_total is exported by no server",
                     "alert SidecarInjectorCertificateExpiringSoon: the annotations use $labels.reason",
                     "panel 'Config in use' A: sidecar_injector_config_hash is exported by no server",
                     "panel 'Events by result' A: sidecar_injector_events_total has no label reslt",
                     "variable namespace: sidecar_injector_config_info has no label hsh"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert unknown_names([Use("x", "kube_pod_info"), Use("y", "rate(x[5m]")], exported, labels) == [
        "x: kube_pod_info is exported by no server of ours (and is not in EXTERNAL_METRICS)",
        "y: does not parse: unclosed left parenthesis"]


def test_the_check_accepts_target_and_exported_labels(exported: set[str]) -> None:
    labels = _instrument_labels()
    uses = [Use("a", 'sidecar_injector_namespace_defaults_invalid{exported_namespace="shop", namespace="x", pod="p"}'),
            Use("b", "max by (exported_namespace) (sidecar_injector_namespace_defaults_invalid)",
                ("exported_namespace",))]
    assert unknown_names(uses, exported, labels) == []
    assert unknown_names([Use("c", 'sidecar_injector_config_info{exported_hash="x"}')], exported, labels) == [
        "c: sidecar_injector_config_info has no label exported_hash"]


# --------------------------------------------------------------------------- promtool


def _promtool() -> str:
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: the prometheus package ships /usr/bin/promtool): "
                    "the rules are parsed by promql-parser only")
    return promtool


def test_promtool_checks_the_rules_and_runs_the_alert_cases(unbuilt: list[dict], tmp_path: Path) -> None:
    promtool = _promtool()
    groups = _rule_groups(unbuilt)
    (tmp_path / "full.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    check = subprocess.run([promtool, "check", "rules", str(tmp_path / "full.yaml")], capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    bare = copy.deepcopy(groups)
    for group in bare:
        for alert in group["rules"]:
            del alert["annotations"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": bare}, sort_keys=False))
    shutil.copy(PROMTOOL_CASES, tmp_path / PROMTOOL_CASES.name)
    cases = yaml.safe_load(PROMTOOL_CASES.read_text())
    tested = {t["alertname"] for case in cases["tests"] for t in case["alert_rule_test"]}
    assert tested == {a["alert"] for a in _alerts(unbuilt)}, "every alert has a case"
    run = subprocess.run([promtool, "test", "rules", PROMTOOL_CASES.name], capture_output=True, text=True,
                         timeout=120, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# --------------------------------------------------------------------------- manifests/README.md


def _readme_monitoring_blocks() -> list[str]:
    text = (MANIFESTS / "README.md").read_text()
    section = text.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)


def test_readme_network_policy_keeps_the_webhook_reachable_and_passes_schema(built: list[dict]) -> None:
    [policy] = [yaml.safe_load(b) for b in _readme_monitoring_blocks() if "kind: NetworkPolicy" in b]
    for version in VERSIONS:
        _validate(policy, version)
    labels = next(o for o in built if o["kind"] == "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["metadata"]["namespace"] == NS
    assert all(labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    ports = {p["name"]: p["containerPort"] for p in _container(built)["ports"]}
    open_to_all = [r for r in policy["spec"]["ingress"] if "from" not in r]
    assert [p["port"] for r in open_to_all for p in r["ports"]] == [ports["https"]], "the API server's port"
    limited = [p["port"] for r in policy["spec"]["ingress"] if "from" in r for p in r["ports"]]
    assert limited == [ports["metrics"]]


def test_readme_relabel_overlay_builds(tmp_path: Path) -> None:
    [block] = [b for b in _readme_monitoring_blocks() if "kind: Kustomization" in b]
    overlay = tmp_path / "overlays" / "mine"
    overlay.mkdir(parents=True)
    # The README's overlay sits in manifests/overlays/: its ../../ is manifests/.
    (overlay / "kustomization.yaml").write_text(block.replace("../../", os.path.relpath(MANIFESTS, overlay) + "/"))
    result = subprocess.run([_kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    objs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert _one(objs, kind, "sidecar-injector")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert any(o["kind"] == "Certificate" for o in objs)
