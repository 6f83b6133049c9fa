"""Every real report file, through the whole path: unpack, parse, store.

The expected record and message counts are read from the fixtures' README (counted there with
xml.etree, independently of this project); the files we refuse, and why, are listed below.
"""

import gzip
import json
import os
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from reports import models
from reports.ingest import INLINE_CONTENT, ingest_input
from reports.rows import dkim_json, reasons_json, spf_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
GOOD_REPORT = FIXTURES / "aggregate/parsedmarc__usssa.com!example.com!1538784000!1538870399.xml"

# Files refused on purpose, with a piece of the reason given.
REFUSED = {
    # Garbled and cut off mid-document: recovering would store half a report as if whole.
    "aggregate/dmarcrua__invalid-truncated-wp.pl_0708a2ec5df54aac9c204249898d27bd.xml": (
        "truncated"
    ),
    "aggregate/parsedmarc__empty.xml": "empty",
    # Hand-made samples dated 1970-1979, decades before DMARC: such a period is a broken
    # clock or a sample, and would land in rollups for days nobody looks at.
    "aggregate/mailauth__001-v2-extensions.xml": "1990",
    "aggregate/mailauth__004-dmarc2-ns-generator.xml": "1990",
    "aggregate/mailauth__005-sampled-out.xml": "1990",
    "aggregate/parsedmarc__rfc9990-sample.xml": "1990",
    # Metadata and policy but not a single record: nothing to count.
    "aggregate/dmarcrua__invalid-zero-records-cwru_2cc32d95b4f142578eb7c70d3cea6219.xml": (
        "no <record>"
    ),
    # A record without a source address (and a count of 0): not a usable row.
    "aggregate/tierpod__test_empty.xml": "source",
    "aggregate/modoboa__yahoo_missing-policy-domain.eml": "domain",
    "aggregate/modoboa__amazonses_png-not-report.eml": "PNG",
    "forensic/mailauth__arf-001-abuse-not-dmarc.eml": "abuse",
    # Policies without a policy-domain: a TLS report about nothing we could attach it to.
    "smtp_tls/mailauth__rpt03-invalid-policy-type.json": "policy-domain",
}
# Malformed XML that a recovering parse reads whole (one record, one message each; the
# README has no count for them since xml.etree fails): stored, with a warning.
RECOVERED = {
    "aggregate/parsedmarc__ikea.com!example.de!1538690400!1538776800.xml",
    "aggregate/parsedmarc__invalid_utf_8.xml",
    "aggregate/parsedmarc__invalid_xml.xml",
}


def readme_rows() -> dict[str, list[str]]:
    rows = {}
    folder = None
    for line in (FIXTURES / "README.md").read_text().splitlines():
        heading = re.match(r"## .*`(\w+)/`", line)
        if heading:
            folder = heading.group(1)
        elif line.startswith("| `") and folder:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[f"{folder}/{cells[0].strip('`')}"] = cells
    return rows


def expected(path: str, cells: list[str]) -> dict:
    if path in REFUSED:
        return {"status": "invalid", "error": REFUSED[path]}
    if path in RECOVERED:
        return {"status": "imported", "kind": "aggregate", "records": 1, "messages": 1}
    folder = path.split("/")[0]
    if folder == "aggregate":
        records, messages = re.fullmatch(r"(\d+) / (\d+)", cells[4]).groups()
        return {"status": "imported", "kind": "aggregate", "records": int(records),
                "messages": int(messages)}  # fmt: skip
    if folder == "smtp_tls":
        policies, ok, failed = re.match(r"(\d+) pol; (\d+) ok / (\d+) fail", cells[4]).groups()
        return {"status": "imported", "kind": "tls", "records": int(policies),
                "messages": int(ok) + int(failed)}  # fmt: skip
    return {"status": "imported", "kind": "failure", "records": 1, "messages": 1}


ROWS = readme_rows()


