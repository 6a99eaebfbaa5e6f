"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``), read and compared.

Kubernetes' grammar (``k8s.io/apimachinery/pkg/api/resource``), read here exactly as the API
server reads it::

    quantity ::= sign? number suffix?
    number   ::= digits | digits "." digits? | "." digits
    suffix   ::= binary (Ki Mi Gi Ti Pi Ei) | decimal (n u m k M G T P E) | exponent ("e" | "E", sign?, digits)

One suffix at most: an exponent and a unit together (``1e3Mi``, ``1e2m``) are refused, as the
API server refuses them. The value is what the API server makes of the text: rounded up to a
whole nano unit (``1e-12`` is ``1n``) and capped at 2^63-1. Refused besides: negative values (a
request or limit is at least 0), an exponent beyond +-100 and text over 64 characters (no real
quantity is either; they also bound the work). Client libraries were no help here: lightkube's parser reads ``1e3Mi``
and refuses ``1E3``, and rounds to milli units.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Context, Decimal

GRAMMAR = "a Kubernetes quantity of at least 0 such as 250m, 2, 512Mi or 1Gi"
MAX_CHARS = 64
# The API server truncates a larger exponent to 32 bits; well before that every 64-digit number
# is over the cap or under a nano unit.
MAX_EXPONENT = 100

_QUANTITY = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX = Decimal(2**63 - 1)  # the API server's cap
_NANO = Decimal("1e-9")
# Exact for 64 digits times 2^60 or 10^+-100.
_CONTEXT = Context(prec=200, Emax=10**6, Emin=-(10**6))


def parse(text: str) -> Decimal:
    """The quantity's value (cores, bytes); ValueError when the API server would refuse it."""
    match = _QUANTITY.fullmatch(text) if isinstance(text, str) and len(text) <= MAX_CHARS else None
    if match is None:
        raise ValueError(f"{text!r} is not {GRAMMAR}")
    sign, number, suffix = match.groups()
    amount = Decimal(number)
    exponent = 0 if not suffix or suffix in _BINARY else _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if (sign == "-" and amount != 0) or abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"{text!r} is not {GRAMMAR}")
    if suffix in _BINARY:
        amount = _CONTEXT.multiply(amount, Decimal(2 ** _BINARY[suffix]))
    elif exponent:
        amount = amount.scaleb(exponent, _CONTEXT)
    return _MAX if amount > _MAX else amount.quantize(_NANO, rounding=ROUND_CEILING, context=_CONTEXT)


def is_quantity(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def value_of(value: object) -> Decimal | None:
    """The value of a quantity as a Pod or a config holds it (text, or a number from YAML), or
    None when it is not one."""
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        return parse(text)  # type: ignore[arg-type]
    except ValueError:
        return None


def same(actual: object, expected: object) -> bool:
    """Whether two quantities have the same value: the API server writes them back canonical
    (``0.5Gi`` comes back as ``512Mi``, ``1000m`` as ``1``)."""
    if type(actual) is type(expected) and actual == expected:
        return True
    value = value_of(actual)
    return value is not None and value == value_of(expected)
