"""Containers: the payloads found in plain, gzip, zip, e-mail and mbox inputs, and what is refused.

Inputs are built here (gzip, zipfile, email.message, and a small zip writer for what zipfile
cannot write: pre-compressed bombs, encrypted members) or taken from the real fixtures, whose
README says what each one holds.
"""

import email.message
import email.policy
import gzip
import io
import json
import os
import re
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import pytest
from lxml import etree

from reports.parsing.types import Payload, Refused
from reports.parsing.unpack import SEP, is_compressed, payloads, sniff

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
MB = 2**20
GB = 2**30
REPORT = (FIXTURES / "aggregate" / "parsedmarc__nice-input.xml").read_bytes()
TLS_REPORT = (FIXTURES / "smtp_tls" / "parsedmarc__rfc8460.json").read_bytes()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


def drain(source, name="input", **kwargs) -> list[tuple[str, str, object]]:
    """What payloads() gives, each payload read to the end: (kind, name, bytes), or
    ("refused", name, reason) for a Refused item or a payload whose reading is refused."""
    results = []
    for item in payloads(source, name, **kwargs):
        if isinstance(item, Refused):
            results.append(("refused", item.name, item.reason))
            continue
        try:
            with item.open() as stream:
                results.append((item.kind, item.name, stream.read()))
        except Refused as exc:
            results.append(("refused", item.name, exc.reason))
    return results


def read_in_chunks(payload: Payload, chunk: int = MB) -> int:
    total = 0
    with payload.open() as stream:
        while data := stream.read(chunk):
            total += len(data)
    return total


def records(data: bytes) -> int:
    return len(etree.fromstring(data).findall(".//{*}record"))


def feedback(filler: int = 0) -> bytes:
    return b'<?xml version="1.0"?><feedback>' + b" " * filler + b"</feedback>"


