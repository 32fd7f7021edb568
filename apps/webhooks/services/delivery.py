"""Sending deliveries: a signed JSON POST, retried on a schedule until the receiver answers
2xx or the schedule runs out; a subscription that keeps failing for a day is disabled and
the workspace's owners are told by email.

Workers claim due deliveries in the database (FOR UPDATE SKIP LOCKED) and push their next
attempt a lease ahead before sending, so any number of workers share the work and a worker
that dies mid-send leaves its deliveries to be tried again when the lease ends. A receiver
may therefore see an event twice: it tells by the event `id`.
"""

import json
import logging
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.webhooks.choices import PING, DeliveryStatus
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services.signing import signature

logger = logging.getLogger(__name__)

# Wait before each retry: the 1st retry a minute after the first failure, ... the last 12 h
# after the one before it (some 21 h in all); then the delivery is given up.
RETRY_SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
TIMEOUT_SECONDS = 10
# Deliveries one worker claims at a time (the task re-enqueues itself for more): even if
# every receiver of a batch times out, the batch ends well within the task time limit.
CLAIM_BATCH = 20
# A claimed delivery is tried again after this long if its worker never reports back.
LEASE = timedelta(seconds=CLAIM_BATCH * TIMEOUT_SECONDS + 60)
# A subscription whose deliveries have failed without a success for this long is disabled.
DISABLE_AFTER = timedelta(hours=24)
EXCERPT_CHARS = 2000
USER_AGENT = "Orchestra-Webhooks/1"

CLAIM_SQL = """
WITH due AS (
    SELECT d.id FROM webhooks_webhookdelivery d
    JOIN webhooks_webhooksubscription s ON s.id = d.subscription_id
    WHERE d.status IN ('pending', 'failed') AND s.is_active
      AND d.next_attempt_at <= statement_timestamp()
    ORDER BY d.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhooks_webhookdelivery d
SET next_attempt_at = statement_timestamp() + %(lease)s, attempts = d.attempts + 1
FROM due WHERE d.id = due.id
RETURNING d.id
"""


