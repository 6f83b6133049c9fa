from django.urls import path

from domains import views

app_name = "domains"
urlpatterns = [
    path("", views.domain_list, name="list"),
    path("add/", views.domain_add, name="add"),
    path("<int:pk>/", views.domain_detail, name="detail"),
    path("<int:pk>/edit/", views.domain_edit, name="edit"),
    path("<int:pk>/delete/", views.domain_delete, name="delete"),
    path("<int:pk>/check/", views.domain_check, name="check"),
    path("<int:pk>/check/<int:check_pk>/", views.check_status, name="check_status"),
]
