"""DMARC failure report (ARF, RFC 5965 / RFC 6591) parsing: real fixtures, built messages, and
the promise that no body text of the reported message is kept."""

import base64
import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

from reports.parsing import failure
from reports.parsing.types import Payload, Refused, open_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "forensic"
UTC = dt.UTC
POLICIES = pytest.mark.parametrize(
    "policy", [email.policy.compat32, email.policy.default], ids=["compat32", "default"]
)

# Per fixture: fields expected on the report, header names the sample must show, and phrases
# of the sample's body (or of a body copy elsewhere in the report) that must appear nowhere.
EXPECTED = {
    "mailauth__arf-003-auth-failure-bodyhash.eml": {
        "fields": {
            "source_ip": "192.0.2.1",
            "reported_domain": "example.net",
            "auth_failure": "bodyhash",
            "dkim_domain": "example.net",
            "user_agent": "SomeDKIMFilter/1.0",
            "original_mail_from": "randomuser@example.net",
            "original_rcpt_to": "user@example.com",
            "arrival_date": dt.datetime(2010, 4, 14, 19, 15, 31, tzinfo=UTC),
            "org_name": "example.com",
            "report_id": "",
        },
        "headers": {"DKIM-Signature", "Received", "From", "To", "Date", "Subject"},
        "secret": ["making sure DKIM is working"],
    },
    "mailauth__arf-004-opendmarc-dmarc.eml": {
        "fields": {
            "source_ip": "148.163.85.135",
            "reported_domain": "interpublication.org",
            "auth_failure": "dmarc",
            "user_agent": "OpenDMARC-Filter/1.3.2",
            "original_envelope_id": "8BE2660E72",
            "authentication_results": "box.mydomain.name; dmarc=fail "
            "header.from=interpublication.org",
            "arrival_date": None,
            "org_name": "box.mydomain.name",
            "report_id": "20211005043702.CF8FA658E0@box.mydomain.name",
        },
        "headers": {"Authentication-Results", "Received", "DKIM-Signature", "Reply-To", "Date"},
        "secret": ["AutoTEAM24"],  # Organization: is not a kept header
    },
    "mailauth__arf-005-rfc6591-example.eml": {
        "fields": {
            "source_ip": "192.0.2.1",
            "reported_domain": "a.sender.example",
            "auth_failure": "bodyhash",
            "dkim_domain": "sender.example",
            "dkim_selector": "testkey",
            "dkim_identity": "@sender.example",
            "original_envelope_id": "o3F52gxO029144",
            "arrival_date": dt.datetime(2011, 10, 8, 20, 15, 58, tzinfo=UTC),
            "org_name": "mail.receiver.example",
            "report_id": "433689.81121.example@mta.mail.receiver.example",
        },
        "headers": {"Subject", "From", "To", "Message-ID", "DKIM-Signature", "Reply-To"},
        # DKIM-Canonicalized-Body carries the body, base64-encoded.
        "secret": ["VGhpcyBpcyBhIG1lc3NhZ2UgYm9keSB0", "full bank credentials"],
    },
    "parsedmarc__dmarc_ruf_report_linkedin.crlf.eml": {
        "fields": {
            "source_ip": "10.10.10.10",
            "reported_domain": "example.com",
            "auth_failure": "dmarc",
            "delivery_result": "delivered",
            "original_mail_from": "",
            "original_rcpt_to": "recipient@linkedin.com",
            "arrival_date": dt.datetime(2019, 4, 30, 2, 9, tzinfo=UTC),
            "org_name": "linkedin.com",
            "report_id": "BB.91.26019.C3EA7CC5@mail516.prod.linkedin.com",
        },
        "headers": {"From", "To", "Subject", "Date", "Message-ID", "Return-Path"},
        "secret": ["HTML Text", "Alternative Text", "Thread Topic line"],
    },
    "parsedmarc__dmarc_ruf_report_linkedin.eml": {
        "fields": {
            "source_ip": "10.10.10.10",
            "reported_domain": "example.com",
            "auth_failure": "dmarc",
            "delivery_result": "delivered",
            "original_rcpt_to": "recipient@linkedin.com",
            "org_name": "linkedin.com",
        },
        "headers": {"From", "To", "Subject", "Date", "Message-ID"},
        "secret": ["HTML Text", "Alternative\nText", "Alternative Text"],
    },
    "parsedmarc__domain.de_sharepoint_10.10.10.10.eml": {
        "fields": {
            "source_ip": "10.10.10.10",
            "reported_domain": "domain.de",
            "auth_failure": "dmarc",
            "delivery_result": "smg-policy-action",
            "original_mail_from": "sharepoint@domain.de",
            "arrival_date": dt.datetime(2018, 10, 1, 9, 20, 27, tzinfo=UTC),
            "org_name": "domain.de",
            "report_id": "OF587285BA.CB01D107-ONC1258319.00334FCF@LocalDomain",
        },
        "headers": {"From", "To", "Subject", "Date", "Message-ID", "Received"},
        "secret": ["MS Exchange Server version", "wettbewerb'"],
    },
    "parsedmarc__exim_plain_text_only_no_arf_part.eml": {
        "fields": {
            "source_ip": "203.0.113.68",
            "reported_domain": "example.com",
            "auth_failure": "dmarc",
            "identity_alignment": "none",
            "delivery_result": "delivered",
            "arrival_date": dt.datetime(2025, 4, 7, 21, 16, 9, tzinfo=UTC),
            "org_name": "node01.mailgate.example.net",
            "report_id": "E1u1tpB-00AA5u-ED@node04.mailgate.example.net",
        },
        "headers": {"Subject", "From", "Message-ID", "Received", "Authentication-Results"},
        "secret": ["X-Mailer", "iPhone Mail"],
    },
    "parsedmarc__netease_rent_reminder.eml": {
        "fields": {
            "source_ip": "167.89.69.24",
            "reported_domain": "cardinal.com",
            "auth_failure": "",  # NetEase sends no Auth-Failure field
            "dkim_domain": "entrata.com",
            "identity_alignment": "spf,dkim",
            "delivery_result": "delivered",
            "user_agent": "NtesDmarcReporter/1.0",
            "original_envelope_id": "N8CowEApcUPo6q1bnXlMAA--.44392S3",
            "original_mail_from": "bounces+1137616-c1ad-xsj399=163.com@email.entrata.com",
            "arrival_date": dt.datetime(2018, 9, 28, 8, 48, 42, tzinfo=UTC),
            "org_name": "163.com",
            "report_id": "5BADEAEC.AC2A83.17156@m12-184.163.com",
        },
        "headers": {"From", "To", "Subject", "Date", "Message-ID", "Received"},
        "secret": ["Thread-Index", "AQHUVwgr2Hz5Jp"],
    },
}
ABUSE = "mailauth__arf-001-abuse-not-dmarc.eml"


