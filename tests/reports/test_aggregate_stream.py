"""The aggregate parser on documents too large to be read twice: streamed in chunks, gated on
their beginning, in flat memory; and hostile XML (reports/parsing/aggregate.py, xmlgate.py,
records.pyx). Ordinary documents and every fixture are in test_aggregate.py.
"""

import io
import os
import time
import tracemalloc

import pytest

from reports.parsing import aggregate, xmlgate
from reports.parsing.types import Payload, Refused, open_bytes
from tests.reports.test_aggregate import parse_all, refusal, report, xml_record


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_any_chunking_reads_the_same(monkeypatch, chunk):
    # records.drain() takes the children of <feedback> that are complete after each chunk: a
    # record, an extension or the metadata cut anywhere by a chunk boundary is read whole,
    # once, in order; a <record> inside an extension is not one of the report's.
    extension = "<extension><record><row><source_ip>198.51.100.9</source_ip></row></record>"
    data = (
        "<feedback><version>1.0</version>" + xml_record(count="2") + extension + "</extension>"
        "<report_metadata><org_name>Chunked</org_name><report_id>c-1</report_id><date_range>"
        "<begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>"
        + xml_record(ip="192.0.2.2") + "<policy_published><domain>example.com</domain>"
        "</policy_published>" + xml_record(ip="192.0.2.3", count="5") + "</feedback>"
    ).encode()  # fmt: skip
    expected = parse_all(data)
    assert [(r.source_ip, r.count) for r in expected[1]] == [
        ("192.0.2.1", 2), ("192.0.2.2", 1), ("192.0.2.3", 5)
    ]  # fmt: skip
    assert (expected[0].org_name, expected[0].version) == ("Chunked", "1.0")
    monkeypatch.setattr(aggregate, "CHUNK", chunk)
    monkeypatch.setattr(xmlgate, "RECOVER_LIMIT", 100)  # streamed as a large document
    assert parse_all(data) == expected


def test_errors_at_the_end_of_a_large_document_come_from_records(monkeypatch):
    # Documents above RECOVER_LIMIT are checked as they stream, so an error after the first
    # record reaches the consumer from records(); storage then rolls the report back.
    monkeypatch.setattr(xmlgate, "RECOVER_LIMIT", 100)
    monkeypatch.setattr(aggregate, "CHUNK", 64)
    monkeypatch.setattr(xmlgate, "CHUNK", 64)
    data = report(xml_record() * 3)
    for broken, reason in ((data + b"<trailing/>", "malformed XML: "), (data[:-30], "truncated")):
        report_ = aggregate.parse(Payload("big.xml", "xml", open_bytes(broken)))
        records = report_.records()
        assert next(records).source_ip == "192.0.2.1"
        with pytest.raises(Refused, match=reason):
            list(records)


def test_a_large_document_is_gated_on_its_beginning_only(monkeypatch):
    # Above RECOVER_LIMIT the gate reads the prolog and the root, not the whole limit; a
    # DOCTYPE or another root is still refused before anything is parsed.
    monkeypatch.setattr(xmlgate, "RECOVER_LIMIT", 1000)
    big = report(xml_record() * 20)
    assert len(big) > 1000
    read = []  # bytes read through each stream opened

    class Counting(io.BytesIO):
        def __init__(self):
            super().__init__(big)
            read.append(0)
            self.index = len(read) - 1

        def read(self, size=-1):
            data = super().read(size)
            read[self.index] += len(data)
            return data

    assert xmlgate.inspect(Payload("big.xml", "xml", Counting)).error is None
    # One read to learn the size (stops after RECOVER_LIMIT + 1 bytes), one for the prolog.
    assert read == [1001, min(len(big), xmlgate.CHUNK)]
    assert refusal(report(xml_record() * 20, prolog="<!DOCTYPE feedback>")) == DOCTYPE
    assert refusal(b"<html>" + b"<p>x</p>" * 200 + b"</html>") == (
        "XML but not a DMARC aggregate report (root <html>)"
    )


