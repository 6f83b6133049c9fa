"""The protocol probe verdicts, pure: hand-made ProbeResults in, findings out (no server)."""

from datetime import UTC, datetime, timedelta

import pytest

from domains.checks.base import Severity, Status
from domains.checks.mailservers import AccessHostError, Plan, parse_access_host
from domains.checks.verdicts import HostPolicy, judge
from domains.probes import dane
from domains.probes.results import (
    Certificate,
    ProbeResult,
    Reach,
    Service,
    Target,
    TlsInfo,
    TlsMode,
)
from domains.scoring import category_score

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SMTP, IMAP, SUBMISSION = Service.SMTP, Service.IMAP, Service.SUBMISSION
STARTTLS, IMPLICIT = TlsMode.STARTTLS, TlsMode.IMPLICIT


def cert(host="mx.example.com", *, trusted=True, names=None, days=200, error="") -> Certificate:
    return Certificate(
        subject=f"CN={host}",
        issuer="CN=Example CA",
        not_before=(NOW - timedelta(days=30)).isoformat(),
        not_after=(NOW + timedelta(days=days)).isoformat(),
        names=names or [host],
        key_type="EC",
        key_bits=256,
        signature_hash="sha256",
        trusted=trusted,
        trust_error=error,
        name_matches=host in (names or [host]),
    )


def probe(
    host="mx.example.com",
    address="192.0.2.1",
    port=25,
    service=SMTP,
    mode=STARTTLS,
    *,
    reach=Reach.OK,
    certificate=None,
    starttls=True,
    versions=("TLSv1.2", "TLSv1.3"),
    **fields,
) -> ProbeResult:
    target = Target(host, address, port, service, mode)
    tls = None
    if reach == Reach.OK and (starttls or mode == IMPLICIT):
        tls = TlsInfo(
            ok=True,
            version="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384",
            accepted_versions=list(versions),
            certificate=certificate or cert(host),
        )
    return ProbeResult(
        target=target,
        probed_at=NOW.isoformat(),
        duration_ms=10,
        reach=reach,
        starttls_offered=starttls if mode == STARTTLS else None,
        tls=tls,
        **fields,
    )


def run(results: list[ProbeResult], service=SMTP, *, policies=None, optional=(), plan=None):
    plan = plan or Plan(targets=[r.target for r in results], optional=set(optional))
    found = judge(
        service,
        plan,
        {r.target.key: r for r in results},
        policies or {},
        NOW,
        match=dane.match,
        domain="example.com",
    )
    found.status, found.score = category_score(found)
    return found


def ids(result) -> list[str]:
    return [f.id for f in result.findings]


