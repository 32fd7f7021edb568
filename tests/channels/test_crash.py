"""Exactly-once delivery when a worker dies mid-batch: a real Celery worker process sends to
a real SMTP server, is killed (SIGKILL) while the server holds one of its messages before
DATA, and a fresh worker finishes the batch once the lease sweeper returns the dead
worker's rows. The SMTP server must have received every message exactly once."""

import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.channels.choices import MessageEventKind, MessageStatus
from apps.channels.models import Message, MessageEvent
from apps.channels.services import outbox
from apps.channels.tasks import release_expired_leases_task
from apps.contacts.models import Consent, Contact
from orchestra import redis_client
from orchestra.celery import app as celery_app
from tests.channels.factories import email_template
from tests.processes import process_env, start, stop, wait_for
from tests.smtp import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MESSAGES = 60
KILLED_AT = 25  # the SMTP server holds this message (1-based) before DATA
LEASE_SECONDS = 5  # short, so the sweeper may take the dead worker's rows back soon


# `celery worker`, with the test's queue as the default queue too: what the worker queues
# itself (the sweeper waking the senders) must reach this worker, not the shared "celery".
WORKER_SCRIPT = """
import os
from orchestra.celery import app
app.conf.task_default_queue = os.environ["TEST_QUEUE"]
app.worker_main(["worker", "--pool", "solo", "--queues", os.environ["TEST_QUEUE"],
                 "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                 "--without-heartbeat"])
"""


