"""`make run`'s launcher, as a new user meets it: embedded servers, login, clean stop."""

import os
import signal
import socket
import subprocess
import sys

import psutil
import psycopg
import pytest
import requests

from tests.processes import BASE_DIR, start, stop, wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_env(var_dir, port) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        ORCHESTRA_VAR_DIR=str(var_dir),
        PORT=str(port),
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
        DJANGO_SETTINGS_MODULE="orchestra.settings",
    )
    env.pop("ORCHESTRA_ADMIN_EMAIL", None)
    env.pop("ORCHESTRA_ADMIN_PASSWORD", None)
    return env


def processes_using(var_dir) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(var_dir) in cmdline:
            found.append(process)
    return found


def run_launcher(var_dir, log, **env_overrides):
    port = free_port()
    env = launcher_env(var_dir, port) | env_overrides
    process = start(["-m", "orchestra.launcher"], env, log)
    base = f"http://127.0.0.1:{port}"

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"launcher exited early:\n{log.read_text()[-4000:]}")
        try:
            return requests.get(f"{base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or too busy to answer
            return False

    wait_for(ready, 180, "the launcher to serve /readyz", log)
    return process, base


def sign_in(base: str, email: str, password: str) -> requests.Response:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10)
    return session.post(
        f"{base}/accounts/login/",
        data={
            "username": email,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )


def test_make_run_serves_a_working_login_and_stops_everything(tmp_path):
    var_dir = tmp_path / "var"
    log = tmp_path / "launcher.log"
    process, base = run_launcher(var_dir, log)
    try:
        output = log.read_text()
        assert f"Orchestra is running at {base}/" in output
        password = (var_dir / "admin-password").read_text().strip()
        assert f"Login: admin@example.com  password: {password}" in output

        dashboard = sign_in(base, "admin@example.com", password)
        assert dashboard.url == f"{base}/"
        assert "Welcome to Orchestra" in dashboard.text
        assert requests.get(f"{base}/static/vendor/htmx/htmx.min.js", timeout=5).ok

        # A manage.py command run beside it, with DATABASE_URL unset, reaches the same database.
        beside = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from apps.accounts.models import User; print(User.objects.get().email)"],
            cwd=BASE_DIR, env=launcher_env(var_dir, 0), capture_output=True, text=True,
            timeout=120, check=True,
        )  # fmt: skip
        assert beside.stdout.strip().splitlines()[-1] == "admin@example.com"
    finally:
        exit_code = stop(process, timeout=60)
    assert exit_code == 0, log.read_text()[-4000:]
    assert "orchestra: stopped" in log.read_text()
    assert processes_using(var_dir) == []

    # A second run reuses var/: same account, the password is not printed again.
    second_log = tmp_path / "second.log"
    process, base = run_launcher(var_dir, second_log)
    try:
        output = second_log.read_text()
        assert password not in output
        assert "admin-password" in output
        assert "Welcome to Orchestra" in sign_in(base, "admin@example.com", password).text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert processes_using(var_dir) == []


@pytest.fixture
def external_database():
    """A fresh database on the server the tests use, standing in for a production server."""
    from django.db import connection

    name = "orchestra_launcher_external"
    db = connection.settings_dict
    params = {"host": db["HOST"], "port": db["PORT"] or None, "user": db["USER"]}
    params["password"] = db["PASSWORD"] or None
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    host = db["HOST"].replace("/", "%2F")
    port = f":{db['PORT']}" if db["PORT"] else ""
    yield f"postgres://{db['USER']}@{host}{port}/{name}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_make_run_uses_the_servers_in_the_environment_and_starts_nothing(
    tmp_path, external_database, settings
):
    var_dir = tmp_path / "var"
    log = tmp_path / "launcher.log"
    process, base = run_launcher(
        var_dir, log, DATABASE_URL=external_database, REDIS_URL=settings.REDIS_URL
    )
    try:
        assert "embedded" not in log.read_text()
        assert not (var_dir / "pgdata").exists()
        assert not (var_dir / "redis").exists()
        password = (var_dir / "admin-password").read_text().strip()
        assert "Welcome to Orchestra" in sign_in(base, "admin@example.com", password).text
    finally:
        assert stop(process, timeout=60) == 0, log.read_text()[-4000:]
