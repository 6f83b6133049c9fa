"""The reports the team received (DMARC aggregate with its records, SMTP TLS, failure) and
uploading report files (stored at once, parsed by the worker: poll the upload)."""

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.db.models import Exists, OuterRef, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from mailsec.api import serializers as api
from mailsec.api.base import TeamViewSet
from mailsec.api.domains import form_errors
from mailsec.api.pagination import Cursor
from reports import uploads
from reports.forms import CappedUploadHandler, UploadForm
from reports.models import AggregateReport, FailureReport, TlsPolicy, TlsReport, Upload
from reports.views import too_many_files_message

DOMAIN = OpenApiParameter("domain", str, description="Only reports about this domain (A-label).")


class BeginCursor(Cursor):
    ordering = "-begin"


class RecordCursor(Cursor):
    ordering = "-count"
    page_size = 200


class ReceivedCursor(Cursor):
    ordering = "-received_at"


class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamViewSet):
    model = None

    def team_queryset(self, team):
        reports = self.model.objects.filter(organization=team)
        if self.action == "list" and (name := self.request.query_params.get("domain")):
            reports = reports.filter(self.about(name))
        return reports

    def about(self, name: str):
        return Q(domain=name)

    @extend_schema(parameters=[DOMAIN])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class AggregateReportViewSet(ReportViewSet):
    """DMARC aggregate reports, the newest first."""

    model = AggregateReport
    queryset = AggregateReport.objects.none()
    serializer_class = api.AggregateReportSerializer
    pagination_class = BeginCursor

    @extend_schema(responses=api.AggregateRecordSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=RecordCursor)
    def records(self, request, pk=None):
        """The report's records, the most messages first, in pages."""
        report = self.get_object()
        page = self.paginate_queryset(report.records.all())
        return self.get_paginated_response(api.AggregateRecordSerializer(page, many=True).data)


class TlsReportViewSet(ReportViewSet):
    """SMTP TLS reports (RFC 8460); one report is about each domain of its policies."""

    model = TlsReport
    queryset = TlsReport.objects.none()
    pagination_class = BeginCursor

    def get_serializer_class(self):
        if self.action == "retrieve":
            return api.TlsReportDetailSerializer
        return api.TlsReportSerializer

    def about(self, name: str):
        policies = TlsPolicy.objects.filter(report=OuterRef("pk"), policy_domain=name)
        return super().about(name) | Exists(policies)


class FailureReportViewSet(ReportViewSet):
    """Failure reports (RUF), the latest received first."""

    model = FailureReport
    queryset = FailureReport.objects.none()
    serializer_class = api.FailureReportSerializer
    pagination_class = ReceivedCursor


class CreatedCursor(Cursor):
    ordering = "-created_at"


class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamViewSet):
    """Report files uploaded, and what became of each: the outcomes of `import_reports --json`."""

    queryset = Upload.objects.none()
    serializer_class = api.UploadSerializer
    parser_classes = [MultiPartParser]
    pagination_class = CreatedCursor

    def team_queryset(self, team):
        return Upload.objects.filter(organization=team).prefetch_related("files")

    def initial(self, request, *args, **kwargs):
        # Before anything reads the body (the session's CSRF check does): each file is dropped
        # as soon as it passes the size cap, as on the upload page.
        if request.method == "POST":
            self.capped = CappedUploadHandler(request, limit=settings.MAILSEC_REPORT_MAX_BYTES)
            request.upload_handlers.insert(0, self.capped)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": api.UploadRequestSerializer},
        responses={202: api.UploadSerializer},
        description="Store the files and answer at once; the worker parses them: poll `url`.",
    )
    def create(self, request):
        try:
            data, files = request.data, request.FILES
        except (TooManyFilesSent, TooManyFieldsSent):
            raise ValidationError({"files": [too_many_files_message()]}) from None
        form = UploadForm(data, files, oversized=self.capped.oversized)
        if not form.is_valid():
            raise ValidationError(form_errors(form))
        upload = uploads.create(
            self.team, request.user, form.cleaned_data["files"], self.capped.oversized
        )
        answer = api.UploadSerializer(self.team_queryset(self.team).get(pk=upload.pk)).data
        return Response(answer, status.HTTP_202_ACCEPTED, headers={"Location": answer["url"]})
