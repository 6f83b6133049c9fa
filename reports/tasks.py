"""Celery tasks: thin wrappers that take ids and call plain functions.

Their results are not kept (ignore_result, as domains/tasks.py says why).
"""

from celery import shared_task
from django.db import DatabaseError

from reports import fetch, ingest, retention, uploads
from reports.models import AggregateReport, RawInput
from reports.senders import enrich, news


@shared_task(ignore_result=True, time_limit=55, soft_time_limit=50)
def poll_mailboxes() -> int:
    """Every minute (beat): queue a pass for each mailbox whose interval has run out."""
    due = fetch.due_mailboxes()
    for mailbox_id in due:
        fetch_mailbox.delay(mailbox_id)
    return len(due)


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError, ConnectionError),
    retry_backoff=30,
    max_retries=3,
    # A pass renews its lease after every batch; a pass this long is stuck.
    time_limit=3600,
    soft_time_limit=3500,
)
def fetch_mailbox(mailbox_id: int, pass_id: int | None = None) -> int | None:
    run = fetch.run_pass(mailbox_id, pass_id)
    return run.pk if run else None


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=uploads.TIME_LIMIT,
    soft_time_limit=uploads.SOFT_TIME_LIMIT,
)
def parse_upload_file(file_id: int) -> str | None:
    """Parse one uploaded file (reports/uploads.py); the upload's page polls its state."""
    file = uploads.parse(file_id)
    return file.state if file else None


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=1800,
    soft_time_limit=1740,
)
def parse_raw_input(raw_id: int) -> int:
    """Parse an input kept but never parsed (its import was killed): the reaper queues these."""
    raw = RawInput.objects.filter(pk=raw_id).first()
    return len(ingest.ingest_kept(raw, raw.name)) if raw else 0


@shared_task(ignore_result=True, time_limit=3600, soft_time_limit=3500)
def prune_reports() -> dict:
    """The report retention beat task (reports/retention.py)."""
    return retention.prune_reports()


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=30,
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1740,
)
def enrich_report_sources(report_id: int) -> int:
    """One report's addresses looked up, then its senders noted (reports/senders/): what
    ingestion queued before the drain; kept for tasks queued before an upgrade."""
    report = AggregateReport.objects.filter(pk=report_id).first()
    if report is None:
        return 0
    looked = sum(enrich.enrich_report(report_id).values())
    news.note_senders(report)
    return looked


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=600,
    soft_time_limit=540,
)
def drain_pending_senders() -> int:
    """Queued by ingestion (at most one per few seconds) and every minute by beat: look up the
    addresses of the reports stored since, and note their senders (enrich.drain). Works for
    DRAIN_FOR seconds, then, if reports are left, queues its successor behind the parses
    waiting on the same queue."""
    result = enrich.drain()
    if result["pending"] and result["done"]:
        drain_pending_senders.delay()
    return result["done"]


@shared_task(ignore_result=True, time_limit=3600, soft_time_limit=3500)
def refresh_sources() -> int:
    """Hourly (beat): look up again the addresses whose lookup expired or failed."""
    return sum(enrich.refresh().values())
