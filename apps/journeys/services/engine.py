"""The engine: each contact's way through a journey, one step at a time, exactly once.

An enrollment is always at a node. Arriving at a node runs it at once (a send queues its
message, a condition picks its branch, ...) and the contact moves on, until it reaches a
wait (then it is due at a time, or waits for an event until a timeout), a goal with no
way on, an exit or a node with no edge out. Waiting contacts are rows with an indexed
`due_at`; a beat tick claims the due ones in batches with FOR UPDATE SKIP LOCKED, so any
number of workers share them. Events resume waits, enroll contacts, pull them to goals and
apply exit criteria (apps.journeys.services.triggers).

Exactly once: a batch moves its enrollments, writes their step log and queues their
messages (the outbox's rows) in one transaction, so a worker that dies mid-batch leaves
no trace and the rows are claimed again; one that dies after the commit has done the
steps, and nothing is claimed twice. A message's idempotency key names the enrollment,
the node and the visit, so even a replayed step could not send twice.
"""

import datetime as dt
import hashlib
import json
import logging
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.channels.services import outbox
from apps.channels.services.policy import contact_timezone, policy_for
from apps.contacts.choices import ConsentStatus, EventSource
from apps.contacts.models import Consent, ContactList
from apps.contacts.services import lists as list_services
from apps.contacts.services import profiles
from apps.journeys.choices import EnrollmentState, JourneyStatus, StepOutcome
from apps.journeys.graph import parse_duration, parse_time_of_day
from apps.journeys.models import Enrollment, JourneyStep, JourneyVersion
from apps.segments import services as segments

log = logging.getLogger(__name__)

CLAIM_BATCH = 500  # due enrollments claimed at once by one worker
MAX_MOVES = 100  # nodes one contact may pass in one go (a safety net; loops have waits)
STEP_TIME_BUDGET_SECONDS = 30  # one task advances for this long, then hands over


@dataclass
class Batch:
    """What one transaction of the engine writes, gathered so it is written in bulk."""

    now: dt.datetime
    steps: list[JourneyStep] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)  # (version_id, node_id, counter)
    branches: Counter = field(default_factory=Counter)  # (version_id, node_id, branch)
    webhooks: list[tuple[int, dict]] = field(default_factory=list)  # (enrollment id, node)
    simulate: bool = False
    messages: list[dict] = field(default_factory=list)  # what a simulation would send

    def step(self, enrollment, node_id: str, outcome: str, detail: str = "", message=None):
        self.steps.append(
            JourneyStep(
                enrollment=enrollment,
                node_id=node_id,
                outcome=outcome,
                detail=detail[:300],
                message=message,
                at=self.now,
            )
        )

    def count(self, enrollment, node_id: str, counter: str, amount: int = 1) -> None:
        self.counters[(enrollment.version_id, node_id, counter)] += amount


# -- moving one enrollment ------------------------------------------------------------------


def run_from(enrollment: Enrollment, node_id: str, batch: Batch) -> None:
    """Arrive at node_id and keep moving until the contact must wait or is done."""
    graph = enrollment.version.graph
    for _move in range(MAX_MOVES):
        node = _node(graph, node_id)
        if node is None:  # validated graphs name only their nodes; a safety net
            _finish(enrollment, node_id, EnrollmentState.EXITED, batch, _("Unknown step."))
            return
        enrollment.node_id = node_id
        enrollment.visits[node_id] = enrollment.visits.get(node_id, 0) + 1
        batch.count(enrollment, node_id, "entered")
        branch = NODE_RUNNERS[node["type"]](enrollment, node, batch)
        if branch is STAY:
            return
        next_id = _next(graph, node_id, branch)
        if branch is not None:
            batch.branches[(enrollment.version_id, node_id, branch)] += 1
        batch.count(enrollment, node_id, "completed")
        if next_id is None:
            if enrollment.state in (EnrollmentState.ACTIVE, EnrollmentState.WAITING):
                _finish(enrollment, node_id, EnrollmentState.COMPLETED, batch)
            return
        node_id = next_id
    _finish(enrollment, node_id, EnrollmentState.EXITED, batch, _("Too many steps at once."))


STAY = object()  # a runner's answer: the contact stays at this node (waits, or is done)


def leave_wait(enrollment: Enrollment, branch: str | None, batch: Batch, outcome: str) -> None:
    """The wait the contact is at is over (its time came, its event arrived or timed
    out): move on along `branch`."""
    graph = enrollment.version.graph
    node_id = enrollment.node_id
    batch.step(enrollment, node_id, outcome)
    batch.count(enrollment, node_id, "waiting", -1)
    batch.count(enrollment, node_id, "completed")
    if branch is not None:
        batch.branches[(enrollment.version_id, node_id, branch)] += 1
    enrollment.state, enrollment.due_at, enrollment.awaiting_event = (
        EnrollmentState.ACTIVE,
        None,
        "",
    )
    next_id = _next(graph, node_id, branch)
    if next_id is None:
        _finish(enrollment, node_id, EnrollmentState.COMPLETED, batch)
    else:
        run_from(enrollment, next_id, batch)


