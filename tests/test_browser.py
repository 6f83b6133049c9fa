"""The app in a real browser: Debian's Chromium driven by Playwright against the live server.

Log in, add a domain, press "Check now", and see its grade arrive without a reload: the check
runs on a real Celery worker (through the tests' Redis) that asks the tests' knot for DNS.
"""

from contextlib import contextmanager

import pytest
from playwright.sync_api import expect, sync_playwright

from domains.models import Domain
from tests.domains import test_probe_engine as probe_world
from tests.servers import need_binary

# No browser download (it cannot work here): Debian's chromium. The resolver rule keeps it from
# looking up anything but loopback (it would ask for Google's hosts).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
CHECK_TIMEOUT_MS = 90_000


@contextmanager
def chromium_page():
    """A page in a fresh headless Chromium; fails the test on any JavaScript error.

    Playwright's sync API runs an event loop in this thread while it is open, where Django
    refuses database calls: tests read the database before or after, not inside."""
    chromium = need_binary("chromium", "chromium")
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()
    assert errors == [], f"JavaScript errors on the pages: {errors}"


def sign_in(page, base: str) -> None:
    """alice through the login form, as a person does; on to the domains list."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "correct horse 42")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/domains/")


def log_in_add_and_check(page, base_url: str, worker) -> dict:
    """What the pages showed: the grade and score that arrived, and the reloaded verdict."""
    sign_in(page, base_url)

    page.click("text=Add domains")
    page.fill("textarea[name=names]", "good.test")
    page.click("main button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Added 1 domain")
    page.click("table.domains a:text-is('good.test')")
    expect(page.locator("h1")).to_contain_text("good.test")
    expect(page.locator(".verdict")).to_contain_text("has not been checked yet")

    page.evaluate("window.sameDocument = true")  # a full page load would wipe it out
    page.click("button:text-is('Check now')")
    status = page.locator("#check-status")
    expect(status).to_contain_text("Check", timeout=5_000)  # queued, running or done
    arrived = status.locator("[data-grade]")
    try:
        expect(arrived).to_be_visible(timeout=CHECK_TIMEOUT_MS)
    except AssertionError:
        pytest.fail(
            f"no grade shown; the progress says {status.inner_text()!r}; "
            f"worker log:\n{worker.output()}"
        )
    shown = {
        "same_document": page.evaluate("window.sameDocument"),
        "grade": arrived.get_attribute("data-grade"),
        "progress": status.inner_text(),
    }
    # No reload: the grade card, the checks, the findings and the chart update in place.
    expect(page.locator("table.categories")).to_contain_text("SPF")
    expect(page.locator("#verdict-grade [data-grade]")).to_be_visible()
    expect(page.locator("svg.chart circle")).to_have_count(1)
    shown["updated_grade"] = page.locator("#verdict-grade [data-grade]").inner_text()
    shown["updated_text"] = page.locator("#verdict-text").inner_text()
    shown["findings"] = page.locator("#domain-run").inner_text()
    shown["updated_records"] = page.locator("table.records").inner_text()
    shown["still_same_document"] = page.evaluate("window.sameDocument")
    page.reload()  # what the server renders for the page matches what was swapped in
    shown["reloaded_grade"] = page.locator(".verdict [data-grade]").inner_text()
    shown["records"] = page.locator("table.records").inner_text()
    shown["chart_points"] = page.locator("svg.chart circle").count()
    return shown


@pytest.mark.django_db(transaction=True)
def test_check_now_shows_the_grade_from_a_real_worker(live_server, celery_worker, alice):
    with chromium_page() as page:
        shown = log_in_add_and_check(page, live_server.url, celery_worker)

    domain = Domain.objects.get(name="good.test")
    assert domain.grade, "the worker stored no grade"
    assert shown["same_document"] is True  # the progress came without a reload
    assert shown["still_same_document"] is True  # the details came without a reload too
    assert shown["grade"] == shown["updated_grade"] == shown["reloaded_grade"] == domain.grade
    assert f"score {domain.score}" in shown["progress"]
    assert f"Score {domain.score} of 100" in shown["updated_text"]
    assert "not been checked yet" not in shown["updated_text"]
    assert "Findings" in shown["findings"]
    assert "v=spf1 mx -all" in shown["records"]  # what knot serves for good.test
    assert "v=spf1 mx -all" in shown["updated_records"]  # swapped in before the reload
    assert shown["chart_points"] == 1


@pytest.mark.django_db(transaction=True)
def test_upload_reports_and_see_them_on_the_domain_page(
    live_server, celery_worker, alice, acme, tmp_path
):
    """The upload answers at once; the real worker reads the files and the upload's page shows
    their outcomes as they come, without a reload."""
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "reports" / "aggregate"
    good = fixtures / "parsedmarc__usssa.com!example.com!1538784000!1538870399.xml"
    junk = tmp_path / "notes.txt"
    junk.write_text("not a report at all")
    domain = Domain.objects.create(organization=acme, name="example.com")
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)
        page.goto(f"{base}/reports/")
        page.click("a:text-is('Upload reports')")
        page.set_input_files("input[type=file]", [str(good), str(junk)])
        page.click("main button:text-is('Upload')")
        page.wait_for_url(f"{base}/reports/upload/*/")
        page.evaluate("window.sameDocument = true")  # gone if the page were reloaded
        results = page.locator("table.upload-results")
        expect(results.locator("tr.outcome-imported")).to_contain_text("usssa.com")
        expect(page.locator(".upload-status")).to_contain_text("All 2 files read")
        same_document = page.evaluate("window.sameDocument === true")
        expect(results.locator("tr.outcome-invalid")).to_contain_text("notes.txt")
        results.locator("tr.outcome-imported a:text-is('example.com')").click()
        page.wait_for_url(f"{base}/reports/domain/{domain.pk}/")
        reports_shown = page.locator("main").inner_text()
    assert "usssa.com" in reports_shown
    assert same_document


@pytest.fixture
def probe_worker(celery_queue, redis_url, django_db_blocker, tmp_path, knot_world, lab_trust_file):
    """A worker of its own on queues of its own, asking the probe world's knot, trusting the
    mail lab's CA (the session's worker asks the DNS checks' knot)."""
    import uuid

    from django.db import connection

    from mailsec.celery import app
    from mailsec.queues import celery_queue_settings
    from tests.servers import CeleryWorker, database_url

    prefix = f"probe-{uuid.uuid4().hex[:8]}-"
    with django_db_blocker.unblock():
        database = database_url(connection.settings_dict)
    worker = CeleryWorker(
        redis_url=redis_url,
        database=database,
        queue_prefix=prefix,
        log=tmp_path / "probe-worker.log",
        extra_env={
            "MAILSEC_DNS_NAMESERVERS": f"{knot_world.host}:{knot_world.port}",
            "MAILSEC_DNSSEC_TRUST_ANCHORS": ",".join(knot_world.trust_anchors),
            "MAILSEC_TLS_CA_FILE": lab_trust_file,
        },
    )
    app.conf.update(**celery_queue_settings(prefix))
    yield worker
    app.conf.update(**celery_queue_settings(celery_queue))
    worker.stop()


