"""Where a domain's mail servers are: the hosts, addresses and ports the protocol probe
categories (smtp, submission, imap, pop3) probe.

- smtp: every MX host, every address (IPv4 and IPv6), port 25.
- submission, imap, pop3: the SRV records of RFC 6186 and RFC 8314 (`_submissions._tcp`,
  `_submission._tcp`, `_imaps._tcp`, `_imap._tcp`, `_pop3s._tcp`, `_pop3._tcp`; a target of
  "." says the service is not offered), plus the team's "mail access hosts" (`host` probes the
  category's two standard ports, `host:port` one of them). Host names are never guessed.
"""

import ipaddress
from dataclasses import dataclass, field

from django.utils.translation import gettext

from domains.checks.base import CategoryResult, Check, Context
from domains.checks.dnssec import mail_hosts
from domains.checks.verdicts import HostPolicy, judge
from domains.dns import name_text
from domains.probes.results import Service, Target, TlsMode

IMPLICIT, STARTTLS = TlsMode.IMPLICIT, TlsMode.STARTTLS
# The standard ports (RFC 8314 3.3, RFC 6186): which service and TLS mode each one means.
STANDARD_PORTS = {
    465: (Service.SUBMISSION, IMPLICIT),
    587: (Service.SUBMISSION, STARTTLS),
    993: (Service.IMAP, IMPLICIT),
    143: (Service.IMAP, STARTTLS),
    995: (Service.POP3, IMPLICIT),
    110: (Service.POP3, STARTTLS),
}
# The SRV owner names of each service, implicit TLS first (RFC 8314 5.1 prefers it).
SRV_NAMES = {
    Service.SUBMISSION: [("_submissions._tcp", IMPLICIT), ("_submission._tcp", STARTTLS)],
    Service.IMAP: [("_imaps._tcp", IMPLICIT), ("_imap._tcp", STARTTLS)],
    Service.POP3: [("_pop3s._tcp", IMPLICIT), ("_pop3._tcp", STARTTLS)],
}
MAX_ACCESS_HOSTS = 20


class AccessHostError(ValueError):
    """A mail access host refused, said in the active language (a form's error)."""


def parse_access_host(line: str) -> tuple[str, int | None]:
    """ "mail.example.com" or "mail.example.com:993" -> (name, port or None). The name is
    normalised as domain names are; an IP address is refused (certificates name hosts)."""
    from django.core.exceptions import ValidationError

    from domains.names import DomainNameError, normalize_domain

    text = line.strip()
    if _ip_literal(text):
        raise AccessHostError(
            gettext(
                "“%(line)s”: an IP address cannot be a mail access host. Certificates name hosts, "
                "and mailsec checks the certificate against the name: give the host name your "
                "mail clients use (the one the certificate is issued for)."
            )
            % {"line": text}
        )
    port = None
    if text.count(":") == 1:
        text, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise AccessHostError(
                gettext("“%(line)s”: the port must be a number.") % {"line": line.strip()}
            )
        port = int(port_text)
        if port not in STANDARD_PORTS:
            raise AccessHostError(
                gettext(
                    "“%(line)s”: port %(port)s does not say which service it is; use 465 or "
                    "587 (submission), 993 or 143 (IMAP), 995 or 110 (POP3), or publish an SRV "
                    "record for other ports."
                )
                % {"line": line.strip(), "port": port}
            )
    try:
        name = normalize_domain(text)
    except (DomainNameError, ValidationError) as exc:
        raise AccessHostError(
            gettext("“%(line)s”: %(error)s") % {"line": line.strip(), "error": exc.messages[0]}
        ) from None
    return name, port


