"""Sending to a real local receiver that checks the signature: delivered, retried on the
schedule, given up, the subscription disabled after a day of failures with its owners
emailed, replays and pings."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.webhooks.choices import DeliveryStatus
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import delivery as sending
from apps.webhooks.services import subscriptions
from apps.webhooks.tasks import prune_webhook_deliveries_task, send_due_webhooks_task
from tests.channels.http_peer import Reply


def queue(subscription, event_id="evt_test_1", event_type="contact.created"):
    payload = {
        "id": event_id,
        "type": event_type,
        "created_at": "2026-11-23T12:00:00+00:00",
        "workspace": {"id": subscription.workspace_id, "slug": "acme"},
        "data": {"contact": {"id": 7, "external_id": "u-7", "email": "ann@acme.test"}},
    }
    return WebhookDelivery.objects.create(
        workspace_id=subscription.workspace_id,
        subscription=subscription,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        next_attempt_at=timezone.now(),
    )


def make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_delivery_is_a_signed_json_post_with_the_event_headers(subscribe, receiver):
    subscription = subscribe(["contact.created"])
    delivery = queue(subscription)

    assert send_due_webhooks_task() == 1

    [request] = receiver.requests
    assert receiver.signature_ok(request)
    assert request.method == "POST" and request.route == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-orchestra-event"] == "contact.created"
    assert request.headers["x-orchestra-delivery"] == str(delivery.pk)
    assert abs(int(request.headers["x-orchestra-timestamp"]) - timezone.now().timestamp()) < 60
    assert request.json() == delivery.payload
    assert set(request.json()) == {"id", "type", "created_at", "workspace", "data"}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, delivery.response_status) == (1, 200)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert delivery.duration_ms is not None and delivery.duration_ms < 10_000
    assert delivery.request_headers["X-Orchestra-Signature"].startswith("v1=")
    assert json.loads(delivery.request_body) == delivery.payload


def test_a_500_is_retried_a_minute_later_then_delivered(subscribe, receiver):
    subscription = subscribe()
    delivery = queue(subscription)
    receiver.reply(500, {"error": "database down"})

    sending.send_due_deliveries()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert (delivery.attempts, delivery.response_status) == (1, 500)
    assert "database down" in delivery.response_body
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert wait == timedelta(minutes=1)
    subscription.refresh_from_db()
    assert subscription.failing_since is not None and subscription.is_active

    assert sending.send_due_deliveries() == 0  # not due yet
    assert len(receiver.requests) == 1

    make_due(delivery)
    assert sending.send_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, delivery.response_status, delivery.error) == (2, 200, "")
    assert [r.json()["id"] for r in receiver.requests] == ["evt_test_1", "evt_test_1"]
    subscription.refresh_from_db()
    assert subscription.failing_since is None


def test_a_delivery_is_given_up_after_the_schedule(subscribe, receiver):
    subscription = subscribe()
    delivery = queue(subscription)
    receiver.default = Reply(503, {})

    waits = []
    for _attempt in range(sending.MAX_ATTEMPTS):
        make_due(delivery)
        assert sending.send_due_deliveries() == 1
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append(delivery.next_attempt_at - delivery.last_attempt_at)

    assert waits == list(sending.RETRY_SCHEDULE)
    assert delivery.status == DeliveryStatus.GIVEN_UP
    assert delivery.attempts == sending.MAX_ATTEMPTS == 7
    assert delivery.next_attempt_at is None
    make_due(delivery)
    assert sending.send_due_deliveries() == 0
    assert len(receiver.requests) == 7


def test_a_wrong_signature_is_refused_by_the_receiver(subscribe, receiver):
    subscription = subscribe()
    delivery = queue(subscription)
    old_secret = receiver.secret
    new_secret = subscriptions.rotate_secret(subscription)
    assert new_secret != old_secret  # the receiver still checks with the old one

    sending.send_due_deliveries()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status) == (DeliveryStatus.FAILED, 401)
    receiver.secret = new_secret
    make_due(delivery)
    sending.send_due_deliveries()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_an_unreachable_receiver_is_a_failure_with_the_reason(subscribe, receiver):
    subscription = subscribe()
    receiver.stop()
    delivery = queue(subscription)

    sending.send_due_deliveries()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.response_status is None
    assert delivery.error.startswith("Could not connect")


def test_a_day_of_failures_disables_the_subscription_and_emails_the_owners(
    subscribe, receiver, marketer, workspace
):
    failing = subscribe(failing_since=timezone.now() - timedelta(hours=24, minutes=1))
    recent = subscribe(path="/other", failing_since=timezone.now() - timedelta(hours=2))
    receiver.secret = ""  # both answer 401 now
    queue(failing)
    queue(recent)

    assert sending.send_due_deliveries() == 2

    failing.refresh_from_db()
    assert not failing.is_active
    assert failing.disabled_at is not None and failing.disabled_reason
    recent.refresh_from_db()
    assert recent.is_active and recent.disabled_at is None
    [email] = mail.outbox
    assert email.to == ["owner@acme.test"]
    assert "Acme" in email.subject
    assert failing.url in email.body
    assert f"/settings/webhooks/{failing.pk}/" in email.body

    # A disabled subscription's deliveries wait; the feed queues it nothing either.
    later = queue(failing, event_id="evt_test_2")
    assert sending.send_due_deliveries() == 0
    later.refresh_from_db()
    assert (later.status, later.attempts) == (DeliveryStatus.PENDING, 0)

    # Enabling it again gives it a fresh day.
    subscriptions.update_subscription(failing, is_active=True)
    failing.refresh_from_db()
    assert failing.failing_since is None and failing.disabled_at is None
    assert WebhookSubscription.objects.filter(is_active=True).count() == 2


def test_replay_sends_a_delivery_again_with_a_fresh_schedule(subscribe, receiver):
    subscription = subscribe()
    delivery = queue(subscription)
    receiver.default = Reply(500, {})
    for _attempt in range(sending.MAX_ATTEMPTS):
        make_due(delivery)
        sending.send_due_deliveries()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.GIVEN_UP

    receiver.default = Reply(204)
    replayed = subscriptions.replay(delivery)

    assert replayed.status == DeliveryStatus.SUCCEEDED
    assert (replayed.attempts, replayed.response_status) == (1, 204)
    assert len(receiver.requests) == sending.MAX_ATTEMPTS + 1
    assert receiver.requests[-1].json()["id"] == "evt_test_1"
    assert receiver.signature_ok(receiver.requests[-1])


def test_a_ping_is_sent_at_once_and_never_retried(subscribe, receiver):
    subscription = subscribe()

    ping = subscriptions.send_ping(subscription)

    assert ping.status == DeliveryStatus.SUCCEEDED
    [request] = receiver.requests
    assert request.headers["x-orchestra-event"] == "ping"
    assert request.json()["type"] == "ping"
    assert request.json()["data"] == {"subscription_id": subscription.pk}

    receiver.reply(500, {})
    failed = subscriptions.send_ping(subscription)
    assert (failed.status, failed.next_attempt_at) == (DeliveryStatus.GIVEN_UP, None)
    subscription.refresh_from_db()
    assert subscription.failing_since is None  # a test says nothing about health


@pytest.mark.parametrize("count", [3])
def test_the_task_sends_every_due_delivery_in_batches(count, subscribe, receiver, monkeypatch):
    monkeypatch.setattr(sending, "CLAIM_BATCH", 2)
    subscription = subscribe()
    for n in range(count):
        queue(subscription, event_id=f"evt_test_{n}")

    send_due_webhooks_task()

    assert sorted(r.json()["id"] for r in receiver.requests) == [
        f"evt_test_{n}" for n in range(count)
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_finished_deliveries_are_pruned_after_the_retention(subscribe):
    subscription = subscribe()
    old = timezone.now() - sending.RETENTION - timedelta(days=1)
    for n, status in enumerate(["succeeded", "given_up", "failed", "pending"]):
        delivery = queue(subscription, event_id=f"evt_old_{n}")
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, created_at=old)
    recent = queue(subscription, event_id="evt_recent")
    WebhookDelivery.objects.filter(pk=recent.pk).update(status="succeeded")

    assert prune_webhook_deliveries_task() == 2

    assert sorted(WebhookDelivery.objects.values_list("event_id", flat=True)) == [
        "evt_old_2",
        "evt_old_3",
        "evt_recent",
    ]
