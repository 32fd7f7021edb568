"""What the journey builder works with: the node types it offers (with their labels, help
and a starting point for a new node), the data the canvas page hands to its script, and the
problems of a refused graph sorted by the node they concern."""

import json
import re
from dataclasses import dataclass

from django.db.models import Sum
from django.db.models.fields.json import KeyTextTransform
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.journeys.graph import branches_of, parse_duration
from apps.journeys.models import Journey, NodeStats
from apps.journeys.services import journeys as services
from apps.journeys.services.canvas_labels import canvas_labels
from apps.segments.forms import describe_rule


@dataclass(frozen=True)
class NodeType:
    type: str
    label: str
    help: str
    defaults: dict


# In the palette's order: messages first, then timing, branching, data and the ends.
NODE_TYPES = [
    NodeType(
        "send",
        _("Send message"),
        _("Send an email, SMS, push or webhook message from one of your templates."),
        {"channel": "email", "template": ""},
    ),
    NodeType(
        "wait",
        _("Wait"),
        _("Wait a while, until a time of day, or until the contact does something."),
        {"duration": "P1D"},
    ),
    NodeType(
        "condition",
        _("Yes/no split"),
        _("Send contacts who match a rule one way (yes) and the others the other (no)."),
        {"rule": {"all": []}},
    ),
    NodeType(
        "split",
        _("Multi-way split"),
        _("Send contacts down the first path whose rule they match, or else."),
        {"branches": [{"name": "path_1", "rule": {"all": []}}]},
    ),
    NodeType(
        "random_split",
        _("A/B split"),
        _("Send contacts down random paths by percentage, to test what works."),
        {"weights": {"a": 50, "b": 50}},
    ),
    NodeType(
        "update_attribute",
        _("Update attribute"),
        _("Set or remove an attribute on the contact."),
        {"attribute": "", "value": ""},
    ),
    NodeType(
        "add_to_list", _("Add to list"), _("Add the contact to one of your lists."), {"list": ""}
    ),
    NodeType(
        "remove_from_list",
        _("Remove from list"),
        _("Remove the contact from one of your lists."),
        {"list": ""},
    ),
    NodeType(
        "webhook", _("Webhook"), _("Post the contact to another system's URL."), {"url": "https://"}
    ),
    NodeType(
        "goal",
        _("Goal"),
        _(
            "The conversion: contacts anywhere in the journey jump here when they do the "
            "goal's event."
        ),
        {"event": "purchase"},
    ),
    NodeType("exit", _("Exit"), _("The contact leaves the journey here."), {}),
]
NODE_TYPES_BY_KEY = {node_type.type: node_type for node_type in NODE_TYPES}


# Durations in words and as a number and a unit -------------------------------------------

DURATION_UNITS = [
    ("minutes", _("minutes")),
    ("hours", _("hours")),
    ("days", _("days")),
    ("weeks", _("weeks")),
]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400}


def iso_duration(number: int, unit: str) -> str:
    """5 hours -> "PT5H", 3 days -> "P3D", 2 weeks -> "P2W"."""
    return {
        "minutes": f"PT{number}M",
        "hours": f"PT{number}H",
        "days": f"P{number}D",
        "weeks": f"P{number}W",
    }[unit]


