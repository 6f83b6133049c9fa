"""Layout in a real browser (issue 14, items 6 and 8), at 390 and 1280 pixels wide: numbers
right-aligned with tabular figures in every list table; source IP addresses and file names on
one line, never broken inside; long values (contact URLs, file names) cut with an ellipsis and
their whole value on hover, without pushing the cards or the page wider than the screen."""

from pathlib import Path

import pytest
from django.utils import timezone

from domains.models import Domain
from reports.ingest import ingest_input
from reports.models import AggregateReport, DailyRollup, DailyTotal, MonthlyRollup, RawInput
from reports.senders.services import block_of
from tests.domains.test_pages import add_run
from tests.test_browser import chromium_page, sign_in

FIXTURE = (
    Path(__file__).parent / "fixtures" / "reports" / "aggregate" / "parsedmarc__nice-input.xml"
)
WIDTHS = (390, 1280)
LONG_IP = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
LONG_CONTACT = "https://support.reporter.example/" + "dmarc-aggregate-reports/" * 6 + "help"
LONG_NAME = "dmarc-report-" + "from-a-reporter-with-a-long-name-" * 5 + "2024.xml"

# What one element looks like in the browser: enough to judge wrapping and overflow.
MEASURE = """(element) => {
    const style = getComputedStyle(element);
    return {
        lines: Math.round(element.getBoundingClientRect().height / parseFloat(style.lineHeight)),
        scrollWidth: element.scrollWidth,
        clientWidth: element.clientWidth,
        textAlign: style.textAlign,
        numeric: style.fontVariantNumeric,
        textOverflow: style.textOverflow,
        title: element.getAttribute("title"),
        text: element.textContent.trim(),
    };
}"""
# Cards and the page: none is wider than its box (a table may scroll inside its .table-wrap).
OVERFLOWS = """() => {
    const wide = [];
    for (const element of document.querySelectorAll(".card, main, body")) {
        if (element.scrollWidth > element.clientWidth + 1) {
            const name = `${element.tagName}.${element.className}`;
            wide.push(`${name}: ${element.scrollWidth} > ${element.clientWidth}`);
        }
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
        wide.push(`page: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
    }
    return wide;
}"""
NUMERIC_CELLS = "table.list td.num, table.list th.num"


@pytest.fixture
def staff_alice(alice):
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    return alice


@pytest.fixture
def pages(acme, staff_alice) -> dict[str, str]:
    """Paths of pages holding long values, with the data they show."""
    domain = Domain.objects.create(organization=acme, name="example.com")
    add_run(domain, score=87, grade="B")
    Domain.objects.create(organization=acme, name="second.example")
    xml = FIXTURE.read_text()
    xml = xml.replace("https://support.google.com/a/answer/2466580", LONG_CONTACT)
    xml = xml.replace("<source_ip>209.85.220.69</source_ip>", f"<source_ip>{LONG_IP}</source_ip>")
    [outcome] = ingest_input(
        xml.encode(), "report.xml", via="upload", user=staff_alice, organization=acme
    )
    assert outcome.status == "imported", outcome.error
    ingest_input(
        b"this is no report at all", LONG_NAME, via="upload", user=staff_alice, organization=acme
    )
    assert RawInput.objects.filter(name=LONG_NAME).exists()
    report = AggregateReport.objects.get()
    # The domain's page and its reports page show the last 30 days: a source of today, with
    # its month's row and the day's total (ingestion keeps all three; a range's current month
    # is read from the month's row).
    today = {"organization": acme, "domain": "example.com", "day": timezone.now().date()}
    counts = {"messages": 42694, "dmarc_pass": 42000, "disposition_none": 42694}
    DailyRollup.objects.create(**today, source_ip=LONG_IP, **counts)
    month = {"organization": acme, "domain": "example.com", "month": today["day"].replace(day=1)}
    MonthlyRollup.objects.create(**month, source_ip=LONG_IP, **counts)
    DailyTotal.objects.create(**today, **counts)
    return {
        "domain": f"/domains/{domain.pk}/",
        "domains": "/domains/",
        "aggregate": f"/reports/aggregate/{report.pk}/",
        "domain_reports": f"/reports/domain/{domain.pk}/",
        "index": "/reports/",
        "refused": "/reports/refused/",
        "senders": f"/reports/domain/{domain.pk}/senders/",
        "sender": f"/reports/domain/{domain.pk}/senders/one/?sender=net:{block_of(LONG_IP)}",
    }


