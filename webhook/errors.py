"""Typed errors, so edges map them to HTTP statuses and exit codes without matching strings."""


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
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(f"annotation {annotation}={shown!r} is invalid: {allowed}")


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


class LimitExceeded(RuntimeError):
    """A review exceeds a configured bound; answered by the onError policy."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
