import datetime as dt

import pytest

from apps.contacts.normalize import (
    InvalidValue,
    coerce_attribute,
    normalize_email,
    normalize_phone,
    parse_timestamp,
)


def test_emails_are_trimmed_and_lower_cased():
    assert normalize_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalize_email("") is None
    with pytest.raises(InvalidValue, match="not a valid email"):
        normalize_email("ann@")


def test_phones_become_e164():
    assert normalize_phone("+45 20 12 34 56") == "+4520123456"
    assert normalize_phone("20 12 34 56", region="DK") == "+4520123456"
    with pytest.raises(InvalidValue, match="international form"):
        normalize_phone("12345")


def test_timestamps_without_a_zone_are_utc():
    assert parse_timestamp("2026-01-02T03:04:05") == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_timestamp("2026-01-02").date() == dt.date(2026, 1, 2)
    with pytest.raises(InvalidValue):
        parse_timestamp("02/01/2026")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("42", "number", 42),
        ("4,5", "number", 4.5),
        ("-3.25", "number", -3.25),
        ("ja", "boolean", True),
        ("false", "boolean", False),
        ("2026-05-01", "date", "2026-05-01"),
        (" pro ", "string", "pro"),
        ("", "number", None),
    ],
)
def test_csv_cells_become_typed_attributes(text, kind, value):
    assert coerce_attribute(text, kind) == value


def test_bad_cells_say_why():
    with pytest.raises(InvalidValue, match="not a number"):
        coerce_attribute("12 kr", "number")
    with pytest.raises(InvalidValue, match="yes/no"):
        coerce_attribute("maybe", "boolean")
