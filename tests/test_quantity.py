"""webhook/quantity.py: Kubernetes' quantity grammar, read as the API server reads it, and what it refuses besides."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.quantity import MAX_CHARS, is_quantity, parse, same

from k8s_checks import parse_quantity as reference_value


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


def test_the_core_never_imports_the_client_library() -> None:
    code = ("import sys, webhook.mutate, webhook.config, webhook.quantity; webhook.quantity.parse('1Gi'); "
            "sys.exit('lightkube' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("text", ["1e3Mi", "1e2m", "2e0Ki", "1E3k", "e3", "1e", "1e+", "1e3.5", "1e101", "1e-101",
                                  ".", "+", "1Mi2", "1m1"])
def test_one_suffix_at_most_and_an_exponent_is_a_whole_number(text: str) -> None:
    # The API server refuses an exponent together with a unit: a Pod carrying one would be rejected.
    assert not is_quantity(text)


@pytest.mark.parametrize(("text", "value"), [
    ("1E3", Decimal(1000)), ("1e+3", Decimal(1000)), ("1e-3", Decimal("0.001")), ("1.0e3", Decimal(1000)),
    ("1E", Decimal(10**18)), ("1.", Decimal(1)), ("1.5m", Decimal("0.0015")), ("1n", Decimal("1e-9")),
    ("2u", Decimal("2e-6")), ("-0", Decimal(0)), ("+.5", Decimal("0.5")),
    ("0.1n", Decimal("1e-9")),  # rounded up to a whole nano unit, as the API server does
    ("9Ei", Decimal(2**63 - 1)), ("1e100", Decimal(2**63 - 1)),  # capped, as the API server does
])
def test_values_are_what_the_api_server_makes_of_them(text: str, value: Decimal) -> None:
    assert parse(text) == value


@given(st.text(alphabet="0123456789.+-eEKMGTPinumk", max_size=12))
def test_whatever_is_read_the_api_server_reads_with_the_same_value(text: str) -> None:
    """k8s_checks' independent reading of the API server's grammar agrees wherever we accept."""
    if not is_quantity(text):
        return
    expected = reference_value(text)
    assert expected is not None and expected >= 0
    nano = Decimal("1e-9")
    assert parse(text) == min(Decimal(2**63 - 1), (expected / nano).to_integral_value("ROUND_CEILING") * nano)


@given(st.from_regex(r"\A\+?([0-9]{1,8}(\.[0-9]{0,4})?|\.[0-9]{1,4})(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]{1,2})?\Z"))
def test_every_quantity_of_the_grammar_is_read(text: str) -> None:
    assert len(text) <= MAX_CHARS and is_quantity(text)


def test_values_compare_as_the_api_server_writes_them_back() -> None:
    assert same("0.5Gi", "512Mi") and same("1000m", "1") and same(1, "1") and same("1e3", "1k")
    assert not same("1", "2") and not same("x", "1") and not same(True, "1")
