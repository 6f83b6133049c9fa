"""What the API's objects look like, and the webhook payload (domains/alerts.py builds it with
these serializers, so a webhook event and the API's event are one schema component)."""

from datetime import UTC

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from domains.models import (
    AlertChannel,
    AlertDelivery,
    CheckRun,
    Domain,
    Finding,
    ManualCheck,
)
from mailsec.api.models import ApiToken
from reports.models import (
    AggregateRecord,
    AggregateReport,
    FailureReport,
    TlsPolicy,
    TlsReport,
    Upload,
    UploadFile,
)


class Timestamp(serializers.DateTimeField):
    """ISO 8601 in UTC as Python writes it ("+00:00"): what webhooks have always sent."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat() if value else None


class Base(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{
            field: Timestamp
            for field, kind in serializers.ModelSerializer.serializer_field_mapping.items()
            if kind is serializers.DateTimeField
        },
    }


@extend_schema_field(OpenApiTypes.INT)
class Seconds(serializers.Field):
    def to_representation(self, value):
        return int(value.total_seconds())


# --- alerts: the webhook payload -------------------------------------------------------------


class AlertEventSerializer(serializers.Serializer):
    """One domain event, as a webhook receives it."""

    domain = serializers.CharField(source="domain.name")
    kind = serializers.CharField()
    severity = serializers.CharField(allow_blank=True)
    summary = serializers.CharField()
    data = serializers.JSONField()
    created_at = Timestamp()
    url = serializers.SerializerMethodField()

    def get_url(self, event) -> str:
        from domains.alerts import site_url

        if event.domain_id is None:  # the sample event of a test alert
            return site_url(reverse("domains:list"))
        return site_url(reverse("domains:detail", args=[event.domain_id]))


class AlertPayloadSerializer(serializers.Serializer):
    """The body of a webhook POST (and what an alert e-mail is written from)."""

    type = serializers.SerializerMethodField()
    organization = serializers.CharField(source="organization.name")
    subject = serializers.CharField()
    events = AlertEventSerializer(many=True)
    test = serializers.BooleanField()

    def get_type(self, payload) -> str:
        return "mailsec.alert"


# --- domains, runs, findings -----------------------------------------------------------------


class DomainSerializer(Base):
    unicode_name = serializers.CharField(read_only=True)
    lookalike = serializers.CharField(read_only=True)
    check_interval = Seconds(read_only=True)
    probe_interval = Seconds(read_only=True)
    last_run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Domain
        fields = [
            "id",
            "name",
            "unicode_name",
            "lookalike",
            "grade",
            "score",
            "grade_partial",
            "graded_at",
            "last_checked_at",
            "last_run",
            "next_check_at",
            "check_interval",
            "probe_interval",
            "mail_access_hosts",
            "dkim_selectors",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DomainCreateSerializer(serializers.Serializer):
    """Names to add: the same rules, and the same reasons for each refused name, as the page's
    "Add domains" form."""

    names = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)


class RejectedSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Position in `names` (from 1), or CSV line.")
    text = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


class DomainAddResultSerializer(serializers.Serializer):
    added = DomainSerializer(many=True)
    rejected = RejectedSerializer(many=True)


class DomainAddRefusedSerializer(serializers.Serializer):
    """Nothing added: every name refused (`rejected`), or the request itself (the form's
    message in `non_field_errors` or `names`)."""

    added = DomainSerializer(many=True, required=False)
    rejected = RejectedSerializer(many=True, required=False)
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)
    names = serializers.ListField(child=serializers.CharField(), required=False)


class DomainUpdateSerializer(serializers.Serializer):
    """The fields of the page's "Edit" form, with its rules; what is left out is kept."""

    check_interval = serializers.IntegerField(required=False, help_text="Seconds.")
    probe_interval = serializers.IntegerField(required=False, help_text="Seconds.")
    mail_access_hosts = serializers.ListField(child=serializers.CharField(), required=False)
    dkim_selectors = serializers.ListField(child=serializers.CharField(), required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class FindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Finding
        fields = ["kind", "category", "severity", "title", "detail", "remediation"]


class RunSerializer(Base):
    domain = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = CheckRun
        fields = [
            "id",
            "domain",
            "name",
            "started_at",
            "finished_at",
            "status",
            "score",
            "grade",
            "trigger",
            "queries",
            "details_pruned",
        ]


class RunDetailSerializer(RunSerializer):
    findings = FindingSerializer(many=True, read_only=True)
    categories = serializers.JSONField(read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "categories", "findings"]


class FindingKindSerializer(serializers.Serializer):
    id = serializers.CharField()
    category = serializers.CharField()
    severity = serializers.CharField()
    title = serializers.CharField()
    remediation = serializers.CharField()


class ManualCheckSerializer(Base):
    domain = serializers.PrimaryKeyRelatedField(read_only=True)
    run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = ManualCheck
        fields = ["id", "domain", "state", "requested_at", "run", "error", "url"]

    def get_url(self, manual) -> str:
        return reverse("api:check-detail", args=[manual.pk])


class ServerSerializer(serializers.Serializer):
    """A mail server as the latest run probed it (the page's "Mail servers")."""

    category = serializers.CharField()
    host = serializers.CharField(allow_blank=True)
    address = serializers.CharField(allow_blank=True)
    port = serializers.IntegerField(allow_null=True)
    reach = serializers.CharField(allow_blank=True)
    probed_at = serializers.CharField(allow_null=True)
    details = serializers.JSONField(help_text="Everything the probe recorded.")


# --- reports ---------------------------------------------------------------------------------


class AggregateReportSerializer(Base):
    class Meta:
        model = AggregateReport
        fields = [
            "id",
            "org_name",
            "email",
            "report_id",
            "domain",
            "begin",
            "end",
            "adkim",
            "aspf",
            "p",
            "sp",
            "pct",
            "record_count",
            "message_count",
            "dmarc_pass",
            "received_at",
        ]


class AggregateRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = AggregateRecord
        fields = [
            "id",
            "source_ip",
            "count",
            "disposition",
            "dkim",
            "spf",
            "header_from",
            "envelope_from",
            "envelope_to",
        ]


class TlsPolicySerializer(serializers.ModelSerializer):
    policy_strings = serializers.JSONField()
    mx_hosts = serializers.JSONField()
    failure_details = serializers.JSONField()

    class Meta:
        model = TlsPolicy
        fields = [
            "policy_type",
            "policy_domain",
            "policy_strings",
            "mx_hosts",
            "successful",
            "failed",
            "failure_details",
        ]


class TlsReportSerializer(Base):
    class Meta:
        model = TlsReport
        fields = [
            "id",
            "org_name",
            "contact_info",
            "report_id",
            "domain",
            "begin",
            "end",
            "successful",
            "failed",
            "received_at",
        ]


class TlsReportDetailSerializer(TlsReportSerializer):
    policies = TlsPolicySerializer(many=True, read_only=True)

    class Meta(TlsReportSerializer.Meta):
        fields = [*TlsReportSerializer.Meta.fields, "policies"]


class FailureReportSerializer(Base):
    source_ip = serializers.CharField(allow_null=True)

    class Meta:
        model = FailureReport
        fields = [
            "id",
            "domain",
            "org_name",
            "report_id",
            "feedback_type",
            "arrival_date",
            "source_ip",
            "original_mail_from",
            "auth_failure",
            "delivery_result",
            "dkim_domain",
            "dkim_selector",
            "identity_alignment",
            "received_at",
        ]


class SourceSerializer(serializers.Serializer):
    source_ip = serializers.CharField()
    messages = serializers.IntegerField()
    passed = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True)


