"""DANE of the probed servers against knot and the mail lab: a failed TLSA (or DNSSEC) lookup
voids only that host's DANE verdict, not its category (issue 11 item 5 style); TLSA records of a
host named by an SRV record count only when the SRV's zone validates too (RFC 7673); a failed
PTR lookup leaves only the banner verdict untested, and says so."""

import pytest

from bench.dns_forwarder import DnsForwarder
from domains.dns import DnsSession
from domains.engine import ProbeSource, check_domain
from domains.probes.runner import Prober
from tests.domains.test_probe_engine import SOA, TIMEOUTS, lab_settings, srv, world
from tests.knot import KnotServer


def gaps_world(lab) -> dict[str, str]:
    zones = world(lab, "127.0.0.1")
    imaps = lab.endpoints["imaps-oldtls"].port
    # srvsigned.test: SRV in a signed zone -> the host's TLSA record counts (it mismatches).
    zones["test"] += "srvsigned MX 10 mx-good.probes.test.\n"
    zones["test"] += srv("srvsigned", "_imaps._tcp", imaps, "mail-oldtls.probes.test")
    # srvplain.test: a delegated zone that is not signed: its SRV record could be forged, so
    # the (signed) host's TLSA record does not count (RFC 7673 4.1).
    zones["test"] += "srvplain.test. NS ns.test.\n"
    zones["srvplain.test"] = (
        SOA + "@ MX 10 mx-good.probes.test.\n"
        f"_imaps._tcp SRV 0 1 {imaps} mail-oldtls.probes.test.\n"
    )
    # twomx.test: two MX hosts, each with TLSA records (mx-expired's mismatching).
    zones["test"] += "twomx MX 10 mx-expired.probes.test.\ntwomx MX 20 mx-good.probes.test.\n"
    return zones


@pytest.fixture(scope="module")
def knot(tmp_path_factory, mail_lab):
    server = KnotServer(
        tmp_path_factory.mktemp("daneknot"), gaps_world(mail_lab), signed=["test", "probes.test"]
    )
    server.start()
    yield server
    server.stop()


def run(knot, mail_lab, domain, categories, nameserver=None):
    host, port = nameserver or (knot.host, knot.port)
    with lab_settings(knot, str(mail_lab.ca_bundle)), Prober(timeouts=TIMEOUTS) as prober:
        return check_domain(
            domain,
            categories=categories,
            session=DnsSession([(host, port)], lifetime=1.0),
            probes=ProbeSource(prober),
        )


def forwarder(knot, *drop):
    proxy = DnsForwarder((knot.host, knot.port), drop=list(drop))
    proxy.start()
    return proxy


def ids(result) -> list[str]:
    return sorted(f.id for f in result.findings)


def test_srv_host_dane_counts_when_both_zones_validate(knot, mail_lab):
    result = run(knot, mail_lab, "srvsigned.test", ["imap", "dane"])
    (row,) = result.categories["imap"].servers
    assert row["dane"] == "mismatch"
    assert "dane.mismatch" in ids(result)


def test_srv_in_an_unsigned_zone_makes_the_hosts_tlsa_not_count(knot, mail_lab):
    result = run(knot, mail_lab, "srvplain.test", ["imap", "dane"])
    (row,) = result.categories["imap"].servers
    assert (row["host"], row["dane"]) == ("mail-oldtls.probes.test", "none")
    assert "dane.mismatch" not in ids(result)
    assert ids(result.categories["imap"]) == ["imap.tls_outdated"]


