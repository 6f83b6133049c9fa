"""SPF (RFC 7208), judged by mailsec itself: a strict grammar (spf_syntax) and a walk of the
whole tree of includes and redirects (spf_tree), every lookup through the run's DNS session.

Only TXT records are read: RFC 7208 3.1 retired the SPF RR type (99), so it is never asked for
and its lookups cannot fail a run. The domain's own TXT lookup is the core of the category;
a failed lookup deeper in the tree voids only the verdict that needed it.
"""

from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, Severity, register
from domains.checks.spf_syntax import Record, is_spf_record, parse
from domains.checks.spf_tree import FAMILIES, Tree, walk
from domains.dns import LookupFailed
from domains.findings import finding
from domains.messages import msg

# Over this many bytes an answer risks truncation and a TCP retry (RFC 7208 3.4 advises
# keeping SPF answers within 512 bytes).
LONG_RECORD = 450


def spf_records(texts: list[str]) -> list[str]:
    return [t for t in texts if is_spf_record(t)]


@register
class SpfCheck(Check):
    name = "spf"

    def prefetch(self, ctx: Context):
        return [(ctx.domain, "TXT")]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        records = spf_records(ctx.dns.lookup(ctx.domain, "TXT").texts)
        result.records = {"TXT": records}
        domain = ctx.domain
        if not records:
            result.findings.append(
                finding(
                    "spf.missing",
                    msg(gettext_noop("No v=spf1 TXT record at %(name)s."), name=domain),
                    domain=domain,
                )
            )
            return result
        if len(records) > 1:
            listed = " | ".join(records)
            result.findings.append(finding("spf.multiple_records", listed, domain=domain))
            return result
        text = records[0]
        if len(text.encode()) > LONG_RECORD:
            detail = msg(
                gettext_noop("The record is %(size)s bytes long."), size=len(text.encode())
            )
            result.findings.append(finding("spf.record_too_long", detail, domain=domain))
        record = parse(text)
        result.data = _facts(record)
        if record.errors:
            detail = msg(
                gettext_noop('%(name)s: "%(record)s": %(errors)s'),
                name=domain,
                record=text,
                errors=[e.translatable() for e in record.errors],
            )
            result.findings.append(finding("spf.syntax_error", detail, domain=domain))
            return result
        tree = walk(domain, record, _fetcher(ctx), lambda q: ctx.dns.prefetch(*q))
        result.data |= {
            "dns_lookups": len(tree.lookups),
            "void_lookups": max(len(v) for v in tree.void.values()),
            "authorises_senders": tree.authorises,
            "default": {family: tree.outcome[family].result for family in FAMILIES},
        }
        result.findings += [
            finding(
                i.kind,
                i.message or i.detail,
                domain=domain,
                severity=Severity(i.severity) if i.severity else None,
            )
            for i in tree.issues
        ]
        result.findings += _verdicts(tree, domain)
        if tree.ptr:
            detail = "; ".join(tree.ptr)
            result.findings.append(finding("spf.ptr_mechanism", detail, domain=domain))
        return result


def _fetcher(ctx: Context):
    """Lookups below the domain's own record: a failure voids what needed it, not SPF."""

    def fetch(name: str, rdtype: str, voids: str):
        # Inside the optional scope a failure is noted as voiding `voids` only; it is returned
        # (not raised) so the walk marks that branch a temperror and goes on with the rest.
        with ctx.dns.optional(voids):
            try:
                return ctx.dns.lookup(name, rdtype)
            except LookupFailed as failed:
                return failed

    return fetch


def _facts(record: Record) -> dict:
    """What other checks read: the record's own `all` and redirect, and whether it is a bare
    `-all` (a domain that sends no mail)."""
    all_term, redirect = record.all, record.modifier("redirect")
    return {
        "all": all_term.result if all_term else None,
        "redirect": redirect.domain_spec if redirect else None,
        # `-all` first: whatever follows it is never evaluated (RFC 7208 4.6.2).
        "only_fail_all": bool(all_term)
        and all_term.result == "fail"
        and record.evaluated == [all_term],
        "dns_lookups": 0,
        "void_lookups": 0,
        "authorises_senders": any(t.result == "pass" for t in record.evaluated),
    }


def _verdicts(tree: Tree, domain: str) -> list:
    """What a sender the domain lists nowhere gets, by the path that decides it: one finding
    per kind, naming each family when IPv4 and IPv6 senders reach different terms."""
    details: dict[str, list] = {}
    for family in FAMILIES:
        outcome = tree.outcome[family]
        same = [f for f in FAMILIES if tree.outcome[f] == outcome]
        if same[0] != family:
            continue  # said with the first family
        every = len(same) == len(FAMILIES)
        where = f'{outcome.trail} ("{outcome.record}")'
        if outcome.result == "pass":
            kind = "spf.all_pass"
            text = (
                gettext_noop("every host passes: %(where)s")
                if every
                else gettext_noop("every %(family)s host passes: %(where)s")
            )
        elif outcome.result == "neutral" and outcome.implicit:
            kind = "spf.no_all"
            text = (
                gettext_noop(
                    "every host gets neutral: %(where)s ends with neither all nor redirect"
                )
                if every
                else gettext_noop(
                    "every %(family)s host gets neutral: %(where)s ends with neither all nor "
                    "redirect"
                )
            )
        elif outcome.result == "neutral":
            kind = "spf.neutral_all"
            text = (
                gettext_noop("every host gets neutral: %(where)s")
                if every
                else gettext_noop("every %(family)s host gets neutral: %(where)s")
            )
        else:
            continue
        details.setdefault(kind, []).append(msg(text, family=family, where=where))
    return [finding(kind, _joined(texts), domain=domain) for kind, texts in details.items()]


def _joined(texts: list):
    """One family's evidence, or both, one after the other."""
    if len(texts) == 1:
        return texts[0]
    return msg(gettext_noop("%(first)s; %(second)s"), first=texts[0], second=texts[1])
