import time

import requests
from celery import shared_task

from apps.journeys.services import engine, triggers
from orchestra import redis_client

ADVANCE_TASK_SECONDS = engine.STEP_TIME_BUDGET_SECONDS


@shared_task
def advance_due_task() -> int:
    """From beat (and on resume): move on every enrollment whose time has come, in batches;
    a successor takes over when one task has worked its time budget."""
    redis_client.scheduled_task_started("journeys-due")
    deadline = time.monotonic() + ADVANCE_TASK_SECONDS
    done = 0
    while time.monotonic() < deadline:
        moved = engine.advance_due()
        done += moved
        if moved < engine.CLAIM_BATCH:
            return done
    redis_client.schedule_once("journeys-due", advance_due_task)
    return done


@shared_task
def advance_due_tick_task() -> None:
    redis_client.schedule_once("journeys-due", advance_due_task)


@shared_task
def process_journey_events_task(workspace_id: int) -> int:
    return triggers.process_pending_events(workspace_id)


@shared_task
def sweep_journey_events_task() -> None:
    """From beat: a worker for each workspace with pending events, in case their wake-up
    was lost (Redis down, or ingest killed between its commit and the wake-up) or the
    worker applying them died."""
    for workspace_id in triggers.pending_workspaces():
        redis_client.schedule_once(
            f"journey-events:{workspace_id}", process_journey_events_task, workspace_id
        )


@shared_task(autoretry_for=(requests.RequestException,), retry_backoff=30, max_retries=6)
def call_webhook_task(enrollment_id: int, node_id: str) -> int:
    from apps.journeys.services.webhooks import call_webhook

    return call_webhook(enrollment_id, node_id)


@shared_task
def enroll_due_dates_task() -> int:
    """From beat: date-attribute entries whose day and hour have come."""
    from apps.journeys.services.dates import enroll_due_dates

    return enroll_due_dates()
