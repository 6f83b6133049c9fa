"""E-mails in the reader's language (issue 18): an invitation in the language of the owner who
sends it (the one active on their request), a password reset in the language of the browser
that asks for it; English otherwise, word for word as before."""

from django.test import Client

from mailsec.models import Profile
from tests.conftest import client_for
from tests.domains.test_alerts import smtp  # noqa: F401 (a fixture: a real SMTP server)
from tests.mailsec.test_invitations import invite


def test_an_invitation_is_written_in_the_language_of_its_sender(smtp, alice):  # noqa: F811
    english = client_for(alice)
    invite(english, email="carol@example.test")
    french = client_for(alice)
    french.post("/settings/preferences/save/", {"language": "fr", "time_zone": "Europe/Paris"})
    assert Profile.objects.get(user=alice).language == "fr"
    path = invite(french, email="dave@example.test")
    first, second = smtp.messages()
    assert first["Subject"] == "You are invited to Acme on mailsec"
    assert "alice invites you to the team Acme on mailsec, as viewer." in first.get_content()
    assert second["To"] == "dave@example.test"
    # (a long encoded subject is folded: the parser keeps the space of the fold)
    assert second["Subject"].strip() == "Vous êtes invité à rejoindre Acme sur mailsec"
    body = second.get_content()
    assert (
        "alice vous invite à rejoindre l\N{RIGHT SINGLE QUOTATION MARK}équipe Acme sur mailsec"
        in body
    )
    assert "une fois, jusqu\N{RIGHT SINGLE QUOTATION MARK}au " in body and path in body
    assert " CET)" in body or " CEST)" in body  # the sender's zone


def test_a_password_reset_is_written_in_the_language_of_the_browser(smtp, alice):  # noqa: F811
    Client().post(
        "/password-reset/", {"email": "alice@example.test"}, HTTP_ACCEPT_LANGUAGE="fr-FR,fr"
    )
    Client().post("/password-reset/", {"email": "alice@example.test"}, HTTP_ACCEPT_LANGUAGE="en")
    french, english = smtp.messages()
    assert french["Subject"].strip() == "Réinitialiser votre mot de passe mailsec"
    assert "le mot de passe du compte mailsec alice" in french.get_content()
    assert english["Subject"] == "Reset your mailsec password"
    assert "the password of the mailsec account alice." in english.get_content()
