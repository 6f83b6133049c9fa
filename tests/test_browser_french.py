"""French in a real browser (issue 18): sign in, switch to French with the footer's switcher,
read a domain's page in French, add an e-mail alert channel (it takes the reader's language)
and send it a test alert, which arrives in French."""

from django.core import mail
from playwright.sync_api import expect

from domains.models import AlertChannel, Domain
from tests.domains.test_domain_headline import rollup
from tests.domains.test_pages import NO_SPF, add_run
from tests.test_browser import chromium_page, sign_in

NBSP = "\xa0"


def test_switch_to_french_and_read_a_domain_and_an_alert(live_server, alice, acme):
    domain = Domain.objects.create(organization=acme, name="acme.example")
    add_run(domain, score=40, grade="D", findings=[NO_SPF])
    rollup("acme.example", 1, "192.0.2.1", 12345, 12000)
    base = live_server.url

    with chromium_page() as page:
        sign_in(page, base)
        expect(page.locator("h1")).to_contain_text("Domains")

        page.select_option("#language-switch", "fr")
        page.click("footer .language-switch button[type=submit]")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator("h1")).to_contain_text("Domaines")
        expect(page.locator("main")).to_contain_text("Constat ouvert le plus grave")

        page.click("table.domains a:text-is('acme.example')")
        expect(page.locator("h1")).to_contain_text("acme.example")
        expect(page.locator("button:text-is('Vérifier maintenant')")).to_be_visible()
        expect(page.locator("#findings-title")).to_have_text("Constats")
        expect(page.locator("[data-headline=messages]")).to_have_text(f"12{NBSP}345")
        expect(page.locator(".severity-head .severity").first).to_have_text("critique")
        domain_page = page.locator("main").inner_text()

        page.goto(f"{base}/settings/channels/")
        expect(page.locator("#id_language")).to_have_value("fr")
        add = page.locator("form[action$='/settings/channels/add/']")
        add.locator("input[name=name]").fill("dsi")
        add.locator("[name=target]").fill("dsi@acme.test")
        add.locator("button[type=submit]").click()
        page.locator("form[action$='/test/'] button[type=submit]").first.click()
        page.wait_for_load_state()

    for english in ("Check now", "Findings", "DMARC reports", "Last checked"):
        assert english not in domain_page, english
    assert AlertChannel.objects.get(name="dsi").language == "fr"
    [message] = mail.outbox
    assert message.to == ["dsi@acme.test"]
    assert message.subject == f"mailsec{NBSP}: alerte de test vers dsi"
    assert "Ceci est une alerte de test de mailsec" in message.body
    assert f"example.com{NBSP}: Note en baisse" in message.body
    assert "This is a test alert" not in message.body