def test_the_readme_lists_every_fixture_file():
    on_disk = {f"{p.parent.name}/{p.name}" for p in FIXTURES.glob("*/*") if p.is_file()}
    assert set(ROWS) == on_disk
    assert len(ROWS) == 119
    assert set(REFUSED) | RECOVERED <= on_disk


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(ROWS))
def test_fixture(path, acme):
    want = expected(path, ROWS[path])
    [outcome] = ingest_input(str(FIXTURES / path), path, via="command", organization=acme)
    if want["status"] == "invalid":
        assert outcome.status == "invalid", outcome
        assert want["error"].lower() in outcome.error.lower(), outcome.error
        assert not models.AggregateReport.objects.exists()
        assert not models.TlsReport.objects.exists()
        assert not models.FailureReport.objects.exists()
        raw = models.RawInput.objects.get()
        assert raw.status == models.InputStatus.REFUSED
        assert outcome.error in raw.reason
        assert raw.original() == (FIXTURES / path).read_bytes()
        return
    got = {k: getattr(outcome, k) for k in want}
    assert got == want, outcome.error
    assert outcome.org_name and outcome.domain
    # A failure report's id is its Message-ID, which arf-003 lacks.
    assert outcome.report_id or path == "forensic/mailauth__arf-003-auth-failure-bodyhash.eml"
    if outcome.kind == "aggregate":
        report = models.AggregateReport.objects.get(pk=outcome.report_pk)
        assert report.records.count() == want["records"]
        assert sum(report.records.values_list("count", flat=True)) == want["messages"]
        assert report.organization == acme
        rolled = models.DailyRollup.objects.filter(organization=acme)
        assert sum(rolled.values_list("messages", flat=True)) == want["messages"]
        assert bool(report.warnings) == (path in RECOVERED)
    raw = models.RawInput.objects.get()
    assert raw.status == models.InputStatus.IMPORTED
    assert raw.original() == (FIXTURES / path).read_bytes()


@pytest.mark.django_db
def test_the_same_report_in_three_containers_is_stored_once(acme):
    outcomes = [
        ingest_input(str(FIXTURES / "aggregate" / name), name, via="upload", organization=acme)[0]
        for name in ("parsedmarc__nice-input.xml", "parsedmarc__nice-input.xml.gz",
                     "parsedmarc__nice-input.xml.zip")
    ]  # fmt: skip
    assert [o.status for o in outcomes] == ["imported", "duplicate", "duplicate"]
    assert {o.report_pk for o in outcomes} == {outcomes[0].report_pk}
    assert [(o.records, o.messages) for o in outcomes] == [(20, 3047)] * 3
    assert models.AggregateReport.objects.count() == 1
    assert models.AggregateRecord.objects.count() == 20
    assert sum(models.DailyRollup.objects.values_list("messages", flat=True)) == 3047
    statuses = dict(models.RawInput.objects.values_list("name", "status"))
    assert statuses == {
        "parsedmarc__nice-input.xml": "imported",
        "parsedmarc__nice-input.xml.gz": "duplicate",
        "parsedmarc__nice-input.xml.zip": "duplicate",
    }


@pytest.mark.django_db
def test_a_tls_report_twice_is_one(tmp_path):
    # rfc8460.json and the attachment of rpt01-gzip.eml are the same RFC 8460 example report.
    first = ingest_input(str(FIXTURES / "smtp_tls/parsedmarc__rfc8460.json"), "a", via="upload")
    again = ingest_input(str(FIXTURES / "smtp_tls/mailauth__rpt01-gzip.eml"), "b", via="upload")
    assert [first[0].status, again[0].status] == ["imported", "duplicate"]
    assert models.TlsReport.objects.count() == 1
    assert models.TlsPolicy.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path, model",
    [
        (GOOD_REPORT, models.AggregateReport),
        (FIXTURES / "smtp_tls/parsedmarc__rfc8460.json", models.TlsReport),
    ],
)
def test_a_report_stored_meanwhile_by_another_process_is_a_duplicate(monkeypatch, path, model):
    # Between our "is it stored?" and our transaction, another worker (a thread with its own
    # database connection) stores the same report and commits: the unique constraint stops
    # our insert, our transaction leaves nothing behind, and we answer "duplicate".
    import threading

    from django.db import connections, transaction

    from reports import ingest

    raced = []

    def other_worker():
        try:
            raced.append(ingest_input(str(path), "other", via="command")[0].status)
        finally:
            connections.close_all()

    class Racing:
        @staticmethod
        def atomic(*args, **kwargs):
            if not raced:
                raced.append("raced")
                worker = threading.Thread(target=other_worker)
                worker.start()
                worker.join()
            return transaction.atomic(*args, **kwargs)

    monkeypatch.setattr(ingest, "transaction", Racing)
    [outcome] = ingest_input(str(path), "ours", via="upload")
    assert raced == ["raced", "imported"]
    assert outcome.status == "duplicate"
    assert model.objects.count() == 1