def test_an_endless_element_is_refused_before_it_fills_memory(monkeypatch):
    # One record of millions of elements would sit whole in lxml's tree: refused once a child
    # of <feedback> has run on for MAX_CHILD_BYTES without ending.
    monkeypatch.setattr(xmlgate, "RECOVER_LIMIT", 1000)
    monkeypatch.setattr(aggregate, "MAX_CHILD_BYTES", 2**20)
    endless = xml_record(extra="<x/>" * 300_000)  # 1.2 MB in one record
    data = report(xml_record() + endless)
    with pytest.raises(Refused, match=r"an element of more than 1 MB in the report"):
        parse_all(data)
    fine = report(xml_record() + xml_record(extra="<x/>" * 100_000))  # 0.4 MB
    assert len(parse_all(fine)[1]) == 2


def test_a_refusal_while_reading_the_payload_passes_through():
    class Capped(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 100:
                raise Refused("the decompressed data is larger than the cap")
            return super().read(min(size, 64))

    data = report(xml_record() * 5)
    with pytest.raises(Refused, match="larger than the cap"):
        aggregate.parse(Payload("report.xml", "xml", lambda: Capped(data)))


# --- hostile ----------------------------------------------------------------------------------

DOCTYPE = "XML with a DOCTYPE (entity declarations are not allowed in reports)"


@pytest.mark.parametrize(
    "declaration",
    [
        '<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "http://198.51.100.7/secret">]>',
        '<!DOCTYPE feedback [<!ENTITY % remote SYSTEM "http://198.51.100.7/x.dtd"> %remote;]>',
    ],
)
def test_external_entities_are_refused(declaration):
    # Any fetch would also trip the tests' network guard.
    assert refusal(report(org="&xxe;", prolog=declaration)) == DOCTYPE


def test_external_dtd_and_plain_doctype_are_refused():
    assert refusal(report(prolog='<!DOCTYPE feedback SYSTEM "http://198.51.100.7/d.dtd">')) == (
        DOCTYPE
    )
    assert refusal(report(prolog="<!DOCTYPE feedback>")) == DOCTYPE


def test_billion_laughs_is_refused_fast():
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    prolog = "<!DOCTYPE feedback [" + "".join(entities) + "]>"
    started = time.monotonic()
    assert refusal(report(org="&lol9;", prolog=prolog)) == DOCTYPE
    assert time.monotonic() - started < 1


def test_deep_nesting_is_refused_fast():
    deep = "<x>" * 1000 + "</x>" * 1000
    started = time.monotonic()
    assert refusal(report(xml_record(extra=deep))) == "XML nested more than 20 levels deep"
    assert refusal(("<feedback>" + deep + "</feedback>").encode()) == (
        "XML nested more than 20 levels deep"
    )
    assert time.monotonic() - started < 1


# --- streaming --------------------------------------------------------------------------------


class GeneratedReport(io.RawIOBase):
    """A report of `count` records made as it is read, so only the parser holds memory."""

    def __init__(self, count: int):
        self._parts = self._make(count)
        self._pending = b""

    @staticmethod
    def _make(count: int):
        head = report("").removesuffix(b"</feedback>")
        yield head
        for start in range(0, count, 1000):
            yield "".join(
                xml_record(ip=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", count=str(n % 9 + 1))
                for n in range(start, min(count, start + 1000))
            ).encode()
        yield b"</feedback>"

    def readable(self):
        return True

    def readinto(self, buffer):
        while len(self._pending) < len(buffer):
            part = next(self._parts, None)
            if part is None:
                break
            self._pending += part
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_large_report_streams_in_flat_memory():
    count = 60_000  # about 30 MB of XML: ten times what a leak of a record each would show
    rss_before = resident_bytes()
    rss_growth = 0
    tracemalloc.start()
    try:
        parsed = aggregate.parse(Payload("big.xml", "xml", lambda: GeneratedReport(count)))
        seen = messages = 0
        for record in parsed.records():
            seen += 1
            messages += record.count
            if seen % 10_000 == 0:
                rss_growth = max(rss_growth, resident_bytes() - rss_before)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (seen, messages) == (count, sum(n % 9 + 1 for n in range(count)))
    assert peak < 10 * 1024 * 1024  # Python objects: records are not kept
    assert rss_growth < 50 * 1024 * 1024  # lxml's tree (not traced): elements are freed
