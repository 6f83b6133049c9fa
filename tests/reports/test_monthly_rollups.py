"""The per-source monthly rollups (reports.models.MonthlyRollup): ingestion keeps them equal
to the daily rollups summed per month (a report over a month's end split between months), a
range's sources read from whole months and edge days equal those the records give, retention
leaves them alone, and migration 0014 makes them from the daily rollups stored before."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum

from reports import analytics, models, retention
from reports.ingest import ingest_input
from tests.reports.test_spread import FIELDS, migrate, report_xml

SUMS = {field: field for field in FIELDS}


def source_sums(
    organization, name: str, since: date, until: date, sums: dict, today: date | None = None
) -> list[dict]:
    """analytics.summed_sources() run: one dict per address."""
    sql, params = analytics.summed_sources(organization, name, since, until, sums, today)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def month_rows(team) -> dict:
    rows = models.MonthlyRollup.objects.filter(organization=team)
    return {(r.month, r.source_ip): tuple(getattr(r, f) for f in FIELDS) for r in rows}


def daily_by_month(team) -> dict:
    summed: dict = {}
    for r in models.DailyRollup.objects.filter(organization=team):
        key = (r.day.replace(day=1), r.source_ip)
        values = tuple(getattr(r, f) for f in FIELDS)
        summed[key] = tuple(a + b for a, b in zip(summed.get(key, (0,) * 7), values, strict=True))
    return summed


def store(team, begin: datetime, days: float, records, report_id: str) -> None:
    xml = report_xml(begin, begin + timedelta(days=days), records, report_id=report_id)
    [outcome] = ingest_input(xml, f"{report_id}.xml", via="upload", organization=team)
    assert outcome.status == "imported", outcome.error


def a_year_of_reports(team) -> None:
    """One-day reports on the 1st, 10th and last day of each month of 2025, and a few sources
    coming and going, so that every range has whole months, edge days and gaps."""
    ips = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::25"]
    for month in range(1, 13):
        first = datetime(2025, month, 1, tzinfo=UTC)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        for n, day in enumerate((first, first.replace(day=10), last)):
            records = [
                (ips[(month + n + k) % 4], 1 + month * k + n, "none", "pass", "fail")
                for k in range(1 + (month + n) % 3)
            ] + [(ips[month % 4], 3, "quarantine", "fail", "fail")]
            store(team, day, 1, records, f"r-{month}-{n}")


@pytest.mark.django_db
def test_ingestion_keeps_the_months_equal_to_the_days_summed(acme):
    # Over a month's end: March 31 12:00 to April 2 00:00 (12 h in March, 24 h in April).
    records = [("192.0.2.1", 9, "none", "pass", "fail"), ("192.0.2.9", 4, "reject", "fail", "fail")]
    store(acme, datetime(2026, 3, 31, 12, tzinfo=UTC), 1.5, records, "over-the-end")
    a_year_of_reports(acme)
    months = month_rows(acme)
    assert months == daily_by_month(acme)
    # 9 over 36 h: 3 in March, 6 in April; 4 over 36 h: 1 and 3.
    assert months[date(2026, 3, 1), "192.0.2.1"][0] == 3
    assert months[date(2026, 4, 1), "192.0.2.1"][0] == 6
    assert months[date(2026, 4, 1), "192.0.2.9"][6] == 3  # rejected


def from_records(team, since: date, until: date) -> dict:
    """Each source's messages and passes over the range, summed from the records of the
    (one-day) reports that begin in it: what the rollups must give."""
    records = models.AggregateRecord.objects.filter(
        report__organization=team,
        report__begin__date__gte=since,
        report__begin__date__lte=until,
    )
    found: Counter = Counter()
    passed: Counter = Counter()
    for ip, count, dkim, spf in records.values_list("source_ip", "count", "dkim", "spf"):
        found[ip] += count
        passed[ip] += count if "pass" in (dkim, spf) else 0
    return {ip: (found[ip], passed[ip]) for ip in found}


RANGES = [
    # (since, until, today: None for the real one, long after the data)
    (date(2025, 1, 1), date(2025, 12, 31), None),  # whole year: whole months
    (date(2025, 1, 2), date(2025, 12, 30), None),  # January less its 1st, December less its 31st
    (date(2025, 5, 3), date(2025, 8, 20), None),  # May less the 1st, 2nd (their sources go)
    (date(2025, 3, 10), date(2025, 3, 31), None),  # within one month: less its first days
    (date(2025, 2, 28), date(2025, 4, 1), None),  # one whole month, an edge day each side
    (date(2025, 6, 1), date(2025, 7, 31), None),  # June and July whole
    (date(2024, 1, 1), date(2026, 12, 31), None),  # beyond the data
    (date(2025, 5, 11), date(2025, 5, 11), None),  # a day without reports
    (date(2025, 6, 10), date(2025, 6, 12), None),  # a few days: by the days
    (date(2025, 6, 1), date.max, None),  # no end (the API's summary)
    # "Today" within the data: the days after it are not counted as outside, but what they
    # hold (here, reports dated ahead) is taken away all the same.
    (date(2025, 8, 7), date(2025, 9, 6), date(2025, 9, 6)),  # the last 30 days
    (date(2024, 9, 7), date(2025, 9, 6), date(2025, 9, 6)),  # the last 365 days
    (date(2025, 9, 10), date(2025, 9, 10), date(2025, 9, 10)),  # today alone: its month whole
]


@pytest.mark.django_db
@pytest.mark.parametrize(("since", "until", "today"), RANGES)
def test_a_ranges_sources_are_what_the_records_give(acme, since, until, today):
    a_year_of_reports(acme)
    rows = source_sums(acme.pk, "acme.example", since, until, SUMS, today)
    got = {row["source_ip"]: (row["messages"], row["dmarc_pass"]) for row in rows}
    assert got == from_records(acme, since, until)
    # ... and what the daily rollups alone give, for every column.
    daily = (
        models.DailyRollup.objects.filter(organization=acme, day__gte=since, day__lte=until)
        .values("source_ip")
        .annotate(**{f: Sum(f) for f in FIELDS})
    )
    assert {r["source_ip"]: r for r in daily} == {r["source_ip"]: r for r in rows}


def plan(since: date, until: date, today: date) -> tuple:
    p = analytics.range_plan(since, until, today)
    return p.months, p.added, p.taken


def test_a_range_reads_months_whole_less_their_days_outside_when_those_are_fewer():
    d = date
    # A year to today: its first month less the days before, the current month whole (the
    # days after today taken away should a report be dated ahead).
    assert plan(d(2025, 12, 6), d(2026, 12, 6), d(2026, 12, 6)) == (
        (d(2025, 12, 1), d(2027, 1, 1)),
        (),
        ((d(2025, 12, 1), d(2025, 12, 5)), (d(2026, 12, 7), d(2026, 12, 31))),
    )
    # 30 days to today: two months whole, less six days.
    assert plan(d(2026, 11, 7), d(2026, 12, 6), d(2026, 12, 6)) == (
        (d(2026, 11, 1), d(2027, 1, 1)),
        (),
        ((d(2026, 11, 1), d(2026, 11, 6)), (d(2026, 12, 7), d(2026, 12, 31))),
    )
    # 7 days to today over a month's end: November's last day by its day.
    assert plan(d(2026, 11, 30), d(2026, 12, 6), d(2026, 12, 6)) == (
        (d(2026, 12, 1), d(2027, 1, 1)),
        ((d(2026, 11, 30), d(2026, 11, 30)),),
        ((d(2026, 12, 7), d(2026, 12, 31)),),
    )
    # In the past (today long after): the days outside count whichever side they are.
    assert plan(d(2025, 3, 2), d(2025, 3, 30), d(2026, 1, 1)) == (
        (d(2025, 3, 1), d(2025, 4, 1)),
        (),
        ((d(2025, 3, 1), d(2025, 3, 1)), (d(2025, 3, 31), d(2025, 3, 31))),
    )
    assert plan(d(2025, 1, 17), d(2025, 3, 15), d(2026, 1, 1)) == (
        (d(2025, 2, 1), d(2025, 3, 1)),
        ((d(2025, 1, 17), d(2025, 1, 31)), (d(2025, 3, 1), d(2025, 3, 15))),
        (),
    )
    # One day: by its day (its month's other 30 are outside).
    assert plan(d(2025, 5, 11), d(2025, 5, 11), d(2026, 1, 1)) == (
        (d(2025, 6, 1), d(2025, 6, 1)),
        ((d(2025, 5, 11), d(2025, 5, 11)),),
        (),
    )
    # No end (the API's summary): up to the calendar's last month but one.
    assert plan(d(2025, 1, 1), d.max, d(2026, 1, 1))[0] == (d(2025, 1, 1), d(9999, 12, 1))
    # Whole months: nothing else.
    assert plan(d(2025, 1, 1), d(2025, 12, 31), d(2026, 1, 1)) == (
        (d(2025, 1, 1), d(2026, 1, 1)),
        (),
        (),
    )


@pytest.mark.django_db
def test_retention_leaves_the_months(acme):
    a_year_of_reports(acme)
    months = month_rows(acme)
    models.RawInput.objects.update(received_at=datetime(2025, 1, 1, tzinfo=UTC))
    done = retention.prune_reports(now=datetime(2027, 6, 1, tzinfo=UTC))
    assert done["records"] > 0 and not models.AggregateRecord.objects.exists()
    assert month_rows(acme) == months
    rows = source_sums(acme.pk, "acme.example", date(2025, 1, 1), date(2025, 12, 31), SUMS)
    assert sum(r["messages"] for r in rows) == sum(v[0] for v in months.values())


def test_migration_0014_makes_the_months_of_the_days_stored_before(transactional_db, acme):
    migrate([("reports", "0013_sender_addresses_and_marks")])
    try:
        daily = models.DailyRollup._meta.db_table
        with connection.cursor() as cursor:
            for day, ip, messages in [
                ("2025-03-01", "192.0.2.1", 5),
                ("2025-03-31", "192.0.2.1", 7),
                ("2025-04-01", "192.0.2.1", 11),
                ("2025-03-15", "2001:db8::25", 2),
            ]:
                cursor.execute(
                    f"INSERT INTO {daily} (organization_id, domain, day, source_ip, messages, "  # noqa: S608
                    "disposition_none, disposition_quarantine, disposition_reject, dmarc_pass, "
                    "dkim_pass, spf_pass) VALUES (%s, %s, %s, %s, %s, %s, 0, 0, %s, %s, 0)",
                    [acme.pk, "acme.example", day, ip, messages, messages, messages, messages],
                )
    finally:
        migrate([("reports", "0015_pending_senders")])
    assert month_rows(acme) == {
        (date(2025, 3, 1), "192.0.2.1"): (12, 12, 12, 0, 12, 0, 0),
        (date(2025, 4, 1), "192.0.2.1"): (11, 11, 11, 0, 11, 0, 0),
        (date(2025, 3, 1), "2001:db8::25"): (2, 2, 2, 0, 2, 0, 0),
    }
