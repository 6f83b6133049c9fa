"""Scores and grades: findings in, numbers out. Pure; the scheme is explained in docs/scoring.md."""

from dataclasses import dataclass

from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Finding, Severity, Status
from domains.checks.mx import is_ip_literal
from domains.findings import add_note
from domains.messages import Message, msg
from domains.names import org_domain

# What each category weighs in the domain's score (they add up to 100).
WEIGHTS = {
    "spf": 20,
    "dmarc": 25,
    "dkim": 12,
    "mx": 6,
    "dnssec": 8,
    "mta_sts": 6,
    "tls_rpt": 3,
    "dane": 5,
    "bimi": 2,
    # What the servers do (protocol probes); see docs/scoring.md.
    "smtp": 7,
    "submission": 2,
    "imap": 2,
    "pop3": 2,
}
# What one finding takes off its category's 100 points.
PENALTY = {
    Severity.CRITICAL: 100,
    Severity.HIGH: 50,
    Severity.MEDIUM: 25,
    Severity.LOW: 10,
    Severity.INFO: 0,
}
# The most a domain can score while it has a finding of this severity: a domain anyone can
# spoof, or whose mail cannot be delivered, never looks good on average.
CAP = {Severity.CRITICAL: 39, Severity.HIGH: 69}
GRADES = [(90, "A"), (80, "B"), (70, "C"), (55, "D"), (0, "F")]
A_PLUS_MIN_SCORE = 95
# SPF findings that let forged mail pass SPF, and with it aligned DMARC: no DMARC policy helps.
SPF_PASSES_FORGERIES = {"spf.all_pass"}
# What a finding about the MX hosts becomes when another organisation runs them all: the
# note added to its evidence, for one host and for several (whole sentences, to translate).
PROVIDER_HOSTED = {
    "mx.no_ipv6": (
        gettext_noop(
            "The MX host %(hosts)s is run outside %(org)s (by %(providers)s): only that "
            "provider can add IPv6, so this weighs nothing in the score."
        ),
        gettext_noop(
            "The MX hosts %(hosts)s are run outside %(org)s (by %(providers)s): only that "
            "provider can add IPv6, so this weighs nothing in the score."
        ),
    ),
    "mx.ptr_mismatch": (
        gettext_noop(
            "The MX host %(hosts)s is run outside %(org)s (by %(providers)s): only that "
            "provider can set the reverse DNS of its addresses, so this weighs nothing in the "
            "score."
        ),
        gettext_noop(
            "The MX hosts %(hosts)s are run outside %(org)s (by %(providers)s): only that "
            "provider can set the reverse DNS of its addresses, so this weighs nothing in the "
            "score."
        ),
    ),
    "dnssec.mx_unsigned": (
        gettext_noop(
            "The MX host %(hosts)s is run outside %(org)s (by %(providers)s): only that "
            "provider can sign the hosts' zone with DNSSEC, so this weighs nothing in the score."
        ),
        gettext_noop(
            "The MX hosts %(hosts)s are run outside %(org)s (by %(providers)s): only that "
            "provider can sign the hosts' zone with DNSSEC, so this weighs nothing in the score."
        ),
    ),
    "dane.missing": (
        gettext_noop(
            "The MX host %(hosts)s is run outside %(org)s (by %(providers)s): only that "
            "provider can publish TLSA records in the hosts' zone, so this weighs nothing in "
            "the score."
        ),
        gettext_noop(
            "The MX hosts %(hosts)s are run outside %(org)s (by %(providers)s): only that "
            "provider can publish TLSA records in the hosts' zone, so this weighs nothing in "
            "the score."
        ),
    ),
}


