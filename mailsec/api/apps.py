from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "mailsec.api"
    label = "api"
    verbose_name = "API"
