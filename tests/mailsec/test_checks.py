"""The system checks that warn about legal but dangerous settings."""

from mailsec.checks import deployment_settings


def ids() -> set[str]:
    return {problem.id for problem in deployment_settings(None)}


def test_a_safe_configuration_gives_no_warning(settings):
    settings.DEBUG = False
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.MAILSEC_ENCRYPTION_KEYS = ["x"]
    assert ids() == set()


def test_each_danger_has_its_warning(settings):
    settings.DEBUG = True
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = True
    settings.ALLOWED_HOSTS = ["mailsec.example.com"]
    settings.HTTPS = False
    settings.MAILSEC_ENCRYPTION_KEYS = []
    assert ids() == {"mailsec.W001", "mailsec.W002", "mailsec.W003", "mailsec.W004"}