def test_a_failed_tlsa_lookup_of_an_srv_host_voids_only_its_dane(knot, mail_lab):
    port = mail_lab.endpoints["imaps-oldtls"].port
    proxy = forwarder(knot, f"_{port}._tcp.mail-oldtls.probes.test")
    try:
        result = run(knot, mail_lab, "oldtls.test", ["imap", "dane"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    imap = result.categories["imap"]
    assert str(imap.status) != "error"  # the category keeps what was answered
    assert [f.id for f in imap.findings if f.id.startswith("imap.")] == ["imap.tls_outdated"]
    (row,) = imap.servers
    assert row["dane"] == "none" and "not tested" in row["dane_detail"]
    assert "dane.mismatch" not in ids(result)
    (failed,) = [f for f in result.findings if f.id == "dns.partial_lookup_failed"]
    assert f"TLSA _{port}._tcp.mail-oldtls.probes.test" in failed.detail
    assert f"DANE of mail-oldtls.probes.test:{port} not tested" in failed.detail


def test_a_failed_tlsa_lookup_of_an_mx_voids_only_its_dane(knot, mail_lab):
    proxy = forwarder(knot, "_25._tcp.mx-expired.probes.test")
    try:
        result = run(knot, mail_lab, "twomx.test", ["smtp", "dane"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    dane, smtp = result.categories["dane"], result.categories["smtp"]
    assert str(dane.status) != "error" and str(smtp.status) != "error"
    assert "dane.mismatch" not in ids(result)  # the mismatching record was not seen
    assert [f.id for f in smtp.findings] == ["smtp.cert_expired"]
    rows = {row["host"]: row for row in smtp.servers}
    assert rows["mx-good.probes.test"]["dane"] == "match"  # the other MX keeps its verdict
    expired = rows["mx-expired.probes.test"]
    assert expired["dane"] == "none" and "not tested" in expired["dane_detail"]
    (failed,) = [f for f in result.findings if f.id == "dns.partial_lookup_failed"]
    assert "DANE of mx-expired.probes.test:25 not tested" in failed.detail


def test_no_mx_whose_dane_could_be_tested_is_could_not_test(knot, mail_lab):
    proxy = forwarder(knot, "_25._tcp.mx-expired.probes.test")
    try:
        result = run(knot, mail_lab, "expired.test", ["dane"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    assert str(result.categories["dane"].status) == "error"
    assert ids(result) == ["dns.lookup_failed"]


def test_a_failed_ptr_lookup_leaves_only_the_banner_untested(knot, mail_lab):
    proxy = forwarder(knot, "30.0.127.in-addr.arpa")
    try:
        result = run(knot, mail_lab, "banner.test", ["smtp"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    smtp = result.categories["smtp"]
    assert str(smtp.status) != "error"
    assert "smtp.banner_mismatch" not in ids(result)  # not judged without the PTR
    (untested,) = [f for f in smtp.findings if f.id == "dns.partial_lookup_failed"]
    assert untested.detail.startswith("mx-banner.probes.test (127.0.30.9) port 25: could not ")
    assert "PTR 9.30.0.127.in-addr.arpa" in untested.detail
    assert untested.detail.endswith("banner and FCrDNS of 127.0.30.9 not tested.")


def test_an_mx_whose_address_lookup_fails_voids_only_its_probes(knot, mail_lab):
    proxy = forwarder(knot, "mx-expired.probes.test")
    try:
        result = run(knot, mail_lab, "twomx.test", ["smtp"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    smtp = result.categories["smtp"]
    assert str(smtp.status) == "pass"  # mx-good answered; the other MX was not probed
    assert [row["host"] for row in smtp.servers] == ["mx-good.probes.test"]
    said = " ".join(f.detail for f in result.findings if f.id.startswith("dns."))
    assert "A of mx-expired.probes.test not probed" in said
    assert "no A or AAAA record" not in " ".join(f.detail for f in result.findings)


def test_no_mx_address_known_is_could_not_test(knot, mail_lab):
    proxy = forwarder(knot, "mx-expired.probes.test")
    try:
        result = run(knot, mail_lab, "expired.test", ["smtp"], (proxy.host, proxy.port))
    finally:
        proxy.stop()
    smtp = result.categories["smtp"]
    assert (str(smtp.status), smtp.servers) == ("error", [])
    assert [f.id for f in smtp.findings] == ["dns.lookup_failed"]
