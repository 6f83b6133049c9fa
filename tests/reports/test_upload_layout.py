"""The upload's result page (issue 14, item 7): at 1280 px the result table fits its card with
Domain, Records, Messages and Error in view, so the reason a file was refused can be read; each
file name is printed once; the size limit reads "100 MB", not "100.0 MB"."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from domains.models import Domain
from reports import uploads
from reports.forms import size_text
from tests.conftest import client_for
from tests.test_browser import chromium_page
from tests.test_layout_browser import OVERFLOWS, _log_in

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reports"
NICE_INPUT = FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.gz"
LONG_NAME = "dmarc-report-" + "from-a-reporter-with-a-long-name-" * 3 + "2024.xml.gz"
REFUSED_NAME = "not-a-report-at-all.xml"
TOO_LARGE = "Larger than 100\xa0MB: not read."
# The result table's cells, and the card holding it, as the browser places them.
CELLS = """() => {
    const card = document.querySelector(".upload-status").closest(".card");
    const box = card.getBoundingClientRect();
    const wrap = document.querySelector(".upload-results").parentElement;
    return {
        card: [box.left, box.right],
        wrap: [wrap.scrollWidth, wrap.clientWidth],
        cells: [...document.querySelectorAll(".upload-results th, .upload-results td")].map(
            (cell) => {
                const place = cell.getBoundingClientRect();
                return {text: cell.textContent.trim(), left: place.left, right: place.right};
            }),
    };
}"""


@pytest.fixture
def upload(acme, alice):
    Domain.objects.create(organization=acme, name="example.com")
    files = [
        SimpleUploadedFile(LONG_NAME, NICE_INPUT.read_bytes()),
        SimpleUploadedFile(REFUSED_NAME, b"<feedback><report_metadata>cut short"),
    ]
    made = uploads.create(acme, alice, files, [("huge.xml", TOO_LARGE)])
    for file in made.files.all():
        uploads.parse(file.pk)
    return made


def test_size_text_drops_a_trailing_zero():
    assert size_text(100 * 1024 * 1024) == "100\xa0MB"
    assert size_text(1536 * 1024) == "1.5\xa0MB"


def test_the_limit_reads_100_mb(alice, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 100 * 1024 * 1024
    page = client_for(alice).get("/reports/upload/").content.decode()
    assert "100\xa0MB per upload" in page
    assert "100.0" not in page


def test_each_file_name_is_printed_once(alice, upload):
    page = client_for(alice).get(f"/reports/upload/{upload.pk}/").content.decode()
    for name in (LONG_NAME, REFUSED_NAME, "huge.xml"):
        assert len(re.findall(">" + re.escape(name) + "<", page)) == 1, name
    assert TOO_LARGE in page


@pytest.mark.django_db(transaction=True)
def test_the_result_table_fits_its_card(live_server, alice, upload):
    shown = {}
    with chromium_page() as page:
        _log_in(page, live_server.url)
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/reports/upload/{upload.pk}/")
            shown[width] = page.evaluate(CELLS), page.evaluate(OVERFLOWS)
    assert shown[390][1] == [] and shown[1280][1] == []  # no card, nor the page, too wide
    table = shown[1280][0]
    assert table["wrap"][0] <= table["wrap"][1], table["wrap"]  # no scrolling at 1280 px
    left, right = table["card"]
    for cell in table["cells"]:
        assert left <= cell["left"] and cell["right"] <= right, (cell, table["card"])
    texts = [cell["text"] for cell in table["cells"]]
    for header in ("Domain", "Records", "Messages", "Error"):
        assert header in texts
    assert TOO_LARGE in texts
