"""Property-based tests of the report parsers: aggregate XML, SMTP TLS JSON, failure reports
(ARF) and the containers around them (gzip, zip, e-mail, mbox, nested). Whatever the bytes,
every payload found is parsed or refused with a reason (reports.parsing.Refused), never an
unexpected exception, within a bounded time and Python memory, and what is parsed fits the
columns it is stored in."""

import base64
import datetime as dt
import gzip
import io
import ipaddress
import json
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.parsing import Refused, parse, unpack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
LIMIT = 1 << 20  # the decompression cap for these inputs
SECONDS = 3.0  # the most one input may take (the machine is shared; typical is milliseconds)
MEMORY = 64 << 20  # the most Python memory one input may hold at once
BIGINT = 2**63  # counts are stored in 64-bit signed columns
FUZZ = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FEWER = settings(FUZZ, max_examples=30)  # inputs of several parts each


def digest(data: bytes) -> list:
    """Every report of `data` read to its end: parsed reports and Refused reasons."""
    found = []
    for item in unpack.payloads(data, "fuzz.input", limit=LIMIT):
        if isinstance(item, Refused):
            found.append(item)
            continue
        try:
            report = parse(item)
            if report.kind == "aggregate":
                records = list(report.records())
                check_aggregate(report, records)
            found.append(report)
        except Refused as refused:
            assert refused.reason
            found.append(refused)
    return found


