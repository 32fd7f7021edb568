"""Queuing many messages at once (outbox.queue_messages): one statement, the same rules as
queue_message (default channel, current version, idempotency keys), and the journey engine
queuing a whole batch's sends that way."""

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Channel, Message
from apps.channels.services import outbox
from apps.channels.services.outbox import MessageRequest
from apps.channels.services.templates import save_template
from apps.contacts.choices import ConsentStatus
from apps.contacts.services.consent import set_consent
from apps.journeys.models import Enrollment, JourneyStep
from apps.journeys.services import engine, journeys
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)


def inserts_into_messages(queries) -> int:
    return sum(1 for q in queries if INSERT_MESSAGE_RE.search(q["sql"]))


INSERT_MESSAGE_RE = re.compile(r'INSERT INTO "?channels_message"?[ (]', re.IGNORECASE)


@pytest.fixture
def subscribed(workspace):
    def make(**fields):
        contact = ContactFactory(workspace=workspace, **fields)
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "test")
        return contact

    return make


def test_many_messages_are_queued_in_one_statement_pinned_to_the_current_version(workspace):
    channel = ChannelFactory(workspace=workspace, is_default=True)
    template = email_template(workspace)
    assert save_template(template, {"subject": "Second {{ contact.id }}"}) == {}
    contacts = [ContactFactory(workspace=workspace) for _ in range(30)]
    later = timezone.now() + timezone.timedelta(hours=2)
    requests = [
        MessageRequest(
            contact,
            template,
            f"spring:{contact.pk}",
            context={"n": n},
            priority=n % 3,
            due_at=later if n == 0 else None,
        )
        for n, contact in enumerate(contacts)
    ]

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        queued = outbox.queue_messages(workspace, requests)  # (sent once this commits)

    assert len(queries) == 2  # the default channel, then every message in one statement
    assert inserts_into_messages(queries) == 1
    assert [q.created for q in queued] == [True] * 30
    assert [q.message.contact_id for q in queued] == [c.pk for c in contacts]
    rows = list(Message.objects.order_by("pk"))
    assert [m.pk for m in rows] == [q.message.pk for q in queued]  # ids in request order
    assert {m.template_version.number for m in rows} == {2}
    assert {m.channel_id for m in rows} == {channel.pk}
    # Sent once the transaction committed: no consent, so dropped; the one due later waits.
    assert rows[0].status == MessageStatus.QUEUED
    assert {m.status for m in rows[1:]} == {MessageStatus.DROPPED}
    assert (rows[0].due_at, rows[0].priority, rows[0].context) == (later, 0, {"n": 0})
    assert (rows[4].priority, rows[4].context) == (1, {"n": 4})
    assert queued[4].message.template_version_id == rows[4].template_version_id


def test_an_idempotency_key_used_before_or_twice_in_the_list_queues_one_message(workspace):
    template = email_template(workspace)
    ann, bo, cy = (ContactFactory(workspace=workspace) for _ in range(3))
    first = outbox.queue_message(ann, template, "welcome:ann")

    queued = outbox.queue_messages(
        workspace,
        [
            MessageRequest(ann, template, "welcome:ann"),
            MessageRequest(bo, template, "welcome:bo"),
            MessageRequest(bo, template, "welcome:bo"),
            MessageRequest(cy, template, "welcome:cy"),
        ],
    )

    assert [q.created for q in queued] == [False, True, False, True]
    assert queued[0].message.pk == first.message.pk
    assert queued[2].message.pk == queued[1].message.pk
    assert Message.objects.count() == 3
    keys = sorted(Message.objects.values_list("idempotency_key", flat=True))
    assert keys == ["welcome:ann", "welcome:bo", "welcome:cy"]


def test_without_a_channel_of_the_type_nothing_is_queued(workspace):
    sms = email_template(workspace)
    sms.channel = ChannelType.SMS
    sms.save(update_fields=["channel"])
    ann = ContactFactory(workspace=workspace)
    email = email_template(workspace, "other")

    with pytest.raises(outbox.NoChannel):
        outbox.queue_messages(
            workspace,
            [MessageRequest(ann, email, "a"), MessageRequest(ann, sms, "b")],
        )

    assert not Message.objects.exists()


def test_a_contact_or_channel_of_another_workspace_is_refused(workspace):
    outsider = Workspace.objects.create(name="Globex", slug="globex")
    template = email_template(workspace)
    theirs = ContactFactory(workspace=outsider)
    their_channel = ChannelFactory(workspace=outsider, name="Globex mail")
    ours = ContactFactory(workspace=workspace)

    with pytest.raises(ValueError):
        outbox.queue_messages(workspace, [MessageRequest(theirs, template, "x")])
    with pytest.raises(ValueError):
        outbox.queue_messages(
            workspace, [MessageRequest(ours, template, "y", channel=their_channel)]
        )

    assert not Message.objects.exists()
    assert not Channel.objects.filter(workspace=outsider, is_default=True).exists()


def test_messages_queued_together_are_each_sent_once(workspace, smtp_server, subscribed):
    template = email_template(workspace)
    contacts = [subscribed(email=f"c{n}@example.test", first_name=f"C{n}") for n in range(12)]

    queued = outbox.queue_messages(
        workspace, [MessageRequest(c, template, f"hello:{c.pk}") for c in contacts]
    )

    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(c.email for c in contacts)
    assert sorted(m["Subject"] for m in smtp_server.messages) == sorted(
        f"Hello C{n}" for n in range(12)
    )
    ours = Message.objects.filter(pk__in=[q.message.pk for q in queued])
    statuses = set(ours.values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT}


DRIP = {
    "name": "Drip",
    "entry": {"type": "api"},
    "start": "wait",
    "nodes": [
        {"id": "wait", "type": "wait", "duration": "P1D"},
        {"id": "hello", "type": "send", "channel": "email", "template": "welcome"},
        {"id": "done", "type": "exit"},
    ],
    "edges": [{"from": "wait", "to": "hello"}, {"from": "hello", "to": "done"}],
}


def test_the_engine_queues_a_batch_of_sends_in_one_statement(workspace, subscribed, smtp_server):
    email_template(workspace)
    journey = journeys.create_journey(workspace, DRIP)
    journeys.publish(journey)
    journey.refresh_from_db()
    contacts = [subscribed(email=f"d{n}@example.test") for n in range(25)]
    for contact in contacts:
        journeys.enroll_contact(journey, contact)
    Enrollment.objects.update(due_at=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        assert engine.advance_due() == 25

    assert inserts_into_messages(queries) == 1
    messages = {m.contact_id: m for m in Message.objects.filter(journey_id=journey.pk)}
    assert sorted(messages) == sorted(c.pk for c in contacts)
    sent_steps = JourneyStep.objects.filter(node_id="hello", outcome="sent")
    assert sent_steps.count() == 25
    for step in sent_steps.select_related("enrollment"):
        message = messages[step.enrollment.contact_id]
        assert step.message_id == message.pk
        assert message.idempotency_key == f"journey:{step.enrollment_id}:hello:1"
    assert len(smtp_server.messages) == 25
