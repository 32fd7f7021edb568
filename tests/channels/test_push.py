"""Web push end to end: a browser (a real P-256 key pair made here) subscribes through the
API with the site's ingest key; the outbox sends through a real local HTTP server playing
the push service, which decrypts the notification with the browser's private key and
checks the VAPID signature."""

import base64
import json
import os
import time
from dataclasses import dataclass

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message, PushSubscription
from apps.channels.providers import PROVIDERS
from apps.channels.providers.push import WebPush
from apps.channels.services import outbox
from apps.channels.services import push as push_services
from apps.channels.services.templates import create_template
from apps.contacts.models import ConsentChange, Contact
from tests.channels.http_peer import HttpPeer, Reply
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIPTIONS = reverse("api:pushsubscription-list")
VAPID_KEY = reverse("api:pushsubscription-vapid-key")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser keeps for one push subscription."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def at(cls, endpoint: str) -> "Browser":
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def vapid_claims(authorization: str, public_key: str) -> dict:
    """The claims of a `vapid t=<JWT>,k=<key>` header, once its ES256 signature checks out
    with `public_key` (raises InvalidSignature otherwise)."""
    scheme, _space, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key
    header, payload, signature = fields["t"].split(".")
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    key.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    return json.loads(unb64url(payload))


@pytest.fixture(autouse=True)
def local_push_service_allowed(settings):
    # Real push services are https; the local one here is plain http.
    settings.PUSH_ENDPOINT_SCHEMES = ("https", "http")


@pytest.fixture
def peer():
    with HttpPeer() as server:
        server.default = Reply(201, headers={"Location": "https://push.test/m/1"})
        yield server


@pytest.fixture
def channel(workspace):
    return push_services.create_push_channel(workspace, "Browser push", "push@acme.test")


@pytest.fixture
def site(workspace, api_key_for):
    """The workspace's web site: an API client holding an ingest-only key."""
    return api_key_for(workspace, scopes=["ingest"])


@pytest.fixture
def template(workspace):
    template, problems = create_template(
        workspace,
        {
            "name": "Cart reminder",
            "slug": "cart",
            "channel": ChannelType.PUSH,
            "subject": "{{ contact.first_name }}, your cart misses you",
            "body": "Three items are waiting.",
        },
    )
    assert not problems
    return template


def subscribe(site, browser: Browser, **who):
    return site.post(SUBSCRIPTIONS, {**who, "subscription": browser.subscription()}, format="json")


# Subscribing -----------------------------------------------------------------------------


def test_a_browser_subscribes_with_the_sites_ingest_key(workspace, channel, site, peer):
    browser = Browser.at(f"{peer.url}/push/ann")

    key = site.get(VAPID_KEY)
    response = subscribe(site, browser, external_id="u-ann")

    assert key.status_code == 200
    assert key.json() == {"public_key": channel.config["vapid_public_key"]}
    assert len(unb64url(key.json()["public_key"])) == 65
    assert response.status_code == 201
    assert response.json() == {"endpoint": browser.endpoint, "created": True}
    assert response["Access-Control-Allow-Origin"] == "*"
    contact = Contact.objects.get(workspace=workspace, external_id="u-ann")
    subscription = PushSubscription.objects.get()
    assert (subscription.workspace_id, subscription.contact_id) == (workspace.pk, contact.pk)
    assert subscription.p256dh == browser.subscription()["keys"]["p256dh"]
    assert contact.consents.get(channel="push").status == "subscribed"


def test_subscribing_again_updates_the_subscription_and_not_the_consent(
    workspace, channel, site, peer
):
    browser = Browser.at(f"{peer.url}/push/ann")
    assert subscribe(site, browser, email="Ann@Example.test").status_code == 201
    contact = Contact.objects.get(email="ann@example.test")
    browser.auth = os.urandom(16)  # the browser renewed its keys

    again = subscribe(site, browser, email="ann@example.test")

    assert again.status_code == 200
    assert again.json()["created"] is False
    assert PushSubscription.objects.get().auth == b64url(browser.auth)
    assert ConsentChange.objects.filter(contact=contact, channel="push").count() == 1


def test_a_browser_unsubscribes_by_its_endpoint(workspace, channel, site, peer):
    browser = Browser.at(f"{peer.url}/push/ann")
    subscribe(site, browser, anonymous_id="a-1")

    response = site.delete(SUBSCRIPTIONS, {"endpoint": browser.endpoint}, format="json")
    again = site.delete(SUBSCRIPTIONS, {"endpoint": browser.endpoint}, format="json")

    assert response.status_code == 204
    assert again.status_code == 404
    assert PushSubscription.objects.count() == 0


