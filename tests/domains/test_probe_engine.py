"""The protocol probe categories end to end: knot serves the domains (DNSSEC-signed, with TLSA
and SRV records), the mail lab's real Postfix, dovecot, tarpit and refusing hosts answer, a real
HTTPS server serves an MTA-STS policy, and the engine runs every category as in production.

Every finding id of smtp, submission, imap and pop3 (and dane.mismatch, mta_sts.mx_cert_invalid)
appears where it should and not where it should not. One batch probes every domain at once, so
the tarpit costs one greeting timeout for the whole module."""

import pytest
from django.test import override_settings

from domains.checks import mta_sts
from domains.dns import DnsSession
from domains.engine import ProbeSource, check_domain, check_domains
from domains.probes.probe import Timeouts
from domains.probes.runner import Prober
from tests.domains.test_net import CertificateAuthority, HttpsServer, Reply
from tests.knot import KnotServer
from tests.mailservers import lab_zones, spki_sha256

SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"
TIMEOUTS = Timeouts(connect=2.0, greeting=3.0, command=5.0)
WRONG = "ab" * 32


def srv(domain: str, name: str, port: int, host: str) -> str:
    return f"{name}.{domain} SRV 0 1 {port} {host}.\n"


def world(lab, https_host: str) -> dict[str, str]:
    ep = lab.endpoints
    port = {name: e.port for name, e in ep.items()}
    mx = {
        "good": ["mx-good"],
        "plain": ["mx-plain"],
        "expired": ["mx-expired"],
        "wrongname": ["mx-wrongname"],
        "relay": ["mx-relay"],
        "tls10": ["mx-tls10"],
        "untrusted": ["mx-untrusted"],
        "stsenforce": ["mx-untrusted"],
        "banner": ["mx-banner"],
        "tarpit": ["tarpit"],
        "refused": ["refused"],
        "mixed": ["mx-good", "tarpit", "refused", "blackhole"],
    }
    test = SOA + "ns A 127.0.0.1\nprobes.test. NS ns.test.\n"
    for domain, hosts in mx.items():
        test += "".join(f"{domain} MX {10 * i} {h}.probes.test.\n" for i, h in enumerate(hosts, 1))
    for domain in ("authplain", "notls", "plainauth", "oldtls", "nosrv", "notoffered", "custom"):
        test += f"{domain} MX 10 mx-good.probes.test.\n"
    good = "mail.probes.test"
    test += srv("good", "_submissions._tcp", 465, "mx-good.probes.test")
    test += srv("good", "_submission._tcp", 587, "mx-good.probes.test")
    test += srv("good", "_imaps._tcp", port["imaps-secure"], good)
    test += srv("good", "_imap._tcp", port["imap-secure"], good)
    test += srv("good", "_pop3s._tcp", port["pop3s-secure"], good)
    test += srv("good", "_pop3._tcp", port["pop3-secure"], good)
    test += srv("authplain", "_submission._tcp", 587, "submit-authplain.probes.test")
    test += srv("notls", "_submission._tcp", 587, "submit-notls.probes.test")
    test += srv("notls", "_imap._tcp", port["imap-notls"], "mail-notls.probes.test")
    test += srv("notls", "_pop3._tcp", port["pop3-notls"], "mail-notls.probes.test")
    test += srv("plainauth", "_imap._tcp", port["imap-plain"], "mail-plain.probes.test")
    test += srv("plainauth", "_pop3._tcp", port["pop3-plain"], "mail-plain.probes.test")
    test += srv("oldtls", "_imaps._tcp", port["imaps-oldtls"], "mail-oldtls.probes.test")
    test += "_submission._tcp.notoffered SRV 0 0 0 .\n"
    # Access services on servers with certificate problems (SRV may name any port).
    test += "altnames MX 10 mx-good.probes.test.\n"
    test += srv("altnames", "_imaps._tcp", port["imaps-secure"], "alias-mail.probes.test")
    test += srv("altnames", "_submission._tcp", 25, "mx-untrusted.probes.test")
    test += srv("altnames", "_pop3s._tcp", 995, "refused.probes.test")
    test += "expiredsub MX 10 mx-good.probes.test.\n"
    test += srv("expiredsub", "_submission._tcp", 25, "mx-expired.probes.test")
    test += '_mta-sts.stsenforce TXT "v=STSv1; id=1"\n'
    test += f"mta-sts.stsenforce A {https_host}\n"
    probes = lab_zones()["probes.test"]
    probes += f"alias-mail.probes.test. A {ep['imaps-secure'].address}\n"  # not in its certificate
    probes += f"_25._tcp.mx-good.probes.test. TLSA 3 1 1 {spki_sha256('mx-good.probes.test')}\n"
    probes += f"_465._tcp.mx-good.probes.test. TLSA 3 1 1 {spki_sha256('mx-good.probes.test')}\n"
    probes += f"_25._tcp.mx-expired.probes.test. TLSA 3 1 1 {WRONG}\n"
    probes += f"_{port['imaps-oldtls']}._tcp.mail-oldtls.probes.test. TLSA 3 1 1 {WRONG}\n"
    return {
        "test": test,
        "probes.test": probes,
        "30.0.127.in-addr.arpa": lab_zones()["30.0.127.in-addr.arpa"],
        "127.in-addr.arpa": SOA,
    }


