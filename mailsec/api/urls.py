"""/api/v1/: one router for the API's resources, the OpenAPI schema, and its docs page."""

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import SimpleRouter

from mailsec.api.channels import ChannelViewSet
from mailsec.api.domains import CheckViewSet, DomainViewSet, FindingKindViewSet, RunViewSet
from mailsec.api.reports import (
    AggregateReportViewSet,
    FailureReportViewSet,
    TlsReportViewSet,
    UploadViewSet,
)

app_name = "api"

# Routes as path()s with the project's converters, like every other URL (and their walks).
router = SimpleRouter(use_regex_path=False)
router.register("domains", DomainViewSet, basename="domain")
router.register("runs", RunViewSet, basename="run")
router.register("checks", CheckViewSet, basename="check")
router.register("finding-kinds", FindingKindViewSet, basename="finding-kind")
router.register("reports/aggregate", AggregateReportViewSet, basename="aggregate-report")
router.register("reports/tls", TlsReportViewSet, basename="tls-report")
router.register("reports/failure", FailureReportViewSet, basename="failure-report")
router.register("uploads", UploadViewSet, basename="upload")
router.register("channels", ChannelViewSet, basename="channel")


urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="schema",
    ),
    # A page for people, behind the login like every page (DRF's views skip Django's login
    # redirect: the API answers 401 itself). Its script is a file of its own (the split
    # view), so no inline script is allowed; Swagger UI's stylesheet draws its icons as data:
    # SVG images, allowed on this page only.
    path(
        "docs/",
        csp_update({"img-src": ["data:"]})(
            login_required(
                SpectacularSwaggerSplitView.as_view(
                    url_name="api:schema",
                    template_name="api/docs.html",
                    permission_classes=[IsAuthenticated],
                )
            )
        ),
        name="docs",
    ),
]
urlpatterns += router.urls