def jump_to_goal(enrollment: Enrollment, goal_id: str, batch: Batch) -> None:
    """The goal's event arrived: the contact leaves wherever it is for the goal."""
    _leave_current(enrollment, batch)
    run_from(enrollment, goal_id, batch)


def move(enrollment: Enrollment, version, node_id: str, batch: Batch) -> None:
    """Publishing moved the contact onto a new version, at node_id of it."""
    batch.step(
        enrollment,
        enrollment.node_id,
        StepOutcome.MOVED,
        _("To version %(n)d, step %(s)s.") % {"n": version.number, "s": node_id},
    )
    _leave_current(enrollment, batch)
    enrollment.version = version
    run_from(enrollment, node_id, batch)


def exit_enrollment(enrollment: Enrollment, batch: Batch, reason: str) -> None:
    _leave_current(enrollment, batch)
    _finish(enrollment, enrollment.node_id, EnrollmentState.EXITED, batch, reason)


def _leave_current(enrollment: Enrollment, batch: Batch) -> None:
    # Only a wait sets due_at or the waiting state: the contact is leaving a wait.
    if enrollment.state == EnrollmentState.WAITING or enrollment.due_at is not None:
        batch.count(enrollment, enrollment.node_id, "waiting", -1)
    enrollment.state = EnrollmentState.ACTIVE
    enrollment.due_at, enrollment.awaiting_event = None, ""


def _finish(enrollment, node_id: str, state: str, batch: Batch, reason: str = "") -> None:
    enrollment.state = state
    enrollment.due_at = None
    enrollment.awaiting_event = ""
    enrollment.finished_at = batch.now
    enrollment.exit_reason = reason[:200]
    outcome = StepOutcome.COMPLETED if state == EnrollmentState.COMPLETED else StepOutcome.EXITED
    batch.step(enrollment, node_id, outcome, reason)
    if state == EnrollmentState.EXITED:
        batch.count(enrollment, node_id, "exited")


def _node(graph: dict, node_id: str) -> dict | None:
    return next((n for n in graph.get("nodes", []) if n.get("id") == node_id), None)


def _next(graph: dict, node_id: str, branch: str | None) -> str | None:
    for edge in graph.get("edges", []):
        if edge.get("from") == node_id and (edge.get("branch") or None) == branch:
            return edge.get("to")
    return None


# -- what each node does --------------------------------------------------------------------


def _send(enrollment, node, batch):
    if enrollment.holdout:
        batch.step(enrollment, node["id"], StepOutcome.HOLDOUT)
        return None
    choice = _reachable_channel(enrollment, node)
    if choice is None:
        batch.step(
            enrollment,
            node["id"],
            StepOutcome.NOT_SENT,
            _("No channel of %(c)s reaches the contact.") % {"c": ", ".join(_channels(node))},
        )
        return None
    channel, template = choice
    if batch.simulate:
        batch.messages.append(
            {"node": node["id"], "channel": channel.type, "template": template.slug}
        )
        batch.step(enrollment, node["id"], StepOutcome.SENT, template.slug)
        return None
    visit = enrollment.visits.get(node["id"], 1)
    queued = outbox.queue_message(
        enrollment.contact,
        template,
        f"journey:{enrollment.pk}:{node['id']}:{visit}",
        channel=channel,
        context={"event": enrollment.entry_event or {}, "journey": enrollment.journey.name},
        journey_id=enrollment.journey_id,
        node_id=node["id"],
        priority=enrollment.journey.priority,
    )
    batch.step(enrollment, node["id"], StepOutcome.SENT, template.slug, message=queued.message)
    return None


def _channels(node) -> list[str]:
    return node.get("channels") or [node.get("channel")]


def _reachable_channel(enrollment, node):
    """The first channel, in the node's order, that reaches the contact and that the
    contact consents to; (channel, template) or None."""
    from apps.channels import providers
    from apps.channels.models import Template

    workspace = enrollment.workspace
    template_slugs = node.get("template")
    consents = dict(
        Consent.objects.filter(contact_id=enrollment.contact_id).values_list("channel", "status")
    )
    require_opt_in = policy_for(workspace).require_opt_in
    for kind in _channels(node):
        slug = template_slugs.get(kind) if isinstance(template_slugs, dict) else template_slugs
        template = Template.objects.for_workspace(workspace).filter(slug=slug, channel=kind).first()
        channel = outbox.default_channel(workspace, kind)
        if template is None or channel is None:
            continue
        if not providers.for_channel(channel).recipient(enrollment.contact):
            continue
        if kind != "webhook":
            status = consents.get(kind, ConsentStatus.UNKNOWN)
            if status == ConsentStatus.UNSUBSCRIBED or (
                require_opt_in and status != ConsentStatus.SUBSCRIBED
            ):
                continue
        return channel, template
    return None


