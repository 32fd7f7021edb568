"""Events reach the journeys exactly once. Ingest writes a pending row with each event a
journey listens for, in the statement that stores the event; a worker deletes the rows it
claims in the transaction that applies them. Whatever dies when (ingest after its commit,
a worker before its commit, a lost wake-up), each event is applied once, and two workers
on one workspace neither apply an event twice nor a contact's events out of order."""

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.contacts.choices import EventSource
from apps.contacts.models import Event
from apps.contacts.services.events import record_events, record_system_event
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment, JourneyStep, PendingJourneyEvent
from apps.journeys.services import triggers
from apps.journeys.tasks import process_journey_events_task, sweep_journey_events_task
from orchestra import redis_client
from tests.contacts.factories import ContactFactory
from tests.processes import BASE_DIR, process_env

pytestmark = pytest.mark.django_db(transaction=True)

# Re-entry "always" and straight to the exit: each time the sign-up is applied, the
# contact enters once more, so an event applied twice would show as a second enrollment.
EVERY_SIGN_UP = {
    "name": "Every sign-up",
    "entry": {"type": "event", "event": "signed_up"},
    "reentry": "always",
    "start": "done",
    "nodes": [{"id": "done", "type": "exit"}],
    "edges": [],
}

# A purchase after the sign-up converts the contact; one applied before it would not.
SIGN_UP_THEN_BUY = {
    "name": "Sign-up to purchase",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": "P1D"},
        {"id": "done", "type": "exit"},
        {"id": "bought", "type": "goal", "event": "purchase"},
    ],
    "edges": [{"from": "wait", "to": "done"}],
}


@pytest.fixture(autouse=True)
def no_wake_up_flags():
    """A wake-up flag left by an earlier test would keep this one's workers from queueing."""
    client = redis_client.client()
    for key in client.scan_iter(redis_client.key("scheduled", "journey-events:*")):
        client.delete(key)


@pytest.fixture
def wake_ups_lost(monkeypatch):
    """The wake-up after ingest's commit never reaches a worker (Redis down, or the message
    lost): only the pending rows in PostgreSQL know about the events."""
    monkeypatch.setattr(triggers, "_wake", lambda workspace_id: None)


def sign_ups(contacts, name="signed_up"):
    return [{"external_id": contact.external_id, "name": name} for contact in contacts]


# Ingest stores the events and is killed right after its commit, before the wake-up:
# a process of its own, which SIGKILLs itself where the wake-up would go to Redis.
KILLED_AFTER_COMMIT = """
import json, os, signal
import django
django.setup()
from apps.accounts.models import Workspace
from apps.contacts.services.events import record_events
from apps.journeys.services import triggers

def killed(workspace_id):
    os.kill(os.getpid(), signal.SIGKILL)

triggers._wake = killed
workspace = Workspace.objects.get(pk=int(os.environ["WORKSPACE_ID"]))
record_events(workspace, json.loads(os.environ["EVENTS"]), "api")
print("the wake-up went out", flush=True)
"""


@pytest.mark.parametrize("count", [1, 3], ids=["one event", "a batch"])
def test_ingest_killed_between_commit_and_wake_up_loses_nothing_the_sweep_applies_once(
    workspace, live_journey, count
):
    live_journey(EVERY_SIGN_UP)
    contacts = [ContactFactory(workspace=workspace) for _ in range(count)]
    items = [*sign_ups(contacts), {"external_id": contacts[0].external_id, "name": "page_viewed"}]
    items = items[:count] if count == 1 else items  # the one-event path: a single item

    ingest = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_COMMIT],
        cwd=BASE_DIR,
        env=process_env(WORKSPACE_ID=str(workspace.pk), EVENTS=json.dumps(items)),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ingest.returncode == -signal.SIGKILL, ingest.stdout + ingest.stderr
    assert "the wake-up went out" not in ingest.stdout
    assert Event.objects.filter(workspace=workspace).count() == len(items)
    signed_up = set(Event.objects.filter(name="signed_up").values_list("pk", flat=True))
    # Only the events a journey listens for wait for the journeys (no page_viewed).
    assert set(PendingJourneyEvent.objects.values_list("event_id", flat=True)) == signed_up
    assert Enrollment.objects.count() == 0

    assert triggers.pending_workspaces() == [workspace.pk]
    sweep_journey_events_task.delay()  # what beat sends every 15 s
    sweep_journey_events_task.delay()

    assert Counter(Enrollment.objects.values_list("contact_id", "state")) == {
        (contact.pk, EnrollmentState.EXITED): 1 for contact in contacts
    }
    assert PendingJourneyEvent.objects.count() == 0
    assert triggers.pending_workspaces() == []


