"""Policy readiness: what one step stricter a DMARC policy would have done to a domain's mail
in a range, and whose mail that is. Pure: senders, the policy and the DNS check's facts in.

The ladder: p=none -> p=quarantine -> (pct=100) -> p=reject -> sp as strict as p. A step
affects the messages that failed DMARC (for pct=100: those that failed and were still
delivered). They are split into legitimate mail (from senders classified authorised, forwarded
or failing authorised: fix those first) and the rest (suspicious senders: the spoofing the step
is meant to stop).

What the page says is in the reader's language (Readiness.advice, Cause.shown); what the command
line and the JSON say stays English (Readiness.recommendation, Cause.text): the same sentences,
from the same templates, under English.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailsec.templatetags.localized import number, percent
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
    kind: str  # "dkim", "spf_include" or "spf"
    finding: str = ""  # the finding id it links to, if any
    finding_pk: int | None = None
    selectors: tuple[str, ...] = ()  # dkim: selectors seen in reports with no key found
    base: str = ""  # spf_include: the sender's base domain the SPF record does not name

    @property
    def title(self) -> str:
        """The cause in a few words, in the reader's language."""
        if self.kind == "dkim":
            return _("DKIM not aligned")
        if self.kind == "spf_include":
            return _("SPF include missing")
        return _("SPF not aligned")

    @property
    def shown(self) -> str:
        """The cause in a sentence, in the reader's language."""
        if self.kind == "dkim" and self.selectors:
            return _(
                "DKIM not aligned: not signed with your domain (selector %(selectors)s seen in "
                "reports, no key found for it)"
            ) % {"selectors": ", ".join(self.selectors)}
        if self.kind == "dkim":
            return _("DKIM not aligned: not signed with your domain")
        if self.kind == "spf_include":
            return _("SPF include missing: your SPF record does not name %(domain)s") % {
                "domain": self.base
            }
        return _("SPF not aligned: the envelope sender (Return-Path) is not your domain")

    @property
    def text(self) -> str:
        """The sentence in English: the command line and the JSON."""
        with translation.override("en"):
            return self.shown


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
    recommendation: str  # in English: the command line and the JSON

    @property
    def advice(self) -> str:
        """The recommendation in the reader's language: the page."""
        return recommend(self)

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
        dkim = facts.first_finding("dkim.") or ("", None)
        selectors = tuple(unprobed[:3]) if facts.checked else ()
        found.append(Cause("dkim", *dkim, selectors=selectors))
    if not sender.spf_aligned * 1.0 > MOST * sender.messages:
        spf = facts.first_finding("spf.") or ("", None)
        bases = sorted(sender.base_domains)
        missing = facts.spf_record and bases and not any(b in facts.spf_record for b in bases)
        if missing:
            found.append(Cause("spf_include", *spf, base=bases[0]))
        else:
            found.append(Cause("spf", *spf))
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
    with translation.override("en"):
        readiness.recommendation = recommend(readiness)
    return readiness


def _sender_list(failing: list[FailingSender]) -> str:
    parts = []
    for sender in failing[:3]:
        why = "; ".join(c.title for c in sender.causes) or _("failing")
        parts.append(_("%(sender)s (%(why)s)") % {"sender": sender.label, "why": why})
    listed, more = ", ".join(parts), len(failing) - 3
    if more <= 0:
        return listed
    return ngettext("%(senders)s and %(count)s more", "%(senders)s and %(count)s more", more) % {
        "senders": listed,
        "count": number(more),
    }


def recommend(r: Readiness) -> str:
    """The advice in whole sentences of the active language."""
    if not r.messages:
        return _(
            "No DMARC aggregate reports in this range: nothing to judge yet. Reports go to the "
            "rua= address of the domain's DMARC record."
        )
    if r.step is None:
        return _(
            "Nothing stricter to move to: p=reject for the domain and its subdomains, pct=100."
        )
    if r.legitimate > READY_SHARE * r.messages:
        return " ".join(_not_yet(r))
    return " ".join(_move(r))


def _not_yet(r: Readiness) -> list[str]:
    values = {
        "count": number(r.legitimate),
        "share": percent(100.0 * r.legitimate / r.messages),
        "step": r.step.change,
    }
    if r.step.verb == "quarantined":
        first = ngettext(
            "Not yet: %(count)s message (%(share)s) from your own senders would be quarantined.",
            "Not yet: %(count)s messages (%(share)s) from your own senders would be quarantined.",
            r.legitimate,
        )
    else:
        first = ngettext(
            "Not yet: %(count)s message (%(share)s) from your own senders would be rejected.",
            "Not yet: %(count)s messages (%(share)s) from your own senders would be rejected.",
            r.legitimate,
        )
    if r.failing_authorised:
        then = _("Fix %(senders)s first, then move to %(step)s.")
        values["senders"] = _sender_list(r.failing_authorised)
    else:
        then = _("See which of their mail fails before moving to %(step)s.")
    return [first % values, then % values]


def _move(r: Readiness) -> list[str]:
    values = {"step": r.step.change, "rate": percent(r.pass_rate)}
    if len(r.failing_authorised) == 1:
        only = r.failing_authorised[0]
        values["sender"] = only.label
        values["why"] = "; ".join(c.shown for c in only.causes) or _("its mail fails DMARC")
        first = _(
            "Move to %(step)s: %(rate)s of your mail passes DMARC; the only failing authorised "
            "sender is %(sender)s (%(why)s): fix it first."
        )
    elif r.failing_authorised:
        values["senders"] = _sender_list(r.failing_authorised)
        first = _(
            "Move to %(step)s: %(rate)s of your mail passes DMARC; fix the failing authorised "
            "senders first: %(senders)s."
        )
    else:
        first = _("Move to %(step)s: %(rate)s of your mail passes DMARC.")
    sentences = [first % values]
    if r.unmarked_failing:
        sentences.append(
            ngettext(
                "%(count)s failing message comes from senders nobody marked: mark those that "
                "are yours.",
                "%(count)s failing messages come from senders nobody marked: mark those that "
                "are yours.",
                r.unmarked_failing,
            )
            % {"count": number(r.unmarked_failing)}
        )
    if r.step.subdomains:
        sentences.append(
            _("The reports do not tell subdomains' mail apart: this is at most what changes.")
        )
    return sentences
