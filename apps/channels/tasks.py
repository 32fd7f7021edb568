from celery import shared_task

from apps.channels.services import outbox
from orchestra import redis_client


@shared_task(bind=True)
def send_due_messages_task(self) -> int:
    """Send what is due; a successor takes over when more is left than one task sends.
    While claims come back full, each wakes another sender, so that idle workers join in
    (at most one such task waits at a time) until every worker is busy."""
    redis_client.scheduled_task_started("send-messages")
    # Run inline (tests, eager mode), a woken task would run inside this one: no helpers.
    helpers = None if self.request.is_eager else outbox.wake_senders
    handled, more = outbox.send_due_messages(on_full_batch=helpers)
    if more:
        outbox.wake_senders()
    return handled


@shared_task
def release_expired_leases_task() -> int:
    return outbox.release_expired_leases()


@shared_task
def send_due_messages_tick_task() -> None:
    """From beat: deferred and retried messages come due without anyone waking a worker."""
    outbox.wake_senders()
