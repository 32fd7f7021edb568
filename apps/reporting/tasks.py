from celery import shared_task

from apps.reporting.services import insight, rollups


@shared_task
def refresh_rollups_task() -> dict[str, int]:
    """From beat: count the raw tables' new rows into the rollups the reports read."""
    return rollups.refresh_rollups()


# A refresh that finds another one of the same workspace running tries again this often.
INSIGHT_BUSY_RETRY_SECONDS = 15


@shared_task(bind=True, max_retries=20)
def refresh_insight_task(self, workspace_id: int | None = None) -> int | None:
    """The customer insight snapshot of one workspace (from the page's "Recompute now"), or
    from beat (no id) one such task per workspace. Answers the new snapshot's id."""
    if workspace_id is None:
        for pk in insight.workspaces_to_refresh():
            refresh_insight_task.delay(pk)
        return None
    snapshot = insight.refresh_insight(workspace_id)
    if snapshot is None and insight.refresh_pending_for(workspace_id):
        raise self.retry(countdown=INSIGHT_BUSY_RETRY_SECONDS)
    return snapshot.pk if snapshot else None
