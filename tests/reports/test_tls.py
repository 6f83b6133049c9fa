"""SMTP TLS report (RFC 8460) parsing: the real fixtures, their quirks, and hostile input."""

import copy
import datetime as dt
import email
import email.policy
import gzip
import json
from pathlib import Path

import pytest

from reports.parsing import tls
from reports.parsing.types import Payload, Refused, open_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "smtp_tls"
UTC = dt.UTC

# file -> (policies, successful sessions, failed sessions, failure details), as in the README
EXPECTED = {
    "cryinc__google.json": (1, 1, 0, 0),
    "cryinc__microsoft-tlsa.json": (2, 4, 0, 0),
    "cryinc__no-contact.json": (1, 1, 0, 0),
    "cryinc__no-policy.json": (1, 1, 0, 0),
    "cryinc__no_ip_and_mx.json": (1, 0, 3, 1),
    "mailauth__rpt01-gzip.eml": (1, 5326, 303, 3),
    "mailauth__rpt02-plain.eml": (1, 23, 1, 1),
    "mailauth__rpt02.json": (1, 23, 1, 1),
    "parsedmarc__extracted_google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz": (
        1,
        48,
        0,
        0,
    ),
    "parsedmarc__google.com_smtp_tls_report.eml": (1, 48, 0, 0),
    "parsedmarc__mail.ru.json": (1, 0, 1, 2),
    "parsedmarc__rfc8460.json": (1, 5326, 303, 3),
    "parsedmarc__smtp_tls.json": (1, 0, 3, 2),
    "tlsrptdigest__extracted_microsoft.com!example.com!1778630400!1778716799!"
    "134232617934286362.json.gz": (1, 2, 0, 0),
    "tlsrptdigest__google_failure.eml": (1, 4523, 2, 1),
    "tlsrptdigest__google_success.eml": (1, 1, 0, 0),
    "tlsrptdigest__microsoft_success.eml": (1, 2, 0, 0),
}
REFUSED = {"mailauth__rpt03-invalid-policy-type.json": "policy 1 has no policy-domain"}


def fixture_json(name: str) -> bytes:
    """The report bytes of a fixture: gunzipped, or taken out of its e-mail."""
    data = (FIXTURES / name).read_bytes()
    if name.endswith(".eml"):
        message = email.message_from_bytes(data, policy=email.policy.default)
        parts = [
            part
            for part in message.walk()
            if part.get_content_type().startswith("application/") and not part.is_multipart()
        ]
        assert len(parts) == 1, f"{name}: expected one report attachment"
        data = parts[0].get_payload(decode=True)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def parse_bytes(data: bytes) -> tls.TlsReport:
    return tls.parse(Payload(name="report.json", kind="json", open=open_bytes(data)))


def parse_obj(document) -> tls.TlsReport:
    return parse_bytes(json.dumps(document).encode())


def refusal(document_or_bytes) -> str:
    data = document_or_bytes
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    with pytest.raises(Refused) as caught:
        parse_bytes(data)
    return caught.value.reason


def test_every_fixture_is_covered():
    assert {p.name for p in FIXTURES.iterdir()} == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts(name):
    report = parse_bytes(fixture_json(name))
    policies, successful, failed, details = EXPECTED[name]
    assert len(report.policies) == policies
    assert sum(p.successful for p in report.policies) == successful
    assert sum(p.failed for p in report.policies) == failed
    assert sum(len(p.failure_details) for p in report.policies) == details
    assert report.org_name
    assert report.report_id
    assert report.begin.tzinfo is not None
    assert report.begin <= report.end
    assert report.domain == report.policies[0].policy_domain


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_fixture(name):
    with pytest.raises(Refused) as caught:
        parse_bytes(fixture_json(name))
    assert caught.value.reason == REFUSED[name]