class SendingWorker:
    """A Celery worker process (solo pool) on the test's queue, sending with the email
    settings of `sink`. `start()` again after `kill()` is a fresh process."""

    def __init__(self, sink: SmtpSink, directory, queue: str, name: str, lease: int):
        self.queue = queue
        self.env = process_env(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(sink.port),
            EMAIL_USE_TLS="false",
            MESSAGE_LEASE_SECONDS=str(lease),
            TEST_QUEUE=queue,
        )
        self.directory = directory
        self.name = name
        self.started = 0
        self.process: subprocess.Popen | None = None
        self.log = None

    def start(self) -> "SendingWorker":
        self.started += 1
        self.log = self.directory / f"{self.name}-{self.started}.log"
        self.process = start(["-c", WORKER_SCRIPT], self.env, self.log)
        wait_for(lambda: "ready." in self.log.read_text(), 60, "the worker to start", self.log)
        celery_app.conf.update(task_always_eager=False, task_default_queue=self.queue)
        return self

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no cleanup of any kind."""
        os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only this worker
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        celery_app.conf.update(task_always_eager=True, task_default_queue="celery")
        if self.process is not None and self.process.poll() is None:
            assert stop(self.process) == 0, self.log.read_text()[-4000:]

    def messages_sent(self) -> int:
        """What its send tasks answered (messages handled), from its log."""
        return sum(int(n) for n in SENT_RE.findall(self.log.read_text()))


SENT_RE = re.compile(r"send_due_messages_task\[[^\]]+\] succeeded in [\d.]+s: (\d+)")


@pytest.fixture
def sink():
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workers(sink, tmp_path):
    """workers(n, lease): n more worker processes (not started) on one queue of the test's
    own, with MESSAGE_LEASE_SECONDS `lease`."""
    # A wake-up flag left by an earlier test would keep the first send task from queueing.
    redis_client.client().delete(redis_client.key("scheduled", "send-messages"))
    queue = f"test-crash-{uuid.uuid4().hex[:8]}"
    made: list[SendingWorker] = []

    def make(count: int, lease: int) -> list[SendingWorker]:
        new = [SendingWorker(sink, tmp_path, queue, f"worker{len(made) + n + 1}", lease)
               for n in range(count)]  # fmt: skip
        made.extend(new)
        return new

    try:
        yield make
    finally:
        for sending in made:
            sending.stop()


def subscribed_contacts(workspace, count: int) -> list[Contact]:
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, email=f"person{n}@example.test", first_name=f"P{n}")
        for n in range(count)
    )
    Consent.objects.bulk_create(
        Consent(workspace=workspace, contact=contact, channel="email", status="subscribed")
        for contact in contacts
    )
    return contacts


def counts() -> Counter:
    return Counter(Message.objects.values_list("status", flat=True))


def assert_each_sent_exactly_once(sink: SmtpSink, contacts: list[Contact]) -> list[Message]:
    """At the SMTP server, every message exactly once, to its own contact; in the database,
    every message sent, with one `sent` history line."""
    messages = list(Message.objects.order_by("pk"))
    expected_ids = {f"<message-{m.pk}@{settings.MESSAGE_ID_DOMAIN}>" for m in messages}
    received_ids = Counter(mail["Message-ID"] for mail in sink.messages)
    assert len(messages) == len(contacts)
    assert len(sink.messages) == len(contacts)
    assert set(received_ids) == expected_ids
    assert set(received_ids.values()) == {1}
    assert Counter(str(mail["To"]) for mail in sink.messages) == Counter(
        {contact.email: 1 for contact in contacts}
    )
    assert counts() == {MessageStatus.SENT: len(contacts)}
    sent_lines = MessageEvent.objects.filter(kind=MessageEventKind.SENT)
    assert Counter(sent_lines.values_list("message_id", flat=True)) == Counter(
        {m.pk: 1 for m in messages}
    )
    assert {m.recipient for m in messages} == {c.email for c in contacts}
    assert all(m.provider_message_id in expected_ids for m in messages)
    return messages


def test_a_worker_killed_mid_batch_leaves_every_message_sent_exactly_once(workspace, sink, workers):
    template = email_template(workspace)
    contacts = subscribed_contacts(workspace, MESSAGES)
    [worker] = workers(1, lease=LEASE_SECONDS)
    sink.pause_before(KILLED_AT)
    worker.start()

    # One transaction: one wake-up, and the worker claims all of them in its first batch.
    with transaction.atomic():
        for contact in contacts:
            outbox.queue_message(contact, template, f"crash:{contact.pk}")

    assert sink.paused.wait(60), worker.log.read_text()[-4000:]
    worker.kill()
    # The dead worker had recorded each message the server accepted, and claimed the rest.
    assert len(sink.messages) == KILLED_AT - 1
    assert counts() == {MessageStatus.SENT: KILLED_AT - 1,
                        MessageStatus.SENDING: MESSAGES - KILLED_AT + 1}  # fmt: skip
    sink.resume()  # the held message's client is gone: its DATA never comes

    worker.start()
    leases = Message.objects.filter(status=MessageStatus.SENDING).values_list(
        "lease_until", flat=True
    )
    time.sleep(max(0.0, (max(leases) - timezone.now()).total_seconds()) + 0.1)
    # What beat runs every minute, on the fresh worker.
    released = release_expired_leases_task.delay().get(timeout=30)
    assert released == MESSAGES - KILLED_AT + 1
    wait_for(lambda: counts()[MessageStatus.SENT] == MESSAGES, 60, "every message sent",
             worker.log)  # fmt: skip

    messages = assert_each_sent_exactly_once(sink, contacts)
    # The dead worker's rows went back to the queue once, then out.
    histories = Counter(
        tuple(m.history.order_by("at", "pk").values_list("kind", flat=True)) for m in messages
    )
    assert histories == {("sent",): KILLED_AT - 1, ("released", "sent"): MESSAGES - KILLED_AT + 1}


def test_two_workers_share_a_large_outbox_and_send_each_message_once(workspace, sink, workers):
    template = email_template(workspace)
    count = 2 * outbox.SEND_BATCH + 50  # three claims: two full ones, each waking a helper
    contacts = subscribed_contacts(workspace, count)
    # The default lease: on a slow machine a batch may take long, and must not run out.
    first, second = (worker.start() for worker in workers(2, lease=300))

    with transaction.atomic():  # one wake-up: the workers call each other in
        for contact in contacts:
            outbox.queue_message(contact, template, f"many:{contact.pk}")

    wait_for(lambda: counts()[MessageStatus.SENT] == count, 90, "every message sent",
             first.log)  # fmt: skip
    assert_each_sent_exactly_once(sink, contacts)
    assert first.messages_sent() > 0 and second.messages_sent() > 0
    assert first.messages_sent() + second.messages_sent() == count
    assert set(MessageEvent.objects.values_list("kind", flat=True)) == {MessageEventKind.SENT}
