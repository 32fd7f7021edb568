"""SMS end to end against a real local HTTP server standing in for the gateway: a generic
JSON gateway and Twilio's API; then the delivery receipts both post back to /hooks/."""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message
from apps.channels.providers import PROVIDERS
from apps.channels.providers.sms import HttpJsonSms, TwilioSms, TwilioSmsForm, receipt_token
from apps.channels.services import outbox
from apps.channels.services.templates import create_template
from apps.contacts.choices import ConsentStatus
from apps.contacts.models import Event
from apps.contacts.services.consent import set_consent
from tests.channels.factories import ChannelFactory
from tests.channels.http_peer import HttpPeer
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-1234"


@pytest.fixture
def peer():
    with HttpPeer() as server:
        yield server


@pytest.fixture
def gateway(workspace, peer):
    """A generic JSON gateway channel answering its ids under `message_id`."""
    return ChannelFactory(
        workspace=workspace,
        name="Gateway",
        type=ChannelType.SMS,
        provider="http_json",
        config={
            "url": f"{peer.url}/send",
            "from_number": "Acme",
            "id_field": "message_id",
            "timeout": 0.5,
        },
        secrets={"token": "gw-token"},
    )


@pytest.fixture
def twilio(workspace, peer):
    return ChannelFactory(
        workspace=workspace,
        name="Twilio",
        type=ChannelType.SMS,
        provider="twilio",
        config={"account_sid": ACCOUNT_SID, "from_number": "+4570000000", "base_url": peer.url},
        secrets={"auth_token": AUTH_TOKEN},
    )


@pytest.fixture
def template(workspace):
    template, problems = create_template(
        workspace,
        {
            "name": "Flash sale",
            "slug": "flash",
            "channel": ChannelType.SMS,
            "body": "Hi {{ contact.first_name }}, 20% off today only.",
        },
    )
    assert not problems
    return template


@pytest.fixture
def ann(workspace):
    contact = ContactFactory(workspace=workspace, first_name="Ann", phone="+4520123456")
    set_consent(contact, "sms", ConsentStatus.SUBSCRIBED, "test")
    return contact