@pytest.mark.django_db
def test_rollups_add_up_across_reports_and_selectors_are_remembered(acme):
    for name in ("modoboa__google_zip-4records.eml", "mox__google.eml", "mox__yahoo.eml"):
        path = str(FIXTURES / "aggregate" / name)
        [outcome] = ingest_input(path, name, via="upload", organization=acme)
        assert outcome.status == "imported"
    for report in models.AggregateReport.objects.all():
        rolled = models.DailyRollup.objects.filter(domain=report.domain)
        records = models.AggregateRecord.objects.filter(report__domain=report.domain)
        assert sum(r.messages for r in rolled) == sum(r.count for r in records)
    signed = {
        (d["domain"], d["selector"])
        for rec in models.AggregateRecord.objects.all()
        for d in rec.dkim_results
        if d.get("selector")
    }
    remembered = set(
        models.ReportedSelector.objects.filter(organization=acme).values_list("domain", "selector")
    )
    assert signed and remembered == signed


@pytest.mark.django_db
def test_a_bad_report_in_a_batch_stores_nothing_of_itself_and_stops_nothing(tmp_path):
    good = FIXTURES / "aggregate/parsedmarc__usssa.com!example.com!1538784000!1538870399.xml"
    text = good.read_text()
    # A bad count in the second record: the first record must not be left behind.
    bad = text.replace("<count>1</count>", "<count>-1</count>")
    bad = bad.replace("<count>-1</count>", "<count>1</count>", 1)
    assert bad.count("<count>-1</count>") == 1
    mbox = b"".join(
        b"From reports@example.net Thu Jan  1 00:00:00 2026\n" + message + b"\n"
        for message in (
            _mail("bad.xml.gz", gzip.compress(bad.replace("usssa", "other").encode())),
            _mail("good.xml.gz", gzip.compress(text.encode())),
        )
    )
    outcomes = ingest_input(mbox, "reports.mbox", via="upload")
    assert [o.status for o in outcomes] == ["invalid", "imported"]
    assert "count" in outcomes[0].error
    assert models.AggregateReport.objects.count() == 1
    assert models.AggregateRecord.objects.count() == 2
    raw = models.RawInput.objects.get()
    assert raw.status == models.InputStatus.PARTIAL and "count" in raw.reason
    assert raw.original() == mbox


@pytest.mark.django_db
@pytest.mark.parametrize("bad_record", [None, 3])
def test_records_in_several_batches(monkeypatch, bad_record, acme):
    # Records are written a batch at a time with the garbage collector paused; a record refused
    # in a later batch still takes the whole report back, and the collector is on again after.
    import gc

    from reports import ingest

    monkeypatch.setattr(ingest, "BATCH_SIZE", 2)
    record = GOOD_REPORT.read_text().split("<record>")[1].split("</record>")[0]
    records = [
        f"<record>{record.replace('<count>1</count>', f'<count>{n}</count>', 1)}</record>"
        for n in range(1, 6)
    ]
    if bad_record:
        records[bad_record - 1] = records[bad_record - 1].replace("<count>", "<count>-", 1)
    head, _, _ = GOOD_REPORT.read_text().partition("<record>")
    data = (head + "".join(records) + "</feedback>").encode()
    assert gc.isenabled()
    [outcome] = ingest_input(data, "five.xml", via="upload", organization=acme)
    assert gc.isenabled()
    if bad_record:
        assert outcome.status == "invalid" and f"record {bad_record}: count" in outcome.error
        assert not models.AggregateRecord.objects.exists()
        assert not models.DailyRollup.objects.exists()
        return
    assert (outcome.status, outcome.records, outcome.messages) == ("imported", 5, 15)
    assert models.AggregateRecord.objects.count() == 5
    assert sum(models.DailyRollup.objects.values_list("messages", flat=True)) == 15
    # No constraint in the database: deleting a report through the ORM takes its records along.
    models.AggregateReport.objects.all().delete()
    assert not models.AggregateRecord.objects.exists()


