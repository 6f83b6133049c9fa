from django.urls import path

from reports import analytics_views, mailbox_views, sender_views, views

app_name = "reports"
urlpatterns = [
    path("", views.report_index, name="index"),
    path("upload/", views.report_upload, name="upload"),
    path("upload/<id:pk>/", views.upload_status, name="upload_status"),
    path("aggregate/<id:pk>/", views.aggregate_detail, name="aggregate"),
    path("domain/<id:domain_pk>/", views.domain_reports, name="domain"),
    path("refused/", views.refused_inputs, name="refused"),
    path("raw/<id:pk>/", views.raw_download, name="raw"),
    path("unclaimed/", views.unclaimed_reports, name="unclaimed"),
    path("unclaimed/assign/", views.assign_unclaimed, name="assign"),
]

# Analytics (reports/analytics_views.py): charts' data, the team's overview, TLS over time,
# single TLS and failure reports, the records export.
_CSV, _JSON = {"fmt": "csv"}, {"fmt": "json"}
urlpatterns += [
    path("overview/", analytics_views.overview, name="overview"),
    path("overview/volume.csv", analytics_views.overview_volume, _CSV, name="overview_volume_csv"),
    path(
        "overview/volume.json", analytics_views.overview_volume, _JSON, name="overview_volume_json"
    ),
    path(
        "domain/<id:domain_pk>/volume.csv",
        analytics_views.domain_volume,
        _CSV,
        name="domain_volume_csv",
    ),
    path(
        "domain/<id:domain_pk>/volume.json",
        analytics_views.domain_volume,
        _JSON,
        name="domain_volume_json",
    ),
    path("domain/<id:domain_pk>/tls/", analytics_views.domain_tls, name="domain_tls"),
    path(
        "domain/<id:domain_pk>/tls/sessions.csv",
        analytics_views.domain_tls_sessions,
        _CSV,
        name="domain_tls_csv",
    ),
    path(
        "domain/<id:domain_pk>/tls/sessions.json",
        analytics_views.domain_tls_sessions,
        _JSON,
        name="domain_tls_json",
    ),
    path("tls/<id:pk>/", analytics_views.tls_detail, name="tls"),
    path("failure/<id:pk>/", analytics_views.failure_detail, name="failure"),
    path("export.csv", analytics_views.export_records, name="export"),
]

# The report mailboxes (reports/mailbox_views.py).
urlpatterns += [
    path("mailboxes/", mailbox_views.mailbox_list, name="mailboxes"),
    path("mailboxes/add/", mailbox_views.mailbox_add, name="mailbox_add"),
    path("mailboxes/<id:pk>/edit/", mailbox_views.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<id:pk>/delete/", mailbox_views.mailbox_delete, name="mailbox_delete"),
    path("mailboxes/<id:pk>/test/", mailbox_views.mailbox_test, name="mailbox_test"),
    path("mailboxes/<id:pk>/fetch/", mailbox_views.mailbox_fetch, name="mailbox_fetch"),
    path("mailboxes/<id:pk>/facts/", mailbox_views.mailbox_facts, name="mailbox_facts"),
    path(
        "mailboxes/<id:pk>/passes/<id:pass_pk>/",
        mailbox_views.mailbox_pass,
        name="mailbox_pass",
    ),
]

# A domain's senders (reports/sender_views.py).
urlpatterns += [
    path("domain/<id:domain_pk>/senders/", sender_views.domain_senders, name="senders"),
    path("domain/<id:domain_pk>/senders/csv/", sender_views.senders_csv, name="senders_csv"),
    path("domain/<id:domain_pk>/senders/one/", sender_views.sender_detail, name="sender"),
    path(
        "domain/<id:domain_pk>/senders/one/volume.csv",
        sender_views.sender_volume,
        {"fmt": "csv"},
        name="sender_volume_csv",
    ),
    path(
        "domain/<id:domain_pk>/senders/one/volume.json",
        sender_views.sender_volume,
        {"fmt": "json"},
        name="sender_volume_json",
    ),
    path("domain/<id:domain_pk>/senders/mark/", sender_views.mark_sender, name="sender_mark"),
]
