"""A real Celery worker, started as its own process, over the real Redis broker."""

import uuid

import pytest
from django.core.cache import cache

from orchestra.celery import HEARTBEAT_CACHE_KEY, record_worker_heartbeat_task
from orchestra.celery import app as celery_app
from tests.processes import process_env, start, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def worker_queue(tmp_path, db):
    """A worker process consuming a queue of its own (so no other worker takes the task)."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    process = start(
        ["-m", "celery", "-A", "orchestra", "worker", "--pool", "solo", "--queues", queue,
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        process_env(),
        log,
    )  # fmt: skip
    wait_for(lambda: "ready." in log.read_text(), 60, "the worker to start", log)
    celery_app.conf.task_always_eager = False
    yield queue
    celery_app.conf.task_always_eager = True
    assert stop(process) == 0, log.read_text()[-4000:]


def test_worker_runs_a_task_sent_through_redis(worker_queue):
    cache.delete(HEARTBEAT_CACHE_KEY)
    result = record_worker_heartbeat_task.apply_async(queue=worker_queue)
    beat = result.get(timeout=30)
    assert result.successful()
    assert cache.get(HEARTBEAT_CACHE_KEY) == beat
    assert beat["at"]
