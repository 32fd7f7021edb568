"""What every workload shares: the benchmark database, the production server, the load
generator, the COPY floor and a description of the machine."""

import base64
import http.client
import itertools
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
HOST = "127.0.0.1"  # load only ever targets this machine
SERVER_START_TIMEOUT_SECONDS = 90
SERVER_STOP_TIMEOUT_SECONDS = 30
# No single benchmark request may hang the run; the slowest (10,000 contacts) takes seconds.
REQUEST_TIMEOUT_SECONDS = 300
COPY_CHUNK_BYTES = 1 << 20


def spawn(command: list[str], env: dict, log_path: Path, cpus) -> subprocess.Popen:
    """A benchmark process in its own session, pinned to `cpus`, logging to `log_path`."""
    cpus = set(cpus)
    return subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )


class BenchError(RuntimeError):
    """The run cannot give a trustworthy figure (a request failed, rows are missing)."""


# -- the benchmark database ----------------------------------------------------------------


def connection_params(url: str) -> dict:
    db = dj_database_url.parse(url)
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "dbname": db["NAME"],
    }
    params.update(db.get("OPTIONS", {}))
    return params


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class BenchDatabase:
    """A database of our own on the server of DATABASE_URL (or the embedded one)."""

    url: str
    name: str

    @classmethod
    def create(cls, server_url: str, name: str) -> "BenchDatabase":
        params = connection_params(server_url)
        if params["dbname"] == name or not name.endswith("_bench"):
            raise BenchError(f"refusing to use {name!r}: the benchmark database ends in _bench")
        with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return cls(url=with_database_name(server_url, name), name=name)

    def drop(self) -> None:
        params = connection_params(self.url)
        with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(**connection_params(self.url), autocommit=autocommit)

    def execute(self, sql: str, params=None) -> list[tuple]:
        with self.connect(autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def count(self, table: str, where: str = "TRUE", params=None) -> int:
        return self.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0]  # noqa: S608

    def vacuum_analyze(self, *tables: str) -> None:
        """Between rounds, so each starts from the same table state (no dead tuples)."""
        with self.connect(autocommit=True) as conn:
            for table in tables:
                conn.execute(f"VACUUM ANALYZE {table}")


# -- the production server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_cpus(limit: int = 2) -> list[int]:
    """The server runs on 2 cores, as the targets say; on a bigger machine it is pinned."""
    return sorted(os.sched_getaffinity(0))[:limit]


