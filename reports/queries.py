"""What the report pages show, each loaded in a bounded number of queries however many reports,
records and rollup rows there are.

A team sees the reports it received (reports.models: never those of another team, whatever
domains it adds); a staff user also sees the reports nobody has claimed ("unclaimed"). Totals
come from DailyRollup only, never from the records, so a domain's page stays fast with
millions of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from domains.models import Domain, Organization
from domains.names import DomainNameError, display_domain, normalize_domain, unicode_domain
from reports import analytics, charts, filters
from reports.filters import Filters
from reports.ingest import Outcome
from reports.models import (
    AggregateReport,
    DailyRollup,
    DailyTotal,
    FailureReport,
    InputStatus,
    RawInput,
    TlsPolicy,
    TlsReport,
)
from reports.ranges import PRESETS, DateRange, parse_range

PER_PAGE = 50
RECORDS_PER_PAGE = 200
UNCLAIMED_PER_PAGE = 100
SUMMARY_DAYS = 30
TOP_SOURCES = 10
MAX_REPORTERS = 500  # reporters offered by the index's filter
# Past this many domains the index's domain filter is a box to type the name in, not a list
# (a list of 10,000 names was half a megabyte and most of the page's time).
MAX_DOMAIN_OPTIONS = 200
RECENT = 20  # TLS and failure reports shown on a domain's page (the index lists them all)


def percent(part: int | None, whole: int | None) -> float | None:
    return 100.0 * (part or 0) / whole if whole else None


def page_url(params, number: int) -> str:
    """The current query string with another page number."""
    query = params.copy()
    query["page"] = str(number)
    return "?" + query.urlencode()


@dataclass
class Pager:
    page: Page
    params: object  # the request's QueryDict

    @property
    def previous_url(self) -> str:
        return page_url(self.params, self.page.previous_page_number())

    @property
    def next_url(self) -> str:
        return page_url(self.params, self.page.next_page_number())


def paginate(queryset, params, per_page: int) -> Pager:
    return Pager(Paginator(queryset, per_page).get_page(params.get("page")), params)


# --- who sees what --------------------------------------------------------------------------


def _about(model, names) -> Q:
    """Reports about these domain names. A TLS report names a domain per policy: it is about
    each of them, not only the first (kept in TlsReport.domain)."""
    about = Q(domain__in=names)
    if model is TlsReport:
        policies = TlsPolicy.objects.filter(report=OuterRef("pk"), policy_domain__in=names)
        about |= Exists(policies)
    return about


def visible_aggregates(user) -> QuerySet:
    """The aggregate reports `user` may open: those any of their teams received; staff all."""
    reports = AggregateReport.objects.all()
    if user.is_staff:
        return reports
    return reports.filter(organization__in=Organization.objects.for_user(user).values("pk"))


# --- the index ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One kind of report in the index: its model and the columns its table shows."""

    key: str
    label: str
    model: type
    columns: tuple[str, ...]


LISTINGS = {
    listing.key: listing
    for listing in [
        Listing(
            "aggregate",
            gettext_lazy("DMARC aggregate"),
            AggregateReport,
            (
                "org_name",
                "report_id",
                "domain",
                "begin",
                "end",
                "record_count",
                "message_count",
                "dmarc_pass",
            ),
        ),
        Listing(
            "tls",
            gettext_lazy("SMTP TLS"),
            TlsReport,
            ("org_name", "report_id", "domain", "begin", "end", "successful", "failed"),
        ),
        Listing(
            "failure",
            pgettext_lazy("report kind", "Failure"),
            FailureReport,
            (
                "org_name",
                "domain",
                "arrival_date",
                "source_ip",
                "auth_failure",
                "feedback_type",
                "original_mail_from",
            ),
        ),
    ]
}