def test_rfc8460_example_in_detail():
    report = parse_bytes(fixture_json("parsedmarc__rfc8460.json"))
    assert report.org_name == "Company-X"
    assert report.contact_info == "sts-reporting@company-x.example"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.begin == dt.datetime(2016, 4, 1, tzinfo=UTC)
    assert report.end == dt.datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_type == "sts"
    assert policy.policy_domain == "company-y.example"
    assert policy.mx_hosts == ["*.mail.company-y.example"]  # a bare string in the file
    assert policy.policy_strings[1] == "mode: testing"
    first, second, third = policy.failure_details
    assert first["sending-mta-ip"] == "2001:db8:abcd:12::1"  # written 2001:db8:abcd:0012::1
    assert first["receiving-ip"] == ""
    assert first["failed-session-count"] == 100
    assert second["additional-information"].endswith("#StarttlsNotSupported")
    assert second["receiving-ip"] == "203.0.113.56"
    assert third["result-type"] == "validation-failure"
    assert third["failure-reason-code"] == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"


def test_tlsa_policy_string_sent_as_json_text_is_unpacked():
    report = parse_bytes(fixture_json("cryinc__microsoft-tlsa.json"))
    tlsa = report.policies[1]
    assert tlsa.policy_type == "tlsa"
    assert tlsa.policy_strings == [
        "3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC",
        "3 1 1 837C773D54C2E2BD71871A3FC352BE8214D5646CBAE5E3091401A7274717998B",
    ]
    assert report.policies[0].mx_hosts == []


def test_null_contact_and_mx_prefix():
    report = parse_bytes(fixture_json("cryinc__no-contact.json"))
    assert report.contact_info == ""
    assert report.policies[0].mx_hosts == ["mx.server.com"]
    # policy strings are kept as sent, prefix included
    assert "mx: mx.server.com" in report.policies[0].policy_strings


def test_no_policy_found_and_missing_failure_details():
    report = parse_bytes(fixture_json("cryinc__no-policy.json"))
    (policy,) = report.policies
    assert policy.policy_type == "no-policy-found"
    assert policy.policy_strings == []
    assert policy.failure_details == []


def test_detail_without_ips_and_hostname():
    report = parse_bytes(fixture_json("cryinc__no_ip_and_mx.json"))
    (detail,) = report.policies[0].failure_details
    assert detail["result-type"] == "sts-policy-fetch-error"
    assert detail["sending-mta-ip"] == ""
    assert detail["receiving-mx-hostname"] == ""
    assert detail["failed-session-count"] == 3


def test_mail_ru_odd_key_order():
    report = parse_bytes(fixture_json("parsedmarc__mail.ru.json"))
    (policy,) = report.policies
    assert (policy.successful, policy.failed) == (0, 1)
    assert [d["failure-reason-code"] for d in policy.failure_details] == [
        "bad https response code: 404",
        "bad https response code: 500",
    ]
    assert report.begin == dt.datetime(2024, 2, 22, tzinfo=UTC)


def test_array_with_one_report_is_accepted():
    report = parse_bytes(fixture_json("parsedmarc__smtp_tls.json"))
    assert report.org_name == "Example Inc."
    assert [d["sending-mta-ip"] for d in report.policies[0].failure_details] == [
        "209.85.222.201",
        "209.85.208.176",
    ]
    assert parse_obj([base()]).report_id == "r-1"


def test_eml_and_extracted_gzip_agree():
    from_mail = parse_bytes(fixture_json("parsedmarc__google.com_smtp_tls_report.eml"))
    extracted = parse_bytes(
        fixture_json(
            "parsedmarc__extracted_google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz"
        )
    )
    assert from_mail == extracted
    assert from_mail.domain == "cardinalhealth.ca"


# --- built cases ---------------------------------------------------------------------------


def base() -> dict:
    return {
        "organization-name": "Reporter Inc.",
        "date-range": {
            "start-datetime": "2024-05-01T00:00:00Z",
            "end-datetime": "2024-05-01T23:59:59Z",
        },
        "contact-info": "tls@reporter.example",
        "report-id": "r-1",
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: enforce"],
                    "policy-domain": "example.com",
                    "mx-host": ["mx.example.com"],
                },
                "summary": {
                    "total-successful-session-count": 10,
                    "total-failure-session-count": 2,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "192.0.2.1",
                        "receiving-ip": "198.51.100.2",
                        "failed-session-count": 2,
                    }
                ],
            }
        ],
    }


