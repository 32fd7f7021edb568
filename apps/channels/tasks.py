from celery import shared_task

from apps.channels.services import outbox
from orchestra import redis_client


@shared_task
def send_due_messages_task() -> int:
    """Send what is due; a successor takes over when more is left than one task sends."""
    redis_client.scheduled_task_started("send-messages")
    handled, more = outbox.send_due_messages()
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
