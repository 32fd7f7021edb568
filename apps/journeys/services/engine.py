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

Speed: a batch costs a handful of statements, whatever its size. The claim reads the
enrollments whole; journeys, versions (cached: they never change), contacts and their
consents, templates and channels are read once per batch; the enrollments are written by
one UPDATE from arrays and the step log by one INSERT from arrays. A worker that claims a
full batch wakes another, so every idle worker joins in while much is due.
"""

import datetime as dt
import hashlib
import json
import logging
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from apps.channels.services import outbox
from apps.channels.services.policy import contact_timezone, policy_for
from apps.contacts.choices import ConsentStatus, EventSource
from apps.contacts.models import Consent, Contact, ContactList
from apps.contacts.services import lists as list_services
from apps.contacts.services import profiles
from apps.journeys.choices import EnrollmentState, JourneyStatus, StepOutcome
from apps.journeys.graph import parse_duration, parse_time_of_day
from apps.journeys.models import Enrollment, Journey, JourneyVersion
from apps.segments import services as segments

log = logging.getLogger(__name__)

CLAIM_BATCH = 1000  # due enrollments claimed at once by one worker (one transaction)
MAX_MOVES = 100  # nodes one contact may pass in one go (a safety net; loops have waits)
STEP_TIME_BUDGET_SECONDS = 30  # one task advances for this long, then hands over
VERSION_CACHE_SIZE = 256  # published versions kept in memory (they never change)
# Nodes whose work needs the contact's row (its address, timezone or attributes); a batch
# that can reach none of them never reads the contacts.
CONTACT_NODE_TYPES = {"send", "update_attribute"}


class Step(NamedTuple):
    """One line of the step log, as the batch gathers it (written by `save`)."""

    enrollment: Enrollment
    node_id: str
    outcome: str
    detail: str
    message_id: int | None
    at: dt.datetime


@dataclass
class Batch:
    """What one transaction of the engine writes, gathered so it is written in bulk, and
    what it looked up once for all its enrollments."""

    now: dt.datetime
    steps: list[Step] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)  # (version_id, node_id, counter)
    branches: Counter = field(default_factory=Counter)  # (version_id, node_id, branch)
    webhooks: list[tuple[int, dict]] = field(default_factory=list)  # (enrollment id, node)
    simulate: bool = False
    messages: list[dict] = field(default_factory=list)  # what a simulation would send
    journeys: dict[int, int] = field(default_factory=dict)  # version id -> journey id
    consents: dict[int, dict] = field(default_factory=dict)  # contact id -> {channel: status}
    lookups: dict = field(default_factory=dict)  # templates, channels, policies by key
    texts: dict[str, str] = field(default_factory=dict)  # translated messages
    # Messages to queue when the batch is saved: (step index, workspace, request).
    sends: list[tuple[int, object, outbox.MessageRequest]] = field(default_factory=list)

    def step(self, enrollment, node_id: str, outcome: str, detail: str = "", message=None):
        message_id = message.pk if message is not None else None
        self.steps.append(Step(enrollment, node_id, outcome, detail[:300], message_id, self.now))

    def send(self, enrollment, node_id: str, request: "outbox.MessageRequest") -> None:
        """A send step; its message is queued with the batch's others when it is saved
        (`queue_sends`), and the step gets the message's id then."""
        self.step(enrollment, node_id, StepOutcome.SENT, request.template.slug)
        self.sends.append((len(self.steps) - 1, enrollment.workspace, request))

    def count(self, enrollment, node_id: str, counter: str, amount: int = 1) -> None:
        self.counters[(enrollment.version_id, node_id, counter)] += amount

    def translate(self, message: str) -> str:
        """gettext, once per batch for each message (it costs more than the rest of a
        contact's step; the language is the same for the whole batch)."""
        if message not in self.texts:
            self.texts[message] = _(message)
        return self.texts[message]

    def lookup(self, key: tuple, find):
        """`find()`, asked once per batch for each key."""
        if key not in self.lookups:
            self.lookups[key] = find()
        return self.lookups[key]

    def consents_of(self, contact_id: int) -> dict:
        if contact_id not in self.consents:
            self.prefetch_consents([contact_id])
        return self.consents[contact_id]

    def prefetch_consents(self, contact_ids) -> None:
        missing = [pk for pk in contact_ids if pk not in self.consents]
        if not missing:
            return
        for pk in missing:
            self.consents[pk] = {}
        for contact_id, channel, status in Consent.objects.filter(
            contact_id__in=missing
        ).values_list("contact_id", "channel", "status"):
            self.consents[contact_id][channel] = status


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
    return _index(graph)[1].get(node_id)


