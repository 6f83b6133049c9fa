"""DMARC: found with checkdmarc's tree walk (RFC 9989, organisational-domain fallback), judged
here from the tags."""

import re

import checkdmarc.dmarc as cd_dmarc
from checkdmarc.utils import get_base_domain
from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, Severity, register
from domains.dns import LIFETIME, OfflineResolver
from domains.findings import finding
from domains.messages import msg

STRENGTH = {"none": 0, "quarantine": 1, "reject": 2}
PCT = re.compile(r"[0-9]{1,3}")  # RFC 7489 6.4: 1*3DIGIT, and 6.3 bounds it to 0-100


def raw_tags(record: str) -> dict[str, str]:
    """The tags as written (checkdmarc drops `pct`, which RFC 9989 removed but receivers that
    follow RFC 7489 still apply)."""
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    return tags


def org_domain(name: str) -> str:
    return get_base_domain(name) or name


@register
class DmarcCheck(Check):
    name = "dmarc"

    def prefetch(self, ctx: Context):
        queries = [(f"_dmarc.{ctx.domain}", "TXT")]
        base = org_domain(ctx.domain)
        if base != ctx.domain:
            queries.append((f"_dmarc.{base}", "TXT"))
        return queries

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        domain = ctx.domain
        try:
            found = cd_dmarc.query_dmarc_record(
                domain, resolver=ctx.dns.checkdmarc_resolver, timeout=LIFETIME, retries=0
            )
            # Parsed without DNS: the report destinations are checked below, through the
            # session, where a failure voids only their verdict.
            found["parsed"] = cd_dmarc.parse_dmarc_record(
                found["record"], found["location"], resolver=OfflineResolver(), retries=0
            )
        except cd_dmarc.DMARCRecordNotFound as exc:
            result.findings.append(
                finding(
                    "dmarc.missing",
                    msg(
                        gettext_noop("No record at _dmarc.%(domain)s: %(error)s"),
                        domain=domain,
                        error=exc,
                    ),
                    domain=domain,
                )
            )
            return result
        except cd_dmarc.MultipleDMARCRecords as exc:
            result.findings.append(finding("dmarc.multiple_records", str(exc), domain=domain))
            return result
        except cd_dmarc.DMARCError as exc:
            result.findings.append(finding("dmarc.syntax_error", str(exc), domain=domain))
            return result
        record, location = found["record"], found["location"]
        result.records = {"TXT": [record], "location": location}
        self._judge(ctx, record, location, found["parsed"]["tags"], result)
        return result

    def _judge(self, ctx: Context, record: str, location: str, tags: dict, result: CategoryResult):
        domain = ctx.domain
        p = tags["p"]["value"]
        sp = tags.get("sp", {}).get("value", p)
        np = tags.get("np", {}).get("value", sp)
        inherited = location != domain
        effective = sp if inherited else p
        result.data = {"policy": effective, "p": p, "sp": sp, "np": np, "location": location}
        evidence = f"_dmarc.{location}: {record}"
        if inherited:
            detail = msg(
                gettext_noop("No record at _dmarc.%(domain)s; %(evidence)s applies (sp=%(sp)s)."),
                domain=domain,
                evidence=evidence,
                sp=sp,
            )
            result.findings.append(finding("dmarc.inherited", detail, domain=domain))
        if effective == "none":
            result.findings.append(finding("dmarc.policy_none", evidence, domain=domain))
        pct = self._judge_pct(ctx, raw_tags(record).get("pct"), effective, evidence, result)
        result.data["pct"] = pct
        # Receivers reject or quarantine all forged mail (what BIMI and scoring ask for).
        result.data["enforced"] = effective in ("quarantine", "reject") and pct == 100
        weaker = [
            f"{name}={value}"
            for name, value in (("sp", sp), ("np", np))
            if STRENGTH.get(value, 0) < STRENGTH.get(p, 0)
        ]
        if weaker and not inherited:
            detail = msg(
                gettext_noop("%(weaker)s while p=%(p)s: %(evidence)s"),
                weaker=weaker,
                p=p,
                evidence=evidence,
            )
            result.findings.append(finding("dmarc.subdomain_policy_weaker", detail, domain=domain))
        rua = [
            uri["address"]
            for uri in tags.get("rua", {}).get("value", [])
            if uri.get("scheme") == "mailto"
        ]
        ruf = [
            uri["address"]
            for uri in tags.get("ruf", {}).get("value", [])
            if uri.get("scheme") == "mailto"
        ]
        if not tags.get("rua", {}).get("value"):
            result.findings.append(finding("dmarc.no_rua", evidence, domain=domain))
        for address in dict.fromkeys(rua + ruf):
            self._check_destination(ctx, location, address, result)

    @staticmethod
    def _judge_pct(
        ctx: Context, pct: str | None, effective: str, evidence: str, result
    ) -> int | None:
        """The share of mail the policy applies to (100 without the tag); None when the tag is
        invalid. Under p=none the share changes nothing, so it is not judged."""
        if pct is None:
            return 100
        if not PCT.fullmatch(pct) or int(pct) > 100:
            detail = msg(
                gettext_noop(
                    "pct=%(pct)s is not a whole number from 0 to 100 (RFC 7489 6.3): receivers "
                    "may discard the record or the tag. %(evidence)s"
                ),
                pct=pct,
                evidence=evidence,
            )
            result.findings.append(finding("dmarc.syntax_error", detail, domain=ctx.domain))
            return None
        share = int(pct)
        if share < 100 and effective != "none":
            # RFC 7489 6.6.4: the rest gets the next weaker policy; under quarantine that is
            # none, so forged mail reaches the inbox.
            severity = Severity.MEDIUM if effective == "quarantine" else None
            detail = msg(gettext_noop("pct=%(pct)s in %(evidence)s"), pct=pct, evidence=evidence)
            if severity:
                detail = msg(
                    gettext_noop(
                        "pct=%(pct)s in %(evidence)s (%(rest)s%% of forged mail is delivered as "
                        "if p=none)"
                    ),
                    pct=pct,
                    evidence=evidence,
                    rest=100 - share,
                )
            result.findings.append(
                finding("dmarc.pct_partial", detail, domain=ctx.domain, severity=severity)
            )
        return share

    @staticmethod
    def _check_destination(ctx: Context, location: str, address: str, result: CategoryResult):
        """RFC 7489 7.1: a report address in another organisational domain must agree."""
        target = address.rpartition("@")[2].lower().rstrip(".")
        if org_domain(target) == org_domain(location):
            return
        names = [f"{location}._report._dmarc.{target}", f"*._report._dmarc.{target}"]
        # A report vendor's zone failing voids this verdict only, not the policy's.
        with ctx.dns.optional(f"whether {target} accepts reports for {location} not checked"):
            for name in names:
                texts = ctx.dns.lookup(name, "TXT").texts
                if any(t.replace(" ", "").lower().startswith("v=dmarc1") for t in texts):
                    return
            detail = msg(
                gettext_noop("%(address)s: no v=DMARC1 record at %(name)s."),
                address=address,
                name=names[0],
            )
            result.findings.append(finding("dmarc.rua_unauthorized", detail, domain=ctx.domain))
