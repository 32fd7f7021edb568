"""Events move journeys: an event may enroll the contact (an event or segment_entered
entry), resume a wait for it, pull the contact to a goal, or end its enrollment (the
journey's exit_when). Ingest stores, with each event whose name some journey listens for,
a pending row (PendingJourneyEvent) in the same statement; a worker claims and applies
them per workspace, in the order they happened, deleting the rows in the transaction that
applies them: exactly once, through any crash."""

import datetime as dt
import json
import time

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Contact, Event
from apps.journeys.choices import EnrollmentState, JourneyStatus, StepOutcome
from apps.journeys.models import OPEN_STATES, Enrollment, Journey, JourneyVersion
from apps.journeys.services import engine
from apps.segments.rules import properties_match
from orchestra import redis_client

NAMES_CACHE_SECONDS = 5
EVENTS_BATCH = 500
_names_cache: dict[int, tuple[float, frozenset]] = {}


def listened_event_names(workspace_id: int) -> frozenset:
    """The event names the workspace's live and paused journeys react to (remembered by the
    process for a few seconds: ingest asks on every request)."""
    cached = _names_cache.get(workspace_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    names = set()
    for graph in JourneyVersion.objects.filter(
        journey__workspace_id=workspace_id,
        journey__status__in=[JourneyStatus.LIVE, JourneyStatus.PAUSED],
    ).values_list("graph", flat=True):
        names |= event_names_of(graph)
    frozen = frozenset(names)
    _names_cache[workspace_id] = (time.monotonic() + NAMES_CACHE_SECONDS, frozen)
    return frozen


def forget_listened_names(workspace_id: int) -> None:
    _names_cache.pop(workspace_id, None)


def event_names_of(graph: dict) -> set[str]:
    entry = graph.get("entry") or {}
    names = set()
    if entry.get("type") == "event":
        names.add(entry.get("event"))
    if entry.get("type") == "segment_entered":
        names.add("segment_entered")
    if (graph.get("exit_when") or {}).get("event"):
        names.add(graph["exit_when"]["event"])
    for node in graph.get("nodes", []):
        if node.get("type") == "wait" and node.get("until_event"):
            names.add(node["until_event"])
        if node.get("type") == "goal":
            names.add(node.get("event"))
    return {name for name in names if name}


def wake_for_events(workspace_id: int) -> None:
    """Call once the current transaction has written pending events (PendingJourneyEvent
    rows, in the statement that stores the events): after the commit, a worker is woken to
    apply them. Only the wake-up travels through Redis; if it is lost (Redis down, or the
    process killed right after the commit), the sweep finds the rows within seconds."""
    transaction.on_commit(lambda: _wake(workspace_id), robust=True)


def _wake(workspace_id: int) -> None:
    from apps.journeys.tasks import process_journey_events_task

    redis_client.schedule_once(
        f"journey-events:{workspace_id}", process_journey_events_task, workspace_id
    )


def events_stored(workspace_id: int, event_ids) -> None:
    """For callers whose INSERT of the events could not write the pending rows itself:
    writes them in the current transaction (so they commit with the events, or not at
    all) and wakes a worker after the commit."""
    ids = [int(pk) for pk in event_ids]
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journeys_pendingjourneyevent (event_id, workspace_id, created_at) "
            "SELECT unnest(%s::bigint[]), %s, %s",
            [ids, workspace_id, timezone.now()],
        )
    wake_for_events(workspace_id)


# A worker claims a batch of the workspace's pending events by deleting their rows, in the
# transaction that applies them: if it dies before its commit, PostgreSQL rolls the delete
# back and the rows wait for the next worker; once it has committed, they are gone.
CLAIM_EVENTS_SQL = """
DELETE FROM journeys_pendingjourneyevent
WHERE event_id IN (
    SELECT event_id FROM journeys_pendingjourneyevent
    WHERE workspace_id = %s
    ORDER BY event_id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING event_id
"""

