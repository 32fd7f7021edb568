"""A real Celery worker, started as its own process, over the real Redis broker."""

import pytest
from django.core.cache import cache

from orchestra.celery import HEARTBEAT_CACHE_KEY, record_worker_heartbeat_task

pytestmark = pytest.mark.slow


def test_worker_runs_a_task_sent_through_redis(celery_worker):
    cache.delete(HEARTBEAT_CACHE_KEY)
    result = record_worker_heartbeat_task.delay()
    beat = result.get(timeout=30)
    assert result.successful()
    assert cache.get(HEARTBEAT_CACHE_KEY) == beat
    assert beat["at"]
