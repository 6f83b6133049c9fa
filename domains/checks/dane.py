"""DANE for SMTP (RFC 7672): TLSA records at _25._tcp.<mx host>, which count only in a zone
that DNSSEC validates (the dnssec check's verdict for each MX host)."""

from django.conf import settings
from django.utils.translation import gettext_noop

from domains.checks.base import CategoryResult, Check, Context, Severity, register
from domains.checks.dnssec import BOGUS, INSECURE, SECURE, Validator, mail_hosts
from domains.checks.mailservers import dane_untested, usable_tlsa
from domains.findings import finding
from domains.messages import lines as evidence_lines
from domains.messages import msg
from domains.probes.wording import dane_worded

PROBE_CATEGORIES = ("smtp", "submission", "imap", "pop3")

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "full certificate", 1: "public key (SPKI)"}
DIGEST_LENGTHS = {1: 32, 2: 64}  # SHA2-256, SHA2-512
MATCHING_NAMES = {0: "full data", 1: "SHA2-256", 2: "SHA2-512"}
SHOWN_HEX = 64  # a full certificate in a detail is cut after this many hex digits


def tlsa_name(host: str) -> str:
    return f"_25._tcp.{host}"


def tlsa_text(record) -> str:
    return f"{record.usage} {record.selector} {record.mtype} {record.cert.hex()}"


def tlsa_problems(record) -> list[str]:
    """Why one TLSA record does not fit SMTP (RFC 7672 3.1); empty when it does."""
    problems = []
    if record.usage in (0, 1):
        problems.append(
            f"usage {record.usage} ({USAGES[record.usage]}) is ignored by SMTP senders, "
            "use 3 (DANE-EE) or 2 (DANE-TA)"
        )
    elif record.usage not in USAGES:
        problems.append(f"usage {record.usage} is not defined")
    if record.selector not in SELECTORS:
        problems.append(f"selector {record.selector} is not defined (0 or 1)")
    if record.mtype == 0:
        problems.append(
            "matching type 0 (full data) is discouraged, use 1 (SHA2-256) so the record "
            "survives certificate renewals with the same key"
        )
    elif record.mtype in DIGEST_LENGTHS:
        wanted, got = DIGEST_LENGTHS[record.mtype], len(record.cert)
        if got != wanted:
            problems.append(
                f"a {MATCHING_NAMES[record.mtype]} digest is {wanted} bytes, this one is {got}"
            )
    else:
        problems.append(f"matching type {record.mtype} is not defined (1 or 2)")
    return problems


def _shown(text: str) -> str:
    fields = text.split(" ", 3)
    if len(fields) == 4 and len(fields[3]) > SHOWN_HEX:
        fields[3] = fields[3][:SHOWN_HEX] + "..."
    return " ".join(fields)


