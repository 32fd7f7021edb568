from celery import shared_task

from apps.segments import services
from apps.segments.models import Segment


@shared_task
def reevaluate_dirty_contacts_task(workspace_id: int) -> int:
    """Real time: re-evaluate the segments of the workspace's changed contacts."""
    return services.reevaluate_dirty_contacts(workspace_id)


@shared_task
def sweep_dirty_contacts_task() -> int:
    """Beat: picks up changes left behind by a worker that died mid-task."""
    return sum(services.reevaluate_dirty_contacts(pk) for pk in services.dirty_workspaces())


@shared_task
def refresh_segment_task(segment_id: int) -> None:
    segment = Segment.objects.select_related("workspace").filter(pk=segment_id).first()
    if segment is not None:
        services.refresh_segment(segment)


@shared_task
def refresh_segments_task(include_all: bool = False) -> int:
    """Beat: time windows age out without events, so segments with them are recomputed."""
    due = services.segments_to_refresh(include_all)
    for segment in due:
        refresh_segment_task.delay(segment.pk)
    return len(due)