@dataclass
class Server:
    """gunicorn serving orchestra.wsgi, as orchestra.launcher starts it for production."""

    env: dict
    workers: int
    threads: int
    log_path: Path
    port: int = 0
    process: subprocess.Popen | None = None
    cpus: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def describe(self) -> str:
        kind = "gthread" if self.threads > 1 else "sync"
        return f"gunicorn, {self.workers} workers x {self.threads} threads ({kind})"

    def start(self) -> "Server":
        self.port = free_port()
        self.cpus = server_cpus()
        command = [
            sys.executable, "-m", "gunicorn", "orchestra.wsgi",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--no-control-socket",
        ]  # fmt: skip
        self.process = spawn(command, self.env, self.log_path, self.cpus)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise BenchError(f"gunicorn did not answer /healthz in time:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the load generator ----------------------------------------------------------------------


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


@dataclass
class LoadResult:
    seconds: float
    statuses: Counter
    bodies: list[bytes]
    reconnects: int
    status_of: list[int] = field(default_factory=list)

    def json_bodies(self) -> list:
        return [json.loads(body) if body else None for body in self.bodies]

    def require_status(self, *allowed: int) -> None:
        bad = [i for i, body in enumerate(self.bodies) if self.status_of[i] not in allowed]
        if bad:
            first = bad[0]
            raise BenchError(
                f"{len(bad)} of {len(self.bodies)} requests failed ({dict(self.statuses)}); "
                f"the first answered {self.status_of[first]}: {self.bodies[first][:500]!r}"
            )


def send_all(
    port: int, path: str, bodies: list[bytes], headers: dict[str, str], clients: int
) -> LoadResult:
    """POST every body once from `clients` threads on keep-alive connections; time the lot.

    Bodies are built beforehand so the client spends its time sending, not encoding.
    """
    status_of = [0] * len(bodies)
    answers: list[bytes] = [b""] * len(bodies)
    next_index = itertools.count()
    reconnects = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        start.wait()
        try:
            for index in next_index:
                if index >= len(bodies):
                    break
                for attempt in range(2):
                    try:
                        connection.request("POST", path, body=bodies[index], headers=headers)
                        response = connection.getresponse()
                        answers[index] = response.read()
                        status_of[index] = response.status
                        break
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        # The server closed an idle keep-alive connection; every workload's
                        # requests are idempotent, so sending again on a new one is safe.
                        connection.close()
                        reconnects[number] += 1
                        if attempt:
                            raise
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if errors:
        raise BenchError(f"a client failed: {errors[0]!r}")
    return LoadResult(
        seconds=seconds,
        statuses=Counter(status_of),
        bodies=answers,
        reconnects=sum(reconnects.values()),
        status_of=status_of,
    )


def post_one(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- the raw floor -----------------------------------------------------------------------------


def copy_value(value) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_data(rows) -> bytes:
    return "".join("\t".join(map(copy_value, row)) + "\n" for row in rows).encode()


def copy_floor(database: BenchDatabase, table: str, columns: list[str], data: bytes) -> float:
    """Seconds to COPY the pre-encoded rows into `table` in one transaction, commit included."""
    with database.connect() as conn:
        began = time.perf_counter()
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with conn.cursor() as cursor, cursor.copy(sql) as copy:
            for offset in range(0, len(data), COPY_CHUNK_BYTES):
                copy.write(data[offset : offset + COPY_CHUNK_BYTES])
        conn.commit()
        return time.perf_counter() - began


def insert_one_by_one_floor(
    database: BenchDatabase, table: str, columns: list[str], rows: list[tuple], clients: int
) -> float:
    """Seconds to INSERT the rows one per transaction from `clients` connections: the floor
    of an API call that stores one event and commits."""
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
    next_index = itertools.count()
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        with database.connect(autocommit=True) as conn:
            cursor = conn.cursor()
            start.wait()
            try:
                for index in next_index:
                    if index >= len(rows):
                        break
                    cursor.execute(sql, rows[index])
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"the INSERT floor failed: {errors[0]!r}")
    return time.perf_counter() - began


# -- figures -----------------------------------------------------------------------------------


def best(samples: list[float]) -> float:
    """The best of several rounds: noise on a shared machine only ever slows a run down."""
    return max(samples)


def figure(
    name: str,
    unit: str,
    count: int,
    ours_seconds: list[float],
    floor_seconds: list[float],
    floor_what: str,
    min_rate: float | None = None,
    min_ratio: float | None = None,
    note: str = "",
) -> dict:
    """One line of a results table: our rate and the floor's, best of the rounds each."""
    ours = [count / s for s in ours_seconds]
    floor = [count / s for s in floor_seconds]
    ratio = best(ours) / best(floor) if floor else None
    passed = True
    if min_rate is not None:
        passed = passed and best(ours) >= min_rate
    if min_ratio is not None and ratio is not None:
        passed = passed and ratio >= min_ratio
    return {
        "name": name,
        "unit": unit,
        "count": count,
        "ours": round(best(ours), 1),
        "ours_seconds": round(min(ours_seconds), 3),
        "floor": round(best(floor), 1) if floor else None,
        "floor_seconds": round(min(floor_seconds), 3) if floor else None,
        "floor_what": floor_what,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": {"min_rate": min_rate, "min_ratio": min_ratio},
        "pass": passed,
        "rounds": {
            "ours": [round(r, 1) for r in ours],
            "floor": [round(r, 1) for r in floor],
        },
        "note": note,
    }


def not_available(name: str, reason: str) -> dict:
    return {"name": name, "available": False, "reason": reason}


# -- the machine -------------------------------------------------------------------------------


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _sep, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def machine(database: BenchDatabase, embedded: bool) -> dict:
    memory_kb = _proc_field("/proc/meminfo", "MemTotal")
    memory_gb = round(int(memory_kb.split()[0]) / 1024 / 1024, 1) if memory_kb else None
    version = database.execute("SHOW server_version")[0][0]
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": f"{version} ({'embedded, var/pgdata' if embedded else 'DATABASE_URL'})",
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


# -- Celery workers -------------------------------------------------------------------------------

WORKER_START_TIMEOUT_SECONDS = 90
WORKER_STOP_TIMEOUT_SECONDS = 60
# The launcher's worker (orchestra/launcher.py), and the same with N pool processes and none
# of the cluster chatter, for workloads that compare 1 and 2 processes.
LAUNCHER_WORKER_ARGS = ["--concurrency", "2", "--loglevel", "INFO"]


def prefork_args(processes: int) -> list[str]:
    return ["--pool", "prefork", "--concurrency", str(processes), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip


@dataclass
class CeleryWorker:
    """`celery -A orchestra worker <args>` in its own session, logging to `log_path`."""

    env: dict
    log_path: Path
    args: list[str]
    cpus: list[int] | None = None
    process: subprocess.Popen | None = None

    def start(self) -> "CeleryWorker":
        command = [sys.executable, "-m", "celery", "-A", "orchestra", "worker", *self.args]
        self.process = spawn(command, self.env, self.log_path, self.cpus or os.sched_getaffinity(0))
        deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the Celery worker exited early:\n{self.log_tail()}")
            if " ready." in self.log_tail():
                return self
            time.sleep(0.2)
        self.stop()
        raise BenchError(f"the Celery worker did not start in time:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown: the pool's children stop with it
        try:
            self.process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only this worker
            self.process.wait()
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def errors(self) -> list[str]:
        return [line for line in self.log_tail(1 << 22).splitlines() if "ERROR" in line]


def percentile(samples: list[float], share: float) -> float:
    """Nearest rank: the smallest sample with at least `share` of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_summary(probes: int, failures: list, latencies: list[float], from_sent: list[float]):
    """Probe latencies as reported: seconds from the API's answer (and from the send)."""
    return {
        "probes": probes,
        "missed": probes - len(latencies),
        "failed": failures[:3],
        "p50": round(percentile(latencies, 0.50), 3),
        "p95": round(percentile(latencies, 0.95), 3),
        "p99": round(percentile(latencies, 0.99), 3),
        "max": round(max(latencies), 3),
        "mean": round(statistics.fmean(latencies), 3),
        "p95_from_sent": round(percentile(from_sent, 0.95), 3),
    }


def background_summary(background: dict) -> dict:
    """What the background load (events/s beside the probes) achieved."""
    return {
        "events_per_s": round(background["accepted"] / background["seconds"]),
        "requests": background["requests"],
        "failed_requests": background["failed"],
        "errors": background["errors"][:3],
        "seconds": round(background["seconds"], 1),
    }
