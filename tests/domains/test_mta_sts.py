"""The MTA-STS check end to end: knot serves the domains, a real HTTPS server on port 443 (of a
loopback address of its own) serves their policies, and `check_domain` runs mx and mta_sts."""

import time

import pytest

from domains.checks import mta_sts
from domains.checks.base import Severity, Status
from domains.dns import DnsSession
from domains.engine import check_domain
from tests.domains.test_net import (
    CertificateAuthority,
    HttpsServer,
    Reply,
    SilentServer,
    free_address,
    zone_text,
)
from tests.knot import KnotServer
from tests.lying_resolver import LyingResolver

PATH = "/.well-known/mta-sts.txt"
RECORD = '"v=STSv1; id=20240101"'


def policy(mode="enforce", mx=("mx1", "mx2"), max_age=604800, *, domain: str) -> bytes:
    lines = ["version: STSv1", f"mode: {mode}"]
    lines += [f"mx: {m if m.startswith('*') or '.' in m else f'{m}.{domain}'}" for m in mx]
    lines.append(f"max_age: {max_age}")
    return ("\r\n".join(lines) + "\r\n").encode()


# Every domain <name>.test has MX 10 mx1.<name>.test and MX 20 mx2.<name>.test unless MX says
# otherwise, the record RECORD unless TXT says otherwise, and mta-sts.<name>.test on the HTTPS
# server unless HOST says otherwise.
DOMAINS = {
    "good": {"policy": Reply(body=policy(domain="good.test"))},
    "wild": {"policy": Reply(body=policy(mx=["*.wild.test"], domain="wild.test"))},
    "wilddeep": {
        "MX": ["10 mx.eu"],
        "policy": Reply(body=policy(mx=["*.wilddeep.test"], domain="wilddeep.test")),
    },
    "nosts": {"TXT": []},
    "unrelated": {"TXT": ['"v=spf1 -all"']},
    "twosts": {"TXT": [RECORD, '"v=STSv1; id=20240202"']},
    "badid": {"TXT": ['"v=STSv1; id=2024-01-01"']},
    "noaddr": {"HOST": None},
    "badcert": {"policy": Reply(body=policy(domain="badcert.test"))},  # not in the certificate
    "notfound": {},
    "big": {"policy": Reply(body=b"x" * (64 * 1024 + 1))},
    "moved": {"policy": Reply(301, headers={"Location": "https://good.test/"})},
    "slow": {"HOST": "silent"},
    "refused": {"HOST": "dead"},
    "garbage": {"policy": Reply(body=b"hello world\n")},
    "html": {"policy": Reply(body=policy(domain="html.test"), content_type="text/html")},
    "testing": {"policy": Reply(body=policy("testing", domain="testing.test"))},
    "testingmismatch": {
        "policy": Reply(body=policy("testing", mx=["mx1"], domain="testingmismatch.test"))
    },
    "none": {"policy": Reply(body=policy("none", mx=[], domain="none.test"))},
    "shortage": {"policy": Reply(body=policy(max_age=3600, domain="shortage.test"))},
    "threedays": {"policy": Reply(body=policy(max_age=259200, domain="threedays.test"))},
    "mismatch": {"policy": Reply(body=policy(mx=["mx1"], domain="mismatch.test"))},
    "nullmx": {"MX": ["0 ."]},
    "servfail": {},  # _mta-sts.servfail.test is a zone knot cannot load
    "hostfail": {"policy": Reply(body=policy(domain="hostfail.test"))},  # and mta-sts.hostfail
}
BROKEN = ["_mta-sts.servfail.test", "mta-sts.hostfail.test"]
CERTIFIED = [f"mta-sts.{name}.test" for name in DOMAINS if name != "badcert"]


def zone_for(https, silent, dead) -> str:
    hosts = {None: None, "silent": silent, "dead": dead}
    lines = ["ns A 127.0.0.1"]
    for name, spec in DOMAINS.items():
        for mx in spec.get("MX", ["10 mx1", "20 mx2"]):
            lines.append(f"{name} MX {mx if mx.endswith('.') else f'{mx}.{name}'}")
            if not mx.endswith("."):
                lines.append(f"{mx.split()[1]}.{name} A 127.0.0.25")
        lines += [f"_mta-sts.{name} TXT {txt}" for txt in spec.get("TXT", [RECORD])]
        host = hosts[spec["HOST"]] if "HOST" in spec else https.host
        if host is not None:
            lines.append(f"mta-sts.{name} A {host}")
    return zone_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"), "trusted")