def _next(graph: dict, node_id: str, branch: str | None) -> str | None:
    return _index(graph)[2].get((node_id, branch))


GRAPH_INDEX_SIZE = 512
_indexes: dict[int, tuple[dict, dict, dict]] = {}


def _index(graph: dict) -> tuple[dict, dict, dict]:
    """(graph, nodes by id, next node by (node, branch)), made once per graph: every contact
    of a batch walks the same few graphs (published versions, which never change). Keyed by
    the graph object itself (held, so its id is not reused while cached)."""
    found = _indexes.get(id(graph))
    if found is not None and found[0] is graph:
        return found
    nodes: dict[str, dict] = {}
    for node in graph.get("nodes", []):
        nodes.setdefault(node.get("id"), node)  # the first, as a search in order finds
    edges: dict[tuple, str] = {}
    for edge in graph.get("edges", []):
        edges.setdefault((edge.get("from"), edge.get("branch") or None), edge.get("to"))
    if len(_indexes) >= GRAPH_INDEX_SIZE:
        _indexes.clear()
    found = _indexes[id(graph)] = (graph, nodes, edges)
    return found


# -- what each node does --------------------------------------------------------------------


def _send(enrollment, node, batch):
    if enrollment.holdout:
        batch.step(enrollment, node["id"], StepOutcome.HOLDOUT)
        return None
    choice = _reachable_channel(enrollment, node, batch)
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
    request = outbox.MessageRequest(
        contact=enrollment.contact,
        template=template,
        idempotency_key=f"journey:{enrollment.pk}:{node['id']}:{visit}",
        channel=channel,
        context={"event": enrollment.entry_event or {}, "journey": enrollment.journey.name},
        journey_id=enrollment.journey_id,
        node_id=node["id"],
        priority=enrollment.journey.priority,
    )
    batch.send(enrollment, node["id"], request)
    return None


def _channels(node) -> list[str]:
    return node.get("channels") or [node.get("channel")]


def _reachable_channel(enrollment, node, batch):
    """The first channel, in the node's order, that reaches the contact and that the
    contact consents to; (channel, template) or None. Templates, channels and the policy
    are looked up once per batch."""
    from apps.channels import providers
    from apps.channels.models import Template

    workspace = enrollment.workspace
    template_slugs = node.get("template")
    consents = batch.consents_of(enrollment.contact_id)
    require_opt_in = batch.lookup(("policy", workspace.pk), lambda: policy_for(workspace))
    require_opt_in = require_opt_in.require_opt_in
    for kind in _channels(node):
        slug = template_slugs.get(kind) if isinstance(template_slugs, dict) else template_slugs
        template = batch.lookup(
            ("template", workspace.pk, kind, slug),
            lambda: (
                Template.objects.for_workspace(workspace)
                .filter(slug=slug, channel=kind)  # noqa: B023 (called at once)
                .first()
            ),
        )
        channel = batch.lookup(
            ("channel", workspace.pk, kind),
            lambda: outbox.default_channel(workspace, kind),  # noqa: B023 (called at once)
        )
        if template is None or channel is None:
            continue
        provider = batch.lookup(("provider", channel.pk), lambda: providers.for_channel(channel))  # noqa: B023
        if not provider.recipient(enrollment.contact):
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
    _finish(enrollment, node["id"], EnrollmentState.EXITED, batch, batch.translate(REACHED_EXIT))
    return STAY


REACHED_EXIT = gettext_noop("Reached an exit.")


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
    "version",
]

# One statement for the whole batch (bulk_update's CASE per field and row costs far more);
# the rows travel as one JSON array, which both ends encode and decode fast.
UPDATE_ENROLLMENTS_SQL = """
UPDATE journeys_enrollment AS e
SET state = v.state, node_id = v.node_id, due_at = v.due_at,
    awaiting_event = v.awaiting_event, visits = v.visits, updated_at = %s,
    finished_at = v.finished_at, exit_reason = v.exit_reason, converted_at = v.converted_at,
    version_id = v.version_id
FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, state varchar, node_id varchar,
     due_at timestamptz, awaiting_event varchar, visits jsonb, finished_at timestamptz,
     exit_reason varchar, converted_at timestamptz, version_id bigint)
WHERE e.id = v.id
"""

