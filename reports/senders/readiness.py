"""Policy readiness: what one step stricter a DMARC policy would have done to a domain's mail
in a range, and whose mail that is. Pure: senders, the policy and the DNS check's facts in.

The ladder: p=none -> p=quarantine -> (pct=100) -> p=reject -> sp as strict as p. A step
affects the messages that failed DMARC (for pct=100: those that failed and were still
delivered). They are split into legitimate mail (from senders classified authorised, forwarded
or failing authorised: fix those first) and the rest (suspicious senders: the spoofing the step
is meant to stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.senders.classify import MOST, Classification

LADDER = ["none", "quarantine", "reject"]
# A step is advised when the legitimate mail it would affect is at most this share of all mail.
READY_SHARE = 0.01
LEGITIMATE = {
    Classification.AUTHORISED,
    Classification.FORWARDED,
    Classification.FAILING_AUTHORISED,
}


@dataclass(frozen=True)
class Policy:
    p: str = ""  # "" when no report in the range said
    sp: str = ""
    pct: int | None = None

    def __str__(self) -> str:
        if not self.p:
            return "unknown"
        text = f"p={self.p}"
        if self.sp and self.sp != self.p:
            text += f" sp={self.sp}"
        if self.pct is not None and self.pct != 100:
            text += f" pct={self.pct}"
        return text


@dataclass(frozen=True)
class Step:
    change: str  # "p=quarantine"
    verb: str  # what it does to failing mail: "quarantined" or "rejected"
    only_undisposed: bool = False  # pct=100: only failing mail that was delivered changes
    subdomains: bool = False  # sp: the reports do not tell subdomains' mail apart


def next_step(policy: Policy) -> Step | None:
    p = policy.p if policy.p in LADDER else "none"
    verb = {"none": "quarantined", "quarantine": "rejected", "reject": "rejected"}
    if p == "none":
        return Step("p=quarantine", verb["none"])
    if policy.pct is not None and policy.pct < 100:
        return Step(f"pct=100 (p={p})", "quarantined" if p == "quarantine" else "rejected", True)
    if p == "quarantine":
        return Step("p=reject", verb["quarantine"])
    sp = policy.sp if policy.sp in LADDER else p
    if LADDER.index(sp) < LADDER.index(p):
        return Step(f"sp={p}", "rejected", subdomains=True)
    return None


@dataclass(frozen=True)
class DnsFacts:
    """What the domain's latest DNS check found, for linking causes to it."""

    spf_record: str = ""
    dkim_keys: frozenset[str] = frozenset()  # selectors with a published key
    reported_selectors: tuple[str, ...] = ()  # selectors the reports saw signing
    findings: dict = field(default_factory=dict)  # finding id -> Finding pk (latest run)
    checked: bool = False  # a run exists

    def first_finding(self, prefix: str) -> tuple[str, int] | None:
        for kind, pk in sorted(self.findings.items()):
            if kind.startswith(prefix):
                return kind, pk
        return None


@dataclass(frozen=True)
class Cause:
    text: str
    finding: str = ""  # the finding id it links to, if any
    finding_pk: int | None = None


@dataclass
class FailingSender:
    label: str
    messages: int  # the sender's messages the step would affect
    causes: list[Cause]


@dataclass
class Readiness:
    policy: Policy
    step: Step | None
    messages: int  # all messages in the range
    dmarc_pass: int
    affected: int
    legitimate: int  # of `affected`: from senders classified legitimate
    spoofing: int  # of `affected`: the rest
    failing_authorised: list[FailingSender]
    unmarked_failing: int  # of `spoofing`: from senders nobody marked
    recommendation: str

    @property
    def share(self) -> float | None:
        return 100.0 * self.affected / self.messages if self.messages else None

    @property
    def pass_rate(self) -> float | None:
        return 100.0 * self.dmarc_pass / self.messages if self.messages else None

    def as_json(self) -> dict:
        return {
            "policy": str(self.policy),
            "next_step": self.step.change if self.step else None,
            "messages": self.messages,
            "affected": self.affected,
            "share": round(self.share, 2) if self.share is not None else None,
            "legitimate": self.legitimate,
            "spoofing": self.spoofing,
            "failing_authorised": [
                {"sender": f.label, "messages": f.messages, "causes": [c.text for c in f.causes]}
                for f in self.failing_authorised
            ],
            "recommendation": self.recommendation,
        }