@dataclass
class IndexQuery:
    """The index's parameters, read leniently: an unknown kind or domain is ignored; the
    filters and sort are reports/filters.py's."""

    kind: str = "aggregate"
    domain: str = ""
    page: str = "1"
    filters: Filters = field(default_factory=Filters)

    @classmethod
    def from_params(cls, params, names, today: date | None = None) -> IndexQuery:
        """`names`: the team's domains (a container: `name in names`)."""
        kind = params.get("kind", "")
        domain = params.get("domain", "").strip().lower()
        if domain:  # as stored: the search box takes the Unicode form too
            with contextlib.suppress(DomainNameError):
                domain = normalize_domain(domain)
        return cls(
            kind=kind if kind in LISTINGS else "aggregate",
            domain=domain if domain and domain in names else "",
            page=params.get("page", "1"),
            filters=Filters.from_params(params, today or date.today()),
        )

    def url(self, **changes) -> str:
        values = {"kind": self.kind, "domain": self.domain, **self.filters.query(), "page": ""}
        values.update(changes)
        if values["kind"] == "aggregate":
            values["kind"] = ""
        query = urlencode({k: v for k, v in values.items() if v not in ("", None, 1, "1")})
        return f"?{query}" if query else "?"

    @property
    def domain_label(self) -> str:
        """The domain chosen as the search box shows it (its Unicode form, which it takes)."""
        return unicode_domain(self.domain) if self.domain else ""

    @property
    def all_domains_url(self) -> str:
        return self.url(domain="")

    @property
    def export_query(self) -> str:
        """The filters as the export's query string (the export is of aggregate records)."""
        return self.url(kind="aggregate")[1:]


@dataclass
class ReportRow:
    report: AggregateReport | TlsReport | FailureReport
    domain_pk: int | None  # the team's Domain of that name, for a link to its reports page

    @property
    def domain_label(self) -> str:
        return display_domain(self.report.domain)

    @property
    def pass_rate(self) -> float | None:
        return percent(self.report.dmarc_pass, self.report.message_count)


@dataclass
class DomainOption:
    name: str
    label: str
    selected: bool


@dataclass
class Tab:
    key: str
    label: str
    url: str
    current: bool


@dataclass
class IndexPage:
    query: IndexQuery
    tabs: list[Tab]
    domains: list[DomainOption]  # empty when the team has more than MAX_DOMAIN_OPTIONS:
    search_domains: bool  # then the filter is a box to type a name in
    has_domains: bool
    reporters: list[str]
    page: Page
    rows: list[ReportRow]

    presets = PRESETS
    results = list(filters.RESULTS.items())
    sorts = [(key, label) for key, (label, _) in filters.SORTS.items()]

    @property
    def previous_url(self) -> str:
        return self.query.url(page=self.page.previous_page_number())

    @property
    def next_url(self) -> str:
        return self.query.url(page=self.page.next_page_number())


@dataclass(frozen=True)
class TeamNames:
    """`name in TeamNames(domains)`: one query, for a team with too many names to load."""

    domains: QuerySet

    def __contains__(self, name: str) -> bool:
        return self.domains.filter(name=name).exists()


def team_reports(organization: Organization, query: IndexQuery) -> QuerySet:
    """The team's reports of the query's kind, domain and filters, sorted."""
    model = LISTINGS[query.kind].model
    reports = model.objects.filter(organization=organization)
    if query.domain:
        reports = reports.filter(_about(model, [query.domain]))
    return query.filters.apply(reports, model)


