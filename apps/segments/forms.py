"""The segment builder's form and vocabulary, and the rule read back in words.

The rule travels as JSON (the contract of DESIGN.md) in a hidden field, so the server
checks exactly what the API would (services.create_segment / update_segment). The
vocabulary below (fields, ops and their labels) feeds both the builder's pickers and
the sentence on the segment page, so the two always say the same thing.
"""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from apps.accounts.models import Workspace
from apps.contacts.choices import ConsentChannel, ConsentStatus
from apps.contacts.models import ContactList
from apps.segments import services
from apps.segments.models import Segment
from apps.segments.rules import BUILTIN_FIELDS, iter_leaves

EMPTY_RULE = {"all": []}


def rule_field() -> forms.JSONField:
    return forms.JSONField(
        label=gettext_lazy("Rule"),
        widget=forms.HiddenInput,
        error_messages={"required": gettext_lazy("Build a rule first.")},
    )


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    rule = rule_field()


class RuleForm(forms.Form):
    """Only the rule, as the builder's live preview posts it."""

    rule = rule_field()


# The vocabulary ---------------------------------------------------------------------

BUILTIN_FIELD_LABELS = {
    "email": gettext_lazy("email"),
    "first_name": gettext_lazy("first name"),
    "last_name": gettext_lazy("last name"),
    "phone": gettext_lazy("phone"),
    "external_id": gettext_lazy("external id"),
    "timezone": gettext_lazy("time zone"),
    "locale": gettext_lazy("locale"),
    "created_at": gettext_lazy("created"),
    "updated_at": gettext_lazy("updated"),
    "last_seen_at": gettext_lazy("last seen"),
}
DATE_BUILTINS = {"created_at", "updated_at", "last_seen_at"}

