from django.contrib import admin

from domains.models import Domain, Membership, Organization, ServerProbe


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "check_interval", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name"]
    list_select_related = ["organization"]


@admin.register(ServerProbe)
class ServerProbeAdmin(admin.ModelAdmin):
    """Read-only: probes are written by the probe runs, and shared by every domain using them."""

    list_display = ["host", "address", "port", "service", "tls_mode", "probed_at"]
    list_filter = ["service", "tls_mode"]
    search_fields = ["host", "address"]
    readonly_fields = [
        "key",
        "host",
        "address",
        "port",
        "service",
        "tls_mode",
        "result",
        "probed_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