def bounded_digest(data: bytes) -> list:
    tracemalloc.start()
    started = time.monotonic()
    try:
        found = digest(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < SECONDS
    assert peak < MEMORY
    for item in found:
        if isinstance(item, Refused):
            assert isinstance(item.reason, str) and item.reason.strip()
        elif item.kind == "tls":
            check_tls(item)
        elif item.kind == "failure":
            check_failure(item)
    return found


def check_aggregate(report, records) -> None:
    meta = report.meta
    assert isinstance(meta.begin, dt.datetime) and isinstance(meta.end, dt.datetime)
    assert meta.begin.tzinfo is not None and meta.domain
    assert meta.pct is None or 0 <= meta.pct <= 100
    assert records, "a report without records is refused"
    for record in records:
        ipaddress.ip_address(record.source_ip)
        assert 0 <= record.count < BIGINT
        for result in record.dkim_results + record.spf_results:
            assert all(isinstance(v, str) for v in result.values())


def check_tls(report) -> None:
    assert report.org_name is not None and report.policies
    assert isinstance(report.begin, dt.datetime) and isinstance(report.end, dt.datetime)
    for policy in report.policies:
        assert 0 <= policy.successful < BIGINT and 0 <= policy.failed < BIGINT
        json.dumps([policy.policy_strings, policy.mx_hosts, policy.failure_details])


def check_failure(report) -> None:
    assert report.feedback_type and report.domain
    if report.source_ip:
        ipaddress.ip_address(report.source_ip)
    assert report.arrival_date is None or report.arrival_date.tzinfo is not None


# --- aggregate XML ----------------------------------------------------------------------------

xml_chars = st.characters(blacklist_categories=("Cs", "Cc"))
texts = st.one_of(
    st.text(xml_chars, max_size=40),
    st.text(max_size=10),  # control characters too: XML refuses them, and so must we
    st.sampled_from(["", "0", "-1", "1e3", "18446744073709551616", "9" * 30, "  7 ", "pass",
                     "reject", "none", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1", "1.2.3",
                     "example.com", "xn--nxasmq6b.com", "\u00e9.example", "1700000000"]),
)  # fmt: skip


def mostly(usual: str, *others: str) -> st.SearchStrategy:
    """Usually `usual`, sometimes one of `others` (odd but plausible), now and then any text."""
    odd = st.sampled_from(others or (usual,))
    return st.integers(0, 19).flatmap(
        lambda n: st.just(usual) if n < 14 else odd if n < 18 else texts
    )


def field(name: str, usual: str, *others: str) -> st.SearchStrategy:
    """<name>value</name> (see mostly()), missing one time in twenty."""
    present = mostly(usual, *others).map(lambda text: f"<{name}>{escape(text)}</{name}>")
    return st.integers(0, 19).flatmap(lambda n: present if n else st.just(""))


def element(name: str, *children: st.SearchStrategy) -> st.SearchStrategy:
    """<name> with its children in order, now and then an unknown child or one twice."""
    extra = st.integers(0, 9).flatmap(
        lambda n: st.one_of(field("unknown", "x"), *children) if n == 0 else st.just("")
    )
    return st.tuples(*children, extra).map(lambda parts: f"<{name}>{''.join(parts)}</{name}>")


metadata = element(
    "report_metadata",
    field("org_name", "google.com", "Yahoo! Inc.", "\u00e9xample"),
    field("email", "noreply@google.com", "x"),
    field("report_id", "123", "r-1", "a" * 300),
    element(
        "date_range",
        field("begin", "1700000000", "0", "1700000000.5", "32503680000"),
        field("end", "1700086399", "1699999999", "99999999999999999999"),
    ),
    field("error", "something went wrong"),
)
policy = element(
    "policy_published",
    field("domain", "example.com", "EXAMPLE.com.", "xn--nxasmq6b.com", "\u00e9.example", "a..b"),
    field("adkim", "r", "s", "x"),
    field("aspf", "r", "s"),
    field("p", "none", "quarantine", "reject", "bogus"),
    field("sp", "none", "reject"),
    field("pct", "100", "0", "101", "-5", "50.5"),
    field("fo", "1", "d:s"),
    field("testing", "y", "n"),
    field("discovery_method", "psl", "treewalk"),
)
auth_result = (
    field("domain", "example.com", ""),
    field("selector", "s1", "", "a" * 100),
    field("result", "pass", "fail", "none", "temperror", "permerror", "weird"),
    field("human_result", "ok"),
)
record = element(
    "record",
    element(
        "row",
        field("source_ip", "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "1.1.1", "fe80::1%1"),
        field("count", "1", "0", "-1", "9223372036854775807", "9223372036854775808", "1.5"),
        element(
            "policy_evaluated",
            field("disposition", "none", "quarantine", "reject", "pass"),
            field("dkim", "pass", "fail"),
            field("spf", "pass", "fail"),
            element("reason", field("type", "forwarded", "other"), field("comment", "x")),
        ),
    ),
    element(
        "identifiers",
        field("header_from", "example.com", ""),
        field("envelope_from", "example.com"),
        field("envelope_to", "example.net"),
    ),
    element(
        "auth_results",
        element("dkim", *auth_result),
        element("spf", field("scope", "mfrom", "helo"), *auth_result),
    ),
)  # fmt: skip
feedback = st.tuples(
    st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0'?>\n"]),
    st.sampled_from(["<feedback>", '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">']),
    field("version", "1.0", "2.0"),
    metadata,
    policy,
    st.lists(record, min_size=0, max_size=5).map("".join),
    st.sampled_from(["</feedback>", "</feedback>", "", "</feedback><feedback/>", "</feedback>x"]),
).map("".join)


@FUZZ
@given(feedback)
def test_aggregate_documents(document):
    bounded_digest(document.encode())


def mutations(path: Path) -> st.SearchStrategy:
    """The fixture with bytes replaced, inserted or cut."""
    original = path.read_bytes()

    def mutate(edits):
        data = bytearray(original)
        for position, kind, value in edits:
            at = position % (len(data) + 1)
            if kind == "replace" and at < len(data):
                data[at] = value
            elif kind == "insert":
                data[at:at] = bytes([value]) * (value % 7 + 1)
            else:
                del data[at:]
        return bytes(data)

    kinds = st.sampled_from(["replace", "insert", "cut"])
    edit = st.tuples(st.integers(0, len(original)), kinds, st.integers(0, 255))
    return st.lists(edit, min_size=1, max_size=8).map(mutate)


@FUZZ
@given(mutations(FIXTURES / "aggregate" / "parsedmarc__nice-input.xml"))
def test_aggregate_fixture_mutated(data):
    bounded_digest(data)


# --- SMTP TLS JSON ----------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
TLS_FIELDS = ["organization-name", "date-range", "contact-info", "report-id", "policies"]
POLICY_FIELDS = ["policy", "summary", "failure-details"]


@st.composite
def tls_reports(draw):
    report = json.loads((FIXTURES / "smtp_tls" / "parsedmarc__rfc8460.json").read_text())
    for key in draw(st.one_of(st.just([]), st.lists(st.sampled_from(TLS_FIELDS), max_size=2))):
        report[key] = draw(json_values)
    policies = report.get("policies")
    if isinstance(policies, list) and policies and isinstance(policies[0], dict):
        for key in draw(st.lists(st.sampled_from(POLICY_FIELDS), max_size=2)):
            policies[0][key] = draw(json_values)
        inner = policies[0].get("summary")
        if isinstance(inner, dict):
            for key in ("total-successful-session-count", "total-failure-session-count"):
                if draw(st.booleans()):
                    inner[key] = draw(json_values)
    return json.dumps(report, allow_nan=True).encode()


@FUZZ
@given(st.one_of(tls_reports(), json_values.map(lambda v: json.dumps(v).encode())))
def test_tls_reports(data):
    bounded_digest(data)


# --- failure reports (ARF) --------------------------------------------------------------------

ARF_FIELDS = ["Feedback-Type", "User-Agent", "Version", "Arrival-Date", "Source-IP",
              "Reported-Domain", "Original-Mail-From", "Original-Rcpt-To", "Auth-Failure",
              "Authentication-Results", "Delivery-Result", "DKIM-Domain", "DKIM-Selector",
              "Identity-Alignment", "Reporting-MTA", "X-Other"]  # fmt: skip
header_values = st.one_of(
    texts.map(lambda t: t.replace("\r", " ").replace("\n", " ")),
    st.sampled_from(["auth-failure", "dmarc", "Thu, 1 Jan 2026 00:00:00 +0000", "Mon, 99 Foo",
                     "dns; mx.example", "=?utf-8?b?w6k=?=", "<a@b>"]),
)  # fmt: skip


@st.composite
def arf_messages(draw):
    fields = [
        ("Feedback-Type", draw(mostly("auth-failure", "abuse", "AUTH-FAILURE"))),
        ("Reported-Domain", draw(mostly("example.com", "xn--nxasmq6b.com", "-bad-", ""))),
        ("Source-IP", draw(mostly("192.0.2.9", "2001:db8::9", "not an ip"))),
    ]
    fields = [f for f in fields if draw(st.integers(0, 9))]  # each missing one time in ten
    fields += draw(st.lists(st.tuples(st.sampled_from(ARF_FIELDS), header_values), max_size=6))
    report = "".join(f"{name}: {value}\r\n" for name, value in draw(st.permutations(fields)))
    sample = "".join(
        f"{name}: {value}\r\n"
        for name, value in draw(
            st.lists(
                st.tuples(st.sampled_from(["From", "To", "Subject", "Date", "Received"]),
                          header_values),
                max_size=6,
            )
        )
    )  # fmt: skip
    sample_type = draw(st.sampled_from(["message/rfc822", "text/rfc822-headers", "text/plain"]))
    boundary = "b0undary"
    parts = [
        ("text/plain", draw(texts)),
        ("message/feedback-report", report),
        (sample_type, sample + "\r\nbody\r\n"),
    ]
    if draw(st.integers(0, 9)) == 0:  # now and then parts missing, in any order
        parts = draw(st.permutations(parts))[: draw(st.integers(1, 3))]
    body = "".join(
        f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n{content}\r\n" for kind, content in parts
    )
    head = (
        f"From: {draw(header_values)}\r\nMessage-ID: <{draw(st.integers(0, 99))}@fuzz>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=feedback-report; boundary={boundary}\r\n"
    )
    return (head + "\r\n" + body + f"--{boundary}--\r\n").encode("utf-8", "replace")


@FUZZ
@given(arf_messages())
def test_failure_reports(data):
    bounded_digest(data)


# --- containers -------------------------------------------------------------------------------


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with (
        warnings.catch_warnings(),  # a name twice is one of the cases
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name or "unnamed", (2026, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def mailed(attachments: list[tuple[str, str, bytes]]) -> bytes:
    """An e-mail with these attachments, base64 (written out here: the email package would
    pick its boundary at random, which hypothesis cannot replay)."""
    parts = [b"Content-Type: text/plain\r\n\r\nA report.\r\n"] + [
        (
            f"Content-Type: {mime}\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
        ).encode()
        + base64.encodebytes(data)
        for filename, mime, data in attachments
    ]
    head = (
        b"From: reports@fuzz.example\r\nSubject: Report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="mixed"\r\n\r\n'
    )
    return head + b"".join(b"--mixed\r\n" + part for part in parts) + b"--mixed--\r\n"


def mbox(messages: list[bytes]) -> bytes:
    return b"".join(b"From fuzz@example Thu Jan  1 00:00:00 2026\n" + m + b"\n" for m in messages)


names = st.sampled_from(["r.xml", "r.json", "r.xml.gz", "r.zip", "../../etc/x", "", "a/b.xml"])
mimes = st.sampled_from(["application/gzip", "application/zip", "text/xml", "application/json",
                         "application/octet-stream", "message/rfc822", "image/png"])  # fmt: skip
leaves = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"\x1f\x8b", b"PK\x03\x04", b"PK\x05\x06" + b"\0" * 18, b"From x\n",
                     b"<?xml version='1.0'?><feedback>", b'{"policies": []}', b""]),
    feedback.map(str.encode),
    arf_messages(),
    tls_reports(),
)  # fmt: skip


def cut(data: bytes, at: int) -> bytes:
    return data[: at % (len(data) + 1)]


containers = st.recursive(
    leaves,
    lambda inner: st.one_of(
        inner.map(gzipped),
        st.lists(st.tuples(names, inner), min_size=1, max_size=3).map(zipped),
        st.lists(st.tuples(names, mimes, inner), max_size=3).map(mailed),
        st.lists(
            inner.map(lambda d: mailed([("r.bin", "application/octet-stream", d)])),
            min_size=1,
            max_size=3,
        ).map(mbox),
        st.tuples(inner, st.integers(0, 10_000)).map(lambda pair: cut(*pair)),
    ),
    max_leaves=4,
)


@FEWER
@given(containers)
def test_nested_containers(data):
    bounded_digest(data)


def test_a_deep_nest_of_gzip_is_refused_with_a_reason():
    data = (FIXTURES / "aggregate" / "parsedmarc__nice-input.xml").read_bytes()
    for _ in range(40):
        data = gzipped(data)
    [item] = bounded_digest(data)
    assert isinstance(item, Refused)
