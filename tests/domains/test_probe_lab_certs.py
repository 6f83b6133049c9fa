"""Certificate and TLS findings of every probed service against the lab's real servers (the
cases on 127.0.34.x, and dovecot's old-TLS POP3): each appears where it should and not where it
should not. One batch through the engine, as in production; knot serves the SRV records."""

import pytest

from domains.engine import ProbeSource, check_domains
from domains.probes.runner import Prober
from tests.domains.test_probe_engine import PROBE_IDS, TIMEOUTS, lab_settings, srv, world
from tests.knot import KnotServer

CASES = {  # domain: its SRV records (name, endpoint or (port, host)); MX is mx-good, or given
    "expiring": [
        ("_submission._tcp", (587, "mx-expiring.probes.test")),
        ("_imaps._tcp", "imaps-expiring"),
        ("_pop3._tcp", "pop3-expiring"),
    ],
    "rogueimap": [("_imaps._tcp", "imaps-rogue"), ("_imap._tcp", "imap-rogue")],
    "wrongimap": [("_imaps._tcp", "imaps-wrongname")],
    "expiredpop": [("_pop3s._tcp", "pop3s-expired"), ("_pop3._tcp", "pop3-expired")],
    "oldpop": [("_pop3s._tcp", "pop3s-oldtls")],
    "oldsub": [("_submission._tcp", (587, "submit-tls10.probes.test"))],
    "wrongsub": [("_submission._tcp", (587, "submit-wrongname.probes.test"))],
}
MX = {"expiring": "mx-expiring"}
EXPECTED = {
    "expiring": [
        "imap.cert_expiring", "pop3.cert_expiring", "smtp.cert_expiring",
        "submission.cert_expiring",
    ],
    "rogueimap": ["imap.cert_untrusted", "pop3.no_hosts", "submission.no_hosts"],
    "wrongimap": ["imap.cert_name_mismatch", "pop3.no_hosts", "submission.no_hosts"],
    "expiredpop": ["imap.no_hosts", "pop3.cert_expired", "submission.no_hosts"],
    "oldpop": ["imap.no_hosts", "pop3.tls_outdated", "submission.no_hosts"],
    "oldsub": ["imap.no_hosts", "pop3.no_hosts", "submission.tls_outdated"],
    "wrongsub": ["imap.no_hosts", "pop3.no_hosts", "submission.cert_name_mismatch"],
    "good": [],  # the good servers: none of these
}  # fmt: skip


def cases_world(lab) -> dict[str, str]:
    zones = world(lab, "127.0.0.1")
    for domain, records in CASES.items():
        zones["test"] += f"{domain} MX 10 {MX.get(domain, 'mx-good')}.probes.test.\n"
        for name, where in records:
            if isinstance(where, str):
                endpoint = lab.endpoints[where]
                where = (endpoint.port, endpoint.host)
            zones["test"] += srv(domain, name, *where)
    return zones


@pytest.fixture(scope="module")
def results(tmp_path_factory, mail_lab):
    knot = KnotServer(
        tmp_path_factory.mktemp("certknot"), cases_world(mail_lab), signed=["test", "probes.test"]
    )
    knot.start()
    try:
        with lab_settings(knot, str(mail_lab.ca_bundle)), Prober(timeouts=TIMEOUTS) as prober:
            runs = check_domains(
                [f"{d}.test" for d in EXPECTED],
                nameservers=[(knot.host, knot.port)],
                probes=ProbeSource(prober),
            )
    finally:
        knot.stop()
    return {run.domain.removesuffix(".test"): run for run in runs}


@pytest.mark.parametrize("domain", list(EXPECTED))
def test_certificate_findings_appear_where_they_should(results, domain):
    found = sorted(f.id for f in results[domain].findings if f.id.startswith(PROBE_IDS))
    assert found == EXPECTED[domain]


def test_expiring_certificates_name_their_date(results):
    run = results["expiring"]
    for category in ("smtp", "submission", "imap", "pop3"):
        (row,) = run.categories[category].servers
        assert row["reachable"] is True and row["certificate"]["trusted"] is True
        (expiring,) = [f for f in run.findings if f.id == f"{category}.cert_expiring"]
        assert f"{row['host']} ({row['address']}) port {row['port']}: " in expiring.detail
        assert " expires on 20" in expiring.detail


def test_access_certificate_problems_are_high(results):
    def severity(domain, kind):
        return next(str(f.severity) for f in results[domain].findings if f.id == kind)

    assert severity("rogueimap", "imap.cert_untrusted") == "high"
    assert severity("wrongimap", "imap.cert_name_mismatch") == "high"
    assert severity("wrongsub", "submission.cert_name_mismatch") == "high"
    assert severity("expiredpop", "pop3.cert_expired") == "high"