# In the order the batch took them: the log reads by (time, id), and a batch has one time.
INSERT_STEPS_SQL = """
INSERT INTO journeys_journeystep (enrollment_id, node_id, outcome, detail, message_id, at)
SELECT s.enrollment_id, s.node_id, s.outcome, s.detail, s.message_id, %s
FROM jsonb_to_recordset(%s::jsonb)
     AS s(n int, enrollment_id bigint, node_id varchar, outcome varchar, detail varchar,
          message_id bigint)
ORDER BY s.n
"""


def save(batch: Batch, enrollments: list[Enrollment]) -> None:
    """Write the batch: enrollments, steps and counters (inside the caller's transaction);
    webhooks are called once it commits."""
    for enrollment in enrollments:
        enrollment.updated_at = batch.now
        batch.journeys[enrollment.version_id] = enrollment.journey_id
    queue_sends(batch)
    with connection.cursor() as cursor:
        if enrollments:
            rows = _enrollment_rows(enrollments, batch.now)
            cursor.execute(UPDATE_ENROLLMENTS_SQL, [batch.now, rows])
        if batch.steps:
            cursor.execute(INSERT_STEPS_SQL, [batch.now, _step_rows(batch.steps)])
    save_counters(batch)
    if batch.webhooks:
        from apps.journeys.tasks import call_webhook_task

        calls = [(pk, node) for pk, node in batch.webhooks]
        transaction.on_commit(
            lambda: [call_webhook_task.delay(pk, node["id"]) for pk, node in calls]
        )


def queue_sends(batch: Batch) -> None:
    """The batch's messages, queued in the outbox with one statement per workspace (in the
    batch's transaction); each send step gets its message's id."""
    by_workspace: dict[int, tuple] = {}
    for index, workspace, request in batch.sends:
        by_workspace.setdefault(workspace.pk, (workspace, []))[1].append((index, request))
    for workspace, items in by_workspace.values():
        queued = outbox.queue_messages(workspace, [request for _index, request in items])
        for (index, _request), answer in zip(items, queued, strict=True):
            batch.steps[index] = batch.steps[index]._replace(message_id=answer.message.pk)
    batch.sends.clear()


