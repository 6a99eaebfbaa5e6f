"""Should this Pod be injected, with which profiles and settings, and if not, why not.

Pure: it reads the Pod, the request context and the config and returns a Decision. The
reasons are short stable words (they label metrics and audit annotations); the messages
are the sentences users read in `kubectl` warnings and in `sidecar-injector explain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from webhook import annotations as ann
from webhook import namespace_defaults
from webhook.config import Config, Profile
from webhook.errors import (
    AnnotationError,
    Denied,
    LimitExceeded,
    ProfileNotAllowed,
    RequesterNotAllowed,
    RunToCompletionDenied,
    combined,
    listed,
    shown,
)
from webhook.jsontree import is_map
from webhook.pod_shape import shape_problem
from webhook.settings import Settings, resolve
from webhook.sidecar_overrides import check as check_overrides

# Kinds whose Pods run to completion: a legacy sidecar would keep them running forever.
RUN_TO_COMPLETION_OWNERS = frozenset({"Job"})


@dataclass(frozen=True)
class PodContext:
    """What the webhook knows about a Pod beyond its own object."""

    namespace: str = ""
    owner_kinds: tuple[str, ...] = ()
    username: str | None = None  # None: not known (offline CLI), so not checked
    groups: tuple[str, ...] = ()
    # The namespace's annotations, defaults for its Pods (webhook.namespace_defaults); None: not
    # known (namespace defaults off, or not loaded yet: then ``namespace_pending``).
    namespace_annotations: Mapping[str, str] | None = None
    namespace_pending: bool = False


@dataclass(frozen=True)
class Shadow:
    """What the Pod's profiles in shadow mode would do were they normal: the settings with them
    (the normal ones too), or the denial they would give, or why the Pod would not be injected;
    and those of them that would be left out, with why. Only summarised, never patched."""

    profiles: tuple[str, ...]
    settings: Settings | None = None
    denial: str | None = None
    skipped: str | None = None
    left_out: tuple[str, ...] = ()  # "newproxy left out: not allowed in namespace shop"


@dataclass(frozen=True)
class Decision:
    """inject=False carries the reason; inject=True carries the settings."""

    inject: bool
    reason: str
    message: str
    settings: Settings | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    shadow: Shadow | None = None


def _metadata(pod: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    meta = pod.get("metadata")
    meta = meta if is_map(meta) else {}
    annotations = meta.get("annotations")
    labels = meta.get("labels")
    return (
        annotations if is_map(annotations) else {},
        labels if is_map(labels) else {},
    )


def owner_kinds(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """Kinds of the Pod's owners (a Job's Pods are owned by the Job)."""
    meta = pod.get("metadata")
    owners = meta.get("ownerReferences") if is_map(meta) else None
    if not isinstance(owners, list):
        return ()
    return tuple(str(o.get("kind")) for o in owners if is_map(o) and o.get("kind"))


def spec_list(pod: Mapping[str, Any], key: str) -> list[Any]:
    spec = pod.get("spec")
    value = spec.get(key) if is_map(spec) else None
    return value if isinstance(value, list) else []


def runs_to_completion(pod: Mapping[str, Any], context: PodContext) -> bool:
    """Job Pods, and any Pod whose restartPolicy lets it finish."""
    spec = pod.get("spec")
    policy = spec.get("restartPolicy") if is_map(spec) else None
    return bool(RUN_TO_COMPLETION_OWNERS.intersection(context.owner_kinds)) or policy in ("Never", "OnFailure")


def decide(pod: Mapping[str, Any], context: PodContext, config: Config) -> Decision:
    """The should-inject question.

    Raises Denied (AnnotationError, ProfileNotAllowed, RequesterNotAllowed) when the Pod
    must be refused, and LimitExceeded when the onError policy must answer instead.
    """
    def skip(reason: str, message: str, *warnings: str) -> Decision:
        # Every skip of a Pod creation says why, so kubectl users see it.
        return Decision(False, reason, message, warnings=(*warnings, f"not injected: {message}"))

    problem = shape_problem(pod)
    if problem is not None:
        return skip("malformed-pod", problem)
    annotations, labels = _metadata(pod)
    if ann.STATUS in annotations:
        # Not "not injected": on a reinvocation the sidecars are there (a Pod copied from an
        # injected one carries the annotation too: `explain` and the audit annotations say why).
        message = f"the Pod already carries {ann.STATUS}"
        # No warning: with reinvocationPolicy IfNeeded the API server calls us again on every
        # Pod we injected (its ServiceAccount plugin runs again after our change), and kubectl
        # would show every user the line. The audit annotations say it; repair warns when
        # something of ours is gone or changed.
        return Decision(False, "already-injected", message)
    # Opt-out is read before anything else so an opted-out Pod is never denied over its
    # other annotations; the annotation wins over the label.
    overrides, problems = ann.read_overrides(annotations, labels, config.profiles)
    if overrides.inject is False:
        where = "sets annotation" if ann.INJECT in annotations else "has label"
        return skip("opted-out", f"the Pod {where} {ann.INJECT}: \"false\"")
    if problems and overrides.inject is None and (ann.INJECT in annotations or ann.INJECT in labels):
        raise combined(problems)  # the switch itself is unreadable: denied before anything else

    if config.requesters.enabled and context.username is not None:
        if not config.requesters.permits(context.username, list(context.groups)):
            message = f"requester {shown(context.username, quote=False) if context.username else '(unknown user)'} may not trigger sidecar injection"
            if config.requesters.onMismatch == "deny":
                raise RequesterNotAllowed(message)
            return skip("requester-not-allowed", message)

    containers = len(spec_list(pod, "containers")) + len(spec_list(pod, "initContainers"))
    if containers > config.limits.maxContainers:
        raise LimitExceeded(
            "too-many-containers", f"the Pod has {containers} containers, over the limit of {config.limits.maxContainers}"
        )

    if context.namespace_annotations:
        defaults, invalid = namespace_defaults.read(context.namespace, context.namespace_annotations, config.profiles)
        problems = [*problems, *namespace_defaults.relied_on(invalid, annotations)]
        overrides = namespace_defaults.merged(overrides, defaults)
    selected = overrides.profiles if overrides.profiles is not None else tuple(config.defaultProfiles)
    shadowed = tuple(name for name in selected if config.profiles[name].mode == "shadow")
    active = tuple(name for name in selected if name not in shadowed)
    if problems:
        if shadowed and not active:  # a Pod whose profiles are all in shadow is never refused
            readable = _permitted(overrides, selected, context, config)
            return _shadow_decision(Shadow(shadowed, denial=str(combined(
                [*problems, *_selection_problems(overrides, readable, pod)]))))
        readable = _permitted(overrides, active, context, config)
        raise combined([*problems, *_selection_problems(_without_shadow(overrides, readable, shadowed, config),
                                                        readable, pod)])
    warnings = [f"unknown annotation {key} ignored (check its spelling)" for key in ann.unknown_annotations(annotations)]
    if context.namespace_pending:
        warnings.append("namespace defaults are not loaded yet: the profiles' settings apply")

    spec = pod.get("spec") if is_map(pod.get("spec")) else {}
    if spec.get("hostNetwork") is True and not (config.injectHostNetwork or overrides.inject is True):
        return skip("host-network", f"hostNetwork Pod (sidecar ports would clash with the node); set {ann.INJECT}: \"true\"",
                     *warnings)
    if not shadowed:
        return _with_profiles(selected, overrides, pod, context, config, warnings)[0]
    # The shadow profiles are split off here, before anything about profiles is decided: the Pod
    # is decided with its normal profiles alone, exactly as if the shadow ones were not selected,
    # and with all of them (the shadow ones as normal) only to summarise what those would do.
    # Nothing of the shadow profiles reaches the user: no warning, no denial.
    if not active:
        return _shadow_decision(_shadow_of(shadowed, selected, overrides, pod, context, config))
    decision, _ = _with_profiles(active, _without_shadow(overrides, _profiles(active, config), shadowed, config), pod,
                                 context, config, warnings)
    if not decision.inject:
        return decision
    return replace(decision, shadow=_shadow_of(shadowed, selected, overrides, pod, context, config))


def _profiles(names: tuple[str, ...], config: Config) -> tuple[tuple[str, Profile], ...]:
    return tuple((name, config.profiles[name]) for name in names)


def _with_profiles(names: tuple[str, ...], overrides: ann.Overrides, pod: Mapping[str, Any], context: PodContext,
                   config: Config, warnings: list[str]) -> tuple[Decision, dict[str, str]]:
    """The decision with these profiles, for a Pod whose annotations were read and whose
    Pod-level checks passed; and the profiles left out, with why: default profiles the
    namespace may not use (a named one is a denial), those runToCompletion leaves out.
    Raises Denied."""
    def skip(reason: str, message: str) -> Decision:
        return Decision(False, reason, message, warnings=(*warnings, f"not injected: {message}"))

    warnings = list(warnings)
    left_out: dict[str, str] = {}
    namespace = shown(context.namespace, quote=False)
    for name in names:
        if not config.profiles[name].namespaces.permits(context.namespace):
            if overrides.profiles is not None:
                raise ProfileNotAllowed(f"profile {name} may not be used in namespace {namespace or '(none)'}")
            left_out[name] = f"not allowed in namespace {namespace}"
            warnings.append(f"default profile {name} is not allowed in namespace {namespace}; left out")
    names = tuple(name for name in names if name not in left_out)
    if not names:
        return skip("no-profiles", f"no default profile is allowed in namespace {namespace}" if config.defaultProfiles
                    else f"no profiles selected: no {ann.PROFILES} annotation and no defaultProfiles"), left_out
    profiles = _profiles(names, config)
    if problems := _selection_problems(overrides, profiles, pod):
        raise combined(problems)
    if overrides.native_sidecar is not False and not config.kube_version.native_sidecars \
            and runs_to_completion(pod, context):
        kept, completing = completing_profiles(profiles, str(config.kube_version))
        kept_names = {name for name, _ in kept}
        left_out |= {name: RUN_TO_COMPLETION_LEFT_OUT for name in names if name not in kept_names}
        if not kept:
            return skip("run-to-completion", f"a legacy sidecar would keep this run-to-completion Pod from completing "
                                             f"(no native sidecars on {config.kube_version})"), left_out
        warnings += completing
        profiles = kept
    settings, setting_warnings = resolve(profiles, overrides, runs_to_completion(pod, context), config)
    message = f"injecting profiles {', '.join(name for name, _ in profiles)}"
    return Decision(True, "injected", message, settings, (*warnings, *setting_warnings)), left_out


RUN_TO_COMPLETION_LEFT_OUT = "a legacy sidecar would keep this run-to-completion Pod running"


def _shadow_of(shadowed: tuple[str, ...], selected: tuple[str, ...], overrides: ann.Overrides, pod: Mapping[str, Any],
               context: PodContext, config: Config) -> Shadow:
    """What the shadow profiles would do were they normal: the Pod decided with every selected
    profile, its denial or its skip caught (only summarised, never answered)."""
    try:
        decision, left_out = _with_profiles(selected, overrides, pod, context, config, [])
    except Denied as error:
        return Shadow(shadowed, denial=str(error))
    reasons = tuple(f"{name} left out: {left_out[name]}" for name in shadowed if name in left_out)
    if not decision.inject:
        return Shadow(shadowed, skipped=decision.message, left_out=reasons)
    return Shadow(shadowed, decision.settings, left_out=reasons)


def _shadow_decision(shadow: Shadow) -> Decision:
    return Decision(False, "shadow", f"profiles {', '.join(shadow.profiles)} are in shadow mode", shadow=shadow)


def _without_shadow(overrides: ann.Overrides, active: tuple[tuple[str, Profile], ...], shadowed: tuple[str, ...],
                    config: Config) -> ann.Overrides:
    """The Pod's overrides but those of containers only its shadow profiles bring: they are the
    shadow profiles' business (summarised with them), not a reason to refuse the Pod."""
    if not overrides.per_container:
        return overrides
    theirs = {c["name"] for name in shadowed
              for c in (*config.profiles[name].initContainers, *config.profiles[name].containers)}
    ours = {c["name"] for _, profile in active for c in (*profile.initContainers, *profile.containers)}
    kept = tuple(entry for entry in overrides.per_container if entry[0] in ours or entry[0] not in theirs)
    return overrides if len(kept) == len(overrides.per_container) else replace(overrides, per_container=kept)


