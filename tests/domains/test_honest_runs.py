"""Honest runs (issue 11, items 1, 2, 5, 6 and 7), against real DNS: knot on loopback, edited
while it runs, lame zones it cannot load, and resolvers that lie in front of it.

- Nothing outlives a run: a record changed between two runs of one process is seen.
- Every query goes to the configured resolver, on its port, and nowhere else.
- A failed lookup voids only the verdicts that need its answer, and is one finding per zone.
- A resolver that lies (NXDOMAIN for everything, signatures stripped) or is dead makes every
  domain "could not test" with one finding about the resolver, never a grade.
"""

import socket

import pytest
from django.core.management import call_command

from domains.dns import DnsSession
from domains.engine import DNS_CATEGORIES, check_domain, check_domains
from tests import netguard
from tests.domains import dns_world as world
from tests.knot import KnotServer
from tests.lying_resolver import NXDOMAIN_EVERYTHING, STRIP_SIGNATURES, LyingResolver

SOA = world.SOA
FRESH_SPF = "v=spf1 include:inc.fresh.test -all exp=explain.fresh.test"
FRESH_DMARC = "v=DMARC1; p=reject; rua=mailto:d@fresh.test"
INCLUDED = "v=spf1 ip4:192.0.2.1 -all"


def txt(value: str) -> str:
    return world.txt(value)


def zones() -> dict[str, str]:
    vendor_rua = "v=DMARC1; p=reject; rua=mailto:d@reports.broken-vendor.test"
    test = SOA + "ns A 127.0.0.1\n"
    test += world.good(
        "lamerev.test",
        mx="lamerev.test. MX 10 mx.mailhost.test.\nlamerev.test. MX 20 mx2.mailhost.test.",
    )
    test += world.good("vendorfail.test", dmarc="_dmarc.vendorfail.test. TXT " + txt(vendor_rua))
    test += world.good(
        "twofail.test",
        mx="twofail.test. MX 20 mx2.mailhost.test.",
        dmarc="_dmarc.twofail.test. TXT " + txt(vendor_rua.replace("p=reject", "p=quarantine")),
    )
    test += world.good("dkimfail.test")
    fresh = SOA + world.good(
        "fresh.test",
        spf="fresh.test. TXT " + txt(FRESH_SPF),
        dmarc="_dmarc.fresh.test. TXT " + txt(FRESH_DMARC),
        skip=("bimi",),
    )
    fresh += "inc.fresh.test. TXT " + txt(INCLUDED) + "\n"
    fresh += "explain.fresh.test. TXT " + txt("Not allowed: see https://fresh.test/") + "\n"
    mailhost = SOA + "mx A 127.0.0.10\nmx AAAA ::1\nmx2 A 127.1.0.10\n"
    return {
        "test": test,
        "fresh.test": fresh,
        "mailhost.test": mailhost,
        "127.in-addr.arpa": SOA + "10.0.0 PTR mx.mailhost.test.\n",
        "1.127.in-addr.arpa": SOA,  # lame: knot cannot load it (SERVFAIL)
        "ip6.arpa": world.REVERSE_V6,
        "broken-vendor.test": SOA,  # lame
        "google._domainkey.dkimfail.test": SOA,  # lame: one DKIM selector of many
    }


