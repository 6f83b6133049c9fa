"""What the domain pages show, each loaded in a bounded number of queries, however many domains
and runs there are: the list with its portfolio summary, and one domain's page."""

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from redis.exceptions import RedisError

from domains import charts
from domains.checks import ORDER
from domains.checks.base import Severity
from domains.findings import CATALOGUE, localized
from domains.messages import reading_english
from domains.models import (
    CheckRun,
    Domain,
    DomainEvent,
    Finding,
    ManualCheck,
    Organization,
    RunStatus,
)
from domains.names import display_domain
from reports.queries import Headline, domain_headline

PER_PAGE = 100
TREND_DAYS = 7
HISTORY_DAYS = 90
TIMELINE_LENGTH = 50
COMMON_FINDINGS = 8
COMMON_FINDINGS_KEPT = 60  # seconds
PENDING_FOR = timedelta(minutes=30)  # a "check now" older than this is lost, not pending
GRADES = ["A+", "A", "B", "C", "D", "F"]
RESOLVER_BROKEN = "dns.resolver_broken"
NOT_CHECKED, UNSCORED = "none", "error"  # the grade filter's values beside the grades
CATEGORY_LABELS = {
    "mx": "MX",
    "spf": "SPF",
    "dmarc": "DMARC",
    "dkim": "DKIM",
    "mta_sts": "MTA-STS",
    "tls_rpt": "TLS-RPT",
    "dnssec": "DNSSEC",
    "dane": "DANE",
    "bimi": "BIMI",
    "smtp": gettext_lazy("SMTP (port 25)"),
    "submission": gettext_lazy("Submission"),
    "imap": "IMAP",
    "pop3": "POP3",
}
PROBE_CATEGORIES = ["smtp", "submission", "imap", "pop3"]
# The list's "certificate" filter: a probed certificate about to expire, or expired.
CERT_FILTERS = {
    "expiring": (
        gettext_lazy("Certificate expiring or expired"),
        [f"{c}.{k}" for c in PROBE_CATEGORIES for k in ("cert_expiring", "cert_expired")],
    ),
}
REACH_LABELS = {
    "ok": gettext_lazy("answers"),
    "refused": gettext_lazy("refused"),
    "timeout": gettext_lazy("no connection (timeout)"),
    "no_greeting": gettext_lazy("no greeting (timeout)"),
    "reset": gettext_lazy("connection reset"),
    "bad_greeting": gettext_lazy("unexpected greeting"),
    "refused_target": gettext_lazy("not probed (private address)"),
    "error": gettext_lazy("network error"),
    "tls_failed": gettext_lazy("TLS handshake failed"),
    "pending": gettext_lazy("not probed yet"),
}
STATUS_LABELS = {
    "pass": gettext_lazy("Pass"),
    "warn": gettext_lazy("Warning"),
    "fail": gettext_lazy("Fail"),
    "error": gettext_lazy("Could not test"),
    "info": gettext_lazy("Info"),
}
# Info findings say how a domain is set up, not what is wrong with it: they are no "open
# finding" of the summary or the worst-finding column.
PROBLEM = ~Q(severity=Severity.INFO)


def severity_rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return len(Severity)


def grade_class(grade: str) -> str:
    """The CSS class of a grade badge: A+ is no valid class name."""
    return {"A+": "aplus", "": "none"}.get(grade, grade.lower())


# --- the list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    key: str
    label: str
    ascending: tuple  # order_by() arguments
    descending: tuple
    starts_descending: bool = False  # the first click on the column


_checked = F("last_checked_at")
_trend = F("trend")
SORTS = {
    s.key: s
    for s in [
        Sort("name", gettext_lazy("Domain"), ("name",), ("-name",)),
        Sort(
            "score",
            gettext_lazy("Grade"),
            (F("score").asc(nulls_last=True), "name"),
            (F("score").desc(nulls_last=True), "name"),
        ),
        Sort(
            "checked",
            gettext_lazy("Last checked"),
            (_checked.asc(nulls_first=True), "name"),
            (_checked.desc(nulls_last=True), "name"),
            starts_descending=True,
        ),
        Sort(
            "trend",
            gettext_lazy("Trend"),
            (_trend.asc(nulls_last=True), "name"),
            (_trend.desc(nulls_last=True),),
        ),
    ]
}


