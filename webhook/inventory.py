"""What a Pod that already runs is, against the config in force (pure; `sidecar-injector report`):

- ``injected``: our status annotation, with the config's hash, and everything it names in place;
- ``stale``: injected under another config (a restart picks up the current profiles);
- ``tampered``: injected, but a container, init container or volume of ours is gone, or no
  longer holds what injection put there (a later webhook changed it: istio#54562);
- ``missing``: not injected, though the webhook would inject it now (created while the webhook
  was down under failurePolicy Ignore, or before its namespace opted in: dapr#4171);
- ``not-injected``: not injected, and rightly so today (opted out, host network, a Job's Pod
  where sidecars can only be legacy...), with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.annotations import STATUS
from webhook.config import Config
from webhook.errors import Denied, LimitExceeded
from webhook.inject import inject
from webhook.jsontree import is_map
from webhook.policy import PodContext, decide, owner_kinds
from webhook.repair import repair
from webhook.uninject import read_status

STATES = ("injected", "stale", "tampered", "missing", "not-injected")


@dataclass(frozen=True)
class PodState:
    state: str
    detail: str = ""


def pod_state(pod: Mapping[str, Any], namespace: str, config: Config,
              namespace_annotations: Mapping[str, str] | None = None) -> PodState:
    meta = pod.get("metadata")
    annotations = meta.get("annotations") if is_map(meta) else None
    context = PodContext(namespace=namespace, owner_kinds=owner_kinds(pod),
                         namespace_annotations=namespace_annotations)
    if is_map(annotations) and STATUS in annotations:
        status = read_status(pod) or {}
        fixed = repair(pod, context, config)
        problems = [f"removed: {', '.join(fixed.restored)}"] if fixed.restored else []
        problems += [f"changed: {', '.join(fixed.changed)}"] if fixed.changed else []
        if problems:
            return PodState("tampered", "; ".join(problems))
        recorded = status.get("configHash")
        if recorded != config.config_hash:
            return PodState("stale", f"injected with config {recorded}, now {config.config_hash}")
        return PodState("injected", ",".join(str(p) for p in status.get("profiles") or ()))
    try:
        decision = decide(pod, context, config)
    except Denied as error:
        return PodState("not-injected", f"would be denied now: {error}")
    except LimitExceeded as error:
        return PodState("not-injected", str(error))
    if decision.inject and decision.settings is not None:
        if not inject(pod, decision.settings).changed:
            return PodState("not-injected", "everything injection adds is already there")
        names = ",".join(name for name, _ in decision.settings.profiles)
        return PodState("missing", f"should carry profiles {names}")
    return PodState("not-injected", decision.message)