def twilio_signature(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    """As Twilio computes X-Twilio-Signature (its docs' algorithm, written out here)."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# Sending ---------------------------------------------------------------------------------


def test_json_gateway_gets_the_message_with_bearer_token(ann, gateway, template, peer):
    peer.reply(200, {"message_id": "gw-1", "status": "accepted"})

    queued = outbox.queue_message(ann, template, "flash:ann", channel=gateway)

    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == "gw-1"
    assert message.recipient == "+4520123456"
    assert len(peer.requests) == 1
    request = peer.requests[0]
    assert (request.method, request.path) == ("POST", "/send")
    assert request.headers["authorization"] == "Bearer gw-token"
    assert request.json() == {
        "to": "+4520123456",
        "from": "Acme",
        "body": "Hi Ann, 20% off today only.",
        "reference": str(message.pk),
    }


def test_twilio_gets_its_own_form_post_with_basic_auth(ann, twilio, template, peer):
    peer.reply(201, {"sid": "SM" + "f" * 32, "status": "queued"})

    queued = outbox.queue_message(ann, template, "flash:ann", channel=twilio)

    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == "SM" + "f" * 32
    request = peer.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.form() == {
        "To": "+4520123456",
        "From": "+4570000000",
        "Body": "Hi Ann, 20% off today only.",
        "StatusCallback": settings.SITE_URL + f"/hooks/twilio/{twilio.pk}/",
    }


@pytest.mark.parametrize("status", [429, 500, 503])
def test_busy_or_broken_gateway_is_tried_again_later(ann, twilio, template, peer, status):
    peer.reply(status, {"code": 20429, "message": "Too Many Requests", "status": status})

    outbox.queue_message(ann, template, "flash:ann", channel=twilio)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.due_at > timezone.now()
    assert message.attempts == 1
    assert message.reason == f"HTTP {status}: Too Many Requests (20429)"
    assert list(message.history.values_list("kind", flat=True)) == ["retry"]


def test_a_gateway_that_does_not_answer_in_time_is_tried_again(ann, gateway, template, peer):
    peer.reply(200, {"message_id": "late"}, delay=1.5)  # the channel waits 0.5 s

    outbox.queue_message(ann, template, "flash:ann", channel=gateway)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.provider_message_id == ""
    assert message.history.get().kind == "retry"


def test_a_gateway_that_is_down_is_tried_again(ann, workspace, template):
    with HttpPeer() as stopped:
        url = stopped.url
    channel = ChannelFactory(
        workspace=workspace,
        type=ChannelType.SMS,
        provider="http_json",
        config={"url": url, "from_number": "Acme"},
    )

    outbox.queue_message(ann, template, "flash:ann", channel=channel)

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.reason.startswith("Could not connect")


def test_a_refused_number_fails_with_the_providers_message(ann, twilio, template, peer):
    peer.reply(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +4520123456 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )

    outbox.queue_message(ann, template, "flash:ann", channel=twilio)

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED
    assert message.reason == (
        "HTTP 400: The 'To' number +4520123456 is not a valid phone number. (21211)"
    )
    assert list(message.history.values_list("kind", flat=True)) == ["failed"]
    assert len(peer.requests) == 1


def test_contact_without_a_phone_gets_no_sms(workspace, gateway, template, peer):
    contact = ContactFactory(workspace=workspace, phone=None)
    set_consent(contact, "sms", ConsentStatus.SUBSCRIBED, "test")

    outbox.queue_message(contact, template, "flash:x", channel=gateway)

    message = Message.objects.get()
    assert message.status == MessageStatus.DROPPED
    assert peer.requests == []


def test_sms_providers_are_registered_with_their_settings_forms():
    assert PROVIDERS["http_json"] is HttpJsonSms
    assert PROVIDERS["twilio"] is TwilioSms
    assert HttpJsonSms.secret_fields == ("token",)
    assert TwilioSms.secret_fields == ("auth_token",)
    form = TwilioSmsForm(
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+4570000000"}
    )
    assert form.is_valid(), form.errors
    assert AUTH_TOKEN not in str(form["auth_token"])
    assert not TwilioSmsForm({"account_sid": "nope", "from_number": "x"}).is_valid()
    assert TwilioSms.check_settings({"account_sid": ACCOUNT_SID}, {}).keys() == {"auth_token"}


# Receipts --------------------------------------------------------------------------------


def sent_through(channel, contact, template, peer, provider_id) -> Message:
    peer.reply(201, {"message_id": provider_id, "sid": provider_id})
    queued = outbox.queue_message(contact, template, f"flash:{provider_id}", channel=channel)
    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    return message


def receipt_url(channel) -> str:
    return reverse("hooks:sms", args=[channel.pk, receipt_token(channel)])


def test_json_gateway_receipt_marks_the_message_delivered(ann, gateway, template, peer, client):
    message = sent_through(gateway, ann, template, peer, "gw-1")

    response = client.post(
        receipt_url(gateway), {"id": "gw-1", "status": "delivered"}, content_type="application/json"
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at is not None
    assert Event.objects.filter(contact=ann, name="message_delivered").count() == 1
    assert HttpJsonSms(gateway).receipt_url() == settings.SITE_URL + receipt_url(gateway)


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_json_gateway_receipt_of_a_lost_message_fails_it(
    ann, gateway, template, peer, client, status
):
    message = sent_through(gateway, ann, template, peer, "gw-1")

    response = client.post(
        receipt_url(gateway), {"id": "gw-1", "status": status}, content_type="application/json"
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.history.last().detail == status


def test_receipt_with_a_wrong_token_is_refused(ann, gateway, template, peer, client):
    message = sent_through(gateway, ann, template, peer, "gw-1")
    token = receipt_token(gateway)
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one character off, always
    url = reverse("hooks:sms", args=[gateway.pk, wrong])

    response = client.post(
        url, {"id": "gw-1", "status": "delivered"}, content_type="application/json"
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert not Event.objects.filter(name="message_delivered").exists()


def test_receipt_for_an_unknown_message_is_answered_and_changes_nothing(
    ann, gateway, template, peer, client
):
    message = sent_through(gateway, ann, template, peer, "gw-1")

    response = client.post(
        receipt_url(gateway),
        {"id": "gw-404", "status": "delivered"},
        content_type="application/json",
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert list(message.history.values_list("kind", flat=True)) == ["sent"]


def test_receipt_hooks_take_only_posts_and_json(gateway, twilio, client):
    assert client.get(receipt_url(gateway)).status_code == 405
    assert client.get(reverse("hooks:twilio", args=[twilio.pk])).status_code == 405
    bad = client.post(receipt_url(gateway), "not json", content_type="application/json")
    assert bad.status_code == 400


def test_twilio_status_callback_with_its_signature_marks_delivered(
    ann, twilio, template, peer, client
):
    sid = "SM" + "a" * 32
    message = sent_through(twilio, ann, template, peer, sid)
    callback = peer.requests[0].form()["StatusCallback"]
    params = {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "AccountSid": ACCOUNT_SID,
        "To": "+4520123456",
        "ApiVersion": "2010-04-01",
    }

    response = client.post(
        reverse("hooks:twilio", args=[twilio.pk]),
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(callback, params),
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_twilio_undelivered_callback_fails_the_message(ann, twilio, template, peer, client):
    sid = "SM" + "b" * 32
    message = sent_through(twilio, ann, template, peer, sid)
    url = reverse("hooks:twilio", args=[twilio.pk])
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}

    response = client.post(
        url,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(settings.SITE_URL + url, params),
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.history.last().detail == "Twilio error 30003"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "other-token", "other-url"])
def test_twilio_callback_without_a_good_signature_is_refused(
    ann, twilio, template, peer, client, signature
):
    sid = "SM" + "c" * 32
    message = sent_through(twilio, ann, template, peer, sid)
    url = reverse("hooks:twilio", args=[twilio.pk])
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    if signature == "other-token":
        signature = twilio_signature(settings.SITE_URL + url, params, token="someone-elses")
    elif signature == "other-url":
        signature = twilio_signature(settings.SITE_URL + url + "?x=1", params)

    response = client.post(
        url,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert list(message.history.values_list("kind", flat=True)) == ["sent"]


# Outsiders -------------------------------------------------------------------------------


def test_another_channels_token_does_not_open_this_channels_hook(
    ann, gateway, template, peer, client, other_workspace
):
    message = sent_through(gateway, ann, template, peer, "gw-1")
    theirs = ChannelFactory(
        workspace=other_workspace,
        type=ChannelType.SMS,
        provider="http_json",
        config={"url": peer.url, "from_number": "Other"},
    )

    url = reverse("hooks:sms", args=[gateway.pk, receipt_token(theirs)])
    response = client.post(
        url, {"id": "gw-1", "status": "delivered"}, content_type="application/json"
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_a_receipt_on_ones_own_channel_cannot_reach_another_workspaces_message(
    ann, gateway, template, peer, client, other_workspace
):
    message = sent_through(gateway, ann, template, peer, "gw-1")
    theirs = ChannelFactory(
        workspace=other_workspace,
        type=ChannelType.SMS,
        provider="http_json",
        config={"url": peer.url, "from_number": "Other"},
    )

    response = client.post(
        receipt_url(theirs), {"id": "gw-1", "status": "delivered"}, content_type="application/json"
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert not Event.objects.filter(name="message_delivered").exists()


def test_twilio_signature_of_another_workspaces_channel_is_refused(
    ann, twilio, template, peer, client, other_workspace
):
    sid = "SM" + "d" * 32
    message = sent_through(twilio, ann, template, peer, sid)
    theirs = ChannelFactory(
        workspace=other_workspace,
        type=ChannelType.SMS,
        provider="twilio",
        config={"account_sid": ACCOUNT_SID, "from_number": "+4570000001"},
        secrets={"auth_token": "their-own-token"},
    )
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    form = "application/x-www-form-urlencoded"
    acme_hook = reverse("hooks:twilio", args=[twilio.pk])
    their_hook = reverse("hooks:twilio", args=[theirs.pk])

    signed_by_them = twilio_signature(settings.SITE_URL + acme_hook, params, "their-own-token")
    refused = client.post(
        acme_hook, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=signed_by_them
    )
    on_their_own = twilio_signature(settings.SITE_URL + their_hook, params, "their-own-token")
    ignored = client.post(
        their_hook, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=on_their_own
    )

    assert (refused.status_code, ignored.status_code) == (403, 200)
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert list(message.history.values_list("kind", flat=True)) == ["sent"]


def test_hooks_of_a_channel_that_does_not_exist_or_is_not_sms_answer_404(gateway, client):
    email = ChannelFactory(workspace=gateway.workspace, name="Mail")
    assert (
        client.post(
            reverse("hooks:sms", args=[email.pk, receipt_token(email)]),
            {},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert client.post(reverse("hooks:twilio", args=[gateway.pk + 1000])).status_code == 404
    # a JSON gateway's hook is not Twilio's
    assert client.post(reverse("hooks:twilio", args=[gateway.pk])).status_code == 404
