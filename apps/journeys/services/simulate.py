"""Simulation: the path one contact would take through a journey, with time compressed
and nothing sent or changed. The contact's real event history is replayed from its entry:
a wait for an event resumes if the history has the event in time, a goal or exit event in
a wait's window acts as it would, and conditions look at the contact as it is now."""

from dataclasses import dataclass

from django.utils import timezone

from apps.contacts.models import Event
from apps.journeys.choices import EnrollmentState, StepOutcome
from apps.journeys.models import Enrollment, JourneyVersion
from apps.journeys.services import engine
from apps.segments.rules import properties_match

MAX_WAITS = 50


@dataclass
class Simulation:
    path: list[dict]
    messages: list[dict]
    state: str
    entered: bool


def simulate(journey, contact, graph: dict | None = None) -> Simulation:
    graph = graph or journey.draft
    history = list(Event.objects.filter(contact=contact).order_by("occurred_at", "pk"))
    entry = graph.get("entry") or {}
    entered_at, entry_event = _entry(entry, history)
    if entered_at is None:
        return Simulation([], [], "", entered=False)
    version = JourneyVersion(journey=journey, number=0, graph=graph)
    enrollment = Enrollment(
        workspace=journey.workspace,
        journey=journey,
        version=version,
        contact=contact,
        node_id=graph["start"],
        visits={},
        entry_event=_event_json(entry_event),
    )
    batch = engine.Batch(now=entered_at, simulate=True)
    batch.step(enrollment, graph["start"], StepOutcome.ENTERED)
    engine.run_from(enrollment, graph["start"], batch)
    for _wait in range(MAX_WAITS):
        if enrollment.state not in (EnrollmentState.ACTIVE, EnrollmentState.WAITING):
            break
        if enrollment.due_at is None:
            break
        _resolve_wait(enrollment, graph, history, batch)
    path = [
        {"node": s.node_id, "outcome": s.outcome, "detail": s.detail, "at": s.at.isoformat()}
        for s in batch.steps
    ]
    return Simulation(path, batch.messages, enrollment.state, entered=True)


def _entry(entry: dict, history: list[Event]):
    if entry.get("type") == "event":
        for event in history:
            if event.name == entry.get("event") and properties_match(
                event.properties, entry.get("where") or [], event.occurred_at
            ):
                return event.occurred_at, event
        return None, None
    if entry.get("type") == "segment_entered":
        for event in history:
            if event.name == "segment_entered" and (event.properties or {}).get(
                "segment"
            ) == entry.get("segment"):
                return event.occurred_at, event
        return None, None
    return timezone.now(), None  # api and date entries: as if entering now


def _resolve_wait(enrollment, graph, history: list[Event], batch) -> None:
    """Move the virtual clock to whatever ends the current wait first."""
    start, until = batch.now, enrollment.due_at
    exit_event = (graph.get("exit_when") or {}).get("event")
    goals = [n for n in graph.get("nodes", []) if n.get("type") == "goal"]
    for event in history:
        if not start < event.occurred_at <= until:
            continue
        batch.now = event.occurred_at
        if event.name == exit_event:
            engine.exit_enrollment(enrollment, batch, f"exit event {event.name}")
            return
        for goal in goals:
            if (
                goal.get("event") == event.name
                and enrollment.converted_at is None
                and properties_match(event.properties, goal.get("where") or [], batch.now)
            ):
                engine.jump_to_goal(enrollment, goal["id"], batch)
                return
        if enrollment.state == EnrollmentState.WAITING and event.name == enrollment.awaiting_event:
            node = enrollment.version.node(enrollment.node_id) or {}
            if properties_match(event.properties, node.get("where") or [], batch.now):
                engine.leave_wait(enrollment, "event", batch, StepOutcome.RESUMED)
                return
    batch.now = until
    if enrollment.state == EnrollmentState.WAITING:
        engine.leave_wait(enrollment, "timeout", batch, StepOutcome.TIMED_OUT)
    else:
        engine.leave_wait(enrollment, None, batch, StepOutcome.DONE)


def _event_json(event) -> dict:
    if event is None:
        return {}
    return {
        "name": event.name,
        "properties": event.properties,
        "occurred_at": event.occurred_at.isoformat(),
    }