def _log_in(page, base: str) -> None:
    sign_in(page, base)


def _measure_all(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, f"(elements) => elements.map({MEASURE})")


@pytest.mark.django_db(transaction=True)
def test_long_values_and_numbers_at_both_widths(live_server, pages):
    seen: dict[tuple[int, str], dict] = {}
    with chromium_page() as page:
        _log_in(page, live_server.url)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for key, path in pages.items():
                page.goto(f"{live_server.url}{path}")
                seen[width, key] = {
                    "overflows": page.evaluate(OVERFLOWS),
                    "numbers": _measure_all(page, NUMERIC_CELLS),
                    "ips": _measure_all(page, "code.ip"),
                    "contact": _measure_all(page, "dd.contact"),
                    "names": _measure_all(page, "code.file-name"),
                }

    for (width, key), shown in seen.items():
        where = f"{key} at {width} px"
        assert shown["overflows"] == [], where
        for cell in shown["numbers"]:
            assert cell["textAlign"] == "right", (where, cell)
            assert "tabular-nums" in cell["numeric"], (where, cell)
        for ip in shown["ips"]:
            assert ip["lines"] == 1, (where, ip)  # never broken inside
    for width in WIDTHS:
        assert len(seen[width, "domains"]["numbers"]) >= 2  # headers and the score cells
        assert len(seen[width, "aggregate"]["numbers"]) >= 21  # a header and 20 records
        assert LONG_IP in [ip["text"] for ip in seen[width, "aggregate"]["ips"]]
        assert seen[width, "domain_reports"]["ips"], "the top sources show their addresses"
        [contact] = seen[width, "aggregate"]["contact"]
        [name] = seen[width, "refused"]["names"]
        for value, full in ((contact, LONG_CONTACT), (name, LONG_NAME)):
            assert value["lines"] == 1, (width, value)
            assert value["title"] == full and value["textOverflow"] == "ellipsis"
    # At 390 px neither the contact URL nor the file name fits: each is cut, not wrapped.
    for value in (seen[390, "aggregate"]["contact"][0], seen[390, "refused"]["names"][0]):
        assert value["scrollWidth"] > value["clientWidth"]


# Every page a signed-in user (here staff, who sees the most) can open, beside those above.
MORE_PAGES = [
    "/domains/add/",
    "/reports/upload/",
    "/reports/unclaimed/",
    "/reports/mailboxes/",
    "/reports/mailboxes/add/",
    "/reports/overview/",
    "/reports/?range=custom&since=2018-01-01&reporter=google.com&q=192.0.2.1&sort=oldest",
    "/settings/members/",
    "/settings/sign-in/",
    "/settings/channels/",
    "/settings/mailboxes/",
    "/settings/audit/",
    "/account/password/",
    "/account/two-factor/",
]


@pytest.mark.django_db(transaction=True)
def test_every_page_fits_both_widths(live_server, pages, tmp_path):
    """Issue 14's walk: every page at 390 and 1280 px, a full-page screenshot of each (kept in
    the test's directory to look at), and no card, main or page wider than its box."""
    domain_pk = pages["domain"].strip("/").split("/")[-1]
    paths = [
        *pages.values(),
        f"/domains/{domain_pk}/edit/",
        f"/domains/{domain_pk}/delete/",
        f"/reports/domain/{domain_pk}/tls/",
        f"/reports/domain/{domain_pk}/?range=365",
        *MORE_PAGES,
    ]
    wide, statuses = {}, {}
    with chromium_page() as page:
        _log_in(page, live_server.url)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                response = page.goto(f"{live_server.url}{path}")
                statuses[path] = response.status if response else None
                name = path.strip("/").replace("/", "_") or "home"
                page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
                found = page.evaluate(OVERFLOWS)
                if found:
                    wide[path, width] = found
        page.context.clear_cookies()
        for width in WIDTHS:  # and the pages anybody sees
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/login/")
            page.screenshot(path=str(tmp_path / f"login-{width}.png"), full_page=True)
            if found := page.evaluate(OVERFLOWS):
                wide["/login/", width] = found
    assert {path: status for path, status in statuses.items() if status != 200} == {}
    assert wide == {}
    assert len(list(tmp_path.glob("*.png"))) == 2 * (len(paths) + 1)
