"""Turning what partners send into the values Orchestra stores, or a clear reason why not."""

import datetime as dt

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from apps.accounts.models import KNOWN_TIMEZONES
from apps.contacts.choices import AttributeType

MAX_ID_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 200


class InvalidValue(ValueError):
    """A value that cannot be stored; the message says why, for the person who sent it."""


def normalize_email(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidValue(_("Must be a string."))
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidValue(
            _("%(value)s is not a valid email address.") % {"value": value}
        ) from None
    return email


def normalize_phone(value, region: str | None = None) -> str | None:
    """E.164 (+4520123456). Without a leading + the number is read in `region`, if given."""
    if value in (None, ""):
        return None
    if not isinstance(value, str | int):
        raise InvalidValue(_("Must be a string."))
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidValue(
            _("%(value)s is not a valid phone number (use the international form, +4520123456).")
            % {"value": value}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_identifier(value, field: str = "id") -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidValue(_("Must be a string."))
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise InvalidValue(_("At most %(n)d characters.") % {"n": MAX_ID_LENGTH})
    return text or None


def normalize_timezone(value) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value not in KNOWN_TIMEZONES:
        raise InvalidValue(
            _("%(value)s is not an IANA time zone such as Europe/Copenhagen.") % {"value": value}
        )
    return value


def normalize_text(value, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(_("Must be a string."))
    if len(value) > max_length:
        raise InvalidValue(_("At most %(n)d characters.") % {"n": max_length})
    return value.strip()


def parse_timestamp(value, default: dt.datetime | None = None) -> dt.datetime:
    """An ISO 8601 date-time; without a zone it is taken as UTC."""
    if value in (None, ""):
        if default is None:
            raise InvalidValue(_("A date and time is required."))
        return default
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            day = parse_date(value.strip()) if len(value.strip()) == 10 else None
            if day is None:
                raise InvalidValue(
                    _("%(value)s is not an ISO 8601 date and time.") % {"value": value}
                )
            parsed = dt.datetime.combine(day, dt.time())
    else:
        raise InvalidValue(_("Must be an ISO 8601 string."))
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


TRUE_WORDS = {"true", "yes", "y", "1", "ja", "j"}
FALSE_WORDS = {"false", "no", "n", "0", "nej"}


def coerce_attribute(text: str, kind: str):
    """A CSV cell as the attribute type chosen for its column (empty cells are None)."""
    text = text.strip()
    if text == "":
        return None
    if kind == AttributeType.STRING:
        return text
    if kind == AttributeType.NUMBER:
        # A single decimal comma, as Danish and Swedish spreadsheets write it, is a point.
        cleaned = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
        try:
            number = float(cleaned)
        except ValueError:
            raise InvalidValue(_("%(value)s is not a number.") % {"value": text}) from None
        return int(number) if cleaned.lstrip("+-").isdigit() else number
    if kind == AttributeType.BOOLEAN:
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise InvalidValue(_("%(value)s is not yes/no or true/false.") % {"value": text})
    if kind == AttributeType.DATE:
        day = parse_date(text)
        if day is None:
            raise InvalidValue(_("%(value)s is not a date (YYYY-MM-DD).") % {"value": text})
        return day.isoformat()
    if kind == AttributeType.DATETIME:
        return parse_timestamp(text).isoformat()
    raise InvalidValue(_("Unknown attribute type %(kind)s.") % {"kind": kind})


def check_attributes(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidValue(_("Must be an object of names and values."))
    for key in value:
        if not key or len(key) > 100:
            raise InvalidValue(_("Attribute names are 1 to 100 characters."))
    return value


def unstorable_strings(value) -> dict:
    """Errors when any text in the value (keys included) holds what PostgreSQL cannot
    store: a NUL character or a lone UTF-16 surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and _has_surrogate(item)):
                return {
                    "non_field_errors": [
                        _("Text may not contain NUL characters (\\u0000) or lone surrogates.")
                    ]
                }
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return {}


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
