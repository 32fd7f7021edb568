"""Events move journeys: an event may enroll the contact (an event or segment_entered
entry), resume a wait for it, pull the contact to a goal, or end its enrollment (the
journey's exit_when). Ingest hands over the ids of stored events whose names some journey
listens for; a worker drains them per workspace, in the order they happened."""

import datetime as dt
import time

from django.db import transaction
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


def events_stored(workspace_id: int, event_ids) -> None:
    """Call with the ids of stored events that journeys listen for: once the transaction
    commits, a worker applies them."""
    ids = [int(pk) for pk in event_ids]
    if ids:
        transaction.on_commit(lambda: _queue(workspace_id, ids), robust=True)


def _queue(workspace_id: int, ids: list[int]) -> None:
    from apps.journeys.tasks import process_journey_events_task

    redis_client.client().sadd(_pending_key(workspace_id), *ids)
    redis_client.schedule_once(
        f"journey-events:{workspace_id}", process_journey_events_task, workspace_id
    )


def _pending_key(workspace_id: int) -> str:
    return redis_client.key("journeys", "events", workspace_id)


def process_pending_events(workspace_id: int) -> int:
    """Drain the workspace's pending events, oldest first in each batch."""
    redis_client.scheduled_task_started(f"journey-events:{workspace_id}")
    done = 0
    while True:
        ids = [
            int(pk)
            for pk in redis_client.client().spop(_pending_key(workspace_id), EVENTS_BATCH) or []
        ]
        if not ids:
            return done
        events = list(
            Event.objects.filter(pk__in=ids, workspace_id=workspace_id).order_by(
                "occurred_at", "pk"
            )
        )
        apply_events(workspace_id, events)
        done += len(ids)


def pending_workspaces() -> list[int]:
    prefix = _pending_key(0)[:-1]
    keys = redis_client.client().scan_iter(f"{prefix}*")
    return [int(key.decode().rsplit(":", 1)[1]) for key in keys]


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
    if not may_enter(journey, contact, key, graph.get("reentry", "never"), batch.now):
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
    with transaction.atomic():  # a savepoint: a concurrent enrollment wins cleanly
        enrollment, created = Enrollment.objects.get_or_create(
            journey=journey,
            contact=contact,
            key=key,
            state__in=OPEN_STATES,
            defaults={
                "workspace_id": journey.workspace_id,
                "version": version,
                "node_id": graph["start"],
                "holdout": holdout,
                "entry_event": entry_event,
                "state": EnrollmentState.ACTIVE,
                "entered_at": batch.now,
            },
        )
    if not created:
        return None
    enrollment.version, enrollment.journey, enrollment.contact = version, journey, contact
    enrollment.workspace = journey.workspace
    batch.step(
        enrollment,
        graph["start"],
        StepOutcome.ENTERED,
        _("Holdout group") if holdout else (event.name if event else ""),
    )
    engine.run_from(enrollment, graph["start"], batch)
    return enrollment  # the caller saves it with the batch (engine.save)


def may_enter(journey: Journey, contact: Contact, key: str, reentry, now: dt.datetime) -> bool:
    previous = Enrollment.objects.filter(journey=journey, contact=contact, key=key)
    if previous.filter(state__in=OPEN_STATES).exists():
        return False
    if reentry == "always":
        return True
    if reentry == "never" or not isinstance(reentry, dict):
        return not previous.exists()
    since = now - dt.timedelta(days=reentry.get("after_days", 0))
    return not previous.filter(entered_at__gt=since).exists()


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
