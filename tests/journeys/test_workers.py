"""Two real Celery worker processes advance the same crowd of due enrollments at once: the
claim (FOR UPDATE SKIP LOCKED, one transaction per batch) shares them out, so each contact
moves on exactly once, and a worker that claims a full batch wakes the other."""

import re
import time
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from apps.contacts.choices import EventSource
from apps.contacts.models import Contact
from apps.contacts.services.events import record_events
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment, JourneyStep, NodeStats
from apps.journeys.services import journeys
from apps.journeys.tasks import advance_due_tick_task
from orchestra import redis_client
from orchestra.celery import app as celery_app
from tests.processes import QueueWorker, process_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONTACTS = 2_000
CLAIM_BATCH = 100  # in the workers: twenty batches to share, so both surely take part

WAIT_THEN_EXIT = {
    "name": "Wait a day",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": "P1D"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [{"from": "wait", "to": "done"}],
}

# "Task apps.journeys.tasks.advance_due_task[<id>] succeeded in 0.5s: 300"
MOVED = re.compile(r"advance_due_task\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)")


@pytest.fixture
def start_workers(tmp_path):
    """start_workers(): two worker processes on one queue of their own, with a small claim
    batch; from then on, tasks go to them."""
    queue = f"test-journeys-{uuid.uuid4().hex[:8]}"
    env = process_env(
        WORKER_SETUP=(
            "import django\n"
            "django.setup()\n"
            "from apps.journeys.services import engine\n"
            f"engine.CLAIM_BATCH = {CLAIM_BATCH}\n"
        )
    )
    # A flag left by an earlier test would keep the first advance task from queueing.
    redis_client.client().delete(redis_client.key("scheduled", "journeys-due"))
    pair = [QueueWorker(name, queue, env, tmp_path) for name in ("first", "second")]

    def start():
        for worker in pair:
            worker.start(wait=False)
        for worker in pair:
            worker.wait_ready()
        celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
        return pair

    try:
        yield start
    finally:
        celery_app.conf.update(task_always_eager=True, task_default_queue="celery")
        for worker in pair:
            worker.stop()


def test_two_workers_share_due_enrollments_and_move_each_exactly_once(workspace, start_workers):
    journey = journeys.create_journey(workspace, WAIT_THEN_EXIT)
    journeys.publish(journey)
    Contact.objects.bulk_create(
        Contact(workspace=workspace, external_id=f"c-{n}", email=f"c{n}@example.test")
        for n in range(CONTACTS)
    )
    # Sign-ups through ingest enroll everyone (inline here: no worker runs yet).
    for first in range(0, CONTACTS, 1000):
        items = [{"external_id": f"c-{n}", "name": "signed_up"}
                 for n in range(first, min(first + 1000, CONTACTS))]  # fmt: skip
        assert record_events(workspace, items, EventSource.API).accepted == len(items)
    assert Enrollment.objects.filter(node_id="wait").count() == CONTACTS
    # All due at once, as when a campaign's wait ends at nine.
    assert Enrollment.objects.update(due_at=timezone.now()) == CONTACTS
    workers = start_workers()

    began = time.monotonic()
    advance_due_tick_task.delay()  # what beat sends every second: once is enough
    wait_for(
        lambda: not Enrollment.objects.filter(state=EnrollmentState.ACTIVE).exists(),
        60,
        "every enrollment to move on",
        workers[0].log,
    )
    seconds = time.monotonic() - began

    # Each contact moved on once: one "done" at the wait and one exit, nothing else since.
    assert Counter(Enrollment.objects.values_list("state", "node_id")) == {
        (EnrollmentState.EXITED, "done"): CONTACTS
    }
    steps = Counter(JourneyStep.objects.values_list("node_id", "outcome"))
    assert steps == {
        ("wait", "entered"): CONTACTS,
        ("wait", "waiting"): CONTACTS,
        ("wait", "done"): CONTACTS,
        ("done", "exited"): CONTACTS,
    }
    per_enrollment = Counter(
        JourneyStep.objects.filter(outcome__in=["done", "exited"]).values_list(
            "enrollment_id", "node_id"
        )
    )
    assert len(per_enrollment) == 2 * CONTACTS
    assert set(per_enrollment.values()) == {1}
    stats = {
        s.node_id: (s.entered, s.waiting, s.completed, s.exited)
        for s in NodeStats.objects.filter(journey=journey)
    }
    assert stats == {"wait": (CONTACTS, 0, CONTACTS, 0), "done": (CONTACTS, 0, 0, CONTACTS)}

    # Both workers did part of it, and together exactly all of it (their tasks' results).
    moved = {worker.name: sum(int(n) for n in MOVED.findall(worker.text())) for worker in workers}
    assert sum(moved.values()) == CONTACTS, moved
    assert all(count > 0 for count in moved.values()), moved
    assert seconds < 60
