"""The analytics pages in a real browser (Debian's Chromium through Playwright, as
tests/test_browser.py): import reports, open the domain's reports, see the chart, change the
range, download the chart's CSV; the overview, the SMTP TLS page and a TLS report's page."""

from pathlib import Path

from playwright.sync_api import expect

from domains.models import Domain
from reports.ingest import ingest_input
from tests.reports.test_analytics import EXPECTED_CSV
from tests.reports.test_spread import BEGIN, END, RECORDS, report_xml
from tests.test_browser import chromium_page, sign_in

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
TLS = "smtp_tls/parsedmarc__rfc8460.json"


def test_range_chart_and_csv_download_in_a_browser(live_server, alice, acme, tmp_path):
    domain = Domain.objects.create(organization=acme, name="acme.example")
    tls_domain = Domain.objects.create(organization=acme, name="company-y.example")
    ingest_input(report_xml(BEGIN, END, RECORDS), "r.xml", via="upload", organization=acme)
    ingest_input(str(FIXTURES / TLS), TLS, via="upload", organization=acme)
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)

        page.goto(f"{base}/reports/domain/{domain.pk}/")
        chart = page.locator("#volume-chart svg.chart")
        expect(chart).to_be_visible()
        expect(page.locator("#summary-title")).to_contain_text("Last 30 days")
        box = chart.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100

        # The range: custom dates, through the plain form.
        page.select_option("#range-choice", "custom")
        page.fill("#range-since", "2026-03-01")
        page.fill("#range-until", "2026-03-03")
        page.click(".range-form button[type=submit]")
        page.wait_for_url("**range=custom**")
        expect(page.locator("#summary-title")).to_contain_text("2026-03-01 to 2026-03-03")
        expect(chart.locator("desc")).to_have_text(
            "16 messages from 2026-03-01 to 2026-03-03, 93.8% passing DMARC; "  # 15 of 16
            "5 quarantined, 1 rejected. Busiest day 2026-03-03 with 7 messages."
        )
        assert chart.locator("path.chart-layer").count() == 3  # pass, quarantined, rejected

        with page.expect_download() as download:
            page.click("a:text-is('CSV')")
        saved = tmp_path / "volume.csv"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "dmarc-acme.example-2026-03-01-2026-03-03.csv"
        assert saved.read_text() == EXPECTED_CSV

        # A preset again, then the TLS page of the RFC 8460 example and its report.
        page.select_option("#range-choice", "365")
        page.click(".range-form button[type=submit]")
        page.wait_for_url("**range=365**")
        expect(page.locator("#summary-title")).to_contain_text("Last 365 days")

        page.goto(
            f"{base}/reports/domain/{tls_domain.pk}/tls/?range=custom&since=2016-04-01&until=2016-04-01"
        )
        expect(page.locator("#tls-chart svg.chart")).to_be_visible()
        expect(page.locator("table.tls-failure-types")).to_contain_text("starttls-not-supported")
        page.click("table.tls-reports a")
        expect(page.locator("table.tls-failures")).to_contain_text("certificate-expired")

        page.goto(f"{base}/reports/overview/?range=365")
        expect(page.locator("#volume-chart svg.chart")).to_be_visible()
        expect(page.locator("table.overview-domains")).to_contain_text("acme.example")
