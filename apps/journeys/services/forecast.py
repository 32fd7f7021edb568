"""The forecast shown before publishing: about how many contacts would reach each node of a
journey in its first week.

Entries come from the entry's audience as it is now: an event entry counts the contacts who
did the event in the last 7 days; a segment entry the contacts who entered the segment in
the last 7 days (or, failing that, its current size); a date entry the contacts whose date
falls in the next 7 days; an API entry the enrollments of the last 7 days. They then flow
down the graph: A/B splits by their weights, yes/no and multi-way splits by the share of
the workspace's contacts each rule matches now, a wait for an event by the share of contacts
who did that event in the last 30 days (the rest time out). Time adds up along each path
from the contact's entry; whoever would still be waiting after 7 days stops there. Goals
and exits end the flow (a goal goes on along its edge if it has one).
"""

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass, field

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Contact, Event
from apps.journeys.graph import branches_of, parse_duration
from apps.journeys.models import Enrollment, Journey
from apps.segments import services as segments
from apps.segments.models import Segment, SegmentMembership

WEEK = dt.timedelta(days=7)
EVENT_SHARE_WINDOW = dt.timedelta(days=30)
TIME_OF_DAY_WAIT = dt.timedelta(days=1)  # a wait until a time of day lasts at most a day
MAX_STEPS = 20_000  # loops (always through a wait) end when their time runs out; this is a guard
SMALLEST_FLOW = 1e-6

DATE_SQL = """
SELECT count(*) FROM contacts_contact c
WHERE c.workspace_id = %(workspace)s
  AND c.attributes ->> %(attribute)s ~ '^\\d{4}-\\d{2}-\\d{2}'
  AND {window}
"""
EXACT_WINDOW = (
    "left(c.attributes ->> %(attribute)s, 10)::date + %(offset)s "
    "BETWEEN %(first)s::date AND %(last)s::date"
)
YEARLY_WINDOW = (
    "to_char(left(c.attributes ->> %(attribute)s, 10)::date + %(offset)s, 'MM-DD') = ANY(%(days)s)"
)


@dataclass
class Forecast:
    entries: int
    basis: str
    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "entries": self.entries,
            "basis": self.basis,
            "nodes": self.nodes,
            "edges": self.edges,
        }


def forecast(journey: Journey, graph: dict, now: dt.datetime | None = None) -> Forecast:
    now = now or timezone.now()
    graph = graph if isinstance(graph, dict) else {}
    entries, basis = estimate_entries(journey, graph.get("entry"), now)
    flow = _Flow(journey.workspace, graph, now)
    flow.run(entries)
    return Forecast(
        entries=entries,
        basis=basis,
        nodes={node_id: _whole(n) for node_id, n in flow.nodes.items()},
        edges={key: _whole(n) for key, n in flow.edges.items()},
    )


def _whole(number: float) -> int:
    return math.floor(number + 0.5)


# Entries ------------------------------------------------------------------------------------


def estimate_entries(journey: Journey, entry, now: dt.datetime) -> tuple[int, str]:
    """(contacts entering in the first 7 days, how that was estimated)."""
    workspace = journey.workspace
    entry = entry if isinstance(entry, dict) else {}
    kind = entry.get("type")
    week_ago = now - WEEK
    if kind == "event":
        name = str(entry.get("event") or "")
        count = (
            Event.objects.for_workspace(workspace)
            .filter(name=name, occurred_at__gte=week_ago, occurred_at__lte=now)
            .values("contact_id")
            .distinct()
            .count()
        )
        return count, _("The contacts who did “%(event)s” in the last 7 days.") % {"event": name}
    if kind == "segment_entered":
        slug = str(entry.get("segment") or "")
        count = (
            Event.objects.for_workspace(workspace)
            .filter(
                name="segment_entered",
                properties__segment=slug,
                occurred_at__gte=week_ago,
                occurred_at__lte=now,
            )
            .values("contact_id")
            .distinct()
            .count()
        )
        if count:
            return count, _(
                "The contacts who entered the segment %(segment)s in the last 7 days."
            ) % {"segment": slug}
        segment = Segment.objects.for_workspace(workspace).filter(slug=slug).first()
        size = SegmentMembership.objects.filter(segment=segment).count() if segment else 0
        return size, _(
            "Nobody entered the segment %(segment)s in the last 7 days: its current size."
        ) % {"segment": slug}
    if kind == "date_attribute":
        return _date_entries(workspace, entry, now)
    if kind == "api":
        count = Enrollment.objects.filter(journey=journey, entered_at__gte=week_ago).count()
        return count, _("The contacts enrolled through the API in the last 7 days.")
    return 0, _("The journey has no entry yet.")


