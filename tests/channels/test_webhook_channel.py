"""The webhook channel end to end: queued, signed, posted to a real local HTTP server that
checks the signature the way a receiver would."""

import hashlib
import hmac
import time

import pytest
from django.utils import timezone

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message
from apps.channels.providers import PROVIDERS
from apps.channels.providers.webhook import Webhook, WebhookForm
from apps.channels.services import outbox
from apps.channels.services.templates import create_template
from tests.channels.factories import ChannelFactory
from tests.channels.http_peer import HttpPeer, Reply
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def peer():
    with HttpPeer() as server:
        yield server


@pytest.fixture
def channel(workspace, peer):
    return ChannelFactory(
        workspace=workspace,
        name="CRM",
        type=ChannelType.WEBHOOK,
        provider="webhook",
        config={"url": f"{peer.url}/orchestra", "timeout": 0.5},
        secrets={"signing_secret": SECRET},
    )


@pytest.fixture
def template(workspace):
    template, problems = create_template(
        workspace,
        {
            "name": "Call the customer",
            "slug": "call",
            "channel": ChannelType.WEBHOOK,
            "body": "Call {{ contact.first_name }} about {{ event.properties.plan }}",
        },
    )
    assert not problems
    return template


def verified(request, secret=SECRET, tolerance=300) -> bool:
    """What a receiver does with X-Orchestra-Signature."""
    fields = dict(
        part.split("=", 1) for part in request.headers["x-orchestra-signature"].split(",")
    )
    signed = f"{fields['t']}.".encode() + request.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) < tolerance
    return fresh and hmac.compare_digest(expected, fields["v1"])


def test_message_is_posted_as_signed_json_without_any_consent(workspace, channel, template, peer):
    peer.handler = lambda request: Reply(204 if verified(request) else 401)
    contact = ContactFactory(workspace=workspace, first_name="Ann", email="ann@example.test")
    event = {"name": "upgraded", "properties": {"plan": "pro"}}

    queued = outbox.queue_message(
        contact,
        template,
        "call:ann",
        channel=channel,
        context={"event": event, "journey": "upsell"},
    )

    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    assert message.recipient == f"{peer.url}/orchestra"
    assert len(peer.requests) == 1
    request = peer.requests[0]
    assert (request.method, request.path) == ("POST", "/orchestra")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-orchestra-message-id"] == str(message.pk)
    assert verified(request)
    payload = request.json()
    assert set(payload) == {"message_id", "contact", "body", "context"}
    assert payload["message_id"] == message.pk
    assert payload["body"] == "Call Ann about pro"
    assert payload["context"] == {"event": event, "journey": "upsell"}
    assert payload["contact"]["id"] == contact.pk
    assert payload["contact"]["email"] == "ann@example.test"


def test_a_signature_made_with_another_secret_does_not_verify(workspace, channel, template, peer):
    peer.handler = lambda request: Reply(204 if verified(request, secret="guess") else 401)
    contact = ContactFactory(workspace=workspace)

    outbox.queue_message(contact, template, "call:1", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED
    assert message.reason.startswith("HTTP 401")
    assert message.sent_at is None


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_broken_receiver_is_tried_again_later(workspace, channel, template, peer, status):
    peer.reply(status, {"error": "try later"})
    contact = ContactFactory(workspace=workspace)

    outbox.queue_message(contact, template, "call:1", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.due_at > timezone.now()
    assert message.reason == f"HTTP {status}: try later"
    assert list(message.history.values_list("kind", flat=True)) == ["retry"]
    assert len(peer.requests) == 1


def test_a_slow_receiver_times_out_and_is_tried_again_later(workspace, channel, template, peer):
    peer.reply(200, {}, delay=1.5)  # the channel waits 0.5 s
    contact = ContactFactory(workspace=workspace)

    outbox.queue_message(contact, template, "call:1", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.history.get().kind == "retry"
    assert "0.5 seconds" in message.reason


def test_a_receiver_that_is_not_listening_is_tried_again_later(workspace, template):
    with HttpPeer() as gone:
        url = gone.url  # nothing listens there once it has stopped
    channel = ChannelFactory(
        workspace=workspace,
        type=ChannelType.WEBHOOK,
        provider="webhook",
        config={"url": url},
        secrets={"signing_secret": SECRET},
    )

    outbox.queue_message(ContactFactory(workspace=workspace), template, "c", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.reason.startswith("Could not connect")


def test_a_refusal_fails_the_message_with_the_receivers_words(workspace, channel, template, peer):
    peer.reply(422, {"message": "Unknown customer"})
    contact = ContactFactory(workspace=workspace)

    outbox.queue_message(contact, template, "call:1", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED
    assert message.reason == "HTTP 422: Unknown customer"
    assert list(message.history.values_list("kind", flat=True)) == ["failed"]


def test_a_channel_without_secret_sends_nothing(workspace, channel, template, peer):
    channel.secrets = {}
    channel.save()

    outbox.queue_message(ContactFactory(workspace=workspace), template, "c", channel=channel)

    assert Message.objects.get().status == MessageStatus.FAILED
    assert peer.requests == []


def test_the_webhook_provider_is_registered_with_its_settings_form():
    assert PROVIDERS["webhook"] is Webhook
    form = WebhookForm({"url": "https://crm.example.test/in", "signing_secret": SECRET})
    assert form.is_valid(), form.errors
    assert Webhook.secret_fields == ("signing_secret",)
    assert SECRET not in str(form["signing_secret"])  # a password input, never shown back
    assert Webhook.check_settings(
        {"url": "https://crm.example.test/in"}, {"signing_secret": "short"}
    ) == {"signing_secret": ["A signing secret of at least 16 characters."]}
    assert Webhook.check_settings({"url": "https://x.test/"}, {"signing_secret": SECRET}) == {}