def completing_profiles(profiles: tuple[tuple[str, Profile], ...],
                        version: str) -> tuple[tuple[tuple[str, Profile], ...], list[str]]:
    """The profiles a run-to-completion Pod keeps where sidecars can only be legacy containers.

    A legacy sidecar never exits, so the Pod (a Job's) would never complete: each profile with
    sidecars says what to do (runToCompletion). Profiles without sidecars are always kept, and
    a Pod that forces legacy sidecars with the annotation is not asked (decide() checks that).
    Raises RunToCompletionDenied for a profile that no Pod may run without.
    """
    kept = []
    warnings = []
    for name, profile in profiles:
        if not profile.containers or profile.runToCompletion == "inject":
            kept.append((name, profile))
        elif profile.runToCompletion == "deny":
            raise RunToCompletionDenied(
                f"profile {name} is required (runToCompletion: deny), but on Kubernetes {version} its sidecars can "
                "only be legacy containers, which would keep this run-to-completion Pod from ever completing; "
                "native sidecars need Kubernetes 1.29+")
        else:
            warnings.append(f"profile {name} left out: a legacy sidecar would keep this run-to-completion Pod running")
    return tuple(kept), warnings


def _permitted(overrides: ann.Overrides, names: tuple[str, ...], context: PodContext,
               config: Config) -> tuple[tuple[str, Profile], ...]:
    """The profiles a Pod with unreadable annotations would get, to name its other problems too
    (default profiles its namespace may not use left out)."""
    if overrides.profiles is None:
        names = tuple(name for name in names if config.profiles[name].namespaces.permits(context.namespace))
    return _profiles(names, config)


def _selection_problems(overrides: ann.Overrides, profiles: tuple[tuple[str, Profile], ...],
                        pod: Mapping[str, Any]) -> list[AnnotationError]:
    """What the Pod asks of the chosen profiles' containers that they do not allow, and target
    containers it does not have."""
    problems = check_overrides(overrides.per_container, profiles) if overrides.per_container else []
    if overrides.targets is not None:
        have = [c.get("name") for c in spec_list(pod, "containers")]
        if unknown := [name for name in overrides.targets if name not in have]:
            problems.append(AnnotationError(ann.CONTAINERS, ",".join(overrides.targets),
                                            f"the Pod has no container {listed(unknown)}; "
                                            f"its containers: {listed(have)}"))
    return problems