def _failing(sender, step: Step | None) -> int:
    failing = sender.messages - sender.dmarc_pass
    if step is not None and step.only_undisposed:
        failing -= sender.quarantined + sender.rejected
    return max(0, failing)


def causes(sender, facts: DnsFacts) -> list[Cause]:
    """Why a sender's mail fails DMARC, linked to the DNS check's findings where one says more."""
    found = []
    if not sender.dkim_aligned * 1.0 > MOST * sender.messages:
        unprobed = [s for s in facts.reported_selectors if s not in facts.dkim_keys]
        dkim = facts.first_finding("dkim.")
        text = "DKIM not aligned: not signed with your domain"
        if unprobed and facts.checked:
            text += f" (selector {', '.join(unprobed[:3])} seen in reports, no key found for it)"
        found.append(Cause(text, *(dkim or ("", None))))
    if not sender.spf_aligned * 1.0 > MOST * sender.messages:
        spf = facts.first_finding("spf.")
        bases = sorted(sender.base_domains)
        missing = facts.spf_record and bases and not any(b in facts.spf_record for b in bases)
        if missing:
            text = f"SPF include missing: your SPF record does not name {bases[0]}"
        else:
            text = "SPF not aligned: the envelope sender (Return-Path) is not your domain"
        found.append(Cause(text, *(spf or ("", None))))
    return found


def assess(senders, policy: Policy, facts: DnsFacts) -> Readiness:
    step = next_step(policy)
    messages = sum(s.messages for s in senders)
    passed = sum(s.dmarc_pass for s in senders)
    legitimate = spoofing = unmarked = 0
    failing_authorised = []
    for sender in senders:
        affected = _failing(sender, step)
        if sender.classification in LEGITIMATE:
            legitimate += affected
        else:
            spoofing += affected
            unmarked += affected if sender.mark is None else 0
        if sender.classification == Classification.FAILING_AUTHORISED:
            failing_authorised.append(FailingSender(sender.label, affected, causes(sender, facts)))
    readiness = Readiness(
        policy, step, messages, passed, legitimate + spoofing, legitimate, spoofing,
        failing_authorised, unmarked, "",
    )  # fmt: skip
    readiness.recommendation = recommend(readiness)
    return readiness


def _sender_list(failing: list[FailingSender]) -> str:
    parts = []
    for sender in failing[:3]:
        why = "; ".join(c.text.split(":")[0] for c in sender.causes) or "failing"
        parts.append(f"{sender.label} ({why})")
    more = len(failing) - 3
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def recommend(r: Readiness) -> str:
    if not r.messages:
        return (
            "No DMARC aggregate reports in this range: nothing to judge yet. Reports go to the "
            "rua= address of the domain's DMARC record."
        )
    if r.step is None:
        return "Nothing stricter to move to: p=reject for the domain and its subdomains, pct=100."
    rate = f"{r.pass_rate:.1f}% of your mail passes DMARC"
    if r.legitimate > READY_SHARE * r.messages:
        share = 100.0 * r.legitimate / r.messages
        text = (
            f"Not yet: {r.legitimate} messages ({share:.1f}%) from your own senders would be "
            f"{r.step.verb}."
        )
        if r.failing_authorised:
            text += f" Fix {_sender_list(r.failing_authorised)} first"
            return text + f", then move to {r.step.change}."
        return text + f" See which of their mail fails before moving to {r.step.change}."
    text = f"Move to {r.step.change}: {rate}"
    if len(r.failing_authorised) == 1:
        only = r.failing_authorised[0]
        why = "; ".join(c.text for c in only.causes) or "its mail fails DMARC"
        text += f"; the only failing authorised sender is {only.label} ({why}): fix it first"
    elif r.failing_authorised:
        text += f"; fix the failing authorised senders first: {_sender_list(r.failing_authorised)}"
    if r.unmarked_failing:
        text += (
            f". {r.unmarked_failing} failing messages come from senders nobody marked: "
            "mark those that are yours"
        )
    if r.step.subdomains:
        text += " (the reports do not tell subdomains' mail apart: this is at most what changes)"
    return text + "."
