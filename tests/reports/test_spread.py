"""Multi-day reports count on each UTC day they cover (reports/spread.py): the shares by hand
for a report over three days, integers conserved whatever the counts, and rollups made before
spreading spread again by migration 0010."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reports import models, spread
from reports.ingest import ingest_input

# 12:00 on March 1 to midnight after March 3: 12 h, 24 h, 24 h (43200, 86400, 86400 s).
BEGIN = datetime(2026, 3, 1, 12, tzinfo=UTC)
END = datetime(2026, 3, 4, tzinfo=UTC)
MAR = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]


def report_xml(begin: datetime, end: datetime, records, report_id="three-days") -> bytes:
    rows = "".join(
        f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
        f"<disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf>"
        "</policy_evaluated></row><identifiers><header_from>acme.example</header_from>"
        "</identifiers><auth_results><spf><domain>acme.example</domain><result>pass</result>"
        "</spf></auth_results></record>"
        for ip, count, disposition, dkim, spf in records
    )
    return (
        "<?xml version='1.0'?><feedback><report_metadata><org_name>google.com</org_name>"
        f"<email>r@google.com</email><report_id>{report_id}</report_id><date_range>"
        f"<begin>{int(begin.timestamp())}</begin><end>{int(end.timestamp())}</end>"
        "</date_range></report_metadata><policy_published><domain>acme.example</domain>"
        f"<p>none</p></policy_published>{rows}</feedback>"
    ).encode()


RECORDS = [
    ("192.0.2.1", 10, "none", "pass", "fail"),
    ("192.0.2.1", 1, "reject", "fail", "fail"),
    ("198.51.100.7", 5, "quarantine", "fail", "pass"),
]
# By hand: a day's share of n is floor(n * through / 216000) - floor(n * before / 216000),
# with (before, through) = (0, 43200), (43200, 129600), (129600, 216000).
#   10 -> 2, 4, 4     1 -> 0, 0, 1     5 -> 1, 2, 2
EXPECTED = {
    # day, ip: messages, dmarc_pass, dkim_pass, spf_pass, none, quarantine, reject
    (MAR[0], "192.0.2.1"): (2, 2, 2, 0, 2, 0, 0),
    (MAR[0], "198.51.100.7"): (1, 1, 0, 1, 0, 1, 0),
    (MAR[1], "192.0.2.1"): (4, 4, 4, 0, 4, 0, 0),
    (MAR[1], "198.51.100.7"): (2, 2, 0, 2, 0, 2, 0),
    (MAR[2], "192.0.2.1"): (5, 4, 4, 0, 4, 0, 1),
    (MAR[2], "198.51.100.7"): (2, 2, 0, 2, 0, 2, 0),
}
FIELDS = (
    "messages", "dmarc_pass", "dkim_pass", "spf_pass", "disposition_none",
    "disposition_quarantine", "disposition_reject",
)  # fmt: skip


def rollups(team) -> dict:
    rows = models.DailyRollup.objects.filter(organization=team)
    return {(r.day, r.source_ip): tuple(getattr(r, f) for f in FIELDS) for r in rows}


def totals_match_rollups(team) -> bool:
    """DailyTotal holds each day's rollups summed (and nothing else)."""
    summed: dict = {}
    for (day, _), values in rollups(team).items():
        summed[day] = tuple(a + b for a, b in zip(summed.get(day, (0,) * 7), values, strict=True))
    rows = models.DailyTotal.objects.filter(organization=team)
    return {r.day: tuple(getattr(r, f) for f in FIELDS) for r in rows} == summed