def claim_due_deliveries(limit: int = CLAIM_BATCH) -> list[int]:
    """Take up to `limit` due deliveries of active subscriptions for this worker."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"limit": limit, "lease": LEASE})
        return sorted(row[0] for row in cursor.fetchall())


def claim_one(delivery: WebhookDelivery) -> bool:
    """Take this one delivery now (a replay or a ping), unless a worker holds it."""
    taken = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
        next_attempt_at__lte=timezone.now(),
    ).update(next_attempt_at=timezone.now() + LEASE, attempts=F("attempts") + 1)
    if taken:
        delivery.refresh_from_db(fields=["attempts"])
    return bool(taken)


def send_due_deliveries(limit: int = CLAIM_BATCH) -> int:
    """Claim and send one batch; answers how many were sent (the caller goes on if full)."""
    ids = claim_due_deliveries(limit)
    deliveries = WebhookDelivery.objects.filter(pk__in=ids).select_related(
        "subscription", "workspace"
    )
    with requests.Session() as session:
        for delivery in deliveries.order_by("id"):
            attempt(delivery, session)
    return len(ids)


def request_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Orchestra-Event": delivery.event_type,
        "X-Orchestra-Delivery": str(delivery.pk),
        "X-Orchestra-Timestamp": str(timestamp),
        "X-Orchestra-Signature": signature(delivery.subscription.secret, timestamp, body),
    }


def attempt(delivery: WebhookDelivery, session: requests.Session | None = None) -> None:
    """POST a claimed delivery once and record what happened."""
    body = request_body(delivery)
    timestamp = int(time.time())
    headers = request_headers(delivery, body, timestamp)
    status, response_text, error = None, "", ""
    started = time.monotonic()
    try:
        response = (session or requests).post(
            delivery.subscription.url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        )
        status = response.status_code
        response_text = _excerpt(response)
    except requests.Timeout:
        error = _("No answer within %(s)s seconds.") % {"s": TIMEOUT_SECONDS}
    except requests.RequestException as exc:
        error = _("Could not connect: %(e)s") % {"e": exc}
    duration_ms = int((time.monotonic() - started) * 1000)
    record_attempt(delivery, headers, body, status, response_text, error, duration_ms)


def _excerpt(response: requests.Response) -> str:
    try:
        raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True)
    except (requests.RequestException, OSError, ValueError):
        return ""
    finally:
        response.close()
    return raw.decode("utf-8", "replace")[:EXCERPT_CHARS]


RECORDED_FIELDS = (
    "last_attempt_at",
    "request_headers",
    "request_body",
    "response_status",
    "response_body",
    "duration_ms",
    "status",
    "error",
    "delivered_at",
    "next_attempt_at",
)


def record_attempt(delivery, headers, body, status, response_text, error, duration_ms) -> None:
    now = timezone.now()
    delivery.last_attempt_at = now
    delivery.request_headers = headers
    delivery.request_body = body.decode("utf-8", "replace")[:EXCERPT_CHARS]
    delivery.response_status = status
    delivery.response_body = response_text
    delivery.duration_ms = duration_ms
    succeeded = status is not None and 200 <= status < 300
    if succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.error = ""
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    else:
        delivery.error = (
            error or _("The receiver answered HTTP %(status)s.") % {"status": status}
        )[:500]
        # A ping is the user's test: answered once, never retried.
        if delivery.event_type == PING or delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.GIVEN_UP
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + RETRY_SCHEDULE[max(delivery.attempts, 1) - 1]
    # An update, not save(): the subscription may have been deleted meanwhile.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        **{name: getattr(delivery, name) for name in RECORDED_FIELDS}
    )
    if delivery.event_type == PING:
        return  # a test says nothing about the subscription's health
    if succeeded:
        WebhookSubscription.objects.filter(
            pk=delivery.subscription_id, failing_since__isnull=False
        ).update(failing_since=None)
    else:
        note_failure(delivery.subscription, now)


def note_failure(subscription: WebhookSubscription, now) -> None:
    """Start (or continue) the subscription's failing spell; after DISABLE_AFTER of it,
    disable the subscription and tell the owners."""
    WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    disabled = WebhookSubscription.objects.filter(
        pk=subscription.pk, is_active=True, failing_since__lte=now - DISABLE_AFTER
    ).update(
        is_active=False,
        disabled_at=now,
        disabled_reason=_("Every delivery failed for 24 hours."),
    )
    if disabled:
        subscription.refresh_from_db()
        notify_owners_of_disabling(subscription)


def notify_owners_of_disabling(subscription: WebhookSubscription) -> int:
    """Email the workspace's owners that the subscription was disabled; answers how many."""
    owners = list(
        Membership.objects.for_workspace(subscription.workspace_id)
        .filter(role=Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
    )
    if not owners:
        return 0
    workspace = subscription.workspace
    subject = _("Webhook disabled in %(workspace)s") % {"workspace": workspace.name}
    body = _(
        "The webhook subscription to %(url)s in %(workspace)s failed every delivery since "
        "%(since)s, so Orchestra disabled it. Its last error: %(error)s\n\n"
        "Fix the receiver, then enable the subscription again under Settings → Webhooks: "
        "%(link)s"
    ) % {
        "url": subscription.url,
        "workspace": workspace.name,
        "since": subscription.failing_since.isoformat() if subscription.failing_since else "",
        "error": _last_error(subscription),
        "link": settings.SITE_URL + reverse("webhooks:detail", args=[subscription.pk]),
    }
    return send_mail(subject, body, None, owners)


def _last_error(subscription: WebhookSubscription) -> str:
    last = (
        WebhookDelivery.objects.filter(subscription=subscription, last_attempt_at__isnull=False)
        .order_by("-last_attempt_at")
        .values_list("error", flat=True)
        .first()
    )
    return last or "—"


# Finished deliveries are kept this long for the log and replays, then deleted.
RETENTION = timedelta(days=30)
PRUNE_BATCH = 10_000


def prune_finished_deliveries() -> int:
    """Delete one batch of deliveries that ended (succeeded or given up) before the
    retention period; answers how many (the task goes on while batches come back full)."""
    cutoff = timezone.now() - RETENTION
    with connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM webhooks_webhookdelivery WHERE id IN (
                SELECT id FROM webhooks_webhookdelivery
                WHERE status IN ('succeeded', 'given_up') AND created_at < %s
                LIMIT %s)
            """,
            [cutoff, PRUNE_BATCH],
        )
        return cursor.rowcount