def _wait(enrollment, node, batch):
    enrollment.state = EnrollmentState.ACTIVE
    batch.count(enrollment, node["id"], "waiting")
    if node.get("duration"):
        enrollment.due_at = batch.now + parse_duration(node["duration"])
    elif node.get("until_time"):
        enrollment.due_at = next_time_of_day(
            parse_time_of_day(node["until_time"]), _timezone(enrollment), batch.now
        )
    else:
        enrollment.state = EnrollmentState.WAITING
        enrollment.awaiting_event = node["until_event"]
        enrollment.due_at = batch.now + parse_duration(node["timeout"])
    batch.step(
        enrollment,
        node["id"],
        StepOutcome.WAITING,
        enrollment.awaiting_event or enrollment.due_at.isoformat(),
    )
    return STAY


def _condition(enrollment, node, batch):
    matched = _matches(enrollment, node["rule"])
    branch = "yes" if matched else "no"
    batch.step(enrollment, node["id"], StepOutcome.BRANCHED, branch)
    return branch


def _split(enrollment, node, batch):
    for branch in node["branches"]:
        if _matches(enrollment, branch["rule"]):
            batch.step(enrollment, node["id"], StepOutcome.BRANCHED, branch["name"])
            return branch["name"]
    batch.step(enrollment, node["id"], StepOutcome.BRANCHED, "else")
    return "else"


def _matches(enrollment, rule) -> bool:
    matched = segments.matching_contacts(enrollment.workspace, rule, [enrollment.contact_id])
    return enrollment.contact_id in matched


def _random_split(enrollment, node, batch):
    branch = weighted_choice(
        node["weights"], f"{enrollment.journey_id}:{enrollment.contact_id}:{node['id']}"
    )
    batch.step(enrollment, node["id"], StepOutcome.BRANCHED, branch)
    return branch


def weighted_choice(weights: dict, seed: str) -> str:
    """The same branch for the same contact, journey and node, every time (a test replays
    it; a contact who re-enters sees the same variant), in proportion to the weights."""
    total = sum(weights.values())
    point = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % total
    for name, weight in weights.items():
        if point < weight:
            return name
        point -= weight
    return next(iter(weights))


def _update_attribute(enrollment, node, batch):
    if not batch.simulate:
        errors = profiles.update_contact(
            enrollment.contact, {"attributes": {node["attribute"]: node.get("value")}}
        )
        if errors:
            batch.step(enrollment, node["id"], StepOutcome.FAILED, str(errors))
            return None
    batch.step(
        enrollment, node["id"], StepOutcome.DONE, f"{node['attribute']} = {node.get('value')!r}"
    )
    return None


def _list_change(enrollment, node, batch):
    contact_list = (
        ContactList.objects.for_workspace(enrollment.workspace).filter(slug=node["list"]).first()
    )
    if contact_list is None:
        batch.step(enrollment, node["id"], StepOutcome.FAILED, _("The list no longer exists."))
        return None
    if not batch.simulate:
        if node["type"] == "add_to_list":
            list_services.add_to_list(contact_list, [enrollment.contact_id], EventSource.SYSTEM)
        else:
            list_services.remove_from_list(contact_list, [enrollment.contact_id])
    batch.step(enrollment, node["id"], StepOutcome.DONE, contact_list.slug)
    return None


def _webhook(enrollment, node, batch):
    if enrollment.holdout:
        batch.step(enrollment, node["id"], StepOutcome.HOLDOUT)
        return None
    if not batch.simulate:
        batch.webhooks.append((enrollment.pk, node))
    batch.step(enrollment, node["id"], StepOutcome.DONE, node["url"][:300])
    return None


def _goal(enrollment, node, batch):
    if enrollment.converted_at is None:
        enrollment.converted_at = batch.now
        batch.count(enrollment, node["id"], "converted")
        batch.step(enrollment, node["id"], StepOutcome.CONVERTED, node.get("event", ""))
    return None


def _exit(enrollment, node, batch):
    _finish(enrollment, node["id"], EnrollmentState.EXITED, batch, _("Reached an exit."))
    return STAY


