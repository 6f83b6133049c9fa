"""Severities follow what lets an attacker spoof the domain (issue 11, item 9): typical domains,
served by knot, score in the order a careful admin expects. The reasoning is in
docs/scoring.md; the pure rules are unit-tested at the end."""

import pytest

from domains.checks.base import CategoryResult, Severity, Status
from domains.dns import DnsSession
from domains.engine import DNS_CATEGORIES, check_domain
from domains.findings import finding
from domains.scoring import calibrate, category_score

# Every category: the order must hold for the whole score, DNSSEC and MTA-STS included.
TYPICAL = [
    "good.test",  # SPF -all, DMARC reject, DKIM 2048, TLS-RPT, BIMI
    "parkednull.test",  # null MX, SPF -all, DMARC reject: sends and receives nothing
    "parked.test",  # SPF -all and DMARC reject, with an MX: sends nothing
    "quarantine.test",  # SPF ~all with an include, DMARC quarantine, DKIM
    "nospfreject.test",  # no SPF, DMARC reject, DKIM
    "monitoring.test",  # SPF -all, DKIM, DMARC p=none
    "nodmarconly.test",  # SPF -all, DKIM, no DMARC
    "wideopen.test",  # DKIM only: no SPF, no DMARC
    "neutralnone.test",  # SPF ?all and DMARC p=none
    "plusallreject.test",  # SPF +all beside DMARC reject
    "providernov6.test",  # like good.test, MX at a provider without IPv6
    "ownnov6.test",  # like good.test, own MX without IPv6
]


@pytest.fixture
def runs(knot, settings):
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
    session = DnsSession([(knot.host, knot.port)])
    return {
        name: check_domain(name, categories=DNS_CATEGORIES, session=session) for name in TYPICAL
    }


def score(runs, name) -> int:
    assert runs[name].status == "complete", (name, runs[name].status)
    return runs[name].score


def test_every_typical_domain_was_fully_tested(runs):
    assert {name: run.status for name, run in runs.items()} == dict.fromkeys(TYPICAL, "complete")


def test_no_spf_under_an_enforcing_dmarc_scores_above_no_dmarc_at_all(runs):
    assert score(runs, "nospfreject.test") > score(runs, "nodmarconly.test")
    assert runs["nospfreject.test"].grade == "A"
    assert runs["nodmarconly.test"].grade == "D"
    (missing,) = [f for f in runs["nospfreject.test"].findings if f.id == "spf.missing"]
    assert missing.severity == Severity.MEDIUM
    assert "DMARC at _dmarc.nospfreject.test enforces p=reject on all mail" in missing.detail


def test_parked_domains_score_a(runs):
    for name in ("parkednull.test", "parked.test"):
        assert runs[name].grade.startswith("A"), (name, runs[name].grade)
        assert score(runs, name) >= score(runs, "quarantine.test")


def test_the_order_of_typical_domains(runs):
    assert runs["good.test"].grade == "A+"
    assert runs["quarantine.test"].grade == "A"  # A+ needs p=reject
    assert score(runs, "good.test") >= score(runs, "quarantine.test")
    assert score(runs, "quarantine.test") > score(runs, "nospfreject.test")
    assert score(runs, "nospfreject.test") > score(runs, "monitoring.test")
    # p=none lets forged mail through as no DMARC does: never better than a D.
    assert runs["monitoring.test"].grade == "D"
    assert score(runs, "monitoring.test") >= score(runs, "nodmarconly.test")
    assert score(runs, "nodmarconly.test") > score(runs, "wideopen.test")
    # Nothing asks receivers to refuse forged mail, or SPF passes it: F, however good the rest.
    for name in ("wideopen.test", "neutralnone.test", "plusallreject.test"):
        assert runs[name].grade == "F", name
        assert score(runs, name) < score(runs, "nodmarconly.test"), name


def test_plus_all_stays_critical_under_dmarc_reject(runs, knot):
    (plus,) = [f for f in runs["plusallreject.test"].findings if f.id == "spf.all_pass"]
    assert plus.severity == Severity.CRITICAL  # it passes forged mail through DMARC too
    # The same reached through an include, or written as ip4:0.0.0.0/0 (both beside p=reject).
    for name in ("inclpassall.test", "ip4all.test"):
        run = check_domain(
            name, categories=DNS_CATEGORIES, session=DnsSession([(knot.host, knot.port)])
        )
        severities = {f.severity for f in run.findings if f.id == "spf.all_pass"}
        assert severities == {Severity.CRITICAL}, name
        assert run.grade == "F", name


