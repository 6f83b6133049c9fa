"""Pathological inputs are refused fast, with a reason (issue 13): each case cost the old code
tens of seconds of CPU inside the request."""

import gzip
import time

import pytest

from reports.parsing import aggregate, parse, types, unpack

LIMIT = 100 * 2**20


def outcomes(data: bytes, name: str) -> list[str]:
    reasons = []
    for item in unpack.payloads(data, name, limit=LIMIT):
        if isinstance(item, types.Refused):
            reasons.append(item.reason)
            continue
        try:
            parse(item)
            reasons.append("parsed")
        except types.Refused as refused:
            reasons.append(refused.reason)
    return reasons


def timed(data: bytes, name: str) -> tuple[list[str], float]:
    started = time.process_time()
    reasons = outcomes(data, name)
    return reasons, time.process_time() - started


def test_millions_of_elements_besides_the_records_are_refused_at_once():
    # 25 million <x/> in <feedback>: 100 MB unpacked, ~100 kB gzipped (the 2 MB gzip
    # hit the same 100 MB cap). The old code handed each to Python: ~15 s of CPU.
    data = gzip.compress(b"<feedback>" + b"<x/>" * 25_000_000 + b"</feedback>", 6)
    reasons, cpu = timed(data, "x.xml.gz")
    assert reasons == [
        f"more than {aggregate.MAX_OTHER_CHILDREN} elements in <feedback> outside any "
        "<record> (a report has a handful)"
    ]
    assert cpu < 1.5


def test_a_real_report_with_extensions_still_parses(aggregate_xml):
    extensions = b"<extension><x/></extension>" * 20
    data = aggregate_xml.replace(b"</policy_published>", b"</policy_published>" + extensions)
    assert outcomes(data, "r.xml") == ["parsed"]


def test_an_email_of_millions_of_parts_is_refused_at_once():
    body = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\nx\n" * 3_000_000
    data = gzip.compress(body + b"--b--\n", 6)
    reasons, cpu = timed(data, "m.eml.gz")
    assert reasons == [
        f"an e-mail message of more than {unpack.MAX_MIME_BOUNDARIES} MIME parts "
        "(a report message has a few)"
    ]
    assert cpu < 1.5


def test_an_mbox_stops_after_its_budget_of_parts(monkeypatch):
    monkeypatch.setattr(unpack, "MAX_PAYLOADS", 5)
    mbox = b"".join(b"From a@b Sat Jan  3 01:05:34 1996\n\nhello\n\n" for _ in range(50))
    reasons = outcomes(mbox, "a.mbox")
    assert reasons == ["no report found in this e-mail message"] * 5 + [
        "more than 5 parts: the rest is not read"
    ]


def test_an_input_stops_when_its_time_is_up(monkeypatch):
    monkeypatch.setattr(unpack, "INPUT_SECONDS", -1)  # already spent after the first part
    mbox = b"".join(b"From a@b Sat Jan  3 01:05:34 1996\n\nhello\n\n" for _ in range(3))
    assert outcomes(mbox, "a.mbox") == [
        "no report found in this e-mail message",
        "more than -1 s of work: the rest is not read",
    ]


@pytest.fixture
def aggregate_xml():
    from pathlib import Path

    path = Path(__file__).parents[1] / "fixtures/reports/aggregate/cryinc__acme.xml"
    return path.read_bytes()
