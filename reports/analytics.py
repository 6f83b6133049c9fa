"""Report analytics over time: daily series read from the rollups, never from the records.

A series is one row per UTC day of a DateRange (reports/ranges.py), days without reports
included as zeros, so a chart's x-axis and a CSV download have every day. Each query filters by
the team (the totals of the reports it received) and reads DailyTotal, one row per domain and
day: its cost grows with the days of the range, not with the records or sources stored.

The four results a day's messages are stacked by add up to its messages exactly:
quarantined and rejected are the dispositions the receivers applied (to a passing message too,
when a receiver's local policy says so); of the rest, the DMARC passes, then the failures
delivered anyway (disposition none).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from domains.models import Domain
from reports.models import DailyRollup, DailyTotal, MonthlyRollup, TlsPolicy, TlsReport
from reports.ranges import DateRange


def _sum(field: str):
    return Coalesce(Sum(field), 0)


@dataclass(frozen=True)
class Day:
    """A day's messages, by result; `dmarc_pass` as reported, the stack from `results()`."""

    day: date
    messages: int = 0
    dmarc_pass: int = 0
    quarantined: int = 0
    rejected: int = 0

    @property
    def passed(self) -> int:
        return min(self.dmarc_pass, self.messages - self.quarantined - self.rejected)

    @property
    def fail_none(self) -> int:
        return self.messages - self.quarantined - self.rejected - self.passed

    @property
    def pass_rate(self) -> float | None:
        return 100.0 * self.dmarc_pass / self.messages if self.messages else None

    def results(self) -> tuple[int, int, int, int]:
        """The stack, bottom up: pass, fail delivered, quarantined, rejected."""
        return self.passed, self.fail_none, self.quarantined, self.rejected


RESULTS = (
    ("passed", "DMARC pass"),
    ("fail_none", "Failed, delivered (none)"),
    ("quarantined", "Quarantined"),
    ("rejected", "Rejected"),
)


@dataclass(frozen=True)
class Series:
    range: DateRange
    days: list[Day]

    @property
    def messages(self) -> int:
        return sum(d.messages for d in self.days)

    @property
    def dmarc_pass(self) -> int:
        return sum(d.dmarc_pass for d in self.days)

    @property
    def pass_rate(self) -> float | None:
        return 100.0 * self.dmarc_pass / self.messages if self.messages else None

    def rows(self) -> list[dict]:
        """One dict per day: what the CSV and JSON downloads hold."""
        return [
            {
                "day": d.day.isoformat(),
                "messages": d.messages,
                "dmarc_pass": d.dmarc_pass,
                # The chart's stack, bottom up; it adds up to the messages.
                "pass_delivered": d.passed,
                "fail_none": d.fail_none,
                "quarantined": d.quarantined,
                "rejected": d.rejected,
                "pass_rate": None if d.pass_rate is None else round(d.pass_rate, 2),
            }
            for d in self.days
        ]


def series_of(rows, date_range: DateRange) -> Series:
    """Rows of (day, messages, dmarc_pass, quarantined, rejected), any order, zero-filled."""
    found = {row[0]: Day(*row) for row in rows if row[0] in date_range}
    return Series(date_range, [found.get(day) or Day(day) for day in date_range.each_day()])


def _totals(organization, date_range: DateRange) -> QuerySet:
    """The team's day totals in the range (index daily_total_identity: team, domain, day)."""
    return DailyTotal.objects.filter(
        organization=organization, day__gte=date_range.since, day__lte=date_range.until
    )


def _daily(rollups: QuerySet, date_range: DateRange) -> Series:
    rows = (
        rollups.values("day")
        .annotate(
            m=_sum("messages"),
            p=_sum("dmarc_pass"),
            q=_sum("disposition_quarantine"),
            r=_sum("disposition_reject"),
        )
        .order_by("day")
        .values_list("day", "m", "p", "q", "r")
    )
    return series_of(rows, date_range)


def domain_series(organization, name: str, date_range: DateRange) -> Series:
    """One domain's messages per day, from the reports its team received: one query."""
    return _daily(_totals(organization, date_range).filter(domain=name), date_range)


