"""Stored reports in the admin: to look at, not to edit (they are what the reporters sent)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from reports.models import AggregateReport, FailureReport, RawInput, TlsPolicy, TlsReport


class ReadOnlyAdmin(admin.ModelAdmin):
    """Every field shown, none editable; rows come from ingestion only. Deleting stays
    possible for superusers (a report still pointing at an input protects it)."""

    exclude: tuple = ()
    extra_readonly: tuple = ()

    def get_readonly_fields(self, request, obj=None):
        shown = [f.name for f in self.model._meta.concrete_fields if f.name not in self.exclude]
        return [*shown, *self.extra_readonly]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.display(description="Raw input")
def raw_link(obj) -> str:
    if obj.raw_id is None:
        return "deleted by retention"
    url = reverse("admin:reports_rawinput_change", args=[obj.raw_id])
    return format_html('<a href="{}">input #{}</a>', url, obj.raw_id)


@admin.register(RawInput)
class RawInputAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "status", "source", "size", "received_at"]
    list_filter = ["status", "source", "organization"]
    search_fields = ["name", "reason"]
    list_select_related = ["uploaded_by", "organization"]
    # The bytes may be large and are whatever a stranger sent: downloaded, never rendered.
    exclude = ("content",)
    extra_readonly = ("download",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    @admin.display(description="Original")
    def download(self, obj):
        return format_html('<a href="{}">Download</a>', reverse("reports:raw", args=[obj.pk]))


@admin.register(AggregateReport)
class AggregateReportAdmin(ReadOnlyAdmin):
    list_display = [
        "org_name", "domain", "organization", "begin", "end", "record_count", "message_count"
    ]  # fmt: skip
    list_filter = ["organization"]
    list_select_related = ["organization"]
    search_fields = ["domain", "org_name", "report_id"]
    date_hierarchy = "begin"
    exclude = ("raw",)
    extra_readonly = (raw_link,)


class TlsPolicyInline(admin.TabularInline):
    model = TlsPolicy
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TlsReport)
class TlsReportAdmin(ReadOnlyAdmin):
    list_display = ["org_name", "domain", "organization", "begin", "end", "successful", "failed"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    search_fields = ["domain", "org_name", "report_id"]
    date_hierarchy = "begin"
    exclude = ("raw",)
    extra_readonly = (raw_link,)
    inlines = [TlsPolicyInline]


@admin.register(FailureReport)
class FailureReportAdmin(ReadOnlyAdmin):
    list_display = ["domain", "organization", "arrival_date", "source_ip", "auth_failure"]
    list_filter = ["feedback_type", "organization"]
    list_select_related = ["organization"]
    search_fields = ["domain", "org_name", "source_ip", "original_mail_from"]
    exclude = ("raw",)
    extra_readonly = (raw_link,)
