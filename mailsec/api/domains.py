"""Domains, their check runs and findings, "check now", their mail servers, and the catalogue
of findings. Adding and editing go through the pages' own forms (domains/forms.py) and bulk
add (domains/bulk.py), so the API accepts and refuses exactly what the pages do, in the same
words."""

from datetime import timedelta

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from domains import scheduling
from domains.bulk import add_domains
from domains.findings import CATALOGUE
from domains.forms import DomainAddForm, DomainEditForm
from domains.models import CheckRun, Domain, ManualCheck
from domains.pages import PROBE_CATEGORIES
from mailsec.api import serializers as api
from mailsec.api.base import TeamViewSet
from mailsec.api.pagination import Cursor
from mailsec.models import AuditAction, AuditEvent
from reports import analytics
from reports.queries import SUMMARY_DAYS, summary_of
from reports.ranges import DateRange, parse_range
from reports.senders.report import senders_view

GRADE = OpenApiParameter("grade", str, description="Only these grades (comma-separated).")
SEARCH = OpenApiParameter("search", str, description="Only names containing this text.")
DAYS = OpenApiParameter("days", int, description=f"Days back from today (default {SUMMARY_DAYS}).")


class RunCursor(Cursor):
    ordering = "-finished_at"


RANGE_PARAMETERS = [
    OpenApiParameter("range", str, description="7, 30, 90, 365 (days) or custom"),
    OpenApiParameter("since", OpenApiTypes.DATE, description="with range=custom"),
    OpenApiParameter("until", OpenApiTypes.DATE, description="with range=custom"),
]


def valid(given: serializers.Serializer) -> serializers.Serializer:
    """The serializer, validated; its errors as lists of messages per field, as the schema
    says (a list field's errors come keyed by item: "item 4: ..." instead)."""
    if given.is_valid():
        return given
    errors = {}
    for field, found in given.errors.items():
        if isinstance(found, dict):
            found = [f"item {int(i) + 1}: {m}" for i, ms in found.items() for m in ms]
        errors[field] = list(found)
    raise ValidationError(errors)


def form_errors(form) -> dict:
    """A form's errors keyed as the API's fields (the form's own words)."""
    errors = {name: list(messages) for name, messages in form.errors.items()}
    if "__all__" in errors:
        errors["non_field_errors"] = errors.pop("__all__")
    return errors


class DomainViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TeamViewSet
):
    queryset = Domain.objects.none()
    serializer_class = api.DomainSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "grade", "score", "last_checked_at", "created_at"]
    ordering = ["name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def team_queryset(self, team):
        domains = Domain.objects.filter(organization=team)
        if self.action == "list":
            grades = [g.strip() for g in self.request.query_params.get("grade", "").split(",")]
            if any(grades):
                domains = domains.filter(grade__in=[g for g in grades if g])
            if search := self.request.query_params.get("search", "").strip():
                domains = domains.filter(name__icontains=search)
        return domains

    @extend_schema(parameters=[GRADE, SEARCH])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={
            "application/json": api.DomainCreateSerializer,
            "multipart/form-data": api.DomainCreateSerializer,
        },
        responses={
            201: api.DomainAddResultSerializer,
            400: OpenApiResponse(api.DomainAddRefusedSerializer, "Nothing added, and why."),
        },
        description="Add one or many names. Each refused name is listed with the reason the "
        "page gives; the others are added. Multipart may also carry a `csv_file`, as on the page.",
    )
    def create(self, request):
        given = valid(api.DomainCreateSerializer(data=request.data))
        names = "\n".join(given.validated_data.get("names") or [])
        form = DomainAddForm(data={"names": names}, files=request.FILES)
        if not form.is_valid():
            raise ValidationError(form_errors(form))
        result = add_domains(self.team, form.cleaned_data["entries"])
        AuditEvent.record_each(
            self.team,
            request.user,
            AuditAction.DOMAIN_ADDED,
            [d.display_name for d in result.added],
        )
        answer = api.DomainAddResultSerializer(result).data
        return Response(answer, status.HTTP_201_CREATED if result.added else 400)

    @extend_schema(request=api.DomainUpdateSerializer, responses=api.DomainSerializer)
    def partial_update(self, request, pk=None):
        domain = self.get_object()
        given = valid(api.DomainUpdateSerializer(data=request.data))
        form = DomainEditForm(data=edit_form_data(domain, given.validated_data), instance=domain)
        if not form.is_valid():
            raise ValidationError(form_errors(form))
        form.save()
        AuditEvent.record(
            self.team,
            request.user,
            AuditAction.DOMAIN_CHANGED,
            domain.display_name,
            fields=form.changed_data,
        )
        return Response(api.DomainSerializer(Domain.objects.get(pk=domain.pk)).data)

    def perform_destroy(self, domain):
        domain.delete()
        AuditEvent.record(
            self.team, self.request.user, AuditAction.DOMAIN_DELETED, domain.display_name
        )

    @extend_schema(responses=api.RunSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=RunCursor)
    def runs(self, request, pk=None):
        """The domain's check runs, the newest first (findings: /runs/{id}/)."""
        domain = self.get_object()
        page = self.paginate_queryset(CheckRun.objects.filter(domain=domain))
        return self.get_paginated_response(api.RunSerializer(page, many=True).data)

    @extend_schema(responses={200: api.RunDetailSerializer, 404: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="runs/latest")
    def latest_run(self, request, pk=None):
        """The latest run, with its findings; 404 before the first check."""
        domain = self.get_object()
        run = CheckRun.objects.filter(domain=domain).prefetch_related("findings").first()
        if run is None:
            raise Http404("Not checked yet.")
        return Response(api.RunDetailSerializer(run).data)

    @extend_schema(
        request=None,
        responses={202: api.ManualCheckSerializer, 429: OpenApiTypes.OBJECT},
        description="Queue a check now (the page's button); poll the answer's `url`.",
    )
    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        domain = self.get_object()
        try:
            manual = scheduling.request_check(domain, request.user)
        except scheduling.RateLimited as limited:
            wait = int(scheduling.DOMAIN_COOLDOWN.total_seconds())
            raise Throttled(wait=wait, detail=str(limited)) from None
        answer = api.ManualCheckSerializer(manual).data
        return Response(answer, status.HTTP_202_ACCEPTED, headers={"Location": answer["url"]})

    @extend_schema(responses=api.ServerSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def servers(self, request, pk=None):
        """The mail servers as the latest run saw them (MX, submission, IMAP, POP3)."""
        domain = self.get_object()
        categories = domain.last_run.categories if domain.last_run_id else {}
        rows = [
            server_row(name, row)
            for name in PROBE_CATEGORIES
            for row in (categories.get(name) or {}).get("servers") or []
        ]
        return Response(api.ServerSerializer(rows, many=True).data)

    @extend_schema(parameters=[DAYS], responses=api.ReportSummarySerializer)
    @action(detail=True, methods=["get"], url_path="report-summary")
    def report_summary(self, request, pk=None):
        """The totals of the DMARC reports the team received about the domain (its report
        page's summary)."""
        domain = self.get_object()
        days = serializers.IntegerField(min_value=1, max_value=3660, default=SUMMARY_DAYS)
        try:
            days = days.run_validation(request.query_params.get("days", SUMMARY_DAYS))
        except serializers.ValidationError as exc:
            raise ValidationError({"days": exc.detail}) from None
        since = timezone.now().date() - timedelta(days=days - 1)
        summary, sources = summary_of(self.team, domain.name, since)
        data = {
            **vars(summary),
            "domain": domain.name,
            "since": since,
            "dmarc_rate": summary.dmarc_rate,
            "dkim_rate": summary.dkim_rate,
            "spf_rate": summary.spf_rate,
            "top_sources": [{**vars(row), "pass_rate": row.pass_rate} for row in sources],
        }
        return Response(api.ReportSummarySerializer(data).data)

    @extend_schema(parameters=RANGE_PARAMETERS, responses=api.ReportSeriesSerializer)
    @action(detail=True, methods=["get"], url_path="report-series")
    def report_series(self, request, pk=None):
        """Messages per day by result over a range (the report page's chart, as data)."""
        domain = self.get_object()
        chosen = date_range(request)
        series = analytics.domain_series(self.team, domain.name, chosen)
        data = {
            "domain": domain.name,
            "since": chosen.since,
            "until": chosen.until,
            "days": series.rows(),
        }
        return Response(api.ReportSeriesSerializer(data).data)

    @extend_schema(parameters=RANGE_PARAMETERS, responses=api.SendersSerializer)
    @action(detail=True, methods=["get"], pagination_class=None)
    def senders(self, request, pk=None):
        """Who sent in the domain's name over a range, by service, and the policy readiness
        (the senders page, as data; `manage.py senders --json`'s objects)."""
        domain = self.get_object()
        chosen = date_range(request)
        view = senders_view(domain, chosen.since, chosen.until)
        data = {
            "domain": domain.name,
            "since": chosen.since,
            "until": chosen.until,
            "senders": [sender.as_json() for sender in view.senders],
            "readiness": view.readiness.as_json(),
        }
        return Response(api.SendersSerializer(data).data)


def date_range(request) -> DateRange:
    """The range asked for, as the pages read it (reports/ranges.py); a bad one is a 400."""
    chosen, error = parse_range(request.query_params, timezone.now().date())
    if error:
        raise ValidationError({"range": [error]})
    return chosen


def edit_form_data(domain: Domain, given: dict) -> dict:
    """The edit form's fields as the page would post them: the given values, else the domain's."""
    current = {
        "check_interval": int(domain.check_interval.total_seconds()),
        "probe_interval": int(domain.probe_interval.total_seconds()),
        "mail_access_hosts": domain.mail_access_hosts,
        "dkim_selectors": domain.dkim_selectors,
        "notes": domain.notes,
    } | given
    return {
        "check_interval": str(current["check_interval"]),
        "probe_interval": str(current["probe_interval"]),
        "mail_access_hosts": "\n".join(current["mail_access_hosts"]),
        "dkim_selectors": " ".join(current["dkim_selectors"]),
        "notes": current["notes"],
    }


def server_row(category: str, row: dict) -> dict:
    port = row.get("port")
    return {
        "category": category,
        "host": str(row.get("host", "")),
        "address": str(row.get("address", "")),
        "port": port if isinstance(port, int) else None,
        "reach": str(row.get("reach", "")),
        "probed_at": row.get("probed_at"),
        "details": row,
    }


class RunViewSet(mixins.RetrieveModelMixin, TeamViewSet):
    """One check run of a domain of the team, with its findings."""

    queryset = CheckRun.objects.none()
    serializer_class = api.RunDetailSerializer

    def team_queryset(self, team):
        return CheckRun.objects.filter(domain__organization=team).prefetch_related("findings")


class CheckViewSet(mixins.RetrieveModelMixin, TeamViewSet):
    """A "check now" request: queued, running, done (with its run) or failed."""

    queryset = ManualCheck.objects.none()
    serializer_class = api.ManualCheckSerializer

    def team_queryset(self, team):
        return ManualCheck.objects.filter(domain__organization=team)


class FindingKindViewSet(viewsets.ViewSet):
    """The catalogue of findings: every id a run may report, its severity, title and fix."""

    lookup_value_converter = "str"
    pagination_class = None

    @extend_schema(responses=api.FindingKindSerializer(many=True))
    def list(self, request):
        kinds = [kind_data(kind) for kind in CATALOGUE.values()]
        return Response(api.FindingKindSerializer(kinds, many=True).data)

    @extend_schema(responses=api.FindingKindSerializer)
    def retrieve(self, request, pk=None):
        kind = CATALOGUE.get(pk)
        if kind is None:
            raise Http404("No such finding.")
        return Response(api.FindingKindSerializer(kind_data(kind)).data)


def kind_data(kind) -> dict:
    return {
        "id": kind.id,
        "category": kind.category,
        "severity": str(kind.severity),
        "title": kind.title.english,  # the API stays English (docs/findings.fr.md is French)
        "remediation": kind.remediation.english,
    }