def changed(path: str, value) -> dict:
    """base() with the value at a slash-separated path replaced (or removed when value is
    DELETE)."""
    document = copy.deepcopy(base())
    *parents, last = path.split("/")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        last = int(last)
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return document


DELETE = object()
SUMMARY = "policies/0/summary"
DETAIL = "policies/0/failure-details/0"


def test_base_report_parses():
    report = parse_obj(base())
    assert report.policies[0].successful == 10
    assert report.policies[0].failure_details[0]["failed-session-count"] == 2


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (f"{SUMMARY}/total-successful-session-count", -1, "negative"),
        (f"{SUMMARY}/total-failure-session-count", "5", "should be a whole number, not text"),
        (f"{SUMMARY}/total-successful-session-count", True, "not true/false"),
        (f"{SUMMARY}/total-successful-session-count", 1.5, "not a decimal number"),
        (f"{SUMMARY}/total-successful-session-count", 10**15, "implausibly large"),
        (f"{DETAIL}/failed-session-count", -3, "failure detail 1 failed-session-count"),
        (f"{DETAIL}/failed-session-count", None, "whole number, not null"),
        (f"{DETAIL}/sending-mta-ip", "999.1.1.1", "sending-mta-ip '999.1.1.1' is not an IP"),
        (f"{DETAIL}/receiving-ip", "mx.example.com", "receiving-ip 'mx.example.com' is not"),
        (f"{DETAIL}/receiving-ip", "fe80::1%eth0", "receiving-ip"),
        (f"{DETAIL}/result-type", DELETE, "failure detail 1 has no result-type"),
        (DETAIL, "oops", "failure detail 1 should be an object"),
        ("policies/0/failure-details", {"a": 1}, "failure-details should be a list"),
        ("report-id", DELETE, "the report has no report-id"),
        ("report-id", "  ", "the report has no report-id"),
        ("report-id", ["x"], "report-id should be text, not a list"),
        ("report-id", "x" * 300, "longer than 255"),
        ("organization-name", DELETE, "the report has no organization-name"),
        ("date-range", DELETE, "no date-range"),
        ("date-range/start-datetime", DELETE, "date-range has no start-datetime"),
        ("date-range/start-datetime", "yesterday", "is not an RFC 3339 date-time"),
        ("date-range/start-datetime", "2024-05-01", "is not an RFC 3339 date-time"),
        ("date-range/start-datetime", 1714521600, "is not an RFC 3339 date-time"),
        ("date-range/start-datetime", "", "date-range has no start-datetime"),
        ("date-range/start-datetime", "2024-02-30T00:00:00Z", "not a valid date"),
        ("date-range/start-datetime", "2024-05-01T00:00:00+99:00", "not a valid date"),
        ("date-range/start-datetime", "1970-01-01T00:00:00Z", "not a plausible date"),
        ("date-range/end-datetime", "2099-01-01T00:00:00Z", "not a plausible date"),
        ("date-range/end-datetime", "2024-04-30T00:00:00Z", "end-datetime is before start"),
        ("policies", [], "the report has no policies"),
        ("policies", DELETE, "the report has no policies"),
        ("policies/0", "sts", "policy 1 has no policy object"),
        ("policies/0/summary", DELETE, "policy 1 has no summary"),
        ("policies/0/policy/policy-type", DELETE, "policy 1 has no policy-type"),
        ("policies/0/policy/policy-domain", DELETE, "policy 1 has no policy-domain"),
        ("policies/0/policy/policy-domain", "not a domain", "policy-domain 'not a domain' is"),
        ("policies/0/policy/policy-domain", "localhost", "is not a domain name"),
        ("policies/0/policy/mx-host", [{"a": 1}], "mx-host should be text, not an object"),
    ],
)
def test_bad_values_are_refused_with_a_reason(path, value, expected):
    assert expected in refusal(changed(path, value))


def test_second_policy_is_named_in_the_reason():
    document = base()
    second = copy.deepcopy(document["policies"][0])
    del second["policy"]["policy-domain"]
    document["policies"].append(second)
    assert refusal(document) == "policy 2 has no policy-domain"


def test_array_of_two_reports_is_refused():
    reason = refusal([base(), base()])
    assert "JSON array of 2 items" in reason
    assert "exactly one" in reason
    assert "JSON array of 0 items" in refusal([])


