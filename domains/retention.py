"""Keeping history affordable: old runs keep their summary (time, status, score, grade, each
category's status and score) and lose the raw records and findings."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from domains.models import CheckRun, Domain, Finding

BATCH = 1000


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
