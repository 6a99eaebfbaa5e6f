"""The Kubernetes version the webhook targets, and which Pod fields that version knows.

An API server silently drops fields it does not know, which can leave an invalid or
half-configured Pod; so every version-dependent field we emit is gated here, in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", re.ASCII)

OLDEST_SUPPORTED = (1, 20)


@dataclass(frozen=True, order=True)
class KubeVersion:
    """A Kubernetes minor version, e.g. 1.30."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        """Accept `1.30`, `v1.30`, `1.30.2` and `v1.30.2-eks-1`; reject anything else."""
        match = _VERSION.fullmatch(str(text).strip())
        if not match:
            raise ValueError(f"{text!r} is not a Kubernetes version; expected MAJOR.MINOR such as 1.30")
        version = cls(int(match.group(1)), int(match.group(2)))
        if (version.major, version.minor) < OLDEST_SUPPORTED:
            raise ValueError(f"{text!r} is older than the oldest supported version 1.20")
        return version

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    @property
    def native_sidecars(self) -> bool:
        """Init containers with restartPolicy Always: beta and on by default since 1.29."""
        return self.at_least(1, 29)

    @property
    def sleep_action(self) -> bool:
        """The lifecycle `sleep` handler: beta and on by default since 1.30."""
        return self.at_least(1, 30)

    # What the install manifests use (webhook/tools/version_manifests.py):

    @property
    def match_conditions(self) -> bool:
        """CEL matchConditions on admission webhooks: GA in 1.30 (beta in 1.28, alpha in 1.27)."""
        return self.at_least(1, 30)

    @property
    def namespace_name_label(self) -> bool:
        """The API server labels every namespace kubernetes.io/metadata.name since 1.21."""
        return self.at_least(1, 21)

    @property
    def pdb_policy_v1(self) -> bool:
        """PodDisruptionBudget in policy/v1 since 1.21 (policy/v1beta1 before, removed in 1.25)."""
        return self.at_least(1, 21)

    @property
    def pdb_unhealthy_pod_eviction_policy(self) -> bool:
        """A PDB's unhealthyPodEvictionPolicy: beta and on by default since 1.27."""
        return self.at_least(1, 27)


DEFAULT_KUBERNETES_VERSION = "1.30"