@dataclass
class ListQuery:
    """The list's parameters, read leniently from the query string: a bad value is ignored."""

    sort: str = "name"
    descending: bool = False
    grade: str = ""
    q: str = ""
    finding: str = ""
    cert: str = ""
    page: str = "1"

    @classmethod
    def from_params(cls, params) -> "ListQuery":
        sort = params.get("sort", "")
        key = sort.removeprefix("-")
        grade = params.get("grade", "")
        finding = params.get("finding", "")
        return cls(
            sort=key if key in SORTS else "name",
            descending=key in SORTS and sort.startswith("-"),
            grade=grade if grade in [*GRADES, NOT_CHECKED, UNSCORED] else "",
            q=params.get("q", "").strip()[:253],
            finding=finding if finding in CATALOGUE else "",
            cert=params.get("cert", "") if params.get("cert", "") in CERT_FILTERS else "",
            page=params.get("page", "1"),
        )

    @property
    def sort_param(self) -> str:
        return ("-" if self.descending else "") + self.sort

    def url(self, **changes) -> str:
        """The list's URL with these parameters changed (a new filter or sort: page one)."""
        values = {
            "q": self.q,
            "grade": self.grade,
            "finding": self.finding,
            "cert": self.cert,
            "sort": "" if self.sort_param == "name" else self.sort_param,
            "page": "",
        }
        values.update(changes)
        if values["sort"] == "name":
            values["sort"] = ""
        query = urlencode({k: v for k, v in values.items() if v not in ("", None, 1, "1")})
        return f"?{query}" if query else "?"


@dataclass
class Row:
    domain: Domain
    trend: int | None
    worst: Finding | None
    now: datetime

    @property
    def checked_ago(self) -> str:
        at = self.domain.last_checked_at
        if not at:
            return ""
        if self.now - at < timedelta(minutes=1):
            return _("just now")
        return _("%(time)s ago") % {"time": timesince(at, self.now, depth=1)}

    @property
    def grade_class(self) -> str:
        return grade_class(self.domain.grade)

    @property
    def trend_size(self) -> int:
        return abs(self.trend or 0)


@dataclass
class Column:
    key: str
    label: str
    url: str
    aria_sort: str  # "ascending", "descending" or "" when the list is not sorted by it


@dataclass
class GradeOption:
    value: str  # of ?grade=
    label: str
    css: str
    count: int
    url: str
    selected: bool


@dataclass
class ListPage:
    query: ListQuery
    page: Page
    rows: list[Row]
    columns: dict[str, Column]
    grades: list[GradeOption]
    common_findings: list[dict]
    total: int

    @property
    def previous_url(self) -> str:
        return self.query.url(page=self.page.previous_page_number())

    @property
    def next_url(self) -> str:
        return self.query.url(page=self.page.next_page_number())


def score_then(cutoff: datetime) -> Subquery:
    """The score of the domain's latest run at or before `cutoff` (index run_domain_recent)."""
    runs = CheckRun.objects.filter(domain=OuterRef("pk"), finished_at__lte=cutoff)
    return Subquery(runs.order_by("-finished_at").values("score")[:1])


def list_page(organization: Organization, query: ListQuery, now: datetime) -> ListPage:
    domains = organization.domains.all()
    total, grades, version = _grade_counts(domains, query)
    shown = _filtered(domains, query)
    sort = SORTS[query.sort]
    cutoff = now - timedelta(days=TREND_DAYS)
    if sort.key == "trend":  # only then for every domain; otherwise for the page's only
        shown = shown.annotate(then=score_then(cutoff), trend=F("score") - F("then"))
    shown = shown.order_by(*(sort.descending if query.descending else sort.ascending), "pk")
    page = Paginator(shown, PER_PAGE).get_page(query.page)
    domains_on_page = list(page.object_list)
    if sort.key == "trend":
        then = {d.pk: d.then for d in domains_on_page}
    else:
        ids = [d.pk for d in domains_on_page]
        then = dict(
            Domain.objects.filter(pk__in=ids)
            .annotate(then=score_then(cutoff))
            .values_list("pk", "then")
        )
    worst = worst_findings([d.last_run_id for d in domains_on_page if d.last_run_id])
    rows = [
        Row(
            domain=d,
            trend=None if d.score is None or then.get(d.pk) is None else d.score - then[d.pk],
            worst=worst.get(d.last_run_id),
            now=now,
        )
        for d in domains_on_page
    ]
    return ListPage(
        query=query,
        page=page,
        rows=rows,
        columns=_columns(query),
        grades=grades,
        common_findings=[
            {**f, "url": query.url(finding=f["kind"])}
            for f in common_findings(organization, version=version)
        ],
        total=total,
    )


