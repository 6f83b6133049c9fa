"""The whole SPF tree against real DNS (knot, dns_world.spf_tree_cases): what an include: or a
redirect= lets through, and every permerror below the domain's own record, each with the path
that leads to it."""

import pytest

from domains.checks.base import Status
from domains.dns import DnsSession
from domains.engine import check_domain
from tests.domains import dns_world
from tests.knot import KnotServer


@pytest.fixture
def spf(knot):
    def run(domain):
        session = DnsSession([(knot.host, knot.port)])
        result = check_domain(domain, categories=["spf"], session=session)
        return result.categories["spf"], session

    return run


def findings(category) -> list[tuple[str, str]]:
    return [(f.id, f.detail) for f in category.findings]


@pytest.mark.parametrize(
    ("domain", "kind", "detail"),
    [
        (
            "inclpassall.test",
            "spf.all_pass",
            "every host passes: inclpassall.test -> include:passall.spftree.test -> +all "
            '("v=spf1 +all")',
        ),
        (
            "redirpassall.test",
            "spf.all_pass",
            "every host passes: redirpassall.test -> redirect=passall.spftree.test -> +all "
            '("v=spf1 +all")',
        ),
        (
            "inclwide.test",
            "spf.all_pass",
            "every IPv4 host passes: inclwide.test -> include:wide.spftree.test -> "
            'ip4:0.0.0.0/0 ("v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all"); every IPv6 host passes: '
            'inclwide.test -> include:wide.spftree.test -> ip6:::/0 ("v=spf1 ip4:0.0.0.0/0 '
            'ip6:::/0 -all")',
        ),
        (
            "existsall.test",  # a fixed name that exists matches every sender
            "spf.all_pass",
            "every host passes: existsall.test -> exists:mx.mailhost.test "
            '("v=spf1 exists:mx.mailhost.test -all")',
        ),
        (
            "ip4all.test",
            "spf.all_pass",
            'every IPv4 host passes: ip4all.test -> ip4:0.0.0.0/0 ("v=spf1 mx ip4:0.0.0.0/0 -all")',
        ),
        (
            "redirneutral.test",
            "spf.neutral_all",
            "every host gets neutral: redirneutral.test -> redirect=neutral.spftree.test -> ?all "
            '("v=spf1 ip4:192.0.2.1 ?all")',
        ),
        (
            "redirnoall.test",
            "spf.no_all",
            "every host gets neutral: redirnoall.test -> redirect=noall.spftree.test "
            '("v=spf1 ip4:192.0.2.1") ends with neither all nor redirect',
        ),
        (
            "redirloop.test",
            "spf.include_loop",
            "redirloop.test -> redirect=loop.spftree.test -> redirect=loop2.spftree.test -> "
            "redirect=redirloop.test (already evaluated above)",
        ),
        (
            "inclloop.test",
            "spf.include_loop",
            "inclloop.test -> include:inclloop.spftree.test -> include:inclloop.test "
            "(already evaluated above)",
        ),
        (
            "incltwo.test",  # several records below: "multiple", not "no record"
            "spf.multiple_records",
            "incltwo.test -> include:two.spftree.test: two.spftree.test has "
            "v=spf1 ip4:192.0.2.5 -all | v=spf1 ip4:192.0.2.6 -all",
        ),
        (
            "inclnxdomain.test",
            "spf.include_not_found",
            "inclnxdomain.test -> include:nothere.spftree.test: nothere.spftree.test has no SPF "
            "record",
        ),
        (
            "redirmissing.test",
            "spf.redirect_not_found",
            "redirmissing.test -> redirect=nospf.test: nospf.test has no SPF record",
        ),
        (
            "inclsyntax.test",  # mailsec's grammar also judges what is included
            "spf.syntax_error",
            'inclsyntax.test -> include:syntax.spftree.test: "v=spf1 ip4:192.0.2.300 -all": '
            '"ip4:192.0.2.300": needs a dotted-quad IPv4 address, e.g. ip4:192.0.2.0/24',
        ),
        (
            "deepptr.test",
            "spf.ptr_mechanism",
            "deepptr.test -> include:ptr1.spftree.test -> include:ptr2.spftree.test -> "
            "ptr:mailhost.test",
        ),
        (
            "nestedlookups.test",  # 2 at the top, 9 below
            "spf.too_many_lookups",
            "11 DNS-querying terms (at most 10); receivers give up at the 11th: "
            "nestedlookups.test -> include:n2.spftree.test -> mx",
        ),
        (
            "nestedvoid.test",
            "spf.too_many_void_lookups",
            "3 void lookups for IPv4 and IPv6 senders (at most 2): nestedvoid.test -> "
            "include:void.spftree.test -> a:v1.spfparts.test (A v1.spfparts.test: none); "
            "nestedvoid.test -> include:void.spftree.test -> a:v2.spfparts.test "
            "(A v2.spfparts.test: none); nestedvoid.test -> a:v3.spfparts.test "
            "(A v3.spfparts.test: none)",
        ),
        (
            "manymx.test",
            "spf.too_many_mx",
            "manymx.test -> mx:manymx.spftree.test: manymx.spftree.test has 11 MX records "
            "(at most 10)",
        ),
    ],
)
def test_the_tree_is_judged_with_its_path(spf, domain, kind, detail):
    category, _ = spf(domain)
    # The evidence is a sentence: it ends with a full stop (issue 14).
    assert findings(category) == [(kind, detail + ".")]
    assert category.status in (Status.FAIL, Status.WARN)  # judged, not "could not test"


