"""Typed errors, so edges map them to HTTP statuses and exit codes without matching strings."""


class ConfigError(ValueError):
    """The injection config is invalid; the message names the file, key path, value and what is allowed."""


class ReviewError(ValueError):
    """The AdmissionReview request itself is malformed (an HTTP 400, not a Pod denial)."""


class AnnotationError(ValueError):
    """A Pod annotation has a value we cannot accept; the Pod is denied with this message."""

    def __init__(self, annotation: str, value: str, allowed: str) -> None:
        self.annotation = annotation
        self.value = value
        self.allowed = allowed
        super().__init__(f"annotation {annotation}={value!r} is invalid: {allowed}")