# Workspaces with pending events, one index probe each (a loose index scan: a backlog of
# a million rows costs no more than a few).
PENDING_WORKSPACES_SQL = """
WITH RECURSIVE workspaces(id) AS (
    (SELECT workspace_id FROM journeys_pendingjourneyevent ORDER BY workspace_id LIMIT 1)
    UNION ALL
    SELECT (SELECT p.workspace_id FROM journeys_pendingjourneyevent p
            WHERE p.workspace_id > w.id ORDER BY p.workspace_id LIMIT 1)
    FROM workspaces w WHERE w.id IS NOT NULL
)
SELECT id FROM workspaces WHERE id IS NOT NULL
"""

# One worker at a time applies a workspace's events (pg_try_advisory_xact_lock, per
# batch), so batches are applied in the order of their events, one after the other: two
# workers never apply one contact's later event before its earlier one.
EVENTS_LOCK = 0x6A657665  # the lock's first key; the workspace id is the second
EVENTS_TASK_SECONDS = 60  # then a successor task takes over (tasks may not run forever)


def process_pending_events(workspace_id: int, budget: float = EVENTS_TASK_SECONDS) -> int:
    """Apply the workspace's pending events, a batch per transaction, oldest first, until
    none is left or the time budget is spent (then a successor task is queued); answers
    how many were applied. Returns at once when another worker is applying them."""
    redis_client.scheduled_task_started(f"journey-events:{workspace_id}")
    deadline = time.monotonic() + budget
    done, looked_again = 0, False
    while True:
        if time.monotonic() > deadline:
            _wake(workspace_id)
            return done
        applied = apply_pending_batch(workspace_id)
        if applied is None:
            return done  # another worker holds the workspace; it drains what is left
        done += applied
        if applied:
            looked_again = False
            continue
        # Nothing left when we looked. Events stored meanwhile may have had their worker
        # find the workspace held (by us) and give up: look again, now that we have let go,
        # so that they do not wait for the sweep.
        if looked_again or not _has_pending(workspace_id):
            return done
        looked_again = True


