from django.urls import path

from domains import views

app_name = "domains"
urlpatterns = [
    path("", views.domain_list, name="list"),
    path("add/", views.domain_add, name="add"),
    path("<id:pk>/", views.domain_detail, name="detail"),
    path("<id:pk>/edit/", views.domain_edit, name="edit"),
    path("<id:pk>/delete/", views.domain_delete, name="delete"),
    path("<id:pk>/live/", views.domain_live, name="live"),
    path("<id:pk>/check/", views.domain_check, name="check"),
    path("<id:pk>/check/<id:check_pk>/", views.check_status, name="check_status"),
]
