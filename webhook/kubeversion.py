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


DEFAULT_KUBERNETES_VERSION = "1.30"
