"""SMTP TLS reporting (RFC 8460): the `_smtp._tls` record, parsed by checkdmarc."""

import checkdmarc.smtp_tls_reporting as cd_tlsrpt
from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, register
from domains.findings import finding
from domains.messages import msg


def tlsrpt_records(texts: list[str]) -> list[str]:
    return [t for t in texts if t.replace(" ", "").lower().startswith("v=tlsrptv1")]


@register
class TlsRptCheck(Check):
    name = "tls_rpt"
    requires = ("mx",)

    def prefetch(self, ctx: Context):
        return [(f"_smtp._tls.{ctx.domain}", "TXT")]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        name = f"_smtp._tls.{ctx.domain}"
        records = tlsrpt_records(ctx.dns.lookup(name, "TXT").texts)
        result.records = {"TXT": records}
        if ctx.null_mx:
            result.applicable = False
            return result
        if not records:
            result.findings.append(
                finding(
                    "tls_rpt.missing",
                    msg(gettext_noop("No v=TLSRPTv1 record at %(name)s."), name=name),
                    domain=ctx.domain,
                )
            )
            return result
        if len(records) > 1:
            detail = msg(
                gettext_noop("%(count)s records at %(name)s: %(records)s"),
                count=len(records),
                name=name,
                records=" | ".join(records),
            )
            result.findings.append(finding("tls_rpt.invalid", detail, domain=ctx.domain))
            return result
        try:
            parsed = cd_tlsrpt.parse_smtp_tls_reporting_record(records[0])
        except cd_tlsrpt.SMTPTLSReportingError as exc:
            detail = f"{name}: {records[0]} ({exc})"
            result.findings.append(finding("tls_rpt.invalid", detail, domain=ctx.domain))
            return result
        result.data = {"rua": parsed["tags"]["rua"]["value"]}
        return result
