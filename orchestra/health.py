"""Liveness and readiness for load balancers and orchestrators."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orchestra.celery import HEARTBEAT_CACHE_KEY
from orchestra.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


@require_GET
@never_cache
def readyz(request):
    """200 when the database and the broker answer; 503 naming each part that does not."""
    checks = {"database": _check_database, "broker": _check_broker}
    body: dict = {}
    failing = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means not ready; say which and why
            body[name] = f"error: {exc.__class__.__name__}: {exc}"
            failing.append(name)
        else:
            body[name] = "ok"
    try:
        body["worker_last_seen"] = (cache.get(HEARTBEAT_CACHE_KEY) or {}).get("at")
    except Exception:  # the cache is the same Redis; its failure is reported by broker
        body["worker_last_seen"] = None
    body["status"] = "unavailable" if failing else "ok"
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
