"""The senders through the real worker and a real browser: reports uploaded, parsed and their
addresses looked up (in the tests' knot) by a `celery worker` process; then the senders page
in Chromium: mark a sender as ours, see the advice change, change the range, download the CSV."""

import time
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from domains.models import Domain
from reports.models import SourceAddress
from tests.reports import senders_world as world
from tests.test_browser import CHECK_TIMEOUT_MS, chromium_page, sign_in

FIXTURES = Path(__file__).parent.parent / "fixtures" / "reports" / "aggregate"
NICE = FIXTURES / "parsedmarc__nice-input.xml"
ZOHO = FIXTURES / "parsedmarc__zoho.com!example.com!1581753600!1581840000.xml"
OUTLOOK = FIXTURES / "parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml"
CISCO = "Cisco Cloud Email Security (CES)"


def wait_for_addresses(count: int, worker) -> None:
    deadline = time.monotonic() + CHECK_TIMEOUT_MS / 1000
    while SourceAddress.objects.exclude(looked_up_at=None).count() < count:
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_the_worker_looks_up_the_addresses_of_an_imported_report(celery_worker, acme):
    call_command("import_reports", str(NICE), "--team", "Acme")
    wait_for_addresses(15, celery_worker)
    ses = SourceAddress.objects.get(ip="54.240.48.110")
    assert (ses.ptr, ses.fcrdns, ses.country) == (world.SES["54.240.48.110"], True, "US")


@pytest.mark.django_db(transaction=True)
def test_senders_in_the_browser(live_server, celery_worker, alice, acme):
    domain = Domain.objects.create(organization=acme, name="example.com")
    base = live_server.url
    senders_url = f"{base}/reports/domain/{domain.pk}/senders/"
    with chromium_page() as page:
        sign_in(page, base)
        page.goto(f"{base}/reports/upload/")
        page.set_input_files("input[type=file]", [str(NICE), str(ZOHO), str(OUTLOOK)])
        page.click("main button:text-is('Upload')")
        page.wait_for_url(f"{base}/reports/upload/*/")
        expect(page.locator(".upload-status")).to_contain_text(
            "All 3 files read", timeout=CHECK_TIMEOUT_MS
        )
        # From the domain's reports page to its senders, then the range of the fixtures.
        page.goto(f"{base}/reports/domain/{domain.pk}/")
        page.click("a:text-is('Senders of example.com')")
        page.wait_for_url(senders_url)
        choose_range(page, "2020-01-01", "2024-12-31")
        table = page.locator("table.senders")
        deadline = time.monotonic() + CHECK_TIMEOUT_MS / 1000
        while "Amazon SES" not in table.inner_text():  # the worker is still looking up
            assert time.monotonic() < deadline, table.inner_text()
            time.sleep(0.5)
            page.reload()
        advice = page.locator("[data-recommendation]")
        expect(advice).to_contain_text("Move to p=quarantine: 99.7% of your mail passes DMARC")
        before = advice.inner_text()
        cisco = table.locator("tr", has_text=CISCO)
        expect(cisco).to_contain_text("Suspicious")
        cisco.locator("button[name=mark][value^='ours ']").click()
        expect(advice).to_contain_text(f"the only failing authorised sender is {CISCO}")
        after = advice.inner_text()
        expect(table.locator("tr", has_text=CISCO)).to_contain_text("Failing authorised")
        expect(page.locator("#range-since")).to_have_value("2020-01-01")  # kept through the POST
        choose_range(page, "2024-01-01", "2024-12-31")
        expect(table).not_to_contain_text(CISCO)
        expect(table).to_contain_text("Amazon SES")
        with page.expect_download() as download:
            page.click("a:text-is('Download CSV')")
        saved = Path(download.value.path()).read_text()
        name = download.value.suggested_filename
    assert before != after
    assert name == "senders-example.com-2024-01-01-2024-12-31.csv"
    assert saved.startswith("sender,service,service_type,base_domain,ptr,fcrdns,ips")
    assert "Amazon SES,Amazon SES,SaaS,amazonses.com" in saved
    assert CISCO not in saved


def choose_range(page, since: str, until: str) -> None:
    page.select_option("#range-choice", "custom")
    page.fill("#range-since", since)
    page.fill("#range-until", until)
    page.click("form.range-form button:text-is('Show')")
    page.wait_for_url(f"**/senders/?range=custom&since={since}&until={until}")