NODE_RUNNERS = {
    "send": _send,
    "wait": _wait,
    "condition": _condition,
    "split": _split,
    "random_split": _random_split,
    "update_attribute": _update_attribute,
    "add_to_list": _list_change,
    "remove_from_list": _list_change,
    "webhook": _webhook,
    "goal": _goal,
    "exit": _exit,
}


def _timezone(enrollment) -> zoneinfo.ZoneInfo:
    return contact_timezone(enrollment.contact, enrollment.workspace)


def next_time_of_day(at: dt.time, tz: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The next moment the contact's clock shows `at` (today if still ahead, else tomorrow)."""
    local = now.astimezone(tz)
    candidate = dt.datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=tz)
    return candidate.astimezone(dt.UTC)


# -- writing a batch ------------------------------------------------------------------------

ENROLLMENT_FIELDS = [
    "state",
    "node_id",
    "due_at",
    "awaiting_event",
    "visits",
    "updated_at",
    "finished_at",
    "exit_reason",
    "converted_at",
]


def save(batch: Batch, enrollments: list[Enrollment]) -> None:
    """Write the batch: enrollments, steps and counters (inside the caller's transaction);
    webhooks are called once it commits."""
    for enrollment in enrollments:
        enrollment.updated_at = batch.now
    if enrollments:
        Enrollment.objects.bulk_update(enrollments, ENROLLMENT_FIELDS, batch_size=1000)
    JourneyStep.objects.bulk_create(batch.steps, batch_size=1000)
    save_counters(batch)
    if batch.webhooks:
        from apps.journeys.tasks import call_webhook_task

        calls = [(pk, node) for pk, node in batch.webhooks]
        transaction.on_commit(
            lambda: [call_webhook_task.delay(pk, node["id"]) for pk, node in calls]
        )


def save_counters(batch: Batch) -> None:
    per_node: dict[tuple[int, str], dict] = {}
    for (version_id, node_id, counter), amount in batch.counters.items():
        per_node.setdefault((version_id, node_id), Counter())[counter] += amount
    branches: dict[tuple[int, str], dict] = {}
    for (version_id, node_id, branch), amount in batch.branches.items():
        branches.setdefault((version_id, node_id), {})[branch] = amount
        per_node.setdefault((version_id, node_id), Counter())
    if not per_node:
        return
    journeys = dict(
        JourneyVersion.objects.filter(pk__in={v for v, _n in per_node}).values_list(
            "pk", "journey_id"
        )
    )
    rows = []
    for (version_id, node_id), counts in sorted(per_node.items()):
        rows.append(
            (
                journeys[version_id],
                version_id,
                node_id,
                counts["entered"],
                counts["waiting"],
                counts["completed"],
                counts["exited"],
                counts["converted"],
                _json(branches.get((version_id, node_id), {})),
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO journeys_nodestats AS s
                (journey_id, version_id, node_id, entered, waiting, completed, exited, converted,
                 branches)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
            ON CONFLICT (version_id, node_id) DO UPDATE SET
                entered = s.entered + excluded.entered,
                waiting = s.waiting + excluded.waiting,
                completed = s.completed + excluded.completed,
                exited = s.exited + excluded.exited,
                converted = s.converted + excluded.converted,
                branches = (
                    SELECT COALESCE(jsonb_object_agg(key, total), '{}'::jsonb) FROM (
                        SELECT key, sum(value::bigint) AS total
                        FROM (SELECT * FROM jsonb_each_text(s.branches)
                              UNION ALL SELECT * FROM jsonb_each_text(excluded.branches)) b
                        GROUP BY key
                    ) t
                )
            """,
            rows,
        )


def _json(value) -> str:
    return json.dumps(value)


# -- the due tick ---------------------------------------------------------------------------

CLAIM_DUE_SQL = """
SELECT e.id FROM journeys_enrollment e
WHERE e.state IN ('active', 'waiting') AND e.due_at <= %s
  AND e.journey_id IN (SELECT id FROM journeys_journey WHERE status = 'live')
ORDER BY e.due_at
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""


def advance_due(limit: int = CLAIM_BATCH) -> int:
    """Claim due enrollments and move them on, in one transaction; answers how many."""
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_DUE_SQL, [now, limit])
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        enrollments = list(
            Enrollment.objects.filter(pk__in=ids)
            .select_related("version", "journey", "contact", "workspace")
            .order_by("pk")
        )
        batch = Batch(now=now)
        for enrollment in enrollments:
            if enrollment.state == EnrollmentState.WAITING:
                leave_wait(enrollment, "timeout", batch, StepOutcome.TIMED_OUT)
            else:
                leave_wait(enrollment, None, batch, StepOutcome.DONE)
        save(batch, enrollments)
    return len(ids)


def journey_is_live(enrollment: Enrollment) -> bool:
    return enrollment.journey.status == JourneyStatus.LIVE
