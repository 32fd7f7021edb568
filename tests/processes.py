"""Helpers for tests that start real processes (a Celery worker, the launcher)."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (the test_ one)."""
    db = connection.settings_dict
    host = db["HOST"].replace("/", "%2F")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="orchestra.settings",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


# `celery worker` with the test's queue as its default queue too, so that what the worker
# queues itself (a task waking its successor) reaches the test's workers, not "celery".
# WORKER_SETUP (Python, optional) runs first: a test may shrink a batch size there.
QUEUE_WORKER_SCRIPT = """
import os
from orchestra.celery import app
exec(os.environ.get("WORKER_SETUP", ""))
app.conf.task_default_queue = os.environ["TEST_QUEUE"]
app.worker_main(["worker", "--pool", "solo", "--queues", os.environ["TEST_QUEUE"],
                 "--hostname", os.environ["WORKER_NAME"] + "@%h",
                 "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                 "--without-heartbeat"])
"""


class QueueWorker:
    """One Celery worker process (solo pool) on `queue`, logging to directory/<name>-<n>.log;
    `start()` again after `kill()` is a fresh process with a fresh log. The caller points the
    test process's Celery at the queue (`celery_app.conf.task_default_queue`)."""

    def __init__(self, name: str, queue: str, env: dict[str, str], directory: Path):
        self.name, self.queue, self.env, self.directory = name, queue, env, directory
        self.started = 0
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None
        self.logs: list[Path] = []

    def start(self, wait: bool = True) -> "QueueWorker":
        self.started += 1
        self.log = self.directory / f"{self.name}-{self.started}.log"
        self.logs.append(self.log)
        env = {**self.env, "TEST_QUEUE": self.queue, "WORKER_NAME": self.name}
        self.process = start(["-c", QUEUE_WORKER_SCRIPT], env, self.log)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-4000:]}")
            return "ready." in self.log.read_text()

        wait_for(ready, 60, f"{self.name} to start", self.log)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no cleanup of any kind."""
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only this worker
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert stop(self.process) == 0, self.log.read_text()[-4000:]

    def text(self) -> str:
        """Every log of this worker, oldest first."""
        return "".join(log.read_text() for log in self.logs)