def parse_bytes(data: bytes, policy=email.policy.compat32) -> failure.FailureReport:
    message = email.message_from_bytes(data, policy=policy)
    return failure.parse(
        Payload(name="report.eml", kind="arf", open=open_bytes(data), message=message)
    )


def refusal(data: bytes, policy=email.policy.compat32) -> str:
    with pytest.raises(Refused) as caught:
        parse_bytes(data, policy)
    return caught.value.reason


def test_every_fixture_is_covered():
    assert {p.name for p in FIXTURES.iterdir()} == set(EXPECTED) | {ABUSE}


@POLICIES
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name, policy):
    report = parse_bytes((FIXTURES / name).read_bytes(), policy)
    expected = EXPECTED[name]
    assert report.feedback_type == "auth-failure"
    for field, value in expected["fields"].items():
        assert getattr(report, field) == value, field
    assert report.domain == report.reported_domain
    names = {header for header, _ in report.sample_headers}
    assert expected["headers"] <= names
    everything = repr(report)
    for phrase in expected["secret"]:
        assert phrase not in everything


def test_both_policies_give_the_same_report():
    for name in EXPECTED:
        data = (FIXTURES / name).read_bytes()
        assert parse_bytes(data, email.policy.compat32) == parse_bytes(data, email.policy.default)


