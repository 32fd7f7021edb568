"""`make run`: everything Orchestra needs, in the foreground, stopped cleanly by Ctrl-C.

1. With DATABASE_URL / REDIS_URL unset, start the embedded PostgreSQL and
   Redis (data under var/); with them set, use those servers.
2. Migrate, collect static files, create the demo workspace and its owner.
3. Run the web server (gunicorn), a Celery worker and Celery beat.
4. On Ctrl-C or SIGTERM (or if any of them dies) stop them all, then the
   embedded servers.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestra import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_SECONDS = 20


class Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise Stop(signal.Signals(signum).name)


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE,
    )
    return result.stdout


def _processes(env: dict, host: str, port: str, var: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [
            python, "-m", "gunicorn", "orchestra.wsgi",
            "--bind", f"{host}:{port}",
            "--workers", env.get("WEB_CONCURRENCY", "2"),
            "--threads", "4",
            "--access-logfile", "-",
            "--no-control-socket",
        ],
        "worker": [
            python, "-m", "celery", "-A", "orchestra", "worker",
            "--loglevel", "INFO",
            "--concurrency", env.get("CELERY_CONCURRENCY", "2"),
        ],
        "beat": [
            python, "-m", "celery", "-A", "orchestra", "beat",
            "--loglevel", "INFO",
            "--schedule", str(var / "celerybeat-schedule"),
        ],
    }  # fmt: skip


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"orchestra: {name} did not stop in time; killing it", flush=True)
            child.kill()
            child.wait()


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "orchestra.settings")
    env["PYTHONUNBUFFERED"] = "1"
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    var = embedded.var_dir()
    children: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        # The children get explicit URLs, so they attach to these servers rather
        # than each managing the embedded servers' lifetime.
        if not env.get("DATABASE_URL"):
            print("orchestra: starting the embedded PostgreSQL (var/pgdata)", flush=True)
            env["DATABASE_URL"] = embedded.start_postgres()
        if not env.get("REDIS_URL"):
            print("orchestra: starting the embedded Redis (var/redis)", flush=True)
            env["REDIS_URL"] = embedded.start_redis()
        print("orchestra: applying migrations", flush=True)
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        login = _manage(env, "first_run").strip()
        for name, command in _processes(env, host, port, var).items():
            # A session of their own: Ctrl-C reaches only the launcher, which stops
            # them in order instead of all at once.
            children[name] = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, start_new_session=True
            )
        print(
            "\n"
            f"  Orchestra is running at http://{host}:{port}/\n"
            f"  {login}\n"
            f"  Admin: http://{host}:{port}/admin/   API docs: http://{host}:{port}/api/docs/\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"orchestra: {name} exited with {child.returncode}; stopping", flush=True)
                    exit_code = 1
                    raise Stop(name)
            time.sleep(0.5)
    except Stop:
        pass
    except subprocess.CalledProcessError as exc:
        print(f"orchestra: {' '.join(exc.cmd[1:])} failed (exit {exc.returncode})", flush=True)
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("orchestra: stopping", flush=True)
        _stop_all(children)
        embedded.stop_redis()
        embedded.stop_postgres()
        print("orchestra: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
