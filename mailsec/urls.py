from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from mailsec import health, metrics, views
from mailsec.accounts import tokens as token_views
from mailsec.accounts import views as account_views
from mailsec.ids import IdConverter

register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.home, name="home"),
    path("setup/", views.setup, name="setup"),
    path("login/", views.MailsecLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("account/two-factor/", account_views.two_factor_page, name="two_factor"),
    path("account/two-factor/enrol/", account_views.two_factor_enrol, name="two_factor_enrol"),
    path("account/two-factor/codes/", account_views.two_factor_codes, name="two_factor_codes"),
    path(
        "account/two-factor/disable/",
        account_views.two_factor_disable,
        name="two_factor_disable",
    ),
    path("login/verify/", account_views.two_factor_verify, name="two_factor_verify"),
    path("password-reset/", account_views.password_reset, name="password_reset"),
    path("password-reset/sent/", account_views.password_reset_done, name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        account_views.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        account_views.password_reset_complete,
        name="password_reset_complete",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include("mailsec.api.urls")),
    path("favicon.ico", views.favicon, name="favicon"),
    path("team/switch/", views.switch_team, name="switch_team"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/members/", views.settings_team, name="settings_team"),
    path("settings/sign-in/", views.settings_security, name="settings_security"),
    path("settings/channels/", views.settings_alerts, name="settings_alerts"),
    path("settings/mailboxes/", views.settings_mailboxes, name="settings_mailboxes"),
    path("settings/preferences/", account_views.preferences, name="settings_preferences"),
    path(
        "settings/preferences/save/",
        account_views.preferences_save,
        name="settings_preferences_save",
    ),
    path("language/", account_views.set_language, name="set_language"),
    path("settings/team/", views.team_update, name="team_update"),
    path("settings/teams/new/", views.team_create, name="team_create"),
    path("settings/security/", account_views.team_security, name="team_security"),
    path("settings/audit/", account_views.audit_log, name="audit_log"),
    path("settings/tokens/", token_views.settings_tokens, name="settings_tokens"),
    path("settings/tokens/<id:pk>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("settings/invitations/", account_views.invitation_create, name="invitation_create"),
    path(
        "settings/invitations/<id:pk>/link/",
        account_views.invitation_link,
        name="invitation_link",
    ),
    path(
        "settings/invitations/<id:pk>/revoke/",
        account_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invite/<str:token>/", account_views.invitation, name="invitation"),
    path("settings/members/<id:pk>/role/", views.member_role, name="member_role"),
    path("settings/members/<id:pk>/remove/", views.member_remove, name="member_remove"),
    path("settings/alerts/", views.alert_preferences, name="alert_preferences"),
    path("settings/channels/add/", views.channel_add, name="channel_add"),
    path("settings/channels/<id:pk>/enable/", views.channel_enable, name="channel_enable"),
    path("settings/channels/<id:pk>/disable/", views.channel_disable, name="channel_disable"),
    path("settings/channels/<id:pk>/delete/", views.channel_delete, name="channel_delete"),
    path("settings/channels/<id:pk>/test/", views.channel_test, name="channel_test"),
    path("settings/channels/<id:pk>/secret/", views.channel_secret, name="channel_secret"),
    path("domains/", include("domains.urls")),
    path("reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
]
handler404 = "mailsec.views.not_found"
