"""Email services report back through django-anymail's webhooks: the payloads below are the
ESPs' documented formats (Postmark's delivery, bounce and spam complaint webhooks, Mailgun's
signed JSON events), posted to anymail's own URLs as the ESP would."""

import base64
import hashlib
import hmac
import json
import warnings

import pytest
from anymail.exceptions import AnymailInsecureWebhookWarning
from django.urls import reverse
from django.utils import timezone

from apps.channels.choices import MessageStatus, SuppressionReason
from apps.channels.models import Message, Suppression
from apps.channels.services import outbox
from apps.contacts.choices import ConsentStatus
from apps.contacts.models import Consent, Event
from apps.contacts.services.consent import set_consent
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

SECRET = "orchestra:hook-secret"
MAILGUN_KEY = "key-0123456789abcdef"
POSTMARK_ID = "883953f4-6105-42a2-a16a-77a8eac79483"
OUR_MESSAGE_ID = "<message-7@orchestra.example>"


@pytest.fixture
def esp_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    return settings


@pytest.fixture
def sent(workspace):
    """Ann's message, sent through Postmark (anymail kept Postmark's id for it)."""
    contact = ContactFactory(workspace=workspace, email="john@example.com", first_name="John")
    set_consent(contact, "email", ConsentStatus.SUBSCRIBED, "signup form")
    channel = ChannelFactory(workspace=workspace, name="Postmark", provider="anymail",
                             config={"esp": "postmark"}, is_default=True)  # fmt: skip
    return Message.objects.create(
        workspace=workspace, contact=contact, channel=channel,
        template_version=email_template(workspace).versions.get(), idempotency_key="welcome",
        status=MessageStatus.SENT, recipient="john@example.com", subject="Hello John",
        provider_message_id=POSTMARK_ID, sent_at=timezone.now(),
    )  # fmt: skip


def postmark(client, payload: dict, auth: str | None = SECRET):
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return client.post(reverse("anymail:postmark_tracking_webhook"), json.dumps(payload),
                       content_type="application/json", **headers)  # fmt: skip


def mailgun(client, event_data: dict, auth: str | None = SECRET, key: str = MAILGUN_KEY):
    timestamp, token = "1529006854", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data}  # fmt: skip
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return client.post(reverse("anymail:mailgun_tracking_webhook"), json.dumps(body),
                       content_type="application/json", **headers)  # fmt: skip


# Postmark's documented examples (https://postmarkapp.com/developer/webhooks/...).
DELIVERY = {
    "RecordType": "Delivery",
    "ServerID": 23,
    "MessageStream": "outbound",
    "MessageID": POSTMARK_ID,
    "Recipient": "john@example.com",
    "Tag": "welcome-email",
    "DeliveredAt": "2024-11-05T16:33:54.9070259Z",
    "Details": "Test delivery webhook details",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
}
BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": POSTMARK_ID,
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 23,
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
    "not found).",
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2024-11-05T16:40:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "<Full dump of bounce>",
}
SOFT_BOUNCE = {
    **BOUNCE,
    "ID": 4323372036854775808,
    "Type": "Transient",
    "TypeCode": 2,
    "Name": "Message delayed",
    "Description": "The server could not temporarily deliver your message (ex: Message is "
    "delayed due to network troubles).",
}
SPAM_COMPLAINT = {
    "RecordType": "SpamComplaint",
    "MessageStream": "outbound",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "Test",
    "MessageID": POSTMARK_ID,
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 1234,
    "Description": "The subscriber explicitly marked this message as spam.",
    "Details": "Test spam complaint details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2024-11-05T17:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Test subject",
    "Content": "<Abuse report dump>",
}
OPEN = {
    "RecordType": "Open",
    "MessageStream": "outbound",
    "FirstOpen": True,
    "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
    "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
    "Platform": "WebMail",
    "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) Chrome/35.0.1916.153",
    "ReadSeconds": 5,
    "Geo": {},
    "MessageID": POSTMARK_ID,
    "Metadata": {},
    "ReceivedAt": "2024-11-05T16:45:54Z",
    "Tag": "welcome-email",
    "Recipient": "john@example.com",
}
CLICK = {**OPEN, "RecordType": "Click", "ClickLocation": "HTML",
         "OriginalLink": "https://shop.example.com/new"}  # fmt: skip
del CLICK["FirstOpen"], CLICK["ReadSeconds"]


def events_of(message) -> list[tuple[str, dict]]:
    return list(
        Event.objects.filter(contact_id=message.contact_id)
        .order_by("id")
        .values_list("name", "properties")
    )


def test_postmark_delivery_marks_the_message_delivered_once(esp_settings, sent, client):
    assert postmark(client, DELIVERY).status_code == 200
    assert postmark(client, DELIVERY).status_code == 200  # Postmark retries; counted once

    sent.refresh_from_db()
    assert sent.status == MessageStatus.DELIVERED
    assert sent.delivered_at.isoformat() == "2024-11-05T16:33:54.907025+00:00"
    assert list(sent.history.values_list("kind", "detail")) == [
        ("delivered", "Postmark: Test delivery webhook details")
    ]
    assert events_of(sent) == [("message_delivered", {"message_id": sent.pk, "channel": "email",
                                                      "template": "welcome"})]  # fmt: skip