def test_a_provider_hosted_mx_without_ipv6_says_so_and_weighs_nothing(runs):
    provider, own = runs["providernov6.test"], runs["ownnov6.test"]
    (theirs,) = [f for f in provider.findings if f.id == "mx.no_ipv6"]
    (ours,) = [f for f in own.findings if f.id == "mx.no_ipv6"]
    assert theirs.severity == Severity.INFO
    assert "mx4.mailhost.test is run outside providernov6.test (by mailhost.test)" in theirs.detail
    assert "only that provider can add IPv6" in theirs.detail
    assert ours.severity == Severity.LOW
    assert "outside" not in ours.detail
    assert provider.categories["mx"].score == 100
    assert own.categories["mx"].score < 100
    assert score(runs, "providernov6.test") >= score(runs, "ownnov6.test")
    # TLSA records for the provider's host can only be published by the provider too.
    dane = [f for f in provider.findings if f.id == "dane.missing"]
    assert dane and all(f.severity == Severity.INFO for f in dane)
    assert all(f.severity == Severity.LOW for f in own.findings if f.id == "dane.missing")


# --- the rules, pure ------------------------------------------------------------------------


def scored(name, *findings, data=None):
    result = CategoryResult(name, findings=list(findings), data=data or {})
    result.status, result.score = category_score(result)
    return result


def enforcing(policy="reject", enforced=True):
    return scored("dmarc", data={"policy": policy, "enforced": enforced, "location": "x.example"})


@pytest.mark.parametrize(
    ("kind", "dmarc", "expected"),
    [
        ("spf.missing", enforcing(), Severity.MEDIUM),
        ("spf.missing", enforcing("quarantine"), Severity.MEDIUM),
        ("spf.missing", enforcing("quarantine", enforced=False), Severity.CRITICAL),  # pct<100
        ("spf.missing", enforcing("none", enforced=False), Severity.CRITICAL),
        ("spf.missing", None, Severity.CRITICAL),
        ("spf.neutral_all", enforcing(), Severity.MEDIUM),
        ("spf.too_many_lookups", enforcing(), Severity.MEDIUM),
        ("spf.too_many_lookups", None, Severity.HIGH),
        ("spf.all_pass", enforcing(), Severity.CRITICAL),
        ("spf.ptr_mechanism", enforcing(), Severity.LOW),  # never raised
    ],
)
def test_spf_severity_depends_on_dmarc_enforcement(kind, dmarc, expected):
    results = {"spf": scored("spf", finding(kind, "evidence"))}
    if dmarc:
        results["dmarc"] = dmarc
    calibrate(results, "x.example")
    assert results["spf"].findings[0].severity == expected
    assert results["spf"].score == category_score(results["spf"])[1]


def test_a_dmarc_that_could_not_be_tested_changes_nothing():
    dmarc = enforcing()
    dmarc.status = Status.ERROR
    results = {"spf": scored("spf", finding("spf.missing", "evidence")), "dmarc": dmarc}
    calibrate(results, "x.example")
    assert results["spf"].findings[0].severity == Severity.CRITICAL


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["mx1.provider.example", "mx2.provider.example"], Severity.INFO),
        (["mx.x.example"], Severity.LOW),
        (["mx.sub.x.example"], Severity.LOW),  # the same organisation
        (["mx.x.example", "mx.provider.example"], Severity.LOW),  # one is the domain's own
        (["aspmx.l.google.com"], Severity.INFO),
        (["mail.x.co.uk"], Severity.INFO),  # x.co.uk is another organisation than x.example
    ],
)
def test_provider_hosted_findings_weigh_nothing(hosts, expected):
    mx = [finding("mx.no_ipv6", "evidence"), finding("mx.ptr_mismatch", "evidence")]
    results = {
        "mx": scored("mx", *mx, data={"hosts": hosts}),
        "dnssec": scored("dnssec", finding("dnssec.mx_unsigned", "evidence")),
    }
    calibrate(results, "x.example")
    assert [f.severity for f in results["mx"].findings] == [expected, expected]
    assert results["dnssec"].findings[0].severity == expected
    assert (results["mx"].score == 100) == (expected == Severity.INFO)