def test_deeply_nested_json_is_refused():
    assert refusal(b"[" * 200_000 + b"]" * 200_000) == "not valid JSON: nested too deeply"
    nested = b'{"organization-name": ' * 100_000 + b"1" + b"}" * 100_000
    assert refusal(nested) == "not valid JSON: nested too deeply"


@pytest.mark.parametrize(
    "data",
    [b"<feedback><report_metadata/></feedback>", b"", b'{"report-id": ', b"\xff\xfe\x00{"],
)
def test_not_json_is_refused(data):
    assert refusal(data).startswith("not valid JSON: ")


@pytest.mark.parametrize("document", [{"foo": 1}, "a string", 42, None, [1], [{"foo": 1}]])
def test_json_of_another_kind_is_refused(document):
    assert refusal(document) == "JSON but not an SMTP TLS report (RFC 8460)"


def test_huge_integer_is_refused_not_crashing():
    data = json.dumps(base()).replace('"total-successful-session-count": 10', "X")
    data = data.replace("X", '"total-successful-session-count": ' + "9" * 5000)
    assert refusal(data.encode()).startswith("not valid JSON: ")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2024-05-01T02:00:00+02:00", dt.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-04-30T20:00:00-04:00", dt.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01t00:00:00.123456789z", dt.datetime(2024, 5, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T00:00:00.5Z", dt.datetime(2024, 5, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01 00:00:00", dt.datetime(2024, 5, 1, tzinfo=UTC)),  # no offset: UTC
        ("2024-05-01T00:00:60Z", dt.datetime(2024, 5, 1, 0, 0, 59, tzinfo=UTC)),
    ],
)
def test_rfc3339_variants(start, expected):
    report = parse_obj(changed("date-range/start-datetime", start))
    assert report.begin == expected
    assert report.begin.utcoffset() == dt.timedelta(0)


def test_report_id_angle_brackets_are_stripped():
    assert parse_obj(changed("report-id", " <abc@reporter.example> ")).report_id == (
        "abc@reporter.example"
    )


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        (" mail.example.org ", "mail.example.org"),
    ],
)
def test_policy_domain_is_normalised(raw, stored):
    report = parse_obj(changed("policies/0/policy/policy-domain", raw))
    assert report.policies[0].policy_domain == stored
    assert report.domain == stored


def test_lenient_shapes():
    document = changed("policies/0/policy/policy-string", "version: STSv1")
    document["policies"][0]["policy"]["mx-host"] = ["mx: *.example.com", "MX:mx2.example.com"]
    document["policies"][0]["policy"]["policy-type"] = "Invalid-Policy-Type"
    del document["policies"][0]["summary"]["total-failure-session-count"]
    document["contact-info"] = None
    document["organization-name"] = "Rep\u0000orter"
    policy = parse_obj(document).policies[0]
    assert policy.policy_strings == ["version: STSv1"]
    assert policy.mx_hosts == ["*.example.com", "mx2.example.com"]
    assert policy.policy_type == "invalid-policy-type"  # unknown types are kept
    assert policy.failed == 0
    assert parse_obj(document).org_name == "Reporter"


def test_ip_addresses_are_normalised():
    report = parse_obj(changed(f"{DETAIL}/sending-mta-ip", " 2001:DB8:0:0::1 "))
    assert report.policies[0].failure_details[0]["sending-mta-ip"] == "2001:db8::1"


def test_byte_order_mark_is_accepted():
    assert parse_bytes(b"\xef\xbb\xbf" + json.dumps(base()).encode()).report_id == "r-1"


def test_lone_surrogate_in_text_is_made_storable():
    data = json.dumps(base()).replace("Reporter Inc.", "Rep\\ud800orter").encode()
    org_name = parse_bytes(data).org_name
    org_name.encode("utf-8")  # raises if the surrogate survived
    assert org_name.startswith("Rep")


def test_refusal_from_the_stream_propagates():
    cap = Refused("decompressed size passed the cap")

    def opener():
        raise cap

    with pytest.raises(Refused) as caught:
        tls.parse(Payload(name="big.json.gz", kind="json", open=opener))
    assert caught.value is cap