def _ip_literal(text: str) -> bool:
    """An IPv4 or IPv6 address, bare, in brackets, or with a port ("[2001:db8::1]:993")."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def format_access_host(name: str, port: int | None) -> str:
    return name if port is None else f"{name}:{port}"


@dataclass
class Plan:
    """What one category probes, and what was found on the way."""

    targets: list[Target] = field(default_factory=list)
    # Targets whose silence is no finding: the standard ports of a configured bare host.
    optional: set = field(default_factory=set)
    source: str = ""  # "mx", "srv", "configured", or "srv+configured"
    not_offered: list[str] = field(default_factory=list)  # SRV names saying "." (not offered)
    no_address: list[str] = field(default_factory=list)  # hosts with no A/AAAA record
    unresolved: list[str] = field(default_factory=list)  # hosts whose address lookup failed
    srv: dict = field(default_factory=dict)  # owner name -> ["prio weight port target", ...]
    priority: dict = field(default_factory=dict)  # target key -> MX preference / SRV priority
    # (host, port) -> the SRV owner names that lead to it; `direct`: the configured ones. DANE
    # for a host reached through SRV counts only when the SRV's zone validates (RFC 7673).
    via_srv: dict = field(default_factory=dict)
    direct: set = field(default_factory=set)

    def add(self, host: str, addresses: list[str], port: int, service, mode, priority=None):
        for address in addresses:
            target = Target(host, address, port, Service(service), TlsMode(mode))
            if target.key not in {t.key for t in self.targets}:
                self.targets.append(target)
                self.priority[target.key] = priority


def addresses(ctx: Context, host: str, plan: Plan | None = None) -> list[str]:
    """IPv4 then IPv6 addresses, from the mx check's answers or the session. With a `plan`, a
    failed lookup voids only this host's probes of that address family (the host is noted in
    `plan.unresolved`; `settle` makes it the category's failure when nothing is left)."""
    known = ctx.data("mx").get("addresses", {})
    if host in known:
        return list(known[host])
    if plan is None:
        return [r.address for rdtype in ("A", "AAAA") for r in ctx.dns.lookup(host, rdtype).rdatas]
    found, failed = [], False
    for rdtype in ("A", "AAAA"):
        failed = True
        with ctx.dns.optional(f"{rdtype} of {host} not probed"):
            found += [r.address for r in ctx.dns.lookup(host, rdtype).rdatas]
            failed = False
        if failed and host not in plan.unresolved:
            plan.unresolved.append(host)
    return found


def _place(plan: Plan, host: str, found: list[str]) -> None:
    """A host with no address to probe: "no A or AAAA record" only when DNS said so."""
    if not found and host not in plan.unresolved and host not in plan.no_address:
        plan.no_address.append(host)


def settle(ctx: Context, plan: Plan) -> Plan:
    """Nothing to probe because address lookups failed: the category could not be tested (the
    failed lookups are asked again outside any optional scope, as its core)."""
    if not plan.targets and plan.unresolved:
        for host in plan.unresolved:
            for rdtype in ("A", "AAAA"):
                ctx.dns.lookup(host, rdtype)
    return plan


def smtp_plan(ctx: Context) -> Plan:
    plan = Plan(source="mx")
    hosts, null = mail_hosts(ctx)
    if null:
        return plan
    preferences = {}
    answer = ctx.dns.lookup(ctx.domain, "MX")
    for record in answer.rdatas:
        preferences.setdefault(name_text(record.exchange), record.preference)
    ctx.dns.prefetch(*[(h, t) for h in hosts for t in ("A", "AAAA")])
    for host in hosts:
        found = addresses(ctx, host, plan)
        _place(plan, host, found)
        plan.add(host, found, 25, Service.SMTP, STARTTLS, preferences.get(host))
    return settle(ctx, plan)


def access_plan(ctx: Context, service: Service) -> Plan:
    """SRV records first, then the configured hosts (both are probed)."""
    plan = Plan()
    names = [(f"{prefix}.{ctx.domain}", mode) for prefix, mode in SRV_NAMES[service]]
    ctx.dns.prefetch(*[(name, "SRV") for name, _ in names])
    found_srv = []
    for name, mode in names:
        records = sorted(
            ctx.dns.lookup(name, "SRV").rdatas, key=lambda r: (r.priority, -r.weight, r.port)
        )
        if records:
            plan.srv[name] = [
                f"{r.priority} {r.weight} {r.port} {name_text(r.target) or '.'}" for r in records
            ]
        for record in records:
            host = name_text(record.target)
            if not host:  # RFC 2782 / RFC 6186 3.4: "." means the service is not offered
                plan.not_offered.append(name)
                continue
            found_srv.append((host, record.port, mode, record.priority))
            plan.via_srv.setdefault((host, record.port), set()).add(name)
    ctx.dns.prefetch(*[(h, t) for h, *_ in found_srv for t in ("A", "AAAA")])
    for host, port, mode, priority in found_srv:
        found = addresses(ctx, host, plan)
        _place(plan, host, found)
        plan.add(host, found, port, service, mode, priority)
    configured = _configured(ctx, service)
    ctx.dns.prefetch(*[(h, t) for h, *_ in configured for t in ("A", "AAAA")])
    for host, port, mode, optional in configured:
        plan.direct.add((host, port))
        found = addresses(ctx, host, plan)
        _place(plan, host, found)
        before = {t.key for t in plan.targets}
        plan.add(host, found, port, service, mode)
        if optional:
            plan.optional |= {t.key for t in plan.targets} - before
    sources = (("srv", found_srv or plan.not_offered), ("configured", configured))
    plan.source = "+".join(name for name, used in sources if used)
    return settle(ctx, plan)