@POLICIES
def test_encoded_display_name_is_decoded(policy):
    report = parse_bytes(
        (FIXTURES / "parsedmarc__domain.de_sharepoint_10.10.10.10.eml").read_bytes(), policy
    )
    sample = dict(report.sample_headers)
    assert sample["From"] == '"Interaktive Wettbewerber-Übersicht" <sharepoint@domain.de>'
    assert sample["Subject"] == "Subject"


@POLICIES
def test_abuse_report_is_refused(policy):
    assert refusal((FIXTURES / ABUSE).read_bytes(), policy) == (
        "ARF feedback type 'abuse' is not an authentication failure report"
    )


def test_message_is_parsed_from_bytes_when_not_given():
    data = (FIXTURES / "mailauth__arf-005-rfc6591-example.eml").read_bytes()
    report = failure.parse(Payload(name="x.eml", kind="arf", open=open_bytes(data)))
    assert report.dkim_selector == "testkey"


# --- built messages ------------------------------------------------------------------------

FIELDS = """Feedback-Type: auth-failure
User-Agent: Test/1.0
Version: 1
Original-Mail-From: <bounce@sender.example>
Original-Rcpt-To: <a@receiver.example>
Original-Rcpt-To: <b@receiver.example>
Arrival-Date: Tue, 7 May 2024 10:00:00 +0200
Source-IP: 192.0.2.7
Reported-Domain: sender.example
Auth-Failure: dmarc
Authentication-Results: receiver.example; dmarc=fail header.from=sender.example
Authentication-Results: receiver.example; spf=fail smtp.mailfrom=sender.example
"""

SAMPLE = """Received: from one.example by mx.receiver.example; Tue, 7 May 2024 10:00:00 +0200
Received: from two.example by one.example; Tue, 7 May 2024 09:59:59 +0200
Received: from three.example by two.example; Tue, 7 May 2024 09:59:58 +0200
Received: from four.example by three.example; Tue, 7 May 2024 09:59:57 +0200
Received: from five.example by four.example; Tue, 7 May 2024 09:59:56 +0200
From: Alice <alice@sender.example>
To: bob@receiver.example
Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= from Alice
X-Secret-Header: not kept
Date: Tue, 7 May 2024 09:59:00 +0200
Message-ID: <sample-1@sender.example>

Dear Bob, the launch code is PURPLE-ELEPHANT-42.
Regards, Alice
"""
BODY_PHRASE = "PURPLE-ELEPHANT-42"


def arf(
    fields: str = FIELDS,
    sample: str = SAMPLE,
    sample_type: str = "message/rfc822",
    feedback_headers: str = "",
    sample_headers: str = "",
    feedback_type: str = "message/feedback-report",
    boundary: str = "XYZ",
) -> bytes:
    text = f"""From: DMARC Reports <dmarc@reporter.example>
To: postmaster@sender.example
Subject: Failure report
Date: Tue, 7 May 2024 10:05:00 +0200
Message-ID: <report-1@reporter.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"

--{boundary}
Content-Type: text/plain

An authentication failure report.

--{boundary}
Content-Type: {feedback_type}
{feedback_headers}
{fields}
--{boundary}
Content-Type: {sample_type}
{sample_headers}
{sample}
--{boundary}--
"""
    return text.encode()


@POLICIES
def test_built_report(policy):
    report = parse_bytes(arf(), policy)
    assert report.source_ip == "192.0.2.7"
    assert report.reported_domain == "sender.example"
    assert report.original_mail_from == "bounce@sender.example"
    assert report.original_rcpt_to == "a@receiver.example, b@receiver.example"
    assert report.authentication_results.count("receiver.example;") == 2
    assert report.arrival_date == dt.datetime(2024, 5, 7, 8, 0, tzinfo=UTC)
    assert report.org_name == "reporter.example"
    assert report.report_id == "report-1@reporter.example"
    sample = report.sample_headers
    assert [value for name, value in sample if name == "Received"][2].startswith("from three")
    assert sum(1 for name, _ in sample if name == "Received") == 3  # the first few only
    assert ("Subject", "Grüße from Alice") in sample
    assert ("Message-ID", "<sample-1@sender.example>") in sample
    assert "X-Secret-Header" not in repr(report)
    assert BODY_PHRASE not in repr(report)


