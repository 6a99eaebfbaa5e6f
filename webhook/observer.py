"""The one meeting point of the HTTPS edge and the cluster code: who hears of each decision.

``webhook.server`` and ``webhook.cluster`` may not import each other (the import-linter
contracts in pyproject.toml). The server calls a ``ReviewObserver`` it is given after each
review it answered with a decision; the cluster code will implement one, to emit a
Kubernetes Event for the Pod (so `kubectl describe` shows why it was, or was not, injected).
Both import this module, which imports only the core.
"""

from __future__ import annotations

from typing import Protocol

from webhook.mutate import Outcome


class ReviewObserver(Protocol):
    """Hears of every review the server answered with a decision (not of HTTP errors: those
    have no Pod to speak of)."""

    def reviewed(self, outcome: Outcome) -> None:
        """Called on the server's event loop once the reply has been handed over, so it must
        return at once: anything slow (an API call) is queued and done elsewhere. ``outcome``
        is shared and must not be changed; an answer from the review cache carries no patch or
        patched Pod. An exception is logged and costs nothing but this call."""
