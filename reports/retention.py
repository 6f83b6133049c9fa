"""Keeping report storage bounded: after MAILSEC_REPORT_RETENTION_DAYS (default 400) the
records of aggregate reports, failure reports and the kept inputs go; the daily rollups stay,
so the charts of older periods still work.

An old aggregate report keeps its row (reporter, period, totals; `records_pruned` set): it is
how ingestion knows the report already, so a copy arriving again is a duplicate rather than
counted twice into the rollups. SMTP TLS reports are small and have no rollups (their page
reads them): they stay, with their inputs.

Everything is deleted in batches of BATCH rows, each in its own short transaction, so that
ingestion, which writes the same tables, waits at most one batch for a lock; the beat task
(reports.tasks.prune_reports) runs it daily on the worker, never on a request.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reports.models import AggregateRecord, AggregateReport, FailureReport, RawInput, TlsReport

BATCH = 5000
REPORTS_PER_BATCH = 100  # reports whose records are deleted together


def _in_batches(rows, batch: int, delete) -> int:
    """Delete `rows` (a queryset of pks) `batch` at a time; returns how many went."""
    done = 0
    while pks := list(rows[:batch]):
        with transaction.atomic():
            delete(pks)
        done += len(pks)
    return done


def prune_reports(now=None, days: int | None = None, batch: int = BATCH) -> dict[str, int]:
    days = settings.MAILSEC_REPORT_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    done = {"records": 0, "aggregate_reports": 0, "failure_reports": 0, "inputs": 0}

    old = AggregateReport.objects.filter(end__lt=cutoff, records_pruned=False).order_by("pk")
    while reports := list(old.values_list("pk", flat=True)[:REPORTS_PER_BATCH]):
        records = AggregateRecord.objects.filter(report_id__in=reports).values_list("pk", flat=True)
        done["records"] += _in_batches(
            records, batch, lambda pks: AggregateRecord.objects.filter(pk__in=pks).delete()
        )
        AggregateReport.objects.filter(pk__in=reports).update(records_pruned=True)
        done["aggregate_reports"] += len(reports)

    failures = FailureReport.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)
    done["failure_reports"] = _in_batches(
        failures, batch, lambda pks: FailureReport.objects.filter(pk__in=pks).delete()
    )

    # Inputs a TLS or failure report still holds stay (their reports need them); an aggregate
    # report lets its input go (its `raw` becomes NULL).
    held = Exists(TlsReport.objects.filter(raw=OuterRef("pk"))) | Exists(
        FailureReport.objects.filter(raw=OuterRef("pk"))
    )
    inputs = (
        RawInput.objects.filter(received_at__lt=cutoff).exclude(held).values_list("pk", flat=True)
    )

    def delete_inputs(pks):
        AggregateReport.objects.filter(raw_id__in=pks).update(raw=None)
        RawInput.objects.filter(pk__in=pks).delete()

    done["inputs"] = _in_batches(inputs, batch, delete_inputs)
    return done