@POLICIES
@pytest.mark.parametrize("sample_type", ["text/rfc822-headers", "message/rfc822"])
def test_body_never_survives_even_when_sent_base64(policy, sample_type):
    encoded = base64.encodebytes(SAMPLE.encode()).decode()
    data = arf(
        sample=encoded,
        sample_type=sample_type,
        sample_headers=("Content-Transfer-Encoding: base64\n"),
    )
    report = parse_bytes(data, policy)
    assert ("From", "Alice <alice@sender.example>") in report.sample_headers
    assert BODY_PHRASE not in repr(report)
    assert "launch code" not in repr(report)


@POLICIES
def test_body_in_a_headers_part_is_dropped(policy):
    # Some reporters put the whole message into text/rfc822-headers.
    report = parse_bytes(arf(sample_type="text/rfc822-headers"), policy)
    assert ("To", "bob@receiver.example") in report.sample_headers
    assert BODY_PHRASE not in repr(report)


@POLICIES
def test_base64_feedback_part(policy):
    encoded = "\n" + base64.encodebytes(FIELDS.replace("\n", "\r\n").encode()).decode()
    report = parse_bytes(
        arf(fields=encoded, feedback_headers="Content-Transfer-Encoding: base64\n"), policy
    )
    assert report.source_ip == "192.0.2.7"
    assert report.auth_failure == "dmarc"


@POLICIES
def test_quoted_printable_feedback_part(policy):
    fields = FIELDS.replace("Auth-Failure: dmarc", "Auth-Failure: =\n dkim")
    report = parse_bytes(
        arf(fields=fields, feedback_headers="Content-Transfer-Encoding: quoted-printable\n"),
        policy,
    )
    assert report.auth_failure == "dkim"


@POLICIES
def test_reported_domain_falls_back_to_sample_from(policy):
    fields = FIELDS.replace("Reported-Domain: sender.example\n", "")
    sample = SAMPLE.replace("alice@sender.example", "alice@Other.Example")
    assert parse_bytes(arf(fields=fields, sample=sample), policy).reported_domain == (
        "other.example"
    )


@POLICIES
def test_reported_domain_falls_back_to_envelope_sender(policy):
    fields = FIELDS.replace("Reported-Domain: sender.example\n", "").replace(
        "bounce@sender.example", "bounce@envelope.example"
    )
    sample = SAMPLE.replace("From: Alice <alice@sender.example>\n", "")
    assert parse_bytes(arf(fields=fields, sample=sample), policy).reported_domain == (
        "envelope.example"
    )


@POLICIES
def test_no_reported_domain_is_refused(policy):
    fields = FIELDS.replace("Reported-Domain: sender.example\n", "").replace(
        "Original-Mail-From: <bounce@sender.example>\n", ""
    )
    sample = SAMPLE.replace("From: Alice <alice@sender.example>\n", "")
    assert refusal(arf(fields=fields, sample=sample), policy) == "no reported domain"


@POLICIES
def test_invalid_reported_domain_is_refused(policy):
    fields = FIELDS.replace("Reported-Domain: sender.example", "Reported-Domain: not a domain")
    assert "Reported-Domain 'not a domain' is not a domain name" in refusal(
        arf(fields=fields), policy
    )


@POLICIES
@pytest.mark.parametrize("bad", ["999.0.0.1", "mail.sender.example", "192.0.2.1/24", "fe80::1%2"])
def test_invalid_source_ip_is_refused(policy, bad):
    fields = FIELDS.replace("Source-IP: 192.0.2.7", f"Source-IP: {bad}")
    assert refusal(arf(fields=fields), policy) == f"Source-IP {bad!r} is not an IP address"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("[2001:DB8::0:1]", "2001:db8::1"), ("IPv6:2001:db8::1", "2001:db8::1"), ("", "")],
)
def test_source_ip_forms(raw, stored):
    fields = FIELDS.replace("Source-IP: 192.0.2.7", f"Source-IP: {raw}")
    assert parse_bytes(arf(fields=fields)).source_ip == stored


