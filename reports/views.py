"""The report pages: a team's reports, one aggregate report, a domain's reports, uploading, and
the staff pages (refused inputs, unclaimed reports). Reading is in queries.py; storing in ingest."""

import logging
import re

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from domains import tenancy
from domains.models import Domain, Organization
from domains.views import wants_fragment
from reports import claims, queries, uploads
from reports.forms import AssignForm, CappedUploadHandler, UploadForm, size_text
from reports.models import RawInput, Upload
from reports.parsing.unpack import MAX_ZIP_MEMBERS
from reports.ranges import PRESETS

logger = logging.getLogger(__name__)

UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._+!@=-]+")
OUTCOMES = ("imported", "duplicate", "invalid")
UPLOAD_ROWS_SHOWN = 500


def _require_staff(request) -> None:
    # 404, not 403: like another team's objects, the staff pages do not admit they exist.
    if not request.user.is_staff:
        raise Http404(_("Not found."))


@require_GET
def report_index(request):
    membership = tenancy.current_membership(request)
    listing = queries.index_page(membership.organization, request.GET) if membership else None
    context = {
        "membership": membership,
        "listing": listing,
        "can_edit": bool(membership and membership.can_edit),
    }
    return render(request, "reports/index.html", context)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def report_upload(request):
    """The upload handler must be in place before anything reads the body, the CSRF check
    included: so the check runs inside, once the handler is set (Django's documented way)."""
    membership = tenancy.require_membership(request)
    tenancy.require_edit(membership)
    handler = CappedUploadHandler(request, limit=settings.MAILSEC_REPORT_MAX_BYTES)
    request.upload_handlers.insert(0, handler)
    try:
        request.POST  # noqa: B018  (reads the body: the number of files is checked there)
    except (TooManyFilesSent, TooManyFieldsSent):
        context = _upload_context(UploadForm()) | {"refused": too_many_files_message()}
        return render(request, "reports/upload.html", context, status=400)
    return _upload(request, membership, handler)


def too_many_files_message() -> str:
    return _(
        "An upload may hold at most %(most)s files: nothing was stored. Upload them in "
        "smaller groups, or pack them into a zip file (it may hold up to %(zip)s reports)."
    ) % {"most": settings.DATA_UPLOAD_MAX_NUMBER_FILES, "zip": MAX_ZIP_MEMBERS}


@csrf_protect
def _upload(request, membership, handler: CappedUploadHandler):
    """Store the files and answer at once: the worker parses them, the upload's page follows."""
    if request.method != "POST":
        return render(request, "reports/upload.html", _upload_context(UploadForm()))
    form = UploadForm(request.POST, request.FILES, oversized=handler.oversized)
    if not form.is_valid():
        return render(request, "reports/upload.html", _upload_context(form))
    upload = uploads.create(
        membership.organization, request.user, form.cleaned_data["files"], handler.oversized
    )
    return redirect("reports:upload_status", upload.pk)


def _upload_context(form) -> dict:
    return {
        "form": form,
        "limit": size_text(settings.MAILSEC_REPORT_MAX_BYTES),
        "most_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
    }


@require_GET
def upload_status(request, pk: int):
    """An upload's files, parsed or still waiting; the fragment is what static/js/mailsec.js
    polls while any is pending."""
    membership = tenancy.require_membership(request)
    upload = get_object_or_404(Upload, pk=pk, organization=membership.organization)
    files = list(upload.files.all())
    rows = queries.upload_rows(uploads.outcomes_of(files), membership.organization)
    in_table = {row.outcome.file for row in rows[:UPLOAD_ROWS_SHOWN]}
    context = {
        "upload": upload,
        "files": files,
        # Each file named once: a file with results in the table is not listed above it.
        "listed": [file for file in files if file.name not in in_table],
        # An mbox may hold thousands of messages: the counts say them all, the table the first.
        "rows": rows[:UPLOAD_ROWS_SHOWN],
        "rows_hidden": max(0, len(rows) - UPLOAD_ROWS_SHOWN),
        "pending": sum(file.pending for file in files),
        "counts": {status: sum(r.outcome.status == status for r in rows) for status in OUTCOMES},
    }
    if wants_fragment(request):
        return render(request, "reports/_upload_status.html", context)
    return render(request, "reports/upload_status.html", context)


@require_GET
def aggregate_detail(request, pk: int):
    report = get_object_or_404(queries.visible_aggregates(request.user), pk=pk)
    page = queries.aggregate_page(report, request.user, request.GET)
    return render(request, "reports/aggregate.html", {"page": page})


@require_GET
def domain_reports(request, domain_pk: int):
    domain = Domain.objects.visible_to(request.user).filter(pk=domain_pk).first()
    if domain is None:
        raise Http404(_("No such domain."))
    page = queries.domain_reports_page(domain, timezone.now(), request.GET)
    context = {"page": page, "domain": domain, "range_presets": PRESETS}
    return render(request, "reports/domain.html", context)


@require_GET
def refused_inputs(request):
    _require_staff(request)
    pager = queries.refused_inputs(request.GET)
    return render(request, "reports/refused.html", {"pager": pager})


@require_GET
def raw_download(request, pk: int):
    _require_staff(request)
    raw = get_object_or_404(RawInput, pk=pk)
    response = HttpResponse(raw.original(), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, safe_filename(raw))
    response["X-Content-Type-Options"] = "nosniff"
    return response


def safe_filename(raw: RawInput) -> str:
    """The input's own base name, reduced to harmless characters (it came from a stranger)."""
    base = re.split(r"[\\/]", raw.name)[-1]
    name = UNSAFE_FILENAME.sub("_", base).strip("._")[:120]
    return name or f"input-{raw.pk}"


@require_GET
def unclaimed_reports(request):
    _require_staff(request)
    pager = queries.unclaimed(request.GET)
    teams = list(Organization.objects.values_list("pk", "name"))
    context = {"pager": pager, "teams": teams}
    return render(request, "reports/unclaimed.html", context)


@require_POST
def assign_unclaimed(request):
    """Staff give a domain's unclaimed reports to the team that received them."""
    _require_staff(request)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a team for the reports."))
        return redirect("reports:unclaimed")
    team, domain = form.cleaned_data["organization"], form.cleaned_data["domain"]
    done = claims.assign_domain(domain, team)
    values = {
        "count": done["assigned"],
        "domain": domain,
        "team": team,
        "duplicates": done["duplicate"],
    }
    if done["duplicate"]:
        text = ngettext(
            "%(count)s report of %(domain)s now belongs to %(team)s (%(duplicates)s it already "
            "had were dropped).",
            "%(count)s reports of %(domain)s now belong to %(team)s (%(duplicates)s it already "
            "had were dropped).",
            done["assigned"],
        )
    else:
        text = ngettext(
            "%(count)s report of %(domain)s now belongs to %(team)s.",
            "%(count)s reports of %(domain)s now belong to %(team)s.",
            done["assigned"],
        )
    messages.success(request, text % values)
    return redirect("reports:unclaimed")