def index_page(organization: Organization, params, today: date | None = None) -> IndexPage:
    """The reports of one kind the team received, newest first unless sorted otherwise,
    narrowed by domain and the filters of reports/filters.py."""
    team_domains = Domain.objects.filter(organization=organization)
    known = dict(team_domains.order_by("name").values_list("name", "pk")[: MAX_DOMAIN_OPTIONS + 1])
    names = sorted(known)
    few = len(names) <= MAX_DOMAIN_OPTIONS
    query = IndexQuery.from_params(params, set(names) if few else TeamNames(team_domains), today)
    listing = LISTINGS[query.kind]
    reports = team_reports(organization, query).only(*listing.columns)
    # The reporters offered: those of the domain chosen, else of all the team's reports.
    reporters = listing.model.objects.filter(organization=organization)
    if query.domain:
        reporters = reporters.filter(_about(listing.model, [query.domain]))
    reporters = (
        reporters.exclude(org_name="")
        .order_by("org_name")
        .values_list("org_name", flat=True)
        .distinct()[:MAX_REPORTERS]
    )
    page = Paginator(reports, PER_PAGE).get_page(query.page)
    pks = known
    if not few:  # the domains of the page's rows only
        shown = {report.domain for report in page.object_list}
        pks = dict(team_domains.filter(name__in=shown).values_list("name", "pk")) if shown else {}
    return IndexPage(
        query=query,
        tabs=[
            Tab(key, item.label, query.url(kind=key), key == query.kind)
            for key, item in LISTINGS.items()
        ],
        domains=[DomainOption(name, display_domain(name), name == query.domain) for name in names]
        if few
        else [],
        search_domains=not few,
        has_domains=bool(names),
        reporters=list(reporters),
        page=page,
        rows=[ReportRow(report, pks.get(report.domain)) for report in page.object_list],
    )


# --- one aggregate report -------------------------------------------------------------------


@dataclass
class AggregatePage:
    report: AggregateReport
    records: Pager
    domain_pk: int | None
    pass_rate: float | None = field(init=False)

    def __post_init__(self):
        self.pass_rate = percent(self.report.dmarc_pass, self.report.message_count)

    @property
    def domain_label(self) -> str:
        return display_domain(self.report.domain)


def aggregate_page(report: AggregateReport, user, params) -> AggregatePage:
    records = report.records.order_by("-count", "pk")
    own = Domain.objects.visible_to(user).filter(
        organization=report.organization_id, name=report.domain
    )
    return AggregatePage(
        report=report,
        records=paginate(records, params, RECORDS_PER_PAGE),
        domain_pk=own.values_list("pk", flat=True).first(),
    )


# --- one domain's reports -------------------------------------------------------------------


@dataclass
class Summary:
    """Totals of the domain's rollups over the last SUMMARY_DAYS days."""

    messages: int = 0
    dmarc_pass: int = 0
    dkim_pass: int = 0
    spf_pass: int = 0
    quarantined: int = 0
    rejected: int = 0
    sources: int = 0

    @property
    def dmarc_rate(self) -> float | None:
        return percent(self.dmarc_pass, self.messages)

    @property
    def dkim_rate(self) -> float | None:
        return percent(self.dkim_pass, self.messages)

    @property
    def spf_rate(self) -> float | None:
        return percent(self.spf_pass, self.messages)


@dataclass
class SourceRow:
    source_ip: str
    messages: int
    passed: int

    @property
    def pass_rate(self) -> float | None:
        return percent(self.passed, self.messages)


@dataclass
class DomainReportsPage:
    domain: Domain
    range: DateRange
    range_error: str | None
    range_query: str  # the range as query parameters, for the downloads' links
    chart: SafeString  # messages per day by result, and the pass rate (reports/charts.py)
    summary: Summary
    top_sources: list[SourceRow]
    reports: Pager
    report_rows: list[ReportRow]
    tls: list[ReportRow]
    tls_more: bool
    failures: list[ReportRow]
    failures_more: bool


def _zero(expression):
    return Coalesce(expression, 0)


