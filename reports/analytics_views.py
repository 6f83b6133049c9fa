"""The analytics pages: a domain's chart data as CSV and JSON, the team's overview, a domain's
SMTP TLS reports over time, one TLS report, one failure report, and the CSV export of the
index's records. Reading is in reports/analytics.py and reports/filters.py.

A page about a domain is for the teams that may see the domain (Domain.objects.visible_to) and
shows the reports its team received; a single report is for the team that received it. Anything
else is a 404.
"""

from urllib.parse import urlencode

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from domains import tenancy
from domains.models import Domain, Organization
from reports import analytics, charts, filters, queries
from reports.models import FailureReport, TlsReport
from reports.ranges import PRESETS, parse_range


def _domain(request, domain_pk: int) -> Domain:
    domain = Domain.objects.visible_to(request.user).filter(pk=domain_pk).first()
    if domain is None:
        raise Http404(_("No such domain."))
    return domain


def _visible(model, user):
    """The reports of `model` the user's teams received (staff: all, as the index's)."""
    reports = model.objects.all()
    if user.is_staff:
        return reports
    return reports.filter(organization__in=Organization.objects.for_user(user).values("pk"))


def download(body: str, fmt: str, name: str) -> HttpResponse:
    kind = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = HttpResponse(body, content_type=kind)
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.{fmt}")
    response["X-Content-Type-Options"] = "nosniff"
    return response


def range_file(prefix: str, name: str, date_range) -> str:
    return f"{prefix}-{name}-{date_range.since.isoformat()}-{date_range.until.isoformat()}"


@require_GET
def domain_volume(request, domain_pk: int, fmt: str):
    """The numbers of the domain page's chart, for the same range."""
    domain = _domain(request, domain_pk)
    date_range = parse_range(request.GET, timezone.now().date())[0]
    series = analytics.domain_series(domain.organization_id, domain.name, date_range)
    rows = series.rows()
    body = (
        analytics.as_csv(rows)
        if fmt == "csv"
        else analytics.as_json({"domain": domain.name}, date_range, rows)
    )
    return download(body, fmt, range_file("dmarc", domain.name, date_range))


@require_GET
def overview(request):
    """Every domain of the current team: messages per day by result, and each domain's totals."""
    membership = tenancy.require_membership(request)
    team = membership.organization
    date_range, error = parse_range(request.GET, timezone.now().date())
    series = analytics.team_series(team, date_range)
    chart = charts.daily_volume(
        series,
        title=_("Messages per day of %(team)s's domains, %(range)s")
        % {"team": team, "range": date_range.label},
        chart_id="team",
    )
    context = {
        "team": team,
        "range": date_range,
        "range_error": error,
        "range_presets": PRESETS,
        "range_query": urlencode(date_range.query()),
        "series": series,
        "chart": mark_safe(chart),  # noqa: S308  (reports/charts.py escapes every text)
        "domains": analytics.team_domains(team, date_range),
    }
    return render(request, "reports/overview.html", context)


@require_GET
def overview_volume(request, fmt: str):
    membership = tenancy.require_membership(request)
    date_range = parse_range(request.GET, timezone.now().date())[0]
    rows = analytics.team_series(membership.organization, date_range).rows()
    about = {"team": str(membership.organization)}
    body = analytics.as_csv(rows) if fmt == "csv" else analytics.as_json(about, date_range, rows)
    return download(body, fmt, range_file("dmarc", "team", date_range))


@require_GET
def domain_tls(request, domain_pk: int):
    """The SMTP TLS reports about a domain over a range: sessions per day, MX hosts, failure
    types, receiving MTAs, reporters, and the reports themselves."""
    domain = _domain(request, domain_pk)
    date_range, error = parse_range(request.GET, timezone.now().date())
    tls = analytics.tls_analytics(domain.organization_id, domain.name, date_range)
    chart = charts.tls_sessions(
        tls,
        title=_("SMTP TLS sessions per day to %(domain)s, %(range)s")
        % {"domain": domain.display_name, "range": date_range.label},
        chart_id="tls-sessions",
    )
    reports = analytics.tls_reports_about(domain.organization_id, domain.name)
    reports = filters.Filters(range=date_range).apply(reports, TlsReport)
    pager = queries.paginate(reports.only(*queries.LISTINGS["tls"].columns), request.GET, 50)
    context = {
        "domain": domain,
        "range": date_range,
        "range_error": error,
        "range_presets": PRESETS,
        "range_query": urlencode(date_range.query()),
        "tls": tls,
        "chart": mark_safe(chart),  # noqa: S308  (reports/charts.py escapes every text)
        "pager": pager,
        "rows": [queries.ReportRow(r, domain.pk) for r in pager.page.object_list],
    }
    return render(request, "reports/domain_tls.html", context)


@require_GET
def domain_tls_sessions(request, domain_pk: int, fmt: str):
    domain = _domain(request, domain_pk)
    date_range = parse_range(request.GET, timezone.now().date())[0]
    rows = analytics.tls_analytics(domain.organization_id, domain.name, date_range).rows()
    about = {"domain": domain.name}
    body = analytics.as_csv(rows) if fmt == "csv" else analytics.as_json(about, date_range, rows)
    return download(body, fmt, range_file("tls", domain.name, date_range))


@require_GET
def tls_detail(request, pk: int):
    report = get_object_or_404(_visible(TlsReport, request.user), pk=pk)
    own = Domain.objects.visible_to(request.user).filter(organization=report.organization_id)
    policies = analytics.tls_policies(report, dict(own.values_list("name", "pk")))
    context = {"report": report, "policies": policies}
    return render(request, "reports/tls_detail.html", context)


@require_GET
def failure_detail(request, pk: int):
    report = get_object_or_404(_visible(FailureReport, request.user), pk=pk)
    own = Domain.objects.visible_to(request.user).filter(
        organization=report.organization_id, name=report.domain
    )
    context = {"report": report, "domain_pk": own.values_list("pk", flat=True).first()}
    return render(request, "reports/failure_detail.html", context)


@require_GET
def export_records(request):
    """The records of the aggregate reports the index's filters select, as CSV, streamed."""
    membership = tenancy.require_membership(request)
    team = membership.organization
    names = queries.TeamNames(Domain.objects.filter(organization=team))
    query = queries.IndexQuery.from_params(request.GET, names, timezone.now().date())
    query.kind = "aggregate"
    records = filters.export_records(queries.team_reports(team, query), query.filters)
    response = StreamingHttpResponse(filters.csv_lines(records), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = content_disposition_header(True, f"records-{stamp}.csv")
    response["X-Content-Type-Options"] = "nosniff"
    return response
