"""The rule language evaluated in plain Python over one contact's facts.

Not used to serve traffic (SQL does that); it is the reference the SQL compiler is
tested against, with random contacts and rules (tests/segments/test_agreement.py).
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.segments.rules.spec import DATETIME_FIELDS, TEXT_FIELDS, parse_iso


@dataclass
class ContactFacts:
    fields: dict  # built-in fields: email, first_name, ..., created_at (datetime)
    attributes: dict
    events: list[tuple[str, dict, dt.datetime]] = field(default_factory=list)
    consents: dict[str, str] = field(default_factory=dict)  # channel -> status
    lists: set[str] = field(default_factory=set)  # slugs


def evaluate_rule(
    rule: dict,
    facts: ContactFacts,
    now: dt.datetime,
    segment_rule: Callable[[str], dict | None] = lambda slug: None,
) -> bool:
    if "all" in rule:
        return all(evaluate_rule(child, facts, now, segment_rule) for child in rule["all"])
    if "any" in rule:
        return any(evaluate_rule(child, facts, now, segment_rule) for child in rule["any"])
    if "not" in rule:
        return not evaluate_rule(rule["not"], facts, now, segment_rule)
    if "segment" in rule:
        return evaluate_rule(segment_rule(rule["segment"]), facts, now, segment_rule)
    if "attr" in rule:
        name = rule["attr"]
        if name in TEXT_FIELDS:
            value = facts.fields.get(name) or None
        elif name in DATETIME_FIELDS:
            value = facts.fields.get(name)
        else:
            value = facts.attributes.get(name)
        return _condition(
            value, rule["op"], rule.get("value"), now, builtin=name in DATETIME_FIELDS
        )
    if "event" in rule:
        return _event(rule, facts, now)
    if "consent" in rule:
        status = facts.consents.get(rule["consent"], "unknown")
        return status == rule.get("status", "subscribed")
    if "list" in rule:
        return rule["list"] in facts.lists
    raise ValueError(f"Unknown condition {rule!r}")


def _same(a, b) -> bool:
    """JSON equality: types must agree (True is not 1), numbers compare by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _condition(value, op: str, expected, now: dt.datetime, builtin: bool = False) -> bool:
    present = value is not None
    if op == "exists":
        return present
    if op == "not_exists":
        return not present
    if not present:
        return False
    if op == "eq":
        return _same(value, expected)
    if op == "neq":
        return not _same(value, expected)
    if op == "in":
        return any(_same(value, item) for item in expected)
    if op == "not_in":
        return not any(_same(value, item) for item in expected)
    if op in ("gt", "gte", "lt", "lte"):
        if not _is_number(value):
            return False
        return {"gt": value > expected, "gte": value >= expected, "lt": value < expected,
                "lte": value <= expected}[op]  # fmt: skip
    if op == "contains":
        if isinstance(value, str):
            return expected.lower() in value.lower()
        if isinstance(value, list):
            return any(_same(item, expected) for item in value)
        return False
    if op == "starts_with":
        return isinstance(value, str) and value.lower().startswith(expected.lower())
    moment = value if builtin else parse_iso(value)
    if moment is None:
        return False
    if op == "before":
        return moment < parse_iso(expected)
    if op == "after":
        return moment > parse_iso(expected)
    if op == "within_last_days":
        return now - dt.timedelta(days=expected) <= moment <= now
    raise ValueError(f"Unknown op {op}")


def _event(rule: dict, facts: ContactFacts, now: dt.datetime) -> bool:
    since = now - dt.timedelta(days=rule["within_days"]) if "within_days" in rule else None
    hits = 0
    for name, properties, occurred_at in facts.events:
        if name != rule["event"]:
            continue
        if since is not None and not (since <= occurred_at <= now):
            continue
        if properties_match(properties, rule.get("where", []), now):
            hits += 1
    checks = {"eq": hits.__eq__, "gt": hits.__gt__, "gte": hits.__ge__, "lt": hits.__lt__,
              "lte": hits.__le__}  # fmt: skip
    return all(checks[op](number) for op, number in rule.get("count", {"gte": 1}).items())


def properties_match(properties: dict, where: list[dict], now: dt.datetime) -> bool:
    """Whether an event's properties pass every `where` filter (as segments count them)."""
    return all(_condition(properties.get(c["prop"]), c["op"], c.get("value"), now) for c in where)
