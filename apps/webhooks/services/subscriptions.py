"""Subscriptions: created with a secret shown once, edited, rotated, enabled again after
being disabled; deliveries replayed and a ping sent on request."""

import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.webhooks.choices import PING, DeliveryStatus
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import delivery as sending
from apps.webhooks.services.signing import new_secret


@transaction.atomic
def create_subscription(
    workspace: Workspace,
    url: str,
    event_types: list[str],
    description: str = "",
    created_by=None,
) -> tuple[WebhookSubscription, str]:
    """A new active subscription; answers it and its signing secret (shown this once)."""
    secret = new_secret()
    subscription = WebhookSubscription.objects.create(
        workspace=workspace,
        url=url,
        event_types=sorted(set(event_types)),
        description=description,
        secret=secret,
        created_by=created_by,
    )
    return subscription, secret


def update_subscription(subscription: WebhookSubscription, **values) -> WebhookSubscription:
    """Change url, description, event types or is_active; enabling clears the disabling
    and the failing spell, so the subscription gets a fresh day."""
    if "event_types" in values:
        values["event_types"] = sorted(set(values["event_types"]))
    if values.get("is_active") and not subscription.is_active:
        values.update(failing_since=None, disabled_at=None, disabled_reason="")
    for name, value in values.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=[*values, "updated_at"])
    return subscription


def rotate_secret(subscription: WebhookSubscription) -> str:
    """A new signing secret at once (the old one stops working); answers it, shown once."""
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret", "updated_at"])
    return subscription.secret


def delete_subscription(subscription: WebhookSubscription) -> None:
    subscription.delete()


def replay(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it, with a fresh retry schedule (the
    receiver sees the same event id). Answers it after the attempt."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    delivery.refresh_from_db()
    if sending.claim_one(delivery):
        sending.attempt(delivery)
    return delivery


def send_ping(subscription: WebhookSubscription) -> WebhookDelivery:
    """A `ping` event sent now, to see that the receiver answers and checks signatures."""
    now = timezone.now()
    event_id = f"evt_ping_{uuid.uuid4().hex}"
    workspace = subscription.workspace
    ping = WebhookDelivery.objects.create(
        workspace=workspace,
        subscription=subscription,
        event_id=event_id,
        event_type=PING,
        payload={
            "id": event_id,
            "type": PING,
            "created_at": now.isoformat(),
            "workspace": {"id": workspace.pk, "slug": workspace.slug},
            "data": {"subscription_id": subscription.pk},
        },
        next_attempt_at=now,
    )
    ping.subscription = subscription
    if sending.claim_one(ping):
        sending.attempt(ping)
    return ping


HEALTH_WINDOW = timedelta(hours=24)
WAITING = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]


def subscriptions_with_health(workspace: Workspace) -> list[WebhookSubscription]:
    """The workspace's subscriptions, each with the last day's delivery counts
    (`succeeded_24h`, `failed_24h`: attempts that ended so) and the deliveries still
    waiting to go (`waiting`). Three queries, whatever the number of subscriptions."""
    subscriptions = list(WebhookSubscription.objects.for_workspace(workspace))
    ids = [subscription.pk for subscription in subscriptions]
    since = timezone.now() - HEALTH_WINDOW
    recent = (
        WebhookDelivery.objects.filter(subscription_id__in=ids, last_attempt_at__gte=since)
        .exclude(event_type=PING)  # tests say nothing about health
        .values_list("subscription_id", "status")
        .annotate(n=Count("id"))
    )
    counts: dict[tuple[int, str], int] = {(pk, status): n for pk, status, n in recent}
    waiting = dict(
        WebhookDelivery.objects.filter(subscription_id__in=ids, status__in=WAITING)
        .values_list("subscription_id")
        .annotate(n=Count("id"))
    )
    for subscription in subscriptions:
        pk = subscription.pk
        subscription.succeeded_24h = counts.get((pk, DeliveryStatus.SUCCEEDED), 0)
        subscription.failed_24h = counts.get((pk, DeliveryStatus.FAILED), 0) + counts.get(
            (pk, DeliveryStatus.GIVEN_UP), 0
        )
        subscription.waiting = waiting.get(pk, 0)
    return subscriptions