DOMAINS = [
    "good.test", "plain.test", "expired.test", "wrongname.test", "relay.test", "tls10.test",
    "untrusted.test", "stsenforce.test", "banner.test", "tarpit.test", "refused.test",
    "mixed.test", "authplain.test", "notls.test", "plainauth.test", "oldtls.test", "nosrv.test",
    "notoffered.test", "custom.test", "altnames.test", "expiredsub.test",
]  # fmt: skip
ACCESS_HOSTS = {"custom.test": ["mx-good.probes.test"]}


def start_https(directory):
    """The HTTPS server of stsenforce.test's MTA-STS policy (enforce, every lab MX)."""
    ca = CertificateAuthority(directory, "sts")
    server = HttpsServer(
        {"mta-sts.stsenforce.test": ca.issue("mta-sts.stsenforce.test")}, port=mta_sts.POLICY_PORT
    )
    body = b"version: STSv1\r\nmode: enforce\r\nmx: *.probes.test\r\nmax_age: 604800\r\n"
    server.routes[("mta-sts.stsenforce.test", "/.well-known/mta-sts.txt")] = Reply(body=body)
    server.ca = ca
    return server


def start_knot(directory, lab, https) -> KnotServer:
    server = KnotServer(directory, world(lab, https.host), signed=["test", "probes.test"])
    server.start()
    return server


def trust_file(directory, lab, https) -> str:
    """The lab's CAs and the MTA-STS server's, in one file (MAILSEC_TLS_CA_FILE)."""
    bundle = directory / "ca.pem"
    bundle.write_bytes(lab.ca_bundle.read_bytes() + https.ca.cert_path.read_bytes())
    return str(bundle)


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    server = start_https(tmp_path_factory.mktemp("stsca"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def knot(tmp_path_factory, mail_lab, https):
    server = start_knot(tmp_path_factory.mktemp("probeknot"), mail_lab, https)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trust(tmp_path_factory, mail_lab, https):
    return trust_file(tmp_path_factory.mktemp("trust"), mail_lab, https)


def lab_settings(knot, trust, **extra):
    options = {
        "MAILSEC_ALLOW_PRIVATE_TARGETS": True,
        "MAILSEC_TLS_CA_FILE": trust,
        "MAILSEC_DNSSEC_TRUST_ANCHORS": knot.trust_anchors,
    }
    return override_settings(**{**options, **extra})


@pytest.fixture(scope="module")
def results(knot, trust):
    with lab_settings(knot, trust):
        prober = Prober(timeouts=TIMEOUTS)
        found = check_domains(
            DOMAINS,
            nameservers=[(knot.host, knot.port)],
            access_hosts=ACCESS_HOSTS,
            probes=ProbeSource(prober),
        )
        prober.close()
    found = {r.domain: r for r in found}
    found["probed"] = prober.probed
    return found


PROBE_IDS = ("smtp.", "submission.", "imap.", "pop3.", "probe.", "dane.mismatch", "mta_sts.mx_")


def probe_ids(run, category=None) -> list[str]:
    return sorted(
        f.id for f in run.findings if f.id.startswith(PROBE_IDS) and category in (None, f.category)
    )


def server(run, category: str, host: str, port: int | None = None) -> dict:
    rows = run.categories[category].servers
    return next(r for r in rows if r["host"] == host and port in (None, r["port"]))


def test_good_servers_have_no_probe_findings(results):
    run = results["good.test"]
    assert probe_ids(run) == []
    for name in ("smtp", "submission", "imap", "pop3"):
        assert str(run.categories[name].status) == "pass", name
    mx = server(run, "smtp", "mx-good.probes.test")
    assert mx["reachable"] and mx["starttls"] and mx["dane"] == "match"
    assert mx["certificate"]["trusted"] and "mx-good.probes.test" in mx["certificate"]["names"]
    assert (mx["plaintext_auth"], mx["open_relay"]) == (False, False)
    assert "TLSv1.2" in mx["tls_versions"] and "TLSv1" not in mx["tls_versions"]
    assert server(run, "submission", "mx-good.probes.test", 465)["dane"] == "match"
    assert {r["port"] for r in run.categories["submission"].servers} == {465, 587}
    assert all(r["reachable"] for c in ("imap", "pop3") for r in run.categories[c].servers)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("plain.test", ["smtp.tls_missing"]),
        ("expired.test", ["dane.mismatch", "smtp.cert_expired"]),
        ("wrongname.test", ["smtp.cert_name_mismatch"]),
        # (the lab gives the relay's address a PTR to another name: the banner disagrees)
        ("relay.test", ["smtp.banner_mismatch", "smtp.open_relay"]),
        ("tls10.test", ["smtp.tls_outdated"]),
        ("untrusted.test", ["smtp.cert_untrusted"]),
        ("stsenforce.test", ["mta_sts.mx_cert_invalid", "smtp.cert_untrusted"]),
        ("banner.test", ["smtp.banner_mismatch"]),
    ],
)
def test_smtp_findings(results, domain, expected):
    # (no SRV records: submission, imap and pop3 say so in a no_hosts finding)
    found = [i for i in probe_ids(results[domain]) if not i.endswith(".no_hosts")]
    assert found == sorted(expected)