def apply_pending_batch(workspace_id: int, size: int | None = None) -> int | None:
    """Claim up to `size` of the workspace's pending events and apply them, in one
    transaction; answers how many (None when another worker holds the workspace)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [EVENTS_LOCK, workspace_id])
            if not cursor.fetchone()[0]:
                return None
            cursor.execute(CLAIM_EVENTS_SQL, [workspace_id, size or EVENTS_BATCH])
            ids = [row[0] for row in cursor.fetchall()]
        if ids:
            events = list(
                Event.objects.filter(pk__in=ids, workspace_id=workspace_id).order_by(
                    "occurred_at", "pk"
                )
            )
            apply_events(workspace_id, events)
    return len(ids)


def _has_pending(workspace_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM journeys_pendingjourneyevent WHERE workspace_id = %s)",
            [workspace_id],
        )
        return cursor.fetchone()[0]


def pending_workspaces() -> list[int]:
    """Workspaces with events waiting for a worker (what the sweep wakes workers for)."""
    with connection.cursor() as cursor:
        cursor.execute(PENDING_WORKSPACES_SQL)
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def apply_events(workspace_id: int, events: list[Event]) -> None:
    """Exits, goals, resumed waits, then entries, for each event in turn."""
    if not events:
        return
    journeys = list(
        Journey.objects.filter(
            workspace_id=workspace_id, status__in=[JourneyStatus.LIVE, JourneyStatus.PAUSED]
        ).select_related("live_version", "workspace")
    )
    if not journeys:
        return
    contact_ids = sorted({event.contact_id for event in events})
    # Locked in id order (the due tick claims with SKIP LOCKED, so it never waits on us).
    open_enrollments = list(
        Enrollment.objects.select_for_update(of=("self",))
        .filter(
            contact_id__in=contact_ids,
            state__in=OPEN_STATES,
            journey__in=[j for j in journeys if j.status == JourneyStatus.LIVE],
        )
        .select_related("version", "journey", "contact", "workspace")
        .order_by("pk")
    )
    by_contact: dict[int, list[Enrollment]] = {}
    for enrollment in open_enrollments:
        by_contact.setdefault(enrollment.contact_id, []).append(enrollment)
    contacts = {c.pk: c for c in Contact.objects.filter(pk__in=contact_ids)}
    batch = engine.Batch(now=timezone.now())
    live = [j for j in journeys if j.status == JourneyStatus.LIVE and j.live_version]
    if any(engine.needs_contacts(journey.live_version.graph) for journey in live):
        batch.prefetch_consents(contacts)
    for enrollment in open_enrollments:
        if enrollment.contact.workspace_id == enrollment.workspace_id:
            enrollment.contact.workspace = enrollment.workspace  # for queue_message
    prefetch_history(batch, [j for j in live if _has_event_entry(j)], contact_ids)
    touched: dict[int, Enrollment] = {}
    for event in events:
        if event.contact_id not in contacts:
            continue
        for enrollment in by_contact.get(event.contact_id, []):
            if enrollment.state in OPEN_STATES and _react(enrollment, event, batch):
                touched[enrollment.pk] = enrollment
        for journey in journeys:
            if (
                journey.status == JourneyStatus.LIVE
                and journey.live_version
                and _enters(journey, event)
            ):
                enrollment = enroll(journey, contacts[event.contact_id], batch, event=event)
                if enrollment is not None:
                    by_contact.setdefault(event.contact_id, []).append(enrollment)
                    touched[enrollment.pk] = enrollment
    engine.save(batch, list(touched.values()))


def _react(enrollment: Enrollment, event: Event, batch) -> bool:
    """Apply one event to one open enrollment; answers whether it changed."""
    graph = enrollment.version.graph
    if not _same_instance(enrollment, event):
        return False
    exit_when = graph.get("exit_when") or {}
    if exit_when.get("event") == event.name:
        engine.exit_enrollment(enrollment, batch, _("Exit event %(e)s.") % {"e": event.name})
        return True
    for node in graph.get("nodes", []):
        if (
            node.get("type") == "goal"
            and node.get("event") == event.name
            and enrollment.converted_at is None
            and properties_match(event.properties, node.get("where") or [], batch.now)
        ):
            engine.jump_to_goal(enrollment, node["id"], batch)
            return True
    if enrollment.state == EnrollmentState.WAITING and enrollment.awaiting_event == event.name:
        node = enrollment.version.node(enrollment.node_id) or {}
        if properties_match(event.properties, node.get("where") or [], batch.now):
            engine.leave_wait(enrollment, "event", batch, StepOutcome.RESUMED)
            return True
    return False


def _same_instance(enrollment: Enrollment, event: Event) -> bool:
    """A keyed enrollment (a cart) reacts only to events carrying its key; an event that
    carries no key at all (unsubscribed, say) concerns every instance."""
    key_property = (enrollment.version.graph.get("entry") or {}).get("key")
    if not key_property or not enrollment.key:
        return True
    value = (event.properties or {}).get(key_property)
    return value is None or str(value) == enrollment.key


def _enters(journey: Journey, event: Event) -> bool:
    entry = journey.live_version.graph.get("entry") or {}
    if entry.get("type") == "event":
        return entry.get("event") == event.name and properties_match(
            event.properties, entry.get("where") or [], timezone.now()
        )
    if entry.get("type") == "segment_entered":
        return event.name == "segment_entered" and (event.properties or {}).get(
            "segment"
        ) == entry.get("segment")
    return False


def enroll(
    journey: Journey, contact: Contact, batch, event: Event | None = None, key: str = ""
) -> Enrollment | None:
    """Enroll the contact in the journey's live version, if its re-entry rule allows, and
    run it to its first wait. None when it may not enter (already in, or too soon)."""
    version = journey.live_version
    graph = version.graph
    entry = graph.get("entry") or {}
    if event is not None and entry.get("key"):
        value = (event.properties or {}).get(entry["key"])
        if value is None:
            return None
        key = str(value)[:200]
    if not may_enter(journey, contact, key, graph.get("reentry", "never"), batch.now, batch):
        return None
    entry_event = (
        {
            "name": event.name,
            "properties": event.properties,
            "occurred_at": event.occurred_at.isoformat(),
        }
        if event
        else {}
    )
    holdout = _in_holdout(journey, contact, graph.get("holdout_percent", 0))
    enrollment = Enrollment(
        workspace=journey.workspace,
        journey=journey,
        version=version,
        contact=contact,
        key=key,
        state=EnrollmentState.ACTIVE,
        node_id=graph["start"],
        holdout=holdout,
        visits={},
        entry_event=entry_event,
        entered_at=batch.now,
        updated_at=batch.now,
    )
    # One statement, no savepoint: a concurrent enrollment of the same contact wins cleanly
    # (the one-open-per-key index), and then this one is not made.
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_ENROLLMENT_SQL,
            [journey.workspace_id, journey.pk, version.pk, contact.pk, key, enrollment.state,
             enrollment.node_id, holdout, json.dumps(entry_event), batch.now, batch.now],
        )  # fmt: skip
        row = cursor.fetchone()
    if row is None:
        return None
    enrollment.pk = row[0]
    enrollment._state.adding = False  # a row of the table now, as if loaded
    if "history" in batch.lookups:
        batch.lookups["history"][(journey.pk, contact.pk, key)] = (enrollment.pk, batch.now)
    if contact.workspace_id == journey.workspace_id:
        contact.workspace = journey.workspace  # what queue_message reads, without a query
    batch.step(
        enrollment,
        graph["start"],
        StepOutcome.ENTERED,
        _("Holdout group") if holdout else (event.name if event else ""),
    )
    engine.run_from(enrollment, graph["start"], batch)
    return enrollment  # the caller saves it with the batch (engine.save)


INSERT_ENROLLMENT_SQL = """
INSERT INTO journeys_enrollment
    (workspace_id, journey_id, version_id, contact_id, key, state, node_id, due_at,
     awaiting_event, holdout, visits, entry_event, entered_at, updated_at, finished_at,
     exit_reason, converted_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, '', %s, '{}', %s::jsonb, %s, %s, NULL, '', NULL)
