"""Reports whose XML declaration follows blanks or a byte order mark (issue 14): XML forbids
anything before "<?xml", but real reporters send a newline, spaces, tabs or a UTF-8 byte order
mark there. Such a report is stored whole, whatever container it comes in."""

import gzip
import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from reports import models
from reports.ingest import ingest_input
from reports.parsing.unpack import payloads

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
REPORT = (FIXTURES / "aggregate" / "parsedmarc__nice-input.xml").read_bytes()
# What the fixture holds (its README): 20 records, 3047 messages.
RECORDS, MESSAGES = 20, 3047
LEADS = {
    "newline": b"\n",
    "crlf": b"\r\n",
    "spaces and tabs": b"  \t \t",
    "blank lines": b"\n\n  \n",
    "bom then newline": b"\xef\xbb\xbf\n",
    "bom then spaces": b"\xef\xbb\xbf  \t\n",
    "bom alone": b"\xef\xbb\xbf",
}


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.xml", data)
    return buffer.getvalue()


def _mail(data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc@example.net"
    message["To"] = "dmarc@example.com"
    message["Subject"] = "Report Domain: example.com"
    message.set_content("A DMARC report is attached.")
    message.add_attachment(data, maintype="application", subtype="xml", filename="report.xml")
    return message.as_bytes()


CONTAINERS = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "zip": _zip,
    "e-mail": _mail,
    "e-mail with a gzip": lambda data: _mail(gzip.compress(data)),
}


@pytest.mark.django_db
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("lead", LEADS)
def test_blanks_before_the_declaration_are_accepted(container, lead, acme):
    data = CONTAINERS[container](LEADS[lead] + REPORT)
    [outcome] = ingest_input(data, f"report ({container})", via="upload", organization=acme)
    assert (outcome.status, outcome.error) == ("imported", None)
    assert (outcome.records, outcome.messages) == (RECORDS, MESSAGES)
    assert sum(models.DailyRollup.objects.values_list("messages", flat=True)) == MESSAGES


def test_only_the_leading_bytes_are_skipped():
    """The payload reads back as the document from its "<" on (a BOM alone is kept, XML
    allows it); what follows is untouched, blanks inside included."""
    for lead, want in ((b"\n \t", REPORT), (b"\xef\xbb\xbf", b"\xef\xbb\xbf" + REPORT)):
        [payload] = payloads(lead + REPORT + b"\n", "x")
        with payload.open() as stream:
            assert stream.read() == want + b"\n"


@pytest.mark.django_db
def test_a_document_of_blanks_only_is_still_refused():
    [outcome] = ingest_input(b"\xef\xbb\xbf\n\n   \t\n", "blank.xml", via="upload")
    assert outcome.status == "invalid"
