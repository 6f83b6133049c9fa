"""A user's language and time zone: chosen on the settings page or the footer's switcher, else
the browser's Accept-Language; kept on the profile, copied into the session at sign-in."""

import re

from django.test import Client, RequestFactory
from django.utils import timezone, translation

from mailsec.accounts.locale import LANGUAGE_KEY, TIME_ZONE_KEY, UserLocaleMiddleware
from mailsec.models import Profile
from tests.conftest import client_for


def page_language(response) -> str:
    return re.search(r'<html lang="([^"]+)">', response.content.decode()).group(1)


def test_the_browser_decides_when_nobody_chose(alice):
    client = client_for(alice)
    assert page_language(client.get("/domains/")) == "en"
    french = client.get("/domains/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    assert page_language(french) == "fr"
    assert "Accept-Language" in french["Vary"]
    assert page_language(client.get("/domains/", HTTP_ACCEPT_LANGUAGE="de")) == "en"


def test_the_users_choice_beats_the_browser_and_is_kept_for_the_next_sign_in(alice):
    client = client_for(alice)
    page = client.get("/settings/preferences/")
    assert page.status_code == 200 and "Europe/Paris" in page.content.decode()
    saved = client.post(
        "/settings/preferences/save/", {"language": "fr", "time_zone": "Europe/Paris"}
    )
    assert saved["Location"] == "/settings/preferences/"
    profile = Profile.objects.get(user=alice)
    assert (profile.language, profile.time_zone) == ("fr", "Europe/Paris")
    assert page_language(client.get("/domains/", HTTP_ACCEPT_LANGUAGE="en")) == "fr"
    # A new session (another browser) starts with the same choices.
    other = client_for(alice)
    assert other.session[LANGUAGE_KEY] == "fr" and other.session[TIME_ZONE_KEY] == "Europe/Paris"
    assert page_language(other.get("/domains/", HTTP_ACCEPT_LANGUAGE="en")) == "fr"


def test_back_to_the_browsers_language(alice):
    client = client_for(alice)
    client.post("/settings/preferences/save/", {"language": "fr", "time_zone": ""})
    client.post("/settings/preferences/save/", {"language": "", "time_zone": ""})
    assert LANGUAGE_KEY not in client.session and TIME_ZONE_KEY not in client.session
    assert page_language(client.get("/domains/", HTTP_ACCEPT_LANGUAGE="en")) == "en"


def test_an_unknown_zone_or_language_is_refused_and_nothing_is_saved(alice):
    client = client_for(alice)
    for choice in ({"language": "xx", "time_zone": ""}, {"language": "", "time_zone": "Mars/Base"}):
        page = client.post("/settings/preferences/save/", choice)
        assert page.status_code == 200
        assert "Select a valid choice" in page.content.decode()
    assert not Profile.objects.filter(user=alice).exclude(language="", time_zone="").exists()


def test_each_user_has_their_own(alice, bob):
    client_for(alice).post("/settings/preferences/save/", {"language": "fr", "time_zone": ""})
    assert page_language(client_for(bob).get("/domains/", HTTP_ACCEPT_LANGUAGE="en")) == "en"


def test_the_time_zone_is_active_during_the_request(rf: RequestFactory):
    request = rf.get("/")
    request.session = {TIME_ZONE_KEY: "America/New_York", LANGUAGE_KEY: "fr"}
    middleware = UserLocaleMiddleware(lambda r: None)
    try:
        middleware.process_request(request)
        assert timezone.get_current_timezone_name() == "America/New_York"
        assert translation.get_language() == "fr" and request.LANGUAGE_CODE == "fr"
        request.session = {TIME_ZONE_KEY: "Not/AZone"}
        middleware.process_request(request)
        assert timezone.get_current_timezone_name() == "UTC"
    finally:
        timezone.deactivate()
        translation.deactivate()


def test_the_footer_switcher_sets_a_cookie_before_sign_in(alice):
    client = Client()
    response = client.post("/language/", {"language": "fr", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert response.cookies["django_language"].value == "fr"
    assert response.cookies["django_language"]["httponly"]
    assert page_language(client.get("/login/", HTTP_ACCEPT_LANGUAGE="en")) == "fr"


def test_the_footer_switcher_saves_a_signed_in_users_choice(alice):
    client = client_for(alice)
    client.post("/language/", {"language": "fr", "next": "/domains/"})
    assert Profile.objects.get(user=alice).language == "fr"
    assert client.session[LANGUAGE_KEY] == "fr"


def test_the_footer_switcher_goes_nowhere_else_and_refuses_unknown_languages(db):
    client = Client()
    away = client.post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert away["Location"] == "/"
    assert client.post("/language/", {"language": "xx", "next": "/"}).status_code == 400
    assert client.get("/language/").status_code == 405


def test_the_footer_offers_every_language(alice):
    html = client_for(alice).get("/domains/").content.decode()
    assert 'action="/language/"' in html
    assert '<option value="fr" lang="fr"' in html and '<option value="en" lang="en"' in html