def test_severities_follow_what_senders_require(results):
    def severity(domain, kind):
        return next(str(f.severity) for f in results[domain].findings if f.id == kind)

    assert severity("untrusted.test", "smtp.cert_untrusted") == "low"
    assert severity("stsenforce.test", "smtp.cert_untrusted") == "high"  # MTA-STS enforce
    assert severity("stsenforce.test", "mta_sts.mx_cert_invalid") == "high"
    assert severity("expired.test", "dane.mismatch") == "critical"
    assert severity("relay.test", "smtp.open_relay") == "critical"
    assert severity("plain.test", "smtp.tls_missing") == "high"


def test_dane_mismatch_names_the_record(results):
    detail = next(f.detail for f in results["expired.test"].findings if f.id == "dane.mismatch")
    assert "mx-expired.probes.test (127.0.30.3) port 25: _25._tcp.mx-expired.probes.test" in detail
    assert server(results["expired.test"], "smtp", "mx-expired.probes.test")["dane"] == "mismatch"


def test_an_mx_that_never_greets_is_could_not_test(results):
    for domain in ("tarpit.test", "refused.test"):
        smtp = results[domain].categories["smtp"]
        assert str(smtp.status) == "error" and smtp.score is None
        assert [f.id for f in smtp.findings] == ["probe.not_tested"]
        assert "outbound port 25 is blocked" in smtp.findings[0].detail
        assert results[domain].status == "partial"


def test_silent_hosts_beside_one_that_answers_are_unreachable_told_apart(results):
    smtp = results["mixed.test"].categories["smtp"]
    assert [f.id for f in smtp.findings] == ["smtp.unreachable"]
    detail = smtp.findings[0].detail
    assert "tarpit.probes.test (127.0.32.1) port 25: connected, but no greeting came" in detail
    assert "refused.probes.test (127.0.32.2) port 25: connection refused" in detail
    assert "blackhole.probes.test (127.0.32.3) port 25: no TCP connection (timeout)" in detail


def test_submission_imap_pop3_findings(results):
    assert probe_ids(results["authplain.test"], "submission") == ["submission.plaintext_auth"]
    assert probe_ids(results["notls.test"]) == [
        "imap.plaintext_auth", "imap.tls_missing", "pop3.plaintext_auth", "pop3.tls_missing",
        "submission.plaintext_auth", "submission.tls_missing",
    ]  # fmt: skip
    assert probe_ids(results["plainauth.test"]) == [
        "imap.plaintext_auth", "pop3.plaintext_auth", "submission.no_hosts"
    ]  # fmt: skip
    assert probe_ids(results["oldtls.test"]) == [
        "dane.mismatch", "imap.tls_outdated", "pop3.no_hosts", "submission.no_hosts"
    ]  # fmt: skip


def test_certificate_problems_of_access_services_are_high(results):
    def found(domain):
        return {f.id: str(f.severity) for f in results[domain].findings if f.id in PROBLEMS}

    PROBLEMS = {
        "imap.cert_name_mismatch", "submission.cert_untrusted", "pop3.unreachable",
        "submission.cert_expired",
    }  # fmt: skip
    assert found("altnames.test") == {
        "imap.cert_name_mismatch": "high",
        "submission.cert_untrusted": "high",
        "pop3.unreachable": "high",
    }
    assert found("expiredsub.test") == {"submission.cert_expired": "high"}
    detail = next(f.detail for f in results["altnames.test"].findings if f.id == "pop3.unreachable")
    assert "refused.probes.test (127.0.32.2) port 995: connection refused" in detail
    assert found("good.test") == {}