ON CONFLICT (journey_id, contact_id, key) WHERE state IN ('active', 'waiting') DO NOTHING
RETURNING id
"""


# A contact's enrollments in a journey so far: an open one's id, and the last entry.
HISTORY_SQL = """
SELECT journey_id, contact_id, key,
       max(id) FILTER (WHERE state IN ('active', 'waiting')), max(entered_at)
FROM journeys_enrollment
WHERE journey_id = ANY(%s) AND contact_id = ANY(%s) {key}
GROUP BY journey_id, contact_id, key
"""


def prefetch_history(batch, journeys: list[Journey], contact_ids: list[int]) -> None:
    """The re-entry rule's facts for these contacts in these journeys, in one query for
    the batch (kept current by `enroll` as the batch enrolls)."""
    if not journeys or not contact_ids:
        return
    history = batch.lookups.setdefault("history", {})
    covered = batch.lookups.setdefault("history_covered", set())
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL.format(key=""), [[j.pk for j in journeys], list(contact_ids)])
        for journey_id, contact_id, key, open_id, last in cursor.fetchall():
            history[(journey_id, contact_id, key)] = (open_id, last)
    covered.update((j.pk, pk) for j in journeys for pk in contact_ids)


def _history(journey: Journey, contact: Contact, key: str, batch) -> tuple:
    if batch is not None and (journey.pk, contact.pk) in batch.lookups.get("history_covered", ()):
        return batch.lookups["history"].get((journey.pk, contact.pk, key), (None, None))
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL.format(key="AND key = %s"), [[journey.pk], [contact.pk], key])
        row = cursor.fetchone()
    return (row[3], row[4]) if row else (None, None)


def may_enter(
    journey: Journey, contact: Contact, key: str, reentry, now: dt.datetime, batch=None
) -> bool:
    open_id, last_entered = _history(journey, contact, key, batch)
    if open_id is not None:
        return False
    if reentry == "always" or last_entered is None:
        return True
    if reentry == "never" or not isinstance(reentry, dict):
        return False
    since = now - dt.timedelta(days=reentry.get("after_days", 0))
    return last_entered <= since


def _has_event_entry(journey: Journey) -> bool:
    entry = journey.live_version.graph.get("entry") or {}
    return entry.get("type") in ("event", "segment_entered")


def _in_holdout(journey: Journey, contact: Contact, percent) -> bool:
    if not percent:
        return False
    return (
        engine.weighted_choice(
            {"holdout": int(percent * 100), "journey": 10000 - int(percent * 100)},
            f"holdout:{journey.pk}:{contact.pk}",
        )
        == "holdout"
    )