def _mail(filename: str, attachment: bytes) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "reports@example.net"
    message["To"] = "dmarc@example.com"
    message["Subject"] = f"Report {filename}"
    message.set_content("A DMARC report is attached.")
    message.add_attachment(attachment, maintype="application", subtype="gzip", filename=filename)
    return message.as_bytes()


@pytest.mark.django_db
def test_import_reports_json_lines(capsys):
    folder = FIXTURES / "smtp_tls"
    with pytest.raises(SystemExit) as exit:
        call_command("import_reports", str(folder), "--json")
    assert exit.value.code == 1  # rpt03 is invalid
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *reports, last = lines
    files = sorted(str(p) for p in folder.iterdir())
    assert [r["file"] for r in reports] == files
    keys = ["file", "status", "kind", "org_name", "report_id", "domain", "records", "messages",
            "error"]  # fmt: skip
    assert all(list(r) == keys for r in reports)
    by_name = {Path(r["file"]).name: r for r in reports}
    assert by_name["parsedmarc__rfc8460.json"] == {
        "file": str(folder / "parsedmarc__rfc8460.json"),
        # The same RFC 8460 example is attached to mailauth__rpt01-gzip.eml, which sorts first.
        "status": "duplicate",
        "kind": "tls",
        "org_name": "Company-X",
        "report_id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        "domain": "company-y.example",
        "records": 1,
        "messages": 5629,
        "error": None,
    }
    assert by_name["mailauth__rpt01-gzip.eml"]["status"] == "imported"
    assert by_name["mailauth__rpt03-invalid-policy-type.json"]["status"] == "invalid"
    counts = {s: sum(r["status"] == s for r in reports) for s in ("imported", "duplicate")}
    assert last == {
        "summary": {
            "imported": counts["imported"],
            "duplicate": counts["duplicate"],
            "invalid": 1,
            "records": sum(r["records"] for r in reports if r["status"] == "imported"),
            "messages": sum(r["messages"] for r in reports if r["status"] == "imported"),
        }
    }


@pytest.mark.django_db
def test_import_reports_exits_0_when_all_is_well(capsys):
    path = str(FIXTURES / "aggregate/cryinc__acme.xml")
    call_command("import_reports", path, path)
    out = capsys.readouterr().out
    assert "imported" in out and "duplicate" in out
    assert "1 imported (1 record, 2 messages), 1 duplicate, 0 invalid" in out


@pytest.mark.django_db
def test_an_input_without_a_report_gives_one_invalid_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello, these are not the reports you are looking for")
    with pytest.raises(SystemExit):
        call_command("import_reports", "--json", str(tmp_path / "notes.txt"), "missing.xml")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["status"], r["kind"]) for r in lines[:-1]] == [("invalid", None)] * 2
    assert lines[1]["error"] == "no such file"
    assert lines[-1]["summary"]["invalid"] == 2
    assert connection.vendor  # the database was there all along


@pytest.mark.parametrize(
    "text", ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline", "é ü 中文 \u2028", "\x00"]
)
def test_hand_written_json_reads_back_exactly(text):
    dkim = [{"domain": text, "selector": "s1", "result": "pass", "human_result": text}] * 2
    spf = [{"domain": "example.com", "scope": text, "result": "fail", "human_result": ""}]
    reasons = [{"type": "forwarded", "comment": text}]
    assert json.loads(dkim_json(dkim)) == dkim
    assert json.loads(spf_json(spf)) == spf
    assert json.loads(reasons_json(reasons)) == reasons
    assert [json.loads(f([])) for f in (dkim_json, spf_json, reasons_json)] == [[], [], []]


# --- hostile inputs in one batch ---------------------------------------------------------