BROKEN = ["1.127.in-addr.arpa", "broken-vendor.test", "google._domainkey.dkimfail.test"]


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    server = KnotServer(
        tmp_path_factory.mktemp("knot-honest"), zones(), signed=["test"], broken=BROKEN
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def check(dns_server):
    def run(domain, categories):
        session = DnsSession([(dns_server.host, dns_server.port)])
        return check_domain(domain, categories=categories, session=session)

    return run


def ids(result) -> list[str]:
    return sorted(f.id for f in result.findings)


def statuses(result) -> dict[str, str]:
    return {name: str(c.status) for name, c in result.categories.items()}


# --- items 1 and 2: nothing outlives a run, nothing escapes the resolver ----------------------


def test_a_record_changed_between_two_runs_of_one_process_is_seen(dns_server, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(dns_server.host, dns_server.port)]
    first = check_domain("fresh.test", categories=["spf", "dmarc"])
    assert ids(first) == []
    assert first.categories["dmarc"].data["policy"] == "reject"
    try:
        dns_server.set_records(
            "fresh.test", "_dmarc.fresh.test.", "TXT", txt(FRESH_DMARC.replace("reject", "none"))
        )
        dns_server.set_records("fresh.test", "inc.fresh.test.", "TXT", txt("no policy here"))
        # A new run in the same process, as the next task of a long-lived worker.
        second = check_domain("fresh.test", categories=["spf", "dmarc"])
    finally:
        dns_server.set_records("fresh.test", "_dmarc.fresh.test.", "TXT", txt(FRESH_DMARC))
        dns_server.set_records("fresh.test", "inc.fresh.test.", "TXT", txt(INCLUDED))
    assert second.categories["dmarc"].data["policy"] == "none"
    assert "dmarc.policy_none" in ids(second)
    assert "spf.include_not_found" in ids(second)  # the include target changed too
    third = check_domain("fresh.test", categories=["spf", "dmarc"])
    assert ids(third) == []  # and back


def test_every_query_goes_to_the_configured_resolver_and_port(dns_server, settings):
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = dns_server.trust_anchors
    assert dns_server.port != 53
    with netguard.recording() as seen:
        # Every DNS category (the protocol probes' connections to port 25 are not DNS traffic,
        # and are screened and tested in tests/probes/).
        result = check_domain(
            "fresh.test",
            categories=DNS_CATEGORIES,
            session=DnsSession([(dns_server.host, dns_server.port)]),
        )
    assert result.status != "error"
    assert seen, "the recording saw nothing: it records nothing"
    # The SPF record's exp= target was asked by checkdmarc through the system resolver.
    assert {(host, port) for _, host, port in seen} == {(dns_server.host, dns_server.port)}
    assert not [entry for entry in seen if entry[0] == "getaddrinfo"]


# --- item 5: a failed lookup voids only what needs its answer ---------------------------------


def only(result, kind):
    (found,) = [f for f in result.findings if f.id == kind]
    return found


def test_a_lame_reverse_zone_voids_only_fcrdns(check):
    result = check("lamerev.test", ["mx"])
    mx = result.categories["mx"]
    assert str(mx.status) != "error" and mx.score is not None
    assert mx.data["hosts"] == ["mx.mailhost.test", "mx2.mailhost.test"]
    assert result.status == "complete"
    failed = only(result, "dns.partial_lookup_failed")
    assert "PTR 10.0.1.127.in-addr.arpa (server answered SERVFAIL)" in failed.detail
    assert "the name servers of 1.127.in-addr.arpa" in failed.detail
    assert "FCrDNS of 127.1.0.10 (mx2.mailhost.test) not tested" in failed.detail
    assert mx.records["PTR"] == {"127.0.0.10": ["mx.mailhost.test"], "::1": ["mx.mailhost.test"]}


def test_a_lame_report_vendor_voids_only_the_authorisation(check):
    result = check("vendorfail.test", ["dmarc", "dkim"])
    dmarc = result.categories["dmarc"]
    assert (str(dmarc.status), dmarc.score) == ("pass", 100)
    assert dmarc.data["policy"] == "reject"
    assert str(result.categories["dkim"].status) == "pass"  # DKIM still reads DMARC's verdict
    assert ids(result) == ["dns.partial_lookup_failed"]
    detail = result.findings[0].detail
    assert "the name servers of broken-vendor.test" in detail
    assert "whether reports.broken-vendor.test accepts reports for vendorfail.test" in detail


def test_one_failing_dkim_selector_keeps_the_keys_found(check):
    result = check("dkimfail.test", ["dkim"])
    dkim = result.categories["dkim"]
    assert (str(dkim.status), dkim.score) == ("pass", 100)
    assert dkim.data["selectors"] == ["sel1"]
    failed = only(result, "dns.partial_lookup_failed")
    assert "DKIM selector google not probed" in failed.detail


def test_failures_in_two_zones_are_two_findings_naming_each(check):
    result = check("twofail.test", ["mx", "dmarc"])
    assert statuses(result) == {"mx": "pass", "dmarc": "pass"}  # both judged
    assert result.categories["dmarc"].data["policy"] == "quarantine"
    failures = [f for f in result.findings if f.id.startswith("dns.")]
    assert [f.category for f in failures] == ["dmarc", "mx"]  # sorted, one each
    zones = sorted(f.detail.split(":")[0] for f in failures)
    assert zones == [
        "No usable answer from the name servers of 1.127.in-addr.arpa",
        "No usable answer from the name servers of broken-vendor.test",
    ]


# --- items 6 and 7: a dead or lying resolver is not the domain's fault ------------------------


def resolver_finding(result) -> str:
    assert result.status == "error" and result.grade == "" and result.score is None
    assert set(statuses(result).values()) == {"error"}
    (found,) = result.findings  # one, not one per lookup or category
    assert found.id == "dns.resolver_broken"
    return found.detail


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_resolver_is_one_finding_about_the_resolver():
    port = free_udp_port()
    session = DnsSession([("127.0.0.1", port)], lifetime=0.5)
    detail = resolver_finding(check_domain("good.test", session=session))
    assert f"The resolver (127.0.0.1:{port}) could not resolve the root zone's SOA" in detail


def test_a_resolver_that_says_nxdomain_to_everything(knot):
    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        result = check_domain("good.test", session=DnsSession([(liar.host, liar.port)]))
    detail = resolver_finding(result)
    assert "answers NXDOMAIN for the root zone's SOA" in detail


def test_a_resolver_that_strips_signatures(knot, settings):
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
    honest = check_domain(
        "good.test", categories=["dnssec"], session=DnsSession([(knot.host, knot.port)])
    )
    assert str(honest.categories["dnssec"].status) == "pass"
    with LyingResolver((knot.host, knot.port), lie=STRIP_SIGNATURES) as liar:
        result = check_domain(
            "good.test", categories=["dnssec"], session=DnsSession([(liar.host, liar.port)])
        )
    assert "answers DNSKEY test without its RRSIG" in resolver_finding(result)


def test_a_batch_asks_its_resolver_once(knot):
    names = ["good.test", "nospf.test", "nodmarc.test"]
    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        results = check_domains(names, nameservers=[(liar.host, liar.port)])
        asked = liar.queries
    assert [r.domain for r in results] == names
    for result in results:
        resolver_finding(result)
    assert asked <= 3  # the root's SOA and NS, the anchor's DNSKEY: once for the batch


def test_check_domain_command_against_a_lying_resolver_exits_2(knot, db, capsys):
    liar = LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING)
    with liar, pytest.raises(SystemExit) as exited:
        call_command(
            "check_domain",
            "good.test",
            "nodmarc.test",
            "--no-save",
            "--nameserver",
            f"{liar.host}:{liar.port}",
        )
    assert exited.value.code == 2
    out = capsys.readouterr().out
    assert out.count("could not test") == 2
    assert out.count("dns.resolver_broken") == 2
    assert "good.test: could not test" in out and "nodmarc.test: could not test" in out


