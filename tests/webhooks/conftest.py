"""A real local receiver that checks every request's signature like a partner's would,
and subscriptions of Acme to it."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.webhooks.models import WebhookSubscription
from apps.webhooks.services import subscriptions
from tests.channels.http_peer import HttpPeer, Reply


class Receiver(HttpPeer):
    """An HttpPeer that answers 401 to a request whose signature is wrong (as a receiver
    following docs/api.md does) and otherwise what the test queued."""

    secret = ""

    def signature_ok(self, request) -> bool:
        timestamp = request.headers.get("x-orchestra-timestamp", "")
        expected = hmac.new(
            self.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(
            f"v1={expected}", request.headers.get("x-orchestra-signature", "")
        )

    def _answer(self, request):
        if not self.signature_ok(request):
            with self.lock:
                self.requests.append(request)
            return Reply(401, {"error": "bad signature"})
        return super()._answer(request)


@pytest.fixture
def receiver():
    with Receiver() as peer:
        yield peer


@pytest.fixture
def subscribe(workspace, owner, receiver):
    """subscribe(event_types, **fields): an Acme subscription to the receiver, created an
    hour ago (so the test's events all come after it); the receiver knows its secret."""

    def make(event_types=("*",), path="/hooks", **fields):
        subscription, secret = subscriptions.create_subscription(
            workspace, receiver.url + path, list(event_types), created_by=owner
        )
        receiver.secret = secret
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            created_at=timezone.now() - timedelta(hours=1), **fields
        )
        subscription.refresh_from_db()
        return subscription

    return make
