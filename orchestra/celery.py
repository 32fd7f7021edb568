import os
import socket

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestra.settings")

app = Celery("orchestra")
# Every Celery setting lives in Django settings under the CELERY_ prefix,
# the beat schedule included.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_CACHE_KEY = "worker-heartbeat"


@app.task(name="orchestra.record_worker_heartbeat_task")
def record_worker_heartbeat_task() -> dict:
    """Beat runs this every 30 s; /readyz reports when a worker last ran it."""
    from django.core.cache import cache
    from django.utils import timezone

    beat = {"host": socket.gethostname(), "at": timezone.now().isoformat()}
    cache.set(HEARTBEAT_CACHE_KEY, beat, timeout=None)
    return beat