def command(*args) -> int:
    try:
        call_command("check_domain", "--no-save", *args)
    except SystemExit as exited:
        return exited.code
    return 0


def test_check_domain_exit_codes(knot, db, capsys):
    ns = f"{knot.host}:{knot.port}"
    assert command("--nameserver", ns, "good.test") == 0
    # Partial (DMARC's record cannot be had): checked, graded, exit 0.
    with LyingResolver((knot.host, knot.port), refuse=["_dmarc.good.test"]) as liar:
        assert command("--json", "--nameserver", f"{liar.host}:{liar.port}", "good.test") == 0
    assert '"status": "partial"' in capsys.readouterr().out
    with LyingResolver((knot.host, knot.port), lie=NXDOMAIN_EVERYTHING) as liar:
        lying = f"{liar.host}:{liar.port}"
        assert command("--nameserver", lying, "good.test") == 2
        assert command("--nameserver", lying, "good.test", "not a domain") == 1  # 1 wins


@pytest.mark.django_db(transaction=True)
def test_a_long_lived_worker_sees_a_changed_record(
    dns_server, celery_queue, redis_url, acme, tmp_path
):
    """Item 1 through a real Celery worker with ONE pool process, so both checks run in the
    same long-lived process, as in production: the second must see the changed DMARC record
    and the changed SPF include target (checkdmarc's per-process cache served the old ones)."""
    from django.db import connection

    from domains.models import CheckRun, Domain
    from domains.tasks import check_domain_task
    from tests.servers import CeleryWorker, database_url

    domain = Domain.objects.create(organization=acme, name="fresh.test")
    worker = CeleryWorker(
        redis_url=redis_url,
        database=database_url(connection.settings_dict),
        queue_prefix=celery_queue,
        log=tmp_path / "worker.log",
        concurrency=1,
        extra_env={
            "MAILSEC_DNS_NAMESERVERS": f"{dns_server.host}:{dns_server.port}",
            "MAILSEC_DNSSEC_TRUST_ANCHORS": ",".join(dns_server.trust_anchors),
        },
    )

    def run_once() -> CheckRun:
        try:
            run_id = check_domain_task.apply_async((domain.pk,), ignore_result=False).get(
                timeout=90
            )
        except Exception as exc:
            pytest.fail(f"the check failed ({exc!r}); worker log:\n{worker.output()}")
        return CheckRun.objects.get(pk=run_id)

    def finding_ids(run: CheckRun) -> set[str]:
        return {f["id"] for c in run.categories.values() for f in c.get("findings", [])}

    try:
        first = run_once()
        assert first.categories["dmarc"]["status"] == "pass", first.categories["dmarc"]
        assert "spf.include_not_found" not in finding_ids(first)
        dns_server.set_records(
            "fresh.test", "_dmarc.fresh.test.", "TXT", txt(FRESH_DMARC.replace("reject", "none"))
        )
        dns_server.set_records("fresh.test", "inc.fresh.test.", "TXT", txt("no policy here"))
        second = run_once()
    finally:
        worker.stop()
        dns_server.set_records("fresh.test", "_dmarc.fresh.test.", "TXT", txt(FRESH_DMARC))
        dns_server.set_records("fresh.test", "inc.fresh.test.", "TXT", txt(INCLUDED))
    assert "dmarc.policy_none" in finding_ids(second), second.categories["dmarc"]
    assert "spf.include_not_found" in finding_ids(second), second.categories["spf"]
