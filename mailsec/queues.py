"""Mailsec's Celery queues and which task goes where.

Slow work (protocol probes, big imports) has queues of its own, so it never holds up the DNS
checks or the dispatcher. A worker started without --queues consumes all of them. The prefix
(MAILSEC_QUEUE_PREFIX) lets several installations, or test runs, share one Redis."""

from kombu import Queue

NAMES = ["default", "dispatch", "checks", "probes", "ingest", "alerts"]
ROUTES = {
    "domains.tasks.dispatch_due_checks": "dispatch",
    "domains.tasks.check_domain_task": "checks",
    "domains.tasks.probe_domains_task": "probes",
    "domains.tasks.deliver_alert": "alerts",
    "domains.tasks.send_digests": "alerts",
    "reports.tasks.poll_mailboxes": "dispatch",
    "reports.tasks.fetch_mailbox": "ingest",
    "reports.tasks.parse_upload_file": "ingest",
    "reports.tasks.parse_raw_input": "ingest",
    "reports.tasks.enrich_report_sources": "ingest",
    "reports.tasks.refresh_sources": "ingest",
    "reports.tasks.drain_pending_senders": "ingest",
    "mailsec.tasks.reap_stale": "dispatch",
}


def celery_queue_settings(prefix: str = "") -> dict:
    """Celery's task_default_queue, task_queues and task_routes for this prefix."""
    return {
        "task_default_queue": f"{prefix}default",
        "task_queues": [Queue(f"{prefix}{name}") for name in NAMES],
        "task_routes": {task: {"queue": f"{prefix}{queue}"} for task, queue in ROUTES.items()},
    }