def test_nothing_waits_for_the_journeys_when_no_journey_listens(workspace, live_journey):
    live_journey(EVERY_SIGN_UP)
    contacts = [ContactFactory(workspace=workspace) for _ in range(3)]

    assert record_events(workspace, sign_ups(contacts, "page_viewed"), EventSource.API).stored == 3
    assert record_events(workspace, sign_ups(contacts[:1], "clicked"), EventSource.API).stored == 1
    record_system_event(workspace.pk, contacts[0].pk, "email_opened", {})

    assert Event.objects.count() == 5
    assert PendingJourneyEvent.objects.count() == 0
    assert Enrollment.objects.count() == 0


def test_a_system_event_is_pending_with_its_event_and_applied_by_the_sweep(
    workspace, live_journey, wake_ups_lost
):
    live_journey({**EVERY_SIGN_UP, "entry": {"type": "event", "event": "email_opened"}})
    contact = ContactFactory(workspace=workspace)

    record_system_event(workspace.pk, contact.pk, "email_opened", {"message": 1})

    event = Event.objects.get(name="email_opened")
    assert event.source == EventSource.SYSTEM
    assert list(PendingJourneyEvent.objects.values_list("event_id", "workspace_id")) == [
        (event.pk, workspace.pk)
    ]
    assert Enrollment.objects.count() == 0
    sweep_journey_events_task.delay()
    assert Enrollment.objects.get().contact_id == contact.pk
    assert PendingJourneyEvent.objects.count() == 0


def test_a_worker_whose_transaction_fails_after_its_claim_leaves_the_events_pending(
    workspace, live_journey, monkeypatch
):
    live_journey(EVERY_SIGN_UP)
    contacts = [ContactFactory(workspace=workspace) for _ in range(4)]
    applied = triggers.apply_events

    def fails_after_applying(workspace_id, events):
        applied(workspace_id, events)  # enrollments written, in the claim's transaction
        assert Enrollment.objects.count() == 4
        raise ConnectionError("the worker's database connection is gone")

    monkeypatch.setattr(triggers, "apply_events", fails_after_applying)
    # The wake-up runs the worker inline (eager), which fails; ingest itself succeeds.
    assert record_events(workspace, sign_ups(contacts), EventSource.API).stored == 4
    with pytest.raises(ConnectionError):
        process_journey_events_task.delay(workspace.pk)

    # Its claim was rolled back with the rest: nothing applied, everything still pending.
    assert Enrollment.objects.count() == 0
    assert JourneyStep.objects.count() == 0
    assert PendingJourneyEvent.objects.count() == 4

    monkeypatch.setattr(triggers, "apply_events", applied)
    assert process_journey_events_task.delay(workspace.pk).get() == 4
    assert process_journey_events_task.delay(workspace.pk).get() == 0
    assert Counter(Enrollment.objects.values_list("contact_id", flat=True)) == {
        contact.pk: 1 for contact in contacts
    }
    assert PendingJourneyEvent.objects.count() == 0


def drain_in_two_threads(workspace_id: int) -> list[int]:
    """Two workers (threads, each with its own connection) drain the workspace at once."""
    start = threading.Barrier(2)
    counts, errors = [], []

    def worker():
        try:
            start.wait(10)
            done = 0
            deadline = time.monotonic() + 60
            # A worker that finds the other one at work leaves; this one comes back, as
            # the next wake-up would, until nothing is pending.
            while PendingJourneyEvent.objects.filter(workspace_id=workspace_id).exists():
                done += triggers.process_pending_events(workspace_id)
                assert time.monotonic() < deadline
            counts.append(done)
        except Exception as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    assert len(counts) == 2
    return counts


def test_two_workers_at_once_apply_each_event_once(
    workspace, live_journey, wake_ups_lost, monkeypatch
):
    live_journey(EVERY_SIGN_UP)
    contacts = [ContactFactory(workspace=workspace) for _ in range(60)]
    # Each contact signs up three times: 180 events, 18 batches of 10 to share.
    for _round in range(3):
        assert record_events(workspace, sign_ups(contacts), EventSource.API).stored == 60
    assert PendingJourneyEvent.objects.count() == 180
    monkeypatch.setattr(triggers, "EVENTS_BATCH", 10)

    counts = drain_in_two_threads(workspace.pk)

    assert sum(counts) == 180
    assert Counter(Enrollment.objects.values_list("contact_id", flat=True)) == {
        contact.pk: 3 for contact in contacts
    }
    assert Counter(JourneyStep.objects.values_list("outcome", flat=True)) == {
        "entered": 180,
        "exited": 180,
    }
    assert PendingJourneyEvent.objects.count() == 0


