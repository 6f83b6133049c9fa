"""Policy verdicts against the knot test world (issue 11, item 8): DMARC pct, BIMI needs an
enforcing DMARC policy, DKIM keys limited to SHA-1, and a null MX beside an SPF record that
authorises senders."""

import pytest

from domains.checks.base import Severity
from domains.dns import DnsSession
from domains.engine import check_domain

CATEGORIES = ["mx", "spf", "dmarc", "dkim", "tls_rpt", "bimi"]


@pytest.fixture
def check(knot):
    def run(domain, categories=CATEGORIES):
        session = DnsSession([(knot.host, knot.port)])
        return check_domain(domain, categories=categories, session=session)

    return run


def ids(result, category=None) -> list[str]:
    return sorted(f.id for f in result.findings if category in (None, f.category))


def only(result, kind_id):
    (found,) = [f for f in result.findings if f.id == kind_id]
    return found


# --- DMARC pct --------------------------------------------------------------------------------


@pytest.mark.parametrize(("domain", "value"), [("pctabc.test", "abc"), ("pct150.test", "150")])
def test_an_invalid_pct_is_a_syntax_error_not_a_partial_policy(check, domain, value):
    result = check(domain, ["dmarc"])
    assert ids(result) == ["dmarc.syntax_error"]
    finding = only(result, "dmarc.syntax_error")
    assert f"pct={value} is not a whole number from 0 to 100" in finding.detail
    assert result.categories["dmarc"].data["pct"] is None
    assert result.categories["dmarc"].data["enforced"] is False


def test_pct_under_p_none_is_not_a_finding(check):
    assert ids(check("pctnone.test", ["dmarc"])) == ["dmarc.policy_none"]


def test_pct_100_is_the_whole_mail(check):
    result = check("pct100.test", ["dmarc"])
    assert ids(result) == []
    assert result.categories["dmarc"].data["enforced"] is True


def test_a_partial_policy_weighs_by_what_the_rest_of_the_mail_gets(check):
    # RFC 7489 6.6.4: outside pct, reject becomes quarantine and quarantine becomes none.
    rejected = only(check("pct.test", ["dmarc"]), "dmarc.pct_partial")
    assert rejected.severity == Severity.LOW
    quarantined = only(check("pctquarantine.test", ["dmarc"]), "dmarc.pct_partial")
    assert quarantined.severity == Severity.MEDIUM
    assert "50% of forged mail is delivered as if p=none" in quarantined.detail


# --- BIMI needs DMARC enforcement -------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("dmarcnone.test", "the DMARC policy is p=none"),
        ("bimipct.test", "applies to only pct=99 of the mail"),
        ("pct.test", "applies to only pct=50 of the mail"),
        ("biminodmarc.test", "the domain has no valid DMARC record"),
        ("pctabc.test", "pct= is invalid"),
    ],
)
def test_bimi_without_an_enforcing_dmarc_policy(check, domain, why):
    result = check(domain, ["bimi"])
    assert ids(result, "bimi") == ["bimi.dmarc_not_enforced"]
    finding = only(result, "bimi.dmarc_not_enforced")
    assert why in finding.detail
    assert f"default._bimi.{domain}" in finding.detail


@pytest.mark.parametrize("domain", ["good.test", "bimiquarantine.test", "pct100.test"])
def test_bimi_with_an_enforcing_dmarc_policy(check, domain):
    assert ids(check(domain, ["bimi"]), "bimi") == []


def test_bimi_is_not_judged_without_a_record(check):
    assert ids(check("nobimi.test", ["bimi"]), "bimi") == ["bimi.missing"]


# --- DKIM keys restricted to SHA-1 ------------------------------------------------------------


def test_a_dkim_key_for_sha1_only_is_unusable(check):
    result = check("dkimsha1.test", ["dkim"])
    assert ids(result) == ["dkim.sha1_only"]
    finding = only(result, "dkim.sha1_only")
    assert "s1._domainkey.dkimsha1.test" in finding.detail
    assert "h=sha1: no sha256" in finding.detail
    assert "RFC 8301" in finding.remediation


def test_a_dkim_key_that_also_allows_sha256_is_fine(check):
    assert ids(check("dkimsha256.test", ["dkim"])) == []


# --- null MX with senders ---------------------------------------------------------------------


def test_a_null_mx_with_an_spf_record_that_authorises_senders_still_sends(check):
    result = check("nullmxsender.test")
    # It receives nothing (MTA-STS and TLS-RPT do not apply), but it sends: DKIM is judged.
    assert result.categories["dkim"].applicable
    assert result.categories["bimi"].applicable
    assert ids(result, "dkim") == ["dkim.no_selector_found"]
    assert not result.categories["tls_rpt"].applicable


def test_a_null_mx_with_spf_minus_all_sends_nothing(check):
    result = check("nullmx.test")
    assert not result.categories["dkim"].applicable
    assert not result.categories["bimi"].applicable
