from celery import shared_task

from apps.webhooks.services import delivery, feed


@shared_task
def run_webhook_feed_task() -> dict[str, int]:
    """From beat: the raw tables' new rows become deliveries; then sending starts."""
    queued = feed.run_feed()
    if any(queued.values()):
        send_due_webhooks_task.delay()
    return queued


@shared_task
def send_due_webhooks_task() -> int:
    """From beat and the feed: send one batch of due deliveries, then again while the
    batches come back full."""
    sent = delivery.send_due_deliveries(delivery.CLAIM_BATCH)
    if sent == delivery.CLAIM_BATCH:
        send_due_webhooks_task.delay()
    return sent


@shared_task
def prune_webhook_deliveries_task() -> int:
    """From beat, daily: forget deliveries that ended more than RETENTION ago."""
    deleted = delivery.prune_finished_deliveries()
    if deleted == delivery.PRUNE_BATCH:
        prune_webhook_deliveries_task.delay()
    return deleted
