"""Exactly once through a crash: 10,000 contacts sign up and go through "send, wait, send,
exit", run by real Celery worker processes that send to a real SMTP server. Both workers
are killed (SIGKILL, as a lost machine) while the server holds one of the first emails
before its DATA, with the rest of their work in flight: events being applied, due waits
being advanced, messages being sent. Fresh workers finish the run with what beat would
run (here the test ticks): the due tick, the sender's tick, the lease sweeper, the sweep
of pending journey events. Every contact must end at the exit with each step logged once,
and the server must have received each of the 20,000 emails exactly once."""

import os
import re
import threading
import time
import uuid
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from apps.channels.choices import MessageStatus
from apps.channels.models import Message
from apps.channels.tasks import release_expired_leases_task, send_due_messages_tick_task
from apps.contacts.choices import ConsentStatus, EventSource
from apps.contacts.models import Consent, Contact
from apps.contacts.services.events import record_events
from apps.journeys.choices import EnrollmentState
from apps.journeys.models import Enrollment, JourneyStep, NodeStats, PendingJourneyEvent
from apps.journeys.services import triggers
from apps.journeys.tasks import advance_due_tick_task, sweep_journey_events_task
from orchestra import redis_client
from orchestra.celery import app as celery_app
from tests.processes import QueueWorker, process_env, wait_for
from tests.smtp import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The 10,000 take about three minutes on the 2-core machine (20,000 emails rendered
# and sent at ~140/s, as bench/send_messages.py measures); the suite runs 2,000.
CONTACTS = int(os.environ.get("JOURNEYS_CRASH_CONTACTS", "2000"))
EVENTS_PER_REQUEST = 1_000
KILLED_AT = CONTACTS * 3 // 10  # the SMTP server holds this message (1-based) before DATA
MESSAGE_LEASE_SECONDS = 4  # short, so the sweeper may take the dead workers' rows back soon
TICK_SECONDS = 0.5  # the test's beat
FINISH_SECONDS = 150

SERIES = {
    "name": "Welcome series",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "wait", "type": "wait", "duration": "PT2S"},
        {"id": "again", "type": "send", "channel": "email", "template": "welcome-2"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [
        {"from": "hello", "to": "wait"},
        {"from": "wait", "to": "again"},
        {"from": "again", "to": "done"},
    ],
}
STEPS = [
    ("hello", "entered"),
    ("hello", "sent"),
    ("wait", "waiting"),
    ("wait", "done"),
    ("again", "sent"),
    ("done", "exited"),
]
HEADER = re.compile(rb"^(Message-ID|To|Subject):\s*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


class CountingSink(SmtpSink):
    """The SMTP server, keeping only the headers this test reads of thousands of emails
    (parsing them whole would take the cores the workers need). Several workers send at
    once, so the message held is the first to reach `pause_at`, not exactly that one."""

    def __init__(self):
        super().__init__()
        self.headers: list[dict[str, str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            hold = (
                self.pause_at is not None
                and len(self.messages) + 1 >= self.pause_at
                and not self.paused.is_set()
            )
            if hold:
                self.paused.set()
        if hold:
            # Before DATA: a client killed now never delivered this message.
            await server.loop.run_in_executor(None, self.release.wait, 30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        found = {name.decode().lower(): value.decode() for name, value in
                 HEADER.findall(envelope.content.split(b"\r\n\r\n", 1)[0])}  # fmt: skip
        with self.lock:
            self.messages.append(None)  # counted by pause_before
            self.headers.append(found)
        return "250 Message accepted for delivery"


@pytest.fixture
def sink():
    server = CountingSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workers(sink, tmp_path):
    """Two worker processes sending to the sink, with a short message lease; `start()`
    again after `kill()` gives fresh processes."""
    queue = f"test-journeys-crash-{uuid.uuid4().hex[:8]}"
    env = process_env(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(sink.port),
        EMAIL_USE_TLS="false",
        MESSAGE_LEASE_SECONDS=str(MESSAGE_LEASE_SECONDS),
    )
    # Wake-up flags left by an earlier test would keep the first tasks from queueing.
    client = redis_client.client()
    for key in client.scan_iter(redis_client.key("scheduled", "*")):
        client.delete(key)
    pair = Pair([QueueWorker(name, queue, env, tmp_path) for name in ("one", "two")])
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        yield pair
    finally:
        celery_app.conf.update(task_always_eager=True, task_default_queue="celery")
        pair.stop()


class Pair:
    def __init__(self, workers: list[QueueWorker]):
        self.workers = workers

    def start(self) -> None:
        for worker in self.workers:
            worker.start(wait=False)
        for worker in self.workers:
            worker.wait_ready()

    def kill(self) -> None:
        for worker in self.workers:
            worker.kill()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(worker.text()[-3000:] for worker in self.workers)


def beat(until, timeout: float, what: str, pair: Pair) -> None:
    """What `celery beat` would send, every TICK_SECONDS, until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; logs:\n{pair.logs()}")
        advance_due_tick_task.delay()
        send_due_messages_tick_task.delay()
        sweep_journey_events_task.delay()
        release_expired_leases_task.delay()
        time.sleep(TICK_SECONDS)


def sign_up_everyone(workspace) -> None:
    """Sign-ups through ingest, a thousand a request, as a partner's tracking sends them."""
    try:
        for first in range(0, CONTACTS, EVENTS_PER_REQUEST):
            items = [{"external_id": f"c-{n}", "name": "signed_up", "message_id": f"signup-{n}"}
                     for n in range(first, first + EVENTS_PER_REQUEST)]  # fmt: skip
            assert record_events(workspace, items, EventSource.API).accepted == len(items)
    finally:
        connection.close()  # this thread's own


def test_workers_killed_mid_run_leave_every_contact_at_the_exit_with_each_email_sent_once(
    workspace, live_journey, sink, workers
):
    journey = live_journey(SERIES)
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, external_id=f"c-{n}", email=f"c{n}@example.test",
                first_name=f"N{n}")
        for n in range(CONTACTS)
    )  # fmt: skip
    Consent.objects.bulk_create(
        Consent(workspace=workspace, contact=contact, channel="email",
                status=ConsentStatus.SUBSCRIBED, source="test")
        for contact in contacts
    )  # fmt: skip
    sink.pause_before(KILLED_AT)
    workers.start()

    # Ingest in a thread of its own while the workers apply, advance and send; the test
    # ticks beat meanwhile, so every kind of work is in flight when the server pauses.
    ingest = threading.Thread(target=sign_up_everyone, args=(workspace,))
    ingest.start()
    beat(sink.paused.is_set, 120, "the server to hold a message", workers)
    workers.kill()
    assert KILLED_AT - 1 <= len(sink.headers) < CONTACTS  # some first emails, not all
    assert Message.objects.filter(status=MessageStatus.SENDING).exists()  # claimed, in flight
    sink.resume()  # the held message's client is gone: its DATA never comes
    ingest.join(60)
    assert not ingest.is_alive()

    workers.start()
    beat(
        lambda: (
            Message.objects.filter(status=MessageStatus.SENT).count() == 2 * CONTACTS
            and not Enrollment.objects.filter(state__in=["active", "waiting"]).exists()
            and Enrollment.objects.count() == CONTACTS
        ),
        FINISH_SECONDS,
        "every contact through the journey",
        workers,
    )

    # Every contact where the graph says: at the exit, each step logged once.
    assert Counter(Enrollment.objects.values_list("state", "node_id")) == {
        (EnrollmentState.EXITED, "done"): CONTACTS
    }
    steps = Counter(JourneyStep.objects.values_list("node_id", "outcome"))
    assert steps == dict.fromkeys(STEPS, CONTACTS)
    per_enrollment = Counter(JourneyStep.objects.values_list("enrollment_id", "node_id", "outcome"))
    assert len(per_enrollment) == len(STEPS) * CONTACTS
    assert set(per_enrollment.values()) == {1}
    stats = {
        s.node_id: (s.entered, s.waiting, s.completed, s.exited)
        for s in NodeStats.objects.filter(journey=journey)
    }
    assert stats == {
        "hello": (CONTACTS, 0, CONTACTS, 0),
        "wait": (CONTACTS, 0, CONTACTS, 0),
        "again": (CONTACTS, 0, CONTACTS, 0),
        "done": (CONTACTS, 0, 0, CONTACTS),
    }

    # Two messages per contact, one per send node, each sent.
    messages = list(Message.objects.values_list("pk", "contact_id", "node_id", "status"))
    assert len(messages) == 2 * CONTACTS
    assert Counter((contact, node) for _pk, contact, node, _s in messages) == {
        (contact.pk, node): 1 for contact in contacts for node in ("hello", "again")
    }
    assert {status for *_rest, status in messages} == {MessageStatus.SENT}

    # At the SMTP server: every message exactly once, to its own contact.
    time.sleep(0.5)  # a last 250 may still be on its way to the list
    received = Counter(mail["message-id"] for mail in sink.headers)
    expected = {f"<message-{pk}@{settings.MESSAGE_ID_DOMAIN}>" for pk, *_rest in messages}
    assert len(sink.headers) == 2 * CONTACTS
    assert set(received) == expected
    assert set(received.values()) == {1}
    subjects = Counter((mail["to"], mail["subject"].split(" for ")[0]) for mail in sink.headers)
    assert subjects == {
        (contact.email, slug): 1 for contact in contacts for slug in ("welcome-1", "welcome-2")
    }


# A worker that dies while applying a batch of events (here: stopped in apply_events, its
# claim made and not committed, until killed) must not lose them: PostgreSQL rolls its
# claim back with the rest, and the next worker the sweep wakes applies them, at once (no
# hold to wait out).
HOLD_IN_APPLY = """
import time
import django
django.setup()
from apps.journeys.services import triggers
if {hold}:
    def applying(*args, **kwargs):
        print("applying events; held until killed", flush=True)
        time.sleep(600)
    triggers.apply_events = applying
"""


def test_events_claimed_by_a_worker_killed_mid_batch_are_applied_by_the_next_one(
    workspace, live_journey, sink, tmp_path
):
    live_journey(SERIES)
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, external_id=f"c-{n}", email=f"c{n}@example.test")
        for n in range(20)
    )
    Consent.objects.bulk_create(
        Consent(workspace=workspace, contact=contact, channel="email",
                status=ConsentStatus.SUBSCRIBED, source="test")
        for contact in contacts
    )  # fmt: skip
    queue = f"test-journeys-held-{uuid.uuid4().hex[:8]}"
    env = process_env(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(sink.port),
        EMAIL_USE_TLS="false",
    )
    client = redis_client.client()
    for key in client.scan_iter(redis_client.key("scheduled", "*")):
        client.delete(key)
    stuck = QueueWorker("stuck", queue, {**env, "WORKER_SETUP": HOLD_IN_APPLY.format(
        hold=True)}, tmp_path)  # fmt: skip
    fresh = QueueWorker("fresh", queue, {**env, "WORKER_SETUP": HOLD_IN_APPLY.format(
        hold=False)}, tmp_path)  # fmt: skip
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        stuck.start()
        items = [{"external_id": c.external_id, "name": "signed_up"} for c in contacts]
        assert record_events(workspace, items, EventSource.API).accepted == 20
        wait_for(lambda: "held until killed" in stuck.log.read_text(), 30, "the batch", stuck.log)
        # Claimed: the claim's uncommitted delete hides nothing from others, but holds them.
        assert PendingJourneyEvent.objects.count() == 20
        assert triggers.apply_pending_batch(workspace.pk) is None  # the workspace is held
        stuck.kill()
        assert Enrollment.objects.count() == 0  # the dead worker's transaction never was

        fresh.start()
        pair = Pair([fresh])
        beat(lambda: len(sink.headers) == 20, 60, "the claimed events to be applied", pair)
    finally:
        celery_app.conf.update(task_always_eager=True, task_default_queue="celery")
        fresh.stop()

    assert Counter(Enrollment.objects.values_list("node_id", flat=True)) == {"wait": 20}
    assert sorted(mail["to"] for mail in sink.headers) == sorted(c.email for c in contacts)
    assert PendingJourneyEvent.objects.count() == 0