@pytest.fixture(scope="module")
def probe_https(tmp_path_factory):
    server = probe_world.start_https(tmp_path_factory.mktemp("stsca"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def knot_world(tmp_path_factory, mail_lab, probe_https):
    """The protocol probes' DNS world (tests/domains/test_probe_engine.py)."""
    server = probe_world.start_knot(tmp_path_factory.mktemp("probeknot"), mail_lab, probe_https)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab_trust_file(tmp_path_factory, mail_lab, probe_https):
    return probe_world.trust_file(tmp_path_factory.mktemp("trust"), mail_lab, probe_https)


@pytest.mark.django_db(transaction=True)
def test_check_now_shows_the_mail_servers(live_server, probe_worker, alice, acme):
    Domain.objects.create(organization=acme, name="good.test")
    base = live_server.url
    with chromium_page() as page:
        sign_in(page, base)
        page.click("table.domains a:text-is('good.test')")
        page.evaluate("window.sameDocument = true")  # a full page load would wipe it out
        page.click("button:text-is('Check now')")
        status = page.locator("#check-status")
        try:
            expect(status.locator("[data-grade]")).to_be_visible(timeout=CHECK_TIMEOUT_MS)
        except AssertionError:
            pytest.fail(f"no result; {status.inner_text()!r}; log:\n{probe_worker.output()}")
        servers = page.locator("table.servers")  # swapped in, no reload
        expect(servers).to_contain_text("mx-good.probes.test")
        shown = servers.inner_text()
        rows = servers.locator("tbody tr").count()
        assert page.evaluate("window.sameDocument") is True
    assert "127.0.30.1" in shown and "CN=mx-good.probes.test" in shown
    assert "TLSv1.2" in shown and "days left" in shown and "match" in shown
    assert "mail.probes.test" in shown  # IMAP and POP3 from the SRV records
    assert rows == 7  # 25, 465, 587 on the MX host; IMAP and POP3, both ports, on mail