def team_series(organization, date_range: DateRange) -> Series:
    """Every domain the team monitors, day by day: one query."""
    names = Domain.objects.filter(organization=organization).values("name")
    return _daily(_totals(organization, date_range).filter(domain__in=names), date_range)


LAST_DAY = date(9999, 11, 30)


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@dataclass(frozen=True)
class RangePlan:
    """How to read a range of days from the per-source rollups: the months read whole
    (MonthlyRollup, `months` from its first day to its end, none when first >= end), plus
    the runs of days added and taken away (DailyRollup, inclusive)."""

    months: tuple[date, date]
    added: tuple[tuple[date, date], ...] = ()
    taken: tuple[tuple[date, date], ...] = ()


def range_plan(since: date, until: date, today: date) -> RangePlan:
    """The fewest rollup rows for since..until: the months between its first and its last read
    whole, and each of those two read whole less its days outside the range when they are
    fewer than its days inside, else by its days inside. Days after `today` are not counted
    as outside (they hold no mail yet: the current month is read whole less nothing), but
    still taken away should they hold some."""
    # "No end" (date.max) ends before the calendar's last month, whose end the month
    # arithmetic below would overflow: no report is dated that late.
    until = min(until, LAST_DAY)
    first_month, last_month = since.replace(day=1), until.replace(day=1)
    added, taken = [], []

    def whole(month: date) -> bool:
        end = _month_end(month)
        inside_first, inside_last = max(since, month), min(until, end)
        inside = (inside_last - inside_first).days + 1
        outside = (inside_first - month).days + max(0, (min(end, today) - inside_last).days)
        if outside >= inside:
            added.append((inside_first, inside_last))
            return False
        if month < inside_first:
            taken.append((month, inside_first - timedelta(days=1)))
        if inside_last < end:
            taken.append((inside_last + timedelta(days=1), end))
        return True

    after_first = _month_end(first_month) + timedelta(days=1)
    lo = first_month if whole(first_month) else after_first
    if last_month == first_month:
        hi = after_first if lo == first_month else lo
    else:
        hi = _month_end(last_month) + timedelta(days=1) if whole(last_month) else last_month
    return RangePlan((lo, hi), tuple(added), tuple(taken))


# The columns of source_parts() are named apart from the rollups' own (`messages`...): Django
# will not give an expression a model field's name.
PART_PREFIX = "part_"


def source_parts(
    organization,
    name: str,
    since: date,
    until: date,
    sums: dict,
    today: date | None = None,
    only: Q | None = None,
) -> QuerySet:
    """The rollup rows giving, added up per source address, the `sums` (name: rollup column,
    "messages" among them) of a policy domain's messages over since..until (range_plan(): a
    year is a row per source and month, and a few days' rows at its start), UNION ALL, each
    row a source address and its columns as `PART_PREFIX + name`, the rows of days taken
    away negated. Each part is a run of days or months read by the rollup's identity index
    (SQLite reads an OR of two runs in a UNION ALL as all the domain's days). The rows are not
    summed per part: one GROUP BY over their union (by summed_sources) is half the time of
    summing each part and then the sums (PostgreSQL sums bigint as numeric, and adding
    numerics up again is slow). `only`: a condition on the source addresses, for each part."""
    plan = range_plan(since, until, today or timezone.now().date())
    days = DailyRollup.objects.filter(organization=organization, domain=name)
    months = MonthlyRollup.objects.filter(organization=organization, domain=name)
    if only is not None:
        days, months = days.filter(only), months.filter(only)

    def signed(rows, negated: bool = False):
        columns = {PART_PREFIX + key: -F(c) if negated else F(c) for key, c in sums.items()}
        return rows.values("source_ip", **columns).order_by()

    parts = [signed(days.filter(day__gte=a, day__lte=b)) for a, b in plan.added]
    parts += [signed(days.filter(day__gte=a, day__lte=b), negated=True) for a, b in plan.taken]
    first, end = plan.months
    if first < end:
        parts.append(signed(months.filter(month__gte=first, month__lt=end)))
    return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]


