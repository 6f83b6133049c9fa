"""The senders pages of a domain: who sends in its name over a range, the policy readiness,
one sender's days, the CSV of the table, and the team's mark on a sender. Reading is in
reports/senders/report.py."""

from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from domains import tenancy
from domains.models import Domain
from reports import analytics, charts, queries
from reports.analytics_views import download, range_file
from reports.models import SenderMark, SenderVerdict
from reports.ranges import PRESETS, DateRange, parse_range
from reports.senders.report import daily, one_sender, senders_view

SENDERS_PER_PAGE = 50  # as the reports index


def _domain(request, domain_pk: int) -> Domain:
    domain = Domain.objects.visible_to(request.user).filter(pk=domain_pk).first()
    if domain is None:
        raise Http404(_("No such domain."))
    return domain


def _range(request) -> tuple[DateRange, str | None]:
    return parse_range(request.GET, timezone.now().date())


def _context(request, domain: Domain, chosen: DateRange, error: str | None) -> dict:
    query = urlencode(chosen.query())
    return {
        "domain": domain,
        "range": chosen,
        "range_error": error,
        "range_query": query,
        "range_fields": sorted(chosen.query().items()),
        "presets": PRESETS,
        "can_edit": tenancy.role_for(request.user, domain.organization_id).can_edit,
    }


@require_GET
def domain_senders(request, domain_pk: int):
    domain = _domain(request, domain_pk)
    chosen, error = _range(request)
    view = senders_view(domain, chosen.since, chosen.until)
    # The table shows a page of senders (the busiest first); the CSV has them all.
    pager = queries.paginate(view.senders, request.GET, SENDERS_PER_PAGE)
    context = _context(request, domain, chosen, error) | {"view": view, "pager": pager}
    return render(request, "reports/senders.html", context)


@require_GET
def senders_csv(request, domain_pk: int):
    domain = _domain(request, domain_pk)
    chosen = _range(request)[0]
    view = senders_view(domain, chosen.since, chosen.until)
    response = HttpResponse(view.csv_text(), content_type="text/csv; charset=utf-8")
    name = f"senders-{domain.name}-{chosen.since}-{chosen.until}.csv"
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


# The day-by-day table of a sender's page lists the latest days with mail, newest last; the
# chart shows the whole range, and its CSV and JSON have every day.
SENDER_DAYS_SHOWN = 31


def _sender_days(domain: Domain, chosen: DateRange, key: str):
    """The sender `key` over the range, its days with mail and its series (404 if none)."""
    sender = one_sender(domain, chosen.since, chosen.until, key)
    if sender is None:
        raise Http404(_("No such sender in this range."))
    days = daily(domain, sender, chosen.since, chosen.until)
    series = analytics.series_of(
        [(d["day"], d["messages"], d["dmarc_pass"], d["quarantined"], d["rejected"]) for d in days],
        chosen,
    )
    return sender, days, series


@require_GET
def sender_detail(request, domain_pk: int):
    domain = _domain(request, domain_pk)
    chosen, error = _range(request)
    key = request.GET.get("sender", "")
    sender, days, series = _sender_days(domain, chosen, key)
    chart = charts.daily_volume(
        series,
        title=_("Messages from %(sender)s per day") % {"sender": sender.label},
        chart_id="sender-chart",
    )
    context = _context(request, domain, chosen, error) | {
        "sender": sender,
        "days": days[-SENDER_DAYS_SHOWN:],
        "days_left_out": max(0, len(days) - SENDER_DAYS_SHOWN),
        "chart": mark_safe(chart),  # noqa: S308  (reports/charts.py escapes every text)
        "sender_fields": [("sender", sender.key)],
        "sender_query": urlencode(chosen.query() | {"sender": sender.key}),
    }
    return render(request, "reports/senders_detail.html", context)


@require_GET
def sender_volume(request, domain_pk: int, fmt: str):
    """The numbers of a sender's chart, for the same range: CSV or JSON."""
    domain = _domain(request, domain_pk)
    chosen = _range(request)[0]
    sender, _days, series = _sender_days(domain, chosen, request.GET.get("sender", ""))
    rows = series.rows()
    about = {"domain": domain.name, "sender": sender.key}
    body = analytics.as_csv(rows) if fmt == "csv" else analytics.as_json(about, chosen, rows)
    name = f"{domain.name}-{sender.label.replace('/', '_')}"
    return download(body, fmt, range_file("dmarc", name, chosen))


@require_POST
def mark_sender(request, domain_pk: int):
    """A team member says a sender is, or is not, the team's: the button pressed sends
    `mark=VERDICT KEY` ("clear" forgets the mark; a verdict has no space, a key may)."""
    domain = _domain(request, domain_pk)
    tenancy.require_edit(tenancy.role_for(request.user, domain.organization_id))
    verdict, _space, key = request.POST.get("mark", "").partition(" ")
    verdict = "" if verdict == "clear" else verdict or "-"
    key = key[:300]
    if not key or verdict not in [*SenderVerdict.values, ""]:
        return HttpResponse(_("Choose a sender and ours or not ours."), status=400)
    if verdict:
        SenderMark.objects.update_or_create(
            domain=domain,
            sender=key,
            defaults={
                "organization_id": domain.organization_id,
                "verdict": verdict,
                "marked_by": request.user,
            },
        )
    else:
        SenderMark.objects.filter(domain=domain, sender=key).delete()
    back = parse_range(request.POST, timezone.now().date())[0]
    url = redirect("reports:senders", domain.pk).url
    return redirect(f"{url}?{urlencode(back.query())}#readiness-title")
