"""BIMI: the `default._bimi` record (information only; the logo is not fetched)."""

from urllib.parse import urlsplit

from domains.checks.base import CategoryResult, Check, Context, register
from domains.checks.dmarc import raw_tags
from domains.findings import finding


def bimi_problem(record: str) -> str | None:
    """Why a BIMI record is unusable, or None."""
    tags = raw_tags(record)
    if tags.get("v", "").upper() != "BIMI1" or not record.replace(" ", "").upper().startswith(
        "V=BIMI1"
    ):
        return "it must start with v=BIMI1"
    for tag in ("l", "a"):
        value = tags.get(tag, "")
        if value and urlsplit(value).scheme != "https":
            return f"{tag}= must be an https:// URL"
    if "l" not in tags:
        return "it has no l= tag (the logo's address)"
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
                finding("bimi.missing", f"No v=BIMI1 record at {name}.", domain=ctx.domain)
            )
            return result
        problems = [bimi_problem(r) for r in records]
        if len(records) > 1 or problems[0]:
            reason = problems[0] or f"{len(records)} records"
            detail = f"{name}: {' | '.join(records)} ({reason})"
            result.findings.append(finding("bimi.invalid", detail, domain=ctx.domain))
        return result
