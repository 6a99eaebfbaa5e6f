"""`sidecar-injector explain`: why each Pod template would (not) be injected and what it would
get, as text for people or JSON for machines (``inject --explain`` writes the same text)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from webhook.annotations import NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE
from webhook.config import Config
from webhook.tools.additions import Additions
from webhook.tools.offline import DEFAULT_NAMESPACE, TemplateReport, inject_documents

NAMESPACE_NOTE = (
    f"note: these answers assume the namespace is labelled {NAMESPACE_LABEL}={NAMESPACE_LABEL_VALUE}; "
    "the API server never sends Pods of other namespaces to the webhook"
)


def _grace_line(before: int | None, after: int | None) -> str:
    if before == after:
        return f"{after}s (unchanged)" if after is not None else "not set (the server's default 30s applies)"
    return f"raised from {before if before is not None else 'default 30'}s to {after}s (covers drain and shutdown)"


def _summary_lines(added: Additions) -> list[str]:
    mode = ("native: initContainers with restartPolicy Always" if added.native
            else "legacy: first in spec.containers")
    lines = [
        f"sidecars: {', '.join(added.sidecars) or 'none'} ({mode})",
        f"init containers: {', '.join(added.init_containers) or 'none'}",
        f"volumes: {', '.join(added.volumes) or 'none'}",
    ]
    lines += [f"application {change}" for change in added.application]
    lines += [f"sidecar {hook}" for hook in added.sidecar_hooks]
    lines.append(f"terminationGracePeriodSeconds: {_grace_line(*added.grace_seconds)}")
    if added.share_process_namespace:
        lines.append("shareProcessNamespace: true (set)")
    return lines


def explain_report(report: TemplateReport) -> str:
    """One block: `Kind/name (namespace ns): decision — why`, the warnings, then what is added."""
    detail = f"profiles {', '.join(report.profiles)}" if report.decision == "injected" else report.message
    if len(report.problems) > 1:
        detail = f"{len(report.problems)} problems"
    lines = [f"{report.workload} (namespace {report.namespace}): {report.decision} — {detail}"]
    lines += [f"  problem: {problem}" for problem in report.problems if len(report.problems) > 1]
    lines += [f"  warning: {warning}" for warning in report.warnings]
    if report.added is not None:
        lines += [f"  {line}" for line in _summary_lines(report.added)]
    return "\n".join(lines)


def report_data(report: TemplateReport) -> dict[str, Any]:
    """A report as plain JSON data (`explain --output json`)."""
    data = asdict(report)
    data["path"] = list(report.path)
    data["workload"] = report.workload
    return data


def format_reports(reports: list[TemplateReport], fmt: str = "text") -> str:
    """Every report, as text blocks (with the namespace note) or as one JSON document."""
    if fmt == "json":
        return json.dumps({"templates": [report_data(r) for r in reports]}, indent=2, ensure_ascii=False) + "\n"
    if fmt != "text":
        raise ValueError(f"format must be text or json, got {fmt!r}")
    if not reports:
        return "no Pod templates found\n"
    return "\n\n".join(explain_report(r) for r in reports) + "\n\n" + NAMESPACE_NOTE + "\n"


def explain_documents(docs: list[Any], config: Config, namespace: str = DEFAULT_NAMESPACE, fmt: str = "text") -> str:
    """Why each Pod template would (not) be injected, and what it would get."""
    return format_reports(inject_documents(docs, config, namespace).reports, fmt)