@pytest.fixture(scope="module")
def https(ca):
    server = HttpsServer({CERTIFIED[0]: ca.issue(*CERTIFIED)}, port=mta_sts.POLICY_PORT)
    for name, spec in DOMAINS.items():
        if "policy" in spec:
            server.routes[(f"mta-sts.{name}.test", PATH)] = spec["policy"]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def silent():
    server = SilentServer(port=mta_sts.POLICY_PORT)
    yield server.host
    server.stop()


@pytest.fixture(scope="module")
def knot(tmp_path_factory, https, silent):
    dead = free_address(mta_sts.POLICY_PORT)
    zones = {
        "test": zone_for(https, silent, dead),
        "127.in-addr.arpa": zone_text(""),  # the mx check asks for PTRs: none, but no failure
    }
    zones.update({name: zone_text("") for name in BROKEN})
    server = KnotServer(tmp_path_factory.mktemp("knot"), zones, broken=BROKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def trust_test_ca(settings, ca):
    settings.MAILSEC_TLS_CA_FILE = str(ca.cert_path)


@pytest.fixture
def run(knot):
    def run(domain: str):
        session = DnsSession([(knot.host, knot.port)])
        return check_domain(domain, categories=["mta_sts"], session=session).categories["mta_sts"]

    return run


def ids(result) -> list[str]:
    return sorted(f.id for f in result.findings)


def only(result, kind_id: str):
    assert ids(result) == [kind_id]
    return result.findings[0]


# --- a good policy ----------------------------------------------------------------------------


def test_enforced_policy_covering_every_mx_passes(run):
    result = run("good.test")
    assert result.findings == []
    assert (result.status, result.score, result.applicable) == (Status.PASS, 100, True)
    assert result.records == {
        "TXT": ["v=STSv1; id=20240101"],
        "policy": policy(domain="good.test").decode(),
    }
    assert result.data == {
        "id": "20240101",
        "mode": "enforce",
        "mx": ["mx1.good.test", "mx2.good.test"],
        "max_age": 604800,
    }


def test_wildcard_covers_one_label(run):
    assert run("wild.test").findings == []
    finding = only(run("wilddeep.test"), "mta_sts.mx_mismatch")
    assert (
        finding.detail == "MX mx.eu.wilddeep.test not matched by the policy's mx: *.wilddeep.test."
    )


def test_null_mx_is_not_applicable(run):
    result = run("nullmx.test")
    assert result.findings == []
    assert (result.applicable, result.status, result.score) == (False, Status.INFO, None)


# --- the record -------------------------------------------------------------------------------


def test_no_record(run):
    finding = only(run("nosts.test"), "mta_sts.missing")
    assert finding.detail == "No v=STSv1 TXT record at _mta-sts.nosts.test."
    assert "_mta-sts.nosts.test." in finding.remediation


def test_unrelated_txt_record_is_no_record(run):
    result = run("unrelated.test")
    only(result, "mta_sts.missing")
    assert result.records == {"TXT": ["v=spf1 -all"]}


def test_two_records(run):
    finding = only(run("twosts.test"), "mta_sts.record_invalid")
    assert finding.detail.startswith("2 v=STSv1 records at _mta-sts.twosts.test")


def test_invalid_record(run):
    finding = only(run("badid.test"), "mta_sts.record_invalid")
    assert finding.detail.startswith("_mta-sts.badid.test: v=STSv1; id=2024-01-01 (")
    assert "1-32 letters or digits" in finding.detail


# --- fetching the policy ----------------------------------------------------------------------


def unreachable(run, domain: str) -> str:
    result = run(domain)
    finding = only(result, "mta_sts.policy_unreachable")
    assert result.status == Status.FAIL and finding.severity == Severity.HIGH
    assert result.data == {"id": "20240101"} and "policy" not in result.records
    return finding.detail


def test_policy_host_without_address(run):
    assert unreachable(run, "noaddr.test") == (
        f"https://mta-sts.noaddr.test{PATH}: mta-sts.noaddr.test does not exist (NXDOMAIN)."
    )


def test_policy_host_with_a_certificate_for_other_names(run):
    detail = unreachable(run, "badcert.test")
    assert detail.startswith(f"https://mta-sts.badcert.test{PATH}: certificate for ")
    assert "mta-sts.badcert.test not valid: Hostname mismatch" in detail


def test_policy_not_found(run):
    assert unreachable(run, "notfound.test") == (
        f"https://mta-sts.notfound.test{PATH} answered HTTP 404 Not Found, not 200."
    )


def test_redirect_is_not_followed(run, https):
    before = [r for r in https.requests if r[0] == "good.test"]
    detail = unreachable(run, "moved.test")
    assert detail == (
        f"https://mta-sts.moved.test{PATH} answered HTTP 301 Moved Permanently, a redirect to "
        "https://good.test/, which is not followed."
    )
    assert [r for r in https.requests if r[0] == "good.test"] == before


def test_policy_too_large(run):
    assert unreachable(run, "big.test") == (
        f"https://mta-sts.big.test{PATH} announced 65537 bytes, more than the 65536 accepted."
    )


def test_policy_server_that_never_answers(run, silent, monkeypatch):
    monkeypatch.setattr(mta_sts, "FETCH_TIMEOUT", 0.5)
    started = time.monotonic()
    detail = unreachable(run, "slow.test")
    assert time.monotonic() - started < 3
    assert detail == (
        f"https://mta-sts.slow.test{PATH}: no TLS handshake with mta-sts.slow.test ({silent}) "
        "within 0.5 s."
    )


def test_policy_server_refusing_connections(run):
    detail = unreachable(run, "refused.test")
    assert detail.startswith(f"https://mta-sts.refused.test{PATH}: cannot connect to ")
    assert detail.endswith(": connection refused.")


# --- the policy -------------------------------------------------------------------------------


def test_invalid_policy(run):
    result = run("garbage.test")
    finding = only(result, "mta_sts.policy_invalid")
    assert finding.detail == f"https://mta-sts.garbage.test{PATH}: Line 1: Not a key: value pair."
    assert result.records["policy"] == "hello world\n"


def test_policy_served_as_html(run):
    finding = only(run("html.test"), "mta_sts.policy_invalid")
    assert finding.severity == Severity.LOW
    assert "served as text/html, not text/plain" in finding.detail


def test_testing_mode(run):
    result = run("testing.test")
    finding = only(result, "mta_sts.mode_testing")
    assert result.data["mode"] == "testing" and result.status == Status.WARN
    assert finding.severity == Severity.LOW


def test_testing_mode_with_an_uncovered_mx_is_a_medium_mismatch(run):
    result = run("testingmismatch.test")
    assert ids(result) == ["mta_sts.mode_testing", "mta_sts.mx_mismatch"]
    mismatch = next(f for f in result.findings if f.id == "mta_sts.mx_mismatch")
    assert mismatch.severity == Severity.MEDIUM
    assert mismatch.detail == (
        "MX mx2.testingmismatch.test not matched by the policy's mx: mx1.testingmismatch.test."
    )


def test_mode_none(run):
    result = run("none.test")
    only(result, "mta_sts.mode_none")
    assert result.data["mx"] == []  # and no mismatch: nothing is enforced


def test_short_max_age(run):
    finding = only(run("shortage.test"), "mta_sts.max_age_short")
    assert finding.detail == "max_age: 3600 (1 hour), less than a week (604800)."


def test_max_age_below_the_week_the_fix_asks_for_is_short(run):
    # The fix says "use at least 604800 (one week)": three days is short too (issue 11).
    finding = only(run("threedays.test"), "mta_sts.max_age_short")
    assert finding.detail == "max_age: 259200 (3 days), less than a week (604800)."
    assert "at least 604800" in finding.remediation
    assert str(mta_sts.SHORT_MAX_AGE) in finding.remediation


def test_enforced_policy_missing_an_mx(run):
    result = run("mismatch.test")
    finding = only(result, "mta_sts.mx_mismatch")
    assert finding.severity == Severity.HIGH and result.status == Status.FAIL
    assert (
        finding.detail == "MX mx2.mismatch.test not matched by the policy's mx: mx1.mismatch.test."
    )


# --- could not test ---------------------------------------------------------------------------


def could_not_test(result) -> list[str]:
    assert (result.status, result.score) == (Status.ERROR, None)
    assert {f.id for f in result.findings} == {"dns.lookup_failed"}
    return [f.detail for f in result.findings]


def test_record_lookup_failing_is_an_error_not_missing(run):
    details = could_not_test(run("servfail.test"))
    assert details == [
        "No usable answer from the name servers of _mta-sts.servfail.test: "
        "TXT _mta-sts.servfail.test (server answered SERVFAIL). Could not test: mta_sts."
    ]


def test_policy_host_lookup_failing_is_an_error_not_unreachable(run):
    details = could_not_test(run("hostfail.test"))
    assert details == [
        "No usable answer from the name servers of mta-sts.hostfail.test: "
        "A mta-sts.hostfail.test (server answered SERVFAIL). Could not test: mta_sts."
    ]


def test_domain_the_server_refuses(knot):
    # A resolver that refuses one name (knot now serves a root zone, so it refuses nothing).
    with LyingResolver((knot.host, knot.port), refuse=["outside.example"]) as liar:
        session = DnsSession([(liar.host, liar.port)])
        result = check_domain("outside.example", categories=["mta_sts"], session=session)
    details = could_not_test(result.categories["mta_sts"])
    assert details == [
        "No usable answer from the name servers of outside.example: "
        "TXT _mta-sts.outside.example (server answered REFUSED). Could not test: mta_sts."
    ]