def hostile_inputs() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, a piece of the reason it must be refused with)."""
    from tests.reports import test_unpack as bombs

    good = GOOD_REPORT.read_bytes()
    deflated, crc = bombs.deflated_zeros(bombs.BOMB_PREFIX, bombs.GB)
    size = len(bombs.BOMB_PREFIX) + bombs.GB
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "lol"}">' for n in range(10))
    return {
        "xxe.xml": (
            b'<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + good[good.index(b"<feedback") :].replace(b"<org_name>", b"<org_name>&x;", 1),
            "DOCTYPE",
        ),
        "laughs.xml": (
            f"<!DOCTYPE feedback [{laughs}]><feedback>&l9;</feedback>".encode(),
            "DOCTYPE",
        ),
        "bomb.xml.gz": (bombs.gzip_member(deflated, crc, size), "XML"),
        "bomb.zip": (
            bombs.zip_archive([bombs.Member("r.xml", deflated, crc, size)]),
            "exceeds the 100 MB limit",
        ),
        "truncated.xml.gz": (gzip.compress(good)[:-200], "truncated"),
        "picture.xml.gz": (gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(100)), "PNG"),
        "page.html": (b"<!DOCTYPE html><html><body>Hello</body></html>", "HTML"),
        "negative.xml": (good.replace(b"<count>1</count>", b"<count>-3</count>", 1), "count"),
        "bad-ip.xml": (
            re.sub(rb"<source_ip>[^<]*<", b"<source_ip>300.1.2.3<", good, count=1),
            "source_ip",
        ),
        "no-domain.xml": (
            re.sub(rb"<domain>[^<]*</domain>", b"<domain></domain>", good, count=1),
            "domain",
        ),
    }


@pytest.mark.django_db
def test_hostile_inputs_are_refused_fast_and_the_batch_goes_on(tmp_path, capsys, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 100 * 2**20
    hostile = hostile_inputs()
    for name, (data, _) in hostile.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "zz-good.xml").write_bytes(GOOD_REPORT.read_bytes())
    for name in hostile:
        started = time.perf_counter()
        ingest_input(str(tmp_path / name), name, via="upload")
        assert time.perf_counter() - started < 1.0, name
    models.RawInput.objects.all().delete()
    with pytest.raises(SystemExit):
        call_command("import_reports", "--json", str(tmp_path))
    *lines, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {Path(line["file"]).name: line for line in lines}
    for name, (_, reason) in hostile.items():
        assert by_name[name]["status"] == "invalid", name
        assert reason.lower() in by_name[name]["error"].lower(), (name, by_name[name]["error"])
    assert by_name["zz-good.xml"]["status"] == "imported"
    assert summary["summary"]["imported"] == 1
    assert models.AggregateReport.objects.count() == 1
    assert models.AggregateRecord.objects.count() == 2
    refused = models.RawInput.objects.filter(status="refused")
    assert refused.count() == len(hostile)
    assert {r.name for r in refused} == {str(tmp_path / name) for name in hostile}


@pytest.mark.django_db
def test_a_big_input_is_kept_whole(tmp_path):
    """Over INLINE_CONTENT, the stored bytes take their own statement (binary on PostgreSQL)."""
    import zipfile

    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("report.xml", GOOD_REPORT.read_bytes())
        zf.writestr("noise.bin", os.urandom(INLINE_CONTENT + 1000), zipfile.ZIP_STORED)
    outcomes = ingest_input(str(archive), "big.zip", via="upload")
    assert [o.status for o in outcomes] == ["imported", "invalid"]
    raw = models.RawInput.objects.get()
    assert raw.status == models.InputStatus.PARTIAL
    assert raw.encoding == "identity" and raw.size > INLINE_CONTENT
    assert raw.original() == archive.read_bytes()


@pytest.mark.django_db
def test_the_same_file_twice_stays_imported():
    path = str(GOOD_REPORT)
    first = ingest_input(path, "a.xml", via="upload")
    again = ingest_input(path, "a.xml", via="command")
    assert [first[0].status, again[0].status] == ["imported", "duplicate"]
    raw = models.RawInput.objects.get()
    assert (raw.status, raw.source) == (models.InputStatus.IMPORTED, "upload")
