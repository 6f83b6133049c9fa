"""Scoring is pure: findings in, numbers out."""

from domains.checks.base import CategoryResult, Severity, Status
from domains.findings import CATALOGUE, finding
from domains.scoring import WEIGHTS, category_score, overall


def category(name, *kinds, applicable=True, status=Status.PASS, severity=None):
    result = CategoryResult(
        name, findings=[finding(k, "evidence", severity=severity) for k in kinds]
    )
    result.applicable = applicable
    result.status = status
    result.status, result.score = category_score(result)
    return result


def everything_fine(**replace):
    results = {name: category(name) for name in WEIGHTS}
    results.update(replace)
    return results


def test_weights_add_up_to_100():
    assert sum(WEIGHTS.values()) == 100


def test_category_score_and_status():
    assert (category("spf").status, category("spf").score) == (Status.PASS, 100)
    assert (category("spf", "spf.all_pass").status, category("spf", "spf.all_pass").score) == (
        Status.FAIL,
        0,
    )
    medium = category("dmarc", "dmarc.pct_partial", severity=Severity.MEDIUM)
    assert (medium.status, medium.score) == (Status.WARN, 75)
    info = category("dmarc", "dmarc.inherited")
    assert (info.status, info.score) == (Status.PASS, 100)
    assert category("dkim", applicable=False).score is None
    assert category("dkim", applicable=False).status == Status.INFO


def test_perfect_domain_with_reject_is_a_plus():
    assert overall(everything_fine(), dmarc_reject=True).grade == "A+"
    assert overall(everything_fine(), dmarc_reject=False).grade == "A"


def test_critical_findings_cap_the_grade_at_f():
    for kind in ("spf.all_pass", "spf.missing"):
        total = overall(everything_fine(spf=category("spf", kind)), dmarc_reject=True)
        assert total.grade == "F", kind
        assert total.score <= 39


def test_missing_dmarc_caps_at_d():
    total = overall(everything_fine(dmarc=category("dmarc", "dmarc.missing")), dmarc_reject=False)
    assert total.grade == "D"


def test_low_findings_cost_little():
    total = overall(
        everything_fine(tls_rpt=category("tls_rpt", "tls_rpt.missing")), dmarc_reject=True
    )
    assert total.grade == "A+"
    assert total.score == 100 - round(WEIGHTS["tls_rpt"] * 0.10)


def test_not_applicable_categories_do_not_count():
    results = everything_fine(
        dkim=category("dkim", applicable=False), bimi=category("bimi", applicable=False)
    )
    assert overall(results, dmarc_reject=True).score == 100


def test_untestable_categories_do_not_count_and_mark_the_run_incomplete():
    failed = category("spf", "dns.lookup_failed", status=Status.ERROR)
    total = overall(everything_fine(spf=failed), dmarc_reject=True)
    assert total.complete is False
    assert total.score == 100  # a failed lookup neither raises nor lowers the score
    nothing = {n: category(n, "dns.lookup_failed", status=Status.ERROR) for n in WEIGHTS}
    assert overall(nothing, dmarc_reject=False).grade == ""


def test_every_severity_is_known():
    assert {k.severity for k in CATALOGUE.values()} <= set(Severity)