def test_postmark_hard_bounce_suppresses_the_address_and_the_next_send_is_dropped(
    esp_settings, sent, client, django_capture_on_commit_callbacks
):
    assert postmark(client, BOUNCE).status_code == 200

    sent.refresh_from_db()
    assert sent.status == MessageStatus.BOUNCED
    [line] = sent.history.all()
    assert line.kind == "bounced"
    assert line.detail.startswith("Postmark: The server was unable to deliver your message")
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.message_id) == (
        "john@example.com", SuppressionReason.HARD_BOUNCE, sent.pk)  # fmt: skip
    assert [name for name, _p in events_of(sent)] == ["message_bounced"]
    assert events_of(sent)[0][1]["hard"] is True

    with django_capture_on_commit_callbacks(execute=True):
        outbox.queue_message(sent.contact, sent.template_version.template, "welcome-again")
    again = Message.objects.get(idempotency_key="welcome-again")
    assert again.status == MessageStatus.DROPPED
    assert "suppressed" in again.reason


def test_postmark_soft_bounce_is_noted_and_a_later_delivery_still_counts(
    esp_settings, sent, client
):
    assert postmark(client, SOFT_BOUNCE).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert list(sent.history.values_list("kind", flat=True)) == ["deferred"]
    assert Suppression.objects.count() == 0
    assert events_of(sent) == []

    postmark(client, DELIVERY)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.DELIVERED


def test_postmark_spam_complaint_suppresses_and_unsubscribes(esp_settings, sent, client):
    assert postmark(client, SPAM_COMPLAINT).status_code == 200

    sent.refresh_from_db()
    assert sent.status == MessageStatus.COMPLAINED
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINT
    consent = Consent.objects.get(contact=sent.contact, channel="email")
    assert (consent.status, consent.source) == (ConsentStatus.UNSUBSCRIBED, "complaint")
    assert [name for name, _p in events_of(sent)] == ["message_complained"]


def test_postmark_open_and_click_are_engagement(esp_settings, sent, client):
    postmark(client, OPEN)
    postmark(client, CLICK)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.CLICKED
    assert sent.opened_at.isoformat() == "2024-11-05T16:45:54+00:00"
    assert [name for name, _p in events_of(sent)] == ["message_opened", "message_clicked"]
    assert events_of(sent)[1][1]["url"] == "https://shop.example.com/new"
    assert sent.history.get(kind="opened").detail.startswith("Mozilla/5.0")


@pytest.mark.parametrize("auth", [None, "orchestra:wrong", "someone:" + SECRET])
def test_a_webhook_without_the_secret_is_refused_and_changes_nothing(
    auth, esp_settings, sent, client
):
    response = postmark(client, BOUNCE, auth=auth)
    assert response.status_code == 400
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert sent.history.count() == 0
    assert Suppression.objects.count() == 0
    assert events_of(sent) == []


def test_without_a_configured_secret_basic_auth_webhooks_change_nothing(settings, sent, client):
    """anymail accepts them (it only warns); Orchestra ignores what nobody vouched for."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnymailInsecureWebhookWarning)
        response = postmark(client, SPAM_COMPLAINT, auth=None)
    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert Suppression.objects.count() == 0
    assert Consent.objects.get(contact=sent.contact).status == ConsentStatus.SUBSCRIBED


def test_a_report_on_an_unknown_message_or_another_recipient_changes_nothing(
    esp_settings, sent, client
):
    unknown = {**BOUNCE, "MessageID": "00000000-0000-0000-0000-000000000000"}
    other_recipient = {**BOUNCE, "Email": "someone.else@example.com"}
    assert postmark(client, unknown).status_code == 200
    assert postmark(client, other_recipient).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert Suppression.objects.count() == 0


# Mailgun: signed events; an SMTP-sent message is known by our own Message-ID header.


def mailgun_event(event: str, **fields) -> dict:
    return {
        "event": event,
        "timestamp": 1730825634.908181,
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "recipient": "john@example.com",
        "message": {"headers": {"message-id": OUR_MESSAGE_ID.strip("<>"),
                                "to": "john@example.com", "subject": "Hello John"}},
        **fields,
    }  # fmt: skip


def test_mailgun_temporary_failure_then_delivery_of_a_message_sent_over_smtp(
    esp_settings, sent, client
):
    sent.provider_message_id = OUR_MESSAGE_ID
    sent.save(update_fields=["provider_message_id"])
    temporary = mailgun_event("failed", severity="temporary", reason="generic",
                              **{"delivery-status": {"code": 452, "message": "Mailbox full",
                                                     "description": ""}})  # fmt: skip
    assert mailgun(client, temporary).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert list(sent.history.values_list("kind", "detail")) == [
        ("deferred", "Mailgun: Mailbox full")
    ]

    delivered = mailgun_event("delivered", **{"delivery-status": {"code": 250, "message": "OK"}})
    assert mailgun(client, delivered).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.DELIVERED
    assert [name for name, _p in events_of(sent)] == ["message_delivered"]


def test_a_signed_mailgun_webhook_counts_without_the_shared_secret(settings, sent, client):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    sent.provider_message_id = OUR_MESSAGE_ID
    sent.save(update_fields=["provider_message_id"])
    assert mailgun(client, mailgun_event("delivered"), auth=None).status_code == 200
    sent.refresh_from_db()
    assert sent.status == MessageStatus.DELIVERED

    forged = mailgun(client, mailgun_event("complained"), auth=None, key="key-forged")
    assert forged.status_code == 400
    sent.refresh_from_db()
    assert sent.status == MessageStatus.DELIVERED
    assert Suppression.objects.count() == 0