def _date_entries(workspace, entry: dict, now: dt.datetime) -> tuple[int, str]:
    attribute = str(entry.get("attribute") or "")
    offset = entry.get("offset_days", 0)
    offset = offset if isinstance(offset, int) and not isinstance(offset, bool) else 0
    yearly = bool(entry.get("yearly"))
    today = now.astimezone(zoneinfo.ZoneInfo(workspace.timezone or "UTC")).date()
    days = [today + dt.timedelta(days=n) for n in range(7)]
    params = {
        "workspace": workspace.pk,
        "attribute": attribute,
        "offset": offset,
        "first": days[0].isoformat(),
        "last": days[-1].isoformat(),
        "days": [day.strftime("%m-%d") for day in days],
    }
    sql = DATE_SQL.replace("{window}", YEARLY_WINDOW if yearly else EXACT_WINDOW)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.fetchone()[0]
    except DataError:
        # A text shaped like a date that is none (2024-02-30) fails the cast for the whole
        # query: then the dates are checked here one by one.
        count = _date_entries_one_by_one(workspace, attribute, offset, yearly, days)
    if yearly:
        basis = _("The contacts whose %(attribute)s (any year) falls in the next 7 days.")
    elif offset:
        basis = _("The contacts whose %(attribute)s, %(offset)+d days, falls in the next 7 days.")
    else:
        basis = _("The contacts whose %(attribute)s falls in the next 7 days.")
    return count, basis % {"attribute": attribute, "offset": offset}


def _date_entries_one_by_one(workspace, attribute, offset, yearly, days) -> int:
    wanted = {day.strftime("%m-%d") for day in days} if yearly else set(days)
    count = 0
    values = (
        Contact.objects.for_workspace(workspace)
        .filter(**{f"attributes__{attribute}__regex": r"^\d{4}-\d{2}-\d{2}"})
        .values_list(f"attributes__{attribute}", flat=True)
    )
    for value in values.iterator(chunk_size=2000):
        try:
            date = dt.date.fromisoformat(str(value)[:10]) + dt.timedelta(days=offset)
        except ValueError:
            continue
        count += (date.strftime("%m-%d") if yearly else date) in wanted
    return count


# The flow -----------------------------------------------------------------------------------