def summed_sources(
    organization,
    name: str,
    since: date,
    until: date,
    sums: dict,
    today: date | None = None,
    only: Q | None = None,
):
    """SQL and its parameters selecting one row per source address that sent in the range:
    `source_ip` and each of `sums` added up over source_parts() by the database (a range of
    thousands of addresses never comes to Python whole). For a caller to wrap: order, limit,
    join."""
    parts = source_parts(organization, name, since, until, sums, today, only)
    sql, params = parts.query.sql_with_params()
    messages = next(key for key, column in sums.items() if column == "messages")
    q = connection.ops.quote_name
    # CAST: PostgreSQL sums bigint columns as numeric (Decimal in Python).
    added = ", ".join(f"CAST(SUM(u.{q(PART_PREFIX + key)}) AS BIGINT) AS {q(key)}" for key in sums)
    # Only the code's own names and Django's compiled SQL are put together here; every value
    # is a parameter.
    return (
        f'SELECT u."source_ip" AS "source_ip", {added} FROM ({sql}) u '  # noqa: S608
        f'GROUP BY u."source_ip" HAVING SUM(u.{q(PART_PREFIX + messages)}) <> 0',
        params,
    )


@dataclass(frozen=True)
class DomainTotal:
    domain: Domain
    messages: int
    dmarc_pass: int
    quarantined: int
    rejected: int

    @property
    def pass_rate(self) -> float | None:
        return 100.0 * self.dmarc_pass / self.messages if self.messages else None


def team_domains(organization, date_range: DateRange) -> list[DomainTotal]:
    """Each of the team's domains with its totals over the range, busiest first: two queries."""
    domains = {d.name: d for d in Domain.objects.filter(organization=organization)}
    totals = (
        _totals(organization, date_range)
        .filter(domain__in=list(domains))
        .values("domain")
        .annotate(
            m=_sum("messages"),
            p=_sum("dmarc_pass"),
            q=_sum("disposition_quarantine"),
            r=_sum("disposition_reject"),
        )
        .values_list("domain", "m", "p", "q", "r")
    )
    found = {name: (m, p, q, r) for name, m, p, q, r in totals}
    rows = [DomainTotal(d, *found.get(name, (0, 0, 0, 0))) for name, d in domains.items()]
    return sorted(rows, key=lambda row: (-row.messages, row.domain.name))


# --- downloads --------------------------------------------------------------------------------


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def as_json(about: dict, date_range: DateRange, rows: list[dict]) -> str:
    return json.dumps(
        {
            **about,
            "since": date_range.since.isoformat(),
            "until": date_range.until.isoformat(),
            "days": rows,
        },
        indent=1,
    )


# --- SMTP TLS reports over time ---------------------------------------------------------------


@dataclass(frozen=True)
class TlsDay:
    day: date
    successful: int = 0
    failed: int = 0


@dataclass
class TlsAnalytics:
    """The TLS reports about one policy domain in a range: sessions per day (of the report's
    begin), per MX, failure types, receiving MTAs and reporters."""

    range: DateRange
    days: list[TlsDay]
    by_mx: list[tuple[str, int, int]]  # mx host, successful, failed
    failure_types: list[tuple[str, int]]  # result type, sessions
    receiving_mtas: list[tuple[str, str, int]]  # receiving MX host, its IP, failed sessions
    reporters: list[tuple[str, int, int, int]]  # org, reports, successful, failed

    @property
    def successful(self) -> int:
        return sum(d.successful for d in self.days)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.days)

    def rows(self) -> list[dict]:
        return [
            {"day": d.day.isoformat(), "successful": d.successful, "failed": d.failed}
            for d in self.days
        ]


# The policies read for one page: a TLS report has a policy or two per domain, a domain a few
# reports a day, so a year is a few thousand; past this the oldest are left out of the tables.
MAX_TLS_POLICIES = 20000


