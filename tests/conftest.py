"""Shared fixtures. Named people for access tests: an owner, a marketer and an analyst of
the Acme workspace, an outsider who owns a workspace of their own; API keys; a real
Celery worker."""

import uuid

import pytest
from celery._state import _set_task_join_will_block
from rest_framework.test import APIClient

from apps.accounts import services
from apps.accounts.choices import Role
from orchestra.celery import app as celery_app
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.processes import process_env, start, stop, wait_for
from tests.smtp import SmtpSink

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def results_may_be_awaited():
    """Celery's worker start-up marks the process as a worker, after which result.get()
    is refused ("never call result.get() within a task"); a test that started one in
    this process must not leave that behind for the next: here the test is the caller."""
    _set_task_join_will_block(False)


@pytest.fixture
def owner(db):
    return UserFactory(email="owner@acme.test", name="Olivia Owner")


@pytest.fixture
def workspace(owner):
    return services.create_workspace("Acme", "acme", owner, "Europe/Copenhagen")


@pytest.fixture
def marketer(workspace):
    return MembershipFactory(
        workspace=workspace, user__email="marketer@acme.test", role=Role.MARKETER
    ).user


@pytest.fixture
def analyst(workspace):
    return MembershipFactory(
        workspace=workspace, user__email="analyst@acme.test", role=Role.ANALYST
    ).user


@pytest.fixture
def outsider(db):
    user = UserFactory(email="outsider@other.test")
    services.create_workspace("Other Brand", "other", user)
    return user


@pytest.fixture
def other_workspace(outsider):
    return outsider.workspaces.get()


@pytest.fixture
def client_for(client):
    """client_for(user): the test client signed in as that user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def api_key_for():
    """api_key_for(workspace, scopes): an APIClient carrying a fresh key of that workspace."""

    def make(workspace, scopes=("ingest", "read", "write")):
        _key, raw = services.create_api_key(workspace, "test key", list(scopes))
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api

    return make


@pytest.fixture
def celery_worker(tmp_path, db):
    """A real worker process over Redis; while it runs, tasks are sent to it (not run
    inline) on a queue of its own, so no other worker can take them."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    process = start(
        ["-m", "celery", "-A", "orchestra", "worker", "--pool", "solo", "--queues", queue,
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        process_env(),
        log,
    )  # fmt: skip
    wait_for(lambda: "ready." in log.read_text(), 60, "the worker to start", log)
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        yield log
    finally:
        celery_app.conf.update(task_always_eager=True, task_default_queue="celery")
        assert stop(process) == 0, log.read_text()[-4000:]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server, and the server's email settings pointing at it (the settings a
    new workspace's email channel sends with)."""
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = False
    try:
        yield sink
    finally:
        sink.stop()
