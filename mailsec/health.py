"""/healthz for load balancers (the database answers) and /readyz for whoever asks whether
mailsec works as a whole (the database, the broker, and beat still sending tasks). Each answers
a JSON body with every check's own status; 503 when any fails."""

import logging
from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from mailsec.models import BeatHeartbeat

logger = logging.getLogger(__name__)

# Beat sends the heartbeat, dispatcher and reaper tasks every minute.
BEAT_STALE_AFTER = timedelta(minutes=3)
BROKER_TIMEOUT = 3.0  # seconds


def database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok"}


def broker() -> dict:
    from mailsec.celery import app

    options = {"socket_connect_timeout": BROKER_TIMEOUT, "socket_timeout": BROKER_TIMEOUT}
    with app.connection_for_read(transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()  # Redis: connected is not enough, it must answer
    return {"status": "ok", "transport": conn.transport_cls}


def beat(now=None) -> dict:
    now = now or timezone.now()
    seen = BeatHeartbeat.last_seen()
    if seen is None:
        return {"status": "fail", "error": "beat has never dispatched a task"}
    age = int((now - seen).total_seconds())
    fresh = now - seen <= BEAT_STALE_AFTER
    return {"status": "ok" if fresh else "fail", "last_dispatch": seen.isoformat(), "age": age}


def _run(checks: dict) -> JsonResponse:
    results = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as exc:
            logger.warning("Health check %s failed: %s", name, exc)
            results[name] = {"status": "fail", "error": type(exc).__name__}
    healthy = all(result["status"] == "ok" for result in results.values())
    body = {"status": "ok" if healthy else "fail", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)


@login_not_required
@require_GET
def healthz(request):
    return _run({"database": database})


@login_not_required
@require_GET
def readyz(request):
    return _run({"database": database, "broker": broker, "beat": beat})