def summary_of(
    organization, name: str, since: date, until: date | None = None
) -> tuple[Summary, list[SourceRow]]:
    """The team's totals (DailyTotal: a row a day) and its sources (the per-source rollups,
    whole months and edge days: analytics.summed_sources): one query gives both the number of
    sources and the busiest, ranked by the database."""
    days = Q(organization=organization, domain=name, day__gte=since)
    if until is not None:
        days &= Q(day__lte=until)
    totals = DailyTotal.objects.filter(days).aggregate(
        messages=_zero(Sum("messages")),
        dmarc_pass=_zero(Sum("dmarc_pass")),
        dkim_pass=_zero(Sum("dkim_pass")),
        spf_pass=_zero(Sum("spf_pass")),
        quarantined=_zero(Sum("disposition_quarantine")),
        rejected=_zero(Sum("disposition_reject")),
    )
    # The busiest sources and how many there are, counted and ranked by the database (a
    # window count over the grouped rows): ten rows come back, however many addresses sent.
    sql, params = analytics.summed_sources(
        organization, name, since, until or date.max, {"total": "messages", "passed": "dmarc_pass"}
    )
    ranked = (
        f'SELECT s."source_ip", s."total", s."passed", COUNT(*) OVER () FROM ({sql}) s '  # noqa: S608  (Django's SQL, values as parameters)
        f'ORDER BY s."total" DESC, s."source_ip" LIMIT {TOP_SOURCES}'
    )
    with connection.cursor() as cursor:
        cursor.execute(ranked, params)
        rows = cursor.fetchall()
    busiest = [SourceRow(str(ip), total, passed) for ip, total, passed, _count in rows]
    sources = rows[0][3] if rows else 0
    return Summary(**totals, sources=sources), busiest


def _latest(queryset, limit: int = RECENT) -> tuple[list, bool]:
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit


def domain_reports_page(domain: Domain, now: datetime, params) -> DomainReportsPage:
    """The domain's reports over the range the parameters ask for (reports/ranges.py; by
    default the last 30 days): totals, busiest sources and the daily chart from rollups."""
    date_range, range_error = parse_range(params, now.date())
    team = domain.organization_id
    summary, sources = summary_of(team, domain.name, date_range.since, date_range.until)
    series = analytics.domain_series(team, domain.name, date_range)
    chart = charts.daily_volume(
        series,
        title=_("Messages per day of %(domain)s, %(range)s")
        % {"domain": domain.display_name, "range": date_range.label},
        chart_id="domain-volume",
    )
    # Ordered as index (organization, domain, -begin) is, so a page is an index range scan.
    reports = (
        AggregateReport.objects.filter(organization=team, domain=domain.name)
        .only(*LISTINGS["aggregate"].columns)
        .order_by("-begin", "-id")
    )
    pager = paginate(reports, params, PER_PAGE)
    tls, tls_more = _latest(
        TlsReport.objects.filter(_about(TlsReport, [domain.name]), organization=team).only(
            *LISTINGS["tls"].columns
        )
    )
    failures, failures_more = _latest(
        FailureReport.objects.filter(organization=team, domain=domain.name).only(
            *LISTINGS["failure"].columns
        )
    )
    return DomainReportsPage(
        domain=domain,
        range=date_range,
        range_error=range_error,
        range_query=urlencode(date_range.query()),
        chart=mark_safe(chart),  # noqa: S308  (reports/charts.py escapes every text it draws)
        summary=summary,
        top_sources=sources,
        reports=pager,
        report_rows=[ReportRow(report, domain.pk) for report in pager.page.object_list],
        tls=[ReportRow(report, domain.pk) for report in tls],
        tls_more=tls_more,
        failures=[ReportRow(report, domain.pk) for report in failures],
        failures_more=failures_more,
    )


# --- staff: refused inputs and unclaimed reports --------------------------------------------


def refused_inputs(params) -> Pager:
    inputs = (
        RawInput.objects.filter(status__in=[InputStatus.REFUSED, InputStatus.PARTIAL])
        .defer("content")
        .select_related("uploaded_by")
    )
    return paginate(inputs, params, PER_PAGE)


