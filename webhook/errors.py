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


# A denial's message is what kubectl prints, and it also goes into an audit annotation and the
# API server's log: several problems share one message, kept well under what those take.
MAX_MESSAGE_CHARS = 1000


def clip(text: str, limit: int) -> str:
    """The text made printable (newlines and the like become blanks) and cut to ``limit`` characters."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(ValueError):
    """The injection config is invalid; the message names the file, key path, value and what is allowed."""


class ReviewError(ValueError):
    """The AdmissionReview request itself is malformed (an HTTP 400, not a Pod denial)."""


def listed(names: list[Any], limit: int = 10) -> str:
    """Names from the request, comma-separated: the first ``limit`` of them (each clipped), then
    how many more, so a message that lists what a Pod has stays bounded however much it has."""
    shown_names = ", ".join(shown(name, quote=False) for name in names[:limit])
    return shown_names + (f" and {len(names) - limit} more" if len(names) > limit else "")


class Denied(ValueError):
    """The Pod must be refused (allowed: false); the message is what kubectl shows, and it also
    goes into the status, an audit annotation and the API server's log: clipped to
    MAX_MESSAGE_CHARS, like one that names several problems."""

    reason = "denied"
    code = 400
    status_reason = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(clip(message, MAX_MESSAGE_CHARS))


class AnnotationError(Denied):
    """A Pod annotation has a value we cannot accept."""

    reason = "invalid-annotation"
    problem = "is invalid"

    def __init__(self, annotation: str, value: str, allowed: str) -> None:
        self.annotation = annotation
        self.value = value
        self.allowed = allowed
        super().__init__(f"annotation {annotation}={shown(value)} {self.problem}: {allowed}")


class OverrideNotAllowed(AnnotationError):
    """A per-container override the profile does not allow (readable, but refused)."""

    reason = "override-not-allowed"
    problem = "is not allowed"
    code = 403
    status_reason = "Forbidden"


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


class Problems(Denied):
    """Several reasons to refuse one Pod, named in one message (a user fixes them all in one go).

    Takes the code and reason of its first malformed annotation (400), else of its first problem."""

    def __init__(self, errors: list[Denied]) -> None:
        self.errors = tuple(errors)
        first = next((e for e in errors if e.code == 400), errors[0])
        self.reason, self.code, self.status_reason = first.reason, first.code, first.status_reason
        super().__init__(joined([str(e) for e in errors]))


def joined(problems: list[str], limit: int = MAX_MESSAGE_CHARS) -> str:
    """``N problems: a; b; c`` within ``limit``: the problems that fit whole, then how many more."""
    head = f"{len(problems)} problems: "
    kept: list[str] = []
    for index, problem in enumerate(problems):
        rest = len(problems) - index - 1
        if len(head + "; ".join([*kept, problem])) + (len(f"; and {rest} more") if rest else 0) > limit:
            break
        kept.append(problem)
    if len(kept) == len(problems) or not kept:
        return clip(head + "; ".join(problems), limit)
    return f"{head}{'; '.join(kept)}; and {len(problems) - len(kept)} more"


def combined(errors: list[Denied]) -> Denied:
    """The one error to raise for these: itself when there is one, else all of them together."""
    return errors[0] if len(errors) == 1 else Problems(errors)


def problems_of(error: Denied) -> tuple[str, ...]:
    """Each reason an error gives to refuse the Pod, one message each."""
    return tuple(str(e) for e in error.errors) if isinstance(error, Problems) else (str(error),)