@pytest.mark.parametrize("date", ["yesterday", "Tue, 7 May 1970 10:00:00 +0000", "32 Foo 2024"])
def test_unreadable_arrival_date_is_left_empty(date):
    fields = FIELDS.replace("Tue, 7 May 2024 10:00:00 +0200", date)
    assert parse_bytes(arf(fields=fields)).arrival_date is None


@POLICIES
def test_missing_feedback_type_is_refused(policy):
    fields = FIELDS.replace("Feedback-Type: auth-failure\n", "")
    assert refusal(arf(fields=fields), policy) == (
        "the ARF feedback-report part has no Feedback-Type"
    )


@POLICIES
def test_message_without_feedback_part_is_refused(policy):
    data = b"""From: someone@example.com
To: dmarc@example.org
Subject: hello
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain

Just a note, no report here.
--B--
"""
    assert refusal(data, policy) == "no ARF feedback-report part"
    plain = b"From: someone@example.com\nSubject: hi\n\nNothing here.\n"
    assert refusal(plain, policy) == "no ARF feedback-report part"


@POLICIES
def test_report_nested_inside_the_sample_is_not_used(policy):
    # Only the report's own parts count: an ARF report forwarded as the sample is mail content.
    inner = arf(boundary="INNER").decode()
    data = arf(feedback_type="text/plain", sample=inner)
    assert refusal(data, policy) == "no ARF feedback-report part"


@POLICIES
def test_raw_utf8_headers_are_decoded(policy):
    sample = SAMPLE.replace("Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= from Alice", "Subject: Grüße")
    report = parse_bytes(arf(sample=sample), policy)
    assert ("Subject", "Grüße") in report.sample_headers


def test_sample_header_values_are_bounded():
    sample = SAMPLE.replace(
        "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= from Alice", "Subject: " + "x" * 5000
    )
    report = parse_bytes(arf(sample=sample))
    assert len(dict(report.sample_headers)["Subject"]) == failure.MAX_VALUE
    long_rcpt = "Original-Rcpt-To: <c@receiver.example>\n" * 2000
    report = parse_bytes(arf(fields=FIELDS + long_rcpt))
    assert len(report.original_rcpt_to) <= 2 * failure.MAX_VALUE


def test_abuse_refusal_comes_before_other_checks():
    fields = FIELDS.replace("auth-failure", "abuse").replace("192.0.2.7", "not-an-ip")
    assert refusal(arf(fields=fields)) == (
        "ARF feedback type 'abuse' is not an authentication failure report"
    )


def test_exim_text_report_scraping_details():
    report = parse_bytes(
        (FIXTURES / "parsedmarc__exim_plain_text_only_no_arf_part.eml").read_bytes()
    )
    sample = dict(report.sample_headers)
    assert sample["Subject"] == "Payment from your account."
    assert sample["From"] == "<user@example.com>"
    text = (FIXTURES / "parsedmarc__exim_plain_text_only_no_arf_part.eml").read_text()
    aligned = text.replace("SPF Alignment: no", "SPF Alignment: yes")
    report = parse_bytes(aligned.encode())
    assert report.identity_alignment == "spf"
    rejected = text.replace("DMARC Results: None, Accept", "DMARC Results: Reject, Reject")
    assert parse_bytes(rejected.encode()).delivery_result == "reject"
    bad_ip = text.replace("Sender IP Address: 203.0.113.68", "Sender IP Address: 203.0.113")
    assert refusal(bad_ip.encode()) == "Source-IP '203.0.113' is not an IP address"


def test_garbage_base64_feedback_part_is_refused_cleanly():
    data = arf(
        fields="%%% not base64 at all x\n", feedback_headers="Content-Transfer-Encoding: base64\n"
    )
    assert refusal(data) == "the ARF feedback-report part has no Feedback-Type"
