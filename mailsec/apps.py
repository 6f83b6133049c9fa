from django.apps import AppConfig


class MailsecConfig(AppConfig):
    name = "mailsec"
    verbose_name = "mailsec"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from mailsec import checks  # noqa: F401  (registers the system checks)
        from mailsec.accounts.sessions import start_in_last_team

        user_logged_in.connect(start_in_last_team, dispatch_uid="mailsec-last-team")