def calibrate(results: dict[str, CategoryResult], domain: str) -> None:
    """Severity in context (docs/scoring.md): findings whose weight depends on another
    category's verdict, or on who runs the MX hosts, get it here, with the reason in their
    detail; the categories they belong to are scored again."""
    changed = set()
    dmarc = results.get("dmarc")
    if dmarc and dmarc.status != Status.ERROR and dmarc.data.get("enforced"):
        # Forged mail fails DMARC whatever SPF says unless SPF passes it: an SPF record that is
        # missing, broken or neutral then costs deliverability and the envelope, not the From.
        where = dmarc.data.get("location") or domain
        note = msg(
            gettext_noop(
                "DMARC at _dmarc.%(where)s enforces p=%(policy)s on all mail, so receivers "
                "still refuse mail forged in the domain's name: weighs medium."
            ),
            where=where,
            policy=dmarc.data["policy"],
        )
        for f in _findings(results, "spf"):
            if f.id not in SPF_PASSES_FORGERIES and f.severity.rank < Severity.MEDIUM.rank:
                changed |= _reweigh(f, Severity.MEDIUM, note)
    outside = _provider_hosts(results, domain)
    for f in [f for name in ("mx", "dnssec", "dane") for f in _findings(results, name)]:
        if f.id in PROVIDER_HOSTED and outside:
            one, several = PROVIDER_HOSTED[f.id]
            note = msg(
                one if len(outside) == 1 else several,
                hosts=outside,
                org=org_domain(domain),
                providers=sorted({org_domain(h) for h in outside}),
            )
            changed |= _reweigh(f, Severity.INFO, note)
    for name in changed:
        results[name].status, results[name].score = category_score(results[name])


def _findings(results: dict[str, CategoryResult], name: str) -> list[Finding]:
    result = results.get(name)
    return result.findings if result and result.status != Status.ERROR else []


def _reweigh(f: Finding, severity: Severity, note: Message) -> set[str]:
    f.severity = severity
    add_note(f, note)
    return {f.category}


def _provider_hosts(results: dict[str, CategoryResult], domain: str) -> list[str]:
    """The MX host names when every one of them lies outside the domain's organisational
    domain (a mail provider's); [] when any is the domain's own, or there are none."""
    mx = results.get("mx")
    hosts = [h for h in (mx.data.get("hosts", []) if mx else []) if not is_ip_literal(h)]
    own = org_domain(domain)
    if not hosts or any(org_domain(h) == own for h in hosts):
        return []
    return hosts


def category_score(result: CategoryResult) -> tuple[Status, int | None]:
    """The category's status and 0-100 score from its findings."""
    if result.status == Status.ERROR:
        return Status.ERROR, None
    if not result.applicable:
        return Status.INFO, None
    score = max(0, 100 - sum(PENALTY[f.severity] for f in result.findings))
    worst = min((f.severity.rank for f in result.findings), default=Severity.INFO.rank)
    if worst <= Severity.HIGH.rank:
        status = Status.FAIL
    elif worst <= Severity.LOW.rank:
        status = Status.WARN
    else:
        status = Status.PASS
    return status, score


@dataclass
class Overall:
    score: int | None
    grade: str  # "" when nothing could be judged
    complete: bool  # False when some category could not be tested


def overall(results: dict[str, CategoryResult], *, dmarc_reject: bool) -> Overall:
    scored = {n: r for n, r in results.items() if r.score is not None and n in WEIGHTS}
    complete = all(r.status != Status.ERROR for r in results.values())
    if not scored:
        return Overall(None, "", complete)
    weight = sum(WEIGHTS[n] for n in scored)
    score = round(sum(WEIGHTS[n] * r.score for n, r in scored.items()) / weight)
    # Findings of a category that could not be tested judge nothing.
    severities = {
        f.severity for r in results.values() if r.status != Status.ERROR for f in r.findings
    }
    for severity, cap in CAP.items():
        if severity in severities:
            score = min(score, cap)
    grade = next(letter for floor, letter in GRADES if score >= floor)
    no_worse_than_low = not severities & {Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM}
    if grade == "A" and score >= A_PLUS_MIN_SCORE and no_worse_than_low and dmarc_reject:
        grade = "A+"
    return Overall(score, grade, complete)
