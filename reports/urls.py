from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.report_index, name="index"),
    path("upload/", views.report_upload, name="upload"),
    path("aggregate/<int:pk>/", views.aggregate_detail, name="aggregate"),
    path("domain/<int:domain_pk>/", views.domain_reports, name="domain"),
    path("refused/", views.refused_inputs, name="refused"),
    path("raw/<int:pk>/", views.raw_download, name="raw"),
    path("unclaimed/", views.unclaimed_reports, name="unclaimed"),
]
