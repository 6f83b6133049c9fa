"""The data migration of 0006: reports stored before tenancy go to every team that saw them
then (each team's view unchanged), copied with their records, policies and input; reports of
domains nobody monitors stay unclaimed."""

import gzip
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("reports", "0004_records_json_unchecked"), ("domains", "0004_run_details_pruned")]
AFTER = [("reports", "0007_rollups_and_selectors_need_a_team")]
CONTENT = gzip.compress(b"abc", mtime=0)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _raw(apps, sha: str):
    return apps.get_model("reports", "RawInput").objects.create(
        sha256=sha * 64,
        name=f"{sha}.xml",
        size=3,
        encoding="gzip",
        content=CONTENT,
        source="upload",
        status="imported",
    )


def _aggregate(apps, domain: str, raw, records: int):
    report = apps.get_model("reports", "AggregateReport").objects.create(
        raw=raw,
        org_name="google.com",
        report_id=f"id-{domain}",
        domain=domain,
        begin=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 1, 2, tzinfo=UTC),
        record_count=records,
        message_count=records,
    )
    Record = apps.get_model("reports", "AggregateRecord")
    for n in range(records):
        Record.objects.create(report=report, source_ip=f"192.0.2.{n + 1}", count=1)
    return report


@pytest.fixture
def migrator(transactional_db):
    """Migrations run back and forth; the database is left at the latest ones after."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    yield migrate
    migrate(latest)


def test_existing_reports_go_to_every_team_that_saw_them(migrator):
    old = migrator(BEFORE)
    Organization = old.get_model("domains", "Organization")
    Domain = old.get_model("domains", "Domain")
    acme, globex = Organization.objects.create(name="Acme"), Organization.objects.create(name="G")
    for team, name in [(acme, "shared.example"), (globex, "shared.example"), (acme, "a.example")]:
        Domain.objects.create(organization=team, name=name)
    # One input with a report of a shared domain, one of Acme's and one nobody monitors.
    raw = _raw(old, "a")
    _aggregate(old, "shared.example", raw, records=3)
    _aggregate(old, "a.example", raw, records=1)
    _aggregate(old, "nobody.example", raw, records=2)
    tls = old.get_model("reports", "TlsReport").objects.create(
        raw=_raw(old, "b"),
        org_name="Google Inc.",
        report_id="tls-1",
        domain="nobody.example",  # its second policy names a monitored domain
        begin=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 1, 2, tzinfo=UTC),
    )
    Policy = old.get_model("reports", "TlsPolicy")
    for name in ("nobody.example", "a.example"):
        Policy.objects.create(report=tls, policy_type="sts", policy_domain=name)
    old.get_model("reports", "FailureReport").objects.create(
        raw=_raw(old, "c"), domain="shared.example", feedback_type="auth-failure"
    )
    # A refused input (no report) fetched by Acme's mailbox, and one uploaded by nobody knows.
    fetched, uploaded = _raw(old, "d"), _raw(old, "e")
    mailbox = old.get_model("reports", "Mailbox").objects.create(
        organization=acme, name="rua", host="imap.example", username="u"
    )
    old.get_model("reports", "ProcessedMessage").objects.create(
        mailbox=mailbox, folder="INBOX", uidvalidity=1, uid=1, raw=fetched, status="refused"
    )
    for name in ("shared.example", "nobody.example"):
        old.get_model("reports", "DailyRollup").objects.create(
            domain=name, day=date(2026, 1, 1), source_ip="192.0.2.1", messages=7
        )
        old.get_model("reports", "ReportedSelector").objects.create(
            domain=name, selector="s1", last_seen=date(2026, 1, 1)
        )

    new = migrator(AFTER)
    Aggregate = new.get_model("reports", "AggregateReport")
    owners = sorted(
        (r.domain, r.organization_id, r.records.count(), r.raw.organization_id)
        for r in Aggregate.objects.all()
    )
    assert owners == sorted(
        [
            ("shared.example", acme.pk, 3, acme.pk),
            ("shared.example", globex.pk, 3, globex.pk),
            ("a.example", acme.pk, 1, acme.pk),
            ("nobody.example", None, 2, None),
        ]
    )
    # The input went to each owner of its reports: Acme, Globex, and unclaimed.
    copies = new.get_model("reports", "RawInput").objects.filter(sha256="a" * 64)
    assert sorted(copies.values_list("organization_id", flat=True), key=str) == sorted(
        [acme.pk, globex.pk, None], key=str
    )
    assert all(bytes(c.content) == CONTENT for c in copies)
    [tls] = new.get_model("reports", "TlsReport").objects.all()
    assert tls.organization_id == acme.pk and tls.policies.count() == 2
    failures = new.get_model("reports", "FailureReport").objects.all()
    assert sorted(f.organization_id for f in failures) == [acme.pk, globex.pk]
    Raw = new.get_model("reports", "RawInput")
    assert Raw.objects.get(pk=fetched.pk).organization_id == acme.pk
    assert Raw.objects.get(pk=uploaded.pk).organization_id is None
    for model in ("DailyRollup", "ReportedSelector"):
        rows = new.get_model("reports", model).objects.values_list("organization_id", "domain")
        assert sorted(rows) == [(acme.pk, "shared.example"), (globex.pk, "shared.example")]
