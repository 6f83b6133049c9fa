"""BIMI: the `default._bimi` record (information only; the logo is not fetched), and whether
the DMARC policy lets mail clients show it."""

from urllib.parse import urlsplit

from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, Status, register
from domains.checks.dmarc import raw_tags
from domains.findings import finding
from domains.messages import Message, msg


def bimi_problem(record: str) -> Message | None:
    """Why a BIMI record is unusable, or None."""
    tags = raw_tags(record)
    if tags.get("v", "").upper() != "BIMI1" or not record.replace(" ", "").upper().startswith(
        "V=BIMI1"
    ):
        return msg(gettext_noop("it must start with v=BIMI1"))
    for tag in ("l", "a"):
        value = tags.get(tag, "")
        if value and urlsplit(value).scheme != "https":
            return msg(gettext_noop("%(tag)s= must be an https:// URL"), tag=tag)
    if "l" not in tags:
        return msg(gettext_noop("it has no l= tag (the logo's address)"))
    return None


@register
class BimiCheck(Check):
    name = "bimi"
    requires = ("mx", "spf", "dmarc")

    def prefetch(self, ctx: Context):
        return [(f"default._bimi.{ctx.domain}", "TXT")]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        name = f"default._bimi.{ctx.domain}"
        records = [
            t for t in ctx.dns.lookup(name, "TXT").texts if t.strip().upper().startswith("V=BIMI")
        ]
        result.records = {"TXT": records}
        if ctx.sends_no_mail:
            result.applicable = False
            return result
        if not records:
            result.findings.append(
                finding(
                    "bimi.missing",
                    msg(gettext_noop("No v=BIMI1 record at %(name)s."), name=name),
                    domain=ctx.domain,
                )
            )
            return result
        problems = [bimi_problem(r) for r in records]
        if len(records) > 1 or problems[0]:
            reason = problems[0] or msg(gettext_noop("%(count)s records"), count=len(records))
            detail = msg(
                gettext_noop("%(name)s: %(records)s (%(reason)s)"),
                name=name,
                records=" | ".join(records),
                reason=reason,
            )
            result.findings.append(finding("bimi.invalid", detail, domain=ctx.domain))
        self._judge_dmarc(ctx, name, result)
        return result

    @staticmethod
    def _judge_dmarc(ctx: Context, name: str, result: CategoryResult) -> None:
        """BIMI needs DMARC enforcement: p=quarantine or p=reject applied to all mail (the BIMI
        draft's DMARC requirement). Not judged when DMARC could not be tested."""
        dmarc = ctx.results.get("dmarc")
        if dmarc is None or dmarc.status == Status.ERROR or dmarc.data.get("enforced"):
            return
        if "policy" not in dmarc.data:
            why = gettext_noop(
                "%(name)s is published, but the domain has no valid DMARC record: mail clients "
                "do not show the logo."
            )
        elif dmarc.data.get("pct") is None:
            why = gettext_noop(
                "%(name)s is published, but the DMARC record's pct= is invalid: mail clients do "
                "not show the logo."
            )
        elif dmarc.data["policy"] == "none":
            why = gettext_noop(
                "%(name)s is published, but the DMARC policy is p=none: mail clients do not "
                "show the logo."
            )
        else:
            why = gettext_noop(
                "%(name)s is published, but the DMARC policy applies to only pct=%(pct)s of the "
                "mail: mail clients do not show the logo."
            )
        detail = msg(why, name=name, pct=dmarc.data.get("pct"))
        result.findings.append(finding("bimi.dmarc_not_enforced", detail, domain=ctx.domain))