class ReportSummarySerializer(serializers.Serializer):
    """The domain's report page's summary: totals of the days since `since`."""

    domain = serializers.CharField()
    since = serializers.DateField()
    messages = serializers.IntegerField()
    dmarc_pass = serializers.IntegerField()
    dkim_pass = serializers.IntegerField()
    spf_pass = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    rejected = serializers.IntegerField()
    sources = serializers.IntegerField()
    dmarc_rate = serializers.FloatField(allow_null=True)
    dkim_rate = serializers.FloatField(allow_null=True)
    spf_rate = serializers.FloatField(allow_null=True)
    top_sources = SourceSerializer(many=True)


class DayVolumeSerializer(serializers.Serializer):
    """One day of the domain's chart: the stack (pass, fail delivered, quarantined, rejected)
    adds up to the day's messages."""

    day = serializers.DateField()
    messages = serializers.IntegerField()
    dmarc_pass = serializers.IntegerField()
    pass_delivered = serializers.IntegerField()
    fail_none = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True)


class ReportSeriesSerializer(serializers.Serializer):
    """The domain's messages per day over a range (its report page's chart, as data)."""

    domain = serializers.CharField()
    since = serializers.DateField()
    until = serializers.DateField()
    days = DayVolumeSerializer(many=True)


class SenderSerializer(serializers.Serializer):
    """One sender of a domain over a range (`manage.py senders --json`'s line)."""

    service = serializers.CharField(allow_null=True)
    service_type = serializers.CharField(allow_null=True)
    base_domain = serializers.CharField(allow_blank=True, allow_null=True)
    ptr = serializers.CharField(allow_blank=True, allow_null=True)
    fcrdns = serializers.BooleanField(allow_null=True)
    ips = serializers.IntegerField()
    country = serializers.CharField(allow_blank=True, allow_null=True)
    messages = serializers.IntegerField()
    dmarc_pass = serializers.IntegerField()
    spf_aligned = serializers.IntegerField()
    dkim_aligned = serializers.IntegerField()
    classification = serializers.ChoiceField(
        choices=["authorised", "forwarded", "failing_authorised", "suspicious"]
    )


