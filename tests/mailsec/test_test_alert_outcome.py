"""What "Send test" says about an e-mail channel (issue 14): without an SMTP server
(MAILSEC_EMAIL_HOST unset) the message is only written to the log, and the page says so."""

from domains.models import AlertDelivery
from tests.conftest import client_for
from tests.domains.test_alerts import email_channel


def _send_test(user, channel) -> str:
    response = client_for(user).post(f"/settings/channels/{channel.pk}/test/", follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_without_smtp_server_the_page_says_the_alert_went_to_the_log(alice, acme, settings, capsys):
    # What settings.py chooses when MAILSEC_EMAIL_HOST is unset.
    settings.EMAIL_HOST = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    channel = email_channel(acme, "ops@acme.test")
    page = _send_test(alice, channel)
    assert "Test alert sent" not in page
    assert f"Test alert to {channel.name} written to the web server&#x27;s log" in page
    assert "MAILSEC_EMAIL_HOST" in page
    # ... and that is where it is.
    assert "mailsec: test alert to" in capsys.readouterr().out
    assert AlertDelivery.objects.get().state == AlertDelivery.State.SENT


def test_with_an_smtp_server_the_alert_is_sent(alice, acme, settings, mailoutbox):
    settings.EMAIL_HOST = "smtp.acme.test"
    channel = email_channel(acme, "ops@acme.test")
    page = _send_test(alice, channel)
    assert f"Test alert sent to {channel.name}." in page
    [message] = mailoutbox
    assert message.to == ["ops@acme.test"]
