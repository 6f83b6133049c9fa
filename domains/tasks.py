"""Celery tasks: thin wrappers that take ids and call plain functions.

Their results are not kept (ignore_result): everything they do is in the database, and
nothing reads a result; kept a day in Redis they were ~1 KB a check, ~4 GB at 1M domains
(docs/scaling.md). A caller that wants one asks: apply_async(..., ignore_result=False).
"""

from datetime import datetime

from celery import shared_task
from django.db import DatabaseError

from domains import retention, scheduling
from domains.models import ManualCheck

# Failures of our own infrastructure are retried; a misconfigured domain is a verdict, not an
# error, and never raises.
INFRASTRUCTURE_ERRORS = (DatabaseError, ConnectionError)


@shared_task(ignore_result=True, time_limit=55, soft_time_limit=50)
def dispatch_due_checks() -> int:
    return scheduling.dispatch_due() + scheduling.dispatch_due_probes()


@shared_task(
    ignore_result=True,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=15,
    retry_backoff_max=600,
    max_retries=5,
    time_limit=240,
    soft_time_limit=200,
)
def check_domain_task(
    self, domain_id: int, manual_id: int | None = None, claimed_at: str | None = None
) -> int | None:
    claimed = datetime.fromisoformat(claimed_at) if claimed_at else None
    try:
        run = scheduling.run_check(domain_id, manual_id, claimed)
    except Exception as exc:
        _fail_manual_check(self, manual_id, exc)
        raise
    return run.pk if run else None


@shared_task(
    ignore_result=True,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=3,
    # A batch takes about as long as its slowest host: a tarpit's greeting timeout plus the
    # TLS versions tried, with room for the DNS checks.
    time_limit=600,
    soft_time_limit=540,
)
def probe_domains_task(self, domain_ids: list[int], manual_id: int | None = None) -> list[int]:
    try:
        runs = scheduling.run_probes(domain_ids, manual_id)
    except Exception as exc:
        _fail_manual_check(self, manual_id, exc)
        raise
    return [run.pk for run in runs]


def _fail_manual_check(task, manual_id: int | None, exc: Exception) -> None:
    """A "check now" whose task failed for good (a verdict error, or retries used up) says so;
    one that will be retried stays queued."""
    final = task.request.retries >= task.max_retries or not isinstance(exc, INFRASTRUCTURE_ERRORS)
    if manual_id and final:
        ManualCheck.objects.filter(pk=manual_id).update(
            state=ManualCheck.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:500]
        )


@shared_task(
    ignore_result=True, bind=True, acks_late=True, max_retries=8, time_limit=60, soft_time_limit=45
)
def deliver_alert(self, delivery_id: int) -> None:
    from domains import alerts

    try:
        alerts.deliver(delivery_id)
    except alerts.RetryLater as later:
        raise self.retry(countdown=later.countdown) from None


@shared_task(ignore_result=True, time_limit=300, soft_time_limit=280)
def send_digests() -> int:
    from domains import alerts

    return alerts.send_digests()


@shared_task(ignore_result=True, time_limit=3600, soft_time_limit=3500)
def prune_run_details() -> dict:
    """The retention beat task: old runs' details, and stored probes no domain uses."""
    return {
        "runs": retention.prune_run_details(),
        "server_probes": retention.prune_server_probes(),
    }
