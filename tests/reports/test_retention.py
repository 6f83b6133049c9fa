"""Report retention (reports/retention.py): past MAILSEC_REPORT_RETENTION_DAYS the aggregate
records, failure reports and inputs go in batches; the rollups, the aggregate reports' rows (so
a copy arriving again is a duplicate) and the TLS reports stay; and it runs while ingestion
writes the same tables."""

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reports import models, retention, tasks
from reports.ingest import ingest_input
from tests.conftest import client_for
from tests.reports.test_spread import report_xml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
OLD_FILES = [
    "aggregate/parsedmarc__nice-input.xml",  # 2018: 20 records
    "forensic/parsedmarc__dmarc_ruf_report_linkedin.eml",
    "smtp_tls/parsedmarc__rfc8460.json",
]


def import_file(team, name: str):
    return ingest_input(str(FIXTURES / name), name, via="upload", organization=team)


def recent_report(team, n: int, records: int = 3):
    begin = timezone.now().replace(microsecond=0) - timedelta(days=2)
    rows = [(f"198.51.100.{i + 1}", 2, "none", "pass", "fail") for i in range(records)]
    xml = report_xml(begin, begin + timedelta(days=1), rows, report_id=f"recent-{n}")
    [outcome] = ingest_input(xml, f"recent-{n}.xml", via="upload", organization=team)
    assert outcome.status == "imported", outcome.error
    return outcome


def old_report(team, n: int, records: int = 30):
    begin = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
    rows = [(f"192.0.2.{i + 1}", 1, "none", "fail", "fail") for i in range(records)]
    xml = report_xml(begin, begin + timedelta(days=1), rows, report_id=f"old-{n}")
    [outcome] = ingest_input(xml, f"old-{n}.xml", via="upload", organization=team)
    assert outcome.status == "imported", outcome.error
    return outcome


def rollup_rows(team) -> set:
    """The team's rollups of both grains (per source and day, per source and month)."""
    rows = models.DailyRollup.objects.filter(organization=team)
    months = models.MonthlyRollup.objects.filter(organization=team)
    fields = ("domain", "source_ip", "messages", "dmarc_pass")
    return set(rows.values_list("day", *fields)) | set(months.values_list("month", *fields))


def age_inputs(days: int) -> None:
    old = timezone.now() - timedelta(days=days)
    models.RawInput.objects.update(received_at=old)
    models.FailureReport.objects.update(received_at=old)


def test_the_default_is_400_days_and_a_daily_beat_task_runs_it():
    assert settings.MAILSEC_REPORT_RETENTION_DAYS == 400
    beat = settings.CELERY_BEAT_SCHEDULE["prune-reports"]
    assert beat == {"task": "reports.tasks.prune_reports", "schedule": 86400.0}


def test_old_records_failure_reports_and_inputs_go_in_batches_rollups_stay(acme, alice):
    for name in OLD_FILES:
        assert import_file(acme, name)[0].status == "imported"
    age_inputs(401)
    recent = recent_report(acme, 1)
    rollups = rollup_rows(acme)
    old = models.AggregateReport.objects.get(domain="example.com")

    with CaptureQueriesContext(connection) as captured:
        done = retention.prune_reports(batch=7)
    assert done == {"records": 20, "aggregate_reports": 1, "failure_reports": 1, "inputs": 2}
    record_deletes = [
        q["sql"] for q in captured if q["sql"].startswith('DELETE FROM "reports_aggregaterecord"')
    ]
    assert len(record_deletes) == 3  # 7 + 7 + 6

    assert rollup_rows(acme) == rollups  # the charts of 2018 still work
    old.refresh_from_db()
    assert old.records_pruned and old.raw_id is None and old.message_count == 3047
    assert not old.records.exists()
    assert models.AggregateRecord.objects.filter(report_id=recent.report_pk).count() == 3
    assert not models.FailureReport.objects.exists()
    tls = models.TlsReport.objects.get()
    assert models.RawInput.objects.filter(pk=tls.raw_id).exists()  # its report needs it
    assert models.RawInput.objects.count() == 2  # the TLS report's, the recent report's

    # The same old report again: known, a duplicate, not counted twice.
    assert import_file(acme, OLD_FILES[0])[0].status == "duplicate"
    assert rollup_rows(acme) == rollups
    # Its page says where the records went; the beat task finds nothing more to do.
    body = client_for(alice).get(f"/reports/aggregate/{old.pk}/").content.decode()
    assert "older than the retention period" in body
    nothing = {"records": 0, "aggregate_reports": 0, "failure_reports": 0, "inputs": 0}
    assert tasks.prune_reports.apply(throw=True).get() == nothing


def test_retention_deletes_in_batches_while_ingestion_runs(transactional_db, acme, monkeypatch):
    for n in range(4):
        old_report(acme, n)
    age_inputs(401)
    before = sum(models.DailyRollup.objects.values_list("messages", flat=True))
    batches = []
    pruning = threading.Event()
    pruned = threading.Event()
    ingested: list[int] = []
    errors: list[BaseException] = []

    def ingest_meanwhile():
        try:
            pruning.wait(10)
            n = 0
            while not pruned.is_set() or n < 5:
                ingested.append(recent_report(acme, n).report_pk)
                n += 1
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    original = retention._in_batches

    def counting(rows, batch, delete):
        def each(pks):
            batches.append(len(pks))
            pruning.set()
            time.sleep(0.01)  # let the ingestion in between batches
            delete(pks)

        return original(rows, batch, each)

    monkeypatch.setattr(retention, "_in_batches", counting)
    worker = threading.Thread(target=ingest_meanwhile)
    worker.start()
    try:
        done = retention.prune_reports(batch=10)
    finally:
        pruned.set()
        worker.join(60)
    assert not errors, errors
    assert done["records"] == 120 and done["aggregate_reports"] == 4
    assert max(batches) <= 10 and len(batches) >= 12
    assert len(ingested) >= 5
    # Every report ingested meanwhile is whole; the old ones' records are gone, rollups stay.
    for pk in ingested:
        assert models.AggregateRecord.objects.filter(report_id=pk).count() == 3
    assert not models.AggregateRecord.objects.filter(report__records_pruned=True).exists()
    after = sum(models.DailyRollup.objects.values_list("messages", flat=True))
    assert after == before + 6 * len(ingested)
