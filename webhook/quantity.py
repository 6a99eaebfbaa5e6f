"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``), read and compared.

The grammar is lightkube's ``parse_quantity`` (a well-kept Kubernetes client); it is imported
inside ``parse`` because importing it loads the lightkube client (httpx, its models: about a
tenth of a second), which only a Pod that overrides a resource, or a config with a maximum,
should pay for. Around it, what the API server refuses as well: suffixes beyond ``E``/``Ei``
(lightkube also reads ``Z``, ``Y``), digits outside ASCII, and negative values (a request or
limit must be at least 0).
"""

from __future__ import annotations

from decimal import Decimal

_BEYOND_KUBERNETES = ("Z", "Y", "Zi", "Yi")
GRAMMAR = "a Kubernetes quantity of at least 0 such as 250m, 2, 512Mi or 1Gi"


def parse(text: str) -> Decimal:
    """The quantity's value (cores, bytes); ValueError when the API server would refuse it."""
    from lightkube.utils.quantity import parse_quantity

    if not isinstance(text, str) or len(text) > 64 or not text.isascii() or text.endswith(_BEYOND_KUBERNETES):
        raise ValueError(f"{text!r} is not {GRAMMAR}")
    try:
        value = parse_quantity(text)
    except (ValueError, ArithmeticError):
        raise ValueError(f"{text!r} is not {GRAMMAR}") from None
    if value is None or value < 0:
        raise ValueError(f"{text!r} is not {GRAMMAR}")
    return value


def is_quantity(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True