def test_a_good_smtp_server_has_no_findings():
    result = run([probe()])
    assert ids(result) == []
    assert (result.status, result.score) == (Status.PASS, 100)
    (server,) = result.servers
    assert server["reachable"] and server["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert server["certificate"]["subject"] == "CN=mx.example.com"
    assert (server["dane"], server["plaintext_auth"], server["open_relay"]) == (
        "none",
        False,
        False,
    )


def test_no_starttls_on_port_25():
    result = run([probe(starttls=False, capabilities_plain=["PIPELINING", "8BITMIME"])])
    assert ids(result) == ["smtp.tls_missing"]
    assert "STARTTLS not offered (EHLO says: PIPELINING 8BITMIME)" in result.findings[0].detail
    assert result.findings[0].severity == Severity.HIGH


def test_certificate_problems_on_port_25_are_low_without_dane_or_sts():
    bad = cert(trusted=False, error="self-signed certificate", names=["other.example"])
    result = run([probe(certificate=bad)])
    assert ids(result) == ["smtp.cert_untrusted", "smtp.cert_name_mismatch"]
    assert {f.severity for f in result.findings} == {Severity.LOW}
    assert "(self-signed certificate)" in result.findings[0].detail
    assert "names other.example, not mx.example.com" in result.findings[1].detail


def test_an_enforced_mta_sts_policy_makes_them_high():
    bad = cert(trusted=False, names=["other.example"])
    target = probe(certificate=bad)
    policies = {target.target.key: HostPolicy(sts_mode="enforce")}
    result = run([target], policies=policies)
    assert {f.severity for f in result.findings} == {Severity.HIGH}


def test_dane_ta_records_make_a_wrong_name_high_but_not_a_private_ca():
    target = probe(certificate=cert(trusted=False, names=["other.example"]))
    policy = HostPolicy(tlsa=[(2, 1, 1, "00" * 32)], tlsa_name="_25._tcp.mx.example.com")
    result = run([target], policies={target.target.key: policy})
    severities = {f.id: f.severity for f in result.findings}
    assert severities["smtp.cert_name_mismatch"] == Severity.HIGH
    assert severities["smtp.cert_untrusted"] == Severity.LOW


def test_expired_is_not_also_untrusted_and_expiring_says_the_date():
    expired = cert(days=-1, trusted=False, error="certificate has expired")
    result = run([probe(certificate=expired)])
    assert ids(result) == ["smtp.cert_expired"]
    assert run([probe(certificate=cert(days=9))]).findings[0].severity == Severity.LOW
    soon = run([probe(port=993, service=IMAP, mode=IMPLICIT, certificate=cert(days=9))], IMAP)
    assert ids(soon) == ["imap.cert_expiring"]
    assert soon.findings[0].severity == Severity.MEDIUM
    assert "expires on 2026-06-10 12:00 UTC" in soon.findings[0].detail  # a date, not "9 days"
    assert ids(run([probe(certificate=cert(days=15))])) == []


def test_old_tls_versions_plaintext_auth_open_relay_and_banner():
    result = run(
        [
            probe(
                versions=("TLSv1", "TLSv1.1", "TLSv1.2"),
                plaintext_auth=True,
                plaintext_auth_evidence="EHLO before STARTTLS lists AUTH PLAIN LOGIN",
                open_relay=True,
                relay_evidence="RCPT TO:<probe@example.invalid>: 250 2.1.5 Ok",
                ehlo_name="mail.elsewhere.example",
                ptr_names=["mx.example.com"],
            )
        ]
    )
    assert ids(result) == [
        "smtp.open_relay",
        "smtp.plaintext_auth",
        "smtp.tls_outdated",
        "smtp.banner_mismatch",
    ]
    assert result.findings[0].severity == Severity.CRITICAL
    assert "accepts TLSv1, TLSv1.1" in result.findings[2].detail
    assert "calls itself mail.elsewhere.example" in result.findings[3].detail
    assert (result.servers[0]["open_relay"], result.servers[0]["plaintext_auth"]) == (True, True)


def test_a_banner_matching_the_ptr_is_fine():
    result = run([probe(ehlo_name="MX.example.com.", ptr_names=["mx.example.com"])])
    assert ids(result) == []


def test_no_mx_answering_on_port_25_is_could_not_test():
    result = run(
        [
            probe(address="192.0.2.1", reach=Reach.TIMEOUT, error="no answer within 10 s"),
            probe("mx2.example.com", "192.0.2.2", reach=Reach.REFUSED),
        ]
    )
    assert result.status == Status.ERROR and result.score is None
    assert ids(result) == ["probe.not_tested"]
    detail = result.findings[0].detail
    assert "outbound port 25 is blocked in many networks" in detail
    assert "192.0.2.1) port 25: no TCP connection (timeout): no answer within 10 s" in detail
    assert "192.0.2.2) port 25: connection refused" in detail


def test_silent_mx_hosts_are_unreachable_when_another_answers():
    result = run(
        [
            probe(),
            probe("tarpit.example.com", "192.0.2.7", reach=Reach.NO_GREETING),
            probe("gone.example.com", "192.0.2.8", reach=Reach.RESET),
        ]
    )
    assert ids(result) == ["smtp.unreachable"]
    detail = result.findings[0].detail
    assert "tarpit.example.com (192.0.2.7) port 25: connected, but no greeting came" in detail
    assert "gone.example.com (192.0.2.8) port 25: the connection was closed or reset" in detail
    assert result.status == Status.WARN


def test_private_and_not_yet_probed_targets_are_not_tested_not_failed():
    private = probe(address="10.0.0.1", reach=Reach.REFUSED_TARGET, error="private")
    result = run([private])
    assert result.status == Status.ERROR
    assert "a private address (MAILSEC_ALLOW_PRIVATE_TARGETS is off)" in result.findings[0].detail
    pending = Target("mx.example.com", "192.0.2.9", 25, SMTP, STARTTLS)
    result = judge(SMTP, Plan(targets=[pending]), {}, {}, NOW, match=dane.match)
    assert result.status == Status.ERROR
    assert "not probed yet" in result.findings[0].detail
    assert result.servers[0]["reach"] == "pending"


def test_imap_without_logindisabled_and_without_tls():
    result = run(
        [
            probe(
                "mail.example.com",
                port=143,
                service=IMAP,
                starttls=False,
                plaintext_auth=True,
                plaintext_auth_evidence="CAPABILITY before TLS lacks LOGINDISABLED",
            )
        ],
        IMAP,
    )
    assert ids(result) == ["imap.tls_missing", "imap.plaintext_auth"]
    assert all(f.severity == Severity.HIGH for f in result.findings)


def test_implicit_tls_that_fails_is_tls_missing():
    failed = probe("mail.example.com", port=993, service=IMAP, mode=IMPLICIT, reach=Reach.OK)
    failed.reach = Reach.TLS_FAILED
    failed.tls = TlsInfo(ok=False, error="wrong version number")
    result = run([failed], IMAP)
    assert ids(result) == ["imap.tls_missing"]
    assert "the TLS handshake failed (wrong version number)" in result.findings[0].detail


def test_submission_server_certificate_problems_are_high():
    bad = cert("smtp.example.com", trusted=False)
    result = run(
        [probe("smtp.example.com", port=465, service=SUBMISSION, mode=IMPLICIT, certificate=bad)],
        SUBMISSION,
    )
    assert ids(result) == ["submission.cert_untrusted"]
    assert result.findings[0].severity == Severity.HIGH


def test_srv_targets_that_do_not_answer_are_unreachable_configured_bare_hosts_are_not():
    silent = probe("mail.example.com", port=995, service=Service.POP3, mode=IMPLICIT)
    silent.reach, silent.tls = Reach.REFUSED, None
    assert ids(run([silent], Service.POP3)) == ["pop3.unreachable"]
    assert run([silent], Service.POP3).findings[0].severity == Severity.HIGH
    bare = run([silent], Service.POP3, optional=[silent.target.key])
    assert (bare.applicable, ids(bare)) == (False, ["pop3.no_hosts"])
    answering = probe("mail.example.com", port=110, service=Service.POP3)
    both = run([answering, silent], Service.POP3, optional=[silent.target.key])
    assert ids(both) == []


def test_no_hosts_is_not_applicable_with_how_to_publish():
    result = judge(IMAP, Plan(), {}, {}, NOW, domain="example.com")
    assert result.applicable is False
    assert ids(result) == ["imap.no_hosts"]
    assert "_imaps._tcp.example.com" in result.findings[0].detail
    assert "SRV 0 1 993 mail.example.com." in result.findings[0].remediation
    offered = judge(IMAP, Plan(not_offered=["_imap._tcp.example.com"]), {}, {}, NOW)
    assert "say the service is not offered" in offered.findings[0].detail


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("mail.example.com", ("mail.example.com", None)),
        (" Mail.Example.COM:993 ", ("mail.example.com", 993)),
        ("smtp.example.com:587", ("smtp.example.com", 587)),
    ],
)
def test_access_hosts_parse(line, expected):
    assert parse_access_host(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("mail.example.com:2525", "does not say which service"),
        ("mail.example.com:abc", "must be a number"),
        ("192.0.2.1", "IP address"),
        ("not a host", "not a host"),
    ],
)
def test_access_hosts_refused(line, message):
    with pytest.raises(AccessHostError, match=message):
        parse_access_host(line)


def test_pop3_without_stls_says_stls():
    result = run(
        [probe("mail.example.com", port=110, service=Service.POP3, starttls=False)], Service.POP3
    )
    assert "STLS not offered (CAPA says: nothing)" in result.findings[0].detail