def _filtered(domains, query: ListQuery):
    if query.grade == NOT_CHECKED:
        domains = domains.filter(last_run__isnull=True)
    elif query.grade == UNSCORED:  # the latest check could not test (a last known grade or not)
        domains = domains.filter(last_run__status=RunStatus.ERROR)
    elif query.grade:
        domains = domains.filter(grade=query.grade)
    if query.finding:
        latest = Finding.objects.filter(run=OuterRef("last_run"), kind=query.finding)
        domains = domains.filter(Exists(latest))
    if query.cert:
        kinds = CERT_FILTERS[query.cert][1]
        latest = Finding.objects.filter(run=OuterRef("last_run"), kind__in=kinds)
        domains = domains.filter(Exists(latest))
    if query.q:
        matches = Q(name__icontains=query.q)
        if not query.q.isascii():
            # Stored names are punycode: match the Unicode query against the decoded IDNs.
            needle = query.q.lower()
            idns = domains.filter(name__contains="xn--").values_list("pk", "name")
            matches |= Q(pk__in=[pk for pk, name in idns if needle in display_domain(name)])
        domains = domains.filter(matches)
    return domains


def _grade_counts(domains, query: ListQuery) -> tuple[int, list[GradeOption], tuple]:
    """The grades' counts, the total, and the counts as common_findings' cache key."""
    rows = domains.values("grade").annotate(
        n=Count("pk"),
        unchecked=Count("pk", filter=Q(last_run__isnull=True)),
        failed=Count("pk", filter=Q(last_run__status=RunStatus.ERROR)),
    )
    counts, total, version = Counter(), 0, []
    for row in rows:
        version.append((row["grade"], row["n"], row["unchecked"], row["failed"]))
        # A domain whose latest check could not test counts under its last known grade too.
        total += row["n"]
        if row["grade"]:
            counts[row["grade"]] += row["n"]
        counts[UNSCORED] += row["failed"]
        counts[NOT_CHECKED] += row["unchecked"]
    labels = [(g, g, grade_class(g)) for g in GRADES]
    labels += [(UNSCORED, _("Could not test"), "none"), (NOT_CHECKED, _("Not checked yet"), "none")]
    shown = [
        GradeOption(value, label, css, counts[value], query.url(grade=value), value == query.grade)
        for value, label, css in labels
        if counts[value] or value in GRADES
    ]
    return total, shown, tuple(sorted(version))


