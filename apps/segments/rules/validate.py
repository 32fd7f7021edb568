"""Checking a rule tree and naming every problem with where it is."""

from collections.abc import Callable

from django.utils.translation import gettext as _

from apps.segments.rules.spec import (
    BUILTIN_FIELDS,
    COUNT_OPS,
    DATE_OPS,
    DATETIME_FIELD_OPS,
    DATETIME_FIELDS,
    NUMBER_OPS,
    OPS,
    PRESENCE_OPS,
    TEXT_FIELD_OPS,
    TEXT_FIELDS,
    parse_iso,
)

MAX_DEPTH = 12
CONSENT_CHANNELS = {"email", "sms", "push"}
CONSENT_STATUSES = {"subscribed", "unsubscribed", "unknown"}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value) -> bool:
    return isinstance(value, str | int | float | bool)


def validate_rule(
    rule,
    *,
    segment_rule: Callable[[str], dict | None] | None = None,
    list_exists: Callable[[str], bool] | None = None,
    own_slug: str | None = None,
) -> list[str]:
    """Every problem in the rule, each as "where: what". Empty when the rule is good.

    `segment_rule(slug)` answers a nested segment's rule (None if unknown) so nested
    references and cycles are checked; `list_exists(slug)` checks list references.
    """
    problems: list[str] = []
    _check(rule, "rule", problems, segment_rule, list_exists, [own_slug] if own_slug else [], 0)
    return problems


def _check(rule, path, problems, segment_rule, list_exists, trail, depth):
    if depth > MAX_DEPTH:
        problems.append(_("%(path)s: nested too deeply.") % {"path": path})
        return
    if not isinstance(rule, dict):
        problems.append(_("%(path)s: must be an object.") % {"path": path})
        return
    groups = [key for key in ("all", "any", "not") if key in rule]
    if groups:
        if len(rule) != 1:
            problems.append(
                _("%(path)s: a group has one key (all, any or not), not %(keys)s.")
                % {"path": path, "keys": ", ".join(sorted(rule))}
            )
            return
        key = groups[0]
        if key == "not":
            _check(
                rule["not"], f"{path}.not", problems, segment_rule, list_exists, trail, depth + 1
            )
            return
        children = rule[key]
        if not isinstance(children, list):
            problems.append(_("%(path)s.%(key)s: must be a list.") % {"path": path, "key": key})
            return
        for index, child in enumerate(children):
            _check(child, f"{path}.{key}[{index}]", problems, segment_rule, list_exists, trail,
                   depth + 1)  # fmt: skip
        return
    if "attr" in rule:
        _check_condition(rule, "attr", path, problems, builtin=True)
    elif "event" in rule:
        _check_event(rule, path, problems)
    elif "consent" in rule:
        _check_keys(rule, {"consent", "status"}, path, problems)
        if rule["consent"] not in CONSENT_CHANNELS:
            problems.append(_("%(path)s.consent: unknown channel %(value)r; use %(options)s.")
                            % {"path": path, "value": rule["consent"],
                               "options": ", ".join(sorted(CONSENT_CHANNELS))})  # fmt: skip
        if rule.get("status", "subscribed") not in CONSENT_STATUSES:
            problems.append(_("%(path)s.status: unknown consent status %(value)r.")
                            % {"path": path, "value": rule.get("status")})  # fmt: skip
    elif "list" in rule:
        _check_keys(rule, {"list"}, path, problems)
        if not isinstance(rule["list"], str) or not rule["list"]:
            problems.append(_("%(path)s.list: give the list's slug.") % {"path": path})
        elif list_exists is not None and not list_exists(rule["list"]):
            problems.append(_("%(path)s.list: there is no list %(slug)r.")
                            % {"path": path, "slug": rule["list"]})  # fmt: skip
    elif "segment" in rule:
        _check_keys(rule, {"segment"}, path, problems)
        slug = rule["segment"]
        if not isinstance(slug, str) or not slug:
            problems.append(_("%(path)s.segment: give the segment's slug.") % {"path": path})
        elif slug in trail:
            cycle = " → ".join([*trail[trail.index(slug) :], slug])
            problems.append(_("%(path)s.segment: a cycle of segments: %(cycle)s.")
                            % {"path": path, "cycle": cycle})  # fmt: skip
        elif segment_rule is not None:
            nested = segment_rule(slug)
            if nested is None:
                problems.append(_("%(path)s.segment: there is no segment %(slug)r.")
                                % {"path": path, "slug": slug})  # fmt: skip
            else:
                inner: list[str] = []
                _check(nested, f"segment {slug}", inner, segment_rule, list_exists,
                       [*trail, slug], depth + 1)  # fmt: skip
                problems.extend(p for p in inner if "cycle" in p)
    else:
        problems.append(
            _("%(path)s: unknown condition; use attr, event, consent, list, segment, "
              "all, any or not.") % {"path": path}
        )  # fmt: skip