def test_bad_subscriptions_are_refused_naming_each_field(workspace, channel, site, settings):
    settings.PUSH_ENDPOINT_SCHEMES = ("https",)
    response = site.post(
        SUBSCRIPTIONS,
        {
            "subscription": {
                "endpoint": "http://169.254.169.254/latest",
                "keys": {"p256dh": "abc", "auth": ""},
            }
        },
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "non_field_errors",
        "subscription.endpoint",
        "subscription.keys.p256dh",
        "subscription.keys.auth",
    }
    assert PushSubscription.objects.count() == 0
    assert Contact.objects.count() == 0


def test_a_browsers_preflight_is_answered_without_a_key(db):
    response = APIClient().options(
        SUBSCRIPTIONS,
        HTTP_ORIGIN="https://shop.example.test",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert "DELETE" in response["Access-Control-Allow-Methods"]


def test_creating_a_second_push_channel_keeps_the_workspaces_keys(workspace, channel):
    second = push_services.create_push_channel(workspace, "Push (EU)", "eu@acme.test")

    assert second.config["vapid_public_key"] == channel.config["vapid_public_key"]
    assert second.secrets["vapid_private_key"] == channel.secrets["vapid_private_key"]
    assert (channel.is_default, second.is_default) == (True, False)
    assert "vapid_private_key" not in second.config


# Sending ---------------------------------------------------------------------------------


def test_notification_is_encrypted_for_the_browser_and_signed_with_vapid(
    workspace, channel, site, peer, template
):
    browser = Browser.at(f"{peer.url}/push/ann")
    subscribe(site, browser, external_id="u-ann")
    contact = Contact.objects.get(external_id="u-ann")
    contact.first_name = "Ann"
    contact.save()
    before = int(time.time())

    queued = outbox.queue_message(
        contact, template, "cart:ann", context={"url": "https://shop.example.test/cart"}
    )

    message = Message.objects.get(pk=queued.message.pk)
    assert message.status == MessageStatus.SENT
    assert message.channel == channel
    assert message.provider_message_id == "https://push.test/m/1"
    assert len(peer.requests) == 1
    request = peer.requests[0]
    assert (request.method, request.path) == ("POST", "/push/ann")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "86400"
    assert browser.decrypt(request.body) == {
        "title": "Ann, your cart misses you",
        "body": "Three items are waiting.",
        "url": "https://shop.example.test/cart",
        "message_id": message.pk,
    }
    claims = vapid_claims(request.headers["authorization"], channel.config["vapid_public_key"])
    assert claims["aud"] == peer.url
    assert claims["sub"] == "mailto:push@acme.test"
    assert before < claims["exp"] <= before + 24 * 3600 + 5


def test_a_signature_from_another_key_does_not_verify(workspace, channel, site, peer, template):
    subscribe(site, Browser.at(f"{peer.url}/push/ann"), external_id="u-ann")
    outbox.queue_message(Contact.objects.get(external_id="u-ann"), template, "cart:ann")
    other = push_services.generate_vapid_keys()[1]

    with pytest.raises(AssertionError):
        vapid_claims(peer.requests[0].headers["authorization"], other)
    forged = (
        peer.requests[0]
        .headers["authorization"]
        .replace(f"k={channel.config['vapid_public_key']}", f"k={other}")
    )
    with pytest.raises(InvalidSignature):
        vapid_claims(forged, other)


def test_every_browser_of_the_contact_is_notified_and_gone_ones_forgotten(
    workspace, channel, site, peer, template
):
    laptop, phone = Browser.at(f"{peer.url}/push/laptop"), Browser.at(f"{peer.url}/push/phone")
    subscribe(site, laptop, external_id="u-ann")
    subscribe(site, phone, external_id="u-ann")
    peer.handler = lambda request: Reply(410 if request.path == "/push/laptop" else 201)

    outbox.queue_message(Contact.objects.get(external_id="u-ann"), template, "cart:ann")

    assert Message.objects.get().status == MessageStatus.SENT
    assert sorted(request.path for request in peer.requests) == ["/push/laptop", "/push/phone"]
    assert phone.decrypt(peer.requests[[r.path for r in peer.requests].index("/push/phone")].body)
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [phone.endpoint]


@pytest.mark.parametrize("status", [404, 410])
def test_when_every_browser_has_gone_the_message_fails(
    workspace, channel, site, peer, template, status
):
    subscribe(site, Browser.at(f"{peer.url}/push/ann"), external_id="u-ann")
    peer.default = Reply(status)

    outbox.queue_message(Contact.objects.get(external_id="u-ann"), template, "cart:ann")

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED
    assert message.reason == "Every browser of the contact has unsubscribed."
    assert PushSubscription.objects.count() == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_push_service_is_tried_again_later(workspace, channel, site, peer, template, status):
    subscribe(site, Browser.at(f"{peer.url}/push/ann"), external_id="u-ann")
    peer.default = Reply(status, {"message": "slow down"})

    outbox.queue_message(Contact.objects.get(external_id="u-ann"), template, "cart:ann")

    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.due_at > timezone.now()
    assert message.reason == f"HTTP {status}: slow down"
    assert PushSubscription.objects.count() == 1


def test_a_refusal_fails_the_message_and_keeps_the_subscription(
    workspace, channel, site, peer, template
):
    subscribe(site, Browser.at(f"{peer.url}/push/ann"), external_id="u-ann")
    peer.default = Reply(403, {"message": "VAPID key mismatch"})

    outbox.queue_message(Contact.objects.get(external_id="u-ann"), template, "cart:ann")

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED
    assert message.reason == "HTTP 403: VAPID key mismatch"
    assert PushSubscription.objects.count() == 1


def test_a_contact_without_subscriptions_gets_no_push(workspace, channel, peer, template):
    contact = ContactFactory(workspace=workspace)

    outbox.queue_message(contact, template, "cart:x")

    assert Message.objects.get().status == MessageStatus.DROPPED
    assert peer.requests == []


def test_the_push_provider_is_registered():
    assert PROVIDERS["webpush"] is WebPush
    assert WebPush.channel_type == ChannelType.PUSH


# Who may --------------------------------------------------------------------------------


def test_keys_without_ingest_and_requests_without_a_key_are_refused(
    workspace, channel, peer, api_key_for, client_for, owner
):
    browser = Browser.at(f"{peer.url}/push/ann")
    read_only = api_key_for(workspace, scopes=["read"])

    assert subscribe(read_only, browser, external_id="u-ann").status_code == 403
    assert subscribe(APIClient(), browser, external_id="u-ann").status_code == 401
    assert APIClient().get(VAPID_KEY).status_code == 401
    # A signed-in member's session is not how browsers subscribe.
    member = client_for(owner)
    response = member.post(
        SUBSCRIPTIONS,
        {"external_id": "u-ann", "subscription": browser.subscription()},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert PushSubscription.objects.count() == 0
    assert not Contact.objects.filter(external_id="u-ann").exists()


def test_outsider_key_cannot_remove_or_take_over_another_workspaces_subscription(
    workspace, channel, site, peer, other_workspace, api_key_for
):
    browser = Browser.at(f"{peer.url}/push/ann")
    subscribe(site, browser, external_id="u-ann")
    ann = Contact.objects.get(workspace=workspace, external_id="u-ann")
    outsider_site = api_key_for(other_workspace, scopes=["ingest"])

    deleted = outsider_site.delete(SUBSCRIPTIONS, {"endpoint": browser.endpoint}, format="json")
    taken = subscribe(outsider_site, browser, external_id="u-ann")

    assert deleted.status_code == 404
    assert taken.status_code == 201  # a subscription of their own workspace, to their contact
    acme = PushSubscription.objects.get(workspace=workspace)
    assert acme.contact_id == ann.pk
    theirs = PushSubscription.objects.get(workspace=other_workspace)
    assert theirs.contact.workspace_id == other_workspace.pk
    assert theirs.contact_id != ann.pk


def test_outsider_key_gets_its_own_workspaces_vapid_key_or_404(
    workspace, channel, other_workspace, api_key_for
):
    outsider_site = api_key_for(other_workspace, scopes=["ingest"])

    assert outsider_site.get(VAPID_KEY).status_code == 404
    theirs = push_services.create_push_channel(other_workspace, "Push", "push@other.test")
    answer = outsider_site.get(VAPID_KEY).json()
    assert answer == {"public_key": theirs.config["vapid_public_key"]}
    assert answer["public_key"] != channel.config["vapid_public_key"]