def common_findings(
    organization: Organization, limit: int = COMMON_FINDINGS, version: tuple | None = None
) -> list[dict]:
    """The problems found most often by the latest runs of the team's domains. Reading every
    domain's latest findings costs 12 ms a thousand domains, on every list page: given the
    `version` of the list (its counts by grade), the answer is kept up to a minute, and read
    again at once when a domain comes or goes or a grade changes (docs/scaling.md). Keyed
    by the latest runs, it was never found at scale: a run finishes every few seconds."""
    latest = organization.domains.filter(last_run__isnull=False).values("last_run_id")

    def read() -> list[dict]:
        return list(
            Finding.objects.filter(PROBLEM, run__in=Subquery(latest))
            .values("kind")
            .annotate(
                domains=Count("run", distinct=True), title=Max("title"), worst=Max("severity")
            )
            .order_by("-domains", "kind")[:limit]
        )

    if version is None:
        rows = read()
    else:
        # The team's creation time too: ids are reused (a restored database, SQLite's tests).
        digest = hashlib.sha256(
            repr((organization.pk, str(organization.created_at), limit, version)).encode()
            + str(int(time.time() // COMMON_FINDINGS_KEPT)).encode()
        ).hexdigest()
        try:
            rows = cache.get_or_set(f"common-findings:{digest}", read, COMMON_FINDINGS_KEPT)
        except (RedisError, OSError):  # the cache down (Redis restarting): read it here
            rows = read()
    found = []
    for row in rows:
        kind = CATALOGUE.get(row["kind"])
        severity = str(kind.severity) if kind else row["worst"]
        found.append(
            {**row, "severity": severity, "title": str(kind.title) if kind else row["title"]}
        )
    return found


def worst_findings(run_ids: list[int]) -> dict[int, Finding]:
    """Each run's most severe problem, in one query for all the runs."""
    worst: dict[int, Finding] = {}
    findings = Finding.objects.filter(PROBLEM, run_id__in=run_ids).only(
        "run", "kind", "severity", "title", "category"
    )
    for f in findings.order_by("pk"):
        current = worst.get(f.run_id)
        if current is None or severity_rank(f.severity) < severity_rank(current.severity):
            worst[f.run_id] = f
    for f in worst.values():
        kind = CATALOGUE.get(f.kind)
        if kind and not reading_english():  # as localized() does
            f.title = str(kind.title)
    return worst


def _columns(query: ListQuery) -> dict[str, Column]:
    columns = {}
    for key, sort in SORTS.items():
        active = query.sort == key
        descending = not query.descending if active else sort.starts_descending
        columns[key] = Column(
            key=key,
            label=sort.label,
            url=query.url(sort=("-" if descending else "") + key),
            aria_sort=("descending" if query.descending else "ascending") if active else "",
        )
    return columns


# --- one domain -----------------------------------------------------------------------------


@dataclass
class CategoryRow:
    name: str
    label: str
    status: str  # pass warn fail error info, or "na" (not applicable)
    status_label: str
    score: int | None


@dataclass
class FindingView:
    finding: Finding
    fix: list[tuple[str, str]]  # ("text" | "code" | "record", text): see split_fix


@dataclass
class ServerRow:
    """One (host, address, port) of the mail servers section."""

    category: str
    row: dict  # as the probe category stored it (checks/verdicts.py server_summary)
    now: datetime

    @property
    def reach_label(self) -> str:
        return REACH_LABELS.get(self.row.get("reach", ""), self.row.get("reach", ""))

    @property
    def certificate(self) -> dict | None:
        return self.row.get("certificate")

    @property
    def not_after(self) -> datetime | None:
        cert = self.certificate
        return datetime.fromisoformat(cert["not_after"]) if cert else None

    @property
    def days_left(self) -> int | None:
        return (self.not_after - self.now).days if self.not_after else None

    @property
    def outdated(self) -> list[str]:
        old = {"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1"}
        return [v for v in self.row.get("tls_versions", []) if v in old]

    @property
    def probed_at(self) -> datetime | None:
        at = self.row.get("probed_at")
        return datetime.fromisoformat(at) if at else None


def server_rows(categories: dict, now: datetime) -> list[ServerRow]:
    return [
        ServerRow(CATEGORY_LABELS[name], row, now)
        for name in PROBE_CATEGORIES
        for row in (categories.get(name) or {}).get("servers") or []
    ]


@dataclass
class RecordRow:
    category: str
    name: str
    values: list[str]


@dataclass
class DomainPage:
    domain: Domain
    run: CheckRun | None
    categories: list[CategoryRow]
    findings: list[tuple[str, list[FindingView]]]  # by severity, the worst first
    chart: SafeString
    events: list[DomainEvent]
    records: list[RecordRow]
    pending: ManualCheck | None
    resolver_problem: Finding | None = None  # why the latest run judged nothing, if no domain's
    servers: list[ServerRow] = field(default_factory=list)
    reports: Headline | None = None  # the last 30 days of DMARC aggregate reports
    history_days: int = HISTORY_DAYS
    grade_class: str = field(init=False)

    def __post_init__(self):
        self.grade_class = grade_class(self.domain.grade)


def domain_page(domain: Domain, now: datetime) -> DomainPage:
    """Everything the domain's page shows; `domain` comes with its last_run selected."""
    run = domain.last_run
    findings = list(run.findings.all()) if run else []
    start = now - timedelta(days=HISTORY_DAYS)
    history = domain.runs.filter(finished_at__gte=start).order_by("finished_at")
    points = [charts.Point(*row) for row in history.values_list("finished_at", "score", "grade")]
    chart = charts.score_history(
        points,
        start,
        now,
        title=_("Score of %(name)s, last %(days)d days")
        % {"name": domain.display_name, "days": HISTORY_DAYS},
    )
    return DomainPage(
        domain=domain,
        run=run,
        categories=category_rows(run.categories) if run else [],
        findings=by_severity(findings, domain.name),
        chart=mark_safe(chart),  # noqa: S308  (charts.py escapes every text it draws)
        events=list(domain.events.all()[:TIMELINE_LENGTH]),
        records=record_rows(run.categories) if run else [],
        resolver_problem=next((f for f in findings if f.kind == RESOLVER_BROKEN), None),
        servers=server_rows(run.categories, now) if run else [],
        reports=domain_headline(domain, now),
        pending=domain.manual_checks.filter(
            state__in=[ManualCheck.State.QUEUED, ManualCheck.State.RUNNING],
            requested_at__gte=now - PENDING_FOR,
        ).first(),
    )


def resolver_trouble() -> Finding | None:
    """The resolver finding of the newest run that had one, when no run since has been
    judged: every check then says "could not test" for a reason that is no domain's (the staff
    banner says so). Two indexed queries."""
    latest = Finding.objects.filter(kind=RESOLVER_BROKEN).select_related("run").order_by("-pk")
    latest = latest.first()
    if latest is None:
        return None
    since = CheckRun.objects.filter(pk__gt=latest.run_id).exclude(status=RunStatus.ERROR)
    return None if since.exists() else shown(latest, latest.run.name)


def _in_order(categories: dict) -> list[str]:
    return [n for n in ORDER if n in categories] + sorted(n for n in categories if n not in ORDER)


def category_rows(categories: dict) -> list[CategoryRow]:
    rows = []
    for name in _in_order(categories):
        result = categories[name] or {}
        status = result.get("status") or "error"
        if result.get("applicable") is False:
            status = "na"
        rows.append(
            CategoryRow(
                name=name,
                label=CATEGORY_LABELS.get(name, name),
                status=status,
                status_label=STATUS_LABELS.get(status, _("Not applicable")),
                score=result.get("score"),
            )
        )
    return rows


EXAMPLE = re.compile(r"`([^`]+)`")


def split_fix(remediation: str) -> list[tuple[str, str]]:
    """The catalogue writes code between backticks: an example record that a colon introduces
    and that ends its sentence (it has spaces, as "publish a null MX instead: `example.com. MX
    0 .`" at the end, or before a new sentence) becomes a block to copy; any other code (`-all`,
    "(Postfix: `smtpd_tls_auth_only = yes`)") stays inline, so that no block cuts a sentence."""
    pieces = EXAMPLE.split(remediation)
    parts: list[tuple[str, str]] = []
    for i, part in enumerate(pieces):
        if i % 2 == 0:
            if part:
                parts.append(("text", part))
            continue
        after = pieces[i + 1].strip() if i + 1 < len(pieces) else ""
        introduced = i > 0 and pieces[i - 1].rstrip().endswith(":")
        ends = not after or after[0].isupper()
        parts.append(("record" if introduced and ends and " " in part.strip() else "code", part))
    return parts


def shown(f: Finding, domain: str = "") -> Finding:
    """The finding with its title, evidence and fix in the reader's language (in memory only:
    what is stored stays English)."""
    f.title, f.detail, f.remediation = localized(f, domain)
    return f


def by_severity(findings: list[Finding], domain: str = "") -> list[tuple[str, list[FindingView]]]:
    groups: dict[str, list[FindingView]] = {}
    ordered = sorted(findings, key=lambda f: (severity_rank(f.severity), f.category, f.kind))
    for f in ordered:
        shown(f, domain)  # also the resolver_problem the page shows: the same objects
        groups.setdefault(f.severity, []).append(FindingView(f, split_fix(f.remediation)))
    return list(groups.items())


def record_rows(categories: dict) -> list[RecordRow]:
    """The raw records each category saw, one row per record set."""
    rows = []
    for name in _in_order(categories):
        records = (categories[name] or {}).get("records") or {}
        label = CATEGORY_LABELS.get(name, name)
        for key, value in records.items():
            if isinstance(value, dict):
                rows += [RecordRow(label, f"{key} {sub}", _lines(v)) for sub, v in value.items()]
            else:
                rows.append(RecordRow(label, key, _lines(value)))
    return [r for r in rows if r.values]


def _lines(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in value]
    return [value if isinstance(value, str) else json.dumps(value, sort_keys=True)]