def _enrollment_rows(enrollments: list[Enrollment], now: dt.datetime) -> str:
    now_text = now.isoformat()

    def iso(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        return now_text if value is now else value.isoformat()  # mostly the batch's time

    return json.dumps(
        [
            {
                "id": e.pk,
                "state": e.state,
                "node_id": e.node_id,
                "due_at": iso(e.due_at),
                "awaiting_event": e.awaiting_event,
                "visits": e.visits,
                "finished_at": iso(e.finished_at),
                "exit_reason": e.exit_reason,
                "converted_at": iso(e.converted_at),
                "version_id": e.version_id,
            }
            for e in enrollments
        ]
    )


def _step_rows(steps: list[Step]) -> str:
    return json.dumps(
        [
            {
                "n": n,
                "enrollment_id": step.enrollment.pk,
                "node_id": step.node_id,
                "outcome": step.outcome,
                "detail": step.detail,
                "message_id": step.message_id,
            }
            for n, step in enumerate(steps)
        ]
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
    journeys = dict(batch.journeys)
    missing = {v for v, _n in per_node} - journeys.keys()
    if missing:
        journeys.update(
            JourneyVersion.objects.filter(pk__in=missing).values_list("pk", "journey_id")
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

# The enrollments whole, locked: what the engine needs of them comes with the claim. The
# live journeys' ids are given as an array (not joined): then the planner expects most due
# rows to qualify and walks enrollment_due in order, stopping at the limit, rather than
# sorting every due row of the table for each batch.
CLAIM_DUE_SQL = """
SELECT {columns} FROM journeys_enrollment e
WHERE e.state IN ('active', 'waiting') AND e.due_at <= %s AND e.journey_id = ANY(%s)
ORDER BY e.due_at
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""
LIVE_JOURNEYS_SQL = "SELECT id FROM journeys_journey WHERE status = 'live'"
# Not read: when it entered and was last changed (the batch overwrites the latter), which
# are left deferred, as .defer() would (loading timestamps is a good part of a claim's cost).
_FIELDS = [
    f for f in Enrollment._meta.concrete_fields if f.attname not in ("entered_at", "updated_at")
]
_CLAIM_SQL = CLAIM_DUE_SQL.format(columns=", ".join(f"e.{f.column}" for f in _FIELDS))
_ATTNAMES = [f.attname for f in _FIELDS]
_JOURNEY = Enrollment._meta.get_field("journey")
_WORKSPACE = Enrollment._meta.get_field("workspace")
_VERSION = Enrollment._meta.get_field("version")
_CONTACT = Enrollment._meta.get_field("contact")
_JSON_ATTNAMES = [f.attname for f in _FIELDS if f.get_internal_type() == "JSONField"]
_versions: dict[int, JourneyVersion] = {}  # published versions never change


def advance_due(limit: int | None = None) -> int:
    """Claim due enrollments (CLAIM_BATCH unless told) and move them on, in one
    transaction; answers how many. A full claim wakes another worker: more may be due than
    this one moves alone."""
    limit = limit or CLAIM_BATCH
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(LIVE_JOURNEYS_SQL)
            live = [row[0] for row in cursor.fetchall()]
            if not live:
                return 0
            cursor.execute(_CLAIM_SQL, [now, live, limit])
            rows = cursor.fetchall()
        if not rows:
            return 0
        if len(rows) == limit:
            wake_advancers()
        enrollments = _enrollments(rows)
        batch = Batch(now=now)
        _attach(enrollments, batch)
        for enrollment in enrollments:
            if enrollment.state == EnrollmentState.WAITING:
                leave_wait(enrollment, "timeout", batch, StepOutcome.TIMED_OUT)
            else:
                leave_wait(enrollment, None, batch, StepOutcome.DONE)
        save(batch, enrollments)
    return len(rows)


def wake_advancers() -> None:
    """Have an idle worker advance due enrollments too (at most one such task waits)."""
    from apps.journeys.tasks import advance_due_task
    from orchestra import redis_client

    redis_client.schedule_once("journeys-due", advance_due_task)


def _enrollments(rows: list[tuple]) -> list[Enrollment]:
    """Model instances from the claimed rows, made as Model.from_db makes them but without
    Model.__init__'s per-field work (a good part of a wake-up's cost): the values go into
    the instance's __dict__, where __init__ would put them; the fields not read stay
    deferred (loaded on access, like .defer())."""
    enrollments = []
    db = connection.alias
    new = Enrollment.__new__
    for row in sorted(rows):  # by id, as the log's order within a batch has always been
        enrollment = new(Enrollment)
        enrollment._state = ModelState()
        enrollment._state.adding, enrollment._state.db = False, db
        values = enrollment.__dict__
        values.update(zip(_ATTNAMES, row, strict=True))
        for name in _JSON_ATTNAMES:
            if isinstance(values[name], str):
                values[name] = json.loads(values[name])
        enrollments.append(enrollment)
    return enrollments


def _attach(enrollments: list[Enrollment], batch: Batch) -> None:
    """Journeys (with their workspaces) and versions read once for the batch; contacts
    (with their consents) only when a node the batch may reach needs them."""
    journeys = Journey.objects.select_related("workspace").in_bulk(
        {e.journey_id for e in enrollments}
    )
    versions = _cached_versions({e.version_id for e in enrollments})
    contacts = {}
    if any(needs_contacts(version.graph) for version in versions.values()):
        contacts = Contact.objects.in_bulk({e.contact_id for e in enrollments})
        batch.prefetch_consents(contacts)
    # The ids match by construction: only the related-object caches are filled.
    for enrollment in enrollments:
        journey = journeys[enrollment.journey_id]
        _JOURNEY.set_cached_value(enrollment, journey)
        _WORKSPACE.set_cached_value(enrollment, journey.workspace)
        _VERSION.set_cached_value(enrollment, versions[enrollment.version_id])
        contact = contacts.get(enrollment.contact_id)
        if contact is not None:
            if contact.workspace_id == journey.workspace_id:
                contact.workspace = journey.workspace
            _CONTACT.set_cached_value(enrollment, contact)


def _cached_versions(ids: set[int]) -> dict[int, JourneyVersion]:
    missing = ids - _versions.keys()
    if missing:
        if len(_versions) + len(missing) > VERSION_CACHE_SIZE:
            _versions.clear()
        _versions.update(JourneyVersion.objects.in_bulk(missing))
    return {pk: _versions[pk] for pk in ids}


def needs_contacts(graph: dict) -> bool:
    """Whether some node of the graph works with the contact's row (not only its id)."""
    return any(
        node.get("type") in CONTACT_NODE_TYPES
        or (node.get("type") == "wait" and node.get("until_time"))
        for node in graph.get("nodes", [])
    )


def journey_is_live(enrollment: Enrollment) -> bool:
    return enrollment.journey.status == JourneyStatus.LIVE
