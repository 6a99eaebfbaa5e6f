"""Shadow mode: what a profile would do, said in the audit annotation `shadow`, never patched.

An operator rolls a new profile out to a namespace in shadow first and reads what it would do
(no anchor has this). A Pod whose selected profiles are all in shadow mode is decided in full
and patched not at all: its answer is the ``shadow`` decision, no warning reaches the user,
and the audit annotation summarises what injection would add, or the denial it would give.
A Pod that also selects normal profiles is decided with those alone, exactly as if the shadow
profiles were not selected (webhook.policy splits them off first), and its decision is theirs
(``injected``, counted so); when they inject, the shadow profiles' additions on top of them are
summarised the same way. Why a shadow profile would be left out (its namespace, runToCompletion)
or the Pod not injected is said in the summary, never to the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.errors import MAX_MESSAGE_CHARS, clip
from webhook.inject import inject
from webhook.policy import Shadow


def summary(pod: Mapping[str, Any], shadow: Shadow, injected: Mapping[str, Any] | None = None) -> str:
    """What the shadow profiles would add to the Pod beyond ``injected`` (the status of what the
    normal profiles did add), or the denial they would give, in one line."""
    profiles = ", ".join(shadow.profiles)
    if shadow.denial is not None:
        return clip(f"profiles {profiles} would deny the Pod: {shadow.denial}", MAX_MESSAGE_CHARS)
    left_out = "".join(f"; {reason}" for reason in shadow.left_out)
    if shadow.settings is None:
        return clip(f"profiles {profiles} would not inject the Pod: {shadow.skipped}{left_out}", MAX_MESSAGE_CHARS)
    would = inject(pod, shadow.settings).status
    done = injected or {}
    parts = []
    for key, label in (("containers", "sidecars"), ("initContainers", "init containers"), ("volumes", "volumes")):
        extra = [name for name in would.get(key, ()) if name not in done.get(key, ())]
        if extra:
            parts.append(f"{label} {', '.join(extra)}")
    already = done.get("appContainers") or {}
    for name, added in (would.get("appContainers") or {}).items():
        kinds = [kind for kind, items in added.items()
                 if kind != "created" and any(i not in (already.get(name) or {}).get(kind, ()) for i in items)]
        if kinds:
            parts.append(f"container {name}: {', '.join(kinds)}")
    grace = would.get("terminationGracePeriodSeconds")
    if grace and grace != done.get("terminationGracePeriodSeconds"):
        parts.append(f"terminationGracePeriodSeconds {grace['set']}")
    if would.get("shareProcessNamespace") and not done.get("shareProcessNamespace"):
        parts.append("shareProcessNamespace")
    return clip(f"profiles {profiles} would add {'; '.join(parts) or 'nothing'}{left_out}", MAX_MESSAGE_CHARS)
