"""Password reset by e-mail (a signed, expiring, single-use link) when an SMTP server is
configured; no such page when none is."""

import re
import time
import uuid

from django.core.cache import cache
from django.test import Client, RequestFactory

from tests.conftest import client_for
from tests.domains.test_alerts import smtp  # noqa: F401 (a fixture: a real SMTP server)

NEW_PASSWORD = "a brand new pass phrase 7"


def test_no_smtp_server_no_reset(alice, settings):
    settings.EMAIL_HOST = None
    client = Client()
    assert client.get("/password-reset/").status_code == 404
    assert client.post("/password-reset/", {"email": "alice@example.test"}).status_code == 404
    assert "Forgot your password" not in client.get("/login/").content.decode()


def ask_for_a_link(smtp, email="alice@example.test") -> str:  # noqa: F811
    client = Client()
    response = client.post("/password-reset/", {"email": email})
    assert response["Location"] == "/password-reset/sent/"
    if not smtp.messages():
        return ""
    (message,) = smtp.messages()
    assert message["To"] == email
    return re.search(r"http://testserver(/password-reset/\S+)", message.get_content()).group(1)


def test_reset_by_e_mail(smtp, alice):  # noqa: F811
    assert "Forgot your password" in Client().get("/login/").content.decode()
    link = ask_for_a_link(smtp)
    client = Client()
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/password-reset/done/"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    logged = Client().post("/login/", {"username": "alice", "password": NEW_PASSWORD})
    assert logged.status_code == 302
    # The link worked once: the password it was signed with has changed.
    again = Client().get(link, follow=True).content.decode()
    assert "no longer valid" in again


def test_the_link_expires(smtp, alice, settings):  # noqa: F811
    settings.PASSWORD_RESET_TIMEOUT = 1
    link = ask_for_a_link(smtp)
    time.sleep(2.1)
    page = Client().get(link, follow=True).content.decode()
    assert "no longer valid" in page
    alice.refresh_from_db()
    assert alice.check_password("correct horse 42")


def test_an_unknown_address_gets_the_same_answer_and_no_mail(smtp, alice):  # noqa: F811
    assert ask_for_a_link(smtp, "nobody@example.test") == ""
    assert smtp.messages() == []


def test_the_settings_page_links_the_two_factor_page(alice):
    assert "/account/two-factor/" in client_for(alice).get("/settings/sign-in/").content.decode()


def test_a_client_asking_too_often_is_refused_and_an_address_gets_no_more_mail(
    smtp,  # noqa: F811
    alice,
    settings,
):
    """MAILSEC_PASSWORD_RESET_RATE an hour: past it from one client, a 429 (and no e-mail);
    past it for one address, from anywhere, the same answer as ever and no more e-mail."""
    from mailsec.accounts.views import ResetThrottle, reset_identities

    settings.MAILSEC_PASSWORD_RESET_RATE = 2
    # Counts live in the shared cache for an hour: this run's own client addresses.
    first, second = (f"192.0.2.{n}" for n in uuid.uuid4().bytes[:2])
    for address in (first, second):
        request = RequestFactory(REMOTE_ADDR=address).post("/password-reset/")
        for identity in reset_identities(request, "alice@example.test"):
            cache.delete(ResetThrottle(identity).get_cache_key(None, None))

    asking = Client(REMOTE_ADDR=first)
    for _ in range(2):
        assert asking.post("/password-reset/", {"email": "alice@example.test"}).status_code == 302
    assert len(smtp.messages()) == 2
    refused = asking.post("/password-reset/", {"email": "nobody@example.test"})
    assert refused.status_code == 429
    assert "Too many password reset requests" in refused.content.decode()
    assert len(smtp.messages()) == 2

    # alice's address was asked about twice: from another client, the usual answer, no e-mail.
    elsewhere = Client(REMOTE_ADDR=second)
    answer = elsewhere.post("/password-reset/", {"email": "Alice@Example.test"})
    assert answer["Location"] == "/password-reset/sent/"
    assert len(smtp.messages()) == 2
