from django.apps import AppConfig


class MailsecConfig(AppConfig):
    name = "mailsec"
    verbose_name = "mailsec"

    def ready(self):
        from mailsec import checks  # noqa: F401  (registers the system checks)
