from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from mailsec import views

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
    path("healthz", views.healthz, name="healthz"),
    path("team/switch/", views.switch_team, name="switch_team"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/team/", views.team_update, name="team_update"),
    path("settings/teams/new/", views.team_create, name="team_create"),
    path("settings/members/add/", views.member_add, name="member_add"),
    path("settings/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("settings/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("settings/alerts/", views.alert_preferences, name="alert_preferences"),
    path("settings/channels/add/", views.channel_add, name="channel_add"),
    path("settings/channels/<int:pk>/enable/", views.channel_enable, name="channel_enable"),
    path("settings/channels/<int:pk>/disable/", views.channel_disable, name="channel_disable"),
    path("settings/channels/<int:pk>/delete/", views.channel_delete, name="channel_delete"),
    path("settings/channels/<int:pk>/test/", views.channel_test, name="channel_test"),
    path("domains/", include("domains.urls")),
    path("reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
]
