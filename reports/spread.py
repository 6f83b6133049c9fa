"""Which UTC days a report's messages count on, and the statement that adds them to rollups.

A report covers a period (begin to end, the end excluded); most cover one UTC day, some two
(a day from 22:13 to 22:13) or a week. Its messages are spread over the days the period covers,
in proportion to the seconds it spends in each, so that a weekly report does not make a spike
on the day it begins. Counts stay integers and are conserved exactly: a day's share of n
messages is floor(n * covered_until_its_end / total) - floor(n * covered_until_its_start /
total), which adds up to n over the days whatever n is, and gives the same answer every time.

Shares are taken per group of records with the same source, disposition and DKIM/SPF results,
so every day's counts stay consistent (DMARC passes never outnumber the messages of that day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# A period longer than this is no real reporting period (RFC 7489 asks for a day, some send a
# week): such a report counts on the day it begins, as it would with no spreading at all.
MAX_SPREAD_DAYS = 31


@dataclass(frozen=True)
class DayShare:
    day: date
    before: int  # seconds of the period covered before this day
    through: int  # ... and up to the end of this day


def covered_days(begin: datetime, end: datetime) -> list[DayShare]:
    """The UTC days of [begin, end), each with the cumulative seconds the period covers."""
    begin, end = begin.astimezone(UTC), end.astimezone(UTC)
    first = begin.date()
    if end <= begin or (end - timedelta(microseconds=1)).date() == first:
        return [DayShare(first, 0, 1)]
    last = (end - timedelta(microseconds=1)).date()
    if (last - first).days + 1 > MAX_SPREAD_DAYS:
        return [DayShare(first, 0, 1)]
    shares, covered, day = [], 0, first
    while day <= last:
        start = max(begin, datetime(day.year, day.month, day.day, tzinfo=UTC))
        stop = min(end, datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1))
        seconds = max(1, round((stop - start).total_seconds()))
        shares.append(DayShare(day, covered, covered + seconds))
        covered += seconds
        day += timedelta(days=1)
    return shares


def split(count: int, days: list[DayShare]) -> list[int]:
    """What the statement computes, in Python: `count` spread over `days` (for tests)."""
    total = days[-1].through
    return [count * d.through // total - count * d.before // total for d in days]


# The rollup columns and how each sums a day's shares.
_COUNTED = "SUM(CASE WHEN {} THEN share ELSE 0 END)"
COLUMNS = {
    "messages": "SUM(share)",
    "disposition_none": _COUNTED.format("disposition = 'none'"),
    "disposition_quarantine": _COUNTED.format("disposition = 'quarantine'"),
    "disposition_reject": _COUNTED.format("disposition = 'reject'"),
    "dmarc_pass": _COUNTED.format("dkim = 'pass' OR spf = 'pass'"),
    "dkim_pass": _COUNTED.format("dkim = 'pass'"),
    "spf_pass": _COUNTED.format("spf = 'pass'"),
}


def rollup_statement(
    organization_id: int,
    domain: str,
    report_pk: int,
    days: list[DayShare],
    *,
    sign: int = 1,
    per_source: bool = True,
    monthly: bool = False,
) -> tuple[str, list]:
    """SQL and parameters adding a stored report's records to its team's rollups: INSERT ...
    SELECT ... ON CONFLICT, the same on SQLite and PostgreSQL, so the records never leave the
    database. `per_source` False adds them to the day's totals (DailyTotal) instead of the
    day's rows per source (DailyRollup); `monthly` adds them to the month's rows per source
    (MonthlyRollup: each day's share counts on its month's first day); `sign` -1 takes them
    away again (re-spreading rollups made before spreading)."""
    from reports.models import AggregateRecord, DailyRollup, DailyTotal, MonthlyRollup

    if monthly:
        rollup, period = MonthlyRollup._meta.db_table, "month"
        days = [DayShare(d.day.replace(day=1), d.before, d.through) for d in days]
    else:
        rollup, period = (DailyRollup if per_source else DailyTotal)._meta.db_table, "day"
    record = AggregateRecord._meta.db_table
    source, key = ("source_ip, ", ", source_ip") if per_source or monthly else ("", "")
    total = days[-1].through
    names = ", ".join(COLUMNS)
    sums = ", ".join(COLUMNS.values())
    updates = ", ".join(f"{c} = {rollup}.{c} + excluded.{c}" for c in COLUMNS)
    if len(days) == 1:
        # One day (most reports): no arithmetic per group, the day is a parameter.
        spread, spread_params = "%s AS day, n * %s AS share", [days[0].day, sign]
        joined, joined_params = "", []
    else:
        spread = "d.day AS day, %s * ((n * d.hi) / %s - (n * d.lo) / %s) AS share"
        spread_params = [sign, total, total]
        each = "SELECT %s AS day, %s AS lo, %s AS hi"
        joined = f" CROSS JOIN ({' UNION ALL '.join([each] * len(days))}) d"
        joined_params = [value for d in days for value in (d.day, d.before, d.through)]
    sql = (
        f"INSERT INTO {rollup} (organization_id, domain, {period}, {source}{names}) "  # noqa: S608
        f"SELECT %s, %s, day, {source}{sums} FROM ("
        f"SELECT {source}disposition, dkim, spf, {spread} FROM ("
        f"SELECT {source}disposition, dkim, spf, CAST(SUM(count) AS BIGINT) AS n "
        f"FROM {record} WHERE report_id = %s GROUP BY {source}disposition, dkim, spf"
        f") g{joined}) s WHERE share <> 0 GROUP BY day{key} "
        f"ON CONFLICT (organization_id, domain, {period}{key}) DO UPDATE SET {updates}"
    )
    return sql, [organization_id, domain, *spread_params, report_pk, *joined_params]