def _configured(ctx: Context, service: Service) -> list[tuple[str, int, TlsMode, bool]]:
    """(host, port, mode, optional) of the configured hosts that belong to this service."""
    found = []
    for line in ctx.access_hosts:
        try:
            host, port = parse_access_host(line)
        except AccessHostError:
            continue  # the form validates; a bad stored value is skipped, not fatal
        if port is None:
            found += [
                (host, p, mode, True) for p, (s, mode) in STANDARD_PORTS.items() if s == service
            ]
        elif STANDARD_PORTS[port][0] == service:
            found.append((host, port, STANDARD_PORTS[port][1], False))
    return found


# --- the categories ----------------------------------------------------------------------------

USABLE_USAGES = (2, 3)  # DANE-TA, DANE-EE (RFC 7672 3.1)


def usable_tlsa(records) -> list[tuple[int, int, int, str]]:
    """(usage, selector, matching type, hex data) of the records a DANE sender uses."""
    return [
        (r.usage, r.selector, r.mtype, r.cert.hex())
        for r in records
        if r.usage in USABLE_USAGES and r.selector in (0, 1) and r.mtype in (0, 1, 2)
    ]


DANE_UNTESTED = "not tested: a lookup it needs (TLSA, or DNSSEC of a zone) failed"


def dane_untested(host: str, port: int) -> str:
    """What a failed lookup for DANE of one host and port leaves untested."""
    return f"DANE of {host}:{port} not tested"


def dane_matcher():
    """The probes' DANE matching function: (records, chain_der_hex) -> DaneResult."""
    from domains.probes import dane

    return dane.match


class ProbeCheck(Check):
    """A protocol probe category: targets() plans, run() judges what the probes found."""

    probes = True
    service: Service
    requires = ("mx",)

    def plan(self, ctx: Context) -> Plan:
        return access_plan(ctx, self.service)

    def targets(self, ctx: Context) -> list[Target]:
        plan = ctx.plans[self.name] = self.plan(ctx)
        return plan.targets

    def policies(self, ctx: Context, plan: Plan) -> dict:
        """DANE for SRV and configured hosts: TLSA at _<port>._tcp.<host>, which counts only
        when the host's zone validates with DNSSEC and, for a host named by an SRV record, the
        SRV's zone too (RFC 7673 3, 4.1). A failed lookup voids only that host's DANE verdict."""
        pairs = sorted({(t.host, t.port) for t in plan.targets})
        ctx.dns.prefetch(*[(f"_{port}._tcp.{host}", "TLSA") for host, port in pairs])
        tlsa, secure = {}, {}
        for host, port in pairs:
            with ctx.dns.optional(dane_untested(host, port)):
                tlsa[(host, port)] = ctx.dns.lookup(f"_{port}._tcp.{host}", "TLSA").rdatas
        with_records = [pair for pair in pairs if tlsa.get(pair)]
        if with_records:
            secure = self._secure(ctx, plan, with_records)
        policies = {}
        for target in plan.targets:
            pair = (target.host, target.port)
            untested = pair not in tlsa or (tlsa[pair] and pair not in secure)
            policies[target.key] = HostPolicy(
                tlsa=usable_tlsa(tlsa[pair]) if secure.get(pair) else [],
                tlsa_name=f"_{target.port}._tcp.{target.host}",
                dane_untested=DANE_UNTESTED if untested else "",
            )
        return policies

    @staticmethod
    def _secure(ctx: Context, plan: Plan, pairs: list) -> dict:
        """(host, port) -> whether its TLSA records count: the host's zone validates and so
        does the zone of an SRV record naming it (unless the team configured the host itself).
        A pair whose zones could not be validated is left out (DANE not tested)."""
        from django.conf import settings

        from domains.checks.dnssec import SECURE, Validator

        validator = Validator(ctx.dns, settings.MAILSEC_DNSSEC_TRUST_ANCHORS)
        owners = {pair: set() if pair in plan.direct else plan.via_srv.get(pair, set())
                  for pair in pairs}  # fmt: skip
        validator.prefetch(*{h for h, _ in pairs}, *{o for names in owners.values() for o in names})
        secure = {}
        for host, port in pairs:
            with ctx.dns.optional(dane_untested(host, port)):
                ok = validator.verdict(host).status == SECURE
                srv = [validator.verdict(owner).status == SECURE for owner in owners[(host, port)]]
                secure[(host, port)] = ok and (not srv or any(srv))
        return secure

    def run(self, ctx: Context) -> CategoryResult:
        from datetime import UTC, datetime

        plan = ctx.plans.get(self.name)
        if plan is None:  # run without targets() (a caller of the check alone)
            plan = ctx.plans[self.name] = self.plan(ctx)
        policies = self.policies(ctx, plan) if plan.targets else {}
        return judge(
            self.service,
            plan,
            ctx.probes,
            policies,
            datetime.now(UTC),
            match=dane_matcher(),
            domain=ctx.domain,
        )
