"""SMTP on port 25 of every MX host, every address: reachable, STARTTLS, the certificate, no
AUTH before TLS, no open relay, a banner naming the address (verdicts in checks/verdicts.py).

A certificate problem weighs more where senders require a good one: an MTA-STS policy in
enforce mode (RFC 8461) or DANE-TA records (RFC 7672); the DANE match itself is the dane
category's (`dane.mismatch`), the MTA-STS one the mta_sts category's."""

from domains.checks.base import Context, register
from domains.checks.mailservers import DANE_UNTESTED, Plan, ProbeCheck, smtp_plan
from domains.checks.verdicts import HostPolicy
from domains.probes.results import Service


@register
class SmtpCheck(ProbeCheck):
    name = "smtp"
    service = Service.SMTP
    requires = ("mx", "dnssec", "dane", "mta_sts")

    def plan(self, ctx: Context) -> Plan:
        return smtp_plan(ctx)

    def policies(self, ctx: Context, plan: Plan) -> dict:
        """From the dane check's TLSA records (usable ones, DNSSEC-valid zones) and the
        mta_sts check's policy mode: no lookup of its own."""
        mode = ctx.data("mta_sts").get("mode", "")
        tlsa = ctx.data("dane").get("usable", {})
        untested = set(ctx.data("dane").get("untested", []))
        return {
            t.key: HostPolicy(
                sts_mode=mode if mode in ("enforce", "testing") else "",
                tlsa=[tuple(r) for r in tlsa.get(t.host, [])],
                tlsa_name=f"_25._tcp.{t.host}",
                dane_untested=DANE_UNTESTED if t.host in untested else "",
            )
            for t in plan.targets
        }