@pytest.mark.parametrize(
    ("domain", "detail"),
    [
        ("wordafterall.test", 'wordafterall.test: "v=spf1 mx -all moo": "moo": unknown mechanism'),
        (
            "badmacro.test",
            'badmacro.test: "v=spf1 mx -all foo=%abc": "foo=%abc": "%" must start %{...}, %%, '
            "%_ or %-",
        ),
    ],
)
def test_the_domains_own_record_is_read_by_the_strict_grammar(spf, domain, detail):
    category, _ = spf(domain)
    ((kind, text),) = findings(category)
    assert (kind, category.status) == ("spf.syntax_error", Status.FAIL)
    assert text.startswith(detail)


@pytest.mark.parametrize(
    "domain",
    [
        # An include's ?all or -all only means "no match here": evaluation goes on to -all.
        "inclneutral.test",
        # The version tag and the names are case-insensitive (RFC 5234 2.3).
        "inclcase.test",
        "redirect.test",
    ],
)
def test_what_the_tree_keeps_out_is_accepted(spf, domain):
    category, _ = spf(domain)
    assert findings(category) == []
    assert (category.status, category.data["default"]) == (
        Status.PASS,
        {"IPv4": "fail", "IPv6": "fail"},
    )


def test_void_lookups_of_ipv6_senders_only_weigh_less(spf):
    category, _ = spf("v6void.test")
    (void,) = category.findings
    assert (void.id, void.severity, category.status) == (
        "spf.too_many_void_lookups",
        "medium",
        Status.WARN,
    )
    assert void.detail.startswith(
        "3 void lookups for IPv6 senders (at most 2): v6void.test -> a:mx4.mailhost.test "
        "(AAAA mx4.mailhost.test: none); "
    )
    both, _ = spf("nestedvoid.test")
    assert both.findings[0].severity == "high"


def test_the_facts_other_checks_read(spf):
    category, _ = spf("nestedlookups.test")
    assert {k: category.data[k] for k in ("all", "redirect", "only_fail_all")} == {
        "all": "fail",
        "redirect": None,
        "only_fail_all": False,
    }
    assert (category.data["dns_lookups"], category.data["void_lookups"]) == (11, 1)
    parked, _ = spf("parked.test")
    assert (parked.data["only_fail_all"], parked.data["authorises_senders"]) == (True, False)
    redirected, _ = spf("redirect.test")
    assert (redirected.data["redirect"], redirected.data["dns_lookups"]) == ("good.test", 2)


def test_a_failed_lookup_below_voids_only_the_tree_beyond_it(spf):
    category, _ = spf("inclbroken.test")  # include:broken.test, whose zone answers SERVFAIL
    assert category.status == Status.PASS  # the record itself was read and is fine
    (failure,) = category.findings
    assert failure.id == "dns.partial_lookup_failed"
    assert "TXT broken.test" in failure.detail
    assert "SPF beyond inclbroken.test -> include:broken.test not evaluated" in failure.detail


def test_the_retired_spf_type_is_never_asked(spf):
    """RFC 7208 3.1: SPF records are TXT only; asking for type 99 only adds lookups that can
    fail."""
    _, session = spf("deepptr.test")
    asked = {rdtype for _, rdtype, _ in session._mine}
    assert "SPF" not in asked
    assert "TXT" in asked


# --- nothing outlives a run: an include target changed between two checks ---------------


def include_world(target_record: str | None) -> dict:
    zone = dns_world.SOA + "ns A 127.0.0.1\n"
    zone += dns_world.spf("includer.test", "v=spf1 include:target.includer.test -all") + "\n"
    if target_record:
        zone += dns_world.spf("target.includer.test", target_record) + "\n"
    return {"test": zone}


@pytest.fixture(scope="module")
def include_before_and_after(tmp_path_factory):
    before = KnotServer(tmp_path_factory.mktemp("incl-before"), include_world("v=spf1 -all"))
    after = KnotServer(tmp_path_factory.mktemp("incl-after"), include_world(None))
    before.start()
    after.start()
    yield before, after
    before.stop()
    after.stop()


def test_a_changed_include_target_is_seen_by_the_next_run(include_before_and_after):
    """Two runs in one process, as in a long-lived worker: the second asks DNS again (old
    checkdmarc answers were kept for 30 minutes per process, whatever the resolver)."""
    before, after = include_before_and_after
    for server, expected in ((before, []), (after, ["spf.include_not_found"]), (before, [])):
        session = DnsSession([(server.host, server.port)])
        result = check_domain("includer.test", categories=["spf"], session=session)
        assert [f.id for f in result.findings] == expected
