"""Typed errors, so edges map them to HTTP statuses and exit codes without matching strings."""

from typing import Any


def shown(value: Any, limit: int = 60, quote: bool = True) -> str:
    """A request value as it may appear in a message: text clipped, anything else by type.

    Messages go into responses, audit annotations and logs; a value from the request must
    not make them unbounded (nor fail to print, as repr of a deeply nested list does).
    """
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text) if quote else text
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


class ConfigError(ValueError):
    """The injection config is invalid; the message names the file, key path, value and what is allowed."""


class ReviewError(ValueError):
    """The AdmissionReview request itself is malformed (an HTTP 400, not a Pod denial)."""


class Denied(ValueError):
    """The Pod must be refused (allowed: false); the message is what kubectl shows."""

    reason = "denied"
    code = 400
    status_reason = "BadRequest"


class AnnotationError(Denied):
    """A Pod annotation has a value we cannot accept."""

    reason = "invalid-annotation"

    def __init__(self, annotation: str, value: str, allowed: str) -> None:
        self.annotation = annotation
        self.value = value
        self.allowed = allowed
        super().__init__(f"annotation {annotation}={shown(value)} is invalid: {allowed}")


class ProfileNotAllowed(Denied):
    """The Pod asks for a profile its namespace may not use."""

    reason = "profile-not-allowed"
    code = 403
    status_reason = "Forbidden"


class RequesterNotAllowed(Denied):
    """The requester may not trigger injection and the config says to deny."""

    reason = "requester-not-allowed"
    code = 403
    status_reason = "Forbidden"


class RunToCompletionDenied(Denied):
    """A profile that no Pod may run without cannot give this run-to-completion Pod a sidecar
    that lets it complete (runToCompletion: deny)."""

    reason = "run-to-completion"
    code = 403
    status_reason = "Forbidden"


class LimitExceeded(RuntimeError):
    """A review exceeds a configured bound; answered by the onError policy."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
