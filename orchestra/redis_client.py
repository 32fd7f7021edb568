"""The one Redis client of a process (for our own keys; Celery and the cache keep theirs)."""

import os

import redis
from django.conf import settings

_client: tuple[int, redis.Redis] | None = None  # (pid, client): never shared across a fork


def client() -> redis.Redis:
    """Thread-safe, and pools its connections."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), redis.Redis.from_url(settings.REDIS_CLIENT_URL))
    return _client[1]


def key(*parts) -> str:
    """A key under this installation's prefix (tests and benchmarks each have their own)."""
    return ":".join([settings.CACHES["default"]["KEY_PREFIX"], *map(str, parts)])


def schedule_once(name: str, task, *args, ttl: int = 30) -> None:
    """Queue `task` unless one queued by this call site still waits (a flag with a TTL,
    in case the task is lost); the task calls `scheduled_task_started(name)` first."""
    if client().set(key("scheduled", name), 1, nx=True, ex=ttl):
        task.delay(*args)


def scheduled_task_started(name: str) -> None:
    """Whatever arrives from now on schedules a new task."""
    client().delete(key("scheduled", name))
