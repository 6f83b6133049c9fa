"""Keeping history affordable: old runs keep their summary (time, status, score, grade, each
category's status and score) and lose the raw records and findings; stored server probes that
no domain's latest run lists any more (a changed MX, a deleted domain) are deleted."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from domains.models import CheckRun, Domain, Finding, ServerProbe, probe_key

BATCH = 1000
# An unused probe younger than this is kept: a probe run stores its probes before it saves the
# run that lists them, so a prune between the two must not take them away.
PROBE_GRACE = timedelta(days=2)
PROBE_CATEGORIES = ("smtp", "submission", "imap", "pop3")


def prune_run_details(now=None, days: int | None = None) -> int:
    """Strip the details of runs older than `days` (MAILSEC_RUN_DETAIL_DAYS); returns how many.
    A domain's latest run keeps its details, however old."""
    days = settings.MAILSEC_RUN_DETAIL_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    latest = Domain.objects.filter(last_run__isnull=False).values("last_run_id")
    old = CheckRun.objects.filter(finished_at__lt=cutoff, details_pruned=False).exclude(
        pk__in=latest
    )
    pruned = 0
    while batch := list(old.values_list("pk", "categories")[:BATCH]):
        with transaction.atomic():
            Finding.objects.filter(run_id__in=[pk for pk, _ in batch]).delete()
            for pk, categories in batch:
                summary = {
                    name: {"status": c.get("status"), "score": c.get("score")}
                    for name, c in categories.items()
                }
                CheckRun.objects.filter(pk=pk).update(categories=summary, details_pruned=True)
        pruned += len(batch)
    return pruned


def prune_server_probes(now=None) -> int:
    """Delete the stored probes of servers no domain's latest run lists (and probed more than
    PROBE_GRACE ago); returns how many."""
    cutoff = (now or timezone.now()) - PROBE_GRACE
    used = set()
    runs = Domain.objects.filter(last_run__isnull=False).values_list("last_run__categories")
    for (categories,) in runs.iterator(chunk_size=BATCH):
        for name in PROBE_CATEGORIES:
            for row in (categories.get(name) or {}).get("servers") or []:
                used.add(
                    probe_key(
                        (row["address"], row["port"], row["service"], row["tls_mode"], row["host"])
                    )
                )
    stale = ServerProbe.objects.filter(probed_at__lt=cutoff).values_list("pk", "key")
    unused = [pk for pk, key in stale.iterator(chunk_size=BATCH) if key not in used]
    for start in range(0, len(unused), BATCH):
        ServerProbe.objects.filter(pk__in=unused[start : start + BATCH]).delete()
    return len(unused)