def tls_analytics(organization, name: str, date_range: DateRange) -> TlsAnalytics:
    """One query: the policies about `name` in the range, with their report's begin and
    reporter; TLS reports are few, their details are summed here."""
    policies = (
        TlsPolicy.objects.filter(
            report__organization=organization,
            policy_domain=name,
            report__begin__gte=date_range.start,
            report__begin__lt=date_range.end,
        )
        .order_by("-report__begin")
        .values_list(
            "report_id",
            "report__begin",
            "report__org_name",
            "mx_hosts",
            "successful",
            "failed",
            "failure_details",
        )[:MAX_TLS_POLICIES]
    )
    days: dict[date, list[int]] = {}
    by_mx: dict[str, list[int]] = {}
    types: dict[str, int] = {}
    mtas: dict[tuple[str, str], int] = {}
    reporters: dict[str, list] = {}
    for report_pk, begin, org, mx_hosts, ok, failed, details in policies:
        day = days.setdefault(begin.date(), [0, 0])
        day[0] += ok
        day[1] += failed
        for mx in mx_hosts or ["(no MX named)"]:
            row = by_mx.setdefault(str(mx), [0, 0])
            row[0] += ok
            row[1] += failed
        for detail in details or []:
            n = int(detail.get("failed-session-count") or 0)
            kind = str(detail.get("result-type") or "unknown")
            types[kind] = types.get(kind, 0) + n
            host = str(detail.get("receiving-mx-hostname") or "")
            ip = str(detail.get("receiving-ip") or "")
            if host or ip:
                mtas[host, ip] = mtas.get((host, ip), 0) + n
        reporter = reporters.setdefault(org, [set(), 0, 0])
        reporter[0].add(report_pk)
        reporter[1] += ok
        reporter[2] += failed
    return TlsAnalytics(
        range=date_range,
        days=[TlsDay(d, *days.get(d, (0, 0))) for d in date_range.each_day()],
        by_mx=sorted(((mx, s, f) for mx, (s, f) in by_mx.items()), key=lambda r: (-r[2], r[0])),
        failure_types=sorted(types.items(), key=lambda r: (-r[1], r[0])),
        receiving_mtas=sorted(
            ((h, ip, n) for (h, ip), n in mtas.items()), key=lambda r: (-r[2], r[0], r[1])
        ),
        reporters=sorted(
            ((org, len(r[0]), r[1], r[2]) for org, r in reporters.items()),
            key=lambda r: (-r[1], r[0]),
        ),
    )


def tls_reports_about(organization, name: str) -> QuerySet:
    """The team's TLS reports with a policy about `name`. (A report's `domain` is its first
    policy's: a policy about `name` is the one test. Asking for either, an OR of a column
    and a subquery, made PostgreSQL scan all the team's TLS reports.)"""
    policies = TlsPolicy.objects.filter(policy_domain=name).values("report_id")
    return TlsReport.objects.filter(organization=organization, pk__in=policies)


@dataclass(frozen=True)
class TlsFailure:
    """One failure-details entry of a TLS report's policy (RFC 8460, 4.3)."""

    result_type: str
    sending_mta: str
    receiving_mx: str
    receiving_ip: str
    sessions: int
    detail: str

    @classmethod
    def of(cls, entry: dict) -> TlsFailure:
        def text(key: str) -> str:
            return str(entry.get(key) or "")

        detail = " ".join(
            filter(None, [text("failure-reason-code"), text("additional-information")])
        )
        return cls(
            result_type=text("result-type") or "unknown",
            sending_mta=text("sending-mta-ip"),
            receiving_mx=text("receiving-mx-hostname"),
            receiving_ip=text("receiving-ip"),
            sessions=int(entry.get("failed-session-count") or 0),
            detail=detail,
        )


@dataclass(frozen=True)
class TlsPolicyView:
    policy: TlsPolicy
    domain_pk: int | None  # the team's Domain of the policy's name, for a link
    failures: list[TlsFailure]


def tls_policies(report: TlsReport, domain_pks: dict[str, int]) -> list[TlsPolicyView]:
    return [
        TlsPolicyView(
            policy,
            domain_pks.get(policy.policy_domain),
            [TlsFailure.of(e) for e in policy.failure_details or [] if isinstance(e, dict)],
        )
        for policy in report.policies.order_by("policy_domain", "pk")
    ]