@dataclass
class UnclaimedRow:
    domain: str
    aggregate_reports: int = 0
    messages: int = 0
    latest_aggregate: int | None = None  # pk of the newest stored aggregate report
    tls_reports: int = 0
    failure_reports: int = 0
    latest_end: datetime | None = None

    @property
    def label(self) -> str:
        return display_domain(self.domain)

    @property
    def reports(self) -> int:
        return self.aggregate_reports + self.tls_reports + self.failure_reports


def _unclaimed(model) -> QuerySet:
    return model.objects.filter(organization__isnull=True).values("domain").order_by("domain")


def unclaimed(params) -> Pager:
    """Reports no team received, one row per policy domain, most reports first (one grouped
    query per kind)."""
    rows: dict[str, UnclaimedRow] = {}
    aggregates = _unclaimed(AggregateReport).annotate(
        n=Count("pk"), messages=Sum("message_count"), latest=Max("pk"), end=Max("end")
    )
    for item in aggregates:
        row = rows.setdefault(item["domain"], UnclaimedRow(item["domain"]))
        row.aggregate_reports, row.messages = item["n"], item["messages"] or 0
        row.latest_aggregate, row.latest_end = item["latest"], item["end"]
    for item in _unclaimed(TlsReport).annotate(n=Count("pk"), end=Max("end")):
        row = rows.setdefault(item["domain"], UnclaimedRow(item["domain"]))
        row.tls_reports = item["n"]
        if row.latest_end is None or item["end"] > row.latest_end:
            row.latest_end = item["end"]
    for item in _unclaimed(FailureReport).annotate(n=Count("pk")):
        rows.setdefault(item["domain"], UnclaimedRow(item["domain"])).failure_reports = item["n"]
    ordered = sorted(rows.values(), key=lambda r: (-r.reports, r.domain))
    return paginate(ordered, params, UNCLAIMED_PER_PAGE)


# --- an upload's results --------------------------------------------------------------------


@dataclass
class UploadRow:
    outcome: Outcome
    domain_pk: int | None  # the team's Domain of the report's name, if it monitors it

    @property
    def unmonitored(self) -> bool:
        stored = self.outcome.status in ("imported", "duplicate")
        return stored and bool(self.outcome.domain) and self.domain_pk is None

    @property
    def domain_label(self) -> str:
        return display_domain(self.outcome.domain or "")


def upload_rows(outcomes: list[Outcome], organization: Organization) -> list[UploadRow]:
    names = {o.domain for o in outcomes if o.domain}
    pks = dict(
        Domain.objects.filter(organization=organization, name__in=names).values_list("name", "pk")
    )
    return [UploadRow(o, pks.get(o.domain or "")) for o in outcomes]


# --- the headline on a domain's page --------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """The last SUMMARY_DAYS days of a domain's aggregate reports, in four numbers."""

    since: date
    messages: int = 0
    dmarc_pass: int = 0
    sources: int = 0
    failing_sources: int = 0  # sources with at least one message that failed DMARC

    @property
    def dmarc_rate(self) -> float | None:
        return percent(self.dmarc_pass, self.messages)


def domain_headline(domain: Domain, now: datetime) -> Headline:
    """The headline numbers of the domain's page, from its rollups: one aggregate query over
    the rollups of the reports the domain's team received (never another team's)."""
    since = now.date() - timedelta(days=SUMMARY_DAYS - 1)
    rollups = DailyRollup.objects.filter(
        organization=domain.organization_id, domain=domain.name, day__gte=since
    )
    failed = Q(messages__gt=F("dmarc_pass"))
    # Aliases unlike the field names: an aggregate named "messages" would hide the field from
    # the filter of the last one.
    totals = rollups.aggregate(
        total=_zero(Sum("messages")),
        passed=_zero(Sum("dmarc_pass")),
        ips=Count("source_ip", distinct=True),
        failing_ips=Count("source_ip", distinct=True, filter=failed),
    )
    return Headline(
        since=since,
        messages=totals["total"],
        dmarc_pass=totals["passed"],
        sources=totals["ips"],
        failing_sources=totals["failing_ips"],
    )
