from celery import shared_task
from django.utils import timezone

from mailsec.models import AuditEvent, WorkerHeartbeat


@shared_task(bind=True, time_limit=30, soft_time_limit=20, ignore_result=False)
def heartbeat(self) -> str:
    hostname = self.request.hostname or "unknown"
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return hostname


@shared_task(ignore_result=True, time_limit=600, soft_time_limit=540)
def prune_audit_log() -> int:
    return AuditEvent.prune()


@shared_task(ignore_result=True, time_limit=120, soft_time_limit=100)
def reap_stale() -> dict[str, int]:
    """Every minute (beat): settle and queue again what a dead worker left (mailsec/reaper.py)."""
    from mailsec import reaper

    return reaper.reap()