@register
class DaneCheck(Check):
    name = "dane"
    requires = ("mx", "dnssec")

    def run(self, ctx: Context) -> CategoryResult:
        result = CategoryResult(self.name)
        hosts, null = mail_hosts(ctx)
        if null or not hosts:
            result.applicable = False
            return result
        zones = self._zone_status(ctx, hosts)
        # A bogus zone's TLSA is not looked at: validating senders cannot use it, and the
        # dnssec check reports the zone. A host whose zone or TLSA lookup failed is not judged
        # (its DANE alone is "not tested"; the other hosts keep their verdicts).
        asked = [host for host in hosts if zones.get(host, BOGUS) != BOGUS]
        ctx.dns.prefetch(*[(tlsa_name(host), "TLSA") for host in asked])
        tlsa, usable = {}, {}
        for host in asked:
            with ctx.dns.optional(dane_untested(host, 25)):
                records = ctx.dns.lookup(tlsa_name(host), "TLSA").rdatas
                tlsa[host] = [tlsa_text(r) for r in records]
                result.findings += self._judge(ctx, host, zones[host], records)
                if zones[host] == SECURE:
                    usable[host] = usable_tlsa(records)
        result.records = {"TLSA": tlsa}
        # For the smtp category: what DANE senders match the served certificates against, and
        # the hosts whose DANE could not be tested.
        untested = [h for h in hosts if h not in zones or (h in asked and h not in tlsa)]
        if len(untested) == len(hosts):
            self._fail_core(ctx, hosts, zones)
        result.data = {"zones": zones, "usable": usable, "untested": untested}
        return result

    def finish(self, ctx: Context, result: CategoryResult) -> bool:
        """dane.mismatch: a server whose chain matches none of its usable TLSA records (or
        that offers no TLS at all), as the probe categories found (RFC 7672 2.2, RFC 7673)."""
        lines = []
        for category in PROBE_CATEGORIES:
            for row in ctx.data(category).get("servers", []):
                if row.get("dane") == "mismatch":
                    why = dane_worded(row.get("dane_detail") or "") or msg(
                        gettext_noop("no TLSA record matches")
                    )
                    line = msg(
                        gettext_noop("%(host)s (%(address)s) port %(port)s: %(why)s"),
                        host=row["host"],
                        address=row["address"],
                        port=str(row["port"]),
                        why=why,
                    )
                    lines.append(line)
        if not lines:
            return False
        detail = evidence_lines(lines)
        result.findings.append(finding("dane.mismatch", detail, domain=ctx.domain))
        result.applicable = True
        return True

    @staticmethod
    def _fail_core(ctx: Context, hosts: list[str], zones: dict) -> None:
        """No host's DANE could be tested: the category itself could not be. Asks the failed
        lookups again (the session remembers the failures) outside any optional scope, so they
        raise as the category's core lookups."""
        validator = Validator(ctx.dns, settings.MAILSEC_DNSSEC_TRUST_ANCHORS)
        for host in hosts:
            if host in zones:
                ctx.dns.lookup(tlsa_name(host), "TLSA")
            else:
                validator.verdict(host)

    @staticmethod
    def _zone_status(ctx: Context, hosts: list[str]) -> dict[str, str]:
        """The dnssec check's verdicts; validated here for hosts it has none for (it could not
        finish, or was given other hosts), through the same session's answers; a host whose
        validation failed is left out."""
        known = dict(ctx.data("dnssec").get("mx", {}))
        missing = [host for host in hosts if host not in known]
        if missing:
            validator = Validator(ctx.dns, settings.MAILSEC_DNSSEC_TRUST_ANCHORS)
            validator.prefetch(*missing)
            for host in missing:  # a host left out could not be validated: DANE not tested
                with ctx.dns.optional(dane_untested(host, 25)):
                    known[host] = validator.verdict(host).status
        return {host: known[host] for host in hosts if host in known}

    @staticmethod
    def _judge(ctx: Context, host: str, zone: str, records: list) -> list:
        name = tlsa_name(host)
        if not records:
            if zone == SECURE:
                detail = msg(
                    gettext_noop(
                        "%(host)s has no TLSA record at %(name)s, though its zone is signed."
                    ),
                    host=host,
                    name=name,
                )
                return [finding("dane.missing", detail, domain=ctx.domain)]
            detail = msg(
                gettext_noop(
                    "%(host)s has no TLSA record at %(name)s; DANE first needs DNSSEC on the "
                    "zone of %(host)s, which is not signed."
                ),
                host=host,
                name=name,
            )
            return [finding("dane.missing", detail, domain=ctx.domain, severity=Severity.INFO)]
        texts = ", ".join(f"{name} TLSA {_shown(tlsa_text(r))}" for r in records)
        if zone == INSECURE:
            detail = msg(
                gettext_noop(
                    "%(records)s: the zone of %(host)s is not signed with DNSSEC, so senders "
                    "ignore these records (RFC 7672)."
                ),
                records=texts,
                host=host,
            )
            return [finding("dane.without_dnssec", detail, domain=ctx.domain)]
        problems = [(r, tlsa_problems(r)) for r in records]
        bad = [(r, p) for r, p in problems if p]
        if not bad:
            return []
        detail = "; ".join(f"{name} TLSA {_shown(tlsa_text(r))}: {', '.join(p)}" for r, p in bad)
        if len(bad) == len(records):
            detail = msg(
                gettext_noop(
                    "%(problems)s. No record is usable, so DANE senders encrypt but authenticate "
                    "nothing (RFC 7672)."
                ),
                problems=detail,
            )
        else:
            detail += "."
        return [finding("dane.bad_parameters", detail, domain=ctx.domain)]