def _check_keys(rule: dict, allowed: set, path: str, problems: list) -> None:
    for key in sorted(set(rule) - allowed):
        problems.append(_("%(path)s: unknown key %(key)r.") % {"path": path, "key": key})


def _check_condition(rule: dict, name_key: str, path: str, problems: list, builtin: bool) -> None:
    """An attribute condition (or an event property condition when name_key is "prop")."""
    _check_keys(rule, {name_key, "op", "value"}, path, problems)
    name, op = rule.get(name_key), rule.get("op")
    if not isinstance(name, str) or not name:
        problems.append(_("%(path)s.%(key)s: give a name.") % {"path": path, "key": name_key})
        return
    if op not in OPS:
        problems.append(_("%(path)s.op: unknown op %(op)r; use one of %(ops)s.")
                        % {"path": path, "op": op, "ops": " ".join(sorted(OPS))})  # fmt: skip
        return
    if builtin and name in TEXT_FIELDS and op not in TEXT_FIELD_OPS:
        problems.append(_("%(path)s.op: %(op)s does not apply to the text field %(name)s.")
                        % {"path": path, "op": op, "name": name})  # fmt: skip
        return
    if builtin and name in DATETIME_FIELDS and op not in DATETIME_FIELD_OPS:
        problems.append(_("%(path)s.op: %(name)s is a date; use before, after, "
                          "within_last_days, exists or not_exists.")
                        % {"path": path, "name": name})  # fmt: skip
        return
    value = rule.get("value")
    problem = _value_problem(op, value, text_only=builtin and name in BUILTIN_FIELDS)
    if problem:
        problems.append(f"{path}.value: {problem}")


def _value_problem(op: str, value, text_only: bool) -> str | None:
    if op in PRESENCE_OPS:
        return None if value is None else _("%(op)s takes no value.") % {"op": op}
    if op in NUMBER_OPS:
        return None if _is_number(value) else _("%(op)s needs a number.") % {"op": op}
    if op == "within_last_days":
        return None if _is_number(value) and value >= 0 else _("needs a number of days.")
    if op in DATE_OPS:
        return None if parse_iso(value) else _("%(op)s needs an ISO 8601 date.") % {"op": op}
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(map(_is_scalar, value)):
            return _("%(op)s needs a list of values.") % {"op": op}
        if text_only and not all(isinstance(v, str) for v in value):
            return _("this field holds text; give text values.")
        return None
    if op in ("contains", "starts_with"):
        return None if isinstance(value, str) and value else _("needs some text.")
    if not _is_scalar(value):
        return _("%(op)s needs a text, number or true/false value.") % {"op": op}
    if text_only and not isinstance(value, str):
        return _("this field holds text; give a text value.")
    return None


def _check_event(rule: dict, path: str, problems: list) -> None:
    _check_keys(rule, {"event", "count", "within_days", "where"}, path, problems)
    if not isinstance(rule["event"], str) or not rule["event"]:
        problems.append(_("%(path)s.event: give the event name.") % {"path": path})
    count = rule.get("count", {"gte": 1})
    if not isinstance(count, dict) or not count:
        problems.append(_('%(path)s.count: an object such as {"gte": 2}.') % {"path": path})
    else:
        for op, number in count.items():
            if op not in COUNT_OPS:
                problems.append(_("%(path)s.count: unknown op %(op)r; use %(ops)s.")
                                % {"path": path, "op": op,
                                   "ops": ", ".join(sorted(COUNT_OPS))})  # fmt: skip
            elif not isinstance(number, int) or isinstance(number, bool) or number < 0:
                problems.append(_("%(path)s.count.%(op)s: a whole number, 0 or more.")
                                % {"path": path, "op": op})  # fmt: skip
    if "within_days" in rule:
        days = rule["within_days"]
        if not _is_number(days) or days <= 0:
            problems.append(_("%(path)s.within_days: a number of days above 0.") % {"path": path})
    where = rule.get("where", [])
    if not isinstance(where, list):
        problems.append(_("%(path)s.where: a list of property conditions.") % {"path": path})
        return
    for index, condition in enumerate(where):
        where_path = f"{path}.where[{index}]"
        if not isinstance(condition, dict):
            problems.append(_("%(path)s: must be an object.") % {"path": where_path})
        else:
            _check_condition(condition, "prop", where_path, problems, builtin=False)