def split_duration(text) -> tuple[int | None, str]:
    """ "P2W" -> (2, "weeks"), "PT90M" -> (90, "minutes"): the largest exact unit."""
    delta = parse_duration(text)
    if delta is None or not delta.total_seconds():
        return None, "days"
    seconds = int(delta.total_seconds())
    if isinstance(text, str) and re.fullmatch(r"P\d+W", text):
        return seconds // UNIT_SECONDS["weeks"], "weeks"
    for unit in ("days", "hours", "minutes"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return seconds // UNIT_SECONDS[unit], unit
    return max(seconds // 60, 1), "minutes"


def duration_words(text) -> str:
    number, unit = split_duration(text)
    if number is None:
        return str(text or "?")
    words = {
        "minutes": ngettext("%(n)s minute", "%(n)s minutes", number),
        "hours": ngettext("%(n)s hour", "%(n)s hours", number),
        "days": ngettext("%(n)s day", "%(n)s days", number),
        "weeks": ngettext("%(n)s week", "%(n)s weeks", number),
    }
    return words[unit] % {"n": number}


# A node in a few words ---------------------------------------------------------------------


def describe_node(node: dict) -> str:
    """What the node does, in a few words ("Email welcome-1", "2 days", "until purchase,
    at most 5 days"), for the steps editor's lists and the version history."""
    kind = node.get("type")
    if kind == "send":
        channels = node.get("channels") or ([node["channel"]] if node.get("channel") else [])
        template = node.get("template")
        templates = template if isinstance(template, dict) else dict.fromkeys(channels, template)
        labels = dict(ChannelType.choices)
        parts = [f"{labels.get(c, c)} {templates.get(c) or '?'}" for c in channels]
        return gettext(", else ").join(parts)
    if kind == "wait":
        if node.get("until_event"):
            return gettext("until %(event)s, at most %(timeout)s") % {
                "event": node["until_event"],
                "timeout": duration_words(node.get("timeout")),
            }
        if node.get("until_time"):
            return gettext("until %(time)s") % {"time": node["until_time"]}
        return duration_words(node.get("duration"))
    if kind == "condition":
        return describe_rule(node.get("rule"))
    if kind == "split":
        names = [str(b.get("name")) for b in node.get("branches") or [] if isinstance(b, dict)]
        return ", ".join([*names, "else"])
    if kind == "random_split":
        weights = node.get("weights") if isinstance(node.get("weights"), dict) else {}
        return " · ".join(f"{name} {weight}" for name, weight in weights.items())
    if kind == "update_attribute":
        if node.get("value") is None:
            return gettext("remove %(attribute)s") % {"attribute": node.get("attribute")}
        return f"{node.get('attribute')} = {json.dumps(node.get('value'), ensure_ascii=False)}"
    if kind in ("add_to_list", "remove_from_list"):
        return str(node.get("list") or "")
    if kind == "webhook":
        return str(node.get("url") or "")
    if kind == "goal":
        return str(node.get("event") or "")
    return ""


def node_type_label(kind: str) -> str:
    node_type = NODE_TYPES_BY_KEY.get(kind)
    return str(node_type.label) if node_type else str(kind)


def node_types() -> list[dict]:
    """The palette as the canvas script takes it (labels translated here)."""
    return [
        {
            "type": node_type.type,
            "label": str(node_type.label),
            "help": str(node_type.help),
            "defaults": node_type.defaults,
            "branches": _branches(branches_of({"type": node_type.type, **node_type.defaults})),
        }
        for node_type in NODE_TYPES
    ]


def new_node(kind: str, node_ids) -> dict:
    """A node of that type with its defaults and an id like the canvas gives (send_3)."""
    taken = set(node_ids)
    number = 1
    while f"{kind}_{number}" in taken:
        number += 1
    return {"id": f"{kind}_{number}", "type": kind, **NODE_TYPES_BY_KEY[kind].defaults}


def _branches(branches) -> list[str] | None:
    return list(branches) if branches is not None else None


def builder_urls(journey: Journey) -> dict[str, str]:
    pk = journey.pk
    api = reverse("api:journey-detail", args=[pk])
    return {
        "api": api,
        **{
            action: reverse(f"api:journey-{action}", args=[pk])
            for action in ("publish", "pause", "resume", "archive", "stats")
        },
        "node_form": reverse("journeys:node_form", args=[pk]),
        "settings_form": reverse("journeys:settings_form", args=[pk]),
        "test": reverse("journeys:test", args=[pk]),
        "forecast": reverse("journeys:forecast", args=[pk]),
        "versions": reverse("journeys:versions", args=[pk]),
    }


def builder_data(
    journey: Journey,
    graph: dict,
    *,
    readonly: bool,
    diff: dict | None = None,
    removed_nodes: list[dict] | None = None,
) -> dict:
    """The #journey-data the canvas script starts from (the contract in the builder's
    docs): the graph, each node's branches, the palette, an optional diff, and the URLs."""
    nodes = [node for node in graph.get("nodes") or [] if isinstance(node, dict)]
    return {
        "id": journey.pk,
        "name": journey.name,
        "status": journey.status,
        "readonly": readonly,
        "graph": graph,
        "branches": {str(node.get("id")): _branches(branches_of(node)) for node in nodes},
        "node_types": node_types(),
        "diff": diff,
        "removed_nodes": removed_nodes or [],
        "urls": builder_urls(journey),
        "labels": canvas_labels(),
    }


def problems_by_node(workspace, graph, fallback: list[str]) -> tuple[dict[str, list], list]:
    """(problems by node id, problems of the journey as a whole) for a refused graph.
    `fallback` (the refusal's own words) stands for the journey when the graph itself
    validates, as when an archived journey refuses any change."""
    problems = services.check(workspace, graph).by_node
    if not problems:
        return {}, list(fallback)
    nodes = {node: messages for node, messages in problems.items() if node}
    return nodes, problems.get("", [])


def enrolled_counts(workspace) -> dict[int, int]:
    """{journey id: contacts enrolled so far} for the workspace's journeys, in one query:
    the engine's counters at each version's start node (never a count of enrollments)."""
    rows = (
        NodeStats.objects.filter(
            journey__workspace=workspace, node_id=KeyTextTransform("start", "version__graph")
        )
        .values("journey_id")
        .annotate(enrolled=Sum("entered"))
    )
    return {row["journey_id"]: row["enrolled"] for row in rows}


def simulation_steps(graph: dict, result) -> list[dict]:
    """The simulated path as the test panel lists it: each step's node in words and what
    happened there."""
    from apps.journeys.choices import StepOutcome

    nodes = {str(n.get("id")): n for n in graph.get("nodes") or [] if isinstance(n, dict)}
    outcomes = dict(StepOutcome.choices)
    rows = []
    for step in result.path:
        node = nodes.get(step["node"], {})
        rows.append(
            {
                "node": step["node"],
                "label": node_type_label(node.get("type")),
                "summary": describe_node(node),
                "outcome": str(outcomes.get(step["outcome"], step["outcome"])),
                "detail": step.get("detail", ""),
                "at": step.get("at"),
            }
        )
    return rows
