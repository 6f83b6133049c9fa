"""Scores and grades: findings in, numbers out. Pure; the scheme is explained in docs/scoring.md."""

from dataclasses import dataclass

from domains.checks.base import CategoryResult, Severity, Status

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
