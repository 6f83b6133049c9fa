"""SPF (RFC 7208), evaluated by checkdmarc through our DNS session."""

import checkdmarc.spf as cd_spf

from domains.checks.base import CategoryResult, Check, Context, register
from domains.dns import LIFETIME
from domains.findings import finding

# Over this many bytes an answer risks truncation and a TCP retry (RFC 7208 3.4 advises
# keeping SPF answers within 512 bytes).
LONG_RECORD = 450


def spf_records(texts: list[str]) -> list[str]:
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


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
                finding("spf.missing", f"No v=spf1 TXT record at {domain}.", domain=domain)
            )
            return result
        if len(records) > 1:
            listed = " | ".join(records)
            result.findings.append(finding("spf.multiple_records", listed, domain=domain))
            return result
        record = records[0]
        if len(record.encode()) > LONG_RECORD:
            detail = f"The record is {len(record.encode())} bytes long."
            result.findings.append(finding("spf.record_too_long", detail, domain=domain))
        try:
            parsed = cd_spf.parse_spf_record(
                record,
                domain,
                resolver=ctx.dns.checkdmarc_resolver,
                # checkdmarc looks up an exp= target without the resolver: not the system's.
                nameservers=ctx.dns.checkdmarc_nameservers,
                timeout=LIFETIME,
            )
        except cd_spf.SPFError as exc:
            result.findings.append(self._error_finding(exc, record, domain))
            return result
        self._judge(parsed, record, domain, result)
        return result

    @staticmethod
    def _error_finding(exc: Exception, record: str, domain: str):
        evidence = f"{exc} (record: {record})"
        kind = {
            cd_spf.SPFTooManyDNSLookups: "spf.too_many_lookups",
            cd_spf.SPFTooManyVoidDNSLookups: "spf.too_many_void_lookups",
            cd_spf.SPFIncludeLoop: "spf.include_loop",
            cd_spf.SPFRedirectLoop: "spf.include_loop",
            cd_spf.SPFRecordNotFound: "spf.include_not_found",
            cd_spf.MultipleSPFRTXTRecords: "spf.include_not_found",
        }.get(type(exc), "spf.syntax_error")
        return finding(kind, evidence, domain=domain)

    @staticmethod
    def _judge(parsed: dict, record: str, domain: str, result: CategoryResult) -> None:
        terms = parsed["parsed"]
        mechanisms = terms.get("mechanisms", [])
        all_result = terms.get("all")
        has_all = any(t.split(":")[0].lstrip("+-~?").lower() == "all" for t in record.split()[1:])
        result.data = {
            "all": all_result if has_all else None,
            "redirect": terms.get("redirect"),
            "dns_lookups": parsed["dns_lookups"],
            "void_lookups": parsed["void_dns_lookups"],
            "only_fail_all": has_all
            and all_result == "fail"
            and not mechanisms
            and not terms.get("redirect"),
        }
        if has_all and all_result == "pass":
            result.findings.append(finding("spf.all_pass", record, domain=domain))
        elif has_all and all_result == "neutral":
            result.findings.append(finding("spf.neutral_all", record, domain=domain))
        elif not has_all and not terms.get("redirect"):
            result.findings.append(finding("spf.no_all", record, domain=domain))
        if any(m.get("mechanism") == "ptr" for m in mechanisms) or _uses_ptr(record):
            result.findings.append(finding("spf.ptr_mechanism", record, domain=domain))


def _uses_ptr(record: str) -> bool:
    return any(
        t.lstrip("+-~?").lower().split(":")[0].split("/")[0] == "ptr" for t in record.split()[1:]
    )