def test_srv_with_non_standard_ports_is_followed(results, mail_lab):
    rows = results["good.test"].categories["imap"].servers
    assert {r["port"] for r in rows} == {
        mail_lab.endpoints["imaps-secure"].port,
        mail_lab.endpoints["imap-secure"].port,
    }
    assert {r["tls_mode"] for r in rows} == {"implicit", "starttls"}
    assert {r["priority"] for r in rows} == {0}  # the SRV records' priority
    mixed = results["mixed.test"].categories["smtp"].servers
    assert [r["priority"] for r in mixed] == [10, 20, 30, 40]  # the MX preferences


def test_no_srv_and_not_offered_are_not_applicable(results):
    for domain in ("nosrv.test", "notoffered.test"):
        for name in ("submission", "imap", "pop3"):
            category = results[domain].categories[name]
            assert category.applicable is False and str(category.status) == "info"
            assert [f.id for f in category.findings] == [f"{name}.no_hosts"]
    said = results["notoffered.test"].categories["submission"].findings[0].detail
    assert "_submission._tcp.notoffered.test say the service is not offered" in said


def test_configured_bare_host_probes_the_standard_ports(results):
    run = results["custom.test"]
    assert probe_ids(run, "submission") == []
    assert {r["port"] for r in run.categories["submission"].servers} == {465, 587}
    # Nothing listens for IMAP or POP3 there: not offered, no finding of failure.
    assert run.categories["imap"].applicable is False
    assert [f.id for f in run.categories["imap"].findings] == ["imap.no_hosts"]


def test_one_probe_per_address_and_port(results):
    # good.test, custom.test and mixed.test... share mx-good: each target once in the batch.
    targets = {
        (r["host"], r["address"], r["port"], r["service"], r["tls_mode"])
        for run in results.values()
        if not isinstance(run, int)
        for name in ("smtp", "submission", "imap", "pop3")
        for r in (run.categories[name].servers or [])
        if r["reach"] != "pending"
    }
    assert results["probed"] == len(targets)


def test_private_addresses_are_refused_while_not_allowed(knot, trust):
    with lab_settings(knot, trust, MAILSEC_ALLOW_PRIVATE_TARGETS=False):
        run = check_domain(
            "good.test",
            categories=["smtp"],
            session=DnsSession([(knot.host, knot.port)]),
        )
    smtp = run.categories["smtp"]
    assert str(smtp.status) == "error"
    assert "a private address (MAILSEC_ALLOW_PRIVATE_TARGETS is off)" in smtp.findings[0].detail
    assert smtp.servers[0]["reach"] == "refused_target"


def test_check_domain_command_lists_the_servers(db, knot, trust):
    import io
    import json

    from django.core.management import call_command

    out = io.StringIO()
    with lab_settings(knot, trust):
        call_command(
            "check_domain",
            "--json",
            "--no-save",
            "--nameserver",
            f"{knot.host}:{knot.port}",
            "--checks",
            "smtp,submission,imap,pop3",
            "relay.test",
            stdout=out,
        )
    line = json.loads(out.getvalue())
    assert set(line["categories"]) == {"smtp", "submission", "imap", "pop3"}
    (mx,) = line["categories"]["smtp"]["servers"]
    assert {
        "host", "address", "port", "reachable", "tls_versions", "certificate", "dane",
        "plaintext_auth", "open_relay",
    } <= set(mx)  # fmt: skip
    assert (mx["host"], mx["address"], mx["port"]) == ("mx-relay.probes.test", "127.0.30.5", 25)
    assert mx["reachable"] is True and mx["open_relay"] is True
    assert {"subject", "issuer", "not_after", "names", "trusted"} <= set(mx["certificate"])
    assert mx["dane"] == "none" and mx["plaintext_auth"] is False
    assert line["categories"]["imap"]["servers"] == []
    assert "smtp.open_relay" in [f["id"] for f in line["findings"]]


def test_a_failed_srv_lookup_is_could_not_test(knot, trust):
    from bench.dns_forwarder import DnsForwarder

    proxy = DnsForwarder((knot.host, knot.port), drop=["_imaps._tcp.good.test"])
    proxy.start()
    try:
        with lab_settings(knot, trust):
            run = check_domain(
                "good.test",
                categories=["imap", "pop3"],
                session=DnsSession([(proxy.host, proxy.port)], lifetime=1.0),
            )
    finally:
        proxy.stop()
    imap = run.categories["imap"]
    assert (str(imap.status), imap.servers) == ("error", [])
    assert [f.id for f in imap.findings] == ["dns.lookup_failed"]
    assert "SRV _imaps._tcp.good.test" in imap.findings[0].detail
    assert str(run.categories["pop3"].status) == "pass"  # only the verdict that needs it