class FailingSenderSerializer(serializers.Serializer):
    sender = serializers.CharField()
    messages = serializers.IntegerField()
    causes = serializers.ListField(child=serializers.CharField())


class ReadinessSerializer(serializers.Serializer):
    """What one step stricter of the DMARC policy would have done in the range."""

    policy = serializers.CharField()
    next_step = serializers.CharField(allow_null=True)
    messages = serializers.IntegerField()
    affected = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    legitimate = serializers.IntegerField()
    spoofing = serializers.IntegerField()
    failing_authorised = FailingSenderSerializer(many=True)
    recommendation = serializers.CharField()


class SendersSerializer(serializers.Serializer):
    """Who sent in the domain's name over a range, and its policy readiness (the senders
    page, as data)."""

    domain = serializers.CharField()
    since = serializers.DateField()
    until = serializers.DateField()
    senders = SenderSerializer(many=True)
    readiness = ReadinessSerializer()


class OutcomeSerializer(serializers.Serializer):
    """One report (or refused payload) of an uploaded file: `import_reports --json`'s line."""

    file = serializers.CharField()
    status = serializers.ChoiceField(["imported", "duplicate", "invalid"])
    kind = serializers.CharField(allow_null=True)
    org_name = serializers.CharField(allow_null=True, allow_blank=True)
    report_id = serializers.CharField(allow_null=True, allow_blank=True)
    domain = serializers.CharField(allow_null=True, allow_blank=True)
    records = serializers.IntegerField(allow_null=True)
    messages = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True, allow_blank=True)


class UploadFileSerializer(Base):
    outcomes = serializers.SerializerMethodField()

    class Meta:
        model = UploadFile
        fields = ["name", "state", "error", "started_at", "finished_at", "outcomes"]

    @extend_schema_field(OutcomeSerializer(many=True))
    def get_outcomes(self, file) -> list:
        from reports.uploads import outcomes_of

        return [outcome.as_json() for outcome in outcomes_of([file])]


class UploadSerializer(Base):
    files = UploadFileSerializer(many=True, read_only=True)
    pending = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = ["id", "created_at", "pending", "url", "files"]

    def get_pending(self, upload) -> int:
        return sum(file.pending for file in upload.files.all())

    def get_url(self, upload) -> str:
        return reverse("api:upload-detail", args=[upload.pk])


class UploadRequestSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField())


# --- alert channels, tokens ------------------------------------------------------------------


class DeliverySerializer(Base):
    payload = serializers.SerializerMethodField()

    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "created_at",
            "subject",
            "state",
            "attempts",
            "last_error",
            "response_status",
            "sent_at",
            "is_test",
            "payload",
        ]

    @extend_schema_field(AlertPayloadSerializer)
    def get_payload(self, delivery) -> dict:
        """What the webhook was sent (built by AlertPayloadSerializer when it was made)."""
        return delivery.payload


class ChannelSerializer(Base):
    target = serializers.SerializerMethodField()

    class Meta:
        model = AlertChannel
        fields = [
            "id",
            "kind",
            "name",
            "target",
            "enabled",
            "consecutive_failures",
            "disabled_reason",
            "created_at",
        ]

    def get_target(self, channel) -> str:
        """A webhook URL's path (often itself a secret) only for owners, as on the page."""
        from domains.alerts import shown_target

        return shown_target(channel, full=self.context.get("full_targets", False))


class TokenSerializer(Base):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "scope", "shown", "created_at", "expires_at", "last_used_at"]
