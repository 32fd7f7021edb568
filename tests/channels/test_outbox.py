"""The outbox end to end on a real SMTP server: queue, claim, policies, render, send, record."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from apps.channels.choices import MessageStatus
from apps.channels.models import DeliveryPolicy, Message, MessageEvent, Suppression
from apps.channels.services import outbox
from apps.contacts.choices import ConsentStatus
from apps.contacts.services.consent import set_consent
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def subscribed(workspace):
    def make(**fields):
        contact = ContactFactory(workspace=workspace, **fields)
        set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "test")
        return contact

    return make


def test_a_queued_email_arrives_once_personalised_with_tracking(workspace, smtp_server, subscribed):
    contact = subscribed(first_name="Ann", email="ann@example.test")
    template = email_template(workspace)

    first = outbox.queue_message(contact, template, "welcome:ann")
    again = outbox.queue_message(contact, template, "welcome:ann")

    assert first.created and not again.created and again.message.pk == first.message.pk
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "Hello Ann"
    assert mail["To"] == "ann@example.test"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert 'style="color: #333' in html  # CSS inlined
    assert "/t/c/" in html and "https://shop.example.com/new" not in html  # link tracked
    assert "/t/o/" in html  # open pixel
    assert "/t/u/" in html and "/t/u/" in text  # unsubscribe link always present
    assert "Hi Ann" in text
    message = Message.objects.get()
    assert message.status == MessageStatus.SENT
    assert message.links == ["https://shop.example.com/new"]
    assert message.template_version.number == 1
    assert list(message.history.values_list("kind", flat=True)) == ["sent"]


def test_consent_and_suppression_are_checked_at_send_time(workspace, smtp_server, subscribed):
    template = email_template(workspace)
    unknown = ContactFactory(workspace=workspace)
    unsubscribed = subscribed()
    set_consent(unsubscribed, "email", ConsentStatus.UNSUBSCRIBED, "test")
    bounced = subscribed(email="gone@example.test")
    Suppression.objects.create(workspace=workspace, channel_type="email",
                               address="gone@example.test", reason="hard_bounce")  # fmt: skip

    for contact in (unknown, unsubscribed, bounced):
        outbox.queue_message(contact, template, f"t:{contact.pk}")

    assert smtp_server.messages == []
    reasons = dict(Message.objects.values_list("contact_id", "reason"))
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.DROPPED}
    assert "not opted in" in reasons[unknown.pk]
    assert "unsubscribed" in reasons[unsubscribed.pk]
    assert "suppressed" in reasons[bounced.pk]


def test_pressure_lets_the_highest_priority_message_through(workspace, smtp_server, subscribed):
    DeliveryPolicy.objects.create(workspace=workspace, max_per_day=1, over_limit="drop")
    contact = subscribed()
    template = email_template(workspace)
    in_the_future = timezone.now() + dt.timedelta(hours=1)
    low = outbox.queue_message(contact, template, "low", priority=0, due_at=in_the_future)
    high = outbox.queue_message(contact, template, "high", priority=5, due_at=in_the_future)
    Message.objects.update(due_at=timezone.now())

    outbox.send_due_messages()

    low.message.refresh_from_db()
    high.message.refresh_from_db()
    assert high.message.status == MessageStatus.SENT
    assert low.message.status == MessageStatus.DROPPED
    assert len(smtp_server.messages) == 1


def test_quiet_hours_defer_to_the_contacts_morning(workspace, smtp_server, subscribed):
    DeliveryPolicy.objects.create(
        workspace=workspace, quiet_hours_start=dt.time(0, 0), quiet_hours_end=dt.time(23, 59)
    )
    contact = subscribed(timezone="Asia/Tokyo")

    queued = outbox.queue_message(contact, email_template(workspace), "quiet")

    queued.message.refresh_from_db()
    assert queued.message.status == MessageStatus.QUEUED
    assert queued.message.attempts == 0
    local_due = queued.message.due_at.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert (local_due.hour, local_due.minute) == (23, 59)
    assert smtp_server.messages == []


def test_a_refused_address_fails_and_a_broken_server_retries(
    workspace, smtp_server, subscribed, settings
):
    contact = subscribed()
    settings.EMAIL_PORT = 1  # nothing listens there

    queued = outbox.queue_message(contact, email_template(workspace), "retry")

    queued.message.refresh_from_db()
    assert queued.message.status == MessageStatus.QUEUED
    assert queued.message.due_at > timezone.now()
    assert queued.message.history.get().kind == "retry"


def test_an_expired_lease_returns_the_message_to_the_queue(workspace, subscribed, smtp_server):
    contact = subscribed()
    template = email_template(workspace)
    later = timezone.now() + dt.timedelta(hours=1)
    queued = outbox.queue_message(contact, template, "lease", due_at=later)
    Message.objects.update(status=MessageStatus.SENDING, lease_until=timezone.now())

    assert outbox.release_expired_leases() == 1

    queued.message.refresh_from_db()
    assert queued.message.status == MessageStatus.QUEUED
    assert queued.message.history.get().kind == "released"


def test_a_batch_whose_lease_is_running_out_returns_its_messages_unsent(
    workspace, subscribed, smtp_server
):
    template = email_template(workspace)
    later = timezone.now() + dt.timedelta(hours=1)
    for n in range(3):
        outbox.queue_message(subscribed(), template, f"late:{n}", due_at=later)
    Message.objects.update(due_at=timezone.now())
    ids = outbox.claim_due(outbox.SEND_BATCH)

    outbox.send_batch(ids, deadline=time.monotonic() - 1)

    assert smtp_server.messages == []
    assert set(Message.objects.values_list("status", "attempts", "lease_until")) == {
        (MessageStatus.QUEUED, 0, None)
    }
    assert set(MessageEvent.objects.values_list("kind", flat=True)) == {"released"}


def test_a_full_claim_calls_for_another_sender(workspace, subscribed, smtp_server, monkeypatch):
    monkeypatch.setattr(outbox, "SEND_BATCH", 2)
    template = email_template(workspace)
    later = timezone.now() + dt.timedelta(hours=1)
    for n in range(5):
        outbox.queue_message(subscribed(), template, f"many:{n}", due_at=later)
    Message.objects.update(due_at=timezone.now())
    calls = []

    handled, more = outbox.send_due_messages(on_full_batch=lambda: calls.append(1))

    assert (handled, more) == (5, False)
    assert len(calls) == 2  # two full claims of 2; the last claim (1) wakes no one
    assert len(smtp_server.messages) == 5
