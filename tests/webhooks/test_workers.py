"""With real concurrency: workers claiming deliveries never take the same one, and the
beat tasks in a real Celery worker turn a new event into a signed request."""

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from apps.contacts.models import Event
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import delivery as sending
from apps.webhooks.tasks import run_webhook_feed_task, send_due_webhooks_task
from tests.contacts.factories import ContactFactory
from tests.webhooks.test_delivery import queue

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def other_connection():
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        password=db["PASSWORD"] or None,
    )


def test_two_workers_claim_different_deliveries(subscribe):
    subscription = subscribe()
    ids = {queue(subscription, event_id=f"evt_{n}").pk for n in range(4)}
    other = other_connection()
    try:
        # The other worker's claim is still open (its transaction not committed).
        rows = other.execute(sending.CLAIM_SQL, {"limit": 2, "lease": sending.LEASE}).fetchall()
        theirs = {row[0] for row in rows}

        mine = set(sending.claim_due_deliveries(limit=10))

        assert len(theirs) == 2 and len(mine) == 2
        assert theirs | mine == ids
    finally:
        other.rollback()
        other.close()
    # The other worker died before committing: its deliveries are due again; the ones
    # claimed here wait for their lease.
    assert set(sending.claim_due_deliveries(limit=10)) == theirs
    assert sending.claim_due_deliveries(limit=10) == []
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_real_worker_feeds_and_sends(workspace, subscribe, receiver, celery_worker):
    subscribe(["conversion"])
    contact = ContactFactory(workspace=workspace, external_id="ann-1")
    Event.objects.create(
        workspace=workspace,
        contact=contact,
        name="purchase",
        properties={"amount": 30},
        occurred_at=timezone.now(),
    )

    queued = run_webhook_feed_task.delay().get(timeout=30)

    assert queued["contacts_event"] == 1
    # (The feed enqueues sending itself, on the worker's default queue; this test's worker
    # listens on a queue of its own, so the test sends the beat's task there.)
    assert send_due_webhooks_task.delay().get(timeout=30) == 1
    [request] = receiver.requests
    assert receiver.signature_ok(request)
    body = request.json()
    assert (body["type"], body["data"]["properties"]) == ("conversion", {"amount": 30})
    assert body["data"]["contact"]["external_id"] == "ann-1"
    assert "send_due_webhooks_task" in celery_worker.read_text()
