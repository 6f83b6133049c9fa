"""The reports index's filters and sort, and the CSV export of the records they select.

Filters: a date range (reports/ranges.py; the day a report's period begins; none given: all
time), reporter, domain, result, and a search by source IP address, or by the PTR name or
sending service of a source address (reports/senders: what the enrichment stored).
Everything is read leniently: an unknown value is ignored, and the query string of a filtered
page is the export's.

The export streams: a StreamingHttpResponse over `.iterator()`, a chunk of records at a time,
so a million records never sit in memory.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy

from reports.models import (
    AggregateRecord,
    AggregateReport,
    FailureReport,
    SourceAddress,
    TlsReport,
)
from reports.ranges import DateRange, parse_range
from reports.senders.services import services

# The most base domains one search by service name looks for.
MAX_SERVICE_BASES = 2000

RESULTS = {
    "": gettext_lazy("Any result"),
    "pass": gettext_lazy("DMARC pass"),
    "fail": gettext_lazy("DMARC fail"),
    "quarantine": gettext_lazy("Quarantined"),
    "reject": gettext_lazy("Rejected"),
}
NEWEST = {
    AggregateReport: ["-begin", "-id"],
    TlsReport: ["-begin", "-id"],
    FailureReport: ["-arrival_date", "-id"],
}
SORTS = {
    # key: (label, ordering per model; a model without one is listed newest first)
    "newest": (gettext_lazy("Newest first"), NEWEST),
    "oldest": (
        gettext_lazy("Oldest first"),
        {AggregateReport: ["begin", "id"], TlsReport: ["begin", "id"],
         FailureReport: ["arrival_date", "id"]},
    ),
    "messages": (gettext_lazy("Most messages"), {AggregateReport: ["-message_count", "-id"]}),
    "failing": (
        gettext_lazy("Most failing"),
        {AggregateReport: [(F("message_count") - F("dmarc_pass")).desc(), "-id"],
         TlsReport: ["-failed", "-id"]},
    ),
    "reporter": (
        gettext_lazy("Reporter"),
        {model: ["org_name", *ordering] for model, ordering in NEWEST.items()},
    ),
}  # fmt: skip
DATE_FIELD = {AggregateReport: "begin", TlsReport: "begin", FailureReport: "arrival_date"}
EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class Filters:
    range: DateRange | None = None  # None: all time
    range_error: str | None = None
    reporter: str = ""
    result: str = ""
    ip: str = ""  # a valid address, normalised
    search: str = ""  # as typed
    sort: str = "newest"

    @classmethod
    def from_params(cls, params, today: date) -> Filters:
        date_range, error = None, None
        if any(params.get(key) for key in ("range", "since", "until")):
            date_range, error = parse_range(params, today)
        search = (params.get("q") or "").strip()[:100]
        try:
            ip = str(ipaddress.ip_address(search)) if search else ""
        except ValueError:
            ip = ""
        result, sort = params.get("result", ""), params.get("sort", "")
        return cls(
            range=date_range,
            range_error=error,
            reporter=(params.get("reporter") or "").strip()[:255],
            result=result if result in RESULTS else "",
            ip=ip,
            search=search,
            sort=sort if sort in SORTS else "newest",
        )

    def query(self) -> dict[str, str]:
        values = dict(self.range.query()) if self.range else {}
        values.update(reporter=self.reporter, result=self.result, q=self.search)
        if self.sort != "newest":
            values["sort"] = self.sort
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.range or self.reporter or self.result or self.search)

    @property
    def sender_search(self) -> str:
        """Text that is not an address: matched against PTR names and services."""
        return "" if self.ip else self.search

    def apply(self, reports: QuerySet, model) -> QuerySet:
        """`reports` (of `model`, already the team's) narrowed by the filters, sorted."""
        if self.range:
            start = datetime.combine(self.range.since, time(), tzinfo=UTC)
            end = datetime.combine(self.range.until + timedelta(days=1), time(), tzinfo=UTC)
            field = DATE_FIELD[model]
            reports = reports.filter(**{f"{field}__gte": start, f"{field}__lt": end})
        if self.reporter:
            reports = reports.filter(org_name=self.reporter)
        reports = _result(reports, model, self.result)
        reports = _search(reports, model, self)
        ordering = SORTS[self.sort][1].get(model) or NEWEST[model]
        return reports.order_by(*ordering)


def _result(reports: QuerySet, model, result: str) -> QuerySet:
    if not result:
        return reports
    if model is AggregateReport:
        if result == "pass":
            return reports.filter(dmarc_pass__gt=0)
        if result == "fail":
            return reports.filter(message_count__gt=F("dmarc_pass"))
        records = AggregateRecord.objects.filter(report=OuterRef("pk"), disposition=result)
        return reports.filter(Exists(records))
    if model is TlsReport:
        return reports.filter(failed__gt=0) if result != "pass" else reports.filter(failed=0)
    if result == "pass":
        return reports.none()  # a failure report is about a failure
    if result in ("quarantine", "reject"):
        return reports.filter(delivery_result__iexact=result)
    return reports


def _search(reports: QuerySet, model, filters: Filters) -> QuerySet:
    if not filters.search:
        return reports
    if not filters.ip:
        if model is TlsReport:  # TLS reports name receiving MTAs, not senders
            return reports.none()
        addresses = addresses_named(filters.sender_search)
        if model is FailureReport:
            return reports.filter(source_ip__in=addresses)
        sent = AggregateRecord.objects.filter(report=OuterRef("pk"), source_ip__in=addresses)
        return reports.filter(Exists(sent))
    if model is FailureReport:
        return reports.filter(source_ip=filters.ip)
    if model is TlsReport:
        return reports.filter(Q(policies__failure_details__icontains=f'"{filters.ip}"')).distinct()
    # Through the records' index on their report: each candidate report (already narrowed
    # by the other filters) is looked into, not the whole table.
    sent = AggregateRecord.objects.filter(report=OuterRef("pk"), source_ip=filters.ip)
    return reports.filter(Exists(sent))


def addresses_named(text: str) -> QuerySet:
    """The source addresses (a subquery of SourceAddress.ip) whose PTR name contains `text`,
    or whose forward-confirmed name belongs to a service whose name contains it: as for the
    grouping, an unconfirmed "google.com" PTR record does not make an address Google's."""
    needle = text.strip().lower()
    bases = sorted(b for b, found in services().items() if needle in found.name.lower())
    named = Q(ptr__icontains=needle)
    if bases:
        # A short needle may name many services: the IN list stays bounded (SQLite's limit).
        named |= Q(fcrdns=True, base_domain__in=bases[:MAX_SERVICE_BASES])
    return SourceAddress.objects.filter(named).values("ip")


# --- the export -------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "report_org", "report_id", "domain", "begin", "end", "source_ip", "count", "disposition",
    "dkim", "spf", "header_from", "envelope_from", "envelope_to", "reasons", "dkim_results",
    "spf_results",
)  # fmt: skip
_RECORD_FIELDS = (
    "report__org_name", "report__report_id", "report__domain", "report__begin", "report__end",
    "source_ip", "count", "disposition", "dkim", "spf", "header_from", "envelope_from",
    "envelope_to", "reasons", "dkim_results", "spf_results",
)  # fmt: skip


def export_records(reports: QuerySet, filters: Filters) -> QuerySet:
    """The records of the selected aggregate reports that the record-level filters keep."""
    records = AggregateRecord.objects.filter(report__in=reports.order_by().values("pk"))
    if filters.ip:
        records = records.filter(source_ip=filters.ip)
    if filters.result == "pass":
        records = records.filter(Q(dkim="pass") | Q(spf="pass"))
    elif filters.result == "fail":
        records = records.exclude(Q(dkim="pass") | Q(spf="pass"))
    elif filters.result:
        records = records.filter(disposition=filters.result)
    return records.order_by("report_id", "pk").values_list(*_RECORD_FIELDS)


class _Echo:
    """A file-like object whose write returns what it is given (Django's streaming CSV way)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(records: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(EXPORT_COLUMNS)
    for row in records.iterator(chunk_size=EXPORT_CHUNK):
        yield writer.writerow(
            [
                json.dumps(v) if isinstance(v, list | dict) else
                v.isoformat() if isinstance(v, datetime) else v
                for v in row
            ]
        )  # fmt: skip
