"""What a rule may contain: the ops, the built-in fields, and walking the tree."""

import datetime as dt
import re
from collections.abc import Iterator

TEXT_FIELDS = {"external_id", "email", "phone", "first_name", "last_name", "timezone", "locale"}
DATETIME_FIELDS = {"created_at", "updated_at", "last_seen_at"}
BUILTIN_FIELDS = TEXT_FIELDS | DATETIME_FIELDS

VALUE_OPS = {"eq", "neq", "in", "not_in", "contains", "starts_with"}
NUMBER_OPS = {"gt", "gte", "lt", "lte"}
DATE_OPS = {"before", "after", "within_last_days"}
PRESENCE_OPS = {"exists", "not_exists"}
OPS = VALUE_OPS | NUMBER_OPS | DATE_OPS | PRESENCE_OPS
TEXT_FIELD_OPS = VALUE_OPS | PRESENCE_OPS
DATETIME_FIELD_OPS = DATE_OPS | PRESENCE_OPS
COUNT_OPS = {"eq", "gt", "gte", "lt", "lte"}

# ISO 8601 dates and date-times, as attributes and properties store them.
ISO_DATETIME_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
)
ISO_DATETIME = re.compile(ISO_DATETIME_PATTERN)


def parse_iso(value) -> dt.datetime | None:
    """An ISO 8601 text as an aware date-time (UTC when no zone is given), else None."""
    if not isinstance(value, str) or not ISO_DATETIME.match(value):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def iter_leaves(rule) -> Iterator[dict]:
    if not isinstance(rule, dict):
        return
    if "all" in rule or "any" in rule:
        for child in rule.get("all", rule.get("any")) or []:
            yield from iter_leaves(child)
    elif "not" in rule:
        yield from iter_leaves(rule["not"])
    else:
        yield rule


def rule_has_time_window(rule) -> bool:
    """Whether membership can change by the clock alone (and so needs periodic refresh)."""
    for leaf in iter_leaves(rule):
        conditions = [leaf, *(leaf.get("where") or [])]
        if "within_days" in leaf or any(
            isinstance(c, dict) and c.get("op") == "within_last_days" for c in conditions
        ):
            return True
    return False
