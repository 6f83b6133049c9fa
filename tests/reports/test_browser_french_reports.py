"""The reports in French in a real browser: sign in (English), switch to French with the
footer's switcher (POST /language/), and read a report's page and the senders page in French,
numbers written the French way."""

import pytest
from playwright.sync_api import expect

from domains.models import Domain
from reports.models import AggregateReport
from tests.reports.test_french_pages import NBSP
from tests.reports.test_senders import NICE, OUTLOOK, ZOHO, imported
from tests.test_browser import chromium_page, sign_in


@pytest.mark.django_db(transaction=True)
def test_switch_to_french_and_read_the_reports(live_server, alice, acme):
    domain = Domain.objects.create(organization=acme, name="example.com")
    imported(acme, NICE, ZOHO, OUTLOOK)  # their addresses stay unlooked-up: no worker here
    report = AggregateReport.objects.get(domain="example.com", message_count=3047)
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)
        page.goto(f"{base}/reports/aggregate/{report.pk}/")
        expect(page.locator("main")).to_contain_text("Policy published")

        switcher = page.locator("footer form.language-switch")
        switcher.locator("select[name=language]").select_option("fr")
        switcher.locator("button[type=submit]").click()
        page.wait_for_url(f"{base}/reports/aggregate/{report.pk}/")  # back where it was
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        main = page.locator("main")
        expect(main).to_contain_text("Politique publiée")
        expect(main).to_contain_text(f"3{NBSP}047 en 20 enregistrements")
        expect(main).not_to_contain_text("Policy published")

        page.click("a:text-is('Tous les rapports de example.com')")
        page.wait_for_url(f"{base}/reports/domain/{domain.pk}/")
        page.click("a:text-is('Expéditeurs de example.com')")
        page.wait_for_url(f"{base}/reports/domain/{domain.pk}/senders/")
        page.select_option("#range-choice", "custom")
        page.fill("#range-since", "2020-01-01")
        page.fill("#range-until", "2024-12-31")
        page.click("form.range-form button[type=submit]")
        page.wait_for_url(f"{base}/reports/domain/{domain.pk}/senders/?*")
        expect(page.locator("h1")).to_contain_text("Expéditeurs")
        advice = page.locator("[data-recommendation]")
        expect(advice).to_contain_text(
            f"Passez à p=quarantine{NBSP}: 99,7{NBSP}% de vos messages sont conformes DMARC"
        )
        expect(page.locator("#readiness-title")).to_contain_text("Prêt pour une politique")
        expect(page.locator("table.senders")).to_contain_text("Classement")
        shown = page.locator("main").inner_text()
    assert "Move to" not in shown and "Policy readiness" not in shown
