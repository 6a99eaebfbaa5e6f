"""A Pod's settings: what its profiles ask for, merged, then what its annotations override.

Pure, and memoized on the config: the same question gets the same Settings object back, so
inject() can keep what depends on the settings alone (its plan) on that object. Which
profiles a Pod gets is webhook.policy's question; this module only merges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhook import annotations as ann
from webhook.config import Config, PodInfo, Probes, Profile
from webhook.sidecar_overrides import ContainerOverride, grouped


@dataclass(frozen=True)
class Settings:
    """Everything inject() needs, resolved from profiles and annotations."""

    profiles: tuple[tuple[str, Profile], ...]
    native: bool
    hold_application: bool
    drain_seconds: int
    share_process_namespace: bool
    podinfo: PodInfo | None
    probes: Probes | None
    startup_period_seconds: int
    warmup_seconds: int
    min_grace_seconds: int | None
    shutdown_seconds: int
    sleep_action: bool
    config_hash: str
    container_overrides: tuple[ContainerOverride, ...] = ()  # what the Pod's annotations set in injected containers
    target_containers: frozenset[str] | None = None  # application containers configured (None: all)
    # inject()'s per-settings plan (what depends on these settings alone), built on first use:
    # resolve() hands out the same Settings object for the same question.
    plan_cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _first(override: Any, default: Any) -> Any:
    return default if override is None else override


# Bound of Config.resolved: the keys include numbers from the Pod's annotations.
RESOLVED_MEMO_SIZE = 1024
# Override values are text from the Pod (an image, an env value): a question whose overrides hold
# more than this is resolved afresh and not kept, so the memo stays small (1024 entries of a few
# KiB) however large the values the Pods send (each is bounded too: webhook.sidecar_overrides).
MEMO_OVERRIDE_CHARS = 1024


def resolve(
    profiles: tuple[tuple[str, Profile], ...],
    overrides: ann.Overrides,
    finite: bool,
    config: Config,
) -> tuple[Settings, list[str]]:
    """Merge the profiles' settings (any profile asking for a feature turns it on; the
    largest number wins), then let the Pod's annotations override them. ``finite``: the Pod
    runs to completion (a Job's), so its sidecars are native where the cluster has them.

    Memoized on the config (the same Settings object comes back for the same question, so
    inject() can keep its per-settings plan on it), but for overrides of more than
    MEMO_OVERRIDE_CHARS."""
    if overrides.per_container and sum(len(value) for *_, value in overrides.per_container) > MEMO_OVERRIDE_CHARS:
        settings, warnings = _resolve(profiles, overrides, finite, config)
        return settings, list(warnings)
    # The profiles' identities, not only their names: a caller may pass profiles of its own.
    key = (tuple((name, id(profile)) for name, profile in profiles), overrides, finite)
    memo = config.resolved
    found = memo.get(key)
    if found is None:
        if len(memo) >= RESOLVED_MEMO_SIZE:
            memo.clear()
        found = memo[key] = _resolve(profiles, overrides, finite, config)
    settings, warnings = found
    return settings, list(warnings)


def _resolve(
    profiles: tuple[tuple[str, Profile], ...],
    overrides: ann.Overrides,
    finite: bool,
    config: Config,
) -> tuple[Settings, tuple[str, ...]]:
    warnings: list[str] = []
    values = [profile for _, profile in profiles]
    # Sidecar settings are only the business of profiles that bring sidecars: a profile of
    # probes alone must not switch hold-application on through its default.
    with_sidecars = [p for p in values if p.containers] or values
    version = config.kube_version

    native = _first(overrides.native_sidecar, all(p.nativeSidecar for p in with_sidecars) or finite)
    if native and not version.native_sidecars:
        if overrides.native_sidecar or finite:
            warnings.append(f"native sidecars need Kubernetes 1.29+ (configured {version}); injected as legacy containers")
        native = False
    if finite and not native:
        warnings.append("legacy sidecars keep this run-to-completion Pod (Job) from ever completing")

    podinfo_profiles = [p.podinfo for p in values if p.podinfo.enabled]
    podinfo = _first(overrides.podinfo, bool(podinfo_profiles))
    probes_profiles = [p.probes for p in values if p.probes.enabled]
    probes = _first(overrides.probes, bool(probes_profiles))
    graces = [p.terminationGracePeriodSeconds for p in values if p.terminationGracePeriodSeconds is not None]

    settings = Settings(
        profiles=profiles,
        native=native,
        hold_application=_first(overrides.hold_application, any(p.holdApplication for p in with_sidecars)),
        drain_seconds=_first(overrides.drain_seconds, max(p.drainSeconds for p in values)),
        share_process_namespace=_first(
            overrides.share_process_namespace, any(p.shareProcessNamespace for p in values)
        ),
        podinfo=(podinfo_profiles[0] if podinfo_profiles else PodInfo(enabled=True)) if podinfo else None,
        probes=(probes_profiles[0] if probes_profiles else Probes(enabled=True)) if probes else None,
        startup_period_seconds=(probes_profiles or [p.probes for p in values])[0].startupPeriodSeconds,
        warmup_seconds=_first(overrides.warmup_seconds, max(p.warmupSeconds for p in values)),
        min_grace_seconds=max(graces) if graces else None,
        shutdown_seconds=max(p.sidecarShutdownSeconds for p in values),
        sleep_action=version.sleep_action,
        config_hash=config.config_hash,
        container_overrides=grouped(overrides.per_container),
        target_containers=frozenset(overrides.targets) if overrides.targets is not None else None,
    )
    return settings, tuple(warnings)