def test_two_workers_at_once_apply_each_contacts_events_in_order(
    workspace, live_journey, wake_ups_lost, monkeypatch
):
    live_journey(SIGN_UP_THEN_BUY)
    contacts = [ContactFactory(workspace=workspace) for _ in range(50)]
    signed_up_at = timezone.now()
    bought_at = (signed_up_at + dt.timedelta(seconds=1)).isoformat()
    # Sign-up and purchase side by side, so with batches of 7 many a contact's two events
    # fall in two batches, which two workers would otherwise apply at the same time.
    items = []
    for contact in contacts:
        items.append({"external_id": contact.external_id, "name": "signed_up",
                      "occurred_at": signed_up_at.isoformat()})  # fmt: skip
        items.append({"external_id": contact.external_id, "name": "purchase",
                      "occurred_at": bought_at})  # fmt: skip
    assert record_events(workspace, items, EventSource.API).stored == 100
    monkeypatch.setattr(triggers, "EVENTS_BATCH", 7)

    counts = drain_in_two_threads(workspace.pk)

    assert sum(counts) == 100
    converted = Enrollment.objects.filter(converted_at__isnull=False)
    assert sorted(converted.values_list("contact_id", flat=True)) == sorted(c.pk for c in contacts)
    assert Enrollment.objects.count() == 50
    assert PendingJourneyEvent.objects.count() == 0


def test_the_sweep_wakes_a_worker_for_each_workspace_with_pending_events(
    workspace, other_workspace, live_journey, wake_ups_lost
):
    from apps.journeys.services import journeys

    live_journey(EVERY_SIGN_UP)
    theirs = journeys.create_journey(other_workspace, EVERY_SIGN_UP)
    journeys.publish(theirs)
    ours = [ContactFactory(workspace=workspace) for _ in range(2)]
    their_contact = ContactFactory(workspace=other_workspace)
    record_events(workspace, sign_ups(ours), EventSource.API)
    record_events(other_workspace, sign_ups([their_contact]), EventSource.API)

    assert sorted(triggers.pending_workspaces()) == sorted([workspace.pk, other_workspace.pk])
    sweep_journey_events_task.delay()

    assert Counter(Enrollment.objects.values_list("workspace_id", flat=True)) == {
        workspace.pk: 2,
        other_workspace.pk: 1,
    }
    # Each workspace's enrollments are its own contacts'.
    assert set(
        Enrollment.objects.filter(workspace=other_workspace).values_list("contact_id", flat=True)
    ) == {their_contact.pk}
    assert triggers.pending_workspaces() == []


def test_the_event_of_an_erased_contact_is_let_go_when_claimed(
    workspace, live_journey, wake_ups_lost
):
    live_journey(EVERY_SIGN_UP)
    gone, stays = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    record_events(workspace, sign_ups([gone, stays]), EventSource.API)
    gone.delete()  # its events with it; their pending rows stay behind (no constraint)
    assert PendingJourneyEvent.objects.count() == 2

    assert triggers.process_pending_events(workspace.pk) == 2

    assert list(Enrollment.objects.values_list("contact_id", flat=True)) == [stays.pk]
    assert PendingJourneyEvent.objects.count() == 0


@pytest.mark.parametrize("count", [1, 3], ids=["one event", "a batch"])
def test_the_event_and_its_pending_row_are_written_by_one_statement(
    workspace, live_journey, wake_ups_lost, count
):
    live_journey(EVERY_SIGN_UP)
    contacts = [ContactFactory(workspace=workspace) for _ in range(count)]

    with CaptureQueriesContext(connection) as queries:
        record_events(workspace, sign_ups(contacts), EventSource.API)

    writes = [q["sql"] for q in queries if "journeys_pendingjourneyevent" in q["sql"]]
    assert len(writes) == 1
    assert "INSERT INTO contacts_event" in writes[0]
    assert PendingJourneyEvent.objects.count() == count


def test_the_admin_lists_pending_events_found_by_event_id_or_name(
    admin_client, workspace, live_journey, wake_ups_lost
):
    live_journey(EVERY_SIGN_UP)
    contact = ContactFactory(workspace=workspace)
    record_events(workspace, sign_ups([contact]), EventSource.API)
    event = Event.objects.get()
    url = reverse("admin:journeys_pendingjourneyevent_changelist")

    for query, found in ((str(event.pk), 1), ("signed_up", 1), ("x", 0), (str(event.pk + 1), 0)):
        response = admin_client.get(url, {"q": query})
        assert response.status_code == 200
        assert response.context["cl"].result_count == found, query
    assert admin_client.get(reverse("admin:journeys_pendingjourneyevent_add")).status_code == 403