def test_covered_days_count_the_seconds_of_each_utc_day():
    assert spread.covered_days(BEGIN, END) == [
        spread.DayShare(MAR[0], 0, 43200),
        spread.DayShare(MAR[1], 43200, 129600),
        spread.DayShare(MAR[2], 129600, 216000),
    ]
    # A day ending at 23:59:59 or at the next midnight is one day; so is no period at all.
    day = datetime(2026, 3, 1, tzinfo=UTC)
    for end in (day + timedelta(seconds=86399), day + timedelta(days=1), day):
        assert spread.covered_days(day, end) == [spread.DayShare(MAR[0], 0, 1)]
    # A period longer than MAX_SPREAD_DAYS is no real one: it stays on the day it begins.
    assert len(spread.covered_days(day, day + timedelta(days=40))) == 1
    assert len(spread.covered_days(day, day + timedelta(days=31))) == 31


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 10, 99, 86401, 10**12 + 7])
def test_shares_are_integers_that_add_up_exactly(count):
    for days in (
        spread.covered_days(BEGIN, END),
        spread.covered_days(BEGIN, BEGIN + timedelta(days=7, seconds=5)),
    ):
        shares = spread.split(count, days)
        assert sum(shares) == count and min(shares) >= 0
        assert shares == spread.split(count, days)  # the same every time


@pytest.mark.django_db
def test_a_three_day_report_is_spread_as_computed_by_hand(acme):
    [outcome] = ingest_input(
        report_xml(BEGIN, END, RECORDS), "r.xml", via="upload", organization=acme
    )
    assert outcome.status == "imported", outcome.error
    assert rollups(acme) == EXPECTED
    assert totals_match_rollups(acme)


@pytest.mark.django_db
def test_a_second_report_adds_to_the_same_days(acme):
    ingest_input(report_xml(BEGIN, END, RECORDS), "a.xml", via="upload", organization=acme)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    extra = [("192.0.2.1", 3, "none", "pass", "pass")]
    one_day = report_xml(day, day + timedelta(days=1), extra, report_id="one-day")
    ingest_input(one_day, "b.xml", via="upload", organization=acme)
    assert rollups(acme)[MAR[1], "192.0.2.1"] == (7, 7, 7, 3, 7, 0, 0)
    assert totals_match_rollups(acme)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _stored_before(apps, team_pk: int, begin, end, records, report_id: str) -> None:
    """A report as 0008's code stored it, with its rollups all on the day it began."""
    raw = apps.get_model("reports", "RawInput").objects.create(
        organization_id=team_pk, sha256=report_id.ljust(64, "0"), name=report_id, size=0,
        content=b"", source="upload", status="imported",
    )  # fmt: skip
    report = apps.get_model("reports", "AggregateReport").objects.create(
        organization_id=team_pk, raw=raw, org_name="google.com", report_id=report_id,
        domain="acme.example", begin=begin, end=end,
    )  # fmt: skip
    Record = apps.get_model("reports", "AggregateRecord")
    for ip, count, disposition, dkim, spf in records:
        Record.objects.create(
            report=report, source_ip=ip, count=count, disposition=disposition, dkim=dkim, spf=spf
        )
    days = [spread.DayShare(begin.date(), 0, 1)]
    with connection.cursor() as cursor:
        cursor.execute(*spread.rollup_statement(team_pk, "acme.example", report.pk, days))


def test_migration_0010_spreads_the_rollups_of_reports_stored_before(transactional_db, acme):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        apps = migrate([("reports", "0008_uploads_parsed_by_the_worker")])
        _stored_before(apps, acme.pk, BEGIN, END, RECORDS, "three-days")
        day = datetime(2026, 3, 2, tzinfo=UTC)
        extra = [("192.0.2.1", 3, "none", "pass", "pass")]
        _stored_before(apps, acme.pk, day, day + timedelta(seconds=86399), extra, "one")
        assert sum(v[0] for v in rollups(acme).values()) == 19
        assert rollups(acme)[MAR[0], "192.0.2.1"] == (11, 10, 10, 0, 10, 0, 1)
        migrate(latest)
        expected = dict(EXPECTED)
        expected[MAR[1], "192.0.2.1"] = (7, 7, 7, 3, 7, 0, 0)
        assert rollups(acme) == expected
        assert totals_match_rollups(acme)  # 0012 made the totals from the spread rollups
    finally:
        migrate(latest)