def zip_of(*members: tuple[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


# --- a zip writer for what zipfile cannot write -----------------------------------------


class Member(NamedTuple):
    name: str
    data: bytes  # as stored: compressed and/or encrypted
    crc: int
    size: int  # the declared uncompressed size
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0


def zip_archive(members: list[Member]) -> bytes:
    out, directory = io.BytesIO(), []
    for member in members:
        name = member.name.encode()
        fields = struct.pack(
            "<HHHHHIIIHH", 20, member.flags, member.method, 0, 0x21, member.crc,
            len(member.data), member.size, len(name), 0,
        )  # fmt: skip
        offset = out.tell()
        out.write(b"PK\x03\x04" + fields + name + member.data)
        tail = struct.pack("<HHHII", 0, 0, 0, 0, offset)
        directory.append(b"PK\x01\x02" + struct.pack("<H", 20) + fields + tail + name)
    start, listing = out.tell(), b"".join(directory)
    count = len(members)
    end = struct.pack("<HHHHIIH", 0, 0, count, count, len(listing), start, 0)
    return out.getvalue() + listing + b"PK\x05\x06" + end


def as_zip64(archive: bytes) -> bytes:
    """The same archive ending with zip64 records, as writers do past 65,535 members."""
    at = archive.rindex(b"PK\x05\x06")
    _, _, _, entries, size, offset, _ = struct.unpack("<HHHHIIH", archive[at + 4 : at + 22])
    record = struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<IQI", 0, at, 1)
    end = struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return archive[:at] + b"PK\x06\x06" + record + b"PK\x06\x07" + locator + b"PK\x05\x06" + end


def zipcrypto(plain: bytes, password: bytes, crc: int) -> bytes:
    """Traditional PKWARE encryption (APPNOTE 6.1), the one zipfile can decrypt."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def crc_step(value: int, byte: int) -> int:
        return zlib.crc32(bytes([byte]), value ^ 0xFFFFFFFF) ^ 0xFFFFFFFF

    def update(byte: int) -> None:
        keys[0] = crc_step(keys[0], byte)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = crc_step(keys[2], keys[1] >> 24)

    for byte in password:
        update(byte)
    out = bytearray()
    for byte in os.urandom(11) + bytes([crc >> 24]) + plain:
        temp = keys[2] | 2
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    return bytes(out)


# --- bombs --------------------------------------------------------------------------------


def deflated_zeros(prefix: bytes, size: int) -> tuple[bytes, int]:
    """Raw deflate data of `prefix` then `size` zero bytes, and its CRC-32.

    After a full flush the compressor starts afresh, so every further MiB of zeros compresses
    to the same bytes: they are repeated rather than compressed again (milliseconds, not the
    seconds 1 GB through zlib takes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(MB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(bytes(MB)) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    crc, zeros = zlib.crc32(prefix), bytes(MB)
    for _ in range(size // MB):
        crc = zlib.crc32(zeros, crc)
    return start + block * (size // MB) + compressor.flush(), crc


def gzip_member(deflated: bytes, crc: int, size: int) -> bytes:
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + deflated + struct.pack("<II", crc, size & 0xFFFFFFFF)


BOMB_PREFIX = feedback()[:-11]  # an XML report that goes on with a gigabyte of zeros


@pytest.fixture(scope="session")
def xml_bomb() -> tuple[bytes, int, int]:
    deflated, crc = deflated_zeros(BOMB_PREFIX, GB)
    return deflated, crc, len(BOMB_PREFIX) + GB


@pytest.fixture(scope="session")
def zero_bomb() -> bytes:
    deflated, crc = deflated_zeros(b"", GB)
    return gzip_member(deflated, crc, GB)


def test_the_bomb_builder_makes_what_it_says():
    deflated, crc = deflated_zeros(b"<x>", 8 * MB)
    data = zlib.decompress(deflated, -15)
    assert data == b"<x>" + bytes(8 * MB)
    assert crc == zlib.crc32(data)
    assert gzip.decompress(gzip_member(deflated, crc, len(data))) == data


def test_a_gigabyte_gzip_bomb_is_refused_at_the_cap_in_under_a_second(xml_bomb, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 100 * MB
    deflated, crc, size = xml_bomb
    bomb = gzip_member(deflated, crc, size)
    assert len(bomb) < 2 * MB
    started = time.perf_counter()
    [payload] = payloads(bomb, "bomb.xml.gz")
    assert payload.kind == "xml"
    with pytest.raises(Refused, match=r"^decompressed size exceeds the 100 MB limit$"):
        read_in_chunks(payload, 32768)
    assert time.perf_counter() - started < 1.0


def test_a_gigabyte_of_gzipped_zeros_is_refused_in_under_a_second(zero_bomb):
    started = time.perf_counter()
    [refused] = payloads(zero_bomb, "zeros.gz")
    assert time.perf_counter() - started < 1.0
    assert refused.reason.startswith("gzip data holds unrecognised data")


def test_a_gigabyte_zip_bomb_is_refused_in_under_a_second(xml_bomb, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 100 * MB
    deflated, crc, size = xml_bomb
    bomb = zip_archive([Member("report.xml", deflated, crc, size)])
    assert len(bomb) < 2 * MB
    started = time.perf_counter()
    [refused] = payloads(bomb, "bomb.zip")
    assert time.perf_counter() - started < 1.0
    assert refused.reason == "decompressed size exceeds the 100 MB limit"
    assert refused.name == f"bomb.zip{SEP}member report.xml"


def test_a_zip_member_lying_about_its_size_is_refused_in_under_a_second(xml_bomb):
    deflated, crc, _ = xml_bomb
    liar = zip_archive([Member("report.xml", deflated, crc, 1000)])
    started = time.perf_counter()
    [(kind, _, reason)] = drain(liar, "liar.zip")
    assert time.perf_counter() - started < 1.0
    assert kind == "refused"
    assert reason.startswith("corrupt zip member (Bad CRC-32")


def test_the_cap_counts_the_inflated_bytes_exactly():
    data = feedback(filler=5000)
    [(kind, _, out)] = drain(gzip.compress(data), limit=len(data))
    assert (kind, out) == ("xml", data)
    [(kind, _, reason)] = drain(gzip.compress(data), limit=len(data) - 1)
    assert (kind, reason) == (
        "refused",
        f"decompressed size exceeds the {len(data) - 1:,} bytes limit",
    )


# --- the real fixtures --------------------------------------------------------------------


def readme_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (FIXTURES / "README.md").read_text().splitlines():
        if match := re.match(r"\| `([^`]+)` \|", line):
            rows[match.group(1)] = [cell.strip() for cell in line.split(" | ")]
    return rows


README = readme_rows()
CONTAINER_FIXTURES = sorted(
    path.relative_to(FIXTURES).as_posix()
    for path in FIXTURES.glob("*/*")
    if path.suffix in (".eml", ".gz", ".zip")
)
PLAIN_FIXTURES = sorted(
    path.relative_to(FIXTURES).as_posix()
    for path in FIXTURES.glob("*/*")
    if path.suffix in (".xml", ".json") and path.stat().st_size
)


def test_the_fixture_lists_cover_the_readme():
    listed = {name.split("/")[1] for name in CONTAINER_FIXTURES + PLAIN_FIXTURES}
    assert listed | {"parsedmarc__empty.xml"} == set(README)


@pytest.mark.parametrize("fixture", CONTAINER_FIXTURES)
def test_each_container_fixture_holds_what_the_readme_says(fixture):
    folder, file = fixture.split("/")
    row = README[file]
    results = drain(FIXTURES / fixture, file)
    if row[4] == "no report inside":
        assert results == [("refused", results[0][1], "gzip data holds a PNG image, not a report")]
        assert results[0][1].startswith(f"{file}{SEP}attachment 2 (")
        return
    [(kind, name, data)] = results
    if folder == "aggregate":
        assert kind == "xml"
        assert records(data) == int(row[4].split(" / ")[0])
    elif folder == "smtp_tls":
        assert kind == "json"
        assert len(json.loads(data)["policies"]) == int(row[4].split(" pol;")[0])
    else:
        assert (kind, name) == ("arf", file)
        assert data.endswith((FIXTURES / fixture).read_bytes()[-200:])
    if file.endswith(".eml"):
        assert name.startswith(f"{file}{SEP}attachment ") or kind == "arf"


@pytest.mark.parametrize("fixture", PLAIN_FIXTURES)
def test_each_plain_fixture_is_one_payload_of_its_own_bytes(fixture):
    path = FIXTURES / fixture
    [(kind, name, data)] = drain(path, fixture)
    assert (kind, name, data) == (path.suffix[1:], fixture, path.read_bytes())


def test_the_forensic_fixtures_come_with_their_parsed_message():
    path = FIXTURES / "forensic" / "parsedmarc__netease_rent_reminder.eml"
    [payload] = payloads(path, "netease.eml")
    assert isinstance(payload.message, email.message.Message)
    assert payload.message["Subject"].startswith("[Netease DMARC Failure Report]")


def test_a_zip_labelled_gzip_is_unzipped():
    fixture = FIXTURES / "aggregate" / "modoboa__163.com_mislabelled-gzip.eml"
    [(kind, name, data)] = drain(fixture, "163.eml")
    assert kind == "xml"
    assert name == (
        f"163.eml{SEP}attachment 2 (163.com!ngyn.org!1436054400!1436140799.zip)"
        f"{SEP}member 163.com!ngyn.org!1436054400!1436140799.xml"
    )
    assert records(data) == 1


def test_a_gzip_with_trailing_bytes_gives_the_report_and_ignores_them():
    [(kind, _, data)] = drain(gzip.compress(REPORT) + b"\r\n\x00\x00trailer")
    assert (kind, data) == ("xml", REPORT)
    message = FIXTURES / "aggregate" / "parsedmarc__mimecast-weird-gzip.eml"
    [(kind, _, data)] = drain(message)
    assert kind == "xml"
    assert data.rstrip().endswith(b"</feedback>")


def test_concatenated_gzip_members_are_joined():
    [(kind, _, data)] = drain(gzip.compress(REPORT[:1000]) + gzip.compress(REPORT[1000:]))
    assert (kind, data) == ("xml", REPORT)


def test_double_gzip_is_unwrapped_twice():
    [(kind, name, data)] = drain(gzip.compress(gzip.compress(REPORT)), "r.xml.gz.gz")
    assert (kind, name, data) == ("xml", "r.xml.gz.gz", REPORT)
    [(kind, _, data)] = drain(FIXTURES / "aggregate" / "tierpod__test.xml.gz.gz")
    assert kind == "xml"
    assert records(data) == 2


def test_nesting_is_bounded():
    data = REPORT
    for _ in range(5):
        data = gzip.compress(data)
    [(kind, _, out)] = drain(data)
    assert (kind, out) == ("xml", REPORT)
    [(kind, _, reason)] = drain(gzip.compress(data))
    assert (kind, reason) == ("refused", "containers nested too deeply (more than 5)")


def test_a_payload_opens_afresh_each_time_and_lxml_reads_it():
    [payload] = payloads(FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.gz", "n.gz")
    with payload.open() as first, payload.open() as second:
        assert first.read(100) == second.read(100) == REPORT[:100]
        assert first.read() == REPORT[100:]
    with payload.open() as stream:
        found = sum(1 for _ in etree.iterparse(stream, tag="{*}record"))
    assert found == 20


# --- zip ----------------------------------------------------------------------------------


def test_zip_members_come_out_one_by_one_and_a_bad_one_does_not_hide_the_others():
    archive = zip_of(("a.xml", REPORT), ("logo.png", PNG), ("b.json", TLS_REPORT))
    assert drain(archive, "r.zip") == [
        ("xml", f"r.zip{SEP}member a.xml", REPORT),
        ("refused", f"r.zip{SEP}member logo.png", "zip member holds a PNG image, not a report"),
        ("json", f"r.zip{SEP}member b.json", TLS_REPORT),
    ]


def test_zip_directories_are_skipped_and_gzip_members_unwrapped():
    archive = zip_of(("reports/", b""), ("reports/r.xml.gz", gzip.compress(REPORT)))
    assert drain(archive, "r.zip") == [("xml", f"r.zip{SEP}member reports/r.xml.gz", REPORT)]


def test_zip_members_together_are_held_to_the_cap():
    first, second = feedback(60_000), feedback(50_000)
    results = drain(zip_of(("1.xml", first), ("2.xml", second)), limit=100_000)
    assert results[0][::2] == ("xml", first)
    assert results[1][::2] == (
        "refused",
        "decompressed size of all members exceeds the 100,000 bytes limit",
    )


def test_an_encrypted_zip_member_is_refused():
    plain = feedback(100)
    crc = zlib.crc32(plain)
    secret = Member("secret.xml", zipcrypto(plain, b"pw", crc), crc, len(plain), 0, 0x1)
    archive = zip_archive([secret, Member("open.xml", plain, crc, len(plain), 0)])
    with zipfile.ZipFile(io.BytesIO(archive)) as check:
        assert check.read("secret.xml", pwd=b"pw") == plain  # really encrypted, and readable
    assert drain(archive, "e.zip") == [
        ("refused", f"e.zip{SEP}member secret.xml", "zip member is encrypted"),
        ("xml", f"e.zip{SEP}member open.xml", plain),
    ]


def test_an_unsupported_zip_method_is_refused():
    archive = zip_archive([Member("r.xml", b"\x00" * 10, 0, 10, method=9)])
    [(kind, _, reason)] = drain(archive)
    assert (kind, reason) == (
        "refused",
        "zip member uses compression method 9, which is not supported",
    )


def test_a_truncated_zip_is_refused():
    data = (FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.zip").read_bytes()
    [(kind, name, reason)] = drain(data[: len(data) // 2], "cut.zip")
    assert (kind, name) == ("refused", "cut.zip")
    assert reason == "corrupt or truncated zip archive (File is not a zip file)"


def test_a_damaged_zip_member_is_refused():
    data = bytearray(zip_of(("r.xml", REPORT), method=zipfile.ZIP_STORED))
    data[data.index(b"<feedback") + 3] ^= 0xFF
    [(kind, _, reason)] = drain(bytes(data))
    assert kind == "refused"
    assert reason == "corrupt zip member (Bad CRC-32 for file 'r.xml')"


def test_zip_archives_with_too_many_members_are_refused_before_being_listed():
    archive = zip_of(*[(f"{n}.xml", REPORT[:100]) for n in range(101)])
    zip64 = as_zip64(archive)
    with zipfile.ZipFile(io.BytesIO(zip64)) as check:
        assert len(check.infolist()) == 101  # a valid zip64 archive
    for data in (archive, zip64):
        [(kind, _, reason)] = drain(data)
        assert (kind, reason) == ("refused", "zip archive has 101 members, more than 100")
    assert drain(zip_of(*[(f"{n}.xml", REPORT[:100]) for n in range(100)]))[99][0] == "xml"


def test_an_empty_zip_is_refused():
    [(kind, _, reason)] = drain(zip_of(("empty/", b"")))
    assert (kind, reason) == ("refused", "zip archive holds no files")
    [(kind, _, reason)] = drain(zip_of())
    assert (kind, reason) == ("refused", "zip archive holds no files")


# --- gzip trouble -------------------------------------------------------------------------


def test_a_truncated_gzip_is_refused():
    data = (FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.gz").read_bytes()
    assert drain(data[: len(data) // 2], "cut.gz") == [("refused", "cut.gz", "truncated gzip data")]
    big = gzip.compress(feedback(0) + os.urandom(300_000).hex().encode())
    [payload] = payloads(big[: len(big) * 3 // 4], "cut.gz")  # the start is still there
    with pytest.raises(Refused, match=r"^truncated gzip data$"):
        read_in_chunks(payload)


def test_corrupt_gzip_data_is_refused():
    data = bytearray(gzip.compress(REPORT))
    data[20:40] = bytes(20)
    [(kind, _, reason)] = drain(bytes(data))
    assert kind == "refused"
    assert reason.startswith("corrupt gzip data (Error -3 while decompressing data")


def test_a_png_inside_gzip_is_refused_as_such():
    assert drain(gzip.compress(PNG), "x.xml.gz") == [
        ("refused", "x.xml.gz", "gzip data holds a PNG image, not a report")
    ]


# --- what is not a report -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty input"),
        (PNG, "PNG image, not a report"),
        (b"%PDF-1.7\n", "PDF document, not a report"),
        (b"<!DOCTYPE html>\n<html><body>Hi</body></html>", "HTML, not a report"),
        (b"\n  <div>Your report</div>", "HTML, not a report"),
        (b"BZh91AY&SY", "bzip2-compressed data, not a report"),
        (
            bytes(range(40)),
            'not a report: unrecognised data (starts with "\\x00\\x01\\x02\\x03\\x04\\x05\\x06'
            '\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f")',
        ),
        (
            b"Hello, here is the report",
            'not a report: unrecognised data (starts with "Hello, here is t")',
        ),
    ],
)
def test_what_is_not_a_report_is_refused_by_name(data, reason):
    assert drain(data, "upload") == [("refused", "upload", reason)]


def test_an_input_over_the_cap_is_refused_unread(tmp_path):
    assert drain(REPORT, "big.xml", limit=1000) == [
        ("refused", "big.xml", "input size exceeds the 1,000 bytes limit")
    ]
    path = tmp_path / "big.xml"
    path.write_bytes(REPORT)
    assert drain(path, "big.xml", limit=1000)[0][2] == "input size exceeds the 1,000 bytes limit"


def test_a_missing_file_or_a_directory_is_refused(tmp_path):
    [(kind, _, reason)] = drain(tmp_path / "nothing.xml", "nothing.xml")
    assert (kind, reason) == ("refused", "cannot read the input (No such file or directory)")
    assert drain(tmp_path, "dir") == [("refused", "dir", "the input is not a regular file")]


# --- streaming from disk ------------------------------------------------------------------


def big_report(size: int) -> bytes:
    record = b"<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>\n"
    return feedback()[:-11] + record * (size // len(record)) + b"</feedback>"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_large_file_is_streamed_not_read_into_memory(tmp_path, compress):
    data = big_report(40 * MB)
    path = tmp_path / "big.xml"
    path.write_bytes(gzip.compress(data, 1) if compress else data)
    del data
    tracemalloc.start()
    try:
        [payload] = payloads(path, "big.xml", limit=GB)
        total = read_in_chunks(payload, 32768)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 40 * MB - 100
    assert peak < 4 * MB


# --- e-mail -------------------------------------------------------------------------------


def message_with(
    *attachments: tuple[bytes, str, str], subject="Report"
) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = "reports@example.net"
    message["To"] = "dmarc@example.com"
    message["Subject"] = subject
    message.set_content("This is a report.\n")
    message.add_alternative("<html><body><div>This is a report.</div></body></html>", "html")
    for data, mime, filename in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def test_an_attachment_is_sniffed_whatever_its_declared_type():
    message = message_with((gzip.compress(TLS_REPORT), "application/octet-stream", "r.bin"))
    assert drain(message.as_bytes(), "m.eml") == [
        ("json", f"m.eml{SEP}attachment 3 (r.bin)", TLS_REPORT)
    ]


def test_a_quoted_printable_xml_attachment_is_decoded():
    message = message_with()
    message.add_attachment(REPORT.decode(), subtype="xml", cte="quoted-printable", filename="r.xml")
    assert b"=3D" in message.as_bytes()
    assert drain(message.as_bytes(), "m.eml") == [
        ("xml", f"m.eml{SEP}attachment 3 (r.xml)", REPORT)
    ]


def test_a_message_without_a_report_is_refused_once():
    message = message_with((PNG[:8] + bytes(50), "image/png", "logo.png"))
    assert drain(message.as_bytes(), "m.eml") == [
        ("refused", "m.eml", "no report found in this e-mail message")
    ]


def test_a_zip_attachment_with_a_bad_member_still_gives_the_good_one():
    archive = zip_of(("r.xml", REPORT), ("x.png", PNG))
    message = message_with((archive, "application/zip", "r.zip"))
    assert [result[::2] for result in drain(message.as_bytes(), "m.eml")] == [
        ("xml", REPORT),
        ("refused", "zip member holds a PNG image, not a report"),
    ]


FAILURE_REPORT = """\
From: ruf@example.net
To: dmarc@example.com
Subject: DMARC failure report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b1"

--b1
Content-Type: text/plain

A message failed DMARC.

--b1
Content-Type: message/feedback-report

Feedback-Type: auth-failure
Auth-Failure: dmarc

--b1
Content-Type: message/rfc822

From: someone@example.com
Subject: hello

{body}
--b1--
"""


def failure_report(body: str = "Hello") -> bytes:
    return FAILURE_REPORT.format(body=body).encode()


def test_a_failure_report_is_one_arf_payload_of_the_whole_message():
    raw = failure_report()
    [payload] = payloads(raw, "ruf.eml")
    assert (payload.kind, payload.name) == ("arf", "ruf.eml")
    assert payload.message.get_content_type() == "multipart/report"
    with payload.open() as stream:
        assert stream.read() == raw


def test_a_message_nested_past_the_e_mail_parser_s_recursion_is_refused():
    levels = 2000
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (n, n) for n in range(levels)
    )
    closing = b"".join(b"--b%d--\n" % n for n in reversed(range(levels)))
    deep = b"From: a@example.net\nMIME-Version: 1.0\n" + opening + b"\nhi\n" + closing
    [(kind, _, reason)] = drain(deep, "deep.eml")
    assert kind == "refused"
    assert reason.startswith("unreadable e-mail message (maximum recursion depth exceeded")


# --- mbox ---------------------------------------------------------------------------------


def mbox_of(*messages: bytes) -> bytes:
    out = []
    for message in messages:
        body = re.sub(rb"(?m)^(>*From )", rb">\1", message.replace(b"\r\n", b"\n"))
        out.append(
            b"From sender@example.net Mon Jan  1 00:00:00 2024\n" + body.rstrip(b"\n") + b"\n\n"
        )
    return b"".join(out)


def test_an_mbox_gives_every_message_s_reports(tmp_path):
    box = mbox_of(
        (FIXTURES / "aggregate" / "mox__yahoo.eml").read_bytes(),
        (FIXTURES / "smtp_tls" / "mailauth__rpt02-plain.eml").read_bytes(),
        (FIXTURES / "forensic" / "mailauth__arf-003-auth-failure-bodyhash.eml").read_bytes(),
        failure_report(body="From here on, a line mbox must quote"),
    )
    assert b"\n>From here on" in box
    path = tmp_path / "reports.mbox"
    path.write_bytes(box)
    for source in (box, path):
        results = drain(source, "box")
        assert [(kind, name.split(SEP)[1]) for kind, name, _ in results] == [
            ("xml", "message 1"),
            ("json", "message 2"),
            ("arf", "message 3"),
            ("arf", "message 4"),
        ]
        attachment = "attachment 2 (yahoo.com!ueber.net!1559520000!1559606399.xml.gz)"
        assert results[0][1] == f"box{SEP}message 1{SEP}{attachment}"
        assert b"\nFrom here on, a line mbox must quote" in results[3][2]
        assert b">From here" not in results[3][2]


def test_an_mbox_of_one_message_is_named_after_the_input():
    [(kind, name, _)] = drain(mbox_of(failure_report()), "one.mbox")
    assert (kind, name) == ("arf", "one.mbox")


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,kind",
    [
        (b"", "empty"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"PK\x03\x04\x14\x00", "zip"),
        (b"PK\x05\x06" + bytes(18), "zip"),
        (b'\xef\xbb\xbf \r\n<?xml version="1.0"?>\n<!-- hi -->\n<feedback>', "xml"),
        (b"<ns1:feedback xmlns:ns1='urn:x'>", "xml"),
        ("<feedback/>".encode("utf-16"), "xml"),  # with its byte order mark
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">', "html"),
        (b"<!doctype HTML>", "html"),
        (b"<https://example.com/> was it", "unknown"),
        (b' {\n "organization-name": "x"}', "json"),
        (b'[{"organization-name": "x"}]', "json"),
        (b"[Preview] This is a DMARC report", "unknown"),
        (b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nFrom: x\n", "mbox"),
        (b"From now on, reports go elsewhere.\n", "unknown"),
        (b"Received: from x\n\tby y; Mon, 1 Jan 2024\nSubject: hi\n\nbody\n", "email"),
        (b"X-Custom: 1\nNote: not mail\n\nbody\n", "unknown"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"GIF89a", "gif"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
    ],
)
def test_sniff(data, kind):
    assert sniff(data) == kind


def test_is_compressed():
    aggregate = FIXTURES / "aggregate"
    assert is_compressed((aggregate / "parsedmarc__nice-input.xml.gz").read_bytes()[:8])
    assert is_compressed((aggregate / "parsedmarc__nice-input.xml.zip").read_bytes()[:8])
    assert not is_compressed(REPORT[:8])
    assert not is_compressed(b"")