# What each kind of value can be compared with; the first op is the builder's default.
# Built-in text fields take text ops only and built-in dates date ops only, as
# rules/validate.py requires; "any" is for a name typed by hand, whose type is unknown.
OPS_BY_TYPE = {
    "text": ["eq", "neq", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
    "number": ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "not_exists"],
    "boolean": ["eq", "neq", "exists", "not_exists"],
    "date": ["within_last_days", "before", "after", "exists", "not_exists"],
    "list": ["contains", "exists", "not_exists"],
    "object": ["exists", "not_exists"],
    "any": ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with",
            "before", "after", "within_last_days", "exists", "not_exists"],
}  # fmt: skip
OP_LABELS = {
    "eq": gettext_lazy("equals"),
    "neq": gettext_lazy("does not equal"),
    "gt": gettext_lazy("is more than"),
    "gte": gettext_lazy("is at least"),
    "lt": gettext_lazy("is less than"),
    "lte": gettext_lazy("is at most"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "starts_with": gettext_lazy("starts with"),
    "before": gettext_lazy("is before"),
    "after": gettext_lazy("is after"),
    "within_last_days": gettext_lazy("is within the last"),
    "exists": gettext_lazy("is set"),
    "not_exists": gettext_lazy("is not set"),
}
# In a sentence, comparisons of numbers read best as signs: "amount > 100".
OP_SIGNS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
COUNT_OP_LABELS = {
    "gte": gettext_lazy("at least"),
    "lte": gettext_lazy("at most"),
    "eq": gettext_lazy("exactly"),
    "gt": gettext_lazy("more than"),
    "lt": gettext_lazy("fewer than"),
}
SEEN_TYPE_LABELS = {
    "text": gettext_lazy("text"),
    "number": gettext_lazy("number"),
    "boolean": gettext_lazy("yes/no"),
    "date": gettext_lazy("date"),
    "list": gettext_lazy("list"),
    "object": gettext_lazy("object"),
    "any": gettext_lazy("any type"),
}
KIND_LABELS = {
    "attr": gettext_lazy("Attribute"),
    "event": gettext_lazy("Event"),
    "consent": gettext_lazy("Consent"),
    "list": gettext_lazy("List"),
    "segment": gettext_lazy("Segment"),
}
# Every word the builder shows; segment_builder.js has none of its own.
BUILDER_LABELS = {
    "match": gettext_lazy("Match"),
    "all": gettext_lazy("all of these"),
    "any": gettext_lazy("any of these"),
    "not": gettext_lazy("NOT"),
    "notHint": gettext_lazy("Match contacts that do not meet this"),
    "emptyGroup": gettext_lazy("No conditions yet: every contact matches."),
    "emptyAnyGroup": gettext_lazy("No conditions yet: no contact matches."),
    "addCondition": gettext_lazy("Add condition"),
    "addGroup": gettext_lazy("Add group"),
    "removeCondition": gettext_lazy("Remove this condition"),
    "removeGroup": gettext_lazy("Remove this group"),
    "kind": gettext_lazy("Condition type"),
    "field": gettext_lazy("Attribute or field"),
    "seenAttributes": gettext_lazy("Attributes seen in this workspace"),
    "builtinFields": gettext_lazy("Built-in fields"),
    "otherAttribute": gettext_lazy("Another attribute…"),
    "attributeName": gettext_lazy("Attribute name"),
    "op": gettext_lazy("Comparison"),
    "value": gettext_lazy("Value"),
    "listValue": gettext_lazy("Values, separated by commas"),
    "yes": gettext_lazy("true"),
    "no": gettext_lazy("false"),
    "days": gettext_lazy("days"),
    "eventName": gettext_lazy("Event name"),
    "otherEvent": gettext_lazy("Another event…"),
    "noEventsSeen": gettext_lazy("No events recorded yet"),
    "countOp": gettext_lazy("How often"),
    "times": gettext_lazy("times"),
    "inTheLast": gettext_lazy("in the last"),
    "anyTime": gettext_lazy("any"),
    "withinDays": gettext_lazy("Within the last number of days (empty: ever)"),
    "where": gettext_lazy("where"),
    "and": gettext_lazy("and"),
    "addProperty": gettext_lazy("Add property condition"),
    "propertyName": gettext_lazy("Property"),
    "removeProperty": gettext_lazy("Remove this property condition"),
    "channel": gettext_lazy("Channel"),
    "consentIs": gettext_lazy("consent is"),
    "status": gettext_lazy("Consent status"),
    "inList": gettext_lazy("is in the list"),
    "list": gettext_lazy("List"),
    "noLists": gettext_lazy("No lists yet"),
    "inSegment": gettext_lazy("is in the segment"),
    "segment": gettext_lazy("Segment"),
    "noSegments": gettext_lazy("No other segments yet"),
}


def builder_config(workspace: Workspace, segment: Segment | None = None) -> dict:
    """What the builder offers: the fields and events the workspace has seen, its lists and
    other segments, the ops for each type, and every label (translated here)."""
    seen = [
        {"name": a.name, "label": a.name, "type": a.type, "builtin": False}
        for a in services.known_attributes(workspace)
        if a.name not in BUILTIN_FIELDS
    ]
    builtins = [
        {"name": name, "label": str(label), "builtin": True,
         "type": "date" if name in DATE_BUILTINS else "text"}
        for name, label in BUILTIN_FIELD_LABELS.items()
    ]  # fmt: skip
    other_segments = Segment.objects.for_workspace(workspace).order_by("name")
    if segment is not None:
        other_segments = other_segments.exclude(pk=segment.pk)
    return {
        "fields": seen + builtins,
        "events": services.known_event_names(workspace),
        "lists": [
            {"slug": slug, "name": name}
            for slug, name in ContactList.objects.for_workspace(workspace)
            .order_by("name")
            .values_list("slug", "name")
        ],
        "segments": [
            {"slug": slug, "name": name}
            for slug, name in other_segments.values_list("slug", "name")
        ],
        "opsByType": OPS_BY_TYPE,
        "opLabels": _strings(OP_LABELS),
        "countOpLabels": _strings(COUNT_OP_LABELS),
        "typeLabels": _strings(SEEN_TYPE_LABELS),
        "kindLabels": _strings(KIND_LABELS),
        "channels": [[value, str(label)] for value, label in ConsentChannel.choices],
        "statuses": [[value, str(label)] for value, label in ConsentStatus.choices],
        "labels": _strings(BUILDER_LABELS),
    }


def _strings(labels: dict) -> dict[str, str]:
    return {key: str(label) for key, label in labels.items()}


# The rule in words ------------------------------------------------------------------


def rule_in_words(workspace: Workspace, rule) -> str:
    """The rule as a sentence for the segment page, naming lists and segments by name."""
    leaves = list(iter_leaves(rule))
    list_slugs = {leaf["list"] for leaf in leaves if isinstance(leaf.get("list"), str)}
    segment_slugs = {leaf["segment"] for leaf in leaves if isinstance(leaf.get("segment"), str)}
    list_names = segment_names = {}
    if list_slugs:
        list_names = dict(
            ContactList.objects.for_workspace(workspace)
            .filter(slug__in=list_slugs)
            .values_list("slug", "name")
        )
    if segment_slugs:
        segment_names = dict(
            Segment.objects.for_workspace(workspace)
            .filter(slug__in=segment_slugs)
            .values_list("slug", "name")
        )
    return describe_rule(rule, list_names=list_names, segment_names=segment_names)


def describe_rule(rule, *, list_names=None, segment_names=None, nested: bool = False) -> str:
    """The rule as one sentence, groups joined by AND / OR and nested groups in brackets:
    "plan equals pro AND purchase at least 2 times in the last 30 days where amount > 100"."""
    names = {"list_names": list_names or {}, "segment_names": segment_names or {}}
    if not isinstance(rule, dict):
        return "?"
    for key, joiner in (("all", _("AND")), ("any", _("OR"))):
        if key in rule:
            children = rule[key] if isinstance(rule[key], list) else []
            if not children:
                return _("every contact") if key == "all" else _("no contact")
            parts = [describe_rule(child, **names, nested=True) for child in children]
            text = f" {joiner} ".join(parts)
            return f"({text})" if nested and len(parts) > 1 else text
    if "not" in rule:
        condition = describe_rule(rule["not"], **names, nested=True)
        return _("NOT %(condition)s") % {"condition": condition}
    if "attr" in rule:
        name = rule["attr"]
        return _condition_words(str(BUILTIN_FIELD_LABELS.get(name, name)), rule)
    if "event" in rule:
        return _event_words(rule)
    if "consent" in rule:
        channel = dict(ConsentChannel.choices).get(rule["consent"], rule["consent"])
        status = dict(ConsentStatus.choices).get(rule.get("status", "subscribed"), "?")
        return _("%(channel)s consent is %(status)s") % {
            "channel": channel,
            "status": str(status).lower(),
        }
    if "list" in rule:
        slug = rule["list"]
        return _("in the list %(name)s") % {"name": names["list_names"].get(slug, slug)}
    if "segment" in rule:
        slug = rule["segment"]
        return _("in the segment %(name)s") % {"name": names["segment_names"].get(slug, slug)}
    return "?"


def _condition_words(name: str, condition: dict) -> str:
    op, value = condition.get("op"), condition.get("value")
    if op in ("exists", "not_exists"):
        return f"{name} {OP_LABELS[op]}"
    if op == "within_last_days":
        return ngettext(
            "%(name)s is within the last %(days)s day",
            "%(name)s is within the last %(days)s days",
            value if isinstance(value, int) else 2,
        ) % {"name": name, "days": _value_words(value)}
    label = OP_SIGNS.get(op) or OP_LABELS.get(op, op)
    return f"{name} {label} {_value_words(value)}"


def _event_words(rule: dict) -> str:
    count = rule.get("count", {"gte": 1})
    counts = []
    if isinstance(count, dict):
        for op, number in count.items():
            times = (
                _("once")
                if number == 1
                else ngettext("%(count)s time", "%(count)s times", number) % {"count": number}
            )
            counts.append(f"{COUNT_OP_LABELS.get(op, op)} {times}")
    words = [str(rule.get("event")), f" {_('and')} ".join(counts)]
    if "within_days" in rule:
        days = rule["within_days"]
        words.append(
            ngettext("in the last %(days)s day", "in the last %(days)s days",
                     days if isinstance(days, int) else 2) % {"days": _value_words(days)}
        )  # fmt: skip
    where = [c for c in rule.get("where") or [] if isinstance(c, dict)]
    if where:
        conditions = f" {_('and')} ".join(_condition_words(str(c.get("prop")), c) for c in where)
        words.append(_("where %(conditions)s") % {"conditions": conditions})
    return " ".join(word for word in words if word)


def _value_words(value) -> str:
    if isinstance(value, bool):
        return _("true") if value else _("false")
    if isinstance(value, list):
        return ", ".join(_value_words(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