class _Flow:
    """Contacts as amounts flowing from node to node, each amount with the time it has
    taken since entry; shares are computed once per node."""

    def __init__(self, workspace, graph: dict, now: dt.datetime):
        self.workspace = workspace
        self.now = now
        self.nodes_by_id = {
            str(node["id"]): node
            for node in graph.get("nodes") or []
            if isinstance(node, dict) and "id" in node
        }
        self.start = graph.get("start")
        self.targets: dict[tuple[str, str | None], str] = {}
        for edge in graph.get("edges") or []:
            if isinstance(edge, dict) and edge.get("to") in self.nodes_by_id:
                branch = edge.get("branch")
                key = (str(edge.get("from")), None if branch is None else str(branch))
                self.targets.setdefault(key, str(edge["to"]))
        # Every node and edge is answered, those no one reaches with 0.
        self.nodes: dict[str, float] = dict.fromkeys(self.nodes_by_id, 0.0)
        self.edges: dict[str, float] = {
            f"{source}:{branch or ''}": 0.0 for source, branch in self.targets
        }
        self._shares: dict[str, dict[str | None, float]] = {}
        self._total: int | None = None

    def run(self, entries: float) -> None:
        if self.start not in self.nodes_by_id or entries <= 0:
            return
        pending = [(self.start, float(entries), dt.timedelta(0))]
        steps = 0
        while pending and steps < MAX_STEPS:
            steps += 1
            node_id, amount, elapsed = pending.pop()
            self.nodes[node_id] = self.nodes.get(node_id, 0.0) + amount
            for branch, share, delay in self._ways_on(self.nodes_by_id[node_id]):
                target = self.targets.get((node_id, branch))
                moving = amount * share
                if target is None or moving < SMALLEST_FLOW or elapsed + delay > WEEK:
                    continue
                key = f"{node_id}:{branch or ''}"
                self.edges[key] = self.edges.get(key, 0.0) + moving
                pending.append((target, moving, elapsed + delay))

    def _ways_on(self, node: dict) -> list[tuple[str | None, float, dt.timedelta]]:
        """(branch, share of the contacts taking it, time it takes) for each way on."""
        kind = node.get("type")
        if kind == "exit":
            return []
        if kind == "wait":
            if node.get("until_event"):
                share = self._event_share(str(node["until_event"]))
                timeout = parse_duration(node.get("timeout")) or WEEK
                return [("event", share, dt.timedelta(0)), ("timeout", 1 - share, timeout)]
            if node.get("until_time"):
                return [(None, 1.0, TIME_OF_DAY_WAIT)]
            return [(None, 1.0, parse_duration(node.get("duration")) or WEEK)]
        if kind == "random_split":
            weights = node.get("weights") if isinstance(node.get("weights"), dict) else {}
            numbers = {str(k): w for k, w in weights.items() if _positive_number(w)}
            total = sum(numbers.values())
            return [(k, w / total, dt.timedelta(0)) for k, w in numbers.items()] if total else []
        if kind in ("condition", "split"):
            shares = self._rule_shares(node)
            return [(branch, share, dt.timedelta(0)) for branch, share in shares.items()]
        branches = branches_of(node)
        if branches:
            return [(branch, 1.0, dt.timedelta(0)) for branch in branches[:1]]
        return [(None, 1.0, dt.timedelta(0))]

    def total_contacts(self) -> int:
        if self._total is None:
            self._total = Contact.objects.for_workspace(self.workspace).count()
        return self._total

    def _event_share(self, name: str) -> float:
        key = f"event:{name}"
        if key not in self._shares:
            total = self.total_contacts()
            did = (
                (
                    Event.objects.for_workspace(self.workspace)
                    .filter(
                        name=name,
                        occurred_at__gte=self.now - EVENT_SHARE_WINDOW,
                        occurred_at__lte=self.now,
                    )
                    .values("contact_id")
                    .distinct()
                    .count()
                )
                if total
                else 0
            )
            self._shares[key] = {None: min(did / total, 1.0) if total else 0.0}
        return self._shares[key][None]

    def _rule_shares(self, node: dict) -> dict[str, float]:
        """A yes/no split: the share matching its rule and the rest. A multi-way split: its
        branches in order, each taking those that match its rule and no earlier one's."""
        key = f"node:{node.get('id')}"
        if key not in self._shares:
            total = self.total_contacts()
            shares: dict = {}
            if node.get("type") == "condition":
                matching = self._count(node.get("rule")) if total else 0
                shares = {"yes": matching / total if total else 0.0}
                shares["no"] = 1.0 - shares["yes"]
            else:
                earlier: list = []
                taken = 0.0
                for branch in node.get("branches") or []:
                    if not isinstance(branch, dict):
                        continue
                    rule = branch.get("rule")
                    only_this = {"all": [rule, {"not": {"any": earlier}}]} if earlier else rule
                    matching = self._count(only_this) if total else 0
                    shares[str(branch.get("name"))] = matching / total if total else 0.0
                    taken += shares[str(branch.get("name"))]
                    earlier.append(rule)
                shares["else"] = max(1.0 - taken, 0.0)
            self._shares[key] = shares
        return self._shares[key]

    def _count(self, rule) -> int:
        try:
            count, _sample = segments.preview(self.workspace, rule, sample_size=0)
        except segments.InvalidRule:
            return 0
        return count


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
