"""webhook/quantity.py: Kubernetes' quantity grammar (lightkube's), and what the API server refuses besides."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from webhook.quantity import is_quantity, parse


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("1Gi", Decimal(2**30)), ("512Mi", Decimal(512 * 2**20)),
    ("1k", Decimal(1000)), ("1e3", Decimal(1000)), ("0.5", Decimal("0.5")), (".5", Decimal("0.5")),
    ("+1", Decimal(1)), ("0", Decimal(0)), ("1.5Gi", Decimal(3 * 2**29)), ("1Ei", Decimal(2**60)),
])
def test_kubernetes_quantities_are_read(text: str, value: Decimal) -> None:
    assert parse(text) == value


@pytest.mark.parametrize("text", ["1.5.5", "-1", "-100m", "1e", "Mi", "", " 1", "1 ", "1K", "1Zi", "1Y", "one",
                                  "\u0661", "1e99999999999", "9" * 100, "1mi", "0x10"])
def test_what_the_api_server_refuses_is_refused(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse(text)


def test_comparison_follows_the_values_not_the_text() -> None:
    assert parse("1") > parse("999m") and parse("1Gi") > parse("1G") and parse("1024Mi") == parse("1Gi")


def test_the_client_library_is_imported_only_when_a_quantity_is_read() -> None:
    code = "import sys, webhook.mutate, webhook.config; sys.exit('lightkube' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
