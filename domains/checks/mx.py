"""MX: where the domain's mail goes, and whether those hosts can be found (RFC 5321, 7505)."""

import ipaddress

import dns.reversename
from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, register
from domains.dns import name_text
from domains.findings import finding
from domains.messages import msg


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@register
class MxCheck(Check):
    name = "mx"

    def prefetch(self, ctx: Context):
        return [(ctx.domain, "MX"), (ctx.domain, "A"), (ctx.domain, "AAAA")]

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        answer = ctx.dns.lookup(ctx.domain, "MX")
        mx = sorted((r.preference, name_text(r.exchange)) for r in answer.rdatas)
        result.records = {"MX": [f"{pref} {host or '.'}" for pref, host in mx]}
        hosts = [host for _, host in mx if host]
        result.data = {"hosts": hosts, "null": False, "addresses": {}}
        if not mx:
            result.findings.append(self._missing(ctx, answer.status))
            return result
        if any(host == "" for _, host in mx):
            result.data["null"] = True
            if len(mx) > 1:
                records = "; ".join(f"MX {r}" for r in result.records["MX"])
                detail = msg(
                    gettext_noop(
                        "%(domain)s publishes a null MX beside other MX records: %(records)s."
                    ),
                    domain=ctx.domain,
                    records=records,
                )
                result.findings.append(finding("mx.null_mixed", detail, domain=ctx.domain))
            else:
                result.findings.append(
                    finding(
                        "mx.null",
                        msg(
                            gettext_noop(
                                "%(domain)s publishes a null MX record (MX 0 .) and so accepts "
                                "no mail."
                            ),
                            domain=ctx.domain,
                        ),
                        domain=ctx.domain,
                    )
                )
                return result
        self._check_hosts(ctx, hosts, result)
        return result

    def _missing(self, ctx: Context, status: str):
        if status == "nxdomain":
            return finding(
                "mx.missing",
                msg(gettext_noop("%(domain)s does not exist (NXDOMAIN)."), domain=ctx.domain),
                domain=ctx.domain,
            )
        fallback = [
            r.to_text() for t in ("A", "AAAA") for r in ctx.dns.lookup(ctx.domain, t).rdatas
        ]
        if fallback:
            detail = msg(
                gettext_noop("No MX; mail would go to %(domain)s's own address (%(addresses)s)."),
                domain=ctx.domain,
                addresses=fallback,
            )
        else:
            detail = msg(
                gettext_noop(
                    "No MX, and %(domain)s has no address either: it cannot receive mail."
                ),
                domain=ctx.domain,
            )
        return finding("mx.missing", detail, domain=ctx.domain)

    def _check_hosts(self, ctx: Context, hosts: list[str], result: CategoryResult) -> None:
        names = [h for h in hosts if not is_ip_literal(h)]
        ctx.dns.prefetch(*[(h, t) for h in names for t in ("A", "AAAA")])
        for host in hosts:
            if is_ip_literal(host):
                result.findings.append(
                    finding(
                        "mx.ip_literal",
                        msg(
                            gettext_noop(
                                "An MX record names %(host)s: an IP address, not a host name."
                            ),
                            host=host,
                        ),
                        domain=ctx.domain,
                    )
                )
        addresses: dict[str, list[str]] = {}
        for host in names:
            answers = [ctx.dns.lookup(host, t) for t in ("A", "AAAA")]
            addresses[host] = [r.address for a in answers for r in a.rdatas]
            aliased = [a.canonical_name for a in answers if a.exists and a.via_cname]
            if aliased:
                detail = msg(
                    gettext_noop("%(host)s is an alias (CNAME) of %(target)s."),
                    host=host,
                    target=aliased[0],
                )
                result.findings.append(finding("mx.cname", detail, domain=ctx.domain))
            if not addresses[host]:
                detail = msg(gettext_noop("%(host)s has no A or AAAA record."), host=host)
                result.findings.append(finding("mx.host_unresolvable", detail, domain=ctx.domain))
        result.data["addresses"] = addresses
        all_addresses = [a for found in addresses.values() for a in found]
        if all_addresses and not any(":" in a for a in all_addresses):
            detail = msg(gettext_noop("No AAAA record on %(hosts)s."), hosts=names)
            result.findings.append(finding("mx.no_ipv6", detail, domain=ctx.domain))
        self._check_reverse(ctx, addresses, result)

    def _check_reverse(self, ctx: Context, addresses: dict, result: CategoryResult) -> None:
        pairs = [(host, ip) for host, ips in addresses.items() for ip in ips]
        ctx.dns.prefetch(*[(dns.reversename.from_address(ip).to_text(), "PTR") for _, ip in pairs])
        ptr_records = {}
        for host, ip in pairs:
            # Reverse zones are often lame: a failure voids this address's FCrDNS verdict only.
            with ctx.dns.optional(f"FCrDNS of {ip} ({host}) not tested"):
                ptr = ctx.dns.lookup(dns.reversename.from_address(ip).to_text(), "PTR")
                names = [name_text(r.target) for r in ptr.rdatas]
                confirmed = any(self._forward_confirms(ctx, name, ip) for name in names)
                ptr_records[ip] = names
                self._judge_reverse(ctx, host, ip, names, confirmed, result)
        result.records["PTR"] = ptr_records

    @staticmethod
    def _judge_reverse(ctx: Context, host, ip, names, confirmed, result: CategoryResult) -> None:
        if not names:
            detail = msg(gettext_noop("%(ip)s (%(host)s) has no PTR record."), ip=ip, host=host)
        elif not confirmed:
            detail = msg(
                gettext_noop(
                    "%(ip)s (%(host)s) points back to %(names)s, which does not resolve to it."
                ),
                ip=ip,
                host=host,
                names=names,
            )
        else:
            return
        result.findings.append(finding("mx.ptr_mismatch", detail, domain=ctx.domain))

    @staticmethod
    def _forward_confirms(ctx: Context, name: str, ip: str) -> bool:
        rdtype = "AAAA" if ":" in ip else "A"
        wanted = ipaddress.ip_address(ip)
        return any(
            ipaddress.ip_address(r.address) == wanted for r in ctx.dns.lookup(name, rdtype).rdatas
        )
