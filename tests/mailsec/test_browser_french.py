"""The interface in French, in a real browser (issue 18): an anonymous visitor switches the
login page to French with the footer's switcher; signed in, a user chooses French and a time
zone on the preferences page, which then speaks French and tells the time in that zone."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from mailsec.models import Profile
from tests.test_browser import chromium_page

ZONE = "Asia/Tokyo"  # far from UTC, without daylight saving: its hour is never the server's


@pytest.mark.django_db(transaction=True)
def test_switch_to_french_then_choose_a_time_zone(live_server, alice):
    base = live_server.url
    with chromium_page() as page:
        page.set_extra_http_headers({"Accept-Language": "en"})
        page.goto(f"{base}/login/")
        expect(page.locator("main h1")).to_have_text("Log in")
        expect(page.locator("footer label[for=language-switch]")).to_have_text("Language")

        # Anonymous: the switcher sets a cookie and comes back to the same page, in French.
        page.select_option("#language-switch", "fr")
        page.click("footer button[type=submit]")
        page.wait_for_url(f"{base}/login/")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator("main h1")).to_have_text("Se connecter")
        expect(page.locator("footer label[for=language-switch]")).to_have_text("Langue")
        expect(page.locator("footer button[type=submit]")).to_have_text("Changer")

        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "correct horse 42")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/domains/")
        expect(page.locator("nav.mainnav")).to_contain_text("Paramètres")

        page.goto(f"{base}/settings/preferences/")
        expect(page.locator("main h2")).to_have_text("Langue et fuseau horaire")
        expect(page.locator("label[for=id_time_zone]")).to_have_text("Fuseau horaire")
        page.select_option("#id_language", "fr")
        page.select_option("#id_time_zone", ZONE)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/settings/preferences/")
        expect(page.locator("ul.messages")).to_have_text("Vos préférences sont enregistrées.")
        shown = page.locator("main p", has_text="Votre heure actuelle").inner_text()
        after = datetime.now(ZoneInfo(ZONE))

    # French date format ("5 décembre 2026 15:42"), in the chosen zone, named with it.
    assert "\u00a0:" in shown and f"({ZONE})" in shown, shown
    moments = {after - timedelta(minutes=minutes) for minutes in range(3)}
    assert any(moment.strftime("%H:%M") in shown for moment in moments), (shown, after)
    months = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    assert months.split()[after.month - 1] in shown, shown
    profile = Profile.objects.get(user=alice)
    assert (profile.language, profile.time_zone) == ("fr", ZONE)
